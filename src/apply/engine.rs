//! The apply walk itself.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::delete::delete_walk;
use super::retry::{Jitter, RetryPolicy};
use super::{ErrorClass, Outputs, ProvisionError, Provisioner, Recorder, Reporter};
use crate::graph::{Address, Field, GraphError, ResourceGraph, Value};
use crate::plan::{Action, Plan, RecordedResource};
use crate::state::StateError;

#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// Operations in flight at once.
    pub parallelism: usize,
    pub retry: RetryPolicy,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            parallelism: 8,
            retry: RetryPolicy::default(),
        }
    }
}

/// What happened, resource by resource.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub done: Vec<(Address, Action)>,
    pub failed: Vec<(Address, ProvisionError)>,
    /// Not attempted because something they depend on failed: (resource, the failure).
    pub skipped: Vec<(Address, Address)>,
    /// Transient errors that were retried.
    pub retries: u32,
    /// Recording state failed: the walk stopped starting new work.
    pub state_error: Option<StateError>,
}

impl ApplyReport {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.state_error.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Waiting,
    Running,
    Done,
    Failed,
    Skipped,
}

/// Replaces every reference with the referred resource's output.
fn resolve(
    fields: &[Field],
    outputs: &HashMap<Address, Outputs>,
) -> Result<Vec<Field>, ProvisionError> {
    fields
        .iter()
        .map(|field| {
            Ok(Field {
                value: resolve_value(&field.value, outputs)?,
                ..field.clone()
            })
        })
        .collect()
}

fn resolve_value(
    value: &Value,
    outputs: &HashMap<Address, Outputs>,
) -> Result<Value, ProvisionError> {
    Ok(match value {
        Value::Ref(reference) => {
            let output = outputs
                .get(&reference.target)
                .and_then(|known| known.get(&reference.attribute));
            match output {
                Some(resolved) => Value::Str(resolved.clone()),
                None => {
                    return Err(ProvisionError::permanent(
                        "UnresolvedReference",
                        format!("{}.{} is not known", reference.target, reference.attribute),
                    ));
                }
            }
        }
        Value::List(items) => Value::List(
            items
                .iter()
                .map(|item| resolve_value(item, outputs))
                .collect::<Result<_, _>>()?,
        ),
        Value::Block(fields) => Value::Block(resolve(fields, outputs)?),
        Value::Blocks(blocks) => Value::Blocks(
            blocks
                .iter()
                .map(|fields| resolve(fields, outputs))
                .collect::<Result<_, _>>()?,
        ),
        Value::Json(document) => Value::Json(Box::new(resolve_value(document, outputs)?)),
        other => other.clone(),
    })
}

