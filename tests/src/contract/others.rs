//! Contracts of the webhook store, event log, API key store, recovery store and signer.

use super::{event, now, tenant, webhook};
use hookline_domain::auth::{ApiKey, ApiKeySecret, CredentialKind, Scope};
use hookline_domain::delivery::DeliveryStatus;
use hookline_domain::ids::{ApiKeyId, AttemptId, DeliveryId, EventId, RecoveryId, WebhookId};
use hookline_domain::page::{Cursor, PageRequest};
use hookline_domain::ports::{ApiKeyStore, EventLog, RecoveryStore, Signer, StoreError, WebhookStore};
use hookline_domain::recovery::{Recovery, RecoveryState, Tail};
use hookline_domain::time::Timestamp;
use hookline_domain::webhook::{DeliveryPolicy, Filter, HttpMethod, PayloadFormat, delivery_policy};
use std::collections::HashSet;

/// The webhook store contract.
pub async fn webhook_store(s: &dyn WebhookStore) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let t0 = now();
    let w = webhook(&acme, &["project.*", "*.deleted"], t0);
    s.insert(&w).await.expect("insert");
    assert!(matches!(s.insert(&w).await, Err(StoreError::Conflict)), "second insert of one id is a conflict");
    assert_eq!(s.get(&acme, &w.id).await.expect("get"), w, "a webhook reads back as written");
    assert!(matches!(s.get(&globex, &w.id).await, Err(StoreError::NotFound)), "another tenant's webhook is not found");
    assert!(matches!(s.get(&acme, &WebhookId::generate()).await, Err(StoreError::NotFound)));

    let mut changed = w.clone();
    changed.active = false;
    changed.description = None;
    changed.disabled_reason = Some("receiver answered 410".into());
    changed.disabled_at = Some(t0);
    changed.policy = DeliveryPolicy {
        name: Some("Billing".into()),
        method: HttpMethod::Patch,
        payload_format: PayloadFormat::StandardWebhooks,
        retry_schedule: Some(delivery_policy::parse_retry_schedule("1s,5m").expect("schedule")),
        max_age: Some(std::time::Duration::from_secs(3600)),
        filter: Some(Filter::parse(serde_json::json!({"metadata": {"n": {"$gt": 1.5}}})).expect("filter")),
        rate_limit: Some(hookline_domain::throttle::RateLimit::parse("5/s").expect("rate")),
        max_in_flight: Some(2),
    };
    s.update(&changed).await.expect("update");
    assert_eq!(s.get(&acme, &w.id).await.expect("get"), changed, "its delivery policy too");
    let mut foreign = changed.clone();
    foreign.tenant = globex.clone();
    assert!(matches!(s.update(&foreign).await, Err(StoreError::NotFound)), "update through another tenant is not found");

    // A status update touches only the status fields.
    let mut status = changed.clone();
    status.endpoint_url = hookline_domain::webhook::EndpointUrl::parse("https://elsewhere.example/", &Default::default()).expect("url");
    status.failing_since = Some(t0);
    status.failed_deliveries = 3;
    status.disabled_reason = None;
    status.disabled_at = None;
    s.update_status(&status).await.expect("update status");
    let got = s.get(&acme, &w.id).await.expect("get");
    assert_eq!((got.failing_since, got.failed_deliveries, got.disabled_reason.clone(), got.disabled_at), (Some(t0), 3, None, None));
    assert_eq!(got.endpoint_url, changed.endpoint_url, "update_status leaves the configuration alone");
    let mut ghost = status.clone();
    ghost.id = WebhookId::generate();
    assert!(matches!(s.update_status(&ghost).await, Err(StoreError::NotFound)));

    // Listing: oldest first, paged, active filter for fan-out.
    let mut ids = vec![w.id.clone()];
    for i in 1..5 {
        let x = webhook(&acme, &["*"], t0 + chrono::Duration::milliseconds(i));
        s.insert(&x).await.expect("insert");
        ids.push(x.id.clone());
    }
    s.insert(&webhook(&globex, &["*"], t0)).await.expect("insert other tenant");
    let mut seen = Vec::new();
    let mut page = PageRequest { limit: 2, after: None };
    loop {
        let p = s.list(&acme, &page).await.expect("list");
        assert!(p.items.len() <= 2);
        seen.extend(p.items.iter().map(|w| w.id.clone()));
        match p.next_cursor {
            Some(c) => page.after = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ids, "pages list every webhook of the tenant once, oldest first");
    let active: HashSet<_> = s.list_active(&acme).await.expect("active").into_iter().map(|w| w.id).collect();
    assert_eq!(active, ids[1..].iter().cloned().collect::<HashSet<_>>(), "list_active leaves out inactive webhooks");

    assert!(matches!(s.delete(&globex, &w.id).await, Err(StoreError::NotFound)), "delete through another tenant is not found");
    s.delete(&acme, &w.id).await.expect("delete");
    assert!(matches!(s.get(&acme, &w.id).await, Err(StoreError::NotFound)));
    assert!(matches!(s.delete(&acme, &w.id).await, Err(StoreError::NotFound)));
}

