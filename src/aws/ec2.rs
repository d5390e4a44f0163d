//! EC2 network and security resources: VPC, subnets, gateways, addresses, routes, security
//! groups and rules. Every create first looks for what an interrupted run may have made (by
//! the `rafter.dev/address` tag, or by its natural key where EC2 has no tags), so a rerun
//! adopts instead of duplicating.

use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, IpPermission, IpRange, NatGateway, ResourceType,
    Tag, TagSpecification, UserIdGroupPair,
};

use std::collections::HashSet;

use super::attrs::Attrs;
use super::errors::{AwsResultExt, gone_is_fine};
use super::{ADDRESS_TAG, Context, outputs};
use crate::apply::{Outputs, ProvisionError};
use crate::graph::{Address, ResourceKind};
use crate::model::naming::{CLUSTER_TAG, cloud_tags};
use crate::plan::RecordedResource;

/// Every page of an EC2 describe (`$request`, a fluent builder with a paginator), each item
/// of `$items` mapped or dropped by `$keep`, counted as reads: a `Result<Vec<_>, _>`.
macro_rules! ec2_every_page {
    ($context:expr, $request:expr, $items:ident, $keep:expr) => {{
        let mut pages = $request.into_paginator().send();
        let mut kept = Vec::new();
        while let Some(page) = pages.next().await {
            $context.calls.read("ec2");
            kept.extend(
                $crate::aws::errors::AwsResultExt::aws(page)?
                    .$items()
                    .iter()
                    .filter_map($keep),
            );
        }
        Ok::<_, $crate::apply::ProvisionError>(kept)
    }};
}
pub(crate) use ec2_every_page;

const SERVICE: &str = "ec2";

pub(super) fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// Filters that find exactly the resource rafter made for `address` in this cluster.
fn owned(context: &Context, address: &Address) -> Vec<Filter> {
    vec![
        filter(&format!("tag:{CLUSTER_TAG}"), &context.cluster),
        filter(&format!("tag:{ADDRESS_TAG}"), &address.to_string()),
    ]
}

/// Whether `tags` mark the resource rafter made for `address` in this cluster. Checked on
/// every result even though the request filtered by the same tags: an API that ignores a
/// filter (the emulator does for NAT gateways) must not make rafter adopt a stranger.
fn ours(tags: &[Tag], context: &Context, address: &Address) -> bool {
    owned_by_cluster(tags, &context.cluster) && has_tag(tags, ADDRESS_TAG, &address.to_string())
}

/// Whether an interrupted run may have made the resource for `address`: false when no EC2
/// resource carries this cluster's tag and that address, so a create needs no describe
/// first. The first call lists the cluster's tags (two paginated `DescribeTags`, whatever
/// the number of resources); the answer is kept for the run, which is right because a run
/// creates each address once, under the cluster lock. A retry of the same create always
/// looks first: the attempt before may have created it and lost the answer.
pub(super) async fn may_exist(
    context: &Context,
    address: &Address,
) -> Result<bool, ProvisionError> {
    let key = address.to_string();
    let first_attempt = context
        .attempted
        .lock()
        .map(|mut attempted| attempted.insert(key.clone()))
        .unwrap_or(false);
    if !first_attempt {
        return Ok(true);
    }
    let tagged = context
        .tagged
        .get_or_try_init(|| tagged_addresses(context))
        .await?;
    Ok(tagged.contains(&key))
}

/// The volume of this cluster tagged with `address`, if an earlier run made it.
pub(super) async fn find_owned_volume(
    context: &Context,
    address: &Address,
) -> Result<Option<aws_sdk_ec2::types::Volume>, ProvisionError> {
    context.calls.read(SERVICE);
    let found = context
        .ec2
        .describe_volumes()
        .set_filters(Some(owned(context, address)))
        .send()
        .await
        .aws()?;
    Ok(found
        .volumes()
        .iter()
        .find(|volume| ours(volume.tags(), context, address))
        .cloned())
}

/// What this run already created for `address` (see [`Context::created`]).
fn created_earlier(context: &Context, address: &Address) -> Option<Outputs> {
    context
        .created
        .lock()
        .ok()
        .and_then(|created| created.get(&address.to_string()).cloned())
}

/// Remembers what a create returned, before any follow-up call can fail.
pub(super) fn remember_created(context: &Context, address: &Address, made: &Outputs) {
    if let Ok(mut created) = context.created.lock() {
        created.insert(address.to_string(), made.clone());
    }
}

