//! Runs README's receiver snippets, as written there, against real deliveries: each
//! snippet defines `verify(body, headers)`; a harness gives it the constants README
//! names (`HOOKLINE_URL`, `WEBHOOK_SECRET`, `MY_WEBHOOK_ID`) and one delivery, and
//! reports whether it accepted it. Python runs in `.tools/verifiers`, Node with the
//! packages in `.tools/node` (both installed by `tests/run.sh`).

use base64::Engine;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

/// The code block README marks with `<!-- receiver: {name} -->`.
pub fn snippet(name: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let marker = format!("<!-- receiver: {name} -->");
    let start = readme.find(&marker).unwrap_or_else(|| panic!("README has no {marker}"));
    let rest = &readme[start + marker.len()..];
    let fence = rest.find("```").expect("a code block after the marker");
    let body = &rest[fence..];
    let code_start = body.find('\n').expect("fence line") + 1;
    let code_end = body[code_start..].find("\n```").expect("closing fence") + code_start;
    body[code_start..code_end].to_owned()
}

/// What a snippet is given.
pub struct Case<'a> {
    /// Hookline's base URL.
    pub hookline_url: &'a str,
    /// The webhook's secret (Standard Webhooks), or empty.
    pub secret: &'a str,
    /// The webhook id the receiver expects.
    pub webhook_id: &'a str,
    /// The delivery's headers, names lowercase.
    pub headers: &'a BTreeMap<String, String>,
    /// The delivery's body.
    pub body: &'a [u8],
}

/// Runs README's snippet `name` (`python-…` or `node-…`) on `case`: `Ok(())` if it
/// accepted the delivery, or what it refused it with.
pub fn run(name: &str, case: &Case<'_>) -> Result<(), String> {
    let code = snippet(name);
    let input = json!({
        "hookline_url": case.hookline_url,
        "secret": case.secret,
        "webhook_id": case.webhook_id,
        "headers": case.headers,
        "body_b64": base64::engine::general_purpose::STANDARD.encode(case.body),
    });
    let tools = root().join(".tools");
    let (program, file) = if name.starts_with("python-") {
        let harness = format!(
            "import base64, json, sys\nCASE = json.load(sys.stdin)\nHOOKLINE_URL = CASE['hookline_url']\nWEBHOOK_SECRET = CASE['secret']\nMY_WEBHOOK_ID = CASE['webhook_id']\n\n{code}\n\ntry:\n    verify(base64.b64decode(CASE['body_b64']), CASE['headers'])\nexcept Exception as e:\n    print(f'refused: {{type(e).__name__}}: {{e}}')\n    sys.exit(1)\nprint('accepted')\n"
        );
        let file = tempfile::Builder::new().suffix(".py").tempfile().expect("harness");
        std::fs::write(file.path(), harness).expect("write harness");
        (tools.join("verifiers/bin/python"), file)
    } else {
        let harness = format!(
            "import {{ readFileSync }} from \"node:fs\";\nconst CASE = JSON.parse(readFileSync(0, \"utf8\"));\nconst HOOKLINE_URL = CASE.hookline_url;\nconst WEBHOOK_SECRET = CASE.secret;\nconst MY_WEBHOOK_ID = CASE.webhook_id;\n\n{code}\n\ntry {{\n  await verify(Buffer.from(CASE.body_b64, \"base64\"), CASE.headers);\n  console.log(\"accepted\");\n}} catch (e) {{\n  console.log(`refused: ${{e}}`);\n  process.exit(1);\n}}\n"
        );
        // Beside the packages, so that Node finds them.
        let file = tempfile::Builder::new().suffix(".mjs").tempfile_in(tools.join("node")).expect("harness");
        std::fs::write(file.path(), harness).expect("write harness");
        (PathBuf::from("node"), file)
    };
    assert!(
        program == Path::new("node") || program.exists(),
        "{} is missing; run `bash tests/run.sh`, which installs it",
        program.display()
    );
    let mut child = Command::new(&program)
        .arg(file.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    child.stdin.take().expect("stdin").write_all(input.to_string().as_bytes()).expect("write");
    let out = child.wait_with_output().expect("harness");
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    match (out.status.success(), said.as_str()) {
        (true, "accepted") => Ok(()),
        (false, s) if s.starts_with("refused") => Err(s.to_owned()),
        _ => panic!("README's {name} snippet failed to run: {said} {}", String::from_utf8_lossy(&out.stderr)),
    }
}
