//! The nodes' S3 client (`templates/node/aws.sh.j2`, curl signing with the instance role),
//! run for real in bash: addresses in every partition and for dotted bucket names, keys with
//! characters Debian 12's curl would sign differently, and a state bucket in another region
//! than the instance, found through S3's own `x-amz-bucket-region` answer (AWS API emulator).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::imds::Imds;

/// The helpers as a node gets them, written to `dir`.
fn helpers(dir: &Path) -> PathBuf {
    let path = dir.join("aws.sh");
    std::fs::write(&path, rafter::templates::render("node/aws.sh", ()).unwrap()).unwrap();
    path
}

/// Runs `script` in bash after sourcing the helpers, with `env` (and no endpoint override
/// from outside); its standard output.
fn bash(helpers: &Path, script: &str, env: &[(&str, &str)]) -> String {
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail; source {}; {script}",
            helpers.display()
        ))
        .env_remove("RAFTER_S3_ENDPOINT")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn object_addresses_follow_the_partition_the_bucket_name_and_sigv4_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let helpers = helpers(dir.path());
    for (bucket, key, region, expected) in [
        (
            "rafter-state",
            "clusters/a.example.com/node-groups/workers/bundle.sh",
            "eu-west-1",
            "https://rafter-state.s3.eu-west-1.amazonaws.com/clusters/a.example.com/node-groups/workers/bundle.sh",
        ),
        // A virtual-hosted name with dots fails TLS: `*.s3.…` matches one label only.
        (
            "state.example.com",
            "c/bundle.sh",
            "us-east-2",
            "https://s3.us-east-2.amazonaws.com/state.example.com/c/bundle.sh",
        ),
        (
            "rafter-state",
            "c/bundle.sh",
            "cn-north-1",
            "https://rafter-state.s3.cn-north-1.amazonaws.com.cn/c/bundle.sh",
        ),
        (
            "rafter-state",
            "c/bundle.sh",
            "us-gov-west-1",
            "https://rafter-state.s3.us-gov-west-1.amazonaws.com/c/bundle.sh",
        ),
        (
            "rafter-state",
            "team=a+b,c:d@e f/bundle.sh",
            "eu-west-1",
            "https://rafter-state.s3.eu-west-1.amazonaws.com/team%3Da%2Bb%2Cc%3Ad%40e%20f/bundle.sh",
        ),
    ] {
        let url = bash(
            &helpers,
            &format!("s3_object_url '{bucket}' '{key}' '{region}'"),
            &[],
        );
        assert_eq!(url, expected, "{bucket} {key} {region}");
    }
}

#[tokio::test]
async fn a_bucket_in_another_region_with_a_dotted_name_and_odd_keys_is_read() {
    let moto = common::moto::moto();
    // The bucket is made where it lives, as S3 demands.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&common::moto::sdk_config())
            .region(aws_sdk_s3::config::Region::new("us-west-2"))
            .force_path_style(true)
            .build(),
    );
    let bucket = "rafter.state.elsewhere";
    s3.create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let key = "team=a+b,c:d@e/prod.example.com/node-groups/workers/bundle.sh";
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(b"echo the bundle\n".to_vec().into())
        .send()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let helpers = helpers(dir.path());
    let imds = Imds::start("127.0.0.1");
    let run_dir = dir.path().join("run");
    let env = [
        ("RAFTER_IMDS_ENDPOINT", imds.endpoint.as_str()),
        ("RAFTER_S3_ENDPOINT", moto.endpoint.as_str()),
        ("RAFTER_RUN_DIR", run_dir.to_str().unwrap()),
    ];
    let run = |script: &str| bash(&helpers, script, &env);
    // The instance is in eu-west-1 (the metadata stand-in's region); S3 says where the
    // bucket is, and that answer is kept for the boot.
    assert_eq!(
        run(&format!("bucket_region {bucket} eu-west-1")),
        "us-west-2\n"
    );
    assert_eq!(
        std::fs::read_to_string(run_dir.join(format!("s3-region-{bucket}"))).unwrap(),
        "us-west-2\n"
    );
    assert_eq!(
        run(&format!("s3_get 's3://{bucket}/{key}' -")),
        "echo the bundle\n"
    );
    // And written back the same way (members publish their address so).
    run(&format!(
        "printf '10.0.0.9\\n' >{dir}/peer; s3_put 's3://{bucket}/{key}.peer' {dir}/peer",
        dir = dir.path().display()
    ));
    let stored = s3
        .get_object()
        .bucket(bucket)
        .key(format!("{key}.peer"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        stored.body.collect().await.unwrap().into_bytes().as_ref(),
        b"10.0.0.9\n"
    );
}
