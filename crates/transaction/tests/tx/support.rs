//! Fixtures: a workspace, a store, and commands run in the transaction through a real
//! overlayfs mount in a new user namespace (`unshare -Urm`), as the sandbox will mount it.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use cordon_transaction::{Protection, Store, Transaction};

/// A directory removed (with everything the test made unwritable) when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cordon-tx-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = Command::new("chmod")
            .args(["-R", "u+rwx"])
            .arg(&self.0)
            .status();
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub struct Fixture {
    pub root: TempDir,
    pub ws: PathBuf,
    pub state: PathBuf,
}

pub fn sh(dir: &Path, script: &str) {
    let status = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .status()
        .expect("run sh");
    assert!(
        status.success(),
        "script failed in {}: {script}",
        dir.display()
    );
}

impl Fixture {
    /// A workspace filled by `setup` (a shell script run in it).
    pub fn new(tag: &str, setup: &str) -> Fixture {
        let root = TempDir::new(tag);
        let ws = root.0.join("ws");
        let state = root.0.join("state");
        fs::create_dir_all(&ws).expect("mkdir ws");
        fs::create_dir_all(&state).expect("mkdir state");
        sh(&ws, setup);
        let ws = fs::canonicalize(&ws).expect("canonical ws");
        Fixture { root, ws, state }
    }

    pub fn store(&self) -> Store {
        Store::new(&self.state)
    }

    pub fn open(&self, name: &str) -> Transaction {
        self.store()
            .open_or_create(Some(name), &self.ws)
            .expect("open transaction")
            .0
    }

    /// Runs `script` in the merged view of the transaction's overlay, then records bases,
    /// as `cordon run --transaction` does. Returns false (and says SKIP) when this machine
    /// cannot mount an overlay in a user namespace.
    pub fn run_in(&self, tx: &mut Transaction, script: &str) -> bool {
        let merged = self.root.0.join("merged");
        fs::create_dir_all(&merged).expect("mkdir merged");
        let mount = format!(
            "mount -t overlay overlay -o lowerdir={},upperdir={},workdir={},userxattr {}",
            self.ws.display(),
            tx.upper().display(),
            tx.work().display(),
            merged.display()
        );
        let full = format!(
            "{mount} || exit 99\ncd {}\nset -e\n{script}\ncd /\numount {}",
            merged.display(),
            merged.display()
        );
        let status = Command::new("unshare")
            .args(["-Urm", "sh", "-c", &full])
            .status()
            .expect("run unshare");
        if status.code() == Some(99) {
            if std::env::var("CORDON_TEST_REQUIRE").is_ok_and(|v| v.contains("userns")) {
                panic!("overlayfs in a user namespace is required but unavailable");
            }
            eprintln!("SKIP: overlayfs in an unprivileged user namespace is unavailable");
            return false;
        }
        assert!(status.success(), "command in the overlay failed: {script}");
        tx.record_bases(&Protection::git_default())
            .expect("record bases");
        true
    }

    /// Runs `script` in the merged view and returns its stdout, without recording.
    pub fn look(&self, tx: &Transaction, script: &str) -> String {
        let merged = self.root.0.join("merged");
        fs::create_dir_all(&merged).expect("mkdir merged");
        let full = format!(
            "mount -t overlay overlay -o lowerdir={},upperdir={},workdir={},userxattr {m} && cd {m} && {script}",
            self.ws.display(),
            tx.upper().display(),
            tx.work().display(),
            m = merged.display()
        );
        let out = Command::new("unshare")
            .args(["-Urm", "sh", "-c", &full])
            .output()
            .expect("run unshare");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A copy of the workspace with `script` run in it directly: what applying must produce.
    pub fn expected(&self, script: &str) -> PathBuf {
        let exp = self.root.0.join(format!(
            "expected-{}",
            fs::read_dir(&self.root.0).map(|d| d.count()).unwrap_or(0)
        ));
        let status = Command::new("cp")
            .arg("-a")
            .arg(&self.ws)
            .arg(&exp)
            .status()
            .expect("cp");
        assert!(status.success());
        sh(&exp, script);
        exp
    }
}

/// Everything about a tree that applying must reproduce: kind, mode, content, link target.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        let rel = p.strip_prefix(root).expect("under root").to_path_buf();
        let m = fs::symlink_metadata(&p).expect("stat");
        let mode = m.permissions().mode() & 0o7777;
        let desc = if m.file_type().is_symlink() {
            format!("symlink {}", fs::read_link(&p).expect("readlink").display())
        } else if m.is_dir() {
            format!("dir {mode:o}")
        } else if m.is_file() {
            let content = fs::read(&p).expect("read");
            format!(
                "file {mode:o} {} {:?}",
                m.size(),
                String::from_utf8_lossy(&content)
            )
        } else {
            format!("special {:o}", m.mode())
        };
        out.insert(rel, desc);
        if m.is_dir() {
            walk(root, &p, out);
        }
    }
}

pub fn assert_same_tree(actual: &Path, expected: &Path) {
    let a = snapshot(actual);
    let e = snapshot(expected);
    if a != e {
        let mut msg = String::new();
        for (k, v) in &e {
            match a.get(k) {
                Some(w) if w == v => {}
                Some(w) => msg.push_str(&format!("{}: expected {v}, got {w}\n", k.display())),
                None => msg.push_str(&format!("{}: missing (expected {v})\n", k.display())),
            }
        }
        for (k, v) in &a {
            if !e.contains_key(k) {
                msg.push_str(&format!("{}: unexpected {v}\n", k.display()));
            }
        }
        panic!("trees differ:\n{msg}");
    }
}
