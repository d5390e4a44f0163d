//! The network load balancers in front of the API servers (443 -> 6443): the one clients use
//! (`api.<name>`, internet-facing or internal as `apiServer.loadBalancer` says), and, when that
//! one is internet-facing, an internal one in the node subnets that the nodes use
//! (`api.internal.<name>`). So kubelets never reach the API through NAT: their traffic stays
//! in the VPC, pays no NAT charge, and `apiServer.allowedCidrs` governs only the public
//! endpoint (kops' `api.internal` answers the same need).

use super::ModelError;
use super::naming::Naming;
use super::network::Network;
use super::security::{API_LOAD_BALANCER_PORT, API_SERVER_PORT, SecurityGroups};
use crate::graph::resources::{Listener, LoadBalancer, Ref, SecurityGroup, Subnet, TargetGroup};
use crate::graph::{ResourceGraph, ResourceKind};
use crate::plan::RecordedResource;
use crate::spec::{ClusterSpec, LoadBalancerScheme};

/// AWS limit for load balancer and target group names.
const ELB_NAME_MAX: usize = 32;

/// The local name of the load balancer clients use.
pub const CLIENT_LOAD_BALANCER: &str = "api";
/// The local name of the internal load balancer nodes use, when the clients' is public.
pub const NODE_LOAD_BALANCER: &str = "api-internal";

/// One load balancer, its target group of API servers and its listener.
pub struct ApiEndpoint {
    pub load_balancer: Ref<LoadBalancer>,
    pub target_group: Ref<TargetGroup>,
}

pub struct ApiLoadBalancer {
    /// What `api.<name>` names.
    pub clients: ApiEndpoint,
    /// What `api.internal.<name>` names: the clients' own when that is internal.
    pub nodes: Option<ApiEndpoint>,
}

impl ApiLoadBalancer {
    /// The endpoint nodes reach the API through.
    pub fn for_nodes(&self) -> &ApiEndpoint {
        self.nodes.as_ref().unwrap_or(&self.clients)
    }

    /// Every target group the control-plane members register with.
    pub fn target_groups(&self) -> Vec<Ref<TargetGroup>> {
        std::iter::once(&self.clients)
            .chain(&self.nodes)
            .map(|endpoint| endpoint.target_group.clone())
            .collect()
    }
}

pub fn build(
    graph: &mut ResourceGraph,
    spec: &ClusterSpec,
    naming: &Naming,
    network: &Network,
    groups: &SecurityGroups,
) -> Result<ApiLoadBalancer, ModelError> {
    let zones = &spec.networking.zones;
    let clients = match spec.api_server.load_balancer {
        LoadBalancerScheme::Public => endpoint(
            graph,
            naming,
            network,
            CLIENT_LOAD_BALANCER,
            false,
            network.public_subnet_list(zones)?,
            &groups.api_load_balancer,
        ),
        LoadBalancerScheme::Internal => endpoint(
            graph,
            naming,
            network,
            CLIENT_LOAD_BALANCER,
            true,
            network.node_subnets(zones)?,
            &groups.api_load_balancer,
        ),
    };
    let nodes = match &groups.node_api_load_balancer {
        Some(group) => Some(endpoint(
            graph,
            naming,
            network,
            NODE_LOAD_BALANCER,
            true,
            network.node_subnets(zones)?,
            group,
        )),
        None => None,
    };
    Ok(ApiLoadBalancer { clients, nodes })
}

fn endpoint(
    graph: &mut ResourceGraph,
    naming: &Naming,
    network: &Network,
    local: &str,
    internal: bool,
    subnets: Vec<Ref<Subnet>>,
    security_group: &Ref<SecurityGroup>,
) -> ApiEndpoint {
    let load_balancer = graph.add(
        local,
        LoadBalancer {
            name: naming.short(local, ELB_NAME_MAX),
            internal,
            subnets,
            security_groups: vec![security_group.clone()],
            tags: naming.tags(local, "load-balancer"),
        },
    );
    // The clients' target group keeps its first name (`tcp`), so existing clusters keep it.
    let target_group_name = if local == CLIENT_LOAD_BALANCER {
        "tcp".to_string()
    } else {
        format!("{local}-tcp")
    };
    let target_group = graph.add(
        local,
        TargetGroup {
            name: naming.short(&target_group_name, ELB_NAME_MAX),
            vpc: network.vpc.clone(),
            port: API_SERVER_PORT,
            tags: naming.tags(local, "load-balancer"),
        },
    );
    graph.add(
        local,
        Listener {
            load_balancer: load_balancer.clone(),
            port: API_LOAD_BALANCER_PORT,
            target_group: target_group.clone(),
            tags: naming.tags(local, "load-balancer"),
        },
    );
    ApiEndpoint {
        load_balancer,
        target_group,
    }
}

/// The DNS names of a cluster's API load balancers, as recorded once they exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiLoadBalancerNames {
    /// The one clients use.
    pub clients: Option<String>,
    /// The internal one nodes use, if the clients' is internet-facing.
    pub nodes: Option<String>,
}

impl ApiLoadBalancerNames {
    /// Reads them from the record of applied resources.
    pub fn recorded(records: &[RecordedResource]) -> Self {
        let dns_name = |local: &str| {
            records
                .iter()
                .find(|resource| {
                    resource.address.kind == ResourceKind::LoadBalancer
                        && resource.address.name == local
                })
                .and_then(|balancer| balancer.outputs.get("dns_name"))
                .cloned()
        };
        Self {
            clients: dns_name(CLIENT_LOAD_BALANCER),
            nodes: dns_name(NODE_LOAD_BALANCER),
        }
    }

    /// The name nodes reach the API by: the internal load balancer's, else the clients'.
    pub fn for_nodes(&self) -> Option<&str> {
        self.nodes.as_deref().or(self.clients.as_deref())
    }
}
