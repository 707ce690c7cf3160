//! The last steps before the command runs: everything allocated up front (argv, envp, the
//! candidate paths of a PATH search), so the forked child only makes syscalls.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::sys;
use crate::Spec;

/// Where the command's process keeps the status channel, the listener channel and (when it
/// waits for one) the lifeline of the second go-ahead until exec.
const STATUS_FD: i32 = 3;
const NOTIFY_FD: i32 = 4;
const GO_AHEAD_FD: i32 = 5;

/// Exit status for a command that could not be found / executed (as in shells).
pub const EXIT_NOT_FOUND: i32 = 127;
pub const EXIT_NOT_EXECUTABLE: i32 = 126;

/// argv, envp and the PATH search, as C data that outlives the fork.
pub struct Prepared {
    candidates: Vec<CString>,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    env_ptrs: Vec<*const libc::c_char>,
    pub cwd: CString,
    pub fallback_cwd: CString,
    pub program: String,
    /// The syscall filter, compiled before the fork.
    pub seccomp: crate::seccomp::Program,
    /// Whether cordon judges execs (and so must read this process's memory at its exec).
    pub supervise_exec: bool,
}

impl Prepared {
    pub fn new(
        spec: &Spec,
        env: &[(std::ffi::OsString, std::ffi::OsString)],
        workspace: &std::path::Path,
    ) -> io::Result<Prepared> {
        let program = spec
            .argv
            .first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command given"))?;
        let argv: Vec<CString> = spec
            .argv
            .iter()
            .map(|a| sys::cstring(a.as_bytes()))
            .collect::<io::Result<_>>()?;
        let envp: Vec<CString> = env
            .iter()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                sys::cstring(&kv)
            })
            .collect::<io::Result<_>>()?;
        let path_var = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_os_str())
            .unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
        let candidates = search_candidates(program, path_var)?;
        let argv_ptrs = argv
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        let env_ptrs = envp
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        Ok(Prepared {
            candidates,
            argv_ptrs,
            _argv: argv,
            env_ptrs,
            _envp: envp,
            cwd: sys::cstring(spec.cwd.as_os_str().as_bytes())?,
            fallback_cwd: sys::cstring(workspace.as_os_str().as_bytes())?,
            program: program.to_string_lossy().into_owned(),
            seccomp: crate::seccomp::compile(spec.supervise_exec).map_err(io::Error::other)?,
            supervise_exec: spec.supervise_exec,
        })
    }

    /// Tries each candidate like `execvp`; returns only when none could be executed.
    pub fn exec(&self) -> io::Error {
        let mut denied: Option<io::Error> = None;
        let mut last = io::Error::from_raw_os_error(libc::ENOENT);
        for c in &self.candidates {
            let err = sys::execve(c, &self.argv_ptrs, &self.env_ptrs);
            match err.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENOTDIR) => last = err,
                Some(libc::EACCES) => denied = Some(err),
                _ => return err,
            }
        }
        denied.unwrap_or(last)
    }

    /// Reports an exec failure on the status channel and leaves with 126 or 127.
    pub fn fail(&self, status: BorrowedFd<'_>, err: &io::Error) -> ! {
        let errno = err.raw_os_error().unwrap_or(0);
        let (code, what) = if errno == libc::ENOENT {
            (EXIT_NOT_FOUND, "command not found")
        } else {
            (EXIT_NOT_EXECUTABLE, "command not executable")
        };
        let msg = format!("exec\t{errno}\t{what}: {}: {err}", self.program);
        let _ = sys::write_all(status, msg.as_bytes());
        sys::exit_now(code)
    }
}

/// Paths to try for `program`: itself if it names a path, else each PATH entry joined with it.
fn search_candidates(program: &OsStr, path_var: &OsStr) -> io::Result<Vec<CString>> {
    if program.as_bytes().contains(&b'/') {
        return Ok(vec![sys::cstring(program.as_bytes())?]);
    }
    let mut out = Vec::new();
    for dir in path_var.as_bytes().split(|b| *b == b':') {
        let dir = if dir.is_empty() { b".".as_slice() } else { dir };
        let full = PathBuf::from(OsStr::from_bytes(dir)).join(program);
        out.push(sys::cstring(full.as_os_str().as_bytes())?);
    }
    Ok(out)
}

/// Reports a failed setup stage on the status channel and leaves with 125.
pub fn fail_stage(status: BorrowedFd<'_>, stage: crate::Stage, errno: i32, detail: &str) -> ! {
    let msg = format!("{}\t{errno}\t{detail}", stage.name());
    let _ = sys::write_all(status, msg.as_bytes());
    sys::exit_now(125)
}

/// The descriptors the command's process uses until exec, one job each.
pub struct CommandFds {
    /// Setup errors go here (close-on-exec: EOF at exec means success).
    pub status: std::os::fd::OwnedFd,
    /// Where the syscall filter's listener goes to cordon.
    pub notify: std::os::fd::OwnedFd,
    /// The pty slave, when cordon runs on a terminal, and which of fds 0-2 it replaces.
    pub terminal: Option<(std::os::fd::OwnedFd, [bool; 3])>,
    /// When init handed cordon listeners to serve: the lifeline on which cordon's second
    /// go-ahead arrives, once it serves them. The process waits for it right before exec.
    pub go_ahead: Option<std::os::fd::OwnedFd>,
}

