//! Shared test helpers: example clusters for every profile, and the AWS API emulator.
#![allow(dead_code)]

pub mod apply;
pub mod etcd;
pub mod fleet;
pub mod host_assets;
pub mod imds;
pub mod inventory;
pub mod moto;
pub mod proxy;
pub mod testbed;
pub mod tools;
pub mod upgrade_bed;

use rafter::graph::ResourceGraph;
use rafter::model::build_graph;
use rafter::spec::{self, Cluster, SpecFlags, SpecSources};

/// A throwaway public key (never used to log in anywhere).
pub const EXAMPLE_PUBLIC_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMcRWkpRNHvXwqUU0QXI8WyNHXZ1Tf0DMRpXr5c9LNd7 example@rafter";

/// Profiles and the flags their example cluster is created with.
pub fn example_sources(profile: &str) -> SpecSources {
    let flags = match profile {
        "dev-aws" => SpecFlags {
            name: Some("dev.example.com".into()),
            zones: Some(vec!["eu-west-1a".into()]),
            ssh_public_key: Some(EXAMPLE_PUBLIC_KEY.into()),
            ..SpecFlags::default()
        },
        "ha-aws" => SpecFlags {
            name: Some("prod.example.com".into()),
            zones: Some(vec![
                "eu-west-1a".into(),
                "eu-west-1b".into(),
                "eu-west-1c".into(),
            ]),
            dns_zone: Some("example.com".into()),
            ..SpecFlags::default()
        },
        "ha-ssh" => SpecFlags {
            name: Some("edge.example.com".into()),
            ..SpecFlags::default()
        },
        other => panic!("no example for profile {other}"),
    };
    SpecSources {
        profile: Some(profile.into()),
        file: None,
        flags,
    }
}

pub const AWS_PROFILES: [&str; 2] = ["dev-aws", "ha-aws"];
pub const ALL_PROFILES: [&str; 3] = ["dev-aws", "ha-aws", "ha-ssh"];

/// The state store location examples are planned against (fixed, so outputs are stable).
pub fn example_config_base(name: &str) -> String {
    format!("s3://rafter-state-example/clusters/{name}")
}

pub fn example_cluster(profile: &str) -> Cluster {
    let sources = example_sources(profile);
    let name = sources.flags.name.clone().unwrap_or_default();
    spec::load(&sources, Some(&example_config_base(&name)))
        .unwrap_or_else(|error| panic!("example for {profile} is invalid: {error}"))
        .cluster
}

pub fn example_graph(profile: &str) -> (Cluster, ResourceGraph) {
    let cluster = example_cluster(profile);
    let graph = build_graph(&cluster).unwrap();
    (cluster, graph)
}
