//! Facts about this machine for `cordon doctor` and for refusing early: kernel, Landlock,
//! user namespaces, seccomp, cgroups, overlayfs. Probes that need a namespace run in a
//! short-lived child so cordon itself never changes.

use std::fs;
use std::path::Path;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::sys::{self, CloneResult};

/// What to tell a user whose kernel refuses unprivileged user namespaces.
pub const USERNS_FIX: &str = "unprivileged user namespaces are unavailable. Fix one of: \
`sudo sysctl -w kernel.unprivileged_userns_clone=1` (Debian kernels before 5.10 defaults), \
`sudo sysctl -w user.max_user_namespaces=65536`, or on Ubuntu 24.04+ install the AppArmor \
profile that `cordon doctor --apparmor-profile` prints into /etc/apparmor.d/cordon and run \
`sudo apparmor_parser -r /etc/apparmor.d/cordon`; or run with --allow-weaker to accept the \
Landlock-only mode (see `cordon doctor`)";

/// The kernel release (`uname -r`).
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// The Landlock ABI version, 0 when Landlock is unavailable.
pub fn landlock_abi() -> i32 {
    sys::landlock_abi()
}

/// Whether this process may create a user namespace (tried in a child that exits at once).
pub fn userns() -> Result<(), String> {
    in_child(libc::CLONE_NEWUSER, || 0)
}

/// Whether a user namespace may mount overlayfs (needed for transactions).
pub fn overlayfs_in_userns() -> Result<(), String> {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    in_child(libc::CLONE_NEWUSER | libc::CLONE_NEWNS, move || {
        let maps = fs::write("/proc/self/setgroups", "deny")
            .and_then(|_| fs::write("/proc/self/uid_map", format!("{uid} {uid} 1")))
            .and_then(|_| fs::write("/proc/self/gid_map", format!("{gid} {gid} 1")));
        if maps.is_err() || sys::make_root_private().is_err() {
            return 2;
        }
        if sys::mount_fs(c"tmpfs", c"/tmp", c"tmpfs", c"").is_err() {
            return 3;
        }
        for d in ["/tmp/l", "/tmp/u", "/tmp/w", "/tmp/m"] {
            if fs::create_dir(d).is_err() {
                return 4;
            }
        }
        match sys::mount_fs(
            c"overlay",
            c"/tmp/m",
            c"overlay",
            c"lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w",
        ) {
            Ok(()) => 0,
            Err(_) => 5,
        }
    })
}

/// Runs `f` in a child created with `flags`; Ok when it exits 0.
fn in_child(flags: libc::c_int, f: impl FnOnce() -> i32) -> Result<(), String> {
    // clone_fork itself refuses (EDEADLK) unless the process is single-threaded.
    match sys::clone_fork(flags) {
        Ok(CloneResult::Child) => sys::exit_now(f()),
        Ok(CloneResult::Parent(pid)) => match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(WaitStatus::Exited(_, n)) => Err(format!("probe step {n} failed")),
            other => Err(format!("probe ended unexpectedly: {other:?}")),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// Whether the kernel offers seccomp filters.
pub fn seccomp() -> bool {
    fs::read_to_string("/proc/self/status")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with("Seccomp:")))
}

/// Kernel knobs that commonly block user namespaces, with their values.
pub fn userns_knobs() -> Vec<(String, String)> {
    [
        "/proc/sys/kernel/unprivileged_userns_clone",
        "/proc/sys/user/max_user_namespaces",
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
    ]
    .iter()
    .filter_map(|p| {
        fs::read_to_string(p).ok().map(|v| {
            (
                p.trim_start_matches("/proc/sys/").replace('/', "."),
                v.trim().to_string(),
            )
        })
    })
    .collect()
}

/// What cgroups this machine has. Whether this user can make one is `limits()`, which tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroups {
    /// `v2`, `v1`, `hybrid` (v1 controllers beside a v2 mount) or `none`.
    pub version: &'static str,
    /// v1 controllers mounted (memory, pids, cpu, …).
    pub v1_controllers: Vec<String>,
    /// Controllers enabled at the v2 mount's root.
    pub v2_controllers: Vec<String>,
}

