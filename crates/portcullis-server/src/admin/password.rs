//! Human passwords: argon2id (OWASP parameters), hashed and checked on a blocking
//! thread. A login for an unknown email still verifies against a dummy hash so the time
//! taken does not reveal whether the account exists.
//!
//! [`sign_in`] is the one password check of every path that takes a person's password —
//! the admin API's `POST /admin/v1/sessions` (and so the console), Wave's Basic
//! authentication and its authorize page — so each has the same two limits: failures per
//! client address ([`crate::PASSWORD_FAILURES_PER_ADDRESS`] a minute, against one
//! guesser trying many accounts) and per account ([`crate::LOGIN_LOCKOUT_LIMIT`], against
//! many addresses trying one).

use crate::problem::Problem;
use crate::state::AppState;
use portcullis_core::model::User;
use std::net::IpAddr;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

fn hasher() -> Argon2<'static> {
    // 19 MiB, 2 iterations, 1 lane: OWASP's argon2id recommendation.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < 10 {
        return Err("The password must have at least 10 characters.".into());
    }
    if password.len() > 1024 {
        return Err("The password must have at most 1024 bytes.".into());
    }
    Ok(())
}

/// PHC string of a fresh argon2id hash.
pub async fn hash(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&portcullis_core::random_bytes::<16>())
            .map_err(|e| e.to_string())?;
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Zp7Qm2cW1l1g2f2k6N8wq3zvVnE5v0t3m1c6X9a9YkM";

/// Check `password` against `phc` (or the dummy hash when there is no user).
pub async fn verify(password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        // A user without a usable password (invited, or reset: not a PHC string) is
        // checked against the dummy too, so the time taken does not tell them apart.
        let real = phc.as_deref().and_then(|p| PasswordHash::new(p).ok());
        let exists = real.is_some();
        let dummy = PasswordHash::new(DUMMY).expect("the dummy hash parses");
        let ok = hasher()
            .verify_password(password.as_bytes(), real.as_ref().unwrap_or(&dummy))
            .is_ok();
        ok && exists
    })
    .await
    .unwrap_or(false)
}

/// Why a password sign-in was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The email or password is wrong, or there is no such account: one answer for all.
    Wrong,
    /// Too many failed sign-ins from this client address; seconds until it may try again.
    Address(u64),
    /// Too many wrong passwords for this account; seconds until it may try again.
    Account(u64),
}

impl Refused {
    /// The admin API's answer: 401, or 429 with `Retry-After`.
    pub fn problem(self) -> Problem {
        match self {
            Refused::Wrong => Problem::unauthorized("The email or password is wrong."),
            Refused::Account(retry) => super::sessions::locked(retry),
            Refused::Address(retry) => Problem::new(
                429,
                "rate-limited",
                "PCS-0429-429",
                "Too many requests",
                format!(
                    "Too many failed sign-ins from your address; sign-ins from it are refused for {retry} s (see Retry-After)."
                ),
            )
            .with_retry_after(retry),
        }
    }
}

/// Check a person's password, under both limits; the user, or why not. Each attempt is
/// counted against the address and the account *before* the password is checked (and
/// given back if it was right), so attempts sent at once cannot all slip under the limits.
pub async fn sign_in(
    state: &AppState,
    client: Option<IpAddr>,
    email: &str,
    password: &str,
) -> Result<Result<User, Refused>, portcullis_store::StoreError> {
    let now = state.now();
    if let Some(ip) = client
        && let Err(retry) = state.password_failures.try_record(ip, now)
    {
        return Ok(Err(Refused::Address(retry)));
    }
    let forgive_address = || {
        if let Some(ip) = client {
            state.password_failures.forgive(ip, now);
        }
    };
    let normalised = super::users::normalise_email(email).ok();
    if let Some(e) = &normalised
        && let Err(retry) = state.logins.try_record(e, now)
    {
        // Refused unchecked: not a guess from this address.
        forgive_address();
        return Ok(Err(Refused::Account(retry)));
    }
    let found = match &normalised {
        Some(e) if password.len() <= 1024 => state.store.user_by_email(e).await?,
        _ => None,
    };
    let (user, phc) = found.map_or((None, None), |(u, h)| (Some(u), Some(h)));
    // Verify even when the user does not exist (against a dummy hash): same time either way.
    let ok = verify(password.to_owned(), phc).await;
    match (ok, user) {
        (true, Some(u)) => {
            state.logins.clear(&u.email);
            forgive_address();
            Ok(Ok(u))
        }
        _ => {
            tracing::info!("password sign-in refused");
            Ok(Err(Refused::Wrong))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), Some(h.clone())).await);
        assert!(!verify("wrong password!".into(), Some(h)).await);
        assert!(!verify("anything at all".into(), None).await);
        assert!(!verify("anything at all".into(), Some("!".into())).await);
    }

    #[test]
    fn policy() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("long enough pw").is_ok());
    }
}
