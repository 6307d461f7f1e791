//! Secrets: client secrets, the bootstrap admin token, user session tokens, and Wave's
//! API tokens and OAuth 1.0 tokens and token secrets.
//!
//! A secret is 256 random bits with an identifiable prefix and a checksum, written as
//! `<prefix>_<base58(random ‖ crc32)>`, e.g. `pcss_3mJr7AoUXx2Wqd…`. The prefix lets a
//! secret scanner recognise a leaked Portcullis secret; the checksum lets us refuse a typo
//! (or a secret of another kind) without a lookup.
//!
//! Portcullis never stores a secret: only its keyed hash, HMAC-SHA256 under a server-wide
//! [`HashKey`]. The secrets are uniformly random, so a fast keyed hash is the right tool;
//! slow password hashes (argon2id) are for human passwords only.
//! Hashes are compared in constant time ([`SecretHash::ct_eq`]).

use aws_lc_rs::hmac;
use std::fmt;
use subtle::ConstantTimeEq;

/// What a secret is for. The prefix is part of the wire format: **never change one**,
/// or every issued secret stops parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// An application's client secret (`pcss_`).
    ClientSecret,
    /// The bootstrap admin token (`pcsa_`).
    AdminToken,
    /// A signed-in user's session token (`pcsu_`).
    UserSession,
    /// A Wave publisher's API token, from `apitoken.xml` (`pcwa_`).
    WaveApiToken,
    /// An OAuth 1.0 request token or access token (`pcwt_`): public to its holder's
    /// counterpart, but still only stored hashed.
    OAuth1Token,
    /// The secret of an OAuth 1.0 request or access token (`pcws_`).
    OAuth1TokenSecret,
    /// A one-time user link's token (`pcsl_`): an invitation or a password reset.
    UserLink,
}

impl SecretKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            SecretKind::ClientSecret => "pcss",
            SecretKind::AdminToken => "pcsa",
            SecretKind::UserSession => "pcsu",
            SecretKind::WaveApiToken => "pcwa",
            SecretKind::OAuth1Token => "pcwt",
            SecretKind::OAuth1TokenSecret => "pcws",
            SecretKind::UserLink => "pcsl",
        }
    }
    fn name(self) -> &'static str {
        match self {
            SecretKind::ClientSecret => "client secret",
            SecretKind::AdminToken => "admin token",
            SecretKind::UserSession => "session token",
            SecretKind::WaveApiToken => "API token",
            SecretKind::OAuth1Token => "OAuth token",
            SecretKind::OAuth1TokenSecret => "OAuth token secret",
            SecretKind::UserLink => "link token",
        }
    }
}

const RANDOM_LEN: usize = 32;

/// Why a presented secret was refused before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError {
    #[error("a {0} starts with '{1}_'")]
    WrongPrefix(&'static str, &'static str),
    #[error("the {0} is not valid base58 text or has the wrong length; copy it again in full")]
    Malformed(&'static str),
    #[error("the {0} fails its checksum: it was mistyped or truncated; copy it again in full")]
    Checksum(&'static str),
}

/// A plaintext secret. Shown once at creation, then dropped. `Debug` is redacted so it
/// cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    kind: SecretKind,
    text: String,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}_…redacted)", self.kind.prefix())
    }
}

fn checksum(kind: SecretKind, random: &[u8]) -> [u8; 4] {
    let mut h = crc32fast::Hasher::new();
    h.update(kind.prefix().as_bytes());
    h.update(random);
    h.finalize().to_be_bytes()
}

impl Secret {
    /// A fresh secret of this kind: 256 bits from the OS CSPRNG.
    pub fn generate(kind: SecretKind) -> Self {
        let random = crate::random_bytes::<RANDOM_LEN>();
        let mut raw = Vec::with_capacity(RANDOM_LEN + 4);
        raw.extend_from_slice(&random);
        raw.extend_from_slice(&checksum(kind, &random));
        Self {
            kind,
            text: format!("{}_{}", kind.prefix(), bs58::encode(raw).into_string()),
        }
    }

