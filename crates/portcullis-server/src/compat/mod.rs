//! Seed-compatible surfaces (API.md §3): each seed's exact paths and request/response
//! shapes, mapped onto core. No rule lives only here.

pub mod accounts;
pub mod redeem;
