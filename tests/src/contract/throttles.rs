//! The rate limit state store's contract: atomic changes, none lost among racers.

use super::{now, tenant};
use hookline_domain::ids::WebhookId;
use hookline_domain::ports::ThrottleStore;
use hookline_domain::throttle::ThrottleState;
use hookline_domain::time::to_micros;

async fn read(s: &dyn ThrottleStore, tenant: &hookline_domain::ids::TenantId, w: &WebhookId) -> ThrottleState {
    let mut seen = ThrottleState::default();
    s.update(tenant, w, &mut |state| seen = state.clone()).await.expect("read");
    seen
}

/// The throttle store contract. `other` is a second adapter over the same storage (a
/// second process or container), or the same one.
pub async fn throttle_store(s: &dyn ThrottleStore, other: &dyn ThrottleStore) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let w = WebhookId::generate();
    assert_eq!(read(s, &acme, &w).await, ThrottleState::default(), "nothing stored: the default");
    let t = to_micros(&now());
    let first = ThrottleState { next_slot: Some(t), last_sent: Some(t - 200_000), in_flight: [("a".to_owned(), t + 30_000_000)].into() };
    s.update(&acme, &w, &mut |state| *state = first.clone()).await.expect("update");
    assert_eq!(read(s, &acme, &w).await, first);
    assert_eq!(read(other, &acme, &w).await, first, "the other adapter reads it");
    assert_eq!(read(s, &globex, &w).await, ThrottleState::default(), "another tenant's webhook is apart");

    // Racing changes through both adapters: each runs on the latest state, none is lost.
    let bump = |state: &mut ThrottleState| state.next_slot = state.next_slot.map(|n| n + 1);
    let mut bumps = [bump; 6];
    let [b1, b2, b3, b4, b5, b6] = &mut bumps;
    let (a, b, c, d, e, f) = tokio::join!(
        s.update(&acme, &w, b1),
        other.update(&acme, &w, b2),
        s.update(&acme, &w, b3),
        other.update(&acme, &w, b4),
        s.update(&acme, &w, b5),
        other.update(&acme, &w, b6),
    );
    for r in [a, b, c, d, e, f] {
        r.expect("update");
    }
    assert_eq!(read(s, &acme, &w).await.next_slot, Some(t + 6), "six changes, none lost");
}
