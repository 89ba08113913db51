//! Where each request on a connection begins and ends, read from the bytes the client
//! sends, and whether its head is one the server will take.
//!
//! [`Framing::scan`] looks at the bytes read but not yet handed on and answers how many
//! may go to the HTTP parser: a request's head only once it is complete and checked with
//! the same parsers and rules the parser applies (so the parser never meets a head it
//! would refuse with its own empty-bodied answer), then its body, counted by
//! `Content-Length` or by its chunks, so the next head is found where it starts.

use super::Rejection;

/// Longest request line (method, target and version), in bytes.
pub const MAX_REQUEST_LINE_BYTES: usize = 8 * 1024;
/// Longest request head (request line and headers), in bytes.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Most header lines in one request.
pub const MAX_HEADERS: usize = 100;

/// What the bytes read so far amount to.
#[derive(Debug, PartialEq)]
pub enum Scan {
    /// Nothing may be handed on until more bytes arrive.
    NeedMore,
    /// This many bytes, from the front, may be handed on.
    Pass(usize),
    /// The request is refused; nothing more is handed on.
    Reject(Rejection),
}

/// Where the connection's byte stream stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Framing {
    /// The next byte begins a request head.
    Head,
    /// This many bytes of a body remain.
    Body(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    /// The stream could not be followed (a malformed chunked body): everything is
    /// handed on, and the HTTP parser answers for it.
    Unframed,
}

/// Where a chunked body stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// Reading a chunk's size line; the size so far and whether an extension began.
    Size { size: u64, digits: u8, ext: bool },
    /// Expecting the size line's `\n`.
    SizeLf { size: u64 },
    /// This many bytes of chunk data remain.
    Data(u64),
    /// Expecting the `\r\n` after chunk data (`true` once `\r` was seen).
    DataEnd(bool),
    /// In the trailer section; whether the current line is empty so far, and whether a
    /// `\r` was seen.
    Trailer { empty: bool, cr: bool },
}

impl Framing {
    /// Whether the stream is between requests or inside a head.
    pub fn at_head(&self) -> bool {
        matches!(self, Framing::Head)
    }

    /// Looks at `buf` (bytes read, none handed on yet) and moves past what it hands on.
    pub fn scan(&mut self, buf: &[u8]) -> Scan {
        if buf.is_empty() {
            return Scan::NeedMore;
        }
        match self {
            Framing::Head => match check_head(buf) {
                Ok(None) => Scan::NeedMore,
                Ok(Some((len, next))) => {
                    *self = next;
                    Scan::Pass(len)
                }
                Err(r) => Scan::Reject(r),
            },
            Framing::Body(left) => {
                let n = (*left).min(buf.len() as u64);
                *left -= n;
                if *left == 0 {
                    *self = Framing::Head;
                }
                Scan::Pass(n as usize)
            }
            Framing::Chunked(chunk) => {
                let (n, state) = scan_chunked(chunk.clone(), buf);
                *self = state;
                Scan::Pass(n)
            }
            Framing::Unframed => Scan::Pass(buf.len()),
        }
    }
}

