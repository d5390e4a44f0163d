//! Applying the network and security part of a cluster to the AWS API emulator: it converges,
//! a second apply makes no mutating call, a run that lost its state adopts instead of
//! duplicating, and destroying removes everything tagged with the cluster.

mod common;

use aws_sdk_ec2::types::Filter;
use common::apply::{Memory, converge, destroy};
use rafter::graph::{Concern, ResourceGraph};
use rafter::model::build_graph;
use rafter::spec::{self, SpecFlags, SpecSources};

fn network_graph(name: &str) -> ResourceGraph {
    let sources = SpecSources {
        profile: Some("ha-aws".into()),
        file: None,
        flags: SpecFlags {
            name: Some(name.into()),
            zones: Some(vec![
                "eu-west-1a".into(),
                "eu-west-1b".into(),
                "eu-west-1c".into(),
            ]),
            ..SpecFlags::default()
        },
    };
    let cluster = spec::load(&sources, None).unwrap().cluster;
    build_graph(&cluster).unwrap().filtered(|node| {
        matches!(
            node.address.kind.concern(),
            Concern::Network | Concern::Security
        )
    })
}

fn owned_by(name: &str) -> Filter {
    Filter::builder()
        .name("tag:rafter.dev/cluster")
        .values(name)
        .build()
}

#[tokio::test]
async fn network_converges_is_idempotent_adopts_and_is_destroyed() {
    let name = "net.example.com";
    let graph = network_graph(name);
    let memory = Memory::default();
    let (report, _) = converge(name, &graph, &memory).await;
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(report.done.len(), graph.len());

    let ec2 = aws_sdk_ec2::Client::new(&common::moto::sdk_config());
    let vpcs = ec2
        .describe_vpcs()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    let vpc_id = vpcs.vpcs()[0].vpc_id().unwrap().to_string();
    assert_eq!(vpcs.vpcs()[0].cidr_block(), Some("10.0.0.0/16"));
    let subnets = ec2
        .describe_subnets()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    let mut layout: Vec<(String, String)> = subnets
        .subnets()
        .iter()
        .map(|subnet| {
            (
                subnet.availability_zone().unwrap().to_string(),
                subnet.cidr_block().unwrap().to_string(),
            )
        })
        .collect();
    layout.sort();
    assert_eq!(
        layout,
        [
            ("eu-west-1a", "10.0.0.0/22"),
            ("eu-west-1a", "10.0.32.0/19"),
            ("eu-west-1b", "10.0.4.0/22"),
            ("eu-west-1b", "10.0.64.0/19"),
            ("eu-west-1c", "10.0.8.0/22"),
            ("eu-west-1c", "10.0.96.0/19"),
        ]
        .map(|(zone, cidr)| (zone.to_string(), cidr.to_string()))
    );

    // Private subnets leave through the NAT gateway of their own zone.
    let nats = ec2
        .describe_nat_gateways()
        .filter(owned_by(name))
        .send()
        .await
        .unwrap();
    assert_eq!(nats.nat_gateways().len(), 3);
    let zone_of_subnet = |subnet_id: &str| {
        subnets
            .subnets()
            .iter()
            .find(|subnet| subnet.subnet_id() == Some(subnet_id))
            .unwrap()
            .availability_zone()
            .unwrap()
            .to_string()
    };
    let tables = ec2
        .describe_route_tables()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    let mut private_routes = 0;
    for table in tables.route_tables() {
        for route in table
            .routes()
            .iter()
            .filter(|route| route.destination_cidr_block() == Some("0.0.0.0/0"))
        {
            if let Some(nat_id) = route.nat_gateway_id() {
                let nat = nats
                    .nat_gateways()
                    .iter()
                    .find(|nat| nat.nat_gateway_id() == Some(nat_id))
                    .unwrap();
                let nat_zone = zone_of_subnet(nat.subnet_id().unwrap());
                for association in table.associations() {
                    assert_eq!(
                        zone_of_subnet(association.subnet_id().unwrap()),
                        nat_zone,
                        "cross-zone NAT route"
                    );
                }
                private_routes += 1;
            }
        }
    }
    assert_eq!(private_routes, 3);

    // The API load balancer's group has only rafter's egress rule, not EC2's default.
    let groups = ec2
        .describe_security_groups()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    let lb_group = groups
        .security_groups()
        .iter()
        .find(|group| group.group_name().unwrap().starts_with("api-lb."))
        .unwrap();
    let egress = lb_group.ip_permissions_egress();
    assert_eq!(egress.len(), 1, "{egress:?}");
    assert_eq!(egress[0].from_port(), Some(6443));

    // Applying again from the recorded state changes nothing: zero mutating calls.
    let (again, provisioner) = converge(name, &graph, &memory).await;
    assert!(again.succeeded() && again.done.is_empty(), "{again:#?}");
    assert_eq!(provisioner.calls().total_writes(), 0);

    // A run that lost its state finds what exists by tags and natural keys: no duplicates.
    let (adopted, _) = converge(name, &graph, &Memory::default()).await;
    assert!(adopted.succeeded(), "{adopted:#?}");
    assert_eq!(
        ec2.describe_vpcs()
            .filters(owned_by(name))
            .send()
            .await
            .unwrap()
            .vpcs()
            .len(),
        1
    );
    assert_eq!(
        ec2.describe_subnets()
            .filters(owned_by(name))
            .send()
            .await
            .unwrap()
            .subnets()
            .len(),
        6
    );
    assert_eq!(
        ec2.describe_nat_gateways()
            .filter(owned_by(name))
            .filter(Filter::builder().name("state").values("available").build())
            .send()
            .await
            .unwrap()
            .nat_gateways()
            .len(),
        3
    );
    assert_eq!(
        ec2.describe_addresses()
            .filters(owned_by(name))
            .send()
            .await
            .unwrap()
            .addresses()
            .len(),
        3
    );

    // Destroy: everything recorded goes, dependents first.
    let (report, _) = destroy(name, &memory).await;
    assert!(report.succeeded(), "{report:#?}");
    assert!(memory.0.lock().unwrap().is_empty());
    assert!(
        ec2.describe_vpcs().vpc_ids(&vpc_id).send().await.is_err()
            || ec2
                .describe_vpcs()
                .filters(owned_by(name))
                .send()
                .await
                .unwrap()
                .vpcs()
                .is_empty()
    );
    assert!(
        ec2.describe_subnets()
            .filters(owned_by(name))
            .send()
            .await
            .unwrap()
            .subnets()
            .is_empty()
    );
    assert!(
        ec2.describe_security_groups()
            .filters(owned_by(name))
            .send()
            .await
            .unwrap()
            .security_groups()
            .is_empty()
    );
}

