//! The run's cgroup: found below cordon's own cgroup (v2 when the controllers are delegated
//! there, else one directory in each v1 hierarchy), limits written into it, the sandbox put
//! into it, its counters read afterwards, and everything in it killed before it is removed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{is_root, Limits, Mechanism, Trip};

const CPU_PERIOD_US: u64 = 100_000;

/// The files and values that set `limits` in a v1 hierarchy of `controller`, in order.
pub(super) fn settings_v1(controller: &str, limits: &Limits) -> Vec<(&'static str, String, bool)> {
    // (file, value, required): optional files exist only on some kernels or configurations.
    match controller {
        "memory" => limits.memory.map_or(Vec::new(), |m| {
            // memsw must not be below the memory limit, so it comes second; with it, swap
            // cannot be used to go past the limit.
            vec![
                ("memory.limit_in_bytes", m.to_string(), true),
                ("memory.memsw.limit_in_bytes", m.to_string(), false),
            ]
        }),
        "pids" => limits.pids.map_or(Vec::new(), |p| {
            vec![("pids.max", p.saturating_add(1).to_string(), true)]
        }),
        "cpu" => limits.cpu_millicores.map_or(Vec::new(), |c| {
            vec![
                ("cpu.cfs_period_us", CPU_PERIOD_US.to_string(), true),
                ("cpu.cfs_quota_us", quota_us(c).to_string(), true),
            ]
        }),
        _ => Vec::new(),
    }
}

/// The files and values that set `limits` in a v2 cgroup, in order.
pub(super) fn settings_v2(limits: &Limits) -> Vec<(&'static str, String, bool)> {
    let mut out = Vec::new();
    if let Some(m) = limits.memory {
        out.push(("memory.max", m.to_string(), true));
        out.push(("memory.swap.max", "0".into(), false));
        // When the OOM killer fires, it kills the whole cgroup, not one process of it.
        out.push(("memory.oom.group", "1".into(), false));
    }
    if let Some(p) = limits.pids {
        out.push(("pids.max", p.saturating_add(1).to_string(), true));
    }
    if let Some(c) = limits.cpu_millicores {
        out.push(("cpu.max", format!("{} {CPU_PERIOD_US}", quota_us(c)), true));
    }
    out
}

fn quota_us(millicores: u64) -> u64 {
    // The kernel's smallest quota is 1 ms per period.
    (millicores.saturating_mul(CPU_PERIOD_US) / 1000).max(1000)
}

/// The cgroup mounts and this process's place in them.
#[derive(Debug, Clone, Default)]
struct Host {
    /// The v2 mount point, and the cgroup path its root shows.
    v2: Option<(PathBuf, String)>,
    /// v1 mounts: (mount point, cgroup path of its root, controllers).
    v1: Vec<(PathBuf, String, Vec<String>)>,
    /// /proc/self/cgroup.
    own: String,
}

impl Host {
    fn read() -> Host {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Host::parse(&mountinfo, &own)
    }

    fn parse(mountinfo: &str, own: &str) -> Host {
        let mut host = Host {
            own: own.to_string(),
            ..Host::default()
        };
        for line in mountinfo.lines() {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            let (Some(root), Some(point), Some(fstype)) = (l.get(3), l.get(4), r.first()) else {
                continue;
            };
            let point = PathBuf::from(unescape(point));
            match *fstype {
                "cgroup2" => host.v2 = Some((point, root.to_string())),
                "cgroup" => {
                    let ctrls = r
                        .get(2)
                        .map(|o| o.split(',').map(String::from).collect())
                        .unwrap_or_default();
                    host.v1.push((point, root.to_string(), ctrls));
                }
                _ => {}
            }
        }
        host
    }

    /// Our cgroup directory in the hierarchy with `controller` (`None`: the v2 one).
    fn own_dir(&self, controller: Option<&str>) -> Option<PathBuf> {
        let (point, root) = match controller {
            None => self.v2.as_ref().map(|(p, r)| (p.clone(), r.clone()))?,
            Some(c) => self
                .v1
                .iter()
                .find(|(_, _, ctrls)| ctrls.iter().any(|x| x == c))
                .map(|(p, r, _)| (p.clone(), r.clone()))?,
        };
        let path = self.own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (id, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            let hit = match controller {
                None => id == "0" && ctrls.is_empty(),
                Some(c) => ctrls.split(',').any(|x| x == c),
            };
            hit.then(|| path.to_string())
        })?;
        // The mount shows the hierarchy from `root` down (a container may see only a subtree).
        let rel = Path::new(&path).strip_prefix(&root).ok()?;
        if rel.as_os_str().is_empty() {
            Some(point)
        } else {
            Some(point.join(rel))
        }
    }
}

