//! etcd snapshots over SSH: which member to take one from (the leader: it has every
//! committed write), taking it with the member's own `etcdctl`, and proving a snapshot
//! restorable by restoring it into a scratch etcd on loopback ports of a control-plane host
//! (that host's etcd release, so the check uses the version a restore would).

use serde::Deserialize;

use crate::backup::record::sha256_hex;
use crate::backup::{BackupError, BackupRecord, SnapshotFacts, Verification, catalog};
use crate::bootstrap::etcd::{BACKUP_SPOOL, ETCDCTL, ETCDUTL, INSTALL_DIR};
use crate::ssh::{Session, shell_quote};
use crate::state::StateStore;

use super::connect::Connected;
use super::{HostsError, etcd};

/// Where a member writes a snapshot before rafter reads it (root only, removed after).
const WORK_DIR: &str = "/var/lib/rafter/etcd-backup";
/// Loopback ports of the scratch etcd a verification starts (one at a time per host: the
/// verification holds a lock on the host).
const SCRATCH_CLIENT_PORT: u16 = 12379;
const SCRATCH_PEER_PORT: u16 = 12380;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileStatus {
    hash: u64,
    revision: i64,
}

#[derive(Deserialize)]
struct Range {
    header: etcd::Header,
    #[serde(default)]
    count: u64,
}

/// The client URL of the member that leads, as a member on `session`'s host sees the
/// cluster, and the version it runs.
pub async fn leader(session: &Session) -> Result<(String, String), HostsError> {
    etcd::cluster_status(session)
        .await?
        .into_iter()
        .find(|status| status.status.leads())
        .map(|status| (status.endpoint, status.status.version))
        .ok_or_else(|| {
            HostsError::Etcd(format!(
                "{}: no member says it leads: etcd has no leader (no quorum?)",
                session.target().describe()
            ))
        })
}

/// A snapshot as taken, with what etcd says it holds.
pub struct Taken {
    pub bytes: Vec<u8>,
    pub facts: SnapshotFacts,
}

/// Takes a snapshot from the member on `session`'s host (running `version`).
pub async fn take(session: &Session, version: &str) -> Result<Taken, HostsError> {
    let dir = shell_quote(WORK_DIR);
    let file = format!("{dir}/snapshot.db");
    let result = async {
        let status = session
            .run_checked(
                "etcdctl snapshot save",
                &format!(
                    "set -e; umask 077; rm -rf {dir}; mkdir -p {dir}; \
                     {ETCDCTL} --command-timeout=10m snapshot save {file} >/dev/null; \
                     {ETCDUTL} snapshot status {file} -w json"
                ),
                b"",
            )
            .await?;
        let status: FileStatus =
            etcd::parse(session, "etcdutl snapshot status", &status.stdout_text())?;
        let bytes = session
            .run_checked("read the snapshot", &format!("cat {file}"), b"")
            .await?
            .stdout;
        // The live keys at the snapshot's revision, counted by the cluster itself: what a
        // restore of it must hold. A revision compacted meanwhile cannot be counted.
        let counted = session
            .run_as_root(
                &format!(
                    "{ETCDCTL} --command-timeout=30s get --from-key '' --keys-only --limit=1 --rev={} -w json",
                    status.revision
                ),
                b"",
            )
            .await?;
        let keys = match counted.success() {
            true => Some(
                etcd::parse::<Range>(session, "etcdctl get --count", &counted.stdout_text())?
                    .count,
            ),
            false => None,
        };
        Ok(Taken {
            bytes,
            facts: SnapshotFacts {
                revision: status.revision,
                keys,
                etcd_hash: status.hash,
                etcd_version: version.to_string(),
            },
        })
    }
    .await;
    // The snapshot holds every Secret of the cluster: it does not stay on the host.
    let _ = session.run_as_root(&format!("rm -rf {dir}"), b"").await;
    result
}

/// What pulling the backups members took on schedule found.
#[derive(Debug, Default)]
pub struct Pulled {
    /// Backups now in the state store.
    pub stored: Vec<String>,
    /// Backups of a revision the store already had, dropped.
    pub duplicates: Vec<String>,
    /// What could not be pulled, host by host: left on the host for the next pull.
    pub problems: Vec<String>,
}

