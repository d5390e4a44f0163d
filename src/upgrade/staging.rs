//! An upgrade on AWS, the pure part: its steps (each control-plane member alone, then the
//! node groups, then the new spec stored), and what the cluster looks like between them.
//!
//! On AWS a node's versions reach it only through what its instance boots from: its
//! group's launch template and its node bundle in the state store. So a step moves one
//! owner's launch template and bundle to the new versions (a [`Staging`]) and then replaces
//! its instance. Until every member is done, the node groups keep the old versions' launch
//! templates and bundles, so an instance that autoscales meanwhile never runs a kubelet
//! newer than an API server (kops' "new kubelets against old API servers mid-upgrade").

use std::collections::BTreeSet;

use crate::graph::{ResourceGraph, ResourceKind};
use crate::model::compute::control_plane_slots;
use crate::model::{ModelError, build_graph};
use crate::spec::Cluster;
use crate::state::layout::BundleOwner;

/// One step of an AWS upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsStep {
    /// The member's launch template and bundle on the new versions, its instance replaced
    /// through its group of one, then the gate on the members' reports.
    Member { member: String },
    /// Every node group's (and the bastion's) launch template and bundle on the new
    /// versions: instances launched from then on run them.
    NodeGroups,
    /// The new spec stored: from here on `update cluster` renders the new versions.
    StoreSpec,
}

impl AwsStep {
    /// The step's name in the journal.
    pub fn key(&self) -> String {
        match self {
            AwsStep::Member { member } => format!("member/{member}"),
            AwsStep::NodeGroups => "node-groups".to_string(),
            AwsStep::StoreSpec => "store-spec".to_string(),
        }
    }

    /// What the step does, for the plan.
    pub fn describe(&self) -> String {
        match self {
            AwsStep::Member { member } => format!(
                "member {member}: new launch template version and bundle, its instance replaced; gate: the member reports from the new instance, it and every other member healthy and caught up"
            ),
            AwsStep::NodeGroups => "node groups: new launch template versions and bundles, then their instances on the old versions replaced, --max-surge at a time".to_string(),
            AwsStep::StoreSpec => "store the new spec".to_string(),
        }
    }
}

/// The steps of an AWS upgrade of `target`'s members (in the spec's order).
pub fn aws_steps(target: &Cluster) -> Vec<AwsStep> {
    let spec = &target.spec;
    control_plane_slots(spec.control_plane.count, &spec.networking.zones)
        .iter()
        .map(|slot| AwsStep::Member {
            member: slot.member(),
        })
        .chain([AwsStep::NodeGroups, AwsStep::StoreSpec])
        .collect()
}

/// The cluster partway through an upgrade: which owners' bundles and launch templates
/// carry the new versions.
#[derive(Debug, Clone)]
pub struct Staging<'a> {
    /// The stored spec: the old versions.
    pub from: &'a Cluster,
    /// The upgrade's target: the new versions (and nothing else changed).
    pub to: &'a Cluster,
    /// The members on the new versions.
    pub members: BTreeSet<String>,
    /// Whether the node groups (and the bastion) are on the new versions.
    pub node_groups: bool,
}

impl<'a> Staging<'a> {
    /// The staging while `steps[current]` runs: every step before it done, and it too.
    pub fn at(from: &'a Cluster, to: &'a Cluster, steps: &[AwsStep], current: usize) -> Self {
        let upto = &steps[..=current.min(steps.len().saturating_sub(1))];
        Staging {
            from,
            to,
            members: upto
                .iter()
                .filter_map(|step| match step {
                    AwsStep::Member { member } => Some(member.clone()),
                    _ => None,
                })
                .collect(),
            node_groups: upto
                .iter()
                .any(|step| matches!(step, AwsStep::NodeGroups | AwsStep::StoreSpec)),
        }
    }

