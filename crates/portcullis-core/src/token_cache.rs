//! The verified-token cache: clients reuse a token for its whole lifetime, so
//! the gateway (and introspection) remember tokens whose signature they have already
//! checked.
//!
//! A slot is found by a keyed hash of the token's last bytes (the end of its signature),
//! and a hit must then equal the whole stored token — never matched by `jti` or `kid`,
//! which an attacker can copy into a forged token. A hit skips only the signature work: the key that signed
//! it must still be published and the expiry is checked against `now`; every other live
//! check (revocation, app and org state, products, scopes, sandboxes) runs on every
//! request in the gateway decision, against the current view.

use crate::token::{AccessClaims, TokenError, verify_access_token};
use crate::view::View;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock};
use subtle::ConstantTimeEq;

struct Verified {
    /// The whole token, compared in full (and in constant time) on every hit.
    token: Box<str>,
    claims: Arc<AccessClaims>,
    kid: Box<str>,
}

/// How many bytes of the token's end (its signature) choose the map slot.
const TAIL: usize = 16;

/// Whether `presented` is the cached token. The tail — signature bytes, the part a
/// caller cannot know without holding the token — is compared in constant time first;
/// only a caller who already has it reaches the plain comparison of the rest (header
/// and claims, which the signature's holder can read anyway), so its timing tells
/// nothing new. Comparing all ~400 bytes in constant time cost more than the rest of a
/// cache hit together.
fn same_token(cached: &str, presented: &str) -> bool {
    let (c, p) = (cached.as_bytes(), presented.as_bytes());
    if c.len() != p.len() {
        return false;
    }
    let split = c.len().saturating_sub(TAIL);
    bool::from(c[split..].ct_eq(&p[split..])) && c[..split] == p[..split]
}

/// A bounded map from token to its verified claims. When full it is emptied (simple, and
/// a refill costs one verification per live token).
///
/// A hit needs the presented token to equal a verified one byte for byte, so a forged
/// token can never be answered with another token's claims. The slot is chosen by a
/// keyed hash (SipHash, per-process random key) of the token's last bytes — its
/// signature — which is cheaper than hashing the whole token and, keyed, gives an
/// attacker no way to aim tokens at one slot. Two verified tokens in the same slot just
/// replace each other.
pub struct VerifiedTokenCache {
    map: RwLock<HashMap<u64, Verified>>,
    slot_hasher: RandomState,
    capacity: usize,
}

impl VerifiedTokenCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            slot_hasher: RandomState::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.map.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Verify `token` as [`verify_access_token`] does, skipping the signature check for a
    /// token verified before whose key is still published.
    pub fn verify(
        &self,
        token: &str,
        view: &View,
        issuer: &str,
        now: i64,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        self.verify_traced(token, view, issuer, now).0
    }

    fn slot(&self, token: &str) -> u64 {
        let bytes = token.as_bytes();
        self.slot_hasher
            .hash_one(&bytes[bytes.len().saturating_sub(TAIL)..])
    }

    /// [`VerifiedTokenCache::verify`], and whether the answer came from the cache (for
    /// the hit-ratio metric).
    pub fn verify_traced(
        &self,
        token: &str,
        view: &View,
        issuer: &str,
        now: i64,
    ) -> (Result<Arc<AccessClaims>, TokenError>, bool) {
        let slot = self.slot(token);
        if let Ok(map) = self.map.read()
            && let Some(hit) = map.get(&slot)
            && same_token(&hit.token, token)
            && view.key(&hit.kid).is_some()
        {
            // No leeway for our own tokens.
            if now >= hit.claims.exp {
                return (Err(TokenError::Expired(hit.claims.exp)), true);
            }
            return (Ok(hit.claims.clone()), true);
        }
        let claims = match verify_access_token(token, |kid| view.key(kid), issuer, now) {
            Ok(c) => Arc::new(c),
            Err(e) => return (Err(e), false),
        };
        // verify_access_token has already parsed the header; a failure here cannot happen.
        if let Some(kid) = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid)
            && let Ok(mut map) = self.map.write()
        {
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(
                slot,
                Verified {
                    token: token.into(),
                    claims: claims.clone(),
                    kid: kid.into(),
                },
            );
        }
        (Ok(claims), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{Alg, Signer, VerifyKey, generate_key, new_jti};

    fn setup() -> (View, Signer) {
        let g = generate_key(Alg::ES256, "k1").unwrap();
        let mut view = View::default();
        view.set_keys(
            vec![VerifyKey::from_jwk(Alg::ES256, g.public_jwk).unwrap()],
            None,
        );
        (
            view,
            Signer::from_pkcs8("k1", Alg::ES256, &g.pkcs8).unwrap(),
        )
    }

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "i".into(),
            client_id: "c".into(),
            org: "o".into(),
            scope: "read".into(),
            iat: 0,
            exp,
            jti: new_jti(),
            cred: None,
            cnf: None,
        }
    }

    #[test]
    fn a_hit_still_checks_expiry_and_the_key() {
        let (mut view, signer) = setup();
        let cache = VerifiedTokenCache::new(10);
        let t = signer.sign(&claims(100));
        assert_eq!(cache.verify(&t, &view, "i", 50).unwrap().exp, 100);
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache.verify(&t, &view, "i", 100),
            Err(TokenError::Expired(100))
        );
        // The key leaves the JWKS: the token no longer verifies, cached or not.
        view.set_keys(vec![], None);
        assert_eq!(
            cache.verify(&t, &view, "i", 50),
            Err(TokenError::UnknownKid("k1".into()))
        );
    }

    #[test]
    fn a_forged_token_with_a_cached_tokens_claims_is_not_a_hit() {
        let (view, signer) = setup();
        let cache = VerifiedTokenCache::new(10);
        let t = signer.sign(&claims(100));
        cache.verify(&t, &view, "i", 50).unwrap();
        // Same header and claims, different signature bytes.
        let (msg, _) = t.rsplit_once('.').unwrap();
        let forged = format!("{msg}.AAAA");
        assert!(cache.verify(&forged, &view, "i", 50).is_err());
        // Failures are not cached.
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_cached_tokens_signature_on_other_claims_is_not_a_hit() {
        let (view, signer) = setup();
        let cache = VerifiedTokenCache::new(10);
        let t = signer.sign(&claims(100));
        cache.verify(&t, &view, "i", 50).unwrap();
        // Same signature (so the same slot), another token's header and claims.
        let other = signer.sign(&claims(200));
        let (other_msg, _) = other.rsplit_once('.').unwrap();
        let (_, sig) = t.rsplit_once('.').unwrap();
        let forged = format!("{other_msg}.{sig}");
        assert_eq!(
            cache.verify_traced(&forged, &view, "i", 50).0,
            Err(TokenError::BadSignature)
        );
        // The genuine token is still answered from the cache.
        assert!(cache.verify_traced(&t, &view, "i", 50).1);
    }

    #[test]
    fn the_cache_is_bounded() {
        let (view, signer) = setup();
        let cache = VerifiedTokenCache::new(3);
        for _ in 0..7 {
            cache
                .verify(&signer.sign(&claims(100)), &view, "i", 50)
                .unwrap();
            assert!(cache.len() <= 3);
        }
    }
}
