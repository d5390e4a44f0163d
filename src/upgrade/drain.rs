//! Cordon, drain and uncordon a node through the Kubernetes API (kube-rs), as `kubectl
//! drain` does, stricter where a pod would be lost:
//!
//! | rule | source |
//! |---|---|
//! | pods leave through the Eviction API, so PodDisruptionBudgets are honoured | kubectl `drain.go` (`evictPods`); API `pods/{name}/eviction` |
//! | an eviction a budget forbids answers 429, reason `TooManyRequests`, a `DisruptionBudget` cause naming the budget ("The disruption budget web needs 2 healthy pods and has 2 currently") | kubernetes `pkg/registry/core/pod/storage/eviction.go` |
//! | DaemonSet pods stay (their controller would put them back at once); mirror pods (static pods, annotation `kubernetes.io/config.mirror`) cannot be evicted; finished pods need no eviction | kubectl `drain/filters.go` (`daemonSetFilter`, `mirrorPodFilter`, `skipDeletedFilter`) |
//! | a pod no controller owns would be gone for good: kubectl refuses without `--force`; rafter refuses, naming it | kubectl `drain/filters.go` (`unreplicatedFilter`) |
//!
//! A drain that cannot finish names every pod still on the node and why.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, EvictParams, ListParams, Patch, PatchParams};

/// The annotation the kubelet puts on a static pod's mirror.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error("the API server does not answer {what} for node {node}: {problem}")]
    Api {
        node: String,
        what: &'static str,
        problem: String,
    },
    #[error(
        "node {node} did not drain within {within:?}; still on it:\n  {}",
        .pods.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ")
    )]
    Blocked {
        node: String,
        within: Duration,
        pods: Vec<Remaining>,
    },
}

/// How workers leave before their kubelet is replaced (or their instance terminated):
/// through the Kubernetes API.
pub struct Drainer {
    pub client: kube::Client,
    /// The longest one node's drain may take.
    pub within: Duration,
}

/// Between two rounds of a drain's evictions.
const DRAIN_INTERVAL: Duration = Duration::from_secs(5);

impl Drainer {
    /// Cordons and drains every registered node among `nodes` (together); returns those
    /// cordoned. A node the API does not know has no pods to drain.
    pub async fn cordon_and_drain(&self, nodes: &[String]) -> Result<Vec<String>, DrainError> {
        let mut registered = Vec::new();
        for node in nodes {
            if node_known(&self.client, node).await? {
                cordon(&self.client, node, true).await?;
                registered.push(node.clone());
            }
        }
        let drains = futures_util::future::join_all(
            registered
                .iter()
                .map(|node| drain(&self.client, node, self.within, DRAIN_INTERVAL)),
        )
        .await;
        for outcome in drains {
            outcome?;
        }
        Ok(registered)
    }
}

/// A pod still on a node, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remaining {
    /// `namespace/name`.
    pub pod: String,
    pub why: String,
}

impl std::fmt::Display for Remaining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.pod, self.why)
    }
}

/// Marks `node` unschedulable (or schedulable again).
pub async fn cordon(
    client: &kube::Client,
    node: &str,
    unschedulable: bool,
) -> Result<(), DrainError> {
    let patch = serde_json::json!({ "spec": { "unschedulable": unschedulable } });
    Api::<Node>::all(client.clone())
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|error| DrainError::Api {
            node: node.to_string(),
            what: if unschedulable {
                "a cordon"
            } else {
                "an uncordon"
            },
            problem: error.to_string(),
        })?;
    Ok(())
}

/// Whether `node` is registered (the API answers for it).
pub async fn node_known(client: &kube::Client, node: &str) -> Result<bool, DrainError> {
    Api::<Node>::all(client.clone())
        .get_opt(node)
        .await
        .map(|found| found.is_some())
        .map_err(|error| DrainError::Api {
            node: node.to_string(),
            what: "a read of the node",
            problem: error.to_string(),
        })
}

/// What a drain must do about one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Disposition {
    /// Stays (a DaemonSet's, a mirror, or finished).
    Stays,
    /// Being deleted already: wait.
    Leaving,
    /// No controller owns it: evicting it would lose it.
    Unmanaged,
    Evict,
}

