//! Semantic rules of a completed spec. Every rule adds a diagnostic; none stops the others.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::diagnostics::{Diagnostic, did_you_mean};
use super::images::{image_aliases, resolve_image};
use super::source::FieldPath;
use super::types::{
    ANYWHERE, API_VERSION, Addons, Cluster, ClusterSpec, HostRole, KIND, NatGateways, Provider,
    SubnetKind, Topology,
};
use super::versions::{DEFAULT_ETCD_VERSION, parse_etcd_version, parse_kubernetes_version};

/// AWS regions known when this rafter was built; others get a warning, not an error.
pub const KNOWN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

const CONTROL_PLANE_SIZES: [u32; 4] = [1, 3, 5, 7];

fn path(dotted: &str) -> FieldPath {
    FieldPath::parse(dotted)
}

/// Checks a completed cluster; returns errors and warnings (unlocated).
pub fn validate(cluster: &Cluster) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if cluster.api_version != API_VERSION {
        out.push(
            Diagnostic::error(
                path("apiVersion"),
                format!("unsupported apiVersion `{}`", cluster.api_version),
            )
            .with_hint(format!("use `apiVersion: {API_VERSION}`")),
        );
    }
    if cluster.kind != KIND {
        out.push(Diagnostic::error(
            path("kind"),
            format!("kind must be `{KIND}`, got `{}`", cluster.kind),
        ));
    }
    if let Err(problem) = check_dns_name(&cluster.metadata.name) {
        out.push(
            Diagnostic::error(
                path("metadata.name"),
                format!(
                    "`{}` is not a valid DNS name: {problem}",
                    cluster.metadata.name
                ),
            )
            .with_hint("use lowercase letters, digits, '-' and '.', e.g. prod.example.com"),
        );
    }
    let spec = &cluster.spec;
    if let Err(error) = parse_kubernetes_version(&spec.kubernetes_version) {
        out.push(Diagnostic::error(
            path("spec.kubernetesVersion"),
            error.to_string(),
        ));
    }
    match spec.provider {
        Provider::Aws => validate_aws(cluster, &mut out),
        Provider::Ssh => validate_ssh(spec, &mut out),
    }
    validate_addons(cluster, &mut out);
    validate_assets(cluster, &mut out);
    out
}

/// The AWS add-ons run only on AWS, the storage driver only with the cloud controller, and
/// each needs an image pinned for the cluster's Kubernetes version.
fn validate_addons(cluster: &Cluster, out: &mut Vec<Diagnostic>) {
    let spec = &cluster.spec;
    if spec.provider == Provider::Ssh {
        if spec.addons.is_some_and(|addons| addons != Addons::none()) {
            out.push(
                Diagnostic::error(
                    path("spec.addons"),
                    "the AWS add-ons (cloud controller, EBS CSI driver, cluster autoscaler) need provider aws",
                )
                .with_hint("remove spec.addons for bare hosts"),
            );
        }
        return;
    }
    let addons = spec.addons();
    if addons.ebs_csi_driver.enabled && !addons.cloud_controller_manager.enabled {
        out.push(
            Diagnostic::error(
                path("spec.addons.ebsCSIDriver.enabled"),
                "the EBS CSI driver needs the cloud controller manager: its node plugin learns each node's zone and instance from the node object the cloud controller fills in (instances do not let pods reach their metadata service)",
            )
            .with_hint("set spec.addons.cloudControllerManager.enabled: true, or turn the EBS CSI driver off"),
        );
    }
    if parse_kubernetes_version(&spec.kubernetes_version).is_ok() {
        for (component, field) in crate::bootstrap::assets::addon_images(&addons) {
            if let Err(error) = crate::bootstrap::assets::image(cluster, component) {
                out.push(
                    Diagnostic::error(
                        path(&format!("spec.addons.{field}.enabled")),
                        error.to_string(),
                    )
                    .with_hint("pick a Kubernetes version it is pinned for, or turn it off"),
                );
            }
        }
    }
}

