//! DPoP (RFC 9449): a token bound to the client's key at the token endpoint, usable at the
//! gateway only with a proof of that key for the very request — and every check of the
//! proof refused with its own code. The negative proofs are built by authlib (a library
//! we did not write), the positive ones with `jsonwebtoken`.

use crate::common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The path of the protected API the proofs are made for, as nginx forwards it.
const PATH: &str = "/orders/7";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The URL a client behind the proxy calls: the server's own origin (the check request's
/// Host) and [`PATH`].
fn api_url(app: &TestApp) -> String {
    format!("{}{PATH}", app.base)
}

/// A gateway check as nginx sends it: the client's `authorization` and `dpop` headers
/// (each `dpop` value one header), the original method and URI.
async fn check(
    app: &TestApp,
    w: &GatewayWorld,
    method: &str,
    authorization: &str,
    proofs: &[&str],
) -> reqwest::Response {
    let mut req = app
        .http
        .get(app.url(&format!("/gateway/v1/check?resource={}", w.resource)))
        .header("authorization", authorization)
        .header("x-api-key", &w.client_id)
        .header("x-gw-ims-org-id", &w.org)
        .header("x-original-method", method)
        .header("x-original-uri", format!("{PATH}?page=2"));
    for p in proofs {
        req = req.header("dpop", *p);
    }
    req.send().await.unwrap()
}

/// A bound token for `w`'s app, and the key it is bound to.
async fn bound_token(app: &TestApp, w: &GatewayWorld) -> (String, DpopKey) {
    let key = DpopKey::new();
    let proof = key.proof("POST", &app.token_endpoint(), None, None);
    let r = app.dpop_token(&w.client_id, &w.secret, Some(&proof)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    (body["access_token"].as_str().unwrap().to_owned(), key)
}

#[tokio::test]
async fn a_bound_token_passes_with_a_proof_of_its_key_for_the_request() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let (token, key) = bound_token(&app, &w).await;
    assert_eq!(claims(&token)["cnf"]["jkt"], key.jkt());

    let proof = key.proof("GET", &api_url(&app), Some(&token), None);
    let r = check(&app, &w, "GET", &format!("DPoP {token}"), &[&proof]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-portcullis-client-id"], w.client_id.as_str());

    // Introspection tells a resource server which key to expect (RFC 9449 section 6.2).
    let rs = app.create_app(&w.org, &["introspect"]).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, rs_secret) = app.create_secret(&rs).await;
    let i: Value = app
        .introspect(&rs, &rs_secret, &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["token_type"], "DPoP");
    assert_eq!(i["cnf"]["jkt"], key.jkt());
    // A bearer token has neither.
    let bearer = app.access_token(&w.client_id, &w.secret, None).await;
    assert!(claims(&bearer).get("cnf").is_none());
    let i: Value = app
        .introspect(&rs, &rs_secret, &bearer)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(i["token_type"], "Bearer");
    assert!(i.get("cnf").is_none(), "{i}");

    let d: Value = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert!(
        d["dpop_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256")),
        "{d}"
    );
}

/// A stolen token is useless without the key; a bound token never passes as Bearer; an
/// unbound one never as DPoP; a proof is good once.
#[tokio::test]
async fn a_stolen_token_a_downgrade_and_a_replay_are_refused() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let (token, key) = bound_token(&app, &w).await;
    let url = api_url(&app);

    let thief = DpopKey::new();
    let stolen = thief.proof("GET", &url, Some(&token), None);
    let r = check(&app, &w, "GET", &format!("DPoP {token}"), &[&stolen]).await;
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(www.starts_with("DPoP error=\"invalid_token\""), "{www}");
    assert_gateway_denial(r, 401, "PCS-0454-401").await;

    let r = app.bearer_check(&w, &token).await;
    let body = assert_gateway_denial(r, 401, "PCS-0455-401").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Authorization: DPoP"),
        "{body}"
    );

    let bearer = app.access_token(&w.client_id, &w.secret, None).await;
    let proof = key.proof("GET", &url, Some(&bearer), None);
    let r = check(&app, &w, "GET", &format!("DPoP {bearer}"), &[&proof]).await;
    assert_gateway_denial(r, 401, "PCS-0454-401").await;

    let proof = key.proof("GET", &url, Some(&token), None);
    let r = check(&app, &w, "GET", &format!("DPoP {token}"), &[&proof]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = check(&app, &w, "GET", &format!("DPoP {token}"), &[&proof]).await;
    assert_gateway_denial(r, 401, "PCS-0453-401").await;

    // No proof, or two.
    let r = check(&app, &w, "GET", &format!("DPoP {token}"), &[]).await;
    assert_gateway_denial(r, 401, "PCS-0441-401").await;
    let (p1, p2) = (
        key.proof("GET", &url, Some(&token), None),
        key.proof("GET", &url, Some(&token), None),
    );
    let r = check(&app, &w, "GET", &format!("DPoP {token}"), &[&p1, &p2]).await;
    assert_gateway_denial(r, 401, "PCS-0441-401").await;
}