/// What the command's own process does after the mount view is final, in DESIGN.md's order:
/// its own session and terminal, drop capabilities, no_new_privs, Landlock, close inherited
/// descriptors, chdir, the seccomp filter last (its listener sent to cordon), the second
/// go-ahead when there is one, exec. Waiting for the go-ahead here rather than in init lets
/// all of this overlap with cordon's start of the threads that serve what init handed over.
pub fn confine_and_exec(
    prepared: &Prepared,
    writable: &[PathBuf],
    read_denied: &[PathBuf],
    extra: crate::landlock_rules::Extra,
    landlock_required: bool,
    fds: CommandFds,
) -> ! {
    use crate::Stage;
    use std::os::fd::AsFd;
    let CommandFds {
        status,
        notify,
        terminal,
        go_ahead,
    } = fds;
    let fd = status.as_fd();
    let errno = |e: &io::Error| e.raw_os_error().unwrap_or(0);
    let (slave, ttys) = terminal.unzip();
    if let Err(e) = crate::pty::attach(slave.as_ref(), ttys.unwrap_or_default()) {
        fail_stage(fd, Stage::Terminal, errno(&e), &e.to_string());
    }
    drop(slave); // now on the descriptors it replaces
    if let Err(e) = crate::caps::drop_all() {
        fail_stage(fd, Stage::Capabilities, errno(&e), &e.to_string());
    }
    if let Err(e) = crate::caps::set_no_new_privs() {
        fail_stage(fd, Stage::NoNewPrivs, errno(&e), &e.to_string());
    }
    if landlock_required {
        if let Err(e) = crate::landlock_rules::restrict(writable, read_denied, extra) {
            fail_stage(fd, Stage::Landlock, 0, &e);
        }
    }
    // Keep only stdio, the status channel (fd 3), the channel for the filter's listener
    // (fd 4) and the go-ahead's lifeline (fd 5, if any), close-on-exec. All are copied above
    // 9 first, so no move clobbers another.
    let placed = sys::dup_above(fd, 10)
        .and_then(|s| Ok((s, sys::dup_above(notify.as_fd(), 10)?)))
        .and_then(|(s, n)| {
            let g = match &go_ahead {
                Some(g) => Some(sys::dup_above(g.as_fd(), 10)?),
                None => None,
            };
            sys::dup_to(sys::fixed_fd(s), STATUS_FD)?;
            sys::dup_to(sys::fixed_fd(n), NOTIFY_FD)?;
            let last = match g {
                Some(g) => {
                    sys::dup_to(sys::fixed_fd(g), GO_AHEAD_FD)?;
                    GO_AHEAD_FD
                }
                None => NOTIFY_FD,
            };
            sys::close_from(last as u32 + 1)
        });
    if let Err(e) = placed {
        fail_stage(fd, Stage::CloseFds, errno(&e), &e.to_string());
    }
    // The numbers may have been reused by the moves: never close them through these.
    let waits = go_ahead.is_some();
    std::mem::forget(status);
    std::mem::forget(notify);
    std::mem::forget(go_ahead);
    let status3 = sys::fixed_fd(STATUS_FD);
    if nix::unistd::chdir(prepared.cwd.as_c_str()).is_err() {
        if let Err(e) = nix::unistd::chdir(prepared.fallback_cwd.as_c_str()) {
            fail_stage(status3, Stage::Chdir, e as i32, &e.to_string());
        }
    }
    // This process inherited init's non-dumpable state (and a memory descriptor owned by
    // the host's user namespace), so an unprivileged cordon could not read the exec it is
    // about to judge. Nothing else in the sandbox exists yet to attach to it, and exec
    // replaces this memory anyway.
    if prepared.supervise_exec {
        let _ = sys::prctl(libc::PR_SET_DUMPABLE, 1);
    }
    // Last: after this, the command's own syscalls are all that run. The listener goes to
    // cordon; the command must not keep it, or it could answer its own notifications.
    let handed = prepared
        .seccomp
        .install()
        .and_then(|listener| sys::send_fd(sys::fixed_fd(NOTIFY_FD), listener.as_fd()));
    sys::close_fd(NOTIFY_FD);
    if let Err(e) = handed {
        fail_stage(status3, Stage::Seccomp, errno(&e), &e.to_string());
    }
    // cordon serves what init handed over (or gave up, and kills the sandbox): only a
    // go-ahead lets the command run. The filter allows this read, as every read.
    if waits {
        if !crate::init::go_ahead(sys::fixed_fd(GO_AHEAD_FD)) {
            sys::exit_now(125);
        }
        sys::close_fd(GO_AHEAD_FD);
    }
    let err = prepared.exec();
    prepared.fail(status3, &err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_path_order() {
        let c = search_candidates(OsStr::new("ls"), OsStr::new("/a:/b::")).unwrap();
        let c: Vec<_> = c.iter().map(|s| s.to_str().unwrap().to_string()).collect();
        assert_eq!(c, ["/a/ls", "/b/ls", "./ls", "./ls"]);
        let c = search_candidates(OsStr::new("./x"), OsStr::new("/a")).unwrap();
        assert_eq!(c.len(), 1);
    }
}
