//! AWS mode against moto's server: API calls per delivery, counted in the SDK clients
//! by an interceptor, and what they cost per million deliveries at list prices.
//!
//! The handlers are the Lambdas' own (`fanout::handle`, `sender::handle`), fed with the
//! event shapes Lambda sends: stream records read through the DynamoDB Streams API and
//! SQS messages received from the queue. Only the handlers' clients are counted; the
//! reads that play Lambda's event source mappings are not (their cost is added from
//! what Lambda does: one `ReceiveMessage` and one `DeleteMessageBatch` per batch).

use aws_lambda_events::dynamodb::Event as DynamoDbEvent;
use aws_sdk_dynamodb::config::interceptors::{BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use hookline_aws::{AwsConfig, Clients};
use hookline_domain::Hookline;
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
        // Which table, for DynamoDB calls: `PutItem deliveries`.
        const TABLES: [&str; 7] = ["api-keys", "signing-keys", "webhooks", "events", "idempotency", "deliveries", "attempts"];
        let table = body.get("TableName").and_then(|v| v.as_str()).and_then(|t| TABLES.iter().find(|s| t.ends_with(*s)));
        let target = match table {
            Some(t) => format!("{target} {t}"),
            None => target,
        };
        // Sizes are of the JSON on the wire, a little above DynamoDB's own item sizes.
        // An UpdateItem is billed by the size of the whole item, which the request does
        // not show; the bench's delivery items stay under 1 KB (the run checks it), so
        // one unit each is right for them.
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
        // Tables with an index pay a write to it for each item written to them (the
        // events table's `by_created_at`, which holds whole items).
        let writes = if table == Some(&"events") && writes > 0.0 { 2.0 * writes } else { writes };
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
    /// KMS: requests (`Sign` and `GetPublicKey` with an RSA 2048 key, `Decrypt`, `Encrypt`), per request ($0.03 per 10,000).
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
    /// API Gateway HTTP API: per request, the first 300 million a month ($1.00 per million).
    pub const API_GATEWAY_REQUEST: f64 = 1.00 / 1e6;
    /// EventBridge: per custom event published ($1.00 per million).
    pub const EVENTBRIDGE_EVENT: f64 = 1.00 / 1e6;
    /// EventBridge API destinations: per invocation ($0.20 per million).
    pub const EVENTBRIDGE_API_DESTINATION: f64 = 0.20 / 1e6;
    /// The date the prices were read.
    pub const AS_OF: &str = "2026-11-23";
}

mod bill;
mod flaky;

use bill::{BillLine, Cost, Step};

/// Messages per sender invocation (`BatchSize` in `template.yaml`).
const SQS_BATCH: usize = 10;

/// Events in the stream batch of a fan-out step: at fan-out 1, ten (a busy stream
/// hands the fan-out function up to 100 records at once), else one.
fn events_at(fan: usize) -> usize {
    if fan == 1 { 10 } else { 1 }
}

