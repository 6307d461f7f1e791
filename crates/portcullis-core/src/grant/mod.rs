//! Token grants (RFC 6749 §4): one grant per file, each a pure function over the view.

pub mod client_auth;
pub mod client_credentials;

/// Default access token lifetime of `/oauth/token` (API.md §1).
pub const OAUTH_DEFAULT_TTL: u32 = 3600;
/// The longest lifetime an app may be configured with.
pub const MAX_TTL: u32 = 86_400;
