//! Syscall threats: kernel attack surface, escaping the mount view or the user namespace,
//! typing into the user's terminal, syscalls through a foreign ABI.

use std::fs;
use std::io::Read;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};

use cordon_audit::{read_log, Event};

use crate::util::{cordon_bin, exists, have, Env};

/// Each refused syscall, made from Python inside the sandbox, prints its name and errno.
const PROBE: &str = r#"
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
def t(name, nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(nr, *args)
    print(name, "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), "?"))
buf = ctypes.create_string_buffer(256)
t("io_uring_setup", 425, 4, buf)
t("bpf", 321, 0, buf, 128)
t("perf_event_open", 298, buf, 0, -1, -1, 0)
t("keyctl", 250, 0, -3, 0)
t("add_key", 248, b"user", b"cordon-probe", b"x", 1, -3)
t("unshare_newuser", 272, 0x10000000)
t("clone_newuser", 56, 0x10000000 | 17, 0, 0, 0, 0)
t("mount", 165, b"none", b"/tmp", b"tmpfs", 0, 0)
t("umount2", 166, b"/proc", 2)
t("pivot_root", 155, b"/tmp", b"/tmp")
t("fsopen", 430, b"tmpfs", 0)
t("open_tree", 428, -100, b"/", 1)
t("setns", 308, 0, 0)
t("init_module", 175, buf, 0, b"")
t("kexec_load", 246, 0, 0, 0, 0)
t("socket_packet", 41, 17, 3, 0)
t("socket_vsock", 41, 40, 1, 0)
t("socket_alg", 41, 38, 5, 0)
t("socket_netlink_audit", 41, 16, 3, 9)
t("socket_unix", 41, 1, 1, 0)
t("socket_netlink_route", 41, 16, 3, 0)
"#;

fn probe(e: &Env) -> std::collections::BTreeMap<String, String> {
    fs::write(e.ws.join("probe.py"), PROBE).unwrap();
    let run = e.sh(&[], "python3 probe.py").ok();
    run.stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn dangerous_syscalls_are_refused_with_eperm() {
    assert!(have("python3"), "python3 is needed (installed by .ci/run)");
    let e = Env::new("seccomp");
    let got = probe(&e);
    for name in [
        "io_uring_setup",
        "bpf",
        "perf_event_open",
        "keyctl",
        "add_key",
        "unshare_newuser",
        "clone_newuser",
        "mount",
        "umount2",
        "pivot_root",
        "fsopen",
        "open_tree",
        "setns",
        "init_module",
        "kexec_load",
        "socket_packet",
        "socket_vsock",
        "socket_alg",
        "socket_netlink_audit",
    ] {
        assert_eq!(
            got.get(name).map(String::as_str),
            Some("EPERM"),
            "{name} was not refused with EPERM: {got:?}"
        );
    }
    // What tools need still works.
    assert_eq!(got.get("socket_unix").map(String::as_str), Some("ok"));
    assert_eq!(
        got.get("socket_netlink_route").map(String::as_str),
        Some("ok")
    );
}

#[test]
fn no_user_namespace_can_be_nested() {
    let e = Env::new("nested-userns");
    // unshare(1) would get every capability in a new namespace and could remount freely.
    let run = e.sh(
        &[],
        "unshare --user --map-root-user sh -c 'mount -t tmpfs none /tmp && echo MOUNTED'; echo rc=$?",
    );
    assert!(!run.stdout.contains("MOUNTED"), "{}", run.stdout);
    assert!(run.stdout.contains("rc=1"), "{} {}", run.stdout, run.stderr);
}

#[test]
fn threads_and_processes_still_start() {
    // clone3 is answered with ENOSYS so libc falls back to clone: threads, fork and posix_spawn
    // must all keep working.
    let e = Env::new("clone3-fallback");
    let run = e
        .sh(
            &[],
            "python3 -c 'import threading,subprocess; t=threading.Thread(target=print,args=(\"thread\",)); t.start(); t.join(); print(subprocess.run([\"echo\",\"spawned\"],capture_output=True,text=True).stdout.strip())'",
        )
        .ok();
    assert!(run.stdout.contains("thread") && run.stdout.contains("spawned"));
}

/// TIOCSTI pushes bytes into the terminal's input queue: after the agent's command ends, the
/// user's shell would read and run them. The sandbox shares the user's terminal (so `vi` and
/// `python3 -i` work), so the filter must refuse it whatever `dev.tty.legacy_tiocsti` says.
#[test]
fn nothing_can_be_typed_into_the_users_terminal() {
    let pty = nix::pty::openpty(None, None).unwrap();
    // Raw mode: injected bytes would be readable at once, newline or not.
    let mut t = nix::sys::termios::tcgetattr(pty.slave.as_fd()).unwrap();
    nix::sys::termios::cfmakeraw(&mut t);
    nix::sys::termios::tcsetattr(pty.slave.as_fd(), nix::sys::termios::SetArg::TCSANOW, &t)
        .unwrap();
    let e = Env::new("tiocsti");
    let inject = "import fcntl, termios\n\
        for c in b'touch /tmp/pwned\\n':\n    \
        fcntl.ioctl(0, termios.TIOCSTI, bytes([c]))\n";
    fs::write(e.ws.join("inject.py"), inject).unwrap();
    // setsid -c makes the pty cordon's controlling terminal, as a user's terminal would be.
    let out = Command::new("setsid")
        .arg("-c")
        .arg(cordon_bin())
        .args(["run", "--", "python3", "inject.py"])
        .current_dir(&e.ws)
        .env("HOME", &e.home)
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Operation not permitted") || stderr.contains("PermissionError"),
        "TIOCSTI was not refused: {stderr}"
    );
    // The terminal's input queue must be empty: nothing for the user's shell to run.
    nix::fcntl::fcntl(
        pty.slave.as_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let mut buf = [0u8; 64];
    let mut slave = fs::File::from(pty.slave);
    let n = slave.read(&mut buf).unwrap_or(0);
    assert_eq!(
        n,
        0,
        "bytes were typed into the terminal: {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
}

/// The same kernel entry points under other numbers: i386's `int 0x80` and x32's numbering.
#[cfg(target_arch = "x86_64")]
#[test]
fn foreign_syscall_abis_are_refused() {
    assert!(have("cc"), "a C compiler is needed (installed by .ci/run)");
    let e = Env::new("foreign-abi");
    let src = r#"
#include <stdio.h>
static long ia32(long nr) { long r; __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr) : "memory"); return r; }
static long x32(long nr) { long r; __asm__ volatile("syscall" : "=a"(r) : "a"(nr | 0x40000000L) : "rcx", "r11", "memory"); return r; }
int main(void) { printf("ia32 %ld\nx32 %ld\n", ia32(20 /* getpid */), x32(39 /* getpid */)); return 0; }
"#;
    fs::write(e.ws.join("abi.c"), src).unwrap();
    let built = Command::new("cc")
        .args(["-O0", "-o", "abi", "abi.c"])
        .current_dir(&e.ws)
        .status()
        .unwrap();
    assert!(built.success());
    let run = e.sh(&[], "./abi").ok();
    // -1 is -EPERM; outside the sandbox ia32 returns a pid and x32 -ENOSYS (-38) or a pid.
    assert!(run.stdout.contains("ia32 -1\n"), "{}", run.stdout);
    assert!(run.stdout.contains("x32 -1\n"), "{}", run.stdout);
}

/// `syscall_refused` events of an audit log: (syscall, detail, process).
fn refusal_events(e: &Env) -> Vec<(String, Option<String>, String)> {
    read_log(&e.audit_path())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::SyscallRefused {
                syscall,
                detail,
                process,
                ..
            } => Some((syscall, detail, process)),
            _ => None,
        })
        .collect()
}

