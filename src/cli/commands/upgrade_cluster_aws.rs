//! `rafter upgrade cluster NAME` on AWS: the plan (each control-plane member alone, then the
//! node groups, then the spec), and with `--yes` the upgrade under the cluster lock,
//! journalled step by step like the bare-host upgrade.
//!
//! A member's step moves its launch template and bundle, and no one else's, to the new
//! versions (`upgrade::staging`), replaces its instance through its group of one (the new
//! instance attaches the member's data volume and comes back as the same member), and waits
//! for the gate on the members' own reports (`rolling`). The node groups' launch templates
//! and bundles stay on the old versions until every member is done; then they move, and
//! their instances on the old versions are replaced `--max-surge` at a time, drained first
//! (the rolling update's worker batches, planned when the step starts and added to the
//! journal then, so a rerun finishes the batch a kill interrupted).

use rafter::aws::AwsProvisioner;
use rafter::model::compute::node_group_local;
use rafter::model::naming::Naming;
use rafter::rolling::execute::{Gate, Roll, group_states};
use rafter::rolling::{self, Batch, GroupState};
use rafter::spec::{self, Cluster};
use rafter::state::journal::Journal;
use rafter::state::{AnyStore, ClusterLock, ClusterStore};
use rafter::upgrade::drain::Drainer;
use rafter::upgrade::staging::{AwsStep, Staging, aws_steps};
use rafter::upgrade::{Changes, OPERATION};
use time::OffsetDateTime;

use crate::cli::args::UpgradeClusterArgs;
use crate::cli::aws_apply::{
    StepApply, apply_step, aws_config, aws_region, renewing, require_state_in_s3,
};
use crate::cli::failure::{EXIT_FAILURE, Failure, step_stopped};
use crate::cli::{acquire_lock, force_unlock, locked, output};

use super::admin_credential::drainer;
use super::rolling_update_cluster::recorded_groups;

const COMMAND: &str = "upgrade cluster";

/// What an AWS upgrade works with: the spec it starts from (stored until the last step) and
/// the one it brings the cluster to.
pub struct AwsUpgrade<'a> {
    pub store: &'a ClusterStore<AnyStore>,
    pub args: &'a UpgradeClusterArgs,
    pub from: &'a Cluster,
    pub to: &'a Cluster,
    pub changes: &'a Changes,
    pub unfinished: Option<&'a Journal>,
}

pub async fn run(upgrade: AwsUpgrade<'_>) -> anyhow::Result<()> {
    let name = upgrade.to.metadata.name.as_str();
    let region = aws_region(upgrade.to)?;
    require_state_in_s3(upgrade.to)?;
    let config = aws_config(region).await;
    let provisioner = AwsProvisioner::new(&config, name);
    let steps = aws_steps(upgrade.to);
    let roll = Roll {
        context: &provisioner.context,
        store: upgrade.store.store(),
        cluster: name,
        members: rolling::members(upgrade.to),
        gate: Gate::default(),
    };
    print_plan(&upgrade, &steps, &roll.gate);
    if !upgrade.args.yes {
        roll.check().await.map_err(|error| refused(name, error))?;
        println!("Now: every member reports its etcd healthy.");
        eprintln!("Nothing was changed. Run the same command with --yes to upgrade.");
        return Ok(());
    }
    let mut lock = acquire_lock(
        upgrade.store.store(),
        name,
        COMMAND,
        &force_unlock(&upgrade.args.force_unlock),
    )
    .await?;
    let outcome = execute(&upgrade, region, &roll, &steps, &mut lock).await;
    lock.release().await.map_err(locked)?;
    outcome?;
    eprintln!("Upgraded cluster {name}: {}.", upgrade.changes.describe());
    Ok(())
}

