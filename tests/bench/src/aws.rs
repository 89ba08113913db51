//! AWS mode against moto's server: API calls per delivery, counted in the SDK clients
//! by an interceptor, and what they cost per million deliveries at list prices.
//!
//! The handlers are the Lambdas' own (`fanout::handle`, `sender::handle`), fed with the
//! event shapes Lambda sends: stream records read through the DynamoDB Streams API and
//! SQS messages received from the queue. Only the handlers' clients are counted; the
//! reads that play Lambda's event source mappings are not (their cost is added from
//! what Lambda does: one `ReceiveMessage` and one `DeleteMessageBatch` per batch).

use aws_sdk_dynamodb::config::interceptors::{BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use hookline_aws::{AwsConfig, Clients};
use hookline_domain::event::Event;
use hookline_domain::ids::TenantId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one kind of call cost: calls, and DynamoDB request units estimated from sizes.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    calls: u64,
    write_units: f64,
    read_units: f64,
}

/// Counts every HTTP request the SDK sends (retries included: each is billed), by
/// `X-Amz-Target` (`DynamoDB_20120810.PutItem`, `AmazonSQS.SendMessageBatch`,
/// `TrentService.Sign`).
#[derive(Debug, Default, Clone)]
pub struct Counter(Arc<Mutex<BTreeMap<String, Tally>>>);

impl Counter {
    /// Takes the counts so far and starts again.
    pub fn take(&self) -> BTreeMap<String, Tally> {
        self.0.lock().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default()
    }
}

/// Items in a `TransactItems` or `RequestItems` list of a DynamoDB request body.
fn items_in(body: &serde_json::Value) -> usize {
    if let Some(items) = body.get("TransactItems").and_then(|v| v.as_array()) {
        return items.len();
    }
    if let Some(tables) = body.get("RequestItems").and_then(|v| v.as_object()) {
        return tables
            .values()
            .map(|v| v.as_array().map(|a| a.len()).or_else(|| v.get("Keys").and_then(|k| k.as_array()).map(|a| a.len())).unwrap_or(0))
            .sum();
    }
    1
}

/// The call being made, kept in the request's config bag from transmit to response.
#[derive(Debug, Clone)]
struct InFlight {
    target: String,
    read_factor: f64,
}

impl Storable for InFlight {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "HooklineBenchCounter"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = ctx.request();
        let target = req.headers().get("x-amz-target").unwrap_or("unknown").to_owned();
        let bytes = req.body().bytes().unwrap_or_default();
        let body: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
        let op = target.rsplit('.').next().unwrap_or_default().to_owned();
        let consistent = body.get("ConsistentRead").and_then(|v| v.as_bool()).unwrap_or(false);
        // Sizes are of the JSON on the wire, a little above DynamoDB's own item sizes:
        // the estimate errs on the high side.
        let writes = match op.as_str() {
            "PutItem" | "UpdateItem" | "DeleteItem" => (bytes.len() as f64 / 1024.0).ceil().max(1.0),
            "TransactWriteItems" | "BatchWriteItem" => {
                let n = items_in(&body).max(1);
                let per_item = (bytes.len() as f64 / n as f64 / 1024.0).ceil().max(1.0);
                let factor = if op == "TransactWriteItems" { 2.0 } else { 1.0 };
                factor * per_item * n as f64
            }
            _ => 0.0,
        };
        let read_factor = match op.as_str() {
            "GetItem" | "Query" | "BatchGetItem" if consistent => 1.0,
            "GetItem" | "Query" | "BatchGetItem" => 0.5,
            _ => 0.0,
        };
        if let Ok(mut m) = self.0.lock() {
            let t = m.entry(target.clone()).or_default();
            t.calls += 1;
            t.write_units += writes;
        }
        cfg.interceptor_state().store_put(InFlight { target, read_factor });
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        ctx: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(call) = cfg.load::<InFlight>() else { return Ok(()) };
        if call.read_factor > 0.0 {
            // Read units by the size of what came back, in 4 KB steps.
            let len = ctx.response().body().bytes().map(|b| b.len()).unwrap_or(0);
            let units = call.read_factor * (len as f64 / 4096.0).ceil().max(1.0);
            if let Ok(mut m) = self.0.lock() {
                m.entry(call.target.clone()).or_default().read_units += units;
            }
        }
        Ok(())
    }
}

