//! `rafter update cluster`: plan the changes that bring a cluster to its (possibly new) spec.

use rafter::model::build_graph;
use rafter::plan::{self, RecordedResource};
use rafter::rolling::{self, membership, membership::MembershipChange};
use rafter::spec::{self, Cluster, Provider, SpecSources};
use rafter::state::journal::Journal;
use rafter::state::{AnyStore, ClusterStore};

use crate::cli::args::{PlanFormat, UpdateClusterArgs};
use crate::cli::aws_apply::{
    ApplyRequest, Waits, apply_with_lock, aws_config, aws_region, finish, refresh,
    require_state_in_s3,
};
use crate::cli::aws_capacity::check_offerings;
use crate::cli::durations::wait_duration;
use crate::cli::failure::{EXIT_CLUSTER_STATE, EXIT_INVALID_SPEC, Failure};
use crate::cli::ssh_apply::{self, HostRequest};
use crate::cli::{output, settings};

use super::stored_cluster;
use super::update_members_aws::{self, MembersUpdate};

pub async fn run(state: Option<&str>, args: UpdateClusterArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let name = &args.name;
    let stored = stored_cluster::load(&store, name).await?;
    let stored_cluster = stored.cluster.clone();
    let prepared = match &args.file {
        None => stored,
        Some(file) => {
            let sources = SpecSources {
                file: Some(file.clone()),
                ..SpecSources::default()
            };
            let new = spec::load(&sources, Some(&store.config_base(name)))?;
            if &new.cluster.metadata.name != name {
                return Err(Failure::new(
                    EXIT_INVALID_SPEC,
                    format!(
                        "{} describes cluster {}, not {name}",
                        file.display(),
                        new.cluster.metadata.name
                    ),
                )
                .hint("a cluster cannot be renamed; create a new one instead")
                .into());
            }
            refuse_version_change(&stored.cluster, &new.cluster)?;
            new
        }
    };
    refuse_during_upgrade(&store, name, args.yes).await?;
    let asked = args.file.is_some().then_some(&prepared.cluster);
    if let Some((target, unfinished)) = membership_target(&store, &stored_cluster, asked).await? {
        refuse_version_change(&stored_cluster, &target)?;
        if let Some(change) = MembershipChange::between(&stored_cluster, &target) {
            output::print_warnings(&prepared.warnings);
            return update_members_aws::run(MembersUpdate {
                store: &store,
                args: &args,
                change,
                unfinished: unfinished.as_ref(),
            })
            .await;
        }
    }
    output::print_warnings(&prepared.warnings);
    let graph = build_graph(&prepared.cluster)?;
    // Bare hosts are not recorded in resources.json: the stored spec says what they are.
    let recorded = match prepared.cluster.spec.provider {
        Provider::Ssh => plan::as_recorded(&build_graph(&stored_cluster)?),
        Provider::Aws => store.read_resources(name).await?,
    };
    // A preview shows what a refresh finds; with --yes the apply refreshes under the lock.
    let refreshed = if prepared.cluster.spec.provider == Provider::Aws
        && args.refresh
        && !args.yes
        && !recorded.is_empty()
    {
        let config = aws_config(aws_region(&prepared.cluster)?).await;
        refresh(&config, name, &recorded).await?
    } else {
        plan::Refreshed::default()
    };
    let plan = plan::diff_refreshed(name, &graph, &recorded, &refreshed)?;
    let on_hosts = prepared.cluster.spec.provider == Provider::Ssh;
    // A bare-host run prints the JSON itself, with what it finds on the hosts.
    if !on_hosts || args.output == PlanFormat::Text {
        output::print_plan(&plan, args.output);
    }
    if on_hosts {
        if args.yes && args.file.is_some() {
            store
                .replace_spec(name, &spec::to_yaml(&prepared.cluster)?)
                .await?;
        }
        let request = HostRequest {
            cluster: &prepared.cluster,
            apply: args.yes,
            operation: "update cluster",
            force_unlock: crate::cli::force_unlock(&args.force_unlock),
            args: &args.hosts,
            plan: Some((&plan, args.output)),
        };
        ssh_apply::run(&store, request).await?;
        if !args.yes {
            if args.file.is_some() {
                eprintln!("The new spec was not stored: nothing changes without --yes.");
            }
            eprintln!("Nothing was changed: run with --yes to apply.");
        }
        return Ok(());
    }
    if args.yes {
        let region = aws_region(&prepared.cluster)?;
        require_state_in_s3(&prepared.cluster)?;
        let capacity_timeout = wait_duration(&args.capacity_timeout)?;
        check_offerings(name, region, &graph).await?;
        if args.file.is_some() {
            store
                .replace_spec(name, &spec::to_yaml(&prepared.cluster)?)
                .await?;
        }
        let planner = |recorded: &[RecordedResource], refreshed: &plan::Refreshed| {
            Ok(plan::diff_refreshed(name, &graph, recorded, refreshed)?)
        };
        let request = ApplyRequest {
            cluster: name,
            region,
            operation: "update cluster",
            graph: &graph,
            plan: &planner,
            force_unlock: crate::cli::force_unlock(&args.force_unlock),
            refresh: args.refresh,
        };
        return finish(
            &store,
            apply_with_lock(&store, request).await?,
            &prepared.cluster,
            "update",
            Waits {
                capacity: capacity_timeout,
                // An update that changes members replaces them behind their own gates.
                etcd: std::time::Duration::ZERO,
            },
        )
        .await;
    }
    if args.file.is_some() {
        eprintln!("The new spec was not stored: nothing changes without --yes.");
    }
    Ok(())
}

