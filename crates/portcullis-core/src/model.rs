//! The records an operator manages. These are also the store's document format, so a
//! field added here needs `#[serde(default)]` to keep old rows readable.

use crate::ids::{ClientId, OrgId, RecordId, TechAccountId};
use crate::scope::ScopeSet;
use crate::secret::{HashKey, Secret, SecretHash};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgStatus {
    Active,
    Disabled,
}

impl OrgStatus {
    /// As on the wire: `active` or `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgStatus::Active => "active",
            OrgStatus::Disabled => "disabled",
        }
    }
}

/// A tenant: holds product entitlements and sandboxes; its apps and users act in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub status: OrgStatus,
    /// Products the org is entitled to; an app can only be added to these.
    #[serde(default)]
    pub products: BTreeSet<String>,
    /// Isolated environments (`prod`, `dev`); apps get read or write access per sandbox.
    #[serde(default)]
    pub sandboxes: BTreeSet<String>,
    pub created_at: i64,
    /// Tokens of the org's apps issued at or before this instant stay inactive, even once
    /// the org is active again: set when the org is disabled.
    #[serde(default)]
    pub tokens_invalid_before: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppStatus {
    Active,
    Suspended,
}

impl AppStatus {
    /// As on the wire: `active` or `suspended`.
    pub fn as_str(self) -> &'static str {
        match self {
            AppStatus::Active => "active",
            AppStatus::Suspended => "suspended",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxAccess {
    Read,
    Write,
}

impl SandboxAccess {
    /// As on the wire: `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxAccess::Read => "read",
            SandboxAccess::Write => "write",
        }
    }
}

/// A small set of names (an app's products): a JSON array in the store and the API, held
/// as a sorted vector for the same reason as [`SandboxGrants`] (a one-member `BTreeSet`
/// costs a 280-byte node).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct NameSet(Vec<String>);

impl NameSet {
    pub fn contains(&self, name: &str) -> bool {
        self.0.binary_search_by(|n| n.as_str().cmp(name)).is_ok()
    }
    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn clear(&mut self) {
        self.0.clear()
    }
    /// As a `BTreeSet` (the API's shape).
    pub fn to_set(&self) -> BTreeSet<String> {
        self.0.iter().cloned().collect()
    }
}

impl From<BTreeSet<String>> for NameSet {
    fn from(s: BTreeSet<String>) -> Self {
        let mut v: Vec<_> = s.into_iter().collect();
        v.shrink_to_fit();
        NameSet(v)
    }
}

impl FromIterator<String> for NameSet {
    fn from_iter<T: IntoIterator<Item = String>>(iter: T) -> Self {
        iter.into_iter().collect::<BTreeSet<_>>().into()
    }
}

impl<const N: usize> From<[String; N]> for NameSet {
    fn from(a: [String; N]) -> Self {
        a.into_iter().collect()
    }
}

impl<'de> Deserialize<'de> for NameSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Sorted in place, not through a `BTreeSet` (a start decodes every app's).
        let mut v = Vec::<String>::deserialize(d)?;
        v.sort_unstable();
        v.dedup();
        v.shrink_to_fit();
        Ok(NameSet(v))
    }
}

/// An app's access per sandbox name: a JSON object in the store and the API, held as a
/// short sorted vector (apps have one or two; a `BTreeMap` node costs ~300 bytes each,
/// which with a million apps in memory was a quarter of the view).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxGrants(Vec<(String, SandboxAccess)>);

impl SandboxGrants {
    pub fn get(&self, sandbox: &str) -> Option<&SandboxAccess> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(sandbox))
            .ok()
            .map(|i| &self.0[i].1)
    }
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &SandboxAccess)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// As a map (the API's shape).
    pub fn to_map(&self) -> BTreeMap<String, SandboxAccess> {
        self.0.iter().cloned().collect()
    }
}

impl From<BTreeMap<String, SandboxAccess>> for SandboxGrants {
    fn from(m: BTreeMap<String, SandboxAccess>) -> Self {
        // Already sorted and unique.
        let mut v: Vec<_> = m.into_iter().collect();
        v.shrink_to_fit();
        SandboxGrants(v)
    }
}

impl FromIterator<(String, SandboxAccess)> for SandboxGrants {
    /// A later entry for the same sandbox wins, as in a map.
    fn from_iter<T: IntoIterator<Item = (String, SandboxAccess)>>(iter: T) -> Self {
        let mut v: Vec<_> = iter.into_iter().collect();
        // Latest first, then a stable sort keeps it first among its sandbox's entries,
        // and `dedup_by` keeps the first of each run.
        v.reverse();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|later, kept| later.0 == kept.0);
        v.shrink_to_fit();
        SandboxGrants(v)
    }
}