/// SDK clients that count every call into `counter`.
pub fn counted_clients(sdk: &aws_config::SdkConfig, counter: &Counter) -> Clients {
    Clients {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(counter.clone()).build()),
        sqs: aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(sdk).interceptor(counter.clone()).build()),
        kms: aws_sdk_kms::Client::from_conf(aws_sdk_kms::config::Builder::from(sdk).interceptor(counter.clone()).build()),
    }
}

/// AWS list prices used for the cost figures: us-east-1, on-demand, as published on
/// the services' pricing pages, read on 2026-11-23. Free tiers are left out.
pub mod price {
    /// KMS: requests with an RSA 2048 key (`Sign`, `GetPublicKey`), per request ($0.03 per 10,000).
    pub const KMS_REQUEST: f64 = 0.03 / 10_000.0;
    /// SQS standard queue: per request, each 64 KiB chunk of payload one request ($0.40 per million).
    pub const SQS_REQUEST: f64 = 0.40 / 1e6;
    /// DynamoDB on-demand: per write request unit ($0.625 per million).
    pub const DDB_WRU: f64 = 0.625 / 1e6;
    /// DynamoDB on-demand: per read request unit ($0.125 per million).
    pub const DDB_RRU: f64 = 0.125 / 1e6;
    /// Lambda on arm64: per GB-second ($0.0000133334).
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    /// Lambda: per invocation ($0.20 per million).
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// The date the prices were read.
    pub const AS_OF: &str = "2026-11-23";
}

/// Memory of every Hookline function in `template.yaml`, in GB.
const LAMBDA_GB: f64 = 0.25;
/// Messages per sender invocation (`BatchSize` in `template.yaml`).
const SQS_BATCH: usize = 10;

/// One measured step: the counted calls, the Lambda invocations it took and their
/// summed duration, and how many deliveries it served.
struct Step {
    name: String,
    counts: BTreeMap<String, Tally>,
    invocations: u64,
    busy: Duration,
    /// SQS calls made by Lambda's event source mapping on the functions' behalf.
    esm_sqs_calls: u64,
    deliveries: u64,
}

impl Step {
    fn cost_per_delivery(&self) -> (f64, f64, f64, f64) {
        let (mut kms, mut sqs, mut ddb) = (0.0, self.esm_sqs_calls as f64 * price::SQS_REQUEST, 0.0);
        for (target, t) in &self.counts {
            if target.starts_with("TrentService.") {
                kms += t.calls as f64 * price::KMS_REQUEST;
            } else if target.starts_with("AmazonSQS.") {
                sqs += t.calls as f64 * price::SQS_REQUEST;
            } else {
                ddb += t.write_units * price::DDB_WRU + t.read_units * price::DDB_RRU;
            }
        }
        // Lambda bills each invocation's duration rounded up to the millisecond; the sum
        // of the measured durations is close enough at these sizes.
        let lambda = self.invocations as f64 * price::LAMBDA_REQUEST + self.busy.as_secs_f64() * LAMBDA_GB * price::LAMBDA_GB_SECOND;
        let n = self.deliveries.max(1) as f64;
        (kms / n, sqs / n, ddb / n, lambda / n)
    }

    fn print(&self) {
        let n = self.deliveries.max(1) as f64;
        let total: u64 = self.counts.values().map(|t| t.calls).sum();
        println!(
            "aws    {}: {} deliveries, {} AWS calls = {:.3} calls/delivery ({} Lambda invocation(s), {:.1} ms in handlers against moto)",
            self.name,
            self.deliveries,
            total,
            total as f64 / n,
            self.invocations,
            self.busy.as_secs_f64() * 1000.0
        );
        for (target, t) in &self.counts {
            println!(
                "         {target:<40} {:>5} calls  {:>7.3}/delivery  {:>7.2} WRU  {:>7.2} RRU",
                t.calls,
                t.calls as f64 / n,
                t.write_units,
                t.read_units
            );
        }
        if self.esm_sqs_calls > 0 {
            println!(
                "         {:<40} {:>5} calls  {:>7.3}/delivery  (ReceiveMessage + DeleteMessageBatch per batch, made by Lambda)",
                "event source mapping (SQS)",
                self.esm_sqs_calls,
                self.esm_sqs_calls as f64 / n
            );
        }
    }
}

