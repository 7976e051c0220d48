//! `X-Forwarded-For` resolution: `client_ip::resolve` over any peer and header values. The
//! client is the peer unless the peer is trusted, and is never a hop left of an untrusted one.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use attachd::client_ip::resolve;
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;

fn trusted() -> Vec<IpNet> {
    [
        "10.0.0.0/8",
        "127.0.0.1/32",
        "192.168.7.0/24",
        "::1/128",
        "fd00::/8",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let peer = match data[0] % 4 {
        0 => IpAddr::V4(Ipv4Addr::new(10, data[1], data[2], data[3])),
        1 => IpAddr::V4(Ipv4Addr::new(data[1], data[2], data[3], data[4])),
        2 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&data[1..17]).unwrap())),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let text = String::from_utf8_lossy(&data[17..]);
    let values: Vec<&str> = text.split('\n').collect();
    let nets = trusted();
    let is_trusted = |ip: &IpAddr| nets.iter().any(|n| n.contains(ip));
    let got = resolve(Some(peer), values.iter().copied(), &nets).expect("a peer gives a client");
    assert!(resolve(None, values.iter().copied(), &nets).is_none());
    if !is_trusted(&peer) {
        assert_eq!(
            got, peer,
            "an untrusted peer's X-Forwarded-For was honoured"
        );
        return;
    }
    if got == peer {
        return;
    }
    // The chosen hop: every hop to its right parses and is a trusted proxy.
    let hops: Vec<&str> = values.iter().flat_map(|v| v.split(',')).collect();
    let parse = |h: &str| {
        let h = h.trim();
        if h.is_empty() || h.len() > 64 {
            return None;
        }
        h.parse::<IpAddr>()
            .ok()
            .or_else(|| h.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
    };
    let pos = hops
        .iter()
        .rposition(|h| parse(h) == Some(got))
        .expect("the client is one of the hops");
    for h in &hops[pos + 1..] {
        let ip = parse(h).expect("a garbled hop right of the client");
        assert!(
            is_trusted(&ip),
            "untrusted hop {ip} right of the client {got}"
        );
    }
});
