//! Exhausting the machine: fork bombs, memory, CPU, time; each limit judged by what the host
//! saw (processes counted from /proc, the cgroup's own CPU accounting, the wall clock).
//!
//! As root, cordon makes a cgroup and every limit holds for the whole tree. As an
//! unprivileged user on a machine without a delegated cgroup, cordon must refuse (125) and,
//! with --allow-weaker, fall back to rlimits for --memory and --pids; each test asserts the
//! branch that applies here.

use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use cordon_audit::{read_log, Event};

use crate::util::{exists, is_root, wait_until, Env, Run};

/// `cordon run FLAGS -- sh -c SCRIPT NAME`: `NAME` is `$0`, so every shell of the tree
/// carries it in its command line.
fn sh_named(e: &Env, flags: &[&str], script: &str, name: &str) -> std::process::Command {
    let mut argv: Vec<&OsStr> = vec![OsStr::new("run")];
    argv.extend(flags.iter().map(OsStr::new));
    argv.extend(["--", "sh", "-c", script, name].into_iter().map(OsStr::new));
    let mut c = e.command(&argv);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Processes alive on the host with `name` as an argument, cordon itself (and the sandbox's
/// init, a fork of it) aside.
fn processes_named(name: &str) -> usize {
    let Ok(dir) = fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                args.contains(&name.as_bytes()) && !args.contains(&b"run".as_slice())
            })
        })
        .count()
}

/// Host processes whose command line is exactly `argv`.
fn processes_exactly(argv: &[&str]) -> usize {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want))
                .count()
        })
        .unwrap_or(0)
}

fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().unwrap())
}

/// The `limit_exceeded` events of an audit log: (limit, value).
fn limit_events(e: &Env) -> Vec<(String, String)> {
    read_log(&e.audit_path())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::LimitExceeded { limit, value, .. } => Some((limit, value)),
            _ => None,
        })
        .collect()
}

/// The run's cgroup directory for `controller` (v1), or its v2 directory, as cordon names it:
/// `cordon-PID` under the cgroup cordon started in (this test's own).
fn run_cgroup(controller: &str, cordon_pid: u32) -> Option<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    for line in mountinfo.lines() {
        let (left, right) = line.split_once(" - ")?;
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        let v1 = r[0] == "cgroup" && r.get(2)?.split(',').any(|o| o == controller);
        let v2 = r[0] == "cgroup2";
        if !(v1 || v2) {
            continue;
        }
        let path = own.lines().find_map(|c| {
            let mut p = c.splitn(3, ':');
            let (id, ctrls, path) = (p.next()?, p.next()?, p.next()?);
            let hit = if v1 {
                ctrls.split(',').any(|x| x == controller)
            } else {
                id == "0" && ctrls.is_empty()
            };
            hit.then(|| path.to_string())
        })?;
        let rel = path
            .strip_prefix(l[3])
            .unwrap_or(&path)
            .trim_start_matches('/');
        let base = PathBuf::from(l[4]);
        let dir = if rel.is_empty() { base } else { base.join(rel) };
        let dir = dir.join(format!("cordon-{cordon_pid}"));
        if v1 || dir.join("cgroup.procs").exists() {
            return Some(dir);
        }
    }
    None
}

/// CPU used by the run's cgroup so far, from the kernel's accounting.
fn cgroup_cpu(cordon_pid: u32) -> Option<Duration> {
    if let Some(d) = run_cgroup("cpuacct", cordon_pid) {
        if let Ok(ns) = fs::read_to_string(d.join("cpuacct.usage")) {
            return ns.trim().parse().ok().map(Duration::from_nanos);
        }
    }
    let d = run_cgroup("cpu", cordon_pid)?;
    let stat = fs::read_to_string(d.join("cpu.stat")).ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
        .map(Duration::from_micros)
}

/// Asserts cordon removed its cgroups after the run.
fn assert_cgroups_removed(cordon_pid: u32) {
    for c in ["memory", "pids", "cpu", "cpuacct"] {
        if let Some(d) = run_cgroup(c, cordon_pid) {
            assert!(!exists(&d), "cgroup {} left behind", d.display());
        }
    }
}

