//! The state store's layout: every key rafter keeps for a cluster, and which of the cluster's
//! machines may read or write which part of it.
//!
//! Everything that names a state key takes it from here: the stores of the spec, the
//! resource record, the lock and the PKI; the publishing of node bundles; the user-data URLs
//! instances fetch them from; and the IAM policies that let them (`model::iam` turns each
//! [`NodeGrant`] into S3 statements). So a path and the policy that guards it cannot drift
//! apart.
//!
//! ```text
//! <cluster>/config.yaml                      completed spec                    user only
//! <cluster>/resources.json                   ids of applied resources          user only
//! <cluster>/lock                             the cluster lock                  user only
//! <cluster>/pki/<authority>.pem              CA certificates and keys          user only
//! <cluster>/pki/bootstrap-token.pem, encryption-key.pem                        user only
//! <cluster>/pki/nodes/<node>.json            kept leaf certificates and keys   user only
//! <cluster>/control-plane/<member>/bundle.sh a member's files (CA keys)        control plane
//! <cluster>/etcd-peers/<member>              a member's address                control plane (read, write)
//! <cluster>/etcd-peers/_formed               whether etcd ever formed          control plane (read, write)
//! <cluster>/etcd-peers/_backup               a backup asked for now            control plane (read, write)
//! <cluster>/etcd-status/<member>             the member's etcd, as it sees it  control plane (write)
//! <cluster>/etcd-restore/request             a restore the members carry out    user; control plane (read)
//! <cluster>/etcd-restore/<id>.db             that restore's snapshot (secrets)  user; control plane (read)
//! <cluster>/node-groups/<group>/bundle.sh    a node group's files (no CA key)  that group only
//! <cluster>/node-status/control-plane/<member>/<host>   how an instance's boot went   control plane (write)
//! <cluster>/node-status/node-groups/<group>/<host>      how an instance's boot went   that group (write)
//! <cluster>/backups/etcd/<id>/snapshot.db    an etcd snapshot (every secret)   user; control plane (write)
//! <cluster>/backups/etcd/<id>/backup.json    what the snapshot holds           user; control plane (write)
//! <cluster>/operations/<operation>.json      a day-two operation's journal     user only
//! ```

/// Keys written by rafter itself, relative to the cluster's part of the store.
const SPEC_FILE: &str = "config.yaml";
const RESOURCES_FILE: &str = "resources.json";
const LOCK_FILE: &str = "lock";
const PKI_DIR: &str = "pki";
const CONTROL_PLANE_DIR: &str = "control-plane";
const NODE_GROUPS_DIR: &str = "node-groups";
const BUNDLE_FILE: &str = "bundle.sh";
/// Where instances report how their first boot went, one object per instance.
const NODE_STATUS_DIR: &str = "node-status";

/// Where etcd snapshots are kept, one directory per backup.
const ETCD_BACKUPS_DIR: &str = "backups/etcd";
const SNAPSHOT_FILE: &str = "snapshot.db";
/// A backup's record, written after its snapshot: a backup without one is incomplete.
const BACKUP_RECORD_FILE: &str = "backup.json";
/// Journals of day-two operations (a restore, an upgrade), one per operation.
const OPERATIONS_DIR: &str = "operations";

/// Where AWS control-plane members publish their addresses: one object per member.
pub const ETCD_PEERS_DIR: &str = "etcd-peers";

/// Where each AWS control-plane member reports its etcd's state every 30 s (one object per
/// member): rafter's evidence for `validate` and the gates of day-two operations, since it
/// cannot reach a private etcd itself.
const ETCD_STATUS_DIR: &str = "etcd-status";

/// Where the members' status reports are, from the cluster's `configBase`.
pub fn etcd_status_url(config_base: &str) -> String {
    format!("{}/{ETCD_STATUS_DIR}", config_base.trim_end_matches('/'))
}

/// The key of one member's status report.
pub fn etcd_status_key(cluster: &str, member: &str) -> String {
    under(cluster, &format!("{ETCD_STATUS_DIR}/{member}"))
}

