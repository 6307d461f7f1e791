//! The gateway decision (`decide_with`) over a small view, on arbitrary credentials and
//! headers.
//!
//! Invariants: the answer is an allow or a catalogue code with a 4xx status and a
//! non-empty detail; a presented secret never appears in a detail; an allow on this
//! protected resource needs the real client secret (the fuzzer can forge no token), and
//! then names the app and its org.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use portcullis_core::app_jwt::ReplayCache;
use portcullis_core::gateway::{CheckRequest, HeaderNames, decide_with};
use portcullis_core::token::verify_access_token;
use std::sync::Arc;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    /// Use the real resource id instead of `resource`.
    real_resource: bool,
    resource: Option<&'a str>,
    method: &'a str,
    always_write: bool,
    authorization: Option<&'a str>,
    authentication: Option<&'a str>,
    /// Use the real client id as the API key and user key instead of the fuzzed ones.
    real_client: bool,
    api_key: Option<&'a str>,
    org_header: Option<&'a str>,
    real_org: bool,
    user_key: Option<&'a str>,
    /// Use the real secret (so the allow path is reached too).
    real_secret: bool,
    user_secret: Option<&'a str>,
    secrets_allowed: bool,
    /// A DPoP header, and whether it came twice.
    dpop: Option<&'a str>,
    dpop_repeated: bool,
}

fuzz_target!(|input: Input<'_>| {
    let w = common::world();
    let resource = if input.real_resource {
        Some(w.resource.as_str())
    } else {
        input.resource
    };
    let api_key = if input.real_client {
        Some(w.client_id.as_str())
    } else {
        input.api_key
    };
    let user_key = if input.real_client {
        Some(w.client_id.as_str())
    } else {
        input.user_key
    };
    let org_header = if input.real_org {
        Some(w.org_id.as_str())
    } else {
        input.org_header
    };
    let user_secret = if input.real_secret {
        Some(w.secret.as_str())
    } else {
        input.user_secret
    };
    let req = CheckRequest {
        resource,
        method: input.method,
        always_write: input.always_write,
        authorization: input.authorization,
        authentication: input.authentication,
        api_key,
        org_header,
        user_key,
        user_secret,
        secrets_allowed: input.secrets_allowed,
        names: HeaderNames {
            api_key: "x-api-key",
            org: "x-gw-ims-org-id",
        },
        dpop: input.dpop,
        dpop_repeated: input.dpop_repeated,
        htu: Some("https://api.example/orders/7"),
        dpop_rules: Default::default(),
    };
    let replay = ReplayCache::new(64);
    let verify = |t: &str| {
        verify_access_token(t, |kid| w.view.key(kid), common::ISS, common::NOW).map(Arc::new)
    };
    match decide_with(&req, &w.view, common::ISS, common::NOW, &verify, &replay) {
        Ok(allow) => {
            assert!(
                allow.authenticated,
                "an unauthenticated allow on a protected resource"
            );
            assert_eq!(
                user_secret,
                Some(w.secret.as_str()),
                "allowed without the secret: {req:?}"
            );
            assert!(input.secrets_allowed);
            assert_eq!(allow.client_id.as_deref(), Some(w.client_id.as_str()));
            assert_eq!(allow.org.as_deref(), Some(w.org_id.as_str()));
        }
        Err(d) => {
            let status = d.code.status();
            assert!(
                (400..500).contains(&status),
                "{:?} has status {status}",
                d.code
            );
            assert!(!d.detail.is_empty());
            // (Unless the same text was also sent where it is echoed: an unknown resource
            // id, a client id.)
            let echoed = [resource, api_key, user_key, org_header, Some(input.method)];
            if let Some(s) = user_secret.filter(|s| {
                // Secret-like text: printable, no spaces (an echoed id has its control
                // characters and spaces rewritten, which could rebuild a blank "secret").
                s.len() >= 8
                    && s.bytes().all(|b| b.is_ascii_graphic())
                    // The detail quotes echoed values: a "secret" that is an echoed value
                    // plus a quote around it is the echo, not a leak.
                    && !echoed
                        .iter()
                        .flatten()
                        .any(|e| e.contains(s.trim_matches(|c| c == '\'' || c == '"')))
            }) {
                assert!(
                    !d.detail.contains(s),
                    "the detail echoes the secret: {}",
                    d.detail
                );
            }
            assert_eq!(d.retry_after.is_some(), d.code.status() == 429);
        }
    }
});
