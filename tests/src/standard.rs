//! Verifies Standard Webhooks deliveries with receivers' own libraries (the
//! `standardwebhooks` and `svix` Python packages, pinned in `tests/tools.sh` and
//! installed by `tests/run.sh` into `.tools/verifiers`): independent of Hookline's
//! signing code.

use base64::Engine;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The libraries a receiver may verify with.
pub const LIBRARIES: [&str; 2] = ["standardwebhooks", "svix"];

/// Whether `library` accepts a delivery of `body` with `headers` under `secret`:
/// `Ok(())`, or why it refused.
pub fn verify(library: &str, secret: &str, headers: &BTreeMap<String, String>, body: &[u8]) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned();
    let python = root.join(".tools/verifiers/bin/python");
    assert!(
        python.exists(),
        "the verifier libraries are not installed at {}; run `bash tests/run.sh`, which installs them",
        python.display()
    );
    let request = json!({
        "library": library,
        "secret": secret,
        "headers": headers,
        "body_b64": base64::engine::general_purpose::STANDARD.encode(body),
    });
    let mut child = Command::new(python)
        .arg(root.join("tests/verify_standard.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the verifier");
    child.stdin.take().expect("stdin").write_all(request.to_string().as_bytes()).expect("write");
    let out = child.wait_with_output().expect("verifier");
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    match (out.status.success(), said.as_str()) {
        (true, "ok") => Ok(()),
        (false, s) if s.starts_with("refused") => Err(s.to_owned()),
        _ => panic!("the verifier failed: {said} {}", String::from_utf8_lossy(&out.stderr)),
    }
}
