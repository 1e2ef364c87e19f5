//! Who is on the other end of a request: the client's IP address and a 64-bit hash of its
//! User-Agent. Live-session binding, rate limits and per-client limits key on these.
//!
//! The IP is the socket peer's, unless that peer is a trusted proxy (`FORGE_TRUSTED_PROXIES`,
//! CIDRs): then `X-Forwarded-For` is read from the right, skipping trusted proxies, and the
//! first untrusted hop is the client. Reading from the right matters: everything left of the
//! last trusted proxy's entry was written by the client and can be forged.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::shared::Shared;

/// The client of one request, as [`crate::gateway`] handlers extract it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Client {
    pub ip: IpAddr,
    /// [`user_agent_hash`] of the request's `User-Agent` (of the empty string without one).
    pub user_agent_hash: u64,
}

impl Client {
    pub fn from_parts(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Client {
        // Without connection info (a router driven in-process, never the served node) the
        // peer is unknown; it then counts as one shared client, the conservative choice for
        // per-client limits.
        let peer = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |addr| addr.ip());
        let user_agent = headers
            .get(axum::http::header::USER_AGENT)
            .map_or(&[][..], |value| value.as_bytes());
        Client {
            ip: client_ip(peer, headers, trusted),
            user_agent_hash: user_agent_hash(user_agent),
        }
    }
}

impl FromRequestParts<Arc<Shared>> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Client, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        Ok(Client::from_parts(
            peer,
            &parts.headers,
            &shared.config.trusted_proxies,
        ))
    }
}

/// The client's address for a request whose socket peer is `peer`.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return canonical(peer);
    }
    let mut client = canonical(peer);
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        // An entry that is not an address ends the walk: the hop before it (already in
        // `client`) is the last one a trusted proxy vouched for.
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = canonical(ip);
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack socket reports for IPv4
/// peers) are the IPv4 address, so that limits and bindings see one client, not two.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The first 64 bits of the SHA-256 of a User-Agent: enough to tell browsers apart, and
/// never the raw string (which fingerprints).
pub(crate) fn user_agent_hash(user_agent: &[u8]) -> u64 {
    let digest = Sha256::digest(user_agent);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Parses `FORGE_TRUSTED_PROXIES`: comma-separated CIDRs or single addresses.
pub(crate) fn parse_trusted_proxies(text: &str) -> Result<Vec<IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| entry.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = parse_trusted_proxies("10.0.0.0/8").unwrap();
        let forged = headers(&["1.2.3.4"]);
        assert_eq!(
            client_ip(ip("203.0.113.9"), &forged, &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("203.0.113.9"), &forged, &[]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = parse_trusted_proxies("10.0.0.0/8, 192.168.1.1").unwrap();
        // The client forged "1.1.1.1"; the proxy chain appended the real address.
        let chain = headers(&["1.1.1.1, 198.51.100.7", "192.168.1.1"]);
        assert_eq!(
            client_ip(ip("10.1.2.3"), &chain, &trusted),
            ip("198.51.100.7")
        );
        // Only trusted hops: the leftmost one is all there is.
        let internal = headers(&["10.9.9.9"]);
        assert_eq!(
            client_ip(ip("10.1.2.3"), &internal, &trusted),
            ip("10.9.9.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &HeaderMap::new(), &trusted),
            ip("10.1.2.3")
        );
        // Garbage ends the walk at the last hop a trusted proxy vouched for.
        let garbage = headers(&["198.51.100.7, not-an-ip, 10.0.0.5"]);
        assert_eq!(
            client_ip(ip("10.1.2.3"), &garbage, &trusted),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn ipv4_mapped_peers_are_their_ipv4_address() {
        let trusted = parse_trusted_proxies("127.0.0.1").unwrap();
        let chain = headers(&["198.51.100.7"]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &chain, &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("::ffff:203.0.113.1"), &chain, &[]),
            ip("203.0.113.1")
        );
    }

    #[test]
    fn trusted_proxies_parse_cidrs_and_addresses_and_name_bad_entries() {
        let parsed = parse_trusted_proxies("10.0.0.0/8, ::1 ,fd00::/8,").unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(
            parse_trusted_proxies("10.0.0.0/8,proxy.local"),
            Err("proxy.local".to_owned())
        );
    }

    #[test]
    fn user_agents_hash_to_distinct_stable_values() {
        assert_eq!(
            user_agent_hash(b"Mozilla/5.0"),
            user_agent_hash(b"Mozilla/5.0")
        );
        assert_ne!(
            user_agent_hash(b"Mozilla/5.0"),
            user_agent_hash(b"curl/8.0")
        );
    }
}
