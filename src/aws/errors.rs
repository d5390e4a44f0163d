//! Which AWS errors are worth retrying.
//!
//! AWS is eventually consistent and throttles: an id just created may not be visible to the
//! next call yet, an instance profile may not have reached EC2, a VPC may still hold an
//! interface being deleted. Those are retried with backoff; everything else stops the
//! resource (and its dependents) with the AWS error code in the report.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::apply::{ErrorClass, ProvisionError};

/// Throttling and server-side trouble, under the names the various services use.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "EC2ThrottledException",
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "Unavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Still in use, or not yet in the right state: succeeds once what the resource depends on
/// has settled or gone (transient, so the delete sweep waits these out too).
const STILL_IN_USE_CODES: &[&str] = &[
    "DependencyViolation",
    "IncorrectState",
    "IncorrectInstanceState",
    "ResourceInUse",
    "ScalingActivityInProgress",
    "ConcurrentModification",
    "OperationAborted",
    // A volume an instance still holds (a terminating one lets go of it).
    "VolumeInUse",
    // SQS CreateQueue within 60 seconds of deleting a queue of the same name (the SQS API
    // reference, DeleteQueue), under its JSON and query protocol names.
    "QueueDeletedRecently",
    "AWS.SimpleQueueService.QueueDeletedRecently",
];

/// An answer AWS gives while something just made propagates, or while the other side
/// settles: transient although its code alone would say otherwise. Matched on the code and
/// (case-insensitively) on a part of the message, as AWS documents them and as kops and the
/// Terraform AWS provider retry them.
/// Each row's comment says where the rule comes from.
struct SettlingError {
    code: &'static str,
    /// A part of the message that must be there (`None`: any message).
    message: Option<&'static str>,
}

const SETTLING: &[SettlingError] = &[
    // EC2 (RunInstances, launch templates) before a new instance profile reached it: kops
    // awstasks, Terraform's aws_instance.
    SettlingError {
        code: "InvalidParameterValue",
        message: Some("Invalid IAM Instance Profile"),
    },
    // Auto Scaling CreateAutoScalingGroup / UpdateAutoScalingGroup: "You must use a valid
    // fully-formed launch template. Value (…) for parameter iamInstanceProfile.name is
    // invalid. Invalid IAM Instance Profile name": kops (instance groups), Terraform's
    // aws_autoscaling_group.
    SettlingError {
        code: "ValidationError",
        message: Some("Invalid IAM Instance Profile"),
    },
    // EC2 DescribeNatGateways right after CreateNatGateway: AWS's own NatGatewayAvailable
    // waiter retries it.
    SettlingError {
        code: "NatGatewayNotFound",
        message: None,
    },
];

/// Classifies an AWS failure from its error code, message, HTTP status and whether the
/// request reached AWS at all.
pub fn classify(
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
    unreached: bool,
) -> ErrorClass {
    if unreached || matches!(status, Some(429 | 500..=599)) {
        return ErrorClass::Transient;
    }
    let Some(code) = code else {
        return ErrorClass::Permanent;
    };
    if RETRYABLE_CODES.contains(&code) || STILL_IN_USE_CODES.contains(&code) {
        return ErrorClass::Transient;
    }
    // Eventual consistency: an id made moments ago is not visible everywhere yet
    // (`InvalidVpcID.NotFound`, `InvalidSubnetID.NotFound`, `InvalidGroup.NotFound`, …).
    if code.starts_with("Invalid") && code.ends_with(".NotFound") {
        return ErrorClass::Transient;
    }
    let message = message.unwrap_or_default().to_lowercase();
    let settling = SETTLING.iter().any(|rule| {
        rule.code == code
            && rule
                .message
                .is_none_or(|part| message.contains(&part.to_lowercase()))
    });
    if settling {
        return ErrorClass::Transient;
    }
    ErrorClass::Permanent
}

/// An SDK failure as the engine sees it: code, message and class.
pub fn provision_error<E>(error: &SdkError<E, HttpResponse>) -> ProvisionError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let status = Some(service.raw().status().as_u16());
            let code = inner.code();
            let message = inner.message();
            ProvisionError {
                code: code.unwrap_or("Unknown").to_string(),
                message: message
                    .map(ToString::to_string)
                    .unwrap_or_else(|| inner.to_string()),
                class: classify(code, message, status, false),
            }
        }
        // No credentials, a bad endpoint URL: nothing a retry would change.
        SdkError::DispatchFailure(failure) if !failure.is_io() && !failure.is_timeout() => {
            ProvisionError {
                code: "RequestFailed".to_string(),
                message: error_chain(error),
                class: ErrorClass::Permanent,
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => ProvisionError {
            code: "Unreachable".to_string(),
            message: error_chain(error),
            class: ErrorClass::Transient,
        },
        SdkError::ResponseError(_) => ProvisionError {
            code: "BadResponse".to_string(),
            message: error_chain(error),
            class: ErrorClass::Transient,
        },
        _ => ProvisionError {
            code: "RequestFailed".to_string(),
            message: error_chain(error),
            class: ErrorClass::Permanent,
        },
    }
}

