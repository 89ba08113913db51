//! moto's server on loopback: a real AWS-compatible endpoint (DynamoDB, DynamoDB
//! Streams, SQS, KMS) for the AWS adapters' tests, talked to by the real SDK clients.
//!
//! `tests/run.sh` installs moto and starts one server for the whole run, passing its
//! URL in `HOOKLINE_TEST_AWS_ENDPOINT`. Without that variable the first test starts
//! its own server from `.tools/moto` (a watchdog stops it when the tests exit).
//! Each test provisions resources under its own random prefix, so tests share the
//! server without interfering.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use hookline_aws::{Clients, Resources};
use std::net::TcpListener;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static ENDPOINT: OnceLock<String> = OnceLock::new();
static WATCHDOG: OnceLock<std::sync::Mutex<std::process::Child>> = OnceLock::new();

fn start_server() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned();
    let bin = root.join(".tools/moto/bin/moto_server");
    assert!(bin.exists(), "moto is not installed at {}; run `bash tests/run.sh`, which installs it", bin.display());
    let port = TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    // The shell waits for this test process to end, then stops moto.
    let script = format!(
        "'{}' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; while kill -0 {} 2>/dev/null; do sleep 1; done; kill $m",
        bin.display(),
        std::process::id()
    );
    let child = std::process::Command::new("sh").arg("-c").arg(script).spawn().expect("start moto");
    // Kept for the life of the test process; the shell reaps moto itself.
    let _ = WATCHDOG.set(std::sync::Mutex::new(child));
    format!("http://127.0.0.1:{port}")
}

fn wait_ready(url: &str) {
    let addr = url.trim_start_matches("http://").to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "moto did not start at {url}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The emulator's URL, starting it if needed.
pub fn endpoint() -> &'static str {
    ENDPOINT.get_or_init(|| {
        let url = std::env::var("HOOKLINE_TEST_AWS_ENDPOINT").ok().filter(|v| !v.is_empty()).unwrap_or_else(start_server);
        wait_ready(&url);
        url
    })
}

/// SDK configuration pointing at the emulator (any credentials work there).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

/// The environment a Lambda binary needs to reach the emulator.
pub fn lambda_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint().to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

/// A random resource-name prefix for one test.
pub fn prefix() -> String {
    format!("t{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

/// Clients and a fresh set of resources for one test.
pub async fn provisioned() -> (Clients, Resources) {
    let clients = Clients::new(&sdk_config().await);
    let resources = infra::provision(&clients, &prefix()).await.expect("provision");
    (clients, resources)
}

/// Everything a Lambda binary needs in its environment to run against `resources`
/// on the emulator.
pub fn function_env(resources: &Resources) -> Vec<(String, String)> {
    lambda_env().into_iter().chain(infra::env_vars(resources)).map(|(k, v)| (k.to_owned(), v)).collect()
}
