//! Key pair, machine images, launch templates and auto-scaling groups, and the control-plane
//! members' etcd data volumes.
//!
//! One auto-scaling group of one instance per control-plane member (so a replaced member
//! keeps its name and zone), one per node group, and one for the bastion; each with its own
//! launch template, so changing one group never rolls another.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ModelError;
use super::iam::InstanceProfiles;
use super::loadbalancer::ApiLoadBalancer;
use super::naming::{CONTROL_PLANE_ROLE, ETCD_MEMBER_TAG, ETCD_VOLUME_ROLE, Naming};
use super::network::Network;
use super::security::SecurityGroups;
use crate::graph::resources::{
    AutoscalingGroup, EbsVolume, IamInstanceProfile, Image, ImageSource, KeyPair, LaunchTemplate,
    Ref, SecurityGroup, Subnet, TargetGroup,
};
use crate::graph::{DataFile, FileEncoding, ResourceGraph};
use crate::spec::images::{ImageChoice, architecture_of, resolve_image};
use crate::spec::{Cluster, Topology};
use crate::state::layout::BundleOwner;

/// What the first-boot script of an instance is told.
#[derive(Serialize)]
struct UserDataContext<'a> {
    cluster_name: &'a str,
    role: &'a str,
    group: &'a str,
    kubernetes_version: &'a str,
    /// The etcd a control-plane member's bundle installs (empty for other groups): so that
    /// an etcd upgrade makes a new launch template version too, and the member's instance
    /// counts as out of date until it is replaced.
    etcd_version: &'a str,
    /// Where the group's node bundle is published (empty for the bastion, which has none).
    bundle_url: String,
    /// Where its instances report how their boot went (empty for the bastion).
    status_url: String,
    provider_id_file: &'static str,
}

/// Where an instance's first boot writes `RAFTER_PROVIDER_ID=aws:///ZONE/INSTANCE-ID` from its
/// metadata, for the kubelet's `--provider-id`, and `RAFTER_ACCOUNT_ID`, for the node
/// termination handler's queue URL (a bundle serves a whole group, so the instance's own
/// identity is only known on the instance).
pub const PROVIDER_ID_FILE: &str = "/etc/rafter/kubelet.env";

/// One group of identical instances: its launch template and auto-scaling group.
struct InstanceGroup<'a> {
    local: String,
    role: &'a str,
    /// Whose node bundle the instances fetch at boot; `None` for the bastion.
    bundle: Option<BundleOwner<'a>>,
    image: &'a str,
    instance_type: &'a str,
    root_volume_gb: u32,
    instance_profile: Option<Ref<IamInstanceProfile>>,
    security_group: Ref<SecurityGroup>,
    public_ip: bool,
    subnets: Vec<Ref<Subnet>>,
    min_size: u32,
    max_size: u32,
    target_groups: Vec<Ref<TargetGroup>>,
    /// A control-plane member's etcd volume.
    data_volume: Option<Ref<EbsVolume>>,
    extra_tags: BTreeMap<String, String>,
}

struct Builder<'a> {
    graph: &'a mut ResourceGraph,
    cluster: &'a Cluster,
    naming: &'a Naming,
    key_pair: Option<Ref<KeyPair>>,
    images: BTreeMap<String, Ref<Image>>,
}

