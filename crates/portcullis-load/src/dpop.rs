//! `dpop`: the input of bench/load.sh's load (g), gateway checks with DPoP (RFC 9449).
//!
//! One P-256 key per sampled app, one DPoP-bound token per app from `/oauth/token` (its
//! request carries a proof for the token endpoint), then `count` lines of
//! `token \t client_id \t org \t resource \t proof`, rotating over the apps, each with a
//! proof of its own (a new `jti`) for `GET` of the same URL. Sent in order, every request
//! carries a token the server has seen before (its signature is cached) and a proof it
//! has not (its signature is verified): what a DPoP client's traffic looks like.
//!
//! Proofs are signed with aws-lc-rs directly (the key parsed once, the JOSE header
//! encoded once per key), so a proof costs about one ES256 signature. They carry `iat` of
//! the moment they were made and the server takes them for 60 s: make the file right
//! before the load.

use crate::files::{self, Credential};
use crate::http::{Conn, authority};
use crate::rate::client_credentials;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A client's DPoP key: the key pair and the base64url JOSE header of its proofs
/// (`typ` dpop+jwt, `alg` ES256, `jwk` its public key).
pub struct ClientKey {
    pair: EcdsaKeyPair,
    header: String,
}

impl ClientKey {
    pub fn generate() -> Result<Self, String> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| "cannot generate a P-256 key".to_owned())?;
        // Uncompressed SEC1 point: 0x04, x (32 bytes), y (32 bytes).
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err("unexpected P-256 public key encoding".into());
        }
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": B64.encode(&point[1..33]),
            "y": B64.encode(&point[33..65]),
        });
        let header = B64.encode(
            serde_json::to_vec(&json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": jwk }))
                .map_err(|e| e.to_string())?,
        );
        Ok(Self { pair, header })
    }

    /// The public key as the proofs' header carries it.
    #[cfg(test)]
    fn jwk(&self) -> Value {
        let header: Value = serde_json::from_slice(&B64.decode(&self.header).unwrap()).unwrap();
        header["jwk"].clone()
    }

    /// A proof for `htm` `htu` with `jti` and `iat`, and `ath` for `access_token` when
    /// one goes with it.
    pub fn proof(
        &self,
        rng: &SystemRandom,
        htm: &str,
        htu: &str,
        jti: &str,
        iat: u64,
        access_token: Option<&str>,
    ) -> Result<String, String> {
        let mut claims = json!({ "jti": jti, "htm": htm, "htu": htu, "iat": iat });
        if let Some(token) = access_token {
            claims["ath"] = portcullis_core::dpop::ath(token).into();
        }
        let claims = serde_json::to_vec(&claims).map_err(|e| e.to_string())?;
        let mut jws = String::with_capacity(self.header.len() + claims.len() * 4 / 3 + 90);
        jws.push_str(&self.header);
        jws.push('.');
        B64.encode_string(&claims, &mut jws);
        let sig = self
            .pair
            .sign(rng, jws.as_bytes())
            .map_err(|_| "signing a DPoP proof failed".to_owned())?;
        jws.push('.');
        B64.encode_string(sig.as_ref(), &mut jws);
        Ok(jws)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The server's issuer, from its discovery document: the token endpoint a proof names is
/// `{issuer}/oauth/token`.
async fn issuer(conn: &mut Conn) -> Result<String, String> {
    let req = conn
        .request("GET", "/.well-known/openid-configuration")
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let (status, body) = conn.send(req).await?;
    if !status.is_success() {
        return Err(format!("discovery answered {status}"));
    }
    let json: Value =
        serde_json::from_slice(&body).map_err(|e| format!("discovery is not JSON: {e}"))?;
    json["issuer"]
        .as_str()
        .map(|s| s.trim_end_matches('/').to_owned())
        .ok_or_else(|| "discovery without issuer".to_owned())
}

/// A DPoP-bound token for `c`, bound to `key`.
async fn bound_token(
    conn: &mut Conn,
    c: &Credential,
    key: &ClientKey,
    rng: &SystemRandom,
    token_endpoint: &str,
    jti: &str,
) -> Result<String, String> {
    let proof = key.proof(rng, "POST", token_endpoint, jti, unix_now(), None)?;
    let json = client_credentials(conn, c, Some(&proof)).await?;
    let kind = json["token_type"].as_str().unwrap_or("");
    if !kind.eq_ignore_ascii_case("dpop") {
        return Err(format!(
            "token for {} has token_type {kind:?}, not DPoP: the server did not bind it",
            c.client_id
        ));
    }
    json["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "token response without access_token".to_owned())
}

/// Write `count` lines of `token \t client_id \t org \t resource \t proof` (mode 0600) for
/// the apps of `credentials`: see the module's documentation. `path` is the URL path the
/// proofs are for (`htu` is `url` + `path`): the path the gateway check reports as the
/// client's, such as what follows the resource id in `/gateway/v1/check/<id>/…`.
pub async fn run(
    url: &str,
    credentials: &Path,
    count: usize,
    path: &str,
    out: &Path,
) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("--path {path}: a path starting with '/'"));
    }
    let creds = files::credentials(credentials)?;
    let authority = authority(url)?;
    let mut conn = Conn::open(&authority).await?;
    let token_endpoint = format!("{}/oauth/token", issuer(&mut conn).await?);
    let htu = format!("{}{path}", url.trim_end_matches('/'));
    let rng = SystemRandom::new();
    // jtis unique across runs against the same server: a random prefix and a counter.
    let run_id = hex(&portcullis_core::random_bytes::<8>());

    let started = Instant::now();
    let mut apps = Vec::with_capacity(creds.len());
    for (i, c) in creds.iter().enumerate() {
        let key = ClientKey::generate()?;
        let jti = format!("{run_id}.t{i:x}");
        let token = bound_token(&mut conn, c, &key, &rng, &token_endpoint, &jti).await?;
        apps.push((c, key, token));
    }
    eprintln!(
        "minted {} DPoP-bound tokens in {:.2} s",
        apps.len(),
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let (mut file, fail) = files::create_private(out)?;
    writeln!(file, "# token\tclient_id\torg\tresource\tproof").map_err(&fail)?;
    for i in 0..count {
        let (c, key, token) = &apps[i % apps.len()];
        let jti = format!("{run_id}.{i:x}");
        let proof = key.proof(&rng, "GET", &htu, &jti, unix_now(), Some(token))?;
        writeln!(
            file,
            "{token}\t{}\t{}\t{}\t{proof}",
            c.client_id, c.org, c.resource
        )
        .map_err(&fail)?;
    }
    file.flush().map_err(&fail)?;
    let took = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {count} proofs for GET {htu} into {} in {took:.2} s ({:.1} us each)",
        out.display(),
        1e6 * took / count.max(1) as f64
    );
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::dpop::{Expected, verify_proof};

    const HTU: &str = "http://127.0.0.1:18080/api";

    fn expected<'a>(token: &'a str, now: i64) -> Expected<'a> {
        Expected {
            htm: "GET",
            htu: HTU,
            now,
            max_age: 60,
            leeway: 5,
            access_token: Some(token),
            nonce: None,
        }
    }

    #[test]
    fn a_proof_passes_the_servers_own_check_and_names_its_key() {
        let key = ClientKey::generate().unwrap();
        let rng = SystemRandom::new();
        let now = unix_now();
        let proof = key
            .proof(&rng, "GET", HTU, "run.1", now, Some("the.token.sig"))
            .unwrap();
        let got = verify_proof(&proof, &expected("the.token.sig", now as i64)).unwrap();
        assert_eq!(got.jti, "run.1");
        assert_eq!(got.iat, now as i64);
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk()).unwrap();
        assert_eq!(
            got.jkt,
            jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap()
        );
    }

    #[test]
    fn a_proof_is_for_its_token_and_url_only() {
        let key = ClientKey::generate().unwrap();
        let rng = SystemRandom::new();
        let now = unix_now();
        let proof = key
            .proof(&rng, "GET", HTU, "run.2", now, Some("the.token.sig"))
            .unwrap();
        assert!(verify_proof(&proof, &expected("another.token.sig", now as i64)).is_err());
        let mut other_url = expected("the.token.sig", now as i64);
        other_url.htu = "http://127.0.0.1:18080/other";
        assert!(verify_proof(&proof, &other_url).is_err());
        // A token-endpoint proof carries no ath.
        let proof = key
            .proof(&rng, "POST", "http://x/oauth/token", "run.3", now, None)
            .unwrap();
        let claims = proof.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(&B64.decode(claims).unwrap()).unwrap();
        assert!(claims.get("ath").is_none());
    }
}
