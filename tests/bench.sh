#!/usr/bin/env bash
# The full benchmark run: builds the bench tool, the three Lambdas (host binaries for
# their init time, arm64 zips for their size) in release mode, starts moto's server,
# and prints every figure of BENCHMARKS.md. Takes a few minutes after the first build.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/tools.sh

step "tools"
rustup target add aarch64-unknown-linux-gnu >/dev/null
venv moto "$MOTO_PIN"
venv lambda "$CARGO_LAMBDA_PIN"

step "cargo build --release (bench tool and Lambda binaries)"
cargo build --release -p hookline-bench -p api -p fanout -p sender

step "cargo lambda build --release --arm64 (zips)"
PATH="$TOOLS/lambda/bin:$PATH" cargo lambda build --release --arm64 --output-format zip -p api -p fanout -p sender

start_moto
step "hookline-bench on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
target/release/hookline-bench "$@"
