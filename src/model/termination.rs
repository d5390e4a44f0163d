//! The node termination handler's infrastructure (queue mode), present while
//! `spec.addons.nodeTerminationHandler` is on: an SQS queue that only this cluster's
//! EventBridge rules may send to, the rules (auto-scaling terminations of the cluster's own
//! groups, spot interruption warnings, rebalance recommendations, instance state changes,
//! scheduled maintenance) with the queue as their target, and a terminating lifecycle hook
//! on every node-running group, so the handler drains a node before its instance goes.
//!
//! Sources: aws-node-termination-handler README, "Queue Processor" and "Infrastructure
//! Setup" (queue policy, retention, rule patterns, hook settings); kops
//! `pkg/model/awsmodel/nodeterminationhandler.go` (one rule per event type, a hook per group).
//! Narrower than both: the queue policy names each rule's ARN (`aws:SourceArn`) rather than
//! every EventBridge rule of the account, and the lifecycle rule matches only the cluster's
//! own groups.

use serde_json::json;

use super::naming::Naming;
use crate::graph::resources::{
    AutoscalingGroup, EventRule, EventTarget, LifecycleHook, Ref, SqsQueue, SqsQueuePolicy,
};
use crate::graph::value::Fields;
use crate::graph::{Field, Resource, ResourceGraph, Value};

/// How long an unread event is kept: the handler polls continuously, and a five-minute-old
/// warning is about an instance that is gone (the README's and kops' value).
const RETENTION_SECONDS: u32 = 300;

/// How long a terminating instance waits for the handler to drain it before Auto Scaling
/// continues anyway (`CONTINUE`): the README's and kops' 300 s.
const HOOK_HEARTBEAT_SECONDS: u32 = 300;

/// The lifecycle hook's name on every group (unique per group, which is all AWS asks).
pub const HOOK_NAME: &str = "rafter-node-termination";

/// How the queue's and every rule's name start (what the delete sweep lists by).
pub const NAME_PREFIX: &str = "nth-";

/// The queue's name: `nth-<cluster>`, SQS's `[A-Za-z0-9_-]` and 80 characters.
pub fn queue_name(naming: &Naming) -> String {
    naming.short(NAME_PREFIX.trim_end_matches('-'), 80)
}

