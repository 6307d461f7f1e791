//! Portcullis's own signing keys: created on first start, rotated by
//! `portcullis keys rotate` (or the admin API), stored encrypted under the master key.
//!
//! Life of a key: **next** (published in the JWKS ahead of use, so verifiers that cache
//! the JWKS for its `max-age` already know it) → **current** (signs new tokens) →
//! **retired** (still published until the last token it signed has expired) → gone.

use crate::master_key::{MasterKey, MasterKeyError};
use portcullis_core::grant::MAX_TTL;
use portcullis_core::ids::RecordId;
use portcullis_core::model::{KeyState, SigningKeyRecord};
use portcullis_core::token::{Alg, KeyError, Signer, VerifyKey, generate_key};
use portcullis_store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyOpError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(
        "the next key {kid} was published {age} s ago, less than the JWKS max-age of {max_age} s: verifiers may not have fetched it yet. Rotate again in {wait} s, or pass --force to rotate now"
    )]
    TooEarly {
        kid: String,
        age: i64,
        max_age: i64,
        wait: i64,
    },
}

fn label(kid: &str) -> String {
    format!("signing-key:{kid}")
}

/// A new key record in `state`, its private half sealed under the master key.
pub fn new_key(
    master: &MasterKey,
    alg: Alg,
    state: KeyState,
    now: i64,
) -> Result<SigningKeyRecord, KeyError> {
    let kid = RecordId::generate("key").to_string();
    let generated = generate_key(alg, &kid)?;
    Ok(SigningKeyRecord {
        encrypted_private_key: master.seal(&label(&kid), &generated.pkcs8),
        public_jwk: generated.public_jwk,
        kid,
        alg,
        state,
        created_at: now,
        activated_at: (state == KeyState::Current).then_some(now),
        retired_until: None,
    })
}

/// On first start: a current key and a next key. Returns whether keys were created.
pub async fn ensure_keys(
    store: &dyn Store,
    master: &MasterKey,
    alg: Alg,
    now: i64,
) -> Result<bool, KeyOpError> {
    let keys = store.signing_keys().await?;
    if keys.iter().any(|k| k.state == KeyState::Current) {
        return Ok(false);
    }
    let mut keys = keys;
    keys.push(new_key(master, alg, KeyState::Current, now)?);
    if !keys.iter().any(|k| k.state == KeyState::Next) {
        keys.push(new_key(master, alg, KeyState::Next, now)?);
    }
    store.replace_signing_keys(&keys).await?;
    Ok(true)
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The key now signing tokens.
    pub current: String,
    /// The key published for the next rotation.
    pub next: String,
    /// The key that stopped signing (still published until its tokens expire).
    pub retired: Option<String>,
}

/// Promote the next key to current, retire the current one, publish a fresh next key
/// of `alg` (default: the promoted key's algorithm), and drop retired keys whose tokens
/// have all expired.
///
/// Refuses when the next key was published less than `max_age` seconds ago, unless
/// `force`. If `alg` differs from the next key's, the new algorithm's key must be
/// published first: without `force` this replaces the next key and asks to rotate again.
pub async fn rotate(
    store: &dyn Store,
    master: &MasterKey,
    alg: Option<Alg>,
    now: i64,
    max_age: i64,
    force: bool,
) -> Result<Rotation, KeyOpError> {
    let mut keys = store.signing_keys().await?;
    keys.retain(|k| k.state != KeyState::Retired || k.retired_until.is_some_and(|t| t > now));
    let next_alg = keys
        .iter()
        .find(|k| k.state == KeyState::Next)
        .map(|k| k.alg);
    let alg = alg.or(next_alg).unwrap_or(Alg::ES256);

    // The next key to promote, of the right algorithm.
    let next_idx = match keys
        .iter()
        .position(|k| k.state == KeyState::Next && k.alg == alg)
    {
        Some(i) => i,
        None => {
            keys.retain(|k| k.state != KeyState::Next);
            keys.push(new_key(master, alg, KeyState::Next, now)?);
            if !force {
                let kid = keys.last().map(|k| k.kid.clone()).unwrap_or_default();
                store.replace_signing_keys(&keys).await?;
                return Err(KeyOpError::TooEarly {
                    kid,
                    age: 0,
                    max_age,
                    wait: max_age,
                });
            }
            keys.len() - 1
        }
    };
    let age = now - keys[next_idx].created_at;
    if age < max_age && !force {
        return Err(KeyOpError::TooEarly {
            kid: keys[next_idx].kid.clone(),
            age,
            max_age,
            wait: max_age - age,
        });
    }
    let mut retired = None;
    for k in keys.iter_mut() {
        if k.state == KeyState::Current {
            k.state = KeyState::Retired;
            // Its last token expires at most MAX_TTL from now.
            k.retired_until = Some(now + MAX_TTL as i64);
            retired = Some(k.kid.clone());
        }
    }
    let promoted = &mut keys[next_idx];
    promoted.state = KeyState::Current;
    promoted.activated_at = Some(now);
    let current = promoted.kid.clone();
    let fresh = new_key(master, alg, KeyState::Next, now)?;
    let next = fresh.kid.clone();
    keys.push(fresh);
    store.replace_signing_keys(&keys).await?;
    Ok(Rotation {
        current,
        next,
        retired,
    })
}

