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
