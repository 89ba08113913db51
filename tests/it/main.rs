//! Port contract suites against every adapter (embedded always, AWS against moto's
//! server), and the architecture invariants.

mod architecture;
mod aws_pipeline;
mod concurrency;
mod settings;
mod sqlite_storage;
mod ssrf;
mod template;

mod aws {
    use hookline_aws::{
        DynamoDbApiKeyStore, DynamoDbDeliveryStore, DynamoDbEventLog, DynamoDbWebhookStore, KmsSigner, SqsDeliveryQueue, WrappedKeySigner,
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
}
