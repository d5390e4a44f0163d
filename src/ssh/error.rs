//! Errors of the SSH transport, each naming the host it happened on and what to do about it.

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SshError {
    #[error(
        "cannot reach {host}: {source}; check the host is up and its address and port in the spec"
    )]
    Unreachable {
        host: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{host}: no answer within {after:?} while {stage}; check the host is up and reachable")]
    Timeout {
        host: String,
        stage: &'static str,
        after: Duration,
    },

    #[error(
        "{host} is not in {known_hosts} (its key is {fingerprint}); after checking that fingerprint \
         on the host (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), add it to the file, or \
         let rafter record it on first use with --accept-new-host-keys"
    )]
    UnknownHostKey {
        host: String,
        fingerprint: String,
        known_hosts: PathBuf,
    },

    #[error(
        "HOST KEY MISMATCH for {host}: it presented {fingerprint}, but {known_hosts} line {line} \
         records another key for it. This can be a machine in the middle; nothing was sent. If the \
         host was reinstalled, remove that line after checking the new key"
    )]
    HostKeyMismatch {
        host: String,
        fingerprint: String,
        known_hosts: PathBuf,
        line: usize,
    },

    #[error("cannot use known_hosts file {path}: {reason}")]
    KnownHosts { path: PathBuf, reason: String },

    #[error(
        "{host}: authentication as `{user}` failed with {tried}; check the key is in the user's \
         authorized_keys, or set spec.ssh.privateKeyFile"
    )]
    AuthFailed {
        host: String,
        user: String,
        tried: String,
    },

    #[error(
        "no SSH identity to authenticate with: no ssh-agent (SSH_AUTH_SOCK) and no key file; set \
         spec.ssh.privateKeyFile or start an agent"
    )]
    NoIdentity,

    #[error("cannot use private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },

    #[error("{host}: SSH failed: {source}")]
    Protocol {
        host: String,
        #[source]
        source: russh::Error,
    },

    #[error("{host}: cannot open a tunnel through the bastion {bastion}: {source}")]
    Tunnel {
        host: String,
        bastion: String,
        #[source]
        source: russh::Error,
    },

    #[error(
        "{host}: `{user}` cannot run commands as root without a password; give it passwordless \
         sudo (NOPASSWD) or connect as root"
    )]
    SudoPassword { host: String, user: String },

    #[error("{host}: `{command}` failed ({status}): {stderr}")]
    Command {
        host: String,
        command: String,
        status: String,
        stderr: String,
    },
}

impl SshError {
    /// Whether the host could not be reached at all (as opposed to refusing or failing).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            SshError::Unreachable { .. } | SshError::Timeout { .. } | SshError::Tunnel { .. }
        )
    }
}
