//! The Lambda artefacts: each zip's size, and each binary's time from exec to its
//! first poll of a local Lambda runtime API.

/// The workspace's `target/` and the directory this binary runs from.
fn target_dirs() -> (std::path::PathBuf, Option<std::path::PathBuf>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| root.join("target"));
    let exe_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.to_owned()));
    (target, exe_dir)
}

/// Each Lambda's zip size, and its binary's time from exec to its first request to a
/// local Lambda runtime API.
pub async fn run(runs: usize) -> anyhow::Result<()> {
    let (target, exe_dir) = target_dirs();
    for f in ["api", "fanout", "sender"] {
        let zip = target.join("lambda").join(f).join("bootstrap.zip");
        match std::fs::metadata(&zip) {
            Ok(m) => println!(
                "lambda {f:<7} zip {:.2} MiB (aarch64, cargo lambda build --release --arm64 --output-format zip; target <= 8 MiB)",
                m.len() as f64 / 1048576.0
            ),
            Err(_) => println!("lambda {f:<7} zip not built (cargo lambda build --release --arm64 --output-format zip -p {f})"),
        }
    }
    let Some(exe_dir) = exe_dir else { return Ok(()) };
    let (clients, resources) = tests::moto::provisioned().await;
    drop(clients);
    let env = tests::moto::function_env(&resources);
    let profile = exe_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for f in ["api", "fanout", "sender"] {
        let bin = exe_dir.join(f);
        if !bin.exists() {
            println!("lambda {f:<7} init: {} not built (cargo build --release -p {f})", bin.display());
            continue;
        }
        let event = match f {
            "api" => tests::lambda::api_request_json("GET", "/jwks/webhooks", None, None),
            _ => serde_json::json!({"Records": []}),
        };
        let mut inits = Vec::new();
        for _ in 0..runs {
            let rt = tests::runtime_api::RuntimeApi::start(event.clone()).await;
            let inv = rt.invoke(&bin.display().to_string(), &env).await;
            anyhow::ensure!(inv.kind == "response", "{f} answered {}: {}", inv.kind, inv.body);
            inits.push(inv.init);
        }
        inits.sort();
        println!(
            "lambda {f:<7} init, exec to first runtime API poll ({profile} x86_64 build, {runs} runs): median {:.1} ms, max {:.1} ms (target <= 30 ms)",
            inits[inits.len() / 2].as_secs_f64() * 1000.0,
            inits[inits.len() - 1].as_secs_f64() * 1000.0
        );
    }
    Ok(())
}
