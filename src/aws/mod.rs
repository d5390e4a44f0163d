//! The AWS target: a [`Provisioner`] over the AWS SDK, how its errors map onto the apply
//! engine's classes, and a count of API calls per service.
//!
//! One module per service family. Every create first looks for what an interrupted run may
//! have made, and adopts it only if it carries this cluster's `rafter.dev/cluster` tag, so a
//! rerun converges without duplicates and never takes over someone else's resource.

pub mod attrs;
pub mod calls;
pub mod capacity;
pub mod compute;
pub mod dns;
pub mod ec2;
pub mod errors;
pub mod events;
pub mod health;
pub mod iam;
pub mod loadbalancer;
pub mod refresh;
pub mod sweep;
pub mod tokens;
pub mod volumes;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

pub use calls::{CallCount, CallCounter};
pub use errors::{AwsResultExt, classify, provision_error};

use crate::apply::{Outputs, ProvisionError, Provisioner};
use crate::graph::{Address, Concern, Field, ResourceKind};
use crate::model::naming::CLUSTER_TAG;
use crate::plan::RecordedResource;
use attrs::Attrs;

pub use crate::model::naming::ADDRESS_TAG;

/// What every AWS operation needs: one client per service, the cluster's name (the value of
/// its ownership tag) and the call counter.
pub struct Context {
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// Classic load balancers: rafter makes none, but the cloud controller add-on does (a
    /// `Service` of type `LoadBalancer`), and deleting a cluster deletes them.
    pub classic_elb: aws_sdk_elasticloadbalancing::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub route53: aws_sdk_route53::Client,
    /// The node termination handler's queue, and the EventBridge rules that feed it.
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub cluster: String,
    pub calls: CallCounter,
    /// Addresses of the EC2 resources this cluster's tags already mark, listed once per
    /// run on first use (see [`ec2::may_exist`]).
    pub(crate) tagged: tokio::sync::OnceCell<HashSet<String>>,
    /// Addresses a create was already attempted for in this run: a retry looks first, since
    /// an attempt whose answer was lost may have created the resource.
    pub(crate) attempted: Mutex<HashSet<String>>,
    /// What this run created, by address: a retry of a create's follow-up calls (which AWS
    /// refuses with `Invalid…NotFound` while a new id propagates) continues with that id,
    /// never trusting an eventually consistent describe to find it, nor creating a second.
    pub(crate) created: Mutex<HashMap<String, Outputs>>,
    /// Where idempotency tokens come from; `None` leaves the SDK's random ones.
    pub(crate) tokens: Option<tokens::ClientTokens>,
}

impl Context {
    /// The idempotency token for creating `address` with these parameters (see
    /// [`tokens`]), if this provisioner derives them.
    pub(crate) fn client_token(&self, address: &Address, parameters: &[&str]) -> Option<String> {
        self.tokens
            .as_ref()
            .map(|tokens| tokens.token(address, parameters))
    }
}

pub(crate) fn outputs<const N: usize>(pairs: [(&str, String); N]) -> Outputs {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect::<BTreeMap<_, _>>()
}

/// A resource with rafter's name exists but is not tagged as this cluster's.
pub(crate) fn not_owned(what: &str, name: &str, cluster: &str) -> ProvisionError {
    ProvisionError::permanent(
        "NotOwned",
        format!(
            "a {what} named {name} exists but is not tagged {CLUSTER_TAG}={cluster}; rafter never \
             adopts what it did not create: delete or rename it, or pick another cluster name"
        ),
    )
}

pub(crate) fn not_handled(kind: ResourceKind, service: &str) -> ProvisionError {
    ProvisionError::permanent(
        "NotImplemented",
        format!("{} is not handled by {service}", kind.type_name()),
    )
}

/// Provisions a cluster's resources through the AWS APIs.
pub struct AwsProvisioner {
    pub context: Context,
}

impl AwsProvisioner {
    /// Clients over `config`, with the SDK's own retries off: a create whose answer was lost
    /// must not be resent blindly (EC2 would make a second VPC); the apply engine retries
    /// instead, and looks for what the lost attempt made before it creates again.
    pub fn new(config: &aws_config::SdkConfig, cluster: &str) -> Self {
        let config = config
            .to_builder()
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        let config = &config;
        Self {
            context: Context {
                ec2: aws_sdk_ec2::Client::new(config),
                iam: aws_sdk_iam::Client::new(config),
                elb: aws_sdk_elasticloadbalancingv2::Client::new(config),
                classic_elb: aws_sdk_elasticloadbalancing::Client::new(config),
                autoscaling: aws_sdk_autoscaling::Client::new(config),
                route53: aws_sdk_route53::Client::new(config),
                sqs: aws_sdk_sqs::Client::new(config),
                events: aws_sdk_eventbridge::Client::new(config),
                cluster: cluster.to_string(),
                calls: CallCounter::default(),
                tagged: tokio::sync::OnceCell::new(),
                attempted: Mutex::new(HashSet::new()),
                created: Mutex::new(HashMap::new()),
                tokens: None,
            },
        }
    }

