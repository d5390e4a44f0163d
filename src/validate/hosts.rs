//! Validating a bare-host cluster over SSH: every host reachable with its services running,
//! and etcd as etcd itself reports it: the members the spec names and no other, each
//! answering, one cluster ID, a leader, no alarms, and every member caught up with the
//! leader's raft log.

use futures_util::future::join_all;

use crate::bootstrap::etcd::EtcdMember;
use crate::hosts::connect::Connected;
use crate::hosts::{HostsError, etcd};
use crate::spec::Cluster;

use super::{Area, Report};

/// How far (raft entries) a member may trail the leader and still count as caught up: a
/// busy cluster's members differ by a few entries at any instant.
pub const CAUGHT_UP_WITHIN: u64 = 1000;

pub async fn validate(cluster: &Cluster, hosts: &Connected) -> Result<Report, HostsError> {
    let name = &cluster.metadata.name;
    let mut report = Report::default();
    for (host, why) in &hosts.unreachable {
        report.find(
            Area::Host,
            host,
            format!("cannot be reached over SSH ({why})"),
            format!("bring {host} back; then `rafter update cluster {name} --yes` repairs what it missed"),
        );
    }
    services(hosts, &mut report).await?;
    let members = crate::bootstrap::control_plane_members(cluster)?;
    etcd_health(name, &members, hosts, &mut report).await?;
    Ok(report)
}

/// The units each host runs, active.
async fn services(hosts: &Connected, report: &mut Report) -> Result<(), HostsError> {
    let checks = join_all(hosts.sessions.iter().map(|(entry, session)| async move {
        let units: &[&str] = if entry.is_control_plane() {
            &["containerd", "kubelet", "etcd"]
        } else {
            &["containerd", "kubelet"]
        };
        let output = session
            .run_as_root(&format!("systemctl is-active {}", units.join(" ")), b"")
            .await?;
        let states: Vec<String> = output.stdout_text().lines().map(str::to_string).collect();
        let inactive: Vec<(String, String)> = units
            .iter()
            .zip(
                states
                    .iter()
                    .map(String::as_str)
                    .chain(std::iter::repeat("unknown")),
            )
            .filter(|(_, state)| *state != "active")
            .map(|(unit, state)| (unit.to_string(), state.to_string()))
            .collect();
        Ok::<_, HostsError>((entry.name().to_string(), units.len(), inactive))
    }))
    .await;
    for check in checks {
        let (host, count, inactive) = check?;
        if inactive.is_empty() {
            report.pass(format!("{host}: {count} services active"));
        }
        for (unit, state) in inactive {
            report.find(
                Area::Host,
                &host,
                format!("{unit} is {state}"),
                format!("on {host}: `journalctl -u {unit}` says why; `systemctl restart {unit}`"),
            );
        }
    }
    Ok(())
}

