//! What one path is, as far as a transaction cares: file (size, mode, content hash), symlink
//! (target), directory (mode), or a special file that is never applied.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Context, Result};

/// Permission bits kept for files and directories (setuid/setgid/sticky included: a change
/// to them is a change the reviewer must see).
pub(crate) const MODE_BITS: u32 = 0o7777;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    File {
        size: u64,
        mode: u32,
        /// Lowercase hex SHA-256 of the content.
        sha256: String,
        /// The first 8 KiB hold a NUL byte or are not UTF-8: no line diff is shown.
        #[serde(default)]
        binary: bool,
    },
    Symlink {
        #[serde(with = "crate::wire")]
        target: PathBuf,
    },
    Dir {
        mode: u32,
    },
    /// A fifo, socket or device node: shown, never applied.
    Special {
        what: String,
    },
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        matches!(self, Entry::Dir { .. })
    }

    pub(crate) fn mode(&self) -> Option<u32> {
        match self {
            Entry::File { mode, .. } | Entry::Dir { mode } => Some(*mode),
            _ => None,
        }
    }

    /// Same kind and content, whatever the mode.
    pub(crate) fn same_content(&self, other: &Entry) -> bool {
        match (self, other) {
            (Entry::File { sha256: a, .. }, Entry::File { sha256: b, .. }) => a == b,
            (Entry::Dir { .. }, Entry::Dir { .. }) => true,
            (a, b) => a == b,
        }
    }

    /// A short word for the kind, for the text diff.
    pub fn kind_word(&self) -> &'static str {
        match self {
            Entry::File { .. } => "file",
            Entry::Symlink { .. } => "symlink",
            Entry::Dir { .. } => "directory",
            Entry::Special { .. } => "special file",
        }
    }
}

/// Reads what `path` is without following a final symlink; `None` when it does not exist.
pub(crate) fn probe(path: &Path) -> Result<Option<Entry>> {
    Ok(probe_known(path, None)?.map(|(e, _)| e))
}

/// Like `probe`, with the stamp of what was read; when the stamp equals `known`'s, its entry is
/// taken without reading the content again (nothing wrote to the inode since).
pub(crate) fn probe_known(
    path: &Path,
    known: Option<(&Stamp, &Entry)>,
) -> Result<Option<(Entry, Stamp)>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        // ENOTDIR: a parent is not a directory, so the path does not exist either.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e).at("stat", path),
    };
    let stamp = Stamp::of(&meta);
    if let Some((s, e)) = known {
        if *s == stamp {
            return Ok(Some((e.clone(), stamp)));
        }
    }
    Ok(Some((entry_of(path, &meta)?, stamp)))
}

pub(crate) fn entry_of(path: &Path, meta: &fs::Metadata) -> Result<Entry> {
    let ft = meta.file_type();
    let mode = meta.permissions().mode() & MODE_BITS;
    Ok(if ft.is_symlink() {
        Entry::Symlink {
            target: fs::read_link(path).at("readlink", path)?,
        }
    } else if ft.is_dir() {
        Entry::Dir { mode }
    } else if ft.is_file() {
        let (sha256, binary) = hash_file(path)?;
        Entry::File {
            size: meta.len(),
            mode,
            sha256,
            binary,
        }
    } else {
        let what = if ft.is_fifo() {
            "fifo"
        } else if ft.is_socket() {
            "socket"
        } else if ft.is_char_device() {
            "character device"
        } else {
            "block device"
        };
        Entry::Special { what: what.into() }
    })
}

/// SHA-256 of a file's content as lowercase hex, and whether it looks binary; read with
/// O_NOFOLLOW so a symlink swapped in after the stat is an error instead of a read of its target.
pub(crate) fn hash_file(path: &Path) -> Result<(String, bool)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .at("open for hashing", path)?;
    hash_reader(&mut file).at("read for hashing", path)
}

thread_local! {
    // One read buffer per thread: zeroing 64 KiB for every small file costs more than
    // hashing it.
    static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 64 * 1024]);
}

pub(crate) fn hash_reader(r: &mut impl Read) -> io::Result<(String, bool)> {
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        let mut hasher = Sha256::new();
        let mut binary = None;
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            if binary.is_none() {
                binary = Some(looks_binary(chunk.get(..8192).unwrap_or(chunk)));
            }
            hasher.update(chunk);
        }
        Ok((hex(&hasher.finalize()), binary.unwrap_or(false)))
    })
}

/// Git's rule (a NUL byte in the first 8 KiB) plus invalid UTF-8, since the text renderer
/// works on strings; a multi-byte character cut at the end of the window is still text.
pub(crate) fn looks_binary(head: &[u8]) -> bool {
    if head.contains(&0) {
        return true;
    }
    match std::str::from_utf8(head) {
        Ok(_) => false,
        Err(e) => e.error_len().is_some(),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// A cheap fingerprint of an inode (device, inode, size, change time) used to skip re-hashing a
/// target already verified earlier in the same apply: any write changes ctime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    ctime: i64,
    ctime_ns: i64,
    mtime: i64,
    mtime_ns: i64,
}

impl Stamp {
    pub(crate) fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            ctime: meta.ctime(),
            ctime_ns: meta.ctime_nsec(),
            mtime: meta.mtime(),
            mtime_ns: meta.mtime_nsec(),
        }
    }

    /// The same inode with the same data: equal but for the change time, which a rename or
    /// a new hard link moves.
    pub(crate) fn same_data(&self, other: &Stamp) -> bool {
        Stamp {
            ctime: 0,
            ctime_ns: 0,
            ..*self
        } == Stamp {
            ctime: 0,
            ctime_ns: 0,
            ..*other
        }
    }

    pub(crate) fn read(path: &Path) -> Option<Stamp> {
        fs::symlink_metadata(path).ok().map(|m| Stamp::of(&m))
    }
}
