//! The version rules of an upgrade, checked before anything is touched.
//!
//! | rule | source |
//! |---|---|
//! | Kubernetes: one minor at a time, no downgrade | kubeadm "Upgrading kubeadm clusters": "Skipping MINOR versions when upgrading is unsupported"; the version skew policy (kubernetes.io/releases/version-skew-policy) |
//! | the control plane before any kubelet, no kubelet newer than an API server | version skew policy: "kubelet must not be newer than kube-apiserver" (the order of [`super::steps`]) |
//! | etcd: one minor at a time, no downgrade | etcd "Upgrade etcd from 3.4 to 3.5": "upgrade one minor version at a time"; downgrades need `etcdctl downgrade` (3.6+) and are not what an upgrade does |
//! | etcd: the latest patch of the current minor first | etcd 3.6 upgrade guide: upgrade to the latest 3.5 patch before 3.6 (rafter applies it to every minor whose patches its asset list knows) |
//! | an upgrade changes versions (and their asset overrides) only | rafter: everything else goes through `update cluster`, so a plan says one kind of thing |

use crate::spec::Cluster;
use crate::spec::versions::{
    EtcdVersion, KubernetesVersion, parse_etcd_version, parse_kubernetes_version,
};

/// What an allowed upgrade changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Changes {
    pub kubernetes: Option<(KubernetesVersion, KubernetesVersion)>,
    pub etcd: Option<(EtcdVersion, EtcdVersion)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.kubernetes.is_none() && self.etcd.is_none()
    }

    /// `Kubernetes 1.34.2 → 1.35.0, etcd 3.5.21 (unchanged)`.
    pub fn describe(&self) -> String {
        let kubernetes = match self.kubernetes {
            Some((from, to)) => format!("Kubernetes {from} → {to}"),
            None => "Kubernetes unchanged".to_string(),
        };
        let etcd = match self.etcd {
            Some((from, to)) => format!("etcd {from} → {to}"),
            None => "etcd unchanged".to_string(),
        };
        format!("{kubernetes}, {etcd}")
    }
}

/// Why an upgrade is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{field}: {problem}")]
    Unreadable {
        field: &'static str,
        problem: String,
    },
    #[error(
        "Kubernetes {from} → {to} is a downgrade: rafter does not downgrade (restore a backup taken before the upgrade instead)"
    )]
    KubernetesDowngrade {
        from: KubernetesVersion,
        to: KubernetesVersion,
    },
    #[error(
        "Kubernetes {from} → {to} skips a minor version: upgrade one minor at a time (to 1.{next}.x first)"
    )]
    KubernetesSkipsMinor {
        from: KubernetesVersion,
        to: KubernetesVersion,
        next: u32,
    },
    #[error("etcd {from} → {to} is a downgrade: rafter does not downgrade etcd")]
    EtcdDowngrade { from: EtcdVersion, to: EtcdVersion },
    #[error(
        "etcd {from} → {to} skips a minor version: upgrade one minor at a time (to 3.{next}.x first)"
    )]
    EtcdSkipsMinor {
        from: EtcdVersion,
        to: EtcdVersion,
        next: u32,
    },
    #[error(
        "etcd {from} → {to} leaves {from}'s minor before its latest patch: upgrade to {latest} first"
    )]
    EtcdPatchFirst {
        from: EtcdVersion,
        to: EtcdVersion,
        latest: EtcdVersion,
    },
    #[error(
        "the new spec changes more than versions ({}): an upgrade changes spec.kubernetesVersion, spec.etcd.version and spec.assets only; apply the rest with `rafter update cluster` first",
        .0.join(", ")
    )]
    OtherChanges(Vec<String>),
}

/// Checks the upgrade from the stored spec `from` to `to`. `listed_etcd` are the etcd
/// releases rafter's asset list pins (for the latest-patch-first rule). Every refusal is
/// returned, not just the first.
pub fn check(
    from: &Cluster,
    to: &Cluster,
    listed_etcd: &[EtcdVersion],
) -> Result<Changes, Vec<Refusal>> {
    let mut refusals = Vec::new();
    let other = other_changes(from, to);
    if !other.is_empty() {
        refusals.push(Refusal::OtherChanges(other));
    }
    let kubernetes = kubernetes_change(
        &from.spec.kubernetes_version,
        &to.spec.kubernetes_version,
        &mut refusals,
    );
    let etcd = etcd_change(
        &from.spec.etcd.version,
        &to.spec.etcd.version,
        listed_etcd,
        &mut refusals,
    );
    if refusals.is_empty() {
        Ok(Changes { kubernetes, etcd })
    } else {
        Err(refusals)
    }
}

