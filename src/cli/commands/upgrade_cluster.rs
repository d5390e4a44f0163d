//! `rafter upgrade cluster NAME`: the plan of an upgrade (the version change, the preflight,
//! every step in order with its gate), and with `--yes` the upgrade itself under the cluster
//! lock, journalled step by step so that running the same command again after a crash, a
//! kill or a failed gate continues at the first unfinished step. Which versions may change
//! and the journal are shared; the steps on AWS are `upgrade_cluster_aws`'s.

use rafter::hosts::connect;
use rafter::spec::load::{SpecFlags, apply_flags, parse_stored};
use rafter::spec::versions::parse_etcd_version;
use rafter::spec::{self, Cluster, Provider, SpecSources};
use rafter::state::journal::Journal;
use rafter::state::{AnyStore, ClusterStore, StateStore};
use rafter::upgrade::execute::{Drainer, Gate, Upgrade};
use rafter::upgrade::{self, Changes, OPERATION, Step, plan_steps, step_named};
use time::OffsetDateTime;

use crate::cli::args::UpgradeClusterArgs;
use crate::cli::aws_apply::renewing;
use crate::cli::failure::{EXIT_FAILURE, EXIT_INVALID_SPEC, Failure, step_stopped};
use crate::cli::{acquire_lock, force_unlock, locked, output, settings};

use super::admin_credential::drainer as api_drainer;
use super::stored_cluster;
use super::upgrade_cluster_aws::AwsUpgrade;

const COMMAND: &str = "upgrade cluster";

pub async fn run(state: Option<&str>, args: UpgradeClusterArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let name = args.name.as_str();
    let stored = stored_cluster::load(&store, name).await?.cluster;
    super::update_members_aws::refuse_while_unfinished(&store, name, "upgrade cluster").await?;
    let unfinished = Journal::load(store.store(), name, OPERATION)
        .await?
        .filter(|journal| !journal.finished());
    let asked = target_asked(&store, name, &args).await?;
    let target = match (&unfinished, asked) {
        (Some(journal), asked) => {
            continuing(name, &store.config_base(name), journal, asked.as_ref())?
        }
        (None, Some(target)) => target,
        (None, None) => {
            return Err(Failure::new(
                EXIT_FAILURE,
                format!("no upgrade of cluster {name} was asked for"),
            )
            .hint("give --kubernetes-version, --etcd-version or -f SPEC with the new versions")
            .into());
        }
    };
    let changes = allowed(name, &stored, &target)?;
    if changes.is_empty() {
        println!(
            "Cluster {name} runs Kubernetes {} and etcd {} already: nothing to upgrade.",
            stored.spec.kubernetes_version, stored.spec.etcd.version
        );
        return Ok(());
    }
    if stored.spec.provider == Provider::Aws {
        return super::upgrade_cluster_aws::run(AwsUpgrade {
            store: &store,
            args: &args,
            from: &stored,
            to: &target,
            changes: &changes,
            unfinished: unfinished.as_ref(),
        })
        .await;
    }
    let steps = steps_for(&target, &changes, args.max_unavailable as usize);
    let drain = drainer(&store, &target, &args, &steps).await?;
    let hosts = connect::every_host(&target, args.hosts.accept_new_host_keys).await?;
    let outcome = async {
        let drain_within = drain.as_ref().map(|drainer| drainer.within);
        print_plan(
            name,
            &changes,
            &target,
            &steps,
            unfinished.as_ref(),
            drain_within,
        );
        let upgrade = Upgrade {
            store: store.store(),
            target: &target,
            hosts: &hosts,
            gate: Gate::default(),
            drain,
        };
        let remaining: Vec<&Step> = steps
            .iter()
            .filter(|step| !unfinished.as_ref().is_some_and(|j| j.is_done(&step.key())))
            .collect();
        if !args.yes {
            upgrade
                .check(&remaining)
                .await
                .map_err(|error| refused(name, error))?;
            println!("Preflight: every host reachable, etcd healthy, room for the new assets.");
            eprintln!("Nothing was changed. Run the same command with --yes to upgrade.");
            return Ok(());
        }
        execute(&store, name, &args, &upgrade, &changes, &steps, &target).await
    }
    .await;
    hosts.close().await;
    outcome
}

/// The API access that drains workers, unless `--no-drain` or no worker has a step.
async fn drainer(
    store: &ClusterStore<AnyStore>,
    target: &Cluster,
    args: &UpgradeClusterArgs,
    steps: &[Step],
) -> anyhow::Result<Option<Drainer>> {
    let workers_change = steps
        .iter()
        .any(|step| matches!(step, Step::Workers { .. }));
    if args.no_drain || !workers_change {
        return Ok(None);
    }
    Ok(Some(
        api_drainer(store, target, "rafter:upgrade", &args.drain_timeout).await?,
    ))
}

