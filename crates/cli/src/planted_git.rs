//! After a run: Git configuration the command left where the user's own git will read it,
//! refused when it names a program to run.
//!
//! A `git status` in the workspace descends into every nested repository its index records
//! (a gitlink), reading that repository's configuration: a `core.fsmonitor` there is a
//! program run as the user, outside any sandbox. The workspace's own `.git/config` and hooks
//! are read-only inside, and so are those of the submodules that exist when the run starts
//! (`prepare::git_side_paths`), but a nested repository the command makes and records is its
//! own. So, when the run ends, each gitlink the index gained, and each recorded repository
//! whose configuration or hooks changed during the run, is read; a configuration naming a
//! program is moved aside (`config.cordon-refused`), and so are hooks, with a line on stderr
//! and an audit event. Nothing else is touched.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cordon_policy::git::{gitlinks, program_keys};

/// The workspace's gitlinks when the run started.
#[derive(Debug)]
pub struct Before {
    gitlinks: Vec<String>,
    at: SystemTime,
}

/// A file or folder the command left that cordon moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub path: PathBuf,
    /// The keys that name programs (`core.fsmonitor`, …), or `hooks` for a hooks folder.
    pub keys: Vec<String>,
    pub moved_to: PathBuf,
}

/// Where the workspace's repository keeps its index and configuration.
struct Repo {
    index: PathBuf,
    /// 20 for SHA-1, 32 for SHA-256 repositories.
    hash_len: usize,
}

fn repo(workspace: &Path) -> Option<Repo> {
    let git_dir = git_dir_of(workspace)?;
    let common = match fs::read_to_string(git_dir.join("commondir")) {
        Ok(rel) => git_dir.join(rel.trim()),
        Err(_) => git_dir.clone(),
    };
    let config = fs::read_to_string(common.join("config")).unwrap_or_default();
    let sha256 = config.lines().any(|l| {
        let l = l.trim().to_ascii_lowercase().replace(' ', "");
        l == "objectformat=sha256"
    });
    Some(Repo {
        index: git_dir.join("index"),
        hash_len: if sha256 { 32 } else { 20 },
    })
}

/// `dir/.git` as git finds it: the folder itself, or the folder a `gitdir:` file names.
fn git_dir_of(dir: &Path) -> Option<PathBuf> {
    let dot_git = dir.join(".git");
    let meta = fs::symlink_metadata(&dot_git).ok()?;
    if meta.is_dir() {
        return Some(dot_git);
    }
    if !meta.is_file() {
        return None;
    }
    let text = fs::read_to_string(&dot_git).ok()?;
    let target = text.lines().next()?.strip_prefix("gitdir:")?.trim();
    Some(dir.join(target))
}

/// Reads the gitlinks before the command runs; `None` when the workspace has no index.
pub fn before(workspace: &Path) -> Option<Before> {
    let repo = repo(workspace)?;
    let bytes = fs::read(&repo.index).ok()?;
    Some(Before {
        gitlinks: gitlinks(&bytes, repo.hash_len).unwrap_or_default(),
        at: SystemTime::now(),
    })
}

/// Moves aside what the command left in recorded repositories (see the module's text).
pub fn after(workspace: &Path, before: &Before) -> Vec<Refused> {
    let Some(repo) = repo(workspace) else {
        return Vec::new();
    };
    let Ok(bytes) = fs::read(&repo.index) else {
        return Vec::new();
    };
    let Ok(links) = gitlinks(&bytes, repo.hash_len) else {
        return Vec::new();
    };
    let Ok(root) = fs::canonicalize(workspace) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for link in links {
        let new = !before.gitlinks.contains(&link);
        let Some(git_dir) = git_dir_of(&workspace.join(&link)) else {
            continue;
        };
        // Only what the sandbox could have written: inside the workspace (a nested `.git`,
        // or the repository's own `.git/modules`).
        let Ok(git_dir) = fs::canonicalize(&git_dir) else {
            continue;
        };
        if !git_dir.starts_with(&root) {
            continue;
        }
        for name in ["config", "config.worktree"] {
            let file = git_dir.join(name);
            if !(new || changed_since(&file, before.at)) {
                continue;
            }
            let Ok(text) = fs::read_to_string(&file) else {
                continue;
            };
            let keys = program_keys(&text);
            if !keys.is_empty() {
                out.extend(move_aside(&file, keys));
            }
        }
        let hooks = git_dir.join("hooks");
        if (new || changed_since(&hooks, before.at)) && has_hooks(&hooks) {
            out.extend(move_aside(&hooks, vec!["hooks".into()]));
        }
    }
    out
}

/// Whether `path`'s inode changed (was created, written, renamed into place) at or after
/// `at`. The change time cannot be set back from inside, unlike the modification time.
fn changed_since(path: &Path, at: SystemTime) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    let changed = {
        use std::os::unix::fs::MetadataExt;
        let secs = u64::try_from(meta.ctime()).unwrap_or(0);
        let nanos = u32::try_from(meta.ctime_nsec()).unwrap_or(0);
        SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, nanos)
    };
    #[cfg(not(unix))]
    let changed = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    // Filesystem timestamps are coarser than the clock: a change in the same tick counts.
    changed + std::time::Duration::from_millis(10) >= at
}

/// Whether a hooks folder holds a hook (git's own `*.sample` files run nothing).
fn has_hooks(dir: &Path) -> bool {
    let Ok(rd) = fs::read_dir(dir) else {
        return false;
    };
    rd.filter_map(Result::ok)
        .any(|e| !e.file_name().to_string_lossy().ends_with(".sample"))
}

/// Renames `path` to `NAME.cordon-refused` (or `.cordon-refused-N` when that exists).
fn move_aside(path: &Path, keys: Vec<String>) -> Option<Refused> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let mut to = path.with_file_name(format!("{name}.cordon-refused"));
    let mut n = 1;
    while fs::symlink_metadata(&to).is_ok() {
        n += 1;
        to = path.with_file_name(format!("{name}.cordon-refused-{n}"));
    }
    match fs::rename(path, &to) {
        Ok(()) => Some(Refused {
            path: path.to_path_buf(),
            keys,
            moved_to: to,
        }),
        Err(e) => {
            eprintln!(
                "cordon: warning: {} names programs your git would run ({}), and moving it aside failed: {e}; remove it before using git there",
                path.display(),
                keys.join(", ")
            );
            None
        }
    }
}

/// Says each refusal on stderr and returns its audit event.
pub fn report(r: Refused) -> cordon_audit::Event {
    eprintln!(
        "cordon: refused: the command left {} naming programs your own git would run ({}); moved to {}. Review it before using git in that repository.",
        r.path.display(),
        r.keys.join(", "),
        r.moved_to.display()
    );
    cordon_audit::Event::GitConfigRefused {
        path: r.path,
        keys: r.keys,
        moved_to: r.moved_to,
    }
}
