//! Carrying out a rolling update's replacements on AWS, one at a time, each behind a gate on
//! the members' own reports of their etcd (`validate::member_reports`): the cluster healthy
//! before a member is touched, and after it, the replaced member reporting from its new
//! instance, healthy and caught up, in [`Gate::passes`] consecutive reports, with every other
//! member healthy too. Every wait has a deadline and says what is late.

use std::time::{Duration, Instant};

use aws_sdk_autoscaling::types::{AutoScalingGroup, LifecycleState};
use time::OffsetDateTime;

use super::plan::{Batch, GroupState, InstanceState, Replacement};
use crate::apply::ProvisionError;
use crate::aws::errors::AwsResultExt;
use crate::aws::{Context, compute, events, health};
use crate::state::{StateError, StateStore};
use crate::upgrade::drain::Drainer;
use crate::validate::Report;
use crate::validate::member_reports::{self, MemberReport};

/// How long a terminated member's instance may take to reach its terminating hook.
const HOOK_ENTRY_WITHIN: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RollError {
    #[error("cannot ask AWS: {0}")]
    Aws(#[from] ProvisionError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("etcd is not healthy now:\n  {findings}")]
    NotHealthy { findings: String },
    #[error("etcd is not healthy, so member {member} is not replaced:\n  {findings}")]
    Unhealthy { member: String, findings: String },
    #[error("{what} within {seconds} s; the members as they last reported:\n  {members}")]
    Late {
        what: String,
        seconds: u64,
        members: String,
    },
    #[error("{0} holds no etcd member")]
    NotAMember(String),
    #[error(
        "group {group} has {in_service} of its {desired} instance(s) in service without the old ones after {seconds} s: see its activities (`aws autoscaling describe-scaling-activities --auto-scaling-group-name {group}`)"
    )]
    CapacityLate {
        group: String,
        in_service: usize,
        desired: i32,
        seconds: u64,
    },
    #[error("auto-scaling group {0} is gone")]
    GroupGone(String),
    #[error(transparent)]
    Drain(#[from] crate::upgrade::drain::DrainError),
}

/// When a replaced member counts as back.
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    /// Consecutive reports (each newer than the last) in which the replaced member runs on
    /// its new instance and every member is healthy.
    pub passes: u32,
    /// How often the reports are read (members write one every 30 s).
    pub poll: Duration,
    /// The longest the new instance, and then the gate, may take.
    pub within: Duration,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            passes: 3,
            poll: Duration::from_secs(10),
            within: Duration::from_secs(20 * 60),
        }
    }
}

/// A rolling update of one cluster's control plane.
pub struct Roll<'a, S> {
    pub context: &'a Context,
    pub store: &'a S,
    pub cluster: &'a str,
    /// Every member the spec names.
    pub members: Vec<String>,
    pub gate: Gate,
}

/// The groups named (with the member each holds, if any) as Auto Scaling describes them;
/// instances on their way out are left out.
pub async fn group_states(
    context: &Context,
    groups: &[(String, Option<String>)],
) -> Result<Vec<GroupState>, ProvisionError> {
    let names: Vec<String> = groups.iter().map(|(name, _)| name.clone()).collect();
    let described = compute::groups_named(context, &names).await?;
    let numbers = template_versions(context, &described).await?;
    Ok(groups
        .iter()
        .filter_map(|(name, member)| {
            let group = described
                .iter()
                .find(|group| group.auto_scaling_group_name() == Some(name.as_str()))?;
            Some(GroupState {
                group: name.clone(),
                member: member.clone(),
                bundle: None,
                version: group.launch_template().and_then(|template| {
                    let version = template.version()?;
                    let (latest, default) = template
                        .launch_template_id()
                        .and_then(|id| numbers.get(id))
                        .cloned()
                        .unwrap_or_default();
                    Some(match version {
                        "$Latest" => latest,
                        "$Default" => default,
                        number => number.to_string(),
                    })
                }),
                instances: staying(group)
                    .map(|instance| InstanceState {
                        id: instance.instance_id().unwrap_or_default().to_string(),
                        version: instance
                            .launch_template()
                            .and_then(|template| template.version())
                            .map(str::to_string),
                        bundle: None,
                    })
                    .collect(),
            })
        })
        .collect())
}

