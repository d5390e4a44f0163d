//! The cluster spec: types, layered loading, completion and validation.
//!
//! `prepare` is the one entry point the rest of rafter uses: it turns a merged source tree
//! into a completed, validated [`Cluster`], or into every error found, each located.

pub mod complete;
pub mod diagnostics;
pub mod images;
pub mod load;
pub mod profiles;
pub mod source;
pub mod types;
pub mod validate;
pub mod versions;

pub use diagnostics::{Diagnostic, InvalidSpec, Severity};
pub use load::{LoadError, SpecFlags, SpecSources};
pub use source::Node;
pub use types::*;

/// A completed spec that passed validation, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct PreparedSpec {
    pub cluster: Cluster,
    pub warnings: Vec<Diagnostic>,
}

/// Decodes, completes and validates a spec; reports all errors at once.
pub fn prepare(document: &Node, config_base: Option<&str>) -> Result<PreparedSpec, InvalidSpec> {
    let cluster = load::decode_cluster(document)?;
    let (completed, mut diagnostics) = complete::complete(&cluster, config_base);
    diagnostics.extend(validate::validate(&completed));
    let (errors, warnings): (Vec<Diagnostic>, Vec<Diagnostic>) = diagnostics
        .into_iter()
        .map(|diagnostic| load::locate(document, diagnostic))
        .partition(|diagnostic| diagnostic.severity == Severity::Error);
    if errors.is_empty() {
        Ok(PreparedSpec {
            cluster: completed,
            warnings,
        })
    } else {
        Err(InvalidSpec { errors })
    }
}

/// Loads a spec from its layers (profile, file, flags) and prepares it.
pub fn load(sources: &SpecSources, config_base: Option<&str>) -> Result<PreparedSpec, LoadError> {
    let document = load::merge_sources(sources)?;
    Ok(prepare(&document, config_base)?)
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write the cluster spec as YAML")]
pub struct RenderSpecError(#[source] pub serde_saphyr::SerializeError);

/// The spec as YAML, in the form `create cluster -f` reads back.
pub fn to_yaml(cluster: &Cluster) -> Result<String, RenderSpecError> {
    // Plain one-line scalars: keys and certificates stay greppable and copy-pasteable.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    let mut yaml =
        serde_saphyr::to_string_with_options(cluster, options).map_err(RenderSpecError)?;
    if !yaml.ends_with('\n') {
        yaml.push('\n');
    }
    Ok(yaml)
}