fn assert_refused_for_want_of_a_cgroup(run: &Run, ran: &std::path::Path) {
    assert_eq!(run.code, 125, "{}", run.stderr);
    assert!(run.stderr.contains("cgroup"), "{}", run.stderr);
    assert!(
        run.stderr.contains("systemd-run"),
        "names no fix: {}",
        run.stderr
    );
    assert!(
        !exists(ran),
        "the command ran although the limit was refused"
    );
}

const BOMB: &str = "import os, time
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)
";

#[test]
fn fork_bomb_is_held_by_pids() {
    let e = Env::new("forkbomb");
    let audit = e.audit_path();
    let name = format!("bomb-{}", std::process::id());
    // The sleep starts first (so it exists whatever the bomb does). The bomb is one that
    // does not burn out: every process forks for ever and retries when the kernel refuses,
    // so the tree presses against the limit until the run ends and init kills it.
    let script = "touch ran; sleep 3 & s=$!; /usr/bin/python3 -c \"$BOMB\" \"$0\" & wait $s; true";
    let mut flags = vec!["--pids", "64", "--audit", audit.to_str().unwrap()];
    if !is_root() {
        let run = finish(sh_named(&e, &flags, script, &name).spawn().unwrap());
        assert_refused_for_want_of_a_cgroup(&run, &e.ws.join("ran"));
        assert!(run.stderr.contains("--allow-weaker"), "{}", run.stderr);
        flags.push("--allow-weaker");
    }
    let child = sh_named(&e, &flags, script, &name)
        .env("BOMB", BOMB)
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    let mut most = 0;
    while started.elapsed() < Duration::from_millis(2500) {
        most = most.max(processes_named(&name));
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = finish(child);
    eprintln!("fork bomb under --pids 64: at most {most} of its processes alive on the host");
    assert!(exists(&e.ws.join("ran")), "{}", run.stderr);
    assert!(
        most >= 32,
        "the bomb never pressed the limit ({most} processes)"
    );
    assert!(
        most <= 64,
        "the bomb reached {most} processes past --pids 64"
    );
    assert!(
        wait_until(|| processes_named(&name) == 0),
        "bomb processes outlived the run"
    );
    if is_root() {
        assert!(run.stderr.contains("pids limit"), "{}", run.stderr);
        assert!(
            limit_events(&e).contains(&("pids".into(), "64".into())),
            "no limit_exceeded event: {:?}",
            limit_events(&e)
        );
        assert_cgroups_removed(pid);
    } else {
        assert!(run.stderr.contains("RLIMIT_NPROC"), "{}", run.stderr);
    }
    // The host is healthy: it still starts processes.
    assert!(std::process::Command::new("true")
        .status()
        .unwrap()
        .success());
}

const HOG: &str = "/usr/bin/python3 -c \"b = bytearray(512*1024*1024); b[::4096] = b'x'*(len(b)//4096); print('allocated')\"";

#[test]
fn memory_hog_is_held_by_memory() {
    let e = Env::new("memhog");
    let audit = e.audit_path();
    let mut flags = vec!["--memory", "64M", "--audit", audit.to_str().unwrap()];
    if is_root() {
        // First it tries to lift its own limit: cgroup files are read-only inside.
        let script = format!(
            "touch ran; p=$(grep ':memory:' /proc/self/cgroup | cut -d: -f3); \
             echo -1 > /sys/fs/cgroup/memory$p/memory.limit_in_bytes && echo lifted; {HOG}"
        );
        let child = sh_named(&e, &flags, &script, "memhog").spawn().unwrap();
        let pid = child.id();
        let run = finish(child);
        assert!(exists(&e.ws.join("ran")), "{}", run.stderr);
        assert!(
            !run.stdout.contains("lifted"),
            "the sandbox raised its own limit"
        );
        assert!(
            !run.stdout.contains("allocated"),
            "512 MiB under --memory 64M"
        );
        assert_ne!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.code, 137, "OOM kill expected: {}", run.stderr);
        assert!(run.stderr.contains("memory limit"), "{}", run.stderr);
        assert!(
            limit_events(&e).contains(&("memory".into(), "64M".into())),
            "no limit_exceeded event: {:?}",
            limit_events(&e)
        );
        assert_cgroups_removed(pid);
        return;
    }
    let script = format!("touch ran; {HOG}");
    let run = finish(sh_named(&e, &flags, &script, "memhog").spawn().unwrap());
    assert_refused_for_want_of_a_cgroup(&run, &e.ws.join("ran"));
    flags.push("--allow-weaker");
    let run = finish(sh_named(&e, &flags, &script, "memhog").spawn().unwrap());
    assert!(exists(&e.ws.join("ran")), "{}", run.stderr);
    assert!(
        !run.stdout.contains("allocated"),
        "512 MiB under --memory 64M"
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("per process, not per tree"),
        "the weaker limit must say what it is: {}",
        run.stderr
    );
}

