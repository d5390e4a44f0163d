//! The cluster-wide lock: one writer at a time, built on conditional writes.
//!
//! Acquiring writes `<cluster>/lock` only if it is absent (S3 `If-None-Match: *`), so of any
//! number of concurrent runs exactly one wins. A lock carries its holder and a lease. It is
//! broken only by replacing the exact version that was read (`If-Match`), and only when:
//! its holder ran on this machine and is provably gone (see [`super::holder`]; said, not
//! silent), or its lease has run out and the user asks (`--force-unlock`), or the user names
//! that very lock (`--force-unlock=ID`, the id every refusal prints, as Terraform's
//! `force-unlock` takes one).
//!
//! All of that rests on the store refusing a conditional write it cannot honour. Some
//! S3-compatible servers ignore `If-None-Match` and answer 200: every acquisition first
//! proves the store refuses a second create-only write of a probe object, and refuses to
//! lock on a store that does not. A write whose answer was lost (and that the S3 client sent
//! again, meeting its own object) is recognised by the store itself: the lock's bytes carry
//! its unique id, so only this run's write can hold them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::holder::{Gone, Holder};
use super::{Precondition, StateError, StateStore, layout};

/// What the lock object says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Unique per acquisition, so a holder can tell its lock from a successor's.
    pub id: String,
    /// `user@host (pid N)`.
    pub holder: String,
    /// The holder in detail, to tell whether it is gone (absent in older locks).
    #[serde(default)]
    pub process: Holder,
    /// The command that holds it, e.g. `update cluster`.
    pub operation: String,
    pub acquired_unix: u64,
    /// Last time the holder showed it is alive.
    pub renewed_unix: u64,
    pub lease_seconds: u64,
}

impl LockRecord {
    fn expired_at(&self, now: u64) -> bool {
        now >= self.renewed_unix.saturating_add(self.lease_seconds)
    }
}

/// Which held lock a run may break, besides one whose holder is provably gone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ForceUnlock {
    #[default]
    Never,
    /// One whose lease has run out (`--force-unlock`).
    IfExpired,
    /// This very lock, live or not (`--force-unlock=ID`).
    Id(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cluster {cluster} is locked by {holder} for `{operation}` (lock {id}, taken {age}s ago{})", if *.expired { ", lease expired" } else { "" })]
    Held {
        cluster: String,
        id: String,
        holder: String,
        operation: String,
        age: u64,
        expired: bool,
    },
    #[error("the lock of cluster {cluster} was taken over by {holder}; stopping")]
    Lost { cluster: String, holder: String },
    #[error(
        "the state store at {store} ignores conditional writes (a second create-only write of the same object succeeded), so two runs could both hold the lock of cluster {cluster}"
    )]
    Unconditional { store: String, cluster: String },
    #[error("the lock object of cluster {cluster} is unreadable")]
    Corrupt {
        cluster: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

impl LockError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            LockError::Held {
                expired: true, id, ..
            } => Some(format!(
                "its lease ran out: if that run is really gone, run again with --force-unlock \
                 (or --force-unlock={id})"
            )),
            LockError::Held {
                expired: false, id, ..
            } => Some(format!(
                "wait for that run to finish; if you know it is gone (its machine is), run again \
                 with --force-unlock={id}"
            )),
            LockError::Corrupt { cluster, .. } => Some(format!(
                "inspect and delete {cluster}/lock in the state store"
            )),
            LockError::Unconditional { .. } => Some(
                "keep the state in AWS S3, or in an S3-compatible server that honours If-None-Match and If-Match (412 Precondition Failed)"
                    .to_string(),
            ),
            _ => None,
        }
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0);
    format!(
        "{:x}-{:x}-{:x}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Proves `store` refuses a second create-only write of one object (a probe of this run's
/// own, removed afterwards), or refuses to lock: a store that ignores the condition would
/// let two runs both hold the lock.
async fn probe_conditional_writes<S: StateStore>(
    store: &S,
    cluster: &str,
) -> Result<(), LockError> {
    let key = layout::lock_probe_key(cluster, &unique_id());
    store.write_if(&key, b"probe", Precondition::Absent).await?;
    // Other bytes: a store may take a refused write of the very bytes already there as its
    // own resent write (see `S3Store::write_if`), which would hide the refusal this needs.
    let again = store
        .write_if(&key, b"probe again", Precondition::Absent)
        .await;
    store.delete(&key).await?;
    match again {
        Err(StateError::PreconditionFailed { .. }) => Ok(()),
        Ok(_) => Err(LockError::Unconditional {
            store: store.url(),
            cluster: cluster.to_string(),
        }),
        Err(error) => Err(error.into()),
    }
}

/// A held lock. Release it with [`ClusterLock::release`]; renew it during long work.
pub struct ClusterLock<'a, S: StateStore> {
    store: &'a S,
    cluster: String,
    record: LockRecord,
    version: String,
    /// The lock this one replaced, and why it could be.
    broke: Option<(LockRecord, Broken)>,
}

