//! The sandbox's mount view: what is mounted where (plain data, ordered by a pure function)
//! and how init builds it from detached mount trees before `pivot_root`.
//!
//! Every host path is cloned with `open_tree` before anything is stacked on the staging point,
//! and every target is opened with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)` inside the
//! new tree, so no link planted in a writable directory can redirect a mount.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{mkdirat, Mode};

use crate::error::Stage;
use crate::sys::{self, ATTR_NODEV, ATTR_NOSUID, ATTR_RDONLY};

/// What to put at a target path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A fresh procfs for the sandbox's pid namespace.
    Proc,
    /// A minimal /dev: null, zero, full, random, urandom, tty, a private devpts.
    Dev,
    /// A private, empty tmpfs (world-writable with sticky bit, or read-only).
    Tmpfs { read_only: bool },
    /// The host path itself, writable or read-only.
    Bind { writable: bool },
    /// A writable self-bind that turns the path into a mount point, so it cannot be renamed,
    /// removed or replaced (used for `.git`).
    Pin,
    /// The workspace as an overlay: the host's workspace below, the writes going to the
    /// transaction's upper directory ([`crate::Overlay`]).
    Overlay,
    /// A pin taken from the view itself rather than the host: `.git` inside an overlaid
    /// workspace, so that Git's writes land in the overlay too.
    PinInView,
    /// An empty, unreadable directory over a denied directory.
    HideDir,
    /// An empty, unreadable file over a denied file.
    HideFile,
}

/// One entry of the mount view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub target: PathBuf,
    pub kind: MountKind,
}

impl MountKind {
    /// Mounts of a lower class go first: base filesystems, private tmpfs, writable binds, pins,
    /// read-only protections, hides. Later mounts cover earlier ones, so protection beats
    /// `allow_write` and hiding beats everything.
    pub(crate) fn class(self) -> u8 {
        match self {
            MountKind::Proc | MountKind::Dev => 0,
            MountKind::Tmpfs { .. } => 1,
            MountKind::Bind { writable: true } | MountKind::Overlay => 2,
            MountKind::Pin | MountKind::PinInView => 3,
            MountKind::Bind { writable: false } => 4,
            MountKind::HideDir | MountKind::HideFile => 5,
        }
    }
}

/// Puts mounts in the order they must be applied: by class, then shallow before deep.
pub fn order(mounts: &mut [Mount]) {
    mounts.sort_by_key(order_key);
}

fn order_key(m: &Mount) -> (u8, usize) {
    (m.kind.class(), m.target.components().count())
}

/// The mount that decides what the view shows at `path`: the last applied of those above it.
pub fn effective<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.target))
        .max_by_key(|m| order_key(m))
}

const DEVICES: [&CStr; 6] = [c"null", c"zero", c"full", c"random", c"urandom", c"tty"];
const DEV_LINKS: [(&CStr, &CStr); 5] = [
    (c"ptmx", c"pts/ptmx"),
    (c"fd", c"/proc/self/fd"),
    (c"stdin", c"/proc/self/fd/0"),
    (c"stdout", c"/proc/self/fd/1"),
    (c"stderr", c"/proc/self/fd/2"),
];

/// A failure while building the view, with the stage and the path involved.
pub struct ViewError {
    pub stage: Stage,
    pub path: PathBuf,
    pub source: io::Error,
}

fn at(stage: Stage, path: &Path) -> impl FnOnce(io::Error) -> ViewError + '_ {
    move |source| ViewError {
        stage,
        path: path.to_path_buf(),
        source,
    }
}

fn c_path(path: &Path) -> io::Result<std::ffi::CString> {
    sys::cstring(path.as_os_str().as_bytes())
}

/// Where the new root is assembled before `pivot_root`; any directory that exists will do,
/// since everything stacked on it lives only in the sandbox's mount namespace.
const STAGING: &str = "/tmp";

