//! Which guarantee holds in which mode, and what enforces it: one table for the audit log,
//! the Landlock-only warning and `cordon doctor`.

use cordon_audit::GuaranteeStatus;
use cordon_linux::{Mechanism, Mode, NetMode};
use cordon_policy::{LimitKind, Limits};

fn g(area: &str, state: &str, by: &str) -> GuaranteeStatus {
    GuaranteeStatus {
        area: area.into(),
        state: state.into(),
        by: by.into(),
    }
}

/// The guarantees of a run in `mode` with network `net`, on a kernel with Landlock `abi`;
/// `limits` is the row from [`limits_for_run`] or [`limits_here`].
pub fn for_run(
    mode: Mode,
    net: NetMode,
    abi: i32,
    limits: GuaranteeStatus,
) -> Vec<GuaranteeStatus> {
    let landlock = format!("Landlock ABI {abi}");
    let mut out = match mode {
        Mode::Namespaces => vec![
            g("write", "enforced", &format!("mount namespace: read-only root, writable binds of the workspace and private tmpfs; {landlock} as a second layer")),
            g("protected", "enforced", "read-only bind mounts over .git/hooks, .git/config, .git/info, .git/commondir, .git/config.worktree, .cordon.toml (placeholders when absent); .git pinned as a mount point"),
            g("read", "enforced", "deny-read paths covered by empty unreadable mounts and left out of Landlock's read grants; minimal /dev; own /proc"),
            g("env", "enforced", "secret-looking variables removed before exec"),
            g("processes", "enforced", "pid namespace with cordon's init; tree killed when the command ends; no_new_privs; all capabilities dropped"),
        ],
        Mode::LandlockOnly => vec![
            g("write", "enforced", &landlock),
            g("protected", "not_enforced", "Landlock-only mode: no read-only bind mounts"),
            g("read", "weakened", "Landlock-only mode: Landlock alone keeps the deny-read set outside writable roots unreadable; names in denied folders can be listed, and a denied path inside a writable root is readable"),
            g("env", "enforced", "secret-looking variables removed before exec"),
            g("processes", "weakened", "no_new_privs, no capabilities, Landlock signal scoping; no pid namespace, so background processes can outlive the command"),
        ],
    };
    out.push(match (mode, net) {
        (_, NetMode::Full) => g("network", "not_enforced", "--net full: the host network"),
        (Mode::Namespaces, NetMode::Off) => g("network", "enforced", "network namespace with loopback only; empty /run and mounts over every socket in /proc/net/unix hide host daemon sockets; Landlock scopes abstract sockets"),
        (Mode::Namespaces, NetMode::Proxied { .. }) => g("network", "enforced", "network namespace with loopback only (no route out, no DNS); host daemon sockets hidden as with --net off; the only way out is cordon's proxy"),
        (Mode::LandlockOnly, _) => g("network", "weakened", "Landlock refuses TCP bind/connect; UDP, DNS and Unix sockets are not blocked"),
    });
    if let NetMode::Proxied { port } = net {
        out.push(allow_list(mode, port));
    }
    out.push(g(
        "syscalls",
        "enforced",
        "seccomp filter installed last: io_uring, bpf, perf, keyrings, mount family, nested user namespaces, kexec/modules, TIOCSTI/TIOCLINUX, exotic socket families and foreign ABIs refused with EPERM by cordon's supervisor (user notification), each one audited",
    ));
    out.push(g(
        "terminal",
        "enforced",
        "the command runs in its own session; on a terminal it gets a pty of its own that cordon relays, so nothing can be typed into the user's terminal",
    ));
    out.push(limits);
    out
}

/// Rows for what this run asked for beyond the defaults: command rules, a transaction.
pub fn for_options(
    spec: &cordon_linux::Spec,
    policy: &cordon_policy::Policy,
) -> Vec<GuaranteeStatus> {
    let mut out = Vec::new();
    if spec.supervise_exec {
        out.push(g(
            "commands",
            "enforced",
            &format!(
                "{} command rule(s), default {}: every execve/execveat in the sandbox is held and judged by cordon (argv as read from the waiting process: a policy on tools, not a boundary)",
                policy.commands.rules.len(),
                policy.commands.default.as_str()
            ),
        ));
    }
    if spec.overlay.is_some() {
        out.push(g(
            "transaction",
            "enforced",
            "the workspace is an overlay: its writes (Git's included) land in the transaction's upper layer until applied",
        ));
    }
    out
}

/// The allow-list row: what cordon's proxy checks, or why `--allow-domain` cannot run.
pub fn allow_list(mode: Mode, port: u16) -> GuaranteeStatus {
    match mode {
        Mode::Namespaces => g(
            "allow-list",
            "enforced",
            &format!("with --allow-domain: cordon's proxy on 127.0.0.1:{port} inside the sandbox decides every request: allowed domains only, deny beats allow, CONNECT host = TLS SNI, Host header = URL, names resolved by the proxy, local destinations refused unless allowed"),
        ),
        Mode::LandlockOnly => g(
            "allow-list",
            "not_enforced",
            "needs user namespaces (a network namespace whose only way out is cordon's proxy); --allow-domain exits 125 here",
        ),
    }
}

