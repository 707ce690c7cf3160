//! Paths as a policy writes them: absolute, under the home directory, or workspace-relative.

use std::path::{Component, Path, PathBuf};

/// A path from policy, not yet tied to a machine.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathSpec {
    /// `/abs/path`
    Absolute(PathBuf),
    /// `~/rel` (resolved against every home directory of the caller)
    Home(PathBuf),
    /// `rel` (resolved against the workspace)
    Workspace(PathBuf),
}

impl PathSpec {
    /// Parses a policy path; rejects empty paths and `..` components, which would make a rule
    /// mean something other than what it says.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty path".into());
        }
        let (spec, rest) = if text == "~" {
            (PathSpec::Home(PathBuf::new()), "")
        } else if let Some(rest) = text.strip_prefix("~/") {
            (PathSpec::Home(PathBuf::from(rest)), rest)
        } else if text.starts_with('~') {
            return Err(format!(
                "`{text}`: only `~/` (the caller's home) is understood"
            ));
        } else if text.starts_with('/') {
            (PathSpec::Absolute(PathBuf::from(text)), text)
        } else {
            (PathSpec::Workspace(PathBuf::from(text)), text)
        };
        if Path::new(rest)
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(format!("`{text}` contains `..`; write the path it means"));
        }
        Ok(spec)
    }

    /// Absolute paths this spec names, given the workspace and the caller's home directories.
    pub fn resolve(&self, workspace: &Path, homes: &[PathBuf]) -> Vec<PathBuf> {
        match self {
            PathSpec::Absolute(p) => vec![normalize(p)],
            PathSpec::Workspace(p) => vec![normalize(&workspace.join(p))],
            PathSpec::Home(p) => homes.iter().map(|h| normalize(&h.join(p))).collect(),
        }
    }
}

impl std::fmt::Display for PathSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathSpec::Absolute(p) | PathSpec::Workspace(p) => write!(f, "{}", p.display()),
            PathSpec::Home(p) if p.as_os_str().is_empty() => write!(f, "~"),
            PathSpec::Home(p) => write!(f, "~/{}", p.display()),
        }
    }
}

/// Lexical clean-up: drops `.` components and trailing slashes. `..` never reaches here.
fn normalize(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            PathSpec::parse("/etc/x"),
            Ok(PathSpec::Absolute("/etc/x".into()))
        );
        assert_eq!(PathSpec::parse("~/.ssh"), Ok(PathSpec::Home(".ssh".into())));
        assert_eq!(PathSpec::parse("~"), Ok(PathSpec::Home("".into())));
        assert_eq!(
            PathSpec::parse("build/out"),
            Ok(PathSpec::Workspace("build/out".into()))
        );
    }

    #[test]
    fn rejects_parent_components_and_other_users_homes() {
        assert!(PathSpec::parse("../x").is_err());
        assert!(PathSpec::parse("/a/../b").is_err());
        assert!(PathSpec::parse("~root/.ssh").is_err());
        assert!(PathSpec::parse("").is_err());
    }

    #[test]
    fn home_resolves_against_every_home() {
        let spec = PathSpec::parse("~/.aws").unwrap_or_else(|e| panic!("{e}"));
        let homes = vec![PathBuf::from("/home/a"), PathBuf::from("/root")];
        assert_eq!(
            spec.resolve(Path::new("/ws"), &homes),
            vec![PathBuf::from("/home/a/.aws"), PathBuf::from("/root/.aws")]
        );
    }

    #[test]
    fn workspace_paths_are_joined_and_cleaned() {
        let spec = PathSpec::parse("./.git/hooks/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            spec.resolve(Path::new("/ws"), &[]),
            vec![PathBuf::from("/ws/.git/hooks")]
        );
    }
}