/// Builds the view and pivots into it. Runs in init, inside the new user and mount namespace.
/// `overlay` gives the upper and work directories of a [`MountKind::Overlay`].
pub fn build(mounts: &[Mount], overlay: Option<&crate::Overlay>) -> Result<(), ViewError> {
    sys::make_root_private().map_err(at(Stage::MountPropagation, Path::new("/")))?;

    // 1. Clone every host source while the host tree is still unobstructed.
    let root = clone_host(Path::new("/"))?;
    sys::mount_setattr(root.as_fd(), ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV, true)
        .map_err(at(Stage::MountSources, Path::new("/")))?;
    let mut sources: Vec<Option<OwnedFd>> = Vec::with_capacity(mounts.len());
    for m in mounts {
        sources.push(match m.kind {
            MountKind::Bind { .. } | MountKind::Pin => Some(clone_host(&m.target)?),
            MountKind::Overlay => Some(new_overlay(&m.target, overlay)?),
            _ => None,
        });
    }
    let devices = if mounts.iter().any(|m| m.kind == MountKind::Dev) {
        DEVICES
            .iter()
            .map(|d| clone_host(&Path::new("/dev").join(d.to_str().unwrap_or_default())))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };

    // 2. Sources for hiding: an empty directory and file on a tmpfs of our own.
    let needs_hide = mounts
        .iter()
        .any(|m| matches!(m.kind, MountKind::HideDir | MountKind::HideFile));
    let staging =
        open_path(Path::new(STAGING)).map_err(at(Stage::MountSources, Path::new(STAGING)))?;
    if needs_hide {
        let empty = sys::new_fs(c"tmpfs", &[(c"mode", c"0755"), (c"size", c"4k")], 0)
            .map_err(at(Stage::MountSources, Path::new(STAGING)))?;
        mkdirat(empty.as_fd(), "dir", Mode::empty())
            .map_err(|e| at(Stage::MountSources, Path::new(STAGING))(e.into()))?;
        let file = openat(
            empty.as_fd(),
            "file",
            OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| at(Stage::MountSources, Path::new(STAGING))(e.into()))?;
        drop(file);
        sys::move_mount(empty.as_fd(), staging.as_fd())
            .map_err(at(Stage::MountSources, Path::new(STAGING)))?;
        for (m, src) in mounts.iter().zip(sources.iter_mut()) {
            let name = match m.kind {
                MountKind::HideDir => c"/tmp/dir",
                MountKind::HideFile => c"/tmp/file",
                _ => continue,
            };
            let fd = sys::clone_tree(None, name).map_err(at(Stage::MountSources, &m.target))?;
            sys::mount_setattr(fd.as_fd(), ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV, true)
                .map_err(at(Stage::MountSources, &m.target))?;
            *src = Some(fd);
        }
    }

    // 3. Attach the read-only root and stack the plan on it.
    sys::move_mount(root.as_fd(), staging.as_fd())
        .map_err(at(Stage::MountView, Path::new(STAGING)))?;
    let new_root =
        open_path(Path::new(STAGING)).map_err(at(Stage::MountView, Path::new(STAGING)))?;
    let tmpfs_roots: Vec<&Path> = mounts
        .iter()
        .filter(|m| matches!(m.kind, MountKind::Tmpfs { .. } | MountKind::Dev))
        .map(|m| m.target.as_path())
        .collect();
    for (m, src) in mounts.iter().zip(sources) {
        let creatable = tmpfs_roots
            .iter()
            .any(|t| m.target.starts_with(t) && m.target != *t);
        let is_file = matches!(m.kind, MountKind::HideFile) || is_file_source(src.as_ref());
        let target = match target_fd(new_root.as_fd(), &m.target, creatable, is_file) {
            Ok(fd) => fd,
            // Nothing to hide where the view has nothing (e.g. a secret under the host's /tmp).
            Err(e)
                if e.raw_os_error() == Some(libc::ENOENT)
                    && matches!(m.kind, MountKind::HideDir | MountKind::HideFile) =>
            {
                continue
            }
            Err(e) => return Err(at(Stage::MountView, &m.target)(e)),
        };
        let fd = match (m.kind, src) {
            (MountKind::Proc, _) => sys::new_fs(
                c"proc",
                &[],
                libc::MOUNT_ATTR_NOSUID | ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC,
            ),
            (MountKind::Dev, _) => build_dev(&devices),
            (MountKind::Tmpfs { read_only: false }, _) => {
                sys::new_fs(c"tmpfs", &[(c"mode", c"1777")], ATTR_NOSUID | ATTR_NODEV)
            }
            (MountKind::Tmpfs { read_only: true }, _) => sealed_tmpfs(&m.target, mounts),
            (MountKind::Bind { writable: false }, Some(fd)) => {
                sys::mount_setattr(fd.as_fd(), ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV, true)
                    .map(|_| fd)
            }
            (MountKind::Bind { writable: true } | MountKind::Pin, Some(fd)) => {
                sys::mount_setattr(fd.as_fd(), ATTR_NOSUID | ATTR_NODEV, true).map(|_| fd)
            }
            (MountKind::HideDir | MountKind::HideFile, Some(fd)) => Ok(fd),
            (MountKind::Overlay, Some(fd)) => Ok(fd),
            // The overlay it sits in is attached by now (class order).
            (MountKind::PinInView, None) => c_path(&relative(&m.target))
                .and_then(|rel| sys::clone_tree(Some(new_root.as_fd()), &rel))
                .and_then(|fd| {
                    sys::mount_setattr(fd.as_fd(), ATTR_NOSUID | ATTR_NODEV, true).map(|_| fd)
                }),
            (_, None) | (MountKind::PinInView, Some(_)) => {
                Err(io::Error::from_raw_os_error(libc::EINVAL))
            }
        }
        .map_err(at(Stage::MountView, &m.target))?;
        sys::move_mount(fd.as_fd(), target.as_fd()).map_err(at(Stage::MountView, &m.target))?;
    }

    // 4. Make the assembled tree the root; the host tree is detached and unreachable.
    nix::unistd::fchdir(new_root.as_fd())
        .map_err(|e| at(Stage::PivotRoot, Path::new(STAGING))(e.into()))?;
    sys::pivot_to_cwd().map_err(at(Stage::PivotRoot, Path::new(STAGING)))?;
    nix::unistd::chdir("/").map_err(|e| at(Stage::PivotRoot, Path::new("/"))(e.into()))?;
    Ok(())
}

