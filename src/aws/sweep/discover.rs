//! Finding what is still tagged as the cluster's: one listing per kind (a tag-filtered
//! describe where the API has one, every page of it), with the ownership tag checked again on
//! every result.

use std::time::Duration;

use aws_sdk_autoscaling::types::Filter as GroupFilter;
use aws_sdk_ec2::types::Filter;
use futures_util::future::join_all;

use super::{Found, LeftoverKind, Reach};
use crate::apply::{ErrorClass, ProvisionError};
use crate::aws::ec2::ec2_every_page;
use crate::aws::errors::AwsResultExt;
use crate::aws::{Context, ec2, events, iam, loadbalancer};
use crate::graph::ResourceKind;
use crate::model::naming::{CLUSTER_TAG, Naming};
use crate::model::termination;

fn owned_filter(context: &Context) -> Filter {
    ec2::filter(&format!("tag:{CLUSTER_TAG}"), &context.cluster)
}

type Listing = Result<Vec<Found>, ProvisionError>;

/// Tries of a listing that fails transiently (throttled, a 5xx) before its kind is reported
/// as unlisted, and the pause before the second; each next pause is twice as long.
const LISTING_TRIES: u32 = 4;
const FIRST_LISTING_PAUSE: Duration = Duration::from_millis(500);

/// Whether tags mark a resource as in `reach`: rafter's own carry `rafter.dev/cluster`; the
/// add-ons' the Kubernetes ownership tag (`kubernetes.io/cluster/<name>: owned`, which
/// rafter's own carry too) without rafter's.
fn claimed<'a>(
    mut tags: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)> + Clone,
    context: &Context,
    reach: Reach,
) -> bool {
    let kubernetes_tag = Naming::new(&context.cluster).kubernetes_cluster_tag();
    let rafters = tags
        .clone()
        .any(|(key, value)| key == Some(CLUSTER_TAG) && value == Some(&context.cluster));
    let kubernetes =
        tags.any(|(key, value)| key == Some(kubernetes_tag.as_str()) && value == Some("owned"));
    match reach {
        Reach::Everything => rafters || kubernetes,
        Reach::AddOns => kubernetes && !rafters,
    }
}

/// Everything in `reach` tagged as this cluster's, by kind (all kinds listed at once); kinds
/// that could not be listed apart.
pub(super) async fn discover(
    context: &Context,
    reach: Reach,
) -> (Vec<Found>, Vec<(LeftoverKind, ProvisionError)>) {
    let phases = reach.phases();
    let listings = join_all(phases.iter().map(|kind| listed(context, *kind, reach))).await;
    let mut found = Vec::new();
    let mut unlisted = Vec::new();
    for (kind, listing) in phases.iter().copied().zip(listings) {
        match listing {
            Ok(listed) => found.extend(listed),
            Err(error) => unlisted.push((kind, error)),
        }
    }
    (found, unlisted)
}

/// One kind's listing, tried again while it fails transiently: the sweep's clients have the
/// SDK's retries off, like every rafter client.
async fn listed(context: &Context, kind: LeftoverKind, reach: Reach) -> Listing {
    patiently(FIRST_LISTING_PAUSE, || list(context, kind, reach)).await
}

/// The kinds the add-ons make are listed by either tag (`reach`); every other kind by
/// rafter's only.
async fn list(context: &Context, kind: LeftoverKind, reach: Reach) -> Listing {
    let kind = match kind {
        LeftoverKind::Instance => return instances(context).await,
        LeftoverKind::ClassicLoadBalancer => return classic_load_balancers(context, reach).await,
        LeftoverKind::Resource(kind) => kind,
    };
    match kind {
        ResourceKind::AutoscalingGroup => auto_scaling_groups(context).await,
        ResourceKind::LoadBalancer => load_balancers(context, reach).await,
        ResourceKind::TargetGroup => target_groups(context, reach).await,
        ResourceKind::LaunchTemplate => launch_templates(context).await,
        ResourceKind::KeyPair => key_pairs(context).await,
        ResourceKind::EbsVolume => volumes(context).await,
        ResourceKind::NatGateway => nat_gateways(context).await,
        ResourceKind::ElasticIp => elastic_ips(context).await,
        ResourceKind::InternetGateway => internet_gateways(context).await,
        ResourceKind::RouteTable => route_tables(context).await,
        ResourceKind::Subnet => subnets(context).await,
        ResourceKind::SecurityGroup => security_groups(context, reach).await,
        ResourceKind::Vpc => vpcs(context).await,
        ResourceKind::IamInstanceProfile => instance_profiles(context).await,
        ResourceKind::IamRole => roles(context).await,
        ResourceKind::EventRule => event_rules(context).await,
        ResourceKind::SqsQueue => queues(context).await,
        other => Err(ProvisionError::permanent(
            "RafterModel",
            format!("the sweep has no listing of {}", other.type_name()),
        )),
    }
}

