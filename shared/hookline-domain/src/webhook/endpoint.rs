//! Endpoint URLs and which of them Hookline may deliver to: absolute https URLs
//! without credentials that name no loopback, private or otherwise internal target,
//! in any spelling, unless the [`EndpointPolicy`] allows it.

use super::WebhookError;
use super::reachable::is_public_ip;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;
use url::{Host, Url};

/// Longest accepted `endpoint_url`, in bytes (browsers and proxies agree on ~2 KiB).
pub const MAX_URL_LEN: usize = 2048;

/// Which endpoint URLs are acceptable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// Accept plain `http://` and loopback/private targets (local development and tests only).
    pub allow_private: bool,
    /// Non-public ranges that are accepted anyway, for operators whose receivers live
    /// in their own network (`HOOKLINE_ALLOWED_CIDRS`).
    pub allowed_cidrs: Vec<Cidr>,
}

impl EndpointPolicy {
    /// Everything allowed: plain http and private targets (local development and tests).
    pub fn private_allowed() -> Self {
        EndpointPolicy { allow_private: true, allowed_cidrs: Vec::new() }
    }

    /// Whether Hookline may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allow_private || is_public_ip(ip) || self.allowed_cidrs.iter().any(|c| c.contains(ip))
    }
}

/// An IP range such as `10.20.0.0/16` or `fd12:3456::/48`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `address/prefix` (a bare address is a single host).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = addr.parse().map_err(|_| format!("{s:?} is not an IP range like 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{s:?} has an invalid prefix length"))?
        };
        Ok(Cidr { addr: addr.to_canonical(), prefix })
    }

    /// Parses a comma-separated list; empty means none.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, String> {
        s.split(',').filter(|p| !p.trim().is_empty()).map(Cidr::parse).collect()
    }

    /// Whether `ip` is inside the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A webhook's target: an absolute http(s) URL that passed the [`EndpointPolicy`].
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointUrl(Url);

impl EndpointUrl {
    /// Parses and vets a URL against the policy.
    pub fn parse(s: &str, policy: &EndpointPolicy) -> Result<Self, WebhookError> {
        if s.len() > MAX_URL_LEN {
            return Err(WebhookError::UrlTooLong);
        }
        let url = Url::parse(s).map_err(|e| WebhookError::InvalidUrl(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_private => {}
            "http" => return Err(WebhookError::InsecureUrl),
            other => {
                return Err(WebhookError::InvalidUrl(format!("scheme {other:?} is not http(s)")));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(WebhookError::UrlWithCredentials);
        }
        let host = url.host().ok_or_else(|| WebhookError::InvalidUrl("no host".to_owned()))?;
        if !policy.allow_private {
            let internal = match &host {
                Host::Ipv4(ip) => !policy.permits(IpAddr::V4(*ip)),
                Host::Ipv6(ip) => !policy.permits(IpAddr::V6(*ip)),
                Host::Domain(d) => {
                    let d = d.trim_end_matches('.').to_ascii_lowercase();
                    d == "localhost" || d.ends_with(".localhost") || d.ends_with(".internal") || d.ends_with(".local")
                }
            };
            if internal {
                return Err(WebhookError::PrivateEndpoint(host.to_string()));
            }
        }
        Ok(EndpointUrl(url))
    }

    /// Reads back a URL an adapter stored (it passed [`EndpointUrl::parse`] when written).
    pub fn parse_stored(s: &str) -> Result<Self, WebhookError> {
        Url::parse(s).map(EndpointUrl).map_err(|e| WebhookError::InvalidUrl(e.to_string()))
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl fmt::Debug for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl Serialize for EndpointUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str, allow_private: bool) -> Result<EndpointUrl, WebhookError> {
        EndpointUrl::parse(url, &EndpointPolicy { allow_private, allowed_cidrs: Vec::new() })
    }

    #[test]
    fn internal_targets_are_refused_in_every_spelling() {
        for url in [
            "https://127.0.0.1/",
            "https://127.1/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0x7f000001/",
            "https://0177.0.0.1/",
            "https://127.0.0.1./",
            "https://localhost./",
            "https://LOCALHOST/",
            "https://api.localhost/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::ffff:0:127.0.0.1]/",
            "https://[64:ff9b:1::a00:1]/",
            "https://[fec0::1]/",
            "https://[2001:db8::1]/",
            "https://[3fff::1]/",
            "https://[100::1]/",
            "https://192.0.0.170/",
            "https://192.88.99.1/",
            "https://[::127.0.0.1]/",
            "https://[2002:7f00:1::]/",
            "https://[2002:a00:1::]/",
            "https://[64:ff9b::a00:1]/",
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://[fd00:ec2::254]/",
            "https://[fe80::1]/",
            "https://[fc00::1]/",
            "https://100.64.0.1/",
            "https://224.0.0.1/",
            "https://[ff02::1]/",
            "https://255.255.255.255/",
            "https://0.0.0.0/",
            "https://0/",
            "https://[::]/",
            "https://192.0.2.1/",
            "https://198.51.100.7/",
            "https://203.0.113.9/",
            "https://198.18.0.1/",
            "https://[2001:db8::1]/",
            "https://240.0.0.1/",
        ] {
            assert!(matches!(parse(url, false), Err(WebhookError::PrivateEndpoint(_))), "{url} must be refused");
        }
        assert_eq!(parse("https://good.example@127.0.0.1/", false).unwrap_err(), WebhookError::UrlWithCredentials);
        for url in ["https://93.184.215.14/", "https://[2606:4700::1111]/", "https://8.8.8.8/", "https://hooks.example.com/"] {
            assert!(parse(url, false).is_ok(), "{url} is public");
        }
    }

    #[test]
    fn allowed_cidrs_open_only_their_ranges() {
        let policy = EndpointPolicy { allow_private: false, allowed_cidrs: Cidr::parse_list("10.20.0.0/16, fd12::/16").unwrap() };
        let ok = |u: &str| EndpointUrl::parse(u, &policy).is_ok();
        assert!(ok("https://10.20.3.4/"));
        assert!(ok("https://[::ffff:10.20.3.4]/"));
        assert!(ok("https://[fd12::5]/"));
        assert!(!ok("https://10.21.0.1/"));
        assert!(!ok("https://127.0.0.1/"));
        assert!(!ok("http://10.20.3.4/"), "plain http still needs the private setting");
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nonsense").is_err());
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("1.2.3.4".parse().unwrap()));
        assert_eq!(Cidr::parse_list("").unwrap(), vec![]);
    }

    #[test]
    fn malformed_urls_are_refused() {
        assert!(matches!(parse("not a url", true), Err(WebhookError::InvalidUrl(_))));
        assert!(matches!(parse("ftp://x.example/", true), Err(WebhookError::InvalidUrl(_))));
        assert_eq!(parse("https://u:p@x.example/", true).unwrap_err(), WebhookError::UrlWithCredentials);
        assert_eq!(parse(&format!("https://x.example/{}", "a".repeat(MAX_URL_LEN)), true).unwrap_err(), WebhookError::UrlTooLong);
    }
}
