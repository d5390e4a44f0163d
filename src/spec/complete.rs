//! Derived values: everything a spec leaves out that can be decided from what it says.
//!
//! Completion never fails; what it cannot derive is reported as a diagnostic, and the stored
//! spec is the completed one, so later rafter versions with other defaults never silently
//! change an existing cluster.

use ipnet::Ipv4Net;

use super::diagnostics::Diagnostic;
use super::source::FieldPath;
use super::types::{
    Addons, Cidr, Cluster, NatGateways, Provider, SubnetKind, SubnetSpec, Topology,
};

/// Fills in region, NAT mode, node-group zones and subnet CIDRs.
pub fn complete(cluster: &Cluster, config_base: Option<&str>) -> (Cluster, Vec<Diagnostic>) {
    let mut completed = cluster.clone();
    let mut diagnostics = Vec::new();
    let spec = &mut completed.spec;
    if let Some(base) = config_base {
        spec.config_base = Some(base.to_string());
    }
    if spec.provider == Provider::Ssh {
        return (completed, diagnostics);
    }
    spec.addons.get_or_insert_with(Addons::default);
    if spec.region.is_none() {
        spec.region = spec
            .networking
            .zones
            .first()
            .map(|zone| region_of_zone(zone).to_string());
    }
    let networking = &mut spec.networking;
    if networking.nat_gateways.is_none() {
        networking.nat_gateways = Some(match networking.topology {
            Topology::Private => NatGateways::PerZone,
            Topology::Public => NatGateways::None,
        });
    }
    for group in &mut spec.node_groups {
        if group.zones.is_empty() {
            group.zones = networking.zones.clone();
        }
    }
    match carve_subnets(
        networking.vpc_cidr,
        networking.topology,
        &networking.zones,
        &networking.subnets,
    ) {
        Ok(subnets) => networking.subnets = subnets,
        // Validation reports a VPC outside /16../22 on its own.
        Err(CarveError::VpcTooSmall { .. }) => {}
        Err(error) => diagnostics.push(
            Diagnostic::error(
                FieldPath::parse("spec.networking.vpcCidr"),
                error.to_string(),
            )
            .with_hint(
                "use a larger vpcCidr, fewer zones, or list spec.networking.subnets explicitly",
            ),
        ),
    }
    (completed, diagnostics)
}

