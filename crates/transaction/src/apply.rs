//! Applying a transaction to the real workspace: crash-safe through a write-ahead journal.
//!
//! Phase 1 (nothing in the workspace changes): every change is checked against its base (a
//! workspace file that changed since the transaction first saw it is a conflict and is not
//! overwritten); the new content of each file is made durable on the workspace's filesystem:
//! when the state folder shares that filesystem the upper layer's own file is what phase 2 moves
//! into place (nothing is staged, nothing moves before the commit point), else a copy is staged;
//! one `syncfs` covers both. Then `journal.json` is written, synced and renamed into place: the
//! commit point.
//! Phase 2: the journal's operations run in order; each is one `rename(2)`, `unlink`, `mkdir`,
//! `rmdir` or `chmod`, so every path is always either old or new. Every operation checks what
//! the path holds before acting (cheaply by inode stamp, else by content hash), which makes it
//! idempotent: after a crash the next open runs the journal again from the start and finishes.
//! A crash before the commit point leaves only staged copies, which the next open removes (the
//! apply is rolled back; the workspace and the layer were never touched).

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::change::{Change, Kind, Status};
use crate::entry::{probe, probe_known, Entry, Stamp};
use crate::error::{Context, Result};
use crate::fault;
use crate::protect::Protection;
use crate::store::{make_removable, read_json, sync_dir, to_json, write_atomic, Transaction};
use crate::trash;
use crate::wire::RelPath;

const JOURNAL: &str = "journal.json";
const STAGING: &str = "staging";
const OUTSIDE_LOG: &str = "staged-outside";

/// One step of phase 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    /// Unlink a file or symlink that must still be `expect`.
    Remove {
        path: RelPath,
        expect: Entry,
        stamp: Option<Stamp>,
    },
    /// Remove a directory that must be empty by now.
    Rmdir { path: RelPath },
    /// Create a directory (owner-only until `DirMode` sets its mode at the end).
    Mkdir { path: RelPath },
    /// Rename the staged copy over `path`, which must still be `expect` (`None`: absent).
    Place {
        path: RelPath,
        #[serde(with = "crate::wire")]
        staged: PathBuf,
        new: Entry,
        expect: Option<Entry>,
        stamp: Option<Stamp>,
        /// Where to keep the staged version if `path` changed meanwhile.
        #[serde(with = "crate::wire")]
        aside: PathBuf,
    },
    /// Change a file's mode; its content must still be `expect`'s.
    Chmod {
        path: RelPath,
        mode: u32,
        expect: Entry,
        stamp: Option<Stamp>,
    },
    /// Set a directory's final mode (last, deepest first, so a read-only directory does not
    /// stop the writes into it).
    DirMode { path: RelPath, mode: u32 },
}

impl Op {
    fn path(&self) -> &RelPath {
        match self {
            Op::Remove { path, .. }
            | Op::Rmdir { path }
            | Op::Mkdir { path }
            | Op::Place { path, .. }
            | Op::Chmod { path, .. }
            | Op::DirMode { path, .. } => path,
        }
    }
}

/// The write-ahead journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    version: u32,
    name: String,
    ops: Vec<Op>,
    /// Upper-layer files moved into the workspace by their `Place` (the layer's name then holds
    /// the replaced old version, or nothing): taken out of the layer afterwards, or the next
    /// command in the transaction would see the old version as its change. (In a journal of an
    /// older cordon: hard links to the workspace's files, which writes would go through.)
    unlink_upper: Vec<RelPath>,
    /// Whiteouts to drop once their lower path is gone.
    whiteouts: Vec<RelPath>,
    /// Paths whose recorded base is dropped (the workspace now holds their new state).
    applied: Vec<RelPath>,
    /// Every change was applied: the layers are emptied afterwards.
    wipe: bool,
    /// Conflicting changes whose version was put aside (path, aside), for the report.
    conflicts: Vec<Conflict>,
    refused: Vec<Refusal>,
    /// The staging directory, where removed and replaced files are moved instead of being
    /// freed (empty in a journal written before it existed: those are unlinked).
    #[serde(default, with = "crate::wire")]
    staging: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub path: RelPath,
    /// Where the transaction's version was written next to the workspace's, if it was.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kept_as: Option<RelPath>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub path: RelPath,
    pub reason: String,
}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyReport {
    pub name: String,
    /// Paths now holding the transaction's version (renames: the new path).
    pub applied: Vec<RelPath>,
    pub conflicts: Vec<Conflict>,
    pub refused: Vec<Refusal>,
    /// Operations that failed with an I/O error; those changes stay in the transaction.
    pub failed: Vec<Refusal>,
    /// Requested paths that matched no change.
    pub unmatched: Vec<RelPath>,
    /// The transaction holds no change any more.
    pub emptied: bool,
}

