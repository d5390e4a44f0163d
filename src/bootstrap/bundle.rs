//! A node's files as one self-contained shell script (`bundle.sh`): it writes each file that
//! differs (atomically, with its mode) and runs the bootstrap. One object in the state store
//! for an AWS node group, one upload for a bare host; `--check` previews without changing.

use serde::Serialize;

use super::NodeFile;
use crate::templates::{self, TemplateError};

/// Base64 lines as `base64` prints them.
const LINE: usize = 76;

#[derive(Serialize)]
struct BundledFile<'a> {
    path: &'a str,
    mode: String,
    base64: String,
}

fn wrapped_base64(content: &str) -> String {
    let encoded = aws_smithy_types::base64::encode(content.as_bytes());
    encoded
        .as_bytes()
        .chunks(LINE)
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The bundle of `files` for `role` `node_name` of `cluster`.
pub fn bundle_script(
    cluster: &str,
    role: &str,
    node_name: Option<&str>,
    files: &[NodeFile],
) -> Result<String, TemplateError> {
    let bundled: Vec<BundledFile<'_>> = files
        .iter()
        .map(|file| BundledFile {
            path: &file.path,
            mode: format!("{:o}", file.mode),
            base64: wrapped_base64(&file.content),
        })
        .collect();
    templates::render(
        "node/bundle.sh",
        minijinja::context! { cluster, role, node_name, files => bundled },
    )
}
