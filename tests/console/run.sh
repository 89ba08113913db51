#!/usr/bin/env bash
# End-to-end test of the browser console: installs Chromium (Debian's) and pinned npm
# packages (playwright-core, axe-core) if missing, starts the given hookline binary in
# local mode on a free loopback port with a fresh data directory, a real loopback
# receiver allowed, then drives the console in headless Chromium (tests/console/e2e.mjs).
#
#   bash tests/console/run.sh <path to hookline binary>
#
# The server's log is kept in target/console-e2e-server.log, screenshots go to
# target/console-screenshots/. HOOKLINE_CONSOLE_DIR, if set by the caller, makes the
# server serve the console from that directory instead of its embedded copy.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${1:?usage: bash tests/console/run.sh <path to hookline binary>}
BIN=$(realpath "$BIN")
[ -x "$BIN" ] || { echo "not an executable: $BIN" >&2; exit 1; }

TOOLS=${TOOLS:-$ROOT/.tools}
NODE_DIR=$TOOLS/console-node
# Exact pins: playwright-core 1.65.1 (the newest 1.x, engines node >= 20) drives the
# system Chromium over CDP; axe-core checks accessibility in the page.
CONSOLE_NODE_PINS='playwright-core@1.65.1 axe-core@4.14.1'

step() { printf '\n==> %s\n' "$*"; }

if [ ! -x /usr/bin/chromium ]; then
  step "installing Debian's chromium"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }; then
    echo "error: could not install chromium with apt-get (run as root, or install /usr/bin/chromium yourself)" >&2
    exit 1
  fi
fi

command -v node >/dev/null || { echo "error: node (20 or newer) is needed" >&2; exit 1; }
marker=$NODE_DIR/.installed
if [ ! -f "$marker" ] || [ "$(cat "$marker")" != "$CONSOLE_NODE_PINS" ]; then
  step "installing $CONSOLE_NODE_PINS into .tools/console-node"
  mkdir -p "$NODE_DIR"
  # shellcheck disable=SC2086
  npm install --prefix "$NODE_DIR" --no-save --no-audit --no-fund --loglevel=error $CONSOLE_NODE_PINS
  echo "$CONSOLE_NODE_PINS" > "$marker"
fi

step "starting hookline"
mkdir -p target
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATA=$(mktemp -d)
ADMIN_KEY="hkl_$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
LOG=$ROOT/target/console-e2e-server.log
# A name that needs HTML escaping and a pale accent (dark text on it) test the theming.
PRODUCT_NAME='Acme <Hooks>'
ACCENT='#facc15'
HOOKLINE_LISTEN=127.0.0.1:$PORT \
HOOKLINE_DATA_DIR=$DATA \
HOOKLINE_ADMIN_KEY=$ADMIN_KEY \
HOOKLINE_ALLOW_PRIVATE_ENDPOINTS=true \
HOOKLINE_RETRY_SCHEDULE=2s,5s \
HOOKLINE_CONSOLE_PRODUCT_NAME="$PRODUCT_NAME" \
HOOKLINE_CONSOLE_ACCENT="$ACCENT" \
HOOKLINE_LOG=${HOOKLINE_LOG:-info} \
  "$BIN" > "$LOG" 2>&1 &
SERVER_PID=$!
cleanup() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT

BASE=http://127.0.0.1:$PORT
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "$BASE/openapi.json" 2>/dev/null; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "error: hookline exited at start; its log:" >&2
    cat "$LOG" >&2
    exit 1
  fi
  sleep 0.1
done
curl -fsS -o /dev/null "$BASE/console/" || { echo "error: $BASE/console/ does not answer; log in $LOG" >&2; exit 1; }

step "console end-to-end ($BASE)"
HOOKLINE_BASE=$BASE HOOKLINE_ADMIN_KEY=$ADMIN_KEY CONSOLE_NODE_DIR=$NODE_DIR \
  PRODUCT_NAME="$PRODUCT_NAME" ACCENT="$ACCENT" \
  SCREENSHOTS=$ROOT/target/console-screenshots HOOKLINE_E2E_DATA_DIR=$DATA \
  node tests/console/e2e.mjs