/// Runs the measurement below once per signature scheme: the RS256 JWT signed by KMS,
/// then Standard Webhooks (HMAC with secrets sealed under a KMS key).
pub async fn run(n: usize, receiver_url: &str) -> anyhow::Result<()> {
    run_scheme(n, receiver_url, "jwt").await?;
    run_scheme(n, receiver_url, "standard_webhooks").await
}

/// Sends every queued delivery through the sender handler, in Lambda's batches, until
/// `total` are sent; the invocations and their summed duration.
async fn send_all(
    h: &hookline_domain::Hookline,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    total: usize,
) -> anyhow::Result<(u64, Duration)> {
    let (mut sent, mut invocations, mut busy, mut idle) = (0usize, 0u64, Duration::ZERO, 0);
    while sent < total && idle < 50 {
        let (event, receipts) = tests::lambda::receive(sqs, queue_url, SQS_BATCH as i32, 60).await;
        if event.records.is_empty() {
            idle += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let batch = event.records.len();
        let started = Instant::now();
        let response = sender::handle(h, event).await;
        busy += started.elapsed();
        invocations += 1;
        anyhow::ensure!(response.batch_item_failures.is_empty(), "sender reported failures");
        tests::lambda::settle(sqs, queue_url, &receipts, &response).await;
        sent += batch;
    }
    anyhow::ensure!(sent == total, "only {sent} of {total} deliveries were sent");
    Ok((invocations, busy))
}

/// Runs fan-out of one event to 1 webhook and to `n` webhooks, signing with `scheme`,
/// and the `1 + n` sends through the Lambda handlers against moto, then prints calls
/// per delivery and cost per million; then sends one more event to each and counts
/// the KMS calls of those sends, when the container has seen every webhook once.
async fn run_scheme(n: usize, receiver_url: &str, scheme: &str) -> anyhow::Result<()> {
    println!("aws    signatures: {scheme}");
    let sdk = tests::moto::sdk_config().await;
    let plain = Clients::new(&sdk);
    let resources = infra::provision(&plain, &tests::moto::prefix()).await?;
    let mut env: Vec<(String, String)> = infra::env_vars(&resources).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    env.push(("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS".into(), "true".into()));
    let config = AwsConfig::from_lookup(|k| env.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone()))?;
    let http = Arc::new(hookline_http::ReqwestHttpClient::new(&config.policy.endpoints)?);
    let counter = Counter::default();
    let counted = hookline_aws::build(&counted_clients(&sdk, &counter), &config, http.clone());
    let setup = hookline_aws::build(&plain, &config, http);

    let mut steps = Vec::new();
    let mut seen = 0;
    let mut events = Vec::new();
    for (label, fan) in [("fan-out of 1 event to 1 webhook".to_owned(), 1usize), (format!("fan-out of 1 event to {n} webhooks"), n)] {
        // A tenant of its own per step, so each event matches exactly `fan` webhooks.
        let tenant = TenantId::parse(&format!("bench{fan}"))?;
        for _ in 0..fan {
            let input = hookline_domain::webhook::WebhookInput {
                endpoint_url: receiver_url.to_owned(),
                listened_events: vec!["project.updated".into()],
                signatures: Some(vec![scheme.to_owned()]),
                ..Default::default()
            };
            // Through the API's use case, so a Standard Webhooks secret is sealed under KMS.
            let (w, secret) = hookline_domain::usecases::prepare_webhook(&setup, &tenant, input)?;
            hookline_domain::usecases::store_webhook(&setup, w, secret).await?;
        }
        let fields = serde_json::from_str(r#"{"subject_type":"project","event_type":"UPDATED","subject_id":"34"}"#)?;
        let event = Event::publish(tenant, fields, &config.policy.catalog, chrono::Utc::now())?;
        // A producer's PutItem, as other services write events straight into the table.
        setup.events.append(&event).await?;
        events.push(event);
        // The stream so far; the records of earlier steps are Lambda's past invocations.
        let mut stream = tests::lambda::read_stream(&sdk, &resources.events_table).await;
        stream.records.drain(..seen.min(stream.records.len()));
        seen += stream.records.len();
        anyhow::ensure!(stream.records.len() == 1, "expected one new stream record, found {}", stream.records.len());
        counter.take();
        let started = Instant::now();
        let response = fanout::handle(&counted, stream).await;
        let busy = started.elapsed();
        anyhow::ensure!(response.batch_item_failures.is_empty(), "fan-out reported failures");
        steps.push(Step { name: label.to_owned(), counts: counter.take(), invocations: 1, busy, esm_sqs_calls: 0, deliveries: fan as u64 });
    }

    // The sends: Lambda hands the sender batches of up to 10 messages.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let total = 1 + n;
    counter.take();
    let (invocations, busy) = send_all(&counted, &sqs, &resources.queue_url, total).await?;
    steps.push(Step {
        name: format!("{total} sends"),
        counts: counter.take(),
        invocations,
        busy,
        esm_sqs_calls: 2 * invocations,
        deliveries: total as u64,
    });

    // One more event for every webhook, stored and fanned out uncounted; its sends are
    // counted on the same (warm) sender, which has met every webhook once already.
    for e in &events {
        let again = Event::publish(
            e.tenant.clone(),
            serde_json::from_str(r#"{"subject_type":"project","event_type":"UPDATED"}"#)?,
            &config.policy.catalog,
            chrono::Utc::now(),
        )?;
        setup.events.append(&again).await?;
        hookline_domain::fanout::fan_out(&setup, &again).await?;
    }
    counter.take();
    let (warm_invocations, _) = send_all(&counted, &sqs, &resources.queue_url, total).await?;
    let warm = counter.take();

    for s in &steps {
        s.print();
    }
    let kms_calls =
        |counts: &BTreeMap<String, Tally>| counts.iter().filter(|(t, _)| t.starts_with("TrentService.")).map(|(_, t)| t.calls).sum::<u64>();
    println!(
        "aws    KMS calls per delivery ({scheme}): {:.3} on a sender's first delivery to each webhook, {:.3} once it has met them ({total} deliveries, {warm_invocations} invocations)",
        kms_calls(&steps[2].counts) as f64 / total as f64,
        kms_calls(&warm) as f64 / total as f64,
    );
    let fanout_calls: u64 = steps[1].counts.values().map(|t| t.calls).sum();
    println!(
        "aws    fan-out to {n} webhooks: {:.3} calls/delivery (target < 0.2)",
        fanout_calls as f64 / steps[1].deliveries.max(1) as f64
    );
    println!("aws    cost per million deliveries at list prices (us-east-1, {}; moto's durations stand in for Lambda's):", price::AS_OF);
    println!("         {:<22} {:>9} {:>9} {:>9} {:>9} {:>9}", "", "KMS", "SQS", "DynamoDB", "Lambda", "total");
    let send = steps[2].cost_per_delivery();
    for (label, fan) in [("fan-out 1".to_owned(), &steps[0]), (format!("fan-out {n}"), &steps[1])] {
        let f = fan.cost_per_delivery();
        let parts = [f.0 + send.0, f.1 + send.1, f.2 + send.2, f.3 + send.3];
        let total: f64 = parts.iter().sum();
        println!(
            "         {label:<22} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}   $ per million deliveries",
            parts[0] * 1e6,
            parts[1] * 1e6,
            parts[2] * 1e6,
            parts[3] * 1e6,
            total * 1e6
        );
    }
    println!(
        "         (prices: KMS RSA-2048 request $0.03/10k, SQS $0.40/M requests, DynamoDB $0.625/M WRU and $0.125/M RRU, Lambda arm64 $0.0000133334/GB-s at 256 MB and $0.20/M invocations)"
    );
    Ok(())
}
