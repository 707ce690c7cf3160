//! The syscall filter: what the command may not ask the kernel for. Compiled once in cordon,
//! before the sandbox exists; installed last in the command's process, right before exec.
//!
//! Refusals return EPERM rather than killing, so tools that probe for a feature (io_uring,
//! user namespaces, keyrings) fall back to something else. Each refusal is a user
//! notification: cordon's supervisor, outside the sandbox, answers EPERM and records who
//! asked for what ([`describe`]); the syscall itself never runs. If the supervisor is gone,
//! the kernel fails the call with ENOSYS: still refused. `clone3` gets ENOSYS directly: its
//! flags live in memory a filter cannot read, and ENOSYS makes libc fall back to `clone`,
//! whose flags it can. That fallback is not a violation, so it is not reported.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule,
};

/// A syscall's number with its name (as `SYS_name`; [`name_of`] drops the prefix).
macro_rules! sc {
    ($sys:ident) => {
        (libc::$sys, stringify!($sys))
    };
}

/// Syscalls refused whatever their arguments, by family, with the reason.
const REFUSED: &[(&str, &[(libc::c_long, &str)])] = &[
    (
        "io_uring: a second way into the kernel that bypasses this filter",
        &[
            sc!(SYS_io_uring_setup),
            sc!(SYS_io_uring_enter),
            sc!(SYS_io_uring_register),
        ],
    ),
    (
        "kernel attack surface no build needs",
        &[sc!(SYS_bpf), sc!(SYS_perf_event_open), sc!(SYS_userfaultfd)],
    ),
    (
        "kernel keyrings outlive the sandbox and are shared with the user's session",
        &[sc!(SYS_keyctl), sc!(SYS_add_key), sc!(SYS_request_key)],
    ),
    (
        "the mount view is final",
        &[
            sc!(SYS_mount),
            sc!(SYS_umount2),
            sc!(SYS_pivot_root),
            sc!(SYS_move_mount),
            sc!(SYS_open_tree),
            sc!(SYS_fsopen),
            sc!(SYS_fsconfig),
            sc!(SYS_fsmount),
            sc!(SYS_fspick),
            sc!(SYS_mount_setattr),
            sc!(SYS_setns),
        ],
    ),
    (
        "replacing the kernel or loading code into it",
        &[
            sc!(SYS_kexec_load),
            sc!(SYS_kexec_file_load),
            sc!(SYS_init_module),
            sc!(SYS_finit_module),
            sc!(SYS_delete_module),
        ],
    ),
    (
        "host administration",
        &[
            sc!(SYS_acct),
            sc!(SYS_swapon),
            sc!(SYS_swapoff),
            sc!(SYS_reboot),
            sc!(SYS_syslog),
            sc!(SYS_open_by_handle_at),
            sc!(SYS_quotactl),
            #[cfg(target_arch = "x86_64")]
            sc!(SYS_iopl),
            #[cfg(target_arch = "x86_64")]
            sc!(SYS_ioperm),
        ],
    ),
];

/// The one netlink protocol a command may open (glibc's getaddrinfo and `ip` use it).
const NETLINK_ROUTE: u64 = 0;

const CLONE_NEWUSER: u64 = libc::CLONE_NEWUSER as u64;

const RET_K: u16 = 0x06; // BPF_RET | BPF_K
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The compiled filters, ready to install with no allocation.
#[derive(Debug, Clone)]
pub struct Program {
    /// Everything refused, behind the ABI check: each refusal is a user notification.
    /// (libc's instruction type: seccompiler cannot install a filter with a listener.)
    refuse: Vec<libc::sock_filter>,
    /// `clone3` refused with ENOSYS.
    no_clone3: BpfProgram,
}

/// seccompiler has no user-notification action: the rules are compiled with TRAP as a
/// marker (nothing else in the program uses it), and each `ret TRAP` becomes `ret USER_NOTIF`.
const MARKER: SeccompAction = SeccompAction::Trap;

