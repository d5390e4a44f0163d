//! `rafter rolling-update cluster NAME`: the plan (which control-plane members' instances are
//! replaced, why, and the gates), and with `--yes` the replacements under the cluster lock,
//! one member at a time, journalled so that running the same command again after a kill or
//! a failed gate continues at the first unfinished member.

use rafter::aws::AwsProvisioner;
use rafter::rolling::execute::{Gate, Roll, group_states};
use rafter::rolling::{self, GroupState, OPERATION, Replacement};
use rafter::spec::{Cluster, Provider};
use rafter::state::journal::Journal;
use rafter::state::{AnyStore, ClusterStore};
use time::OffsetDateTime;

use crate::cli::args::RollingUpdateClusterArgs;
use crate::cli::aws_apply::{aws_config, aws_region, renewing};
use crate::cli::failure::{EXIT_FAILURE, EXIT_NOT_AVAILABLE, EXIT_USAGE, Failure};
use crate::cli::{acquire_lock, force_unlock, locked, output, settings};

use super::stored_cluster;

const COMMAND: &str = "rolling-update cluster";

pub async fn run(state: Option<&str>, args: RollingUpdateClusterArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let name = args.name.as_str();
    let cluster = stored_cluster::load(&store, name).await?.cluster;
    if cluster.spec.provider != Provider::Aws {
        return Err(Failure::new(
            EXIT_NOT_AVAILABLE,
            format!("cluster {name} runs on bare hosts: there are no instances to replace"),
        )
        .hint(format!(
            "`rafter upgrade cluster {name}` restarts components in place, one host at a time"
        ))
        .into());
    }
    let config = aws_config(aws_region(&cluster)?).await;
    let provisioner = AwsProvisioner::new(&config, name);
    let groups = group_states(
        &provisioner.context,
        &recorded_groups(&store, &cluster).await?,
    )
    .await
    .map_err(|error| Failure::new(EXIT_FAILURE, format!("cannot ask AWS: {error}")))?;
    let unknown = rolling::unknown_groups(&groups, &args.instance_groups);
    if !unknown.is_empty() {
        return Err(Failure::new(
            EXIT_USAGE,
            format!(
                "--instance-group {}: no such group in cluster {name}",
                unknown.join(", ")
            ),
        )
        .hint(format!(
            "name a control-plane member ({}) or an auto-scaling group",
            rolling::members(&cluster).join(", ")
        ))
        .into());
    }
    let unfinished = Journal::load(store.store(), name, OPERATION)
        .await?
        .filter(|journal| !journal.finished());
    let (members_groups, node_groups): (Vec<GroupState>, Vec<GroupState>) =
        groups.into_iter().partition(|group| group.member.is_some());
    let steps: Vec<Replacement> = match &unfinished {
        Some(journal) => journal
            .steps
            .iter()
            .filter_map(|key| rolling::from_key(key, &members_groups))
            .collect(),
        None => rolling::plan(&members_groups, &args.instance_groups, args.force),
    };
    let roll = Roll {
        context: &provisioner.context,
        store: store.store(),
        cluster: name,
        members: rolling::members(&cluster),
        gate: Gate::default(),
    };
    print_plan(name, &steps, &node_groups, &roll.gate, unfinished.as_ref());
    if steps.is_empty() {
        println!("Nothing to replace: every member runs its group's launch template.");
        return Ok(());
    }
    if !args.yes {
        roll.check().await.map_err(|error| refused(name, error))?;
        println!("Now: every member reports its etcd healthy.");
        eprintln!("Nothing was changed. Run the same command with --yes to replace.");
        return Ok(());
    }
    execute(&store, name, &args, &roll, &steps).await
}