/// Checks a head: `Ok(None)` while incomplete, else its length and the framing of the
/// body that follows.
fn check_head(buf: &[u8]) -> Result<Option<(usize, Framing)>, Rejection> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return match buf.iter().position(|&b| b == b'\n') {
                None if buf.len() > MAX_REQUEST_LINE_BYTES => Err(Rejection::UriTooLong),
                Some(line) if line > MAX_REQUEST_LINE_BYTES => Err(Rejection::UriTooLong),
                _ if buf.len() > MAX_HEAD_BYTES => Err(Rejection::HeadersTooLarge),
                _ => Ok(None),
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(Rejection::HeadersTooLarge),
        Err(httparse::Error::Version) => return Err(Rejection::Version),
        Err(e) => return Err(Rejection::Malformed(format!("the request head is malformed: {e}"))),
    };
    let target = req.path.unwrap_or_default();
    if target.len() + 32 > MAX_REQUEST_LINE_BYTES {
        return Err(Rejection::UriTooLong);
    }
    if len > MAX_HEAD_BYTES {
        return Err(Rejection::HeadersTooLarge);
    }
    if http::Uri::try_from(target).is_err() {
        return Err(Rejection::Malformed("the request target is not a valid URI".into()));
    }
    let http11 = req.version == Some(1);
    let (mut chunked, mut te, mut length) = (false, false, None::<u64>);
    for h in req.headers.iter() {
        if http::HeaderName::from_bytes(h.name.as_bytes()).is_err() || http::HeaderValue::from_bytes(h.value).is_err() {
            return Err(Rejection::Malformed(format!("header {:?} is not valid", h.name)));
        }
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !http11 {
                return Err(Rejection::Malformed("HTTP/1.0 requests cannot carry Transfer-Encoding".into()));
            }
            te = true;
            // Only the last encoding matters, as for the parser.
            chunked = h.value.rsplit(|&b| b == b',').next().is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = content_length(h.value).ok_or_else(|| Rejection::Malformed("Content-Length is not a number".into()))?;
            if length.is_some_and(|prev| prev != n) {
                return Err(Rejection::Malformed("Content-Length headers disagree".into()));
            }
            length = Some(n);
        }
    }
    let next = match (te, chunked, length) {
        (true, false, _) => return Err(Rejection::Malformed("Transfer-Encoding must end with chunked".into())),
        (true, true, _) => Framing::Chunked(Chunk::Size { size: 0, digits: 0, ext: false }),
        (false, _, Some(n)) if n > 0 => Framing::Body(n),
        _ => Framing::Head,
    };
    Ok(Some((len, next)))
}

/// A `Content-Length` value: digits, or a list of equal digit strings.
fn content_length(value: &[u8]) -> Option<u64> {
    let mut out = None;
    for part in value.split(|&b| b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n: u64 = std::str::from_utf8(part).ok()?.parse().ok()?;
        if out.is_some_and(|prev| prev != n) {
            return None;
        }
        out = Some(n);
    }
    out
}

/// Walks a chunked body through `buf`: how many bytes belong to it, and where the
/// stream stands after them.
fn scan_chunked(mut state: Chunk, buf: &[u8]) -> (usize, Framing) {
    let mut i = 0;
    while i < buf.len() {
        if let Chunk::Data(left) = state {
            let n = left.min((buf.len() - i) as u64);
            i += n as usize;
            state = if n == left { Chunk::DataEnd(false) } else { Chunk::Data(left - n) };
            continue;
        }
        let b = buf[i];
        i += 1;
        state = match (state, b) {
            (Chunk::Size { size, digits, .. }, b'\r') if digits > 0 => Chunk::SizeLf { size },
            (Chunk::Size { size, digits, ext: true }, _) => Chunk::Size { size, digits, ext: true },
            (Chunk::Size { size, digits, ext: false }, b';' | b' ' | b'\t') if digits > 0 => Chunk::Size { size, digits, ext: true },
            (Chunk::Size { size, digits, ext: false }, _) => match (b as char).to_digit(16) {
                Some(d) if digits < 15 => Chunk::Size { size: size * 16 + u64::from(d), digits: digits + 1, ext: false },
                _ => return (buf.len(), Framing::Unframed),
            },
            (Chunk::SizeLf { size: 0 }, b'\n') => Chunk::Trailer { empty: true, cr: false },
            (Chunk::SizeLf { size }, b'\n') => Chunk::Data(size),
            (Chunk::DataEnd(false), b'\r') => Chunk::DataEnd(true),
            (Chunk::DataEnd(true), b'\n') => Chunk::Size { size: 0, digits: 0, ext: false },
            (Chunk::Trailer { empty, cr: false }, b'\r') => Chunk::Trailer { empty, cr: true },
            (Chunk::Trailer { empty: true, cr: true }, b'\n') => return (i, Framing::Head),
            (Chunk::Trailer { empty: false, cr: true }, b'\n') => Chunk::Trailer { empty: true, cr: false },
            (Chunk::Trailer { cr: false, .. }, _) => Chunk::Trailer { empty: false, cr: false },
            _ => return (buf.len(), Framing::Unframed),
        };
    }
    (i, Framing::Chunked(state))
}

#[cfg(test)]
mod tests;
