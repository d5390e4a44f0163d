//! Route53: looking up the cluster's hosted zone and pointing the API names at the load
//! balancer with alias records. `UPSERT` makes a record write idempotent by itself; records
//! carry no tags, so rafter only ever writes the names the spec derives from the cluster name.

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType,
};

use super::attrs::Attrs;
use super::errors::{AwsResultExt, gone_is_fine};
use super::{Context, outputs};
use crate::apply::{Outputs, ProvisionError};
use crate::plan::RecordedResource;

const SERVICE: &str = "route53";

/// Route53 names are absolute: `example.com.`.
fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// The hosted zone with exactly this name and visibility.
pub async fn find_zone(context: &Context, attrs: Attrs<'_>) -> Result<Outputs, ProvisionError> {
    let name = absolute(attrs.str("name")?);
    let private = attrs.bool("private_zone")?;
    context.calls.read(SERVICE);
    let found = context
        .route53
        .list_hosted_zones_by_name()
        .dns_name(&name)
        .send()
        .await
        .aws()?;
    let zone = found
        .hosted_zones()
        .iter()
        .find(|zone| {
            zone.name() == name
                && zone.config().map(|config| config.private_zone()).unwrap_or(false) == private
        })
        .ok_or_else(|| {
            let visibility = if private { "private" } else { "public" };
            ProvisionError::permanent(
                "HostedZoneNotFound",
                format!("no {visibility} Route53 hosted zone is named {name}: create it, or set spec.dns.zone to one that exists"),
            )
        })?;
    let id = zone.id().trim_start_matches("/hostedzone/").to_string();
    Ok(outputs([
        ("id", id.clone()),
        ("zone_id", id),
        ("name", name),
    ]))
}

fn record_id(zone: &str, name: &str, kind: &str) -> String {
    format!("{zone}_{name}_{kind}")
}

pub async fn upsert_record(context: &Context, attrs: Attrs<'_>) -> Result<Outputs, ProvisionError> {
    let zone = attrs.str("zone_id")?;
    let name = attrs.str("name")?;
    let kind = attrs.str("type")?;
    let alias = attrs.block("alias")?;
    let target = AliasTarget::builder()
        .dns_name(alias.str("name")?)
        .hosted_zone_id(alias.str("zone_id")?)
        .evaluate_target_health(alias.bool("evaluate_target_health")?)
        .build()
        .map_err(|error| ProvisionError::permanent("RafterModel", error.to_string()))?;
    let record = ResourceRecordSet::builder()
        .name(absolute(name))
        .r#type(RrType::from(kind))
        .alias_target(target)
        .build()
        .map_err(|error| ProvisionError::permanent("RafterModel", error.to_string()))?;
    change(context, zone, ChangeAction::Upsert, record).await?;
    Ok(outputs([("id", record_id(zone, name, kind))]))
}

/// Deletes the record as Route53 has it now (a delete must repeat the record exactly).
pub async fn delete_record(
    context: &Context,
    recorded: &RecordedResource,
) -> Result<(), ProvisionError> {
    let id = recorded
        .outputs
        .get("id")
        .map(String::as_str)
        .unwrap_or_default();
    // Zone ids and record types have no `_`; a name might.
    let parsed = id
        .split_once('_')
        .and_then(|(zone, rest)| Some((zone, rest.rsplit_once('_')?)));
    let Some((zone, (name, kind))) = parsed else {
        return Err(ProvisionError::permanent(
            "MissingId",
            format!("record id `{id}` is not zone_name_type"),
        ));
    };
    context.calls.read(SERVICE);
    let found = context
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(absolute(name))
        .start_record_type(RrType::from(kind))
        .max_items(1)
        .send()
        .await
        .aws();
    let found = match found {
        Ok(found) => found,
        Err(error) => return gone_is_fine(error),
    };
    let current = found
        .resource_record_sets()
        .iter()
        .find(|record| record.name() == absolute(name) && record.r#type().as_str() == kind);
    match current {
        Some(record) => change(context, zone, ChangeAction::Delete, record.clone()).await,
        None => Ok(()),
    }
}

async fn change(
    context: &Context,
    zone: &str,
    action: ChangeAction,
    record: ResourceRecordSet,
) -> Result<(), ProvisionError> {
    let change = Change::builder()
        .action(action)
        .resource_record_set(record)
        .build()
        .map_err(|error| ProvisionError::permanent("RafterModel", error.to_string()))?;
    let batch = ChangeBatch::builder()
        .changes(change)
        .build()
        .map_err(|error| ProvisionError::permanent("RafterModel", error.to_string()))?;
    context.calls.write(SERVICE);
    context
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .aws()
        .map(drop)
}
