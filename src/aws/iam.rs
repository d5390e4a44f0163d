//! IAM roles, their inline policies and instance profiles. IAM names are unique per account,
//! so a rerun finds what it made by name; it adopts only what carries this cluster's tag and
//! refuses anything else, so a name clash never hijacks another cluster's role.

use aws_sdk_iam::types::Tag;

use super::attrs::Attrs;
use super::errors::{AwsResultExt, gone_is_fine};
use super::{Context, not_owned, outputs};
use crate::apply::{Outputs, ProvisionError};
use crate::graph::ResourceKind;
use crate::model::naming::CLUSTER_TAG;
use crate::plan::RecordedResource;

const SERVICE: &str = "iam";

fn tags(attrs: Attrs<'_>) -> Vec<Tag> {
    attrs
        .tags()
        .into_iter()
        .filter_map(|(key, value)| Tag::builder().key(key).value(value).build().ok())
        .collect()
}

pub(super) fn owned_by(tags: &[Tag], cluster: &str) -> bool {
    tags.iter()
        .any(|tag| tag.key() == CLUSTER_TAG && tag.value() == cluster)
}

/// IAM answers `NoSuchEntity` for a name that does not exist: that is "not found", not a
/// failure.
fn absent_is_none<T>(result: Result<T, ProvisionError>) -> Result<Option<T>, ProvisionError> {
    match result {
        Ok(found) => Ok(Some(found)),
        Err(error) if error.code == "NoSuchEntity" => Ok(None),
        Err(error) => Err(error),
    }
}

/// Policy documents come back URL-encoded from some IAM implementations; compare parsed JSON.
pub(super) fn same_document(current: &str, wanted: &str) -> bool {
    let decoded = percent_decode(current);
    let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
    match (parse(&decoded), parse(wanted)) {
        (Some(current), Some(wanted)) => current == wanted,
        _ => decoded == wanted,
    }
}

pub(super) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

pub async fn create(
    context: &Context,
    kind: ResourceKind,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    match kind {
        ResourceKind::IamRole => ensure_role(context, attrs).await,
        ResourceKind::IamRolePolicy => put_role_policy(context, attrs).await,
        ResourceKind::IamInstanceProfile => ensure_instance_profile(context, attrs).await,
        other => Err(super::not_handled(other, SERVICE)),
    }
}

/// Every IAM create converges an existing resource too, so updates are creates.
pub async fn update(
    context: &Context,
    recorded: &RecordedResource,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    create(context, recorded.address.kind, attrs).await
}

pub async fn delete(context: &Context, recorded: &RecordedResource) -> Result<(), ProvisionError> {
    let name = recorded
        .outputs
        .get("name")
        .or_else(|| recorded.outputs.get("id"))
        .map(String::as_str)
        .unwrap_or_default();
    let iam = &context.iam;
    let result = match recorded.address.kind {
        ResourceKind::IamRole => {
            context.calls.write(SERVICE);
            iam.delete_role()
                .role_name(name)
                .send()
                .await
                .aws()
                .map(drop)
        }
        ResourceKind::IamRolePolicy => {
            let id = recorded
                .outputs
                .get("id")
                .map(String::as_str)
                .unwrap_or_default();
            let (role, policy) = id.split_once(':').unwrap_or((id, ""));
            context.calls.write(SERVICE);
            iam.delete_role_policy()
                .role_name(role)
                .policy_name(policy)
                .send()
                .await
                .aws()
                .map(drop)
        }
        ResourceKind::IamInstanceProfile => delete_instance_profile(context, name).await,
        other => Err(super::not_handled(other, SERVICE)),
    };
    result.or_else(gone_is_fine)
}

async fn ensure_role(context: &Context, attrs: Attrs<'_>) -> Result<Outputs, ProvisionError> {
    let name = attrs.str("name")?;
    let trust = attrs.file("assume_role_policy")?;
    context.calls.read(SERVICE);
    let found = absent_is_none(context.iam.get_role().role_name(name).send().await.aws())?;
    let role = match found.and_then(|found| found.role) {
        Some(role) => {
            if !owned_by(role.tags(), &context.cluster) {
                return Err(not_owned("IAM role", name, &context.cluster));
            }
            let current = role.assume_role_policy_document().unwrap_or_default();
            if !same_document(current, trust) {
                context.calls.write(SERVICE);
                context
                    .iam
                    .update_assume_role_policy()
                    .role_name(name)
                    .policy_document(trust)
                    .send()
                    .await
                    .aws()?;
            }
            role
        }
        None => {
            context.calls.write(SERVICE);
            let created = context
                .iam
                .create_role()
                .role_name(name)
                .assume_role_policy_document(trust)
                .set_tags(Some(tags(attrs)))
                .send()
                .await
                .aws()?;
            created.role.ok_or_else(|| {
                ProvisionError::permanent("MissingId", "CreateRole returned no role")
            })?
        }
    };
    Ok(outputs([
        ("id", name.to_string()),
        ("name", name.to_string()),
        ("arn", role.arn().to_string()),
    ]))
}

