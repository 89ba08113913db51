use super::*;

fn scan_all(input: &[u8]) -> (Vec<Scan>, Framing) {
    let mut f = Framing::Head;
    let mut buf = input.to_vec();
    let mut steps = Vec::new();
    loop {
        let s = f.scan(&buf);
        match &s {
            Scan::Pass(n) if *n > 0 => {
                buf.drain(..*n);
            }
            _ => {
                steps.push(s);
                return (steps, f);
            }
        }
        steps.push(s);
    }
}

fn refusal(input: &[u8]) -> Option<Rejection> {
    match scan_all(input).0.pop() {
        Some(Scan::Reject(r)) => Some(r),
        _ => None,
    }
}

#[test]
fn a_head_passes_only_once_complete() {
    let mut f = Framing::Head;
    assert_eq!(f.scan(b"GET /health HTTP/1.1\r\nHost: x\r\n"), Scan::NeedMore);
    assert_eq!(f.scan(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET"), Scan::Pass(33));
    assert!(f.at_head(), "no body follows a head without one");
}

#[test]
fn a_sized_body_passes_and_the_next_head_is_checked() {
    let req = b"POST /events HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n";
    let (steps, f) = scan_all(req);
    assert_eq!(steps, vec![Scan::Pass(44), Scan::Pass(5), Scan::Pass(18), Scan::NeedMore]);
    assert_eq!(f, Framing::Head);
    let mut f = Framing::Head;
    assert_eq!(f.scan(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n"), Scan::Pass(39));
    assert_eq!(f.scan(b"abc"), Scan::Pass(3));
    assert_eq!(f, Framing::Body(7));
}

#[test]
fn a_chunked_body_is_followed_to_its_end_in_any_split() {
    let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec();
    let body = b"5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: yes\r\n\r\n".to_vec();
    let next = b"GET /next HTTP/1.1\r\n\r\n";
    let mut all = head.clone();
    all.extend_from_slice(&body);
    all.extend_from_slice(next);
    // Fed one byte at a time, the stream must still split where the body ends.
    let mut f = Framing::Head;
    let mut buf = Vec::new();
    let mut passed = Vec::new();
    for b in &all {
        buf.push(*b);
        while let Scan::Pass(n) = f.scan(&buf) {
            if n == 0 {
                break;
            }
            passed.push(n);
            buf.drain(..n);
        }
    }
    assert!(buf.is_empty());
    assert_eq!(passed.first(), Some(&head.len()));
    assert_eq!(*passed.last().unwrap_or(&0), next.len());
    assert_eq!(passed.iter().sum::<usize>(), all.len());
    assert_eq!(f, Framing::Head);
}

#[test]
fn a_chunked_body_that_cannot_be_followed_is_handed_on_whole() {
    let mut f = Framing::Chunked(Chunk::Size { size: 0, digits: 0, ext: false });
    assert_eq!(f.scan(b"zz\r\n"), Scan::Pass(4));
    assert_eq!(f, Framing::Unframed);
}

#[test]
fn each_kind_of_bad_head_gets_its_status() {
    let long_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_LINE_BYTES));
    assert_eq!(refusal(long_target.as_bytes()), Some(Rejection::UriTooLong));
    // Long before the request line ends, it is already too long.
    let unfinished = format!("GET /{}", "a".repeat(MAX_REQUEST_LINE_BYTES + 10));
    assert_eq!(refusal(unfinished.as_bytes()), Some(Rejection::UriTooLong));
    let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "v".repeat(MAX_HEAD_BYTES));
    assert_eq!(refusal(big.as_bytes()), Some(Rejection::HeadersTooLarge));
    let endless = format!("GET / HTTP/1.1\r\nX: {}", "v".repeat(MAX_HEAD_BYTES + 1));
    assert_eq!(refusal(endless.as_bytes()), Some(Rejection::HeadersTooLarge));
    let many: String = (0..=MAX_HEADERS).map(|i| format!("h{i}: v\r\n")).collect();
    assert_eq!(refusal(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()), Some(Rejection::HeadersTooLarge));
    assert_eq!(refusal(b"GET / HTTP/2.0\r\n\r\n"), Some(Rejection::Version));
    assert_eq!(refusal(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Some(Rejection::Version));
    for bad in [
        &b"G\x01T / HTTP/1.1\r\n\r\n"[..],
        b"GET /\x7f HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET http://[::1 HTTP/1.1\r\n\r\n",
    ] {
        assert!(matches!(refusal(bad), Some(Rejection::Malformed(_))), "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn equal_content_lengths_are_one_length() {
    let (steps, f) = scan_all(b"POST / HTTP/1.1\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\n");
    assert_eq!(steps[0], Scan::Pass(60));
    assert_eq!(f, Framing::Body(3));
}
