//! DPoP proofs (RFC 9449): the JWT a client signs with its own key for one HTTP request,
//! carrying that key's public half in its header, so that a token bound to the key
//! (`cnf.jkt`, the key's RFC 7638 thumbprint) is useless to anyone without the private
//! half.
//!
//! [`verify_proof`] makes the checks of RFC 9449 section 4.3 that need no memory: the
//! proof is one JWS (the structural checks of [`crate::jose`] first), `typ` is
//! `dpop+jwt`, `alg` is one of [`ALGS`] (asymmetric only), `jwk` is a public key (a
//! private or symmetric member is refused) and the signature verifies with it; `htm` and
//! `htu` name the request (`htu` compared without query and fragment), `iat` is within
//! the window, `ath` is the hash of the access token when one is presented, and `nonce`
//! is one the server gave when it asks for one ([`Nonces`]). That the proof's `jti` is used
//! only once is the caller's: it is returned, to be spent with the server's other `jti`s.

use crate::jose;
use crate::secret::HashKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

/// The signature algorithms a proof may use: asymmetric ones only (a proof signed with a
/// shared secret proves nothing about a key pair). Ed25519 has two names: `EdDSA` and the
/// fully-specified `Ed25519` (RFC 9864), which current clients (openid-client's
/// oauth4webapi among them) put in the header of every proof signed with an Ed25519 key.
pub const ALGS: [Algorithm; 6] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];

/// Their names, as discovery metadata lists them (`dpop_signing_alg_values_supported`).
pub const ALG_NAMES: [&str; 6] = ["ES256", "ES384", "Ed25519", "EdDSA", "RS256", "PS256"];

/// Members of a JWK that only a private or symmetric key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The longest `jti` accepted: enough for any random id, short enough to keep in memory.
pub const MAX_JTI: usize = 128;

/// What the proof must match: the request it was made for.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The request's method (`GET`, `POST`, …).
    pub htm: &'a str,
    /// The request's URI as the client saw it: scheme, host, path (a query or fragment is
    /// ignored on both sides).
    pub htu: &'a str,
    /// Unix seconds now.
    pub now: i64,
    /// How old a proof may be, in seconds.
    pub max_age: i64,
    /// How far in the future a proof's `iat` may be (the client's clock running ahead).
    pub leeway: i64,
    /// The access token presented with the proof, whose hash `ath` must be; `None` at the
    /// token endpoint, where there is none yet.
    pub access_token: Option<&'a str>,
    /// When the server requires a nonce: how it made the ones it gave (`DPoP-Nonce`).
    pub nonce: Option<Nonces<'a>>,
}

/// Server-provided nonces (RFC 9449 section 8), made without memory: a nonce is a time
/// window's number and an HMAC of it under the server's hash key, so every node with the
/// same store makes and accepts the same nonces. One is accepted during its own window
/// and the next, so a nonce lives between one and two `period`s.
#[derive(Clone, Copy)]
pub struct Nonces<'a> {
    pub key: &'a HashKey,
    /// Seconds per window.
    pub period: i64,
}

impl std::fmt::Debug for Nonces<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nonces({} s)", self.period)
    }
}

impl Nonces<'_> {
    fn window(&self, now: i64) -> i64 {
        now.div_euclid(self.period.max(1))
    }

    fn for_window(&self, window: i64) -> String {
        let tag = self.key.hash_text(&format!("dpop-nonce:{window}"));
        format!("{window:x}.{}", B64.encode(&tag.0[..18]))
    }

    /// The nonce to give a client now.
    pub fn current(&self, now: i64) -> String {
        self.for_window(self.window(now))
    }

    /// Whether `nonce` is one this server gave in the current window or the one before.
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        let Some(window) = nonce
            .split_once('.')
            .and_then(|(w, _)| i64::from_str_radix(w, 16).ok())
        else {
            return false;
        };
        let current = self.window(now);
        if window != current && window != current - 1 {
            return false;
        }
        let expected = self.for_window(window);
        bool::from(subtle::ConstantTimeEq::ct_eq(
            nonce.as_bytes(),
            expected.as_bytes(),
        ))
    }
}

/// A proof that passed: the key's thumbprint and the `jti` to spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key, base64url: a bound token's
    /// `cnf.jkt`.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
}

