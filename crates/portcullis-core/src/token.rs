//! Access tokens: RFC 9068 JWTs signed by Portcullis.
//!
//! **Minting** is done here with the signing key parsed once ([`Signer`] holds the
//! aws-lc-rs key pair): `jsonwebtoken::encode` re-parses the PKCS#8 key for every token,
//! which costs ~10 µs and would cap grants well below the throughput BENCHMARKS.md
//! measures. Producing a
//! JWS compact serialization is only base64url and concatenation; the signature itself is
//! aws-lc-rs's.
//!
//! **Verification** is `jsonwebtoken::decode` under an explicit algorithm allow-list: the
//! one algorithm of the key named by `kid`. Expiry is checked here against the caller's
//! `now` with no leeway (our own tokens need none), not against the wall clock inside the
//! crate.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The signing algorithms Portcullis issues tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alg {
    ES256,
    EdDSA,
    RS256,
}

impl Alg {
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
            Alg::RS256 => "RS256",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ES256" => Some(Alg::ES256),
            "EdDSA" => Some(Alg::EdDSA),
            "RS256" => Some(Alg::RS256),
            _ => None,
        }
    }
    /// The `jsonwebtoken` algorithm of the same name.
    pub fn jwt(self) -> Algorithm {
        match self {
            Alg::ES256 => Algorithm::ES256,
            Alg::EdDSA => Algorithm::EdDSA,
            Alg::RS256 => Algorithm::RS256,
        }
    }
}

/// The claims of a Portcullis access token (RFC 9068 section 2.2), plus `cred`: the id of the
/// credential (client secret) the token was obtained with, so that deleting the credential
/// makes its tokens inactive at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub org: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cred: Option<String>,
    /// The key the token is bound to (RFC 9449 section 6): only a request with a DPoP
    /// proof signed by that key may use it. `None` for a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// RFC 7800's confirmation claim, as DPoP uses it: the RFC 7638 SHA-256 thumbprint of the
/// client's public key, base64url.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

enum SigningKey {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A private signing key, parsed once, with its JWS header already encoded.
pub struct Signer {
    kid: Arc<str>,
    alg: Alg,
    key: SigningKey,
    header_b64: String,
    rng: SystemRandom,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({}, {})", self.kid, self.alg.as_str())
    }
}

/// Freshly generated key material: the PKCS#8 private key (to be encrypted at once) and
/// the public JWK.
pub struct GeneratedKey {
    pub pkcs8: Vec<u8>,
    pub public_jwk: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the private key could not be parsed as {0} PKCS#8")]
    BadPrivateKey(&'static str),
    #[error("key generation failed")]
    Generation,
    #[error("the public key is not a usable JWK: {0}")]
    BadJwk(String),
}

/// Generate a signing key for `alg`, with its public JWK carrying `kid`.
pub fn generate_key(alg: Alg, kid: &str) -> Result<GeneratedKey, KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = match alg {
        Alg::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Generation)?
            .as_ref()
            .to_vec(),
        Alg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| KeyError::Generation)?
            .as_ref()
            .to_vec(),
        Alg::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| KeyError::Generation)?
            .as_der()
            .map_err(|_| KeyError::Generation)?
            .as_ref()
            .to_vec(),
    };
    let signer = Signer::from_pkcs8(kid, alg, &pkcs8)?;
    Ok(GeneratedKey {
        public_jwk: signer.public_jwk(),
        pkcs8,
    })
}

/// The first segment of every access token signed with the key `kid`: the base64url of
/// `{"alg", "kid", "typ": "at+jwt"}` exactly as [`Signer`] writes it. The gateway compares
/// a bearer's first segment with these to know, without decoding it, that the bearer is
/// one of our access tokens.
pub fn access_header_b64(alg: Alg, kid: &str) -> String {
    let header = serde_json::json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": kid});
    B64.encode(header.to_string())
}