/// An empty read-only tmpfs for `target`, holding the mount points of the mounts planned
/// directly below it (e.g. the request door's `/run/cordon`): once sealed, nothing can make
/// them.
fn sealed_tmpfs(target: &Path, mounts: &[Mount]) -> io::Result<OwnedFd> {
    let fd = sys::new_fs(c"tmpfs", &[(c"mode", c"0755")], ATTR_NOSUID | ATTR_NODEV)?;
    for below in mounts.iter().filter(|m| m.target.parent() == Some(target)) {
        if let Some(name) = below.target.file_name() {
            mkdirat(fd.as_fd(), name, Mode::from_bits_truncate(0o755))?;
        }
    }
    sys::mount_setattr(fd.as_fd(), ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV, true)?;
    Ok(fd)
}

/// An overlay with the host's `lower` below and the transaction's directories above. In a
/// user namespace overlayfs keeps its metadata in `user.overlay.*` xattrs (`userxattr`).
fn new_overlay(lower: &Path, dirs: Option<&crate::Overlay>) -> Result<OwnedFd, ViewError> {
    let err = at(Stage::MountSources, lower);
    let Some(dirs) = dirs else {
        return Err(err(io::Error::from_raw_os_error(libc::EINVAL)));
    };
    let (lower_c, upper_c, work_c) = match (c_path(lower), c_path(&dirs.upper), c_path(&dirs.work))
    {
        (Ok(l), Ok(u), Ok(w)) => (l, u, w),
        _ => return Err(err(io::Error::from_raw_os_error(libc::EINVAL))),
    };
    sys::new_fs(
        c"overlay",
        &[
            (c"lowerdir", lower_c.as_c_str()),
            (c"upperdir", upper_c.as_c_str()),
            (c"workdir", work_c.as_c_str()),
            (c"userxattr", c""),
        ],
        ATTR_NOSUID | ATTR_NODEV,
    )
    .map_err(err)
}

fn clone_host(path: &Path) -> Result<OwnedFd, ViewError> {
    let c = c_path(path).map_err(at(Stage::MountSources, path))?;
    sys::clone_tree(None, &c).map_err(at(Stage::MountSources, path))
}

fn open_path(path: &Path) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    Ok(fd)
}

fn is_file_source(src: Option<&OwnedFd>) -> bool {
    src.and_then(|fd| nix::sys::stat::fstat(fd.as_fd()).ok())
        .is_some_and(|st| st.st_mode & libc::S_IFMT != libc::S_IFDIR)
}

fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

