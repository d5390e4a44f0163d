//! What changed outside rafter (in the console, by hand, by another tool) since it recorded
//! a cluster's resources: which were deleted, and which attributes were changed. A plan
//! against a stale record would "update" a resource that is gone, its calls retried as
//! eventual consistency (`InvalidSubnetID.NotFound`) until the deadline, and would never see
//! a role policy widened or a route redirected by hand; against the refreshed record, the
//! plan creates what is gone and changes back what was changed.
//!
//! One describe per kind and page ([`read`]), filtered by the recorded ids (EC2's id filters
//! list what exists and never fail on what does not; route tables, their routes and their
//! associations share one); IAM, which has no batch describe, one
//! read per role, policy and profile, ten at a time. The answers are compared with the
//! record ([`compare`]) on the attributes whose update brings them back: see
//! [`read::read`] for which those are per kind. A resource found missing is looked for once
//! more after a pause, so a describe that has not yet caught up with a create moments ago is
//! not mistaken for a deletion.

mod compare;
mod read;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::Context;
use crate::apply::ProvisionError;
use crate::graph::{Address, ResourceKind};
use crate::plan::{RecordedResource, Refreshed};

use compare::Live;
pub use read::is_read;

/// How long before a resource found missing is looked for again.
const SECOND_LOOK: Duration = Duration::from_secs(2);

/// Records by address, for resolving what one record refers to.
type Records<'r> = BTreeMap<&'r Address, &'r RecordedResource>;

/// The recorded resources deleted outside rafter, and those changed outside rafter with the
/// live values of what changed.
pub async fn refresh(
    context: &Context,
    recorded: &[RecordedResource],
) -> Result<Refreshed, ProvisionError> {
    let records: Records = recorded
        .iter()
        .map(|record| (&record.address, record))
        .collect();
    let mut by_kind: BTreeMap<ResourceKind, Vec<&RecordedResource>> = BTreeMap::new();
    for record in recorded {
        if record.outputs.contains_key("id") && read::is_read(record.address.kind) {
            by_kind.entry(record.address.kind).or_default().push(record);
        }
    }
    let mut seen = read::read_all(context, &by_kind, &records).await?;
    let mut missing = missing_from(&by_kind, &seen);
    if !missing.is_empty() {
        tokio::time::sleep(SECOND_LOOK).await;
        let again: BTreeMap<ResourceKind, Vec<&RecordedResource>> = by_kind
            .iter()
            .map(|(kind, kept)| {
                let still: Vec<&RecordedResource> = kept
                    .iter()
                    .copied()
                    .filter(|record| missing.contains(&record.address))
                    .collect();
                (*kind, still)
            })
            .filter(|(_, still)| !still.is_empty())
            .collect();
        let looked_again = read::read_all(context, &again, &records).await?;
        for (kind, found) in looked_again {
            seen.entry(kind).or_default().extend(found);
        }
        missing = missing_from(&by_kind, &seen);
    }
    let mut changed = BTreeMap::new();
    for records_of_kind in by_kind.values() {
        for record in records_of_kind {
            let Some(live) = live_of(&seen, record) else {
                continue;
            };
            let differing = compare::changed_attributes(record, live, &records);
            if !differing.is_empty() {
                changed.insert(record.address.clone(), differing);
            }
        }
    }
    Ok(Refreshed {
        vanished: missing.into_iter().collect(),
        changed,
    })
}

/// What a read said about `record`, if it found it.
fn live_of<'s>(
    seen: &'s BTreeMap<ResourceKind, read::Seen>,
    record: &RecordedResource,
) -> Option<&'s Live> {
    let id = record.outputs.get("id")?;
    seen.get(&record.address.kind)?.get(id)
}

fn missing_from(
    by_kind: &BTreeMap<ResourceKind, Vec<&RecordedResource>>,
    seen: &BTreeMap<ResourceKind, read::Seen>,
) -> BTreeSet<Address> {
    by_kind
        .values()
        .flatten()
        .filter(|record| live_of(seen, record).is_none())
        .map(|record| record.address.clone())
        .collect()
}
