//! `rafter backup etcd NAME`: a snapshot from the leading member, stored in the state store
//! with its record, verified by a restore into a scratch etcd, then retention applied.
//! `--verify ID` verifies a stored backup again instead.

use rafter::backup::{BackupError, BackupRecord, catalog, record};
use rafter::hosts::connect::Connected;
use rafter::hosts::snapshot;
use rafter::spec::{Cluster, Provider};
use rafter::state::{AnyStore, ClusterStore};
use time::OffsetDateTime;

use crate::cli::args::BackupEtcdArgs;
use crate::cli::aws_apply::renewing;
use crate::cli::durations::wait_duration;
use crate::cli::failure::{EXIT_FAILURE, EXIT_INVALID_SPEC, EXIT_NOT_AVAILABLE, Failure};
use crate::cli::{acquire_lock, force_unlock, locked, settings};

use super::stored_cluster;
use crate::cli::etcd_hosts;

const COMMAND: &str = "backup etcd";

pub async fn run(state: Option<&str>, args: BackupEtcdArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let name = args.name.as_str();
    let cluster = stored_cluster::load(&store, name).await?.cluster;
    if cluster.spec.provider == Provider::Aws {
        return on_aws(&store, &cluster, &args).await;
    }
    // A stored backup is checked before anything else is touched.
    let existing = match &args.verify {
        Some(id) => {
            let record = catalog::read_record(store.store(), name, id).await?;
            let snapshot = catalog::snapshot(store.store(), name, &record).await?;
            Some((record, snapshot))
        }
        None => None,
    };
    let mut lock = acquire_lock(
        store.store(),
        name,
        COMMAND,
        &force_unlock(&args.force_unlock),
    )
    .await?;
    let hosts = etcd_hosts::connect(&cluster, &args.hosts, false, COMMAND).await;
    let outcome = match hosts {
        Ok(hosts) => {
            let work = async {
                match existing {
                    Some((record, snapshot)) => {
                        verify_stored(&store, name, &hosts, record, &snapshot).await
                    }
                    None => take(&store, &cluster, &hosts, !args.no_verify).await,
                }
            };
            let outcome = renewing(&mut lock, work).await;
            hosts.close().await;
            outcome.and_then(|done| done)
        }
        Err(error) => Err(error),
    };
    lock.release().await.map_err(locked)?;
    outcome
}

/// An AWS cluster: rafter asks the members for a backup through the state store and waits
/// for the leading member's ([`rafter::backup::request`]), under the lock; then retention.
/// Not verified: that restores the snapshot into a scratch etcd on a host rafter reaches
/// over SSH.
async fn on_aws(
    store: &ClusterStore<AnyStore>,
    cluster: &Cluster,
    args: &BackupEtcdArgs,
) -> anyhow::Result<()> {
    let name = cluster.metadata.name.as_str();
    if args.verify.is_some() {
        return Err(Failure::new(
            EXIT_NOT_AVAILABLE,
            "verifying a stored backup restores it into a scratch etcd on a control-plane host over SSH: not built for AWS clusters",
        )
        .hint(format!("`rafter get backups {name}` lists the backups and their records"))
        .into());
    }
    if cluster.spec.etcd.backup_interval_minutes == 0 {
        return Err(Failure::new(
            EXIT_INVALID_SPEC,
            format!("cluster {name}'s members have no backup script: spec.etcd.backupIntervalMinutes is 0"),
        )
        .hint("set it (15 is the default), run `rafter update cluster NAME --yes`, then `rafter rolling-update cluster NAME --yes` so the members run the new bundle")
        .into());
    }
    let timeout = wait_duration(&args.timeout)?;
    let mut lock = acquire_lock(
        store.store(),
        name,
        COMMAND,
        &force_unlock(&args.force_unlock),
    )
    .await?;
    let request = record::backup_id(OffsetDateTime::now_utc());
    eprintln!(
        "Asking cluster {name}'s members for a backup (request {request}); the leading member's timer takes it within 30 s…"
    );
    let taken = renewing(
        &mut lock,
        rafter::backup::request::take_on_members(
            store.store(),
            name,
            &request,
            std::time::Duration::from_secs(3),
            timeout,
        ),
    )
    .await;
    let outcome = async {
        let backup = taken??;
        eprintln!(
            "Stored backup {} of cluster {name}: revision {}, {} keys, {} bytes, from member {} (not verified: on AWS rafter cannot restore it into a scratch etcd).",
            backup.id,
            backup.facts.revision,
            backup
                .facts
                .keys
                .map_or_else(|| "uncounted".to_string(), |keys| keys.to_string()),
            backup.size,
            backup.member
        );
        etcd_hosts::apply_retention(store.store(), name).await?;
        println!("{}", backup.id);
        anyhow::Ok(())
    }
    .await;
    lock.release().await.map_err(locked)?;
    outcome
}

