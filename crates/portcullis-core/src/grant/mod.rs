//! Token grants (RFC 6749 section 4): one grant per file, each a pure function over the view.

pub mod assertion;
pub mod client_assertion;
pub mod client_auth;
pub mod client_credentials;
pub mod jwt_bearer;
pub mod service_account;

/// Default access token lifetime of `/oauth/token`.
pub const OAUTH_DEFAULT_TTL: u32 = 3600;
/// Default access token lifetime of Adobe I/O's `/ims/*` surfaces, as Adobe I/O has it.
pub const IMS_DEFAULT_TTL: u32 = 86_400;
/// The longest lifetime an app may be configured with.
pub const MAX_TTL: u32 = 86_400;
