//! The master key: 32 bytes that encrypt Portcullis's own secrets at rest (signing keys,
//! the secret-hash key) with AES-256-GCM. All nodes of one cluster share it.
//!
//! Sources, in order: `PORTCULLIS_MASTER_KEY` (base64 of 32 bytes), `--master-key-file`,
//! else `<data-dir>/master.key`, created with mode 0600 on first start.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::fmt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("the master key must be base64 of exactly 32 bytes ({0})")]
    Format(String),
    #[error("cannot read or create the master key file {path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error(
        "a stored value could not be decrypted: the master key is not the one it was encrypted with (all nodes and the CLI must use the same master key)"
    )]
    Decrypt,
}

/// The key, kept only in memory. `Debug` is redacted.
pub struct MasterKey {
    key: LessSafeKey,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, bytes).expect("32 bytes is an AES-256 key");
        Self {
            key: LessSafeKey::new(key),
        }
    }

    pub fn from_base64(text: &str) -> Result<Self, MasterKeyError> {
        let raw = B64
            .decode(text.trim())
            .map_err(|e| MasterKeyError::Format(e.to_string()))?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|v: Vec<u8>| MasterKeyError::Format(format!("got {} bytes", v.len())))?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Read the key file, or create it (0600) with a fresh key if it does not exist.
    /// Returns the key and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), MasterKeyError> {
        let io = |err| MasterKeyError::Io {
            path: path.display().to_string(),
            err,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::from_base64(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = portcullis_core::random_bytes::<32>();
                let text = format!("{}\n", B64.encode(bytes));
                write_private_file(path, text.as_bytes()).map_err(io)?;
                Ok((Self::from_bytes(&bytes), true))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Read an existing key file (the CLI never creates one: it would not match the
    /// server's).
    pub fn load(path: &Path) -> Result<Self, MasterKeyError> {
        let text = std::fs::read_to_string(path).map_err(|err| MasterKeyError::Io {
            path: path.display().to_string(),
            err,
        })?;
        Self::from_base64(&text)
    }

    /// `base64(nonce ‖ ciphertext ‖ tag)`; `label` is bound as associated data so a
    /// ciphertext cannot be moved to another purpose.
    pub fn seal(&self, label: &str, plaintext: &[u8]) -> String {
        let nonce_bytes = portcullis_core::random_bytes::<NONCE_LEN>();
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(label.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM sealing");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        B64.encode(out)
    }

    pub fn open(&self, label: &str, sealed: &str) -> Result<Vec<u8>, MasterKeyError> {
        let raw = B64.decode(sealed).map_err(|_| MasterKeyError::Decrypt)?;
        if raw.len() < NONCE_LEN {
            return Err(MasterKeyError::Decrypt);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| MasterKeyError::Decrypt)?;
        let mut buf = ct.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(label.as_bytes()), &mut buf)
            .map_err(|_| MasterKeyError::Decrypt)?;
        Ok(plain.to_vec())
    }
}

/// Create a file readable by its owner only, failing if it exists.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_label_binding() {
        let k = MasterKey::from_bytes(&[7; 32]);
        let s = k.seal("a", b"hello");
        assert_eq!(k.open("a", &s).unwrap(), b"hello");
        assert!(k.open("b", &s).is_err());
        let other = MasterKey::from_bytes(&[8; 32]);
        assert!(other.open("a", &s).is_err());
    }

    #[test]
    fn key_file_is_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        let (_, created) = MasterKey::load_or_create(&p).unwrap();
        assert!(created);
        let (_, created) = MasterKey::load_or_create(&p).unwrap();
        assert!(!created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_base64_is_a_clear_error() {
        assert!(matches!(
            MasterKey::from_base64("AAAA"),
            Err(MasterKeyError::Format(_))
        ));
    }
}
