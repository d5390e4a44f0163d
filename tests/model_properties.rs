//! Properties every AWS model must have, checked over the profiles and variants of them.

mod common;

use std::collections::BTreeMap;

use rafter::graph::resources::{EgressRule, IngressRule, Peer, Protocol, Resource, RouteTarget};
use rafter::graph::{ResourceGraph, ResourceKind, Value};
use rafter::model::build_graph;
use rafter::model::pod_network::cni_ports;
use rafter::plan::{Action, RecordedResource};
use rafter::spec::{self, Cluster, Cni, SpecFlags, SpecSources};

/// The profiles plus variants that exercise other branches of the model.
fn clusters() -> Vec<(String, Cluster)> {
    let mut out: Vec<(String, Cluster)> = common::AWS_PROFILES
        .iter()
        .map(|profile| (profile.to_string(), common::example_cluster(profile)))
        .collect();
    let variants: [(&str, &str); 5] = [
        (
            "single-nat",
            "spec:\n  networking:\n    natGateways: single\n",
        ),
        (
            "internal-lb",
            "spec:\n  apiServer:\n    loadBalancer: internal\n    allowedCidrs: [10.20.0.0/16]\n",
        ),
        (
            "five-control-plane",
            "spec:\n  controlPlane:\n    count: 5\n  sshAccess:\n    allowedCidrs: [203.0.113.0/24]\n",
        ),
        (
            "cilium-arm",
            "spec:\n  networking:\n    cni: cilium\n  nodeGroups:\n    - { name: arm, instanceType: m7g.large, image: ubuntu-24.04 }\n    - { name: x86, instanceType: c7i.large, zones: [eu-west-1b] }\n",
        ),
        (
            "public-ssh",
            "spec:\n  networking:\n    topology: public\n  bastion: null\n  sshAccess:\n    allowedCidrs: [198.51.100.7/32]\n",
        ),
    ];
    let scratch = tempfile::tempdir().unwrap();
    for (name, overlay) in variants {
        let file = scratch.path().join(format!("{name}.yaml"));
        std::fs::write(&file, overlay).unwrap();
        let sources = SpecSources {
            profile: Some("ha-aws".into()),
            file: Some(file),
            flags: SpecFlags {
                name: Some(format!("{name}.example.com")),
                zones: Some(vec![
                    "eu-west-1a".into(),
                    "eu-west-1b".into(),
                    "eu-west-1c".into(),
                ]),
                ..SpecFlags::default()
            },
        };
        let cluster = spec::load(&sources, Some("s3://bucket/clusters"))
            .unwrap_or_else(|error| panic!("variant {name}: {error}"))
            .cluster;
        out.push((name.to_string(), cluster));
    }
    out
}

fn graphs() -> Vec<(String, Cluster, ResourceGraph)> {
    clusters()
        .into_iter()
        .map(|(name, cluster)| {
            let graph = build_graph(&cluster).unwrap();
            (name, cluster, graph)
        })
        .collect()
}

fn group_name(graph: &ResourceGraph, address: &rafter::graph::Address) -> String {
    match &graph.get(address).unwrap().resource {
        Resource::SecurityGroup(group) => group.name.split('.').next().unwrap().to_string(),
        other => panic!("not a security group: {other:?}"),
    }
}

#[test]
fn only_the_api_and_ssh_are_reachable_from_outside() {
    for (name, cluster, graph) in graphs() {
        for node in graph.nodes() {
            let Resource::SecurityGroupIngressRule(IngressRule(rule)) = &node.resource else {
                continue;
            };
            let Peer::Cidr(cidr) = &rule.peer else {
                continue;
            };
            let group = group_name(&graph, rule.group.address());
            let allowed = match (group.as_str(), rule.ports) {
                ("api-lb", Some((443, 443))) => {
                    cluster.spec.api_server.allowed_cidrs.contains(cidr)
                }
                (_, Some((22, 22))) => cluster.spec.ssh_access.allowed_cidrs.contains(cidr),
                _ => false,
            };
            assert!(
                allowed,
                "{name}: {} lets {cidr} reach group {group} on {:?}",
                node.address, rule.ports
            );
        }
    }
}