/// Mirrors and overrides must be usable, and every file a node downloads must have a digest.
fn validate_assets(cluster: &Cluster, out: &mut Vec<Diagnostic>) {
    let assets = &cluster.spec.assets;
    if let Some(repository) = &assets.file_repository
        && !(repository.starts_with("https://") || repository.starts_with("http://"))
    {
        out.push(
            Diagnostic::error(
                path("spec.assets.fileRepository"),
                format!("`{repository}` is not an http(s) address"),
            )
            .with_hint("e.g. https://mirror.example.com/rafter"),
        );
    }
    if let Some(registry) = &assets.container_registry
        && registry.contains("://")
    {
        out.push(
            Diagnostic::error(
                path("spec.assets.containerRegistry"),
                format!("`{registry}` has a scheme; a registry is a host and path"),
            )
            .with_hint("e.g. registry.example.com:5000/k8s"),
        );
    }
    // The embedded list always parses (its own tests prove it); were it not to, the render
    // step reports that.
    let known = crate::bootstrap::assets::file_names().unwrap_or_default();
    for (index, file) in assets.files.iter().enumerate() {
        let base = path("spec.assets.files").index(index);
        if !known.contains(&file.name.as_str()) {
            let mut diagnostic = Diagnostic::error(
                base.key("name"),
                format!("rafter downloads no file named `{}`", file.name),
            );
            diagnostic = match super::diagnostics::did_you_mean(&file.name, known.iter().copied()) {
                Some(close) => diagnostic.with_hint(format!("did you mean `{close}`?")),
                None => diagnostic.with_hint(format!("files: {}", known.join(", "))),
            };
            out.push(diagnostic);
        }
        for (arch, digest) in [("amd64", &file.sha256.amd64), ("arm64", &file.sha256.arm64)] {
            if let Some(digest) = digest
                && !(digest.len() == 64 && digest.bytes().all(|byte| byte.is_ascii_hexdigit()))
            {
                out.push(
                    Diagnostic::error(
                        base.key("sha256").key(arch),
                        "not a SHA-256 digest (64 hexadecimal characters)",
                    )
                    .with_hint("take it from the release's checksum file, or `sha256sum FILE`"),
                );
            }
        }
    }
    // Only once the overrides are sound: every download has a digest.
    let version_known = parse_kubernetes_version(&cluster.spec.kubernetes_version).is_ok()
        && parse_etcd_version(&cluster.spec.etcd.version).is_ok();
    let overrides_sound = out
        .iter()
        .all(|diagnostic| !diagnostic.path.to_string().starts_with("spec.assets"));
    if version_known && overrides_sound {
        let needs = crate::bootstrap::assets::NodeNeeds {
            control_plane: true,
            applies_addons: true,
        };
        if let Err(error) = crate::bootstrap::assets::downloads(cluster, needs) {
            // The version field that chose the download without a digest.
            let field = match &error {
                crate::bootstrap::assets::AssetError::NoDigest { name, .. } if name == "etcd" => {
                    "spec.etcd.version"
                }
                _ => "spec.kubernetesVersion",
            };
            out.push(Diagnostic::error(path(field), error.to_string()));
        }
    }
}

