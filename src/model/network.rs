//! VPC, subnets, internet and NAT gateways, route tables and routes.

use std::collections::BTreeMap;

use super::ModelError;
use super::naming::Naming;
use crate::graph::ResourceGraph;
use crate::graph::resources::{
    ElasticIp, InternetGateway, NatGateway, Ref, Route, RouteTable, RouteTableAssociation,
    RouteTarget, Subnet, Vpc,
};
use crate::spec::{ANYWHERE, ClusterSpec, NatGateways, SubnetKind, Topology};

/// What other builders need from the network.
pub struct Network {
    pub vpc: Ref<Vpc>,
    pub public_subnets: BTreeMap<String, Ref<Subnet>>,
    pub private_subnets: BTreeMap<String, Ref<Subnet>>,
    pub topology: Topology,
}

impl Network {
    /// The subnet where nodes of `zone` live: private in the private topology.
    pub fn node_subnet(&self, zone: &str) -> Result<Ref<Subnet>, ModelError> {
        let (subnets, kind) = match self.topology {
            Topology::Private => (&self.private_subnets, SubnetKind::Private),
            Topology::Public => (&self.public_subnets, SubnetKind::Public),
        };
        subnets
            .get(zone)
            .cloned()
            .ok_or_else(|| ModelError::MissingSubnet {
                zone: zone.to_string(),
                kind,
            })
    }

    pub fn node_subnets(&self, zones: &[String]) -> Result<Vec<Ref<Subnet>>, ModelError> {
        zones.iter().map(|zone| self.node_subnet(zone)).collect()
    }

    pub fn public_subnet_list(&self, zones: &[String]) -> Result<Vec<Ref<Subnet>>, ModelError> {
        zones
            .iter()
            .map(|zone| {
                self.public_subnets
                    .get(zone)
                    .cloned()
                    .ok_or_else(|| ModelError::MissingSubnet {
                        zone: zone.clone(),
                        kind: SubnetKind::Public,
                    })
            })
            .collect()
    }
}

pub fn build(
    graph: &mut ResourceGraph,
    spec: &ClusterSpec,
    naming: &Naming,
) -> Result<Network, ModelError> {
    let networking = &spec.networking;
    let vpc = graph.add(
        "main",
        Vpc {
            cidr: networking.vpc_cidr,
            tags: naming.tags("vpc", "network"),
        },
    );
    let internet_gateway = graph.add(
        "main",
        InternetGateway {
            vpc: vpc.clone(),
            tags: naming.tags("igw", "network"),
        },
    );

    let mut public_subnets = BTreeMap::new();
    let mut private_subnets = BTreeMap::new();
    for subnet in &networking.subnets {
        if networking.topology == Topology::Public && subnet.kind == SubnetKind::Private {
            continue;
        }
        let local = format!("{}-{}", subnet.kind, subnet.zone);
        let mut tags = naming.tags(&local, "network");
        let load_balancer_role = match subnet.kind {
            SubnetKind::Public => "kubernetes.io/role/elb",
            SubnetKind::Private => "kubernetes.io/role/internal-elb",
        };
        tags.insert(load_balancer_role.to_string(), "1".to_string());
        let subnet_ref = graph.add(
            local,
            Subnet {
                vpc: vpc.clone(),
                zone: subnet.zone.clone(),
                cidr: subnet.cidr,
                map_public_ip_on_launch: networking.topology == Topology::Public,
                tags,
            },
        );
        match subnet.kind {
            SubnetKind::Public => public_subnets.insert(subnet.zone.clone(), subnet_ref),
            SubnetKind::Private => private_subnets.insert(subnet.zone.clone(), subnet_ref),
        };
    }

    let public_table = graph.add(
        "public",
        RouteTable {
            vpc: vpc.clone(),
            tags: naming.tags("public", "network"),
        },
    );
    graph.add(
        "public-default",
        Route {
            route_table: public_table.clone(),
            destination: ANYWHERE,
            target: RouteTarget::InternetGateway(internet_gateway.clone()),
        },
    );
    for zone in &networking.zones {
        if let Some(subnet) = public_subnets.get(zone) {
            graph.add(
                format!("public-{zone}"),
                RouteTableAssociation {
                    route_table: public_table.clone(),
                    subnet: subnet.clone(),
                },
            );
        }
    }

    if networking.topology == Topology::Private {
        let nat_zones: Vec<&String> = match networking.nat_gateways {
            Some(NatGateways::PerZone) => networking.zones.iter().collect(),
            Some(NatGateways::Single) => networking.zones.iter().take(1).collect(),
            Some(NatGateways::None) | None => Vec::new(),
        };
        let mut nats: Vec<(String, Ref<NatGateway>)> = Vec::new();
        for zone in nat_zones {
            let local = format!("nat-{zone}");
            let subnet =
                public_subnets
                    .get(zone)
                    .cloned()
                    .ok_or_else(|| ModelError::MissingSubnet {
                        zone: zone.clone(),
                        kind: SubnetKind::Public,
                    })?;
            let elastic_ip = graph.add(
                local.clone(),
                ElasticIp {
                    tags: naming.tags(&local, "network"),
                },
            );
            let nat = graph.add(
                local.clone(),
                NatGateway {
                    elastic_ip,
                    subnet,
                    internet_gateway: internet_gateway.clone(),
                    tags: naming.tags(&local, "network"),
                },
            );
            nats.push((zone.clone(), nat));
        }
        for zone in &networking.zones {
            let Some(subnet) = private_subnets.get(zone) else {
                continue;
            };
            let local = format!("private-{zone}");
            let table = graph.add(
                local.clone(),
                RouteTable {
                    vpc: vpc.clone(),
                    tags: naming.tags(&local, "network"),
                },
            );
            // Each zone leaves through its own NAT when it has one, so losing a zone does not
            // cut the others off; otherwise through the single shared one.
            let nat = nats
                .iter()
                .find(|(nat_zone, _)| nat_zone == zone)
                .or(nats.first());
            if let Some((_, nat)) = nat {
                graph.add(
                    format!("{local}-default"),
                    Route {
                        route_table: table.clone(),
                        destination: ANYWHERE,
                        target: RouteTarget::NatGateway(nat.clone()),
                    },
                );
            }
            graph.add(
                local,
                RouteTableAssociation {
                    route_table: table,
                    subnet: subnet.clone(),
                },
            );
        }
    }

    Ok(Network {
        vpc,
        public_subnets,
        private_subnets,
        topology: networking.topology,
    })
}
