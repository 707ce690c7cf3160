//! Resource limits of one run: a cgroup for the whole tree (v2 where a subtree is delegated to
//! us, else the v1 memory, pids and cpu hierarchies), rlimits that init sets before it forks
//! the command, and, after the run, which limit tripped.
//!
//! Fail closed: a memory, cpu or pids limit that no cgroup can hold is refused, unless the
//! user accepted per-process rlimits for memory and pids (`allow_rlimits`). The timeout needs
//! no kernel help: cordon kills the sandbox (see `spawn.rs`).

mod cgroup;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::sys;
use cgroup::{Cgroup, Failed};

/// The limits asked for, as plain data from the CLI; `None`: no limit of that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of memory for the whole tree, swap included.
    pub memory: Option<u64>,
    /// CPU time per wall-clock time, in thousandths of a core.
    pub cpu_millicores: Option<u64>,
    /// Processes and threads of the command's tree alive at once (init is not counted).
    pub pids: Option<u64>,
    /// Wall-clock time from exec; then cordon kills the sandbox.
    pub timeout: Option<Duration>,
    /// RLIMIT_FSIZE, soft and hard; `None` inherits the caller's.
    pub file_size: Option<u64>,
    /// RLIMIT_NOFILE, soft and hard; `None` inherits the caller's.
    pub open_files: Option<u64>,
    /// Where no cgroup can be made, hold memory and pids with rlimits (RLIMIT_AS per process,
    /// RLIMIT_NPROC per user in the sandbox) instead of refusing. Only when the user said so.
    pub allow_rlimits: bool,
}

/// What holds the tree-wide limits (memory, cpu, pids) of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// None of them was asked for.
    Nothing,
    /// One cgroup v2 directory with these controllers.
    CgroupV2(Vec<&'static str>),
    /// A directory in each of these v1 hierarchies.
    CgroupV1(Vec<&'static str>),
    /// rlimits stand in, because no cgroup could be made (the reason).
    Rlimits(String),
}

/// A limit that tripped during the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trip {
    /// The wall-clock limit passed; cordon killed the sandbox.
    Timeout,
    /// The kernel's OOM killer killed `kills` processes in the cgroup; `peak` bytes used.
    Memory { kills: u64, peak: Option<u64> },
    /// The kernel refused `refused` forks at the process limit.
    Pids { refused: u64 },
    /// The command died of SIGXFSZ (or reported a child that did, 153) with a file-size limit.
    FileSize,
}

/// Why the limits asked for cannot be enforced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// A limit needs a cgroup and none could be made.
    #[error("{what} cannot be enforced here: {why}")]
    NoCgroup {
        what: String,
        why: String,
        /// Whether per-process rlimits could stand in (with `allow_rlimits`).
        fallback: bool,
    },
    /// The cgroup was made but a limit could not be written into it.
    #[error("cgroup {}: {source}", path.display())]
    Cgroup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl LimitError {
    /// The fix to suggest.
    pub fn hint(&self) -> Option<String> {
        match self {
            LimitError::NoCgroup { fallback, .. } => {
                let mut h = String::from(CGROUP_FIX);
                if *fallback {
                    h.push_str("; or pass --allow-weaker to hold --memory and --pids with per-process rlimits instead");
                }
                Some(h)
            }
            LimitError::Cgroup { .. } => None,
        }
    }
}

/// How to get a cgroup cordon may manage.
pub const CGROUP_FIX: &str = "run cordon as root, or in a systemd user scope with a delegated \
cgroup: `systemd-run --user --scope -p Delegate=yes cordon run ...` (needs cgroup v2)";

/// The limits of one run as set up on the host: the cgroup (removed on drop, after killing
/// whatever is left in it) and the rlimits init applies.
#[derive(Debug)]
pub struct Enforcement {
    pub limits: Limits,
    mechanism: Mechanism,
    cgroup: Option<Cgroup>,
    rlimits: Vec<Rlimit>,
}

/// One rlimit for init to set: (resource, soft and hard value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: libc::c_int,
    pub value: u64,
}

impl Enforcement {
    /// Sets up what `limits` need on the host: the cgroup when a memory, cpu or pids limit is
    /// asked for (or the rlimits standing in for it, when allowed), and the rlimits that always
    /// apply (no core files; file size and open files when set).
    pub fn set_up(limits: &Limits) -> Result<Enforcement, LimitError> {
        let wanted = controllers(limits);
        let mut rlimits = vec![Rlimit {
            resource: libc::RLIMIT_CORE as libc::c_int,
            value: 0,
        }];
        if let Some(v) = limits.file_size {
            rlimits.push(clamped(libc::RLIMIT_FSIZE as libc::c_int, v));
        }
        if let Some(v) = limits.open_files {
            rlimits.push(clamped(libc::RLIMIT_NOFILE as libc::c_int, v));
        }
        let mut out = Enforcement {
            limits: limits.clone(),
            mechanism: Mechanism::Nothing,
            cgroup: None,
            rlimits,
        };
        if wanted.is_empty() {
            return Ok(out);
        }
        let why = match Cgroup::create(limits, &wanted) {
            Ok(cg) => {
                out.mechanism = cg.mechanism();
                out.cgroup = Some(cg);
                return Ok(out);
            }
            Err(Failed::Write(path, source)) => return Err(LimitError::Cgroup { path, source }),
            Err(Failed::Unavailable(why)) => why,
        };
        let what = describe_wanted(limits);
        let root = is_root();
        if limits.cpu_millicores.is_some() || (root && limits.pids.is_some()) {
            let why = if limits.cpu_millicores.is_some() {
                format!("{why}; a CPU limit has no per-process stand-in")
            } else {
                format!("{why}; RLIMIT_NPROC does not bind root, so nothing can stand in")
            };
            return Err(LimitError::NoCgroup {
                what,
                why,
                fallback: false,
            });
        }
        if !limits.allow_rlimits {
            return Err(LimitError::NoCgroup {
                what,
                why,
                fallback: true,
            });
        }
        if let Some(v) = limits.memory {
            out.rlimits.push(clamped(libc::RLIMIT_AS as libc::c_int, v));
        }
        if let Some(v) = limits.pids {
            // init lives in the sandbox's user namespace too, hence the one extra.
            out.rlimits.push(clamped(
                libc::RLIMIT_NPROC as libc::c_int,
                v.saturating_add(1),
            ));
        }
        out.mechanism = Mechanism::Rlimits(why);
        Ok(out)
    }