/// What cordon sees of each kind of refusal on this machine: the `doctor` table of observed
/// denials. `audit` is the kernel audit state (where Landlock logs), `abi` Landlock's ABI.
pub fn observed_denials(
    user_notif: bool,
    abi: i32,
    audit: &cordon_linux::probe::KernelAudit,
) -> Vec<GuaranteeStatus> {
    use cordon_linux::probe::KernelAudit;
    let syscalls = match user_notif {
        true => g("syscall", "observed", "seccomp user notification: every refusal is a syscall_refused event (pid, process, syscall, argument, rule); --kill-on-violation syscall"),
        false => g("syscall", "not_observed", "this kernel has no seccomp user notification (Linux 5.0+); refusals still hold"),
    };
    let landlock_log = match (abi >= 7, audit) {
        (false, _) => format!("Landlock ABI {abi} cannot log denials (ABI 7+ can)"),
        (true, KernelAudit::Enabled) => "Landlock ABI 7 logs them to the kernel audit log (auditd, journalctl -k), which cordon does not read".into(),
        (true, KernelAudit::Disabled) => "Landlock ABI 7 would log them to the kernel audit log, but audit is disabled here (`auditctl -e 1` enables it host-wide); cordon does not read that log".into(),
        (true, KernelAudit::Unknown(why)) => format!("Landlock ABI 7 logs them to the kernel audit log when audit is enabled (state unknown: {why}); cordon does not read that log"),
    };
    vec![
        syscalls,
        g("network", "observed", "cordon's proxy (--net allow): every request is a network event, refusals also on stderr; --kill-on-violation network. With --net off nothing leaves to be refused: connections fail with ENETUNREACH, unlogged"),
        g("limits", "observed", "cgroup events (OOM kills, refused forks), the timeout and SIGXFSZ become limit_exceeded events"),
        g("filesystem", "not_observed", &format!("writes outside the workspace fail in the kernel (EROFS from the read-only mount view, EACCES from Landlock) with no event for cordon; {landlock_log}")),
        g("read", "not_observed", "deny-read paths are empty mounts: reading them finds nothing, which the kernel does not report"),
    ]
}

const NO_CORE: &str = "no core files (RLIMIT_CORE 0)";

/// The limits row of a run: what holds each limit that is set.
pub fn limits_for_run(limits: &Limits, mechanism: &Mechanism) -> GuaranteeStatus {
    let set = |k: LimitKind| limits.get(k).map(|v| format!("{k} {}", k.format(v)));
    let tree: Vec<String> = [LimitKind::Memory, LimitKind::Cpu, LimitKind::Pids]
        .into_iter()
        .filter_map(set)
        .collect();
    let mut parts = Vec::new();
    let mut state = "enforced";
    match mechanism {
        Mechanism::Nothing => {}
        Mechanism::CgroupV1(_) => parts.push(format!(
            "{} for the whole tree by cgroup v1",
            tree.join(", ")
        )),
        Mechanism::CgroupV2(_) => parts.push(format!(
            "{} for the whole tree by a delegated cgroup v2",
            tree.join(", ")
        )),
        Mechanism::Rlimits(why) => {
            state = "weakened";
            let mut r = Vec::new();
            if let Some(m) = set(LimitKind::Memory) {
                r.push(format!("{m} as RLIMIT_AS on each process, not the tree"));
            }
            if let Some(p) = set(LimitKind::Pids) {
                r.push(format!(
                    "{p} as RLIMIT_NPROC on your user inside the sandbox"
                ));
            }
            parts.push(format!("no cgroup ({why}): {}", r.join("; ")));
        }
    }
    if let Some(t) = set(LimitKind::Timeout) {
        parts.push(format!("{t}: cordon kills the sandbox (exit 124)"));
    }
    if tree.is_empty() && limits.get(LimitKind::Timeout).is_none() {
        state = "not_enforced";
        parts.push(
            "no memory, cpu, pids or timeout limit set (--memory, --cpu, --pids, --timeout or [limits])".into(),
        );
    }
    let mut rl = vec![NO_CORE.to_string()];
    rl.extend(
        [LimitKind::FileSize, LimitKind::OpenFiles]
            .into_iter()
            .filter_map(set),
    );
    parts.push(format!("rlimits: {}", rl.join(", ")));
    g("limits", state, &parts.join("; "))
}

/// The limits row for `cordon doctor`: what would hold limits on this machine.
pub fn limits_here(mechanism: &Mechanism) -> GuaranteeStatus {
    let timeout = "--timeout: cordon kills the sandbox (exit 124)";
    match mechanism {
        Mechanism::CgroupV1(c) | Mechanism::CgroupV2(c) => {
            let v = if matches!(mechanism, Mechanism::CgroupV1(_)) {
                "cgroup v1"
            } else {
                "delegated cgroup v2"
            };
            g(
                "limits",
                "enforced",
                &format!(
                    "{v} ({}): --memory, --cpu, --pids hold for the whole tree; {timeout}; {NO_CORE}",
                    c.join(", ")
                ),
            )
        }
        Mechanism::Rlimits(why) => g(
            "limits",
            "weakened",
            &format!(
                "rlimits only, no cgroup ({why}): --memory, --cpu, --pids are refused (exit 125); with --allow-weaker --memory and --pids become per-process rlimits; {timeout}; {NO_CORE}"
            ),
        ),
        Mechanism::Nothing => g(
            "limits",
            "weakened",
            &format!("rlimits only; {timeout}; {NO_CORE}"),
        ),
    }
}