/// Every recorded auto-scaling group's AWS name, with the member it holds (members first);
/// refused when there is none: the cluster was never applied.
pub(crate) async fn recorded_groups(
    store: &ClusterStore<AnyStore>,
    cluster: &Cluster,
) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let name = &cluster.metadata.name;
    let groups = rolling::recorded_groups(&store.read_resources(name).await?, cluster);
    if groups.is_empty() {
        return Err(Failure::new(
            EXIT_FAILURE,
            format!("cluster {name} has no auto-scaling groups recorded: it was never applied"),
        )
        .hint(format!("`rafter update cluster {name} --yes`"))
        .into());
    }
    Ok(groups)
}

fn refused(name: &str, error: rafter::rolling::execute::RollError) -> anyhow::Error {
    Failure::new(EXIT_FAILURE, error.to_string())
        .hint(format!(
            "fix what it names, then run `rafter rolling-update cluster {name}` again"
        ))
        .into()
}

async fn execute(
    store: &ClusterStore<AnyStore>,
    name: &str,
    args: &RollingUpdateClusterArgs,
    roll: &Roll<'_, AnyStore>,
    steps: &[Replacement],
) -> anyhow::Result<()> {
    let mut lock = acquire_lock(
        store.store(),
        name,
        COMMAND,
        &force_unlock(&args.force_unlock),
    )
    .await?;
    let work = async {
        let now = OffsetDateTime::now_utc();
        let mut journal = match Journal::load(store.store(), name, OPERATION)
            .await?
            .filter(|journal| !journal.finished())
        {
            Some(journal) => journal,
            None => Journal::new(
                OPERATION,
                &format!("{} control-plane member(s)", steps.len()),
                &rafter::backup::record::backup_id(now),
                &rafter::backup::record::rfc3339(now),
                steps.iter().map(Replacement::key).collect(),
            ),
        };
        journal.save(store.store(), name).await?;
        let total = steps.len();
        for (index, step) in steps.iter().enumerate() {
            let key = step.key();
            if journal.is_done(&key) {
                continue;
            }
            eprintln!("[{}/{total}] {key}: {}", index + 1, step.reason);
            let said = roll.replace(step).await.map_err(|error| {
                Failure::new(
                    EXIT_FAILURE,
                    format!(
                        "the rolling update of cluster {name} stopped at step {} ({key}): {error}",
                        index + 1
                    ),
                )
                .hint(format!(
                    "fix the cause and run `rafter rolling-update cluster {name} --yes` again: it continues from this step"
                ))
            })?;
            eprintln!("      {said}");
            journal.record(store.store(), name, &key).await?;
        }
        anyhow::Ok(())
    };
    let outcome = renewing(&mut lock, work).await.and_then(|done| done);
    lock.release().await.map_err(locked)?;
    outcome?;
    eprintln!("Rolled cluster {name}: {} member(s) replaced.", steps.len());
    Ok(())
}

fn print_plan(
    name: &str,
    steps: &[Replacement],
    node_groups: &[GroupState],
    gate: &Gate,
    unfinished: Option<&Journal>,
) {
    println!(
        "Rolling update of cluster {name}: {} control-plane member(s) to replace, one at a time.",
        steps.len()
    );
    println!(
        "Before each: every member reports its etcd healthy. Each member's instance is terminated through its auto-scaling group; the new one attaches the member's data volume and comes back as the same member."
    );
    println!(
        "After each, a gate: the member reports from its new instance, it and every other member healthy and caught up, {} reports in a row (within {} s), or the update stops there.",
        gate.passes,
        gate.within.as_secs()
    );
    output::print_journalled_steps(
        "rolling update",
        steps
            .iter()
            .map(|step| (step.key(), format!("{}: {}", step.key(), step.reason))),
        unfinished,
    );
    for group in node_groups {
        let stale = group
            .instances
            .iter()
            .filter(|instance| instance.version != group.version)
            .count();
        if stale > 0 {
            println!(
                "Node group {}: {stale} instance(s) on an older launch template; not replaced (rolling node groups is not built yet): new instances get the current one.",
                group.group
            );
        }
    }
}
