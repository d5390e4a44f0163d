#!/bin/bash
# rafter first-boot script for a node of cluster prod.example.com (group nodes-workers).
# It fetches this group's node bundle from the state store with the instance's own IAM role
# (which may read only its part of the store) and runs it; the bundle writes the node's files
# and installs Kubernetes 1.34.2 from pinned, checksum-verified assets.
# The bundle is published when `rafter update cluster` finishes, so this waits for it.
set -euo pipefail

BUNDLE_URL="s3://rafter-state-example/clusters/prod.example.com/nodes/nodes-workers/bundle.sh"
log() { printf 'rafter-user-data: %s\n' "$*" >&2; }

install -d -m 0755 /etc/rafter
umask 077
cat >/etc/rafter/node.env <<'NODE_ENV'
RAFTER_CLUSTER=prod.example.com
RAFTER_ROLE=node
RAFTER_GROUP=nodes-workers
RAFTER_BUNDLE_URL=s3://rafter-state-example/clusters/prod.example.com/nodes/nodes-workers/bundle.sh
NODE_ENV

case "$BUNDLE_URL" in
  "")
    log "no node bundle for this instance"
    exit 0
    ;;
  s3://*) ;;
  *)
    log "the cluster's state store ($BUNDLE_URL) is not in S3, so this node cannot fetch its bundle; run 'rafter export bootstrap' and copy it here"
    exit 1
    ;;
esac

# metadata PATH: a value from the instance metadata service (IMDSv2).
metadata() {
  local token
  token="$(curl --fail --silent --request PUT --header 'X-aws-ec2-metadata-token-ttl-seconds: 300' \
    http://169.254.169.254/latest/api/token)"
  curl --fail --silent --header "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/$1"
}

# field NAME: a string field of the JSON document on stdin.
field() { sed -n -E "s/.*\"$1\" *: *\"([^\"]*)\".*/\1/p" | head -n 1; }

# s3_get KEY OUT: the object at KEY of the bucket, signed with the instance role's credentials.
s3_get() {
  local role credentials region
  role="$(metadata meta-data/iam/security-credentials/)"
  credentials="$(metadata "meta-data/iam/security-credentials/$role")"
  region="$(metadata meta-data/placement/region)"
  curl --fail --silent --show-error --location \
    --aws-sigv4 "aws:amz:$region:s3" \
    --user "$(field AccessKeyId <<<"$credentials"):$(field SecretAccessKey <<<"$credentials")" \
    --header "x-amz-security-token: $(field Token <<<"$credentials")" \
    --output "$2" "https://$BUCKET.s3.$region.amazonaws.com/$1"
}

location="${BUNDLE_URL#s3://}"
BUCKET="${location%%/*}"
KEY="${location#*/}"
bundle="$(mktemp)"
waited=0
until s3_get "$KEY" "$bundle"; do
  if [ "$waited" -ge 3600 ]; then
    log "no node bundle at $BUNDLE_URL after an hour; run 'rafter update cluster prod.example.com --yes'"
    exit 1
  fi
  log "waiting for the node bundle at $BUNDLE_URL"
  sleep 15
  waited=$((waited + 15))
done
bash "$bundle"
rm -f "$bundle"
