//! The reads of a refresh: per kind, which recorded resources exist and what they say now.
//!
//! What is compared is what the kind's update brings back to the spec:
//! - tags (those rafter sets) of the VPC, subnets, gateways, addresses, route tables,
//!   security groups and their rules, and volumes;
//! - a subnet's public-address setting; a route's target; a route-table association's table;
//! - a security-group rule's protocol, ports and peer (changed in place, it is replaced);
//! - the settings of a launch template's newest version, read only when the template has a
//!   version rafter did not make;
//! - an auto-scaling group's sizes, subnets, target groups and template;
//! - an IAM role's trust policy, each inline policy, and the role in each instance profile;
//! - the node termination handler's queue: its retention, encryption and tags; its rules:
//!   their description and tags (not their patterns, which EventBridge may store
//!   reformatted).
//!
//! Existence only: key pairs, load balancers and target groups. Not read: listeners and DNS
//! records (their load balancer and zone are), lookups, hosts.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, Tag};
use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::Records;
use super::compare::Live;
use crate::apply::ProvisionError;
use crate::aws::attrs::Attrs;
use crate::aws::ec2::ec2_every_page;
use crate::aws::errors::AwsResultExt;
use crate::aws::iam::percent_decode;
use crate::aws::{Context, compute, events, loadbalancer};
use crate::graph::{Field, ResourceKind, Value};
use crate::model::naming::CLUSTER_TAG;
use crate::plan::RecordedResource;
use crate::plan::diff::resolved_from;

/// What one read found, by recorded id.
pub type Seen = BTreeMap<String, Live>;

type Found = Result<Seen, ProvisionError>;

/// Whether a refresh reads resources of `kind`: those that stand alone, and those read with
/// their parent (routes and associations with their table, rules with their group, inline
/// policies by their role).
pub fn is_read(kind: ResourceKind) -> bool {
    kind.stands_alone()
        || matches!(
            kind,
            ResourceKind::Route
                | ResourceKind::RouteTableAssociation
                | ResourceKind::SecurityGroupIngressRule
                | ResourceKind::SecurityGroupEgressRule
                | ResourceKind::IamRolePolicy
        )
}

/// The kinds read from the same `DescribeRouteTables`: the tables, their routes and their
/// associations.
const ROUTE_TABLE_KINDS: [ResourceKind; 3] = [
    ResourceKind::RouteTable,
    ResourceKind::Route,
    ResourceKind::RouteTableAssociation,
];

/// Every kind at once: one round trip's wait, not one per kind. Route tables, routes and
/// associations share one describe of the tables their records name.
pub async fn read_all(
    context: &Context,
    by_kind: &BTreeMap<ResourceKind, Vec<&RecordedResource>>,
    records: &Records<'_>,
) -> Result<BTreeMap<ResourceKind, Seen>, ProvisionError> {
    let others =
        join_all(
            by_kind
                .iter()
                .filter(|(kind, _)| !ROUTE_TABLE_KINDS.contains(kind))
                .map(|(kind, of_kind)| async move {
                    (*kind, read(context, *kind, of_kind, records).await)
                }),
        );
    let (tables, others) = futures_util::join!(route_tables(context, by_kind, records), others);
    let mut seen = tables?;
    for (kind, found) in others {
        seen.insert(kind, found?);
    }
    Ok(seen)
}

/// What exists of `recorded` (all of `kind`), and what it says now.
async fn read(
    context: &Context,
    kind: ResourceKind,
    recorded: &[&RecordedResource],
    records: &Records<'_>,
) -> Found {
    match kind {
        ResourceKind::SecurityGroupIngressRule | ResourceKind::SecurityGroupEgressRule => {
            rules(context, recorded).await
        }
        ResourceKind::LaunchTemplate => launch_templates(context, recorded, records).await,
        ResourceKind::AutoscalingGroup => auto_scaling_groups(context, recorded, records).await,
        ResourceKind::IamRole => roles(context, recorded).await,
        ResourceKind::IamRolePolicy => role_policies(context, recorded).await,
        ResourceKind::IamInstanceProfile => instance_profiles(context, recorded).await,
        _ => {
            let ids: Vec<String> = recorded
                .iter()
                .filter_map(|record| record.outputs.get("id").cloned())
                .collect();
            let mut seen = Seen::new();
            // EC2 takes at most 200 values per filter.
            for ids in ids.chunks(200) {
                seen.extend(read_by_ids(context, kind, ids).await?);
            }
            Ok(seen)
        }
    }
}

