//! Applying selected paths leaves the rest in the transaction, and the transaction's view stays
//! what the agent made (also inside opaque directories).

use std::fs;

use cordon_transaction::{Protection, RelPath};

use crate::support::Fixture;

fn rel(p: &str) -> RelPath {
    RelPath::new(p).unwrap()
}

#[test]
fn selected_paths_apply_and_the_rest_stays() {
    let f = Fixture::new(
        "select",
        "mkdir -p src e; echo 1 > src/a; echo x > e/x; echo r > readme",
    );
    let mut tx = f.open("sel");
    let script = "echo 2 > src/a; mkdir -p src/new/deep; echo n > src/new/deep/f; \
                  rm -rf e; mkdir e; echo y > e/y; echo q > e/q; echo R > readme";
    if !f.run_in(&mut tx, script) {
        return;
    }
    let p = Protection::git_default();
    let report = tx
        .apply(&p, &[rel("src/new/deep/f"), rel("e/y"), rel("nothing")])
        .unwrap();
    assert_eq!(report.unmatched, [rel("nothing")]);
    assert!(
        report.applied.contains(&rel("src/new/deep/f")),
        "{report:#?}"
    );
    assert!(
        report.applied.contains(&rel("src/new")),
        "parents come along"
    );
    assert_eq!(
        fs::read_to_string(f.ws.join("src/new/deep/f")).unwrap(),
        "n\n"
    );
    assert_eq!(fs::read_to_string(f.ws.join("e/y")).unwrap(), "y\n");
    assert_eq!(fs::read_to_string(f.ws.join("src/a")).unwrap(), "1\n");
    assert!(f.ws.join("e/x").exists(), "not selected");

    let left: Vec<String> = tx
        .changes(&p)
        .unwrap()
        .changes
        .iter()
        .map(|c| c.path.to_string())
        .collect();
    assert_eq!(left, ["e/q", "e/x", "readme", "src/a"]);
    // The next command in the transaction still sees the agent's tree.
    let view = f.look(&tx, "ls e; cat src/a src/new/deep/f readme");
    assert_eq!(view, "q\ny\n2\nn\nR\n");

    tx.apply(&p, &[]).unwrap();
    assert!(!f.ws.join("e/x").exists());
    assert_eq!(fs::read_to_string(f.ws.join("e/q")).unwrap(), "q\n");
    assert_eq!(fs::read_to_string(f.ws.join("readme")).unwrap(), "R\n");
    assert!(tx.changes(&p).unwrap().is_empty());
}

#[test]
fn an_applied_file_is_not_shared_with_the_layer() {
    // Apply moves the layer's own file into the workspace and leaves the replaced old version
    // at the layer's name; neither may stay in the layer: the next command must not write
    // through to the real file, nor see the old version as the transaction's.
    let f = Fixture::new("unlink", "echo 1 > keep; echo 1 > other");
    let mut tx = f.open("ul");
    if !f.run_in(&mut tx, "echo 2 > keep; echo 2 > other") {
        return;
    }
    tx.apply(&Protection::git_default(), &[rel("keep")])
        .unwrap();
    assert!(f.run_in(&mut tx, "echo 3 >> keep"));
    assert_eq!(fs::read_to_string(f.ws.join("keep")).unwrap(), "2\n");
    tx.apply(&Protection::git_default(), &[]).unwrap();
    assert_eq!(fs::read_to_string(f.ws.join("keep")).unwrap(), "2\n3\n");
}
