//! Carrying out an upgrade on bare hosts over SSH: the preflight that must pass before any
//! step, and each step followed by its gate. A gate is evidence, never a sleep: the cluster's
//! validation (every host's services, etcd's members, leader, raft indexes and alarms) must
//! pass several times in a row, plus what the step promised (the member on its new version,
//! the API server ready again).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use time::OffsetDateTime;

use crate::bootstrap::assets::{Download, NodeNeeds};
use crate::bootstrap::{self, EtcdMember, InitialState, NodeRole, RenderedNode, Role};
use crate::hosts::apply::{host_local_assets, run_bootstrap, write_bundle};
use crate::hosts::assets::{self as host_assets, HOST_CACHE, LocalFiles, asset_arch};
use crate::hosts::connect::Connected;
use crate::hosts::inventory::HostEntry;
use crate::hosts::{HostsError, etcd, facts};
use crate::pki::{ClusterPki, ClusterSecrets, NodeLeaves, PkiError};
use crate::spec::Cluster;
use crate::spec::versions::EtcdVersion;
use crate::ssh::{Session, shell_quote};
use crate::state::StateStore;
use crate::validate::{self, Finding};

use super::Step;
use super::drain::{self, DrainError};

/// Free space a host needs under /var for the new assets (etcd and Kubernetes binaries
/// unpacked, plus their verified downloads): about 300 MiB today, with room to spare.
pub const MIN_FREE_MB: u64 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error(transparent)]
    Hosts(#[from] HostsError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("preflight refused the upgrade; nothing was changed:\n  {}", .0.join("\n  "))]
    Preflight(Vec<String>),
    #[error("{0}\n(a node cordoned for the upgrade stays cordoned until its step passes)")]
    Drain(#[from] DrainError),
    #[error(
        "{what} did not pass within {within:?}; the cluster now:\n  {}\netcd's members, each asked on its host:\n  {}",
        describe_findings(.findings),
        .members.join("\n  ")
    )]
    Gate {
        what: String,
        within: Duration,
        findings: Vec<Finding>,
        /// Every member's state, one line each.
        members: Vec<String>,
    },
}

fn describe_findings(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|finding| format!("{}: {} ({})", finding.subject, finding.problem, finding.fix))
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// How a gate decides.
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    /// Consecutive passing checks needed.
    pub passes: u32,
    /// Between two checks.
    pub interval: Duration,
    /// The longest a gate waits before the upgrade stops.
    pub within: Duration,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            passes: 3,
            interval: Duration::from_secs(1),
            within: Duration::from_secs(180),
        }
    }
}

/// What the preflight learned, for the steps.
#[derive(Debug, Clone, Default)]
pub struct Preflight {
    /// Control-plane hosts whose API server answered `/readyz` before any step: their step
    /// gates on it answering again.
    pub api_ready: BTreeSet<String>,
    /// Each host's machine type (`uname -m`).
    pub machine: BTreeMap<String, String>,
}

pub use super::drain::Drainer;

/// What a step did, and how long each of its parts took.
#[derive(Debug, Clone)]
pub struct Done {
    pub said: String,
    pub times: Times,
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.said)?;
        if !self.times.0.is_empty() {
            write!(f, " [{}]", self.times)?;
        }
        Ok(())
    }
}

/// The parts of a step, in order, with how long each took: `leadership 0.2 s, install
/// 1.4 s, gate 7.1 s, total 8.7 s` (the gate is the cluster validating
/// [`Gate::passes`] times in a row).
#[derive(Debug, Clone, Default)]
pub struct Times(pub Vec<(&'static str, Duration)>);

impl Times {
    /// Awaits `work`, noting how long it took as `part`.
    async fn part<T>(&mut self, part: &'static str, work: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let outcome = work.await;
        self.0.push((part, started.elapsed()));
        outcome
    }

    pub fn total(&self) -> Duration {
        self.0.iter().map(|(_, took)| *took).sum()
    }
}

impl std::fmt::Display for Times {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (part, took) in &self.0 {
            write!(f, "{part} {:.1} s, ", took.as_secs_f64())?;
        }
        write!(f, "total {:.1} s", self.total().as_secs_f64())
    }
}

/// One upgrade of a bare-host cluster to `target`.
pub struct Upgrade<'a, S: StateStore> {
    pub store: &'a S,
    pub target: &'a Cluster,
    pub hosts: &'a Connected,
    pub gate: Gate,
    /// `None`: workers are upgraded without being drained (their pods stop with the kubelet).
    pub drain: Option<Drainer>,
}

