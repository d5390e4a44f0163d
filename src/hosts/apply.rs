//! One run of the bare-host provider: connect, look, plan etcd's membership, then (with
//! `apply`) push each host's bundle and run the bootstrap steps phase by phase.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use time::OffsetDateTime;

use crate::bootstrap::assets::NodeNeeds;
use crate::bootstrap::{self, EtcdMember, NodeRole, RenderedNode};
use crate::pki::{ClusterPki, ClusterSecrets, NodeLeaves};
use crate::spec::Cluster;
use crate::ssh::Session;
use crate::state::StateStore;

use super::HostsError;
use super::assets::{self, HOST_CACHE, asset_arch};
use super::etcd;
use super::facts::{self, HostFacts};
use super::inventory::{self, HostEntry};
use super::membership::{self, HostSeen, Membership};

/// The phases of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Connect,
    Preflight,
    Files,
    Node,
    Etcd,
    ControlPlane,
    Workers,
    Addons,
}

impl Phase {
    pub const ALL: [Phase; 8] = [
        Phase::Connect,
        Phase::Preflight,
        Phase::Files,
        Phase::Node,
        Phase::Etcd,
        Phase::ControlPlane,
        Phase::Workers,
        Phase::Addons,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Preflight => "preflight",
            Phase::Files => "files",
            Phase::Node => "node",
            Phase::Etcd => "etcd",
            Phase::ControlPlane => "control-plane",
            Phase::Workers => "workers",
            Phase::Addons => "addons",
        }
    }

    /// The phases an operator may skip (the first two only look).
    pub fn parse_skippable(name: &str) -> Option<Phase> {
        Phase::ALL
            .into_iter()
            .skip(2)
            .find(|phase| phase.name() == name)
    }
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Change the hosts; without it, only look and report what would be done.
    pub apply: bool,
    pub accept_new_host_keys: bool,
    pub skip: BTreeSet<Phase>,
}

/// What happened (or, in a preview, would happen) on one host.
#[derive(Debug, Clone, Default)]
pub struct HostReport {
    pub name: String,
    pub changes: Vec<String>,
    /// What the host needs that rafter cannot do from it (a kernel setting under a
    /// read-only `/proc/sys`), said on every run; not changes.
    pub warnings: Vec<String>,
    /// Why the host was left out, when it could not be reached.
    pub unreachable: Option<String>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub applied: bool,
    pub hosts: Vec<HostReport>,
    /// etcd membership changes, in the order made.
    pub membership: Vec<String>,
    pub phases: Vec<(Phase, Duration)>,
    /// SSH connections opened (one per reachable host, plus one per bastion crossing).
    pub connections: usize,
}

impl Report {
    pub fn changed(&self) -> bool {
        !self.membership.is_empty() || self.hosts.iter().any(|host| !host.changes.is_empty())
    }

    pub fn unreachable(&self) -> Vec<&HostReport> {
        self.hosts
            .iter()
            .filter(|host| host.unreachable.is_some())
            .collect()
    }

    /// Adds each node's `changes` (in `nodes` order) to its host.
    fn record(&mut self, nodes: &[Node<'_>], changes: Vec<Vec<String>>) {
        for (node, changed) in nodes.iter().zip(changes) {
            self.host(node.name()).changes.extend(changed);
        }
    }

    /// Adds each node's bootstrap output (in `nodes` order): changes and warnings.
    fn record_bootstrap(&mut self, nodes: &[Node<'_>], outputs: Vec<BootstrapOutput>) {
        for (node, output) in nodes.iter().zip(outputs) {
            let host = self.host(node.name());
            host.changes.extend(output.changes);
            host.warnings.extend(output.warnings);
        }
    }

    fn host(&mut self, name: &str) -> &mut HostReport {
        let index = match self.hosts.iter().position(|host| host.name == name) {
            Some(index) => index,
            None => {
                self.hosts.push(HostReport {
                    name: name.to_string(),
                    ..HostReport::default()
                });
                self.hosts.len() - 1
            }
        };
        &mut self.hosts[index]
    }
}

/// Progress of a run, for a terminal or a log.
pub trait Observer: Sync {
    /// `host` (or `""` for the whole run) entered `phase` or reports `message` in it.
    fn event(&self, host: &str, phase: Phase, message: &str);
}

/// A reachable host during a run.
struct Node<'a> {
    entry: &'a HostEntry,
    session: Session,
    facts: HostFacts,
    rendered: Option<RenderedNode>,
}

impl Node<'_> {
    fn name(&self) -> &str {
        self.entry.name()
    }
}

