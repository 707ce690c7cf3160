//! Apply killed at every step (`CORDON_TX_FAULT_AFTER=N` aborts the child process after N
//! steps): afterwards every path holds its old or its new state, nothing else, and the next open
//! finishes (journal committed) or rolls back (not yet committed), then an apply completes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use cordon_transaction::{fault, Protection, Recovery, RelPath, Store};

use crate::kinds::{SCRIPT, SETUP};
use crate::support::{assert_same_tree, snapshot, Fixture};

const CHILD_STATE: &str = "CORDON_TX_TEST_CHILD_STATE";
const CHILD_WS: &str = "CORDON_TX_TEST_CHILD_WS";
const CHILD_PATHS: &str = "CORDON_TX_TEST_CHILD_PATHS";

/// The child's body: open and apply everything (or the space-separated paths of
/// `CORDON_TX_TEST_CHILD_PATHS`). Does nothing in a normal test run.
#[test]
fn child_apply() {
    let (Some(state), Some(ws)) = (std::env::var_os(CHILD_STATE), std::env::var_os(CHILD_WS))
    else {
        return;
    };
    let paths: Vec<RelPath> = std::env::var(CHILD_PATHS)
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| RelPath::new(p).unwrap())
        .collect();
    let (mut tx, _) = Store::new(&PathBuf::from(state))
        .open_or_create(Some("crash"), &PathBuf::from(ws))
        .unwrap();
    tx.apply(&Protection::git_default(), &paths).unwrap();
}

fn run_child(f: &Fixture, fault_after: u64) -> bool {
    run_child_with(f, fault_after, &[])
}

fn run_child_with(f: &Fixture, fault_after: u64, paths: &[&str]) -> bool {
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash::child_apply",
            "--test-threads=1",
            "--quiet",
        ])
        .env(CHILD_STATE, &f.state)
        .env(CHILD_WS, &f.ws)
        .env(fault::ENV, fault_after.to_string())
        .env(CHILD_PATHS, paths.join(" "))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    status.success()
}

/// Every path of `now` holds what `before` or `after` holds there (or is absent in one of
/// them); staging files may exist only inside cordon's state folder.
fn old_or_new(
    now: &BTreeMap<PathBuf, String>,
    before: &BTreeMap<PathBuf, String>,
    after: &BTreeMap<PathBuf, String>,
    step: u64,
) {
    for (p, v) in now {
        let ok = before.get(p) == Some(v) || after.get(p) == Some(v)
            // A directory's mode is set last, so mid-way it may still be the old one or the
            // owner-only mode it was created with.
            || v.starts_with("dir ");
        assert!(
            ok,
            "step {step}: {} holds {v}, neither old nor new",
            p.display()
        );
    }
    let kind = |v: &String| v.split(' ').next().map(str::to_owned);
    for (p, v) in before {
        let retyped = after.get(p).map(kind) != Some(kind(v));
        // Only a path whose kind changes (file <-> directory) may be briefly absent.
        if !now.contains_key(p) && after.contains_key(p) && !retyped {
            panic!(
                "step {step}: {} ({v}) vanished but should exist after",
                p.display()
            );
        }
    }
}

