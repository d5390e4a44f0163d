//! The AWS target: a [`Provisioner`] over the AWS SDK, how its errors map onto the apply
//! engine's classes, and a count of API calls per service.
//!
//! Implemented so far: the EC2 network and security resources. Other kinds answer
//! `NotImplemented` (a permanent error), so their dependents are skipped, never half-made.

pub mod attrs;
pub mod calls;
pub mod ec2;
pub mod errors;

use std::collections::BTreeMap;

pub use calls::{CallCount, CallCounter};
pub use errors::{AwsResultExt, classify, provision_error};

use crate::apply::{Outputs, ProvisionError, Provisioner};
use crate::graph::{Address, Concern, Field};
use crate::plan::RecordedResource;
use attrs::Attrs;

/// Tag that names a resource's graph address, so a rerun finds exactly what it made.
pub const ADDRESS_TAG: &str = "rafter.dev/address";

/// What every AWS operation needs.
pub struct Context {
    pub ec2: aws_sdk_ec2::Client,
    pub cluster: String,
    pub calls: CallCounter,
}

pub(crate) fn outputs<const N: usize>(pairs: [(&str, String); N]) -> Outputs {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect::<BTreeMap<_, _>>()
}

/// Provisions a cluster's resources through the AWS APIs.
pub struct AwsProvisioner {
    pub context: Context,
}

impl AwsProvisioner {
    pub fn new(config: &aws_config::SdkConfig, cluster: &str) -> Self {
        Self {
            context: Context {
                ec2: aws_sdk_ec2::Client::new(config),
                cluster: cluster.to_string(),
                calls: CallCounter::default(),
            },
        }
    }

    pub fn calls(&self) -> &CallCounter {
        &self.context.calls
    }
}

fn not_implemented(address: &Address) -> ProvisionError {
    ProvisionError::permanent(
        "NotImplemented",
        format!(
            "rafter cannot provision {} on AWS yet",
            address.kind.type_name()
        ),
    )
}

fn handled_by_ec2(address: &Address) -> bool {
    matches!(address.kind.concern(), Concern::Network | Concern::Security)
}

impl Provisioner for AwsProvisioner {
    async fn read(
        &self,
        address: &Address,
        _attributes: &[Field],
    ) -> Result<Outputs, ProvisionError> {
        Err(not_implemented(address))
    }

    async fn create(
        &self,
        address: &Address,
        attributes: &[Field],
    ) -> Result<Outputs, ProvisionError> {
        if handled_by_ec2(address) {
            ec2::create(&self.context, address, Attrs(attributes)).await
        } else {
            Err(not_implemented(address))
        }
    }

    async fn update(
        &self,
        recorded: &RecordedResource,
        attributes: &[Field],
    ) -> Result<Outputs, ProvisionError> {
        if handled_by_ec2(&recorded.address) {
            ec2::update(&self.context, recorded, Attrs(attributes)).await
        } else {
            Err(not_implemented(&recorded.address))
        }
    }

    async fn delete(&self, recorded: &RecordedResource) -> Result<(), ProvisionError> {
        if handled_by_ec2(&recorded.address) {
            ec2::delete(&self.context, recorded).await
        } else {
            Err(not_implemented(&recorded.address))
        }
    }
}
