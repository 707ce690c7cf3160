//! What the planner asks of the file system, and the path decisions made from the answers:
//! policy paths read as Windows paths, Git's real directories, placeholders for absent
//! protected paths.

use cordon_policy::PathSpec;

use super::acl::Ace;
use super::PlanError;
use crate::winpath::WinPath;

/// What is at a path, links not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Missing,
    File,
    Dir,
    /// A junction or symbolic link (any reparse point that redirects a name).
    Link,
}

/// The planner's only view of the machine. The executor answers from the file system
/// (`GetFinalPathNameByHandleW`, attributes, `GetNamedSecurityInfoW`); tests answer from a
/// table. Every question is about one named path: nothing here walks a tree.
pub trait Host {
    /// Where `path` really is, every junction and symbolic link on the way resolved;
    /// `None` when it does not exist.
    fn final_path(&self, path: &WinPath) -> Option<WinPath>;
    /// What is at `path` itself.
    fn kind(&self, path: &WinPath) -> Kind;
    /// Whether `path` is a directory with nothing in it.
    fn is_empty_dir(&self, path: &WinPath) -> bool;
    /// The start of a small text file (`.git` files, `commondir`).
    fn read_text(&self, path: &WinPath) -> Option<String>;
    /// The ACEs of `path`'s DACL, in order; empty when absent or unreadable.
    fn dacl(&self, path: &WinPath) -> Vec<Ace>;
}

/// A policy path as the Windows path(s) it names. Policy paths are parsed on any host, so a
/// Windows path such as `C:\x` arrives as `PathSpec::Workspace`; joining decides, as
/// `PathBuf::join` does on Windows, that an absolute right-hand side wins.
pub fn resolve_spec(
    spec: &PathSpec,
    workspace: &WinPath,
    homes: &[WinPath],
) -> Result<Vec<WinPath>, PlanError> {
    let text = |p: &std::path::Path| -> Result<String, PlanError> {
        let s = p.to_str().ok_or_else(|| PlanError::PolicyPath {
            path: p.display().to_string(),
            why: "not valid Unicode".into(),
        })?;
        // Policy refuses `..` already, but only with the host's separators; `\..\` is
        // refused here for the same reason: a rule must mean what it says.
        if s.split(['\\', '/']).any(|n| n == "..") {
            return Err(PlanError::PolicyPath {
                path: s.to_string(),
                why: "contains `..`; write the path it means".into(),
            });
        }
        Ok(s.to_string())
    };
    let join = |base: &WinPath, rel: &str| {
        if rel.is_empty() {
            return Ok(base.clone());
        }
        base.join(rel).map_err(|e| PlanError::PolicyPath {
            path: rel.to_string(),
            why: e.to_string(),
        })
    };
    match spec {
        PathSpec::Absolute(p) => {
            let s = text(p)?;
            WinPath::parse(&s)
                .map(|w| vec![w])
                .map_err(|e| PlanError::PolicyPath {
                    path: s,
                    why: format!(
                        "{e}; on Windows an absolute path starts with a drive or \\\\server\\share"
                    ),
                })
        }
        PathSpec::Workspace(p) => Ok(vec![join(workspace, &text(p)?)?]),
        PathSpec::Home(p) => {
            let s = text(p)?;
            homes.iter().map(|h| join(h, &s)).collect()
        }
    }
}

/// Where a workspace keeps Git's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitLayout {
    /// `WS\.git`: a directory, or the `gitdir:` file of a linked worktree.
    pub dot_git: WinPath,
    /// The worktree's own Git directory (`main\.git\worktrees\NAME` for a linked one).
    pub git_dir: WinPath,
    /// The repository's shared directory (objects, refs, hooks, config).
    pub common_dir: WinPath,
}

impl GitLayout {
    pub fn is_linked(&self) -> bool {
        self.dot_git != self.git_dir
    }
}

