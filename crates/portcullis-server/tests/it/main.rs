//! The server's integration tests, as one test binary (one link instead of one per file):
//! each module is one area, run against the real server (`common` starts it on
//! `127.0.0.1:0` with a fresh data directory, on SQLite or, with
//! `PORTCULLIS_TEST_BACKEND=postgres`, a fresh PostgreSQL database).
//!
//! Run one area with `cargo test -p portcullis-server --test it <module>::`.

#[path = "../support/apitoken.rs"]
mod apitoken;
#[path = "../support/browser.rs"]
mod browser;
#[path = "../common/mod.rs"]
mod common;

mod admin;
mod admin_errors;
mod api_keys;
mod audit;
mod authz_matrix;
mod cluster;
mod connection;
mod console;
mod console_browser;
mod cross_process;
mod dpop;
mod dpop_oracle;
mod edge;
mod gateway;
mod gateway_catalogue;
mod jwt_attacks;
mod jwt_bearer;
mod keypairs;
mod limits;
mod live_view;
mod malformed;
mod migrate_store;
mod nginx;
mod oauth;
mod oauth2_oracle;
mod openapi;
mod ops;
mod readme_quickstart;
mod resources;
mod review_findings;
mod service_account;
mod shared_state;
mod tls;
mod trust;
mod usage;
mod user_links;
mod wave;
