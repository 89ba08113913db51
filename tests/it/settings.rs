//! The settings lists stay in step: README's local-mode variables, README's AWS
//! parameter table, `template.yaml`'s parameters and the variables it gives each
//! function, and the variables the code reads.

use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Variables a local-mode setting has no AWS counterpart for (README says why).
const LOCAL_ONLY: [&str; 11] = [
    "HOOKLINE_CONSOLE_DIR",
    "HOOKLINE_METRICS_LISTEN",
    "HOOKLINE_LOG_FORMAT",
    "HOOKLINE_LISTEN",
    "HOOKLINE_DATA_DIR",
    "HOOKLINE_SEND_CONCURRENCY",
    "HOOKLINE_ALLOW_PRIVATE_ENDPOINTS",
    "HOOKLINE_HEADER_READ_TIMEOUT",
    "HOOKLINE_BODY_READ_TIMEOUT",
    "HOOKLINE_IDLE_TIMEOUT",
    "HOOKLINE_MAX_CONNECTIONS",
];
/// Local-mode variables whose AWS counterpart reads the same setting another way.
const COUNTERPARTS: [(&str, &str); 2] =
    [("HOOKLINE_ADMIN_KEY", "HOOKLINE_ADMIN_KEY_HASH"), ("HOOKLINE_EVENT_CATALOG", "HOOKLINE_EVENT_CATALOG_JSON")];

/// The section of README under `heading`, up to the next heading of its level.
fn section<'a>(readme: &'a str, heading: &str) -> &'a str {
    let start = readme.find(heading).unwrap_or_else(|| panic!("README has no {heading:?}"));
    let rest = &readme[start + heading.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The cells of each table row in `text` whose first cell is a `code` span.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().trim_matches('`').to_owned()).collect())
        .collect()
}

/// Every `HOOKLINE_*` name quoted in a source file.
fn variables_in(rel: &str) -> BTreeSet<String> {
    let text = read(rel);
    text.match_indices("\"HOOKLINE_")
        .map(|(i, _)| text[i + 1..].chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect::<String>())
        .collect()
}

/// `template.yaml`'s functions and, for each, its variables (the global ones too) as
/// written (a YAML value, tags included).
fn function_variables(t: &Value) -> BTreeMap<String, BTreeMap<String, String>> {
    let globals = t["Globals"]["Function"]["Environment"]["Variables"].as_mapping().expect("global variables").clone();
    let mut out = BTreeMap::new();
    for (id, r) in t["Resources"].as_mapping().expect("resources") {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        let own = r["Properties"]["Environment"]["Variables"].as_mapping().cloned().unwrap_or_default();
        for (k, v) in globals.iter().chain(own.iter()) {
            vars.insert(k.as_str().expect("name").to_owned(), serde_yaml::to_string(v).expect("value"));
        }
        out.insert(id.as_str().expect("id").to_owned(), vars);
    }
    out
}

#[test]
fn readme_template_and_code_name_the_same_settings() {
    let readme = read("README.md");
    let template: Value = serde_yaml::from_str(&read("template.yaml")).expect("template YAML");
    let local: BTreeSet<String> = rows(section(&readme, "## Configure local mode")).into_iter().map(|r| r[0].clone()).collect();
    let deploy = section(&readme, "## Deploy to AWS");
    let aws_rows: Vec<Vec<String>> = rows(deploy).into_iter().filter(|r| r.len() == 5).collect();
    assert!(aws_rows.len() >= 12, "README's parameter table: {aws_rows:?}");

    // Every variable local mode reads is in README's table, and nothing else is.
    let mut read_locally = variables_in("functions/hookline/src/config.rs");
    read_locally.extend(variables_in("shared/hookline-config/src/lib.rs"));
    read_locally.extend(variables_in("shared/hookline-api/src/console.rs"));
    read_locally.insert("HOOKLINE_LOG".into()); // read by main.rs's log filter
    assert_eq!(local, read_locally, "README's local-mode table against the variables local mode reads");

    // README's parameters are the template's, with the same defaults.
    let params = template["Parameters"].as_mapping().expect("parameters");
    let names: BTreeSet<String> = params.keys().map(|k| k.as_str().expect("name").to_owned()).collect();
    let documented: BTreeSet<String> = aws_rows.iter().map(|r| r[0].clone()).collect();
    assert_eq!(documented, names, "README's parameter table against template.yaml's parameters");
    for row in &aws_rows {
        let default = &params[row[0].as_str()]["Default"];
        let default = default.as_str().map(str::to_owned).or_else(|| default.as_u64().map(|n| n.to_string())).unwrap_or_default();
        if !row[3].starts_with('(') && !row[3].contains(' ') {
            assert_eq!(row[3], default, "{}: README's default against the template's", row[0]);
        }
    }

    // Each parameter reaches its variable in exactly the functions README names.
    let functions = function_variables(&template);
    let ids = |cell: &str| -> BTreeSet<String> {
        if cell == "all" {
            return functions.keys().cloned().collect();
        }
        cell.split(", ")
            .map(|f| match f {
                "API" => "ApiFunction".to_owned(),
                "sender" => "SenderFunction".to_owned(),
                "fan-out" => "FanoutFunction".to_owned(),
                other => panic!("unknown function {other:?} in README"),
            })
            .collect()
    };
    let mut aws_vars = BTreeSet::new();
    for row in &aws_rows {
        let (param, var) = (&row[0], &row[1]);
        if var == "—" {
            // A parameter of the template's own resources (the alarms' topic), given to no function.
            assert!(functions.values().all(|vars| vars.values().all(|v| !v.contains(&format!("Ref {param}")))), "{param}");
            continue;
        }
        aws_vars.insert(var.clone());
        let given: BTreeSet<String> = functions
            .iter()
            .filter(|(_, vars)| vars.get(var).is_some_and(|v| v.contains(&format!("Ref {param}")) || v.contains(&format!("Ref {param}\n"))))
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(given, ids(&row[2]), "{param} must set {var} in the functions README names");
    }

    // Whatever the Lambdas read is given to them: a resource or a parameter.
    let mut read_on_aws = variables_in("shared/hookline-aws/src/lib.rs");
    read_on_aws.extend(variables_in("shared/hookline-config/src/lib.rs"));
    read_on_aws.extend(variables_in("functions/api/src/lib.rs"));
    read_on_aws.extend(variables_in("shared/hookline-api/src/console.rs"));
    read_on_aws.insert("HOOKLINE_LOG".into());
    let given_on_aws: BTreeSet<String> = functions.values().flat_map(|v| v.keys().cloned()).collect();
    for var in &read_on_aws {
        if var == "HOOKLINE_ALLOW_PRIVATE_ENDPOINTS" || var == "HOOKLINE_CONSOLE_DIR" {
            continue; // for local development and tests; left unset on AWS
        }
        assert!(given_on_aws.contains(var), "the Lambdas read {var}, which template.yaml never sets");
    }

    // Every local setting has an AWS parameter, a counterpart, or README says why not.
    for var in &local {
        let counterpart = COUNTERPARTS.iter().find(|(l, _)| l == var).map(|(_, a)| *a);
        if LOCAL_ONLY.contains(&var.as_str()) {
            assert!(deploy.contains(&format!("`{var}`")), "README's AWS section must say {var} has no counterpart");
        } else {
            let aws = counterpart.unwrap_or(var);
            assert!(aws_vars.contains(aws), "{var} can be set in local mode but no AWS parameter sets {aws}");
        }
    }
}