fn disposition(pod: &Pod) -> Disposition {
    let meta = &pod.metadata;
    let owners = meta.owner_references.as_deref().unwrap_or_default();
    let mirror = meta
        .annotations
        .as_ref()
        .is_some_and(|annotations| annotations.contains_key(MIRROR_ANNOTATION));
    let finished = pod
        .status
        .as_ref()
        .and_then(|status| status.phase.as_deref())
        .is_some_and(|phase| phase == "Succeeded" || phase == "Failed");
    let daemon = owners
        .iter()
        .any(|owner| owner.kind == "DaemonSet" && owner.controller == Some(true));
    if mirror || finished || daemon {
        Disposition::Stays
    } else if meta.deletion_timestamp.is_some() {
        Disposition::Leaving
    } else if !owners.iter().any(|owner| owner.controller == Some(true)) {
        Disposition::Unmanaged
    } else {
        Disposition::Evict
    }
}

/// Evicts every pod of `node` that must leave, again every `interval` until none is left
/// or `within` has passed; returns how many pods were evicted.
pub async fn drain(
    client: &kube::Client,
    node: &str,
    within: Duration,
    interval: Duration,
) -> Result<usize, DrainError> {
    // A `within` past what the clock can hold never ends on time: no deadline.
    let deadline = Instant::now().checked_add(within);
    let pods_api = Api::<Pod>::all(client.clone());
    let on_node = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let mut evicted = BTreeSet::new();
    loop {
        let pods = pods_api
            .list(&on_node)
            .await
            .map_err(|error| DrainError::Api {
                node: node.to_string(),
                what: "a list of its pods",
                problem: error.to_string(),
            })?;
        let mut remaining = Vec::new();
        for pod in &pods.items {
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let full = format!("{namespace}/{name}");
            let remains = |why: &str| Remaining {
                pod: full.clone(),
                why: why.to_string(),
            };
            match disposition(pod) {
                Disposition::Stays => {}
                Disposition::Leaving => remaining.push(remains("terminating")),
                Disposition::Unmanaged => remaining.push(remains(
                    "no controller owns it: evicting it would delete it for good; delete or move it yourself",
                )),
                Disposition::Evict => {
                    let api = Api::<Pod>::namespaced(client.clone(), &namespace);
                    match api.evict(&name, &EvictParams::default()).await {
                        Ok(_) => {
                            evicted.insert(full.clone());
                            remaining.push(remains("evicted, terminating"));
                        }
                        Err(kube::Error::Api(status)) if status.code == 404 => {}
                        Err(kube::Error::Api(status)) if status.code == 429 => {
                            remaining.push(remains(&refusal(&status)));
                        }
                        Err(error) => {
                            return Err(DrainError::Api {
                                node: node.to_string(),
                                what: "an eviction",
                                problem: format!("{full}: {error}"),
                            });
                        }
                    }
                }
            }
        }
        if remaining.is_empty() {
            return Ok(evicted.len());
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(DrainError::Blocked {
                node: node.to_string(),
                within,
                pods: remaining,
            });
        }
        tokio::time::sleep(interval).await;
    }
}