const BOOTSTRAP: &str = "/usr/local/lib/rafter/bootstrap.sh";
const ETCD_HEALTHY_WITHIN: Duration = Duration::from_secs(90);

/// The lines of a bootstrap run that report changes (all but `step …`, `done` and
/// `warning: …`).
fn reported_changes(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|line| {
            line.strip_prefix("rafter-bootstrap: ")
                .or_else(|| line.strip_prefix("wrote ").map(|_| line))
        })
        .filter(|line| {
            !line.starts_with("step ") && !line.starts_with("warning: ") && *line != "done"
        })
        .map(str::to_string)
        .collect()
}

/// The warnings of a bootstrap run, without their `warning: ` prefix.
fn reported_warnings(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|line| line.strip_prefix("rafter-bootstrap: warning: "))
        .map(str::to_string)
        .collect()
}

/// What one bootstrap run on a host reported.
pub(crate) struct BootstrapOutput {
    pub(crate) changes: Vec<String>,
    pub(crate) warnings: Vec<String>,
}

/// Runs bootstrap `steps` on `node`, returning what it reported.
async fn bootstrap_run(node: &Node<'_>, steps: &str) -> Result<BootstrapOutput, HostsError> {
    run_bootstrap(&node.session, steps).await
}

/// Runs the bootstrap `steps` (space-separated) on `session`'s host, returning what it
/// reported.
pub(crate) async fn run_bootstrap(
    session: &Session,
    steps: &str,
) -> Result<BootstrapOutput, HostsError> {
    let command = format!("RAFTER_ASSET_CACHE={HOST_CACHE} {BOOTSTRAP} {steps}");
    let output = session
        .run_checked(&format!("bootstrap.sh {steps}"), &command, b"")
        .await?;
    let stderr = output.stderr_text();
    Ok(BootstrapOutput {
        changes: reported_changes(&stderr),
        warnings: reported_warnings(&stderr),
    })
}

/// Runs bootstrap `steps` on `node`, returning the changes it reported (only the kernel
/// step warns, and it runs through [`bootstrap_run`]).
async fn bootstrap_steps(node: &Node<'_>, steps: &str) -> Result<Vec<String>, HostsError> {
    Ok(bootstrap_run(node, steps).await?.changes)
}

/// Runs `work` on every node at once; the first error wins, after all have finished.
async fn on_all<'n, 'a, T, F, Fut>(nodes: &'n [Node<'a>], work: F) -> Result<Vec<T>, HostsError>
where
    F: Fn(&'n Node<'a>) -> Fut,
    Fut: std::future::Future<Output = Result<T, HostsError>>,
{
    join_all(nodes.iter().map(work)).await.into_iter().collect()
}

