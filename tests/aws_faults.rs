//! Clusters applied and deleted through a proxy that fails a fifth of the AWS API requests
//! (alternately throttling 503s and internal 500s, in each service's error format): the
//! SDK's and the engine's retries converge anyway, without duplicate resources, and a second
//! plan has nothing left to do. First, the proxy's injected errors reach rafter as the
//! intended AWS error codes, classified transient, for every service rafter calls.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use common::apply::{Memory, options};
use common::inventory::{tagged_counts, tagged_leftovers, wanted_counts};
use common::proxy::{FaultConfig, FaultProxy};
use rafter::apply::{self, ApplyReport, ErrorClass, ProvisionError, Reporter};
use rafter::apply::{ApplyOptions, RetryPolicy};
use rafter::aws::provision_error;
use rafter::graph::{Address, ResourceGraph, ResourceKind};
use rafter::model::build_graph;
use rafter::plan::{self, Action};
use rafter::spec;

const FAULT_RATE: f64 = 0.2;
/// Runs allowed to converge: the engine retries transient errors itself, so one should do.
const MAX_RUNS: usize = 2;

fn faulty_proxy(seed: u64) -> FaultProxy {
    FaultProxy::start(
        &common::moto::moto().endpoint,
        FaultConfig {
            fault_rate: FAULT_RATE,
            seed,
            ..FaultConfig::default()
        },
    )
}

/// The emulator answers at once: back off briefly, so many injected faults cost seconds.
fn quick_retries() -> ApplyOptions {
    ApplyOptions {
        retry: RetryPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(400),
            ..options().retry
        },
        ..options()
    }
}

/// Remembers the error of every retry the engine made (the SDK's own retries come before).
#[derive(Default)]
struct Retries(Mutex<Vec<String>>);

impl Retries {
    fn codes(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl Reporter for Retries {
    fn retrying(&self, address: &Address, attempt: u32, error: &ProvisionError) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{address} #{attempt}: {}", error.code));
    }
}

/// The `dev-aws` example under another name.
fn dev_graph(name: &str) -> ResourceGraph {
    example_graph("dev-aws", name)
}

/// An example profile's graph under another name.
fn example_graph(profile: &str, name: &str) -> ResourceGraph {
    let mut sources = common::example_sources(profile);
    sources.flags.name = Some(name.into());
    build_graph(&spec::load(&sources, None).unwrap().cluster).unwrap()
}

/// Plans `graph` against `memory` and applies it through `proxy`.
async fn apply_through(
    proxy: &FaultProxy,
    name: &str,
    graph: &ResourceGraph,
    memory: &Memory,
    retries: &Retries,
) -> ApplyReport {
    let recorded = memory.records();
    let provisioner = memory.provisioner(&proxy.sdk_config(), name);
    let plan = plan::diff(name, graph, &recorded).unwrap();
    apply::apply(
        graph,
        &plan,
        &recorded,
        &provisioner,
        memory,
        retries,
        quick_retries(),
    )
    .await
    .unwrap()
}

/// Deletes everything `memory` holds through `proxy`.
async fn destroy_through(
    proxy: &FaultProxy,
    name: &str,
    memory: &Memory,
    retries: &Retries,
) -> ApplyReport {
    let recorded = memory.records();
    let provisioner = memory.provisioner(&proxy.sdk_config(), name);
    let plan = plan::diff::destroy_plan(name, &recorded).unwrap();
    apply::apply(
        &ResourceGraph::new(),
        &plan,
        &recorded,
        &provisioner,
        memory,
        retries,
        quick_retries(),
    )
    .await
    .unwrap()
}

/// Runs `attempt` until its report succeeds, at most [`MAX_RUNS`] times; returns the runs
/// it took and every report.
async fn until_converged<F, Fut>(mut attempt: F) -> (usize, Vec<ApplyReport>)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ApplyReport>,
{
    let mut reports = Vec::new();
    for run in 1..=MAX_RUNS {
        let report = attempt().await;
        let succeeded = report.succeeded();
        reports.push(report);
        if succeeded {
            return (run, reports);
        }
    }
    panic!("did not converge in {MAX_RUNS} runs: {reports:#?}");
}

/// Two requests on one kept-alive connection, the second with a chunked body: both reach the
/// emulator and come back with a `Content-Length`.
#[test]
fn the_proxy_keeps_connections_alive_and_decodes_chunked_requests() {
    use std::io::{BufRead, BufReader, Read, Write};

    let proxy = FaultProxy::start(&common::moto::moto().endpoint, FaultConfig::default());
    let address = proxy.endpoint().trim_start_matches("http://").to_string();
    let stream = std::net::TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let body = "Action=DescribeVpcs&Version=2016-11-15";
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/eu-west-1/ec2/aws4_request, \
         SignedHeaders=host, Signature=0\r\n"
    );
    let (first, second) = body.split_at(10);
    let requests = [
        format!("{head}Content-Length: {}\r\n\r\n{body}", body.len()),
        format!(
            "{head}Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
            first.len(),
            second.len()
        ),
    ];
    for request in requests {
        writer.write_all(request.as_bytes()).unwrap();
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut length = None;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = Some(value.trim().parse::<usize>().unwrap());
            }
        }
        let mut answer = vec![0; length.expect("a Content-Length")];
        reader.read_exact(&mut answer).unwrap();
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.contains("DescribeVpcsResponse"), "{answer}");
    }
    assert_eq!((proxy.connections(), proxy.forwarded()), (1, 2));
    let operations = proxy.operations();
    assert_eq!(
        operations.get("ec2 DescribeVpcs"),
        Some(&2),
        "{operations:?}"
    );
}

