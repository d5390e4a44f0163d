//! The API server's network load balancer, its target group and listener (ELBv2). Load
//! balancer and target group names are unique per account and region, so a rerun finds them
//! by name and adopts them only if they carry this cluster's tag.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerAttribute, LoadBalancerSchemeEnum, LoadBalancerTypeEnum,
    ProtocolEnum, Tag, TargetGroupAttribute, TargetTypeEnum,
};

use super::attrs::Attrs;
use super::errors::{AwsResultExt, gone_is_fine};
use super::{Context, not_owned, outputs};
use crate::apply::{Outputs, ProvisionError};
use crate::graph::ResourceKind;
use crate::model::naming::CLUSTER_TAG;
use crate::plan::RecordedResource;

const SERVICE: &str = "elasticloadbalancing";

fn missing(operation: &str) -> ProvisionError {
    ProvisionError::permanent("MissingId", format!("{operation} returned no ARN"))
}

fn tags(attrs: Attrs<'_>) -> Vec<Tag> {
    attrs
        .tags()
        .into_iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect()
}

/// The `wanted` attributes (key, value) whose value differs from what `current` reports:
/// what a modify call must set.
fn differing<'a>(
    current: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
    wanted: &'a [(&'a str, String)],
) -> impl Iterator<Item = (&'a str, &'a str)> {
    let current: Vec<_> = current.collect();
    wanted
        .iter()
        .filter(move |(key, value)| !current.contains(&(Some(*key), Some(value.as_str()))))
        .map(|(key, value)| (*key, value.as_str()))
}

/// ELBv2 answers `LoadBalancerNotFound` / `TargetGroupNotFound` for a name that does not
/// exist: that is "absent", not a failure.
fn absent_is_empty<T: Default>(result: Result<T, ProvisionError>) -> Result<T, ProvisionError> {
    match result {
        Err(error) if error.code.ends_with("NotFound") => Ok(T::default()),
        other => other,
    }
}

/// Whether the resource behind `arn` carries this cluster's tag.
async fn owned(context: &Context, arn: &str) -> Result<bool, ProvisionError> {
    context.calls.read(SERVICE);
    let described = context
        .elb
        .describe_tags()
        .resource_arns(arn)
        .send()
        .await
        .aws()?;
    Ok(described
        .tag_descriptions()
        .iter()
        .flat_map(|description| description.tags())
        .any(|tag| tag.key() == Some(CLUSTER_TAG) && tag.value() == Some(&context.cluster)))
}

/// The ARNs of every load balancer in the region (every page).
pub(crate) async fn all_load_balancer_arns(
    context: &Context,
) -> Result<Vec<String>, ProvisionError> {
    let mut pages = context
        .elb
        .describe_load_balancers()
        .into_paginator()
        .send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        context.calls.read(SERVICE);
        arns.extend(
            page.aws()?
                .load_balancers()
                .iter()
                .filter_map(|balancer| balancer.load_balancer_arn().map(str::to_string)),
        );
    }
    Ok(arns)
}

/// The ARNs of every target group in the region (every page).
pub(crate) async fn all_target_group_arns(
    context: &Context,
) -> Result<Vec<String>, ProvisionError> {
    let mut pages = context.elb.describe_target_groups().into_paginator().send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        context.calls.read(SERVICE);
        arns.extend(
            page.aws()?
                .target_groups()
                .iter()
                .filter_map(|group| group.target_group_arn().map(str::to_string)),
        );
    }
    Ok(arns)
}

pub async fn create(
    context: &Context,
    kind: ResourceKind,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    match kind {
        ResourceKind::LoadBalancer => ensure_load_balancer(context, attrs).await,
        ResourceKind::TargetGroup => ensure_target_group(context, attrs).await,
        ResourceKind::Listener => ensure_listener(context, attrs).await,
        other => Err(super::not_handled(other, SERVICE)),
    }
}

/// Every create here converges an existing resource too.
pub async fn update(
    context: &Context,
    recorded: &RecordedResource,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    create(context, recorded.address.kind, attrs).await
}

pub async fn delete(context: &Context, recorded: &RecordedResource) -> Result<(), ProvisionError> {
    let arn = recorded
        .outputs
        .get("arn")
        .map(String::as_str)
        .unwrap_or_default();
    let elb = &context.elb;
    context.calls.write(SERVICE);
    let result = match recorded.address.kind {
        ResourceKind::LoadBalancer => elb
            .delete_load_balancer()
            .load_balancer_arn(arn)
            .send()
            .await
            .aws()
            .map(drop),
        ResourceKind::TargetGroup => elb
            .delete_target_group()
            .target_group_arn(arn)
            .send()
            .await
            .aws()
            .map(drop),
        ResourceKind::Listener => elb
            .delete_listener()
            .listener_arn(arn)
            .send()
            .await
            .aws()
            .map(drop),
        other => Err(super::not_handled(other, SERVICE)),
    };
    result.or_else(gone_is_fine)
}

