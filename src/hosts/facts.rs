//! What rafter learns about a host before changing anything (one command per host), and the
//! preflight checks over all hosts: systemd, a supported machine type, unique hostnames and
//! machine-ids, the clock, free disk, and etcd/API/kubelet ports not taken by something else.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ssh::{Session, SshError};

/// The facts of one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    pub hostname: String,
    pub machine_id: String,
    pub arch: String,
    pub os: String,
    pub systemd: bool,
    /// etcd has a data directory: the host is (or was) a member.
    pub etcd_data: bool,
    pub etcd_active: bool,
    pub swap_devices: u32,
    /// Seconds between the host's clock and rafter's, positive when the host is ahead.
    pub clock_skew: i64,
    pub var_free_mb: u64,
    /// Listening ports rafter needs, with the program holding each.
    pub port_owners: BTreeMap<u16, String>,
}

const GATHER: &str = r#"
echo "hostname=$(hostname)"
echo "machine_id=$(cat /etc/machine-id 2>/dev/null)"
echo "arch=$(uname -m)"
echo "os=$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown}")"
[ -d /run/systemd/system ] && echo systemd=yes
[ -d /var/lib/etcd/member ] && echo etcd_data=yes
[ "$(systemctl is-active etcd 2>/dev/null)" = active ] && echo etcd_active=yes
echo "swap=$(tail -n +2 /proc/swaps | wc -l)"
echo "clock=$(date +%s)"
echo "var_free_mb=$(df -Pm /var | awk 'NR == 2 { print $4 }')"
ss -Hltnp 2>/dev/null | awk '{ n = split($4, a, ":"); print "port_" a[n] "=" $6 }'
"#;

/// The ports of a node: etcd client and peer, the API server, the kubelet.
pub const NODE_PORTS: [u16; 4] = [2379, 2380, 6443, 10250];
/// Programs allowed to hold them: rafter's own services.
const OWN_PROGRAMS: [&str; 3] = ["etcd", "kube-apiserver", "kubelet"];

pub async fn gather(session: &Session) -> Result<HostFacts, SshError> {
    let asked_at = unix_now();
    let output = session.run_checked("gather facts", GATHER, b"").await?;
    let mut facts = HostFacts::default();
    for line in output.stdout_text().lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "hostname" => facts.hostname = value.to_string(),
            "machine_id" => facts.machine_id = value.to_string(),
            "arch" => facts.arch = value.to_string(),
            "os" => facts.os = value.to_string(),
            "systemd" => facts.systemd = true,
            "etcd_data" => facts.etcd_data = true,
            "etcd_active" => facts.etcd_active = true,
            "swap" => facts.swap_devices = value.trim().parse().unwrap_or(0),
            "clock" => facts.clock_skew = value.trim().parse::<i64>().map_or(0, |at| at - asked_at),
            "var_free_mb" => facts.var_free_mb = value.trim().parse().unwrap_or(0),
            _ => {
                if let Some(port) = key.strip_prefix("port_").and_then(|p| p.parse().ok())
                    && NODE_PORTS.contains(&port)
                {
                    // `users:(("etcd",pid=1,fd=7))` -> `etcd`
                    let program = value.split('"').nth(1).unwrap_or(value).to_string();
                    facts.port_owners.insert(port, program);
                }
            }
        }
    }
    Ok(facts)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// The most a host's clock may differ from rafter's: certificates and etcd leases need
/// roughly synchronised clocks.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 30;
/// Room etcd, images and logs need under /var.
pub const MIN_VAR_FREE_MB: u64 = 2048;

/// Every problem found, each naming its host and what to do.
pub fn preflight(hosts: &[(&str, &HostFacts)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, facts) in hosts {
        if !facts.systemd {
            problems.push(format!(
                "{name}: systemd is not running (PID 1 is something else); rafter runs containerd, etcd and the kubelet as systemd services"
            ));
        }
        if !matches!(facts.arch.as_str(), "x86_64" | "aarch64") {
            problems.push(format!(
                "{name}: machine type {} is not supported (amd64 and arm64 are)",
                facts.arch
            ));
        }
        if facts.clock_skew.abs() > MAX_CLOCK_SKEW_SECONDS {
            problems.push(format!(
                "{name}: its clock is {}s off rafter's; synchronise it (chrony or systemd-timesyncd) first",
                facts.clock_skew
            ));
        }
        if facts.var_free_mb < MIN_VAR_FREE_MB {
            problems.push(format!(
                "{name}: only {} MB free under /var; rafter needs {MIN_VAR_FREE_MB} MB",
                facts.var_free_mb
            ));
        }
        for (port, program) in &facts.port_owners {
            if !OWN_PROGRAMS.contains(&program.as_str()) {
                problems.push(format!(
                    "{name}: port {port} is taken by {program}; stop it first"
                ));
            }
        }
    }
    for (what, value) in [
        (
            "hostname",
            (|facts: &HostFacts| facts.hostname.clone()) as fn(&HostFacts) -> String,
        ),
        ("machine-id", |facts: &HostFacts| facts.machine_id.clone()),
    ] {
        let mut seen: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for (name, facts) in hosts {
            seen.entry(value(facts)).or_default().push(name);
        }
        for (shared, names) in seen {
            if names.len() > 1 {
                problems.push(format!(
                    "{} share the {what} `{shared}`; every node needs its own (cloned machines: regenerate /etc/machine-id, set distinct hostnames)",
                    names.join(", ")
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(hostname: &str, machine_id: &str) -> HostFacts {
        HostFacts {
            hostname: hostname.to_string(),
            machine_id: machine_id.to_string(),
            arch: "x86_64".to_string(),
            systemd: true,
            var_free_mb: 10_000,
            ..HostFacts::default()
        }
    }

    #[test]
    fn healthy_hosts_pass() {
        let (a, b) = (facts("a", "1"), facts("b", "2"));
        assert!(preflight(&[("a", &a), ("b", &b)]).is_empty());
    }

    #[test]
    fn clones_skew_no_systemd_and_taken_ports_are_named() {
        let a = facts("node", "same");
        let mut b = facts("node", "same");
        b.systemd = false;
        b.clock_skew = -120;
        b.port_owners.insert(6443, "nginx".to_string());
        b.port_owners.insert(2379, "etcd".to_string());
        let problems = preflight(&[("a", &a), ("b", &b)]);
        let all = problems.join("\n");
        assert!(all.contains("b: systemd is not running"), "{all}");
        assert!(all.contains("b: its clock is -120s off"), "{all}");
        assert!(all.contains("b: port 6443 is taken by nginx"), "{all}");
        assert!(!all.contains("2379"), "{all}");
        assert!(all.contains("a, b share the hostname `node`"), "{all}");
        assert!(all.contains("a, b share the machine-id `same`"), "{all}");
    }
}
