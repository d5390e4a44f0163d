//! rafter: provision highly-available Kubernetes clusters from one declarative spec.
//!
//! Data flows one way: [`spec`] (load, complete, validate) → [`model`] (pure builders) →
//! [`graph`] (typed resources, order) → [`plan`] (diff against recorded state) → targets
//! ([`terraform`] today). [`state`] keeps each cluster's files. Only targets and the state
//! store do I/O; the command-line front end lives in the binary.

pub mod apply;
pub mod aws;
pub mod backup;
pub mod bootstrap;
pub mod graph;
pub mod hosts;
pub mod kubeconfig;
pub mod model;
pub mod pki;
pub mod plan;
pub mod rolling;
pub mod spec;
pub mod ssh;
pub mod state;
pub mod templates;
pub mod terraform;
pub mod upgrade;
pub mod validate;