/// The spec the arguments ask for (`-f` and the version flags over the stored spec), if they
/// ask for anything.
async fn target_asked<S: StateStore>(
    store: &ClusterStore<S>,
    name: &str,
    args: &UpgradeClusterArgs,
) -> anyhow::Result<Option<Cluster>> {
    if args.file.is_none() && args.kubernetes_version.is_none() && args.etcd_version.is_none() {
        return Ok(None);
    }
    let flags = SpecFlags {
        kubernetes_version: args.kubernetes_version.clone(),
        etcd_version: args.etcd_version.clone(),
        ..SpecFlags::default()
    };
    let prepared = match &args.file {
        Some(file) => spec::load(
            &SpecSources {
                file: Some(file.clone()),
                flags,
                ..SpecSources::default()
            },
            Some(&store.config_base(name)),
        )?,
        None => {
            let text = store
                .read_spec(name)
                .await?
                .ok_or_else(|| Failure::cluster_not_found(name, &store.url()))?;
            let mut document = parse_stored(&text, &rafter::state::layout::spec_key(name))?;
            apply_flags(&mut document, &flags);
            spec::prepare(&document, Some(&store.config_base(name)))?
        }
    };
    output::print_warnings(&prepared.warnings);
    if prepared.cluster.metadata.name != name {
        return Err(Failure::new(
            EXIT_INVALID_SPEC,
            format!(
                "the spec describes cluster {}, not {name}",
                prepared.cluster.metadata.name
            ),
        )
        .into());
    }
    Ok(Some(prepared.cluster))
}

/// The target of the unfinished upgrade `journal`; refuses a different one.
fn continuing(
    name: &str,
    config_base: &str,
    journal: &Journal,
    asked: Option<&Cluster>,
) -> anyhow::Result<Cluster> {
    let target = stored_cluster::journal_target(name, config_base, journal, "upgrade")?;
    if let Some(asked) = asked {
        let versions = |cluster: &Cluster| {
            (
                cluster.spec.kubernetes_version.clone(),
                cluster.spec.etcd.version.clone(),
            )
        };
        if versions(asked) != versions(&target) {
            return Err(Failure::new(
                EXIT_FAILURE,
                format!(
                    "an upgrade of cluster {name} to {} (started {}) is unfinished; its next step is `{}`",
                    journal.subject,
                    journal.started_at,
                    journal.remaining().first().copied().unwrap_or_default()
                ),
            )
            .hint(format!("finish it first: `rafter upgrade cluster {name} --yes`"))
            .into());
        }
    }
    Ok(target)
}

/// The version change from `stored` to `target`, or every rule it breaks.
fn allowed(name: &str, stored: &Cluster, target: &Cluster) -> anyhow::Result<Changes> {
    let listed: Vec<_> = rafter::bootstrap::assets::listed_versions("etcd")?
        .iter()
        .filter_map(|version| parse_etcd_version(version).ok())
        .collect();
    upgrade::check(stored, target, &listed).map_err(|refusals| {
        Failure::new(
            EXIT_INVALID_SPEC,
            format!(
                "the upgrade of cluster {name} is refused; nothing was changed:\n  {}",
                refusals
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ),
        )
        .into()
    })
}

/// The steps over the spec's hosts: control plane in spec order, workers in batches.
fn steps_for(target: &Cluster, changes: &Changes, max_unavailable: usize) -> Vec<Step> {
    let hosts = rafter::hosts::inventory::hosts(target);
    let (control_plane, workers): (Vec<_>, Vec<_>) =
        hosts.iter().partition(|entry| entry.is_control_plane());
    let names = |entries: Vec<&rafter::hosts::inventory::HostEntry>| -> Vec<String> {
        entries
            .iter()
            .map(|entry| entry.name().to_string())
            .collect()
    };
    plan_steps(
        changes,
        &names(control_plane),
        &names(workers),
        max_unavailable,
    )
}

fn refused(name: &str, error: rafter::upgrade::execute::UpgradeError) -> anyhow::Error {
    Failure::new(EXIT_FAILURE, error.to_string())
        .hint(format!(
            "fix what it names, then run `rafter upgrade cluster {name}` again"
        ))
        .into()
}