/// One run over `cluster`'s hosts.
pub async fn run(
    store: &impl StateStore,
    cluster: &Cluster,
    options: &RunOptions,
    observer: &dyn Observer,
) -> Result<Report, HostsError> {
    let mut report = Report {
        applied: options.apply,
        ..Report::default()
    };
    let entries = inventory::hosts(cluster);
    for entry in &entries {
        report.host(entry.name());
    }
    let connect_options = inventory::connect_options(cluster, options.accept_new_host_keys)?;

    // Connect: every host at once; an unreachable host is noted, any other failure (a
    // changed host key, refused authentication) stops the run before anything happens.
    let started = Instant::now();
    observer.event("", Phase::Connect, "connecting");
    let connect_options = &connect_options;
    let attempts = join_all(entries.iter().map(|entry| async move {
        observer.event(entry.name(), Phase::Connect, "connecting");
        (
            entry,
            Session::connect(&entry.target, connect_options).await,
        )
    }))
    .await;
    let mut connected = Vec::new();
    let mut refused = Vec::new();
    for (entry, attempt) in attempts {
        match attempt {
            Ok(session) => connected.push((entry, session)),
            Err(error) if error.is_unreachable() => {
                observer.event(entry.name(), Phase::Connect, "unreachable");
                report.host(entry.name()).unreachable = Some(error.to_string());
            }
            Err(error) => refused.push(error.to_string()),
        }
    }
    if !refused.is_empty() {
        return Err(HostsError::Hosts(refused));
    }
    let per_connection = 1 + usize::from(connect_options.bastion.is_some());
    report.connections = connected.len() * per_connection;
    report.phases.push((Phase::Connect, started.elapsed()));

    // Preflight: facts from every reachable host, checked together.
    let started = Instant::now();
    let gathered = join_all(connected.iter().map(|(entry, session)| async move {
        observer.event(entry.name(), Phase::Preflight, "checking");
        facts::gather(session).await
    }))
    .await;
    let mut nodes = Vec::new();
    for ((entry, session), facts) in connected.into_iter().zip(gathered) {
        nodes.push(Node {
            entry,
            session,
            facts: facts?,
            rendered: None,
        });
    }
    let problems = facts::preflight(
        &nodes
            .iter()
            .map(|node| (node.name(), &node.facts))
            .collect::<Vec<_>>(),
    );
    if !problems.is_empty() {
        return Err(HostsError::Preflight(problems));
    }
    report.phases.push((Phase::Preflight, started.elapsed()));

    let membership = plan_membership(cluster, &nodes).await?;
    for removal in &membership.remove {
        report.membership.push(format!(
            "remove etcd member {} ({})",
            removal.name,
            removal.peer_urls.join(",")
        ));
    }
    for joining in &membership.join {
        report.membership.push(format!(
            "add etcd member {} ({})",
            joining.name,
            joining.peer_url()
        ));
    }

    // Render every reachable host's files; their certificates are kept before any is pushed
    // (a preview keeps none: it changes nothing).
    let now = OffsetDateTime::now_utc();
    let pki = ClusterPki::load_or_create(store, &cluster.metadata.name, now).await?;
    let secrets = ClusterSecrets::load_or_create(store, &cluster.metadata.name).await?;
    let access = bootstrap::api_access(cluster, &Default::default())?;
    for node in &mut nodes {
        let role = role_of(cluster, &membership, node)?;
        let mut leaves = NodeLeaves::load(store, &cluster.metadata.name, node.name()).await?;
        let rendered =
            bootstrap::render_node(cluster, role, &access, &pki, &secrets, &mut leaves, now)?;
        if options.apply {
            leaves.save(store).await?;
        }
        node.rendered = Some(rendered);
    }

    if !options.apply {
        preview(cluster, &nodes, &mut report).await?;
        close(nodes).await;
        return Ok(report);
    }

    // Members leaving go first, while the cluster still has every other member.
    if let Some(asker) = asker(&nodes) {
        for removal in &membership.remove {
            observer.event(
                asker.name(),
                Phase::Etcd,
                &format!("removing member {}", removal.name),
            );
            etcd::remove(&asker.session, removal).await?;
        }
    }

    let skip = |phase| options.skip.contains(&phase);
    if !skip(Phase::Files) {
        let started = Instant::now();
        let local_files = assets::LocalFiles::default();
        let local_files = &local_files;
        let changes = on_all(&nodes, |node| {
            push_files(cluster, node, local_files, observer)
        })
        .await?;
        report.record(&nodes, changes);
        report.phases.push((Phase::Files, started.elapsed()));
    }
    if !skip(Phase::Node) {
        let started = Instant::now();
        let outputs = on_all(&nodes, |node| async move {
            observer.event(node.name(), Phase::Node, "kernel, assets, containerd");
            bootstrap_run(node, "preflight kernel assets containerd").await
        })
        .await?;
        report.record_bootstrap(&nodes, outputs);
        report.phases.push((Phase::Node, started.elapsed()));
    }
    if !skip(Phase::Etcd) {
        let started = Instant::now();
        converge_etcd(&nodes, &membership, &mut report, observer).await?;
        report.phases.push((Phase::Etcd, started.elapsed()));
    }
    if !skip(Phase::ControlPlane) {
        let started = Instant::now();
        // One at a time: at most one API server restarts at once.
        for node in nodes.iter().filter(|node| node.entry.is_control_plane()) {
            observer.event(node.name(), Phase::ControlPlane, "kubelet and static pods");
            let changed = bootstrap_steps(node, "control-plane kubelet").await?;
            report.host(node.name()).changes.extend(changed);
        }
        report.phases.push((Phase::ControlPlane, started.elapsed()));
    }
    if !skip(Phase::Workers) {
        let started = Instant::now();
        let workers: Vec<&Node> = nodes
            .iter()
            .filter(|node| !node.entry.is_control_plane())
            .collect();
        let changes = join_all(workers.iter().map(|node| async move {
            observer.event(node.name(), Phase::Workers, "kubelet");
            bootstrap_steps(node, "kubelet").await
        }))
        .await;
        for (node, changed) in workers.iter().zip(changes) {
            report.host(node.name()).changes.extend(changed?);
        }
        report.phases.push((Phase::Workers, started.elapsed()));
    }
    if !skip(Phase::Addons) {
        let started = Instant::now();
        let first = nodes
            .iter()
            .find(|node| membership.is_first_control_plane(node.name()));
        if let Some(node) = first {
            observer.event(node.name(), Phase::Addons, "add-ons");
            let changed = bootstrap_steps(node, "addons").await?;
            report.host(node.name()).changes.extend(changed);
        }
        report.phases.push((Phase::Addons, started.elapsed()));
    }
    close(nodes).await;
    Ok(report)
}

