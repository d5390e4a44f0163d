//! The network load balancer in front of the API servers: 443 -> 6443.

use super::ModelError;
use super::naming::Naming;
use super::network::Network;
use super::security::{API_LOAD_BALANCER_PORT, API_SERVER_PORT, SecurityGroups};
use crate::graph::ResourceGraph;
use crate::graph::resources::{Listener, LoadBalancer, Ref, TargetGroup};
use crate::spec::{ClusterSpec, LoadBalancerScheme};

/// AWS limit for load balancer and target group names.
const ELB_NAME_MAX: usize = 32;

pub struct ApiLoadBalancer {
    pub load_balancer: Ref<LoadBalancer>,
    pub target_group: Ref<TargetGroup>,
}

pub fn build(
    graph: &mut ResourceGraph,
    spec: &ClusterSpec,
    naming: &Naming,
    network: &Network,
    groups: &SecurityGroups,
) -> Result<ApiLoadBalancer, ModelError> {
    let zones = &spec.networking.zones;
    let (internal, subnets) = match spec.api_server.load_balancer {
        LoadBalancerScheme::Public => (false, network.public_subnet_list(zones)?),
        LoadBalancerScheme::Internal => (true, network.node_subnets(zones)?),
    };
    let load_balancer = graph.add(
        "api",
        LoadBalancer {
            name: naming.short("api", ELB_NAME_MAX),
            internal,
            subnets,
            security_groups: vec![groups.api_load_balancer.clone()],
            tags: naming.tags("api", "load-balancer"),
        },
    );
    let target_group = graph.add(
        "api",
        TargetGroup {
            name: naming.short("tcp", ELB_NAME_MAX),
            vpc: network.vpc.clone(),
            port: API_SERVER_PORT,
            tags: naming.tags("api", "load-balancer"),
        },
    );
    graph.add(
        "api",
        Listener {
            load_balancer: load_balancer.clone(),
            port: API_LOAD_BALANCER_PORT,
            target_group: target_group.clone(),
            tags: naming.tags("api", "load-balancer"),
        },
    );
    Ok(ApiLoadBalancer {
        load_balancer,
        target_group,
    })
}
