#!/usr/bin/env bash
# Runs every Hookline test from a fresh clone: formatting, lints, unit, contract and
# end-to-end suites (local mode and AWS mode against moto's server), a schemathesis
# fuzz of the API against its OpenAPI document, the SAM template checks, and the Lambda
# builds. Installs what it needs by itself, under .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/.tools
export SAM_CLI_TELEMETRY=0

step() { printf '\n==> %s\n' "$*"; }

# A virtualenv per tool: the SAM CLI and moto want different boto3 versions.
venv() {
  local name=$1; shift
  local marker="$TOOLS/$name/.installed"
  if [ ! -f "$marker" ] || [ "$(cat "$marker")" != "$*" ]; then
    step "installing $* into .tools/$name"
    python3 -m venv "$TOOLS/$name"
    "$TOOLS/$name/bin/pip" install --quiet --disable-pip-version-check "$@"
    echo "$*" > "$marker"
  fi
}

step "tools"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add aarch64-unknown-linux-gnu >/dev/null
venv moto 'moto[server]==5.2.5'
venv sam 'aws-sam-cli==1.170.0' 'cfn-lint==1.58.0'
venv lambda 'cargo-lambda==1.9.2'
venv schemathesis 'schemathesis==4.32.5'

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "template: sam validate and cfn-lint (offline)"
"$TOOLS/sam/bin/sam" validate --region us-east-1
"$TOOLS/sam/bin/cfn-lint" template.yaml

step "moto server"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target
"$TOOLS/moto/bin/moto_server" -H 127.0.0.1 -p "$PORT" > target/moto.log 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null || true' EXIT
python3 - "$PORT" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/moto-api/"
for _ in range(300):
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit("moto did not start")
PY
export HOOKLINE_TEST_AWS_ENDPOINT="http://127.0.0.1:$PORT"

step "cargo test"
cargo test --workspace

step "API fuzzing: schemathesis against openapi.json, in a network namespace with only loopback"
cargo build --quiet --bin hookline
bash tests/fuzz-api.sh target/debug/hookline

step "cargo lambda build --release --arm64 (api, fanout, sender)"
PATH="$TOOLS/lambda/bin:$PATH" cargo lambda build --release --arm64 --output-format zip -p api -p fanout -p sender
for f in api fanout sender; do
  zip="target/lambda/$f/bootstrap.zip"
  test -s "$zip" || { echo "missing $zip"; exit 1; }
  printf '%-7s %s bytes\n' "$f" "$(stat -c %s "$zip")"
done

step "benchmark smoke run, debug build (keeps the bench tool from rotting; its figures mean nothing)"
cargo run --quiet -p hookline-bench -- --smoke
