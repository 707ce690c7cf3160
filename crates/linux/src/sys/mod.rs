//! The only place in this crate with `unsafe`: one raw syscall per function behind a safe
//! signature. Each wrapper reads errno immediately and returns a `Result`.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Result of a raw syscall that returns -1 and sets errno on failure.
fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = check(ret)? as RawFd;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What `clone` returned in this process.
pub enum CloneResult {
    Parent(libc::pid_t),
    Child,
}

/// The number of threads in this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// `clone(flags | SIGCHLD)` without a new stack: fork semantics plus new namespaces.
/// Refuses (EDEADLK) unless the process is single-threaded, the one state in which a forked
/// child may allocate and take locks. Callers end the child in `exec` or `_exit`.
pub fn clone_fork(flags: libc::c_int) -> io::Result<CloneResult> {
    if thread_count() != 1 {
        return Err(io::Error::from_raw_os_error(libc::EDEADLK));
    }
    let flags = (flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: a null stack makes the child continue on a copy-on-write copy of our stack,
    // exactly like fork(2); with one thread no lock can be held by a thread that the child
    // lacks, so the child may go on running ordinary Rust code.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match check(ret)? {
        0 => Ok(CloneResult::Child),
        pid => Ok(CloneResult::Parent(pid as libc::pid_t)),
    }
}

/// `open_tree(dirfd, path, OPEN_TREE_CLONE | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW)`: a
/// detached copy of the mount tree at `path`.
pub fn clone_tree(dirfd: Option<BorrowedFd<'_>>, path: &CStr) -> io::Result<OwnedFd> {
    let dirfd = dirfd.map_or(libc::AT_FDCWD, |fd| fd.as_raw_fd());
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as u32;
    let flags = flags | libc::AT_SYMLINK_NOFOLLOW as u32;
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
    owned(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) })
}

/// `move_mount(from, "", to, "", F_EMPTY_PATH | T_EMPTY_PATH)`: attach a detached tree (or
/// move a mount) onto the object `to` refers to.
pub fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both descriptors are borrowed for the call; the paths are static empty strings.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    };
    check(ret).map(drop)
}

/// Mount attribute bits for [`mount_setattr`].
pub const ATTR_RDONLY: u64 = libc::MOUNT_ATTR_RDONLY;
pub const ATTR_NOSUID: u64 = libc::MOUNT_ATTR_NOSUID;
pub const ATTR_NODEV: u64 = libc::MOUNT_ATTR_NODEV;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], {set})`: restrict a mount (tree).
pub fn mount_setattr(fd: BorrowedFd<'_>, set: u64, recursive: bool) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `attr` lives across the call and its size is passed alongside it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(ret).map(drop)
}

/// A new, detached filesystem instance (`fsopen` + `fsconfig` + `fsmount`); an option with an
/// empty value is set as a flag.
pub fn new_fs(fstype: &CStr, options: &[(&CStr, &CStr)], attrs: u64) -> io::Result<OwnedFd> {
    // SAFETY: `fstype` is a valid C string; FSOPEN_CLOEXEC is a defined flag.
    let ctx =
        owned(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) })?;
    for (key, value) in options {
        // An empty value is a flag option (overlayfs's `userxattr`), which takes no value.
        let (cmd, value) = match value.is_empty() {
            true => (libc::FSCONFIG_SET_FLAG, std::ptr::null()),
            false => (libc::FSCONFIG_SET_STRING, value.as_ptr()),
        };
        // SAFETY: key and value (when not null) are valid C strings for the duration of the
        // call; SET_FLAG takes a null value.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                ctx.as_raw_fd(),
                cmd,
                key.as_ptr(),
                value,
                0,
            )
        };
        check(ret)?;
    }
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    check(ret)?;
    // SAFETY: `ctx` is a configured filesystem context owned by us.
    owned(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            ctx.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attrs,
        )
    })
}

/// `openat2(dirfd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)`:
/// a handle on `path` inside the tree rooted at `dirfd`, following no link at all.
pub fn open_in_root(dirfd: BorrowedFd<'_>, path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain data; all-zero is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `how` and `path` outlive the call; the size passed is `how`'s size.
    owned(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    })
}

/// `pivot_root(".", ".")` followed by a lazy unmount of the old root, which then sits on top
/// of the new one (the trick documented in pivot_root(2)).
pub fn pivot_to_cwd() -> io::Result<()> {
    // SAFETY: both arguments are static C strings.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) })?;
    // SAFETY: static C string; MNT_DETACH is a defined flag.
    check(unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) } as libc::c_long).map(drop)
}

/// `mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)`: nothing we mount propagates out.
pub fn make_root_private() -> io::Result<()> {
    // SAFETY: null source/fstype/data are allowed for a propagation change.
    let ret = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    check(ret as libc::c_long).map(drop)
}

/// `close_range(first, u32::MAX, 0)`.
pub fn close_from(first: u32) -> io::Result<()> {
    // SAFETY: closing descriptors we do not use; callers ensure none are borrowed afterwards.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) }).map(drop)
}

/// `prctl(option, arg2, 0, 0, 0)`.
pub fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> io::Result<libc::c_int> {
    // SAFETY: the options used by this crate take an integer argument only.
    let ret = unsafe {
        libc::prctl(
            option,
            arg2,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    check(ret as libc::c_long).map(|r| r as libc::c_int)
}

/// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)`.
pub fn clear_ambient_caps() -> io::Result<()> {
    // SAFETY: integer arguments only.
    let ret = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    check(ret as libc::c_long).map(drop)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `capset` with empty effective, permitted and inheritable sets.
pub fn clear_caps() -> io::Result<()> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and a two-element data array (version 3 layout) live across the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    check(ret).map(drop)
}

