//! `rafter update cluster NAME -f FILE` on AWS when the new spec adds or removes
//! control-plane members of a running cluster (1 → 3, 3 → 1, a zone added or removed): the
//! plan, and with `--yes` the change one member at a time under the cluster lock, journalled
//! step by step so that an interrupted run continues where it stopped
//! (`rolling::membership` has the steps and the rules).
//!
//! A member is added by creating its volume, launch template and group (its instance adds
//! itself to etcd), removed by naming the members that stay in the members record (the first
//! of them removes it from etcd); each step waits for the gate on the members' own reports
//! before the next. The removed members' groups, volumes and zones go with the last step,
//! which applies the whole new spec and stores it.

use rafter::aws::AwsProvisioner;
use rafter::model::compute::control_plane_slots;
use rafter::model::naming::Naming;
use rafter::rolling::execute::{Gate, Roll, RollError};
use rafter::rolling::membership::{
    MembershipChange, MembershipStep, OPERATION, record, recorded_members,
};
use rafter::spec;
use rafter::state::journal::Journal;
use rafter::state::{AnyStore, ClusterLock, ClusterStore, StateStore, layout};
use time::OffsetDateTime;

use crate::cli::args::UpdateClusterArgs;
use crate::cli::aws_apply::{
    StepApply, apply_step, aws_config, aws_region, renewing, require_state_in_s3,
};
use crate::cli::failure::{EXIT_FAILURE, Failure, step_stopped};
use crate::cli::{acquire_lock, force_unlock, locked, output};

const COMMAND: &str = "update cluster";

/// A membership change to plan or carry out.
pub struct MembersUpdate<'a> {
    pub store: &'a ClusterStore<AnyStore>,
    pub args: &'a UpdateClusterArgs,
    pub change: MembershipChange<'a>,
    /// The journal of the change when it is unfinished.
    pub unfinished: Option<&'a Journal>,
}

pub async fn run(update: MembersUpdate<'_>) -> anyhow::Result<()> {
    let to = update.change.to;
    let name = to.metadata.name.as_str();
    let region = aws_region(to)?;
    require_state_in_s3(to)?;
    let config = aws_config(region).await;
    let provisioner = AwsProvisioner::new(&config, name);
    let gate = Gate::default();
    print_plan(&update, &gate);
    let roll = |members: Vec<String>| Roll {
        context: &provisioner.context,
        store: update.store.store(),
        cluster: name,
        members,
        gate,
    };
    if !update.args.yes {
        if update.unfinished.is_none() {
            roll(update.change.members_after(0))
                .check()
                .await
                .map_err(|error| refused(name, error))?;
            println!("Now: every member reports its etcd healthy.");
        }
        eprintln!("Nothing was changed. Run the same command with --yes to change the members.");
        return Ok(());
    }
    crate::cli::aws_capacity::check_offerings(name, region, &update.change.graph(0)?).await?;
    let mut lock = acquire_lock(
        update.store.store(),
        name,
        COMMAND,
        &force_unlock(&update.args.force_unlock),
    )
    .await?;
    let outcome = execute(&update, region, &roll, &mut lock).await;
    lock.release().await.map_err(locked)?;
    outcome?;
    eprintln!(
        "Changed the control-plane members of cluster {name}: {}.",
        update.change.describe()
    );
    Ok(())
}

