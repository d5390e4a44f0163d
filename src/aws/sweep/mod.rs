//! The delete sweep: after the recorded resources are gone, find everything still tagged
//! `rafter.dev/cluster=<name>` (what an interrupted run or a lost state file left behind) and
//! delete it, dependents first, in rounds until nothing is left or a round makes no progress.
//! What the cluster's add-ons made in its VPC (the cloud controller's load balancers, target
//! groups and security groups, tagged `kubernetes.io/cluster/<name>: owned` as Kubernetes
//! marks what it owns) goes too, and first of all ([`Reach::AddOns`]): it sits in the
//! cluster's subnets and groups, whose deletes it would block.
//!
//! Only resources that carry this cluster's ownership tag are touched; the tag is checked on
//! every describe result, not just trusted to the request's filter. Route53 records cannot
//! be tagged, so the sweep leaves them to the state-driven delete. Volumes the EBS CSI driver
//! made for claims are user data and stay (they hold no subnet).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

mod discover;
mod release;

use futures_util::future::join_all;

use super::{AwsProvisioner, outputs};
use crate::apply::{ErrorClass, ProvisionError, Provisioner};
use crate::graph::{Address, ResourceKind};
use crate::plan::RecordedResource;
use discover::discover;
use release::{
    delete_classic_load_balancer, delete_inline_policies, disassociate_route_table,
    revoke_group_references, revoke_references_to, terminate_instance,
};

/// What the sweep looks for: the graph's taggable kinds, and the instances auto-scaling
/// groups launched (which are not in the graph).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeftoverKind {
    Instance,
    /// A classic load balancer: only ever the cloud controller's.
    ClassicLoadBalancer,
    Resource(ResourceKind),
}

impl LeftoverKind {
    pub fn type_name(self) -> &'static str {
        match self {
            LeftoverKind::Instance => "aws_instance",
            LeftoverKind::ClassicLoadBalancer => "aws_elb",
            LeftoverKind::Resource(kind) => kind.type_name(),
        }
    }
}

use LeftoverKind::{ClassicLoadBalancer, Instance, Resource};

/// What a sweep looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Everything tagged as the cluster's, rafter's or its add-ons'.
    Everything,
    /// Only what the add-ons made (the Kubernetes ownership tag without rafter's).
    AddOns,
}

impl Reach {
    pub(super) fn phases(self) -> &'static [LeftoverKind] {
        match self {
            Reach::Everything => &PHASES,
            Reach::AddOns => &ADDON_PHASES,
        }
    }
}

/// The kinds the add-ons make, in the order they are deleted.
pub(super) const ADDON_PHASES: [LeftoverKind; 4] = [
    ClassicLoadBalancer,
    Resource(ResourceKind::LoadBalancer),
    Resource(ResourceKind::TargetGroup),
    Resource(ResourceKind::SecurityGroup),
];

/// Kinds in the order they are deleted: whatever holds on to another goes first.
pub(super) const PHASES: [LeftoverKind; 19] = [
    Resource(ResourceKind::AutoscalingGroup),
    Instance,
    // Held by an instance until it has terminated.
    Resource(ResourceKind::EbsVolume),
    ClassicLoadBalancer,
    Resource(ResourceKind::LoadBalancer),
    Resource(ResourceKind::TargetGroup),
    Resource(ResourceKind::LaunchTemplate),
    Resource(ResourceKind::KeyPair),
    Resource(ResourceKind::NatGateway),
    Resource(ResourceKind::ElasticIp),
    Resource(ResourceKind::InternetGateway),
    Resource(ResourceKind::RouteTable),
    Resource(ResourceKind::Subnet),
    Resource(ResourceKind::SecurityGroup),
    Resource(ResourceKind::Vpc),
    Resource(ResourceKind::IamInstanceProfile),
    Resource(ResourceKind::IamRole),
    // A rule goes with its targets, then the queue they sent to.
    Resource(ResourceKind::EventRule),
    Resource(ResourceKind::SqsQueue),
];

