//! Machines without user namespaces: cordon refuses (125) unless the weaker mode is named,
//! and in that mode writes are still confined. Simulated by setting the user-namespace
//! limit to 0 inside a throwaway user namespace, which only affects that namespace.

use std::process::Command;

use crate::util::{cordon_bin, exists, have, Env};

fn without_userns(e: &Env, cordon_args: &str) -> (i32, String) {
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces || exit 99; cd {ws} && {bin} {cordon_args}",
        ws = e.ws.display(),
        bin = cordon_bin().display()
    );
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c", &script])
        .env("HOME", &e.home)
        .env("XDG_STATE_HOME", e.home.join(".local/state"))
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(code, 99, "could not disable user namespaces for the test");
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn refuses_without_user_namespaces_and_names_the_fix() {
    assert!(have("unshare"), "util-linux unshare is required");
    let e = Env::new("no-userns");
    let marker = e.ws.join("ran");
    let (code, stderr) = without_userns(&e, &format!("run -- touch {}", marker.display()));
    assert_eq!(code, 125, "{stderr}");
    assert!(stderr.contains("user namespaces"), "{stderr}");
    assert!(stderr.contains("--allow-weaker"), "{stderr}");
    assert!(!exists(&marker), "command ran unconfined");
}

#[test]
fn landlock_only_mode_still_confines_writes() {
    let e = Env::new("weaker");
    let inside = e.ws.join("inside");
    let outside = e.outside.join("escaped");
    let (code, stderr) = without_userns(
        &e,
        &format!(
            "run --allow-weaker -- sh -c 'echo x > {}; echo x > {}; true'",
            inside.display(),
            outside.display()
        ),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("NOT isolated"),
        "weaker mode must say so: {stderr}"
    );
    assert!(exists(&inside));
    assert!(!exists(&outside), "Landlock-only mode let a write escape");
}

#[test]
fn landlock_only_mode_still_keeps_the_deny_read_set_unreadable() {
    let e = Env::new("weaker-read");
    let out = e.ws.join("out");
    let h = e.home.display();
    let (code, stderr) = without_userns(
        &e,
        &format!(
            "run --allow-weaker -- sh -c 'cat {h}/.bashrc {h}/.ssh/id_rsa {h}/.aws/credentials {h}/.netrc > {o} 2>&1; true'",
            o = out.display()
        ),
    );
    assert_eq!(code, 0, "{stderr}");
    let seen = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        seen.contains("# original"),
        "control: the fake home is not readable, so this tests nothing:\n{seen}"
    );
    assert!(
        !seen.contains(crate::util::SECRET),
        "secret read in the weaker mode:\n{seen}"
    );
}
