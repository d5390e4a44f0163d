//! `rafter get clusters`: every cluster of the state store.

use rafter::spec::{self, Cluster, Provider};

use crate::cli::args::{GetClustersArgs, ListFormat};
use crate::cli::settings;

use super::stored_cluster;

pub async fn run(state: Option<&str>, args: GetClustersArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let mut clusters = Vec::new();
    for name in store.list_clusters().await? {
        clusters.push(stored_cluster::load(&store, &name).await?.cluster);
    }
    match args.output {
        ListFormat::Table => print!("{}", table(&clusters)),
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&clusters)?),
        ListFormat::Yaml => {
            for cluster in &clusters {
                print!("---\n{}", spec::to_yaml(cluster)?);
            }
        }
    }
    if clusters.is_empty() {
        eprintln!("No clusters in {}.", store.url());
    }
    Ok(())
}

fn table(clusters: &[Cluster]) -> String {
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
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
