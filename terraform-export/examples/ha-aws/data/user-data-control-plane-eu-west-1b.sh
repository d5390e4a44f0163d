#!/bin/bash
# rafter first-boot script for a control-plane of cluster prod.example.com (group control-plane-eu-west-1b).
# It fetches this group's node bundle from the state store with the instance's own IAM role
# (which may read only its part of the store) and runs it; the bundle writes the node's files
# and installs Kubernetes 1.34.2 and etcd 3.5.21 from pinned, checksum-verified assets.
# The bundle is published when `rafter update cluster` finishes, so this waits for it, and
# a failed run is retried by systemd until it succeeds.
set -euo pipefail

BUNDLE_URL="s3://rafter-state-example/clusters/prod.example.com/control-plane/eu-west-1b/bundle.sh"
log() { printf 'rafter-user-data: %s\n' "$*" >&2; }

install -d -m 0755 /etc/rafter
umask 077
cat >/etc/rafter/node.env <<'NODE_ENV'
RAFTER_CLUSTER=prod.example.com
RAFTER_ROLE=control-plane
RAFTER_GROUP=control-plane-eu-west-1b
RAFTER_BUNDLE_URL=s3://rafter-state-example/clusters/prod.example.com/control-plane/eu-west-1b/bundle.sh
RAFTER_STATUS_URL=s3://rafter-state-example/clusters/prod.example.com/node-status/control-plane/eu-west-1b
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

# The first boot runs as a service that systemd retries every 30 s until it succeeds (and
# runs again at every boot, which changes nothing on a healthy node): cloud-init runs this
# script once, and a failed minute (S3, the API server, a download) must not leave the node
# half-built. Each run reports how it went in the state store, where rafter can read it.
install -d -m 0755 /usr/local/lib/rafter
cat >/usr/local/lib/rafter/first-boot.sh <<'FIRST_BOOT'
#!/bin/bash
# rafter first boot: fetch this node's bundle from the state store and run it; run by
# rafter-first-boot.service until it succeeds. Rendered by rafter; do not edit by hand.
set -euo pipefail
set -a
# shellcheck source=/dev/null
. /etc/rafter/node.env
# shellcheck source=/dev/null
[ ! -f /etc/rafter/aws.env ] || . /etc/rafter/aws.env
set +a
log() { printf 'rafter-first-boot: %s\n' "$*" >&2; }

# rafter's helpers for AWS instances: the instance metadata service (IMDSv2) and objects of
# the state store in S3, signed with the instance role's credentials by curl itself
# (--aws-sigv4), so the node needs no AWS CLI.
#   RAFTER_IMDS_ENDPOINT  the metadata service (default http://169.254.169.254)
#   RAFTER_RUN_DIR        where answers kept for this boot go (default /run/rafter)
#   RAFTER_S3_ENDPOINT    an S3-compatible endpoint addressed path-style (default: the
#                         bucket's endpoint in its own region and partition)
# Every call has a connect and a total timeout, and curl retries what is transient (timeouts,
# refused connections, 408, 429, 5xx) with growing pauses: a stalled or briefly failing
# service delays a boot or a timer run, never hangs it.

# metadata PATH: a value from the instance metadata service.
metadata() {
  local imds="${RAFTER_IMDS_ENDPOINT:-http://169.254.169.254}" token
  local bounded=(--connect-timeout 2 --max-time 10 --retry 3 --retry-connrefused)
  token="$(curl --fail --silent "${bounded[@]}" --request PUT \
    --header 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$imds/latest/api/token")"
  curl --fail --silent "${bounded[@]}" --header "X-aws-ec2-metadata-token: $token" "$imds/latest/$1"
}

# json_field NAME: a string field of the JSON document on stdin.
json_field() { sed -n -E "s/.*\"$1\" *: *\"([^\"]*)\".*/\1/p" | head -n 1; }

# partition_domain REGION: the DNS suffix of REGION's partition (China's differs).
partition_domain() {
  case "$1" in
    cn-*) echo amazonaws.com.cn ;;
    *) echo amazonaws.com ;;
  esac
}

# bucket_region BUCKET REGION: the region BUCKET lives in, which S3 names in the
# x-amz-bucket-region header of any answer about it (asked once per boot, from REGION's
# endpoint), else REGION. A state bucket need not be in the instances' region.
bucket_region() {
  local bucket=$1 region=$2 cache="${RAFTER_RUN_DIR:-/run/rafter}/s3-region-$1" found
  if [ -s "$cache" ]; then
    cat "$cache"
    return 0
  fi
  found="$(curl --silent --head --connect-timeout 5 --max-time 20 --retry 3 --retry-connrefused \
    "${RAFTER_S3_ENDPOINT:-https://s3.$region.$(partition_domain "$region")}/$bucket" |
    tr -d '\r' | sed -n -E 's/^x-amz-bucket-region: *([a-z0-9-]+)$/\1/Ip' | head -n 1 || true)"
  found="${found:-$region}"
  mkdir -p "$(dirname "$cache")" 2>/dev/null && printf '%s\n' "$found" >"$cache" 2>/dev/null || true
  printf '%s\n' "$found"
}

# uri_encode TEXT: TEXT percent-encoded as SigV4 wants a path, `/` kept (curl signs the path
# as given; Debian 12's curl would otherwise sign `= + , : @` differently than S3 checks).
uri_encode() {
  local rest=$1 encoded="" char
  while [ -n "$rest" ]; do
    char="${rest:0:1}"
    rest="${rest:1}"
    case "$char" in
      [A-Za-z0-9._~/-]) encoded+="$char" ;;
      *) encoded+="$(printf '%%%02X' "'$char")" ;;
    esac
  done
  printf '%s' "$encoded"
}

