//! How instance events reach the cluster (the node termination handler in queue mode): an
//! SQS queue and its resource policy, EventBridge rules with the queue as their target, and
//! a terminating lifecycle hook on every auto-scaling group.
//!
//! Queues and rules have names: a create first looks the name up and adopts what it finds
//! only if it carries this cluster's `rafter.dev/cluster` tag. Policies, targets and hooks
//! are put whole (each call creates or replaces), so a rerun converges by itself.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_eventbridge::types::{RuleState, Target};
use aws_sdk_sqs::types::QueueAttributeName;

use super::attrs::Attrs;
use super::errors::{AwsResultExt, gone_is_fine};
use super::{Context, not_handled, not_owned, outputs};
use crate::apply::{Outputs, ProvisionError};
use crate::graph::ResourceKind;
use crate::model::naming::CLUSTER_TAG;
use crate::plan::RecordedResource;

const SQS: &str = "sqs";
const EVENTS: &str = "events";
const AUTOSCALING: &str = "autoscaling";

/// What SQS answers for a queue that is not there: `QueueDoesNotExist` (JSON protocol) or
/// `AWS.SimpleQueueService.NonExistentQueue` (query protocol), as the SQS API reference
/// names them.
pub(crate) fn queue_is_absent(error: &ProvisionError) -> bool {
    error.code == "QueueDoesNotExist" || error.code.ends_with("NonExistentQueue")
}

/// A queue rafter made or recorded that SQS does not know yet: "after you create a queue,
/// you must wait at least one second after the queue is created to be able to use the
/// queue" (SQS API reference, CreateQueue). Transient, so the engine asks again.
fn queue_settling(error: ProvisionError) -> ProvisionError {
    if queue_is_absent(&error) {
        ProvisionError::transient(
            &error.code,
            format!(
                "{} (a new queue is usable about a second after it is made)",
                error.message
            ),
        )
    } else {
        error
    }
}

/// Auto Scaling names a missing group (`AutoScalingGroup name not found - …`) or hook only
/// in a `ValidationError`'s message.
fn hook_is_absent(error: &ProvisionError) -> bool {
    let message = error.message.to_lowercase();
    error.code == "ValidationError"
        && (message.contains("not found") || message.contains("no lifecycle hook found"))
}

pub async fn create(
    context: &Context,
    kind: ResourceKind,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    match kind {
        ResourceKind::SqsQueue => ensure_queue(context, attrs).await,
        ResourceKind::SqsQueuePolicy => put_queue_policy(context, attrs).await,
        ResourceKind::EventRule => ensure_rule(context, attrs).await,
        ResourceKind::EventTarget => put_target(context, attrs).await,
        ResourceKind::LifecycleHook => put_lifecycle_hook(context, attrs).await,
        other => Err(not_handled(other, "the events module")),
    }
}

/// Every create here converges an existing resource too, so updates are creates.
pub async fn update(
    context: &Context,
    recorded: &RecordedResource,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    create(context, recorded.address.kind, attrs).await
}

pub async fn delete(context: &Context, recorded: &RecordedResource) -> Result<(), ProvisionError> {
    let id = recorded
        .outputs
        .get("id")
        .map(String::as_str)
        .unwrap_or_default();
    match recorded.address.kind {
        ResourceKind::SqsQueue => delete_queue(context, id).await,
        ResourceKind::SqsQueuePolicy => {
            context.calls.write(SQS);
            let removed = context
                .sqs
                .set_queue_attributes()
                .queue_url(id)
                .attributes(QueueAttributeName::Policy, "")
                .send()
                .await
                .aws();
            match removed {
                Err(error) if queue_is_absent(&error) => Ok(()),
                other => other.map(drop),
            }
        }
        ResourceKind::EventRule => delete_rule(context, id).await,
        ResourceKind::EventTarget => {
            let (rule, target) = id.split_once('|').unwrap_or((id, ""));
            context.calls.write(EVENTS);
            context
                .events
                .remove_targets()
                .rule(rule)
                .ids(target)
                .send()
                .await
                .aws()
                .map(drop)
                .or_else(gone_is_fine)
        }
        ResourceKind::LifecycleHook => {
            let (group, hook) = id.split_once('|').unwrap_or((id, ""));
            context.calls.write(AUTOSCALING);
            let deleted = context
                .autoscaling
                .delete_lifecycle_hook()
                .auto_scaling_group_name(group)
                .lifecycle_hook_name(hook)
                .send()
                .await
                .aws();
            match deleted {
                Err(error) if hook_is_absent(&error) => Ok(()),
                other => other.map(drop),
            }
        }
        other => Err(not_handled(other, "the events module")),
    }
}

