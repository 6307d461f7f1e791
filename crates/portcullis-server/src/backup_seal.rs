//! The seal of a backup: proof, under the master key, that a backup file is byte for byte
//! the one `portcullis backup` wrote.
//!
//! A backup holds password hashes, secret hashes and the audit trail. Anyone who can
//! write to where backups are kept could otherwise edit one (copy their own password hash
//! over an administrator's, delete audit rows) and wait for it to be restored. So the
//! backup's SHA-256 digest is sealed with the master key (AES-256-GCM, the label bound as
//! associated data) into a small file beside it, `<backup>.seal`; `restore` opens the
//! seal with the master key and refuses a file whose digest differs. Without the master
//! key no one can make a seal that opens.

use crate::master_key::MasterKey;
use aws_lc_rs::digest::{Context, SHA256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What the seal is bound to: it opens for nothing else sealed under the master key.
const LABEL: &str = "backup-digest-v1";
/// The first line of a seal file, so that a stray file is told apart from a damaged seal.
const HEADER: &str = "portcullis backup seal v1";

/// Where the seal of `backup` lives.
pub fn seal_path(backup: &Path) -> PathBuf {
    let mut name = backup.as_os_str().to_owned();
    name.push(".seal");
    PathBuf::from(name)
}

/// SHA-256 of a file's bytes.
pub fn digest_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut ctx = Context::new(&SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    Ok(out)
}

/// The contents of the seal file for a backup whose digest is `digest`.
pub fn seal(master: &MasterKey, digest: &[u8; 32]) -> String {
    format!("{HEADER}\n{}\n", master.seal(LABEL, digest))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("it is not a Portcullis backup seal")]
    NotASeal,
    #[error(
        "the master key does not open it: the backup was taken under another master key (put that key in place and restore again)"
    )]
    OtherKey,
    #[error(
        "the backup does not match it: the file was changed after `portcullis backup` wrote it, and is refused"
    )]
    Altered,
}

/// Check that `digest` is the one sealed in `seal_text`.
pub fn check(master: &MasterKey, seal_text: &str, digest: &[u8; 32]) -> Result<(), SealError> {
    let mut lines = seal_text.lines();
    if lines.next() != Some(HEADER) {
        return Err(SealError::NotASeal);
    }
    let sealed = lines.next().ok_or(SealError::NotASeal)?.trim();
    let sealed_digest = master
        .open(LABEL, sealed)
        .map_err(|_| SealError::OtherKey)?;
    // Neither digest is secret; a constant-time comparison costs nothing all the same.
    aws_lc_rs::constant_time::verify_slices_are_equal(&sealed_digest, digest)
        .map_err(|_| SealError::Altered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&[byte; 32])
    }

    #[test]
    fn a_seal_opens_for_its_digest_only_and_under_its_key_only() {
        let digest = [7u8; 32];
        let text = seal(&key(1), &digest);
        assert_eq!(check(&key(1), &text, &digest), Ok(()));
        let mut other = digest;
        other[31] ^= 1;
        assert_eq!(check(&key(1), &text, &other), Err(SealError::Altered));
        assert_eq!(check(&key(2), &text, &digest), Err(SealError::OtherKey));
        assert_eq!(
            check(&key(1), "hello\nworld\n", &digest),
            Err(SealError::NotASeal)
        );
    }

    #[test]
    fn a_seal_made_for_another_purpose_does_not_open_as_a_backup_seal() {
        let master = key(1);
        let digest = [7u8; 32];
        let foreign = format!("{HEADER}\n{}\n", master.seal("secret_hash_key", &digest));
        assert_eq!(check(&master, &foreign, &digest), Err(SealError::OtherKey));
    }

    #[test]
    fn the_seal_sits_beside_its_backup() {
        assert_eq!(
            seal_path(Path::new("/b/snap.db")),
            PathBuf::from("/b/snap.db.seal")
        );
    }
}