/// Compiles the default filter for this architecture. With `supervise_exec`, execve and
/// execveat are notified too, so cordon's caller can judge each program (command rules).
pub fn compile(supervise_exec: bool) -> Result<Program, seccompiler::BackendError> {
    let arch = target_arch();
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (_, calls) in REFUSED {
        for (nr, _) in *calls {
            rules.insert(*nr, Vec::new()); // no conditions: always refused
        }
    }
    // New user namespaces would hand the command a full set of capabilities in them.
    rules.insert(
        libc::SYS_unshare,
        vec![rule(vec![flag_set(0, CLONE_NEWUSER)?])?],
    );
    // clone's flags are its first argument on every architecture cordon builds for.
    rules.insert(
        libc::SYS_clone,
        vec![rule(vec![flag_set(0, CLONE_NEWUSER)?])?],
    );
    // Typing into the user's terminal from inside the sandbox. (The request's C type differs
    // between architectures, hence the cast.)
    #[allow(clippy::unnecessary_cast)]
    rules.insert(
        libc::SYS_ioctl,
        vec![
            rule(vec![cond(1, Len::Dword, Op::Eq, libc::TIOCSTI as u64)?])?,
            rule(vec![cond(1, Len::Dword, Op::Eq, libc::TIOCLINUX as u64)?])?,
        ],
    );
    rules.insert(libc::SYS_socket, refused_socket_families()?);
    if supervise_exec {
        // Not refused: held until judged (crate::execs), then continued or failed.
        rules.insert(libc::SYS_execve, Vec::new());
        rules.insert(libc::SYS_execveat, Vec::new());
    }
    let refuse = SeccompFilter::new(rules, SeccompAction::Allow, MARKER, arch)?;
    let mut clone3 = BTreeMap::new();
    clone3.insert(libc::SYS_clone3, Vec::new());
    let no_clone3 = SeccompFilter::new(
        clone3,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;
    // Both need the guard: the kernel applies the harshest verdict of all stacked filters,
    // and seccompiler's own arch check kills.
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let mut refuse_prog = foreign_abi_guard(libc::SECCOMP_RET_USER_NOTIF);
    refuse_prog.extend(notify_instead_of_marker(BpfProgram::try_from(refuse)?));
    let mut clone3_prog = foreign_abi_guard(eperm);
    clone3_prog.extend(BpfProgram::try_from(no_clone3)?);
    Ok(Program {
        refuse: refuse_prog
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect(),
        no_clone3: clone3_prog,
    })
}

/// Rewrites the marker verdict into a user notification.
fn notify_instead_of_marker(mut prog: BpfProgram) -> BpfProgram {
    let marker = u32::from(MARKER);
    for insn in &mut prog {
        if insn.code == RET_K && insn.k == marker {
            insn.k = libc::SECCOMP_RET_USER_NOTIF;
        }
    }
    prog
}

impl Program {
    /// The instruction counts of the two filters (for the benchmark).
    pub fn lengths(&self) -> (usize, usize) {
        (self.refuse.len(), self.no_clone3.len())
    }

    /// Installs both filters on the calling thread (no_new_privs must already be set) and
    /// returns the notification listener, which belongs outside the sandbox: the caller sends
    /// it to cordon and closes its copy before exec. Only syscalls: safe between fork and exec.
    pub fn install(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        seccompiler::apply_filter(&self.no_clone3).map_err(|e| match e {
            seccompiler::Error::Seccomp(io) | seccompiler::Error::Prctl(io) => io,
            other => std::io::Error::other(other.to_string()),
        })?;
        crate::sys::seccomp_with_listener(&self.refuse)
    }
}

/// socket(domain, type, protocol) is refused unless domain is AF_UNIX, AF_INET, AF_INET6, or
/// AF_NETLINK with NETLINK_ROUTE: AF_PACKET, AF_VSOCK (the hypervisor), AF_ALG, AF_KEY,
/// Bluetooth and the rest are refused. Rules are alternatives; conditions within one all hold.
fn refused_socket_families() -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    let d = |op, v: i32| cond(0, Len::Dword, op, v as u64);
    Ok(vec![
        rule(vec![d(Op::Lt, libc::AF_UNIX)?])?,
        rule(vec![d(Op::Gt, libc::AF_INET)?, d(Op::Lt, libc::AF_INET6)?])?,
        rule(vec![
            d(Op::Gt, libc::AF_INET6)?,
            d(Op::Lt, libc::AF_NETLINK)?,
        ])?,
        rule(vec![d(Op::Gt, libc::AF_NETLINK)?])?,
        rule(vec![
            d(Op::Eq, libc::AF_NETLINK)?,
            cond(2, Len::Dword, Op::Ne, NETLINK_ROUTE)?,
        ])?,
    ])
}