impl Signer {
    /// Parse a PKCS#8 private key once.
    pub fn from_pkcs8(kid: &str, alg: Alg, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let key = match alg {
            Alg::ES256 => SigningKey::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|_| KeyError::BadPrivateKey("ES256"))?,
            ),
            Alg::EdDSA => SigningKey::Ed25519(
                Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| KeyError::BadPrivateKey("EdDSA"))?,
            ),
            Alg::RS256 => SigningKey::Rsa(
                RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| KeyError::BadPrivateKey("RS256"))?,
            ),
        };
        Ok(Self {
            kid: Arc::from(kid),
            alg,
            key,
            header_b64: access_header_b64(alg, kid),
            rng: SystemRandom::new(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The public half as a JWK (RFC 7517), with `kid`, `alg` and `use: sig`.
    pub fn public_jwk(&self) -> serde_json::Value {
        let (kid, alg) = (&*self.kid, self.alg.as_str());
        match &self.key {
            SigningKey::Ecdsa(k) => {
                // Uncompressed SEC1 point: 0x04 ‖ x ‖ y.
                let p = k.public_key().as_ref();
                serde_json::json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&p[1..33]),
                    "y": B64.encode(&p[33..65]), "kid": kid, "alg": alg, "use": "sig"})
            }
            SigningKey::Ed25519(k) => serde_json::json!({"kty": "OKP", "crv": "Ed25519",
                "x": B64.encode(k.public_key().as_ref()), "kid": kid, "alg": alg, "use": "sig"}),
            SigningKey::Rsa(k) => {
                let pk = k.public_key();
                serde_json::json!({"kty": "RSA",
                    "n": B64.encode(pk.modulus().big_endian_without_leading_zero()),
                    "e": B64.encode(pk.exponent().big_endian_without_leading_zero()),
                    "kid": kid, "alg": alg, "use": "sig"})
            }
        }
    }

    /// Sign the claims as a compact JWS with header `{"alg", "typ": "at+jwt", "kid"}`.
    pub fn sign(&self, claims: &AccessClaims) -> String {
        // Serializing a struct of strings and integers cannot fail.
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        self.sign_parts(&self.header_b64, &payload)
    }

    /// Sign any JSON claims with header `{"alg", "kid"}` plus the members of `header`
    /// (which may override `kid` or add `typ`). For JWTs that are not access tokens, and
    /// for tests that need a JWT of a particular shape.
    pub fn sign_json(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let mut h = serde_json::json!({"alg": self.alg.as_str(), "kid": &*self.kid});
        if let (Some(h), Some(extra)) = (h.as_object_mut(), header.as_object()) {
            h.extend(extra.clone());
        }
        self.sign_parts(&B64.encode(h.to_string()), claims.to_string().as_bytes())
    }

    fn sign_parts(&self, header_b64: &str, payload: &[u8]) -> String {
        let mut out = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 100);
        out.push_str(header_b64);
        out.push('.');
        B64.encode_string(payload, &mut out);
        let sig: Vec<u8> = match &self.key {
            SigningKey::Ecdsa(k) => k
                .sign(&self.rng, out.as_bytes())
                .expect("ECDSA signing with a valid key")
                .as_ref()
                .to_vec(),
            SigningKey::Ed25519(k) => k.sign(out.as_bytes()).as_ref().to_vec(),
            SigningKey::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &self.rng, out.as_bytes(), &mut sig)
                    .expect("RSA signing with a valid key");
                sig
            }
        };
        out.push('.');
        B64.encode_string(&sig, &mut out);
        out
    }
}

/// A public key that verifies Portcullis tokens, built once from its JWK.
pub struct VerifyKey {
    pub kid: Arc<str>,
    pub alg: Alg,
    pub jwk: serde_json::Value,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyKey({}, {})", self.kid, self.alg.as_str())
    }
}