/// What opening a transaction did about an apply that was interrupted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Recovery {
    /// The journal was committed: its remaining operations ran.
    Finished { report: ApplyReport },
    /// It stopped before the commit point: staged files removed, nothing was applied.
    RolledBack,
}

fn staging_in_tx(tx: &Transaction) -> PathBuf {
    tx.dir().join(STAGING)
}

fn staging_in_workspace(tx: &Transaction) -> PathBuf {
    tx.workspace()
        .join(format!(".cordon-tx-{}.staging", tx.name()))
}

fn dev_of(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path).ok().map(|m| m.dev())
}

/// Applies the selected changes (all when `paths` is empty).
pub fn apply(
    tx: &mut Transaction,
    protection: &Protection,
    paths: &[RelPath],
) -> Result<ApplyReport> {
    let t0 = std::time::Instant::now();
    let set = tx.changes(protection)?;
    timing("scan", t0);
    let all = paths.is_empty();
    let mut selected: Vec<&Change> = Vec::new();
    let mut unmatched = Vec::new();
    if all {
        selected.extend(set.changes.iter());
    } else {
        let mut picked = BTreeSet::new();
        for p in paths {
            let before = picked.len();
            for (i, c) in set.changes.iter().enumerate() {
                if c.path.is_within(p) || c.from.as_ref().is_some_and(|f| f.is_within(p)) {
                    picked.insert(i);
                }
            }
            if picked.len() == before {
                unmatched.push(p.clone());
            }
        }
        // A new file needs its new parent directories.
        let chosen: Vec<usize> = picked.iter().copied().collect();
        for i in chosen {
            let mut parent = set.changes[i].path.parent();
            while let Some(p) = parent {
                if let Some(j) = set.changes.iter().position(|c| {
                    c.path == p
                        && matches!(c.new, Some(Entry::Dir { .. }))
                        && c.kind != Kind::Modified
                }) {
                    picked.insert(j);
                }
                parent = p.parent();
            }
        }
        selected.extend(picked.iter().map(|&i| &set.changes[i]));
    }

    let wipe = all && set.changes.iter().all(Change::is_ready);
    let t0 = std::time::Instant::now();
    let journal = plan(tx, &selected, wipe)?;
    timing("plan", t0);
    let t0 = std::time::Instant::now();
    let mut report = run(tx, journal)?;
    timing("run", t0);
    report.unmatched = unmatched;
    Ok(report)
}

/// `CORDON_TX_TIMING=1` prints how long each phase took, for the benchmark.
pub(crate) fn timing(what: &str, since: std::time::Instant) {
    if std::env::var_os("CORDON_TX_TIMING").is_some() {
        eprintln!("cordon-tx: {what} {:?}", since.elapsed());
    }
}