/// Why a proof is refused. The messages are for the client's developer: each says what
/// to change, and none repeats the proof or the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the DPoP proof is not a JWS: {0}")]
    Malformed(String),
    #[error("the DPoP proof's header must have typ 'dpop+jwt'")]
    WrongType,
    #[error("the DPoP proof's alg must be one of ES256, ES384, Ed25519, EdDSA, RS256, PS256")]
    AlgNotAllowed,
    #[error("the DPoP proof's header must carry the public key it is signed with as 'jwk'")]
    NoKey,
    #[error("the DPoP proof's 'jwk' holds a private or symmetric key: send the public key only")]
    PrivateKey,
    #[error("the DPoP proof's 'jwk' is not a usable public key for its alg")]
    BadKey,
    #[error("the DPoP proof's signature does not verify with the key in its header")]
    BadSignature,
    #[error("the DPoP proof has no valid '{0}' claim")]
    MissingClaim(&'static str),
    #[error("the DPoP proof's htm is for another method: sign it for {expected}")]
    WrongMethod { expected: String },
    #[error(
        "the DPoP proof's htu is for another URI: sign it for {expected} (without query and fragment)"
    )]
    WrongUri { expected: String },
    #[error(
        "the DPoP proof is too old (iat more than {max_age} s ago): make a new proof for each request"
    )]
    Stale { max_age: i64 },
    #[error("the DPoP proof's iat is in the future: check the client's clock")]
    Future,
    #[error("the DPoP proof's ath is missing or is not the hash of the access token sent with it")]
    WrongAth,
    #[error(
        "the DPoP proof must carry a current nonce from this server: sign it again with the nonce of the DPoP-Nonce response header"
    )]
    WrongNonce,
}

impl ProofError {
    /// The message as a sentence, for a refusal's detail or description.
    pub fn sentence(&self) -> String {
        let text = self.to_string();
        let mut chars = text.chars();
        let first = chars.next().map(|c| c.to_ascii_uppercase());
        format!("{}{}.", first.unwrap_or(' '), chars.as_str())
    }
}

#[derive(Deserialize)]
struct Claims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<i64>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// The base64url SHA-256 of an access token: a proof's `ath`.
pub fn ath(access_token: &str) -> String {
    B64.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        access_token.as_bytes(),
    ))
}

/// `uri` without its query and fragment, as `htu` is compared (RFC 9449 section 4.3).
pub fn htu_of(uri: &str) -> &str {
    let end = uri.find(['?', '#']).unwrap_or(uri.len());
    &uri[..end]
}

/// `uri` without query and fragment, compared as RFC 3986 section 6 has it for `htu`:
/// scheme and host in lower case, the scheme's default port left out, an empty path as
/// `/`. The path itself is compared as sent.
fn normal_htu(uri: &str) -> String {
    let uri = htu_of(uri);
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_owned();
    };
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let mut authority = authority.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => "",
    };
    if !default.is_empty() && authority.ends_with(default) {
        authority.truncate(authority.len() - default.len());
    }
    format!("{scheme}://{authority}{path}")
}

