//! What AWS says about a cluster's running parts, for `validate cluster`: the targets behind
//! each target group with their health, and the instances each group has in service with
//! the host names they boot with (the names their boot reports carry).

use aws_sdk_autoscaling::types::{AutoScalingGroup, LifecycleState};

use super::Context;
use super::errors::AwsResultExt;
use crate::apply::ProvisionError;

/// One target of a target group, as Elastic Load Balancing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    pub target: String,
    /// `healthy`, `initial`, `unhealthy`, `unused`, `draining`, `unavailable`.
    pub state: String,
    /// ELB's reason and description, when not healthy.
    pub reason: Option<String>,
}

/// The targets of the target group `arn`.
pub async fn targets(context: &Context, arn: &str) -> Result<Vec<TargetHealth>, ProvisionError> {
    context.calls.read("elasticloadbalancing");
    let health = context
        .elb
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .aws()?;
    Ok(health
        .target_health_descriptions()
        .iter()
        .map(|description| {
            let state = description.target_health();
            TargetHealth {
                target: description
                    .target()
                    .and_then(|target| target.id())
                    .unwrap_or_default()
                    .to_string(),
                state: state
                    .and_then(|state| state.state())
                    .map(|state| state.as_str().to_string())
                    .unwrap_or_else(|| "unknown".to_string()),
                reason: state.and_then(|state| {
                    let reason = state.reason().map(|reason| reason.as_str().to_string());
                    match (reason, state.description()) {
                        (Some(reason), Some(description)) => {
                            Some(format!("{reason}: {description}"))
                        }
                        (reason, description) => reason.or(description.map(str::to_string)),
                    }
                }),
            }
        })
        .collect())
}

/// An instance a group has in service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningInstance {
    pub group: String,
    pub id: String,
    /// The first label of its private DNS name (`ip-10-0-32-10`): its host name.
    pub hostname: String,
}

/// The instances in service in `groups` (as described).
pub async fn instances(
    context: &Context,
    groups: &[AutoScalingGroup],
) -> Result<Vec<RunningInstance>, ProvisionError> {
    let mut members: Vec<(String, String)> = Vec::new();
    for group in groups {
        for instance in group
            .instances()
            .iter()
            .filter(|instance| instance.lifecycle_state() == Some(&LifecycleState::InService))
        {
            members.push((
                group
                    .auto_scaling_group_name()
                    .unwrap_or_default()
                    .to_string(),
                instance.instance_id().unwrap_or_default().to_string(),
            ));
        }
    }
    let ids: Vec<String> = members.iter().map(|(_, id)| id.clone()).collect();
    let hostnames = hostnames(context, &ids).await?;
    Ok(members
        .into_iter()
        .filter_map(|(group, id)| {
            Some(RunningInstance {
                group,
                hostname: hostnames.get(&id)?.clone(),
                id,
            })
        })
        .collect())
}

/// The host name of each of the instances `ids` that EC2 describes: the first label of its
/// private DNS name (`ip-10-0-32-10`), which is also its Kubernetes node's name.
pub async fn hostnames(
    context: &Context,
    ids: &[String],
) -> Result<std::collections::BTreeMap<String, String>, ProvisionError> {
    let mut hostnames = std::collections::BTreeMap::new();
    for chunk in ids.chunks(100) {
        context.calls.read("ec2");
        let described = context
            .ec2
            .describe_instances()
            .set_instance_ids(Some(chunk.to_vec()))
            .send()
            .await
            .aws()?;
        for instance in described
            .reservations()
            .iter()
            .flat_map(|reservation| reservation.instances())
        {
            let hostname = instance
                .private_dns_name()
                .and_then(|name| name.split('.').next())
                .unwrap_or_default()
                .to_string();
            hostnames.insert(
                instance.instance_id().unwrap_or_default().to_string(),
                hostname,
            );
        }
    }
    Ok(hostnames)
}
