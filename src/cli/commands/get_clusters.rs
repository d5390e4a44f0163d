//! `rafter get clusters`: every cluster of the state store.

use rafter::spec::{self, Cluster, Provider};

use crate::cli::args::{GetClustersArgs, ListFormat};
use crate::cli::failure::{EXIT_FAILURE, Failure};
use crate::cli::settings;

use super::stored_cluster;

pub async fn run(state: Option<&str>, args: GetClustersArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let mut clusters = Vec::new();
    // One cluster whose stored spec cannot be read does not hide the others: it is listed as
    // unreadable, said on stderr, and the command fails after printing the rest.
    let mut unreadable = Vec::new();
    for name in store.list_clusters().await? {
        match stored_cluster::load(&store, &name).await {
            Ok(stored) => clusters.push(stored.cluster),
            Err(error) => unreadable.push((name, error)),
        }
    }
    match args.output {
        ListFormat::Table => print!("{}", table(&clusters, &unreadable)),
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&clusters)?),
        ListFormat::Yaml => {
            for cluster in &clusters {
                print!("---\n{}", spec::to_yaml(cluster)?);
            }
        }
    }
    if clusters.is_empty() && unreadable.is_empty() {
        eprintln!("No clusters in {}.", store.url());
    }
    for (name, error) in &unreadable {
        eprintln!("warning: cluster {name} cannot be read: {error:#}");
    }
    if !unreadable.is_empty() {
        let names: Vec<&str> = unreadable.iter().map(|(name, _)| name.as_str()).collect();
        return Err(Failure::new(
            EXIT_FAILURE,
            format!(
                "{} of {} clusters in {} cannot be read: {}",
                unreadable.len(),
                unreadable.len() + clusters.len(),
                store.url(),
                names.join(", ")
            ),
        )
        .hint("`rafter get cluster NAME` shows where its spec is wrong; fix or restore its config.yaml")
        .into());
    }
    Ok(())
}

fn table(clusters: &[Cluster], unreadable: &[(String, anyhow::Error)]) -> String {
    let mut rows = vec![
        [
            "NAME",
            "PROVIDER",
            "REGION",
            "ZONES",
            "CONTROL-PLANE",
            "NODE-GROUPS",
            "KUBERNETES",
        ]
        .map(String::from),
    ];
    for cluster in clusters {
        let spec = &cluster.spec;
        let (provider, control_plane) = match spec.provider {
            Provider::Aws => ("aws", spec.control_plane.count.to_string()),
            Provider::Ssh => (
                "ssh",
                spec.hosts
                    .iter()
                    .filter(|host| host.role == spec::HostRole::ControlPlane)
                    .count()
                    .to_string(),
            ),
        };
        rows.push([
            cluster.metadata.name.clone(),
            provider.to_string(),
            spec.region.clone().unwrap_or_else(|| "-".into()),
            if spec.networking.zones.is_empty() {
                "-".into()
            } else {
                spec.networking.zones.join(",")
            },
            control_plane,
            spec.node_groups.len().to_string(),
            spec.kubernetes_version.clone(),
        ]);
    }
    for (name, _) in unreadable {
        let mut row = [name.clone(), "(unreadable)".to_string()]
            .into_iter()
            .chain(std::iter::repeat_n("-".to_string(), 5));
        rows.push(std::array::from_fn(|_| row.next().unwrap_or_default()));
    }
    crate::cli::output::table(&rows)
}