#[test]
fn etcd_and_kubelet_ports_are_never_open_to_a_network() {
    for (name, _, graph) in graphs() {
        for node in graph.nodes() {
            let Resource::SecurityGroupIngressRule(IngressRule(rule)) = &node.resource else {
                continue;
            };
            if let (Peer::Cidr(_), Some((from, to))) = (&rule.peer, rule.ports) {
                for port in [2379, 2380, 10250] {
                    assert!(
                        !(from..=to).contains(&port),
                        "{name}: {} opens {port} to a CIDR",
                        node.address
                    );
                }
            }
            if let (Peer::Cidr(_), None) = (&rule.peer, rule.ports) {
                panic!("{name}: {} opens every port to a CIDR", node.address);
            }
        }
    }
}

#[test]
fn private_subnets_leave_through_a_nat_in_their_own_zone() {
    for (name, cluster, graph) in graphs() {
        if cluster.spec.networking.topology != spec::Topology::Private {
            continue;
        }
        let per_zone = cluster.spec.networking.nat_gateways == Some(spec::NatGateways::PerZone);
        let mut checked = 0;
        for node in graph.nodes() {
            let Resource::Route(route) = &node.resource else {
                continue;
            };
            let RouteTarget::NatGateway(nat) = &route.target else {
                continue;
            };
            let Resource::NatGateway(nat_gateway) = &graph.get(nat.address()).unwrap().resource
            else {
                unreachable!()
            };
            let Resource::Subnet(nat_subnet) =
                &graph.get(nat_gateway.subnet.address()).unwrap().resource
            else {
                unreachable!()
            };
            let table_zone = route
                .route_table
                .address()
                .name
                .trim_start_matches("private-")
                .to_string();
            if per_zone {
                assert_eq!(
                    nat_subnet.zone, table_zone,
                    "{name}: {} routes through another zone's NAT",
                    node.address
                );
            }
            assert!(
                !nat_subnet.map_public_ip_on_launch
                    || cluster.spec.networking.topology == spec::Topology::Public
            );
            checked += 1;
        }
        assert_eq!(
            checked,
            cluster.spec.networking.zones.len(),
            "{name}: every private subnet needs a default route"
        );
    }
}

#[test]
fn every_taggable_resource_carries_ownership_tags() {
    for (name, cluster, graph) in graphs() {
        let owned_key = format!("kubernetes.io/cluster/{}", cluster.metadata.name);
        for node in graph.nodes() {
            let attributes = node.resource.attributes();
            let tags: Option<BTreeMap<String, String>> = match node.address.kind {
                ResourceKind::AutoscalingGroup => {
                    let Some(Value::Blocks(blocks)) = attributes
                        .iter()
                        .find(|field| field.name == "tag")
                        .map(|field| &field.value)
                    else {
                        panic!("{name}: {} has no tag blocks", node.address)
                    };
                    Some(
                        blocks
                            .iter()
                            .map(|block| {
                                let get = |key: &str| match &block
                                    .iter()
                                    .find(|field| field.name == key)
                                    .unwrap()
                                    .value
                                {
                                    Value::Str(text) => text.clone(),
                                    other => panic!("{other:?}"),
                                };
                                (get("key"), get("value"))
                            })
                            .collect(),
                    )
                }
                _ => attributes
                    .iter()
                    .find(|field| field.name == "tags")
                    .map(|field| match &field.value {
                        Value::Map(map) => map.clone(),
                        other => panic!("{other:?}"),
                    }),
            };
            let untaggable = matches!(
                node.address.kind,
                ResourceKind::Route
                    | ResourceKind::RouteTableAssociation
                    | ResourceKind::IamRolePolicy
                    | ResourceKind::DnsRecord
                    | ResourceKind::Image
                    | ResourceKind::HostedZone
                    | ResourceKind::SqsQueuePolicy
                    | ResourceKind::EventTarget
                    | ResourceKind::LifecycleHook
            );
            match tags {
                Some(tags) => {
                    assert_eq!(
                        tags.get(&owned_key).map(String::as_str),
                        Some("owned"),
                        "{name}: {}",
                        node.address
                    );
                    assert_eq!(
                        tags.get("rafter.dev/cluster"),
                        Some(&cluster.metadata.name),
                        "{name}: {}",
                        node.address
                    );
                    assert!(
                        tags.contains_key("rafter.dev/role"),
                        "{name}: {}",
                        node.address
                    );
                }
                None => assert!(untaggable, "{name}: {} has no tags", node.address),
            }
        }
    }
}

