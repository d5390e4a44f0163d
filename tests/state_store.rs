//! The state store contract, checked on the local directory store and on S3 (the moto
//! emulator): atomic objects, listing, conditional writes, and the cluster lock.

mod common;

use rafter::state::ForceUnlock;

use std::time::Duration;

use rafter::state::{
    ClusterLock, LocalStore, LockError, Precondition, S3Store, StateError, StateStore,
};

async fn s3_store(label: &str) -> S3Store {
    let client = common::moto::s3_client();
    let bucket = common::moto::new_bucket(&client, label).await;
    S3Store::new(client, bucket, "clusters/")
}

/// What every store must do.
async fn conformance(store: &impl StateStore) {
    assert_eq!(store.read("a.example.com/config.yaml").await.unwrap(), None);
    store
        .write("a.example.com/config.yaml", b"one")
        .await
        .unwrap();
    store
        .write("a.example.com/config.yaml", b"two")
        .await
        .unwrap();
    store
        .write("a.example.com/pki/ca.key", b"secret")
        .await
        .unwrap();
    store
        .write("b.example.com/config.yaml", b"b")
        .await
        .unwrap();
    assert_eq!(
        store
            .read("a.example.com/config.yaml")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"two"[..])
    );
    assert_eq!(
        store.list("").await.unwrap(),
        [
            "a.example.com/config.yaml",
            "a.example.com/pki/ca.key",
            "b.example.com/config.yaml"
        ]
    );
    assert_eq!(store.list("a.example.com").await.unwrap().len(), 2);

    // Conditional writes: create-only, then compare-and-swap on the version read.
    let key = "a.example.com/resources.json";
    let first = store
        .write_if(key, b"g1", Precondition::Absent)
        .await
        .unwrap();
    assert!(matches!(
        store.write_if(key, b"x", Precondition::Absent).await,
        Err(StateError::PreconditionFailed { .. })
    ));
    let read = store.read_versioned(key).await.unwrap().unwrap();
    assert_eq!(
        (read.data.as_slice(), read.version.as_str()),
        (&b"g1"[..], first.as_str())
    );
    let second = store
        .write_if(key, b"g2", Precondition::Version(first.clone()))
        .await
        .unwrap();
    assert_ne!(first, second);
    assert!(
        matches!(
            store
                .write_if(key, b"stale", Precondition::Version(first))
                .await,
            Err(StateError::PreconditionFailed { .. })
        ),
        "a stale writer must not overwrite newer state"
    );
    assert_eq!(store.read(key).await.unwrap().as_deref(), Some(&b"g2"[..]));

    store.delete("b.example.com/config.yaml").await.unwrap();
    store.delete("b.example.com/config.yaml").await.unwrap();
    // A cluster whose name extends another's keeps its state when the other is deleted.
    store
        .write("a.example.com.au/config.yaml", b"neighbour")
        .await
        .unwrap();
    store.delete_prefix("a.example.com").await.unwrap();
    assert_eq!(
        store.list("").await.unwrap(),
        vec!["a.example.com.au/config.yaml".to_string()]
    );
    store.delete_prefix("a.example.com.au").await.unwrap();
    assert!(store.list("").await.unwrap().is_empty());
    assert!(store.write("../outside", b"x").await.is_err());
}

