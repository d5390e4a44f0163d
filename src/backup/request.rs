//! A backup taken now on an AWS cluster (`rafter backup etcd`): rafter cannot reach the
//! members, so it asks them through the state store ([`layout::etcd_backup_request_key`]).
//! Each member's timer (`etcd-peers.sh backup`, every 30 s) runs its backup script once per
//! request; only the leading member takes the snapshot, and its record names the request, so
//! rafter knows the answer from a scheduled backup taken meanwhile.

use std::time::Duration;

use super::{BackupError, BackupRecord, catalog};
use crate::state::{StateStore, layout};

/// Asks the members for a backup under request `id` and waits (reading the catalog every
/// `poll`, at most `timeout`) for the record that answers it. The request is withdrawn
/// either way, so no member takes it late.
pub async fn take_on_members(
    store: &impl StateStore,
    cluster: &str,
    id: &str,
    poll: Duration,
    timeout: Duration,
) -> Result<BackupRecord, BackupError> {
    let key = layout::etcd_backup_request_key(cluster);
    store.write(&key, format!("{id}\n").as_bytes()).await?;
    let mut waited = Duration::ZERO;
    let answered = loop {
        let listed = catalog::list(store, cluster).await?;
        if let Some(backup) = answering(id, listed.backups) {
            break Ok(backup);
        }
        if waited >= timeout {
            break Err(BackupError::NotAnswered {
                request: id.to_string(),
                cluster: cluster.to_string(),
                waited_secs: waited.as_secs(),
            });
        }
        tokio::time::sleep(poll).await;
        waited += poll;
    };
    store.delete(&key).await?;
    answered
}

/// The backup that answers request `id`, among `backups`.
fn answering(id: &str, backups: Vec<BackupRecord>) -> Option<BackupRecord> {
    backups
        .into_iter()
        .find(|backup| backup.request.as_deref() == Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_backup_that_names_the_request_answers_it() {
        let record = |json: &str| -> BackupRecord { serde_json::from_str(json).unwrap() };
        let scheduled = record(
            r#"{"id":"20261203T100000Z","takenAt":"2026-12-03T10:00:00Z","takenAtUnix":1,"member":"a","size":1,"sha256":"00","revision":5,"keys":2,"etcdHash":1,"etcdVersion":"3.5.1","verification":null}"#,
        );
        let requested = record(
            r#"{"id":"20261203T100005Z","takenAt":"2026-12-03T10:00:05Z","takenAtUnix":2,"member":"a","size":1,"sha256":"00","revision":5,"keys":2,"etcdHash":1,"etcdVersion":"3.5.1","verification":null,"request":"20261203T100001Z"}"#,
        );
        assert_eq!(scheduled.request, None);
        assert_eq!(
            answering(
                "20261203T100001Z",
                vec![scheduled.clone(), requested.clone()]
            ),
            Some(requested)
        );
        assert_eq!(answering("20261203T100001Z", vec![scheduled]), None);
    }
}
