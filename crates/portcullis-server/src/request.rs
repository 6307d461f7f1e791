//! What a request says about who sent it: the TCP peer, the client's address behind
//! trusted proxies, whether it came over TLS, and header values as text. Shared by the
//! gateway, the token endpoint, the audit trail, Wave and the console.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;
use portcullis_core::gateway::NotText;
use std::net::{IpAddr, SocketAddr};

pub fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A header's first value as text; [`NotText`] when any of its values is not text (for
/// [`CheckRequest::from_headers`]).
pub fn header_text<'a>(h: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, NotText> {
    if h.get_all(name).iter().any(|v| v.to_str().is_err()) {
        return Err(NotText);
    }
    Ok(header_str(h, name))
}

/// The TCP peer of the request, when the server was started with connection info (it
/// always is; a router driven without a listener has none).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// The client's address (see [`client_address`]) and whether the request came over TLS:
/// it did when Portcullis terminates TLS itself (`--tls-cert`), or when a `--trusted-proxy`
/// says `X-Forwarded-Proto: https`. Shared with the console (its `Secure` cookies
/// and its sign-in failure limit).
pub fn client_facts(
    cfg: &crate::config::GatewayConfig,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> (Option<IpAddr>, bool) {
    let peer_trusted =
        peer.is_some_and(|p| cfg.trusted_proxies.iter().any(|n| n.contains(&p.ip())));
    let client = client_address(peer, peer_trusted, headers, &cfg.trusted_proxies);
    let tls = cfg.server_tls
        || (peer_trusted
            && header_str(headers, "x-forwarded-proto")
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https")));
    (client, tls)
}

/// The origin (`https://host[:port]`) a client called, for the URL a DPoP proof names:
/// the configured public origin, else the scheme as [`client_facts`] tells it and the
/// host a `--trusted-proxy` forwarded (`X-Forwarded-Host`) or the `Host` header.
pub fn public_origin(
    cfg: &crate::config::GatewayConfig,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Option<String> {
    if let Some(origin) = &cfg.public_origin {
        return Some(origin.clone());
    }
    let peer_trusted =
        peer.is_some_and(|p| cfg.trusted_proxies.iter().any(|n| n.contains(&p.ip())));
    let forwarded = peer_trusted
        .then(|| header_str(headers, "x-forwarded-host"))
        .flatten()
        .and_then(|h| h.split(',').next())
        .map(str::trim);
    // Only a host and port: anything else (a path, query, fragment, user info) in a
    // client-chosen Host would rewrite the URL a proof is checked against.
    let host = forwarded
        .or_else(|| header_str(headers, "host"))
        .filter(|h| is_host_and_port(h))?;
    let scheme = if client_facts(cfg, peer, headers).1 {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}"))
}

/// `host[:port]`: a DNS name, an IPv4 address or a bracketed IPv6 address, and a port of
/// digits.
fn is_host_and_port(h: &str) -> bool {
    let (host_ok, port) = match h.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) => (v6.parse::<std::net::Ipv6Addr>().is_ok(), port),
            None => return false,
        },
        None => {
            let (name, port) = h.find(':').map_or((h, ""), |i| h.split_at(i));
            let ok = !name.is_empty()
                && name.len() <= 253
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            (ok, port)
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// Whether a request may carry a secret that travels in the clear (`userKey` + `secret`,
/// Wave's OAuth 1.0 PLAINTEXT and `apitoken.xml`): it came over TLS (see [`client_facts`])
/// or the server allows secrets over plain HTTP (development).
pub fn secrets_allowed(
    cfg: &crate::config::GatewayConfig,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> bool {
    cfg.allow_secrets_over_http || client_facts(cfg, peer, headers).1
}

/// The client's address: the peer, or — when the peer is a trusted proxy — the nearest
/// untrusted address in `X-Forwarded-For` (walking from the right, since only the
/// entries our proxies appended can be believed).
fn client_address(
    peer: Option<SocketAddr>,
    peer_trusted: bool,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?.ip();
    if !peer_trusted {
        return Some(peer);
    }
    let mut nearest = peer;
    // Several X-Forwarded-For headers are one list, in order.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // Garbage: stop at the last address we could believe.
            return Some(nearest);
        };
        nearest = ip;
        if !trusted.iter().any(|n| n.contains(&ip)) {
            return Some(ip);
        }
    }
    Some(nearest)
}

#[cfg(test)]
mod host_tests {
    use super::is_host_and_port;

    #[test]
    fn only_a_host_and_a_port_make_an_origin() {
        for ok in [
            "api.example.com",
            "api.example.com:8443",
            "127.0.0.1:80",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(is_host_and_port(ok), "{ok}");
        }
        for bad in [
            "",
            "rs-b.example/orders/7#",
            "a.example?x",
            "a.example#",
            "user@a.example",
            "a.example:",
            "a.example:80:80",
            "a.example:abc",
            "[::1",
            "[zz]:80",
            "a b",
        ] {
            assert!(!is_host_and_port(bad), "{bad}");
        }
    }
}
