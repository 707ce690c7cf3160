//! Which guarantee holds in which mode, and what enforces it: one table for the audit log,
//! the Landlock-only warning and `cordon doctor`.

use cordon_audit::GuaranteeStatus;
use cordon_linux::{Mode, NetMode};

fn g(area: &str, state: &str, by: &str) -> GuaranteeStatus {
    GuaranteeStatus {
        area: area.into(),
        state: state.into(),
        by: by.into(),
    }
}

/// The guarantees of a run in `mode` with network `net`, on a kernel with Landlock `abi`.
pub fn for_run(mode: Mode, net: NetMode, abi: i32) -> Vec<GuaranteeStatus> {
    let landlock = format!("Landlock ABI {abi}");
    let mut out = match mode {
        Mode::Namespaces => vec![
            g("write", "enforced", &format!("mount namespace: read-only root, writable binds of the workspace and private tmpfs; {landlock} as a second layer")),
            g("protected", "enforced", "read-only bind mounts over .git/hooks, .git/config, .git/info, .git/commondir, .git/config.worktree, .cordon.toml (placeholders when absent); .git pinned as a mount point"),
            g("read", "enforced", "deny-read paths covered by empty unreadable mounts; minimal /dev; own /proc"),
            g("env", "enforced", "secret-looking variables removed before exec"),
            g("processes", "enforced", "pid namespace with cordon's init; tree killed when the command ends; no_new_privs; all capabilities dropped"),
        ],
        Mode::LandlockOnly => vec![
            g("write", "enforced", &landlock),
            g("protected", "not_enforced", "Landlock-only mode: no read-only bind mounts"),
            g("read", "not_enforced", "Landlock-only mode: secrets are readable"),
            g("env", "enforced", "secret-looking variables removed before exec"),
            g("processes", "weakened", "no_new_privs, no capabilities, Landlock signal scoping; no pid namespace, so background processes can outlive the command"),
        ],
    };
    out.push(match (mode, net) {
        (_, NetMode::Full) => g("network", "not_enforced", "--net full: the host network"),
        (Mode::Namespaces, NetMode::Off) => g("network", "enforced", "network namespace with loopback only; empty /run hides host daemon sockets; Landlock scopes abstract sockets"),
        (Mode::LandlockOnly, NetMode::Off) => g("network", "weakened", "Landlock refuses TCP bind/connect; UDP, DNS and Unix sockets are not blocked"),
    });
    out.push(g(
        "syscalls",
        "not_enforced",
        "the seccomp filter is not in this build yet",
    ));
    out.push(g(
        "limits",
        "not_enforced",
        "resource limits are not in this build yet",
    ));
    out
}
