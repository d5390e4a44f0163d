//! The record of a cluster's cloud resources (`<cluster>/resources.json`), written as each
//! resource comes into existence so an interrupted apply loses nothing.
//!
//! Every write is a compare-and-swap on the version this run last wrote, and carries a
//! generation number one higher than the last: a stale writer (a second run that somehow got
//! past the lock, or one whose lock was broken) is refused instead of overwriting newer state.

use tokio::sync::Mutex;

use super::{ClusterStore, Precondition, StateError, StateStore};
use crate::apply::Recorder;
use crate::graph::Address;
use crate::plan::RecordedResource;

/// What `resources.json` holds.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ResourceRecord {
    /// Incremented by every write.
    pub generation: u64,
    pub resources: Vec<RecordedResource>,
}

pub(super) fn parse(store: &str, key: &str, bytes: &[u8]) -> Result<ResourceRecord, StateError> {
    serde_json::from_slice(bytes).map_err(|error| StateError::Read {
        store: store.to_string(),
        key: key.to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{error}; the file is corrupt: restore it from your bucket's versions, or \
                 remove it so that the next apply adopts the cluster's resources by their tags"
            ),
        ),
    })
}

struct Current {
    record: ResourceRecord,
    /// The version of the object as this run last read or wrote it; `None` if absent.
    version: Option<String>,
}

/// A [`Recorder`] that keeps `resources.json` up to date, one conditional write per change.
pub struct ResourceLedger<'a, S: StateStore> {
    store: &'a ClusterStore<S>,
    key: String,
    current: Mutex<Current>,
}

impl<'a, S: StateStore> ResourceLedger<'a, S> {
    /// Reads the cluster's record (empty if there is none yet).
    pub async fn open(store: &'a ClusterStore<S>, cluster: &str) -> Result<Self, StateError> {
        let key = super::layout::resources_key(cluster);
        let current = match store.store().read_versioned(&key).await? {
            None => Current {
                record: ResourceRecord::default(),
                version: None,
            },
            Some(versioned) => Current {
                record: parse(&store.url(), &key, &versioned.data)?,
                version: Some(versioned.version),
            },
        };
        Ok(Self {
            store,
            key,
            current: Mutex::new(current),
        })
    }

    pub async fn resources(&self) -> Vec<RecordedResource> {
        self.current.lock().await.record.resources.clone()
    }

    async fn change(
        &self,
        edit: impl FnOnce(&mut Vec<RecordedResource>),
    ) -> Result<(), StateError> {
        let mut current = self.current.lock().await;
        let mut resources = current.record.resources.clone();
        edit(&mut resources);
        resources.sort_by(|left, right| left.address.cmp(&right.address));
        let next = ResourceRecord {
            generation: current.record.generation + 1,
            resources,
        };
        let bytes = serde_json::to_vec_pretty(&next).map_err(|error| StateError::Write {
            store: self.store.url(),
            key: self.key.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
        })?;
        let precondition = match &current.version {
            Some(version) => Precondition::Version(version.clone()),
            None => Precondition::Absent,
        };
        let version = self
            .store
            .store()
            .write_if(&self.key, &bytes, precondition)
            .await?;
        *current = Current {
            record: next,
            version: Some(version),
        };
        Ok(())
    }
}

impl<S: StateStore> Recorder for ResourceLedger<'_, S> {
    async fn record(&self, resource: RecordedResource) -> Result<(), StateError> {
        self.change(|resources| {
            resources.retain(|existing| existing.address != resource.address);
            resources.push(resource);
        })
        .await
    }

    async fn forget(&self, address: &Address) -> Result<(), StateError> {
        self.change(|resources| resources.retain(|existing| &existing.address != address))
            .await
    }
}
