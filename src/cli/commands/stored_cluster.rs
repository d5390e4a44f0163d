//! Loading a cluster's stored spec, shared by the commands that take a cluster name.

use anyhow::Context;
use rafter::spec::{self, PreparedSpec, load::parse_stored};
use rafter::state::{ClusterStore, StateStore};

use crate::cli::Failure;

/// The stored, completed spec of `name`, validated again (an older rafter may have written it).
pub async fn load<S: StateStore>(
    store: &ClusterStore<S>,
    name: &str,
) -> anyhow::Result<PreparedSpec> {
    let text = store
        .read_spec(name)
        .await?
        .ok_or_else(|| Failure::cluster_not_found(name, &store.url()))?;
    let label = format!("{}/{}", store.url(), rafter::state::layout::spec_key(name));
    let document = parse_stored(&text, &label)?;
    let prepared = spec::prepare(&document, Some(&store.config_base(name)))
        .with_context(|| format!("the stored spec of cluster {name} is not valid"))?;
    Ok(prepared)
}

/// The spec an unfinished operation's `journal` brings cluster `name` to (`what`: the
/// operation, for the error when the journal holds none that can be read).
pub fn journal_target(
    name: &str,
    config_base: &str,
    journal: &rafter::state::journal::Journal,
    what: &str,
) -> anyhow::Result<spec::Cluster> {
    let unreadable = || {
        Failure::new(
            crate::cli::failure::EXIT_FAILURE,
            format!("the journal of cluster {name}'s unfinished {what} holds no readable spec"),
        )
        .hint(format!(
            "move {} aside to plan the {what} again",
            rafter::state::layout::operation_journal_key(name, &journal.operation)
        ))
    };
    let text = journal.target.as_deref().ok_or_else(unreadable)?;
    let document = parse_stored(text, &format!("the {what} journal")).map_err(|_| unreadable())?;
    Ok(spec::prepare(&document, Some(config_base))
        .map_err(|_| unreadable())?
        .cluster)
}

/// The DNS name of the cluster's API load balancer, once it exists (AWS).
pub async fn recorded_load_balancers<S: StateStore>(
    store: &ClusterStore<S>,
    name: &str,
) -> anyhow::Result<rafter::bootstrap::ApiLoadBalancerNames> {
    let recorded = store.read_resources(name).await?;
    Ok(rafter::bootstrap::ApiLoadBalancerNames::recorded(&recorded))
}
