//! Which addresses a strategy may not connect to unless its operator listed them as such:
//! everything that is not the public internet. A listed *hostname* is resolved by the host and
//! every address it resolves to is checked here, so whoever controls that name's DNS cannot
//! point it at the server's own machine or network (DNS rebinding).
//!
//! IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-translated
//! `::ffff:0:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are
//! judged by the IPv4 address inside; Teredo (`2001::/32`) and local-use NAT64
//! (`64:ff9b:1::/48`) hide theirs and are refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The address to connect to among those a listed name resolved to: the first, unless one of
/// them is not the public internet and the operator did not allow it (`explicit`: the origin
/// was listed as that IP literal, or `allow_private_networks`). A name that resolves to a
/// private address *as well as* public ones is refused outright: its DNS is either
/// misconfigured or pointed inwards on purpose, and the next resolution may pick the other one.
pub fn pick(resolved: &[SocketAddr], explicit: bool) -> Option<SocketAddr> {
    if !explicit && resolved.iter().any(|a| restricted(a.ip()).is_some()) {
        return None;
    }
    resolved.first().copied()
}

/// Why an address is not the public internet, if it is not.
pub fn restricted(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => restricted_v6(v6),
    }
}

fn restricted_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, _, _] = ip.octets();
    Some(match () {
        _ if ip.is_unspecified() || a == 0 => "unspecified (0.0.0.0/8)",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local (169.254.0.0/16, cloud metadata)",
        _ if a == 100 && (64..128).contains(&b) => "shared address space (100.64.0.0/10)",
        _ if a == 192 && b == 0 && ip.octets()[2] == 0 => "IETF protocol assignments (192.0.0.0/24)",
        _ if a == 198 && (b == 18 || b == 19) => "benchmarking (198.18.0.0/15)",
        _ if a == 192 && b == 88 && ip.octets()[2] == 99 => "6to4 relay anycast (192.88.99.0/24)",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_broadcast() || a >= 240 => "reserved (240.0.0.0/4)",
        _ if ip.is_documentation() => "documentation",
        _ => return None,
    })
}

fn restricted_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // Refused whatever it embeds: where its IPv4 address sits depends on the local prefix.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return Some("local-use NAT64 (64:ff9b:1::/48)");
    }
    if let Some(v4) = embedded_v4(ip) {
        return restricted_v4(v4);
    }
    Some(match () {
        _ if ip.is_unspecified() => "unspecified (::)",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_multicast() => "multicast",
        _ if s[0] & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        _ if s[0] & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        _ if s[0] & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        _ if s[0] == 0x2001 && s[1] == 0 => "Teredo (2001::/32)",
        _ if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 => "local-use NAT64 (64:ff9b:1::/48)",
        _ if s[0] == 0x2001 && s[1] == 0xdb8 => "documentation (2001:db8::/32)",
        _ if s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0 => "discard-only (100::/64)",
        _ => return None,
    })
}

/// The IPv4 address an IPv6 address stands for, in the forms that carry one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // IPv4-mapped, IPv4-translated, IPv4-compatible (not :: and ::1, v6's own).
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low),
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(low),
        // NAT64, well-known and local-use prefixes.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        // 6to4: 2002:AABB:CCDD::/48.
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{pick, restricted};

    #[test]
    fn one_inward_address_refuses_the_name() {
        let addrs = |list: &[&str]| list.iter().map(|a| a.parse().unwrap()).collect::<Vec<std::net::SocketAddr>>();
        let public = addrs(&["8.8.8.8:443", "[2606:4700:4700::1111]:443"]);
        assert_eq!(pick(&public, false), Some(public[0]));
        for mixed in [addrs(&["8.8.8.8:443", "127.0.0.1:443"]), addrs(&["10.0.0.1:443", "8.8.8.8:443"])] {
            assert_eq!(pick(&mixed, false), None, "{mixed:?}");
            assert_eq!(pick(&mixed, true), Some(mixed[0]), "allowed: {mixed:?}");
        }
        assert_eq!(pick(&addrs(&["[::ffff:127.0.0.1]:80"]), false), None);
        assert_eq!(pick(&[], true), None);
    }

    #[test]
    fn what_is_not_the_public_internet() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "192.0.0.170",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "fe80::1",
            "fec0::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a00:1",
            "64:ff9b:1:0:8::808:808",
            "::ffff:0:7f00:1",
            "192.88.99.1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
        ] {
            assert!(restricted(ip.parse().unwrap()).is_some(), "{ip} passed as public");
        }
    }

    #[test]
    fn the_public_internet() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "193.0.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4007:80e::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(restricted(ip.parse().unwrap()), None, "{ip} refused");
        }
    }
}
