//! `rafter rolling-update cluster` on AWS: replacing instances whose launch template is out of
//! date (or every one, forced), one at a time, each behind a gate on evidence. Which
//! instances and in what order ([`plan`], pure); carrying it out ([`execute`]). The other
//! day-two changes of AWS control-plane members live beside it, gated on the same evidence:
//! adding and removing members ([`membership`]) and restoring their etcd ([`restore`]).
//!
//! A control-plane member is replaced through its auto-scaling group of one: its instance is
//! terminated, the group launches a new one, which attaches the member's data volume and
//! comes back as the same member. The next member is touched only once the replaced one
//! reports its etcd from the new instance, healthy and caught up, in consecutive reports, and
//! every other member does too (`validate::member_reports`): at no moment are two members
//! down.

pub mod execute;
pub mod membership;
pub mod plan;
pub mod restore;

pub use plan::{
    Batch, GroupState, InstanceState, Replacement, batch_from_key, batches, from_key, plan,
    unknown_groups,
};

/// The journal's name in the state store (`<cluster>/operations/rolling-update-cluster.json`).
pub const OPERATION: &str = "rolling-update-cluster";

use crate::model::compute::control_plane_slots;
use crate::plan::RecordedResource;
use crate::spec::Cluster;

/// The spec's control-plane members, in order.
pub fn members(cluster: &Cluster) -> Vec<String> {
    control_plane_slots(
        cluster.spec.control_plane.count,
        &cluster.spec.networking.zones,
    )
    .iter()
    .map(|slot| slot.member())
    .collect()
}

/// Every recorded auto-scaling group's AWS name, with the member it holds: members first, in
/// the spec's order.
pub fn recorded_groups(
    records: &[RecordedResource],
    cluster: &Cluster,
) -> Vec<(String, Option<String>)> {
    let slots = control_plane_slots(
        cluster.spec.control_plane.count,
        &cluster.spec.networking.zones,
    );
    let mut groups: Vec<(String, Option<String>)> = records
        .iter()
        .filter(|record| record.address.kind == crate::graph::ResourceKind::AutoscalingGroup)
        .filter_map(|record| {
            let member = slots
                .iter()
                .find(|slot| slot.group() == record.address.name)
                .map(|slot| slot.member());
            Some((record.outputs.get("name")?.clone(), member))
        })
        .collect();
    let order = members(cluster);
    groups.sort_by_key(|(_, member)| {
        member
            .as_ref()
            .and_then(|member| order.iter().position(|listed| listed == member))
            .unwrap_or(usize::MAX)
    });
    groups
}
