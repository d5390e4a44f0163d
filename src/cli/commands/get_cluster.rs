//! `rafter get cluster NAME`: the full, completed spec.

use rafter::spec;

use crate::cli::args::{GetClusterArgs, SpecFormat};
use crate::cli::settings;

use super::stored_cluster;

pub async fn run(state: Option<&str>, args: GetClusterArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let prepared = stored_cluster::load(&store, &args.name).await?;
    match args.output {
        SpecFormat::Yaml => print!("{}", spec::to_yaml(&prepared.cluster)?),
        SpecFormat::Json => println!("{}", serde_json::to_string_pretty(&prepared.cluster)?),
    }
    Ok(())
}
