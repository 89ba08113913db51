//! Port contract suites against every adapter (embedded always, AWS against moto's
//! server), and the architecture invariants.

mod architecture;
mod aws_console;
mod aws_observability;
mod aws_pipeline;
mod aws_policy;
mod aws_recovery;
mod concurrency;
mod settings;
mod sqlite_storage;
mod ssrf;
mod template;

mod aws {
    use hookline_aws::{
        DynamoDbAnalyticsStore, DynamoDbApiKeyStore, DynamoDbDeliveryStore, DynamoDbEventLog, DynamoDbRecoveryStore, DynamoDbThrottleStore,
        DynamoDbWebhookStore, KmsSigner, SqsDeliveryQueue, WrappedKeySigner,
    };
    use tests::{contract, moto};

    #[tokio::test]
    async fn dynamodb_webhook_store_honours_the_contract() {
        let (c, r) = moto::provisioned().await;
        contract::webhook_store(&DynamoDbWebhookStore::new(c.dynamodb, &r.webhooks_table)).await;
    }

    #[tokio::test]
    async fn dynamodb_event_log_honours_the_contract() {
        let (c, r) = moto::provisioned().await;
        contract::event_log(&DynamoDbEventLog::new(c.dynamodb, &r.events_table, &r.idempotency_table)).await;
    }

    #[tokio::test]
    async fn dynamodb_delivery_store_honours_the_contract() {
        let (c, r) = moto::provisioned().await;
        contract::delivery_store(&DynamoDbDeliveryStore::new(c.dynamodb, &r.deliveries_table, &r.attempts_table)).await;
    }

    #[tokio::test]
    async fn dynamodb_recovery_store_honours_the_contract() {
        let (c, r) = moto::provisioned().await;
        contract::recovery_store(&DynamoDbRecoveryStore::new(c.dynamodb, &r.recoveries_table)).await;
    }

    #[tokio::test]
    async fn dynamodb_throttle_store_honours_the_contract() {
        let (c, r) = moto::provisioned().await;
        // Two stores over one table: two containers, each with its own in-process locks.
        let (one, two) = (
            DynamoDbThrottleStore::new(c.dynamodb.clone(), &r.throttles_table),
            DynamoDbThrottleStore::new(c.dynamodb, &r.throttles_table),
        );
        contract::throttle_store(&one, &two).await;
    }

    #[tokio::test]
    async fn dynamodb_analytics_store_honours_the_contract() {
        let (c, r) = moto::provisioned().await;
        contract::analytics_store(&DynamoDbAnalyticsStore::new(c.dynamodb, &r.analytics_table)).await;
    }

    #[tokio::test]
    async fn sqs_delivery_queue_honours_the_contract() {
        let (c, r) = moto::provisioned().await;
        contract::delivery_queue(&SqsDeliveryQueue::new(c.sqs, &r.queue_url)).await;
    }

    #[tokio::test]
    async fn dynamodb_api_key_store_honours_the_contract() {
        let (c, r) = moto::provisioned().await;
        contract::api_key_store(&DynamoDbApiKeyStore::new(c.dynamodb, &r.api_keys_table)).await;
    }

