//! The etcd membership plan of a bare-host cluster, as a pure function ([`plan`]): from the
//! members the spec wants, the members etcd lists now and what is seen of each control-plane
//! host, which members are removed and which hosts join (in order), or a refusal when a
//! change could lose quorum or data. [`crate::hosts::apply`] gathers that evidence over SSH
//! and carries the plan out; the rules live here, with their table tests.

use crate::bootstrap::NodeRole;
use crate::bootstrap::etcd::{EtcdMember, InitialState};

use super::etcd::Member;

/// What is seen of one control-plane host of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSeen {
    pub name: String,
    /// Whether rafter could connect to it (an unreachable host is left as it is).
    pub reachable: bool,
    /// It has etcd data (`/var/lib/etcd/member`).
    pub etcd_data: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error(
        "a new etcd cluster needs every control-plane host, and {} cannot be reached; nothing was changed",
        .unreachable.join(", ")
    )]
    NewClusterIncomplete { unreachable: Vec<String> },
    #[error(
        "{member} has etcd data but is not a member of the cluster (an earlier membership); rafter will not delete it: move /var/lib/etcd away on {member} after checking, then rerun"
    )]
    DataOfAnotherMembership { member: String },
    #[error(
        "only {up} of etcd's {total} members are up{}: changing anything could lose quorum; bring them back first. Nothing was changed",
        if .unreachable.is_empty() { String::new() } else { format!(" ({} cannot be reached)", .unreachable.join(", ")) }
    )]
    Quorum {
        up: usize,
        total: usize,
        unreachable: Vec<String>,
    },
}

/// etcd's membership: who forms or joins, who leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The control-plane hosts of the spec, as members.
    pub wanted: Vec<EtcdMember>,
    /// The members etcd has now (`None`: no cluster yet, a new one is formed).
    pub current: Option<Vec<Member>>,
    /// Members to remove: in etcd but no longer in the spec, or listed without their data.
    pub remove: Vec<Member>,
    /// Hosts that join an existing cluster, in order.
    pub join: Vec<EtcdMember>,
}

/// Whether `known` (a member etcd lists) is `member` (by name, or by peer URL for a member
/// added but never started, which has no name yet).
fn is(known: &Member, member: &EtcdMember) -> bool {
    known.name == member.name || known.peer_urls.contains(&member.peer_url())
}

/// The membership changes that take etcd to `wanted`. `listed` is what a running member
/// answered (`None`: no member runs). With no member running: no data anywhere forms a new
/// cluster (every host must be reachable); hosts with data are started again as the members
/// they are, and the others join them. With a cluster: a spec host with data that etcd lists
/// stays; one etcd lists but whose data is gone (a reinstalled host) is removed and added
/// again, as etcd requires; one never started or not listed joins; a listed member the spec
/// no longer has is removed. Unreachable hosts are left as they are. Refused: a host with
/// data etcd does not list (it would have to be deleted), and any change while members known
/// to be down leave no majority.
pub fn plan(
    wanted: Vec<EtcdMember>,
    listed: Option<Vec<Member>>,
    hosts: &[HostSeen],
) -> Result<Membership, MembershipError> {
    let seen = |name: &str| hosts.iter().find(|host| host.name == name);
    let unreachable: Vec<String> = wanted
        .iter()
        .filter(|member| seen(&member.name).is_none_or(|host| !host.reachable))
        .map(|member| member.name.clone())
        .collect();
    let has_data = |name: &str| seen(name).is_some_and(|host| host.reachable && host.etcd_data);
    let current = match listed {
        Some(listed) => listed,
        None => {
            let with_data: Vec<Member> = wanted
                .iter()
                .filter(|member| has_data(&member.name))
                .map(|member| Member {
                    id: 0,
                    name: member.name.clone(),
                    peer_urls: vec![member.peer_url()],
                })
                .collect();
            if with_data.is_empty() {
                if !unreachable.is_empty() {
                    return Err(MembershipError::NewClusterIncomplete { unreachable });
                }
                return Ok(Membership {
                    wanted,
                    current: None,
                    remove: Vec::new(),
                    join: Vec::new(),
                });
            }
            with_data
        }
    };
    let mut remove: Vec<Member> = current
        .iter()
        .filter(|known| !wanted.iter().any(|member| is(known, member)))
        .cloned()
        .collect();
    let mut join = Vec::new();
    for member in &wanted {
        if unreachable.contains(&member.name) {
            continue;
        }
        let listed = current.iter().find(|known| is(known, member));
        match (listed, has_data(&member.name)) {
            (Some(_), true) => {}
            (Some(known), false) => {
                if !known.name.is_empty() {
                    remove.push(known.clone());
                }
                join.push(member.clone());
            }
            (None, false) => join.push(member.clone()),
            (None, true) => {
                return Err(MembershipError::DataOfAnotherMembership {
                    member: member.name.clone(),
                });
            }
        }
    }
    // Quorum: members known to be down (their host unreachable, or reachable without its
    // data) must leave a majority. Members leaving the spec count as up: etcd itself refuses a
    // removal it cannot commit.
    let down = current
        .iter()
        .filter(|known| {
            unreachable.contains(&known.name)
                || seen(&known.name).is_some_and(|host| host.reachable && !host.etcd_data)
        })
        .count();
    let up = current.len() - down;
    if up * 2 <= current.len() {
        return Err(MembershipError::Quorum {
            up,
            total: current.len(),
            unreachable,
        });
    }
    Ok(Membership {
        wanted,
        current: Some(current),
        remove,
        join,
    })
}

