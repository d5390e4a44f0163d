//! What the real kubelet, API server and etcd demand of a node, written down once with the
//! upstream source of each rule: none of them runs on the test bed (its kubelets are
//! stand-ins), so the rules are checked on what rafter renders instead
//! (`tests/host_rules.rs`, every profile) and, where the test bed allows, on a host after its
//! bootstrap ran. The node's sysctl file is rendered from [`KERNEL_TUNABLES`], so the file and
//! the rule cannot drift apart.
//!
//! | rule | who refuses otherwise | source |
//! |---|---|---|
//! | the six kernel tunables below, with `protectKernelDefaults: true` | kubelet: exits "invalid kernel flag: …" | kubernetes `pkg/kubelet/cm/container_manager_linux.go` (`setupKernelTunables`), values from `k8s.io/component-helpers/node/util/sysctl` |
//! | `net.bridge.bridge-nf-call-iptables=1`, `net.ipv4.ip_forward=1` | kubeadm preflight; Services and pod traffic break silently | kubernetes `cmd/kubeadm/app/preflight/checks.go`; "Container Runtimes" docs, "Forwarding IPv4 and letting iptables see bridged traffic" |
//! | the kubelet's `cgroupDriver` equals containerd's (`systemd` / `SystemdCgroup = true`) | kubelet and containerd fight over cgroups; pods fail or the node becomes unstable | "Container Runtimes" docs, "cgroup drivers" |
//! | swap off with `failSwapOn: true` | kubelet: exits "running with swap on is not supported" | kubernetes `pkg/kubelet/cm/container_manager_linux.go` (`NewContainerManager`) |
//! | `resolvConf` is not systemd-resolved's stub (127.0.0.53) | CoreDNS (`forward . /etc/resolv.conf` + `loop`) detects a loop and crashes | kubeadm `cmd/kubeadm/app/componentconfigs/kubelet.go` (`/run/systemd/resolve/resolv.conf` when resolved runs); CoreDNS `loop` plugin docs |
//! | a stacked API server talks to its own member (`--etcd-servers=https://127.0.0.1:2379`), whose server certificate names 127.0.0.1 | the API server resolves `/etc/hosts` names only when its pod starts: a replaced member's new address is never seen | kubeadm `cmd/kubeadm/app/phases/controlplane/manifests.go` (local etcd endpoint) |

/// One kernel setting a node needs, with who needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KernelTunable {
    pub key: &'static str,
    pub value: &'static str,
    pub needed_by: &'static str,
}

/// Every kernel setting rafter puts in `/etc/sysctl.d/99-rafter.conf` and applies.
pub const KERNEL_TUNABLES: [KernelTunable; 9] = [
    KernelTunable {
        key: "net.bridge.bridge-nf-call-iptables",
        value: "1",
        needed_by: "kube-proxy and the CNI: bridged pod traffic goes through iptables",
    },
    KernelTunable {
        key: "net.bridge.bridge-nf-call-ip6tables",
        value: "1",
        needed_by: "kube-proxy and the CNI: bridged pod traffic goes through ip6tables",
    },
    KernelTunable {
        key: "net.ipv4.ip_forward",
        value: "1",
        needed_by: "the node forwards pod traffic (kubeadm preflight)",
    },
    KernelTunable {
        key: "vm.overcommit_memory",
        value: "1",
        needed_by: "kubelet with protectKernelDefaults",
    },
    KernelTunable {
        key: "vm.panic_on_oom",
        value: "0",
        needed_by: "kubelet with protectKernelDefaults",
    },
    KernelTunable {
        key: "kernel.panic",
        value: "10",
        needed_by: "kubelet with protectKernelDefaults",
    },
    KernelTunable {
        key: "kernel.panic_on_oops",
        value: "1",
        needed_by: "kubelet with protectKernelDefaults",
    },
    KernelTunable {
        key: "kernel.keys.root_maxkeys",
        value: "1000000",
        needed_by: "kubelet with protectKernelDefaults",
    },
    KernelTunable {
        key: "kernel.keys.root_maxbytes",
        value: "25000000",
        needed_by: "kubelet with protectKernelDefaults",
    },
];

/// The `--etcd-servers` of a stacked API server: its own member, over loopback.
pub const LOCAL_ETCD_SERVER: &str = "https://127.0.0.1:2379";

/// Where the kubelet reads the resolver configuration its pods inherit: a link the
/// bootstrap points at systemd-resolved's upstream file when resolved's stub is in use, else
/// at `/etc/resolv.conf`.
pub const KUBELET_RESOLV_CONF: &str = "/var/lib/kubelet/resolv.conf";