/// A version change restarts etcd members, API servers and kubelets: only `upgrade cluster`
/// does that, one host at a time behind health gates. Applied here, every host would take
/// the new versions at once.
fn refuse_version_change(stored: &Cluster, new: &Cluster) -> anyhow::Result<()> {
    let mut changed = Vec::new();
    if stored.spec.kubernetes_version != new.spec.kubernetes_version {
        changed.push(format!(
            "spec.kubernetesVersion {} → {}",
            stored.spec.kubernetes_version, new.spec.kubernetes_version
        ));
    }
    if stored.spec.etcd.version != new.spec.etcd.version {
        changed.push(format!(
            "spec.etcd.version {} → {}",
            stored.spec.etcd.version, new.spec.etcd.version
        ));
    }
    if changed.is_empty() {
        return Ok(());
    }
    let name = &new.metadata.name;
    let how = format!(
        "run `rafter upgrade cluster {name} -f FILE` (it shows the plan; --yes upgrades), and keep this file's versions as they are for `update`"
    );
    Err(Failure::new(
        EXIT_INVALID_SPEC,
        format!(
            "the new spec changes versions ({}): `update cluster` does not change versions, since it would restart every host's etcd, API server and kubelet at once",
            changed.join(", ")
        ),
    )
    .hint(how)
    .into())
}

/// While an upgrade is unfinished, some hosts run the old versions and some the new: an
/// update would render every host for one of them.
async fn refuse_during_upgrade<S: rafter::state::StateStore>(
    store: &rafter::state::ClusterStore<S>,
    name: &str,
    applying: bool,
) -> anyhow::Result<()> {
    let Some(journal) =
        rafter::state::journal::Journal::load(store.store(), name, rafter::upgrade::OPERATION)
            .await?
            .filter(|journal| !journal.finished())
    else {
        return Ok(());
    };
    let said = format!(
        "an upgrade of cluster {name} ({}, started {}) is unfinished",
        journal.subject, journal.started_at
    );
    if !applying {
        eprintln!("warning: {said}; `update cluster --yes` is refused until it is finished");
        return Ok(());
    }
    Err(Failure::new(crate::cli::failure::EXIT_CLUSTER_STATE, said)
        .hint(format!(
            "finish it first: `rafter upgrade cluster {name} --yes` continues where it stopped"
        ))
        .into())
}

/// The control-plane members of a running AWS cluster change one at a time
/// (`update_members_aws`): the target of an unfinished change (with its journal), or the
/// spec `asked` for when it adds or removes members and some have booted (before that, a
/// plain apply creates or deletes their groups). A change of other members than the
/// unfinished one's is refused.
async fn membership_target(
    store: &ClusterStore<AnyStore>,
    stored: &Cluster,
    asked: Option<&Cluster>,
) -> anyhow::Result<Option<(Cluster, Option<Journal>)>> {
    if stored.spec.provider != Provider::Aws {
        return Ok(None);
    }
    let name = &stored.metadata.name;
    let unfinished = Journal::load(store.store(), name, membership::OPERATION)
        .await?
        .filter(|journal| !journal.finished());
    if let Some(mut journal) = unfinished {
        let target = stored_cluster::journal_target(
            name,
            &store.config_base(name),
            &journal,
            "membership change",
        )?;
        if asked.is_some_and(|asked| rolling::members(asked) != rolling::members(&target)) {
            return Err(Failure::new(
                EXIT_CLUSTER_STATE,
                format!(
                    "a change of cluster {name}'s control-plane members ({}, started {}) is unfinished; its next step is `{}`",
                    journal.subject,
                    journal.started_at,
                    journal.remaining().first().copied().unwrap_or_default()
                ),
            )
            .hint(format!(
                "finish it first: `rafter update cluster {name} --yes` continues where it stopped"
            ))
            .into());
        }
        if rolling::members(stored) == rolling::members(&target) {
            // Stopped after its last step stored the new spec: nothing is left but the mark.
            for step in journal
                .remaining()
                .iter()
                .map(|step| step.to_string())
                .collect::<Vec<_>>()
            {
                journal.record(store.store(), name, &step).await?;
            }
            return Ok(None);
        }
        return Ok(Some((target, Some(journal))));
    }
    let Some(asked) = asked else {
        return Ok(None);
    };
    if rolling::members(stored) == rolling::members(asked)
        || rafter::bootstrap::booted_members(store.store(), name)
            .await?
            .is_empty()
    {
        return Ok(None);
    }
    Ok(Some((asked.clone(), None)))
}
