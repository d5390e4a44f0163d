//! Host key checking against a known_hosts file, as OpenSSH does it.
//!
//! Strict by default: a host missing from the file is refused, and so is one whose key
//! differs from the recorded one (always, whatever the policy). Trust-on-first-use is an
//! explicit opt-in that records the key of a host seen for the first time.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::keys::{HashAlg, PublicKeyOrCertificate, known_hosts};

use super::SshError;

/// What to do with a host that has no entry in known_hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Refuse it (OpenSSH `StrictHostKeyChecking yes`).
    #[default]
    Strict,
    /// Record its key and go on (OpenSSH `StrictHostKeyChecking accept-new`).
    AcceptNew,
}

/// The russh handler of one connection: checks the server key, and keeps the reason of a
/// refusal for the error the caller reports.
pub(super) struct HostKeyCheck {
    pub host: String,
    pub address: String,
    pub port: u16,
    pub known_hosts: PathBuf,
    pub policy: HostKeyPolicy,
    pub refusal: Arc<Mutex<Option<SshError>>>,
}

impl HostKeyCheck {
    fn refuse(&self, error: SshError) -> Result<bool, russh::Error> {
        if let Ok(mut slot) = self.refusal.lock() {
            *slot = Some(error);
        }
        Ok(false)
    }

    fn verdict(&self, key: &russh::keys::PublicKey) -> Result<bool, russh::Error> {
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        match known_hosts::check_known_hosts_path(&self.address, self.port, key, &self.known_hosts)
        {
            Ok(true) => Ok(true),
            Err(russh::keys::Error::KeyChanged { line }) => {
                self.refuse(SshError::HostKeyMismatch {
                    host: self.host.clone(),
                    fingerprint,
                    known_hosts: self.known_hosts.clone(),
                    line: file_line(&self.known_hosts, line),
                })
            }
            Err(other) => self.refuse(SshError::KnownHosts {
                path: self.known_hosts.clone(),
                reason: other.to_string(),
            }),
            Ok(false) => match self.policy {
                HostKeyPolicy::Strict => self.refuse(SshError::UnknownHostKey {
                    host: self.host.clone(),
                    fingerprint,
                    known_hosts: self.known_hosts.clone(),
                }),
                HostKeyPolicy::AcceptNew => {
                    match record(&self.known_hosts, &self.address, self.port, key) {
                        Ok(()) => Ok(true),
                        Err(error) => self.refuse(SshError::KnownHosts {
                            path: self.known_hosts.clone(),
                            reason: format!("cannot record the key of {}: {error}", self.host),
                        }),
                    }
                }
            },
        }
    }
}

/// russh numbers known_hosts entries without counting comment lines: the file's own line
/// number of entry `entry`, for a message the operator can act on.
fn file_line(path: &Path, entry: usize) -> usize {
    let Ok(text) = std::fs::read_to_string(path) else {
        return entry;
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.starts_with('#'))
        .nth(entry.saturating_sub(1))
        .map_or(entry, |(index, _)| index + 1)
}

/// Appends `address`'s key to the known_hosts file at `path` in OpenSSH's format, making the
/// file (and its directory) if needed.
fn record(
    path: &Path,
    address: &str,
    port: u16,
    key: &russh::keys::PublicKey,
) -> Result<(), String> {
    let host = if port == 22 {
        address.to_string()
    } else {
        format!("[{address}]:{port}")
    };
    let key = key.to_openssh().map_err(|error| error.to_string())?;
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let separator = if existing.is_empty() || existing.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|error| error.to_string())?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|error| error.to_string())?;
    writeln!(file, "{separator}{host} {key}").map_err(|error| error.to_string())
}

impl russh::client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.verdict(key),
            PublicKeyOrCertificate::Certificate(certificate) => {
                let key = russh::keys::PublicKey::from(certificate.public_key().clone());
                self.verdict(&key)
            }
        }
    }
}
