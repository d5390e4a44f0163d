//! The Terraform path and rafter's own apply build the same cluster: `export terraform` with
//! an S3 state store publishes the node bundles the module's instances fetch (and no file of
//! the module holds a secret), and every resource the module tags carries exactly the tags
//! `rafter update cluster --yes` gives the same resource in the AWS API emulator, so either
//! can adopt what the other made.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use rafter::graph::ResourceKind;
use rafter::plan::RecordedResource;
use rafter::state::layout::BundleOwner;
use rafter::state::{ClusterStore, S3Store, StateStore};

const CLUSTER: &str = "parity.example.com";
const PREFIX: &str = "state";

type Tags = BTreeMap<String, String>;

fn rafter(state: &str, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_rafter"))
        .args(args)
        .env("RAFTER_STATE", state)
        .envs(common::moto::process_env())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "rafter {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every file under `dir`, with its path relative to `dir`.
fn module_files(dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().display().to_string();
                files.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    files
}

/// The tags of each resource of the module, read by python-hcl2 (`scripts/terraform-tags.py`).
fn terraform_tags(dir: &Path) -> BTreeMap<String, Tags> {
    let python = common::tools::venv_bin("python");
    assert!(
        python.exists(),
        "the test tools are not installed: run scripts/setup-tools.sh"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/terraform-tags.py");
    let output = Command::new(python).arg(script).arg(dir).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn attribute(recorded: &RecordedResource, name: &str) -> String {
    recorded
        .attributes
        .iter()
        .find(|field| field.name == name)
        .and_then(|field| match &field.value {
            rafter::graph::Value::Str(text) => Some(text.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{} records no {name}", recorded.address))
}

/// The tags the emulator reports for a recorded resource, or `None` for kinds AWS does not
/// tag (routes, associations, role policies, DNS records).
async fn cloud_tags(config: &aws_config::SdkConfig, recorded: &RecordedResource) -> Option<Tags> {
    let id = || recorded.outputs["id"].clone();
    let pairs: Vec<(String, String)> = match recorded.address.kind {
        kind if kind.found_by_address_tag() => {
            let ec2 = aws_sdk_ec2::Client::new(config);
            let described = ec2
                .describe_tags()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("resource-id")
                        .values(id())
                        .build(),
                )
                .send()
                .await
                .unwrap();
            described
                .tags()
                .iter()
                .map(|tag| {
                    (
                        tag.key().unwrap_or_default().to_string(),
                        tag.value().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        }
        ResourceKind::IamRole => {
            let iam = aws_sdk_iam::Client::new(config);
            let listed = iam
                .list_role_tags()
                .role_name(attribute(recorded, "name"))
                .send()
                .await
                .unwrap();
            listed
                .tags()
                .iter()
                .map(|tag| (tag.key().to_string(), tag.value().to_string()))
                .collect()
        }
        ResourceKind::IamInstanceProfile => {
            let iam = aws_sdk_iam::Client::new(config);
            let got = iam
                .get_instance_profile()
                .instance_profile_name(attribute(recorded, "name"))
                .send()
                .await
                .unwrap();
            got.instance_profile()
                .unwrap()
                .tags()
                .iter()
                .map(|tag| (tag.key().to_string(), tag.value().to_string()))
                .collect()
        }
        ResourceKind::LoadBalancer | ResourceKind::TargetGroup | ResourceKind::Listener => {
            let elb = aws_sdk_elasticloadbalancingv2::Client::new(config);
            let described = elb
                .describe_tags()
                .resource_arns(recorded.outputs["arn"].clone())
                .send()
                .await
                .unwrap();
            described
                .tag_descriptions()
                .iter()
                .flat_map(|description| description.tags())
                .map(|tag| {
                    (
                        tag.key().unwrap_or_default().to_string(),
                        tag.value().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        }
        ResourceKind::AutoscalingGroup => {
            let autoscaling = aws_sdk_autoscaling::Client::new(config);
            let described = autoscaling
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(attribute(recorded, "name"))
                .send()
                .await
                .unwrap();
            described
                .auto_scaling_groups()
                .iter()
                .flat_map(|group| group.tags())
                .map(|tag| {
                    (
                        tag.key().unwrap_or_default().to_string(),
                        tag.value().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        }
        ResourceKind::SqsQueue => {
            let listed = aws_sdk_sqs::Client::new(config)
                .list_queue_tags()
                .queue_url(recorded.outputs["url"].clone())
                .send()
                .await
                .unwrap();
            listed
                .tags()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect()
        }
        ResourceKind::EventRule => {
            let listed = aws_sdk_eventbridge::Client::new(config)
                .list_tags_for_resource()
                .resource_arn(recorded.outputs["arn"].clone())
                .send()
                .await
                .unwrap();
            listed
                .tags()
                .iter()
                .map(|tag| (tag.key().to_string(), tag.value().to_string()))
                .collect()
        }
        _ => return None,
    };
    Some(pairs.into_iter().collect())
}

/// The cluster's CA private key (`pki/ca.pem` holds the certificate, then the key).
struct Secrets {
    ca_key: String,
}

impl Secrets {
    async fn read(store: &ClusterStore<S3Store>) -> Self {
        let ca = store
            .store()
            .read(&rafter::state::layout::pki_key(CLUSTER, "ca.pem"))
            .await
            .unwrap()
            .expect("the CA is stored");
        let ca = String::from_utf8(ca).unwrap();
        let (_, key) = ca.split_once("-----END CERTIFICATE-----\n").unwrap();
        assert!(key.contains("PRIVATE KEY"), "{}", key.len());
        Self {
            ca_key: key.to_string(),
        }
    }
}

fn holds_secret(content: &str, secrets: &Secrets) -> bool {
    let key_line = secrets
        .ca_key
        .lines()
        .find(|line| !line.starts_with("-----"))
        .unwrap();
    // A bundle's files are base64 in lines of 76: the first line of the encoded key.
    let encoded = aws_smithy_types::base64::encode(secrets.ca_key.as_bytes());
    content.contains("PRIVATE KEY")
        || content.contains(key_line)
        || content.contains(&encoded[..76])
}

#[tokio::test]
async fn terraform_export_publishes_bundles_holds_no_secret_and_tags_like_rafters_apply() {
    let config = common::moto::sdk_config();
    aws_sdk_route53::Client::new(&config)
        .create_hosted_zone()
        .name("example.com")
        .caller_reference("rafter-terraform-parity")
        .send()
        .await
        .unwrap();
    let s3 = common::moto::s3_client();
    let bucket = common::moto::new_bucket(&s3, "tf-parity").await;
    let state = format!("s3://{bucket}/{PREFIX}");
    let store = ClusterStore::new(S3Store::new(s3, &bucket, PREFIX));

    rafter(
        &state,
        &[
            "create",
            "cluster",
            "--name",
            CLUSTER,
            "--profile",
            "ha-aws",
            "--zones",
            "eu-west-1a,eu-west-1b,eu-west-1c",
            "--dns-zone",
            "example.com",
        ],
    );
    let module = tempfile::tempdir().unwrap();
    let out = module.path().join("tf");
    let exported = rafter(
        &state,
        &[
            "export",
            "terraform",
            CLUSTER,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let said = String::from_utf8_lossy(&exported.stderr);
    assert!(said.contains("Published 4 node bundle(s)"), "{said}");

    // Every instance of the module finds its bundle where its user-data looks.
    let zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"].map(String::from);
    let members: Vec<String> = rafter::model::compute::control_plane_slots(3, &zones)
        .iter()
        .map(|slot| slot.member())
        .collect();
    let mut owners: Vec<BundleOwner> = members
        .iter()
        .map(|member| BundleOwner::ControlPlaneMember(member))
        .collect();
    owners.push(BundleOwner::NodeGroup("workers"));
    let files = module_files(&out);
    let secrets = Secrets::read(&store).await;
    for owner in &owners {
        let bundle = store
            .store()
            .read(&owner.key(CLUSTER))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no bundle at {}", owner.key(CLUSTER)));
        let url = owner.url(&store.config_base(CLUSTER));
        assert!(
            files.iter().any(|(_, content)| content.contains(&url)),
            "no user-data fetches {url}"
        );
        // The secret probe below can fail: it finds the CA key in a control-plane bundle.
        assert_eq!(
            holds_secret(&String::from_utf8_lossy(&bundle), &secrets),
            matches!(owner, BundleOwner::ControlPlaneMember(_)),
            "{}",
            owner.key(CLUSTER)
        );
    }

    // No file of the module (so nothing in Terraform's state either) holds a secret.
    for (path, content) in &files {
        assert!(!holds_secret(content, &secrets), "{path} holds a secret");
    }

    // The export resolved the image once and recorded it: the module is pinned to it.
    let recorded = store.read_resources(CLUSTER).await.unwrap();
    let image = recorded
        .iter()
        .find(|record| record.address.kind == ResourceKind::Image)
        .expect("the export records the image it pinned");
    let image_id = &image.outputs["id"];
    let compute = std::fs::read_to_string(out.join("compute.tf")).unwrap();
    assert!(
        compute.contains(&format!(
            "filter {{\n    name   = \"image-id\"\n    values = [\"{image_id}\"]\n  }}"
        )),
        "{compute}"
    );

    // rafter applies the same cluster; the tags it gives each resource are the module's, and
    // its launch templates use the image the module is pinned to.
    rafter(&state, &["update", "cluster", CLUSTER, "--yes"]);
    let exported_tags = terraform_tags(&out);
    let recorded = store.read_resources(CLUSTER).await.unwrap();
    let templates = aws_sdk_ec2::Client::new(&config)
        .describe_launch_template_versions()
        .launch_template_name(format!("control-plane-eu-west-1a.{CLUSTER}"))
        .versions("$Latest")
        .send()
        .await
        .unwrap();
    let launched = templates.launch_template_versions()[0]
        .launch_template_data()
        .and_then(|data| data.image_id())
        .unwrap();
    assert_eq!(launched, image_id);
    let mut compared = 0;
    for resource in &recorded {
        let address = resource.address.to_string();
        let Some(applied) = cloud_tags(&config, resource).await else {
            assert!(
                !exported_tags.contains_key(&address),
                "{address} is tagged in the module but rafter leaves it untagged"
            );
            continue;
        };
        let exported = exported_tags
            .get(&address)
            .unwrap_or_else(|| panic!("{address} is tagged by rafter, not in the module"));
        assert_eq!(exported, &applied, "{address}: module tags vs applied tags");
        compared += 1;
    }
    assert_eq!(
        compared,
        exported_tags.len(),
        "the module tags resources rafter did not make: {:?}",
        exported_tags.keys()
    );
    assert!(compared > 30, "only {compared} resources compared");
}

#[tokio::test]
async fn without_a_dns_zone_the_export_says_why_it_publishes_nothing() {
    let s3 = common::moto::s3_client();
    let bucket = common::moto::new_bucket(&s3, "tf-no-dns").await;
    let state = format!("s3://{bucket}/{PREFIX}");
    let store = ClusterStore::new(S3Store::new(s3, &bucket, PREFIX));
    let name = "nodns.example.com";
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key.path(), common::EXAMPLE_PUBLIC_KEY).unwrap();
    rafter(
        &state,
        &[
            "create",
            "cluster",
            "--name",
            name,
            "--profile",
            "dev-aws",
            "--zones",
            "eu-west-1a",
            "--ssh-public-key",
            key.path().to_str().unwrap(),
        ],
    );
    let module = tempfile::tempdir().unwrap();
    let exported = rafter(
        &state,
        &[
            "export",
            "terraform",
            name,
            "--out",
            module.path().join("tf").to_str().unwrap(),
        ],
    );
    let said = String::from_utf8_lossy(&exported.stderr);
    assert!(
        said.contains("node bundles were not published: cluster nodns.example.com has no spec.dns"),
        "{said}"
    );
    let bundle = BundleOwner::NodeGroup("workers");
    assert_eq!(store.store().read(&bundle.key(name)).await.unwrap(), None);
    assert!(module.path().join("tf/compute.tf").exists());
}
