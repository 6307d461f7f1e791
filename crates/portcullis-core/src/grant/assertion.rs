//! The claims of JWTs that clients make and sign themselves: RFC 7523 assertions (the
//! jwt-bearer grant and `private_key_jwt`) and Adobe I/O's service-account JWT. The
//! signature is `app_jwt`'s; this module reads the claims as sent (any JSON, since a
//! wrong type deserves a message of its own) and checks the clock rules they share:
//! `exp` required, not past beyond the leeway, at most 24 h ahead; `nbf` and `iat`, when
//! present, not in the future beyond the leeway.
//!
//! Each check returns the description of what was wrong; the caller picks the OAuth
//! error code of its protocol (`invalid_grant`, `invalid_client`, `invalid_token`).

use crate::app_jwt::{JtiCheck, Replay};
use serde_json::{Map, Value};

/// Leeway on `exp`, `nbf` and `iat` of client-made JWTs, in seconds.
pub const LEEWAY: i64 = 60;
/// The latest `exp` accepted, in seconds from now (plus [`LEEWAY`]).
pub const MAX_AHEAD: i64 = 86_400;

/// A client-made JWT's claims, unchecked.
#[derive(Debug, Clone, Default)]
pub struct Claims(pub Map<String, Value>);

impl<'de> serde::Deserialize<'de> for Claims {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Map::deserialize(d).map(Claims)
    }
}

fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(120).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// What a client is told when an assertion's `jti` was used before (on this node, or on
/// any node when they share a store).
pub fn replayed(jti: &str) -> String {
    format!(
        "The JWT's jti '{}' was used before; sign a new JWT with a fresh jti for every request (RFC 7523 section 3).",
        shown(jti)
    )
}

impl Claims {
    /// The claims of `token` *without verifying it*: only to find which app a JWT says it
    /// is from, before its signature is checked with that app's keys.
    pub fn unverified(token: &str) -> Option<Self> {
        use base64::Engine;
        crate::jose::precheck(token).ok()?;
        let payload = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// A string claim that must be there.
    pub fn string(&self, name: &str) -> Result<&str, String> {
        match self.0.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(format!("The JWT's '{name}' claim must be a string.")),
            None => Err(format!("The JWT has no '{name}' claim.")),
        }
    }