/// The proofs authlib builds for `specs` (`{"key", "alg", "typ", "jwk", "claims",
/// "ath_of"}`), each with the thumbprint of its key; the keys named in `keys` (private
/// JWKs) are used, and the new ones added to it.
fn authlib_proofs(specs: &Value, keys: &mut Value) -> Option<Vec<Value>> {
    let python = python_with("authlib")?;
    let script = r#"
import base64, hashlib, json, sys
from authlib.jose import JsonWebKey, jwt

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

given = json.load(sys.stdin)
keys = {name: JsonWebKey.import_key(jwk) for name, jwk in given["keys"].items()}
def key(name):
    while name not in keys:
        k = JsonWebKey.generate_key("EC", "P-256", is_private=True)
        # authlib drops a coordinate's leading zero bytes, which RFC 7518 (6.2.1.2) does
        # not allow and the server refuses: keep the keys whose coordinates are full.
        public = k.as_dict(is_private=False)
        if len(public["x"]) == 43 and len(public["y"]) == 43:
            keys[name] = k
    return keys[name]

out = []
for s in given["specs"]:
    k = key(s.get("key", "client"))
    public = k.as_dict(is_private=False)
    header = {"typ": s.get("typ", "dpop+jwt"), "alg": s.get("alg", "ES256"), "jwk": public}
    jwk = s.get("jwk", "public")
    if jwk == "private":
        header["jwk"] = k.as_dict(is_private=True)
    elif jwk == "none":
        del header["jwk"]
    elif jwk == "other":
        header["jwk"] = key("other").as_dict(is_private=False)
    elif jwk == "garbage":
        header["jwk"] = {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}
    claims = dict(s["claims"])
    if "ath_of" in s:
        claims["ath"] = b64(hashlib.sha256(s["ath_of"].encode()).digest())
    if header["alg"] == "none":
        proof = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode()) + "."
    elif header["alg"] == "HS256":
        # The classic confusion: the public key's JSON as the HMAC secret.
        proof = jwt.encode(header, claims, json.dumps(public).encode()).decode()
    else:
        proof = jwt.encode(header, claims, k).decode()
    out.append({"proof": proof, "jkt": k.thumbprint()})
print(json.dumps({"proofs": out,
                  "keys": {n: k.as_dict(is_private=True) for n, k in keys.items()}}))
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json!({"specs": specs, "keys": keys}).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "authlib failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
    *keys = v["keys"].take();
    Some(serde_json::from_value(v["proofs"].take()).unwrap())
}

