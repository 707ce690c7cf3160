//! The syscall filter: what the command may not ask the kernel for. Compiled once in cordon,
//! before the sandbox exists; installed last in the command's process, right before exec.
//!
//! Refusals return EPERM rather than killing, so tools that probe for a feature (io_uring,
//! user namespaces, keyrings) fall back to something else. `clone3` gets ENOSYS instead: its
//! flags live in memory a filter cannot read, and ENOSYS makes libc fall back to `clone`,
//! whose flags it can.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule,
};

/// Syscalls refused whatever their arguments, by family, with the reason.
const REFUSED: &[(&str, &[libc::c_long])] = &[
    (
        "io_uring: a second way into the kernel that bypasses this filter",
        &[
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
        ],
    ),
    (
        "kernel attack surface no build needs",
        &[
            libc::SYS_bpf,
            libc::SYS_perf_event_open,
            libc::SYS_userfaultfd,
        ],
    ),
    (
        "kernel keyrings outlive the sandbox and are shared with the user's session",
        &[libc::SYS_keyctl, libc::SYS_add_key, libc::SYS_request_key],
    ),
    (
        "the mount view is final",
        &[
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_move_mount,
            libc::SYS_open_tree,
            libc::SYS_fsopen,
            libc::SYS_fsconfig,
            libc::SYS_fsmount,
            libc::SYS_fspick,
            libc::SYS_mount_setattr,
            libc::SYS_setns,
        ],
    ),
    (
        "replacing the kernel or loading code into it",
        &[
            libc::SYS_kexec_load,
            libc::SYS_kexec_file_load,
            libc::SYS_init_module,
            libc::SYS_finit_module,
            libc::SYS_delete_module,
        ],
    ),
    (
        "host administration",
        &[
            libc::SYS_acct,
            libc::SYS_swapon,
            libc::SYS_swapoff,
            libc::SYS_reboot,
            libc::SYS_syslog,
            libc::SYS_open_by_handle_at,
            libc::SYS_quotactl,
            #[cfg(target_arch = "x86_64")]
            libc::SYS_iopl,
            #[cfg(target_arch = "x86_64")]
            libc::SYS_ioperm,
        ],
    ),
];

/// The one netlink protocol a command may open (glibc's getaddrinfo and `ip` use it).
const NETLINK_ROUTE: u64 = 0;

const CLONE_NEWUSER: u64 = libc::CLONE_NEWUSER as u64;

/// The compiled filters, ready to install with no allocation.
#[derive(Debug, Clone)]
pub struct Program {
    /// Everything refused with EPERM, behind the ABI check.
    refuse: BpfProgram,
    /// `clone3` refused with ENOSYS.
    no_clone3: BpfProgram,
}

/// Compiles the default filter for this architecture.
pub fn compile() -> Result<Program, seccompiler::BackendError> {
    let arch = target_arch();
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (_, calls) in REFUSED {
        for nr in *calls {
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
    let refuse = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )?;
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
    let guarded = |f: SeccompFilter| -> Result<BpfProgram, seccompiler::BackendError> {
        let mut prog = foreign_abi_guard();
        prog.extend(BpfProgram::try_from(f)?);
        Ok(prog)
    };
    Ok(Program {
        refuse: guarded(refuse)?,
        no_clone3: guarded(no_clone3)?,
    })
}

impl Program {
    /// Installs both filters on the calling thread (no_new_privs must already be set).
    /// Only syscalls: safe between fork and exec.
    pub fn install(&self) -> std::io::Result<()> {
        for prog in [&self.no_clone3, &self.refuse] {
            seccompiler::apply_filter(prog).map_err(|e| match e {
                seccompiler::Error::Seccomp(io) | seccompiler::Error::Prctl(io) => io,
                other => std::io::Error::other(other.to_string()),
            })?;
        }
        Ok(())
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
/// foreign arch; this guard, placed before it, makes the refusal an EPERM like the others.
fn foreign_abi_guard() -> BpfProgram {
    const LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS
    const JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
    const JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const NR: u32 = 0; // offsetof(struct seccomp_data, nr)
    const ARCH: u32 = 4; // offsetof(struct seccomp_data, arch)
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let i = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    let mut prog = vec![
        i(LD_W_ABS, 0, 0, ARCH),
        i(JEQ_K, 1, 0, audit_arch()),
        i(RET_K, 0, 0, eperm),
    ];
    if cfg!(target_arch = "x86_64") {
        const X32_SYSCALL_BIT: u32 = 0x4000_0000;
        prog.extend([
            i(LD_W_ABS, 0, 0, NR),
            i(JGE_K, 0, 1, X32_SYSCALL_BIT),
            i(RET_K, 0, 0, eperm),
        ]);
    }
    prog
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
        let p = compile().unwrap();
        assert!(p.refuse.len() > 20);
        // The first instruction loads the arch: nothing is decided before the ABI check.
        assert_eq!(p.refuse[0].k, 4);
        assert_eq!(p.refuse[1].k, audit_arch());
        assert_eq!(p.no_clone3[1].k, audit_arch());
    }

    #[test]
    fn every_family_names_syscalls() {
        assert!(REFUSED
            .iter()
            .all(|(why, calls)| !why.is_empty() && !calls.is_empty()));
    }
}
