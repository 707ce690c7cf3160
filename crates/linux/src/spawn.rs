//! cordon's side of a run: creates the sandbox's first process with all namespaces at once,
//! puts it into the run's cgroup, relays signals to it, kills it when the timeout passes, and
//! turns what the status channels say into an [`Outcome`].

use std::borrow::Cow;
use std::ffi::OsString;
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{pipe2, Pid};

use crate::cover_watch::{CoverWatch, LostCover};
use crate::error::{RunError, Stage};
use crate::exec::fail_stage;
use crate::exec::{CommandFds, Prepared};
use crate::init::{self, InitFds};
use crate::limits::{self, Enforcement, Trip};
use crate::sys::{self, CloneResult};
use crate::violations::{self, Kill, Tripwire, Violation};
use crate::{probe, pty, weaker, Mode, NetMode, Plan};

/// cordon's exit status when the timeout ended the run (as timeout(1) has it).
pub const EXIT_TIMEOUT: i32 = 124;

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// cordon's exit status: the command's code, 128+N when it died of signal N, or
    /// [`EXIT_TIMEOUT`] when the timeout ended it.
    pub exit_code: i32,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// The resource limits that tripped, the timeout first.
    pub trips: Vec<Trip>,
    /// Why cordon killed the sandbox on a violation ([`Tripwire::trip`]), if it did.
    pub killed_for: Option<Kill>,
    /// Protected paths the host replaced or removed during the run (their covers were lost:
    /// see `cover_watch`); the first one ended the run.
    pub lost_covers: Vec<LostCover>,
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

type EnvVar = (OsString, OsString);

/// Runs the plan to completion: [`spawn`], then [`Sandbox::wait`].
pub fn run(plan: &Plan) -> Result<Outcome, RunError> {
    spawn(plan)?.wait()
}

/// A sandbox whose first process exists and sits in the run's cgroup, but whose command has
/// not started: with a proxied network it waits for [`Sandbox::wait`], so that cordon can
/// serve the listener ([`Sandbox::take_listener`]) first. Dropping it kills the sandbox.
pub struct Sandbox<'a> {
    plan: &'a Plan,
    child: Pid,
    status_r: Option<OwnedFd>,
    result_r: Option<OwnedFd>,
    /// cordon's end of the lifeline: go-aheads are written on it, and its hang-up (closed
    /// once the run is over, or cordon gone) lets init exit.
    lifeline_w: Option<OwnedFd>,
    listener: Option<OwnedFd>,
    /// The request door's listener (with `Spec::request_door`).
    door: Option<std::os::unix::net::UnixListener>,
    /// Kills the sandbox on a violation; see [`Sandbox::tripwire`].
    tripwire: Tripwire,
    /// The syscall refusals, as the supervisor thread answers them.
    violations: Option<mpsc::Receiver<Violation>>,
    /// With command rules: the execs waiting to be judged.
    exec_requests: Option<mpsc::Receiver<crate::execs::ExecRequest>>,
    /// The supervisor thread (ends once no process is left under the filter).
    watcher: Option<JoinHandle<()>>,
    /// The command's pty (master side) until [`Sandbox::wait`] starts relaying it.
    master: Option<(OwnedFd, pty::UserTerminal)>,
    /// Relays the pty while the command runs; restores the user's terminal when done.
    relay: Option<pty::Relay>,
    /// The signal mask before cordon blocked the forwarded signals; restored on drop.
    old_mask: SigSet,
    /// Landlock-only mode: the directory standing in for /tmp, removed on drop.
    _tmp: Option<weaker::PrivateTmp>,
    /// Set once the child has been reaped (or its exit no longer matters).
    finished: bool,
    /// The watch on the protected paths' folders (namespace mode, no overlay).
    covers: Option<CoverWatch>,
}

