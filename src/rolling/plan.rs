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
    /// The SHA-256 of the node bundle published for the group's instances, where known.
    pub bundle: Option<String>,
    pub instances: Vec<InstanceState>,
}

/// One instance of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceState {
    pub id: String,
    /// The launch template version it was launched from.
    pub version: Option<String>,
    /// The SHA-256 of the node bundle it runs, where it reported one.
    pub bundle: Option<String>,
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

/// The replacements: every instance whose launch template version differs from its group's,
/// or whose node bundle is no longer the one published (new certificates, a changed spec), or
/// every instance (`force`), in the groups `selected` names (all when empty), control-plane
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
                } else if let (Some(running), Some(published)) = (&instance.bundle, &group.bundle)
                    && running != published
                {
                    format!(
                        "node bundle changed since it booted ({} -> {})",
                        short(running),
                        short(published)
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

/// One step of a rolling update: a control-plane member alone, or up to `--max-surge`
/// instances of one node group, replaced together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub replacements: Vec<Replacement>,
}

impl Batch {
    /// The step's name in the journal: stable across reruns.
    pub fn key(&self) -> String {
        match self.replacements.as_slice() {
            [one] => one.key(),
            many => format!(
                "replace {} in {}",
                many.iter()
                    .map(|replacement| replacement.instance.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                many.first()
                    .map(|first| first.group.as_str())
                    .unwrap_or_default()
            ),
        }
    }

    /// The member the batch replaces, if it is a member's.
    pub fn member(&self) -> Option<&str> {
        self.replacements.first()?.member.as_deref()
    }
}

/// The replacements in steps: each member alone, a node group's instances `max_surge` (at
/// least one) at a time, in the order given.
pub fn batches(replacements: Vec<Replacement>, max_surge: usize) -> Vec<Batch> {
    let mut batches: Vec<Batch> = Vec::new();
    for replacement in replacements {
        let joins = batches.last().is_some_and(|last| {
            replacement.member.is_none()
                && last.member().is_none()
                && last.replacements[0].group == replacement.group
                && last.replacements.len() < max_surge.max(1)
        });
        match batches.last_mut() {
            Some(last) if joins => last.replacements.push(replacement),
            _ => batches.push(Batch {
                replacements: vec![replacement],
            }),
        }
    }
    batches
}

/// The step a journal's `key` names, of a group in `groups`: how a rerun continues the plan
/// it started with, whatever the instances are now.
pub fn batch_from_key(key: &str, groups: &[GroupState]) -> Option<Batch> {
    if let Some(member) = from_key(key, groups) {
        return Some(Batch {
            replacements: vec![member],
        });
    }
    let (instances, group) = key.strip_prefix("replace ")?.split_once(" in ")?;
    let group = groups
        .iter()
        .find(|candidate| candidate.group == group && candidate.member.is_none())?;
    Some(Batch {
        replacements: instances
            .split(", ")
            .map(|instance| Replacement {
                group: group.group.clone(),
                member: None,
                instance: instance.to_string(),
                reason: "planned by the unfinished rolling update".to_string(),
            })
            .collect(),
    })
}

/// The first 12 hex digits of a digest, as a reason shows it.
fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
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
            bundle: None,
            instances: instances
                .iter()
                .map(|(id, version)| InstanceState {
                    id: id.to_string(),
                    version: Some(version.to_string()),
                    bundle: None,
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
    fn an_instance_running_another_bundle_than_the_published_one_is_replaced() {
        let mut groups = groups();
        groups[1].bundle = Some("b".repeat(64));
        groups[1].instances[0].bundle = Some("a".repeat(64));
        // Unknown on either side (no report yet, nothing published): not a reason.
        groups[3].instances[0].version = Some("3".into());
        groups[3].bundle = Some("b".repeat(64));
        let planned = plan(&groups, &[], false);
        assert_eq!(
            keys(&planned),
            [
                "replace member a (i-a)",
                "replace member b (i-b)",
                "replace i-w1 in nodes-workers.c"
            ]
        );
        assert_eq!(
            planned[0].reason,
            "node bundle changed since it booted (aaaaaaaaaaaa -> bbbbbbbbbbbb)"
        );
        groups[1].instances[0].bundle = Some("b".repeat(64));
        assert_eq!(plan(&groups, &[], false).len(), 2);
    }

    #[test]
    fn members_go_alone_and_a_node_groups_instances_by_the_surge() {
        let mut groups = groups();
        groups.push(group(
            "nodes-big.c",
            None,
            "2",
            &[("i-x1", "1"), ("i-x2", "1"), ("i-x3", "1")],
        ));
        let steps = batches(plan(&groups, &[], true), 2);
        let keys: Vec<String> = steps.iter().map(Batch::key).collect();
        assert_eq!(
            keys,
            [
                "replace member a (i-a)",
                "replace member b (i-b)",
                "replace member c (i-c)",
                "replace i-w1, i-w2 in nodes-workers.c",
                "replace i-x1, i-x2 in nodes-big.c",
                "replace i-x3 in nodes-big.c"
            ]
        );
        for step in &steps {
            let again = batch_from_key(&step.key(), &groups).unwrap();
            assert_eq!(again.key(), step.key());
            assert_eq!(again.member(), step.member());
        }
        assert_eq!(batches(plan(&groups, &[], true), 0).len(), 8);
        assert!(batch_from_key("replace i-q in nodes-gone.c", &groups).is_none());
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