/// `PutRolePolicy` creates or replaces: idempotent by itself.
async fn put_role_policy(context: &Context, attrs: Attrs<'_>) -> Result<Outputs, ProvisionError> {
    let role = attrs.str("role")?;
    let name = attrs.str("name")?;
    context.calls.write(SERVICE);
    context
        .iam
        .put_role_policy()
        .role_name(role)
        .policy_name(name)
        .policy_document(attrs.file("policy")?)
        .send()
        .await
        .aws()?;
    Ok(outputs([("id", format!("{role}:{name}"))]))
}

async fn ensure_instance_profile(
    context: &Context,
    attrs: Attrs<'_>,
) -> Result<Outputs, ProvisionError> {
    let name = attrs.str("name")?;
    let role = attrs.str("role")?;
    context.calls.read(SERVICE);
    let found = absent_is_none(
        context
            .iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .aws(),
    )?;
    let profile = match found.and_then(|found| found.instance_profile) {
        Some(profile) => {
            if !owned_by(profile.tags(), &context.cluster) {
                return Err(not_owned("IAM instance profile", name, &context.cluster));
            }
            profile
        }
        None => {
            context.calls.write(SERVICE);
            let created = context
                .iam
                .create_instance_profile()
                .instance_profile_name(name)
                .set_tags(Some(tags(attrs)))
                .send()
                .await
                .aws()?;
            created.instance_profile.ok_or_else(|| {
                ProvisionError::permanent("MissingId", "CreateInstanceProfile returned no profile")
            })?
        }
    };
    let current: Vec<&str> = profile
        .roles()
        .iter()
        .map(|role| role.role_name())
        .collect();
    for stale in current.iter().filter(|current| **current != role) {
        context.calls.write(SERVICE);
        context
            .iam
            .remove_role_from_instance_profile()
            .instance_profile_name(name)
            .role_name(*stale)
            .send()
            .await
            .aws()?;
    }
    if !current.contains(&role) {
        context.calls.write(SERVICE);
        context
            .iam
            .add_role_to_instance_profile()
            .instance_profile_name(name)
            .role_name(role)
            .send()
            .await
            .aws()
            .map_err(role_not_yet_visible)?;
    }
    Ok(outputs([
        ("id", name.to_string()),
        ("name", name.to_string()),
        ("arn", profile.arn().to_string()),
    ]))
}

/// The role a profile is given was made by this apply moments before (the graph orders it
/// first), so IAM's `NoSuchEntity` for it is IAM's eventual consistency, not a missing role:
/// retried, as the Terraform AWS provider retries `AddRoleToInstanceProfile`.
fn role_not_yet_visible(error: ProvisionError) -> ProvisionError {
    if error.code == "NoSuchEntity" {
        ProvisionError::transient(&error.code, error.message)
    } else {
        error
    }
}

/// A profile holding a role cannot be deleted: let go of the role first.
async fn delete_instance_profile(context: &Context, name: &str) -> Result<(), ProvisionError> {
    context.calls.read(SERVICE);
    let found = context
        .iam
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .aws()?;
    if let Some(profile) = found.instance_profile() {
        for role in profile.roles() {
            context.calls.write(SERVICE);
            context
                .iam
                .remove_role_from_instance_profile()
                .instance_profile_name(name)
                .role_name(role.role_name())
                .send()
                .await
                .aws()
                .map(drop)
                .or_else(gone_is_fine)?;
        }
    }
    context.calls.write(SERVICE);
    context
        .iam
        .delete_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .aws()
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoded_documents_compare_equal_to_their_json() {
        let wanted = r#"{"Version":"2012-10-17","Statement":[]}"#;
        let encoded = "%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22Statement%22%3A%20%5B%5D%7D";
        assert!(same_document(encoded, wanted));
        assert!(!same_document(
            encoded,
            r#"{"Version":"2008-10-17","Statement":[]}"#
        ));
    }
}