async fn lock_behaviour(store: &impl StateStore) {
    let lease = Duration::from_secs(600);
    let lock = ClusterLock::acquire(
        store,
        "c.example.com",
        "update cluster",
        lease,
        &ForceUnlock::Never,
    )
    .await
    .unwrap();
    let refused = ClusterLock::acquire(
        store,
        "c.example.com",
        "update cluster",
        lease,
        &ForceUnlock::IfExpired,
    )
    .await
    .unwrap_err();
    match &refused {
        LockError::Held {
            holder,
            operation,
            expired,
            ..
        } => {
            assert!(
                holder.contains(&format!("pid {}", std::process::id())),
                "{holder}"
            );
            assert_eq!(operation, "update cluster");
            assert!(!expired);
        }
        other => panic!("expected Held, got {other}"),
    }
    assert!(
        refused.hint().unwrap().contains("wait"),
        "a live lock is never broken, even with --force-unlock"
    );
    lock.release().await.unwrap();
    let again = ClusterLock::acquire(
        store,
        "c.example.com",
        "delete cluster",
        lease,
        &ForceUnlock::Never,
    )
    .await
    .unwrap();
    again.release().await.unwrap();

    // An expired lock is broken only when asked, and its old holder then finds out.
    let mut stale = ClusterLock::acquire(
        store,
        "d.example.com",
        "update cluster",
        Duration::from_secs(1),
        &ForceUnlock::Never,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let held = ClusterLock::acquire(
        store,
        "d.example.com",
        "update cluster",
        lease,
        &ForceUnlock::Never,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(held, LockError::Held { expired: true, .. }),
        "{held}"
    );
    assert!(held.hint().unwrap().contains("--force-unlock"));
    let breaker = ClusterLock::acquire(
        store,
        "d.example.com",
        "update cluster",
        lease,
        &ForceUnlock::IfExpired,
    )
    .await
    .unwrap();
    assert!(matches!(stale.renew().await, Err(LockError::Lost { .. })));
    breaker.release().await.unwrap();
}

/// Twenty runs race for one lock: exactly one wins.
async fn lock_race<S: StateStore>(store: &S) {
    let attempts = (0..20).map(|_| {
        ClusterLock::acquire(
            store,
            "race.example.com",
            "update cluster",
            Duration::from_secs(600),
            &ForceUnlock::Never,
        )
    });
    let results = futures::future::join_all(attempts).await;
    let winners = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(
        winners,
        1,
        "{:?}",
        results
            .iter()
            .map(|r| r.as_ref().map(|_| "won").map_err(ToString::to_string))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn local_store_conforms() {
    let root = tempfile::tempdir().unwrap();
    conformance(&LocalStore::new(root.path())).await;
}

#[tokio::test]
async fn s3_store_conforms() {
    conformance(&s3_store("conformance").await).await;
}

#[tokio::test]
async fn s3_objects_are_encrypted_and_prefixed() {
    let store = s3_store("sse").await;
    store
        .write("e.example.com/config.yaml", b"x")
        .await
        .unwrap();
    let client = common::moto::s3_client();
    let bucket = store
        .url()
        .trim_start_matches("s3://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let head = client
        .head_object()
        .bucket(&bucket)
        .key("clusters/e.example.com/config.yaml")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption().map(|sse| sse.as_str()),
        Some("AES256")
    );
}

#[tokio::test]
async fn local_lock() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path());
    lock_behaviour(&store).await;
    lock_race(&store).await;
}

#[tokio::test]
async fn s3_lock() {
    let store = s3_store("lock").await;
    lock_behaviour(&store).await;
    lock_race(&store).await;
}

/// An S3 store reached through the fault proxy, so the store behaves as `config` says.
async fn s3_store_through(
    label: &str,
    config: common::proxy::FaultConfig,
) -> (S3Store, String, common::proxy::FaultProxy) {
    let bucket = common::moto::new_bucket(&common::moto::s3_client(), label).await;
    let proxy = common::proxy::FaultProxy::start(&common::moto::moto().endpoint, config);
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&proxy.sdk_config())
            .force_path_style(true)
            .build(),
    );
    (S3Store::new(client, &bucket, "clusters/"), bucket, proxy)
}

#[tokio::test]
async fn a_store_that_ignores_conditional_writes_is_refused_for_locking() {
    let (store, bucket, _proxy) = s3_store_through(
        "unconditional",
        common::proxy::FaultConfig {
            ignore_conditions: true,
            ..Default::default()
        },
    )
    .await;
    let refused = ClusterLock::acquire(
        &store,
        "c.example.com",
        "update cluster",
        Duration::from_secs(60),
        &ForceUnlock::Never,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(refused, LockError::Unconditional { .. }),
        "{refused}"
    );
    assert!(refused.hint().unwrap().contains("If-None-Match"));
    // Nothing is left behind: no lock, no probe.
    assert_eq!(
        store.list("c.example.com").await.unwrap(),
        Vec::<String>::new()
    );

    // The same bucket straight to the emulator, which honours conditions, locks.
    let honest = S3Store::new(common::moto::s3_client(), bucket, "clusters/");
    let lock = ClusterLock::acquire(
        &honest,
        "c.example.com",
        "update cluster",
        Duration::from_secs(60),
        &ForceUnlock::Never,
    )
    .await
    .unwrap();
    lock.release().await.unwrap();
}

