//! Compute: the SSH key pair, the AMI lookup, launch templates and auto-scaling groups.
//!
//! A launch template change makes a new template version and makes it the default; groups
//! launch `$Latest`, so new instances pick the change up and a rolling update (`upgrade
//! cluster`) replaces the old ones, as kops does.

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag as GroupTag};
use aws_sdk_ec2::primitives::Blob;
use aws_sdk_ec2::types::{
    Filter, LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest,
    LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType,
    ResponseLaunchTemplateData, VolumeType,
};

use super::attrs::Attrs;
use super::ec2::{filter, may_exist, owned_by_cluster, retag, tag_spec};
use super::errors::{AwsResultExt, gone_is_fine};
use super::{Context, not_owned, outputs};
use crate::apply::{Outputs, ProvisionError};
use crate::graph::{Address, ResourceKind, Value};
use crate::model::naming::CLUSTER_TAG;
use crate::plan::RecordedResource;

const EC2: &str = "ec2";
const AUTOSCALING: &str = "autoscaling";

fn missing(operation: &str) -> ProvisionError {
    ProvisionError::permanent("MissingId", format!("{operation} returned no id"))
}

/// The auto-scaling groups named `names` that exist (every page; at most 100 names a
/// request, as Auto Scaling takes).
pub(crate) async fn groups_named(
    context: &Context,
    names: &[String],
) -> Result<Vec<aws_sdk_autoscaling::types::AutoScalingGroup>, ProvisionError> {
    let mut found = Vec::new();
    for names in names.chunks(100) {
        let mut pages = context
            .autoscaling
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(Some(names.to_vec()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            context.calls.read(AUTOSCALING);
            found.extend(page.aws()?.auto_scaling_groups().iter().cloned());
        }
    }
    Ok(found)
}

pub async fn create(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    match address.kind {
        ResourceKind::KeyPair => ensure_key_pair(context, address, attrs).await,
        ResourceKind::LaunchTemplate => ensure_launch_template(context, address, attrs).await,
        ResourceKind::AutoscalingGroup => ensure_group(context, attrs).await,
        other => Err(super::not_handled(other, "compute")),
    }
}

pub async fn update(
    context: &Context,
    recorded: &RecordedResource,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    match recorded.address.kind {
        ResourceKind::LaunchTemplate => new_template_version(context, recorded, attrs).await,
        // Key pairs change only by replacement; groups converge on create.
        _ => create(context, &recorded.address, attrs).await,
    }
}

pub async fn delete(context: &Context, recorded: &RecordedResource) -> Result<(), ProvisionError> {
    let id = recorded
        .outputs
        .get("id")
        .map(String::as_str)
        .unwrap_or_default();
    let result = match recorded.address.kind {
        ResourceKind::KeyPair => {
            // By name: every EC2 implementation supports that one.
            let name = recorded
                .outputs
                .get("key_name")
                .map(String::as_str)
                .unwrap_or(id);
            context.calls.write(EC2);
            context
                .ec2
                .delete_key_pair()
                .key_name(name)
                .send()
                .await
                .aws()
                .map(drop)
        }
        ResourceKind::LaunchTemplate => {
            context.calls.write(EC2);
            context
                .ec2
                .delete_launch_template()
                .launch_template_id(id)
                .send()
                .await
                .aws()
                .map(drop)
        }
        ResourceKind::AutoscalingGroup => delete_group(context, id).await,
        other => Err(super::not_handled(other, "compute")),
    };
    result.or_else(gone_is_fine)
}

/// The newest image matching the owners and filters (`most_recent = true`).
pub async fn find_image(context: &Context, attrs: Attrs<'_>) -> Result<Outputs, ProvisionError> {
    let filters = attrs
        .blocks("filter")?
        .into_iter()
        .map(|block| {
            Ok(Filter::builder()
                .name(block.str("name")?)
                .set_values(Some(block.strings("values")?))
                .build())
        })
        .collect::<Result<Vec<_>, ProvisionError>>()?;
    context.calls.read(EC2);
    let found = context
        .ec2
        .describe_images()
        .set_owners(Some(attrs.strings("owners")?))
        .set_filters(Some(filters))
        .send()
        .await
        .aws()?;
    let newest = found
        .images()
        .iter()
        .filter(|image| image.image_id().is_some())
        .max_by(|left, right| left.creation_date().cmp(&right.creation_date()))
        .ok_or_else(|| {
            ProvisionError::permanent(
                "ImageNotFound",
                "no AMI matches the owners and filters of the image family",
            )
        })?;
    let id = newest.image_id().unwrap_or_default().to_string();
    Ok(outputs([
        ("id", id),
        ("name", newest.name().unwrap_or_default().to_string()),
    ]))
}

async fn ensure_key_pair(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let name = attrs.str("key_name")?;
    if !may_exist(context, address).await? {
        match import_key_pair(context, address, attrs, name).await {
            Err(error) if error.code == "InvalidKeyPair.Duplicate" => {} // whose? see below
            done => return done,
        }
    }
    context.calls.read(EC2);
    let found = context
        .ec2
        .describe_key_pairs()
        .filters(filter("key-name", name))
        .send()
        .await
        .aws()?;
    if let Some(existing) = found.key_pairs().first() {
        if !owned_by_cluster(existing.tags(), &context.cluster) {
            return Err(not_owned("key pair", name, &context.cluster));
        }
        let id = existing
            .key_pair_id()
            .ok_or_else(|| missing("DescribeKeyPairs"))?;
        return Ok(outputs([
            ("id", id.to_string()),
            ("key_name", name.to_string()),
        ]));
    }
    import_key_pair(context, address, attrs, name).await
}

async fn import_key_pair(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
    name: &str,
) -> Result<Outputs, ProvisionError> {
    context.calls.write(EC2);
    let imported = context
        .ec2
        .import_key_pair()
        .key_name(name)
        .public_key_material(Blob::new(attrs.str("public_key")?.as_bytes()))
        .tag_specifications(tag_spec(ResourceType::KeyPair, attrs, address))
        .send()
        .await
        .aws()?;
    let id = imported
        .key_pair_id()
        .ok_or_else(|| missing("ImportKeyPair"))?;
    Ok(outputs([
        ("id", id.to_string()),
        ("key_name", name.to_string()),
    ]))
}

fn template_data(attrs: Attrs<'_>) -> Result<RequestLaunchTemplateData, ProvisionError> {
    let network = attrs.block("network_interfaces")?;
    let interface = LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
        .device_index(0)
        .associate_public_ip_address(network.bool("associate_public_ip_address")?)
        .delete_on_termination(network.bool("delete_on_termination")?)
        .set_groups(Some(network.strings("security_groups")?))
        .build();
    let device = attrs.block("block_device_mappings")?;
    let ebs = device.block("ebs")?;
    let volume = LaunchTemplateEbsBlockDeviceRequest::builder()
        .volume_size(ebs.int32("volume_size")?)
        .volume_type(VolumeType::from(ebs.str("volume_type")?))
        .encrypted(ebs.bool("encrypted")?)
        .delete_on_termination(ebs.bool("delete_on_termination")?)
        .build();
    let metadata = attrs.block("metadata_options")?;
    let metadata = LaunchTemplateInstanceMetadataOptionsRequest::builder()
        .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::from(
            metadata.str("http_endpoint")?,
        ))
        .http_tokens(LaunchTemplateHttpTokensState::from(
            metadata.str("http_tokens")?,
        ))
        .http_put_response_hop_limit(metadata.int32("http_put_response_hop_limit")?)
        .build();
    let tag_specifications = attrs
        .blocks("tag_specifications")?
        .into_iter()
        .map(|block| {
            let tags = block.tags().into_iter().map(|(key, value)| {
                aws_sdk_ec2::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
            });
            Ok(LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ResourceType::from(block.str("resource_type")?))
                .set_tags(Some(tags.collect()))
                .build())
        })
        .collect::<Result<Vec<_>, ProvisionError>>()?;
    let profile = attrs
        .opt_block("iam_instance_profile")
        .map(|profile| {
            profile.str("arn").map(|arn| {
                LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .arn(arn)
                    .build()
            })
        })
        .transpose()?;
    Ok(RequestLaunchTemplateData::builder()
        .image_id(attrs.str("image_id")?)
        .instance_type(attrs.str("instance_type")?.into())
        .set_key_name(attrs.opt_str("key_name").map(String::from))
        .user_data(aws_smithy_types::base64::encode(attrs.file("user_data")?))
        .set_iam_instance_profile(profile)
        .network_interfaces(interface)
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(device.str("device_name")?)
                .ebs(volume)
                .build(),
        )
        .metadata_options(metadata)
        .set_tag_specifications(Some(tag_specifications))
        .build())
}