fn ec2_owned(tags: &[aws_sdk_ec2::types::Tag], context: &Context) -> bool {
    ec2::owned_by_cluster(tags, &context.cluster)
}

async fn auto_scaling_groups(context: &Context) -> Listing {
    let filter = GroupFilter::builder()
        .name(format!("tag:{CLUSTER_TAG}"))
        .values(&context.cluster)
        .build();
    let mut pages = context
        .autoscaling
        .describe_auto_scaling_groups()
        .filters(filter)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        context.calls.read("autoscaling");
        found.extend(
            page.aws()?
                .auto_scaling_groups()
                .iter()
                .filter(|group| {
                    group.tags().iter().any(|tag| {
                        tag.key() == Some(CLUSTER_TAG) && tag.value() == Some(&context.cluster)
                    })
                })
                .filter_map(|group| {
                    Some(Found {
                        going: group.status().is_some(), // "Delete in progress"
                        ..Found::new(
                            ResourceKind::AutoscalingGroup,
                            group.auto_scaling_group_name()?,
                        )
                    })
                }),
        );
    }
    Ok(found)
}

async fn instances(context: &Context) -> Listing {
    let mut pages = context
        .ec2
        .describe_instances()
        .filters(owned_filter(context))
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .values("stopping")
                .values("stopped")
                .values("shutting-down")
                .build(),
        )
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        context.calls.read("ec2");
        found.extend(
            page.aws()?
                .reservations()
                .iter()
                .flat_map(|reservation| reservation.instances())
                .filter(|instance| ec2_owned(instance.tags(), context))
                .filter_map(|instance| {
                    let going = instance
                        .state()
                        .and_then(|state| state.name())
                        .is_some_and(|name| name.as_str() == "shutting-down");
                    Some(Found {
                        going,
                        ..Found::of(LeftoverKind::Instance, instance.instance_id()?)
                    })
                }),
        );
    }
    Ok(found)
}

/// ARNs among `arns` tagged as in `reach` (ELBv2 describes tags 20 at a time).
async fn elb_owned(
    context: &Context,
    arns: Vec<String>,
    reach: Reach,
) -> Result<Vec<String>, ProvisionError> {
    let mut owned = Vec::new();
    for chunk in arns.chunks(20) {
        match elb_owned_among(context, chunk, reach).await {
            Ok(found) => owned.extend(found),
            // One of them went away since the listing, which fails the whole batch: ask one
            // by one, and skip what is gone.
            Err(error) if error.code.ends_with("NotFound") => {
                for arn in chunk {
                    match elb_owned_among(context, std::slice::from_ref(arn), reach).await {
                        Ok(found) => owned.extend(found),
                        Err(error) if error.code.ends_with("NotFound") => {}
                        Err(error) => return Err(error),
                    }
                }
            }
            Err(error) => return Err(error),
        }
    }
    Ok(owned)
}

async fn elb_owned_among(
    context: &Context,
    arns: &[String],
    reach: Reach,
) -> Result<Vec<String>, ProvisionError> {
    context.calls.read("elasticloadbalancing");
    let described = context
        .elb
        .describe_tags()
        .set_resource_arns(Some(arns.to_vec()))
        .send()
        .await
        .aws()?;
    Ok(described
        .tag_descriptions()
        .iter()
        .filter(|description| {
            let tags = description
                .tags()
                .iter()
                .map(|tag| (tag.key(), tag.value()));
            claimed(tags, context, reach)
        })
        .filter_map(|description| description.resource_arn().map(str::to_string))
        .collect())
}

