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
    // The console's files (pages, not API operations) are served by console.rs, merged
    // into the same router; local mode's metrics address is not the API.
    assert_eq!(
        defined_in(".route("),
        vec!["shared/hookline-api/src/console.rs", "shared/hookline-api/src/routes.rs", "functions/hookline/src/metrics.rs"]
    );
}

#[test]
fn there_is_one_fan_out_step_and_one_send_step() {
    assert_eq!(defined_in("pub async fn fan_out("), vec!["shared/hookline-domain/src/fanout.rs"]);
    assert_eq!(defined_in("pub async fn send("), vec!["shared/hookline-domain/src/send.rs"]);
}

/// The domain's modules, each with the other modules its code (not its comments or
/// tests) names through `crate::`.
fn domain_imports() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = root().join("shared/hookline-domain/src");
    let mut graph = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("read dir") {
        let path = entry.expect("entry").path();
        let Some(module) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".rs")) else { continue };
        if matches!(module, "lib" | "fakes") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut names = std::collections::BTreeSet::new();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && name != module {
                    names.insert(name);
                }
            }
        }
        graph.insert(module.to_owned(), names);
    }
    graph
}

#[test]
fn the_domain_modules_import_each_other_without_a_cycle() {
    let graph = domain_imports();
    assert!(graph.len() > 10 && graph["send"].contains("ports"), "the scan sees the modules and their imports: {graph:?}");
    // Depth-first, with the path so far: a module met again on its own path is a cycle.
    fn visit<'a>(
        m: &'a str,
        graph: &'a std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut std::collections::BTreeSet<&'a str>,
    ) {
        if let Some(start) = path.iter().position(|p| *p == m) {
            panic!("import cycle in hookline-domain: {} -> {m}", path[start..].join(" -> "));
        }
        if !done.insert(m) {
            return;
        }
        path.push(m);
        for next in graph.get(m).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
    }
    let mut done = std::collections::BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_domain_s_ports_and_steps_name_no_adapter() {
    for (module, _) in domain_imports() {
        let text = std::fs::read_to_string(root().join(format!("shared/hookline-domain/src/{module}.rs"))).expect("read");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for adapter in ["Sqlite", "sqlite", "Dynamo", "dynamo", "Sqs", "Kms"] {
                assert!(!line.contains(adapter), "{module}.rs names an adapter ({adapter}): {line}");
            }
        }
    }
}
