//! Fault injection for crash tests: `CORDON_TX_FAULT_AFTER=N` aborts the process (no cleanup,
//! no destructors, like a power cut for everything not yet on disk) after N apply steps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

pub const ENV: &str = "CORDON_TX_FAULT_AFTER";

static STEPS: AtomicU64 = AtomicU64::new(0);

fn limit() -> Option<u64> {
    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    *LIMIT.get_or_init(|| std::env::var(ENV).ok()?.parse().ok())
}

/// Marks one step done; aborts when the configured number of steps has been reached.
pub(crate) fn step() {
    let done = STEPS.fetch_add(1, Ordering::SeqCst) + 1;
    if limit() == Some(done) {
        std::process::abort();
    }
}
