//! Contract of the analytics store: counters added in place per webhook and hour, read
//! back by a range of hours.

use super::tenant;
use hookline_domain::ids::WebhookId;
use hookline_domain::ports::AnalyticsStore;
use hookline_domain::time::Timestamp;
use std::collections::BTreeMap;

fn counters(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn bucket(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    counters(pairs).into_iter().collect()
}

/// The analytics store contract.
pub async fn analytics_store(s: &dyn AnalyticsStore) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let (wa, wb) = (WebhookId::generate(), WebhookId::generate());
    // 2026-11-23T10:00:00Z and the hours around it.
    let hour = |n: i64| -> Timestamp { hookline_domain::time::from_micros(1_795_428_000_000_000) + chrono::Duration::hours(n) };
    assert!(s.read(&acme, &wa, hour(-48), hour(48)).await.expect("read").is_empty(), "nothing is counted at first");

    s.add(&acme, &wa, hour(0), &counters(&[("a_2xx", 1), ("l_20", 1), ("m05_a", 1), ("m05_ok", 1)])).await.expect("add");
    s.add(&acme, &wa, hour(0), &counters(&[("a_2xx", 2), ("a_5xx", 1)])).await.expect("add");
    s.add(&acme, &wa, hour(-1), &counters(&[("d_ok", 3)])).await.expect("add");
    s.add(&acme, &wa, hour(2), &counters(&[("a_2xx", 7)])).await.expect("add");
    s.add(&acme, &wa, hour(0), &[]).await.expect("adding nothing is allowed");
    s.add(&acme, &wb, hour(0), &counters(&[("a_2xx", 100)])).await.expect("another webhook");
    s.add(&globex, &wa, hour(0), &counters(&[("a_2xx", 1000)])).await.expect("another tenant, the same webhook id");

    let read = s.read(&acme, &wa, hour(-1), hour(2)).await.expect("read");
    assert_eq!(
        read,
        vec![
            (hour(-1), bucket(&[("d_ok", 3)])),
            (hour(0), bucket(&[("a_2xx", 3), ("a_5xx", 1), ("l_20", 1), ("m05_a", 1), ("m05_ok", 1)]))
        ],
        "buckets of [from, to), oldest first, each counter the sum of what was added"
    );
    let edge = s.read(&acme, &wa, hour(2), hour(2) + chrono::Duration::microseconds(1)).await.expect("read");
    assert_eq!(edge, vec![(hour(2), bucket(&[("a_2xx", 7)]))], "from is included");
    assert!(s.read(&acme, &wa, hour(1), hour(2)).await.expect("read").is_empty(), "to is not");
    assert_eq!(s.read(&acme, &wb, hour(0), hour(1)).await.expect("read"), vec![(hour(0), bucket(&[("a_2xx", 100)]))]);
    assert_eq!(s.read(&globex, &wa, hour(0), hour(1)).await.expect("read"), vec![(hour(0), bucket(&[("a_2xx", 1000)]))]);
    assert!(s.read(&globex, &wb, hour(-48), hour(48)).await.expect("read").is_empty(), "tenants do not share counters");

    // Adding is atomic per counter: adds racing on one bucket all count.
    let racing = counters(&[("a_timeout", 1), ("l_54", 2)]);
    let add = || s.add(&acme, &wa, hour(5), &racing);
    let done = tokio::join!(add(), add(), add(), add(), add(), add(), add(), add());
    for r in [done.0, done.1, done.2, done.3, done.4, done.5, done.6, done.7] {
        r.expect("concurrent add");
    }
    s.add(&acme, &wa, hour(5), &counters(&[("d_fail", 5_000_000_000)])).await.expect("a large amount");
    let raced = s.read(&acme, &wa, hour(5), hour(6)).await.expect("read");
    assert_eq!(raced, vec![(hour(5), bucket(&[("a_timeout", 8), ("d_fail", 5_000_000_000), ("l_54", 16)]))]);
}
