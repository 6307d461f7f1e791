//! The two tab-separated files the benchmark passes around: the credentials
//! `portcullis bench-seed` writes and the tokens `mint` writes. Both start with a `#`
//! header line and are owner-only (mode 0600): they hold secrets and bearer tokens.

use std::io::Write as _;
use std::path::Path;

/// One sampled app: `client_id \t secret \t org \t resource`.
#[derive(Debug, Clone)]
pub struct Credential {
    pub client_id: String,
    pub secret: String,
    pub org: String,
    pub resource: String,
}

/// One minted token and what a gateway check with it names:
/// `token \t client_id \t org \t resource`.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    pub client_id: String,
    pub org: String,
    pub resource: String,
}

fn rows(path: &Path) -> Result<Vec<[String; 4]>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let rows: Vec<[String; 4]> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            match f.as_slice() {
                [a, b, c, d] => Ok([a, b, c, d].map(|s| s.to_string())),
                _ => Err(format!(
                    "{}: a line without 4 tab-separated fields",
                    path.display()
                )),
            }
        })
        .collect::<Result<_, _>>()?;
    if rows.is_empty() {
        return Err(format!("{} has no entries", path.display()));
    }
    Ok(rows)
}

pub fn credentials(path: &Path) -> Result<Vec<Credential>, String> {
    Ok(rows(path)?
        .into_iter()
        .map(|[client_id, secret, org, resource]| Credential {
            client_id,
            secret,
            org,
            resource,
        })
        .collect())
}

pub fn tokens(path: &Path) -> Result<Vec<Minted>, String> {
    Ok(rows(path)?
        .into_iter()
        .map(|[token, client_id, org, resource]| Minted {
            token,
            client_id,
            org,
            resource,
        })
        .collect())
}

/// A new owner-only (0600) file at `path`, truncated, buffered; and the error text for a
/// failed write to it.
pub fn create_private(
    path: &Path,
) -> Result<
    (
        std::io::BufWriter<std::fs::File>,
        impl Fn(std::io::Error) -> String,
    ),
    String,
> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let shown = path.display().to_string();
    let fail = move |e: std::io::Error| format!("cannot write {shown}: {e}");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(&fail)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(&fail)?;
    Ok((std::io::BufWriter::new(file), fail))
}

pub fn write_tokens(path: &Path, minted: &[Minted]) -> Result<(), String> {
    let (mut out, fail) = create_private(path)?;
    writeln!(out, "# token\tclient_id\torg\tresource").map_err(&fail)?;
    for m in minted {
        writeln!(
            out,
            "{}\t{}\t{}\t{}",
            m.token, m.client_id, m.org, m.resource
        )
        .map_err(&fail)?;
    }
    out.flush().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_through_an_owner_only_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.tsv");
        let minted = vec![Minted {
            token: "eyJ.a.b".into(),
            client_id: "c1".into(),
            org: "O@Org".into(),
            resource: "res_1".into(),
        }];
        write_tokens(&path, &minted).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = tokens(&path).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].token, "eyJ.a.b");
        assert_eq!(back[0].resource, "res_1");
    }

    #[test]
    fn a_short_line_or_an_empty_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.tsv");
        std::fs::write(&path, "# header\nonly\ttwo\n").unwrap();
        assert!(credentials(&path).unwrap_err().contains("4 tab-separated"));
        std::fs::write(&path, "# header\n").unwrap();
        assert!(credentials(&path).unwrap_err().contains("no entries"));
    }
}
