//! `validate cluster`: whether a cluster is healthy, read from the evidence its parts give
//! (etcd's own member list, status and alarms; systemd; the cloud's groups and targets; the
//! boot reports nodes write), never from the clock. Each check that fails is a [`Finding`]
//! naming what is wrong and what to do; [`Report::healthy`] is true when there is none.
//!
//! The same checks are what `--wait` polls and what day-two operations gate on.

pub mod aws;
pub mod hosts;
pub mod kubernetes;
pub mod member_reports;

use serde::Serialize;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Area {
    /// A machine: reachable, its services running, its boot finished.
    Host,
    Etcd,
    /// Cloud resources: groups at size, load-balancer targets healthy.
    Infrastructure,
    /// What the API server says: nodes registered and Ready, system pods running.
    Kubernetes,
}

impl Area {
    pub fn name(self) -> &'static str {
        match self {
            Area::Host => "host",
            Area::Etcd => "etcd",
            Area::Infrastructure => "infrastructure",
            Area::Kubernetes => "kubernetes",
        }
    }
}

/// One thing wrong, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub area: Area,
    /// The host, member, group or target it is about.
    pub subject: String,
    pub problem: String,
    pub fix: String,
}

/// What a validation looked at and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Each check that passed, in a few words.
    pub passed: Vec<String>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn healthy(&self) -> bool {
        self.findings.is_empty()
    }

    pub(crate) fn pass(&mut self, check: impl Into<String>) {
        self.passed.push(check.into());
    }

    pub(crate) fn find(
        &mut self,
        area: Area,
        subject: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.findings.push(Finding {
            area,
            subject: subject.into(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }
}
