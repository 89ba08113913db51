#!/usr/bin/env bash
# Fuzzes Hookline's API with schemathesis against the API's own openapi.json: local mode
# on loopback, a tenant key with every scope, and at least 1,000 generated requests.
# Fails on any 5xx, on any answer whose status, content type, headers or body the
# document does not allow, on a request the document calls invalid being accepted, and
# on schemathesis's other checks (405 and Allow for undocumented methods, 401 without a
# key, deleted things staying gone). Only positive_data_acceptance is left out: the
# document cannot say everything the server checks (the event catalogue is
# configurable, header names may not repeat in another case), so a request that fits
# the schema may still rightly get a 4xx.
#
# The fuzzer creates webhooks pointing wherever it likes and asks Hookline to send test
# deliveries to them, so Hookline and the fuzzer run inside a fresh network namespace
# that has nothing but loopback: no request and no DNS lookup can leave the machine.
# Where such a namespace cannot be made, this script refuses to fuzz.
#
#   tests/fuzz-api.sh [hookline binary]      (default target/debug/hookline)
#
# Needs schemathesis in .tools/schemathesis (tests/run.sh installs it). Set
# HOOKLINE_FUZZ_SEED to replay a run; HOOKLINE_FUZZ_EXAMPLES sets the examples per
# operation (default 100, about 2,000 requests in all).
set -euo pipefail
BIN=$(realpath "${1:-$(dirname "$0")/../target/debug/hookline}")
cd "$(dirname "$0")/.."
ROOT=$PWD
ST=$ROOT/.tools/schemathesis/bin/st
EXAMPLES=${HOOKLINE_FUZZ_EXAMPLES:-100}
SEED=${HOOKLINE_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
MIN_CASES=1000

# The only way in is through a new namespace; the marker merely stops the recursion, and
# the check below refuses any namespace with an interface other than loopback.
if [ "${HOOKLINE_FUZZ_IN_NETNS:-}" != 1 ]; then
  if ! unshare -rn true 2>/dev/null; then
    echo "fuzz-api: cannot create a network namespace (unshare -rn failed); refusing to fuzz the API with network access" >&2
    exit 1
  fi
  exec unshare -rn env HOOKLINE_FUZZ_IN_NETNS=1 bash "$ROOT/tests/fuzz-api.sh" "$BIN"
fi
command -v ip >/dev/null || { echo "fuzz-api: needs ip (iproute2) to bring up loopback" >&2; exit 1; }
if ip -o link show | grep -v '^[0-9]*: lo:' | grep -q . || { ip route show; ip -6 route show; } | grep -v ' dev lo ' | grep -q .; then
  echo "fuzz-api: this network namespace reaches beyond loopback; refusing to fuzz" >&2
  exit 1
fi
ip link set lo up

test -x "$BIN" || { echo "fuzz-api: no hookline binary at $BIN (cargo build --bin hookline)" >&2; exit 1; }
test -x "$ST" || { echo "fuzz-api: no schemathesis at $ST (tests/run.sh installs it)" >&2; exit 1; }

WORK=$(mktemp -d)
LOG=$ROOT/target/fuzz-api-hookline.log
REPORT=$ROOT/target/fuzz-api-report
mkdir -p "$ROOT/target"
HOOKLINE_PID=
cleanup() {
  if [ -n "$HOOKLINE_PID" ]; then kill "$HOOKLINE_PID" 2>/dev/null || true; wait "$HOOKLINE_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

ADMIN="hkl_fuzz_admin_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
# Private endpoints are allowed so the fuzzer's webhooks are accepted (more of the API is
# reached); the namespace is what keeps deliveries on this machine. A short timeout keeps
# test sends quick.
HOOKLINE_DATA_DIR="$WORK/data" HOOKLINE_LISTEN=127.0.0.1:0 HOOKLINE_ADMIN_KEY="$ADMIN" \
  HOOKLINE_ALLOW_PRIVATE_ENDPOINTS=true HOOKLINE_DELIVERY_TIMEOUT=2s HOOKLINE_LOG=warn \
  "$BIN" > "$WORK/stdout" 2> "$LOG" &
HOOKLINE_PID=$!

BASE=
for _ in $(seq 300); do
  BASE=$(sed -n 's/^Hookline listening on \(http:\/\/[0-9.:]*\)$/\1/p' "$WORK/stdout")
  [ -n "$BASE" ] && break
  kill -0 "$HOOKLINE_PID" 2>/dev/null || { cat "$LOG" >&2; echo "fuzz-api: hookline exited at start" >&2; exit 1; }
  sleep 0.1
done
[ -n "$BASE" ] || { echo "fuzz-api: hookline did not start" >&2; exit 1; }

# A key of its own tenant with every scope, as a customer would hold.
KEY=$(python3 - "$BASE" "$ADMIN" <<'PY'
import json, sys, urllib.request
body = {"data": {"tenant": "fuzz", "scopes": ["webhooks:read", "webhooks:write", "events:read", "events:write", "admin"],
                 "description": "schemathesis"}}
req = urllib.request.Request(sys.argv[1] + "/api-keys", json.dumps(body).encode(), method="POST",
                             headers={"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=10))["data"]["key"])
PY
)

echo "fuzz-api: schemathesis against $BASE/openapi.json, $EXAMPLES examples per operation, seed $SEED"
rm -rf "$REPORT"
status=0
# One worker: with two, Hypothesis under CPython 3.11 sometimes fails to describe its own
# strategies ("AST constructor recursion depth mismatch"); one is fast enough anyway.
# Run from target/, where schemathesis keeps its .schemathesis/ cache (for `st replay`).
cd "$ROOT/target"
"$ST" run "$BASE/openapi.json" \
  --header "Authorization: Bearer $KEY" \
  --checks all --exclude-checks positive_data_acceptance \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$EXAMPLES" \
  --seed "$SEED" \
  --workers 1 \
  --request-timeout 10 \
  --generation-database none \
  --report ndjson --report-dir "$REPORT" \
  --no-color || status=$?

# Count what was sent from the event stream, so a quietly shrinking run cannot pass.
CASES=$(python3 - "$REPORT" <<'PY'
import glob, json, sys
n = 0
for path in glob.glob(sys.argv[1] + "/*.ndjson"):
    for line in open(path):
        event = json.loads(line)
        if "ScenarioFinished" in event:
            n += len(event["ScenarioFinished"].get("recorder", {}).get("cases", {}))
print(n)
PY
)
echo "fuzz-api: $CASES test cases sent"

if grep -q 'panicked' "$LOG"; then
  echo "fuzz-api: hookline panicked:" >&2
  grep -A5 'panicked' "$LOG" | head -40 >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "fuzz-api: failed (replay with HOOKLINE_FUZZ_SEED=$SEED); hookline's log: target/fuzz-api-hookline.log" >&2
  exit "$status"
fi
if [ "$CASES" -lt "$MIN_CASES" ]; then
  echo "fuzz-api: only $CASES test cases, fewer than $MIN_CASES" >&2
  exit 1
fi
