//! Stable resource addresses (`aws_subnet.private-eu-west-1a`) and the closed set of kinds.

use std::fmt;

/// Every kind of resource rafter manages. A closed enum: adding one makes every `match` over
/// kinds (plan, Terraform, the AWS target) point at what it must handle.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Vpc,
    Subnet,
    InternetGateway,
    ElasticIp,
    NatGateway,
    RouteTable,
    Route,
    RouteTableAssociation,
    SecurityGroup,
    SecurityGroupIngressRule,
    SecurityGroupEgressRule,
    IamRole,
    IamRolePolicy,
    IamInstanceProfile,
    KeyPair,
    EbsVolume,
    Image,
    LaunchTemplate,
    AutoscalingGroup,
    LoadBalancer,
    TargetGroup,
    Listener,
    HostedZone,
    DnsRecord,
    SqsQueue,
    SqsQueuePolicy,
    EventRule,
    EventTarget,
    LifecycleHook,
    SshHost,
}

/// Which file of an exported module a resource goes to, and which part of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Concern {
    Network,
    Security,
    Iam,
    Compute,
    LoadBalancer,
    Dns,
    /// How instance events reach the cluster: the node termination handler's queue, the
    /// EventBridge rules feeding it and the groups' lifecycle hooks.
    Events,
    Hosts,
}

impl Concern {
    pub fn file_stem(self) -> &'static str {
        match self {
            Concern::Network => "network",
            Concern::Security => "security",
            Concern::Iam => "iam",
            Concern::Compute => "compute",
            Concern::LoadBalancer => "loadbalancer",
            Concern::Dns => "dns",
            Concern::Events => "events",
            Concern::Hosts => "hosts",
        }
    }
}

