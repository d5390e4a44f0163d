//! What the pod network needs of the network between nodes, for each CNI in the mode rafter
//! renders it, written down once with the upstream documentation it comes from. The security
//! groups ([`super::security`]) open exactly these ports between all of the cluster's nodes,
//! and Calico's manifest takes its encapsulation from here.
//!
//! No mode rafter renders sends unencapsulated pod traffic between EC2 instances, so the
//! instances keep EC2's source/destination check and no role needs the permission to turn it
//! off: Calico's `VXLANCrossSubnet` would route pod addresses natively inside a subnet, which
//! EC2 drops unless the check is off (Calico docs, "AWS": <https://docs.tigera.io/calico/latest/reference/public-cloud/aws>),
//! so on AWS Calico encapsulates always (`VXLAN`); on bare hosts, where nodes share their
//! segments, it stays `VXLANCrossSubnet`.

use crate::graph::resources::Protocol;
use crate::spec::{Cni, Provider};

/// One port (range) the pod network uses between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CniPort {
    /// Names the security group rule: `vxlan`, `typha`, `health`.
    pub label: &'static str,
    pub protocol: Protocol,
    /// Inclusive port range; for ICMP the type and code.
    pub ports: Option<(u16, u16)>,
    /// What uses it.
    pub purpose: &'static str,
    /// The upstream page that says so.
    pub source: &'static str,
}

const CALICO_PORTS: &str = "https://docs.tigera.io/calico/latest/getting-started/kubernetes/requirements#network-requirements";
const CILIUM_PORTS: &str =
    "https://docs.cilium.io/en/stable/operations/system_requirements/#firewall-rules";
const FLANNEL_PORTS: &str =
    "https://github.com/flannel-io/flannel/blob/master/Documentation/backends.md#vxlan";

/// The ports `cni` needs between every pair of nodes, control plane included.
pub fn cni_ports(cni: Cni) -> &'static [CniPort] {
    match cni {
        // VXLAN without BGP (the Installation sets `bgp: Disabled`), through the Tigera
        // operator, which always runs Typha.
        Cni::Calico => &[
            CniPort {
                label: "vxlan",
                protocol: Protocol::Udp,
                ports: Some((4789, 4789)),
                purpose: "Calico VXLAN",
                source: CALICO_PORTS,
            },
            CniPort {
                label: "typha",
                protocol: Protocol::Tcp,
                ports: Some((5473, 5473)),
                purpose: "calico-node to Typha",
                source: CALICO_PORTS,
            },
        ],
        // `cilium install` defaults: VXLAN tunnel, health checks over TCP and ICMP echo.
        Cni::Cilium => &[
            CniPort {
                label: "vxlan",
                protocol: Protocol::Udp,
                ports: Some((8472, 8472)),
                purpose: "Cilium VXLAN",
                source: CILIUM_PORTS,
            },
            CniPort {
                label: "health",
                protocol: Protocol::Tcp,
                ports: Some((4240, 4240)),
                purpose: "Cilium health checks",
                source: CILIUM_PORTS,
            },
            CniPort {
                label: "health-icmp",
                protocol: Protocol::Icmp,
                ports: Some((8, 0)),
                purpose: "Cilium health checks (ICMP echo)",
                source: CILIUM_PORTS,
            },
        ],
        Cni::Flannel => &[CniPort {
            label: "vxlan",
            protocol: Protocol::Udp,
            ports: Some((8472, 8472)),
            purpose: "flannel VXLAN (the Linux kernel's port)",
            source: FLANNEL_PORTS,
        }],
    }
}

/// Calico's IP pool encapsulation on `provider` (see the module docs).
pub fn calico_encapsulation(provider: Provider) -> &'static str {
    match provider {
        Provider::Aws => "VXLAN",
        Provider::Ssh => "VXLANCrossSubnet",
    }
}
