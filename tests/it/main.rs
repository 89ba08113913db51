//! Port contract suites against every adapter (embedded always, AWS against moto's
//! server), and the architecture invariants.

mod architecture;
mod aws_pipeline;
mod concurrency;
mod ssrf;
mod template;

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
    async fn sqlite_queue_stores_new_deliveries_with_their_jobs_and_in_one_commit_when_it_holds_them() {
        // On a file, so reads do not go through the writer and commits count writes only.
        let dir = tempfile::tempdir().expect("dir");
        let db = Database::open(&dir.path().join("t.db")).expect("database");
        let store = SqliteDeliveryStore::new(db.clone());
        // Apart (the default), through the store and then the queue.
        contract::new_deliveries_and_jobs(&store, &SqliteDeliveryQueue::new(db.clone())).await;
        // Declared to hold the deliveries too: one write, one commit.
        let together = SqliteDeliveryQueue::new(db.clone()).storing_deliveries();
        let before = db.commits();
        contract::new_deliveries_and_jobs(&store, &together).await;
        // One commit to store, one to take the jobs back out.
        assert_eq!(db.commits() - before, 2, "deliveries and jobs share one write");
    }

    #[tokio::test]
    async fn sqlite_queue_hands_jobs_due_now_to_its_worker_and_keeps_them_durable() {
        use hookline_domain::catalog::EventName;
        use hookline_domain::delivery::Delivery;
        use hookline_domain::ids::{EventId, TenantId, WebhookId};
        use hookline_domain::ports::DeliveryQueue;
        use std::time::Duration;

        let db = db();
        let q = SqliteDeliveryQueue::new(db.clone());
        let mut handed = q.hand_off(2, Duration::from_secs(60)).expect("first hand-off");
        assert!(q.hand_off(2, Duration::from_secs(60)).is_none(), "one worker per queue");
        let now = contract::now();
        let job = |due| {
            let name = EventName::parse("project.created").expect("name");
            Delivery::new(TenantId::default_tenant(), WebhookId::generate(), EventId::generate(), name, now).job(due, false)
        };
        let due: Vec<_> = (0..3).map(|_| job(now)).collect();
        let later = job(now + chrono::Duration::hours(1));
        q.enqueue(&[due[0].clone(), later.clone(), due[1].clone(), due[2].clone()]).await.expect("enqueue");

        // Two fit in the hand-off; the third due job waits in the table, and so does the later one.
        let first = handed.try_recv().expect("first job handed over");
        let second = handed.try_recv().expect("second job handed over");
        assert!(handed.try_recv().is_err(), "the hand-off holds only two");
        assert_eq!(vec![first.job.clone(), second.job.clone()], due[..2].to_vec(), "due jobs, in order, intact");
        let taken = q.take_due(now, 10, Duration::from_secs(60)).await.expect("take");
        assert_eq!(
            taken.iter().map(|l| l.job.clone()).collect::<Vec<_>>(),
            vec![due[2].clone()],
            "handed-over jobs are leased in the table"
        );
        assert_eq!(q.len().await.expect("len"), 4, "every job is stored");

        // An acknowledged one is gone; the others, never acknowledged, come back after a crash.
        q.ack(&first.receipt).await.expect("ack");
        let (jobs, _) = db.recover(contract::now().timestamp_micros()).await.expect("recover");
        assert_eq!(jobs, 2, "the unacknowledged handed-over job and the taken one are released");
        let back = q.take_due(contract::now(), 10, Duration::from_secs(60)).await.expect("take");
        let mut back: Vec<_> = back.into_iter().map(|l| l.job.delivery_id.to_string()).collect();
        back.sort();
        let mut want = vec![second.job.delivery_id.to_string(), due[2].delivery_id.to_string()];
        want.sort();
        assert_eq!(back, want);
    }

    #[tokio::test]
    async fn sqlite_queue_claims_new_deliveries_it_hands_over_and_only_those() {
        use hookline_domain::catalog::EventName;
        use hookline_domain::delivery::{Claim, Delivery};
        use hookline_domain::ids::{EventId, TenantId, WebhookId};
        use hookline_domain::ports::{DeliveryQueue, DeliveryStore};
        use std::time::Duration;

        let db = db();
        let store = SqliteDeliveryStore::new(db.clone());
        let q = SqliteDeliveryQueue::new(db.clone()).storing_deliveries();
        let lease = Duration::from_secs(60);
        let mut handed = q.hand_off(2, lease).expect("hand-off");
        let t0 = contract::now();
        let name = EventName::parse("project.created").expect("name");
        let event = EventId::generate();
        let ds: Vec<Delivery> =
            (0..3).map(|_| Delivery::new(TenantId::default_tenant(), WebhookId::generate(), event.clone(), name.clone(), t0)).collect();
        let jobs: Vec<_> = ds.iter().map(|d| d.job(t0, false)).collect();
        q.enqueue_new(&store, &ds, &jobs).await.expect("enqueue_new");
        let after = contract::now();

        // The two handed over carry their delivery, claimed for the job's lease.
        let lease = chrono::Duration::from_std(lease).expect("lease");
        for d in &ds[..2] {
            let got = handed.try_recv().expect("handed over");
            assert_eq!(got.job.delivery_id, d.id);
            let held = got.claimed.expect("claimed for the worker");
            assert_eq!(&held.delivery, d, "the delivery as stored");
            assert!(held.until >= t0 + lease && held.until <= after + lease, "claimed for the lease: {:?}", held.until);
            // The claim is in the store: nobody else may attempt it meanwhile.
            assert_eq!(store.claim(&got.job, contract::now(), after + lease).await.expect("claim"), Claim::Busy);
        }
        assert!(handed.try_recv().is_err(), "the hand-off holds only two");
        // The third waits in the table, and the write that takes it claims it.
        let before_take = contract::now();
        let taken = q.take_due(before_take, 10, Duration::from_secs(60)).await.expect("take");
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].job.delivery_id, ds[2].id);
        let held = taken[0].claimed.clone().expect("claimed by the take");
        assert_eq!((&held.delivery, held.until), (&ds[2], before_take + lease), "the delivery as stored, for the take's lease");
        assert_eq!(store.claim(&taken[0].job, contract::now(), after + lease).await.expect("claim"), Claim::Busy);

        // Fan-out replayed: the deliveries exist, so their jobs go over without a claim.
        while handed.try_recv().is_ok() {}
        let t1 = contract::now();
        let again: Vec<_> = ds[..2].iter().map(|d| d.job(t1, false)).collect();
        q.enqueue_new(&store, &ds[..2], &again).await.expect("replay");
        for _ in 0..2 {
            assert_eq!(handed.try_recv().expect("handed over").claimed, None, "a stored delivery is not claimed again");
        }

        // A restart releases the claims taken for the worker.
        let (_, claims) = db.recover(contract::now().timestamp_micros()).await.expect("recover");
        assert_eq!(claims, 3, "two handed-over claims and the one taken from the table");
        assert!(matches!(store.claim(&jobs[0], contract::now(), after + lease).await.expect("claim"), Claim::Claimed(_)));
    }

    #[tokio::test]
    async fn sqlite_queue_holding_the_deliveries_claims_them_as_it_takes_their_jobs() {
        use hookline_domain::catalog::EventName;
        use hookline_domain::delivery::{Claim, Delivery};
        use hookline_domain::ids::{EventId, TenantId, WebhookId};
        use hookline_domain::ports::{DeliveryQueue, DeliveryStore};
        use std::time::Duration;

        let db = db();
        let store = SqliteDeliveryStore::new(db.clone());
        let q = SqliteDeliveryQueue::new(db.clone()).storing_deliveries();
        let t0 = contract::now();
        let name = EventName::parse("project.created").expect("name");
        let ds: Vec<Delivery> = (0..3)
            .map(|_| Delivery::new(TenantId::default_tenant(), WebhookId::generate(), EventId::generate(), name.clone(), t0))
            .collect();
        let jobs: Vec<_> = ds.iter().map(|d| d.job(t0, false)).collect();
        q.enqueue_new(&store, &ds, &jobs).await.expect("enqueue_new");
        // One claimed elsewhere, and an outdated job (its attempt already happened).
        let lease = chrono::Duration::seconds(60);
        assert!(matches!(store.claim(&jobs[1], contract::now(), contract::now() + lease).await.expect("claim"), Claim::Claimed(_)));
        let mut outdated = ds[0].job(t0, false);
        outdated.attempts_before = 1;
        q.enqueue(&[outdated]).await.expect("enqueue");

        let now = contract::now();
        let taken = q.take_due(now, 10, Duration::from_secs(60)).await.expect("take");
        assert_eq!(taken.len(), 4);
        for l in &taken {
            let d = ds.iter().find(|d| d.id == l.job.delivery_id).expect("known delivery");
            if l.job.attempts_before == 1 || d.id == ds[1].id {
                assert_eq!(l.claimed, None, "outdated or busy elsewhere: left to the send step");
            } else {
                assert_eq!(l.claimed.clone().map(|c| (c.delivery, c.until)), Some((d.clone(), now + lease)), "claimed for the lease");
                assert_eq!(store.claim(&l.job, contract::now(), contract::now() + lease).await.expect("claim"), Claim::Busy);
            }
        }
    }

    #[tokio::test]
    async fn sqlite_api_key_store_honours_the_contract() {
        contract::api_key_store(&SqliteApiKeyStore::new(db())).await;
    }

    #[tokio::test]
    async fn a_published_event_is_stored_with_its_fan_out_in_one_write_where_the_log_can() {
        use hookline_domain::cache::CachedWebhookStore;
        use hookline_domain::fanout::{FAN_OUT_ON_APPEND_MAX, append};
        use hookline_domain::ports::{EventLog, StoreError};
        use std::sync::Arc;
        use std::time::Duration;

        let dir = tempfile::tempdir().expect("dir");
        // On a file, so that reads do not go through the writer and count as commits.
        let db = Database::open(&dir.path().join("db")).expect("database");
        let queue = SqliteDeliveryQueue::new(db.clone()).storing_deliveries();
        let mut handed = queue.hand_off(256, Duration::from_secs(60)).expect("hand-off");
        let log = SqliteEventLog::new(db.clone()).fanning_out_into(queue.clone());
        let mut h = crate::concurrency::sqlite_hookline(dir.path(), db.clone(), queue.clone());
        h.events = Arc::new(log.clone());
        // Cached, as local mode wires it: fan-out on append needs the webhooks at hand.
        h.webhooks = Arc::new(CachedWebhookStore::new(h.webhooks.clone()));
        let tenant = contract::tenant("default");
        let now = contract::now();
        let wanted: Vec<_> = (0..2).map(|_| contract::webhook(&tenant, &["project.*"], now)).collect();
        for w in wanted.iter().chain([&contract::webhook(&tenant, &["activity.*"], now)]) {
            h.webhooks.insert(w).await.expect("webhook");
        }

        // Webhooks not at hand (nothing read them since they changed): the event is
        // appended alone, for the reader, rather than wait for a read.
        let cold = contract::event(&tenant, now);
        append(&h, &cold).await.expect("append");
        assert!(handed.try_recv().is_err(), "nothing queued on append");
        let pending = log.pending_fanout(0, 10).await.expect("pending");
        assert_eq!(pending.iter().map(|(_, e)| e.as_ref().expect("event").id.clone()).collect::<Vec<_>>(), vec![cold.id.clone()]);
        log.mark_fanned_out(pending.iter().map(|(seq, _)| *seq).collect()).expect("mark");
        h.webhooks.list_active(&tenant).await.expect("the reader's read");

        // At hand: one commit stores the event, its two deliveries and their jobs,
        // handed over claimed; the reader has nothing left to fan out.
        let event = contract::event(&tenant, now);
        let commits = db.commits();
        append(&h, &event).await.expect("append");
        assert_eq!(db.commits(), commits + 1, "one write");
        assert_eq!(h.events.get(&tenant, &event.id).await.expect("stored"), event);
        let jobs: Vec<_> = std::iter::from_fn(|| handed.try_recv().ok()).collect();
        assert_eq!(jobs.len(), 2);
        for (leased, w) in jobs.iter().zip(&wanted) {
            assert_eq!((&leased.job.webhook_id, &leased.job.event_id), (&w.id, &event.id));
            let d = h.deliveries.get(&tenant, &w.id, &leased.job.delivery_id).await.expect("delivery");
            let held = leased.claimed.as_ref().expect("claimed for the worker");
            assert_eq!((&held.delivery.id, held.delivery.attempts), (&d.id, 0));
        }
        assert!(log.pending_fanout(0, 10).await.expect("pending").is_empty(), "marked fanned out");

        // The same id again: Conflict, and nothing of it is stored, not even a delivery
        // to a webhook created since.
        let late = contract::webhook(&tenant, &["*"], now);
        h.webhooks.insert(&late).await.expect("webhook");
        h.webhooks.list_active(&tenant).await.expect("read");
        assert!(matches!(append(&h, &event).await, Err(StoreError::Conflict)));
        assert!(handed.try_recv().is_err(), "no job queued");
        assert!(h.deliveries.list(&tenant, &late.id, None, &Default::default()).await.expect("list").items.is_empty());

        // An event matching more webhooks than fan out on append is appended alone and
        // left to the reader.
        for _ in 0..FAN_OUT_ON_APPEND_MAX {
            h.webhooks.insert(&contract::webhook(&tenant, &["project.created"], now)).await.expect("webhook");
        }
        h.webhooks.list_active(&tenant).await.expect("read");
        let wide = contract::event(&tenant, now);
        append(&h, &wide).await.expect("append");
        assert!(handed.try_recv().is_err(), "nothing queued on append");
        let pending = log.pending_fanout(0, 10).await.expect("pending");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].1.as_ref().expect("event").id, wide.id);

        // Only a queue that stores the deliveries, in the same database, lets the log
        // fan out on append.
        assert!(log.appends_fanned_out());
        assert!(!SqliteEventLog::new(db.clone()).appends_fanned_out());
        assert!(!SqliteEventLog::new(db.clone()).fanning_out_into(SqliteDeliveryQueue::new(db.clone())).appends_fanned_out());
        let other = SqliteDeliveryQueue::new(self::db()).storing_deliveries();
        let unwired = SqliteEventLog::new(db.clone()).fanning_out_into(other);
        assert!(!unwired.appends_fanned_out());
        let lone = contract::event(&tenant, now);
        assert!(matches!(unwired.append_fanned_out(&lone, &[], &[]).await, Err(StoreError::Unknown(_))));
        assert!(matches!(h.events.get(&tenant, &lone.id).await, Err(StoreError::NotFound)), "nothing stored");
        assert!(log.pending_fanout(0, 10).await.expect("pending").iter().all(|(_, e)| e.as_ref().expect("event").id != lone.id));
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
        contract::event_log(&DynamoDbEventLog::new(c.dynamodb, &r.events_table, &r.idempotency_table)).await;
    }

    #[tokio::test]
    async fn dynamodb_delivery_store_honours_the_contract() {
        let (c, r) = moto::provisioned().await;
        contract::delivery_store(&DynamoDbDeliveryStore::new(c.dynamodb, &r.deliveries_table, &r.attempts_table)).await;
    }

    #[tokio::test]
    async fn sqs_queue_stores_new_deliveries_in_dynamodb_with_their_jobs() {
        let (c, r) = moto::provisioned().await;
        let store = DynamoDbDeliveryStore::new(c.dynamodb, &r.deliveries_table, &r.attempts_table);
        contract::new_deliveries_and_jobs(&store, &SqsDeliveryQueue::new(c.sqs, &r.queue_url)).await;
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
        let rotating = KmsSigner::new(c.kms.clone(), &new.kms_key_id, Some(&old.kms_key_id));
        let before = KmsSigner::new(c.kms.clone(), &old.kms_key_id, None);
        let keys = rotating.public_keys().await.expect("keys");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].kid, rotating.current_key_id().await.expect("kid"), "the current key comes first");
        assert_eq!(keys[1].kid, before.current_key_id().await.expect("kid"), "the previous key stays published");
        // Signatures made before the switch still verify against the rotating JWKS.
        let body = b"{}";
        let token = hookline_domain::jwt::sign_body(&before, body, &hookline_domain::ids::AttemptId::generate(), chrono::Utc::now())
            .await
            .expect("sign");
        tests::jose::verify(&token, body, &serde_json::json!({ "keys": keys })).expect("old signature verifies");
        contract::signer(&rotating).await;
    }

    #[tokio::test]
    async fn kms_signer_honours_the_contract() {
        let (c, r) = moto::provisioned().await;
        contract::signer(&KmsSigner::new(c.kms, &r.kms_key_id, None)).await;
    }
}
