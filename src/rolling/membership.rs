//! Changing the members of a running AWS control plane (1 → 3 members, 3 → 1, a zone added
//! or removed), the pure part: the steps, one member at a time, and what the cluster looks
//! like between them.
//!
//! etcd changes its membership one member at a time, each change committed by a majority of
//! the members before it (<https://etcd.io/docs/v3.5/op-guide/runtime-configuration/>). The
//! members added come first, in the spec's order, then the members removed, the last first:
//! moving a member from one zone to another goes 3 → 4 → 3 members and tolerates the loss
//! of one throughout, where removing first would go through two members that tolerate none.
//!
//! Between the steps rafter keeps a record of the members (`etcd-peers/_members`,
//! [`record`]): a running member's `etcd-peers.sh` resolves the names it reads there (its
//! bundle only names the members of its first boot), and the first member it names removes
//! from etcd any started member it does not name. A member added joins by itself, as a
//! replaced one does (`member add` from its instance). So rafter, which cannot reach a
//! private etcd, changes the membership through the state store, and gates each step on the
//! members' own reports (`validate::member_reports`).

use std::collections::BTreeSet;

use crate::graph::{GraphNode, ResourceGraph, ResourceKind};
use crate::model::compute::{ControlPlaneSlot, control_plane_slots, member_dns_name};
use crate::model::{ModelError, build_graph};
use crate::spec::Cluster;

/// The journal's name in the state store (`<cluster>/operations/update-cluster-members.json`).
pub const OPERATION: &str = "update-cluster-members";

/// One step of a membership change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipStep {
    /// The member's volume, launch template and group created, its instance booted; it adds
    /// itself to etcd. Gate: every member, it too, healthy and listing the new members.
    Add { member: String },
    /// The member removed from etcd by the first member staying. Gate: the members staying
    /// healthy and listing only themselves. Its instance runs on until the last step.
    Remove { member: String },
    /// The whole new spec applied (the removed members' groups, volumes and zones deleted),
    /// its bundles published, and the new spec stored.
    Apply,
}

impl MembershipStep {
    /// The step's name in the journal.
    pub fn key(&self) -> String {
        match self {
            MembershipStep::Add { member } => format!("add/{member}"),
            MembershipStep::Remove { member } => format!("remove/{member}"),
            MembershipStep::Apply => "apply".to_string(),
        }
    }

    /// What the step does, for the plan.
    pub fn describe(&self) -> String {
        match self {
            MembershipStep::Add { member } => format!(
                "add member {member}: its volume, launch template and group of one; its instance joins etcd; gate: every member healthy and listing it"
            ),
            MembershipStep::Remove { member } => format!(
                "remove member {member} from etcd (the first member staying does it); gate: the members staying healthy and listing only themselves"
            ),
            MembershipStep::Apply => "apply the new spec (the removed members' groups, volumes and zones deleted), publish its bundles, store it".to_string(),
        }
    }
}

/// How a running control plane's members change from `from`'s to `to`'s.
#[derive(Debug, Clone)]
pub struct MembershipChange<'a> {
    /// The stored spec: the members now.
    pub from: &'a Cluster,
    /// The new spec.
    pub to: &'a Cluster,
    pub steps: Vec<MembershipStep>,
}

impl<'a> MembershipChange<'a> {
    /// The change from `from`'s members to `to`'s: None when they are the same.
    pub fn between(from: &'a Cluster, to: &'a Cluster) -> Option<Self> {
        let (before, after) = (members(from), members(to));
        if before == after {
            return None;
        }
        let added = after.iter().filter(|member| !before.contains(member));
        let removed = before.iter().rev().filter(|member| !after.contains(member));
        let steps = added
            .map(|member| MembershipStep::Add {
                member: member.clone(),
            })
            .chain(removed.map(|member| MembershipStep::Remove {
                member: member.clone(),
            }))
            .chain([MembershipStep::Apply])
            .collect();
        Some(Self { from, to, steps })
    }

    /// The journal's step names.
    pub fn keys(&self) -> Vec<String> {
        self.steps.iter().map(MembershipStep::key).collect()
    }

    /// The members once the first `done` steps are done, in order: the stored spec's, with
    /// the members added after them.
    pub fn members_after(&self, done: usize) -> Vec<String> {
        let mut now = members(self.from);
        for step in &self.steps[..done.min(self.steps.len())] {
            match step {
                MembershipStep::Add { member } => now.push(member.clone()),
                MembershipStep::Remove { member } => now.retain(|kept| kept != member),
                MembershipStep::Apply => {}
            }
        }
        now
    }

