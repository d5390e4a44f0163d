//! What the etcd day-two commands (`backup etcd`, `restore etcd`) share: on bare hosts they
//! run over SSH to the control-plane hosts (AWS members are reached through the state
//! store); and backup retention, which every run that holds the lock applies (`backup
//! etcd`, and `update cluster --yes` on AWS, whose members add backups but may not delete
//! them).

use rafter::hosts::connect::{self, Connected};
use rafter::spec::Cluster;

use crate::cli::args::HostArgs;
use crate::cli::failure::{EXIT_FAILURE, Failure};

/// The control-plane hosts; with `every_host`, one that cannot be reached is a failure.
pub async fn connect(
    cluster: &Cluster,
    args: &HostArgs,
    every_host: bool,
    command: &str,
) -> anyhow::Result<Connected> {
    let hosts = connect::control_plane(cluster, args.accept_new_host_keys).await?;
    let name = &cluster.metadata.name;
    if hosts.sessions.is_empty() || (every_host && !hosts.unreachable.is_empty()) {
        let unreachable: Vec<String> = hosts
            .unreachable
            .iter()
            .map(|(host, why)| format!("{host} ({why})"))
            .collect();
        hosts.close().await;
        return Err(Failure::new(
            EXIT_FAILURE,
            format!(
                "`rafter {command}` needs {} control-plane host(s) of cluster {name}; cannot reach {}",
                if every_host { "every" } else { "one of the" },
                unreachable.join(", ")
            ),
        )
        .hint("bring the hosts back (or fix spec.ssh) and run the command again; nothing was changed")
        .into());
    }
    Ok(hosts)
}

/// Moves the backups the members' timers left on their hosts into the state store, saying
/// what it moved and what it could not.
pub async fn pull_scheduled_backups<S: rafter::state::StateStore>(
    store: &S,
    name: &str,
    hosts: &Connected,
) -> anyhow::Result<()> {
    let pulled = rafter::hosts::snapshot::pull(store, name, hosts).await?;
    if !pulled.stored.is_empty() {
        eprintln!(
            "Pulled {} scheduled backup(s) of cluster {name} from its control-plane hosts: {}.",
            pulled.stored.len(),
            pulled.stored.join(", ")
        );
    }
    if !pulled.duplicates.is_empty() {
        eprintln!(
            "Dropped {} scheduled backup(s) of a revision already stored: {}.",
            pulled.duplicates.len(),
            pulled.duplicates.join(", ")
        );
    }
    for problem in &pulled.problems {
        eprintln!("warning: a scheduled backup was left on its host: {problem}");
    }
    Ok(())
}

/// Deletes what retention no longer keeps, saying so.
pub async fn apply_retention<S: rafter::state::StateStore>(
    store: &S,
    name: &str,
) -> anyhow::Result<()> {
    let gone = rafter::backup::catalog::prune(
        store,
        name,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )
    .await?;
    if !gone.is_empty() {
        eprintln!(
            "Retention removed {} older backup(s) of cluster {name}: {}.",
            gone.len(),
            gone.join(", ")
        );
    }
    Ok(())
}
