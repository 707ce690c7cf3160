//! What a run refuses, as it happens: the proxy's decisions and the syscall filter's
//! refusals go to the audit log, and a refusal of a class in `terminate_on_violation` kills
//! the sandbox. Network refusals go to stderr too (the agent may read that rather than the
//! 403); syscall refusals do not: tools probe (node's libuv tries io_uring at every start),
//! and the EPERM they get is their answer.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use cordon_audit::{Event, Record, Sink};
use cordon_linux::{Kill, Tripwire, Violation};
use cordon_policy::ViolationClass;
use cordon_proxy::Decision;

use crate::egress;

/// Where refusals come from in one run.
pub struct Sources {
    /// The proxy's decisions (`--net allow` only).
    pub decisions: Option<mpsc::Receiver<Decision>>,
    /// The syscall filter's refusals.
    pub violations: Option<mpsc::Receiver<Violation>>,
    /// Other events as they are made (the approval broker's requests and answers).
    pub events: Option<mpsc::Receiver<Event>>,
}

/// The recorder thread of one run.
pub struct Recorder {
    /// Tells the thread the run has ended, and wakes it at once if it is waiting.
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Option<Sink>>,
}

/// Starts recording. `network_kill`: the sandbox to kill at the first refused request. The
/// audit sink moves to the thread until [`Recorder::finish`] hands it back; if the thread
/// cannot start, the sink comes back with the error.
pub fn start(
    sources: Sources,
    audit: Option<Sink>,
    run_id: &str,
    network_kill: Option<Tripwire>,
) -> Result<Recorder, (std::io::Error, Option<Sink>)> {
    let (stop, stopped) = mpsc::channel();
    let run_id = run_id.to_string();
    // The sink must survive a failed spawn, so it travels through a channel.
    let (hand, take) = mpsc::channel::<Option<Sink>>();
    let spawned = std::thread::Builder::new()
        .name("cordon-audit".into())
        .spawn(move || {
            let audit = take.recv().ok().flatten();
            record(sources, audit, &run_id, &stopped, network_kill.as_ref())
        });
    match spawned {
        Ok(thread) => {
            let _ = hand.send(audit);
            Ok(Recorder { stop, thread })
        }
        Err(e) => Err((e, audit)),
    }
}

impl Recorder {
    /// Call once the sandbox is gone (and the proxy stopped): records what is still queued
    /// and returns the sink.
    pub fn finish(self) -> Option<Sink> {
        let _ = self.stop.send(());
        self.thread.join().ok().flatten()
    }
}

/// Records until stopped and nothing is queued. Bounded: it never waits for a sender to go
/// away (a survivor in Landlock-only mode could hold the filter's sender).
fn record(
    sources: Sources,
    mut audit: Option<Sink>,
    run_id: &str,
    stopped: &mpsc::Receiver<()>,
    network_kill: Option<&Tripwire>,
) -> Option<Sink> {
    let mut write = |event: Event| {
        if let Some(sink) = &mut audit {
            if let Err(e) = sink.write(&Record::now(run_id, event)) {
                eprintln!("cordon: warning: audit log {}: {e}", sink.path().display());
            }
        }
    };
    // A message (or a dropped sender) on `stopped` ends the run: one more round drains.
    let has_stopped = || !matches!(stopped.try_recv(), Err(mpsc::TryRecvError::Empty));
    let mut last_round = false;
    loop {
        last_round = last_round || has_stopped();
        let mut seen = false;
        if let Some(rx) = &sources.violations {
            while let Ok(v) = rx.try_recv() {
                seen = true;
                write(violation_event(v));
            }
        }
        if let Some(rx) = &sources.events {
            while let Ok(e) = rx.try_recv() {
                seen = true;
                write(e);
            }
        }
        if let Some(rx) = &sources.decisions {
            let next = if last_round {
                rx.try_recv().ok()
            } else {
                rx.recv_timeout(Duration::from_millis(20)).ok()
            };
            if let Some(d) = next {
                seen = true;
                if let (Some(wire), Some(what)) = (network_kill, egress::violation(&d)) {
                    wire.trip(Kill {
                        class: ViolationClass::Network.as_str(),
                        what,
                    });
                }
                egress::announce(&d);
                write(egress::event(d));
            }
        } else if !last_round {
            // Nothing to block on but the end of the run (or the next poll of the others).
            last_round = !matches!(
                stopped.recv_timeout(Duration::from_millis(20)),
                Err(mpsc::RecvTimeoutError::Timeout)
            );
            continue;
        }
        if last_round && !seen {
            return audit;
        }
    }
}

fn violation_event(v: Violation) -> Event {
    Event::SyscallRefused {
        pid: v.pid,
        process: v.process,
        syscall: v.refusal.syscall,
        detail: v.refusal.detail,
        rule: v.refusal.rule.to_string(),
    }
}