    /// Check the prefix and checksum of a presented secret. No lookup, no hashing.
    pub fn parse(kind: SecretKind, text: &str) -> Result<Self, SecretFormatError> {
        let body = text
            .strip_prefix(kind.prefix())
            .and_then(|r| r.strip_prefix('_'))
            .ok_or(SecretFormatError::WrongPrefix(kind.name(), kind.prefix()))?;
        // 36 bytes of base58 are at most 50 characters; refuse long input before decoding.
        if body.len() > 50 {
            return Err(SecretFormatError::Malformed(kind.name()));
        }
        let mut raw = [0u8; RANDOM_LEN + 4];
        let n = bs58::decode(body)
            .onto(&mut raw[..])
            .map_err(|_| SecretFormatError::Malformed(kind.name()))?;
        if n != RANDOM_LEN + 4 {
            return Err(SecretFormatError::Malformed(kind.name()));
        }
        let (random, sum) = raw.split_at(RANDOM_LEN);
        if checksum(kind, random) != sum {
            return Err(SecretFormatError::Checksum(kind.name()));
        }
        Ok(Self {
            kind,
            text: text.to_owned(),
        })
    }

    /// The secret itself, for the one response that shows it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    pub fn kind(&self) -> SecretKind {
        self.kind
    }

    /// A non-secret hint for listings: the prefix and the first 6 characters of the body.
    /// 6 base58 characters reveal ~35 of the 256 random bits.
    pub fn display_prefix(&self) -> String {
        self.text
            .chars()
            .take(self.kind.prefix().len() + 1 + 6)
            .collect()
    }

    /// HMAC-SHA256 of the whole secret under the server's hash key.
    pub fn hash(&self, key: &HashKey) -> SecretHash {
        key.hash_text(&self.text)
    }
}

/// The server-wide key of the secret hash. Kept encrypted by the master key in the store.
#[derive(Clone)]
pub struct HashKey(hmac::Key);

impl HashKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// HMAC-SHA256 of arbitrary text: for secrets that were not generated by
    /// [`Secret::generate`] (an operator-chosen `PORTCULLIS_ADMIN_TOKEN`).
    pub fn hash_text(&self, text: &str) -> SecretHash {
        let tag = hmac::sign(&self.0, text.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        SecretHash(out)
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(redacted)")
    }
}

/// A keyed hash of a secret: what the store keeps.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    /// Constant-time equality, so the time taken does not tell how many bytes matched.
    pub fn ct_eq(&self, other: &SecretHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Self(out))
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({}…)", &hex::encode(&self.0[..4]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_prefix() {
        let s = Secret::generate(SecretKind::ClientSecret);
        assert!(s.expose().starts_with("pcss_"));
        let p = Secret::parse(SecretKind::ClientSecret, s.expose()).unwrap();
        assert_eq!(p, s);
        assert_eq!(s.display_prefix().len(), 11);
    }

    #[test]
    fn a_typo_fails_the_checksum_or_decoding() {
        let s = Secret::generate(SecretKind::ClientSecret);
        let text = s.expose();
        // Change one character of the body to another base58 character.
        let mut chars: Vec<char> = text.chars().collect();
        let i = 10;
        chars[i] = if chars[i] == '2' { '3' } else { '2' };
        let typo: String = chars.into_iter().collect();
        assert!(matches!(
            Secret::parse(SecretKind::ClientSecret, &typo),
            Err(SecretFormatError::Checksum(_) | SecretFormatError::Malformed(_))
        ));
        // Truncated
        assert!(Secret::parse(SecretKind::ClientSecret, &text[..text.len() - 1]).is_err());
    }

    #[test]
    fn a_secret_of_another_kind_is_refused() {
        let s = Secret::generate(SecretKind::AdminToken);
        let swapped = s.expose().replacen("pcsa", "pcss", 1);
        assert_eq!(
            Secret::parse(SecretKind::ClientSecret, &swapped),
            Err(SecretFormatError::Checksum("client secret"))
        );
        assert!(matches!(
            Secret::parse(SecretKind::ClientSecret, s.expose()),
            Err(SecretFormatError::WrongPrefix(..))
        ));
    }

    #[test]
    fn hash_is_keyed_and_debug_is_redacted() {
        let s = Secret::generate(SecretKind::ClientSecret);
        let k1 = HashKey::from_bytes(&[1; 32]);
        let k2 = HashKey::from_bytes(&[2; 32]);
        assert!(s.hash(&k1).ct_eq(&s.hash(&k1)));
        assert!(!s.hash(&k1).ct_eq(&s.hash(&k2)));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains(&s.expose()[5..]), "{dbg}");
        let h = s.hash(&k1);
        assert_eq!(SecretHash::from_hex(&h.to_hex()), Some(h));
    }
}