/// Finds `.git` and, for a linked worktree, the directories its `gitdir:` file names.
pub fn git_layout(host: &dyn Host, workspace: &WinPath) -> Result<Option<GitLayout>, PlanError> {
    let dot_git = join_fixed(workspace, ".git");
    match host.kind(&dot_git) {
        Kind::Missing => Ok(None),
        Kind::Link => Err(PlanError::ProtectedLink(dot_git)),
        // An empty `.git` is a placeholder (an earlier run's), not a repository.
        Kind::Dir if host.is_empty_dir(&dot_git) => Ok(None),
        Kind::Dir => Ok(Some(GitLayout {
            git_dir: dot_git.clone(),
            common_dir: dot_git.clone(),
            dot_git,
        })),
        Kind::File => {
            let text = host.read_text(&dot_git).unwrap_or_default();
            let target = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("gitdir:"))
                .map(str::trim)
                .ok_or_else(|| PlanError::GitFile {
                    path: dot_git.clone(),
                    why: "a .git file must start with `gitdir: PATH`".into(),
                })?;
            let named = workspace.join(target).map_err(|e| PlanError::GitFile {
                path: dot_git.clone(),
                why: e.to_string(),
            })?;
            let git_dir = host.final_path(&named).ok_or_else(|| PlanError::GitFile {
                path: dot_git.clone(),
                why: format!("its gitdir {named} does not exist"),
            })?;
            let common_dir = match host.read_text(&join_fixed(&git_dir, "commondir")) {
                Some(rel) => {
                    let named = git_dir.join(rel.trim()).map_err(|e| PlanError::GitFile {
                        path: dot_git.clone(),
                        why: e.to_string(),
                    })?;
                    host.final_path(&named).ok_or_else(|| PlanError::GitFile {
                        path: dot_git.clone(),
                        why: format!("its commondir {named} does not exist"),
                    })?
                }
                None => git_dir.clone(),
            };
            Ok(Some(GitLayout {
                dot_git,
                git_dir,
                common_dir,
            }))
        }
    }
}

/// A protected path under `WS\.git\` means the same path in Git's real directories: the
/// shared one (hooks, config, info) and the worktree's own (commondir, config.worktree),
/// both protected since Git reads configuration from each.
pub fn map_into_git(p: &WinPath, workspace: &WinPath, git: Option<&GitLayout>) -> Vec<WinPath> {
    let Some(g) = git.filter(|g| g.is_linked()) else {
        return vec![p.clone()];
    };
    let dot_git = join_fixed(workspace, ".git");
    let Some(rest) = p.strip_prefix(&dot_git) else {
        return vec![p.clone()];
    };
    let mut out = Vec::new();
    for base in [&g.common_dir, &g.git_dir] {
        let mut t = base.clone();
        for name in rest {
            t = join_fixed(&t, name);
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if rest.len() == 1 && rest[0].eq_ignore_ascii_case("config") {
        // Per-worktree configuration can set hooksPath and fsmonitor too.
        let wt = join_fixed(&g.git_dir, "config.worktree");
        if !out.contains(&wt) {
            out.push(wt);
        }
    }
    out
}

/// An empty file or directory cordon creates so a protected path cannot be planted later.
/// It stays: the deny ACE on it is what stops the planting, and ACLs are applied once, not
/// per run (see docs/windows.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub path: WinPath,
    pub is_dir: bool,
    /// What a placeholder file holds: empty, except where an empty file would break Git.
    pub content: &'static [u8],
}

/// The highest path from `target` up to (not including) `base` that is absent or an empty
/// placeholder directory; `None` when `target` exists. A link on the way is refused: it
/// could send the deny ACE somewhere else, leaving the protected name plantable.
pub fn highest_missing(
    host: &dyn Host,
    target: &WinPath,
    base: &WinPath,
) -> Result<Option<WinPath>, PlanError> {
    // Links anywhere between base and target, existing ones checked top-down.
    let rest = target.strip_prefix(base).unwrap_or(&[]);
    let mut p = base.clone();
    let mut missing = None;
    for name in rest {
        p = join_fixed(&p, name);
        match host.kind(&p) {
            Kind::Link => return Err(PlanError::ProtectedLink(p)),
            Kind::Missing => {
                missing = Some(p);
                break;
            }
            Kind::File | Kind::Dir => {}
        }
    }
    Ok(missing)
}

/// The placeholder for the highest missing `path` on the way to `target`.
pub fn placeholder_for(path: &WinPath, target: &WinPath) -> Placeholder {
    let is_dir = path != target || !looks_like_file(target);
    let content: &[u8] = if !is_dir
        && path
            .file_name()
            .is_some_and(|n| n.eq_ignore_ascii_case("commondir"))
    {
        // Git dies on an empty `commondir`; "." names the repository's own directory.
        b".\n"
    } else {
        b""
    };
    Placeholder {
        path: path.clone(),
        is_dir,
        content,
    }
}

/// Git's own files must be files for Git to keep working; everywhere else an empty
/// directory is used, because Git never records one (`git add -A` must not pick it up).
fn looks_like_file(p: &WinPath) -> bool {
    let name = p.file_name().unwrap_or("");
    let in_git = p.parts().iter().any(|c| c.eq_ignore_ascii_case(".git"))
        || p.parts()
            .iter()
            .any(|c| c.eq_ignore_ascii_case("worktrees"));
    in_git
        && ["config", "commondir", "config.worktree", "gitdir"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
}

/// `base\name` for a name known to be valid (a constant, or one read from a parsed path).
pub fn join_fixed(base: &WinPath, name: &str) -> WinPath {
    base.child(name)
}
