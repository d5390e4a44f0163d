//! What AWS control-plane members report about their etcd: every 30 s each member's
//! `etcd-peers.sh status` puts one JSON report in the state store
//! ([`layout::etcd_status_key`]). rafter cannot reach a private etcd, so these reports are
//! its evidence of etcd's health on AWS, for `validate cluster` and the gates of day-two
//! operations: [`read`] fetches them, [`judge`] (pure) says what is wrong.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Area, Report};
use crate::state::{StateError, StateStore, layout};

/// A report older than this is no evidence of the member's state now: the timer writes one
/// every 30 s, and instance clocks may differ from this machine's by a little.
pub const STALE_AFTER: time::Duration = time::Duration::seconds(180);
/// How far (in raft entries) a member's applied index may trail the furthest one reported.
/// Reports are taken up to 30 s apart, so a busy cluster's members differ by the writes of
/// that time; a member that is really behind (resyncing, partitioned) trails by far more.
pub const RAFT_LAG_ALLOWED: u64 = 10_000;
/// Certificates on a member's instance that expire sooner than this fail validation: time
/// enough to reissue them and roll the members.
pub const CERTIFICATES_DUE: time::Duration = time::Duration::days(30);

/// One member's report, as `etcd-peers.sh status` writes it. A field etcd did not give is
/// empty (or 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReport {
    pub member: String,
    /// The instance's hostname and id: which instance the member runs on now.
    pub host: String,
    #[serde(default)]
    pub instance: String,
    pub healthy: bool,
    #[serde(default)]
    pub member_id: String,
    #[serde(default)]
    pub cluster_id: String,
    #[serde(default)]
    pub leader: String,
    #[serde(default)]
    pub raft_index: u64,
    #[serde(default)]
    pub revision: u64,
    #[serde(default)]
    pub version: String,
    /// The started members the member lists, by name.
    #[serde(default)]
    pub members: Vec<String>,
    /// `etcdctl alarm list`, `;`-separated; empty when none.
    #[serde(default)]
    pub alarms: String,
    /// The SHA-256 of the node bundle the instance runs (empty before its first boot
    /// finished): compared with the one published, it says whether the instance is out of
    /// date.
    #[serde(default)]
    pub bundle: String,
    /// When the first of the node's leaf certificates expires (RFC 3339; empty when unknown).
    #[serde(default)]
    pub certificates_expire: String,
    /// The restore of etcd (`rafter restore etcd`) the member finished last, serving again
    /// (empty when none).
    #[serde(default)]
    pub restored: String,
    /// The problem that stopped the member's part of a restore, after the restore's id
    /// (empty when none).
    #[serde(default)]
    pub restore_problem: String,
    /// When it was taken (RFC 3339, UTC).
    pub at: String,
}

/// Each expected member with its report, if it wrote one that parses.
pub async fn read(
    store: &impl StateStore,
    cluster: &str,
    members: &[String],
) -> Result<Vec<(String, Option<MemberReport>)>, StateError> {
    let mut reports = Vec::with_capacity(members.len());
    for member in members {
        let report = store
            .read(&layout::etcd_status_key(cluster, member))
            .await?
            .and_then(|bytes| serde_json::from_slice::<MemberReport>(&bytes).ok());
        reports.push((member.clone(), report));
    }
    Ok(reports)
}

