//! Times applying 10,000 changed files (`cargo bench -p cordon-transaction --bench apply`):
//! modified, added and deleted files in a fresh workspace each round, layers made by writing
//! the upper directory the way overlayfs leaves it (copies and char-device whiteouts).
//! "apply" is until `Transaction::apply` returns (every file in place, journal committed and
//! removed); "then freeing" is how long the background removal of the old versions ran after.
//!
//! Each round applies twice, on two fresh set-ups: once with the set-up flushed first (`sync`
//! after writing the layer and the workspace, before the clock starts), as in real use, where
//! the layer is written while the agent's command runs, long before `cordon tx apply`; and once
//! right after the layer was written, the worst case, where apply's `syncfs` also flushes the
//! benchmark's own set-up writes. `CORDON_BENCH_MODE=synced|unsynced` runs only one of them.
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

/// The floor on this filesystem: the one syscall per file that any apply must make (rename over
/// the old file, rename into place, unlink), without checks, staging or journal. With `keep`,
/// the same without freeing anything, as apply does it: the old file is swapped into (or
/// renamed to) a trash folder instead.
fn floor(root: &Path, kind: &str, keep: bool) -> Duration {
    let _ = fs::remove_dir_all(root);
    for d in 0..100 {
        fs::create_dir_all(root.join(format!("d{d}"))).unwrap();
    }
    let trash = root.join("trash");
    fs::create_dir_all(&trash).unwrap();
    for i in 0..FILES {
        let body = format!("line one of {i}\nline two\n{}\n", "x".repeat(i % 2000));
        if kind != "added" {
            fs::write(root.join(format!("d{}/f{i}", i % 100)), "old\n").unwrap();
        }
        fs::write(root.join(format!("d{}/g{i}", i % 100)), body).unwrap();
    }
    nix::unistd::sync();
    let t = Instant::now();
    for i in 0..FILES {
        let (f, g) = (
            root.join(format!("d{}/f{i}", i % 100)),
            root.join(format!("d{}/g{i}", i % 100)),
        );
        match (kind, keep) {
            ("deleted", false) => fs::remove_file(f).unwrap(),
            ("deleted", true) => fs::rename(f, trash.join(i.to_string())).unwrap(),
            ("modified", true) => {
                use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
                renameat2(AT_FDCWD, &g, AT_FDCWD, &f, RenameFlags::RENAME_EXCHANGE).unwrap()
            }
            _ => fs::rename(g, f).unwrap(),
        }
    }
    let d = t.elapsed();
    let _ = fs::remove_dir_all(root);
    d
}

#[derive(Default)]
struct Times {
    record: Vec<Duration>,
    applies: Vec<Duration>,
    freeing: Vec<Duration>,
}

/// One round: a fresh set-up, flushed first when `synced`, then apply timed.
fn round(base: &Path, kind: &str, synced: bool, t: &mut Times) {
    let (store, ws) = setup(base, kind);
    let (mut tx, _) = store.open_or_create(Some("bench"), &ws).unwrap();
    let p = Protection::git_default();
    let start = Instant::now();
    tx.record_bases(&p).unwrap();
    t.record.push(start.elapsed());
    if synced {
        nix::unistd::sync();
    }
    let start = Instant::now();
    let report = tx.apply(&p, &[]).unwrap();
    t.applies.push(start.elapsed());
    assert_eq!(report.applied.len(), FILES, "{kind}");
    let start = Instant::now();
    while tx.trash_pending() {
        std::thread::sleep(Duration::from_millis(5));
    }
    t.freeing.push(start.elapsed());
}

fn med(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let base = std::env::var_os("CORDON_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("cordon-tx-bench"));
    let rounds: usize = std::env::var("CORDON_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let only = std::env::var("CORDON_BENCH_KIND").ok();
    let mode = std::env::var("CORDON_BENCH_MODE").ok();
    let modes: Vec<bool> = match mode.as_deref() {
        Some("synced") => vec![true],
        Some("unsynced") => vec![false],
        _ => vec![true, false],
    };
    for kind in ["modified", "added", "deleted"] {
        if only.as_deref().is_some_and(|o| o != kind) {
            continue;
        }
        let mut synced = Times::default();
        let mut unsynced = Times::default();
        for _ in 0..rounds {
            // Interleaved, so both see the same load.
            for &m in &modes {
                let t = if m { &mut synced } else { &mut unsynced };
                round(&base, kind, m, t);
            }
        }
        for (label, t) in [
            ("set-up flushed first", &mut synced),
            ("applied right after the layer was written", &mut unsynced),
        ] {
            if t.applies.is_empty() {
                continue;
            }
            let applies = &mut t.applies;
            let m = med(applies);
            println!(
                "{FILES} {kind} files, {label}: apply median {m:?} (min {:?}, max {:?}), \
                 then freeing median {:?} (max {:?}); record_bases median {:?}",
                applies[0],
                applies[applies.len() - 1],
                med(&mut t.freeing),
                t.freeing[t.freeing.len() - 1],
                med(&mut t.record),
            );
        }
        if std::env::var_os("CORDON_BENCH_NO_FLOOR").is_none() {
            let mut floors: Vec<Duration> =
                (0..rounds).map(|_| floor(&base, kind, false)).collect();
            let mut kept: Vec<Duration> = (0..rounds).map(|_| floor(&base, kind, true)).collect();
            println!(
                "{FILES} {kind} files: floor (one bare syscall per file) median {:?}, \
                 without freeing {:?}",
                med(&mut floors),
                med(&mut kept),
            );
        }
    }
    let _ = fs::remove_dir_all(&base);
}
