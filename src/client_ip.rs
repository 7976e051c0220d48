//! The client address of a request: the socket peer, or, only when that peer is a trusted
//! proxy, the rightmost `X-Forwarded-For` hop that is not itself a trusted proxy.

use std::net::IpAddr;

use ipnet::IpNet;

/// Resolves the client IP from the peer and the `X-Forwarded-For` values (in header order).
pub fn resolve<'a>(
    peer: Option<IpAddr>,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) if is_trusted(&ip) => client = ip,
            Some(ip) => return Some(ip),
            // A garbled hop ends the trusted chain: use the last address we could trust.
            None => return Some(client),
        }
    }
    Some(client)
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    let h = hop.trim();
    if h.is_empty() || h.len() > 64 {
        return None;
    }
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(ip);
    }
    // "[v6]:port" or "v4:port"
    if let Ok(sa) = h.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let ip = resolve(
            Some("203.0.113.9".parse().unwrap()),
            ["1.1.1.1"].into_iter(),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(ip, Some("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn rightmost_untrusted_hop_from_a_trusted_proxy() {
        let ip = resolve(
            Some("10.0.0.2".parse().unwrap()),
            ["6.6.6.6, 198.51.100.7, 10.0.0.5"].into_iter(),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(ip, Some("198.51.100.7".parse().unwrap()));
    }

    #[test]
    fn garbage_hop_stops_the_walk() {
        let ip = resolve(
            Some("10.0.0.2".parse().unwrap()),
            ["1.2.3.4, nonsense"].into_iter(),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(ip, Some("10.0.0.2".parse().unwrap()));
    }
}
