//! `portcullis keys list` and `portcullis keys rotate`: work on the signing keys directly in
//! the data directory, with the same master key as the server. A running server notices the
//! change by itself within a second, so rotating needs no restart and no admin token.
//!
//! These commands log only warnings (RUST_LOG overrides): their output is the table or the
//! summary on stdout.

use super::{Failure, open_data as open, rfc3339};
use crate::cli::{KeysListArgs, KeysRotateArgs};
use crate::settings::SigningAlg;
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::model::{KeyState, SigningKeyRecord};
use std::fmt::Write as _;

pub async fn list(args: KeysListArgs) -> Result<(), Failure> {
    let (_, store, _) = open(args.data.layer(), &args.config).await?;
    let mut keys = store.signing_keys().await.map_err(Failure::runtime)?;
    keys.sort_by_key(|k| (k.created_at, life_order(k.state)));
    print!("{}", table(&keys));
    Ok(())
}

pub async fn rotate(args: KeysRotateArgs) -> Result<(), Failure> {
    let (settings, store, master) = open(args.layer(), &args.config).await?;
    let max_age = i64::try_from(settings.jwks_max_age).unwrap_or(i64::MAX);
    let rotation = portcullis_server::keys::rotate(
        &*store,
        &master,
        args.alg.map(SigningAlg::alg),
        SystemClock.now(),
        max_age,
        args.force,
    )
    .await
    .map_err(Failure::runtime)?;
    let keys = store.signing_keys().await.map_err(Failure::runtime)?;
    let find = |kid: &str| keys.iter().find(|k| k.kid == kid);
    let alg = |kid: &str| find(kid).map_or("?", |k| k.alg.as_str());

    let mut out = String::from("Rotated the signing keys:\n");
    let current = &rotation.current;
    let next = &rotation.next;
    let _ = writeln!(
        out,
        "  current  {current}  {}  signs new tokens from now on",
        alg(current)
    );
    let _ = writeln!(
        out,
        "  next     {next}  {}  published in the JWKS for the next rotation",
        alg(next)
    );
    if let Some(retired) = &rotation.retired {
        let until = find(retired)
            .and_then(|k| k.retired_until)
            .map_or_else(|| "its tokens expire".to_owned(), rfc3339);
        let _ = writeln!(
            out,
            "  retired  {retired}  {}  still published, to verify its tokens, until {until}",
            alg(retired)
        );
    }
    out.push_str("A running server picks up the change within a second.\n");
    print!("{out}");
    Ok(())
}

/// Keys created together (on first start) list current before next.
fn life_order(state: KeyState) -> u8 {
    match state {
        KeyState::Retired => 0,
        KeyState::Current => 1,
        KeyState::Next => 2,
    }
}

fn state_name(state: KeyState) -> &'static str {
    match state {
        KeyState::Next => "next",
        KeyState::Current => "current",
        KeyState::Retired => "retired",
    }
}

/// Left-aligned columns, `-` for a time that has not happened.
fn table(keys: &[SigningKeyRecord]) -> String {
    let when = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), rfc3339);
    let mut rows = vec![
        [
            "KID",
            "ALG",
            "STATE",
            "CREATED",
            "ACTIVATED",
            "RETIRED_UNTIL",
        ]
        .map(String::from),
    ];
    rows.extend(keys.iter().map(|k| {
        [
            k.kid.clone(),
            k.alg.as_str().to_owned(),
            state_name(k.state).to_owned(),
            rfc3339(k.created_at),
            when(k.activated_at),
            when(k.retired_until),
        ]
    }));
    let mut widths = [0; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::token::Alg;

    fn key(
        kid: &str,
        state: KeyState,
        activated: Option<i64>,
        retired: Option<i64>,
    ) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: kid.into(),
            alg: Alg::ES256,
            state,
            public_jwk: serde_json::Value::Null,
            encrypted_private_key: String::new(),
            created_at: 1_750_000_000,
            activated_at: activated,
            retired_until: retired,
        }
    }

    #[test]
    fn the_table_has_aligned_columns_and_utc_times() {
        let text = table(&[
            key("key_a", KeyState::Current, Some(1_750_000_000), None),
            key("key_bb", KeyState::Next, None, None),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "KID     ALG    STATE    CREATED               ACTIVATED             RETIRED_UNTIL"
        );
        assert_eq!(
            lines[1],
            "key_a   ES256  current  2025-06-15T15:06:40Z  2025-06-15T15:06:40Z  -"
        );
        assert_eq!(
            lines[2],
            "key_bb  ES256  next     2025-06-15T15:06:40Z  -                     -"
        );
    }

    #[test]
    fn keys_made_together_list_in_the_order_of_their_life() {
        let mut keys = [
            key("n", KeyState::Next, None, None),
            key("c", KeyState::Current, None, None),
            key("r", KeyState::Retired, None, None),
        ];
        keys.sort_by_key(|k| (k.created_at, life_order(k.state)));
        assert_eq!(keys.map(|k| k.kid), ["r", "c", "n"]);
    }
}
