//! Architecture invariants, checked rather than hoped for.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            // Test and example code may build throwaway routers (receivers) of their own.
            if !matches!(name, "target" | "tests" | "examples" | ".git") && !name.starts_with('.') {
                rust_sources(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn production_sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_sources(&root().join("shared"), &mut files);
    rust_sources(&root().join("functions"), &mut files);
    files.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).expect("read"))).collect()
}

fn defined_in(needle: &str) -> Vec<String> {
    production_sources()
        .into_iter()
        .filter(|(_, text)| text.contains(needle))
        .map(|(p, _)| p.strip_prefix(root()).expect("relative").display().to_string())
        .collect()
}

#[test]
fn the_domain_knows_no_aws_and_does_no_io() {
    let manifest = std::fs::read_to_string(root().join("shared/hookline-domain/Cargo.toml")).expect("manifest");
    let deps = manifest.split("[dependencies]").nth(1).expect("dependencies").split("\n[").next().expect("section");
    for banned in ["aws-", "aws_", "lambda", "rusqlite", "reqwest", "hyper", "axum", "tokio", "hookline-"] {
        assert!(!deps.contains(banned), "hookline-domain must not depend on {banned}*:\n{deps}");
    }
}

#[test]
fn there_is_one_router() {
    // Every API route is declared in one place; other production code (the bench
    // tool's loopback receiver) may serve a fallback handler but declares no routes.
    assert_eq!(defined_in(".route("), vec!["shared/hookline-api/src/routes.rs"]);
}

#[test]
fn there_is_one_fan_out_step_and_one_send_step() {
    assert_eq!(defined_in("pub async fn fan_out("), vec!["shared/hookline-domain/src/fanout.rs"]);
    assert_eq!(defined_in("pub async fn send("), vec!["shared/hookline-domain/src/send.rs"]);
}
