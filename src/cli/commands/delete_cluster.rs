//! `rafter delete cluster NAME`: show what would go; with --yes, remove it.

use rafter::aws::AwsProvisioner;
use rafter::aws::sweep::{SweepPolicy, SweepReport};
use rafter::graph::ResourceGraph;
use rafter::model::naming::CLUSTER_TAG;
use rafter::plan::RecordedResource;
use rafter::plan::diff::destroy_plan;
use rafter::spec::Provider;

use crate::cli::args::{DeleteClusterArgs, PlanFormat};
use crate::cli::aws_apply::{
    ApplyRequest, apply_under_lock, aws_config, aws_region, failure_of, renewing,
};
use crate::cli::failure::{EXIT_FAILURE, Failure};
use crate::cli::{acquire_lock, force_unlock, locked, output, settings};

use super::stored_cluster;

pub async fn run(state: Option<&str>, args: DeleteClusterArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let name = &args.name;
    let cluster = stored_cluster::load(&store, name).await?.cluster;
    let recorded = store.read_resources(name).await?;
    let plan = destroy_plan(name, &recorded)?;
    if recorded.is_empty() {
        eprintln!("No cloud resources are recorded for cluster {name}.");
    } else {
        output::print_plan(&plan, PlanFormat::Text);
    }
    let state_location = store.config_base(name);
    let region = match cluster.spec.provider {
        Provider::Aws => Some(aws_region(&cluster)?),
        Provider::Ssh => None,
    };
    if !args.yes {
        if region.is_some() {
            eprintln!(
                "Would first delete what the cluster's add-ons made (Services' load balancers, target groups and security groups, tagged kubernetes.io/cluster/{name}=owned); volumes the EBS CSI driver made for claims stay."
            );
            eprintln!(
                "Then would delete anything else still tagged {CLUSTER_TAG}={name} (what state lost track of)."
            );
        }
        eprintln!(
            "Would remove the cluster's state at {state_location}/. Run again with --yes to delete."
        );
        return Ok(());
    }
    // The state goes under the same lock as the resources, so no run can slip in between
    // and create what the deleted state would then lose track of.
    let mut lock = acquire_lock(
        store.store(),
        name,
        "delete cluster",
        &force_unlock(&args.force_unlock),
    )
    .await?;
    let mut failure: Option<anyhow::Error> = None;
    // What the add-ons made (a Service's load balancer and its security group) sits in the
    // cluster's subnets and refers to its groups: it goes first, or their deletes would wait.
    if let Some(region) = region {
        let provisioner = AwsProvisioner::new(&aws_config(region).await, name);
        let report = renewing(
            &mut lock,
            provisioner.sweep_addon_leftovers(SweepPolicy::default()),
        )
        .await?;
        if !report.deleted.is_empty() {
            eprintln!(
                "Deleted {} resources the cluster's add-ons made:",
                report.deleted.len()
            );
            for leftover in &report.deleted {
                eprintln!("  - {leftover}");
            }
        }
        // The sweep after the recorded delete looks for these too, and says what failed.
        if !report.clean() {
            eprintln!(
                "warning: could not yet delete everything the cluster's add-ons made ({} left, {} kinds not listed); the final sweep tries again",
                report.remaining.len(),
                report.unlisted.len()
            );
        }
    }
    if plan.summary.delete > 0 {
        // Deleting what is already gone succeeds: no refresh needed.
        let planner = |recorded: &[RecordedResource], _: &rafter::plan::Refreshed| {
            Ok(destroy_plan(name, recorded)?)
        };
        let nothing = ResourceGraph::new();
        let request = ApplyRequest {
            cluster: name,
            region: aws_region(&cluster)?,
            operation: "delete cluster",
            graph: &nothing,
            plan: &planner,
            force_unlock: force_unlock(&args.force_unlock),
            refresh: false,
        };
        let (report, records, _) = match apply_under_lock(&store, &mut lock, &request).await {
            Ok(applied) => applied,
            Err(error) => {
                let _ = lock.release().await;
                return Err(error);
            }
        };
        let left = records.len();
        let recorded_failure = failure_of(&report, name, "delete").or_else(|| {
            (left > 0).then(|| {
                Failure::new(
                    EXIT_FAILURE,
                    format!(
                        "{left} resources of cluster {name} are still recorded; its state was kept"
                    ),
                )
                .hint(format!("run `rafter delete cluster {name} --yes` again"))
                .into()
            })
        });
        failure = recorded_failure;
    }
    // Swept even when the recorded delete failed: a leftover may be what blocked it.
    if let Some(region) = region {
        let provisioner = AwsProvisioner::new(&aws_config(region).await, name);
        let report = renewing(&mut lock, provisioner.sweep(SweepPolicy::default())).await?;
        print_sweep(&report, &provisioner);
        if !report.clean() {
            failure.get_or_insert_with(|| sweep_failure(&report, name));
        }
    }
    if let Some(failure) = failure {
        lock.release().await.map_err(locked)?;
        return Err(failure);
    }
    store.delete_cluster(name).await?;
    // Deleting the cluster's prefix removed the lock object with it.
    drop(lock);
    eprintln!("Deleted cluster {name} (its cloud resources and its state at {state_location}/).");
    Ok(())
}

fn print_sweep(report: &SweepReport, provisioner: &AwsProvisioner) {
    let calls: u64 = provisioner
        .calls()
        .snapshot()
        .values()
        .map(|count| count.reads + count.writes)
        .sum();
    if report.deleted.is_empty() {
        if report.clean() {
            eprintln!("Sweep: nothing else tagged as this cluster's ({calls} API calls).");
        }
        return;
    }
    eprintln!(
        "Sweep: deleted {} resources state had lost track of ({calls} API calls):",
        report.deleted.len()
    );
    for leftover in &report.deleted {
        eprintln!("  - {leftover}");
    }
}

/// What the sweep could not delete or list, each with its AWS error, as a failure.
fn sweep_failure(report: &SweepReport, name: &str) -> anyhow::Error {
    let mut lines: Vec<String> = report
        .remaining
        .iter()
        .map(|(leftover, error)| format!("  {leftover}: {error}"))
        .collect();
    // One line per distinct error: without credentials or network every kind fails alike.
    let mut unlisted: Vec<(String, Vec<&str>)> = Vec::new();
    for (kind, error) in &report.unlisted {
        let error = error.to_string();
        match unlisted.iter_mut().find(|(seen, _)| *seen == error) {
            Some((_, kinds)) => kinds.push(kind.type_name()),
            None => unlisted.push((error, vec![kind.type_name()])),
        }
    }
    lines.extend(
        unlisted
            .iter()
            .map(|(error, kinds)| format!("  could not list {}: {error}", kinds.join(", "))),
    );
    let (headline, hint) = if report.remaining.is_empty() {
        (
            format!("could not check AWS for resources tagged {CLUSTER_TAG}={name}"),
            "check the AWS credentials, region and network (`aws sts get-caller-identity`), then run `rafter delete cluster NAME --yes` again".replace("NAME", name),
        )
    } else {
        (
            format!("these resources still carry {CLUSTER_TAG}={name} and could not be deleted"),
            format!(
                "remove what holds them (the errors say what) and run `rafter delete cluster {name} --yes` again"
            ),
        )
    };
    Failure::new(
        EXIT_FAILURE,
        format!(
            "{headline}; the cluster's state was kept:\n{}",
            lines.join("\n")
        ),
    )
    .hint(hint)
    .into()
}
