//! etcd membership over SSH, with the `etcdctl` rafter puts beside each member
//! ([`crate::bootstrap::etcd::ETCDCTL`]): list, add, remove, and wait for health.

use std::time::Duration;

use serde::Deserialize;

use crate::bootstrap::etcd::ETCDCTL;
use crate::ssh::{Session, shell_quote};

use super::HostsError;

/// A member as etcd lists it. A member added but not started yet has no name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Member {
    #[serde(rename = "ID")]
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "peerURLs", default)]
    pub peer_urls: Vec<String>,
}

#[derive(Deserialize)]
struct MemberList {
    #[serde(default)]
    members: Vec<Member>,
}

async fn etcdctl(session: &Session, what: &str, args: &str) -> Result<String, HostsError> {
    let output = session
        .run_checked(
            what,
            &format!("{ETCDCTL} --command-timeout=10s {args}"),
            b"",
        )
        .await?;
    Ok(output.stdout_text())
}

/// The header etcd puts on every answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    #[serde(default)]
    pub cluster_id: u64,
    #[serde(default)]
    pub member_id: u64,
    #[serde(default)]
    pub revision: i64,
}

/// One member's `etcdctl endpoint status -w json`.
#[derive(Debug, Clone, Deserialize)]
pub struct EndpointStatus {
    #[serde(rename = "Endpoint")]
    pub endpoint: String,
    #[serde(rename = "Status")]
    pub status: Status,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub header: Header,
    #[serde(default)]
    pub leader: u64,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub raft_index: u64,
    #[serde(default)]
    pub raft_applied_index: u64,
    /// What the member reports wrong with itself (alarms, a lost leader).
    #[serde(default)]
    pub errors: Vec<String>,
}

impl Status {
    pub fn leads(&self) -> bool {
        self.leader != 0 && self.header.member_id == self.leader
    }
}

/// Every member's status, as the member on `session`'s host finds the cluster.
pub async fn cluster_status(session: &Session) -> Result<Vec<EndpointStatus>, HostsError> {
    let json = etcdctl(
        session,
        "etcdctl endpoint status --cluster",
        "endpoint status --cluster -w json",
    )
    .await?;
    parse(session, "etcdctl endpoint status", &json)
}

/// The status of the member at `client_url`, asked from `session`'s host; `Err` with what
/// etcdctl said when it does not answer.
pub async fn endpoint_status(
    session: &Session,
    client_url: &str,
) -> Result<Result<Status, String>, HostsError> {
    let output = session
        .run_as_root(
            &format!(
                "{ETCDCTL} --dial-timeout=3s --command-timeout=5s endpoint status -w json --endpoints={}",
                shell_quote(client_url)
            ),
            b"",
        )
        .await?;
    if !output.success() {
        let said = output.stderr_text();
        return Ok(Err(said
            .trim()
            .lines()
            .last()
            .unwrap_or("no answer")
            .to_string()));
    }
    let mut statuses: Vec<EndpointStatus> =
        parse(session, "etcdctl endpoint status", &output.stdout_text())?;
    Ok(statuses
        .pop()
        .map(|status| status.status)
        .ok_or_else(|| "etcdctl printed no status".to_string()))
}

/// The alarms raised in the cluster (`NOSPACE`, `CORRUPT`), one line each.
pub async fn alarms(session: &Session) -> Result<Vec<String>, HostsError> {
    Ok(etcdctl(session, "etcdctl alarm list", "alarm list")
        .await?
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_string)
        .collect())
}

/// etcd's JSON answer `json` to `what`, or an error naming the host.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    session: &Session,
    what: &str,
    json: &str,
) -> Result<T, HostsError> {
    serde_json::from_str(json).map_err(|error| {
        HostsError::Etcd(format!(
            "{}: {what} printed something unexpected ({error})",
            session.target().describe()
        ))
    })
}

/// The members, as the member on `session`'s host sees them.
pub async fn members(session: &Session) -> Result<Vec<Member>, HostsError> {
    let json = etcdctl(session, "etcdctl member list", "member list -w json").await?;
    let list: MemberList = parse(session, "etcdctl member list", &json)?;
    Ok(list.members)
}

/// How long a membership change may wait for etcd to settle: a member that just joined counts
/// only once it has been connected a few seconds (etcd's strict reconfiguration check), and
/// a leader lost with a member takes an election.
const SETTLE_WITHIN: Duration = Duration::from_secs(60);

/// etcd's answers that mean "not now": a recent change or restart has not settled, or a
/// leader is being elected.
const NOT_NOW: [&str; 5] = [
    "unhealthy cluster",
    "request timed out",
    "leader changed",
    "no leader",
    "context deadline exceeded",
];

/// Runs the membership change `args`, retrying while etcd answers "not now" (see
/// [`NOT_NOW`]). A change that timed out may have been made all the same: its retry then
/// answers `done_already`, which counts as done.
async fn change_membership(
    session: &Session,
    what: &str,
    args: &str,
    done_already: &str,
) -> Result<(), HostsError> {
    let command = format!("{ETCDCTL} --command-timeout=10s {args}");
    let deadline = tokio::time::Instant::now() + SETTLE_WITHIN;
    let mut retried = false;
    loop {
        let output = session.run_as_root(&command, b"").await?;
        let said = output.stderr_text();
        if output.success() || (retried && said.contains(done_already)) {
            return Ok(());
        }
        let transient = NOT_NOW.iter().any(|reason| said.contains(reason));
        if !transient || tokio::time::Instant::now() >= deadline {
            return Err(HostsError::Etcd(format!(
                "{}: etcdctl {what} failed: {}",
                session.target().describe(),
                said.lines().last().unwrap_or_default()
            )));
        }
        retried = true;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Adds `name` at `peer_url` (etcd then waits for it to start).
pub async fn add(session: &Session, name: &str, peer_url: &str) -> Result<(), HostsError> {
    change_membership(
        session,
        &format!("member add {name}"),
        &format!(
            "member add {} --peer-urls={}",
            shell_quote(name),
            shell_quote(peer_url)
        ),
        "Peer URLs already exists",
    )
    .await
}

pub async fn remove(session: &Session, member: &Member) -> Result<(), HostsError> {
    change_membership(
        session,
        &format!("member remove {}", member.name),
        &format!("member remove {:x}", member.id),
        "member not found",
    )
    .await
}

/// Waits until every endpoint in `client_urls` answers healthy, asking from `session`'s
/// host; gives up after `limit` with the last answer.
pub async fn wait_healthy(
    session: &Session,
    client_urls: &[String],
    limit: Duration,
) -> Result<(), HostsError> {
    let command = format!(
        "{ETCDCTL} --command-timeout=5s endpoint health --endpoints={}",
        shell_quote(&client_urls.join(","))
    );
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let output = session.run_as_root(&command, b"").await?;
        if output.success() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(HostsError::Etcd(format!(
                "etcd did not become healthy within {limit:?} (asked from {}): {}",
                session.target().name,
                output.stderr_text().trim()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
