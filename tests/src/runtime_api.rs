//! A minimal Lambda runtime API on loopback: hands a function binary one invocation
//! and records what it answers, so a test can show that `main` wires itself from
//! environment variables alone, as on Lambda.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Default)]
struct Inner {
    event: Mutex<Option<serde_json::Value>>,
    first_poll: Mutex<Option<Instant>>,
    outcome: Mutex<Option<(String, serde_json::Value)>>,
    done: Notify,
}

/// The stub runtime API.
#[derive(Clone)]
pub struct RuntimeApi {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

/// What the function did with its invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `response`, `error` or `init-error`.
    pub kind: String,
    /// The body it posted.
    pub body: serde_json::Value,
    /// From process start to its first `next` poll (its cold-start init time).
    pub init: Duration,
}

async fn next(State(inner): State<Arc<Inner>>) -> Response {
    inner.first_poll.lock().expect("lock").get_or_insert_with(Instant::now);
    let event = inner.event.lock().expect("lock").take();
    match event {
        Some(e) => {
            let mut headers = HeaderMap::new();
            headers.insert("lambda-runtime-aws-request-id", HeaderValue::from_static("req-1"));
            let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
            headers.insert("lambda-runtime-deadline-ms", HeaderValue::from(deadline as u64));
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:hookline"),
            );
            headers.insert("lambda-runtime-trace-id", HeaderValue::from_static("Root=1-00000000-000000000000000000000000"));
            (StatusCode::OK, headers, e.to_string()).into_response()
        }
        // One invocation only: later polls wait until the test ends the process.
        None => std::future::pending().await,
    }
}

async fn record(inner: &Inner, kind: &str, body: Bytes) -> StatusCode {
    let v = serde_json::from_slice(&body).unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    *inner.outcome.lock().expect("lock") = Some((kind.to_owned(), v));
    inner.done.notify_waiters();
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    /// Starts the stub with one event to hand out.
    pub async fn start(event: serde_json::Value) -> Self {
        let inner = Arc::new(Inner { event: Mutex::new(Some(event)), ..Default::default() });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(|State(i): State<Arc<Inner>>, _: Path<String>, b: Bytes| async move { record(&i, "response", b).await }),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(|State(i): State<Arc<Inner>>, _: Path<String>, b: Bytes| async move { record(&i, "error", b).await }),
            )
            .route(
                "/2018-06-01/runtime/init/error",
                post(|State(i): State<Arc<Inner>>, b: Bytes| async move { record(&i, "init-error", b).await }),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        RuntimeApi { addr, inner }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Runs a function binary against this runtime API with `env` (plus the standard
    /// Lambda variables) and returns what it answered to the one invocation.
    pub async fn invoke(&self, binary: &str, env: &[(String, String)]) -> Invocation {
        let started = Instant::now();
        let mut cmd = tokio::process::Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", self.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "hookline")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/hookline")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "stream")
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start function binary");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let notified = self.inner.done.notified();
            if let Some((kind, body)) = self.inner.outcome.lock().expect("lock").clone() {
                let _ = child.start_kill();
                let first = self.inner.first_poll.lock().expect("lock").unwrap_or_else(Instant::now);
                return Invocation { kind, body, init: first - started };
            }
            tokio::select! {
                _ = notified => {}
                status = child.wait() => panic!("function exited before answering: {status:?}"),
                _ = tokio::time::sleep_until(deadline) => panic!("function did not answer within 30 s"),
            }
        }
    }
}
