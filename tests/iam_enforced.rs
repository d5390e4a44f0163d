//! Who can read what, proven by enforcement rather than by reading a policy: `rafter create
//! cluster --yes` against the emulator, which is then told to evaluate IAM policies (moto's
//! `/moto-api/reset-auth`); each instance role the cluster made is assumed and made to try
//! every object of the state store, writes, and mutations of another cluster's EC2 and
//! load-balancing resources.
//!
//! The emulator evaluates actions and S3 resource ARNs like AWS; it ignores conditions and
//! checks EC2 and ELB requests against resource `*`. So the cluster here runs without the AWS
//! add-ons, whose statements are all conditioned on tags: what those allow is proven by
//! evaluating the policies with conditions (`iam_conditions` below). The roles rafter makes hold no ELB
//! action and no EC2 action on resource `*` but `ec2:DescribeVolumes` (control plane), so
//! every other such call must be refused there as on AWS. The control plane's
//! `ec2:AttachVolume` is allowed only on volumes and instances with this cluster's tags (a
//! condition the emulator cannot check): attaching another cluster's volume is refused here
//! because the emulator matches no ARN, and on AWS because the tags differ. (rafter's own run
//! happens before enforcement starts: moto's signature check refuses some of the SDK's
//! well-formed requests, which real AWS accepts.)

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use aws_sdk_s3::error::ProvideErrorMetadata;
use common::moto::Moto;

const CLUSTER: &str = "iam.example.com";
const BUCKET: &str = "rafter-iam-enforced";
const PREFIX: &str = "state";

/// Once enforcement is on, the first three requests are not checked: enough to make an
/// administrator.
const FREE_REQUESTS: &str = "3";

/// Turns IAM enforcement on, after `FREE_REQUESTS` more requests.
fn enforce_iam(moto: &Moto) {
    let address = moto.endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    use std::io::{Read, Write};
    write!(
        stream,
        "POST /moto-api/reset-auth HTTP/1.0\r\nHost: {address}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{FREE_REQUESTS}",
        FREE_REQUESTS.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
}

async fn config(
    moto: &Moto,
    credentials: impl aws_sdk_s3::config::ProvideCredentials + 'static,
) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(credentials)
        .load()
        .await
}

