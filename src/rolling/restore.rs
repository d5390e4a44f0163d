//! Restoring an AWS cluster's etcd from one backup. rafter cannot reach the members (private
//! instances, no SSH), so it stages the restore in the state store and each member carries it
//! out itself (`etcd-peers.sh restore`, run by the member's timer every 30 s; a member still
//! waiting to join at boot restores too), as kops' etcd-manager takes restore commands from
//! its state store. The procedure on a member is etcd's disaster recovery
//! (<https://etcd.io/docs/v3.5/op-guide/recovery/>): its API server stopped, etcd stopped, its
//! data moved aside (kept on its volume), every member restored from the **same** snapshot
//! into one new cluster (one token; revisions bumped and old ones marked compacted where the
//! member's etcd can), etcd started, the API server back once the member is healthy.
//!
//! rafter's side, journalled step by step like the bare-host restore
//! ([`crate::hosts::restore`]) so a rerun finishes an interrupted one:
//! 1. **stage**: a copy of the snapshot where the members may read it, then the request
//!    (last, so no member sees a request whose snapshot is missing). The members never read
//!    the backups themselves ([`crate::state::layout::NodeGrant::control_plane`]).
//! 2. **members-restored**: every member reports this restore finished (or the first problem
//!    a member reports stops it, naming the member).
//! 3. **etcd-healthy**: the members' reports judged as `validate cluster` judges them, every
//!    one from the restored cluster.
//! 4. **clear**: the request and every staged snapshot (each holds every Secret of the
//!    cluster) deleted.

use std::time::Duration;

use time::OffsetDateTime;

use crate::backup::BackupRecord;
use crate::bootstrap::etcd::EtcdMember;
use crate::state::{StateError, StateStore, layout};
use crate::validate::member_reports::{self, MemberReport};
use crate::validate::{Area, Report};

#[derive(Debug, thiserror::Error)]
pub enum AwsRestoreError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cluster {cluster} has no control-plane member to restore")]
    NoMembers { cluster: String },
    #[error("member {member} could not restore: {problem}")]
    MemberFailed { member: String, problem: String },
    #[error("{what} within {waited:?}: {waiting}")]
    TimedOut {
        what: &'static str,
        waited: Duration,
        waiting: String,
    },
}

/// One step of an AWS restore, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Stage,
    MembersRestored,
    Healthy,
    Clear,
}

impl Step {
    pub const ALL: [Step; 4] = [
        Step::Stage,
        Step::MembersRestored,
        Step::Healthy,
        Step::Clear,
    ];

    /// The step's name in the journal.
    pub fn key(self) -> &'static str {
        match self {
            Step::Stage => "stage",
            Step::MembersRestored => "members-restored",
            Step::Healthy => "etcd-healthy",
            Step::Clear => "clear",
        }
    }

    /// The step named `key`.
    pub fn named(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|step| step.key() == key)
    }

    /// What the step does, for the plan.
    pub fn describe(self) -> &'static str {
        match self {
            Step::Stage => {
                "put a copy of the snapshot where the members may read it, then the restore request"
            }
            Step::MembersRestored => {
                "every member (its timer, within 30 s): move the control-plane manifests aside, stop etcd, move its data aside on its volume (kept), restore the snapshot as a member of one new cluster, start etcd; gate: every member reports it restored"
            }
            Step::Healthy => {
                "gate: every member reports healthy in the restored cluster, the members the spec names, one leader; each member puts its manifests back once healthy"
            }
            Step::Clear => "delete the request and every staged snapshot from the state store",
        }
    }
}

/// What the members read: `NAME=VALUE` lines, each checked by the script before use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// This restore's id: names the data moved aside and the members' markers.
    pub id: String,
    /// The backup restored.
    pub backup: String,
    /// The staged snapshot's name in the restore directory.
    pub snapshot: String,
    pub sha256: String,
    /// The new cluster's token: the same on every member, so they form one cluster.
    pub token: String,
    /// Every member and its peer URL, as the members' etcd units advertise them.
    pub initial_cluster: String,
    /// How far revisions jump, on members whose etcd can bump them.
    pub bump: u64,
}

