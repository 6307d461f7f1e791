//! # portcullis-core
//!
//! The domain of Portcullis as plain data and pure functions: identifiers, secrets,
//! scopes, the records an operator manages, the in-memory [`view::View`] that hot paths
//! read, and the decisions taken over it (token grants, introspection).
//!
//! This crate has no I/O, no async, no HTTP and no SQL — the compiler enforces it, since
//! neither `axum` nor `sqlx` is a dependency. Time enters as an argument (`now`, unix
//! seconds), so every rule is testable with exact clocks. The server, the CLI and the
//! `portcullis-verify` library all call the same functions.

pub mod app_jwt;
pub mod certificate;
pub mod clock;
pub mod decision_feed;
pub mod dpop;
pub mod gateway;
pub mod grant;
pub mod ids;
pub mod introspect;
pub mod jose;
pub mod limits;
pub mod model;
pub mod oauth1;
pub mod oauth_error;
pub mod policy;
pub mod scope;
pub mod secret;
pub mod token;
pub mod token_cache;
pub mod usage;
pub mod view;
pub mod wave;

/// Fill `buf` from the operating system's CSPRNG (through aws-lc-rs).
///
/// Panics only if the OS has no entropy source, which no supported platform lacks.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    aws_lc_rs::rand::fill(&mut buf).expect("the operating system's random source failed");
    buf
}