impl Builder<'_> {
    fn image(&mut self, image: &str, instance_type: &str) -> Result<ImageSource, ModelError> {
        match resolve_image(image) {
            Some(ImageChoice::AmiId(id)) => Ok(ImageSource::AmiId(id.to_string())),
            Some(ImageChoice::Alias(alias)) => {
                let architecture = architecture_of(instance_type);
                let local = format!("{}-{architecture}", alias.alias.replace('.', "-"));
                if let Some(existing) = self.images.get(&local) {
                    return Ok(ImageSource::Lookup(existing.clone()));
                }
                let lookup = self.graph.add(
                    local.clone(),
                    Image {
                        owner: alias.owner.to_string(),
                        name_pattern: alias.name_pattern.replace("{arch}", architecture),
                        architecture: architecture.to_string(),
                    },
                );
                self.images.insert(local, lookup.clone());
                Ok(ImageSource::Lookup(lookup))
            }
            None => Err(ModelError::UnknownImage(image.to_string())),
        }
    }

    fn instance_group(
        &mut self,
        group: InstanceGroup<'_>,
    ) -> Result<Ref<AutoscalingGroup>, ModelError> {
        let spec = &self.cluster.spec;
        let user_data = crate::templates::render(
            "user-data/node.sh",
            UserDataContext {
                cluster_name: &self.cluster.metadata.name,
                role: group.role,
                group: &group.local,
                kubernetes_version: &spec.kubernetes_version,
                etcd_version: match group.role {
                    CONTROL_PLANE_ROLE => &spec.etcd.version,
                    _ => "",
                },
                // The bastion is no node: it only records who it is.
                bundle_url: group
                    .bundle
                    .as_ref()
                    .map(|owner| owner.url(spec.config_base.as_deref().unwrap_or("")))
                    .unwrap_or_default(),
                status_url: group
                    .bundle
                    .as_ref()
                    .map(|owner| owner.status_url(spec.config_base.as_deref().unwrap_or("")))
                    .unwrap_or_default(),
                provider_id_file: PROVIDER_ID_FILE,
            },
        )?;
        let mut instance_tags = self.naming.tags(&group.local, group.role);
        instance_tags.extend(group.extra_tags.clone());
        let template = LaunchTemplate {
            name: self.naming.qualified(&group.local),
            image: self.image(group.image, group.instance_type)?,
            instance_type: group.instance_type.to_string(),
            instance_profile: group.instance_profile,
            security_groups: vec![group.security_group],
            public_ip: group.public_ip,
            key_pair: self.key_pair.clone(),
            root_volume_gb: group.root_volume_gb,
            user_data: DataFile {
                name: format!("user-data-{}.sh", group.local),
                content: user_data,
                encoding: FileEncoding::Base64,
            },
            tags: self.naming.tags(&group.local, group.role),
            instance_tags: instance_tags.clone(),
        };
        let launch_template = self.graph.add(group.local.clone(), template);
        Ok(self.graph.add(
            group.local.clone(),
            AutoscalingGroup {
                name: self.naming.qualified(&group.local),
                launch_template,
                subnets: group.subnets,
                min_size: group.min_size,
                max_size: group.max_size,
                target_groups: group.target_groups,
                data_volume: group.data_volume,
                tags: instance_tags,
            },
        ))
    }
}

/// The local name of a node group's launch template, auto-scaling group and IAM role.
pub fn node_group_local(group: &str) -> String {
    format!("nodes-{group}")
}

/// The name of a node group's auto-scaling group (what the cluster autoscaler is told to
/// size, and the one its IAM statement names).
pub fn node_group_asg_name(naming: &Naming, group: &str) -> String {
    naming.qualified(&node_group_local(group))
}

/// The names of the auto-scaling groups that run nodes: every control-plane member's and
/// every node group's (not the bastion's), as [`build`] names them.
pub fn node_running_asg_names(cluster: &Cluster, naming: &Naming) -> Vec<String> {
    let spec = &cluster.spec;
    control_plane_slots(spec.control_plane.count, &spec.networking.zones)
        .iter()
        .map(|slot| naming.qualified(&slot.group()))
        .chain(
            spec.node_groups
                .iter()
                .map(|group| node_group_asg_name(naming, &group.name)),
        )
        .collect()
}

/// One control-plane member on AWS: its zone, and its place among that zone's members. Each
/// has an auto-scaling group of one instance, so a replaced instance takes the same member's
/// place (name, DNS name, certificates) in the same zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlaneSlot {
    pub zone: String,
    /// 1 for the zone's first member.
    pub ordinal: u32,
}

impl ControlPlaneSlot {
    /// The etcd member's name: the zone, suffixed from the zone's second member on.
    pub fn member(&self) -> String {
        if self.ordinal == 1 {
            self.zone.clone()
        } else {
            format!("{}-{}", self.zone, self.ordinal)
        }
    }

    /// The local name of the member's launch template and auto-scaling group.
    pub fn group(&self) -> String {
        format!("control-plane-{}", self.member())
    }

    /// The local name of the member's etcd data volume.
    pub fn volume(&self) -> String {
        format!("etcd-{}", self.member())
    }