async fn tagged_addresses(context: &Context) -> Result<HashSet<String>, ProvisionError> {
    let mut owned = Vec::new();
    let mut pages = context
        .ec2
        .describe_tags()
        .filters(filter("key", CLUSTER_TAG))
        .filters(filter("value", &context.cluster))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        context.calls.read(SERVICE);
        owned.extend(
            page.aws()?
                .tags()
                .iter()
                .filter(|tag| {
                    tag.key() == Some(CLUSTER_TAG) && tag.value() == Some(&context.cluster)
                })
                .filter_map(|tag| tag.resource_id().map(str::to_string)),
        );
    }
    let mut addresses = HashSet::new();
    // EC2 takes at most 200 values per filter.
    for ids in owned.chunks(200) {
        let mut pages = context
            .ec2
            .describe_tags()
            .filters(filter("key", ADDRESS_TAG))
            .filters(
                Filter::builder()
                    .name("resource-id")
                    .set_values(Some(ids.to_vec()))
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            context.calls.read(SERVICE);
            addresses.extend(
                page.aws()?
                    .tags()
                    .iter()
                    .filter(|tag| tag.key() == Some(ADDRESS_TAG))
                    .filter(|tag| {
                        tag.resource_id()
                            .is_some_and(|id| ids.iter().any(|owned| owned == id))
                    })
                    .filter_map(|tag| tag.value().map(str::to_string)),
            );
        }
    }
    Ok(addresses)
}

fn has_tag(tags: &[Tag], key: &str, value: &str) -> bool {
    tags.iter()
        .any(|tag| tag.key() == Some(key) && tag.value() == Some(value))
}

/// Whether an EC2 resource carries this cluster's ownership tag.
pub(super) fn owned_by_cluster(tags: &[Tag], cluster: &str) -> bool {
    has_tag(tags, CLUSTER_TAG, cluster)
}

fn tags(attrs: Attrs<'_>, address: &Address) -> Vec<Tag> {
    cloud_tags(address, &attrs.tags())
        .into_iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect()
}

pub(super) fn tag_spec(
    kind: ResourceType,
    attrs: Attrs<'_>,
    address: &Address,
) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(tags(attrs, address)))
        .build()
}

fn no_id(operation: &str) -> ProvisionError {
    ProvisionError::permanent("MissingId", format!("{operation} returned no id"))
}

fn id_of(recorded: &RecordedResource) -> Result<&str, ProvisionError> {
    recorded
        .outputs
        .get("id")
        .map(String::as_str)
        .ok_or_else(|| no_id("the state of this resource"))
}

fn enabled(flag: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(flag).build()
}

pub async fn create(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    match address.kind {
        ResourceKind::Vpc => create_vpc(context, address, attrs).await,
        ResourceKind::Subnet => create_subnet(context, address, attrs).await,
        ResourceKind::InternetGateway => create_internet_gateway(context, address, attrs).await,
        ResourceKind::ElasticIp => create_elastic_ip(context, address, attrs).await,
        ResourceKind::NatGateway => create_nat_gateway(context, address, attrs).await,
        ResourceKind::RouteTable => create_route_table(context, address, attrs).await,
        ResourceKind::Route => create_route(context, attrs).await,
        ResourceKind::RouteTableAssociation => create_association(context, attrs).await,
        ResourceKind::SecurityGroup => create_security_group(context, address, attrs).await,
        ResourceKind::SecurityGroupIngressRule | ResourceKind::SecurityGroupEgressRule => {
            create_rule(context, address, attrs).await
        }
        other => Err(super::not_handled(other, SERVICE)),
    }
}

/// In-place changes: attributes EC2 can modify, and tags.
pub async fn update(
    context: &Context,
    recorded: &RecordedResource,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let id = id_of(recorded)?;
    match recorded.address.kind {
        ResourceKind::Vpc => set_vpc_dns(context, id, attrs, false).await?,
        ResourceKind::Subnet => {
            context.calls.write(SERVICE);
            context
                .ec2
                .modify_subnet_attribute()
                .subnet_id(id)
                .map_public_ip_on_launch(enabled(attrs.bool("map_public_ip_on_launch")?))
                .send()
                .await
                .aws()?;
        }
        ResourceKind::Route | ResourceKind::RouteTableAssociation => {
            // Their mutable attribute is the target: re-running create converges it.
            return create(context, &recorded.address, attrs).await;
        }
        _ => {}
    }
    retag(context, id, attrs, &recorded.address).await?;
    Ok(recorded.outputs.clone())
}

