//! The cluster's PKI, laid out as kubeadm does: a cluster CA, an etcd CA, a front-proxy CA and
//! a service-account key pair, made once per cluster and kept in the state store; leaf
//! certificates (etcd server and peer, API server, clients) issued from them with kubeadm's
//! key usages and validity (CAs 10 years, leaves 1 year). Keys are ECDSA P-256.
//!
//! Private keys only ever travel as [`Secret`], which never prints its content.

pub mod authority;
pub mod leaf;
pub mod leaves;
pub mod secrets;
pub mod store;

use std::fmt;

pub use authority::{Authority, Issued};
pub use leaf::{LeafSpec, Usage};
pub use leaves::NodeLeaves;
pub use secrets::{BootstrapToken, ClusterSecrets};
pub use store::ClusterPki;

/// A private key in PEM form. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(pem: String) -> Self {
        Self(pem)
    }

    /// The PEM text, for writing to a 0600 file or a node: never for logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("<redacted>")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("could not make {what}: {source}")]
    Generate {
        what: String,
        #[source]
        source: rcgen::Error,
    },
    #[error(
        "{key} in the state store is not a valid {what}: {source}; it was not replaced (a new CA would invalidate every certificate of the cluster)"
    )]
    Corrupt {
        key: String,
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error(
        "{key} in the state store is not a valid {what}; it was not replaced (fix or restore it from the bucket's versions)"
    )]
    CorruptSecret { key: String, what: &'static str },
    #[error("the system's random number generator failed: {0}")]
    Random(String),
    #[error("a stored certificate cannot be read: {detail}")]
    Unreadable { detail: String },
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}
