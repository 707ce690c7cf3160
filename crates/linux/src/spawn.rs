//! cordon's side of a run: creates the sandbox's first process with all namespaces at once,
//! relays signals to it, and turns what the status channels say into an [`Outcome`].

use std::fs;
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{pipe2, Pid};

use crate::error::{RunError, Stage};
use crate::exec::Prepared;
use crate::init::{self, InitFds};
use crate::sys::{self, CloneResult};
use crate::{probe, weaker, Mode, NetMode, Plan};

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// cordon's exit status: the command's code, or 128+N when it died of signal N.
    pub exit_code: i32,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
}

/// Signals cordon (and init) take over: forwarded when sent with kill(), SIGCHLD to reap.
pub fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGCHLD,
    ] {
        set.add(s);
    }
    set
}

/// Passes a signal read from a signalfd on to `child`, unless it is SIGCHLD or came from the
/// terminal: terminal-generated signals (SI_KERNEL) already reached the command, which shares
/// cordon's process group. Only signals sent with kill() (si_code <= 0) are forwarded.
pub fn forward_if_sent(info: &nix::sys::signalfd::siginfo, child: Pid) {
    let sig = info.ssi_signo as i32;
    if sig != libc::SIGCHLD && info.ssi_code <= 0 {
        if let Ok(s) = Signal::try_from(sig) {
            let _ = kill(child, s);
        }
    }
}

/// A raw wait status for a `WaitStatus`.
pub fn encode_status(ws: WaitStatus) -> i32 {
    match ws {
        WaitStatus::Exited(_, code) => (code & 0xff) << 8,
        WaitStatus::Signaled(_, sig, _) => sig as i32,
        _ => 125 << 8,
    }
}

fn setup_err(stage: Stage) -> impl FnOnce(nix::errno::Errno) -> RunError {
    move |e| RunError::setup(stage, e, e as i32)
}

/// Runs the plan to completion.
pub fn run(plan: &Plan) -> Result<Outcome, RunError> {
    match plan.spec.mode {
        Mode::Namespaces => run_with(plan, &plan.writable, &plan.spec.env),
        Mode::LandlockOnly => {
            // No private /tmp without a mount namespace: a fresh directory stands in for it.
            let tmp = weaker::PrivateTmp::create().map_err(|e| {
                RunError::setup(Stage::MountView, &e, e.raw_os_error().unwrap_or(0))
            })?;
            let writable = weaker::writable(plan, tmp.path());
            let env = weaker::env_with_tmpdir(&plan.spec.env, tmp.path());
            run_with(plan, &writable, &env)
        }
    }
}

fn run_with(
    plan: &Plan,
    writable: &[std::path::PathBuf],
    env: &[(std::ffi::OsString, std::ffi::OsString)],
) -> Result<Outcome, RunError> {
    let prepared = Prepared::new(&plan.spec, env, &plan.workspace)
        .map_err(|e| RunError::setup(Stage::Exec, &e, e.raw_os_error().unwrap_or(0)))?;
    let landlock = probe::landlock_abi() > 0;
    // Landlock is the second wall in namespace mode and the only one in Landlock-only mode.
    if !landlock {
        return Err(RunError::setup(
            Stage::Landlock,
            "this kernel does not enforce Landlock",
            0,
        ));
    }
    single_threaded()?;
    let (status_r, status_w) = pipe2(OFlag::O_CLOEXEC).map_err(setup_err(Stage::Clone))?;
    let (result_r, result_w) = pipe2(OFlag::O_CLOEXEC).map_err(setup_err(Stage::Clone))?;
    let (lifeline_r, lifeline_w) = pipe2(OFlag::O_CLOEXEC).map_err(setup_err(Stage::Clone))?;
    let mut old_mask = SigSet::empty();
    nix::sys::signal::sigprocmask(
        SigmaskHow::SIG_BLOCK,
        Some(&forwarded_signals()),
        Some(&mut old_mask),
    )
    .map_err(setup_err(Stage::Clone))?;
    let result = spawn_and_wait(
        plan,
        writable,
        &prepared,
        landlock,
        [
            status_r, status_w, result_r, result_w, lifeline_r, lifeline_w,
        ],
    );
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
    result
}

