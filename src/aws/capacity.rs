//! Whether AWS can launch what the auto-scaling groups ask for: each group's instance type
//! offered in each of its zones (checked before an apply, so a group that can never launch
//! is refused with the zones that would work), and each group reaching its desired capacity
//! (waited for after an apply, so a member that cannot launch is not reported as success),
//! with the reason Auto Scaling gives for the launches that failed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use aws_sdk_autoscaling::types::{AutoScalingGroup, LifecycleState, ScalingActivityStatusCode};
use aws_sdk_ec2::types::LocationType;

use super::errors::AwsResultExt;
use super::{Context, compute};
use crate::apply::{ErrorClass, ProvisionError};
use crate::model::placements::Placement;

/// A group whose instance type is not offered in one of its zones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unoffered {
    pub group: String,
    pub instance_type: String,
    pub zone: String,
    /// The zones of the region that do offer it.
    pub offered_in: Vec<String>,
}

impl fmt::Display for Unoffered {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}: instance type {} is not offered in {}",
            self.group, self.instance_type, self.zone
        )?;
        if self.offered_in.is_empty() {
            write!(formatter, " nor in any zone of the region")
        } else {
            write!(formatter, " (it is in {})", self.offered_in.join(", "))
        }
    }
}

/// The placements whose type is not offered in one of their zones
/// (`DescribeInstanceTypeOfferings` by zone, for every type the groups use).
pub async fn unoffered(
    context: &Context,
    placements: &[Placement],
) -> Result<Vec<Unoffered>, ProvisionError> {
    let types: BTreeSet<&str> = placements
        .iter()
        .map(|placement| placement.instance_type.as_str())
        .collect();
    if types.is_empty() {
        return Ok(Vec::new());
    }
    let mut offered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut request = context
        .ec2
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZone);
    let mut types_filter = aws_sdk_ec2::types::Filter::builder().name("instance-type");
    for instance_type in &types {
        types_filter = types_filter.values(*instance_type);
    }
    request = request.filters(types_filter.build());
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        context.calls.read("ec2");
        for offering in page.aws()?.instance_type_offerings() {
            if let (Some(instance_type), Some(zone)) =
                (offering.instance_type(), offering.location())
            {
                offered
                    .entry(instance_type.as_str().to_string())
                    .or_default()
                    .insert(zone.to_string());
            }
        }
    }
    let mut missing = Vec::new();
    for placement in placements {
        let zones = offered
            .get(&placement.instance_type)
            .cloned()
            .unwrap_or_default();
        for zone in &placement.zones {
            if !zones.contains(zone) {
                missing.push(Unoffered {
                    group: placement.group.clone(),
                    instance_type: placement.instance_type.clone(),
                    zone: zone.clone(),
                    offered_in: zones.iter().cloned().collect(),
                });
            }
        }
    }
    Ok(missing)
}

/// One group's instances against what it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCapacity {
    pub group: String,
    pub desired: usize,
    pub in_service: usize,
    /// The most recent failed launch's reason, as Auto Scaling words it.
    pub last_failure: Option<String>,
}

impl GroupCapacity {
    pub fn reached(&self) -> bool {
        self.in_service >= self.desired
    }
}

impl fmt::Display for GroupCapacity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}: {} of {} instance(s) in service",
            self.group, self.in_service, self.desired
        )?;
        if let Some(failure) = &self.last_failure {
            write!(formatter, "; the last launch failed: {failure}")?;
        }
        Ok(())
    }
}

/// How long to wait for capacity, and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct CapacityWait {
    pub deadline: Duration,
    pub pause: Duration,
}

/// Waits until every group in `groups` has its desired capacity in service; `progress` hears
/// each look. Returns the groups still short when the deadline passed. A look refused for
/// now (throttled, a 5xx: rafter's clients have the SDK's retries off) is tried again at the
/// next one; a lasting refusal, or one still there at the deadline, is the error.
pub async fn wait_for_capacity(
    context: &Context,
    groups: &[String],
    wait: CapacityWait,
    progress: impl Fn(&[GroupCapacity]),
) -> Result<(), CapacityError> {
    let started = Instant::now();
    loop {
        let capacities = match capacities(context, groups).await {
            Ok(capacities) => capacities,
            Err(error)
                if error.class == ErrorClass::Transient && started.elapsed() < wait.deadline =>
            {
                tokio::time::sleep(wait.pause).await;
                continue;
            }
            Err(error) => return Err(CapacityError::Describe(error)),
        };
        progress(&capacities);
        let short: Vec<GroupCapacity> = capacities
            .into_iter()
            .filter(|capacity| !capacity.reached())
            .collect();
        if short.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= wait.deadline {
            return Err(CapacityError::Short {
                waited: wait.deadline,
                groups: short,
            });
        }
        tokio::time::sleep(wait.pause).await;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error("cannot read the auto-scaling groups: {0}")]
    Describe(ProvisionError),
    #[error(
        "after {}s, {} group(s) are short of instances:\n{}",
        waited.as_secs(),
        groups.len(),
        groups.iter().map(|group| format!("  {group}")).collect::<Vec<_>>().join("\n")
    )]
    Short {
        waited: Duration,
        groups: Vec<GroupCapacity>,
    },
}

/// Each group's desired capacity and instances in service (healthy), and for a group short
/// of them the reason its last launch failed.
pub async fn capacities(
    context: &Context,
    groups: &[String],
) -> Result<Vec<GroupCapacity>, ProvisionError> {
    capacities_of(context, &compute::groups_named(context, groups).await?).await
}

/// As [`capacities`], of groups already described.
pub async fn capacities_of(
    context: &Context,
    groups: &[AutoScalingGroup],
) -> Result<Vec<GroupCapacity>, ProvisionError> {
    let mut found: Vec<GroupCapacity> = groups
        .iter()
        .map(|group| GroupCapacity {
            group: group
                .auto_scaling_group_name()
                .unwrap_or_default()
                .to_string(),
            desired: usize::try_from(group.desired_capacity().unwrap_or(0)).unwrap_or(0),
            in_service: group
                .instances()
                .iter()
                .filter(|instance| {
                    instance.lifecycle_state() == Some(&LifecycleState::InService)
                        && instance.health_status() == Some("Healthy")
                })
                .count(),
            last_failure: None,
        })
        .collect();
    for capacity in found.iter_mut().filter(|capacity| !capacity.reached()) {
        capacity.last_failure = last_failure(context, &capacity.group).await?;
    }
    Ok(found)
}

/// The reason of the group's most recent failed or cancelled scaling activity.
async fn last_failure(context: &Context, group: &str) -> Result<Option<String>, ProvisionError> {
    context.calls.read("autoscaling");
    let activities = context
        .autoscaling
        .describe_scaling_activities()
        .auto_scaling_group_name(group)
        .max_records(10)
        .send()
        .await
        .aws()?;
    Ok(activities
        .activities()
        .iter()
        .filter(|activity| {
            matches!(
                activity.status_code(),
                Some(ScalingActivityStatusCode::Failed | ScalingActivityStatusCode::Cancelled)
            )
        })
        .max_by_key(|activity| {
            activity
                .start_time()
                .map(|time| (time.secs(), time.subsec_nanos()))
        })
        .and_then(|activity| activity.status_message().or(activity.description()))
        .map(str::to_string))
}