    /// The members the change removes, in the order it removes them.
    pub fn removed(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter_map(|step| match step {
                MembershipStep::Remove { member } => Some(member.clone()),
                _ => None,
            })
            .collect()
    }

    /// A human line: `a → a, b, c`.
    pub fn describe(&self) -> String {
        format!(
            "{} → {}",
            members(self.from).join(", "),
            members(self.to).join(", ")
        )
    }

    /// The graph to apply while `steps[current]` runs: the new spec's, but without the
    /// volumes, launch templates and groups of the members not added yet, and with every
    /// resource only the stored spec has (the removed members', a removed zone's) kept until
    /// the last step deletes them.
    pub fn graph(&self, current: usize) -> Result<ResourceGraph, ModelError> {
        let new = build_graph(self.to)?;
        if matches!(self.steps.get(current), Some(MembershipStep::Apply) | None) {
            return Ok(new);
        }
        let old = build_graph(self.from)?;
        let slots = all_slots(self.to);
        let pending: Vec<&ControlPlaneSlot> = self.steps[current + 1..]
            .iter()
            .filter_map(|step| match step {
                MembershipStep::Add { member } => {
                    slots.iter().find(|slot| slot.member() == *member)
                }
                _ => None,
            })
            .collect();
        let staged = new
            .with_missing_nodes_from(&old)
            .filtered(|node| !pending.iter().any(|slot| owned_by(slot, node)));
        staged.topological_order().map_err(ModelError::Graph)?;
        Ok(staged)
    }
}

/// The spec's control-plane members, in order.
fn members(cluster: &Cluster) -> Vec<String> {
    super::members(cluster)
}

fn all_slots(cluster: &Cluster) -> Vec<ControlPlaneSlot> {
    control_plane_slots(
        cluster.spec.control_plane.count,
        &cluster.spec.networking.zones,
    )
}

/// Whether `node` is one of `slot`'s own resources: its data volume, launch template, group
/// or the group's lifecycle hook.
fn owned_by(slot: &ControlPlaneSlot, node: &GraphNode) -> bool {
    match node.address.kind {
        ResourceKind::EbsVolume => node.address.name == slot.volume(),
        ResourceKind::LaunchTemplate
        | ResourceKind::AutoscalingGroup
        | ResourceKind::LifecycleHook => node.address.name == slot.group(),
        _ => false,
    }
}

/// The members record of cluster `cluster` naming `members`: a comment line, then one line
/// per member, its name and the DNS name its etcd URLs use (what `etcd-peers.sh` reads).
pub fn record(cluster: &str, members: &[String]) -> String {
    let mut text = format!(
        "# The etcd members of cluster {cluster}, as rafter last changed them (etcd-peers.sh reads this).\n"
    );
    for member in members {
        text.push_str(&format!("{member} {}\n", member_dns_name(member, cluster)));
    }
    text
}

