#!/usr/bin/env bash
# SSH test bed: isolated "bare hosts" with a real systemd on this machine, for rafter's tests.
#
# Each host is a systemd-nspawn container booted (-b) on an overlay of / (lower) with a per-host
# upper layer on disk, in its own network namespace on the bridge rafter0 (10.250.0.1/24), with its
# own hostname, machine-id, sshd host key and root filesystem view. A stopped host started again
# keeps its data (a reboot). Needs root and Debian 12 packages (see `install`).
#
# Usage: scripts/testbed.sh COMMAND
#   install                      apt-get install the packages the test bed needs (skips if present)
#   up [--fresh] [NAME=IP ...]   bring hosts up (default: cp-1=10.250.0.11 cp-2=10.250.0.12
#                                cp-3=10.250.0.13 worker-1=10.250.0.21) and wait for SSH and systemd;
#                                running hosts are left alone; --fresh wipes the named hosts first
#   stop NAME                    hard power-off (kill -9); returns when NAME's IP no longer answers on 22
#   start NAME                   boot NAME again on its directories (data kept) and wait for it
#   down [--purge]               stop every host, remove netns, veths and the bridge
#                                (--purge also deletes $RAFTER_TESTBED_DIR)
#   attach NAME DIR TARGET       make directory DIR of this machine appear in running host NAME
#                                at TARGET (a bind mount placed into its mount namespace), as a
#                                stand-in for a volume attached to an instance: its data lives
#                                outside the host and is gone from it when the host stops
#   status                       one line per host: NAME IP running|stopped
#   ssh NAME [COMMAND ...]       ssh to NAME as root with the operator key
#
# Files in $RAFTER_TESTBED_DIR (default /var/tmp/rafter-testbed):
#   id_ed25519, id_ed25519.pub   operator key (root and user `rafter` on every host accept it)
#   known_hosts                  "IP ssh-ed25519 KEY" per host up (plain, port 22)
#   hosts.txt                    "NAME IP" per host up
#   hosts/NAME/                  upper/ work/ (overlay), containerd/ (bound on /var/lib/containerd),
#                                console.log, pid, ip, machine-id, ssh_host_ed25519_key[.pub]
# Each host: root and user `rafter` (uid 1500, passwordless sudo) log in with the operator key;
# etcd, containerd and every other enabled unit except ssh are disabled (not masked) inside.
# Environment: RAFTER_TESTBED_DIR, RAFTER_TESTBED_TIMEOUT (seconds to wait for hosts, default 60).
set -euo pipefail

DIR=${RAFTER_TESTBED_DIR:-/var/tmp/rafter-testbed}
TIMEOUT=${RAFTER_TESTBED_TIMEOUT:-60}
BRIDGE=rafter0
BRIDGE_IP=10.250.0.1
NS_PREFIX=rafter-
VETH_PREFIX=rfv
USER_NAME=rafter
USER_UID=1500
DEFAULT_HOSTS=(cp-1=10.250.0.11 cp-2=10.250.0.12 cp-3=10.250.0.13 worker-1=10.250.0.21)
PACKAGES=(openssh-server openssh-client etcd-server etcd-client containerd runc python3
  containernetworking-plugins systemd-container sudo iproute2 curl kmod)
SELF=$(readlink -f "${BASH_SOURCE[0]}")
export RAFTER_TESTBED_DIR=$DIR

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { printf 'testbed: error: %s\n' "$*" >&2; exit 1; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
elapsed() { local ms=$(($(now_ms) - $1)); printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100)); }

require_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "RAFTER_TESTBED_TIMEOUT must be a number of seconds, not '$TIMEOUT'"

# ---------------------------------------------------------------- packages

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || echo "$p"
  done
}

