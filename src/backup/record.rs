//! What rafter records about each etcd backup, beside its snapshot: when and from which
//! member it was taken, what etcd said the snapshot holds, its digest, and whether a restore
//! of it was proven to work.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What etcd reports about a snapshot file (`etcdutl snapshot status -w json`) and about the
/// cluster when it was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotFacts {
    /// The store revision the snapshot was taken at.
    pub revision: i64,
    /// The live keys at that revision, as the cluster counted them when the snapshot was
    /// taken (`None` when the revision was compacted before it could be counted).
    pub keys: Option<u64>,
    /// etcd's hash of the snapshot's database.
    pub etcd_hash: u64,
    /// The version of the member that took it.
    pub etcd_version: String,
}

/// The outcome of restoring a backup into a scratch etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub verified_at: String,
    /// The host whose etcd binaries restored it.
    pub on: String,
    /// What went wrong, or `None` when the restored store had the snapshot's revision and keys.
    pub problem: Option<String>,
}

/// One backup: its snapshot is at `layout::etcd_backup_snapshot_key(cluster, id)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    /// Sortable by time: `20261201T054418Z`.
    pub id: String,
    /// RFC 3339, for people.
    pub taken_at: String,
    /// Seconds since the epoch, for retention.
    pub taken_at_unix: i64,
    /// The etcd member (control-plane host) that took it.
    pub member: String,
    /// The snapshot's size in bytes and SHA-256, checked whenever it is read back.
    pub size: u64,
    pub sha256: String,
    #[serde(flatten)]
    pub facts: SnapshotFacts,
    #[serde(default)]
    pub verification: Option<Verification>,
    /// The request it answers (`rafter backup etcd` on AWS asks the members for one); none
    /// for a scheduled backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

impl BackupRecord {
    pub fn new(
        taken_at: OffsetDateTime,
        member: &str,
        snapshot: &[u8],
        facts: SnapshotFacts,
    ) -> Self {
        Self {
            id: backup_id(taken_at),
            taken_at: rfc3339(taken_at),
            taken_at_unix: taken_at.unix_timestamp(),
            member: member.to_string(),
            size: snapshot.len() as u64,
            sha256: sha256_hex(snapshot),
            facts,
            verification: None,
            request: None,
        }
    }

    /// "yes", "no", or "FAILED: why", for listings.
    pub fn verified_text(&self) -> String {
        match &self.verification {
            None => "no".to_string(),
            Some(verification) => match &verification.problem {
                None => "yes".to_string(),
                Some(problem) => format!("FAILED: {problem}"),
            },
        }
    }
}

/// A backup's id from when it was taken: UTC, to the second, sortable as text.
pub fn backup_id(taken_at: OffsetDateTime) -> String {
    let utc = taken_at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

/// When the backup `id` was taken, in seconds since the epoch (`None` if it is not an id
/// [`backup_id`] made, with or without a `-N` suffix).
pub fn id_time(id: &str) -> Option<i64> {
    let stamp = id.split('-').next()?;
    let bytes = stamp.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| stamp.get(range)?.parse::<u32>().ok();
    let date = time::Date::from_calendar_date(
        i32::try_from(number(0..4)?).ok()?,
        time::Month::try_from(u8::try_from(number(4..6)?).ok()?).ok()?,
        u8::try_from(number(6..8)?).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(number(9..11)?).ok()?,
        u8::try_from(number(11..13)?).ok()?,
        u8::try_from(number(13..15)?).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp(),
    )
}

pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_as_time_does() {
        let earlier = OffsetDateTime::from_unix_timestamp(1_764_567_858).unwrap();
        let later = earlier + time::Duration::seconds(1);
        assert_eq!(backup_id(earlier), "20251201T054418Z");
        assert!(backup_id(earlier) < backup_id(later));
        let offset = earlier.to_offset(time::UtcOffset::from_hms(5, 30, 0).unwrap());
        assert_eq!(backup_id(offset), backup_id(earlier), "always UTC");
        assert_eq!(id_time("20251201T054418Z"), Some(1_764_567_858));
        assert_eq!(id_time("20251201T054418Z-2"), Some(1_764_567_858));
        assert_eq!(id_time("20251301T054418Z"), None, "no 13th month");
        assert_eq!(id_time("latest"), None);
    }

    #[test]
    fn a_record_round_trips_through_json() {
        let at = OffsetDateTime::from_unix_timestamp(1_764_567_858).unwrap();
        let record = BackupRecord::new(
            at,
            "cp-1",
            b"snapshot",
            SnapshotFacts {
                revision: 42,
                keys: Some(7),
                etcd_hash: 4_173_906_944,
                etcd_version: "3.5.21".to_string(),
            },
        );
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains("\"revision\":42"), "{json}");
        assert_eq!(serde_json::from_str::<BackupRecord>(&json).unwrap(), record);
        assert_eq!(record.size, 8);
        assert_eq!(record.verified_text(), "no");
    }
}
