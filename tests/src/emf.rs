//! CloudWatch's Embedded Metric Format, as its specification states it: the JSON Schema
//! of the `_aws` metadata (with an independent validator, the `jsonschema` crate), and
//! the rules the schema cannot say (every dimension and metric named is a member of the
//! root, metric values are numbers or at most 100 of them, dimension values strings).

use serde_json::{Value, json};

/// The specification's units.
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

fn schema() -> Value {
    json!({
        "type": "object",
        "required": ["_aws"],
        "properties": {
            "_aws": {
                "type": "object",
                "required": ["Timestamp", "CloudWatchMetrics"],
                "properties": {
                    "Timestamp": {"type": "integer", "minimum": 0},
                    "CloudWatchMetrics": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["Namespace", "Dimensions", "Metrics"],
                            "properties": {
                                "Namespace": {"type": "string", "minLength": 1, "maxLength": 1024},
                                "Dimensions": {
                                    "type": "array",
                                    "items": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 250}, "maxItems": 30}
                                },
                                "Metrics": {
                                    "type": "array",
                                    "maxItems": 100,
                                    "items": {
                                        "type": "object",
                                        "required": ["Name"],
                                        "properties": {
                                            "Name": {"type": "string", "minLength": 1, "maxLength": 1024},
                                            "Unit": {"type": "string", "enum": UNITS},
                                            "StorageResolution": {"type": "integer", "enum": [1, 60]}
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// Parses one line and checks it is an EMF document; returns it, or what is wrong.
pub fn check(line: &str) -> Result<Value, String> {
    let doc: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let validator = jsonschema::validator_for(&schema()).map_err(|e| e.to_string())?;
    if let Some(e) = validator.iter_errors(&doc).next() {
        return Err(format!("against the schema: {e} at {}", e.instance_path()));
    }
    for directive in doc["_aws"]["CloudWatchMetrics"].as_array().into_iter().flatten() {
        for dims in directive["Dimensions"].as_array().into_iter().flatten() {
            for d in dims.as_array().into_iter().flatten() {
                let key = d.as_str().unwrap_or_default();
                if !doc[key].is_string() {
                    return Err(format!("dimension {key} is not a string member of the root"));
                }
            }
        }
        for m in directive["Metrics"].as_array().into_iter().flatten() {
            let name = m["Name"].as_str().unwrap_or_default();
            match &doc[name] {
                Value::Number(_) => {}
                Value::Array(values) if values.len() <= 100 && values.iter().all(Value::is_number) => {}
                other => return Err(format!("metric {name} has no numeric value in the root: {other}")),
            }
        }
    }
    Ok(doc)
}