/// The key's type and size are the ones `alg` signs with: an EC key of the alg's curve
/// with full-length coordinates (RFC 7518 section 6.2.1), an Ed25519 key, or an RSA key
/// of at least 2048 bits.
fn check_key_shape(
    alg: Algorithm,
    jwk: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ProofError> {
    let text = |m: &str| jwk.get(m).and_then(|v| v.as_str()).unwrap_or("");
    let len = |m: &str| B64.decode(text(m)).map(|b| b.len()).unwrap_or(0);
    let ok = match alg {
        Algorithm::ES256 => {
            text("kty") == "EC" && text("crv") == "P-256" && len("x") == 32 && len("y") == 32
        }
        Algorithm::ES384 => {
            text("kty") == "EC" && text("crv") == "P-384" && len("x") == 48 && len("y") == 48
        }
        Algorithm::EdDSA => text("kty") == "OKP" && text("crv") == "Ed25519" && len("x") == 32,
        _ => {
            let n = B64.decode(text("n")).unwrap_or_default();
            let bits = n
                .iter()
                .position(|b| *b != 0)
                .map_or(0, |i| (n.len() - i) * 8);
            text("kty") == "RSA" && bits >= 2048 && len("e") > 0
        }
    };
    if ok { Ok(()) } else { Err(ProofError::BadKey) }
}

/// Check `proof` against the request it came with; see the module's documentation.
pub fn verify_proof(proof: &str, want: &Expected<'_>) -> Result<Proof, ProofError> {
    jose::precheck(proof).map_err(|e| ProofError::Malformed(e.to_string()))?;
    let header_b64 = proof.split('.').next().unwrap_or("");
    let header: serde_json::Value = B64
        .decode(header_b64)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(|| ProofError::Malformed("the header is not base64url JSON".into()))?;
    let typ = header.get("typ").and_then(|t| t.as_str()).unwrap_or("");
    if !typ.eq_ignore_ascii_case("dpop+jwt") {
        return Err(ProofError::WrongType);
    }
    let alg_name = header
        .get("alg")
        .and_then(|a| a.as_str())
        .ok_or(ProofError::AlgNotAllowed)?;
    let alg = ALG_NAMES
        .iter()
        .position(|n| *n == alg_name)
        .map(|i| ALGS[i])
        .ok_or(ProofError::AlgNotAllowed)?;
    let jwk_value = header.get("jwk").ok_or(ProofError::NoKey)?;
    let members = jwk_value.as_object().ok_or(ProofError::BadKey)?;
    if PRIVATE_MEMBERS.iter().any(|m| members.contains_key(*m)) {
        return Err(ProofError::PrivateKey);
    }
    check_key_shape(alg, members)?;
    // jsonwebtoken knows no `alg` named Ed25519, in a JWK or a header: the JWK's optional
    // `alg` goes (the thumbprint does not include it), and the signature is verified
    // below under the algorithm the header's name stands for.
    let mut jwk_value = jwk_value.clone();
    if let Some(m) = jwk_value.as_object_mut()
        && m.get("alg").and_then(|a| a.as_str()) == Some("Ed25519")
    {
        m.remove("alg");
    }
    let jwk: Jwk = serde_json::from_value(jwk_value).map_err(|_| ProofError::BadKey)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| ProofError::BadKey)?;

    // Three segments, as precheck made sure.
    let (message, signature) = proof.rsplit_once('.').unwrap_or((proof, ""));
    match jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, alg) {
        Ok(true) => {}
        Ok(false) => return Err(ProofError::BadSignature),
        Err(e) => {
            return Err(match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => ProofError::BadSignature,
                _ => ProofError::BadKey,
            });
        }
    }
    let claims: Claims = message
        .split_once('.')
        .and_then(|(_, payload)| B64.decode(payload).ok())
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or_else(|| ProofError::Malformed("the claims are not a DPoP proof's".into()))?;

    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI)
        .ok_or(ProofError::MissingClaim("jti"))?;
    let htm = claims.htm.ok_or(ProofError::MissingClaim("htm"))?;
    if htm != want.htm {
        return Err(ProofError::WrongMethod {
            expected: want.htm.to_owned(),
        });
    }
    let htu = claims.htu.ok_or(ProofError::MissingClaim("htu"))?;
    if normal_htu(&htu) != normal_htu(want.htu) {
        return Err(ProofError::WrongUri {
            expected: htu_of(want.htu).to_owned(),
        });
    }
    let iat = claims.iat.ok_or(ProofError::MissingClaim("iat"))?;
    if iat < want.now.saturating_sub(want.max_age) {
        return Err(ProofError::Stale {
            max_age: want.max_age,
        });
    }
    if iat > want.now.saturating_add(want.leeway) {
        return Err(ProofError::Future);
    }
    if let Some(token) = want.access_token {
        let expected = ath(token);
        let given = claims.ath.unwrap_or_default();
        // Both are public hashes of what the client sent; compared in constant time all
        // the same, as every credential-derived value here is.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            expected.as_bytes(),
        )) {
            return Err(ProofError::WrongAth);
        }
    }
    if let Some(nonces) = want.nonce
        && !claims
            .nonce
            .as_deref()
            .is_some_and(|n| nonces.accepts(n, want.now))
    {
        return Err(ProofError::WrongNonce);
    }
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| ProofError::BadKey)?;
    Ok(Proof { jkt, jti, iat })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{Alg, generate_key};
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::{Value, json};

    const NOW: i64 = 1_800_000_000;
    const URI: &str = "https://api.example/orders/7";

    /// A client key: its PKCS#8 and public JWK (without the server's `kid`, `use`, `alg`
    /// members, as a client sends it).
    fn client_key() -> (Vec<u8>, Value) {
        let k = generate_key(Alg::ES256, "client").unwrap();
        let mut jwk = k.public_jwk.clone();
        for m in ["kid", "use", "alg"] {
            jwk.as_object_mut().unwrap().remove(m);
        }
        (k.pkcs8, jwk)
    }

    fn sign(pkcs8: &[u8], typ: &str, jwk: &Value, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::ES256);
        h.typ = Some(typ.into());
        h.jwk = Some(serde_json::from_value(jwk.clone()).unwrap());
        let mut token = jsonwebtoken::encode(&h, claims, &EncodingKey::from_ec_der(pkcs8)).unwrap();
        if jwk.get("d").is_some() {
            // jsonwebtoken's Jwk drops private members: put the raw header back.
            let mut header: Value =
                serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap())
                    .unwrap();
            header["jwk"] = jwk.clone();
            let rest = token.split_once('.').unwrap().1.to_owned();
            token = format!("{}.{rest}", B64.encode(header.to_string()));
        }
        token
    }

    fn claims() -> Value {
        json!({"jti": "j-1", "htm": "GET", "htu": URI, "iat": NOW, "ath": ath("tok")})
    }

    fn want() -> Expected<'static> {
        Expected {
            htm: "GET",
            htu: URI,
            now: NOW,
            max_age: 60,
            leeway: 5,
            access_token: Some("tok"),
            nonce: None,
        }
    }

    #[test]
    fn a_proof_for_the_request_passes_with_its_keys_thumbprint() {
        let (pkcs8, jwk) = client_key();
        let p = verify_proof(&sign(&pkcs8, "dpop+jwt", &jwk, &claims()), &want()).unwrap();
        assert_eq!(p.jti, "j-1");
        assert_eq!(p.iat, NOW);
        let parsed: Jwk = serde_json::from_value(jwk.clone()).unwrap();
        assert_eq!(p.jkt, parsed.thumbprint(ThumbprintHash::SHA256).unwrap());
        // The query of either side does not count.
        let mut c = claims();
        c["htu"] = json!(format!("{URI}?a=1"));
        let w = Expected {
            htu: "https://api.example/orders/7#x",
            ..want()
        };
        assert!(verify_proof(&sign(&pkcs8, "dpop+jwt", &jwk, &c), &w).is_ok());
    }

    #[test]
    fn htu_compares_scheme_and_host_in_any_case_and_without_default_ports() {
        let (pkcs8, jwk) = client_key();
        for htu in [
            "HTTPS://API.Example/orders/7",
            "https://api.example:443/orders/7",
            "https://api.example/orders/7?x=1#f",
        ] {
            let mut c = claims();
            c["htu"] = json!(htu);
            assert!(
                verify_proof(&sign(&pkcs8, "dpop+jwt", &jwk, &c), &want()).is_ok(),
                "{htu}"
            );
        }
        for htu in [
            "https://api.example/Orders/7",
            "https://api.example:8443/orders/7",
            "http://api.example/orders/7",
            "https://api.example.evil/orders/7",
        ] {
            let mut c = claims();
            c["htu"] = json!(htu);
            assert!(
                matches!(
                    verify_proof(&sign(&pkcs8, "dpop+jwt", &jwk, &c), &want()),
                    Err(ProofError::WrongUri { .. })
                ),
                "{htu}"
            );
        }
        assert_eq!(normal_htu("http://h:80"), "http://h/");
    }

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        // RFC 7638 section 3.1's example key and thumbprint.
        let jwk: Jwk = serde_json::from_value(json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }))
        .unwrap();
        assert_eq!(
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// A client's Ed25519 key: its PKCS#8 and public JWK, as a client sends it.
    fn ed25519_key() -> (Vec<u8>, Value) {
        let k = generate_key(Alg::EdDSA, "client").unwrap();
        let mut jwk = k.public_jwk.clone();
        for m in ["kid", "use", "alg"] {
            jwk.as_object_mut().unwrap().remove(m);
        }
        (k.pkcs8, jwk)
    }

    /// A proof signed with the Ed25519 key `pkcs8`, with `alg_name` and `jwk` in its header
    /// (jsonwebtoken's own headers know no `alg` named Ed25519).
    fn ed25519_sign(pkcs8: &[u8], alg_name: &str, jwk: &Value) -> String {
        let header = json!({"alg": alg_name, "typ": "dpop+jwt", "jwk": jwk});
        let message = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims().to_string())
        );
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_ed_der(pkcs8),
            Algorithm::EdDSA,
        )
        .unwrap();
        format!("{message}.{signature}")
    }

    #[test]
    fn ed25519_proofs_pass_under_either_name() {
        // RFC 9864's fully-specified name, as openid-client (oauth4webapi) signs, and the
        // older EdDSA; also with a JWK that names its alg Ed25519.
        let (pkcs8, jwk) = ed25519_key();
        let parsed: Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let jkt = parsed.thumbprint(ThumbprintHash::SHA256).unwrap();
        let mut named = jwk.clone();
        named["alg"] = json!("Ed25519");
        for (name, key) in [("Ed25519", &jwk), ("EdDSA", &jwk), ("Ed25519", &named)] {
            let p = verify_proof(&ed25519_sign(&pkcs8, name, key), &want())
                .unwrap_or_else(|e| panic!("{name} {key}: {e}"));
            assert_eq!(p.jkt, jkt, "{name} {key}");
        }
        // Discovery lists both names.
        assert!(ALG_NAMES.contains(&"Ed25519") && ALG_NAMES.contains(&"EdDSA"));
    }

    #[test]
    fn ed25519_proofs_need_the_signers_ed25519_key() {
        let (pkcs8, _) = ed25519_key();
        // A P-256 key in the header.
        let (_, ec) = client_key();
        assert_eq!(
            verify_proof(&ed25519_sign(&pkcs8, "Ed25519", &ec), &want()),
            Err(ProofError::BadKey)
        );
        // Another client's Ed25519 key.
        let (_, other) = ed25519_key();
        assert_eq!(
            verify_proof(&ed25519_sign(&pkcs8, "Ed25519", &other), &want()),
            Err(ProofError::BadSignature)
        );
        // Ed448 is not supported, under any name.
        let (_, mut ed448) = ed25519_key();
        ed448["crv"] = json!("Ed448");
        for name in ["Ed25519", "EdDSA"] {
            assert_eq!(
                verify_proof(&ed25519_sign(&pkcs8, name, &ed448), &want()),
                Err(ProofError::BadKey),
                "{name}"
            );
        }
        let (_, jwk) = ed25519_key();
        assert_eq!(
            verify_proof(&ed25519_sign(&pkcs8, "Ed448", &jwk), &want()),
            Err(ProofError::AlgNotAllowed)
        );
    }

    #[test]
    fn each_check_refuses_with_its_own_reason() {
        let (pkcs8, jwk) = client_key();
        let ok = |c: &Value| sign(&pkcs8, "dpop+jwt", &jwk, c);
        let with = |k: &str, v: Value| {
            let mut c = claims();
            c[k] = v;
            ok(&c)
        };
        let without = |k: &str| {
            let mut c = claims();
            c.as_object_mut().unwrap().remove(k);
            ok(&c)
        };
        let cases: Vec<(String, ProofError)> = vec![
            (sign(&pkcs8, "JWT", &jwk, &claims()), ProofError::WrongType),
            (
                with("htm", json!("POST")),
                ProofError::WrongMethod {
                    expected: "GET".into(),
                },
            ),
            (
                with("htu", json!("https://api.example/orders/8")),
                ProofError::WrongUri {
                    expected: URI.into(),
                },
            ),
            (
                with("iat", json!(NOW - 61)),
                ProofError::Stale { max_age: 60 },
            ),
            (with("iat", json!(NOW + 6)), ProofError::Future),
            (
                with("ath", json!(ath("another token"))),
                ProofError::WrongAth,
            ),
            (without("ath"), ProofError::WrongAth),
            (without("jti"), ProofError::MissingClaim("jti")),
            (
                with("jti", json!("x".repeat(MAX_JTI + 1))),
                ProofError::MissingClaim("jti"),
            ),
            (without("htm"), ProofError::MissingClaim("htm")),
            (without("iat"), ProofError::MissingClaim("iat")),
            ("not.a.jws".into(), ProofError::Malformed(String::new())),
        ];
        for (proof, expected) in cases {
            let got = verify_proof(&proof, &want()).unwrap_err();
            match (&got, &expected) {
                (ProofError::Malformed(_), ProofError::Malformed(_)) => {}
                _ => assert_eq!(got, expected),
            }
            assert!(
                !got.to_string().contains(&proof),
                "the message repeats the proof"
            );
        }
        // A nonce, once the server asks for one: its own, of this window or the last.
        let key = HashKey::from_bytes(&[7; 32]);
        let nonces = Nonces {
            key: &key,
            period: 300,
        };
        let w = Expected {
            nonce: Some(nonces),
            ..want()
        };
        assert_eq!(
            verify_proof(&ok(&claims()), &w),
            Err(ProofError::WrongNonce)
        );
        assert!(verify_proof(&with("nonce", json!(nonces.current(NOW))), &w).is_ok());
        assert!(verify_proof(&with("nonce", json!(nonces.current(NOW - 300))), &w).is_ok());
        for stale in [
            nonces.current(NOW - 600),
            nonces.current(NOW + 300),
            Nonces {
                key: &HashKey::from_bytes(&[8; 32]),
                period: 300,
            }
            .current(NOW),
            "1.AAAA".into(),
            "zz".into(),
        ] {
            assert_eq!(
                verify_proof(&with("nonce", json!(stale)), &w),
                Err(ProofError::WrongNonce),
                "{stale}"
            );
        }
    }

    #[test]
    fn the_key_in_the_header_must_be_a_public_key_that_signed_it() {
        let (pkcs8, jwk) = client_key();
        let (_, other_jwk) = client_key();
        // Signed with one key, claiming another: the signature fails.
        let forged = sign(&pkcs8, "dpop+jwt", &other_jwk, &claims());
        assert_eq!(
            verify_proof(&forged, &want()),
            Err(ProofError::BadSignature)
        );
        // A private member in the jwk.
        let mut private = jwk.clone();
        private["d"] = json!("AAAA");
        let leaked = sign(&pkcs8, "dpop+jwt", &private, &claims());
        assert_eq!(verify_proof(&leaked, &want()), Err(ProofError::PrivateKey));
        // No jwk at all; and a symmetric alg, however it is signed.
        let mut h = Header::new(Algorithm::ES256);
        h.typ = Some("dpop+jwt".into());
        let bare = jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_ec_der(&pkcs8)).unwrap();
        assert_eq!(verify_proof(&bare, &want()), Err(ProofError::NoKey));
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("dpop+jwt".into());
        h.jwk = Some(serde_json::from_value(jwk.clone()).unwrap());
        let hs = jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(b"k")).unwrap();
        assert_eq!(verify_proof(&hs, &want()), Err(ProofError::AlgNotAllowed));
        // A key of another size or curve than the alg's.
        let mut short = jwk.clone();
        short["x"] = json!("AAAA");
        let bad = sign(&pkcs8, "dpop+jwt", &short, &claims());
        assert_eq!(verify_proof(&bad, &want()), Err(ProofError::BadKey));
        let mut curve = jwk.clone();
        curve["crv"] = json!("P-384");
        let bad = sign(&pkcs8, "dpop+jwt", &curve, &claims());
        assert_eq!(verify_proof(&bad, &want()), Err(ProofError::BadKey));
        // alg none.
        let none = format!(
            "{}.{}.",
            B64.encode(json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk}).to_string()),
            B64.encode(claims().to_string())
        );
        assert_eq!(verify_proof(&none, &want()), Err(ProofError::AlgNotAllowed));
    }

    #[test]
    fn ath_is_the_base64url_sha256_of_the_token() {
        // RFC 9449 section 7.1's example token and its ath.
        assert_eq!(
            ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
