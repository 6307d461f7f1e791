//! Fetching a notification's `imageurl` without becoming a tool for server-side request
//! forgery: the host is resolved here, *every* address it resolves to must be public
//! (not loopback, private, link-local, unique-local, shared, documentation, multicast or
//! unspecified; IPv4-mapped IPv6 is judged as its IPv4), and the connection is pinned to
//! the checked address (reqwest `resolve`), so a second DNS answer cannot swap in an
//! internal one (DNS rebinding). Redirects are not followed; the body is read up to a cap
//! with a timeout; the content type must be PNG or JPEG.
//!
//! `--allow-private-image-urls` lifts the address check, for development and tests.

use super::image::{MAX_BYTES, is_image_type};
use crate::config::WaveConfig;
use futures_util::StreamExt;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::LazyLock;

/// Why an image URL was not used: `Bad` (400, the URL itself), `Unusable` (415, the
/// seed's status for an image that cannot be read).
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
        "::/128",
        "::1/128",
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

/// Fetch the image at `url` under `cfg`'s rules; its bytes.
pub async fn fetch_image(url: &str, cfg: &WaveConfig) -> Result<Vec<u8>, FetchError> {
    let checked = super::check_http_url("imageurl", url).map_err(|p| FetchError::Bad(p.detail))?;
    let url = reqwest::Url::parse(&checked).map_err(|e| FetchError::Bad(e.to_string()))?;
    if url.scheme() == "https" {
        // This build's HTTP client has no TLS; say so rather than fail obscurely.
        return Err(FetchError::Unusable(
            "https image URLs cannot be fetched by this server (its HTTP client has no TLS); send the image itself (imagetype + image) instead.".into(),
        ));
    }
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
    let Some(first) = addrs.first().copied() else {
        return Err(FetchError::Unusable(
            "The imageurl host has no address.".into(),
        ));
    };
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
        .no_proxy();
    if let Some(d) = &domain {
        builder = builder.resolve(d, SocketAddr::new(first, port));
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
            FetchError::Unusable(format!(
                "The image could not be fetched: {}.",
                if e.is_timeout() {
                    "timed out"
                } else {
                    "connection failed"
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