/// What is wrong with the members' etcd by their reports, as findings in `report` (a pass
/// when nothing is): a member that reported nothing, long ago, unhealthy, with alarms, with a
/// member list other than the spec's, in another cluster or following another leader than
/// the others, or far behind them.
pub fn judge(
    expected: &[String],
    reports: &[(String, Option<MemberReport>)],
    now: OffsetDateTime,
    report: &mut Report,
) {
    let findings_before = report.findings.len();
    let fresh: Vec<&MemberReport> = reports
        .iter()
        .filter_map(|(member, found)| {
            let Some(found) = found else {
                report.find(
                    Area::Etcd,
                    format!("member {member}"),
                    "has not reported its etcd",
                    "its instance reports every 30 s once booted: wait (`--wait`), or read its boot report",
                );
                return None;
            };
            let age = OffsetDateTime::parse(&found.at, &Rfc3339)
                .ok()
                .map(|at| now - at);
            match age {
                Some(age) if age <= STALE_AFTER => Some(found),
                _ => {
                    report.find(
                        Area::Etcd,
                        format!("member {member}"),
                        format!(
                            "last reported at {} (on {}): too long ago to tell its state",
                            found.at, found.host
                        ),
                        "its instance may be gone or cannot reach the state store: see its auto-scaling group and boot report",
                    );
                    None
                }
            }
        })
        .collect();
    let mut wanted: Vec<&str> = expected.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    let most_common = |values: Vec<&str>| -> Option<String> {
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for value in values.into_iter().filter(|value| !value.is_empty()) {
            *counts.entry(value).or_default() += 1;
        }
        counts
            .into_iter()
            .max_by_key(|(_, count)| *count)
            .map(|(value, _)| value.to_string())
    };
    let cluster_id = most_common(
        fresh
            .iter()
            .map(|found| found.cluster_id.as_str())
            .collect(),
    );
    let leader = most_common(fresh.iter().map(|found| found.leader.as_str()).collect());
    let furthest = fresh
        .iter()
        .map(|found| found.raft_index)
        .max()
        .unwrap_or(0);
    for found in &fresh {
        let subject = format!("member {} (on {})", found.member, found.host);
        if !found.healthy {
            report.find(
                Area::Etcd,
                &subject,
                "its etcd is not healthy",
                "on the instance: `journalctl -u etcd`",
            );
            continue;
        }
        if !found.alarms.trim_matches(';').is_empty() {
            report.find(
                Area::Etcd,
                &subject,
                format!("raises alarms: {}", found.alarms.trim_matches(';')),
                "NOSPACE: compact and defragment etcd, then `etcdctl alarm disarm`",
            );
        }
        let mut listed: Vec<&str> = found.members.iter().map(String::as_str).collect();
        listed.sort_unstable();
        if listed != wanted {
            report.find(
                Area::Etcd,
                &subject,
                format!(
                    "lists members [{}], the spec [{}]",
                    listed.join(", "),
                    wanted.join(", ")
                ),
                "a member still joining is listed once it started: wait (`--wait`)",
            );
        }
        if cluster_id
            .as_deref()
            .is_some_and(|id| id != found.cluster_id)
        {
            report.find(
                Area::Etcd,
                &subject,
                format!(
                    "is in etcd cluster {}, the others in {}",
                    found.cluster_id,
                    cluster_id.as_deref().unwrap_or_default()
                ),
                "a member that started a cluster of its own: restore it from a backup or remove its data",
            );
        }
        if leader.as_deref().is_some_and(|id| id != found.leader) {
            report.find(
                Area::Etcd,
                &subject,
                format!(
                    "follows leader {}, the others {}",
                    found.leader,
                    leader.as_deref().unwrap_or_default()
                ),
                "an election in progress: wait (`--wait`)",
            );
        }
        if furthest.saturating_sub(found.raft_index) > RAFT_LAG_ALLOWED {
            report.find(
                Area::Etcd,
                &subject,
                format!(
                    "is at raft index {}, {} behind the furthest member",
                    found.raft_index,
                    furthest - found.raft_index
                ),
                "a member catching up after a replacement: wait (`--wait`)",
            );
        }
    }
    if report.findings.len() == findings_before {
        report.pass(format!(
            "etcd: {} member(s) report healthy, one cluster, one leader, caught up",
            fresh.len()
        ));
    }
}

