//! A YAML document as a tree whose every value remembers where it came from.
//!
//! Specs are assembled from layers (an embedded profile, the user's file, command-line flags).
//! Each value in the merged tree keeps its [`Origin`] so that any later error, whether from
//! deserialization or from semantic validation, can name the file, line and column (or the
//! flag) that supplied the offending value.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Where a value of the spec came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A position in a YAML file (an embedded profile or the user's file).
    File {
        path: Arc<str>,
        line: u64,
        column: u64,
    },
    /// A command-line flag such as `--zones`.
    Flag(&'static str),
    /// Not written anywhere: a default, or a value rafter computed.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line, column } => write!(f, "{path}:{line}:{column}"),
            Origin::Flag(flag) => write!(f, "{flag}"),
            Origin::Default => write!(f, "(default)"),
        }
    }
}

/// One step of a path into the spec: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path into the spec, printed the way users write it: `spec.nodeGroups[1].name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// Parses a dotted path such as `spec.networking.zones` (no indices).
    pub fn parse(dotted: &str) -> Self {
        Self(
            dotted
                .split('.')
                .filter(|part| !part.is_empty())
                .map(|part| Segment::Key(part.to_string()))
                .collect(),
        )
    }

    pub fn key(&self, name: &str) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(name.to_string()));
        next
    }

    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }

    pub fn parent(&self) -> Option<Self> {
        let mut parent = self.clone();
        parent.0.pop().map(|_| parent)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if position == 0 => write!(f, "{key}")?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A YAML value with its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: NodeValue,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A mapping entry: the key (with where the key was written) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_origin: Origin,
    pub value: Node,
}

impl Node {
    pub fn new(value: NodeValue, origin: Origin) -> Self {
        Self { value, origin }
    }

    pub fn empty_map(origin: Origin) -> Self {
        Self::new(NodeValue::Map(Vec::new()), origin)
    }

    /// The value at `path`, if present.
    pub fn get(&self, path: &FieldPath) -> Option<&Node> {
        path.0
            .iter()
            .try_fold(self, |node, segment| node.child(segment))
    }

    fn child(&self, segment: &Segment) -> Option<&Node> {
        match (&self.value, segment) {
            (NodeValue::Map(entries), Segment::Key(key)) => entries
                .iter()
                .find(|entry| &entry.key == key)
                .map(|entry| &entry.value),
            (NodeValue::Seq(items), Segment::Index(index)) => items.get(*index),
            _ => None,
        }
    }

    /// Where the field at `path` was written: the key's position for a mapping entry (that is
    /// where a user looks for a field), else the value's. Falls back to the nearest ancestor
    /// that exists, so an error about a missing field points at its parent.
    pub fn origin_of(&self, path: &FieldPath) -> Origin {
        let mut current = path.clone();
        loop {
            if let Some(origin) = self.key_origin(&current) {
                return origin;
            }
            match current.parent() {
                Some(parent) => current = parent,
                None => return self.origin.clone(),
            }
        }
    }

    /// Where the value at `path` was written (for errors about the value itself).
    pub fn value_origin(&self, path: &FieldPath) -> Origin {
        match self.get(path) {
            Some(node) if node.origin != Origin::Default => node.origin.clone(),
            _ => self.origin_of(path),
        }
    }

    fn key_origin(&self, path: &FieldPath) -> Option<Origin> {
        let (last, parent_path) = path.0.split_last()?;
        let parent = self.get(&FieldPath(parent_path.to_vec()))?;
        match (&parent.value, last) {
            (NodeValue::Map(entries), Segment::Key(key)) => entries
                .iter()
                .find(|entry| &entry.key == key)
                .map(|entry| entry.key_origin.clone()),
            (NodeValue::Seq(items), Segment::Index(index)) => {
                items.get(*index).map(|item| item.origin.clone())
            }
            _ => None,
        }
    }

    /// Removes the entry at `path`; returns whether anything was removed.
    pub fn remove(&mut self, path: &FieldPath) -> bool {
        let Some((last, parent_path)) = path.0.split_last() else {
            return false;
        };
        let mut node = self;
        for segment in parent_path {
            let next = match (&mut node.value, segment) {
                (NodeValue::Map(entries), Segment::Key(key)) => entries
                    .iter_mut()
                    .find(|entry| &entry.key == key)
                    .map(|entry| &mut entry.value),
                (NodeValue::Seq(items), Segment::Index(index)) => items.get_mut(*index),
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => return false,
            }
        }
        match (&mut node.value, last) {
            (NodeValue::Map(entries), Segment::Key(key)) => {
                let before = entries.len();
                entries.retain(|entry| &entry.key != key);
                entries.len() != before
            }
            _ => false,
        }
    }