impl<const N: usize> From<[(String, SandboxAccess); N]> for SandboxGrants {
    fn from(a: [(String, SandboxAccess); N]) -> Self {
        a.into_iter().collect()
    }
}

impl Serialize for SandboxGrants {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de> Deserialize<'de> for SandboxGrants {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Into a vector, not through a `BTreeMap` (a node a map, for every app at start).
        struct Grants;
        impl<'de> serde::de::Visitor<'de> for Grants {
            type Value = SandboxGrants;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<SandboxGrants, A::Error> {
                let mut v = Vec::with_capacity(map.size_hint().unwrap_or(1).min(16));
                while let Some(entry) = map.next_entry()? {
                    v.push(entry);
                }
                Ok(v.into_iter().collect())
            }
        }
        d.deserialize_map(Grants)
    }
}

/// The thing that calls APIs. Its client id is its public API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub client_id: ClientId,
    pub org_id: OrgId,
    pub name: String,
    pub status: AppStatus,
    /// The `sub` of its tokens.
    pub technical_account_id: TechAccountId,
    #[serde(default)]
    pub products: NameSet,
    /// The app's own scopes; empty when it takes them from a permission group.
    #[serde(default)]
    pub scopes: ScopeSet,
    /// A permission group whose scopes the app has, live. Exclusive with `scopes`.
    #[serde(default)]
    pub group_id: Option<RecordId>,
    #[serde(default)]
    pub sandboxes: SandboxGrants,
    /// Token lifetime override, in seconds (else the surface's default).
    #[serde(default)]
    pub token_ttl_seconds: Option<u32>,
    /// A cap on the app's allowed gateway requests (PCS-0429-429 past it).
    #[serde(default)]
    pub quota: Option<Quota>,
    /// Every token of the app must be bound to a key of the client's (DPoP, RFC 9449):
    /// the token endpoint refuses a request without a DPoP proof, and the gateway an
    /// unbound token of the app.
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    pub created_at: i64,
    /// Tokens issued at or before this instant stay inactive, even once the app is active
    /// again: set when the app is suspended.
    #[serde(default)]
    pub tokens_invalid_before: Option<i64>,
}

/// How many requests an app may make per second or minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub requests: u32,
    pub per: QuotaPeriod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaPeriod {
    Second,
    Minute,
}

impl QuotaPeriod {
    /// As on the wire: `second` or `minute`.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaPeriod::Second => "second",
            QuotaPeriod::Minute => "minute",
        }
    }

    pub fn seconds(self) -> i64 {
        match self {
            QuotaPeriod::Second => 1,
            QuotaPeriod::Minute => 60,
        }
    }
}

/// A client secret as stored: its keyed hash, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRecord {
    pub id: RecordId,
    pub client_id: ClientId,
    /// The non-secret beginning of the secret, to tell secrets apart in listings.
    pub prefix: String,
    #[serde(with = "hash_hex")]
    pub hash: SecretHash,
    pub created_at: i64,
    /// After this instant the secret no longer authenticates (rotation with overlap).
    #[serde(default)]
    pub expires_at: Option<i64>,
}

impl SecretRecord {
    /// The record of a freshly generated `secret` of `client_id`: a new id, the display
    /// prefix and the keyed hash (never the secret).
    pub fn of(
        secret: &Secret,
        client_id: &ClientId,
        hash_key: &HashKey,
        created_at: i64,
        expires_at: Option<i64>,
    ) -> Self {
        Self {
            id: RecordId::generate("sec"),
            client_id: client_id.clone(),
            prefix: secret.display_prefix(),
            hash: secret.hash(hash_key),
            created_at,
            expires_at,
        }
    }
}

/// What an [`AppKey`] came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AppKeySource {
    /// An uploaded X.509 certificate (Adobe I/O service accounts): its public key verifies JWTs the app signs
    /// with the certificate's private key.
    Certificate {
        /// SHA-256 of the certificate's DER, lowercase hex.
        fingerprint_sha256: String,
        subject: String,
        /// Unix seconds; after it the key no longer verifies.
        not_after: i64,
    },
    /// A key pair the server generated (SAP Gigya application keys); the private key was shown once.
    KeyPair,
}

