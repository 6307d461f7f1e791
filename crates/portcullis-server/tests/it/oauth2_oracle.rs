//! An independent oracle for the OAuth surface: the `oauth2` crate (a client library we
//! did not write) requests, introspects and revokes tokens, and parses our errors into its
//! typed form; the `jsonwebtoken` crate verifies our access tokens against our JWKS.

use crate::common;

use common::*;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenType};
use oauth2::reqwest;
use oauth2::{
    AsyncHttpClient, AuthType, ClientId, ClientSecret, HttpRequest, IntrospectionUrl,
    RequestTokenError, RevocationUrl, Scope, StandardRevocableToken, TokenIntrospectionResponse,
    TokenResponse, TokenUrl,
};
use serde_json::Value;
use std::time::Duration;

/// The HTTP client the `oauth2` docs recommend: no redirects (they would open SSRF).
fn http_client() -> reqwest::Client {
    reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the client builds")
}

/// `oauth2` insists on an https revocation URL (RFC 7009 section 2). The test server speaks
/// plain HTTP, so the client is given `https://…` and the transport used for revocation
/// stands in for TLS termination: it sends the same request to the same host over http.
fn over_http(mut req: HttpRequest) -> HttpRequest {
    let uri = req.uri().to_string().replacen("https://", "http://", 1);
    *req.uri_mut() = uri.parse().expect("a URI");
    req
}

struct Oracle {
    app: TestApp,
    client_id: String,
    secret: String,
}

async fn setup() -> Oracle {
    let app = TestApp::spawn().await;
    let (client_id, secret, _) = app.client(&["read", "write", "introspect"]).await;
    Oracle {
        app,
        client_id,
        secret,
    }
}

fn client(
    o: &Oracle,
    auth: AuthType,
) -> oauth2::basic::BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
    oauth2::EndpointSet,
    oauth2::EndpointSet,
> {
    BasicClient::new(ClientId::new(o.client_id.clone()))
        .set_client_secret(ClientSecret::new(o.secret.clone()))
        .set_auth_type(auth)
        .set_token_uri(TokenUrl::new(o.app.url("/oauth/token")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(o.app.url("/oauth/introspect")).unwrap())
        .set_revocation_url(
            RevocationUrl::new(
                o.app
                    .url("/oauth/revoke")
                    .replacen("http://", "https://", 1),
            )
            .unwrap(),
        )
}

/// Request → introspect → revoke → introspect, all through the `oauth2` crate.
async fn full_lifecycle(auth: AuthType) {
    let o = setup().await;
    let http = http_client();
    let c = client(&o, auth);

    let token = c
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .expect("the oauth2 crate accepts the token response");
    assert_eq!(*token.token_type(), BasicTokenType::Bearer);
    assert_eq!(token.scopes(), Some(&vec![Scope::new("read".into())]));
    let expires_in = token.expires_in().expect("expires_in is given");
    assert_eq!(
        expires_in,
        Duration::from_secs(3600),
        "the documented default lifetime"
    );
    let access = token.access_token();
    assert_eq!(claims(access.secret())["client_id"], o.client_id.as_str());

    let info = c
        .introspect(access)
        .request_async(&http)
        .await
        .expect("the oauth2 crate accepts the introspection response");
    assert!(info.active());
    assert_eq!(info.scopes(), Some(&vec![Scope::new("read".into())]));
    assert_eq!(
        info.client_id().map(|c| c.as_str()),
        Some(o.client_id.as_str())
    );
    assert_eq!(info.token_type(), Some(&BasicTokenType::Bearer));
    let (iat, exp) = (info.iat().unwrap(), info.exp().unwrap());
    assert_eq!((exp - iat).num_seconds() as u64, expires_in.as_secs());
    assert_eq!(info.iss(), Some(o.app.issuer.as_str()));

    c.revoke_token(StandardRevocableToken::AccessToken(access.clone()))
        .expect("an https revocation URL")
        .request_async(&|req| http.call(over_http(req)))
        .await
        .expect("the oauth2 crate accepts the revocation response");
    let info = c.introspect(access).request_async(&http).await.unwrap();
    assert!(!info.active(), "a revoked token is inactive");
    assert_eq!(info.scopes(), None, "an inactive answer says nothing else");
}

#[tokio::test]
async fn the_oauth2_crate_gets_introspects_and_revokes_a_token_with_client_secret_basic() {
    full_lifecycle(AuthType::BasicAuth).await;
}

#[tokio::test]
async fn the_oauth2_crate_gets_introspects_and_revokes_a_token_with_client_secret_post() {
    full_lifecycle(AuthType::RequestBody).await;
}

#[tokio::test]
async fn the_oauth2_crate_parses_invalid_scope_and_invalid_client_as_typed_errors() {
    let o = setup().await;
    let http = http_client();
    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let err = client(&o, auth.clone())
            .exchange_client_credentials()
            .add_scope(Scope::new("read".into()))
            .add_scope(Scope::new("delete".into()))
            .request_async(&http)
            .await
            .expect_err("a scope the app lacks is refused");
        match err {
            RequestTokenError::ServerResponse(e) => {
                assert_eq!(*e.error(), BasicErrorResponseType::InvalidScope);
                assert!(
                    e.error_description().is_some_and(|d| d.contains("delete")),
                    "{e:?}"
                );
            }
            other => panic!("expected a typed server response, got {other:?}"),
        }

        let wrong = BasicClient::new(ClientId::new(o.client_id.clone()))
            .set_client_secret(ClientSecret::new(format!("{}x", o.secret)))
            .set_auth_type(auth)
            .set_token_uri(TokenUrl::new(o.app.url("/oauth/token")).unwrap());
        match wrong
            .exchange_client_credentials()
            .request_async(&http)
            .await
        {
            Err(RequestTokenError::ServerResponse(e)) => {
                assert_eq!(*e.error(), BasicErrorResponseType::InvalidClient)
            }
            other => panic!("expected invalid_client, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_jsonwebtoken_crate_verifies_a_token_against_the_published_jwks() {
    let o = setup().await;
    let token = o
        .app
        .access_token(&o.client_id, &o.secret, Some("read write"))
        .await;
    let jwks: JwkSet = o
        .app
        .http
        .get(o.app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .expect("the JWKS parses as RFC 7517");
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.expect("the header names its key");
    let jwk = jwks.find(&kid).expect("the signing key is published");
    let key = DecodingKey::from_jwk(jwk).expect("a usable public key");

    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[&o.app.issuer]);
    validation.set_issuer(&[&o.app.issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data =
        jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("the signature verifies");
    assert_eq!(data.claims["client_id"], o.client_id.as_str());
    assert_eq!(data.claims["scope"], "read write");
    assert!(data.claims["jti"].is_string());

    // A token whose claims were changed after signing fails.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut forged = claims(&token);
    forged["scope"] = "read write admin".into();
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
    let err = jsonwebtoken::decode::<Value>(parts.join("."), &key, &validation).unwrap_err();
    assert_eq!(
        *err.kind(),
        jsonwebtoken::errors::ErrorKind::InvalidSignature
    );

    // Another audience is refused: the token is for this issuer.
    let mut elsewhere = Validation::new(Algorithm::ES256);
    elsewhere.set_audience(&["https://somewhere-else.example"]);
    let err = jsonwebtoken::decode::<Value>(&token, &key, &elsewhere).unwrap_err();
    assert_eq!(
        *err.kind(),
        jsonwebtoken::errors::ErrorKind::InvalidAudience
    );
}