/// The probe's first create-only write lands and its answer is lost; the S3 client's retry
/// meets it (412). The probe's key is the run's own, so that is its own write, not a store
/// that changed under it: the lock is taken.
#[tokio::test]
async fn a_probe_whose_answer_was_lost_is_recognised_as_ours() {
    let (store, _, proxy) = s3_store_through(
        "lost-probe",
        common::proxy::FaultConfig {
            lose_first_answer_to: Some("PUT /c.example.com/lock-probes/"),
            ..Default::default()
        },
    )
    .await;
    let lock = ClusterLock::acquire(
        &store,
        "c.example.com",
        "update cluster",
        Duration::from_secs(60),
        &ForceUnlock::Never,
    )
    .await
    .expect("the probe's lost answer is not another writer");
    assert_eq!(
        proxy.lost().get("s3 PUT /clusters"),
        Some(&1),
        "{:?}",
        proxy.lost()
    );
    lock.release().await.unwrap();
    assert_eq!(
        store.list("c.example.com").await.unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_lock_whose_answer_was_lost_is_recognised_as_ours() {
    // The lock's PUT takes effect but its answer is lost; the S3 client sends it again and
    // meets its own object (412).
    let (store, _, proxy) = s3_store_through(
        "lost-answer",
        common::proxy::FaultConfig {
            lose_first_answer_to: Some("/c.example.com/lock"),
            ..Default::default()
        },
    )
    .await;
    let lock = ClusterLock::acquire(
        &store,
        "c.example.com",
        "update cluster",
        Duration::from_secs(60),
        &ForceUnlock::Never,
    )
    .await
    .expect("the run holds the lock it wrote");
    assert_eq!(proxy.lost().values().sum::<u64>(), 1, "{:?}", proxy.lost());
    lock.release().await.unwrap();
    assert_eq!(store.read("c.example.com/lock").await.unwrap(), None);
}

/// The lineage idempotency tokens are derived from: chosen with the first write and kept by
/// every later run, counting rafter's deletes per address, new for a cluster made again.
#[tokio::test]
async fn the_resource_record_keeps_its_lineage_across_runs() {
    use rafter::apply::Recorder;
    use rafter::graph::{Address, ResourceKind};
    use rafter::plan::RecordedResource;
    use rafter::state::{ClusterStore, ResourceLedger};

    let directory = tempfile::tempdir().unwrap();
    let store = ClusterStore::new(LocalStore::new(directory.path()));
    let cluster = "lineage.example.com";
    let nat = Address::new(ResourceKind::NatGateway, "a");
    let record = |address: &Address| RecordedResource {
        address: address.clone(),
        outputs: [("id".to_string(), "nat-1".to_string())].into(),
        attributes: Vec::new(),
        dependencies: Vec::new(),
    };

    let first = ResourceLedger::open(&store, cluster).await.unwrap();
    let lineage = first.lineage().await;
    assert_eq!(lineage.incarnation.len(), 32, "{lineage:?}");
    first.record(record(&nat)).await.unwrap();
    drop(first);

    let second = ResourceLedger::open(&store, cluster).await.unwrap();
    assert_eq!(
        second.lineage().await,
        lineage,
        "a rerun derives the same tokens"
    );
    second.forget(&nat).await.unwrap();
    second.record(record(&nat)).await.unwrap();
    second.forget(&nat).await.unwrap();
    drop(second);

    let third = ResourceLedger::open(&store, cluster).await.unwrap();
    let after = third.lineage().await;
    assert_eq!(after.incarnation, lineage.incarnation);
    assert_eq!(after.retired.get(&nat.to_string()), Some(&2));
    drop(third);

    // The cluster deleted (its record with it) and made again: a new incarnation.
    store
        .store()
        .delete(&format!("{cluster}/resources.json"))
        .await
        .unwrap();
    let again = ResourceLedger::open(&store, cluster).await.unwrap();
    assert_ne!(again.lineage().await.incarnation, lineage.incarnation);
    assert!(again.lineage().await.retired.is_empty());
}

/// A write of `resources.json` that took effect but whose answer was lost: the S3 client
/// sends it again and meets a version it did not expect (412). The record recognises its
/// own bytes and goes on, instead of failing the apply with "changed by someone else".
#[tokio::test]
async fn a_record_write_whose_answer_was_lost_is_recognised_as_ours() {
    use rafter::apply::Recorder;
    use rafter::graph::{Address, ResourceKind};
    use rafter::plan::RecordedResource;
    use rafter::state::{ClusterStore, ResourceLedger};

    let (store, _, proxy) = s3_store_through(
        "lost-record",
        common::proxy::FaultConfig {
            lose_first_answer_to: Some("PUT /c.example.com/resources.json"),
            ..Default::default()
        },
    )
    .await;
    let store = ClusterStore::new(store);
    let ledger = ResourceLedger::open(&store, "c.example.com").await.unwrap();
    let vpc = RecordedResource {
        address: Address::new(ResourceKind::Vpc, "main"),
        outputs: [("id".to_string(), "vpc-1".to_string())].into(),
        attributes: Vec::new(),
        dependencies: Vec::new(),
    };
    ledger.record(vpc.clone()).await.expect("the write is ours");
    assert_eq!(
        proxy.lost().get("s3 PUT /clusters"),
        Some(&1),
        "{:?}",
        proxy.lost()
    );
    // The next write compares against the version that landed.
    let subnet = RecordedResource {
        address: Address::new(ResourceKind::Subnet, "a"),
        ..vpc
    };
    ledger.record(subnet).await.unwrap();
    let reopened = ResourceLedger::open(&store, "c.example.com").await.unwrap();
    assert_eq!(reopened.resources().await.len(), 2);
}

/// A lock left by a run of this machine that is gone (killed, its machine rebooted) is
/// broken by the next run at once, which can say why; one of another machine never is; a live
/// lock is broken only when the user names it, and its holder then finds out.
#[tokio::test]
async fn a_gone_holders_lock_is_broken_and_a_live_one_only_by_its_id() {
    use rafter::state::holder::Holder;
    use rafter::state::{Broken, LockRecord};

    let directory = tempfile::tempdir().unwrap();
    let store = LocalStore::new(directory.path());
    let lease = Duration::from_secs(600);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let left_by = |process: Holder| LockRecord {
        id: "left-behind".into(),
        holder: process.describe(),
        process,
        operation: "create cluster".into(),
        acquired_unix: now,
        renewed_unix: now,
        lease_seconds: 900,
    };
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let here = Holder::this_process();
    let dead = Holder {
        pid: dead_pid,
        ..here.clone()
    };
    store
        .write(
            "gone.example.com/lock",
            &serde_json::to_vec(&left_by(dead)).unwrap(),
        )
        .await
        .unwrap();
    let lock = ClusterLock::acquire(
        &store,
        "gone.example.com",
        "update cluster",
        lease,
        &ForceUnlock::Never,
    )
    .await
    .expect("a gone holder's lock is broken");
    let (held, reason) = lock.broken().unwrap();
    assert_eq!(held.id, "left-behind");
    assert!(matches!(reason, Broken::HolderGone(_)), "{reason}");
    assert!(
        reason.to_string().contains("no process with its id"),
        "{reason}"
    );
    lock.release().await.unwrap();

    // Another machine's run cannot be proven gone.
    let elsewhere = Holder {
        host: "build-7".into(),
        pid: dead_pid,
        ..here.clone()
    };
    store
        .write(
            "elsewhere.example.com/lock",
            &serde_json::to_vec(&left_by(elsewhere)).unwrap(),
        )
        .await
        .unwrap();
    let refused = ClusterLock::acquire(
        &store,
        "elsewhere.example.com",
        "update cluster",
        lease,
        &ForceUnlock::IfExpired,
    )
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("lock left-behind"),
        "{refused}"
    );
    assert!(
        refused
            .hint()
            .unwrap()
            .contains("--force-unlock=left-behind"),
        "{:?}",
        refused.hint()
    );

    // A live lock: another id does not break it, its own id does.
    let mut live = ClusterLock::acquire(
        &store,
        "live.example.com",
        "update cluster",
        lease,
        &ForceUnlock::Never,
    )
    .await
    .unwrap();
    let id = live.record().id.clone();
    let wrong = ForceUnlock::Id("not-this-one".into());
    assert!(
        ClusterLock::acquire(&store, "live.example.com", "delete cluster", lease, &wrong)
            .await
            .is_err()
    );
    let breaker = ClusterLock::acquire(
        &store,
        "live.example.com",
        "delete cluster",
        lease,
        &ForceUnlock::Id(id),
    )
    .await
    .unwrap();
    assert!(matches!(breaker.broken(), Some((_, Broken::Named))));
    assert!(matches!(live.renew().await, Err(LockError::Lost { .. })));
    breaker.release().await.unwrap();
}

/// A new cluster's spec whose create-only write landed but lost its answer is the run's own
/// (its retry met it); another spec under that name is still refused.
#[tokio::test]
async fn a_spec_write_whose_answer_was_lost_is_recognised_as_ours() {
    use rafter::state::ClusterStore;

    let (store, _, proxy) = s3_store_through(
        "lost-spec",
        common::proxy::FaultConfig {
            lose_first_answer_to: Some("PUT /s.example.com/config.yaml"),
            ..Default::default()
        },
    )
    .await;
    let store = ClusterStore::new(store);
    store
        .create_spec("s.example.com", "kind: Cluster\n")
        .await
        .expect("the spec that landed is this run's");
    assert_eq!(
        proxy.lost().get("s3 PUT /clusters"),
        Some(&1),
        "{:?}",
        proxy.lost()
    );
    assert!(matches!(
        store.create_spec("s.example.com", "kind: Other\n").await,
        Err(StateError::PreconditionFailed { .. })
    ));
}