/// Adds a finding for each member whose instance runs certificates that expire within
/// [`CERTIFICATES_DUE`] of `now` (or have expired), with how to renew them. Not part of
/// [`judge`]: the gates of a roll that renews them must not wait for it.
pub fn judge_certificates(
    cluster: &str,
    reports: &[(String, Option<MemberReport>)],
    now: OffsetDateTime,
    report: &mut Report,
) {
    for (member, found) in reports {
        let Some(found) = found else { continue };
        let Ok(expires) = OffsetDateTime::parse(&found.certificates_expire, &Rfc3339) else {
            continue;
        };
        if expires - now < CERTIFICATES_DUE {
            report.find(
                Area::Etcd,
                format!("member {member}"),
                format!(
                    "the certificates on its instance {} expire at {}",
                    found.instance, found.certificates_expire
                ),
                format!(
                    "`rafter update cluster {cluster} --yes` reissues them, then `rafter rolling-update cluster {cluster} --yes` puts them on the instances"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-12-02T10:00:00Z";

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse(NOW, &Rfc3339).unwrap()
    }

    fn healthy(member: &str) -> MemberReport {
        MemberReport {
            member: member.to_string(),
            host: format!("ip-{member}"),
            instance: format!("i-{member}"),
            healthy: true,
            member_id: format!("id-{member}"),
            cluster_id: "c1".into(),
            leader: "id-a".into(),
            raft_index: 500,
            revision: 400,
            version: "3.5.21".into(),
            members: vec!["a".into(), "b".into(), "c".into()],
            alarms: String::new(),
            bundle: "b".repeat(64),
            certificates_expire: "2027-12-01T09:00:00Z".into(),
            restored: String::new(),
            restore_problem: String::new(),
            at: "2026-12-02T09:59:40Z".into(),
        }
    }

    type Reports = Vec<(String, Option<MemberReport>)>;
    type Change = dyn Fn(&mut Reports);

    fn expected() -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }

    /// The findings' (subject, problem) for the reports after `change` is applied to the
    /// healthy ones.
    fn findings(change: impl Fn(&mut Reports)) -> Vec<String> {
        let mut reports: Reports = expected()
            .into_iter()
            .map(|member| (member.clone(), Some(healthy(&member))))
            .collect();
        change(&mut reports);
        let mut report = Report::default();
        judge(&expected(), &reports, now(), &mut report);
        if report.findings.is_empty() {
            assert_eq!(report.passed.len(), 1, "{report:?}");
        }
        report
            .findings
            .iter()
            .map(|finding| format!("{}: {}", finding.subject, finding.problem))
            .collect()
    }

    fn report_of<'a>(
        reports: &'a mut [(String, Option<MemberReport>)],
        member: &str,
    ) -> &'a mut MemberReport {
        reports
            .iter_mut()
            .find(|(name, _)| name == member)
            .and_then(|(_, report)| report.as_mut())
            .unwrap()
    }

    #[test]
    fn certificates_due_within_thirty_days_are_named_with_the_way_to_renew_them() {
        let mut reports: Reports = expected()
            .into_iter()
            .map(|member| (member.clone(), Some(healthy(&member))))
            .collect();
        report_of(&mut reports, "b").certificates_expire = "2026-12-31T10:00:00Z".into();
        report_of(&mut reports, "c").certificates_expire = String::new();
        let mut report = Report::default();
        judge_certificates("c.example.com", &reports, now(), &mut report);
        assert_eq!(report.findings.len(), 1, "{report:?}");
        let finding = &report.findings[0];
        assert_eq!(finding.subject, "member b");
        assert!(finding.problem.contains("2026-12-31T10:00:00Z"));
        assert!(finding.fix.contains("rolling-update cluster c.example.com"));
        // A day later it is due.
        report_of(&mut reports, "a").certificates_expire = "2027-01-01T10:00:00Z".into();
        let mut later = Report::default();
        judge_certificates(
            "c.example.com",
            &reports,
            now() + time::Duration::days(1),
            &mut later,
        );
        assert_eq!(later.findings.len(), 2, "{later:?}");
        // The gates' judgement does not count them.
        assert!(
            findings(|reports| {
                report_of(reports, "b").certificates_expire = "2026-12-03T00:00:00Z".into();
            })
            .is_empty()
        );
    }

    #[test]
    fn three_fresh_healthy_members_in_one_cluster_pass() {
        assert!(findings(|_| {}).is_empty());
    }

    #[test]
    fn each_problem_is_named_on_its_member() {
        let table: Vec<(&str, Box<Change>, &str)> = vec![
            (
                "missing",
                Box::new(|r| r[1].1 = None),
                "member b: has not reported its etcd",
            ),
            (
                "stale",
                Box::new(|r| report_of(r, "b").at = "2026-12-02T09:50:00Z".into()),
                "member b: last reported at 2026-12-02T09:50:00Z (on ip-b): too long ago",
            ),
            (
                "unparsable time",
                Box::new(|r| report_of(r, "b").at = "yesterday".into()),
                "member b: last reported at yesterday",
            ),
            (
                "unhealthy",
                Box::new(|r| report_of(r, "c").healthy = false),
                "member c (on ip-c): its etcd is not healthy",
            ),
            (
                "alarm",
                Box::new(|r| report_of(r, "a").alarms = "memberID:1 alarm:NOSPACE;".into()),
                "member a (on ip-a): raises alarms: memberID:1 alarm:NOSPACE",
            ),
            (
                "member list",
                Box::new(|r| report_of(r, "a").members = vec!["a".into(), "c".into()]),
                "member a (on ip-a): lists members [a, c], the spec [a, b, c]",
            ),
            (
                "split brain",
                Box::new(|r| report_of(r, "c").cluster_id = "c2".into()),
                "member c (on ip-c): is in etcd cluster c2, the others in c1",
            ),
            (
                "leader",
                Box::new(|r| report_of(r, "b").leader = "id-b".into()),
                "member b (on ip-b): follows leader id-b, the others id-a",
            ),
        ];
        for (case, change, wanted) in table {
            let found = findings(change);
            assert_eq!(found.len(), 1, "{case}: {found:?}");
            assert!(found[0].starts_with(wanted), "{case}: {found:?}");
        }
    }

    #[test]
    fn a_member_far_behind_is_named_and_a_little_behind_is_not() {
        let behind = |lag: u64| {
            findings(move |reports| {
                report_of(reports, "a").raft_index = 50_000;
                report_of(reports, "b").raft_index = 50_000 - lag;
                report_of(reports, "c").raft_index = 49_990;
            })
        };
        assert!(behind(RAFT_LAG_ALLOWED).is_empty());
        let found = behind(RAFT_LAG_ALLOWED + 1);
        assert_eq!(
            found,
            [format!(
                "member b (on ip-b): is at raft index {}, {} behind the furthest member",
                50_000 - RAFT_LAG_ALLOWED - 1,
                RAFT_LAG_ALLOWED + 1
            )]
        );
    }

    #[test]
    fn reports_parse_as_the_node_script_writes_them() {
        let line = r#"{"member":"eu-west-1a","host":"ip-10-0-32-10","instance":"i-0abc","healthy":true,"member_id":"10276657743932975437","cluster_id":"14841639068965178418","leader":"10276657743932975437","raft_index":4,"revision":1,"version":"3.5.21","members":["eu-west-1a"],"alarms":"","at":"2026-12-02T09:59:40Z"}"#;
        let parsed: MemberReport = serde_json::from_str(line).unwrap();
        assert_eq!(parsed.member, "eu-west-1a");
        assert_eq!(parsed.raft_index, 4);
        assert_eq!(parsed.members, ["eu-west-1a"]);
    }
}