/// Both versions of `field`, or a refusal for each that cannot be read.
fn both_read<V, E: std::fmt::Display>(
    field: &'static str,
    from: Result<V, E>,
    to: Result<V, E>,
    refusals: &mut Vec<Refusal>,
) -> Option<(V, V)> {
    let unreadable = |error: E| Refusal::Unreadable {
        field,
        problem: error.to_string(),
    };
    match (from, to) {
        (Ok(from), Ok(to)) => Some((from, to)),
        (from, to) => {
            refusals.extend(from.err().map(unreadable));
            refusals.extend(to.err().map(unreadable));
            None
        }
    }
}

fn kubernetes_change(
    from: &str,
    to: &str,
    refusals: &mut Vec<Refusal>,
) -> Option<(KubernetesVersion, KubernetesVersion)> {
    let (from, to) = both_read(
        "spec.kubernetesVersion",
        parse_kubernetes_version(from),
        parse_kubernetes_version(to),
        refusals,
    )?;
    if to < from {
        refusals.push(Refusal::KubernetesDowngrade { from, to });
    } else if to.minor > from.minor + 1 {
        refusals.push(Refusal::KubernetesSkipsMinor {
            from,
            to,
            next: from.minor + 1,
        });
    }
    (to != from).then_some((from, to))
}

fn etcd_change(
    from: &str,
    to: &str,
    listed: &[EtcdVersion],
    refusals: &mut Vec<Refusal>,
) -> Option<(EtcdVersion, EtcdVersion)> {
    let (from, to) = both_read(
        "spec.etcd.version",
        parse_etcd_version(from),
        parse_etcd_version(to),
        refusals,
    )?;
    if to < from {
        refusals.push(Refusal::EtcdDowngrade { from, to });
    } else if to.minor > from.minor + 1 {
        refusals.push(Refusal::EtcdSkipsMinor {
            from,
            to,
            next: from.minor + 1,
        });
    } else if to.minor > from.minor {
        let latest = listed
            .iter()
            .filter(|known| known.major == from.major && known.minor == from.minor)
            .max();
        if let Some(&latest) = latest.filter(|latest| **latest > from) {
            refusals.push(Refusal::EtcdPatchFirst { from, to, latest });
        }
    }
    (to != from).then_some((from, to))
}

