//! `rafter restore etcd NAME --from BACKUP`: the plan of a restore (what is lost, what each
//! step does, what is kept), and with `--yes` the restore itself under the cluster lock,
//! journalled step by step so that running the same command again after an interruption
//! finishes it.

use futures_util::future::join_all;
use rafter::backup::{BackupRecord, catalog, record};
use rafter::hosts::connect::Connected;
use rafter::hosts::restore::{self, OPERATION, Restore, Step};
use rafter::rolling::restore as aws_restore;
use rafter::spec::Provider;
use rafter::state::journal::Journal;
use rafter::state::{AnyStore, ClusterStore};
use time::OffsetDateTime;

use crate::cli::args::RestoreEtcdArgs;
use crate::cli::aws_apply::renewing;
use crate::cli::durations::wait_duration;
use crate::cli::failure::{EXIT_FAILURE, Failure, step_stopped};
use crate::cli::{acquire_lock, force_unlock, locked, settings};

use super::stored_cluster;
use crate::cli::etcd_hosts;

const COMMAND: &str = "restore etcd";

pub async fn run(state: Option<&str>, args: RestoreEtcdArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let name = args.name.as_str();
    let cluster = stored_cluster::load(&store, name).await?.cluster;
    let (members, step_keys): (_, Vec<String>) = match cluster.spec.provider {
        Provider::Ssh => {
            let members = rafter::bootstrap::control_plane_members(&cluster)?;
            let keys = restore::steps(&members).iter().map(Step::key).collect();
            (members, keys)
        }
        Provider::Aws => (
            rafter::bootstrap::aws_control_plane_members(&cluster),
            aws_restore::Step::ALL
                .iter()
                .map(|step| step.key().to_string())
                .collect(),
        ),
    };
    let backup = catalog::read_record(store.store(), name, &args.from).await?;
    let unfinished = unfinished_restore(&store, name, &args.from, &step_keys).await?;
    if let Some(problem) = backup
        .verification
        .as_ref()
        .and_then(|v| v.problem.as_ref())
    {
        return Err(Failure::new(
            EXIT_FAILURE,
            format!("backup {} failed its verification ({problem}); rafter does not restore it", backup.id),
        )
        .hint(format!("`rafter get backups {name}` lists the others; `rafter backup etcd {name} --verify {}` checks it again", backup.id))
        .into());
    }
    // A damaged snapshot is named before any member is touched.
    let snapshot = catalog::snapshot(store.store(), name, &backup).await?;
    let restoring = Restoring {
        store: &store,
        name,
        backup: &backup,
        step_keys: &step_keys,
        args: &args,
    };
    match cluster.spec.provider {
        Provider::Ssh => {
            on_hosts(
                &restoring,
                &cluster,
                &members,
                &snapshot,
                unfinished.as_ref(),
            )
            .await
        }
        Provider::Aws => on_aws(&restoring, &members, &snapshot, unfinished.as_ref()).await,
    }
}

/// What every restore shares: the store, the backup, the steps and the command's arguments.
struct Restoring<'a> {
    store: &'a ClusterStore<AnyStore>,
    name: &'a str,
    backup: &'a BackupRecord,
    step_keys: &'a [String],
    args: &'a RestoreEtcdArgs,
}

impl Restoring<'_> {
    /// Under the cluster lock (renewed meanwhile): the restore's journal (the unfinished one,
    /// read again under the lock, or a new one), then each step not done yet, in order, each
    /// recorded once finished. `run_step` runs the step with the journal's id.
    async fn journalled<F, Fut>(
        &self,
        describe: impl Fn(&str) -> String,
        run_step: F,
    ) -> anyhow::Result<()>
    where
        F: Fn(String, String) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<String>>,
    {
        let (store, name) = (self.store, self.name);
        let mut lock = acquire_lock(
            store.store(),
            name,
            COMMAND,
            &force_unlock(&self.args.force_unlock),
        )
        .await?;
        let work = async {
            // Read again under the lock: another run may have restored meanwhile.
            let current = unfinished_restore(store, name, &self.args.from, self.step_keys).await?;
            let now = OffsetDateTime::now_utc();
            let mut journal = current.unwrap_or_else(|| {
                Journal::new(
                    OPERATION,
                    &self.backup.id,
                    &record::backup_id(now),
                    &record::rfc3339(now),
                    self.step_keys.to_vec(),
                )
            });
            journal.save(store.store(), name).await?;
            let total = journal.steps.len();
            for (index, key) in journal.steps.clone().iter().enumerate() {
                if journal.is_done(key) {
                    continue;
                }
                eprintln!("[{}/{total}] {}", index + 1, describe(key));
                let said = run_step(key.clone(), journal.id.clone())
                    .await
                    .map_err(|error| {
                        step_stopped(
                            "restore",
                            name,
                            index + 1,
                            key,
                            format!("{error:#}"),
                            &format!("rafter restore etcd {name} --from {} --yes", self.backup.id),
                        )
                    })?;
                eprintln!("      {said}");
                journal.record(store.store(), name, key).await?;
            }
            anyhow::Ok(())
        };
        let outcome = renewing(&mut lock, work).await.and_then(|done| done);
        lock.release().await.map_err(locked)?;
        outcome
    }
}

