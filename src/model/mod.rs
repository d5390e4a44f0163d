//! Pure builders from a completed spec to a resource graph, one module per concern.
//!
//! Deterministic and free of I/O: every name, CIDR and size is decided here, so applying
//! makes no choices (the omicron planner's rule) and the same spec always gives the same
//! graph, plan and Terraform bytes.

pub mod compute;
pub mod dns;
pub mod hosts;
pub mod iam;
pub mod iam_addons;
pub mod loadbalancer;
pub mod naming;
pub mod network;
pub mod placements;
pub mod pod_network;
pub mod security;
pub mod termination;

use crate::graph::{GraphError, ResourceGraph};
use crate::spec::{Cluster, Provider, SubnetKind};
use crate::templates::TemplateError;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("no {kind} subnet for zone {zone}")]
    MissingSubnet { zone: String, kind: SubnetKind },
    #[error("unknown image `{0}`")]
    UnknownImage(String),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("the model built an inconsistent resource graph")]
    Graph(#[source] GraphError),
}

/// Builds the resource graph of a completed, validated cluster.
pub fn build_graph(cluster: &Cluster) -> Result<ResourceGraph, ModelError> {
    let mut graph = ResourceGraph::new();
    match cluster.spec.provider {
        Provider::Aws => build_aws(&mut graph, cluster)?,
        Provider::Ssh => hosts::build(&mut graph, cluster),
    }
    graph.topological_order().map_err(ModelError::Graph)?;
    Ok(graph)
}

fn build_aws(graph: &mut ResourceGraph, cluster: &Cluster) -> Result<(), ModelError> {
    let naming = naming::Naming::new(&cluster.metadata.name);
    let spec = &cluster.spec;
    let network = network::build(graph, spec, &naming)?;
    let groups = security::build(graph, spec, &naming, &network);
    let profiles = iam::build(graph, cluster, &naming);
    let api = loadbalancer::build(graph, spec, &naming, &network, &groups)?;
    dns::build(graph, cluster, &api);
    let node_groups = compute::build(graph, cluster, &naming, &network, &groups, &profiles, &api)?;
    if spec.addons().node_termination_handler.enabled {
        termination::build(graph, &naming, &node_groups);
    }
    Ok(())
}
