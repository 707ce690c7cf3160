//! Which changes a transaction may never apply: anything under a read-only protected path, and
//! removing or replacing a path that must stay (`.git`).

use std::path::{Path, PathBuf};

use crate::wire::RelPath;

/// The protected set, relative to the workspace.
#[derive(Debug, Clone, Default)]
pub struct Protection {
    read_only: Vec<RelPath>,
    keep: Vec<RelPath>,
}

impl Protection {
    /// `read_only`: nothing at or below these paths changes (`.git/hooks`, `.git/config`,
    /// `.git/info`, `.cordon.toml`). `keep`: these paths themselves are never removed,
    /// replaced, or changed (`.git`; changes below them are allowed). Absolute paths are taken
    /// relative to `workspace`; paths outside it are dropped (the overlay cannot touch them).
    pub fn new(
        workspace: &Path,
        read_only: impl IntoIterator<Item = PathBuf>,
        keep: impl IntoIterator<Item = PathBuf>,
    ) -> Protection {
        let rel = |p: PathBuf| {
            let p = if p.is_absolute() {
                p.strip_prefix(workspace).ok()?.to_path_buf()
            } else {
                p
            };
            RelPath::new(p).ok()
        };
        Protection {
            read_only: read_only.into_iter().filter_map(rel).collect(),
            keep: keep.into_iter().filter_map(rel).collect(),
        }
    }

    /// The built-in protected set of DESIGN.md, for callers without a policy.
    pub fn git_default() -> Protection {
        Protection::new(
            Path::new(""),
            [".git/hooks", ".git/config", ".git/info", ".cordon.toml"].map(PathBuf::from),
            [PathBuf::from(".git")],
        )
    }

    /// Why a change at `path` is refused, if it is. `removes` is true when the change deletes
    /// the path or replaces it with another kind of thing.
    pub(crate) fn refuses(&self, path: &RelPath, removes: bool) -> Option<String> {
        if let Some(p) = self.read_only.iter().find(|p| path.is_within(p)) {
            return Some(format!("protected path {p} is read-only"));
        }
        if removes {
            // Removing a parent removes what it protects.
            if let Some(p) = self.read_only.iter().find(|p| p.is_within(path)) {
                return Some(format!("removing it would remove protected path {p}"));
            }
            if let Some(p) = self.keep.iter().find(|p| p.is_within(path)) {
                return Some(format!("protected path {p} cannot be removed or replaced"));
            }
        }
        if let Some(p) = self.keep.iter().find(|p| *p == path) {
            return Some(format!("protected path {p} cannot be removed or replaced"));
        }
        None
    }

    /// True when `path` lies below a path that must stay.
    pub(crate) fn kept_ancestor(&self, path: &RelPath) -> Option<&RelPath> {
        self.keep.iter().find(|p| path.is_within(p) && *p != path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(p: &str) -> RelPath {
        RelPath::new(p).expect("valid")
    }

    #[test]
    fn refuses_protected_and_removal_of_kept() {
        let p = Protection::git_default();
        assert!(p.refuses(&rel(".git/hooks/pre-commit"), false).is_some());
        assert!(p.refuses(&rel(".git/config"), false).is_some());
        assert!(p.refuses(&rel(".cordon.toml"), false).is_some());
        assert!(p.refuses(&rel(".git"), true).is_some());
        assert!(p.refuses(&rel(".git"), false).is_some());
        assert!(p.refuses(&rel(".git/objects/ab/cd"), false).is_none());
        assert!(p.refuses(&rel(".git/objects/ab/cd"), true).is_none());
        assert!(p.refuses(&rel("src/main.rs"), true).is_none());
        assert!(p.refuses(&rel(".gitignore"), true).is_none());
        assert!(p.refuses(&rel(".git/configx"), false).is_none());
    }

    #[test]
    fn absolute_paths_are_taken_relative_to_the_workspace() {
        let p = Protection::new(
            Path::new("/ws"),
            [
                PathBuf::from("/ws/.cordon.toml"),
                PathBuf::from("/elsewhere/x"),
            ],
            [],
        );
        assert!(p.refuses(&rel(".cordon.toml"), false).is_some());
        assert_eq!(p.read_only.len(), 1);
    }
}
