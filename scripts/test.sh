#!/usr/bin/env bash
# Everything CI checks, from a fresh machine: the test tools, formatting, lints and all tests.
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

step() { printf '\n==> %s\n' "$*" >&2; }

step "test tools (openssl if missing; Python venv: moto, etcd, kubernetes-validate, shellcheck, Terraform checks)"
scripts/setup-tools.sh

step "bare-host test bed packages (sshd, etcd, containerd, runc, CNI plugins, systemd-nspawn)"
scripts/testbed.sh install
# The SSH tests bring up the hosts they need; none is left running after the tests.
trap 'scripts/testbed.sh down >/dev/null 2>&1 || true' EXIT

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test"
cargo test --locked "$@"