/// Takes, stores, verifies (unless told not to) and applies retention.
async fn take(
    store: &ClusterStore<AnyStore>,
    cluster: &Cluster,
    hosts: &Connected,
    verify: bool,
) -> anyhow::Result<()> {
    let name = cluster.metadata.name.as_str();
    etcd_hosts::pull_scheduled_backups(store.store(), name, hosts).await?;
    let (asker, session) = &hosts.sessions[0];
    let (leader_url, version) = snapshot::leader(session).await?;
    let members = rafter::bootstrap::control_plane_members(cluster)?;
    let leader = members
        .iter()
        .find(|member| member.client_url() == leader_url)
        .map(|member| member.name.clone())
        .ok_or_else(|| {
            Failure::new(
                EXIT_FAILURE,
                format!("etcd's leader ({leader_url}, as {} sees it) is not a control-plane host of the spec", asker.name()),
            )
        })?;
    let session = hosts.session(&leader).ok_or_else(|| {
        Failure::new(
            EXIT_FAILURE,
            format!("etcd's leader {leader} cannot be reached over SSH"),
        )
        .hint(
            "bring it back, or wait for etcd to elect a reachable leader, and run the backup again",
        )
    })?;
    eprintln!("Taking a snapshot of cluster {name}'s etcd from its leader {leader}…");
    let taken = snapshot::take(session, &version).await?;
    let mut backup = BackupRecord::new(
        OffsetDateTime::now_utc(),
        &leader,
        &taken.bytes,
        taken.facts,
    );
    // Another backup of the same second (a member's timer) keeps its id; this one gets a suffix.
    let base = backup.id.clone();
    let mut suffix = 0;
    loop {
        match catalog::save(store.store(), name, &backup, &taken.bytes).await {
            Err(BackupError::Exists { .. }) if suffix < 9 => {
                suffix += 1;
                backup.id = format!("{base}-{suffix}");
            }
            other => break other?,
        }
    }
    eprintln!(
        "Stored backup {} of cluster {name}: revision {}, {} keys, {} bytes, from member {leader}.",
        backup.id,
        backup.facts.revision,
        backup
            .facts
            .keys
            .map_or_else(|| "uncounted".to_string(), |keys| keys.to_string()),
        backup.size
    );
    let verified = match verify {
        true => {
            backup.verification =
                Some(snapshot::verify(session, &backup, &taken.bytes, &now_text()).await?);
            catalog::update_record(store.store(), name, &backup).await?;
            Some(report_verification(&backup))
        }
        false => None,
    };
    etcd_hosts::apply_retention(store.store(), name).await?;
    println!("{}", backup.id);
    verified.unwrap_or(Ok(()))
}

async fn verify_stored(
    store: &ClusterStore<AnyStore>,
    name: &str,
    hosts: &Connected,
    mut backup: BackupRecord,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let (_, session) = &hosts.sessions[0];
    backup.verification = Some(snapshot::verify(session, &backup, bytes, &now_text()).await?);
    catalog::update_record(store.store(), name, &backup).await?;
    report_verification(&backup)
}

/// Says how a verification went; a failed one fails the command.
fn report_verification(backup: &BackupRecord) -> anyhow::Result<()> {
    let Some(verification) = &backup.verification else {
        return Ok(());
    };
    match &verification.problem {
        None => {
            eprintln!(
                "Verified backup {}: restored into a scratch etcd on {}, it serves revision {} with {} keys.",
                backup.id,
                verification.on,
                backup.facts.revision,
                backup
                    .facts
                    .keys
                    .map_or_else(|| "its".to_string(), |keys| keys.to_string())
            );
            Ok(())
        }
        Some(problem) => Err(Failure::new(
            EXIT_FAILURE,
            format!("backup {} failed verification: {problem}", backup.id),
        )
        .hint("do not restore from it; take a new backup (`rafter backup etcd NAME`)")
        .into()),
    }
}

fn now_text() -> String {
    record::rfc3339(OffsetDateTime::now_utc())
}