async fn close(nodes: Vec<Node<'_>>) {
    join_all(nodes.into_iter().map(|node| node.session.close())).await;
}

/// Uploads the host's local assets and writes the files of its bundle that differ.
async fn push_files(
    cluster: &Cluster,
    node: &Node<'_>,
    local_files: &assets::LocalFiles,
    observer: &dyn Observer,
) -> Result<Vec<String>, HostsError> {
    observer.event(node.name(), Phase::Files, "files");
    let mut changes = Vec::new();
    let local = local_assets(cluster, node)?;
    let sent = assets::upload(&node.session, &local, local_files).await?;
    if sent > 0 {
        changes.push(format!("uploaded {sent} assets"));
    }
    changes.extend(write_bundle(&node.session, &rendered(node)?.bundle).await?);
    Ok(changes)
}

/// Writes the files of `bundle` that differ on `session`'s host (no service is touched);
/// returns the files written.
pub(crate) async fn write_bundle(
    session: &Session,
    bundle: &str,
) -> Result<Vec<String>, HostsError> {
    let output = session
        .run_checked(
            "write the node's files",
            "bash -s -- --files-only",
            bundle.as_bytes(),
        )
        .await?;
    Ok(reported_changes(&output.stderr_text()))
}

fn rendered<'n>(node: &'n Node<'_>) -> Result<&'n RenderedNode, HostsError> {
    node.rendered
        .as_ref()
        .ok_or_else(|| HostsError::Setup(format!("{} was not rendered", node.name())))
}

fn local_assets(
    cluster: &Cluster,
    node: &Node<'_>,
) -> Result<Vec<bootstrap::assets::Download>, HostsError> {
    host_local_assets(cluster, node.entry, &node.facts.arch)
}

/// The assets from the operator's disk that host `entry` (machine type `uname`) needs.
pub(crate) fn host_local_assets(
    cluster: &Cluster,
    entry: &HostEntry,
    uname: &str,
) -> Result<Vec<bootstrap::assets::Download>, HostsError> {
    let arch = asset_arch(uname).ok_or_else(|| {
        HostsError::Setup(format!(
            "{}: machine type {uname} is not supported",
            entry.name()
        ))
    })?;
    let needs = NodeNeeds {
        control_plane: entry.is_control_plane(),
        applies_addons: false,
    };
    let mut downloads = assets::local_downloads(cluster, needs, arch)?;
    if entry.is_control_plane() {
        // The first control-plane host applies the add-ons: their assets too.
        let addons = assets::local_downloads(
            cluster,
            NodeNeeds {
                control_plane: true,
                applies_addons: true,
            },
            arch,
        )?;
        for download in addons {
            if !downloads.contains(&download) {
                downloads.push(download);
            }
        }
    }
    Ok(downloads)
}

