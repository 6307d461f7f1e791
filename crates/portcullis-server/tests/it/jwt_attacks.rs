//! JWT attacks × every path that accepts a JWT, against the real server.
//!
//! Each path says how to get a valid token's parts (header, claims, and how to sign) and
//! how to present a token; each attack turns those parts into a hostile token. The table
//! runs every attack on every path it applies to and requires a refusal; a valid token
//! per path must still be accepted, so a refusal is not just a broken path. Adding a path
//! is one line in `paths()`, adding an attack one line in `attacks()`.
//!
//! The DPoP proof that goes with a bound token at the gateway is one more path: signed with
//! the key the token is bound to (here the app's certificate key), its attacks are the
//! ones that mean something for a proof — a `kid`, `exp` or `nbf` means nothing in one.
//!
//! Paths that take a Portcullis access token (the gateway, introspection) cannot re-sign
//! (the test holds no server key): their attacks keep the real token's signature, which
//! is what an attacker holding a stolen token can do. Paths that take app-signed JWTs are
//! signed with the app's real certificate key, so only the attack itself can make them
//! fail.

use crate::common;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const STD: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const META: &str = "ent_smartcontent_sdk";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Who signs a path's tokens.
enum Signing {
    /// The app's certificate key (P-256): attacks are re-signed with it.
    Key(Arc<EcdsaKeyPair>),
    /// No key: keep this signature (of the real token, which is kept whole too: its
    /// parts re-serialized would not be the signed bytes).
    Reuse { token: String, sig: String },
}

/// A valid token, in parts.
struct Base {
    header: Value,
    claims: Value,
    signing: Signing,
}

impl Base {
    fn sign_raw(&self, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", B64.encode(header), B64.encode(claims));
        let sig = match &self.signing {
            Signing::Key(k) => B64.encode(
                k.sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
                    .unwrap()
                    .as_ref(),
            ),
            Signing::Reuse { token, sig } => {
                let (own_header, own_claims) = (self.header.to_string(), self.claims.to_string());
                if header == own_header.as_str() && claims == own_claims.as_str() {
                    return token.clone();
                }
                sig.clone()
            }
        };
        format!("{input}.{sig}")
    }
    fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&header.to_string(), &claims.to_string())
    }
    fn valid(&self) -> String {
        self.sign(&self.header, &self.claims)
    }
    fn can_sign(&self) -> bool {
        matches!(self.signing, Signing::Key(_))
    }
    /// A DPoP proof: no `kid`, `exp` or `nbf` of its own is read.
    fn is_dpop_proof(&self) -> bool {
        self.header["typ"] == "dpop+jwt"
    }
    fn reads_kid(&self) -> bool {
        !self.is_dpop_proof()
    }
    /// Signable, with `exp` and `nbf` read.
    fn reads_exp(&self) -> bool {
        self.can_sign() && !self.is_dpop_proof()
    }
    /// `header` with `changes` merged in.
    fn header_with(&self, changes: Value) -> Value {
        merged(&self.header, changes)
    }
    fn claims_with(&self, changes: Value) -> Value {
        merged(&self.claims, changes)
    }
}

fn merged(base: &Value, changes: Value) -> Value {
    let mut v = base.clone();
    for (k, c) in changes.as_object().unwrap() {
        if c.is_null() {
            v.as_object_mut().unwrap().remove(k);
        } else {
            v[k] = c.clone();
        }
    }
    v
}

/// Everything the attacks share: the attacker's key and the URL of its JWKS server.
struct Attacker {
    key: EcdsaKeyPair,
    jwk: Value,
    cert_der: Vec<u8>,
    jwks_url: String,
    public_pem: String,
}

impl Attacker {
    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }
}

fn hmac(key: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&k, input.as_bytes());
    format!("{input}.{}", B64.encode(tag.as_ref()))
}