async fn execute<S: StateStore>(
    store: &ClusterStore<S>,
    name: &str,
    args: &UpgradeClusterArgs,
    upgrade: &Upgrade<'_, S>,
    changes: &Changes,
    steps: &[Step],
    target: &Cluster,
) -> anyhow::Result<()> {
    let mut lock = acquire_lock(
        store.store(),
        name,
        COMMAND,
        &force_unlock(&args.force_unlock),
    )
    .await?;
    let work = async {
        // Read again under the lock: another run may have moved the upgrade on.
        let now = OffsetDateTime::now_utc();
        let mut journal = match Journal::load(store.store(), name, OPERATION)
            .await?
            .filter(|journal| !journal.finished())
        {
            Some(journal) => journal,
            None => {
                let mut journal = Journal::new(
                    OPERATION,
                    &changes.describe(),
                    &rafter::backup::record::backup_id(now),
                    &rafter::backup::record::rfc3339(now),
                    steps.iter().map(Step::key).collect(),
                );
                journal.target = Some(spec::to_yaml(target)?);
                journal
            }
        };
        if journal
            .steps
            .iter()
            .any(|key| step_named(steps, key).is_none())
        {
            return Err(Failure::new(
                EXIT_FAILURE,
                format!("the unfinished upgrade of cluster {name} was planned for other hosts than the spec names now"),
            )
            .hint("put the spec's hosts back as they were and run the upgrade again")
            .into());
        }
        let remaining: Vec<&Step> = steps
            .iter()
            .filter(|step| !journal.is_done(&step.key()))
            .collect();
        // A refused preflight leaves no journal behind: nothing was started.
        let preflight = upgrade
            .preflight(&remaining)
            .await
            .map_err(|error| refused(name, error))?;
        journal.save(store.store(), name).await?;
        eprintln!(
            "Preflight passed: every host reachable, etcd healthy, the new assets verified on every host."
        );
        let total = journal.steps.len();
        for (index, key) in journal.steps.clone().iter().enumerate() {
            if journal.is_done(key) {
                continue;
            }
            let Some(step) = step_named(steps, key) else {
                continue;
            };
            eprintln!("[{}/{total}] {}", index + 1, step.describe());
            let said = match step {
                Step::StoreSpec => {
                    store.replace_spec(name, &spec::to_yaml(target)?).await?;
                    "the new spec is stored".to_string()
                }
                _ => upgrade
                    .run(step, &preflight)
                    .await
                    .map(|done| done.to_string())
                    .map_err(|error| {
                        step_stopped(
                            "upgrade",
                            name,
                            index + 1,
                            key,
                            error,
                            &format!("rafter upgrade cluster {name} --yes"),
                        )
                    })?,
            };
            eprintln!("      {said}");
            journal.record(store.store(), name, key).await?;
        }
        anyhow::Ok(())
    };
    let outcome = renewing(&mut lock, work).await.and_then(|done| done);
    lock.release().await.map_err(locked)?;
    outcome?;
    eprintln!("Upgraded cluster {name}: {}.", changes.describe());
    Ok(())
}

fn print_plan(
    name: &str,
    changes: &Changes,
    target: &Cluster,
    steps: &[Step],
    unfinished: Option<&Journal>,
    drain_within: Option<std::time::Duration>,
) {
    println!("Upgrade cluster {name}: {}.", changes.describe());
    let members = rafter::hosts::inventory::hosts(target)
        .iter()
        .filter(|entry| entry.is_control_plane())
        .count();
    let tolerates = members.saturating_sub(1) / 2;
    println!(
        "etcd has {members} member(s) and tolerates {tolerates} down; each step restarts at most one member, so {} of {members} stay up (tolerating {} more).",
        members.saturating_sub(1),
        (members.saturating_sub(1)).saturating_sub(members / 2 + 1)
    );
    println!(
        "Before the first step: every host reachable, etcd healthy (the spec's members, one cluster, a leader, caught up, no alarms), {} MiB free, the new assets verified on every host.",
        rafter::upgrade::execute::MIN_FREE_MB
    );
    println!(
        "After each step a gate: the cluster validates {} times in a row (at most {} s), or the upgrade stops there.",
        Gate::default().passes,
        Gate::default().within.as_secs()
    );
    if steps
        .iter()
        .any(|step| matches!(step, Step::Workers { .. }))
    {
        match drain_within {
            Some(within) => println!(
                "Workers: cordoned and drained through the API (evictions honour PodDisruptionBudgets; at most {} s per node) before their kubelet is replaced, uncordoned after their gate.",
                within.as_secs()
            ),
            None => println!(
                "Workers: NOT drained (--no-drain): their pods stop while the kubelet restarts."
            ),
        }
    }
    crate::cli::output::print_journalled_steps(
        "upgrade",
        steps.iter().map(|step| (step.key(), step.describe())),
        unfinished,
    );
}
