//! Receivers that misbehave on purpose, on loopback: each accepts connections and
//! answers in one hostile way.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A way of answering badly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostility {
    /// Reads the request and never answers.
    Hang,
    /// Sends a 200 head, then one body byte every 200 ms, forever.
    Trickle,
    /// Answers 200 with a 10 MB body.
    Huge,
    /// Closes the connection as soon as it is opened (a reset once data is sent).
    Reset,
    /// Answers with bytes that are not HTTP.
    Garbage,
}

async fn read_head(s: &mut TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

async fn serve_one(mut s: TcpStream, how: Hostility) {
    match how {
        Hostility::Reset => {
            let _ = s.set_zero_linger();
            drop(s);
        }
        Hostility::Hang => {
            read_head(&mut s).await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Hostility::Trickle => {
            read_head(&mut s).await;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n").await;
            loop {
                if s.write_all(b"x").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Hostility::Huge => {
            read_head(&mut s).await;
            let size = 10 * 1024 * 1024;
            let _ = s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").as_bytes()).await;
            let chunk = vec![b'z'; 64 * 1024];
            let mut sent = 0;
            while sent < size {
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
                sent += chunk.len();
            }
        }
        Hostility::Garbage => {
            read_head(&mut s).await;
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 not http at all\r\n\r\n").await;
        }
    }
}

/// Starts a hostile receiver; returns its address.
pub async fn start(how: Hostility) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve_one(s, how));
        }
    });
    addr
}
