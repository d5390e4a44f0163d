//! Idempotency tokens (`ClientToken`) for the EC2 creates that take one: `CreateNatGateway`,
//! `CreateRouteTable`, `CreateLaunchTemplate` and `CreateLaunchTemplateVersion`.
//!
//! EC2 answers a request whose token it has seen (for at least 24 hours) with what the first
//! request made, instead of making another; the same token with other parameters is refused
//! with `IdempotentParameterMismatch` (EC2 API reference, "Ensuring idempotency in Amazon
//! EC2 API requests"). rafter turns the SDK's retries off and retries itself, and a rerun
//! after a kill cannot know what the killed run sent, so the SDK's random token would let a
//! create whose answer was lost make a second resource whenever the tag lookup before it is
//! not yet consistent. The token is therefore derived, not drawn:
//!
//! - from the cluster, the record's [`Lineage`] (its incarnation, and how many times rafter
//!   deleted this address), the address, and the request's parameters;
//! - so every retry, by this run or by a rerun, sends the token the first attempt sent;
//! - and a resource made again after rafter deleted it, the same address in a new cluster of
//!   the same name, or a request with other parameters, sends a new one.
//!
//! Without a lineage (the delete sweep, which creates nothing) the SDK's random token stays.

use sha2::{Digest, Sha256};

use crate::graph::Address;
use crate::state::Lineage;

/// Derives the tokens of one cluster's creates.
#[derive(Debug, Clone)]
pub struct ClientTokens {
    cluster: String,
    lineage: Lineage,
}

impl ClientTokens {
    pub fn new(cluster: &str, lineage: Lineage) -> Self {
        Self {
            cluster: cluster.to_string(),
            lineage,
        }
    }

    /// The token for creating `address` with these request parameters: 64 hex characters,
    /// EC2's longest.
    pub fn token(&self, address: &Address, parameters: &[&str]) -> String {
        let address = address.to_string();
        let retired = self.lineage.retired.get(&address).copied().unwrap_or(0);
        let mut digest = Sha256::new();
        let retired = retired.to_string();
        let fields = [
            self.cluster.as_str(),
            self.lineage.incarnation.as_str(),
            address.as_str(),
            retired.as_str(),
        ];
        for field in fields.iter().chain(parameters) {
            // Length-prefixed, so no two different field lists hash the same bytes.
            digest.update((field.len() as u64).to_be_bytes());
            digest.update(field.as_bytes());
        }
        digest
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ResourceKind;

    fn lineage(incarnation: &str, retired: &[(&str, u64)]) -> Lineage {
        Lineage {
            incarnation: incarnation.to_string(),
            retired: retired
                .iter()
                .map(|(address, count)| (address.to_string(), *count))
                .collect(),
        }
    }

    #[test]
    fn a_token_is_stable_and_changes_with_everything_it_is_derived_from() {
        let nat = Address::new(ResourceKind::NatGateway, "a");
        let tokens = ClientTokens::new("c.example.com", lineage("1111", &[]));
        let token = tokens.token(&nat, &["subnet-1", "eipalloc-1"]);
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_eq!(token, tokens.token(&nat, &["subnet-1", "eipalloc-1"]));

        let others = [
            tokens.token(&nat, &["subnet-2", "eipalloc-1"]),
            tokens.token(&nat, &["subnet-1eipalloc-1"]),
            tokens.token(
                &Address::new(ResourceKind::NatGateway, "b"),
                &["subnet-1", "eipalloc-1"],
            ),
            ClientTokens::new("d.example.com", lineage("1111", &[]))
                .token(&nat, &["subnet-1", "eipalloc-1"]),
            ClientTokens::new("c.example.com", lineage("2222", &[]))
                .token(&nat, &["subnet-1", "eipalloc-1"]),
            ClientTokens::new("c.example.com", lineage("1111", &[(&nat.to_string(), 1)]))
                .token(&nat, &["subnet-1", "eipalloc-1"]),
        ];
        for other in others {
            assert_ne!(token, other);
        }
        // Another address's deletions do not matter.
        let unrelated = lineage("1111", &[("aws_nat_gateway.b", 3)]);
        assert_eq!(
            token,
            ClientTokens::new("c.example.com", unrelated).token(&nat, &["subnet-1", "eipalloc-1"])
        );
    }
}
