//! Request-body parsing: the OAuth endpoints' strict form parser, the console's form
//! parser, Wave's form pairs, and Wave's notification parameters from a form-urlencoded or
//! multipart body (the handler's own parsing, driven in-process through axum's request
//! type and multer).
//!
//! Invariants: every outcome is a parsed form or a 4xx (never a 5xx); the OAuth parser
//! never yields an empty value or a parameter twice; Wave's parser only yields its known
//! names, each once.
#![no_main]

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, header};
use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;
use portcullis_server::oauth::form::OAuthForm;
use portcullis_server::wave::notify::parsed_params;

const BOUNDARY: &str = "XfuzzBoundary";

fuzz_target!(|input: (bool, &[u8])| {
    let (multipart, body) = input;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let bytes = bytes::Bytes::copy_from_slice(body);
    match OAuthForm::parse(&headers, &bytes) {
        Ok(form) => {
            for (k, v) in form.pairs() {
                assert!(!v.is_empty(), "empty value kept for {k}");
            }
        }
        Err(e) => assert!((400..500).contains(&e.status)),
    }
    if let Some(pairs) = portcullis_server::wave::form_pairs(body) {
        assert!(
            pairs
                .iter()
                .all(|(k, v)| !k.contains('\u{FFFD}') && !v.contains('\u{FFFD}'))
        );
    }
    let content_type = if multipart {
        format!("multipart/form-data; boundary={BOUNDARY}")
    } else {
        "application/x-www-form-urlencoded".to_owned()
    };
    let req = Request::builder()
        .method("POST")
        .uri("/notificationgateway/1.0/notification")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes))
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    match rt.block_on(parsed_params(None, req)) {
        Ok(params) => {
            let mut names: Vec<&str> = params.iter().map(|(n, _, _)| *n).collect();
            names.sort_unstable();
            let n = names.len();
            names.dedup();
            assert_eq!(n, names.len(), "a parameter twice");
            for (name, is_file, _) in &params {
                assert!(!is_file || *name == "image", "{name} as a file");
            }
        }
        Err(e) => {
            let status = e.into_response().status();
            assert!(status.is_client_error(), "{status}");
        }
    }
});
