use super::*;
use serde_json::json;

fn event() -> Value {
    json!({
        "subject_type": "project",
        "event_type": "UPDATED",
        "metadata": {"status": "active", "seats": 12, "tags": ["a", "b"], "owner": {"team": "core"}, "nums": [1, 2.0]},
        "score": 7.5,
        "big": 9007199254740993_u64,
        "neg": -3,
        "label": "m"
    })
}

#[test]
fn filters_match_exactly_the_events_they_describe() {
    let cases: &[(Value, bool)] = &[
        (json!({}), true),
        (json!({"metadata": {"status": "active"}}), true),
        (json!({"metadata": {"status": "archived"}}), false),
        (json!({"metadata": {"owner": {"team": "core"}}}), true),
        (json!({"metadata": {"seats": 12.0}}), true),
        (json!({"metadata": {"seats": {"$gte": 10, "$lt": 13}}}), true),
        (json!({"metadata": {"seats": {"$gt": 12}}}), false),
        (json!({"score": {"$lte": 7.5}}), true),
        (json!({"label": {"$gt": "a", "$lt": "n"}}), true),
        (json!({"label": {"$gt": 3}}), false),
        (json!({"event_type": {"$in": ["CREATED", "UPDATED"]}}), true),
        (json!({"event_type": {"$nin": ["CREATED", "UPDATED"]}}), false),
        (json!({"event_type": {"$ne": "DELETED"}}), true),
        (json!({"missing": {"$ne": "x"}}), true),
        (json!({"missing": {"$exists": false}}), true),
        (json!({"metadata": {"status": {"$exists": true}}}), true),
        (json!({"missing": "x"}), false),
        (json!({"metadata": {"tags": ["a", "b"]}}), true),
        (json!({"metadata": "active"}), false),
        (json!({"$or": [{"event_type": "CREATED"}, {"metadata": {"status": "active"}}]}), true),
        (json!({"$or": [{"event_type": "CREATED"}, {"label": "z"}]}), false),
        (json!({"$and": [{"event_type": "UPDATED"}, {"label": "m"}], "subject_type": "project"}), true),
        (json!({"subject_type": {"$eq": "indicator"}}), false),
        (json!({"big": 9007199254740993_u64}), true),
        (json!({"big": 9007199254740992_u64}), false),
        (json!({"big": {"$gt": 9007199254740992_u64}}), true),
        (json!({"neg": {"$lt": 0}}), true),
        (json!({"neg": {"$lt": 9007199254740993_u64}}), true),
        (json!({"metadata": {"nums": [1.0, 2]}}), true),
    ];
    for (f, want) in cases {
        let filter = Filter::parse(f.clone()).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(filter.matches(&event()), *want, "{f}");
    }
}

#[test]
fn invalid_filters_are_refused_with_the_place_of_the_problem() {
    let deep = (0..10).fold(json!("x"), |v, _| json!({ "a": v }));
    let many: serde_json::Map<String, Value> = (0..65).map(|i| (format!("f{i}"), json!(i))).collect();
    let cases: &[(Value, &str)] = &[
        (json!([1]), "filter: must be a JSON object"),
        (json!({"a": {"$regex": "x"}}), "filter.a.$regex: unknown operator"),
        (json!({"a": {"$gt": true}}), "filter.a.$gt: compares with a number or a string"),
        (json!({"a": {"$in": "x"}}), "filter.a.$in: takes a list"),
        (json!({"a": {"$exists": 1}}), "filter.a.$exists: takes true or false"),
        (json!({"a": {"$eq": 1, "b": 2}}), "filter.a: mixes operators and fields"),
        (json!({"$or": {}}), "filter.$or: must be a list"),
        (json!({"$or": []}), "filter.$or: must not be empty"),
        (json!({"$where": "1"}), "filter.$where: unknown operator here"),
        (deep, "nested deeper than 8"),
        (Value::Object(many), "more than 64 conditions"),
        (json!({"a": "x".repeat(5000)}), "larger than 4096 bytes"),
    ];
    for (f, want) in cases {
        let e = Filter::parse(f.clone()).expect_err(&f.to_string());
        assert!(e.contains(want), "{f}: {e}");
    }
}

#[test]
fn fields_are_checked_and_the_policy_stores_as_json() {
    assert_eq!(HttpMethod::parse("PUT"), Ok(HttpMethod::Put));
    assert!(HttpMethod::parse("put").is_err(), "methods are case-sensitive");
    assert!(HttpMethod::parse("GET").unwrap_err().starts_with("method:"));
    assert_eq!(PayloadFormat::parse("standard_webhooks"), Ok(PayloadFormat::StandardWebhooks));
    assert!(PayloadFormat::parse("xml").unwrap_err().starts_with("payload_format:"));
    assert!(parse_name(String::new()).is_err() && parse_name("x".repeat(101)).is_err() && parse_name("a\nb".into()).is_err());
    assert_eq!(parse_retry_schedule("1s,2m").map(|r| r.to_string()), Ok("1s,2m".to_owned()));
    for bad in ["25h", "0s", "500ms", "1x", &vec!["1s"; 21].join(",")] {
        assert!(parse_retry_schedule(bad).unwrap_err().starts_with("retry_schedule:"), "{bad}");
    }
    assert_eq!(parse_max_age("6h"), Ok(Duration::from_secs(6 * 3600)));
    assert!(parse_max_age("31d").is_err() && parse_max_age("0s").is_err());

    let p = DeliveryPolicy {
        name: Some("Billing".into()),
        method: HttpMethod::Patch,
        payload_format: PayloadFormat::StandardWebhooks,
        retry_schedule: Some(parse_retry_schedule("1s,1m").unwrap()),
        max_age: Some(Duration::from_secs(7200)),
        filter: Some(Filter::parse(json!({"metadata": {"status": "active"}})).unwrap()),
        rate_limit: Some(crate::throttle::RateLimit::parse("300/min").unwrap()),
        max_in_flight: Some(3),
    };
    let stored = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<DeliveryPolicy>(&stored).unwrap(), p);
    assert_eq!(serde_json::from_str::<DeliveryPolicy>("{}").unwrap(), DeliveryPolicy::default(), "a stored empty policy is the default");
}
