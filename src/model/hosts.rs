//! Bare hosts (provider `ssh`): one resource per host, in a safe join order.
//!
//! Control-plane hosts join one at a time, each after the previous one, so etcd never has
//! two members joining at once; workers join after the whole control plane.

use crate::graph::ResourceGraph;
use crate::graph::resources::{Ref, SshHost};
use crate::spec::{Cluster, HostRole};

pub fn build(graph: &mut ResourceGraph, cluster: &Cluster) {
    let spec = &cluster.spec;
    let settings = spec.ssh.clone().unwrap_or_default();
    let mut previous_control_plane: Option<Ref<SshHost>> = None;
    let roles = [
        (HostRole::ControlPlane, "control-plane"),
        (HostRole::Worker, "worker"),
    ];
    for (role, role_name) in roles {
        let last_control_plane = previous_control_plane.clone();
        for host in spec.hosts.iter().filter(|host| host.role == role) {
            let joins_after = match role {
                HostRole::ControlPlane => previous_control_plane.clone(),
                HostRole::Worker => last_control_plane.clone(),
            };
            let added = graph.add(
                host.name.clone(),
                SshHost {
                    name: host.name.clone(),
                    address: host.address.clone(),
                    port: host.port.unwrap_or(settings.port),
                    user: host.user.clone().unwrap_or_else(|| settings.user.clone()),
                    role: role_name.to_string(),
                    joins_after,
                },
            );
            if role == HostRole::ControlPlane {
                previous_control_plane = Some(added);
            }
        }
    }
}
