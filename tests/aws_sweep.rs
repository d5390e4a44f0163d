//! The delete sweep against the AWS API emulator: what state lost track of is found by the
//! cluster's tag and deleted; what is not tagged as the cluster's is never touched; what
//! cannot be deleted is reported with its AWS error code.

mod common;

use std::time::Duration;

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use common::apply::{Memory, converge, destroy};
use common::inventory::tagged_leftovers;
use rafter::aws::AwsProvisioner;
use rafter::aws::sweep::{LeftoverKind, SweepPolicy};
use rafter::graph::ResourceKind;
use rafter::model::build_graph;
use rafter::spec;

const CLUSTER_TAG: &str = "rafter.dev/cluster";

fn quick() -> SweepPolicy {
    SweepPolicy {
        deadline: Duration::from_secs(60),
        settle: Duration::from_secs(3),
        pause: Duration::from_millis(100),
    }
}

async fn cluster(profile: &str, name: &str) -> Memory {
    let mut sources = common::example_sources(profile);
    sources.flags.name = Some(name.into());
    let graph = build_graph(&spec::load(&sources, None).unwrap().cluster).unwrap();
    let memory = Memory::default();
    let (report, _) = converge(name, &graph, &memory).await;
    assert!(report.succeeded(), "{report:?}");
    memory
}

fn vpc_tags(cluster: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(ResourceType::Vpc)
        .tags(Tag::builder().key(CLUSTER_TAG).value(cluster).build())
        .build()
}

async fn vpc_exists(ec2: &aws_sdk_ec2::Client, id: &str) -> bool {
    ec2.describe_vpcs()
        .vpc_ids(id)
        .send()
        .await
        .map(|found| !found.vpcs().is_empty())
        .unwrap_or(false)
}

#[tokio::test]
async fn a_lost_state_is_swept_by_tag_and_strangers_are_left_alone() {
    let name = "swept.example.com";
    let config = common::moto::sdk_config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let _lost = cluster("dev-aws", name).await; // its records are never used again
    assert!(tagged_leftovers(name).await.len() > 10);

    // Strangers: another cluster's VPC, an untagged VPC, and an untagged role whose name
    // looks like one of this cluster's.
    let other = ec2
        .create_vpc()
        .cidr_block("10.99.0.0/16")
        .tag_specifications(vpc_tags("other.example.com"))
        .send()
        .await
        .unwrap();
    let other = other.vpc().unwrap().vpc_id().unwrap().to_string();
    let untagged = ec2
        .create_vpc()
        .cidr_block("10.98.0.0/16")
        .send()
        .await
        .unwrap();
    let untagged = untagged.vpc().unwrap().vpc_id().unwrap().to_string();
    iam.create_role()
        .role_name(format!("stranger.{name}"))
        .assume_role_policy_document("{}")
        .send()
        .await
        .unwrap();

    let provisioner = AwsProvisioner::new(&config, name);
    let report = provisioner.sweep(quick()).await;
    assert!(report.clean(), "{report:?}");
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
    let deleted: Vec<LeftoverKind> = report.deleted.iter().map(|left| left.kind).collect();
    for kind in [
        ResourceKind::Vpc,
        ResourceKind::Subnet,
        ResourceKind::SecurityGroup,
        ResourceKind::AutoscalingGroup,
        ResourceKind::IamRole,
    ] {
        assert!(
            deleted.contains(&LeftoverKind::Resource(kind)),
            "{kind:?} not swept: {:?}",
            report.deleted
        );
    }

    assert!(
        vpc_exists(&ec2, &other).await,
        "another cluster's VPC was deleted"
    );
    assert!(
        vpc_exists(&ec2, &untagged).await,
        "an untagged VPC was deleted"
    );
    iam.get_role()
        .role_name(format!("stranger.{name}"))
        .send()
        .await
        .expect("an untagged role with a cluster-like name was deleted");

    // Nothing left: a second sweep is one round of describes and no mutating call.
    let again = AwsProvisioner::new(&config, name);
    let report = again.sweep(quick()).await;
    assert!(report.clean() && report.deleted.is_empty(), "{report:?}");
    assert_eq!(report.rounds, 1);
    assert_eq!(again.calls().total_writes(), 0);
}

