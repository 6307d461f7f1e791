//! The structural checks every JWT passes before any key is looked up or any signature
//! is verified, on every path that accepts one (access tokens, app-signed JWTs, RFC 7523
//! assertions, Adobe I/O's service-account JWT).
//!
//! `jsonwebtoken` verifies signatures under an explicit algorithm allow-list; these checks
//! close what it leaves open:
//!
//! - size: at most [`MAX_LEN`] bytes, refused before anything is decoded;
//! - shape: exactly three base64url segments (a JWE's five, or a JWT wrapped in another
//!   encoding, are not a JWS);
//! - `crit` in the header is refused: Portcullis understands no JWS extension, and RFC
//!   7515 section 4.1.11 says a recipient that does not understand a listed extension must reject;
//! - `cty: JWT` (a nested JWT, RFC 7519 section 5.2) is refused: nothing here unwraps one;
//! - duplicate member names in the header or the claims (at any depth) are refused: JSON
//!   parsers disagree on which duplicate wins (RFC 7515 section 4 and RFC 7519 section 4 require
//!   rejection or last-wins; we reject), so a token could mean one thing to Portcullis and
//!   another to the API behind it;
//! - header and claims must each be a JSON object.
//!
//! `jku`, `x5u`, `x5c` and `jwk` header members are never used: keys come only from the
//! server's view (by `kid`), so a token cannot point verification at a key it brings.
//! `kid` is only ever a map key (never a path or a query), so traversal or injection in it
//! is just an unknown kid.

use base64::Engine;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// The longest JWT accepted anywhere, in bytes. An RS256 JWT with generous claims is well
/// under 2 KiB.
pub const MAX_LEN: usize = 8192;

/// Why a token failed the structural checks. The messages are for people and never
/// contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    #[error("the JWT is longer than {MAX_LEN} bytes")]
    TooLong,
    #[error("the JWT is not three base64url segments separated by dots")]
    NotCompact,
    #[error("the JWT's {0} is not a JSON object")]
    NotObject(&'static str),
    #[error("the JWT's {0} has a member twice")]
    DuplicateMember(&'static str),
    #[error("the JWT's header has 'crit': no JWS extension is supported")]
    Crit,
    #[error("the JWT is a nested JWT (cty 'JWT'), which is not accepted")]
    Nested,
}

impl JoseError {
    /// Whether the token is simply not a JWS (too long, wrong shape, not JSON objects),
    /// rather than a JWS using a feature that is refused.
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            JoseError::TooLong | JoseError::NotCompact | JoseError::NotObject(_)
        )
    }
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Check `token`'s size and structure (see the module documentation); nothing is verified.
pub fn precheck(token: &str) -> Result<(), JoseError> {
    if token.len() > MAX_LEN {
        return Err(JoseError::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::NotCompact);
    };
    let header = B64.decode(header).map_err(|_| JoseError::NotCompact)?;
    let payload = B64.decode(payload).map_err(|_| JoseError::NotCompact)?;
    B64.decode(signature).map_err(|_| JoseError::NotCompact)?;
    let header_members = object_members(&header, "header")?;
    if header_members.contains("crit") {
        return Err(JoseError::Crit);
    }
    if header_members.contains("cty") {
        let cty = serde_json::from_slice::<serde_json::Value>(&header)
            .ok()
            .and_then(|h| h.get("cty").and_then(|c| c.as_str()).map(str::to_owned));
        if cty.is_some_and(|c| c.eq_ignore_ascii_case("jwt")) {
            return Err(JoseError::Nested);
        }
    }
    object_members(&payload, "claims")?;
    Ok(())
}

