//! Applying a plan: a walk of the resource graph in dependency order with bounded
//! parallelism, retries of transient errors, and a record of each resource as soon as it
//! exists. Cloud specifics live behind [`Provisioner`]; where state goes, behind [`Recorder`].

mod delete;
pub mod engine;
pub mod retry;

use std::collections::BTreeMap;
use std::future::Future;

use crate::graph::{Address, Field};
use crate::plan::{Action, RecordedResource};
use crate::state::StateError;

pub use engine::{ApplyOptions, ApplyReport, apply};
pub use retry::RetryPolicy;

/// What the cloud says about a resource once it exists: `id`, `arn`, `dns_name`, …
/// (the attributes other resources refer to).
pub type Outputs = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Throttling, 5xx, eventual consistency, dependency still in use: try again.
    Transient,
    /// Trying again will not help.
    Permanent,
}

/// A failed cloud operation, with the provider's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProvisionError {
    pub code: String,
    pub message: String,
    pub class: ErrorClass,
}

impl ProvisionError {
    pub fn permanent(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            message: message.into(),
            class: ErrorClass::Permanent,
        }
    }

    pub fn transient(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            message: message.into(),
            class: ErrorClass::Transient,
        }
    }
}

/// Carries out operations on one kind of infrastructure. `attributes` have every reference
/// already replaced by the referred resource's output (an id, an ARN, …).
pub trait Provisioner: Sync {
    /// Looks up something rafter never creates (an AMI, a hosted zone).
    fn read(
        &self,
        address: &Address,
        attributes: &[Field],
    ) -> impl Future<Output = Result<Outputs, ProvisionError>> + Send;

    /// Creates the resource, or adopts one a previous interrupted run made.
    fn create(
        &self,
        address: &Address,
        attributes: &[Field],
    ) -> impl Future<Output = Result<Outputs, ProvisionError>> + Send;

    fn update(
        &self,
        recorded: &RecordedResource,
        attributes: &[Field],
    ) -> impl Future<Output = Result<Outputs, ProvisionError>> + Send;

    fn delete(
        &self,
        recorded: &RecordedResource,
    ) -> impl Future<Output = Result<(), ProvisionError>> + Send;
}

/// Keeps what was applied, one resource at a time, so an interrupted run loses nothing.
pub trait Recorder: Sync {
    fn record(
        &self,
        resource: RecordedResource,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
    fn forget(&self, address: &Address) -> impl Future<Output = Result<(), StateError>> + Send;
}

/// Progress of an apply, for people. Every method has a silent default.
pub trait Reporter: Sync {
    fn started(&self, _address: &Address, _action: Action) {}
    fn retrying(&self, _address: &Address, _attempt: u32, _error: &ProvisionError) {}
    fn finished(&self, _address: &Address, _action: Action) {}
    fn failed(&self, _address: &Address, _error: &ProvisionError) {}
}

/// Reports nothing.
pub struct SilentReporter;

impl Reporter for SilentReporter {}