/// With every request failed and the SDK's own retries off, each service's first call gets
/// the injected throttling error and its second the internal error: both must arrive as the
/// intended codes (so the wire formats parse) and be transient for the engine.
#[tokio::test]
async fn injected_faults_parse_as_transient_aws_errors_for_every_service() {
    let proxy = FaultProxy::start(
        &common::moto::moto().endpoint,
        FaultConfig {
            fault_rate: 1.0,
            seed: 7,
            ..FaultConfig::default()
        },
    );
    let config = proxy
        .sdk_config()
        .to_builder()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let route53 = aws_sdk_route53::Client::new(&config);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let mut seen = Vec::new();
    for _ in 0..2 {
        let error = provision_error(&ec2.describe_vpcs().send().await.unwrap_err());
        seen.push(("ec2", error.code, error.class));
    }
    for _ in 0..2 {
        let error = provision_error(&iam.list_roles().send().await.unwrap_err());
        seen.push(("iam", error.code, error.class));
    }
    for _ in 0..2 {
        let error = provision_error(&elb.describe_load_balancers().send().await.unwrap_err());
        seen.push(("elbv2", error.code, error.class));
    }
    for _ in 0..2 {
        let error = provision_error(
            &autoscaling
                .describe_auto_scaling_groups()
                .send()
                .await
                .unwrap_err(),
        );
        seen.push(("autoscaling", error.code, error.class));
    }
    for _ in 0..2 {
        let error = provision_error(&route53.list_hosted_zones().send().await.unwrap_err());
        seen.push(("route53", error.code, error.class));
    }
    for _ in 0..2 {
        let error = provision_error(&s3.list_buckets().send().await.unwrap_err());
        seen.push(("s3", error.code, error.class));
    }
    // Faults alternate: throttling first, then an internal error.
    let expected = [
        ("ec2", "RequestLimitExceeded"),
        ("ec2", "InternalError"),
        ("iam", "Throttling"),
        ("iam", "InternalFailure"),
        ("elbv2", "Throttling"),
        ("elbv2", "InternalFailure"),
        ("autoscaling", "Throttling"),
        ("autoscaling", "InternalFailure"),
        ("route53", "Throttling"),
        ("route53", "InternalFailure"),
        ("s3", "SlowDown"),
        ("s3", "InternalError"),
    ]
    .map(|(service, code)| (service, code.to_string(), ErrorClass::Transient));
    assert_eq!(seen, expected);
    assert_eq!((proxy.faults(), proxy.forwarded()), (12, 0));
}

