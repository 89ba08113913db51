//! A webhook's own delivery policy: its name, HTTP method, body shape, retry schedule,
//! maximum age, filter and rate limits. Every field is optional; a webhook without them behaves as
//! the deployment's defaults say. Validated here, at the boundary, with errors that
//! name the field.

use super::WebhookError;
use crate::duration::{format_duration, parse_duration};
use crate::retry::RetrySchedule;
use crate::throttle::{Limits, RateLimit, parse_max_in_flight};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::time::Duration;

/// Longest name, in characters.
pub const MAX_NAME_LEN: usize = 100;
/// Most steps of a webhook's own retry schedule.
pub const MAX_RETRY_STEPS: usize = 20;
/// Longest step of a webhook's own retry schedule.
pub const MAX_RETRY_STEP: Duration = Duration::from_secs(24 * 3600);
/// Shortest step of a webhook's own retry schedule: a tenant cannot make Hookline
/// hammer a failing receiver.
pub const MIN_RETRY_STEP: Duration = Duration::from_secs(1);
/// Longest maximum age of a delivery: 30 days.
pub const MAX_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Largest filter, as compact JSON.
pub const MAX_FILTER_BYTES: usize = 4096;
/// Deepest nesting of a filter's objects and arrays.
pub const MAX_FILTER_DEPTH: usize = 8;
/// Most conditions in one filter.
pub const MAX_FILTER_CONDITIONS: usize = 64;

/// The HTTP method deliveries use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// `POST`, the default.
    #[default]
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
}

impl HttpMethod {
    /// The method as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
        }
    }

    /// Reads a method name, as HTTP writes it (upper case).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "POST" => Ok(HttpMethod::Post),
            "PUT" => Ok(HttpMethod::Put),
            "PATCH" => Ok(HttpMethod::Patch),
            _ => Err("method: one of POST, PUT, PATCH".to_owned()),
        }
    }
}

/// The shape of a delivery's body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// `{"event": …, "webhook": …, "delivery": …}`, LogAlto's, the default.
    #[default]
    Envelope,
    /// `{"type": …, "timestamp": …, "data": …}`, the Standard Webhooks shape.
    StandardWebhooks,
}

impl PayloadFormat {
    /// The format as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadFormat::Envelope => "envelope",
            PayloadFormat::StandardWebhooks => "standard_webhooks",
        }
    }

    /// Reads a format name.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "envelope" => Ok(PayloadFormat::Envelope),
            "standard_webhooks" => Ok(PayloadFormat::StandardWebhooks),
            _ => Err("payload_format: one of envelope, standard_webhooks".to_owned()),
        }
    }
}

/// Which events a webhook gets beyond their names: a JSON object the event's fields
/// must match. A key names a field of the event; its value is the value wanted
/// (equality, numbers compared as numbers), an object of operators (`$eq`, `$ne`,
/// `$gt`, `$gte`, `$lt`, `$lte`, `$in`, `$nin`, `$exists`), or an object of the same
/// kind for a nested field. `$and` and `$or` take a list of such objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Filter(Value);

// Read back as stored, without the limits a client's filter is checked against: a
// stored filter must keep working if the limits ever tighten.
impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Filter(Value::deserialize(d)?))
    }
}

const OPERATORS: [&str; 9] = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"];

impl Filter {
    /// Checks a filter as a client sent it.
    pub fn parse(v: Value) -> Result<Self, String> {
        if serde_json::to_vec(&v).map_or(usize::MAX, |b| b.len()) > MAX_FILTER_BYTES {
            return Err(format!("filter: larger than {MAX_FILTER_BYTES} bytes"));
        }
        let Value::Object(_) = &v else { return Err("filter: must be a JSON object".to_owned()) };
        let mut conditions = 0;
        check_object(&v, "filter", 1, &mut conditions)?;
        if conditions > MAX_FILTER_CONDITIONS {
            return Err(format!("filter: more than {MAX_FILTER_CONDITIONS} conditions"));
        }
        Ok(Filter(v))
    }