/// An error and its causes, `outer: inner: innermost`, without the debug dumps of the SDK's
/// own context display.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// A delete of something already gone succeeded: the `…NotFound` codes of EC2 and ELB,
/// EC2's `…NotFoundException` for launch templates, IAM's `NoSuchEntity` and Route53's
/// `NoSuchHostedZone`. (A delete whose answer was lost, and which was sent again, meets
/// exactly these.)
pub fn gone_is_fine(error: ProvisionError) -> Result<(), ProvisionError> {
    let gone = error.code.ends_with("NotFound")
        || error.code.ends_with("NotFoundException")
        || error.code.starts_with("NoSuch");
    if gone { Ok(()) } else { Err(error) }
}

/// `.aws()?` on an SDK call: its failure as a [`ProvisionError`].
pub trait AwsResultExt<T> {
    fn aws(self) -> Result<T, ProvisionError>;
}

impl<T, E> AwsResultExt<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    fn aws(self) -> Result<T, ProvisionError> {
        self.map_err(|error| provision_error(&error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delete_of_what_is_gone_succeeds_under_every_services_code() {
        for code in [
            "InvalidSubnetID.NotFound",
            "InvalidLaunchTemplateName.NotFoundException",
            "LoadBalancerNotFound",
            "NoSuchEntity",
            "NoSuchHostedZone",
        ] {
            assert!(
                gone_is_fine(ProvisionError::permanent(code, "gone")).is_ok(),
                "{code}"
            );
        }
        assert!(gone_is_fine(ProvisionError::permanent("DependencyViolation", "held")).is_err());
    }

    #[test]
    fn throttling_server_errors_and_unreached_requests_are_transient() {
        for code in [
            "RequestLimitExceeded",
            "Throttling",
            "SlowDown",
            "PriorRequestNotComplete",
            "DependencyViolation",
            "QueueDeletedRecently",
        ] {
            assert_eq!(
                classify(Some(code), None, Some(400), false),
                ErrorClass::Transient,
                "{code}"
            );
        }
        assert_eq!(
            classify(None, None, Some(503), false),
            ErrorClass::Transient
        );
        assert_eq!(
            classify(Some("Whatever"), None, Some(500), false),
            ErrorClass::Transient
        );
        assert_eq!(classify(None, None, None, true), ErrorClass::Transient);
    }

    #[test]
    fn eventual_consistency_is_transient() {
        for code in [
            "InvalidVpcID.NotFound",
            "InvalidSubnetID.NotFound",
            "InvalidGroup.NotFound",
            "InvalidAllocationID.NotFound",
        ] {
            assert_eq!(
                classify(Some(code), None, Some(400), false),
                ErrorClass::Transient,
                "{code}"
            );
        }
        assert_eq!(
            classify(
                Some("InvalidParameterValue"),
                Some(
                    "Value (x) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"
                ),
                Some(400),
                false
            ),
            ErrorClass::Transient
        );
    }

    #[test]
    fn a_new_instance_profile_is_awaited_by_ec2_and_auto_scaling() {
        // The texts AWS sends (Auto Scaling's, as kops and Terraform match it).
        for (code, message) in [
            (
                "ValidationError",
                "You must use a valid fully-formed launch template. Value (control-plane.c.example.com) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name",
            ),
            (
                "InvalidParameterValue",
                "Value (arn:aws:iam::123456789012:instance-profile/x) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN",
            ),
            ("NatGatewayNotFound", "NAT gateway nat-0123 was not found"),
        ] {
            assert_eq!(
                classify(Some(code), Some(message), Some(400), false),
                ErrorClass::Transient,
                "{code}: {message}"
            );
        }
        // Another validation error of the same call stays a mistake.
        assert_eq!(
            classify(
                Some("ValidationError"),
                Some("Max bound, 1, must be greater than or equal to min bound, 2"),
                Some(400),
                false
            ),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn real_mistakes_are_permanent() {
        for code in [
            "InvalidParameterValue",
            "UnauthorizedOperation",
            "VpcLimitExceeded",
            "InvalidSubnet.Conflict",
            "AccessDenied",
        ] {
            assert_eq!(
                classify(Some(code), Some("bad"), Some(400), false),
                ErrorClass::Permanent,
                "{code}"
            );
        }
        assert_eq!(
            classify(None, None, Some(403), false),
            ErrorClass::Permanent
        );
    }
}
