//! The sandbox's init (pid 1 of its pid namespace): finishes the user namespace, builds the
//! mount view, starts the command, forwards signals to it, reaps every orphan, and when the
//! command ends kills whatever is left so nothing outlives it.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::exec::{confine_and_exec, fail_stage, CommandFds, Prepared};
use crate::landlock_rules::Extra;
use crate::mounts;
use crate::spawn::{encode_status, forward_if_sent, forwarded_signals};
use crate::sys::{self, CloneResult};
use crate::{NetMode, Plan, Stage};

/// Descriptors init holds, one job each.
pub struct InitFds {
    /// Setup errors go here (close-on-exec: EOF at the command's exec means success).
    pub status: OwnedFd,
    /// The command's wait status, written once before init exits.
    pub result: OwnedFd,
    /// Read end of a pipe only the parent writes: hang-up means cordon died.
    pub lifeline: OwnedFd,
    /// With a proxied network or a request door: the socket on which init hands cordon the
    /// proxy's listener, then the door's, in that order.
    pub handoff: Option<OwnedFd>,
    /// The socket on which the command's process hands cordon the syscall filter's
    /// notification listener (init only passes it on).
    pub notify: OwnedFd,
    /// The command's pty slave and which stdio descriptors it replaces (passed on too).
    pub terminal: Option<(OwnedFd, [bool; 3])>,
}

/// Runs as pid 1; never returns.
pub fn main(
    plan: &Plan,
    prepared: &Prepared,
    uid: u32,
    gid: u32,
    landlock: bool,
    fds: InitFds,
) -> ! {
    let status = fds.status.as_fd();
    // If cordon dies, init dies, and with it every process in the namespace. Init waits for
    // cordon's go-ahead (sent once init is in the run's cgroup), then checks that cordon did
    // not die before PDEATHSIG was set.
    if sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong).is_err()
        || !go_ahead(&fds.lifeline)
        || parent_gone(&fds.lifeline)
    {
        sys::exit_now(125);
    }
    if let Err(e) = write_id_maps(uid, gid) {
        fail_stage(
            status,
            Stage::UidMap,
            e.raw_os_error().unwrap_or(0),
            &e.to_string(),
        );
    }
    // Init keeps capabilities in its namespace until the command starts: make it untraceable.
    // (Only after the maps: a non-dumpable process's /proc/self files belong to root.)
    let _ = sys::prctl(libc::PR_SET_DUMPABLE, 0);
    if let Err(e) = mounts::build(&plan.mounts, plan.spec.overlay.as_ref()) {
        let detail = format!("{}: {}", e.path.display(), e.source);
        fail_stage(
            status,
            e.stage,
            e.source.raw_os_error().unwrap_or(0),
            &detail,
        );
    }
    let _ = nix::unistd::sethostname("cordon");
    if plan.spec.net.isolated() {
        if let Err(e) = loopback_up() {
            fail_stage(
                status,
                Stage::Loopback,
                e.raw_os_error().unwrap_or(0),
                &e.to_string(),
            );
        }
    }
    if let Some(channel) = &fds.handoff {
        if let NetMode::Proxied { port } = plan.spec.net {
            if let Err(e) = hand_over_listener(port, channel) {
                fail_stage(
                    status,
                    Stage::ProxyListener,
                    e.raw_os_error().unwrap_or(0),
                    &format!("127.0.0.1:{port}: {e}"),
                );
            }
        }
        if plan.spec.request_door {
            if let Err(e) = hand_over_door(channel) {
                fail_stage(
                    status,
                    Stage::RequestDoor,
                    e.raw_os_error().unwrap_or(0),
                    &format!("{}: {e}", crate::REQUEST_DOOR),
                );
            }
        }
        // The command execs only once cordon serves what it was handed (the second
        // go-ahead, which the command's process waits for right before its exec), so its
        // first connection meets cordon, never a missing or foreign listener.
    }
    // cordon removes the placeholders once this run is over, while init still holds them:
    // the last reference (and with it a filesystem's slow discard of the freed block) then
    // goes with init's exit, which cordon does not wait for. Opened before the command
    // exists; close-on-exec, and the command's process closes them with the rest.
    let placeholders = hold_placeholders(plan);
    // Set here, before the fork, so the command and everything it starts inherit them.
    if let Err(e) = crate::limits::apply(plan.limits.rlimits()) {
        fail_stage(
            status,
            Stage::Limits,
            e.raw_os_error().unwrap_or(0),
            &e.to_string(),
        );
    }
    // init is single-threaded (a fork of a single-threaded cordon); clone_fork checks.
    let child = match sys::clone_fork(0) {
        Ok(CloneResult::Child) => {
            reset_signals();
            let extra = Extra {
                deny_tcp: false,
                scope: true,
            };
            let command = CommandFds {
                status: fds.status,
                notify: fds.notify,
                terminal: fds.terminal,
                go_ahead: fds.handoff.is_some().then_some(fds.lifeline),
            };
            confine_and_exec(
                prepared,
                &plan.writable,
                &plan.read_denied,
                extra,
                landlock,
                command,
            )
        }
        Ok(CloneResult::Parent(pid)) => Pid::from_raw(pid),
        Err(e) => fail_stage(
            status,
            Stage::Fork,
            e.raw_os_error().unwrap_or(0),
            &e.to_string(),
        ),
    };
    drop(fds.status);
    drop(fds.notify);
    drop(fds.terminal);
    // Init needs no privilege from here on.
    let _ = crate::caps::drop_all();
    let code = supervise(child);
    let _ = sys::write_all(fds.result.as_fd(), &code.to_ne_bytes());
    if !placeholders.is_empty() {
        // Nothing is left in the namespace: wait for cordon to remove the placeholders
        // (it closes the lifeline then, or dies, which PDEATHSIG answers).
        wait_hang_up(&fds.lifeline);
    }
    drop(placeholders);
    sys::exit_now(exit_code(code))
}

