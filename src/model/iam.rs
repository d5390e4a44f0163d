//! IAM roles, inline policies and instance profiles for control-plane nodes and workers.
//!
//! Least privilege: read-only EC2 discovery everywhere; mutations only on resources tagged as
//! this cluster's; S3 access only under this cluster's part of the state store, and for
//! workers only the `nodes/` part of it; control-plane nodes write only under `etcd-peers/`
//! (the members' addresses, which is how they find each other at boot).

use serde_json::json;

use super::naming::Naming;
use crate::graph::resources::{IamInstanceProfile, IamRole, IamRolePolicy, Ref};
use crate::graph::{DataFile, FileEncoding, ResourceGraph};
use crate::spec::Cluster;

pub struct InstanceProfiles {
    pub control_plane: Ref<IamInstanceProfile>,
    pub nodes: Ref<IamInstanceProfile>,
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

/// `bucket` and `key` of the cluster's part of the state store, `under` it.
fn state_store_part<'a>(cluster: &'a Cluster, under: &str) -> Option<(&'a str, String)> {
    let (bucket, key_prefix) = cluster.spec.config_base.as_deref().and_then(s3_location)?;
    let prefix = [key_prefix.trim_end_matches('/'), under]
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    Some((bucket, prefix))
}

/// Control-plane members publish their addresses for each other, and write nothing else.
fn peer_publishing_statement(cluster: &Cluster) -> Option<serde_json::Value> {
    let (bucket, prefix) = state_store_part(cluster, crate::bootstrap::PEERS_PATH)?;
    Some(json!({
        "Sid": "PublishEtcdPeerAddress",
        "Effect": "Allow",
        "Action": ["s3:PutObject"],
        "Resource": [format!("arn:aws:s3:::{bucket}/{prefix}/*")],
    }))
}

fn state_store_statements(cluster: &Cluster, readable_prefix: &str) -> Vec<serde_json::Value> {
    let Some((bucket, prefix)) = state_store_part(cluster, readable_prefix) else {
        return Vec::new();
    };
    vec![
        json!({
            "Sid": "ReadClusterState",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [format!("arn:aws:s3:::{bucket}/{prefix}/*")],
        }),
        json!({
            "Sid": "ListClusterState",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [format!("arn:aws:s3:::{bucket}")],
            "Condition": { "StringLike": { "s3:prefix": [format!("{prefix}/*")] } },
        }),
        json!({
            "Sid": "LocateStateBucket",
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation"],
            "Resource": [format!("arn:aws:s3:::{bucket}")],
        }),
    ]
}

pub fn build(graph: &mut ResourceGraph, cluster: &Cluster, naming: &Naming) -> InstanceProfiles {
    let owned_condition = json!({ "StringEquals": { format!("aws:ResourceTag/{}", naming.kubernetes_cluster_tag()): "owned" } });
    let request_condition = json!({ "StringEquals": { format!("aws:RequestTag/{}", naming.kubernetes_cluster_tag()): "owned" } });
    let mut control_plane_statements = vec![
        json!({
            "Sid": "Discover",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeTags",
                "ec2:DescribeAvailabilityZones", "ec2:DescribeInstances", "ec2:DescribeRegions", "ec2:DescribeRouteTables",
                "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVolumes", "ec2:DescribeVpcs",
                "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetHealth",
            ],
            "Resource": ["*"],
        }),
        json!({
            "Sid": "ManageOwnedResources",
            "Effect": "Allow",
            "Action": [
                "ec2:AttachVolume", "ec2:AuthorizeSecurityGroupIngress", "ec2:CreateRoute", "ec2:DeleteRoute",
                "ec2:DeleteSecurityGroup", "ec2:DeleteVolume", "ec2:DetachVolume", "ec2:ModifyInstanceAttribute",
                "ec2:RevokeSecurityGroupIngress", "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:DeleteTargetGroup", "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:ModifyTargetGroup", "elasticloadbalancing:RegisterTargets",
                "elasticloadbalancing:DeregisterTargets",
            ],
            "Resource": ["*"],
            "Condition": owned_condition,
        }),
        json!({
            "Sid": "CreateOwnedResources",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateSecurityGroup", "ec2:CreateTags", "ec2:CreateVolume",
                "elasticloadbalancing:AddTags", "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup",
            ],
            "Resource": ["*"],
            "Condition": request_condition,
        }),
    ];
    control_plane_statements.extend(state_store_statements(cluster, ""));
    control_plane_statements.extend(peer_publishing_statement(cluster));
    let mut node_statements = vec![
        json!({
            "Sid": "Discover",
            "Effect": "Allow",
            "Action": ["ec2:DescribeInstances", "ec2:DescribeRegions"],
            "Resource": ["*"],
        }),
        json!({
            "Sid": "PullImages",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetAuthorizationToken",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Resource": ["*"],
        }),
    ];
    node_statements.extend(state_store_statements(cluster, "nodes"));

    let control_plane = role(graph, naming, "control-plane", control_plane_statements);
    let nodes = role(graph, naming, "nodes", node_statements);
    InstanceProfiles {
        control_plane,
        nodes,
    }
}

fn role(
    graph: &mut ResourceGraph,
    naming: &Naming,
    local: &str,
    statements: Vec<serde_json::Value>,
) -> Ref<IamInstanceProfile> {
    let assume = json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Principal": { "Service": "ec2.amazonaws.com" }, "Action": "sts:AssumeRole" }],
    });
    let role = graph.add(
        local,
        IamRole {
            name: naming.iam(local),
            assume_role_policy: policy_file(format!("iam-{local}-assume-role.json"), &assume),
            tags: naming.tags(local, "iam"),
        },
    );
    let policy = json!({ "Version": "2012-10-17", "Statement": statements });
    graph.add(
        local,
        IamRolePolicy {
            role: role.clone(),
            name: naming.iam(local),
            policy: policy_file(format!("iam-{local}-policy.json"), &policy),
        },
    );
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
}