/// Every check of RFC 9449 section 4.3, each refused with its own code, with proofs an
/// independent library built — the JWT attacks (alg none, HMAC keyed with the public key,
/// private key material in `jwk`, a key that did not sign) among them.
#[tokio::test]
async fn each_check_of_a_proof_has_its_own_code() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    // A token bound to authlib's "client" key: the token request's proof is authlib's too.
    let t = now();
    let mut keys = json!({});
    let first = authlib_proofs(
        &json!([{"claims": {"jti": "token-request", "htm": "POST",
        "htu": app.token_endpoint(), "iat": t}}]),
        &mut keys,
    );
    let Some(first) = first else {
        return;
    };
    let r = app
        .dpop_token(&w.client_id, &w.secret, first[0]["proof"].as_str())
        .await;
    let status = r.status();
    let body = r.json::<Value>().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&token)["cnf"]["jkt"], first[0]["jkt"]);

    let url = api_url(&app);
    let ok = |jti: &str| json!({"jti": jti, "htm": "GET", "htu": url, "iat": t});
    let with = |jti: &str, k: &str, v: Value| {
        let mut c = ok(jti);
        c[k] = v;
        c
    };
    let without = |jti: &str, k: &str| {
        let mut c = ok(jti);
        c.as_object_mut().unwrap().remove(k);
        c
    };
    // (what, spec, expected code, WWW-Authenticate error)
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "the good one",
            json!({"claims": ok("a"), "ath_of": token}),
            "",
            "",
        ),
        (
            "typ JWT",
            json!({"typ": "JWT", "claims": ok("b"), "ath_of": token}),
            "PCS-0443-401",
            "invalid_dpop_proof",
        ),
        (
            "alg none",
            json!({"alg": "none", "claims": ok("c"), "ath_of": token}),
            "PCS-0444-401",
            "invalid_dpop_proof",
        ),
        (
            "HS256 with the public key",
            json!({"alg": "HS256", "claims": ok("d"), "ath_of": token}),
            "PCS-0444-401",
            "invalid_dpop_proof",
        ),
        (
            "no jwk",
            json!({"jwk": "none", "claims": ok("e"), "ath_of": token}),
            "PCS-0445-401",
            "invalid_dpop_proof",
        ),
        (
            "a jwk that is no key",
            json!({"jwk": "garbage", "claims": ok("f"), "ath_of": token}),
            "PCS-0445-401",
            "invalid_dpop_proof",
        ),
        (
            "private key in jwk",
            json!({"jwk": "private", "claims": ok("g"), "ath_of": token}),
            "PCS-0446-401",
            "invalid_dpop_proof",
        ),
        (
            "signed by another key than jwk",
            json!({"jwk": "other", "claims": ok("h"), "ath_of": token}),
            "PCS-0447-401",
            "invalid_dpop_proof",
        ),
        (
            "htm POST for a GET",
            json!({"claims": with("i", "htm", json!("POST")), "ath_of": token}),
            "PCS-0448-401",
            "invalid_dpop_proof",
        ),
        (
            "htu of another URI",
            json!({"claims": with("j", "htu", json!(format!("{}/orders/8", app.base))), "ath_of": token}),
            "PCS-0449-401",
            "invalid_dpop_proof",
        ),
        (
            "htu of another host",
            json!({"claims": with("k", "htu", json!(format!("https://elsewhere.example{PATH}"))), "ath_of": token}),
            "PCS-0449-401",
            "invalid_dpop_proof",
        ),
        (
            "iat two minutes ago",
            json!({"claims": with("l", "iat", json!(t - 120)), "ath_of": token}),
            "PCS-0450-401",
            "invalid_dpop_proof",
        ),
        (
            "iat a minute ahead",
            json!({"claims": with("m", "iat", json!(t + 60)), "ath_of": token}),
            "PCS-0450-401",
            "invalid_dpop_proof",
        ),
        (
            "ath of another token",
            json!({"claims": ok("n"), "ath_of": "another token"}),
            "PCS-0451-401",
            "invalid_dpop_proof",
        ),
        (
            "no ath",
            json!({"claims": ok("o")}),
            "PCS-0451-401",
            "invalid_dpop_proof",
        ),
        (
            "no jti",
            json!({"claims": without("p", "jti"), "ath_of": token}),
            "PCS-0442-401",
            "invalid_dpop_proof",
        ),
        (
            "no htu",
            json!({"claims": without("q", "htu"), "ath_of": token}),
            "PCS-0442-401",
            "invalid_dpop_proof",
        ),
        (
            "the good one, again",
            json!({"claims": ok("a"), "ath_of": token}),
            "PCS-0453-401",
            "invalid_dpop_proof",
        ),
        (
            "another client's valid proof",
            json!({"key": "thief", "claims": ok("r"), "ath_of": token}),
            "PCS-0454-401",
            "invalid_token",
        ),
    ];
    let specs: Vec<Value> = cases.iter().map(|c| c.1.clone()).collect();
    let proofs = authlib_proofs(&Value::Array(specs), &mut keys).unwrap();
    for ((what, _, code, error), built) in cases.iter().zip(&proofs) {
        let proof = built["proof"].as_str().unwrap();
        let r = check(&app, &w, "GET", &format!("DPoP {token}"), &[proof]).await;
        if code.is_empty() {
            assert_eq!(r.status(), StatusCode::OK, "{what}");
            continue;
        }
        let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            www.starts_with(&format!("DPoP error=\"{error}\"")),
            "{what}: {www}"
        );
        let body = assert_gateway_denial(r, 401, code).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(
            !detail.contains(proof) && !detail.contains(&token),
            "{what}: {detail}"
        );
    }

    // Not a JWS at all, and one too large to read.
    for (proof, code) in [
        ("not-a-proof".to_owned(), "PCS-0442-401"),
        (
            format!("{}.{}.x", "e".repeat(5_000), "e".repeat(5_000)),
            "PCS-0442-401",
        ),
    ] {
        let r = check(&app, &w, "GET", &format!("DPoP {token}"), &[&proof]).await;
        assert_gateway_denial(r, 401, code).await;
    }
}

