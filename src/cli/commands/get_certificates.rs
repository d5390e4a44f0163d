//! `rafter get certificates NAME`: the cluster's certificate authorities, their subjects and
//! when they expire; then each node's kept leaf certificates (the first to expire), and on
//! AWS when the first of them expires on the member's instance now, as the member reports
//! it. Keys are never shown.

use rafter::pki::NodeLeaves;
use rafter::pki::store::stored_authorities;
use rafter::spec::{Cluster, Provider};
use rafter::state::{AnyStore, ClusterStore};
use rafter::validate::member_reports;
use time::OffsetDateTime;

use crate::cli::args::GetCertificatesArgs;
use crate::cli::settings;

use super::stored_cluster;

pub async fn run(state: Option<&str>, args: GetCertificatesArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let name = &args.name;
    let cluster = stored_cluster::load(&store, name).await?.cluster;
    let authorities = stored_authorities(store.store(), name).await?;
    if authorities.is_empty() {
        eprintln!(
            "Cluster {name} has no certificates yet: they are made on first use (`rafter export kubeconfig {name}`, or the node bootstrap)."
        );
        return Ok(());
    }
    let now = OffsetDateTime::now_utc();
    let mut rows = vec![["NAME", "SUBJECT", "NOT-AFTER", "EXPIRES-IN"].map(String::from)];
    for (object, authority) in &authorities {
        let (subject, _, not_after) = authority.validity()?;
        rows.push([
            object.to_string(),
            subject,
            not_after.date().to_string(),
            expires_in(not_after, now),
        ]);
    }
    print!("{}", crate::cli::output::table(&rows));
    print_nodes(&store, &cluster, now).await
}

/// Each node's leaf certificate that expires first, and on AWS what its instance runs.
async fn print_nodes(
    store: &ClusterStore<AnyStore>,
    cluster: &Cluster,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let name = &cluster.metadata.name;
    let nodes = NodeLeaves::stored_nodes(store.store(), name).await?;
    if nodes.is_empty() {
        return Ok(());
    }
    let on_instances = match cluster.spec.provider {
        Provider::Aws => {
            member_reports::read(store.store(), name, &rafter::rolling::members(cluster)).await?
        }
        Provider::Ssh => Vec::new(),
    };
    let mut rows = vec![
        [
            "NODE",
            "FIRST-TO-EXPIRE",
            "NOT-AFTER",
            "EXPIRES-IN",
            "ON-THE-INSTANCE",
        ]
        .map(String::from),
    ];
    for node in &nodes {
        let leaves = NodeLeaves::load(store.store(), name, node).await?;
        let Some((leaf, not_after)) = leaves.first_to_expire() else {
            continue;
        };
        let running = on_instances
            .iter()
            .find(|(member, _)| member == node)
            .and_then(|(_, report)| report.as_ref())
            .map(|report| match report.certificates_expire.get(..10) {
                Some(date) => format!("{date} ({})", report.instance),
                None => format!("not reported ({})", report.instance),
            })
            .unwrap_or_else(|| "-".to_string());
        rows.push([
            node.clone(),
            leaf,
            not_after.date().to_string(),
            expires_in(not_after, now),
            running,
        ]);
    }
    println!();
    print!("{}", crate::cli::output::table(&rows));
    println!(
        "Leaf certificates are reissued when fewer than {} days remain: `rafter update cluster {name} --yes` reissues them{}.",
        rafter::pki::leaves::RENEW_BEFORE.whole_days(),
        match cluster.spec.provider {
            Provider::Aws => format!(
                ", then `rafter rolling-update cluster {name} --yes` replaces each member whose instance runs an older bundle"
            ),
            Provider::Ssh => " and puts them on the hosts".to_string(),
        }
    );
    Ok(())
}

/// `365d`, or `expired 3 days ago`.
fn expires_in(not_after: OffsetDateTime, now: OffsetDateTime) -> String {
    let days = (not_after - now).whole_days();
    if days < 0 {
        format!("expired {} days ago", -days)
    } else {
        format!("{days}d")
    }
}
