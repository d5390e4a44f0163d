//! IAM roles, inline policies and instance profiles: one role for the control-plane members
//! and one per node group.
//!
//! Least privilege, statement by statement. Each statement exists because a component rafter
//! deploys calls the action; none is granted "in case":
//!
//! | role          | statement              | who calls it                                      |
//! |---------------|------------------------|---------------------------------------------------|
//! | control plane | `ReadControlPlaneState` | user-data fetching the member's bundle; `etcd-peers.sh` reading the members' addresses |
//! | control plane | `WriteControlPlaneState` | `etcd-peers.sh` publishing the member's address |
//! | control plane | `FindEtcdVolumes`      | `etcd-volume.sh` finding its member's volume (`ec2:DescribeVolumes` has no resource-level permissions) |
//! | control plane | `AttachEtcdVolumes`, `AttachToControlPlane` | `etcd-volume.sh` attaching its member's volume at boot |
//! | control plane | the add-ons' statements | the cloud controller, EBS CSI driver and cluster autoscaler that are on ([`super::iam_addons`]) |
//! | node group    | `ReadNodeGroupState`   | user-data fetching the group's bundle             |
//!
//! `ec2:AttachVolume` for etcd is allowed only for a volume carrying this cluster's tag and
//! the etcd role tag, to an instance carrying this cluster's tag and the control-plane role
//! tag (both resources of the call must be allowed). Besides the add-ons' statements (each
//! change conditioned on this cluster's tag), no EC2, Elastic Load Balancing or ECR action is
//! granted. No role can tag an existing resource (the add-ons tag only what they create, as
//! they create it), so no role can stamp this cluster's tags on another team's volume or
//! instance to make it attachable, and a node group's role holds no EC2 action at all.
//!
//! The S3 prefixes come from [`crate::state::layout`], so the key a bundle is published at
//! and the statement that lets its instances read it are derived from one place.

use std::collections::BTreeMap;

use serde_json::json;

use super::compute::node_group_local;
use super::naming::{CLUSTER_TAG, CONTROL_PLANE_ROLE, ETCD_VOLUME_ROLE, Naming, ROLE_TAG};
use crate::graph::resources::{IamInstanceProfile, IamRole, IamRolePolicy, Ref};
use crate::graph::{DataFile, FileEncoding, ResourceGraph};
use crate::spec::Cluster;
use crate::state::layout::NodeGrant;

pub struct InstanceProfiles {
    pub control_plane: Ref<IamInstanceProfile>,
    /// One per node group, by the group's name in the spec.
    pub node_groups: BTreeMap<String, Ref<IamInstanceProfile>>,
}

fn policy_file(name: String, document: &serde_json::Value) -> DataFile {
    // serde_json keeps object keys sorted, so the bytes are deterministic.
    let content = serde_json::to_string_pretty(document)
        .map(|text| text + "\n")
        .unwrap_or_default();
    DataFile {
        name,
        content,
        encoding: FileEncoding::Text,
    }
}

/// `s3://bucket/prefix/cluster` -> (`bucket`, `prefix/cluster`).
fn s3_location(config_base: &str) -> Option<(&str, &str)> {
    let rest = config_base.strip_prefix("s3://")?;
    Some(rest.split_once('/').unwrap_or((rest, "")))
}

/// The AWS partition of a region: `aws-cn` for China, `aws-us-gov` for GovCloud.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The principal EC2 instances assume roles as, in `partition`.
fn ec2_service_principal(partition: &str) -> &'static str {
    if partition == "aws-cn" {
        "ec2.amazonaws.com.cn"
    } else {
        "ec2.amazonaws.com"
    }
}

