//! Transactions: the command's writes land in an overlay kept in cordon's state folder; the
//! workspace changes only when a human applies them, and protected paths never change.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::util::{exists, Env, Run};

fn tx(e: &Env, args: &[&str]) -> Run {
    let mut argv: Vec<&std::ffi::OsStr> = vec!["tx".as_ref()];
    argv.extend(args.iter().map(std::ffi::OsStr::new));
    e.cordon(&argv)
}

/// Every kind of change, made inside a transaction.
const CHANGES: &str = "echo changed > README; echo new > added.txt; : > empty; \
    mkdir -p dir/sub && echo deep > dir/sub/file; ln -s README link; \
    echo x > mode.sh && chmod 755 mode.sh; echo gone > /dev/null; \
    rm old.txt; mv move-me.txt moved.txt";

#[test]
fn writes_wait_in_the_transaction_until_applied() {
    let e = Env::with_git("tx-roundtrip");
    fs::write(e.ws.join("old.txt"), "old\n").unwrap();
    fs::write(e.ws.join("move-me.txt"), "moving\n").unwrap();
    let run = e.sh(&["--transaction", "work"], CHANGES).ok();
    assert!(
        run.stderr.contains("cordon: transaction work:")
            && run.stderr.contains("cordon tx diff work"),
        "{}",
        run.stderr
    );
    // The workspace is untouched.
    assert_eq!(fs::read_to_string(e.ws.join("README")).unwrap(), "hello\n");
    for p in ["added.txt", "empty", "dir", "link", "mode.sh", "moved.txt"] {
        assert!(
            !exists(&e.ws.join(p)),
            "{p} reached the workspace before apply"
        );
    }
    assert!(exists(&e.ws.join("old.txt")) && exists(&e.ws.join("move-me.txt")));

    // The diff, as data.
    let diff: Value =
        serde_json::from_str(&tx(&e, &["diff", "work", "--json"]).ok().stdout).unwrap();
    let text = diff.to_string();
    for p in [
        "README",
        "added.txt",
        "empty",
        "dir/sub/file",
        "link",
        "mode.sh",
        "old.txt",
    ] {
        assert!(text.contains(p), "diff lacks {p}: {diff:#}");
    }
    let human = tx(&e, &["diff", "work"]).ok().stdout;
    assert!(
        human.contains("+changed") && human.contains("-hello"),
        "{human}"
    );

    // Apply: every kind round-trips.
    tx(&e, &["apply", "work"]).ok();
    assert_eq!(
        fs::read_to_string(e.ws.join("README")).unwrap(),
        "changed\n"
    );
    assert_eq!(fs::read_to_string(e.ws.join("added.txt")).unwrap(), "new\n");
    assert_eq!(fs::read(e.ws.join("empty")).unwrap().len(), 0);
    assert_eq!(
        fs::read_to_string(e.ws.join("dir/sub/file")).unwrap(),
        "deep\n"
    );
    assert_eq!(
        fs::read_link(e.ws.join("link")).unwrap().to_str(),
        Some("README")
    );
    let mode = fs::metadata(e.ws.join("mode.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert!(!exists(&e.ws.join("old.txt")));
    assert!(!exists(&e.ws.join("move-me.txt")));
    assert_eq!(
        fs::read_to_string(e.ws.join("moved.txt")).unwrap(),
        "moving\n"
    );
    // The audit log has the transaction's life, and the run says it was one.
    let log = fs::read_to_string(e.home.join(".local/state/cordon/audit.jsonl")).unwrap();
    assert!(
        log.contains(r#""area":"transaction","state":"enforced""#),
        "{log}"
    );
    for event in [
        "transaction_created",
        "transaction_recorded",
        "transaction_applied",
    ] {
        assert!(log.contains(event), "no {event} event");
    }
}

#[test]
fn git_inside_a_transaction_commits_into_it() {
    let e = Env::with_git("tx-git");
    let head = e.git(&["rev-parse", "HEAD"]);
    e.sh(
        &["--transaction", "g"],
        "echo more >> README && git add README && git -c user.email=t@t -c user.name=t commit -qm 'in a transaction'",
    )
    .ok();
    assert_eq!(
        e.git(&["rev-parse", "HEAD"]),
        head,
        "the commit reached the real repository"
    );
    tx(&e, &["apply", "g"]).ok();
    assert_ne!(e.git(&["rev-parse", "HEAD"]), head);
    assert!(e
        .git(&["log", "-1", "--format=%s"])
        .contains("in a transaction"));
}

#[test]
fn several_commands_share_one_transaction_and_discard_drops_it() {
    let e = Env::new("tx-shared");
    e.sh(&["--transaction", "multi"], "echo one > one.txt").ok();
    e.sh(
        &["--transaction", "multi"],
        "cat one.txt > two.txt && echo two >> two.txt",
    )
    .ok();
    let list = tx(&e, &["list"]).ok().stdout;
    assert!(
        list.contains("multi") && list.contains("2 command"),
        "{list}"
    );
    tx(&e, &["discard", "multi"]).ok();
    assert!(!exists(&e.ws.join("one.txt")) && !exists(&e.ws.join("two.txt")));
    assert!(!tx(&e, &["list"]).ok().stdout.contains("multi"));
}

#[test]
fn a_file_changed_in_the_workspace_meanwhile_is_a_conflict_and_both_versions_stay() {
    let e = Env::new("tx-conflict");
    e.sh(&["--transaction", "c"], "echo agent > README").ok();
    // The human edits the same file before applying.
    fs::write(e.ws.join("README"), "human\n").unwrap();
    let run = tx(&e, &["apply", "c"]);
    assert_ne!(run.code, 0, "a conflict must not look like success");
    assert_eq!(fs::read_to_string(e.ws.join("README")).unwrap(), "human\n");
    let kept = fs::read_dir(&e.ws)
        .unwrap()
        .filter_map(|d| d.ok())
        .map(|d| d.path())
        .find(|p| {
            p.to_string_lossy().contains("README") && p.file_name() != Some("README".as_ref())
        });
    let theirs = kept.map(|p| fs::read_to_string(p).unwrap());
    let in_tx = tx(&e, &["diff", "c"]).ok().stdout;
    assert!(
        theirs.as_deref() == Some("agent\n") || in_tx.contains("+agent"),
        "the transaction's version was lost: {theirs:?} {in_tx}"
    );
    // --apply auto never applies over a conflict either.
    e.sh(
        &["--transaction", "auto", "--apply", "auto"],
        "echo agent2 > README",
    )
    .ok();
    fs::write(e.ws.join("README"), "human2\n").unwrap();
    e.sh(&["--transaction", "auto", "--apply", "auto"], "true")
        .ok();
    assert_eq!(fs::read_to_string(e.ws.join("README")).unwrap(), "human2\n");
}

#[test]
fn apply_auto_applies_a_clean_change() {
    let e = Env::new("tx-auto");
    e.sh(
        &["--transaction", "--apply", "auto"],
        "echo auto > made.txt",
    )
    .ok();
    assert_eq!(fs::read_to_string(e.ws.join("made.txt")).unwrap(), "auto\n");
}

/// The attacks: write protected paths through the overlay, and reach the upper directory
/// (named in /proc/self/mountinfo) to plant a hook that apply would copy.
#[test]
fn protected_paths_cannot_be_changed_through_the_overlay() {
    let e = Env::with_git("tx-protected");
    let attack = r#"
echo evil > .git/hooks/pre-commit 2>/dev/null && echo HOOK-WRITTEN
echo '[network]' > .cordon.toml 2>/dev/null && echo POLICY-WRITTEN
git config core.hooksPath /tmp 2>/dev/null && echo CONFIG-WRITTEN
upper=$(sed -n 's/.*upperdir=\([^,]*\).*/\1/p' /proc/self/mountinfo | head -n 1)
echo "upper: $upper"
if [ -n "$upper" ]; then
  mkdir -p "$upper/.git/hooks" 2>/dev/null && echo evil > "$upper/.git/hooks/pre-commit" 2>/dev/null && echo UPPER-WRITTEN
fi
true
"#;
    let run = e.sh(&["--transaction", "p"], attack).ok();
    // The attack on the upper directory really had a target.
    assert!(run.stdout.contains("upper: /"), "{}", run.stdout);
    for marker in [
        "HOOK-WRITTEN",
        "POLICY-WRITTEN",
        "CONFIG-WRITTEN",
        "UPPER-WRITTEN",
    ] {
        assert!(!run.stdout.contains(marker), "{marker}: {}", run.stdout);
    }
    tx(&e, &["apply", "p"]);
    assert!(!exists(&e.ws.join(".git/hooks/pre-commit")));
    assert!(!exists(&e.ws.join(".cordon.toml")));
    assert!(!e.git(&["config", "--list"]).contains("hookspath"));
}

#[test]
fn a_bad_transaction_name_is_refused() {
    let e = Env::new("tx-name");
    let run = e.sh(&["--transaction", "../escape"], "true");
    assert_eq!(run.code, 125, "{}", run.stderr);
    assert!(run.stderr.contains("transaction"), "{}", run.stderr);
}

/// Fail closed: when the overlay cannot be mounted the command does not run at all (never
/// straight onto the real workspace).
#[test]
fn no_overlay_means_no_run() {
    let e = Env::new("tx-fail-closed");
    e.sh(&["--transaction", "broken"], "true").ok();
    // (Renamed, not removed: overlayfs leaves a mode-000 directory in it.)
    let work = e.home.join(".local/state/cordon/transactions/broken/work");
    fs::rename(&work, work.with_extension("moved")).unwrap();
    let run = e.sh(&["--transaction", "broken"], "echo ran > ran.txt");
    assert_eq!(run.code, 125, "{}", run.stderr);
    assert!(run.stderr.contains("overlayfs"), "{}", run.stderr);
    assert!(
        !exists(&e.ws.join("ran.txt")),
        "the command ran without its overlay"
    );
}
