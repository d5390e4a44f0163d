#!/bin/bash
# rafter first-boot script for a node of cluster prod.example.com (group nodes-workers).
# It fetches this group's node bundle from the state store with the instance's own IAM role
# (which may read only its part of the store) and runs it; the bundle writes the node's files
# and installs Kubernetes 1.34.2 from pinned, checksum-verified assets.
# The bundle is published when `rafter update cluster` finishes, so this waits for it.
set -euo pipefail

BUNDLE_URL="s3://rafter-state-example/clusters/prod.example.com/node-groups/workers/bundle.sh"
log() { printf 'rafter-user-data: %s\n' "$*" >&2; }

install -d -m 0755 /etc/rafter
umask 077
cat >/etc/rafter/node.env <<'NODE_ENV'
RAFTER_CLUSTER=prod.example.com
RAFTER_ROLE=node
RAFTER_GROUP=nodes-workers
RAFTER_BUNDLE_URL=s3://rafter-state-example/clusters/prod.example.com/node-groups/workers/bundle.sh
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

# rafter's helpers for AWS instances: the instance metadata service (IMDSv2) and objects of
# the state store in S3, signed with the instance role's credentials by curl itself
# (--aws-sigv4), so the node needs no AWS CLI.
#   RAFTER_IMDS_ENDPOINT  the metadata service (default http://169.254.169.254)
#   RAFTER_S3_ENDPOINT    an S3-compatible endpoint addressed path-style (default: the
#                         bucket's virtual-hosted endpoint in the instance's region)

# metadata PATH: a value from the instance metadata service.
metadata() {
  local imds="${RAFTER_IMDS_ENDPOINT:-http://169.254.169.254}" token
  token="$(curl --fail --silent --request PUT --header 'X-aws-ec2-metadata-token-ttl-seconds: 300' \
    "$imds/latest/api/token")"
  curl --fail --silent --header "X-aws-ec2-metadata-token: $token" "$imds/latest/$1"
}

# json_field NAME: a string field of the JSON document on stdin.
json_field() { sed -n -E "s/.*\"$1\" *: *\"([^\"]*)\".*/\1/p" | head -n 1; }

# s3_request METHOD s3://BUCKET/KEY PAYLOAD-SHA256 [CURL-ARG...]: one request signed with the
# instance role. S3 wants the payload's digest in x-amz-content-sha256, which curl before 8.0
# (Debian 12's) does not send by itself.
s3_request() {
  local method=$1 url=$2 payload_sha256=$3
  shift 3
  local location="${url#s3://}"
  local bucket="${location%%/*}" key="${location#*/}"
  local role credentials region endpoint
  role="$(metadata meta-data/iam/security-credentials/)"
  credentials="$(metadata "meta-data/iam/security-credentials/$role")"
  region="$(metadata meta-data/placement/region)"
  endpoint="${RAFTER_S3_ENDPOINT:+$RAFTER_S3_ENDPOINT/$bucket}"
  curl --fail --silent --show-error --location --request "$method" \
    --aws-sigv4 "aws:amz:$region:s3" \
    --user "$(json_field AccessKeyId <<<"$credentials"):$(json_field SecretAccessKey <<<"$credentials")" \
    --header "x-amz-security-token: $(json_field Token <<<"$credentials")" \
    --header "x-amz-content-sha256: $payload_sha256" \
    "$@" "${endpoint:-https://$bucket.s3.$region.amazonaws.com}/$key"
}

# s3_get s3://BUCKET/KEY OUT: the object, written to OUT (- for standard output).
s3_get() {
  s3_request GET "$1" e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 --output "$2"
}

# s3_put s3://BUCKET/KEY FILE: FILE stored as the object.
s3_put() {
  s3_request PUT "$1" "$(sha256sum "$2" | cut -d' ' -f1)" \
    --header 'Content-Type: application/octet-stream' --data-binary "@$2"
}


bundle="$(mktemp)"
waited=0
until s3_get "$BUNDLE_URL" "$bundle"; do
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
