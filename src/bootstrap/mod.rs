//! What a node receives to join the cluster, rendered from the templates in `templates/node/`.
//! So far: the stacked etcd member of a control-plane node.

pub mod etcd;

pub use etcd::{EtcdMember, InitialState, etcd_manifest};
