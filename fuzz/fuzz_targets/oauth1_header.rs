//! OAuth 1.0 `Authorization: OAuth …` parsing and the PLAINTEXT request check (Wave's
//! identity endpoints).
//!
//! Invariants: errors are 400 or 401 with a non-empty message; a parsed request has every
//! required parameter non-empty and a timestamp within the window; parameter names that
//! come out of the header were each given once (merge refuses duplicates).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::oauth1;
use std::collections::HashMap;

const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let params = match oauth1::header_params(value) {
        Ok(p) => p,
        Err(e) => {
            assert!(matches!(e.status(), 400 | 401));
            return;
        }
    };
    assert!(params.iter().all(|(k, _)| k != "realm"));
    let map: HashMap<String, String> = params.into_iter().collect();
    for with_token in [false, true] {
        match oauth1::parse(&map, with_token, NOW) {
            Ok(req) => {
                assert!(!req.consumer_key.is_empty());
                assert!(!req.nonce.is_empty() && req.nonce.len() <= 128);
                assert!((NOW - req.timestamp).abs() <= oauth1::TIMESTAMP_WINDOW);
                assert_eq!(req.token.is_some(), with_token);
            }
            Err(e) => assert!(matches!(e.status(), 400 | 401)),
        }
    }
});
