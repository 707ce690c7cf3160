//! Syscall violations: the supervisor that answers the filter's notifications from outside
//! the sandbox (always EPERM), reports each one as plain data, and can kill the sandbox.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use crate::seccomp::{self, Refusal};
use crate::sys;

/// One syscall the filter refused: who asked, for what, and which rule said no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The process, as a pid in cordon's (the host's) pid namespace.
    pub pid: i32,
    /// Its command name (`/proc/PID/comm`), empty if it was already gone.
    pub process: String,
    pub refusal: Refusal,
}

/// Kills the sandbox on demand and remembers the first reason. Holds a pidfd, so a kill
/// after the sandbox was reaped hits nothing rather than a reused pid.
#[derive(Debug, Clone)]
pub struct Tripwire(Arc<TripState>);

#[derive(Debug)]
struct TripState {
    pidfd: OwnedFd,
    reason: Mutex<Option<Kill>>,
}

/// Why the sandbox was killed: the class of the violation and what it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    /// `syscall` or `network` (the policy's violation class).
    pub class: &'static str,
    pub what: String,
}

impl Tripwire {
    pub(crate) fn new(pid: libc::pid_t) -> io::Result<Tripwire> {
        Ok(Tripwire(Arc::new(TripState {
            pidfd: sys::pidfd_open(pid)?,
            reason: Mutex::new(None),
        })))
    }

    /// Kills the sandbox (its init, and so everything in its pid namespace). The first
    /// reason given is the one [`crate::Outcome::killed_for`] reports.
    pub fn trip(&self, reason: Kill) {
        if let Ok(mut r) = self.0.reason.lock() {
            r.get_or_insert(reason);
        }
        let _ = sys::pidfd_kill(self.0.pidfd.as_fd());
    }

    pub(crate) fn reason(&self) -> Option<Kill> {
        self.0.reason.lock().ok().and_then(|r| r.clone())
    }
}

/// Starts the supervisor thread: it takes the listener from `channel` (sent by the command's
/// process at exec), then answers every notification until no process uses the filter.
/// Where the supervisor sends what it sees, and what it does at a violation.
pub(crate) struct Watch {
    pub report: mpsc::Sender<Violation>,
    pub kill: Option<Tripwire>,
    /// Kill the offender itself too (no pid namespace to take it along).
    pub kill_offender: bool,
    /// With command rules: where execs wait to be judged.
    pub execs: Option<mpsc::Sender<crate::execs::ExecRequest>>,
}

pub(crate) fn watch(channel: OwnedFd, watch: Watch) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("cordon-seccomp".into())
        .spawn(move || {
            // None: the command's process failed before installing the filter.
            if let Ok(Some(listener)) = sys::recv_fd(channel.as_fd()) {
                drop(channel);
                answer_all(Arc::new(listener), &watch);
            }
        })
}

fn answer_all(listener: Arc<OwnedFd>, watch: &Watch) {
    let (report, kill, kill_offender) = (&watch.report, watch.kill.as_ref(), watch.kill_offender);
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if !revents.contains(PollFlags::POLLIN) {
            // POLLHUP: every process under the filter is gone.
            return;
        }
        let req = match sys::notif_recv(listener.as_fd()) {
            Ok(req) => req,
            // ENOENT: the caller died (or was killed) before we read its request.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let v = Violation {
            pid: req.pid as i32,
            process: comm(req.pid),
            refusal: seccomp::describe(req.data.nr, req.data.arch, req.data.args),
        };
        if crate::execs::is_exec(req.data.nr) {
            match &watch.execs {
                Some(judge) => crate::execs::hold(listener.clone(), req, judge.clone()),
                None => {
                    let _ = sys::notif_deny(listener.as_fd(), req.id, libc::EACCES);
                }
            }
            continue;
        }
        // The caller waits for our answer. To kill, never answer: the offender stays blocked
        // in the syscall until the sandbox's teardown kills it, so it runs nothing more.
        // Otherwise it gets EPERM, and the syscall itself never runs.
        match kill {
            Some(wire) => {
                wire.trip(Kill {
                    class: "syscall",
                    what: summary(&v),
                });
                // Without a pid namespace (Landlock-only mode) killing the first process
                // does not take its descendants along. (The pid cannot have been reused: it
                // is blocked in our notification.) With one, the offender must stay blocked
                // until the namespace's teardown: killed first, it would wake its parent,
                // which could act before the teardown reaches it.
                if kill_offender {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(v.pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            None => {
                let _ = sys::notif_deny(listener.as_fd(), req.id, libc::EPERM);
            }
        }
        let _ = report.send(v);
    }
}

/// `bpf by python3 (pid 1234)`, `socket AF_PACKET by …`.
pub fn summary(v: &Violation) -> String {
    let what = match &v.refusal.detail {
        Some(d) => format!("{} {d}", v.refusal.syscall),
        None => v.refusal.syscall.clone(),
    };
    format!("{what} by {} (pid {})", v.process, v.pid)
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}
