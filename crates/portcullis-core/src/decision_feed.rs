//! The decision data a verifier in an API service needs (`portcullis-verify`), as the
//! server sends it: a snapshot (`GET /events/v1/snapshot`) and then one event per change
//! (`GET /events/v1`, server-sent events whose `id` is the change sequence).
//!
//! **What a verifier never sees**: client secret hashes and the secret-hash key (a verifier
//! accepts access tokens and app-signed JWTs, never client secrets, so it needs only each
//! secret's id, which tokens name in `cred` for the "credential deleted" check), signing
//! keys' private halves (only the JWKs), users, sessions and Wave's data.

use crate::ids::{ClientId, OrgId, RecordId};
use crate::model::{App, AppKey, Group, Org, Resource, SecretRecord};
use crate::secret::SecretHash;
use crate::token::{Alg, VerifyKey};
use crate::view::{AppEntry, View};
use serde::{Deserialize, Serialize};

/// Everything a verifier decides from, consistent with change `seq`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FeedSnapshot {
    pub seq: i64,
    pub orgs: Vec<Org>,
    pub apps: Vec<FeedApp>,
    pub groups: Vec<Group>,
    pub resources: Vec<Resource>,
    pub revocations: Vec<FeedRevocation>,
    pub keys: Vec<FeedKey>,
}

/// An app with the ids of its client secrets (never their hashes) and its public keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedApp {
    pub app: App,
    pub credentials: Vec<FeedCredential>,
    pub keys: Vec<AppKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedCredential {
    pub id: RecordId,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedRevocation {
    pub jti: String,
    pub exp: i64,
}

/// A published verifying key of the server (the JWK and its algorithm).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedKey {
    pub alg: Alg,
    pub jwk: serde_json::Value,
}

/// One change, as the event stream carries it (the SSE `event` field is its `kind`). A
/// record that is `None` was deleted (or is outside what the verifier may see).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FeedEvent {
    Org {
        id: OrgId,
        org: Option<Org>,
    },
    App {
        id: ClientId,
        app: Option<FeedApp>,
    },
    Group {
        id: RecordId,
        group: Option<Group>,
    },
    Resource {
        id: RecordId,
        resource: Option<Resource>,
    },
    Revocation(FeedRevocation),
    Keys {
        keys: Vec<FeedKey>,
    },
    /// Too much changed (a bulk load, or the feed was pruned past the verifier's position):
    /// fetch a new snapshot.
    Resync,
}

impl FeedEvent {
    /// The SSE `event` name.
    pub fn kind(&self) -> &'static str {
        match self {
            FeedEvent::Org { .. } => "org",
            FeedEvent::App { .. } => "app",
            FeedEvent::Group { .. } => "group",
            FeedEvent::Resource { .. } => "resource",
            FeedEvent::Revocation(_) => "revocation",
            FeedEvent::Keys { .. } => "keys",
            FeedEvent::Resync => "resync",
        }
    }
}

impl FeedApp {
    /// The feed's form of a view entry's parts: secret ids only.
    pub fn new(app: App, secrets: &[SecretRecord], keys: Vec<AppKey>) -> Self {
        Self {
            app,
            credentials: secrets
                .iter()
                .map(|s| FeedCredential {
                    id: s.id.clone(),
                    expires_at: s.expires_at,
                })
                .collect(),
            keys,
        }
    }

    /// A view entry. The secrets carry no hash (all zeros, which no secret hashes to, and
    /// a view without a hash key checks no secret at all): only their ids are used, by the
    /// live check of a token's `cred`. Keys whose JWK does not parse are left out.
    fn entry(self) -> AppEntry {
        let secrets = self
            .credentials
            .into_iter()
            .map(|c| SecretRecord {
                id: c.id,
                client_id: self.app.client_id.clone(),
                prefix: String::new(),
                hash: SecretHash([0; 32]),
                created_at: 0,
                expires_at: c.expires_at,
            })
            .collect();
        AppEntry::with_keys(self.app, secrets, self.keys).0
    }
}

fn verify_keys(keys: Vec<FeedKey>) -> Vec<VerifyKey> {
    keys.into_iter()
        .filter_map(|k| VerifyKey::from_jwk(k.alg, k.jwk).ok())
        .collect()
}

impl FeedSnapshot {
    /// The view a verifier decides from: no signer, no hash key.
    pub fn into_view(self, now: i64) -> View {
        let mut view = View::default();
        for o in self.orgs {
            view.upsert_org(o);
        }
        for g in self.groups {
            view.upsert_group(g);
        }
        for r in self.resources {
            view.upsert_resource(r);
        }
        for a in self.apps {
            view.upsert_app(a.entry());
        }
        for r in self.revocations {
            if r.exp > now {
                view.revoke(&r.jti, r.exp);
            }
        }
        view.set_keys(verify_keys(self.keys), None);
        view
    }
}

impl FeedEvent {
    /// Apply the change to `view`. `Resync` changes nothing: the caller fetches a snapshot.
    pub fn apply(self, view: &mut View, now: i64) {
        match self {
            FeedEvent::Org { id, org } => match org {
                Some(o) => view.upsert_org(o),
                None => view.remove_org(id.as_str()),
            },
            FeedEvent::App { id, app } => match app {
                Some(a) => view.upsert_app(a.entry()),
                None => view.remove_app(id.as_str()),
            },
            FeedEvent::Group { id, group } => match group {
                Some(g) => view.upsert_group(g),
                None => view.remove_group(id.as_str()),
            },
            FeedEvent::Resource { id, resource } => match resource {
                Some(r) => view.upsert_resource(r),
                None => view.remove_resource(id.as_str()),
            },
            FeedEvent::Revocation(r) => {
                if r.exp > now {
                    view.revoke(&r.jti, r.exp);
                }
            }
            FeedEvent::Keys { keys } => view.set_keys(verify_keys(keys), None),
            FeedEvent::Resync => {}
        }
        view.prune_revoked(now);
    }
}