    /// The filter as JSON.
    pub fn as_json(&self) -> &Value {
        &self.0
    }

    /// Whether an event's fields (its document) match.
    pub fn matches(&self, event: &Value) -> bool {
        object_matches(&self.0, Some(event))
    }
}

fn check_object(v: &Value, at: &str, depth: usize, conditions: &mut usize) -> Result<(), String> {
    if depth > MAX_FILTER_DEPTH {
        return Err(format!("{at}: nested deeper than {MAX_FILTER_DEPTH}"));
    }
    let Value::Object(map) = v else { return Err(format!("{at}: must be an object")) };
    for (k, cond) in map {
        let here = format!("{at}.{k}");
        match k.as_str() {
            "$and" | "$or" => {
                let Value::Array(items) = cond else { return Err(format!("{here}: must be a list of filter objects")) };
                if items.is_empty() {
                    return Err(format!("{here}: must not be empty"));
                }
                for (i, item) in items.iter().enumerate() {
                    check_object(item, &format!("{here}[{i}]"), depth + 1, conditions)?;
                }
            }
            k if k.starts_with('$') => return Err(format!("{here}: unknown operator here (fields cannot start with $)")),
            _ => check_condition(cond, &here, depth + 1, conditions)?,
        }
    }
    Ok(())
}

fn is_operators(map: &serde_json::Map<String, Value>) -> bool {
    !map.is_empty() && map.keys().all(|k| k.starts_with('$') && k != "$and" && k != "$or")
}

fn check_condition(cond: &Value, at: &str, depth: usize, conditions: &mut usize) -> Result<(), String> {
    if depth > MAX_FILTER_DEPTH {
        return Err(format!("{at}: nested deeper than {MAX_FILTER_DEPTH}"));
    }
    match cond {
        Value::Object(map) if is_operators(map) => {
            for (op, arg) in map {
                *conditions += 1;
                let here = format!("{at}.{op}");
                match op.as_str() {
                    "$eq" | "$ne" => {}
                    "$gt" | "$gte" | "$lt" | "$lte" if arg.is_number() || arg.is_string() => {}
                    "$gt" | "$gte" | "$lt" | "$lte" => return Err(format!("{here}: compares with a number or a string")),
                    "$in" | "$nin" if arg.is_array() => {}
                    "$in" | "$nin" => return Err(format!("{here}: takes a list")),
                    "$exists" if arg.is_boolean() => {}
                    "$exists" => return Err(format!("{here}: takes true or false")),
                    _ => return Err(format!("{here}: unknown operator; use one of {}", OPERATORS.join(", "))),
                }
            }
            Ok(())
        }
        Value::Object(map) if map.keys().any(|k| k.starts_with('$') && k != "$and" && k != "$or") => {
            Err(format!("{at}: mixes operators and fields"))
        }
        Value::Object(_) => check_object(cond, at, depth, conditions),
        _ => {
            *conditions += 1;
            Ok(())
        }
    }
}

fn object_matches(filter: &Value, value: Option<&Value>) -> bool {
    let Value::Object(map) = filter else { return false };
    map.iter().all(|(k, cond)| match k.as_str() {
        "$and" => cond.as_array().is_some_and(|items| items.iter().all(|f| object_matches(f, value))),
        "$or" => cond.as_array().is_some_and(|items| items.iter().any(|f| object_matches(f, value))),
        _ => condition_matches(cond, value.and_then(|v| v.get(k))),
    })
}

fn condition_matches(cond: &Value, value: Option<&Value>) -> bool {
    match cond {
        Value::Object(map) if is_operators(map) => map.iter().all(|(op, arg)| operator_matches(op, arg, value)),
        Value::Object(_) => value.is_some_and(Value::is_object) && object_matches(cond, value),
        _ => value.is_some_and(|v| same(v, cond)),
    }
}