async fn read_by_ids(context: &Context, kind: ResourceKind, ids: &[String]) -> Found {
    match kind {
        ResourceKind::Vpc => vpcs(context, ids).await,
        ResourceKind::Subnet => subnets(context, ids).await,
        ResourceKind::InternetGateway => internet_gateways(context, ids).await,
        ResourceKind::ElasticIp => addresses(context, ids).await,
        ResourceKind::NatGateway => nat_gateways(context, ids).await,
        ResourceKind::SecurityGroup => security_groups(context, ids).await,
        ResourceKind::KeyPair => key_pairs(context, ids).await,
        ResourceKind::EbsVolume => volumes(context, ids).await,
        ResourceKind::LoadBalancer => load_balancers(context, ids).await,
        ResourceKind::TargetGroup => target_groups(context, ids).await,
        ResourceKind::SqsQueue => queues(context, ids).await,
        ResourceKind::EventRule => event_rules(context, ids).await,
        // Not read: taken to exist as recorded.
        _ => Ok(ids.iter().map(|id| (id.clone(), Live::default())).collect()),
    }
}

fn ids_filter(name: &str, ids: &[String]) -> Filter {
    let mut builder = Filter::builder().name(name);
    for id in ids {
        builder = builder.values(id);
    }
    builder.build()
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|tag| Some((tag.key()?.to_string(), tag.value()?.to_string())))
        .collect()
}

/// A tagged resource with nothing else compared.
fn tagged(tags: &[Tag]) -> Live {
    Live::default().tagged(tag_map(tags))
}

fn by_id(listed: Result<Vec<(String, Live)>, ProvisionError>) -> Found {
    listed.map(|seen| seen.into_iter().collect())
}

async fn vpcs(context: &Context, ids: &[String]) -> Found {
    let request = context
        .ec2
        .describe_vpcs()
        .filters(ids_filter("vpc-id", ids));
    by_id(ec2_every_page!(context, request, vpcs, |vpc| Some((
        vpc.vpc_id()?.to_string(),
        tagged(vpc.tags())
    ))))
}

async fn volumes(context: &Context, ids: &[String]) -> Found {
    let request = context
        .ec2
        .describe_volumes()
        .filters(ids_filter("volume-id", ids));
    // A volume being deleted is as good as gone.
    by_id(ec2_every_page!(context, request, volumes, |volume| {
        let state = volume.state().map(|state| state.as_str());
        if matches!(state, Some("deleting" | "deleted" | "error")) {
            return None;
        }
        Some((volume.volume_id()?.to_string(), tagged(volume.tags())))
    }))
}

async fn subnets(context: &Context, ids: &[String]) -> Found {
    let request = context
        .ec2
        .describe_subnets()
        .filters(ids_filter("subnet-id", ids));
    by_id(ec2_every_page!(context, request, subnets, |subnet| {
        let live = tagged(subnet.tags()).with(
            "map_public_ip_on_launch",
            Value::Bool(subnet.map_public_ip_on_launch().unwrap_or(false)),
        );
        Some((subnet.subnet_id()?.to_string(), live))
    }))
}

async fn internet_gateways(context: &Context, ids: &[String]) -> Found {
    let request = context
        .ec2
        .describe_internet_gateways()
        .filters(ids_filter("internet-gateway-id", ids));
    by_id(ec2_every_page!(
        context,
        request,
        internet_gateways,
        |gateway| Some((
            gateway.internet_gateway_id()?.to_string(),
            tagged(gateway.tags())
        ))
    ))
}