/// Sets a resource's tags (those the graph gives it, and its address) on an update.
pub(super) async fn retag(
    context: &Context,
    id: &str,
    attrs: Attrs<'_>,
    address: &Address,
) -> Result<(), ProvisionError> {
    if !attrs.has("tags") {
        return Ok(());
    }
    context.calls.write(SERVICE);
    context
        .ec2
        .create_tags()
        .resources(id)
        .set_tags(Some(tags(attrs, address)))
        .send()
        .await
        .map(drop)
        .aws()
}

pub async fn delete(context: &Context, recorded: &RecordedResource) -> Result<(), ProvisionError> {
    let id = id_of(recorded)?;
    let result = match recorded.address.kind {
        // These take more than one call and count their own.
        ResourceKind::InternetGateway => delete_internet_gateway(context, id).await,
        ResourceKind::NatGateway => delete_nat_gateway(context, id).await,
        _ => delete_with_one_call(context, recorded, id).await,
    };
    result.or_else(gone_is_fine)
}

async fn delete_with_one_call(
    context: &Context,
    recorded: &RecordedResource,
    id: &str,
) -> Result<(), ProvisionError> {
    let ec2 = &context.ec2;
    context.calls.write(SERVICE);
    match recorded.address.kind {
        ResourceKind::Vpc => ec2.delete_vpc().vpc_id(id).send().await.map(|_| ()).aws(),
        ResourceKind::Subnet => ec2
            .delete_subnet()
            .subnet_id(id)
            .send()
            .await
            .map(|_| ())
            .aws(),
        ResourceKind::ElasticIp => ec2
            .release_address()
            .allocation_id(id)
            .send()
            .await
            .map(|_| ())
            .aws(),
        ResourceKind::RouteTable => ec2
            .delete_route_table()
            .route_table_id(id)
            .send()
            .await
            .map(|_| ())
            .aws(),
        ResourceKind::Route => {
            let (table, destination) = id
                .split_once('|')
                .ok_or_else(|| no_id("the route's state"))?;
            ec2.delete_route()
                .route_table_id(table)
                .destination_cidr_block(destination)
                .send()
                .await
                .map(|_| ())
                .aws()
        }
        ResourceKind::RouteTableAssociation => ec2
            .disassociate_route_table()
            .association_id(id)
            .send()
            .await
            .map(|_| ())
            .aws(),
        ResourceKind::SecurityGroup => ec2
            .delete_security_group()
            .group_id(id)
            .send()
            .await
            .map(|_| ())
            .aws(),
        ResourceKind::SecurityGroupIngressRule => {
            let group = recorded
                .outputs
                .get("security_group_id")
                .map(String::as_str)
                .unwrap_or_default();
            ec2.revoke_security_group_ingress()
                .group_id(group)
                .security_group_rule_ids(id)
                .send()
                .await
                .map(|_| ())
                .aws()
        }
        ResourceKind::SecurityGroupEgressRule => {
            let group = recorded
                .outputs
                .get("security_group_id")
                .map(String::as_str)
                .unwrap_or_default();
            ec2.revoke_security_group_egress()
                .group_id(group)
                .security_group_rule_ids(id)
                .send()
                .await
                .map(|_| ())
                .aws()
        }
        other => Err(super::not_handled(other, SERVICE)),
    }
}

/// Sets the VPC's DNS attributes; on a VPC just created, only those that differ from EC2's
/// defaults (DNS support on, DNS hostnames off).
async fn set_vpc_dns(
    context: &Context,
    id: &str,
    attrs: Attrs<'_>,
    just_created: bool,
) -> Result<(), ProvisionError> {
    // EC2 takes one VPC attribute per call.
    for (name, value, default) in [
        (
            "enable_dns_support",
            attrs.bool("enable_dns_support")?,
            true,
        ),
        (
            "enable_dns_hostnames",
            attrs.bool("enable_dns_hostnames")?,
            false,
        ),
    ] {
        if just_created && value == default {
            continue;
        }
        context.calls.write(SERVICE);
        let request = context.ec2.modify_vpc_attribute().vpc_id(id);
        let request = if name == "enable_dns_support" {
            request.enable_dns_support(enabled(value))
        } else {
            request.enable_dns_hostnames(enabled(value))
        };
        request.send().await.aws()?;
    }
    Ok(())
}

