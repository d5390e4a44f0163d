//! The leaf certificates a bare host was given, kept in the state store
//! (`<cluster>/pki/nodes/<node>.json`) so that a rerun hands the host the same files: a
//! certificate is reissued only when what it must say changed (names, addresses, CA) or when
//! it nears its end, never on every run (which would restart etcd and the API server each
//! time). One object per node, written once per run and only when something was issued.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::authority::certificate_validity;
use super::{Authority, Issued, LeafSpec, PkiError, Secret};
use crate::state::{StateStore, layout};

/// A certificate with less than this left is reissued (a third of a leaf's year).
pub const RENEW_BEFORE: Duration = Duration::days(120);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredLeaf {
    /// A digest of what the certificate says and of the CA that signed it.
    request: String,
    cert: String,
    key: String,
}

/// One node's leaf certificates, by file stem (`apiserver`, `etcd/server`, `kubelet.conf`…).
#[derive(Debug, Default)]
pub struct NodeLeaves {
    /// The state store key; `None` for a throwaway set that is never saved.
    key: Option<String>,
    leaves: BTreeMap<String, StoredLeaf>,
    changed: bool,
}

fn request_digest(authority: &Authority, spec: &LeafSpec) -> String {
    let mut digest = Sha256::new();
    digest.update(format!("{spec:?}"));
    digest.update(&authority.cert_pem);
    format!("{:x}", digest.finalize())
}

impl NodeLeaves {
    /// A set that issues every certificate anew and is not kept (an AWS worker has none, an
    /// audit export of a host that never ran).
    pub fn fresh() -> Self {
        Self::default()
    }

