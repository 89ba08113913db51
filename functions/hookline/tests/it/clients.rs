//! Slow, strange and too many clients: every one gets an answer in the API's error
//! shape or is cut off within the documented bound, and a well-behaved client is served
//! quickly meanwhile. The timeouts under test are the server's own timers, so these
//! tests use real time, with the timeouts set short.

use crate::support::{TestApp, spawn_app, spawn_app_with};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn connect(app: &TestApp) -> TcpStream {
    let addr = app.api.base().trim_start_matches("http://").trim_end_matches('/').to_owned();
    TcpStream::connect(addr).await.expect("connect")
}

/// Reads until the server closes the connection or `within` passes; what came, and
/// whether the connection was closed.
async fn read_to_close(conn: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(within, async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

/// Sends `head` (request line and headers) and `body` on a raw connection, then reads
/// what comes back within `within`.
async fn raw_exchange(app: &TestApp, head: &str, body: &[u8], within: Duration) -> String {
    let mut conn = connect(app).await;
    conn.write_all(head.as_bytes()).await.expect("head");
    conn.write_all(body).await.expect("body");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(within, async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&got).contains("}}") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    String::from_utf8_lossy(&got).into_owned()
}

/// Checks an answer is `status` with the JSON error `code`, and returns its message.
fn assert_json_error(answer: &str, status: u16, code: &str) -> String {
    assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "expected {status}: {answer:.300}");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(v["error"]["code"], code, "{body}");
    let message = v["error"]["message"].as_str().expect("a message").to_owned();
    assert!(!message.is_empty());
    message
}

#[tokio::test]
async fn a_body_declared_over_the_limit_is_refused_at_once_without_being_read() {
    let app = spawn_app().await;
    let key = app.api.key().expect("admin key").to_owned();
    for (path, declared) in [("/events", 1_000_000_000u64), ("/events", 262_145), ("/webhooks", 65_537)] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\n\r\n"
        );
        // Ten bytes of the promised body, then nothing: the answer must not wait for the rest.
        let answer = raw_exchange(&app, &head, b"{\"data\": {", Duration::from_secs(3)).await;
        assert_json_error(&answer, 413, "payload_too_large");
        assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    }
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408_after_the_body_timeout() {
    let app = spawn_app_with(&[("HOOKLINE_BODY_READ_TIMEOUT", "1s")]).await;
    let key = app.api.key().expect("admin key").to_owned();
    let head = format!(
        "POST /events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n"
    );
    let started = Instant::now();
    let answer = raw_exchange(&app, &head, b"{\"data\": {", Duration::from_secs(6)).await;
    let message = assert_json_error(&answer, 408, "request_timeout");
    assert!(message.contains("1000 ms"), "{message}");
    assert!(started.elapsed() >= Duration::from_secs(1), "not before the timeout");
}

