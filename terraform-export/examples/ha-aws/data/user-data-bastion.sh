#!/bin/bash
# rafter first-boot script for a bastion of cluster prod.example.com.
# It records who this instance is; the node bootstrap reads /etc/rafter/node.env and
# fetches the rest of the node's configuration from s3://rafter-state-example/clusters/prod.example.com/nodes/.
set -euo pipefail

install -d -m 0755 /etc/rafter
umask 077
cat > /etc/rafter/node.env <<'NODE_ENV'
RAFTER_CLUSTER=prod.example.com
RAFTER_ROLE=bastion
RAFTER_GROUP=bastion
RAFTER_CONFIG_BASE=s3://rafter-state-example/clusters/prod.example.com
RAFTER_KUBERNETES_VERSION=1.34.2
NODE_ENV
