//! Bare-host clusters from the command line: take the cluster lock (to apply), run the phases
//! over SSH with per-host progress, and end with a summary of what changed on each host and
//! how long each phase took. A preview's per-host drift is part of the plan on stdout (and
//! of its JSON), beside the cluster's resources.

use std::collections::BTreeSet;

use rafter::hosts::connect::Connected;
use rafter::hosts::{self, Phase, Report, RunOptions};
use rafter::spec::Cluster;
use rafter::state::{ClusterStore, StateStore};

use super::args::{HostArgs, PlanFormat};
use super::aws_apply::renewing;
use super::failure::{EXIT_FAILURE, EXIT_UNHEALTHY, EXIT_USAGE, Failure};
use super::host_progress::HostProgress;
use super::locked;

/// What a bare-host run is asked to do.
pub struct HostRequest<'a> {
    pub cluster: &'a Cluster,
    /// Change the hosts; without it, only show what would change.
    pub apply: bool,
    /// `create cluster`, `update cluster`: shown to anyone who finds the lock held.
    pub operation: &'a str,
    pub force_unlock: rafter::state::ForceUnlock,
    pub args: &'a HostArgs,
    /// The cluster's resource plan, when the caller leaves printing it to the run: as JSON,
    /// it is printed once the hosts were read, with their drift (`"hosts"`, `"etcd"`); as
    /// text, the caller printed it already and the hosts' drift follows it on stdout.
    pub plan: Option<(&'a rafter::plan::Plan, PlanFormat)>,
}

fn skipped_phases(args: &HostArgs) -> anyhow::Result<BTreeSet<Phase>> {
    args.skip_phases
        .iter()
        .map(|name| {
            Phase::parse_skippable(name).ok_or_else(|| {
                Failure::new(EXIT_USAGE, format!("--skip-phases: unknown phase `{name}`"))
                    .hint("phases that can be skipped: files, node, etcd, control-plane, workers, addons")
                    .into()
            })
        })
        .collect()
}

pub async fn run<S: StateStore>(
    store: &ClusterStore<S>,
    request: HostRequest<'_>,
) -> anyhow::Result<()> {
    let cluster = request.cluster;
    let name = cluster.metadata.name.as_str();
    let options = RunOptions {
        apply: request.apply,
        accept_new_host_keys: request.args.accept_new_host_keys,
        skip: skipped_phases(request.args)?,
    };
    // A preview changes nothing and takes no lock.
    let mut lock = match request.apply {
        true => Some(
            super::acquire_lock(
                store.store(),
                name,
                request.operation,
                &request.force_unlock,
            )
            .await?,
        ),
        false => None,
    };
    let hosts: Vec<String> = cluster
        .spec
        .hosts
        .iter()
        .map(|host| host.name.clone())
        .collect();
    let progress = HostProgress::new(&hosts);
    let work = hosts::run(store.store(), cluster, &options, &progress);
    let outcome = match &mut lock {
        Some(lock) => renewing(lock, work).await,
        None => Ok(work.await),
    };
    progress.finish();
    if let Some(lock) = lock {
        lock.release().await.map_err(locked)?;
    }
    let report = outcome?.map_err(|error| {
        Failure::new(EXIT_FAILURE, format!("{} of cluster {name} stopped: {error}", request.operation))
            .hint(format!(
                "what was done stays done; fix the cause and run `rafter update cluster {name} --yes` again"
            ))
    })?;
    print_report(&report, request.plan);
    // After a run that changed hosts, one connection to each host serves the pull of the
    // backups the members took on schedule and the health gate below.
    let hosts = match report.applied {
        true => match rafter::hosts::connect::every_host(cluster, false).await {
            Ok(hosts) => Some(hosts),
            Err(error) => {
                eprintln!("warning: cannot connect again to pull backups and validate: {error}");
                None
            }
        },
        false => None,
    };
    if let Some(hosts) = &hosts
        && let Err(error) =
            super::etcd_hosts::pull_scheduled_backups(store.store(), name, hosts).await
    {
        eprintln!("warning: the scheduled etcd backups were not pulled from the hosts: {error:#}");
    }
    let outcome = finish(cluster, &report, &options, hosts.as_ref()).await;
    if let Some(hosts) = hosts {
        hosts.close().await;
    }
    outcome
}

/// A run with unreachable hosts fails naming them; one that converged every phase the gate
/// looks at passes through it.
async fn finish(
    cluster: &Cluster,
    report: &Report,
    options: &RunOptions,
    hosts: Option<&Connected>,
) -> anyhow::Result<()> {
    let name = &cluster.metadata.name;
    let unreachable = report.unreachable();
    if !unreachable.is_empty() {
        let names: Vec<&str> = unreachable.iter().map(|host| host.name.as_str()).collect();
        return Err(Failure::new(
            EXIT_FAILURE,
            format!(
                "{} could not be reached and {} left as {}; every other host {}",
                names.join(", "),
                if names.len() == 1 { "was" } else { "were" },
                if names.len() == 1 {
                    "it was"
                } else {
                    "they were"
                },
                if report.applied {
                    "converged"
                } else {
                    "was checked"
                }
            ),
        )
        .hint(format!(
            "bring {} back and run `rafter update cluster {name} --yes` again",
            names.join(", ")
        ))
        .into());
    }
    // The same checks `validate cluster` makes of hosts and etcd, once the run converged
    // every phase they look at (the Kubernetes checks wait for the add-ons: `validate`).
    if report.applied && options.skip.iter().all(|phase| *phase == Phase::Addons) {
        let hosts = hosts.ok_or_else(|| {
            Failure::new(
                EXIT_FAILURE,
                format!("cluster {name} was converged but its health could not be checked"),
            )
            .hint(format!("`rafter validate cluster {name}`"))
        })?;
        gate(cluster, hosts).await?;
    }
    Ok(())
}

