//! Who holds a lock, precisely enough to tell whether that run is gone: user, host, the
//! machine's boot, the process id and when that process started.
//!
//! A run killed with SIGKILL (or a machine that lost power) leaves its lock behind. When the
//! lock was taken on this very machine, rafter can prove the holder is gone without waiting
//! for its lease: the machine booted since (`/proc/sys/kernel/random/boot_id` differs), no
//! process has that id any more, or the process with that id started at another moment than
//! the holder did (the id was reused). Anything less certain (another host, a record from an
//! older rafter without these fields, `/proc` unreadable) counts as alive.

use serde::{Deserialize, Serialize};

/// This process, as a lock records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Holder {
    pub user: String,
    pub host: String,
    /// The kernel's id of the current boot.
    pub boot_id: String,
    pub pid: u32,
    /// The process's start, in clock ticks after boot (`/proc/PID/stat`, field 22).
    pub started: u64,
}

impl Holder {
    /// The running process.
    pub fn this_process() -> Self {
        let pid = std::process::id();
        Self {
            user: std::env::var("USER").unwrap_or_else(|_| "unknown".to_string()),
            host: read_trimmed("/proc/sys/kernel/hostname")
                .unwrap_or_else(|| "unknown-host".to_string()),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
            pid,
            started: process_start(pid).unwrap_or(0),
        }
    }

    /// `user@host (pid N)`, for messages.
    pub fn describe(&self) -> String {
        format!("{}@{} (pid {})", self.user, self.host, self.pid)
    }

    /// Whether the process this names provably no longer runs, judged from `here` (the
    /// process asking, on its machine).
    pub fn gone_seen_from(&self, here: &Holder) -> Option<Gone> {
        let known = !self.host.is_empty()
            && self.host == here.host
            && !self.boot_id.is_empty()
            && !here.boot_id.is_empty()
            && self.pid != 0
            && self.started != 0;
        if !known {
            return None;
        }
        if self.boot_id != here.boot_id {
            return Some(Gone::Rebooted);
        }
        match process_start(self.pid) {
            None if !std::path::Path::new(&format!("/proc/{}", self.pid)).exists() => {
                Some(Gone::NoSuchProcess)
            }
            Some(started) if started != self.started => Some(Gone::PidReused),
            _ => None,
        }
    }
}

/// How a holder was proven gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    Rebooted,
    NoSuchProcess,
    PidReused,
}

impl std::fmt::Display for Gone {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Gone::Rebooted => "this machine has rebooted since it took the lock",
            Gone::NoSuchProcess => "no process with its id runs on this machine",
            Gone::PidReused => "its process id now belongs to a process started later",
        })
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
}

/// Field 22 of `/proc/PID/stat` (the process's start in clock ticks after boot). The command
/// name (field 2) is in parentheses and may hold spaces and parentheses itself, so fields
/// are counted from the last `)`.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards; field 22 is the 20th of those.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_or_reused_pid_is_gone() {
        let here = Holder::this_process();
        assert_ne!(here.started, 0, "{here:?}");
        assert_eq!(here.gone_seen_from(&here), None);

        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let started = process_start(pid);
        child.wait().unwrap();
        let dead = Holder {
            pid,
            started: started.unwrap_or(1),
            ..here.clone()
        };
        assert_eq!(dead.gone_seen_from(&here), Some(Gone::NoSuchProcess));

        let reused = Holder {
            started: here.started + 1,
            ..here.clone()
        };
        assert_eq!(reused.gone_seen_from(&here), Some(Gone::PidReused));

        let rebooted = Holder {
            boot_id: "another-boot".into(),
            ..here.clone()
        };
        assert_eq!(rebooted.gone_seen_from(&here), Some(Gone::Rebooted));
    }

    #[test]
    fn what_cannot_be_proven_gone_counts_as_alive() {
        let here = Holder::this_process();
        let elsewhere = Holder {
            host: "another-host".into(),
            pid: 1 << 30,
            ..here.clone()
        };
        assert_eq!(elsewhere.gone_seen_from(&here), None);
        let older_rafter = Holder {
            boot_id: String::new(),
            started: 0,
            pid: 1 << 30,
            ..here.clone()
        };
        assert_eq!(older_rafter.gone_seen_from(&here), None);
    }
}
