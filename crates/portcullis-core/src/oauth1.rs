//! OAuth 1.0 (RFC 5849) as Adobe Wave uses it: the protocol parameters of a
//! request and the PLAINTEXT signature, nothing else.
//!
//! PLAINTEXT signs nothing: the signature *is* the consumer secret and the token secret
//! (section 3.4.4). That is why Wave can keep every secret hashed (HMAC-SHA1 would need the
//! plaintext secret on the server), and why the endpoints that take it require TLS —
//! which the server enforces, not this module. Other signature methods are refused with a
//! message that says so.
//!
//! Parameters come from the query, the form body, or `Authorization: OAuth` (section 3.5); a
//! parameter given twice, in one place or in two, is refused (section 3.5: "MUST NOT" be in more
//! than one). The nonce replay check needs storage and lives in the server; the timestamp
//! window is here.

use std::collections::HashMap;

/// How far a request's `oauth_timestamp` may be from the server's clock, in seconds.
pub const TIMESTAMP_WINDOW: i64 = 300;

/// Why a request was refused, with the status RFC 5849 section 3.2 gives it: 400 for a
/// malformed request, 401 for credentials, a stale timestamp or a used nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuth1Error {
    BadRequest(String),
    Unauthorized(String),
}

impl OAuth1Error {
    pub fn status(&self) -> u16 {
        match self {
            OAuth1Error::BadRequest(_) => 400,
            OAuth1Error::Unauthorized(_) => 401,
        }
    }
    pub fn detail(&self) -> &str {
        match self {
            OAuth1Error::BadRequest(d) | OAuth1Error::Unauthorized(d) => d,
        }
    }
}

fn bad(d: impl Into<String>) -> OAuth1Error {
    OAuth1Error::BadRequest(d.into())
}

/// The protocol parameters of one request, checked for presence and form.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuth1Request {
    pub consumer_key: String,
    /// The request token (access token request) or absent (request token request).
    pub token: Option<String>,
    /// The consumer secret, decoded from the PLAINTEXT signature.
    pub consumer_secret: String,
    /// The token secret, decoded from the PLAINTEXT signature (empty when none).
    pub token_secret: String,
    pub timestamp: i64,
    pub nonce: String,
}

impl std::fmt::Debug for OAuth1Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth1Request")
            .field("consumer_key", &self.consumer_key)
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

/// The `oauth_*` parameters of `Authorization: OAuth k="v", …` (section 3.5.1), decoded.
/// `realm` is ignored; anything that is not `name="value"` is a 400.
pub fn header_params(value: &str) -> Result<Vec<(String, String)>, OAuth1Error> {
    let rest = value
        .strip_prefix("OAuth ")
        .or_else(|| value.strip_prefix("oauth "))
        .ok_or_else(|| {
            bad("The Authorization header must use the OAuth scheme (RFC 5849 section 3.5.1).")
        })?;
    let mut out = Vec::new();
    for item in rest.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| bad("Each Authorization: OAuth parameter must be name=\"value\"."))?;
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(|| bad("Authorization: OAuth parameter values must be quoted."))?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| bad("An Authorization: OAuth parameter is not UTF-8 once decoded."))
        };
        let k = decode(k.trim())?;
        if k == "realm" {
            continue;
        }
        out.push((k, decode(v)?));
    }
    Ok(out)
}

/// Merge the `oauth_*` parameters of every source, refusing one given twice.
pub fn merge<'a>(
    sources: impl IntoIterator<Item = &'a [(String, String)]>,
) -> Result<HashMap<String, String>, OAuth1Error> {
    let mut map = HashMap::new();
    for source in sources {
        for (k, v) in source {
            if !k.starts_with("oauth_") {
                continue;
            }
            if map.insert(k.clone(), v.clone()).is_some() {
                return Err(bad(format!(
                    "The parameter '{}' is given more than once (in the query, the body or the Authorization header); give it once.",
                    k.chars().take(40).collect::<String>()
                )));
            }
        }
    }
    Ok(map)
}