/// Creates the sandbox (see [`Sandbox`]). With [`NetMode::Proxied`], returns once init has
/// handed over the proxy's listener.
pub fn spawn(plan: &Plan) -> Result<Sandbox<'_>, RunError> {
    let (tmp, writable, env): (_, Cow<[PathBuf]>, Cow<[EnvVar]>) = match plan.spec.mode {
        Mode::Namespaces => (
            None,
            Cow::Borrowed(&plan.writable),
            Cow::Borrowed(&plan.spec.env),
        ),
        Mode::LandlockOnly => {
            if matches!(plan.spec.net, NetMode::Proxied { .. }) {
                return Err(RunError::setup(
                    Stage::ProxyListener,
                    "the allow-list proxy needs a network namespace, which the Landlock-only mode does not have",
                    0,
                ));
            }
            // No private /tmp without a mount namespace: a fresh directory stands in for it.
            let tmp = weaker::PrivateTmp::create().map_err(|e| {
                RunError::setup(Stage::MountView, &e, e.raw_os_error().unwrap_or(0))
            })?;
            let writable = weaker::writable(plan, tmp.path());
            let env = weaker::env_with_tmpdir(&plan.spec.env, tmp.path());
            (Some(tmp), Cow::Owned(writable), Cow::Owned(env))
        }
    };
    let prepared = Prepared::new(&plan.spec, &env, &plan.workspace)
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
    // Before the view exists, so that no change to a cover after its mount goes unseen.
    let covers = match plan.spec.mode == Mode::Namespaces && plan.spec.overlay.is_none() {
        true => Some(CoverWatch::start(&plan.write_covers())).filter(|c| !c.is_empty()),
        false => None,
    };
    single_threaded()?;
    let (status_r, status_w) = pipe2(OFlag::O_CLOEXEC).map_err(setup_err(Stage::Clone))?;
    let (result_r, result_w) = pipe2(OFlag::O_CLOEXEC).map_err(setup_err(Stage::Clone))?;
    let (lifeline_r, lifeline_w) = pipe2(OFlag::O_CLOEXEC).map_err(setup_err(Stage::Clone))?;
    let handoff = match hands_over(plan) {
        true => Some(fd_channel(Stage::ProxyListener)?),
        false => None,
    };
    let (notify_parent, notify_child) = fd_channel(Stage::Seccomp)?;
    let pty = pty::open_if_terminal().map_err(|e| {
        RunError::setup(
            Stage::Terminal,
            format!("a pty for the command: {e}"),
            e.raw_os_error().unwrap_or(0),
        )
    })?;
    let (master, terminal) = match pty {
        Some(p) => (
            Some((p.master, pty::UserTerminal::new(p.ttys))),
            Some((p.slave, p.ttys)),
        ),
        None => (None, None),
    };
    let mut old_mask = SigSet::empty();
    nix::sys::signal::sigprocmask(
        SigmaskHow::SIG_BLOCK,
        Some(&forwarded_signals()),
        Some(&mut old_mask),
    )
    .map_err(setup_err(Stage::Clone))?;
    let (handoff_parent, handoff_child) = handoff.unzip();
    let ends = ParentEnds {
        status: status_r,
        result: result_r,
        lifeline: lifeline_w,
        handoff: handoff_parent,
        notify: notify_parent,
    };
    let fds = InitFds {
        status: status_w,
        result: result_w,
        lifeline: lifeline_r,
        handoff: handoff_child,
        notify: notify_child,
        terminal,
    };
    let (child, ends) = match clone_child(plan, &writable, &prepared, landlock, fds, ends) {
        Ok(spawned) => spawned,
        Err(e) => {
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
            return Err(e);
        }
    };
    let tripwire = Tripwire::new(child.as_raw()).map_err(|e| {
        abandon(child, &old_mask);
        RunError::setup(
            Stage::Clone,
            format!("pidfd_open: {e}"),
            e.raw_os_error().unwrap_or(0),
        )
    })?;
    // From here on a failure drops the Sandbox, which kills the child.
    let (report, violations) = mpsc::channel();
    let mut sandbox = Sandbox {
        plan,
        child,
        status_r: Some(ends.status),
        result_r: Some(ends.result),
        lifeline_w: Some(ends.lifeline),
        listener: None,
        door: None,
        tripwire,
        violations: Some(violations),
        exec_requests: None,
        watcher: None,
        master,
        relay: None,
        old_mask,
        _tmp: tmp,
        finished: false,
        covers,
    };
    let kill_on_violation = plan
        .spec
        .kill_on_syscall_violation
        .then(|| sandbox.tripwire.clone());
    let (execs, exec_requests) = match plan.spec.supervise_exec {
        true => {
            let (tx, rx) = mpsc::channel();
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    sandbox.exec_requests = exec_requests;
    let watch = violations::Watch {
        report,
        kill: kill_on_violation,
        kill_offender: plan.spec.mode == Mode::LandlockOnly,
        execs,
    };
    // The supervisor must exist before the command can start. When init waits for a second
    // go-ahead anyway, its thread starts while init builds the view; otherwise before init
    // may go on at all.
    let handing_over = hands_over(plan);
    if handing_over {
        sandbox.start_init()?;
    }
    sandbox.watcher = Some(
        violations::watch(ends.notify, watch)
            .map_err(|e| RunError::setup(Stage::Seccomp, format!("supervisor thread: {e}"), 0))?,
    );
    if !handing_over {
        sandbox.start_init()?;
    }
    if let Some(channel) = ends.handoff {
        if matches!(plan.spec.net, NetMode::Proxied { .. }) {
            sandbox.listener = Some(sandbox.receive(&channel, "the proxy listener")?);
        }
        if plan.spec.request_door {
            let door = sandbox.receive(&channel, "the request door")?;
            sandbox.door = Some(std::os::unix::net::UnixListener::from(door));
        }
    }
    Ok(sandbox)
}

/// Whether init hands cordon listeners to serve (the proxy's, the request door) and waits
/// for a second go-ahead before it starts the command.
fn hands_over(plan: &Plan) -> bool {
    plan.spec.mode == Mode::Namespaces
        && (matches!(plan.spec.net, NetMode::Proxied { .. }) || plan.spec.request_door)
}

/// Kills and reaps a child no Sandbox owns yet, and restores the signal mask.
fn abandon(child: Pid, old_mask: &SigSet) {
    let _ = kill(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(old_mask), None);
}

/// A connected pair of Unix sockets on which the sandbox sends cordon a descriptor.
fn fd_channel(stage: Stage) -> Result<(OwnedFd, OwnedFd), RunError> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(setup_err(stage))
}