async fn nat_gateways(context: &Context, ids: &[String]) -> Found {
    let request = context
        .ec2
        .describe_nat_gateways()
        .filter(ids_filter("nat-gateway-id", ids));
    // A deleted or failed gateway is listed for a while, and is as good as gone.
    by_id(ec2_every_page!(context, request, nat_gateways, |gateway| {
        let state = gateway.state().map(|state| state.as_str());
        if matches!(state, Some("deleting" | "deleted" | "failed")) {
            return None;
        }
        Some((
            gateway.nat_gateway_id()?.to_string(),
            tagged(gateway.tags()),
        ))
    }))
}

/// The route tables, routes and associations of `by_kind`, from one describe (per 200
/// tables and page) of every table their records name: a table by its id, a route by the
/// table in its id (`table|destination`), an association by the table it was recorded in.
async fn route_tables(
    context: &Context,
    by_kind: &BTreeMap<ResourceKind, Vec<&RecordedResource>>,
    records: &Records<'_>,
) -> Result<BTreeMap<ResourceKind, Seen>, ProvisionError> {
    let mut table_ids = BTreeSet::new();
    for kind in ROUTE_TABLE_KINDS {
        for record in by_kind.get(&kind).into_iter().flatten() {
            let table = match kind {
                ResourceKind::RouteTableAssociation => record
                    .attributes
                    .iter()
                    .find(|field| field.name == "route_table_id")
                    .and_then(|field| match resolved_from(&field.value, records) {
                        Value::Str(table) => Some(table),
                        _ => None,
                    }),
                _ => record.outputs.get("id").map(|id| {
                    id.split_once('|')
                        .map_or(id.as_str(), |(table, _)| table)
                        .to_string()
                }),
            };
            table_ids.extend(table);
        }
    }
    let table_ids: Vec<String> = table_ids.into_iter().collect();
    let mut tables = Vec::new();
    for ids in table_ids.chunks(200) {
        let request = context
            .ec2
            .describe_route_tables()
            .filters(ids_filter("route-table-id", ids));
        tables.extend(ec2_every_page!(context, request, route_tables, |table| {
            Some(table.clone())
        })?);
    }
    let mut seen: BTreeMap<ResourceKind, Seen> = BTreeMap::new();
    for table in &tables {
        let table_id = table.route_table_id().unwrap_or_default();
        seen.entry(ResourceKind::RouteTable)
            .or_default()
            .insert(table_id.to_string(), tagged(table.tags()));
        // A route's target is whichever the route has, compared with the one its record
        // names.
        for route in table.routes() {
            let Some(destination) = route.destination_cidr_block() else {
                continue;
            };
            let target = route
                .gateway_id()
                .or(route.nat_gateway_id())
                .or(route.network_interface_id())
                .or(route.instance_id())
                .unwrap_or_default();
            seen.entry(ResourceKind::Route).or_default().insert(
                format!("{table_id}|{destination}"),
                Live::default()
                    .with("gateway_id", Value::str(target))
                    .with("nat_gateway_id", Value::str(target)),
            );
        }
        // Compared on the table: a subnet moved to another table by hand gets a new
        // association id, so its recorded one reads as gone and the subnet is associated
        // again.
        for association in table.associations() {
            if let Some(id) = association.route_table_association_id() {
                seen.entry(ResourceKind::RouteTableAssociation)
                    .or_default()
                    .insert(
                        id.to_string(),
                        Live::default().with("route_table_id", Value::str(table_id)),
                    );
            }
        }
    }
    // Only the kinds asked for (a kind with nothing found is all gone).
    seen.retain(|kind, _| by_kind.contains_key(kind));
    for kind in ROUTE_TABLE_KINDS {
        if by_kind.contains_key(&kind) {
            seen.entry(kind).or_default();
        }
    }
    Ok(seen)
}

async fn security_groups(context: &Context, ids: &[String]) -> Found {
    let request = context
        .ec2
        .describe_security_groups()
        .filters(ids_filter("group-id", ids));
    by_id(ec2_every_page!(
        context,
        request,
        security_groups,
        |group| { Some((group.group_id()?.to_string(), tagged(group.tags()))) }
    ))
}

