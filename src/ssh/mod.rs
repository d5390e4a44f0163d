//! SSH transport to bare hosts (provider `ssh`), on russh.
//!
//! One connection per host, opened once and reused for every command and upload of a run
//! (channels are multiplexed over it). Host keys are checked against a known_hosts file, strictly
//! unless the operator opted in to trust-on-first-use; authentication uses ssh-agent identities
//! and key files; a bastion is crossed with a `direct-tcpip` channel, so the bastion never sees
//! the traffic in clear and holds no key. Every error names the host it happened on.

mod auth;
mod error;
mod host_keys;
mod quote;
mod session;

pub use error::SshError;
pub use host_keys::HostKeyPolicy;
pub use quote::shell_quote;
pub use session::{CommandOutput, Session};

use std::path::PathBuf;
use std::time::Duration;

/// A host rafter connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// The name the operator knows the host by (the spec's host name), used in messages.
    pub name: String,
    /// Address or DNS name, also the key under which known_hosts records the host.
    pub address: String,
    pub port: u16,
    pub user: String,
}

impl SshTarget {
    /// `cp-1 (root@10.250.0.11:22)`: how messages name the host.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}@{}:{})",
            self.name, self.user, self.address, self.port
        )
    }
}

/// How to reach and trust hosts: the same for every host of a run.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Private key files tried after the agent's identities, in order.
    pub identity_files: Vec<PathBuf>,
    /// Whether to ask the ssh-agent at `SSH_AUTH_SOCK` for identities.
    pub use_agent: bool,
    pub known_hosts: PathBuf,
    pub host_key_policy: HostKeyPolicy,
    /// Limit on the TCP connect, the handshake and the authentication, each.
    pub connect_timeout: Duration,
    /// The jump host every connection goes through, if any.
    pub bastion: Option<SshTarget>,
}