#[test]
fn names_fit_aws_limits_and_instances_are_hardened() {
    for (name, _, graph) in graphs() {
        for node in graph.nodes() {
            match &node.resource {
                Resource::LoadBalancer(lb) => assert!(lb.name.len() <= 32, "{name}: {}", lb.name),
                Resource::TargetGroup(tg) => assert!(tg.name.len() <= 32, "{name}: {}", tg.name),
                Resource::IamRole(role) => assert!(role.name.len() <= 64, "{name}: {}", role.name),
                Resource::LaunchTemplate(template) => {
                    let attributes = node.resource.attributes();
                    let rendered = format!("{attributes:?}");
                    assert!(
                        rendered.contains("http_tokens") && rendered.contains("Str(\"required\")"),
                        "{name}: IMDSv2 not required"
                    );
                    assert!(
                        rendered.contains("name: \"encrypted\", value: Bool(true)"),
                        "{name}: root volume not encrypted"
                    );
                    assert!(
                        template.user_data.content.len() < 16 * 1024,
                        "{name}: user-data over 16 KiB"
                    );
                }
                _ => {}
            }
        }
    }
}

#[test]
fn subnets_fit_the_vpc_without_overlap_and_graphs_are_deterministic() {
    for (name, cluster, graph) in graphs() {
        let subnets: Vec<_> = graph
            .nodes()
            .iter()
            .filter_map(|node| match &node.resource {
                Resource::Subnet(subnet) => Some(subnet.cidr),
                _ => None,
            })
            .collect();
        for (position, subnet) in subnets.iter().enumerate() {
            assert!(
                cluster.spec.networking.vpc_cidr.contains(subnet),
                "{name}: {subnet}"
            );
            for other in &subnets[position + 1..] {
                assert!(!subnet.overlaps(other), "{name}: {subnet} overlaps {other}");
            }
        }
        assert_eq!(
            build_graph(&cluster).unwrap(),
            graph,
            "{name}: the model is not deterministic"
        );
    }
}

#[test]
fn control_plane_spreads_one_per_zone_and_registers_with_the_api() {
    let (_, graph) = common::example_graph("ha-aws");
    let groups: Vec<_> = graph
        .nodes()
        .iter()
        .filter_map(|node| match &node.resource {
            Resource::AutoscalingGroup(group)
                if node.address.name.starts_with("control-plane-") =>
            {
                Some(group)
            }
            _ => None,
        })
        .collect();
    assert_eq!(groups.len(), 3);
    for group in groups {
        assert_eq!((group.min_size, group.max_size), (1, 1));
        assert_eq!(group.subnets.len(), 1);
        assert_eq!(
            group.target_groups.len(),
            2,
            "the public load balancer's and the internal one's the nodes use"
        );
    }
    let egress: Vec<_> = graph
        .nodes()
        .iter()
        .filter(|node| {
            matches!(
                node.resource,
                Resource::SecurityGroupEgressRule(EgressRule(_))
            )
        })
        .collect();
    let security_groups = graph
        .nodes()
        .iter()
        .filter(|node| matches!(node.resource, Resource::SecurityGroup(_)))
        .count();
    assert_eq!(egress.len(), security_groups, "one egress rule per group");
}

