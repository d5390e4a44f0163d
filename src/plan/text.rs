//! The plan for people: Terraform's layout and symbols (`+`, `~`, `-/+`, `-`, `<=`).

use std::fmt::Write;

use sha2::{Digest, Sha256};

use super::diff::{Action, Plan, ResourceChange};
use crate::graph::{DataFile, Field, Value};

/// ANSI colors, used only when the output is a terminal and `NO_COLOR` is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Never,
    Always,
}

struct Painter(Color);

impl Painter {
    fn paint(&self, action: Action, text: &str) -> String {
        let code = match action {
            Action::Create => "32",
            Action::Update => "33",
            Action::Replace => "35",
            Action::Delete => "31",
            Action::Read => "36",
        };
        match self.0 {
            Color::Always => format!("\x1b[{code}m{text}\x1b[0m"),
            Color::Never => text.to_string(),
        }
    }

    fn bold(&self, text: &str) -> String {
        match self.0 {
            Color::Always => format!("\x1b[1m{text}\x1b[0m"),
            Color::Never => text.to_string(),
        }
    }
}

/// Renders the whole plan, ending with the summary line.
pub fn render(plan: &Plan, color: Color) -> String {
    let painter = Painter(color);
    let mut out = String::new();
    if !plan.summary.has_changes() {
        let _ = writeln!(
            out,
            "No changes. Cluster {} matches its spec ({} resources).",
            plan.cluster, plan.summary.unchanged
        );
        return out;
    }
    let _ = writeln!(
        out,
        "rafter will perform these actions on cluster {}:\n",
        plan.cluster
    );
    for change in &plan.changes {
        render_change(&mut out, change, &painter);
        out.push('\n');
    }
    let summary = &plan.summary;
    let _ = writeln!(
        out,
        "{} {} to add, {} to change, {} to replace, {} to destroy.",
        painter.bold("Plan:"),
        summary.create,
        summary.update,
        summary.replace,
        summary.delete
    );
    out
}

fn render_change(out: &mut String, change: &ResourceChange, painter: &Painter) {
    let address = &change.address;
    let symbol = change.action.symbol();
    let drift = change
        .drift
        .map(|drift| format!(" ({})", drift.describe()))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  # {} will be {}{drift}",
        painter.bold(&address.to_string()),
        change.action.verb()
    );
    let keyword = if address.kind.is_lookup() {
        "data"
    } else {
        "resource"
    };
    let _ = writeln!(
        out,
        "{} {keyword} \"{}\" \"{}\" {{",
        painter.paint(change.action, &format!("{symbol:>3}")),
        address.kind.type_name(),
        address.name
    );
    match change.action {
        Action::Update | Action::Replace => {
            let width = change
                .changes
                .iter()
                .map(|attribute| attribute.name.len())
                .max()
                .unwrap_or(0);
            for attribute in &change.changes {
                let (marker, action) = match (&attribute.before, &attribute.after) {
                    (None, Some(_)) => ("+", Action::Create),
                    (Some(_), None) => ("-", Action::Delete),
                    _ => ("~", Action::Update),
                };
                let show = |value: &Option<Value>| match value {
                    Some(_) if attribute.sensitive => "(sensitive value)".to_string(),
                    Some(value) => inline(value),
                    None => "null".to_string(),
                };
                let forces = if attribute.forces_replacement {
                    "  # forces replacement"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "      {} {:width$} = {} -> {}{forces}",
                    painter.paint(action, marker),
                    attribute.name,
                    show(&attribute.before),
                    show(&attribute.after),
                );
            }
        }
        Action::Create | Action::Delete | Action::Read => {
            let marker = painter.paint(
                change.action,
                match change.action {
                    Action::Delete => "-",
                    Action::Read => " ",
                    _ => "+",
                },
            );
            render_fields(out, &change.attributes, &marker, 6);
        }
    }
    let _ = writeln!(out, "    }}");
}

fn render_fields(out: &mut String, fields: &[Field], marker: &str, indent: usize) {
    let width = fields
        .iter()
        .filter(|field| !matches!(field.value, Value::Block(_) | Value::Blocks(_)))
        .map(|field| field.name.len())
        .max()
        .unwrap_or(0);
    let pad = " ".repeat(indent);
    for field in fields {
        match &field.value {
            Value::Block(inner) => {
                let _ = writeln!(out, "{pad}{marker} {} {{", field.name);
                render_fields(out, inner, marker, indent + 4);
                let _ = writeln!(out, "{pad}  }}");
            }
            Value::Blocks(blocks) => {
                for inner in blocks {
                    let _ = writeln!(out, "{pad}{marker} {} {{", field.name);
                    render_fields(out, inner, marker, indent + 4);
                    let _ = writeln!(out, "{pad}  }}");
                }
            }
            Value::Map(map) => {
                let _ = writeln!(out, "{pad}{marker} {:width$} = {{", field.name);
                let key_width = map.keys().map(|key| key.len() + 2).max().unwrap_or(0);
                for (key, value) in map {
                    let quoted = format!("{key:?}");
                    let _ = writeln!(out, "{pad}    {marker} {quoted:key_width$} = {value:?}");
                }
                let _ = writeln!(out, "{pad}  }}");
            }
            value => {
                let shown = if field.sensitive {
                    sensitive_summary(value)
                } else {
                    inline(value)
                };
                let _ = writeln!(out, "{pad}{marker} {:width$} = {shown}", field.name);
            }
        }
    }
}

/// A value on one line: strings quoted, references as Terraform expressions.
fn inline(value: &Value) -> String {
    match value {
        Value::Str(text) => format!("{text:?}"),
        Value::Int(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::List(items) => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(map) => format!(
            "{{ {} }}",
            map.iter()
                .map(|(key, value)| format!("{key:?} = {value:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Block(fields) => format!(
            "{{ {} }}",
            fields
                .iter()
                .map(|field| format!("{} = {}", field.name, inline(&field.value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Blocks(blocks) => {
            format!(
                "[{}]",
                blocks
                    .iter()
                    .map(|fields| inline(&Value::Block(fields.clone())))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Value::Ref(reference) => format!("{}.{}", reference.target, reference.attribute),
        Value::File(file) => file_summary(file),
        Value::Json(document) => document.to_json().to_string(),
    }
}

/// Files are shown by name, size and digest, never by content.
pub fn file_summary(file: &DataFile) -> String {
    let digest = Sha256::digest(file.content.as_bytes());
    let short: String = digest
        .iter()
        .take(6)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!(
        "file(data/{}) # {} bytes, sha256:{short}",
        file.name,
        file.content.len()
    )
}

fn sensitive_summary(value: &Value) -> String {
    match value {
        Value::File(file) => format!(
            "(sensitive value) {}",
            file_summary(file).trim_start_matches(|c| c != '#')
        ),
        _ => "(sensitive value)".to_string(),
    }
}