#[test]
fn every_refused_syscall_is_an_audit_event() {
    assert!(have("python3"), "python3 is needed (installed by .ci/run)");
    let e = Env::new("seccomp-audit");
    fs::write(e.ws.join("probe.py"), PROBE).unwrap();
    let audit = e.audit_path();
    e.sh(
        &["--audit", audit.to_str().unwrap()],
        "python3 probe.py >/dev/null",
    )
    .ok();
    let events = refusal_events(&e);
    let has = |syscall: &str, detail: Option<&str>| {
        events
            .iter()
            .any(|(s, d, p)| s == syscall && d.as_deref() == detail && p.starts_with("python3"))
    };
    for (syscall, detail) in [
        ("io_uring_setup", None),
        ("bpf", None),
        ("perf_event_open", None),
        ("keyctl", None),
        ("add_key", None),
        ("unshare", Some("CLONE_NEWUSER")),
        ("clone", Some("CLONE_NEWUSER")),
        ("mount", None),
        ("pivot_root", None),
        ("fsopen", None),
        ("setns", None),
        ("init_module", None),
        ("kexec_load", None),
        ("socket", Some("AF_PACKET")),
        ("socket", Some("AF_VSOCK")),
        ("socket", Some("AF_NETLINK protocol 9")),
    ] {
        assert!(
            has(syscall, detail),
            "no event for {syscall} {detail:?}: {events:?}"
        );
    }
    // What was allowed is not reported: the unix and netlink-route sockets.
    assert_eq!(
        events.iter().filter(|(s, _, _)| s == "socket").count(),
        4, // packet, vsock, alg, netlink audit
        "{events:?}"
    );
}