    /// The spec `owner`'s bundle is rendered from.
    pub fn spec_of(&self, owner: &BundleOwner<'_>) -> &'a Cluster {
        let upgraded = match owner {
            BundleOwner::ControlPlaneMember(member) => self.members.contains(*member),
            BundleOwner::NodeGroup(_) => self.node_groups,
        };
        if upgraded { self.to } else { self.from }
    }

    /// Whether the launch template of the group with local name `group` is on the new
    /// versions.
    fn group_upgraded(&self, group: &str) -> bool {
        let spec = &self.to.spec;
        match control_plane_slots(spec.control_plane.count, &spec.networking.zones)
            .iter()
            .find(|slot| slot.group() == group)
        {
            Some(slot) => self.members.contains(&slot.member()),
            None => self.node_groups,
        }
    }

    /// The resource graph to apply: the target's, with the launch templates of the groups
    /// not upgraded yet as the old versions render them.
    pub fn graph(&self) -> Result<ResourceGraph, ModelError> {
        let new = build_graph(self.to)?;
        let old = build_graph(self.from)?;
        let staged = new.with_nodes_from(&old, |node| {
            node.address.kind == ResourceKind::LaunchTemplate
                && !self.group_upgraded(&node.address.name)
        });
        staged.topological_order().map_err(ModelError::Graph)?;
        Ok(staged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Resource, Value};

    fn cluster(kubernetes: &str, etcd: &str) -> Cluster {
        let mut cluster = crate::spec::load(
            &crate::spec::SpecSources {
                profile: Some("ha-aws".into()),
                flags: crate::spec::SpecFlags {
                    name: Some("staged.example.com".into()),
                    zones: Some(vec![
                        "eu-west-1a".into(),
                        "eu-west-1b".into(),
                        "eu-west-1c".into(),
                    ]),
                    ..Default::default()
                },
                ..Default::default()
            },
            Some("s3://bucket/clusters/staged.example.com"),
        )
        .unwrap()
        .cluster;
        cluster.spec.kubernetes_version = kubernetes.into();
        cluster.spec.etcd.version = etcd.into();
        cluster
    }

    /// Each launch template's user-data, by the template's local name.
    fn user_data(graph: &ResourceGraph) -> Vec<(String, String)> {
        graph
            .nodes()
            .iter()
            .filter_map(|node| match &node.resource {
                Resource::LaunchTemplate(_) => {
                    node.resource
                        .attributes()
                        .into_iter()
                        .find_map(|field| match field.value {
                            Value::File(file) => Some((node.address.name.clone(), file.content)),
                            _ => None,
                        })
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn members_one_by_one_then_the_node_groups_then_the_spec() {
        let keys: Vec<String> = aws_steps(&cluster("1.35.0", "3.5.1"))
            .iter()
            .map(AwsStep::key)
            .collect();
        assert_eq!(
            keys,
            [
                "member/eu-west-1a",
                "member/eu-west-1b",
                "member/eu-west-1c",
                "node-groups",
                "store-spec"
            ]
        );
    }

    #[test]
    fn only_the_members_done_and_the_current_one_render_the_new_versions() {
        let (from, to) = (cluster("1.34.2", "3.4.23"), cluster("1.35.0", "3.5.1"));
        let steps = aws_steps(&to);
        let staging = Staging::at(&from, &to, &steps, 1);
        assert_eq!(
            staging.members,
            BTreeSet::from(["eu-west-1a".to_string(), "eu-west-1b".to_string()])
        );
        assert!(!staging.node_groups);
        let graph = staging.graph().unwrap();
        for (group, user_data) in user_data(&graph) {
            let new = user_data.contains("Kubernetes 1.35.0 and etcd 3.5.1");
            let old = user_data.contains("Kubernetes 1.34.2");
            let expected_new =
                group == "control-plane-eu-west-1a" || group == "control-plane-eu-west-1b";
            assert_eq!((new, old), (expected_new, !expected_new), "{group}");
        }
        assert!(std::ptr::eq(
            staging.spec_of(&BundleOwner::ControlPlaneMember("eu-west-1b")),
            &to
        ));
        assert!(std::ptr::eq(
            staging.spec_of(&BundleOwner::ControlPlaneMember("eu-west-1c")),
            &from
        ));
        assert!(std::ptr::eq(
            staging.spec_of(&BundleOwner::NodeGroup("nodes")),
            &from
        ));
    }

    #[test]
    fn the_node_groups_step_puts_every_group_on_the_new_versions() {
        let (from, to) = (cluster("1.34.2", "3.4.23"), cluster("1.35.0", "3.5.1"));
        let steps = aws_steps(&to);
        for current in [3, 4] {
            let staging = Staging::at(&from, &to, &steps, current);
            assert!(staging.node_groups);
            assert_eq!(staging.members.len(), 3);
            assert_eq!(staging.graph().unwrap(), build_graph(&to).unwrap());
            assert!(std::ptr::eq(
                staging.spec_of(&BundleOwner::NodeGroup("nodes")),
                &to
            ));
        }
    }

    #[test]
    fn an_etcd_only_upgrade_changes_the_members_launch_templates_alone() {
        let (from, to) = (cluster("1.34.2", "3.4.23"), cluster("1.34.2", "3.5.1"));
        let (old, new) = (build_graph(&from).unwrap(), build_graph(&to).unwrap());
        let changed: Vec<String> = user_data(&old)
            .into_iter()
            .zip(user_data(&new))
            .filter(|(old, new)| old != new)
            .map(|(old, _)| old.0)
            .collect();
        assert_eq!(
            changed,
            [
                "control-plane-eu-west-1a",
                "control-plane-eu-west-1b",
                "control-plane-eu-west-1c"
            ]
        );
    }
}