/// The unfinished restore's journal, if any; refused when it restores another backup or
/// was planned with other steps than `step_keys`.
async fn unfinished_restore(
    store: &ClusterStore<AnyStore>,
    name: &str,
    from: &str,
    step_keys: &[String],
) -> anyhow::Result<Option<Journal>> {
    let unfinished = Journal::load(store.store(), name, OPERATION)
        .await?
        .filter(|journal| !journal.finished());
    if let Some(journal) = &unfinished {
        refuse_other_restore(name, journal, from, step_keys)?;
    }
    Ok(unfinished)
}

/// A bare-host cluster: every step over SSH ([`restore`]).
async fn on_hosts(
    restoring: &Restoring<'_>,
    cluster: &rafter::spec::Cluster,
    members: &[rafter::bootstrap::etcd::EtcdMember],
    snapshot: &[u8],
    unfinished: Option<&Journal>,
) -> anyhow::Result<()> {
    let (name, backup, args) = (restoring.name, restoring.backup, restoring.args);
    let steps = restore::steps(members);
    let hosts = etcd_hosts::connect(cluster, &args.hosts, true, COMMAND).await?;
    let outcome = async {
        let cannot_bump = hosts_without_revision_bump(&hosts).await?;
        let note = (!cannot_bump.is_empty()).then(|| format!(
            "warning: the etcd release on {} cannot bump revisions (its etcdutl has no --bump-revision): revisions restart at {}, below what clients saw; the API servers are restarted, and clients that watch must relist.",
            cannot_bump.join(", "),
            backup.facts.revision
        ));
        print_plan(
            name,
            backup,
            note,
            steps.iter().map(|step| (step.key(), step.describe())),
            unfinished,
        );
        if !args.yes {
            eprintln!("Nothing was changed. Run the same command with --yes to restore.");
            return Ok(());
        }
        restoring
            .journalled(
                |key| restore::step_named(&steps, key).map_or_else(|| key.to_string(), Step::describe),
                |key, id| {
                    let (steps, hosts, cannot_bump) = (&steps, &hosts, &cannot_bump);
                    async move {
                        let restore = Restore {
                            cluster_name: name,
                            members,
                            hosts,
                            backup,
                            snapshot,
                            id: &id,
                            cannot_bump,
                        };
                        match restore::step_named(steps, &key) {
                            Some(step) => Ok(restore.run(step).await?),
                            None => Ok(format!("{key}: not a step of this restore, skipped")),
                        }
                    }
                },
            )
            .await?;
        eprintln!(
            "Restored cluster {name}'s etcd from backup {} (revision {}). Run `rafter update cluster {name} --yes` to check every host.",
            backup.id, backup.facts.revision
        );
        Ok(())
    }
    .await;
    hosts.close().await;
    outcome
}

