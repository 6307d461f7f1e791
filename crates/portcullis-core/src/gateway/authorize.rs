//! The checks every presentation shares once the app is known and its org active:
//! product (0504) → scope (0505) → sandbox (0506 for writes, PCS-0407 for reads).

use super::*;

/// The checks every presentation shares once the app is known and its org active:
/// product (0504) → scope (0505) → sandbox (0506 / PCS-0407).
///
/// `token_scopes` is the token's `scope` for token presentations (the effective scopes
/// are its intersection with the app's live scopes); `None` for key + secret, whose
/// effective scopes are the app's live scopes.
pub(super) fn authorize(
    req: &CheckRequest<'_>,
    view: &View,
    resource: &Resource,
    entry: &Arc<AppEntry>,
    org: &Org,
    token_scopes: Option<&str>,
    secret_id: Option<RecordId>,
) -> Result<Allow, Denial> {
    let client_id = entry.app.client_id.as_str();

    // Product context.
    if let Some(product) = &resource.product {
        if !org.products.contains(product) {
            return Err(deny(
                Code::MissingProductContext,
                format!(
                    "The organization '{}' is not entitled to the product '{product}' this resource needs; a platform administrator adds it to the organization's products.",
                    org.id
                ),
            ));
        }
        if !entry.app.products.contains(product) {
            return Err(deny(
                Code::MissingProductContext,
                format!(
                    "The application '{client_id}' is not added to the product '{product}'; add it to the app's products (PATCH /admin/v1/apps/{client_id})."
                ),
            ));
        }
    }

    // Scopes: the token's (its space-separated claim), narrowed to what the app holds
    // now. Answered without building sets: this runs on every request.
    let live = view.scopes_of(&entry.app);
    let in_token = |s: &str| token_scopes.is_none_or(|t| t.split(' ').any(|x| x == s));
    let missing: Vec<&str> = resource
        .scopes
        .iter()
        .map(|s| s.as_str())
        .filter(|s| !(live.contains(s) && in_token(s)))
        .collect();
    if !missing.is_empty() {
        let detail = match token_scopes {
            Some(_) => {
                let how = if missing.iter().all(|n| in_token(n)) {
                    "the application no longer holds it; add it to the app or its permission group"
                } else {
                    "request a token with it (the app must hold it: add it to the app or its permission group if not)"
                };
                format!(
                    "The token lacks the scope(s) '{}' this resource requires: {how}.",
                    missing.join(" ")
                )
            }
            None => format!(
                "The application '{client_id}' lacks the scope(s) '{}' this resource requires; add them to the app or its permission group.",
                missing.join(" ")
            ),
        };
        return Err(deny(Code::InsufficientScope, detail));
    }
    let mut scope = String::new();
    for s in live.iter().map(|s| s.as_str()).filter(|s| in_token(s)) {
        if !scope.is_empty() {
            scope.push(' ');
        }
        scope.push_str(s);
    }

    // Sandbox.
    let access = entry.app.sandboxes.get(&resource.sandbox).copied();
    if req.is_write() {
        if access != Some(SandboxAccess::Write) {
            return Err(deny(
                Code::SandboxNotWritable,
                format!(
                    "The application has no write access to the sandbox '{}'; grant it 'write' in the app's sandboxes.",
                    resource.sandbox
                ),
            ));
        }
    } else if access.is_none() {
        return Err(deny(
            Code::SandboxNotAccessible,
            format!(
                "The application has no access to the sandbox '{}'; grant it 'read' or 'write' in the app's sandboxes.",
                resource.sandbox
            ),
        ));
    }

    Ok(Allow {
        app: Some(Arc::clone(entry)),
        client_id: Some(client_id.to_owned()),
        org: Some(org.id.as_str().to_owned()),
        scope,
        authenticated: true,
        secret_id,
    })
}