/// The cloud controller's classic load balancers: every one's tags, 20 names at a time
/// (classic load balancing has no tag filter), kept when tagged as in `reach`.
async fn classic_load_balancers(context: &Context, reach: Reach) -> Listing {
    let mut names = Vec::new();
    let mut pages = context
        .classic_elb
        .describe_load_balancers()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        context.calls.read("elasticloadbalancing");
        names.extend(
            page.aws()?
                .load_balancer_descriptions()
                .iter()
                .filter_map(|balancer| balancer.load_balancer_name().map(str::to_string)),
        );
    }
    let mut found = Vec::new();
    for chunk in names.chunks(20) {
        let claimed_names = match classic_claimed_among(context, chunk, reach).await {
            // One went away since the listing, which fails the whole batch: ask one by one,
            // and skip what is gone (as for ELBv2's tags).
            Err(error) if error.code == "LoadBalancerNotFound" => {
                let mut claimed_names = Vec::new();
                for name in chunk {
                    match classic_claimed_among(context, std::slice::from_ref(name), reach).await {
                        Ok(names) => claimed_names.extend(names),
                        Err(error) if error.code == "LoadBalancerNotFound" => {}
                        Err(error) => return Err(error),
                    }
                }
                claimed_names
            }
            result => result?,
        };
        found.extend(
            claimed_names
                .iter()
                .map(|name| Found::of(LeftoverKind::ClassicLoadBalancer, name)),
        );
    }
    Ok(found)
}

/// Names among `names` (at most 20) of classic load balancers tagged as in `reach`.
async fn classic_claimed_among(
    context: &Context,
    names: &[String],
    reach: Reach,
) -> Result<Vec<String>, ProvisionError> {
    context.calls.read("elasticloadbalancing");
    let described = context
        .classic_elb
        .describe_tags()
        .set_load_balancer_names(Some(names.to_vec()))
        .send()
        .await
        .aws()?;
    Ok(described
        .tag_descriptions()
        .iter()
        .filter(|description| {
            let tags = description
                .tags()
                .iter()
                .map(|tag| (Some(tag.key()), tag.value()));
            claimed(tags, context, reach)
        })
        .filter_map(|description| description.load_balancer_name().map(str::to_string))
        .collect())
}

async fn load_balancers(context: &Context, reach: Reach) -> Listing {
    let arns = loadbalancer::all_load_balancer_arns(context).await?;
    Ok(elb_owned(context, arns, reach)
        .await?
        .iter()
        .map(|arn| Found::new(ResourceKind::LoadBalancer, arn))
        .collect())
}

async fn target_groups(context: &Context, reach: Reach) -> Listing {
    let arns = loadbalancer::all_target_group_arns(context).await?;
    Ok(elb_owned(context, arns, reach)
        .await?
        .iter()
        .map(|arn| Found::new(ResourceKind::TargetGroup, arn))
        .collect())
}

async fn launch_templates(context: &Context) -> Listing {
    let request = context
        .ec2
        .describe_launch_templates()
        .filters(owned_filter(context));
    ec2_every_page!(context, request, launch_templates, |template| {
        ec2_owned(template.tags(), context).then_some(())?;
        Some(Found::new(
            ResourceKind::LaunchTemplate,
            template.launch_template_id()?,
        ))
    })
}

/// Key pairs and addresses are listed in one answer (their describes have no pages).
async fn key_pairs(context: &Context) -> Listing {
    context.calls.read("ec2");
    let listed = context
        .ec2
        .describe_key_pairs()
        .filters(owned_filter(context))
        .send()
        .await
        .aws()?;
    Ok(listed
        .key_pairs()
        .iter()
        .filter(|key| ec2_owned(key.tags(), context))
        .filter_map(|key| Some(Found::new(ResourceKind::KeyPair, key.key_name()?)))
        .collect())
}

async fn nat_gateways(context: &Context) -> Listing {
    let request = context
        .ec2
        .describe_nat_gateways()
        .filter(owned_filter(context));
    ec2_every_page!(context, request, nat_gateways, |gateway| {
        ec2_owned(gateway.tags(), context).then_some(())?;
        let state = gateway.state().map(|state| state.as_str()).unwrap_or("");
        if matches!(state, "deleted" | "failed") {
            return None;
        }
        Some(Found {
            going: state == "deleting",
            ..Found::new(ResourceKind::NatGateway, gateway.nat_gateway_id()?)
        })
    })
}

async fn volumes(context: &Context) -> Listing {
    let request = context
        .ec2
        .describe_volumes()
        .filters(owned_filter(context));
    ec2_every_page!(context, request, volumes, |volume| {
        ec2_owned(volume.tags(), context).then_some(())?;
        Some(Found {
            going: volume.state() == Some(&aws_sdk_ec2::types::VolumeState::Deleting),
            ..Found::new(ResourceKind::EbsVolume, volume.volume_id()?)
        })
    })
}

