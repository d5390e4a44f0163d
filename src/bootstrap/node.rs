//! The files one node receives, as kubeadm lays them out: kernel and containerd settings, the
//! kubelet's configuration and unit, certificates and kubeconfigs, the control plane's static
//! pods, audit and encryption configuration, the add-ons the first control-plane node applies,
//! and the bootstrap script that installs the pinned assets and starts the services.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;
use time::OffsetDateTime;

use super::assets::{self, Download, NodeNeeds};
use super::etcd::{self, EtcdMember, InitialState, MemberAddress, PeerDiscovery};
use super::host_rules;
use super::{BootstrapError, NodeFile};
use crate::pki::leaf::NodeIdentity;
use crate::pki::{ClusterPki, ClusterSecrets, Issued, LeafSpec, NodeLeaves};
use crate::spec::{Cluster, Cni, Provider};
use crate::templates;

/// The group the bootstrap token authenticates as.
const BOOTSTRAP_GROUP: &str = "system:bootstrappers:rafter:nodes";
const PKI: &str = "/etc/kubernetes/pki";
const CONTROL_PLANE_LABEL_SCRIPT: &str = "/usr/local/lib/rafter/control-plane-label.sh";
/// The label on every object of an add-on that can be switched off, valued with its name:
/// how the add-ons step deletes one that was switched off.
pub const ADDON_LABEL: &str = "rafter.dev/addon";
/// Where the kubelet finds static pods: it acts on a file here the moment it changes.
pub const STATIC_POD_DIR: &str = "/etc/kubernetes/manifests";
/// The control plane's static pods; each one's template, manifest and image share its name.
pub const CONTROL_PLANE_COMPONENTS: [&str; 3] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// Where the bundle leaves the static pod manifests: the kubelet does not watch it, so
/// writing a new bundle to every control-plane host at once restarts nothing. The bootstrap's
/// `control-plane` step moves them into [`STATIC_POD_DIR`], one host at a time.
pub const STAGED_STATIC_POD_DIR: &str = "/etc/kubernetes/rafter/manifests";

/// Where a restore of etcd keeps a host's control-plane manifests while it replaces the
/// data they serve (the kubelet stops what leaves [`STATIC_POD_DIR`]).
pub const RESTORE_STOPPED_MANIFEST_DIR: &str = "/etc/kubernetes/rafter-restore/manifests";

/// The static pod manifest of `component`.
pub fn static_pod_manifest(component: &str) -> String {
    format!("{STATIC_POD_DIR}/{component}.yaml")
}

/// The staged manifest of `component` (see [`STAGED_STATIC_POD_DIR`]).
pub fn staged_static_pod_manifest(component: &str) -> String {
    format!("{STAGED_STATIC_POD_DIR}/{component}.yaml")
}
/// The kubelet client certificate an AWS control-plane node issues itself at boot.
const KUBELET_CLIENT_CERT: &str = "/var/lib/kubelet/pki/rafter-kubelet-client.crt";
const KUBELET_CLIENT_KEY: &str = "/var/lib/kubelet/pki/rafter-kubelet-client.key";

/// A node to configure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRole {
    /// Member `index` of the control plane; all members are known up front (by address on
    /// bare hosts; on AWS by name, with `discovery` telling how names become addresses).
    ControlPlane {
        members: Vec<EtcdMember>,
        index: usize,
        initial_state: InitialState,
        discovery: Option<PeerDiscovery>,
    },
    /// A worker; it gets its certificate through kubelet TLS bootstrap, so one configuration
    /// serves every worker of a group. Name and address are set for bare hosts only.
    Worker {
        name: Option<String>,
        ip: Option<IpAddr>,
        labels: BTreeMap<String, String>,
    },
}

impl NodeRole {
    /// The node's name, when it has one of its own (every bare host; not an AWS worker).
    pub fn name(&self) -> Option<String> {
        match self {
            NodeRole::ControlPlane { members, index, .. } => {
                members.get(*index).map(|member| member.name.clone())
            }
            NodeRole::Worker { name, .. } => name.clone(),
        }
    }
}

