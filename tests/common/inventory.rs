//! What the emulator holds for a cluster, found by its ownership tag with the emulator's own
//! API: how tests prove a delete left nothing behind and a rerun made no duplicates.
#![allow(dead_code)]

use aws_sdk_autoscaling::types::Filter as GroupFilter;
use aws_sdk_ec2::types::Filter;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use rafter::graph::ResourceKind;

const CLUSTER_TAG: &str = "rafter.dev/cluster";

/// The emulator ignores tag filters on NAT gateways: check their tags here.
pub async fn nat_gateways_of(ec2: &aws_sdk_ec2::Client, name: &str) -> Vec<String> {
    let nats = ec2
        .describe_nat_gateways()
        .filter(
            Filter::builder()
                .name("state")
                .values("pending")
                .values("available")
                .build(),
        )
        .send()
        .await
        .unwrap();
    nats.nat_gateways()
        .iter()
        .filter(|nat| {
            nat.tags()
                .iter()
                .any(|tag| tag.key() == Some(CLUSTER_TAG) && tag.value() == Some(name))
        })
        .map(|nat| format!("nat {}", nat.nat_gateway_id().unwrap()))
        .collect()
}

pub fn owned_by(name: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{CLUSTER_TAG}"))
        .values(name)
        .build()
}

/// Everything the cluster's tag still finds, by kind: what a delete must bring to zero.
pub async fn tagged_leftovers(name: &str) -> Vec<String> {
    let config = super::moto::sdk_config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let mut left = Vec::new();
    let vpcs = ec2
        .describe_vpcs()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    left.extend(
        vpcs.vpcs()
            .iter()
            .map(|vpc| format!("vpc {}", vpc.vpc_id().unwrap())),
    );
    let subnets = ec2
        .describe_subnets()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    left.extend(
        subnets
            .subnets()
            .iter()
            .map(|subnet| format!("subnet {}", subnet.subnet_id().unwrap())),
    );
    left.extend(nat_gateways_of(&ec2, name).await);
    let addresses = ec2
        .describe_addresses()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    left.extend(
        addresses
            .addresses()
            .iter()
            .map(|address| format!("eip {}", address.allocation_id().unwrap())),
    );
    let groups = ec2
        .describe_security_groups()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    left.extend(
        groups
            .security_groups()
            .iter()
            .map(|group| format!("sg {}", group.group_id().unwrap())),
    );
    let templates = ec2
        .describe_launch_templates()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    left.extend(
        templates
            .launch_templates()
            .iter()
            .map(|template| format!("lt {}", template.launch_template_name().unwrap())),
    );
    let keys = ec2
        .describe_key_pairs()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    left.extend(
        keys.key_pairs()
            .iter()
            .map(|key| format!("key {}", key.key_name().unwrap())),
    );
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let asgs = autoscaling
        .describe_auto_scaling_groups()
        .filters(
            GroupFilter::builder()
                .name(format!("tag:{CLUSTER_TAG}"))
                .values(name)
                .build(),
        )
        .send()
        .await
        .unwrap();
    left.extend(
        asgs.auto_scaling_groups()
            .iter()
            .map(|group| format!("asg {}", group.auto_scaling_group_name().unwrap())),
    );
    let gateways = ec2
        .describe_internet_gateways()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    left.extend(
        gateways
            .internet_gateways()
            .iter()
            .map(|gateway| format!("igw {}", gateway.internet_gateway_id().unwrap())),
    );
    let tables = ec2
        .describe_route_tables()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    left.extend(
        tables
            .route_tables()
            .iter()
            .map(|table| format!("rtb {}", table.route_table_id().unwrap())),
    );
    let volumes = ec2
        .describe_volumes()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    left.extend(
        volumes
            .volumes()
            .iter()
            .map(|volume| format!("vol {}", volume.volume_id().unwrap())),
    );
    let instances = ec2
        .describe_instances()
        .filters(owned_by(name))
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .values("stopped")
                .build(),
        )
        .send()
        .await
        .unwrap();
    left.extend(
        instances
            .reservations()
            .iter()
            .flat_map(|reservation| reservation.instances())
            .map(|instance| format!("instance {}", instance.instance_id().unwrap())),
    );
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let balancers = elb.describe_load_balancers().send().await.unwrap();
    let groups = elb.describe_target_groups().send().await.unwrap();
    let arns: Vec<String> = balancers
        .load_balancers()
        .iter()
        .map(|balancer| balancer.load_balancer_arn().unwrap().to_string())
        .chain(
            groups
                .target_groups()
                .iter()
                .map(|group| group.target_group_arn().unwrap().to_string()),
        )
        .collect();
    for arn in arns {
        // Other tests in this binary delete their resources meanwhile: what is gone between
        // the listing and the tag lookup is simply not left over.
        let tags = match elb.describe_tags().resource_arns(&arn).send().await {
            Err(error) if error.code().is_some_and(|code| code.ends_with("NotFound")) => continue,
            other => other.unwrap(),
        };
        let owned = tags
            .tag_descriptions()
            .iter()
            .flat_map(|description| description.tags())
            .any(|tag| tag.key() == Some(CLUSTER_TAG) && tag.value() == Some(name));
        if owned {
            left.push(format!("elb {arn}"));
        }
    }
    let iam = aws_sdk_iam::Client::new(&config);
    for role in iam.list_roles().send().await.unwrap().roles() {
        let tags = match iam
            .list_role_tags()
            .role_name(role.role_name())
            .send()
            .await
        {
            Err(error) if error.code() == Some("NoSuchEntity") => continue,
            other => other.unwrap(),
        };
        if tags
            .tags()
            .iter()
            .any(|tag| tag.key() == CLUSTER_TAG && tag.value() == name)
        {
            left.push(format!("role {}", role.role_name()));
        }
    }
    let profiles = iam.list_instance_profiles().send().await.unwrap();
    for profile in profiles.instance_profiles() {
        // The emulator has no ListInstanceProfileTags; GetInstanceProfile carries the tags.
        let described = match iam
            .get_instance_profile()
            .instance_profile_name(profile.instance_profile_name())
            .send()
            .await
        {
            Err(error) if error.code() == Some("NoSuchEntity") => continue,
            other => other.unwrap(),
        };
        if described
            .instance_profile()
            .unwrap()
            .tags()
            .iter()
            .any(|tag| tag.key() == CLUSTER_TAG && tag.value() == name)
        {
            left.push(format!(
                "instance profile {}",
                profile.instance_profile_name()
            ));
        }
    }
    left.extend(termination_leftovers(&config, name).await);
    left
}

