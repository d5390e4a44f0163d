//! etcd backups: what a backup is ([`BackupRecord`]), where backups are kept and how they are
//! read back intact ([`catalog`]), and which of them retention keeps ([`retention`]).
//!
//! Taking, verifying and restoring a snapshot happen on the members themselves (over SSH on
//! bare hosts: [`crate::hosts::snapshot`], [`crate::hosts::restore`]; on AWS asked through the
//! state store: [`request`], [`crate::rolling::restore`]); this module owns what is stored. A snapshot holds every Secret of the cluster, so it is kept where only the user
//! can read it (see [`crate::state::layout`]).

pub mod catalog;
pub mod record;
pub mod request;
pub mod retention;

pub use record::{BackupRecord, SnapshotFacts, Verification};

use crate::state::StateError;

/// The journal's name for a restore of etcd (one at a time per cluster, on any provider).
pub const RESTORE_OPERATION: &str = "restore-etcd";
/// How far revisions jump at a restore where etcd can bump them: Kubernetes' documented
/// example, far above what any cluster reaches between two backups.
pub const REVISION_BUMP: u64 = 1_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "backup {id} of cluster {cluster} does not exist (`rafter get backups {cluster}` lists them)"
    )]
    NotFound { cluster: String, id: String },
    #[error("the record of backup {id} ({key}) cannot be read: {problem}")]
    BadRecord {
        id: String,
        key: String,
        problem: String,
    },
    #[error(
        "backup {id} is damaged: its snapshot {problem} (the record says {expected}); it cannot be verified or restored"
    )]
    Damaged {
        id: String,
        problem: String,
        expected: String,
    },
    #[error("backup {id} already exists")]
    Exists { id: String },
    #[error(
        "no member of cluster {cluster} answered backup request {request} within {waited_secs}s: the leading member's timer takes it within 30 s while etcd is healthy (`rafter validate cluster {cluster}` says whether it is)"
    )]
    NotAnswered {
        request: String,
        cluster: String,
        waited_secs: u64,
    },
}
