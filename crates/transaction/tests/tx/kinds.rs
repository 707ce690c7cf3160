//! Every kind of change round-trips: scanned with the right kind, applied to the same tree that
//! running the commands directly would have made.

use cordon_transaction::{Entry, Kind, Protection, RelPath, Status};

use crate::support::{assert_same_tree, Fixture};

pub const SETUP: &str = r#"
echo a > a; echo b > b; mkdir -p d/sub e ro; echo c > d/c; echo s > d/sub/s
echo x > e/x; echo big > big; chmod 644 big; ln -s a link
printf 'bin\000ary' > blob; mkdir dir2file; echo q > dir2file/q; echo f > file2dir
echo same > touched; echo keep > ro/keep; chmod 555 ro; echo m > moveme
"#;

pub const SCRIPT: &str = r#"
rm a
echo new > newfile
echo changed >> b
mv d/c d/c2
mv d dd
rm -rf e; mkdir e; echo y > e/y
chmod 755 big
ln -sf b link
touch empty
mkdir newdir; chmod 750 newdir
mkdir -p n1/n2; echo deep > n1/n2/f
printf 'bin\000ary2' > blob
rm -rf dir2file; echo now-a-file > dir2file
rm file2dir; mkdir file2dir; echo z > file2dir/z
ln -s newfile newlink
touch touched
chmod 755 ro
mv moveme moved
"#;

fn rel(p: &str) -> RelPath {
    RelPath::new(p).unwrap()
}

#[test]
fn every_kind_is_scanned_and_applied() {
    let f = Fixture::new("kinds", SETUP);
    let expected = f.expected(SCRIPT);
    let mut tx = f.open("kinds");
    if !f.run_in(&mut tx, SCRIPT) {
        return;
    }
    let set = tx.changes(&Protection::git_default()).unwrap();
    let kind = |p: &str| {
        set.changes
            .iter()
            .find(|c| c.path == rel(p))
            .map(|c| c.kind)
            .unwrap_or_else(|| panic!("no change for {p}: {:#?}", set.changes))
    };
    assert_eq!(kind("a"), Kind::Deleted);
    assert_eq!(kind("newfile"), Kind::Added);
    assert_eq!(kind("b"), Kind::Modified);
    assert_eq!(kind("big"), Kind::Modified);
    assert_eq!(kind("link"), Kind::Modified);
    assert_eq!(kind("empty"), Kind::Added);
    assert_eq!(kind("newdir"), Kind::Added);
    assert_eq!(kind("dir2file"), Kind::TypeChanged);
    assert_eq!(kind("file2dir"), Kind::TypeChanged);
    assert_eq!(kind("e/x"), Kind::Deleted, "opaque directory hides e/x");
    assert_eq!(kind("e/y"), Kind::Added);
    assert_eq!(kind("moved"), Kind::Renamed);
    assert_eq!(
        kind("dd/c2"),
        Kind::Renamed,
        "file renamed within a renamed directory"
    );
    assert_eq!(kind("ro"), Kind::Modified, "directory mode");
    assert!(
        !set.changes.iter().any(|c| c.path == rel("touched")),
        "a copy-up with the same content is no change"
    );
    let moved = set.changes.iter().find(|c| c.path == rel("moved")).unwrap();
    assert_eq!(moved.from, Some(rel("moveme")));
    let blob = set.changes.iter().find(|c| c.path == rel("blob")).unwrap();
    assert!(matches!(blob.new, Some(Entry::File { binary: true, .. })));
    assert!(set.changes.iter().all(|c| c.status == Status::Ready));
    assert!(set.can_auto_apply());
    let s = set.summary();
    assert!(s.added >= 5 && s.deleted >= 2 && s.renamed >= 2, "{s:?}");

    let report = tx.apply(&Protection::git_default(), &[]).unwrap();
    assert!(
        report.conflicts.is_empty() && report.failed.is_empty(),
        "{report:#?}"
    );
    assert!(report.emptied);
    assert_same_tree(&f.ws, &expected);
    assert!(tx.changes(&Protection::git_default()).unwrap().is_empty());
    assert_eq!(std::fs::read_dir(tx.upper()).unwrap().count(), 0);
}

#[test]
fn diff_shows_text_binary_mode_and_symlinks_and_serializes() {
    let f = Fixture::new("diff", SETUP);
    let mut tx = f.open("diff");
    if !f.run_in(&mut tx, SCRIPT) {
        return;
    }
    let set = tx.changes(&Protection::git_default()).unwrap();
    let diff = tx.diff(&set).unwrap();
    let text = diff.render();
    if std::env::var_os("SHOW_DIFF").is_some() {
        eprintln!("{text}");
    }
    for needle in [
        "--- a/b",
        "+++ b/b",
        "+changed",
        "mode 0644 -> 0755",
        "symlink -> a  =>  -> b",
        "binary file:",
        "renamed   moveme -> moved",
        "deleted   a",
        "added     empty",
        "empty file",
        "directory replaced by file",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let json = serde_json::to_value(&diff).unwrap();
    let files = json["files"].as_array().unwrap();
    let b = files.iter().find(|f| f["path"] == "b").unwrap();
    assert_eq!(b["kind"], "modified");
    assert_eq!(b["status"], "ready");
    assert!(b["unified"].as_str().unwrap().contains("+changed"));
    assert_eq!(json["summary"]["renamed"], 3);
    let back: cordon_transaction::Diff = serde_json::from_value(json).unwrap();
    assert_eq!(back.files.len(), diff.files.len());
}

#[test]
fn several_commands_share_one_transaction() {
    let f = Fixture::new("multi", "echo 1 > counter");
    let mut tx = f.open("multi");
    if !f.run_in(&mut tx, "echo 2 > counter; echo a > first") {
        return;
    }
    drop(tx);
    let mut tx = f.open("multi");
    assert!(f.run_in(
        &mut tx,
        "test \"$(cat counter)\" = 2; echo 3 > counter; rm first; echo b > second"
    ));
    assert_eq!(tx.meta().commands, 2);
    let set = tx.changes(&Protection::git_default()).unwrap();
    let paths: Vec<String> = set.changes.iter().map(|c| c.path.to_string()).collect();
    assert_eq!(
        paths,
        ["counter", "second"],
        "first was added and removed again: no change"
    );
    tx.apply(&Protection::git_default(), &[]).unwrap();
    assert_eq!(
        std::fs::read_to_string(f.ws.join("counter")).unwrap(),
        "3\n"
    );
    assert!(!f.ws.join("first").exists());
}

#[test]
fn non_utf8_names_round_trip() {
    let f = Fixture::new("bytes", "echo old > \"$(printf 'x\\377')\"");
    let script = "echo new > \"$(printf 'x\\377')\"; echo n > \"$(printf 'y\\376')\"";
    let expected = f.expected(script);
    let mut tx = f.open("bytes");
    if !f.run_in(&mut tx, script) {
        return;
    }
    let report = tx.apply(&Protection::git_default(), &[]).unwrap();
    assert_eq!(report.applied.len(), 2, "{report:#?}");
    assert_same_tree(&f.ws, &expected);
}
