//! Real AWS API errors (from the emulator) are classified for the apply engine by code.

mod common;

use rafter::apply::ErrorClass;
use rafter::aws::provision_error;

#[tokio::test]
async fn emulator_errors_are_classified_by_code() {
    let ec2 = aws_sdk_ec2::Client::new(&common::moto::sdk_config());

    let missing = ec2
        .describe_vpcs()
        .vpc_ids("vpc-0000000000000000a")
        .send()
        .await
        .unwrap_err();
    let error = provision_error(&missing);
    assert_eq!(
        (error.code.as_str(), error.class),
        ("InvalidVpcID.NotFound", ErrorClass::Transient),
        "{error}"
    );

    let too_big = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/8")
        .send()
        .await
        .unwrap_err();
    let error = provision_error(&too_big);
    assert_eq!(error.class, ErrorClass::Permanent, "{error}");
    assert_eq!(error.code, "InvalidVpc.Range", "{error}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_transient() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = common::moto::sdk_config()
        .into_builder()
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .build();
    let retry = aws_sdk_ec2::config::retry::RetryConfig::standard().with_max_attempts(1);
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&config)
            .retry_config(retry)
            .build(),
    );
    let error = provision_error(&ec2.describe_vpcs().send().await.unwrap_err());
    assert_eq!(
        (error.code.as_str(), error.class),
        ("Unreachable", ErrorClass::Transient),
        "{error}"
    );
}