    #[tokio::test]
    async fn kms_signer_publishes_the_previous_key_beside_the_current_one_during_rotation() {
        use hookline_domain::ports::Signer;
        let (c, old) = moto::provisioned().await;
        let (_, new) = moto::provisioned().await;
        let rotating = KmsSigner::new(c.kms.clone(), new.kms_key_id.as_deref().expect("key"), old.kms_key_id.as_deref());
        let before = KmsSigner::new(c.kms.clone(), old.kms_key_id.as_deref().expect("key"), None);
        let keys = rotating.public_keys().await.expect("keys");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].kid, rotating.current_key_id().await.expect("kid"), "the current key comes first");
        assert_eq!(keys[1].kid, before.current_key_id().await.expect("kid"), "the previous key stays published");
        // Signatures made before the switch still verify against the rotating JWKS.
        let body = b"{}";
        let token = hookline_domain::send::sign_body(&before, body, &hookline_domain::ids::AttemptId::generate(), chrono::Utc::now())
            .await
            .expect("sign");
        tests::jose::verify(&token, body, &serde_json::json!({ "keys": keys })).expect("old signature verifies");
        contract::signer(&rotating).await;
    }

    #[tokio::test]
    async fn kms_signer_honours_the_contract() {
        let (c, r) = moto::provisioned().await;
        contract::signer(&KmsSigner::new(c.kms, r.kms_key_id.as_deref().expect("key"), None)).await;
    }

    #[tokio::test]
    async fn wrapped_key_signer_honours_the_contract_and_racing_containers_agree_on_one_key() {
        use hookline_domain::ports::Signer;
        let (c, r) = moto::provisioned().await;
        let (table, wrapping) = (r.signing_keys_table.as_deref().expect("table"), r.secrets_kms_key_id.as_deref().expect("key"));
        let make = |label: &str| WrappedKeySigner::new(c.dynamodb.clone(), c.kms.clone(), table, wrapping, label, None);
        // Two cold containers meet a label with no key at the same moment: one pair wins.
        let (a, b) = (make("race"), make("race"));
        let (ka, kb) = tokio::join!(a.current_key_id(), b.current_key_id());
        assert_eq!(ka.expect("kid"), kb.expect("kid"), "both containers sign with the stored pair");
        let (sa, sb) = tokio::join!(a.sign(b"m"), b.sign(b"m"));
        assert_eq!(sa.expect("sign"), sb.expect("sign"), "the same private key (PKCS#1 v1.5 is deterministic)");
        contract::signer(&a).await;
        assert_ne!(make("other").current_key_id().await.expect("kid"), a.current_key_id().await.expect("kid"), "a label is a key");
    }

    #[tokio::test]
    async fn dynamodb_delivery_store_keeps_long_and_late_attempts_apart_and_lists_every_attempt_in_order() {
        use hookline_domain::catalog::EventName;
        use hookline_domain::delivery::{Attempt, Claim, Delivery, DeliveryStatus};
        use hookline_domain::ids::{AttemptId, EventId, WebhookId};
        use hookline_domain::ports::{DeliveryStore, StoreError};
        let (c, r) = moto::provisioned().await;
        let s = DynamoDbDeliveryStore::new(c.dynamodb, &r.deliveries_table, &r.attempts_table);
        let (tenant, webhook) = (contract::tenant("acme"), WebhookId::generate());
        let ms = chrono::Duration::milliseconds;
        // Stores keep microseconds.
        let t0 = hookline_domain::time::from_micros(chrono::Utc::now().timestamp_micros());
        let d =
            Delivery::new(tenant.clone(), webhook.clone(), EventId::generate(), EventName::parse("project.created").expect("name"), t0, t0);
        s.create(std::slice::from_ref(&d)).await.expect("create");
        // Eleven attempts: the third answers a long body (kept apart at once), the ninth
        // on are beyond the inline ones; the last succeeds.
        let (mut current, mut made) = (d.clone(), Vec::new());
        for i in 0..11i64 {
            let at = t0 + ms(10 * i + 5);
            let ok = i == 10;
            let a = Attempt {
                id: AttemptId::generate(),
                delivery_id: d.id.clone(),
                attempted_at: at,
                status_code: Some(if ok { 200 } else { 503 }),
                duration_ms: 3,
                error: (!ok).then(|| "receiver answered 503".to_owned()),
                response_body: Some(if i == 2 { "<html>".repeat(300) } else { "ok".to_owned() }),
            };
            let Claim::Claimed(_) = s.claim(&current.job(at, false), at, at + ms(30_000)).await.expect("claim") else {
                panic!("attempt {i} could not be claimed")
            };
            current.attempts += 1;
            current.last_status_code = a.status_code;
            current.last_attempt_at = Some(at);
            if ok {
                (current.status, current.next_attempt_at, current.delivered_at) = (DeliveryStatus::Succeeded, None, Some(at));
            }
            s.record_attempt(&current, &a).await.expect("record");
            made.push(a);
        }
        assert_eq!(s.attempts(&tenant, &webhook, &d.id).await.expect("attempts"), made, "every attempt, oldest first, as recorded");
        assert_eq!(s.get(&tenant, &webhook, &d.id).await.expect("get"), current);
        assert!(
            matches!(s.record_attempt(&current, &made[10]).await, Err(StoreError::Conflict)),
            "recording the same step twice conflicts on the spilled path too"
        );
        let stats = s.attempt_stats(&tenant, &webhook, t0).await.expect("stats");
        assert_eq!((stats.total, stats.succeeded), (11, 1), "health counts inline and spilled attempts alike");
        let later = s.attempt_stats(&tenant, &webhook, t0 + ms(100)).await.expect("stats");
        assert_eq!((later.total, later.succeeded), (1, 1));
    }
}