fn template_outputs(id: &str, latest_version: i64) -> Outputs {
    outputs([
        ("id", id.to_string()),
        ("latest_version", latest_version.to_string()),
    ])
}

async fn ensure_launch_template(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let name = attrs.str("name")?;
    if !may_exist(context, address).await? {
        match create_launch_template(context, address, attrs, name).await {
            Err(error) if error.code == "InvalidLaunchTemplateName.AlreadyExistsException" => {}
            done => return done,
        }
    }
    context.calls.read(EC2);
    let found = context
        .ec2
        .describe_launch_templates()
        .filters(filter("launch-template-name", name))
        .send()
        .await
        .aws()?;
    if let Some(existing) = found.launch_templates().first() {
        if !owned_by_cluster(existing.tags(), &context.cluster) {
            return Err(not_owned("launch template", name, &context.cluster));
        }
        let id = existing
            .launch_template_id()
            .ok_or_else(|| missing("DescribeLaunchTemplates"))?;
        let latest = existing.latest_version_number().unwrap_or(1);
        // Adopted (an earlier run made it, or the record was lost): what it launches is what
        // its newest version says, which may be an older spec's; bring it to this one.
        let live = latest_template_data(context, id).await?;
        let wanted = template_data(attrs)?;
        if live.is_some_and(|live| template_differences(&live, &wanted).is_empty()) {
            return Ok(template_outputs(id, latest));
        }
        return add_template_version(context, address, id, latest, attrs).await;
    }
    create_launch_template(context, address, attrs, name).await
}