#[tokio::test]
async fn dev_cluster_converges_through_faults_without_duplicates() {
    let name = "faults-dev.example.com";
    let graph = dev_graph(name);
    let memory = Memory::default();
    let proxy = faulty_proxy(0x5eed_0001);

    let retries = Retries::default();
    let (runs, reports) =
        until_converged(|| apply_through(&proxy, name, &graph, &memory, &retries)).await;
    let last = reports.last().unwrap();
    let made: usize = reports
        .iter()
        .map(|report| report.done.len() - read_count(report))
        .sum();
    let reads = read_count(last);
    eprintln!(
        "dev-aws through faults: converged in {runs} run(s); proxy forwarded {}, injected {} \
         faults over {} connections; engine retries {:?}",
        proxy.forwarded(),
        proxy.faults(),
        proxy.connections(),
        retries.codes()
    );
    // The SDK kept connections alive through the proxy, injected errors included.
    assert!(
        proxy.connections() < proxy.counts().total(),
        "{} connections for {} requests",
        proxy.connections(),
        proxy.counts().total()
    );
    assert!(
        proxy.faults() > 0,
        "no fault was injected in {} requests: the test proves nothing",
        proxy.forwarded()
    );
    assert_eq!(made + reads, graph.len(), "{reports:#?}");

    // Nothing left to do: every resource recorded and unchanged.
    let again = plan::diff(name, &graph, &memory.records()).unwrap();
    let pending: Vec<_> = again
        .changes
        .iter()
        .filter(|change| change.action != Action::Read)
        .map(|change| format!("{} {}", change.action.verb(), change.address))
        .collect();
    assert_eq!(pending, Vec::<String>::new());
    assert!(!again.summary.has_changes(), "{:?}", again.summary);

    // No duplicates: exactly what the graph wants carries the cluster's tag.
    assert_eq!(tagged_counts(name).await, wanted_counts(&graph));

    // Leave the emulator clean for whatever runs next in this binary.
    let deleted = common::apply::destroy(name, &memory).await.0;
    assert!(deleted.succeeded(), "{deleted:#?}");
}

/// The worst kind of fault: the request takes effect, its answer is lost. Creates EC2 cannot
/// recognise as repeats (a VPC, a subnet, an address…) retried blindly would make
/// duplicates; rafter looks before it retries a create, and the SDK does not retry on its own.
#[tokio::test]
async fn lost_answers_to_creates_make_no_duplicates() {
    let name = "faults-lost.example.com";
    let graph = dev_graph(name);
    let memory = Memory::default();
    let proxy = FaultProxy::start(
        &common::moto::moto().endpoint,
        FaultConfig {
            fault_rate: 0.5,
            seed: 0x5eed_0003,
            lose_answers: true,
            ..FaultConfig::default()
        },
    );
    let retries = Retries::default();
    until_converged(|| apply_through(&proxy, name, &graph, &memory, &retries)).await;
    let lost = proxy.lost();
    let blind_creates = [
        "ec2 CreateVpc",
        "ec2 CreateSubnet",
        "ec2 CreateInternetGateway",
        "ec2 CreateRouteTable",
        "ec2 CreateSecurityGroup",
    ];
    assert!(
        blind_creates
            .iter()
            .any(|create| lost.contains_key(*create)),
        "no create without an idempotency key lost its answer: the test proves nothing: {lost:?}"
    );
    assert_eq!(
        tagged_counts(name).await,
        wanted_counts(&graph),
        "lost answers: {lost:?}"
    );
    let again = plan::diff(name, &graph, &memory.records()).unwrap();
    assert!(!again.summary.has_changes(), "{:?}", again.summary);
    let deleted = common::apply::destroy(name, &memory).await.0;
    assert!(deleted.succeeded(), "{deleted:#?}");
}

fn read_count(report: &ApplyReport) -> usize {
    report
        .done
        .iter()
        .filter(|(_, action)| *action == Action::Read)
        .count()
}