fn validate_aws(cluster: &Cluster, out: &mut Vec<Diagnostic>) {
    let spec = &cluster.spec;
    let zones = &spec.networking.zones;
    validate_region_and_zones(spec, out);
    let count = spec.control_plane.count;
    if !CONTROL_PLANE_SIZES.contains(&count) {
        out.push(
            Diagnostic::error(
                path("spec.controlPlane.count"),
                format!("control-plane count must be 1, 3, 5 or 7, got {count}"),
            )
            .with_hint("etcd needs an odd number of members; use 3 for high availability"),
        );
    } else if count > 1 && !zones.is_empty() && zones.len() < count.min(3) as usize {
        out.push(
            Diagnostic::warning(
                path("spec.networking.zones"),
                format!("{count} control-plane nodes in {} zone(s): losing one zone can lose etcd quorum", zones.len()),
            )
            .with_hint("list at least 3 zones to spread the control plane one per zone"),
        );
    }
    check_instance_type(
        &spec.control_plane.instance_type,
        path("spec.controlPlane.instanceType"),
        out,
    );
    check_volume(
        spec.control_plane.root_volume_size_gb,
        path("spec.controlPlane.rootVolumeSizeGb"),
        out,
    );
    check_image(
        &spec.control_plane.image,
        path("spec.controlPlane.image"),
        out,
    );
    if let Err(error) = parse_etcd_version(&spec.etcd.version) {
        out.push(
            Diagnostic::error(path("spec.etcd.version"), error.to_string())
                .with_hint(format!("leave it out for etcd {DEFAULT_ETCD_VERSION}")),
        );
    }
    check_backup_interval(spec.etcd.backup_interval_minutes, out);
    check_etcd_volume(&spec.etcd.volume, out);
    validate_node_groups(spec, out);
    validate_networks(spec, out);
    if let Some(bastion) = &spec.bastion {
        check_instance_type(
            &bastion.instance_type,
            path("spec.bastion.instanceType"),
            out,
        );
        check_image(&bastion.image, path("spec.bastion.image"), out);
        if spec.networking.topology == Topology::Public {
            out.push(Diagnostic::warning(
                path("spec.bastion"),
                "a bastion is not needed in the public topology: nodes have public addresses",
            ));
        }
        if spec.ssh_access.allowed_cidrs.is_empty() {
            out.push(
                Diagnostic::warning(
                    path("spec.sshAccess.allowedCidrs"),
                    "no network may reach the bastion over SSH",
                )
                .with_hint("list the networks SSH may come from, e.g. your office or VPN range"),
            );
        }
    }
    if let Some(dns) = &spec.dns {
        if let Err(problem) = check_dns_name(&dns.zone) {
            out.push(Diagnostic::error(
                path("spec.dns.zone"),
                format!("`{}` is not a valid DNS zone: {problem}", dns.zone),
            ));
        } else if !is_within(&cluster.metadata.name, &dns.zone) {
            out.push(
                Diagnostic::error(
                    path("spec.dns.zone"),
                    format!(
                        "cluster name `{}` is not inside DNS zone `{}`",
                        cluster.metadata.name, dns.zone
                    ),
                )
                .with_hint(
                    "records api.<name> must live in the zone: name the cluster <something>.<zone>",
                ),
            );
        }
    }
    if let Some(key) = &spec.ssh_access.public_key {
        check_public_key(key, out);
    }
    if !spec.hosts.is_empty() {
        out.push(
            Diagnostic::error(
                path("spec.hosts"),
                "hosts are only used with `provider: ssh`",
            )
            .with_hint("remove spec.hosts or set spec.provider: ssh"),
        );
    }
}

fn validate_region_and_zones(spec: &ClusterSpec, out: &mut Vec<Diagnostic>) {
    let zones = &spec.networking.zones;
    if zones.is_empty() {
        out.push(
            Diagnostic::error(
                path("spec.networking.zones"),
                "at least one availability zone is required",
            )
            .with_hint(
                "pass --zones eu-west-1a,eu-west-1b,eu-west-1c or list spec.networking.zones",
            ),
        );
    }
    let Some(region) = &spec.region else {
        if zones.is_empty() {
            return; // the region comes from the zones; the error above says what to add
        }
        out.push(
            Diagnostic::error(path("spec.region"), "region is required for provider aws")
                .with_hint("set spec.region, e.g. eu-west-1"),
        );
        return;
    };
    if !is_region_shaped(region) {
        out.push(Diagnostic::error(
            path("spec.region"),
            format!("`{region}` is not an AWS region name (e.g. eu-west-1)"),
        ));
    } else if !KNOWN_REGIONS.contains(&region.as_str()) {
        let diagnostic = Diagnostic::warning(
            path("spec.region"),
            format!("`{region}` is not a region this rafter knows"),
        );
        out.push(match did_you_mean(region, KNOWN_REGIONS.iter().copied()) {
            Some(close) => diagnostic.with_hint(format!("did you mean `{close}`?")),
            None => diagnostic,
        });
    }
    let mut seen = BTreeSet::new();
    for (index, zone) in zones.iter().enumerate() {
        let zone_path = path("spec.networking.zones").index(index);
        let in_region = zone
            .strip_prefix(region.as_str())
            .is_some_and(is_zone_suffix);
        if !in_region {
            out.push(
                Diagnostic::error(
                    zone_path.clone(),
                    format!("zone `{zone}` is not in region `{region}`"),
                )
                .with_hint(format!("zones of {region} look like {region}a, {region}b")),
            );
        }
        if !seen.insert(zone) {
            out.push(Diagnostic::error(
                zone_path,
                format!("zone `{zone}` is listed twice"),
            ));
        }
    }
}