/// Moves the backups each member's timer left on its host ([`BACKUP_SPOOL`]) into the state
/// store: a backup whose snapshot does not match its record stays on its host and is
/// reported; one of a revision the store has is dropped.
pub async fn pull(
    store: &impl StateStore,
    cluster: &str,
    hosts: &Connected,
) -> Result<Pulled, HostsError> {
    let mut pulled = Pulled::default();
    let mut revisions: std::collections::BTreeSet<i64> = catalog::list(store, cluster)
        .await?
        .backups
        .iter()
        .map(|backup| backup.facts.revision)
        .collect();
    let spool = shell_quote(BACKUP_SPOOL);
    for (entry, session) in hosts
        .sessions
        .iter()
        .filter(|(entry, _)| entry.is_control_plane())
    {
        let host = entry.name();
        let listed = session
            .run_checked(
                "list the backups waiting on the host",
                &format!(
                    "cd {spool} 2>/dev/null || exit 0; for dir in 2*/; do [ -f \"$dir/backup.json\" ] && printf '%s\\n' \"${{dir%/}}\"; done; true"
                ),
                b"",
            )
            .await?
            .stdout_text();
        for id in listed
            .lines()
            .filter(|id| !id.is_empty() && !id.contains('/'))
        {
            let dir = shell_quote(&format!("{BACKUP_SPOOL}/{id}"));
            match pull_one(store, cluster, session, id, &dir, &revisions).await {
                Ok(PullOne::Stored(revision)) => {
                    revisions.insert(revision);
                    pulled.stored.push(id.to_string());
                }
                Ok(PullOne::Duplicate) => pulled.duplicates.push(id.to_string()),
                Err(problem) => {
                    pulled
                        .problems
                        .push(format!("{host}: backup {id}: {problem}"));
                    continue;
                }
            }
            session
                .run_checked("remove a pulled backup", &format!("rm -rf {dir}"), b"")
                .await?;
        }
    }
    Ok(pulled)
}

enum PullOne {
    Stored(i64),
    Duplicate,
}

async fn pull_one(
    store: &impl StateStore,
    cluster: &str,
    session: &Session,
    id: &str,
    dir: &str,
    revisions: &std::collections::BTreeSet<i64>,
) -> Result<PullOne, String> {
    let read = |file: &'static str| async move {
        session
            .run_checked("read a waiting backup", &format!("cat {dir}/{file}"), b"")
            .await
            .map(|output| output.stdout)
            .map_err(|error| error.to_string())
    };
    let record: BackupRecord = serde_json::from_slice(&read("backup.json").await?)
        .map_err(|error| format!("its record cannot be read ({error})"))?;
    if record.id != id {
        return Err(format!("its record names backup {}", record.id));
    }
    if revisions.contains(&record.facts.revision) {
        return Ok(PullOne::Duplicate);
    }
    let snapshot = read("snapshot.db").await?;
    if snapshot.len() as u64 != record.size || sha256_hex(&snapshot) != record.sha256 {
        return Err("its snapshot does not match its record".to_string());
    }
    match catalog::save(store, cluster, &record, &snapshot).await {
        Ok(()) => Ok(PullOne::Stored(record.facts.revision)),
        Err(BackupError::Exists { .. }) => Ok(PullOne::Duplicate),
        Err(error) => Err(error.to_string()),
    }
}

/// Exit codes of the verification script, for what went wrong where.
const DAMAGED_IN_TRANSFER: u32 = 3;
const RESTORE_REFUSED: u32 = 4;
const NEVER_SERVED: u32 = 5;