/// Rules are listed by their groups' ids, every rule of those groups, in one describe.
async fn rules(context: &Context, recorded: &[&RecordedResource]) -> Found {
    let groups: BTreeSet<String> = recorded
        .iter()
        .filter_map(|record| record.outputs.get("security_group_id").cloned())
        .collect();
    let groups: Vec<String> = groups.into_iter().collect();
    let mut seen = Seen::new();
    for groups in groups.chunks(200) {
        let request = context
            .ec2
            .describe_security_group_rules()
            .filters(ids_filter("group-id", groups));
        seen.extend(ec2_every_page!(
            context,
            request,
            security_group_rules,
            |rule| {
                let mut live = tagged(rule.tags());
                if let Some(protocol) = rule.ip_protocol() {
                    live = live.with("ip_protocol", Value::str(protocol));
                }
                if let (Some(from), Some(to)) = (rule.from_port(), rule.to_port()) {
                    live = live
                        .with("from_port", Value::Int(i64::from(from)))
                        .with("to_port", Value::Int(i64::from(to)));
                }
                // A peer the rule lost reads as empty, so a peer swapped by hand differs.
                let peer = rule
                    .referenced_group_info()
                    .and_then(|peer| peer.group_id());
                live = live
                    .with(
                        "cidr_ipv4",
                        Value::str(rule.cidr_ipv4().unwrap_or_default()),
                    )
                    .with(
                        "referenced_security_group_id",
                        Value::str(peer.unwrap_or_default()),
                    );
                Some((rule.security_group_rule_id()?.to_string(), live))
            }
        )?);
    }
    Ok(seen)
}

/// `DescribeLaunchTemplates` has no id filter (and fails on a missing id asked by name):
/// the cluster's templates are listed by its tag instead. A template whose newest version
/// is not the one rafter recorded has had a version made outside rafter: that version's
/// settings are read and compared.
async fn launch_templates(
    context: &Context,
    recorded: &[&RecordedResource],
    records: &Records<'_>,
) -> Found {
    let request = context.ec2.describe_launch_templates().filters(ids_filter(
        &format!("tag:{CLUSTER_TAG}"),
        std::slice::from_ref(&context.cluster),
    ));
    let listed = ec2_every_page!(context, request, launch_templates, |template| Some((
        template.launch_template_id()?.to_string(),
        template.latest_version_number()
    )))?;
    let reads = listed.into_iter().map(|(id, latest)| async move {
        let record = recorded
            .iter()
            .find(|record| record.outputs.get("id") == Some(&id));
        let recorded_latest = record
            .and_then(|record| record.outputs.get("latest_version"))
            .and_then(|version| version.parse::<i64>().ok());
        let mut live = Live::default();
        if let Some(record) = record
            && latest.is_some()
            && latest != recorded_latest
        {
            let resolved = resolved_fields(record, records);
            for (name, value) in
                compute::changed_template_settings(context, &id, Attrs(&resolved)).await?
            {
                live = live.with(name, value);
            }
        }
        Ok::<_, ProvisionError>((id, live))
    });
    join_all(reads).await.into_iter().collect()
}

fn resolved_fields(record: &RecordedResource, records: &Records<'_>) -> Vec<Field> {
    record
        .attributes
        .iter()
        .map(|field| Field {
            value: resolved_from(&field.value, records),
            ..field.clone()
        })
        .collect()
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
        .filter_map(|key| Some((key.key_pair_id()?.to_string(), Live::default())))
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
        .filter_map(|address| Some((address.allocation_id()?.to_string(), tagged(address.tags()))))
        .collect())
}

