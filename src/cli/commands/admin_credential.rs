//! A short-lived admin certificate rafter issues itself from the cluster CA, to speak to the
//! API server as `system:masters` for one command (validation, the drains of an upgrade or
//! a rolling update).

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

/// How long the admin certificate of a command that drains nodes (held in memory only)
/// lasts: long enough for a large cluster's workers.
const DRAIN_CREDENTIAL_VALIDITY: time::Duration = time::Duration::hours(12);

/// The API access that drains nodes for a command (`user` names it in the audit log), each
/// drain at most `drain_timeout` long.
pub(super) async fn drainer(
    store: &ClusterStore<AnyStore>,
    cluster: &Cluster,
    user: &str,
    drain_timeout: &str,
) -> anyhow::Result<rafter::upgrade::drain::Drainer> {
    let within = crate::cli::durations::wait_duration(drain_timeout)?;
    let server = super::export_kubeconfig::api_server(store, cluster, false).await?;
    let credential =
        AdminCredential::issue(store, cluster, server, user, DRAIN_CREDENTIAL_VALIDITY).await?;
    let client = rafter::validate::kubernetes::client(&credential.access())
        .await
        .map_err(|error| {
            crate::cli::failure::Failure::new(
                crate::cli::failure::EXIT_FAILURE,
                format!("no API client for the drains: {error}"),
            )
            .hint("--no-drain goes on without draining")
        })?;
    Ok(rafter::upgrade::drain::Drainer { client, within })
}