#[tokio::test]
async fn every_refusal_before_the_api_is_a_json_error() {
    let app = spawn_app().await;
    let long_uri = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000));
    let big_header = format!("GET /webhooks HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "v".repeat(40_000));
    let many_headers = format!("GET /webhooks HTTP/1.1\r\n{}\r\n", (0..150).map(|i| format!("x-h{i}: v\r\n")).collect::<String>());
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("a 70,000-byte URI", long_uri, 414, "uri_too_long"),
        ("a 40 KB header", big_header, 431, "headers_too_large"),
        ("150 headers", many_headers, 431, "headers_too_large"),
        ("HTTP/2.0 in the request line", "GET /webhooks HTTP/2.0\r\nhost: x\r\n\r\n".into(), 505, "http_version_not_supported"),
        ("the HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".into(), 505, "http_version_not_supported"),
        ("HTTP/3.0", "GET / HTTP/3.0\r\n\r\n".into(), 505, "http_version_not_supported"),
        ("a control byte in the method", "G\u{1}T / HTTP/1.1\r\n\r\n".into(), 400, "malformed_request"),
        ("no version", "GET /webhooks\r\n\r\n".into(), 400, "malformed_request"),
        ("a space in a header name", "GET / HTTP/1.1\r\nbad header: x\r\n\r\n".into(), 400, "malformed_request"),
        ("a bad Content-Length", "POST /events HTTP/1.1\r\ncontent-length: 1e3\r\n\r\n".into(), 400, "malformed_request"),
        (
            "two Content-Lengths",
            "POST /events HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab".into(),
            400,
            "malformed_request",
        ),
        ("an unknown transfer coding", "POST /events HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n".into(), 400, "malformed_request"),
        ("binary noise", "\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}\u{0}\u{1}\u{fc}\u{3}\u{3}\r\n\r\n".into(), 400, "malformed_request"),
    ];
    for (what, request, status, code) in cases {
        let answer = raw_exchange(&app, &request, b"", Duration::from_secs(5)).await;
        assert!(!answer.is_empty(), "{what}: no answer");
        assert_json_error(&answer, status, code);
        assert!(answer.to_ascii_lowercase().contains("connection: close"), "{what}: {answer}");
    }
    // The API's own refusals keep the same shape.
    assert_json_error(&raw_exchange(&app, "GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n", b"", Duration::from_secs(5)).await, 404, "not_found");
    assert_json_error(
        &raw_exchange(&app, "PUT /events HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n", b"", Duration::from_secs(5)).await,
        405,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn a_refusal_waits_for_the_answer_before_it_on_the_same_connection() {
    let app = spawn_app().await;
    let key = app.api.key().expect("admin key").to_owned();
    let mut conn = connect(&app).await;
    // A good request and a bad one, pipelined in one write.
    let pipelined = format!("GET /webhooks/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\r\nGET / HTTP/9.9\r\n\r\n");
    conn.write_all(pipelined.as_bytes()).await.expect("write");
    let (answer, closed) = read_to_close(&mut conn, Duration::from_secs(5)).await;
    assert!(closed, "the connection ends after the refusal");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer:.200}");
    let second = answer.find("HTTP/1.1 505 ").expect("the refusal follows the answer");
    assert_json_error(&answer[second..], 505, "http_version_not_supported");
}

