//! What a node receives to join the cluster, rendered from the templates in `templates/node/`
//! and `templates/addons/`: the same files serve AWS instances (fetched by their user-data) and
//! bare hosts (pushed over SSH), and `rafter export bootstrap` writes them for audit.
//!
//! Certificates: control-plane nodes get theirs from rafter (their names and addresses are
//! known); workers use kubelet TLS bootstrap with the cluster's bootstrap token, so one bundle
//! serves every instance of an auto-scaling group and no worker ever holds a CA key. The
//! token only lets a node ask for a node client certificate (RBAC in `node-rbac.yaml`).

pub mod assets;
pub mod bundle;
pub mod etcd;
pub mod host_rules;
pub mod node;

use std::net::IpAddr;

pub use bundle::bundle_script;
pub use etcd::{EtcdFiles, EtcdMember, InitialState, MemberAddress, PeerDiscovery, etcd_files};
pub use node::{NodeConfig, NodeRole, node_files};

use crate::model::compute::{ControlPlaneSlot, control_plane_slots};
pub use crate::model::loadbalancer::ApiLoadBalancerNames;
use crate::model::security::{API_LOAD_BALANCER_PORT, API_SERVER_PORT};
use crate::spec::{Cluster, HostRole, Provider};
use crate::state::layout;
use crate::templates::TemplateError;

/// One file of a node: where it goes, its mode and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFile {
    pub path: String,
    pub mode: u32,
    pub content: String,
    /// Holds a private key, token or encryption key.
    pub secret: bool,
}

impl NodeFile {
    pub fn new(path: &str, mode: u32, content: String, secret: bool) -> Self {
        Self {
            path: path.to_string(),
            mode,
            content,
            secret,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error(transparent)]
    Asset(#[from] assets::AssetError),
    #[error("control-plane member {index} does not exist (the control plane has {count})")]
    NoSuchMember { index: usize, count: usize },
    #[error("cluster {cluster} has no {role} named `{name}` (it has: {known})")]
    UnknownNode {
        cluster: String,
        role: &'static str,
        name: String,
        known: String,
    },
    #[error("cluster {cluster} has no {role}")]
    NoNode { cluster: String, role: &'static str },
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

/// How nodes and clients reach the API, and what its certificate must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAccess {
    pub server: String,
    pub names: Vec<String>,
    pub ips: Vec<IpAddr>,
}

/// The API's address for the nodes of `cluster`: on AWS `api.internal.<name>` with a DNS
/// zone, else the name of the load balancer nodes use (from `load_balancers`, known once they
/// exist); on bare hosts the spec's shared endpoint, else the first control-plane host. The
/// certificate names every load balancer too.
pub fn api_access(
    cluster: &Cluster,
    load_balancers: &ApiLoadBalancerNames,
) -> Result<ApiAccess, BootstrapError> {
    let name = &cluster.metadata.name;
    let spec = &cluster.spec;
    let mut names = vec![format!("api.{name}"), format!("api.internal.{name}")];
    let mut ips = Vec::new();
    let (host, port) = match spec.provider {
        Provider::Aws => {
            names.extend(load_balancers.clients.iter().cloned());
            names.extend(load_balancers.nodes.iter().cloned());
            let host = match (&spec.dns, load_balancers.for_nodes()) {
                (Some(_), _) => format!("api.internal.{name}"),
                (None, Some(balancer)) => balancer.to_string(),
                (None, None) => {
                    return Err(BootstrapError::Unsupported(format!(
                        "cluster {name} has no DNS zone and no API load balancer yet: create it first with `rafter update cluster {name} --yes`, or set spec.dns.zone"
                    )));
                }
            };
            (host, API_LOAD_BALANCER_PORT)
        }
        Provider::Ssh => {
            let endpoint = match &spec.api_server.endpoint {
                Some(endpoint) => endpoint.clone(),
                None => spec
                    .hosts
                    .iter()
                    .find(|host| host.role == HostRole::ControlPlane)
                    .map(|host| host.address.clone())
                    .ok_or_else(|| BootstrapError::NoNode {
                        cluster: name.clone(),
                        role: "control-plane host",
                    })?,
            };
            // `host:port`, `[v6]:port`, or a bare host (a bare IPv6 address has colons too).
            let with_port = endpoint
                .rsplit_once(':')
                .filter(|(host, _)| !host.ends_with(':'))
                .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)));
            with_port.unwrap_or((endpoint, API_SERVER_PORT))
        }
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    match host.parse::<IpAddr>() {
        Ok(ip) => ips.push(ip),
        Err(_) if !names.contains(&host) => names.push(host.clone()),
        Err(_) => {}
    }
    let shown = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => host,
    };
    Ok(ApiAccess {
        server: format!("https://{shown}:{port}"),
        names,
        ips,
    })
}