/// Everything that decides a node's files.
pub struct NodeConfig<'a> {
    pub cluster: &'a Cluster,
    pub role: NodeRole,
    /// `https://host:port` of the API, as nodes reach it (load balancer or shared endpoint).
    pub api_server: String,
    /// DNS names the API server certificate must carry besides the built-in ones.
    pub api_names: Vec<String>,
    /// Addresses the API server certificate must carry besides the node's own.
    pub api_ips: Vec<IpAddr>,
}

fn base64(text: &str) -> String {
    aws_smithy_types::base64::encode(text.as_bytes())
}

/// Collects files in the order a reader expects them.
#[derive(Default)]
struct Files(Vec<NodeFile>);

impl Files {
    fn config(&mut self, path: &str, content: String) {
        self.0.push(NodeFile::new(path, 0o644, content, false));
    }

    fn secret(&mut self, path: &str, content: String) {
        self.0.push(NodeFile::new(path, 0o600, content, true));
    }

    /// Root-only, but no secret in it (static pod manifests, as kubeadm writes them).
    fn restricted(&mut self, path: &str, content: String) {
        self.0.push(NodeFile::new(path, 0o600, content, false));
    }

    fn script(&mut self, path: &str, content: String) {
        self.0.push(NodeFile::new(path, 0o755, content, false));
    }

    fn pair(&mut self, stem: &str, issued: &Issued) {
        self.config(&format!("{stem}.crt"), issued.cert_pem.clone());
        self.secret(&format!("{stem}.key"), issued.key.expose().to_string());
    }
}

#[derive(Serialize)]
struct AssetLine<'a> {
    name: &'a str,
    kind: assets::InstallKind,
    dest: &'a str,
    strip: u8,
    url: &'a str,
    sha256: Option<&'a str>,
}

#[derive(Serialize)]
struct ArchAssets<'a> {
    name: &'a str,
    assets: Vec<AssetLine<'a>>,
}

