//! The verified-token cache (DESIGN.md): clients reuse a token for its whole lifetime, so
//! the gateway remembers tokens whose signature it has already checked.
//!
//! Keyed by the SHA-256 of the whole token — never by `jti` or `kid`, which an attacker
//! can copy into a forged token. A hit skips only the signature work: the key that signed
//! it must still be published and the expiry is checked against `now`; every other live
//! check (revocation, app and org state, products, scopes, sandboxes) runs on every
//! request in the gateway decision, against the current view.

use crate::token::{AccessClaims, TokenError, verify_access_token};
use crate::view::View;
use aws_lc_rs::digest;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

struct Verified {
    claims: Arc<AccessClaims>,
    kid: String,
}

/// A bounded map from token hash to its verified claims. When full it is emptied
/// (simple, and a refill costs one verification per live token).
pub struct VerifiedTokenCache {
    map: RwLock<HashMap<[u8; 32], Verified>>,
    capacity: usize,
}

impl VerifiedTokenCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
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

    /// [`VerifiedTokenCache::verify`], and whether the answer came from the cache (for
    /// the hit-ratio metric).
    pub fn verify_traced(
        &self,
        token: &str,
        view: &View,
        issuer: &str,
        now: i64,
    ) -> (Result<Arc<AccessClaims>, TokenError>, bool) {
        let mut key = [0u8; 32];
        key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        if let Ok(map) = self.map.read()
            && let Some(hit) = map.get(&key)
            && view.key(&hit.kid).is_some()
        {
            // No leeway for our own tokens (API.md §2, Time).
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
                key,
                Verified {
                    claims: claims.clone(),
                    kid,
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
