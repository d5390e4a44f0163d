//! The typed resources of a cluster and their attributes.
//!
//! Each struct holds what rafter decides about one cloud object, with [`Ref`]s to the objects
//! it needs. `attributes()` is its one description, used by the plan (diff and display) and by
//! the Terraform export; the AWS target reads the typed fields.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use super::address::{Address, ResourceKind};
use super::value::{DataFile, Field, Fields, Reference, UpdateMode, Value};
use crate::spec::Cidr;

pub type Tags = BTreeMap<String, String>;

/// A typed reference to another resource of the same graph.
#[derive(Debug)]
pub struct Ref<T> {
    address: Address,
    kind: PhantomData<fn() -> T>,
}

impl<T> PartialEq for Ref<T> {
    fn eq(&self, other: &Self) -> bool {
        self.address == other.address
    }
}

impl<T> Eq for Ref<T> {}

impl<T> Clone for Ref<T> {
    fn clone(&self) -> Self {
        Self {
            address: self.address.clone(),
            kind: PhantomData,
        }
    }
}

impl<T> Ref<T> {
    pub(super) fn new(address: Address) -> Self {
        Self {
            address,
            kind: PhantomData,
        }
    }

    pub fn address(&self) -> &Address {
        &self.address
    }

    pub fn attribute(&self, attribute: &str) -> Reference {
        Reference {
            target: self.address.clone(),
            attribute: attribute.to_string(),
        }
    }

    pub fn id(&self) -> Reference {
        self.attribute("id")
    }

    pub fn arn(&self) -> Reference {
        self.attribute("arn")
    }

    fn id_value(&self) -> Value {
        Value::Ref(self.id())
    }
}

/// Implemented by every resource struct: its kind, fixed at compile time.
pub trait ResourceType: Into<Resource> {
    const KIND: ResourceKind;
}

macro_rules! resources {
    ($($kind:ident($type:ident)),* $(,)?) => {
        /// Any resource of the graph.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Resource { $($kind($type)),* }

        $(
            impl From<$type> for Resource {
                fn from(resource: $type) -> Self { Resource::$kind(resource) }
            }
            impl ResourceType for $type {
                const KIND: ResourceKind = ResourceKind::$kind;
            }
        )*

        impl Resource {
            pub fn kind(&self) -> ResourceKind {
                match self { $(Resource::$kind(_) => ResourceKind::$kind),* }
            }

            /// The attributes in rendering order.
            pub fn attributes(&self) -> Vec<Field> {
                match self { $(Resource::$kind(resource) => resource.attributes()),* }
            }
        }
    };
}

resources! {
    Vpc(Vpc),
    Subnet(Subnet),
    InternetGateway(InternetGateway),
    ElasticIp(ElasticIp),
    NatGateway(NatGateway),
    RouteTable(RouteTable),
    Route(Route),
    RouteTableAssociation(RouteTableAssociation),
    SecurityGroup(SecurityGroup),
    SecurityGroupIngressRule(IngressRule),
    SecurityGroupEgressRule(EgressRule),
    IamRole(IamRole),
    IamRolePolicy(IamRolePolicy),
    IamInstanceProfile(IamInstanceProfile),
    KeyPair(KeyPair),
    EbsVolume(EbsVolume),
    Image(Image),
    LaunchTemplate(LaunchTemplate),
    AutoscalingGroup(AutoscalingGroup),
    LoadBalancer(LoadBalancer),
    TargetGroup(TargetGroup),
    Listener(Listener),
    HostedZone(HostedZone),
    DnsRecord(DnsRecord),
    SqsQueue(SqsQueue),
    SqsQueuePolicy(SqsQueuePolicy),
    EventRule(EventRule),
    EventTarget(EventTarget),
    LifecycleHook(LifecycleHook),
    SshHost(SshHost),
}

