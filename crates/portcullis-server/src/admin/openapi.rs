//! The OpenAPI 3.1 document of the admin API, generated from the handlers' annotations.
//! `docs/openapi.json` in the repository is a copy; a test fails when they drift.

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(title = "Portcullis admin API", description = "Organizations, applications, credentials (secrets, certificates), Wave feeds and topics, users, signing keys and usage counts. Errors are RFC 9457 problem+json."),
    paths(
        super::orgs::create, super::orgs::list, super::orgs::read, super::orgs::update, super::orgs::delete,
        super::groups::create, super::groups::list, super::groups::read, super::groups::update, super::groups::delete,
        super::resources::create, super::resources::list, super::resources::read, super::resources::update, super::resources::delete,
        super::events::list,
        super::apps::create, super::apps::list, super::apps::read, super::apps::update, super::apps::delete,
        super::tokens::issue, super::tokens::revoke,
        super::secrets::create, super::secrets::list, super::secrets::read, super::secrets::update, super::secrets::delete,
        super::feeds::create, super::feeds::list, super::feeds::read, super::feeds::update, super::feeds::delete,
        super::feeds::create_topic, super::feeds::list_topics, super::feeds::read_topic, super::feeds::update_topic, super::feeds::delete_topic,
        super::certificates::create, super::certificates::list, super::certificates::read, super::certificates::delete,
        super::api_keys::create,
        super::keypairs::create, super::keypairs::list, super::keypairs::read, super::keypairs::delete,
        super::users::create, super::users::list, super::users::read, super::users::update, super::users::delete,
        super::links::invite, super::links::reset, super::links::current, super::links::accept,
        super::sessions::login, super::sessions::current, super::sessions::logout,
        super::keys::list, super::keys::rotate,
        super::audit::list, super::audit::export,
        super::usage::org, super::usage::app,
    ),
    modifiers(&Security),
    security(("bearer" = [])),
)]
pub struct AdminApi;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as pretty JSON, as committed in `docs/openapi.json`.
pub fn document() -> String {
    AdminApi::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

pub async fn serve() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document(),
    )
        .into_response()
}
