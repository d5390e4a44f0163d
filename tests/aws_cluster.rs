//! Whole clusters (`ha-aws`, `dev-aws`) applied to the AWS API emulator: every kind of
//! resource exists with the right shape, a second apply is a no-op, a node group change
//! touches only the node group, and destroying leaves nothing tagged behind.

mod common;

use aws_sdk_autoscaling::types::Filter as GroupFilter;
use common::apply::{Memory, converge, destroy};
use common::inventory::{nat_gateways_of, owned_by, tagged_leftovers};
use rafter::graph::{ResourceGraph, ResourceKind};
use rafter::model::build_graph;
use rafter::plan::{self, Action};
use rafter::spec::{self, SpecSources};

const CLUSTER_TAG: &str = "rafter.dev/cluster";

fn graph_for(sources: &SpecSources) -> ResourceGraph {
    let name = sources.flags.name.as_deref().unwrap();
    let config_base = format!("s3://rafter-state/clusters/{name}");
    let cluster = spec::load(sources, Some(&config_base)).unwrap().cluster;
    build_graph(&cluster).unwrap()
}

async fn create_public_zone(name: &str) -> String {
    let route53 = aws_sdk_route53::Client::new(&common::moto::sdk_config());
    let created = route53
        .create_hosted_zone()
        .name(name)
        .caller_reference(format!("rafter-test-{name}"))
        .send()
        .await
        .unwrap();
    created
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string()
}

