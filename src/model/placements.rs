//! Where each auto-scaling group launches instances: its launch template's instance type and
//! its subnets' zones, read from the graph (what the apply creates, so the check and the
//! groups cannot disagree), for checking before an apply that AWS offers that type there.

use crate::graph::{Resource, ResourceGraph};

/// One group's instance type and zones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The auto-scaling group's name.
    pub group: String,
    pub instance_type: String,
    pub zones: Vec<String>,
}

/// Every auto-scaling group's placement, in graph order.
pub fn placements(graph: &ResourceGraph) -> Vec<Placement> {
    graph
        .nodes()
        .iter()
        .filter_map(|node| match &node.resource {
            Resource::AutoscalingGroup(group) => Some(group),
            _ => None,
        })
        .filter_map(|group| {
            let instance_type = match &graph.get(group.launch_template.address())?.resource {
                Resource::LaunchTemplate(template) => template.instance_type.clone(),
                _ => return None,
            };
            let mut zones: Vec<String> = group
                .subnets
                .iter()
                .filter_map(|subnet| match &graph.get(subnet.address())?.resource {
                    Resource::Subnet(subnet) => Some(subnet.zone.clone()),
                    _ => None,
                })
                .collect();
            zones.dedup();
            Some(Placement {
                group: group.name.clone(),
                instance_type,
                zones,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::build_graph;
    use crate::spec::{self, SpecFlags, SpecSources};

    #[test]
    fn every_group_is_placed_with_its_template_type_and_subnet_zones() {
        let sources = SpecSources {
            flags: SpecFlags {
                name: Some("placed.example.com".into()),
                zones: Some(vec![
                    "eu-west-1a".into(),
                    "eu-west-1b".into(),
                    "eu-west-1c".into(),
                ]),
                ..SpecFlags::default()
            },
            profile: Some("ha-aws".into()),
            ..SpecSources::default()
        };
        let cluster = spec::load(&sources, None).unwrap().cluster;
        let placements = placements(&build_graph(&cluster).unwrap());
        let control_planes: Vec<&Placement> = placements
            .iter()
            .filter(|placement| placement.group.starts_with("control-plane-"))
            .collect();
        assert_eq!(
            control_planes.len(),
            cluster.spec.control_plane.count as usize
        );
        for placement in &control_planes {
            assert_eq!(
                placement.instance_type,
                cluster.spec.control_plane.instance_type
            );
            assert_eq!(placement.zones.len(), 1, "{placement:?}");
            assert!(
                placement.group.contains(&placement.zones[0]),
                "{placement:?}"
            );
        }
        for group in &cluster.spec.node_groups {
            let placement = placements
                .iter()
                .find(|placement| {
                    placement
                        .group
                        .starts_with(&format!("nodes-{}", group.name))
                })
                .unwrap_or_else(|| panic!("{} is not placed: {placements:?}", group.name));
            assert_eq!(placement.instance_type, group.instance_type);
            assert_eq!(placement.zones, cluster.spec.networking.zones);
        }
    }
}