/// Refuses every syscall made through another ABI (i386's int 0x80 on x86_64, arm32 on
/// aarch64) and, on x86_64, x32 numbers: without this, the same kernel entry points are
/// reachable under numbers the rules below never name. seccompiler's own check kills on a
/// foreign arch; this guard, placed before it, gives `verdict` instead (refused like the rest).
fn foreign_abi_guard(verdict: u32) -> BpfProgram {
    const LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS
    const JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
    const JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
    const NR: u32 = 0; // offsetof(struct seccomp_data, nr)
    const ARCH: u32 = 4; // offsetof(struct seccomp_data, arch)
    let i = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    let mut prog = vec![
        i(LD_W_ABS, 0, 0, ARCH),
        i(JEQ_K, 1, 0, audit_arch()),
        i(RET_K, 0, 0, verdict),
    ];
    if cfg!(target_arch = "x86_64") {
        prog.extend([
            i(LD_W_ABS, 0, 0, NR),
            i(JGE_K, 0, 1, X32_SYSCALL_BIT),
            i(RET_K, 0, 0, verdict),
        ]);
    }
    prog
}

/// What a notified syscall was and which rule refused it: plain data for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The syscall's name (`bpf`, `socket`, `ioctl`, …), or `syscall N` when it has none here.
    pub syscall: String,
    /// The argument that decided, when one did (`AF_PACKET`, `TIOCSTI`, `CLONE_NEWUSER`, …).
    pub detail: Option<String>,
    /// The rule, as the filter's family reason.
    pub rule: &'static str,
}

/// Names a notified syscall from its `seccomp_data` (number, audit arch, arguments). Only
/// what the filter refuses reaches the supervisor, so anything else is reported as it is.
pub fn describe(nr: i32, arch: u32, args: [u64; 6]) -> Refusal {
    let refusal = |syscall: &str, detail: Option<String>, rule| Refusal {
        syscall: syscall.to_string(),
        detail,
        rule,
    };
    if arch != audit_arch() {
        return refusal(
            &format!("syscall {nr}"),
            Some(format!("audit arch {arch:#x}")),
            "foreign syscall ABI: the same kernel entry points under numbers the filter does not name",
        );
    }
    if cfg!(target_arch = "x86_64") && (nr as u32) & X32_SYSCALL_BIT != 0 {
        return refusal(
            &format!("x32 syscall {}", (nr as u32) & !X32_SYSCALL_BIT),
            None,
            "foreign syscall ABI: the same kernel entry points under numbers the filter does not name",
        );
    }
    let nr = libc::c_long::from(nr);
    for (rule, calls) in REFUSED {
        if let Some((_, name)) = calls.iter().find(|(n, _)| *n == nr) {
            return refusal(name_of(name), None, rule);
        }
    }
    let newuser = Some("CLONE_NEWUSER".to_string());
    let userns = "a new user namespace would give the command every capability inside it";
    match nr {
        libc::SYS_unshare => refusal("unshare", newuser, userns),
        libc::SYS_clone => refusal("clone", newuser, userns),
        libc::SYS_ioctl => {
            #[allow(clippy::unnecessary_cast)]
            let request = match args[1] as u32 as u64 {
                r if r == libc::TIOCSTI as u64 => "TIOCSTI".to_string(),
                r if r == libc::TIOCLINUX as u64 => "TIOCLINUX".to_string(),
                r => format!("{r:#x}"),
            };
            refusal(
                "ioctl",
                Some(request),
                "typing into the user's terminal from inside the sandbox",
            )
        }
        libc::SYS_socket => refusal(
            "socket",
            Some(socket_family(args[0] as i32, args[2] as i32)),
            "socket families no build needs (only unix, inet, inet6 and netlink route)",
        ),
        other => refusal(&format!("syscall {other}"), None, "refused by the filter"),
    }
}

