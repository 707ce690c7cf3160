//! A transaction's changes as data: what each path was (its base), what the transaction holds,
//! and whether it may be applied. Serialized as JSON for the web console.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::entry::Entry;
use crate::protect::Protection;
use crate::scan::Observed;
use crate::wire::RelPath;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Absent at the base, present now (file, symlink or directory).
    Added,
    /// Same kind of thing; content, symlink target or mode differ.
    Modified,
    /// Present at the base, removed by the transaction.
    Deleted,
    /// A file removed at `from` and the same content added at `path`.
    Renamed,
    /// Replaced by another kind of thing (a file by a directory, a directory by a symlink, …).
    TypeChanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Will be applied.
    Ready,
    /// Touches a protected path: shown, never applied.
    Refused { reason: String },
    /// The real workspace changed since the transaction first saw the path: not overwritten.
    Conflict {
        /// What the workspace holds now (`None`: absent).
        current: Option<Entry>,
    },
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub path: RelPath,
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub from: Option<RelPath>,
    /// What the path held when the transaction first saw it (`from`'s, for a rename).
    pub old: Option<Entry>,
    /// What the transaction holds.
    pub new: Option<Entry>,
    #[serde(flatten)]
    pub status: Status,
    #[serde(skip)]
    pub(crate) layer: Layer,
}

/// Where the change sits in the upper layer; used by apply to tidy the layer afterwards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Layer {
    /// What the workspace holds now, and the stamp read just before it was hashed: a later
    /// stamp could belong to an edit made after the hash.
    pub current: Option<Entry>,
    pub current_stamp: Option<crate::entry::Stamp>,
    pub from_stamp: Option<crate::entry::Stamp>,
    pub in_opaque: bool,
    pub whiteout: bool,
    pub from_whiteout: bool,
}

impl Change {
    pub fn is_ready(&self) -> bool {
        self.status == Status::Ready
    }

    /// Bytes of new content this change writes.
    pub fn bytes(&self) -> u64 {
        match (&self.kind, &self.new) {
            (Kind::Renamed, _) => 0,
            (_, Some(Entry::File { size, .. })) => *size,
            _ => 0,
        }
    }
}

/// Counts for the line printed at the end of a command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub added: usize,
    pub modified: usize,
    pub deleted: usize,
    pub renamed: usize,
    pub type_changed: usize,
    pub refused: usize,
    pub conflicts: usize,
    /// Bytes of new file content.
    pub bytes: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} added, {} modified, {} deleted, {} renamed",
            self.added, self.modified, self.deleted, self.renamed
        )?;
        if self.type_changed > 0 {
            write!(f, ", {} replaced", self.type_changed)?;
        }
        write!(f, "; {}", human_bytes(self.bytes))?;
        if self.refused > 0 {
            write!(f, "; {} refused (protected)", self.refused)?;
        }
        if self.conflicts > 0 {
            write!(f, "; {} in conflict", self.conflicts)?;
        }
        Ok(())
    }
}

pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Every change of one transaction, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSet {
    pub name: String,
    #[serde(with = "crate::wire")]
    pub workspace: PathBuf,
    pub changes: Vec<Change>,
}

impl ChangeSet {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.kind {
                Kind::Added => s.added += 1,
                Kind::Modified => s.modified += 1,
                Kind::Deleted => s.deleted += 1,
                Kind::Renamed => s.renamed += 1,
                Kind::TypeChanged => s.type_changed += 1,
            }
            match c.status {
                Status::Ready => {}
                Status::Refused { .. } => s.refused += 1,
                Status::Conflict { .. } => s.conflicts += 1,
            }
            s.bytes += c.bytes();
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// `--apply auto`: nothing protected touched and no conflict.
    pub fn can_auto_apply(&self) -> bool {
        self.changes.iter().all(Change::is_ready)
    }

    pub fn refused(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| matches!(c.status, Status::Refused { .. }))
    }

    pub fn conflicts(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| matches!(c.status, Status::Conflict { .. }))
    }
}

/// What a path held when the transaction first saw it (`entry: None`: absent), and the inode
/// stamp read with it, which spares hashing it again while it has not been written since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Base {
    pub entry: Option<Entry>,
    pub stamp: Option<crate::entry::Stamp>,
}

pub(crate) type Bases = BTreeMap<RelPath, Base>;

