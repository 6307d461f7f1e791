//! The denial catalogue as one table: each code's stable text, HTTP status, title and
//! `type` slug, read by every answer (the gateway, `portcullis-verify`, metrics, docs).
//! A new code is a variant, its row in the table (with what to do about it, for the
//! console), its place in [`Code::ALL`] (the array lengths grow by one), the detail
//! written where its check fails (core's `gateway/` modules, or the server's
//! `gateway/check.rs` and `edge.rs`), and its row in the reference's table of codes
//! (`docs/reference.md`).

/// A denial code of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidRequest,
    InvalidToken,
    TokenExpired,
    MissingProductContext,
    InsufficientScope,
    SandboxNotWritable,
    InvalidApiKey,
    OrgDisabled,
    OrgMismatch,
    SandboxNotAccessible,
    /// Over a failure limit or the app's request quota; `Retry-After` says when to retry.
    RateLimited,
    /// Not in the vendors' catalogues: the proxy named a resource this server does not know.
    UnknownResource,
    // DPoP (RFC 9449): sender-constrained tokens, one code per check of the proof.
    DpopProofMissing,
    DpopProofMalformed,
    DpopProofType,
    DpopAlgNotAllowed,
    DpopKeyInvalid,
    DpopPrivateKey,
    DpopBadSignature,
    DpopWrongMethod,
    DpopWrongUri,
    DpopStale,
    DpopWrongAth,
    DpopNonceRequired,
    DpopReplayed,
    DpopKeyMismatch,
    DpopDowngrade,
}

/// One row of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub code: Code,
    /// The stable code, always a string.
    pub text: &'static str,
    pub status: u16,
    pub title: &'static str,
    /// `type` is `urn:portcullis:error:<slug>`.
    pub slug: &'static str,
    /// A failed authentication, counted by the failure limits: the credential was
    /// malformed, wrong, or not the one named. Expiry is not counted (clients
    /// legitimately use a token until it expires), nor are authorization refusals.
    pub auth_failure: bool,
    /// What the app's developer or operator does about it, in a sentence: shown beside
    /// the code's count on an app's usage in the console. The refusal's own detail says
    /// which product, scope or client it was.
    pub fix: &'static str,
}

const fn row(
    code: Code,
    text: &'static str,
    status: u16,
    title: &'static str,
    slug: &'static str,
    auth_failure: bool,
    fix: &'static str,
) -> Entry {
    Entry {
        code,
        text,
        status,
        title,
        slug,
        auth_failure,
        fix,
    }
}

const INVALID: &str = "Invalid authorization token";

