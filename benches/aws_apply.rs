//! Applying whole clusters (`ha-aws`, `dev-aws`) to the AWS API emulator behind a proxy that
//! adds a fixed 50 ms to every API round trip, as a real region would. Reports, per profile:
//!
//! - the apply's wall time against its lower bound, the longest dependency chain × latency
//!   (target, issue 3: ratio ≤ 1.5), and the round trips each step of that chain took;
//! - API calls per created resource (target ≤ 2), counted by rafter and cross-checked with the
//!   requests the proxy saw;
//! - a no-op re-apply: its calls against the number of resource kinds (target ≤ one per kind);
//! - a refresh (what `update cluster` does first: which recorded resources were deleted
//!   outside rafter): its wall time in round trips and its calls against the kinds it reads;
//! - the delete: wall time and calls;
//! - the refresh of a cluster with 200 node groups (about a thousand resources), applied
//!   first: the same numbers.
//!
//! Run: `cargo bench --bench aws_apply` (needs the emulator: `scripts/setup-tools.sh`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::apply::{Memory, options};
use common::proxy::{FaultConfig, FaultProxy, ProxyCounts};
use rafter::apply::{self, ApplyOptions, ApplyReport, ProvisionError, Reporter};
use rafter::aws::{AwsProvisioner, CallCount};
use rafter::graph::{Address, ResourceGraph};
use rafter::model::build_graph;
use rafter::plan::{self, Action, Plan};
use rafter::spec;

const LATENCY: Duration = Duration::from_millis(50);

/// A resource's action, when it started and when it finished (if it did).
type Span = (Action, Duration, Option<Duration>);

/// When each resource's operation started and finished, relative to the phase's start.
struct Timing {
    origin: Instant,
    spans: Mutex<HashMap<Address, Span>>,
    retries: Mutex<Vec<String>>,
}

impl Timing {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            spans: Mutex::new(HashMap::new()),
            retries: Mutex::new(Vec::new()),
        }
    }

    fn span(&self, address: &Address) -> Option<(Action, Duration, Duration)> {
        let spans = self.spans.lock().unwrap();
        let (action, start, end) = spans.get(address)?;
        Some((*action, *start, (*end)?))
    }
}

impl Reporter for Timing {
    fn started(&self, address: &Address, action: Action) {
        let at = self.origin.elapsed();
        self.spans
            .lock()
            .unwrap()
            .insert(address.clone(), (action, at, None));
    }
    fn finished(&self, address: &Address, _action: Action) {
        let at = self.origin.elapsed();
        if let Some(span) = self.spans.lock().unwrap().get_mut(address) {
            span.2 = Some(at);
        }
    }
    fn retrying(&self, address: &Address, attempt: u32, error: &ProvisionError) {
        self.retries
            .lock()
            .unwrap()
            .push(format!("{address} #{attempt}: {}", error.code));
    }
}

/// One apply (or delete) through the proxy, measured.
struct Phase {
    wall: Duration,
    report: ApplyReport,
    calls: BTreeMap<&'static str, CallCount>,
    proxy: ProxyCounts,
    operations: BTreeMap<String, u64>,
    timing: Timing,
}

impl Phase {
    fn sdk_calls(&self) -> u64 {
        self.calls
            .values()
            .map(|count| count.reads + count.writes)
            .sum()
    }
    fn reads(&self) -> u64 {
        self.calls.values().map(|count| count.reads).sum()
    }
    fn writes(&self) -> u64 {
        self.calls.values().map(|count| count.writes).sum()
    }
    fn count(&self, action: Action) -> usize {
        self.report
            .done
            .iter()
            .filter(|(_, done)| *done == action)
            .count()
    }
}

/// A refresh of what `memory` records, measured.
struct Refreshed {
    wall: Duration,
    calls: BTreeMap<&'static str, CallCount>,
    /// The kinds read: those with a recorded id a refresh reads.
    kinds: usize,
    /// Recorded resources of those kinds.
    resources: usize,
    vanished: usize,
    changed: usize,
}

impl Refreshed {
    fn calls(&self) -> u64 {
        self.calls
            .values()
            .map(|count| count.reads + count.writes)
            .sum()
    }

    fn print(&self, row: &dyn Fn(&str, String)) {
        row(
            "wall time",
            format!(
                "{:.0} ms ({:.1} round trips) for {} resources of {} kinds",
                ms(self.wall),
                self.wall.as_secs_f64() / LATENCY.as_secs_f64(),
                self.resources,
                self.kinds
            ),
        );
        row(
            "API calls",
            format!(
                "{} ({}); {:.2} per kind",
                self.calls(),
                per_service(&self.calls),
                self.calls() as f64 / self.kinds.max(1) as f64
            ),
        );
        row(
            "found deleted / changed outside",
            format!("{} / {} (0 / 0 expected)", self.vanished, self.changed),
        );
    }
}

