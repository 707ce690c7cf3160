//! Paths on the wire (meta, journal, diff JSON): a UTF-8 string, or `{"hex": …}` for other bytes.
//!
//! Unix file names are bytes; a journal that lost a non-UTF-8 name would apply to the wrong file,
//! so names that are not UTF-8 are kept exactly instead of being made lossy.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

pub(crate) fn serialize<S: Serializer>(path: &Path, s: S) -> std::result::Result<S::Ok, S::Error> {
    match path.to_str() {
        Some(text) => s.serialize_str(text),
        None => {
            #[derive(Serialize)]
            struct Raw {
                hex: String,
            }
            Raw {
                hex: path
                    .as_os_str()
                    .as_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            }
            .serialize(s)
        }
    }
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<PathBuf, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Text(String),
        Raw { hex: String },
    }
    match Repr::deserialize(d)? {
        Repr::Text(text) => Ok(PathBuf::from(text)),
        Repr::Raw { hex } => {
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| {
                    hex.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| serde::de::Error::custom("bad hex in path"))
                })
                .collect::<std::result::Result<Vec<u8>, D::Error>>()?;
            Ok(PathBuf::from(OsString::from_vec(bytes)))
        }
    }
}

/// A path relative to the workspace root, made only of normal components (no `..`, no `/`
/// prefix, no `.`), so joining it to the workspace can never leave it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RelPath(#[serde(with = "crate::wire")] PathBuf);

impl RelPath {
    /// Validates a path given by a user or read from disk.
    pub fn new(path: impl Into<PathBuf>) -> Result<RelPath> {
        let path: PathBuf = path.into();
        let mut clean = PathBuf::new();
        for c in path.components() {
            match c {
                Component::Normal(n) => clean.push(n),
                Component::CurDir => {}
                _ => return Err(Error::InvalidPath(path)),
            }
        }
        if clean.as_os_str().is_empty() {
            return Err(Error::InvalidPath(path));
        }
        Ok(RelPath(clean))
    }

    /// Joins one directory entry name (from `read_dir`, so it has no `/`).
    pub(crate) fn child(parent: Option<&RelPath>, name: &std::ffi::OsStr) -> RelPath {
        match parent {
            Some(p) => RelPath(p.0.join(name)),
            None => RelPath(PathBuf::from(name)),
        }
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }

    /// True when `self` is `other` or lies below it.
    pub fn is_within(&self, other: &RelPath) -> bool {
        self.0.starts_with(&other.0)
    }

    pub fn parent(&self) -> Option<RelPath> {
        self.0
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| RelPath(p.to_path_buf()))
    }

    pub fn depth(&self) -> usize {
        self.0.components().count()
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_paths_stay_inside() {
        assert!(RelPath::new("../x").is_err());
        assert!(RelPath::new("/etc/passwd").is_err());
        assert!(RelPath::new("a/../../b").is_err());
        assert!(RelPath::new("").is_err());
        assert_eq!(
            RelPath::new("./a/b").expect("valid").as_path(),
            Path::new("a/b")
        );
    }

    #[test]
    fn non_utf8_names_survive_json() {
        let p =
            RelPath::new(PathBuf::from(OsString::from_vec(b"d/\xffname".to_vec()))).expect("valid");
        let json = serde_json::to_string(&p).expect("serializes");
        assert_eq!(json, r#"{"hex":"642fff6e616d65"}"#);
        let back: RelPath = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, p);
        let text: RelPath = serde_json::from_str(r#""a/b""#).expect("parses");
        assert_eq!(text.as_path(), Path::new("a/b"));
    }
}