cmd_install() {
  require_root
  local missing
  missing=$(missing_packages)
  if [ -z "$missing" ]; then
    log "packages already installed"
    return 0
  fi
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  log "installing:" $missing
  # Services must not start on this machine during the install (PID 1 is not systemd here, and the
  # host services belong inside the test hosts): a temporary policy-rc.d, unless one exists.
  local policy=/usr/sbin/policy-rc.d created=''
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created=1
  fi
  local rc=0
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq -o DPkg::Lock::Timeout=120 || rc=$?
  if [ "$rc" = 0 ]; then
    # shellcheck disable=SC2086
    apt-get install -y -qq -o DPkg::Lock::Timeout=120 --no-install-recommends $missing \
      >/dev/null || rc=$?
  fi
  [ -z "$created" ] || rm -f "$policy"
  [ "$rc" = 0 ] || die "apt-get install failed (exit $rc)"
  missing=$(missing_packages)
  # shellcheck disable=SC2086
  [ -z "$missing" ] || die "still missing after apt-get install:" $missing
  log "packages installed"
}

# ---------------------------------------------------------------- state helpers

host_dir() { echo "$DIR/hosts/$1"; }
host_ns() { echo "$NS_PREFIX$1"; }
host_ip() { cat "$(host_dir "$1")/ip" 2>/dev/null; }
veth_of() { echo "$VETH_PREFIX${1##*.}"; }

valid_name() { [[ $1 =~ ^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$ ]]; }
valid_ip() {
  [[ $1 =~ ^10\.250\.0\.([0-9]{1,3})$ ]] || return 1
  local o=${BASH_REMATCH[1]}
  [[ $o != 0* ]] && [ "$o" -ge 2 ] && [ "$o" -le 254 ]
}

ns_exists() { [ -e "/run/netns/$1" ] && ip netns exec "$1" true 2>/dev/null; }

