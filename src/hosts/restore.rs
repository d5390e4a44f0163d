//! Restoring a bare-host cluster's etcd from one backup, as etcd's disaster-recovery
//! procedure says (<https://etcd.io/docs/v3.5/op-guide/recovery/>) and Kubernetes' docs add
//! (<https://kubernetes.io/docs/tasks/administer-cluster/configure-upgrade-etcd/#restoring-an-etcd-cluster>):
//! stop every API server, stop every member, restore every member from the same snapshot
//! into a new cluster (a new cluster ID; with `--bump-revision` and `--mark-compacted` where
//! the release has them, so watchers relist instead of seeing revisions go backwards), start
//! the members together, check they agree, then bring the API servers back one host at a
//! time.
//!
//! Each step is idempotent and the operation's journal ([`crate::state::journal`]) records
//! each finished one, so a restore interrupted anywhere is finished by running it again.
//! Nothing is deleted: each member's data is moved aside under a name that carries the
//! restore's id.

use futures_util::future::join_all;

use crate::backup::BackupRecord;
use crate::bootstrap::etcd::{DATA_DIR, ETCDCTL, ETCDUTL, EtcdMember};
use crate::bootstrap::node::{CONTROL_PLANE_COMPONENTS, STATIC_POD_DIR, static_pod_manifest};
use crate::ssh::{Session, shell_quote};

use super::HostsError;
use super::connect::Connected;
use super::etcd;

/// The journal's name for a restore.
pub const OPERATION: &str = crate::backup::RESTORE_OPERATION;
use crate::backup::REVISION_BUMP;
use crate::bootstrap::node::RESTORE_STOPPED_MANIFEST_DIR as STOPPED_MANIFESTS;
const HEALTHY_WITHIN: std::time::Duration = std::time::Duration::from_secs(120);

/// One step of a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    StopControlPlane(String),
    StopEtcd,
    Restore(String),
    StartEtcd,
    StartControlPlane(String),
}

impl Step {
    /// The step's name in the journal.
    pub fn key(&self) -> String {
        match self {
            Step::StopControlPlane(host) => format!("stop-control-plane {host}"),
            Step::StopEtcd => "stop-etcd".to_string(),
            Step::Restore(host) => format!("restore {host}"),
            Step::StartEtcd => "start-etcd".to_string(),
            Step::StartControlPlane(host) => format!("start-control-plane {host}"),
        }
    }

    /// What the step does, for the plan.
    pub fn describe(&self) -> String {
        match self {
            Step::StopControlPlane(host) => format!(
                "{host}: move the API server, controller manager and scheduler manifests out of {STATIC_POD_DIR} (the kubelet stops them)"
            ),
            Step::StopEtcd => "every member: stop etcd".to_string(),
            Step::Restore(host) => format!(
                "{host}: move etcd's data aside (kept, not deleted) and restore the snapshot as member {host} of a new cluster"
            ),
            Step::StartEtcd => "every member: start etcd together; gate: every member healthy, the members the spec names, one data hash".to_string(),
            Step::StartControlPlane(host) => format!(
                "{host}: put the control-plane manifests back and restart the kubelet (one host at a time)"
            ),
        }
    }
}

/// The steps of a restore onto `members`, in order.
pub fn steps(members: &[EtcdMember]) -> Vec<Step> {
    let hosts = || members.iter().map(|member| member.name.clone());
    let mut steps: Vec<Step> = hosts().map(Step::StopControlPlane).collect();
    steps.push(Step::StopEtcd);
    steps.extend(hosts().map(Step::Restore));
    steps.push(Step::StartEtcd);
    steps.extend(hosts().map(Step::StartControlPlane));
    steps
}

/// The step named `key` in `steps`.
pub fn step_named<'s>(steps: &'s [Step], key: &str) -> Option<&'s Step> {
    steps.iter().find(|step| step.key() == key)
}

/// Whether the etcd release on `session`'s host can bump revisions at a restore.
pub async fn bumps_revisions(session: &Session) -> Result<bool, HostsError> {
    let help = session
        .run_as_root(&format!("{ETCDUTL} snapshot restore --help 2>&1"), b"")
        .await?;
    Ok(help.stdout_text().contains("--bump-revision"))
}

/// A restore under way: the hosts, the backup and this restore's id.
pub struct Restore<'a> {
    pub cluster_name: &'a str,
    pub members: &'a [EtcdMember],
    pub hosts: &'a Connected,
    pub backup: &'a BackupRecord,
    pub snapshot: &'a [u8],
    /// The journal's id: names the data moved aside and the new cluster's token.
    pub id: &'a str,
    /// The hosts whose etcd release cannot bump revisions ([`bumps_revisions`]).
    pub cannot_bump: &'a [String],
}