/// A resource tagged as this cluster's that is still there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Leftover {
    pub kind: LeftoverKind,
    /// The id, ARN or name its delete call takes.
    pub id: String,
}

impl fmt::Display for Leftover {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.kind.type_name(), self.id)
    }
}

/// One resource found by the sweep, and whether it is already on its way out.
pub(super) struct Found {
    pub(super) leftover: Leftover,
    /// Shutting down or deleting: wait for it, do not delete it again.
    pub(super) going: bool,
}

impl Found {
    pub(super) fn new(kind: ResourceKind, id: &str) -> Self {
        Self::of(Resource(kind), id)
    }

    pub(super) fn of(kind: LeftoverKind, id: &str) -> Self {
        Self {
            leftover: Leftover {
                kind,
                id: id.to_string(),
            },
            going: false,
        }
    }
}

/// What the sweep deleted and what it could not, with the last error of each.
#[derive(Debug, Default)]
pub struct SweepReport {
    pub deleted: Vec<Leftover>,
    pub remaining: Vec<(Leftover, ProvisionError)>,
    /// Kinds that could not even be listed.
    pub unlisted: Vec<(LeftoverKind, ProvisionError)>,
    pub rounds: u32,
}

impl SweepReport {
    pub fn clean(&self) -> bool {
        self.remaining.is_empty() && self.unlisted.is_empty()
    }
}

/// How long the sweep keeps going while it makes progress, how long it waits out refusals
/// that may pass without deleting anything, and the pause between rounds.
#[derive(Debug, Clone, Copy)]
pub struct SweepPolicy {
    pub deadline: Duration,
    /// Rounds go on while something refuses only for now (`DependencyViolation`), until this
    /// long has passed without anything deleted: what lingers behind a deleted load balancer
    /// or NAT gateway goes within minutes; a stranger's subnet in the VPC never does.
    pub settle: Duration,
    pub pause: Duration,
}

impl Default for SweepPolicy {
    fn default() -> Self {
        // Instances take a minute or two to terminate, NAT gateways about one to delete, and
        // the network interfaces of a deleted NLB a few more.
        Self {
            deadline: Duration::from_secs(15 * 60),
            settle: Duration::from_secs(5 * 60),
            pause: Duration::from_secs(10),
        }
    }
}

impl AwsProvisioner {
    /// Deletes everything still tagged as this cluster's, in rounds.
    pub async fn sweep(&self, policy: SweepPolicy) -> SweepReport {
        self.sweep_within(policy, Reach::Everything).await
    }

    /// Deletes what the cluster's add-ons made (before its recorded resources go).
    pub async fn sweep_addon_leftovers(&self, policy: SweepPolicy) -> SweepReport {
        self.sweep_within(policy, Reach::AddOns).await
    }

