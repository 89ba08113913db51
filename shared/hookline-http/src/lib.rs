//! The outbound HTTP client for webhook deliveries, shared by local mode and the
//! sender Lambda.
//!
//! Every attempt is bounded: one deadline covers connect, send and the response read,
//! and at most [`MAX_RESPONSE_READ`] bytes of a response are read. Redirects are never
//! followed. Unless private targets are allowed, every address a name resolves to is
//! vetted before connecting, and IP-literal targets are vetted too, so a name that
//! re-resolves to an internal address after the webhook was created is still refused.

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use hookline_domain::ports::{FailureKind, HttpClient, HttpOutcome, OutboundRequest};
use hookline_domain::webhook::{EndpointPolicy, HttpMethod};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::error::Error as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most response bytes read; the rest is left unread (4 KiB of it is stored).
pub const MAX_RESPONSE_READ: usize = 64 * 1024;
/// Idle keep-alive connections kept per host, so steady traffic reuses connections.
const POOL_IDLE_PER_HOST: usize = 32;
/// How long an idle connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Resolves names and drops every address the policy does not permit; fails if none
/// is left. reqwest connects only to the addresses returned here, so a name that
/// resolves differently at connection time (DNS rebinding) is vetted again.
#[derive(Debug, Clone)]
struct VettingResolver {
    policy: Arc<EndpointPolicy>,
}

impl Resolve for VettingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = addrs.iter().copied().filter(|a| policy.permits(a.ip())).collect();
            if public.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves only to private or internal addresses; refused").into();
                return Err(err);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// Sends deliveries with reqwest (rustls, connection pool per host).
#[derive(Clone)]
pub struct ReqwestHttpClient {
    client: reqwest::Client,
    policy: Arc<EndpointPolicy>,
}

impl ReqwestHttpClient {
    /// A client that connects only to targets `policy` permits.
    pub fn new(policy: &EndpointPolicy) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy.clone());
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            .no_proxy();
        if !policy.allow_private {
            b = b.dns_resolver(Arc::new(VettingResolver { policy: policy.clone() }));
        }
        Ok(ReqwestHttpClient { client: b.build()?, policy })
    }
}

fn classify(e: &reqwest::Error) -> (FailureKind, String) {
    let mut chain = String::new();
    let mut src: Option<&dyn std::error::Error> = e.source();
    while let Some(s) = src {
        if !chain.is_empty() {
            chain.push_str(": ");
        }
        chain.push_str(&s.to_string());
        src = s.source();
    }
    let text = if chain.is_empty() { e.to_string() } else { chain };
    let lower = text.to_ascii_lowercase();
    let kind = if e.is_timeout() {
        FailureKind::Timeout
    } else if lower.contains("refused;") || lower.contains("private or internal") {
        FailureKind::Refused
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") || lower.contains("invalidcontenttype")
    {
        FailureKind::Tls
    } else if e.is_connect() {
        FailureKind::Connect
    } else {
        FailureKind::Protocol
    };
    (kind, text.chars().take(300).collect())
}

async fn exchange(client: &reqwest::Client, req: OutboundRequest) -> Result<(u16, Option<String>, Bytes), reqwest::Error> {
    let method = match req.method {
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Patch => reqwest::Method::PATCH,
    };
    let mut rb = client.request(method, req.url).timeout(req.timeout).body(req.body);
    for (k, v) in &req.headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    let mut resp = rb.send().await?;
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut body = BytesMut::new();
    while body.len() < MAX_RESPONSE_READ {
        match resp.chunk().await? {
            Some(chunk) => {
                let room = MAX_RESPONSE_READ - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            None => break,
        }
    }
    Ok((status, retry_after, body.freeze()))
}

#[async_trait]
impl HttpClient for ReqwestHttpClient {
    async fn vet_target(&self, url: &url::Url) -> Result<(), String> {
        if self.policy.allow_private {
            return Ok(());
        }
        let Some(url::Host::Domain(host)) = url.host() else { return Ok(()) };
        // A name that does not resolve (yet) is accepted: DNS may be set up after the
        // webhook; the connection-time check still applies to every attempt.
        let Ok(addrs) = tokio::net::lookup_host((host, url.port_or_known_default().unwrap_or(443))).await else { return Ok(()) };
        match addrs.map(|a| a.ip()).find(|ip| !self.policy.permits(*ip)) {
            Some(ip) => Err(format!("{host} resolves to {ip}")),
            None => Ok(()),
        }
    }

    async fn post(&self, req: OutboundRequest) -> HttpOutcome {
        let start = Instant::now();
        if !self.policy.allow_private {
            let literal = match req.url.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if let Some(ip) = literal.filter(|ip| !self.policy.permits(*ip)) {
                return HttpOutcome::Failed {
                    kind: FailureKind::Refused,
                    message: format!("{ip} is a private or internal address"),
                    elapsed: start.elapsed(),
                };
            }
        }
        let timeout = req.timeout;
        // reqwest's own timeout covers the exchange; this outer bound also covers a
        // receiver trickling the body.
        match tokio::time::timeout(timeout, exchange(&self.client, req)).await {
            Ok(Ok((status, retry_after, body))) => HttpOutcome::Response { status, retry_after, body, elapsed: start.elapsed() },
            Ok(Err(e)) => {
                let (kind, message) = classify(&e);
                HttpOutcome::Failed { kind, message, elapsed: start.elapsed() }
            }
            Err(_) => HttpOutcome::Failed {
                kind: FailureKind::Timeout,
                message: format!("no complete response within {} ms", timeout.as_millis()),
                elapsed: start.elapsed(),
            },
        }
    }
}