/// The members' etcd volumes of `ha-aws` as `volume` describes them.
fn volume_graph(name: &str, volume: rafter::spec::EtcdVolume) -> ResourceGraph {
    let sources = SpecSources {
        profile: Some("ha-aws".into()),
        file: None,
        flags: SpecFlags {
            name: Some(name.into()),
            zones: Some(vec![
                "eu-west-1a".into(),
                "eu-west-1b".into(),
                "eu-west-1c".into(),
            ]),
            ..SpecFlags::default()
        },
    };
    let mut cluster = spec::load(&sources, None).unwrap().cluster;
    cluster.spec.etcd.volume = volume;
    build_graph(&cluster)
        .unwrap()
        .filtered(|node| node.address.kind == rafter::graph::ResourceKind::EbsVolume)
}

fn volume(size_gib: u32, volume_type: &str, iops: Option<u32>) -> rafter::spec::EtcdVolume {
    rafter::spec::EtcdVolume {
        size_gib,
        volume_type: volume_type.to_string(),
        iops,
        throughput_mibps: None,
    }
}

/// (id, zone, size, type, iops, encrypted, member tag) of the cluster's volumes, by zone.
async fn volumes(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
) -> Vec<(String, String, i32, String, Option<i32>, bool, String)> {
    let described = ec2
        .describe_volumes()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    let mut found: Vec<_> = described
        .volumes()
        .iter()
        .filter(|volume| volume.state().map(|state| state.as_str()) != Some("deleted"))
        .map(|volume| {
            let member = volume
                .tags()
                .iter()
                .find(|tag| tag.key() == Some("rafter.dev/etcd-member"))
                .and_then(|tag| tag.value())
                .unwrap_or_default()
                .to_string();
            (
                volume.volume_id().unwrap().to_string(),
                volume.availability_zone().unwrap().to_string(),
                volume.size().unwrap(),
                volume.volume_type().unwrap().as_str().to_string(),
                volume.iops(),
                volume.encrypted().unwrap_or(false),
                member,
            )
        })
        .collect();
    found.sort_by(|left, right| left.1.cmp(&right.1));
    found
}

