//! Port contract suites against every adapter (embedded always, AWS against moto's
//! server), and the architecture invariants.

mod architecture;
mod aws_pipeline;

mod embedded {
    use hookline_embedded::{
        Database, LocalKeySigner, SqliteApiKeyStore, SqliteDeliveryQueue, SqliteDeliveryStore, SqliteEventLog, SqliteWebhookStore,
    };
    use tests::contract;

    fn db() -> Database {
        Database::in_memory().expect("database")
    }

    #[tokio::test]
    async fn sqlite_webhook_store_honours_the_contract() {
        contract::webhook_store(&SqliteWebhookStore::new(db())).await;
    }

    #[tokio::test]
    async fn sqlite_event_log_honours_the_contract() {
        contract::event_log(&SqliteEventLog::new(db())).await;
    }

    #[tokio::test]
    async fn sqlite_delivery_store_honours_the_contract() {
        contract::delivery_store(&SqliteDeliveryStore::new(db())).await;
    }

    #[tokio::test]
    async fn sqlite_delivery_queue_honours_the_contract() {
        contract::delivery_queue(&SqliteDeliveryQueue::new(db())).await;
    }

    #[tokio::test]
    async fn sqlite_api_key_store_honours_the_contract() {
        contract::api_key_store(&SqliteApiKeyStore::new(db())).await;
    }

    #[tokio::test]
    async fn local_key_signer_honours_the_contract() {
        let dir = tempfile::tempdir().expect("dir");
        contract::signer(&LocalKeySigner::load_or_create(&dir.path().join("k")).expect("key")).await;
    }
}

mod aws {
    use hookline_aws::{DynamoDbApiKeyStore, DynamoDbDeliveryStore, DynamoDbEventLog, DynamoDbWebhookStore, KmsSigner, SqsDeliveryQueue};
    use tests::{contract, moto};

    #[tokio::test]
    async fn dynamodb_webhook_store_honours_the_contract() {
        let (c, r) = moto::provisioned().await;
        contract::webhook_store(&DynamoDbWebhookStore::new(c.dynamodb, &r.webhooks_table)).await;
    }

    #[tokio::test]
    async fn dynamodb_event_log_honours_the_contract() {
        let (c, r) = moto::provisioned().await;
        contract::event_log(&DynamoDbEventLog::new(c.dynamodb, &r.events_table)).await;
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
    async fn kms_signer_honours_the_contract() {
        let (c, r) = moto::provisioned().await;
        contract::signer(&KmsSigner::new(c.kms, &r.kms_key_id, None)).await;
    }
}