/// The member names a members record holds (comment and malformed lines left out).
pub fn recorded_members(record: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(record)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (name, _host) = (words.next()?, words.next()?);
            words.next().is_none().then(|| name.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Address;

    fn cluster(count: u32, zones: &[&str]) -> Cluster {
        let mut cluster = crate::spec::load(
            &crate::spec::SpecSources {
                profile: Some("ha-aws".into()),
                flags: crate::spec::SpecFlags {
                    name: Some("moving.example.com".into()),
                    zones: Some(zones.iter().map(|zone| zone.to_string()).collect()),
                    ..Default::default()
                },
                ..Default::default()
            },
            Some("s3://bucket/clusters/moving.example.com"),
        )
        .unwrap()
        .cluster;
        cluster.spec.control_plane.count = count;
        cluster
    }

    const ABC: [&str; 3] = ["eu-west-1a", "eu-west-1b", "eu-west-1c"];

    fn keys(from: &Cluster, to: &Cluster) -> Vec<String> {
        MembershipChange::between(from, to)
            .map(|change| change.keys())
            .unwrap_or_default()
    }

    #[test]
    fn one_to_three_adds_two_in_the_specs_order() {
        assert_eq!(
            keys(&cluster(1, &ABC), &cluster(3, &ABC)),
            ["add/eu-west-1b", "add/eu-west-1c", "apply"]
        );
    }

    #[test]
    fn three_to_one_removes_the_last_first() {
        assert_eq!(
            keys(&cluster(3, &ABC), &cluster(1, &ABC)),
            ["remove/eu-west-1c", "remove/eu-west-1b", "apply"]
        );
        let (from, to) = (cluster(3, &ABC), cluster(1, &ABC));
        let change = MembershipChange::between(&from, &to).unwrap();
        assert_eq!(change.removed(), ["eu-west-1c", "eu-west-1b"]);
    }

    #[test]
    fn a_zone_moved_adds_before_it_removes() {
        let (from, to) = (
            cluster(3, &ABC),
            cluster(3, &["eu-west-1a", "eu-west-1b", "eu-west-1d"]),
        );
        assert_eq!(
            keys(&from, &to),
            ["add/eu-west-1d", "remove/eu-west-1c", "apply"]
        );
        let change = MembershipChange::between(&from, &to).unwrap();
        // Four members between the steps: one may fail throughout.
        assert_eq!(
            change.members_after(1),
            ["eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1d"]
        );
        assert_eq!(
            change.members_after(2),
            ["eu-west-1a", "eu-west-1b", "eu-west-1d"]
        );
    }

    #[test]
    fn the_same_members_are_no_change() {
        assert!(MembershipChange::between(&cluster(3, &ABC), &cluster(3, &ABC)).is_none());
        // Another zone after the members' zones moves no member.
        let four_zones = cluster(3, &["eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1d"]);
        assert!(MembershipChange::between(&cluster(3, &ABC), &four_zones).is_none());
    }

    fn has(graph: &ResourceGraph, kind: ResourceKind, name: &str) -> bool {
        graph.get(&Address::new(kind, name)).is_some()
    }

    #[test]
    fn a_step_creates_the_members_added_so_far_and_keeps_the_removed_ones() {
        let (from, to) = (
            cluster(3, &ABC),
            cluster(3, &["eu-west-1a", "eu-west-1b", "eu-west-1d"]),
        );
        let change = MembershipChange::between(&from, &to).unwrap();
        for current in 0..2 {
            let graph = change.graph(current).unwrap();
            for member in ["eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1d"] {
                let group = format!("control-plane-{member}");
                assert!(
                    has(&graph, ResourceKind::AutoscalingGroup, &group),
                    "{member}"
                );
                assert!(
                    has(&graph, ResourceKind::LaunchTemplate, &group),
                    "{member}"
                );
                assert!(
                    has(&graph, ResourceKind::EbsVolume, &format!("etcd-{member}")),
                    "{member}"
                );
            }
        }
        // The last step applies the new spec: member c and its zone's resources go.
        let last = change.graph(2).unwrap();
        assert_eq!(last, build_graph(&to).unwrap());
        assert!(!has(
            &last,
            ResourceKind::AutoscalingGroup,
            "control-plane-eu-west-1c"
        ));
    }

    #[test]
    fn members_not_added_yet_have_no_group() {
        let (from, to) = (cluster(1, &ABC), cluster(3, &ABC));
        let change = MembershipChange::between(&from, &to).unwrap();
        let first = change.graph(0).unwrap();
        assert!(has(
            &first,
            ResourceKind::AutoscalingGroup,
            "control-plane-eu-west-1b"
        ));
        for kind in [ResourceKind::AutoscalingGroup, ResourceKind::LaunchTemplate] {
            assert!(!has(&first, kind, "control-plane-eu-west-1c"));
        }
        assert!(!has(&first, ResourceKind::EbsVolume, "etcd-eu-west-1c"));
        assert_eq!(change.members_after(1), ["eu-west-1a", "eu-west-1b"]);
        let second = change.graph(1).unwrap();
        assert!(has(
            &second,
            ResourceKind::AutoscalingGroup,
            "control-plane-eu-west-1c"
        ));
    }

    #[test]
    fn the_record_names_each_member_and_its_dns_name() {
        let members = vec!["eu-west-1a".to_string(), "eu-west-1a-2".to_string()];
        let text = record("c.example.com", &members);
        assert!(
            text.contains("\neu-west-1a-2 etcd-eu-west-1a-2.internal.c.example.com\n"),
            "{text}"
        );
        assert_eq!(
            recorded_members(text.as_bytes()),
            members.into_iter().collect::<BTreeSet<_>>()
        );
        assert!(recorded_members(b"eu-west-1a\nb c d\n").is_empty());
    }
}