    async fn sweep_within(&self, policy: SweepPolicy, reach: Reach) -> SweepReport {
        let started = Instant::now();
        let mut last_progress = Instant::now();
        let mut report = SweepReport::default();
        loop {
            report.rounds += 1;
            let (found, unlisted) = discover(&self.context, reach).await;
            let mut errors: BTreeMap<Leftover, ProvisionError> = BTreeMap::new();
            let mut progress = false;
            for &kind in reach.phases() {
                let batch: Vec<&Leftover> = found
                    .iter()
                    .filter(|found| found.leftover.kind == kind && !found.going)
                    .map(|found| &found.leftover)
                    .collect();
                if kind == Resource(ResourceKind::SecurityGroup) {
                    // All of them first: a group another one's rule refers to cannot go. An
                    // add-on's group alone: the rules of the cluster's groups that name it.
                    let revoked = join_all(batch.iter().map(|group| async {
                        match reach {
                            Reach::Everything => {
                                revoke_group_references(&self.context, &group.id).await
                            }
                            Reach::AddOns => revoke_references_to(&self.context, &group.id).await,
                        }
                    }))
                    .await;
                    for (group, result) in batch.iter().zip(revoked) {
                        if let Err(error) = result {
                            errors.insert((*group).clone(), error);
                        }
                    }
                }
                let results = join_all(batch.iter().map(|leftover| self.remove(leftover))).await;
                for (leftover, result) in batch.into_iter().zip(results) {
                    match result {
                        Ok(()) => {
                            progress = true;
                            report.deleted.push(leftover.clone());
                        }
                        Err(error) => {
                            errors.insert(leftover.clone(), error);
                        }
                    }
                }
            }
            // Something still shutting down, or refused because something it depends on is
            // still going (the network interfaces of a deleted load balancer or NAT gateway
            // linger for minutes, so their subnets, groups and VPC answer
            // `DependencyViolation`): worth more rounds, as kops keeps going while any
            // dependency is still disappearing. So do deletes refused for now (throttled, a
            // 5xx: every transient class), and kinds that could not be listed for now while
            // others could. Lasting failures do not keep the sweep going, nor does a round
            // where nothing could be listed: with no network or no credentials it should say
            // so at once.
            if progress {
                last_progress = Instant::now();
            }
            let listing_blips = !unlisted.is_empty()
                && unlisted.len() < reach.phases().len()
                && unlisted
                    .iter()
                    .all(|(_, error)| error.class == ErrorClass::Transient);
            let settling = last_progress.elapsed() < policy.settle
                && (errors
                    .values()
                    .any(|error| error.class == ErrorClass::Transient)
                    || listing_blips);
            let waiting = found.iter().any(|found| found.going) || settling;
            let nothing_left = errors.is_empty() && !waiting && unlisted.is_empty();
            if nothing_left || (!progress && !waiting) || started.elapsed() >= policy.deadline {
                report.unlisted = unlisted;
                report.remaining = errors.into_iter().collect();
                for found in found.into_iter().filter(|found| found.going) {
                    let error = ProvisionError::transient(
                        "StillDeleting",
                        "it was still shutting down when the sweep stopped",
                    );
                    report.remaining.push((found.leftover, error));
                }
                // A resource deleted in one round and seen again in a later one is not gone.
                let remaining: Vec<&Leftover> = report
                    .remaining
                    .iter()
                    .map(|(leftover, _)| leftover)
                    .collect();
                report
                    .deleted
                    .retain(|leftover| !remaining.contains(&leftover));
                return report;
            }
            tokio::time::sleep(policy.pause).await;
        }
    }

    /// Deletes one leftover, first letting go of what would make its delete fail.
    async fn remove(&self, leftover: &Leftover) -> Result<(), ProvisionError> {
        let context = &self.context;
        let id = &leftover.id;
        let kind = match leftover.kind {
            Instance => return terminate_instance(context, id).await,
            ClassicLoadBalancer => return delete_classic_load_balancer(context, id).await,
            Resource(kind) => kind,
        };
        match kind {
            ResourceKind::RouteTable => disassociate_route_table(context, id).await?,
            ResourceKind::IamRole => delete_inline_policies(context, id).await?,
            _ => {}
        }
        let mut recorded = outputs([("id", id.clone())]);
        if matches!(kind, ResourceKind::LoadBalancer | ResourceKind::TargetGroup) {
            recorded.insert("arn".to_string(), id.clone());
        }
        let recorded = RecordedResource {
            address: Address::new(kind, id.clone()),
            outputs: recorded,
            attributes: Vec::new(),
            dependencies: Vec::new(),
        };
        self.delete(&recorded).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_lists_exactly_the_kinds_that_stand_alone() {
        for kind in ResourceKind::ALL {
            assert_eq!(
                PHASES.contains(&Resource(kind)),
                kind.stands_alone(),
                "{}",
                kind.type_name()
            );
        }
        assert!(PHASES.contains(&Instance));
        // Every kind the add-ons make is swept with everything else too.
        assert!(ADDON_PHASES.iter().all(|kind| PHASES.contains(kind)));
    }
}