/// Each member's etcd volume: created encrypted in its zone and tagged with its member; a
/// second apply changes nothing; a bigger or faster volume is modified in place, never
/// replaced (that would lose the member's data); a run that lost its record adopts the
/// volumes and brings them to the spec; a smaller one is refused in words; destroying deletes
/// them.
#[tokio::test]
async fn etcd_volumes_change_in_place_never_shrink_and_are_destroyed() {
    let name = "volumes.example.com";
    let ec2 = aws_sdk_ec2::Client::new(&common::moto::sdk_config());
    let memory = Memory::default();
    let (report, _) = converge(name, &volume_graph(name, volume(20, "gp3", None)), &memory).await;
    assert!(report.succeeded(), "{report:#?}");
    let created = volumes(&ec2, name).await;
    assert_eq!(created.len(), 3, "{created:?}");
    for (id, zone, size, volume_type, _, encrypted, member) in &created {
        assert_eq!(
            (*size, volume_type.as_str(), *encrypted, member.as_str()),
            (20, "gp3", true, zone.as_str()),
            "{id}"
        );
    }
    let ids: Vec<String> = created.iter().map(|volume| volume.0.clone()).collect();

    let (again, provisioner) =
        converge(name, &volume_graph(name, volume(20, "gp3", None)), &memory).await;
    assert!(again.succeeded() && again.done.is_empty(), "{again:#?}");
    assert_eq!(provisioner.calls().total_writes(), 0);

    // Bigger and provisioned: updated in place, the same volumes.
    let (grown, _) = converge(
        name,
        &volume_graph(name, volume(30, "io1", Some(4000))),
        &memory,
    )
    .await;
    assert!(grown.succeeded(), "{grown:#?}");
    assert!(
        grown
            .done
            .iter()
            .all(|(_, action)| *action == rafter::plan::Action::Update),
        "{grown:#?}"
    );
    let modified = volumes(&ec2, name).await;
    for (id, _, size, volume_type, iops, _, _) in &modified {
        assert!(ids.contains(id), "{id} replaced a volume");
        assert_eq!(
            (*size, volume_type.as_str(), *iops),
            (30, "io1", Some(4000))
        );
    }

    // A run that lost its record adopts them, and makes them what the spec says.
    let adopting = Memory::default();
    let (adopted, _) = converge(
        name,
        &volume_graph(name, volume(40, "io1", Some(4000))),
        &adopting,
    )
    .await;
    assert!(adopted.succeeded(), "{adopted:#?}");
    let adopted_volumes = volumes(&ec2, name).await;
    assert_eq!(
        adopted_volumes
            .iter()
            .map(|volume| (volume.0.clone(), volume.2))
            .collect::<Vec<_>>(),
        ids.iter().map(|id| (id.clone(), 40)).collect::<Vec<_>>()
    );

    // Smaller: refused, saying what to do; nothing changes.
    let (shrunk, _) = converge(
        name,
        &volume_graph(name, volume(20, "io1", Some(4000))),
        &adopting,
    )
    .await;
    assert_eq!(shrunk.failed.len(), 3, "{shrunk:#?}");
    for (_, error) in &shrunk.failed {
        assert_eq!(error.code, "VolumeCannotShrink");
        assert!(
            error
                .message
                .contains("set spec.etcd.volume.sizeGiB to 40 or more"),
            "{}",
            error.message
        );
    }
    assert!(
        volumes(&ec2, name)
            .await
            .iter()
            .all(|volume| volume.2 == 40)
    );

    let (report, _) = destroy(name, &adopting).await;
    assert!(report.succeeded(), "{report:#?}");
    assert!(volumes(&ec2, name).await.is_empty());
}
