//! The stacked etcd member of a control-plane node, run by systemd as kubespray's default
//! (`etcd_deployment_type: host`) does: TLS for clients and peers with certificate auth on
//! both, the etcd CA's certificates under [`PKI_DIR`], data under [`DATA_DIR`], health on the
//! loopback metrics port.
//!
//! A host service rather than kubeadm's static pod: etcd is up before the kubelet and does not
//! depend on it or on the container runtime, and rafter changes its membership over SSH with
//! the `etcdctl` next to it. How a member first finds the cluster (`--initial-cluster…`) lives
//! in its own file, [`INITIAL_CLUSTER_FILE`], which etcd reads only while its data directory is
//! empty: a later change of membership rewrites that file without restarting the member.

use std::net::IpAddr;

use serde::Serialize;

use super::BootstrapError;
use crate::spec::Cluster;
use crate::templates;

/// Where the node keeps etcd's certificates (`ca.crt`, `server.*`, `peer.*`).
pub const PKI_DIR: &str = "/etc/kubernetes/pki/etcd";
pub const DATA_DIR: &str = "/var/lib/etcd";
/// Where the asset list unpacks etcd's release (`etcd`, `etcdctl`, `etcdutl`).
pub const INSTALL_DIR: &str = "/opt/etcd";
/// etcd's offline tool (snapshot status and restore), from the same release.
pub const ETCDUTL: &str = "/opt/etcd/etcdutl";
pub const UNIT_FILE: &str = "/etc/systemd/system/etcd.service";
pub const INITIAL_CLUSTER_FILE: &str = "/etc/etcd/initial-cluster.env";
/// Where an AWS control-plane node keeps rafter's AWS helpers and its peer script.
pub const AWS_HELPERS: &str = "/usr/local/lib/rafter/aws.sh";
pub const PEERS_SCRIPT: &str = "/usr/local/lib/rafter/etcd-peers.sh";
/// Attaches and mounts an AWS member's data volume on [`DATA_DIR`] (`etcd-volume.sh`).
pub const VOLUME_SCRIPT: &str = "/usr/local/lib/rafter/etcd-volume.sh";
/// The systemd mount unit of [`DATA_DIR`] on an AWS member (`systemd-escape --path`), which
/// etcd's unit requires there.
pub const DATA_VOLUME_UNIT: &str = "var-lib-etcd.mount";
/// The scheduled backup of a control-plane member, and where a bare host keeps its backups
/// until rafter pulls them.
pub const BACKUP_SCRIPT: &str = "/usr/local/lib/rafter/etcd-backup.sh";
pub const BACKUP_SPOOL: &str = "/var/lib/rafter/etcd-backups";
/// How many backups a bare host keeps waiting for rafter to pull them (two hours at the
/// default interval).
pub const BACKUPS_KEPT_ON_HOST: u32 = 8;
/// `etcdctl` against the local member with the node's health-check client certificate.
pub const ETCDCTL: &str = "/usr/local/lib/rafter/etcdctl";

/// How the other members reach a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberAddress {
    /// A bare host: its address is in the spec.
    Ip(IpAddr),
    /// An AWS instance, whose address is assigned when it boots: a name that each member
    /// resolves from the addresses the members publish (see `etcd-peers.sh`).
    Dns(String),
}

/// A control-plane node as etcd's membership sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMember {
    pub name: String,
    pub address: MemberAddress,
}

impl EtcdMember {
    pub fn at_ip(name: &str, ip: IpAddr) -> Self {
        Self {
            name: name.to_string(),
            address: MemberAddress::Ip(ip),
        }
    }

    pub fn at_dns(name: &str, dns_name: &str) -> Self {
        Self {
            name: name.to_string(),
            address: MemberAddress::Dns(dns_name.to_string()),
        }
    }

    /// The member's address, when it is known ahead (bare hosts).
    pub fn ip(&self) -> Option<IpAddr> {
        match self.address {
            MemberAddress::Ip(ip) => Some(ip),
            MemberAddress::Dns(_) => None,
        }
    }

