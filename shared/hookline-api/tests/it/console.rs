//! The console's files: served with a strict policy, the theme escaped into the page,
//! nothing outside the console's own files.

use crate::support::app;
use hookline_api::ConsoleSettings;

async fn get(router: &axum::Router, uri: &str, headers: &[(&str, &str)]) -> (u16, http::HeaderMap, String) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut req = http::Request::builder().uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = router.clone().oneshot(req.body(axum::body::Body::empty()).expect("request")).await.expect("infallible");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts.status.as_u16(), parts.headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn the_console_is_served_with_its_theme_and_a_strict_policy() {
    let base = app().await;
    let settings = ConsoleSettings {
        product_name: "Acme \"<Hooks>\"".into(),
        accent: Some("#4f46e5".into()),
        frame_ancestors: vec!["https://app.acme.example".into()],
        ..Default::default()
    };
    let router = hookline_api::router_with(base.hookline.clone(), settings);
    let (status, headers, page) = get(&router, "/console/", &[]).await;
    assert_eq!(status, 200);
    let csp = headers.get("content-security-policy").and_then(|v| v.to_str().ok()).expect("CSP");
    assert!(csp.contains("script-src 'self';") && csp.contains("frame-ancestors https://app.acme.example"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(headers.get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]));
    assert!(page.contains(r#"data-product-name="Acme &quot;&lt;Hooks&gt;&quot;""#), "the name is escaped: {page}");
    assert!(page.contains(r##"data-accent="#4f46e5""##));
    assert!(!page.contains("__HOOKLINE_"), "every placeholder is filled");
    assert!(!page.contains("<script>") && !page.contains(" onload=") && !page.contains("style="), "no inline script or style");

    let etag = headers.get("etag").and_then(|v| v.to_str().ok()).expect("etag").to_owned();
    assert_eq!(get(&router, "/console/", &[("if-none-match", &etag)]).await.0, 304);
    let (status, headers, _) = get(&router, "/console", &[]).await;
    assert_eq!((status, headers.get("location").and_then(|v| v.to_str().ok())), (308, Some("console/")));
    for uri in ["/console/nope.js", "/console/..%2Fopenapi.json", "/console/.hidden.js", "/console/index.exe"] {
        assert_eq!(get(&router, uri, &[]).await.0, 404, "{uri}");
    }
    // The default router serves the console too, unembeddable.
    let (status, headers, _) = get(&base.router, "/console/index.html", &[]).await;
    assert_eq!(status, 200);
    assert!(headers.get("content-security-policy").and_then(|v| v.to_str().ok()).is_some_and(|c| c.ends_with("frame-ancestors 'none'")));
}
