//! `is_public_ip` against the IANA special-purpose address registries, row by row
//! (address block and its "Globally Reachable" column, as of 2026), checked at each
//! block's first and last address.

use super::*;

/// (block, globally reachable, an address inside to check instead of the block's
/// ends, for blocks judged by the IPv4 address they carry).
const IPV4_REGISTRY: &[(&str, bool)] = &[
    ("0.0.0.0/8", false),
    ("0.0.0.0/32", false),
    ("10.0.0.0/8", false),
    ("100.64.0.0/10", false),
    ("127.0.0.0/8", false),
    ("169.254.0.0/16", false),
    ("172.16.0.0/12", false),
    ("192.0.0.0/24", false),
    ("192.0.0.0/29", false),
    ("192.0.0.8/32", false),
    ("192.0.0.9/32", true),
    ("192.0.0.10/32", true),
    ("192.0.0.170/32", false),
    ("192.0.0.171/32", false),
    ("192.0.2.0/24", false),
    ("192.31.196.0/24", true),
    ("192.52.193.0/24", true),
    ("192.168.0.0/16", false),
    ("192.175.48.0/24", true),
    ("198.18.0.0/15", false),
    ("198.51.100.0/24", false),
    ("203.0.113.0/24", false),
    ("240.0.0.0/4", false),
    ("255.255.255.255/32", false),
];

const IPV6_REGISTRY: &[(&str, bool)] = &[
    ("::1/128", false),
    ("::/128", false),
    ("::ffff:0:0/96", false),
    ("64:ff9b:1::/48", false),
    ("100::/64", false),
    ("100:0:0:1::/64", false),
    ("2001::/23", false),
    ("2001:1::1/128", true),
    ("2001:1::2/128", true),
    ("2001:1::3/128", true),
    ("2001:2::/48", false),
    ("2001:3::/32", true),
    ("2001:4:112::/48", true),
    ("2001:20::/28", true),
    ("2001:30::/28", true),
    ("2001:db8::/32", false),
    ("2620:4f:8000::/48", true),
    ("3fff::/20", false),
    ("5f00::/16", false),
    ("fc00::/7", false),
    ("fe80::/10", false),
];

fn ends(block: &str) -> (IpAddr, IpAddr) {
    let (addr, len) = block.split_once('/').expect("block");
    let len: u32 = len.parse().expect("length");
    match addr.parse::<IpAddr>().expect("address") {
        IpAddr::V4(a) => {
            let host = if len == 32 { 0 } else { u32::MAX >> len };
            let first = u32::from(a) & !host;
            (IpAddr::V4(first.into()), IpAddr::V4((first | host).into()))
        }
        IpAddr::V6(a) => {
            let host = if len == 128 { 0 } else { u128::MAX >> len };
            let first = u128::from(a) & !host;
            (IpAddr::V6(first.into()), IpAddr::V6((first | host).into()))
        }
    }
}

#[test]
fn every_block_of_the_special_purpose_registries_is_judged_as_the_registry_says() {
    for (block, global) in IPV4_REGISTRY.iter().chain(IPV6_REGISTRY) {
        let (first, last) = ends(block);
        for ip in [first, last] {
            assert_eq!(is_public_ip(ip), *global, "{ip} in {block}: globally reachable {global}");
        }
    }
}

#[test]
fn ordinary_global_addresses_are_accepted() {
    for ip in ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "192.0.1.1", "198.20.0.1"] {
        assert!(is_public_ip(ip.parse().expect("ip")), "{ip}");
    }
}

#[test]
fn an_ipv6_address_carrying_an_ipv4_address_is_judged_by_it_or_refused() {
    // Judged by the IPv4 address: mapped, NAT64's well-known prefix (globally
    // reachable in the registry), 6to4.
    for (ip, public) in [
        ("::ffff:8.8.8.8", true),
        ("::ffff:10.0.0.1", false),
        ("64:ff9b::808:808", true),
        ("64:ff9b::7f00:1", false),
        ("64:ff9b::a9fe:a9fe", false),
        ("2002:808:808::", true),
        ("2002:c0a8:101::1", false),
        // Never global: IPv4-compatible and IPv4-translated (RFC 2765), whatever they carry.
        ("::8.8.8.8", false),
        ("::127.0.0.1", false),
        ("::ffff:0:8.8.8.8", false),
        ("::ffff:0:127.0.0.1", false),
        // Outside 2000::/3: not allocated for global unicast.
        ("1000::1", false),
        ("4000::1", false),
        ("ff02::1", false),
    ] {
        assert_eq!(is_public_ip(ip.parse().expect("ip")), public, "{ip}");
    }
}
