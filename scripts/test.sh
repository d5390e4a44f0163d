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
# The SSH tests bring up the hosts they need. Whatever the tests' outcome, nothing of the test
# bed is left on the machine afterwards: hosts, namespaces, veths, bridge, cgroups, and its
# directory (hosts' disks, volume stand-ins, keys).
teardown() {
  local status=$? said
  if ! said=$(scripts/testbed.sh down --purge 2>&1); then
    printf 'test bed teardown failed:\n%s\n' "$said" >&2
    [ "$status" != 0 ] || status=1
  fi
  exit "$status"
}
trap teardown EXIT
# A host that waits for SSH and systemd longer than this fails its test. The AWS tests leave
# their hosts (etcd members) running until the teardown, so a later binary's hosts boot on a
# loaded machine: once, a worker's sshd was not up within the default 60 s.
export RAFTER_TESTBED_TIMEOUT=${RAFTER_TESTBED_TIMEOUT:-180}

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test"
cargo test --locked "$@"