/// The run's placeholders as seen in the view, held open (O_PATH) until init exits. One
/// that cannot be opened is simply not held: holding is only about who pays for removal.
fn hold_placeholders(plan: &Plan) -> Vec<OwnedFd> {
    use nix::fcntl::OFlag;
    plan.placeholders
        .items()
        .iter()
        .filter_map(|p| {
            nix::fcntl::open(
                &p.path,
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ok()
        })
        .collect()
}

/// Blocks until cordon closes (or loses) its end of the lifeline.
fn wait_hang_up(lifeline: &OwnedFd) {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(lifeline, &mut byte) {
            Ok(0) => return,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

/// Blocks until cordon writes its go-ahead on the lifeline; false if cordon closed it first.
pub fn go_ahead(lifeline: impl AsFd) -> bool {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(&lifeline, &mut byte) {
            Ok(n) => return n == 1,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

fn parent_gone(lifeline: &OwnedFd) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(lifeline.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(n) if n > 0 => fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
        _ => false,
    }
}

/// Maps the caller's uid and gid to themselves: files made inside keep the caller's ids.
fn write_id_maps(uid: u32, gid: u32) -> std::io::Result<()> {
    fs::write("/proc/self/setgroups", "deny")?;
    fs::write("/proc/self/uid_map", format!("{uid} {uid} 1\n"))?;
    fs::write("/proc/self/gid_map", format!("{gid} {gid} 1\n"))
}

/// Binds the request door in its private tmpfs, seals that tmpfs read-only (a socket stays
/// connectable on a read-only mount; nothing can be planted beside it) and sends the door to
/// cordon.
fn hand_over_door(channel: &OwnedFd) -> std::io::Result<()> {
    let listener = std::os::unix::net::UnixListener::bind(crate::REQUEST_DOOR)?;
    let dir = nix::fcntl::open(
        std::path::Path::new(crate::REQUEST_DOOR)
            .parent()
            .unwrap_or(std::path::Path::new("/run")),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    sys::mount_setattr(
        dir.as_fd(),
        sys::ATTR_RDONLY | sys::ATTR_NOSUID | sys::ATTR_NODEV,
        false,
    )?;
    sys::send_fd(channel.as_fd(), listener.as_fd())
}

/// Binds the proxy's listener inside this network namespace and sends it to cordon, which
/// serves it from the host's side. Init keeps no copy: when cordon's proxy goes, so does the
/// listener, and connections are refused rather than queued.
fn hand_over_listener(port: u16, channel: &OwnedFd) -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    sys::send_fd(channel.as_fd(), listener.as_fd())
}

fn loopback_up() -> std::io::Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    sys::interface_up(sock.as_fd(), c"lo")
}

/// Restores default dispositions and an empty mask for the command.
pub fn reset_signals() {
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// Forwards signals to the command and reaps until it exits; then kills and reaps the rest.
/// Returns the command's raw wait status.
fn supervise(child: Pid) -> i32 {
    let Ok(sfd) = SignalFd::with_flags(&forwarded_signals(), SfdFlags::SFD_CLOEXEC) else {
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
        sys::exit_now(125);
    };
    let mut result: Option<i32> = None;
    loop {
        if let Some(code) = reap(child, &mut result) {
            return code;
        }
        if let Ok(Some(info)) = sfd.read_signal() {
            forward_if_sent(&info, child);
        }
    }
}

/// Reaps what has exited. Once the command is gone, kills the rest of the namespace and
/// returns the command's status when nothing is left.
fn reap(child: Pid, result: &mut Option<i32>) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return None,
            Ok(ws) => {
                if ws.pid() == Some(child) {
                    *result = Some(encode_status(ws));
                    // Background, setsid'd and double-forked processes die with the command.
                    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
                }
            }
            Err(nix::errno::Errno::ECHILD) => return result.or(Some(125 << 8)),
            Err(_) => return None,
        }
    }
}

/// cordon's exit status for a raw wait status: the code, or 128+N for signal N.
pub fn exit_code(raw: i32) -> i32 {
    if libc::WIFSIGNALED(raw) {
        128 + libc::WTERMSIG(raw)
    } else {
        libc::WEXITSTATUS(raw)
    }
}