# Names of hosts that have a directory, sorted by IP.
all_hosts() {
  local d
  [ -d "$DIR/hosts" ] || return 0
  for d in "$DIR"/hosts/*/; do
    [ -f "$d/ip" ] || continue
    printf '%s %s\n' "$(cat "$d/ip")" "$(basename "$d")"
  done | sort -t. -k4,4n | awk '{print $2}'
}

# Hosts "up": directory and network namespace present.
active_hosts() {
  local n
  for n in $(all_hosts); do
    if ns_exists "$(host_ns "$n")"; then echo "$n"; fi
  done
}

proc_start_time() { # PID: field 22 of /proc/PID/stat (after the comm field)
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  echo "${20}"
}

proc_alive() { # PID: exists and is not a zombie (read without forking a process)
  local s
  { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
  s=${s##*) }
  [ "${s%% *}" != Z ]
}

# proc_started PID: sets STARTED to when PID started (clock ticks since boot, stat's field 22)
# and succeeds if it exists and is not a zombie. A pid and its start time name one process:
# with 32768 pids a busy machine hands a dead process's pid to another within minutes.
proc_started() {
  local s
  STARTED=''
  { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
  s=${s##*) }
  # shellcheck disable=SC2086 # the fields, split on spaces
  set -- $s
  [ "$1" != Z ] || return 1
  STARTED=${20}
}

host_pid() { # prints the nspawn pid of NAME if it is running
  local f pid start
  f=$(host_dir "$1")/pid
  [ -f "$f" ] || return 1
  read -r pid start <"$f" || return 1
  [ -n "$pid" ] && proc_alive "$pid" && [ "$(proc_start_time "$pid")" = "$start" ] || return 1
  echo "$pid"
}

is_running() { host_pid "$1" >/dev/null; }

# Each host gets its own cgroup in the hierarchies that track processes (cgroup2 and the v1
# name=systemd one). nspawn --keep-unit makes the cgroup it starts in the container's root: hosts
# sharing one would have their systemds create and remove the same cgroups (units then fail at
# random with status=219/CGROUP).
host_cgroups() { # NAME
  awk -v n="$1" '$3 == "cgroup2" || ($3 == "cgroup" && $4 ~ /(^|,)name=systemd(,|$)/) {
    print $2 "/rafter-testbed/" n }' /proc/self/mounts
}

cgroup_pids() { # NAME: processes left in the host's cgroups
  local cg
  for cg in $(host_cgroups "$1"); do
    if [ -d "$cg" ]; then find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null || true; fi
  done
}

remove_cgroups() { # NAME: rmdir the (empty) cgroup trees of a stopped host
  local cg
  for cg in $(host_cgroups "$1"); do
    if [ -d "$cg" ]; then find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
  done
}

port_open() { timeout 1 bash -c ">/dev/tcp/$1/22" 2>/dev/null; }

SSH_OPTS=(-i "$DIR/id_ed25519" -o BatchMode=yes -o IdentitiesOnly=yes
  -o UserKnownHostsFile="$DIR/known_hosts" -o StrictHostKeyChecking=yes
  -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=2 -o LogLevel=ERROR
  -o "KexAlgorithms=curve25519-sha256,curve25519-sha256@libssh.org")

host_ssh() { # IP COMMAND...
  local ip=$1
  shift
  # shellcheck disable=SC2029 # the command runs remotely as given
  ssh "${SSH_OPTS[@]}" "root@$ip" "$@"
}

lock() {
  mkdir -p "$DIR"
  exec 9>>"$DIR/lock"
  if ! flock -w 300 9; then die "could not take $DIR/lock within 300 s"; fi
}

# ---------------------------------------------------------------- network

ensure_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  if ! ip -4 -o addr show dev "$BRIDGE" | grep -q " $BRIDGE_IP/24 "; then
    ip addr add "$BRIDGE_IP/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
}

ensure_host_net() { # NAME IP
  local name=$1 ip=$2 ns veth
  ns=$(host_ns "$name")
  veth=$(veth_of "$ip")
  if [ -e "/run/netns/$ns" ] && ! ns_exists "$ns"; then
    ip netns delete "$ns" 2>/dev/null || rm -f "/run/netns/$ns"
  fi
  # A namespace left with another address (the host got a new IP): start it over.
  if ns_exists "$ns" && ip -n "$ns" link show eth0 >/dev/null 2>&1 &&
    ! ip -n "$ns" -4 -o addr show dev eth0 | grep -q " $ip/24 "; then
    ip netns delete "$ns"
  fi
  ns_exists "$ns" || ip netns add "$ns"
  if ! ip -n "$ns" link show eth0 >/dev/null 2>&1 || ! ip link show "$veth" >/dev/null 2>&1; then
    ip -n "$ns" link del eth0 2>/dev/null || true
    ip link del "$veth" 2>/dev/null || true
    ip link add "$veth" type veth peer name eth0 netns "$ns"
  fi
  ip link set "$veth" master "$BRIDGE" up
  if ! ip -n "$ns" -4 -o addr show dev eth0 | grep -q " $ip/24 "; then
    ip -n "$ns" addr add "$ip/24" dev eth0
  fi
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
}

remove_host_net() { # NAME [IP]
  local ns
  ns=$(host_ns "$1")
  if [ -e "/run/netns/$ns" ]; then ip netns delete "$ns" 2>/dev/null || rm -f "/run/netns/$ns"; fi
  if [ -n "${2:-}" ]; then ip link del "$(veth_of "$2")" 2>/dev/null || true; fi
}

# ---------------------------------------------------------------- host files

ensure_operator_key() {
  mkdir -p "$DIR/hosts"
  if [ ! -f "$DIR/id_ed25519" ]; then
    rm -f "$DIR/id_ed25519.pub"
    ssh-keygen -q -t ed25519 -N '' -C rafter-testbed-operator -f "$DIR/id_ed25519"
  fi
  chmod 600 "$DIR/id_ed25519"
}

# Per-host identity, made once: directories, host key, machine-id.
ensure_host_dir() { # NAME IP
  local h
  h=$(host_dir "$1")
  mkdir -p "$h/upper" "$h/work" "$h/root" "$h/containerd"
  chmod 711 "$h/containerd"
  if [ ! -f "$h/ssh_host_ed25519_key" ]; then
    rm -f "$h/ssh_host_ed25519_key.pub"
    ssh-keygen -q -t ed25519 -N '' -C "root@$1" -f "$h/ssh_host_ed25519_key"
  fi
  if [ ! -s "$h/machine-id" ]; then
    tr -d '-' </proc/sys/kernel/random/uuid >"$h/machine-id"
  fi
  echo "$2" >"$h/ip"
}

mount_root() { # HOST_DIR (inside a private mount namespace)
  local h=$1
  mount -t overlay "rafter-testbed" -o "lowerdir=/,upperdir=$h/upper,workdir=$h/work" "$h/root"
}

# Everything the test bed owns inside a host's root; written before every boot (cheap).
write_host_config() { # NAME IP ROOT
  local name=$1 ip=$2 r=$3 h
  h=$(host_dir "$name")
  echo "$name" >"$r/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n' \
    "$ip" "$name" >"$r/etc/hosts"
  cat >"$r/etc/ssh/sshd_config" <<EOF
# Written by rafter's scripts/testbed.sh
ListenAddress $ip:22
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
MaxStartups 100
UsePAM yes
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
  # The journal persists across reboots of a host, but each boot starts new 8 MB files: cap it.
  install -d "$r/etc/systemd/journald.conf.d"
  printf '[Journal]\nSystemMaxUse=32M\nSystemMaxFileSize=8M\n' \
    >"$r/etc/systemd/journald.conf.d/rafter-testbed.conf"
  install -d -m 700 "$r/root/.ssh" "$r/home/$USER_NAME/.ssh"
  install -m 600 "$DIR/id_ed25519.pub" "$r/root/.ssh/authorized_keys"
  install -m 600 -o "$USER_UID" -g "$USER_UID" "$DIR/id_ed25519.pub" \
    "$r/home/$USER_NAME/.ssh/authorized_keys"
  chown "$USER_UID:$USER_UID" "$r/home/$USER_NAME/.ssh"
}

# First boot only: identity, the user, and no auto-started services.
prepare_root() { # NAME IP ROOT
  local name=$1 ip=$2 r=$3 h
  h=$(host_dir "$name")
  cp "$h/machine-id" "$r/etc/machine-id"
  chmod 444 "$r/etc/machine-id"
  if [ -f "$r/var/lib/dbus/machine-id" ] && [ ! -L "$r/var/lib/dbus/machine-id" ]; then
    cp "$h/machine-id" "$r/var/lib/dbus/machine-id"
  fi
  rm -f "$r"/etc/ssh/ssh_host_*
  install -m 600 "$h/ssh_host_ed25519_key" "$r/etc/ssh/ssh_host_ed25519_key"
  install -m 644 "$h/ssh_host_ed25519_key.pub" "$r/etc/ssh/ssh_host_ed25519_key.pub"
  rm -rf "$r/var/lib/containerd" "$r/var/lib/etcd"/* "$r/var/log/journal"/*
  mkdir -p "$r/var/lib/containerd"

  if ! grep -q "^$USER_NAME:" "$r/etc/passwd"; then
    useradd -R "$r" -u "$USER_UID" -U -m -s /bin/bash "$USER_NAME"
  fi
  # '*' (no password, not locked): sshd refuses key logins to locked ('!') accounts without PAM.
  usermod -R "$r" -p '*' "$USER_NAME"
  install -d -m 750 "$r/etc/sudoers.d"
  printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$USER_NAME" >"$r/etc/sudoers.d/$USER_NAME"
  chmod 440 "$r/etc/sudoers.d/$USER_NAME"

  # Disable every enabled unit but ssh, as `systemctl disable` would (its --root mode takes over
  # a second per host): remove the .wants/.requires links, then the aliases of what they enabled.
  # Never mask (a link to /dev/null): rafter writes units of the same names (etcd, containerd).
  local l u sys=$r/etc/systemd/system disabled=' '
  for l in "$sys"/*.wants/* "$sys"/*.requires/* "$sys"/*.upholds/*; do
    [ -L "$l" ] || continue
    u=$(basename "$l")
    [ "$u" != ssh.service ] || continue
    disabled+="$u $(basename "$(readlink "$l")") "
    rm -f "$l"
  done
  for l in "$sys"/*; do
    [ -L "$l" ] || continue
    u=$(basename "$(readlink "$l")")
    case $disabled in *" $u "*) rm -f "$l" ;; esac
  done
  : >"$h/prepared"
}

# Internal: runs in a private mount namespace (unshare -m), prepares or boots a host.
internal_boot() { # NAME IP
  local name=$1 ip=$2 h r
  h=$(host_dir "$name")
  r=$h/root
  # shellcheck disable=SC2064 # expand now: $h is local, the trap runs at exit
  trap ": >$(printf %q "$h/boot.failed")" EXIT
  mount_root "$h"
  if [ ! -f "$h/prepared" ]; then prepare_root "$name" "$ip" "$r"; fi
  write_host_config "$name" "$ip" "$r"
  local cg
  remove_cgroups "$name"
  for cg in $(host_cgroups "$name"); do
    mkdir -p "$cg"
    echo $$ >"$cg/cgroup.procs"
  done
  echo "$$ $(proc_start_time $$)" >"$h/pid.new"
  mv "$h/pid.new" "$h/pid"
  trap - EXIT
  # /proc/sys/net writable, as on a real host (the node sets ip_forward and bridge sysctls).
  SYSTEMD_NSPAWN_API_VFS_WRITABLE=network exec systemd-nspawn -D "$r" -M "$name" --register=no --keep-unit --link-journal=no \
    --network-namespace-path="/run/netns/$(host_ns "$name")" --console=pipe \
    --capability=CAP_NET_ADMIN \
    --bind="$h/containerd:/var/lib/containerd" --tmpfs="$DIR:mode=0700" -b
}

# ---------------------------------------------------------------- host lifecycle

launch_host() { # NAME IP: boots NAME in the background, detached from this shell
  local name=$1 ip=$2 h
  h=$(host_dir "$name")
  rm -f "$h/pid" "$h/boot.failed"
  echo "=== boot $(date -Is)" >>"$h/console.log"
  # A new session (survives the caller and its process group), a private mount namespace for
  # the overlay (gone with the host's last process), fd 9 (the lock) closed.
  setsid unshare --mount --propagation private -- "$SELF" __boot "$name" "$ip" \
    </dev/null >>"$h/console.log" 2>&1 9>&- &
}

await_launch() { # NAME: the booting script writes the pid file itself (setsid may fork)
  local name=$1 h i
  h=$(host_dir "$name")
  for i in $(seq 1 200); do
    if [ -f "$h/pid" ]; then return 0; fi
    if [ -f "$h/boot.failed" ]; then break; fi
    sleep 0.05
  done
  die "host $name did not start; last lines of $h/console.log:
$(tail -n 15 "$h/console.log")"
}

# Waits until NAME answers SSH as root and systemd reports running/degraded. Prints problems.
wait_host() { # NAME IP DEADLINE_MS
  local name=$1 ip=$2 deadline=$3 h out rc left
  h=$(host_dir "$name")
  while :; do
    left=$(((deadline - $(now_ms)) / 1000 + 1))
    [ "$left" -ge 1 ] || left=1
    rc=0
    out=$(timeout "$left" ssh "${SSH_OPTS[@]}" "root@$ip" systemctl is-system-running --wait 2>&1) ||
      rc=$?
    [ "$rc" = 255 ] || break # 255: ssh could not connect or log in (yet)
    if ! is_running "$name"; then
      printf 'host %s (%s): systemd-nspawn exited; last lines of %s:\n%s\n' "$name" "$ip" \
        "$h/console.log" "$(tail -n 15 "$h/console.log")"
      return 1
    fi
    if [ "$(now_ms)" -ge "$deadline" ]; then
      printf 'host %s (%s): no SSH within %ss (ssh: %s); see %s\n' "$name" "$ip" "$TIMEOUT" \
        "$(echo "$out" | tail -n 1)" "$h/console.log"
      return 1
    fi
    sleep 0.2
  done
  case $(echo "$out" | tail -n 1) in
    running) return 0 ;;
    degraded)
      printf 'host %s (%s): systemd degraded; failed units:\n%s\n' "$name" "$ip" \
        "$(host_ssh "$ip" systemctl --failed --no-legend --no-pager 2>&1)"
      return 0
      ;;
    *)
      printf 'host %s (%s): systemd not ready within %ss (is-system-running: %s)\n' \
        "$name" "$ip" "$TIMEOUT" "${out:-timed out}"
      return 1
      ;;
  esac
}

wait_hosts() { # NAME=IP ...
  local deadline pids=() names=() tmp spec i rc=0
  deadline=$(($(now_ms) + TIMEOUT * 1000))
  tmp=$(mktemp -d)
  for spec in "$@"; do
    wait_host "${spec%%=*}" "${spec#*=}" "$deadline" >"$tmp/${spec%%=*}" 2>&1 &
    pids+=("$!")
    names+=("${spec%%=*}")
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then rc=1; fi
    if [ -s "$tmp/${names[$i]}" ]; then sed 's/^/testbed: /' "$tmp/${names[$i]}" >&2; fi
  done
  rm -rf "$tmp"
  return "$rc"
}

kill_host() { # NAME: kill -9 the nspawn process tree; returns when it is gone
  local name=$1 pid pids ip i p
  pid=$(host_pid "$name") || return 0
  ip=$(host_ip "$name")
  # The tree under nspawn: nspawn's helper, the container's systemd and everything under it.
  pids=$(ps -e -o pid=,ppid= | awk -v root="$pid" '
    { parent[$1] = $2; order[NR] = $1 }
    END {
      keep[root] = 1; changed = 1
      while (changed) {
        changed = 0
        for (i = 1; i <= NR; i++) { p = order[i]; if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 } }
      }
      for (p in keep) print p
    }')
  pids="$pids $(cgroup_pids "$name")"
  echo "$pids" >"$(host_dir "$name")/killed.pids"
  # Each process as pid:start, so that a pid handed on meanwhile is not taken for it.
  local targets='' target survivor=''
  for p in $pids; do
    if proc_started "$p"; then targets="$targets $p:$STARTED"; fi
  done
  # shellcheck disable=SC2086
  kill -9 $pids 2>/dev/null || true
  # A process in uninterruptible sleep (a big write flushing to the overlay) dies once it
  # returns: under CI's load that took longer than 10 s, so wait up to five minutes.
  for i in $(seq 1 6000); do
    survivor=''
    for target in $targets; do
      if proc_started "${target%%:*}" && [ "$STARTED" = "${target#*:}" ]; then
        survivor=${target%%:*}
        break
      fi
    done
    [ -n "$survivor" ] || break
    sleep 0.05
  done
  if [ -n "$survivor" ]; then die "host $name: process $survivor survived kill -9"; fi
  for i in $(seq 1 100); do
    port_open "$ip" || break
    sleep 0.05
  done
  if port_open "$ip"; then die "host $name: $ip still answers on port 22 after kill"; fi
  rm -f "$(host_dir "$name")/pid"
  remove_cgroups "$name"
}

write_host_lists() {
  local n ip h tmp_k tmp_h
  tmp_k=$(mktemp "$DIR/.known_hosts.XXXXXX")
  tmp_h=$(mktemp "$DIR/.hosts.XXXXXX")
  for n in $(active_hosts); do
    h=$(host_dir "$n")
    ip=$(host_ip "$n")
    printf '%s %s\n' "$ip" "$(cut -d' ' -f1,2 "$h/ssh_host_ed25519_key.pub")" >>"$tmp_k"
    printf '%s %s\n' "$n" "$ip" >>"$tmp_h"
  done
  chmod 644 "$tmp_k" "$tmp_h"
  mv "$tmp_k" "$DIR/known_hosts"
  mv "$tmp_h" "$DIR/hosts.txt"
}

# ---------------------------------------------------------------- commands

# Every host's systemd (and journald, and its path units) takes inotify instances of the one
# root user: with twenty hosts up, the kernel's default of 128 runs out, and hosts come up
# with failed units or no sshd at all. Raised as container hosts (kind, nspawn) need.
raise_inotify_limits() {
  local key want have
  for key in fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=524288; do
    want=${key#*=}
    have=$(sysctl -n "${key%%=*}" 2>/dev/null || echo 0)
    if [ "$have" -lt "$want" ]; then sysctl -q -w "$key" || log "could not raise ${key%%=*}"; fi
  done
}

cmd_up() {
  require_root
  raise_inotify_limits
  local fresh='' specs=() spec name ip n other t0
  t0=$(now_ms)
  while [ $# -gt 0 ]; do
    case $1 in
      --fresh) fresh=1 ;;
      -*) die "up: unknown option $1" ;;
      *) specs+=("$1") ;;
    esac
    shift
  done
  [ ${#specs[@]} -gt 0 ] || specs=("${DEFAULT_HOSTS[@]}")
  declare -A seen_name=() seen_ip=()
  for spec in "${specs[@]}"; do
    [[ $spec == *=* ]] || die "up: expected NAME=IP, got '$spec'"
    name=${spec%%=*}
    ip=${spec#*=}
    valid_name "$name" || die "up: bad host name '$name' (lowercase letters, digits, '-', at most 32)"
    valid_ip "$ip" || die "up: bad IP '$ip' for $name (must be 10.250.0.2 to 10.250.0.254)"
    [ -z "${seen_name[$name]:-}" ] || die "up: host $name given twice"
    [ -z "${seen_ip[$ip]:-}" ] || die "up: IP $ip given twice"
    seen_name[$name]=1
    seen_ip[$ip]=$name
  done
  lock
  if [ -n "$(missing_packages)" ]; then cmd_install; fi
  for spec in "${specs[@]}"; do
    name=${spec%%=*}
    ip=${spec#*=}
    for other in $(active_hosts); do
      [ "$other" != "$name" ] || continue
      if [ "$(host_ip "$other")" = "$ip" ]; then
        die "up: IP $ip is already used by host $other (run '$0 down' first)"
      fi
    done
    if is_running "$name" && [ "$(host_ip "$name")" != "$ip" ]; then
      die "up: host $name is running with IP $(host_ip "$name"), not $ip (stop it first)"
    fi
  done
  ensure_operator_key
  ensure_bridge
  local to_boot=() to_wait=()
  for spec in "${specs[@]}"; do
    name=${spec%%=*}
    ip=${spec#*=}
    if [ -n "$fresh" ]; then
      kill_host "$name"
      rm -rf "$(host_dir "$name")"
    fi
    if is_running "$name"; then
      log "$name ($ip) already running"
    else
      ensure_host_dir "$name" "$ip"
      ensure_host_net "$name" "$ip"
      to_boot+=("$spec")
    fi
    to_wait+=("$spec")
  done
  write_host_lists
  for spec in "${to_boot[@]}"; do
    launch_host "${spec%%=*}" "${spec#*=}"
  done
  for spec in "${to_boot[@]}"; do
    await_launch "${spec%%=*}"
  done
  if ! wait_hosts "${to_wait[@]}"; then
    die "up: not every host came up (hosts left as they are; '$0 down' cleans up)"
  fi
  log "${#to_wait[@]} host(s) up in $(elapsed "$t0") (${#to_boot[@]} booted): $DIR/hosts.txt"
}

cmd_start() {
  require_root
  [ $# = 1 ] || die "usage: $0 start NAME"
  local name=$1 ip t0
  t0=$(now_ms)
  ip=$(host_ip "$name") || die "start: no host $name (bring it up with '$0 up $name=IP')"
  lock
  if is_running "$name"; then
    log "$name already running"
  else
    for other in $(active_hosts); do
      if [ "$other" != "$name" ] && [ "$(host_ip "$other")" = "$ip" ]; then
        die "start: IP $ip of $name is used by host $other"
      fi
    done
    ensure_operator_key
    ensure_bridge
    ensure_host_net "$name" "$ip"
    write_host_lists
    launch_host "$name" "$ip"
    await_launch "$name"
  fi
  wait_hosts "$name=$ip" || die "start: host $name did not come up"
  log "$name ($ip) up in $(elapsed "$t0")"
}

cmd_stop() {
  require_root
  [ $# = 1 ] || die "usage: $0 stop NAME"
  local name=$1 t0
  t0=$(now_ms)
  host_ip "$name" >/dev/null || die "stop: no host $name"
  lock
  if is_running "$name"; then
    kill_host "$name"
    log "$name stopped (kill -9) in $(elapsed "$t0")"
  else
    log "$name already stopped"
  fi
}

# A mount of this machine's DIR, cloned (open_tree) here and moved (move_mount) into the
# mount namespace of the host's systemd: a bind mount cannot cross mount namespaces, a
# detached clone can (Linux 5.2+; systemd's `machinectl bind` does the same).
cmd_attach() {
  require_root
  [ $# = 3 ] || die "usage: $0 attach NAME DIR TARGET"
  local name=$1 dir=$2 target=$3 pid init
  pid=$(host_pid "$name") || die "attach: host $name is not running"
  init=$(pgrep -P "$pid" -x systemd | head -n 1) || die "attach: host $name has no systemd yet"
  [ -d "$dir" ] || die "attach: no directory $dir"
  /usr/bin/python3 - "$init" "$dir" "$target" <<'PYTHON' || die "attach: $dir could not be placed at $target in $name"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
SYS_OPEN_TREE, SYS_MOVE_MOUNT, AT_FDCWD = 428, 429, -100
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, AT_RECURSIVE = 1, 0o2000000, 0x8000
MOVE_MOUNT_F_EMPTY_PATH, CLONE_NEWNS = 0x4, 0x00020000
init, source, target = sys.argv[1:]
def fail(what):
    sys.exit(f"testbed: {what}: {os.strerror(ctypes.get_errno())}")
tree = libc.syscall(SYS_OPEN_TREE, AT_FDCWD, source.encode(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)
if tree < 0:
    fail(f"open_tree {source}")
if libc.setns(os.open(f"/proc/{init}/ns/mnt", os.O_RDONLY), CLONE_NEWNS) != 0:
    fail("setns")
os.makedirs(target, exist_ok=True)
if libc.syscall(SYS_MOVE_MOUNT, tree, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH) < 0:
    fail(f"move_mount {target}")
PYTHON
}

cmd_down() {
  require_root
  local purge='' n ns p
  case ${1:-} in
    "") ;;
    --purge) purge=1 ;;
    *) die "usage: $0 down [--purge]" ;;
  esac
  local pids='' jobs=() killed=() rc=0 j
  if [ -d "$DIR" ]; then
    lock
    for n in $(all_hosts); do
      if is_running "$n"; then
        kill_host "$n" &
        jobs+=("$!")
        killed+=("$n")
      fi
    done
    for j in "${jobs[@]}"; do wait "$j" || rc=1; done
    # A host that could not be stopped is said, and everything else is still taken down.
    [ "$rc" = 0 ] || log "down: a host could not be stopped (see above); removing the rest"
    [ ${#jobs[@]} = 0 ] || log "stopped ${#jobs[@]} host(s)"
    for n in $(all_hosts); do remove_host_net "$n" "$(host_ip "$n")"; done
    for n in "${killed[@]}"; do pids+=" $(cat "$DIR/hosts/$n/killed.pids" 2>/dev/null || true)"; done
    # The killed processes are reaped by this machine's PID 1 (about a second here): wait for it,
    # so that `down` leaves not even a zombie of a host.
    for j in $(seq 1 100); do
      local left=''
      for p in $pids; do if [ -e "/proc/$p" ]; then left=1; fi; done
      [ -n "$left" ] || break
      sleep 0.05
    done
  fi
  # Namespaces and veths of hosts whose directory is gone.
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    case $ns in "$NS_PREFIX"*) ip netns delete "$ns" 2>/dev/null || true ;; esac
  done
  for n in $(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    [[ $n =~ ^${VETH_PREFIX}[0-9]+$ ]] && ip link del "$n" 2>/dev/null || true
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
  # The parent of the hosts' cgroups (host_cgroups gives DIR/rafter-testbed/NAME).
  for n in $(host_cgroups x); do rmdir "$(dirname "$n")" 2>/dev/null || true; done
  rm -f "$DIR/hosts.txt"
  if [ -n "$purge" ] && [ -d "$DIR" ]; then
    [ -d "$DIR/hosts" ] || [ -f "$DIR/lock" ] || die "down --purge: $DIR does not look like a test bed"
    rm -rf "$DIR"
    log "removed $DIR"
  fi
  [ "$rc" = 0 ] || die "down: a host could not be stopped"
  log "down"
}

cmd_status() {
  local n state
  for n in $(all_hosts); do
    if is_running "$n"; then state=running; else state=stopped; fi
    printf '%s %s %s\n' "$n" "$(host_ip "$n")" "$state"
  done
}

cmd_ssh() {
  [ $# -ge 1 ] || die "usage: $0 ssh NAME [COMMAND ...]"
  local ip
  ip=$(host_ip "$1") || die "ssh: no host $1"
  shift
  exec ssh "${SSH_OPTS[@]}" "root@$ip" "$@"
}

usage() { sed -n '9,20p' "$SELF" | sed 's/^# \{0,1\}//' >&2; }

main() {
  local cmd=${1:-}
  [ $# = 0 ] || shift
  case $cmd in
    install) cmd_install "$@" ;;
    up) cmd_up "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    attach) cmd_attach "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    ssh) cmd_ssh "$@" ;;
    __boot) internal_boot "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage
      exit 2
      ;;
  esac
}

main "$@"
