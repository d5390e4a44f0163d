//! The state store: where each cluster's spec, resource ids, lock (and later PKI) live.
//!
//! [`StateStore`] is the storage interface (a local directory now, S3 next); [`ClusterStore`]
//! is the kops-like layout on top of it: `<cluster>/config.yaml` holds the completed spec,
//! `<cluster>/resources.json` the ids of what was applied ([`ResourceLedger`]), `<cluster>/lock`
//! the cluster lock.

pub mod any;
pub mod holder;
pub mod journal;
pub mod layout;
pub mod ledger;
pub mod local;
pub mod location;
pub mod lock;
pub mod s3;

use std::future::Future;

use crate::plan::RecordedResource;

pub use any::AnyStore;
pub use ledger::{Lineage, ResourceLedger, ResourceRecord};
pub use local::LocalStore;
pub use location::{StateLocation, default_state_location};
pub use lock::{Broken, ClusterLock, ForceUnlock, LockError, LockRecord};
pub use s3::S3Store;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {key} from the state store at {store}")]
    Read {
        store: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {key} to the state store at {store}")]
    Write {
        store: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot list {prefix} in the state store at {store}")]
    List {
        store: String,
        prefix: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot delete {key} from the state store at {store}")]
    Delete {
        store: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{key}` is not a valid state key (relative, no `..`, no empty parts)")]
    InvalidKey { key: String },
    #[error("{operation} s3://{bucket}/{key} failed")]
    S3 {
        operation: &'static str,
        bucket: String,
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{key} in the state store at {store} was changed by someone else")]
    PreconditionFailed { store: String, key: String },
    #[error(
        "`{url}` is not a state store location: use file:///path, a directory path, or s3://bucket/prefix"
    )]
    BadLocation { url: String },
    #[error(
        "`{url}`: an S3 prefix may not have `.`, `..` or empty parts (S3 takes keys literally); write the prefix as it should be, e.g. s3://bucket/clusters"
    )]
    BadS3Prefix { url: String },
    #[error("the system's random number generator failed: {0}")]
    Random(String),
}

/// Object storage of small files, with atomic replacement of each object.
pub trait StateStore: Send + Sync {
    /// Where this store is, as a URL (`file:///…`, `s3://…`), for messages and `configBase`.
    fn url(&self) -> String;

    /// The object's bytes, or `None` if it does not exist.
    fn read(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StateError>> + Send;

    /// Replaces the object atomically: readers see the old bytes or the new, never a mix.
    /// Objects are private to the owner (0600 locally, server-side encrypted in S3).
    fn write(&self, key: &str, data: &[u8]) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Keys under `prefix`, sorted.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>, StateError>> + Send;

    /// Deletes every object under `prefix`.
    fn delete_prefix(&self, prefix: &str) -> impl Future<Output = Result<(), StateError>> + Send;

    /// The object with a version tag (an ETag in S3) for conditional writes.
    fn read_versioned(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Versioned>, StateError>> + Send;

    /// Writes only if the object is as `precondition` says (absent, or still at a version);
    /// otherwise fails with [`StateError::PreconditionFailed`]. Returns the new version.
    /// This is the compare-and-swap the cluster lock and state generations stand on.
    fn write_if(
        &self,
        key: &str,
        data: &[u8],
        precondition: Precondition,
    ) -> impl Future<Output = Result<String, StateError>> + Send;

    /// Deletes one object (absent is fine).
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StateError>> + Send;
}

/// An object's bytes and the version they were read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub data: Vec<u8>,
    pub version: String,
}

/// What a conditional write expects to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No object at the key (S3 `If-None-Match: *`).
    Absent,
    /// The object still at this version (S3 `If-Match: <etag>`).
    Version(String),
}

/// Checks a key: relative, `/`-separated, no empty, `.` or `..` parts.
pub fn check_key(key: &str) -> Result<(), StateError> {
    let valid = !key.is_empty()
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if valid {
        Ok(())
    } else {
        Err(StateError::InvalidKey {
            key: key.to_string(),
        })
    }
}

/// The per-cluster layout of a state store.
pub struct ClusterStore<S> {
    store: S,
}

impl<S: StateStore> ClusterStore<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    pub fn url(&self) -> String {
        self.store.url()
    }

    /// The underlying store (for the lock and other per-cluster objects).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// `configBase` of a cluster: where its files live.
    pub fn config_base(&self, cluster: &str) -> String {
        format!("{}/{cluster}", self.store.url().trim_end_matches('/'))
    }

    /// The stored (completed) spec of a cluster, as YAML text.
    pub async fn read_spec(&self, cluster: &str) -> Result<Option<String>, StateError> {
        let key = layout::spec_key(cluster);
        let bytes = self.store.read(&key).await?;
        bytes
            .map(|bytes| {
                String::from_utf8(bytes).map_err(|error| StateError::Read {
                    store: self.store.url(),
                    key: key.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
                })
            })
            .transpose()
    }

    /// Stores the spec of a new cluster; fails with [`StateError::PreconditionFailed`] if a
    /// cluster of that name exists, even when two creates race (in S3, one that holds this
    /// very spec counts as this write's: see [`S3Store`]'s `write_if`).
    pub async fn create_spec(&self, cluster: &str, yaml: &str) -> Result<(), StateError> {
        self.store
            .write_if(
                &layout::spec_key(cluster),
                yaml.as_bytes(),
                Precondition::Absent,
            )
            .await
            .map(|_| ())
    }

    /// Replaces the stored spec of an existing cluster (atomically).
    pub async fn replace_spec(&self, cluster: &str, yaml: &str) -> Result<(), StateError> {
        self.store
            .write(&layout::spec_key(cluster), yaml.as_bytes())
            .await
    }

    /// What rafter recorded of the cluster's cloud resources (empty until something is applied).
    pub async fn read_resources(&self, cluster: &str) -> Result<Vec<RecordedResource>, StateError> {
        let key = layout::resources_key(cluster);
        match self.store.read(&key).await? {
            None => Ok(Vec::new()),
            Some(bytes) => Ok(ledger::parse(&self.store.url(), &key, &bytes)?.resources),
        }
    }

    /// Names of all clusters with a stored spec, sorted.
    pub async fn list_clusters(&self) -> Result<Vec<String>, StateError> {
        let keys = self.store.list("").await?;
        Ok(keys
            .iter()
            .filter_map(|key| {
                let cluster = key.split('/').next()?;
                (layout::spec_key(cluster) == *key).then(|| cluster.to_string())
            })
            .collect())
    }

    /// Removes everything stored for the cluster.
    pub async fn delete_cluster(&self, cluster: &str) -> Result<(), StateError> {
        self.store.delete_prefix(cluster).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_stay_inside_the_store() {
        for good in ["a/config.yaml", "demo.example.com/pki/ca.key"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "./a", "a/"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }
}
