//! `rafter delete cluster NAME`: show what would go; with --yes, remove it.

use rafter::graph::ResourceGraph;
use rafter::plan::RecordedResource;
use rafter::plan::diff::destroy_plan;
use rafter::state::ClusterLock;

use crate::cli::args::{DeleteClusterArgs, PlanFormat};
use crate::cli::aws_apply::{ApplyRequest, apply_with_lock, aws_region, failure_of};
use crate::cli::failure::{EXIT_FAILURE, Failure};
use crate::cli::{LOCK_LEASE, locked, output, settings};

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
    if !args.yes {
        eprintln!(
            "Would remove the cluster's state at {state_location}/. Run again with --yes to delete."
        );
        return Ok(());
    }
    // The state goes under the same lock as the resources, so no run can slip in between
    // and create what the deleted state would then lose track of.
    let lock = if plan.summary.delete > 0 {
        let planner = |recorded: &[RecordedResource]| Ok(destroy_plan(name, recorded)?);
        let nothing = ResourceGraph::new();
        let request = ApplyRequest {
            cluster: name,
            region: aws_region(&cluster)?,
            operation: "delete cluster",
            graph: &nothing,
            plan: &planner,
            force_unlock: args.force_unlock,
        };
        let applied = apply_with_lock(&store, request).await?;
        let left = applied.records.len();
        if !applied.report.succeeded() || left > 0 {
            let failure = failure_of(&applied.report, name, "delete").unwrap_or_else(|| {
                Failure::new(
                    EXIT_FAILURE,
                    format!(
                        "{left} resources of cluster {name} are still recorded; its state was kept"
                    ),
                )
                .hint(format!("run `rafter delete cluster {name} --yes` again"))
                .into()
            });
            applied.lock.release().await.map_err(locked)?;
            return Err(failure);
        }
        applied.lock
    } else {
        ClusterLock::acquire(
            store.store(),
            name,
            "delete cluster",
            LOCK_LEASE,
            args.force_unlock,
        )
        .await
        .map_err(locked)?
    };
    store.delete_cluster(name).await?;
    // Deleting the cluster's prefix removed the lock object with it.
    drop(lock);
    eprintln!("Deleted cluster {name} (its cloud resources and its state at {state_location}/).");
    Ok(())
}