/// What each host would get, without changing it: the files that differ (the bundle's own
/// `--check`), the assets to upload, the services that are not running, and etcd's
/// membership changes (already in `report`).
async fn preview(
    cluster: &Cluster,
    nodes: &[Node<'_>],
    report: &mut Report,
) -> Result<(), HostsError> {
    let found = on_all(nodes, |node| async move {
        let local = local_assets(cluster, node)?;
        let mut changes: Vec<String> = assets::missing(&node.session, &local)
            .await?
            .iter()
            .map(|download| format!("would upload {} from {}", download.name, download.url))
            .collect();
        let bundle = rendered(node)?.bundle.as_bytes();
        let output = node
            .session
            .run_as_root("bash -s -- --check", bundle)
            .await?;
        changes.extend(output.stdout_text().lines().map(str::to_string));
        let services = services_of(node);
        let states = node
            .session
            .run_as_root(&format!("systemctl is-active {}", services.join(" ")), b"")
            .await?
            .stdout_text();
        for (service, state) in services.iter().zip(states.lines()) {
            if state != "active" {
                changes.push(format!("would start {service} (it is {state})"));
            }
        }
        Ok(changes)
    })
    .await?;
    report.record(nodes, found);
    Ok(())
}

/// The services rafter keeps running on `node`.
fn services_of(node: &Node<'_>) -> Vec<&'static str> {
    if node.entry.is_control_plane() {
        vec!["containerd", "etcd", "kubelet"]
    } else {
        vec!["containerd", "kubelet"]
    }
}

/// A reachable control-plane host whose etcd answers, to ask for membership changes.
fn asker<'n, 'a>(nodes: &'n [Node<'a>]) -> Option<&'n Node<'a>> {
    nodes
        .iter()
        .find(|node| node.entry.is_control_plane() && node.facts.etcd_active)
}

/// The node role `node` is rendered with: a worker's, or its place in `membership`.
fn role_of(
    cluster: &Cluster,
    membership: &Membership,
    node: &Node<'_>,
) -> Result<NodeRole, HostsError> {
    if !node.entry.is_control_plane() {
        return Ok(bootstrap::select_node(
            cluster,
            bootstrap::Role::Worker,
            Some(node.name()),
        )?);
    }
    membership
        .control_plane_role(node.name())
        .ok_or_else(|| HostsError::Setup(format!("{} is not a control-plane host", node.name())))
}

/// Gathers the evidence of etcd's membership (what a running member lists, what each
/// control-plane host has) and plans the changes ([`membership::plan`]), which refuses
/// anything that could lose quorum or data.
async fn plan_membership(cluster: &Cluster, nodes: &[Node<'_>]) -> Result<Membership, HostsError> {
    let wanted = bootstrap::control_plane_members(cluster)?;
    let seen: Vec<HostSeen> = wanted
        .iter()
        .map(|member| {
            let node = nodes.iter().find(|node| node.name() == member.name);
            HostSeen {
                name: member.name.clone(),
                reachable: node.is_some(),
                etcd_data: node.is_some_and(|node| node.facts.etcd_data),
            }
        })
        .collect();
    let listed = match asker(nodes) {
        Some(asker) => Some(etcd::members(&asker.session).await?),
        None => None,
    };
    Ok(membership::plan(wanted, listed, &seen)?)
}

/// Brings etcd to the planned membership: a new cluster's members start together; an
/// existing cluster's members are (re)started one at a time, each healthy before the next,
/// then each joiner is added and started, one at a time.
async fn converge_etcd(
    nodes: &[Node<'_>],
    membership: &Membership,
    report: &mut Report,
    observer: &dyn Observer,
) -> Result<(), HostsError> {
    let control_plane: Vec<&Node> = nodes
        .iter()
        .filter(|node| node.entry.is_control_plane())
        .collect();
    let Some(first) = control_plane.first() else {
        return Ok(());
    };
    let client_urls = |names: &[&str]| -> Vec<String> {
        membership
            .wanted
            .iter()
            .filter(|member| names.contains(&member.name.as_str()))
            .map(EtcdMember::client_url)
            .collect()
    };
    if membership.current.is_none() {
        let changes = join_all(control_plane.iter().map(|node| async move {
            observer.event(node.name(), Phase::Etcd, "starting a new member");
            bootstrap_steps(node, "etcd").await
        }))
        .await;
        for (node, changed) in control_plane.iter().zip(changes) {
            report.host(node.name()).changes.extend(changed?);
        }
        let names: Vec<&str> = control_plane.iter().map(|node| node.name()).collect();
        observer.event("", Phase::Etcd, "waiting for the new cluster to be healthy");
        return etcd::wait_healthy(&first.session, &client_urls(&names), ETCD_HEALTHY_WITHIN).await;
    }
    let joining = |node: &Node| {
        membership
            .join
            .iter()
            .any(|member| member.name == node.name())
    };
    let established: Vec<&Node> = control_plane
        .iter()
        .copied()
        .filter(|node| !joining(node))
        .collect();
    // Members that are down start together (one alone may not reach quorum)…
    let stopped: Vec<&Node> = established
        .iter()
        .copied()
        .filter(|node| !node.facts.etcd_active)
        .collect();
    let changes = join_all(stopped.iter().map(|node| async move {
        observer.event(node.name(), Phase::Etcd, "starting the member");
        bootstrap_steps(node, "etcd").await
    }))
    .await;
    for (node, changed) in stopped.iter().zip(changes) {
        report.host(node.name()).changes.extend(changed?);
    }
    let mut healthy: Vec<&str> = stopped.iter().map(|node| node.name()).collect();
    if let Some(asker) = stopped.first() {
        let names: Vec<&str> = established.iter().map(|node| node.name()).collect();
        etcd::wait_healthy(&asker.session, &client_urls(&names), ETCD_HEALTHY_WITHIN).await?;
    }
    // …running ones are converged one at a time, each healthy before the next.
    for node in established.iter().filter(|node| node.facts.etcd_active) {
        observer.event(node.name(), Phase::Etcd, "member");
        let changed = bootstrap_steps(node, "etcd").await?;
        report.host(node.name()).changes.extend(changed);
        healthy.push(node.name());
        etcd::wait_healthy(&node.session, &client_urls(&healthy), ETCD_HEALTHY_WITHIN).await?;
    }
    for node in control_plane.iter().filter(|node| joining(node)) {
        let member = membership
            .wanted
            .iter()
            .find(|member| member.name == node.name())
            .ok_or_else(|| HostsError::Setup(format!("{} is not a member", node.name())))?;
        let asker = control_plane
            .iter()
            .find(|candidate| healthy.contains(&candidate.name()))
            .ok_or_else(|| {
                HostsError::Etcd("no healthy etcd member to add members through".into())
            })?;
        let already_added = etcd::members(&asker.session)
            .await?
            .iter()
            .any(|known| known.peer_urls.contains(&member.peer_url()));
        if !already_added {
            observer.event(node.name(), Phase::Etcd, "adding as a member");
            etcd::add(&asker.session, &member.name, &member.peer_url()).await?;
        }
        let changed = bootstrap_steps(node, "etcd").await?;
        report.host(node.name()).changes.extend(changed);
        healthy.push(node.name());
        etcd::wait_healthy(&asker.session, &client_urls(&healthy), ETCD_HEALTHY_WITHIN).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_the_lines_besides_steps_and_done() {
        let stderr = "rafter-bootstrap: step kernel\nrafter-bootstrap: setting net.ipv4.ip_forward = 1\nrafter-bootstrap: step containerd\nrafter-bootstrap: (re)starting containerd\nwrote /etc/x\nrafter-bootstrap: done\n";
        assert_eq!(
            reported_changes(stderr),
            [
                "setting net.ipv4.ip_forward = 1",
                "(re)starting containerd",
                "wrote /etc/x"
            ]
        );
        assert!(
            reported_changes("rafter-bootstrap: step etcd\nrafter-bootstrap: done\n").is_empty()
        );
    }

    #[test]
    fn warnings_are_reported_apart_and_are_not_changes() {
        let stderr = "rafter-bootstrap: step kernel\nrafter-bootstrap: warning: kernel.panic is 1 and cannot be set here\nrafter-bootstrap: setting net.ipv4.ip_forward = 1\nrafter-bootstrap: done\n";
        assert_eq!(
            reported_changes(stderr),
            ["setting net.ipv4.ip_forward = 1"]
        );
        assert_eq!(
            reported_warnings(stderr),
            ["kernel.panic is 1 and cannot be set here"]
        );
    }

    #[test]
    fn only_the_phases_that_change_hosts_can_be_skipped() {
        assert_eq!(Phase::parse_skippable("addons"), Some(Phase::Addons));
        assert_eq!(Phase::parse_skippable("connect"), None);
        assert_eq!(Phase::parse_skippable("nope"), None);
    }
}
