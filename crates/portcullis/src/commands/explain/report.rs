//! What `explain` prints: the decoded token, then the decision, as text for people or as
//! one JSON object (`--json`).

use super::Source;
use super::answer::Answer;
use super::proof;
use super::token::Decoded;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// One explanation.
pub struct Report<'a> {
    pub token: Option<&'a Decoded>,
    /// The DPoP proof sent with the token, decoded.
    pub proof: Option<&'a proof::Decoded>,
    pub answer: &'a Answer,
    pub source: &'a Source,
    /// The time the decision was made at (unix seconds): for "expires in".
    pub now: i64,
}

impl Report<'_> {
    /// `{"token": {...} | null, "decision": {...}, "source": {...}}`.
    pub fn json(&self) -> Value {
        let source = match self.source {
            Source::Server(url) => json!({"server": url}),
            Source::DataDir { dir, issuer, now } => {
                json!({"data_dir": dir.display().to_string(), "issuer": issuer, "now": now})
            }
        };
        json!({
            "token": self.token.map(|t| t.json(self.now)),
            "dpop_proof": self.proof.map(|p| p.json(self.now)),
            "decision": self.answer.json(),
            "source": source,
        })
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(token) = self.token {
            for line in token.lines(self.now) {
                let _ = writeln!(out, "{line}");
            }
            out.push('\n');
        }
        if let Some(proof) = self.proof {
            for line in proof.lines(self.now) {
                let _ = writeln!(out, "{line}");
            }
            out.push('\n');
        }
        let _ = match self.source {
            Source::Server(url) => writeln!(out, "Decision of the server at {url}:"),
            Source::DataDir { dir, issuer, .. } => writeln!(
                out,
                "Decision from the data directory {} as issuer {issuer}:",
                dir.display()
            ),
        };
        let a = self.answer;
        if a.allowed() {
            let _ = writeln!(
                out,
                "ALLOWED ({}): the gateway passes the request upstream with these headers:",
                a.status
            );
            for (name, value) in &a.headers {
                let _ = writeln!(out, "  {name}: {value}");
            }
        } else {
            let field = |k| a.problem_field(k).unwrap_or_default();
            let _ = writeln!(
                out,
                "DENIED ({}): {} {}",
                a.status,
                field("code"),
                field("title")
            );
            let _ = writeln!(out, "  {}", field("detail"));
        }
        if let Some(note) = self.issuer_note() {
            let _ = writeln!(out, "\nnote: {note}");
        }
        out
    }

    /// When deciding from the data directory as another issuer than the token's, no token
    /// verifies: say so, since it is the likeliest cause of such a denial.
    fn issuer_note(&self) -> Option<String> {
        let Source::DataDir { issuer, .. } = self.source else {
            return None;
        };
        let iss = self.token?.issuer()?;
        (iss.trim_end_matches('/') != issuer).then(|| {
            format!(
                "the token's issuer is {iss}, but this decision was made as {issuer}. If {iss} is the server's issuer, pass --issuer {iss} (it must match the server's `serve --issuer`, or its http://<listen address>)."
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::gateway::{Allow, Code, Denial};
    use portcullis_server::gateway::{allowed, denied};
    use std::path::PathBuf;

    fn answer(result: Result<Allow, Denial>) -> Answer {
        let res = match result {
            Ok(a) => allowed(&a),
            Err(d) => denied(&d),
        };
        Answer::from_response(res.status().as_u16(), res.headers(), None).unwrap()
    }

    fn report<'a>(
        token: Option<&'a Decoded>,
        answer: &'a Answer,
        source: &'a Source,
    ) -> Report<'a> {
        Report {
            token,
            proof: None,
            answer,
            source,
            now: 0,
        }
    }

    fn data_dir(issuer: &str) -> Source {
        Source::DataDir {
            dir: PathBuf::from("./data"),
            issuer: issuer.into(),
            now: 1_750_000_000,
        }
    }

    #[test]
    fn an_allowed_request_lists_the_upstream_headers() {
        let a = answer(Ok(Allow {
            secret_id: None,
            app: None,
            client_id: Some("c1".into()),
            org: Some("O@Org".into()),
            scope: "read".into(),
            authenticated: true,
        }));
        let source = data_dir("http://i");
        let r = report(None, &a, &source);
        assert_eq!(
            r.text(),
            "Decision from the data directory ./data as issuer http://i:\n\
             ALLOWED (200): the gateway passes the request upstream with these headers:\n  \
             x-portcullis-authenticated: true\n  x-portcullis-client-id: c1\n  \
             x-portcullis-org: O@Org\n  x-portcullis-scope: read\n"
        );
        let j = r.json();
        assert_eq!(j["token"], Value::Null);
        assert_eq!(j["decision"]["allowed"], true);
        assert_eq!(j["source"]["issuer"], "http://i");
    }

    #[test]
    fn a_denial_shows_status_code_title_and_detail() {
        let a = answer(Err(Denial {
            retry_after: None,
            code: Code::TokenExpired,
            detail: "The token expired at X, 42 s ago. Request a new token.".into(),
        }));
        let source = Source::Server("http://s".into());
        let r = report(None, &a, &source);
        assert_eq!(
            r.text(),
            "Decision of the server at http://s:\n\
             DENIED (401): EXEG-0503-401 Invalid authorization token\n  \
             The token expired at X, 42 s ago. Request a new token.\n"
        );
    }

    #[test]
    fn another_issuer_than_the_tokens_is_pointed_out() {
        let a = answer(Err(Denial {
            retry_after: None,
            code: Code::InvalidToken,
            detail: "The token is not valid.".into(),
        }));
        let token = Decoded::of(&format!(
            "eyJhbGciOiJFUzI1NiJ9.{}.c2ln",
            "eyJpc3MiOiJodHRwOi8vdG9rZW4ifQ" // {"iss":"http://token"}
        ));
        for (issuer, noted) in [("http://other", true), ("http://token", false)] {
            let source = data_dir(issuer);
            let r = report(Some(&token), &a, &source);
            let text = r.text();
            assert_eq!(
                text.contains("pass --issuer http://token"),
                noted,
                "{issuer}: {text}"
            );
        }
    }
}
