//! The bare-host test bed (`scripts/testbed.sh`): SSH hosts with a real systemd in network
//! namespaces on 10.250.0.0/24. Tests bring up the hosts they use (idempotent: hosts already
//! up are left alone) and talk to them with the operator key and known_hosts it writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rafter::ssh::{ConnectOptions, HostKeyPolicy, SshTarget};

/// The hosts of the `ha-ssh` profile.
pub const DEFAULT_HOSTS: [(&str, &str); 4] = [
    ("cp-1", "10.250.0.11"),
    ("cp-2", "10.250.0.12"),
    ("cp-3", "10.250.0.13"),
    ("worker-1", "10.250.0.21"),
];

pub struct Testbed {
    pub dir: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/testbed.sh")
}

fn run_script(args: &[&str]) -> Output {
    let output = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .expect("run scripts/testbed.sh");
    assert!(
        output.status.success(),
        "scripts/testbed.sh {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

impl Testbed {
    /// Brings `hosts` up (those already up are left alone).
    pub fn up(hosts: &[(&str, &str)]) -> Self {
        let specs: Vec<String> = hosts
            .iter()
            .map(|(name, ip)| format!("{name}={ip}"))
            .collect();
        let mut args = vec!["up"];
        args.extend(specs.iter().map(String::as_str));
        run_script(&args);
        Self::open()
    }

    /// The test bed as it is, without bringing anything up.
    pub fn open() -> Self {
        Self {
            dir: std::env::var_os("RAFTER_TESTBED_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/var/tmp/rafter-testbed")),
        }
    }

    /// Brings `hosts` up wiped clean (first boot).
    pub fn fresh(hosts: &[(&str, &str)]) -> Self {
        let mut args = vec!["up".to_string(), "--fresh".to_string()];
        args.extend(hosts.iter().map(|(name, ip)| format!("{name}={ip}")));
        run_script(&args.iter().map(String::as_str).collect::<Vec<_>>());
        Self::open()
    }

    pub fn key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// Hard power-off of `name`.
    pub fn stop(&self, name: &str) {
        run_script(&["stop", name]);
    }

    /// Boots `name` again on its data.
    pub fn start(&self, name: &str) {
        run_script(&["start", name]);
    }

    /// Makes this machine's directory `dir` appear in the running host `name` at `target`
    /// (a volume stand-in, see `scripts/testbed.sh attach`); false when that failed (the
    /// host is not running, say).
    pub fn attach(&self, name: &str, dir: &Path, target: &str) -> bool {
        let output = Command::new("bash")
            .arg(script())
            .args(["attach", name])
            .arg(dir)
            .arg(target)
            .output()
            .expect("run scripts/testbed.sh attach");
        if !output.status.success() {
            eprintln!(
                "testbed attach {name} {}: {}",
                dir.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        output.status.success()
    }

    /// Runs `command` on `name` as root with the system's ssh client (the tests' own view of
    /// a host, independent of rafter's SSH code).
    pub fn ssh(&self, name: &str, command: &str) -> Output {
        Command::new("bash")
            .arg(script())
            .args(["ssh", name, command])
            .output()
            .expect("run scripts/testbed.sh ssh")
    }

    /// `command`'s stdout on `name`, which must succeed.
    pub fn ssh_ok(&self, name: &str, command: &str) -> String {
        let output = self.ssh(name, command);
        assert!(
            output.status.success(),
            "{name}: `{command}` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Connection options with the operator key and the test bed's known_hosts.
    pub fn options(&self) -> ConnectOptions {
        ConnectOptions {
            identity_files: vec![self.key()],
            use_agent: false,
            known_hosts: self.known_hosts(),
            host_key_policy: HostKeyPolicy::Strict,
            connect_timeout: std::time::Duration::from_secs(5),
            bastion: None,
        }
    }
}

pub fn target(name: &str, address: &str, user: &str) -> SshTarget {
    SshTarget {
        name: name.to_string(),
        address: address.to_string(),
        port: 22,
        user: user.to_string(),
    }
}
