//! The run's audit log: opening it (`--audit` or the state folder's), writing one event,
//! and the run id every event of a run carries. Shared by every backend's `cordon run`.

use std::path::{Path, PathBuf};

use cordon_audit::{Event, Record, Sink};

use crate::dirs;
use crate::failure::Failure;

/// The sink events go to: `explicit`, else the state folder's `audit.jsonl` when it can be
/// opened (a default location that cannot be written is no reason to refuse a run).
pub fn open_audit(explicit: Option<&Path>) -> Result<Option<Sink>, Failure> {
    match explicit {
        Some(p) => Sink::open(p)
            .map(Some)
            .map_err(|e| Failure::setup(format!("audit log {}: {e}", p.display()))),
        None => {
            let path: Option<PathBuf> = dirs::state_dir().map(|s| s.join("audit.jsonl"));
            Ok(path.and_then(|p| Sink::open(&p).ok()))
        }
    }
}

/// Writes one event of run `run_id`; a failed write is a warning, never the run's end.
pub fn log(audit: &mut Option<Sink>, run_id: &str, event: Event) {
    if let Some(sink) = audit {
        if let Err(e) = sink.write(&Record::now(run_id, event)) {
            eprintln!("cordon: warning: audit log {}: {e}", sink.path().display());
        }
    }
}

/// A fresh id for one run (16 hex digits), in every event of the run and in approval ids.
pub fn run_id() -> String {
    use sha2::{Digest, Sha256};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let h = Sha256::digest(format!("{now}-{}", std::process::id()).as_bytes());
    cordon_policy::hex(&h[..8])
}

/// A limit as the policy sets it, for messages and `limit_exceeded` events (`unset` when it
/// sets none).
pub fn limit_value(policy: &cordon_policy::Policy, kind: cordon_policy::LimitKind) -> String {
    policy
        .limits
        .get(kind)
        .map_or_else(|| "unset".to_string(), |v| kind.format(v))
}