#[tokio::test]
async fn a_partly_lost_state_is_finished_by_the_sweep() {
    // ha-aws: NAT gateways in three zones, and DNS records (which carry no tags).
    let name = "half.example.com";
    let route53 = aws_sdk_route53::Client::new(&common::moto::sdk_config());
    route53
        .create_hosted_zone()
        .name("example.com")
        .caller_reference("rafter-sweep-test")
        .send()
        .await
        .unwrap();
    let memory = cluster("ha-aws", name).await;
    // Forget everything but the routes and the DNS records: the state-driven delete removes
    // those, the sweep finds the rest.
    {
        let mut records = memory.0.lock().unwrap();
        records.retain(|record| {
            matches!(
                record.address.kind,
                ResourceKind::Route | ResourceKind::RouteTableAssociation | ResourceKind::DnsRecord
            )
        });
        assert!(!records.is_empty());
    }
    let (report, _) = destroy(name, &memory).await;
    assert!(report.succeeded(), "{report:?}");
    let provisioner = AwsProvisioner::new(&common::moto::sdk_config(), name);
    let report = provisioner.sweep(quick()).await;
    assert!(report.clean(), "{report:?}");
    let nats = report
        .deleted
        .iter()
        .filter(|left| left.kind == LeftoverKind::Resource(ResourceKind::NatGateway))
        .count();
    assert_eq!(nats, 3, "{report:?}");
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
}

#[tokio::test]
async fn what_cannot_be_deleted_is_reported_with_its_error_and_strangers_inside_stay() {
    let name = "stuck.example.com";
    let config = common::moto::sdk_config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.97.0.0/16")
        .tag_specifications(vpc_tags(name))
        .send()
        .await
        .unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    // Someone else's subnet in the cluster's VPC: the VPC cannot go, the subnet must stay.
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.97.1.0/24")
        .send()
        .await
        .unwrap();
    let subnet = subnet.subnet().unwrap().subnet_id().unwrap().to_string();

    let provisioner = AwsProvisioner::new(&config, name);
    let started = std::time::Instant::now();
    let report = provisioner.sweep(quick()).await;
    let took = started.elapsed();
    assert!(!report.clean());
    assert_eq!(report.remaining.len(), 1, "{report:?}");
    let (leftover, error) = &report.remaining[0];
    assert_eq!(leftover.kind, LeftoverKind::Resource(ResourceKind::Vpc));
    assert_eq!(leftover.id, vpc);
    assert_eq!(error.code, "DependencyViolation", "{error}");
    // `DependencyViolation` may pass, so it was waited out for the settle time (3 s) after
    // the last deletion, no longer: not until the deadline (60 s).
    assert!(report.rounds > 2, "{} rounds", report.rounds);
    assert!(took < quick().deadline / 2, "gave up only after {took:?}");
    let still = ec2.describe_subnets().subnet_ids(&subnet).send().await;
    assert_eq!(
        still.unwrap().subnets().len(),
        1,
        "the stranger's subnet was deleted"
    );
}

/// On AWS a deleted load balancer's or NAT gateway's network interfaces linger for minutes,
/// and meanwhile its subnets, groups and VPC answer `DependencyViolation`. The sweep waits that
/// out (the proxy makes it last two seconds) instead of stopping after one idle round.
#[tokio::test]
async fn the_sweep_waits_out_dependencies_that_are_still_going() {
    let name = "lingering.example.com";
    let _lost = cluster("dev-aws", name).await;
    let proxy = common::proxy::FaultProxy::start(
        &common::moto::moto().endpoint,
        common::proxy::FaultConfig {
            dependency_linger: Duration::from_secs(2),
            ..Default::default()
        },
    );
    let provisioner = AwsProvisioner::new(&proxy.sdk_config(), name);
    let report = provisioner.sweep(quick()).await;
    assert!(
        proxy.dependency_refusals() > 0,
        "nothing lingered: the test proves nothing"
    );
    assert!(report.clean(), "{report:?}");
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
}