/// Reads /proc/self/mounts and the cgroup files.
pub fn cgroups() -> Cgroups {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut v1 = Vec::new();
    let mut v2_root = None;
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        match f[2] {
            "cgroup2" => v2_root = Some(f[1].to_string()),
            "cgroup" => {
                for opt in f[3].split(',') {
                    if [
                        "memory", "pids", "cpu", "cpuacct", "cpuset", "blkio", "freezer", "devices",
                    ]
                    .contains(&opt)
                    {
                        v1.push(opt.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    let v2_controllers: Vec<String> = v2_root
        .as_ref()
        .and_then(|r| fs::read_to_string(Path::new(r).join("cgroup.controllers")).ok())
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let version = match (v1.is_empty(), v2_root.is_some()) {
        (false, true) => "hybrid",
        (false, false) => "v1",
        (true, true) => "v2",
        (true, false) => "none",
    };
    Cgroups {
        version,
        v1_controllers: v1,
        v2_controllers,
    }
}

/// An AppArmor profile that lets the installed cordon binary create user namespaces on
/// Ubuntu 24.04+ (the same shape Ubuntu ships for bwrap-based tools).
pub fn apparmor_profile(binary: &Path) -> String {
    format!(
        "# /etc/apparmor.d/cordon -- lets cordon create the user namespace it confines commands in\n\
abi <abi/4.0>,\n\
include <tunables/global>\n\n\
profile cordon {} flags=(unconfined) {{\n  userns,\n\n  include if exists <local/cordon>\n}}\n",
        binary.display()
    )
}

/// What would hold memory, cpu and pids limits here: a cgroup made and removed at once to
/// find out, or why none can be made.
pub fn limits() -> crate::Mechanism {
    crate::limits::probe()
}

/// Whether seccomp can hand refusals to a supervisor (user notification, Linux 5.0+): what
/// `syscall_refused` audit events rest on.
pub fn seccomp_user_notification() -> bool {
    crate::sys::seccomp_notif_sizes().is_ok()
}

/// The kernel audit subsystem's state, which is where Landlock (ABI 7+) logs its denials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelAudit {
    Enabled,
    Disabled,
    /// It could not be asked (not root, no audit support): why.
    Unknown(String),
}

/// Asks the kernel (AUDIT_GET over netlink) whether audit is enabled.
pub fn kernel_audit() -> KernelAudit {
    use nix::sys::socket::{
        bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
        SockType,
    };
    const AUDIT_GET: u16 = 1000;
    const NLMSG_ERROR: u16 = 2;
    const NLM_F_REQUEST: u16 = 1;
    let sock = match socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkAudit,
    ) {
        Ok(s) => s,
        Err(e) => return KernelAudit::Unknown(format!("no audit netlink: {e}")),
    };
    let ask = || -> nix::Result<Vec<u8>> {
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            &NetlinkAddr::new(0, 0),
        )?;
        let mut msg = Vec::with_capacity(16);
        msg.extend_from_slice(&16u32.to_ne_bytes()); // nlmsg_len
        msg.extend_from_slice(&AUDIT_GET.to_ne_bytes()); // nlmsg_type
        msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes()); // nlmsg_flags
        msg.extend_from_slice(&1u32.to_ne_bytes()); // nlmsg_seq
        msg.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
        send(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            &msg,
            MsgFlags::empty(),
        )?;
        let mut buf = vec![0u8; 512];
        let n = recv(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            &mut buf,
            MsgFlags::empty(),
        )?;
        buf.truncate(n);
        Ok(buf)
    };
    let reply = match ask() {
        Ok(r) => r,
        Err(e) => return KernelAudit::Unknown(format!("AUDIT_GET: {e}")),
    };
    let u16_at = |i: usize| {
        reply
            .get(i..i + 2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
    };
    let u32_at = |i: usize| {
        reply
            .get(i..i + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    match (u16_at(4), u32_at(20)) {
        // struct audit_status after the 16-byte header: mask, then enabled.
        (Some(AUDIT_GET), Some(0)) => KernelAudit::Disabled,
        (Some(AUDIT_GET), Some(_)) => KernelAudit::Enabled,
        (Some(NLMSG_ERROR), _) => {
            let errno = u32_at(16).map_or(0, |e| -(e as i32));
            KernelAudit::Unknown(format!(
                "AUDIT_GET refused: {}",
                std::io::Error::from_raw_os_error(errno)
            ))
        }
        _ => KernelAudit::Unknown("unexpected AUDIT_GET reply".into()),
    }
}