/// The files of `node`, with its certificates from `leaves` (reused, or issued at `now`).
pub fn node_files(
    node: &NodeConfig<'_>,
    pki: &ClusterPki,
    secrets: &ClusterSecrets,
    leaves: &mut NodeLeaves,
    now: OffsetDateTime,
) -> Result<Vec<NodeFile>, BootstrapError> {
    let cluster = node.cluster;
    let name = cluster.metadata.name.as_str();
    let spec = &cluster.spec;
    let image = |image_name: &str| assets::image(cluster, image_name);
    let service_ip = nth_address(&spec.networking.service_cidr.0, 1);
    let cluster_dns = nth_address(&spec.networking.service_cidr.0, 10);
    let pod_cidr = spec.networking.pod_cidr.to_string();
    let service_cidr = spec.networking.service_cidr.to_string();
    // `boots_named`: an AWS control-plane node, named and addressed when it boots.
    let (control_plane, applies_addons, node_name, node_ip, boots_named) = match &node.role {
        NodeRole::ControlPlane {
            members,
            index,
            discovery,
            ..
        } => {
            let this = members.get(*index).ok_or(BootstrapError::NoSuchMember {
                index: *index,
                count: members.len(),
            })?;
            // An instance keeps the name its cloud gave it; a bare host takes the spec's.
            let node_name = discovery.is_none().then(|| this.name.clone());
            (true, *index == 0, node_name, this.ip(), discovery.is_some())
        }
        NodeRole::Worker { name, ip, .. } => (false, false, name.clone(), *ip, false),
    };
    let role = if control_plane {
        "control-plane"
    } else {
        "worker"
    };
    let on_aws = spec.provider == Provider::Aws;
    // The AWS cloud controller initialises nodes, so the kubelets and the controller manager
    // leave that to it (cloud-provider-aws docs/getting_started.md).
    let external_cloud_provider = spec.addons().cloud_controller_manager.enabled;
    let mut files = Files::default();

    files.config(
        "/etc/modules-load.d/rafter.conf",
        templates::render("node/modules-load.conf", ())?,
    );
    files.config(
        "/etc/sysctl.d/99-rafter.conf",
        templates::render(
            "node/sysctl.conf",
            minijinja::context! { tunables => host_rules::KERNEL_TUNABLES },
        )?,
    );
    files.config(
        "/etc/containerd/config.toml",
        templates::render(
            "node/containerd.toml",
            minijinja::context! {
                pause_image => image("pause")?,
                registry_mirror => spec.assets.container_registry,
            },
        )?,
    );
    files.config(
        "/etc/systemd/system/containerd.service",
        templates::render("node/containerd.service", ())?,
    );
    files.config(
        "/etc/crictl.yaml",
        templates::render("node/crictl.yaml", ())?,
    );
    files.config(
        "/var/lib/kubelet/config.yaml",
        templates::render(
            "node/kubelet-config.yaml",
            minijinja::context! {
                cluster_dns => cluster_dns.to_string(),
                static_pods => control_plane,
                resolv_conf => host_rules::KUBELET_RESOLV_CONF,
            },
        )?,
    );
    let labels = match &node.role {
        NodeRole::Worker { labels, .. } => labels
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(","),
        NodeRole::ControlPlane { .. } => String::new(),
    };
    files.config(
        "/etc/systemd/system/kubelet.service",
        templates::render(
            "node/kubelet.service",
            minijinja::context! {
                cluster => name,
                role,
                node_name,
                node_ip => node_ip.map(|ip| ip.to_string()),
                node_labels => labels,
                bootstrap_kubeconfig => !control_plane,
                external_cloud_provider,
                provider_id_file => on_aws.then_some(crate::model::compute::PROVIDER_ID_FILE),
            },
        )?,
    );
    files.config(&format!("{PKI}/ca.crt"), pki.ca.cert_pem.clone());

    let kubeconfig = |server: &str, user: &str, credential: Credential<'_>| {
        let (token, cert_data, key_data) = match credential {
            Credential::Token(token) => (token.to_string(), String::new(), String::new()),
            Credential::Certificate(issued) => (
                String::new(),
                base64(&issued.cert_pem),
                base64(issued.key.expose()),
            ),
            Credential::IssuedAtBoot => (String::new(), String::new(), String::new()),
        };
        let issued_at_boot = matches!(credential, Credential::IssuedAtBoot);
        templates::render(
            "node/kubeconfig.yaml",
            minijinja::context! {
                cluster => name,
                server,
                ca_data => base64(&pki.ca.cert_pem),
                user,
                token,
                cert_data,
                key_data,
                cert_file => issued_at_boot.then_some(KUBELET_CLIENT_CERT),
                key_file => issued_at_boot.then_some(KUBELET_CLIENT_KEY),
            },
        )
    };

    if let NodeRole::ControlPlane {
        members,
        index,
        initial_state,
        discovery,
    } = &node.role
    {
        let this = &members[*index];
        // Where the node's own components reach its API server: its address, or loopback
        // when the address is only known at boot.
        let local_ip = this.ip().unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let identity = NodeIdentity {
            hostname: this.name.clone(),
            ips: [vec![local_ip], node.api_ips.clone()].concat(),
        };
        let etcd_identity = NodeIdentity {
            hostname: match &this.address {
                MemberAddress::Ip(_) => this.name.clone(),
                MemberAddress::Dns(dns_name) => dns_name.clone(),
            },
            ips: this.ip().into_iter().collect(),
        };
        let mut issue = |name: &str, authority: &crate::pki::Authority, leaf: &LeafSpec| {
            leaves.issue(name, authority, leaf, now)
        };
        files.secret(&format!("{PKI}/ca.key"), pki.ca.key.expose().to_string());
        files.pair(
            &format!("{PKI}/apiserver"),
            &issue(
                "apiserver",
                &pki.ca,
                &LeafSpec::api_server(&node.api_names, service_ip, &identity),
            )?,
        );
        files.pair(
            &format!("{PKI}/apiserver-kubelet-client"),
            &issue(
                "apiserver-kubelet-client",
                &pki.ca,
                &LeafSpec::client("kube-apiserver-kubelet-client", None),
            )?,
        );
        files.pair(
            &format!("{PKI}/apiserver-etcd-client"),
            &issue(
                "apiserver-etcd-client",
                &pki.etcd_ca,
                &LeafSpec::etcd_client("kube-apiserver-etcd-client"),
            )?,
        );
        files.config(
            &format!("{PKI}/front-proxy-ca.crt"),
            pki.front_proxy_ca.cert_pem.clone(),
        );
        files.pair(
            &format!("{PKI}/front-proxy-client"),
            &issue(
                "front-proxy-client",
                &pki.front_proxy_ca,
                &LeafSpec::client("front-proxy-client", None),
            )?,
        );
        files.secret(
            &format!("{PKI}/sa.key"),
            pki.service_account.expose().to_string(),
        );
        files.config(
            &format!("{PKI}/sa.pub"),
            crate::pki::store::public_key_pem(&pki.service_account)?,
        );
        files.config(
            &format!("{}/ca.crt", etcd::PKI_DIR),
            pki.etcd_ca.cert_pem.clone(),
        );
        files.pair(
            &format!("{}/server", etcd::PKI_DIR),
            &issue(
                "etcd/server",
                &pki.etcd_ca,
                &LeafSpec::etcd_server(&etcd_identity),
            )?,
        );
        files.pair(
            &format!("{}/peer", etcd::PKI_DIR),
            &issue(
                "etcd/peer",
                &pki.etcd_ca,
                &LeafSpec::etcd_peer(&etcd_identity),
            )?,
        );
        // What rafter (and an operator on the node) runs etcdctl with, as kubeadm names it.
        files.pair(
            &format!("{}/healthcheck-client", etcd::PKI_DIR),
            &issue(
                "etcd/healthcheck-client",
                &pki.etcd_ca,
                &LeafSpec::etcd_client("kube-etcd-healthcheck-client"),
            )?,
        );

        let local_server = format!("https://{}", socket(local_ip, 6443));
        // A control-plane kubelet talks to its own API server, never through the load
        // balancer (kubeadm's ControlPlaneKubeletLocalMode): while an upgrade replaces the
        // members one at a time, a new kubelet would otherwise reach an older API server,
        // which the version skew policy forbids.
        if boots_named {
            // Named at boot, so its certificate is issued at boot too (bootstrap.sh, with the
            // cluster CA the node holds anyway): TLS bootstrap would need the API server that
            // this kubelet is about to start.
            files.config(
                "/etc/kubernetes/kubelet.conf",
                kubeconfig(&local_server, "kubelet", Credential::IssuedAtBoot)?,
            );
        } else {
            let node_user = format!("system:node:{}", this.name);
            let kubelet_cert = issue(
                "kubelet.conf",
                &pki.ca,
                &LeafSpec::client(&node_user, Some("system:nodes")),
            )?;
            files.secret(
                "/etc/kubernetes/kubelet.conf",
                kubeconfig(
                    &local_server,
                    &node_user,
                    Credential::Certificate(&kubelet_cert),
                )?,
            );
        }
        for (file, user) in [
            ("controller-manager.conf", "system:kube-controller-manager"),
            ("scheduler.conf", "system:kube-scheduler"),
        ] {
            let issued = issue(file, &pki.ca, &LeafSpec::client(user, None))?;
            files.secret(
                &format!("/etc/kubernetes/{file}"),
                kubeconfig(&local_server, user, Credential::Certificate(&issued))?,
            );
        }
        let admin = issue(
            "admin.conf",
            &pki.ca,
            &LeafSpec::client("kubernetes-admin", Some("system:masters")),
        )?;
        files.secret(
            "/etc/kubernetes/admin.conf",
            kubeconfig(
                &local_server,
                "kubernetes-admin",
                Credential::Certificate(&admin),
            )?,
        );

        let etcd_files = etcd::etcd_files(cluster, members, this, *initial_state)?;
        files.config(etcd::UNIT_FILE, etcd_files.unit);
        if let Some(initial_cluster) = etcd_files.initial_cluster {
            files.config(etcd::INITIAL_CLUSTER_FILE, initial_cluster);
        }
        if cluster.spec.etcd.backup_interval_minutes > 0 {
            etcd_backup_files(&mut files, cluster, this, discovery.as_ref())?;
        }
        if let Some(discovery) = discovery {
            peer_discovery_files(
                &mut files,
                cluster,
                members,
                this,
                *initial_state,
                discovery,
            )?;
        }
        if boots_named {
            // The AWS add-ons' controllers run only on nodes with the control-plane label.
            files.script(
                CONTROL_PLANE_LABEL_SCRIPT,
                templates::render("node/control-plane-label.sh", ())?,
            );
            files.config(
                "/etc/systemd/system/rafter-control-plane-label.service",
                templates::render(
                    "node/control-plane-label.service",
                    minijinja::context! { script => CONTROL_PLANE_LABEL_SCRIPT },
                )?,
            );
        }
        files.script(
            etcd::ETCDCTL,
            templates::render(
                "node/etcdctl.sh",
                minijinja::context! { install_dir => etcd::INSTALL_DIR, pki_dir => etcd::PKI_DIR },
            )?,
        );
        for component in CONTROL_PLANE_COMPONENTS {
            let manifest = templates::render(
                &format!("node/{component}.yaml"),
                minijinja::context! {
                    cluster => name,
                    name => this.name,
                    ip => local_ip.to_string(),
                    advertise_address => this.ip().map(|ip| ip.to_string()),
                    image => image(component)?,
                    etcd_servers => host_rules::LOCAL_ETCD_SERVER,
                    service_cidr,
                    pod_cidr,
                    external_cloud_provider,
                },
            )?;
            files.restricted(&staged_static_pod_manifest(component), manifest);
        }
        files.config(
            "/etc/kubernetes/audit-policy.yaml",
            templates::render("node/audit-policy.yaml", ())?,
        );
        files.secret(
            "/etc/kubernetes/encryption-config.yaml",
            templates::render(
                "node/encryption-config.yaml",
                minijinja::context! {
                    key_name => "rafter-1",
                    key => secrets.encryption_key.expose(),
                },
            )?,
        );
    } else {
        files.secret(
            "/etc/kubernetes/bootstrap-kubelet.conf",
            kubeconfig(
                &node.api_server,
                "kubelet-bootstrap",
                Credential::Token(secrets.bootstrap_token.bearer().expose()),
            )?,
        );
    }

    let mut addons: Vec<String> = Vec::new();
    let mut removed_addons: Vec<&str> = Vec::new();
    if applies_addons {
        let addon_context = minijinja::context! {
            cluster => name,
            server => node.api_server,
            pod_cidr,
            cluster_dns => cluster_dns.to_string(),
            bootstrap_group => BOOTSTRAP_GROUP,
            token_id => secrets.bootstrap_token.id,
            token_secret => secrets.bootstrap_token.secret.expose(),
            registry => spec.assets.container_registry,
            calico_encapsulation => crate::model::pod_network::calico_encapsulation(spec.provider),
        };
        let mut addon = |file: &str, secret: bool, image_name: Option<&str>| {
            let image = image_name.map(image).transpose()?;
            let cni_plugin_image = image_name
                .filter(|name| *name == "flannel")
                .map(|_| assets::image(cluster, "flannel-cni-plugin"))
                .transpose()?;
            let content = templates::render(
                &format!("addons/{file}"),
                minijinja::context! { image, cni_plugin_image, ..addon_context.clone() },
            )?;
            let path = format!("/etc/kubernetes/addons/{file}");
            if secret {
                files.secret(&path, content);
            } else {
                files.config(&path, content);
            }
            Ok::<(), BootstrapError>(())
        };
        addon("node-rbac.yaml", false, None)?;
        addon("bootstrap-token.yaml", true, None)?;
        addon("coredns.yaml", false, Some("coredns"))?;
        addon("kube-proxy.yaml", false, Some("kube-proxy"))?;
        addons.extend(
            [
                "node-rbac.yaml",
                "bootstrap-token.yaml",
                "coredns.yaml",
                "kube-proxy.yaml",
            ]
            .map(String::from),
        );
        match spec.networking.cni {
            Cni::Calico => {
                addon("calico.yaml", false, None)?;
                // The operator first (its manifest is an asset); calico.yaml once its CRDs exist.
                addons.push("tigera-operator.yaml".to_string());
            }
            Cni::Flannel => {
                addon("flannel.yaml", false, Some("flannel"))?;
                addons.push("flannel.yaml".to_string());
            }
            Cni::Cilium => {}
        }
        if on_aws {
            removed_addons = aws_addons(&mut files, cluster, &addon_context, &mut addons)?;
        }
    }

    let downloads = assets::downloads(
        cluster,
        NodeNeeds {
            control_plane,
            applies_addons,
        },
    )?;
    let architectures: Vec<ArchAssets<'_>> = downloads
        .iter()
        .map(|(arch, list)| ArchAssets {
            name: arch,
            assets: list.iter().map(asset_line).collect(),
        })
        .collect();
    files.script(
        "/usr/local/lib/rafter/bootstrap.sh",
        templates::render(
            "node/bootstrap.sh",
            minijinja::context! {
                cluster => name,
                role,
                node_name,
                kubernetes_version => spec.kubernetes_version,
                architectures,
                static_pods => if control_plane {
                    CONTROL_PLANE_COMPONENTS
                        .iter()
                        .map(|component| (staged_static_pod_manifest(component), static_pod_manifest(component)))
                        .collect()
                } else {
                    Vec::new()
                },
                apply_addons => applies_addons,
                termination_queue => termination_queue(cluster).filter(|_| applies_addons),
                etcd_discovery => boots_named,
                label_control_plane => boots_named,
                etcd_backups => control_plane && spec.etcd.backup_interval_minutes > 0,
                peers_script => etcd::PEERS_SCRIPT,
                volume_script => etcd::VOLUME_SCRIPT,
                kubelet_cert => KUBELET_CLIENT_CERT,
                kubelet_key => KUBELET_CLIENT_KEY,
                addons,
                removed_addons,
                addon_label_key => ADDON_LABEL,
                resolv_conf => host_rules::KUBELET_RESOLV_CONF,
                cni => spec.networking.cni,
                cilium_version => assets::pinned_version("cilium")?,
                pod_cidr => spec.networking.pod_cidr.to_string(),
            },
        )?,
    );
    Ok(files.0)
}

