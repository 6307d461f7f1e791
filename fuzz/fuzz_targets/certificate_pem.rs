//! X.509 certificate upload (PEM, or DER inside PEM): `certificate::parse`.
//!
//! Invariants: an accepted certificate has a JWK of its algorithm (RSA `n`/`e` or EC
//! P-256 `x`/`y` of 32 bytes), a 64-hex-digit fingerprint, and is valid now; input naming
//! a private key is never accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::certificate;
use portcullis_core::token::Alg;

const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(cert) = certificate::parse(data, NOW) else {
        return;
    };
    assert!(
        !data
            .windows(11)
            .any(|w| w.eq_ignore_ascii_case(b"PRIVATE KEY")),
        "a private key was accepted as a certificate"
    );
    assert_eq!(cert.fingerprint_sha256.len(), 64);
    assert!(cert.fingerprint_sha256.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(cert.not_before <= NOW && NOW < cert.not_after);
    match cert.alg {
        Alg::RS256 => assert!(cert.jwk["n"].is_string() && cert.jwk["e"].is_string()),
        Alg::ES256 => assert_eq!(cert.jwk["crv"], "P-256"),
        other => panic!("certificate with alg {other:?}"),
    }
});
