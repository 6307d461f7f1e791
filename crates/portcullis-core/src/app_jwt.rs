//! JWTs that applications sign themselves with the private half of one of their keys (an
//! uploaded certificate's, or a server-generated key pair's): Adobe I/O's service-account
//! JWT, RFC 7523 client assertions and grants, and SAP Gigya-style app-signed bearer tokens.
//!
//! This module checks only what every such JWT shares: the header's `kid` names one of the
//! app's keys, the header's `alg` is exactly that key's algorithm (an explicit allow-list
//! of one: never `none`, never HS* with the public key), the key is still usable (a
//! certificate past `not_after` is not), and the signature verifies. Each caller then
//! checks its own claims (`iss`, `sub`, `aud`, `exp`, `iat`, `jti`) against its rules, and
//! spends its `jti` through a [`JtiCheck`]: this node's one [`ReplayCache`], which they
//! all share, or a [`DeferredJti`] whose `jti`s go to the store every node shares
//! (Redis) once the decision is made.

use crate::view::{AppEntry, AppKeyEntry, View};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The longest app-signed JWT accepted, in bytes (the same for every JWT).
pub const MAX_LEN: usize = crate::jose::MAX_LEN;

/// Why an app-signed JWT's signature was not accepted. The messages are for people and
/// never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppJwtError {
    #[error("the JWT is not well-formed")]
    Malformed,
    #[error("the JWT's header has no 'kid' naming the application's key")]
    NoKid,
    #[error(
        "the JWT names no key ('kid') and none of the application's keys verifies it; sign it with the private key of one of the app's key pairs or certificates, or set 'kid' to that key's id"
    )]
    NoKeyVerifies,
    #[error("no key of the application has the kid '{0}'")]
    UnknownKid(String),
    #[error("the key '{0}' is a certificate past its expiry date; upload a new certificate")]
    KeyExpired(String),
    #[error("the JWT's 'alg' is not allowed for its key (the key '{kid}' verifies only {alg})")]
    AlgNotAllowed { kid: String, alg: &'static str },
    #[error("the JWT's signature does not verify with the key '{0}'")]
    BadSignature(String),
    /// Failed the structural checks every JWT passes first ([`crate::jose::precheck`]).
    #[error("{0}")]
    Refused(crate::jose::JoseError),
}

fn precheck(token: &str) -> Result<(), AppJwtError> {
    crate::jose::precheck(token).map_err(|e| {
        if e.is_malformed() {
            AppJwtError::Malformed
        } else {
            AppJwtError::Refused(e)
        }
    })
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The header's `kid`, without verifying anything (to find which app a JWT claims to be
/// from when only the key names it).
pub fn kid_of(token: &str) -> Result<String, AppJwtError> {
    precheck(token)?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| AppJwtError::Malformed)?;
    header.kid.ok_or(AppJwtError::NoKid)
}

/// Verify `token`'s signature with the key of `entry` its `kid` names; return its claims
/// as `T` (unchecked) and the key.
pub fn verify_with<'e, T: DeserializeOwned>(
    token: &str,
    entry: &'e AppEntry,
    now: i64,
) -> Result<(T, &'e AppKeyEntry), AppJwtError> {
    let kid = kid_of(token)?;
    let key = entry
        .key(&kid)
        .ok_or_else(|| AppJwtError::UnknownKid(short(&kid)))?;
    verify_key(token, key, now).map(|c| (c, key))
}

/// Verify `token` with the app key its `kid` names, whichever app owns it (app-signed
/// bearer JWTs carry no client id): the owning app, its key and the claims.
pub fn verify_by_kid<'v, T: DeserializeOwned>(
    token: &str,
    view: &'v View,
    now: i64,
) -> Result<(T, &'v Arc<AppEntry>, &'v AppKeyEntry), AppJwtError> {
    let kid = kid_of(token)?;
    let (entry, key) = view
        .app_key(&kid)
        .ok_or_else(|| AppJwtError::UnknownKid(short(&kid)))?;
    verify_key(token, key, now).map(|c| (c, entry, key))
}

/// The most keys a JWT without a `kid` is tried against (an app has at most ten
/// certificates and ten key pairs).
pub const MAX_KEYS_TRIED: usize = 20;

