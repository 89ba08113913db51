//! A small client for Hookline's API, as a tenant's code would use it.

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Talks to one Hookline API with one key.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

/// A response: status and JSON body (`Null` if empty or not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Body.
    pub body: Value,
}

impl Answer {
    /// The `error.code`, if this is an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The `data` member.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
}

impl ApiClient {
    /// A client for the API at `base` (like `http://127.0.0.1:8080`).
    pub fn new(base: &str, key: Option<&str>) -> Self {
        ApiClient { http: reqwest::Client::new(), base: base.trim_end_matches('/').to_owned(), key: key.map(str::to_owned) }
    }

    /// The same API with another key.
    pub fn with_key(&self, key: &str) -> Self {
        ApiClient { http: self.http.clone(), base: self.base.clone(), key: Some(key.to_owned()) }
    }

    /// The key this client sends.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The API's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request with an optional JSON body.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = &self.key {
            rb = rb.bearer_auth(k);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("API request");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("API body");
        Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    /// Sends raw bytes as the body.
    pub async fn send_raw(&self, method: Method, path: &str, body: Vec<u8>, content_type: &str) -> Answer {
        let mut rb = self.http.request(method, format!("{}{path}", self.base)).header("content-type", content_type).body(body);
        if let Some(k) = &self.key {
            rb = rb.bearer_auth(k);
        }
        let resp = rb.send().await.expect("API request");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("API body");
        Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body)).await
    }

    /// PATCH a JSON body.
    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.send(Method::PATCH, path, Some(body)).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, path, None).await
    }

    /// Creates an API key for `tenant` with `scopes` (this client must be an admin); returns the secret.
    pub async fn create_key(&self, tenant: &str, scopes: &[&str]) -> String {
        let a = self.post("/api-keys", serde_json::json!({"data": {"tenant": tenant, "scopes": scopes}})).await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        a.data()["key"].as_str().expect("key").to_owned()
    }

    /// Creates a webhook; returns its JSON.
    pub async fn create_webhook(&self, url: &str, events: &[&str]) -> Value {
        let a = self.post("/webhooks", serde_json::json!({"data": {"endpoint_url": url, "listened_events": events}})).await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        a.data().clone()
    }

    /// Publishes an event; returns the stored event.
    pub async fn publish(&self, data: Value) -> Value {
        let a = self.post("/events", serde_json::json!({ "data": data })).await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        a.data().clone()
    }
}
