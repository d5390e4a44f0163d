//! The versioned cluster spec (`apiVersion: rafter.dev/v1alpha1`, `kind: Cluster`).
//!
//! Serde types only: every optional field has an explicit default here, so that the spec
//! rafter stores and prints (`get cluster -o yaml`) is complete and can be fed back to
//! `create cluster -f`. Semantic rules live in `validate`, derived values in `complete`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const API_VERSION: &str = "rafter.dev/v1alpha1";
pub const KIND: &str = "Cluster";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cluster {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: ClusterSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ClusterSpec {
    pub kubernetes_version: String,
    pub provider: Provider,
    /// AWS region (provider `aws` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Where the cluster's state lives; set by rafter when the cluster is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_base: Option<String>,
    pub networking: Networking,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    pub api_server: ApiServer,
    pub control_plane: ControlPlane,
    /// The control plane's etcd: how often its members back it up.
    pub etcd: Etcd,
    pub node_groups: Vec<NodeGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bastion: Option<Bastion>,
    /// SSH access to AWS instances: a public key to install and the networks that may connect.
    pub ssh_access: SshAccess,
    /// Bare hosts (provider `ssh` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<Host>,
    /// How rafter connects to bare hosts (provider `ssh` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshSettings>,
    /// Where nodes download binaries and images from: mirrors and per-file overrides.
    #[serde(skip_serializing_if = "Assets::is_default")]
    pub assets: Assets,
    /// The AWS integrations (provider `aws` only; filled in with their defaults there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addons: Option<Addons>,
}

impl ClusterSpec {
    /// The add-ons in force: the spec's, else their defaults on AWS and none on bare hosts.
    pub fn addons(&self) -> Addons {
        match (&self.addons, self.provider) {
            (Some(addons), _) => *addons,
            (None, Provider::Aws) => Addons::default(),
            (None, Provider::Ssh) => Addons::none(),
        }
    }
}

impl Default for ClusterSpec {
    fn default() -> Self {
        Self {
            kubernetes_version: crate::spec::versions::DEFAULT_KUBERNETES_VERSION.to_string(),
            provider: Provider::Aws,
            region: None,
            config_base: None,
            networking: Networking::default(),
            dns: None,
            api_server: ApiServer::default(),
            control_plane: ControlPlane::default(),
            etcd: Etcd::default(),
            node_groups: Vec::new(),
            bastion: None,
            ssh_access: SshAccess::default(),
            hosts: Vec::new(),
            ssh: None,
            assets: Assets::default(),
            addons: None,
        }
    }
}

/// The components that make a cluster on AWS what a kops user expects, each installed as a
/// pinned add-on by the first control-plane member and given its own IAM statements on the
/// control-plane role, present only while it is on (`crate::model::iam_addons`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Addons {
    /// The AWS cloud controller manager: node provider IDs, zones and addresses, and load
    /// balancers for `Service`s of type `LoadBalancer`. Kubelets run with
    /// `--cloud-provider=external` while it is on.
    pub cloud_controller_manager: Switch,
    /// The EBS CSI driver and a default `gp3` storage class, so `PersistentVolumeClaim`s bind.
    /// Needs the cloud controller (nodes learn their zone from it).
    #[serde(rename = "ebsCSIDriver")]
    pub ebs_csi_driver: Switch,
    /// The cluster autoscaler, sizing every node group between its `minSize` and `maxSize`.
    pub cluster_autoscaler: Switch,
    /// The AWS node termination handler in queue mode: an SQS queue fed by EventBridge rules
    /// (spot interruptions, rebalance recommendations, instance state changes, scheduled
    /// maintenance) and a terminating lifecycle hook on every group, so a node is cordoned
    /// and drained before AWS takes its instance away.
    pub node_termination_handler: Switch,
}

impl Default for Addons {
    /// kops' defaults: the cloud controller, the storage driver and the termination handler
    /// on, the autoscaler off.
    fn default() -> Self {
        Self {
            cloud_controller_manager: Switch { enabled: true },
            ebs_csi_driver: Switch { enabled: true },
            cluster_autoscaler: Switch { enabled: false },
            node_termination_handler: Switch { enabled: true },
        }
    }
}

/// The node termination handler's add-on name (its manifest and removal label), which the
/// add-ons step also gives the ConfigMap holding its queue URL.
pub const NODE_TERMINATION_HANDLER_ADDON: &str = "aws-node-termination-handler";

/// One AWS add-on as the rest of rafter names it: its manifest, main image and removal label
/// (`name`), its field under `spec.addons`, and whether it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddonSwitch {
    pub name: &'static str,
    pub field: &'static str,
    pub enabled: bool,
}