/// Decrypt and parse stored keys: the verifying keys to publish and the current signer.
pub fn key_material(
    records: &[SigningKeyRecord],
    master: &MasterKey,
    now: i64,
) -> Result<(Vec<VerifyKey>, Option<Signer>), KeyOpError> {
    let mut verify = Vec::new();
    let mut signer = None;
    for r in records {
        if r.state == KeyState::Retired && r.retired_until.is_none_or(|t| t <= now) {
            continue;
        }
        verify.push(VerifyKey::from_jwk(r.alg, r.public_jwk.clone())?);
        if r.state == KeyState::Current {
            let pkcs8 = master.open(&label(&r.kid), &r.encrypted_private_key)?;
            signer = Some(Signer::from_pkcs8(&r.kid, r.alg, &pkcs8)?);
        }
    }
    Ok((verify, signer))
}

/// What [`reseal_all`] re-encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resealed {
    pub signing_keys: usize,
    pub hash_key: bool,
}

/// Re-encrypt everything stored under the master key — every signing key's private half
/// and the secret-hash key — under the ring's sealing (first) key. Each value is opened
/// with any key of the ring first, so this may run while values are under the old key
/// or already under the new one (it is idempotent). The signing keys are replaced in one
/// transaction; both writes feed the change feed, so running servers reload them (and,
/// meeting values their ring cannot open, re-read their key file).
pub async fn reseal_all(store: &dyn Store, master: &MasterKey) -> Result<Resealed, KeyOpError> {
    let mut keys = store.signing_keys().await?;
    for k in keys.iter_mut() {
        let plain = master.open(&label(&k.kid), &k.encrypted_private_key)?;
        k.encrypted_private_key = master.seal(&label(&k.kid), &plain);
    }
    store.replace_signing_keys(&keys).await?;
    let hash_key = match store.setting(crate::live_view::SETTING_HASH_KEY).await? {
        Some(sealed) => {
            let name = crate::live_view::SETTING_HASH_KEY;
            let plain = master.open(name, &sealed)?;
            store.set_setting(name, &master.seal(name, &plain)).await?;
            true
        }
        None => false,
    };
    Ok(Resealed {
        signing_keys: keys.len(),
        hash_key,
    })
}

/// Whether every stored value opens with the ring's sealing key alone: then the older
/// keys of the ring are no longer needed.
pub async fn all_under_current(store: &dyn Store, master: &MasterKey) -> Result<bool, KeyOpError> {
    let keys = store.signing_keys().await?;
    let keys_ok = keys
        .iter()
        .all(|k| master.opens_with_current(&label(&k.kid), &k.encrypted_private_key));
    let name = crate::live_view::SETTING_HASH_KEY;
    let hash_ok = match store.setting(name).await? {
        Some(sealed) => master.opens_with_current(name, &sealed),
        None => true,
    };
    Ok(keys_ok && hash_ok)
}
