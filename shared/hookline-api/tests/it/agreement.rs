//! `openapi.json` and the router agree: every documented operation is routed, every
//! route is documented, and the document itself is well-formed.

use crate::support::{DOC, app, resolve, validator};
use hookline_api::ROUTES;
use serde_json::Value;
use std::collections::BTreeSet;

/// Methods probed on every documented path. `HEAD` is left out: axum serves it wherever
/// `GET` is served, and OpenAPI does not require documenting it.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];

/// Every (METHOD, path template) the document describes.
fn documented() -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in DOC["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys().filter(|k| *k != "parameters") {
            ops.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    ops
}

/// A path with each `{parameter}` replaced by a value its documented schema accepts.
fn concrete(path: &str) -> String {
    let item = &DOC["paths"][path];
    let params: Vec<Value> = item["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(item.as_object().expect("path item").values().filter_map(|op| op["parameters"].as_array()).flatten())
        .map(resolve)
        .collect();
    let mut out = path.to_owned();
    while let Some(start) = out.find('{') {
        let end = out[start..].find('}').expect("closing brace") + start;
        let name = &out[start + 1..end];
        let param =
            params.iter().find(|p| p["name"] == name && p["in"] == "path").unwrap_or_else(|| panic!("{path}: {name} is undocumented"));
        let schema = &param["schema"];
        let value = match (schema["format"].as_str(), schema["pattern"].as_str()) {
            (Some("uuid"), _) => "00000000-0000-4000-8000-000000000000".to_owned(),
            (_, Some(p)) => format!("{}{}", p.trim_start_matches('^').split('[').next().expect("prefix"), "0".repeat(32)),
            _ => panic!("{path}: no way to make a value for {name}"),
        };
        assert!(validator(schema).is_valid(&Value::String(value.clone())), "{path}: {value} does not fit {name}");
        out.replace_range(start..=end, &value);
    }
    out
}

#[test]
fn the_document_lists_exactly_the_routes_the_router_declares() {
    let routes: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    let docs = documented();
    let undocumented: Vec<_> = routes.difference(&docs).collect();
    let unrouted: Vec<_> = docs.difference(&routes).collect();
    assert!(undocumented.is_empty(), "routes missing from openapi.json: {undocumented:?}");
    assert!(unrouted.is_empty(), "openapi.json documents operations the router lacks: {unrouted:?}");
    assert_eq!(routes.len(), ROUTES.len(), "a route is declared twice");
}

#[tokio::test]
async fn every_documented_operation_is_served_and_every_other_method_answers_405() {
    let app = app().await;
    let docs = documented();
    let paths: BTreeSet<&String> = docs.iter().map(|(_, p)| p).collect();
    for path in paths {
        let uri = concrete(path);
        let served: Vec<&str> = METHODS.iter().copied().filter(|m| docs.contains(&(m.to_string(), path.clone()))).collect();
        for method in METHODS {
            let a = app.call(method, &uri, None, None, &[]).await;
            let code = a.json()["error"]["code"].as_str().unwrap_or_default().to_owned();
            if served.contains(&method) {
                assert_ne!(a.status, 405, "{method} {path} is documented but not routed");
                assert!(code != "not_found", "{method} {path} is documented but fell through to the fallback");
            } else {
                assert_eq!((a.status.as_u16(), code.as_str()), (405, "method_not_allowed"), "{method} {path} is routed but undocumented");
                let allow = a.headers.get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default();
                let mut allowed: BTreeSet<&str> = allow.split(',').map(str::trim).filter(|m| *m != "HEAD").collect();
                allowed.remove("");
                assert_eq!(allowed, served.iter().copied().collect(), "Allow on {method} {path}");
            }
        }
        if served.contains(&"GET") {
            assert_ne!(app.call("HEAD", &uri, None, None, &[]).await.status, 405, "HEAD {path} is served with GET");
        }
    }
    let a = app.call("GET", "/no/such/path", None, None, &[]).await;
    assert_eq!((a.status.as_u16(), a.json()["error"]["code"].as_str()), (404, Some("not_found")));
}

#[test]
fn routes_are_declared_only_through_the_routes_table() {
    // The table in routes.rs feeds both `ROUTES` and the router; a route added any
    // other way would escape the two tests above.
    // The one merge adds the console's static files (console.rs), which are pages,
    // not API operations.
    let source = include_str!("../../src/routes.rs");
    assert_eq!(source.matches(".merge(console::routes(").count(), 1, "the console is merged once");
    for (needle, allowed) in [(".route(", 1), (".route_service(", 0), (".nest(", 0), (".nest_service(", 0), (".merge(", 1)] {
        assert_eq!(source.matches(needle).count(), allowed, "routes.rs uses {needle} outside the routes! table");
    }
}

#[test]
fn the_document_is_well_formed() {
    assert_eq!(DOC["openapi"], "3.1.0");
    assert_eq!(DOC["info"]["version"], env!("CARGO_PKG_VERSION"), "info.version follows the crate version");
    let mut ids = BTreeSet::new();
    for (method, path) in documented() {
        let op = &DOC["paths"][&path][method.to_ascii_lowercase()];
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
        // Path parameters are filled in, and every response's schema compiles.
        concrete(&path);
        for (status, response) in op["responses"].as_object().expect("responses") {
            let response = resolve(response);
            for media in response["content"].as_object().into_iter().flat_map(|c| c.values()) {
                validator(&media["schema"]);
            }
            assert!(status.len() == 3 && status.parse::<u16>().is_ok(), "{method} {path}: status {status}");
        }
        if let Some(body) = op.get("requestBody") {
            let schema = &body["content"]["application/json"]["schema"];
            let v = validator(schema);
            if let Some(example) = body["content"]["application/json"].get("example") {
                assert!(v.is_valid(example), "{method} {path}: the example does not fit the schema");
            }
        }
        // Public documents need no key, nor does opening a portal session (the link's
        // token is in the body, and a refused link answers 401); everything else says it
        // needs the bearer credential.
        let public = op.get("security") == Some(&Value::Array(vec![]));
        let portal_session = path == "/portal/sessions";
        assert_eq!(public, path == "/jwks/webhooks" || path == "/openapi.json" || portal_session, "{method} {path}: security");
        assert_eq!(op["responses"].get("401").is_some(), !public || portal_session, "{method} {path}: 401");
    }
    let mut refs = Vec::new();
    collect_refs(&DOC, &mut refs);
    for r in refs {
        assert!(DOC.pointer(r.trim_start_matches('#')).is_some(), "{r} resolves to nothing");
    }
}

fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                out.push(r);
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}
