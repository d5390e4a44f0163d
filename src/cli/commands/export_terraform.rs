//! `rafter export terraform NAME --out DIR`: the cluster's resources as a Terraform module,
//! and the node bundles its instances fetch at first boot published to the state store (the
//! module itself holds no secret: its user-data only names where the bundle is).

use rafter::model::build_graph;
use rafter::spec::Cluster;
use rafter::state::{ClusterLock, ClusterStore, StateStore};
use rafter::terraform::{render_module, write_module};

use crate::cli::args::ExportTerraformArgs;
use crate::cli::settings;
use crate::cli::{LOCK_LEASE, locked};

use super::stored_cluster;

pub async fn run(state: Option<&str>, args: ExportTerraformArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let prepared = stored_cluster::load(&store, &args.name).await?;
    let graph = build_graph(&prepared.cluster)?;
    let files = render_module(&prepared.cluster, &graph)?;
    write_module(&args.out, &args.name, &files)?;
    eprintln!(
        "Wrote a Terraform module for cluster {} to {} ({} files, {} resources).",
        args.name,
        args.out.display(),
        files.len(),
        graph.len()
    );
    publish_bundles(&store, &prepared.cluster).await
}

/// Publishes the node bundles the module's instances fetch, under the cluster lock, when
/// they can work; otherwise says why instances made from this module would not come up.
async fn publish_bundles<S: StateStore>(
    store: &ClusterStore<S>,
    cluster: &Cluster,
) -> anyhow::Result<()> {
    let name = cluster.metadata.name.as_str();
    let config_base = cluster.spec.config_base.as_deref().unwrap_or_default();
    if !config_base.starts_with("s3://") {
        eprintln!(
            "Note: node bundles were not published: the state is kept in {config_base}, which \
             AWS instances cannot read, so instances made by `terraform apply` from this module \
             would wait for a bundle that never comes. Keep the state in an S3 bucket of the \
             cluster's account (`--state s3://BUCKET/PREFIX`) and export again."
        );
        return Ok(());
    }
    let load_balancers = stored_cluster::recorded_load_balancers(store, name).await?;
    if cluster.spec.dns.is_none() && load_balancers.for_nodes().is_none() {
        eprintln!(
            "Note: node bundles were not published: cluster {name} has no spec.dns, so the \
             nodes' API address is the DNS name of a load balancer that does not exist before \
             `terraform apply`. Set spec.dns.zone (`rafter update cluster {name} -f FILE`) and \
             export again, or let `rafter update cluster {name} --yes` create the cluster."
        );
        return Ok(());
    }
    let lock = ClusterLock::acquire(store.store(), name, "export terraform", LOCK_LEASE, false)
        .await
        .map_err(locked)?;
    let published = rafter::bootstrap::publish_node_bundles(
        store.store(),
        cluster,
        &load_balancers,
        time::OffsetDateTime::now_utc(),
    )
    .await;
    lock.release().await.map_err(locked)?;
    let published = published?;
    eprintln!(
        "Published {} node bundle(s) to {config_base} for the instances' first boot ({} unchanged).",
        published.written.len(),
        published.unchanged,
    );
    Ok(())
}