    /// Overlays `upper` onto `self`: mappings merge key by key (recursively), anything else
    /// in `upper` replaces what was here, origin included. Sequences are replaced whole, as in
    /// kops and kustomize strategic merges of scalar lists.
    pub fn overlay(&mut self, upper: Node) {
        match (&mut self.value, upper.value) {
            (NodeValue::Map(entries), NodeValue::Map(upper_entries)) => {
                for upper_entry in upper_entries {
                    match entries
                        .iter_mut()
                        .find(|entry| entry.key == upper_entry.key)
                    {
                        Some(entry) => {
                            entry.key_origin = upper_entry.key_origin;
                            entry.value.overlay(upper_entry.value);
                        }
                        None => entries.push(upper_entry),
                    }
                }
            }
            (_, value) => {
                self.value = value;
                self.origin = upper.origin;
            }
        }
    }

    /// Sets the value at a dotted key path, creating intermediate mappings. Used for flags.
    pub fn set(&mut self, path: &FieldPath, value: Node) {
        let mut layer = value;
        for segment in path.0.iter().rev() {
            let Segment::Key(key) = segment else { continue };
            let origin = layer.origin.clone();
            layer = Node::new(
                NodeValue::Map(vec![Entry {
                    key: key.clone(),
                    key_origin: origin.clone(),
                    value: layer,
                }]),
                origin,
            );
        }
        self.overlay(layer);
    }

    /// The plain JSON value, for typed deserialization.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(value) => Value::Bool(*value),
            NodeValue::Int(value) => Value::from(*value),
            NodeValue::Float(value) => {
                serde_json::Number::from_f64(*value).map_or(Value::Null, Value::Number)
            }
            NodeValue::Str(value) => Value::String(value.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|entry| (entry.key.clone(), entry.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Parses one YAML document into a [`Node`] tree, with origins in `path`.
pub fn parse_yaml(text: &str, path: &str) -> Result<Node, YamlSyntaxError> {
    // YAML 1.2 as the README promises: only `true`/`false` are booleans (`zone: no` is the
    // string "no"), and `0755` is not octal.
    let options = serde_saphyr::options! {
        strict_booleans: true,
        legacy_octal_numbers: false,
    };
    let spanned: Spanned<RawNode> =
        serde_saphyr::from_str_with_options(text, options).map_err(|error| {
            let (line, column) = error
                .location()
                .map_or((0, 0), |location| (location.line(), location.column()));
            YamlSyntaxError {
                path: path.to_string(),
                line,
                column,
                message: clean_syntax_message(&error.to_string()),
            }
        })?;
    let file: Arc<str> = Arc::from(path);
    Ok(spanned_to_node(spanned, &file))
}

/// The parser's first line, without the position we print anyway and without advice meant
/// for programmers using the library.
fn clean_syntax_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default().trim();
    let without_prefix = first.strip_prefix("error: ").unwrap_or(first);
    let without_position = match without_prefix.strip_prefix("line ") {
        Some(rest) => rest
            .split_once(": ")
            .map_or(without_prefix, |(_, text)| text),
        None => without_prefix,
    };
    let message = without_position
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(without_position);
    if message.starts_with("multiple YAML documents detected") {
        return "a spec file holds one YAML document, and this one has more (after a `---` line)"
            .to_string();
    }
    if let Some(breach) = message.strip_prefix("budget breached: ") {
        // `Nodes { nodes: 250001 }`: name the limit in words, not in the parser's Debug form.
        let limit = breach.split([' ', '{']).next().unwrap_or(breach);
        let words: String = limit
            .chars()
            .flat_map(|character| {
                let space = character.is_uppercase().then_some(' ');
                space.into_iter().chain(character.to_lowercase())
            })
            .collect();
        return format!(
            "it is larger or deeper than any cluster spec (the parser's limit on{words} was reached): is it the right file?"
        );
    }
    message.to_string()
}

/// The YAML text could not be parsed at all.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{path}:{line}:{column}: not valid YAML: {message}")]
pub struct YamlSyntaxError {
    pub path: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

fn location_origin(file: &Arc<str>, location: &serde_saphyr::Location) -> Origin {
    Origin::File {
        path: file.clone(),
        line: location.line(),
        column: location.column(),
    }
}

fn spanned_to_node(spanned: Spanned<RawNode>, file: &Arc<str>) -> Node {
    let origin = location_origin(file, &spanned.referenced);
    let value = match spanned.value {
        RawNode::Null => NodeValue::Null,
        RawNode::Bool(value) => NodeValue::Bool(value),
        RawNode::Int(value) => NodeValue::Int(value),
        RawNode::Float(value) => NodeValue::Float(value),
        RawNode::Str(value) => NodeValue::Str(value),
        RawNode::Seq(items) => NodeValue::Seq(
            items
                .into_iter()
                .map(|item| spanned_to_node(item, file))
                .collect(),
        ),
        RawNode::Map(entries) => NodeValue::Map(
            entries
                .into_iter()
                .map(|(key, value)| Entry {
                    key_origin: location_origin(file, &key.referenced),
                    key: key.value,
                    value: spanned_to_node(value, file),
                })
                .collect(),
        ),
    };
    Node { value, origin }
}

/// What serde-saphyr hands us before origins are attached.
enum RawNode {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<String>, Spanned<RawNode>)>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawNodeVisitor)
    }
}

