//! The steps of an upgrade, in the order the version skew rules demand: each control-plane
//! host alone (etcd, then its static pods), then the control-plane kubelets (no kubelet
//! newer than an API server), then the workers in batches, then the new spec is stored.
//! Each step has a key for the journal: a rerun skips the keys recorded as done.

use crate::spec::versions::EtcdVersion;

use super::Changes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Leadership moved off `host`, the new etcd installed there and its member restarted,
    /// then a gate: every member healthy, and this one serving `to`.
    Etcd { host: String, to: EtcdVersion },
    /// `host`'s new static pods (API server, controller manager, scheduler), then a gate:
    /// etcd healthy, and the API server answering again where it answered before.
    StaticPods { host: String },
    /// The new kubelet on control-plane `host` (every API server is new by then).
    ControlPlaneKubelet { host: String },
    /// The new kubelet on a batch of workers, at most `--max-unavailable` at once.
    Workers { hosts: Vec<String> },
    /// The new spec stored: from here on `update cluster` renders the new versions.
    StoreSpec,
}

impl Step {
    /// The step's name in the journal.
    pub fn key(&self) -> String {
        match self {
            Step::Etcd { host, to } => format!("etcd-{to}/{host}"),
            Step::StaticPods { host } => format!("static-pods/{host}"),
            Step::ControlPlaneKubelet { host } => format!("kubelet/{host}"),
            Step::Workers { hosts } => format!("workers/{}", hosts.join(",")),
            Step::StoreSpec => "store-spec".to_string(),
        }
    }

    /// What the step does, for the plan.
    pub fn describe(&self) -> String {
        match self {
            Step::Etcd { host, to } => format!(
                "{host}: move etcd leadership away, install etcd {to}, restart the member; gate: every member healthy, {host} on {to}"
            ),
            Step::StaticPods { host } => format!(
                "{host}: new static pods (API server, controller manager, scheduler); gate: etcd healthy, the API server ready where it was"
            ),
            Step::ControlPlaneKubelet { host } => {
                format!("{host}: new kubelet; gate: kubelet running, etcd healthy")
            }
            Step::Workers { hosts } => {
                format!("{}: new kubelet; gate: kubelet running", hosts.join(", "))
            }
            Step::StoreSpec => "store the new spec".to_string(),
        }
    }

    /// The hosts the step changes.
    pub fn hosts(&self) -> Vec<&str> {
        match self {
            Step::Etcd { host, .. }
            | Step::StaticPods { host }
            | Step::ControlPlaneKubelet { host } => vec![host.as_str()],
            Step::Workers { hosts } => hosts.iter().map(String::as_str).collect(),
            Step::StoreSpec => Vec::new(),
        }
    }
}

/// The steps of `changes` over `control_plane` (in the order to take them) and `workers`,
/// `max_unavailable` workers at a time (at least one).
pub fn plan_steps(
    changes: &Changes,
    control_plane: &[String],
    workers: &[String],
    max_unavailable: usize,
) -> Vec<Step> {
    let mut steps = Vec::new();
    for host in control_plane {
        if let Some((_, to)) = changes.etcd {
            steps.push(Step::Etcd {
                host: host.clone(),
                to,
            });
        }
        if changes.kubernetes.is_some() {
            steps.push(Step::StaticPods { host: host.clone() });
        }
    }
    if changes.kubernetes.is_some() {
        steps.extend(
            control_plane
                .iter()
                .map(|host| Step::ControlPlaneKubelet { host: host.clone() }),
        );
        steps.extend(
            workers
                .chunks(max_unavailable.max(1))
                .map(|batch| Step::Workers {
                    hosts: batch.to_vec(),
                }),
        );
    }
    if !changes.is_empty() {
        steps.push(Step::StoreSpec);
    }
    steps
}

/// The step whose key is `key`.
pub fn step_named<'s>(steps: &'s [Step], key: &str) -> Option<&'s Step> {
    steps.iter().find(|step| step.key() == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::versions::{parse_etcd_version, parse_kubernetes_version};

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn changes(kubernetes: bool, etcd: bool) -> Changes {
        Changes {
            kubernetes: kubernetes.then(|| {
                (
                    parse_kubernetes_version("1.34.2").unwrap(),
                    parse_kubernetes_version("1.35.0").unwrap(),
                )
            }),
            etcd: etcd.then(|| {
                (
                    parse_etcd_version("3.4.23").unwrap(),
                    parse_etcd_version("3.5.1").unwrap(),
                )
            }),
        }
    }

    fn keys(steps: &[Step]) -> Vec<String> {
        steps.iter().map(Step::key).collect()
    }

    #[test]
    fn control_plane_hosts_one_at_a_time_then_kubelets_then_workers_in_batches() {
        let steps = plan_steps(
            &changes(true, true),
            &names(&["cp-1", "cp-2", "cp-3"]),
            &names(&["w-1", "w-2", "w-3"]),
            2,
        );
        assert_eq!(
            keys(&steps),
            [
                "etcd-3.5.1/cp-1",
                "static-pods/cp-1",
                "etcd-3.5.1/cp-2",
                "static-pods/cp-2",
                "etcd-3.5.1/cp-3",
                "static-pods/cp-3",
                "kubelet/cp-1",
                "kubelet/cp-2",
                "kubelet/cp-3",
                "workers/w-1,w-2",
                "workers/w-3",
                "store-spec",
            ]
        );
        // Every step names at most --max-unavailable hosts, and keys are unique.
        assert!(steps.iter().all(|step| step.hosts().len() <= 2));
        let mut unique = keys(&steps);
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), steps.len());
        assert_eq!(step_named(&steps, "workers/w-3"), Some(&steps[10]));
    }

    #[test]
    fn an_etcd_upgrade_alone_touches_no_kubelet_and_nothing_changes_nothing() {
        let steps = plan_steps(
            &changes(false, true),
            &names(&["a", "b"]),
            &names(&["w"]),
            1,
        );
        assert_eq!(keys(&steps), ["etcd-3.5.1/a", "etcd-3.5.1/b", "store-spec"]);
        assert!(plan_steps(&changes(false, false), &names(&["a"]), &names(&["w"]), 1).is_empty());
        let zero = plan_steps(
            &changes(true, false),
            &names(&["a"]),
            &names(&["w", "v"]),
            0,
        );
        assert_eq!(
            keys(&zero),
            [
                "static-pods/a",
                "kubelet/a",
                "workers/w",
                "workers/v",
                "store-spec"
            ]
        );
    }
}