/// The event log contract.
pub async fn event_log(s: &dyn EventLog) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let t0 = now();
    let e = event(&acme, t0);
    s.append(&e).await.expect("append");
    assert!(matches!(s.append(&e).await, Err(StoreError::Conflict)), "an event id is appended once");
    let back = s.get(&acme, &e.id).await.expect("get");
    assert_eq!(back.document.get(), e.document.get(), "the document reads back byte for byte");
    assert_eq!(back, e);
    assert!(matches!(s.get(&globex, &e.id).await, Err(StoreError::NotFound)));
    assert!(matches!(s.get(&acme, &EventId::generate()).await, Err(StoreError::NotFound)));

    let mut ids = vec![e.id.clone()];
    for i in 1..5 {
        let x = event(&acme, t0 + chrono::Duration::milliseconds(i));
        s.append(&x).await.expect("append");
        ids.push(x.id.clone());
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut page = PageRequest { limit: 3, after: None };
    loop {
        let p = s.list(&acme, &page).await.expect("list");
        seen.extend(p.items.iter().map(|e| e.id.clone()));
        match p.next_cursor {
            Some(c) => page.after = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ids, "pages list every event once, newest first");
    assert!(s.list(&globex, &PageRequest::default()).await.expect("list").items.is_empty());

    // Idempotency keys: bound once per tenant for 24 hours.
    let (e1, e2, e3, e4) = (EventId::generate(), EventId::generate(), EventId::generate(), EventId::generate());
    let hour = chrono::Duration::hours(1);
    assert_eq!(s.reserve_idempotency_key(&acme, "order-1", &e1, t0).await.expect("reserve"), e1, "a free key binds");
    assert_eq!(s.reserve_idempotency_key(&acme, "order-1", &e2, t0 + hour).await.expect("reserve"), e1, "a bound key returns its event");
    assert_eq!(s.reserve_idempotency_key(&globex, "order-1", &e3, t0).await.expect("reserve"), e3, "keys are per tenant");
    assert_eq!(s.reserve_idempotency_key(&acme, "order-1", &e4, t0 + hour * 25).await.expect("reserve"), e4, "a key frees after 24 h");
    assert_eq!(s.reserve_idempotency_key(&acme, "order-1", &e1, t0 + hour * 26).await.expect("reserve"), e4);
}

/// The API key store contract.
pub async fn api_key_store(s: &dyn ApiKeyStore) {
    let secret = ApiKeySecret::generate();
    let key = ApiKey::key(
        ApiKeyId::generate(),
        tenant("acme"),
        vec![Scope::WebhooksRead, Scope::EventsWrite],
        Some("ci".into()),
        now(),
        secret.hash(),
    );
    s.insert(&key).await.expect("insert");
    assert_eq!(s.find_by_hash(&secret.hash()).await.expect("find"), key);
    assert!(matches!(s.find_by_hash(&ApiKeySecret::generate().hash()).await, Err(StoreError::NotFound)));
    let mut dup = key.clone();
    dup.id = ApiKeyId::generate();
    assert!(matches!(s.insert(&dup).await, Err(StoreError::Conflict)), "a hash is stored once");

    // Portal links and sessions live beside keys, told apart by kind.
    let t0 = now();
    let minute = chrono::Duration::minutes(1);
    let credential = |tenant_id: &str, kind: CredentialKind, at: chrono::Duration| {
        let secret = ApiKeySecret::generate();
        ApiKey {
            kind,
            expires_at: (kind != CredentialKind::Key).then_some(t0 + minute * 10),
            ..ApiKey::key(ApiKeyId::generate(), tenant(tenant_id), vec![Scope::WebhooksRead], None, t0 + at, secret.hash())
        }
    };
    let link = credential("acme", CredentialKind::PortalLink, minute);
    let other_link = credential("globex", CredentialKind::PortalLink, minute * 2);
    let second_key = credential("globex", CredentialKind::Key, minute * 3);
    for k in [&link, &other_link, &second_key] {
        s.insert(k).await.expect("insert");
    }
    let session = ApiKey { parent: Some(link.hash.clone()), ..credential("acme", CredentialKind::PortalSession, minute * 4) };
    s.insert(&session).await.expect("insert");
    assert_eq!(s.find_by_hash(&session.hash).await.expect("find"), session, "every field is kept");
    assert_eq!(
        s.list(None, CredentialKind::Key).await.expect("list"),
        vec![key.clone(), second_key.clone()],
        "keys of every tenant, oldest first"
    );
    assert_eq!(s.list(Some(&tenant("acme")), CredentialKind::Key).await.expect("list"), vec![key.clone()]);
    assert_eq!(s.list(Some(&tenant("acme")), CredentialKind::PortalLink).await.expect("list"), vec![link.clone()]);
    assert_eq!(s.list(Some(&tenant("acme")), CredentialKind::PortalSession).await.expect("list"), vec![session.clone()]);

    // A link is used once, within its lifetime.
    let until = t0 + minute * 70;
    assert!(matches!(s.use_link(&link.hash, t0 + minute * 10, until).await, Err(StoreError::Conflict)), "expired");
    assert!(matches!(s.use_link(&key.hash, t0, until).await, Err(StoreError::Conflict)), "not a link");
    assert!(matches!(s.use_link(&ApiKeySecret::generate().hash(), t0, until).await, Err(StoreError::NotFound)));
    let (a, b) = tokio::join!(s.use_link(&link.hash, t0 + minute * 5, until), s.use_link(&link.hash, t0 + minute * 5, until));
    assert!(matches!((&a, &b), (Ok(_), Err(StoreError::Conflict)) | (Err(StoreError::Conflict), Ok(_))), "one of two racing uses wins");
    let used = a.or(b).expect("use");
    assert_eq!((used.used_at, used.expires_at), (Some(t0 + minute * 5), Some(until)));
    assert_eq!(s.find_by_hash(&link.hash).await.expect("find"), used);
    assert!(matches!(s.use_link(&link.hash, t0 + minute * 6, until).await, Err(StoreError::Conflict)), "used already");

    // Deleting: within a tenant, of a kind.
    assert!(matches!(s.delete(&tenant("globex"), &link.id, CredentialKind::PortalLink).await, Err(StoreError::NotFound)));
    assert!(matches!(s.delete(&tenant("acme"), &link.id, CredentialKind::Key).await, Err(StoreError::NotFound)));
    assert_eq!(s.delete(&tenant("acme"), &link.id, CredentialKind::PortalLink).await.expect("delete"), used);
    assert!(matches!(s.find_by_hash(&link.hash).await, Err(StoreError::NotFound)));
    assert!(matches!(s.delete(&tenant("acme"), &link.id, CredentialKind::PortalLink).await, Err(StoreError::NotFound)));
    assert_eq!(s.delete(&tenant("globex"), &second_key.id, CredentialKind::Key).await.expect("delete"), second_key);
    assert_eq!(s.list(None, CredentialKind::Key).await.expect("list"), vec![key.clone()]);
}

/// The signer contract: signatures verify with an independent JOSE library against
/// the published keys, under the advertised key id.
pub async fn signer(s: &dyn Signer) {
    let keys = s.public_keys().await.expect("public keys");
    let kid = s.current_key_id().await.expect("kid");
    assert_eq!(keys.first().map(|k| k.kid.clone()), Some(kid.clone()), "the current key is published first");
    for k in &keys {
        assert_eq!((k.kty.as_str(), k.alg.as_str(), k.use_.as_str()), ("RSA", "RS256", "sig"));
        let v = serde_json::to_value(k).expect("jwk");
        assert_eq!(crate::jose::thumbprint(&v), k.kid, "kid is the RFC 7638 thumbprint");
    }
    let jwks = serde_json::json!({ "keys": keys });
    let body = br#"{"event":{"id":"x"}}"#;
    let token = hookline_domain::send::sign_body(s, body, &AttemptId::generate(), chrono::Utc::now()).await.expect("sign");
    crate::jose::verify(&token, body, &jwks).expect("signature verifies");
    assert!(crate::jose::verify(&token, b"{\"tampered\":1}", &jwks).is_err(), "a changed body fails the checksum");
}

/// The recovery store contract.
pub async fn recovery_store(s: &dyn RecoveryStore) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let (wa, wb) = (WebhookId::generate(), WebhookId::generate());
    let t0 = now();
    let recovery = |webhook: &WebhookId, at: Timestamp| Recovery {
        id: RecoveryId::generate(),
        tenant: acme.clone(),
        webhook_id: webhook.clone(),
        since: at - chrono::Duration::hours(2),
        until: at,
        status: DeliveryStatus::Failed,
        state: RecoveryState::Running,
        matched: 1200,
        sent: 0,
        steps: 0,
        cursor: None,
        tail: None,
        created_at: at,
        updated_at: at,
        finished_at: None,
        reason: None,
    };
    let r1 = recovery(&wa, t0);
    let r2 = recovery(&wa, t0 + chrono::Duration::seconds(1));
    let r3 = recovery(&wb, t0);
    for r in [&r1, &r2, &r3] {
        s.insert(r).await.expect("insert");
    }
    assert!(matches!(s.insert(&r1).await, Err(StoreError::Conflict)), "an id is stored once");
    assert_eq!(s.get(&acme, &wa, &r1.id).await.expect("get"), r1, "a recovery reads back as written");
    assert!(matches!(s.get(&globex, &wa, &r1.id).await, Err(StoreError::NotFound)), "not another tenant's");
    assert!(matches!(s.get(&acme, &wb, &r1.id).await, Err(StoreError::NotFound)), "not another webhook's");
    let listed: Vec<RecoveryId> = s.list(&acme, &wa).await.expect("list").into_iter().map(|r| r.id).collect();
    assert_eq!(listed, vec![r2.id.clone(), r1.id.clone()], "a webhook's recoveries, newest first");
    assert!(s.list(&globex, &wa).await.expect("list").is_empty());

    // Saves are conditional on the steps made.
    let mut moved = r1.clone();
    moved.steps = 1;
    moved.sent = 100;
    moved.cursor = Some(Cursor { micros: 1_795_000_000_000_000, id: "dlv_0123".to_owned() });
    moved.tail = Some(Tail { delivery: DeliveryId::generate(), attempts: 2 });
    s.save(&moved, 0).await.expect("save");
    assert_eq!(s.get(&acme, &wa, &r1.id).await.expect("get"), moved, "the cursor and counts read back");
    assert!(matches!(s.save(&moved, 0).await, Err(StoreError::Conflict)), "a save from a step that has run is refused");
    assert!(matches!(s.save(&recovery(&wa, t0), 0).await, Err(StoreError::NotFound)));
}