impl Membership {
    pub fn is_first_control_plane(&self, name: &str) -> bool {
        self.wanted
            .first()
            .is_some_and(|member| member.name == name)
    }

    /// The role control-plane host `name` is rendered with: a new cluster's members all start
    /// from the full list; a joining member from the members it will find plus itself; an
    /// established member (it has data) gets no first-start file. `None`: not a member.
    pub fn control_plane_role(&self, name: &str) -> Option<NodeRole> {
        let index = self.wanted.iter().position(|member| member.name == name)?;
        if self.current.is_none() {
            return Some(NodeRole::ControlPlane {
                members: self.wanted.clone(),
                index,
                initial_state: InitialState::New,
                discovery: None,
            });
        }
        let Some(position) = self.join.iter().position(|member| member.name == name) else {
            return Some(NodeRole::ControlPlane {
                members: self.wanted.clone(),
                index,
                initial_state: InitialState::Established,
                discovery: None,
            });
        };
        // A joiner finds the members that stay and the joiners before it, and itself.
        let mut members: Vec<EtcdMember> = self
            .wanted
            .iter()
            .filter(|member| self.stays(member))
            .cloned()
            .collect();
        members.extend(self.join[..=position].iter().cloned());
        let index = members.len() - 1;
        Some(NodeRole::ControlPlane {
            members,
            index,
            initial_state: InitialState::Existing,
            discovery: None,
        })
    }

