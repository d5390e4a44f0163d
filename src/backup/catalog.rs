//! The backups kept in the state store: listing, saving, reading back (checked against the
//! record's size and digest, so a damaged snapshot is named, never restored) and deleting.
//!
//! A backup is written snapshot first, record last, and deleted record first: only a backup
//! with a record is listed, and a snapshot left without one by an interrupted run is
//! [`Catalog::incomplete`] until [`prune`] removes it an hour later.

use crate::state::{Precondition, StateError, StateStore, layout};

use super::record::{self, sha256_hex};
use super::{BackupError, BackupRecord, retention};

/// Every backup of a cluster, oldest first.
#[derive(Debug, Default)]
pub struct Catalog {
    pub backups: Vec<BackupRecord>,
    /// Ids whose snapshot has no record (an interrupted backup).
    pub incomplete: Vec<String>,
}

pub async fn list(store: &impl StateStore, cluster: &str) -> Result<Catalog, BackupError> {
    let prefix = layout::etcd_backups_prefix(cluster);
    let keys = store.list(&prefix).await?;
    let mut catalog = Catalog::default();
    let mut ids = std::collections::BTreeSet::new();
    for key in &keys {
        if let Some(id) = key
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| rest.split_once('/'))
            .map(|(id, _)| id.to_string())
        {
            ids.insert(id);
        }
    }
    for id in ids {
        match read_record(store, cluster, &id).await {
            Ok(record) => catalog.backups.push(record),
            Err(BackupError::NotFound { .. }) => catalog.incomplete.push(id),
            Err(error) => return Err(error),
        }
    }
    Ok(catalog)
}

pub async fn read_record(
    store: &impl StateStore,
    cluster: &str,
    id: &str,
) -> Result<BackupRecord, BackupError> {
    let key = layout::etcd_backup_record_key(cluster, id);
    let not_found = || BackupError::NotFound {
        cluster: cluster.to_string(),
        id: id.to_string(),
    };
    // An id that is not a valid key part cannot name a backup.
    let bytes = match store.read(&key).await {
        Err(StateError::InvalidKey { .. }) => return Err(not_found()),
        other => other?.ok_or_else(not_found)?,
    };
    let record: BackupRecord =
        serde_json::from_slice(&bytes).map_err(|error| BackupError::BadRecord {
            id: id.to_string(),
            key: key.clone(),
            problem: error.to_string(),
        })?;
    if record.id != id {
        return Err(BackupError::BadRecord {
            id: id.to_string(),
            key,
            problem: format!("it names backup {}", record.id),
        });
    }
    Ok(record)
}

/// Stores a new backup: the snapshot, then its record (refused if the id exists).
pub async fn save(
    store: &impl StateStore,
    cluster: &str,
    record: &BackupRecord,
    snapshot: &[u8],
) -> Result<(), BackupError> {
    let record_key = layout::etcd_backup_record_key(cluster, &record.id);
    if store.read(&record_key).await?.is_some() {
        return Err(BackupError::Exists {
            id: record.id.clone(),
        });
    }
    store
        .write(
            &layout::etcd_backup_snapshot_key(cluster, &record.id),
            snapshot,
        )
        .await?;
    match store
        .write_if(&record_key, &to_json(record), Precondition::Absent)
        .await
    {
        Err(StateError::PreconditionFailed { .. }) => Err(BackupError::Exists {
            id: record.id.clone(),
        }),
        other => other.map(drop).map_err(BackupError::from),
    }
}

/// Replaces an existing backup's record (its verification changed).
pub async fn update_record(
    store: &impl StateStore,
    cluster: &str,
    record: &BackupRecord,
) -> Result<(), BackupError> {
    store
        .write(
            &layout::etcd_backup_record_key(cluster, &record.id),
            &to_json(record),
        )
        .await
        .map_err(BackupError::from)
}

/// The backup's snapshot, checked against its record.
pub async fn snapshot(
    store: &impl StateStore,
    cluster: &str,
    record: &BackupRecord,
) -> Result<Vec<u8>, BackupError> {
    let damaged = |problem: String, expected: String| BackupError::Damaged {
        id: record.id.clone(),
        problem,
        expected,
    };
    let bytes = store
        .read(&layout::etcd_backup_snapshot_key(cluster, &record.id))
        .await?
        .ok_or_else(|| damaged("is missing".to_string(), format!("{} bytes", record.size)))?;
    if bytes.len() as u64 != record.size {
        return Err(damaged(
            format!("is {} bytes", bytes.len()),
            format!("{} bytes", record.size),
        ));
    }
    let digest = sha256_hex(&bytes);
    if digest != record.sha256 {
        return Err(damaged(
            format!("has SHA-256 {digest}"),
            format!("SHA-256 {}", record.sha256),
        ));
    }
    Ok(bytes)
}

/// Deletes a backup (or what an interrupted one left): the record first, so it is never
/// listed without its snapshot.
pub async fn delete(store: &impl StateStore, cluster: &str, id: &str) -> Result<(), BackupError> {
    store
        .delete(&layout::etcd_backup_record_key(cluster, id))
        .await?;
    store
        .delete(&layout::etcd_backup_snapshot_key(cluster, id))
        .await?;
    Ok(())
}

/// How old a snapshot without a record must be before it is taken for the leftover of an
/// interrupted backup: a member may be between putting the snapshot and its record.
const INCOMPLETE_AFTER: i64 = 3600;

/// Applies retention at `now` (seconds since the epoch): deletes the backups
/// [`retention::expired`] no longer keeps, and what backups interrupted more than an hour ago
/// left. Returns the ids of the backups deleted (leftovers not counted).
pub async fn prune(
    store: &impl StateStore,
    cluster: &str,
    now: i64,
) -> Result<Vec<String>, BackupError> {
    let catalog = list(store, cluster).await?;
    let taken: Vec<(String, i64)> = catalog
        .backups
        .iter()
        .map(|backup| (backup.id.clone(), backup.taken_at_unix))
        .collect();
    let expired = retention::expired(&taken, now);
    let leftovers = catalog.incomplete.iter().filter(|id| {
        record::id_time(id).is_some_and(|taken| now.saturating_sub(taken) > INCOMPLETE_AFTER)
    });
    for id in expired.iter().chain(leftovers) {
        delete(store, cluster, id).await?;
    }
    Ok(expired)
}

fn to_json(record: &BackupRecord) -> Vec<u8> {
    // A record of plain fields always serialises.
    serde_json::to_vec_pretty(record).unwrap_or_default()
}