/// The S3 statements of `grant`: `s3:GetObject` on each readable directory and
/// `s3:PutObject` on each writable one, under the cluster's part of the state store. None
/// when the state store is not in S3 (instances could not reach it anyway).
fn state_store_statements(cluster: &Cluster, grant: &NodeGrant) -> Vec<serde_json::Value> {
    let Some((bucket, key_prefix)) = cluster.spec.config_base.as_deref().and_then(s3_location)
    else {
        return Vec::new();
    };
    let partition = partition(cluster.spec.region.as_deref().unwrap_or_default());
    let objects = |dirs: &[String]| -> Vec<String> {
        dirs.iter()
            .map(|dir| {
                let key = [key_prefix.trim_end_matches('/'), dir]
                    .iter()
                    .filter(|part| !part.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("/");
                format!("arn:{partition}:s3:::{bucket}/{key}/*")
            })
            .collect()
    };
    let mut statements = Vec::new();
    if !grant.read.is_empty() {
        statements.push(json!({
            "Sid": format!("Read{}State", grant.holder),
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": objects(&grant.read),
        }));
    }
    if !grant.write.is_empty() {
        statements.push(json!({
            "Sid": format!("Write{}State", grant.holder),
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": objects(&grant.write),
        }));
    }
    statements
}

/// What a control-plane member's `etcd-volume.sh` needs: find its member's volume, and
/// attach a volume of this cluster's etcd members to an instance of this cluster's control
/// plane (never anything else: the tags are checked on both resources of the call).
fn etcd_volume_statements(cluster: &Cluster) -> Vec<serde_json::Value> {
    let region = cluster.spec.region.as_deref().unwrap_or("*");
    let partition = partition(region);
    let tagged = |role: &str| {
        json!({
            "StringEquals": {
                format!("aws:ResourceTag/{CLUSTER_TAG}"): cluster.metadata.name,
                format!("aws:ResourceTag/{ROLE_TAG}"): role,
            }
        })
    };
    vec![
        json!({
            "Sid": "FindEtcdVolumes",
            "Effect": "Allow",
            "Action": ["ec2:DescribeVolumes"],
            "Resource": "*",
        }),
        json!({
            "Sid": "AttachEtcdVolumes",
            "Effect": "Allow",
            "Action": ["ec2:AttachVolume"],
            "Resource": format!("arn:{partition}:ec2:{region}:*:volume/*"),
            "Condition": tagged(ETCD_VOLUME_ROLE),
        }),
        json!({
            "Sid": "AttachToControlPlane",
            "Effect": "Allow",
            "Action": ["ec2:AttachVolume"],
            "Resource": format!("arn:{partition}:ec2:{region}:*:instance/*"),
            "Condition": tagged(CONTROL_PLANE_ROLE),
        }),
    ]
}

pub fn build(graph: &mut ResourceGraph, cluster: &Cluster, naming: &Naming) -> InstanceProfiles {
    let mut control_plane_statements = state_store_statements(cluster, &NodeGrant::control_plane());
    control_plane_statements.extend(etcd_volume_statements(cluster));
    control_plane_statements.extend(super::iam_addons::statements(cluster, naming));
    let control_plane = role(
        graph,
        cluster,
        naming,
        "control-plane",
        control_plane_statements,
    );
    let node_groups = cluster
        .spec
        .node_groups
        .iter()
        .map(|group| {
            let profile = role(
                graph,
                cluster,
                naming,
                &node_group_local(&group.name),
                state_store_statements(cluster, &NodeGrant::node_group(&group.name)),
            );
            (group.name.clone(), profile)
        })
        .collect();
    InstanceProfiles {
        control_plane,
        node_groups,
    }
}

fn role(
    graph: &mut ResourceGraph,
    cluster: &Cluster,
    naming: &Naming,
    local: &str,
    statements: Vec<serde_json::Value>,
) -> Ref<IamInstanceProfile> {
    let partition = partition(cluster.spec.region.as_deref().unwrap_or_default());
    let assume = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": ec2_service_principal(partition) },
            "Action": "sts:AssumeRole",
        }],
    });
    let role = graph.add(
        local,
        IamRole {
            name: naming.iam(local),
            assume_role_policy: policy_file(format!("iam-{local}-assume-role.json"), &assume),
            tags: naming.tags(local, "iam"),
        },
    );
    if !statements.is_empty() {
        let policy = json!({ "Version": "2012-10-17", "Statement": statements });
        graph.add(
            local,
            IamRolePolicy {
                role: role.clone(),
                name: naming.iam(local),
                policy: policy_file(format!("iam-{local}-policy.json"), &policy),
            },
        );
    }
    graph.add(
        local,
        IamInstanceProfile {
            name: naming.iam(local),
            role,
            tags: naming.tags(local, "iam"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_locations() {
        assert_eq!(
            s3_location("s3://bucket/prefix/c.example.com"),
            Some(("bucket", "prefix/c.example.com"))
        );
        assert_eq!(s3_location("s3://bucket"), Some(("bucket", "")));
        assert_eq!(s3_location("file:///tmp/x"), None);
    }

    #[test]
    fn derives_the_partition_from_the_region() {
        assert_eq!(partition("eu-west-1"), "aws");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(ec2_service_principal("aws-cn"), "ec2.amazonaws.com.cn");
        assert_eq!(ec2_service_principal("aws-us-gov"), "ec2.amazonaws.com");
    }
}
