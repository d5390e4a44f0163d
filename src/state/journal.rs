//! The journal of a day-two operation (a restore, later an upgrade): its steps in order and
//! which are done, kept in the state store and written after each step, so a rerun after a
//! crash, a kill or a failed gate continues at the first unfinished step and never repeats a
//! finished one. Written only under the cluster lock.

use serde::{Deserialize, Serialize};

use super::{StateError, StateStore, layout};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "the journal {key} cannot be read ({problem}); move it aside to start the operation again"
    )]
    Corrupt { key: String, problem: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    /// `restore-etcd`, …: also the journal's name in the store.
    pub operation: String,
    /// What the operation works from (the backup a restore restores).
    pub subject: String,
    /// Unique to this operation (it names what the operation leaves behind, such as the data
    /// it moved aside).
    pub id: String,
    pub started_at: String,
    /// Every step, in order.
    pub steps: Vec<String>,
    /// The steps finished, in the order they finished.
    pub done: Vec<String>,
    /// What the operation brings the cluster to, when that is more than `subject` says (an
    /// upgrade's new spec, as YAML): a rerun continues towards it, whatever it is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl Journal {
    pub fn new(
        operation: &str,
        subject: &str,
        id: &str,
        started_at: &str,
        steps: Vec<String>,
    ) -> Self {
        Self {
            operation: operation.to_string(),
            subject: subject.to_string(),
            id: id.to_string(),
            started_at: started_at.to_string(),
            steps,
            done: Vec::new(),
            target: None,
        }
    }

    /// The journal of `operation`, if one was ever written (finished or not).
    pub async fn load(
        store: &impl StateStore,
        cluster: &str,
        operation: &str,
    ) -> Result<Option<Self>, JournalError> {
        let key = layout::operation_journal_key(cluster, operation);
        let Some(bytes) = store.read(&key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| JournalError::Corrupt {
                key,
                problem: error.to_string(),
            })
    }

    pub fn is_done(&self, step: &str) -> bool {
        self.done.iter().any(|done| done == step)
    }

    pub fn finished(&self) -> bool {
        self.steps.iter().all(|step| self.is_done(step))
    }

    /// The steps not done yet, in order.
    pub fn remaining(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|step| !self.is_done(step))
            .map(String::as_str)
            .collect()
    }

    /// Adds `added` right after `step` (a step whose work is only known once it runs: the
    /// worker batches of an upgrade's node-group step, planned from the instances then);
    /// those already listed are not added twice.
    pub fn insert_after(&mut self, step: &str, added: Vec<String>) {
        let at = self
            .steps
            .iter()
            .position(|listed| listed == step)
            .map_or(self.steps.len(), |position| position + 1);
        let added: Vec<String> = added
            .into_iter()
            .filter(|new| !self.steps.contains(new))
            .collect();
        self.steps.splice(at..at, added);
    }

    /// Writes the journal as it is (the operation is starting).
    pub async fn save(&self, store: &impl StateStore, cluster: &str) -> Result<(), JournalError> {
        let key = layout::operation_journal_key(cluster, &self.operation);
        // A journal of plain fields always serialises.
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        store.write(&key, &bytes).await?;
        Ok(())
    }

    /// Records `step` as done, in the store before anything else happens.
    pub async fn record(
        &mut self,
        store: &impl StateStore,
        cluster: &str,
        step: &str,
    ) -> Result<(), JournalError> {
        if !self.is_done(step) {
            self.done.push(step.to_string());
        }
        self.save(store, cluster).await
    }
}

#[cfg(test)]
mod tests {
    use super::Journal;

    #[test]
    fn steps_planned_later_go_right_after_their_step_once() {
        let mut journal = Journal::new(
            "upgrade",
            "1.34 -> 1.35",
            "id",
            "now",
            vec!["member a".into(), "node groups".into(), "store".into()],
        );
        journal.insert_after("node groups", vec!["batch 1".into(), "batch 2".into()]);
        journal.insert_after("node groups", vec!["batch 2".into()]);
        assert_eq!(
            journal.steps,
            ["member a", "node groups", "batch 1", "batch 2", "store"]
        );
        assert!(!journal.finished());
    }

    #[test]
    fn remaining_steps_keep_their_order() {
        let mut journal = Journal::new(
            "restore-etcd",
            "b1",
            "r1",
            "now",
            ["a", "b", "c"].map(String::from).to_vec(),
        );
        journal.done.push("b".to_string());
        assert_eq!(journal.remaining(), ["a", "c"]);
        assert!(!journal.finished());
        journal.done.extend(["a".to_string(), "c".to_string()]);
        assert!(journal.finished());
    }
}
