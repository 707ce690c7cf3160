//! Times applying 10,000 changed files (`cargo bench -p cordon-transaction --bench apply`):
//! modified, added and deleted files in a fresh workspace each round, layers made by writing
//! the upper directory the way overlayfs leaves it (copies and char-device whiteouts).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use cordon_transaction::{Protection, Store};

const FILES: usize = 10_000;

fn setup(root: &Path, kind: &str) -> (Store, std::path::PathBuf) {
    let _ = fs::remove_dir_all(root);
    let ws = root.join("ws");
    let state = root.join("state");
    for d in 0..100 {
        fs::create_dir_all(ws.join(format!("d{d}"))).unwrap();
    }
    fs::create_dir_all(&state).unwrap();
    let store = Store::new(&state);
    let (tx, _) = store.open_or_create(Some("bench"), &ws).unwrap();
    let up = tx.upper();
    for i in 0..FILES {
        let rel = format!("d{}/f{i}.txt", i % 100);
        let body = format!("line one of {i}\nline two\n{}\n", "x".repeat(i % 2000));
        match kind {
            "modified" => {
                fs::write(ws.join(&rel), "old\n").unwrap();
                fs::create_dir_all(up.join(format!("d{}", i % 100))).unwrap();
                fs::write(up.join(&rel), body).unwrap();
            }
            "added" => {
                fs::create_dir_all(up.join(format!("d{}", i % 100))).unwrap();
                fs::write(up.join(&rel), body).unwrap();
            }
            _ => {
                fs::write(ws.join(&rel), body).unwrap();
                fs::create_dir_all(up.join(format!("d{}", i % 100))).unwrap();
                nix::sys::stat::mknod(
                    &up.join(&rel),
                    nix::sys::stat::SFlag::S_IFCHR,
                    nix::sys::stat::Mode::empty(),
                    0,
                )
                .unwrap();
            }
        }
    }
    let ws = fs::canonicalize(&ws).unwrap();
    drop(tx);
    (store, ws)
}

fn main() {
    let base = std::env::var_os("CORDON_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("cordon-tx-bench"));
    let rounds = 5;
    for kind in ["modified", "added", "deleted"] {
        let mut record = Vec::new();
        let mut applies = Vec::new();
        for _ in 0..rounds {
            let (store, ws) = setup(&base, kind);
            let (mut tx, _) = store.open_or_create(Some("bench"), &ws).unwrap();
            let p = Protection::git_default();
            let t = Instant::now();
            tx.record_bases(&p).unwrap();
            record.push(t.elapsed());
            let t = Instant::now();
            let report = tx.apply(&p, &[]).unwrap();
            applies.push(t.elapsed());
            assert_eq!(report.applied.len(), FILES, "{kind}");
        }
        let med = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        println!(
            "{FILES} {kind} files: apply median {:?} (min {:?}, max {:?}); record_bases median {:?}",
            med(&mut applies),
            applies[0],
            applies[applies.len() - 1],
            med(&mut record)
        );
    }
    let _ = fs::remove_dir_all(&base);
}
