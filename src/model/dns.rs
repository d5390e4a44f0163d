//! Route53 records `api.<name>` and `api.internal.<name>` in an existing hosted zone.

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
    for (local, record) in [
        ("api", format!("api.{name}")),
        ("api-internal", format!("api.internal.{name}")),
    ] {
        graph.add(
            local,
            DnsRecord {
                zone: zone.clone(),
                name: record,
                load_balancer: api.load_balancer.clone(),
            },
        );
    }
}