/// The catalogue, in its order (and the order of [`Code`]'s variants).
pub const CATALOGUE: [Entry; 27] = [
    row(
        Code::InvalidRequest,
        "EXEG-0500-401",
        401,
        INVALID,
        "invalid-request",
        true,
        "Send what the gateway needs with every call: a well-formed token (or the app's key and secret), the app's client id as the API key header and the organization header; the refusal's detail names what was missing.",
    ),
    row(
        Code::InvalidToken,
        "EXEG-0502-401",
        401,
        INVALID,
        "invalid-token",
        true,
        "Request a new token from /oauth/token: this one was revoked, issued for another audience, signed by a key the server no longer has, or belongs to a secret or app that was deleted.",
    ),
    row(
        Code::TokenExpired,
        "EXEG-0503-401",
        401,
        INVALID,
        "token-expired",
        false,
        "Request a new token: this one expired. Get a fresh token shortly before expires_in runs out instead of reusing the old one.",
    ),
    row(
        Code::MissingProductContext,
        "EXEG-0504-401",
        401,
        "Required product context is missing",
        "missing-product-context",
        false,
        "Give the app access to the resource's product (the app's products); if the organization lacks the product itself, a platform administrator adds it to the organization.",
    ),
    row(
        Code::InsufficientScope,
        "EXEG-0505-401",
        401,
        "Required authorization token scope is missing",
        "insufficient-scope",
        false,
        "Give the app the scope the resource requires (its own scopes or its permission group), then request a new token that includes it.",
    ),
    row(
        Code::SandboxNotWritable,
        "EXEG-0506-401",
        401,
        "Sandbox not accessible for write",
        "sandbox-not-writable",
        false,
        "Give the app write access to the resource's sandbox (the app's sandboxes), or send only reads (GET, HEAD, OPTIONS).",
    ),
    row(
        Code::InvalidApiKey,
        "403003",
        403,
        "Api Key is invalid",
        "invalid-api-key",
        true,
        "Send the app's own client id as the API key: it must be the client the token was issued to (or whose secret is sent), not another app's or a made-up one.",
    ),
    row(
        Code::OrgDisabled,
        "PCS-0401-401",
        401,
        "Organization is not active",
        "org-disabled",
        false,
        "The organization is suspended or disabled: a platform administrator makes it active again, then the app requests a new token (disabling ends every token issued before).",
    ),
    row(
        Code::OrgMismatch,
        "PCS-0403-403",
        403,
        "Organization mismatch",
        "org-mismatch",
        false,
        "Send the app's own organization id as the organization header, and call only resources of that organization.",
    ),
    row(
        Code::SandboxNotAccessible,
        "PCS-0407-403",
        403,
        "Sandbox not accessible",
        "sandbox-not-accessible",
        false,
        "Give the app read or write access to the resource's sandbox (the app's sandboxes).",
    ),
    row(
        Code::RateLimited,
        "PCS-0429-429",
        429,
        "Too many requests",
        "rate-limited",
        false,
        "Slow down: the app is over its request quota or a failure limit. Retry after the Retry-After header's seconds, or raise the app's quota.",
    ),
    row(
        Code::UnknownResource,
        "PCS-0404-404",
        404,
        "Unknown resource",
        "unknown-resource",
        false,
        "Fix the proxy's resource id: it names no resource of this server (deleted, or mistyped). Copy the id from the resource's page.",
    ),
    row(
        Code::DpopProofMissing,
        "PCS-0441-401",
        401,
        "DPoP proof missing",
        "dpop-proof-missing",
        true,
        "Send exactly one DPoP header with a proof made for this request whenever the Authorization scheme is DPoP.",
    ),
    row(
        Code::DpopProofMalformed,
        "PCS-0442-401",
        401,
        "DPoP proof malformed",
        "dpop-proof-malformed",
        true,
        "Make the DPoP header one signed JWT with the claims jti, htm, htu, iat and ath; the detail names the part that is wrong.",
    ),
    row(
        Code::DpopProofType,
        "PCS-0443-401",
        401,
        "DPoP proof type",
        "dpop-proof-type",
        true,
        "Set typ to dpop+jwt in the DPoP proof's header; another JWT sent as a proof is refused.",
    ),
    row(
        Code::DpopAlgNotAllowed,
        "PCS-0444-401",
        401,
        "DPoP algorithm not allowed",
        "dpop-alg-not-allowed",
        true,
        "Sign DPoP proofs with an asymmetric key and one of ES256, ES384, Ed25519 (also named EdDSA), RS256 or PS256; none and HMAC are refused.",
    ),
    row(
        Code::DpopKeyInvalid,
        "PCS-0445-401",
        401,
        "DPoP key unusable",
        "dpop-key-invalid",
        true,
        "Put the public key of the client's key pair in the proof header's jwk member, as a JWK of the proof's algorithm.",
    ),
    row(
        Code::DpopPrivateKey,
        "PCS-0446-401",
        401,
        "DPoP proof carries a private key",
        "dpop-private-key",
        true,
        "Remove the private members from the proof's jwk, and replace the key pair: its private key has been sent over the network.",
    ),
    row(
        Code::DpopBadSignature,
        "PCS-0447-401",
        401,
        "DPoP proof signature invalid",
        "dpop-bad-signature",
        true,
        "Sign the DPoP proof with the private key whose public half is in its jwk header member.",
    ),
    row(
        Code::DpopWrongMethod,
        "PCS-0448-401",
        401,
        "DPoP proof for another method",
        "dpop-wrong-method",
        true,
        "Set the proof's htm to the HTTP method of the request it goes with, and make a new proof for every request.",
    ),
    row(
        Code::DpopWrongUri,
        "PCS-0449-401",
        401,
        "DPoP proof for another URI",
        "dpop-wrong-uri",
        true,
        "Set the proof's htu to the URL the client calls (scheme, host and path, no query or fragment); if it already is, the operator sets public_origin to that scheme and host.",
    ),
    row(
        Code::DpopStale,
        "PCS-0450-401",
        401,
        "DPoP proof outside its time window",
        "dpop-stale",
        false,
        "Make a fresh DPoP proof for each request, with iat set to the current time, and keep the client's clock synchronised.",
    ),
    row(
        Code::DpopWrongAth,
        "PCS-0451-401",
        401,
        "DPoP proof for another token",
        "dpop-wrong-ath",
        true,
        "Set the proof's ath to the base64url SHA-256 hash of the access token sent in the Authorization header.",
    ),
    row(
        Code::DpopNonceRequired,
        "PCS-0452-401",
        401,
        "DPoP nonce required",
        "dpop-nonce-required",
        false,
        "Sign the proof again with the nonce from the DPoP-Nonce response header and retry; DPoP clients do this by themselves.",
    ),
    row(
        Code::DpopReplayed,
        "PCS-0453-401",
        401,
        "DPoP proof replayed",
        "dpop-replayed",
        true,
        "Make a new DPoP proof with a fresh jti for every request; a proof is accepted once, on every node.",
    ),
    row(
        Code::DpopKeyMismatch,
        "PCS-0454-401",
        401,
        "DPoP key does not match the token",
        "dpop-key-mismatch",
        true,
        "Sign the proof with the key the token was issued to; a token obtained with another key, or without one, cannot be used with this key.",
    ),
    row(
        Code::DpopDowngrade,
        "PCS-0455-401",
        401,
        "DPoP-bound token sent as bearer",
        "dpop-downgrade",
        true,
        "Send a DPoP-bound token as Authorization: DPoP with a proof of its key; an app that requires DPoP needs a bound token for every call, never a bearer one.",
    ),
];