struct RawNodeVisitor;

impl<'de> Visitor<'de> for RawNodeVisitor {
    type Value = RawNode;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<RawNode, E> {
        Ok(RawNode::Int(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<RawNode, E> {
        i64::try_from(value)
            .map(RawNode::Int)
            .map_err(|_| E::custom(format!("integer {value} is too large")))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<RawNode, E> {
        Ok(RawNode::Float(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<RawNode, E> {
        Ok(RawNode::Str(value.to_string()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<RawNode, E> {
        Ok(RawNode::Str(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawNode>>()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        // Duplicate keys are refused by serde-saphyr itself (its default policy).
        let mut entries: Vec<(Spanned<String>, Spanned<RawNode>)> = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<RawNode>>()?;
            entries.push((key, value));
        }
        Ok(RawNode::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u64, column: u64) -> Origin {
        Origin::File {
            path: Arc::from("t.yaml"),
            line,
            column,
        }
    }

    #[test]
    fn records_key_and_value_positions() {
        let node = parse_yaml("a:\n  b: 3\n  c: [x, y]\n", "t.yaml").unwrap();
        assert_eq!(node.origin_of(&FieldPath::parse("a.b")), at(2, 3));
        assert_eq!(node.value_origin(&FieldPath::parse("a.b")), at(2, 6));
        assert_eq!(
            node.get(&FieldPath::parse("a.b")).unwrap().value,
            NodeValue::Int(3)
        );
        let second = FieldPath::parse("a.c").index(1);
        assert_eq!(node.value_origin(&second), at(3, 10));
    }

    #[test]
    fn quoted_numbers_stay_strings_and_plain_ones_do_not() {
        let node = parse_yaml("q: \"1.31\"\np: 1.31\nb: true\n", "t.yaml").unwrap();
        assert_eq!(
            node.get(&FieldPath::parse("q")).unwrap().value,
            NodeValue::Str("1.31".into())
        );
        assert_eq!(
            node.get(&FieldPath::parse("p")).unwrap().value,
            NodeValue::Float(1.31)
        );
        assert_eq!(
            node.get(&FieldPath::parse("b")).unwrap().value,
            NodeValue::Bool(true)
        );
    }

    #[test]
    fn missing_fields_point_at_nearest_parent() {
        let node = parse_yaml("a:\n  b: 1\n", "t.yaml").unwrap();
        assert_eq!(node.origin_of(&FieldPath::parse("a.zz.yy")), at(1, 1));
    }

    #[test]
    fn overlay_merges_maps_and_replaces_lists() {
        let mut base = parse_yaml("a: {b: 1, c: [1, 2]}\n", "base.yaml").unwrap();
        let upper = parse_yaml("a: {c: [3], d: x}\n", "t.yaml").unwrap();
        base.overlay(upper);
        let json = base.to_json();
        assert_eq!(json, serde_json::json!({"a": {"b": 1, "c": [3], "d": "x"}}));
        assert!(
            matches!(base.origin_of(&FieldPath::parse("a.c")), Origin::File { ref path, .. } if &**path == "t.yaml")
        );
    }

    #[test]
    fn set_creates_intermediate_maps_with_flag_origin() {
        let mut base = Node::empty_map(Origin::Default);
        base.set(
            &FieldPath::parse("spec.networking.zones"),
            Node::new(NodeValue::Seq(vec![]), Origin::Flag("--zones")),
        );
        assert_eq!(
            base.origin_of(&FieldPath::parse("spec.networking.zones")),
            Origin::Flag("--zones")
        );
    }

    #[test]
    fn duplicate_keys_and_bad_syntax_are_errors_with_positions() {
        let error = parse_yaml("a: 1\na: 2\n", "t.yaml").unwrap_err();
        assert_eq!((error.line, error.column), (2, 1), "{error}");
        assert_eq!(error.message, "duplicate mapping key: a", "{error}");
        let error = parse_yaml("a: [1, 2\n", "t.yaml").unwrap_err();
        assert!(error.line >= 1, "{error}");
    }
}