async fn create_vpc(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let earlier = created_earlier(context, address).and_then(|made| made.get("id").cloned());
    let existing = if earlier.is_some() {
        earlier.clone()
    } else if may_exist(context, address).await? {
        context.calls.read(SERVICE);
        let found = context
            .ec2
            .describe_vpcs()
            .set_filters(Some(owned(context, address)))
            .send()
            .await
            .aws()?;
        found
            .vpcs()
            .iter()
            .find(|vpc| ours(vpc.tags(), context, address))
            .and_then(|vpc| vpc.vpc_id())
            .map(str::to_string)
    } else {
        None
    };
    // Made by this run (now, or by an earlier attempt): EC2's defaults still hold.
    let created = existing.is_none() || earlier.is_some();
    let id = match existing {
        Some(id) => id,
        None => {
            context.calls.write(SERVICE);
            let created = context
                .ec2
                .create_vpc()
                .cidr_block(attrs.str("cidr_block")?)
                .tag_specifications(tag_spec(ResourceType::Vpc, attrs, address))
                .send()
                .await
                .aws()?;
            let id = created
                .vpc()
                .and_then(|vpc| vpc.vpc_id())
                .ok_or_else(|| no_id("CreateVpc"))?
                .to_string();
            remember_created(context, address, &outputs([("id", id.clone())]));
            id
        }
    };
    set_vpc_dns(context, &id, attrs, created).await?;
    Ok(outputs([("id", id)]))
}

async fn create_subnet(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let earlier = created_earlier(context, address).map(|made| {
        (
            made.get("id").cloned().unwrap_or_default(),
            made.get("arn").cloned().unwrap_or_default(),
        )
    });
    let existing = if earlier.is_some() {
        earlier
    } else if may_exist(context, address).await? {
        context.calls.read(SERVICE);
        let found = context
            .ec2
            .describe_subnets()
            .set_filters(Some(owned(context, address)))
            .send()
            .await
            .aws()?;
        found
            .subnets()
            .iter()
            .find(|subnet| ours(subnet.tags(), context, address))
            .and_then(|subnet| {
                Some((
                    subnet.subnet_id()?.to_string(),
                    subnet.subnet_arn().unwrap_or_default().to_string(),
                ))
            })
    } else {
        None
    };
    let (id, arn) = match existing {
        Some(found) => found,
        None => {
            context.calls.write(SERVICE);
            let created = context
                .ec2
                .create_subnet()
                .vpc_id(attrs.str("vpc_id")?)
                .cidr_block(attrs.str("cidr_block")?)
                .availability_zone(attrs.str("availability_zone")?)
                .tag_specifications(tag_spec(ResourceType::Subnet, attrs, address))
                .send()
                .await
                .aws()?;
            let subnet = created.subnet().ok_or_else(|| no_id("CreateSubnet"))?;
            let made = (
                subnet
                    .subnet_id()
                    .ok_or_else(|| no_id("CreateSubnet"))?
                    .to_string(),
                subnet.subnet_arn().unwrap_or_default().to_string(),
            );
            remember_created(
                context,
                address,
                &outputs([("id", made.0.clone()), ("arn", made.1.clone())]),
            );
            made
        }
    };
    if attrs.bool("map_public_ip_on_launch")? {
        context.calls.write(SERVICE);
        context
            .ec2
            .modify_subnet_attribute()
            .subnet_id(&id)
            .map_public_ip_on_launch(enabled(true))
            .send()
            .await
            .aws()?;
    }
    Ok(outputs([("id", id), ("arn", arn)]))
}

async fn create_internet_gateway(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let vpc = attrs.str("vpc_id")?;
    let earlier = created_earlier(context, address).and_then(|made| made.get("id").cloned());
    let existing = if may_exist(context, address).await? {
        context.calls.read(SERVICE);
        // Made by an earlier attempt of this run: asked for by its id, which needs no tag
        // index to have caught up.
        let request = context.ec2.describe_internet_gateways();
        let request = match &earlier {
            Some(id) => request.internet_gateway_ids(id),
            None => request.set_filters(Some(owned(context, address))),
        };
        let found = request.send().await.aws()?;
        found
            .internet_gateways()
            .iter()
            .find(|gateway| ours(gateway.tags(), context, address))
            .map(|gateway| {
                Ok::<_, ProvisionError>((
                    gateway
                        .internet_gateway_id()
                        .ok_or_else(|| no_id("DescribeInternetGateways"))?
                        .to_string(),
                    gateway
                        .attachments()
                        .iter()
                        .any(|attachment| attachment.vpc_id() == Some(vpc)),
                ))
            })
            .transpose()?
    } else {
        None
    };
    let (id, attached) = match existing {
        Some(found) => found,
        None => {
            context.calls.write(SERVICE);
            let created = context
                .ec2
                .create_internet_gateway()
                .tag_specifications(tag_spec(ResourceType::InternetGateway, attrs, address))
                .send()
                .await
                .aws()?;
            let id = created
                .internet_gateway()
                .and_then(|gateway| gateway.internet_gateway_id())
                .ok_or_else(|| no_id("CreateInternetGateway"))?;
            remember_created(context, address, &outputs([("id", id.to_string())]));
            (id.to_string(), false)
        }
    };
    if !attached {
        context.calls.write(SERVICE);
        context
            .ec2
            .attach_internet_gateway()
            .internet_gateway_id(&id)
            .vpc_id(vpc)
            .send()
            .await
            .aws()?;
    }
    Ok(outputs([("id", id)]))
}