impl Restore<'_> {
    fn session(&self, host: &str) -> Result<&Session, HostsError> {
        self.hosts
            .session(host)
            .ok_or_else(|| HostsError::Setup(format!("control-plane host {host} is not connected")))
    }

    /// Runs one step; what it did, for the operator.
    pub async fn run(&self, step: &Step) -> Result<String, HostsError> {
        match step {
            Step::StopControlPlane(host) => self.stop_control_plane(host).await,
            Step::StopEtcd => {
                self.on_every_member("systemctl stop etcd", "stop etcd")
                    .await
            }
            Step::Restore(host) => self.restore(host).await,
            Step::StartEtcd => self.start_etcd().await,
            Step::StartControlPlane(host) => self.start_control_plane(host).await,
        }
    }

    async fn stop_control_plane(&self, host: &str) -> Result<String, HostsError> {
        let moves: Vec<String> = CONTROL_PLANE_COMPONENTS
            .iter()
            .map(|component| {
                let manifest = shell_quote(&static_pod_manifest(component));
                format!("if [ -e {manifest} ]; then mv -f {manifest} {STOPPED_MANIFESTS}/; fi")
            })
            .collect();
        self.session(host)?
            .run_checked(
                "move the control-plane manifests aside",
                &format!("set -e; mkdir -p {STOPPED_MANIFESTS}; {}", moves.join("; ")),
                b"",
            )
            .await?;
        Ok(format!(
            "{host}: control-plane manifests moved to {STOPPED_MANIFESTS}"
        ))
    }

    async fn on_every_member(&self, script: &str, what: &str) -> Result<String, HostsError> {
        let runs = join_all(self.members.iter().map(|member| async move {
            self.session(&member.name)?
                .run_checked(what, script, b"")
                .await
                .map_err(HostsError::from)
        }))
        .await;
        runs.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(format!("{what}: done on {} member(s)", self.members.len()))
    }

    async fn restore(&self, host: &str) -> Result<String, HostsError> {
        let member = self
            .members
            .iter()
            .find(|member| member.name == host)
            .ok_or_else(|| {
                HostsError::Setup(format!("{host} is not an etcd member of the spec"))
            })?;
        let session = self.session(host)?;
        let bump = !self.cannot_bump.iter().any(|name| name == host);
        let initial_cluster = self
            .members
            .iter()
            .map(|member| format!("{}={}", member.name, member.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let bump_flags = match bump {
            true => format!("--bump-revision={REVISION_BUMP} --mark-compacted"),
            false => String::new(),
        };
        let data = shell_quote(DATA_DIR);
        // The data moved aside and the restore staged where a rename of `member` stays on one
        // file system: beside the data directory, or inside it when it is a mount point.
        let script = format!(
            r#"set -e; umask 077
data={data}
if mountpoint -q "$data" 2>/dev/null; then keep="$data/.rafter"; else keep="$data.rafter"; fi
aside="$keep/before-restore-{id}"; staging="$keep/restoring"; snapshot="$keep/restore-{id}.db"
mkdir -p "$keep" "$aside"; chmod 700 "$keep"
# One restore at a time on this host (a run killed mid-step may still be finishing it).
exec 9>"$keep/restore.lock"; flock 9
# The snapshot holds every Secret of the cluster: it does not stay, whatever happens.
trap 'rm -f "$snapshot"; rm -rf "$staging"' EXIT
cat > "$snapshot"
if ! echo "{sha}  $snapshot" | sha256sum -c --quiet >/dev/null 2>&1; then
  echo "the snapshot arrived damaged" >&2; exit 1
fi
rm -rf "$staging"
{ETCDUTL} snapshot restore "$snapshot" --data-dir "$staging" --name {name} \
  --initial-cluster {initial_cluster} --initial-cluster-token {token} \
  --initial-advertise-peer-urls {peer} {bump_flags} >/dev/null
if [ -e "$data/member" ]; then
  if [ -e "$aside/member" ]; then rm -rf "$data/member"; else mv "$data/member" "$aside/member"; fi
fi
mkdir -p "$data"; chmod 700 "$data"
mv "$staging/member" "$data/member"
echo "$aside""#,
            id = self.id,
            sha = self.backup.sha256,
            name = shell_quote(&member.name),
            initial_cluster = shell_quote(&initial_cluster),
            token = shell_quote(&format!("{}-restore-{}", self.cluster_name, self.id)),
            peer = shell_quote(&member.peer_url()),
        );
        let output = session
            .run_checked("restore the etcd snapshot", &script, self.snapshot)
            .await?;
        let aside = output.stdout_text().trim().to_string();
        Ok(format!(
            "{host}: restored backup {} at revision {}{}; the data it had is in {aside}",
            self.backup.id,
            self.backup.facts.revision,
            if bump {
                format!(" (revisions bumped by {REVISION_BUMP}, old ones marked compacted)")
            } else {
                String::new()
            }
        ))
    }

    async fn start_etcd(&self) -> Result<String, HostsError> {
        // Together: one member alone has no quorum and would wait for the others.
        self.on_every_member("systemctl start --no-block etcd", "start etcd")
            .await?;
        let first = self
            .members
            .first()
            .ok_or_else(|| HostsError::Setup("the spec has no control-plane host".to_string()))?;
        let session = self.session(&first.name)?;
        let client_urls: Vec<String> = self.members.iter().map(EtcdMember::client_url).collect();
        etcd::wait_healthy(session, &client_urls, HEALTHY_WITHIN).await?;
        let mut listed: Vec<String> = etcd::members(session)
            .await?
            .into_iter()
            .map(|member| member.name)
            .collect();
        listed.sort();
        let mut wanted: Vec<String> = self
            .members
            .iter()
            .map(|member| member.name.clone())
            .collect();
        wanted.sort();
        if listed != wanted {
            return Err(HostsError::Etcd(format!(
                "after the restore etcd lists members {listed:?}, the spec names {wanted:?}"
            )));
        }
        let hashes = hash_kv(session, &client_urls).await?;
        let distinct: std::collections::BTreeSet<u64> =
            hashes.iter().map(|(_, hash)| *hash).collect();
        if distinct.len() != 1 {
            return Err(HostsError::Etcd(format!(
                "the restored members disagree on their data: {}",
                hashes
                    .iter()
                    .map(|(endpoint, hash)| format!("{endpoint} {hash}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(format!(
            "etcd: {} members healthy, one data hash",
            self.members.len()
        ))
    }

    async fn start_control_plane(&self, host: &str) -> Result<String, HostsError> {
        let moves: Vec<String> = CONTROL_PLANE_COMPONENTS
            .iter()
            .map(|component| {
                let stopped = shell_quote(&format!("{STOPPED_MANIFESTS}/{component}.yaml"));
                format!("if [ -e {stopped} ]; then mv -f {stopped} {STATIC_POD_DIR}/; fi")
            })
            .collect();
        self.session(host)?
            .run_checked(
                "put the control-plane manifests back",
                &format!(
                    "set -e; {}; systemctl restart kubelet; systemctl is-active --quiet kubelet",
                    moves.join("; ")
                ),
                b"",
            )
            .await?;
        Ok(format!(
            "{host}: control-plane manifests back, kubelet restarted"
        ))
    }
}

#[derive(serde::Deserialize)]
struct HashKv {
    #[serde(rename = "Endpoint")]
    endpoint: String,
    #[serde(rename = "HashKV")]
    hash_kv: HashBody,
}

#[derive(serde::Deserialize)]
struct HashBody {
    #[serde(default)]
    hash: u64,
}

/// Each member's hash of its key-value store (`etcdctl endpoint hashkv`).
async fn hash_kv(
    session: &Session,
    client_urls: &[String],
) -> Result<Vec<(String, u64)>, HostsError> {
    let output = session
        .run_checked(
            "etcdctl endpoint hashkv",
            &format!(
                "{ETCDCTL} --command-timeout=30s endpoint hashkv -w json --endpoints={}",
                shell_quote(&client_urls.join(","))
            ),
            b"",
        )
        .await?;
    let hashes: Vec<HashKv> = serde_json::from_str(&output.stdout_text()).map_err(|error| {
        HostsError::Etcd(format!(
            "{}: etcdctl endpoint hashkv printed something unexpected ({error})",
            session.target().describe()
        ))
    })?;
    Ok(hashes
        .into_iter()
        .map(|hash| (hash.endpoint, hash.hash_kv.hash))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_stops_everything_before_it_restores_and_brings_api_servers_back_one_by_one() {
        let members: Vec<EtcdMember> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, name)| EtcdMember::at_ip(name, format!("10.0.0.{}", i + 1).parse().unwrap()))
            .collect();
        let steps = steps(&members);
        let keys: Vec<String> = steps.iter().map(Step::key).collect();
        assert_eq!(
            keys,
            [
                "stop-control-plane a",
                "stop-control-plane b",
                "stop-control-plane c",
                "stop-etcd",
                "restore a",
                "restore b",
                "restore c",
                "start-etcd",
                "start-control-plane a",
                "start-control-plane b",
                "start-control-plane c",
            ]
        );
        for key in &keys {
            assert_eq!(step_named(&steps, key).map(Step::key).as_ref(), Some(key));
        }
    }
}