/// Phase 1: stage content, decide operations, write and commit the journal.
fn plan(tx: &Transaction, selected: &[&Change], wipe: bool) -> Result<Journal> {
    let ws = tx.workspace();
    let upper = tx.upper();
    let in_tx = staging_in_tx(tx);
    let ws_dev = dev_of(ws);
    let staging = if dev_of(tx.dir()) == ws_dev {
        in_tx
    } else {
        staging_in_workspace(tx)
    };
    // Left over only by an apply that never reached its commit point (open rolls those back
    // first), so starting afresh loses nothing.
    if fs::symlink_metadata(&staging).is_ok() {
        fs::remove_dir_all(&staging).at("remove old staging", &staging)?;
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .at("create staging directory", &staging)?;
    let layer_in_place = dev_of(&upper) == dev_of(&staging);
    let stage_dev = dev_of(&staging);

    // Group A creates and replaces in place (a rename's new path before its old one goes, so
    // the content is in the workspace at every moment); then removals; then group B, what
    // lives at or below a path whose kind changed, which can only be made once the old thing
    // is gone (the one case where a path is briefly absent).
    let mut removes = Vec::new();
    let mut rmdirs = Vec::new();
    let mut mkdirs = Vec::new();
    let mut places = Vec::new();
    let mut late_mkdirs = Vec::new();
    let mut late_places = Vec::new();
    let mut chmods = Vec::new();
    let mut dirmodes = Vec::new();
    let retyped: Vec<RelPath> = selected
        .iter()
        .filter(|c| c.kind == Kind::TypeChanged && c.is_ready())
        .map(|c| c.path.clone())
        .collect();
    let is_late = |p: &RelPath| retyped.iter().any(|r| p.is_within(r));
    let mut j = Journal {
        version: 1,
        name: tx.name().to_string(),
        ops: Vec::new(),
        unlink_upper: Vec::new(),
        whiteouts: Vec::new(),
        applied: Vec::new(),
        wipe,
        conflicts: Vec::new(),
        refused: Vec::new(),
        staging: staging.clone(),
    };
    let mut counter = 0usize;
    // The device of each target's parent directory, read once per directory.
    let mut parent_devs: std::collections::HashMap<PathBuf, Option<u64>> = Default::default();
    let mut stage =
        |path: &RelPath, new: &Entry, in_opaque: bool, j: &mut Journal| -> Result<PathBuf> {
            counter += 1;
            let parent = ws.join(path.as_path());
            let parent_dev = match parent.parent() {
                Some(p) => *parent_devs
                    .entry(p.to_path_buf())
                    .or_insert_with(|| dev_of(p)),
                None => None,
            };
            let dest = if parent_dev.is_some() && parent_dev != stage_dev {
                // The target lies on another filesystem (a mount inside the workspace): stage next
                // to it, and note the name first so a rollback can find it.
                let parent = ws.join(path.as_path());
                let parent = parent.parent().unwrap_or(ws);
                let dest = parent.join(format!(".cordon-tx-{}.{counter}", tx.name()));
                let log = tx.dir().join(OUTSIDE_LOG);
                let mut line = dest.as_os_str().to_owned();
                line.push("\n");
                use std::io::Write;
                let mut f = File::options()
                    .append(true)
                    .create(true)
                    .open(&log)
                    .at("open", &log)?;
                use std::os::unix::ffi::OsStrExt;
                f.write_all(line.as_bytes()).at("write", &log)?;
                f.sync_all().at("fsync", &log)?;
                dest
            } else {
                staging.join(counter.to_string())
            };
            let src = upper.join(path.as_path());
            let on_staging_fs = dest.parent() == Some(staging.as_path());
            if layer_in_place
                && !in_opaque
                && on_staging_fs
                && matches!(new, Entry::File { .. } | Entry::Symlink { .. })
            {
                // The layer shares the workspace's filesystem: its own file is moved (swapped)
                // into place at phase 2, nothing is staged. Until then it stays where it is, so
                // a rollback has nothing to undo; afterwards the layer's name holds the
                // replaced old version (or nothing), which the tidy-up takes out of the layer.
                j.unlink_upper.push(path.clone());
                return Ok(src);
            }
            if !dest.starts_with(&staging) {
                // Next to the target: a leftover of an earlier attempt may hold the name (the
                // staging directory is new, nothing in it needs removing).
                let _ = fs::remove_file(&dest);
            }
            match new {
                Entry::Symlink { target } => symlink(target, &dest).at("stage symlink", &dest)?,
                Entry::File { mode, .. } => copy_file(&src, &dest, *mode)?,
                _ => {}
            }
            fault::step();
            Ok(dest)
        };

    let t_stage = std::time::Instant::now();
    for c in selected {
        match &c.status {
            Status::Refused { reason } => {
                j.refused.push(Refusal {
                    path: c.path.clone(),
                    reason: reason.clone(),
                });
                continue;
            }
            Status::Conflict { current } => {
                let aside = aside_name(&c.path, tx.name());
                let mut kept_as = None;
                if let Some(new @ (Entry::File { .. } | Entry::Symlink { .. })) = &c.new {
                    let aside_full = ws.join(aside.as_path());
                    let present = probe(&aside_full)?;
                    if present.as_ref() == Some(new) {
                        kept_as = Some(aside.clone());
                    } else if present.is_none() {
                        let staged = stage(&c.path, new, true, &mut j)?;
                        places.push(Op::Place {
                            path: aside.clone(),
                            staged,
                            new: new.clone(),
                            expect: None,
                            stamp: None,
                            aside: aside_full.clone(),
                        });
                        kept_as = Some(aside.clone());
                    }
                }
                j.conflicts.push(Conflict {
                    path: c.path.clone(),
                    kept_as,
                    reason: describe_conflict(c.old.as_ref(), current.as_ref()),
                });
                continue;
            }
            Status::Ready => {}
        }
        // The workspace already holds the new state (the user made the same change).
        let current = if c.kind == Kind::Renamed {
            None
        } else {
            c.layer.current.clone()
        };
        let same_now = c.kind != Kind::Renamed && current == c.new;
        let stamp = c.layer.current_stamp;
        if let Some(from) = &c.from {
            if let Some(old) = &c.old {
                removes.push(Op::Remove {
                    path: from.clone(),
                    expect: old.clone(),
                    stamp: c.layer.from_stamp,
                });
            }
            if c.layer.from_whiteout {
                j.whiteouts.push(from.clone());
            }
            j.applied.push(from.clone());
        }
        if c.layer.whiteout {
            j.whiteouts.push(c.path.clone());
        }
        j.applied.push(c.path.clone());
        if same_now {
            continue;
        }
        let old = if c.kind == Kind::Renamed {
            None
        } else {
            c.old.clone()
        };
        // Take away what was there when its kind changes or it is deleted.
        let removing = matches!(c.kind, Kind::Deleted | Kind::TypeChanged);
        if removing {
            match &old {
                Some(Entry::Dir { .. }) => rmdirs.push(Op::Rmdir {
                    path: c.path.clone(),
                }),
                Some(e) => removes.push(Op::Remove {
                    path: c.path.clone(),
                    expect: e.clone(),
                    stamp,
                }),
                None => {}
            }
        }
        let expect_before_place = if removing { None } else { old.clone() };
        match &c.new {
            None | Some(Entry::Special { .. }) => {}
            Some(Entry::Dir { mode }) => {
                if !matches!(old, Some(Entry::Dir { .. })) {
                    let op = Op::Mkdir {
                        path: c.path.clone(),
                    };
                    if is_late(&c.path) {
                        late_mkdirs.push(op);
                    } else {
                        mkdirs.push(op);
                    }
                }
                dirmodes.push(Op::DirMode {
                    path: c.path.clone(),
                    mode: *mode,
                });
            }
            Some(new @ Entry::File { mode, .. })
                if c.kind == Kind::Modified
                    && old.as_ref().is_some_and(|o| o.same_content(new)) =>
            {
                if let Some(o) = &old {
                    chmods.push(Op::Chmod {
                        path: c.path.clone(),
                        mode: *mode,
                        expect: o.clone(),
                        stamp,
                    });
                }
            }
            Some(new) => {
                let staged = stage(&c.path, new, c.layer.in_opaque, &mut j)?;
                let op = Op::Place {
                    path: c.path.clone(),
                    staged,
                    new: new.clone(),
                    expect: expect_before_place,
                    stamp: if removing { None } else { stamp },
                    aside: ws.join(aside_name(&c.path, tx.name()).as_path()),
                };
                if is_late(&c.path) {
                    late_places.push(op);
                } else {
                    places.push(op);
                }
            }
        }
    }
    // Deepest first for removals of directories and final modes; shallowest first for mkdir.
    rmdirs.sort_by_key(|o| std::cmp::Reverse(o.path().depth()));
    mkdirs.sort_by_key(|o| o.path().depth());
    late_mkdirs.sort_by_key(|o| o.path().depth());
    dirmodes.sort_by_key(|o| std::cmp::Reverse(o.path().depth()));
    j.ops.extend(mkdirs);
    j.ops.extend(places);
    j.ops.extend(chmods);
    j.ops.extend(removes);
    j.ops.extend(rmdirs);
    j.ops.extend(late_mkdirs);
    j.ops.extend(late_places);
    j.ops.extend(dirmodes);

    timing("stage", t_stage);
    let t0 = std::time::Instant::now();
    // Staged data must be on disk before the journal that points at it; one syncfs per
    // filesystem instead of an fsync per file keeps 10,000 files fast.
    syncfs(&staging)?;
    if staging.starts_with(tx.dir()) {
        sync_dir(&staging)?;
    }
    let journal = tx.dir().join(JOURNAL);
    write_atomic(&journal, &to_json(&j, &journal)?)?;
    timing("commit", t0);
    fault::step();
    Ok(j)
}

fn syncfs(path: &Path) -> Result<()> {
    let dir = File::open(path).at("open for syncfs", path)?;
    nix::unistd::syncfs(&dir)
        .map_err(io::Error::from)
        .at("syncfs", path)
}

fn copy_file(src: &Path, dest: &Path, mode: u32) -> Result<()> {
    let mut from = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(src)
        .at("open", src)?;
    let mut to = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .at("create staged copy", dest)?;
    io::copy(&mut from, &mut to).at("copy", dest)?;
    to.set_permissions(fs::Permissions::from_mode(mode))
        .at("chmod", dest)
}

fn aside_name(path: &RelPath, name: &str) -> RelPath {
    let mut p = path.as_path().as_os_str().to_owned();
    p.push(format!(".cordon-tx-{name}"));
    // Appending a suffix to a valid relative path keeps it valid.
    RelPath::new(PathBuf::from(p)).unwrap_or_else(|_| path.clone())
}

fn describe_conflict(base: Option<&Entry>, current: Option<&Entry>) -> String {
    match (base, current) {
        (None, Some(c)) => format!("a {} was created there in the workspace", c.kind_word()),
        (Some(_), None) => "it was deleted in the workspace".into(),
        (Some(b), Some(c)) if b.kind_word() != c.kind_word() => {
            format!("it became a {} in the workspace", c.kind_word())
        }
        _ => "it was changed in the workspace since the transaction first saw it".into(),
    }
}

/// What `target` holds now (`None`: absent) and the stamp read with it: `expect` itself,
/// unread, while the recorded `stamp` still matches; else read again (the stamp taken before
/// the read, so a later edit is never mistaken for what was read).
fn look(
    target: &Path,
    expect: Option<&Entry>,
    stamp: Option<Stamp>,
) -> Result<(Option<Entry>, Option<Stamp>)> {
    if let Some(s) = stamp {
        if Stamp::read(target) == Some(s) {
            return Ok((expect.cloned(), Some(s)));
        }
    }
    Ok(match probe_known(target, None)? {
        Some((e, s)) => (Some(e), Some(s)),
        None => (None, None),
    })
}

/// After `moved` took the place of what was verified as `seen`: whether it is still that
/// inode with that data (rename changes the change time, not the modification time).
fn unchanged(moved: &Path, seen: Option<Stamp>) -> bool {
    match (seen, Stamp::read(moved)) {
        (Some(a), Some(b)) => a.same_data(&b),
        _ => false,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Parents {
    Real,
    Missing,
    NotDirectory,
}

/// Whether every ancestor of `path` inside the workspace is a real directory, not a symlink,
/// so an operation cannot be steered outside the workspace or into a protected directory.
fn parents(ws: &Path, path: &RelPath, known: &mut HashSet<PathBuf>) -> Parents {
    let mut dir = PathBuf::new();
    let comps: Vec<_> = path.as_path().components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        dir.push(c);
        if known.contains(&dir) {
            continue;
        }
        match fs::symlink_metadata(ws.join(&dir)) {
            Ok(m) if m.file_type().is_dir() => {
                known.insert(dir.clone());
            }
            Ok(_) => return Parents::NotDirectory,
            Err(_) => return Parents::Missing,
        }
    }
    Parents::Real
}

enum Outcome {
    Done,
    Skipped(String),
    Conflict(Option<PathBuf>),
}

/// What phase 2 needs besides the operation: the workspace, the staging directory (empty:
/// unknown, so removed files are unlinked), the transaction's name (for aside names) and the
/// parents already checked.
struct Exec<'a> {
    ws: &'a Path,
    staging: &'a Path,
    name: &'a str,
    known: HashSet<PathBuf>,
}

/// Puts the staged version at `target`, which was just verified to hold what the journal
/// expects (`seen`: its stamp; `None`: absent). Nothing is freed: an existing target is
/// swapped into the staging directory. Returns false when the target changed in between (it is
/// left as it is then).
fn place(staged: &Path, target: &Path, seen: Option<Stamp>, exists: bool) -> Result<bool> {
    if !exists {
        return match trash::rename_new(staged, target) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e).at("rename into place", target),
        };
    }
    match trash::exchange(staged, target) {
        Ok(true) => {
            if unchanged(staged, seen) {
                return Ok(true);
            }
            // Written (or replaced) between the check and the swap: swap back, so the
            // workspace keeps that version and the staged name the transaction's.
            trash::exchange(staged, target).at("swap back", target)?;
            Ok(false)
        }
        Ok(false) => {
            fs::rename(staged, target).at("rename into place", target)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).at("swap into place", target),
    }
}