impl ResourceKind {
    /// The Terraform type name, also used in plan addresses.
    pub fn type_name(self) -> &'static str {
        match self {
            ResourceKind::Vpc => "aws_vpc",
            ResourceKind::Subnet => "aws_subnet",
            ResourceKind::InternetGateway => "aws_internet_gateway",
            ResourceKind::ElasticIp => "aws_eip",
            ResourceKind::NatGateway => "aws_nat_gateway",
            ResourceKind::RouteTable => "aws_route_table",
            ResourceKind::Route => "aws_route",
            ResourceKind::RouteTableAssociation => "aws_route_table_association",
            ResourceKind::SecurityGroup => "aws_security_group",
            ResourceKind::SecurityGroupIngressRule => "aws_vpc_security_group_ingress_rule",
            ResourceKind::SecurityGroupEgressRule => "aws_vpc_security_group_egress_rule",
            ResourceKind::IamRole => "aws_iam_role",
            ResourceKind::IamRolePolicy => "aws_iam_role_policy",
            ResourceKind::IamInstanceProfile => "aws_iam_instance_profile",
            ResourceKind::KeyPair => "aws_key_pair",
            ResourceKind::EbsVolume => "aws_ebs_volume",
            ResourceKind::Image => "aws_ami",
            ResourceKind::LaunchTemplate => "aws_launch_template",
            ResourceKind::AutoscalingGroup => "aws_autoscaling_group",
            ResourceKind::LoadBalancer => "aws_lb",
            ResourceKind::TargetGroup => "aws_lb_target_group",
            ResourceKind::Listener => "aws_lb_listener",
            ResourceKind::HostedZone => "aws_route53_zone",
            ResourceKind::DnsRecord => "aws_route53_record",
            ResourceKind::SqsQueue => "aws_sqs_queue",
            ResourceKind::SqsQueuePolicy => "aws_sqs_queue_policy",
            ResourceKind::EventRule => "aws_cloudwatch_event_rule",
            ResourceKind::EventTarget => "aws_cloudwatch_event_target",
            ResourceKind::LifecycleHook => "aws_autoscaling_lifecycle_hook",
            ResourceKind::SshHost => "ssh_host",
        }
    }

    /// EC2 resources, which have no unique name: rafter finds them again by the address tag
    /// ([`crate::model::naming::ADDRESS_TAG`]), so whoever creates one (rafter's apply or
    /// the Terraform export) must give it that tag.
    pub fn found_by_address_tag(self) -> bool {
        matches!(
            self,
            ResourceKind::Vpc
                | ResourceKind::Subnet
                | ResourceKind::InternetGateway
                | ResourceKind::ElasticIp
                | ResourceKind::NatGateway
                | ResourceKind::RouteTable
                | ResourceKind::SecurityGroup
                | ResourceKind::SecurityGroupIngressRule
                | ResourceKind::SecurityGroupEgressRule
                | ResourceKind::KeyPair
                | ResourceKind::EbsVolume
                | ResourceKind::LaunchTemplate
        )
    }

    /// Exists in AWS on its own, not as part of another resource (a route is part of its
    /// table, a rule of its group, a policy of its role, a listener of its load balancer, a
    /// record of its zone), and is not a lookup or a host. These are what a refresh checks
    /// for existence and what the delete sweep lists: when one goes, what is part of it goes
    /// along.
    pub fn stands_alone(self) -> bool {
        match self {
            ResourceKind::Vpc
            | ResourceKind::Subnet
            | ResourceKind::InternetGateway
            | ResourceKind::ElasticIp
            | ResourceKind::NatGateway
            | ResourceKind::RouteTable
            | ResourceKind::SecurityGroup
            | ResourceKind::IamRole
            | ResourceKind::IamInstanceProfile
            | ResourceKind::KeyPair
            | ResourceKind::EbsVolume
            | ResourceKind::LaunchTemplate
            | ResourceKind::AutoscalingGroup
            | ResourceKind::LoadBalancer
            | ResourceKind::TargetGroup
            | ResourceKind::SqsQueue
            | ResourceKind::EventRule => true,
            ResourceKind::Route
            | ResourceKind::RouteTableAssociation
            | ResourceKind::SecurityGroupIngressRule
            | ResourceKind::SecurityGroupEgressRule
            | ResourceKind::IamRolePolicy
            | ResourceKind::Image
            | ResourceKind::Listener
            | ResourceKind::HostedZone
            | ResourceKind::DnsRecord
            | ResourceKind::SqsQueuePolicy
            | ResourceKind::EventTarget
            | ResourceKind::LifecycleHook
            | ResourceKind::SshHost => false,
        }
    }

    /// Every kind, in declaration order.
    pub const ALL: [ResourceKind; 30] = [
        ResourceKind::Vpc,
        ResourceKind::Subnet,
        ResourceKind::InternetGateway,
        ResourceKind::ElasticIp,
        ResourceKind::NatGateway,
        ResourceKind::RouteTable,
        ResourceKind::Route,
        ResourceKind::RouteTableAssociation,
        ResourceKind::SecurityGroup,
        ResourceKind::SecurityGroupIngressRule,
        ResourceKind::SecurityGroupEgressRule,
        ResourceKind::IamRole,
        ResourceKind::IamRolePolicy,
        ResourceKind::IamInstanceProfile,
        ResourceKind::KeyPair,
        ResourceKind::EbsVolume,
        ResourceKind::Image,
        ResourceKind::LaunchTemplate,
        ResourceKind::AutoscalingGroup,
        ResourceKind::LoadBalancer,
        ResourceKind::TargetGroup,
        ResourceKind::Listener,
        ResourceKind::HostedZone,
        ResourceKind::DnsRecord,
        ResourceKind::SqsQueue,
        ResourceKind::SqsQueuePolicy,
        ResourceKind::EventRule,
        ResourceKind::EventTarget,
        ResourceKind::LifecycleHook,
        ResourceKind::SshHost,
    ];

    /// Looked up, never created or deleted (Terraform `data` sources).
    pub fn is_lookup(self) -> bool {
        matches!(self, ResourceKind::Image | ResourceKind::HostedZone)
    }

    pub fn concern(self) -> Concern {
        match self {
            ResourceKind::Vpc
            | ResourceKind::Subnet
            | ResourceKind::InternetGateway
            | ResourceKind::ElasticIp
            | ResourceKind::NatGateway
            | ResourceKind::RouteTable
            | ResourceKind::Route
            | ResourceKind::RouteTableAssociation => Concern::Network,
            ResourceKind::SecurityGroup
            | ResourceKind::SecurityGroupIngressRule
            | ResourceKind::SecurityGroupEgressRule => Concern::Security,
            ResourceKind::IamRole
            | ResourceKind::IamRolePolicy
            | ResourceKind::IamInstanceProfile => Concern::Iam,
            ResourceKind::KeyPair
            | ResourceKind::EbsVolume
            | ResourceKind::Image
            | ResourceKind::LaunchTemplate
            | ResourceKind::AutoscalingGroup => Concern::Compute,
            ResourceKind::LoadBalancer | ResourceKind::TargetGroup | ResourceKind::Listener => {
                Concern::LoadBalancer
            }
            ResourceKind::HostedZone | ResourceKind::DnsRecord => Concern::Dns,
            ResourceKind::SqsQueue
            | ResourceKind::SqsQueuePolicy
            | ResourceKind::EventRule
            | ResourceKind::EventTarget
            | ResourceKind::LifecycleHook => Concern::Events,
            ResourceKind::SshHost => Concern::Hosts,
        }
    }
}

/// A resource's stable name in the graph, the plan, the state and the Terraform export.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Address {
    pub kind: ResourceKind,
    pub name: String,
}

impl Address {
    pub fn new(kind: ResourceKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind.is_lookup() {
            write!(f, "data.")?;
        }
        write!(f, "{}.{}", self.kind.type_name(), self.name)
    }
}