/// cordon's ends of the channels to init.
struct ParentEnds {
    status: OwnedFd,
    result: OwnedFd,
    lifeline: OwnedFd,
    handoff: Option<OwnedFd>,
    notify: OwnedFd,
}

/// Clones the sandbox's first process; in the child, never returns. Each side closes the
/// other's ends right away: init must not hold the lifeline's write end (its hang-up is how
/// init learns that cordon died), and cordon must not hold init's (EOF on the status pipe
/// means the command exec'd).
fn clone_child(
    plan: &Plan,
    writable: &[std::path::PathBuf],
    prepared: &Prepared,
    landlock: bool,
    fds: InitFds,
    ends: ParentEnds,
) -> Result<(Pid, ParentEnds), RunError> {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let flags = match plan.spec.mode {
        Mode::Namespaces => {
            let mut f = libc::CLONE_NEWUSER
                | libc::CLONE_NEWNS
                | libc::CLONE_NEWPID
                | libc::CLONE_NEWIPC
                | libc::CLONE_NEWUTS;
            if plan.spec.net.isolated() {
                f |= libc::CLONE_NEWNET;
            }
            f
        }
        Mode::LandlockOnly => 0,
    };
    // Both children end in exec or _exit: init::main and weaker::main never return. Each
    // first waits for cordon's go-ahead on the lifeline, sent once it is in the run's cgroup.
    match sys::clone_fork(flags) {
        Ok(CloneResult::Child) => {
            drop(ends);
            if plan.spec.mode == Mode::LandlockOnly {
                if !init::go_ahead(&fds.lifeline) {
                    sys::exit_now(125);
                }
                // No init in this mode: the command's own process sets what it inherits.
                if let Err(e) = limits::apply(plan.limits.rlimits()) {
                    let errno = e.raw_os_error().unwrap_or(0);
                    fail_stage(fds.status.as_fd(), Stage::Limits, errno, &e.to_string());
                }
                let command = CommandFds {
                    status: fds.status,
                    notify: fds.notify,
                    terminal: fds.terminal,
                    go_ahead: None,
                };
                weaker::main(plan, writable, prepared, landlock, command)
            }
            init::main(plan, prepared, uid, gid, landlock, fds)
        }
        Ok(CloneResult::Parent(pid)) => {
            drop(fds);
            Ok((Pid::from_raw(pid), ends))
        }
        Err(e) => Err(RunError::setup(
            Stage::Clone,
            &e,
            e.raw_os_error().unwrap_or(0),
        )),
    }
}