/// The queue's URL but for the account id and the name (`https://sqs.REGION.DOMAIN/`): a
/// node completes it with the account its instance metadata names.
pub fn queue_url_prefix(region: &str) -> String {
    let domain = if super::iam::partition(region) == "aws-cn" {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://sqs.{region}.{domain}/")
}

/// The ConfigMap holding the handler's queue URL (`QUEUE_URL`).
pub const QUEUE_CONFIG_MAP: &str = "aws-node-termination-handler-queue";

/// The handler's health endpoint on the host (nothing else of a control-plane node listens
/// there: the autoscaler uses 8085).
pub const PROBES_PORT: u16 = 8087;

/// Every rule's name starts with this (EventBridge: `[.\-_A-Za-z0-9]`, 64 characters).
pub fn rule_name(naming: &Naming, event: &str) -> String {
    naming.short(&format!("{NAME_PREFIX}{event}"), 64)
}

/// One EventBridge rule: its local name and the events it matches.
struct Rule {
    event: &'static str,
    description: &'static str,
    pattern: serde_json::Value,
}

fn rules(group_names: &[String]) -> Vec<Rule> {
    vec![
        Rule {
            event: "asg-lifecycle",
            description: "Auto-scaling terminations of the cluster's groups",
            pattern: json!({
                "source": ["aws.autoscaling"],
                "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
                "detail": { "AutoScalingGroupName": group_names },
            }),
        },
        Rule {
            event: "spot-interruption",
            description: "Spot instance interruption warnings",
            pattern: json!({
                "source": ["aws.ec2"],
                "detail-type": ["EC2 Spot Instance Interruption Warning"],
            }),
        },
        Rule {
            event: "rebalance",
            description: "Spot instance rebalance recommendations",
            pattern: json!({
                "source": ["aws.ec2"],
                "detail-type": ["EC2 Instance Rebalance Recommendation"],
            }),
        },
        Rule {
            event: "state-change",
            description: "Instance state changes",
            pattern: json!({
                "source": ["aws.ec2"],
                "detail-type": ["EC2 Instance State-change Notification"],
            }),
        },
        Rule {
            event: "scheduled-change",
            description: "Scheduled instance maintenance",
            pattern: json!({
                "source": ["aws.health"],
                "detail-type": ["AWS Health Event"],
                "detail": { "service": ["EC2"], "eventTypeCategory": ["scheduledChange"] },
            }),
        },
    ]
}

/// The queue's resource policy: EventBridge may send, and only for these rules.
fn queue_policy(queue: &Ref<SqsQueue>, rules: &[Ref<EventRule>]) -> Value {
    let statement: Vec<Field> = Fields::new()
        .mutable("Sid", Value::str("ClusterRulesSend"))
        .mutable("Effect", Value::str("Allow"))
        .mutable(
            "Principal",
            Value::Block(
                Fields::new()
                    .mutable("Service", Value::str("events.amazonaws.com"))
                    .build(),
            ),
        )
        .mutable("Action", Value::str("sqs:SendMessage"))
        .mutable("Resource", Value::Ref(queue.arn()))
        .mutable(
            "Condition",
            Value::Block(
                Fields::new()
                    .mutable(
                        "ArnEquals",
                        Value::Block(
                            Fields::new()
                                .mutable("aws:SourceArn", Value::refs(rules.iter().map(Ref::arn)))
                                .build(),
                        ),
                    )
                    .build(),
            ),
        )
        .build();
    Value::Block(
        Fields::new()
            .mutable("Version", Value::str("2012-10-17"))
            .mutable("Statement", Value::List(vec![Value::Block(statement)]))
            .build(),
    )
}

/// The queue, its policy, the rules and their targets, and a hook on each of `groups`.
pub fn build(graph: &mut ResourceGraph, naming: &Naming, groups: &[Ref<AutoscalingGroup>]) {
    let queue = graph.add(
        "node-termination",
        SqsQueue {
            name: queue_name(naming),
            message_retention_seconds: RETENTION_SECONDS,
            tags: naming.tags("node-termination", "events"),
        },
    );
    let group_names: Vec<String> = groups
        .iter()
        .filter_map(|group| match graph.get(group.address()) {
            Some(node) => match &node.resource {
                Resource::AutoscalingGroup(group) => Some(group.name.clone()),
                _ => None,
            },
            None => None,
        })
        .collect();
    let mut rule_refs = Vec::new();
    for rule in rules(&group_names) {
        let local = format!("nth-{}", rule.event);
        let rule_ref = graph.add(
            local.clone(),
            EventRule {
                name: rule_name(naming, rule.event),
                description: format!(
                    "{} (rafter, cluster {})",
                    rule.description,
                    naming.cluster()
                ),
                event_pattern: rule.pattern.to_string(),
                tags: naming.tags(&local, "events"),
            },
        );
        graph.add(
            local,
            EventTarget {
                rule: rule_ref.clone(),
                target_id: "node-termination-queue".to_string(),
                queue: queue.clone(),
            },
        );
        rule_refs.push(rule_ref);
    }
    graph.add(
        "node-termination",
        SqsQueuePolicy {
            policy: queue_policy(&queue, &rule_refs),
            queue,
        },
    );
    for group in groups {
        graph.add(
            group.address().name.clone(),
            LifecycleHook {
                name: HOOK_NAME.to_string(),
                group: group.clone(),
                transition: "autoscaling:EC2_INSTANCE_TERMINATING".to_string(),
                default_result: "CONTINUE".to_string(),
                heartbeat_timeout_seconds: HOOK_HEARTBEAT_SECONDS,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ResourceKind;
    use crate::spec::Cluster;

    /// The `ha-aws` profile (three members) with a second node group.
    fn cluster(name: &str) -> Cluster {
        let mut cluster = crate::spec::load(
            &crate::spec::SpecSources {
                profile: Some("ha-aws".into()),
                flags: crate::spec::SpecFlags {
                    name: Some(name.into()),
                    zones: Some(vec![
                        "eu-west-1a".into(),
                        "eu-west-1b".into(),
                        "eu-west-1c".into(),
                    ]),
                    ..Default::default()
                },
                ..Default::default()
            },
            Some(&format!("s3://bucket/clusters/{name}")),
        )
        .unwrap()
        .cluster;
        let mut gpu = cluster.spec.node_groups[0].clone();
        gpu.name = "gpu".into();
        cluster.spec.node_groups.push(gpu);
        cluster
    }

    /// The groups the hooks hold, the groups the lifecycle rule matches and the groups the
    /// handler's IAM statement may complete actions of are one set; so are the queue the
    /// graph makes and the queue the statement names.
    #[test]
    fn the_hooks_the_rule_and_the_iam_statement_name_the_same_groups_and_queue() {
        let cluster = cluster("c.example.com");
        let naming = Naming::new("c.example.com");
        let graph = crate::model::build_graph(&cluster).unwrap();
        let mut hooked: Vec<String> = graph
            .nodes()
            .iter()
            .filter(|node| node.address.kind == ResourceKind::LifecycleHook)
            .map(|node| match &node.resource {
                Resource::LifecycleHook(hook) => {
                    match &graph.get(hook.group.address()).unwrap().resource {
                        Resource::AutoscalingGroup(group) => group.name.clone(),
                        other => panic!("{other:?}"),
                    }
                }
                other => panic!("{other:?}"),
            })
            .collect();
        hooked.sort();
        assert_eq!(
            hooked.len(),
            5,
            "three members and two node groups: {hooked:?}"
        );

        let rule = graph
            .nodes()
            .iter()
            .find_map(|node| match &node.resource {
                Resource::EventRule(rule) if rule.name.starts_with("nth-asg-lifecycle") => {
                    Some(rule.clone())
                }
                _ => None,
            })
            .unwrap();
        let pattern: serde_json::Value = serde_json::from_str(&rule.event_pattern).unwrap();
        let mut matched: Vec<String> = pattern["detail"]["AutoScalingGroupName"]
            .as_array()
            .unwrap()
            .iter()
            .map(|name| name.as_str().unwrap().to_string())
            .collect();
        matched.sort();
        assert_eq!(matched, hooked);

        let statements = crate::model::iam_addons::statements(&cluster, &naming);
        let complete = statements
            .iter()
            .find(|statement| statement["Sid"] == "NodeTerminationHandlerCompleteLifecycle")
            .unwrap();
        let mut allowed: Vec<String> = complete["Resource"]
            .as_array()
            .unwrap()
            .iter()
            .map(|arn| {
                arn.as_str()
                    .unwrap()
                    .rsplit_once("autoScalingGroupName/")
                    .unwrap()
                    .1
                    .to_string()
            })
            .collect();
        allowed.sort();
        assert_eq!(allowed, hooked);

        let queue = graph
            .nodes()
            .iter()
            .find_map(|node| match &node.resource {
                Resource::SqsQueue(queue) => Some(queue.name.clone()),
                _ => None,
            })
            .unwrap();
        let read = statements
            .iter()
            .find(|statement| statement["Sid"] == "NodeTerminationHandlerQueue")
            .unwrap();
        assert_eq!(
            read["Resource"],
            format!("arn:aws:sqs:eu-west-1:*:{queue}").as_str()
        );
    }

    #[test]
    fn names_fit_sqs_and_eventbridge_limits_and_stay_distinct_per_cluster() {
        let long = format!("{}.example.com", "a".repeat(90));
        for name in ["c.example.com", long.as_str()] {
            let naming = Naming::new(name);
            let queue = queue_name(&naming);
            assert!(
                queue.len() <= 80 && queue.starts_with(NAME_PREFIX),
                "{queue}"
            );
            for event in ["asg-lifecycle", "spot-interruption", "scheduled-change"] {
                let rule = rule_name(&naming, event);
                assert!(rule.len() <= 64 && rule.starts_with(NAME_PREFIX), "{rule}");
                assert!(naming.could_be_short_name(&rule), "{rule}");
            }
        }
        // Another cluster's names are not taken for this one's (the sweep's pre-check).
        assert!(
            !Naming::new("a.example.com")
                .could_be_short_name(&queue_name(&Naming::new("b.example.com")))
        );
    }
}
