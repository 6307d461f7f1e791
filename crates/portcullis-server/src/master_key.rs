//! The master key: 32 bytes that encrypt Portcullis's own secrets at rest (signing keys,
//! the secret-hash key) with AES-256-GCM. All nodes of one cluster share it.
//!
//! Sources, in order: `PORTCULLIS_MASTER_KEY` (base64 of 32 bytes), `--master-key-file`,
//! else `<data-dir>/master.key`, created with mode 0600 on first start.
//!
//! **A key ring.** The file (or the variable, comma-separated) may hold several keys, one
//! a line: the first *seals* new values, every one of them *opens*. That is how
//! `portcullis master-key rotate` changes the key without downtime: it writes the new key
//! in front of the old one, then re-seals every stored value under the new key. A running
//! server that meets a value its ring cannot open re-reads its key file once and tries
//! again ([`MasterKey::open`]), so it learns the new key by itself; until then it keeps
//! serving from what it had decrypted. `portcullis master-key retire` drops the old keys
//! once nothing needs them.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// The key ring, kept only in memory. `Debug` is redacted.
pub struct MasterKey {
    /// First: the sealing key; all: opening keys. Replaced when the file is re-read.
    ring: std::sync::RwLock<Arc<Vec<LessSafeKey>>>,
    /// The key file this ring was read from, re-read when a value does not open.
    file: Option<PathBuf>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self::from_ring(vec![aead_key(bytes)], None)
    }

    fn from_ring(ring: Vec<LessSafeKey>, file: Option<PathBuf>) -> Self {
        Self {
            ring: std::sync::RwLock::new(Arc::new(ring)),
            file,
        }
    }

    /// One key, or a ring: keys separated by newlines or commas, the sealing key first.
    pub fn from_base64(text: &str) -> Result<Self, MasterKeyError> {
        Ok(Self::from_ring(parse_ring(text)?, None))
    }

    /// How many keys the ring holds (1 unless a rotation is in progress).
    pub fn ring_len(&self) -> usize {
        self.keys().len()
    }

    /// The key file the ring came from, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    fn keys(&self) -> Arc<Vec<LessSafeKey>> {
        self.ring
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Re-read the key file (after `master-key rotate` changed it). False when there is no
    /// file or it cannot be read.
    pub fn reload(&self) -> bool {
        let Some(path) = &self.file else {
            return false;
        };
        match std::fs::read_to_string(path)
            .map_err(|_| ())
            .and_then(|t| parse_ring(&t).map_err(|_| ()))
        {
            Ok(ring) => {
                if let Ok(mut r) = self.ring.write() {
                    *r = Arc::new(ring);
                }
                tracing::info!(path = %path.display(), "re-read the master key file");
                true
            }
            Err(()) => false,
        }
    }

    /// Read the key file, or create it (0600) with a fresh key if it does not exist.
    /// Returns the key and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), MasterKeyError> {
        let io = |err| MasterKeyError::Io {
            path: path.display().to_string(),
            err,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((
                Self::from_ring(parse_ring(&text)?, Some(path.into())),
                false,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = portcullis_core::random_bytes::<32>();
                let text = format!("{}\n", B64.encode(bytes));
                write_private_file(path, text.as_bytes()).map_err(io)?;
                Ok((
                    Self::from_ring(vec![aead_key(&bytes)], Some(path.into())),
                    true,
                ))
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
        Ok(Self::from_ring(parse_ring(&text)?, Some(path.into())))
    }

    /// `base64(nonce ‖ ciphertext ‖ tag)`; `label` is bound as associated data so a
    /// ciphertext cannot be moved to another purpose.
    pub fn seal(&self, label: &str, plaintext: &[u8]) -> String {
        let nonce_bytes = portcullis_core::random_bytes::<NONCE_LEN>();
        let mut buf = plaintext.to_vec();
        let keys = self.keys();
        keys[0]
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

    /// Open with any key of the ring; when none opens it, re-read the key file once (a
    /// rotation may have added the key) and try again.
    pub fn open(&self, label: &str, sealed: &str) -> Result<Vec<u8>, MasterKeyError> {
        match self.open_with(&self.keys(), label, sealed) {
            Err(MasterKeyError::Decrypt) if self.reload() => {
                self.open_with(&self.keys(), label, sealed)
            }
            other => other,
        }
    }

    /// Whether the sealing key alone opens `sealed` (it is sealed under the current key).
    pub fn opens_with_current(&self, label: &str, sealed: &str) -> bool {
        let keys = self.keys();
        self.open_with(&keys[..1], label, sealed).is_ok()
    }

    fn open_with(
        &self,
        keys: &[LessSafeKey],
        label: &str,
        sealed: &str,
    ) -> Result<Vec<u8>, MasterKeyError> {
        let raw = B64.decode(sealed).map_err(|_| MasterKeyError::Decrypt)?;
        if raw.len() < NONCE_LEN {
            return Err(MasterKeyError::Decrypt);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        for key in keys {
            let nonce =
                Nonce::try_assume_unique_for_key(nonce).map_err(|_| MasterKeyError::Decrypt)?;
            let mut buf = ct.to_vec();
            if let Ok(plain) = key.open_in_place(nonce, Aad::from(label.as_bytes()), &mut buf) {
                return Ok(plain.to_vec());
            }
        }
        Err(MasterKeyError::Decrypt)
    }
}

fn aead_key(bytes: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("32 bytes is an AES-256 key"))
}

fn parse_one(text: &str) -> Result<[u8; 32], MasterKeyError> {
    let raw = B64
        .decode(text.trim())
        .map_err(|e| MasterKeyError::Format(e.to_string()))?;
    raw.try_into()
        .map_err(|v: Vec<u8>| MasterKeyError::Format(format!("got {} bytes", v.len())))
}

fn parse_ring(text: &str) -> Result<Vec<LessSafeKey>, MasterKeyError> {
    let ring = text
        .split(['\n', ','])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| parse_one(l).map(|b| aead_key(&b)))
        .collect::<Result<Vec<_>, _>>()?;
    if ring.is_empty() {
        return Err(MasterKeyError::Format("no key in it".into()));
    }
    Ok(ring)
}

/// A fresh key, as the base64 line of a key file.
pub fn generate_key_line() -> String {
    B64.encode(portcullis_core::random_bytes::<32>())
}

/// Replace the key file with `lines` (the sealing key first), atomically: a temporary
/// file in the same directory (mode 0600, synced), renamed over the old one, the
/// directory synced. A reader sees the old ring or the new one, never half of one.
pub fn replace_key_file(path: &Path, lines: &[String]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.new",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("master.key")
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut text = lines.join("\n");
    text.push('\n');
    write_private_file(&tmp, text.as_bytes())?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The key file's lines (base64 keys, the sealing key first).
pub fn key_file_lines(path: &Path) -> std::io::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
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
    fn a_ring_seals_with_its_first_key_and_opens_with_any() {
        let old = MasterKey::from_bytes(&[1; 32]);
        let sealed_old = old.seal("x", b"old");
        let ring =
            MasterKey::from_base64(&format!("{},{}", B64.encode([2; 32]), B64.encode([1; 32])))
                .unwrap();
        assert_eq!(ring.ring_len(), 2);
        assert_eq!(ring.open("x", &sealed_old).unwrap(), b"old");
        assert!(!ring.opens_with_current("x", &sealed_old));
        let sealed_new = ring.seal("x", b"new");
        assert!(ring.opens_with_current("x", &sealed_new));
        assert!(old.open("x", &sealed_new).is_err());
        assert_eq!(
            MasterKey::from_bytes(&[2; 32])
                .open("x", &sealed_new)
                .unwrap(),
            b"new"
        );
    }

    #[test]
    fn a_value_sealed_under_a_key_added_to_the_file_later_opens_after_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        let (running, _) = MasterKey::load_or_create(&p).unwrap();
        let mut lines = key_file_lines(&p).unwrap();
        lines.insert(0, generate_key_line());
        replace_key_file(&p, &lines).unwrap();
        let rotated = MasterKey::load(&p).unwrap();
        let sealed = rotated.seal("x", b"secret");
        // The running ring has not seen the new key; open() re-reads the file.
        assert_eq!(running.ring_len(), 1);
        assert_eq!(running.open("x", &sealed).unwrap(), b"secret");
        assert_eq!(running.ring_len(), 2);
    }

    #[test]
    fn bad_base64_is_a_clear_error() {
        assert!(matches!(
            MasterKey::from_base64("AAAA"),
            Err(MasterKeyError::Format(_))
        ));
    }
}