/// An AWS cluster: rafter stages the restore in the state store and the members carry it
/// out ([`aws_restore`]); the gates read the members' reports.
async fn on_aws(
    restoring: &Restoring<'_>,
    members: &[rafter::bootstrap::etcd::EtcdMember],
    snapshot: &[u8],
    unfinished: Option<&Journal>,
) -> anyhow::Result<()> {
    let (store, name, backup, args) = (
        restoring.store,
        restoring.name,
        restoring.backup,
        restoring.args,
    );
    let waiting = aws_restore::Waiting {
        poll: std::time::Duration::from_secs(5),
        timeout: wait_duration(&args.gate_timeout)?,
    };
    let note = format!(
        "Each member restores on its own instance and keeps its data from before on its volume ({}/.rafter/before-restore-<id>). Where its etcdutl can (--bump-revision), revisions jump by {} and old ones are marked compacted; where it cannot, they restart at {}, below what clients saw: clients that watch must relist.",
        rafter::bootstrap::etcd::DATA_DIR,
        rafter::backup::REVISION_BUMP,
        backup.facts.revision,
    );
    print_plan(
        name,
        backup,
        Some(note),
        aws_restore::Step::ALL
            .iter()
            .map(|step| (step.key().to_string(), step.describe().to_string())),
        unfinished,
    );
    if !args.yes {
        eprintln!("Nothing was changed. Run the same command with --yes to restore.");
        return Ok(());
    }
    restoring
        .journalled(
            |key| {
                aws_restore::Step::named(key)
                    .map_or_else(|| key.to_string(), |step| step.describe().to_string())
            },
            |key, id| async move {
                let restore = aws_restore::AwsRestore {
                    store: store.store(),
                    cluster: name,
                    members,
                    backup,
                    snapshot,
                    id: &id,
                    waiting,
                };
                match aws_restore::Step::named(&key) {
                    Some(step) => Ok(restore.run(step).await?),
                    None => Ok(format!("{key}: not a step of this restore, skipped")),
                }
            },
        )
        .await?;
    eprintln!(
        "Restored cluster {name}'s etcd from backup {} (revision {}); every member serves the restored cluster. `rafter validate cluster {name}` checks the whole cluster.",
        backup.id, backup.facts.revision
    );
    Ok(())
}

/// An unfinished restore is finished before another starts, and only with the spec it began
/// with.
fn refuse_other_restore(
    name: &str,
    journal: &Journal,
    from: &str,
    step_keys: &[String],
) -> anyhow::Result<()> {
    let next = journal
        .remaining()
        .first()
        .map(|step| step.to_string())
        .unwrap_or_default();
    if journal.subject != from {
        return Err(Failure::new(
            EXIT_FAILURE,
            format!(
                "a restore of cluster {name} from backup {} (started {}) is unfinished; its next step is `{next}`",
                journal.subject, journal.started_at
            ),
        )
        .hint(format!("finish it first: `rafter restore etcd {name} --from {} --yes`", journal.subject))
        .into());
    }
    if journal.steps != step_keys {
        return Err(Failure::new(
            EXIT_FAILURE,
            format!(
                "the unfinished restore of cluster {name} was planned for other control-plane hosts than the spec names now"
            ),
        )
        .hint("put the spec's control-plane hosts back as they were (`rafter update cluster NAME -f`) and run the restore again")
        .into());
    }
    Ok(())
}

/// The hosts whose etcd release cannot bump revisions at a restore.
async fn hosts_without_revision_bump(hosts: &Connected) -> anyhow::Result<Vec<String>> {
    let answers = join_all(hosts.sessions.iter().map(|(entry, session)| async move {
        (
            entry.name().to_string(),
            restore::bumps_revisions(session).await,
        )
    }))
    .await;
    let mut cannot = Vec::new();
    for (host, answer) in answers {
        if !answer? {
            cannot.push(host);
        }
    }
    Ok(cannot)
}

/// The plan: the backup, what is lost, `note` (about revisions), then the steps.
fn print_plan(
    name: &str,
    backup: &BackupRecord,
    note: Option<String>,
    steps: impl IntoIterator<Item = (String, String)>,
    unfinished: Option<&Journal>,
) {
    println!(
        "Restore cluster {name}'s etcd from backup {} (taken {} from member {}, revision {}, {} keys, verified: {}).",
        backup.id,
        backup.taken_at,
        backup.member,
        backup.facts.revision,
        backup
            .facts
            .keys
            .map_or_else(|| "uncounted".to_string(), |keys| keys.to_string()),
        backup.verified_text()
    );
    println!(
        "Every write to the cluster after {} is lost. Every member starts again from the snapshot, as a new etcd cluster.",
        backup.taken_at
    );
    if let Some(note) = note {
        println!("{note}");
    }
    crate::cli::output::print_journalled_steps("restore", steps, unfinished);
}