/// Runs the measurement below for each way of signing: the RS256 JWT signed by KMS,
/// the JWT signed with a KMS-wrapped key, and Standard Webhooks (HMAC with secrets
/// sealed under a KMS key, the same in either mode); then prints the bill.
pub async fn run(n: usize, receiver_url: &str) -> anyhow::Result<()> {
    let mut bill = Vec::new();
    for (mode, scheme, label) in
        [("kms", "jwt", "JWT, kms"), ("wrapped", "jwt", "JWT, wrapped"), ("kms", "standard_webhooks", "Standard Webhooks")]
    {
        bill.extend(run_scheme(n, receiver_url, mode, scheme, label).await?);
    }
    bill::print(&bill);
    Ok(())
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

/// Creates `count` webhooks of `tenant` to `url` (`{url}/{i}` when `per_path`), through
/// the API's use case, so a Standard Webhooks secret is sealed under KMS.
async fn webhooks(setup: &Hookline, tenant: &TenantId, count: usize, url: &str, per_path: bool, scheme: &str) -> anyhow::Result<()> {
    for i in 0..count {
        let input = hookline_domain::webhook::WebhookInput {
            endpoint_url: if per_path { format!("{url}/{i}") } else { url.to_owned() },
            listened_events: vec!["project.updated".into()],
            signatures: Some(vec![scheme.to_owned()]),
            ..Default::default()
        };
        let (w, secret) = hookline_domain::usecases::prepare_webhook(setup, tenant, input)?;
        hookline_domain::usecases::store_webhook(setup, w, secret).await?;
    }
    Ok(())
}

/// `count` events of `tenant`, written as a producer writes them (counted when `h`
/// counts), and the stream records they made, as one batch for the fan-out function.
async fn produce(
    h: &Hookline,
    sdk: &aws_config::SdkConfig,
    table: &str,
    tenant: &TenantId,
    count: usize,
    seen: &mut usize,
) -> anyhow::Result<DynamoDbEvent> {
    for _ in 0..count {
        let fields = serde_json::from_str(r#"{"subject_type":"project","event_type":"UPDATED","subject_id":"34"}"#)?;
        let event = Event::publish(tenant.clone(), fields, &h.policy.catalog, chrono::Utc::now())?;
        h.events.append(&event).await?;
    }
    // The stream so far; the records before are Lambda's past invocations.
    let mut stream = tests::lambda::read_stream(sdk, table).await;
    stream.records.drain(..(*seen).min(stream.records.len()));
    *seen += stream.records.len();
    anyhow::ensure!(stream.records.len() == count, "expected {count} new stream records, found {}", stream.records.len());
    Ok(stream)
}

/// Runs fan-out of one event to 1, 10 and `n` webhooks (the producer's write of the
/// event counted with it), signing as `mode` and `scheme` say, then the sends through
/// the Lambda handlers against moto, and prints calls and write units per delivery.
/// Then: the KMS calls of a second round of sends (a warm sender); a replay of the
/// fan-out of 10 (a stream batch handed out again) and what its copies cost; and one
/// delivery that succeeds on its third attempt. Returns the bill's lines.
async fn run_scheme(n: usize, receiver_url: &str, mode: &str, scheme: &str, label: &str) -> anyhow::Result<Vec<BillLine>> {
    println!("aws    signing: {label}");
    let sdk = tests::moto::sdk_config().await;
    let plain = Clients::new(&sdk);
    let resources = infra::provision(&plain, &tests::moto::prefix()).await?;
    let mut env: Vec<(String, String)> = infra::env_vars(&resources).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    env.push(("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS".into(), "true".into()));
    env.push(("HOOKLINE_SIGNING_MODE".into(), mode.into()));
    env.push(("HOOKLINE_RETRY_SCHEDULE".into(), "1s,1s".into()));
    let config = AwsConfig::from_lookup(|k| env.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone()))?;
    let http = Arc::new(hookline_http::ReqwestHttpClient::new(&config.policy.endpoints)?);
    let counter = Counter::default();
    let counted = hookline_aws::build(&counted_clients(&sdk, &counter), &config, http.clone());
    let setup = hookline_aws::build(&plain, &config, http);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let table = &resources.events_table;

    let fans = [1, 10, n];
    let mut steps = Vec::new();
    // CPU of the handlers, from this process's CPU time (moto runs apart; the receiver
    // the sends go to runs here, so this is an upper bound).
    let (mut fanout_cpu, mut fanned) = (0.0, 0usize);
    let (mut seen, mut replay) = (0, None);
    for fan in fans {
        // A tenant of its own per step, so each event matches exactly `fan` webhooks.
        let tenant = TenantId::parse(&format!("bench{fan}"))?;
        webhooks(&setup, &tenant, fan, receiver_url, false, scheme).await?;
        counter.take();
        let stream = produce(&counted, &sdk, table, &tenant, events_at(fan), &mut seen).await?;
        if fan == 10 {
            replay = Some(stream.clone());
        }
        let (started, cpu) = (Instant::now(), crate::procfs::own_cpu_seconds());
        let response = fanout::handle(&counted, stream).await;
        let busy = started.elapsed();
        fanout_cpu += crate::procfs::own_cpu_seconds() - cpu;
        fanned += fan * events_at(fan);
        anyhow::ensure!(response.batch_item_failures.is_empty(), "fan-out reported failures");
        let name =
            format!("fan-out of {} event(s) in one stream batch to {fan} webhook(s) each, the producers' writes included", events_at(fan));
        steps.push(Step {
            name,
            counts: counter.take(),
            invocations: 1,
            busy,
            memory_gb: bill::FANOUT_GB,
            esm_sqs_calls: 0,
            deliveries: (fan * events_at(fan)) as u64,
        });
    }

    // The sends: Lambda hands the sender batches of up to 10 messages.
    let total: usize = fans.iter().map(|f| f * events_at(*f)).sum();
    counter.take();
    let cpu = crate::procfs::own_cpu_seconds();
    let (invocations, busy) = send_all(&counted, &sqs, &resources.queue_url, total).await?;
    let send_cpu = crate::procfs::own_cpu_seconds() - cpu;
    let sends = Step {
        name: format!("{total} sends"),
        counts: counter.take(),
        invocations,
        busy,
        memory_gb: bill::SENDER_GB,
        esm_sqs_calls: 2 * invocations,
        deliveries: total as u64,
    };

    // One more event for every tenant, stored and fanned out uncounted; its sends are
    // counted on the same (warm) sender, which has met every webhook once already.
    for fan in fans {
        let tenant = TenantId::parse(&format!("bench{fan}"))?;
        let stream = produce(&setup, &sdk, table, &tenant, events_at(fan), &mut seen).await?;
        anyhow::ensure!(fanout::handle(&setup, stream).await.batch_item_failures.is_empty());
    }
    counter.take();
    let (warm_invocations, _) = send_all(&counted, &sqs, &resources.queue_url, total).await?;
    let warm = Step {
        name: "warm".into(),
        counts: counter.take(),
        invocations: warm_invocations,
        busy: Duration::ZERO,
        memory_gb: 0.0,
        esm_sqs_calls: 0,
        deliveries: total as u64,
    };

    // A replayed stream batch: the fan-out of 10 handed out again after its deliveries
    // were made. Its copies are queued again and found stale by the sender.
    counter.take();
    let started = Instant::now();
    anyhow::ensure!(fanout::handle(&counted, replay.expect("fan-out of 10")).await.batch_item_failures.is_empty());
    let fan_busy = started.elapsed();
    let (replay_invocations, replay_busy) = send_all(&counted, &sqs, &resources.queue_url, 10).await?;
    let replayed = Step {
        name: "a replayed fan-out of 10 (stream batch handed out again) and its 10 stale copies".into(),
        counts: counter.take(),
        invocations: 1 + replay_invocations,
        busy: fan_busy + replay_busy,
        memory_gb: bill::SENDER_GB,
        esm_sqs_calls: 2 * replay_invocations,
        deliveries: 10,
    };

    // One delivery answered 503 twice, then 200: fan-out, and three attempts.
    let flaky = flaky::start().await?;
    let tenant = TenantId::parse("benchretry")?;
    webhooks(&setup, &tenant, 1, &flaky, true, scheme).await?;
    counter.take();
    let stream = produce(&counted, &sdk, table, &tenant, 1, &mut seen).await?;
    anyhow::ensure!(fanout::handle(&counted, stream).await.batch_item_failures.is_empty());
    send_all(&counted, &sqs, &resources.queue_url, 3).await?;
    let retried = Step {
        name: "one delivery that succeeds on its third attempt (fan-out, producer's write and sends)".into(),
        counts: counter.take(),
        invocations: 0,
        busy: Duration::ZERO,
        memory_gb: 0.0,
        esm_sqs_calls: 0,
        deliveries: 1,
    };

    for s in steps.iter().chain([&sends, &replayed, &retried]) {
        s.print();
    }
    // The bill prices a sender in steady state: KMS calls as in the warm round (a
    // container serves many deliveries to each webhook), the rest as measured cold.
    let send = Cost { kms: warm.cost_per_delivery().kms, ..sends.cost_per_delivery() };
    let units = |s: &Step| s.cost_per_delivery().write_units;
    let event_write = steps[0].write_units_on("events");
    println!(
        "aws    DynamoDB write units per delivery ({label}): {:.2} fan-out 1 + {:.2} send = {:.2} for a first-attempt success (target <= 3; the producer's event write, {:.2} with its index, apart); {:.2} for one that succeeds on its third attempt, the event write included",
        units(&steps[0]) - event_write,
        send.write_units,
        units(&steps[0]) - event_write + send.write_units,
        event_write,
        units(&retried),
    );
    // Lambda gives a function CPU in proportion to its memory: a full vCPU at 1,769 MB.
    let vcpu = bill::SENDER_GB * 1024.0 / 1769.0;
    println!(
        "aws    CPU per delivery ({label}): fan-out {:.2} ms, send {:.2} ms (this process: handler, SDK and the receiver; moto apart; 10 ms resolution); at 256 MB, {:.2} of a vCPU, that is {:.1} ms and {:.1} ms of billed time",
        1000.0 * fanout_cpu / fanned as f64,
        1000.0 * send_cpu / total as f64,
        vcpu,
        1000.0 * fanout_cpu / fanned as f64 / vcpu,
        1000.0 * send_cpu / total as f64 / vcpu,
    );
    let largest = largest_item(&plain.dynamodb, &resources.deliveries_table).await?;
    println!(
        "aws    largest delivery item after the run: {largest} bytes (DynamoDB's measure, estimated): each write to it costs {} unit(s)",
        largest.div_ceil(1024)
    );
    println!(
        "aws    KMS calls per delivery ({label}): {:.3} on a sender's first delivery to each webhook, {:.3} once it has met them ({total} deliveries, {warm_invocations} invocations)",
        sends.calls("TrentService.") as f64 / total as f64,
        warm.calls("TrentService.") as f64 / total as f64,
    );
    let r = replayed.cost_per_delivery();
    println!(
        "aws    a replayed stream batch ({label}): ${:.2} per million replayed deliveries ({:.2} WRU, {:.2} RRU, {:.2} SQS requests each); no copy waited out a visibility timeout",
        r.total() * 1e6,
        r.write_units,
        r.read_units,
        (replayed.calls("AmazonSQS.") + replayed.esm_sqs_calls) as f64 / 10.0,
    );
    Ok(fans
        .iter()
        .zip(&steps)
        .map(|(fan, step)| BillLine { label: label.to_owned(), fan: *fan, cost: step.cost_per_delivery() + send })
        .collect())
}

/// The size of the largest item of `table` as DynamoDB measures it (attribute names and
/// values; lists and maps with their per-element overhead), estimated.
async fn largest_item(client: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<usize> {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    fn size(v: &V) -> usize {
        match v {
            V::S(s) | V::N(s) => s.len(),
            V::B(b) => b.as_ref().len(),
            V::L(l) => 3 + l.iter().map(|v| 1 + size(v)).sum::<usize>(),
            V::M(m) => 3 + m.iter().map(|(k, v)| 1 + k.len() + size(v)).sum::<usize>(),
            _ => 1,
        }
    }
    let (mut largest, mut start) = (0, None);
    loop {
        let out = client.scan().table_name(table).set_exclusive_start_key(start).send().await?;
        for item in out.items() {
            largest = largest.max(item.iter().map(|(k, v)| k.len() + size(v)).sum());
        }
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(largest),
        }
    }
}
