#!/usr/bin/env bash
# rafter's main job on an embedded default, with no AWS account: plan a highly-available
# cluster from the ha-aws profile and export the same resources as a Terraform module.
# Usage: scripts/demo.sh [OUTPUT_DIR]   (default: a new temporary directory)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$(mktemp -d -t rafter-demo.XXXXXX)}
export RAFTER_STATE="$out/state"

cargo build --quiet --manifest-path "$repo/Cargo.toml"
# Wherever cargo puts it (CARGO_TARGET_DIR, build.target-dir), not only ./target.
target_dir=$(cargo metadata --quiet --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
rafter="${target_dir:-$repo/target}/debug/rafter"

"$rafter" create cluster --name demo.example.com --profile ha-aws \
  --zones eu-west-1a,eu-west-1b,eu-west-1c --dns-zone example.com
"$rafter" get clusters
"$rafter" export terraform demo.example.com --out "$out/terraform"
echo "State store: $RAFTER_STATE" >&2
echo "Terraform module: $out/terraform" >&2