async fn execute(
    upgrade: &AwsUpgrade<'_>,
    region: &str,
    roll: &Roll<'_, AnyStore>,
    steps: &[AwsStep],
    lock: &mut ClusterLock<'_, AnyStore>,
) -> anyhow::Result<()> {
    let (store, name) = (upgrade.store, upgrade.to.metadata.name.as_str());
    // Read again under the lock: another run may have moved the upgrade on.
    let now = OffsetDateTime::now_utc();
    let mut journal = match Journal::load(store.store(), name, OPERATION)
        .await?
        .filter(|journal| !journal.finished())
    {
        Some(journal) => journal,
        None => {
            // A refused preflight leaves no journal behind: nothing was started.
            renewing(lock, roll.check())
                .await?
                .map_err(|error| refused(name, error))?;
            let mut journal = Journal::new(
                OPERATION,
                &upgrade.changes.describe(),
                &rafter::backup::record::backup_id(now),
                &rafter::backup::record::rfc3339(now),
                steps.iter().map(AwsStep::key).collect(),
            );
            journal.target = Some(spec::to_yaml(upgrade.to)?);
            journal
        }
    };
    let planned: Vec<String> = steps.iter().map(AwsStep::key).collect();
    // The worker batches the node-group step added are not part of the plan's steps.
    let journalled: Vec<&String> = journal
        .steps
        .iter()
        .filter(|key| planned.contains(key))
        .collect();
    if journalled != planned.iter().collect::<Vec<_>>() {
        return Err(Failure::new(
            EXIT_FAILURE,
            format!("the unfinished upgrade of cluster {name} was planned for other control-plane members than the spec names now"),
        )
        .hint("put spec.controlPlane and spec.networking.zones back as they were and run the upgrade again")
        .into());
    }
    journal.save(store.store(), name).await?;
    let total = steps.len();
    for (index, step) in steps.iter().enumerate() {
        let key = step.key();
        let stopped = |error: rafter::rolling::execute::RollError| {
            step_stopped(
                "upgrade",
                name,
                index + 1,
                &key,
                error,
                &format!("rafter upgrade cluster {name} --yes"),
            )
        };
        let workers_left =
            matches!(step, AwsStep::NodeGroups) && !pending_batches(&journal, &planned).is_empty();
        if journal.is_done(&key) && !workers_left {
            continue;
        }
        eprintln!("[{}/{total}] {}", index + 1, step.describe());
        let staging = Staging::at(upgrade.from, upgrade.to, steps, index);
        let said = match step {
            AwsStep::Member { member } => {
                stage(store, lock, region, &staging).await?;
                let group = member_group(store, upgrade.to, roll, member).await?;
                renewing(lock, roll.bring_up_to_date(&group))
                    .await?
                    .map_err(&stopped)?
            }
            AwsStep::NodeGroups => {
                if !journal.is_done(&key) {
                    stage(store, lock, region, &staging).await?;
                    let batches = worker_batches(store, upgrade.to, roll, upgrade.args).await?;
                    journal.insert_after(&key, batches.iter().map(Batch::key).collect());
                    journal.record(store.store(), name, &key).await?;
                }
                let pending = pending_batches(&journal, &planned);
                let drain = match pending.is_empty() || upgrade.args.no_drain {
                    true => None,
                    false => Some(
                        drainer(
                            store,
                            upgrade.to,
                            "rafter:upgrade",
                            &upgrade.args.drain_timeout,
                        )
                        .await?,
                    ),
                };
                let groups = node_group_states(store, upgrade.to, roll).await?;
                for batch_key in &pending {
                    let batch = rolling::batch_from_key(batch_key, &groups).ok_or_else(|| {
                        Failure::new(
                            EXIT_FAILURE,
                            format!("cluster {name}: the group of `{batch_key}` is gone"),
                        )
                        .hint(format!(
                            "`rafter update cluster {name} --yes` creates it again; then run the upgrade again"
                        ))
                    })?;
                    eprintln!("      {batch_key}");
                    let replaced = renewing(lock, roll.replace_workers(&batch, drain.as_ref()))
                        .await?
                        .map_err(&stopped)?;
                    eprintln!("      {replaced}");
                    journal.record(store.store(), name, batch_key).await?;
                }
                workers_said(&pending, drain.as_ref())
            }
            AwsStep::StoreSpec => {
                store
                    .replace_spec(name, &spec::to_yaml(upgrade.to)?)
                    .await?;
                "the new spec is stored".to_string()
            }
        };
        eprintln!("      {said}");
        journal.record(store.store(), name, &key).await?;
    }
    Ok(())
}

/// The worker batches the node-group step added to the journal and has not finished.
fn pending_batches(journal: &Journal, planned: &[String]) -> Vec<String> {
    journal
        .steps
        .iter()
        .filter(|key| !planned.contains(key) && !journal.is_done(key))
        .cloned()
        .collect()
}

fn workers_said(batches: &[String], drain: Option<&Drainer>) -> String {
    match batches.len() {
        0 => "node groups: every instance runs the new versions".to_string(),
        count => format!(
            "node groups: the new versions, and their instances on the old ones replaced in {count} batch(es){}",
            if drain.is_some() {
                ", each node drained first"
            } else {
                " (not drained: --no-drain)"
            }
        ),
    }
}

/// Applies `staging`'s graph (launch templates of the upgraded groups on the new versions,
/// the others as they were) and publishes its bundles the same way.
async fn stage(
    store: &ClusterStore<AnyStore>,
    lock: &mut ClusterLock<'_, AnyStore>,
    region: &str,
    staging: &Staging<'_>,
) -> anyhow::Result<()> {
    let graph = staging.graph()?;
    apply_step(
        store,
        lock,
        &StepApply {
            cluster: staging.to,
            region,
            operation: COMMAND,
            graph: &graph,
            spec_of: &|owner| staging.spec_of(owner),
            resume: &format!("rafter upgrade cluster {} --yes", staging.to.metadata.name),
        },
    )
    .await?;
    Ok(())
}