    /// Derives idempotency tokens from the record's lineage (see [`tokens`]): every apply
    /// that creates should.
    pub fn with_lineage(mut self, lineage: crate::state::Lineage) -> Self {
        self.context.tokens = Some(tokens::ClientTokens::new(&self.context.cluster, lineage));
        self
    }

    pub fn calls(&self) -> &CallCounter {
        &self.context.calls
    }
}

/// Which module provisions a kind.
#[derive(Clone, Copy)]
enum Family {
    Ec2Network,
    Iam,
    Compute,
    Volume,
    LoadBalancer,
    Dns,
    Events,
    NotAws,
}

fn family(kind: ResourceKind) -> Family {
    if kind == ResourceKind::EbsVolume {
        return Family::Volume;
    }
    match kind.concern() {
        Concern::Network | Concern::Security => Family::Ec2Network,
        Concern::Iam => Family::Iam,
        Concern::Compute => Family::Compute,
        Concern::LoadBalancer => Family::LoadBalancer,
        Concern::Dns => Family::Dns,
        Concern::Events => Family::Events,
        Concern::Hosts => Family::NotAws,
    }
}

fn not_aws(address: &Address) -> ProvisionError {
    ProvisionError::permanent(
        "NotAws",
        format!("{address} is not an AWS resource (bare hosts are bootstrapped over SSH)"),
    )
}

impl Provisioner for AwsProvisioner {
    async fn read(
        &self,
        address: &Address,
        attributes: &[Field],
    ) -> Result<Outputs, ProvisionError> {
        let attrs = Attrs(attributes);
        match address.kind {
            ResourceKind::Image => compute::find_image(&self.context, attrs).await,
            ResourceKind::HostedZone => dns::find_zone(&self.context, attrs).await,
            other => Err(not_handled(other, "lookups")),
        }
    }

    async fn create(
        &self,
        address: &Address,
        attributes: &[Field],
    ) -> Result<Outputs, ProvisionError> {
        let (context, attrs) = (&self.context, Attrs(attributes));
        match family(address.kind) {
            Family::Ec2Network => ec2::create(context, address, attrs).await,
            Family::Iam => iam::create(context, address.kind, attrs).await,
            Family::Compute => compute::create(context, address, attrs).await,
            Family::Volume => volumes::create(context, address, attrs).await,
            Family::LoadBalancer => loadbalancer::create(context, address.kind, attrs).await,
            Family::Dns => dns::upsert_record(context, attrs).await,
            Family::Events => events::create(context, address.kind, attrs).await,
            Family::NotAws => Err(not_aws(address)),
        }
    }

    async fn update(
        &self,
        recorded: &RecordedResource,
        attributes: &[Field],
    ) -> Result<Outputs, ProvisionError> {
        let (context, attrs) = (&self.context, Attrs(attributes));
        match family(recorded.address.kind) {
            Family::Ec2Network => ec2::update(context, recorded, attrs).await,
            Family::Iam => iam::update(context, recorded, attrs).await,
            Family::Compute => compute::update(context, recorded, attrs).await,
            Family::Volume => volumes::update(context, recorded, attrs).await,
            Family::LoadBalancer => loadbalancer::update(context, recorded, attrs).await,
            Family::Dns => dns::upsert_record(context, attrs).await,
            Family::Events => events::update(context, recorded, attrs).await,
            Family::NotAws => Err(not_aws(&recorded.address)),
        }
    }

    async fn delete(&self, recorded: &RecordedResource) -> Result<(), ProvisionError> {
        let context = &self.context;
        match family(recorded.address.kind) {
            Family::Ec2Network => ec2::delete(context, recorded).await,
            Family::Iam => iam::delete(context, recorded).await,
            Family::Compute => compute::delete(context, recorded).await,
            Family::Volume => volumes::delete(context, recorded).await,
            Family::LoadBalancer => loadbalancer::delete(context, recorded).await,
            Family::Dns => dns::delete_record(context, recorded).await,
            Family::Events => events::delete(context, recorded).await,
            Family::NotAws => Err(not_aws(&recorded.address)),
        }
    }
}