    /// `name` must be the string `want`; `what` says what it should be, for the message.
    pub fn expect(&self, name: &str, want: &str, what: &str) -> Result<(), String> {
        let got = self
            .string(name)
            .map_err(|e| format!("{e} It must be {what} ('{want}')."))?;
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "The JWT's '{name}' is '{}'; it must be {what}: '{want}'.",
                shown(got)
            ))
        }
    }

    /// `aud` (a string or an array of strings) must contain one of `allowed`.
    pub fn expect_aud(&self, allowed: &[&str]) -> Result<(), String> {
        let want = allowed
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" or ");
        let auds: Vec<&str> = match self.0.get("aud") {
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            Some(_) => return Err(format!("The JWT's 'aud' must be a string: {want}.")),
            None => return Err(format!("The JWT has no 'aud' claim; it must be {want}.")),
        };
        if auds.iter().any(|a| allowed.contains(a)) {
            return Ok(());
        }
        Err(format!(
            "The JWT's aud is '{}'; it must be {want}.",
            shown(&auds.join(" "))
        ))
    }

    fn time(&self, name: &str) -> Result<Option<i64>, String> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| format!("The JWT's '{name}' is not a time.")),
            Some(_) => Err(format!(
                "The JWT's '{name}' must be a number of seconds since 1970 (NumericDate, RFC 7519 section 2)."
            )),
        }
    }

    /// Check `exp`, `nbf` and `iat` at `now`; the `exp`.
    pub fn check_times(&self, now: i64) -> Result<i64, String> {
        let exp = self.time("exp")?.ok_or_else(|| {
            format!(
                "The JWT has no 'exp' claim; set it to when the JWT stops being valid, at most {} h ahead (for example now + 300).",
                MAX_AHEAD / 3600
            )
        })?;
        if exp.saturating_add(LEEWAY) < now {
            return Err(format!(
                "The JWT expired {} s ago (exp {exp}); sign a new one.",
                now.abs_diff(exp)
            ));
        }
        if exp > now.saturating_add(MAX_AHEAD + LEEWAY) {
            return Err(format!(
                "The JWT's exp is {} s ahead; at most {MAX_AHEAD} s (24 h) is accepted. Give it a shorter lifetime.",
                exp - now
            ));
        }
        if let Some(nbf) = self.time("nbf")?
            && nbf > now.saturating_add(LEEWAY)
        {
            return Err(format!(
                "The JWT is not valid yet: its nbf is {} s in the future. Check the signing machine's clock.",
                nbf - now
            ));
        }
        if let Some(iat) = self.time("iat")?
            && iat > now.saturating_add(LEEWAY)
        {
            return Err(format!(
                "The JWT's iat is {} s in the future. Check the signing machine's clock.",
                iat - now
            ));
        }
        Ok(exp)
    }

    /// An RFC 7523 assertion's `jti`, recorded in `replay` for `client_id` until the
    /// assertion could not be accepted anyway (`exp` + [`LEEWAY`]).
    pub fn first_use(
        &self,
        replay: &dyn JtiCheck,
        client_id: &str,
        exp: i64,
        now: i64,
    ) -> Result<(), String> {
        let jti = self.jti()?;
        replay
            .first_use(client_id, jti, exp.saturating_add(LEEWAY), now)
            .map_err(|e| match e {
                Replay::Replayed => replayed(jti),
                Replay::Full => e.to_string(),
            })
    }

    /// The `jti` (required for RFC 7523 assertions).
    pub fn jti(&self) -> Result<&str, String> {
        let jti = self.string("jti").map_err(|e| {
            format!("{e} Give every JWT a unique 'jti' (a random UUID, say): it is refused if used twice.")
        })?;
        if jti.is_empty() || jti.len() > 256 {
            return Err("The JWT's 'jti' must be 1 to 256 characters.".into());
        }
        Ok(jti)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(v: Value) -> Claims {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn times_within_the_rules_pass_and_each_rule_has_its_message() {
        let now = 1_000_000;
        assert_eq!(c(json!({"exp": now + 10})).check_times(now), Ok(now + 10));
        assert_eq!(c(json!({"exp": now - 59})).check_times(now), Ok(now - 59));
        let err = |v| c(v).check_times(now).unwrap_err();
        assert!(err(json!({})).contains("no 'exp'"));
        assert!(err(json!({"exp": "soon"})).contains("NumericDate"));
        assert!(err(json!({"exp": now - 61})).contains("expired 61 s ago"));
        assert!(err(json!({"exp": now + 86_400 + 61})).contains("at most 86400 s"));
        assert!(err(json!({"exp": now + 10, "nbf": now + 61})).contains("not valid yet"));
        assert!(
            err(json!({"exp": now + 10, "iat": now + 61})).contains("iat is 61 s in the future")
        );
        assert!(
            c(json!({"exp": now + 10, "iat": now + 30, "nbf": now}))
                .check_times(now)
                .is_ok()
        );
    }

    #[test]
    fn aud_iss_and_jti_messages_name_what_was_sent_and_what_is_wanted() {
        let claims = c(json!({"aud": ["x", "https://as/oauth/token"], "iss": "a", "jti": ""}));
        assert!(claims.expect_aud(&["https://as/oauth/token"]).is_ok());
        let e = c(json!({"aud": "https://other"}))
            .expect_aud(&["https://as"])
            .unwrap_err();
        assert_eq!(
            e,
            "The JWT's aud is 'https://other'; it must be 'https://as'."
        );
        let e = claims.expect("iss", "b", "the client id").unwrap_err();
        assert_eq!(e, "The JWT's 'iss' is 'a'; it must be the client id: 'b'.");
        assert!(claims.jti().is_err());
        assert!(c(json!({})).jti().unwrap_err().contains("no 'jti'"));
    }
}