/// mountinfo escapes spaces and a few other bytes as `\ooo`.
fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) enum Failed {
    /// No cgroup can be made here (the reason, for the user).
    Unavailable(String),
    /// A cgroup was made but a limit could not be set: a fault, not a missing feature.
    Write(PathBuf, io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// The cgroup directories of one run.
#[derive(Debug)]
pub(super) struct Cgroup {
    version: Version,
    /// One per v1 hierarchy (memory, pids, cpu, cpuacct), or the single v2 directory.
    dirs: Vec<(&'static str, PathBuf)>,
    /// v2: cordon moved itself into a leaf so controllers could be enabled; undone on drop.
    moved: Option<Moved>,
}

#[derive(Debug)]
struct Moved {
    base: PathBuf,
    leaf: PathBuf,
    enabled: Vec<&'static str>,
}

fn name() -> String {
    format!("cordon-{}", std::process::id())
}

impl Cgroup {
    /// Makes the run's cgroup with `wanted` controllers and writes `limits` into it.
    pub(super) fn create(limits: &Limits, wanted: &[&'static str]) -> Result<Cgroup, Failed> {
        Cgroup::create_in(&Host::read(), limits, wanted)
    }

    fn create_in(host: &Host, limits: &Limits, wanted: &[&'static str]) -> Result<Cgroup, Failed> {
        let mut reasons = Vec::new();
        // v2: below cordon's own cgroup (delegated to the user, or root's); root may also use
        // the hierarchy's root, where controllers are enabled and processes allowed.
        let mut bases: Vec<PathBuf> = host.own_dir(None).into_iter().collect();
        if let Some((point, root)) = host.v2.as_ref().filter(|_| is_root()) {
            if root == "/" && !bases.contains(point) {
                bases.push(point.clone());
            }
        }
        for base in bases {
            let available = fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
            let missing: Vec<&str> = wanted
                .iter()
                .copied()
                .filter(|c| !available.split_whitespace().any(|a| a == *c))
                .collect();
            if missing.is_empty() {
                match Cgroup::create_v2(&base, limits, wanted) {
                    Ok(cg) => return Ok(cg),
                    Err(Failed::Unavailable(why)) => reasons.push(why),
                    Err(e) => return Err(e),
                }
            } else if host.v1.is_empty() {
                reasons.push(format!(
                    "cgroup v2 controller{} {} not delegated to {}",
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", "),
                    base.display()
                ));
            }
        }
        if !host.v1.is_empty() {
            match Cgroup::create_v1(host, limits, wanted) {
                Ok(cg) => return Ok(cg),
                Err(Failed::Unavailable(why)) => reasons.push(why),
                Err(e) => return Err(e),
            }
        }
        if reasons.is_empty() {
            reasons.push("this system has no cgroup file system mounted".into());
        }
        Err(Failed::Unavailable(reasons.join("; ")))
    }

    fn create_v1(host: &Host, limits: &Limits, wanted: &[&'static str]) -> Result<Cgroup, Failed> {
        let mut ctrls: Vec<&'static str> = wanted.to_vec();
        if wanted.contains(&"cpu") && host.own_dir(Some("cpuacct")).is_some() {
            ctrls.push("cpuacct"); // CPU accounting, where it is a separate hierarchy
        }
        let mut cg = Cgroup {
            version: Version::V1,
            dirs: Vec::new(),
            moved: None,
        };
        for c in ctrls {
            let Some(parent) = host.own_dir(Some(c)) else {
                return Err(Failed::Unavailable(format!(
                    "no cgroup v1 hierarchy has the {c} controller"
                )));
            };
            if let Some((_, same)) = cg.dirs.iter().find(|(_, d)| d.parent() == Some(&parent)) {
                let same = same.clone();
                cg.dirs.push((c, same)); // co-mounted with a controller already handled
                continue;
            }
            let dir = make_dir(&parent).map_err(|e| {
                Failed::Unavailable(format!(
                    "cannot create a cgroup in {}: {}",
                    parent.display(),
                    e.kind()
                ))
            })?;
            cg.dirs.push((c, dir));
        }
        for (c, dir) in &cg.dirs {
            for (file, value, required) in settings_v1(c, limits) {
                write_setting(dir, file, &value, required)?;
            }
        }
        Ok(cg)
    }

    fn create_v2(base: &Path, limits: &Limits, wanted: &[&'static str]) -> Result<Cgroup, Failed> {
        let unavailable = |what: &str, e: io::Error| {
            Failed::Unavailable(format!(
                "cgroup v2: {what} {}: {}",
                base.display(),
                e.kind()
            ))
        };
        let mut moved = None;
        let enabled = fs::read_to_string(base.join("cgroup.subtree_control")).unwrap_or_default();
        let to_enable: Vec<&'static str> = wanted
            .iter()
            .copied()
            .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
            .collect();
        if !to_enable.is_empty() {
            match enable(base, &to_enable) {
                Ok(()) => {}
                // "No internal processes": cordon's own cgroup holds processes. When cordon
                // is the only one (a scope made for it), it moves into a leaf of its own.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    let procs = fs::read_to_string(base.join("cgroup.procs")).unwrap_or_default();
                    let me = std::process::id().to_string();
                    if procs.split_whitespace().any(|p| p != me) {
                        return Err(Failed::Unavailable(format!(
                            "cgroup v2: {} holds other processes, so controllers cannot be enabled below it; start cordon in a scope of its own",
                            base.display()
                        )));
                    }
                    let leaf = make_dir_named(base, &format!("{}-self", name()))
                        .map_err(|e| unavailable("cannot create a cgroup in", e))?;
                    let m = Moved {
                        base: base.to_path_buf(),
                        leaf: leaf.clone(),
                        enabled: to_enable.clone(),
                    };
                    fs::write(leaf.join("cgroup.procs"), &me)
                        .and_then(|_| enable(base, &to_enable))
                        .map_err(|e| {
                            m.undo();
                            unavailable("cannot enable controllers in", e)
                        })?;
                    moved = Some(m);
                }
                Err(e) => return Err(unavailable("cannot enable controllers in", e)),
            }
        }
        let mut cg = Cgroup {
            version: Version::V2,
            dirs: Vec::new(),
            moved,
        };
        let dir = match make_dir(base) {
            Ok(d) => d,
            Err(e) => return Err(unavailable("cannot create a cgroup in", e)),
        };
        cg.dirs = wanted.iter().map(|c| (*c, dir.clone())).collect();
        for (file, value, required) in settings_v2(limits) {
            write_setting(&dir, file, &value, required)?;
        }
        Ok(cg)
    }

    pub(super) fn mechanism(&self) -> Mechanism {
        let ctrls = self.dirs.iter().map(|(c, _)| *c).collect();
        match self.version {
            Version::V1 => Mechanism::CgroupV1(ctrls),
            Version::V2 => Mechanism::CgroupV2(ctrls),
        }
    }

    fn unique_dirs(&self) -> Vec<&PathBuf> {
        let mut out: Vec<&PathBuf> = Vec::new();
        for (_, d) in &self.dirs {
            if !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }

    fn dir(&self, controller: &str) -> Option<&PathBuf> {
        self.dirs
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, d)| d)
    }

    pub(super) fn place(&self, pid: libc::pid_t) -> io::Result<()> {
        for d in self.unique_dirs() {
            fs::write(d.join("cgroup.procs"), pid.to_string())
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", d.display())))?;
        }
        Ok(())
    }

    pub(super) fn kill_all(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        for d in self.unique_dirs() {
            if self.version == Version::V2 && fs::write(d.join("cgroup.kill"), "1").is_ok() {
                continue;
            }
            // v1 (or v2 before 5.14): kill what is listed until nothing is left.
            loop {
                let procs = fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                let pids: Vec<i32> = procs
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect();
                if pids.is_empty() || Instant::now() > deadline {
                    break;
                }
                for p in pids {
                    let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    pub(super) fn trips(&self) -> Vec<Trip> {
        let mut out = Vec::new();
        if let Some(d) = self.dir("memory") {
            let (events, peak) = match self.version {
                Version::V1 => ("memory.oom_control", "memory.max_usage_in_bytes"),
                Version::V2 => ("memory.events", "memory.peak"),
            };
            let kills = counter(&d.join(events), "oom_kill");
            if kills > 0 {
                let peak = fs::read_to_string(d.join(peak))
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                out.push(Trip::Memory { kills, peak });
            }
        }
        if let Some(d) = self.dir("pids") {
            let refused = counter(&d.join("pids.events"), "max");
            if refused > 0 {
                out.push(Trip::Pids { refused });
            }
        }
        out
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        for d in self.unique_dirs() {
            // The last process leaves its cgroup an instant after it is reaped.
            let deadline = Instant::now() + Duration::from_secs(2);
            while fs::remove_dir(d).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        if let Some(m) = &self.moved {
            m.undo();
        }
    }
}

impl Moved {
    /// Back to where cordon started: controllers off again, cordon back in its cgroup.
    fn undo(&self) {
        let off: Vec<String> = self.enabled.iter().map(|c| format!("-{c}")).collect();
        let _ = fs::write(self.base.join("cgroup.subtree_control"), off.join(" "));
        let _ = fs::write(
            self.base.join("cgroup.procs"),
            std::process::id().to_string(),
        );
        let _ = fs::remove_dir(&self.leaf);
    }
}

fn enable(base: &Path, ctrls: &[&str]) -> io::Result<()> {
    let on: Vec<String> = ctrls.iter().map(|c| format!("+{c}")).collect();
    fs::write(base.join("cgroup.subtree_control"), on.join(" "))
}

/// Creates `parent/cordon-PID`, removing first what a dead cordon left behind there.
fn make_dir(parent: &Path) -> io::Result<PathBuf> {
    sweep_stale(parent);
    make_dir_named(parent, &name())
}

fn make_dir_named(parent: &Path, name: &str) -> io::Result<PathBuf> {
    let dir = parent.join(name);
    match fs::create_dir(&dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_dir(&dir)?;
            fs::create_dir(&dir)?;
        }
        other => other?,
    }
    Ok(dir)
}

/// Removes empty `cordon-PID` cgroups whose cordon is gone (killed before it could clean up).
fn sweep_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("cordon-"))
            .map(|n| n.trim_end_matches("-self"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = fs::remove_dir(e.path()); // fails, harmlessly, unless it is empty
        }
    }
}

fn write_setting(dir: &Path, file: &str, value: &str, required: bool) -> Result<(), Failed> {
    let path = dir.join(file);
    match fs::OpenOptions::new().write(true).open(&path) {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(value.as_bytes())
                .map_err(|e| Failed::Write(path, e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && !required => Ok(()),
        Err(e) => Err(Failed::Write(path, e)),
    }
}

/// The value of `key N` in a flat-keyed cgroup file; 0 when absent.
fn counter(file: &Path, key: &str) -> u64 {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
37 30 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
38 30 0:34 /sub /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio
";
    const OWN: &str =
        "8:pids:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/user\n7:blkio:/sub/x\n0::/\n";

    #[test]
    fn finds_own_cgroup_in_each_hierarchy() {
        let h = Host::parse(MOUNTINFO, OWN);
        assert_eq!(
            h.own_dir(Some("memory")).unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/abc")
        );
        assert_eq!(
            h.own_dir(Some("pids")).unwrap(),
            Path::new("/sys/fs/cgroup/pids")
        );
        assert_eq!(
            h.own_dir(Some("cpuacct")).unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/user")
        );
        assert_eq!(
            h.own_dir(Some("blkio")).unwrap(),
            Path::new("/sys/fs/cgroup/blkio/x")
        );
        assert_eq!(
            h.own_dir(None).unwrap(),
            Path::new("/sys/fs/cgroup/unified")
        );
        assert_eq!(h.own_dir(Some("hugetlb")), None);
    }

    #[test]
    fn limits_become_cgroup_files() {
        let l = Limits {
            memory: Some(64 << 20),
            pids: Some(64),
            cpu_millicores: Some(500),
            ..Limits::default()
        };
        let v1: Vec<_> = ["memory", "pids", "cpu"]
            .iter()
            .flat_map(|c| settings_v1(c, &l))
            .map(|(f, v, _)| format!("{f}={v}"))
            .collect();
        assert_eq!(
            v1,
            [
                "memory.limit_in_bytes=67108864",
                "memory.memsw.limit_in_bytes=67108864",
                "pids.max=65",
                "cpu.cfs_period_us=100000",
                "cpu.cfs_quota_us=50000"
            ]
        );
        let v2: Vec<_> = settings_v2(&l)
            .into_iter()
            .map(|(f, v, _)| format!("{f}={v}"))
            .collect();
        assert_eq!(
            v2,
            [
                "memory.max=67108864",
                "memory.swap.max=0",
                "memory.oom.group=1",
                "pids.max=65",
                "cpu.max=50000 100000"
            ]
        );
        assert_eq!(quota_us(1), 1000, "the kernel's minimum quota");
        assert_eq!(quota_us(2000), 200_000);
    }

    #[test]
    fn counters_and_escapes() {
        let dir = std::env::temp_dir().join(format!("cordon-limits-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let f = dir.join("memory.oom_control");
        fs::write(&f, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").unwrap();
        assert_eq!(counter(&f, "oom_kill"), 2);
        assert_eq!(counter(&f, "max"), 0);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(unescape(r"/a\040b"), "/a b");
    }
}
