//! `rafter restore etcd NAME --from BACKUP`: the plan of a restore (what is lost, what each
//! step does, what is kept), and with `--yes` the restore itself under the cluster lock,
//! journalled step by step so that running the same command again after an interruption
//! finishes it.

use futures_util::future::join_all;
use rafter::backup::{BackupRecord, catalog, record};
use rafter::hosts::connect::Connected;
use rafter::hosts::restore::{self, OPERATION, Restore, Step};
use rafter::state::journal::Journal;
use time::OffsetDateTime;

use crate::cli::args::RestoreEtcdArgs;
use crate::cli::aws_apply::renewing;
use crate::cli::failure::{EXIT_FAILURE, Failure, step_stopped};
use crate::cli::{acquire_lock, force_unlock, locked, settings};

use super::stored_cluster;
use crate::cli::etcd_hosts;

const COMMAND: &str = "restore etcd";

pub async fn run(state: Option<&str>, args: RestoreEtcdArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let name = args.name.as_str();
    let cluster = stored_cluster::load(&store, name).await?.cluster;
    etcd_hosts::require_bare_hosts(&cluster, COMMAND)?;
    let members = rafter::bootstrap::control_plane_members(&cluster)?;
    let steps = restore::steps(&members);
    let backup = catalog::read_record(store.store(), name, &args.from).await?;
    let unfinished = Journal::load(store.store(), name, OPERATION)
        .await?
        .filter(|journal| !journal.finished());
    if let Some(journal) = &unfinished {
        refuse_other_restore(name, journal, &args.from, &steps)?;
    }
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
    // A damaged snapshot is named before any host is touched.
    let snapshot = catalog::snapshot(store.store(), name, &backup).await?;
    let hosts = etcd_hosts::connect(&cluster, &args.hosts, true, COMMAND).await?;
    let outcome = async {
        let cannot_bump = hosts_without_revision_bump(&hosts).await?;
        print_plan(name, &backup, &steps, unfinished.as_ref(), &cannot_bump);
        if !args.yes {
            eprintln!("Nothing was changed. Run the same command with --yes to restore.");
            return Ok(());
        }
        let mut lock =
            acquire_lock(store.store(), name, COMMAND, &force_unlock(&args.force_unlock)).await?;
        // Read again under the lock: another run may have restored meanwhile.
        let current = async {
            let current = Journal::load(store.store(), name, OPERATION)
                .await?
                .filter(|journal| !journal.finished());
            if let Some(journal) = &current {
                refuse_other_restore(name, journal, &args.from, &steps)?;
            }
            anyhow::Ok(current)
        }
        .await;
        let current = match current {
            Ok(current) => current,
            Err(error) => {
                lock.release().await.map_err(locked)?;
                return Err(error);
            }
        };
        let now = OffsetDateTime::now_utc();
        let mut journal = current.unwrap_or_else(|| {
            Journal::new(
                OPERATION,
                &backup.id,
                &record::backup_id(now),
                &record::rfc3339(now),
                steps.iter().map(Step::key).collect(),
            )
        });
        let restore = Restore {
            cluster_name: name,
            members: &members,
            hosts: &hosts,
            backup: &backup,
            snapshot: &snapshot,
            id: &journal.id.clone(),
            cannot_bump: &cannot_bump,
        };
        let work = async {
            journal.save(store.store(), name).await?;
            let total = journal.steps.len();
            for (index, key) in journal.steps.clone().iter().enumerate() {
                if journal.is_done(key) {
                    continue;
                }
                let Some(step) = restore::step_named(&steps, key) else {
                    continue;
                };
                eprintln!("[{}/{total}] {}", index + 1, step.describe());
                let said = restore.run(step).await.map_err(|error| {
                    step_stopped(
                        "restore",
                        name,
                        index + 1,
                        key,
                        error,
                        &format!("rafter restore etcd {name} --from {} --yes", backup.id),
                    )
                })?;
                eprintln!("      {said}");
                journal.record(store.store(), name, key).await?;
            }
            anyhow::Ok(())
        };
        let outcome = renewing(&mut lock, work).await.and_then(|done| done);
        lock.release().await.map_err(locked)?;
        outcome?;
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

/// An unfinished restore is finished before another starts, and only with the spec it began
/// with.
fn refuse_other_restore(
    name: &str,
    journal: &Journal,
    from: &str,
    steps: &[Step],
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
    if journal
        .steps
        .iter()
        .any(|key| restore::step_named(steps, key).is_none())
    {
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

fn print_plan(
    name: &str,
    backup: &BackupRecord,
    steps: &[Step],
    unfinished: Option<&Journal>,
    cannot_bump: &[String],
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
    if !cannot_bump.is_empty() {
        println!(
            "warning: the etcd release on {} cannot bump revisions (its etcdutl has no --bump-revision): revisions restart at {}, below what clients saw; the API servers are restarted, and clients that watch must relist.",
            cannot_bump.join(", "),
            backup.facts.revision
        );
    }
    crate::cli::output::print_journalled_steps(
        "restore",
        steps.iter().map(|step| (step.key(), step.describe())),
        unfinished,
    );
}