#[tokio::test]
async fn dev_cluster_is_deleted_through_faults() {
    let name = "faults-delete.example.com";
    let graph = dev_graph(name);
    let memory = Memory::default();
    // Made without faults: this test is about the delete.
    let (created, _) = common::apply::converge(name, &graph, &memory).await;
    assert!(created.succeeded(), "{created:#?}");
    assert_eq!(tagged_counts(name).await, wanted_counts(&graph));

    let proxy = faulty_proxy(0x5eed_0002);
    let retries = Retries::default();
    let (runs, _) = until_converged(|| destroy_through(&proxy, name, &memory, &retries)).await;
    eprintln!(
        "dev-aws delete through faults: converged in {runs} run(s); proxy forwarded {}, \
         injected {} faults; engine retries {:?}",
        proxy.forwarded(),
        proxy.faults(),
        retries.codes()
    );
    assert!(
        proxy.faults() > 0,
        "no fault was injected in {} requests: the test proves nothing",
        proxy.forwarded()
    );
    assert!(memory.records().is_empty(), "{:?}", memory.records());
    let left: BTreeMap<_, _> = tagged_counts(name)
        .await
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .collect();
    assert_eq!(left, BTreeMap::new(), "left tagged after the delete");
    // The shared inventory also covers load balancers, IAM and instances.
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
}

/// AWS's first `create --yes` almost always meets this: Auto Scaling refuses a launch
/// template whose instance profile got its role seconds ago. The proxy answers as AWS does
/// for two seconds after each `AddRoleToInstanceProfile` (and, before that, IAM does not know
/// a role made a second ago); one run still creates every group.
#[tokio::test]
async fn auto_scaling_waits_out_a_new_instance_profile() {
    let name = "faults-profile.example.com";
    let graph = dev_graph(name);
    let memory = Memory::default();
    let proxy = FaultProxy::start(
        &common::moto::moto().endpoint,
        FaultConfig {
            role_propagation: Duration::from_secs(1),
            profile_propagation: Duration::from_secs(2),
            ..FaultConfig::default()
        },
    );
    let retries = Retries::default();
    let report = apply_through(&proxy, name, &graph, &memory, &retries).await;
    assert!(report.succeeded(), "{report:#?}");
    assert!(
        proxy.propagation_refusals() > 0,
        "Auto Scaling never refused a new profile: the test proves nothing"
    );
    let codes = retries.codes();
    assert!(
        codes
            .iter()
            .any(|retry| retry.starts_with("aws_iam_instance_profile.")
                && retry.ends_with("NoSuchEntity")),
        "IAM never refused a new role: the test proves nothing: {codes:?}"
    );
    assert!(
        codes
            .iter()
            .any(|retry| retry.starts_with("aws_autoscaling_group.")
                && retry.ends_with("ValidationError")),
        "{codes:?}"
    );
    assert_eq!(tagged_counts(name).await, wanted_counts(&graph));
    let deleted = common::apply::destroy(name, &memory).await.0;
    assert!(deleted.succeeded(), "{deleted:#?}");
}

/// A new SQS queue is not usable at once: for two seconds its attribute calls answer
/// `QueueDoesNotExist`. The queue's create and its policy wait that out (one run converges)
/// and one queue is made.
#[tokio::test]
async fn a_new_queue_is_used_once_sqs_knows_it() {
    let name = "faults-queue.example.com";
    let graph = dev_graph(name).filtered(|node| {
        matches!(
            node.address.kind,
            ResourceKind::SqsQueue
                | ResourceKind::SqsQueuePolicy
                | ResourceKind::EventRule
                | ResourceKind::EventTarget
        )
    });
    let memory = Memory::default();
    let proxy = FaultProxy::start(
        &common::moto::moto().endpoint,
        FaultConfig {
            queue_propagation: Duration::from_secs(2),
            ..FaultConfig::default()
        },
    );
    let retries = Retries::default();
    let report = apply_through(&proxy, name, &graph, &memory, &retries).await;
    assert!(report.succeeded(), "{report:#?}");
    assert!(
        proxy.propagation_refusals() > 0,
        "SQS never refused a new queue: the test proves nothing"
    );
    let codes = retries.codes();
    assert!(
        codes.iter().any(|retry| retry.starts_with("aws_sqs_queue")
            && (retry.ends_with("NonExistentQueue") || retry.ends_with("QueueDoesNotExist"))),
        "{codes:?}"
    );
    assert_eq!(tagged_counts(name).await[&ResourceKind::SqsQueue], 1);
    let deleted = common::apply::destroy(name, &memory).await.0;
    assert!(deleted.succeeded(), "{deleted:#?}");
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
}

