//! Planning time: the `ha-aws` profile and a generated spec with 200 node groups over six
//! zones, from the merged spec to a rendered plan. Reports medians, the time per resource,
//! and how time grows against the number of resources (1.0 = linear).
//!
//! Run: `cargo bench --bench plan`. Target (issue 2): the HA plan in under 20 ms.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rafter::model::build_graph;
use rafter::plan::{self, text::Color};
use rafter::spec::{self, SpecFlags, SpecSources, load::merge_sources, source::Node};

fn ha_document() -> Node {
    let sources = SpecSources {
        profile: Some("ha-aws".into()),
        file: None,
        flags: SpecFlags {
            name: Some("prod.example.com".into()),
            zones: Some(vec![
                "eu-west-1a".into(),
                "eu-west-1b".into(),
                "eu-west-1c".into(),
            ]),
            dns_zone: Some("example.com".into()),
            ..SpecFlags::default()
        },
    };
    merge_sources(&sources).expect("ha-aws example")
}

fn large_document(node_groups: usize) -> Node {
    let mut yaml = String::from(
        "apiVersion: rafter.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: big.example.com\nspec:\n  networking:\n    zones: [us-east-1a, us-east-1b, us-east-1c, us-east-1d, us-east-1e, us-east-1f]\n  controlPlane:\n    count: 5\n  bastion: {}\n  nodeGroups:\n",
    );
    for index in 0..node_groups {
        let zone = ["a", "b", "c", "d", "e", "f"][index % 6];
        yaml.push_str(&format!(
            "    - {{ name: group-{index:03}, instanceType: m7g.large, minSize: 1, maxSize: 4, zones: [us-east-1{zone}] }}\n"
        ));
    }
    spec::source::parse_yaml(&yaml, "generated.yaml").expect("generated spec")
}

/// One full planning pass; returns the number of resources planned.
fn plan_once(document: &Node) -> usize {
    let prepared = spec::prepare(document, Some("s3://bench/clusters/x")).expect("valid spec");
    let graph = build_graph(&prepared.cluster).expect("graph");
    let plan = plan::diff(&prepared.cluster.metadata.name, &graph, &[]).expect("plan");
    black_box(plan::text::render(&plan, Color::Never));
    graph.len()
}

struct Measurement {
    resources: usize,
    median: Duration,
    min: Duration,
}

fn measure(document: &Node, iterations: usize) -> Measurement {
    let resources = plan_once(document);
    let mut samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            black_box(plan_once(black_box(document)));
            start.elapsed()
        })
        .collect();
    samples.sort();
    Measurement {
        resources,
        median: samples[samples.len() / 2],
        min: samples[0],
    }
}

fn report(label: &str, measurement: &Measurement) {
    println!(
        "{label:<28} {:>5} resources  median {:>9.3} ms  min {:>9.3} ms  {:>6.2} µs/resource",
        measurement.resources,
        measurement.median.as_secs_f64() * 1e3,
        measurement.min.as_secs_f64() * 1e3,
        measurement.median.as_secs_f64() * 1e6 / measurement.resources as f64,
    );
}

/// Where the time of one pass goes, stage by stage.
fn stages(label: &str, document: &Node) {
    let start = Instant::now();
    let prepared = spec::prepare(document, Some("s3://bench/clusters/x")).expect("valid spec");
    let prepared_at = start.elapsed();
    let graph = build_graph(&prepared.cluster).expect("graph");
    let graph_at = start.elapsed();
    let plan = plan::diff(&prepared.cluster.metadata.name, &graph, &[]).expect("plan");
    let diff_at = start.elapsed();
    black_box(plan::text::render(&plan, Color::Never));
    let render_at = start.elapsed();
    let ms = |duration: Duration| duration.as_secs_f64() * 1e3;
    println!(
        "{label:<28} stages: spec {:.3} ms, model {:.3} ms, diff {:.3} ms, render {:.3} ms",
        ms(prepared_at),
        ms(graph_at - prepared_at),
        ms(diff_at - graph_at),
        ms(render_at - diff_at)
    );
}

fn main() {
    let ha = measure(&ha_document(), 200);
    let large = measure(&large_document(200), 20);
    let mid = measure(&large_document(100), 20);
    let huge = measure(&large_document(400), 10);
    report("ha-aws", &ha);
    report("100 node groups, 6 zones", &mid);
    report("200 node groups, 6 zones", &large);
    report("400 node groups, 6 zones", &huge);
    stages("ha-aws", &ha_document());
    stages("100 node groups, 6 zones", &large_document(100));
    stages("400 node groups, 6 zones", &large_document(400));
    let time_ratio = large.median.as_secs_f64() / ha.median.as_secs_f64();
    let resource_ratio = large.resources as f64 / ha.resources as f64;
    let doubling = large.median.as_secs_f64() / mid.median.as_secs_f64();
    let doubling_resources = large.resources as f64 / mid.resources as f64;
    println!(
        "time ratio 200-groups / ha-aws: {time_ratio:.2} for {resource_ratio:.2}x the resources (growth {:.2}; 1.00 = linear)",
        time_ratio / resource_ratio
    );
    println!(
        "time ratio 200 / 100 node groups: {doubling:.2} for {doubling_resources:.2}x the resources (growth {:.2}; 1.00 = linear)",
        doubling / doubling_resources
    );
    let target = Duration::from_millis(20);
    println!(
        "ha-aws target < 20 ms: {} ({:.3} ms)",
        if ha.median < target { "met" } else { "MISSED" },
        ha.median.as_secs_f64() * 1e3
    );
}
