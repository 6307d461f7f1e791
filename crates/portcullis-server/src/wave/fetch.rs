//! Fetching a notification's `imageurl` without becoming a tool for server-side request
//! forgery: the host is resolved here, *every* address it resolves to must be public
//! (not loopback, private, link-local, unique-local, shared, documentation, multicast or
//! unspecified; IPv4-mapped IPv6 is judged as its IPv4), and the connection is pinned to
//! the checked address (reqwest `resolve`), so a second DNS answer cannot swap in an
//! internal one (DNS rebinding). Redirects are not followed; the body is read up to a cap
//! with a timeout; the content type must be PNG or JPEG.
//!
//! https URLs are verified with rustls against the Mozilla roots (webpki-roots) plus the
//! CAs of `--image-fetch-ca-file`, if given; verification is never switched off. Pinning
//! keeps the URL's host name for SNI and the certificate check.
//!
//! `--allow-private-image-urls` lifts the address check, for development and tests.

use super::image::{MAX_BYTES, is_image_type};
use crate::config::WaveConfig;
use futures_util::StreamExt;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock};

/// Why an image URL was not used: `Bad` (400, the URL itself), `Unusable` (415, the
/// vendor's status for an image that cannot be read).
#[derive(Debug, PartialEq, Eq)]
pub enum FetchError {
    Bad(String),
    Unusable(String),
}

static NOT_PUBLIC: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    [
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        // IPv4-compatible (deprecated, but routed to the IPv4 address by some stacks) and
        // IPv4-mapped addresses, whole: `::127.0.0.1` is loopback by another name. Both
        // cover `::` and `::1`.
        "::/96",
        "::ffff:0:0/96",
        // IPv4-translated (SIIT): `::ffff:0:a.b.c.d`.
        "::ffff:0:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    ]
    .iter()
    .map(|n| n.parse().expect("a valid network"))
    .collect()
});

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    !NOT_PUBLIC.iter().any(|n| n.contains(&ip))
}

/// The TLS settings of image fetches: the Mozilla roots, plus the PEM certificates of
/// `ca_file`. Errors are for the operator (the server does not start).
pub fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let shown = path.display();
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                format!("the image fetch CA file {shown} cannot be read as PEM certificates: {e}")
            })?;
        if certs.is_empty() {
            return Err(format!(
                "the image fetch CA file {shown} holds no certificate (expected PEM 'BEGIN CERTIFICATE' blocks)"
            ));
        }
        for c in certs {
            roots.add(c).map_err(|e| {
                format!("the image fetch CA file {shown} holds a certificate that is not a usable CA: {e}")
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("setting up TLS for image fetches failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Fetch the image at `url` under `cfg`'s rules (`tls` for https); its bytes.
pub async fn fetch_image(
    url: &str,
    cfg: &WaveConfig,
    tls: &rustls::ClientConfig,
) -> Result<Vec<u8>, FetchError> {
    let checked = super::check_http_url("imageurl", url).map_err(|p| FetchError::Bad(p.detail))?;
    let url = reqwest::Url::parse(&checked).map_err(|e| FetchError::Bad(e.to_string()))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let host = url
        .host()
        .ok_or_else(|| FetchError::Bad("imageurl has no host.".into()))?;
    let (domain, addrs): (Option<String>, Vec<IpAddr>) = match host {
        url::Host::Ipv4(ip) => (None, vec![IpAddr::V4(ip)]),
        url::Host::Ipv6(ip) => (None, vec![IpAddr::V6(ip)]),
        url::Host::Domain(d) => {
            let resolved =
                tokio::time::timeout(cfg.image_fetch_timeout, tokio::net::lookup_host((d, port)))
                    .await
                    .map_err(|_| {
                        FetchError::Unusable("Resolving the imageurl host timed out.".into())
                    })?
                    .map_err(|_| {
                        FetchError::Unusable(format!("The imageurl host '{d}' does not resolve."))
                    })?;
            (Some(d.to_owned()), resolved.map(|a| a.ip()).collect())
        }
    };
    if addrs.is_empty() {
        return Err(FetchError::Unusable(
            "The imageurl host has no address.".into(),
        ));
    }
    if !cfg.allow_private_image_urls
        && let Some(bad) = addrs.iter().find(|a| !is_public(**a))
    {
        tracing::info!(address = %bad, "imageurl refused: not a public address");
        return Err(FetchError::Unusable(format!(
            "imageurl resolves to {bad}, which is not a public address; the server does not fetch from private, loopback or link-local networks."
        )));
    }
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.image_fetch_timeout)
        .connect_timeout(cfg.image_fetch_timeout)
        .no_proxy()
        .use_preconfigured_tls(tls.clone());
    if let Some(d) = &domain {
        // Only the addresses checked above (tried in order).
        let pinned: Vec<SocketAddr> = addrs.iter().map(|a| SocketAddr::new(*a, port)).collect();
        builder = builder.resolve_to_addrs(d, &pinned);
    }
    let client = builder
        .build()
        .map_err(|e| FetchError::Unusable(format!("The image could not be fetched: {e}.")))?;
    let res = client
        .get(url)
        .header(reqwest::header::ACCEPT, "image/png, image/jpeg")
        .send()
        .await
        .map_err(|e| {
            tracing::info!(error = ?e, "fetching an imageurl failed");
            FetchError::Unusable(format!(
                "The image could not be fetched: {}.",
                if e.is_timeout() {
                    "timed out".to_owned()
                } else if let Some(tls) = tls_failure(&e) {
                    format!("the TLS connection failed ({tls}); an https imageurl needs a certificate the server trusts")
                } else {
                    "connection failed".to_owned()
                }
            ))
        })?;
    if res.status() != reqwest::StatusCode::OK {
        return Err(FetchError::Unusable(format!(
            "Fetching the image answered {} (redirects are not followed).",
            res.status().as_u16()
        )));
    }
    let ct = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
        .unwrap_or_default();
    if !is_image_type(&ct) {
        return Err(FetchError::Unusable(format!(
            "The image URL answered Content-Type '{}'; it must be image/png or image/jpeg.",
            ct.chars().take(60).collect::<String>()
        )));
    }
    if res.content_length().is_some_and(|n| n > MAX_BYTES as u64) {
        return Err(FetchError::Unusable("The image is too large.".into()));
    }
    let mut body = Vec::new();
    let mut chunks = res.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|_| FetchError::Unusable("Reading the image failed.".into()))?;
        if body.len() + chunk.len() > MAX_BYTES {
            return Err(FetchError::Unusable("The image is too large.".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The rustls error behind a failed request, if TLS is what failed (it sits inside
/// nested `io::Error`s, whose `source` skips the wrapped error, so those are unwrapped).
fn tls_failure(e: &reqwest::Error) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = next {
        if let Some(r) = s.downcast_ref::<rustls::Error>() {
            return Some(r.to_string());
        }
        next = match s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => s.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "::10.0.0.1",
            "::a9fe:a9fe",
            "::",
            "::ffff:0.0.0.0",
            "::ffff:0:7f00:1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        for a in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "8.8.8.8",
        ] {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
    }
}
