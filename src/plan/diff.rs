//! Desired graph against recorded state: create, update in place, replace, delete.

use std::collections::{BTreeMap, BTreeSet};

use crate::graph::{Address, Field, GraphError, ResourceGraph, UpdateMode, Value};

/// A resource as rafter last applied it (kept in the state store).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordedResource {
    pub address: Address,
    /// What the cloud said about it (`id`, `arn`, …), which other resources refer to.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    pub attributes: Vec<Field>,
    pub dependencies: Vec<Address>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Looked up, never changed.
    Read,
    Create,
    Update,
    /// Deleted and created again: an attribute the cloud cannot change has changed.
    Replace,
    Delete,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Read => "<=",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "created",
            Action::Update => "updated in place",
            Action::Replace => "replaced",
            Action::Delete => "destroyed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttributeChange {
    pub name: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub forces_replacement: bool,
    pub sensitive: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceChange {
    pub address: Address,
    pub action: Action,
    /// All attributes after the change (before it, for a delete).
    pub attributes: Vec<Field>,
    /// For updates and replaces: what differs.
    pub changes: Vec<AttributeChange>,
    /// What about the resource changed outside rafter, which this change repairs.
    pub drift: Option<Drift>,
}

/// A difference between what rafter recorded and what exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Drift {
    /// Recorded, but deleted outside rafter: it is created again.
    Vanished,
    /// Attributes were changed outside rafter: the change shows them as they are and brings
    /// them back to the spec.
    Changed,
}

impl Drift {
    pub fn describe(self) -> &'static str {
        match self {
            Drift::Vanished => "it was deleted outside rafter",
            Drift::Changed => "it was changed outside rafter",
        }
    }
}

/// What a refresh found that differs from the record: resources deleted outside rafter,
/// and attributes changed outside rafter with the values they have now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Refreshed {
    pub vanished: Vec<Address>,
    /// Per resource, each changed attribute (by its recorded name) and its live value.
    pub changed: BTreeMap<Address, Vec<(String, Value)>>,
}

