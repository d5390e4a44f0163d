//! Whether AWS can launch the cluster's instances: before `--yes` applies, every group's
//! instance type must be offered in each of its zones; after, `create`/`update` wait (under
//! the lock, with progress and a deadline) until every group has its instances in service,
//! and otherwise fail naming each group that is short and why its last launch failed. A
//! `create` then waits until the control-plane members report a healthy etcd, judged as
//! `validate cluster` judges it.

use std::sync::Mutex;
use std::time::Duration;

use rafter::aws::AwsProvisioner;
use rafter::aws::capacity::{self, CapacityError, CapacityWait, GroupCapacity};
use rafter::graph::{ResourceGraph, ResourceKind};
use rafter::model::placements::placements;
use rafter::plan::RecordedResource;
use rafter::state::{ClusterLock, StateStore};
use rafter::validate::{Report, member_reports};

use super::aws_apply::{aws_config, renewing};
use super::failure::{EXIT_FAILURE, EXIT_INVALID_SPEC, EXIT_UNHEALTHY, Failure};

/// How often the wait looks at the groups.
const LOOK_EVERY: Duration = Duration::from_secs(10);

/// Refuses a spec whose groups ask for an instance type a zone does not offer. A check that
/// cannot be made (no permission to describe offerings) is only a warning: the apply itself
/// would then say so.
pub async fn check_offerings(
    cluster: &str,
    region: &str,
    graph: &ResourceGraph,
) -> anyhow::Result<()> {
    let provisioner = AwsProvisioner::new(&aws_config(region).await, cluster);
    match capacity::unoffered(&provisioner.context, &placements(graph)).await {
        Ok(missing) if missing.is_empty() => Ok(()),
        Ok(missing) => Err(Failure::new(
            EXIT_INVALID_SPEC,
            format!(
                "AWS cannot launch these groups' instances in {region}:\n{}",
                missing
                    .iter()
                    .map(|unoffered| format!("  {unoffered}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        )
        .hint(
            "pick an instance type offered in every zone of the group, or leave those zones out \
             (spec.networking.zones, or the node group's zones); nothing was changed",
        )
        .into()),
        Err(error) => {
            eprintln!(
                "warning: could not check which zones offer the instance types ({error}); applying anyway"
            );
            Ok(())
        }
    }
}

/// Waits up to `deadline` (zero: not at all) for every recorded group to have its desired
/// instances in service, renewing `lock` meanwhile.
pub async fn wait_for_instances<S: StateStore>(
    provisioner: &AwsProvisioner,
    records: &[RecordedResource],
    deadline: Duration,
    lock: &mut ClusterLock<'_, S>,
) -> anyhow::Result<()> {
    let groups: Vec<String> = records
        .iter()
        .filter(|record| record.address.kind == ResourceKind::AutoscalingGroup)
        .filter_map(|record| record.outputs.get("name").cloned())
        .collect();
    if groups.is_empty() || deadline.is_zero() {
        return Ok(());
    }
    eprintln!(
        "Waiting up to {}s for {} group(s) to have their instances in service…",
        deadline.as_secs(),
        groups.len()
    );
    let last_said = Mutex::new(String::new());
    let progress = |capacities: &[GroupCapacity]| {
        let line = capacities
            .iter()
            .map(|capacity| {
                format!(
                    "{} {}/{}",
                    capacity.group, capacity.in_service, capacity.desired
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(mut last) = last_said.lock()
            && *last != line
        {
            eprintln!("  in service: {line}");
            *last = line;
        }
    };
    let wait = CapacityWait {
        deadline,
        pause: LOOK_EVERY.min(deadline),
    };
    let waited = renewing(
        lock,
        capacity::wait_for_capacity(&provisioner.context, &groups, wait, progress),
    )
    .await?;
    match waited {
        Ok(()) => {
            eprintln!("Every group has its instances in service.");
            Ok(())
        }
        Err(error @ CapacityError::Short { .. }) => Err(Failure::new(
            EXIT_FAILURE,
            error.to_string(),
        )
        .hint(
            "the cloud resources are in place; AWS has not launched every instance. Fix the \
                 cause above (another instance type or zone, a quota), then run `rafter update \
                 cluster NAME --yes` again, or wait longer with --capacity-timeout",
        )
        .into()),
        Err(error) => Err(Failure::new(EXIT_FAILURE, error.to_string()).into()),
    }
}

/// Waits up to `deadline` (zero: not at all) until every control-plane member of `cluster`
/// reports a healthy etcd in one cluster ([`member_reports::judge`], as `validate cluster`),
/// renewing `lock` meanwhile; otherwise fails (exit 7) listing what is still wrong.
pub async fn wait_for_members<S: StateStore>(
    store: &S,
    cluster: &str,
    members: &[String],
    deadline: Duration,
    lock: &mut ClusterLock<'_, S>,
) -> anyhow::Result<()> {
    if members.is_empty() || deadline.is_zero() {
        return Ok(());
    }
    eprintln!(
        "Waiting up to {}s for the {} control-plane member(s) to report a healthy etcd…",
        deadline.as_secs(),
        members.len()
    );
    let judged = renewing(lock, async {
        let started = std::time::Instant::now();
        let mut last_said = String::new();
        loop {
            let reports = member_reports::read(store, cluster, members).await?;
            let mut report = Report::default();
            member_reports::judge(
                members,
                &reports,
                time::OffsetDateTime::now_utc(),
                &mut report,
            );
            let said = report
                .findings
                .iter()
                .map(|finding| format!("  {}: {}", finding.subject, finding.problem))
                .collect::<Vec<_>>()
                .join("\n");
            if report.healthy() || started.elapsed() >= deadline {
                return anyhow::Ok(report.healthy().then_some(()).ok_or(said));
            }
            if said != last_said {
                eprintln!("{said}");
                last_said = said;
            }
            tokio::time::sleep(LOOK_EVERY.min(deadline)).await;
        }
    })
    .await??;
    match judged {
        Ok(()) => {
            eprintln!("Every control-plane member reports a healthy etcd.");
            Ok(())
        }
        Err(findings) => Err(Failure::new(
            EXIT_UNHEALTHY,
            format!(
                "the control plane of {cluster} is not healthy after {}s:\n{findings}",
                deadline.as_secs()
            ),
        )
        .hint(format!(
            "the cloud resources are in place; `rafter validate cluster {cluster} --wait 10m` waits longer and says what to do about each problem"
        ))
        .into()),
    }
}
