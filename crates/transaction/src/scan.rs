//! Reading an overlayfs upper layer against its lower layer (the real workspace).
//!
//! What overlayfs writes here, established on Linux 6.18 with `mount -t overlay -o
//! lowerdir=WS,upperdir=U,workdir=W,userxattr` inside `unshare -Urm` (see docs/transactions.md):
//! - A deleted lower file or directory becomes a **whiteout**: a character device 0/0 in the
//!   upper layer (the kernel makes it even in a user namespace; since Linux 5.8 anyone may
//!   mknod 0/0). Nested overlays may also use the xattr form, a zero-size regular file with
//!   `user.overlay.whiteout`; both are read as "removed".
//! - A directory removed and made again (`rm -rf d; mkdir d`), and a directory that was renamed
//!   while it existed only in the upper layer, get `user.overlay.opaque=y`: nothing of the
//!   lower directory shows through, so every lower entry missing from it is removed.
//! - `userxattr` conflicts with `redirect_dir=on` and `metacopy=on` (the mount is refused with
//!   EINVAL, "conflicting options"), so there are no redirects and no metadata-only copies:
//!   renaming a directory that exists in the lower layer fails with EXDEV and tools fall back to
//!   copy + delete (a whiteout at the old name, a full copy at the new one); `chmod` or `touch`
//!   of a lower file copies its whole content up. Renaming a file works (whiteout + copy).
//! - Copied-up files carry `user.overlay.origin`, directories holding them
//!   `user.overlay.impure`, the upper root `user.overlay.uuid`; none changes what a path holds.
//!
//! If `user.overlay.redirect` or `user.overlay.metacopy` ever appears the layer was not made
//! by cordon's mount, and scanning stops rather than misread it.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::change::Bases;
use crate::entry::{entry_of, probe_known, Entry, Stamp};
use crate::error::{Context, Error, Result};
use crate::wire::RelPath;

const XATTR_OPAQUE: &str = "user.overlay.opaque";
const XATTR_WHITEOUT: &str = "user.overlay.whiteout";
const XATTR_REFUSED: [&str; 2] = ["user.overlay.redirect", "user.overlay.metacopy"];

/// One path where the upper layer differs from (or hides) the lower one.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    pub path: RelPath,
    /// The real workspace now.
    pub lower: Option<Entry>,
    pub lower_stamp: Option<Stamp>,
    /// What the transaction holds; `None` when it removed the path.
    pub upper: Option<Entry>,
    /// The upper entry lies in (or is) an opaque directory: removing it from the upper layer
    /// would hide the lower one, so apply copies it instead of moving it.
    pub in_opaque: bool,
    /// The upper layer holds a whiteout at exactly this path.
    pub whiteout: bool,
    /// Removed because this ancestor (or the path itself) was removed or replaced.
    pub removed_with: Option<RelPath>,
}

/// Walks `upper` against `lower` and reports every path that differs or may differ (a
/// copied-up file with unchanged content is reported too; the caller compares entries).
/// `known`: recorded bases, whose stamps spare re-reading unchanged workspace files; `seen`:
/// the same for upper-layer files. Returns the upper files read, for the next `seen`.
pub(crate) fn scan(
    upper: &Path,
    lower: &Path,
    known: &Bases,
    seen: &Seen,
) -> Result<(Vec<Observed>, Seen)> {
    let mut out = Vec::new();
    let walk = Walk {
        upper,
        lower,
        known,
        seen,
        seen_now: Default::default(),
    };
    walk.dir(None, true, false, &mut out)?;
    let seen_now = walk
        .seen_now
        .into_inner()
        .into_iter()
        .map(|(p, s, e)| (p, (s, e)))
        .collect();
    Ok((out, seen_now))
}

struct Walk<'a> {
    upper: &'a Path,
    lower: &'a Path,
    known: &'a Bases,
    seen: &'a Seen,
    seen_now: std::cell::RefCell<Vec<(RelPath, Stamp, Entry)>>,
}

/// Upper-layer files already hashed, by stamp: what the scan at the end of a command read need
/// not be read again by the apply after it.
pub(crate) type Seen = std::collections::HashMap<RelPath, (Stamp, Entry)>;

fn names(dir: &Path) -> Result<Vec<OsString>> {
    let mut names = fs::read_dir(dir)
        .at("read directory", dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<Vec<_>>>()
        .at("read directory", dir)?;
    names.sort();
    Ok(names)
}

fn at(root: &Path, rel: Option<&RelPath>) -> PathBuf {
    match rel {
        Some(r) => root.join(r.as_path()),
        None => root.to_path_buf(),
    }
}

fn has_xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    // The xattr crate uses the l* calls: a symlink's own attributes, never its target's.
    xattr::get(path, name).at("read xattr", path)
}

/// The overlay xattr names an upper entry carries (one llistxattr instead of a get per name).
fn overlay_xattrs(path: &Path) -> Result<Vec<String>> {
    Ok(xattr::list(path)
        .at("list xattrs", path)?
        .filter_map(|n| n.into_string().ok())
        .filter(|n| n.starts_with("user.overlay."))
        .collect())
}

/// Runs `read` on an upper entry; if it is refused for lack of permission and the entry is the
/// caller's own (the agent may `chmod 000` what it made), grants the owner `bits` for the read
/// and puts the mode back afterwards. Root never needs it.
fn with_access<T>(
    path: &Path,
    meta: &fs::Metadata,
    bits: u32,
    read: impl FnOnce() -> Result<T>,
) -> Result<T> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    let own = meta.uid() == nix::unistd::geteuid().as_raw();
    if !own || mode & bits == bits || nix::unistd::geteuid().is_root() {
        return read();
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode | bits))
        .at("chmod for reading", path)?;
    let result = read();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).at("restore mode", path)?;
    result
}