fn spawn_and_wait(
    plan: &Plan,
    writable: &[std::path::PathBuf],
    prepared: &Prepared,
    landlock: bool,
    fds: [OwnedFd; 6],
) -> Result<Outcome, RunError> {
    let [status_r, status_w, result_r, result_w, lifeline_r, lifeline_w] = fds;
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let flags = match plan.spec.mode {
        Mode::Namespaces => {
            let mut f = libc::CLONE_NEWUSER
                | libc::CLONE_NEWNS
                | libc::CLONE_NEWPID
                | libc::CLONE_NEWIPC
                | libc::CLONE_NEWUTS;
            if plan.spec.net == NetMode::Off {
                f |= libc::CLONE_NEWNET;
            }
            f
        }
        Mode::LandlockOnly => 0,
    };
    // Both children end in exec or _exit: init::main and weaker::main never return.
    let pid = match sys::clone_fork(flags) {
        Ok(CloneResult::Child) => {
            drop(status_r);
            drop(result_r);
            drop(lifeline_w);
            match plan.spec.mode {
                Mode::Namespaces => init::main(
                    plan,
                    prepared,
                    uid,
                    gid,
                    landlock,
                    InitFds {
                        status: status_w,
                        result: result_w,
                        lifeline: lifeline_r,
                    },
                ),
                Mode::LandlockOnly => weaker::main(plan, writable, prepared, landlock, status_w),
            }
        }
        Ok(CloneResult::Parent(pid)) => Pid::from_raw(pid),
        Err(e) => {
            return Err(RunError::setup(
                Stage::Clone,
                &e,
                e.raw_os_error().unwrap_or(0),
            ))
        }
    };
    drop(status_w);
    drop(result_w);
    drop(lifeline_r);
    // EOF on the status pipe: the command exec'd (or its first process died).
    let report = read_all(status_r);
    if !report.is_empty() {
        let _ = waitpid(pid, None);
        drop(lifeline_w);
        return Err(parse_report(&report));
    }
    let raw = match wait_result(pid, result_r) {
        Some(raw) => raw,
        None => encode_status(wait_forwarding(pid)),
    };
    drop(lifeline_w);
    Ok(Outcome {
        exit_code: init::exit_code(raw),
        signal: libc::WIFSIGNALED(raw).then(|| libc::WTERMSIG(raw)),
    })
}

fn read_all(fd: OwnedFd) -> Vec<u8> {
    use std::io::Read;
    let mut buf = Vec::new();
    let _ = fs::File::from(fd).read_to_end(&mut buf);
    buf
}

/// Waits for init's report of the command's wait status, forwarding signals meanwhile.
/// Init writes it only after every process in the namespace has been reaped, so cordon can
/// return without waiting for the kernel to tear the namespaces down (init's own exit).
/// `None` when the channel closed without a report (Landlock-only mode, or init died).
fn wait_result(child: Pid, result: OwnedFd) -> Option<i32> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let sfd = SignalFd::with_flags(&forwarded_signals(), SfdFlags::SFD_CLOEXEC).ok()?;
    let mut buf = [0u8; 4];
    let mut got = 0;
    loop {
        let mut fds = [
            PollFd::new(result.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            if let Ok(Some(info)) = sfd.read_signal() {
                forward_if_sent(&info, child);
            }
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            match nix::unistd::read(&result, &mut buf[got..]) {
                Ok(0) => return None,
                Ok(n) => {
                    got += n;
                    if got == buf.len() {
                        return Some(i32::from_ne_bytes(buf));
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return None,
            }
        }
    }
}

/// Waits for our child, forwarding signals that someone sent to cordon with kill().
fn wait_forwarding(child: Pid) -> WaitStatus {
    let mut sfd = SignalFd::with_flags(&forwarded_signals(), SfdFlags::SFD_CLOEXEC).ok();
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(ws @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return ws,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return WaitStatus::Exited(child, 125),
        }
        let Some(sfd) = sfd.as_mut() else {
            // No signalfd: fall back to a blocking wait (signals then stay queued).
            return waitpid(child, None).unwrap_or(WaitStatus::Exited(child, 125));
        };
        if let Ok(Some(info)) = sfd.read_signal() {
            forward_if_sent(&info, child);
        }
    }
}

fn parse_report(report: &[u8]) -> RunError {
    let text = String::from_utf8_lossy(report);
    let mut parts = text.splitn(3, '\t');
    let stage = parts.next().unwrap_or("");
    let errno: i32 = parts.next().and_then(|e| e.parse().ok()).unwrap_or(0);
    let detail = parts.next().unwrap_or("").to_string();
    if stage == "exec" {
        return RunError::Exec { errno, detail };
    }
    RunError::Setup {
        stage: Stage::from_name(stage).unwrap_or(Stage::Clone),
        errno,
        detail,
    }
}

/// clone() without a new stack is only sound from a single-threaded process.
fn single_threaded() -> Result<(), RunError> {
    let threads = sys::thread_count();
    if threads == 1 {
        Ok(())
    } else {
        Err(RunError::setup(
            Stage::SingleThread,
            format!("cordon has {threads} threads; the sandbox can only be created from one"),
            0,
        ))
    }
}