/// A public key an application proves itself with. Only the public half is ever stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppKey {
    /// `key_` and 16 hex digits; the `kid` of JWTs signed with it.
    pub id: RecordId,
    pub client_id: ClientId,
    /// The JWS algorithm this key verifies — its only one (RS256 for RSA, ES256 for P-256).
    pub alg: crate::token::Alg,
    /// The public key as a JWK, with `kid` = `id`, `alg` and `use: sig`.
    pub public_jwk: serde_json::Value,
    pub source: AppKeySource,
    pub created_at: i64,
}

impl AppKey {
    /// Whether the key may verify at `now` (a certificate past its `not_after` may not).
    pub fn usable_at(&self, now: i64) -> bool {
        match &self.source {
            AppKeySource::Certificate { not_after, .. } => now <= *not_after,
            AppKeySource::KeyPair => true,
        }
    }
}

/// A named, org-wide set of scopes. Apps in the group have its scopes, live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: RecordId,
    pub org_id: OrgId,
    pub name: String,
    pub scopes: ScopeSet,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages the org's apps, users and groups.
    Admin,
    /// Creates and manages apps and their credentials.
    Developer,
    /// Receives notifications; no admin API rights.
    Subscriber,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Subscriber => "subscriber",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Role::Admin, Role::Developer, Role::Subscriber]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A person. The password hash is stored beside the record, never in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: RecordId,
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub roles: BTreeMap<OrgId, Role>,
    /// A platform administrator: may create organizations and change any organization's
    /// name, products, sandboxes and status (see [`crate::policy`]). Records written
    /// before this existed load as `false`.
    #[serde(default)]
    pub platform_admin: bool,
    pub created_at: i64,
}

/// What a one-time user link does: `invite` (a new user sets their first password) or
/// `reset` (an administrator's password reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserLinkKind {
    Invite,
    Reset,
}

impl UserLinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UserLinkKind::Invite => "invite",
            UserLinkKind::Reset => "reset",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invite" => Some(UserLinkKind::Invite),
            "reset" => Some(UserLinkKind::Reset),
            _ => None,
        }
    }
}

/// A one-time link with which a person sets their password. Only the keyed hash of its
/// token is kept; the token itself is shown once, to the administrator who made the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLink {
    /// Keyed hash (HMAC-SHA256) of the link's `pcsl_…` token.
    pub hash: SecretHash,
    pub kind: UserLinkKind,
    pub user_id: RecordId,
    /// The organization and role an invitation gives (none for a reset).
    pub org_id: Option<OrgId>,
    pub role: Option<Role>,
    /// Who made the link, as the audit trail names callers (`user:<id>`, …).
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// When it was used; a used link is dead.
    pub used_at: Option<i64>,
}

/// A protected API surface in one org and sandbox (the Edge Network's datastream):
/// which product and scopes a caller needs, and whether unauthenticated calls pass.
/// Whether a call is a write is told by its method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// `res_` and 16 hex digits; the `?resource=` of a gateway check.
    pub id: RecordId,
    pub org_id: OrgId,
    pub name: String,
    /// The sandbox the resource lives in; callers need read (or, to write, write) access.
    pub sandbox: String,
    /// The product the org must be entitled to and the app added to, if any.
    #[serde(default)]
    pub product: Option<String>,
    /// Scopes every caller's effective scopes must include.
    #[serde(default)]
    pub scopes: ScopeSet,
    /// Requests with no credentials at all pass (marked unauthenticated). Default false.
    #[serde(default)]
    pub allow_unauthenticated: bool,
    /// Browser origins allowed by CORS (for the Edge intake endpoints).
    #[serde(default)]
    pub cors_origins: Vec<String>,
    pub created_at: i64,
}

/// An event the Edge intake (the Edge Network's `interact` / `collect`) accepted for a resource,
/// before the store has given it an id. Events are append-only and are not decision
/// data: they never reach the in-memory view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// The resource (datastream) the event was sent to.
    pub resource_id: RecordId,
    /// Unix seconds, when the server accepted it.
    pub received_at: i64,
    /// Whether the gateway decision saw credentials (false: an unauthenticated event on
    /// a resource that allows them).
    pub authenticated: bool,
    /// The app that sent it, when authenticated.
    pub client_id: Option<ClientId>,
    /// The event object as the caller sent it.
    pub event: serde_json::Map<String, serde_json::Value>,
}

/// A stored event: [`NewEvent`] and the id the store gave it. Ids grow with every append,
/// so listing in id order is listing in the order events were accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: i64,
    #[serde(flatten)]
    pub event: NewEvent,
}

/// A revoked access token, remembered until it would have expired anyway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub jti: String,
    pub client_id: ClientId,
    pub exp: i64,
}

/// A signing key's place in its life: published ahead of use, in use, kept for
/// verification of tokens it already signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Next,
    Current,
    Retired,
}

