//! Names and ownership tags of cloud resources, all derived from the cluster name.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::graph::Address;
use crate::graph::resources::Tags;

pub const CLUSTER_TAG: &str = "rafter.dev/cluster";
pub const ROLE_TAG: &str = "rafter.dev/role";
/// The role tag of control-plane instances.
pub const CONTROL_PLANE_ROLE: &str = "control-plane";
/// The role tag of control-plane members' etcd data volumes (the control-plane role may
/// attach only volumes of its own cluster with this role, to instances of its own cluster
/// with the `control-plane` role).
pub const ETCD_VOLUME_ROLE: &str = "etcd";
/// Tag naming the etcd member whose data a volume holds: how the member's instance finds it.
pub const ETCD_MEMBER_TAG: &str = "rafter.dev/etcd-member";
/// Tag that names a resource's graph address, so a rerun finds exactly what it made.
pub const ADDRESS_TAG: &str = "rafter.dev/address";

/// The tags the resource at `address` carries in AWS, whoever creates it (rafter's apply or
/// `terraform apply` of the export), so that either can adopt what the other made: the
/// graph's `tags`, plus the address tag for the kinds found by it.
pub fn cloud_tags(address: &Address, tags: &Tags) -> Tags {
    let mut tags = tags.clone();
    if address.kind.found_by_address_tag() {
        tags.insert(ADDRESS_TAG.to_string(), address.to_string());
    }
    tags
}

/// Decides every cloud name of one cluster.
#[derive(Debug, Clone)]
pub struct Naming {
    cluster: String,
}

impl Naming {
    pub fn new(cluster: &str) -> Self {
        Self {
            cluster: cluster.to_string(),
        }
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// `private-eu-west-1a.demo.example.com`, the `Name` tag and the name of most resources.
    pub fn qualified(&self, local: &str) -> String {
        format!("{local}.{}", self.cluster)
    }

    /// The Kubernetes ownership tag key, also used by the AWS cloud provider.
    pub fn kubernetes_cluster_tag(&self) -> String {
        format!("kubernetes.io/cluster/{}", self.cluster)
    }

    /// Ownership tags every taggable resource carries, plus its `Name` and role.
    pub fn tags(&self, local: &str, role: &str) -> Tags {
        BTreeMap::from([
            ("Name".to_string(), self.qualified(local)),
            (CLUSTER_TAG.to_string(), self.cluster.clone()),
            (self.kubernetes_cluster_tag(), "owned".to_string()),
            (ROLE_TAG.to_string(), role.to_string()),
        ])
    }

    /// A name for services that allow only `[A-Za-z0-9-]` and at most `max_len` characters
    /// (load balancers and target groups: 32). Long cluster names are cut and given a short
    /// hash of the full name, so names stay unique and stable.
    pub fn short(&self, prefix: &str, max_len: usize) -> String {
        let flat: String = format!("{prefix}-{}", self.cluster)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        if flat.len() <= max_len {
            return flat;
        }
        let hash = self.hash8();
        let kept: String = flat
            .chars()
            .take(max_len.saturating_sub(hash.len() + 1))
            .collect();
        format!("{}-{hash}", kept.trim_end_matches('-'))
    }

    /// Whether `name` may be one [`Naming::short`] made for this cluster (a cheap pre-check
    /// before asking a service for the resource's tags).
    pub fn could_be_short_name(&self, name: &str) -> bool {
        let flat: String = self
            .cluster
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        name.ends_with(&format!("-{flat}")) || name.ends_with(&format!("-{}", self.hash8()))
    }

    /// IAM role and instance profile names: `[\w+=,.@-]`, at most 64 characters.
    pub fn iam(&self, local: &str) -> String {
        let full = self.qualified(local);
        if full.len() <= 64 {
            return full;
        }
        let hash = self.hash8();
        format!(
            "{}-{hash}",
            full[..64 - hash.len() - 1].trim_end_matches(['-', '.'])
        )
    }

    /// Whether `name` may be one [`Naming::iam`] made for this cluster (a cheap pre-check
    /// before asking IAM for the resource's tags).
    pub fn could_be_iam_name(&self, name: &str) -> bool {
        name.ends_with(&format!(".{}", self.cluster))
            || name.ends_with(&format!("-{}", self.hash8()))
    }

    fn hash8(&self) -> String {
        let digest = Sha256::digest(self.cluster.as_bytes());
        digest
            .iter()
            .take(4)
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_fit_and_stay_unique() {
        let naming = Naming::new("demo.example.com");
        assert_eq!(naming.short("api", 32), "api-demo-example-com");
        let long_a = Naming::new("a-very-long-cluster-name.platform.example.com").short("api", 32);
        let long_b = Naming::new("a-very-long-cluster-name.platform.example.org").short("api", 32);
        assert!(
            long_a.len() <= 32 && long_b.len() <= 32,
            "{long_a} {long_b}"
        );
        assert_ne!(long_a, long_b);
        assert!(!long_a.contains("--"));
    }

    #[test]
    fn short_names_are_recognised_and_other_clusters_are_not() {
        let naming = Naming::new("dev.example.com");
        assert!(naming.could_be_short_name(&naming.short("nth-rebalance", 64)));
        let long = Naming::new(&format!("{}.example.com", "x".repeat(70)));
        assert!(long.could_be_short_name(&long.short("nth-rebalance", 64)));
        assert!(!naming.could_be_short_name(&Naming::new("prod.example.com").short("nth", 80)));
    }

    #[test]
    fn iam_names_fit() {
        let name = Naming::new(&format!("{}.example.com", "x".repeat(60))).iam("control-plane");
        assert!(name.len() <= 64, "{name}");
    }

    #[test]
    fn tags_carry_ownership() {
        let tags = Naming::new("c.example.com").tags("nodes", "node");
        assert_eq!(tags["kubernetes.io/cluster/c.example.com"], "owned");
        assert_eq!(tags[CLUSTER_TAG], "c.example.com");
        assert_eq!(tags["Name"], "nodes.c.example.com");
    }
}
