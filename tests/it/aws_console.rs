//! The console and the portal in AWS mode: the API Lambda's handler serves the console's
//! page, and a portal link opens a session over the DynamoDB key store that the API
//! holds to its capabilities and that ends with its link, in another container too.

use hookline_aws::{AwsConfig, Clients};
use hookline_domain::auth::ApiKeySecret;
use hookline_http::ReqwestHttpClient;
use serde_json::json;
use std::sync::Arc;
use tests::{lambda, moto};

#[tokio::test]
async fn the_api_lambda_serves_the_console_and_portal_sessions_over_dynamodb() {
    let sdk = moto::sdk_config().await;
    let clients = Clients::new(&sdk);
    let resources = infra::provision(&clients, &moto::prefix()).await.expect("provision");
    let env: Vec<(&str, String)> = infra::env_vars(&resources);
    let config = AwsConfig::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).expect("config");
    let http = Arc::new(ReqwestHttpClient::new(&hookline_domain::webhook::EndpointPolicy::default()).expect("http"));
    let admin = ApiKeySecret::generate();
    let console = api::ConsoleSettings { product_name: "Acme".into(), ..Default::default() };
    let admin_hash = admin.hash();
    let container = || api::app(hookline_aws::build(&clients, &config, http.clone()), Some(&admin_hash), console.clone());
    let api = container().await.expect("api app");

    let (status, headers, page) = lambda::call_api_raw(&api, "GET", "/console/", None, None).await;
    assert_eq!(status, 200);
    let page = String::from_utf8(page).expect("html");
    assert!(page.contains(r#"data-product-name="Acme""#) && page.contains("<title>Acme</title>"), "{page}");
    assert!(headers.get("content-security-policy").is_some_and(|v| v.to_str().unwrap_or_default().contains("script-src 'self'")));

    let (status, key) = lambda::call_api(
        &api,
        "POST",
        "/api-keys",
        Some(admin.expose()),
        Some(json!({"data": {"tenant": "acme", "scopes": ["webhooks:read", "webhooks:write"]}})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let key = key["data"]["key"].as_str().expect("key").to_owned();
    let (status, link) = lambda::call_api(&api, "POST", "/portal/links", Some(&key), Some(json!({"data": {}}))).await;
    assert_eq!(status, 201, "{link}");
    let url = link["data"]["url"].as_str().expect("url");
    assert!(url.starts_with("https://hooks.example.com/console/#portal=hkp_"), "built from API Gateway's host and scheme: {url}");
    let token = json!({"data": {"token": link["data"]["token"]}});
    let (status, session) = lambda::call_api(&api, "POST", "/portal/sessions", None, Some(token.clone())).await;
    assert_eq!(status, 201, "{session}");
    let session = session["data"]["token"].as_str().expect("session").to_owned();
    assert_eq!(lambda::call_api(&api, "POST", "/portal/sessions", None, Some(token)).await.1["error"]["code"], "portal_link_used");
    assert_eq!(lambda::call_api(&api, "GET", "/webhooks", Some(&session), None).await.0, 200);
    let hook = json!({"data": {"endpoint_url": "https://ok.example/hook", "listened_events": ["*"]}});
    assert_eq!(lambda::call_api(&api, "POST", "/webhooks", Some(&session), Some(hook)).await.0, 403, "a view-only session");

    // Another container has the session and its link at hand; revoking the link ends the
    // session at once in the container that revoked it and in a new one, and in the other
    // once its cached copies lapse (README: within a minute).
    let other = container().await.expect("api app");
    assert_eq!(lambda::call_api(&other, "GET", "/webhooks", Some(&session), None).await.0, 200);
    let id = link["data"]["id"].as_str().expect("id");
    assert_eq!(lambda::call_api(&api, "DELETE", &format!("/portal/links/{id}"), Some(&key), None).await.0, 204);
    let (status, refused) = lambda::call_api(&api, "GET", "/webhooks", Some(&session), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (401, Some("session_revoked")), "at once where it was revoked");
    let fresh = container().await.expect("api app");
    assert_eq!(lambda::call_api(&fresh, "GET", "/webhooks", Some(&session), None).await.0, 401);
    assert_eq!(lambda::call_api(&other, "GET", "/webhooks", Some(&session), None).await.0, 200, "the other's copy, until it lapses");
}
