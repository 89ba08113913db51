//! Reads Prometheus text with Prometheus's own Python parser (`prometheus_client`,
//! pinned in `tests/tools.sh`, installed into `.tools/verifiers`): an independent check
//! that local mode's `/metrics` is valid exposition format, and its samples.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// One sample: its name (with `_total`, `_bucket`, … as exposed) and labels.
pub type Series = (String, BTreeMap<String, String>);

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// Every sample of `text` with its value, or why the parser refused the text.
pub fn parse(text: &str) -> Result<BTreeMap<Series, f64>, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned();
    let python = root.join(".tools/verifiers/bin/python");
    assert!(python.exists(), "prometheus_client is not installed at {}; run `bash tests/run.sh`", python.display());
    let mut child = Command::new(python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the parser");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("parser");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let samples: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok(samples
        .into_iter()
        .map(|s| {
            let labels = s["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            ((s["name"].as_str().unwrap_or_default().to_owned(), labels), s["value"].as_f64().unwrap_or(f64::NAN))
        })
        .collect())
}

/// The value of `name` with `labels` (`[("outcome", "2xx")]`); panics when the series
/// is not exposed, so a zero is checked as a zero, not as an absence.
pub fn value(samples: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let key = (name.to_owned(), labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    samples.get(&key).copied().unwrap_or_else(|| panic!("{name} {labels:?} is not exposed"))
}