fn operator_matches(op: &str, arg: &Value, value: Option<&Value>) -> bool {
    match op {
        "$eq" => value.is_some_and(|v| same(v, arg)),
        "$ne" => !value.is_some_and(|v| same(v, arg)),
        "$gt" => order(value, arg).is_some_and(|o| o.is_gt()),
        "$gte" => order(value, arg).is_some_and(|o| o.is_ge()),
        "$lt" => order(value, arg).is_some_and(|o| o.is_lt()),
        "$lte" => order(value, arg).is_some_and(|o| o.is_le()),
        "$in" => value.is_some_and(|v| arg.as_array().is_some_and(|a| a.iter().any(|x| same(v, x)))),
        "$nin" => !value.is_some_and(|v| arg.as_array().is_some_and(|a| a.iter().any(|x| same(v, x)))),
        "$exists" => value.is_some() == arg.as_bool().unwrap_or(true),
        _ => false,
    }
}

/// Equality, numbers by value (`1` equals `1.0`), inside lists and objects too.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_order(x, y) == Some(std::cmp::Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}

/// Order of two numbers: exact when both are integers (ids beyond 2^53 included),
/// as floating point otherwise.
fn number_order(x: &serde_json::Number, y: &serde_json::Number) -> Option<std::cmp::Ordering> {
    match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
        (Some(a), Some(b), _, _) => Some(a.cmp(&b)),
        (_, _, Some(a), Some(b)) => Some(a.cmp(&b)),
        (Some(_), None, _, Some(_)) => Some(std::cmp::Ordering::Less),
        (None, Some(_), Some(_), _) => Some(std::cmp::Ordering::Greater),
        _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

/// Order of two numbers or two strings; `None` for anything else.
fn order(value: Option<&Value>, arg: &Value) -> Option<std::cmp::Ordering> {
    match (value?, arg) {
        (Value::Number(x), Value::Number(y)) => number_order(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// A webhook's own delivery policy; the default is the deployment's behaviour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPolicy {
    /// Shown in lists and the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The method deliveries use.
    #[serde(default)]
    pub method: HttpMethod,
    /// The body's shape.
    #[serde(default)]
    pub payload_format: PayloadFormat,
    /// Its own retry schedule, instead of the deployment's.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "schedule_text")]
    pub retry_schedule: Option<RetrySchedule>,
    /// A delivery older than this fails for good instead of being retried.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "seconds")]
    pub max_age: Option<Duration>,
    /// Which events it gets beyond their names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// At most this many requests a second or minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// At most this many attempts in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
}

impl DeliveryPolicy {
    /// Its rate limits, if it has any.
    pub fn limits(&self) -> Option<Limits> {
        let limits = Limits { rate: self.rate_limit, max_in_flight: self.max_in_flight };
        (limits.rate.is_some() || limits.max_in_flight.is_some()).then_some(limits)
    }

    /// The schedule its deliveries retry on: its own, or `default`.
    pub fn retry<'a>(&'a self, default: &'a RetrySchedule) -> &'a RetrySchedule {
        self.retry_schedule.as_ref().unwrap_or(default)
    }
}

/// A delivery policy's fields as a client sends them. On create, `None` is the
/// default; on update, `None` leaves a field as it is and `Some(None)` (JSON `null`)
/// puts the default back.
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    /// A name.
    pub name: Option<Option<String>>,
    /// `POST`, `PUT` or `PATCH`.
    pub method: Option<Option<String>>,
    /// `envelope` or `standard_webhooks`.
    pub payload_format: Option<Option<String>>,
    /// A retry schedule like `1m,10m,1h`.
    pub retry_schedule: Option<Option<String>>,
    /// A duration like `6h`.
    pub max_age: Option<Option<String>>,
    /// A filter object.
    pub filter: Option<Option<serde_json::Value>>,
    /// A rate like `5/s` or `300/min`.
    pub rate_limit: Option<Option<String>>,
    /// A count of attempts.
    pub max_in_flight: Option<Option<u64>>,
}

impl PolicyInput {
    /// `policy` with these fields applied.
    pub(super) fn apply(self, mut policy: DeliveryPolicy) -> Result<DeliveryPolicy, WebhookError> {
        let bad = |code: &'static str| move |m: String| WebhookError::InvalidPolicy(code, m);
        if let Some(v) = self.name {
            policy.name = v.map(parse_name).transpose().map_err(bad("invalid_name"))?;
        }
        if let Some(v) = self.method {
            policy.method = v.map(|m| HttpMethod::parse(&m)).transpose().map_err(bad("invalid_method"))?.unwrap_or_default();
        }
        if let Some(v) = self.payload_format {
            policy.payload_format =
                v.map(|f| PayloadFormat::parse(&f)).transpose().map_err(bad("invalid_payload_format"))?.unwrap_or_default();
        }
        if let Some(v) = self.retry_schedule {
            policy.retry_schedule = v.map(|r| parse_retry_schedule(&r)).transpose().map_err(bad("invalid_retry_schedule"))?;
        }
        if let Some(v) = self.max_age {
            policy.max_age = v.map(|a| parse_max_age(&a)).transpose().map_err(bad("invalid_max_age"))?;
        }
        if let Some(v) = self.filter {
            policy.filter = v.map(Filter::parse).transpose().map_err(bad("invalid_filter"))?;
        }
        if let Some(v) = self.rate_limit {
            policy.rate_limit = v.map(|r| RateLimit::parse(&r)).transpose().map_err(bad("invalid_rate_limit"))?;
        }
        if let Some(v) = self.max_in_flight {
            policy.max_in_flight = v.map(parse_max_in_flight).transpose().map_err(bad("invalid_max_in_flight"))?;
        }
        Ok(policy)
    }
}

/// Checks a name: 1 to [`MAX_NAME_LEN`] characters, no control characters.
pub fn parse_name(s: String) -> Result<String, String> {
    let n = s.chars().count();
    if n == 0 || n > MAX_NAME_LEN || s.chars().any(char::is_control) {
        return Err(format!("name: 1 to {MAX_NAME_LEN} characters, no control characters"));
    }
    Ok(s)
}

/// Checks a webhook's own retry schedule: the deployment's syntax, at most
/// [`MAX_RETRY_STEPS`] steps of at most [`MAX_RETRY_STEP`] each.
pub fn parse_retry_schedule(s: &str) -> Result<RetrySchedule, String> {
    let schedule = RetrySchedule::parse(s).map_err(|e| format!("retry_schedule: {e}"))?;
    if schedule.delays().len() > MAX_RETRY_STEPS {
        return Err(format!("retry_schedule: at most {MAX_RETRY_STEPS} steps"));
    }
    if schedule.delays().iter().any(|d| *d > MAX_RETRY_STEP || *d < MIN_RETRY_STEP) {
        return Err("retry_schedule: each step from 1s to 24h".to_owned());
    }
    Ok(schedule)
}

/// Checks a maximum age: a duration from one second to [`MAX_MAX_AGE`].
pub fn parse_max_age(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| format!("max_age: {e}"))?;
    if d < Duration::from_secs(1) || d > MAX_MAX_AGE {
        return Err("max_age: from 1s to 30 days (720h)".to_owned());
    }
    Ok(d)
}

mod schedule_text {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<RetrySchedule>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(r) => s.serialize_str(&r.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RetrySchedule>, D::Error> {
        Option::<String>::deserialize(d)?.map(|t| RetrySchedule::parse(&t).map_err(serde::de::Error::custom)).transpose()
    }
}

mod seconds {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?.map(|t| parse_duration(&t).map_err(serde::de::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests;
