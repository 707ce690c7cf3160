//! Upper layers made by hand for forms a cordon mount does not produce itself: the xattr
//! whiteout of nested overlays, and redirect/metacopy xattrs, which must stop the scan.

use std::fs;

use cordon_transaction::{Error, Kind, Protection};
use nix::sys::stat::{mknod, Mode, SFlag};

use crate::support::Fixture;

#[test]
fn xattr_whiteouts_and_device_whiteouts_both_delete() {
    let f = Fixture::new("xwh", "echo a > a; echo b > b");
    let tx = f.open("xwh");
    let up = tx.upper();
    fs::write(up.join("a"), "").unwrap();
    xattr::set(up.join("a"), "user.overlay.whiteout", b"").unwrap();
    mknod(&up.join("b"), SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
    let set = tx.changes(&Protection::git_default()).unwrap();
    let kinds: Vec<(String, Kind)> = set
        .changes
        .iter()
        .map(|c| (c.path.to_string(), c.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("a".to_string(), Kind::Deleted),
            ("b".to_string(), Kind::Deleted)
        ]
    );
}

#[test]
fn redirect_and_metacopy_stop_the_scan() {
    for x in ["user.overlay.redirect", "user.overlay.metacopy"] {
        let f = Fixture::new("redir", "mkdir d; echo a > d/a");
        let tx = f.open("redir");
        fs::create_dir(tx.upper().join("d2")).unwrap();
        xattr::set(tx.upper().join("d2"), x, b"/d").unwrap();
        assert!(matches!(
            tx.changes(&Protection::git_default()),
            Err(Error::Unsupported { .. })
        ));
    }
}

#[test]
fn special_files_are_shown_never_applied() {
    let f = Fixture::new("fifo", "true");
    let mut tx = f.open("fifo");
    nix::unistd::mkfifo(&tx.upper().join("pipe"), Mode::S_IRWXU).unwrap();
    let set = tx.changes(&Protection::git_default()).unwrap();
    assert_eq!(set.refused().count(), 1, "{set:#?}");
    tx.apply(&Protection::git_default(), &[]).unwrap();
    assert!(!f.ws.join("pipe").exists());
}
