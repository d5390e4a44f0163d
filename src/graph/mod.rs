//! The resource graph: typed resources, references between them, and a checked order.

pub mod address;
pub mod resources;
pub mod value;

use std::collections::{BTreeSet, HashMap};

pub use address::{Address, Concern, ResourceKind};
pub use resources::{Ref, Resource, ResourceType};
pub use value::{DataFile, Field, FileEncoding, Reference, UpdateMode, Value};

/// One resource in the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphNode {
    pub address: Address,
    pub resource: Resource,
}

impl GraphNode {
    /// Everything this resource needs to exist first, without duplicates, in a stable order.
    pub fn dependencies(&self) -> Vec<Address> {
        let attributes = self.resource.attributes();
        let mut seen = BTreeSet::new();
        attributes
            .iter()
            .flat_map(|field| field.value.references())
            .chain(self.resource.extra_dependencies())
            .filter(|address| seen.insert((*address).clone()))
            .cloned()
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("two resources share the address {0}")]
    DuplicateAddress(Address),
    #[error("{from} refers to {to}, which is not in the graph")]
    DanglingReference { from: Address, to: Address },
    #[error("dependency cycle among: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    Cycle(Vec<Address>),
}

/// Resources in insertion order, addressable, with references only to each other.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceGraph {
    nodes: Vec<GraphNode>,
    index: HashMap<Address, usize>,
    duplicates: Vec<Address>,
}

impl ResourceGraph {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a resource named `name`; the returned reference is how others depend on it.
    pub fn add<T: ResourceType>(&mut self, name: impl Into<String>, resource: T) -> Ref<T> {
        let address = Address::new(T::KIND, name);
        if self.index.contains_key(&address) {
            self.duplicates.push(address.clone());
        } else {
            self.index.insert(address.clone(), self.nodes.len());
        }
        self.nodes.push(GraphNode {
            address: address.clone(),
            resource: resource.into(),
        });
        Ref::new(address)
    }

    /// The graph of the nodes `keep` accepts (references to dropped nodes then dangle and
    /// fail the order check, so a filter must keep whole dependency closures).
    pub fn filtered(&self, keep: impl Fn(&GraphNode) -> bool) -> ResourceGraph {
        let mut graph = ResourceGraph::new();
        for node in self.nodes.iter().filter(|node| keep(node)) {
            graph.index.insert(node.address.clone(), graph.nodes.len());
            graph.nodes.push(node.clone());
        }
        graph
    }

    /// This graph with each node `take` accepts replaced by `other`'s node of the same
    /// address, where `other` has one (order and addresses stay this graph's; the taken
    /// node's references must resolve here too, which the order check proves).
    pub fn with_nodes_from(
        &self,
        other: &ResourceGraph,
        take: impl Fn(&GraphNode) -> bool,
    ) -> ResourceGraph {
        let mut graph = self.clone();
        for node in graph.nodes.iter_mut().filter(|node| take(node)) {
            if let Some(replacement) = other.get(&node.address) {
                *node = replacement.clone();
            }
        }
        graph
    }

    /// This graph with every node of `other` it lacks appended (in `other`'s order).
    pub fn with_missing_nodes_from(&self, other: &ResourceGraph) -> ResourceGraph {
        let mut graph = self.clone();
        for node in other.nodes() {
            if !graph.index.contains_key(&node.address) {
                graph.index.insert(node.address.clone(), graph.nodes.len());
                graph.nodes.push(node.clone());
            }
        }
        graph
    }

    pub fn nodes(&self) -> &[GraphNode] {
        &self.nodes
    }

