//! Which recorded resources no longer exist: what someone deleted behind rafter's back (in
//! the console, by hand, another tool). A plan against such a record would "update" a
//! resource that is gone, and its calls would be retried as eventual consistency
//! (`InvalidSubnetID.NotFound`) until the deadline; the plan creates it again instead.
//!
//! One describe per kind and page, filtered by the recorded ids (EC2's id filters list what
//! exists and never fail on what does not), for the kinds whose loss the rest hangs on:
//! network, groups, key pair, launch templates, auto-scaling groups, load balancers, target
//! groups, roles and instance profiles. What hangs off them (routes, associations, rules,
//! listeners, policies) follows: when its parent is made again, its recorded reference no
//! longer matches and the plan replaces it. A resource found missing is looked for once
//! more after a pause, so a describe that has not yet caught up with a create moments ago is
//! not mistaken for a deletion.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use futures_util::future::join_all;

use super::ec2::ec2_every_page;
use super::errors::AwsResultExt;
use super::{Context, compute, loadbalancer};
use crate::apply::ProvisionError;
use crate::graph::{Address, ResourceKind};
use crate::model::naming::CLUSTER_TAG;
use crate::plan::RecordedResource;

/// How long before a resource found missing is looked for again.
const SECOND_LOOK: Duration = Duration::from_secs(2);

/// The recorded resources of the kinds that stand alone that do not exist any more.
pub async fn vanished(
    context: &Context,
    recorded: &[RecordedResource],
) -> Result<Vec<Address>, ProvisionError> {
    let mut by_kind: BTreeMap<ResourceKind, Vec<(&Address, &str)>> = BTreeMap::new();
    for record in recorded {
        if let Some(id) = record.outputs.get("id")
            && record.address.kind.stands_alone()
        {
            by_kind
                .entry(record.address.kind)
                .or_default()
                .push((&record.address, id.as_str()));
        }
    }
    let mut missing = missing_now(context, &by_kind).await?;
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    tokio::time::sleep(SECOND_LOOK).await;
    let again: BTreeMap<ResourceKind, Vec<(&Address, &str)>> = by_kind
        .into_iter()
        .map(|(kind, records)| {
            let still: Vec<(&Address, &str)> = records
                .into_iter()
                .filter(|(address, _)| missing.contains(*address))
                .collect();
            (kind, still)
        })
        .filter(|(_, records)| !records.is_empty())
        .collect();
    missing = missing_now(context, &again).await?;
    Ok(missing.into_iter().collect())
}

async fn missing_now(
    context: &Context,
    by_kind: &BTreeMap<ResourceKind, Vec<(&Address, &str)>>,
) -> Result<BTreeSet<Address>, ProvisionError> {
    // Every kind at once: one round trip's wait, not one per kind.
    let listed = join_all(by_kind.iter().map(|(kind, records)| {
        let ids: Vec<String> = records.iter().map(|(_, id)| id.to_string()).collect();
        async move { existing(context, *kind, &ids).await }
    }))
    .await;
    let mut missing = BTreeSet::new();
    for ((_, records), existing) in by_kind.iter().zip(listed) {
        let existing = existing?;
        missing.extend(
            records
                .iter()
                .filter(|(_, id)| !existing.contains(*id))
                .map(|(address, _)| (*address).clone()),
        );
    }
    Ok(missing)
}

/// Which of `ids` (all of `kind`) exist.
async fn existing(
    context: &Context,
    kind: ResourceKind,
    ids: &[String],
) -> Result<BTreeSet<String>, ProvisionError> {
    let mut found = BTreeSet::new();
    // EC2 takes at most 200 values per filter.
    for ids in ids.chunks(200) {
        found.extend(match kind {
            ResourceKind::Vpc => vpcs(context, ids).await?,
            ResourceKind::Subnet => subnets(context, ids).await?,
            ResourceKind::InternetGateway => internet_gateways(context, ids).await?,
            ResourceKind::ElasticIp => addresses(context, ids).await?,
            ResourceKind::NatGateway => nat_gateways(context, ids).await?,
            ResourceKind::RouteTable => route_tables(context, ids).await?,
            ResourceKind::SecurityGroup => security_groups(context, ids).await?,
            ResourceKind::KeyPair => key_pairs(context, ids).await?,
            ResourceKind::EbsVolume => volumes(context, ids).await?,
            ResourceKind::LaunchTemplate => launch_templates(context, ids).await?,
            ResourceKind::AutoscalingGroup => auto_scaling_groups(context, ids).await?,
            ResourceKind::LoadBalancer => load_balancers(context, ids).await?,
            ResourceKind::TargetGroup => target_groups(context, ids).await?,
            ResourceKind::IamRole => roles(context, ids).await?,
            ResourceKind::IamInstanceProfile => instance_profiles(context, ids).await?,
            // Not checked: taken to exist.
            _ => ids.iter().cloned().collect(),
        });
    }
    Ok(found)
}

fn ids_filter(name: &str, ids: &[String]) -> Filter {
    let mut builder = Filter::builder().name(name);
    for id in ids {
        builder = builder.values(id);
    }
    builder.build()
}

type Found = Result<BTreeSet<String>, ProvisionError>;

fn ids_of(listed: Result<Vec<String>, ProvisionError>) -> Found {
    listed.map(|ids| ids.into_iter().collect())
}

async fn vpcs(context: &Context, ids: &[String]) -> Found {
    let request = context
        .ec2
        .describe_vpcs()
        .filters(ids_filter("vpc-id", ids));
    ids_of(ec2_every_page!(context, request, vpcs, |vpc| vpc
        .vpc_id()
        .map(str::to_string)))
}

