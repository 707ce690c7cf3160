//! The exit-status contract of DESIGN.md, and the audit log of each run.

use std::fs;

use cordon_audit::{read_log, Ending, Event};

use crate::util::Env;

#[test]
fn exit_statuses_follow_the_contract() {
    let e = Env::new("exit");
    assert_eq!(e.sh(&[], "exit 3").code, 3);
    assert_eq!(e.sh(&[], "kill -9 $$").code, 137);
    assert_eq!(e.sh(&[], "kill -TERM $$").code, 143);
    let nf = e.cordon(&[
        "run".as_ref(),
        "--".as_ref(),
        "no-such-command-xyz".as_ref(),
    ]);
    assert_eq!(nf.code, 127, "{}", nf.stderr);
    assert!(nf.stderr.contains("not found"));
    fs::write(e.ws.join("script"), "#!/bin/sh\necho hi\n").unwrap();
    let ne = e.cordon(&["run".as_ref(), "--".as_ref(), "./script".as_ref()]);
    assert_eq!(ne.code, 126, "{}", ne.stderr);
    let bad_flag = e.cordon(&[
        "run".as_ref(),
        "--net".as_ref(),
        "sometimes".as_ref(),
        "--".as_ref(),
        "true".as_ref(),
    ]);
    assert_eq!(bad_flag.code, 125);
    let no_ws = e.cordon(&[
        "run".as_ref(),
        "-w".as_ref(),
        "/no/such/dir".as_ref(),
        "--".as_ref(),
        "true".as_ref(),
    ]);
    assert_eq!(no_ws.code, 125);
    assert!(no_ws.stderr.starts_with("cordon: "), "{}", no_ws.stderr);
    // Limits are enforced where a cgroup can be made (root here) and refused elsewhere; the
    // limits module tests both sides.
    let limits = e.cordon(&[
        "run".as_ref(),
        "--memory".as_ref(),
        "64M".as_ref(),
        "--".as_ref(),
        "true".as_ref(),
    ]);
    let expected = if crate::util::is_root() { 0 } else { 125 };
    assert_eq!(limits.code, expected, "{}", limits.stderr);
}

#[test]
fn stdin_and_stdout_pass_through() {
    use std::io::Write;
    let e = Env::new("stdio");
    let mut child = e
        .command(&[
            "run".as_ref(),
            "--".as_ref(),
            "tr".as_ref(),
            "a-z".as_ref(),
            "A-Z".as_ref(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped through\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PIPED THROUGH\n");
}

#[test]
fn audit_log_records_start_and_exit() {
    let e = Env::new("audit");
    let audit = e.audit_path();
    e.sh(&["--audit", audit.to_str().unwrap()], "exit 4");
    let records = read_log(&audit).unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0].run, records[1].run);
    match &records[0].event {
        Event::CommandStart {
            argv,
            guarantees,
            policy_digest,
            backend,
            ..
        } => {
            assert_eq!(argv, &["sh", "-c", "exit 4"]);
            assert!(policy_digest.starts_with("sha256:"));
            assert_eq!(backend, "linux-namespaces");
            assert!(guarantees
                .iter()
                .any(|g| g.area == "write" && g.state == "enforced"));
        }
        other => panic!("first event {other:?}"),
    }
    match &records[1].event {
        Event::CommandExit { status, ending, .. } => {
            assert_eq!(*status, 4);
            assert_eq!(*ending, Ending::Exited);
        }
        other => panic!("second event {other:?}"),
    }
}

#[test]
fn default_audit_log_is_in_the_state_dir_and_hidden_inside() {
    let e = Env::new("audit-default");
    e.sh(&[], "true").ok();
    let log = e.home.join(".local/state/cordon/audit.jsonl");
    assert!(log.is_file(), "no default audit log");
    let run = e
        .sh(
            &[],
            &format!("cat {}; echo x >> {}; true", log.display(), log.display()),
        )
        .ok();
    assert!(
        !run.stdout.contains("command_start"),
        "audit log readable inside"
    );
    assert!(
        !fs::read_to_string(&log).unwrap().lines().any(|l| l == "x"),
        "audit log writable inside"
    );
}

#[test]
fn doctor_reports_facts_and_every_guarantee() {
    let e = Env::new("doctor");
    let run = e.cordon(&["doctor".as_ref(), "--json".as_ref()]).ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(v["landlock_abi"].as_i64().unwrap() >= 1, "{v}");
    assert_eq!(v["user_namespaces"], "available", "{v}");
    assert!(v["kernel"].as_str().is_some_and(|k| !k.is_empty()));
    let areas: Vec<&str> = v["guarantees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["area"].as_str().unwrap())
        .collect();
    for area in [
        "write",
        "protected",
        "read",
        "env",
        "processes",
        "network",
        "syscalls",
        "terminal",
        "limits",
    ] {
        assert!(areas.contains(&area), "doctor lacks {area}: {areas:?}");
    }
    // The table of observed denials: syscall refusals are seen on every kernel cordon runs
    // on (Landlock needs 5.13; user notification is 5.0), filesystem ones are not.
    let observed = |class: &str| {
        v["observed_denials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["area"] == class)
            .map(|g| g["state"].as_str().unwrap().to_string())
    };
    assert_eq!(observed("syscall").as_deref(), Some("observed"), "{v}");
    assert_eq!(observed("network").as_deref(), Some("observed"), "{v}");
    assert_eq!(
        observed("filesystem").as_deref(),
        Some("not_observed"),
        "{v}"
    );
    let syscalls = v["guarantees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["area"] == "syscalls")
        .unwrap();
    assert_eq!(syscalls["state"], "enforced", "{syscalls}");
    let text = e.cordon(&["doctor".as_ref()]).ok();
    assert!(text.stdout.contains("user namespaces"));
    let profile = e
        .cordon(&["doctor".as_ref(), "--apparmor-profile".as_ref()])
        .ok();
    assert!(profile.stdout.contains("userns,"));
}