async fn etcd_health(
    name: &str,
    members: &[EtcdMember],
    hosts: &Connected,
    report: &mut Report,
) -> Result<(), HostsError> {
    // Asked from the first control-plane host that answers SSH.
    let Some(session) = members
        .iter()
        .find_map(|member| hosts.session(&member.name))
    else {
        report.find(
            Area::Etcd,
            "etcd",
            "no control-plane host can be reached to ask etcd",
            "bring a control-plane host back",
        );
        return Ok(());
    };
    let listed = match etcd::members(session).await {
        Ok(listed) => listed,
        Err(error) => {
            report.find(
                Area::Etcd,
                "etcd",
                format!("lists no members: {error}"),
                format!("etcd has no quorum: start the members that are down; if a majority is lost, `rafter restore etcd {name} --from BACKUP`"),
            );
            return Ok(());
        }
    };
    let mut membership_ok = true;
    for member in members {
        match listed.iter().find(|listed| {
            listed.name == member.name || listed.peer_urls.contains(&member.peer_url())
        }) {
            None => {
                membership_ok = false;
                report.find(
                    Area::Etcd,
                    &member.name,
                    "is not a member of etcd",
                    format!("`rafter update cluster {name} --yes` adds it"),
                );
            }
            Some(listed) if listed.name.is_empty() => {
                membership_ok = false;
                report.find(
                    Area::Etcd,
                    &member.name,
                    "was added to etcd but never started",
                    format!("`rafter update cluster {name} --yes` starts it"),
                );
            }
            Some(listed) if !listed.peer_urls.contains(&member.peer_url()) => {
                membership_ok = false;
                report.find(
                    Area::Etcd,
                    &member.name,
                    format!(
                        "is a member at {}, the spec says {}",
                        listed.peer_urls.join(","),
                        member.peer_url()
                    ),
                    format!("`rafter update cluster {name} --yes` replaces it"),
                );
            }
            Some(_) => {}
        }
    }
    for extra in listed.iter().filter(|listed| {
        !members.iter().any(|member| {
            member.name == listed.name || listed.peer_urls.contains(&member.peer_url())
        })
    }) {
        membership_ok = false;
        report.find(
            Area::Etcd,
            if extra.name.is_empty() {
                format!("{:x}", extra.id)
            } else {
                extra.name.clone()
            },
            "is a member of etcd the spec does not name",
            format!("`rafter update cluster {name} --yes` removes it"),
        );
    }
    if membership_ok {
        report.pass(format!(
            "etcd: the {} members the spec names",
            members.len()
        ));
    }

    let statuses =
        join_all(members.iter().map(|member| async move {
            etcd::endpoint_status(session, &member.client_url()).await
        }))
        .await;
    let mut answering = Vec::new();
    for (member, status) in members.iter().zip(statuses) {
        match status? {
            Ok(status) => answering.push((member, status)),
            Err(said) => report.find(
                Area::Etcd,
                &member.name,
                format!("does not answer ({said})"),
                format!("on {}: `systemctl status etcd`", member.name),
            ),
        }
    }
    let cluster_ids: std::collections::BTreeSet<u64> = answering
        .iter()
        .map(|(_, status)| status.header.cluster_id)
        .collect();
    if cluster_ids.len() > 1 {
        report.find(
            Area::Etcd,
            "etcd",
            format!(
                "members belong to {} different clusters (split brain)",
                cluster_ids.len()
            ),
            format!(
                "restore every member from one backup: `rafter restore etcd {name} --from BACKUP`"
            ),
        );
    }
    let leaders: std::collections::BTreeSet<u64> =
        answering.iter().map(|(_, status)| status.leader).collect();
    let leader_index = answering
        .iter()
        .find(|(_, status)| status.leads())
        .map(|(_, status)| status.raft_index);
    match leader_index {
        None => report.find(
            Area::Etcd,
            "etcd",
            "no member leads",
            "a majority of members must be up: start the members that are down",
        ),
        Some(leader_index) => {
            if leaders.len() > 1 {
                report.find(
                    Area::Etcd,
                    "etcd",
                    "members disagree on the leader",
                    "wait for the election to settle; `--wait` does",
                );
            }
            for (member, status) in &answering {
                let behind = leader_index.saturating_sub(status.raft_applied_index);
                if behind > CAUGHT_UP_WITHIN {
                    report.find(
                        Area::Etcd,
                        &member.name,
                        format!("is {behind} raft entries behind the leader"),
                        "wait for it to catch up; `--wait` does",
                    );
                }
                for error in &status.errors {
                    report.find(
                        Area::Etcd,
                        &member.name,
                        format!("reports: {error}"),
                        "see etcd's log on the member",
                    );
                }
            }
        }
    }
    match etcd::alarms(session).await {
        Ok(alarms) if alarms.is_empty() => {}
        Ok(alarms) => {
            for alarm in alarms {
                report.find(Area::Etcd, "etcd", format!("alarm raised: {alarm}"), "NOSPACE: compact and defragment, then `etcdctl alarm disarm`; CORRUPT: restore from a backup");
            }
        }
        Err(error) => report.find(
            Area::Etcd,
            "etcd",
            format!("its alarms cannot be listed: {error}"),
            "see etcd's log",
        ),
    }
    if answering.len() == members.len()
        && cluster_ids.len() == 1
        && report
            .findings
            .iter()
            .all(|finding| finding.area != Area::Etcd)
    {
        report.pass(format!(
            "etcd: {} members healthy, one cluster, caught up, no alarms",
            members.len()
        ));
    }
    Ok(())
}
