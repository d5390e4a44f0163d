//! The IAM statements of the AWS add-ons (`spec.addons`), on the control-plane role: their
//! controllers run on control-plane nodes with host networking, the only pods that reach the
//! instance metadata service (hop limit 1), so no worker's role ever holds them. A switched-off
//! add-on has no statement here, so turning it off takes its permissions away on the next
//! `update cluster`.
//!
//! Every action comes from the component's own documented policy; the split into
//! unconditional reads and tag-conditioned changes follows kops (`pkg/model/iam/iam_builder.go`:
//! `AddCCMPermissions`, `AddAWSEBSCSIDriverPermissions`, `AddClusterAutoscalerPermissions`),
//! conditioned on the `kubernetes.io/cluster/<name>: owned` tag every resource of the cluster
//! carries and that the cloud controller and the EBS driver (`--k8s-tag-cluster-id`) put on
//! what they create, instead of kops' legacy `KubernetesCluster` tag:
//!
//! | statement | actions | source |
//! |---|---|---|
//! | `CloudControllerRead` | describes of instances, subnets, route tables, groups, load balancers, auto-scaling groups | cloud-provider-aws `docs/prerequisites.md` (control-plane policy), as kops |
//! | `CloudControllerCreate` | `elasticloadbalancing:Create{LoadBalancer,TargetGroup,Listener}`, `ec2:CreateSecurityGroup` carrying the cluster tag | same; kops' `clusterTaggedCreateAction` |
//! | `CloudControllerGroupsInClusterVpc` | `ec2:CreateSecurityGroup` in this cluster's VPC only (kops allows any VPC) | same |
//! | `CloudControllerTagOnCreate` | `ec2:CreateTags` on a security group as it is created | kops' `AddEC2CreateAction` |
//! | `CloudControllerManageOwned` | changes to load balancers, target groups, security groups and instances carrying the cluster tag | same; kops' `clusterTaggedAction` |
//! | `CloudControllerLoadBalancerServiceRole` | `iam:CreateServiceLinkedRole` for Elastic Load Balancing only (kops: any) | same |
//! | `EbsCsiRead` | volume, instance and zone describes | aws-ebs-csi-driver `docs/example-iam-policy.json` |
//! | `EbsCsiCreateVolumes`, `EbsCsiTagOnCreate` | `ec2:CreateVolume` carrying the driver's and the cluster's tags, tagged as created | same, and `AmazonEBSCSIDriverPolicyV2` |
//! | `EbsCsiManageVolumes` | attach, detach, modify, delete volumes carrying both tags | same |
//! | `EbsCsiAttachToNodes` | attach to and detach from this cluster's instances | same |
//! | `ClusterAutoscalerRead` | auto-scaling, image, instance-type and template describes | autoscaler `cluster-autoscaler/cloudprovider/aws/README.md` (full features policy, without EKS) |
//! | `NodeTerminationHandlerRead` | `autoscaling:DescribeAutoScalingInstances`, `autoscaling:DescribeTags`, `ec2:DescribeInstances` | aws-node-termination-handler README, "Queue Processor" IAM policy |
//! | `NodeTerminationHandlerQueue` | `sqs:ReceiveMessage`, `sqs:DeleteMessage` on the cluster's queue only (kops and the README: any queue) | same |
//! | `NodeTerminationHandlerCompleteLifecycle` | `autoscaling:CompleteLifecycleAction` on the cluster's node-running groups by name, carrying the cluster tag | same; kops conditions it on the cluster tag |
//! | `ClusterAutoscalerResizeNodeGroups` | `SetDesiredCapacity`, `TerminateInstanceInAutoScalingGroup` on the node groups' auto-scaling groups by name, carrying the cluster tag | same, restricted by name as its README advises; never a control-plane member's group |
//!
//! The EBS statements require the driver's own `ebs.csi.aws.com/cluster: true` tag on a
//! volume, which rafter never puts on an etcd volume, so the driver's statements alone cannot
//! touch one. IAM grants each resource of a call separately, though: `AttachEtcdVolumes` (an
//! etcd volume) together with `EbsCsiAttachToNodes` (any instance of the cluster) lets this
//! role attach an etcd volume to a worker. The driver does that only for a
//! `PersistentVolume` naming the volume, which the add-on's admission policy lets only the
//! driver's provisioner and cluster administrators create (`templates/addons/aws-ebs-csi-driver.yaml.j2`).