impl Request {
    pub fn new(cluster: &str, id: &str, backup: &BackupRecord, members: &[EtcdMember]) -> Self {
        let staged = layout::etcd_restore_snapshot_key(cluster, id);
        Self {
            id: id.to_string(),
            backup: backup.id.clone(),
            snapshot: staged.rsplit('/').next().unwrap_or(&staged).to_string(),
            sha256: backup.sha256.clone(),
            token: format!("{cluster}-restore-{id}"),
            initial_cluster: members
                .iter()
                .map(|member| format!("{}={}", member.name, member.peer_url()))
                .collect::<Vec<_>>()
                .join(","),
            bump: crate::backup::REVISION_BUMP,
        }
    }

    pub fn render(&self) -> String {
        format!(
            "# A restore of etcd for the control-plane members (rafter restore etcd).\nid={}\nbackup={}\nsnapshot={}\nsha256={}\ntoken={}\ninitial_cluster={}\nbump={}\n",
            self.id,
            self.backup,
            self.snapshot,
            self.sha256,
            self.token,
            self.initial_cluster,
            self.bump
        )
    }
}

/// Where the members are with restore `id`, from their reports.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub restored: Vec<String>,
    /// Members not done yet, with what their reports say.
    pub waiting: Vec<(String, String)>,
    /// The first member that reports a problem with this restore, and the problem.
    pub failed: Option<(String, String)>,
}

/// Judges the members' progress with restore `id` (pure).
pub fn progress(id: &str, reports: &[(String, Option<MemberReport>)]) -> Progress {
    let mut progress = Progress::default();
    for (member, found) in reports {
        let Some(found) = found else {
            progress
                .waiting
                .push((member.clone(), "no report yet".to_string()));
            continue;
        };
        if found.restored == id {
            progress.restored.push(member.clone());
            continue;
        }
        if let Some(problem) = found
            .restore_problem
            .strip_prefix(id)
            .and_then(|rest| rest.strip_prefix(' '))
        {
            if progress.failed.is_none() {
                progress.failed = Some((member.clone(), problem.trim().to_string()));
            }
            continue;
        }
        progress.waiting.push((
            member.clone(),
            format!("not restored yet (last report at {})", found.at),
        ));
    }
    progress
}

/// Judges the restored cluster's health from `reports` (pure): the checks of `validate
/// cluster`, and every report from a member that finished restore `id`.
pub fn judge_restored(
    id: &str,
    members: &[String],
    reports: &[(String, Option<MemberReport>)],
    now: OffsetDateTime,
) -> Report {
    let mut report = Report::default();
    member_reports::judge(members, reports, now, &mut report);
    for (member, found) in reports {
        if let Some(found) = found
            && found.restored != id
        {
            report.find(
                Area::Etcd,
                format!("member {member}"),
                format!("has not finished restore {id}"),
                "its timer carries it out within 30 s: wait",
            );
        }
    }
    report
}

/// How often rafter reads the members' reports, and how long a gate waits.
#[derive(Debug, Clone, Copy)]
pub struct Waiting {
    pub poll: Duration,
    pub timeout: Duration,
}

/// A restore of an AWS cluster under way.
pub struct AwsRestore<'a, S> {
    pub store: &'a S,
    pub cluster: &'a str,
    pub members: &'a [EtcdMember],
    pub backup: &'a BackupRecord,
    /// The backup's snapshot, already checked against its record.
    pub snapshot: &'a [u8],
    /// The journal's id.
    pub id: &'a str,
    pub waiting: Waiting,
}

