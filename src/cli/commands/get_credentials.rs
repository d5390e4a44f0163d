//! `rafter get credentials NAME [--valid-for DURATION]`: a client-go `ExecCredential` with a
//! fresh admin certificate (default one hour), for kubectl's credential plugin set up by
//! `export kubeconfig --exec`. Prints JSON on stdout, nothing else.

use rafter::kubeconfig::exec_credential;
use rafter::pki::{ClusterPki, LeafSpec};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::args::GetCredentialsArgs;
use crate::cli::settings;

use super::stored_cluster;
use crate::cli::durations::parse_duration;

pub async fn run(state: Option<&str>, args: GetCredentialsArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let name = &args.name;
    stored_cluster::load(&store, name).await?;
    let validity = parse_duration(&args.valid_for)?;
    let now = OffsetDateTime::now_utc();
    let pki = ClusterPki::load_or_create(store.store(), name, now).await?;
    let spec = LeafSpec {
        validity,
        ..LeafSpec::client("kubernetes-admin", Some("system:masters"))
    };
    let issued = pki.ca.issue(&spec, now)?;
    let expires = (now + validity).format(&Rfc3339)?;
    let credential = exec_credential(&issued.cert_pem, issued.key.expose(), &expires);
    println!("{}", serde_json::to_string(&credential)?);
    Ok(())
}
