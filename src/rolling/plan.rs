//! Which instances a rolling update replaces, in what order: pure, from what Auto Scaling
//! says of each group.

/// One auto-scaling group as Auto Scaling describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// The group's name in AWS.
    pub group: String,
    /// The etcd member the group holds, for a control-plane member's group.
    pub member: Option<String>,
    /// The launch template version new instances get (what rafter set on the group).
    pub version: Option<String>,
    pub instances: Vec<InstanceState>,
}

/// One instance of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceState {
    pub id: String,
    /// The launch template version it was launched from.
    pub version: Option<String>,
}

/// One instance to replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub group: String,
    pub member: Option<String>,
    pub instance: String,
    /// Why, in a few words.
    pub reason: String,
}

impl Replacement {
    /// The step's name in the journal: stable across reruns.
    pub fn key(&self) -> String {
        match &self.member {
            Some(member) => format!("replace member {member} ({})", self.instance),
            None => format!("replace {} in {}", self.instance, self.group),
        }
    }
}

/// The replacements: every instance whose launch template version differs from its group's
/// (or every instance, `force`), in the groups `selected` names (all when empty), control-plane
/// members first in the order given, then the other groups.
pub fn plan(groups: &[GroupState], selected: &[String], force: bool) -> Vec<Replacement> {
    let chosen = |group: &GroupState| {
        selected.is_empty()
            || selected
                .iter()
                .any(|name| name == &group.group || group.member.as_deref() == Some(name.as_str()))
    };
    let mut ordered: Vec<&GroupState> = groups.iter().filter(|group| chosen(group)).collect();
    // Stable: members keep their order, as do the other groups.
    ordered.sort_by_key(|group| group.member.is_none());
    ordered
        .into_iter()
        .flat_map(|group| {
            group.instances.iter().filter_map(move |instance| {
                let reason = if instance.version != group.version {
                    format!(
                        "launch template version {} -> {}",
                        instance.version.as_deref().unwrap_or("unknown"),
                        group.version.as_deref().unwrap_or("unknown")
                    )
                } else if force {
                    "forced".to_string()
                } else {
                    return None;
                };
                Some(Replacement {
                    group: group.group.clone(),
                    member: group.member.clone(),
                    instance: instance.id.clone(),
                    reason,
                })
            })
        })
        .collect()
}

/// The replacement a journal's step `key` names (a member's, of a group in `groups`): how a
/// rerun continues the plan it started with, whatever the instances are now.
pub fn from_key(key: &str, groups: &[GroupState]) -> Option<Replacement> {
    let (member, instance) = key
        .strip_prefix("replace member ")?
        .strip_suffix(')')?
        .split_once(" (")?;
    let group = groups
        .iter()
        .find(|group| group.member.as_deref() == Some(member))?;
    Some(Replacement {
        group: group.group.clone(),
        member: Some(member.to_string()),
        instance: instance.to_string(),
        reason: "planned by the unfinished rolling update".to_string(),
    })
}

/// The names `selected` asks for that match no group, to refuse them.
pub fn unknown_groups<'a>(groups: &[GroupState], selected: &'a [String]) -> Vec<&'a str> {
    selected
        .iter()
        .filter(|name| {
            !groups.iter().any(|group| {
                &group.group == *name || group.member.as_deref() == Some(name.as_str())
            })
        })
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(
        name: &str,
        member: Option<&str>,
        version: &str,
        instances: &[(&str, &str)],
    ) -> GroupState {
        GroupState {
            group: name.to_string(),
            member: member.map(str::to_string),
            version: Some(version.to_string()),
            instances: instances
                .iter()
                .map(|(id, version)| InstanceState {
                    id: id.to_string(),
                    version: Some(version.to_string()),
                })
                .collect(),
        }
    }

    fn groups() -> Vec<GroupState> {
        vec![
            group(
                "nodes-workers.c",
                None,
                "2",
                &[("i-w1", "1"), ("i-w2", "2")],
            ),
            group("control-plane-a.c", Some("a"), "3", &[("i-a", "3")]),
            group("control-plane-b.c", Some("b"), "4", &[("i-b", "3")]),
            group("control-plane-c.c", Some("c"), "3", &[("i-c", "2")]),
        ]
    }

    fn keys(replacements: &[Replacement]) -> Vec<String> {
        replacements.iter().map(Replacement::key).collect()
    }

    #[test]
    fn out_of_date_instances_go_members_first_in_order() {
        assert_eq!(
            keys(&plan(&groups(), &[], false)),
            [
                "replace member b (i-b)",
                "replace member c (i-c)",
                "replace i-w1 in nodes-workers.c"
            ]
        );
        assert_eq!(
            plan(&groups(), &[], false)[0].reason,
            "launch template version 3 -> 4"
        );
    }

    #[test]
    fn forced_replaces_every_instance() {
        let forced = plan(&groups(), &[], true);
        assert_eq!(forced.len(), 5);
        assert_eq!(forced[0].key(), "replace member a (i-a)");
        assert_eq!(forced[0].reason, "forced");
    }

    #[test]
    fn a_selection_by_member_or_group_name_limits_the_plan() {
        let selected = ["c".to_string(), "nodes-workers.c".to_string()];
        assert_eq!(
            keys(&plan(&groups(), &selected, true)),
            [
                "replace member c (i-c)",
                "replace i-w1 in nodes-workers.c",
                "replace i-w2 in nodes-workers.c"
            ]
        );
        let unknown = ["d".to_string(), "a".to_string()];
        assert_eq!(unknown_groups(&groups(), &unknown), ["d"]);
    }

    #[test]
    fn a_journal_step_names_its_replacement_again() {
        let planned = plan(&groups(), &[], true);
        let again = from_key(&planned[1].key(), &groups()).unwrap();
        assert_eq!(
            (again.group.as_str(), again.instance.as_str()),
            ("control-plane-b.c", "i-b")
        );
        assert_eq!(again.key(), planned[1].key());
        assert!(from_key("replace member z (i-z)", &groups()).is_none());
        assert!(from_key("replace i-w1 in nodes-workers.c", &groups()).is_none());
    }

    #[test]
    fn an_up_to_date_cluster_needs_nothing() {
        let current = vec![group("control-plane-a.c", Some("a"), "3", &[("i-a", "3")])];
        assert!(plan(&current, &[], false).is_empty());
    }
}