fn cidr_value(cidr: &Cidr) -> Value {
    Value::Str(cidr.to_string())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vpc {
    pub cidr: Cidr,
    pub tags: Tags,
}

impl Vpc {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("cidr_block", cidr_value(&self.cidr))
            .mutable("enable_dns_hostnames", Value::Bool(true))
            .mutable("enable_dns_support", Value::Bool(true))
            .tags(&self.tags)
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subnet {
    pub vpc: Ref<Vpc>,
    pub zone: String,
    pub cidr: Cidr,
    pub map_public_ip_on_launch: bool,
    pub tags: Tags,
}

impl Subnet {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("vpc_id", self.vpc.id_value())
            .immutable("availability_zone", Value::str(&self.zone))
            .immutable("cidr_block", cidr_value(&self.cidr))
            .mutable(
                "map_public_ip_on_launch",
                Value::Bool(self.map_public_ip_on_launch),
            )
            .tags(&self.tags)
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct InternetGateway {
    pub vpc: Ref<Vpc>,
    pub tags: Tags,
}

impl InternetGateway {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .mutable("vpc_id", self.vpc.id_value())
            .tags(&self.tags)
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ElasticIp {
    pub tags: Tags,
}

impl ElasticIp {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("domain", Value::str("vpc"))
            .tags(&self.tags)
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NatGateway {
    pub elastic_ip: Ref<ElasticIp>,
    pub subnet: Ref<Subnet>,
    /// NAT needs the internet gateway attached before it can route.
    pub internet_gateway: Ref<InternetGateway>,
    pub tags: Tags,
}

impl NatGateway {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("allocation_id", Value::Ref(self.elastic_ip.id()))
            .immutable("subnet_id", self.subnet.id_value())
            .tags(&self.tags)
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteTable {
    pub vpc: Ref<Vpc>,
    pub tags: Tags,
}

impl RouteTable {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("vpc_id", self.vpc.id_value())
            .tags(&self.tags)
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteTarget {
    InternetGateway(Ref<InternetGateway>),
    NatGateway(Ref<NatGateway>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub route_table: Ref<RouteTable>,
    pub destination: Cidr,
    pub target: RouteTarget,
}

impl Route {
    fn attributes(&self) -> Vec<Field> {
        let fields = Fields::new()
            .immutable("route_table_id", self.route_table.id_value())
            .immutable("destination_cidr_block", cidr_value(&self.destination));
        match &self.target {
            RouteTarget::InternetGateway(gateway) => {
                fields.mutable("gateway_id", gateway.id_value())
            }
            RouteTarget::NatGateway(gateway) => {
                fields.mutable("nat_gateway_id", gateway.id_value())
            }
        }
        .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteTableAssociation {
    pub route_table: Ref<RouteTable>,
    pub subnet: Ref<Subnet>,
}

impl RouteTableAssociation {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("subnet_id", self.subnet.id_value())
            .mutable("route_table_id", self.route_table.id_value())
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityGroup {
    pub vpc: Ref<Vpc>,
    pub name: String,
    pub description: String,
    pub tags: Tags,
}

impl SecurityGroup {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("name", Value::str(&self.name))
            .immutable("description", Value::str(&self.description))
            .immutable("vpc_id", self.vpc.id_value())
            .tags(&self.tags)
            .build()
    }
}

/// IP protocol of a security group rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    All,
    Tcp,
    Udp,
    /// ICMP; the rule's "ports" are the ICMP type and code.
    Icmp,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::All => "-1",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }
}

/// Who a rule lets in (ingress) or out to (egress).
#[derive(Debug, Clone, PartialEq)]
pub enum Peer {
    Cidr(Cidr),
    Group(Ref<SecurityGroup>),
}

/// The shared body of ingress and egress rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub group: Ref<SecurityGroup>,
    pub protocol: Protocol,
    /// Inclusive port range; `None` for protocols without ports.
    pub ports: Option<(u16, u16)>,
    pub peer: Peer,
    pub description: String,
    pub tags: Tags,
}

impl Rule {
    fn attributes(&self) -> Vec<Field> {
        let mut fields = Fields::new()
            .immutable("security_group_id", self.group.id_value())
            .immutable("ip_protocol", Value::str(self.protocol.as_str()));
        if let Some((from, to)) = self.ports {
            fields = fields
                .immutable("from_port", Value::Int(i64::from(from)))
                .immutable("to_port", Value::Int(i64::from(to)));
        }
        fields = match &self.peer {
            Peer::Cidr(cidr) => fields.immutable("cidr_ipv4", cidr_value(cidr)),
            Peer::Group(group) => {
                fields.immutable("referenced_security_group_id", group.id_value())
            }
        };
        fields
            .mutable("description", Value::str(&self.description))
            .tags(&self.tags)
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IngressRule(pub Rule);

impl IngressRule {
    fn attributes(&self) -> Vec<Field> {
        self.0.attributes()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EgressRule(pub Rule);

impl EgressRule {
    fn attributes(&self) -> Vec<Field> {
        self.0.attributes()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IamRole {
    pub name: String,
    pub assume_role_policy: DataFile,
    pub tags: Tags,
}

impl IamRole {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("name", Value::str(&self.name))
            .mutable(
                "assume_role_policy",
                Value::File(self.assume_role_policy.clone()),
            )
            .tags(&self.tags)
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IamRolePolicy {
    pub role: Ref<IamRole>,
    pub name: String,
    pub policy: DataFile,
}

impl IamRolePolicy {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("name", Value::str(&self.name))
            .immutable("role", Value::Ref(self.role.attribute("name")))
            .mutable("policy", Value::File(self.policy.clone()))
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IamInstanceProfile {
    pub name: String,
    pub role: Ref<IamRole>,
    pub tags: Tags,
}

impl IamInstanceProfile {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("name", Value::str(&self.name))
            .mutable("role", Value::Ref(self.role.attribute("name")))
            .tags(&self.tags)
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyPair {
    pub name: String,
    pub public_key: String,
    pub tags: Tags,
}

impl KeyPair {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("key_name", Value::str(&self.name))
            .immutable("public_key", Value::str(&self.public_key))
            .tags(&self.tags)
            .build()
    }
}

/// A control-plane member's etcd data volume: in the member's zone, always encrypted, found
/// by its instance at boot through its tags (cluster and member). Size, type, IOPS and
/// throughput change in place; nothing about it forces a replacement that the spec can ask
/// for (the member's name includes its zone), because replacing it would lose the member's
/// data.
#[derive(Debug, Clone, PartialEq)]
pub struct EbsVolume {
    pub zone: String,
    pub size_gib: u32,
    pub volume_type: String,
    pub iops: Option<u32>,
    pub throughput_mibps: Option<u32>,
    pub tags: Tags,
}

impl EbsVolume {
    fn attributes(&self) -> Vec<Field> {
        let mut fields = Fields::new()
            .immutable("availability_zone", Value::str(&self.zone))
            .immutable("encrypted", Value::Bool(true))
            .mutable("size", Value::Int(i64::from(self.size_gib)))
            .mutable("type", Value::str(&self.volume_type));
        if let Some(iops) = self.iops {
            fields = fields.mutable("iops", Value::Int(i64::from(iops)));
        }
        if let Some(throughput) = self.throughput_mibps {
            fields = fields.mutable("throughput", Value::Int(i64::from(throughput)));
        }
        fields.tags(&self.tags).build()
    }
}

/// The newest AMI of an image family, looked up at apply time.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub owner: String,
    pub name_pattern: String,
    pub architecture: String,
}

impl Image {
    fn attributes(&self) -> Vec<Field> {
        let filter = |name: &str, value: &str| {
            Fields::new()
                .mutable("name", Value::str(name))
                .mutable("values", Value::List(vec![Value::str(value)]))
                .build()
        };
        let architecture = if self.architecture == "amd64" {
            "x86_64"
        } else {
            "arm64"
        };
        Fields::new()
            .mutable("most_recent", Value::Bool(true))
            .mutable("owners", Value::List(vec![Value::str(&self.owner)]))
            .mutable(
                "filter",
                Value::Blocks(vec![
                    filter("name", &self.name_pattern),
                    filter("architecture", architecture),
                ]),
            )
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    AmiId(String),
    Lookup(Ref<Image>),
}

/// Where instances of a launch template attach.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchTemplate {
    pub name: String,
    pub image: ImageSource,
    pub instance_type: String,
    pub instance_profile: Option<Ref<IamInstanceProfile>>,
    pub security_groups: Vec<Ref<SecurityGroup>>,
    pub public_ip: bool,
    pub key_pair: Option<Ref<KeyPair>>,
    pub root_volume_gb: u32,
    pub user_data: DataFile,
    pub tags: Tags,
    /// Tags given to the instances and volumes launched from it.
    pub instance_tags: Tags,
}

impl LaunchTemplate {
    fn attributes(&self) -> Vec<Field> {
        let image = match &self.image {
            ImageSource::AmiId(id) => Value::str(id),
            ImageSource::Lookup(image) => image.id_value(),
        };
        let security_groups = Value::refs(self.security_groups.iter().map(Ref::id));
        let network = Fields::new()
            .mutable("associate_public_ip_address", Value::Bool(self.public_ip))
            .mutable("delete_on_termination", Value::Bool(true))
            .mutable("security_groups", security_groups)
            .build();
        let ebs = Fields::new()
            .mutable("volume_size", Value::Int(i64::from(self.root_volume_gb)))
            .mutable("volume_type", Value::str("gp3"))
            .mutable("encrypted", Value::Bool(true))
            .mutable("delete_on_termination", Value::Bool(true))
            .build();
        let block_device = Fields::new()
            .mutable("device_name", Value::str("/dev/xvda"))
            .mutable("ebs", Value::Block(ebs))
            .build();
        let metadata = Fields::new()
            .mutable("http_endpoint", Value::str("enabled"))
            .mutable("http_tokens", Value::str("required"))
            .mutable("http_put_response_hop_limit", Value::Int(1))
            .build();
        let tag_specification = |resource_type: &str| {
            Fields::new()
                .mutable("resource_type", Value::str(resource_type))
                .tags(&self.instance_tags)
                .build()
        };
        let profile = self.instance_profile.as_ref().map(|profile| {
            Value::Block(
                Fields::new()
                    .mutable("arn", Value::Ref(profile.arn()))
                    .build(),
            )
        });
        Fields::new()
            .immutable("name", Value::str(&self.name))
            .mutable("image_id", image)
            .mutable("instance_type", Value::str(&self.instance_type))
            .optional(
                "key_name",
                self.key_pair
                    .as_ref()
                    .map(|key| Value::Ref(key.attribute("key_name"))),
            )
            .sensitive(
                "user_data",
                Value::File(self.user_data.clone()),
                UpdateMode::InPlace,
            )
            .optional("iam_instance_profile", profile)
            .mutable("network_interfaces", Value::Block(network))
            .mutable("block_device_mappings", Value::Block(block_device))
            .mutable("metadata_options", Value::Block(metadata))
            .mutable(
                "tag_specifications",
                Value::Blocks(vec![
                    tag_specification("instance"),
                    tag_specification("volume"),
                ]),
            )
            .tags(&self.tags)
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AutoscalingGroup {
    pub name: String,
    pub launch_template: Ref<LaunchTemplate>,
    pub subnets: Vec<Ref<Subnet>>,
    pub min_size: u32,
    pub max_size: u32,
    pub target_groups: Vec<Ref<TargetGroup>>,
    /// A control-plane member's etcd volume, which its instance attaches at boot: made
    /// before the group and deleted after it (once the instance let go of it).
    pub data_volume: Option<Ref<EbsVolume>>,
    /// Propagated to instances at launch.
    pub tags: Tags,
}

impl AutoscalingGroup {
    fn attributes(&self) -> Vec<Field> {
        let launch_template = Fields::new()
            .mutable("id", Value::Ref(self.launch_template.id()))
            .mutable(
                "version",
                Value::Ref(self.launch_template.attribute("latest_version")),
            )
            .build();
        let tags = self
            .tags
            .iter()
            .map(|(key, value)| {
                Fields::new()
                    .mutable("key", Value::str(key))
                    .mutable("value", Value::str(value))
                    .mutable("propagate_at_launch", Value::Bool(true))
                    .build()
            })
            .collect();
        let mut fields = Fields::new()
            .immutable("name", Value::str(&self.name))
            .mutable("min_size", Value::Int(i64::from(self.min_size)))
            .mutable("max_size", Value::Int(i64::from(self.max_size)))
            .mutable(
                "vpc_zone_identifier",
                Value::refs(self.subnets.iter().map(Ref::id)),
            );
        if !self.target_groups.is_empty() {
            fields = fields.mutable(
                "target_group_arns",
                Value::refs(self.target_groups.iter().map(Ref::arn)),
            );
        }
        fields
            .mutable("launch_template", Value::Block(launch_template))
            .mutable("tag", Value::Blocks(tags))
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadBalancer {
    pub name: String,
    pub internal: bool,
    pub subnets: Vec<Ref<Subnet>>,
    pub security_groups: Vec<Ref<SecurityGroup>>,
    pub tags: Tags,
}

impl LoadBalancer {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("name", Value::str(&self.name))
            .immutable("internal", Value::Bool(self.internal))
            .immutable("load_balancer_type", Value::str("network"))
            .mutable("enable_cross_zone_load_balancing", Value::Bool(true))
            .mutable("subnets", Value::refs(self.subnets.iter().map(Ref::id)))
            .immutable(
                "security_groups",
                Value::refs(self.security_groups.iter().map(Ref::id)),
            )
            .tags(&self.tags)
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroup {
    pub name: String,
    pub vpc: Ref<Vpc>,
    pub port: u16,
    pub tags: Tags,
}

impl TargetGroup {
    fn attributes(&self) -> Vec<Field> {
        let health_check = Fields::new()
            .mutable("protocol", Value::str("TCP"))
            .mutable("interval", Value::Int(10))
            .mutable("healthy_threshold", Value::Int(2))
            .mutable("unhealthy_threshold", Value::Int(2))
            .build();
        Fields::new()
            .immutable("name", Value::str(&self.name))
            .immutable("port", Value::Int(i64::from(self.port)))
            .immutable("protocol", Value::str("TCP"))
            .immutable("target_type", Value::str("instance"))
            .immutable("vpc_id", self.vpc.id_value())
            // Without this, a control-plane node cannot reach the API through the load
            // balancer when it is itself the chosen target (NLB hairpinning).
            .mutable("preserve_client_ip", Value::str("false"))
            .mutable("deregistration_delay", Value::Int(30))
            .mutable("health_check", Value::Block(health_check))
            .tags(&self.tags)
            .build()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub load_balancer: Ref<LoadBalancer>,
    pub port: u16,
    pub target_group: Ref<TargetGroup>,
    pub tags: Tags,
}

impl Listener {
    fn attributes(&self) -> Vec<Field> {
        let action = Fields::new()
            .mutable("type", Value::str("forward"))
            .mutable("target_group_arn", Value::Ref(self.target_group.arn()))
            .build();
        Fields::new()
            .immutable("load_balancer_arn", Value::Ref(self.load_balancer.arn()))
            .mutable("port", Value::Int(i64::from(self.port)))
            .mutable("protocol", Value::str("TCP"))
            .mutable("default_action", Value::Block(action))
            .tags(&self.tags)
            .build()
    }
}

/// An existing Route53 hosted zone, looked up by name.
#[derive(Debug, Clone, PartialEq)]
pub struct HostedZone {
    pub name: String,
    pub private: bool,
}

impl HostedZone {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .mutable("name", Value::str(&self.name))
            .mutable("private_zone", Value::Bool(self.private))
            .build()
    }
}

/// An alias A record pointing at the API load balancer.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsRecord {
    pub zone: Ref<HostedZone>,
    pub name: String,
    pub load_balancer: Ref<LoadBalancer>,
}

impl DnsRecord {
    fn attributes(&self) -> Vec<Field> {
        let alias = Fields::new()
            .mutable("name", Value::Ref(self.load_balancer.attribute("dns_name")))
            .mutable(
                "zone_id",
                Value::Ref(self.load_balancer.attribute("zone_id")),
            )
            .mutable("evaluate_target_health", Value::Bool(false))
            .build();
        Fields::new()
            .immutable("zone_id", Value::Ref(self.zone.attribute("zone_id")))
            .immutable("name", Value::str(&self.name))
            .immutable("type", Value::str("A"))
            .mutable("alias", Value::Block(alias))
            .build()
    }
}

/// A bare host rafter bootstraps over SSH.
#[derive(Debug, Clone, PartialEq)]
pub struct SshHost {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub role: String,
    /// The host before it in the join order (control-plane hosts join one at a time).
    pub joins_after: Option<Ref<SshHost>>,
}

impl SshHost {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("address", Value::str(&self.address))
            .mutable("port", Value::Int(i64::from(self.port)))
            .mutable("user", Value::str(&self.user))
            .immutable("role", Value::str(&self.role))
            .optional(
                "joins_after",
                self.joins_after
                    .as_ref()
                    .map(|host| Value::str(host.address().name.clone())),
            )
            .build()
    }
}

impl Resource {
    /// Dependencies that no attribute expresses (Terraform `depends_on`).
    pub fn extra_dependencies(&self) -> Vec<&Address> {
        match self {
            Resource::NatGateway(nat) => vec![nat.internet_gateway.address()],
            Resource::SshHost(host) => host.joins_after.iter().map(Ref::address).collect(),
            Resource::AutoscalingGroup(group) => {
                group.data_volume.iter().map(Ref::address).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// A queue the node termination handler reads instance events from (queue mode).
#[derive(Debug, Clone, PartialEq)]
pub struct SqsQueue {
    pub name: String,
    /// How long an unread event is kept: past it, the instance is gone anyway.
    pub message_retention_seconds: u32,
    pub tags: Tags,
}

impl SqsQueue {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("name", Value::str(&self.name))
            .mutable(
                "message_retention_seconds",
                Value::Int(i64::from(self.message_retention_seconds)),
            )
            .mutable("sqs_managed_sse_enabled", Value::Bool(true))
            .tags(&self.tags)
            .build()
    }
}

/// Who may send to a queue: its resource policy, a JSON document that names the queue's
/// ARN and the rules' ARNs (known once they exist).
#[derive(Debug, Clone, PartialEq)]
pub struct SqsQueuePolicy {
    pub queue: Ref<SqsQueue>,
    pub policy: Value,
}

impl SqsQueuePolicy {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("queue_url", Value::Ref(self.queue.id()))
            .mutable("policy", Value::Json(Box::new(self.policy.clone())))
            .build()
    }
}

/// An EventBridge rule on the account's default bus, matching `event_pattern` (JSON text).
#[derive(Debug, Clone, PartialEq)]
pub struct EventRule {
    pub name: String,
    pub description: String,
    pub event_pattern: String,
    pub tags: Tags,
}

impl EventRule {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("name", Value::str(&self.name))
            .mutable("description", Value::str(&self.description))
            .mutable("event_pattern", Value::str(&self.event_pattern))
            .tags(&self.tags)
            .build()
    }
}

/// Where a rule sends what it matched: a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct EventTarget {
    pub rule: Ref<EventRule>,
    pub target_id: String,
    pub queue: Ref<SqsQueue>,
}

impl EventTarget {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("rule", Value::Ref(self.rule.attribute("name")))
            .immutable("target_id", Value::str(&self.target_id))
            .mutable("arn", Value::Ref(self.queue.arn()))
            .build()
    }
}

/// A lifecycle hook holding an auto-scaling group's instances in a transition until someone
/// completes the action or the heartbeat runs out.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleHook {
    pub name: String,
    pub group: Ref<AutoscalingGroup>,
    /// `autoscaling:EC2_INSTANCE_TERMINATING` or `…_LAUNCHING`.
    pub transition: String,
    /// `CONTINUE` or `ABANDON`, when the heartbeat runs out.
    pub default_result: String,
    pub heartbeat_timeout_seconds: u32,
}

impl LifecycleHook {
    fn attributes(&self) -> Vec<Field> {
        Fields::new()
            .immutable("name", Value::str(&self.name))
            .immutable(
                "autoscaling_group_name",
                Value::Ref(self.group.attribute("name")),
            )
            .mutable("lifecycle_transition", Value::str(&self.transition))
            .mutable("default_result", Value::str(&self.default_result))
            .mutable(
                "heartbeat_timeout",
                Value::Int(i64::from(self.heartbeat_timeout_seconds)),
            )
            .build()
    }
}