async fn delete_internet_gateway(context: &Context, id: &str) -> Result<(), ProvisionError> {
    context.calls.read(SERVICE);
    let found = context
        .ec2
        .describe_internet_gateways()
        .internet_gateway_ids(id)
        .send()
        .await
        .aws()?;
    for attachment in found
        .internet_gateways()
        .iter()
        .flat_map(|gateway| gateway.attachments())
    {
        if let Some(vpc) = attachment.vpc_id() {
            context.calls.write(SERVICE);
            context
                .ec2
                .detach_internet_gateway()
                .internet_gateway_id(id)
                .vpc_id(vpc)
                .send()
                .await
                .aws()?;
        }
    }
    context.calls.write(SERVICE);
    context
        .ec2
        .delete_internet_gateway()
        .internet_gateway_id(id)
        .send()
        .await
        .map(|_| ())
        .aws()
}

async fn create_elastic_ip(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    if may_exist(context, address).await? {
        context.calls.read(SERVICE);
        let found = context
            .ec2
            .describe_addresses()
            .set_filters(Some(owned(context, address)))
            .send()
            .await
            .aws()?;
        if let Some(id) = found
            .addresses()
            .iter()
            .find(|found| ours(found.tags(), context, address))
            .and_then(|address| address.allocation_id())
        {
            return Ok(outputs([("id", id.to_string())]));
        }
    }
    context.calls.write(SERVICE);
    let created = context
        .ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(tag_spec(ResourceType::ElasticIp, attrs, address))
        .send()
        .await
        .aws()?;
    Ok(outputs([(
        "id",
        created
            .allocation_id()
            .ok_or_else(|| no_id("AllocateAddress"))?
            .to_string(),
    )]))
}

async fn create_nat_gateway(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let earlier = created_earlier(context, address).and_then(|made| made.get("id").cloned());
    let existing = if earlier.is_some() {
        earlier
    } else if may_exist(context, address).await? {
        context.calls.read(SERVICE);
        let mut filters = owned(context, address);
        filters.push(
            Filter::builder()
                .name("state")
                .values("pending")
                .values("available")
                .build(),
        );
        let found = context
            .ec2
            .describe_nat_gateways()
            .set_filter(Some(filters))
            .send()
            .await
            .aws()?;
        found
            .nat_gateways()
            .iter()
            .find(|gateway| ours(gateway.tags(), context, address))
            .and_then(|gateway| gateway.nat_gateway_id())
            .map(str::to_string)
    } else {
        None
    };
    let id = match existing {
        Some(id) => id,
        None => new_nat_gateway(context, address, attrs, None).await?,
    };
    match wait_for_nat(context, &id, "available").await {
        Err(error) if error.code == NAT_GATEWAY_DEAD => {
            // What a token brought back, or what an earlier attempt made, failed or was
            // deleted by hand meanwhile: make one more, under a token naming the dead one.
            let id = new_nat_gateway(context, address, attrs, Some(&id)).await?;
            wait_for_nat(context, &id, "available").await?;
            Ok(outputs([("id", id)]))
        }
        Err(error) => Err(error),
        Ok(_) => Ok(outputs([("id", id)])),
    }
}

/// The code of a NAT gateway that failed or was deleted while rafter waited for it.
const NAT_GATEWAY_DEAD: &str = "NatGatewayFailed";

/// `CreateNatGateway` with an idempotency token; remembered for this run's retries. A token
/// EC2 saw before brings back what it made then, even if that gateway has failed or was
/// deleted since: the replacement's token names the `dead` one, which a rerun derives the
/// same way.
async fn new_nat_gateway(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
    dead: Option<&str>,
) -> Result<String, ProvisionError> {
    let (subnet, allocation) = (attrs.str("subnet_id")?, attrs.str("allocation_id")?);
    let mut parameters = vec![subnet, allocation];
    parameters.extend(dead);
    context.calls.write(SERVICE);
    let created = context
        .ec2
        .create_nat_gateway()
        .subnet_id(subnet)
        .allocation_id(allocation)
        .set_client_token(context.client_token(address, &parameters))
        .tag_specifications(tag_spec(ResourceType::Natgateway, attrs, address))
        .send()
        .await
        .aws()?;
    let id = created
        .nat_gateway()
        .and_then(|gateway| gateway.nat_gateway_id())
        .ok_or_else(|| no_id("CreateNatGateway"))?
        .to_string();
    remember_created(context, address, &outputs([("id", id.clone())]));
    Ok(id)
}

