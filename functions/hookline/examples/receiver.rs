//! A webhook receiver for trying Hookline out: listens on `RECEIVER_LISTEN`
//! (default `127.0.0.1:9000`), verifies each delivery the way the LogAlto webhook
//! documentation tells receivers to (JWT signature against the JWKS, then the body
//! checksum) with the independent `jsonwebtoken` crate, prints it, and answers 200.
//!
//! `HOOKLINE_URL` (default `http://127.0.0.1:8080`) is where the JWKS is fetched.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use sha2::{Digest, Sha256};

async fn verify(headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
    let token = headers.get("x-webhook-signature").and_then(|v| v.to_str().ok()).ok_or("no X-Webhook-Signature")?;
    let kid = decode_header(token).map_err(|e| e.to_string())?.kid.ok_or("no kid")?;
    // A real receiver caches the JWKS and refetches only for an unknown kid.
    let base = std::env::var("HOOKLINE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let jwks: Value =
        reqwest::get(format!("{base}/jwks/webhooks")).await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
    let jwk = jwks["keys"].as_array().and_then(|ks| ks.iter().find(|k| k["kid"] == kid.as_str())).ok_or("unknown kid")?;
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap_or(""), jwk["e"].as_str().unwrap_or("")).map_err(|e| e.to_string())?;
    let claims = decode::<Value>(token, &key, &Validation::new(Algorithm::RS256)).map_err(|e| e.to_string())?.claims;
    let checksum = hex::encode(Sha256::digest(body));
    if claims["payload-checksum"] != checksum.as_str() {
        return Err("payload checksum does not match the body".into());
    }
    Ok(claims)
}

async fn receive(headers: HeaderMap, body: Bytes) -> StatusCode {
    let delivery: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match verify(&headers, &body).await {
        Ok(_) => println!(
            "signature OK  event {} ({}.{})  delivery {}  attempt {}",
            delivery["event"]["id"],
            delivery["event"]["subject_type"].as_str().unwrap_or("?"),
            delivery["event"]["event_type"].as_str().unwrap_or("?").to_lowercase(),
            delivery["delivery"]["id"],
            delivery["delivery"]["attempt_id"]
        ),
        Err(e) => println!("signature INVALID ({e})"),
    }
    println!("{}", serde_json::to_string_pretty(&delivery).unwrap_or_default());
    StatusCode::OK
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::var("RECEIVER_LISTEN").unwrap_or_else(|_| "127.0.0.1:9000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("receiver listening on http://{}", listener.local_addr()?);
    axum::serve(listener, axum::Router::new().fallback(axum::routing::post(receive))).await?;
    Ok(())
}