/// A new VPC is not visible at once: `ModifyVpcAttribute` answers `InvalidVpcID.NotFound` and
/// `DescribeVpcs` does not list it for a second. The retried create keeps the id it got and
/// never makes a second VPC.
#[tokio::test]
async fn a_create_keeps_its_id_while_aws_catches_up() {
    let name = "faults-consistency.example.com";
    let graph = dev_graph(name);
    let memory = Memory::default();
    let proxy = FaultProxy::start(
        &common::moto::moto().endpoint,
        FaultConfig {
            vpc_consistency: Duration::from_secs(1),
            ..FaultConfig::default()
        },
    );
    let retries = Retries::default();
    let report = apply_through(&proxy, name, &graph, &memory, &retries).await;
    assert!(report.succeeded(), "{report:#?}");
    let codes = retries.codes();
    assert!(
        codes
            .iter()
            .any(|retry| retry.starts_with("aws_vpc.main")
                && retry.ends_with("InvalidVpcID.NotFound")),
        "the VPC's follow-up was never refused: the test proves nothing: {codes:?}"
    );
    assert_eq!(
        tagged_counts(name).await,
        wanted_counts(&graph),
        "one of everything"
    );
    let deleted = common::apply::destroy(name, &memory).await.0;
    assert!(deleted.succeeded(), "{deleted:#?}");
}

/// A create whose answer is lost while describes by tag do not list it yet (both as on AWS):
/// the retry cannot find what the first attempt made, so only its idempotency token keeps it
/// from making a second. rafter derives the token, so the retry sends the same one and EC2
/// answers with the first attempt's resource: one NAT gateway, one route table per zone.
#[tokio::test]
async fn a_lost_create_is_answered_by_its_idempotency_token() {
    for (name, create) in [
        ("faults-token-nat.example.com", "CreateNatGateway"),
        ("faults-token-rtb.example.com", "CreateRouteTable"),
    ] {
        common::moto::public_zone("example.com").await;
        let graph = example_graph("ha-aws", name);
        let memory = Memory::default();
        let proxy = FaultProxy::start(
            &common::moto::moto().endpoint,
            FaultConfig {
                lose_first_answer_to: Some(create),
                listing_lag: Duration::from_secs(600),
                ..FaultConfig::default()
            },
        );
        let retries = Retries::default();
        let report = apply_through(&proxy, name, &graph, &memory, &retries).await;
        assert!(report.succeeded(), "{create}: {report:#?}");
        assert_eq!(
            proxy.lost().get(&format!("ec2 {create}")),
            Some(&1),
            "{create}'s answer was never lost: the test proves nothing"
        );
        assert!(
            proxy.lagging_answers() > 0,
            "{create}: the retry's lookup found the lost create: the test proves nothing"
        );
        assert!(
            proxy.token_answers() > 0,
            "{create}: the retry sent another token"
        );
        assert_eq!(
            tagged_counts(name).await,
            wanted_counts(&graph),
            "{create}: one of everything"
        );
        let deleted = common::apply::destroy(name, &memory).await.0;
        assert!(deleted.succeeded(), "{deleted:#?}");
    }
}

