//! What the sandbox may reach through cordon's proxy (`--net allow`): the merged allow and
//! deny lists, host pins, and which addresses are not public destinations.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::domains::DomainPattern;

/// The egress part of the effective policy. Used only in `Network::Allow`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Egress {
    /// Destinations the proxy lets through (anything unlisted is refused).
    pub allow: Vec<DomainPattern>,
    /// Destinations refused even when an allow entry matches (deny beats allow).
    pub deny: Vec<DomainPattern>,
    /// Whether an allowed name may resolve to an address `local_class` names.
    pub allow_local_destinations: bool,
    /// Names the proxy's resolver answers itself, like `curl --resolve`: lowercase, no
    /// trailing dot, each name once.
    pub hosts: Vec<(String, IpAddr)>,
    /// `network.unlisted = "ask"`: a name off the allow-list is held while a human is asked,
    /// instead of being refused at once (deny rules and local destinations still refuse).
    pub ask_unlisted: bool,
}

impl Egress {
    /// The address a name is pinned to, if any (`name` as a client sent it).
    pub fn pinned(&self, name: &str) -> Option<IpAddr> {
        let name = normalise_name(name);
        self.hosts.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    }

    /// Adds pins of a higher layer: a name pinned again takes the new address.
    pub(crate) fn pin_all(&mut self, pins: &[(String, IpAddr)]) {
        for (name, addr) in pins {
            match self.hosts.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = *addr,
                None => self.hosts.push((name.clone(), *addr)),
            }
        }
    }
}

/// Lowercase, without a trailing dot: the form `hosts` keys are kept in.
fn normalise_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// IPv4 ranges that are not public destinations, most precise first (the first match names
/// the address).
const V4_CLASSES: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(169, 254, 169, 254), 32, "cloud metadata"),
    (Ipv4Addr::new(0, 0, 0, 0), 32, "unspecified"),
    (Ipv4Addr::new(255, 255, 255, 255), 32, "broadcast"),
    (Ipv4Addr::new(0, 0, 0, 0), 8, "this network"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "cgnat"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved"),
];

/// IPv6 ranges that are not public destinations, most precise first.
const V6_CLASSES: &[(Ipv6Addr, u8, &str)] = &[
    (
        Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
        128,
        "cloud metadata",
    ),
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified"),
    (Ipv6Addr::LOCALHOST, 128, "loopback"),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "unique-local",
    ),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

/// Why `ip` is not a public destination ("loopback", "private", "link-local",
/// "cloud metadata", "cgnat", "unique-local", "unspecified", "this network", "multicast",
/// "broadcast", "reserved", "benchmarking"), or `None` for a public address. An IPv6 address
/// that embeds an IPv4 one (IPv4-mapped, IPv4-compatible, NAT64 `64:ff9b::/96`, 6to4
/// `2002::/16`) is judged by the IPv4 address, since that is where a packet to it ends up.
pub fn local_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => {
            let own = v6_class(v6);
            if own.is_some() {
                return own;
            }
            embedded_v4(v6).and_then(v4_class)
        }
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    V4_CLASSES
        .iter()
        .find(|(net, len, _)| prefix_matches_u32(bits, u32::from(*net), *len))
        .map(|(_, _, name)| *name)
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    V6_CLASSES
        .iter()
        .find(|(net, len, _)| prefix_matches_u128(bits, u128::from(*net), *len))
        .map(|(_, _, name)| *name)
}

fn prefix_matches_u32(bits: u32, net: u32, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    bits & mask == net & mask
}

fn prefix_matches_u128(bits: u128, net: u128, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    bits & mask == net & mask
}

/// The IPv4 address an IPv6 address carries, for the forms that deliver to it.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let low = v4(s[6], s[7]);
    match s {
        // IPv4-mapped ::ffff:a.b.c.d
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        // IPv4-compatible ::a.b.c.d (:: and ::1 are named as IPv6 before this)
        [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        // NAT64 well-known prefix 64:ff9b::/96
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        // 6to4 2002:AABB:CCDD::/48
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<&'static str> {
        local_class(s.parse().unwrap())
    }

    #[test]
    fn every_class_by_table() {
        let table: &[(&str, &str)] = &[
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("::1", "loopback"),
            ("10.0.0.5", "private"),
            ("10.255.255.255", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.0.1", "link-local"),
            ("169.254.169.253", "link-local"),
            ("fe80::1", "link-local"),
            ("febf:ffff::1", "link-local"),
            ("169.254.169.254", "cloud metadata"),
            ("fd00:ec2::254", "cloud metadata"),
            ("100.64.0.1", "cgnat"),
            ("100.127.255.255", "cgnat"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fd00:ec2::253", "unique-local"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("0.1.2.3", "this network"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.254", "reserved"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
        ];
        for (addr, want) in table {
            assert_eq!(class(addr), Some(*want), "{addr}");
        }
    }

    #[test]
    fn neighbours_of_the_ranges_are_public() {
        for addr in [
            "1.1.1.1",
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "11.0.0.0",
            "9.255.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "169.253.255.255",
            "100.63.255.255",
            "100.128.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "1.0.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "fec0::1",
            "fe00::1",
            "fbff::1",
        ] {
            assert_eq!(class(addr), None, "{addr}");
        }
    }

    #[test]
    fn embedded_ipv4_is_judged_by_the_ipv4_address() {
        let table: &[(&str, Option<&str>)] = &[
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:10.1.2.3", Some("private")),
            ("::ffff:169.254.169.254", Some("cloud metadata")),
            ("::ffff:1.1.1.1", None),
            ("::127.0.0.1", Some("loopback")),
            ("::192.168.0.1", Some("private")),
            ("::0.0.0.2", Some("this network")),
            ("::8.8.8.8", None),
            ("64:ff9b::7f00:1", Some("loopback")),
            ("64:ff9b::a9fe:a9fe", Some("cloud metadata")),
            ("64:ff9b::100.64.0.1", Some("cgnat")),
            ("64:ff9b::1.1.1.1", None),
            ("2002:7f00:1::", Some("loopback")),
            ("2002:c0a8:101::1", Some("private")),
            ("2002:a9fe:a9fe:1234::5", Some("cloud metadata")),
            ("2002:0101:0101::1", None),
        ];
        for (addr, want) in table {
            assert_eq!(class(addr), *want, "{addr}");
        }
    }

    #[test]
    fn later_pins_replace_earlier_ones() {
        let mut e = Egress::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "::1".parse().unwrap();
        e.pin_all(&[("mirror.test".into(), a), ("other.test".into(), a)]);
        e.pin_all(&[("mirror.test".into(), b)]);
        assert_eq!(
            e.hosts,
            vec![("mirror.test".into(), b), ("other.test".into(), a)]
        );
        assert_eq!(e.pinned("Mirror.TEST."), Some(b));
        assert_eq!(e.pinned("nope.test"), None);
    }
}