/// Why a run broke the lock it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// Its holder ran on this machine and is gone.
    HolderGone(Gone),
    /// Its lease had run out and the user asked.
    Expired,
    /// The user named it.
    Named,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::HolderGone(gone) => write!(formatter, "that run is gone: {gone}"),
            Broken::Expired => {
                formatter.write_str("its lease had run out and --force-unlock asked")
            }
            Broken::Named => formatter.write_str("--force-unlock named it"),
        }
    }
}

impl<S: StateStore> std::fmt::Debug for ClusterLock<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLock")
            .field("cluster", &self.cluster)
            .field("record", &self.record)
            .finish()
    }
}

impl<'a, S: StateStore> ClusterLock<'a, S> {
    /// Takes the cluster's lock, or says who holds it. A lock whose holder is provably gone
    /// is replaced (see [`ClusterLock::broken`]); otherwise only what `force` allows is.
    pub async fn acquire(
        store: &'a S,
        cluster: &str,
        operation: &str,
        lease: Duration,
        force: &ForceUnlock,
    ) -> Result<Self, LockError> {
        probe_conditional_writes(store, cluster).await?;
        let now = now_unix();
        let process = Holder::this_process();
        let record = LockRecord {
            id: unique_id(),
            holder: process.describe(),
            process: process.clone(),
            operation: operation.to_string(),
            acquired_unix: now,
            renewed_unix: now,
            lease_seconds: lease.as_secs().max(1),
        };
        let body = serde_json::to_vec_pretty(&record).map_err(|source| LockError::Corrupt {
            cluster: cluster.to_string(),
            source,
        })?;
        let key = layout::lock_key(cluster);
        match store.write_if(&key, &body, Precondition::Absent).await {
            Ok(version) => {
                return Ok(Self {
                    store,
                    cluster: cluster.to_string(),
                    record,
                    version,
                    broke: None,
                });
            }
            Err(StateError::PreconditionFailed { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        let Some(current) = store.read_versioned(&key).await? else {
            // Released between our write and our read: try once more.
            let version = store.write_if(&key, &body, Precondition::Absent).await?;
            return Ok(Self {
                store,
                cluster: cluster.to_string(),
                record,
                version,
                broke: None,
            });
        };
        let held: LockRecord =
            serde_json::from_slice(&current.data).map_err(|source| LockError::Corrupt {
                cluster: cluster.to_string(),
                source,
            })?;
        let expired = held.expired_at(now);
        let breakable = match (held.process.gone_seen_from(&process), force) {
            (Some(gone), _) => Some(Broken::HolderGone(gone)),
            (None, ForceUnlock::Id(id)) if *id == held.id => Some(Broken::Named),
            (None, ForceUnlock::IfExpired) if expired => Some(Broken::Expired),
            _ => None,
        };
        if let Some(reason) = breakable {
            let version = store
                .write_if(&key, &body, Precondition::Version(current.version))
                .await
                .map_err(|error| match error {
                    StateError::PreconditionFailed { .. } => LockError::Lost {
                        cluster: cluster.to_string(),
                        holder: "another run".to_string(),
                    },
                    other => other.into(),
                })?;
            return Ok(Self {
                store,
                cluster: cluster.to_string(),
                record,
                version,
                broke: Some((held, reason)),
            });
        }
        Err(LockError::Held {
            cluster: cluster.to_string(),
            id: held.id,
            holder: held.holder,
            operation: held.operation,
            age: now.saturating_sub(held.acquired_unix),
            expired,
        })
    }

    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    /// The lock this run found and replaced, and why it could: for the run to say so.
    pub fn broken(&self) -> Option<&(LockRecord, Broken)> {
        self.broke.as_ref()
    }

    /// Extends the lease. Fails with [`LockError::Lost`] if someone broke the lock meanwhile.
    pub async fn renew(&mut self) -> Result<(), LockError> {
        let mut record = self.record.clone();
        record.renewed_unix = now_unix();
        let body = serde_json::to_vec_pretty(&record).map_err(|source| LockError::Corrupt {
            cluster: self.cluster.clone(),
            source,
        })?;
        match self
            .store
            .write_if(
                &layout::lock_key(&self.cluster),
                &body,
                Precondition::Version(self.version.clone()),
            )
            .await
        {
            Ok(version) => {
                self.version = version;
                self.record = record;
                Ok(())
            }
            Err(StateError::PreconditionFailed { .. }) => Err(self.lost().await),
            Err(error) => Err(error.into()),
        }
    }

    async fn lost(&self) -> LockError {
        let holder = match self.store.read(&layout::lock_key(&self.cluster)).await {
            Ok(Some(bytes)) => serde_json::from_slice::<LockRecord>(&bytes)
                .map(|record| record.holder)
                .unwrap_or_default(),
            _ => "nobody".to_string(),
        };
        LockError::Lost {
            cluster: self.cluster.clone(),
            holder,
        }
    }

    /// Gives the lock up, if it is still ours.
    pub async fn release(self) -> Result<(), LockError> {
        let key = layout::lock_key(&self.cluster);
        match self.store.read_versioned(&key).await? {
            Some(current) if current.version == self.version => Ok(self.store.delete(&key).await?),
            Some(_) => Err(self.lost().await),
            None => Ok(()),
        }
    }
}
