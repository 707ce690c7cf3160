//! Programs executed inside the sandbox: with command rules in force, every execve/execveat
//! waits (seccomp user notification) while cordon's caller judges its path and argv, then
//! runs or fails with EACCES.
//!
//! Limits, by design of the kernel interface: the path and argv are read from the process's
//! memory while it waits; another thread of it could change that memory between the read and
//! the exec (so a hostile program can make the exec differ from what was judged). The rules
//! are a policy on well-behaved tools and a tripwire; the boundary itself is the kernel's
//! (mounts, Landlock, the filter), which holds whatever runs.

use std::ffi::OsStr;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};

use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::unistd::Pid;

use crate::sys;

/// Longest path and argument read; longer ones are cut (and judged as cut).
const MAX_STRING: usize = 4096;
/// Most arguments read.
const MAX_ARGS: usize = 1024;

/// One exec waiting for a decision. Send `true` on `reply` to let it run.
#[derive(Debug)]
pub struct ExecRequest {
    /// The process, as a pid on the host.
    pub pid: i32,
    /// The path as the process gave it (relative to `cwd` unless absolute).
    pub path: String,
    pub argv: Vec<String>,
    /// The process's working directory, as far as cordon can name it.
    pub cwd: Option<PathBuf>,
    pub reply: mpsc::Sender<bool>,
}

pub(crate) fn is_exec(nr: i32) -> bool {
    let nr = libc::c_long::from(nr);
    nr == libc::SYS_execve || nr == libc::SYS_execveat
}

/// Reads the request from the waiting process and hands it to `judge` on a thread of its
/// own (a human may take minutes; other notifications must not wait for that). Anything
/// that cannot be read or judged is refused.
pub(crate) fn hold(
    listener: Arc<OwnedFd>,
    req: libc::seccomp_notif,
    judge: mpsc::Sender<ExecRequest>,
) {
    let held = listener.clone();
    let spawned = std::thread::Builder::new()
        .name("cordon-exec".into())
        .spawn(move || {
            let listener = held;
            let allowed = read(&req).ok().is_some_and(|(path, argv)| {
                // What was read belongs to the process that asked only if it still waits.
                if !sys::notif_id_valid(listener.as_fd(), req.id) {
                    return false;
                }
                let (reply, answer) = mpsc::channel();
                let request = ExecRequest {
                    pid: req.pid as i32,
                    path,
                    argv,
                    cwd: std::fs::read_link(format!("/proc/{}/cwd", req.pid)).ok(),
                    reply,
                };
                judge.send(request).is_ok() && answer.recv().unwrap_or(false)
            });
            let _ = match allowed {
                true => sys::notif_continue(listener.as_fd(), req.id),
                false => sys::notif_deny(listener.as_fd(), req.id, libc::EACCES),
            };
        });
    if spawned.is_err() {
        // No thread to judge it: refuse rather than let it run unjudged.
        let _ = sys::notif_deny(listener.as_fd(), req.id, libc::EACCES);
    }
}

/// The path and argv of an execve (path, argv, envp) or execveat (dirfd, path, argv, …).
fn read(req: &libc::seccomp_notif) -> io::Result<(String, Vec<String>)> {
    let pid = Pid::from_raw(req.pid as i32);
    let args = req.data.args;
    let (path_ptr, argv_ptr) = match libc::c_long::from(req.data.nr) {
        libc::SYS_execveat => (args[1], args[2]),
        _ => (args[0], args[1]),
    };
    let path = read_string(pid, path_ptr)?;
    let mut argv = Vec::new();
    for i in 0..MAX_ARGS as u64 {
        let ptr = read_u64(pid, argv_ptr + i * 8)?;
        if ptr == 0 {
            break;
        }
        argv.push(read_string(pid, ptr)?);
    }
    Ok((path, argv))
}

fn read_u64(pid: Pid, addr: u64) -> io::Result<u64> {
    let mut buf = [0u8; 8];
    let n = process_vm_readv(
        pid,
        &mut [IoSliceMut::new(&mut buf)],
        &[RemoteIoVec {
            base: addr as usize,
            len: 8,
        }],
    )?;
    if n != 8 {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    Ok(u64::from_ne_bytes(buf))
}

/// A NUL-terminated string, read a page piece at a time (a read may not cross into an
/// unmapped page).
fn read_string(pid: Pid, addr: u64) -> io::Result<String> {
    const PAGE: u64 = 4096;
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < MAX_STRING {
        let len = (PAGE - at % PAGE) as usize;
        let mut chunk = vec![0u8; len];
        let n = process_vm_readv(
            pid,
            &mut [IoSliceMut::new(&mut chunk)],
            &[RemoteIoVec {
                base: at as usize,
                len,
            }],
        )?;
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EFAULT));
        }
        if let Some(end) = chunk[..n].iter().position(|b| *b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Ok(OsStr::from_bytes(&out).to_string_lossy().into_owned());
        }
        out.extend_from_slice(&chunk[..n]);
        at += n as u64;
    }
    out.truncate(MAX_STRING);
    Ok(OsStr::from_bytes(&out).to_string_lossy().into_owned())
}
