//! `--yes` on AWS: take the cluster lock, plan against the recorded resources, apply with
//! progress, keep the lock's lease alive meanwhile, and end with a summary of what happened
//! and how many API calls each service took.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use rafter::apply::{self, ApplyOptions, ApplyReport, Recorder};
use rafter::aws::AwsProvisioner;
use rafter::bootstrap::ApiLoadBalancerNames;
use rafter::graph::ResourceGraph;
use rafter::plan::{Action, Plan, RecordedResource, Refreshed};
use rafter::state::{ClusterLock, ClusterStore, ResourceLedger, StateStore};

use rafter::spec::{Cluster, Provider};

use super::failure::{EXIT_FAILURE, EXIT_NOT_AVAILABLE, Failure};
use super::locked;
use super::progress::Progress;

/// How often a running apply renews its lock (well inside the lease).
const RENEW_EVERY: Duration = Duration::from_secs(60);

/// Plans against the records of what exists, given the recorded resources a refresh found
/// deleted outside rafter.
pub type Planner<'a> = dyn Fn(&[RecordedResource], &Refreshed) -> anyhow::Result<Plan> + 'a;

/// What to apply: the desired graph, and how to plan it against what is recorded.
pub struct ApplyRequest<'a> {
    pub cluster: &'a str,
    pub region: &'a str,
    /// `update cluster`, `delete cluster`, …: shown to anyone who finds the lock held.
    pub operation: &'a str,
    pub graph: &'a ResourceGraph,
    pub plan: &'a Planner<'a>,
    pub force_unlock: rafter::state::ForceUnlock,
    /// Look for recorded resources deleted or changed outside rafter first (see [`refresh`]).
    pub refresh: bool,
}

/// The AWS region to apply in; bare-host clusters cannot be applied here yet.
pub fn aws_region(cluster: &Cluster) -> anyhow::Result<&str> {
    if cluster.spec.provider != Provider::Aws {
        return Err(Failure::new(
            EXIT_NOT_AVAILABLE,
            "applying to bare hosts over SSH is not available in this build yet; nothing was changed",
        )
        .into());
    }
    cluster.spec.region.as_deref().ok_or_else(|| {
        Failure::new(EXIT_FAILURE, "the stored spec has no spec.region")
            .hint(
                "set spec.region (for example eu-west-1) with `rafter update cluster NAME -f FILE`",
            )
            .into()
    })
}

/// Refuses to build instances that could never fetch their node bundle: they read it from
/// the cluster's state store with their IAM role, so the store must be in S3.
pub fn require_state_in_s3(cluster: &Cluster) -> anyhow::Result<()> {
    let config_base = cluster.spec.config_base.as_deref().unwrap_or_default();
    if config_base.starts_with("s3://") {
        return Ok(());
    }
    let name = &cluster.metadata.name;
    Err(Failure::new(
        EXIT_FAILURE,
        format!(
            "cluster {name} keeps its state in {config_base}, which AWS instances cannot read: \
             each instance fetches its node bundle from the state store at first boot; nothing was created"
        ),
    )
    .hint(format!(
        "keep the state in an S3 bucket of the cluster's account: `--state s3://BUCKET/PREFIX` \
         (or RAFTER_STATE); `rafter create cluster {name} --dry-run` plans without one"
    ))
    .into())
}

pub async fn aws_config(region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .load()
        .await
}

/// A finished apply, with the lock still held so the caller can finish under it.
pub struct Applied<'a, S: StateStore> {
    pub report: ApplyReport,
    /// The records after the apply.
    pub records: Vec<RecordedResource>,
    pub lock: ClusterLock<'a, S>,
    /// What applied, for what comes after under the same lock.
    pub provisioner: AwsProvisioner,
}

/// Applies under the cluster lock, which it takes and hands back held.
pub async fn apply_with_lock<'a, S: StateStore>(
    store: &'a ClusterStore<S>,
    request: ApplyRequest<'_>,
) -> anyhow::Result<Applied<'a, S>> {
    let mut lock = super::acquire_lock(
        store.store(),
        request.cluster,
        request.operation,
        &request.force_unlock,
    )
    .await?;
    match apply_under_lock(store, &mut lock, &request).await {
        Ok((report, records, provisioner)) => Ok(Applied {
            report,
            records,
            lock,
            provisioner,
        }),
        Err(error) => {
            let _ = lock.release().await;
            Err(error)
        }
    }
}

/// Applies with the cluster `lock` held (and renewed meanwhile) by the caller: the report,
/// the records after it, and what applied.
pub async fn apply_under_lock<S: StateStore>(
    store: &ClusterStore<S>,
    lock: &mut ClusterLock<'_, S>,
    request: &ApplyRequest<'_>,
) -> anyhow::Result<(ApplyReport, Vec<RecordedResource>, AwsProvisioner)> {
    let (ledger, recorded, plan, provisioner) = prepare(store, request).await?;
    let operations = plan
        .changes
        .iter()
        .filter(|change| change.action != Action::Read)
        .count();
    let progress = Progress::new(operations);

    let walk = apply::apply(
        request.graph,
        &plan,
        &recorded,
        &provisioner,
        &ledger,
        &progress,
        ApplyOptions::default(),
    );
    let report = renewing(lock, walk).await;
    progress.clear();
    let report = report??;
    print_summary(&report, &provisioner);
    let records = ledger.resources().await;
    Ok((report, records, provisioner))
}

