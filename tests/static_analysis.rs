//! Independent static analysis of what rafter exports, with widely used tools: checkov over
//! the Terraform module of every AWS profile, parliament and cloudsplaining (through
//! `scripts/check-iam.py`) over every IAM policy in it. Every finding is fixed or listed with
//! a one-line reason in `tests/fixtures/static-analysis-allow.txt`; an entry that matches no
//! finding fails too, so the list cannot rot. A planted bad module and policy prove each tool
//! still reports what it should.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::AWS_PROFILES;
use common::tools::analyser_bin;
use rafter::terraform::{render_module, write_module};

/// What a tool reported: (tool, check, subject).
type Finding = (String, String, String);

fn tool(venv: &str, name: &str) -> PathBuf {
    let path = analyser_bin(venv, name);
    assert!(
        path.exists(),
        "{} is not installed: run scripts/setup-tools.sh",
        path.display()
    );
    path
}

fn allowed() -> BTreeSet<Finding> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/static-analysis-allow.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut entries = BTreeSet::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.splitn(4, '|').map(str::trim).collect();
        assert!(
            fields.len() == 4 && fields.iter().all(|field| !field.is_empty()),
            "{}:{}: want `tool | check | subject | reason`",
            path.display(),
            number + 1
        );
        let entry = (
            fields[0].to_string(),
            fields[1].to_string(),
            fields[2].to_string(),
        );
        assert!(
            entries.insert(entry),
            "{}:{}: listed twice",
            path.display(),
            number + 1
        );
    }
    entries
}

/// checkov's failed checks for the module in `dir`, offline (`--skip-download`).
fn checkov(dir: &Path) -> BTreeSet<Finding> {
    let output = Command::new(tool("checkov", "checkov"))
        .args([
            "--framework",
            "terraform",
            "--skip-download",
            "--quiet",
            "--compact",
        ])
        .args(["-o", "json", "-d"])
        .arg(dir)
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "checkov wrote no JSON report ({error}):\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    // One framework: one report object (a list when several ran).
    let reports = match report {
        serde_json::Value::Array(reports) => reports,
        report => vec![report],
    };
    let mut findings = BTreeSet::new();
    for report in &reports {
        assert_eq!(
            report["summary"]["parsing_errors"],
            0,
            "checkov could not parse {}",
            dir.display()
        );
        for check in report["results"]["failed_checks"].as_array().unwrap() {
            findings.insert((
                "checkov".to_string(),
                check["check_id"].as_str().unwrap().to_string(),
                check["resource"].as_str().unwrap().to_string(),
            ));
        }
    }
    findings
}

/// parliament's and cloudsplaining's findings for the policy files.
fn iam_audit(policies: &[PathBuf]) -> BTreeSet<Finding> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-iam.py");
    let output = Command::new(tool("iam-audit", "python"))
        .arg(script)
        .args(policies)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    findings
        .iter()
        .map(|finding| {
            let detail = match &finding["detail"] {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|item| item.as_str().unwrap_or_default().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            (
                finding["tool"].as_str().unwrap().to_string(),
                finding["check"].as_str().unwrap().to_string(),
                format!("{}:{detail}", finding["policy"].as_str().unwrap()),
            )
        })
        .collect()
}

/// The identity policies of a module (`data/iam-*-policy.json`; trust policies are resource
/// policies, which neither auditor covers).
fn identity_policies(dir: &Path) -> Vec<PathBuf> {
    let mut policies: Vec<PathBuf> = std::fs::read_dir(dir.join("data"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("iam-") && name.ends_with("-policy.json")
        })
        .collect();
    policies.sort();
    policies
}

#[test]
fn every_finding_on_the_exported_terraform_and_iam_is_fixed_or_justified() {
    let scratch = tempfile::tempdir().unwrap();
    let mut findings = BTreeSet::new();
    let mut policies = 0;
    for profile in AWS_PROFILES {
        let (cluster, graph) = common::example_graph(profile);
        let dir = scratch.path().join(profile);
        write_module(
            &dir,
            profile,
            &render_module(&cluster, &graph, &[]).unwrap(),
        )
        .unwrap();
        findings.extend(checkov(&dir));
        let files = identity_policies(&dir);
        policies += files.len();
        findings.extend(iam_audit(&files));
    }
    assert!(policies >= 4, "only {policies} policies audited");

    let allowed = allowed();
    let unexpected: Vec<&Finding> = findings.difference(&allowed).collect();
    let stale: Vec<&Finding> = allowed.difference(&findings).collect();
    assert!(
        unexpected.is_empty(),
        "new findings: fix them, or add `tool | check | subject | reason` to tests/fixtures/static-analysis-allow.txt:\n{unexpected:#?}"
    );
    assert!(
        stale.is_empty(),
        "allow-list entries that match no finding any more (delete them):\n{stale:#?}"
    );
}

#[test]
fn the_analysers_report_a_planted_bad_module_and_policy() {
    let scratch = tempfile::tempdir().unwrap();
    let module = scratch.path().join("bad");
    std::fs::create_dir_all(module.join("data")).unwrap();
    std::fs::write(
        module.join("main.tf"),
        r#"resource "aws_security_group" "open" {
  name        = "open"
  description = "open to the world"
  ingress {
    description = "SSH from anywhere"
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
"#,
    )
    .unwrap();
    let policy = module.join("data/iam-bad-policy.json");
    std::fs::write(
        &policy,
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iam:PassRole", "s3:GetObject"], "Resource": "*"}]}"#,
    )
    .unwrap();

    let terraform = checkov(&module);
    assert!(
        terraform.contains(&(
            "checkov".into(),
            "CKV_AWS_24".into(),
            "aws_security_group.open".into()
        )),
        "{terraform:#?}"
    );
    let iam = iam_audit(&identity_policies(&module));
    for expected in [
        (
            "parliament",
            "RESOURCE_STAR",
            "iam-bad-policy.json:iam:PassRole,s3:GetObject",
        ),
        (
            "cloudsplaining",
            "ResourceExposure",
            "iam-bad-policy.json:iam:PassRole",
        ),
        (
            "cloudsplaining",
            "DataExfiltration",
            "iam-bad-policy.json:s3:GetObject",
        ),
    ] {
        let expected = (
            expected.0.to_string(),
            expected.1.to_string(),
            expected.2.to_string(),
        );
        assert!(iam.contains(&expected), "{expected:?} not in {iam:#?}");
    }
}