use serde_json::{Value, json};

use super::compute::{node_group_asg_name, node_running_asg_names};
use super::iam::partition;
use super::naming::Naming;
use crate::spec::Cluster;

/// The tag the EBS CSI driver puts on every volume it creates.
pub const EBS_CSI_CLUSTER_TAG: &str = "ebs.csi.aws.com/cluster";

/// The statements of every add-on that is on.
pub fn statements(cluster: &Cluster, naming: &Naming) -> Vec<Value> {
    let addons = cluster.spec.addons();
    let scope = Scope::new(cluster, naming);
    let mut statements = Vec::new();
    if addons.cloud_controller_manager.enabled {
        statements.extend(cloud_controller(&scope));
    }
    if addons.ebs_csi_driver.enabled {
        statements.extend(ebs_csi_driver(&scope));
    }
    if addons.cluster_autoscaler.enabled {
        statements.extend(cluster_autoscaler(cluster, naming, &scope));
    }
    if addons.node_termination_handler.enabled {
        statements.extend(node_termination_handler(cluster, naming, &scope));
    }
    statements
}

/// Where the statements apply: the cluster's region and partition, and its ownership tag.
struct Scope {
    partition: &'static str,
    region: String,
    owned_tag: String,
}

impl Scope {
    fn new(cluster: &Cluster, naming: &Naming) -> Self {
        let region = cluster
            .spec
            .region
            .clone()
            .unwrap_or_else(|| "*".to_string());
        Self {
            partition: partition(&region),
            region,
            owned_tag: naming.kubernetes_cluster_tag(),
        }
    }

    /// The resource already carries the cluster's tag.
    fn resource_owned(&self) -> Value {
        json!({ "StringEquals": { format!("aws:ResourceTag/{}", self.owned_tag): "owned" } })
    }

    /// The request puts the cluster's tag on what it creates.
    fn request_owned(&self) -> Value {
        json!({ "StringEquals": { format!("aws:RequestTag/{}", self.owned_tag): "owned" } })
    }

    fn ec2_arn(&self, resource: &str) -> String {
        format!("arn:{}:ec2:{}:*:{resource}/*", self.partition, self.region)
    }

    /// An auto-scaling group's ARN by its name.
    fn asg_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:autoscaling:{}:*:autoScalingGroup:*:autoScalingGroupName/{name}",
            self.partition, self.region
        )
    }
}

fn statement(sid: &str, actions: &[&str], resource: Value, condition: Option<Value>) -> Value {
    let mut statement = json!({
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": resource,
    });
    if let Some(condition) = condition {
        statement["Condition"] = condition;
    }
    statement
}