/// The attack: a refused syscall, then a write that must never happen because the first
/// violation ended the sandbox. Judged by the workspace afterwards.
const VIOLATE_THEN_WRITE: &str =
    "python3 -c 'import ctypes; ctypes.CDLL(None).syscall(321, 0, 0, 0)'; \
     echo written > after-violation";

#[test]
fn kill_on_violation_ends_the_sandbox_at_the_first_refused_syscall() {
    let e = Env::new("kill-on-violation");
    let audit = e.audit_path();
    let audit = audit.to_str().unwrap();
    // Control: without the flag the refusal is only EPERM and the script goes on.
    e.sh(&["--audit", audit], VIOLATE_THEN_WRITE).ok();
    assert!(
        exists(&e.ws.join("after-violation")),
        "control run did not write"
    );
    fs::remove_file(e.ws.join("after-violation")).unwrap();

    let run = e.sh(
        &["--kill-on-violation", "syscall", "--audit", audit],
        VIOLATE_THEN_WRITE,
    );
    assert_eq!(run.code, 137, "{}", run.stderr);
    assert!(
        !exists(&e.ws.join("after-violation")),
        "the sandbox went on after the violation"
    );
    assert!(
        run.stderr
            .contains("killed the sandbox at the first syscall violation")
            && run.stderr.contains("bpf by python3"),
        "{}",
        run.stderr
    );
    let killed: Vec<_> = read_log(&e.audit_path())
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::SandboxKilled { class, reason } => Some((class, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(killed.len(), 1, "{killed:?}");
    assert_eq!(killed[0].0, "syscall");

    // The same from the workspace's policy file: stricter, so no approval is needed.
    fs::write(
        e.ws.join(".cordon.toml"),
        "[sandbox]\nterminate_on_violation = [\"syscall\"]\n",
    )
    .unwrap();
    let run = e.sh(&[], VIOLATE_THEN_WRITE);
    assert_eq!(run.code, 137, "{}", run.stderr);
    assert!(!exists(&e.ws.join("after-violation")));
}

#[test]
fn a_bad_violation_class_is_refused() {
    let e = Env::new("kill-on-violation-bad");
    let run = e.sh(&["--kill-on-violation", "filesystem"], "true");
    assert_eq!(run.code, 125);
    assert!(
        run.stderr.contains("filesystem")
            && run.stderr.contains("\"syscall\", \"network\" or \"all\""),
        "{}",
        run.stderr
    );
}

/// The defence that holds whatever the filter or `legacy_tiocsti` say: the command's
/// terminal is a pty of its own, in a session of its own, never the user's terminal.
#[test]
fn the_command_gets_its_own_terminal_and_session() {
    assert!(have("python3"), "python3 is needed (installed by .ci/run)");
    let e = Env::new("own-pty");
    let driver = r#"
import os, pty, sys, time
master, slave = pty.openpty()
user_tty = os.fstat(slave).st_rdev
pid = os.fork()
if pid == 0:
    os.setsid()
    os.close(master)
    import fcntl, termios
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    probe = "import os; st = os.fstat(0); print('TTY', os.isatty(0), st.st_rdev, 'LEADER', os.getsid(0) == os.getpid())"
    os.execv(sys.argv[1], [sys.argv[1], "run", "--", "python3", "-c", probe])
os.close(slave)
out = b""
end = time.time() + 20
while time.time() < end:
    try:
        chunk = os.read(master, 1024)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
os.waitpid(pid, 0)
print("USER", user_tty)
print(out.decode(errors="replace"))
"#;
    let out = Command::new("python3")
        .args(["-c", driver, cordon_bin().to_str().unwrap()])
        .current_dir(&e.ws)
        .env("HOME", &e.home)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_default();
        line.split_whitespace().map(str::to_string).collect()
    };
    let user = field("USER");
    let inner = field("TTY");
    assert_eq!(inner.get(1).map(String::as_str), Some("True"), "{text}");
    assert_ne!(
        inner.get(2),
        user.get(1),
        "the command shares the user's terminal: {text}"
    );
    assert_eq!(inner.get(4).map(String::as_str), Some("True"), "{text}");

    // Without a terminal, there is no controlling terminal to open either.
    let run = e
        .sh(
            &[],
            "(exec 3</dev/tty) 2>/dev/null && echo OPENED || echo refused",
        )
        .ok();
    assert!(run.stdout.contains("refused"), "{}", run.stdout);
}