/// A group's template is compared by id, and by version where the group does not launch
/// `$Latest` (what rafter sets).
async fn auto_scaling_groups(
    context: &Context,
    recorded: &[&RecordedResource],
    records: &Records<'_>,
) -> Found {
    let names: Vec<String> = recorded
        .iter()
        .filter_map(|record| record.outputs.get("id").cloned())
        .collect();
    let groups = compute::groups_named(context, &names).await?;
    let strings = |items: Vec<&str>| Value::List(items.into_iter().map(Value::str).collect());
    Ok(groups
        .iter()
        // A group being deleted is as good as gone.
        .filter(|group| group.status().is_none())
        .filter_map(|group| {
            let name = group.auto_scaling_group_name()?.to_string();
            let record = recorded
                .iter()
                .find(|record| record.outputs.get("id") == Some(&name))?;
            let subnets: Vec<&str> = group
                .vpc_zone_identifier()
                .unwrap_or_default()
                .split(',')
                .filter(|subnet| !subnet.is_empty())
                .collect();
            let mut live = Live::default()
                .with("min_size", Value::Int(i64::from(group.min_size()?)))
                .with("max_size", Value::Int(i64::from(group.max_size()?)))
                .with("vpc_zone_identifier", strings(subnets))
                .with(
                    "target_group_arns",
                    strings(
                        group
                            .target_group_arns()
                            .iter()
                            .map(String::as_str)
                            .collect(),
                    ),
                );
            if let Some(template) = live_template(record, group, records) {
                live = live.with("launch_template", template);
            }
            Some((name, live))
        })
        .collect())
}

/// The recorded `launch_template` block with the group's live template id, and its live
/// version where that is not `$Latest`.
fn live_template(
    record: &RecordedResource,
    group: &aws_sdk_autoscaling::types::AutoScalingGroup,
    records: &Records<'_>,
) -> Option<Value> {
    let field = record
        .attributes
        .iter()
        .find(|field| field.name == "launch_template")?;
    let Value::Block(fields) = resolved_from(&field.value, records) else {
        return None;
    };
    let live = group.launch_template()?;
    let fields = fields
        .into_iter()
        .map(|mut field| {
            match (
                field.name.as_str(),
                live.launch_template_id(),
                live.version(),
            ) {
                ("id", Some(id), _) => field.value = Value::str(id),
                ("version", _, Some(version)) if version != "$Latest" => {
                    field.value = Value::str(version)
                }
                _ => {}
            }
            field
        })
        .collect();
    Some(Value::Block(fields))
}

/// ELBv2 fails a whole describe by ARNs when one is missing: they are all listed instead.
async fn load_balancers(context: &Context, arns: &[String]) -> Found {
    let all = loadbalancer::all_load_balancer_arns(context).await?;
    Ok(all
        .into_iter()
        .filter(|arn| arns.contains(arn))
        .map(|arn| (arn, Live::default()))
        .collect())
}

async fn target_groups(context: &Context, arns: &[String]) -> Found {
    let all = loadbalancer::all_target_group_arns(context).await?;
    Ok(all
        .into_iter()
        .filter(|arn| arns.contains(arn))
        .map(|arn| (arn, Live::default()))
        .collect())
}

/// The recorded file attribute `name` of `record` with `content` (URL-encoded, as IAM
/// answers) in its place.
fn live_document(record: &RecordedResource, name: &str, content: &str) -> Option<Value> {
    let field = record.attributes.iter().find(|field| field.name == name)?;
    let Value::File(file) = &field.value else {
        return None;
    };
    let mut file = file.clone();
    file.content = percent_decode(content);
    Some(Value::File(file))
}

/// IAM has no batch describe: one `GetRole` per role, [`IAM_IN_FLIGHT`] at a time (a
/// cluster has one role per node group).
async fn roles(context: &Context, recorded: &[&RecordedResource]) -> Found {
    iam_read(recorded, |record, name| async move {
        context.calls.read("iam");
        let found = context.iam.get_role().role_name(name).send().await.aws()?;
        let trust = found
            .role()
            .and_then(|role| role.assume_role_policy_document())
            .and_then(|document| live_document(record, "assume_role_policy", document));
        Ok(match trust {
            Some(trust) => Live::default().with("assume_role_policy", trust),
            None => Live::default(),
        })
    })
    .await
}