/// The API server's health endpoint, as asked on its own host.
const READYZ: &str = "curl --silent --insecure --max-time 3 https://127.0.0.1:6443/readyz";

impl<S: StateStore> Upgrade<'_, S> {
    fn session(&self, host: &str) -> Result<&Session, HostsError> {
        self.hosts
            .session(host)
            .ok_or_else(|| HostsError::Setup(format!("{host} is not connected")))
    }

    fn entry(&self, host: &str) -> Result<&HostEntry, HostsError> {
        self.hosts
            .sessions
            .iter()
            .map(|(entry, _)| entry)
            .find(|entry| entry.name() == host)
            .ok_or_else(|| HostsError::Setup(format!("{host} is not connected")))
    }

    /// The preflight that changes nothing (for a plan): every host reachable, the cluster
    /// healthy, room for the new assets on every host that still has a step.
    pub async fn check(&self, remaining: &[&Step]) -> Result<Preflight, UpgradeError> {
        let mut problems: Vec<String> = self
            .hosts
            .unreachable
            .iter()
            .map(|(host, why)| format!("{host} cannot be reached ({why})"))
            .collect();
        if !problems.is_empty() {
            return Err(UpgradeError::Preflight(problems));
        }
        let report = validate::hosts::validate(self.target, self.hosts).await?;
        problems.extend(
            report.findings.iter().map(|finding| {
                format!("{}: {} ({})", finding.subject, finding.problem, finding.fix)
            }),
        );
        let changing: BTreeSet<&str> = remaining.iter().flat_map(|step| step.hosts()).collect();
        let gathered = join_all(
            self.hosts
                .sessions
                .iter()
                .map(|(entry, session)| async move { (entry, facts::gather(session).await) }),
        )
        .await;
        let mut preflight = Preflight::default();
        for (entry, gathered) in gathered {
            let found = gathered.map_err(HostsError::from)?;
            if changing.contains(entry.name()) && found.var_free_mb < MIN_FREE_MB {
                problems.push(format!(
                    "{}: {} MiB free under /var, the new assets need {MIN_FREE_MB} MiB",
                    entry.name(),
                    found.var_free_mb
                ));
            }
            preflight
                .machine
                .insert(entry.name().to_string(), found.arch);
        }
        problems.extend(self.drain_check(remaining).await);
        if !problems.is_empty() {
            return Err(UpgradeError::Preflight(problems));
        }
        Ok(preflight)
    }

    /// When workers are to be drained: the API server answers for each of them.
    async fn drain_check(&self, remaining: &[&Step]) -> Vec<String> {
        let Some(drainer) = &self.drain else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        let workers = remaining.iter().filter_map(|step| match step {
            Step::Workers { hosts } => Some(hosts),
            _ => None,
        });
        for host in workers.flatten() {
            if let Err(error) = drain::node_known(&drainer.client, host).await {
                problems.push(format!(
                    "{error}; workers are drained through it before their kubelet is replaced (--no-drain upgrades them undrained: their pods stop with the kubelet)"
                ));
                break;
            }
        }
        problems
    }

    /// Checks, before any step, what [`Self::check`] does; then puts the new assets on every
    /// host that still has a step, verified against their SHA-256 (nothing is restarted),
    /// and notes which API servers answer.
    pub async fn preflight(&self, remaining: &[&Step]) -> Result<Preflight, UpgradeError> {
        let mut preflight = self.check(remaining).await?;
        let changing: BTreeSet<&str> = remaining.iter().flat_map(|step| step.hosts()).collect();
        let mut problems = Vec::new();
        let local_files = LocalFiles::default();
        let staged = join_all(
            self.hosts
                .sessions
                .iter()
                .filter(|(entry, _)| changing.contains(entry.name()))
                .map(|(entry, session)| {
                    self.stage_assets(entry, session, &preflight.machine, &local_files)
                }),
        )
        .await;
        for outcome in staged {
            if let Err(error) = outcome {
                problems.push(error.to_string());
            }
        }
        if !problems.is_empty() {
            return Err(UpgradeError::Preflight(problems));
        }
        let answers = join_all(
            self.hosts
                .sessions
                .iter()
                .map(|(entry, session)| async move {
                    let ready = entry.is_control_plane() && api_ready(session).await?;
                    Ok::<_, HostsError>((entry.name().to_string(), ready))
                }),
        )
        .await;
        for answer in answers {
            let (host, ready) = answer?;
            if ready {
                preflight.api_ready.insert(host);
            }
        }
        Ok(preflight)
    }

    /// Puts the new version's assets in `entry`'s verified cache: the operator's files
    /// uploaded, the others downloaded there by the host, each checked against its digest.
    async fn stage_assets(
        &self,
        entry: &HostEntry,
        session: &Session,
        machine: &BTreeMap<String, String>,
        local_files: &LocalFiles,
    ) -> Result<(), HostsError> {
        let uname = machine.get(entry.name()).map(String::as_str).unwrap_or("");
        let local = host_local_assets(self.target, entry, uname)?;
        host_assets::upload(session, &local, local_files).await?;
        let arch = asset_arch(uname).unwrap_or("amd64");
        let needs = NodeNeeds {
            control_plane: entry.is_control_plane(),
            applies_addons: false,
        };
        let remote: Vec<Download> = bootstrap::assets::downloads(self.target, needs)?
            .into_iter()
            .filter(|(candidate, _)| *candidate == arch)
            .flat_map(|(_, files)| files)
            .filter(|file| !file.url.starts_with("file://") && file.sha256.is_some())
            .collect();
        for download in remote {
            let sha256 = download.sha256.as_deref().unwrap_or_default();
            let name = download.url.rsplit('/').next().unwrap_or(&download.name);
            let cached = shell_quote(&format!("{HOST_CACHE}/{sha256}-{name}"));
            let script = format!(
                "set -e; f={cached}; check() {{ printf '%s  %s\\n' {sha} \"$1\" | sha256sum --check --status; }}; \
                 if check \"$f\"; then exit 0; fi; mkdir -p {HOST_CACHE}; \
                 curl --fail --silent --show-error --location --retry 5 --connect-timeout 10 --output \"$f.part\" {url}; \
                 if ! check \"$f.part\"; then rm -f \"$f.part\"; echo 'wrong SHA-256' >&2; exit 1; fi; mv \"$f.part\" \"$f\"",
                sha = shell_quote(sha256),
                url = shell_quote(&download.url),
            );
            session
                .run_checked(
                    &format!("download {} {}", download.name, download.version),
                    &script,
                    b"",
                )
                .await?;
        }
        Ok(())
    }

    /// Carries out `step` and waits for its gate; says what it did and how long each part
    /// took.
    pub async fn run(&self, step: &Step, preflight: &Preflight) -> Result<Done, UpgradeError> {
        let mut times = Times::default();
        let said = match step {
            Step::Etcd { host, to } => self.etcd(host, *to, &mut times).await?,
            Step::StaticPods { host } => {
                times
                    .part("install", self.install(host, "assets control-plane"))
                    .await?;
                let ready = preflight.api_ready.contains(host);
                let gate = self.wait_for(format!("{host}'s new static pods"), || async {
                    if ready && !api_ready(self.session(host)?).await? {
                        return Ok(Some(format!("{host}: the API server is not ready")));
                    }
                    Ok(None)
                });
                times.part("gate", gate).await?;
                format!(
                    "{host}: static pods replaced; {}",
                    if ready {
                        "API server ready, cluster healthy"
                    } else {
                        "cluster healthy (no API server answered here before: not gated on it)"
                    }
                )
            }
            Step::ControlPlaneKubelet { host } => {
                times
                    .part("install", self.install(host, "assets kubelet"))
                    .await?;
                let gate = self.wait_for(format!("{host}'s new kubelet"), || async { Ok(None) });
                times.part("gate", gate).await?;
                format!("{host}: kubelet replaced; cluster healthy")
            }
            Step::Workers { hosts } => {
                let drained = match self.drain {
                    Some(_) => times.part("drain", self.drain_workers(hosts)).await?,
                    None => Vec::new(),
                };
                let installed = join_all(
                    hosts
                        .iter()
                        .map(|host| self.install(host, "assets containerd kubelet")),
                );
                for outcome in times.part("install", installed).await {
                    outcome?;
                }
                let gate = self.wait_for(format!("{}'s new kubelet", hosts.join(", ")), || async {
                    Ok(None)
                });
                times.part("gate", gate).await?;
                if let Some(drainer) = &self.drain {
                    for host in &drained {
                        drain::cordon(&drainer.client, host, false).await?;
                    }
                }
                let drain_said = match &self.drain {
                    None => "not drained (--no-drain)".to_string(),
                    Some(_) if drained.is_empty() => {
                        "no node registered: nothing to drain".to_string()
                    }
                    Some(_) => format!("{} drained, uncordoned after the gate", drained.join(", ")),
                };
                format!(
                    "{}: kubelet replaced; cluster healthy; {drain_said}",
                    hosts.join(", ")
                )
            }
            Step::StoreSpec => "nothing to do on the hosts".to_string(),
        };
        Ok(Done { said, times })
    }

    /// Cordons and drains every registered node among `hosts` (together); returns those
    /// cordoned. A node the API does not know has no pods to drain.
    async fn drain_workers(&self, hosts: &[String]) -> Result<Vec<String>, UpgradeError> {
        let Some(drainer) = &self.drain else {
            return Ok(Vec::new());
        };
        Ok(drainer.cordon_and_drain(hosts).await?)
    }

    /// The new bundle written to `host` and the bootstrap `steps` run there.
    async fn install(&self, host: &str, steps: &str) -> Result<Vec<String>, UpgradeError> {
        let session = self.session(host)?;
        let rendered = self.render(host).await?;
        let mut changes = write_bundle(session, &rendered.bundle).await?;
        changes.extend(run_bootstrap(session, steps).await?.changes);
        Ok(changes)
    }

    /// `host`'s files for the target spec, its kept certificates reused.
    async fn render(&self, host: &str) -> Result<RenderedNode, UpgradeError> {
        let cluster = &self.target.metadata.name;
        let now = OffsetDateTime::now_utc();
        let pki = ClusterPki::load_or_create(self.store, cluster, now).await?;
        let secrets = ClusterSecrets::load_or_create(self.store, cluster).await?;
        let access =
            bootstrap::api_access(self.target, &Default::default()).map_err(HostsError::from)?;
        let role = if self.entry(host)?.is_control_plane() {
            let members = self.members()?;
            let index = members
                .iter()
                .position(|member| member.name == host)
                .ok_or_else(|| HostsError::Setup(format!("{host} is not an etcd member")))?;
            NodeRole::ControlPlane {
                members,
                index,
                initial_state: InitialState::Established,
                discovery: None,
            }
        } else {
            bootstrap::select_node(self.target, Role::Worker, Some(host))
                .map_err(HostsError::from)?
        };
        let mut leaves = NodeLeaves::load(self.store, cluster, host).await?;
        let rendered =
            bootstrap::render_node(self.target, role, &access, &pki, &secrets, &mut leaves, now)
                .map_err(HostsError::from)?;
        leaves.save(self.store).await?;
        Ok(rendered)
    }

    fn members(&self) -> Result<Vec<EtcdMember>, HostsError> {
        Ok(bootstrap::control_plane_members(self.target)?)
    }

    /// Leadership moved off `host`, the new etcd installed and its member restarted, then
    /// the gate: every member healthy and this one serving `to`.
    async fn etcd(
        &self,
        host: &str,
        to: EtcdVersion,
        times: &mut Times,
    ) -> Result<String, UpgradeError> {
        let session = self.session(host)?;
        let moved = times
            .part("leadership", self.move_leadership_off(host))
            .await?;
        times
            .part("install", self.install(host, "assets etcd"))
            .await?;
        let members = self.members()?;
        let member = members
            .iter()
            .find(|member| member.name == host)
            .ok_or_else(|| HostsError::Setup(format!("{host} is not an etcd member")))?;
        let wanted = to.to_string();
        let gate = self.wait_for(format!("etcd {to} on {host}"), || async {
            Ok(
                match etcd::endpoint_status(session, &member.client_url()).await? {
                    Ok(status) if status.version == wanted => None,
                    Ok(status) => Some(format!("{host}: etcd serves {}", status.version)),
                    Err(said) => Some(format!("{host}: etcd does not answer ({said})")),
                },
            )
        });
        times.part("gate", gate).await?;
        Ok(format!(
            "{host}: etcd {to}{}; every member healthy",
            moved
                .map(|to| format!(", leadership moved to {to} first"))
                .unwrap_or_default(),
        ))
    }

    /// When `host`'s member leads, hands leadership to another healthy member and waits
    /// until etcd says it moved; returns the new leader's name.
    async fn move_leadership_off(&self, host: &str) -> Result<Option<String>, UpgradeError> {
        let session = self.session(host)?;
        let statuses = etcd::cluster_status(session).await?;
        let members = self.members()?;
        let name_of = |status: &etcd::EndpointStatus| {
            members
                .iter()
                .find(|member| member.client_url() == status.endpoint)
                .map(|member| member.name.clone())
                .unwrap_or_else(|| status.endpoint.clone())
        };
        let Some(leader) = statuses.iter().find(|status| status.status.leads()) else {
            return Err(HostsError::Etcd("etcd has no leader".to_string()).into());
        };
        if name_of(leader) != host {
            return Ok(None);
        }
        let Some(next) = statuses
            .iter()
            .find(|status| !status.status.leads() && status.status.errors.is_empty())
        else {
            // A single member keeps leading itself.
            return Ok(None);
        };
        let next_name = name_of(next);
        session
            .run_checked(
                &format!("etcdctl move-leader to {next_name}"),
                &format!(
                    "{} --command-timeout=10s move-leader {:x}",
                    crate::bootstrap::etcd::ETCDCTL,
                    next.status.header.member_id
                ),
                b"",
            )
            .await
            .map_err(HostsError::from)?;
        Ok(Some(next_name))
    }

    /// Waits until the cluster validates and `extra` finds nothing, `gate.passes` times in
    /// a row; stops at `gate.within` with what the last check found.
    async fn wait_for<F, Fut>(&self, what: String, extra: F) -> Result<(), UpgradeError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Option<String>, HostsError>>,
    {
        let deadline = Instant::now() + self.gate.within;
        let mut passes = 0;
        loop {
            let mut report = validate::hosts::validate(self.target, self.hosts).await?;
            if let Some(problem) = extra().await? {
                report.find(
                    validate::Area::Host,
                    &what,
                    problem,
                    "see the host's journal for the service",
                );
            }
            if report.healthy() {
                passes += 1;
                if passes >= self.gate.passes {
                    return Ok(());
                }
            } else {
                passes = 0;
                if Instant::now() >= deadline {
                    return Err(UpgradeError::Gate {
                        what,
                        within: self.gate.within,
                        findings: report.findings,
                        members: self.member_states().await,
                    });
                }
            }
            tokio::time::sleep(self.gate.interval).await;
        }
    }

    /// Each etcd member's state as its own host's etcdctl sees it: version, leader or
    /// follower, raft index, errors; or why it does not answer.
    async fn member_states(&self) -> Vec<String> {
        let Ok(members) = self.members() else {
            return vec!["the spec names no etcd member".to_string()];
        };
        let asked = members.iter().map(|member| async move {
            let name = &member.name;
            let Some(session) = self.hosts.session(name) else {
                return format!("{name}: not connected");
            };
            match etcd::endpoint_status(session, &member.client_url()).await {
                Ok(Ok(status)) => format!(
                    "{name}: etcd {}, {}, raft index {}{}",
                    status.version,
                    if status.leads() { "leader" } else { "follower" },
                    status.raft_index,
                    if status.errors.is_empty() {
                        String::new()
                    } else {
                        format!(", errors: {}", status.errors.join("; "))
                    }
                ),
                Ok(Err(said)) => format!("{name}: does not answer ({said})"),
                Err(error) => format!("{name}: cannot be asked ({error})"),
            }
        });
        join_all(asked).await
    }
}

/// Whether the API server on `session`'s host answers `/readyz` with `ok`.
async fn api_ready(session: &Session) -> Result<bool, HostsError> {
    let output = session.run_as_root(READYZ, b"").await?;
    Ok(output.success() && output.stdout_text().trim() == "ok")
}
