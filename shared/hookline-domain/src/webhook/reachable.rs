//! Which IP addresses are globally reachable, and so may receive deliveries: what the
//! IANA IPv4 and IPv6 Special-Purpose Address Registries mark "Globally Reachable:
//! False" is refused, with the registries' own exceptions, and so are multicast,
//! broadcast and (for IPv6) everything outside the global unicast space `2000::/3`.
//! An IPv6 address that carries an IPv4 address (IPv4-mapped, 6to4, the NAT64 prefix)
//! is judged by that IPv4 address; the IPv4-compatible and IPv4-translated forms,
//! which nothing global uses, are refused outright.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 ranges not globally reachable: the registry's, then multicast (224.0.0.0/4,
/// not in the special-purpose registry but never a unicast receiver).
const V4_NOT_GLOBAL: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),       // "this network" (RFC 791)
    ([10, 0, 0, 0], 8),      // private use (RFC 1918)
    ([100, 64, 0, 0], 10),   // shared address space (RFC 6598)
    ([127, 0, 0, 0], 8),     // loopback (RFC 1122)
    ([169, 254, 0, 0], 16),  // link local (RFC 3927)
    ([172, 16, 0, 0], 12),   // private use (RFC 1918)
    ([192, 0, 0, 0], 24),    // IETF protocol assignments (RFC 6890), exceptions below
    ([192, 0, 2, 0], 24),    // documentation TEST-NET-1 (RFC 5737)
    ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast (RFC 7526)
    ([192, 168, 0, 0], 16),  // private use (RFC 1918)
    ([198, 18, 0, 0], 15),   // benchmarking (RFC 2544)
    ([198, 51, 100, 0], 24), // documentation TEST-NET-2 (RFC 5737)
    ([203, 0, 113, 0], 24),  // documentation TEST-NET-3 (RFC 5737)
    ([224, 0, 0, 0], 4),     // multicast (RFC 5771)
    ([240, 0, 0, 0], 4),     // reserved (RFC 1112), and the limited broadcast address
];

/// Inside [`V4_NOT_GLOBAL`] but globally reachable, as the registry says.
const V4_GLOBAL: &[([u8; 4], u8)] = &[
    ([192, 0, 0, 9], 32),  // Port Control Protocol anycast (RFC 7723)
    ([192, 0, 0, 10], 32), // TURN relay anycast (RFC 8155)
];

/// IPv6 ranges not globally reachable inside `2000::/3` or beside it, the registry's
/// and the deprecated site-local range.
const V6_NOT_GLOBAL: &[([u16; 8], u8)] = &[
    ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),  // local-use IPv4/IPv6 translation (RFC 8215)
    ([0x100, 0, 0, 0, 0, 0, 0, 0], 64),      // discard-only (RFC 6666)
    ([0x100, 0, 0, 1, 0, 0, 0, 0], 64),      // dummy IPv6 prefix (RFC 9780)
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),     // IETF protocol assignments (RFC 2928), exceptions below
    ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation (RFC 3849)
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),     // documentation (RFC 9637)
    ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),     // segment routing SIDs (RFC 9602)
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),      // unique local (RFC 4193), fd00:ec2::254 included
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),     // link-local unicast (RFC 4291)
    ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),     // site-local, deprecated (RFC 3879)
    ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),      // multicast (RFC 4291)
];

/// Inside [`V6_NOT_GLOBAL`] but globally reachable, as the registry says.
const V6_GLOBAL: &[([u16; 8], u8)] = &[
    ([0x2001, 1, 0, 0, 0, 0, 0, 1], 128),    // Port Control Protocol anycast (RFC 7723)
    ([0x2001, 1, 0, 0, 0, 0, 0, 2], 128),    // TURN relay anycast (RFC 8155)
    ([0x2001, 1, 0, 0, 0, 0, 0, 3], 128),    // DNS-SD service registration anycast (RFC 9665)
    ([0x2001, 3, 0, 0, 0, 0, 0, 0], 32),     // AMT (RFC 7450)
    ([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48), // AS112-v6 (RFC 7535)
    ([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28),  // ORCHIDv2 (RFC 7343)
    ([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28),  // drone remote ID (RFC 9374)
];

fn in_v4(ip: Ipv4Addr, ranges: &[([u8; 4], u8)]) -> bool {
    let ip = u32::from(ip);
    ranges.iter().any(|(net, len)| {
        let mask = if *len == 0 { 0 } else { u32::MAX << (32 - u32::from(*len)) };
        ip & mask == u32::from(Ipv4Addr::from(*net)) & mask
    })
}

fn in_v6(ip: Ipv6Addr, ranges: &[([u16; 8], u8)]) -> bool {
    let ip = u128::from(ip);
    ranges.iter().any(|(net, len)| {
        let mask = if *len == 0 { 0 } else { u128::MAX << (128 - u32::from(*len)) };
        ip & mask == u128::from(Ipv6Addr::from(*net)) & mask
    })
}

/// The IPv4 address an IPv6 address carries, where it is one of the forms judged by
/// it: IPv4-mapped (`::ffff:0:0/96`), the NAT64 well-known prefix (`64:ff9b::/96`)
/// and 6to4 (`2002::/16`).
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..5].iter().all(|&x| x == 0) && s[5] == 0xffff {
        return Some(v4(s[6], s[7]));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0) {
        return Some(v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(v4(s[1], s[2]));
    }
    None
}

/// Whether deliveries may go to `ip` by default: it is globally reachable.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !in_v4(v4, V4_NOT_GLOBAL) || in_v4(v4, V4_GLOBAL),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_public_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // IPv4-compatible (::/96, which holds :: and ::1 too) and IPv4-translated
            // (::ffff:0:0:0/96, RFC 2765): deprecated, never global.
            if s[..6].iter().all(|&x| x == 0) || (s[..4].iter().all(|&x| x == 0) && s[4] == 0xffff && s[5] == 0) {
                return false;
            }
            // Only 2000::/3 is global unicast space.
            (s[0] & 0xe000) == 0x2000 && (!in_v6(v6, V6_NOT_GLOBAL) || in_v6(v6, V6_GLOBAL))
        }
    }
}

#[cfg(test)]
mod tests;