impl Addons {
    /// Every add-on, in the order the first member applies them.
    pub fn each(&self) -> [AddonSwitch; 4] {
        [
            AddonSwitch {
                name: "aws-cloud-controller-manager",
                field: "cloudControllerManager",
                enabled: self.cloud_controller_manager.enabled,
            },
            AddonSwitch {
                name: "aws-ebs-csi-driver",
                field: "ebsCSIDriver",
                enabled: self.ebs_csi_driver.enabled,
            },
            AddonSwitch {
                name: "cluster-autoscaler",
                field: "clusterAutoscaler",
                enabled: self.cluster_autoscaler.enabled,
            },
            AddonSwitch {
                name: NODE_TERMINATION_HANDLER_ADDON,
                field: "nodeTerminationHandler",
                enabled: self.node_termination_handler.enabled,
            },
        ]
    }

    pub fn none() -> Self {
        Self {
            cloud_controller_manager: Switch { enabled: false },
            ebs_csi_driver: Switch { enabled: false },
            cluster_autoscaler: Switch { enabled: false },
            node_termination_handler: Switch { enabled: false },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Switch {
    pub enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Provider {
    Aws,
    Ssh,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Networking {
    pub topology: Topology,
    pub vpc_cidr: Cidr,
    pub zones: Vec<String>,
    /// One entry per zone and type; missing ones are carved from `vpcCidr` deterministically.
    pub subnets: Vec<SubnetSpec>,
    /// Defaults to `perZone` for the private topology and `none` for the public one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_gateways: Option<NatGateways>,
    pub pod_cidr: Cidr,
    pub service_cidr: Cidr,
    pub cni: Cni,
}

impl Default for Networking {
    fn default() -> Self {
        Self {
            topology: Topology::Private,
            vpc_cidr: DEFAULT_VPC_CIDR,
            zones: Vec::new(),
            subnets: Vec::new(),
            nat_gateways: None,
            pod_cidr: DEFAULT_POD_CIDR,
            service_cidr: DEFAULT_SERVICE_CIDR,
            cni: Cni::Calico,
        }
    }
}

pub const DEFAULT_VPC_CIDR: Cidr = Cidr::from_octets([10, 0, 0, 0], 16);
pub const DEFAULT_POD_CIDR: Cidr = Cidr::from_octets([100, 96, 0, 0], 11);
pub const DEFAULT_SERVICE_CIDR: Cidr = Cidr::from_octets([100, 64, 0, 0], 13);
pub const ANYWHERE: Cidr = Cidr::from_octets([0, 0, 0, 0], 0);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Topology {
    /// Nodes in private subnets behind NAT; only load balancers and the bastion are public.
    Private,
    /// Nodes in public subnets with public addresses.
    Public,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NatGateways {
    PerZone,
    Single,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Cni {
    Calico,
    Cilium,
    Flannel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubnetSpec {
    pub zone: String,
    #[serde(rename = "type")]
    pub kind: SubnetKind,
    pub cidr: Cidr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SubnetKind {
    Public,
    Private,
}

impl fmt::Display for SubnetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SubnetKind::Public => "public",
            SubnetKind::Private => "private",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dns {
    /// An existing Route53 hosted zone; `api.<name>` and `api.internal.<name>` go there.
    pub zone: String,
    #[serde(default)]
    pub private: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ApiServer {
    pub load_balancer: LoadBalancerScheme,
    /// Networks allowed to reach the API on port 443.
    pub allowed_cidrs: Vec<Cidr>,
    /// For provider `ssh`: an existing load balancer or DNS name in front of the API servers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

impl Default for ApiServer {
    fn default() -> Self {
        Self {
            load_balancer: LoadBalancerScheme::Public,
            allowed_cidrs: vec![ANYWHERE],
            endpoint: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LoadBalancerScheme {
    Public,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ControlPlane {
    pub count: u32,
    pub instance_type: String,
    pub root_volume_size_gb: u32,
    pub image: String,
}

impl Default for ControlPlane {
    fn default() -> Self {
        Self {
            count: 1,
            instance_type: "t3.medium".to_string(),
            root_volume_size_gb: 64,
            image: DEFAULT_IMAGE.to_string(),
        }
    }
}

pub const DEFAULT_IMAGE: &str = "debian-12";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Etcd {
    /// The etcd release the control-plane members run (`MAJOR.MINOR.PATCH`). Changed only
    /// through `rafter upgrade cluster`, one minor at a time.
    pub version: String,
    /// Every this many minutes the leading member snapshots etcd into the cluster's backups
    /// (a systemd timer on each control-plane node); 0 turns scheduled backups off.
    pub backup_interval_minutes: u32,
    /// On AWS, each member's data lives on an EBS volume of its own that follows the member
    /// from instance to instance (as kops' etcd-manager does); its size and performance.
    pub volume: EtcdVolume,
}

impl Default for Etcd {
    fn default() -> Self {
        Self {
            version: crate::spec::versions::DEFAULT_ETCD_VERSION.to_string(),
            backup_interval_minutes: 15,
            volume: EtcdVolume::default(),
        }
    }
}

/// A control-plane member's etcd data volume on AWS (always encrypted). Size, type, IOPS and
/// throughput change in place (EBS `ModifyVolume`); a volume never shrinks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EtcdVolume {
    /// GiB; kops' default for etcd is 20.
    #[serde(rename = "sizeGiB")]
    pub size_gib: u32,
    /// The EBS volume type: `gp3` (the default), `gp2`, `io1` or `io2`.
    #[serde(rename = "type")]
    pub volume_type: String,
    /// Provisioned IOPS (`gp3`: 3000 to 16000, its baseline 3000 when left out; `io1`/`io2`:
    /// required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iops: Option<u32>,
    /// Throughput in MiB/s (`gp3` only: 125 to 1000, its baseline 125 when left out).
    #[serde(rename = "throughputMiBps", skip_serializing_if = "Option::is_none")]
    pub throughput_mibps: Option<u32>,
}

impl Default for EtcdVolume {
    fn default() -> Self {
        Self {
            size_gib: 20,
            volume_type: "gp3".to_string(),
            iops: None,
            throughput_mibps: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeGroup {
    pub name: String,
    #[serde(default = "default_node_instance_type")]
    pub instance_type: String,
    #[serde(default = "default_min_size")]
    pub min_size: u32,
    #[serde(default = "default_max_size")]
    pub max_size: u32,
    #[serde(default = "default_node_volume")]
    pub root_volume_size_gb: u32,
    #[serde(default = "default_image")]
    pub image: String,
    /// Zones to spread over; defaults to all of `networking.zones`.
    #[serde(default)]
    pub zones: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

fn default_node_instance_type() -> String {
    "t3.large".to_string()
}
fn default_min_size() -> u32 {
    2
}
fn default_max_size() -> u32 {
    4
}
fn default_node_volume() -> u32 {
    128
}
fn default_image() -> String {
    DEFAULT_IMAGE.to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Bastion {
    pub instance_type: String,
    pub image: String,
}

impl Default for Bastion {
    fn default() -> Self {
        Self {
            instance_type: "t3.micro".to_string(),
            image: DEFAULT_IMAGE.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SshAccess {
    /// An OpenSSH public key installed on instances (`ssh-ed25519 AAAA…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Networks allowed to SSH to the bastion (private topology) or to nodes (public).
    pub allowed_cidrs: Vec<Cidr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub role: HostRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HostRole {
    ControlPlane,
    Worker,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SshSettings {
    pub user: String,
    pub port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_hosts_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bastion: Option<String>,
}

impl Default for SshSettings {
    fn default() -> Self {
        Self {
            user: "root".to_string(),
            port: 22,
            private_key_file: None,
            known_hosts_file: None,
            bastion: None,
        }
    }
}

/// Mirrors for air-gapped sites and overrides of rafter's asset list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Assets {
    /// Downloads go to `<fileRepository>/<host>/<path>` of each file's upstream address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_repository: Option<String>,
    /// Images are pulled from `<containerRegistry>/<path>` instead of their upstream registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_registry: Option<String>,
    /// Per-file address or checksum, e.g. for a Kubernetes version rafter has no checksums of.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<AssetOverride>,
}

impl Assets {
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssetOverride {
    pub name: String,
    /// May contain `{version}` and `{arch}` (`amd64`, `arm64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "ArchDigests::is_empty")]
    pub sha256: ArchDigests,
}

/// A file's SHA-256 for each machine architecture.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ArchDigests {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amd64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arm64: Option<String>,
}

impl ArchDigests {
    pub fn is_empty(&self) -> bool {
        self.amd64.is_none() && self.arm64.is_none()
    }
}

/// An IPv4 CIDR block in canonical form (no host bits set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr(pub Ipv4Net);

impl Cidr {
    /// For constants only: an invalid prefix fails the build, since every caller is a `const`.
    const fn from_octets(octets: [u8; 4], prefix: u8) -> Self {
        let address = std::net::Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]);
        match Ipv4Net::new(address, prefix) {
            Ok(net) => Self(net),
            Err(_) => panic!("invalid constant CIDR"),
        }
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.0.contains(&other.0.network()) || other.0.contains(&self.0.network())
    }

    pub fn contains(&self, other: &Cidr) -> bool {
        self.0.contains(&other.0)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let net: Ipv4Net = text.parse().map_err(|_| {
            format!("`{text}` is not an IPv4 CIDR block (expected the form 10.0.0.0/16)")
        })?;
        if net.trunc() != net {
            return Err(format!(
                "`{text}` has host bits set; did you mean `{}`?",
                net.trunc()
            ));
        }
        Ok(Self(net))
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