#[tokio::test]
async fn a_trickling_head_is_answered_408_and_an_idle_connection_closed_within_their_timeouts() {
    let app = spawn_app_with(&[("HOOKLINE_HEADER_READ_TIMEOUT", "1s"), ("HOOKLINE_IDLE_TIMEOUT", "1500ms")]).await;
    // Slowloris: a byte of head every 200 ms, forever.
    let mut slow = connect(&app).await;
    let started = Instant::now();
    let trickle = async {
        for b in b"GET /webhooks HTTP/1.1\r\nhost: x\r\nx-slow: ".iter().chain(std::iter::repeat(&b'a')) {
            if slow.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            if started.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(1500), trickle).await;
    let (answer, closed) = read_to_close(&mut slow, Duration::from_secs(3)).await;
    assert!(closed, "the slow client is cut off");
    assert_json_error(&answer, 408, "request_timeout");

    // An answered request, then silence: closed after the idle timeout, not before.
    let mut idle = connect(&app).await;
    idle.write_all(b"GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n").await.expect("write");
    let asked = Instant::now();
    let (answer, closed) = read_to_close(&mut idle, Duration::from_secs(4)).await;
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    assert!(closed, "an idle connection is closed");
    let held = asked.elapsed();
    assert!(held >= Duration::from_millis(1400) && held < Duration::from_secs(4), "closed after {held:?}");
}

#[tokio::test]
async fn connections_beyond_the_bound_are_answered_503_and_room_comes_back() {
    let app = spawn_app_with(&[("HOOKLINE_MAX_CONNECTIONS", "4")]).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = connect(&app).await;
        c.write_all(b"GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n").await.expect("write");
        let mut buf = [0u8; 512];
        let n = c.read(&mut buf).await.expect("read");
        assert!(buf[..n].starts_with(b"HTTP/1.1 404 "), "a held connection is served");
        held.push(c);
    }
    let answer = raw_exchange(&app, "GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n", b"", Duration::from_secs(5)).await;
    assert_json_error(&answer, 503, "server_busy");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    drop(held.pop());
    // The closed connection's room is given back as soon as the server sees it close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = raw_exchange(&app, "GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n", b"", Duration::from_secs(5)).await;
        if answer.starts_with("HTTP/1.1 404 ") {
            break;
        }
        assert!(Instant::now() < deadline, "no room came back: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What one slow client does.
#[derive(Clone, Copy, Debug)]
enum Slow {
    /// Sends its head a byte at a time.
    Head,
    /// Sends a whole head, then its body a byte at a time.
    Body,
    /// Connects and sends nothing.
    Silent,
}

/// Runs one slow client until the server ends its connection; how long that took and
/// what the server said.
async fn slow_client(app_addr: String, key: String, kind: Slow) -> (Slow, Duration, String) {
    let mut conn = TcpStream::connect(app_addr).await.expect("connect");
    let started = Instant::now();
    let script: Vec<u8> = match kind {
        Slow::Head => b"GET /webhooks HTTP/1.1\r\nhost: x\r\nx-slow: ".iter().copied().chain(std::iter::repeat_n(b'a', 1000)).collect(),
        Slow::Body => {
            let head = format!("POST /events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-length: 1000\r\n\r\n");
            conn.write_all(head.as_bytes()).await.expect("head");
            vec![b' '; 1000]
        }
        Slow::Silent => Vec::new(),
    };
    let (mut reader, mut writer) = conn.into_split();
    let writing = tokio::spawn(async move {
        for b in script {
            if writer.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        std::future::pending::<()>().await;
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    writing.abort();
    (kind, started.elapsed(), String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_slow_clients_are_cut_off_in_bound_while_a_good_client_is_served_quickly() {
    const EACH: usize = 100;
    let bound = Duration::from_secs(2);
    let app =
        spawn_app_with(&[("HOOKLINE_HEADER_READ_TIMEOUT", "2s"), ("HOOKLINE_BODY_READ_TIMEOUT", "2s"), ("HOOKLINE_IDLE_TIMEOUT", "2s")])
            .await;
    let key = app.api.key().expect("admin key").to_owned();
    let addr = app.api.base().trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut slow = Vec::new();
    for kind in [Slow::Head, Slow::Body, Slow::Silent] {
        for _ in 0..EACH {
            slow.push(tokio::spawn(slow_client(addr.clone(), key.clone(), kind)));
        }
    }
    // Meanwhile, a well-behaved client asks again and again, each time on a new connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut latencies = Vec::new();
    for _ in 0..40 {
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
        let started = Instant::now();
        let r = client.get(format!("{}/webhooks/events", app.api.base())).bearer_auth(&key).send().await.expect("good request");
        assert_eq!(r.status(), 200);
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    latencies.sort();
    let (median, worst) = (latencies[latencies.len() / 2], latencies[latencies.len() - 1]);
    println!("good client beside {} slow ones: median {median:?}, worst {worst:?}", 3 * EACH);
    assert!(worst < Duration::from_secs(1), "the good client waited {worst:?}");

    let slack = Duration::from_secs(2);
    for c in slow {
        let (kind, took, answer) = c.await.expect("slow client");
        assert!(took < bound + slack, "{kind:?} held on for {took:?}");
        match kind {
            Slow::Head | Slow::Body => {
                assert!(took >= bound - Duration::from_millis(100), "{kind:?} cut off early, after {took:?}: {answer:?}");
                assert_json_error(&answer, 408, "request_timeout");
            }
            Slow::Silent => assert!(answer.is_empty(), "nothing is said to a client that asked nothing: {answer}"),
        }
    }
}
