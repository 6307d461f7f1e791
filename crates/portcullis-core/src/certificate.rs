//! Uploaded X.509 certificates (Adobe I/O service accounts): an app proves itself with JWTs signed by the
//! private key of a certificate whose public half it uploaded. This module turns the PEM
//! text a developer pasted into the [`AppKey`](crate::model::AppKey) parts Portcullis
//! keeps: the public key as a JWK, its one algorithm, the SHA-256 fingerprint, subject and
//! expiry.
//!
//! The rules, each refused with a message that says what to send instead: exactly one
//! `CERTIFICATE` PEM block; never a private key (refused before anything is decoded, and
//! the message says never to send one); a certificate valid now; an RSA key of at least
//! 2048 bits (→ RS256) or an EC P-256 key (→ ES256), nothing else. The certificate's
//! signature and chain are not checked: it is a container for the public key the app
//! registered, trusted because an administrator uploaded it, as the vendor does.
//!
//! Parsing uses `x509-parser`'s structures (no hand-written ASN.1); the JWK members are
//! the big-endian integers and curve coordinates from those structures.

use crate::gateway::rfc3339;
use crate::token::Alg;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use x509_parser::der_parser::oid::Oid;
use x509_parser::oid_registry::OID_EC_P256;
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

/// The longest PEM text accepted (a 4096-bit RSA certificate with extensions is ~2 KiB).
pub const MAX_PEM_LEN: usize = 16 * 1024;
/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// A certificate that passed every rule, ready to be stored as an app key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCertificate {
    pub alg: Alg,
    /// The public key as a JWK without `kid` (see [`ParsedCertificate::jwk_with_kid`]).
    pub jwk: Value,
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint_sha256: String,
    /// The subject's distinguished name (RFC 4514 form).
    pub subject: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
}

impl ParsedCertificate {
    /// The JWK with `kid`, `alg` and `use: sig`, as stored.
    pub fn jwk_with_kid(&self, kid: &str) -> Value {
        let mut jwk = self.jwk.clone();
        if let Some(o) = jwk.as_object_mut() {
            o.insert("kid".into(), kid.into());
            o.insert("alg".into(), self.alg.as_str().into());
            o.insert("use".into(), "sig".into());
        }
        jwk
    }
}

/// Why an upload is refused. Each message says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error(
        "This is a private key. Never send a private key to anyone, this server included: it was not stored or logged. Upload the certificate (the block that starts with -----BEGIN CERTIFICATE-----) and keep the key to sign your JWTs. If the key travelled over a channel you do not trust, make a new key and certificate."
    )]
    PrivateKey,
    #[error(
        "No PEM certificate found: send the text that starts with -----BEGIN CERTIFICATE----- (for example certificate.pem from 'openssl req -x509 ...')."
    )]
    NotPem,
    #[error(
        "The upload holds {0} certificates; upload one at a time (each becomes its own key, for rotation)."
    )]
    Several(usize),
    #[error(
        "The PEM block is a '{0}', not a certificate; send the block that starts with -----BEGIN CERTIFICATE-----."
    )]
    WrongLabel(String),
    #[error("The certificate could not be parsed as X.509: {0}.")]
    Unparsable(String),
    #[error("The upload is larger than {MAX_PEM_LEN} bytes; a certificate is about 2 KiB.")]
    TooLarge,
    #[error(
        "The certificate expired at {0}; make a new one (e.g. 'openssl req -x509 -days 365 ...') and upload it."
    )]
    Expired(String),
    #[error("The certificate is not valid before {0}; upload it once it is, or fix its dates.")]
    NotYetValid(String),
    #[error(
        "The certificate's RSA key has {0} bits; at least {MIN_RSA_BITS} are required (openssl req -newkey rsa:2048)."
    )]
    RsaTooSmall(usize),
    #[error(
        "The certificate's EC key is not on P-256; only P-256 (ES256) and RSA ≥ 2048 bits (RS256) are accepted."
    )]
    UnsupportedCurve,
    #[error(
        "The certificate's key is {0}; only RSA ≥ 2048 bits (RS256) and EC P-256 (ES256) are accepted."
    )]
    UnsupportedKey(&'static str),
}

