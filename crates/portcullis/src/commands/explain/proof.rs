//! The DPoP proof as `explain` shows it beside the token: its header (type, algorithm, and
//! the thumbprint of its key, compared with the key the token is bound to) and its claims
//! (method, URL, age, `jti`, whether `ath` is the token's hash, nonce), read without
//! verification. The decision checks it and names the first check that fails.

use super::super::rfc3339;
use super::token::shorten;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use serde_json::{Value, json};

/// A proof decoded without verification.
pub struct Decoded {
    pub shortened: String,
    /// Header and claims, or why they cannot be read.
    content: Result<(Value, Value), String>,
    /// The thumbprint of the header's `jwk`, when it is a key.
    jkt: Option<String>,
    /// The `cnf.jkt` of the token sent with it, when it is bound.
    bound_to: Option<String>,
    /// Whether `ath` is the hash of the token sent with it.
    ath_matches: Option<bool>,
}

fn segment(part: Option<&str>) -> Result<Value, String> {
    let bytes = B64
        .decode(part.ok_or("it is not three parts separated by dots")?)
        .map_err(|_| "a part is not base64url".to_owned())?;
    serde_json::from_slice(&bytes).map_err(|_| "a part is not JSON".to_owned())
}

impl Decoded {
    pub fn of(proof: &str, token: Option<&str>) -> Decoded {
        let mut parts = proof.split('.');
        let content = segment(parts.next()).and_then(|h| Ok((h, segment(parts.next())?)));
        let jkt = content
            .as_ref()
            .ok()
            .and_then(|(h, _)| serde_json::from_value::<Jwk>(h.get("jwk")?.clone()).ok())
            .and_then(|k| k.thumbprint(ThumbprintHash::SHA256).ok());
        let bound_to = token
            .and_then(|t| t.split('.').nth(1))
            .and_then(|c| segment(Some(c)).ok())
            .and_then(|c| c.get("cnf")?.get("jkt")?.as_str().map(str::to_owned));
        let ath_matches = match (&content, token) {
            (Ok((_, claims)), Some(t)) => Some(
                claims.get("ath").and_then(Value::as_str)
                    == Some(portcullis_core::dpop::ath(t).as_str()),
            ),
            _ => None,
        };
        Decoded {
            shortened: shorten(proof),
            content,
            jkt,
            bound_to,
            ath_matches,
        }
    }

    fn key_line(&self) -> String {
        match (&self.jkt, &self.bound_to) {
            (None, _) => "no usable public key in jwk".into(),
            (Some(k), None) => format!("{k} (the token is not bound to a key)"),
            (Some(k), Some(b)) if k == b => format!("{k} (the key the token is bound to)"),
            (Some(k), Some(b)) => format!("{k} (NOT the key the token is bound to, {b})"),
        }
    }

    /// The machine-readable form (`--json`).
    pub fn json(&self, now: i64) -> Value {
        let mut out = json!({"shortened": self.shortened, "verified": false,
            "jkt": self.jkt, "token_bound_to": self.bound_to, "ath_matches_token": self.ath_matches});
        match &self.content {
            Ok((header, claims)) => {
                out["header"] = json!({"typ": header.get("typ"), "alg": header.get("alg")});
                out["claims"] = claims.clone();
                out["age"] = claims
                    .get("iat")
                    .and_then(Value::as_i64)
                    .map(|t| now - t)
                    .into();
            }
            Err(e) => out["error"] = e.clone().into(),
        }
        out
    }

    /// The lines for people, each without its newline.
    pub fn lines(&self, now: i64) -> Vec<String> {
        let mut lines = vec![format!(
            "DPoP proof {} (decoded without verification; the decision checks it)",
            self.shortened
        )];
        let (header, claims) = match &self.content {
            Ok(c) => c,
            Err(e) => {
                lines.push(format!("  cannot be decoded as a JWT: {e}"));
                return lines;
            }
        };
        let field = |v: Option<&Value>| match v {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "(none)".into(),
        };
        lines.push(format!(
            "  {:<10} typ {}, alg {}",
            "header",
            field(header.get("typ")),
            field(header.get("alg"))
        ));
        lines.push(format!("  {:<10} {}", "key", self.key_line()));
        for name in ["htm", "htu", "jti", "nonce"] {
            if claims.get(name).is_some() || name != "nonce" {
                lines.push(format!("  {name:<10} {}", field(claims.get(name))));
            }
        }
        let iat = match claims.get("iat").and_then(Value::as_i64) {
            Some(t) => format!("{} ({} s ago)", rfc3339(t), now - t),
            None => "(none)".into(),
        };
        lines.push(format!("  {:<10} {iat}", "iat"));
        let ath = match (claims.get("ath"), self.ath_matches) {
            (None, _) => "(none)",
            (Some(_), Some(true)) => "the hash of the token",
            (Some(_), _) => "NOT the hash of the token",
        };
        lines.push(format!("  {:<10} {ath}", "ath"));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: Value) -> String {
        B64.encode(v.to_string())
    }

    #[test]
    fn a_proof_shows_its_request_its_age_and_whether_it_fits_the_token() {
        let jwk = json!({"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pOyStikYjKIWI5a0"});
        let jkt = serde_json::from_value::<Jwk>(jwk.clone())
            .unwrap()
            .thumbprint(ThumbprintHash::SHA256)
            .unwrap();
        let token = format!(
            "{}.{}.sig",
            b64(json!({"alg": "ES256"})),
            b64(json!({"cnf": {"jkt": jkt}}))
        );
        let proof = format!(
            "{}.{}.sig",
            b64(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk})),
            b64(
                json!({"htm": "GET", "htu": "https://api.example/x", "jti": "j1",
                "iat": 1_750_000_000, "ath": portcullis_core::dpop::ath(&token)})
            )
        );
        let d = Decoded::of(&proof, Some(&token));
        let text = d.lines(1_750_000_007).join("\n");
        assert!(text.contains("typ dpop+jwt, alg ES256"), "{text}");
        assert!(text.contains("(the key the token is bound to)"), "{text}");
        assert!(text.contains("htu        https://api.example/x"), "{text}");
        assert!(text.contains("(7 s ago)"), "{text}");
        assert!(text.contains("ath        the hash of the token"), "{text}");
        assert!(!text.contains(&proof[..13]), "the proof is shown shortened");

        let other = format!(
            "{}.{}.sig",
            b64(json!({"alg": "ES256"})),
            b64(json!({"cnf": {"jkt": "another"}}))
        );
        let d = Decoded::of(&proof, Some(&other));
        let text = d.lines(1_750_000_007).join("\n");
        assert!(
            text.contains("NOT the key the token is bound to, another"),
            "{text}"
        );
        assert!(text.contains("NOT the hash of the token"), "{text}");
        assert_eq!(d.json(0)["ath_matches_token"], false);
        assert!(Decoded::of("junk", None).lines(0)[1].contains("cannot be decoded"));
    }
}
