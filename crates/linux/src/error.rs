//! Errors of the Linux backend, each naming the setup stage that failed.

use std::fmt;
use std::path::PathBuf;

/// The ordered stages of building a sandbox; a failure names its stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    SingleThread,
    Clone,
    UidMap,
    MountPropagation,
    MountSources,
    MountView,
    PivotRoot,
    Loopback,
    ProxyListener,
    RequestDoor,
    Limits,
    Fork,
    Terminal,
    Capabilities,
    NoNewPrivs,
    Landlock,
    CloseFds,
    Chdir,
    Seccomp,
    Exec,
}

impl Stage {
    /// Stages in the order they run (ARCHITECTURE.md lists them in this order).
    pub const ALL: [Stage; 20] = [
        Stage::SingleThread,
        Stage::Clone,
        Stage::UidMap,
        Stage::MountPropagation,
        Stage::MountSources,
        Stage::MountView,
        Stage::PivotRoot,
        Stage::Loopback,
        Stage::ProxyListener,
        Stage::RequestDoor,
        Stage::Limits,
        Stage::Fork,
        Stage::Terminal,
        Stage::Capabilities,
        Stage::NoNewPrivs,
        Stage::Landlock,
        Stage::CloseFds,
        Stage::Chdir,
        Stage::Seccomp,
        Stage::Exec,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::SingleThread => "single-thread check",
            Stage::Clone => "namespaces",
            Stage::UidMap => "uid/gid map",
            Stage::MountPropagation => "mount propagation",
            Stage::MountSources => "mount sources",
            Stage::MountView => "mount view",
            Stage::PivotRoot => "pivot_root",
            Stage::Loopback => "loopback",
            Stage::ProxyListener => "proxy listener",
            Stage::RequestDoor => "request door",
            Stage::Limits => "resource limits",
            Stage::Fork => "fork command",
            Stage::Terminal => "session and terminal",
            Stage::Capabilities => "drop capabilities",
            Stage::NoNewPrivs => "no_new_privs",
            Stage::Landlock => "landlock",
            Stage::CloseFds => "close inherited fds",
            Stage::Chdir => "chdir",
            Stage::Seccomp => "seccomp filter",
            Stage::Exec => "exec",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A problem found on the host before any namespace exists.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    #[error("workspace {path}: {source}")]
    Workspace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("workspace {0} is too broad: the command could rewrite {1}")]
    WorkspaceTooBroad(PathBuf, &'static str),
    #[error("protected path {0} is a symbolic link; cordon cannot pin a link's target")]
    ProtectedSymlink(PathBuf),
    /// A linked worktree whose Git directories are not laid out as Git lays them out: cordon
    /// would make both writable, and both are named by files a sandbox could have written.
    #[error("Git layout of {dot_git}: {why}; cordon makes a `.git` file's Git directories writable only where Git itself puts them, naming this workspace back (for a moved worktree, `git worktree repair` in the main repository; otherwise check the files named)")]
    GitLayout { dot_git: PathBuf, why: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A resource limit cannot be enforced on this machine (see `LimitError::hint`).
    #[error(transparent)]
    Limits(#[from] crate::limits::LimitError),
}

/// Why a run could not start or be enforced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A setup stage failed; the command never ran.
    #[error("{stage}: {detail}")]
    Setup {
        stage: Stage,
        errno: i32,
        detail: String,
    },
    /// The command was not found (exit 127) or not executable (exit 126).
    #[error("{detail}")]
    Exec { errno: i32, detail: String },
}

impl RunError {
    pub(crate) fn setup(stage: Stage, err: impl fmt::Display, errno: i32) -> RunError {
        RunError::Setup {
            stage,
            errno,
            detail: err.to_string(),
        }
    }

    /// The fix to suggest, when the failure has a well-known cause.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            RunError::Setup {
                stage: Stage::Clone,
                ..
            } => Some(probe::USERNS_FIX),
            RunError::Setup {
                stage: Stage::Landlock,
                ..
            } => Some("boot a kernel with Landlock enabled (lsm=...,landlock), or pass --allow-weaker to run without this layer"),
            _ => None,
        }
    }
}

use crate::probe;
