//! The seal of a backup: proof, under the master key, that a backup file is byte for byte
//! the one `portcullis backup` wrote, and when it was taken.
//!
//! A backup holds password hashes, secret hashes and the audit trail. Anyone who can
//! write to where backups are kept could otherwise edit one (copy their own password hash
//! over an administrator's, delete audit rows) and wait for it to be restored. So the
//! backup's SHA-256 digest and the time it was taken are sealed with the master key
//! (AES-256-GCM, the label bound as associated data) into a small file beside it,
//! `<backup>.seal`; `restore` opens the seal with the master key, refuses a file whose
//! digest differs, and says when the backup it restores was taken. Without the master key
//! no one can make a seal that opens.
//!
//! The digest is of the bytes `backup` itself wrote through its own file handle
//! ([`copy_private`]), never of a path read back afterwards: whoever can rename files
//! where backups are kept cannot get their own file sealed.

use crate::master_key::MasterKey;
use aws_lc_rs::digest::{Context, SHA256};
use std::io::{Read, Write};
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

/// Create a new file readable by its owner only. Never opens an existing file, and so
/// never follows a symbolic link planted at `path`.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Copy `from` into the open file `to`, synced, and return the SHA-256 of the bytes
/// written: what was hashed is what is in `to`, whatever happens to the paths.
pub fn copy_private(from: &mut std::fs::File, to: &mut std::fs::File) -> std::io::Result<[u8; 32]> {
    let mut ctx = Context::new(&SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        to.write_all(&buf[..n])?;
    }
    to.sync_all()?;
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    Ok(out)
}

/// The contents of the seal file for a backup whose bytes have `digest`, taken at
/// `taken_at` (unix seconds).
pub fn seal(master: &MasterKey, digest: &[u8; 32], taken_at: i64) -> String {
    let mut plain = digest.to_vec();
    plain.extend_from_slice(&taken_at.to_be_bytes());
    format!("{HEADER}\n{}\n", master.seal(LABEL, &plain))
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

/// Check that `digest` is the one sealed in `seal_text`; when it is, the time the backup
/// was taken (unix seconds).
pub fn check(master: &MasterKey, seal_text: &str, digest: &[u8; 32]) -> Result<i64, SealError> {
    let mut lines = seal_text.lines();
    if lines.next() != Some(HEADER) {
        return Err(SealError::NotASeal);
    }
    let sealed = lines.next().ok_or(SealError::NotASeal)?.trim();
    let plain = master
        .open(LABEL, sealed)
        .map_err(|_| SealError::OtherKey)?;
    let (sealed_digest, taken_at) = plain.split_at_checked(32).ok_or(SealError::NotASeal)?;
    let taken_at: [u8; 8] = taken_at.try_into().map_err(|_| SealError::NotASeal)?;
    // Neither digest is secret; a constant-time comparison costs nothing all the same.
    aws_lc_rs::constant_time::verify_slices_are_equal(sealed_digest, digest)
        .map_err(|_| SealError::Altered)?;
    Ok(i64::from_be_bytes(taken_at))
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
        let text = seal(&key(1), &digest, 1_700_000_000);
        assert_eq!(check(&key(1), &text, &digest), Ok(1_700_000_000));
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
    fn the_digest_is_of_the_bytes_written() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, b"snapshot bytes").unwrap();
        let mut to = create_private(&dir.path().join("dst")).unwrap();
        let digest = copy_private(&mut std::fs::File::open(&src).unwrap(), &mut to).unwrap();
        let expected = aws_lc_rs::digest::digest(&SHA256, b"snapshot bytes");
        assert_eq!(&digest[..], expected.as_ref());
        assert_eq!(
            std::fs::read(dir.path().join("dst")).unwrap(),
            b"snapshot bytes"
        );
        // A planted file or symbolic link is never opened.
        std::os::unix::fs::symlink(&src, dir.path().join("link")).unwrap();
        assert!(create_private(&dir.path().join("link")).is_err());
        assert!(create_private(&src).is_err());
    }

    #[test]
    fn the_seal_sits_beside_its_backup() {
        assert_eq!(
            seal_path(Path::new("/b/snap.db")),
            PathBuf::from("/b/snap.db.seal")
        );
    }
}