impl Sandbox<'_> {
    /// Puts the child into the run's cgroup and lets it start building the sandbox.
    fn start_init(&mut self) -> Result<(), RunError> {
        // Race-free placement: the child is blocked reading the lifeline, so it runs nothing
        // before it is in the cgroup, and everything it starts is born there. (Moving cordon
        // itself into the cgroup around clone would charge cordon's own memory to the sandbox.)
        if let Err(e) = self.plan.limits.place(self.child.as_raw()) {
            let errno = e.raw_os_error().unwrap_or(0);
            return Err(RunError::setup(
                Stage::Limits,
                format!("cgroup: {e}"),
                errno,
            ));
        }
        // If the child is already gone, the status pipe says why.
        self.go_ahead();
        Ok(())
    }

    fn go_ahead(&self) {
        if let Some(lifeline) = &self.lifeline_w {
            let _ = sys::write_all(lifeline.as_fd(), b"!");
        }
    }

    /// Waits for the next descriptor init hands over; if init fails first, its report says
    /// why.
    fn receive(&mut self, channel: &OwnedFd, what: &str) -> Result<OwnedFd, RunError> {
        match sys::recv_fd(channel.as_fd()) {
            Ok(Some(fd)) => Ok(fd),
            Ok(None) | Err(_) => Err(self.failure().unwrap_or_else(|| {
                RunError::setup(
                    Stage::ProxyListener,
                    format!("the sandbox's init ended before handing over {what}"),
                    0,
                )
            })),
        }
    }

    /// The setup failure the child reported, once its status pipe closed (None: exec'd).
    fn failure(&mut self) -> Option<RunError> {
        let report = read_all(self.status_r.take()?);
        if report.is_empty() {
            return None;
        }
        // Init may be waiting for the lifeline to close (it holds placeholders) before it
        // exits: close it first.
        self.lifeline_w = None;
        let _ = waitpid(self.child, None);
        self.finished = true;
        Some(parse_report(&report))
    }

    /// The TCP listener on `127.0.0.1:port` inside the sandbox's network namespace (only
    /// with [`NetMode::Proxied`]). Connections accepted on it come from the sandbox; sockets
    /// cordon opens itself are in the host's namespace.
    pub fn take_listener(&mut self) -> Option<OwnedFd> {
        self.listener.take()
    }

    /// The user's terminal as cordon's own channel while the command runs (when cordon runs
    /// on one): to ask a human there, and to show what the command printed last.
    pub fn user_terminal(&self) -> Option<pty::UserTerminal> {
        self.master.as_ref().map(|(_, user)| user.clone())
    }

    /// The request door (with `Spec::request_door`): connections come from the sandbox's
    /// `cordon request`.
    pub fn take_request_door(&mut self) -> Option<std::os::unix::net::UnixListener> {
        self.door.take()
    }

    /// A handle that kills the sandbox, for violations cordon sees itself (the proxy's).
    pub fn tripwire(&self) -> Tripwire {
        self.tripwire.clone()
    }

    /// The syscall filter's refusals, each sent as the supervisor answers it. The sender
    /// goes away when no process is left under the filter.
    pub fn take_violations(&mut self) -> Option<mpsc::Receiver<Violation>> {
        self.violations.take()
    }

    /// With `Spec::supervise_exec`: every exec inside the sandbox, waiting for a verdict.
    /// Drop the receiver and every later exec is refused.
    pub fn take_exec_requests(&mut self) -> Option<mpsc::Receiver<crate::execs::ExecRequest>> {
        self.exec_requests.take()
    }

    /// Lets the command start and waits for the sandbox to end.
    pub fn wait(mut self) -> Result<Outcome, RunError> {
        if let Some((master, user)) = self.master.take() {
            let relay = pty::Relay::start(master, user)
                .map_err(|e| RunError::setup(Stage::Terminal, format!("pty relay: {e}"), 0))?;
            self.relay = Some(relay);
        }
        if hands_over(self.plan) {
            // The second go-ahead: the proxy (and door) are served, init may start the command.
            self.go_ahead();
        }
        // EOF on the status pipe: the command exec'd (or its first process died).
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let plan = self.plan;
        let mut waiter = Waiter {
            child: self.child,
            deadline: plan.spec.limits.timeout.map(|t| Instant::now() + t),
            timed_out: false,
            limits: &plan.limits,
            covers: self.covers.take(),
            tripwire: &self.tripwire,
        };
        // One signalfd for both waits (the signals are blocked since before the clone).
        let signals = SignalFd::with_flags(&forwarded_signals(), SfdFlags::SFD_CLOEXEC).ok();
        let result = self.result_r.take();
        let (raw, reaped) = match result.and_then(|r| waiter.result(r, signals.as_ref())) {
            Some(raw) => (raw, false),
            None => (encode_status(waiter.wait_child(signals.as_ref())), true),
        };
        // What is still queued happened while the command ran; what follows (the removal of
        // this run's placeholders) is cordon's own.
        let lost_covers = match waiter.covers.take() {
            Some(mut covers) => {
                covers.check(&self.tripwire);
                covers.lost()
            }
            None => Vec::new(),
        };
        if !reaped {
            // Everything inside is reaped; init, holding the placeholders open, waits for
            // the lifeline to close, so removing them leaves their last reference (and a
            // filesystem's slow discard) to init's exit, which nobody waits for.
            plan.placeholders.remove_vacant();
        }
        self.lifeline_w = None;
        if (plan.limits.has_cgroup() || plan.spec.overlay.is_some()) && !reaped {
            // The cgroup's counters are final, and it can be removed, once init is gone; and
            // a transaction's lock, which init holds as a fork of cordon, is free then, so a
            // `cordon tx apply` right after the run finds it free.
            let _ = waitpid(self.child, None);
        }
        // Init has reported (everything inside is reaped) or been reaped: nothing to kill.
        self.finished = true;
        let signal = libc::WIFSIGNALED(raw).then(|| libc::WTERMSIG(raw));
        let mut exit_code = init::exit_code(raw);
        let mut trips = plan.limits.trips(signal, exit_code);
        if waiter.timed_out {
            trips.insert(0, Trip::Timeout);
            exit_code = EXIT_TIMEOUT;
        }
        // Everything the command wrote reaches the user before cordon says anything more.
        if let Some(relay) = self.relay.take() {
            relay.finish();
        }
        // With a pid namespace nothing is left under the filter now, so the supervisor has
        // answered (and sent) everything. Without one, a survivor could keep it waiting.
        if plan.spec.mode == Mode::Namespaces {
            if let Some(w) = self.watcher.take() {
                let _ = w.join();
            }
        }
        Ok(Outcome {
            exit_code,
            signal,
            trips,
            killed_for: self.tripwire.reason(),
            lost_covers,
        })
    }
}

