//! The record of a cluster's cloud resources (`<cluster>/resources.json`), written as each
//! resource comes into existence so an interrupted apply loses nothing.
//!
//! Every write is a compare-and-swap on the version this run last wrote, and carries a
//! generation number one higher than the last: a stale writer (a second run that somehow got
//! past the lock, or one whose lock was broken) is refused instead of overwriting newer state.

use std::collections::BTreeMap;

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
    #[serde(flatten)]
    pub lineage: Lineage,
    pub resources: Vec<RecordedResource>,
}

/// What tells one life of a cluster's resources from another, for idempotency tokens: a
/// create retried after its answer was lost, even by a rerun after a kill, must send the
/// token the first attempt sent, and a resource made again after rafter deleted it (or
/// after the whole cluster was deleted) must not.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lineage {
    /// Random, chosen when the record is first written; a cluster deleted and created again
    /// gets a new one.
    #[serde(default)]
    pub incarnation: String,
    /// How many times rafter deleted the resource at each address.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retired: BTreeMap<String, u64>,
}

impl Lineage {
    /// A new incarnation: 16 random bytes, in hex.
    fn begin() -> Result<Self, StateError> {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).map_err(|error| StateError::Random(error.to_string()))?;
        Ok(Self {
            incarnation: bytes.iter().map(|byte| format!("{byte:02x}")).collect(),
            retired: BTreeMap::new(),
        })
    }
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
        let mut current = match store.store().read_versioned(&key).await? {
            None => Current {
                record: ResourceRecord::default(),
                version: None,
            },
            Some(versioned) => Current {
                record: parse(&store.url(), &key, &versioned.data)?,
                version: Some(versioned.version),
            },
        };
        // Kept in memory until the first write; a record written before incarnations
        // existed gets one the same way.
        if current.record.lineage.incarnation.is_empty() {
            current.record.lineage = Lineage {
                retired: std::mem::take(&mut current.record.lineage.retired),
                ..Lineage::begin()?
            };
        }
        Ok(Self {
            store,
            key,
            current: Mutex::new(current),
        })
    }

    pub async fn resources(&self) -> Vec<RecordedResource> {
        self.current.lock().await.record.resources.clone()
    }

    /// The record's lineage as this run opened it.
    pub async fn lineage(&self) -> Lineage {
        self.current.lock().await.record.lineage.clone()
    }

    async fn change(
        &self,
        edit: impl FnOnce(&mut Vec<RecordedResource>, &mut Lineage),
    ) -> Result<(), StateError> {
        let mut current = self.current.lock().await;
        let mut resources = current.record.resources.clone();
        let mut lineage = current.record.lineage.clone();
        edit(&mut resources, &mut lineage);
        resources.sort_by(|left, right| left.address.cmp(&right.address));
        let generation =
            current
                .record
                .generation
                .checked_add(1)
                .ok_or_else(|| StateError::Write {
                    store: self.store.url(),
                    key: self.key.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "its generation is at the largest number it can hold; the file was \
                     edited by hand: restore it from your bucket's versions",
                    ),
                })?;
        let next = ResourceRecord {
            generation,
            lineage,
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
        self.change(|resources, _| {
            resources.retain(|existing| existing.address != resource.address);
            resources.push(resource);
        })
        .await
    }

    async fn forget(&self, address: &Address) -> Result<(), StateError> {
        self.change(|resources, lineage| {
            resources.retain(|existing| &existing.address != address);
            let retired = lineage.retired.entry(address.to_string()).or_default();
            *retired = retired.saturating_add(1);
        })
        .await
    }
}