/// An attack: a name, and the hostile token for a path (`None`: does not apply there).
type Attack = (&'static str, fn(&Base, &Attacker, &World) -> Option<String>);

fn attacks() -> Vec<Attack> {
    vec![
        ("alg none", |b, _, _| {
            Some(forged_jwt(
                &b.header_with(json!({"alg": "none"})),
                &b.claims,
                b"",
            ))
        }),
        ("alg NONE (case)", |b, _, _| {
            Some(forged_jwt(
                &b.header_with(json!({"alg": "NONE"})),
                &b.claims,
                b"",
            ))
        }),
        ("alg none, signature kept", |b, _, _| {
            Some(b.sign(&b.header_with(json!({"alg": "none"})), &b.claims))
        }),
        ("HS256 keyed with the public key (PEM)", |b, _, w| {
            let h = b.header_with(json!({"alg": "HS256"}));
            Some(hmac(w.public_key_for(b).as_bytes(), &h, &b.claims))
        }),
        ("HS256 keyed with the public JWK", |b, _, w| {
            let h = b.header_with(json!({"alg": "HS256"}));
            Some(hmac(w.public_jwk_for(b).as_bytes(), &h, &b.claims))
        }),
        ("kid path traversal", |b, _, _| {
            b.reads_kid().then(|| {
                b.sign(
                    &b.header_with(json!({"kid": "../../../../etc/passwd"})),
                    &b.claims,
                )
            })
        }),
        ("kid SQL injection", |b, _, _| {
            b.reads_kid().then(|| {
                b.sign(
                    &b.header_with(json!({"kid": "x' OR '1'='1' --"})),
                    &b.claims,
                )
            })
        }),
        ("kid NUL and traversal", |b, _, _| {
            let kid = format!("{}\u{0}/../../x", b.header["kid"].as_str().unwrap_or(""));
            b.reads_kid()
                .then(|| b.sign(&b.header_with(json!({"kid": kid})), &b.claims))
        }),
        ("jku to an attacker JWKS", |b, a, _| {
            let h = b.header_with(json!({"jku": a.jwks_url, "kid": "attacker"}));
            Some(a.sign(&h, &b.claims))
        }),
        ("x5u to an attacker certificate", |b, a, _| {
            let h = b.header_with(json!({"x5u": a.jwks_url, "kid": "attacker"}));
            Some(a.sign(&h, &b.claims))
        }),
        ("x5c with the attacker's certificate", |b, a, _| {
            let h = b.header_with(json!({"x5c": [STD.encode(&a.cert_der)]}));
            Some(a.sign(&h, &b.claims))
        }),
        ("x5c, no kid", |b, a, _| {
            let h = b.header_with(json!({"x5c": [STD.encode(&a.cert_der)], "kid": null}));
            Some(a.sign(&h, &b.claims))
        }),
        ("embedded jwk of the attacker", |b, a, _| {
            let h = b.header_with(json!({"jwk": a.jwk}));
            Some(a.sign(&h, &b.claims))
        }),
        ("crit naming exp", |b, _, _| {
            Some(b.sign(
                &b.header_with(json!({"crit": ["exp"], "exp": 1})),
                &b.claims,
            ))
        }),
        ("crit naming an unknown extension", |b, _, _| {
            Some(b.sign(
                &b.header_with(json!({"crit": ["x-portcullis-skip"], "x-portcullis-skip": true})),
                &b.claims,
            ))
        }),
        ("nested JWT (cty JWT)", |b, _, _| {
            Some(b.sign(&b.header_with(json!({"cty": "JWT"})), &b.claims))
        }),
        ("claims are a JWT string", |b, _, _| {
            let inner = b.valid();
            Some(b.sign_raw(&b.header.to_string(), &Value::String(inner).to_string()))
        }),
        ("double base64url-encoded token", |b, _, _| {
            Some(B64.encode(b.valid()))
        }),
        ("five segments (JWE shape)", |b, _, _| {
            Some(format!("{}.a.b", b.valid()))
        }),
        ("1 MB token", |b, _, _| {
            Some(b.sign(
                &b.header,
                &b.claims_with(json!({"pad": "x".repeat(1024 * 1024)})),
            ))
        }),
        ("9 KiB token (over the 8 KiB cap)", |b, _, _| {
            Some(b.sign(
                &b.header,
                &b.claims_with(json!({"pad": "x".repeat(9 * 1024)})),
            ))
        }),
        ("duplicate claim (last one hostile)", |b, _, _| {
            let claims = b.claims.to_string();
            let (name, evil) = ["jti", "iss", "sub", "client_id"]
                .into_iter()
                .find(|n| b.claims.get(*n).is_some())
                .map(|n| (n, "\"attacker\""))
                .unwrap_or(("exp", "99999999999"));
            let raw = format!("{},\"{name}\":{evil}}}", claims.trim_end_matches('}'));
            Some(b.sign_raw(&b.header.to_string(), &raw))
        }),
        ("duplicate header alg", |b, _, _| {
            let h = b.header.to_string();
            let raw = format!("{},\"alg\":\"none\"}}", h.trim_end_matches('}'));
            Some(b.sign_raw(&raw, &b.claims.to_string()))
        }),
        ("exp 61 s past (beyond the leeway)", |b, _, w| {
            b.reads_exp()
                .then(|| b.sign(&b.header, &b.claims_with(json!({"exp": w.now() - 61}))))
        }),
        ("exp as a string", |b, _, w| {
            b.reads_exp().then(|| {
                let exp = (w.now() + 300).to_string();
                b.sign(&b.header, &b.claims_with(json!({"exp": exp})))
            })
        }),
        ("nbf 120 s ahead", |b, _, w| {
            b.reads_exp()
                .then(|| b.sign(&b.header, &b.claims_with(json!({"nbf": w.now() + 120}))))
        }),
        ("iat 400 s ahead", |b, _, w| {
            b.can_sign()
                .then(|| b.sign(&b.header, &b.claims_with(json!({"iat": w.now() + 400}))))
        }),
        ("exp 25 h ahead", |b, _, w| {
            // Only where `exp` is required (assertions, Adobe I/O's service-account JWT): a bearer JWT has `iat`.
            (b.can_sign() && b.claims.get("exp").is_some()).then(|| {
                b.sign(
                    &b.header,
                    &b.claims_with(json!({"exp": w.now() + 25 * 3600})),
                )
            })
        }),
        ("no exp where exp is required", |b, _, _| {
            (b.can_sign() && b.claims.get("exp").is_some())
                .then(|| b.sign(&b.header, &b.claims_with(json!({"exp": null}))))
        }),
        ("no iat on a bearer JWT", |b, _, _| {
            (b.can_sign() && b.claims.get("exp").is_none())
                .then(|| b.sign(&b.header, &b.claims_with(json!({"iat": null}))))
        }),
        ("iat 400 s stale on a bearer JWT", |b, _, w| {
            (b.can_sign() && b.claims.get("exp").is_none())
                .then(|| b.sign(&b.header, &b.claims_with(json!({"iat": w.now() - 400}))))
        }),
        ("claims changed, signature kept", |b, _, _| {
            let mut c = b.claims.clone();
            c["scope"] = json!("read write admin");
            c["sub"] = json!("attacker");
            let real = b.valid();
            let sig = real.rsplit('.').next().unwrap();
            Some(format!(
                "{}.{}.{sig}",
                B64.encode(b.header.to_string()),
                B64.encode(c.to_string())
            ))
        }),
    ]
}

/// A path that accepts JWTs: its name, how to get a valid token's parts, and whether the
/// server accepted a token there.
#[derive(Clone, Copy, Debug)]
enum Path {
    GatewayAccessToken,
    GatewayAppJwt,
    Introspection,
    JwtBearerGrant,
    PrivateKeyJwt,
    ImsExchangeJwt,
    /// An access token with the `admin` scope, at the admin API.
    AdminApi,
    /// An access token with the `verify` scope, at the verifiers' snapshot.
    EventStream,
    /// The DPoP proof sent with a token bound to the app's certificate key.
    GatewayDpopProof,
}

fn paths() -> Vec<(&'static str, Path)> {
    vec![
        ("gateway: access token", Path::GatewayAccessToken),
        ("gateway: app-signed JWT", Path::GatewayAppJwt),
        ("/oauth/introspect", Path::Introspection),
        ("/oauth/token jwt-bearer grant", Path::JwtBearerGrant),
        ("/oauth/token private_key_jwt", Path::PrivateKeyJwt),
        ("/ims/exchange/jwt", Path::ImsExchangeJwt),
        ("admin API: access token", Path::AdminApi),
        ("/events/v1/snapshot", Path::EventStream),
        ("gateway: DPoP proof", Path::GatewayDpopProof),
    ]
}

struct World {
    app: TestApp,
    org: String,
    client_id: String,
    secret: String,
    tech: String,
    resource: String,
    cert: TestCert,
    kid: String,
    key: Arc<EcdsaKeyPair>,
    jti: AtomicUsize,
    /// A token bound (DPoP) to the app's certificate key.
    dpop_token: String,
}

/// The path the DPoP proofs are made for.
const DPOP_PATH: &str = "/orders/7";

impl World {
    fn now(&self) -> i64 {
        self.app.now()
    }
    fn jti(&self) -> String {
        format!("jti-{}", self.jti.fetch_add(1, Ordering::SeqCst))
    }
    fn public_key_for(&self, b: &Base) -> String {
        match b.signing {
            Signing::Key(_) => self.cert.pem.clone(),
            Signing::Reuse { .. } => self.server_jwk(),
        }
    }
    fn public_jwk_for(&self, b: &Base) -> String {
        match b.signing {
            Signing::Key(_) => {
                let spki = self.key.public_key().as_ref().to_vec();
                json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&spki[1..33]),
                    "y": B64.encode(&spki[33..]), "kid": self.kid})
                .to_string()
            }
            Signing::Reuse { .. } => self.server_jwk(),
        }
    }
    /// The public JWK of the app's certificate key, as a DPoP client sends it.
    fn dpop_jwk(&self) -> Value {
        let spki = self.key.public_key().as_ref().to_vec();
        json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&spki[1..33]),
            "y": B64.encode(&spki[33..])})
    }
    fn server_jwk(&self) -> String {
        std::fs::read_to_string(self.app.data_dir.path().join("jwks.json"))
            .unwrap_or_else(|_| "{}".into())
    }

    async fn access_token(&self, scope: &str) -> String {
        self.app
            .access_token(&self.client_id, &self.secret, Some(scope))
            .await
    }

    async fn base(&self, path: Path) -> Base {
        let now = self.now();
        let cert_header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let signed = |claims: Value| Base {
            header: cert_header.clone(),
            claims,
            signing: Signing::Key(self.key.clone()),
        };
        let endpoint = format!("{}/oauth/token", self.app.issuer);
        match path {
            Path::GatewayAccessToken | Path::Introspection | Path::AdminApi | Path::EventStream => {
                let token = self
                    .access_token(match path {
                        Path::AdminApi => "admin",
                        Path::EventStream => "verify",
                        _ => "read introspect",
                    })
                    .await;
                let mut parts = token.split('.');
                let header = parts.next().unwrap();
                let claims = parts.next().unwrap();
                let sig = parts.next().unwrap();
                Base {
                    header: serde_json::from_slice(&B64.decode(header).unwrap()).unwrap(),
                    claims: serde_json::from_slice(&B64.decode(claims).unwrap()).unwrap(),
                    signing: Signing::Reuse {
                        token: token.clone(),
                        sig: sig.to_owned(),
                    },
                }
            }
            Path::GatewayAppJwt => signed(json!({"iat": now, "jti": self.jti()})),
            Path::GatewayDpopProof => Base {
                header: json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.dpop_jwk()}),
                claims: json!({"jti": self.jti(), "htm": "GET",
                    "htu": format!("{}{DPOP_PATH}", self.app.base), "iat": now,
                    "ath": portcullis_core::dpop::ath(&self.dpop_token)}),
                signing: Signing::Key(self.key.clone()),
            },
            Path::JwtBearerGrant => signed(json!({"iss": self.client_id, "sub": self.tech,
                "aud": endpoint, "exp": now + 300, "iat": now, "jti": self.jti()})),
            Path::PrivateKeyJwt => signed(json!({"iss": self.client_id, "sub": self.client_id,
                "aud": endpoint, "exp": now + 300, "iat": now, "jti": self.jti()})),
            Path::ImsExchangeJwt => signed(json!({
                "exp": now + 300,
                "iss": self.org,
                "sub": self.tech,
                "aud": format!("{}/c/{}", self.app.issuer, self.client_id),
                format!("{}/s/{META}", self.app.issuer): true,
            })),
        }
    }

    /// Present `token` on `path`; whether it was accepted, and what came back.
    async fn present(&self, path: Path, token: &str) -> (bool, String) {
        let app = &self.app;
        let r = match path {
            Path::GatewayAccessToken | Path::GatewayAppJwt => {
                let mut req = app
                    .http
                    .get(app.url(&format!("/gateway/v1/check?resource={}", self.resource)))
                    .header("authorization", format!("Bearer {token}"));
                if let Path::GatewayAccessToken = path {
                    req = req
                        .header("x-api-key", &self.client_id)
                        .header("x-gw-ims-org-id", &self.org);
                }
                req.send().await.unwrap()
            }
            Path::GatewayDpopProof => app
                .http
                .get(app.url(&format!("/gateway/v1/check?resource={}", self.resource)))
                .header("authorization", format!("DPoP {}", self.dpop_token))
                .header("dpop", token)
                .header("x-api-key", &self.client_id)
                .header("x-gw-ims-org-id", &self.org)
                .header("x-original-uri", DPOP_PATH)
                .send()
                .await
                .unwrap(),
            Path::Introspection => app
                .http
                .post(app.url("/oauth/introspect"))
                .basic_auth(&self.client_id, Some(&self.secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap(),
            Path::JwtBearerGrant => {
                app.post_form(
                    "/oauth/token",
                    &[("grant_type", GRANT), ("assertion", token)],
                )
                .await
            }
            Path::PrivateKeyJwt => {
                app.post_form(
                    "/oauth/token",
                    &[
                        ("grant_type", "client_credentials"),
                        ("client_assertion_type", ASSERTION_TYPE),
                        ("client_assertion", token),
                    ],
                )
                .await
            }
            Path::AdminApi => app
                .http
                .get(app.url(&format!("/admin/v1/orgs/{}", self.org)))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
            Path::EventStream => app
                .http
                .get(app.url("/events/v1/snapshot"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
            Path::ImsExchangeJwt => {
                app.post_form(
                    "/ims/exchange/jwt",
                    &[
                        ("client_id", &self.client_id),
                        ("client_secret", &self.secret),
                        ("jwt_token", token),
                    ],
                )
                .await
            }
        };
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        assert!(
            status.is_success() || status.is_client_error(),
            "{path:?}: {status} {body}"
        );
        let accepted = match path {
            Path::Introspection => {
                status == StatusCode::OK
                    && serde_json::from_str::<Value>(&body).unwrap()["active"] == json!(true)
            }
            _ => status == StatusCode::OK,
        };
        (
            accepted,
            format!("{status} {}", body.chars().take(160).collect::<String>()),
        )
    }
}

/// An HTTP server on loopback that counts every connection it gets (and answers with a
/// JWKS of the attacker's key, should anyone ask).
async fn attacker_server(jwk: Value) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let body = json!({"keys": [jwk]}).to_string();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    (url, hits)
}

async fn world() -> World {
    let app = TestApp::spawn_with(Options {
        manual_clock: true,
        ..Default::default()
    })
    .await;
    let org = app.create_org(&["events"], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = app
        .create_app_with(
            json!({"org_id": org, "name": "victim", "scopes": [META, "read", "introspect", "admin", "verify"],
            "products": ["events"], "sandboxes": {"prod": "read"}}),
        )
        .await;
    let client_id = a["client_id"].as_str().unwrap().to_owned();
    let tech = a["technical_account_id"].as_str().unwrap().to_owned();
    let (_, secret) = app.create_secret(&client_id).await;
    let resource = app
        .create_resource_id(
            &org,
            json!({"name": "api", "sandbox": "prod", "product": "events", "scopes": ["read"]}),
        )
        .await;
    let cert = TestCert::valid(jsonwebtoken::Algorithm::ES256, app.now());
    let kid = app.certificate_id(&client_id, &cert.pem).await;
    let der = ::pem::parse(&cert.key_pem).unwrap().into_contents();
    let key = Arc::new(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).unwrap());
    // The server's public JWKS, for the HMAC confusion attacks on access tokens.
    let jwks = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(app.data_dir.path().join("jwks.json"), jwks).unwrap();
    let mut world = World {
        app,
        org,
        client_id,
        secret,
        tech,
        resource,
        cert,
        kid,
        key,
        jti: AtomicUsize::new(0),
        dpop_token: String::new(),
    };
    // A token bound to the certificate key, obtained with a proof of it.
    let proof = Base {
        header: json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": world.dpop_jwk()}),
        claims: json!({"jti": "token-request", "htm": "POST",
            "htu": format!("{}/oauth/token", world.app.issuer), "iat": world.now()}),
        signing: Signing::Key(world.key.clone()),
    }
    .valid();
    let r = world
        .app
        .dpop_token(&world.client_id, &world.secret, Some(&proof))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    world.dpop_token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    world
}

async fn attacker() -> (Attacker, Arc<AtomicUsize>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["attacker.example".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der()).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    let jwk = json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "attacker",
        "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])});
    let (jwks_url, hits) = attacker_server(jwk.clone()).await;
    (
        Attacker {
            key: pair,
            jwk,
            cert_der: cert.der().to_vec(),
            jwks_url,
            public_pem: key.public_key_pem(),
        },
        hits,
    )
}

#[tokio::test]
async fn every_jwt_attack_is_refused_on_every_path() {
    let w = world().await;
    let (attacker, hits) = attacker().await;
    assert!(attacker.public_pem.contains("PUBLIC KEY"));
    let attacks = attacks();
    let mut refused = 0;
    let mut not_applicable = 0;
    let mut holes = Vec::new();
    println!("{:<40} {:<34} result", "attack", "path");
    for (path_name, path) in paths() {
        // The control: a valid token is accepted on this path.
        let base = w.base(path).await;
        let (ok, answer) = w.present(path, &base.valid()).await;
        assert!(ok, "{path_name}: a valid token was refused: {answer}");
        for (attack_name, make) in &attacks {
            let base = w.base(path).await;
            let Some(token) = make(&base, &attacker, &w) else {
                not_applicable += 1;
                continue;
            };
            let (accepted, answer) = w.present(path, &token).await;
            if accepted {
                holes.push(format!("{attack_name} on {path_name}: {answer}"));
                println!("{attack_name:<40} {path_name:<34} ACCEPTED {answer}");
            } else {
                refused += 1;
                println!("{attack_name:<40} {path_name:<34} refused  {answer}");
            }
        }
        // Clock skew: a token valid now, presented after the clock moved past its exp.
        let base = w.base(path).await;
        let token = base.valid();
        let clock = w.app.clock.as_ref().unwrap();
        clock.advance(3700);
        let (accepted, answer) = w.present(path, &token).await;
        clock.advance(-3700);
        if accepted {
            holes.push(format!("clock skew past exp on {path_name}: {answer}"));
        } else {
            refused += 1;
            println!(
                "{:<40} {path_name:<34} refused  {answer}",
                "clock moved 1 h past exp"
            );
        }
    }
    let total = paths().len() * (attacks.len() + 1) - not_applicable;
    println!(
        "JWT attacks refused: {refused} of {total} ({} attacks × {} paths, {not_applicable} not applicable)",
        attacks.len() + 1,
        paths().len()
    );
    assert!(holes.is_empty(), "accepted attacks:\n{}", holes.join("\n"));
    assert_eq!(refused, total);
    // No path fetched the attacker's jku/x5u.
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the server fetched an attacker URL"
    );
    w.app.stop().await;
}