/// Verify a JWT an app signed with the key its `kid` names or, when it names none, with
/// each of the app's keys in turn (at most [`MAX_KEYS_TRIED`], each under its own
/// algorithm only). RFC 7523 does not require a `kid`, and common clients (authlib's
/// `private_key_jwt` and its JWT bearer grant) send none by default. With a `kid`, only
/// that key is tried.
pub fn verify_any<'e, T: DeserializeOwned>(
    token: &str,
    entry: &'e AppEntry,
    now: i64,
) -> Result<(T, &'e AppKeyEntry), AppJwtError> {
    match kid_of(token) {
        Err(AppJwtError::NoKid) => {
            verify_without_kid(token, entry, now, |_| true).map_err(|e| match e {
                AppJwtError::NoKid => AppJwtError::NoKeyVerifies,
                other => other,
            })
        }
        _ => verify_with(token, entry, now),
    }
}

/// Verify a JWT that names no key (Adobe I/O's service-account JWTs carry no `kid`)
/// against each of `entry`'s keys that `accept` admits, under each key's own algorithm only; the claims
/// and the key that verified. `NoKid` when none did (the message then asks for a `kid` or
/// the right key), `KeyExpired` when only an expired certificate's key verifies it.
pub fn verify_without_kid<'e, T: DeserializeOwned>(
    token: &str,
    entry: &'e AppEntry,
    now: i64,
    accept: impl Fn(&AppKeyEntry) -> bool,
) -> Result<(T, &'e AppKeyEntry), AppJwtError> {
    precheck(token)?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| AppJwtError::Malformed)?;
    let mut expired = None;
    for key in entry.keys.iter().filter(|k| accept(k)).take(MAX_KEYS_TRIED) {
        if key.key.alg.jwt() != header.alg {
            continue;
        }
        match key.verify.decode::<T>(token) {
            Ok(c) if key.key.usable_at(now) => return Ok((c, key)),
            Ok(_) => expired = Some(key.key.id.to_string()),
            Err(e) if *e.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature => {}
            Err(_) => return Err(AppJwtError::Malformed),
        }
    }
    Err(expired.map_or(AppJwtError::NoKid, AppJwtError::KeyExpired))
}

fn verify_key<T: DeserializeOwned>(
    token: &str,
    key: &AppKeyEntry,
    now: i64,
) -> Result<T, AppJwtError> {
    let kid = key.key.id.as_str();
    if !key.key.usable_at(now) {
        return Err(AppJwtError::KeyExpired(kid.to_owned()));
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| AppJwtError::Malformed)?;
    let alg_not_allowed = || AppJwtError::AlgNotAllowed {
        kid: kid.to_owned(),
        alg: key.key.alg.as_str(),
    };
    if header.alg != key.key.alg.jwt() {
        return Err(alg_not_allowed());
    }
    key.verify.decode::<T>(token).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidSignature => {
            AppJwtError::BadSignature(kid.to_owned())
        }
        jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => alg_not_allowed(),
        _ => AppJwtError::Malformed,
    })
}

/// `jti`s seen before, each remembered until the JWT it came in can no longer be accepted
/// anyway (its `exp`, or `iat` + the accepted age). One cache serves every kind of JWT an
/// app signs (app-signed bearer JWTs, RFC 7523 client assertions and grants), so a `jti`
/// spent on one path is spent on all of them.
///
/// Partitioned by scope — the client id — each partition with its own capacity: one
/// app's `jti` cannot block another's, and one app signing faster than its partition
/// holds is refused alone while every other app goes on. When a partition is full even
/// after dropping its expired entries, that app's new JWTs are refused (fail closed:
/// forgetting a `jti` early would let a replay through).
pub struct ReplayCache {
    inner: Mutex<Partitions>,
    per_scope: usize,
}

#[derive(Default)]
struct Partitions {
    /// scope → (`jti` → until when it is remembered).
    scopes: HashMap<Box<str>, HashMap<Box<str>, i64>>,
    /// Calls since the last sweep of every partition (which drops the expired entries
    /// and the partitions left empty, so apps that stopped signing leave nothing behind).
    since_sweep: u32,
}

