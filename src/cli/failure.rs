//! Failures the user can act on, with their exit codes (documented in README.md).

use std::fmt;

pub const EXIT_FAILURE: u8 = 1;
/// Bad command-line usage (the code clap uses for its own errors).
pub const EXIT_USAGE: u8 = 2;
/// The cluster spec is invalid.
pub const EXIT_INVALID_SPEC: u8 = 3;
/// The named cluster does not exist, or already exists.
pub const EXIT_CLUSTER_STATE: u8 = 4;
/// The operation is not available in this build.
pub const EXIT_NOT_AVAILABLE: u8 = 5;
/// Another run holds the cluster's lock.
pub const EXIT_LOCKED: u8 = 6;
/// `validate cluster` found problems (with `--wait`: still, when the time ran out).
pub const EXIT_UNHEALTHY: u8 = 7;

/// An error with a message, an optional hint, and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub hint: Option<String>,
    pub exit_code: u8,
}

impl Failure {
    pub fn new(exit_code: u8, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            exit_code,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn cluster_not_found(name: &str, store: &str) -> Self {
        Self::new(EXIT_CLUSTER_STATE, format!("cluster {name} not found in the state store at {store}"))
            .hint("`rafter get clusters` lists the clusters of this store; --state or RAFTER_STATE picks another")
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// A journalled operation (`upgrade`, `restore`, …) stopped at its step `number` (`key`):
/// why, and that running `resume` again continues from there.
pub fn step_stopped(
    operation: &str,
    cluster: &str,
    number: usize,
    key: &str,
    error: impl std::fmt::Display,
    resume: &str,
) -> Failure {
    Failure::new(
        EXIT_FAILURE,
        format!("the {operation} of cluster {cluster} stopped at step {number} ({key}): {error}"),
    )
    .hint(format!(
        "fix the cause and run `{resume}` again: it continues from this step"
    ))
}
