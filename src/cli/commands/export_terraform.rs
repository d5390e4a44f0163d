//! `rafter export terraform NAME --out DIR`: the cluster's resources as a Terraform module.
//!
//! With the state in S3 (a cluster Terraform can bring up), under the cluster lock: the
//! module's lookups are resolved once and recorded as `update --yes` records them (so the
//! module's image is pinned to the recorded AMI), the module is written, and the node bundles
//! its instances fetch at first boot are published. The module itself holds no secret: its
//! user-data only names where the bundle is.

use rafter::graph::ResourceGraph;
use rafter::model::build_graph;
use rafter::plan::{self, RecordedResource};
use rafter::spec::Cluster;
use rafter::state::{ClusterStore, StateStore};
use rafter::terraform::{render_module, write_module};

use crate::cli::args::ExportTerraformArgs;
use crate::cli::aws_apply::{Applied, ApplyRequest, apply_with_lock, aws_region};
use crate::cli::locked;
use crate::cli::settings;

use super::stored_cluster;

pub async fn run(state: Option<&str>, args: ExportTerraformArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let prepared = stored_cluster::load(&store, &args.name).await?;
    let cluster = &prepared.cluster;
    let graph = build_graph(cluster)?;
    let config_base = cluster.spec.config_base.as_deref().unwrap_or_default();
    if !config_base.starts_with("s3://") {
        write(
            &args,
            cluster,
            &graph,
            &store.read_resources(&args.name).await?,
        )?;
        eprintln!(
            "Note: node bundles were not published and the image was not pinned: the state is \
             kept in {config_base}, which AWS instances cannot read, so instances made by \
             `terraform apply` from this module would wait for a bundle that never comes. Keep \
             the state in an S3 bucket of the cluster's account (`--state s3://BUCKET/PREFIX`) \
             and export again."
        );
        return Ok(());
    }
    let applied = resolve_lookups(&store, cluster, &graph).await?;
    let result = write_and_publish(&store, &args, cluster, &graph, &applied).await;
    applied.lock.release().await.map_err(locked)?;
    result
}

/// Resolves the graph's lookups (images, the DNS zone) the way `update --yes` does, reading
/// only those not recorded yet, and returns the records with the cluster lock held.
async fn resolve_lookups<'a, S: StateStore>(
    store: &'a ClusterStore<S>,
    cluster: &Cluster,
    graph: &ResourceGraph,
) -> anyhow::Result<Applied<'a, S>> {
    let name = cluster.metadata.name.as_str();
    let lookups = graph.filtered(|node| node.address.kind.is_lookup());
    // Planned against the recorded lookups only: nothing else recorded is touched.
    let planner = |recorded: &[RecordedResource], _: &rafter::plan::Refreshed| {
        let recorded_lookups: Vec<RecordedResource> = recorded
            .iter()
            .filter(|record| record.address.kind.is_lookup())
            .cloned()
            .collect();
        Ok(plan::diff(name, &lookups, &recorded_lookups)?)
    };
    let request = ApplyRequest {
        cluster: name,
        region: aws_region(cluster)?,
        operation: "export terraform",
        graph: &lookups,
        plan: &planner,
        force_unlock: rafter::state::ForceUnlock::Never,
        // Only lookups are applied: nothing recorded is touched.
        refresh: false,
    };
    let applied = apply_with_lock(store, request).await?;
    if !applied.report.succeeded() {
        // The export still serves (to review, or to apply once the cause is fixed):
        // an unresolved lookup stays a plain data source, which Terraform resolves itself.
        eprintln!(
            "Note: not every lookup could be resolved (above): those stay Terraform data \
             sources, and `terraform apply` fails the same way until the cause is fixed."
        );
    }
    Ok(applied)
}

fn write(
    args: &ExportTerraformArgs,
    cluster: &Cluster,
    graph: &ResourceGraph,
    recorded: &[RecordedResource],
) -> anyhow::Result<()> {
    let files = render_module(cluster, graph, recorded)?;
    write_module(&args.out, &args.name, &files)?;
    eprintln!(
        "Wrote a Terraform module for cluster {} to {} ({} files, {} resources).",
        args.name,
        args.out.display(),
        files.len(),
        graph.len()
    );
    Ok(())
}

/// Writes the module pinned to the recorded lookups, then publishes the bundles when the
/// nodes' API address is known before `terraform apply`; otherwise says why not.
async fn write_and_publish<S: StateStore>(
    store: &ClusterStore<S>,
    args: &ExportTerraformArgs,
    cluster: &Cluster,
    graph: &ResourceGraph,
    applied: &Applied<'_, S>,
) -> anyhow::Result<()> {
    write(args, cluster, graph, &applied.records)?;
    let name = cluster.metadata.name.as_str();
    let load_balancers = rafter::bootstrap::ApiLoadBalancerNames::recorded(&applied.records);
    if cluster.spec.dns.is_none() && load_balancers.for_nodes().is_none() {
        eprintln!(
            "Note: node bundles were not published: cluster {name} has no spec.dns, so the \
             nodes' API address is the DNS name of a load balancer that does not exist before \
             `terraform apply`. Set spec.dns.zone (`rafter update cluster {name} -f FILE`) and \
             export again, or let `rafter update cluster {name} --yes` create the cluster."
        );
        return Ok(());
    }
    let published = rafter::bootstrap::publish_node_bundles(
        store.store(),
        cluster,
        &load_balancers,
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    eprintln!(
        "Published {} node bundle(s) to {} for the instances' first boot ({} unchanged).",
        published.written.len(),
        cluster.spec.config_base.as_deref().unwrap_or_default(),
        published.unchanged,
    );
    Ok(())
}