fn validate_node_groups(spec: &ClusterSpec, out: &mut Vec<Diagnostic>) {
    let mut names = BTreeSet::new();
    for (index, group) in spec.node_groups.iter().enumerate() {
        let base = path("spec.nodeGroups").index(index);
        if let Err(problem) = check_dns_label(&group.name) {
            out.push(Diagnostic::error(
                base.key("name"),
                format!("node group name `{}` is not valid: {problem}", group.name),
            ));
        }
        if !names.insert(group.name.as_str()) {
            out.push(
                Diagnostic::error(
                    base.key("name"),
                    format!("node group `{}` is defined twice", group.name),
                )
                .with_hint("node group names must be unique"),
            );
        }
        check_instance_type(&group.instance_type, base.key("instanceType"), out);
        check_volume(group.root_volume_size_gb, base.key("rootVolumeSizeGb"), out);
        check_image(&group.image, base.key("image"), out);
        if group.min_size > group.max_size {
            out.push(Diagnostic::error(
                base.key("minSize"),
                format!(
                    "minSize {} is larger than maxSize {}",
                    group.min_size, group.max_size
                ),
            ));
        }
        if group.max_size == 0 {
            out.push(Diagnostic::warning(
                base.key("maxSize"),
                "maxSize 0: this node group will never have nodes",
            ));
        }
        for (zone_index, zone) in group.zones.iter().enumerate() {
            if !spec.networking.zones.contains(zone) {
                out.push(
                    Diagnostic::error(
                        base.key("zones").index(zone_index),
                        format!("zone `{zone}` is not one of spec.networking.zones"),
                    )
                    .with_hint("add it to spec.networking.zones or remove it here"),
                );
            }
        }
    }
}

fn validate_networks(spec: &ClusterSpec, out: &mut Vec<Diagnostic>) {
    let networking = &spec.networking;
    let vpc = networking.vpc_cidr;
    let vpc_prefix = vpc.0.prefix_len();
    if !(16..=22).contains(&vpc_prefix) {
        out.push(
            Diagnostic::error(
                path("spec.networking.vpcCidr"),
                format!("VPC CIDR {vpc} must have a prefix between /16 and /22"),
            )
            .with_hint("AWS allows /16 at most; rafter needs room for a subnet pair per zone"),
        );
    }
    let named = [
        ("spec.networking.vpcCidr", vpc),
        ("spec.networking.podCidr", networking.pod_cidr),
        ("spec.networking.serviceCidr", networking.service_cidr),
    ];
    for (position, (name, cidr)) in named.iter().enumerate() {
        for (other_name, other) in &named[position + 1..] {
            if cidr.overlaps(other) {
                out.push(
                    Diagnostic::error(
                        path(other_name),
                        format!("{other} overlaps {cidr} ({name})"),
                    )
                    .related_to(path(name))
                    .with_hint("the VPC, pod and service ranges must not overlap"),
                );
            }
        }
    }
    if networking.service_cidr.0.prefix_len() < 12 {
        out.push(Diagnostic::error(
            path("spec.networking.serviceCidr"),
            "service CIDR is too large: Kubernetes allows at most a /12",
        ));
    }
    let pod_prefix = networking.pod_cidr.0.prefix_len();
    if pod_prefix > 20 {
        out.push(
            Diagnostic::error(
                path("spec.networking.podCidr"),
                format!("pod CIDR /{pod_prefix} is too small: each node takes a /24"),
            )
            .with_hint("use /20 or larger, e.g. 100.96.0.0/11"),
        );
    } else {
        let capacity = 1u64 << (24 - pod_prefix);
        // A control-plane count that is itself wrong is reported on its own field, not
        // blamed on the pod range as well.
        let control_plane = if CONTROL_PLANE_SIZES.contains(&spec.control_plane.count) {
            u64::from(spec.control_plane.count)
        } else {
            0
        };
        let most_nodes: u64 = spec
            .node_groups
            .iter()
            .map(|group| u64::from(group.max_size))
            .sum::<u64>()
            + control_plane;
        if most_nodes > capacity {
            out.push(Diagnostic::error(
                path("spec.networking.podCidr"),
                format!("pod CIDR {} holds {capacity} nodes (a /24 each) but node groups may grow to {most_nodes}", networking.pod_cidr),
            ));
        }
    }
    validate_subnets(spec, out);
    if networking.topology == Topology::Private
        && networking.nat_gateways == Some(NatGateways::None)
    {
        out.push(
            Diagnostic::error(path("spec.networking.natGateways"), "the private topology needs NAT gateways: nodes in private subnets have no other way out")
                .with_hint("use natGateways: perZone (or single to save cost), or topology: public"),
        );
    }
    if networking.topology == Topology::Public
        && matches!(
            networking.nat_gateways,
            Some(NatGateways::PerZone | NatGateways::Single)
        )
    {
        out.push(Diagnostic::warning(
            path("spec.networking.natGateways"),
            "NAT gateways are not used in the public topology: none will be created",
        ));
    }
    if spec.api_server.allowed_cidrs.is_empty() {
        out.push(Diagnostic::warning(
            path("spec.apiServer.allowedCidrs"),
            "no network may reach the API server through its load balancer",
        ));
    }
    if spec.ssh_access.allowed_cidrs.contains(&ANYWHERE) {
        out.push(
            Diagnostic::warning(
                path("spec.sshAccess.allowedCidrs"),
                "SSH is open to the whole internet",
            )
            .with_hint("limit it to your office or VPN networks"),
        );
    }
}

