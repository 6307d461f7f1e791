//! A Portcullis access token at the gateway: `Authorization: Bearer` with `x-api-key` and
//! the org header. Checks the headers that go with it, the token (through the verified-
//! token cache: signature, issuer, expiry), its audience and live state, that `x-api-key`
//! is the client it was issued to and the org header its org, then [`super::authorize`].

use super::app_signed::three_segments;
use super::authorize::authorize;
use super::*;

pub(super) fn access_token(
    req: &CheckRequest<'_>,
    view: &View,
    resource: &Resource,
    token: &str,
    issuer: &str,
    now: i64,
    verify: &Verify<'_>,
) -> Result<Allow, Denial> {
    let (akh, orgh) = (req.names.api_key, req.names.org);
    // Well-formed: the headers that go with an access token.
    let api_key = req.api_key.filter(|k| !k.is_empty()).ok_or_else(|| {
        deny(Code::InvalidRequest, format!("The {akh} header is missing: send your application's client id (API key) with the access token."))
    })?;
    let org_header = req.org_header.filter(|o| !o.is_empty()).ok_or_else(|| {
        deny(Code::InvalidRequest, format!("The {orgh} header is missing: send your organization id (like 4F2A9C1B7D3E5A6B8C0D1E2F@Org) with the access token."))
    })?;
    if !three_segments(token) {
        return Err(deny(
            Code::InvalidRequest,
            "The bearer token is not a well-formed JWT (three base64url parts separated by dots).",
        ));
    }

    // Valid.
    let claims = verify(token).map_err(|e| match e {
        TokenError::Malformed | TokenError::Refused(_) => deny(
            Code::InvalidRequest,
            format!("The bearer token is not well-formed: {e}."),
        ),
        TokenError::Expired(exp) => deny(
            Code::TokenExpired,
            format!(
                "The token expired at {}, {} s ago. Request a new token.",
                rfc3339(exp),
                now.abs_diff(exp)
            ),
        ),
        other => deny(
            Code::InvalidToken,
            format!(
                "The token is not valid: {other}. Request a new token from {issuer}/oauth/token."
            ),
        ),
    })?;
    if claims.aud != issuer && claims.aud != resource.id.as_str() {
        return Err(deny(
            Code::InvalidToken,
            format!(
                "The token's audience '{}' is neither this server nor this resource; request a token without 'resource' or for this one.",
                short(&claims.aud)
            ),
        ));
    }
    let mut org_inactive = None;
    match check_live(&claims, view) {
        Ok(()) => {}
        Err(e @ (Inactive::OrgDisabled | Inactive::IssuedBeforeOrgDisabled)) => {
            org_inactive = Some(e)
        }
        Err(e) => {
            return Err(deny(
                Code::InvalidToken,
                format!("The token is no longer valid: {e}."),
            ));
        }
    }

    // x-api-key names the client the token was issued to.
    if api_key != claims.client_id {
        let detail = if view.app(api_key).is_none() {
            format!(
                "The {akh} '{}' is not the API key of any application. The token was issued to client '{}'; send that as {akh}.",
                short(api_key),
                claims.client_id
            )
        } else {
            format!(
                "The {akh} '{}' is another application's API key: the token was issued to client '{}'. Send the client id the token belongs to, or a token of '{}'.",
                short(api_key),
                claims.client_id,
                short(api_key)
            )
        };
        return Err(deny(Code::InvalidApiKey, detail));
    }
    if org_header != claims.org {
        return Err(deny(
            Code::OrgMismatch,
            format!(
                "The {orgh} header '{}' differs from the token's organization '{}'.",
                short(org_header),
                claims.org
            ),
        ));
    }
    if resource.org_id.as_str() != claims.org {
        return Err(deny(
            Code::OrgMismatch,
            format!(
                "The resource belongs to organization '{}', not to the token's '{}'.",
                resource.org_id, claims.org
            ),
        ));
    }
    match (org_inactive, view.org(&claims.org)) {
        (None, _) => {}
        // The org is active again: the token died with the earlier disabling.
        (Some(Inactive::IssuedBeforeOrgDisabled), Some(o)) if o.status == OrgStatus::Active => {
            return Err(deny(
                Code::InvalidToken,
                format!(
                    "The token was issued before the organization '{}' was disabled{}; disabling ends every token issued until then, and re-enabling does not bring them back. Request a new token from {issuer}/oauth/token.",
                    claims.org,
                    o.tokens_invalid_before
                        .map(|t| format!(" (at {})", rfc3339(t)))
                        .unwrap_or_default()
                ),
            ));
        }
        (Some(e), _) => {
            return Err(deny(
                Code::OrgDisabled,
                format!("The organization '{}' is not active: {e}.", claims.org),
            ));
        }
    }
    // check_live passed or only the org failed, so the app and the org exist.
    let entry = view.app(&claims.client_id).ok_or_else(|| {
        deny(
            Code::InvalidToken,
            "The application of the token no longer exists.",
        )
    })?;
    let org = active_org(view, &claims.org)?;
    authorize(req, view, resource, entry, org, Some(&claims.scope), None)
}