/// What the add-ons step needs to write the node termination handler's queue URL (the
/// account comes from the instance): the URL's prefix and the queue's name, the ConfigMap,
/// the add-on's label and the file the first boot writes the account to. `None` unless the
/// handler is on.
fn termination_queue(cluster: &Cluster) -> Option<minijinja::Value> {
    let spec = &cluster.spec;
    if spec.provider != crate::spec::Provider::Aws
        || !spec.addons().node_termination_handler.enabled
    {
        return None;
    }
    let naming = crate::model::naming::Naming::new(&cluster.metadata.name);
    Some(minijinja::context! {
        url_prefix => crate::model::termination::queue_url_prefix(spec.region.as_deref().unwrap_or_default()),
        name => crate::model::termination::queue_name(&naming),
        config_map => crate::model::termination::QUEUE_CONFIG_MAP,
        addon => crate::spec::NODE_TERMINATION_HANDLER_ADDON,
        identity_file => crate::model::compute::PROVIDER_ID_FILE,
    })
}

/// The AWS add-ons that are on, rendered into `files` and listed in `applied` in the order
/// they are applied; the names of those that are off, for the add-ons step to delete.
fn aws_addons(
    files: &mut Files,
    cluster: &Cluster,
    addon_context: &minijinja::Value,
    applied: &mut Vec<String>,
) -> Result<Vec<&'static str>, BootstrapError> {
    let spec = &cluster.spec;
    let switches = spec.addons();
    let naming = crate::model::naming::Naming::new(&cluster.metadata.name);
    let node_groups: Vec<minijinja::Value> = spec
        .node_groups
        .iter()
        .map(|group| {
            minijinja::context! {
                asg => crate::model::compute::node_group_asg_name(&naming, &group.name),
                min => group.min_size,
                max => group.max_size,
            }
        })
        .collect();
    let sidecars = if switches.ebs_csi_driver.enabled {
        assets::EBS_CSI_IMAGES
            .iter()
            .map(|(key, image_name)| Ok((*key, assets::image(cluster, image_name)?)))
            .collect::<Result<BTreeMap<_, _>, BootstrapError>>()?
    } else {
        BTreeMap::new()
    };
    let mut removed = Vec::new();
    for switch in switches.each() {
        let addon = switch.name;
        if !switch.enabled {
            // Switched off: whatever an earlier bundle applied goes (by its label).
            removed.push(addon);
            continue;
        }
        let file = format!("{addon}.yaml");
        let content = templates::render(
            &format!("addons/{file}"),
            minijinja::context! {
                image => assets::image(cluster, addon)?,
                region => spec.region,
                node_groups,
                sidecars,
                addon_label_key => ADDON_LABEL,
                addon_label => addon,
                controller_replicas => spec.control_plane.count.clamp(1, 2),
                managed_tag => naming.kubernetes_cluster_tag(),
                queue_config_map => crate::model::termination::QUEUE_CONFIG_MAP,
                probes_port => crate::model::termination::PROBES_PORT,
                ..addon_context.clone()
            },
        )?;
        files.config(&format!("/etc/kubernetes/addons/{file}"), content);
        applied.push(file);
    }
    Ok(removed)
}

