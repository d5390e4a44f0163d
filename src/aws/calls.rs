//! Counting AWS API calls per service, so users can see their throttling budget and tests
//! can prove that a converged cluster costs no mutating calls.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallCount {
    pub reads: u64,
    pub writes: u64,
}

#[derive(Debug, Default)]
pub struct CallCounter(Mutex<BTreeMap<&'static str, CallCount>>);

impl CallCounter {
    pub fn read(&self, service: &'static str) {
        self.bump(service, |count| count.reads += 1);
    }

    pub fn write(&self, service: &'static str) {
        self.bump(service, |count| count.writes += 1);
    }

    fn bump(&self, service: &'static str, change: impl FnOnce(&mut CallCount)) {
        if let Ok(mut counts) = self.0.lock() {
            change(counts.entry(service).or_default());
        }
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, CallCount> {
        self.0
            .lock()
            .map(|counts| counts.clone())
            .unwrap_or_default()
    }

    pub fn total_writes(&self) -> u64 {
        self.snapshot().values().map(|count| count.writes).sum()
    }
}