impl Exec<'_> {
    fn run(&mut self, index: usize, op: &Op) -> Result<Outcome> {
        let path = op.path();
        let target = self.ws.join(path.as_path());
        match parents(self.ws, path, &mut self.known) {
            Parents::Real => {}
            // Nothing of the workspace's own is left to take away below a parent that is gone
            // or is no longer a real directory (a symlink's target is never touched).
            _ if matches!(op, Op::Remove { .. } | Op::Rmdir { .. }) => return Ok(Outcome::Done),
            Parents::Missing => {
                return Ok(Outcome::Skipped("its parent directory is missing".into()))
            }
            Parents::NotDirectory => {
                return Ok(Outcome::Skipped(
                    "a parent is a symlink or not a directory in the workspace".into(),
                ))
            }
        }
        match op {
            Op::Remove { expect, stamp, .. } => {
                return self.remove(index, path, &target, expect, *stamp)
            }
            Op::Rmdir { .. } => match fs::remove_dir(&target) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => {
                    return Ok(Outcome::Conflict(None))
                }
                Err(e) => return Err(e).at("remove directory", &target),
            },
            Op::Mkdir { .. } => match fs::DirBuilder::new().mode(0o700).create(&target) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !fs::symlink_metadata(&target)
                        .map(|m| m.file_type().is_dir())
                        .unwrap_or(false)
                    {
                        return Ok(Outcome::Conflict(None));
                    }
                }
                Err(e) => return Err(e).at("create directory", &target),
            },
            Op::Place {
                staged,
                new,
                expect,
                stamp,
                aside,
                ..
            } => {
                if fs::symlink_metadata(staged).is_err() {
                    // Renamed into place before an interruption (or put aside).
                    return Ok(Outcome::Done);
                }
                let (mut now, seen) = look(&target, expect.as_ref(), *stamp)?;
                if now == *expect {
                    if place(staged, &target, seen, expect.is_some())? {
                        return Ok(Outcome::Done);
                    }
                    now = probe(&target)?;
                }
                if now.as_ref() == Some(new) {
                    // Already in place (by an interrupted run, whose swap left the old version
                    // at the staged name, or by the user): what is staged is trash.
                    return Ok(Outcome::Done);
                }
                // Changed while we were applying: keep both, if the staged name still holds
                // the transaction's version. A copy, not the staged file itself, which may be
                // the upper layer's own (the change stays in the transaction).
                if fs::symlink_metadata(aside).is_err() && probe(staged)?.as_ref() == Some(new) {
                    match new {
                        Entry::File { mode, .. } => copy_file(staged, aside, *mode)?,
                        Entry::Symlink { target } => {
                            symlink(target, aside).at("keep aside", aside)?
                        }
                        _ => fs::rename(staged, aside).at("keep aside", aside)?,
                    }
                    return Ok(Outcome::Conflict(Some(aside.clone())));
                }
                return Ok(Outcome::Conflict(None));
            }
            Op::Chmod {
                mode,
                expect,
                stamp,
                ..
            } => {
                let ok = match (probe(&target)?, expect) {
                    _ if stamp.is_some() && Stamp::read(&target) == *stamp => true,
                    (Some(now), e) => now.same_content(e),
                    (None, _) => false,
                };
                if !ok {
                    return Ok(Outcome::Conflict(None));
                }
                fs::set_permissions(&target, fs::Permissions::from_mode(*mode))
                    .at("chmod", &target)?;
            }
            Op::DirMode { mode, .. } => {
                if fs::symlink_metadata(&target)
                    .map(|m| m.file_type().is_dir())
                    .unwrap_or(false)
                {
                    fs::set_permissions(&target, fs::Permissions::from_mode(*mode))
                        .at("chmod", &target)?;
                }
            }
        }
        Ok(Outcome::Done)
    }

    /// Takes a file or symlink away from the workspace by renaming it into the staging
    /// directory (freed only after the commit); unlinked where that cannot be done.
    fn remove(
        &self,
        index: usize,
        path: &RelPath,
        target: &Path,
        expect: &Entry,
        stamp: Option<Stamp>,
    ) -> Result<Outcome> {
        let (now, seen) = look(target, Some(expect), stamp)?;
        match now {
            None => return Ok(Outcome::Done),
            Some(e) if e != *expect => return Ok(Outcome::Conflict(None)),
            Some(_) => {}
        }
        if self.staging.as_os_str().is_empty() {
            fs::remove_file(target).at("remove", target)?;
            return Ok(Outcome::Done);
        }
        let dest = self.staging.join(format!("r{index}"));
        match trash::rename_new(target, &dest) {
            Ok(()) => {}
            // On another mount than the staging directory, or a leftover of an earlier run
            // holds the name: the old way.
            Err(e)
                if e.kind() == io::ErrorKind::CrossesDevices
                    || e.kind() == io::ErrorKind::AlreadyExists =>
            {
                fs::remove_file(target).at("remove", target)?;
                return Ok(Outcome::Done);
            }
            Err(e) => return Err(e).at("move to staging", target),
        }
        if unchanged(&dest, seen) {
            return Ok(Outcome::Done);
        }
        // Written between the check and the rename: it goes back, never to the trash.
        match trash::rename_new(&dest, target) {
            Ok(()) => Ok(Outcome::Conflict(None)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let aside = self.ws.join(aside_name(path, self.name).as_path());
                trash::rename_new(&dest, &aside).at("keep aside", &aside)?;
                Ok(Outcome::Skipped(format!(
                    "it changed while it was removed; the workspace's version is kept as {}",
                    aside.display()
                )))
            }
            Err(e) => Err(e).at("put back", target),
        }
    }
}

