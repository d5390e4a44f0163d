//! The project's own shell scripts (`scripts/*.sh`, `.ci/run`) pass shellcheck.

mod common;

use std::path::Path;
use std::process::Command;

use common::tools::venv_bin;

#[test]
fn every_project_script_passes_shellcheck() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scripts: Vec<_> = std::fs::read_dir(root.join("scripts"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sh"))
        .collect();
    scripts.push(root.join(".ci/run"));
    scripts.sort();
    assert!(scripts.len() >= 4, "{scripts:?}");
    let output = Command::new(venv_bin("shellcheck"))
        .args(&scripts)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