/// Big-endian unsigned integer bytes without leading zeros (a DER INTEGER carries a zero
/// byte before a high bit; JWK members must not, RFC 7518 section 6.3.1.1).
fn unsigned(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

fn bit_len(b: &[u8]) -> usize {
    match b.first() {
        Some(&first) => b.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// Parse and check one uploaded certificate at `now` (unix seconds).
pub fn parse(pem: &[u8], now: i64) -> Result<ParsedCertificate, CertificateError> {
    if pem.len() > MAX_PEM_LEN {
        return Err(CertificateError::TooLarge);
    }
    // Before any decoding: a private key pasted by mistake is refused as such, even
    // beside a certificate or inside a block that would not decode.
    if pem
        .windows(b"PRIVATE KEY".len())
        .any(|w| w.eq_ignore_ascii_case(b"PRIVATE KEY"))
    {
        return Err(CertificateError::PrivateKey);
    }
    let mut blocks = Vec::new();
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| CertificateError::Unparsable(e.to_string()))?;
        blocks.push(block);
        if blocks.len() > 16 {
            break;
        }
    }
    let block = match blocks.len() {
        0 => return Err(CertificateError::NotPem),
        1 => blocks.remove(0),
        n => {
            let certs = blocks.iter().filter(|b| b.label == "CERTIFICATE").count();
            return Err(if certs > 1 {
                CertificateError::Several(n)
            } else {
                CertificateError::WrongLabel(
                    blocks
                        .iter()
                        .find(|b| b.label != "CERTIFICATE")
                        .map(|b| b.label.chars().take(40).collect())
                        .unwrap_or_default(),
                )
            });
        }
    };
    if block.label != "CERTIFICATE" {
        return Err(CertificateError::WrongLabel(
            block.label.chars().take(40).collect(),
        ));
    }
    let (rest, cert) = X509Certificate::from_der(&block.contents)
        .map_err(|e| CertificateError::Unparsable(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CertificateError::Unparsable(
            "bytes follow the certificate inside the PEM block".into(),
        ));
    }
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    if now > not_after {
        return Err(CertificateError::Expired(rfc3339(not_after)));
    }
    if now < not_before {
        return Err(CertificateError::NotYetValid(rfc3339(not_before)));
    }
    let spki = cert.public_key();
    let key = spki
        .parsed()
        .map_err(|e| CertificateError::Unparsable(e.to_string()))?;
    let (alg, jwk) = match key {
        PublicKey::RSA(rsa) => {
            let n = unsigned(rsa.modulus);
            let bits = bit_len(n);
            if bits < MIN_RSA_BITS {
                return Err(CertificateError::RsaTooSmall(bits));
            }
            let e = unsigned(rsa.exponent);
            (
                Alg::RS256,
                json!({"kty": "RSA", "n": B64.encode(n), "e": B64.encode(e)}),
            )
        }
        PublicKey::EC(point) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| Oid::try_from(p).ok());
            if curve.as_ref() != Some(&OID_EC_P256) {
                return Err(CertificateError::UnsupportedCurve);
            }
            // SEC1 uncompressed point: 0x04 || x || y, 32 bytes each on P-256.
            match point.data() {
                [4, xy @ ..] if xy.len() == 64 => (
                    Alg::ES256,
                    json!({"kty": "EC", "crv": "P-256",
                        "x": B64.encode(&xy[..32]), "y": B64.encode(&xy[32..])}),
                ),
                _ => {
                    return Err(CertificateError::Unparsable(
                        "the EC public key is not an uncompressed P-256 point".into(),
                    ));
                }
            }
        }
        PublicKey::DSA(_) => return Err(CertificateError::UnsupportedKey("DSA")),
        PublicKey::GostR3410(_) | PublicKey::GostR3410_2012(_) => {
            return Err(CertificateError::UnsupportedKey("GOST"));
        }
        PublicKey::Unknown(_) => {
            return Err(CertificateError::UnsupportedKey(
                "of an unsupported type (Ed25519 and others)",
            ));
        }
    };
    let fingerprint = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &block.contents);
    Ok(ParsedCertificate {
        alg,
        jwk,
        fingerprint_sha256: hex::encode(fingerprint.as_ref()),
        subject: cert.subject().to_string(),
        not_before,
        not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::VerifyKey;

    const NOW: i64 = 1_800_000_000;
    const RSA_1024: &str = "-----BEGIN CERTIFICATE-----\n\
MIICDjCCAXegAwIBAgIUfyezcj9lj98ouCymDc2WnPP8/9YwDQYJKoZIhvcNAQEL\n\
BQAwGDEWMBQGA1UEAwwNc21hbGwuZXhhbXBsZTAgFw0yNjEyMDEwNzQxNTRaGA8y\n\
MTI2MTEwNzA3NDE1NFowGDEWMBQGA1UEAwwNc21hbGwuZXhhbXBsZTCBnzANBgkq\n\
hkiG9w0BAQEFAAOBjQAwgYkCgYEAwUrd9DPi8FhPBMv0kqvFmzlJGi9ogOAPv4wx\n\
uLPAjACrqZVrkfIwf0sgvgETDzgipXK/K0YsdFfVJL0KZUgfdMFBLoXCAGDROE10\n\
JLMhPiAdhqbONw5O7JLxWY8PrsYq07cLmGDp/ZM8cITzzwxPoZzc/LQUZJpnnKaV\n\
0trBaUMCAwEAAaNTMFEwHQYDVR0OBBYEFKwZwa4ZK0HmhKK9eGiOeNRxVKGNMB8G\n\
A1UdIwQYMBaAFKwZwa4ZK0HmhKK9eGiOeNRxVKGNMA8GA1UdEwEB/wQFMAMBAf8w\n\
DQYJKoZIhvcNAQELBQADgYEABxT1ec1yl8D9AjX8KZ/Xky56wxb2nFLwKDFPDner\n\
ylRAcJJ0SI4MgZC5p7Up39lj8hp3p1S4g9Gyt/ZHeqIPsWLvNLDLIl0GB0e5y69l\n\
HFtXROap5PkzcbAkQbT/mBMRcvvwIBa91iNKbvS1S9DshfZs07vz1PF6QddiOD53\n\
/MA=\n\
-----END CERTIFICATE-----\n\
";

    fn cert(alg: &'static rcgen::SignatureAlgorithm, from: i64, to: i64) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["svc.example".into()]).unwrap();
        p.not_before = time::OffsetDateTime::from_unix_timestamp(from).unwrap();
        p.not_after = time::OffsetDateTime::from_unix_timestamp(to).unwrap();
        let c = p.self_signed(&key).unwrap();
        (c.pem(), key.serialize_pem())
    }

    #[test]
    fn a_p256_certificate_becomes_an_es256_jwk_that_verifies() {
        let (pem, _) = cert(&rcgen::PKCS_ECDSA_P256_SHA256, NOW - 10, NOW + 1000);
        let c = parse(pem.as_bytes(), NOW).unwrap();
        assert_eq!(c.alg, Alg::ES256);
        assert_eq!(c.not_after, NOW + 1000);
        assert_eq!(c.fingerprint_sha256.len(), 64);
        let jwk = c.jwk_with_kid("key_0123456789abcdef");
        assert_eq!(jwk["kid"], "key_0123456789abcdef");
        assert_eq!(jwk["use"], "sig");
        assert!(VerifyKey::from_jwk(Alg::ES256, jwk).is_ok());
    }

    #[test]
    fn expired_not_yet_valid_other_curves_keys_and_garbage_are_refused() {
        let (pem, key) = cert(&rcgen::PKCS_ECDSA_P256_SHA256, NOW - 100, NOW - 1);
        assert!(matches!(
            parse(pem.as_bytes(), NOW),
            Err(CertificateError::Expired(_))
        ));
        let (pem2, _) = cert(&rcgen::PKCS_ECDSA_P256_SHA256, NOW + 100, NOW + 1000);
        assert!(matches!(
            parse(pem2.as_bytes(), NOW),
            Err(CertificateError::NotYetValid(_))
        ));
        let (p384, _) = cert(&rcgen::PKCS_ECDSA_P384_SHA384, NOW - 1, NOW + 1000);
        assert_eq!(
            parse(p384.as_bytes(), NOW),
            Err(CertificateError::UnsupportedCurve)
        );
        let (ed, _) = cert(&rcgen::PKCS_ED25519, NOW - 1, NOW + 1000);
        assert!(matches!(
            parse(ed.as_bytes(), NOW),
            Err(CertificateError::UnsupportedKey(_))
        ));
        assert_eq!(
            parse(key.as_bytes(), NOW),
            Err(CertificateError::PrivateKey)
        );
        assert_eq!(
            parse(format!("{pem2}{key}").as_bytes(), NOW),
            Err(CertificateError::PrivateKey)
        );
        assert_eq!(
            parse(format!("{p384}{pem2}").as_bytes(), NOW),
            Err(CertificateError::Several(2))
        );
        assert_eq!(parse(b"garbage", NOW), Err(CertificateError::NotPem));
        assert!(matches!(
            parse(
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                NOW
            ),
            Err(CertificateError::Unparsable(_))
        ));
        assert!(matches!(
            parse(
                b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                NOW
            ),
            Err(CertificateError::WrongLabel(_))
        ));
    }

    #[test]
    fn rsa_keys_need_2048_bits() {
        let key =
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["svc.example".into()]).unwrap();
        p.not_before = time::OffsetDateTime::from_unix_timestamp(NOW - 1).unwrap();
        p.not_after = time::OffsetDateTime::from_unix_timestamp(NOW + 10).unwrap();
        let c = parse(p.self_signed(&key).unwrap().pem().as_bytes(), NOW).unwrap();
        assert_eq!(c.alg, Alg::RS256);
        assert_eq!(c.jwk["e"], "AQAB");
        assert!(VerifyKey::from_jwk(Alg::RS256, c.jwk_with_kid("key_0000000000000001")).is_ok());
        // Made once with `openssl req -x509 -newkey rsa:1024 -days 36500` (valid to 2126).
        assert_eq!(
            parse(RSA_1024.as_bytes(), NOW),
            Err(CertificateError::RsaTooSmall(1024))
        );
        assert_eq!(bit_len(&[0x01, 0]), 9);
        assert_eq!(unsigned(&[0, 0, 0x80]), &[0x80]);
    }
}
