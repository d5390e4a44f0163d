//! Security groups and their rules.
//!
//! Least exposure: only the API load balancer clients use takes traffic from
//! `apiServer.allowedCidrs` (port 443); nodes reach the API through the internal load balancer
//! (its own group, which takes only the cluster's groups), or, when the clients' load
//! balancer is internal itself, through that one. Only the bastion (or, without one, the
//! nodes in the public topology) takes SSH from `sshAccess.allowedCidrs`. etcd, the kubelet and every other port are reachable
//! only from the cluster's own groups.

use super::naming::Naming;
use super::network::Network;
use super::pod_network::cni_ports;
use crate::graph::ResourceGraph;
use crate::graph::resources::{EgressRule, IngressRule, Peer, Protocol, Ref, Rule, SecurityGroup};
use crate::spec::{ANYWHERE, Cidr, ClusterSpec, LoadBalancerScheme, Topology};

pub const API_SERVER_PORT: u16 = 6443;
pub const API_LOAD_BALANCER_PORT: u16 = 443;
const SSH_PORT: u16 = 22;
const KUBELET_PORT: u16 = 10250;

pub struct SecurityGroups {
    pub control_plane: Ref<SecurityGroup>,
    pub nodes: Ref<SecurityGroup>,
    pub api_load_balancer: Ref<SecurityGroup>,
    /// The internal load balancer nodes use, when the clients' is internet-facing.
    pub node_api_load_balancer: Option<Ref<SecurityGroup>>,
    pub bastion: Option<Ref<SecurityGroup>>,
}

/// Adds rules to the graph with names `<group>-<what>`.
struct RuleWriter<'a> {
    graph: &'a mut ResourceGraph,
    naming: &'a Naming,
}

impl RuleWriter<'_> {
    fn ingress(
        &mut self,
        name: &str,
        group: &Ref<SecurityGroup>,
        protocol: Protocol,
        ports: Option<(u16, u16)>,
        peer: Peer,
        description: &str,
    ) {
        let rule = self.rule(name, group, protocol, ports, peer, description);
        self.graph.add(name, IngressRule(rule));
    }

    fn egress_anywhere(&mut self, name: &str, group: &Ref<SecurityGroup>) {
        let rule = self.rule(
            name,
            group,
            Protocol::All,
            None,
            Peer::Cidr(ANYWHERE),
            "all outbound traffic",
        );
        self.graph.add(name, EgressRule(rule));
    }

    fn rule(
        &self,
        name: &str,
        group: &Ref<SecurityGroup>,
        protocol: Protocol,
        ports: Option<(u16, u16)>,
        peer: Peer,
        description: &str,
    ) -> Rule {
        Rule {
            group: group.clone(),
            protocol,
            ports,
            peer,
            description: description.to_string(),
            tags: self.naming.tags(name, "security"),
        }
    }
}

fn port(number: u16) -> Option<(u16, u16)> {
    Some((number, number))
}

/// `203.0.113.0/24` -> `203-0-113-0-24`, for rule names.
fn cidr_label(cidr: &Cidr) -> String {
    cidr.to_string().replace(['.', '/'], "-")
}

