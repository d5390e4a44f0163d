//! `upgrade cluster` on the bare-host test bed (`scripts/testbed.sh`): three control-plane
//! hosts and a worker made by rafter with etcd 3.4.23 and Kubernetes 1.34.2 (stand-in
//! kubelets), upgraded to etcd 3.5.1, then to Kubernetes 1.35.0 (`--no-drain`: no API server
//! runs here), with a writer putting keys into etcd throughout. Reports:
//!
//! - each upgrade's wall time, and each step's parts as rafter measured them (leadership
//!   move, install, gate — the gate is the cluster validating 3 times in a row);
//! - per etcd member, how long systemd saw it down (the restart itself), against its step;
//! - the writer's longest gap between two acknowledged writes (write unavailability) and
//!   its failed puts.
//!
//! Run as root: `scripts/testbed.sh install && cargo bench --bench upgrade`. Hosts u-1..u-4
//! (10.250.0.71-74) are wiped first.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use common::upgrade_bed::{
    CLUSTER, CONTROL_PLANE, Created, FROM_KUBERNETES, TO_KUBERNETES, WORKER, create,
    etcd_down_periods, start_writer, stop_writer,
};

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Each step's line (`[i/N] what`) with the times rafter reported after it.
fn step_times(stderr: &str) -> Vec<(String, String)> {
    let mut steps = Vec::new();
    let mut current: Option<String> = None;
    for line in stderr.lines() {
        if line.starts_with('[') {
            current = line.split(':').next().map(str::to_string);
        } else if let (Some(step), Some(times)) = (&current, line.trim().rsplit_once(" [")) {
            steps.push((step.clone(), times.1.trim_end_matches(']').to_string()));
            current = None;
        }
    }
    steps
}

fn main() {
    let Created {
        testbed,
        rafter,
        etcd_spec,
        kubernetes_spec,
        assets: _assets,
    } = create();

    let began = now();
    start_writer(&testbed);
    let started = Instant::now();
    let (_, etcd_said) = rafter.ok(&["upgrade", "cluster", CLUSTER, "-f", &etcd_spec, "--yes"]);
    let etcd_took = started.elapsed();
    let started = Instant::now();
    let upgrade = [
        "upgrade",
        "cluster",
        CLUSTER,
        "-f",
        &kubernetes_spec,
        "--no-drain",
        "--yes",
    ];
    let (_, kubernetes_said) = rafter.ok(&upgrade);
    let kubernetes_took = started.elapsed();
    let (acknowledged, longest_gap, failed) = stop_writer(&testbed);

    println!(
        "etcd 3.4.23 -> 3.5.1 on 3 members: {:.1} s (preflight, assets staged on every host, 3 steps)",
        etcd_took.as_secs_f64()
    );
    for (step, times) in step_times(&etcd_said) {
        println!("  {step}: {times}");
    }
    for (host, _) in CONTROL_PLANE {
        for (start, end) in etcd_down_periods(&testbed, host)
            .into_iter()
            .filter(|(start, _)| *start >= began)
        {
            println!(
                "  etcd on {host} down {:.2} s (systemd's record)",
                end - start
            );
        }
    }
    println!(
        "Kubernetes {FROM_KUBERNETES} -> {TO_KUBERNETES} on 3 control-plane hosts + 1 worker: {:.1} s",
        kubernetes_took.as_secs_f64()
    );
    for (step, times) in step_times(&kubernetes_said) {
        println!("  {step}: {times}");
    }
    println!(
        "writer: {} acknowledged, {failed} failed, longest write unavailability {:.2} s",
        acknowledged.len(),
        longest_gap.as_secs_f64()
    );
    for (name, _) in CONTROL_PLANE.iter().chain([&WORKER]) {
        testbed.stop(name);
    }
}
