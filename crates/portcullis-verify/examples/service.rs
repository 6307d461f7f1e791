//! An API service that verifies Portcullis credentials in-process.
//!
//! ```sh
//! PORTCULLIS_URL=http://127.0.0.1:8080 \
//! VERIFY_CLIENT_ID=<client id of an app with the 'verify' scope> \
//! VERIFY_CLIENT_SECRET=<one of its secrets> \
//! RESOURCE_ID=<res_… of the org's resource this service is> \
//! REDIS_URL=redis://127.0.0.1:6379   # optional: also accept app-signed JWTs
//! cargo run -p portcullis-verify --example service
//! curl -H "Authorization: Bearer $TOKEN" -H "x-api-key: $CLIENT_ID" \
//!      -H "x-gw-ims-org-id: $ORG" http://127.0.0.1:3000/hello
//! ```

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use portcullis_core::gateway::Allow;
use portcullis_verify::{Config, Verifier};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("{name} is not set; see the top of examples/service.rs for what to set.");
        std::process::exit(2)
    })
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt::init();
    let mut config = Config::new(
        env("PORTCULLIS_URL"),
        env("VERIFY_CLIENT_ID"),
        env("VERIFY_CLIENT_SECRET"),
    );
    if let Ok(url) = std::env::var("REDIS_URL") {
        match portcullis_shared::Shared::connect(&url).await {
            Ok(shared) => config = config.with_replay(shared),
            Err(e) => {
                eprintln!("{e}; start Redis or leave REDIS_URL unset.");
                std::process::exit(1)
            }
        }
    }
    let verifier = match Verifier::connect(config).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    let app = Router::new()
        .route(
            "/hello",
            get(|Extension(allow): Extension<Allow>| async move {
                format!(
                    "hello, {} (scopes: {})\n",
                    allow.client_id.unwrap_or_default(),
                    allow.scope
                )
            }),
        )
        .layer(verifier.layer(env("RESOURCE_ID")));
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| {
            eprintln!("cannot listen on {listen}: {e}");
            std::process::exit(1)
        });
    println!("listening on http://{listen}");
    axum::serve(listener, app).await.ok();
}
