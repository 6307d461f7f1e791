//! JWT parsing on every path: the structural precheck, Portcullis access-token
//! verification, app-signed JWT verification by kid, the unverified claim reader the
//! RFC 7523 paths use to find the app, and DPoP proof verification (the key in the
//! proof's own header).
//!
//! Invariants: nothing the fuzzer makes verifies (it has no private key: a verified token
//! is a forgery); whatever fails the precheck fails every path too; what the claim reader
//! returns passed the precheck.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use portcullis_core::app_jwt;
use portcullis_core::dpop::{Expected, ProofError, verify_proof};
use portcullis_core::grant::assertion::Claims;
use portcullis_core::jose;
use portcullis_core::token::{TokenError, verify_access_token};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let w = common::world();
    let pre = jose::precheck(token);
    let access = verify_access_token(token, |kid| w.view.key(kid), common::ISS, common::NOW);
    assert!(access.is_err(), "a fuzzed access token verified: {token:?}");
    if let Err(e) = &pre {
        assert!(
            matches!(access, Err(TokenError::Malformed | TokenError::Refused(_))),
            "precheck refused ({e}) but access-token verification said {access:?}"
        );
    }
    let app = app_jwt::verify_by_kid::<serde_json::Value>(token, &w.view, common::NOW);
    assert!(app.is_err(), "a fuzzed app JWT verified: {token:?}");
    if pre.is_err() {
        assert!(app_jwt::kid_of(token).is_err());
    }
    // A proof carries its own key, but the fuzzer cannot sign with it.
    let want = Expected {
        htm: "GET",
        htu: "https://api.example/orders/7",
        now: common::NOW,
        max_age: 60,
        leeway: 5,
        access_token: Some("token"),
        nonce: None,
    };
    let proof = verify_proof(token, &want);
    assert!(proof.is_err(), "a fuzzed DPoP proof verified: {token:?}");
    if pre.is_err() {
        assert!(
            matches!(proof, Err(ProofError::Malformed(_))),
            "precheck refused but the proof check said {proof:?}"
        );
    }
    if let Some(claims) = Claims::unverified(token) {
        assert!(pre.is_ok(), "claims read from a token the precheck refuses");
        let _ = claims.check_times(common::NOW);
    }
});