/// Which node to configure, as `rafter export bootstrap` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    ControlPlane,
    Worker,
}

/// The node `role`/`node` of `cluster`: on bare hosts a host's name (default: the first of
/// that role); on AWS a node group's name for workers (default: the first group).
pub fn select_node(
    cluster: &Cluster,
    role: Role,
    node: Option<&str>,
) -> Result<NodeRole, BootstrapError> {
    let name = &cluster.metadata.name;
    let spec = &cluster.spec;
    let unknown =
        |role: &'static str, wanted: &str, known: Vec<String>| BootstrapError::UnknownNode {
            cluster: name.clone(),
            role,
            name: wanted.to_string(),
            known: known.join(", "),
        };
    match (spec.provider, role) {
        (Provider::Ssh, Role::ControlPlane) => {
            let members = control_plane_members(cluster)?;
            let index = match node {
                Some(wanted) => members
                    .iter()
                    .position(|member| member.name == wanted)
                    .ok_or_else(|| {
                        unknown(
                            "control-plane host",
                            wanted,
                            members.iter().map(|member| member.name.clone()).collect(),
                        )
                    })?,
                None => 0,
            };
            Ok(NodeRole::ControlPlane {
                members,
                index,
                initial_state: InitialState::New,
                discovery: None,
            })
        }
        (Provider::Aws, Role::ControlPlane) => {
            let slots = control_plane_slots(spec.control_plane.count, &spec.networking.zones);
            let index = match node {
                Some(wanted) => slots
                    .iter()
                    .position(|slot| slot.member() == wanted || slot.group() == wanted)
                    .ok_or_else(|| {
                        unknown(
                            "control-plane member",
                            wanted,
                            slots.iter().map(ControlPlaneSlot::member).collect(),
                        )
                    })?,
                None if slots.is_empty() => {
                    return Err(BootstrapError::NoNode {
                        cluster: name.clone(),
                        role: "control-plane member",
                    });
                }
                None => 0,
            };
            Ok(NodeRole::ControlPlane {
                members: aws_control_plane_members(cluster),
                index,
                initial_state: InitialState::New,
                discovery: Some(PeerDiscovery {
                    peers_url: layout::etcd_peers_url(spec.config_base.as_deref().unwrap_or("")),
                    backups_url: layout::etcd_backups_url(
                        spec.config_base.as_deref().unwrap_or(""),
                    ),
                    status_url: layout::etcd_status_url(spec.config_base.as_deref().unwrap_or("")),
                    restore_url: layout::etcd_restore_url(
                        spec.config_base.as_deref().unwrap_or(""),
                    ),
                }),
            })
        }
        (Provider::Ssh, Role::Worker) => {
            let workers: Vec<_> = spec
                .hosts
                .iter()
                .filter(|host| host.role == HostRole::Worker)
                .collect();
            let host = match node {
                Some(wanted) => {
                    workers
                        .iter()
                        .find(|host| host.name == wanted)
                        .ok_or_else(|| {
                            unknown(
                                "worker host",
                                wanted,
                                workers.iter().map(|host| host.name.clone()).collect(),
                            )
                        })?
                }
                None => workers.first().ok_or_else(|| BootstrapError::NoNode {
                    cluster: name.clone(),
                    role: "worker host",
                })?,
            };
            Ok(NodeRole::Worker {
                name: Some(host.name.clone()),
                ip: host.address.parse().ok(),
                labels: Default::default(),
            })
        }
        (Provider::Aws, Role::Worker) => {
            let group = match node {
                Some(wanted) => spec
                    .node_groups
                    .iter()
                    .find(|group| group.name == wanted)
                    .ok_or_else(|| {
                        unknown(
                            "node group",
                            wanted,
                            spec.node_groups
                                .iter()
                                .map(|group| group.name.clone())
                                .collect(),
                        )
                    })?,
                None => spec
                    .node_groups
                    .first()
                    .ok_or_else(|| BootstrapError::NoNode {
                        cluster: name.clone(),
                        role: "node group",
                    })?,
            };
            Ok(NodeRole::Worker {
                name: None,
                ip: None,
                labels: group.labels.clone(),
            })
        }
    }
}