/// The latest and default version numbers of the launch templates `groups` use: a group
/// may name `$Latest` or `$Default` (rafter's groups take `$Latest`), its instances always
/// a number.
async fn template_versions(
    context: &Context,
    groups: &[AutoScalingGroup],
) -> Result<std::collections::BTreeMap<String, (String, String)>, ProvisionError> {
    let ids: Vec<String> = groups
        .iter()
        .filter_map(|group| group.launch_template()?.launch_template_id())
        .map(str::to_string)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut numbers = std::collections::BTreeMap::new();
    for chunk in ids.chunks(100) {
        context.calls.read("ec2");
        let described = context
            .ec2
            .describe_launch_templates()
            .set_launch_template_ids(Some(chunk.to_vec()))
            .send()
            .await
            .aws()?;
        for template in described.launch_templates() {
            let number = |version: Option<i64>| version.map(|v| v.to_string()).unwrap_or_default();
            numbers.insert(
                template
                    .launch_template_id()
                    .unwrap_or_default()
                    .to_string(),
                (
                    number(template.latest_version_number()),
                    number(template.default_version_number()),
                ),
            );
        }
    }
    Ok(numbers)
}

/// A group's instances that are not terminating or gone.
fn staying(
    group: &AutoScalingGroup,
) -> impl Iterator<Item = &aws_sdk_autoscaling::types::Instance> {
    group.instances().iter().filter(|instance| {
        !matches!(
            instance.lifecycle_state(),
            Some(
                LifecycleState::Terminating
                    | LifecycleState::TerminatingWait
                    | LifecycleState::TerminatingProceed
                    | LifecycleState::Terminated
            )
        )
    })
}

