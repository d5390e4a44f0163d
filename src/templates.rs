//! The minijinja templates shipped in `templates/`, embedded at build time.

use std::sync::OnceLock;

use minijinja::Environment;
use serde::Serialize;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "user-data/node.sh",
        include_str!("../templates/user-data/node.sh.j2"),
    ),
    (
        "node/audit-policy.yaml",
        include_str!("../templates/node/audit-policy.yaml.j2"),
    ),
    (
        "node/bootstrap.sh",
        include_str!("../templates/node/bootstrap.sh.j2"),
    ),
    (
        "node/bundle.sh",
        include_str!("../templates/node/bundle.sh.j2"),
    ),
    (
        "node/containerd.service",
        include_str!("../templates/node/containerd.service.j2"),
    ),
    (
        "node/containerd.toml",
        include_str!("../templates/node/containerd.toml.j2"),
    ),
    (
        "node/crictl.yaml",
        include_str!("../templates/node/crictl.yaml.j2"),
    ),
    (
        "node/encryption-config.yaml",
        include_str!("../templates/node/encryption-config.yaml.j2"),
    ),
    (
        "node/etcd.service",
        include_str!("../templates/node/etcd.service.j2"),
    ),
    ("node/aws.sh", include_str!("../templates/node/aws.sh.j2")),
    (
        "node/etcd-backup.sh",
        include_str!("../templates/node/etcd-backup.sh.j2"),
    ),
    (
        "node/etcd-backup.service",
        include_str!("../templates/node/etcd-backup.service.j2"),
    ),
    (
        "node/etcd-backup.timer",
        include_str!("../templates/node/etcd-backup.timer.j2"),
    ),
    (
        "node/etcd-peers.sh",
        include_str!("../templates/node/etcd-peers.sh.j2"),
    ),
    (
        "node/etcd-volume.sh",
        include_str!("../templates/node/etcd-volume.sh.j2"),
    ),
    (
        "node/etcd-peers.service",
        include_str!("../templates/node/etcd-peers.service.j2"),
    ),
    (
        "node/etcd-peers.timer",
        include_str!("../templates/node/etcd-peers.timer.j2"),
    ),
    (
        "node/etcdctl.sh",
        include_str!("../templates/node/etcdctl.sh.j2"),
    ),
    (
        "node/etcd-initial-cluster.env",
        include_str!("../templates/node/etcd-initial-cluster.env.j2"),
    ),
    (
        "node/kube-apiserver.yaml",
        include_str!("../templates/node/kube-apiserver.yaml.j2"),
    ),
    (
        "node/kube-controller-manager.yaml",
        include_str!("../templates/node/kube-controller-manager.yaml.j2"),
    ),
    (
        "node/kube-scheduler.yaml",
        include_str!("../templates/node/kube-scheduler.yaml.j2"),
    ),
    (
        "node/kubeconfig.yaml",
        include_str!("../templates/node/kubeconfig.yaml.j2"),
    ),
    (
        "node/kubelet-config.yaml",
        include_str!("../templates/node/kubelet-config.yaml.j2"),
    ),
    (
        "node/kubelet.service",
        include_str!("../templates/node/kubelet.service.j2"),
    ),
    (
        "node/modules-load.conf",
        include_str!("../templates/node/modules-load.conf.j2"),
    ),
    (
        "node/sysctl.conf",
        include_str!("../templates/node/sysctl.conf.j2"),
    ),
    (
        "node/control-plane-label.sh",
        include_str!("../templates/node/control-plane-label.sh.j2"),
    ),
    (
        "node/control-plane-label.service",
        include_str!("../templates/node/control-plane-label.service.j2"),
    ),
    (
        "addons/aws-cloud-controller-manager.yaml",
        include_str!("../templates/addons/aws-cloud-controller-manager.yaml.j2"),
    ),
    (
        "addons/aws-ebs-csi-driver.yaml",
        include_str!("../templates/addons/aws-ebs-csi-driver.yaml.j2"),
    ),
    (
        "addons/cluster-autoscaler.yaml",
        include_str!("../templates/addons/cluster-autoscaler.yaml.j2"),
    ),
    (
        "addons/aws-node-termination-handler.yaml",
        include_str!("../templates/addons/aws-node-termination-handler.yaml.j2"),
    ),
    (
        "addons/bootstrap-token.yaml",
        include_str!("../templates/addons/bootstrap-token.yaml.j2"),
    ),
    (
        "addons/calico.yaml",
        include_str!("../templates/addons/calico.yaml.j2"),
    ),
    (
        "addons/coredns.yaml",
        include_str!("../templates/addons/coredns.yaml.j2"),
    ),
    (
        "addons/flannel.yaml",
        include_str!("../templates/addons/flannel.yaml.j2"),
    ),
    (
        "addons/kube-proxy.yaml",
        include_str!("../templates/addons/kube-proxy.yaml.j2"),
    ),
    (
        "addons/node-rbac.yaml",
        include_str!("../templates/addons/node-rbac.yaml.j2"),
    ),
];

#[derive(Debug, thiserror::Error)]
#[error("cannot render template {name}")]
pub struct TemplateError {
    pub name: String,
    #[source]
    pub source: minijinja::Error,
}

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut environment = Environment::new();
        // Every variable a template names must be given: a typo fails loudly, not as "".
        environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        environment.set_keep_trailing_newline(true);
        for (name, source) in TEMPLATES {
            // A template that does not parse is left out; rendering it then fails with an
            // error naming it, and `all_templates_parse` below catches it before release.
            let _ = environment.add_template(name, source);
        }
        environment
    })
}

/// Renders the embedded template `name` with `context`.
pub fn render(name: &str, context: impl Serialize) -> Result<String, TemplateError> {
    let wrap = |source| TemplateError {
        name: name.to_string(),
        source,
    };
    environment()
        .get_template(name)
        .map_err(wrap)?
        .render(context)
        .map_err(wrap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_variables_are_errors() {
        let error = render(
            "user-data/node.sh",
            minijinja::context! { role => "worker" },
        )
        .unwrap_err();
        assert_eq!(error.name, "user-data/node.sh");
    }

    #[test]
    fn all_templates_parse() {
        let mut parsed = Environment::new();
        for (name, source) in TEMPLATES {
            if let Err(error) = parsed.add_template(name, source) {
                panic!("{name}: {error:#}");
            }
        }
    }
}