#[tokio::test]
async fn ha_cluster_converges_updates_a_node_group_in_place_and_is_deleted() {
    let name = "ha.example.com";
    let zone_id = create_public_zone("example.com").await;
    let mut sources = common::example_sources("ha-aws");
    sources.flags.name = Some(name.into());
    let graph = graph_for(&sources);
    let memory = Memory::default();

    let (report, provisioner) = converge(name, &graph, &memory).await;
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(report.done.len(), graph.len());
    let calls = provisioner.calls().snapshot();
    assert!(
        [
            "ec2",
            "iam",
            "elasticloadbalancing",
            "autoscaling",
            "route53"
        ]
        .iter()
        .all(|service| calls.contains_key(service)),
        "{calls:?}"
    );

    let config = common::moto::sdk_config();
    // Control plane: one group per zone, each in its zone's private subnet, behind the API
    // target group; launched from the newest Debian AMI of the right architecture and owner.
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let groups = autoscaling
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
    let mut group_names: Vec<&str> = groups
        .auto_scaling_groups()
        .iter()
        .map(|group| group.auto_scaling_group_name().unwrap())
        .collect();
    group_names.sort_unstable();
    assert_eq!(group_names.len(), 5, "{group_names:?}");
    let control_plane: Vec<_> = groups
        .auto_scaling_groups()
        .iter()
        .filter(|group| {
            group
                .auto_scaling_group_name()
                .unwrap()
                .starts_with("control-plane-")
        })
        .collect();
    assert_eq!(control_plane.len(), 3);
    for group in &control_plane {
        assert_eq!((group.min_size(), group.max_size()), (Some(1), Some(1)));
        assert_eq!(
            group.target_group_arns().len(),
            2,
            "registered with the public and the internal load balancer"
        );
        assert_eq!(group.launch_template().unwrap().version(), Some("$Latest"));
    }
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let templates = ec2
        .describe_launch_templates()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    assert_eq!(templates.launch_templates().len(), 5);
    // A control-plane template (the bastion's has no instance profile).
    let template_id = templates
        .launch_templates()
        .iter()
        .find(|template| {
            template
                .launch_template_name()
                .is_some_and(|name| name.starts_with("control-plane"))
        })
        .and_then(|template| template.launch_template_id())
        .unwrap();
    let versions = ec2
        .describe_launch_template_versions()
        .launch_template_id(template_id)
        .send()
        .await
        .unwrap();
    let data = versions.launch_template_versions()[0]
        .launch_template_data()
        .unwrap();
    assert_eq!(
        data.image_id(),
        Some("ami-0d1e6e12000000002"),
        "newest amd64 Debian AMI"
    );
    assert_eq!(
        data.metadata_options()
            .unwrap()
            .http_tokens()
            .unwrap()
            .as_str(),
        "required"
    );
    assert!(
        data.iam_instance_profile()
            .unwrap()
            .arn()
            .unwrap()
            .contains(":instance-profile/")
    );

    // The API load balancer listens on 443 and forwards to the control plane's target group.
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let balancers = elb
        .describe_load_balancers()
        .names("api-ha-example-com")
        .send()
        .await
        .unwrap();
    let balancer = &balancers.load_balancers()[0];
    assert_eq!(balancer.scheme().unwrap().as_str(), "internet-facing");
    assert_eq!(balancer.availability_zones().len(), 3);
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(balancer.load_balancer_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(listeners.listeners().len(), 1);
    let listener = &listeners.listeners()[0];
    assert_eq!(listener.port(), Some(443));
    let forwards_to = listener.default_actions()[0].target_group_arn().unwrap();
    assert!(
        control_plane[0]
            .target_group_arns()
            .iter()
            .any(|arn| arn == forwards_to)
    );
    // Nodes reach the API through an internal load balancer of their own, in the VPC.
    let internal = elb
        .describe_load_balancers()
        .names("api-internal-ha-example-com")
        .send()
        .await
        .unwrap();
    let internal = &internal.load_balancers()[0];
    assert_eq!(internal.scheme().unwrap().as_str(), "internal");

    // Route53 aliases the API names to the load balancer.
    let route53 = aws_sdk_route53::Client::new(&config);
    let records = route53
        .list_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .send()
        .await
        .unwrap();
    let aliases: Vec<(&str, &str)> = records
        .resource_record_sets()
        .iter()
        .filter_map(|record| Some((record.name(), record.alias_target()?.dns_name())))
        .collect();
    for (wanted, lb_dns) in [
        ("api.ha.example.com.", balancer.dns_name().unwrap()),
        ("api.internal.ha.example.com.", internal.dns_name().unwrap()),
    ] {
        assert!(
            aliases.iter().any(|(record, target)| *record == wanted
                && target.trim_end_matches('.') == lb_dns.trim_end_matches('.')),
            "{wanted} not aliased to {lb_dns}: {aliases:?}"
        );
    }

    // IAM: roles with their inline policies, profiles holding their role.
    let iam = aws_sdk_iam::Client::new(&config);
    let profile = iam
        .get_instance_profile()
        .instance_profile_name("control-plane.ha.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        profile.instance_profile().unwrap().roles()[0].role_name(),
        "control-plane.ha.example.com"
    );
    let policy = iam
        .get_role_policy()
        .role_name("nodes-workers.ha.example.com")
        .policy_name("nodes-workers.ha.example.com")
        .send()
        .await
        .unwrap();
    // The document comes back URL-encoded, as from IAM.
    let document = policy.policy_document();
    assert!(
        document.contains("rafter-state/clusters/ha.example.com/node-groups/workers/")
            && !document.contains("ec2%3A"),
        "{document}"
    );

    // Applying again changes nothing: no mutating call, and no lookup is read again.
    let (again, provisioner) = converge(name, &graph, &memory).await;
    assert!(again.succeeded(), "{again:#?}");
    assert!(again.done.is_empty(), "{:?}", again.done);
    assert_eq!(
        provisioner.calls().total_writes(),
        0,
        "{:?}",
        provisioner.calls().snapshot()
    );

    // More workers: only the workers' group changes, in place.
    sources.flags.node_count = Some(5);
    let bigger = graph_for(&sources);
    let change = plan::diff(name, &bigger, &memory.records()).unwrap();
    let updates: Vec<_> = change
        .changes
        .iter()
        .filter(|change| change.action != Action::Read)
        .collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(
        (updates[0].address.kind, updates[0].action),
        (ResourceKind::AutoscalingGroup, Action::Update)
    );
    let (updated, provisioner) = converge(name, &bigger, &memory).await;
    assert!(updated.succeeded(), "{updated:#?}");
    assert_eq!(
        provisioner
            .calls()
            .snapshot()
            .get("autoscaling")
            .map(|count| count.writes),
        Some(1)
    );
    assert_eq!(provisioner.calls().total_writes(), 1);
    let workers = autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("nodes-workers.ha.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(workers.auto_scaling_groups()[0].min_size(), Some(5));

    // Delete: nothing tagged with the cluster remains.
    let (deleted, _) = destroy(name, &memory).await;
    assert!(deleted.succeeded(), "{deleted:#?}");
    assert!(memory.records().is_empty());
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
}

#[tokio::test]
async fn dev_cluster_converges_and_is_deleted() {
    let name = "dev.example.com";
    let graph = graph_for(&common::example_sources("dev-aws"));
    let memory = Memory::default();
    let (report, _) = converge(name, &graph, &memory).await;
    assert!(report.succeeded(), "{report:#?}");
    let ec2 = aws_sdk_ec2::Client::new(&common::moto::sdk_config());
    let keys = ec2
        .describe_key_pairs()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    assert_eq!(keys.key_pairs().len(), 1);
    assert_eq!(nat_gateways_of(&ec2, name).await, Vec::<String>::new());

    let (deleted, _) = destroy(name, &memory).await;
    assert!(deleted.succeeded(), "{deleted:#?}");
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
}

/// Attributes AWS applies only after a create (a target group's client-IP preservation and
/// deregistration delay, its health check, cross-zone balancing) are read back and brought to
/// the spec whenever rafter meets the resource: here one adopted after an interrupted run left
/// AWS's defaults on it.
#[tokio::test]
async fn adopted_load_balancer_settings_are_brought_to_the_spec() {
    use aws_sdk_elasticloadbalancingv2::types::{LoadBalancerAttribute, TargetGroupAttribute};
    let name = "settings.example.com";
    let mut sources = common::example_sources("dev-aws");
    sources.flags.name = Some(name.into());
    let graph = graph_for(&sources);
    let first = Memory::default();
    let (report, _) = converge(name, &graph, &first).await;
    assert!(report.succeeded(), "{report:#?}");

    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&common::moto::sdk_config());
    let arn_of = |kind: ResourceKind| {
        first
            .records()
            .into_iter()
            .find(|record| record.address.kind == kind)
            .map(|record| record.outputs["arn"].clone())
            .unwrap()
    };
    let (group, balancer) = (
        arn_of(ResourceKind::TargetGroup),
        arn_of(ResourceKind::LoadBalancer),
    );
    let settings = || async {
        let attributes = elb
            .describe_target_group_attributes()
            .target_group_arn(&group)
            .send()
            .await
            .unwrap();
        let mut found: Vec<(String, String)> = attributes
            .attributes()
            .iter()
            .filter(|attribute| {
                matches!(
                    attribute.key(),
                    Some("deregistration_delay.timeout_seconds" | "preserve_client_ip.enabled")
                )
            })
            .map(|attribute| {
                (
                    attribute.key().unwrap().to_string(),
                    attribute.value().unwrap().to_string(),
                )
            })
            .collect();
        let described = elb
            .describe_target_groups()
            .target_group_arns(&group)
            .send()
            .await
            .unwrap();
        let interval = described.target_groups()[0].health_check_interval_seconds();
        found.push(("health_check_interval".into(), format!("{interval:?}")));
        let balancer_attributes = elb
            .describe_load_balancer_attributes()
            .load_balancer_arn(&balancer)
            .send()
            .await
            .unwrap();
        let cross_zone = balancer_attributes
            .attributes()
            .iter()
            .find(|attribute| attribute.key() == Some("load_balancing.cross_zone.enabled"))
            .and_then(|attribute| attribute.value())
            .map(str::to_string);
        found.push(("cross_zone".into(), format!("{cross_zone:?}")));
        found.sort();
        found
    };
    let wanted = settings().await;

    // AWS's defaults back on, as after a run that created the resources and stopped.
    elb.modify_target_group_attributes()
        .target_group_arn(&group)
        .attributes(
            TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value("300")
                .build(),
        )
        .attributes(
            TargetGroupAttribute::builder()
                .key("preserve_client_ip.enabled")
                .value("true")
                .build(),
        )
        .send()
        .await
        .unwrap();
    elb.modify_target_group()
        .target_group_arn(&group)
        .health_check_interval_seconds(30)
        .send()
        .await
        .unwrap();
    elb.modify_load_balancer_attributes()
        .load_balancer_arn(&balancer)
        .attributes(
            LoadBalancerAttribute::builder()
                .key("load_balancing.cross_zone.enabled")
                .value("false")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_ne!(settings().await, wanted);

    // The state is lost: the next run adopts everything, and converges what it adopts.
    let second = Memory::default();
    let (report, _) = converge(name, &graph, &second).await;
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(settings().await, wanted);
    let (deleted, _) = destroy(name, &second).await;
    assert!(deleted.succeeded(), "{deleted:#?}");
}

/// The state record lost, then an update with another node instance type: the launch
/// templates are adopted by their tags, and what they launch is compared with the spec.
/// The nodes' template gets a new version with the new type (it used to keep the old one,
/// recorded as if it had the new); the control plane's, unchanged, gets no new version.
#[tokio::test]
async fn an_adopted_launch_template_is_brought_to_the_spec() {
    let name = "adopted-template.example.com";
    let mut sources = common::example_sources("dev-aws");
    sources.flags.name = Some(name.into());
    let first = Memory::default();
    let (report, _) = converge(name, &graph_for(&sources), &first).await;
    assert!(report.succeeded(), "{report:#?}");

    sources.flags.node_size = Some("t3.large".into());
    let lost = Memory::default(); // resources.json gone: everything is adopted by its tags
    let (report, _) = converge(name, &graph_for(&sources), &lost).await;
    assert!(report.succeeded(), "{report:#?}");

    let ec2 = aws_sdk_ec2::Client::new(&common::moto::sdk_config());
    let template = |group: &'static str| {
        let ec2 = ec2.clone();
        async move {
            let found = ec2
                .describe_launch_templates()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("launch-template-name")
                        .values(format!("{group}.{name}"))
                        .build(),
                )
                .send()
                .await
                .unwrap();
            let template = found.launch_templates()[0].clone();
            let latest = ec2
                .describe_launch_template_versions()
                .launch_template_id(template.launch_template_id().unwrap())
                .versions("$Latest")
                .send()
                .await
                .unwrap();
            let data = latest.launch_template_versions()[0]
                .launch_template_data()
                .unwrap()
                .clone();
            (
                template.latest_version_number().unwrap(),
                data.instance_type().unwrap().as_str().to_string(),
            )
        }
    };
    assert_eq!(template("nodes-workers").await, (2, "t3.large".to_string()));
    assert_eq!(
        template("control-plane-eu-west-1a").await,
        (1, "t3.medium".to_string()),
        "an unchanged template gets no new version"
    );
    let again = plan::diff(name, &graph_for(&sources), &lost.records()).unwrap();
    assert!(!again.summary.has_changes(), "{:?}", again.summary);
    let deleted = common::apply::destroy(name, &lost).await.0;
    assert!(deleted.succeeded(), "{deleted:#?}");
}

