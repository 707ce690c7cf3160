//! A workspace file changed since the transaction first saw it is a conflict: reported, never
//! overwritten, and both versions kept.

use std::fs;

use cordon_transaction::{Protection, RelPath, Status};

use crate::support::Fixture;

fn rel(p: &str) -> RelPath {
    RelPath::new(p).unwrap()
}

#[test]
fn user_edits_after_the_command_are_not_overwritten() {
    let f = Fixture::new(
        "conflict",
        "echo base > shared; echo base > gone; echo base > other",
    );
    let mut tx = f.open("c1");
    if !f.run_in(
        &mut tx,
        "echo agent > shared; rm gone; echo agent > created; echo agent > other",
    ) {
        return;
    }
    // The user works on while the transaction waits for review.
    fs::write(f.ws.join("shared"), "user\n").unwrap();
    fs::write(f.ws.join("gone"), "user kept working on it\n").unwrap();
    fs::write(f.ws.join("created"), "user made it too\n").unwrap();

    let p = Protection::git_default();
    let set = tx.changes(&p).unwrap();
    let conflicted: Vec<String> = set.conflicts().map(|c| c.path.to_string()).collect();
    assert_eq!(conflicted, ["created", "gone", "shared"]);
    assert!(!set.can_auto_apply());
    assert!(tx.diff(&set).unwrap().render().contains("CONFLICT"));

    let report = tx.apply(&p, &[]).unwrap();
    assert_eq!(report.applied, [rel("other")]);
    assert_eq!(report.conflicts.len(), 3);
    assert!(!report.emptied);
    // The user's versions are untouched ...
    assert_eq!(fs::read_to_string(f.ws.join("shared")).unwrap(), "user\n");
    assert_eq!(
        fs::read_to_string(f.ws.join("gone")).unwrap(),
        "user kept working on it\n"
    );
    assert_eq!(
        fs::read_to_string(f.ws.join("created")).unwrap(),
        "user made it too\n"
    );
    assert_eq!(fs::read_to_string(f.ws.join("other")).unwrap(), "agent\n");
    // ... and the transaction's are kept beside them and in the transaction.
    assert_eq!(
        fs::read_to_string(f.ws.join("shared.cordon-tx-c1")).unwrap(),
        "agent\n"
    );
    let kept = report
        .conflicts
        .iter()
        .find(|c| c.path == rel("shared"))
        .and_then(|c| c.kept_as.clone());
    assert_eq!(kept, Some(rel("shared.cordon-tx-c1")));
    let left = tx.changes(&p).unwrap();
    assert_eq!(left.conflicts().count(), 3, "{left:#?}");
    // Applying again changes nothing and writes no second copy.
    let again = tx.apply(&p, &[]).unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(fs::read_to_string(f.ws.join("shared")).unwrap(), "user\n");
}

#[test]
fn the_same_change_made_by_the_user_is_no_conflict() {
    let f = Fixture::new("same", "echo base > x");
    let mut tx = f.open("same");
    if !f.run_in(&mut tx, "echo done > x") {
        return;
    }
    fs::write(f.ws.join("x"), "done\n").unwrap();
    let set = tx.changes(&Protection::git_default()).unwrap();
    assert!(set.changes.iter().all(|c| c.status == Status::Ready));
    let report = tx.apply(&Protection::git_default(), &[]).unwrap();
    assert!(report.conflicts.is_empty());
    assert_eq!(fs::read_to_string(f.ws.join("x")).unwrap(), "done\n");
}

#[test]
fn a_file_only_read_or_touched_is_not_reverted() {
    let f = Fixture::new("touch", "echo base > t");
    let mut tx = f.open("touch");
    if !f.run_in(&mut tx, "touch t; cat t >/dev/null") {
        return;
    }
    fs::write(f.ws.join("t"), "user edit\n").unwrap();
    let set = tx.changes(&Protection::git_default()).unwrap();
    assert!(set.is_empty(), "{set:#?}");
    tx.apply(&Protection::git_default(), &[]).unwrap();
    assert_eq!(fs::read_to_string(f.ws.join("t")).unwrap(), "user edit\n");
}
