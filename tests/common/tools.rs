//! The test tools' Python venv, made by `scripts/setup-tools.sh` (`.tools/venv`, or
//! `$RAFTER_TOOLS_VENV`): moto, etcd, kubernetes-validate, shellcheck, the Terraform checks.

use std::path::{Path, PathBuf};

pub fn venv() -> PathBuf {
    std::env::var_os("RAFTER_TOOLS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv"))
}

/// An executable of the venv, e.g. `kubernetes-validate`.
pub fn venv_bin(name: &str) -> PathBuf {
    venv().join("bin").join(name)
}

/// An executable of one of the static analysers' venvs beside the test tools' (`checkov`,
/// `iam-audit`), which `scripts/setup-tools.sh` makes apart because their pins conflict.
pub fn analyser_bin(venv_name: &str, name: &str) -> PathBuf {
    venv()
        .parent()
        .map(|parent| parent.join(venv_name))
        .unwrap_or_else(|| PathBuf::from(venv_name))
        .join("bin")
        .join(name)
}
