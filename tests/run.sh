#!/usr/bin/env bash
# Runs every Hookline test from a fresh clone: formatting, lints, unused dependencies,
# unit, contract and end-to-end suites (local mode and AWS mode against moto's server),
# a schemathesis fuzz of the API against its OpenAPI document, the SAM template checks,
# and the Lambda builds. Installs what it needs by itself, under .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/.tools
export SAM_CLI_TELEMETRY=0
source tests/tools.sh

step "tools"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add aarch64-unknown-linux-gnu >/dev/null
venv moto "$MOTO_PIN"
venv sam 'aws-sam-cli==1.170.0' 'cfn-lint==1.58.0'
venv lambda "$CARGO_LAMBDA_PIN"
venv schemathesis 'schemathesis==4.32.5'
# shellcheck disable=SC2086
venv verifiers $VERIFIERS_PIN
# shellcheck disable=SC2086
npm_tools $NODE_VERIFIERS_PIN
install_cargo_machete

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo machete (no unused dependencies)"
"$TOOLS/cargo/bin/cargo-machete"

step "template: sam validate and cfn-lint (offline)"
"$TOOLS/sam/bin/sam" validate --region us-east-1
"$TOOLS/sam/bin/cfn-lint" template.yaml

step "moto server"
start_moto

# Every target once, with the features the tests use, so that the binaries run below
# (local mode for the fuzzing, the bench tool) are not built again with other features.
step "cargo build --workspace --all-targets"
cargo build --workspace --all-targets

step "cargo test"
cargo test --workspace

step "API fuzzing: schemathesis against openapi.json, in a network namespace with only loopback"
bash tests/fuzz-api.sh target/debug/hookline

step "console: end-to-end in Chromium (playwright-core, axe-core); screenshots in target/console-screenshots"
bash tests/console/run.sh target/debug/hookline

step "cargo lambda build --release --arm64 (api, fanout, sender)"
PATH="$TOOLS/lambda/bin:$PATH" cargo lambda build --release --arm64 --output-format zip -p api -p fanout -p sender
for f in api fanout sender; do
  zip="target/lambda/$f/bootstrap.zip"
  test -s "$zip" || { echo "missing $zip"; exit 1; }
  printf '%-7s %s bytes\n' "$f" "$(stat -c %s "$zip")"
done

step "benchmark smoke run, debug build (keeps the bench tool from rotting; its figures mean nothing)"
target/debug/hookline-bench --smoke
