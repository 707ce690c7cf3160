//! Windows paths as plain data: parsed, normalised and compared the way Win32 does, on any host.
//!
//! The planner runs (and is tested) on Linux, where `std::path` knows nothing of drive letters,
//! so it cannot be used to reason about `C:\ws\.git`. This module does the small part of Win32
//! path handling the planner needs: drive, UNC and `\\?\` verbatim forms, `/` or `\`, repeated
//! separators, `.` and `..`, the trailing dots and spaces Win32 strips (`.git.` *is* `.git`),
//! and case-insensitive comparison. Names Win32 would turn into something else (device names
//! such as `NUL`, alternate data streams `a:b`, wildcards) are refused rather than guessed at.
//! Short 8.3 names (`PROGRA~1`) cannot be resolved lexically; the executor hands the planner
//! final paths (`GetFinalPathNameByHandleW`) where it matters.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// Why a string is not a path the planner accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("`{0}` is not absolute (a drive letter or a \\\\server\\share is needed)")]
    NotAbsolute(String),
    #[error("`{0}` is relative to a drive's current directory")]
    DriveRelative(String),
    #[error("`{0}` uses a prefix cordon does not handle")]
    UnsupportedPrefix(String),
    #[error("`{path}`: `..` climbs above the root")]
    EscapesRoot { path: String },
    #[error("`{path}`: the name `{name}` is not allowed ({why})")]
    BadName {
        path: String,
        name: String,
        why: &'static str,
    },
    #[error("path is not valid Unicode")]
    NotUnicode,
}

/// The root of an absolute Windows path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `C:\`, kept upper-case.
    Drive(char),
    /// `\\server\share\`.
    Unc { server: String, share: String },
    /// `\\.\NAME`, a device such as `NUL` (only as a whole path, e.g. for `\\.\NUL`'s ACL).
    Device(String),
}

/// An absolute, normalised Windows path. Equality, ordering and hashing ignore case, as NTFS
/// and the Win32 name space do by default; `Display` keeps the spelling it was given.
#[derive(Debug, Clone)]
pub struct WinPath {
    root: Root,
    parts: Vec<String>,
}

/// Win32's reserved device names: `C:\ws\nul` (or `nul.txt` on older Windows) opens the null
/// device, not a file in `C:\ws`.
const DEVICE_NAMES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "COM0", "COM1", "COM2", "COM3", "COM4",
    "COM5", "COM6", "COM7", "COM8", "COM9", "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6",
    "LPT7", "LPT8", "LPT9",
];

impl WinPath {
    /// Parses an absolute path in any of the Win32 spellings.
    pub fn parse(text: &str) -> Result<WinPath, PathError> {
        let fail_abs = || PathError::NotAbsolute(text.to_string());
        if let Some(rest) = text.strip_prefix(r"\\?\") {
            // Verbatim: Win32 passes the rest to the file system untouched, so no separator
            // rewriting and no stripping; `.`/`..` or `/` here are refused, not interpreted.
            let (root, rest) = if let Some(unc) = strip_prefix_ci(rest, r"UNC\") {
                let (server, share, rest) = split_unc(unc).ok_or_else(fail_abs)?;
                (Root::Unc { server, share }, rest)
            } else {
                let (drive, rest) = split_drive(rest)
                    .ok_or_else(|| PathError::UnsupportedPrefix(text.to_string()))?;
                (Root::Drive(drive), rest)
            };
            let mut path = WinPath {
                root,
                parts: Vec::new(),
            };
            for name in rest.split('\\').filter(|n| !n.is_empty()) {
                if name == "." || name == ".." || name.contains('/') {
                    return Err(bad(text, name, "not a name in a verbatim path"));
                }
                check_chars(text, name)?;
                path.parts.push(name.to_string());
            }
            return Ok(path);
        }
        let slashed = text.replace('/', "\\");
        if slashed.starts_with(r"\??\") {
            return Err(PathError::UnsupportedPrefix(text.to_string()));
        }
        let (root, rest) = if let Some(dev) = slashed.strip_prefix(r"\\.\") {
            match split_drive(dev) {
                Some((drive, rest)) => (Root::Drive(drive), rest.to_string()),
                None => {
                    let (name, rest) = dev.split_once('\\').unwrap_or((dev, ""));
                    if name.is_empty() {
                        return Err(fail_abs());
                    }
                    (Root::Device(name.to_ascii_uppercase()), rest.to_string())
                }
            }
        } else if let Some(unc) = slashed.strip_prefix(r"\\") {
            let (server, share, rest) = split_unc(unc).ok_or_else(fail_abs)?;
            (Root::Unc { server, share }, rest.to_string())
        } else if let Some((drive, rest)) = split_drive(&slashed) {
            (Root::Drive(drive), rest.to_string())
        } else if slashed.len() >= 2 && slashed.as_bytes()[1] == b':' {
            return Err(PathError::DriveRelative(text.to_string()));
        } else {
            return Err(fail_abs());
        };
        let mut path = WinPath {
            root,
            parts: Vec::new(),
        };
        path.push_relative(text, &rest)?;
        Ok(path)
    }