/// A NAT gateway deleted by hand, after a run whose record of it was lost: the rerun's token
/// brings back the dead gateway (EC2 answers a known token with what it made, whatever
/// became of it), and rafter makes a new one under a token naming the dead one instead of
/// waiting for a deleted gateway to become available.
#[tokio::test]
async fn a_token_that_brings_back_a_deleted_nat_gateway_makes_a_new_one() {
    let name = "faults-token-dead.example.com";
    common::moto::public_zone("example.com").await;
    let graph = example_graph("ha-aws", name);
    let memory = Memory::default();
    let proxy = FaultProxy::start(&common::moto::moto().endpoint, FaultConfig::default());
    let retries = Retries::default();
    let report = apply_through(&proxy, name, &graph, &memory, &retries).await;
    assert!(report.succeeded(), "{report:#?}");
    let nat = Address::new(ResourceKind::NatGateway, "nat-eu-west-1a");
    let nat_id = |records: &[rafter::plan::RecordedResource]| {
        records
            .iter()
            .find(|record| record.address == nat)
            .map(|record| record.outputs["id"].clone())
            .expect("the NAT gateway is recorded")
    };
    let dead = nat_id(&memory.records());
    let ec2 = aws_sdk_ec2::Client::new(&common::moto::sdk_config());
    let described = ec2
        .describe_nat_gateways()
        .nat_gateway_ids(&dead)
        .send()
        .await
        .unwrap();
    ec2.delete_nat_gateway()
        .nat_gateway_id(&dead)
        .send()
        .await
        .unwrap();
    // AWS lets go of a deleted gateway's address; the emulator needs telling.
    for gateway in described.nat_gateways() {
        for address in gateway.nat_gateway_addresses() {
            ec2.disassociate_address()
                .association_id(address.association_id().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    memory
        .0
        .lock()
        .unwrap()
        .retain(|record| record.address.kind != ResourceKind::NatGateway);

    let before = proxy.token_answers();
    let report = apply_through(&proxy, name, &graph, &memory, &retries).await;
    assert!(report.succeeded(), "{report:#?}");
    assert!(
        proxy.token_answers() > before,
        "the rerun's token was not answered from the first run: the test proves nothing"
    );
    let replacement = nat_id(&memory.records());
    assert_ne!(replacement, dead);
    assert_eq!(tagged_counts(name).await, wanted_counts(&graph));
    let deleted = common::apply::destroy(name, &memory).await.0;
    assert!(deleted.succeeded(), "{deleted:#?}");
}

/// Waiting for the groups' capacity goes on through a look refused for now: the first
/// `DescribeAutoScalingGroups` of the wait answers a 500 (rafter's clients have the SDK's
/// retries off), and the wait still ends with every group in service.
#[tokio::test]
async fn the_capacity_wait_looks_again_after_a_transient_refusal() {
    let name = "capacity-blip.example.com";
    let mut sources = common::example_sources("dev-aws");
    sources.flags.name = Some(name.into());
    let cluster = spec::load(&sources, None).unwrap().cluster;
    let graph = build_graph(&cluster).unwrap();
    let memory = Memory::default();
    let (report, _) = common::apply::converge(name, &graph, &memory).await;
    assert!(report.succeeded(), "{report:?}");
    let groups: Vec<String> = graph
        .nodes()
        .iter()
        .filter(|node| node.address.kind == ResourceKind::AutoscalingGroup)
        .map(|node| match &node.resource {
            rafter::graph::resources::Resource::AutoscalingGroup(group) => group.name.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert!(!groups.is_empty());
    let proxy = FaultProxy::start(
        &common::moto::moto().endpoint,
        FaultConfig {
            lose_first_answer_to: Some("DescribeAutoScalingGroups"),
            ..FaultConfig::default()
        },
    );
    let provisioner = rafter::aws::AwsProvisioner::new(&proxy.sdk_config(), name);
    let wait = rafter::aws::capacity::CapacityWait {
        deadline: Duration::from_secs(30),
        pause: Duration::from_millis(100),
    };
    let looks = Mutex::new(0);
    rafter::aws::capacity::wait_for_capacity(&provisioner.context, &groups, wait, |_| {
        *looks.lock().unwrap() += 1;
    })
    .await
    .unwrap();
    assert!(
        proxy
            .lost()
            .contains_key("autoscaling DescribeAutoScalingGroups"),
        "{:?}: the refusal the test is about never happened",
        proxy.lost()
    );
    assert!(*looks.lock().unwrap() >= 1);
}