/// An AWS cluster's control-plane members, as etcd members: one per slot, each addressed by
/// the DNS name its instance resolves from the published addresses.
pub fn aws_control_plane_members(cluster: &Cluster) -> Vec<EtcdMember> {
    let spec = &cluster.spec;
    control_plane_slots(spec.control_plane.count, &spec.networking.zones)
        .iter()
        .map(|slot| EtcdMember::at_dns(&slot.member(), &slot.dns_name(&cluster.metadata.name)))
        .collect()
}

/// The control-plane hosts of a bare-host cluster, as etcd members.
pub fn control_plane_members(cluster: &Cluster) -> Result<Vec<EtcdMember>, BootstrapError> {
    cluster
        .spec
        .hosts
        .iter()
        .filter(|host| host.role == HostRole::ControlPlane)
        .map(|host| {
            let ip = host.address.parse().map_err(|_| {
                BootstrapError::Unsupported(format!(
                    "control-plane host {} has address `{}`, not an IP address: etcd members are addressed by IP",
                    host.name, host.address
                ))
            })?;
            Ok(EtcdMember::at_ip(&host.name, ip))
        })
        .collect()
}

/// A node's files, and the same files as one bundle script.
#[derive(Debug, Clone)]
pub struct RenderedNode {
    pub files: Vec<NodeFile>,
    pub bundle: String,
}

/// Everything node `role` of `cluster` receives, its certificates from `leaves` (the ones it
/// has while still right, else issued at `now`).
pub fn render_node(
    cluster: &Cluster,
    role: NodeRole,
    access: &ApiAccess,
    pki: &crate::pki::ClusterPki,
    secrets: &crate::pki::ClusterSecrets,
    leaves: &mut crate::pki::NodeLeaves,
    now: time::OffsetDateTime,
) -> Result<RenderedNode, BootstrapError> {
    let node_name = role.name();
    let role_name = match &role {
        NodeRole::ControlPlane { .. } => "control-plane",
        NodeRole::Worker { .. } => "worker",
    };
    let config = NodeConfig {
        cluster,
        role,
        api_server: access.server.clone(),
        api_names: access.names.clone(),
        api_ips: access.ips.clone(),
    };
    let files = node_files(&config, pki, secrets, leaves, now)?;
    let bundle = bundle_script(
        &cluster.metadata.name,
        role_name,
        node_name.as_deref(),
        &files,
    )?;
    Ok(RenderedNode { files, bundle })
}

/// The AWS control-plane members that have booted: those that published an address.
pub async fn booted_members(
    store: &impl crate::state::StateStore,
    cluster: &str,
) -> Result<Vec<String>, BootstrapError> {
    let prefix = layout::etcd_peers_prefix(cluster);
    let inside = format!("{prefix}/");
    Ok(store
        .list(&prefix)
        .await?
        .into_iter()
        .filter_map(|key| key.strip_prefix(&inside).map(str::to_string))
        .filter(|name| name != layout::ETCD_FORMED_RECORD && name != layout::ETCD_MEMBERS_RECORD)
        .collect())
}

/// How the formed record begins once a member (or rafter, for a cluster whose members
/// predate the record) saw the cluster formed; `new` before.
const FORMED: &str = "formed";

/// Whether the formed record's bytes say the etcd cluster formed.
pub fn record_says_formed(record: &[u8]) -> bool {
    record.starts_with(FORMED.as_bytes())
}

