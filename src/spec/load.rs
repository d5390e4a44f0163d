//! Assembling a spec from its layers (profile, file, flags) and turning it into typed values.
//!
//! Structural problems (unknown fields, wrong types, bad enum values) are all collected in one
//! pass: after each error the offending entry is dropped and decoding is retried, so a user
//! sees every problem at once, each with its file, line, column and field.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::diagnostics::{Diagnostic, InvalidSpec, did_you_mean};
use super::profiles::{find_profile, profile_names};
use super::source::{
    Entry, FieldPath, Node, NodeValue, Origin, Segment, YamlSyntaxError, parse_yaml,
};
use super::types::{API_VERSION, Cluster, KIND};

/// Values given on the command line; each overlays the profile and the file.
#[derive(Debug, Clone, Default)]
pub struct SpecFlags {
    pub name: Option<String>,
    pub zones: Option<Vec<String>>,
    pub node_count: Option<u32>,
    pub control_plane_count: Option<u32>,
    pub kubernetes_version: Option<String>,
    pub etcd_version: Option<String>,
    pub dns_zone: Option<String>,
    pub network_cidr: Option<String>,
    pub node_size: Option<String>,
    pub control_plane_size: Option<String>,
    pub topology: Option<String>,
    pub ssh_public_key: Option<String>,
}

/// Where a spec comes from.
#[derive(Debug, Clone, Default)]
pub struct SpecSources {
    pub profile: Option<String>,
    pub file: Option<PathBuf>,
    pub flags: SpecFlags,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read spec file {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Syntax(#[from] YamlSyntaxError),
    #[error("unknown profile `{name}` (available: {available}){suggestion}")]
    UnknownProfile {
        name: String,
        available: String,
        suggestion: String,
    },
    #[error("no spec given: pass -f FILE, or --profile with --name and --zones")]
    NothingGiven,
    #[error(
        "spec file {path} is empty: it should hold one YAML mapping with apiVersion, kind, metadata and spec (`rafter get cluster NAME -o yaml` prints one)"
    )]
    EmptyFile { path: PathBuf },
    #[error(transparent)]
    Invalid(#[from] InvalidSpec),
}

/// The largest spec file read: a cluster spec is a few kilobytes; this leaves room for many
/// hosts and asset overrides, and stops `-f /dev/zero` (or a wrong, huge file) at once.
pub const SPEC_FILE_LIMIT: u64 = 4 * 1024 * 1024;

/// A text file of at most `limit` bytes; a longer one (or an endless one) is an error that
/// says so, after reading no more than the limit.
pub fn read_text_file(path: &Path, limit: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("it is larger than {limit} bytes: is it the right file?"),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "it is not UTF-8 text: is it the right file?",
        )
    })
}

/// Builds the merged source tree of a spec from its layers.
pub fn merge_sources(sources: &SpecSources) -> Result<Node, LoadError> {
    if sources.profile.is_none() && sources.file.is_none() && sources.flags.name.is_none() {
        return Err(LoadError::NothingGiven);
    }
    let mut document = defaults_layer();
    if let Some(name) = &sources.profile {
        document.overlay(profile_layer(name)?);
    }
    if let Some(path) = &sources.file {
        let text = read_text_file(path, SPEC_FILE_LIMIT).map_err(|source| LoadError::ReadFile {
            path: path.clone(),
            source,
        })?;
        document.overlay(parse_spec_file(&text, path)?);
    }
    apply_flags(&mut document, &sources.flags);
    Ok(document)
}