/// Where rafter stages a restore of an AWS cluster's etcd for its members
/// (`rolling::restore`): the request and a copy of the one snapshot it restores. The
/// members may read it and nothing more; they may never read the backups themselves.
const ETCD_RESTORE_DIR: &str = "etcd-restore";
/// The restore request's name in [`ETCD_RESTORE_DIR`].
const ETCD_RESTORE_REQUEST: &str = "request";

/// Where the members find a restore request and its snapshot, from the cluster's
/// `configBase`.
pub fn etcd_restore_url(config_base: &str) -> String {
    format!("{}/{ETCD_RESTORE_DIR}", config_base.trim_end_matches('/'))
}

/// The name of the restore request in the directory [`etcd_restore_url`] names.
pub const fn etcd_restore_request_name() -> &'static str {
    ETCD_RESTORE_REQUEST
}

/// The key of the restore request.
pub fn etcd_restore_request_key(cluster: &str) -> String {
    under(
        cluster,
        &format!("{ETCD_RESTORE_DIR}/{ETCD_RESTORE_REQUEST}"),
    )
}

/// Everything staged for restores: the request and the staged snapshots.
pub fn etcd_restore_prefix(cluster: &str) -> String {
    under(cluster, ETCD_RESTORE_DIR)
}

/// The snapshot restore `id` restores, staged for the members.
pub fn etcd_restore_snapshot_key(cluster: &str, id: &str) -> String {
    under(cluster, &format!("{ETCD_RESTORE_DIR}/{id}.db"))
}

/// Where bundles were kept before the layout split control-plane and worker material: every
/// worker could read it. Publishing removes it.
const LEGACY_NODES_DIR: &str = "nodes";

/// The prefix of the bundles the previous layout kept (see [`LEGACY_NODES_DIR`]).
pub fn legacy_bundles_prefix(cluster: &str) -> String {
    under(cluster, LEGACY_NODES_DIR)
}

/// A key under the cluster's part of the store, from its parts.
fn under(cluster: &str, relative: &str) -> String {
    format!("{cluster}/{relative}")
}

pub fn spec_key(cluster: &str) -> String {
    under(cluster, SPEC_FILE)
}

pub fn resources_key(cluster: &str) -> String {
    under(cluster, RESOURCES_FILE)
}

pub fn lock_key(cluster: &str) -> String {
    under(cluster, LOCK_FILE)
}

/// A throwaway object that proves the store refuses a second create-only write (one per
/// probe, so concurrent runs never meet each other's).
pub fn lock_probe_key(cluster: &str, probe: &str) -> String {
    under(cluster, &format!("{LOCK_FILE}-probes/{probe}"))
}

/// One of the cluster's PKI objects (`ca.pem`, `bootstrap-token`…).
pub fn pki_key(cluster: &str, object: &str) -> String {
    under(cluster, &format!("{PKI_DIR}/{object}"))
}

/// The leaf certificates kept for one node.
pub fn node_leaves_key(cluster: &str, node: &str) -> String {
    format!("{}{node}.json", node_leaves_prefix(cluster))
}

/// Where every node's kept leaf certificates are (`<prefix><node>.json`).
pub fn node_leaves_prefix(cluster: &str) -> String {
    pki_key(cluster, "nodes/")
}

/// The prefix under which every etcd backup of the cluster is kept.
pub fn etcd_backups_prefix(cluster: &str) -> String {
    under(cluster, ETCD_BACKUPS_DIR)
}

/// Where control-plane members put scheduled backups, from the cluster's `configBase`.
pub fn etcd_backups_url(config_base: &str) -> String {
    format!("{}/{ETCD_BACKUPS_DIR}", config_base.trim_end_matches('/'))
}

/// The snapshot of backup `id`.
pub fn etcd_backup_snapshot_key(cluster: &str, id: &str) -> String {
    under(cluster, &format!("{ETCD_BACKUPS_DIR}/{id}/{SNAPSHOT_FILE}"))
}

/// The record of backup `id` (see [`BACKUP_RECORD_FILE`]).
pub fn etcd_backup_record_key(cluster: &str, id: &str) -> String {
    under(
        cluster,
        &format!("{ETCD_BACKUPS_DIR}/{id}/{BACKUP_RECORD_FILE}"),
    )
}

