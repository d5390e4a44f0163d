//! `rafter delete cluster NAME`: show what would go; with --yes, remove it.

use rafter::plan::diff::destroy_plan;
use rafter::state::ClusterLock;

use crate::cli::args::{DeleteClusterArgs, PlanFormat};
use crate::cli::failure::{EXIT_NOT_AVAILABLE, Failure};
use crate::cli::{LOCK_LEASE, locked, output, settings};

use super::stored_cluster;

pub async fn run(state: Option<&str>, args: DeleteClusterArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let name = &args.name;
    stored_cluster::load(&store, name).await?;
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
    if plan.summary.delete > 0 {
        return Err(Failure::new(
            EXIT_NOT_AVAILABLE,
            "deleting cloud resources is not available in this build yet; nothing was changed",
        )
        .into());
    }
    let lock = ClusterLock::acquire(
        store.store(),
        name,
        "delete cluster",
        LOCK_LEASE,
        args.force_unlock,
    )
    .await
    .map_err(locked)?;
    store.delete_cluster(name).await?;
    // Deleting the cluster's prefix removed the lock object with it.
    drop(lock);
    eprintln!("Deleted cluster {name} (its state at {state_location}/).");
    Ok(())
}
