//! A receiver that answers 503 to the first two requests on each path and 200 after:
//! a delivery that succeeds on its third attempt.

use axum::extract::Path;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Starts it; returns its base URL (append a path per webhook).
pub async fn start() -> anyhow::Result<String> {
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let app = axum::Router::new().route(
        "/flaky/{id}",
        axum::routing::post(move |Path(id): Path<String>| {
            let seen = seen.clone();
            async move {
                let n = seen.lock().map(|mut m| *m.entry(id).and_modify(|n| *n += 1).or_insert(1)).unwrap_or(3);
                if n <= 2 { axum::http::StatusCode::SERVICE_UNAVAILABLE } else { axum::http::StatusCode::OK }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/flaky", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
