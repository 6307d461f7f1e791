//! The gateway's answer in one shape, whichever source gave it: the live server over HTTP,
//! or the decision made here from the data directory and turned into the very response
//! the server would send (`portcullis_server::gateway::{allowed, denied}`). Reading both
//! from a status and `x-portcullis-*` headers is what makes the two modes agree.

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The header that carries a denial's whole problem body (for proxies that drop bodies).
const PROBLEM_HEADER: &str = "x-portcullis-problem";

/// What the gateway said.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// The `x-portcullis-*` headers but the problem copy: for the upstream when allowed,
    /// code and detail when denied.
    pub headers: BTreeMap<String, String>,
    /// The problem body of a denial (RFC 9457).
    pub problem: Option<Value>,
}

impl Answer {
    /// From a response's parts. `body` is the problem body when one was read; otherwise the
    /// copy in `x-portcullis-problem` is used (a HEAD request has no body). `None` when the
    /// response is not a gateway decision at all.
    pub fn from_response(status: u16, headers: &HeaderMap, body: Option<Value>) -> Option<Answer> {
        let portcullis: BTreeMap<String, String> = headers
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("x-portcullis-"))
            .filter(|(name, _)| name.as_str() != PROBLEM_HEADER)
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        if status == 200 {
            return portcullis
                .contains_key("x-portcullis-authenticated")
                .then_some(Answer {
                    status,
                    headers: portcullis,
                    problem: None,
                });
        }
        let problem = body
            .filter(|b| b.get("code").is_some())
            .or_else(|| {
                let copy = headers.get(PROBLEM_HEADER)?.as_bytes();
                serde_json::from_slice::<Value>(copy).ok()
            })
            .filter(|b| b.get("code").is_some())?;
        Some(Answer {
            status,
            headers: portcullis,
            problem: Some(problem),
        })
    }

    pub fn allowed(&self) -> bool {
        self.problem.is_none()
    }

    /// A member of the problem body as text.
    pub fn problem_field(&self, key: &str) -> Option<String> {
        let v = self.problem.as_ref()?.get(key)?;
        Some(v.as_str().map_or_else(|| v.to_string(), str::to_owned))
    }

    /// The `decision` object of `--json`.
    pub fn json(&self) -> Value {
        json!({
            "allowed": self.allowed(),
            "status": self.status,
            "code": self.problem_field("code"),
            "title": self.problem_field("title"),
            "detail": self.problem_field("detail"),
            "headers": self.headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::gateway::{Allow, Code, Denial};
    use portcullis_server::gateway::{allowed, denied};

    #[test]
    fn an_allowed_response_gives_the_upstream_headers() {
        let res = allowed(&Allow {
            secret_id: None,
            app: None,
            client_id: Some("c1".into()),
            org: Some("O@Org".into()),
            scope: "read write".into(),
            authenticated: true,
        });
        let a = Answer::from_response(res.status().as_u16(), res.headers(), None).unwrap();
        assert!(a.allowed());
        assert_eq!(a.headers["x-portcullis-client-id"], "c1");
        assert_eq!(a.headers["x-portcullis-scope"], "read write");
        assert_eq!(a.json()["code"], Value::Null);
    }

    #[test]
    fn a_denial_is_read_from_the_problem_header_without_a_body() {
        let res = denied(&Denial {
            retry_after: None,
            code: Code::InvalidApiKey,
            detail: "The x-api-key 'x' is not…".into(),
        });
        let a = Answer::from_response(res.status().as_u16(), res.headers(), None).unwrap();
        assert!(!a.allowed());
        let j = a.json();
        assert_eq!(j["status"], 403);
        assert_eq!(j["code"], "403003");
        assert_eq!(j["title"], "Api Key is invalid");
        assert_eq!(j["detail"], "The x-api-key 'x' is not…");
        assert_eq!(a.headers["x-portcullis-code"], "403003");
        assert!(!a.headers.contains_key(PROBLEM_HEADER));
    }

    #[test]
    fn responses_that_are_not_decisions_are_none() {
        assert_eq!(Answer::from_response(200, &HeaderMap::new(), None), None);
        let body = json!({"error": "not found"});
        assert_eq!(
            Answer::from_response(404, &HeaderMap::new(), Some(body)),
            None
        );
    }
}
