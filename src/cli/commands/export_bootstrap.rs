//! `rafter export bootstrap NAME --role control-plane|worker [--node N] --out DIR [--bundle]`:
//! exactly the files one node receives, under DIR as they lie on the node, with their modes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;
use rafter::bootstrap::{self, Role};
use rafter::pki::{ClusterPki, ClusterSecrets, NodeLeaves};
use rafter::state::local::write_atomic;
use time::OffsetDateTime;

use crate::cli::args::{ExportBootstrapArgs, NodeRoleArg};
use crate::cli::settings;

use super::stored_cluster;

pub async fn run(state: Option<&str>, args: ExportBootstrapArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let name = &args.name;
    let cluster = stored_cluster::load(&store, name).await?.cluster;
    let role = match args.role {
        NodeRoleArg::ControlPlane => Role::ControlPlane,
        NodeRoleArg::Worker => Role::Worker,
    };
    let node = bootstrap::select_node(&cluster, role, args.node.as_deref())?;
    let load_balancers = stored_cluster::recorded_load_balancers(&store, name).await?;
    let access = bootstrap::api_access(&cluster, &load_balancers)?;
    let now = OffsetDateTime::now_utc();
    let pki = ClusterPki::load_or_create(store.store(), name, now).await?;
    let secrets = ClusterSecrets::load_or_create(store.store(), name).await?;
    // A named node's certificates are kept (a bare host's, an AWS control-plane member's),
    // so the export is what the node receives, now and later.
    let mut leaves = match node.name() {
        Some(node_name) => NodeLeaves::load(store.store(), name, &node_name).await?,
        None => NodeLeaves::fresh(),
    };
    let rendered =
        bootstrap::render_node(&cluster, node, &access, &pki, &secrets, &mut leaves, now)?;
    leaves.save(store.store()).await?;

    make_private_dir(&args.out)?;
    let mut secret_count = 0;
    for file in &rendered.files {
        let target = args.out.join(file.path.trim_start_matches('/'));
        write_with_mode(&target, file.content.as_bytes(), file.mode)?;
        secret_count += usize::from(file.secret);
        println!("{:o} {}", file.mode, file.path);
    }
    if args.bundle {
        write_with_mode(
            &args.out.join("bundle.sh"),
            rendered.bundle.as_bytes(),
            0o600,
        )?;
        println!("600 bundle.sh (all of the above; run it as root on the node)");
    }
    eprintln!(
        "Wrote {} files for a {} of {name} under {} ({secret_count} hold keys or tokens: mode 0600).",
        rendered.files.len(),
        match role {
            Role::ControlPlane => "control-plane node",
            Role::Worker => "worker",
        },
        args.out.display()
    );
    Ok(())
}

fn make_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("could not make {} private (0700)", dir.display()))
}

/// Written atomically at 0600 first, then given its mode.
fn write_with_mode(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    write_atomic(path, data).with_context(|| format!("could not write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("could not set the mode of {}", path.display()))
}