fn validate_subnets(spec: &ClusterSpec, out: &mut Vec<Diagnostic>) {
    let networking = &spec.networking;
    let subnets = &networking.subnets;
    for (index, subnet) in subnets.iter().enumerate() {
        let base = path("spec.networking.subnets").index(index);
        if !networking.vpc_cidr.contains(&subnet.cidr) {
            out.push(Diagnostic::error(
                base.key("cidr"),
                format!(
                    "subnet {} is not inside the VPC {}",
                    subnet.cidr, networking.vpc_cidr
                ),
            ));
        }
        if subnet.cidr.0.prefix_len() > 28 {
            out.push(Diagnostic::error(
                base.key("cidr"),
                format!(
                    "subnet {} is smaller than /28, the smallest AWS allows",
                    subnet.cidr
                ),
            ));
        }
        if !networking.zones.contains(&subnet.zone) {
            out.push(Diagnostic::error(
                base.key("zone"),
                format!("zone `{}` is not one of spec.networking.zones", subnet.zone),
            ));
        }
        for (other_index, other) in subnets.iter().enumerate().skip(index + 1) {
            if subnet.cidr.overlaps(&other.cidr) {
                out.push(Diagnostic::error(
                    path("spec.networking.subnets")
                        .index(other_index)
                        .key("cidr"),
                    format!(
                        "subnet {} overlaps subnet {} ({} {})",
                        other.cidr, subnet.cidr, subnet.zone, subnet.kind
                    ),
                ));
            }
            if subnet.zone == other.zone && subnet.kind == other.kind {
                out.push(Diagnostic::error(
                    path("spec.networking.subnets").index(other_index),
                    format!("a second {} subnet for zone {}", other.kind, other.zone),
                ));
            }
        }
    }
    if networking.topology == Topology::Public
        && subnets
            .iter()
            .any(|subnet| subnet.kind == SubnetKind::Private)
    {
        out.push(Diagnostic::warning(
            path("spec.networking.subnets"),
            "private subnets are unused in the public topology",
        ));
    }
}

fn validate_ssh(spec: &ClusterSpec, out: &mut Vec<Diagnostic>) {
    if spec.hosts.is_empty() {
        out.push(
            Diagnostic::error(path("spec.hosts"), "provider ssh needs a list of hosts")
                .with_hint("list hosts with name, address and role"),
        );
    }
    let control_planes = spec
        .hosts
        .iter()
        .filter(|host| host.role == HostRole::ControlPlane)
        .count();
    if !spec.hosts.is_empty() && !CONTROL_PLANE_SIZES.contains(&(control_planes as u32)) {
        out.push(
            Diagnostic::error(
                path("spec.hosts"),
                format!("{control_planes} control-plane hosts: need 1, 3, 5 or 7"),
            )
            .with_hint("etcd needs an odd number of members"),
        );
    }
    if control_planes > 1 && spec.api_server.endpoint.is_none() {
        out.push(
            Diagnostic::error(
                path("spec.apiServer.endpoint"),
                "several control-plane hosts need a shared API endpoint",
            )
            .with_hint(
                "set spec.apiServer.endpoint to a load balancer or DNS name in front of them",
            ),
        );
    }
    let mut names = BTreeSet::new();
    let mut addresses = BTreeSet::new();
    for (index, host) in spec.hosts.iter().enumerate() {
        let base = path("spec.hosts").index(index);
        if let Err(problem) = check_dns_label(&host.name) {
            out.push(Diagnostic::error(
                base.key("name"),
                format!("host name `{}` is not valid: {problem}", host.name),
            ));
        }
        if !names.insert(host.name.as_str()) {
            out.push(Diagnostic::error(
                base.key("name"),
                format!("host name `{}` is used twice", host.name),
            ));
        }
        if host.address.parse::<IpAddr>().is_err() && check_dns_name(&host.address).is_err() {
            out.push(Diagnostic::error(
                base.key("address"),
                format!(
                    "`{}` is neither an IP address nor a host name",
                    host.address
                ),
            ));
        }
        if !addresses.insert(host.address.as_str()) {
            out.push(Diagnostic::error(
                base.key("address"),
                format!("address `{}` is used by two hosts", host.address),
            ));
        }
    }
    if !spec.node_groups.is_empty() {
        out.push(Diagnostic::warning(
            path("spec.nodeGroups"),
            "node groups are ignored with provider ssh: workers are listed in spec.hosts",
        ));
    }
}