async fn refresh(proxy: &FaultProxy, name: &str, memory: &Memory) -> Refreshed {
    let records = memory.records();
    let read: Vec<_> = records
        .iter()
        .filter(|record| {
            rafter::aws::refresh::is_read(record.address.kind) && record.outputs.contains_key("id")
        })
        .collect();
    let kinds: BTreeSet<_> = read.iter().map(|record| record.address.kind).collect();
    let provisioner = AwsProvisioner::new(&proxy.sdk_config(), name);
    let started = Instant::now();
    let refreshed = rafter::aws::refresh::refresh(&provisioner.context, &records)
        .await
        .expect("refresh");
    Refreshed {
        wall: started.elapsed(),
        calls: provisioner.calls().snapshot(),
        kinds: kinds.len(),
        resources: read.len(),
        vanished: refreshed.vanished.len(),
        changed: refreshed.changed.len(),
    }
}

/// `ha-aws` with `groups` node groups: applied, refreshed, deleted; the refresh reported.
async fn bench_many_groups(proxy: &FaultProxy, groups: usize) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let overlay = dir.path().join("groups.yaml");
    let mut yaml = String::from(
        "apiVersion: rafter.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: groups.example.com\nspec:\n  nodeGroups:\n",
    );
    for group in 0..groups {
        yaml.push_str(&format!(
            "    - name: group-{group:03}\n      instanceType: t3.large\n      minSize: 0\n      maxSize: 2\n"
        ));
    }
    std::fs::write(&overlay, yaml).expect("write the overlay");
    let mut sources = common::example_sources("ha-aws");
    sources.flags.name = Some("groups.example.com".into());
    sources.file = Some(overlay);
    let cluster = spec::load(&sources, None).expect("the spec").cluster;
    let name = cluster.metadata.name.clone();
    let graph = build_graph(&cluster).expect("the graph");
    let memory = Memory::default();
    let plan = plan::diff(&name, &graph, &[]).unwrap();
    let create = run_phase(proxy, &name, &graph, &plan, &memory, options()).await;
    let refreshed = refresh(proxy, &name, &memory).await;
    let plan = plan::diff::destroy_plan(&name, &memory.records()).unwrap();
    run_phase(
        proxy,
        &name,
        &ResourceGraph::new(),
        &plan,
        &memory,
        options(),
    )
    .await;
    println!();
    println!(
        "=== ha-aws with {groups} node groups ({name}), {} ms per API round trip ===",
        ms(LATENCY)
    );
    let row = |label: &str, value: String| println!("  {label:<34} {value}");
    row(
        "resources",
        format!("{} (applied in {:.0} ms)", graph.len(), ms(create.wall)),
    );
    println!("  -- refresh --");
    refreshed.print(&row);
}

async fn run_phase(
    proxy: &FaultProxy,
    name: &str,
    graph: &ResourceGraph,
    plan: &Plan,
    memory: &Memory,
    options: ApplyOptions,
) -> Phase {
    let recorded = memory.records();
    let provisioner = AwsProvisioner::new(&proxy.sdk_config(), name);
    let before = proxy.counts();
    let operations_before = proxy.operations();
    let timing = Timing::new();
    let started = Instant::now();
    let report = apply::apply(
        graph,
        plan,
        &recorded,
        &provisioner,
        memory,
        &timing,
        options,
    )
    .await
    .expect("valid graph");
    let wall = started.elapsed();
    assert!(report.succeeded(), "{report:#?}");
    let mut operations = proxy.operations();
    for (operation, count) in operations.iter_mut() {
        *count -= operations_before.get(operation).copied().unwrap_or(0);
    }
    operations.retain(|_, count| *count > 0);
    Phase {
        wall,
        report,
        calls: provisioner.calls().snapshot(),
        proxy: proxy.counts() - before,
        operations,
        timing,
    }
}