fn owned(tags: &HashMap<String, String>, cluster: &str) -> bool {
    tags.get(CLUSTER_TAG).map(String::as_str) == Some(cluster)
}

/// The queue named `name`, if there is one: its URL.
async fn queue_url(context: &Context, name: &str) -> Result<Option<String>, ProvisionError> {
    context.calls.read(SQS);
    match context
        .sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .aws()
    {
        Ok(found) => Ok(found.queue_url().map(ToString::to_string)),
        Err(error) if queue_is_absent(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The tags of the queue at `url`.
pub(crate) async fn queue_tags(
    context: &Context,
    url: &str,
) -> Result<HashMap<String, String>, ProvisionError> {
    context.calls.read(SQS);
    let listed = context
        .sqs
        .list_queue_tags()
        .queue_url(url)
        .send()
        .await
        .aws()?;
    Ok(listed.tags().cloned().unwrap_or_default())
}

async fn ensure_queue(context: &Context, attrs: Attrs<'_>) -> Result<Outputs, ProvisionError> {
    let name = attrs.str("name")?;
    let settings = BTreeMap::from([
        (
            QueueAttributeName::MessageRetentionPeriod,
            attrs.int("message_retention_seconds")?.to_string(),
        ),
        (
            QueueAttributeName::SqsManagedSseEnabled,
            attrs.bool("sqs_managed_sse_enabled")?.to_string(),
        ),
    ]);
    let tags = attrs.tags();
    let url = match queue_url(context, name).await? {
        Some(url) => {
            // Found by name, it may be the one an attempt before this one just made.
            let tags_now = queue_tags(context, &url).await.map_err(queue_settling)?;
            if !owned(&tags_now, &context.cluster) {
                return Err(not_owned("SQS queue", name, &context.cluster));
            }
            context.calls.write(SQS);
            context
                .sqs
                .set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(settings.into_iter().collect()))
                .send()
                .await
                .aws()
                .map_err(queue_settling)?;
            context.calls.write(SQS);
            context
                .sqs
                .tag_queue()
                .queue_url(&url)
                .set_tags(Some(tags.into_iter().collect()))
                .send()
                .await
                .aws()
                .map_err(queue_settling)?;
            url
        }
        None => {
            context.calls.write(SQS);
            let created = context
                .sqs
                .create_queue()
                .queue_name(name)
                .set_attributes(Some(settings.into_iter().collect()))
                .set_tags(Some(tags.into_iter().collect()))
                .send()
                .await
                .aws()?;
            created
                .queue_url()
                .map(ToString::to_string)
                .ok_or_else(|| {
                    ProvisionError::permanent("MissingId", "CreateQueue returned no queue URL")
                })?
        }
    };
    context.calls.read(SQS);
    let described = context
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .aws()
        .map_err(queue_settling)?;
    let arn = described
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| ProvisionError::permanent("MissingId", "the queue has no ARN"))?;
    Ok(outputs([
        ("id", url.clone()),
        ("url", url),
        ("arn", arn),
        ("name", name.to_string()),
    ]))
}

pub(crate) async fn delete_queue(context: &Context, url: &str) -> Result<(), ProvisionError> {
    context.calls.write(SQS);
    match context.sqs.delete_queue().queue_url(url).send().await.aws() {
        Err(error) if queue_is_absent(&error) => Ok(()),
        other => other.map(drop),
    }
}

/// `SetQueueAttributes(Policy)` replaces the whole policy: idempotent by itself.
async fn put_queue_policy(context: &Context, attrs: Attrs<'_>) -> Result<Outputs, ProvisionError> {
    let url = attrs.str("queue_url")?;
    context.calls.write(SQS);
    context
        .sqs
        .set_queue_attributes()
        .queue_url(url)
        .attributes(QueueAttributeName::Policy, attrs.json("policy")?)
        .send()
        .await
        .aws()
        .map_err(queue_settling)?;
    Ok(outputs([("id", url.to_string())]))
}

/// The ARN of the rule named `name` on the default bus and its tags, if there is one.
async fn find_rule(
    context: &Context,
    name: &str,
) -> Result<Option<(String, HashMap<String, String>)>, ProvisionError> {
    context.calls.read(EVENTS);
    let described = match context.events.describe_rule().name(name).send().await.aws() {
        Ok(described) => described,
        Err(error) if error.code == "ResourceNotFoundException" => return Ok(None),
        Err(error) => return Err(error),
    };
    let arn = described.arn().unwrap_or_default().to_string();
    Ok(Some((arn.clone(), rule_tags(context, &arn).await?)))
}

pub(crate) async fn rule_tags(
    context: &Context,
    arn: &str,
) -> Result<HashMap<String, String>, ProvisionError> {
    context.calls.read(EVENTS);
    let listed = context
        .events
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .aws()?;
    Ok(listed
        .tags()
        .iter()
        .map(|tag| (tag.key().to_string(), tag.value().to_string()))
        .collect())
}

fn event_tags(tags: BTreeMap<String, String>) -> Vec<aws_sdk_eventbridge::types::Tag> {
    tags.into_iter()
        .filter_map(|(key, value)| {
            aws_sdk_eventbridge::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
                .ok()
        })
        .collect()
}

/// `PutRule` creates or updates, but takes tags only when it creates: an adopted rule is
/// tagged on its own.
async fn ensure_rule(context: &Context, attrs: Attrs<'_>) -> Result<Outputs, ProvisionError> {
    let name = attrs.str("name")?;
    let found = find_rule(context, name).await?;
    if let Some((_, tags)) = &found
        && !owned(tags, &context.cluster)
    {
        return Err(not_owned("EventBridge rule", name, &context.cluster));
    }
    context.calls.write(EVENTS);
    let put = context
        .events
        .put_rule()
        .name(name)
        .description(attrs.str("description")?)
        .event_pattern(attrs.str("event_pattern")?)
        .state(RuleState::Enabled)
        .set_tags(Some(event_tags(attrs.tags())))
        .send()
        .await
        .aws()?;
    let arn = put.rule_arn().unwrap_or_default().to_string();
    if found.is_some() {
        context.calls.write(EVENTS);
        context
            .events
            .tag_resource()
            .resource_arn(&arn)
            .set_tags(Some(event_tags(attrs.tags())))
            .send()
            .await
            .aws()?;
    }
    Ok(outputs([
        ("id", name.to_string()),
        ("name", name.to_string()),
        ("arn", arn),
    ]))
}

/// Deletes a rule and whatever targets it still has (EventBridge refuses to delete a rule
/// with targets).
pub(crate) async fn delete_rule(context: &Context, name: &str) -> Result<(), ProvisionError> {
    context.calls.read(EVENTS);
    let targets = match context
        .events
        .list_targets_by_rule()
        .rule(name)
        .send()
        .await
        .aws()
    {
        Ok(listed) => listed
            .targets()
            .iter()
            .map(|target| target.id().to_string())
            .collect::<Vec<_>>(),
        Err(error) => return gone_is_fine(error),
    };
    if !targets.is_empty() {
        context.calls.write(EVENTS);
        context
            .events
            .remove_targets()
            .rule(name)
            .set_ids(Some(targets))
            .send()
            .await
            .aws()
            .map(drop)
            .or_else(gone_is_fine)?;
    }
    context.calls.write(EVENTS);
    context
        .events
        .delete_rule()
        .name(name)
        .send()
        .await
        .aws()
        .map(drop)
        .or_else(gone_is_fine)
}

/// `PutTargets` adds or replaces the target with this id. Its failures come back per entry
/// in a successful answer.
async fn put_target(context: &Context, attrs: Attrs<'_>) -> Result<Outputs, ProvisionError> {
    let rule = attrs.str("rule")?;
    let id = attrs.str("target_id")?;
    let target = Target::builder()
        .id(id)
        .arn(attrs.str("arn")?)
        .build()
        .map_err(|error| ProvisionError::permanent("RafterModel", error.to_string()))?;
    context.calls.write(EVENTS);
    let put = context
        .events
        .put_targets()
        .rule(rule)
        .targets(target)
        .send()
        .await
        .aws()?;
    if let Some(failed) = put.failed_entries().first() {
        return Err(ProvisionError::permanent(
            failed.error_code().unwrap_or("PutTargetsFailed"),
            failed
                .error_message()
                .unwrap_or("EventBridge refused the target"),
        ));
    }
    Ok(outputs([("id", format!("{rule}|{id}"))]))
}

/// Lets `instance` of `group` go on terminating past rafter's terminating hook
/// ([`crate::model::termination::HOOK_NAME`]) with `CONTINUE`. False when no action of that
/// hook is waiting for it (someone completed it, or the group has no such hook).
pub async fn complete_termination(
    context: &Context,
    group: &str,
    instance: &str,
) -> Result<bool, ProvisionError> {
    context.calls.write(AUTOSCALING);
    let completed = context
        .autoscaling
        .complete_lifecycle_action()
        .auto_scaling_group_name(group)
        .lifecycle_hook_name(crate::model::termination::HOOK_NAME)
        .instance_id(instance)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .aws();
    match completed {
        Ok(_) => Ok(true),
        // "No active Lifecycle Action found with instance ID i-…"
        Err(error)
            if error.code == "ValidationError"
                && error.message.contains("No active Lifecycle Action") =>
        {
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// `PutLifecycleHook` creates or replaces the hook of this name.
async fn put_lifecycle_hook(
    context: &Context,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let group = attrs.str("autoscaling_group_name")?;
    let name = attrs.str("name")?;
    context.calls.write(AUTOSCALING);
    context
        .autoscaling
        .put_lifecycle_hook()
        .auto_scaling_group_name(group)
        .lifecycle_hook_name(name)
        .lifecycle_transition(attrs.str("lifecycle_transition")?)
        .default_result(attrs.str("default_result")?)
        .heartbeat_timeout(attrs.int32("heartbeat_timeout")?)
        .send()
        .await
        .aws()?;
    Ok(outputs([("id", format!("{group}|{name}"))]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_queue_is_recognised_under_both_protocols() {
        for code in [
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
        ] {
            assert!(queue_is_absent(&ProvisionError::permanent(code, "gone")));
        }
        assert!(!queue_is_absent(&ProvisionError::permanent(
            "AccessDenied",
            "no"
        )));
    }

    #[test]
    fn a_queue_not_usable_yet_is_asked_again() {
        let settling = queue_settling(ProvisionError::permanent(
            "QueueDoesNotExist",
            "The specified queue does not exist.",
        ));
        assert_eq!(settling.class, crate::apply::ErrorClass::Transient);
        assert_eq!(settling.code, "QueueDoesNotExist");
        let denied = queue_settling(ProvisionError::permanent("AccessDenied", "no"));
        assert_eq!(denied.class, crate::apply::ErrorClass::Permanent);
    }

    #[test]
    fn only_a_missing_hook_or_group_counts_as_gone() {
        assert!(hook_is_absent(&ProvisionError::permanent(
            "ValidationError",
            "No Lifecycle Hook found with name rafter-nth"
        )));
        assert!(!hook_is_absent(&ProvisionError::permanent(
            "ValidationError",
            "Heartbeat timeout must be between 30 and 7200"
        )));
    }
}
