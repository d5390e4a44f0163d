//! The command-line edge: argument parsing, settings, output, exit codes.
//!
//! Each command is a thin file in `commands/`: parse, resolve settings, call the library.

mod args;
mod aws_apply;
mod aws_capacity;
mod commands;
mod durations;
mod etcd_hosts;
mod failure;
mod host_progress;
mod output;
mod progress;
mod settings;
mod ssh_apply;

use std::process::ExitCode;

use clap::Parser;

pub use failure::Failure;

/// How long a command's cluster lock lasts without renewal.
pub const LOCK_LEASE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// `--force-unlock[=ID]` as the lock takes it: absent, bare (a lock whose lease ran out), or
/// naming one lock.
pub fn force_unlock(flag: &Option<String>) -> rafter::state::ForceUnlock {
    use rafter::state::ForceUnlock;
    match flag.as_deref() {
        None => ForceUnlock::Never,
        Some("") => ForceUnlock::IfExpired,
        Some(id) => ForceUnlock::Id(id.to_string()),
    }
}

/// Takes the cluster's lock for `operation`, saying so when it broke one left behind.
pub async fn acquire_lock<'a, S: rafter::state::StateStore>(
    store: &'a S,
    cluster: &str,
    operation: &str,
    force: &rafter::state::ForceUnlock,
) -> anyhow::Result<rafter::state::ClusterLock<'a, S>> {
    let lock = rafter::state::ClusterLock::acquire(store, cluster, operation, LOCK_LEASE, force)
        .await
        .map_err(locked)?;
    if let Some((held, reason)) = lock.broken() {
        eprintln!(
            "warning: broke the lock of cluster {cluster} held by {} for `{}` (lock {}): {reason}",
            held.holder, held.operation, held.id
        );
    }
    Ok(lock)
}

/// A lock held by someone else, as a failure with its hint.
pub fn locked(error: rafter::state::LockError) -> anyhow::Error {
    use rafter::state::LockError;
    let hint = error.hint();
    // Only another run holding (or taking) the lock is "locked"; a store that cannot lock,
    // or a lock that cannot be written, is a failure to fix.
    let code = match error {
        LockError::Held { .. } | LockError::Lost { .. } => failure::EXIT_LOCKED,
        _ => failure::EXIT_FAILURE,
    };
    let failure = Failure::new(code, error.to_string());
    match hint {
        Some(hint) => failure.hint(hint).into(),
        None => failure.into(),
    }
}

/// Runs the command line and turns its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(failure::EXIT_FAILURE);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => ExitCode::from(output::report_error(&error)),
    }
}
