//! The `api` binary, run once against a local Lambda runtime API and moto's server:
//! `main` wires everything from environment variables alone.

use hookline_domain::auth::ApiKeySecret;
use serde_json::json;
use tests::moto;
use tests::runtime_api::RuntimeApi;

#[tokio::test]
async fn the_binary_serves_an_api_gateway_request_from_its_environment_alone() {
    let (_, resources) = moto::provisioned().await;
    let admin = ApiKeySecret::generate();
    let mut env = moto::function_env(&resources);
    env.push(("HOOKLINE_ADMIN_KEY_HASH".into(), admin.hash()));
    let req = tests::lambda::api_request_json("GET", "/webhooks", Some(admin.expose()), None);
    let runtime = RuntimeApi::start(req).await;
    let out = runtime.invoke(env!("CARGO_BIN_EXE_api"), &env).await;
    assert_eq!(out.kind, "response", "{:?}", out.body);
    assert_eq!(out.body["statusCode"], 200, "{:?}", out.body);
    let body: serde_json::Value = serde_json::from_str(out.body["body"].as_str().expect("body")).expect("json");
    assert_eq!(body, json!({"data": [], "next_cursor": null}));
    println!("api init to first poll: {:?}", out.init);
}
