//! Connecting to a bare-host cluster's hosts for a day-two operation (backup, restore,
//! validate): every host at once, unreachable ones named apart from refusals (a changed host
//! key or refused authentication stops the operation).

use futures_util::future::join_all;

use crate::spec::Cluster;
use crate::ssh::Session;

use super::HostsError;
use super::inventory::{self, HostEntry};

/// The hosts that answered, control plane first in spec order, and those that did not.
pub struct Connected {
    pub sessions: Vec<(HostEntry, Session)>,
    /// Host name and why it could not be reached.
    pub unreachable: Vec<(String, String)>,
}

impl Connected {
    /// The session of host `name`.
    pub fn session(&self, name: &str) -> Option<&Session> {
        self.sessions
            .iter()
            .find(|(entry, _)| entry.name() == name)
            .map(|(_, session)| session)
    }

    pub async fn close(self) {
        join_all(
            self.sessions
                .into_iter()
                .map(|(_, session)| session.close()),
        )
        .await;
    }
}

/// The control-plane hosts.
pub async fn control_plane(
    cluster: &Cluster,
    accept_new_host_keys: bool,
) -> Result<Connected, HostsError> {
    connect(cluster, accept_new_host_keys, HostEntry::is_control_plane).await
}

/// Every host of the spec.
pub async fn every_host(
    cluster: &Cluster,
    accept_new_host_keys: bool,
) -> Result<Connected, HostsError> {
    connect(cluster, accept_new_host_keys, |_| true).await
}

async fn connect(
    cluster: &Cluster,
    accept_new_host_keys: bool,
    which: impl Fn(&HostEntry) -> bool,
) -> Result<Connected, HostsError> {
    let options = inventory::connect_options(cluster, accept_new_host_keys)?;
    let entries: Vec<HostEntry> = inventory::hosts(cluster)
        .into_iter()
        .filter(|entry| which(entry))
        .collect();
    let attempts = join_all(
        entries
            .iter()
            .map(|entry| Session::connect(&entry.target, &options)),
    )
    .await;
    let mut connected = Connected {
        sessions: Vec::new(),
        unreachable: Vec::new(),
    };
    let mut refused = Vec::new();
    for (entry, attempt) in entries.into_iter().zip(attempts) {
        match attempt {
            Ok(session) => connected.sessions.push((entry, session)),
            Err(error) if error.is_unreachable() => connected
                .unreachable
                .push((entry.name().to_string(), error.to_string())),
            Err(error) => refused.push(error.to_string()),
        }
    }
    if !refused.is_empty() {
        connected.close().await;
        return Err(HostsError::Hosts(refused));
    }
    Ok(connected)
}