/// Waits (up to 20 s) for the background removal of old versions to end.
pub fn wait_for_trash(tx: &cordon_transaction::Transaction) {
    for _ in 0..2000 {
        if !tx.trash_pending() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the trash of {} was never removed", tx.name());
}

#[test]
fn killed_at_every_step_loses_nothing() {
    let probe = Fixture::new("crash-probe", SETUP);
    let mut tx = probe.open("crash");
    if !probe.run_in(&mut tx, SCRIPT) {
        return;
    }
    drop(tx);
    let mut step = 1;
    let mut rolled_back = 0;
    let mut finished = 0;
    let mut tidied = 0;
    loop {
        let f = Fixture::new("crash", SETUP);
        let expected = f.expected(SCRIPT);
        let before = snapshot(&f.ws);
        let after = snapshot(&expected);
        let mut tx = f.open("crash");
        assert!(f.run_in(&mut tx, SCRIPT));
        drop(tx);
        if run_child(&f, step) {
            // More steps than the apply has: it ran to the end.
            assert_same_tree(&f.ws, &expected);
            break;
        }
        old_or_new(&snapshot(&f.ws), &before, &after, step);
        let (mut tx, _) = f.store().open_or_create(Some("crash"), &f.ws).unwrap();
        match tx.recovered() {
            Some(Recovery::Finished { .. }) => {
                finished += 1;
                assert_same_tree(&f.ws, &expected);
            }
            Some(Recovery::RolledBack) => {
                rolled_back += 1;
                assert_same_tree(&f.ws, &PathBuf::from(&f.ws));
                assert_eq!(
                    snapshot(&f.ws),
                    before,
                    "step {step}: rolled back is untouched"
                );
            }
            // Killed after the journal was removed: the apply was over, only the removal of
            // the old versions was left, which the next apply does.
            None if tx.trash_pending() => {
                tidied += 1;
                assert_same_tree(&f.ws, &expected);
            }
            None => panic!("step {step}: an interrupted apply left nothing to recover"),
        }
        // Whatever happened, applying again ends with exactly the expected tree.
        tx.apply(&Protection::git_default(), &[]).unwrap();
        assert_same_tree(&f.ws, &expected);
        assert!(tx.changes(&Protection::git_default()).unwrap().is_empty());
        wait_for_trash(&tx);
        step += 1;
        assert!(step < 500, "apply never finished");
    }
    eprintln!(
        "crash test: {} steps, {rolled_back} rolled back, {finished} finished, {tidied} left only trash",
        step - 1
    );
    assert!(rolled_back > 0 && finished > 0 && tidied > 0);
}

/// A partial apply keeps the layer (no wipe): the layer's files moved into place leave their
/// names holding the old versions, which the tidy-up must take out of the layer, at every kill
/// too, or the transaction would show the old version as its change.
#[test]
fn a_partial_apply_killed_at_every_step_keeps_the_rest_in_the_layer() {
    const SETUP: &str = "echo 1 > a; echo 1 > b; echo 1 > c; ln -s a l; mkdir d; echo 1 > d/x";
    const SCRIPT: &str = "echo 2 > a; echo 2 > b; echo new > n; ln -sf b l; echo 2 > d/x; rm c";
    const PICKED: &str = "echo 2 > a; echo new > n; ln -sf b l; echo 2 > d/x";
    let paths = ["a", "n", "l", "d/x"];
    let picked: Vec<RelPath> = paths.iter().map(|p| RelPath::new(*p).unwrap()).collect();
    let p = Protection::git_default();
    let mut step = 1;
    let mut outcomes = [0; 3];
    loop {
        let f = Fixture::new("crash-partial", SETUP);
        let expected = f.expected(PICKED);
        let before = snapshot(&f.ws);
        let mut tx = f.open("crash");
        if !f.run_in(&mut tx, SCRIPT) {
            return;
        }
        drop(tx);
        let done = run_child_with(&f, step, &paths);
        if !done {
            old_or_new(&snapshot(&f.ws), &before, &snapshot(&expected), step);
        }
        let (mut tx, _) = f.store().open_or_create(Some("crash"), &f.ws).unwrap();
        match tx.recovered() {
            Some(Recovery::Finished { .. }) => outcomes[0] += 1,
            Some(Recovery::RolledBack) => {
                outcomes[1] += 1;
                assert_eq!(snapshot(&f.ws), before, "step {step}: rolled back");
            }
            None => outcomes[2] += 1,
        }
        tx.apply(&p, &picked).unwrap();
        assert_same_tree(&f.ws, &expected);
        let left: Vec<String> = tx
            .changes(&p)
            .unwrap()
            .changes
            .iter()
            .map(|c| c.path.to_string())
            .collect();
        assert_eq!(
            left,
            ["b", "c"],
            "step {step}: what stays in the transaction"
        );
        // The transaction's view is still the agent's tree.
        let view = f.look(&tx, "cat a b n d/x; readlink l; ls");
        assert_eq!(view, "2\n2\nnew\n2\nb\na\nb\nd\nl\nn\n", "step {step}");
        wait_for_trash(&tx);
        if done {
            break;
        }
        step += 1;
        assert!(step < 200, "apply never finished");
    }
    eprintln!("partial crash test: {} steps, {outcomes:?}", step - 1);
    assert!(outcomes[0] > 0 && outcomes[2] > 0);
}

#[test]
fn an_edit_between_crash_and_recovery_is_a_conflict_not_overwritten() {
    let f = Fixture::new("crash-edit", "echo 1 > f1; echo 1 > f2");
    let mut tx = f.open("crash");
    if !f.run_in(&mut tx, "echo 2 > f1; echo 2 > f2") {
        return;
    }
    drop(tx);
    // Steps: commit the journal (the layer's files are moved into place, nothing is staged);
    // abort right after the commit point.
    assert!(!run_child(&f, 1));
    assert!(f.state.join("transactions/crash/journal.json").exists());
    assert_eq!(std::fs::read_to_string(f.ws.join("f1")).unwrap(), "1\n");
    std::fs::write(f.ws.join("f2"), "user\n").unwrap();
    let (tx, _) = f.store().open_or_create(Some("crash"), &f.ws).unwrap();
    let Some(Recovery::Finished { report }) = tx.recovered() else {
        panic!("expected a finished recovery, got {:?}", tx.recovered());
    };
    assert_eq!(std::fs::read_to_string(f.ws.join("f1")).unwrap(), "2\n");
    assert_eq!(std::fs::read_to_string(f.ws.join("f2")).unwrap(), "user\n");
    assert_eq!(
        std::fs::read_to_string(f.ws.join("f2.cordon-tx-crash")).unwrap(),
        "2\n"
    );
    assert_eq!(report.conflicts.len(), 1, "{report:#?}");
    assert!(!f.state.join("transactions/crash/journal.json").exists());
}

fn trash_folders(f: &Fixture, name: &str) -> Vec<PathBuf> {
    let dir = f.state.join("transactions").join(name);
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("trash-"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn replaced_and_removed_files_are_freed_after_the_apply() {
    let f = Fixture::new(
        "trash",
        "echo 1 > f1; echo 1 > f2; echo 1 > gone; ln -s a link",
    );
    let mut tx = f.open("trash");
    // The locked directory must not stop the remover, who is not root everywhere.
    let script = "echo 2 > f1; echo 2 > f2; rm gone; ln -sf b link; echo new > added; \
                  mkdir locked; echo x > locked/f; chmod 0 locked";
    if !f.run_in(&mut tx, script) {
        return;
    }
    let expected = f.expected(script);
    let report = tx.apply(&Protection::git_default(), &[]).unwrap();
    assert_eq!(report.applied.len(), 7, "{report:#?}");
    assert_same_tree(&f.ws, &expected);
    wait_for_trash(&tx);
    assert!(trash_folders(&f, "trash").is_empty());
    let dir = f.state.join("transactions/trash");
    assert!(!dir.join("staging").exists());
    assert!(!dir.join("journal.json").exists());
}

#[test]
fn killed_between_commit_and_freeing_loses_nothing_and_the_next_apply_frees() {
    let f = Fixture::new("trash-crash", "echo 1 > f1; echo 1 > f2");
    let mut tx = f.open("crash");
    if !f.run_in(&mut tx, "echo 2 > f1; rm f2") {
        return;
    }
    drop(tx);
    // Steps: commit, place f1, remove f2, tidy, staging made trash, journal removed: abort
    // right there, before the removal of the old versions starts.
    assert!(!run_child(&f, 6));
    let dir = f.state.join("transactions/crash");
    assert!(!dir.join("journal.json").exists());
    // The staging folder and the emptied layers became trash; the old versions are in them:
    // the removed f2 in staging, f1's at the layer's name, where the swap left it.
    let trash = trash_folders(&f, "crash");
    let old_in = |suffix: &str| -> Vec<String> {
        let dir = trash
            .iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap();
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    };
    assert_eq!(old_in("-staging"), ["1\n"]);
    assert_eq!(old_in("-upper"), ["1\n"]);
    assert_eq!(std::fs::read_to_string(f.ws.join("f1")).unwrap(), "2\n");
    assert!(!f.ws.join("f2").exists());

    // Nothing to recover, nothing stale for the next apply, which frees the trash.
    let (mut tx, _) = f.store().open_or_create(Some("crash"), &f.ws).unwrap();
    assert_eq!(tx.recovered(), None);
    assert!(tx.changes(&Protection::git_default()).unwrap().is_empty());
    assert!(tx.trash_pending());
    assert!(f.run_in(&mut tx, "echo 3 > f1"));
    let report = tx.apply(&Protection::git_default(), &[]).unwrap();
    assert_eq!(report.applied.len(), 1, "{report:#?}");
    assert!(report.conflicts.is_empty() && report.failed.is_empty());
    assert_eq!(std::fs::read_to_string(f.ws.join("f1")).unwrap(), "3\n");
    wait_for_trash(&tx);
    assert!(trash_folders(&f, "crash").is_empty());
}
