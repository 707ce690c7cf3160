//! Watches, from outside the sandbox, the write-protection covers, and ends the sandbox when
//! the host replaces or removes one.
//!
//! A protected path inside a writable root is a read-only mount over the host's file. The
//! sandbox cannot rename or remove a mount point, but the host can, and the kernel then
//! detaches the mounts on it in every other namespace: `git config` or `git remote add` run
//! on the host (a lock file renamed over `.git/config`) leaves the new file writable inside a
//! running sandbox. No mount can prevent that, so cordon looks at every cover's identity
//! (device, inode, birth time) while the command runs, every [`INTERVAL`], and at the end,
//! and ends the run at the first change (exit 125: a guarantee it could not keep). A
//! command polling for the moment writes before any kill could land, so the Git
//! configuration files among the covers are read before the run, and the caller compares
//! what a lost one holds afterwards (the `LostCover` it is given).
//!
//! Not inotify: an inotify instance with a watch costs 7-20 ms to close (the kernel waits
//! for an SRCU grace period), and back-to-back runs queued behind each other's (measured:
//! 7 ms runs became 23 ms).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::violations::{Kill, Tripwire};

/// The class a [`Kill`] for a lost cover carries.
pub const LOST_COVER: &str = "protection";

/// How often the covers are looked at while the command runs.
pub const INTERVAL: Duration = Duration::from_millis(50);

/// Git configuration files are read this far before the run (a `.git/config` is a few KiB).
const SNAPSHOT_LIMIT: u64 = 1 << 20;

/// A cover the host replaced or removed during the run, and what it held before, if it is a
/// Git configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostCover {
    pub path: PathBuf,
    pub before: Option<Vec<u8>>,
}

/// What makes a file the same file: replaced by a rename, it is another inode (and a reused
/// inode number is born later).
type Identity = Option<(u64, u64, Option<SystemTime>)>;

/// One cover: its path, its identity then, and (for Git configuration) its content then.
struct Cover {
    path: PathBuf,
    identity: Identity,
    before: Option<Vec<u8>>,
}

/// The covers as they were before the sandbox was made (so no change after its mounts is
/// missed), looked at by cordon's wait loop.
pub struct CoverWatch {
    covers: Vec<Cover>,
    lost: Vec<LostCover>,
}

impl CoverWatch {
    /// Records `covers` (absolute paths of mount points inside writable roots).
    pub fn start(covers: &[PathBuf]) -> CoverWatch {
        let covers = covers
            .iter()
            .map(|path| Cover {
                path: path.clone(),
                identity: identity(path),
                before: snapshot(path),
            })
            .collect();
        CoverWatch {
            covers,
            lost: Vec::new(),
        }
    }

    /// Whether there is anything to look at.
    pub fn is_empty(&self) -> bool {
        self.covers.is_empty()
    }

    /// Looks at every cover; at the first lost one, trips the sandbox.
    pub fn check(&mut self, tripwire: &Tripwire) {
        for cover in &self.covers {
            if identity(&cover.path) == cover.identity
                || self.lost.iter().any(|l| l.path == cover.path)
            {
                continue;
            }
            tripwire.trip(Kill {
                class: LOST_COVER,
                what: format!(
                    "{} was replaced or removed outside the sandbox, which ends its protection inside",
                    cover.path.display()
                ),
            });
            self.lost.push(LostCover {
                path: cover.path.clone(),
                before: cover.before.clone(),
            });
        }
    }

    /// The covers lost so far.
    pub fn lost(self) -> Vec<LostCover> {
        self.lost
    }
}

/// The device, inode and birth time at `path` (not following a link), if anything is there.
fn identity(path: &Path) -> Identity {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.created().ok()))
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
        let mut watch = CoverWatch::start(&covers);
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