/// Every control-plane member has exactly one data volume, in its own subnet's zone, tagged
/// with its member and the etcd role, encrypted, made before its group (and deleted after it);
/// nothing else has one.
#[test]
fn each_control_plane_member_has_one_encrypted_volume_in_its_zone() {
    for (label, cluster, graph) in graphs() {
        let zone_of_subnet = |address: &rafter::graph::Address| {
            graph.nodes().iter().find_map(|node| match &node.resource {
                Resource::Subnet(subnet) if &node.address == address => Some(subnet.zone.clone()),
                _ => None,
            })
        };
        let volumes: BTreeMap<String, &rafter::graph::resources::EbsVolume> = graph
            .nodes()
            .iter()
            .filter_map(|node| match &node.resource {
                Resource::EbsVolume(volume) => Some((node.address.to_string(), volume)),
                _ => None,
            })
            .collect();
        let mut used = Vec::new();
        for node in graph.nodes() {
            let Resource::AutoscalingGroup(group) = &node.resource else {
                continue;
            };
            let is_member = node.address.name.starts_with("control-plane-");
            assert_eq!(
                group.data_volume.is_some(),
                is_member,
                "{label}: {}",
                node.address
            );
            let Some(volume_ref) = &group.data_volume else {
                continue;
            };
            let member = node.address.name.trim_start_matches("control-plane-");
            let volume = volumes[&volume_ref.address().to_string()];
            let zone = zone_of_subnet(group.subnets[0].address()).unwrap();
            assert_eq!(volume.zone, zone, "{label}: {}", node.address);
            assert_eq!(
                volume
                    .tags
                    .get("rafter.dev/etcd-member")
                    .map(String::as_str),
                Some(member),
                "{label}"
            );
            assert_eq!(
                volume.tags.get("rafter.dev/role").map(String::as_str),
                Some("etcd")
            );
            assert!(
                node.dependencies().contains(volume_ref.address()),
                "{label}: {} is made after its volume",
                node.address
            );
            used.push(volume_ref.address().to_string());
        }
        used.sort();
        assert_eq!(
            used,
            volumes.keys().cloned().collect::<Vec<_>>(),
            "{label}: one volume per member, none spare"
        );
        assert_eq!(
            used.len(),
            cluster.spec.control_plane.count as usize,
            "{label}"
        );
        let encrypted = graph.nodes().iter().all(|node| {
            node.address.kind != ResourceKind::EbsVolume
                || node
                    .resource
                    .attributes()
                    .iter()
                    .any(|field| field.name == "encrypted" && field.value == Value::Bool(true))
        });
        assert!(encrypted, "{label}");
    }
}

/// Ingress rules of the group named `target` (`control-plane`) from the group named `source`,
/// as (protocol, ports).
fn ingress_between(
    graph: &ResourceGraph,
    target: &str,
    source: &str,
) -> Vec<(Protocol, Option<(u16, u16)>)> {
    graph
        .nodes()
        .iter()
        .filter_map(|node| match &node.resource {
            Resource::SecurityGroupIngressRule(IngressRule(rule)) => Some(rule),
            _ => None,
        })
        .filter(|rule| group_name(graph, rule.group.address()) == target)
        .filter(|rule| matches!(&rule.peer, Peer::Group(peer) if group_name(graph, peer.address()) == source))
        .map(|rule| (rule.protocol, rule.ports))
        .collect()
}

#[test]
fn every_port_the_cni_needs_is_open_between_all_nodes_and_nothing_else_new() {
    for (name, cluster) in clusters() {
        for cni in [Cni::Calico, Cni::Cilium, Cni::Flannel] {
            let mut cluster = cluster.clone();
            cluster.spec.networking.cni = cni;
            let graph = build_graph(&cluster).unwrap();
            // Each group to itself and the control plane to the nodes: everything.
            for (target, source) in [
                ("control-plane", "control-plane"),
                ("nodes", "nodes"),
                ("nodes", "control-plane"),
            ] {
                assert!(
                    ingress_between(&graph, target, source).contains(&(Protocol::All, None)),
                    "{name}/{cni:?}: {source} -> {target} is not fully open"
                );
            }
            // The nodes to the control plane: the API, the kubelet, and exactly the CNI's ports.
            let mut wanted: Vec<(Protocol, Option<(u16, u16)>)> = vec![
                (Protocol::Tcp, Some((6443, 6443))),
                (Protocol::Tcp, Some((10250, 10250))),
            ];
            wanted.extend(
                cni_ports(cni)
                    .iter()
                    .map(|port| (port.protocol, port.ports)),
            );
            let mut open = ingress_between(&graph, "control-plane", "nodes");
            open.sort_by_key(|rule| format!("{rule:?}"));
            wanted.sort_by_key(|rule| format!("{rule:?}"));
            assert_eq!(open, wanted, "{name}/{cni:?}: nodes -> control plane");
        }
    }
}

