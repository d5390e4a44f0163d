//! The state store: where each cluster's spec (and later its resource ids, PKI and lock) lives.
//!
//! [`StateStore`] is the storage interface (a local directory now, S3 next); [`ClusterStore`]
//! is the kops-like layout on top of it: `<cluster>/config.yaml` holds the completed spec.

pub mod local;
pub mod location;

use std::future::Future;

use crate::plan::RecordedResource;

pub use local::LocalStore;
pub use location::{StateLocation, default_state_location};

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
    #[error(
        "S3 state stores ({url}) are not available in this build yet; use a local directory (file:///path)"
    )]
    S3NotAvailable { url: String },
    #[error(
        "`{url}` is not a state store location: use file:///path, a directory path, or s3://bucket/prefix"
    )]
    BadLocation { url: String },
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

const CONFIG_FILE: &str = "config.yaml";
const RESOURCES_FILE: &str = "resources.json";

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

    /// `configBase` of a cluster: where its files live.
    pub fn config_base(&self, cluster: &str) -> String {
        format!("{}/{cluster}", self.store.url().trim_end_matches('/'))
    }

    pub fn spec_key(cluster: &str) -> String {
        format!("{cluster}/{CONFIG_FILE}")
    }

    /// The stored (completed) spec of a cluster, as YAML text.
    pub async fn read_spec(&self, cluster: &str) -> Result<Option<String>, StateError> {
        let key = Self::spec_key(cluster);
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

    pub async fn write_spec(&self, cluster: &str, yaml: &str) -> Result<(), StateError> {
        self.store
            .write(&Self::spec_key(cluster), yaml.as_bytes())
            .await
    }

    /// What rafter recorded of the cluster's cloud resources (empty until something is applied).
    pub async fn read_resources(&self, cluster: &str) -> Result<Vec<RecordedResource>, StateError> {
        let key = format!("{cluster}/{RESOURCES_FILE}");
        match self.store.read(&key).await? {
            None => Ok(Vec::new()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|error| StateError::Read {
                store: self.store.url(),
                key,
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
            }),
        }
    }

    /// Names of all clusters with a stored spec, sorted.
    pub async fn list_clusters(&self) -> Result<Vec<String>, StateError> {
        let keys = self.store.list("").await?;
        Ok(keys
            .iter()
            .filter_map(|key| key.strip_suffix(&format!("/{CONFIG_FILE}")))
            .filter(|name| !name.contains('/'))
            .map(ToString::to_string)
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