/// `execve(path, argv, envp)`; returns only on failure.
pub fn execve(
    path: &CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> io::Error {
    debug_assert!(argv.last().is_some_and(|p| p.is_null()));
    debug_assert!(envp.last().is_some_and(|p| p.is_null()));
    // SAFETY: argv and envp are NULL-terminated arrays of pointers into CStrings that the
    // caller keeps alive (see exec::Prepared).
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// `_exit(code)`: leave a forked child without running destructors or atexit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// Brings a network interface up (`SIOCSIFFLAGS` with IFF_UP|IFF_RUNNING).
pub fn interface_up(sock: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.to_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads a valid ifreq that lives across the call.
    let ret = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCSIFFLAGS,
            &req as *const libc::ifreq,
        )
    };
    check(ret as libc::c_long).map(drop)
}

/// Writes all of `data` to a raw descriptor (used to report errors from forked children,
/// where no std handle owns the descriptor).
pub fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A C string from bytes that cannot hold NUL (paths and arguments from the OS).
pub fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The Landlock ABI version the kernel supports, 0 when it has none.
pub fn landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute pointer and size 0 this call only reports the version.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if ret < 0 {
        0
    } else {
        ret as i32
    }
}

/// `mount(source, target, fstype, 0, data)` for the overlayfs probe.
pub fn mount_fs(source: &CStr, target: &CStr, fstype: &CStr, data: &CStr) -> io::Result<()> {
    // SAFETY: all pointers are valid C strings for the duration of the call.
    let ret = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    check(ret as libc::c_long).map(drop)
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, min)`: a copy at the lowest free number >= `min`, left for
/// `close_from` to close.
pub fn dup_above(fd: BorrowedFd<'_>, min: RawFd) -> io::Result<RawFd> {
    // SAFETY: integer arguments; the new descriptor is not owned by any Rust value.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) } as libc::c_long)
        .map(|fd| fd as RawFd)
}

#[repr(C)]
struct Rlimit64 {
    cur: u64,
    max: u64,
}

/// `prlimit64(0, resource, new, &old)`: this process's (soft, hard) limit of `resource`, set
/// to `new` first when given. Raw syscall, so nothing allocates (init calls it before fork).
pub fn rlimit(resource: libc::c_int, new: Option<(u64, u64)>) -> io::Result<(u64, u64)> {
    let new = new.map(|(cur, max)| Rlimit64 { cur, max });
    let mut old = Rlimit64 { cur: 0, max: 0 };
    let new_ptr = new
        .as_ref()
        .map_or(std::ptr::null(), |n| n as *const Rlimit64);
    // SAFETY: `new` (when given) and `old` are live `struct rlimit64` values for the duration
    // of the call; pid 0 means this process, so no other process's limits are touched.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0 as libc::pid_t,
            resource,
            new_ptr,
            &mut old as *mut Rlimit64,
        )
    };
    check(ret).map(|_| (old.cur, old.max))
}

/// Sends one descriptor over a Unix socket (SCM_RIGHTS), with a one-byte payload.
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [fd.as_raw_fd()];
    let iov = [io::IoSlice::new(b"L")];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives the descriptor [`send_fd`] sent (close-on-exec); `None` when the peer closed the
/// socket without sending one.
pub fn recv_fd(sock: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut byte = [0u8; 1];
    let mut iov = [io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => break m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut received = None;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel installed this descriptor in our table while receiving
                // the message; nothing else refers to it yet, so it is ours to own (and to
                // close, for any beyond the first).
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                received.get_or_insert(owned);
            }
        }
    }
    Ok(received)
}

/// `dup3(fd, target, O_CLOEXEC)`: moves a descriptor to a fixed number below `close_from`.
pub fn dup_to(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    if fd.as_raw_fd() == target {
        return Ok(());
    }
    // SAFETY: `target` is not borrowed by anything in the child that calls this; dup3
    // replaces whatever it held.
    check(unsafe { libc::dup3(fd.as_raw_fd(), target, libc::O_CLOEXEC) } as libc::c_long).map(drop)
}

/// Borrows a descriptor number the caller placed with [`dup_to`] and keeps open until exec.
pub fn fixed_fd(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: callers pass only numbers they dup'd onto just before and close only by
    // exec (close-on-exec) or by [`close_fd`] after the last use.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Closes a descriptor placed with [`dup_to`] once it has served.
pub fn close_fd(fd: RawFd) {
    // SAFETY: the number was placed by `dup_to` and is not used after this call.
    unsafe { libc::close(fd) };
}

/// `seccomp(SET_MODE_FILTER, NEW_LISTENER, prog)`: installs a filter whose USER_NOTIF
/// verdicts wait for an answer on the returned descriptor. no_new_privs must be set.
pub fn seccomp_with_listener(prog: &[libc::sock_filter]) -> io::Result<OwnedFd> {
    let len = u16::try_from(prog.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `prog`, which outlives the call; the kernel copies it.
    owned(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    })
}

/// Receives one pending seccomp notification (blocks until there is one).
pub fn notif_recv(listener: BorrowedFd<'_>) -> io::Result<libc::seccomp_notif> {
    // SAFETY: seccomp_notif is plain data; the kernel requires it zeroed before RECV.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: `req` is a live seccomp_notif for the duration of the call, as RECV expects.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV as _,
            &mut req as *mut libc::seccomp_notif,
        )
    };
    check(ret as libc::c_long).map(|_| req)
}

/// Answers notification `id`: the syscall fails with `errno` and is never executed.
pub fn notif_deny(listener: BorrowedFd<'_>, id: u64, errno: i32) -> io::Result<()> {
    let resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: -errno,
        flags: 0,
    };
    // SAFETY: `resp` is a live seccomp_notif_resp for the duration of the call.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND as _,
            &resp as *const libc::seccomp_notif_resp,
        )
    };
    check(ret as libc::c_long).map(drop)
}

/// `pidfd_open(pid, 0)`: a handle on a child that stays valid (and names only it) even after
/// the pid is reaped and reused.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    owned(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) })
}

/// `pidfd_send_signal(pidfd, SIGKILL)`.
pub fn pidfd_kill(pidfd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a null siginfo is allowed and means "as kill(2) would send it".
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    })
    .map(drop)
}

/// `ioctl(fd, TIOCGWINSZ)`: a terminal's window size.
pub fn window_size(fd: BorrowedFd<'_>) -> io::Result<libc::winsize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `ws` is a live winsize for the duration of the call, as TIOCGWINSZ expects.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGWINSZ,
            &mut ws as *mut libc::winsize,
        )
    };
    check(ret as libc::c_long).map(|_| ws)
}

/// `ioctl(fd, TIOCSWINSZ)`: tells a pty (and its foreground processes, by SIGWINCH) its size.
pub fn set_window_size(fd: BorrowedFd<'_>, ws: &libc::winsize) -> io::Result<()> {
    // SAFETY: `ws` is a live winsize for the duration of the call, as TIOCSWINSZ expects.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws as *const libc::winsize) };
    check(ret as libc::c_long).map(drop)
}

/// `ioctl(fd, TIOCSCTTY, 0)`: makes the terminal the calling session leader's controlling
/// terminal (never stealing one that belongs to another session).
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0 as libc::c_int) };
    check(ret as libc::c_long).map(drop)
}

/// `seccomp(SECCOMP_GET_NOTIF_SIZES)`: succeeds where user notification exists.
pub fn seccomp_notif_sizes() -> io::Result<libc::seccomp_notif_sizes> {
    let mut sizes = libc::seccomp_notif_sizes {
        seccomp_notif: 0,
        seccomp_notif_resp: 0,
        seccomp_data: 0,
    };
    // SAFETY: `sizes` is a live seccomp_notif_sizes for the duration of the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_NOTIF_SIZES,
            0u32,
            &mut sizes as *mut libc::seccomp_notif_sizes,
        )
    })
    .map(|_| sizes)
}

/// Answers notification `id`: let the syscall run as the process asked (used for exec only,
/// after cordon's caller allowed it; the process's memory may have changed since it was read).
pub fn notif_continue(listener: BorrowedFd<'_>, id: u64) -> io::Result<()> {
    let resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: 0,
        flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    };
    // SAFETY: `resp` is a live seccomp_notif_resp for the duration of the call.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND as _,
            &resp as *const libc::seccomp_notif_resp,
        )
    };
    check(ret as libc::c_long).map(drop)
}

/// Whether notification `id` is still pending (its process alive and waiting): checked after
/// reading the process's memory, so what was read belongs to the process that asked.
pub fn notif_id_valid(listener: BorrowedFd<'_>, id: u64) -> bool {
    // SAFETY: `id` is a live u64 for the duration of the call, as ID_VALID expects.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _,
            &id as *const u64,
        )
    };
    ret == 0
}