/// The data of a launch template's newest version (`None` if it has none to read).
async fn latest_template_data(
    context: &Context,
    id: &str,
) -> Result<Option<ResponseLaunchTemplateData>, ProvisionError> {
    context.calls.read(EC2);
    let versions = context
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(id)
        .versions("$Latest")
        .send()
        .await
        .aws()?;
    Ok(versions
        .launch_template_versions()
        .first()
        .and_then(|version| version.launch_template_data())
        .cloned())
}

/// What a refresh shows for a setting changed outside rafter whose live value is not a
/// plain string (a nested block, the user data).
const CHANGED_OUTSIDE: &str = "(changed outside rafter)";

/// The attributes of template `id` whose newest version differs from `attrs` (what rafter
/// recorded, references resolved), each with its live value where it is a plain string.
pub(super) async fn changed_template_settings(
    context: &Context,
    id: &str,
    attrs: Attrs<'_>,
) -> Result<Vec<(&'static str, Value)>, ProvisionError> {
    let Some(live) = latest_template_data(context, id).await? else {
        return Ok(Vec::new());
    };
    let wanted = template_data(attrs)?;
    let mut changed: Vec<(&'static str, Value)> = Vec::new();
    for setting in template_differences(&live, &wanted) {
        let (attribute, value) = match setting {
            "image_id" => ("image_id", live.image_id()),
            "instance_type" => (
                "instance_type",
                live.instance_type().map(|kind| kind.as_str()),
            ),
            "key_name" => ("key_name", live.key_name()),
            "user_data" => ("user_data", None),
            "iam_instance_profile" => ("iam_instance_profile", None),
            "security_groups" | "associate_public_ip_address" => ("network_interfaces", None),
            "volume_size" | "volume_type" | "encrypted" => ("block_device_mappings", None),
            _ => ("metadata_options", None),
        };
        if !changed.iter().any(|(known, _)| *known == attribute) {
            changed.push((attribute, Value::str(value.unwrap_or(CHANGED_OUTSIDE))));
        }
    }
    Ok(changed)
}

/// The settings rafter makes on which a template's `live` data differs from `wanted`, by
/// name (empty: the template launches what rafter would).
fn template_differences(
    live: &ResponseLaunchTemplateData,
    wanted: &RequestLaunchTemplateData,
) -> Vec<&'static str> {
    let sorted = |groups: &[String]| {
        let mut groups = groups.to_vec();
        groups.sort();
        groups
    };
    let live_interface = live.network_interfaces().first();
    let wanted_interface = wanted.network_interfaces().first();
    let live_volume = live
        .block_device_mappings()
        .first()
        .and_then(|device| device.ebs());
    let wanted_volume = wanted
        .block_device_mappings()
        .first()
        .and_then(|device| device.ebs());
    let live_metadata = live.metadata_options();
    let wanted_metadata = wanted.metadata_options();
    let checks = [
        ("image_id", live.image_id() == wanted.image_id()),
        (
            "instance_type",
            live.instance_type() == wanted.instance_type(),
        ),
        ("key_name", live.key_name() == wanted.key_name()),
        ("user_data", live.user_data() == wanted.user_data()),
        (
            "iam_instance_profile",
            live.iam_instance_profile()
                .and_then(|profile| profile.arn())
                == wanted
                    .iam_instance_profile()
                    .and_then(|profile| profile.arn()),
        ),
        (
            "security_groups",
            live_interface.map(|interface| sorted(interface.groups()))
                == wanted_interface.map(|interface| sorted(interface.groups())),
        ),
        (
            "associate_public_ip_address",
            live_interface.and_then(|interface| interface.associate_public_ip_address())
                == wanted_interface.and_then(|interface| interface.associate_public_ip_address()),
        ),
        (
            "volume_size",
            live_volume.and_then(|volume| volume.volume_size())
                == wanted_volume.and_then(|volume| volume.volume_size()),
        ),
        (
            "volume_type",
            live_volume.and_then(|volume| volume.volume_type())
                == wanted_volume.and_then(|volume| volume.volume_type()),
        ),
        (
            "encrypted",
            live_volume.and_then(|volume| volume.encrypted())
                == wanted_volume.and_then(|volume| volume.encrypted()),
        ),
        (
            "http_tokens",
            live_metadata
                .and_then(|metadata| metadata.http_tokens())
                .map(|tokens| tokens.as_str())
                == wanted_metadata
                    .and_then(|metadata| metadata.http_tokens())
                    .map(|tokens| tokens.as_str()),
        ),
        (
            "http_put_response_hop_limit",
            live_metadata.and_then(|metadata| metadata.http_put_response_hop_limit())
                == wanted_metadata.and_then(|metadata| metadata.http_put_response_hop_limit()),
        ),
    ];
    checks
        .into_iter()
        .filter(|(_, same)| !same)
        .map(|(name, _)| name)
        .collect()
}

