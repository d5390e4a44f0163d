//! The bare-host provider (`provider: ssh`): rafter turns the spec's hosts into a cluster
//! over SSH, in phases, each looking before it acts so a rerun changes nothing on a healthy
//! cluster and repairs a broken one.
//!
//! Phases, over host sets: connect (every host at once, one connection each, kept for the
//! run), preflight (facts and checks on every host before anything changes), files (the
//! node's bundle: configuration, certificates, units; local assets uploaded), node (kernel
//! settings, pinned binaries, containerd), etcd (a new cluster's members start together; an
//! existing cluster loses removed members first and gains new ones one at a time, each
//! healthy before the next), control plane (kubelet on each control-plane host, one at a
//! time), workers (all at once) and add-ons (from the first control-plane host).

pub mod apply;
pub mod assets;
pub mod connect;
pub mod etcd;
pub mod facts;
pub mod inventory;
pub mod membership;
pub mod restore;
pub mod snapshot;

pub use apply::{HostReport, Observer, Phase, Report, RunOptions, run};

use crate::ssh::SshError;

#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    /// Boxed: russh's errors are large, and these travel through every phase.
    #[error(transparent)]
    Ssh(Box<SshError>),
    #[error("{}", .0.join("\n"))]
    Hosts(Vec<String>),
    #[error("preflight found problems; nothing was changed:\n  {}", .0.join("\n  "))]
    Preflight(Vec<String>),
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Etcd(String),
    #[error(transparent)]
    Bootstrap(#[from] crate::bootstrap::BootstrapError),
    #[error(transparent)]
    Asset(#[from] crate::bootstrap::assets::AssetError),
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    #[error(transparent)]
    Membership(#[from] membership::MembershipError),
}

impl From<SshError> for HostsError {
    fn from(error: SshError) -> Self {
        HostsError::Ssh(Box::new(error))
    }
}
