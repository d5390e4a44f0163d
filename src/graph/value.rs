//! Attribute values of resources: what the plan diffs and what targets render.
//!
//! Attribute names follow the Terraform AWS provider's, so the plan reads like a Terraform
//! plan and the export needs no second naming scheme.

use std::collections::BTreeMap;

use super::address::Address;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Value>),
    /// A map of strings, such as tags.
    Map(BTreeMap<String, String>),
    /// A nested block (`metadata_options { … }`).
    Block(Vec<Field>),
    /// Repeated nested blocks (`tag { … } tag { … }`).
    Blocks(Vec<Vec<Field>>),
    /// An attribute of another resource, known once that one exists.
    Ref(Reference),
    /// A large value kept in its own file (user-data, policies).
    File(DataFile),
    /// A JSON document built from the value inside (a block is an object, a list an
    /// array), whose parts may be references: a resource policy that names the ARNs of other
    /// resources. Terraform writes it as `jsonencode(…)`; the AWS target sends the JSON text
    /// once the references are resolved ([`Value::to_json`]).
    Json(Box<Value>),
}

impl Value {
    pub fn str(text: impl Into<String>) -> Self {
        Value::Str(text.into())
    }

    pub fn refs(references: impl IntoIterator<Item = Reference>) -> Self {
        Value::List(references.into_iter().map(Value::Ref).collect())
    }

    /// Every resource this value points at.
    pub fn references(&self) -> Vec<&Address> {
        match self {
            Value::Ref(reference) => vec![&reference.target],
            Value::List(items) => items.iter().flat_map(Value::references).collect(),
            Value::Block(fields) => fields
                .iter()
                .flat_map(|field| field.value.references())
                .collect(),
            Value::Blocks(blocks) => blocks
                .iter()
                .flatten()
                .flat_map(|field| field.value.references())
                .collect(),
            Value::Json(document) => document.references(),
            Value::Str(_) | Value::Int(_) | Value::Bool(_) | Value::Map(_) | Value::File(_) => {
                Vec::new()
            }
        }
    }

    /// The JSON this value stands for: a block is an object (its fields in order), a list an
    /// array, a reference its `${address.attribute}` text (resolve references first to
    /// get what is sent), a file its content.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as Json;
        match self {
            Value::Str(text) => Json::String(text.clone()),
            Value::Int(number) => Json::from(*number),
            Value::Bool(flag) => Json::Bool(*flag),
            Value::List(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(map) => Json::Object(
                map.iter()
                    .map(|(key, value)| (key.clone(), Json::String(value.clone())))
                    .collect(),
            ),
            Value::Block(fields) => Json::Object(
                fields
                    .iter()
                    .map(|field| (field.name.clone(), field.value.to_json()))
                    .collect(),
            ),
            Value::Blocks(blocks) => Json::Array(
                blocks
                    .iter()
                    .map(|fields| Value::Block(fields.clone()).to_json())
                    .collect(),
            ),
            Value::Ref(reference) => {
                Json::String(format!("${{{}.{}}}", reference.target, reference.attribute))
            }
            Value::File(file) => Json::String(file.content.clone()),
            Value::Json(document) => document.to_json(),
        }
    }
}

/// An attribute of another resource: `aws_vpc.main.id`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reference {
    pub target: Address,
    pub attribute: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileEncoding {
    /// Read as text (`file()`).
    Text,
    /// Read as base64 (`filebase64()`), as EC2 wants user-data.
    Base64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataFile {
    /// File name under the module's `data/` directory.
    pub name: String,
    pub content: String,
    pub encoding: FileEncoding,
}

/// How a change to an attribute is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateMode {
    InPlace,
    /// The cloud cannot change it: the resource is replaced.
    Replace,
}

/// A named attribute.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Field {
    pub name: String,
    pub value: Value,
    pub update: UpdateMode,
    /// Never printed in plans or logs.
    pub sensitive: bool,
}

/// Builds a resource's attribute list in rendering order.
#[derive(Debug, Default)]
pub struct Fields(Vec<Field>);

impl Fields {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// An attribute that can be changed in place.
    pub fn mutable(mut self, name: &str, value: Value) -> Self {
        self.0.push(Field {
            name: name.to_string(),
            value,
            update: UpdateMode::InPlace,
            sensitive: false,
        });
        self
    }

    /// An attribute whose change forces replacement.
    pub fn immutable(mut self, name: &str, value: Value) -> Self {
        self.0.push(Field {
            name: name.to_string(),
            value,
            update: UpdateMode::Replace,
            sensitive: false,
        });
        self
    }

    /// A value that must never be printed.
    pub fn sensitive(mut self, name: &str, value: Value, update: UpdateMode) -> Self {
        self.0.push(Field {
            name: name.to_string(),
            value,
            update,
            sensitive: true,
        });
        self
    }

    pub fn optional(self, name: &str, value: Option<Value>) -> Self {
        match value {
            Some(value) => self.mutable(name, value),
            None => self,
        }
    }

    pub fn tags(self, tags: &BTreeMap<String, String>) -> Self {
        self.mutable("tags", Value::Map(tags.clone()))
    }

    pub fn build(self) -> Vec<Field> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Address, ResourceKind};

    #[test]
    fn a_json_document_keeps_its_structure_and_shows_references_until_resolved() {
        let queue = Reference {
            target: Address::new(ResourceKind::SqsQueue, "q"),
            attribute: "arn".to_string(),
        };
        let document = Value::Json(Box::new(Value::Block(
            Fields::new()
                .mutable("Resource", Value::Ref(queue.clone()))
                .mutable("Action", Value::List(vec![Value::str("sqs:SendMessage")]))
                .mutable("Retention", Value::Int(300))
                .build(),
        )));
        assert_eq!(document.references(), [&queue.target]);
        assert_eq!(
            document.to_json(),
            serde_json::json!({
                "Resource": "${aws_sqs_queue.q.arn}",
                "Action": ["sqs:SendMessage"],
                "Retention": 300,
            })
        );
    }
}
