//! EBS volumes: each control-plane member's etcd data volume (`aws_ebs_volume`).
//!
//! A volume holds a member's data across instances, so rafter never replaces one on its own:
//! size, type, IOPS and throughput change in place with `ModifyVolume` (EBS grows a volume
//! and the member's instance grows its file system), and only a member that leaves the
//! spec loses its volume. Deleting one that an instance still holds waits
//! (`VolumeInUse` is transient): a terminating instance lets go of its volumes.

use aws_sdk_ec2::types::{ResourceType, Volume, VolumeType};

use super::attrs::Attrs;
use super::ec2::{find_owned_volume, may_exist, remember_created, retag, tag_spec};
use super::errors::gone_is_fine;
use super::{AwsResultExt, Context, outputs};
use crate::apply::{Outputs, ProvisionError};
use crate::graph::Address;
use crate::plan::RecordedResource;

const EC2: &str = "ec2";

fn no_id(operation: &str) -> ProvisionError {
    ProvisionError::permanent("MissingId", format!("{operation} returned no volume id"))
}

fn optional_int(attrs: Attrs<'_>, name: &str) -> Result<Option<i32>, ProvisionError> {
    if attrs.has(name) {
        attrs.int32(name).map(Some)
    } else {
        Ok(None)
    }
}

/// Finds the volume an interrupted run made for `address`, or creates it.
pub async fn create(
    context: &Context,
    address: &Address,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    if may_exist(context, address).await?
        && let Some(volume) = find_owned_volume(context, address).await?
    {
        let id = volume.volume_id().ok_or_else(|| no_id("DescribeVolumes"))?;
        // Adopted: what it is now may differ from what the spec asks.
        modify_if_different(context, &volume, attrs).await?;
        return Ok(outputs([("id", id.to_string())]));
    }
    context.calls.write(EC2);
    let created = context
        .ec2
        .create_volume()
        .availability_zone(attrs.str("availability_zone")?)
        .encrypted(attrs.bool("encrypted")?)
        .size(attrs.int32("size")?)
        .volume_type(VolumeType::from(attrs.str("type")?))
        .set_iops(optional_int(attrs, "iops")?)
        .set_throughput(optional_int(attrs, "throughput")?)
        .tag_specifications(tag_spec(ResourceType::Volume, attrs, address))
        .set_client_token(context.client_token(address, &[attrs.str("availability_zone")?]))
        .send()
        .await
        .aws()?;
    let id = created.volume_id().ok_or_else(|| no_id("CreateVolume"))?;
    let made = outputs([("id", id.to_string())]);
    remember_created(context, address, &made);
    Ok(made)
}

/// Brings size, type, IOPS and throughput to what the spec says (one `ModifyVolume` when
/// any differs), and the tags.
pub async fn update(
    context: &Context,
    recorded: &RecordedResource,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let id = recorded
        .outputs
        .get("id")
        .ok_or_else(|| no_id("the state of this resource"))?;
    context.calls.read(EC2);
    let found = context
        .ec2
        .describe_volumes()
        .volume_ids(id)
        .send()
        .await
        .aws()?;
    let volume = found.volumes().first().ok_or_else(|| {
        ProvisionError::permanent(
            "InvalidVolume.NotFound",
            format!("the volume '{id}' does not exist"),
        )
    })?;
    modify_if_different(context, volume, attrs).await?;
    retag(context, id, attrs, &recorded.address).await?;
    Ok(recorded.outputs.clone())
}

/// The one `ModifyVolume` that makes `volume` what `attrs` say, if anything differs. A
/// smaller size is refused here, in words that say what to do: EBS volumes never shrink.
async fn modify_if_different(
    context: &Context,
    volume: &Volume,
    attrs: Attrs<'_>,
) -> Result<(), ProvisionError> {
    let size = attrs.int32("size")?;
    let id = volume.volume_id().unwrap_or_default();
    if let Some(current) = volume.size().filter(|current| *current > size) {
        return Err(ProvisionError::permanent(
            "VolumeCannotShrink",
            format!(
                "the etcd volume {id} holds {current} GiB and EBS volumes cannot shrink: set \
                 spec.etcd.volume.sizeGiB to {current} or more"
            ),
        ));
    }
    let volume_type = VolumeType::from(attrs.str("type")?);
    let iops = optional_int(attrs, "iops")?;
    let throughput = optional_int(attrs, "throughput")?;
    let differs = volume.size() != Some(size)
        || volume.volume_type() != Some(&volume_type)
        || iops.is_some_and(|iops| volume.iops() != Some(iops))
        || throughput.is_some_and(|throughput| volume.throughput() != Some(throughput));
    if !differs {
        return Ok(());
    }
    context.calls.write(EC2);
    context
        .ec2
        .modify_volume()
        .volume_id(id)
        .size(size)
        .volume_type(volume_type)
        .set_iops(iops)
        .set_throughput(throughput)
        .send()
        .await
        .aws()
        .map(drop)
}

pub async fn delete(context: &Context, recorded: &RecordedResource) -> Result<(), ProvisionError> {
    let id = recorded
        .outputs
        .get("id")
        .ok_or_else(|| no_id("the state of this resource"))?;
    context.calls.write(EC2);
    context
        .ec2
        .delete_volume()
        .volume_id(id)
        .send()
        .await
        .aws()
        .map(drop)
        .or_else(gone_is_fine)
}