/// One step of a journalled operation that changes resources (an upgrade's, a membership
/// change's): its graph, applied without a refresh, then the node bundles.
pub struct StepApply<'a, 'c> {
    /// The spec the operation brings the cluster to.
    pub cluster: &'c Cluster,
    pub region: &'a str,
    pub operation: &'a str,
    pub graph: &'a ResourceGraph,
    /// The spec each bundle is rendered from (`cluster`, or an upgrade's staging).
    pub spec_of: &'a dyn Fn(&rafter::state::layout::BundleOwner<'_>) -> &'c Cluster,
    /// The command that continues the operation, for the hint of a failure.
    pub resume: &'a str,
}

/// Applies `step`'s graph under the held `lock`, fails naming every resource that failed,
/// and publishes the bundles: what was published.
pub async fn apply_step<S: StateStore>(
    store: &ClusterStore<S>,
    lock: &mut ClusterLock<'_, S>,
    step: &StepApply<'_, '_>,
) -> anyhow::Result<rafter::bootstrap::Published> {
    let name = step.cluster.metadata.name.as_str();
    let planner = |recorded: &[RecordedResource], refreshed: &Refreshed| {
        Ok(rafter::plan::diff_refreshed(
            name, step.graph, recorded, refreshed,
        )?)
    };
    let request = ApplyRequest {
        cluster: name,
        region: step.region,
        operation: step.operation,
        graph: step.graph,
        plan: &planner,
        force_unlock: rafter::state::ForceUnlock::Never,
        refresh: false,
    };
    let (report, records, _) = apply_under_lock(store, lock, &request).await?;
    if !report.succeeded() {
        return Err(Failure::new(
            EXIT_FAILURE,
            format!(
                "`{}` could not change the resources of cluster {name}:\n{}",
                step.operation,
                failed_lines(&report).join("\n")
            ),
        )
        .hint(format!(
            "what was done is recorded; fix the cause and run `{}` again: it continues from this step",
            step.resume
        ))
        .into());
    }
    let published = rafter::bootstrap::publish_staged_node_bundles(
        store.store(),
        step.cluster,
        step.spec_of,
        &ApiLoadBalancerNames::recorded(&records),
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    eprintln!(
        "      published {} node bundle(s) ({} unchanged)",
        published.written.len(),
        published.unchanged
    );
    Ok(published)
}

/// Under the lock: the record, refreshed (what vanished forgotten), the plan against it, and
/// a provisioner whose idempotency tokens follow the refreshed record.
async fn prepare<'a, S: StateStore>(
    store: &'a ClusterStore<S>,
    request: &ApplyRequest<'_>,
) -> anyhow::Result<(
    ResourceLedger<'a, S>,
    Vec<RecordedResource>,
    Plan,
    AwsProvisioner,
)> {
    let ledger = ResourceLedger::open(store, request.cluster).await?;
    let config = aws_config(request.region).await;
    let refreshed = match request.refresh {
        true => refresh(&config, request.cluster, &ledger.resources().await).await?,
        false => Refreshed::default(),
    };
    // Forgotten before the apply, so each is created again under a new idempotency token
    // (its old token would bring back the deleted one).
    for address in &refreshed.vanished {
        ledger.forget(address).await?;
    }
    let recorded = ledger.resources().await;
    // Planned again under the lock: what another run applied meanwhile counts.
    let plan = (request.plan)(&recorded, &refreshed)?;
    let provisioner =
        AwsProvisioner::new(&config, request.cluster).with_lineage(ledger.lineage().await);
    Ok((ledger, recorded, plan, provisioner))
}

/// What was deleted or changed outside rafter among the recorded resources, each said on
/// stderr.
pub async fn refresh(
    config: &aws_config::SdkConfig,
    cluster: &str,
    recorded: &[RecordedResource],
) -> anyhow::Result<Refreshed> {
    let reader = AwsProvisioner::new(config, cluster);
    let refreshed = rafter::aws::refresh::refresh(&reader.context, recorded)
        .await
        .map_err(|error| {
            Failure::new(
                EXIT_FAILURE,
                format!("cannot check which recorded resources of cluster {cluster} still exist: {error}"),
            )
            .hint("fix the cause, or plan against the record alone with --refresh=false")
        })?;
    for address in &refreshed.vanished {
        eprintln!("note: {address} was deleted outside rafter; it will be created again");
    }
    for (address, changed) in &refreshed.changed {
        let names: Vec<&str> = changed.iter().map(|(name, _)| name.as_str()).collect();
        eprintln!(
            "note: {address} was changed outside rafter ({}); the plan changes it back",
            names.join(", ")
        );
    }
    Ok(refreshed)
}