/// The top-level member names of `json`, which must be an object without duplicate
/// member names at any depth.
fn object_members(json: &[u8], what: &'static str) -> Result<HashSet<String>, JoseError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let checked = de
        .deserialize_any(NoDuplicates { top: true })
        .map_err(|e| {
            if e.to_string().starts_with(DUPLICATE) {
                JoseError::DuplicateMember(what)
            } else {
                JoseError::NotObject(what)
            }
        })?;
    de.end().map_err(|_| JoseError::NotObject(what))?;
    checked.ok_or(JoseError::NotObject(what))
}

const DUPLICATE: &str = "duplicate member";

/// Walks a JSON value, failing on a duplicate member name in any object; yields the
/// top-level object's member names (`None` when the top level is not an object).
struct NoDuplicates {
    top: bool,
}

impl<'de> de::DeserializeSeed<'de> for NoDuplicates {
    type Value = Option<HashSet<String>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = Option<HashSet<String>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                return Err(de::Error::custom(DUPLICATE));
            }
            map.next_value_seed(NoDuplicates { top: false })?;
        }
        Ok(self.top.then_some(seen))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq
            .next_element_seed(NoDuplicates { top: false })?
            .is_some()
        {}
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &str, claims: &str) -> String {
        format!("{}.{}.c2ln", B64.encode(header), B64.encode(claims))
    }

    #[test]
    fn a_plain_jws_passes() {
        assert_eq!(
            precheck(&jwt(
                r#"{"alg":"ES256","kid":"k"}"#,
                r#"{"sub":"a","aud":["x","y"],"n":{"a":1}}"#
            )),
            Ok(())
        );
    }

    #[test]
    fn duplicate_members_are_refused_at_any_depth() {
        let dup = |h: &str, c: &str| precheck(&jwt(h, c));
        assert_eq!(
            dup(r#"{"alg":"ES256"}"#, r#"{"sub":"a","sub":"b"}"#),
            Err(JoseError::DuplicateMember("claims"))
        );
        assert_eq!(
            dup(r#"{"alg":"ES256","alg":"none"}"#, r#"{}"#),
            Err(JoseError::DuplicateMember("header"))
        );
        assert_eq!(
            dup(r#"{"alg":"ES256"}"#, r#"{"x":[{"a":1,"a":2}]}"#),
            Err(JoseError::DuplicateMember("claims"))
        );
        // The same name in different objects is fine.
        assert_eq!(dup(r#"{"alg":"ES256"}"#, r#"{"a":{"a":1}}"#), Ok(()));
    }

    #[test]
    fn crit_nested_and_non_objects_are_refused() {
        assert_eq!(
            precheck(&jwt(r#"{"alg":"ES256","crit":["exp"],"exp":1}"#, "{}")),
            Err(JoseError::Crit)
        );
        assert_eq!(
            precheck(&jwt(r#"{"alg":"ES256","cty":"JWT"}"#, "{}")),
            Err(JoseError::Nested)
        );
        assert_eq!(
            precheck(&jwt(r#"{"alg":"ES256"}"#, r#""a.b.c""#)),
            Err(JoseError::NotObject("claims"))
        );
        assert_eq!(
            precheck(&jwt(r#"{"alg":"ES256"}"#, r#"{} x"#)),
            Err(JoseError::NotObject("claims"))
        );
        assert_eq!(
            precheck(&jwt("[]", "{}")),
            Err(JoseError::NotObject("header"))
        );
    }

    #[test]
    fn size_and_shape() {
        assert_eq!(precheck(&"a".repeat(MAX_LEN + 1)), Err(JoseError::TooLong));
        assert_eq!(precheck("a.b"), Err(JoseError::NotCompact));
        assert_eq!(precheck("a.b.c.d.e"), Err(JoseError::NotCompact));
        let ok = jwt(r#"{"alg":"ES256"}"#, "{}");
        // The whole token base64url-encoded once more is not a JWS.
        assert_eq!(precheck(&B64.encode(&ok)), Err(JoseError::NotCompact));
        assert_eq!(
            precheck(&ok.replacen('.', ".=", 1)),
            Err(JoseError::NotCompact)
        );
    }
}