/// `member`'s group as Auto Scaling describes it now.
async fn member_group(
    store: &ClusterStore<AnyStore>,
    cluster: &Cluster,
    roll: &Roll<'_, AnyStore>,
    member: &str,
) -> anyhow::Result<GroupState> {
    let groups: Vec<(String, Option<String>)> = recorded_groups(store, cluster)
        .await?
        .into_iter()
        .filter(|(_, holds)| holds.as_deref() == Some(member))
        .collect();
    let states = group_states(roll.context, &groups)
        .await
        .map_err(|error| Failure::new(EXIT_FAILURE, format!("cannot ask AWS: {error}")))?;
    roll.with_bundles(states)
        .await
        .map_err(|error| Failure::new(EXIT_FAILURE, error.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Failure::new(
                EXIT_FAILURE,
                format!(
                    "member {member} of cluster {}: its auto-scaling group is gone",
                    cluster.metadata.name
                ),
            )
            .hint(format!(
                "`rafter update cluster {} --yes` creates it again",
                cluster.metadata.name
            ))
            .into()
        })
}

/// The node groups' auto-scaling groups as Auto Scaling describes them now, with their
/// bundles (the bastion, which runs no kubelet, is not one of them).
async fn node_group_states(
    store: &ClusterStore<AnyStore>,
    cluster: &Cluster,
    roll: &Roll<'_, AnyStore>,
) -> anyhow::Result<Vec<GroupState>> {
    let naming = Naming::new(&cluster.metadata.name);
    let node_groups: Vec<String> = cluster
        .spec
        .node_groups
        .iter()
        .map(|group| naming.qualified(&node_group_local(&group.name)))
        .collect();
    let groups: Vec<(String, Option<String>)> = recorded_groups(store, cluster)
        .await?
        .into_iter()
        .filter(|(group, _)| node_groups.contains(group))
        .collect();
    let states = group_states(roll.context, &groups)
        .await
        .map_err(|error| Failure::new(EXIT_FAILURE, format!("cannot ask AWS: {error}")))?;
    Ok(roll
        .with_bundles(states)
        .await
        .map_err(|error| Failure::new(EXIT_FAILURE, error.to_string()))?)
}

/// The node groups' instances on the old versions, `--max-surge` at a time.
async fn worker_batches(
    store: &ClusterStore<AnyStore>,
    cluster: &Cluster,
    roll: &Roll<'_, AnyStore>,
    args: &UpgradeClusterArgs,
) -> anyhow::Result<Vec<Batch>> {
    let groups = node_group_states(store, cluster, roll).await?;
    Ok(rolling::batches(
        rolling::plan(&groups, &[], false),
        args.max_surge as usize,
    ))
}

fn refused(name: &str, error: rafter::rolling::execute::RollError) -> anyhow::Error {
    Failure::new(EXIT_FAILURE, error.to_string())
        .hint(format!(
            "fix what it names, then run `rafter upgrade cluster {name}` again"
        ))
        .into()
}

fn print_plan(upgrade: &AwsUpgrade<'_>, steps: &[AwsStep], gate: &Gate) {
    let name = &upgrade.to.metadata.name;
    println!("Upgrade cluster {name}: {}.", upgrade.changes.describe());
    println!(
        "Control-plane members one at a time: each gets a new launch template version and bundle, its instance is replaced through its auto-scaling group, and the new instance attaches the member's data volume and comes back as the same member."
    );
    println!(
        "Before the first: every member reports its etcd healthy. After each, a gate: the member reports from its new instance, it and every other member healthy and caught up, {} reports in a row (within {} s), or the upgrade stops there.",
        gate.passes,
        gate.within.as_secs()
    );
    println!(
        "Until every member is done, the node groups keep the old versions' launch templates and bundles: an instance they launch meanwhile runs no kubelet newer than an API server."
    );
    println!(
        "Then the node groups move to the new versions, and their instances on the old ones are replaced {} at a time (--max-surge): the replacements launched and in service first, then each node {}, and the instance terminated. The bastion runs no kubelet: `rafter rolling-update cluster {name}` replaces it.",
        upgrade.args.max_surge,
        if upgrade.args.no_drain {
            "NOT drained (--no-drain)"
        } else {
            "cordoned and drained through the API"
        }
    );
    output::print_journalled_steps(
        "upgrade",
        steps.iter().map(|step| (step.key(), step.describe())),
        upgrade.unfinished,
    );
}
