//! Port contract suites against every adapter, and the architecture invariants.

mod architecture;

mod embedded {
    use hookline_embedded::{
        Database, LocalKeySigner, SqliteApiKeyStore, SqliteDeliveryQueue, SqliteDeliveryStore,
        SqliteEventLog, SqliteWebhookStore,
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
        contract::signer(&LocalKeySigner::load_or_create(&dir.path().join("k")).expect("key"))
            .await;
    }
}