impl<S: StateStore> AwsRestore<'_, S> {
    fn member_names(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|member| member.name.clone())
            .collect()
    }

    /// Runs one step; what it did, for the operator.
    pub async fn run(&self, step: Step) -> Result<String, AwsRestoreError> {
        match step {
            Step::Stage => self.stage().await,
            Step::MembersRestored => self.members_restored().await,
            Step::Healthy => self.healthy().await,
            Step::Clear => self.clear().await,
        }
    }

    async fn stage(&self) -> Result<String, AwsRestoreError> {
        if self.members.is_empty() {
            return Err(AwsRestoreError::NoMembers {
                cluster: self.cluster.to_string(),
            });
        }
        let request = Request::new(self.cluster, self.id, self.backup, self.members);
        self.store
            .write(
                &layout::etcd_restore_snapshot_key(self.cluster, self.id),
                self.snapshot,
            )
            .await?;
        self.store
            .write(
                &layout::etcd_restore_request_key(self.cluster),
                request.render().as_bytes(),
            )
            .await?;
        Ok(format!(
            "staged restore {} of backup {} for {} member(s)",
            self.id,
            self.backup.id,
            self.members.len()
        ))
    }

    async fn members_restored(&self) -> Result<String, AwsRestoreError> {
        let names = self.member_names();
        let mut waited = Duration::ZERO;
        loop {
            let reports = member_reports::read(self.store, self.cluster, &names).await?;
            let progress = progress(self.id, &reports);
            if let Some((member, problem)) = progress.failed {
                return Err(AwsRestoreError::MemberFailed { member, problem });
            }
            if progress.waiting.is_empty() {
                return Ok(format!(
                    "every member restored: {}",
                    progress.restored.join(", ")
                ));
            }
            if waited >= self.waiting.timeout {
                return Err(AwsRestoreError::TimedOut {
                    what: "not every member restored",
                    waited,
                    waiting: progress
                        .waiting
                        .iter()
                        .map(|(member, why)| format!("{member}: {why}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                });
            }
            tokio::time::sleep(self.waiting.poll).await;
            waited += self.waiting.poll;
        }
    }

    async fn healthy(&self) -> Result<String, AwsRestoreError> {
        let names = self.member_names();
        let mut waited = Duration::ZERO;
        loop {
            let reports = member_reports::read(self.store, self.cluster, &names).await?;
            let judged = judge_restored(self.id, &names, &reports, OffsetDateTime::now_utc());
            if judged.healthy() {
                let revision = reports
                    .iter()
                    .filter_map(|(_, found)| found.as_ref().map(|found| found.revision))
                    .max()
                    .unwrap_or_default();
                return Ok(format!(
                    "etcd: {} member(s) healthy in the restored cluster, at revision {revision}",
                    names.len()
                ));
            }
            if waited >= self.waiting.timeout {
                return Err(AwsRestoreError::TimedOut {
                    what: "the restored cluster is not healthy",
                    waited,
                    waiting: judged
                        .findings
                        .iter()
                        .map(|finding| format!("{}: {}", finding.subject, finding.problem))
                        .collect::<Vec<_>>()
                        .join("; "),
                });
            }
            tokio::time::sleep(self.waiting.poll).await;
            waited += self.waiting.poll;
        }
    }

    /// Deletes the request and every staged snapshot (one an abandoned restore left too: each
    /// holds every Secret of the cluster).
    async fn clear(&self) -> Result<String, AwsRestoreError> {
        self.store
            .delete_prefix(&layout::etcd_restore_prefix(self.cluster))
            .await?;
        Ok("the request and every staged snapshot are deleted".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(member: &str, restored: &str, problem: &str) -> MemberReport {
        MemberReport {
            member: member.to_string(),
            host: format!("ip-{member}"),
            instance: String::new(),
            healthy: true,
            member_id: format!("id-{member}"),
            cluster_id: "c2".to_string(),
            leader: "id-a".to_string(),
            raft_index: 10,
            revision: 42,
            version: "3.5.21".to_string(),
            members: vec!["a".to_string(), "b".to_string(), "c".to_string()],
            alarms: String::new(),
            bundle: String::new(),
            certificates_expire: String::new(),
            restored: restored.to_string(),
            restore_problem: problem.to_string(),
            at: crate::backup::record::rfc3339(OffsetDateTime::now_utc()),
        }
    }

    fn members() -> Vec<EtcdMember> {
        ["a", "b", "c"]
            .iter()
            .map(|name| EtcdMember::at_dns(name, &format!("etcd-{name}.internal.c.example.com")))
            .collect()
    }

    #[test]
    fn the_request_names_one_token_every_member_and_the_staged_snapshot() {
        let backup: BackupRecord = serde_json::from_value(serde_json::json!({
            "id": "20261203T101500Z", "takenAt": "2026-12-03T10:15:00Z", "takenAtUnix": 1,
            "member": "a", "size": 3, "sha256": "ab".repeat(32), "revision": 7, "keys": 2,
            "etcdHash": 1, "etcdVersion": "3.5.21", "verification": null
        }))
        .unwrap();
        let request = Request::new("c.example.com", "20261203T120000Z", &backup, &members());
        assert_eq!(
            request.render(),
            format!(
                "# A restore of etcd for the control-plane members (rafter restore etcd).\nid=20261203T120000Z\nbackup=20261203T101500Z\nsnapshot=20261203T120000Z.db\nsha256={}\ntoken=c.example.com-restore-20261203T120000Z\ninitial_cluster=a=https://etcd-a.internal.c.example.com:2380,b=https://etcd-b.internal.c.example.com:2380,c=https://etcd-c.internal.c.example.com:2380\nbump=1000000000\n",
                "ab".repeat(32)
            )
        );
        // The name the members fetch is the key rafter stages.
        assert_eq!(
            layout::etcd_restore_snapshot_key("c.example.com", "20261203T120000Z"),
            format!("c.example.com/etcd-restore/{}", request.snapshot)
        );
    }

    #[test]
    fn progress_waits_for_every_member_and_names_the_first_that_failed() {
        let id = "20261203T120000Z";
        let reports = vec![
            ("a".to_string(), Some(report("a", id, ""))),
            ("b".to_string(), Some(report("b", "20250101T000000Z", ""))),
            ("c".to_string(), None),
        ];
        let seen = progress(id, &reports);
        assert_eq!(seen.restored, ["a"]);
        assert_eq!(
            seen.waiting
                .iter()
                .map(|(m, _)| m.as_str())
                .collect::<Vec<_>>(),
            ["b", "c"]
        );
        assert!(seen.failed.is_none());

        // A problem with an earlier restore is not this one's.
        let reports = vec![
            (
                "a".to_string(),
                Some(report("a", "", "20250101T000000Z old trouble")),
            ),
            (
                "b".to_string(),
                Some(report(
                    "b",
                    "",
                    &format!("{id} the staged snapshot is not the backup's"),
                )),
            ),
        ];
        let seen = progress(id, &reports);
        assert_eq!(
            seen.failed,
            Some((
                "b".to_string(),
                "the staged snapshot is not the backup's".to_string()
            ))
        );
        assert_eq!(seen.waiting.len(), 1);

        let all: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|m| (m.to_string(), Some(report(m, id, ""))))
            .collect();
        let seen = progress(id, &all);
        assert!(seen.waiting.is_empty() && seen.failed.is_none());
    }

    #[test]
    fn the_restored_cluster_is_healthy_only_when_every_report_comes_from_it() {
        let id = "20261203T120000Z";
        let names: Vec<String> = ["a", "b", "c"].iter().map(|m| m.to_string()).collect();
        let all: Vec<_> = names
            .iter()
            .map(|m| (m.clone(), Some(report(m, id, ""))))
            .collect();
        let now = OffsetDateTime::now_utc();
        assert!(judge_restored(id, &names, &all, now).healthy());

        let mut behind = all.clone();
        behind[2].1 = Some(report("c", "", ""));
        let judged = judge_restored(id, &names, &behind, now);
        assert!(!judged.healthy());
        assert!(
            judged
                .findings
                .iter()
                .any(|finding| finding.subject == "member c"),
            "{:?}",
            judged.findings
        );

        let mut sick = all;
        if let Some(found) = sick[1].1.as_mut() {
            found.healthy = false;
        }
        assert!(!judge_restored(id, &names, &sick, now).healthy());
    }

    #[test]
    fn steps_are_named_in_order() {
        let keys: Vec<_> = Step::ALL.iter().map(|step| step.key()).collect();
        assert_eq!(keys, ["stage", "members-restored", "etcd-healthy", "clear"]);
        for step in Step::ALL {
            assert_eq!(Step::named(step.key()), Some(step));
        }
    }
}