async fn elastic_ips(context: &Context) -> Listing {
    context.calls.read("ec2");
    let listed = context
        .ec2
        .describe_addresses()
        .filters(owned_filter(context))
        .send()
        .await
        .aws()?;
    Ok(listed
        .addresses()
        .iter()
        .filter(|address| ec2_owned(address.tags(), context))
        .filter_map(|address| {
            Some(Found::new(
                ResourceKind::ElasticIp,
                address.allocation_id()?,
            ))
        })
        .collect())
}

async fn internet_gateways(context: &Context) -> Listing {
    let request = context
        .ec2
        .describe_internet_gateways()
        .filters(owned_filter(context));
    ec2_every_page!(context, request, internet_gateways, |gateway| {
        ec2_owned(gateway.tags(), context).then_some(())?;
        Some(Found::new(
            ResourceKind::InternetGateway,
            gateway.internet_gateway_id()?,
        ))
    })
}

async fn route_tables(context: &Context) -> Listing {
    let request = context
        .ec2
        .describe_route_tables()
        .filters(owned_filter(context));
    ec2_every_page!(context, request, route_tables, |table| {
        ec2_owned(table.tags(), context).then_some(())?;
        // A VPC's main table goes with the VPC.
        if table.associations().iter().any(|a| a.main() == Some(true)) {
            return None;
        }
        Some(Found::new(
            ResourceKind::RouteTable,
            table.route_table_id()?,
        ))
    })
}

async fn subnets(context: &Context) -> Listing {
    let request = context
        .ec2
        .describe_subnets()
        .filters(owned_filter(context));
    ec2_every_page!(context, request, subnets, |subnet| {
        ec2_owned(subnet.tags(), context).then_some(())?;
        Some(Found::new(ResourceKind::Subnet, subnet.subnet_id()?))
    })
}

/// Listed by rafter's tag and by the Kubernetes ownership tag (the add-ons' groups carry only
/// that one), each group once.
async fn security_groups(context: &Context, reach: Reach) -> Listing {
    let kubernetes_tag = Naming::new(&context.cluster).kubernetes_cluster_tag();
    let mut filters = vec![ec2::filter(&format!("tag:{kubernetes_tag}"), "owned")];
    if reach == Reach::Everything {
        filters.push(owned_filter(context));
    }
    let mut found: Vec<Found> = Vec::new();
    for filter in filters {
        let request = context.ec2.describe_security_groups().filters(filter);
        let listed = ec2_every_page!(context, request, security_groups, |group| {
            let tags = group.tags().iter().map(|tag| (tag.key(), tag.value()));
            claimed(tags, context, reach).then_some(())?;
            // A VPC's default group goes with the VPC.
            if group.group_name() == Some("default") {
                return None;
            }
            Some(Found::new(ResourceKind::SecurityGroup, group.group_id()?))
        })?;
        for group in listed {
            if !found.iter().any(|known| known.leftover == group.leftover) {
                found.push(group);
            }
        }
    }
    Ok(found)
}

async fn vpcs(context: &Context) -> Listing {
    let request = context.ec2.describe_vpcs().filters(owned_filter(context));
    ec2_every_page!(context, request, vpcs, |vpc| {
        ec2_owned(vpc.tags(), context).then_some(())?;
        Some(Found::new(ResourceKind::Vpc, vpc.vpc_id()?))
    })
}

/// IAM lists without tags: names shaped like this cluster's are candidates, and each is
/// checked for the ownership tag before it counts.
async fn instance_profiles(context: &Context) -> Listing {
    let naming = Naming::new(&context.cluster);
    let mut candidates = Vec::new();
    let mut pages = context.iam.list_instance_profiles().into_paginator().send();
    while let Some(page) = pages.next().await {
        context.calls.read("iam");
        candidates.extend(
            page.aws()?
                .instance_profiles()
                .iter()
                .map(|profile| profile.instance_profile_name().to_string())
                .filter(|name| naming.could_be_iam_name(name)),
        );
    }
    let mut found = Vec::new();
    for name in &candidates {
        context.calls.read("iam");
        let described = match context
            .iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .aws()
        {
            Err(error) if error.code == "NoSuchEntity" => continue, // gone since the listing
            other => other?,
        };
        let tags = described
            .instance_profile()
            .map(|profile| profile.tags())
            .unwrap_or_default();
        if iam::owned_by(tags, &context.cluster) {
            found.push(Found::new(ResourceKind::IamInstanceProfile, name));
        }
    }
    Ok(found)
}