/// NAT gateways take minutes to come up or go away; routes and address releases wait.
async fn wait_for_nat(
    context: &Context,
    id: &str,
    state: &str,
) -> Result<Option<NatGateway>, ProvisionError> {
    for _ in 0..120 {
        context.calls.read(SERVICE);
        let found = context
            .ec2
            .describe_nat_gateways()
            .nat_gateway_ids(id)
            .send()
            .await
            .aws()?;
        let gateway = found.nat_gateways().first();
        let current = gateway
            .and_then(|gateway| gateway.state())
            .map(|state| state.as_str().to_string());
        match current.as_deref() {
            Some(current) if current == state => return Ok(gateway.cloned()),
            Some(dead @ ("failed" | "deleting" | "deleted")) if state == "available" => {
                let reason = gateway
                    .and_then(|gateway| gateway.failure_message())
                    .map(|message| format!(": {message}"))
                    .unwrap_or_default();
                return Err(ProvisionError::permanent(
                    NAT_GATEWAY_DEAD,
                    format!("NAT gateway {id} is {dead}{reason}"),
                ));
            }
            // A failed gateway holds nothing and goes by itself.
            Some("failed") if state == "deleted" => return Ok(gateway.cloned()),
            None if state == "deleted" => return Ok(None),
            _ => tokio::time::sleep(std::time::Duration::from_secs(5)).await,
        }
    }
    Err(ProvisionError::transient(
        "NatGatewayPending",
        format!("NAT gateway {id} is not {state} yet"),
    ))
}

async fn delete_nat_gateway(context: &Context, id: &str) -> Result<(), ProvisionError> {
    context.calls.write(SERVICE);
    context
        .ec2
        .delete_nat_gateway()
        .nat_gateway_id(id)
        .send()
        .await
        .aws()?;
    let deleted = wait_for_nat(context, id, "deleted").await?;
    // AWS lets go of the gateway's Elastic IP with it; the emulator keeps the association,
    // which would make a replacement gateway's create fail with `Resource.AlreadyAssociated`.
    let associations = deleted
        .iter()
        .flat_map(|gateway| gateway.nat_gateway_addresses())
        .filter_map(|address| address.association_id());
    for association in associations {
        context.calls.write(SERVICE);
        context
            .ec2
            .disassociate_address()
            .association_id(association)
            .send()
            .await
            .map(drop)
            .aws()
            .or_else(gone_is_fine)?;
    }
    Ok(())
}

async fn create_route_table(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    if may_exist(context, address).await? {
        context.calls.read(SERVICE);
        let found = context
            .ec2
            .describe_route_tables()
            .set_filters(Some(owned(context, address)))
            .send()
            .await
            .aws()?;
        if let Some(id) = found
            .route_tables()
            .iter()
            .find(|table| ours(table.tags(), context, address))
            .and_then(|table| table.route_table_id())
        {
            return Ok(outputs([("id", id.to_string())]));
        }
    }
    let vpc = attrs.str("vpc_id")?;
    context.calls.write(SERVICE);
    let created = context
        .ec2
        .create_route_table()
        .vpc_id(vpc)
        .set_client_token(context.client_token(address, &[vpc]))
        .tag_specifications(tag_spec(ResourceType::RouteTable, attrs, address))
        .send()
        .await
        .aws()?;
    Ok(outputs([(
        "id",
        created
            .route_table()
            .and_then(|table| table.route_table_id())
            .ok_or_else(|| no_id("CreateRouteTable"))?
            .to_string(),
    )]))
}

