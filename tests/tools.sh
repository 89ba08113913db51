# Shared by tests/run.sh and tests/bench.sh: installs the Python tools Hookline's
# tests and bench use, each in its own virtualenv under .tools/ (the SAM CLI and moto
# want different boto3 versions), and the cargo tools under .tools/cargo, once per
# pinned version.

TOOLS=${TOOLS:-$PWD/.tools}

step() { printf '\n==> %s\n' "$*"; }

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

MOTO_PIN='moto[server]==5.2.5'
CARGO_LAMBDA_PIN='cargo-lambda==1.9.2'
# Receivers' own libraries, which the tests verify Standard Webhooks deliveries with,
# and Prometheus's own parser of its text format, which reads local mode's metrics.
VERIFIERS_PIN='standardwebhooks==1.1.0 svix==2.9.1 PyJWT[crypto]==2.10.1 prometheus-client==0.21.1'
# The same for Node receivers (README's snippets), from npm.
NODE_VERIFIERS_PIN='standardwebhooks@1.1.1 jose@6.2.18'

# Installs npm packages into .tools/node, once per pinned set.
npm_tools() {
  local marker="$TOOLS/node/.installed"
  if [ ! -f "$marker" ] || [ "$(cat "$marker")" != "$*" ]; then
    step "installing $* into .tools/node"
    mkdir -p "$TOOLS/node"
    # shellcheck disable=SC2068
    npm install --prefix "$TOOLS/node" --no-save --no-audit --no-fund --loglevel=error $@
    echo "$*" > "$marker"
  fi
}
CARGO_MACHETE_VERSION='0.9.2'

# Installs cargo-machete (finds declared dependencies nothing uses) into .tools/cargo,
# unless that version is there already.
install_cargo_machete() {
  if [ "$("$TOOLS/cargo/bin/cargo-machete" --version 2>/dev/null)" != "$CARGO_MACHETE_VERSION" ]; then
    step "installing cargo-machete $CARGO_MACHETE_VERSION into .tools/cargo"
    cargo install --quiet cargo-machete --version "$CARGO_MACHETE_VERSION" --locked --root "$TOOLS/cargo"
  fi
}

# Starts moto's server on a free loopback port and exports HOOKLINE_TEST_AWS_ENDPOINT;
# it stops when the calling script exits.
start_moto() {
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p target
  # moto's server, with DynamoDB requests one at a time as DynamoDB applies them
  # (tests/moto_server.py says why).
  "$TOOLS/moto/bin/python" "$(dirname "${BASH_SOURCE[0]}")/moto_server.py" 127.0.0.1 "$port" > target/moto.log 2>&1 &
  MOTO_PID=$!
  trap 'kill $MOTO_PID 2>/dev/null || true' EXIT
  python3 - "$port" <<'PY'
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
  export HOOKLINE_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
}