    /// The certificates stored for `node` of `cluster` (none yet: an empty set).
    pub async fn load(
        store: &impl StateStore,
        cluster: &str,
        node: &str,
    ) -> Result<Self, PkiError> {
        let key = layout::node_leaves_key(cluster, node);
        let leaves = match store.read(&key).await? {
            None => BTreeMap::new(),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|_| PkiError::CorruptSecret {
                key: key.clone(),
                what: "set of node certificates",
            })?,
        };
        Ok(Self {
            key: Some(key),
            leaves,
            changed: false,
        })
    }

    /// The certificate `name` for `spec` from `authority`: the stored one while it says the
    /// same and has more than [`RENEW_BEFORE`] left at `now`, else a new one.
    pub fn issue(
        &mut self,
        name: &str,
        authority: &Authority,
        spec: &LeafSpec,
        now: OffsetDateTime,
    ) -> Result<Issued, PkiError> {
        let request = request_digest(authority, spec);
        if let Some(stored) = self.leaves.get(name)
            && stored.request == request
            && let Ok((_, _, not_after)) = certificate_validity(&stored.cert)
            && not_after - now > RENEW_BEFORE
        {
            return Ok(Issued {
                cert_pem: stored.cert.clone(),
                key: Secret::new(stored.key.clone()),
            });
        }
        let issued = authority.issue(spec, now)?;
        self.leaves.insert(
            name.to_string(),
            StoredLeaf {
                request,
                cert: issued.cert_pem.clone(),
                key: issued.key.expose().to_string(),
            },
        );
        self.changed = true;
        Ok(issued)
    }

    /// The certificate of the set that expires first, by name, and when (none for an empty
    /// set).
    pub fn first_to_expire(&self) -> Option<(String, OffsetDateTime)> {
        self.leaves
            .iter()
            .filter_map(|(name, leaf)| {
                let (_, _, not_after) = certificate_validity(&leaf.cert).ok()?;
                Some((name.clone(), not_after))
            })
            .min_by_key(|(_, not_after)| *not_after)
    }

    /// The nodes of `cluster` whose certificates are kept.
    pub async fn stored_nodes(
        store: &impl StateStore,
        cluster: &str,
    ) -> Result<Vec<String>, PkiError> {
        let prefix = layout::node_leaves_prefix(cluster);
        // Listed without the trailing `/`, which a local store does not take as a key.
        Ok(store
            .list(prefix.trim_end_matches('/'))
            .await?
            .iter()
            .filter_map(|key| key.strip_prefix(&prefix)?.strip_suffix(".json"))
            .filter(|node| !node.contains('/'))
            .map(str::to_string)
            .collect())
    }

    /// Whether anything was issued since the set was loaded.
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// Writes the set back if anything was issued (a fresh set is never written).
    pub async fn save(&mut self, store: &impl StateStore) -> Result<(), PkiError> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        if !self.changed {
            return Ok(());
        }
        let bytes =
            serde_json::to_vec_pretty(&self.leaves).map_err(|error| PkiError::Unreadable {
                detail: format!("cannot encode the node certificates: {error}"),
            })?;
        store.write(key, &bytes).await?;
        self.changed = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::leaf::NodeIdentity;
    use crate::state::LocalStore;

    fn node(ip: [u8; 4]) -> LeafSpec {
        LeafSpec::etcd_server(&NodeIdentity {
            hostname: "cp-1".to_string(),
            ips: vec![ip.into()],
        })
    }

    #[tokio::test]
    async fn a_stored_certificate_is_reused_until_its_request_changes_or_it_nears_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let now = OffsetDateTime::now_utc();
        let ca = Authority::create("etcd-ca", now).unwrap();

        let mut leaves = NodeLeaves::load(&store, "c.example.com", "cp-1")
            .await
            .unwrap();
        let first = leaves
            .issue("etcd/server", &ca, &node([10, 0, 0, 1]), now)
            .unwrap();
        assert!(leaves.changed());
        leaves.save(&store).await.unwrap();

        let mut again = NodeLeaves::load(&store, "c.example.com", "cp-1")
            .await
            .unwrap();
        let same = again
            .issue("etcd/server", &ca, &node([10, 0, 0, 1]), now)
            .unwrap();
        assert_eq!(same.cert_pem, first.cert_pem);
        assert_eq!(same.key.expose(), first.key.expose());
        assert!(!again.changed());

        let moved = again
            .issue("etcd/server", &ca, &node([10, 0, 0, 2]), now)
            .unwrap();
        assert_ne!(moved.cert_pem, first.cert_pem);
        assert!(again.changed());

        let other_ca = Authority::create("etcd-ca", now).unwrap();
        let resigned = again
            .issue("etcd/server", &other_ca, &node([10, 0, 0, 2]), now)
            .unwrap();
        assert_ne!(resigned.cert_pem, moved.cert_pem);

        let late = now + Duration::days(365) - RENEW_BEFORE + Duration::days(1);
        let renewed = again
            .issue("etcd/server", &other_ca, &node([10, 0, 0, 2]), late)
            .unwrap();
        assert_ne!(renewed.cert_pem, resigned.cert_pem);
    }

    #[tokio::test]
    async fn the_first_certificate_to_expire_is_named_per_stored_node() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let now = OffsetDateTime::now_utc();
        let ca = Authority::create("etcd-ca", now).unwrap();
        let mut leaves = NodeLeaves::load(&store, "c.example.com", "cp-1")
            .await
            .unwrap();
        assert_eq!(leaves.first_to_expire(), None);
        let earlier = now - Duration::days(100);
        leaves
            .issue("etcd/server", &ca, &node([10, 0, 0, 1]), now)
            .unwrap();
        leaves
            .issue("etcd/peer", &ca, &node([10, 0, 0, 1]), earlier)
            .unwrap();
        leaves.save(&store).await.unwrap();
        let (name, not_after) = leaves.first_to_expire().unwrap();
        assert_eq!(name, "etcd/peer");
        assert!((not_after - (earlier + Duration::days(365))).abs() < Duration::days(2));
        NodeLeaves::load(&store, "c.example.com", "cp-2")
            .await
            .unwrap()
            .save(&store)
            .await
            .unwrap();
        assert_eq!(
            NodeLeaves::stored_nodes(&store, "c.example.com")
                .await
                .unwrap(),
            ["cp-1"]
        );
    }

    #[tokio::test]
    async fn a_fresh_set_is_never_saved_and_a_damaged_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let now = OffsetDateTime::now_utc();
        let ca = Authority::create("kubernetes", now).unwrap();
        let mut fresh = NodeLeaves::fresh();
        fresh
            .issue("apiserver", &ca, &node([10, 0, 0, 1]), now)
            .unwrap();
        fresh.save(&store).await.unwrap();
        assert!(store.list("").await.unwrap().is_empty());

        store
            .write(
                &layout::node_leaves_key("c.example.com", "cp-1"),
                b"{not json",
            )
            .await
            .unwrap();
        let error = NodeLeaves::load(&store, "c.example.com", "cp-1")
            .await
            .unwrap_err();
        assert!(error.to_string().contains("pki/nodes/cp-1.json"), "{error}");
    }
}