impl<S: StateStore> Roll<'_, S> {
    /// The members' reports now, and what validation finds in them.
    async fn judged(&self) -> Result<(Vec<(String, Option<MemberReport>)>, Report), RollError> {
        let reports = member_reports::read(self.store, self.cluster, &self.members).await?;
        let mut report = Report::default();
        member_reports::judge(
            &self.members,
            &reports,
            OffsetDateTime::now_utc(),
            &mut report,
        );
        Ok((reports, report))
    }

    /// `groups` with what is known of their bundles: for a member's group, the digest of the
    /// bundle published for it, and for its instance, the one the member last reported
    /// running from that instance.
    pub async fn with_bundles(
        &self,
        mut groups: Vec<GroupState>,
    ) -> Result<Vec<GroupState>, RollError> {
        let reports = member_reports::read(self.store, self.cluster, &self.members).await?;
        for group in &mut groups {
            let Some(member) = group.member.clone() else {
                continue;
            };
            let key =
                crate::state::layout::BundleOwner::ControlPlaneMember(&member).key(self.cluster);
            group.bundle = self.store.read(&key).await?.map(|bundle| {
                use sha2::Digest;
                format!("{:x}", sha2::Sha256::digest(&bundle))
            });
            let reported = reports
                .iter()
                .find(|(name, _)| *name == member)
                .and_then(|(_, report)| report.as_ref())
                .filter(|report| !report.bundle.is_empty());
            for instance in &mut group.instances {
                instance.bundle = reported
                    .filter(|report| report.instance == instance.id)
                    .map(|report| report.bundle.clone());
            }
        }
        Ok(groups)
    }

    /// The members' reports now, judged: Ok when etcd is healthy.
    pub async fn check(&self) -> Result<Vec<(String, Option<MemberReport>)>, RollError> {
        let (reports, report) = self.judged().await?;
        match report.healthy() {
            true => Ok(reports),
            false => Err(RollError::NotHealthy {
                findings: findings(&report),
            }),
        }
    }

    /// Replaces one member's instance and waits until the member is back: what happened.
    /// Rerun after a kill, it finds the old instance gone and goes on waiting.
    pub async fn replace(&self, step: &Replacement) -> Result<String, RollError> {
        let member = step
            .member
            .clone()
            .ok_or_else(|| RollError::NotAMember(step.group.clone()))?;
        let started = Instant::now();
        if self.in_group(&step.group, &step.instance).await? {
            match self.check().await {
                Err(RollError::NotHealthy { findings }) => {
                    return Err(RollError::Unhealthy { member, findings });
                }
                other => other.map(drop)?,
            }
            self.terminate(&step.instance).await?;
        }
        self.let_go(&step.group, &step.instance).await?;
        let new = self
            .new_instance(&step.group, &step.instance, &member)
            .await?;
        self.wait_back(&member, Some(&new)).await?;
        Ok(format!(
            "member {member} is back on instance {new}, healthy and caught up ({} s)",
            started.elapsed().as_secs()
        ))
    }

    /// Brings a member's group up to date: its instance replaced if it runs an older launch
    /// template version than the group's, and in any case the gate passed on the instance
    /// that runs the group's version. Rerun after a kill, it finds the old instance gone
    /// and waits for the new one's gate.
    pub async fn bring_up_to_date(&self, group: &GroupState) -> Result<String, RollError> {
        let member = group
            .member
            .clone()
            .ok_or_else(|| RollError::NotAMember(group.group.clone()))?;
        if let Some(stale) = super::plan(std::slice::from_ref(group), &[], false).first() {
            return self.replace(stale).await;
        }
        self.wait_member(&group.group, &member).await
    }

    /// Waits until `member`'s group (AWS name `group`) has an instance in service and the
    /// gate passes on it: the member reports from it, it and every other member healthy and
    /// caught up, in consecutive reports.
    pub async fn wait_member(&self, group: &str, member: &str) -> Result<String, RollError> {
        let started = Instant::now();
        let current = self.new_instance(group, "", member).await?;
        self.wait_back(member, Some(&current)).await?;
        Ok(format!(
            "member {member} runs its group's launch template on instance {current}, healthy and caught up ({} s)",
            started.elapsed().as_secs()
        ))
    }

    /// Waits until every member is healthy, caught up and lists exactly the members, in
    /// consecutive reports (counted by the first member's).
    pub async fn wait_settled(&self) -> Result<(), RollError> {
        match self.members.first() {
            Some(first) => self.wait_back(first, None).await,
            None => Ok(()),
        }
    }

    /// Replaces a node group's instances of `batch` together, with a surge: they are
    /// detached from their group with its desired capacity kept, so the group launches their
    /// replacements at once while they still run; once the group has its desired capacity in
    /// service again without them, each one's node is drained through the API (with
    /// `drain`) and the instance terminated. Rerun after a kill, an instance detached already
    /// is not detached again, and one terminated already is not missed.
    pub async fn replace_workers(
        &self,
        batch: &Batch,
        drain: Option<&Drainer>,
    ) -> Result<String, RollError> {
        let started = Instant::now();
        let group = batch
            .replacements
            .first()
            .map(|replacement| replacement.group.clone())
            .unwrap_or_default();
        let old: Vec<String> = batch
            .replacements
            .iter()
            .map(|replacement| replacement.instance.clone())
            .collect();
        let described = self
            .described(&group)
            .await?
            .ok_or_else(|| RollError::GroupGone(group.clone()))?;
        let desired = described.desired_capacity().unwrap_or_default();
        let attached: Vec<String> = old
            .iter()
            .filter(|id| {
                staying(&described).any(|listed| listed.instance_id() == Some(id.as_str()))
            })
            .cloned()
            .collect();
        // Known before they leave the group (EC2 still describes them after).
        let nodes: Vec<String> = health::hostnames(self.context, &old)
            .await?
            .into_values()
            .filter(|hostname| !hostname.is_empty())
            .collect();
        // The API answers before anything changes: a drain that cannot start would leave the
        // old instances detached.
        if let Some(drainer) = drain {
            for node in &nodes {
                crate::upgrade::drain::node_known(&drainer.client, node).await?;
            }
        }
        if !attached.is_empty() {
            self.context.calls.write("autoscaling");
            self.context
                .autoscaling
                .detach_instances()
                .auto_scaling_group_name(&group)
                .set_instance_ids(Some(attached))
                .should_decrement_desired_capacity(false)
                .send()
                .await
                .aws()?;
        }
        self.wait_capacity(&group, &old, desired).await?;
        let drained = match drain {
            Some(drainer) => format!(
                "{} node(s) drained",
                drainer.cordon_and_drain(&nodes).await?.len()
            ),
            None => "not drained (--no-drain)".to_string(),
        };
        self.terminate_instances(&old).await?;
        Ok(format!(
            "{} replaced in {group}; {desired} in service again; {drained} ({} s)",
            old.join(", "),
            started.elapsed().as_secs()
        ))
    }

    /// Waits until `group` has `desired` instances in service, none of them in `old`.
    async fn wait_capacity(
        &self,
        group: &str,
        old: &[String],
        desired: i32,
    ) -> Result<(), RollError> {
        let deadline = Instant::now() + self.gate.within;
        loop {
            let in_service = match self.described(group).await? {
                Some(described) => described
                    .instances()
                    .iter()
                    .filter(|instance| {
                        instance.lifecycle_state() == Some(&LifecycleState::InService)
                            && !old
                                .iter()
                                .any(|id| instance.instance_id() == Some(id.as_str()))
                    })
                    .count(),
                None => return Err(RollError::GroupGone(group.to_string())),
            };
            if in_service >= usize::try_from(desired).unwrap_or_default() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(RollError::CapacityLate {
                    group: group.to_string(),
                    in_service,
                    desired,
                    seconds: self.gate.within.as_secs(),
                });
            }
            tokio::time::sleep(self.gate.poll.min(Duration::from_secs(5))).await;
        }
    }

    /// Terminates instances that left their group; those gone already are not an error.
    async fn terminate_instances(&self, ids: &[String]) -> Result<(), RollError> {
        for id in ids {
            self.context.calls.write("ec2");
            let terminated = self
                .context
                .ec2
                .terminate_instances()
                .instance_ids(id)
                .send()
                .await
                .aws();
            match terminated {
                Err(error) if error.code == "InvalidInstanceID.NotFound" => {}
                other => other.map(drop)?,
            }
        }
        Ok(())
    }

    async fn described(&self, group: &str) -> Result<Option<AutoScalingGroup>, RollError> {
        Ok(compute::groups_named(self.context, &[group.to_string()])
            .await?
            .into_iter()
            .next())
    }

    async fn in_group(&self, group: &str, instance: &str) -> Result<bool, RollError> {
        Ok(self.described(group).await?.is_some_and(|described| {
            staying(&described).any(|listed| listed.instance_id() == Some(instance))
        }))
    }

    /// Terminates `instance` through its group, which launches another in its place.
    async fn terminate(&self, instance: &str) -> Result<(), RollError> {
        self.context.calls.write("autoscaling");
        let terminated = self
            .context
            .autoscaling
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance)
            .should_decrement_desired_capacity(false)
            .send()
            .await
            .aws();
        match terminated {
            // Gone already (a rerun, or Auto Scaling got there first).
            Err(error) if error.message.contains("not found") => Ok(()),
            other => other.map(drop).map_err(RollError::from),
        }
    }

    /// A terminating lifecycle hook (the node termination handler's) holds a terminated
    /// instance, still running, until its action is completed or its heartbeat runs out
    /// (300 s), and with it the member's etcd volume, which the replacement needs. rafter
    /// replaced the member under its own gates, so it completes the action itself (the
    /// handler, when it gets there, finds nothing left to do). Rerun after a kill, it finds
    /// the instance still waiting and lets it go then.
    async fn let_go(&self, group: &str, instance: &str) -> Result<(), RollError> {
        let deadline = Instant::now() + HOOK_ENTRY_WITHIN;
        loop {
            let state = self.described(group).await?.and_then(|described| {
                described
                    .instances()
                    .iter()
                    .find(|listed| listed.instance_id() == Some(instance))
                    .and_then(|listed| listed.lifecycle_state().cloned())
            });
            match state {
                Some(LifecycleState::TerminatingWait) => {
                    events::complete_termination(self.context, group, instance).await?;
                    return Ok(());
                }
                // Not at the hook yet (AWS moves it there within seconds).
                Some(LifecycleState::Terminating) if Instant::now() < deadline => {
                    tokio::time::sleep(self.gate.poll.min(Duration::from_secs(2))).await;
                }
                _ => return Ok(()),
            }
        }
    }

    /// The instance the group launched in `old`'s place, once in service.
    async fn new_instance(
        &self,
        group: &str,
        old: &str,
        member: &str,
    ) -> Result<String, RollError> {
        let deadline = Instant::now() + self.gate.within;
        loop {
            if let Some(described) = self.described(group).await? {
                let in_service = staying(&described).find(|instance| {
                    instance.instance_id() != Some(old)
                        && instance.lifecycle_state() == Some(&LifecycleState::InService)
                });
                if let Some(instance) = in_service.and_then(|instance| instance.instance_id()) {
                    return Ok(instance.to_string());
                }
            }
            if Instant::now() >= deadline {
                return Err(self
                    .late(&format!(
                        "member {member}: group {group} has no new instance in service"
                    ))
                    .await);
            }
            tokio::time::sleep(self.gate.poll.min(Duration::from_secs(5))).await;
        }
    }

    /// Waits until `member` reports (from `instance`, when given), it and every other member
    /// healthy, in [`Gate::passes`] reports in a row, each newer than the last.
    async fn wait_back(&self, member: &str, instance: Option<&str>) -> Result<(), RollError> {
        let deadline = Instant::now() + self.gate.within;
        let (mut passes, mut last_seen) = (0, String::new());
        loop {
            let (reports, report) = self.judged().await?;
            let own = reports
                .iter()
                .find(|(name, _)| name == member)
                .and_then(|(_, report)| report.as_ref())
                .filter(|report| instance.is_none_or(|instance| report.instance == instance));
            if let Some(own) = own.filter(|own| own.at != last_seen) {
                passes = if report.healthy() { passes + 1 } else { 0 };
                last_seen = own.at.clone();
                if passes >= self.gate.passes {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(self
                    .late(&format!(
                        "member {member} did not report healthy{} {} times in a row",
                        instance
                            .map(|instance| format!(" from instance {instance}"))
                            .unwrap_or_default(),
                        self.gate.passes
                    ))
                    .await);
            }
            tokio::time::sleep(self.gate.poll).await;
        }
    }

    /// A deadline passed: what is late, and every member's last report.
    async fn late(&self, what: &str) -> RollError {
        let members = match member_reports::read(self.store, self.cluster, &self.members).await {
            Ok(reports) => reports
                .iter()
                .map(|(member, report)| describe(member, report.as_ref()))
                .collect::<Vec<_>>()
                .join("\n  "),
            Err(error) => format!("(the reports could not be read: {error})"),
        };
        RollError::Late {
            what: what.to_string(),
            seconds: self.gate.within.as_secs(),
            members,
        }
    }
}

/// One member's last report, in a line.
fn describe(member: &str, report: Option<&MemberReport>) -> String {
    let Some(report) = report else {
        return format!("member {member}: no report");
    };
    format!(
        "member {member}: {} on {} ({}), leader {}, raft index {}, reported {}",
        if report.healthy {
            "healthy"
        } else {
            "NOT healthy"
        },
        report.host,
        report.instance,
        report.leader,
        report.raft_index,
        report.at
    )
}

fn findings(report: &Report) -> String {
    report
        .findings
        .iter()
        .map(|finding| format!("{}: {} ({})", finding.subject, finding.problem, finding.fix))
        .collect::<Vec<_>>()
        .join("\n  ")
}
