//! `rafter export kubeconfig NAME [--admin[=DURATION] | --exec] [--kubeconfig PATH]
//! [--internal]`: the cluster's context merged into a kubeconfig, with an admin client
//! certificate, or a credential plugin that fetches short-lived ones, on request.

use rafter::bootstrap;
use rafter::kubeconfig::{self, Credential, Entry};
use rafter::pki::{ClusterPki, LeafSpec};
use rafter::spec::{Cluster, Provider};
use rafter::state::{AnyStore, ClusterStore};
use time::OffsetDateTime;

use crate::cli::args::ExportKubeconfigArgs;
use crate::cli::durations::parse_duration;
use crate::cli::failure::{EXIT_FAILURE, EXIT_USAGE, Failure};
use crate::cli::settings;

use super::stored_cluster;

pub async fn run(state: Option<&str>, args: ExportKubeconfigArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let name = &args.name;
    let cluster = stored_cluster::load(&store, name).await?.cluster;
    let validity = args.admin.as_deref().map(parse_duration).transpose()?;
    let server = api_server(&store, &cluster, args.internal).await?;
    let path = args
        .kubeconfig
        .clone()
        .or_else(kubeconfig::default_path)
        .ok_or_else(|| {
            Failure::new(
                EXIT_USAGE,
                "no kubeconfig path: neither KUBECONFIG nor HOME is set",
            )
            .hint("pass --kubeconfig PATH")
        })?;
    let now = OffsetDateTime::now_utc();
    let pki = ClusterPki::load_or_create(store.store(), name, now).await?;
    let credential = match validity {
        Some(validity) => {
            let spec = LeafSpec {
                validity,
                ..LeafSpec::client("kubernetes-admin", Some("system:masters"))
            };
            Some(pki.ca.issue(&spec, now)?)
        }
        None => None,
    };
    // The plugin: this very binary, reading the same state store.
    let command = std::env::current_exe()
        .map(|path| path.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "rafter".to_string());
    let plugin_args = vec![
        "--state".to_string(),
        store.url(),
        "get".to_string(),
        "credentials".to_string(),
        name.clone(),
    ];
    let credential = match (&credential, args.exec) {
        (Some(issued), _) => Some(Credential::Certificate {
            cert_pem: &issued.cert_pem,
            key_pem: issued.key.expose(),
        }),
        (None, true) => Some(Credential::Exec {
            command: &command,
            args: &plugin_args,
        }),
        (None, false) => None,
    };
    kubeconfig::merge_into(
        &path,
        &Entry {
            name,
            server: &server,
            ca_pem: &pki.ca.cert_pem,
            credential,
        },
    )?;
    if args.exec {
        eprintln!(
            "Merged context {name} ({server}) into {}: kubectl gets a 1-hour admin certificate from `rafter get credentials {name}` when it needs one.",
            path.display()
        );
        return Ok(());
    }
    match validity {
        Some(validity) => {
            let until = now + validity;
            eprintln!(
                "Merged context {name} ({server}) into {} with an admin certificate valid until {} {:02}:{:02} UTC.",
                path.display(),
                until.date(),
                until.hour(),
                until.minute()
            );
        }
        None => eprintln!(
            "Merged context {name} ({server}) into {}. It has no credential yet: add --admin for a client certificate.",
            path.display()
        ),
    }
    Ok(())
}

/// On bare hosts the spec's shared endpoint; on AWS `api.<name>` (or `api.internal.<name>`)
/// where the cluster has a DNS zone, else the API load balancer's own name, once it exists.
pub(super) async fn api_server(
    store: &ClusterStore<AnyStore>,
    cluster: &Cluster,
    internal: bool,
) -> anyhow::Result<String> {
    let name = &cluster.metadata.name;
    if cluster.spec.provider == Provider::Ssh {
        return Ok(bootstrap::api_access(cluster, &Default::default())?.server);
    }
    if cluster.spec.dns.is_some() {
        let prefix = if internal { "api.internal" } else { "api" };
        return Ok(format!("https://{prefix}.{name}"));
    }
    let load_balancers = stored_cluster::recorded_load_balancers(store, name).await?;
    let dns_name = if internal {
        load_balancers.for_nodes()
    } else {
        load_balancers.clients.as_deref()
    };
    dns_name
        .map(|dns_name| format!("https://{dns_name}"))
        .ok_or_else(|| {
            Failure::new(
                EXIT_FAILURE,
                format!("cluster {name} has no DNS zone and no API load balancer yet"),
            )
            .hint(format!(
                "create it first with `rafter update cluster {name} --yes`, or set spec.dns.zone"
            ))
            .into()
        })
}