/// The spec fields (`spec.x`) that differ besides the versions and the asset overrides.
fn other_changes(from: &Cluster, to: &Cluster) -> Vec<String> {
    let mut same_versions = from.clone();
    same_versions.spec.kubernetes_version = to.spec.kubernetes_version.clone();
    same_versions.spec.etcd.version = to.spec.etcd.version.clone();
    same_versions.spec.assets = to.spec.assets.clone();
    let (Ok(old), Ok(new)) = (
        serde_json::to_value(&same_versions),
        serde_json::to_value(to),
    ) else {
        return vec!["spec (cannot be compared)".to_string()];
    };
    let mut fields = Vec::new();
    if old.get("metadata") != new.get("metadata") {
        fields.push("metadata".to_string());
    }
    let empty = serde_json::Map::new();
    let fields_of = |value: &serde_json::Value| -> serde_json::Map<String, serde_json::Value> {
        value
            .get("spec")
            .and_then(serde_json::Value::as_object)
            .unwrap_or(&empty)
            .clone()
    };
    let (old, new) = (fields_of(&old), fields_of(&new));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        if old.get(key) != new.get(key) {
            fields.push(format!("spec.{key}"));
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Cluster, ClusterSpec, Metadata};

    fn cluster(kubernetes: &str, etcd: &str) -> Cluster {
        let mut spec = ClusterSpec {
            kubernetes_version: kubernetes.to_string(),
            ..ClusterSpec::default()
        };
        spec.etcd.version = etcd.to_string();
        Cluster {
            api_version: crate::spec::API_VERSION.to_string(),
            kind: crate::spec::KIND.to_string(),
            metadata: Metadata {
                name: "upgrade.example.com".to_string(),
            },
            spec,
        }
    }

    fn etcd(text: &str) -> EtcdVersion {
        parse_etcd_version(text).unwrap()
    }

    /// (from, to, allowed) for Kubernetes with etcd unchanged.
    const KUBERNETES: [(&str, &str, Result<bool, &str>); 7] = [
        ("1.34.2", "1.34.2", Ok(false)),
        ("1.34.2", "1.34.5", Ok(true)),
        ("1.34.2", "1.35.0", Ok(true)),
        (
            "1.33.9",
            "1.35.0",
            Err("skips a minor version: upgrade one minor at a time (to 1.34.x first)"),
        ),
        ("1.34.2", "1.34.1", Err("is a downgrade")),
        ("1.35.0", "1.34.9", Err("is a downgrade")),
        ("1.31.0", "1.37.0", Err("skips a minor")),
    ];

    #[test]
    fn kubernetes_moves_one_minor_at_a_time_and_never_back() {
        for (from, to, expected) in KUBERNETES {
            let outcome = check(&cluster(from, "3.5.21"), &cluster(to, "3.5.21"), &[]);
            match (expected, outcome) {
                (Ok(changes), Ok(found)) => {
                    assert_eq!(found.kubernetes.is_some(), changes, "{from} → {to}");
                    assert!(found.etcd.is_none());
                }
                (Err(said), Err(refusals)) => {
                    assert_eq!(refusals.len(), 1, "{from} → {to}: {refusals:?}");
                    let message = refusals[0].to_string();
                    assert!(message.contains(said), "{from} → {to}: {message}");
                }
                (expected, found) => panic!("{from} → {to}: expected {expected:?}, got {found:?}"),
            }
        }
    }

    #[test]
    fn etcd_moves_one_minor_at_a_time_from_its_latest_patch() {
        let listed = [etcd("3.5.21"), etcd("3.6.5")];
        let cases: [(&str, &str, Result<bool, &str>); 8] = [
            ("3.4.23", "3.5.1", Ok(true)),
            ("3.4.23", "3.4.23", Ok(false)),
            ("3.5.1", "3.5.21", Ok(true)),
            ("3.5.21", "3.6.5", Ok(true)),
            ("3.5.1", "3.6.5", Err("upgrade to 3.5.21 first")),
            ("3.4.23", "3.6.5", Err("(to 3.5.x first)")),
            ("3.5.21", "3.4.23", Err("is a downgrade")),
            ("3.5.21", "3.5.2", Err("is a downgrade")),
        ];
        for (from, to, expected) in cases {
            let outcome = check(&cluster("1.34.2", from), &cluster("1.34.2", to), &listed);
            match (expected, outcome) {
                (Ok(changes), Ok(found)) => {
                    assert_eq!(found.etcd.is_some(), changes, "{from} → {to}")
                }
                (Err(said), Err(refusals)) => {
                    let message = refusals[0].to_string();
                    assert!(message.contains(said), "{from} → {to}: {message}");
                }
                (expected, found) => panic!("{from} → {to}: expected {expected:?}, got {found:?}"),
            }
        }
    }

    #[test]
    fn every_refusal_is_reported_and_other_changes_are_named() {
        let from = cluster("1.34.2", "3.5.21");
        let mut to = cluster("1.36.0", "3.4.23");
        to.spec.control_plane.count = 5;
        to.spec.assets.container_registry = Some("mirror.internal".to_string());
        let refusals = check(&from, &to, &[]).unwrap_err();
        let messages: Vec<String> = refusals.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(
            messages[0].contains("(spec.controlPlane)"),
            "{}",
            messages[0]
        );
        assert!(messages[1].contains("skips a minor"));
        assert!(messages[2].contains("etcd 3.5.21 → 3.4.23 is a downgrade"));
    }

    #[test]
    fn both_versions_may_change_together() {
        let changes = check(
            &cluster("1.34.2", "3.4.23"),
            &cluster("1.35.1", "3.5.21"),
            &[etcd("3.5.21")],
        )
        .unwrap();
        assert_eq!(
            changes.describe(),
            "Kubernetes 1.34.2 → 1.35.1, etcd 3.4.23 → 3.5.21"
        );
    }
}