/// Phase 2 and the tidy-up; also what recovery runs for a committed journal.
fn run(tx: &Transaction, j: Journal) -> Result<ApplyReport> {
    let ws = tx.workspace().to_path_buf();
    let mut report = ApplyReport {
        name: j.name.clone(),
        conflicts: j.conflicts.clone(),
        refused: j.refused.clone(),
        ..ApplyReport::default()
    };
    let mut not_applied: HashSet<RelPath> = HashSet::new();
    let mut exec = Exec {
        ws: &ws,
        staging: &j.staging,
        name: &j.name,
        known: HashSet::new(),
    };
    let t_ops = std::time::Instant::now();
    for (index, op) in j.ops.iter().enumerate() {
        let outcome = match exec.run(index, op) {
            Ok(o) => o,
            Err(e) => Outcome::Skipped(e.to_string()),
        };
        match outcome {
            Outcome::Done => {}
            Outcome::Skipped(reason) => {
                not_applied.insert(op.path().clone());
                report.failed.push(Refusal {
                    path: op.path().clone(),
                    reason,
                });
            }
            Outcome::Conflict(kept) => {
                not_applied.insert(op.path().clone());
                report.conflicts.push(Conflict {
                    path: op.path().clone(),
                    kept_as: kept
                        .and_then(|k| k.strip_prefix(&ws).ok().and_then(|r| RelPath::new(r).ok())),
                    reason: "it changed in the workspace while the apply ran".into(),
                });
            }
        }
        fault::step();
    }
    timing("operations", t_ops);
    let upper = tx.upper();
    let wipe = j.wipe && not_applied.is_empty();
    if !wipe {
        // The layer's name of an applied file holds the replaced old version now (or, in a
        // journal of an older cordon, a hard link to the workspace's file): out of the layer
        // before the syncfs, so the layer never shows it again after the journal is gone.
        for (index, p) in j.unlink_upper.iter().enumerate() {
            if !not_applied.contains(p) {
                take_from_upper(&upper.join(p.as_path()), &j.staging, index)?;
                fault::step();
            }
        }
    }
    let t0 = std::time::Instant::now();
    syncfs(&ws)?;
    timing("syncfs", t0);
    let t0 = std::time::Instant::now();

    // Tidy the layers: the workspace now holds what they held for the applied paths.
    if wipe {
        reset_layers(tx)?;
        tx.write_bases(&Default::default())?;
    } else {
        for p in &j.whiteouts {
            if fs::symlink_metadata(ws.join(p.as_path())).is_err() {
                remove_if_present(&upper.join(p.as_path()))?;
            }
        }
        let mut bases = tx.bases()?;
        for p in &j.applied {
            if !not_applied.contains(p) {
                bases.remove(p);
            }
        }
        tx.write_bases(&bases)?;
    }
    for p in &j.applied {
        if !not_applied.contains(p) {
            report.applied.push(p.clone());
        }
    }
    report.applied.sort();
    report.applied.dedup();
    timing("tidy", t0);
    fault::step();
    let t0 = std::time::Instant::now();
    finish(tx)?;
    timing("finish", t0);
    report.emptied = wipe;
    Ok(report)
}