async fn volumes(context: &Context, ids: &[String]) -> Found {
    let request = context
        .ec2
        .describe_volumes()
        .filters(ids_filter("volume-id", ids));
    // A volume being deleted is as good as gone.
    ids_of(ec2_every_page!(context, request, volumes, |volume| {
        let state = volume.state().map(|state| state.as_str());
        if matches!(state, Some("deleting" | "deleted" | "error")) {
            return None;
        }
        volume.volume_id().map(str::to_string)
    }))
}

async fn subnets(context: &Context, ids: &[String]) -> Found {
    let request = context
        .ec2
        .describe_subnets()
        .filters(ids_filter("subnet-id", ids));
    ids_of(ec2_every_page!(context, request, subnets, |subnet| subnet
        .subnet_id()
        .map(str::to_string)))
}

async fn internet_gateways(context: &Context, ids: &[String]) -> Found {
    let request = context
        .ec2
        .describe_internet_gateways()
        .filters(ids_filter("internet-gateway-id", ids));
    ids_of(ec2_every_page!(
        context,
        request,
        internet_gateways,
        |gateway| gateway.internet_gateway_id().map(str::to_string)
    ))
}

async fn nat_gateways(context: &Context, ids: &[String]) -> Found {
    let request = context
        .ec2
        .describe_nat_gateways()
        .filter(ids_filter("nat-gateway-id", ids));
    // A deleted or failed gateway is listed for a while, and is as good as gone.
    ids_of(ec2_every_page!(context, request, nat_gateways, |gateway| {
        let state = gateway.state().map(|state| state.as_str());
        if matches!(state, Some("deleting" | "deleted" | "failed")) {
            return None;
        }
        gateway.nat_gateway_id().map(str::to_string)
    }))
}

async fn route_tables(context: &Context, ids: &[String]) -> Found {
    let request = context
        .ec2
        .describe_route_tables()
        .filters(ids_filter("route-table-id", ids));
    ids_of(ec2_every_page!(context, request, route_tables, |table| {
        table.route_table_id().map(str::to_string)
    }))
}

async fn security_groups(context: &Context, ids: &[String]) -> Found {
    let request = context
        .ec2
        .describe_security_groups()
        .filters(ids_filter("group-id", ids));
    ids_of(ec2_every_page!(
        context,
        request,
        security_groups,
        |group| group.group_id().map(str::to_string)
    ))
}

/// `DescribeLaunchTemplates` has no id filter (and fails on a missing id asked by name):
/// the cluster's templates are listed by its tag instead.
async fn launch_templates(context: &Context, _ids: &[String]) -> Found {
    let request = context.ec2.describe_launch_templates().filters(ids_filter(
        &format!("tag:{CLUSTER_TAG}"),
        std::slice::from_ref(&context.cluster),
    ));
    ids_of(ec2_every_page!(
        context,
        request,
        launch_templates,
        |template| template.launch_template_id().map(str::to_string)
    ))
}

/// Key pairs and addresses come in one answer (their describes have no pages).
async fn key_pairs(context: &Context, ids: &[String]) -> Found {
    context.calls.read("ec2");
    let listed = context
        .ec2
        .describe_key_pairs()
        .filters(ids_filter("key-pair-id", ids))
        .send()
        .await
        .aws()?;
    Ok(listed
        .key_pairs()
        .iter()
        .filter_map(|key| key.key_pair_id().map(str::to_string))
        .collect())
}

async fn addresses(context: &Context, ids: &[String]) -> Found {
    context.calls.read("ec2");
    let listed = context
        .ec2
        .describe_addresses()
        .filters(ids_filter("allocation-id", ids))
        .send()
        .await
        .aws()?;
    Ok(listed
        .addresses()
        .iter()
        .filter_map(|address| address.allocation_id().map(str::to_string))
        .collect())
}

async fn auto_scaling_groups(context: &Context, names: &[String]) -> Found {
    Ok(compute::groups_named(context, names)
        .await?
        .iter()
        // A group being deleted is as good as gone.
        .filter(|group| group.status().is_none())
        .filter_map(|group| group.auto_scaling_group_name().map(str::to_string))
        .collect())
}

/// ELBv2 fails a whole describe by ARNs when one is missing: they are all listed instead.
async fn load_balancers(context: &Context, arns: &[String]) -> Found {
    let all = loadbalancer::all_load_balancer_arns(context).await?;
    Ok(all.into_iter().filter(|arn| arns.contains(arn)).collect())
}

async fn target_groups(context: &Context, arns: &[String]) -> Found {
    let all = loadbalancer::all_target_group_arns(context).await?;
    Ok(all.into_iter().filter(|arn| arns.contains(arn)).collect())
}

/// IAM has no batch describe: one `GetRole` per role (a cluster has a handful).
async fn roles(context: &Context, names: &[String]) -> Found {
    let mut found = BTreeSet::new();
    for name in names {
        context.calls.read("iam");
        match context.iam.get_role().role_name(name).send().await.aws() {
            Ok(_) => {
                found.insert(name.clone());
            }
            Err(error) if error.code == "NoSuchEntity" => {}
            Err(error) => return Err(error),
        }
    }
    Ok(found)
}

async fn instance_profiles(context: &Context, names: &[String]) -> Found {
    let mut found = BTreeSet::new();
    for name in names {
        context.calls.read("iam");
        match context
            .iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .aws()
        {
            Ok(_) => {
                found.insert(name.clone());
            }
            Err(error) if error.code == "NoSuchEntity" => {}
            Err(error) => return Err(error),
        }
    }
    Ok(found)
}
