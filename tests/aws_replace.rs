//! Replacing a resource whose changed attribute the cloud cannot modify (a subnet's CIDR),
//! against the AWS API emulator: the plan shows the replace and what it drags along, the
//! apply deletes dependents first and recreates in dependency order, and the result
//! converges with every reference pointing at the new subnet.

mod common;

use aws_sdk_ec2::types::Filter;
use common::apply::{Memory, converge, destroy};
use common::inventory::{nat_gateways_of, owned_by, tagged_leftovers};
use rafter::graph::ResourceKind;
use rafter::model::build_graph;
use rafter::plan::{self, Action};
use rafter::spec::{self, Cluster, SubnetKind};

const NEW_CIDR: &str = "10.0.250.0/24";

fn cluster(name: &str) -> Cluster {
    let mut sources = common::example_sources("ha-aws");
    sources.flags.name = Some(name.into());
    sources.flags.dns_zone = Some("cluster.test".into());
    spec::load(&sources, None).unwrap().cluster
}

fn action_of(plan: &plan::Plan, kind: ResourceKind, name_part: &str) -> Vec<Action> {
    plan.changes
        .iter()
        .filter(|change| change.address.kind == kind && change.address.name.contains(name_part))
        .map(|change| change.action)
        .collect()
}

#[tokio::test]
async fn a_subnet_cidr_change_replaces_it_and_its_dependents_in_order() {
    let name = "replace.cluster.test";
    let route53 = aws_sdk_route53::Client::new(&common::moto::sdk_config());
    route53
        .create_hosted_zone()
        .name("cluster.test")
        .caller_reference("rafter-replace-test")
        .send()
        .await
        .unwrap();
    let mut cluster = cluster(name);
    let memory = Memory::default();
    let (report, _) = converge(name, &build_graph(&cluster).unwrap(), &memory).await;
    assert!(report.succeeded(), "{report:#?}");

    let public_a = cluster
        .spec
        .networking
        .subnets
        .iter_mut()
        .find(|subnet| subnet.kind == SubnetKind::Public && subnet.zone == "eu-west-1a")
        .expect("the completed spec lists every subnet");
    let old_cidr = public_a.cidr.to_string();
    public_a.cidr = NEW_CIDR.parse().unwrap();
    let graph = build_graph(&cluster).unwrap();

    let planned = plan::diff(name, &graph, &memory.records()).unwrap();
    let text = plan::text::render(&planned, plan::text::Color::Never);
    assert_eq!(
        action_of(&planned, ResourceKind::Subnet, "public"),
        vec![Action::Replace],
        "{text}"
    );
    // The NAT gateway lives in the subnet (its subnet cannot change): replaced too; the
    // private route through it gets the new gateway in place.
    assert_eq!(
        action_of(&planned, ResourceKind::NatGateway, "eu-west-1a"),
        vec![Action::Replace],
        "{text}"
    );
    assert!(
        action_of(&planned, ResourceKind::Route, "eu-west-1a").contains(&Action::Update),
        "{text}"
    );
    assert!(
        text.contains(&format!("{old_cidr:?} -> {NEW_CIDR:?}")) || text.contains(NEW_CIDR),
        "{text}"
    );
    assert!(text.contains("forces replacement"), "{text}");
    // Nothing in other zones moves.
    for change in &planned.changes {
        assert!(
            !(change.action == Action::Replace
                && (change.address.name.contains("eu-west-1b")
                    || change.address.name.contains("eu-west-1c"))),
            "{} replaced:\n{text}",
            change.address
        );
    }

    let (report, _) = converge(name, &graph, &memory).await;
    assert!(report.succeeded(), "{report:#?}");
    let replan = plan::diff(name, &graph, &memory.records()).unwrap();
    assert!(
        !replan.summary.has_changes(),
        "{}",
        plan::text::render(&replan, plan::text::Color::Never)
    );

    // In the emulator: the new subnet exists, the old one is gone, the zone's NAT gateway
    // is in the new subnet, and there are still exactly three.
    let ec2 = aws_sdk_ec2::Client::new(&common::moto::sdk_config());
    let subnets = ec2
        .describe_subnets()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    let cidrs: Vec<&str> = subnets
        .subnets()
        .iter()
        .filter_map(|subnet| subnet.cidr_block())
        .collect();
    assert!(cidrs.contains(&NEW_CIDR), "{cidrs:?}");
    assert!(!cidrs.contains(&old_cidr.as_str()), "{cidrs:?}");
    assert_eq!(nat_gateways_of(&ec2, name).await.len(), 3);
    let new_subnet = subnets
        .subnets()
        .iter()
        .find(|subnet| subnet.cidr_block() == Some(NEW_CIDR))
        .and_then(|subnet| subnet.subnet_id())
        .unwrap();
    let nats = ec2
        .describe_nat_gateways()
        .filter(
            Filter::builder()
                .name("subnet-id")
                .values(new_subnet)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let live = nats
        .nat_gateways()
        .iter()
        .filter(|nat| {
            nat.state()
                .is_some_and(|state| state.as_str() == "available")
        })
        .count();
    assert_eq!(live, 1, "{nats:?}");
    let records = memory.records();
    let recorded_subnet = records
        .iter()
        .find(|record| {
            record.address.kind == ResourceKind::Subnet
                && record.address.name.contains("public")
                && record.address.name.contains("eu-west-1a")
        })
        .unwrap();
    assert_eq!(recorded_subnet.outputs["id"], new_subnet);

    let (report, _) = destroy(name, &memory).await;
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
}