#[test]
fn sleep_is_held_by_timeout() {
    let e = Env::new("timeout");
    let audit = e.audit_path();
    let duration = format!("30.{}", std::process::id());
    let started = Instant::now();
    let run = finish(
        sh_named(
            &e,
            &["--timeout", "1s", "--audit", audit.to_str().unwrap()],
            &format!("sleep {duration}"),
            "sleeper",
        )
        .spawn()
        .unwrap(),
    );
    let elapsed = started.elapsed();
    assert_eq!(run.code, 124, "{}", run.stderr);
    assert!(
        elapsed < Duration::from_secs(20),
        "not killed: took {elapsed:?}"
    );
    assert!(
        run.stderr
            .contains("cordon: timeout: the command ran longer than 1s and was killed"),
        "{}",
        run.stderr
    );
    assert_eq!(
        processes_exactly(&["sleep", &duration]),
        0,
        "sleep survived"
    );
    let log = read_log(&audit).unwrap();
    assert!(log.iter().any(|r| matches!(&r.event,
        Event::LimitExceeded { limit, value, .. } if limit == "timeout" && value == "1s")));
    assert!(log
        .iter()
        .any(|r| matches!(r.event, Event::CommandExit { status: 124, .. })));
    // A command that ends in time is not touched.
    let fast = e.sh(&["--timeout", "30s"], "exit 7");
    assert_eq!(fast.code, 7, "{}", fast.stderr);
    assert!(!fast.stderr.contains("timeout"), "{}", fast.stderr);
}