    /// Parses a `std::path::Path` (on Linux, a string that holds a Windows path).
    pub fn from_path(path: &std::path::Path) -> Result<WinPath, PathError> {
        WinPath::parse(path.to_str().ok_or(PathError::NotUnicode)?)
    }

    /// `self` joined with a relative path (`/` or `\` separated). An absolute `rel` replaces
    /// `self`, as `PathBuf::join` does on Windows.
    pub fn join(&self, rel: &str) -> Result<WinPath, PathError> {
        if let Ok(abs) = WinPath::parse(rel) {
            return Ok(abs);
        }
        let slashed = rel.replace('/', "\\");
        if slashed.starts_with('\\') || slashed.as_bytes().get(1) == Some(&b':') {
            return Err(PathError::DriveRelative(rel.to_string()));
        }
        let mut out = self.clone();
        out.push_relative(rel, &slashed)?;
        Ok(out)
    }

    fn push_relative(&mut self, whole: &str, rel: &str) -> Result<(), PathError> {
        for raw in rel.split(['\\', '/']) {
            // Win32 drops trailing dots and spaces of every name: `.git.` and `.git ` open
            // `.git`. A name that is nothing but dots and spaces is refused (except . and ..).
            let name = if raw == "." || raw == ".." {
                raw
            } else {
                raw.trim_end_matches(['.', ' '])
            };
            match name {
                "" if raw.is_empty() => {}
                "" => return Err(bad(whole, raw, "only dots and spaces")),
                "." => {}
                ".." => {
                    if self.parts.pop().is_none() {
                        return Err(PathError::EscapesRoot {
                            path: whole.to_string(),
                        });
                    }
                }
                _ => {
                    check_chars(whole, name)?;
                    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
                    if DEVICE_NAMES.iter().any(|d| d.eq_ignore_ascii_case(stem))
                        || is_superscript_port(stem)
                    {
                        return Err(bad(whole, name, "a reserved device name"));
                    }
                    self.parts.push(name.to_string());
                }
            }
        }
        Ok(())
    }

