//! Showing an apply as it happens: a progress bar (done / running / retries) on a terminal,
//! one plain line per event otherwise (CI logs, pipes).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rafter::apply::{ProvisionError, Reporter};
use rafter::graph::Address;
use rafter::plan::Action;

#[derive(Default)]
struct Walk {
    started: HashMap<Address, Instant>,
    retries: u32,
}

pub struct Progress {
    bar: Option<ProgressBar>,
    walk: Mutex<Walk>,
}

impl Progress {
    /// `operations`: how many resources the plan touches.
    pub fn new(operations: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(operations as u64);
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            walk: Mutex::new(Walk::default()),
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn update_message(&self, walk: &Walk) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "running {}, retries {}",
                walk.started.len(),
                walk.retries
            ));
        }
    }

    /// Time since `address` started, and forgets it.
    fn finish(&self, address: &Address) -> Duration {
        let Ok(mut walk) = self.walk.lock() else {
            return Duration::ZERO;
        };
        let elapsed = walk
            .started
            .remove(address)
            .map(|started| started.elapsed())
            .unwrap_or_default();
        self.update_message(&walk);
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        elapsed
    }

    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Reporter for Progress {
    fn started(&self, address: &Address, action: Action) {
        if let Ok(mut walk) = self.walk.lock() {
            walk.started.insert(address.clone(), Instant::now());
            self.update_message(&walk);
        }
        if self.bar.is_none() && action != Action::Read {
            eprintln!("  {} {address} …", action.symbol());
        }
    }

    fn retrying(&self, address: &Address, attempt: u32, error: &ProvisionError) {
        if let Ok(mut walk) = self.walk.lock() {
            walk.retries += 1;
            self.update_message(&walk);
        }
        self.line(format!("  ! {address}: retry {attempt} after {error}"));
    }

    fn finished(&self, address: &Address, action: Action) {
        let elapsed = self.finish(address);
        self.line(format!(
            "  {} {address} {} ({:.1}s)",
            action.symbol(),
            action.verb(),
            elapsed.as_secs_f64()
        ));
    }

    fn failed(&self, address: &Address, error: &ProvisionError) {
        self.finish(address);
        self.line(format!("  x {address} failed: {error}"));
    }
}
