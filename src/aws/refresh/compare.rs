//! The record against what a describe said: which recorded attributes have another value
//! now. Pure, so the rules (references resolved through the record, lists as sets, policy
//! documents as JSON, only the tags rafter sets) have table tests.

use std::collections::BTreeMap;

use super::Records;
use crate::graph::{Field, Value};
use crate::plan::RecordedResource;
use crate::plan::diff::resolved_from;

/// What a describe said about one resource: the attributes a refresh compares, by the names
/// its record uses, and its tags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    pub attributes: Vec<(&'static str, Value)>,
    /// `None` where the kind's tags are not compared.
    pub tags: Option<BTreeMap<String, String>>,
}

impl Live {
    pub fn with(mut self, name: &'static str, value: Value) -> Self {
        self.attributes.push((name, value));
        self
    }

    pub fn tagged(mut self, tags: BTreeMap<String, String>) -> Self {
        self.tags = Some(tags);
        self
    }
}

/// The attributes of `record` whose live value differs from the recorded one, with the live
/// value. An attribute the record does not have is not compared; of the tags, only those
/// rafter set (a tag added by hand is someone else's business), and one removed counts.
pub fn changed_attributes(
    record: &RecordedResource,
    live: &Live,
    records: &Records,
) -> Vec<(String, Value)> {
    let recorded = |name: &str| -> Option<&Field> {
        record.attributes.iter().find(|field| field.name == name)
    };
    let mut changed = Vec::new();
    for (name, live_value) in &live.attributes {
        let Some(field) = recorded(name) else {
            continue;
        };
        if !same(&resolved_from(&field.value, records), live_value) {
            changed.push((name.to_string(), live_value.clone()));
        }
    }
    if let (Some(live_tags), Some(field)) = (&live.tags, recorded("tags"))
        && let Value::Map(wanted) = &field.value
    {
        let kept: BTreeMap<String, String> = live_tags
            .iter()
            .filter(|(key, _)| wanted.contains_key(*key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        if &kept != wanted {
            changed.push(("tags".to_string(), Value::Map(kept)));
        }
    }
    changed
}

/// Whether a recorded value (references resolved) and a live one mean the same: lists in any
/// order (subnets, groups), documents as parsed JSON (IAM reformats them).
fn same(recorded: &Value, live: &Value) -> bool {
    match (recorded, live) {
        (Value::List(recorded), Value::List(live)) => {
            let sorted = |items: &[Value]| {
                let mut items: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
                items.sort();
                items
            };
            sorted(recorded) == sorted(live)
        }
        (Value::File(recorded), Value::File(live)) => {
            crate::aws::iam::same_document(&live.content, &recorded.content)
        }
        (recorded, live) => recorded == live,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::value::Fields;
    use crate::graph::{Address, DataFile, FileEncoding, Reference, ResourceKind};

    fn record(kind: ResourceKind, name: &str, fields: Fields, id: &str) -> RecordedResource {
        RecordedResource {
            address: Address::new(kind, name),
            outputs: [("id".to_string(), id.to_string())].into(),
            attributes: fields.build(),
            dependencies: Vec::new(),
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    fn policy(content: &str) -> Value {
        Value::File(DataFile {
            name: "policy.json".into(),
            content: content.into(),
            encoding: FileEncoding::Text,
        })
    }

    #[test]
    fn references_resolve_through_the_record_before_comparing() {
        let gateway = record(
            ResourceKind::InternetGateway,
            "main",
            Fields::new(),
            "igw-1",
        );
        let route = record(
            ResourceKind::Route,
            "public",
            Fields::new().mutable(
                "gateway_id",
                Value::Ref(Reference {
                    target: gateway.address.clone(),
                    attribute: "id".into(),
                }),
            ),
            "rtb-1|0.0.0.0/0",
        );
        let records: Records = [(&gateway.address, &gateway), (&route.address, &route)].into();
        let unchanged = Live::default().with("gateway_id", Value::str("igw-1"));
        assert!(changed_attributes(&route, &unchanged, &records).is_empty());
        let redirected = Live::default().with("gateway_id", Value::str("nat-9"));
        assert_eq!(
            changed_attributes(&route, &redirected, &records),
            [("gateway_id".to_string(), Value::str("nat-9"))]
        );
    }

    #[test]
    fn only_the_attributes_the_record_has_are_compared() {
        let route = record(
            ResourceKind::Route,
            "private",
            Fields::new().mutable("nat_gateway_id", Value::str("nat-1")),
            "rtb-1|0.0.0.0/0",
        );
        let live = Live::default()
            .with("gateway_id", Value::str("nat-1"))
            .with("nat_gateway_id", Value::str("nat-1"));
        assert!(changed_attributes(&route, &live, &Records::new()).is_empty());
    }

    #[test]
    fn tags_added_by_hand_are_left_alone_and_tags_changed_or_removed_count() {
        let vpc = record(
            ResourceKind::Vpc,
            "main",
            Fields::new().tags(&tags(&[("team", "platform"), ("env", "prod")])),
            "vpc-1",
        );
        let records = Records::new();
        let added = Live::default().tagged(tags(&[
            ("team", "platform"),
            ("env", "prod"),
            ("cost-center", "42"),
        ]));
        assert!(changed_attributes(&vpc, &added, &records).is_empty());
        let changed = Live::default().tagged(tags(&[("team", "platform"), ("env", "dev")]));
        assert_eq!(
            changed_attributes(&vpc, &changed, &records),
            [(
                "tags".to_string(),
                Value::Map(tags(&[("team", "platform"), ("env", "dev")]))
            )]
        );
        let removed = Live::default().tagged(tags(&[("env", "prod")]));
        assert_eq!(
            changed_attributes(&vpc, &removed, &records),
            [("tags".to_string(), Value::Map(tags(&[("env", "prod")])))]
        );
    }

    #[test]
    fn lists_compare_in_any_order_and_documents_as_json() {
        let group = record(
            ResourceKind::AutoscalingGroup,
            "nodes",
            Fields::new().mutable(
                "vpc_zone_identifier",
                Value::List(vec![Value::str("subnet-a"), Value::str("subnet-b")]),
            ),
            "nodes",
        );
        let reordered = Live::default().with(
            "vpc_zone_identifier",
            Value::List(vec![Value::str("subnet-b"), Value::str("subnet-a")]),
        );
        assert!(changed_attributes(&group, &reordered, &Records::new()).is_empty());
        let shrunk = Live::default().with(
            "vpc_zone_identifier",
            Value::List(vec![Value::str("subnet-a")]),
        );
        assert_eq!(
            changed_attributes(&group, &shrunk, &Records::new()).len(),
            1
        );

        let role_policy = record(
            ResourceKind::IamRolePolicy,
            "nodes",
            Fields::new().mutable(
                "policy",
                policy(r#"{"Statement": [{"Action": "ec2:Describe*"}]}"#),
            ),
            "nodes:nodes",
        );
        let reformatted = Live::default().with(
            "policy",
            policy(r#"{"Statement":[{"Action":"ec2:Describe*"}]}"#),
        );
        assert!(changed_attributes(&role_policy, &reformatted, &Records::new()).is_empty());
        let widened = Live::default().with("policy", policy(r#"{"Statement":[{"Action":"*"}]}"#));
        assert_eq!(
            changed_attributes(&role_policy, &widened, &Records::new())[0].0,
            "policy"
        );
    }
}