/// The journal of day-two operation `operation` (`restore-etcd`, …).
pub fn operation_journal_key(cluster: &str, operation: &str) -> String {
    under(cluster, &format!("{OPERATIONS_DIR}/{operation}.json"))
}

/// The prefix of every instance's boot report.
pub fn node_status_prefix(cluster: &str) -> String {
    under(cluster, NODE_STATUS_DIR)
}

/// What the store keeps for one AWS control-plane member alone, which a member removed
/// from the control plane leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberObjects {
    /// Its bundle, its address record, its etcd report and its kept leaf certificates.
    pub keys: Vec<String>,
    /// Its instances' boot reports: a path prefix (for `delete_prefix`).
    pub boot_reports: String,
}

/// What the store keeps for `member` of `cluster` alone.
pub fn member_objects(cluster: &str, member: &str) -> MemberObjects {
    let owner = BundleOwner::ControlPlaneMember(member);
    MemberObjects {
        keys: vec![
            owner.key(cluster),
            etcd_peer_key(cluster, member),
            etcd_status_key(cluster, member),
            node_leaves_key(cluster, member),
        ],
        boot_reports: under(cluster, &owner.status_dir()),
    }
}

/// What a node's bundle belongs to, which decides where it is kept and who may read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleOwner<'a> {
    /// One control-plane member, by its member name (`eu-west-1a`).
    ControlPlaneMember(&'a str),
    /// One node group, by its name in the spec.
    NodeGroup(&'a str),
}

impl BundleOwner<'_> {
    /// The bundle's path relative to the cluster's part of the store.
    pub fn relative_path(&self) -> String {
        match self {
            BundleOwner::ControlPlaneMember(member) => {
                format!("{CONTROL_PLANE_DIR}/{member}/{BUNDLE_FILE}")
            }
            BundleOwner::NodeGroup(group) => format!("{NODE_GROUPS_DIR}/{group}/{BUNDLE_FILE}"),
        }
    }

    /// The bundle's key in the store.
    pub fn key(&self, cluster: &str) -> String {
        under(cluster, &self.relative_path())
    }

    /// Where the owner's instances report how their boot went (an object per instance),
    /// relative to the cluster's part of the store.
    pub fn status_dir(&self) -> String {
        match self {
            BundleOwner::ControlPlaneMember(member) => {
                format!("{NODE_STATUS_DIR}/{CONTROL_PLANE_DIR}/{member}")
            }
            BundleOwner::NodeGroup(group) => {
                format!("{NODE_STATUS_DIR}/{NODE_GROUPS_DIR}/{group}")
            }
        }
    }

    /// The key of one instance's boot report.
    pub fn status_key(&self, cluster: &str, host: &str) -> String {
        under(cluster, &format!("{}/{host}", self.status_dir()))
    }

    /// Where an instance reports how its boot went, from the cluster's `configBase`.
    pub fn status_url(&self, config_base: &str) -> String {
        format!(
            "{}/{}",
            config_base.trim_end_matches('/'),
            self.status_dir()
        )
    }

    /// Where an instance fetches its bundle, from the cluster's `configBase`.
    pub fn url(&self, config_base: &str) -> String {
        format!(
            "{}/{}",
            config_base.trim_end_matches('/'),
            self.relative_path()
        )
    }
}

/// Where the members' address records are, from the cluster's `configBase`.
pub fn etcd_peers_url(config_base: &str) -> String {
    format!("{}/{ETCD_PEERS_DIR}", config_base.trim_end_matches('/'))
}

/// The record a control-plane member writes once the etcd cluster it serves is healthy
/// (`etcd-peers.sh formed`): from then on no member ever starts a new cluster. Beside the
/// members' address records, under a name no member can have (members are named after
/// zones).
pub const ETCD_FORMED_RECORD: &str = "_formed";

/// The record naming the etcd members while rafter adds or removes some
/// (`rolling::membership`): beside the others, under a name no member can have.
pub const ETCD_MEMBERS_RECORD: &str = "_members";

/// The record asking the leading member for a backup now (`rafter backup etcd` on AWS):
/// beside the others, under a name no member can have. It holds the request's id; every
/// member takes one request once (only the leader takes the backup).
pub const ETCD_BACKUP_REQUEST_RECORD: &str = "_backup";

