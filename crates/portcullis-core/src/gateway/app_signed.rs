//! A JWT an app signed itself with one of its key pairs, as the bearer at the gateway
//! (the SAP Gigya application keys' bearer tokens).
//!
//! **Which bearer is which.** Portcullis's access tokens always carry `typ: at+jwt` and a
//! `kid` of the server's signing keys. A bearer JWT whose header has another (or no)
//! `typ` and whose `kid` is not a signing key is app-signed: its `kid` names an app key
//! ([`crate::app_jwt::verify_by_kid`] finds the app, checks the key's one algorithm and
//! the signature). Its claims: `iat` required, within ±[`APP_JWT_MAX_SKEW`] s of now;
//! `jti` required and never seen before (spent in the one memory every JWT an app signs
//! goes through); `exp` and `nbf` optional, checked with [`APP_JWT_LEEWAY`] s leeway;
//! `aud` optional, but when present the resource id — never this server or its token
//! endpoint, whose JWTs are RFC 7523 assertions. The credential names the app, so
//! `x-api-key` and the org header are optional and must match when present; the
//! effective scopes are the app's live scopes. App-signed JWTs are single-use, so they
//! never go through the verified-token cache.

use super::authorize::authorize;
use super::*;

/// How far an app-signed JWT's `iat` may be from now, either way (the clock rules of
/// client-made JWTs in `docs/reference.md`).
pub const APP_JWT_MAX_SKEW: i64 = 300;
/// Leeway on an app-signed JWT's `exp` and `nbf` (the same clock rules).
pub const APP_JWT_LEEWAY: i64 = 60;
const FRESH_JWT: &str = "sign a new JWT with iat = now and a fresh jti for every request";
/// The JOSE header of a compact JWS, if its first part is base64url JSON (nothing is
/// verified: this only tells the presentations apart, and names what is wrong).
pub(super) fn raw_header(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine;
    let first = token.split('.').next()?;
    if first.len() > crate::app_jwt::MAX_LEN {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
/// A bearer JWT is app-signed when its header does not say `typ: at+jwt` and its `kid`
/// is not one of the server's signing keys. A bearer whose header is not JSON stays on
/// the access-token path, which explains it.
/// Whether `token` has the three dot-separated parts of a JWS compact serialization
/// (two `memchr` passes over the token; it runs on every bearer request).
pub(super) fn three_segments(token: &str) -> bool {
    token
        .split_once('.')
        .and_then(|(_, rest)| rest.split_once('.'))
        .is_some_and(|(_, last)| !last.contains('.'))
}
pub fn is_app_signed(token: &str, view: &View) -> bool {
    // The common case, answered without decoding: a header exactly as our signer writes
    // it is one of our access tokens (whose shape access_token checks).
    if token
        .split_once('.')
        .is_some_and(|(h, _)| view.is_access_token_header(h))
    {
        return false;
    }
    if !three_segments(token) {
        return false;
    }
    let Some(h) = raw_header(token) else {
        return false;
    };
    let typ = h.get("typ").and_then(|t| t.as_str()).unwrap_or("");
    let access_typ =
        typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt");
    let server_kid = h
        .get("kid")
        .and_then(|k| k.as_str())
        .is_some_and(|k| view.key(k).is_some());
    !access_typ && !server_kid
}
/// A NumericDate claim (RFC 7519 section 2): a JSON number of seconds, fractions dropped.
pub(super) fn numeric_date(claims: &serde_json::Value, name: &str) -> Result<Option<i64>, Denial> {
    match claims.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| {
                deny(
                    Code::InvalidRequest,
                    format!("The JWT's '{name}' claim is not a number of seconds since 1970 (RFC 7519 NumericDate)."),
                )
            }),
    }
}
/// An app-signed bearer JWT (SAP Gigya's application keys): the key its `kid` names says
/// which app it is.
pub(super) fn app_signed(
    req: &CheckRequest<'_>,
    view: &View,
    resource: &Resource,
    token: &str,
    issuer: &str,
    now: i64,
    replay: &dyn JtiCheck,
) -> Result<Allow, Denial> {
    // Well-formed and signed by the app key it names, under that key's algorithm only.
    let alg = raw_header(token)
        .and_then(|h| h.get("alg").and_then(|a| a.as_str()).map(str::to_owned))
        .unwrap_or_default();
    if !["RS256", "ES256"].contains(&alg.as_str()) {
        return Err(deny(
            Code::InvalidToken,
            format!(
                "The JWT's alg '{}' is not allowed: sign app JWTs with your key pair's algorithm (RS256 or ES256).",
                short(&alg)
            ),
        ));
    }
    let (claims, entry, _key) =
        verify_by_kid::<serde_json::Value>(token, view, now).map_err(|e| match e {
            AppJwtError::Malformed => deny(
                Code::InvalidRequest,
                "The bearer JWT is not well-formed: a JWS of base64url JSON header and claims, signed with your key pair's private key.",
            ),
            AppJwtError::NoKid => deny(
                Code::InvalidRequest,
                "The bearer JWT's header has no 'kid': set it to the kid of the application key pair that signs it (or, for a Portcullis access token, send it unchanged).",
            ),
            AppJwtError::UnknownKid(kid) => deny(
                Code::InvalidToken,
                format!(
                    "No application key has the kid '{kid}': it may have been deleted (with its app); create a key pair and sign with its private key, setting the header's kid to its kid."
                ),
            ),
            other => deny(
                Code::InvalidToken,
                format!("The app-signed JWT is not valid: {other}."),
            ),
        })?;
    if !claims.is_object() {
        return Err(deny(
            Code::InvalidRequest,
            "The bearer JWT's claims are not a JSON object.",
        ));
    }
    let client_id = entry.app.client_id.as_str();

    // Valid: fresh, in its time window, for us, and never seen.
    let iat = numeric_date(&claims, "iat")?.ok_or_else(|| {
        deny(
            Code::InvalidToken,
            format!("The app-signed JWT has no 'iat' claim: {FRESH_JWT}."),
        )
    })?;
    if now.abs_diff(iat) > APP_JWT_MAX_SKEW.unsigned_abs() {
        let when = if iat > now {
            format!("{} s in the future", iat.abs_diff(now))
        } else {
            format!("{} s ago", now.abs_diff(iat))
        };
        return Err(deny(
            Code::InvalidToken,
            format!(
                "The app-signed JWT was issued at {} ({when}); it must be within {APP_JWT_MAX_SKEW} s of the server's time: {FRESH_JWT} (and check the clock of the machine that signs).",
                rfc3339(iat)
            ),
        ));
    }
    if let Some(exp) = numeric_date(&claims, "exp")?
        && now > exp.saturating_add(APP_JWT_LEEWAY)
    {
        return Err(deny(
            Code::InvalidToken,
            format!(
                "The app-signed JWT expired at {}, {} s ago: {FRESH_JWT}.",
                rfc3339(exp),
                now.abs_diff(exp)
            ),
        ));
    }
    if let Some(nbf) = numeric_date(&claims, "nbf")?
        && nbf > now.saturating_add(APP_JWT_LEEWAY)
    {
        return Err(deny(
            Code::InvalidToken,
            format!(
                "The app-signed JWT is not valid before {} ('nbf', {} s from now): {FRESH_JWT}.",
                rfc3339(nbf),
                nbf.abs_diff(now)
            ),
        ));
    }
    // One JWT, one use: an app-signed bearer JWT is addressed to a resource (or to
    // nothing); one addressed to this server or its token endpoint is an RFC 7523
    // assertion, and a service-account JWT names `<issuer>/c/<client>`. Neither is good here.
    if let Some(aud) = claims.get("aud") {
        let auds: Vec<&str> = match aud {
            serde_json::Value::Array(list) => list.iter().filter_map(|a| a.as_str()).collect(),
            one => one.as_str().into_iter().collect(),
        };
        if auds.iter().any(|a| a.starts_with(issuer)) {
            return Err(deny(
                Code::InvalidToken,
                format!(
                    "The JWT's 'aud' names this server ('{}'): it is a token-endpoint assertion or a service-account JWT, not an app-signed bearer JWT. Sign a separate JWT for the API with 'aud' set to this resource ('{}') or left out.",
                    short(
                        auds.iter()
                            .find(|a| a.starts_with(issuer))
                            .copied()
                            .unwrap_or("")
                    ),
                    resource.id
                ),
            ));
        }
        if !auds.contains(&resource.id.as_str()) {
            return Err(deny(
                Code::InvalidToken,
                format!(
                    "The app-signed JWT's 'aud' is not this resource ('{}'): set it to the resource id, or leave it out.",
                    resource.id
                ),
            ));
        }
    }
    let jti = claims
        .get("jti")
        .and_then(|j| j.as_str())
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| {
            deny(
                Code::InvalidToken,
                format!(
                    "The app-signed JWT has no 'jti' claim (a unique string of at most 256 characters, like a UUID): {FRESH_JWT}."
                ),
            )
        })?;
    active_app(entry)?;
    // Remembered until the JWT's iat leaves the accepted window: no later replay can pass.
    match replay.first_use(client_id, jti, iat + APP_JWT_MAX_SKEW, now) {
        Ok(()) => {}
        Err(Replay::Replayed) => return Err(replayed()),
        Err(Replay::Full) => {
            return Err(Denial {
                code: Code::RateLimited,
                detail: "Too many app-signed JWTs are being remembered against replay right now; retry shortly.".into(),
                retry_after: Some(5),
            });
        }
    }

    let org = named_app(
        req,
        view,
        resource,
        entry,
        "the JWT's signing key belongs to",
    )?;
    authorize(req, view, resource, entry, org, None, None)
}
/// The refusal of an app-signed JWT whose `jti` was seen before (by this node, another
/// node or a verifier sharing the replay store).
pub fn replayed() -> Denial {
    deny(
        Code::InvalidToken,
        format!("The app-signed JWT was already used (its jti was seen before): {FRESH_JWT}."),
    )
}