/// Fails the run, naming each problem, when the converged cluster is not healthy.
async fn gate(cluster: &Cluster, hosts: &Connected) -> anyhow::Result<()> {
    let name = &cluster.metadata.name;
    let report = rafter::validate::hosts::validate(cluster, hosts).await?;
    if report.healthy() {
        eprintln!(
            "Validated cluster {name}: {} checks of hosts and etcd passed.",
            report.passed.len()
        );
        return Ok(());
    }
    let problems: Vec<String> = report
        .findings
        .iter()
        .map(|finding| {
            format!(
                "  {} {}: {}",
                finding.area.name(),
                finding.subject,
                finding.problem
            )
        })
        .collect();
    Err(Failure::new(
        EXIT_UNHEALTHY,
        format!(
            "cluster {name} was converged but is not healthy:\n{}",
            problems.join("\n")
        ),
    )
    .hint(format!(
        "`rafter validate cluster {name}` says what to do about each; `--wait 5m` waits for it to settle"
    ))
    .into())
}

/// Each host's changes (a preview lists everything; an apply its first lines per host).
fn host_lines(report: &Report) -> Vec<String> {
    let verb = if report.applied {
        "changed"
    } else {
        "would change"
    };
    let mut lines = Vec::new();
    for line in &report.membership {
        lines.push(format!(
            "etcd: {}{line}",
            if report.applied { "" } else { "would " }
        ));
    }
    for host in &report.hosts {
        if let Some(reason) = &host.unreachable {
            lines.push(format!("{}: UNREACHABLE: {reason}", host.name));
            continue;
        }
        for warning in &host.warnings {
            lines.push(format!("{}: warning: {warning}", host.name));
        }
        if host.changes.is_empty() {
            lines.push(format!("{}: up to date", host.name));
            continue;
        }
        lines.push(format!(
            "{}: {verb} {} thing(s)",
            host.name,
            host.changes.len()
        ));
        let shown = if report.applied { 5 } else { usize::MAX };
        for change in host.changes.iter().take(shown) {
            lines.push(format!("  {change}"));
        }
        if host.changes.len() > shown {
            lines.push(format!("  … and {} more", host.changes.len() - shown));
        }
    }
    lines
}

/// The plan's JSON with what was found (or done) on each host.
fn plan_json_with_hosts(plan: &rafter::plan::Plan, report: &Report) -> serde_json::Value {
    let mut json = rafter::plan::json::render(plan);
    let hosts: Vec<serde_json::Value> = report
        .hosts
        .iter()
        .map(|host| {
            let status = match (&host.unreachable, host.changes.is_empty()) {
                (Some(_), _) => "unreachable",
                (None, true) => "up_to_date",
                (None, false) if report.applied => "changed",
                (None, false) => "drifted",
            };
            serde_json::json!({
                "name": host.name,
                "status": status,
                "changes": host.changes,
                "warnings": host.warnings,
                "unreachable": host.unreachable,
            })
        })
        .collect();
    if let Some(object) = json.as_object_mut() {
        object.insert("applied".into(), report.applied.into());
        object.insert("hosts".into(), hosts.into());
        object.insert("etcd_membership".into(), report.membership.clone().into());
    }
    json
}

fn print_report(report: &Report, plan: Option<(&rafter::plan::Plan, PlanFormat)>) {
    match plan {
        Some((plan, PlanFormat::Json)) => {
            println!("{:#}", plan_json_with_hosts(plan, report));
        }
        // A preview's drift is part of the plan.
        Some((_, PlanFormat::Text)) if !report.applied => {
            println!("\nHosts (read over SSH):");
            for line in host_lines(report) {
                println!("  {line}");
            }
        }
        _ => {
            for line in host_lines(report) {
                eprintln!("{line}");
            }
        }
    }
    let phases: Vec<String> = report
        .phases
        .iter()
        .map(|(phase, took)| format!("{} {:.1}s", phase.name(), took.as_secs_f64()))
        .collect();
    eprintln!("Phases: {}.", phases.join(", "));
    eprintln!(
        "SSH connections opened: {} for {} reachable host(s).",
        report.connections,
        report
            .hosts
            .iter()
            .filter(|host| host.unreachable.is_none())
            .count()
    );
    if !report.changed() {
        eprintln!("Nothing to do: every host is as the spec says.");
    }
}