/// Routes have no id or tags: they are found by table and destination, and their target is
/// set whether the route is new or was left by an earlier run.
async fn create_route(context: &Context, attrs: Attrs<'_>) -> Result<Outputs, ProvisionError> {
    let table = attrs.str("route_table_id")?;
    let destination = attrs.str("destination_cidr_block")?;
    let gateway = attrs.opt_str("gateway_id");
    let nat = attrs.opt_str("nat_gateway_id");
    context.calls.read(SERVICE);
    let found = context
        .ec2
        .describe_route_tables()
        .route_table_ids(table)
        .send()
        .await
        .aws()?;
    let existing = found
        .route_tables()
        .iter()
        .flat_map(|table| table.routes())
        .find(|route| route.destination_cidr_block() == Some(destination));
    let id = format!("{table}|{destination}");
    match existing {
        Some(route) if route.gateway_id() == gateway && route.nat_gateway_id() == nat => {}
        Some(_) => {
            context.calls.write(SERVICE);
            context
                .ec2
                .replace_route()
                .route_table_id(table)
                .destination_cidr_block(destination)
                .set_gateway_id(gateway.map(String::from))
                .set_nat_gateway_id(nat.map(String::from))
                .send()
                .await
                .aws()?;
        }
        None => {
            context.calls.write(SERVICE);
            context
                .ec2
                .create_route()
                .route_table_id(table)
                .destination_cidr_block(destination)
                .set_gateway_id(gateway.map(String::from))
                .set_nat_gateway_id(nat.map(String::from))
                .send()
                .await
                .aws()?;
        }
    }
    Ok(outputs([("id", id)]))
}