/// Opens the mount point for `target` inside the new root, creating it (and its parents)
/// only where that cannot touch the host: inside a tmpfs of our own.
fn target_fd(
    root: BorrowedFd<'_>,
    target: &Path,
    creatable: bool,
    is_file: bool,
) -> io::Result<OwnedFd> {
    let rel = relative(target);
    let c = c_path(&rel)?;
    match sys::open_in_root(root, if rel.as_os_str().is_empty() { c"." } else { &c }) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && creatable => {}
        other => return other,
    }
    let mut dir = sys::open_in_root(root, c".")?;
    let parts: Vec<_> = rel.components().collect();
    for (i, part) in parts.iter().enumerate() {
        let name = part.as_os_str();
        let cname = sys::cstring(name.as_bytes())?;
        let last = i + 1 == parts.len();
        match sys::open_in_root(dir.as_fd(), &cname) {
            Ok(fd) => dir = fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                if last && is_file {
                    let f = openat(
                        dir.as_fd(),
                        name,
                        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o644),
                    )?;
                    drop(f);
                } else {
                    mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755))?;
                }
                dir = sys::open_in_root(dir.as_fd(), &cname)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

/// A read-only tmpfs holding only the device nodes a build needs, bound from the host, plus
/// a private devpts; raw disks and other devices do not exist in the sandbox.
fn build_dev(devices: &[OwnedFd]) -> io::Result<OwnedFd> {
    let dev = sys::new_fs(c"tmpfs", &[(c"mode", c"0755")], 0)?;
    for (name, src) in DEVICES.iter().zip(devices) {
        let f = openat(
            dev.as_fd(),
            *name,
            OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o666),
        )?;
        drop(f);
        sys::mount_setattr(src.as_fd(), ATTR_NOSUID | libc::MOUNT_ATTR_NOEXEC, true)?;
        let target = sys::open_in_root(dev.as_fd(), name)?;
        sys::move_mount(src.as_fd(), target.as_fd())?;
    }
    for dir in [c"pts", c"shm"] {
        mkdirat(dev.as_fd(), dir, Mode::from_bits_truncate(0o755))?;
    }
    let pts = sys::new_fs(
        c"devpts",
        &[(c"ptmxmode", c"0666"), (c"mode", c"0620")],
        ATTR_NOSUID | libc::MOUNT_ATTR_NOEXEC,
    )?;
    let target = sys::open_in_root(dev.as_fd(), c"pts")?;
    sys::move_mount(pts.as_fd(), target.as_fd())?;
    for (name, dest) in DEV_LINKS {
        nix::unistd::symlinkat(dest, dev.as_fd(), name)?;
    }
    sys::mount_setattr(dev.as_fd(), ATTR_RDONLY | ATTR_NOSUID, false)?;
    Ok(dev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(target: &str, kind: MountKind) -> Mount {
        Mount {
            target: target.into(),
            kind,
        }
    }

    #[test]
    fn order_puts_protection_over_writes_and_hiding_over_all() {
        let mut plan = vec![
            m("/ws/.git/hooks", MountKind::Bind { writable: false }),
            m("/home/u/.ssh", MountKind::HideDir),
            m("/ws/.git", MountKind::Pin),
            m("/tmp/ws", MountKind::Bind { writable: true }),
            m("/tmp", MountKind::Tmpfs { read_only: false }),
            m("/dev/shm", MountKind::Tmpfs { read_only: false }),
            m("/dev", MountKind::Dev),
            m("/proc", MountKind::Proc),
        ];
        order(&mut plan);
        let targets: Vec<_> = plan.iter().map(|m| m.target.to_str().unwrap()).collect();
        assert_eq!(
            targets,
            [
                "/dev",
                "/proc",
                "/tmp",
                "/dev/shm",
                "/tmp/ws",
                "/ws/.git",
                "/ws/.git/hooks",
                "/home/u/.ssh"
            ]
        );
    }

    #[test]
    fn a_bind_over_a_private_tmpfs_shows_the_host_again() {
        let plan = vec![
            m("/tmp", MountKind::Tmpfs { read_only: false }),
            m("/tmp/ws", MountKind::Bind { writable: true }),
            m("/tmp/ws/.git", MountKind::Pin),
        ];
        let at = |p: &str| effective(&plan, Path::new(p)).map(|m| m.kind);
        assert_eq!(
            at("/tmp/x.sock"),
            Some(MountKind::Tmpfs { read_only: false })
        );
        assert_eq!(
            at("/tmp/ws/x.sock"),
            Some(MountKind::Bind { writable: true })
        );
        assert_eq!(at("/tmp/ws/.git/x"), Some(MountKind::Pin));
        assert_eq!(at("/srv/x.sock"), None);
    }

    #[test]
    fn relative_drops_root() {
        assert_eq!(relative(Path::new("/a/b")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("/")), PathBuf::new());
    }
}