/// Runs `work` while renewing `lock`'s lease. A lock broken meanwhile means another run may
/// be applying: the work stops at once (what is done is recorded; a rerun converges).
pub async fn renewing<T, S: StateStore>(
    lock: &mut ClusterLock<'_, S>,
    work: impl Future<Output = T>,
) -> anyhow::Result<T> {
    tokio::pin!(work);
    let mut renew = tokio::time::interval(RENEW_EVERY);
    renew.tick().await;
    loop {
        tokio::select! {
            done = &mut work => return Ok(done),
            _ = renew.tick() => lock.renew().await.map_err(locked)?,
        }
    }
}

fn print_summary(report: &ApplyReport, provisioner: &AwsProvisioner) {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for (_, action) in report
        .done
        .iter()
        .filter(|(_, action)| *action != Action::Read)
    {
        *counts.entry(action.verb()).or_default() += 1;
    }
    let done: Vec<String> = counts
        .iter()
        .map(|(verb, count)| format!("{count} {verb}"))
        .collect();
    eprintln!(
        "\nDone: {}; {} failed, {} skipped, {} retries.",
        if done.is_empty() {
            "nothing to do".to_string()
        } else {
            done.join(", ")
        },
        report.failed.len(),
        report.skipped.len(),
        report.retries
    );
    let calls: Vec<String> = provisioner
        .calls()
        .snapshot()
        .iter()
        .map(|(service, count)| {
            format!(
                "{service} {} ({} mutating)",
                count.reads + count.writes,
                count.writes
            )
        })
        .collect();
    if !calls.is_empty() {
        eprintln!("AWS API calls: {}.", calls.join(", "));
    }
}

/// How long `finish` waits, after a successful apply.
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    /// For every group's instances to be in service.
    pub capacity: Duration,
    /// Then for the control-plane members to report a healthy etcd (a `create`).
    pub etcd: Duration,
}

/// Publishes the node groups' bundles (once the apply succeeded: the API's address is known
/// then), waits for the groups' instances and then for the members' etcd ([`Waits`]),
/// releases the lock, then turns a failed apply, a group short of instances or an unhealthy
/// control plane into a failure.
pub async fn finish<S: StateStore>(
    store: &ClusterStore<S>,
    mut applied: Applied<'_, S>,
    spec: &rafter::spec::Cluster,
    verb: &str,
    waits: Waits,
) -> anyhow::Result<()> {
    let cluster = spec.metadata.name.as_str();
    if applied.report.succeeded() {
        let published = rafter::bootstrap::publish_node_bundles(
            store.store(),
            spec,
            &ApiLoadBalancerNames::recorded(&applied.records),
            time::OffsetDateTime::now_utc(),
        )
        .await?;
        eprintln!(
            "Published {} node bundle(s) for the instances' first boot ({} unchanged); control-plane members {}.",
            published.written.len(),
            published.unchanged,
            if published.etcd_formed {
                "without data join the running etcd cluster"
            } else {
                "form a new etcd cluster"
            }
        );
        // Backups the members put are pruned here: they may add backups, never delete them.
        if let Err(error) = super::etcd_hosts::apply_retention(store.store(), cluster).await {
            eprintln!("warning: etcd backup retention was not applied: {error:#}");
        }
    }
    let waited = if applied.report.succeeded() {
        let in_service = super::aws_capacity::wait_for_instances(
            &applied.provisioner,
            &applied.records,
            waits.capacity,
            &mut applied.lock,
        )
        .await;
        match in_service {
            Ok(()) => {
                super::aws_capacity::wait_for_members(
                    store.store(),
                    cluster,
                    &rafter::rolling::members(spec),
                    waits.etcd,
                    &mut applied.lock,
                )
                .await
            }
            other => other,
        }
    } else {
        Ok(())
    };
    applied.lock.release().await.map_err(locked)?;
    failure_of(&applied.report, cluster, verb).map_or(waited, Err)
}

/// A failed apply as a failure naming every resource and AWS error code.
pub fn failure_of(report: &ApplyReport, cluster: &str, verb: &str) -> Option<anyhow::Error> {
    if report.succeeded() {
        return None;
    }
    Some(
        Failure::new(
            EXIT_FAILURE,
            format!(
                "{verb} cluster {cluster} did not finish:\n{}",
                failed_lines(report).join("\n")
            ),
        )
        .hint(format!(
            "what was done is recorded; fix the cause and run `rafter update cluster {cluster} --yes` again to converge"
        ))
        .into(),
    )
}

/// Each failed or skipped resource of `report` (and a failed state write), a line each.
pub fn failed_lines(report: &ApplyReport) -> Vec<String> {
    let mut lines = Vec::new();
    for (address, error) in &report.failed {
        lines.push(format!("  {address}: {error}"));
    }
    for (address, cause) in &report.skipped {
        lines.push(format!("  {address}: skipped (depends on {cause})"));
    }
    if let Some(error) = &report.state_error {
        lines.push(format!("  state: {error}"));
    }
    lines
}