fn cloud_controller(scope: &Scope) -> Vec<Value> {
    vec![
        statement(
            "CloudControllerRead",
            &[
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeTags",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeInstanceTopology",
                "ec2:DescribeInstances",
                "ec2:DescribeRegions",
                "ec2:DescribeRouteTables",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeLoadBalancerPolicies",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetHealth",
            ],
            json!("*"),
            None,
        ),
        statement(
            "CloudControllerCreate",
            &[
                "ec2:CreateSecurityGroup",
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:CreateLoadBalancer",
                "elasticloadbalancing:CreateTargetGroup",
            ],
            json!("*"),
            Some(scope.request_owned()),
        ),
        statement(
            "CloudControllerGroupsInClusterVpc",
            &["ec2:CreateSecurityGroup"],
            json!(scope.ec2_arn("vpc")),
            Some(scope.resource_owned()),
        ),
        statement(
            "CloudControllerTagOnCreate",
            &["ec2:CreateTags"],
            json!(scope.ec2_arn("security-group")),
            Some(json!({ "StringEquals": { "ec2:CreateAction": "CreateSecurityGroup" } })),
        ),
        statement(
            "CloudControllerManageOwned",
            &[
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup",
                "ec2:ModifyInstanceAttribute",
                "ec2:RevokeSecurityGroupIngress",
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:ApplySecurityGroupsToLoadBalancer",
                "elasticloadbalancing:AttachLoadBalancerToSubnets",
                "elasticloadbalancing:ConfigureHealthCheck",
                "elasticloadbalancing:CreateLoadBalancerListeners",
                "elasticloadbalancing:CreateLoadBalancerPolicy",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:DeleteLoadBalancerListeners",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:DeregisterInstancesFromLoadBalancer",
                "elasticloadbalancing:DeregisterTargets",
                "elasticloadbalancing:DetachLoadBalancerFromSubnets",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:RegisterInstancesWithLoadBalancer",
                "elasticloadbalancing:RegisterTargets",
                "elasticloadbalancing:SetLoadBalancerPoliciesForBackendServer",
                "elasticloadbalancing:SetLoadBalancerPoliciesOfListener",
            ],
            json!("*"),
            Some(scope.resource_owned()),
        ),
        statement(
            "CloudControllerLoadBalancerServiceRole",
            &["iam:CreateServiceLinkedRole"],
            json!(format!(
                "arn:{}:iam::*:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing",
                scope.partition
            )),
            Some(
                json!({ "StringEquals": { "iam:AWSServiceName": "elasticloadbalancing.amazonaws.com" } }),
            ),
        ),
    ]
}

fn ebs_csi_driver(scope: &Scope) -> Vec<Value> {
    let driver_tag = |prefix: &str| {
        json!({
            "StringEquals": {
                format!("{prefix}/{EBS_CSI_CLUSTER_TAG}"): "true",
                format!("{prefix}/{}", scope.owned_tag): "owned",
            }
        })
    };
    vec![
        statement(
            "EbsCsiRead",
            &[
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeInstances",
                "ec2:DescribeTags",
                "ec2:DescribeVolumeStatus",
                "ec2:DescribeVolumes",
                "ec2:DescribeVolumesModifications",
            ],
            json!("*"),
            None,
        ),
        statement(
            "EbsCsiCreateVolumes",
            &["ec2:CreateVolume"],
            json!(scope.ec2_arn("volume")),
            Some(driver_tag("aws:RequestTag")),
        ),
        statement(
            "EbsCsiTagOnCreate",
            &["ec2:CreateTags"],
            json!(scope.ec2_arn("volume")),
            Some(json!({ "StringEquals": { "ec2:CreateAction": "CreateVolume" } })),
        ),
        statement(
            "EbsCsiManageVolumes",
            &[
                "ec2:AttachVolume",
                "ec2:DeleteVolume",
                "ec2:DetachVolume",
                "ec2:ModifyVolume",
            ],
            json!(scope.ec2_arn("volume")),
            Some(driver_tag("aws:ResourceTag")),
        ),
        statement(
            "EbsCsiAttachToNodes",
            &["ec2:AttachVolume", "ec2:DetachVolume"],
            json!(scope.ec2_arn("instance")),
            Some(scope.resource_owned()),
        ),
    ]
}

fn cluster_autoscaler(cluster: &Cluster, naming: &Naming, scope: &Scope) -> Vec<Value> {
    let groups: Vec<String> = cluster
        .spec
        .node_groups
        .iter()
        .map(|group| scope.asg_arn(&node_group_asg_name(naming, &group.name)))
        .collect();
    let mut statements = vec![statement(
        "ClusterAutoscalerRead",
        &[
            "autoscaling:DescribeAutoScalingGroups",
            "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:DescribeLaunchConfigurations",
            "autoscaling:DescribeScalingActivities",
            "ec2:DescribeImages",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeLaunchTemplateVersions",
            "ec2:GetInstanceTypesFromInstanceRequirements",
        ],
        json!("*"),
        None,
    )];
    if !groups.is_empty() {
        statements.push(statement(
            "ClusterAutoscalerResizeNodeGroups",
            &[
                "autoscaling:SetDesiredCapacity",
                "autoscaling:TerminateInstanceInAutoScalingGroup",
            ],
            json!(groups),
            Some(scope.resource_owned()),
        ));
    }
    statements
}

