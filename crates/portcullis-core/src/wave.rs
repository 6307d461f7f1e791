//! Adobe Wave (Adobe Wave): a publisher app's feeds and topics, the OAuth 1.0 tokens that
//! link a subscriber to a point-to-point feed, and the notifications sent to topics.
//!
//! None of this is in the in-memory view: a notification is written to the store before
//! it is acknowledged, so the topic lookup beside that write costs nothing a hot path
//! could avoid. The publisher's own authentication (client id and secret) is the view's.

use crate::ids::{ClientId, OrgId, RecordId};
use crate::secret::SecretHash;
use serde::{Deserialize, Serialize};

/// Whether a feed's notifications go to every subscriber or to one linked account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedKind {
    Broadcast,
    PointToPoint,
}

impl FeedKind {
    /// As on the wire: `broadcast` or `point_to_point`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Broadcast => "broadcast",
            FeedKind::PointToPoint => "point_to_point",
        }
    }
}

/// A publisher's notification channel. Owned by one app (the publisher).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feed {
    /// `feed_…`: the vendor's `feedId`.
    pub id: RecordId,
    pub client_id: ClientId,
    pub org_id: OrgId,
    pub name: String,
    pub kind: FeedKind,
    /// The publisher's Initiation API (point-to-point): where the desktop client starts a
    /// linking transaction.
    #[serde(default)]
    pub initiation_url: Option<String>,
    /// The fixed callback base URL (point-to-point): where the subscriber's browser goes
    /// once the request token is authorized.
    #[serde(default)]
    pub callback_url: Option<String>,
    pub created_at: i64,
}

impl Feed {
    /// The vendor's `companyId` of the feed's publisher: `company_<client id>`.
    pub fn company_id(&self) -> String {
        company_id(&self.client_id)
    }
}

/// The vendor's `companyId` of a publisher app.
pub fn company_id(client_id: &ClientId) -> String {
    format!("company_{client_id}")
}

/// A topic of a feed, addressed by notifications through its `uri`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub id: RecordId,
    pub feed_id: RecordId,
    /// The publisher app that owns the feed (and so the topic).
    pub client_id: ClientId,
    /// `company_<client id>/feed_<id>/<UUID>`, like the vendor's
    /// `company_3480/feed_184836/CAAE63B2-32FA-00F4-1748-CA1076A5547A`.
    pub uri: String,
    pub name: String,
    pub created_at: i64,
}

impl Topic {
    /// A fresh topic URI under `feed`: the feed's company and id, then a random UUID (v4,
    /// upper case as the vendor does).
    pub fn new_uri(feed: &Feed) -> String {
        let mut b = crate::random_bytes::<16>();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex::encode_upper(b);
        format!(
            "{}/{}/{}-{}-{}-{}-{}",
            feed.company_id(),
            feed.id,
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// An OAuth 1.0 request token as stored: hashes only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestToken {
    pub hash: SecretHash,
    pub secret_hash: SecretHash,
    /// The consumer (publisher app) it was issued to.
    pub client_id: ClientId,
    pub expires_at: i64,
    /// Set when a subscriber approved it on the authorize page.
    pub authorized: Option<Authorization>,
}

/// Who approved a request token, for which feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub user_id: RecordId,
    pub feed_id: RecordId,
}

/// An OAuth 1.0 access token: the link between a subscriber and a publisher's
/// point-to-point feed. The publisher sends it as `accesstoken` to reach that subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkToken {
    pub hash: SecretHash,
    pub secret_hash: SecretHash,
    pub client_id: ClientId,
    pub feed_id: RecordId,
    pub user_id: RecordId,
    pub created_at: i64,
}

/// A notification accepted for a topic, before the store gives it an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewNotification {
    pub topic_id: RecordId,
    pub topic: String,
    /// The topic's name when the notification was sent, for people (the URI is for
    /// programs). `None` in notifications stored before names were kept with them.
    #[serde(default)]
    pub topic_name: Option<String>,
    pub feed_id: RecordId,
    pub client_id: ClientId,
    /// The one subscriber of a point-to-point notification; `None`: the feed's subscribers.
    pub to_user: Option<RecordId>,
    pub message: String,
    #[serde(default)]
    pub link: Option<String>,
    /// The thumbnail re-encoded as PNG, base64.
    #[serde(default)]
    pub image_png: Option<String>,
    pub created_at: i64,
}

/// A stored notification: ids grow with every insert, so a subscriber resumes after the
/// last id it saw (SSE `Last-Event-ID`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredNotification {
    pub id: i64,
    #[serde(flatten)]
    pub notification: NewNotification,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_uris_look_like_waves() {
        let feed = Feed {
            id: RecordId::generate("feed"),
            client_id: ClientId::generate(),
            org_id: OrgId::generate(),
            name: "News".into(),
            kind: FeedKind::Broadcast,
            initiation_url: None,
            callback_url: None,
            created_at: 0,
        };
        let uri = Topic::new_uri(&feed);
        let parts: Vec<&str> = uri.split('/').collect();
        assert_eq!(parts.len(), 3, "{uri}");
        assert_eq!(parts[0], format!("company_{}", feed.client_id));
        assert_eq!(parts[1], feed.id.as_str());
        let groups: Vec<usize> = parts[2].split('-').map(str::len).collect();
        assert_eq!(groups, vec![8, 4, 4, 4, 12], "{uri}");
        assert_ne!(Topic::new_uri(&feed), uri);
    }
}