fn is_region_shaped(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
}

/// `a` (a regular zone) or `-lax-1a` (a local zone): what follows the region in a zone name.
fn is_zone_suffix(rest: &str) -> bool {
    let regular = rest.len() == 1 && rest.bytes().all(|b| b.is_ascii_lowercase());
    let local = rest.starts_with('-')
        && rest.ends_with(|c: char| c.is_ascii_lowercase())
        && rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    regular || local
}

fn is_within(name: &str, zone: &str) -> bool {
    let zone = zone.trim_end_matches('.');
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// Checks `family.size` shapes such as `t3.medium`, `m7g.2xlarge`, `c6in.metal`.
fn check_instance_type(instance_type: &str, field: FieldPath, out: &mut Vec<Diagnostic>) {
    let valid = instance_type.split_once('.').is_some_and(|(family, size)| {
        family.len() >= 2
            && family.starts_with(|c: char| c.is_ascii_lowercase())
            && family
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && family.bytes().any(|b| b.is_ascii_digit())
            && !size.is_empty()
            && size
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    if !valid {
        out.push(
            Diagnostic::error(
                field,
                format!("`{instance_type}` is not an EC2 instance type"),
            )
            .with_hint("instance types look like t3.medium or m7g.2xlarge"),
        );
    }
}

fn check_image(image: &str, field: FieldPath, out: &mut Vec<Diagnostic>) {
    if resolve_image(image).is_none() {
        let known: Vec<&str> = image_aliases().collect();
        let diagnostic = Diagnostic::error(field, format!("unknown image `{image}`"));
        out.push(match did_you_mean(image, known.iter().copied()) {
            Some(close) => diagnostic.with_hint(format!("did you mean `{close}`?")),
            None => diagnostic.with_hint(format!(
                "use an AMI id (ami-…) or one of: {}",
                known.join(", ")
            )),
        });
    }
}

fn check_volume(size_gb: u32, field: FieldPath, out: &mut Vec<Diagnostic>) {
    if !(8..=16384).contains(&size_gb) {
        out.push(Diagnostic::error(
            field,
            format!("root volume of {size_gb} GiB: must be between 8 and 16384"),
        ));
    }
}

/// Scheduled backups: off (0), or from every 5 minutes to once a day.
fn check_backup_interval(minutes: u32, out: &mut Vec<Diagnostic>) {
    if minutes != 0 && !(5..=1440).contains(&minutes) {
        out.push(
            Diagnostic::error(
                path("spec.etcd.backupIntervalMinutes"),
                format!(
                    "a backup every {minutes} minute(s): must be between 5 and 1440, or 0 for none"
                ),
            )
            .with_hint("15 (the default) is what kops' etcd-manager does"),
        );
    }
}

/// A member's etcd volume, within what EBS accepts for its type (EBS documents the ranges:
/// gp3 1-16384 GiB, 3000-16000 IOPS, 125-1000 MiB/s; io1/io2 need their IOPS given).
fn check_etcd_volume(volume: &crate::spec::EtcdVolume, out: &mut Vec<Diagnostic>) {
    let field = |name: &str| path(&format!("spec.etcd.volume.{name}"));
    if !(1..=16384).contains(&volume.size_gib) {
        out.push(
            Diagnostic::error(
                field("sizeGiB"),
                format!(
                    "an etcd volume of {} GiB: must be between 1 and 16384",
                    volume.size_gib
                ),
            )
            .with_hint("20 (the default) is what kops gives etcd"),
        );
    }
    let iops_range = match volume.volume_type.as_str() {
        "gp3" => Some(3000..=16000),
        "io1" => Some(100..=64000),
        "io2" => Some(100..=256000),
        "gp2" => None,
        other => {
            out.push(
                Diagnostic::error(field("type"), format!("unknown EBS volume type `{other}`"))
                    .with_hint("use gp3 (the default), gp2, io1 or io2"),
            );
            return;
        }
    };
    match (&iops_range, volume.iops) {
        (Some(range), Some(iops)) if !range.contains(&iops) => out.push(Diagnostic::error(
            field("iops"),
            format!(
                "{iops} IOPS on {}: must be between {} and {}",
                volume.volume_type,
                range.start(),
                range.end()
            ),
        )),
        (None, Some(_)) => out.push(
            Diagnostic::error(field("iops"), "gp2 volumes take no provisioned IOPS")
                .with_hint("leave iops out, or use type gp3"),
        ),
        (Some(_), None) if volume.volume_type.starts_with("io") => out.push(
            Diagnostic::error(
                field("iops"),
                format!("{} volumes need their IOPS given", volume.volume_type),
            )
            .with_hint("add iops, e.g. 3000"),
        ),
        _ => {}
    }
    match volume.throughput_mibps {
        Some(_) if volume.volume_type != "gp3" => out.push(
            Diagnostic::error(
                field("throughputMiBps"),
                "only gp3 volumes take a throughput",
            )
            .with_hint("leave throughputMiBps out, or use type gp3"),
        ),
        Some(throughput) if !(125..=1000).contains(&throughput) => out.push(Diagnostic::error(
            field("throughputMiBps"),
            format!("{throughput} MiB/s: must be between 125 and 1000"),
        )),
        _ => {}
    }
}

fn check_public_key(key: &str, out: &mut Vec<Diagnostic>) {
    let field = path("spec.sshAccess.publicKey");
    if key.contains("PRIVATE KEY") {
        out.push(
            Diagnostic::error(field, "this is a private key; rafter needs the public key")
                .with_hint("use the contents of the .pub file"),
        );
        return;
    }
    let mut parts = key.split_whitespace();
    let algorithm = parts.next().unwrap_or_default();
    let body_ok = parts.next().is_some_and(|body| {
        body.len() > 16
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    });
    let known = [
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
    ];
    if !known.contains(&algorithm) || !body_ok {
        out.push(
            Diagnostic::error(field, "not an OpenSSH public key")
                .with_hint("expected a line such as `ssh-ed25519 AAAAC3Nza… user@host`"),
        );
    }
}

/// RFC 1123 subdomain, as Kubernetes and Route53 use it.
pub fn check_dns_name(name: &str) -> Result<(), String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "it is {} characters long (at most 253)",
            name.len()
        ));
    }
    name.split('.').try_for_each(check_dns_label)
}