/// Restores `snapshot` (the bytes of `record`) into a scratch etcd on `session`'s host and
/// compares what it serves with what the record says; the scratch member and its data are
/// removed afterwards, whatever happened.
pub async fn verify(
    session: &Session,
    record: &BackupRecord,
    snapshot: &[u8],
    verified_at: &str,
) -> Result<Verification, HostsError> {
    let client = format!("http://127.0.0.1:{SCRATCH_CLIENT_PORT}");
    let peer = format!("http://127.0.0.1:{SCRATCH_PEER_PORT}");
    let script = format!(
        r#"set -u; umask 077; mkdir -p /var/lib/rafter
exec 9>/var/lib/rafter/etcd-verify.lock; flock 9
work="$(mktemp -d /var/lib/rafter/etcd-verify.XXXXXX)"; pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi; rm -rf "$work"' EXIT
cat > "$work/snapshot.db"
echo "{sha}  $work/snapshot.db" | sha256sum -c --quiet >/dev/null 2>&1 || exit {DAMAGED_IN_TRANSFER}
if ! {ETCDUTL} snapshot restore "$work/snapshot.db" --data-dir "$work/data" --name verify \
    --initial-cluster verify={peer} --initial-advertise-peer-urls {peer} >"$work/restore.log" 2>&1; then
  tail -n 3 "$work/restore.log" >&2; exit {RESTORE_REFUSED}
fi
{INSTALL_DIR}/etcd --name verify --data-dir "$work/data" --listen-client-urls {client} \
  --advertise-client-urls {client} --listen-peer-urls {peer} --initial-advertise-peer-urls {peer} \
  --initial-cluster verify={peer} >"$work/etcd.log" 2>&1 &
pid=$!
i=0
until {INSTALL_DIR}/etcdctl --endpoints={client} --command-timeout=2s get --from-key '' --keys-only --limit=1 -w json >"$work/range.json" 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -ge 120 ] || ! kill -0 "$pid" 2>/dev/null; then tail -n 3 "$work/etcd.log" >&2; exit {NEVER_SERVED}; fi
  sleep 0.5
done
cat "$work/range.json""#,
        sha = record.sha256,
    );
    let output = session.run_as_root(&script, snapshot).await?;
    let host = session.target().name.clone();
    let problem = match output.status {
        Some(0) => {
            let range: Range = etcd::parse(session, "the scratch etcd", &output.stdout_text())?;
            compare(record, range.header.revision, range.count)
        }
        Some(DAMAGED_IN_TRANSFER) => Some("it arrived on the host damaged".to_string()),
        Some(RESTORE_REFUSED) => Some(format!(
            "etcdutl snapshot restore refused it: {}",
            last_line(&output.stderr_text())
        )),
        Some(NEVER_SERVED) => Some(format!(
            "the restored etcd never served: {}",
            last_line(&output.stderr_text())
        )),
        _ => {
            return Err(HostsError::Etcd(format!(
                "{}: the verification of backup {} failed: {}",
                session.target().describe(),
                record.id,
                last_line(&output.stderr_text())
            )));
        }
    };
    Ok(Verification {
        verified_at: verified_at.to_string(),
        on: host,
        problem,
    })
}

/// What differs between a restored store and the record of its snapshot.
fn compare(record: &BackupRecord, revision: i64, keys: u64) -> Option<String> {
    if revision != record.facts.revision {
        return Some(format!(
            "the restored store is at revision {revision}, the snapshot was taken at {}",
            record.facts.revision
        ));
    }
    match record.facts.keys {
        Some(expected) if expected != keys => Some(format!(
            "the restored store has {keys} keys, the cluster had {expected} at revision {revision}"
        )),
        _ => None,
    }
}

fn last_line(text: &str) -> String {
    text.trim()
        .lines()
        .last()
        .unwrap_or("(nothing said)")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(keys: Option<u64>) -> BackupRecord {
        BackupRecord::new(
            time::OffsetDateTime::UNIX_EPOCH,
            "cp-1",
            b"x",
            SnapshotFacts {
                revision: 10,
                keys,
                etcd_hash: 1,
                etcd_version: "3.5.1".to_string(),
            },
        )
    }

    #[test]
    fn a_restore_must_match_the_revision_and_the_keys_counted() {
        assert_eq!(compare(&record(Some(4)), 10, 4), None);
        assert!(
            compare(&record(Some(4)), 9, 4)
                .unwrap()
                .contains("revision 9")
        );
        assert!(compare(&record(Some(4)), 10, 3).unwrap().contains("3 keys"));
        assert_eq!(
            compare(&record(None), 10, 3),
            None,
            "uncounted keys are not compared"
        );
    }

    #[test]
    fn etcdctl_json_is_read_as_etcd_prints_it() {
        let printed = r#"[{"Endpoint":"https://10.0.0.1:2379","Status":{"header":{"cluster_id":14443903163313418560,"member_id":11417610130673999598,"revision":4,"raft_term":2},"version":"3.5.1","dbSize":28672,"leader":11417610130673999598,"raftIndex":7}}]"#;
        let statuses: Vec<etcd::EndpointStatus> = serde_json::from_str(printed).unwrap();
        assert!(statuses[0].status.leads());
        assert_eq!(statuses[0].status.raft_index, 7);
        assert_eq!(
            statuses[0].status.header.cluster_id,
            14_443_903_163_313_418_560
        );
        let range: Range =
            serde_json::from_str(r#"{"header":{"revision":4},"kvs":[],"more":true,"count":2}"#)
                .unwrap();
        assert_eq!((range.header.revision, range.count), (4, 2));
        let empty: Range = serde_json::from_str(r#"{"header":{"revision":1}}"#).unwrap();
        assert_eq!(empty.count, 0, "protobuf JSON leaves a zero count out");
        let status: FileStatus = serde_json::from_str(
            r#"{"hash":4173906944,"revision":4,"totalKey":9,"totalSize":28672}"#,
        )
        .unwrap();
        assert_eq!(status.revision, 4);
    }
}