    /// `self\name` for a name that is already valid: one of `self`'s own parts from another
    /// parsed path, or a constant such as `.git`. No re-normalisation, so a verbatim name
    /// (`\\?\` paths keep trailing dots) stays the name it was.
    pub fn child(&self, name: &str) -> WinPath {
        let mut out = self.clone();
        out.parts.push(name.to_string());
        out
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The names below the root.
    pub fn parts(&self) -> &[String] {
        &self.parts
    }

    /// Whether this is a root (`C:\`, `\\server\share`), which cordon never grants or protects.
    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    pub fn file_name(&self) -> Option<&str> {
        self.parts.last().map(String::as_str)
    }

    pub fn parent(&self) -> Option<WinPath> {
        let mut p = self.clone();
        p.parts.pop()?;
        Some(p)
    }

    /// Whether `self` is `base` or below it (whole names, ignoring case).
    pub fn starts_with(&self, base: &WinPath) -> bool {
        fold_root(&self.root) == fold_root(&base.root)
            && self.parts.len() >= base.parts.len()
            && self
                .parts
                .iter()
                .zip(&base.parts)
                .all(|(a, b)| fold(a) == fold(b))
    }

    /// The names of `self` below `base`, if `self` is inside it.
    pub fn strip_prefix(&self, base: &WinPath) -> Option<&[String]> {
        self.starts_with(base)
            .then(|| &self.parts[base.parts.len()..])
    }

    /// The spelling handed to Win32 calls: `\\?\` verbatim form, so paths longer than
    /// MAX_PATH work and Win32 does not normalise a second time (this type already did).
    pub fn to_api(&self) -> String {
        match &self.root {
            Root::Drive(d) => format!(r"\\?\{d}:\{}", self.parts.join("\\")),
            Root::Unc { server, share } => {
                let mut s = format!(r"\\?\UNC\{server}\{share}");
                for p in &self.parts {
                    s.push('\\');
                    s.push_str(p);
                }
                s
            }
            Root::Device(_) => self.to_string(),
        }
    }

    /// The case-folded form, used for equality and for hashing a workspace into its SID.
    pub fn key(&self) -> String {
        fold(&self.to_string())
    }
}

impl fmt::Display for WinPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.root {
            Root::Drive(d) => write!(f, r"{d}:\{}", self.parts.join("\\")),
            Root::Unc { server, share } => {
                write!(f, r"\\{server}\{share}")?;
                for p in &self.parts {
                    write!(f, r"\{p}")?;
                }
                Ok(())
            }
            Root::Device(name) => {
                write!(f, r"\\.\{name}")?;
                for p in &self.parts {
                    write!(f, r"\{p}")?;
                }
                Ok(())
            }
        }
    }
}