    pub fn get(&self, address: &Address) -> Option<&GraphNode> {
        self.index
            .get(address)
            .map(|position| &self.nodes[*position])
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node positions in dependency order (a dependency always before its dependents); ties
    /// keep insertion order, so the order is deterministic. Fails on duplicate addresses,
    /// references to unknown resources, and cycles.
    pub fn topological_order(&self) -> Result<Vec<usize>, GraphError> {
        if let Some(duplicate) = self.duplicates.first() {
            return Err(GraphError::DuplicateAddress(duplicate.clone()));
        }
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        let mut waiting_on: Vec<usize> = vec![0; self.nodes.len()];
        for (position, node) in self.nodes.iter().enumerate() {
            for dependency in node.dependencies() {
                let Some(&target) = self.index.get(&dependency) else {
                    return Err(GraphError::DanglingReference {
                        from: node.address.clone(),
                        to: dependency,
                    });
                };
                dependents[target].push(position);
                waiting_on[position] += 1;
            }
        }
        let mut ready: BTreeSet<usize> = (0..self.nodes.len())
            .filter(|position| waiting_on[*position] == 0)
            .collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(position) = ready.pop_first() {
            order.push(position);
            for &dependent in &dependents[position] {
                waiting_on[dependent] -= 1;
                if waiting_on[dependent] == 0 {
                    ready.insert(dependent);
                }
            }
        }
        if order.len() != self.nodes.len() {
            let stuck = (0..self.nodes.len())
                .filter(|position| waiting_on[*position] > 0)
                .map(|position| self.nodes[position].address.clone())
                .collect();
            return Err(GraphError::Cycle(stuck));
        }
        Ok(order)
    }

    /// Length (in resources) of the longest dependency chain: the lower bound on sequential
    /// steps of any apply, however parallel.
    pub fn longest_chain(&self) -> Result<usize, GraphError> {
        let order = self.topological_order()?;
        let mut depth = vec![1usize; self.nodes.len()];
        for position in order {
            for dependency in self.nodes[position].dependencies() {
                if let Some(&target) = self.index.get(&dependency) {
                    depth[position] = depth[position].max(depth[target] + 1);
                }
            }
        }
        Ok(depth.into_iter().max().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::resources::{InternetGateway, Route, RouteTable, RouteTarget, Vpc};
    use super::*;
    use crate::spec::Cidr;

    fn vpc() -> Vpc {
        Vpc {
            cidr: "10.0.0.0/16".parse::<Cidr>().unwrap(),
            tags: Default::default(),
        }
    }

    #[test]
    fn orders_dependencies_first_and_is_stable() {
        let mut graph = ResourceGraph::new();
        let table_placeholder_vpc = graph.add("main", vpc());
        let table = graph.add(
            "public",
            RouteTable {
                vpc: table_placeholder_vpc.clone(),
                tags: Default::default(),
            },
        );
        let gateway = graph.add(
            "main",
            InternetGateway {
                vpc: table_placeholder_vpc,
                tags: Default::default(),
            },
        );
        graph.add(
            "default",
            Route {
                route_table: table,
                destination: "0.0.0.0/0".parse().unwrap(),
                target: RouteTarget::InternetGateway(gateway),
            },
        );
        let names: Vec<String> = graph
            .topological_order()
            .unwrap()
            .into_iter()
            .map(|position| graph.nodes()[position].address.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "aws_vpc.main",
                "aws_route_table.public",
                "aws_internet_gateway.main",
                "aws_route.default"
            ]
        );
        assert_eq!(graph.longest_chain().unwrap(), 3);
    }

    #[test]
    fn takes_the_accepted_nodes_from_another_graph_in_place() {
        let build = |cidr: &str| {
            let mut graph = ResourceGraph::new();
            graph.add("a", vpc());
            graph.add(
                "b",
                Vpc {
                    cidr: cidr.parse::<Cidr>().unwrap(),
                    tags: Default::default(),
                },
            );
            graph
        };
        let (new, old) = (build("10.1.0.0/16"), build("10.2.0.0/16"));
        let staged = new.with_nodes_from(&old, |node| node.address.name == "b");
        assert_eq!(staged.nodes()[1], old.nodes()[1]);
        assert_eq!(staged.nodes()[0], new.nodes()[0]);
        let untouched = new.with_nodes_from(&old, |_| false);
        assert_eq!(untouched, new);
    }

    #[test]
    fn rejects_duplicates_and_dangling_references() {
        let mut graph = ResourceGraph::new();
        graph.add("main", vpc());
        graph.add("main", vpc());
        assert!(matches!(
            graph.topological_order(),
            Err(GraphError::DuplicateAddress(_))
        ));

        let mut other = ResourceGraph::new();
        let foreign = other.add("elsewhere", vpc());
        let mut graph = ResourceGraph::new();
        graph.add(
            "gw",
            InternetGateway {
                vpc: foreign,
                tags: Default::default(),
            },
        );
        assert!(matches!(
            graph.topological_order(),
            Err(GraphError::DanglingReference { .. })
        ));
    }

    #[test]
    fn detects_cycles() {
        use super::resources::SshHost;
        let mut graph = ResourceGraph::new();
        let host = |name: &str, after: Option<Ref<SshHost>>| SshHost {
            name: name.into(),
            address: name.into(),
            port: 22,
            user: "root".into(),
            role: "worker".into(),
            joins_after: after,
        };
        let b_ref = Ref::new(Address::new(ResourceKind::SshHost, "b"));
        let a = graph.add("a", host("a", Some(b_ref)));
        graph.add("b", host("b", Some(a)));
        let error = graph.topological_order().unwrap_err();
        assert!(
            matches!(&error, GraphError::Cycle(members) if members.len() == 2),
            "{error}"
        );
    }
}