fn s3(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

/// An administrator made in the unchecked requests: its access key.
async fn administrator(moto: &Moto) -> aws_sdk_s3::config::Credentials {
    let anonymous = config(
        moto,
        aws_sdk_s3::config::Credentials::new("bootstrap", "bootstrap", None, None, "test"),
    )
    .await;
    let iam = aws_sdk_iam::Client::new(&anonymous);
    iam.create_user().user_name("admin").send().await.unwrap();
    iam.put_user_policy()
        .user_name("admin")
        .policy_name("admin")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name("admin")
        .send()
        .await
        .unwrap();
    let key = key.access_key().unwrap();
    aws_sdk_s3::config::Credentials::new(
        key.access_key_id(),
        key.secret_access_key(),
        None,
        None,
        "admin",
    )
}

/// Credentials of `role`, assumed by the administrator. The role's trust policy names EC2
/// only, which the emulator cannot evaluate for a user; the administrator is let in first.
/// Its permissions, the subject of this test, are left as rafter made them.
async fn assume(admin: &aws_config::SdkConfig, moto: &Moto, role: &str) -> aws_config::SdkConfig {
    let iam = aws_sdk_iam::Client::new(admin);
    iam.update_assume_role_policy()
        .role_name(role)
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com","AWS":"*"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let arn = iam
        .get_role()
        .role_name(role)
        .send()
        .await
        .unwrap()
        .role()
        .unwrap()
        .arn()
        .to_string();
    let provider = aws_config::sts::AssumeRoleProvider::builder(arn)
        .session_name("probe")
        .configure(admin)
        .build()
        .await;
    config(moto, provider).await
}

/// What the code of a refused or failed call says.
fn code<E: ProvideErrorMetadata>(error: &E) -> String {
    error.code().unwrap_or("(none)").to_string()
}

/// The error code of a failed call: from the parsed error, else from the body (the emulator
/// answers refused load-balancing calls in EC2's error format, which that SDK does not parse).
fn refusal<E: ProvideErrorMetadata + std::fmt::Debug, T>(
    outcome: Result<
        T,
        aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    >,
) -> Result<(), String> {
    let error = match outcome {
        Ok(_) => return Ok(()),
        Err(error) => error,
    };
    if let Some(code) = error.code() {
        return Err(code.to_string());
    }
    let body = error
        .raw_response()
        .and_then(|response| response.body().bytes())
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
        .unwrap_or_default();
    Err(body
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map_or_else(
            || format!("(no code) {error:?}"),
            |(code, _)| code.to_string(),
        ))
}

/// Keys of the cluster's part of the store (relative) that `client` may read; every other
/// must be refused with `AccessDenied`.
async fn readable(client: &aws_sdk_s3::Client, keys: &[String]) -> BTreeSet<String> {
    let mut readable = BTreeSet::new();
    for key in keys {
        match client
            .get_object()
            .bucket(BUCKET)
            .key(format!("{PREFIX}/{CLUSTER}/{key}"))
            .send()
            .await
        {
            Ok(_) => {
                readable.insert(key.clone());
            }
            Err(error) => {
                let error = error.into_service_error();
                assert_eq!(code(&error), "AccessDenied", "{key}: {error:?}");
            }
        }
    }
    readable
}

/// Whether `client` may write `key` (relative to the cluster's part).
async fn may_write(client: &aws_sdk_s3::Client, key: &str) -> bool {
    match client
        .put_object()
        .bucket(BUCKET)
        .key(format!("{PREFIX}/{CLUSTER}/{key}"))
        .body(b"10.0.0.1\n".to_vec().into())
        .send()
        .await
    {
        Ok(_) => true,
        Err(error) => {
            let error = error.into_service_error();
            assert_eq!(code(&error), "AccessDenied", "{key}: {error:?}");
            false
        }
    }
}

/// A security group, a target group, a volume and an instance that another cluster owns.
struct Foreign {
    security_group: String,
    target_group: String,
    volume: String,
    instance: String,
}

async fn foreign_resources(config: &aws_config::SdkConfig) -> Foreign {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.99.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let owned = aws_sdk_ec2::types::Tag::builder()
        .key("kubernetes.io/cluster/other.example.com")
        .value("owned")
        .build();
    let group = ec2
        .create_security_group()
        .group_name("other-nodes")
        .description("nodes of another cluster")
        .vpc_id(&vpc)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup)
                .tags(owned)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let volume = ec2
        .create_volume()
        .availability_zone("eu-west-1a")
        .size(20)
        .send()
        .await
        .unwrap();
    let images = ec2.describe_images().send().await.unwrap();
    let instance = ec2
        .run_instances()
        .image_id(images.images()[0].image_id().unwrap())
        .min_count(1)
        .max_count(1)
        .placement(
            aws_sdk_ec2::types::Placement::builder()
                .availability_zone("eu-west-1a")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(config);
    let target_group = elb
        .create_target_group()
        .name("other-api")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Tcp)
        .port(6443)
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap();
    Foreign {
        volume: volume.volume_id().unwrap().to_string(),
        instance: instance.instances()[0].instance_id().unwrap().to_string(),
        security_group: group.group_id().unwrap().to_string(),
        target_group: target_group.target_groups()[0]
            .target_group_arn()
            .unwrap()
            .to_string(),
    }
}

/// Every way a role could take over another cluster's resources is refused.
async fn cannot_seize(role: &str, config: &aws_config::SdkConfig, foreign: &Foreign) {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let claim = aws_sdk_ec2::types::Tag::builder()
        .key(format!("kubernetes.io/cluster/{CLUSTER}"))
        .value("owned")
        .build();
    let tagged = ec2
        .create_tags()
        .resources(&foreign.security_group)
        .tags(claim)
        .send()
        .await;
    let opened = ec2
        .authorize_security_group_ingress()
        .group_id(&foreign.security_group)
        .ip_protocol("tcp")
        .from_port(22)
        .to_port(22)
        .cidr_ip("0.0.0.0/0")
        .send()
        .await;
    let deleted = ec2
        .delete_security_group()
        .group_id(&foreign.security_group)
        .send()
        .await;
    let attached = ec2
        .attach_volume()
        .volume_id(&foreign.volume)
        .instance_id(&foreign.instance)
        .device("/dev/xvdu")
        .send()
        .await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(config);
    let elb_tagged = elb
        .add_tags()
        .resource_arns(&foreign.target_group)
        .tags(
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key(format!("kubernetes.io/cluster/{CLUSTER}"))
                .value("owned")
                .build(),
        )
        .send()
        .await;
    let elb_deleted = elb
        .delete_target_group()
        .target_group_arn(&foreign.target_group)
        .send()
        .await;
    let codes = [
        ("ec2:CreateTags", refusal(tagged)),
        ("ec2:AuthorizeSecurityGroupIngress", refusal(opened)),
        ("ec2:DeleteSecurityGroup", refusal(deleted)),
        ("ec2:AttachVolume", refusal(attached)),
        ("elasticloadbalancing:AddTags", refusal(elb_tagged)),
        (
            "elasticloadbalancing:DeleteTargetGroup",
            refusal(elb_deleted),
        ),
    ];
    for (action, outcome) in codes {
        assert_eq!(
            outcome,
            Err("AccessDenied".to_string()),
            "{role} must not be allowed {action} on another cluster's resource"
        );
    }
}

