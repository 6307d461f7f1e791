//! Human passwords: argon2id (OWASP parameters), hashed and checked on a blocking
//! thread. A login for an unknown email still verifies against a dummy hash so the time
//! taken does not reveal whether the account exists.

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
