//! `rafter export terraform NAME --out DIR`: the cluster's resources as a Terraform module.

use rafter::model::build_graph;
use rafter::terraform::{render_module, write_module};

use crate::cli::args::ExportTerraformArgs;
use crate::cli::settings;

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
    Ok(())
}