/// Associations are found by subnet: a subnet has at most one route table.
async fn create_association(
    context: &Context,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let table = attrs.str("route_table_id")?;
    let subnet = attrs.str("subnet_id")?;
    context.calls.read(SERVICE);
    let found = context
        .ec2
        .describe_route_tables()
        .filters(filter("association.subnet-id", subnet))
        .send()
        .await
        .aws()?;
    let current = found.route_tables().iter().find_map(|candidate| {
        candidate
            .associations()
            .iter()
            .find(|association| association.subnet_id() == Some(subnet))
            .map(|association| {
                (
                    candidate.route_table_id().unwrap_or_default().to_string(),
                    association
                        .route_table_association_id()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
    });
    let id = match current {
        Some((current_table, association)) if current_table == table => association,
        Some((_, association)) => {
            context.calls.write(SERVICE);
            let replaced = context
                .ec2
                .replace_route_table_association()
                .association_id(association)
                .route_table_id(table)
                .send()
                .await
                .aws()?;
            replaced
                .new_association_id()
                .ok_or_else(|| no_id("ReplaceRouteTableAssociation"))?
                .to_string()
        }
        None => {
            context.calls.write(SERVICE);
            let created = context
                .ec2
                .associate_route_table()
                .route_table_id(table)
                .subnet_id(subnet)
                .send()
                .await
                .aws()?;
            created
                .association_id()
                .ok_or_else(|| no_id("AssociateRouteTable"))?
                .to_string()
        }
    };
    Ok(outputs([("id", id)]))
}

async fn create_security_group(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let vpc = attrs.str("vpc_id")?;
    let name = attrs.str("name")?;
    if may_exist(context, address).await? {
        context.calls.read(SERVICE);
        let found = context
            .ec2
            .describe_security_groups()
            .filters(filter("vpc-id", vpc))
            .filters(filter("group-name", name))
            .send()
            .await
            .aws()?;
        if let Some(group) = found.security_groups().first() {
            if !ours(group.tags(), context, address) {
                return Err(super::not_owned("security group", name, &context.cluster));
            }
            let id = group
                .group_id()
                .ok_or_else(|| no_id("DescribeSecurityGroups"))?;
            // An interrupted create may have stopped before taking away EC2's default rule.
            let allows_everything = group.ip_permissions_egress().iter().any(|permission| {
                permission.ip_protocol() == Some("-1")
                    && permission
                        .ip_ranges()
                        .iter()
                        .any(|range| range.cidr_ip() == Some("0.0.0.0/0"))
            });
            if allows_everything {
                revoke_default_egress(context, id).await?;
            }
            return Ok(outputs([
                ("id", id.to_string()),
                (
                    "arn",
                    group.security_group_arn().unwrap_or_default().to_string(),
                ),
            ]));
        }
    }
    if let Some(made) = created_earlier(context, address) {
        // Made by an earlier attempt of this run, whose follow-up failed: finish it.
        revoke_default_egress(
            context,
            made.get("id").map(String::as_str).unwrap_or_default(),
        )
        .await?;
        return Ok(made);
    }
    context.calls.write(SERVICE);
    let created = context
        .ec2
        .create_security_group()
        .group_name(name)
        .description(attrs.str("description")?)
        .vpc_id(vpc)
        .tag_specifications(tag_spec(ResourceType::SecurityGroup, attrs, address))
        .send()
        .await
        .aws()?;
    let id = created
        .group_id()
        .ok_or_else(|| no_id("CreateSecurityGroup"))?
        .to_string();
    let made = outputs([
        ("id", id.clone()),
        (
            "arn",
            created.security_group_arn().unwrap_or_default().to_string(),
        ),
    ]);
    remember_created(context, address, &made);
    revoke_default_egress(context, &id).await?;
    Ok(made)
}

/// EC2 gives every new group an allow-all egress rule; rafter manages egress explicitly (its
/// own allow-all rule, where the spec wants one, is created afterwards, tagged).
async fn revoke_default_egress(context: &Context, group: &str) -> Result<(), ProvisionError> {
    context.calls.write(SERVICE);
    let everything = IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build();
    let revoked = context
        .ec2
        .revoke_security_group_egress()
        .group_id(group)
        .ip_permissions(everything)
        .send()
        .await
        .aws();
    match revoked {
        // Already gone: an earlier attempt revoked it and lost the answer.
        Err(error) if error.code == "InvalidPermission.NotFound" => Ok(()),
        other => other.map(drop),
    }
}

fn permission(attrs: Attrs<'_>) -> Result<IpPermission, ProvisionError> {
    let description = attrs.opt_str("description").map(String::from);
    let mut builder = IpPermission::builder().ip_protocol(attrs.str("ip_protocol")?);
    // EC2 ignores ports for protocols without them; -1 says "all" explicitly, which some
    // implementations of the API (the emulator among them) insist on.
    let (from, to) = (
        attrs.opt_int("from_port").unwrap_or(-1),
        attrs.opt_int("to_port").unwrap_or(-1),
    );
    let port = |value: i64| {
        i32::try_from(value).map_err(|_| {
            ProvisionError::permanent("RafterModel", format!("port {value} out of range"))
        })
    };
    builder = builder.from_port(port(from)?).to_port(port(to)?);
    builder = match (
        attrs.opt_str("cidr_ipv4"),
        attrs.opt_str("referenced_security_group_id"),
    ) {
        (Some(cidr), _) => builder.ip_ranges(
            IpRange::builder()
                .cidr_ip(cidr)
                .set_description(description)
                .build(),
        ),
        (None, Some(group)) => builder.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(group)
                .set_description(description)
                .build(),
        ),
        (None, None) => {
            return Err(ProvisionError::permanent(
                "RafterModel",
                "a rule needs a CIDR or a security group",
            ));
        }
    };
    Ok(builder.build())
}

/// Rules are authorized first: EC2 refuses a duplicate permission, and only then is the
/// rule an interrupted run made looked up (by its tags) and adopted.
async fn create_rule(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let group = attrs.str("security_group_id")?;
    let rule_outputs = |id: String| outputs([("id", id), ("security_group_id", group.to_string())]);
    match authorize_rule(context, address, attrs, group).await {
        Ok(id) => Ok(rule_outputs(id)),
        Err(error) if error.code == "InvalidPermission.Duplicate" => {
            context.calls.read(SERVICE);
            let mut filters = owned(context, address);
            filters.push(filter("group-id", group));
            let found = context
                .ec2
                .describe_security_group_rules()
                .set_filters(Some(filters))
                .send()
                .await
                .aws()?;
            found
                .security_group_rules()
                .iter()
                .find(|rule| ours(rule.tags(), context, address))
                .and_then(|rule| rule.security_group_rule_id())
                .map(|id| rule_outputs(id.to_string()))
                // The same permission, but not one rafter made for this address.
                .ok_or(error)
        }
        Err(error) => Err(error),
    }
}

async fn authorize_rule(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
    group: &str,
) -> Result<String, ProvisionError> {
    context.calls.write(SERVICE);
    let spec = tag_spec(ResourceType::SecurityGroupRule, attrs, address);
    let rules = if address.kind == ResourceKind::SecurityGroupIngressRule {
        context
            .ec2
            .authorize_security_group_ingress()
            .group_id(group)
            .ip_permissions(permission(attrs)?)
            .tag_specifications(spec)
            .send()
            .await
            .aws()?
            .security_group_rules
    } else {
        context
            .ec2
            .authorize_security_group_egress()
            .group_id(group)
            .ip_permissions(permission(attrs)?)
            .tag_specifications(spec)
            .send()
            .await
            .aws()?
            .security_group_rules
    };
    rules
        .unwrap_or_default()
        .first()
        .and_then(|rule| rule.security_group_rule_id().map(String::from))
        .ok_or_else(|| no_id("AuthorizeSecurityGroupIngress"))
}