async fn roles(context: &Context) -> Listing {
    let naming = Naming::new(&context.cluster);
    let mut candidates = Vec::new();
    let mut pages = context.iam.list_roles().into_paginator().send();
    while let Some(page) = pages.next().await {
        context.calls.read("iam");
        candidates.extend(
            page.aws()?
                .roles()
                .iter()
                .map(|role| role.role_name().to_string())
                .filter(|name| naming.could_be_iam_name(name)),
        );
    }
    let mut found = Vec::new();
    for name in &candidates {
        context.calls.read("iam");
        let tags = match context
            .iam
            .list_role_tags()
            .role_name(name)
            .send()
            .await
            .aws()
        {
            Err(error) if error.code == "NoSuchEntity" => continue, // gone since the listing
            other => other?,
        };
        if iam::owned_by(tags.tags(), &context.cluster) {
            found.push(Found::new(ResourceKind::IamRole, name));
        }
    }
    Ok(found)
}

/// `lookup` (a listing, or a look at one listed resource's tags) tried again while it fails
/// transiently, first after `pause`, then twice as long each time: a listing that looks at
/// each resource must not fail whole for one blip.
async fn patiently<T, F, Fut>(mut pause: Duration, mut lookup: F) -> Result<T, ProvisionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProvisionError>>,
{
    let mut tries = 1;
    loop {
        match lookup().await {
            Err(error) if error.class == ErrorClass::Transient && tries < LISTING_TRIES => {
                tokio::time::sleep(pause).await;
                pause *= 2;
                tries += 1;
            }
            answer => return answer,
        }
    }
}

/// The node termination handler's rules: those whose name starts and ends as rafter names
/// them for this cluster and whose tags say this cluster's (EventBridge lists rules by name
/// prefix only).
async fn event_rules(context: &Context) -> Listing {
    let naming = Naming::new(&context.cluster);
    let mut found = Vec::new();
    let mut next = None;
    loop {
        context.calls.read("events");
        let page = context
            .events
            .list_rules()
            .name_prefix(termination::NAME_PREFIX)
            .set_next_token(next)
            .send()
            .await
            .aws()?;
        for rule in page.rules() {
            let (Some(name), Some(arn)) = (rule.name(), rule.arn()) else {
                continue;
            };
            if !naming.could_be_short_name(name) {
                continue;
            }
            let tags = match patiently(FIRST_LISTING_PAUSE / 5, || events::rule_tags(context, arn))
                .await
            {
                Ok(tags) => tags,
                // Deleted between the listing and this look.
                Err(error) if error.code == "ResourceNotFoundException" => continue,
                Err(error) => return Err(error),
            };
            if tags.get(CLUSTER_TAG) == Some(&context.cluster) {
                found.push(Found::new(ResourceKind::EventRule, name));
            }
        }
        next = page.next_token().map(ToString::to_string);
        if next.is_none() {
            return Ok(found);
        }
    }
}

/// The node termination handler's queues, found the same way (by name, then tags).
async fn queues(context: &Context) -> Listing {
    let naming = Naming::new(&context.cluster);
    let mut found = Vec::new();
    let mut next = None;
    loop {
        context.calls.read("sqs");
        let page = context
            .sqs
            .list_queues()
            .queue_name_prefix(termination::NAME_PREFIX)
            .set_next_token(next)
            .send()
            .await
            .aws()?;
        for url in page.queue_urls() {
            let queue = url.rsplit('/').next().unwrap_or_default();
            if !naming.could_be_short_name(queue) {
                continue;
            }
            let tags = match patiently(FIRST_LISTING_PAUSE / 5, || events::queue_tags(context, url))
                .await
            {
                Ok(tags) => tags,
                // Deleted between the listing and this look.
                Err(error) if events::queue_is_absent(&error) => continue,
                Err(error) => return Err(error),
            };
            if tags.get(CLUSTER_TAG) == Some(&context.cluster) {
                found.push(Found::new(ResourceKind::SqsQueue, url));
            }
        }
        next = page.next_token().map(ToString::to_string);
        if next.is_none() {
            return Ok(found);
        }
    }
}