/// Takes an applied file's name out of the upper layer by renaming it into the staging
/// directory (freed with it after the apply); unlinked where that cannot be done.
fn take_from_upper(path: &Path, staging: &Path, index: usize) -> Result<()> {
    if !staging.as_os_str().is_empty() {
        // Failing (gone already, another filesystem, a leftover of an interrupted run holding
        // the name, the staging directory already made trash): unlinked, if it is there.
        if trash::rename_new(path, &staging.join(format!("u{index}"))).is_ok() {
            return Ok(());
        }
    }
    remove_if_present(path)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at("remove from upper layer", path),
    }
}

/// Empties upper and work: each is renamed to a trash folder (removed with the others after
/// the apply) and made again, so a crash leaves either the old layers or new empty ones, never
/// half of them, and nothing is freed on the critical path.
fn reset_layers(tx: &Transaction) -> Result<()> {
    for layer in ["upper", "work"] {
        let dir = tx.dir().join(layer);
        let old = tx.dir().join(format!("{layer}.old"));
        if old.exists() {
            // Left by an apply made before layers went to the trash.
            make_removable(&old);
            fs::remove_dir_all(&old).at("remove", &old)?;
        }
        if dir.exists() {
            // The agent may have left directories the remover could not enter.
            make_removable(&dir);
            trash::take(&dir, tx.dir())?;
        }
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .at("create directory", &dir)?;
    }
    sync_dir(tx.dir())
}

