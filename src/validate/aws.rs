//! Validating an AWS cluster from what AWS and the nodes say: every recorded auto-scaling
//! group has its desired instances in service; every target behind the API load balancer is
//! healthy; every instance in service reported that its boot finished (the report
//! `rafter-first-boot` writes to the state store); and the control plane recorded that etcd
//! formed; and etcd's own health, from the reports each member puts in the state store
//! ([`member_reports`]): its members are reached through the state store, not SSH.

use serde::Deserialize;
use time::OffsetDateTime;

use crate::apply::ProvisionError;
use crate::aws::{Context, capacity, compute, health};
use crate::graph::ResourceKind;
use crate::plan::RecordedResource;
use crate::spec::Cluster;
use crate::state::{StateError, StateStore, layout};

use super::kubernetes::Expected;
use super::{Area, Report, member_reports};
use crate::model::compute::{ControlPlaneSlot, control_plane_slots};

#[derive(Debug, thiserror::Error)]
pub enum AwsValidateError {
    #[error("cannot ask AWS: {0}")]
    Aws(#[from] ProvisionError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// A boot report, as `rafter-first-boot` writes it.
#[derive(Debug, Deserialize)]
struct BootReport {
    host: String,
    state: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    at: String,
}

/// The report, and the nodes the cluster's instances in service should register as.
pub async fn validate(
    context: &Context,
    store: &impl StateStore,
    cluster: &Cluster,
    recorded: &[RecordedResource],
) -> Result<(Report, Expected), AwsValidateError> {
    let name = &cluster.metadata.name;
    let mut report = Report::default();
    let outputs = |kind: ResourceKind, output: &str| -> Vec<String> {
        recorded
            .iter()
            .filter(|record| record.address.kind == kind)
            .filter_map(|record| record.outputs.get(output).cloned())
            .collect()
    };
    let groups = outputs(ResourceKind::AutoscalingGroup, "name");
    if groups.is_empty() {
        report.find(
            Area::Infrastructure,
            name,
            "has no auto-scaling groups recorded: it was never applied",
            format!("`rafter update cluster {name} --yes`"),
        );
        return Ok((report, Expected::default()));
    }

    // One description of the groups serves the capacities and the instances.
    let described = compute::groups_named(context, &groups).await?;
    let found: Vec<String> = described
        .iter()
        .filter_map(|group| group.auto_scaling_group_name().map(str::to_string))
        .collect();
    let running = health::instances(context, &described).await?;
    for missing in groups.iter().filter(|group| !found.contains(group)) {
        report.find(
            Area::Infrastructure,
            missing,
            "auto-scaling group does not exist (deleted outside rafter?)",
            format!("`rafter update cluster {name} --yes` makes it again"),
        );
    }
    for group in capacity::capacities_of(context, &described).await? {
        if group.reached() {
            report.pass(format!(
                "{}: {} of {} in service",
                group.group, group.in_service, group.desired
            ));
        } else {
            report.find(
                Area::Infrastructure,
                &group.group,
                format!(
                    "{} of {} instance(s) in service{}",
                    group.in_service,
                    group.desired,
                    group
                        .last_failure
                        .as_ref()
                        .map(|failure| format!("; the last launch failed: {failure}"))
                        .unwrap_or_default()
                ),
                "wait for the launches (`--wait`); a failed launch says what to change",
            );
        }
    }

    for arn in outputs(ResourceKind::TargetGroup, "arn") {
        let group = arn.rsplit('/').nth(1).unwrap_or(&arn).to_string();
        let targets = health::targets(context, &arn).await?;
        if targets.is_empty() {
            report.find(
                Area::Infrastructure,
                &group,
                "target group has no targets",
                "its auto-scaling group registers its instances; see the group's findings",
            );
            continue;
        }
        let unhealthy: Vec<&health::TargetHealth> = targets
            .iter()
            .filter(|target| target.state != "healthy")
            .collect();
        if unhealthy.is_empty() {
            report.pass(format!("{group}: {} target(s) healthy", targets.len()));
        }
        for target in unhealthy {
            report.find(
                Area::Infrastructure,
                format!("{} in {group}", target.target),
                format!(
                    "target is {}{}",
                    target.state,
                    target.reason.as_ref().map(|reason| format!(" ({reason})")).unwrap_or_default()
                ),
                "an API server that does not answer its health check: see the instance's boot report and `journalctl -u kubelet`",
            );
        }
    }

    boot_reports(store, name, &running, &mut report).await?;

    match store.read(&layout::etcd_formed_key(name)).await? {
        Some(record) if crate::bootstrap::record_says_formed(&record) => {
            report.pass("etcd: formed (a member recorded its cluster healthy)")
        }
        record => report.find(
            Area::Etcd,
            "etcd",
            format!(
                "has not formed yet (its record says: {})",
                record.map_or_else(
                    || "nothing".to_string(),
                    |record| String::from_utf8_lossy(&record).trim().to_string()
                )
            ),
            "control-plane members record it once their etcd is healthy: wait (`--wait`), or read the control-plane boot reports",
        ),
    }
    let slots = control_plane_slots(
        cluster.spec.control_plane.count,
        &cluster.spec.networking.zones,
    );
    let members: Vec<String> = slots.iter().map(ControlPlaneSlot::member).collect();
    let reports = member_reports::read(store, name, &members).await?;
    member_reports::judge(&members, &reports, OffsetDateTime::now_utc(), &mut report);
    member_reports::judge_certificates(name, &reports, OffsetDateTime::now_utc(), &mut report);
    // Control-plane groups are the ones the model places the members in.
    let member_groups: Vec<String> = slots.iter().map(ControlPlaneSlot::group).collect();
    let control_plane_groups: Vec<String> = recorded
        .iter()
        .filter(|record| {
            record.address.kind == ResourceKind::AutoscalingGroup
                && member_groups.contains(&record.address.name)
        })
        .filter_map(|record| record.outputs.get("name").cloned())
        .collect();
    let mut expected = Expected::default();
    for instance in &running {
        let node = instance.hostname.to_lowercase();
        match control_plane_groups.contains(&instance.group) {
            true => expected.control_plane.push(node),
            false => expected.workers.push(node),
        }
    }
    Ok((report, expected))
}

/// Every instance in service reported its boot done.
async fn boot_reports(
    store: &impl StateStore,
    name: &str,
    running: &[health::RunningInstance],
    report: &mut Report,
) -> Result<(), AwsValidateError> {
    let mut reports = std::collections::BTreeMap::new();
    for key in store.list(&layout::node_status_prefix(name)).await? {
        let Some(bytes) = store.read(&key).await? else {
            continue;
        };
        if let Ok(boot) = serde_json::from_slice::<BootReport>(&bytes) {
            reports.insert(boot.host.clone(), boot);
        }
    }
    let mut done = 0;
    for instance in running {
        let subject = format!(
            "{} ({}, {})",
            instance.hostname, instance.id, instance.group
        );
        match reports.get(&instance.hostname) {
            Some(boot) if boot.state == "done" => done += 1,
            Some(boot) => report.find(
                Area::Host,
                subject,
                format!(
                    "its boot is {}{} (reported {})",
                    boot.state,
                    if boot.detail.is_empty() { String::new() } else { format!(": {}", boot.detail) },
                    boot.at
                ),
                "on the instance: `journalctl -u rafter-first-boot`; it retries every 30 s",
            ),
            None => report.find(
                Area::Host,
                subject,
                "has not reported its boot",
                "wait (`--wait`); an instance that never reports cannot reach the state store: see its console output",
            ),
        }
    }
    if done > 0 && done == running.len() {
        report.pass(format!("{done} instance(s) finished their boot"));
    }
    Ok(())
}
