//! `rafter rolling-update cluster NAME`: the plan (which instances are replaced, why, and
//! the gates), and with `--yes` the replacements under the cluster lock: control-plane
//! members one at a time, then node groups `--max-surge` instances at a time, drained
//! first; journalled so that running the same command again after a kill or a failed gate
//! continues at the first unfinished step.

use rafter::aws::AwsProvisioner;
use rafter::rolling::execute::{Gate, Roll, group_states};
use rafter::rolling::{self, Batch, OPERATION};
use rafter::spec::{Cluster, Provider};
use rafter::state::journal::Journal;
use rafter::state::{AnyStore, ClusterStore};
use rafter::upgrade::drain::Drainer;
use time::OffsetDateTime;

use crate::cli::args::RollingUpdateClusterArgs;
use crate::cli::aws_apply::{aws_config, aws_region, renewing};
use crate::cli::failure::{EXIT_FAILURE, EXIT_NOT_AVAILABLE, EXIT_USAGE, Failure, step_stopped};
use crate::cli::{acquire_lock, force_unlock, locked, output, settings};

use super::admin_credential::drainer;
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
    super::update_members_aws::refuse_while_unfinished(&store, name, "rolling-update cluster")
        .await?;
    let config = aws_config(aws_region(&cluster)?).await;
    let provisioner = AwsProvisioner::new(&config, name);
    let roll = Roll {
        context: &provisioner.context,
        store: store.store(),
        cluster: name,
        members: rolling::members(&cluster),
        gate: Gate::default(),
    };
    let groups = group_states(
        &provisioner.context,
        &recorded_groups(&store, &cluster).await?,
    )
    .await
    .map_err(|error| Failure::new(EXIT_FAILURE, format!("cannot ask AWS: {error}")))?;
    let groups = roll
        .with_bundles(groups)
        .await
        .map_err(|error| Failure::new(EXIT_FAILURE, error.to_string()))?;
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
    let steps: Vec<Batch> = match &unfinished {
        Some(journal) => journal
            .steps
            .iter()
            .filter_map(|key| rolling::batch_from_key(key, &groups))
            .collect(),
        None => rolling::batches(
            rolling::plan(&groups, &args.instance_groups, args.force),
            args.max_surge as usize,
        ),
    };
    let workers = steps.iter().any(|step| step.member().is_none());
    let drain = match workers && !args.no_drain {
        true => Some(
            drainer(
                &store,
                &cluster,
                "rafter:rolling-update",
                &args.drain_timeout,
            )
            .await?,
        ),
        false => None,
    };
    print_plan(
        name,
        &steps,
        &roll.gate,
        unfinished.as_ref(),
        drain.as_ref(),
    );
    if steps.is_empty() {
        println!(
            "Nothing to replace: every instance runs its group's launch template, and every member the bundle published for it."
        );
        return Ok(());
    }
    if !args.yes {
        roll.check().await.map_err(|error| refused(name, error))?;
        println!("Now: every member reports its etcd healthy.");
        eprintln!("Nothing was changed. Run the same command with --yes to replace.");
        return Ok(());
    }
    execute(&store, name, &args, &roll, &steps, drain.as_ref()).await
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
    steps: &[Batch],
    drain: Option<&Drainer>,
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
                &format!("{} step(s)", steps.len()),
                &rafter::backup::record::backup_id(now),
                &rafter::backup::record::rfc3339(now),
                steps.iter().map(Batch::key).collect(),
            ),
        };
        journal.save(store.store(), name).await?;
        let total = steps.len();
        for (index, step) in steps.iter().enumerate() {
            let key = step.key();
            if journal.is_done(&key) {
                continue;
            }
            eprintln!("[{}/{total}] {}", index + 1, describe(step));
            let replaced = match step.member() {
                Some(_) => roll.replace(&step.replacements[0]).await,
                None => roll.replace_workers(step, drain).await,
            };
            let said = replaced.map_err(|error| {
                step_stopped(
                    "rolling update",
                    name,
                    index + 1,
                    &key,
                    error,
                    &format!("rafter rolling-update cluster {name} --yes"),
                )
            })?;
            eprintln!("      {said}");
            journal.record(store.store(), name, &key).await?;
        }
        anyhow::Ok(())
    };
    let outcome = renewing(&mut lock, work).await.and_then(|done| done);
    lock.release().await.map_err(locked)?;
    outcome?;
    let instances: usize = steps.iter().map(|step| step.replacements.len()).sum();
    eprintln!("Rolled cluster {name}: {instances} instance(s) replaced.");
    Ok(())
}

/// A step as the plan and the progress show it: what it replaces and why.
fn describe(step: &Batch) -> String {
    let reasons: std::collections::BTreeSet<&str> = step
        .replacements
        .iter()
        .map(|replacement| replacement.reason.as_str())
        .collect();
    format!(
        "{}: {}",
        step.key(),
        reasons.into_iter().collect::<Vec<_>>().join("; ")
    )
}

fn print_plan(
    name: &str,
    steps: &[Batch],
    gate: &Gate,
    unfinished: Option<&Journal>,
    drain: Option<&Drainer>,
) {
    let members = steps.iter().filter(|step| step.member().is_some()).count();
    println!(
        "Rolling update of cluster {name}: {} step(s), one at a time: {members} control-plane member(s), then node groups.",
        steps.len()
    );
    if members > 0 {
        println!(
            "Members: before each, every member reports its etcd healthy; its instance is terminated through its auto-scaling group and the new one attaches the member's data volume and comes back as the same member. After each, a gate: the member reports from its new instance, it and every other member healthy and caught up, {} reports in a row (within {} s), or the update stops there.",
            gate.passes,
            gate.within.as_secs()
        );
    }
    if members < steps.len() {
        println!(
            "Node groups, --max-surge instances at a time: detached from their group (which launches their replacements at once), the group back to its desired capacity in service (within {} s), then each node {}, and the instance terminated.",
            gate.within.as_secs(),
            match drain {
                Some(drainer) => format!(
                    "cordoned and drained through the API (evictions honour PodDisruptionBudgets; at most {} s)",
                    drainer.within.as_secs()
                ),
                None => "NOT drained (--no-drain)".to_string(),
            }
        );
    }
    output::print_journalled_steps(
        "rolling update",
        steps.iter().map(|step| (step.key(), describe(step))),
        unfinished,
    );
}