/// Runs `operation` until it succeeds, fails permanently, or the retry deadline passes.
pub(super) async fn with_retries<T, F, Fut>(
    address: &Address,
    policy: RetryPolicy,
    reporter: &impl Reporter,
    mut operation: F,
) -> (Result<T, ProvisionError>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProvisionError>>,
{
    let started = Instant::now();
    let mut jitter = Jitter::new();
    let mut attempt = 0;
    loop {
        match operation().await {
            Ok(value) => return (Ok(value), attempt),
            Err(error) if error.class == ErrorClass::Transient => {
                match policy.backoff(attempt, started, &mut jitter) {
                    Some(pause) => {
                        attempt += 1;
                        reporter.retrying(address, attempt, &error);
                        tokio::time::sleep(pause).await;
                    }
                    None => return (Err(error), attempt),
                }
            }
            Err(error) => return (Err(error), attempt),
        }
    }
}

/// Applies `plan` (made from `graph` and `recorded`): creates, updates and replaces in
/// dependency order, at most `options.parallelism` at a time, recording each resource the
/// moment it is done; then deletes what is no longer wanted, dependents first. A failure
/// stops the resources that depend on it, not their independent siblings.
pub async fn apply(
    graph: &ResourceGraph,
    plan: &Plan,
    recorded: &[RecordedResource],
    provisioner: &impl Provisioner,
    recorder: &impl Recorder,
    reporter: &impl Reporter,
    options: ApplyOptions,
) -> Result<ApplyReport, GraphError> {
    let order = graph.topological_order()?;
    let nodes = graph.nodes();
    let position_of: HashMap<&Address, usize> = nodes
        .iter()
        .enumerate()
        .map(|(position, node)| (&node.address, position))
        .collect();
    let actions: HashMap<&Address, Action> = plan
        .changes
        .iter()
        .map(|change| (&change.address, change.action))
        .collect();
    let recorded_by_address: BTreeMap<&Address, &RecordedResource> = recorded
        .iter()
        .map(|resource| (&resource.address, resource))
        .collect();
    let mut outputs: HashMap<Address, Outputs> = recorded
        .iter()
        .map(|resource| (resource.address.clone(), resource.outputs.clone()))
        .collect();

    let mut dependencies: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (position, node) in nodes.iter().enumerate() {
        for dependency in node.dependencies() {
            if let Some(&target) = position_of.get(&dependency) {
                dependencies[position].push(target);
                dependents[target].push(position);
            }
        }
    }

    let mut status = vec![Status::Waiting; nodes.len()];
    let mut report = ApplyReport::default();

    // Replaced resources go first, dependents before what they depend on, so nothing still
    // holds on to what is deleted; the walk below then creates them anew in dependency order.
    let replaced: Vec<&Address> = plan
        .changes
        .iter()
        .filter(|change| change.action == Action::Replace)
        .map(|change| &change.address)
        .collect();
    let not_deleted = delete_walk(
        &replaced,
        &recorded_by_address,
        provisioner,
        recorder,
        reporter,
        options,
        &mut report,
    )
    .await;
    for address in &not_deleted {
        if let Some(&position) = position_of.get(address) {
            status[position] = Status::Failed;
        }
    }
    for address in &not_deleted {
        if let Some(&position) = position_of.get(address) {
            skip_dependents(position, &dependents, &mut status, nodes, &mut report);
        }
    }
    let mut in_flight = FuturesUnordered::new();
    let parallelism = options.parallelism.max(1);

    loop {
        if report.state_error.is_none() {
            for &position in &order {
                if in_flight.len() >= parallelism {
                    break;
                }
                if status[position] != Status::Waiting
                    || dependencies[position]
                        .iter()
                        .any(|dependency| status[*dependency] != Status::Done)
                {
                    continue;
                }
                let node = &nodes[position];
                let Some(&action) = actions.get(&node.address) else {
                    status[position] = Status::Done; // unchanged
                    continue;
                };
                let attributes = match resolve(&node.resource.attributes(), &outputs) {
                    Ok(attributes) => attributes,
                    Err(error) => {
                        status[position] = Status::Failed;
                        reporter.failed(&node.address, &error);
                        report.failed.push((node.address.clone(), error));
                        continue;
                    }
                };
                status[position] = Status::Running;
                reporter.started(&node.address, action);
                let previous = recorded_by_address.get(&node.address).copied();
                let retry = options.retry;
                in_flight.push(async move {
                    let address = &node.address;
                    let (result, retries) = with_retries(address, retry, reporter, || async {
                        match (action, previous) {
                            (Action::Read, _) => provisioner.read(address, &attributes).await,
                            (Action::Update, Some(previous)) => {
                                provisioner.update(previous, &attributes).await
                            }
                            _ => provisioner.create(address, &attributes).await,
                        }
                    })
                    .await;
                    (position, action, result, retries)
                });
            }
        }
        let Some((position, action, result, retries)) = in_flight.next().await else {
            break;
        };
        report.retries += retries;
        let node = &nodes[position];
        match result {
            Ok(node_outputs) => {
                outputs.insert(node.address.clone(), node_outputs.clone());
                status[position] = Status::Done;
                // Lookups too: their answer is kept until the lookup itself changes.
                let record = RecordedResource {
                    address: node.address.clone(),
                    outputs: node_outputs,
                    attributes: node.resource.attributes(),
                    dependencies: node.dependencies(),
                };
                if let Err(error) = recorder.record(record).await {
                    report.state_error.get_or_insert(error);
                }
                reporter.finished(&node.address, action);
                report.done.push((node.address.clone(), action));
            }
            Err(error) => {
                status[position] = Status::Failed;
                reporter.failed(&node.address, &error);
                report.failed.push((node.address.clone(), error));
                skip_dependents(position, &dependents, &mut status, nodes, &mut report);
            }
        }
    }
    for (position, state) in status.iter_mut().enumerate() {
        if *state == Status::Waiting && report.state_error.is_some() {
            *state = Status::Skipped;
            report.skipped.push((
                nodes[position].address.clone(),
                nodes[position].address.clone(),
            ));
        }
    }

    if report.failed.is_empty() && report.state_error.is_none() {
        delete_unwanted(
            plan,
            &recorded_by_address,
            provisioner,
            recorder,
            reporter,
            options,
            &mut report,
        )
        .await;
        // Lookups no longer wanted (another image; the whole cluster deleted) own nothing in
        // the cloud: their answer is only forgotten.
        for address in recorded_by_address.keys() {
            if address.kind.is_lookup()
                && graph.get(address).is_none()
                && let Err(error) = recorder.forget(address).await
            {
                report.state_error.get_or_insert(error);
            }
        }
    }
    Ok(report)
}

fn skip_dependents(
    failed: usize,
    dependents: &[Vec<usize>],
    status: &mut [Status],
    nodes: &[crate::graph::GraphNode],
    report: &mut ApplyReport,
) {
    let mut stack = dependents[failed].clone();
    while let Some(position) = stack.pop() {
        if status[position] == Status::Waiting {
            status[position] = Status::Skipped;
            report.skipped.push((
                nodes[position].address.clone(),
                nodes[failed].address.clone(),
            ));
            stack.extend(dependents[position].iter().copied());
        }
    }
}

/// Deletes what the spec dropped, dependents first.
async fn delete_unwanted(
    plan: &Plan,
    recorded: &BTreeMap<&Address, &RecordedResource>,
    provisioner: &impl Provisioner,
    recorder: &impl Recorder,
    reporter: &impl Reporter,
    options: ApplyOptions,
    report: &mut ApplyReport,
) {
    let unwanted: Vec<&Address> = plan
        .changes
        .iter()
        .filter(|change| change.action == Action::Delete)
        .map(|change| &change.address)
        .collect();
    let failed = delete_walk(
        &unwanted,
        recorded,
        provisioner,
        recorder,
        reporter,
        options,
        report,
    )
    .await;
    for address in unwanted
        .into_iter()
        .filter(|address| !failed.contains(address))
    {
        report.done.push((address.clone(), Action::Delete));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::apply::SilentReporter;
    use crate::model::build_graph;
    use crate::plan::diff;
    use crate::spec::{self, SpecFlags, SpecSources};

    fn ha_graph() -> ResourceGraph {
        let sources = SpecSources {
            profile: Some("ha-aws".into()),
            file: None,
            flags: SpecFlags {
                name: Some("t.example.com".into()),
                zones: Some(vec![
                    "eu-west-1a".into(),
                    "eu-west-1b".into(),
                    "eu-west-1c".into(),
                ]),
                ..SpecFlags::default()
            },
        };
        build_graph(&spec::load(&sources, None).unwrap().cluster).unwrap()
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Event {
        Start(String),
        End(String),
        Delete(String),
    }

    #[derive(Default)]
    struct Fake {
        events: Mutex<Vec<Event>>,
        running: AtomicUsize,
        most_running: AtomicUsize,
        transient: Mutex<HashMap<String, u32>>,
        permanent: HashSet<String>,
        saw_reference: Mutex<bool>,
    }

    fn has_reference(fields: &[Field]) -> bool {
        fn value(candidate: &Value) -> bool {
            match candidate {
                Value::Ref(_) => true,
                Value::List(items) => items.iter().any(value),
                Value::Block(fields) => has_reference(fields),
                Value::Blocks(blocks) => blocks.iter().any(|fields| has_reference(fields)),
                Value::Json(document) => value(document),
                _ => false,
            }
        }
        fields.iter().any(|field| value(&field.value))
    }

    impl Fake {
        async fn operate(
            &self,
            address: &Address,
            attributes: &[Field],
        ) -> Result<Outputs, ProvisionError> {
            let name = address.to_string();
            if has_reference(attributes) {
                *self.saw_reference.lock().unwrap() = true;
            }
            if let Some(left) = self
                .transient
                .lock()
                .unwrap()
                .get_mut(&name)
                .filter(|left| **left > 0)
            {
                *left -= 1;
                return Err(ProvisionError::transient(
                    "RequestLimitExceeded",
                    "slow down",
                ));
            }
            if self.permanent.contains(&name) {
                return Err(ProvisionError::permanent("InvalidParameterValue", "no"));
            }
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_running.fetch_max(now, Ordering::SeqCst);
            self.events.lock().unwrap().push(Event::Start(name.clone()));
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.events.lock().unwrap().push(Event::End(name.clone()));
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok([
                "id",
                "arn",
                "name",
                "latest_version",
                "dns_name",
                "zone_id",
                "key_name",
            ]
            .iter()
            .map(|key| (key.to_string(), format!("{key}-of-{}", address.name)))
            .collect())
        }
    }

    impl Provisioner for Fake {
        async fn read(
            &self,
            address: &Address,
            attributes: &[Field],
        ) -> Result<Outputs, ProvisionError> {
            self.operate(address, attributes).await
        }
        async fn create(
            &self,
            address: &Address,
            attributes: &[Field],
        ) -> Result<Outputs, ProvisionError> {
            self.operate(address, attributes).await
        }
        async fn update(
            &self,
            recorded: &RecordedResource,
            attributes: &[Field],
        ) -> Result<Outputs, ProvisionError> {
            self.operate(&recorded.address, attributes).await
        }
        async fn delete(&self, recorded: &RecordedResource) -> Result<(), ProvisionError> {
            self.events
                .lock()
                .unwrap()
                .push(Event::Delete(recorded.address.to_string()));
            Ok(())
        }
    }

    #[derive(Default)]
    struct Memory(Mutex<Vec<RecordedResource>>);

    impl Recorder for Memory {
        async fn record(&self, resource: RecordedResource) -> Result<(), StateError> {
            let mut records = self.0.lock().unwrap();
            records.retain(|existing| existing.address != resource.address);
            records.push(resource);
            Ok(())
        }
        async fn forget(&self, address: &Address) -> Result<(), StateError> {
            self.0
                .lock()
                .unwrap()
                .retain(|existing| &existing.address != address);
            Ok(())
        }
    }

    fn fast() -> ApplyOptions {
        ApplyOptions {
            parallelism: 4,
            retry: RetryPolicy {
                initial: Duration::from_millis(1),
                max: Duration::from_millis(5),
                deadline: Duration::from_secs(5),
            },
        }
    }

    async fn run(
        graph: &ResourceGraph,
        recorded: &[RecordedResource],
        fake: &Fake,
        memory: &Memory,
        options: ApplyOptions,
    ) -> ApplyReport {
        let plan = diff("t.example.com", graph, recorded).unwrap();
        apply(
            graph,
            &plan,
            recorded,
            fake,
            memory,
            &SilentReporter,
            options,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn creates_everything_in_dependency_order_with_references_resolved() {
        let graph = ha_graph();
        let (fake, memory) = (Fake::default(), Memory::default());
        let report = run(&graph, &[], &fake, &memory, fast()).await;
        assert!(report.succeeded(), "{report:?}");
        assert_eq!(report.done.len(), graph.len());
        assert!(
            !*fake.saw_reference.lock().unwrap(),
            "a provisioner was handed an unresolved reference"
        );
        let events = fake.events.lock().unwrap().clone();
        let position = |event: &Event| {
            events
                .iter()
                .position(|candidate| candidate == event)
                .unwrap()
        };
        for node in graph.nodes() {
            for dependency in node.dependencies() {
                assert!(
                    position(&Event::End(dependency.to_string()))
                        < position(&Event::Start(node.address.to_string())),
                    "{} started before {dependency} was done",
                    node.address
                );
            }
        }
        let most = fake.most_running.load(Ordering::SeqCst);
        assert!(
            (2..=4).contains(&most),
            "parallelism 4, independent work: {most} at once"
        );
        let records = memory.0.lock().unwrap().len();
        assert_eq!(records, graph.nodes().len(), "lookups are recorded too");
    }

    #[tokio::test]
    async fn a_second_apply_changes_nothing() {
        let graph = ha_graph();
        let (fake, memory) = (Fake::default(), Memory::default());
        run(&graph, &[], &fake, &memory, fast()).await;
        let recorded = memory.0.lock().unwrap().clone();
        let again = Fake::default();
        let report = run(&graph, &recorded, &again, &memory, fast()).await;
        assert!(report.succeeded());
        let calls: Vec<_> = again
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|event| matches!(event, Event::Start(_)))
            .cloned()
            .collect();
        assert!(
            calls.is_empty(),
            "not even a lookup is read again: {calls:?}"
        );
    }

    #[tokio::test]
    async fn transient_errors_are_retried() {
        let graph = ha_graph();
        let fake = Fake::default();
        fake.transient
            .lock()
            .unwrap()
            .insert("aws_vpc.main".into(), 3);
        let report = run(&graph, &[], &fake, &Memory::default(), fast()).await;
        assert!(report.succeeded(), "{report:?}");
        assert_eq!(report.retries, 3);
    }

    #[tokio::test]
    async fn a_permanent_failure_stops_its_dependents_only() {
        let graph = ha_graph();
        let failing = "aws_subnet.private-eu-west-1b";
        let fake = Fake {
            permanent: HashSet::from([failing.to_string()]),
            ..Fake::default()
        };
        let report = run(&graph, &[], &fake, &Memory::default(), fast()).await;
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0.to_string(), failing);
        assert_eq!(report.failed[0].1.code, "InvalidParameterValue");
        let skipped: HashSet<String> = report
            .skipped
            .iter()
            .map(|(address, _)| address.to_string())
            .collect();
        assert!(
            skipped.contains("aws_autoscaling_group.control-plane-eu-west-1b"),
            "{skipped:?}"
        );
        assert!(skipped.contains("aws_route_table_association.private-eu-west-1b"));
        let done: HashSet<String> = report
            .done
            .iter()
            .map(|(address, _)| address.to_string())
            .collect();
        assert!(
            done.contains("aws_autoscaling_group.control-plane-eu-west-1a"),
            "independent siblings go on"
        );
        assert!(done.contains("aws_subnet.private-eu-west-1c"));
        assert_eq!(done.len() + skipped.len() + 1, graph.len());
    }

    #[tokio::test]
    async fn resources_dropped_from_the_spec_are_deleted_and_forgotten() {
        let graph = ha_graph();
        let (fake, memory) = (Fake::default(), Memory::default());
        run(&graph, &[], &fake, &memory, fast()).await;
        let mut recorded = memory.0.lock().unwrap().clone();
        let mut extra = recorded[0].clone();
        extra.address = Address::new(crate::graph::ResourceKind::Vpc, "old");
        recorded.push(extra.clone());
        memory.0.lock().unwrap().push(extra);
        let again = Fake::default();
        let report = run(&graph, &recorded, &again, &memory, fast()).await;
        assert!(report.succeeded(), "{report:?}");
        let changes: Vec<Event> = again.events.lock().unwrap().iter().cloned().collect();
        assert_eq!(
            changes,
            [Event::Delete("aws_vpc.old".into())],
            "nothing else is touched, and no lookup is read again"
        );
        assert!(
            memory
                .0
                .lock()
                .unwrap()
                .iter()
                .all(|resource| resource.address.name != "old")
        );
    }

    #[tokio::test]
    async fn a_replace_deletes_dependents_first_then_creates_in_dependency_order() {
        let graph = ha_graph();
        let (fake, memory) = (Fake::default(), Memory::default());
        run(&graph, &[], &fake, &memory, fast()).await;
        let mut recorded = memory.0.lock().unwrap().clone();
        // Recorded with another CIDR: the subnet is replaced, and with it what refers to it
        // through an attribute that cannot change in place.
        let subnet = "aws_subnet.public-eu-west-1a";
        for record in recorded.iter_mut() {
            if record.address.to_string() == subnet {
                for field in record.attributes.iter_mut() {
                    if field.name == "cidr_block" {
                        field.value = Value::Str("10.0.250.0/24".into());
                    }
                }
            }
        }
        let plan = diff("t.example.com", &graph, &recorded).unwrap();
        let replaced: Vec<String> = plan
            .changes
            .iter()
            .filter(|change| change.action == Action::Replace)
            .map(|change| change.address.to_string())
            .collect();
        assert!(replaced.len() >= 2, "{replaced:?}");
        let again = Fake::default();
        let report = run(&graph, &recorded, &again, &memory, fast()).await;
        assert!(report.succeeded(), "{report:?}");
        let events = again.events.lock().unwrap().clone();
        let position = |event: &Event| events.iter().position(|candidate| candidate == event);
        let deletes: Vec<String> = events
            .iter()
            .filter_map(|event| match event {
                Event::Delete(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        // Dependents go first: the subnet is the last replaced resource deleted.
        assert_eq!(
            deletes.last().map(String::as_str),
            Some(subnet),
            "{deletes:?}"
        );
        assert_eq!(deletes.len(), replaced.len(), "{deletes:?}");
        let first_create = events
            .iter()
            .position(|event| matches!(event, Event::Start(name) if replaced.contains(name)))
            .unwrap();
        let last_delete = position(&Event::Delete(subnet.into())).unwrap();
        assert!(last_delete < first_create, "{events:?}");
        // And the new subnet exists before what refers to it is made again.
        for name in replaced.iter().filter(|name| *name != subnet) {
            assert!(
                position(&Event::End(subnet.into())) < position(&Event::Start(name.clone())),
                "{name} created before the subnet: {events:?}"
            );
        }
    }
}
