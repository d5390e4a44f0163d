//! Snapshots of the plan (text and JSON) for every profile, and the completed specs.

mod common;

use common::{ALL_PROFILES, example_cluster, example_graph};
use rafter::plan::{self, text::Color};
use rafter::spec;

#[test]
fn plan_text_for_every_profile() {
    for profile in ALL_PROFILES {
        let (cluster, graph) = example_graph(profile);
        let plan = plan::diff(&cluster.metadata.name, &graph, &[]).unwrap();
        insta::assert_snapshot!(
            format!("plan-{profile}"),
            plan::text::render(&plan, Color::Never)
        );
    }
}

#[test]
fn plan_json_for_every_profile() {
    for profile in ALL_PROFILES {
        let (cluster, graph) = example_graph(profile);
        let plan = plan::diff(&cluster.metadata.name, &graph, &[]).unwrap();
        let json = serde_json::to_string_pretty(&plan::json::render(&plan)).unwrap();
        insta::assert_snapshot!(format!("plan-json-{profile}"), json);
    }
}

#[test]
fn completed_spec_for_every_profile() {
    for profile in ALL_PROFILES {
        insta::assert_snapshot!(
            format!("spec-{profile}"),
            spec::to_yaml(&example_cluster(profile)).unwrap()
        );
    }
}

#[test]
fn printed_spec_reads_back_to_the_same_cluster() {
    for profile in ALL_PROFILES {
        let cluster = example_cluster(profile);
        let yaml = spec::to_yaml(&cluster).unwrap();
        let document = spec::load::parse_stored(&yaml, "printed.yaml").unwrap();
        let again = spec::prepare(&document, cluster.spec.config_base.as_deref())
            .unwrap()
            .cluster;
        assert_eq!(
            again, cluster,
            "{profile}: get cluster -o yaml is not a faithful input"
        );
    }
}

#[test]
fn plans_are_deterministic() {
    for profile in ALL_PROFILES {
        let render = || {
            let (cluster, graph) = example_graph(profile);
            let plan = plan::diff(&cluster.metadata.name, &graph, &[]).unwrap();
            plan::text::render(&plan, Color::Never)
        };
        assert_eq!(render(), render(), "{profile}");
    }
}

#[test]
fn secrets_never_appear_in_plans() {
    // User-data may carry bootstrap material: plans show its size and digest, never content.
    let (cluster, graph) = example_graph("ha-aws");
    let plan = plan::diff(&cluster.metadata.name, &graph, &[]).unwrap();
    let text = plan::text::render(&plan, Color::Never);
    let json = plan::json::render(&plan).to_string();
    for output in [&text, &json] {
        assert!(
            !output.contains("RAFTER_CONFIG_BASE"),
            "user-data content leaked into a plan"
        );
    }
    assert!(
        text.contains("user_data     = (sensitive value)"),
        "user-data is not marked sensitive"
    );
}