impl VerifyKey {
    pub fn from_jwk(alg: Alg, jwk: serde_json::Value) -> Result<Self, KeyError> {
        let kid = jwk
            .get("kid")
            .and_then(|v| v.as_str())
            .ok_or_else(|| KeyError::BadJwk("no kid".into()))?;
        let parsed: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(jwk.clone()).map_err(|e| KeyError::BadJwk(e.to_string()))?;
        let decoding =
            DecodingKey::from_jwk(&parsed).map_err(|e| KeyError::BadJwk(e.to_string()))?;
        // The allow-list is exactly this key's algorithm: a token naming this kid with any
        // other `alg` (`none`, HS256 with the public key, …) is refused by `decode`.
        let mut validation = Validation::new(alg.jwt());
        validation.algorithms = vec![alg.jwt()];
        validation.validate_exp = false; // checked against the injected clock below
        validation.validate_nbf = false;
        validation.validate_aud = false; // `aud` may name an RFC 8707 resource
        validation.required_spec_claims.clear();
        Ok(Self {
            kid: Arc::from(kid),
            alg,
            jwk,
            decoding,
            validation,
        })
    }
}

impl VerifyKey {
    /// Check the signature of `token` under this key's algorithm only, and decode its
    /// claims as `T`. No claim is validated: the caller checks what its protocol needs.
    pub fn decode<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<T, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<T>(token, &self.decoding, &self.validation).map(|d| d.claims)
    }
}

/// Why a token is not a valid Portcullis access token. The messages are for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's header has no 'kid'")]
    NoKid,
    #[error("the token's 'typ' is not 'at+jwt'; it is not a Portcullis access token")]
    NotAccessToken,
    #[error("the token was signed with a key this server does not know (kid '{0}')")]
    UnknownKid(String),
    #[error("the token's 'alg' is not allowed for its key (expected {0})")]
    AlgNotAllowed(&'static str),
    #[error(
        "the token's 'alg' '{0}' is not allowed: access tokens are signed with ES256, EdDSA or RS256"
    )]
    AlgRefused(String),
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token was issued by '{0}', not by this server")]
    WrongIssuer(String),
    #[error("the token expired at unix time {0}")]
    Expired(i64),
    /// Failed the structural checks every JWT passes first ([`crate::jose::precheck`]).
    #[error("{0}")]
    Refused(crate::jose::JoseError),
}

/// Check the signature, `typ`, `iss` and `exp` of a Portcullis access token.
///
/// `key_for` finds a verifying key by `kid` (the view's published keys).
pub fn verify_access_token<'k>(
    token: &str,
    key_for: impl Fn(&str) -> Option<&'k VerifyKey>,
    issuer: &str,
    now: i64,
) -> Result<AccessClaims, TokenError> {
    crate::jose::precheck(token).map_err(|e| {
        if e.is_malformed() {
            TokenError::Malformed
        } else {
            TokenError::Refused(e)
        }
    })?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| refused_alg(token))?;
    if header
        .typ
        .as_deref()
        .map(|t| t.eq_ignore_ascii_case("at+jwt"))
        != Some(true)
    {
        return Err(TokenError::NotAccessToken);
    }
    let kid = header.kid.as_deref().ok_or(TokenError::NoKid)?;
    let key = key_for(kid).ok_or_else(|| TokenError::UnknownKid(kid.chars().take(64).collect()))?;
    if header.alg != key.alg.jwt() {
        return Err(TokenError::AlgNotAllowed(key.alg.as_str()));
    }
    let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &key.validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                TokenError::AlgNotAllowed(key.alg.as_str())
            }
            _ => TokenError::Malformed,
        })?;
    let claims = data.claims;
    if claims.iss != issuer {
        return Err(TokenError::WrongIssuer(
            claims.iss.chars().take(128).collect(),
        ));
    }
    // No leeway for our own tokens: this server's clock is the one that minted them.
    if now >= claims.exp {
        return Err(TokenError::Expired(claims.exp));
    }
    Ok(claims)
}