    pub fn mechanism(&self) -> &Mechanism {
        &self.mechanism
    }

    /// The rlimits init sets on itself before forking the command (the tree inherits them).
    pub(crate) fn rlimits(&self) -> &[Rlimit] {
        &self.rlimits
    }

    /// Puts the sandbox's first process into the cgroup. Called by cordon while that process
    /// waits for the go-ahead, so nothing runs outside the limits.
    pub(crate) fn place(&self, pid: libc::pid_t) -> io::Result<()> {
        match &self.cgroup {
            Some(cg) => cg.place(pid),
            None => Ok(()),
        }
    }

    /// Kills every process left in the cgroup (the whole tree, even in Landlock-only mode).
    pub(crate) fn kill_all(&self) {
        if let Some(cg) = &self.cgroup {
            cg.kill_all();
        }
    }

    /// Whether tripped limits are read from a cgroup (then cordon must wait for init to be
    /// gone before reading them and removing the cgroup).
    pub(crate) fn has_cgroup(&self) -> bool {
        self.cgroup.is_some()
    }

    /// The limits that tripped, from the cgroup's counters and how the command ended (its
    /// signal, or its exit code: a shell reports a child killed by SIGXFSZ as 128+SIGXFSZ).
    pub(crate) fn trips(&self, signal: Option<i32>, exit_code: i32) -> Vec<Trip> {
        let mut out = Vec::new();
        if let Some(cg) = &self.cgroup {
            out.extend(cg.trips());
        }
        let xfsz = signal == Some(libc::SIGXFSZ) || exit_code == 128 + libc::SIGXFSZ;
        if xfsz && self.limits.file_size.is_some() {
            out.push(Trip::FileSize);
        }
        out
    }
}

fn is_root() -> bool {
    nix::unistd::getuid().is_root()
}

fn clamped(resource: libc::c_int, value: u64) -> Rlimit {
    // Never above the caller's hard limit: an unprivileged setrlimit could not raise it anyway.
    let hard = sys::rlimit(resource, None).map_or(u64::MAX, |(_, hard)| hard);
    Rlimit {
        resource,
        value: value.min(hard),
    }
}

/// Sets the rlimits on the calling process (init, or the command's process in Landlock-only
/// mode). Soft and hard alike, so the command cannot raise them back. No allocation.
pub(crate) fn apply(rlimits: &[Rlimit]) -> io::Result<()> {
    for r in rlimits {
        sys::rlimit(r.resource, Some((r.value, r.value)))?;
    }
    Ok(())
}

/// "memory and pids limits" for the limits that need a cgroup.
fn describe_wanted(limits: &Limits) -> String {
    let names: Vec<&str> = [
        ("memory", limits.memory.is_some()),
        ("cpu", limits.cpu_millicores.is_some()),
        ("pids", limits.pids.is_some()),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(n, _)| *n)
    .collect();
    let s = if names.len() == 1 { "" } else { "s" };
    format!("the {} limit{s}", names.join(" and "))
}

/// The controllers the limits need (v2 names; on v1 `cpuacct` comes along for accounting).
fn controllers(limits: &Limits) -> Vec<&'static str> {
    let mut out = Vec::new();
    if limits.memory.is_some() {
        out.push("memory");
    }
    if limits.pids.is_some() {
        out.push("pids");
    }
    if limits.cpu_millicores.is_some() {
        out.push("cpu");
    }
    out
}

/// What `cordon doctor` says about limits on this machine: the mechanism a run would use for
/// memory, cpu and pids, tried for real (a cgroup made and removed at once).
pub fn probe() -> Mechanism {
    match Cgroup::create(&Limits::default(), &["memory", "pids", "cpu"]) {
        Ok(cg) => cg.mechanism(),
        Err(Failed::Unavailable(why)) => Mechanism::Rlimits(why),
        Err(Failed::Write(path, e)) => Mechanism::Rlimits(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_needs_a_cgroup() {
        let l = Limits {
            memory: Some(1),
            pids: Some(1),
            ..Limits::default()
        };
        assert_eq!(describe_wanted(&l), "the memory and pids limits");
        assert_eq!(controllers(&l), ["memory", "pids"]);
        assert!(controllers(&Limits {
            timeout: Some(Duration::from_secs(1)),
            ..Limits::default()
        })
        .is_empty());
    }
}
