//! Showing a bare-host run as it happens: one line per host on a terminal (indicatif
//! multi-progress), one plain line per event otherwise (CI logs, pipes).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rafter::hosts::{Observer, Phase};

pub struct HostProgress {
    multi: Option<MultiProgress>,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl HostProgress {
    pub fn new(hosts: &[String]) -> Self {
        let multi = std::io::stderr().is_terminal().then(MultiProgress::new);
        let mut bars = BTreeMap::new();
        if let Some(multi) = &multi {
            let style = ProgressStyle::with_template("{spinner} {prefix:<14} [{elapsed}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            for host in hosts {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(host.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                bars.insert(host.clone(), bar);
            }
        }
        Self {
            multi,
            bars: Mutex::new(bars),
        }
    }

    /// Ends every host's line.
    pub fn finish(&self) {
        if let Ok(bars) = self.bars.lock() {
            for bar in bars.values() {
                bar.finish_and_clear();
            }
        }
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
    }
}

impl Observer for HostProgress {
    fn event(&self, host: &str, phase: Phase, message: &str) {
        let bar = self
            .bars
            .lock()
            .ok()
            .and_then(|bars| bars.get(host).cloned());
        match bar {
            Some(bar) => bar.set_message(format!("{}: {message}", phase.name())),
            None if self.multi.is_some() => {}
            None if host.is_empty() => eprintln!("[{}] {message}", phase.name()),
            None => eprintln!("[{}] {host}: {message}", phase.name()),
        }
    }
}