#[test]
fn the_cni_ports_are_the_documented_ones() {
    let ports = |cni| -> Vec<(Protocol, Option<(u16, u16)>)> {
        cni_ports(cni)
            .iter()
            .map(|port| (port.protocol, port.ports))
            .collect()
    };
    // Calico: VXLAN and Typha; no BGP, no IP-in-IP (the pool encapsulates with VXLAN).
    assert_eq!(
        ports(Cni::Calico),
        [
            (Protocol::Udp, Some((4789, 4789))),
            (Protocol::Tcp, Some((5473, 5473)))
        ]
    );
    assert_eq!(
        ports(Cni::Cilium),
        [
            (Protocol::Udp, Some((8472, 8472))),
            (Protocol::Tcp, Some((4240, 4240))),
            (Protocol::Icmp, Some((8, 0)))
        ]
    );
    assert_eq!(ports(Cni::Flannel), [(Protocol::Udp, Some((8472, 8472)))]);
    for cni in [Cni::Calico, Cni::Cilium, Cni::Flannel] {
        for port in cni_ports(cni) {
            assert!(port.source.starts_with("https://"), "{port:?}");
        }
    }
}

/// The load balancer nodes reach the API through: what `api.internal` names, else the internal
/// one nodes use, else the clients' own.
fn node_load_balancer(graph: &ResourceGraph) -> &rafter::graph::Address {
    let record = graph.nodes().iter().find_map(|node| match &node.resource {
        Resource::DnsRecord(record) if record.name.starts_with("api.internal.") => {
            Some(record.load_balancer.address())
        }
        _ => None,
    });
    let fallback = graph
        .nodes()
        .iter()
        .filter(|node| node.address.kind == ResourceKind::LoadBalancer)
        .map(|node| &node.address)
        .min_by_key(|address| address.name != "api-internal")
        .unwrap();
    if let Some(record) = record {
        assert_eq!(
            record, fallback,
            "api.internal names the nodes' load balancer"
        );
    }
    fallback
}