/// Whether a new control plane's members should still form a new etcd cluster: not once a
/// member recorded that the cluster formed ([`layout::ETCD_FORMED_RECORD`]), nor once a
/// majority of them have published an address (they do so right before starting etcd; what
/// members of an earlier rafter leave). Afterwards a member without data joins the running
/// cluster and never starts a new one.
///
/// Where the record is absent it is written (create-only, so a member that recorded the
/// cluster formed meanwhile is never overwritten): a member booting without data then always
/// finds evidence, and reads an absent record as a failed request (S3 answers 403, not 404,
/// to a role that may not list the bucket), never as "not formed".
pub async fn etcd_formed(
    store: &impl crate::state::StateStore,
    cluster: &Cluster,
) -> Result<bool, BootstrapError> {
    let name = &cluster.metadata.name;
    let key = layout::etcd_formed_key(name);
    let record = store.read(&key).await?;
    if record
        .as_ref()
        .is_some_and(|record| record_says_formed(record))
    {
        return Ok(true);
    }
    let booted = booted_members(store, name).await?;
    let members = cluster.spec.control_plane.count as usize;
    let formed = booted.len() > members / 2;
    if record.is_none() {
        let record = if formed {
            format!("{FORMED}; seen by rafter (a majority of members had published an address)\n")
        } else {
            "new; the members form the cluster together\n".to_string()
        };
        match store
            .write_if(&key, record.as_bytes(), crate::state::Precondition::Absent)
            .await
        {
            Ok(_) | Err(crate::state::StateError::PreconditionFailed { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(formed)
}

/// What `publish_node_bundles` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// State store keys of the bundles written (new, or changed since the last time).
    pub written: Vec<String>,
    /// Bundles already published as they are.
    pub unchanged: usize,
    /// Whether the control plane's bundles join a running etcd cluster (else they form one).
    pub etcd_formed: bool,
}

/// Renders the bundle of every AWS control-plane member and node group and writes it where
/// its user-data fetches it (see [`layout::BundleOwner`]), when it changed. Bundles kept where
/// the layout before this one put them (readable by every worker) are removed.
pub async fn publish_node_bundles(
    store: &impl crate::state::StateStore,
    cluster: &Cluster,
    load_balancers: &ApiLoadBalancerNames,
    now: time::OffsetDateTime,
) -> Result<Published, BootstrapError> {
    publish_staged_node_bundles(store, cluster, &|_| cluster, load_balancers, now).await
}

/// [`publish_node_bundles`] with each owner's bundle rendered from the spec `spec_of` gives
/// it: while an upgrade runs, the members not replaced yet and the node groups keep the old
/// versions' bundles (`upgrade::staging`). The specs differ in versions only, so the members,
/// groups and keys are `cluster`'s.
pub async fn publish_staged_node_bundles<'c>(
    store: &impl crate::state::StateStore,
    cluster: &'c Cluster,
    spec_of: &dyn Fn(&layout::BundleOwner<'_>) -> &'c Cluster,
    load_balancers: &ApiLoadBalancerNames,
    now: time::OffsetDateTime,
) -> Result<Published, BootstrapError> {
    let name = &cluster.metadata.name;
    let spec = &cluster.spec;
    let access = api_access(cluster, load_balancers)?;
    let pki = crate::pki::ClusterPki::load_or_create(store, name, now).await?;
    let secrets = crate::pki::ClusterSecrets::load_or_create(store, name).await?;
    let formed = etcd_formed(store, cluster).await?;
    let mut published = Published {
        etcd_formed: formed,
        ..Published::default()
    };
    for slot in control_plane_slots(spec.control_plane.count, &spec.networking.zones) {
        let member = slot.member();
        let owner = layout::BundleOwner::ControlPlaneMember(&member);
        let staged = spec_of(&owner);
        let mut role = select_node(staged, Role::ControlPlane, Some(&member))?;
        if let NodeRole::ControlPlane { initial_state, .. } = &mut role
            && formed
        {
            *initial_state = InitialState::Existing;
        }
        // A member's certificates are kept, so its bundle only changes when the spec does.
        let mut leaves = crate::pki::NodeLeaves::load(store, name, &member).await?;
        let rendered = render_node(staged, role, &access, &pki, &secrets, &mut leaves, now)?;
        leaves.save(store).await?;
        published
            .put(store, owner.key(name), &rendered.bundle)
            .await?;
    }
    for group in &spec.node_groups {
        let owner = layout::BundleOwner::NodeGroup(&group.name);
        let staged = spec_of(&owner);
        let role = select_node(staged, Role::Worker, Some(&group.name))?;
        // Workers hold no certificate of their own (TLS bootstrap): nothing to keep.
        let mut leaves = crate::pki::NodeLeaves::fresh();
        let rendered = render_node(staged, role, &access, &pki, &secrets, &mut leaves, now)?;
        published
            .put(store, owner.key(name), &rendered.bundle)
            .await?;
    }
    store
        .delete_prefix(&layout::legacy_bundles_prefix(name))
        .await?;
    Ok(published)
}

impl Published {
    /// Writes `bundle` at `key` unless it is there already (bundles are deterministic: the
    /// same spec and keys render the same bytes).
    async fn put(
        &mut self,
        store: &impl crate::state::StateStore,
        key: String,
        bundle: &str,
    ) -> Result<(), BootstrapError> {
        if store.read(&key).await?.as_deref() == Some(bundle.as_bytes()) {
            self.unchanged += 1;
        } else {
            store.write(&key, bundle.as_bytes()).await?;
            self.written.push(key);
        }
        Ok(())
    }
}
