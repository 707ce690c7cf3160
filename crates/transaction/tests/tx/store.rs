//! The store: names, sharing, locking, listing, discarding.

use std::fs;

use cordon_transaction::{Error, Protection, Store};

use crate::support::Fixture;

#[test]
fn names_are_checked_and_generated() {
    let f = Fixture::new("names", "true");
    let store = f.store();
    for bad in ["..", "a/b", "../../etc", ".x", ""] {
        assert!(matches!(
            store.open_or_create(Some(bad), &f.ws),
            Err(Error::InvalidName { .. })
        ));
    }
    let (tx, created) = store.open_or_create(None, &f.ws).unwrap();
    assert!(created);
    assert!(tx.name().starts_with("tx-"));
    assert!(tx.dir().starts_with(store.root()));
}

#[test]
fn one_cordon_at_a_time_and_shared_by_name() {
    let f = Fixture::new("lock", "true");
    let store = f.store();
    let (tx, created) = store.open_or_create(Some("job"), &f.ws).unwrap();
    assert!(created);
    assert!(matches!(store.open("job"), Err(Error::Busy(_))));
    let listing = store.list().unwrap();
    assert!(listing[0].busy);
    drop(tx);
    // The lock is an flock on an open file: a process another test thread is forking at
    // this moment shares it until its exec closes it (close-on-exec), so under load the
    // lock can outlive `drop` by that long. Wait for that, never for longer than 10 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (_tx, created) = loop {
        match store.open_or_create(Some("job"), &f.ws) {
            Err(Error::Busy(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            other => break other.unwrap(),
        }
    };
    assert!(!created, "the second command shares the transaction");
}

#[test]
fn a_transaction_belongs_to_one_workspace() {
    let f = Fixture::new("owner", "mkdir other");
    let store = f.store();
    drop(store.open_or_create(Some("mine"), &f.ws).unwrap());
    assert!(matches!(
        store.open_or_create(Some("mine"), &f.ws.join("other")),
        Err(Error::OtherWorkspace { .. })
    ));
}

#[test]
fn discard_drops_the_layer_and_leaves_the_workspace() {
    let f = Fixture::new("discard", "echo 1 > a");
    let mut tx = f.open("drop");
    if !f.run_in(&mut tx, "echo 2 > a; rm -rf x; mkdir -p x/y; chmod 000 x") {
        return;
    }
    let dir = tx.dir().to_path_buf();
    tx.discard().unwrap();
    assert!(!dir.exists());
    assert_eq!(fs::read_to_string(f.ws.join("a")).unwrap(), "1\n");
    assert!(Store::new(&f.state).list().unwrap().is_empty());
    assert!(matches!(
        Store::new(&f.state).open("drop"),
        Err(Error::NotFound(_))
    ));
    let _ = Protection::git_default();
}