#[test]
fn cpu_spinners_are_held_by_cpu() {
    let e = Env::new("cpu");
    // Two spinners for 2 s of wall-clock time: unlimited, that is up to 4 s of CPU on two
    // cores. Then a pause, so the accounting can be read once the spinners are done.
    let script =
        "touch ran; for i in 1 2; do timeout 2 sh -c 'while :; do :; done' & done; wait; sleep 1.5";
    if !is_root() {
        for flags in [&["--cpu", "0.5"][..], &["--cpu", "0.5", "--allow-weaker"]] {
            let run = finish(sh_named(&e, flags, script, "spin").spawn().unwrap());
            assert_refused_for_want_of_a_cgroup(&run, &e.ws.join("ran"));
            assert!(
                run.stderr.contains("no per-process stand-in"),
                "{}",
                run.stderr
            );
        }
        return;
    }
    let child = sh_named(&e, &["--cpu", "0.5"], script, "spin")
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut used = None;
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        if let Some(u) = cgroup_cpu(pid) {
            used = Some(u);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = finish(child);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let used = used.expect("the run's cgroup never showed CPU accounting");
    eprintln!("cgroup CPU accounting: 2 spinners x 2 s under --cpu 0.5 used {used:?}");
    assert!(
        used <= Duration::from_millis(1300),
        "2 spinners for 2 s used {used:?} of CPU under --cpu 0.5"
    );
    assert!(
        used >= Duration::from_millis(300),
        "the spinners barely ran ({used:?}): the measurement proves nothing"
    );
    assert_cgroups_removed(pid);
}

#[test]
fn bad_limit_values_are_refused() {
    let e = Env::new("badlimits");
    for (flag, value, says) in [
        ("--memory", "lots", "not a size"),
        ("--memory", "64", "64M"),
        ("--memory", "0", "unlimited"),
        ("--cpu", "half", "cores"),
        ("--pids", "many", "whole number"),
        ("--timeout", "90", "unit"),
        ("--timeout", "soon", "--timeout"),
    ] {
        let run = e.sh(&[flag, value], "touch ran");
        assert_eq!(run.code, 125, "{flag} {value}: {}", run.stderr);
        assert!(
            run.stderr.starts_with(&format!("cordon: {flag} {value}:")),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(says), "{flag} {value}: {}", run.stderr);
        assert!(run.stderr.contains("hint:"), "{}", run.stderr);
        assert!(!exists(&e.ws.join("ran")));
    }
    let policy = e.root.join("p.toml");
    fs::write(&policy, "[limits]\ntimeout = \"1s\"\nmemory = \"lots\"\n").unwrap();
    let run = e.sh(&["--policy", policy.to_str().unwrap()], "touch ran");
    assert_eq!(run.code, 125, "{}", run.stderr);
    assert!(run.stderr.contains("p.toml:3"), "{}", run.stderr);
    assert!(!exists(&e.ws.join("ran")));
}

#[test]
fn workspace_file_raising_a_limit_needs_approval() {
    let e = Env::new("limit-approve");
    let config = e.home.join(".config/cordon/config.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(&config, "[limits]\ntimeout = \"1s\"\n").unwrap();
    fs::write(e.ws.join(".cordon.toml"), "[limits]\ntimeout = \"30s\"\n").unwrap();
    let run = e.sh(&[], "sleep 3");
    assert_eq!(
        run.code, 124,
        "unapproved raise took effect: {}",
        run.stderr
    );
    assert!(run.stderr.contains("limits.timeout 30s"), "{}", run.stderr);
    assert!(run.stderr.contains("cordon approve"), "{}", run.stderr);
    let approve = e.cordon(&["approve".as_ref()]).ok();
    assert!(
        approve.stdout.contains("limits.timeout"),
        "{}",
        approve.stdout
    );
    let run = e.sh(&[], "sleep 2; echo finished");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("finished"));
    // Lowering needs no approval: a narrower limit always applies.
    fs::write(e.ws.join(".cordon.toml"), "[limits]\ntimeout = \"500ms\"\n").unwrap();
    let run = e.sh(&[], "sleep 3");
    assert_eq!(run.code, 124, "{}", run.stderr);
    assert!(!run.stderr.contains("ignoring"), "{}", run.stderr);
}

#[test]
fn file_size_and_open_files_are_rlimits_and_core_files_are_off() {
    let e = Env::new("rlimits");
    let audit = e.audit_path();
    let policy = e.root.join("limits.toml");
    fs::write(&policy, "[limits]\nfile_size = \"1M\"\nopen_files = 64\n").unwrap();
    let flags = [
        "--policy",
        policy.to_str().unwrap(),
        "--audit",
        audit.to_str().unwrap(),
    ];
    let run = e.sh(
        &flags,
        "grep -E 'core|open files|file size' /proc/self/limits",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    for (what, value) in [
        ("Max core file size", "0"),
        ("Max open files", "64"),
        ("Max file size", "1048576"),
    ] {
        let line = run.stdout.lines().find(|l| l.starts_with(what)).unwrap();
        let fields: Vec<&str> = line[what.len()..].split_whitespace().collect();
        assert_eq!(&fields[..2], [value, value], "soft and hard: {line}");
    }
    let run = e.sh(&flags, "head -c 2M /dev/zero > big");
    assert_eq!(run.code, 153, "{}", run.stderr);
    assert_eq!(fs::metadata(e.ws.join("big")).unwrap().len(), 1 << 20);
    assert!(run.stderr.contains("file_size limit"), "{}", run.stderr);
    assert!(limit_events(&e).contains(&("file_size".into(), "1M".into())));
    let run = e.sh(&flags, "ulimit -n 4096");
    assert_ne!(run.code, 0, "the command raised its open-files limit back");
}