/// One `GetRolePolicy` per inline policy (recorded as `role:policy`).
async fn role_policies(context: &Context, recorded: &[&RecordedResource]) -> Found {
    iam_read(recorded, |record, id| async move {
        let (role, policy) = id.split_once(':').unwrap_or((id, ""));
        context.calls.read("iam");
        let found = context
            .iam
            .get_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send()
            .await
            .aws()?;
        Ok(
            match live_document(record, "policy", found.policy_document()) {
                Some(document) => Live::default().with("policy", document),
                None => Live::default(),
            },
        )
    })
    .await
}

/// One `GetInstanceProfile` per profile: the role it hands to instances.
async fn instance_profiles(context: &Context, recorded: &[&RecordedResource]) -> Found {
    iam_read(recorded, |_, name| async move {
        context.calls.read("iam");
        let found = context
            .iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .aws()?;
        let roles: Vec<&str> = found
            .instance_profile()
            .map(|profile| {
                profile
                    .roles()
                    .iter()
                    .map(|role| role.role_name())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Live::default().with("role", Value::str(roles.join(","))))
    })
    .await
}

/// How many IAM reads of one kind a refresh has in flight: one round trip for a small
/// cluster, a tenth of the reads for one of many node groups, and well inside IAM's request
/// rate.
const IAM_IN_FLIGHT: usize = 10;

/// What `get` says of each record (called with the record and its id; IAM's `NoSuchEntity`
/// means gone).
async fn iam_read<'r, F>(
    recorded: &'r [&'r RecordedResource],
    get: impl Fn(&'r RecordedResource, &'r str) -> F,
) -> Found
where
    F: std::future::Future<Output = Result<Live, ProvisionError>>,
{
    let read: Vec<Option<(String, Live)>> = stream::iter(recorded)
        .filter_map(
            |record| async move { record.outputs.get("id").map(|id| (*record, id.as_str())) },
        )
        .map(|(record, id)| {
            let call = get(record, id);
            async move {
                match call.await {
                    Ok(live) => Ok(Some((id.to_string(), live))),
                    Err(error) if error.code == "NoSuchEntity" => Ok(None),
                    Err(error) => Err(error),
                }
            }
        })
        .buffer_unordered(IAM_IN_FLIGHT)
        .try_collect()
        .await?;
    Ok(read.into_iter().flatten().collect())
}

/// The queues at these URLs that still exist, with their settings and tags.
async fn queues(context: &Context, urls: &[String]) -> Found {
    use aws_sdk_sqs::types::QueueAttributeName;
    let mut seen = Seen::new();
    for url in urls {
        context.calls.read("sqs");
        let described = context
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::MessageRetentionPeriod)
            .attribute_names(QueueAttributeName::SqsManagedSseEnabled)
            .send()
            .await
            .aws();
        let described = match described {
            Err(error) if events::queue_is_absent(&error) => continue,
            other => other?,
        };
        let attribute = |name: QueueAttributeName| {
            described
                .attributes()
                .and_then(|attributes| attributes.get(&name))
                .cloned()
                .unwrap_or_default()
        };
        let mut live = Live::default()
            .with(
                "sqs_managed_sse_enabled",
                Value::Bool(attribute(QueueAttributeName::SqsManagedSseEnabled) == "true"),
            )
            .tagged(
                events::queue_tags(context, url)
                    .await?
                    .into_iter()
                    .collect(),
            );
        if let Ok(seconds) = attribute(QueueAttributeName::MessageRetentionPeriod).parse() {
            live = live.with("message_retention_seconds", Value::Int(seconds));
        }
        seen.insert(url.clone(), live);
    }
    Ok(seen)
}

/// The rules of these names that still exist, with their descriptions and tags.
async fn event_rules(context: &Context, names: &[String]) -> Found {
    let mut seen = Seen::new();
    for name in names {
        context.calls.read("events");
        let described = match context.events.describe_rule().name(name).send().await.aws() {
            Err(error) if error.code == "ResourceNotFoundException" => continue,
            other => other?,
        };
        let tags = events::rule_tags(context, described.arn().unwrap_or_default()).await?;
        seen.insert(
            name.clone(),
            Live::default()
                .with(
                    "description",
                    Value::str(described.description().unwrap_or_default()),
                )
                .tagged(tags.into_iter().collect()),
        );
    }
    Ok(seen)
}
