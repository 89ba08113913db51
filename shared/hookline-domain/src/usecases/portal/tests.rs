//! The portal's rules on the fakes and a manual clock: who may mint what, the link
//! used once within its lifetime, sessions bound to the link's scopes and ending with
//! it, and what authenticates.

use super::*;
use crate::fakes::Fakes;
use crate::ports::Clock;
use crate::time::Timestamp;

async fn key(f: &Fakes, tenant: &str, scopes: Vec<Scope>) -> (ApiKey, ApiKeySecret) {
    let secret = ApiKeySecret::generate();
    let k = ApiKey::key(ApiKeyId::generate(), TenantId::parse(tenant).unwrap(), scopes, None, f.clock.now(), secret.hash());
    f.h.keys.insert(&k).await.unwrap();
    (k, secret)
}

fn caps(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn at(f: &Fakes) -> Timestamp {
    f.clock.now()
}

#[tokio::test]
async fn a_link_opens_one_session_with_its_capabilities_within_its_lifetime() {
    let f = Fakes::new();
    let acme = TenantId::parse("acme").unwrap();
    let (backend, _) = key(&f, "acme", vec![Scope::WebhooksWrite, Scope::WebhooksRead]).await;
    let (link, token) = mint_link(&f.h, &backend, &acme, &caps(&["manage", "deliveries"]), None).await.unwrap();
    assert_eq!(link.expires_at, Some(at(&f) + DEFAULT_LINK_TTL));
    assert_eq!(Capability::of(&link), vec![Capability::View, Capability::Manage, Capability::Deliveries], "view is always granted");
    assert!(token.expose().starts_with(LINK_PREFIX));
    assert!(matches!(authenticate(&f.h, token.expose()).await, Err(AuthError::Link)), "a link is not a bearer key");

    f.clock.advance(std::time::Duration::from_secs(60));
    let (session, session_token) = open_session(&f.h, token.expose()).await.unwrap();
    assert_eq!((session.kind, &session.tenant), (CredentialKind::PortalSession, &acme));
    assert_eq!(session.scopes, link.scopes);
    assert_eq!(session.expires_at, Some(at(&f) + SESSION_TTL));
    let me = authenticate(&f.h, session_token.expose()).await.unwrap();
    assert!(me.allows(Scope::WebhooksManage) && me.allows(Scope::DeliveriesWrite));
    assert!(!me.allows(Scope::WebhooksSecrets) && !me.allows(Scope::EventsWrite) && !me.is_operator());

    assert!(matches!(open_session(&f.h, token.expose()).await, Err(PortalError::Used)), "a link opens one session");
    f.clock.advance(SESSION_TTL.to_std().unwrap());
    assert!(matches!(authenticate(&f.h, session_token.expose()).await, Err(AuthError::Expired)));
}

#[tokio::test]
async fn an_expired_unknown_or_revoked_link_is_refused_and_revoking_ends_sessions() {
    let f = Fakes::new();
    let acme = TenantId::parse("acme").unwrap();
    let (backend, _) = key(&f, "acme", vec![Scope::WebhooksRead]).await;
    let (_, short) = mint_link(&f.h, &backend, &acme, &[], Some(MIN_LINK_TTL)).await.unwrap();
    f.clock.advance(MIN_LINK_TTL.to_std().unwrap());
    assert!(matches!(open_session(&f.h, short.expose()).await, Err(PortalError::Expired)));
    assert!(matches!(open_session(&f.h, "hkp_nonsense").await, Err(PortalError::Invalid)));
    let (_, api_key) = key(&f, "acme", vec![Scope::Admin]).await;
    assert!(matches!(open_session(&f.h, api_key.expose()).await, Err(PortalError::Invalid)), "an API key is not a link");

    let (link, token) = mint_link(&f.h, &backend, &acme, &[], None).await.unwrap();
    let (_, session) = open_session(&f.h, token.expose()).await.unwrap();
    assert!(authenticate(&f.h, session.expose()).await.is_ok());
    let other = TenantId::parse("globex").unwrap();
    assert!(matches!(revoke_link(&f.h, &other, &link.id).await, Err(StoreError::NotFound)), "links are revoked within their tenant");
    revoke_link(&f.h, &acme, &link.id).await.unwrap();
    assert!(matches!(authenticate(&f.h, session.expose()).await, Err(AuthError::Revoked)), "the session ends with its link");

    let (_, unused) = mint_link(&f.h, &backend, &acme, &[], None).await.unwrap();
    let (_, used) = mint_link(&f.h, &backend, &acme, &[], None).await.unwrap();
    let (_, s2) = open_session(&f.h, used.expose()).await.unwrap();
    assert_eq!(revoke_all_links(&f.h, &acme).await.unwrap(), 3, "the expired link, the unused one and the used one");
    assert!(matches!(open_session(&f.h, unused.expose()).await, Err(PortalError::Invalid)));
    assert!(matches!(authenticate(&f.h, s2.expose()).await, Err(AuthError::Revoked)));
    assert!(authenticate(&f.h, api_key.expose()).await.is_ok(), "API keys are not links");
}

#[tokio::test]
async fn revoking_the_key_that_minted_a_link_ends_the_link_and_its_session() {
    let f = Fakes::new();
    let acme = TenantId::parse("acme").unwrap();
    let (backend, _) = key(&f, "acme", vec![Scope::WebhooksRead]).await;
    let (_, opened) = mint_link(&f.h, &backend, &acme, &[], None).await.unwrap();
    let (_, unopened) = mint_link(&f.h, &backend, &acme, &[], None).await.unwrap();
    let (_, session) = open_session(&f.h, opened.expose()).await.unwrap();
    assert!(authenticate(&f.h, session.expose()).await.is_ok());
    f.h.keys.delete(&acme, &backend.id, CredentialKind::Key).await.unwrap();
    assert!(matches!(authenticate(&f.h, session.expose()).await, Err(AuthError::Revoked)));
    assert!(matches!(open_session(&f.h, unopened.expose()).await, Err(PortalError::Invalid)));
}

#[tokio::test]
async fn a_key_grants_only_what_it_holds_and_sessions_mint_nothing() {
    let f = Fakes::new();
    let acme = TenantId::parse("acme").unwrap();
    let (reader, _) = key(&f, "acme", vec![Scope::WebhooksRead]).await;
    assert!(matches!(
        mint_link(&f.h, &reader, &acme, &caps(&["manage"]), None).await,
        Err(PortalError::CannotGrant("manage", "webhooks:manage"))
    ));
    assert!(matches!(mint_link(&f.h, &reader, &acme, &caps(&["root"]), None).await, Err(PortalError::UnknownCapability(_))));
    for ttl in [Duration::minutes(4), Duration::days(7) + Duration::seconds(1)] {
        assert!(matches!(mint_link(&f.h, &reader, &acme, &[], Some(ttl)).await, Err(PortalError::BadLifetime)));
    }
    let (events_only, _) = key(&f, "acme", vec![Scope::EventsWrite]).await;
    assert!(matches!(mint_link(&f.h, &events_only, &acme, &[], None).await, Err(PortalError::CannotGrant("view", _))));
    let (admin, _) = key(&f, "acme", vec![Scope::Admin]).await;
    let (_, token) = mint_link(&f.h, &admin, &acme, &caps(&["manage", "secrets", "deliveries", "view"]), Some(MAX_LINK_TTL)).await.unwrap();
    let (session, _) = open_session(&f.h, token.expose()).await.unwrap();
    assert_eq!(Capability::of(&session), Capability::ALL.to_vec());
    assert!(matches!(mint_link(&f.h, &session, &acme, &[], None).await, Err(PortalError::NotAKey)));
}
