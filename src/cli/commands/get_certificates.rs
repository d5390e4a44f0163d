//! `rafter get certificates NAME`: the cluster's certificate authorities, their subjects and
//! when they expire (keys are never shown).

use rafter::pki::store::stored_authorities;
use time::OffsetDateTime;

use crate::cli::args::GetCertificatesArgs;
use crate::cli::settings;

use super::stored_cluster;

pub async fn run(state: Option<&str>, args: GetCertificatesArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let name = &args.name;
    stored_cluster::load(&store, name).await?;
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
        let days = (not_after - now).whole_days();
        rows.push([
            object.to_string(),
            subject,
            not_after.date().to_string(),
            if days < 0 {
                format!("expired {} days ago", -days)
            } else {
                format!("{days}d")
            },
        ]);
    }
    print!("{}", crate::cli::output::table(&rows));
    Ok(())
}