/// The node termination handler's queues and rules tagged as `name`'s.
async fn termination_leftovers(config: &aws_config::SdkConfig, name: &str) -> Vec<String> {
    let mut left = Vec::new();
    let sqs = aws_sdk_sqs::Client::new(config);
    let queues = sqs
        .list_queues()
        .queue_name_prefix("nth-")
        .send()
        .await
        .unwrap();
    for url in queues.queue_urls() {
        let tags = match sqs.list_queue_tags().queue_url(url).send().await {
            Err(error)
                if error.code().is_some_and(|code| {
                    code.contains("NonExistentQueue") || code == "QueueDoesNotExist"
                }) =>
            {
                continue;
            }
            other => other.unwrap(),
        };
        if tags
            .tags()
            .and_then(|tags| tags.get(CLUSTER_TAG))
            .map(String::as_str)
            == Some(name)
        {
            left.push(format!("queue {url}"));
        }
    }
    let events = aws_sdk_eventbridge::Client::new(config);
    let rules = events
        .list_rules()
        .name_prefix("nth-")
        .send()
        .await
        .unwrap();
    for rule in rules.rules() {
        let tags = match events
            .list_tags_for_resource()
            .resource_arn(rule.arn().unwrap())
            .send()
            .await
        {
            Err(error) if error.code() == Some("ResourceNotFoundException") => continue,
            other => other.unwrap(),
        };
        if tags
            .tags()
            .iter()
            .any(|tag| tag.key() == CLUSTER_TAG && tag.value() == name)
        {
            left.push(format!("rule {}", rule.name().unwrap()));
        }
    }
    left
}

/// What carries the cluster's tag, counted by kind (EC2, Auto Scaling, SQS and EventBridge
/// kinds).
pub async fn tagged_counts(name: &str) -> std::collections::BTreeMap<ResourceKind, usize> {
    let mut counts = wanted_counts(&rafter::graph::ResourceGraph::new());
    for leftover in tagged_leftovers(name).await {
        let kind = match leftover.split(' ').next().unwrap_or_default() {
            "vpc" => ResourceKind::Vpc,
            "subnet" => ResourceKind::Subnet,
            "nat" => ResourceKind::NatGateway,
            "igw" => ResourceKind::InternetGateway,
            "rtb" => ResourceKind::RouteTable,
            "eip" => ResourceKind::ElasticIp,
            "sg" => ResourceKind::SecurityGroup,
            "key" => ResourceKind::KeyPair,
            "vol" => ResourceKind::EbsVolume,
            "lt" => ResourceKind::LaunchTemplate,
            "asg" => ResourceKind::AutoscalingGroup,
            "queue" => ResourceKind::SqsQueue,
            "rule" => ResourceKind::EventRule,
            _ => continue,
        };
        *counts.entry(kind).or_default() += 1;
    }
    counts
}

pub fn wanted_counts(
    graph: &rafter::graph::ResourceGraph,
) -> std::collections::BTreeMap<ResourceKind, usize> {
    let mut counts: std::collections::BTreeMap<ResourceKind, usize> = [
        ResourceKind::Vpc,
        ResourceKind::Subnet,
        ResourceKind::NatGateway,
        ResourceKind::InternetGateway,
        ResourceKind::RouteTable,
        ResourceKind::ElasticIp,
        ResourceKind::SecurityGroup,
        ResourceKind::KeyPair,
        ResourceKind::EbsVolume,
        ResourceKind::LaunchTemplate,
        ResourceKind::AutoscalingGroup,
        ResourceKind::SqsQueue,
        ResourceKind::EventRule,
    ]
    .into_iter()
    .map(|kind| (kind, 0))
    .collect();
    for node in graph.nodes() {
        if let Some(count) = counts.get_mut(&node.address.kind) {
            *count += 1;
        }
    }
    counts
}