/// EC2 refuses to delete a group another group's rule refers to, inbound or outbound (the
/// proxy enforces that, the emulator does not). Two of the cluster's groups whose outbound
/// rules refer to each other (as an operator's hand-made rules might) cannot go in either
/// order: the sweep revokes referring rules in both directions first, and sweeps them clean.
#[tokio::test]
async fn groups_that_refer_to_each_other_both_ways_are_swept() {
    let name = "referring.example.com";
    let _lost = cluster("dev-aws", name).await;
    let ec2 = aws_sdk_ec2::Client::new(&common::moto::sdk_config());
    let groups = ec2
        .describe_security_groups()
        .filters(common::inventory::owned_by(name))
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = groups
        .security_groups()
        .iter()
        .filter(|group| group.group_name() != Some("default"))
        .filter_map(|group| group.group_id())
        .collect();
    assert!(ids.len() >= 2, "{ids:?}");
    for (from, to) in [(ids[0], ids[1]), (ids[1], ids[0])] {
        ec2.authorize_security_group_egress()
            .group_id(from)
            .ip_permissions(
                aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(9443)
                    .to_port(9443)
                    .user_id_group_pairs(
                        aws_sdk_ec2::types::UserIdGroupPair::builder()
                            .group_id(to)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let proxy = common::proxy::FaultProxy::start(
        &common::moto::moto().endpoint,
        common::proxy::FaultConfig::default(),
    );
    let report = AwsProvisioner::new(&proxy.sdk_config(), name)
        .sweep(quick())
        .await;
    assert!(report.clean(), "{report:?}");
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
}

/// Auto Scaling lists 50 groups a page (the emulator too): a cluster with more is swept
/// in full, not reported clean with the second page left running.
#[tokio::test]
async fn the_sweep_reads_every_page() {
    let name = "many-groups.example.com";
    let config = common::moto::sdk_config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let template = ec2
        .create_launch_template()
        .launch_template_name("many-groups")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let template_id = template
        .launch_template()
        .and_then(|template| template.launch_template_id())
        .unwrap()
        .to_string();
    let groups = 57;
    for number in 0..groups {
        let group = format!("many-groups-{number}");
        autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(&group)
            .launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_id(&template_id)
                    .build(),
            )
            .availability_zones("eu-west-1a")
            .min_size(0)
            .max_size(0)
            .desired_capacity(0)
            .tags(
                aws_sdk_autoscaling::types::Tag::builder()
                    .resource_id(&group)
                    .resource_type("auto-scaling-group")
                    .key(CLUSTER_TAG)
                    .value(name)
                    .propagate_at_launch(true)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let report = AwsProvisioner::new(&config, name).sweep(quick()).await;
    assert!(report.clean(), "{report:?}");
    let deleted = report
        .deleted
        .iter()
        .filter(|leftover| leftover.kind == LeftoverKind::Resource(ResourceKind::AutoscalingGroup))
        .count();
    assert_eq!(deleted, groups);
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
}

/// The sweep's listings are retried like every other call: with three in ten requests
/// throttled or failing, every kind is still listed and the lost cluster swept clean.
#[tokio::test]
async fn the_sweep_lists_through_throttling() {
    let name = "throttled-sweep.example.com";
    let _lost = cluster("dev-aws", name).await;
    let proxy = common::proxy::FaultProxy::start(
        &common::moto::moto().endpoint,
        common::proxy::FaultConfig {
            fault_rate: 0.3,
            seed: 0x5eed_0017,
            ..Default::default()
        },
    );
    // Long enough to wait out a kind whose listing failed all its tries in one round (a
    // role listing is several requests, and its tries back off for 3.5 s).
    let patient = SweepPolicy {
        settle: Duration::from_secs(30),
        ..quick()
    };
    let report = AwsProvisioner::new(&proxy.sdk_config(), name)
        .sweep(patient)
        .await;
    assert!(
        proxy.faults() > 0,
        "nothing failed: the test proves nothing"
    );
    assert!(report.unlisted.is_empty(), "{:?}", report.unlisted);
    assert!(report.clean(), "{report:?}");
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
}

/// What the cloud controller makes for a `Service` of type `LoadBalancer` (a classic load
/// balancer, or a network one with its target group, and a security group that the cluster's
/// node group admits traffic from), tagged `kubernetes.io/cluster/<name>: owned` only, goes
/// before the cluster's own resources; another cluster's, and one only shared with this
/// cluster, stay.
#[tokio::test]
async fn what_the_addons_made_goes_first_and_strangers_stay() {
    use aws_sdk_elasticloadbalancing as classic;
    let name = "addons.example.com";
    let config = common::moto::sdk_config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let classic = classic::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let memory = cluster("dev-aws", name).await;
    let owned = |cluster: &str, value: &str| {
        (
            format!("kubernetes.io/cluster/{cluster}"),
            value.to_string(),
        )
    };
    let ours = owned(name, "owned");

    let cluster_filter = aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{CLUSTER_TAG}"))
        .values(name)
        .build();
    let vpc = ec2
        .describe_vpcs()
        .filters(cluster_filter.clone())
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    let subnet = ec2
        .describe_subnets()
        .filters(cluster_filter.clone())
        .send()
        .await
        .unwrap()
        .subnets()[0]
        .subnet_id()
        .unwrap()
        .to_string();
    let nodes_group = ec2
        .describe_security_groups()
        .filters(cluster_filter)
        .send()
        .await
        .unwrap()
        .security_groups()
        .iter()
        .find(|group| group.group_name() != Some("default"))
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();

    // The cloud controller's security group, which a rule of the node group refers to.
    let service_group = ec2
        .create_security_group()
        .group_name("k8s-elb-a1b2c3")
        .description("Security group for Kubernetes ELB a1b2c3 (default/web)")
        .vpc_id(&vpc)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::SecurityGroup)
                .tags(Tag::builder().key(&ours.0).value(&ours.1).build())
                .build(),
        )
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    ec2.authorize_security_group_ingress()
        .group_id(&nodes_group)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(30000)
                .to_port(32767)
                .user_id_group_pairs(
                    aws_sdk_ec2::types::UserIdGroupPair::builder()
                        .group_id(&service_group)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let classic_balancer = |balancer: &'static str,
                            tag: (String, String),
                            subnets: Vec<String>,
                            groups: Vec<String>| {
        let classic = classic.clone();
        async move {
            classic
                .create_load_balancer()
                .load_balancer_name(balancer)
                .listeners(
                    classic::types::Listener::builder()
                        .protocol("TCP")
                        .load_balancer_port(80)
                        .instance_port(30080)
                        .build()
                        .unwrap(),
                )
                .set_subnets(Some(subnets))
                .set_security_groups(Some(groups))
                .tags(
                    classic::types::Tag::builder()
                        .key(tag.0)
                        .value(tag.1)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
        }
    };
    classic_balancer(
        "a1b2c3",
        ours.clone(),
        vec![subnet.clone()],
        vec![service_group.clone()],
    )
    .await;
    classic_balancer(
        "stranger",
        owned("other.example.com", "owned"),
        vec![subnet.clone()],
        Vec::new(),
    )
    .await;
    classic_balancer(
        "shared",
        owned(name, "shared"),
        vec![subnet.clone()],
        Vec::new(),
    )
    .await;
    let ours_v2 = || {
        aws_sdk_elasticloadbalancingv2::types::Tag::builder()
            .key(&ours.0)
            .value(&ours.1)
            .build()
    };
    let network = elb
        .create_load_balancer()
        .name("k8s-default-web")
        .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
        .subnets(&subnet)
        .tags(ours_v2())
        .send()
        .await
        .unwrap();
    let network = network.load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    let targets = elb
        .create_target_group()
        .name("k8s-default-web-tg")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Tcp)
        .port(30080)
        .vpc_id(&vpc)
        .tags(ours_v2())
        .send()
        .await
        .unwrap();
    let targets = targets.target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string();

    // First only what the add-ons made: exactly those four, and nothing of rafter's. Through
    // the fault proxy, which refuses to delete a group another group's rule names, as EC2
    // does.
    let proxy = common::proxy::FaultProxy::start(
        &common::moto::moto().endpoint,
        common::proxy::FaultConfig::default(),
    );
    let provisioner = AwsProvisioner::new(&proxy.sdk_config(), name);
    let report = provisioner.sweep_addon_leftovers(quick()).await;
    assert!(report.clean(), "{report:?}");
    let mut deleted: Vec<String> = report.deleted.iter().map(ToString::to_string).collect();
    deleted.sort();
    let mut expected = vec![
        "aws_elb a1b2c3".to_string(),
        format!("aws_lb {network}"),
        format!("aws_lb_target_group {targets}"),
        format!("aws_security_group {service_group}"),
    ];
    expected.sort();
    assert_eq!(deleted, expected);
    assert!(
        vpc_exists(&ec2, &vpc).await,
        "the cluster's own resources stay for the recorded delete"
    );
    let referring = ec2
        .describe_security_groups()
        .group_ids(&nodes_group)
        .send()
        .await
        .unwrap();
    assert!(
        referring.security_groups()[0]
            .ip_permissions()
            .iter()
            .all(|rule| rule
                .user_id_group_pairs()
                .iter()
                .all(|pair| pair.group_id() != Some(service_group.as_str()))),
        "the node group's rule naming the service's group was revoked"
    );

    // Then the cluster itself, and the sweep of everything: the strangers are still there.
    let (report, _) = destroy(name, &memory).await;
    assert!(report.succeeded(), "{report:?}");
    let report = AwsProvisioner::new(&config, name).sweep(quick()).await;
    assert!(report.clean(), "{report:?}");
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
    let mut left: Vec<String> = classic
        .describe_load_balancers()
        .send()
        .await
        .unwrap()
        .load_balancer_descriptions()
        .iter()
        .filter_map(|balancer| balancer.load_balancer_name().map(str::to_string))
        .collect();
    left.sort();
    assert_eq!(left, ["shared", "stranger"]);
}