/// Check the parameters of a request at `now`. `with_token`: whether `oauth_token` is
/// required (access token request) or must be absent (request token request).
pub fn parse(
    params: &HashMap<String, String>,
    with_token: bool,
    now: i64,
) -> Result<OAuth1Request, OAuth1Error> {
    let need = |name: &str| {
        params
            .get(name)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| bad(format!("The '{name}' parameter is missing.")))
    };
    let method = need("oauth_signature_method")?;
    if method != "PLAINTEXT" {
        return Err(bad(format!(
            "oauth_signature_method '{}' is not supported: use PLAINTEXT, as Adobe Wave requires (it lets secrets stay hashed; the transport is TLS).",
            method.chars().take(40).collect::<String>()
        )));
    }
    if let Some(v) = params.get("oauth_version")
        && v != "1.0"
    {
        return Err(bad("oauth_version must be 1.0 when it is given."));
    }
    let consumer_key = need("oauth_consumer_key")?;
    let signature = need("oauth_signature")?;
    let nonce = need("oauth_nonce")?;
    if nonce.len() > 128 || nonce.chars().any(|c| c.is_control()) {
        return Err(bad("oauth_nonce must be at most 128 printable characters."));
    }
    let ts = need("oauth_timestamp")?;
    if ts.len() > 12 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            "oauth_timestamp must be a whole number of seconds since 1970-01-01T00:00:00Z.",
        ));
    }
    let timestamp: i64 = ts
        .parse()
        .map_err(|_| bad("oauth_timestamp is out of range."))?;
    let token = params.get("oauth_token").filter(|t| !t.is_empty()).cloned();
    match (with_token, &token) {
        (true, None) => {
            return Err(bad(
                "The 'oauth_token' parameter (the request token) is missing.",
            ));
        }
        (false, Some(_)) => {
            return Err(bad("A request token request takes no oauth_token."));
        }
        _ => {}
    }
    let (consumer_secret, token_secret) = plaintext_secrets(&signature)?;
    if (now - timestamp).abs() > TIMESTAMP_WINDOW {
        return Err(OAuth1Error::Unauthorized(format!(
            "oauth_timestamp is {} s from the server's clock; it must be within {TIMESTAMP_WINDOW} s. Check the clock of the calling machine.",
            (now - timestamp).abs()
        )));
    }
    Ok(OAuth1Request {
        consumer_key,
        token,
        consumer_secret,
        token_secret,
        timestamp,
        nonce,
    })
}

/// Split a PLAINTEXT signature (section 3.4.4): `encode(consumer secret) & encode(token secret)`.
/// The vendor's request token example sends the consumer secret alone; that is read as an
/// empty token secret.
fn plaintext_secrets(signature: &str) -> Result<(String, String), OAuth1Error> {
    let (c, t) = signature.split_once('&').unwrap_or((signature, ""));
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad("oauth_signature is not UTF-8 once decoded."))
    };
    Ok((decode(c)?, decode(t)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const NOW: i64 = 1_226_366_624;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("oauth_consumer_key", "publisher"),
            ("oauth_signature_method", "PLAINTEXT"),
            ("oauth_signature", "password123&4e9dc"),
            ("oauth_timestamp", "1226366624"),
            ("oauth_nonce", "foobar"),
            ("oauth_token", "47a6"),
        ]
    }

    #[test]
    fn waves_access_token_request_parses() {
        let r = parse(&params(&base()), true, NOW).unwrap();
        assert_eq!(r.consumer_secret, "password123");
        assert_eq!(r.token_secret, "4e9dc");
        assert_eq!(r.token.as_deref(), Some("47a6"));
    }

    #[test]
    fn other_signature_methods_are_refused_by_name() {
        let mut p = params(&base());
        p.insert("oauth_signature_method".into(), "HMAC-SHA1".into());
        let e = parse(&p, true, NOW).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.detail().contains("PLAINTEXT"), "{e:?}");
    }

    #[test]
    fn a_stale_timestamp_is_401_and_the_window_is_inclusive() {
        assert!(parse(&params(&base()), true, NOW + TIMESTAMP_WINDOW).is_ok());
        let e = parse(&params(&base()), true, NOW + TIMESTAMP_WINDOW + 1).unwrap_err();
        assert_eq!(e.status(), 401);
    }

    #[test]
    fn missing_and_misplaced_parameters_are_400() {
        for name in [
            "oauth_consumer_key",
            "oauth_nonce",
            "oauth_signature",
            "oauth_timestamp",
        ] {
            let mut p = params(&base());
            p.remove(name);
            assert_eq!(parse(&p, true, NOW).unwrap_err().status(), 400, "{name}");
        }
        assert_eq!(
            parse(&params(&base()), false, NOW).unwrap_err().status(),
            400
        );
        let mut p = params(&base());
        p.insert("oauth_version".into(), "2.0".into());
        assert_eq!(parse(&p, true, NOW).unwrap_err().status(), 400);
    }

    #[test]
    fn the_authorization_header_is_decoded_and_duplicates_refused() {
        let h = header_params(
            r#"OAuth realm="x", oauth_consumer_key="k%20y", oauth_signature="a%26b""#,
        )
        .unwrap();
        assert_eq!(
            h,
            vec![
                ("oauth_consumer_key".to_owned(), "k y".to_owned()),
                ("oauth_signature".to_owned(), "a&b".to_owned())
            ]
        );
        let q = vec![("oauth_consumer_key".to_owned(), "k".to_owned())];
        assert!(merge([h.as_slice(), q.as_slice()]).is_err());
        assert!(header_params("Basic abc").is_err());
        assert!(header_params("OAuth oauth_nonce=unquoted").is_err());
    }
}
