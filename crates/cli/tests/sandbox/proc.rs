//! Process threats: seeing or signalling host processes, outliving the command, keeping
//! privileges; plus signal forwarding and the terminal.

use std::fs;
use std::process::{Command, Stdio};

use crate::util::{cordon_bin, wait_until, Env};

fn processes_with(token: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(token) && !text.contains("cordon") {
                out.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
            }
        }
    }
    out
}

/// Polls `done` for up to 10 s (the caller asserts afterwards; no timing is asserted).
#[test]
fn host_processes_are_invisible_and_unsignalable() {
    let e = Env::new("pidns");
    let mut victim = Command::new("sleep").arg("300").spawn().unwrap();
    let pid = victim.id();
    let run = e
        .sh(
            &[],
            &format!(
                "ls /proc | grep -x {pid}; kill -9 {pid} && echo killed; ps -e -o pid= | wc -l"
            ),
        )
        .ok();
    assert!(
        !run.stdout.contains("killed"),
        "host process signalled: {}",
        run.stdout
    );
    assert!(victim.try_wait().unwrap().is_none(), "host process died");
    let count: usize = run.stdout.lines().last().unwrap().trim().parse().unwrap();
    assert!(count <= 4, "sandbox sees {count} processes");
    victim.kill().unwrap();
    let _ = victim.wait();
}

#[test]
fn nothing_started_inside_outlives_the_command() {
    let e = Env::new("outlive");
    let token = format!("{}.4242", std::process::id());
    let marker = e.ws.join("marker");
    let script = format!(
        "sleep {token} & setsid sleep {token} & nohup sleep {token} >/dev/null 2>&1 & \
         (sh -c 'sleep {token}; echo late > {m}' &) ; echo started",
        m = marker.display()
    );
    let run = e.sh(&[], &script).ok();
    assert!(run.stdout.contains("started"));
    let left = processes_with(&token);
    assert!(left.is_empty(), "processes outlived the sandbox: {left:?}");
    assert!(!marker.exists());
}

#[test]
fn killing_cordon_kills_the_sandbox() {
    let e = Env::new("kill-cordon");
    let token = format!("{}.4343", std::process::id());
    let mut child = e
        .sh_command(&[], &format!("sleep {token}"))
        .spawn()
        .unwrap();
    assert!(
        wait_until(|| !processes_with(&token).is_empty()),
        "command never started"
    );
    child.kill().unwrap(); // SIGKILL: cordon gets no chance to clean up
    let _ = child.wait();
    assert!(
        wait_until(|| processes_with(&token).is_empty()),
        "sandbox survived cordon's death"
    );
}

#[test]
fn no_capabilities_and_no_new_privs() {
    let e = Env::new("caps");
    let run = e
        .sh(
            &[],
            "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status",
        )
        .ok();
    for line in run.stdout.lines() {
        let (k, v) = line.split_once(':').unwrap();
        let v = v.trim();
        if k == "NoNewPrivs" {
            assert_eq!(v, "1");
        } else {
            assert_eq!(v.trim_start_matches('0'), "", "{k} = {v}");
        }
    }
    assert_eq!(run.stdout.lines().count(), 6, "{}", run.stdout);
}

#[test]
fn sigterm_to_cordon_reaches_the_command() {
    let e = Env::new("signals");
    for (sig, name) in [
        (nix::sys::signal::Signal::SIGTERM, "TERM"),
        (nix::sys::signal::Signal::SIGINT, "INT"),
        (nix::sys::signal::Signal::SIGHUP, "HUP"),
    ] {
        let script = format!(
            "trap 'echo got-{name}; exit 7' {name}; echo ready; while :; do sleep 0.05; done"
        );
        let mut child = e
            .sh_command(&[], &script)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut buf = [0u8; 6];
        std::io::Read::read_exact(&mut stdout, &mut buf).unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let status = child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        assert!(
            rest.contains(&format!("got-{name}")),
            "{name} not forwarded: {rest}"
        );
        assert_eq!(status.code(), Some(7));
    }
}

#[test]
fn an_interactive_program_works_on_a_terminal() {
    let e = Env::new("pty");
    if !crate::util::have("python3") {
        panic!("python3 is required for the pty test (CI installs it)");
    }
    let driver = r#"
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "run", "--", "python3", "-i", "-q"])
out = b""
def read_until(token, limit=20):
    global out
    end = time.time() + limit
    while token not in out and time.time() < end:
        try:
            out += os.read(fd, 1024)
        except OSError:
            break
read_until(b">>> ")
os.write(fd, b"print(6*7, os_isatty := __import__('os').isatty(0))\n")
read_until(b"42 True")
os.write(fd, b"exit(5)\n")
_, st = os.waitpid(pid, 0)
print(out.decode(errors="replace"))
print("EXIT", os.waitstatus_to_exitcode(st))
"#;
    let out = Command::new("python3")
        .args(["-c", driver, cordon_bin().to_str().unwrap()])
        .current_dir(&e.ws)
        .env("HOME", &e.home)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("42 True"), "{text}");
    assert!(text.contains("EXIT 5"), "{text}");
}

#[test]
fn the_sandbox_init_cannot_be_traced_or_hijacked() {
    // Init holds capabilities in the sandbox's user namespace; tracing it would hand them over.
    let e = Env::new("ptrace-init");
    let code = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for pid in (1, os.getppid()):
    r = libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
    print("ATTACHED" if r == 0 else "refused", pid, os.strerror(ctypes.get_errno()))
try:
    open("/proc/1/mem", "rb").read(1); print("MEM-READ")
except OSError as err:
    print("mem refused", err)
"#;
    let run = e
        .cordon(&[
            "run".as_ref(),
            "--".as_ref(),
            "python3".as_ref(),
            "-c".as_ref(),
            code.as_ref(),
        ])
        .ok();
    assert!(!run.stdout.contains("ATTACHED"), "{}", run.stdout);
    assert!(!run.stdout.contains("MEM-READ"), "{}", run.stdout);
    assert!(run.stdout.contains("refused 1"), "{}", run.stdout);
}