async fn create_launch_template(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
    name: &str,
) -> Result<Outputs, ProvisionError> {
    let request = format!("{:?}", attrs.0);
    context.calls.write(EC2);
    let created = context
        .ec2
        .create_launch_template()
        .launch_template_name(name)
        .set_client_token(context.client_token(address, &[&request]))
        .launch_template_data(template_data(attrs)?)
        .tag_specifications(tag_spec(ResourceType::LaunchTemplate, attrs, address))
        .send()
        .await
        .aws()?;
    let template = created
        .launch_template()
        .ok_or_else(|| missing("CreateLaunchTemplate"))?;
    let id = template
        .launch_template_id()
        .ok_or_else(|| missing("CreateLaunchTemplate"))?;
    Ok(template_outputs(
        id,
        template.latest_version_number().unwrap_or(1),
    ))
}

async fn new_template_version(
    context: &Context,
    recorded: &RecordedResource,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let id = recorded
        .outputs
        .get("id")
        .ok_or_else(|| missing("the launch template's state"))?;
    let replaced = recorded
        .outputs
        .get("latest_version")
        .and_then(|version| version.parse().ok())
        .unwrap_or(0);
    add_template_version(context, &recorded.address, id, replaced, attrs).await
}

/// A new version of template `id` with `attrs`' data, made the default (groups launch
/// `$Latest` anyway), the template's tags brought to `attrs`' too.
async fn add_template_version(
    context: &Context,
    address: &Address,
    id: &str,
    replaced: i64,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    // The version it replaces is part of the request: going back to an earlier template's
    // settings is a new version, not the earlier one.
    let replaced = replaced.to_string();
    let request = format!("{:?}", attrs.0);
    context.calls.write(EC2);
    let created = context
        .ec2
        .create_launch_template_version()
        .launch_template_id(id)
        .set_client_token(context.client_token(address, &[id, &replaced, &request]))
        .launch_template_data(template_data(attrs)?)
        .send()
        .await
        .aws()?;
    let version = created
        .launch_template_version()
        .and_then(|version| version.version_number())
        .ok_or_else(|| missing("CreateLaunchTemplateVersion"))?;
    context.calls.write(EC2);
    context
        .ec2
        .modify_launch_template()
        .launch_template_id(id)
        .default_version(version.to_string())
        .send()
        .await
        .aws()?;
    retag(context, id, attrs, address).await?;
    Ok(template_outputs(id, version))
}

