//! Watches, from outside the sandbox, the folders holding its write-protection covers, and
//! ends the sandbox when the host replaces or removes one.
//!
//! A protected path inside a writable root is a read-only mount over the host's file. The
//! sandbox cannot rename or remove a mount point, but the host can, and the kernel then
//! detaches the mounts on it in every other namespace: `git config` or `git remote add` run
//! on the host (a lock file renamed over `.git/config`) leaves the new file writable inside a
//! running sandbox. No mount can prevent that, so cordon watches for it (inotify on each
//! cover's folder) and ends the run at the first such change (exit 125: a guarantee it could
//! not keep). A command polling for the moment may still write before the kill lands, so the
//! Git configuration files among the covers are read before the run, and the caller compares
//! what a lost one holds afterwards (the `LostCover` it is given).

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use crate::violations::{Kill, Tripwire};

/// The class a [`Kill`] for a lost cover carries.
pub const LOST_COVER: &str = "protection";

/// Git configuration files are read this far before the run (a `.git/config` is a few KiB).
const SNAPSHOT_LIMIT: u64 = 1 << 20;

/// A cover the host replaced or removed during the run, and what it held before, if it is a
/// Git configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostCover {
    pub path: PathBuf,
    pub before: Option<Vec<u8>>,
}

/// One cover: its name in its folder, its path, its inode then, and (for Git configuration)
/// its content then.
struct Cover {
    name: OsString,
    path: PathBuf,
    inode: Option<(u64, u64)>,
    before: Option<Vec<u8>>,
}

/// The watch, set up before the sandbox is made (so no change after its mounts is missed)
/// and read by cordon's wait loop.
pub struct CoverWatch {
    inotify: Inotify,
    /// Each watched folder, and the covers in it.
    folders: Vec<(WatchDescriptor, Vec<Cover>)>,
    lost: Vec<LostCover>,
}

impl CoverWatch {
    /// Watches the folders of `covers` (absolute paths of mount points inside writable
    /// roots). Fails when inotify cannot be had (the per-user limits), which the caller
    /// treats as a guarantee it cannot keep.
    pub fn start(covers: &[PathBuf]) -> io::Result<CoverWatch> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
        let mut folders: Vec<(PathBuf, WatchDescriptor, Vec<_>)> = Vec::new();
        let events = AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_ONLYDIR
            | AddWatchFlags::IN_DONT_FOLLOW;
        for cover in covers {
            let (Some(folder), Some(name)) = (cover.parent(), cover.file_name()) else {
                continue;
            };
            let entry = Cover {
                name: name.to_os_string(),
                path: cover.clone(),
                inode: inode(cover),
                before: snapshot(cover),
            };
            match folders.iter_mut().find(|(f, _, _)| f == folder) {
                Some((_, _, names)) => names.push(entry),
                None => {
                    let wd = inotify.add_watch(folder, events)?;
                    folders.push((folder.to_path_buf(), wd, vec![entry]));
                }
            }
        }
        Ok(CoverWatch {
            inotify,
            folders: folders.into_iter().map(|(_, wd, n)| (wd, n)).collect(),
            lost: Vec::new(),
        })
    }

    /// What the wait loop polls.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Reads what is queued; at the first lost cover, trips the sandbox. When the queue
    /// overflowed (events were dropped), every cover whose inode changed counts as lost.
    pub fn check(&mut self, tripwire: &Tripwire) {
        let mut hit: Vec<PathBuf> = Vec::new();
        while let Ok(events) = self.inotify.read_events() {
            if events.is_empty() {
                break;
            }
            for event in events {
                if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    let all = self.folders.iter().flat_map(|(_, covers)| covers);
                    hit.extend(
                        all.filter(|c| inode(&c.path) != c.inode)
                            .map(|c| c.path.clone()),
                    );
                    continue;
                }
                let Some(name) = &event.name else { continue };
                let folder = self.folders.iter().find(|(wd, _)| *wd == event.wd);
                if let Some(c) =
                    folder.and_then(|(_, covers)| covers.iter().find(|c| &c.name == name))
                {
                    hit.push(c.path.clone());
                }
            }
        }
        for path in hit {
            self.lose(&path, tripwire);
        }
    }

    fn lose(&mut self, path: &Path, tripwire: &Tripwire) {
        if self.lost.iter().any(|l| l.path == path) {
            return;
        }
        tripwire.trip(Kill {
            class: LOST_COVER,
            what: format!(
                "{} was replaced or removed outside the sandbox, which ends its protection inside",
                path.display()
            ),
        });
        let before = self
            .folders
            .iter()
            .flat_map(|(_, covers)| covers)
            .find(|c| c.path == path)
            .and_then(|c| c.before.clone());
        self.lost.push(LostCover {
            path: path.to_path_buf(),
            before,
        });
    }

    /// The covers lost so far.
    pub fn lost(self) -> Vec<LostCover> {
        self.lost
    }
}

/// The device and inode at `path` (not following a link), if there is anything there.
fn inode(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// A Git configuration file's bytes, to compare with what a lost cover holds afterwards.
fn snapshot(cover: &Path) -> Option<Vec<u8>> {
    let name = cover.file_name()?.to_str()?;
    if !matches!(name, "config" | "config.worktree") {
        return None;
    }
    let meta = std::fs::symlink_metadata(cover).ok()?;
    if !meta.is_file() || meta.len() > SNAPSHOT_LIMIT {
        return None;
    }
    std::fs::read(cover).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cover_renamed_over_on_the_host_is_lost_and_others_are_not() {
        let dir = std::env::temp_dir().join(format!("cordon-covers-{}", std::process::id()));
        let git = dir.join(".git");
        std::fs::create_dir_all(&git).unwrap();
        std::fs::write(git.join("config"), "[core]\n").unwrap();
        std::fs::write(dir.join(".cordon.toml"), "").unwrap();
        let covers = [git.join("config"), dir.join(".cordon.toml")];
        let mut watch = CoverWatch::start(&covers).unwrap();
        // Ordinary work beside the covers is not a loss.
        std::fs::write(git.join("index.lock"), "").unwrap();
        std::fs::remove_file(git.join("index.lock")).unwrap();
        // `git config` on the host: a lock file renamed over the config.
        std::fs::write(git.join("config.lock"), "[core]\n[remote \"o\"]\n").unwrap();
        std::fs::rename(git.join("config.lock"), git.join("config")).unwrap();
        // A tripwire on a child that is ours to kill.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let tripwire = Tripwire::new(child.id() as i32).unwrap();
        watch.check(&tripwire);
        let status = child.wait().unwrap();
        assert!(!status.success(), "the sandbox was not ended");
        let kill = tripwire.reason().unwrap();
        assert_eq!(kill.class, LOST_COVER);
        assert_eq!(
            watch.lost(),
            [LostCover {
                path: git.join("config"),
                before: Some(b"[core]\n".to_vec()),
            }]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
