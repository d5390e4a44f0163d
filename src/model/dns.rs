//! Route53 records in an existing hosted zone: `api.<name>` for clients and
//! `api.internal.<name>` for nodes, each naming its load balancer.

use super::loadbalancer::ApiLoadBalancer;
use crate::graph::ResourceGraph;
use crate::graph::resources::{DnsRecord, HostedZone};
use crate::spec::Cluster;

pub fn build(graph: &mut ResourceGraph, cluster: &Cluster, api: &ApiLoadBalancer) {
    let Some(dns) = &cluster.spec.dns else { return };
    let zone = graph.add(
        "main",
        HostedZone {
            name: dns.zone.trim_end_matches('.').to_string(),
            private: dns.private,
        },
    );
    let name = &cluster.metadata.name;
    for (local, record, endpoint) in [
        ("api", format!("api.{name}"), &api.clients),
        (
            "api-internal",
            format!("api.internal.{name}"),
            api.for_nodes(),
        ),
    ] {
        graph.add(
            local,
            DnsRecord {
                zone: zone.clone(),
                name: record,
                load_balancer: endpoint.load_balancer.clone(),
            },
        );
    }
}