/// How many calls to [`ReplayCache::first_use`] between two sweeps of every partition.
const SWEEP_EVERY: u32 = 65_536;

/// Why [`ReplayCache::first_use`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Replay {
    #[error("the JWT's jti was used before; sign a new JWT with a fresh jti for every request")]
    Replayed,
    #[error("too many JWTs are being remembered against replay; retry later")]
    Full,
}

/// Where the gateway decision records an app-signed JWT's `jti` ([`crate::gateway::decide_with`]):
/// this node's [`ReplayCache`], or a [`DeferredJti`] when the check goes to a store shared
/// by every node and verifier (Redis), which the synchronous decision cannot call.
pub trait JtiCheck {
    /// Record `jti` for `scope` until `until`; `Err` when it was recorded before.
    fn first_use(&self, scope: &str, jti: &str, until: i64, now: i64) -> Result<(), Replay>;
}

impl JtiCheck for ReplayCache {
    fn first_use(&self, scope: &str, jti: &str, until: i64, now: i64) -> Result<(), Replay> {
        ReplayCache::first_use(self, scope, jti, until, now)
    }
}

/// A `jti` the decision reached, to be checked after it (see [`DeferredJti`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingJti {
    pub scope: String,
    pub jti: String,
    /// Unix seconds until which it must be remembered.
    pub until: i64,
}

/// Accepts every `jti` and remembers those the decision (or grant) reached, in order, so
/// the caller can check them against a shared store afterwards. A `jti` found there
/// already makes the request a replay whatever the decision said: the decision checks the
/// `jti` before anything that could still refuse, so this is the order [`ReplayCache`]
/// gives, decided later. A gateway decision reaches at most one; a token request with a
/// client assertion and a JWT-bearer assertion reaches two (the client's first).
#[derive(Debug, Default)]
pub struct DeferredJti(Mutex<Vec<PendingJti>>);

impl DeferredJti {
    pub fn new() -> Self {
        Self::default()
    }
    /// The `jti`s reached, in the order they were reached.
    pub fn take(&self) -> Vec<PendingJti> {
        self.0
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }
}

impl JtiCheck for DeferredJti {
    fn first_use(&self, scope: &str, jti: &str, until: i64, _now: i64) -> Result<(), Replay> {
        if let Ok(mut p) = self.0.lock() {
            p.push(PendingJti {
                scope: scope.to_owned(),
                jti: jti.to_owned(),
                until,
            });
        }
        Ok(())
    }
}

impl ReplayCache {
    /// A cache holding at most `per_scope` live `jti`s of each scope (client id).
    pub fn new(per_scope: usize) -> Self {
        Self {
            inner: Mutex::new(Partitions::default()),
            per_scope: per_scope.max(1),
        }
    }

    /// Record `jti` for `scope` until `until`; `Err` if it was already recorded (and has not
    /// expired by `now`), or the scope's partition is full of live entries.
    pub fn first_use(&self, scope: &str, jti: &str, until: i64, now: i64) -> Result<(), Replay> {
        let mut inner = self.inner.lock().map_err(|_| Replay::Full)?;
        inner.since_sweep += 1;
        if inner.since_sweep >= SWEEP_EVERY {
            inner.since_sweep = 0;
            inner.scopes.retain(|_, ids| {
                ids.retain(|_, exp| *exp >= now);
                !ids.is_empty()
            });
        }
        let ids = match inner.scopes.get_mut(scope) {
            Some(ids) => ids,
            None => inner.scopes.entry(Box::from(scope)).or_default(),
        };
        if let Some(&exp) = ids.get(jti)
            && exp >= now
        {
            return Err(Replay::Replayed);
        }
        if ids.len() >= self.per_scope {
            ids.retain(|_, exp| *exp >= now);
            if ids.len() >= self.per_scope {
                return Err(Replay::Full);
            }
        }
        ids.insert(Box::from(jti), until);
        Ok(())
    }

