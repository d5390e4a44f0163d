//! The plan for machines (`-o json`): stable field names, values as plain JSON.

use serde_json::{Map, Value as Json, json};

use super::diff::{Plan, ResourceChange};
use super::text::file_summary;
use crate::graph::{Field, Value};

pub const FORMAT_VERSION: &str = "1";

pub fn render(plan: &Plan) -> Json {
    json!({
        "format_version": FORMAT_VERSION,
        "cluster": plan.cluster,
        "resource_changes": plan.changes.iter().map(change_json).collect::<Vec<_>>(),
        "summary": plan.summary,
    })
}

fn change_json(change: &ResourceChange) -> Json {
    let mut rendered = json!({
        "address": change.address.to_string(),
        "type": change.address.kind.type_name(),
        "name": change.address.name,
        "action": change.action,
        "attributes": fields_json(&change.attributes),
        "changes": change.changes.iter().map(|attribute| {
            let show = |value: &Option<Value>| match value {
                Some(_) if attribute.sensitive => json!({ "sensitive": true }),
                Some(value) => value_json(value),
                None => Json::Null,
            };
            json!({
                "attribute": attribute.name,
                "before": show(&attribute.before),
                "after": show(&attribute.after),
                "forces_replacement": attribute.forces_replacement,
            })
        }).collect::<Vec<_>>(),
    });
    if let (Some(drift), Some(object)) = (change.drift, rendered.as_object_mut()) {
        object.insert("drift".to_string(), json!(drift));
    }
    rendered
}

fn fields_json(fields: &[Field]) -> Json {
    let mut object = Map::new();
    for field in fields {
        let value = if field.sensitive {
            match &field.value {
                Value::File(file) => {
                    json!({ "sensitive": true, "file": file.name, "bytes": file.content.len() })
                }
                _ => json!({ "sensitive": true }),
            }
        } else {
            value_json(&field.value)
        };
        object.insert(field.name.clone(), value);
    }
    Json::Object(object)
}

pub fn value_json(value: &Value) -> Json {
    match value {
        Value::Str(text) => json!(text),
        Value::Int(number) => json!(number),
        Value::Bool(flag) => json!(flag),
        Value::List(items) => Json::Array(items.iter().map(value_json).collect()),
        Value::Map(map) => json!(map),
        Value::Block(fields) => fields_json(fields),
        Value::Blocks(blocks) => {
            Json::Array(blocks.iter().map(|fields| fields_json(fields)).collect())
        }
        Value::Ref(reference) => {
            json!({ "ref": format!("{}.{}", reference.target, reference.attribute) })
        }
        Value::File(file) => {
            json!({ "file": file.name, "bytes": file.content.len(), "summary": file_summary(file) })
        }
        Value::Json(document) => json!({ "json": document.to_json() }),
    }
}
