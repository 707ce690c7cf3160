//! The one error type of the engine: each variant names the step that failed and the path.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid transaction name {name:?}: {why}")]
    InvalidName { name: String, why: &'static str },
    #[error("no transaction named {0:?}")]
    NotFound(String),
    #[error("transaction {0:?} is in use by another cordon (a command or an apply is running)")]
    Busy(String),
    #[error("transaction {name:?} belongs to workspace {owner}, not {asked}")]
    OtherWorkspace {
        name: String,
        owner: PathBuf,
        asked: PathBuf,
    },
    #[error("invalid path {0:?}: must be relative, inside the workspace, without `..`")]
    InvalidPath(PathBuf),
    #[error("the upper layer holds {what} at {path}, which cordon cannot interpret safely")]
    Unsupported { path: PathBuf, what: String },
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{file}: {source}")]
    Format {
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Attaches the step and path to an `io::Error`, so every failure names what was being done.
pub(crate) trait Context<T> {
    fn at(self, step: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn at(self, step: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            step,
            path: path.into(),
            source,
        })
    }
}