async fn execute<'r>(
    update: &MembersUpdate<'_>,
    region: &str,
    roll: &impl Fn(Vec<String>) -> Roll<'r, AnyStore>,
    lock: &mut ClusterLock<'_, AnyStore>,
) -> anyhow::Result<()> {
    let (store, change) = (update.store, &update.change);
    let name = change.to.metadata.name.as_str();
    // Read again under the lock: another run may have moved the change on.
    let now = OffsetDateTime::now_utc();
    let mut journal = match Journal::load(store.store(), name, OPERATION)
        .await?
        .filter(|journal| !journal.finished())
    {
        Some(journal) => journal,
        None => {
            // A refused preflight leaves no journal behind: nothing was started.
            renewing(lock, roll(change.members_after(0)).check())
                .await?
                .map_err(|error| refused(name, error))?;
            let mut journal = Journal::new(
                OPERATION,
                &change.describe(),
                &rafter::backup::record::backup_id(now),
                &rafter::backup::record::rfc3339(now),
                change.keys(),
            );
            journal.target = Some(spec::to_yaml(change.to)?);
            journal
        }
    };
    if journal.steps != change.keys() {
        return Err(Failure::new(
            EXIT_FAILURE,
            format!(
                "the unfinished change of cluster {name}'s control-plane members ({}) has other steps than this one ({})",
                journal.subject,
                change.describe()
            ),
        )
        .hint(format!("finish it first: `rafter update cluster {name} --yes`"))
        .into());
    }
    journal.save(store.store(), name).await?;
    let naming = Naming::new(name);
    let total = change.steps.len();
    let resume = format!("rafter update cluster {name} --yes");
    for (index, step) in change.steps.iter().enumerate() {
        let key = step.key();
        if journal.is_done(&key) {
            continue;
        }
        eprintln!("[{}/{total}] {}", index + 1, step.describe());
        let stopped = |error: RollError| {
            step_stopped("membership change", name, index + 1, &key, error, &resume)
        };
        let (before, after) = (change.members_after(index), change.members_after(index + 1));
        let said = match step {
            MembershipStep::Add { member } => {
                record_members(store, name, &after, &roll(before))
                    .await?
                    .map_err(stopped)?;
                apply(store, lock, region, change, index).await?;
                let slot = control_plane_slots(
                    change.to.spec.control_plane.count,
                    &change.to.spec.networking.zones,
                )
                .into_iter()
                .find(|slot| slot.member() == *member)
                .ok_or_else(|| {
                    Failure::new(
                        EXIT_FAILURE,
                        format!("member {member} is not in the new spec"),
                    )
                })?;
                let group = naming.qualified(&slot.group());
                renewing(lock, roll(after).wait_member(&group, member))
                    .await?
                    .map_err(stopped)?
            }
            MembershipStep::Remove { member } => {
                record_members(store, name, &after, &roll(before))
                    .await?
                    .map_err(stopped)?;
                renewing(lock, roll(after.clone()).wait_settled())
                    .await?
                    .map_err(stopped)?;
                format!(
                    "member {member} is out of etcd: {} healthy, listing only themselves",
                    after.join(", ")
                )
            }
            MembershipStep::Apply => {
                apply(store, lock, region, change, index).await?;
                let removed = change.removed();
                for member in &removed {
                    let objects = layout::member_objects(name, member);
                    for key in &objects.keys {
                        store.store().delete(key).await?;
                    }
                    store.store().delete_prefix(&objects.boot_reports).await?;
                }
                store.replace_spec(name, &spec::to_yaml(change.to)?).await?;
                match removed.is_empty() {
                    true => "the new spec is applied and stored".to_string(),
                    false => format!(
                        "the new spec is applied and stored; what the store kept for {} (bundle, address, reports, certificates) is deleted",
                        removed.join(", ")
                    ),
                }
            }
        };
        eprintln!("      {said}");
        journal.record(store.store(), name, &key).await?;
    }
    Ok(())
}

/// Writes the members record naming `after`, unless it names them already (a rerun): first
/// the members now (`before`) must report etcd healthy.
async fn record_members(
    store: &ClusterStore<AnyStore>,
    name: &str,
    after: &[String],
    before: &Roll<'_, AnyStore>,
) -> anyhow::Result<Result<(), RollError>> {
    let key = layout::etcd_members_key(name);
    let wanted: std::collections::BTreeSet<String> = after.iter().cloned().collect();
    if store
        .store()
        .read(&key)
        .await?
        .is_some_and(|current| recorded_members(&current) == wanted)
    {
        return Ok(Ok(()));
    }
    if let Err(error) = before.check().await {
        return Ok(Err(error));
    }
    store
        .store()
        .write(&key, record(name, after).as_bytes())
        .await?;
    Ok(Ok(()))
}

/// Applies the graph of step `index` and publishes the new spec's bundles.
async fn apply(
    store: &ClusterStore<AnyStore>,
    lock: &mut ClusterLock<'_, AnyStore>,
    region: &str,
    change: &MembershipChange<'_>,
    index: usize,
) -> anyhow::Result<()> {
    let graph = change.graph(index)?;
    let to = change.to;
    apply_step(
        store,
        lock,
        &StepApply {
            cluster: to,
            region,
            operation: COMMAND,
            graph: &graph,
            spec_of: &|_| to,
            resume: &format!("rafter update cluster {} --yes", to.metadata.name),
        },
    )
    .await?;
    Ok(())
}

/// While a membership change is unfinished the stored spec names the old members: an
/// upgrade or a rolling update would work from them, so `command` is refused.
pub async fn refuse_while_unfinished(
    store: &ClusterStore<AnyStore>,
    name: &str,
    command: &str,
) -> anyhow::Result<()> {
    let Some(journal) = Journal::load(store.store(), name, OPERATION)
        .await?
        .filter(|journal| !journal.finished())
    else {
        return Ok(());
    };
    Err(Failure::new(
        crate::cli::failure::EXIT_CLUSTER_STATE,
        format!(
            "a change of cluster {name}'s control-plane members ({}, started {}) is unfinished: `{command}` is refused until it is finished",
            journal.subject, journal.started_at
        ),
    )
    .hint(format!(
        "finish it first: `rafter update cluster {name} --yes` continues where it stopped"
    ))
    .into())
}

fn refused(name: &str, error: RollError) -> anyhow::Error {
    Failure::new(EXIT_FAILURE, error.to_string())
        .hint(format!(
            "fix what it names, then run `rafter update cluster {name}` again"
        ))
        .into()
}

fn print_plan(update: &MembersUpdate<'_>, gate: &Gate) {
    let change = &update.change;
    println!(
        "Change the control-plane members of cluster {}: {}.",
        change.to.metadata.name,
        change.describe()
    );
    println!(
        "One member at a time, members added first (etcd keeps its quorum at every step). Before each step: every member reports its etcd healthy. After it, a gate: every member healthy and listing exactly the members of that moment, {} reports in a row (within {} s), or the change stops there.",
        gate.passes,
        gate.within.as_secs()
    );
    output::print_journalled_steps(
        "membership change",
        change
            .steps
            .iter()
            .map(|step| (step.key(), step.describe())),
        update.unfinished,
    );
}