fn group_tags(name: &str, attrs: Attrs<'_>) -> Result<Vec<GroupTag>, ProvisionError> {
    attrs
        .blocks("tag")?
        .into_iter()
        .map(|block| {
            Ok(GroupTag::builder()
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .key(block.str("key")?)
                .value(block.str("value")?)
                .propagate_at_launch(block.bool("propagate_at_launch")?)
                .build())
        })
        .collect()
}

/// Creates the group, or brings an existing one (made by an earlier run) to the spec: sizes,
/// subnets, template, target groups and tags are all mutable in place.
async fn ensure_group(context: &Context, attrs: Attrs<'_>) -> Result<Outputs, ProvisionError> {
    let name = attrs.str("name")?;
    let subnets = attrs.strings("vpc_zone_identifier")?.join(",");
    let template = LaunchTemplateSpecification::builder()
        .launch_template_id(attrs.block("launch_template")?.str("id")?)
        .version("$Latest")
        .build();
    let target_groups = if attrs.has("target_group_arns") {
        attrs.strings("target_group_arns")?
    } else {
        Vec::new()
    };
    let (min, max) = (attrs.int32("min_size")?, attrs.int32("max_size")?);
    let tags = group_tags(name, attrs)?;
    context.calls.read(AUTOSCALING);
    let found = context
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .aws()?;
    match found.auto_scaling_groups().first() {
        None => {
            context.calls.write(AUTOSCALING);
            context
                .autoscaling
                .create_auto_scaling_group()
                .auto_scaling_group_name(name)
                .min_size(min)
                .max_size(max)
                .vpc_zone_identifier(&subnets)
                .launch_template(template)
                .set_target_group_arns(Some(target_groups))
                .set_tags(Some(tags))
                .send()
                .await
                .aws()?;
        }
        Some(group) => {
            let owned = group
                .tags()
                .iter()
                .any(|tag| tag.key() == Some(CLUSTER_TAG) && tag.value() == Some(&context.cluster));
            if !owned {
                return Err(not_owned("auto-scaling group", name, &context.cluster));
            }
            // The template by id too: one deleted and made again has a new id.
            let current_template = group.launch_template();
            let converged = group.min_size() == Some(min)
                && group.max_size() == Some(max)
                && group.vpc_zone_identifier() == Some(subnets.as_str())
                && current_template.and_then(|current| current.launch_template_id())
                    == template.launch_template_id()
                && current_template.and_then(|current| current.version()) == Some("$Latest");
            if !converged {
                context.calls.write(AUTOSCALING);
                context
                    .autoscaling
                    .update_auto_scaling_group()
                    .auto_scaling_group_name(name)
                    .min_size(min)
                    .max_size(max)
                    .vpc_zone_identifier(&subnets)
                    .launch_template(template)
                    .send()
                    .await
                    .aws()?;
            }
            let attached = group.target_group_arns();
            let missing_groups: Vec<String> = target_groups
                .iter()
                .filter(|arn| !attached.contains(arn))
                .cloned()
                .collect();
            if !missing_groups.is_empty() {
                context.calls.write(AUTOSCALING);
                context
                    .autoscaling
                    .attach_load_balancer_target_groups()
                    .auto_scaling_group_name(name)
                    .set_target_group_arns(Some(missing_groups))
                    .send()
                    .await
                    .aws()?;
            }
            let stale_tags = tags.iter().any(|wanted| {
                !group.tags().iter().any(|current| {
                    current.key() == wanted.key() && current.value() == wanted.value()
                })
            });
            if stale_tags {
                context.calls.write(AUTOSCALING);
                context
                    .autoscaling
                    .create_or_update_tags()
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .aws()?;
            }
        }
    }
    Ok(outputs([
        ("id", name.to_string()),
        ("name", name.to_string()),
    ]))
}