/// Why a header that passed [`crate::jose::precheck`] did not decode: an `alg` outside
/// every allow-list (`none`, `HS256` and the like are not even algorithms we parse) is a
/// refused token, not a malformed one; anything else is malformed.
fn refused_alg(token: &str) -> TokenError {
    let alg = token
        .split('.')
        .next()
        .and_then(|h| B64.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .and_then(|h| h.get("alg").and_then(|a| a.as_str()).map(str::to_owned));
    match alg {
        Some(a) if !["ES256", "EdDSA", "RS256"].contains(&a.as_str()) => {
            TokenError::AlgRefused(a.chars().take(32).collect())
        }
        _ => TokenError::Malformed,
    }
}

/// A fresh token id: 128 random bits, base64url.
pub fn new_jti() -> String {
    B64.encode(crate::random_bytes::<16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "http://issuer".into(),
            sub: "sub".into(),
            aud: "http://issuer".into(),
            client_id: "c".into(),
            org: "o".into(),
            scope: "read".into(),
            iat: 100,
            exp,
            jti: new_jti(),
            cred: None,
            cnf: None,
        }
    }

    fn round_trip(alg: Alg) {
        let g = generate_key(alg, "k1").unwrap();
        let signer = Signer::from_pkcs8("k1", alg, &g.pkcs8).unwrap();
        let vk = VerifyKey::from_jwk(alg, g.public_jwk.clone()).unwrap();
        let c = claims(200);
        let t = signer.sign(&c);
        let find = |kid: &str| (kid == "k1").then_some(&vk);
        assert_eq!(
            verify_access_token(&t, find, "http://issuer", 150),
            Ok(c.clone())
        );
        assert_eq!(
            verify_access_token(&t, find, "http://issuer", 200),
            Err(TokenError::Expired(200))
        );
        assert!(matches!(
            verify_access_token(&t, find, "http://other", 150),
            Err(TokenError::WrongIssuer(_))
        ));
        // Flip a byte of the signature.
        let mut bad = t.clone().into_bytes();
        let n = bad.len() - 3;
        bad[n] = if bad[n] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            verify_access_token(
                std::str::from_utf8(&bad).unwrap(),
                find,
                "http://issuer",
                150
            ),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn es256_round_trip() {
        round_trip(Alg::ES256)
    }
    #[test]
    fn eddsa_round_trip() {
        round_trip(Alg::EdDSA)
    }
    #[test]
    fn rs256_round_trip() {
        round_trip(Alg::RS256)
    }

    #[test]
    fn unknown_kid_and_alg_none_are_refused() {
        let g = generate_key(Alg::ES256, "k1").unwrap();
        let vk = VerifyKey::from_jwk(Alg::ES256, g.public_jwk).unwrap();
        let find = |kid: &str| (kid == "k1").then_some(&vk);
        let c = claims(200);
        let body = B64.encode(serde_json::to_vec(&c).unwrap());
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#),
            body
        );
        assert_eq!(
            verify_access_token(&none, find, "http://issuer", 150),
            Err(TokenError::AlgRefused("none".into())),
            "a refused alg, not a malformed token"
        );
        let hs = format!(
            "{}.{}.AAAA",
            B64.encode(r#"{"alg":"HS256","typ":"at+jwt","kid":"k1"}"#),
            body
        );
        assert_eq!(
            verify_access_token(&hs, find, "http://issuer", 150),
            Err(TokenError::AlgNotAllowed("ES256"))
        );
        let other = format!(
            "{}.{}.AAAA",
            B64.encode(r#"{"alg":"ES256","typ":"at+jwt","kid":"nope"}"#),
            body
        );
        assert_eq!(
            verify_access_token(&other, find, "http://issuer", 150),
            Err(TokenError::UnknownKid("nope".into()))
        );
        let not_at = format!(
            "{}.{}.AAAA",
            B64.encode(r#"{"alg":"ES256","typ":"JWT","kid":"k1"}"#),
            body
        );
        assert_eq!(
            verify_access_token(&not_at, find, "http://issuer", 150),
            Err(TokenError::NotAccessToken)
        );
        assert_eq!(
            verify_access_token("garbage", find, "http://issuer", 150),
            Err(TokenError::Malformed)
        );
    }
}
