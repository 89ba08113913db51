//! `template.yaml` and `infra` (which the tests provision with) describe the same
//! tables and queue settings, so what is tested is what is deployed.

use serde_yaml::Value;
use std::path::Path;

fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("template.yaml")).expect("YAML")
}

fn logical_id(table: &str) -> String {
    let camel: String = table.split('-').map(|p| p[..1].to_uppercase() + &p[1..]).collect();
    format!("{camel}Table")
}

fn keys(schema: &Value, attrs: &Value) -> Vec<(String, String)> {
    schema
        .as_sequence()
        .expect("KeySchema")
        .iter()
        .map(|k| {
            let name = k["AttributeName"].as_str().expect("name").to_owned();
            let ty = attrs
                .as_sequence()
                .expect("AttributeDefinitions")
                .iter()
                .find(|a| a["AttributeName"].as_str() == Some(&name))
                .and_then(|a| a["AttributeType"].as_str())
                .expect("attribute type")
                .to_owned();
            (name, ty)
        })
        .collect()
}

fn spec_keys(spec: &[(&str, aws_sdk_dynamodb::types::ScalarAttributeType)]) -> Vec<(String, String)> {
    spec.iter().map(|(n, t)| (n.to_string(), t.as_str().to_owned())).collect()
}

#[test]
fn template_tables_match_the_provisioned_ones() {
    let t = template();
    let resources = &t["Resources"];
    for spec in infra::tables() {
        let id = logical_id(spec.name);
        let props = &resources[id.as_str()]["Properties"];
        assert!(props.is_mapping(), "template has no {id}");
        let attrs = &props["AttributeDefinitions"];
        assert_eq!(keys(&props["KeySchema"], attrs), spec_keys(spec.key), "{id} key schema");
        let gsis: Vec<(String, Vec<(String, String)>)> = props["GlobalSecondaryIndexes"]
            .as_sequence()
            .map(|s| s.iter().map(|g| (g["IndexName"].as_str().expect("index").to_owned(), keys(&g["KeySchema"], attrs))).collect())
            .unwrap_or_default();
        let want: Vec<(String, Vec<(String, String)>)> = spec.indexes.iter().map(|(n, k)| (n.to_string(), spec_keys(k))).collect();
        assert_eq!(gsis, want, "{id} indexes");
        assert_eq!(props["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
        assert_eq!(props["TimeToLiveSpecification"]["AttributeName"].as_str(), spec.ttl, "{id} TTL");
    }
    assert_eq!(resources["EventsTable"]["Properties"]["StreamSpecification"]["StreamViewType"].as_str(), Some("NEW_IMAGE"));
}

#[test]
fn the_queue_outlasts_the_sender_and_dead_letters_poison_messages() {
    let t = template();
    let r = &t["Resources"];
    let visibility = r["DeliveryQueue"]["Properties"]["VisibilityTimeout"].as_u64().expect("visibility");
    let timeout = r["SenderFunction"]["Properties"]["Timeout"].as_u64().expect("timeout");
    assert!(visibility > timeout, "visibility {visibility} s must exceed the sender's timeout {timeout} s");
    assert_eq!(visibility.to_string(), infra::QUEUE_VISIBILITY_SECS);
    assert_eq!(r["DeliveryQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"].as_u64(), Some(infra::MAX_RECEIVE_COUNT as u64));
    for f in ["ApiFunction", "FanoutFunction", "SenderFunction"] {
        assert_eq!(r[f]["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{f}");
    }
    assert_eq!(t["Globals"]["Function"]["Runtime"].as_str(), Some("provided.al2023"));
}