fn node_termination_handler(cluster: &Cluster, naming: &Naming, scope: &Scope) -> Vec<Value> {
    let groups: Vec<String> = node_running_asg_names(cluster, naming)
        .iter()
        .map(|name| scope.asg_arn(name))
        .collect();
    let queue = format!(
        "arn:{}:sqs:{}:*:{}",
        scope.partition,
        scope.region,
        super::termination::queue_name(naming)
    );
    let mut statements = vec![
        statement(
            "NodeTerminationHandlerRead",
            &[
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeTags",
                "ec2:DescribeInstances",
            ],
            json!("*"),
            None,
        ),
        statement(
            "NodeTerminationHandlerQueue",
            &["sqs:DeleteMessage", "sqs:ReceiveMessage"],
            json!(queue),
            None,
        ),
    ];
    if !groups.is_empty() {
        statements.push(statement(
            "NodeTerminationHandlerCompleteLifecycle",
            &["autoscaling:CompleteLifecycleAction"],
            json!(groups),
            Some(scope.resource_owned()),
        ));
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Addons, Switch};

    fn cluster(addons: Addons) -> Cluster {
        let yaml = "apiVersion: rafter.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: c.example.com\nspec:\n  region: eu-west-1\n  networking:\n    zones: [eu-west-1a]\n  nodeGroups:\n    - { name: workers }\n    - { name: gpu }\n";
        let mut cluster: Cluster = serde_saphyr::from_str(yaml).unwrap();
        cluster.spec.addons = Some(addons);
        cluster
    }

    fn sids(addons: Addons) -> Vec<String> {
        let cluster = cluster(addons);
        statements(&cluster, &Naming::new("c.example.com"))
            .iter()
            .map(|statement| statement["Sid"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn each_addon_brings_only_its_own_statements() {
        let on = Switch { enabled: true };
        assert!(sids(Addons::none()).is_empty());
        let only = |field: &dyn Fn(&mut Addons)| {
            let mut addons = Addons::none();
            field(&mut addons);
            sids(addons)
        };
        let ccm = only(&|addons| addons.cloud_controller_manager = on);
        let ebs = only(&|addons| addons.ebs_csi_driver = on);
        let autoscaler = only(&|addons| addons.cluster_autoscaler = on);
        let termination = only(&|addons| addons.node_termination_handler = on);
        assert!(
            ccm.iter().all(|sid| sid.starts_with("CloudController")),
            "{ccm:?}"
        );
        assert!(ebs.iter().all(|sid| sid.starts_with("EbsCsi")), "{ebs:?}");
        assert!(
            autoscaler
                .iter()
                .all(|sid| sid.starts_with("ClusterAutoscaler")),
            "{autoscaler:?}"
        );
        assert!(
            termination
                .iter()
                .all(|sid| sid.starts_with("NodeTerminationHandler")),
            "{termination:?}"
        );
        let all = Addons {
            cloud_controller_manager: on,
            ebs_csi_driver: on,
            cluster_autoscaler: on,
            node_termination_handler: on,
        };
        assert_eq!(sids(all), [ccm, ebs, autoscaler, termination].concat());
    }

    #[test]
    fn the_autoscaler_may_resize_exactly_the_node_groups() {
        let mut addons = Addons::none();
        addons.cluster_autoscaler = Switch { enabled: true };
        let cluster = cluster(addons);
        let statements = statements(&cluster, &Naming::new("c.example.com"));
        let resize = statements
            .iter()
            .find(|statement| statement["Sid"] == "ClusterAutoscalerResizeNodeGroups")
            .unwrap();
        assert_eq!(
            resize["Resource"],
            json!([
                "arn:aws:autoscaling:eu-west-1:*:autoScalingGroup:*:autoScalingGroupName/nodes-workers.c.example.com",
                "arn:aws:autoscaling:eu-west-1:*:autoScalingGroup:*:autoScalingGroupName/nodes-gpu.c.example.com",
            ])
        );
        assert_eq!(
            resize["Condition"]["StringEquals"]["aws:ResourceTag/kubernetes.io/cluster/c.example.com"],
            "owned"
        );
    }
}
