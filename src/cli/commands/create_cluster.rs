//! `rafter create cluster`: assemble and validate a spec, store it, show the plan.

use anyhow::Context;
use rafter::model::build_graph;
use rafter::plan::{self, RecordedResource};
use rafter::spec::load::merge_sources;
use rafter::spec::source::{FieldPath, NodeValue};
use rafter::spec::{self, Provider, SpecFlags, SpecSources};
use rafter::state::StateError;

use crate::cli::args::{CreateClusterArgs, SpecArgs};
use crate::cli::aws_apply::{
    ApplyRequest, Waits, apply_with_lock, aws_region, finish, require_state_in_s3,
};
use crate::cli::aws_capacity::check_offerings;
use crate::cli::durations::wait_duration;
use crate::cli::failure::{EXIT_CLUSTER_STATE, Failure};
use crate::cli::ssh_apply::{self, HostRequest};
use crate::cli::{output, settings};

pub async fn run(state: Option<&str>, args: Box<CreateClusterArgs>) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let sources = spec_sources(&args.spec)?;
    let document = merge_sources(&sources)?;
    let name = match document
        .get(&FieldPath::parse("metadata.name"))
        .map(|node| &node.value)
    {
        Some(NodeValue::Str(name)) => Some(name.clone()),
        _ => None,
    };
    let config_base = name.as_deref().map(|name| store.config_base(name));
    let prepared = spec::prepare(&document, config_base.as_deref())?;
    output::print_warnings(&prepared.warnings);
    let cluster = &prepared.cluster;
    let name = &cluster.metadata.name;

    let yaml = spec::to_yaml(cluster)?;
    // The same `create --yes` again (the first was interrupted: killed, a lost connection)
    // carries on where that one stopped; anything else for an existing name is refused.
    let resuming = match args.dry_run {
        true => false,
        false => match store.read_spec(name).await? {
            None => false,
            Some(stored) if args.yes && stored == yaml => true,
            Some(_) => return Err(already_exists(name, &store.url())),
        },
    };
    if resuming {
        eprintln!(
            "note: cluster {name} is stored with this same spec (an earlier create did not finish): carrying on with it"
        );
    }
    let waits = Waits {
        capacity: wait_duration(&args.capacity_timeout)?,
        etcd: wait_duration(&args.etcd_timeout)?,
    };
    let on_hosts = cluster.spec.provider == Provider::Ssh;
    let region = if args.yes && !on_hosts {
        require_state_in_s3(cluster)?;
        Some(aws_region(cluster)?)
    } else {
        None
    };
    let graph = build_graph(cluster)?;
    let plan = plan::diff(name, &graph, &[])?;
    output::print_plan(&plan, args.output);

    if args.dry_run {
        eprintln!("Dry run: nothing was stored or created.");
        return Ok(());
    }
    if let Some(region) = region {
        check_offerings(name, region, &graph).await?;
    }
    if !resuming {
        store
            .create_spec(name, &yaml)
            .await
            .map_err(|error| match error {
                StateError::PreconditionFailed { .. } => already_exists(name, &store.url()),
                other => other.into(),
            })?;
    }
    if on_hosts && args.yes {
        let request = HostRequest {
            cluster,
            apply: true,
            operation: "create cluster",
            force_unlock: rafter::state::ForceUnlock::Never,
            args: &args.hosts,
            plan: None,
        };
        return ssh_apply::run(&store, request).await;
    }
    let Some(region) = region else {
        eprintln!(
            "Stored the spec of cluster {name} in {}.\nNothing was created in the cloud. Review the plan above; `rafter get cluster {name}` shows the full spec, `rafter update cluster {name} --yes` creates it.",
            store.url()
        );
        return Ok(());
    };
    let planner = |recorded: &[RecordedResource], refreshed: &plan::Refreshed| {
        Ok(plan::diff_refreshed(name, &graph, recorded, refreshed)?)
    };
    let request = ApplyRequest {
        cluster: name,
        region,
        operation: "create cluster",
        graph: &graph,
        plan: &planner,
        force_unlock: rafter::state::ForceUnlock::Never,
        refresh: true,
    };
    finish(
        &store,
        apply_with_lock(&store, request).await?,
        cluster,
        "create",
        waits,
    )
    .await
}

fn already_exists(name: &str, store: &str) -> anyhow::Error {
    Failure::new(
        EXIT_CLUSTER_STATE,
        format!("cluster {name} already exists in {store}"),
    )
    .hint(format!(
        "change it with `rafter update cluster {name} -f FILE`, or pick another name (the same `create --yes` again carries on with an unfinished create)"
    ))
    .into()
}

fn spec_sources(args: &SpecArgs) -> anyhow::Result<SpecSources> {
    let ssh_public_key = args
        .ssh_public_key
        .as_ref()
        .map(|path| {
            // An OpenSSH public key is well under a kilobyte (RSA 16384 bits: about 2.8 KiB).
            rafter::spec::load::read_text_file(path, 64 * 1024)
                .map(|key| key.trim().to_string())
                .with_context(|| format!("cannot read the SSH public key {}", path.display()))
        })
        .transpose()?;
    Ok(SpecSources {
        profile: args.profile.clone(),
        file: args.file.clone(),
        flags: SpecFlags {
            name: args.name.clone(),
            zones: args.zones.clone(),
            node_count: args.node_count,
            control_plane_count: args.control_plane_count,
            kubernetes_version: args.kubernetes_version.clone(),
            etcd_version: args.etcd_version.clone(),
            dns_zone: args.dns_zone.clone(),
            network_cidr: args.network_cidr.clone(),
            node_size: args.node_size.clone(),
            control_plane_size: args.control_plane_size.clone(),
            topology: args.topology.clone(),
            ssh_public_key,
        },
    })
}
