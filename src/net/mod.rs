//! Addresses: the client's (the direct peer, or, when the peer is a trusted proxy, the
//! rightmost untrusted hop of `X-Forwarded-For`), and the upstreams' ([`resolve`]).

use std::net::IpAddr;

use ipnet::IpNet;

pub mod resolve;

/// Whether `ip` lies in one of the trusted proxy ranges.
pub fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = canonical(ip);
    trusted.iter().any(|net| net.contains(&ip))
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The client address for rate limits and logs. `xff` values are only consulted when `peer`
/// is trusted; they are walked right to left, skipping trusted hops, and the first untrusted
/// (or unparsable: then the hop after it) address is the client.
pub fn client_ip<'a>(
    peer: IpAddr,
    xff: impl Iterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let hops: Vec<&str> = xff.flat_map(|v| v.split(',')).map(str::trim).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) => {
                client = canonical(ip);
                if !is_trusted(client, trusted) {
                    return client;
                }
            }
            None => return client,
        }
    }
    client
}

/// An `X-Forwarded-For` element: an address, possibly with a port or in brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(sock) = hop.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().expect("cidr")).collect()
    }

    #[test]
    fn client_ip_table() {
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
        let cases: &[(&str, &[&str], &str)] = &[
            ("203.0.113.5", &["1.2.3.4"], "203.0.113.5"),
            ("127.0.0.1", &[], "127.0.0.1"),
            ("127.0.0.1", &["1.2.3.4"], "1.2.3.4"),
            ("127.0.0.1", &["6.6.6.6, 1.2.3.4"], "1.2.3.4"),
            ("127.0.0.1", &["6.6.6.6, 1.2.3.4, 10.0.0.7"], "1.2.3.4"),
            ("127.0.0.1", &["6.6.6.6", "1.2.3.4, 10.1.1.1"], "1.2.3.4"),
            ("127.0.0.1", &["garbage, 10.0.0.2"], "10.0.0.2"),
            ("127.0.0.1", &["10.0.0.3"], "10.0.0.3"),
            ("127.0.0.1", &["1.2.3.4:5678"], "1.2.3.4"),
            ("127.0.0.1", &["[2001:db8::1]"], "2001:db8::1"),
            ("::1", &["2001:db8::2"], "2001:db8::2"),
            ("::ffff:127.0.0.1", &["1.2.3.4"], "1.2.3.4"),
        ];
        for (peer, xff, want) in cases {
            let got = client_ip(peer.parse().expect("peer"), xff.iter().copied(), &trusted);
            assert_eq!(got.to_string(), *want, "peer {peer} xff {xff:?}");
        }
    }
}
