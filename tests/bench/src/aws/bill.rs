//! What the counted calls cost: per step, per delivery, and the bill per million
//! deliveries at list prices beside EventBridge API destinations'.

use super::{Tally, price};
use std::collections::BTreeMap;
use std::time::Duration;

/// Memory of the fan-out function in `template.yaml`, in GB.
pub const FANOUT_GB: f64 = 0.25;
/// Memory of the sender function in `template.yaml`, in GB.
pub const SENDER_GB: f64 = 0.25;

/// One measured step: the counted calls, the Lambda invocations it took and their
/// summed duration, and how many deliveries it served.
pub struct Step {
    pub name: String,
    pub counts: BTreeMap<String, Tally>,
    pub invocations: u64,
    pub busy: Duration,
    /// The function's memory, in GB.
    pub memory_gb: f64,
    /// SQS calls made by Lambda's event source mapping on the functions' behalf.
    pub esm_sqs_calls: u64,
    pub deliveries: u64,
}

/// Dollars (and DynamoDB units) per delivery, by service.
#[derive(Debug, Default, Clone, Copy)]
pub struct Cost {
    pub kms: f64,
    pub sqs: f64,
    pub dynamodb: f64,
    pub lambda: f64,
    pub write_units: f64,
    pub read_units: f64,
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            kms: self.kms + o.kms,
            sqs: self.sqs + o.sqs,
            dynamodb: self.dynamodb + o.dynamodb,
            lambda: self.lambda + o.lambda,
            write_units: self.write_units + o.write_units,
            read_units: self.read_units + o.read_units,
        }
    }
}

impl Cost {
    pub fn total(&self) -> f64 {
        self.kms + self.sqs + self.dynamodb + self.lambda
    }
}

impl Step {
    /// Write units per delivery on one table.
    pub fn write_units_on(&self, table: &str) -> f64 {
        let suffix = format!(" {table}");
        self.counts.iter().filter(|(t, _)| t.ends_with(&suffix)).map(|(_, t)| t.write_units).sum::<f64>() / self.deliveries.max(1) as f64
    }

    pub fn calls(&self, prefix: &str) -> u64 {
        self.counts.iter().filter(|(t, _)| t.starts_with(prefix)).map(|(_, t)| t.calls).sum()
    }

    pub fn cost_per_delivery(&self) -> Cost {
        let mut c = Cost { sqs: self.esm_sqs_calls as f64 * price::SQS_REQUEST, ..Cost::default() };
        for (target, t) in &self.counts {
            if target.starts_with("TrentService.") {
                c.kms += t.calls as f64 * price::KMS_REQUEST;
            } else if target.starts_with("AmazonSQS.") {
                c.sqs += t.calls as f64 * price::SQS_REQUEST;
            } else {
                c.dynamodb += t.write_units * price::DDB_WRU + t.read_units * price::DDB_RRU;
                c.write_units += t.write_units;
                c.read_units += t.read_units;
            }
        }
        // Lambda bills each invocation's duration rounded up to the millisecond; the sum
        // of the measured durations is close enough at these sizes.
        c.lambda = self.invocations as f64 * price::LAMBDA_REQUEST + self.busy.as_secs_f64() * self.memory_gb * price::LAMBDA_GB_SECOND;
        let n = self.deliveries.max(1) as f64;
        Cost {
            kms: c.kms / n,
            sqs: c.sqs / n,
            dynamodb: c.dynamodb / n,
            lambda: c.lambda / n,
            write_units: c.write_units / n,
            read_units: c.read_units / n,
        }
    }

    pub fn print(&self) {
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
                "         {target:<52} {:>5} calls  {:>7.3}/delivery  {:>7.2} WRU  {:>7.2} RRU",
                t.calls,
                t.calls as f64 / n,
                t.write_units,
                t.read_units
            );
        }
        if self.esm_sqs_calls > 0 {
            println!(
                "         {:<52} {:>5} calls  {:>7.3}/delivery  (ReceiveMessage + DeleteMessageBatch per batch, made by Lambda)",
                "event source mapping (SQS)",
                self.esm_sqs_calls,
                self.esm_sqs_calls as f64 / n
            );
        }
    }
}

/// One line of the bill: a signing mode and scheme at one fan-out.
pub struct BillLine {
    pub label: String,
    pub fan: usize,
    /// Fan-out (the producer's event write included) and send, per delivery.
    pub cost: Cost,
}

/// Prints the bill per million deliveries, with API Gateway's share when events are
/// published through the API, and EventBridge API destinations at the same fan-out.
pub fn print(lines: &[BillLine]) {
    println!(
        "aws    bill per million deliveries at list prices (us-east-1, read {}; a warm sender's KMS calls; Lambda at moto's durations, which overstate it):",
        price::AS_OF
    );
    println!(
        "         {:<26} {:>6} {:>7} {:>7} {:>9} {:>7} {:>8} {:>7} {:>7} | {:>9} {:>11}",
        "signing, fan-out", "KMS", "SQS", "DynamoDB", "(WRU/RRU)", "Lambda", "total", "+APIGW", "=via API", "EB API dst", "Hookline/EB"
    );
    for l in lines {
        let m = 1e6;
        let c = &l.cost;
        // Publishing through the API instead: one HTTP API request per event.
        let api_gateway = price::API_GATEWAY_REQUEST / l.fan as f64;
        let eventbridge = price::EVENTBRIDGE_EVENT / l.fan as f64 + price::EVENTBRIDGE_API_DESTINATION;
        println!(
            "         {:<26} {:>6.2} {:>7.2} {:>8.2} {:>4.2}/{:<4.2} {:>7.2} {:>8.2} {:>7.2} {:>8.2} | {:>9.2} {:>11.2}",
            format!("{}, {}", l.label, l.fan),
            c.kms * m,
            c.sqs * m,
            c.dynamodb * m,
            c.write_units,
            c.read_units,
            c.lambda * m,
            c.total() * m,
            api_gateway * m,
            (c.total() + api_gateway) * m,
            eventbridge * m,
            c.total() / eventbridge
        );
    }
    println!(
        "         (KMS $0.03/10k requests; SQS $0.40/M requests; DynamoDB $0.625/M WRU, $0.125/M RRU; Lambda arm64 $0.0000133334/GB-s at {} MB fan-out, {} MB sender, $0.20/M invocations; \
         HTTP API $1.00/M requests; EventBridge $1.00/M events + API destinations $0.20/M invocations. WRU/RRU: request units per delivery, the producer's event write (with its index) included.)",
        (FANOUT_GB * 1024.0) as u32,
        (SENDER_GB * 1024.0) as u32
    );
}