impl Refreshed {
    /// The records as they are now: what vanished left out, what changed with its live
    /// values in place of the recorded ones.
    pub fn apply_to(&self, recorded: &[RecordedResource]) -> Vec<RecordedResource> {
        recorded
            .iter()
            .filter(|record| !self.vanished.contains(&record.address))
            .map(|record| {
                let mut record = record.clone();
                for (name, live) in self.changed.get(&record.address).into_iter().flatten() {
                    if let Some(field) = record.attributes.iter_mut().find(|f| &f.name == name) {
                        field.value = live.clone();
                    }
                }
                record
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub read: usize,
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub unchanged: usize,
}

impl Summary {
    pub fn has_changes(&self) -> bool {
        self.create + self.update + self.replace + self.delete > 0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub cluster: String,
    pub changes: Vec<ResourceChange>,
    pub summary: Summary,
}

/// Compares the desired graph with what was recorded. Creates, updates and replaces come in
/// dependency order; deletes of resources no longer wanted come last, dependents first.
///
/// A lookup (an image, a hosted zone) is read once and its answer recorded: while its
/// attributes stay the same, the recorded answer is used and nothing is read again, so a
/// newer image published meanwhile never rolls the launch templates by itself. When the
/// lookup changes (another image), it is read again and what refers to it is shown changing.
pub fn diff(
    cluster: &str,
    desired: &ResourceGraph,
    recorded: &[RecordedResource],
) -> Result<Plan, GraphError> {
    let recorded_by_address: BTreeMap<&Address, &RecordedResource> = recorded
        .iter()
        .map(|resource| (&resource.address, resource))
        .collect();
    let mut changes = Vec::new();
    let mut summary = Summary::default();
    // Resources that get a new identity in this plan (created or replaced): whatever refers
    // to them must take the new id.
    let mut renewed: BTreeSet<Address> = BTreeSet::new();
    for position in desired.topological_order()? {
        let node = &desired.nodes()[position];
        let attributes = node.resource.attributes();
        if node.address.kind.is_lookup() {
            let previous = recorded_by_address.get(&node.address);
            if previous.is_some_and(|previous| previous.attributes == attributes) {
                summary.unchanged += 1;
                continue;
            }
            if previous.is_some() {
                renewed.insert(node.address.clone());
            }
            summary.read += 1;
            changes.push(ResourceChange {
                address: node.address.clone(),
                action: Action::Read,
                attributes,
                changes: Vec::new(),
                drift: None,
            });
            continue;
        }
        let Some(previous) = recorded_by_address.get(&node.address) else {
            renewed.insert(node.address.clone());
            summary.create += 1;
            changes.push(ResourceChange {
                address: node.address.clone(),
                action: Action::Create,
                attributes,
                changes: Vec::new(),
                drift: None,
            });
            continue;
        };
        let mut attribute_changes = compare(&previous.attributes, &attributes);
        attribute_changes.extend(renewed_references(
            &attributes,
            &attribute_changes,
            &renewed,
            &recorded_by_address,
        ));
        let action = if attribute_changes.is_empty() {
            summary.unchanged += 1;
            continue;
        } else if attribute_changes
            .iter()
            .any(|change| change.forces_replacement)
        {
            renewed.insert(node.address.clone());
            summary.replace += 1;
            Action::Replace
        } else {
            summary.update += 1;
            Action::Update
        };
        changes.push(ResourceChange {
            address: node.address.clone(),
            action,
            attributes,
            changes: attribute_changes,
            drift: None,
        });
    }
    for resource in delete_order(recorded) {
        if desired.get(&resource.address).is_none() && !resource.address.kind.is_lookup() {
            summary.delete += 1;
            changes.push(ResourceChange {
                address: resource.address.clone(),
                action: Action::Delete,
                attributes: resource.attributes.clone(),
                changes: Vec::new(),
                drift: None,
            });
        }
    }
    Ok(Plan {
        cluster: cluster.to_string(),
        changes,
        summary,
    })
}

/// The resources of `graph` as if they were recorded as they are: what a bare-host
/// cluster's stored spec says its hosts are. Hosts are not kept in `resources.json` (nothing
/// in a cloud gives them ids); the stored spec is their record, so `update cluster` plans a
/// new spec's hosts against the stored spec's.
pub fn as_recorded(graph: &ResourceGraph) -> Vec<RecordedResource> {
    graph
        .nodes()
        .iter()
        .map(|node| RecordedResource {
            address: node.address.clone(),
            outputs: BTreeMap::new(),
            attributes: node.resource.attributes(),
            dependencies: node.dependencies(),
        })
        .collect()
}

/// Plans as [`diff`] does, against what a refresh found: each vanished resource is left out
/// of `recorded`, so it is created again, and each changed attribute is compared with its
/// live value, so the spec's value is applied again. The changes that repair drift are
/// marked so. What refers to a resource created again takes its new id.
pub fn diff_refreshed(
    cluster: &str,
    desired: &ResourceGraph,
    recorded: &[RecordedResource],
    refreshed: &Refreshed,
) -> Result<Plan, GraphError> {
    let mut plan = diff(cluster, desired, &refreshed.apply_to(recorded))?;
    let changed_outside = |change: &ResourceChange| {
        refreshed.changed.get(&change.address).is_some_and(|live| {
            change
                .changes
                .iter()
                .any(|attribute| live.iter().any(|(name, _)| *name == attribute.name))
        })
    };
    for change in &mut plan.changes {
        if change.action == Action::Create && refreshed.vanished.contains(&change.address) {
            change.drift = Some(Drift::Vanished);
        } else if matches!(change.action, Action::Update | Action::Replace)
            && changed_outside(change)
        {
            change.drift = Some(Drift::Changed);
        }
    }
    Ok(plan)
}

/// A plan that deletes everything recorded, dependents first.
pub fn destroy_plan(cluster: &str, recorded: &[RecordedResource]) -> Result<Plan, GraphError> {
    diff(cluster, &ResourceGraph::new(), recorded)
}

fn compare(before: &[Field], after: &[Field]) -> Vec<AttributeChange> {
    let names: BTreeSet<&str> = before
        .iter()
        .chain(after)
        .map(|field| field.name.as_str())
        .collect();
    let find =
        |fields: &[Field], name: &str| fields.iter().find(|field| field.name == name).cloned();
    let mut changes: Vec<AttributeChange> = names
        .into_iter()
        .filter_map(|name| {
            let old = find(before, name);
            let new = find(after, name);
            if old.as_ref().map(|field| &field.value) == new.as_ref().map(|field| &field.value) {
                return None;
            }
            let reference = new.as_ref().or(old.as_ref())?;
            Some(AttributeChange {
                name: name.to_string(),
                forces_replacement: reference.update == UpdateMode::Replace,
                sensitive: reference.sensitive,
                before: old.map(|field| field.value),
                after: new.map(|field| field.value),
            })
        })
        .collect();
    // Keep the resource's own attribute order for display.
    changes.sort_by_key(|change| {
        after
            .iter()
            .position(|field| field.name == change.name)
            .unwrap_or(usize::MAX)
    });
    changes
}

/// Attributes that refer to a resource getting a new identity (replaced, or created again
/// after an interrupted replace): unchanged in the spec, but their value will change. Shown
/// with the old resolved value before, the reference after; an attribute the cloud cannot
/// change forces the dependent's replacement too.
fn renewed_references(
    attributes: &[Field],
    already: &[AttributeChange],
    renewed: &BTreeSet<Address>,
    recorded: &BTreeMap<&Address, &RecordedResource>,
) -> Vec<AttributeChange> {
    attributes
        .iter()
        .filter(|field| !already.iter().any(|change| change.name == field.name))
        .filter(|field| {
            field
                .value
                .references()
                .into_iter()
                .any(|target| renewed.contains(target))
        })
        .map(|field| AttributeChange {
            name: field.name.clone(),
            before: Some(resolved_from(&field.value, recorded)),
            after: Some(field.value.clone()),
            forces_replacement: field.update == UpdateMode::Replace,
            sensitive: field.sensitive,
        })
        .collect()
}

/// `value` with each reference replaced by what the referred resource recorded, where known.
pub fn resolved_from(value: &Value, recorded: &BTreeMap<&Address, &RecordedResource>) -> Value {
    match value {
        Value::Ref(reference) => recorded
            .get(&reference.target)
            .and_then(|target| target.outputs.get(&reference.attribute))
            .map_or_else(|| value.clone(), |known| Value::Str(known.clone())),
        Value::List(items) => Value::List(
            items
                .iter()
                .map(|item| resolved_from(item, recorded))
                .collect(),
        ),
        Value::Block(fields) => Value::Block(resolved_fields(fields, recorded)),
        Value::Blocks(blocks) => Value::Blocks(
            blocks
                .iter()
                .map(|fields| resolved_fields(fields, recorded))
                .collect(),
        ),
        Value::Json(document) => Value::Json(Box::new(resolved_from(document, recorded))),
        other => other.clone(),
    }
}

fn resolved_fields(
    fields: &[Field],
    recorded: &BTreeMap<&Address, &RecordedResource>,
) -> Vec<Field> {
    fields
        .iter()
        .map(|field| Field {
            value: resolved_from(&field.value, recorded),
            ..field.clone()
        })
        .collect()
}

/// Recorded resources ordered so that each comes before what it depends on.
fn delete_order(recorded: &[RecordedResource]) -> Vec<&RecordedResource> {
    let mut remaining: Vec<&RecordedResource> = recorded.iter().collect();
    let mut ordered = Vec::with_capacity(recorded.len());
    while !remaining.is_empty() {
        let (free, blocked): (Vec<&RecordedResource>, Vec<&RecordedResource>) =
            remaining.iter().partition(|candidate| {
                !remaining
                    .iter()
                    .any(|other| other.dependencies.contains(&candidate.address))
            });
        if free.is_empty() {
            // A cycle in recorded dependencies: delete the rest in recorded order; the cloud's
            // DependencyViolation retries sort out what is left.
            ordered.extend(blocked);
            break;
        }
        ordered.extend(free);
        remaining = blocked;
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::resources::{Subnet, Vpc};
    use crate::graph::{ResourceKind, Value};

    fn graph(subnet_cidr: &str, public: bool) -> ResourceGraph {
        let mut graph = ResourceGraph::new();
        let vpc = graph.add(
            "main",
            Vpc {
                cidr: "10.0.0.0/16".parse().unwrap(),
                tags: Default::default(),
            },
        );
        graph.add(
            "a",
            Subnet {
                vpc,
                zone: "z1a".into(),
                cidr: subnet_cidr.parse().unwrap(),
                map_public_ip_on_launch: public,
                tags: Default::default(),
            },
        );
        graph
    }

    fn record(graph: &ResourceGraph) -> Vec<RecordedResource> {
        graph
            .nodes()
            .iter()
            .map(|node| RecordedResource {
                address: node.address.clone(),
                outputs: BTreeMap::from([("id".to_string(), format!("id-{}", node.address.name))]),
                attributes: node.resource.attributes(),
                dependencies: node.dependencies(),
            })
            .collect()
    }

    fn actions(plan: &Plan) -> Vec<(String, Action)> {
        plan.changes
            .iter()
            .map(|change| (change.address.to_string(), change.action))
            .collect()
    }

    #[test]
    fn a_graph_planned_against_itself_as_recorded_changes_nothing() {
        let stored = graph("10.0.1.0/24", false);
        let plan = diff("c", &stored, &as_recorded(&stored)).unwrap();
        assert!(!plan.summary.has_changes(), "{plan:?}");
        let edited = diff("c", &graph("10.0.2.0/24", false), &as_recorded(&stored)).unwrap();
        assert!(edited.summary.has_changes(), "{edited:?}");
    }

    #[test]
    fn empty_state_creates_everything_in_order() {
        let plan = diff("c", &graph("10.0.1.0/24", false), &[]).unwrap();
        assert_eq!(
            actions(&plan),
            [
                ("aws_vpc.main".into(), Action::Create),
                ("aws_subnet.a".into(), Action::Create)
            ]
        );
        assert_eq!(plan.summary.create, 2);
    }

    #[test]
    fn applied_state_gives_no_changes() {
        let desired = graph("10.0.1.0/24", false);
        let plan = diff("c", &desired, &record(&desired)).unwrap();
        assert!(plan.changes.is_empty());
        assert_eq!(plan.summary.unchanged, 2);
        assert!(!plan.summary.has_changes());
    }

    #[test]
    fn mutable_change_updates_in_place() {
        let plan = diff(
            "c",
            &graph("10.0.1.0/24", true),
            &record(&graph("10.0.1.0/24", false)),
        )
        .unwrap();
        assert_eq!(actions(&plan), [("aws_subnet.a".into(), Action::Update)]);
        let change = &plan.changes[0].changes[0];
        assert_eq!(change.name, "map_public_ip_on_launch");
        assert_eq!(
            (change.before.clone(), change.after.clone()),
            (Some(Value::Bool(false)), Some(Value::Bool(true)))
        );
        assert!(!change.forces_replacement);
    }

    #[test]
    fn immutable_change_replaces() {
        let plan = diff(
            "c",
            &graph("10.0.2.0/24", false),
            &record(&graph("10.0.1.0/24", false)),
        )
        .unwrap();
        assert_eq!(actions(&plan), [("aws_subnet.a".into(), Action::Replace)]);
        assert!(
            plan.changes[0]
                .changes
                .iter()
                .any(|change| change.name == "cidr_block" && change.forces_replacement)
        );
    }

    #[test]
    fn a_replaced_resource_takes_along_what_cannot_follow_it_in_place() {
        let desired = graph("10.0.1.0/24", false);
        let mut recorded = record(&desired);
        // The VPC's CIDR changed: replaced; the subnet's vpc_id cannot change in place.
        recorded[0].attributes = graph_with_vpc("10.1.0.0/16").nodes()[0]
            .resource
            .attributes();
        let plan = diff("c", &desired, &recorded).unwrap();
        assert_eq!(
            actions(&plan),
            [
                ("aws_vpc.main".into(), Action::Replace),
                ("aws_subnet.a".into(), Action::Replace)
            ]
        );
        let vpc_id = &plan.changes[1].changes[0];
        assert_eq!(vpc_id.name, "vpc_id");
        assert_eq!(vpc_id.before, Some(Value::Str("id-main".into())));
        assert!(vpc_id.forces_replacement);

        // After an interrupted replace the VPC is gone from state: it is created, and the
        // subnet still recorded with the old VPC's id is replaced all the same.
        let interrupted: Vec<RecordedResource> = record(&desired).into_iter().skip(1).collect();
        let plan = diff("c", &desired, &interrupted).unwrap();
        assert_eq!(
            actions(&plan),
            [
                ("aws_vpc.main".into(), Action::Create),
                ("aws_subnet.a".into(), Action::Replace)
            ]
        );
    }

    fn graph_with_vpc(cidr: &str) -> ResourceGraph {
        let mut graph = ResourceGraph::new();
        graph.add(
            "main",
            Vpc {
                cidr: cidr.parse().unwrap(),
                tags: Default::default(),
            },
        );
        graph
    }

    #[test]
    fn removed_resources_are_deleted_dependents_first() {
        let recorded = record(&graph("10.0.1.0/24", false));
        let plan = destroy_plan("c", &recorded).unwrap();
        assert_eq!(
            actions(&plan),
            [
                ("aws_subnet.a".into(), Action::Delete),
                ("aws_vpc.main".into(), Action::Delete)
            ]
        );
        assert_eq!(plan.summary.delete, 2);
        assert_eq!(plan.changes[0].address.kind, ResourceKind::Subnet);
    }
}
