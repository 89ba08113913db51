//! The connection-time SSRF guard of the outbound client: every address a target
//! resolves to is vetted when dialling, not only when the webhook was created.

use hookline_domain::ports::{FailureKind, HttpClient, HttpOutcome, OutboundRequest};
use hookline_domain::webhook::{Cidr, EndpointPolicy};
use hookline_http::ReqwestHttpClient;
use std::time::Duration;
use tests::receiver::Receiver;

fn request(url: &str) -> OutboundRequest {
    OutboundRequest {
        method: Default::default(),
        url: url.parse().expect("url"),
        headers: vec![],
        body: "{}".into(),
        timeout: Duration::from_secs(2),
    }
}

fn port(rx: &Receiver) -> u16 {
    rx.url("").rsplit(':').next().expect("port").parse().expect("port")
}

#[tokio::test]
async fn a_strict_client_refuses_loopback_by_name_and_by_address_at_dial_time() {
    let rx = Receiver::start().await;
    let strict = ReqwestHttpClient::new(&EndpointPolicy::default()).expect("client");
    let p = port(&rx);
    for url in [
        format!("http://localhost:{p}/x"),
        format!("http://127.0.0.1:{p}/x"),
        format!("http://[::ffff:127.0.0.1]:{p}/x"),
        format!("http://[::ffff:0:127.0.0.1]:{p}/x"),
        format!("http://[64:ff9b::127.0.0.1]:{p}/x"),
        format!("http://127.1:{p}/x"),
    ] {
        match strict.post(request(&url)).await {
            HttpOutcome::Failed { kind: FailureKind::Refused, .. } => {}
            other => panic!("{url} was not refused: {other:?}"),
        }
    }
    assert!(rx.received().is_empty(), "nothing reached the loopback receiver");
}

#[tokio::test]
async fn an_allowed_cidr_opens_exactly_that_range() {
    let rx = Receiver::start().await;
    let policy = EndpointPolicy { allow_private: false, allowed_cidrs: vec![Cidr::parse("127.0.0.0/8").expect("cidr")] };
    let client = ReqwestHttpClient::new(&policy).expect("client");
    let p = port(&rx);
    for url in [format!("http://127.0.0.1:{p}/in"), format!("http://localhost:{p}/in")] {
        match client.post(request(&url)).await {
            HttpOutcome::Response { status: 200, .. } => {}
            other => panic!("{url} should be allowed: {other:?}"),
        }
    }
    assert_eq!(rx.received_on("/in").len(), 2);
}

#[tokio::test]
async fn names_resolving_to_internal_addresses_are_refused_when_a_webhook_is_saved() {
    let strict = ReqwestHttpClient::new(&EndpointPolicy::default()).expect("client");
    assert!(strict.vet_target(&"https://localhost/".parse().expect("url")).await.is_err());
    // A name that does not resolve (yet) is accepted; the dial-time check still applies.
    assert!(strict.vet_target(&"https://hooks.invalid/".parse().expect("url")).await.is_ok());
    let lax = ReqwestHttpClient::new(&EndpointPolicy::private_allowed()).expect("client");
    assert!(lax.vet_target(&"https://localhost/".parse().expect("url")).await.is_ok());
}
