//! A short-lived admin certificate rafter issues itself from the cluster CA, to speak to the
//! API server as `system:masters` for one command (validation, an upgrade's drains).

use rafter::pki::{ClusterPki, Issued, LeafSpec};
use rafter::spec::Cluster;
use rafter::state::{AnyStore, ClusterStore};
use rafter::validate::kubernetes::Access;
use time::OffsetDateTime;

pub(super) struct AdminCredential {
    server: String,
    ca_pem: String,
    issued: Issued,
}

impl AdminCredential {
    /// A certificate for `user`, valid for `validity`, to reach `server`.
    pub(super) async fn issue(
        store: &ClusterStore<AnyStore>,
        cluster: &Cluster,
        server: String,
        user: &str,
        validity: time::Duration,
    ) -> anyhow::Result<Self> {
        let now = OffsetDateTime::now_utc();
        let pki = ClusterPki::load_or_create(store.store(), &cluster.metadata.name, now).await?;
        let issued = pki.ca.issue(
            &LeafSpec {
                validity,
                ..LeafSpec::client(user, Some("system:masters"))
            },
            now,
        )?;
        Ok(Self {
            server,
            ca_pem: pki.ca.cert_pem,
            issued,
        })
    }

    pub(super) fn access(&self) -> Access<'_> {
        Access {
            server: &self.server,
            ca_pem: &self.ca_pem,
            cert_pem: &self.issued.cert_pem,
            key_pem: self.issued.key.expose(),
        }
    }
}
