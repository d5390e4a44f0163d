#!/bin/bash
# rafter first-boot script for a control-plane of cluster dev.example.com.
# It records who this instance is; the node bootstrap reads /etc/rafter/node.env and
# fetches the rest of the node's configuration from s3://rafter-state-example/clusters/dev.example.com/nodes/.
set -euo pipefail

install -d -m 0755 /etc/rafter
umask 077
cat > /etc/rafter/node.env <<'NODE_ENV'
RAFTER_CLUSTER=dev.example.com
RAFTER_ROLE=control-plane
RAFTER_GROUP=control-plane-eu-west-1a
RAFTER_CONFIG_BASE=s3://rafter-state-example/clusters/dev.example.com
RAFTER_KUBERNETES_VERSION=1.34.2
NODE_ENV
