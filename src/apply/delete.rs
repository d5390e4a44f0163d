//! The reverse walk: deleting recorded resources, each as soon as nothing still to be deleted
//! depends on it, at most N at a time, forgetting each the moment it is gone. A failed delete
//! skips what it depends on (those deletes could only fail while it exists).

use std::collections::{BTreeMap, HashMap};

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::engine::{ApplyOptions, ApplyReport, with_retries};
use super::{Provisioner, Recorder, Reporter};
use crate::graph::Address;
use crate::plan::{Action, RecordedResource};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Waiting,
    Running,
    Done,
    Failed,
    Skipped,
}

/// Deletes the recorded resources at `addresses` (any order: dependencies are taken from the
/// records). Returns the addresses that were not deleted.
pub(super) async fn delete_walk(
    addresses: &[&Address],
    recorded: &BTreeMap<&Address, &RecordedResource>,
    provisioner: &impl Provisioner,
    recorder: &impl Recorder,
    reporter: &impl Reporter,
    options: ApplyOptions,
    report: &mut ApplyReport,
) -> Vec<Address> {
    let targets: Vec<&RecordedResource> = addresses
        .iter()
        .filter_map(|address| recorded.get(*address).copied())
        .collect();
    let index: HashMap<&Address, usize> = targets
        .iter()
        .enumerate()
        .map(|(position, target)| (&target.address, position))
        .collect();
    // What each target depends on among the targets, and how many targets still need it.
    let depends_on: Vec<Vec<usize>> = targets
        .iter()
        .map(|target| {
            target
                .dependencies
                .iter()
                .filter_map(|dependency| index.get(dependency).copied())
                .collect()
        })
        .collect();
    let mut needed_by = vec![0usize; targets.len()];
    for dependencies in &depends_on {
        for &dependency in dependencies {
            needed_by[dependency] += 1;
        }
    }

    let mut status = vec![Status::Waiting; targets.len()];
    let mut in_flight = FuturesUnordered::new();
    let parallelism = options.parallelism.max(1);
    loop {
        if report.state_error.is_none() {
            for position in 0..targets.len() {
                if in_flight.len() >= parallelism {
                    break;
                }
                if status[position] != Status::Waiting || needed_by[position] > 0 {
                    continue;
                }
                status[position] = Status::Running;
                let resource = targets[position];
                reporter.started(&resource.address, Action::Delete);
                in_flight.push(async move {
                    let (result, retries) =
                        with_retries(&resource.address, options.retry, reporter, || {
                            provisioner.delete(resource)
                        })
                        .await;
                    (position, result, retries)
                });
            }
        }
        let Some((position, result, retries)) = in_flight.next().await else {
            break;
        };
        report.retries += retries;
        let address = &targets[position].address;
        match result {
            Ok(()) => {
                if let Err(error) = recorder.forget(address).await {
                    report.state_error.get_or_insert(error);
                    status[position] = Status::Failed;
                    continue;
                }
                status[position] = Status::Done;
                reporter.finished(address, Action::Delete);
                for &dependency in &depends_on[position] {
                    needed_by[dependency] -= 1;
                }
            }
            Err(error) => {
                status[position] = Status::Failed;
                reporter.failed(address, &error);
                report.failed.push((address.clone(), error));
                let mut stack = depends_on[position].clone();
                while let Some(dependency) = stack.pop() {
                    if status[dependency] == Status::Waiting {
                        status[dependency] = Status::Skipped;
                        report
                            .skipped
                            .push((targets[dependency].address.clone(), address.clone()));
                        stack.extend(depends_on[dependency].iter().copied());
                    }
                }
            }
        }
    }
    targets
        .iter()
        .zip(&status)
        .filter(|(_, status)| **status != Status::Done)
        .map(|(target, _)| target.address.clone())
        .collect()
}
