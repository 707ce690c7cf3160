//! The Landlock-only mode, for machines without unprivileged user namespaces. Used only when
//! the user named it (`--allow-weaker`): writes are still confined, the deny-read set outside
//! writable roots stays unreadable (Landlock, which cannot hide names) and TCP is closed when
//! the network is off, but protected paths, processes and other sockets are not isolated.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::exec::{confine_and_exec, CommandFds, Prepared};
use crate::landlock_rules::Extra;
use crate::Plan;

/// The command's process in Landlock-only mode; never returns.
pub fn main(
    plan: &Plan,
    writable: &[PathBuf],
    prepared: &Prepared,
    landlock: bool,
    fds: CommandFds,
) -> ! {
    crate::init::reset_signals();
    let extra = Extra {
        deny_tcp: plan.spec.net.isolated(),
        scope: true,
    };
    // Landlock is the only wall here, for the deny-read set as for writes.
    confine_and_exec(prepared, writable, &plan.read_denied, extra, landlock, fds)
}

/// A per-run temporary directory (mode 0700) that replaces the shared /tmp; removed on drop.
pub struct PrivateTmp(PathBuf);

impl PrivateTmp {
    pub fn create() -> io::Result<PrivateTmp> {
        let base = std::env::temp_dir();
        for attempt in 0..100u32 {
            let p = base.join(format!("cordon-tmp-{}-{attempt}", std::process::id()));
            match fs::DirBuilder::new().mode(0o700).create(&p) {
                Ok(()) => return Ok(PrivateTmp(p)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::from(io::ErrorKind::AlreadyExists))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The plan's writable roots with the shared /tmp, /var/tmp and /dev/shm swapped for `tmp`.
pub fn writable(plan: &Plan, tmp: &Path) -> Vec<PathBuf> {
    let shared = [
        Path::new("/tmp"),
        Path::new("/var/tmp"),
        Path::new("/dev/shm"),
    ];
    let mut out: Vec<PathBuf> = plan
        .writable
        .iter()
        .filter(|p| !shared.contains(&p.as_path()))
        .cloned()
        .collect();
    out.push(tmp.to_path_buf());
    out
}

/// The environment with TMPDIR (and its common aliases) pointing at `tmp`.
pub fn env_with_tmpdir(env: &[(OsString, OsString)], tmp: &Path) -> Vec<(OsString, OsString)> {
    let names = ["TMPDIR", "TMP", "TEMP"];
    let mut out: Vec<(OsString, OsString)> = env
        .iter()
        .filter(|(k, _)| !names.iter().any(|n| k == n))
        .cloned()
        .collect();
    for n in names {
        out.push((n.into(), tmp.as_os_str().to_owned()));
    }
    out
}