    /// A member of the spec that is in etcd now and neither leaves nor joins again.
    fn stays(&self, member: &EtcdMember) -> bool {
        let listed = self
            .current
            .as_ref()
            .is_some_and(|current| current.iter().any(|known| is(known, member)));
        listed && !self.join.iter().any(|joining| joining.name == member.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str) -> EtcdMember {
        let last = name.bytes().next().unwrap_or(b'a') - b'a' + 1;
        EtcdMember::at_ip(name, format!("10.0.0.{last}").parse().unwrap())
    }

    fn wanted(names: &[&str]) -> Vec<EtcdMember> {
        names.iter().map(|name| member(name)).collect()
    }

    fn listed(names: &[&str]) -> Option<Vec<Member>> {
        Some(
            names
                .iter()
                .enumerate()
                .map(|(i, name)| Member {
                    id: i as u64 + 1,
                    name: name.to_string(),
                    peer_urls: vec![member(name).peer_url()],
                })
                .collect(),
        )
    }

    /// Hosts from `spec`: `a` reachable with data, `a-` reachable without, `a?` unreachable.
    fn hosts(spec: &[&str]) -> Vec<HostSeen> {
        spec.iter()
            .map(|host| HostSeen {
                name: host.trim_end_matches(['-', '?']).to_string(),
                reachable: !host.ends_with('?'),
                etcd_data: !host.ends_with('-') && !host.ends_with('?'),
            })
            .collect()
    }

    fn names<'m>(members: impl IntoIterator<Item = &'m str>) -> Vec<&'m str> {
        members.into_iter().collect()
    }

    /// (the case, wanted, listed, hosts, removed, joining) for plans that succeed; `listed`
    /// `None` with `current` None expected when nothing has data.
    #[test]
    fn plans_for_every_case() {
        type Case<'c> = (
            &'c str,
            &'c [&'c str],
            Option<&'c [&'c str]>,
            &'c [&'c str],
            &'c [&'c str],
            &'c [&'c str],
        );
        let cases: &[Case] = &[
            (
                "steady",
                &["a", "b", "c"],
                Some(&["a", "b", "c"]),
                &["a", "b", "c"],
                &[],
                &[],
            ),
            (
                "a reinstalled member is removed and added again",
                &["a", "b", "c"],
                Some(&["a", "b", "c"]),
                &["a", "b-", "c"],
                &["b"],
                &["b"],
            ),
            (
                "a member the spec dropped is removed",
                &["a", "b", "c"],
                Some(&["a", "b", "c", "d"]),
                &["a", "b", "c"],
                &["d"],
                &[],
            ),
            (
                "new hosts join in the spec's order",
                &["a", "b", "c", "d", "e"],
                Some(&["a", "b", "c"]),
                &["a", "b", "c", "d-", "e-"],
                &[],
                &["d", "e"],
            ),
            (
                "an unreachable member is left as it is",
                &["a", "b", "c"],
                Some(&["a", "b", "c"]),
                &["a", "b", "c?"],
                &[],
                &[],
            ),
            (
                "no member runs: those with data start again, the others join",
                &["a", "b", "c"],
                None,
                &["a", "b", "c-"],
                &[],
                &["c"],
            ),
            (
                "no member runs, one unreachable: the one with data starts, the new one joins",
                &["a", "b", "c"],
                None,
                &["a", "b?", "c-"],
                &[],
                &["c"],
            ),
        ];
        for (case, spec, current, seen, removed, joining) in cases {
            let planned = plan(wanted(spec), current.and_then(listed), &hosts(seen))
                .unwrap_or_else(|error| panic!("{case}: {error}"));
            assert_eq!(
                names(planned.remove.iter().map(|m| m.name.as_str())),
                removed.to_vec(),
                "{case}: removed"
            );
            assert_eq!(
                names(planned.join.iter().map(|m| m.name.as_str())),
                joining.to_vec(),
                "{case}: joining"
            );
            assert!(planned.current.is_some(), "{case}");
        }
    }

    #[test]
    fn a_new_cluster_needs_every_host_and_starts_them_all_from_the_full_list() {
        let planned = plan(wanted(&["a", "b", "c"]), None, &hosts(&["a-", "b-", "c-"])).unwrap();
        assert_eq!(planned.current, None);
        for (index, name) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(
                planned.control_plane_role(name),
                Some(NodeRole::ControlPlane {
                    members: wanted(&["a", "b", "c"]),
                    index,
                    initial_state: InitialState::New,
                    discovery: None,
                })
            );
        }
        assert!(planned.is_first_control_plane("a") && !planned.is_first_control_plane("b"));
        assert_eq!(
            plan(wanted(&["a", "b", "c"]), None, &hosts(&["a-", "b?", "c-"])),
            Err(MembershipError::NewClusterIncomplete {
                unreachable: vec!["b".into()]
            })
        );
    }

    #[test]
    fn refusals_name_what_would_be_lost() {
        // Two of three members down (one unreachable, one without data): no majority.
        let refused = plan(
            wanted(&["a", "b", "c"]),
            listed(&["a", "b", "c"]),
            &hosts(&["a", "b?", "c-"]),
        )
        .unwrap_err();
        assert_eq!(
            refused,
            MembershipError::Quorum {
                up: 1,
                total: 3,
                unreachable: vec!["b".into()]
            }
        );
        assert!(
            refused
                .to_string()
                .contains("only 1 of etcd's 3 members are up (b cannot be reached)")
        );
        // Data etcd does not list would have to be deleted: never.
        assert_eq!(
            plan(
                wanted(&["a", "b", "c"]),
                listed(&["a", "b"]),
                &hosts(&["a", "b", "c"])
            ),
            Err(MembershipError::DataOfAnotherMembership { member: "c".into() })
        );
    }

    #[test]
    fn a_member_added_but_never_started_is_known_by_its_peer_url() {
        let mut current = listed(&["a", "b", "c"]).unwrap();
        current[2].name = String::new();
        let planned = plan(
            wanted(&["a", "b", "c"]),
            Some(current),
            &hosts(&["a", "b", "c-"]),
        )
        .unwrap();
        // Not removed (it has no name to remove by, and joining adds it as it is), but joins.
        assert!(planned.remove.is_empty());
        assert_eq!(names(planned.join.iter().map(|m| m.name.as_str())), ["c"]);
    }

    #[test]
    fn a_joiner_finds_the_members_that_stay_and_the_joiners_before_it() {
        let planned = plan(
            wanted(&["a", "b", "c", "d", "e"]),
            listed(&["a", "b", "c"]),
            &hosts(&["a", "b-", "c", "d-", "e-"]),
        )
        .unwrap();
        assert_eq!(
            names(planned.join.iter().map(|m| m.name.as_str())),
            ["b", "d", "e"]
        );
        let role = |name| match planned.control_plane_role(name) {
            Some(NodeRole::ControlPlane {
                members,
                index,
                initial_state,
                ..
            }) => (
                members.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
                index,
                initial_state,
            ),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(
            role("a"),
            (
                vec!["a".into(), "b".into(), "c".into(), "d".into(), "e".into()],
                0,
                InitialState::Established
            )
        );
        assert_eq!(
            role("b"),
            (
                vec!["a".into(), "c".into(), "b".into()],
                2,
                InitialState::Existing
            )
        );
        assert_eq!(
            role("e"),
            (
                vec!["a".into(), "c".into(), "b".into(), "d".into(), "e".into()],
                4,
                InitialState::Existing
            )
        );
        assert_eq!(planned.control_plane_role("z"), None);
    }
}
