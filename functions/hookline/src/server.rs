//! Local mode's HTTP server: accepts connections up to a bound, puts each behind a
//! [`Gate`](gate::Gate) that holds clients to the header and idle timeouts and refuses
//! heads the HTTP parser would refuse (so every refusal is the API's JSON error), and
//! serves the API router over HTTP/1.1.

mod framing;
mod gate;

pub use framing::{MAX_HEAD_BYTES, MAX_HEADERS, MAX_REQUEST_LINE_BYTES};
pub use gate::Timeouts;

use axum::Router;
use gate::{Gate, InService};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// What a client may take and hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Header and idle timeouts (`HOOKLINE_HEADER_READ_TIMEOUT`, `HOOKLINE_IDLE_TIMEOUT`).
    pub timeouts: Timeouts,
    /// How long a request body may take (`HOOKLINE_BODY_READ_TIMEOUT`).
    pub body_read_timeout: Duration,
    /// Connections open at once (`HOOKLINE_MAX_CONNECTIONS`); more are answered 503.
    pub max_connections: usize,
}

/// Connections turned away at once (answered 503 and closed) while the server is full;
/// beyond this many, further ones are closed unanswered.
const TURNED_AWAY_AT_ONCE: usize = 64;
/// How long a turned-away connection is given to take its answer.
const TURN_AWAY_WITHIN: Duration = Duration::from_secs(2);

/// A request the server refuses before it reaches the API.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// The head did not arrive within the header timeout.
    Timeout,
    /// The request line is longer than [`MAX_REQUEST_LINE_BYTES`].
    UriTooLong,
    /// The head is longer than [`MAX_HEAD_BYTES`], or has more than [`MAX_HEADERS`] headers.
    HeadersTooLarge,
    /// Not HTTP/1.0 or HTTP/1.1.
    Version,
    /// Anything else the parser would refuse, with what is wrong.
    Malformed(String),
    /// The server has [`Limits::max_connections`] open.
    Busy,
}

impl Rejection {
    /// The status code.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::Timeout => 408,
            Rejection::UriTooLong => 414,
            Rejection::HeadersTooLarge => 431,
            Rejection::Version => 505,
            Rejection::Malformed(_) => 400,
            Rejection::Busy => 503,
        }
    }

    /// The machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Timeout => "request_timeout",
            Rejection::UriTooLong => "uri_too_long",
            Rejection::HeadersTooLarge => "headers_too_large",
            Rejection::Version => "http_version_not_supported",
            Rejection::Malformed(_) => "malformed_request",
            Rejection::Busy => "server_busy",
        }
    }

    fn message(&self, header_timeout: Duration) -> String {
        match self {
            Rejection::Timeout => format!("the request head did not arrive within {} ms", header_timeout.as_millis()),
            Rejection::UriTooLong => format!("the request line is longer than {MAX_REQUEST_LINE_BYTES} bytes"),
            Rejection::HeadersTooLarge => {
                format!("the request head is longer than {MAX_HEAD_BYTES} bytes or has more than {MAX_HEADERS} headers")
            }
            Rejection::Version => "only HTTP/1.1 and HTTP/1.0 are served".into(),
            Rejection::Malformed(why) => why.clone(),
            Rejection::Busy => "the server has as many connections as it takes; try again shortly".into(),
        }
    }

    /// The whole answer, in the API's error shape, closing the connection.
    pub fn to_response(&self, header_timeout: Duration) -> Vec<u8> {
        let status = self.status();
        let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
        let body = serde_json::json!({"error": {"code": self.code(), "message": self.message(header_timeout)}}).to_string();
        let retry = if *self == Rejection::Busy { "retry-after: 1\r\n" } else { "" };
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{retry}\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// Connections the kernel queues for the accept loop. The standard library's 128 is
/// too few for a burst of clients connecting at once: past it Linux answers with SYN
/// cookies, and a connection whose last handshake packet is then dropped is open for
/// the client and unknown to the server.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds the API's listening socket, with [`LISTEN_BACKLOG`].
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `app` on `listener` until `stop` turns true; then stops accepting, closes
/// idle connections, and returns once the requests in progress are answered.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, mut stop: watch::Receiver<bool>) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let turning_away = Arc::new(Semaphore::new(TURNED_AWAY_AT_ONCE));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    // The gate keeps time on heads; a client that half-closes still gets its answer.
    http.header_read_timeout(None).half_close(true);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = open.clone().try_acquire_owned() else {
            if let Ok(slot) = turning_away.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    let _slot = slot;
                    let _ = tokio::time::timeout(TURN_AWAY_WITHIN, turn_away(stream, limits.timeouts.header)).await;
                });
            }
            continue;
        };
        let in_service: InService = Arc::new(AtomicUsize::new(0));
        let io = TokioIo::new(Gate::new(stream, limits.timeouts, in_service.clone()));
        let app = app.clone();
        let body_timeout = hookline_api::BodyReadTimeout(limits.body_read_timeout);
        let service = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
            let counted = Counted::new(in_service.clone());
            req.extensions_mut().insert(body_timeout);
            let app = app.clone();
            async move {
                let answer = app.oneshot(req).await;
                drop(counted);
                answer
            }
        });
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Answers a connection the server has no room for, and closes it.
async fn turn_away(mut stream: TcpStream, header_timeout: Duration) {
    if stream.write_all(&Rejection::Busy.to_response(header_timeout)).await.is_ok() {
        let _ = stream.shutdown().await;
        // Reading what the client sent lets the close be orderly, so the answer is not
        // lost to a reset.
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    }
}

/// One request being answered, for as long as this lives.
struct Counted(InService);

impl Counted {
    fn new(count: InService) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Counted(count)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