/// Why the API refused an eviction: its causes (the budget, by name) or its message.
fn refusal(status: &kube::core::Status) -> String {
    let causes: Vec<&str> = status
        .details
        .as_ref()
        .map(|details| {
            details
                .causes
                .iter()
                .map(|cause| cause.message.as_str())
                .filter(|message| !message.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if causes.is_empty() {
        status.message.clone()
    } else {
        format!("{} ({})", status.message, causes.join("; "))
    }
}

#[cfg(test)]
mod tests {
    //! Against a server that answers as the API server does (recorded responses: the
    //! bodies below are the API's own shapes, the 429 one as `eviction.go` builds it).

    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    use super::*;

    /// What the server has been asked (`METHOD PATH BODY`), and what it answers: per
    /// `METHOD path-without-query`, a list of answers used in turn (the last one repeats).
    #[derive(Default)]
    struct Script {
        answers: BTreeMap<String, Vec<(u16, String)>>,
        asked: Vec<String>,
    }

    async fn serve(script: Arc<Mutex<Script>>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let script = script.clone();
                tokio::spawn(async move {
                    let mut reader = BufReader::new(stream);
                    loop {
                        let mut request = String::new();
                        if reader.read_line(&mut request).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut length = 0;
                        loop {
                            let mut line = String::new();
                            reader.read_line(&mut line).await.unwrap();
                            if line.trim().is_empty() {
                                break;
                            }
                            if let Some((name, value)) = line.split_once(':')
                                && name.eq_ignore_ascii_case("content-length")
                            {
                                length = value.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).await.unwrap();
                        let mut parts = request.split_whitespace();
                        let method = parts.next().unwrap_or_default().to_string();
                        let target = parts.next().unwrap_or_default().to_string();
                        let path = target.split('?').next().unwrap_or_default().to_string();
                        let (status, answer) = {
                            let mut script = script.lock().unwrap();
                            script.asked.push(format!(
                                "{method} {target} {}",
                                String::from_utf8_lossy(&body)
                            ));
                            let key = format!("{method} {path}");
                            match script.answers.get_mut(&key) {
                                Some(answers) if answers.len() > 1 => answers.remove(0),
                                Some(answers) => answers[0].clone(),
                                None => (404, not_found()),
                            }
                        };
                        let response = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        reader
                            .get_mut()
                            .write_all(response.as_bytes())
                            .await
                            .unwrap();
                    }
                });
            }
        });
        format!("http://{address}")
    }

    fn not_found() -> String {
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}).to_string()
    }

    fn client(url: &str) -> kube::Client {
        crate::validate::kubernetes::client_from(kube::Config::new(url.parse().unwrap())).unwrap()
    }

    fn pod(
        namespace: &str,
        name: &str,
        owner: Option<&str>,
        extra: serde_json::Value,
    ) -> serde_json::Value {
        let mut pod = serde_json::json!({
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"nodeName": "w-1", "containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Running"}
        });
        if let Some(kind) = owner {
            pod["metadata"]["ownerReferences"] = serde_json::json!([{
                "apiVersion": "apps/v1", "kind": kind, "name": "owner", "uid": "u", "controller": true
            }]);
        }
        if let (Some(pod), Some(extra)) = (pod.as_object_mut(), extra.as_object()) {
            for (key, value) in extra {
                pod.insert(key.clone(), value.clone());
            }
        }
        pod
    }

    fn list(pods: &[serde_json::Value]) -> (u16, String) {
        (
            200,
            serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": pods}).to_string(),
        )
    }

    fn created() -> (u16, String) {
        (
            201,
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}).to_string(),
        )
    }

    /// As `eviction.go`'s `createTooManyRequestsError` answers.
    fn budget_refusal() -> (u16, String) {
        (
            429,
            serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Cannot evict pod as it would violate the pod's disruption budget.",
                "reason": "TooManyRequests", "code": 429,
                "details": {"causes": [{"reason": "DisruptionBudget", "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]}
            })
            .to_string(),
        )
    }

    #[tokio::test]
    async fn a_drain_evicts_what_must_leave_and_leaves_daemon_and_mirror_pods() {
        let daemon = pod(
            "kube-system",
            "calico-node-x",
            Some("DaemonSet"),
            serde_json::json!({}),
        );
        let mirror = pod(
            "kube-system",
            "kube-proxy-w-1",
            None,
            serde_json::json!({"metadata": {"name": "kube-proxy-w-1", "namespace": "kube-system", "annotations": {"kubernetes.io/config.mirror": "abc"}}}),
        );
        let done = pod(
            "batch",
            "job-1",
            None,
            serde_json::json!({"status": {"phase": "Succeeded"}}),
        );
        let web = pod("shop", "web-1", Some("ReplicaSet"), serde_json::json!({}));
        let script = Arc::new(Mutex::new(Script::default()));
        {
            let mut script = script.lock().unwrap();
            script.answers.insert(
                "GET /api/v1/pods".into(),
                vec![
                    list(&[daemon.clone(), mirror.clone(), done.clone(), web]),
                    list(&[daemon, mirror, done]),
                ],
            );
            script.answers.insert(
                "POST /api/v1/namespaces/shop/pods/web-1/eviction".into(),
                vec![created()],
            );
            script.answers.insert(
                "PATCH /api/v1/nodes/w-1".into(),
                vec![(
                    200,
                    serde_json::json!({"metadata": {"name": "w-1"}}).to_string(),
                )],
            );
        }
        let client = client(&serve(script.clone()).await);
        cordon(&client, "w-1", true).await.unwrap();
        let evicted = drain(
            &client,
            "w-1",
            Duration::from_secs(5),
            Duration::from_millis(10),
        )
        .await
        .unwrap();
        assert_eq!(evicted, 1);
        cordon(&client, "w-1", false).await.unwrap();
        let asked = script.lock().unwrap().asked.clone();
        assert!(asked[0].starts_with("PATCH /api/v1/nodes/w-1"), "{asked:?}");
        assert!(
            asked[0].ends_with(r#"{"spec":{"unschedulable":true}}"#),
            "{asked:?}"
        );
        assert!(
            asked[1].contains("fieldSelector=spec.nodeName%3Dw-1"),
            "{asked:?}"
        );
        let evictions: Vec<&String> = asked
            .iter()
            .filter(|line| line.contains("/eviction"))
            .collect();
        assert_eq!(evictions.len(), 1, "only web-1 is evicted: {asked:?}");
        assert!(evictions[0].contains(r#""name":"web-1""#));
        assert!(
            asked
                .last()
                .unwrap()
                .ends_with(r#"{"spec":{"unschedulable":false}}"#)
        );
    }

    #[tokio::test]
    async fn a_drain_a_budget_blocks_names_the_pod_and_the_budget() {
        let web = pod("shop", "web-2", Some("ReplicaSet"), serde_json::json!({}));
        let bare = pod("default", "debug", None, serde_json::json!({}));
        let script = Arc::new(Mutex::new(Script::default()));
        {
            let mut script = script.lock().unwrap();
            script
                .answers
                .insert("GET /api/v1/pods".into(), vec![list(&[web, bare])]);
            script.answers.insert(
                "POST /api/v1/namespaces/shop/pods/web-2/eviction".into(),
                vec![budget_refusal()],
            );
        }
        let client = client(&serve(script.clone()).await);
        let error = drain(
            &client,
            "w-1",
            Duration::from_millis(200),
            Duration::from_millis(20),
        )
        .await
        .unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("node w-1 did not drain within 200ms"),
            "{message}"
        );
        assert!(
            message.contains("shop/web-2: Cannot evict pod as it would violate the pod's disruption budget. (The disruption budget web needs 2 healthy pods and has 2 currently)"),
            "{message}"
        );
        assert!(
            message.contains("default/debug: no controller owns it"),
            "{message}"
        );
        let asked = script.lock().unwrap().asked.clone();
        assert!(
            !asked
                .iter()
                .any(|line| line.contains("/pods/debug/eviction")),
            "an unmanaged pod is never evicted: {asked:?}"
        );
        assert!(
            asked
                .iter()
                .filter(|line| line.contains("/pods/web-2/eviction"))
                .count()
                > 1,
            "a refused eviction is tried again until the timeout"
        );
    }

    #[tokio::test]
    async fn an_api_error_other_than_a_budget_stops_the_drain() {
        let web = pod("shop", "web-3", Some("ReplicaSet"), serde_json::json!({}));
        let script = Arc::new(Mutex::new(Script::default()));
        {
            let mut script = script.lock().unwrap();
            script
                .answers
                .insert("GET /api/v1/pods".into(), vec![list(&[web])]);
            script.answers.insert(
                "POST /api/v1/namespaces/shop/pods/web-3/eviction".into(),
                vec![(
                    500,
                    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500, "reason": "InternalError",
                        "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."}).to_string(),
                )],
            );
        }
        let client = client(&serve(script).await);
        let error = drain(
            &client,
            "w-1",
            Duration::from_secs(5),
            Duration::from_millis(10),
        )
        .await
        .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("an eviction"), "{message}");
        assert!(
            message.contains("more than one PodDisruptionBudget"),
            "{message}"
        );
        assert!(
            !node_known(&client, "w-9").await.unwrap(),
            "404 is an unknown node"
        );
    }
}