/// Turns observations into changes: the base is the recorded one (else the workspace now),
/// unchanged copy-ups drop out, renames are paired, protection and conflicts decided.
pub(crate) fn classify(
    observed: Vec<Observed>,
    bases: &Bases,
    protection: &Protection,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for o in observed {
        let base = match bases.get(&o.path) {
            Some(b) => b.entry.clone(),
            None => o.lower.clone(),
        };
        if base == o.upper {
            continue;
        }
        let kind = match (&base, &o.upper) {
            (None, None) => continue,
            (None, Some(_)) => Kind::Added,
            (Some(_), None) => Kind::Deleted,
            (Some(a), Some(b)) if std::mem::discriminant(a) == std::mem::discriminant(b) => {
                Kind::Modified
            }
            _ => Kind::TypeChanged,
        };
        let removes = matches!(kind, Kind::Deleted | Kind::TypeChanged);
        let refused = protection.refuses(&o.path, removes).or_else(|| {
            // Removing a kept path (`rm -rf .git`) takes what lies below it along; none of
            // that is applied either.
            let root = o.removed_with.as_ref()?;
            let kept = protection.kept_ancestor(&o.path)?;
            kept.is_within(root)
                .then(|| format!("part of removing protected path {kept}"))
        });
        let refused = refused.or_else(|| {
            matches!(o.upper, Some(Entry::Special { .. }))
                .then(|| "fifos, sockets and device nodes are never applied".to_string())
        });
        let status = match refused {
            Some(reason) => Status::Refused { reason },
            None if o.lower != base && o.lower != o.upper => Status::Conflict {
                current: o.lower.clone(),
            },
            None => Status::Ready,
        };
        changes.push(Change {
            path: o.path,
            kind,
            from: None,
            old: base,
            new: o.upper,
            status,
            layer: crate::change::Layer {
                current: o.lower,
                current_stamp: o.lower_stamp,
                from_stamp: None,
                in_opaque: o.in_opaque,
                whiteout: o.whiteout,
                from_whiteout: false,
            },
        });
    }
    pair_renames(&mut changes);
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    changes
}

/// A deleted file and an added file with the same (non-empty) content are one rename, so
/// the reviewer reads `a -> b` instead of a deletion and an addition of the same bytes.
fn pair_renames(changes: &mut Vec<Change>) {
    let hash_of = |e: &Option<Entry>| match e {
        Some(Entry::File { sha256, size, .. }) if *size > 0 => Some(sha256.clone()),
        _ => None,
    };
    let mut deleted: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        if c.kind == Kind::Deleted {
            if let Some(h) = hash_of(&c.old) {
                deleted.entry(h).or_default().push(i);
            }
        }
    }
    if deleted.is_empty() {
        return;
    }
    let mut gone = vec![false; changes.len()];
    for i in 0..changes.len() {
        if changes[i].kind != Kind::Added {
            continue;
        }
        let Some(h) = hash_of(&changes[i].new) else {
            continue;
        };
        let Some(candidates) = deleted.get_mut(&h) else {
            continue;
        };
        // Prefer a source with the same file name (a move between directories).
        let name = changes[i].path.as_path().file_name().map(|n| n.to_owned());
        let pick = candidates
            .iter()
            .position(|&j| changes[j].path.as_path().file_name().map(|n| n.to_owned()) == name)
            .unwrap_or(0);
        let j = candidates.remove(pick);
        if candidates.is_empty() {
            deleted.remove(&h);
        }
        let src = changes[j].clone();
        let worse = |a: &Status, b: &Status| match (a, b) {
            (Status::Refused { .. }, _) => a.clone(),
            (_, Status::Refused { .. }) => b.clone(),
            (Status::Conflict { .. }, _) => a.clone(),
            (_, Status::Conflict { .. }) => b.clone(),
            _ => Status::Ready,
        };
        let dst = &mut changes[i];
        dst.kind = Kind::Renamed;
        dst.status = worse(&src.status, &dst.status);
        dst.old = src.old;
        dst.from = Some(src.path.clone());
        dst.layer.from_whiteout = src.layer.whiteout;
        dst.layer.from_stamp = src.layer.current_stamp;
        gone[j] = true;
    }
    let mut k = 0;
    changes.retain(|_| {
        k += 1;
        !gone[k - 1]
    });
}
