//! Identifiers. Each is a newtype built by a fallible parse at the edge (HTTP, CLI,
//! store rows), so code inside never re-validates strings.
//!
//! Formats follow the vendors: an organization id looks like Adobe's IMS org id
//! (`4F2A9C1B7D3E5A6B8C0D1E2F@Org`), a client id (the public API key) is 32 lowercase hex
//! digits, a technical account id is `<24 hex>@techacct.portcullis`.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::sync::Arc;

/// Why an identifier did not parse; the message is shown to callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdError(pub String);

/// Deserialize a string with `parse`, from the borrowed text where the format allows
/// (JSON without escapes) rather than a temporary `String`: a start decodes every
/// stored record, millions of ids.
pub(crate) fn parse_str<'de, D, T, E>(d: D, parse: fn(&str) -> Result<T, E>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    E: fmt::Display,
{
    struct Text<T, E>(fn(&str) -> Result<T, E>);
    impl<T, E: fmt::Display> serde::de::Visitor<'_> for Text<T, E> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<Er: serde::de::Error>(self, s: &str) -> Result<T, Er> {
            (self.0)(s).map_err(Er::custom)
        }
    }
    d.deserialize_str(Text(parse))
}

fn is_hex(s: &str, upper: bool) -> bool {
    s.bytes().all(|b| {
        b.is_ascii_digit()
            || if upper {
                (b'A'..=b'F').contains(&b)
            } else {
                (b'a'..=b'f').contains(&b)
            }
    })
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $parse:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Parse from untrusted text.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> Result<(), IdError> = $parse;
                check(s)?;
                Ok(Self(Arc::from(s)))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                parse_str(d, Self::parse)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// An organization (tenant) id: 24 uppercase hex digits and `@Org`.
    OrgId,
    |s| {
        match s.strip_suffix("@Org") {
            Some(hex) if hex.len() == 24 && is_hex(hex, true) => Ok(()),
            _ => Err(IdError(format!(
                "'{}' is not an organization id: expected 24 uppercase hex digits followed by '@Org', like 4F2A9C1B7D3E5A6B8C0D1E2F@Org",
                truncate(s)
            ))),
        }
    }
);

string_id!(
    /// An application's public client id (its API key): 32 lowercase hex digits.
    ClientId,
    |s| {
        if s.len() == 32 && is_hex(s, false) {
            Ok(())
        } else {
            Err(IdError(format!(
                "'{}' is not a client id: expected 32 lowercase hex digits",
                truncate(s)
            )))
        }
    }
);

string_id!(
    /// An application's technical account id (the `sub` of its tokens).
    TechAccountId,
    |s| {
        match s.strip_suffix("@techacct.portcullis") {
            Some(hex) if hex.len() == 24 && is_hex(hex, true) => Ok(()),
            _ => Err(IdError(format!("'{}' is not a technical account id", truncate(s)))),
        }
    }
);

string_id!(
    /// A short opaque id for records that are not addressed from outside by a
    /// well-known format: secrets, users, groups, signing keys. 16 lowercase hex digits
    /// behind a type prefix (`sec_`, `usr_`, `grp_`, `key_`).
    RecordId,
    |s| {
        match s.split_once('_') {
            Some((p, hex))
                if (1..=8).contains(&p.len())
                    && p.bytes().all(|b| b.is_ascii_lowercase())
                    && hex.len() == 16
                    && is_hex(hex, false) =>
            {
                Ok(())
            }
            _ => Err(IdError(format!(
                "'{}' is not a record id: expected a prefix and 16 hex digits, like sec_0123456789abcdef",
                truncate(s)
            ))),
        }
    }
);

/// A product name (`events`, `notifications`) or sandbox name (`prod`, `dev`):
/// 1–64 characters of lowercase letters, digits, `-` and `_`, starting with a letter.
pub fn check_name(kind: &str, s: &str) -> Result<(), IdError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(IdError(format!(
            "'{}' is not a valid {kind} name: use 1-64 lowercase letters, digits, '-' or '_', starting with a letter",
            truncate(s)
        )))
    }
}

fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

impl OrgId {
    pub fn generate() -> Self {
        Self(Arc::from(format!(
            "{}@Org",
            hex::encode_upper(crate::random_bytes::<12>())
        )))
    }
}

impl ClientId {
    pub fn generate() -> Self {
        Self(Arc::from(hex::encode(crate::random_bytes::<16>())))
    }
}

impl TechAccountId {
    pub fn generate() -> Self {
        Self(Arc::from(format!(
            "{}@techacct.portcullis",
            hex::encode_upper(crate::random_bytes::<12>())
        )))
    }
}

impl RecordId {
    /// A fresh id with the given prefix (`sec`, `usr`, `grp`, `key`).
    pub fn generate(prefix: &str) -> Self {
        debug_assert!(prefix.bytes().all(|b| b.is_ascii_lowercase()));
        Self(Arc::from(format!(
            "{prefix}_{}",
            hex::encode(crate::random_bytes::<8>())
        )))
    }
    /// The type prefix (`sec`, `usr`, …).
    pub fn prefix(&self) -> &str {
        self.0.split_once('_').map(|(p, _)| p).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse() {
        assert!(OrgId::parse(OrgId::generate().as_str()).is_ok());
        assert!(ClientId::parse(ClientId::generate().as_str()).is_ok());
        assert!(TechAccountId::parse(TechAccountId::generate().as_str()).is_ok());
        let r = RecordId::generate("sec");
        assert_eq!(r.prefix(), "sec");
        assert!(RecordId::parse(r.as_str()).is_ok());
    }

    #[test]
    fn malformed_ids_are_refused_with_a_hint() {
        let e = OrgId::parse("4f2a9c1b7d3e5a6b8c0d1e2f@Org").unwrap_err();
        assert!(e.0.contains("uppercase"), "{e}");
        assert!(ClientId::parse("ABC").is_err());
        assert!(ClientId::parse(&"g".repeat(32)).is_err());
        assert!(RecordId::parse("sec_xyz").is_err());
        assert!(check_name("product", "Events").is_err());
        assert!(check_name("product", "events").is_ok());
    }

    #[test]
    fn ids_decode_from_escaped_and_plain_json_strings_alike() {
        let plain: ClientId =
            serde_json::from_str(r#""0123456789abcdef0123456789abcdef""#).unwrap();
        let escaped: ClientId =
            serde_json::from_str(r#""\u0030123456789abcdef0123456789abcdef""#).unwrap();
        assert_eq!(plain, escaped);
        let owned: ClientId =
            serde_json::from_value(serde_json::json!("0123456789abcdef0123456789abcdef")).unwrap();
        assert_eq!(plain, owned);
        let e = serde_json::from_str::<ClientId>("17")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a string"), "{e}");
        let e = serde_json::from_str::<ClientId>(r#""ABC""#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a client id"), "{e}");
    }

    #[test]
    fn long_input_is_truncated_in_errors() {
        let e = ClientId::parse(&"x".repeat(10_000)).unwrap_err();
        assert!(e.0.len() < 200);
    }
}