#[tokio::test]
async fn each_instance_role_reads_only_its_own_part_of_the_state_and_seizes_nothing() {
    let moto = Moto::start(&[]);
    let creator = config(
        &moto,
        aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test"),
    )
    .await;
    s3(&creator)
        .create_bucket()
        .bucket(BUCKET)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();

    // Two node groups, so "its own group's bundle" means something.
    let work = tempfile::tempdir().unwrap();
    let spec = work.path().join("cluster.yaml");
    std::fs::write(
        &spec,
        format!(
            "apiVersion: rafter.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: {CLUSTER}\nspec:\n  addons:\n    cloudControllerManager: {{ enabled: false }}\n    ebsCSIDriver: {{ enabled: false }}\n  nodeGroups:\n    - {{ name: workers, instanceType: t3.medium, minSize: 1, maxSize: 2 }}\n    - {{ name: gpu, instanceType: g5.xlarge, minSize: 0, maxSize: 1 }}\n"
        ),
    )
    .unwrap();
    let key_file = work.path().join("id.pub");
    std::fs::write(&key_file, common::EXAMPLE_PUBLIC_KEY).unwrap();
    let created = Command::new(env!("CARGO_BIN_EXE_rafter"))
        .args([
            "create",
            "cluster",
            "-f",
            spec.to_str().unwrap(),
            "--profile",
            "dev-aws",
            "--zones",
            "eu-west-1a",
            "--ssh-public-key",
            key_file.to_str().unwrap(),
            "--yes",
            // No instance boots here, so no member reports its etcd.
            "--etcd-timeout",
            "0s",
        ])
        .env("RAFTER_STATE", format!("s3://{BUCKET}/{PREFIX}"))
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let foreign = foreign_resources(&creator).await;
    // One of this cluster's etcd volumes (every Secret of the cluster, once a member used it).
    let etcd_volume = aws_sdk_ec2::Client::new(&creator)
        .describe_volumes()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:rafter.dev/cluster")
                .values(CLUSTER)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .volumes()[0]
        .volume_id()
        .unwrap()
        .to_string();
    enforce_iam(&moto);
    let admin = config(&moto, administrator(&moto).await).await;
    // A member has published its address, as it does at boot.
    s3(&admin)
        .put_object()
        .bucket(BUCKET)
        .key(format!("{PREFIX}/{CLUSTER}/etcd-peers/eu-west-1a"))
        .body(b"10.0.32.10\n".to_vec().into())
        .send()
        .await
        .unwrap();
    // A backup taken on schedule: every Secret of the cluster, readable by no instance.
    for object in ["snapshot.db", "backup.json"] {
        s3(&admin)
            .put_object()
            .bucket(BUCKET)
            .key(format!(
                "{PREFIX}/{CLUSTER}/backups/etcd/20261201T000000Z/{object}"
            ))
            .body(b"etcd snapshot".to_vec().into())
            .send()
            .await
            .unwrap();
    }
    // A restore staged for the members: the request and its copy of the snapshot, which the
    // members may read (and nothing more); no worker may.
    for object in ["request", "20261201T010000Z.db"] {
        s3(&admin)
            .put_object()
            .bucket(BUCKET)
            .key(format!("{PREFIX}/{CLUSTER}/etcd-restore/{object}"))
            .body(b"staged restore".to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let listed = s3(&admin)
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(format!("{PREFIX}/{CLUSTER}/"))
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|object| object.key())
        .map(|key| {
            key.strip_prefix(&format!("{PREFIX}/{CLUSTER}/"))
                .unwrap()
                .to_string()
        })
        .collect();
    for secret in [
        "backups/etcd/20261201T000000Z/snapshot.db",
        "pki/ca.pem",
        "pki/etcd-ca.pem",
        "pki/bootstrap-token.pem",
        "control-plane/eu-west-1a/bundle.sh",
    ] {
        assert!(
            keys.iter().any(|key| key == secret),
            "{secret} not in {keys:?}"
        );
    }

    let expected: [(&str, &[&str]); 3] = [
        (
            "control-plane.iam.example.com",
            &[
                "control-plane/eu-west-1a/bundle.sh",
                "etcd-peers/_formed",
                "etcd-peers/eu-west-1a",
                "etcd-restore/20261201T010000Z.db",
                "etcd-restore/request",
            ],
        ),
        (
            "nodes-workers.iam.example.com",
            &["node-groups/workers/bundle.sh"],
        ),
        ("nodes-gpu.iam.example.com", &["node-groups/gpu/bundle.sh"]),
    ];
    for (role, may_read) in expected {
        let credentials = assume(&admin, &moto, role).await;
        let client = s3(&credentials);
        let read = readable(&client, &keys).await;
        let wanted: BTreeSet<String> = may_read.iter().map(ToString::to_string).collect();
        assert_eq!(
            read, wanted,
            "{role} reads exactly its own part of {keys:?}"
        );

        // The leading member puts its scheduled backups; no worker can (nor read any).
        assert_eq!(
            may_write(&client, "backups/etcd/20261201T001500Z/snapshot.db").await,
            role.starts_with("control-plane"),
            "{role} writing a backup"
        );
        assert_eq!(
            may_write(&client, "etcd-status/eu-west-1b").await,
            role.starts_with("control-plane"),
            "{role}: only control-plane members report their etcd"
        );
        let publishes = may_write(&client, "etcd-peers/eu-west-1b").await;
        assert_eq!(
            publishes,
            role.starts_with("control-plane"),
            "{role}: only control-plane members publish their address"
        );
        // Each reports its instances' boots under its own name only.
        let reports = [
            (
                "control-plane",
                "node-status/control-plane/eu-west-1a/ip-10-0-32-10",
            ),
            (
                "nodes-workers",
                "node-status/node-groups/workers/ip-10-0-33-10",
            ),
            ("nodes-gpu", "node-status/node-groups/gpu/ip-10-0-34-10"),
        ];
        for (owner, key) in reports {
            assert_eq!(
                may_write(&client, key).await,
                role.starts_with(&format!("{owner}.")),
                "{role} writing {key}"
            );
        }
        for key in [
            "config.yaml",
            "pki/ca.pem",
            "control-plane/eu-west-1a/bundle.sh",
            "node-groups/workers/bundle.sh",
            // Only rafter stages a restore.
            "etcd-restore/request",
            "etcd-restore/20261201T020000Z.db",
        ] {
            assert!(!may_write(&client, key).await, "{role} may write {key}");
        }
        // Only a control-plane member looks for its etcd volume; no worker can list volumes.
        let described = aws_sdk_ec2::Client::new(&credentials)
            .describe_volumes()
            .send()
            .await;
        assert_eq!(
            described.is_ok(),
            role.starts_with("control-plane"),
            "{role} describing volumes: {described:?}"
        );
        // No worker can take the cluster's etcd data by attaching a member's volume.
        if !role.starts_with("control-plane") {
            let attached = aws_sdk_ec2::Client::new(&credentials)
                .attach_volume()
                .volume_id(&etcd_volume)
                .instance_id(&foreign.instance)
                .device("/dev/xvdu")
                .send()
                .await;
            assert_eq!(
                refusal(attached),
                Err("AccessDenied".to_string()),
                "{role} must not attach an etcd volume"
            );
        }
        cannot_seize(role, &credentials, &foreign).await;
    }
}

/// What the AWS add-ons' statements allow, conditions included: the control-plane and
/// node-group policies rafter renders for a cluster, evaluated request by request with an IAM
/// policy simulator (`@cloud-copilot/iam-simulate`, `scripts/iam-simulate`), once with every
/// add-on on, once with each alone and once with none. Each case says which add-on needs it;
/// with that add-on off, or for a node group's role, it must be refused.
mod iam_conditions {
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::process::{Command, Stdio};

    use rafter::graph::resources::Resource;
    use rafter::spec::{Addons, Switch};
    use serde_json::{Value, json};

    const CLUSTER: &str = "c.example.com";
    const OTHER: &str = "other.example.com";
    const ACCOUNT: &str = "123456789012";

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Needs {
        CloudController,
        EbsCsi,
        Autoscaler,
        TerminationHandler,
        /// rafter's own statements, whatever the add-ons.
        Always,
        Never,
    }

    struct Case {
        what: &'static str,
        needs: Needs,
        action: &'static str,
        resource: String,
        context: Value,
    }

    fn owned(cluster: &str) -> String {
        format!("kubernetes.io/cluster/{cluster}")
    }

    fn arn(service: &str, resource: &str) -> String {
        format!("arn:aws:{service}:eu-west-1:{ACCOUNT}:{resource}")
    }

    fn resource_tags(tags: &[(&str, &str)]) -> Value {
        let mut context = serde_json::Map::new();
        for (key, value) in tags {
            context.insert(format!("aws:ResourceTag/{key}"), json!(value));
        }
        Value::Object(context)
    }

    fn request_tags(tags: &[(&str, &str)]) -> Value {
        let mut context = serde_json::Map::new();
        for (key, value) in tags {
            context.insert(format!("aws:RequestTag/{key}"), json!(value));
        }
        context.insert(
            "aws:TagKeys".to_string(),
            json!(tags.iter().map(|(key, _)| *key).collect::<Vec<_>>()),
        );
        Value::Object(context)
    }

    fn cases() -> Vec<Case> {
        let this = owned(CLUSTER);
        let other = owned(OTHER);
        let this_tag = (this.as_str(), "owned");
        let other_tag = (other.as_str(), "owned");
        let csi = ("ebs.csi.aws.com/cluster", "true");
        let etcd = [
            this_tag,
            ("rafter.dev/cluster", CLUSTER),
            ("rafter.dev/role", "etcd"),
        ];
        let control_plane_instance = [
            this_tag,
            ("rafter.dev/cluster", CLUSTER),
            ("rafter.dev/role", "control-plane"),
        ];
        let worker_instance = [
            this_tag,
            ("rafter.dev/cluster", CLUSTER),
            ("rafter.dev/role", "node"),
        ];
        let group = arn("ec2", "security-group/sg-0123456789abcdef0");
        let volume = arn("ec2", "volume/vol-0123456789abcdef0");
        let instance = arn("ec2", "instance/i-0123456789abcdef0");
        let network_lb = arn(
            "elasticloadbalancing",
            "loadbalancer/net/a1b2/0123456789abcdef",
        );
        let asg = |name: &str| {
            arn(
                "autoscaling",
                &format!(
                    "autoScalingGroup:0f1e2d3c-aaaa-bbbb-cccc-000000000000:autoScalingGroupName/{name}"
                ),
            )
        };
        let case = |what, needs, action, resource: &str, context: Value| Case {
            what,
            needs,
            action,
            resource: resource.to_string(),
            context,
        };
        vec![
            // The cloud controller: load balancers for Services, on this cluster's resources.
            case(
                "describe load balancers",
                Needs::CloudController,
                "elasticloadbalancing:DescribeLoadBalancers",
                "*",
                json!({}),
            ),
            case(
                "describe volumes",
                Needs::Always,
                "ec2:DescribeVolumes",
                "*",
                json!({}),
            ),
            case(
                "open this cluster's group",
                Needs::CloudController,
                "ec2:AuthorizeSecurityGroupIngress",
                &group,
                resource_tags(&[this_tag]),
            ),
            case(
                "open another cluster's group",
                Needs::Never,
                "ec2:AuthorizeSecurityGroupIngress",
                &group,
                resource_tags(&[other_tag]),
            ),
            case(
                "open an untagged group",
                Needs::Never,
                "ec2:AuthorizeSecurityGroupIngress",
                &group,
                json!({}),
            ),
            case(
                "delete this cluster's group",
                Needs::CloudController,
                "ec2:DeleteSecurityGroup",
                &group,
                resource_tags(&[this_tag]),
            ),
            case(
                "delete another cluster's group",
                Needs::Never,
                "ec2:DeleteSecurityGroup",
                &group,
                resource_tags(&[other_tag]),
            ),
            case(
                "create a group tagged as this cluster's",
                Needs::CloudController,
                "ec2:CreateSecurityGroup",
                &group,
                request_tags(&[this_tag]),
            ),
            case(
                "create an untagged group",
                Needs::Never,
                "ec2:CreateSecurityGroup",
                &group,
                json!({}),
            ),
            case(
                "create a group in this cluster's VPC",
                Needs::CloudController,
                "ec2:CreateSecurityGroup",
                &arn("ec2", "vpc/vpc-0123456789abcdef0"),
                resource_tags(&[this_tag]),
            ),
            case(
                "create a group in another VPC",
                Needs::Never,
                "ec2:CreateSecurityGroup",
                &arn("ec2", "vpc/vpc-0123456789abcdef0"),
                resource_tags(&[other_tag]),
            ),
            case(
                "tag a group as it is created",
                Needs::CloudController,
                "ec2:CreateTags",
                &group,
                json!({ "ec2:CreateAction": "CreateSecurityGroup" }),
            ),
            case(
                "tag an existing group of this cluster",
                Needs::Never,
                "ec2:CreateTags",
                &group,
                resource_tags(&[this_tag]),
            ),
            case(
                "create a load balancer tagged as this cluster's",
                Needs::CloudController,
                "elasticloadbalancing:CreateLoadBalancer",
                &network_lb,
                request_tags(&[this_tag]),
            ),
            case(
                "create an untagged load balancer",
                Needs::Never,
                "elasticloadbalancing:CreateLoadBalancer",
                &network_lb,
                json!({}),
            ),
            case(
                "delete this cluster's load balancer",
                Needs::CloudController,
                "elasticloadbalancing:DeleteLoadBalancer",
                &network_lb,
                resource_tags(&[this_tag]),
            ),
            case(
                "delete another cluster's load balancer",
                Needs::Never,
                "elasticloadbalancing:DeleteLoadBalancer",
                &network_lb,
                resource_tags(&[other_tag]),
            ),
            case(
                "the load-balancing service-linked role",
                Needs::CloudController,
                "iam:CreateServiceLinkedRole",
                &format!(
                    "arn:aws:iam::{ACCOUNT}:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing"
                ),
                json!({ "iam:AWSServiceName": "elasticloadbalancing.amazonaws.com" }),
            ),
            case(
                "another service's linked role",
                Needs::Never,
                "iam:CreateServiceLinkedRole",
                &format!(
                    "arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
                ),
                json!({ "iam:AWSServiceName": "autoscaling.amazonaws.com" }),
            ),
            // The EBS CSI driver: only volumes it created for this cluster.
            case(
                "create a volume with the driver's tags",
                Needs::EbsCsi,
                "ec2:CreateVolume",
                &volume,
                request_tags(&[this_tag, csi]),
            ),
            case(
                "create a volume without the driver's tag",
                Needs::Never,
                "ec2:CreateVolume",
                &volume,
                request_tags(&[this_tag]),
            ),
            case(
                "tag a volume as it is created",
                Needs::EbsCsi,
                "ec2:CreateTags",
                &volume,
                json!({ "ec2:CreateAction": "CreateVolume" }),
            ),
            case(
                "tag an etcd volume (to make it the driver's)",
                Needs::Never,
                "ec2:CreateTags",
                &volume,
                resource_tags(&etcd),
            ),
            case(
                "attach a driver volume",
                Needs::EbsCsi,
                "ec2:AttachVolume",
                &volume,
                resource_tags(&[this_tag, csi]),
            ),
            case(
                "attach to a worker",
                Needs::EbsCsi,
                "ec2:AttachVolume",
                &instance,
                resource_tags(&worker_instance),
            ),
            case(
                "attach to another cluster's instance",
                Needs::Never,
                "ec2:AttachVolume",
                &instance,
                resource_tags(&[other_tag]),
            ),
            case(
                "attach another cluster's driver volume",
                Needs::Never,
                "ec2:AttachVolume",
                &volume,
                resource_tags(&[other_tag, csi]),
            ),
            case(
                "delete a driver volume",
                Needs::EbsCsi,
                "ec2:DeleteVolume",
                &volume,
                resource_tags(&[this_tag, csi]),
            ),
            case(
                "delete an etcd volume",
                Needs::Never,
                "ec2:DeleteVolume",
                &volume,
                resource_tags(&etcd),
            ),
            case(
                "detach an etcd volume",
                Needs::Never,
                "ec2:DetachVolume",
                &volume,
                resource_tags(&etcd),
            ),
            case(
                "modify an etcd volume",
                Needs::Never,
                "ec2:ModifyVolume",
                &volume,
                resource_tags(&etcd),
            ),
            // rafter's own: a member attaches its etcd volume to itself.
            case(
                "attach an etcd volume",
                Needs::Always,
                "ec2:AttachVolume",
                &volume,
                resource_tags(&etcd),
            ),
            case(
                "attach to a control-plane instance",
                Needs::Always,
                "ec2:AttachVolume",
                &instance,
                resource_tags(&control_plane_instance),
            ),
            // The cluster autoscaler: the node groups' sizes, nothing else.
            case(
                "resize a node group",
                Needs::Autoscaler,
                "autoscaling:SetDesiredCapacity",
                &asg(&format!("nodes-workers.{CLUSTER}")),
                resource_tags(&[this_tag]),
            ),
            case(
                "end an instance of a node group",
                Needs::Autoscaler,
                "autoscaling:TerminateInstanceInAutoScalingGroup",
                &asg(&format!("nodes-gpu.{CLUSTER}")),
                resource_tags(&[this_tag]),
            ),
            case(
                "resize a control-plane member's group",
                Needs::Never,
                "autoscaling:SetDesiredCapacity",
                &asg(&format!("control-plane-eu-west-1a.{CLUSTER}")),
                resource_tags(&[this_tag]),
            ),
            case(
                "resize a same-named group of another cluster",
                Needs::Never,
                "autoscaling:SetDesiredCapacity",
                &asg(&format!("nodes-workers.{CLUSTER}")),
                resource_tags(&[other_tag]),
            ),
            case(
                "change a node group's bounds",
                Needs::Never,
                "autoscaling:UpdateAutoScalingGroup",
                &asg(&format!("nodes-workers.{CLUSTER}")),
                resource_tags(&[this_tag]),
            ),
            // The node termination handler: its own queue, lifecycle actions of the cluster's
            // node-running groups.
            case(
                "complete a control-plane member's lifecycle action",
                Needs::TerminationHandler,
                "autoscaling:CompleteLifecycleAction",
                &asg(&format!("control-plane-eu-west-1a.{CLUSTER}")),
                resource_tags(&[this_tag]),
            ),
            case(
                "complete a node group's lifecycle action",
                Needs::TerminationHandler,
                "autoscaling:CompleteLifecycleAction",
                &asg(&format!("nodes-gpu.{CLUSTER}")),
                resource_tags(&[this_tag]),
            ),
            case(
                "complete a lifecycle action of a same-named group of another cluster",
                Needs::Never,
                "autoscaling:CompleteLifecycleAction",
                &asg(&format!("nodes-gpu.{CLUSTER}")),
                resource_tags(&[other_tag]),
            ),
            case(
                "complete a lifecycle action of a group rafter did not make",
                Needs::Never,
                "autoscaling:CompleteLifecycleAction",
                &asg("batch-workers"),
                resource_tags(&[this_tag]),
            ),
            case(
                "receive from the cluster's queue",
                Needs::TerminationHandler,
                "sqs:ReceiveMessage",
                &arn("sqs", "nth-c-example-com"),
                json!({}),
            ),
            case(
                "delete from the cluster's queue",
                Needs::TerminationHandler,
                "sqs:DeleteMessage",
                &arn("sqs", "nth-c-example-com"),
                json!({}),
            ),
            case(
                "receive from another cluster's queue",
                Needs::Never,
                "sqs:ReceiveMessage",
                &arn("sqs", "nth-other-example-com"),
                json!({}),
            ),
            case(
                "send to the cluster's queue",
                Needs::Never,
                "sqs:SendMessage",
                &arn("sqs", "nth-c-example-com"),
                json!({}),
            ),
            case(
                "purge the cluster's queue",
                Needs::Never,
                "sqs:PurgeQueue",
                &arn("sqs", "nth-c-example-com"),
                json!({}),
            ),
            // Never anyone's.
            case(
                "start instances",
                Needs::Never,
                "ec2:RunInstances",
                &instance,
                request_tags(&[this_tag]),
            ),
            case(
                "end an instance",
                Needs::Never,
                "ec2:TerminateInstances",
                &instance,
                resource_tags(&worker_instance),
            ),
            case(
                "change a role",
                Needs::Never,
                "iam:PutRolePolicy",
                &format!("arn:aws:iam::{ACCOUNT}:role/control-plane.{CLUSTER}"),
                json!({}),
            ),
        ]
    }

    /// The inline policies of a cluster with `addons`, by role (`control-plane`,
    /// `nodes-workers`, `nodes-gpu`).
    fn policies(addons: Addons) -> BTreeMap<String, Value> {
        let yaml = format!(
            "apiVersion: rafter.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: {CLUSTER}\nspec:\n  networking:\n    zones: [eu-west-1a]\n  sshAccess:\n    publicKey: {}\n  nodeGroups:\n    - {{ name: workers }}\n    - {{ name: gpu, minSize: 0, maxSize: 2 }}\n",
            super::common::EXAMPLE_PUBLIC_KEY
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cluster.yaml");
        std::fs::write(&file, yaml).unwrap();
        let sources = rafter::spec::SpecSources {
            file: Some(file),
            ..rafter::spec::SpecSources::default()
        };
        let mut cluster = rafter::spec::load(&sources, Some("s3://bucket/prefix/c.example.com"))
            .unwrap()
            .cluster;
        cluster.spec.addons = Some(addons);
        let graph = rafter::model::build_graph(&cluster).unwrap();
        graph
            .nodes()
            .iter()
            .filter_map(|node| match &node.resource {
                Resource::IamRolePolicy(policy) => Some((
                    node.address.name.clone(),
                    serde_json::from_str(&policy.policy.content).unwrap(),
                )),
                _ => None,
            })
            .collect()
    }

    /// Each case's decision under `policy`: `Allowed`, `ImplicitlyDenied` or
    /// `ExplicitlyDenied`, and the statements that allowed it.
    fn simulate(policy: &Value, cases: &[Case]) -> Vec<(String, Vec<String>)> {
        let input = json!({
            "account": ACCOUNT,
            "cases": cases.iter().map(|case| json!({
                "policies": [policy],
                "action": case.action,
                "resource": case.resource,
                "context": case.context,
            })).collect::<Vec<_>>(),
        });
        let script = super::common::tools::venv()
            .parent()
            .unwrap()
            .join("iam-simulate/simulate.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "node {}: {error} (scripts/setup-tools.sh installs it)",
                    script.display()
                )
            });
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "the simulator refused the cases:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let decisions: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(decisions.len(), cases.len());
        decisions
            .iter()
            .map(|decision| {
                (
                    decision["decision"].as_str().unwrap().to_string(),
                    decision["detail"]["allowedBy"]
                        .as_array()
                        .map(|sids| {
                            sids.iter()
                                .map(|sid| {
                                    sid.as_str()
                                        .unwrap()
                                        .trim_start_matches("policy0#")
                                        .to_string()
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    fn switch(enabled: bool) -> Switch {
        Switch { enabled }
    }

    #[test]
    fn each_addon_may_do_what_it_needs_to_this_clusters_resources_and_nothing_more() {
        let cases = cases();
        let configurations = [
            ("all on", true, true, true, true),
            ("cloud controller only", true, false, false, false),
            ("EBS CSI driver only", false, true, false, false),
            ("autoscaler only", false, false, true, false),
            ("termination handler only", false, false, false, true),
            ("none", false, false, false, false),
        ];
        for (label, ccm, ebs, autoscaler, termination) in configurations {
            let addons = Addons {
                cloud_controller_manager: switch(ccm),
                ebs_csi_driver: switch(ebs),
                cluster_autoscaler: switch(autoscaler),
                node_termination_handler: switch(termination),
            };
            let policies = policies(addons);
            assert_eq!(
                policies.keys().collect::<Vec<_>>(),
                ["control-plane", "nodes-gpu", "nodes-workers"],
                "{label}"
            );
            for (role, policy) in &policies {
                let decisions = simulate(policy, &cases);
                for (case, (decision, allowed_by)) in cases.iter().zip(&decisions) {
                    let on = match case.needs {
                        Needs::CloudController => ccm,
                        Needs::EbsCsi => ebs,
                        Needs::Autoscaler => autoscaler,
                        Needs::TerminationHandler => termination,
                        Needs::Always => true,
                        Needs::Never => false,
                    };
                    let expected = if on && role == "control-plane" {
                        "Allowed"
                    } else {
                        "ImplicitlyDenied"
                    };
                    assert_eq!(
                        decision, expected,
                        "{label}, {role}: {} ({} on {}) allowed by {allowed_by:?}",
                        case.what, case.action, case.resource
                    );
                    // An etcd volume is attachable by rafter's own statement only, never by
                    // an add-on's (the add-ons' instance grant covers every instance).
                    if case.needs == Needs::Always
                        && role == "control-plane"
                        && case.resource.contains(":volume/")
                    {
                        assert_eq!(allowed_by, &["AttachEtcdVolumes"], "{label}: {}", case.what);
                    }
                }
            }
        }
    }
}
