//! Driving the apply engine against the emulator: an in-memory state record and options
//! suited to an emulator that answers at once.
#![allow(dead_code)]

use std::sync::Mutex;
use std::time::Duration;

use rafter::apply::{self, ApplyOptions, ApplyReport, Recorder, RetryPolicy, SilentReporter};
use rafter::aws::AwsProvisioner;
use rafter::graph::{Address, ResourceGraph};
use rafter::plan::{self, RecordedResource};
use rafter::state::{Lineage, StateError};

/// What a state store would hold, in memory: the records, and the lineage idempotency
/// tokens are derived from (as `resources.json` keeps it).
pub struct Memory(pub Mutex<Vec<RecordedResource>>, pub Mutex<Lineage>);

impl Default for Memory {
    fn default() -> Self {
        let incarnation = format!(
            "{:032x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        Memory(
            Mutex::default(),
            Mutex::new(Lineage {
                incarnation,
                retired: Default::default(),
            }),
        )
    }
}

impl Memory {
    pub fn records(&self) -> Vec<RecordedResource> {
        self.0.lock().unwrap().clone()
    }

    pub fn lineage(&self) -> Lineage {
        self.1.lock().unwrap().clone()
    }

    /// A provisioner for `name` over `config` that derives its tokens from this record.
    pub fn provisioner(&self, config: &aws_config::SdkConfig, name: &str) -> AwsProvisioner {
        AwsProvisioner::new(config, name).with_lineage(self.lineage())
    }
}

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
        *self
            .1
            .lock()
            .unwrap()
            .retired
            .entry(address.to_string())
            .or_default() += 1;
        Ok(())
    }
}

/// Anything still failing after a minute against the emulator is a real failure.
pub fn options() -> ApplyOptions {
    ApplyOptions {
        retry: RetryPolicy {
            deadline: Duration::from_secs(60),
            ..RetryPolicy::default()
        },
        ..ApplyOptions::default()
    }
}

/// Plans `graph` against what `memory` holds and applies it; returns the report and the
/// provisioner (for its call counts).
pub async fn converge(
    name: &str,
    graph: &ResourceGraph,
    memory: &Memory,
) -> (ApplyReport, AwsProvisioner) {
    let recorded = memory.records();
    let provisioner = memory.provisioner(&super::moto::sdk_config(), name);
    let plan = plan::diff(name, graph, &recorded).unwrap();
    let report = apply::apply(
        graph,
        &plan,
        &recorded,
        &provisioner,
        memory,
        &SilentReporter,
        options(),
    )
    .await
    .unwrap();
    (report, provisioner)
}

/// Deletes everything `memory` holds, dependents first.
pub async fn destroy(name: &str, memory: &Memory) -> (ApplyReport, AwsProvisioner) {
    let recorded = memory.records();
    let provisioner = memory.provisioner(&super::moto::sdk_config(), name);
    let plan = plan::diff::destroy_plan(name, &recorded).unwrap();
    let report = apply::apply(
        &ResourceGraph::new(),
        &plan,
        &recorded,
        &provisioner,
        memory,
        &SilentReporter,
        options(),
    )
    .await
    .unwrap();
    (report, provisioner)
}