/// Deleting a group terminates its instances; the group lingers until they are gone, and
/// subnets and security groups cannot go before (their deletes retry `DependencyViolation`).
async fn delete_group(context: &Context, name: &str) -> Result<(), ProvisionError> {
    context.calls.write(AUTOSCALING);
    let result = context
        .autoscaling
        .delete_auto_scaling_group()
        .auto_scaling_group_name(name)
        .force_delete(true)
        .send()
        .await
        .aws();
    match result {
        Ok(_) => Ok(()),
        // Auto Scaling reports a missing group as a validation error.
        Err(error) if error.code == "ValidationError" && error.message.contains("not found") => {
            Ok(())
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{InstanceType, LaunchTemplateInstanceNetworkInterfaceSpecification};

    #[test]
    fn a_template_differs_only_where_what_it_launches_differs() {
        let wanted = RequestLaunchTemplateData::builder()
            .image_id("ami-1")
            .instance_type(InstanceType::T3Medium)
            .user_data("Ym9vdA==")
            .network_interfaces(
                LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                    .groups("sg-b")
                    .groups("sg-a")
                    .build(),
            )
            .build();
        let live = |instance_type: InstanceType, groups: [&str; 2]| {
            ResponseLaunchTemplateData::builder()
                .image_id("ami-1")
                .instance_type(instance_type)
                .user_data("Ym9vdA==")
                .network_interfaces(
                    LaunchTemplateInstanceNetworkInterfaceSpecification::builder()
                        .groups(groups[0])
                        .groups(groups[1])
                        .build(),
                )
                .build()
        };
        // The groups' order is AWS's business.
        assert_eq!(
            template_differences(&live(InstanceType::T3Medium, ["sg-a", "sg-b"]), &wanted),
            Vec::<&str>::new()
        );
        assert_eq!(
            template_differences(&live(InstanceType::T3Large, ["sg-a", "sg-c"]), &wanted),
            vec!["instance_type", "security_groups"]
        );
    }
}
