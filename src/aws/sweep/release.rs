//! Letting go of what would make a leftover's delete fail: instances are terminated, route
//! tables lose their subnet associations, security groups their references to other groups,
//! roles their inline policies. And the one delete outside the graph's kinds: a classic load
//! balancer the cloud controller made.

use aws_sdk_ec2::types::IpPermission;

use crate::apply::ProvisionError;
use crate::aws::Context;
use crate::aws::errors::AwsResultExt;

pub(super) async fn terminate_instance(context: &Context, id: &str) -> Result<(), ProvisionError> {
    context.calls.write("ec2");
    context
        .ec2
        .terminate_instances()
        .instance_ids(id)
        .send()
        .await
        .aws()
        .map(drop)
}

/// Deletes a classic load balancer (which succeeds for one already gone).
pub(super) async fn delete_classic_load_balancer(
    context: &Context,
    name: &str,
) -> Result<(), ProvisionError> {
    context.calls.write("elasticloadbalancing");
    context
        .classic_elb
        .delete_load_balancer()
        .load_balancer_name(name)
        .send()
        .await
        .aws()
        .map(drop)
}

/// A table with subnets associated cannot be deleted.
pub(super) async fn disassociate_route_table(
    context: &Context,
    id: &str,
) -> Result<(), ProvisionError> {
    context.calls.read("ec2");
    let described = context
        .ec2
        .describe_route_tables()
        .route_table_ids(id)
        .send()
        .await
        .aws()?;
    let associations: Vec<String> = described
        .route_tables()
        .iter()
        .flat_map(|table| table.associations())
        .filter(|association| association.main() != Some(true))
        .filter_map(|association| association.route_table_association_id().map(str::to_string))
        .collect();
    for association in associations {
        context.calls.write("ec2");
        context
            .ec2
            .disassociate_route_table()
            .association_id(association)
            .send()
            .await
            .aws()?;
    }
    Ok(())
}

/// A group another group's rule refers to cannot be deleted (`DependencyViolation`): drop
/// this group's rules, inbound and outbound, that refer to groups, so the cluster's groups
/// can go in any order.
pub(super) async fn revoke_group_references(
    context: &Context,
    id: &str,
) -> Result<(), ProvisionError> {
    context.calls.read("ec2");
    let described = context
        .ec2
        .describe_security_groups()
        .group_ids(id)
        .send()
        .await
        .aws()?;
    let groups = described.security_groups();
    let inbound = referring(groups.iter().flat_map(|group| group.ip_permissions()));
    let outbound = referring(
        groups
            .iter()
            .flat_map(|group| group.ip_permissions_egress()),
    );
    revoke(context, id, false, inbound).await?;
    revoke(context, id, true, outbound).await
}

/// Revokes `rules` of group `id`, its outbound rules if `outbound` (nothing if there are none).
async fn revoke(
    context: &Context,
    id: &str,
    outbound: bool,
    rules: Vec<IpPermission>,
) -> Result<(), ProvisionError> {
    if rules.is_empty() {
        return Ok(());
    }
    context.calls.write("ec2");
    if outbound {
        context
            .ec2
            .revoke_security_group_egress()
            .group_id(id)
            .set_ip_permissions(Some(rules))
            .send()
            .await
            .aws()
            .map(drop)
    } else {
        context
            .ec2
            .revoke_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(rules))
            .send()
            .await
            .aws()
            .map(drop)
    }
}

/// An add-on's group is referred to by rules of the cluster's own groups (the cloud
/// controller lets its load balancer's group reach the nodes), which stay until the recorded
/// delete: drop those rules' references to `id`, inbound and outbound, so it can go first.
pub(super) async fn revoke_references_to(
    context: &Context,
    id: &str,
) -> Result<(), ProvisionError> {
    for (filter, outbound) in [
        ("ip-permission.group-id", false),
        ("egress.ip-permission.group-id", true),
    ] {
        context.calls.read("ec2");
        let described = context
            .ec2
            .describe_security_groups()
            .filters(crate::aws::ec2::filter(filter, id))
            .send()
            .await
            .aws()?;
        for group in described.security_groups() {
            let Some(group_id) = group.group_id().filter(|group_id| *group_id != id) else {
                continue;
            };
            let rules = if outbound {
                group.ip_permissions_egress()
            } else {
                group.ip_permissions()
            };
            let naming: Vec<IpPermission> = rules
                .iter()
                .filter_map(|rule| {
                    let pairs: Vec<_> = rule
                        .user_id_group_pairs()
                        .iter()
                        .filter(|pair| pair.group_id() == Some(id))
                        .cloned()
                        .collect();
                    (!pairs.is_empty()).then(|| {
                        IpPermission::builder()
                            .set_ip_protocol(rule.ip_protocol().map(str::to_string))
                            .set_from_port(rule.from_port())
                            .set_to_port(rule.to_port())
                            .set_user_id_group_pairs(Some(pairs))
                            .build()
                    })
                })
                .collect();
            revoke(context, group_id, outbound, naming).await?;
        }
    }
    Ok(())
}

/// The rules among `permissions` that refer to other groups, as a revoke takes them.
fn referring<'a>(permissions: impl Iterator<Item = &'a IpPermission>) -> Vec<IpPermission> {
    permissions
        .filter(|permission| !permission.user_id_group_pairs().is_empty())
        .map(|permission| {
            IpPermission::builder()
                .set_ip_protocol(permission.ip_protocol().map(str::to_string))
                .set_from_port(permission.from_port())
                .set_to_port(permission.to_port())
                .set_user_id_group_pairs(Some(permission.user_id_group_pairs().to_vec()))
                .build()
        })
        .collect()
}

/// A role with inline policies cannot be deleted.
pub(super) async fn delete_inline_policies(
    context: &Context,
    role: &str,
) -> Result<(), ProvisionError> {
    context.calls.read("iam");
    let listed = context
        .iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .aws()?;
    for policy in listed.policy_names() {
        context.calls.write("iam");
        context
            .iam
            .delete_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send()
            .await
            .aws()?;
    }
    Ok(())
}
