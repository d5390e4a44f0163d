//! The cluster's authorities in the state store: `<cluster>/pki/<name>.pem`, each one object
//! holding the certificate and its key (so a crash never leaves half a CA), created once with
//! a create-only write (two racing runs end up with the same CA) and read back on every run.
//! Objects are 0600 locally and server-side encrypted in S3, like all state.

use time::OffsetDateTime;

use super::authority::Authority;
use super::{PkiError, Secret};
use crate::state::{Precondition, StateError, StateStore};

const CERTIFICATE_END: &str = "-----END CERTIFICATE-----";

/// Everything the cluster's certificates are issued from.
#[derive(Debug, Clone)]
pub struct ClusterPki {
    /// Signs the API server's and kubelets' certificates and the clients' of the API.
    pub ca: Authority,
    /// Signs etcd's server, peer and client certificates only.
    pub etcd_ca: Authority,
    /// Signs the API server's client certificate for extension API servers.
    pub front_proxy_ca: Authority,
    /// Signs service-account tokens (the API server holds the private half).
    pub service_account: Secret,
}

pub(super) fn key_of(cluster: &str, name: &str) -> String {
    crate::state::layout::pki_key(cluster, &format!("{name}.pem"))
}

/// The cluster's authorities: object name in `pki/` and common name.
pub const AUTHORITIES: [(&str, &str); 3] = [
    ("ca", "kubernetes"),
    ("etcd-ca", "etcd-ca"),
    ("front-proxy-ca", "front-proxy-ca"),
];

/// The authorities already in the store, by object name; none is made.
pub async fn stored_authorities(
    store: &impl StateStore,
    cluster: &str,
) -> Result<Vec<(&'static str, Authority)>, PkiError> {
    let mut found = Vec::new();
    for (name, _) in AUTHORITIES {
        let key = key_of(cluster, name);
        if let Some(bundle) = store.read(&key).await? {
            found.push((name, parse_authority(&key, &bundle)?));
        }
    }
    Ok(found)
}

impl ClusterPki {
    /// The cluster's PKI from the store, made (once) where it does not exist yet.
    pub async fn load_or_create(
        store: &impl StateStore,
        cluster: &str,
        now: OffsetDateTime,
    ) -> Result<Self, PkiError> {
        let [ca, etcd_ca, front_proxy_ca] = AUTHORITIES;
        Ok(Self {
            ca: authority(store, cluster, ca.0, ca.1, now).await?,
            etcd_ca: authority(store, cluster, etcd_ca.0, etcd_ca.1, now).await?,
            front_proxy_ca: authority(store, cluster, front_proxy_ca.0, front_proxy_ca.1, now)
                .await?,
            service_account: service_account_key(store, cluster).await?,
        })
    }
}

async fn authority(
    store: &impl StateStore,
    cluster: &str,
    name: &str,
    common_name: &str,
    now: OffsetDateTime,
) -> Result<Authority, PkiError> {
    let key = key_of(cluster, name);
    let bundle = match store.read(&key).await? {
        Some(bundle) => bundle,
        None => {
            let made = Authority::create(common_name, now)?;
            let bundle = format!("{}{}", made.cert_pem, made.key.expose());
            create_once(store, &key, bundle.into_bytes()).await?
        }
    };
    parse_authority(&key, &bundle)
}

async fn service_account_key(store: &impl StateStore, cluster: &str) -> Result<Secret, PkiError> {
    let key = key_of(cluster, "service-account");
    let pem = match store.read(&key).await? {
        Some(pem) => pem,
        None => {
            let made = rcgen::KeyPair::generate().map_err(|source| PkiError::Generate {
                what: "the service-account key".to_string(),
                source,
            })?;
            create_once(store, &key, made.serialize_pem().into_bytes()).await?
        }
    };
    let pem = String::from_utf8_lossy(&pem).into_owned();
    rcgen::KeyPair::from_pem(&pem).map_err(|source| PkiError::Corrupt {
        key,
        what: "private key",
        source,
    })?;
    Ok(Secret::new(pem))
}

/// The public half of a stored private key, in PEM (the API server's `sa.pub`).
pub fn public_key_pem(private: &Secret) -> Result<String, PkiError> {
    rcgen::KeyPair::from_pem(private.expose())
        .map(|pair| pair.public_key_pem())
        .map_err(|error| PkiError::Unreadable {
            detail: format!("the service-account key: {error}"),
        })
}

/// Writes `data` at `key` unless something is there already; returns what is there after.
pub(super) async fn create_once(
    store: &impl StateStore,
    key: &str,
    data: Vec<u8>,
) -> Result<Vec<u8>, PkiError> {
    match store.write_if(key, &data, Precondition::Absent).await {
        Ok(_) => Ok(data),
        // Another run made it first: theirs is the cluster's.
        Err(StateError::PreconditionFailed { .. }) => Ok(store.read(key).await?.unwrap_or(data)),
        Err(error) => Err(error.into()),
    }
}

/// A stored authority: its certificate, then its key, checked to parse and to belong together.
fn parse_authority(key: &str, bundle: &[u8]) -> Result<Authority, PkiError> {
    let text = String::from_utf8_lossy(bundle);
    let corrupt = |what, source| PkiError::Corrupt {
        key: key.to_string(),
        what,
        source,
    };
    let split = text
        .find(CERTIFICATE_END)
        .map(|at| at + CERTIFICATE_END.len())
        .ok_or_else(|| corrupt("CA bundle", rcgen::Error::CouldNotParseCertificate))?;
    let (cert_pem, key_pem) = text.split_at(split);
    let cert_pem = format!("{}\n", cert_pem.trim());
    let signing_key = rcgen::KeyPair::from_pem(key_pem.trim())
        .map_err(|source| corrupt("private key", source))?;
    rcgen::Issuer::from_ca_cert_pem(&cert_pem, signing_key)
        .map_err(|source| corrupt("CA certificate", source))?;
    Ok(Authority {
        cert_pem,
        key: Secret::new(format!("{}\n", key_pem.trim())),
    })
}