    /// The host part of the member's URLs (`[v6]` for an IPv6 address).
    pub fn url_host(&self) -> String {
        match &self.address {
            MemberAddress::Ip(IpAddr::V4(ip)) => ip.to_string(),
            MemberAddress::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
            MemberAddress::Dns(name) => name.clone(),
        }
    }

    pub fn peer_url(&self) -> String {
        format!("https://{}:2380", self.url_host())
    }

    pub fn client_url(&self) -> String {
        format!("https://{}:2379", self.url_host())
    }
}

/// How members whose addresses are assigned at boot (AWS instances) find each other: each
/// publishes its address under `peers_url` in the state store, and every member keeps
/// `/etc/hosts` entries for the others' names from what they published (`etcd-peers.sh`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerDiscovery {
    /// `s3://bucket/prefix/<cluster>/etcd-peers`: one object per member, holding its address.
    pub peers_url: String,
    /// `s3://bucket/prefix/<cluster>/backups/etcd`: where the leader puts scheduled backups.
    pub backups_url: String,
    /// `s3://bucket/prefix/<cluster>/etcd-status`: one status report per member.
    pub status_url: String,
    /// `s3://bucket/prefix/<cluster>/etcd-restore`: a restore rafter staged for the members.
    pub restore_url: String,
}

/// A new cluster's members start together from the full list; a member added to a running
/// cluster joins it (after `member add`); an established member (it has data) found the
/// cluster long ago, so it gets no first-start file at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialState {
    New,
    Existing,
    Established,
}

/// The two files of a member: its systemd unit and how it first finds the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdFiles {
    pub unit: String,
    /// `None` for an established member.
    pub initial_cluster: Option<String>,
}

#[derive(Serialize)]
struct Context<'a> {
    cluster: &'a str,
    name: &'a str,
    /// The URL host the member advertises.
    host: String,
    /// The address it listens on: its own, or every address when it is learnt at boot.
    listen: String,
    binary: String,
    initial_cluster_file: &'a str,
    initial_cluster: String,
    initial_state: &'a str,
    pki_dir: &'a str,
    data_dir: &'a str,
    /// The mount unit of the data directory, for a member whose data is on its own volume.
    data_volume_unit: Option<&'a str>,
}

/// The files of `this` member of `members`.
pub fn etcd_files(
    cluster: &Cluster,
    members: &[EtcdMember],
    this: &EtcdMember,
    state: InitialState,
) -> Result<EtcdFiles, BootstrapError> {
    let initial_state = match state {
        InitialState::New => "new",
        InitialState::Existing => "existing",
        InitialState::Established => "",
    };
    let initial_cluster = members
        .iter()
        .map(|member| format!("{}={}", member.name, member.peer_url()))
        .collect::<Vec<_>>()
        .join(",");
    let context = Context {
        cluster: &cluster.metadata.name,
        name: &this.name,
        host: this.url_host(),
        listen: match this.address {
            MemberAddress::Ip(_) => this.url_host(),
            MemberAddress::Dns(_) => "0.0.0.0".to_string(),
        },
        binary: format!("{INSTALL_DIR}/etcd"),
        initial_cluster_file: INITIAL_CLUSTER_FILE,
        initial_cluster,
        initial_state,
        pki_dir: PKI_DIR,
        data_dir: DATA_DIR,
        // An AWS member (named, its address learnt at boot) keeps its data on its volume.
        data_volume_unit: matches!(this.address, MemberAddress::Dns(_)).then_some(DATA_VOLUME_UNIT),
    };
    Ok(EtcdFiles {
        unit: templates::render("node/etcd.service", &context)?,
        initial_cluster: match state {
            InitialState::Established => None,
            _ => Some(templates::render(
                "node/etcd-initial-cluster.env",
                &context,
            )?),
        },
    })
}
