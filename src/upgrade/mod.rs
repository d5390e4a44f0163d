//! `rafter upgrade cluster`, the pure part: which version changes are allowed
//! ([`versions`]: Kubernetes' version skew policy, etcd's one-minor rule), and the ordered,
//! journalled steps that carry them out ([`steps`]); and carrying them out on bare hosts
//! ([`execute`]), an operation above [`crate::hosts`] and [`crate::validate`]. On AWS the
//! steps replace instances instead ([`staging`]: which members and groups boot the new
//! versions between steps; the replacements are `crate::rolling`'s).

pub mod drain;
pub mod execute;
pub mod staging;
pub mod steps;
pub mod versions;

pub use steps::{Step, plan_steps, step_named};
pub use versions::{Changes, Refusal, check};

/// The journal's name in the state store (`<cluster>/operations/upgrade-cluster.json`).
pub const OPERATION: &str = "upgrade-cluster";