/// At the token endpoint: a bad proof is `invalid_dpop_proof` and mints nothing, a proof
/// is spent once, and an app that requires DPoP gets no bearer token — nor is one it
/// already had accepted at the gateway.
#[tokio::test]
async fn the_token_endpoint_checks_the_proof_and_an_app_can_require_one() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let key = DpopKey::new();
    let endpoint = app.token_endpoint();

    for (what, proof) in [
        ("for GET", key.proof("GET", &endpoint, None, None)),
        (
            "for another URI",
            key.proof("POST", &format!("{}/oauth/revoke", app.issuer), None, None),
        ),
        ("not a JWS", "garbage".into()),
    ] {
        let r = app.dpop_token(&w.client_id, &w.secret, Some(&proof)).await;
        let v = assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_dpop_proof").await;
        assert!(!v.to_string().contains(&proof), "{what}: {v}");
    }
    let proof = key.proof("POST", &endpoint, None, None);
    let r = app.dpop_token(&w.client_id, &w.secret, Some(&proof)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.dpop_token(&w.client_id, &w.secret, Some(&proof)).await;
    let v = assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_dpop_proof").await;
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("used before"),
        "{v}"
    );

    // The app turns DPoP on: its earlier bearer token stops working at the gateway, and
    // it gets no new one without a proof.
    let bearer = app.access_token(&w.client_id, &w.secret, None).await;
    assert_eq!(app.bearer_check(&w, &bearer).await.status(), StatusCode::OK);
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/apps/{}", w.client_id),
            Some(json!({"dpop_bound_access_tokens": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["dpop_bound_access_tokens"], true);
    let r = app.bearer_check(&w, &bearer).await;
    let body = assert_gateway_denial(r, 401, "PCS-0455-401").await;
    assert!(
        body["detail"].as_str().unwrap().contains("requires DPoP"),
        "{body}"
    );
    let r = app.dpop_token(&w.client_id, &w.secret, None).await;
    let v = assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_dpop_proof").await;
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("requires DPoP"),
        "{v}"
    );
    // Nor do the endpoints that only make bearer tokens.
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/admin/v1/apps/{}/tokens", w.client_id),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("DPoP"), "{body}");
    let r = app
        .post_form(
            "/ims/token/v3",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &w.client_id),
                ("client_secret", &w.secret),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_dpop_proof", "{v}");

    let (token, key) = bound_token(&app, &w).await;
    let proof = key.proof("GET", &api_url(&app), Some(&token), None);
    let r = check(&app, &w, "GET", &format!("DPoP {token}"), &[&proof]).await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// With `dpop_nonce`, a proof without a current nonce is answered with one, at the token
/// endpoint and at the gateway; the retry with it passes.
#[tokio::test]
async fn with_nonces_required_a_client_retries_with_the_servers_nonce() {
    let app = TestApp::spawn_with(Options {
        gateway: portcullis_server::config::GatewayConfig {
            dpop_nonce: true,
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let w = app.gateway_world(false).await;
    let key = DpopKey::new();
    let endpoint = app.token_endpoint();

    let r = app
        .dpop_token(
            &w.client_id,
            &w.secret,
            Some(&key.proof("POST", &endpoint, None, None)),
        )
        .await;
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "use_dpop_nonce").await;
    let r = app
        .dpop_token(
            &w.client_id,
            &w.secret,
            Some(&key.proof("POST", &endpoint, None, Some("made-up"))),
        )
        .await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "use_dpop_nonce").await;
    let r = app
        .dpop_token(
            &w.client_id,
            &w.secret,
            Some(&key.proof("POST", &endpoint, None, Some(&nonce))),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("dpop-nonce"));
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let url = api_url(&app);
    let proof = key.proof("GET", &url, Some(&token), None);
    let r = check(&app, &w, "GET", &format!("DPoP {token}"), &[&proof]).await;
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(www.starts_with("DPoP error=\"use_dpop_nonce\""), "{www}");
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_gateway_denial(r, 401, "PCS-0452-401").await;
    let proof = key.proof("GET", &url, Some(&token), Some(&nonce));
    let r = check(&app, &w, "GET", &format!("DPoP {token}"), &[&proof]).await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// With a public origin set, the proof must name it, whatever Host the check carries.
#[tokio::test]
async fn the_configured_public_origin_is_the_one_a_proof_names() {
    let app = TestApp::spawn_with(Options {
        gateway: portcullis_server::config::GatewayConfig {
            public_origin: Some("https://api.example.com".into()),
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let w = app.gateway_world(false).await;
    let (token, key) = bound_token(&app, &w).await;
    let proof = key.proof("GET", &api_url(&app), Some(&token), None);
    let r = check(&app, &w, "GET", &format!("DPoP {token}"), &[&proof]).await;
    let body = assert_gateway_denial(r, 401, "PCS-0449-401").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("https://api.example.com/orders/7"),
        "{body}"
    );
    let proof = key.proof(
        "DELETE",
        "https://api.example.com/orders/7",
        Some(&token),
        None,
    );
    let r = check(&app, &w, "DELETE", &format!("DPoP {token}"), &[&proof]).await;
    // The proof passes; the resource then refuses a write from a read-only sandbox grant.
    assert_ne!(
        r.headers()
            .get("x-portcullis-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
        "PCS-0449-401"
    );
    let proof = key.proof(
        "GET",
        "https://api.example.com/orders/7",
        Some(&token),
        None,
    );
    let r = check(&app, &w, "GET", &format!("DPoP {token}"), &[&proof]).await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// A bound token for `client_id` with `scope` (client_secret_basic), and its key.
async fn bound_with_scope(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> (String, DpopKey) {
    let key = DpopKey::new();
    let proof = key.proof("POST", &app.token_endpoint(), None, None);
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(client_id, Some(secret))
        .header("dpop", proof)
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    (body["access_token"].as_str().unwrap().to_owned(), key)
}

/// The server's own APIs hold a bound token to its key as the gateway does: not as
/// Bearer, with a proof of its key for the very request (the issuer's URL), once; and an
/// app that requires DPoP has no bearer token there either.
#[tokio::test]
async fn the_admin_api_and_the_decision_feed_hold_a_bound_token_to_its_key() {
    let app = TestApp::spawn().await;
    let (cid, secret, org) = app.client(&["admin", "verify"]).await;
    let list = format!("/admin/v1/apps?org={org}");
    let (admin_token, key) = bound_with_scope(&app, &cid, &secret, "admin").await;
    let (status, v) = app.call_as(&admin_token, Method::GET, &list, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("DPoP"), "{v}");

    let url = format!("{}/admin/v1/apps", app.issuer);
    let admin = |proof: String| {
        app.http
            .get(app.url(&list))
            .header("authorization", format!("DPoP {admin_token}"))
            .header("dpop", proof)
            .send()
    };
    let proof = key.proof("GET", &url, Some(&admin_token), None);
    let r = admin(proof.clone()).await.unwrap();
    let status = r.status();
    assert_eq!(status, StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(
        admin(proof).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let thief = DpopKey::new();
    let r = admin(thief.proof("GET", &url, Some(&admin_token), None))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = admin(key.proof("GET", &format!("{url}/x"), Some(&admin_token), None))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let (verify_token, _) = bound_with_scope(&app, &cid, &secret, "verify").await;
    let r = app
        .http
        .get(app.url("/events/v1/snapshot"))
        .bearer_auth(&verify_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let old_bearer = app.access_token(&cid, &secret, Some("admin")).await;
    assert_eq!(
        app.call_as(&old_bearer, Method::GET, &list, None).await.0,
        StatusCode::OK
    );
    let (status, v) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/apps/{cid}"),
            Some(json!({"dpop_bound_access_tokens": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = app.call_as(&old_bearer, Method::GET, &list, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
}

/// The URL a proof is checked against is the client's: a Host that is not a host and
/// port cannot rewrite it, a first-party API's method is its own, and the path of
/// `/gateway/v1/check/<id>/<path>` is taken as the client sent it (not decoded).
#[tokio::test]
async fn a_client_cannot_rewrite_the_url_or_method_its_proof_is_checked_against() {
    let app = TestApp::spawn().await;
    let org = app.create_org(&["events"], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = app
        .create_app_with(json!({"org_id": org, "name": "writer",
            "scopes": ["read", "write"], "products": ["events"], "sandboxes": {"prod": "write"}}))
        .await;
    let cid = a["client_id"].as_str().unwrap().to_owned();
    let (_, secret) = app.create_secret(&cid).await;
    let res = app
        .create_resource_id(
            &org,
            json!({"name": "ds", "sandbox": "prod", "product": "events", "scopes": ["read"]}),
        )
        .await;
    let (token, key) = bound_with_scope(&app, &cid, &secret, "read write").await;
    let intake = |host: Option<&str>, method: Option<&str>, proof: String| {
        let mut req = app
            .http
            .post(app.url(&format!("/ee/v2/interact?datastreamId={res}")))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .header("x-api-key", &cid)
            .header("x-gw-ims-org-id", &org)
            .json(&json!({"event": {}}));
        if let Some(h) = host {
            req = req.header("host", h);
        }
        if let Some(m) = method {
            req = req.header("x-forwarded-method", m);
        }
        req.send()
    };
    // A proof the client made for another server's URL.
    let foreign = key.proof("POST", "http://rs-b.example/orders/7", Some(&token), None);
    let r = intake(Some("rs-b.example/orders/7#"), None, foreign)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["x-portcullis-code"], "PCS-0449-401");
    let own = format!("{}/ee/v2/interact", app.base);
    let r = intake(
        None,
        Some("GET"),
        key.proof("GET", &own, Some(&token), None),
    )
    .await
    .unwrap();
    assert_eq!(r.headers()["x-portcullis-code"], "PCS-0448-401");
    let r = intake(None, None, key.proof("POST", &own, Some(&token), None))
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    // The path form: `%3F` is not a query, and `%20` is the client's own.
    let w = app.gateway_world(false).await;
    let (token, key) = bound_with_scope(&app, &w.client_id, &w.secret, "read").await;
    let path_check = |path: &str, proof: String| {
        app.http
            .get(app.url(&format!("/gateway/v1/check/{}{path}", w.resource)))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .header("x-api-key", &w.client_id)
            .header("x-gw-ims-org-id", &w.org)
            .send()
    };
    let proof = key.proof("GET", &format!("{}/orders", app.base), Some(&token), None);
    let r = path_check("/orders%3Fx/admin", proof).await.unwrap();
    assert_eq!(r.headers()["x-portcullis-code"], "PCS-0449-401");
    let proof = key.proof("GET", &format!("{}/a%20b", app.base), Some(&token), None);
    let r = path_check("/a%20b", proof).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Introspection answers an unbound token of an app that requires DPoP as inactive: the
/// gateway refuses it, and so must a resource server that introspects.
#[tokio::test]
async fn introspection_calls_a_bearer_token_of_a_dpop_app_inactive() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let old_bearer = app.access_token(&w.client_id, &w.secret, None).await;
    let rs = app.create_app(&w.org, &["introspect"]).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, rs_secret) = app.create_secret(&rs).await;
    let active = || async {
        app.introspect(&rs, &rs_secret, &old_bearer)
            .await
            .json::<Value>()
            .await
            .unwrap()["active"]
            .clone()
    };
    assert_eq!(active().await, true);
    let (status, v) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/apps/{}", w.client_id),
            Some(json!({"dpop_bound_access_tokens": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(active().await, false);
}