#[test]
fn with_allowed_cidrs_narrowed_every_kubelet_reaches_the_api_inside_the_vpc() {
    for (name, mut cluster) in clusters() {
        cluster.spec.api_server.allowed_cidrs = vec!["203.0.113.0/24".parse().unwrap()];
        let graph = build_graph(&cluster).unwrap();
        let address = node_load_balancer(&graph);
        let Resource::LoadBalancer(balancer) = &graph.get(address).unwrap().resource else {
            unreachable!()
        };
        assert!(
            balancer.internal,
            "{name}: nodes reach the API through the internet"
        );
        for subnet in &balancer.subnets {
            assert!(
                subnet.address().name.starts_with("private-")
                    || cluster.spec.networking.topology == rafter::spec::Topology::Public,
                "{name}: the nodes' load balancer sits in {}",
                subnet.address().name
            );
        }
        // Its group takes the nodes and the control plane on 443, and the documentation range
        // only if the clients' load balancer is this one.
        let group = balancer.security_groups[0].address();
        let group = group_name(&graph, group);
        for source in ["nodes", "control-plane"] {
            assert!(
                ingress_between(&graph, &group, source)
                    .contains(&(Protocol::Tcp, Some((443, 443)))),
                "{name}: {source} cannot reach {group}"
            );
        }
        // Its listener forwards to a target group every control-plane member registers with,
        // and the control plane takes 6443 from it.
        let target_group = graph
            .nodes()
            .iter()
            .find_map(|node| match &node.resource {
                Resource::Listener(listener) if listener.load_balancer.address() == address => {
                    Some(listener.target_group.address().clone())
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name}: no listener on {address}"));
        for node in graph.nodes() {
            if let Resource::AutoscalingGroup(asg) = &node.resource
                && node.address.name.starts_with("control-plane-")
            {
                assert!(
                    asg.target_groups
                        .iter()
                        .any(|group| group.address() == &target_group),
                    "{name}: {} is not behind the nodes' load balancer",
                    node.address
                );
            }
        }
        assert!(
            ingress_between(&graph, "control-plane", &group)
                .contains(&(Protocol::Tcp, Some((6443, 6443)))),
            "{name}: the control plane refuses {group}"
        );
    }
}

#[test]
fn a_recorded_image_is_kept_until_the_spec_names_another() {
    let (mut cluster, graph) = common::example_graph("ha-aws");
    let recorded: Vec<RecordedResource> = graph
        .nodes()
        .iter()
        .map(|node| RecordedResource {
            address: node.address.clone(),
            outputs: BTreeMap::from([("id".to_string(), format!("id-{}", node.address.name))]),
            attributes: node.resource.attributes(),
            dependencies: node.dependencies(),
        })
        .collect();
    let again = rafter::plan::diff(&cluster.metadata.name, &graph, &recorded).unwrap();
    assert!(
        again.changes.is_empty(),
        "a re-plan reads the image again: {:?}",
        again.changes
    );

    // An explicit change is read and shown on every launch template that uses it.
    cluster.spec.control_plane.image = "debian-13".into();
    let changed = build_graph(&cluster).unwrap();
    let plan = rafter::plan::diff(&cluster.metadata.name, &changed, &recorded).unwrap();
    let read: Vec<String> = plan
        .changes
        .iter()
        .filter(|change| change.action == Action::Read)
        .map(|change| change.address.to_string())
        .collect();
    assert_eq!(read, ["data.aws_ami.debian-13-amd64"]);
    let updated: Vec<String> = plan
        .changes
        .iter()
        .filter(|change| change.action == Action::Update)
        .filter(|change| {
            change
                .changes
                .iter()
                .any(|attribute| attribute.name == "image_id")
        })
        .map(|change| change.address.name.clone())
        .collect();
    assert_eq!(
        updated,
        [
            "control-plane-eu-west-1a",
            "control-plane-eu-west-1b",
            "control-plane-eu-west-1c"
        ]
    );
}

/// The only EC2 actions any role holds are the control plane's: describing volumes, and
/// attaching a volume with this cluster's and the etcd role's tags to an instance with this
/// cluster's and the control-plane role's tags, besides the AWS add-ons' statements, whose
/// every change is conditioned on a tag (what they allow is evaluated in `iam_enforced`). No
/// node group role holds any.
#[test]
fn ec2_permissions_are_the_control_planes_and_bound_to_the_clusters_tags() {
    for (label, cluster, graph) in graphs() {
        for node in graph.nodes() {
            let Resource::IamRolePolicy(policy) = &node.resource else {
                continue;
            };
            let document: serde_json::Value = serde_json::from_str(&policy.policy.content).unwrap();
            let control_plane = node.address.name == "control-plane";
            for statement in document["Statement"].as_array().unwrap() {
                let actions: Vec<&str> = statement["Action"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|action| action.as_str().unwrap())
                    .collect();
                let ec2: Vec<&&str> = actions.iter().filter(|a| a.starts_with("ec2:")).collect();
                if ec2.is_empty() {
                    continue;
                }
                assert!(control_plane, "{label}: {} holds {ec2:?}", node.address);
                if actions == ["ec2:DescribeVolumes"] {
                    continue;
                }
                let sid = statement["Sid"].as_str().unwrap();
                if [
                    "CloudController",
                    "EbsCsi",
                    "ClusterAutoscaler",
                    "NodeTerminationHandler",
                ]
                .iter()
                .any(|addon| sid.starts_with(addon))
                {
                    let reads_only = actions.iter().all(|action| {
                        let name = action.split_once(':').unwrap().1;
                        name.starts_with("Describe") || name.starts_with("Get")
                    });
                    assert!(
                        reads_only || statement["Condition"].is_object(),
                        "{label}: {statement} changes resources without a tag condition"
                    );
                    continue;
                }
                assert_eq!(actions, ["ec2:AttachVolume"], "{label}: {statement}");
                let resource = statement["Resource"].as_str().unwrap();
                let role = if resource.ends_with(":volume/*") {
                    "etcd"
                } else {
                    assert!(resource.ends_with(":instance/*"), "{label}: {statement}");
                    "control-plane"
                };
                let condition = &statement["Condition"]["StringEquals"];
                assert_eq!(
                    condition["aws:ResourceTag/rafter.dev/cluster"],
                    cluster.metadata.name.as_str(),
                    "{label}: {statement}"
                );
                assert_eq!(condition["aws:ResourceTag/rafter.dev/role"], role);
            }
        }
    }
}