impl Code {
    /// This code's row of [`CATALOGUE`].
    pub fn entry(self) -> &'static Entry {
        &CATALOGUE[self as usize]
    }
    /// The stable code, always a string.
    pub fn code(self) -> &'static str {
        self.entry().text
    }
    pub fn status(self) -> u16 {
        self.entry().status
    }
    pub fn title(self) -> &'static str {
        self.entry().title
    }
    /// `type` is `urn:portcullis:error:<slug>`.
    pub fn slug(self) -> &'static str {
        self.entry().slug
    }
    /// A failed authentication, counted by the failure limits (see [`Entry::auth_failure`]).
    pub fn is_auth_failure(self) -> bool {
        self.entry().auth_failure
    }
    /// What the app's developer or operator does about it (see [`Entry::fix`]).
    pub fn fix(self) -> &'static str {
        self.entry().fix
    }
    /// One of the DPoP proof's codes: answered with `WWW-Authenticate: DPoP`.
    pub fn is_dpop(self) -> bool {
        self as usize >= Code::DpopProofMissing as usize
    }
    /// `WWW-Authenticate` for this code's 401: `Bearer`, or for a refused DPoP proof or
    /// binding the `DPoP` challenge with its error (RFC 9449 section 7.1) and the
    /// algorithms proofs may use.
    pub fn challenge(self) -> String {
        if !self.is_dpop() {
            return "Bearer".into();
        }
        let error = match self {
            Code::DpopNonceRequired => "use_dpop_nonce",
            Code::DpopKeyMismatch | Code::DpopDowngrade => "invalid_token",
            _ => "invalid_dpop_proof",
        };
        format!(
            "DPoP error=\"{error}\", error_description=\"{}\", algs=\"{}\"",
            self.title(),
            crate::dpop::ALG_NAMES.join(" ")
        )
    }
    /// The code whose stable text is `text` (`"403003"`, `"EXEG-0503-401"`, …).
    pub fn from_text(text: &str) -> Option<Code> {
        CATALOGUE.iter().find(|e| e.text == text).map(|e| e.code)
    }

    /// Every code, in the catalogue's order (for metrics and docs).
    pub const ALL: [Code; 27] = [
        Code::InvalidRequest,
        Code::InvalidToken,
        Code::TokenExpired,
        Code::MissingProductContext,
        Code::InsufficientScope,
        Code::SandboxNotWritable,
        Code::InvalidApiKey,
        Code::OrgDisabled,
        Code::OrgMismatch,
        Code::SandboxNotAccessible,
        Code::RateLimited,
        Code::UnknownResource,
        Code::DpopProofMissing,
        Code::DpopProofMalformed,
        Code::DpopProofType,
        Code::DpopAlgNotAllowed,
        Code::DpopKeyInvalid,
        Code::DpopPrivateKey,
        Code::DpopBadSignature,
        Code::DpopWrongMethod,
        Code::DpopWrongUri,
        Code::DpopStale,
        Code::DpopWrongAth,
        Code::DpopNonceRequired,
        Code::DpopReplayed,
        Code::DpopKeyMismatch,
        Code::DpopDowngrade,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_its_codes_own() {
        for (i, e) in CATALOGUE.iter().enumerate() {
            assert_eq!(e.code as usize, i, "{:?} is out of place", e.code);
            assert_eq!(Code::ALL[i], e.code);
            assert_eq!(Code::from_text(e.text), Some(e.code));
        }
        assert_eq!(Code::from_text("allowed"), None);
    }

    #[test]
    fn every_code_says_what_to_do_in_a_sentence() {
        for e in &CATALOGUE {
            assert!(
                e.fix.len() > 40 && e.fix.len() < 300 && e.fix.ends_with('.'),
                "{}: {:?}",
                e.text,
                e.fix
            );
            let first = e.fix.chars().next().unwrap();
            assert!(first.is_uppercase(), "{}: {:?}", e.text, e.fix);
        }
        // No two codes share their advice: each says what differs.
        for (i, a) in CATALOGUE.iter().enumerate() {
            for b in &CATALOGUE[i + 1..] {
                assert_ne!(a.fix, b.fix, "{} and {}", a.text, b.text);
            }
        }
    }
}
