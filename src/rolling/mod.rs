//! `rafter rolling-update cluster` on AWS: replacing instances whose launch template is out of
//! date (or every one, forced), one at a time, each behind a gate on evidence. Which
//! instances and in what order ([`plan`], pure); carrying it out ([`execute`]).
//!
//! A control-plane member is replaced through its auto-scaling group of one: its instance is
//! terminated, the group launches a new one, which attaches the member's data volume and
//! comes back as the same member. The next member is touched only once the replaced one
//! reports its etcd from the new instance, healthy and caught up, in consecutive reports, and
//! every other member does too (`validate::member_reports`): at no moment are two members
//! down.

pub mod execute;
pub mod plan;

pub use plan::{GroupState, InstanceState, Replacement, from_key, plan, unknown_groups};

/// The journal's name in the state store (`<cluster>/operations/rolling-update-cluster.json`).
pub const OPERATION: &str = "rolling-update-cluster";
