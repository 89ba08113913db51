//! The connection as the HTTP parser sees it: bytes reach the parser only once
//! [`Framing`] has checked them, and a client too slow or too strange is cut off here.
//!
//! - A request head that does not arrive whole within the header timeout is answered
//!   408; one that is malformed or too large is answered 400, 414, 431 or 505. The
//!   parser never sees it; it sees the connection end, finishes what it was writing,
//!   and shuts the connection down, and the refusal is written then, so it never cuts
//!   into an answer.
//! - A connection with no request in progress for the idle timeout is closed.
//! - A write the client does not take for the idle timeout fails, which ends the
//!   connection.

use super::Rejection;
use super::framing::{Framing, Scan};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The timeouts a connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the first byte of a request head to its end.
    pub header: Duration,
    /// With no request in progress, before the connection is closed; also how long a
    /// write may wait for the client to read.
    pub idle: Duration,
}

/// Requests being answered on one connection; counted by the service, read here so
/// the idle timeout never runs while an answer is being prepared.
pub type InService = Arc<AtomicUsize>;

/// What happens when the read deadline passes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expiry {
    Head,
    Idle,
}

/// A socket behind the gate.
pub struct Gate<S> {
    io: S,
    timeouts: Timeouts,
    in_service: InService,
    framing: Framing,
    /// Bytes read and not yet handed to the parser.
    buf: Vec<u8>,
    /// How many bytes at the front of `buf` may be handed on.
    pass: usize,
    head_started: Option<Instant>,
    quiet_since: Option<Instant>,
    read_timer: Pin<Box<Sleep>>,
    write_stalled_since: Option<Instant>,
    write_timer: Pin<Box<Sleep>>,
    /// The refusal to write when the parser shuts the connection down, and how much of
    /// it is written.
    refusal: Option<(Vec<u8>, usize)>,
    eof: bool,
}

impl<S> Gate<S> {
    /// Puts `io` behind the gate.
    pub fn new(io: S, timeouts: Timeouts, in_service: InService) -> Self {
        Gate {
            io,
            timeouts,
            in_service,
            framing: Framing::Head,
            buf: Vec::new(),
            pass: 0,
            head_started: None,
            quiet_since: None,
            read_timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            write_stalled_since: None,
            write_timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            refusal: None,
            eof: false,
        }
    }

    fn refuse(&mut self, r: Rejection) {
        tracing::debug!(status = r.status(), code = r.code(), "request refused before parsing");
        self.refusal = Some((r.to_response(self.timeouts.header), 0));
        self.buf = Vec::new();
        self.pass = 0;
    }

    /// When the read must end, if it must: the head's deadline while a head is
    /// arriving, else the idle deadline while no request is being answered.
    fn deadline(&mut self) -> Option<(Instant, Expiry)> {
        if self.framing.at_head() && !self.buf.is_empty() {
            let started = *self.head_started.get_or_insert_with(Instant::now);
            return Some((started + self.timeouts.header, Expiry::Head));
        }
        if self.in_service.load(Ordering::Acquire) > 0 {
            self.quiet_since = None;
            return None;
        }
        let since = *self.quiet_since.get_or_insert_with(Instant::now);
        Some((since + self.timeouts.idle, Expiry::Idle))
    }
}

fn arm(timer: &mut Pin<Box<Sleep>>, at: Instant, cx: &mut Context<'_>) -> bool {
    if timer.deadline() != at {
        timer.as_mut().reset(at);
    }
    timer.as_mut().poll(cx).is_ready()
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Gate<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.refusal.is_some() {
                // The parser sees the end of the stream, and shuts the connection down.
                return Poll::Ready(Ok(()));
            }
            if this.pass > 0 {
                let n = this.pass.min(out.remaining());
                out.put_slice(&this.buf[..n]);
                this.buf.drain(..n);
                this.pass -= n;
                return Poll::Ready(Ok(()));
            }
            let was_head = this.framing.at_head();
            match this.framing.scan(&this.buf) {
                Scan::Pass(n) if n > 0 => {
                    if was_head {
                        this.head_started = None;
                    }
                    this.pass = n;
                    continue;
                }
                Scan::Reject(r) => {
                    this.refuse(r);
                    continue;
                }
                Scan::Pass(_) | Scan::NeedMore => {}
            }
            if this.eof {
                // A part of a head the client will never finish: nothing to hand on.
                this.buf.clear();
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.io).poll_read(cx, &mut read) {
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if read.filled().is_empty() => this.eof = true,
                Poll::Ready(Ok(())) => {
                    this.quiet_since = None;
                    this.buf.extend_from_slice(read.filled());
                }
                Poll::Pending => {
                    let Some((at, expiry)) = this.deadline() else { return Poll::Pending };
                    if !arm(&mut this.read_timer, at, cx) {
                        return Poll::Pending;
                    }
                    match expiry {
                        Expiry::Head => this.refuse(Rejection::Timeout),
                        Expiry::Idle => {
                            tracing::debug!("idle connection closed");
                            this.eof = true;
                        }
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Gate<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, data) {
            Poll::Pending => {
                let since = *this.write_stalled_since.get_or_insert_with(Instant::now);
                if arm(&mut this.write_timer, since + this.timeouts.idle, cx) {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading")));
                }
                Poll::Pending
            }
            ready => {
                this.write_stalled_since = None;
                ready
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = self.refusal.take() {
            if written == bytes.len() {
                self.refusal = Some((bytes, written));
                break;
            }
            let n = match self.as_mut().poll_write(cx, &bytes[written..]) {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.refusal = Some((bytes, written));
                    return Poll::Pending;
                }
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.refusal = Some((bytes, written + n));
        }
        let this = self.get_mut();
        ready!(Pin::new(&mut this.io).poll_flush(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