impl PartialEq for WinPath {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for WinPath {}
impl Hash for WinPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}
impl PartialOrd for WinPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for WinPath {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// Upper-cases the way NTFS's up-case table does for the characters that matter here: one
/// character to one character (a mapping to several, like `ß`, is left alone, as NTFS does).
fn fold(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

fn fold_root(r: &Root) -> String {
    match r {
        Root::Drive(d) => format!("{d}:"),
        Root::Unc { server, share } => fold(&format!(r"\\{server}\{share}")),
        Root::Device(n) => fold(n),
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `X:\rest` or `X:` at the end → (upper-case letter, rest).
fn split_drive(s: &str) -> Option<(char, &str)> {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        let rest = &s[2..];
        if rest.is_empty() || rest.starts_with('\\') {
            return Some((char::from(b[0].to_ascii_uppercase()), rest));
        }
    }
    None
}

/// `server\share\rest` → (server, share, rest); both names must be present.
fn split_unc(s: &str) -> Option<(String, String, &str)> {
    let mut it = s.splitn(3, '\\');
    let server = it
        .next()
        .filter(|n| !n.is_empty() && *n != "." && *n != "?")?;
    let share = it.next().filter(|n| !n.is_empty())?;
    Some((
        server.to_string(),
        share.to_string(),
        it.next().unwrap_or(""),
    ))
}

fn check_chars(whole: &str, name: &str) -> Result<(), PathError> {
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') || (*c as u32) < 32)
    {
        let why = if c == ':' {
            "an alternate data stream or drive"
        } else {
            "a character Win32 reserves"
        };
        return Err(bad(whole, name, why));
    }
    Ok(())
}

/// `COM¹`, `LPT²`…: Windows treats superscript digits as device numbers too.
fn is_superscript_port(stem: &str) -> bool {
    let upper = stem.to_ascii_uppercase();
    ["COM", "LPT"].iter().any(|p| {
        upper
            .strip_prefix(p)
            .is_some_and(|rest| matches!(rest, "¹" | "²" | "³"))
    })
}

fn bad(whole: &str, name: &str, why: &'static str) -> PathError {
    PathError::BadName {
        path: whole.to_string(),
        name: name.to_string(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> WinPath {
        WinPath::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn spellings_normalise_to_one_form() {
        let table = [
            (r"C:\ws", r"C:\ws"),
            (r"c:/ws/", r"C:\ws"),
            (r"C:\\ws\\\sub\.\x\..", r"C:\ws\sub"),
            (r"\\?\C:\ws\sub", r"C:\ws\sub"),
            (r"\\.\C:\ws", r"C:\ws"),
            (r"\\server\share\dir\f", r"\\server\share\dir\f"),
            (r"//server/share/dir", r"\\server\share\dir"),
            (r"\\?\UNC\server\share\dir", r"\\server\share\dir"),
            (r"\\?\unc\server\share", r"\\server\share"),
            (r"C:\My Projects\app one", r"C:\My Projects\app one"),
            (r"C:\ws\.git.", r"C:\ws\.git"),
            (r"C:\ws\.git. . ", r"C:\ws\.git"),
            (r"C:\ws\hooks \x", r"C:\ws\hooks\x"),
            (r"\\.\NUL", r"\\.\NUL"),
            (r"C:\", r"C:\"),
        ];
        for (input, want) in table {
            assert_eq!(p(input).to_string(), want, "{input}");
        }
    }

    #[test]
    fn verbatim_paths_keep_their_names() {
        // Through \\?\ a name with a trailing dot is a different file, so it is not stripped.
        let v = p(r"\\?\C:\ws\.git.");
        assert_eq!(v.file_name(), Some(".git."));
        assert_ne!(v, p(r"C:\ws\.git"));
        assert!(WinPath::parse(r"\\?\C:\ws\..\x").is_err());
        assert!(WinPath::parse(r"\\?\C:\ws/x").is_err());
    }

    #[test]
    fn refuses_what_win32_would_reinterpret() {
        for bad in [
            r"ws\sub",
            r"\ws",
            r"C:ws",
            r"C:\ws\nul",
            r"C:\ws\NUL.txt",
            r"C:\ws\con ",
            r"C:\ws\com¹",
            r"C:\ws\file:stream",
            r"C:\ws\a*b",
            r"C:\ws\...",
            r"C:\..",
            r"\??\C:\x",
            r"\\?\Volume{0000}\x",
            r"\\server",
            r"\\server\",
            "C:\\ws\\a\u{1}b",
        ] {
            assert!(WinPath::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn comparison_ignores_case_and_matches_whole_names() {
        assert_eq!(p(r"C:\WS\.Git"), p(r"c:\ws\.git"));
        assert_eq!(p(r"C:\Ärger"), p(r"c:\ärger"));
        assert!(p(r"C:\ws\.git\hooks").starts_with(&p(r"c:\WS")));
        assert!(!p(r"C:\ws2").starts_with(&p(r"C:\ws")));
        assert!(!p(r"D:\ws").starts_with(&p(r"C:\ws")));
        assert!(p(r"\\S\Share\a").starts_with(&p(r"\\s\share")));
        assert_eq!(
            p(r"C:\ws\.git\hooks").strip_prefix(&p(r"C:\WS")),
            Some(&[".git".to_string(), "hooks".to_string()][..])
        );
    }

    #[test]
    fn long_paths_use_the_verbatim_prefix() {
        let deep = format!(r"C:\ws\{}", vec!["d".repeat(50); 8].join("\\"));
        let path = p(&deep);
        assert!(path.to_string().len() > 260);
        assert!(path.to_api().starts_with(r"\\?\C:\ws\"));
        assert_eq!(p(&path.to_api()), path, "the API form parses back");
        assert_eq!(
            p(r"\\srv\sh\a").to_api(),
            r"\\?\UNC\srv\sh\a",
            "UNC in verbatim form"
        );
    }

    #[test]
    fn join_handles_relative_and_absolute() {
        let ws = p(r"C:\ws");
        assert_eq!(
            ws.join(".git/hooks").map(|x| x.to_string()),
            Ok(r"C:\ws\.git\hooks".into())
        );
        assert_eq!(
            ws.join(r"..\other\wt").map(|x| x.to_string()),
            Ok(r"C:\other\wt".into())
        );
        assert_eq!(ws.join(r"D:\x").map(|x| x.to_string()), Ok(r"D:\x".into()));
        assert!(ws.join(r"\x").is_err());
        assert!(ws.join(r"..\..\..").is_err());
    }
}
