#!/usr/bin/env bash
# Runs every check and test of the workspace, installing what is missing first.
# Used by CI (.ci/run) and by developers: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        step "installing ${missing[*]}"
        local sudo=""
        [[ $(id -u) -ne 0 ]] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

command -v redis-server >/dev/null || apt_install redis-server
# The observability test's Prometheus (tests/ts/prometheus.test.ts).
command -v prometheus >/dev/null || apt_install prometheus
if [[ -f package-lock.json ]]; then
    command -v chromium >/dev/null || apt_install chromium
    step "npm ci"
    npm ci --no-audit --no-fund --silent
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "each feature of statelesse alone"
cargo check -p statelesse --no-default-features --locked
for feature in macros axum redis redis-cluster typescript uuid metrics; do
    cargo check -p statelesse --no-default-features --features "$feature" --locked
done
cargo test -p statelesse --no-default-features --features macros --lib --locked -q

step "cargo test"
cargo test --workspace --all-features --locked

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

# Both crates together, so statelesse resolves the unpublished statelesse-macros from the package
# just built. With the verify build, not --no-verify: only building the packaged sources catches a
# file that `include` leaves out. It costs under a minute of CPU from cold (default features only)
# and seconds once target/package is warm. --allow-dirty lets it run before a commit.
step "cargo package"
cargo package -p statelesse-macros -p statelesse --locked --allow-dirty

step "cargo bench --no-run"
cargo bench --workspace --no-run --locked

if [[ -f package.json ]]; then
    step "TypeScript and browser tests"
    npm test --silent
fi

step "all checks passed"