/// RFC 1123 label: lowercase letters, digits and '-', 1 to 63 long, no '-' at either end.
pub fn check_dns_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("it has an empty label".into());
    }
    if label.len() > 63 {
        return Err(format!("label `{label}` is longer than 63 characters"));
    }
    if let Some(bad) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "`{bad}` is not allowed (lowercase letters, digits and '-' only)"
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!("label `{label}` starts or ends with '-'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(check_dns_name("prod.example.com").is_ok());
        assert!(check_dns_name("Prod.example.com").is_err());
        assert!(check_dns_name("a..b").is_err());
        assert!(check_dns_name("-a.b").is_err());
        assert!(check_dns_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn instance_types() {
        let mut out = Vec::new();
        for good in [
            "t3.medium",
            "m7g.2xlarge",
            "c6in.metal",
            "u-6tb1.metal",
            "inf2.xlarge",
        ] {
            check_instance_type(good, FieldPath::root(), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        for bad in ["t3", "medium", "T3.medium", "t3.", ".large", "tt.large"] {
            check_instance_type(bad, FieldPath::root(), &mut out);
        }
        assert_eq!(out.len(), 6);
    }

    #[test]
    fn region_shapes() {
        assert!(is_region_shaped("eu-west-1"));
        assert!(is_region_shaped("us-gov-west-1"));
        assert!(!is_region_shaped("euwest1"));
        assert!(!is_region_shaped("eu-west-1a"));
    }
}