    /// The name the member's etcd URLs use; each member resolves it from the addresses the
    /// members publish when they boot.
    pub fn dns_name(&self, cluster: &str) -> String {
        member_dns_name(&self.member(), cluster)
    }
}

/// The name etcd member `member` of `cluster` is reached at (see [`ControlPlaneSlot::dns_name`]).
pub fn member_dns_name(member: &str, cluster: &str) -> String {
    format!("etcd-{member}.internal.{cluster}")
}

/// The control plane's members, round-robin over the zones in order (`a`, `b`, `c`, `a-2`…).
pub fn control_plane_slots(count: u32, zones: &[String]) -> Vec<ControlPlaneSlot> {
    if zones.is_empty() {
        return Vec::new();
    }
    (0..count as usize)
        .map(|position| ControlPlaneSlot {
            zone: zones[position % zones.len()].clone(),
            ordinal: (position / zones.len()) as u32 + 1,
        })
        .collect()
}

/// The launch templates and auto-scaling groups of the control-plane members, node groups
/// and bastion, with the members' etcd volumes. Returns the groups that run nodes (not the
/// bastion's).
pub fn build(
    graph: &mut ResourceGraph,
    cluster: &Cluster,
    naming: &Naming,
    network: &Network,
    groups: &SecurityGroups,
    profiles: &InstanceProfiles,
    api: &ApiLoadBalancer,
) -> Result<Vec<Ref<AutoscalingGroup>>, ModelError> {
    let spec = &cluster.spec;
    let key_pair = spec.ssh_access.public_key.as_ref().map(|public_key| {
        graph.add(
            "main",
            KeyPair {
                name: naming.cluster().to_string(),
                public_key: public_key.trim().to_string(),
                tags: naming.tags("key", "compute"),
            },
        )
    });
    let mut builder = Builder {
        graph,
        cluster,
        naming,
        key_pair,
        images: BTreeMap::new(),
    };
    let public_nodes = spec.networking.topology == Topology::Public;
    let mut node_groups = Vec::new();

    for slot in control_plane_slots(spec.control_plane.count, &spec.networking.zones) {
        let member = slot.member();
        let mut volume_tags = naming.tags(&slot.volume(), ETCD_VOLUME_ROLE);
        volume_tags.insert(ETCD_MEMBER_TAG.to_string(), member.clone());
        let volume = &spec.etcd.volume;
        let data_volume = builder.graph.add(
            slot.volume(),
            EbsVolume {
                zone: slot.zone.clone(),
                size_gib: volume.size_gib,
                volume_type: volume.volume_type.clone(),
                iops: volume.iops,
                throughput_mibps: volume.throughput_mibps,
                tags: volume_tags,
            },
        );
        node_groups.push(builder.instance_group(InstanceGroup {
            local: slot.group(),
            role: CONTROL_PLANE_ROLE,
            bundle: Some(BundleOwner::ControlPlaneMember(&member)),
            image: &spec.control_plane.image,
            instance_type: &spec.control_plane.instance_type,
            root_volume_gb: spec.control_plane.root_volume_size_gb,
            instance_profile: Some(profiles.control_plane.clone()),
            security_group: groups.control_plane.clone(),
            public_ip: public_nodes,
            subnets: vec![network.node_subnet(&slot.zone)?],
            min_size: 1,
            max_size: 1,
            target_groups: api.target_groups(),
            data_volume: Some(data_volume),
            extra_tags: BTreeMap::new(),
        })?);
    }

    for node_group in &spec.node_groups {
        let mut extra_tags = BTreeMap::from([
            (
                "k8s.io/cluster-autoscaler/enabled".to_string(),
                "true".to_string(),
            ),
            (
                format!("k8s.io/cluster-autoscaler/{}", naming.cluster()),
                "owned".to_string(),
            ),
        ]);
        // What a node of the group will carry, for the autoscaler to scale a group up from
        // zero instances (autoscaler cloudprovider/aws/README.md, "Scaling a node group to
        // 0"): it cannot see a node to copy labels from.
        if spec.addons().cluster_autoscaler.enabled {
            extra_tags.extend(node_group.labels.iter().map(|(key, value)| {
                (
                    format!("k8s.io/cluster-autoscaler/node-template/label/{key}"),
                    value.clone(),
                )
            }));
        }
        node_groups.push(builder.instance_group(InstanceGroup {
            local: node_group_local(&node_group.name),
            role: "node",
            bundle: Some(BundleOwner::NodeGroup(&node_group.name)),
            image: &node_group.image,
            instance_type: &node_group.instance_type,
            root_volume_gb: node_group.root_volume_size_gb,
            instance_profile: profiles.node_groups.get(&node_group.name).cloned(),
            security_group: groups.nodes.clone(),
            public_ip: public_nodes,
            subnets: network.node_subnets(&node_group.zones)?,
            min_size: node_group.min_size,
            max_size: node_group.max_size,
            target_groups: Vec::new(),
            data_volume: None,
            extra_tags,
        })?);
    }

    if let (Some(bastion), Some(bastion_group)) = (&spec.bastion, &groups.bastion) {
        builder.instance_group(InstanceGroup {
            local: "bastion".to_string(),
            role: "bastion",
            bundle: None,
            image: &bastion.image,
            instance_type: &bastion.instance_type,
            root_volume_gb: 16,
            instance_profile: None,
            security_group: bastion_group.clone(),
            public_ip: true,
            subnets: network.public_subnet_list(&spec.networking.zones)?,
            min_size: 1,
            max_size: 1,
            target_groups: Vec::new(),
            data_volume: None,
            extra_tags: BTreeMap::new(),
        })?;
    }
    Ok(node_groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones(count: usize) -> Vec<String> {
        ["a", "b", "c"]
            .iter()
            .take(count)
            .map(|suffix| format!("eu-west-1{suffix}"))
            .collect()
    }

    #[test]
    fn spreads_control_plane_members_round_robin() {
        let members = |count, zone_count| -> Vec<String> {
            control_plane_slots(count, &zones(zone_count))
                .iter()
                .map(ControlPlaneSlot::member)
                .collect()
        };
        assert_eq!(members(3, 3), ["eu-west-1a", "eu-west-1b", "eu-west-1c"]);
        assert_eq!(members(1, 3), ["eu-west-1a"]);
        assert_eq!(
            members(5, 3),
            [
                "eu-west-1a",
                "eu-west-1b",
                "eu-west-1c",
                "eu-west-1a-2",
                "eu-west-1b-2"
            ]
        );
        assert_eq!(
            members(3, 1),
            ["eu-west-1a", "eu-west-1a-2", "eu-west-1a-3"]
        );
        assert!(control_plane_slots(3, &[]).is_empty());
    }

    #[test]
    fn names_a_members_group_and_dns_name_after_it() {
        let slot = &control_plane_slots(4, &zones(3))[3];
        assert_eq!(slot.group(), "control-plane-eu-west-1a-2");
        assert_eq!(
            slot.dns_name("c.example.com"),
            "etcd-eu-west-1a-2.internal.c.example.com"
        );
    }

    #[test]
    fn with_the_autoscaler_on_a_node_groups_labels_are_tagged_for_scaling_from_zero() {
        let tags_of_workers = |autoscaler: bool| {
            let mut cluster = crate::spec::load(
                &crate::spec::SpecSources {
                    profile: Some("dev-aws".into()),
                    flags: crate::spec::SpecFlags {
                        name: Some("c.example.com".into()),
                        zones: Some(vec!["eu-west-1a".into()]),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                Some("s3://bucket/clusters/c.example.com"),
            )
            .unwrap()
            .cluster;
            cluster.spec.node_groups[0]
                .labels
                .insert("tier".into(), "batch".into());
            let mut addons = cluster.spec.addons();
            addons.cluster_autoscaler.enabled = autoscaler;
            cluster.spec.addons = Some(addons);
            let graph = crate::model::build_graph(&cluster).unwrap();
            graph
                .nodes()
                .iter()
                .find_map(|node| match &node.resource {
                    crate::graph::Resource::AutoscalingGroup(group)
                        if group.name.starts_with("nodes-") =>
                    {
                        Some(group.tags.clone())
                    }
                    _ => None,
                })
                .unwrap()
        };
        let key = "k8s.io/cluster-autoscaler/node-template/label/tier";
        assert_eq!(
            tags_of_workers(true).get(key).map(String::as_str),
            Some("batch")
        );
        assert!(!tags_of_workers(false).contains_key(key));
    }
}