/// A control-plane member's scheduled backup: the script, and the timer that runs it every
/// `spec.etcd.backupIntervalMinutes`. Through the state store on AWS (`discovery`), else
/// kept on the host for rafter to pull.
fn etcd_backup_files(
    files: &mut Files,
    cluster: &Cluster,
    this: &EtcdMember,
    discovery: Option<&PeerDiscovery>,
) -> Result<(), BootstrapError> {
    let name = &cluster.metadata.name;
    files.script(
        etcd::BACKUP_SCRIPT,
        templates::render(
            "node/etcd-backup.sh",
            minijinja::context! {
                cluster => name,
                member => this.name,
                member_quoted => crate::ssh::shell_quote(&this.name),
                backups_url => discovery.map(|discovery| discovery.backups_url.as_str()),
                aws_helpers => etcd::AWS_HELPERS,
                etcdctl => etcd::ETCDCTL,
                etcdutl => etcd::ETCDUTL,
                spool => etcd::BACKUP_SPOOL,
                keep => etcd::BACKUPS_KEPT_ON_HOST,
            },
        )?,
    );
    files.config(
        "/etc/systemd/system/rafter-etcd-backup.service",
        templates::render(
            "node/etcd-backup.service",
            minijinja::context! { cluster => name, script => etcd::BACKUP_SCRIPT },
        )?,
    );
    files.config(
        "/etc/systemd/system/rafter-etcd-backup.timer",
        templates::render(
            "node/etcd-backup.timer",
            minijinja::context! {
                cluster => name,
                interval => cluster.spec.etcd.backup_interval_minutes,
            },
        )?,
    );
    Ok(())
}

