//! The Everyone-writable audit: a bounded walk for folders the sandbox could write through
//! the Everyone SID, and the state that keeps its findings (and the managed paths) between
//! runs so neither the walk nor a revoke scan happens per command.

use std::collections::VecDeque;
use std::fs;
use std::os::windows::fs::MetadataExt;
use std::time::{Duration, Instant, SystemTime};

use crate::plan::acl::admits_everyone_write;
use crate::plan::AuditBounds;
use crate::winpath::WinPath;

const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;

/// What one walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Findings {
    pub dirs: Vec<WinPath>,
    /// Folders whose DACL was read.
    pub visited: u32,
    /// The walk stopped at a bound (count or time) before it was done.
    pub truncated: bool,
}

/// Walks `bounds.roots` breadth-first, at most `max_depth` below each, `max_dirs` folders
/// and `max_millis` in all. Links are not followed (a junction could lead anywhere, or in a
/// loop); a folder found writable is not entered, since its deny ACE will cover what is below.
pub fn everyone_writable(bounds: &AuditBounds) -> Findings {
    let started = Instant::now();
    let budget = Duration::from_millis(bounds.max_millis);
    let mut out = Findings {
        dirs: Vec::new(),
        visited: 0,
        truncated: false,
    };
    let mut queue: VecDeque<(WinPath, u32)> = bounds.roots.iter().map(|r| (r.clone(), 0)).collect();
    while let Some((dir, depth)) = queue.pop_front() {
        if out.visited >= bounds.max_dirs || started.elapsed() > budget {
            out.truncated = true;
            break;
        }
        out.visited += 1;
        let Ok(dacl) = super::acl::read_dacl_or_null(&dir) else {
            continue;
        };
        if admits_everyone_write(dacl.as_deref()) {
            out.dirs.push(dir);
            continue;
        }
        if depth >= bounds.max_depth {
            continue;
        }
        let Ok(entries) = fs::read_dir(dir.to_api()) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_dir() || meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
                continue;
            }
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            queue.push_back((dir.child(&name), depth + 1));
        }
    }
    out
}

/// A list of paths kept in a text file, one per line (findings, managed paths).
pub fn load_paths(file: &WinPath) -> Vec<WinPath> {
    fs::read_to_string(file.to_api())
        .map(|t| t.lines().filter_map(|l| WinPath::parse(l).ok()).collect())
        .unwrap_or_default()
}

/// Writes the list atomically (a temporary file renamed over the old one).
pub fn save_paths(file: &WinPath, paths: &[WinPath]) -> std::io::Result<()> {
    if let Some(parent) = file.parent() {
        fs::create_dir_all(parent.to_api())?;
    }
    let text: String = paths.iter().map(|p| format!("{p}\n")).collect();
    // Per process: two runs saving at once must not rename each other's file away.
    let tmp = format!("{}.{}.tmp", file.to_api(), std::process::id());
    fs::write(&tmp, text)?;
    fs::rename(&tmp, file.to_api())
}

/// The audit's findings from `file`, walking again only when they are older than
/// `bounds.max_age_secs` (or absent): the walk is a set-up cost, never a per-command one.
pub fn cached_findings(file: &WinPath, bounds: &AuditBounds) -> Vec<WinPath> {
    let fresh = fs::metadata(file.to_api())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age.as_secs() < bounds.max_age_secs);
    if fresh {
        return load_paths(file);
    }
    let found = everyone_writable(bounds);
    // A failed save only means walking again next time.
    let _ = save_paths(file, &found.dirs);
    found.dirs
}