/// The key of the backup request.
pub fn etcd_backup_request_key(cluster: &str) -> String {
    etcd_peer_key(cluster, ETCD_BACKUP_REQUEST_RECORD)
}

/// The key of the members record.
pub fn etcd_members_key(cluster: &str) -> String {
    etcd_peer_key(cluster, ETCD_MEMBERS_RECORD)
}

/// The key of the record that the etcd cluster formed.
pub fn etcd_formed_key(cluster: &str) -> String {
    etcd_peer_key(cluster, ETCD_FORMED_RECORD)
}

/// The key of one member's address record.
pub fn etcd_peer_key(cluster: &str, member: &str) -> String {
    under(cluster, &format!("{ETCD_PEERS_DIR}/{member}"))
}

/// The prefix listing every member's address record.
pub fn etcd_peers_prefix(cluster: &str) -> String {
    under(cluster, ETCD_PEERS_DIR)
}

/// What one kind of machine may do in the cluster's part of the store: directories (relative,
/// without a trailing `/`) whose objects it may get or put. Nothing else: no listing, no
/// other key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeGrant {
    /// Who this is, for policy statement ids: `ControlPlane`, `NodeGroup`.
    pub holder: &'static str,
    pub read: Vec<String>,
    pub write: Vec<String>,
}

impl NodeGrant {
    /// Control-plane members read their bundles (all members share one role, and every
    /// member's bundle holds the same CA keys), read and write the address records, write
    /// their etcd status reports, read a restore rafter staged for them, and
    /// write scheduled etcd backups: never read or list them, so a backup is no way into
    /// the store, and never delete them.
    pub fn control_plane() -> Self {
        Self {
            holder: "ControlPlane",
            read: vec![
                CONTROL_PLANE_DIR.to_string(),
                ETCD_PEERS_DIR.to_string(),
                ETCD_RESTORE_DIR.to_string(),
            ],
            write: vec![
                ETCD_PEERS_DIR.to_string(),
                ETCD_STATUS_DIR.to_string(),
                format!("{NODE_STATUS_DIR}/{CONTROL_PLANE_DIR}"),
                ETCD_BACKUPS_DIR.to_string(),
            ],
        }
    }