/// `eu-west-1a` -> `eu-west-1`.
pub fn region_of_zone(zone: &str) -> &str {
    zone.trim_end_matches(|character: char| character.is_ascii_lowercase())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarveError {
    #[error("vpcCidr {vpc} is too small to carve subnets (needs a prefix of /16 to /22)")]
    VpcTooSmall { vpc: Cidr },
    #[error("no free {kind} subnet left in {vpc} for zone {zone}")]
    Exhausted {
        vpc: Cidr,
        kind: SubnetKind,
        zone: String,
    },
}

/// Largest VPC prefix whose utility blocks (prefix + 6) still make valid AWS subnets (/28).
const MAX_CARVABLE_PREFIX: u8 = 22;

/// Gives every zone the subnets its topology needs, keeping the ones already listed.
///
/// The VPC is cut into eight equal blocks (a /16 gives /19s). Blocks 1 to 7 are the main
/// subnets, one per zone: private ones in the private topology, public ones in the public
/// topology. Block 0 is cut into eight again (/22s of a /16) for the small public "utility"
/// subnets of the private topology, which hold only NAT gateways, load balancers and the
/// bastion. Candidates are taken in order, skipping any that overlap an existing subnet, so the
/// result depends only on the inputs and adding a zone never moves another zone's subnets.
pub fn carve_subnets(
    vpc: Cidr,
    topology: Topology,
    zones: &[String],
    existing: &[SubnetSpec],
) -> Result<Vec<SubnetSpec>, CarveError> {
    let mut subnets: Vec<SubnetSpec> = existing.to_vec();
    let needed: &[SubnetKind] = match topology {
        Topology::Private => &[SubnetKind::Private, SubnetKind::Public],
        Topology::Public => &[SubnetKind::Public],
    };
    let missing: Vec<(&String, SubnetKind)> = zones
        .iter()
        .flat_map(|zone| needed.iter().map(move |kind| (zone, *kind)))
        .filter(|(zone, kind)| {
            !subnets
                .iter()
                .any(|subnet| &subnet.zone == *zone && subnet.kind == *kind)
        })
        .collect();
    if missing.is_empty() {
        return Ok(subnets);
    }
    if vpc.0.prefix_len() > MAX_CARVABLE_PREFIX {
        return Err(CarveError::VpcTooSmall { vpc });
    }
    let blocks = split(vpc.0, 3);
    let main_pool: Vec<Cidr> = blocks.iter().skip(1).copied().map(Cidr).collect();
    let utility_pool: Vec<Cidr> = blocks
        .first()
        .map(|block0| split(*block0, 3))
        .unwrap_or_default()
        .into_iter()
        .map(Cidr)
        .collect();
    for (zone, kind) in missing {
        let pool = match (topology, kind) {
            (Topology::Private, SubnetKind::Public) => &utility_pool,
            _ => &main_pool,
        };
        let free = pool
            .iter()
            .find(|candidate| !subnets.iter().any(|subnet| subnet.cidr.overlaps(candidate)))
            .ok_or_else(|| CarveError::Exhausted {
                vpc,
                kind,
                zone: zone.clone(),
            })?;
        subnets.push(SubnetSpec {
            zone: zone.clone(),
            kind,
            cidr: *free,
        });
    }
    Ok(subnets)
}

fn split(net: Ipv4Net, extra_bits: u8) -> Vec<Ipv4Net> {
    net.subnets(net.prefix_len() + extra_bits)
        .map(Iterator::collect)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones(names: &[&str]) -> Vec<String> {
        names.iter().map(ToString::to_string).collect()
    }

    fn cidrs(subnets: &[SubnetSpec]) -> Vec<String> {
        subnets
            .iter()
            .map(|subnet| format!("{} {} {}", subnet.zone, subnet.kind, subnet.cidr))
            .collect()
    }

    #[test]
    fn carves_kops_like_layout_for_three_zones() {
        let vpc: Cidr = "10.0.0.0/16".parse().unwrap();
        let subnets =
            carve_subnets(vpc, Topology::Private, &zones(&["a1a", "a1b", "a1c"]), &[]).unwrap();
        assert_eq!(
            cidrs(&subnets),
            [
                "a1a private 10.0.32.0/19",
                "a1a public 10.0.0.0/22",
                "a1b private 10.0.64.0/19",
                "a1b public 10.0.4.0/22",
                "a1c private 10.0.96.0/19",
                "a1c public 10.0.8.0/22",
            ]
        );
    }

    #[test]
    fn public_topology_uses_main_blocks() {
        let vpc: Cidr = "172.20.0.0/20".parse().unwrap();
        let subnets = carve_subnets(vpc, Topology::Public, &zones(&["a1a", "a1b"]), &[]).unwrap();
        assert_eq!(
            cidrs(&subnets),
            ["a1a public 172.20.2.0/23", "a1b public 172.20.4.0/23"]
        );
    }

    #[test]
    fn adding_a_zone_keeps_existing_subnets_and_skips_taken_blocks() {
        let vpc: Cidr = "10.0.0.0/16".parse().unwrap();
        let first = carve_subnets(vpc, Topology::Private, &zones(&["a1b"]), &[]).unwrap();
        let mut custom = first.clone();
        custom.push(SubnetSpec {
            zone: "a1x".into(),
            kind: SubnetKind::Private,
            cidr: "10.0.64.0/20".parse().unwrap(),
        });
        let second =
            carve_subnets(vpc, Topology::Private, &zones(&["a1b", "a1a"]), &custom).unwrap();
        assert_eq!(&second[..first.len()], &first[..]);
        let added: Vec<String> = cidrs(&second[custom.len()..]);
        assert_eq!(
            added,
            ["a1a private 10.0.96.0/19", "a1a public 10.0.4.0/22"]
        );
        for (position, subnet) in second.iter().enumerate() {
            for other in &second[position + 1..] {
                assert!(
                    !subnet.cidr.overlaps(&other.cidr),
                    "{subnet:?} overlaps {other:?}"
                );
            }
            assert!(vpc.contains(&subnet.cidr));
        }
    }

    #[test]
    fn reports_exhaustion_and_too_small_vpcs() {
        let vpc: Cidr = "10.0.0.0/16".parse().unwrap();
        let eight = zones(&["z1a", "z1b", "z1c", "z1d", "z1e", "z1f", "z1g", "z1h"]);
        assert!(matches!(
            carve_subnets(vpc, Topology::Private, &eight, &[]),
            Err(CarveError::Exhausted { .. })
        ));
        let small: Cidr = "10.0.0.0/24".parse().unwrap();
        assert_eq!(
            carve_subnets(small, Topology::Private, &eight[..1], &[]),
            Err(CarveError::VpcTooSmall { vpc: small })
        );
    }

    #[test]
    fn region_is_zone_without_letter() {
        assert_eq!(region_of_zone("eu-west-1a"), "eu-west-1");
        assert_eq!(region_of_zone("us-gov-west-1c"), "us-gov-west-1");
    }
}