impl Walk<'_> {
    fn lower_entry(&self, path: &RelPath) -> Result<(Option<Entry>, Option<Stamp>)> {
        let known = self
            .known
            .get(path)
            .and_then(|b| Some((b.stamp.as_ref()?, b.entry.as_ref()?)));
        Ok(
            match probe_known(&self.lower.join(path.as_path()), known)? {
                Some((e, s)) => (Some(e), Some(s)),
                None => (None, None),
            },
        )
    }

    /// One upper directory. `lower_ok`: the same path in the lower layer is a real directory
    /// reached through real directories only (never through a symlink), so reading it is
    /// reading the workspace. `replace`: this directory or an ancestor is opaque.
    fn dir(
        &self,
        rel: Option<&RelPath>,
        lower_ok: bool,
        replace: bool,
        out: &mut Vec<Observed>,
    ) -> Result<()> {
        let upper_dir = at(self.upper, rel);
        let mut seen = BTreeSet::new();
        for name in names(&upper_dir)? {
            let path = RelPath::child(rel, &name);
            seen.insert(name);
            let up = self.upper.join(path.as_path());
            let meta = fs::symlink_metadata(&up).at("stat", &up)?;
            let xattrs = if meta.file_type().is_symlink() {
                Vec::new()
            } else {
                overlay_xattrs(&up)?
            };
            if let Some(x) = xattrs.iter().find(|x| XATTR_REFUSED.contains(&x.as_str())) {
                return Err(Error::Unsupported {
                    path: up,
                    what: format!("the xattr {x}"),
                });
            }
            let (lower, lower_stamp) = if lower_ok {
                self.lower_entry(&path)?
            } else {
                (None, None)
            };
            let ft = meta.file_type();
            let whiteout = (ft.is_char_device() && meta.rdev() == 0)
                || (ft.is_file() && meta.len() == 0 && xattrs.iter().any(|x| x == XATTR_WHITEOUT));
            if whiteout {
                if let Some(l) = lower {
                    let is_dir = l.is_dir();
                    out.push(Observed {
                        path: path.clone(),
                        lower: Some(l),
                        lower_stamp,
                        upper: None,
                        in_opaque: replace,
                        whiteout: true,
                        removed_with: Some(path.clone()),
                    });
                    if is_dir {
                        self.removed_subtree(&path, &path, out)?;
                    }
                }
                continue;
            }
            let stamp = Stamp::of(&meta);
            let cached = self
                .seen
                .get(&path)
                .filter(|(s, _)| *s == stamp && ft.is_file())
                .map(|(_, e)| e.clone());
            let entry = match cached {
                Some(e) => e,
                None => with_access(&up, &meta, 0o400, || entry_of(&up, &meta))?,
            };
            if matches!(entry, Entry::File { .. }) {
                self.seen_now
                    .borrow_mut()
                    .push((path.clone(), stamp, entry.clone()));
            }
            let lower_dir = matches!(lower, Some(Entry::Dir { .. }));
            if let Entry::Dir { .. } = entry {
                let opaque = xattrs.iter().any(|x| x == XATTR_OPAQUE)
                    && has_xattr(&up, XATTR_OPAQUE)?.as_deref() == Some(b"y");
                out.push(Observed {
                    path: path.clone(),
                    removed_with: lower.as_ref().filter(|l| !l.is_dir()).map(|_| path.clone()),
                    lower,
                    lower_stamp,
                    upper: Some(entry),
                    in_opaque: replace || opaque,
                    whiteout: false,
                });
                with_access(&up, &meta, 0o500, || {
                    self.dir(Some(&path), lower_dir, replace || opaque, out)
                })?;
            } else {
                out.push(Observed {
                    path: path.clone(),
                    removed_with: lower_dir.then(|| path.clone()),
                    lower,
                    lower_stamp,
                    upper: Some(entry),
                    in_opaque: replace,
                    whiteout: false,
                });
                if lower_dir {
                    self.removed_subtree(&path, &path, out)?;
                }
            }
        }
        if replace && lower_ok {
            // An opaque directory hides every lower entry it does not hold itself.
            let lower_dir = at(self.lower, rel);
            for name in names(&lower_dir)? {
                if seen.contains(&name) {
                    continue;
                }
                let path = RelPath::child(rel, &name);
                if let (Some(l), lower_stamp) = self.lower_entry(&path)? {
                    let is_dir = l.is_dir();
                    out.push(Observed {
                        path: path.clone(),
                        lower: Some(l),
                        lower_stamp,
                        upper: None,
                        in_opaque: true,
                        whiteout: false,
                        removed_with: Some(path.clone()),
                    });
                    if is_dir {
                        self.removed_subtree(&path, &path, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Every lower entry below `rel`, all removed along with `root`.
    fn removed_subtree(
        &self,
        rel: &RelPath,
        root: &RelPath,
        out: &mut Vec<Observed>,
    ) -> Result<()> {
        let dir = self.lower.join(rel.as_path());
        for name in names(&dir)? {
            let path = RelPath::child(Some(rel), &name);
            if let (Some(l), lower_stamp) = self.lower_entry(&path)? {
                let is_dir = l.is_dir();
                out.push(Observed {
                    path: path.clone(),
                    lower: Some(l),
                    lower_stamp,
                    upper: None,
                    in_opaque: false,
                    whiteout: false,
                    removed_with: Some(root.clone()),
                });
                if is_dir {
                    self.removed_subtree(&path, root, out)?;
                }
            }
        }
        Ok(())
    }
}
