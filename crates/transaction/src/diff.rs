//! The diff of a transaction as data (JSON for the web console) and as text for a terminal:
//! unified diffs for text, one line for binary files, modes, symlinks, refusals and conflicts.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use similar::TextDiff;

use crate::change::{human_bytes, Change, ChangeSet, Kind, Status, Summary};
use crate::entry::Entry;
use crate::error::{Context, Result};
use crate::store::Transaction;

/// Files larger than this are summarised, not diffed line by line.
pub const MAX_TEXT_DIFF: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub name: String,
    #[serde(with = "crate::wire")]
    pub workspace: PathBuf,
    pub summary: Summary,
    pub files: Vec<FileDiff>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    #[serde(flatten)]
    pub change: Change,
    /// A unified diff, for text files whose content changed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unified: Option<String>,
    /// One line that says what changed when no line diff is shown (binary, too large, mode,
    /// symlink target, directory).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
}

impl Transaction {
    /// The diff of a change set produced by this transaction.
    pub fn diff(&self, set: &ChangeSet) -> Result<Diff> {
        let ws = self.workspace();
        let upper = self.upper();
        let files = set
            .changes
            .iter()
            .map(|c| file_diff(c, ws, &upper))
            .collect::<Result<Vec<_>>>()?;
        Ok(Diff {
            name: set.name.clone(),
            workspace: set.workspace.clone(),
            summary: set.summary(),
            files,
        })
    }
}

fn read_text(path: &Path, entry: Option<&Entry>) -> Result<Option<String>> {
    match entry {
        Some(Entry::File {
            binary: false,
            size,
            ..
        }) if *size <= MAX_TEXT_DIFF => {
            let bytes = fs::read(path).at("read for diff", path)?;
            Ok(String::from_utf8(bytes).ok())
        }
        None => Ok(Some(String::new())),
        _ => Ok(None),
    }
}

fn mode_str(m: u32) -> String {
    format!("{m:04o}")
}

fn file_diff(c: &Change, ws: &Path, upper: &Path) -> Result<FileDiff> {
    let old_path = ws.join(c.from.as_ref().unwrap_or(&c.path).as_path());
    let new_path = upper.join(c.path.as_path());
    // The workspace holds the base unless it changed meanwhile (a conflict): then what it holds
    // now is shown, since the base's content was never copied.
    let old_now = match &c.status {
        Status::Conflict { current } => current.clone(),
        _ => c.old.clone(),
    };
    let mut notes = Vec::new();
    let mut unified = None;
    let old_file = matches!(old_now, Some(Entry::File { .. }) | None);
    let new_file = matches!(c.new, Some(Entry::File { .. }) | None);
    let content_changed = match (&old_now, &c.new) {
        (Some(a), Some(b)) => !a.same_content(b),
        _ => true,
    };
    if old_file && new_file && content_changed && !matches!((&old_now, &c.new), (None, None)) {
        let old_text = read_text(&old_path, old_now.as_ref())?;
        let new_text = read_text(&new_path, c.new.as_ref())?;
        match (old_text, new_text) {
            (Some(a), Some(b)) => {
                let a_name = if old_now.is_some() {
                    format!("a/{}", c.from.as_ref().unwrap_or(&c.path))
                } else {
                    "/dev/null".into()
                };
                let b_name = if c.new.is_some() {
                    format!("b/{}", c.path)
                } else {
                    "/dev/null".into()
                };
                if a.is_empty() && b.is_empty() {
                    notes.push("empty file".to_string());
                } else {
                    let text = TextDiff::from_lines(&a, &b)
                        .unified_diff()
                        .context_radius(3)
                        .header(&a_name, &b_name)
                        .to_string();
                    unified = Some(text);
                }
            }
            _ => notes.push(binary_line(old_now.as_ref(), c.new.as_ref())),
        }
    }
    if let (Some(a), Some(b)) = (
        old_now.as_ref().and_then(Entry::mode),
        c.new.as_ref().and_then(Entry::mode),
    ) {
        // A file replaced by a directory has another mode as a matter of course.
        if a != b && c.kind != Kind::TypeChanged {
            notes.push(format!("mode {} -> {}", mode_str(a), mode_str(b)));
        }
    }
    match (&old_now, &c.new) {
        (Some(Entry::Symlink { target: a }), Some(Entry::Symlink { target: b })) => notes.push(
            format!("symlink -> {}  =>  -> {}", a.display(), b.display()),
        ),
        (_, Some(Entry::Symlink { target })) => {
            notes.push(format!("symlink -> {}", target.display()))
        }
        (Some(Entry::Symlink { target }), _) => {
            notes.push(format!("was symlink -> {}", target.display()))
        }
        _ => {}
    }
    if c.kind == Kind::TypeChanged {
        let was = old_now.as_ref().map_or("nothing", Entry::kind_word);
        let now = c.new.as_ref().map_or("nothing", Entry::kind_word);
        notes.push(format!("{was} replaced by {now}"));
    }
    if let Some(Entry::Special { what }) = &c.new {
        notes.push(format!("{what} (never applied)"));
    }
    if matches!(c.new, Some(Entry::Dir { .. })) && c.kind == Kind::Added {
        notes.push("new directory".into());
    }
    if matches!(c.old, Some(Entry::Dir { .. })) && c.kind == Kind::Deleted {
        notes.push("directory removed".into());
    }
    Ok(FileDiff {
        change: c.clone(),
        unified,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    })
}

fn binary_line(old: Option<&Entry>, new: Option<&Entry>) -> String {
    let side = |e: Option<&Entry>| match e {
        Some(Entry::File { size, sha256, .. }) => {
            format!(
                "{} (sha256 {})",
                human_bytes(*size),
                sha256.get(..12).unwrap_or(sha256)
            )
        }
        _ => "nothing".into(),
    };
    let too_large = [old, new]
        .iter()
        .any(|e| matches!(e, Some(Entry::File { size, .. }) if *size > MAX_TEXT_DIFF));
    let what = if too_large {
        "large file"
    } else {
        "binary file"
    };
    format!("{what}: {} -> {}", side(old), side(new))
}

fn kind_word(c: &Change) -> &'static str {
    match c.kind {
        Kind::Added => "added",
        Kind::Modified => "modified",
        Kind::Deleted => "deleted",
        Kind::Renamed => "renamed",
        Kind::TypeChanged => "replaced",
    }
}

impl Diff {
    /// The text `cordon tx diff` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "transaction {}: {}", self.name, self.summary);
        for f in &self.files {
            let c = &f.change;
            let path = match &c.from {
                Some(from) => format!("{from} -> {}", c.path),
                None => c.path.to_string(),
            };
            let status = match &c.status {
                Status::Ready => String::new(),
                Status::Refused { reason } => format!("  [REFUSED: {reason}; never applied]"),
                Status::Conflict { .. } => {
                    "  [CONFLICT: changed in the workspace since; shown against the workspace now]"
                        .to_string()
                }
            };
            let _ = writeln!(out, "{:<9} {path}{status}", kind_word(c));
            if let Some(note) = &f.note {
                let _ = writeln!(out, "          {note}");
            }
            if let Some(u) = &f.unified {
                out.push_str(u);
                if !u.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        out
    }
}