/// What an AWS control-plane member needs at boot: the AWS helpers, the script that mounts
/// its data volume, the peer script and the timer that keeps the members' addresses current.
fn peer_discovery_files(
    files: &mut Files,
    cluster: &Cluster,
    members: &[EtcdMember],
    this: &EtcdMember,
    initial_state: InitialState,
    discovery: &PeerDiscovery,
) -> Result<(), BootstrapError> {
    let name = &cluster.metadata.name;
    files.config(etcd::AWS_HELPERS, templates::render("node/aws.sh", ())?);
    let members: Vec<_> = members
        .iter()
        .map(|member| minijinja::context! { name => member.name, host => member.url_host() })
        .collect();
    files.script(
        etcd::PEERS_SCRIPT,
        templates::render(
            "node/etcd-peers.sh",
            minijinja::context! {
                cluster => name,
                name => this.name,
                host => this.url_host(),
                members,
                peers_url => discovery.peers_url,
                status_url => format!("{}/{}", discovery.status_url, this.name),
                formed_record => crate::state::layout::ETCD_FORMED_RECORD,
                members_record => crate::state::layout::ETCD_MEMBERS_RECORD,
                backup_record => crate::state::layout::ETCD_BACKUP_REQUEST_RECORD,
                backup_script => etcd::BACKUP_SCRIPT,
                restore_url => discovery.restore_url,
                restore_request => crate::state::layout::etcd_restore_request_name(),
                static_pod_dir => STATIC_POD_DIR,
                stopped_manifests => RESTORE_STOPPED_MANIFEST_DIR,
                manifests => CONTROL_PLANE_COMPONENTS.map(|component| format!("{component}.yaml")),
                etcdutl => etcd::ETCDUTL,
                initial_state => match initial_state {
                    InitialState::New => "new",
                    InitialState::Existing | InitialState::Established => "existing",
                },
                aws_helpers => etcd::AWS_HELPERS,
                etcdctl => etcd::ETCDCTL,
                initial_cluster_file => etcd::INITIAL_CLUSTER_FILE,
                data_dir => etcd::DATA_DIR,
            },
        )?,
    );
    files.script(
        etcd::VOLUME_SCRIPT,
        templates::render(
            "node/etcd-volume.sh",
            minijinja::context! {
                cluster => name,
                member => this.name,
                data_dir => etcd::DATA_DIR,
                mount_unit => etcd::DATA_VOLUME_UNIT,
                cluster_tag => crate::model::naming::CLUSTER_TAG,
                member_tag => crate::model::naming::ETCD_MEMBER_TAG,
                aws_helpers => etcd::AWS_HELPERS,
            },
        )?,
    );
    files.config(
        "/etc/systemd/system/rafter-etcd-peers.service",
        templates::render(
            "node/etcd-peers.service",
            minijinja::context! { cluster => name, script => etcd::PEERS_SCRIPT },
        )?,
    );
    files.config(
        "/etc/systemd/system/rafter-etcd-peers.timer",
        templates::render(
            "node/etcd-peers.timer",
            minijinja::context! { cluster => name },
        )?,
    );
    Ok(())
}

fn asset_line(download: &Download) -> AssetLine<'_> {
    AssetLine {
        name: &download.name,
        kind: download.kind,
        dest: &download.dest,
        strip: download.strip,
        url: &download.url,
        sha256: download.sha256.as_deref(),
    }
}

enum Credential<'a> {
    Token(&'a str),
    Certificate(&'a Issued),
    /// Files the node issues itself when it boots ([`KUBELET_CLIENT_CERT`]).
    IssuedAtBoot,
}

fn socket(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }
}

/// The `n`th address of a network (`n = 1`: the first host).
fn nth_address(network: &ipnet::Ipv4Net, n: u32) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::from(
        u32::from(network.network()).saturating_add(n),
    ))
}
