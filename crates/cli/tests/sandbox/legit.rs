//! Legitimate work that must keep working inside the default sandbox.

use std::fs;
use std::process::Command;

use crate::util::{have, Env};

#[test]
fn git_add_commit_branch_stash() {
    let e = Env::with_git("legit-git");
    let script = "echo change >> README && git add README && git -c user.email=t@t -c user.name=t commit -qm inside && \
        git checkout -qb feature && echo wip >> README && git stash -q && git stash list | wc -l";
    let run = e.sh(&[], script).ok();
    assert_eq!(run.stdout.trim(), "1");
    assert!(e.git(&["log", "--oneline", "main"]).contains("inside"));
    assert!(e.git(&["branch"]).contains("feature"));
}

#[test]
fn shell_pipeline_and_python() {
    let e = Env::new("legit-shell");
    let run = e.sh(&[], "seq 1 100 | awk '{s+=$1} END {print s}' | tee sum.txt && python3 -c 'print(sum(range(101)))'").ok();
    assert_eq!(run.stdout, "5050\n5050\n");
    assert_eq!(fs::read_to_string(e.ws.join("sum.txt")).unwrap(), "5050\n");
}

#[test]
fn c_compiler_builds_and_runs() {
    let e = Env::new("legit-cc");
    fs::write(
        e.ws.join("hello.c"),
        "#include <stdio.h>\nint main(void){puts(\"built\");return 0;}\n",
    )
    .unwrap();
    let run = e.sh(&[], "cc -o hello hello.c && ./hello").ok();
    assert_eq!(run.stdout, "built\n");
}

#[test]
fn cargo_builds_a_small_crate() {
    if !have("cargo") {
        panic!("cargo must be on PATH for the legitimate-work suite (.ci/run installs it)");
    }
    let e = Env::new("legit-cargo");
    fs::create_dir_all(e.ws.join("src")).unwrap();
    fs::write(
        e.ws.join("Cargo.toml"),
        "[package]\nname = \"smoke\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n# Its own workspace, wherever the test directory is (even inside this repository).\n[workspace]\n",
    )
    .unwrap();
    fs::write(
        e.ws.join("src/main.rs"),
        "fn main() { println!(\"cargo-ok {}\", 6 * 7); }\n",
    )
    .unwrap();
    // The toolchain stays where it is; cargo's cache goes to the workspace.
    let cargo_home = e.ws.join(".cargo-home");
    let run = e
        .command(&[
            "run".as_ref(),
            "--".as_ref(),
            "cargo".as_ref(),
            "run".as_ref(),
            "-q".as_ref(),
            "--offline".as_ref(),
        ])
        .env("CARGO_HOME", &cargo_home)
        .env(
            "RUSTUP_HOME",
            std::env::var_os("RUSTUP_HOME")
                .unwrap_or_else(|| real_home().join(".rustup").into_os_string()),
        )
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        out.contains("cargo-ok 42"),
        "stdout: {out}\nstderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(e.ws.join("target").is_dir());
}

fn real_home() -> std::path::PathBuf {
    std::env::var_os("HOME")
        .map(Into::into)
        .unwrap_or_else(|| "/root".into())
}

#[test]
fn make_with_parallel_jobs() {
    if !have("make") {
        panic!("make must be on PATH (.ci/run installs build-essential)");
    }
    let e = Env::new("legit-make");
    fs::write(
        e.ws.join("Makefile"),
        "all: a b\na:\n\techo a > a\nb:\n\techo b > b\n",
    )
    .unwrap();
    e.sh(&[], "make -s -j4").ok();
    assert!(e.ws.join("a").exists() && e.ws.join("b").exists());
    let _ = Command::new("true").status();
}