/// The node termination handler's infrastructure on the emulator: the queue keeps events
/// 300 s, encrypted, and only the cluster's five rules may send to it; every rule targets it;
/// every node-running group has the terminating hook. A second apply writes nothing;
/// switching the handler off deletes all of it and its IAM statements; deleting the cluster
/// leaves none of it.
#[tokio::test]
async fn node_termination_handling_is_applied_switched_off_and_deleted() {
    use aws_sdk_sqs::types::QueueAttributeName;

    let name = "nth.example.com";
    let mut sources = common::example_sources("dev-aws");
    sources.flags.name = Some(name.to_string());
    let config_base = format!("s3://rafter-state/clusters/{name}");
    let mut cluster = spec::load(&sources, Some(&config_base)).unwrap().cluster;
    let graph = build_graph(&cluster).unwrap();
    let memory = Memory::default();
    let (report, _) = converge(name, &graph, &memory).await;
    assert!(report.succeeded(), "{report:#?}");

    let config = common::moto::sdk_config();
    let sqs = aws_sdk_sqs::Client::new(&config);
    let events = aws_sdk_eventbridge::Client::new(&config);
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let url = sqs
        .get_queue_url()
        .queue_name("nth-nth-example-com")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attribute = |key: QueueAttributeName| attributes.attributes().unwrap()[&key].clone();
    assert_eq!(attribute(QueueAttributeName::MessageRetentionPeriod), "300");
    assert_eq!(attribute(QueueAttributeName::SqsManagedSseEnabled), "true");
    let queue_arn = attribute(QueueAttributeName::QueueArn);
    let policy: serde_json::Value =
        serde_json::from_str(&attribute(QueueAttributeName::Policy)).unwrap();
    let statement = &policy["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "events.amazonaws.com");
    assert_eq!(statement["Action"], "sqs:SendMessage");
    assert_eq!(statement["Resource"], queue_arn.as_str());

    let rules = events
        .list_rules()
        .name_prefix("nth-")
        .send()
        .await
        .unwrap();
    let ours: Vec<_> = rules
        .rules()
        .iter()
        .filter(|rule| rule.name().unwrap().ends_with("-nth-example-com"))
        .collect();
    assert_eq!(ours.len(), 5, "{ours:?}");
    let mut rule_arns: Vec<String> = ours
        .iter()
        .map(|rule| rule.arn().unwrap().to_string())
        .collect();
    let mut allowed: Vec<String> = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arn| arn.as_str().unwrap().to_string())
        .collect();
    rule_arns.sort();
    allowed.sort();
    assert_eq!(allowed, rule_arns, "only the cluster's rules may send");
    for rule in &ours {
        let targets = events
            .list_targets_by_rule()
            .rule(rule.name().unwrap())
            .send()
            .await
            .unwrap();
        let arns: Vec<&str> = targets
            .targets()
            .iter()
            .map(|target| target.arn())
            .collect();
        assert_eq!(arns, [queue_arn.as_str()], "{}", rule.name().unwrap());
    }
    let lifecycle = ours
        .iter()
        .find(|rule| rule.name().unwrap().starts_with("nth-asg-lifecycle"))
        .unwrap();
    let groups = [
        format!("control-plane-eu-west-1a.{name}"),
        format!("nodes-workers.{name}"),
    ];
    let pattern: serde_json::Value =
        serde_json::from_str(lifecycle.event_pattern().unwrap()).unwrap();
    assert_eq!(
        pattern["detail"]["AutoScalingGroupName"],
        serde_json::json!(groups)
    );
    for group in &groups {
        let hooks = autoscaling
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(group)
            .send()
            .await
            .unwrap();
        let hooks: Vec<_> = hooks
            .lifecycle_hooks()
            .iter()
            .map(|hook| {
                (
                    hook.lifecycle_hook_name().unwrap(),
                    hook.lifecycle_transition().unwrap(),
                    hook.default_result().unwrap(),
                    hook.heartbeat_timeout().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            hooks,
            [(
                "rafter-node-termination",
                "autoscaling:EC2_INSTANCE_TERMINATING",
                "CONTINUE",
                300
            )],
            "{group}"
        );
    }

    // Changed and deleted by hand: a refresh sees both, and the next apply mends them.
    let (_, provisioner) = converge(name, &graph, &memory).await;
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "60")
        .send()
        .await
        .unwrap();
    let spot = ours
        .iter()
        .find(|rule| rule.name().unwrap().starts_with("nth-spot-interruption"))
        .unwrap()
        .name()
        .unwrap()
        .to_string();
    events
        .remove_targets()
        .rule(&spot)
        .ids("node-termination-queue")
        .send()
        .await
        .unwrap();
    events.delete_rule().name(&spot).send().await.unwrap();
    let refreshed = rafter::aws::refresh::refresh(&provisioner.context, &memory.records())
        .await
        .unwrap();
    assert_eq!(
        refreshed
            .vanished
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["aws_cloudwatch_event_rule.nth-spot-interruption"]
    );
    let queue_address = rafter::graph::Address::new(ResourceKind::SqsQueue, "node-termination");
    assert_eq!(
        refreshed.changed.get(&queue_address),
        Some(&vec![(
            "message_retention_seconds".to_string(),
            rafter::graph::Value::Int(60)
        )]),
        "{:?}",
        refreshed.changed
    );
    // As `update cluster` plans: against the record as the refresh found things.
    let now = refreshed.apply_to(&memory.records());
    *memory.0.lock().unwrap() = now;
    let (mended, _) = converge(name, &graph, &memory).await;
    assert!(mended.succeeded(), "{mended:#?}");
    let retention = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::MessageRetentionPeriod)
        .send()
        .await
        .unwrap();
    assert_eq!(
        retention.attributes().unwrap()[&QueueAttributeName::MessageRetentionPeriod],
        "300"
    );
    let targets = events
        .list_targets_by_rule()
        .rule(&spot)
        .send()
        .await
        .unwrap();
    assert_eq!(
        targets.targets().len(),
        1,
        "the rule made again has its target again"
    );

    // Applying again writes nothing.
    let (again, provisioner) = converge(name, &graph, &memory).await;
    assert!(again.succeeded(), "{again:#?}");
    assert_eq!(
        provisioner.calls().total_writes(),
        0,
        "{:?}",
        provisioner.calls().snapshot()
    );

    // The hook holds a terminated instance (the emulator is taught AWS's behaviour) until
    // rafter completes the action: only then is it terminated and replaced.
    let workers = &groups[1];
    let instances_of = |described: aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput| {
        described.auto_scaling_groups()[0]
            .instances()
            .iter()
            .map(|instance| {
                (
                    instance.instance_id().unwrap().to_string(),
                    instance.lifecycle_state().unwrap().as_str().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let describe = || {
        autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(workers)
            .send()
    };
    let before = instances_of(describe().await.unwrap());
    let (held, _) = before[0].clone();
    autoscaling
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&held)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .unwrap();
    let waiting = instances_of(describe().await.unwrap());
    assert!(
        waiting.contains(&(held.clone(), "Terminating:Wait".to_string())),
        "{waiting:?}"
    );
    assert_eq!(waiting.len(), before.len(), "no replacement while it waits");
    let context = &provisioner.context;
    assert!(
        rafter::aws::events::complete_termination(context, workers, &held)
            .await
            .unwrap()
    );
    let after = instances_of(describe().await.unwrap());
    assert!(after.iter().all(|(id, _)| *id != held), "{after:?}");
    assert_eq!(after.len(), before.len(), "replaced: {after:?}");
    // Completed already: nothing is waiting for it.
    assert!(
        !rafter::aws::events::complete_termination(context, workers, &held)
            .await
            .unwrap()
    );

    // Switched off: the queue, the rules, the hooks and the handler's IAM statements go.
    let mut addons = cluster.spec.addons();
    addons.node_termination_handler.enabled = false;
    cluster.spec.addons = Some(addons);
    let without = build_graph(&cluster).unwrap();
    let change = plan::diff(name, &without, &memory.records()).unwrap();
    let deleted: Vec<ResourceKind> = change
        .changes
        .iter()
        .filter(|change| change.action == Action::Delete)
        .map(|change| change.address.kind)
        .collect();
    assert_eq!(deleted.len(), 1 + 1 + 5 + 5 + 2, "{deleted:?}");
    let (off, _) = converge(name, &without, &memory).await;
    assert!(off.succeeded(), "{off:#?}");
    assert!(
        common::inventory::tagged_counts(name).await[&ResourceKind::SqsQueue] == 0
            && common::inventory::tagged_counts(name).await[&ResourceKind::EventRule] == 0
    );
    for group in &groups {
        let hooks = autoscaling
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(group)
            .send()
            .await
            .unwrap();
        assert!(hooks.lifecycle_hooks().is_empty(), "{group}");
    }
    let iam = aws_sdk_iam::Client::new(&config);
    let role = format!("control-plane.{name}");
    let document = iam
        .get_role_policy()
        .role_name(&role)
        .policy_name(&role)
        .send()
        .await
        .unwrap()
        .policy_document()
        .to_string();
    assert!(!document.contains("NodeTerminationHandler"), "{document}");

    // Back on, then the cluster is deleted: nothing of it is left.
    let (on, _) = converge(name, &graph, &memory).await;
    assert!(on.succeeded(), "{on:#?}");
    let (gone, _) = destroy(name, &memory).await;
    assert!(gone.succeeded(), "{gone:#?}");
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
}