async fn ensure_load_balancer(
    context: &Context,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let name = attrs.str("name")?;
    let subnets = attrs.strings("subnets")?;
    context.calls.read(SERVICE);
    let found = absent_is_empty(
        context
            .elb
            .describe_load_balancers()
            .names(name)
            .send()
            .await
            .aws()
            .map(|found| found.load_balancers.unwrap_or_default()),
    )?;
    let balancer = match found.into_iter().next() {
        Some(existing) => {
            let arn = existing
                .load_balancer_arn()
                .ok_or_else(|| missing("DescribeLoadBalancers"))?;
            if !owned(context, arn).await? {
                return Err(not_owned("load balancer", name, &context.cluster));
            }
            let mut current: Vec<&str> = existing
                .availability_zones()
                .iter()
                .filter_map(|zone| zone.subnet_id())
                .collect();
            current.sort_unstable();
            let mut wanted: Vec<&str> = subnets.iter().map(String::as_str).collect();
            wanted.sort_unstable();
            if current != wanted {
                context.calls.write(SERVICE);
                context
                    .elb
                    .set_subnets()
                    .load_balancer_arn(arn)
                    .set_subnets(Some(subnets.clone()))
                    .send()
                    .await
                    .aws()?;
            }
            existing
        }
        None => {
            let scheme = if attrs.bool("internal")? {
                LoadBalancerSchemeEnum::Internal
            } else {
                LoadBalancerSchemeEnum::InternetFacing
            };
            context.calls.write(SERVICE);
            let created = context
                .elb
                .create_load_balancer()
                .name(name)
                .r#type(LoadBalancerTypeEnum::from(attrs.str("load_balancer_type")?))
                .scheme(scheme)
                .set_subnets(Some(subnets))
                .set_security_groups(Some(attrs.strings("security_groups")?))
                .set_tags(Some(tags(attrs)))
                .send()
                .await
                .aws()?;
            created
                .load_balancers
                .unwrap_or_default()
                .into_iter()
                .next()
                .ok_or_else(|| missing("CreateLoadBalancer"))?
        }
    };
    let arn = balancer
        .load_balancer_arn()
        .ok_or_else(|| missing("CreateLoadBalancer"))?;
    // Read back and set on every path, as for target groups.
    let cross_zone = attrs.bool("enable_cross_zone_load_balancing")?.to_string();
    context.calls.read(SERVICE);
    let current = context
        .elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .aws()?;
    let wanted = [("load_balancing.cross_zone.enabled", cross_zone)];
    let current = current
        .attributes()
        .iter()
        .map(|attribute| (attribute.key(), attribute.value()));
    let differing: Vec<LoadBalancerAttribute> = differing(current, &wanted)
        .map(|(key, value)| {
            LoadBalancerAttribute::builder()
                .key(key)
                .value(value)
                .build()
        })
        .collect();
    if !differing.is_empty() {
        context.calls.write(SERVICE);
        context
            .elb
            .modify_load_balancer_attributes()
            .load_balancer_arn(arn)
            .set_attributes(Some(differing))
            .send()
            .await
            .aws()?;
    }
    Ok(outputs([
        ("id", arn.to_string()),
        ("arn", arn.to_string()),
        (
            "dns_name",
            balancer.dns_name().unwrap_or_default().to_string(),
        ),
        (
            "zone_id",
            balancer
                .canonical_hosted_zone_id()
                .unwrap_or_default()
                .to_string(),
        ),
    ]))
}