/// A spec file's tree; an empty one (or one holding only `null`) is refused by name rather
/// than read as "every field missing".
fn parse_spec_file(text: &str, path: &Path) -> Result<Node, LoadError> {
    let node = parse_yaml(text, &path.display().to_string())?;
    if matches!(node.value, NodeValue::Null) {
        return Err(LoadError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(node)
}

/// Parses a stored spec (as written by rafter) into its source tree.
pub fn parse_stored(text: &str, label: &str) -> Result<Node, LoadError> {
    Ok(parse_yaml(text, label)?)
}

fn defaults_layer() -> Node {
    let mut node = Node::empty_map(Origin::Default);
    node.set(
        &FieldPath::parse("apiVersion"),
        string_node(API_VERSION, Origin::Default),
    );
    node.set(
        &FieldPath::parse("kind"),
        string_node(KIND, Origin::Default),
    );
    node
}

fn profile_layer(name: &str) -> Result<Node, LoadError> {
    if let Some(profile) = find_profile(name) {
        return Ok(parse_yaml(profile.text, profile.path)?);
    }
    let path = Path::new(name);
    if path
        .extension()
        .is_some_and(|extension| extension == "yaml" || extension == "yml")
    {
        let text = read_text_file(path, SPEC_FILE_LIMIT).map_err(|source| LoadError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        return parse_spec_file(&text, path);
    }
    let suggestion = did_you_mean(name, profile_names())
        .map(|close| format!("; did you mean `{close}`?"))
        .unwrap_or_default();
    Err(LoadError::UnknownProfile {
        name: name.to_string(),
        available: profile_names().collect::<Vec<_>>().join(", "),
        suggestion,
    })
}

fn string_node(text: &str, origin: Origin) -> Node {
    Node::new(NodeValue::Str(text.to_string()), origin)
}

/// Sets the fields `flags` give on `document` (a spec's source tree), each remembered as
/// coming from its flag.
pub fn apply_flags(document: &mut Node, flags: &SpecFlags) {
    let set_str = |document: &mut Node, path: &str, flag: &'static str, value: &Option<String>| {
        if let Some(value) = value {
            document.set(
                &FieldPath::parse(path),
                string_node(value, Origin::Flag(flag)),
            );
        }
    };
    set_str(document, "metadata.name", "--name", &flags.name);
    set_str(
        document,
        "spec.kubernetesVersion",
        "--kubernetes-version",
        &flags.kubernetes_version,
    );
    set_str(
        document,
        "spec.etcd.version",
        "--etcd-version",
        &flags.etcd_version,
    );
    set_str(document, "spec.dns.zone", "--dns-zone", &flags.dns_zone);
    set_str(
        document,
        "spec.networking.vpcCidr",
        "--network-cidr",
        &flags.network_cidr,
    );
    set_str(
        document,
        "spec.networking.topology",
        "--topology",
        &flags.topology,
    );
    set_str(
        document,
        "spec.controlPlane.instanceType",
        "--control-plane-size",
        &flags.control_plane_size,
    );
    set_str(
        document,
        "spec.sshAccess.publicKey",
        "--ssh-public-key",
        &flags.ssh_public_key,
    );
    if let Some(zones) = &flags.zones {
        let origin = Origin::Flag("--zones");
        let items = zones
            .iter()
            .map(|zone| string_node(zone, origin.clone()))
            .collect();
        document.set(
            &FieldPath::parse("spec.networking.zones"),
            Node::new(NodeValue::Seq(items), origin),
        );
    }
    if let Some(count) = flags.control_plane_count {
        document.set(
            &FieldPath::parse("spec.controlPlane.count"),
            Node::new(
                NodeValue::Int(i64::from(count)),
                Origin::Flag("--control-plane-count"),
            ),
        );
    }
    if flags.node_count.is_some() || flags.node_size.is_some() {
        overlay_every_node_group(document, flags);
    }
}

/// `--node-count` and `--node-size` apply to every node group (creating `workers` if none).
fn overlay_every_node_group(document: &mut Node, flags: &SpecFlags) {
    let mut fields = Vec::new();
    if let Some(count) = flags.node_count {
        for key in ["minSize", "maxSize"] {
            let origin = Origin::Flag("--node-count");
            fields.push(Entry {
                key: key.into(),
                key_origin: origin.clone(),
                value: Node::new(NodeValue::Int(i64::from(count)), origin),
            });
        }
    }
    if let Some(size) = &flags.node_size {
        let origin = Origin::Flag("--node-size");
        fields.push(Entry {
            key: "instanceType".into(),
            key_origin: origin.clone(),
            value: string_node(size, origin),
        });
    }
    let path = FieldPath::parse("spec.nodeGroups");
    let existing = match document.get(&path) {
        Some(Node {
            value: NodeValue::Seq(items),
            ..
        }) if !items.is_empty() => items.clone(),
        _ => {
            let origin = Origin::Default;
            vec![Node::new(
                NodeValue::Map(vec![Entry {
                    key: "name".into(),
                    key_origin: origin.clone(),
                    value: string_node("workers", origin.clone()),
                }]),
                origin,
            )]
        }
    };
    let groups = existing
        .into_iter()
        .map(|mut group| {
            group.overlay(Node::new(NodeValue::Map(fields.clone()), Origin::Default));
            group
        })
        .collect();
    let origin = document.value_origin(&path);
    document.set(&path, Node::new(NodeValue::Seq(groups), origin));
}

/// Decodes the typed cluster, reporting every structural error with its origin.
pub fn decode_cluster(document: &Node) -> Result<Cluster, InvalidSpec> {
    decode_all_errors::<Cluster>(document)
}

const MAX_DECODE_ATTEMPTS: usize = 64;

fn decode_all_errors<T: DeserializeOwned>(document: &Node) -> Result<T, InvalidSpec> {
    let mut working = document.clone();
    let mut errors: Vec<Diagnostic> = Vec::new();
    for _ in 0..MAX_DECODE_ATTEMPTS {
        let json = working.to_json();
        match serde_path_to_error::deserialize::<_, T>(json) {
            Ok(value) if errors.is_empty() => return Ok(value),
            Ok(_) => break,
            Err(error) => {
                let path = convert_path(error.path());
                let diagnostic = describe_decode_error(path, &error.inner().to_string());
                let removable = diagnostic.path.clone();
                errors.push(locate(document, diagnostic));
                if !working.remove(&removable) {
                    break;
                }
            }
        }
    }
    Err(InvalidSpec { errors })
}

/// Fills in where each diagnostic's field was written.
pub fn locate(document: &Node, mut diagnostic: Diagnostic) -> Diagnostic {
    let written = |path: &FieldPath| {
        document
            .get(path)
            .is_some_and(|node| node.origin != Origin::Default)
    };
    let path = match &diagnostic.related {
        Some(related) if !written(&diagnostic.path) && written(related) => related,
        _ => &diagnostic.path,
    };
    diagnostic.origin = if diagnostic.at_key {
        document.origin_of(path)
    } else {
        document.value_origin(path)
    };
    diagnostic
}

fn convert_path(path: &serde_path_to_error::Path) -> FieldPath {
    use serde_path_to_error::Segment as PathSegment;
    FieldPath(
        path.iter()
            .filter_map(|segment| match segment {
                PathSegment::Map { key } => Some(Segment::Key(key.clone())),
                PathSegment::Seq { index } => Some(Segment::Index(*index)),
                PathSegment::Enum { .. } | PathSegment::Unknown => None,
            })
            .collect(),
    )
}

/// Words in backticks, in order: serde names fields and variants that way.
fn backticked(message: &str) -> Vec<&str> {
    message.split('`').skip(1).step_by(2).collect()
}

fn describe_decode_error(path: FieldPath, message: &str) -> Diagnostic {
    let words = backticked(message);
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let field = words.first().copied().unwrap_or_default();
        let path = if path.0.last() == Some(&Segment::Key(field.to_string())) {
            path
        } else {
            path.key(field)
        };
        let expected = &words[1.min(words.len())..];
        let hint = match did_you_mean(field, expected.iter().copied()) {
            Some(close) => format!("did you mean `{close}`?"),
            None if rest.contains("there are no fields") => "remove it".to_string(),
            None => format!("valid fields here: {}", expected.join(", ")),
        };
        return Diagnostic::error(path, format!("unknown field `{field}`"))
            .at_key()
            .with_hint(hint);
    }
    if message.starts_with("unknown variant ") {
        let value = words.first().copied().unwrap_or_default();
        let expected = &words[1.min(words.len())..];
        let diagnostic = Diagnostic::error(
            path,
            format!("`{value}` is not one of: {}", expected.join(", ")),
        );
        return match did_you_mean(value, expected.iter().copied()) {
            Some(close) => diagnostic.with_hint(format!("did you mean `{close}`?")),
            None => diagnostic,
        };
    }
    if message.starts_with("missing field ") {
        let field = words.first().copied().unwrap_or_default();
        return Diagnostic::error(path.key(field), "required field is missing")
            .with_hint(format!("add `{field}:`"));
    }
    if message.starts_with("invalid type: floating point")
        && (message.ends_with("expected u32") || message.ends_with("expected u16"))
    {
        let value = words.first().copied().unwrap_or_default();
        let largest = if message.ends_with("u16") {
            u64::from(u16::MAX)
        } else {
            u64::from(u32::MAX)
        };
        return Diagnostic::error(
            path,
            format!("`{value}` is not a whole number from 0 to {largest}"),
        );
    }
    if message.starts_with("invalid type: ") {
        let described = message
            .trim_start_matches("invalid type: ")
            .replace("expected u32", "expected a whole number")
            .replace("expected u16", "expected a whole number");
        let diagnostic = Diagnostic::error(path, described);
        return if message.ends_with("expected a string") {
            diagnostic.with_hint("quote the value, e.g. \"1.34.2\"")
        } else {
            diagnostic
        };
    }
    if message.starts_with("invalid value: ") {
        return Diagnostic::error(
            path,
            message.trim_start_matches("invalid value: ").to_string(),
        );
    }
    Diagnostic::error(path, message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<Cluster, InvalidSpec> {
        let mut document = defaults_layer();
        document.overlay(parse_yaml(text, "c.yaml").unwrap());
        decode_cluster(&document)
    }

    #[test]
    fn reports_every_structural_error_with_position() {
        let errors = decode(
            "metadata: {name: a.example.com}\nspec:\n  networking:\n    zonez: [a]\n    topology: privat\n  controlPlane:\n    count: three\n",
        )
        .unwrap_err()
        .errors;
        let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 3, "{rendered:#?}");
        assert!(
            rendered.iter().any(|e| e
                .starts_with("c.yaml:4:5: spec.networking.zonez: unknown field `zonez`")
                && e.contains("did you mean `zones`?")),
            "{rendered:#?}"
        );
        assert!(
            rendered.iter().any(|e| e
                .starts_with("c.yaml:5:15: spec.networking.topology: `privat` is not one of")
                && e.contains("did you mean `private`?")),
            "{rendered:#?}"
        );
        assert!(
            rendered
                .iter()
                .any(|e| e.starts_with("c.yaml:7:12: spec.controlPlane.count:")),
            "{rendered:#?}"
        );
    }

    #[test]
    fn flags_overlay_files_and_are_named_in_errors() {
        let sources = SpecSources {
            profile: Some("ha-aws".into()),
            file: None,
            flags: SpecFlags {
                name: Some("x.example.com".into()),
                control_plane_count: Some(5),
                node_count: Some(7),
                ..Default::default()
            },
        };
        let document = merge_sources(&sources).unwrap();
        let cluster = decode_cluster(&document).unwrap();
        assert_eq!(cluster.spec.control_plane.count, 5);
        assert!(
            cluster
                .spec
                .node_groups
                .iter()
                .all(|group| group.min_size == 7 && group.max_size == 7)
        );
        assert_eq!(
            document.origin_of(&FieldPath::parse("spec.controlPlane.count")),
            Origin::Flag("--control-plane-count")
        );
    }

    #[test]
    fn unknown_profile_suggests_a_close_one() {
        let error = profile_layer("ha-aw").unwrap_err();
        assert!(
            error.to_string().contains("did you mean `ha-aws`?"),
            "{error}"
        );
    }
}