    /// A node group's instances read their own group's bundle and report how their boot
    /// went, and nothing else.
    pub fn node_group(group: &str) -> Self {
        Self {
            holder: "NodeGroup",
            read: vec![format!("{NODE_GROUPS_DIR}/{group}")],
            write: vec![BundleOwner::NodeGroup(group).status_dir()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_members_objects_are_valid_keys_of_that_member_alone() {
        let objects = member_objects("c.example.com", "eu-west-1a");
        for key in objects.keys.iter().chain([&objects.boot_reports]) {
            crate::state::check_key(key).unwrap();
            assert!(key.contains("eu-west-1a"), "{key}");
        }
        let other = member_objects("c.example.com", "eu-west-1a-2");
        for key in &other.keys {
            assert!(!objects.keys.contains(key), "{key}");
        }
        assert!(
            !format!("{}/", other.boot_reports).starts_with(&format!("{}/", objects.boot_reports))
        );
    }

    /// Whether `relative` (a key relative to the cluster's part) lies in one of `dirs`, as the
    /// IAM statements made from them (`<dir>/*`) match it.
    fn inside(dirs: &[String], relative: &str) -> bool {
        dirs.iter().any(|dir| {
            relative
                .strip_prefix(dir.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
    }

    impl NodeGrant {
        fn may_read(&self, relative: &str) -> bool {
            inside(&self.read, relative)
        }

        fn may_write(&self, relative: &str) -> bool {
            inside(&self.write, relative)
        }
    }

    /// Every key that holds a private key or a token the user keeps to themselves.
    fn user_only_keys() -> Vec<String> {
        let cluster = "c.example.com";
        let mut keys = vec![
            spec_key(cluster),
            resources_key(cluster),
            lock_key(cluster),
            pki_key(cluster, "ca.pem"),
            pki_key(cluster, "bootstrap-token"),
            node_leaves_key(cluster, "eu-west-1a"),
        ];
        for key in &mut keys {
            *key = key.strip_prefix("c.example.com/").unwrap().to_string();
        }
        keys
    }

    #[test]
    fn no_machine_reads_what_only_the_user_keeps() {
        for grant in [NodeGrant::control_plane(), NodeGrant::node_group("workers")] {
            for key in user_only_keys() {
                assert!(!grant.may_read(&key), "{grant:?} may read {key}");
                assert!(!grant.may_write(&key), "{grant:?} may write {key}");
            }
        }
    }

    #[test]
    fn a_node_group_reads_its_own_bundle_only() {
        let workers = NodeGrant::node_group("workers");
        let own = BundleOwner::NodeGroup("workers").relative_path();
        assert!(workers.may_read(&own));
        for other in [
            BundleOwner::NodeGroup("workers-2").relative_path(),
            BundleOwner::NodeGroup("gpu").relative_path(),
            BundleOwner::ControlPlaneMember("eu-west-1a").relative_path(),
            format!("{ETCD_PEERS_DIR}/eu-west-1a"),
        ] {
            assert!(!workers.may_read(&other), "workers may read {other}");
        }
        // They write their own boot reports, and nothing else.
        let own_report = format!(
            "{}/ip-10-0-1-2",
            BundleOwner::NodeGroup("workers").status_dir()
        );
        assert!(workers.may_write(&own_report));
        for other in [
            format!("{}/ip-10-0-1-2", BundleOwner::NodeGroup("gpu").status_dir()),
            format!(
                "{}/ip-10-0-1-2",
                BundleOwner::ControlPlaneMember("eu-west-1a").status_dir()
            ),
            own.clone(),
            format!("{ETCD_PEERS_DIR}/eu-west-1a"),
        ] {
            assert!(!workers.may_write(&other), "workers may write {other}");
        }
    }

    #[test]
    fn the_control_plane_reads_its_bundles_and_publishes_addresses_only() {
        let control_plane = NodeGrant::control_plane();
        assert!(
            control_plane.may_read(&BundleOwner::ControlPlaneMember("eu-west-1b").relative_path())
        );
        assert!(!control_plane.may_read(&BundleOwner::NodeGroup("workers").relative_path()));
        assert!(control_plane.may_write(&format!("{ETCD_PEERS_DIR}/eu-west-1b")));
        assert!(
            !control_plane
                .may_write(&BundleOwner::ControlPlaneMember("eu-west-1b").relative_path())
        );
    }

    #[test]
    fn only_the_control_plane_reads_a_staged_restore_and_nobody_reads_the_backups() {
        let relative = |key: String| key.strip_prefix("c/").unwrap().to_string();
        let request = relative(etcd_restore_request_key("c"));
        let snapshot = relative(etcd_restore_snapshot_key("c", "20261203T101500Z"));
        let backup = relative(etcd_backup_snapshot_key("c", "20261203T101500Z"));
        let control_plane = NodeGrant::control_plane();
        let workers = NodeGrant::node_group("workers");
        for key in [&request, &snapshot] {
            assert!(control_plane.may_read(key), "{key}");
            assert!(!control_plane.may_write(key), "{key}");
            assert!(!workers.may_read(key), "{key}");
            assert!(!workers.may_write(key), "{key}");
        }
        assert!(!control_plane.may_read(&backup));
        assert!(!workers.may_read(&backup));
        assert_eq!(
            format!(
                "{}/{}",
                etcd_restore_url("s3://b/p/c/"),
                etcd_restore_request_name()
            ),
            format!("s3://b/p/{}", etcd_restore_request_key("c"))
        );
    }

    #[test]
    fn urls_and_keys_name_the_same_object() {
        let owner = BundleOwner::NodeGroup("workers");
        assert_eq!(owner.key("c"), "c/node-groups/workers/bundle.sh");
        assert_eq!(
            owner.url("s3://bucket/state/c/"),
            "s3://bucket/state/c/node-groups/workers/bundle.sh"
        );
        assert_eq!(etcd_peers_url("s3://b/c"), "s3://b/c/etcd-peers");
        assert_eq!(etcd_peer_key("c", "m"), "c/etcd-peers/m");
    }
}