impl Drop for Sandbox<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // Never started, or abandoned: nothing of it may outlive cordon's decision.
            let _ = kill(self.child, Signal::SIGKILL);
            let _ = waitpid(self.child, None);
        }
        // The lifeline closes with the struct: its hang-up tells init (if still there) that
        // cordon is done.
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old_mask), None);
    }
}

fn read_all(fd: OwnedFd) -> Vec<u8> {
    use std::io::Read;
    let mut buf = Vec::new();
    let _ = fs::File::from(fd).read_to_end(&mut buf);
    buf
}

/// Waits for the sandbox, forwarding signals, and kills it when the timeout passes.
struct Waiter<'a> {
    child: Pid,
    deadline: Option<Instant>,
    /// Set once cordon killed the sandbox for the timeout.
    timed_out: bool,
    limits: &'a Enforcement,
    covers: Option<CoverWatch>,
    tripwire: &'a Tripwire,
}

impl Waiter<'_> {
    /// How long poll may sleep: until the deadline, or for ever.
    fn poll_timeout(&self) -> nix::poll::PollTimeout {
        use nix::poll::PollTimeout;
        // The covers are looked at every INTERVAL while the command runs.
        let covers = self
            .covers
            .as_ref()
            .map(|_| crate::cover_watch::INTERVAL.as_millis());
        let deadline = self.deadline.filter(|_| !self.timed_out).map(|d| {
            // Rounded up, so poll does not wake a hair before the deadline.
            d.saturating_duration_since(Instant::now()).as_millis() + 1
        });
        match covers.into_iter().chain(deadline).min() {
            None => PollTimeout::NONE,
            Some(ms) => PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        }
    }

    /// Kills the sandbox if the deadline has passed: SIGKILL to init takes the whole pid
    /// namespace with it; the cgroup (if any) catches what a Landlock-only run started.
    fn expire_if_due(&mut self) {
        if self.timed_out || self.deadline.is_none_or(|d| Instant::now() < d) {
            return;
        }
        self.timed_out = true;
        let _ = kill(self.child, Signal::SIGKILL);
        self.limits.kill_all();
    }

    /// Waits for init's report of the command's wait status, forwarding signals meanwhile.
    /// Init writes it only after every process in the namespace has been reaped, so cordon can
    /// return without waiting for the kernel to tear the namespaces down (init's own exit).
    /// `None` when the channel closed without a report (Landlock-only mode, or init died).
    fn result(&mut self, result: OwnedFd, signals: Option<&SignalFd>) -> Option<i32> {
        use nix::poll::{poll, PollFd, PollFlags};
        let sfd = signals?;
        let mut buf = [0u8; 4];
        let mut got = 0;
        loop {
            let mut fds = [
                PollFd::new(result.as_fd(), PollFlags::POLLIN),
                PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            ];
            let polled = poll(&mut fds, self.poll_timeout());
            if let Some(covers) = &mut self.covers {
                covers.check(self.tripwire);
            }
            match polled {
                Ok(0) => {
                    self.expire_if_due();
                    continue;
                }
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return None,
            }
            if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                if let Ok(Some(info)) = sfd.read_signal() {
                    forward_if_sent(&info, self.child);
                }
            }
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                match nix::unistd::read(&result, &mut buf[got..]) {
                    Ok(0) => return None,
                    Ok(n) => {
                        got += n;
                        if got == buf.len() {
                            // A whole report means the command's tree had ended before any
                            // kill: the timeout did not end it.
                            self.timed_out = false;
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
    fn wait_child(&mut self, signals: Option<&SignalFd>) -> WaitStatus {
        use nix::poll::{poll, PollFd, PollFlags};
        let child = self.child;
        loop {
            match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(ws @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return ws,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return WaitStatus::Exited(child, 125),
            }
            let Some(sfd) = signals else {
                // No signalfd: fall back to a blocking wait (signals then stay queued).
                return waitpid(child, None).unwrap_or(WaitStatus::Exited(child, 125));
            };
            let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, self.poll_timeout()) {
                Ok(0) => self.expire_if_due(),
                Ok(_) => {
                    if let Ok(Some(info)) = sfd.read_signal() {
                        forward_if_sent(&info, child);
                    }
                }
                Err(_) => {}
            }
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