fn name_of(sys: &str) -> &str {
    sys.strip_prefix("SYS_").unwrap_or(sys)
}

fn socket_family(domain: i32, protocol: i32) -> String {
    let name = match domain {
        libc::AF_PACKET => "AF_PACKET",
        libc::AF_VSOCK => "AF_VSOCK",
        libc::AF_NETLINK => return format!("AF_NETLINK protocol {protocol}"),
        libc::AF_ALG => "AF_ALG",
        libc::AF_KEY => "AF_KEY",
        libc::AF_BLUETOOTH => "AF_BLUETOOTH",
        libc::AF_XDP => "AF_XDP",
        other => return format!("address family {other}"),
    };
    name.to_string()
}

fn rule(conds: Vec<Cond>) -> Result<SeccompRule, seccompiler::BackendError> {
    SeccompRule::new(conds)
}

fn cond(arg: u8, len: Len, op: Op, value: u64) -> Result<Cond, seccompiler::BackendError> {
    Cond::new(arg, len, op, value)
}

/// `arg & flag == flag`.
fn flag_set(arg: u8, flag: u64) -> Result<Cond, seccompiler::BackendError> {
    Cond::new(arg, Len::Qword, Op::MaskedEq(flag), flag)
}

#[cfg(target_arch = "x86_64")]
fn target_arch() -> seccompiler::TargetArch {
    seccompiler::TargetArch::x86_64
}
#[cfg(target_arch = "aarch64")]
fn target_arch() -> seccompiler::TargetArch {
    seccompiler::TargetArch::aarch64
}
#[cfg(target_arch = "riscv64")]
fn target_arch() -> seccompiler::TargetArch {
    seccompiler::TargetArch::riscv64
}

#[cfg(target_arch = "x86_64")]
fn audit_arch() -> u32 {
    0xC000_003E // AUDIT_ARCH_X86_64
}
#[cfg(target_arch = "aarch64")]
fn audit_arch() -> u32 {
    0xC000_00B7 // AUDIT_ARCH_AARCH64
}
#[cfg(target_arch = "riscv64")]
fn audit_arch() -> u32 {
    0xC000_00F3 // AUDIT_ARCH_RISCV64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_and_guards_the_abi_first() {
        let p = compile(false).unwrap();
        assert!(p.refuse.len() > 20);
        // The first instruction loads the arch: nothing is decided before the ABI check.
        assert_eq!(p.refuse[0].k, 4);
        assert_eq!(p.refuse[1].k, audit_arch());
        assert_eq!(p.no_clone3[1].k, audit_arch());
    }

    #[test]
    fn refusals_are_notifications_and_nothing_else_traps() {
        let p = compile(false).unwrap();
        let rets = |k: u32| {
            p.refuse
                .iter()
                .filter(|i| i.code == RET_K && i.k == k)
                .count()
        };
        assert!(rets(libc::SECCOMP_RET_USER_NOTIF) > 5);
        assert_eq!(rets(u32::from(MARKER)), 0);
    }

    #[test]
    fn notified_syscalls_are_named_with_their_rule() {
        let native = audit_arch();
        let bpf = describe(libc::SYS_bpf as i32, native, [0; 6]);
        assert_eq!((bpf.syscall.as_str(), bpf.detail), ("bpf", None));
        assert!(bpf.rule.contains("attack surface"));
        let pkt = describe(
            libc::SYS_socket as i32,
            native,
            [libc::AF_PACKET as u64, 3, 0, 0, 0, 0],
        );
        assert_eq!(pkt.detail.as_deref(), Some("AF_PACKET"));
        #[allow(clippy::unnecessary_cast)]
        let sti = describe(
            libc::SYS_ioctl as i32,
            native,
            [0, libc::TIOCSTI as u64, 0, 0, 0, 0],
        );
        assert_eq!(sti.detail.as_deref(), Some("TIOCSTI"));
        let foreign = describe(11, 0x4000_0003, [0; 6]);
        assert!(foreign.rule.starts_with("foreign"), "{foreign:?}");
    }

    #[test]
    fn every_family_names_syscalls() {
        assert!(REFUSED
            .iter()
            .all(|(why, calls)| !why.is_empty() && !calls.is_empty()));
    }
}