pub fn build(
    graph: &mut ResourceGraph,
    spec: &ClusterSpec,
    naming: &Naming,
    network: &Network,
) -> SecurityGroups {
    let group = |graph: &mut ResourceGraph, local: &str, description: &str| {
        graph.add(
            local,
            SecurityGroup {
                vpc: network.vpc.clone(),
                name: naming.qualified(local),
                description: description.to_string(),
                tags: naming.tags(local, "security"),
            },
        )
    };
    let control_plane = group(graph, "control-plane", "rafter control-plane nodes");
    let nodes = group(graph, "nodes", "rafter worker nodes");
    let api_load_balancer = group(graph, "api-lb", "rafter API load balancer");
    let node_api_load_balancer = (spec.api_server.load_balancer == LoadBalancerScheme::Public)
        .then(|| {
            group(
                graph,
                "api-internal-lb",
                "rafter internal API load balancer for nodes",
            )
        });
    let bastion = spec
        .bastion
        .as_ref()
        .map(|_| group(graph, "bastion", "rafter bastion"));

    let mut rules = RuleWriter { graph, naming };
    let cp = || Peer::Group(control_plane.clone());
    let node = || Peer::Group(nodes.clone());
    rules.ingress(
        "control-plane-from-control-plane",
        &control_plane,
        Protocol::All,
        None,
        cp(),
        "control plane to control plane (etcd, API)",
    );
    rules.ingress(
        "nodes-from-nodes",
        &nodes,
        Protocol::All,
        None,
        node(),
        "node to node",
    );
    rules.ingress(
        "nodes-from-control-plane",
        &nodes,
        Protocol::All,
        None,
        cp(),
        "control plane to nodes (kubelet, webhooks)",
    );
    rules.ingress(
        "control-plane-from-nodes-api",
        &control_plane,
        Protocol::Tcp,
        port(API_SERVER_PORT),
        node(),
        "nodes to the API server",
    );
    rules.ingress(
        "control-plane-from-nodes-kubelet",
        &control_plane,
        Protocol::Tcp,
        port(KUBELET_PORT),
        node(),
        "metrics from control-plane kubelets",
    );
    // The other directions (and each group to itself) are open to all protocols above.
    for port in cni_ports(spec.networking.cni) {
        rules.ingress(
            &format!("control-plane-from-nodes-{}", port.label),
            &control_plane,
            port.protocol,
            port.ports,
            node(),
            port.purpose,
        );
    }
    rules.ingress(
        "control-plane-from-api-lb",
        &control_plane,
        Protocol::Tcp,
        port(API_SERVER_PORT),
        Peer::Group(api_load_balancer.clone()),
        "API load balancer to API servers",
    );
    for cidr in &spec.api_server.allowed_cidrs {
        rules.ingress(
            &format!("api-lb-https-{}", cidr_label(cidr)),
            &api_load_balancer,
            Protocol::Tcp,
            port(API_LOAD_BALANCER_PORT),
            Peer::Cidr(*cidr),
            "API clients",
        );
    }
    // The cluster's own groups reach the API through the load balancer nodes use. Rules
    // keep their names whichever group that is, so switching the scheme moves them.
    let (node_lb_label, node_lb) = match &node_api_load_balancer {
        Some(internal) => ("api-internal-lb", internal.clone()),
        None => ("api-lb", api_load_balancer.clone()),
    };
    rules.ingress(
        &format!("{node_lb_label}-https-from-nodes"),
        &node_lb,
        Protocol::Tcp,
        port(API_LOAD_BALANCER_PORT),
        node(),
        "nodes to the API through the load balancer",
    );
    rules.ingress(
        &format!("{node_lb_label}-https-from-control-plane"),
        &node_lb,
        Protocol::Tcp,
        port(API_LOAD_BALANCER_PORT),
        cp(),
        "control plane to the API through the load balancer",
    );
    if let Some(internal) = &node_api_load_balancer {
        rules.ingress(
            "control-plane-from-api-internal-lb",
            &control_plane,
            Protocol::Tcp,
            port(API_SERVER_PORT),
            Peer::Group(internal.clone()),
            "internal API load balancer to API servers",
        );
        let to_control_plane = rules.rule(
            "api-internal-lb-to-control-plane",
            internal,
            Protocol::Tcp,
            port(API_SERVER_PORT),
            cp(),
            "to the API servers",
        );
        rules.graph.add(
            "api-internal-lb-to-control-plane",
            EgressRule(to_control_plane),
        );
    }

    let ssh_sources = &spec.ssh_access.allowed_cidrs;
    match (&bastion, spec.networking.topology) {
        (Some(bastion), _) => {
            for cidr in ssh_sources {
                rules.ingress(
                    &format!("bastion-ssh-{}", cidr_label(cidr)),
                    bastion,
                    Protocol::Tcp,
                    port(SSH_PORT),
                    Peer::Cidr(*cidr),
                    "SSH to the bastion",
                );
            }
            rules.ingress(
                "control-plane-ssh-from-bastion",
                &control_plane,
                Protocol::Tcp,
                port(SSH_PORT),
                Peer::Group(bastion.clone()),
                "SSH from the bastion",
            );
            rules.ingress(
                "nodes-ssh-from-bastion",
                &nodes,
                Protocol::Tcp,
                port(SSH_PORT),
                Peer::Group(bastion.clone()),
                "SSH from the bastion",
            );
        }
        (None, Topology::Public) => {
            for cidr in ssh_sources {
                let label = cidr_label(cidr);
                rules.ingress(
                    &format!("control-plane-ssh-{label}"),
                    &control_plane,
                    Protocol::Tcp,
                    port(SSH_PORT),
                    Peer::Cidr(*cidr),
                    "SSH",
                );
                rules.ingress(
                    &format!("nodes-ssh-{label}"),
                    &nodes,
                    Protocol::Tcp,
                    port(SSH_PORT),
                    Peer::Cidr(*cidr),
                    "SSH",
                );
            }
        }
        (None, Topology::Private) => {}
    }

    rules.egress_anywhere("control-plane-egress", &control_plane);
    rules.egress_anywhere("nodes-egress", &nodes);
    let lb_to_control_plane = rules.rule(
        "api-lb-to-control-plane",
        &api_load_balancer,
        Protocol::Tcp,
        port(API_SERVER_PORT),
        cp(),
        "to the API servers",
    );
    rules
        .graph
        .add("api-lb-to-control-plane", EgressRule(lb_to_control_plane));
    if let Some(bastion) = &bastion {
        rules.egress_anywhere("bastion-egress", bastion);
    }

    SecurityGroups {
        control_plane,
        nodes,
        api_load_balancer,
        node_api_load_balancer,
        bastion,
    }
}
