//! A Hookline over the embedded adapters (in-memory SQLite, a throwaway RSA key) with a
//! scripted HTTP client, so nothing leaves the process; the router to call; and the
//! check of an answer against what `openapi.json` promises.

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use hookline_domain::Hookline;
use hookline_domain::Policy;
use hookline_domain::auth::ApiKeySecret;
use hookline_domain::ports::{Clock, FailureKind, HttpClient, HttpOutcome, OutboundRequest, SystemClock};
use hookline_domain::usecases::ensure_admin_key;
use hookline_embedded::{Database, LocalKeySigner, SqliteStorage};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tower::ServiceExt;

/// Host whose receiver never answers (the connection is refused).
pub const DOWN_HOST: &str = "down.example";

/// Answers every delivery with 200 `ok`, except to [`DOWN_HOST`], which cannot be reached.
struct ScriptedHttp;

#[async_trait]
impl HttpClient for ScriptedHttp {
    async fn post(&self, request: OutboundRequest) -> HttpOutcome {
        if request.url.host_str() == Some(DOWN_HOST) {
            HttpOutcome::Failed { kind: FailureKind::Connect, message: "connection refused".into(), elapsed: Duration::from_millis(3) }
        } else {
            HttpOutcome::Response { status: 200, retry_after: None, body: Bytes::from_static(b"ok"), elapsed: Duration::from_millis(2) }
        }
    }
}

/// A Hookline behind the real router, with the bootstrap admin key.
pub struct App {
    /// The ports, for driving fan-out and send steps directly.
    pub hookline: Arc<Hookline>,
    /// The router under test.
    pub router: Router,
    /// An `admin` key of tenant `default`.
    pub admin: String,
    _dir: tempfile::TempDir,
}

/// An answer: status, headers and raw body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (`Null` if empty).
    pub fn json(&self) -> Value {
        if self.body.is_empty() { Value::Null } else { serde_json::from_slice(&self.body).expect("JSON body") }
    }
}

pub async fn app() -> App {
    app_at(Arc::new(SystemClock)).await
}

/// A Hookline whose clock is `clock`.
pub async fn app_at(clock: Arc<dyn Clock>) -> App {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = SqliteStorage::new(Database::in_memory().expect("database"), clock.clone());
    let admin = ApiKeySecret::generate();
    ensure_admin_key(&storage, &admin.hash(), clock.now()).await.expect("admin key");
    let signer = Arc::new(LocalKeySigner::load_or_create(&dir.path().join("key")).expect("signing key"));
    let secrets = Arc::new(hookline_embedded::LocalSecretBox::load_or_create(&dir.path().join("secrets-key")).expect("secrets key"));
    let hookline = Arc::new(storage.hookline(signer, secrets, Arc::new(ScriptedHttp), Policy::default()));
    App { router: hookline_api::router(hookline.clone()), hookline, admin: admin.expose().to_owned(), _dir: dir }
}

impl App {
    /// Sends one request through the router.
    pub async fn call(&self, method: &str, uri: &str, key: Option<&str>, body: Option<Vec<u8>>, headers: &[(&str, &str)]) -> Answer {
        let mut req = Request::builder().method(Method::from_bytes(method.as_bytes()).expect("method")).uri(uri);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.map(Body::from).unwrap_or_else(Body::empty)).expect("request");
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let (parts, body) = resp.into_parts();
        Answer { status: parts.status, headers: parts.headers, body: body.collect().await.expect("body").to_bytes() }
    }
}

/// The document, parsed once.
pub static DOC: LazyLock<Value> = LazyLock::new(|| serde_json::from_str(hookline_api::OPENAPI_JSON).expect("openapi.json is JSON"));

/// Follows a local `$ref` (`#/components/...`) to its target.
pub fn resolve(v: &Value) -> Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let target = r.strip_prefix('#').unwrap_or_else(|| panic!("{r} is not a local reference"));
            resolve(DOC.pointer(target).unwrap_or_else(|| panic!("{r} resolves to nothing")))
        }
        None => v.clone(),
    }
}

/// A validator for a schema of the document, independent of Hookline's own code.
/// The document's `components` travel with it so its references resolve.
pub fn validator(schema: &Value) -> jsonschema::Validator {
    let mut root = schema.clone();
    if let Some(obj) = root.as_object_mut() {
        obj.insert("components".into(), DOC["components"].clone());
    }
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}\n{schema:#}"))
}

/// Checks `answer` against the document's promise for `method template`: its status is
/// documented, its content type is the documented one, and its body matches the schema
/// (or is empty where the document gives no content).
pub fn conforms(method: &str, template: &str, answer: &Answer) {
    let op = &DOC["paths"][template][method.to_ascii_lowercase()];
    assert!(op.is_object(), "{method} {template} is not documented");
    let status = answer.status.as_str();
    let documented = op["responses"].get(status).unwrap_or_else(|| {
        panic!("{method} {template} answered {status}, which the document does not list: {}", String::from_utf8_lossy(&answer.body))
    });
    let response = resolve(documented);
    let Some(content) = response.get("content") else {
        assert!(answer.body.is_empty(), "{method} {template} {status} has a body the document does not describe");
        return;
    };
    let content_type = answer.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(content.get(content_type).is_some(), "{method} {template} {status} answered content type {content_type:?}");
    let body = answer.json();
    let schema = &content[content_type]["schema"];
    if let Err(e) = validator(schema).validate(&body) {
        panic!("{method} {template} {status} does not match the document: {e} at {}\n{body:#}", e.instance_path());
    }
}
