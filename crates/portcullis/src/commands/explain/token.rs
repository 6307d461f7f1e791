//! The bearer token as `explain` shows it: header and claims read without verification, so
//! that a person sees which client, org, scopes and expiry the token claims even when the
//! gateway refuses it. Decoding is `jsonwebtoken`'s; the decision is what verifies.

use super::super::rfc3339;
use serde_json::{Map, Value, json};

/// How many characters of the token are shown; the rest is never printed.
const SHOWN: usize = 12;

/// The claims shown first, in this order (RFC 9068's list); any others follow by name.
const CLAIMS: [&str; 9] = [
    "iss",
    "sub",
    "aud",
    "client_id",
    "org",
    "scope",
    "iat",
    "exp",
    "jti",
];

/// A token decoded without verification.
pub struct Decoded {
    /// The first characters of the token and `…`.
    pub shortened: String,
    /// The JOSE header's `alg`, `kid`, `typ` and the claims; or why they cannot be read.
    pub content: Result<(Value, Map<String, Value>), String>,
}

/// The first [`SHOWN`] characters of `token`, then `…`.
pub fn shorten(token: &str) -> String {
    let mut out: String = token.chars().take(SHOWN).collect();
    out.push('…');
    out
}

impl Decoded {
    pub fn of(token: &str) -> Decoded {
        let content = jsonwebtoken::dangerous::insecure_decode::<Map<String, Value>>(token)
            .map(|data| {
                let h = data.header;
                let header = json!({"alg": h.alg, "kid": h.kid, "typ": h.typ});
                (header, data.claims)
            })
            .map_err(|e| e.to_string());
        Decoded {
            shortened: shorten(token),
            content,
        }
    }

    fn claims(&self) -> Option<&Map<String, Value>> {
        self.content.as_ref().ok().map(|(_, c)| c)
    }

    /// The `iss` claim, when it is a string.
    pub fn issuer(&self) -> Option<&str> {
        self.claims()?.get("iss")?.as_str()
    }

    fn exp(&self) -> Option<i64> {
        self.claims()?.get("exp")?.as_i64()
    }

    /// The machine-readable form (`--json`); `expires_in` is negative once expired.
    pub fn json(&self, now: i64) -> Value {
        let mut out = json!({"shortened": self.shortened, "verified": false});
        match &self.content {
            Ok((header, claims)) => {
                out["header"] = header.clone();
                out["claims"] = Value::Object(claims.clone());
                out["expires_in"] = self.exp().map(|exp| exp - now).into();
            }
            Err(e) => out["error"] = e.clone().into(),
        }
        out
    }

    /// The lines for people, each without its newline.
    pub fn lines(&self, now: i64) -> Vec<String> {
        let mut lines = vec![format!(
            "Token {} (decoded without verification; the decision checks it)",
            self.shortened
        )];
        let (header, claims) = match &self.content {
            Ok(content) => content,
            Err(e) => {
                lines.push(format!("  cannot be decoded as a JWT: {e}"));
                return lines;
            }
        };
        let field = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        let header = ["alg", "kid", "typ"]
            .iter()
            .map(|k| format!("{k} {}", field(&header[*k])))
            .collect::<Vec<_>>()
            .join(", ");
        lines.push(format!("  {:<10} {header}", "header"));
        let mut names: Vec<&str> = CLAIMS
            .into_iter()
            .filter(|c| claims.contains_key(*c))
            .collect();
        let mut others: Vec<&str> = claims
            .keys()
            .map(String::as_str)
            .filter(|k| !CLAIMS.contains(k))
            .collect();
        others.sort_unstable();
        names.extend(others);
        for name in names {
            let value = &claims[name];
            let shown = match (name, value.as_i64()) {
                ("iat", Some(t)) => rfc3339(t),
                ("exp", Some(t)) if t > now => {
                    format!("{} (expires in {} s)", rfc3339(t), t - now)
                }
                ("exp", Some(t)) => format!("{} (expired {} s ago)", rfc3339(t), now - t),
                _ => field(value),
            };
            lines.push(format!("  {name:<10} {shown}"));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn jwt(header: Value, claims: Value) -> String {
        let b64 = |v: Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        format!("{}.{}.c2lnbmF0dXJl", b64(header), b64(claims))
    }

    #[test]
    fn claims_show_in_order_with_times_and_expiry() {
        let token = jwt(
            json!({"alg": "ES256", "kid": "key_1", "typ": "at+jwt"}),
            json!({"exp": 1_750_000_100, "iat": 1_750_000_000, "client_id": "c1", "cred": "sec_1",
                   "iss": "http://i", "scope": "read write"}),
        );
        let d = Decoded::of(&token);
        let lines = d.lines(1_750_000_058);
        assert_eq!(
            lines[0],
            format!(
                "Token {}… (decoded without verification; the decision checks it)",
                &token[..12]
            )
        );
        assert_eq!(lines[1], "  header     alg ES256, kid key_1, typ at+jwt");
        assert_eq!(lines[2], "  iss        http://i");
        assert_eq!(lines[3], "  client_id  c1");
        assert_eq!(lines[4], "  scope      read write");
        assert_eq!(lines[5], "  iat        2025-06-15T15:06:40Z");
        assert_eq!(
            lines[6],
            "  exp        2025-06-15T15:08:20Z (expires in 42 s)"
        );
        assert_eq!(lines[7], "  cred       sec_1", "other claims follow");
        assert_eq!(
            d.lines(1_750_000_142)[6],
            "  exp        2025-06-15T15:08:20Z (expired 42 s ago)"
        );
        let j = d.json(1_750_000_142);
        assert_eq!(j["expires_in"], -42);
        assert_eq!(j["header"]["kid"], "key_1");
        assert_eq!(j["claims"]["client_id"], "c1");
        assert_eq!(j["verified"], false);
        assert_eq!(d.issuer(), Some("http://i"));
    }

    #[test]
    fn the_token_is_never_shown_whole() {
        let token = jwt(json!({"alg": "ES256"}), json!({"sub": "s"}));
        let d = Decoded::of(&token);
        let shown = format!("{}{}", d.lines(0).join("\n"), d.json(0));
        assert!(!shown.contains(&token[..13]), "{shown}");
        assert!(shown.contains(&token[..12]));
    }

    #[test]
    fn a_token_that_is_not_a_jwt_says_so() {
        let d = Decoded::of("not-a-jwt");
        assert!(
            d.lines(0)[1].contains("cannot be decoded"),
            "{:?}",
            d.lines(0)
        );
        assert!(d.json(0)["error"].is_string());
        assert_eq!(d.issuer(), None);
    }
}