# s3_object_url BUCKET KEY REGION: the object's address: RAFTER_S3_ENDPOINT path-style, else
# the bucket's regional endpoint in its partition, path-style for a name with dots (a
# virtual-hosted name with dots does not match S3's wildcard certificate).
s3_object_url() {
  local bucket=$1 key=$2 region=$3 domain
  domain="$(partition_domain "$region")"
  if [ -n "${RAFTER_S3_ENDPOINT:-}" ]; then
    printf '%s/%s/%s' "$RAFTER_S3_ENDPOINT" "$bucket" "$(uri_encode "$key")"
  elif [[ "$bucket" == *.* ]]; then
    printf 'https://s3.%s.%s/%s/%s' "$region" "$domain" "$bucket" "$(uri_encode "$key")"
  else
    printf 'https://%s.s3.%s.%s/%s' "$bucket" "$region" "$domain" "$(uri_encode "$key")"
  fi
}

# s3_request METHOD s3://BUCKET/KEY PAYLOAD-SHA256 [CURL-ARG...]: one request signed with the
# instance role, in the bucket's region. S3 wants the payload's digest in
# x-amz-content-sha256, which curl before 8.0 (Debian 12's) does not send by itself.
s3_request() {
  local method=$1 url=$2 payload_sha256=$3
  shift 3
  local location="${url#s3://}"
  local bucket="${location%%/*}" key="${location#*/}"
  local role credentials region
  role="$(metadata meta-data/iam/security-credentials/)"
  credentials="$(metadata "meta-data/iam/security-credentials/$role")"
  region="$(bucket_region "$bucket" "$(metadata meta-data/placement/region)")"
  curl --fail --silent --show-error --location --request "$method" \
    --connect-timeout 5 --max-time 60 --retry 3 --retry-connrefused --retry-max-time 90 \
    --aws-sigv4 "aws:amz:$region:s3" \
    --user "$(json_field AccessKeyId <<<"$credentials"):$(json_field SecretAccessKey <<<"$credentials")" \
    --header "x-amz-security-token: $(json_field Token <<<"$credentials")" \
    --header "x-amz-content-sha256: $payload_sha256" \
    "$@" "$(s3_object_url "$bucket" "$key" "$region")"
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


# report STATE DETAIL: this instance's boot report (waiting, running, done, failed), kept in
# the state store under its own name; a report that cannot be written is only logged.
report() {
  local file
  file="$(mktemp)"
  printf '{"host":"%s","state":"%s","detail":"%s","at":"%s"}\n' "$(hostname)" "$1" "$2" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$file"
  s3_put "$RAFTER_STATUS_URL/$(hostname)" "$file" || log "could not report '$1' to $RAFTER_STATUS_URL"
  rm -f "$file"
}

# The kubelet's provider ID, from this instance's metadata, as the AWS cloud controller and
# the cluster autoscaler match nodes to instances (a bundle serves a whole group), and the
# account, which the node termination handler's queue URL names.
zone="$(metadata meta-data/placement/availability-zone)" || { log "no availability zone from the metadata service"; exit 1; }
instance="$(metadata meta-data/instance-id)" || { log "no instance id from the metadata service"; exit 1; }
account="$(metadata dynamic/instance-identity/document | json_field accountId)"
[ -n "$account" ] || { log "no account id from the metadata service"; exit 1; }
printf 'RAFTER_PROVIDER_ID=aws:///%s/%s\nRAFTER_ACCOUNT_ID=%s\n' "$zone" "$instance" "$account" >"/etc/rafter/kubelet.env.new"
mv "/etc/rafter/kubelet.env.new" "/etc/rafter/kubelet.env"

bundle="$(mktemp)"
trap 'rm -f "$bundle"' EXIT
waited=0
until s3_get "$RAFTER_BUNDLE_URL" "$bundle"; do
  if [ "$waited" -ge 600 ]; then
    report "waiting" "no bundle published yet"
    log "no node bundle at $RAFTER_BUNDLE_URL yet; retried later (publish it: rafter update cluster $RAFTER_CLUSTER --yes)"
    exit 1
  fi
  log "waiting for the node bundle at $RAFTER_BUNDLE_URL"
  sleep 15
  waited=$((waited + 15))
done
report "running" "bundle fetched"
status=0
bash "$bundle" || status=$?
if [ "$status" -ne 0 ]; then
  report "failed" "the bundle exited with $status: journalctl -u rafter-first-boot"
  exit "$status"
fi
# What this node runs now, for the member reports: rafter replaces an instance whose bundle
# is no longer the one published (new certificates, a changed spec).
sha256sum "$bundle" | cut -d ' ' -f 1 >/etc/rafter/bundle.sha256
report "done" ""
FIRST_BOOT
chmod 0755 /usr/local/lib/rafter/first-boot.sh

cat >/etc/systemd/system/rafter-first-boot.service <<'UNIT'
[Unit]
Description=rafter: this node's bundle, fetched and run until it succeeds
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec=0

[Service]
Type=oneshot
ExecStart=/usr/local/lib/rafter/first-boot.sh
RemainAfterExit=yes
Restart=on-failure
RestartSec=30s
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --quiet rafter-first-boot.service
# The first run is waited for here, and its log copied to cloud-init's.
started=0
systemctl start rafter-first-boot.service || started=$?
journalctl --unit rafter-first-boot.service --output cat --no-pager >&2 || true
if [ "$started" -ne 0 ]; then
  log "the first boot failed; systemd retries it every 30 s (journalctl -u rafter-first-boot)"
  exit 1
fi