/// A Portcullis signing key as stored: the public JWK and the PKCS#8 private key
/// encrypted under the master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: crate::token::Alg,
    pub state: KeyState,
    /// The public half as a JWK (with `kid`, `alg`, `use`).
    pub public_jwk: serde_json::Value,
    /// `nonce ‖ AES-256-GCM(pkcs8)`, base64.
    pub encrypted_private_key: String,
    pub created_at: i64,
    #[serde(default)]
    pub activated_at: Option<i64>,
    /// A retired key leaves the JWKS after this instant (its last token has expired).
    #[serde(default)]
    pub retired_until: Option<i64>,
}

mod hash_hex {
    use crate::secret::SecretHash;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &SecretHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&h.to_hex())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SecretHash, D::Error> {
        crate::ids::parse_str(d, |s| SecretHash::from_hex(s).ok_or("bad secret hash"))
    }
}

/// One entry of the audit trail, before the store numbers it: who did what to which
/// record, when, from where, and whether it succeeded. `details` is a small JSON object
/// that never holds a secret (field names of a change, never their values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEntry {
    /// Unix seconds.
    pub at: i64,
    /// `admin-token:<id>`, `user:<id>`, `app:<client id>` (an admin-scoped token),
    /// `client:<claimed client id>` (a failed authentication), `email:<address>` (a failed
    /// sign-in), `cli`, or `anonymous`.
    pub actor: String,
    /// Dotted, e.g. `apps.create`, `apps.secrets.delete`, `auth.failed`.
    pub action: String,
    /// The record acted on, empty when there is none.
    pub target: String,
    pub outcome: AuditOutcome,
    /// The organization the entry concerns, when there is one: its admins may read it.
    pub org_id: Option<OrgId>,
    /// The client's address (the nearest untrusted hop behind a trusted proxy).
    pub address: Option<String>,
    pub details: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Success,
    Failure,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(AuditOutcome::Success),
            "failure" => Some(AuditOutcome::Failure),
            _ => None,
        }
    }
}

/// A stored audit entry: [`NewAuditEntry`] and the id the store gave it (ids grow with
/// every append).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(flatten)]
    pub entry: NewAuditEntry,
}

#[cfg(test)]
mod sandbox_grant_tests {
    use super::*;

    #[test]
    fn grants_read_and_print_as_a_map() {
        let g: SandboxGrants = serde_json::from_str(r#"{"prod":"read","dev":"write"}"#).unwrap();
        assert_eq!(g.get("dev"), Some(&SandboxAccess::Write));
        assert_eq!(g.get("prod"), Some(&SandboxAccess::Read));
        assert_eq!(g.get("stage"), None);
        assert_eq!(g.keys().cloned().collect::<Vec<_>>(), ["dev", "prod"]);
        assert_eq!(
            serde_json::to_string(&g).unwrap(),
            r#"{"dev":"write","prod":"read"}"#
        );
        let later_wins: SandboxGrants = [
            ("prod".to_owned(), SandboxAccess::Read),
            ("prod".to_owned(), SandboxAccess::Write),
        ]
        .into();
        assert_eq!(later_wins.len(), 1);
        assert_eq!(later_wins.get("prod"), Some(&SandboxAccess::Write));
    }

    #[test]
    fn a_later_duplicate_grant_wins_when_decoded_as_in_a_map() {
        let g: SandboxGrants =
            serde_json::from_str(r#"{"prod":"read","dev":"read","prod":"write"}"#).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g.get("prod"), Some(&SandboxAccess::Write));
        assert_eq!(g.keys().cloned().collect::<Vec<_>>(), ["dev", "prod"]);
        assert!(serde_json::from_str::<SandboxGrants>(r#"["prod"]"#).is_err());
    }

    #[test]
    fn name_sets_are_sorted_and_unique() {
        let n: NameSet = serde_json::from_str(r#"["b","a","b"]"#).unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), r#"["a","b"]"#);
        assert!(n.contains("a") && n.contains("b") && !n.contains("c"));
    }

    #[test]
    fn a_user_stored_before_platform_administrators_loads_as_not_one() {
        let old =
            r#"{"id":"usr_0123456789abcdef","email":"a@example.com","roles":{},"created_at":1}"#;
        let u: User = serde_json::from_str(old).unwrap();
        assert!(!u.platform_admin);
        let back: User = serde_json::from_str(
            &serde_json::to_string(&User {
                platform_admin: true,
                ..u
            })
            .unwrap(),
        )
        .unwrap();
        assert!(back.platform_admin);
    }
}
