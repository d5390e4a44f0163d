//! Reading a resource's resolved attributes by name, with errors that say what is missing.

use std::collections::BTreeMap;

use crate::apply::ProvisionError;
use crate::graph::{Field, Value};

/// The attributes of one resource, all references already resolved to strings.
#[derive(Clone, Copy)]
pub struct Attrs<'a>(pub &'a [Field]);

fn missing(name: &str, wanted: &str) -> ProvisionError {
    ProvisionError::permanent(
        "RafterModel",
        format!("attribute `{name}` is missing or not {wanted}"),
    )
}

impl<'a> Attrs<'a> {
    fn value(&self, name: &str) -> Option<&'a Value> {
        self.0
            .iter()
            .find(|field| field.name == name)
            .map(|field| &field.value)
    }

    pub fn has(&self, name: &str) -> bool {
        self.value(name).is_some()
    }

    pub fn str(&self, name: &str) -> Result<&'a str, ProvisionError> {
        match self.value(name) {
            Some(Value::Str(text)) => Ok(text),
            _ => Err(missing(name, "a string")),
        }
    }

    pub fn opt_str(&self, name: &str) -> Option<&'a str> {
        self.str(name).ok()
    }

    pub fn bool(&self, name: &str) -> Result<bool, ProvisionError> {
        match self.value(name) {
            Some(Value::Bool(flag)) => Ok(*flag),
            _ => Err(missing(name, "a boolean")),
        }
    }

    pub fn int(&self, name: &str) -> Result<i64, ProvisionError> {
        match self.value(name) {
            Some(Value::Int(number)) => Ok(*number),
            _ => Err(missing(name, "a number")),
        }
    }

    /// A number the AWS API takes as a 32-bit integer (ports, sizes, counts).
    pub fn int32(&self, name: &str) -> Result<i32, ProvisionError> {
        let value = self.int(name)?;
        i32::try_from(value).map_err(|_| {
            ProvisionError::permanent("RafterModel", format!("`{name}` = {value} is out of range"))
        })
    }

    pub fn opt_int(&self, name: &str) -> Option<i64> {
        self.int(name).ok()
    }

    pub fn strings(&self, name: &str) -> Result<Vec<String>, ProvisionError> {
        match self.value(name) {
            Some(Value::List(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Str(text) => Ok(text.clone()),
                    _ => Err(missing(name, "a list of strings")),
                })
                .collect(),
            _ => Err(missing(name, "a list")),
        }
    }

    /// The content of a data file (a policy document, user-data).
    pub fn file(&self, name: &str) -> Result<&'a str, ProvisionError> {
        match self.value(name) {
            Some(Value::File(file)) => Ok(&file.content),
            Some(Value::Str(text)) => Ok(text),
            _ => Err(missing(name, "a file")),
        }
    }

    /// A JSON document's text (references resolved by then).
    pub fn json(&self, name: &str) -> Result<String, ProvisionError> {
        match self.value(name) {
            Some(Value::Json(document)) => Ok(document.to_json().to_string()),
            _ => Err(missing(name, "a JSON document")),
        }
    }

    /// A nested block, read the same way.
    pub fn block(&self, name: &str) -> Result<Attrs<'a>, ProvisionError> {
        match self.value(name) {
            Some(Value::Block(fields)) => Ok(Attrs(fields)),
            _ => Err(missing(name, "a block")),
        }
    }

    pub fn opt_block(&self, name: &str) -> Option<Attrs<'a>> {
        self.block(name).ok()
    }

    /// Repeated nested blocks.
    pub fn blocks(&self, name: &str) -> Result<Vec<Attrs<'a>>, ProvisionError> {
        match self.value(name) {
            Some(Value::Blocks(blocks)) => Ok(blocks.iter().map(|fields| Attrs(fields)).collect()),
            _ => Err(missing(name, "a list of blocks")),
        }
    }

    pub fn tags(&self) -> BTreeMap<String, String> {
        match self.value("tags") {
            Some(Value::Map(map)) => map.clone(),
            _ => BTreeMap::new(),
        }
    }
}
