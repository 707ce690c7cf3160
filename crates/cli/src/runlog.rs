//! The run's audit log: opening it (`--audit` or the state folder's), writing one event,
//! the run id every event of a run carries, and how a run killed at a violation is told.
//! Shared by every backend's `cordon run`.

use std::path::{Path, PathBuf};

use std::time::Instant;

use cordon_audit::{Ending, Event, Record, Sink};

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

/// Logs the `command_exit` of a run that ended with `f` before its command ran (125 a setup
/// failure, anything else a refused start: a forbidden command line, a missing program), and
/// gives `f` back to be reported.
pub fn log_failure(
    audit: &mut Option<Sink>,
    run_id: &str,
    started: Instant,
    f: Failure,
) -> Failure {
    let ending = ending_of(&f);
    log(
        audit,
        run_id,
        Event::CommandExit {
            status: f.code,
            ending,
            signal: None,
            duration_ms: started.elapsed().as_millis() as u64,
            message: Some(f.message.clone()),
        },
    );
    f
}

/// How a run that ended with `f` ended, as `command_exit` says it.
pub fn ending_of(f: &Failure) -> Ending {
    match f.code {
        crate::failure::EXIT_SETUP => Ending::SetupFailed,
        _ => Ending::ExecFailed,
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

/// The signal a run killed at a violation (`terminate_on_violation`) is reported dead of:
/// SIGKILL, which is how the Linux sandbox's init dies of cordon's kill (there the wait
/// status says so; Windows, which has no signals, uses this to say the same).
#[cfg(windows)]
pub const KILL_SIGNAL: i32 = 9;
/// cordon's exit status for such a run (128 + SIGKILL). The Windows job is terminated with
/// this exit code, so both backends end and report such a run alike.
#[cfg(windows)]
pub const KILLED_STATUS: i32 = 128 + KILL_SIGNAL;

/// Says (stderr and a `sandbox_killed` event) that cordon ended the run at the first
/// violation of `class`; returns the line, for the exit event's message.
pub fn report_kill(audit: &mut Option<Sink>, run_id: &str, class: &str, what: &str) -> String {
    let message = format!(
        "killed the sandbox at the first {class} violation (terminate_on_violation): {what}"
    );
    eprintln!("cordon: {message}");
    log(
        audit,
        run_id,
        Event::SandboxKilled {
            class: class.to_string(),
            reason: what.to_string(),
        },
    );
    message
}