    /// The live and not yet swept entries of every scope.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .map(|i| i.scopes.values().map(HashMap::len).sum())
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientId, OrgId, RecordId, TechAccountId};
    use crate::model::{App, AppKey, AppKeySource, AppStatus};
    use crate::token::{Alg, Signer, generate_key};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use serde_json::{Value, json};

    fn app() -> App {
        App {
            client_id: ClientId::generate(),
            org_id: OrgId::generate(),
            name: "a".into(),
            status: AppStatus::Active,
            technical_account_id: TechAccountId::generate(),
            products: Default::default(),
            scopes: Default::default(),
            group_id: None,
            sandboxes: Default::default(),
            token_ttl_seconds: None,
            quota: None,
            dpop_bound_access_tokens: false,
            created_at: 0,
            tokens_invalid_before: None,
        }
    }

    /// A view with one app holding one ES256 key pair and one RS256 certificate key that
    /// expires at 1000; the signers of both.
    fn setup() -> (View, ClientId, Signer, Signer, String, String) {
        let a = app();
        let (k1, k2) = (
            RecordId::generate("key").to_string(),
            RecordId::generate("key").to_string(),
        );
        let g1 = generate_key(Alg::ES256, &k1).unwrap();
        let g2 = generate_key(Alg::RS256, &k2).unwrap();
        let keys = vec![
            AppKey {
                id: RecordId::parse(&k1).unwrap(),
                client_id: a.client_id.clone(),
                alg: Alg::ES256,
                public_jwk: g1.public_jwk.clone(),
                source: AppKeySource::KeyPair,
                created_at: 0,
            },
            AppKey {
                id: RecordId::parse(&k2).unwrap(),
                client_id: a.client_id.clone(),
                alg: Alg::RS256,
                public_jwk: g2.public_jwk.clone(),
                source: AppKeySource::Certificate {
                    fingerprint_sha256: "00".into(),
                    subject: "CN=x".into(),
                    not_after: 1000,
                },
                created_at: 0,
            },
        ];
        let (entry, bad) = AppEntry::with_keys(a.clone(), vec![], keys);
        assert!(bad.is_empty());
        let mut view = View::default();
        view.upsert_app(entry);
        (
            view,
            a.client_id,
            Signer::from_pkcs8(&k1, Alg::ES256, &g1.pkcs8).unwrap(),
            Signer::from_pkcs8(&k2, Alg::RS256, &g2.pkcs8).unwrap(),
            k1,
            k2,
        )
    }

    /// A JWS signed by `signer` over `claims`, with `header` fields added.
    fn jws(signer: &Signer, header: Value, claims: Value) -> String {
        signer.sign_json(&header, &claims)
    }

    #[test]
    fn a_jwt_signed_by_the_apps_key_verifies_and_names_its_app() {
        let (view, cid, es, rs, k1, k2) = setup();
        let t = jws(&es, json!({}), json!({"jti": "1", "iat": 5}));
        let (claims, entry, key): (Value, _, _) = verify_by_kid(&t, &view, 10).unwrap();
        assert_eq!(claims["jti"], "1");
        assert_eq!(entry.app.client_id, cid);
        assert_eq!(key.key.id.as_str(), k1);
        let entry = view.app(cid.as_str()).unwrap();
        let t = jws(&rs, json!({}), json!({"sub": "x"}));
        let (_, key): (Value, _) = verify_with(&t, entry, 1000).unwrap();
        assert_eq!(key.key.id.as_str(), k2);
    }

    #[test]
    fn unknown_kid_alg_confusion_expired_certificates_and_bad_signatures_are_refused() {
        let (view, cid, es, rs, k1, k2) = setup();
        let entry = view.app(cid.as_str()).unwrap();
        // A kid no app has.
        let other = generate_key(Alg::ES256, "key_0000000000000000").unwrap();
        let stranger =
            Signer::from_pkcs8("key_0000000000000000", Alg::ES256, &other.pkcs8).unwrap();
        let t = jws(&stranger, json!({}), json!({}));
        assert!(matches!(
            verify_by_kid::<Value>(&t, &view, 0),
            Err(AppJwtError::UnknownKid(_))
        ));
        // The RS256 key's kid on an ES256 signature: the alg is not the key's.
        let t = jws(&es, json!({"kid": k2}), json!({}));
        assert!(matches!(
            verify_with::<Value>(&t, entry, 0),
            Err(AppJwtError::AlgNotAllowed { .. })
        ));
        // alg none, and HS256 keyed with the public JWK's text.
        let claims = B64.encode(b"{}");
        for header in [
            json!({"alg": "none", "kid": k1}),
            json!({"alg": "HS256", "kid": k1}),
        ] {
            let h = B64.encode(header.to_string());
            let t = format!("{h}.{claims}.{}", B64.encode(b"sig"));
            assert!(matches!(
                verify_with::<Value>(&t, entry, 0),
                Err(AppJwtError::AlgNotAllowed { .. }) | Err(AppJwtError::Malformed)
            ));
        }
        // A certificate past not_after.
        let t = jws(&rs, json!({}), json!({}));
        assert_eq!(
            verify_with::<Value>(&t, entry, 1001).unwrap_err(),
            AppJwtError::KeyExpired(k2.clone())
        );
        // A flipped signature byte.
        let mut t = jws(&es, json!({}), json!({"a": 1})).into_bytes();
        let n = t.len() - 2;
        t[n] = if t[n] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(t).unwrap();
        assert_eq!(
            verify_with::<Value>(&t, entry, 0).unwrap_err(),
            AppJwtError::BadSignature(k1)
        );
        // No kid; garbage; too long.
        let t = format!(
            "{}.{claims}.{}",
            B64.encode(json!({"alg": "ES256"}).to_string()),
            B64.encode(b"s")
        );
        assert_eq!(
            verify_with::<Value>(&t, entry, 0).unwrap_err(),
            AppJwtError::NoKid
        );
        assert_eq!(
            verify_with::<Value>("garbage", entry, 0).unwrap_err(),
            AppJwtError::Malformed
        );
        assert_eq!(
            verify_with::<Value>(&"a".repeat(MAX_LEN + 1), entry, 0).unwrap_err(),
            AppJwtError::Malformed
        );
    }

    #[test]
    fn removing_an_app_forgets_its_keys() {
        let (mut view, cid, es, ..) = setup();
        let t = jws(&es, json!({}), json!({}));
        assert!(verify_by_kid::<Value>(&t, &view, 0).is_ok());
        view.remove_app(cid.as_str());
        assert!(matches!(
            verify_by_kid::<Value>(&t, &view, 0),
            Err(AppJwtError::UnknownKid(_))
        ));
    }

    #[test]
    fn a_jti_is_accepted_once_per_app_until_it_expires() {
        let c = ReplayCache::new(2);
        assert_eq!(c.first_use("app1", "j", 100, 0), Ok(()));
        assert_eq!(c.first_use("app1", "j", 100, 50), Err(Replay::Replayed));
        assert_eq!(c.first_use("app2", "j", 100, 50), Ok(()), "per app");
        assert_eq!(c.first_use("app1", "k", 100, 50), Ok(()));
        assert_eq!(c.first_use("app1", "l", 100, 50), Err(Replay::Full));
        // Once the first JWTs can no longer be accepted anyway, their room is reused.
        assert_eq!(c.first_use("app1", "l", 300, 101), Ok(()));
        assert_eq!(c.first_use("app1", "j", 300, 101), Ok(()));
    }

    #[test]
    fn one_apps_burst_fills_only_its_own_partition() {
        let c = ReplayCache::new(3);
        for i in 0..3 {
            assert_eq!(c.first_use("busy", &format!("j{i}"), 100, 0), Ok(()));
        }
        assert_eq!(c.first_use("busy", "j3", 100, 0), Err(Replay::Full));
        for app in ["a", "b", "c"] {
            for i in 0..3 {
                assert_eq!(c.first_use(app, &format!("j{i}"), 100, 0), Ok(()), "{app}");
            }
        }
        assert_eq!(c.len(), 12);
    }

    #[test]
    fn a_sweep_forgets_expired_entries_and_empty_partitions() {
        let c = ReplayCache::new(10);
        assert_eq!(c.first_use("gone", "j", 10, 0), Ok(()));
        for i in 0..SWEEP_EVERY {
            c.first_use("live", &format!("j{i}"), 1_000, 20).ok();
        }
        let inner = c.inner.lock().unwrap();
        assert!(!inner.scopes.contains_key("gone"));
        assert!(inner.scopes.contains_key("live"));
    }
}
