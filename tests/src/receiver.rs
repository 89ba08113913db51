//! A real HTTP receiver on loopback that records every request and answers as scripted.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived (monotonic).
    pub at: Instant,
    /// When it arrived (wall clock).
    pub at_wall: chrono::DateTime<chrono::Utc>,
    /// Request method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Exact body bytes.
    pub body: Bytes,
    /// The status code it was answered with.
    pub answered: u16,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("delivery body is JSON")
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How one path answers.
#[derive(Debug, Clone)]
struct Script {
    next: VecDeque<(u16, Vec<(String, String)>)>,
    then: u16,
}

#[derive(Default)]
struct Inner {
    log: Mutex<Vec<Received>>,
    scripts: Mutex<HashMap<String, Script>>,
    delays: Mutex<HashMap<String, Duration>>,
    arrived: Notify,
}

/// The receiver. Dropping it does not stop the server; tests end with the runtime.
#[derive(Clone)]
pub struct Receiver {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

async fn handle(State(inner): State<Arc<Inner>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let delay = inner.delays.lock().expect("lock").get(&path).copied();
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let (status, extra) = {
        let mut scripts = inner.scripts.lock().expect("lock");
        match scripts.get_mut(&path) {
            Some(s) => s.next.pop_front().unwrap_or((s.then, Vec::new())),
            None => (200, Vec::new()),
        }
    };
    inner.log.lock().expect("lock").push(Received {
        at: Instant::now(),
        at_wall: chrono::Utc::now(),
        method: method.to_string(),
        path,
        headers,
        body,
        answered: status,
    });
    inner.arrived.notify_waiters();
    let mut resp = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), format!("answer {status}")).into_response();
    for (k, v) in extra {
        resp.headers_mut().insert(axum::http::HeaderName::from_bytes(k.as_bytes()).expect("header name"), v.parse().expect("header value"));
    }
    resp
}

impl Receiver {
    /// Starts a receiver on a free loopback port; every path answers 200 unless scripted.
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, inner }
    }

    /// The URL of a path on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Makes `path` answer `statuses` in order, then `then` forever.
    pub fn script(&self, path: &str, statuses: &[u16], then: u16) {
        let next = statuses.iter().map(|s| (*s, Vec::new())).collect();
        self.inner.scripts.lock().expect("lock").insert(path.to_owned(), Script { next, then });
    }

    /// Makes `path` answer once with `status` and extra headers, then 200.
    pub fn script_with_headers(&self, path: &str, status: u16, headers: &[(&str, &str)]) {
        let h = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut next = VecDeque::new();
        next.push_back((status, h));
        self.inner.scripts.lock().expect("lock").insert(path.to_owned(), Script { next, then: 200 });
    }

    /// Makes `path` wait `delay` before answering.
    pub fn slow(&self, path: &str, delay: Duration) {
        self.inner.delays.lock().expect("lock").insert(path.to_owned(), delay);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.log.lock().expect("lock").clone()
    }

    /// Everything received on one path so far.
    pub fn received_on(&self, path: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.path == path).collect()
    }

    /// Waits until `path` has received at least `n` requests; panics after `timeout`.
    pub async fn wait_for(&self, path: &str, n: usize, timeout: Duration) -> Vec<Received> {
        self.wait_until(timeout, |all| all.iter().filter(|r| r.path == path).count() >= n).await;
        self.received_on(path)
    }

    /// Waits until `done` holds over everything received; panics after `timeout`.
    pub async fn wait_until(&self, timeout: Duration, done: impl Fn(&[Received]) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.arrived.notified();
            if done(&self.inner.log.lock().expect("lock")) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let got = self.inner.log.lock().expect("lock").len();
                panic!("receiver condition not met within {timeout:?} ({got} requests received)");
            }
        }
    }
}