/// The longest dependency chain (in resources), first resource first; checked against
/// [`ResourceGraph::longest_chain`].
fn longest_chain(graph: &ResourceGraph) -> Vec<usize> {
    let nodes = graph.nodes();
    let position: HashMap<&Address, usize> = nodes
        .iter()
        .enumerate()
        .map(|(position, node)| (&node.address, position))
        .collect();
    let mut depth = vec![1usize; nodes.len()];
    let mut previous: Vec<Option<usize>> = vec![None; nodes.len()];
    for node in graph.topological_order().expect("acyclic") {
        for dependency in nodes[node].dependencies() {
            let target = position[&dependency];
            if depth[target] + 1 > depth[node] {
                depth[node] = depth[target] + 1;
                previous[node] = Some(target);
            }
        }
    }
    let Some(mut last) = (0..nodes.len()).max_by_key(|node| (depth[*node], usize::MAX - node))
    else {
        return Vec::new();
    };
    let mut chain = vec![last];
    while let Some(before) = previous[last] {
        chain.push(before);
        last = before;
    }
    chain.reverse();
    assert_eq!(Some(chain.len()), graph.longest_chain().ok());
    chain
}

/// The chain that actually bounded the apply: from the resource that finished last, back
/// through whichever dependency finished last each time.
fn observed_critical_path(graph: &ResourceGraph, timing: &Timing) -> Vec<usize> {
    let nodes = graph.nodes();
    let position: HashMap<&Address, usize> = nodes
        .iter()
        .enumerate()
        .map(|(position, node)| (&node.address, position))
        .collect();
    let end_of = |node: usize| timing.span(&nodes[node].address).map(|span| span.2);
    let Some(mut last) = (0..nodes.len()).max_by_key(|node| end_of(*node)) else {
        return Vec::new();
    };
    let mut path = vec![last];
    while let Some(before) = nodes[last]
        .dependencies()
        .iter()
        .map(|dependency| position[dependency])
        .filter(|dependency| end_of(*dependency).is_some())
        .max_by_key(|dependency| end_of(*dependency))
    {
        path.push(before);
        last = before;
    }
    path.reverse();
    path
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// One line per step of `chain`: when it started, how long it took, about how many round
/// trips that is, and how long it waited after its dependencies were done.
fn print_steps(title: &str, graph: &ResourceGraph, chain: &[usize], timing: &Timing) -> f64 {
    let nodes = graph.nodes();
    println!("  {title}");
    println!(
        "    {:>3}  {:<58} {:>7} {:>9} {:>9} {:>6} {:>9}",
        "#", "resource", "action", "start ms", "took ms", "≈RT", "queued ms"
    );
    let mut round_trips = 0.0;
    for (step, node) in chain.iter().enumerate() {
        let address = &nodes[*node].address;
        let Some((action, start, end)) = timing.span(address) else {
            println!(
                "    {:>3}  {:<58} {:>7}",
                step + 1,
                address.to_string(),
                "(none)"
            );
            continue;
        };
        let trips = (end - start).as_secs_f64() / LATENCY.as_secs_f64();
        round_trips += trips;
        // Ready when its last dependency finished (without any: at the phase's start).
        let ready = nodes[*node]
            .dependencies()
            .iter()
            .filter_map(|dependency| timing.span(dependency).map(|span| span.2))
            .max()
            .unwrap_or(Duration::ZERO);
        println!(
            "    {:>3}  {:<58} {:>7} {:>9.0} {:>9.0} {:>6.1} {:>9.0}",
            step + 1,
            address.to_string(),
            action.verb(),
            ms(start),
            ms(end - start),
            trips,
            ms(start.saturating_sub(ready)),
        );
    }
    round_trips
}

fn print_operations(title: &str, operations: &BTreeMap<String, u64>) {
    let mut sorted: Vec<(&String, &u64)> = operations.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let total: u64 = operations.values().sum();
    println!("  {title} ({total} requests forwarded, by operation):");
    for line in sorted.chunks(3) {
        let cells: Vec<String> = line
            .iter()
            .map(|(operation, count)| format!("{count:>4} {operation:<38}"))
            .collect();
        println!("    {}", cells.join(" "));
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn per_service(calls: &BTreeMap<&'static str, CallCount>) -> String {
    calls
        .iter()
        .map(|(service, count)| format!("{service} {}r/{}w", count.reads, count.writes))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cross_check(phase: &Phase) -> String {
    let proxy = phase.proxy.total();
    let sdk = phase.sdk_calls();
    if proxy == sdk {
        format!("{proxy} (= rafter's count)")
    } else {
        format!(
            "{proxy} (rafter counted {sdk}: {} {})",
            proxy.abs_diff(sdk),
            if proxy > sdk {
                "requests uncounted"
            } else {
                "counted but not sent"
            }
        )
    }
}

async fn bench_profile(proxy: &FaultProxy, profile: &str) {
    let (cluster, graph) = common::example_graph(profile);
    let name = cluster.metadata.name.clone();
    let nodes = graph.nodes();
    let chain = longest_chain(&graph);
    let kinds: BTreeSet<_> = nodes.iter().map(|node| node.address.kind).collect();
    let lower_bound = LATENCY * chain.len() as u32;
    let memory = Memory::default();

    // Apply from nothing.
    let plan = plan::diff(&name, &graph, &[]).unwrap();
    let create = run_phase(proxy, &name, &graph, &plan, &memory, options()).await;
    let created = create.count(Action::Create);
    let looked_up = create.count(Action::Read);
    let ratio = create.wall.as_secs_f64() / lower_bound.as_secs_f64();
    let per_resource = create.sdk_calls() as f64 / created as f64;

    // Apply again: nothing to do.
    let plan = plan::diff(&name, &graph, &memory.records()).unwrap();
    let noop = run_phase(proxy, &name, &graph, &plan, &memory, options()).await;

    let refreshed = refresh(proxy, &name, &memory).await;

    // Delete.
    let plan = plan::diff::destroy_plan(&name, &memory.records()).unwrap();
    let delete = run_phase(
        proxy,
        &name,
        &ResourceGraph::new(),
        &plan,
        &memory,
        options(),
    )
    .await;
    let deleted = delete.count(Action::Delete);
    assert!(memory.records().is_empty());

    // Diagnostic: the same apply with no cap on operations in flight, to separate waiting
    // for a free slot from round trips per resource. Under another name: the emulator keeps
    // some tags of deleted resources, which would make this run look for them first.
    let mut sources = common::example_sources(profile);
    let other_name = format!("uncapped-{name}");
    sources.flags.name = Some(other_name.clone());
    let other_graph = build_graph(&spec::load(&sources, None).unwrap().cluster).unwrap();
    let unbounded = ApplyOptions {
        parallelism: other_graph.len(),
        ..options()
    };
    let plan = plan::diff(&other_name, &other_graph, &[]).unwrap();
    let uncapped = run_phase(proxy, &other_name, &other_graph, &plan, &memory, unbounded).await;
    let plan = plan::diff::destroy_plan(&other_name, &memory.records()).unwrap();
    run_phase(
        proxy,
        &other_name,
        &ResourceGraph::new(),
        &plan,
        &memory,
        options(),
    )
    .await;
    assert!(memory.records().is_empty());

    println!();
    println!(
        "=== {profile} ({name}), {} ms per API round trip ===",
        ms(LATENCY)
    );
    let row = |label: &str, value: String| println!("  {label:<34} {value}");
    row(
        "resources",
        format!(
            "{} ({created} created, {looked_up} looked up), {} kinds",
            graph.len(),
            kinds.len()
        ),
    );
    row(
        "longest dependency chain",
        format!(
            "{} resources: {}",
            chain.len(),
            chain
                .iter()
                .map(|node| nodes[*node].address.kind.type_name())
                .collect::<Vec<_>>()
                .join(" → ")
        ),
    );
    println!("  -- apply --");
    row("wall time", format!("{:.0} ms", ms(create.wall)));
    row(
        "lower bound (chain × latency)",
        format!("{:.0} ms", ms(lower_bound)),
    );
    row(
        "ratio wall / lower bound",
        format!("{ratio:.2} (target ≤ 1.5: {})", verdict(ratio <= 1.5)),
    );
    row(
        "API calls (rafter's count)",
        format!(
            "{} ({} reads, {} writes; {})",
            create.sdk_calls(),
            create.reads(),
            create.writes(),
            per_service(&create.calls)
        ),
    );
    row(
        "calls per created resource",
        format!(
            "{per_resource:.2} (target ≤ 2: {})",
            verdict(per_resource <= 2.0)
        ),
    );
    row("requests seen by the proxy", cross_check(&create));
    row(
        &format!("same, parallelism {} (diagnostic)", unbounded.parallelism),
        format!(
            "wall {:.0} ms, ratio {:.2}, {} calls, {} created",
            ms(uncapped.wall),
            uncapped.wall.as_secs_f64() / lower_bound.as_secs_f64(),
            uncapped.sdk_calls(),
            uncapped.count(Action::Create)
        ),
    );
    row(
        "engine retries",
        format!(
            "{} {:?}",
            create.report.retries,
            create.timing.retries.lock().unwrap()
        ),
    );
    println!("  -- no-op re-apply --");
    row("wall time", format!("{:.0} ms", ms(noop.wall)));
    row(
        "API calls",
        format!(
            "{} ({} reads, {} writes; {}) for {} lookups",
            noop.sdk_calls(),
            noop.reads(),
            noop.writes(),
            per_service(&noop.calls),
            noop.count(Action::Read)
        ),
    );
    row(
        "calls vs resource kinds",
        format!(
            "{} ≤ {} kinds: {}",
            noop.sdk_calls(),
            kinds.len(),
            verdict(noop.sdk_calls() <= kinds.len() as u64)
        ),
    );
    row("requests seen by the proxy", cross_check(&noop));
    println!("  -- refresh --");
    refreshed.print(&row);
    println!("  -- delete --");
    row(
        "wall time",
        format!(
            "{:.0} ms for {deleted} resources ({:.0} ms each; chain × latency = {:.0} ms)",
            ms(delete.wall),
            ms(delete.wall) / deleted.max(1) as f64,
            ms(lower_bound)
        ),
    );
    row(
        "API calls",
        format!(
            "{} ({} reads, {} writes; {}), {:.2} per resource",
            delete.sdk_calls(),
            delete.reads(),
            delete.writes(),
            per_service(&delete.calls),
            delete.sdk_calls() as f64 / deleted.max(1) as f64
        ),
    );
    row("requests seen by the proxy", cross_check(&delete));
    row("engine retries", format!("{}", delete.report.retries));

    println!();
    let chain_trips = print_steps(
        "apply, longest dependency chain step by step (≈RT = took / latency):",
        &graph,
        &chain,
        &create.timing,
    );
    println!(
        "    → {:.1} round trips over {} steps: {:.2} per step; {:.0} ms of the wall time",
        chain_trips,
        chain.len(),
        chain_trips / chain.len() as f64,
        chain_trips * ms(LATENCY)
    );
    let critical = observed_critical_path(&graph, &create.timing);
    if critical != chain {
        println!();
        let trips = print_steps(
            "apply, observed critical path (back from the last resource to finish):",
            &graph,
            &critical,
            &create.timing,
        );
        println!(
            "    → {:.1} round trips over {} steps: {:.2} per step",
            trips,
            critical.len(),
            trips / critical.len() as f64
        );
    }
    println!();
    print_operations("apply", &create.operations);
    print_operations("no-op re-apply", &noop.operations);
    print_operations("delete", &delete.operations);
}

/// One read per service straight to the emulator, so its lazily built backends (EC2 makes
/// its default VPC and loads its AMIs on first use) do not count as rafter's time.
async fn warm_up() {
    let config = common::moto::sdk_config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    ec2.describe_vpcs().send().await.expect("warm up EC2");
    ec2.describe_images()
        .owners("self")
        .send()
        .await
        .expect("warm up EC2 images");
    aws_sdk_iam::Client::new(&config)
        .list_roles()
        .send()
        .await
        .expect("warm up IAM");
    aws_sdk_elasticloadbalancingv2::Client::new(&config)
        .describe_load_balancers()
        .send()
        .await
        .expect("warm up ELB");
    aws_sdk_autoscaling::Client::new(&config)
        .describe_auto_scaling_groups()
        .send()
        .await
        .expect("warm up Auto Scaling");
    aws_sdk_route53::Client::new(&config)
        .list_hosted_zones()
        .send()
        .await
        .expect("warm up Route53");
}

/// The public zone `ha-aws` looks up, made directly in the emulator.
async fn create_zone(zone: &str) {
    let route53 = aws_sdk_route53::Client::new(&common::moto::sdk_config());
    route53
        .create_hosted_zone()
        .name(zone)
        .caller_reference(format!("rafter-bench-{zone}"))
        .send()
        .await
        .expect("create the hosted zone");
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects profiles.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|argument| !argument.starts_with("--"))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let moto = common::moto::moto();
        let proxy = FaultProxy::start(
            &moto.endpoint,
            FaultConfig {
                latency: LATENCY,
                ..FaultConfig::default()
            },
        );
        warm_up().await;
        create_zone("example.com").await;
        for profile in common::AWS_PROFILES {
            if filter.is_empty()
                || filter
                    .iter()
                    .any(|wanted| profile.contains(wanted.as_str()))
            {
                bench_profile(&proxy, profile).await;
            }
        }
        if filter.is_empty() || filter.iter().any(|wanted| wanted == "groups") {
            bench_many_groups(&proxy, 200).await;
        }
        println!();
        println!(
            "proxy total: {} requests forwarded, {} faults",
            proxy.forwarded(),
            proxy.faults()
        );
    });
}