async fn ensure_target_group(
    context: &Context,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let name = attrs.str("name")?;
    let health = attrs.block("health_check")?;
    let health_protocol = ProtocolEnum::from(health.str("protocol")?);
    let interval = health.int32("interval")?;
    let healthy = health.int32("healthy_threshold")?;
    let unhealthy = health.int32("unhealthy_threshold")?;
    context.calls.read(SERVICE);
    let found = absent_is_empty(
        context
            .elb
            .describe_target_groups()
            .names(name)
            .send()
            .await
            .aws()
            .map(|found| found.target_groups.unwrap_or_default()),
    )?;
    let arn = match found.first() {
        Some(group) => {
            let arn = group
                .target_group_arn()
                .ok_or_else(|| missing("DescribeTargetGroups"))?;
            if !owned(context, arn).await? {
                return Err(not_owned("target group", name, &context.cluster));
            }
            // Adopted, or updated: its health check is brought to the spec.
            let current = (
                group.health_check_protocol().cloned(),
                group.health_check_interval_seconds(),
                group.healthy_threshold_count(),
                group.unhealthy_threshold_count(),
            );
            let wanted = (
                Some(health_protocol.clone()),
                Some(interval),
                Some(healthy),
                Some(unhealthy),
            );
            if current != wanted {
                context.calls.write(SERVICE);
                context
                    .elb
                    .modify_target_group()
                    .target_group_arn(arn)
                    .health_check_protocol(health_protocol)
                    .health_check_interval_seconds(interval)
                    .healthy_threshold_count(healthy)
                    .unhealthy_threshold_count(unhealthy)
                    .send()
                    .await
                    .aws()?;
            }
            arn.to_string()
        }
        None => {
            context.calls.write(SERVICE);
            let created = context
                .elb
                .create_target_group()
                .name(name)
                .port(attrs.int32("port")?)
                .protocol(ProtocolEnum::from(attrs.str("protocol")?))
                .target_type(TargetTypeEnum::from(attrs.str("target_type")?))
                .vpc_id(attrs.str("vpc_id")?)
                .health_check_protocol(health_protocol)
                .health_check_interval_seconds(interval)
                .healthy_threshold_count(healthy)
                .unhealthy_threshold_count(unhealthy)
                .set_tags(Some(tags(attrs)))
                .send()
                .await
                .aws()?;
            created
                .target_groups()
                .first()
                .and_then(|group| group.target_group_arn())
                .ok_or_else(|| missing("CreateTargetGroup"))?
                .to_string()
        }
    };
    // Read back and set where they differ, on every path: an earlier attempt may have made
    // the group and stopped (or lost the answer) before setting them, and AWS's defaults
    // (client IP preserved, 300 s deregistration) are not what the cluster needs.
    let wanted = [
        (
            "deregistration_delay.timeout_seconds",
            attrs.int("deregistration_delay")?.to_string(),
        ),
        (
            "preserve_client_ip.enabled",
            attrs.str("preserve_client_ip")?.to_string(),
        ),
    ];
    context.calls.read(SERVICE);
    let current = context
        .elb
        .describe_target_group_attributes()
        .target_group_arn(&arn)
        .send()
        .await
        .aws()?;
    let current = current
        .attributes()
        .iter()
        .map(|attribute| (attribute.key(), attribute.value()));
    let differing: Vec<TargetGroupAttribute> = differing(current, &wanted)
        .map(|(key, value)| {
            TargetGroupAttribute::builder()
                .key(key)
                .value(value)
                .build()
        })
        .collect();
    if !differing.is_empty() {
        context.calls.write(SERVICE);
        context
            .elb
            .modify_target_group_attributes()
            .target_group_arn(&arn)
            .set_attributes(Some(differing))
            .send()
            .await
            .aws()?;
    }
    Ok(outputs([("id", arn.clone()), ("arn", arn)]))
}

/// Listeners have no name: one per port of the load balancer.
async fn ensure_listener(context: &Context, attrs: Attrs<'_>) -> Result<Outputs, ProvisionError> {
    let balancer = attrs.str("load_balancer_arn")?;
    let port = attrs.int32("port")?;
    let target_group = attrs.block("default_action")?.str("target_group_arn")?;
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(target_group)
        .build();
    let protocol = ProtocolEnum::from(attrs.str("protocol")?);
    context.calls.read(SERVICE);
    let found = context
        .elb
        .describe_listeners()
        .load_balancer_arn(balancer)
        .send()
        .await
        .aws()?;
    let existing = found
        .listeners()
        .iter()
        .find(|listener| listener.port() == Some(port));
    let arn = match existing {
        Some(listener) => {
            let arn = listener
                .listener_arn()
                .ok_or_else(|| missing("DescribeListeners"))?;
            let forwards_to = listener
                .default_actions()
                .iter()
                .any(|action| action.target_group_arn() == Some(target_group));
            if !forwards_to || listener.protocol() != Some(&protocol) {
                context.calls.write(SERVICE);
                context
                    .elb
                    .modify_listener()
                    .listener_arn(arn)
                    .protocol(protocol)
                    .default_actions(forward)
                    .send()
                    .await
                    .aws()?;
            }
            arn.to_string()
        }
        None => {
            context.calls.write(SERVICE);
            let created = context
                .elb
                .create_listener()
                .load_balancer_arn(balancer)
                .port(port)
                .protocol(protocol)
                .default_actions(forward)
                .set_tags(Some(tags(attrs)))
                .send()
                .await
                .aws()?;
            created
                .listeners()
                .first()
                .and_then(|listener| listener.listener_arn())
                .ok_or_else(|| missing("CreateListener"))?
                .to_string()
        }
    };
    Ok(outputs([("id", arn.clone()), ("arn", arn)]))
}
