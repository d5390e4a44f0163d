//! From a bare-host spec to SSH targets and connection options: each host's user and port
//! (its own, else `spec.ssh`'s), the key files, known_hosts and bastion.

use std::path::PathBuf;
use std::time::Duration;

use crate::spec::{Cluster, Host, HostRole};
use crate::ssh::{ConnectOptions, HostKeyPolicy, SshTarget};

use super::HostsError;

/// A host of the spec, with how to reach it.
#[derive(Debug, Clone)]
pub struct HostEntry {
    pub host: Host,
    pub target: SshTarget,
}

impl HostEntry {
    pub fn name(&self) -> &str {
        &self.host.name
    }

    pub fn is_control_plane(&self) -> bool {
        self.host.role == HostRole::ControlPlane
    }
}

/// The spec's hosts, control plane first (in spec order), then workers.
pub fn hosts(cluster: &Cluster) -> Vec<HostEntry> {
    let settings = cluster.spec.ssh.clone().unwrap_or_default();
    let mut entries: Vec<HostEntry> = cluster
        .spec
        .hosts
        .iter()
        .map(|host| HostEntry {
            host: host.clone(),
            target: SshTarget {
                name: host.name.clone(),
                address: host.address.clone(),
                port: host.port.unwrap_or(settings.port),
                user: host.user.clone().unwrap_or_else(|| settings.user.clone()),
            },
        })
        .collect();
    entries.sort_by_key(|entry| !entry.is_control_plane());
    entries
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// `~/x` with the user's home directory.
fn expand(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), home()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

/// How every host of `cluster` is reached and trusted. `accept_new_host_keys` is the
/// operator's explicit opt-in to trust-on-first-use.
pub fn connect_options(
    cluster: &Cluster,
    accept_new_host_keys: bool,
) -> Result<ConnectOptions, HostsError> {
    let settings = cluster.spec.ssh.clone().unwrap_or_default();
    let identity_files = match &settings.private_key_file {
        Some(path) => vec![expand(path)],
        // OpenSSH's defaults, those that exist.
        None => ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .filter_map(|name| home().map(|home| home.join(".ssh").join(name)))
            .filter(|path| path.exists())
            .collect(),
    };
    let known_hosts = match &settings.known_hosts_file {
        Some(path) => expand(path),
        None => home()
            .map(|home| home.join(".ssh/known_hosts"))
            .ok_or_else(|| {
                HostsError::Setup(
                    "HOME is not set: set spec.ssh.knownHostsFile to the known_hosts file to check hosts against".to_string(),
                )
            })?,
    };
    let bastion = settings
        .bastion
        .as_deref()
        .map(|text| parse_bastion(text, &settings.user))
        .transpose()?;
    Ok(ConnectOptions {
        identity_files,
        use_agent: std::env::var_os("SSH_AUTH_SOCK").is_some(),
        known_hosts,
        host_key_policy: if accept_new_host_keys {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        connect_timeout: Duration::from_secs(10),
        bastion,
    })
}

/// `[user@]host[:port]`.
fn parse_bastion(text: &str, default_user: &str) -> Result<SshTarget, HostsError> {
    let (user, rest) = match text.split_once('@') {
        Some((user, rest)) => (user.to_string(), rest),
        None => (default_user.to_string(), text),
    };
    let (address, port) = match rest.rsplit_once(':') {
        Some((address, port)) if !address.contains(':') => {
            let port = port.parse().map_err(|_| {
                HostsError::Setup(format!(
                    "spec.ssh.bastion `{text}`: `{port}` is not a port; write [user@]host[:port]"
                ))
            })?;
            (address.to_string(), port)
        }
        _ => (rest.to_string(), 22),
    };
    if address.is_empty() || user.is_empty() {
        return Err(HostsError::Setup(format!(
            "spec.ssh.bastion `{text}` names no host; write [user@]host[:port]"
        )));
    }
    Ok(SshTarget {
        name: format!("bastion {address}"),
        address,
        port,
        user,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_bastion;

    #[test]
    fn bastions_are_user_host_and_port() {
        let full = parse_bastion("ops@jump.example.com:2222", "root").unwrap();
        assert_eq!(
            (full.user.as_str(), full.address.as_str(), full.port),
            ("ops", "jump.example.com", 2222)
        );
        let bare = parse_bastion("10.0.0.5", "admin").unwrap();
        assert_eq!((bare.user.as_str(), bare.port), ("admin", 22));
        assert!(parse_bastion("jump:ssh", "root").is_err());
        assert!(parse_bastion("ops@", "root").is_err());
    }
}
