//! The Kubernetes part of validation, through the API server with a short-lived admin
//! certificate rafter issues from the cluster CA (kube-rs, the maintained Rust client): every
//! node the cluster should have is registered and `Ready`; every control-plane node runs its
//! API server, controller manager and scheduler (static pods, named `<component>-<node>` as
//! the kubelet names mirror pods); every pod in `kube-system` is running with its containers
//! ready (or finished, for a job's pod).

use std::time::Duration;

use aws_smithy_types::base64;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::bootstrap::node::CONTROL_PLANE_COMPONENTS;

use super::{Area, Report};

/// Where the API is and how rafter proves it is the admin.
pub struct Access<'a> {
    /// `https://host:port`.
    pub server: &'a str,
    pub ca_pem: &'a str,
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

/// The node names the cluster should have, control plane apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub control_plane: Vec<String>,
    pub workers: Vec<String>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(15);

pub async fn validate(access: &Access<'_>, expected: &Expected, report: &mut Report) {
    let server = access.server;
    let client = match client(access).await {
        Ok(client) => client,
        Err(error) => {
            report.find(
                Area::Kubernetes,
                server,
                format!("no client can be made for the API server: {error}"),
                "check spec.apiServer and the cluster CA",
            );
            return;
        }
    };
    let unreachable = |report: &mut Report, what: &str, error: kube::Error| {
        report.find(
            Area::Kubernetes,
            server,
            format!("the API server does not answer {what}: {}", causes(&error)),
            "see the host findings above; on a control-plane host `crictl ps` and the kubelet's log show the API server",
        );
    };
    let nodes = match Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(nodes) => nodes.items,
        Err(error) => return unreachable(report, "a list of nodes", error),
    };
    check_nodes(&nodes, expected, report);
    let pods = match Api::<Pod>::namespaced(client, "kube-system")
        .list(&ListParams::default())
        .await
    {
        Ok(pods) => pods.items,
        Err(error) => return unreachable(report, "a list of kube-system's pods", error),
    };
    check_pods(&pods, expected, report);
}

/// An error with its causes, outermost first (kube's own message alone says only
/// "client error (Connect)").
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// A client for the API server `access` names, as the admin.
pub async fn client(access: &Access<'_>) -> Result<kube::Client, String> {
    let data = |pem: &str| base64::encode(pem.as_bytes());
    let kubeconfig: Kubeconfig = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": {
            "server": access.server,
            "certificate-authority-data": data(access.ca_pem),
        }}],
        "users": [{"name": "rafter-admin", "user": {
            "client-certificate-data": data(access.cert_pem),
            "client-key-data": data(access.key_pem),
        }}],
        "contexts": [{"name": "admin", "context": {"cluster": "cluster", "user": "rafter-admin"}}],
        "current-context": "admin",
    }))
    .map_err(|error| error.to_string())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|error| error.to_string())?;
    client_from(config)
}

/// A client from `config` with rafter's timeouts, and without kube's own retries: kube
/// retries 429, 503 and 504 up to 15 times with a back-off growing to 1000 s, which would
/// hide a PodDisruptionBudget's refusal (429) past any drain timeout and hold a validation
/// far longer than `--wait`. Every caller here checks again on its own schedule.
pub fn client_from(mut config: kube::Config) -> Result<kube::Client, String> {
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    config.default_retry = false;
    kube::Client::try_from(config).map_err(|error| error.to_string())
}

fn check_nodes(nodes: &[Node], expected: &Expected, report: &mut Report) {
    let mut ready = 0;
    let wanted = expected.control_plane.iter().chain(&expected.workers);
    for name in wanted.clone() {
        let Some(node) = nodes
            .iter()
            .find(|node| node.metadata.name.as_deref() == Some(name.as_str()))
        else {
            report.find(
                Area::Kubernetes,
                format!("node {name}"),
                "is not registered",
                format!("its kubelet cannot reach the API server or was refused: `journalctl -u kubelet` on {name}"),
            );
            continue;
        };
        let condition = node
            .status
            .as_ref()
            .and_then(|status| status.conditions.as_ref())
            .and_then(|conditions| {
                conditions
                    .iter()
                    .find(|condition| condition.type_ == "Ready")
            });
        match condition {
            Some(condition) if condition.status == "True" => ready += 1,
            Some(condition) => report.find(
                Area::Kubernetes,
                format!("node {name}"),
                format!(
                    "is not Ready ({}: {})",
                    condition.reason.as_deref().unwrap_or("no reason"),
                    condition.message.as_deref().unwrap_or("no message")
                ),
                "a node is Ready once its CNI is up and its kubelet healthy: `journalctl -u kubelet`",
            ),
            None => report.find(
                Area::Kubernetes,
                format!("node {name}"),
                "has not reported whether it is Ready",
                "wait (`--wait`); its kubelet reports every 10 s",
            ),
        }
    }
    let count = wanted.count();
    if ready == count {
        report.pass(format!("Kubernetes: {count} node(s) registered and Ready"));
    }
}

/// Why a pod is not running well, or `None` when it is.
fn pod_problem(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let phase = status.phase.as_deref().unwrap_or("Unknown");
    if phase == "Succeeded" {
        return None;
    }
    let containers = status.container_statuses.as_deref().unwrap_or_default();
    let waiting = containers.iter().find_map(|container| {
        let waiting = container.state.as_ref()?.waiting.as_ref()?;
        Some(format!(
            "container {} is waiting: {}{}",
            container.name,
            waiting.reason.as_deref().unwrap_or("no reason"),
            waiting
                .message
                .as_deref()
                .map(|message| format!(" ({message})"))
                .unwrap_or_default()
        ))
    });
    if phase != "Running" {
        return Some(format!(
            "is {phase}{}",
            waiting.map(|why| format!("; {why}")).unwrap_or_default()
        ));
    }
    if let Some(why) = waiting {
        return Some(why);
    }
    containers
        .iter()
        .find(|container| !container.ready)
        .map(|container| format!("container {} is running but not ready", container.name))
}

fn check_pods(pods: &[Pod], expected: &Expected, report: &mut Report) {
    let name_of = |pod: &Pod| pod.metadata.name.clone().unwrap_or_default();
    for node in &expected.control_plane {
        for component in CONTROL_PLANE_COMPONENTS {
            let pod = format!("{component}-{node}");
            if !pods.iter().any(|listed| name_of(listed) == pod) {
                report.find(
                    Area::Kubernetes,
                    format!("pod kube-system/{pod}"),
                    "does not exist",
                    format!("the kubelet on {node} runs it from /etc/kubernetes/manifests/{component}.yaml: `journalctl -u kubelet`"),
                );
            }
        }
    }
    let mut healthy = 0;
    for pod in pods {
        match pod_problem(pod) {
            None => healthy += 1,
            Some(problem) => report.find(
                Area::Kubernetes,
                format!("pod kube-system/{}", name_of(pod)),
                problem,
                format!(
                    "`kubectl -n kube-system describe pod {}` and its logs",
                    name_of(pod)
                ),
            ),
        }
    }
    if healthy == pods.len() && !pods.is_empty() {
        report.pass(format!("Kubernetes: {healthy} kube-system pod(s) running"));
    }
}