/// Ends the apply: the staging directory, now holding the replaced and removed old versions,
/// becomes a trash folder (before the journal goes, so a crash in between finishes the journal
/// again instead of mistaking the leftovers for an uncommitted apply); then the journal is
/// removed, which is the end of the apply, and the trash is removed in the background.
fn finish(tx: &Transaction) -> Result<()> {
    trash::take(&staging_in_tx(tx), tx.dir())?;
    fault::step();
    remove_staging(tx)?;
    remove_if_present(&tx.dir().join(JOURNAL))?;
    sync_dir(tx.dir())?;
    fault::step();
    trash::remove_in_background(tx.dir())?;
    Ok(())
}

fn remove_staging(tx: &Transaction) -> Result<()> {
    for dir in [staging_in_tx(tx), staging_in_workspace(tx)] {
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).at("remove staging", &dir),
        }
    }
    let log = tx.dir().join(OUTSIDE_LOG);
    if let Ok(text) = fs::read(&log) {
        use std::os::unix::ffi::OsStrExt;
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            remove_if_present(Path::new(std::ffi::OsStr::from_bytes(line)))?;
        }
        remove_if_present(&log)?;
    }
    Ok(())
}

/// Run by `Store::open`: finishes a committed journal, or rolls back an uncommitted apply.
pub(crate) fn recover(tx: &Transaction) -> Result<Option<Recovery>> {
    let journal = tx.dir().join(JOURNAL);
    if journal.exists() {
        let j: Journal = read_json(&journal)?;
        let report = run(tx, j)?;
        return Ok(Some(Recovery::Finished { report }));
    }
    let leftovers = staging_in_tx(tx).exists()
        || staging_in_workspace(tx).exists()
        || tx.dir().join(OUTSIDE_LOG).exists();
    if leftovers {
        trash::take(&staging_in_tx(tx), tx.dir())?;
        remove_staging(tx)?;
        sync_dir(tx.dir())?;
        trash::remove_in_background(tx.dir())?;
        return Ok(Some(Recovery::RolledBack));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cordon-tx-unit-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("mkdir");
        d
    }

    #[test]
    fn a_swap_that_took_an_unverified_file_is_undone() {
        let d = dir("swap-back");
        let (staged, target) = (d.join("staged"), d.join("target"));
        fs::write(&staged, "new\n").expect("write");
        fs::write(&target, "old\n").expect("write");
        let verified = Stamp::read(&target);
        // Written after the check: the swap must be undone and reported.
        fs::write(&target, "user's edit\n").expect("write");
        assert!(!place(&staged, &target, verified, true).expect("place"));
        assert_eq!(fs::read_to_string(&target).expect("read"), "user's edit\n");
        assert_eq!(fs::read_to_string(&staged).expect("read"), "new\n");
        // Unchanged since the check: swapped, the old version kept at the staged name.
        let verified = Stamp::read(&target);
        assert!(place(&staged, &target, verified, true).expect("place"));
        assert_eq!(fs::read_to_string(&target).expect("read"), "new\n");
        assert_eq!(fs::read_to_string(&staged).expect("read"), "user's edit\n");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_new_file_never_replaces_one_made_meanwhile() {
        let d = dir("noreplace");
        let (staged, target) = (d.join("staged"), d.join("target"));
        fs::write(&staged, "new\n").expect("write");
        fs::write(&target, "made meanwhile\n").expect("write");
        assert!(!place(&staged, &target, None, false).expect("place"));
        assert_eq!(
            fs::read_to_string(&target).expect("read"),
            "made meanwhile\n"
        );
        let _ = fs::remove_dir_all(&d);
    }
}
