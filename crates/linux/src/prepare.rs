//! Turning a [`Spec`] into a [`Plan`]: resolving every path on the host (canonical, links
//! refused where they could redirect protection), finding Git's real directories, and creating
//! placeholders for protected paths that do not exist yet.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::PrepareError;
use crate::limits::Enforcement;
use crate::mounts::{self, Mount, MountKind};
use crate::{Mode, NetMode, Spec};

/// An empty file or directory cordon created so a protected path can be pinned read-only;
/// removed after the run if it is still vacant and no other run relies on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub path: PathBuf,
    pub is_dir: bool,
    /// What a placeholder file holds: empty, except where an empty file would break a tool.
    pub content: &'static [u8],
    /// The directory whose lock keeps concurrent runs from removing it.
    guard: PathBuf,
}

impl Placeholder {
    /// The placeholder for `path`, made so that `target` (itself or below it) cannot be
    /// created; `guard` is the directory whose lock covers it.
    fn for_path(path: &Path, target: &Path, guard: &Path) -> Placeholder {
        let is_dir = path != target || !looks_like_file(target);
        // Git dies on an empty `commondir`; "." names the repository's own directory.
        let content: &[u8] = if !is_dir && path.file_name().is_some_and(|n| n == "commondir") {
            b".\n"
        } else {
            b""
        };
        Placeholder {
            path: path.to_path_buf(),
            is_dir,
            content,
            guard: guard.to_path_buf(),
        }
    }

    /// Whether `path` holds exactly what a placeholder would: an empty directory, or a file
    /// with the placeholder's content. Such a path is treated as a placeholder whoever made
    /// it (a concurrent run, or a run that could not remove it).
    fn is_vacant(&self) -> bool {
        let Ok(meta) = fs::symlink_metadata(&self.path) else {
            return false;
        };
        if self.is_dir {
            meta.is_dir() && is_empty_dir(&self.path)
        } else {
            meta.is_file()
                && meta.len() == self.content.len() as u64
                && fs::read(&self.path).is_ok_and(|c| c == self.content)
        }
    }

    fn remove(&self) {
        if self.is_vacant() {
            if self.is_dir {
                let _ = fs::remove_dir(&self.path);
            } else {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

/// Whether `path` is an empty directory: at a protected path, that is a placeholder (this
/// run's or a concurrent one's), never a real `.git` or policy file.
pub fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}

/// Placeholders this run relies on, and a shared lock on each directory that holds them.
///
/// A placeholder is a mount point in every sandbox that pins it; removing it on the host
/// would detach those mounts and let a concurrent sandbox create the protected path. So every
/// run holds a shared `flock` on the directory above its placeholders from before it looks at
/// them until its sandbox is gone, and removes them only if it can then take the lock
/// exclusively (no other run relies on them). The last run out cleans up.
#[derive(Debug, Default)]
pub struct Placeholders {
    items: Vec<Placeholder>,
    locks: Vec<(PathBuf, fs::File)>,
}

/// How long a run waits for another run that is removing placeholders (a few syscalls), or
/// for a sandboxed process that holds the directory's lock on purpose.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Placeholders {
    /// The placeholders, in the order they were made.
    pub fn items(&self) -> &[Placeholder] {
        &self.items
    }

    /// Takes (once) a shared lock on `dir`, waiting while another run holds it exclusively.
    fn lock(&mut self, dir: &Path) -> Result<(), PrepareError> {
        if self.locks.iter().any(|(d, _)| d == dir) {
            return Ok(());
        }
        let file = fs::File::open(dir).map_err(io_err("locking", dir))?;
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock_shared() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(io_err("locking", dir)(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "held exclusively for over 10 s (by a process inside another sandbox?)",
                    )))
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_err("locking", dir)(e)),
            }
        }
        self.locks.push((dir.to_path_buf(), file));
        Ok(())
    }

    /// Removes every placeholder no other run relies on; call once the sandbox is gone.
    pub fn release(self) {
        self.remove_vacant();
    }

    /// Removes every placeholder no other run relies on, keeping the locks (exclusive
    /// where that succeeded) until [`Placeholders::release`] or drop. Call once nothing in
    /// this run's sandbox is left; calling it again does nothing more.
    ///
    /// Removing an empty directory frees its block, which on a filesystem mounted with
    /// `discard` is a synchronous discard (milliseconds) at the inode's last reference. While
    /// the sandbox's init still holds its placeholders open ([`crate::init`]), that reference
    /// is init's, dropped at its exit, which cordon does not wait for.
    pub fn remove_vacant(&self) {
        for (dir, file) in &self.locks {
            // Converting to exclusive fails while any other run holds the lock shared.
            if file.try_lock().is_ok() {
                for p in self.items.iter().filter(|p| &p.guard == dir) {
                    p.remove();
                }
            }
        }
    }
}

/// Everything the backend will do, resolved for this machine.
#[derive(Debug)]
pub struct Plan {
    pub spec: Spec,
    /// The canonical workspace.
    pub workspace: PathBuf,
    /// The mount view, in application order.
    pub mounts: Vec<Mount>,
    /// Writable roots for the Landlock layer (workspace, extras, Git directories, private tmp).
    pub writable: Vec<PathBuf>,
    pub placeholders: Placeholders,
    /// The run's cgroup (removed when the plan is dropped) and rlimits.
    pub limits: Enforcement,
    /// Things the user should know (e.g. a denied file with other hard links).
    pub notes: Vec<String>,
    /// What the Landlock layer leaves unreadable: the hidden paths and the denied ones that
    /// do not exist yet (absolute; none inside a writable root, which Landlock grants whole).
    pub read_denied: Vec<PathBuf>,
}

impl Plan {
    /// The mount points that keep paths inside writable roots from being written, removed,
    /// replaced or read (protected paths, placeholders, pins, and denied paths there, which
    /// Landlock cannot keep unreadable inside a root it grants whole): what the host could
    /// take away from a running sandbox by replacing one (see `cover_watch`).
    pub fn write_covers(&self) -> Vec<PathBuf> {
        self.mounts
            .iter()
            .filter(|m| {
                matches!(
                    m.kind,
                    MountKind::Bind { writable: false }
                        | MountKind::Pin
                        | MountKind::HideDir
                        | MountKind::HideFile
                )
            })
            .filter(|m| {
                self.writable
                    .iter()
                    .any(|w| m.target.starts_with(w) && &m.target != w)
            })
            .map(|m| m.target.clone())
            .collect()
    }
}

/// The Git directories a workspace really uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GitLayout {
    /// `WS/.git` itself (a directory, or the `gitdir:` file of a linked worktree).
    dot_git: PathBuf,
    /// The per-worktree directory (`WS/.git` or `MAIN/.git/worktrees/NAME`).
    git_dir: PathBuf,
    /// The shared directory with hooks, config and objects.
    common_dir: PathBuf,
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PrepareError + 'a {
    move |source| PrepareError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Resolves the spec on this host. Creates placeholders (the only host change before the run).
pub fn prepare(spec: Spec) -> Result<Plan, PrepareError> {
    let workspace =
        fs::canonicalize(&spec.workspace).map_err(|source| PrepareError::Workspace {
            path: spec.workspace.clone(),
            source,
        })?;
    if !workspace.is_dir() {
        return Err(PrepareError::Workspace {
            path: workspace,
            source: io::Error::from_raw_os_error(libc::ENOTDIR),
        });
    }
    if workspace == Path::new("/") {
        return Err(PrepareError::WorkspaceTooBroad(
            workspace,
            "every file on the machine",
        ));
    }
    let limits = Enforcement::set_up(&spec.limits)?;
    let mut plan = Plan {
        spec,
        workspace: workspace.clone(),
        mounts: Vec::new(),
        writable: vec![workspace.clone()],
        placeholders: Placeholders::default(),
        limits,
        notes: Vec::new(),
        read_denied: Vec::new(),
    };
    let git = git_layout(&workspace)?;
    let mut ro: Vec<PathBuf> = Vec::new();
    let mut kept_packs: Vec<PathBuf> = Vec::new();
    if let Some(g) = &git {
        if g.dot_git == g.git_dir {
            plan.mounts.push(mount(&g.dot_git, MountKind::Pin));
        } else {
            // A linked worktree: the `gitdir:` file is pinned read-only and Git's real
            // directories become writable so commits still work.
            ro.push(g.dot_git.clone());
            for dir in [&g.git_dir, &g.common_dir] {
                push_unique(&mut plan.writable, dir.clone());
                plan.mounts.push(mount(dir, MountKind::Pin));
            }
        }
    }
    for p in &plan.spec.protected.clone() {
        let targets = map_into_git(p, &workspace, git.as_ref());
        for target in targets {
            protect(&target, &workspace, &mut plan, &mut ro)?;
        }
    }
    if let Some(g) = &git {
        for target in git_side_paths(&g.common_dir) {
            // Existing side directories only: their own files are made uncreatable there.
            protect(&target, &workspace, &mut plan, &mut ro)?;
        }
        kept_packs = packs(&g.common_dir);
    }
    for w in plan.spec.writable.clone() {
        if let Ok(c) = fs::canonicalize(&w) {
            push_unique(&mut plan.writable, c);
        }
    }
    // cordon's own configuration, where a writable root holds it: a run that could write
    // it would choose the next run's policy.
    for f in plan.spec.own_files.clone() {
        if plan.writable.iter().any(|w| f.starts_with(w)) {
            protect(&f, &workspace, &mut plan, &mut ro)?;
        }
    }
    for p in &ro {
        plan.mounts
            .push(mount(p, MountKind::Bind { writable: false }));
    }
    for w in plan.writable.clone() {
        if !plan.mounts.iter().any(|m| m.target == w) {
            plan.mounts
                .push(mount(&w, MountKind::Bind { writable: true }));
        }
    }
    if plan.spec.overlay.is_some() {
        overlay_workspace(&mut plan);
    }
    let mut absent = Vec::new();
    for d in plan.spec.deny_read.clone() {
        if !hide(&d, &mut plan)? {
            absent.push(d);
        }
    }
    plan.read_denied = read_denied(&plan, &absent);
    if plan.spec.mode == Mode::Namespaces {
        base_mounts(&mut plan);
        hide_host_sockets(&mut plan)?;
    }
    pin_ancestors(&mut plan);
    // History as it was when the run started survives whatever the command deletes: a
    // mount point cannot be unlinked. Their folders need no pins: a pack moved elsewhere
    // with its folder is still there.
    for pack in kept_packs {
        plan.mounts
            .push(mount(&pack, MountKind::Bind { writable: false }));
    }
    for t in ["/tmp", "/var/tmp", "/dev/shm"] {
        push_unique(&mut plan.writable, PathBuf::from(t));
    }
    mounts::order(&mut plan.mounts);
    Ok(plan)
}

/// A read-only or hidden path inside a writable root could be carried away by renaming one
/// of its parents (the mount moves with its directory), leaving the path itself open for
/// the next run. So every directory between the writable root and such a path is pinned:
/// a mount point cannot be renamed or removed. None are needed in the default view, where
/// protected paths sit directly in `.git` (pinned) or the workspace (a mount).
fn pin_ancestors(plan: &mut Plan) {
    let roots: Vec<PathBuf> = plan
        .mounts
        .iter()
        .filter(|m| {
            matches!(
                m.kind,
                MountKind::Bind { writable: true } | MountKind::Overlay | MountKind::Pin
            )
        })
        .map(|m| m.target.clone())
        .collect();
    let guarded: Vec<PathBuf> = plan
        .mounts
        .iter()
        .filter(|m| {
            matches!(
                m.kind,
                MountKind::Bind { writable: false } | MountKind::HideDir | MountKind::HideFile
            )
        })
        .map(|m| m.target.clone())
        .collect();
    let overlaid = plan.spec.overlay.is_some();
    for target in guarded {
        let Some(root) = roots
            .iter()
            .filter(|r| target.starts_with(r) && **r != target)
            .max_by_key(|r| r.components().count())
        else {
            continue;
        };
        let mut dir = target.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(root) && *d != root.as_path()) {
            if !plan.mounts.iter().any(|m| m.target == d) {
                let kind = match overlaid && d.starts_with(&plan.workspace) {
                    true => MountKind::PinInView,
                    false => MountKind::Pin,
                };
                plan.mounts.push(mount(d, kind));
            }
            dir = d.parent();
        }
    }
}

/// With a transaction the workspace is an overlay, and pins inside it are taken from the
/// overlay, so every write under the workspace (Git's included) lands in the upper layer.
/// Writable paths outside the workspace (a linked worktree's Git directories, --allow-write)
/// stay direct.
fn overlay_workspace(plan: &mut Plan) {
    let ws = plan.workspace.clone();
    for m in &mut plan.mounts {
        match m.kind {
            MountKind::Bind { writable: true } if m.target == ws => m.kind = MountKind::Overlay,
            MountKind::Pin if m.target.starts_with(&ws) => m.kind = MountKind::PinInView,
            _ => {}
        }
    }
}

fn mount(target: &Path, kind: MountKind) -> Mount {
    Mount {
        target: target.to_path_buf(),
        kind,
    }
}

fn push_unique(v: &mut Vec<PathBuf>, p: PathBuf) {
    if !v.contains(&p) {
        v.push(p);
    }
}

/// The filesystems every sandbox gets: /proc, a minimal /dev, private tmp dirs, an empty /run
/// (host daemons' sockets live there).
fn base_mounts(plan: &mut Plan) {
    plan.mounts.push(mount(Path::new("/proc"), MountKind::Proc));
    plan.mounts.push(mount(Path::new("/dev"), MountKind::Dev));
    plan.mounts.push(mount(
        Path::new("/dev/shm"),
        MountKind::Tmpfs { read_only: false },
    ));
    for (dir, read_only) in [
        ("/tmp", false),
        ("/var/tmp", false),
        ("/run", true),
        ("/var/run", true),
    ] {
        let is_real_dir = fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
        if is_real_dir {
            plan.mounts
                .push(mount(Path::new(dir), MountKind::Tmpfs { read_only }));
        }
    }
    // The request door's own tmpfs; init binds the socket there and seals it.
    if plan.spec.request_door && plan.spec.mode == Mode::Namespaces {
        if let Some(dir) = Path::new(crate::REQUEST_DOOR).parent() {
            plan.mounts
                .push(mount(dir, MountKind::Tmpfs { read_only: false }));
        }
    }
    // With the host network, name resolution must keep working although /run is emptied.
    if plan.spec.net == NetMode::Full {
        if let Ok(conf) = fs::canonicalize("/etc/resolv.conf") {
            if conf.starts_with("/run") || conf.starts_with("/var/run") {
                plan.mounts
                    .push(mount(&conf, MountKind::Bind { writable: false }));
            }
        }
    }
}

/// Covers every socket the host has bound where the view would show it. Those under a
/// private tmpfs or a hidden directory are already out of sight.
fn hide_host_sockets(plan: &mut Plan) -> Result<(), PrepareError> {
    for sock in crate::host_sockets::list() {
        let Ok(sock) = fs::canonicalize(&sock) else {
            continue; // gone since it was bound
        };
        // Out of sight if what shows there is a private tmpfs or a hidden path (a bind of the
        // workspace or an extra writable path on top of /tmp shows the host again).
        let covered = mounts::effective(&plan.mounts, &sock).is_some_and(|m| {
            matches!(
                m.kind,
                MountKind::Tmpfs { .. } | MountKind::Dev | MountKind::HideDir | MountKind::HideFile
            )
        });
        if !covered {
            // Already canonical; a socket is never an ancestor of the workspace.
            cover(sock, plan)?;
        }
    }
    Ok(())
}

/// Finds `.git` and, for a linked worktree, the directories its `gitdir:` file points to.
fn git_layout(workspace: &Path) -> Result<Option<GitLayout>, PrepareError> {
    let dot_git = workspace.join(".git");
    let meta = match fs::symlink_metadata(&dot_git) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("reading", &dot_git)(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(PrepareError::ProtectedSymlink(dot_git));
    }
    if meta.is_dir() {
        // An empty `.git` is a placeholder (this or a concurrent run's), not a repository.
        if is_empty_dir(&dot_git) {
            return Ok(None);
        }
        return Ok(Some(GitLayout {
            git_dir: dot_git.clone(),
            common_dir: dot_git.clone(),
            dot_git,
        }));
    }
    let text = fs::read_to_string(&dot_git).map_err(io_err("reading", &dot_git))?;
    let Some(target) = text.lines().next().and_then(|l| l.strip_prefix("gitdir:")) else {
        return Err(io_err("parsing", &dot_git)(io::Error::new(
            io::ErrorKind::InvalidData,
            "a .git file must start with `gitdir: PATH`",
        )));
    };
    let git_dir = fs::canonicalize(workspace.join(target.trim()))
        .map_err(io_err("resolving gitdir", &dot_git))?;
    let common_dir = match fs::read_to_string(git_dir.join("commondir")) {
        Ok(rel) => fs::canonicalize(git_dir.join(rel.trim()))
            .map_err(io_err("resolving commondir", &git_dir))?,
        Err(_) => git_dir.clone(),
    };
    let layout = GitLayout {
        dot_git,
        git_dir,
        common_dir,
    };
    check_worktree(&layout, workspace)?;
    Ok(Some(layout))
}

/// A linked worktree's directories must be where Git puts them: its own directory is
/// `MAIN/worktrees/NAME` and its `commondir` names `MAIN`. cordon makes both writable, and
/// `commondir` lives in a directory an earlier sandbox could write: trusting another value
/// would let one run choose what the next may write (`commondir` naming the home, or /etc).
fn check_worktree(g: &GitLayout, workspace: &Path) -> Result<(), PrepareError> {
    let refuse = |why: String| {
        Err(PrepareError::GitLayout {
            dot_git: g.dot_git.clone(),
            why,
        })
    };
    // The `.git` file itself may have been written by a sandbox run in a parent folder: what
    // it names must be a repository that names this workspace back, or cordon would make any
    // folder writable on its word (`gitdir: $HOME`).
    let is_repo = g.git_dir.join("HEAD").is_file()
        && (g.git_dir.join("objects").is_dir() || g.git_dir.join("commondir").is_file());
    if !is_repo || workspace.starts_with(&g.git_dir) {
        return refuse(format!(
            "its `gitdir:` names {}, which is not a Git directory of this workspace",
            g.git_dir.display()
        ));
    }
    if g.common_dir == g.git_dir {
        // A separate repository directory (`--separate-git-dir`, an absorbed submodule). A
        // submodule's names its work tree (`core.worktree`): it must be this one. Another
        // checkout's own `.git`, or a bare repository, is never this workspace's.
        let foreign_checkout = g.git_dir.file_name().is_some_and(|n| n == ".git")
            && g.git_dir.parent() != Some(workspace);
        if foreign_checkout || is_bare(&g.git_dir) {
            return refuse(format!(
                "its `gitdir:` names {}, another checkout's or a bare repository",
                g.git_dir.display()
            ));
        }
        return match worktrees_of(&g.git_dir) {
            Ok(trees) => match trees.iter().find(|wt| *wt != workspace) {
                Some(wt) => refuse(format!(
                    "its Git directory {} belongs to the work tree {}",
                    g.git_dir.display(),
                    wt.display()
                )),
                None => Ok(()),
            },
            Err(()) => refuse(format!(
                "its Git directory's config {} cannot be read as git reads it, or names a work tree that does not exist, so the work tree it belongs to is unknown",
                g.git_dir.join("config").display()
            )),
        };
    }
    let expected = g
        .git_dir
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == "worktrees"))
        .and_then(Path::parent);
    if expected != Some(g.common_dir.as_path()) {
        return refuse(format!(
            "its Git directory {} names {} as the shared repository (in {}), which is not the repository that holds it",
            g.git_dir.display(),
            g.common_dir.display(),
            g.git_dir.join("commondir").display()
        ));
    }
    // Git's back-link: the worktree entry's `gitdir` names this workspace's `.git`.
    let back = fs::read_to_string(g.git_dir.join("gitdir"))
        .ok()
        .and_then(|t| fs::canonicalize(g.git_dir.join(t.trim())).ok());
    if back.as_deref() != Some(g.dot_git.as_path()) {
        return refuse(format!(
            "the worktree entry {} does not name this workspace back (its `gitdir` file)",
            g.git_dir.display()
        ));
    }
    Ok(())
}

/// The work trees a Git directory's `core.worktree` names, resolved against it (every value,
/// of `config` and of `config.worktree`). A config this reader cannot follow, or a work tree
/// that does not resolve (a submodule's left behind by `git rm`), names no work tree anyone
/// can check: `Err`, and the caller refuses.
fn worktrees_of(git_dir: &Path) -> Result<Vec<PathBuf>, ()> {
    config_values(git_dir, "core.worktree")?
        .into_iter()
        .map(|v| fs::canonicalize(git_dir.join(v)).map_err(drop))
        .collect()
}

/// Whether a Git directory is bare: any `core.bare` git does not read as false (a value it
/// would refuse, or a config that cannot be read, counts as bare: the caller then refuses).
fn is_bare(git_dir: &Path) -> bool {
    match config_values(git_dir, "core.bare") {
        Ok(values) => values.iter().any(|v| not_false(v)),
        Err(()) => true,
    }
}

/// Every value of `key` (`section.key`, lowercase, no subsection) in a Git directory's
/// `config`, and in its `config.worktree` when `extensions.worktreeConfig` is on (git reads
/// it after `config`, honours it in every repository format, and moves `core.bare` and
/// `core.worktree` there itself). All of them, not git's last: a check that refuses when any
/// says so cannot be led by which one git picks. Read by the policy crate's reader, which
/// follows git's syntax (several headers on a line, continued lines, quoting, comments).
/// `Err` when a file holds a line git would refuse, or cannot be read, since what follows
/// could set anything.
fn config_values(git_dir: &Path, key: &str) -> Result<Vec<String>, ()> {
    let config = settings_of(&git_dir.join("config"))?;
    let worktree_config = worktree_config_on(&config);
    let mut all = config;
    if worktree_config {
        all.extend(settings_of(&git_dir.join("config.worktree"))?);
    }
    Ok(all
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect())
}

/// Whether a config turns `extensions.worktreeConfig` on (any value git does not read as
/// false: reading `config.worktree` too is the safe side).
fn worktree_config_on(config: &[(String, String)]) -> bool {
    config
        .iter()
        .any(|(k, v)| k == "extensions.worktreeconfig" && not_false(v))
}

/// Whether git might read `v` as true: anything but a boolean git reads as false.
fn not_false(v: &str) -> bool {
    cordon_policy::git::boolean(v) != Some(false)
}

/// Every setting of one Git config file; an absent file has none.
fn settings_of(file: &Path) -> Result<Vec<(String, String)>, ()> {
    let text = match fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(_) => return Err(()),
    };
    let settings = cordon_policy::git::settings(&text);
    match settings
        .iter()
        .any(|(k, _)| k == cordon_policy::git::UNPARSED)
    {
        true => Err(()),
        false => Ok(settings),
    }
}

/// Files in a worktree's own Git directory (`MAIN/worktrees/NAME`), not the shared one.
const PER_WORKTREE: &[&str] = &["commondir", "config.worktree", "gitdir"];

/// At most this many pack files are kept (the largest): a repository packed by `git gc`
/// has one or two packs; one that never was may have hundreds, and each kept file is a mount.
const MAX_KEPT_PACKS: usize = 16;

/// The pack files (`objects/pack/*.pack` and their `.idx`) to keep read-only, so that a
/// command deleting `.git`'s contents (`rm -rf .git/*`, `git gc --prune=now` after rewriting
/// history) cannot take the history the run started with: a mount point cannot be unlinked.
/// Git never rewrites a pack in place; it adds new ones, so fetches and commits work, and a
/// repack inside the sandbox keeps the old packs (its `unlink`s fail).
fn packs(common_dir: &Path) -> Vec<PathBuf> {
    let dir = common_dir.join("objects/pack");
    let Ok(rd) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<(u64, PathBuf)> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
        .filter_map(|e| {
            let meta = fs::symlink_metadata(e.path()).ok()?;
            meta.is_file().then(|| (meta.len(), e.path()))
        })
        .collect();
    found.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = Vec::new();
    for (_, pack) in found.into_iter().take(MAX_KEPT_PACKS / 2) {
        let idx = pack.with_extension("idx");
        out.push(pack);
        if fs::symlink_metadata(&idx).is_ok_and(|m| m.is_file()) {
            out.push(idx);
        }
    }
    out
}

/// At most this many linked worktrees' files are protected: each costs mounts (three files,
/// a placeholder for a missing `config.worktree`, and the pins above them).
const MAX_SIDE_DIRS: usize = 16;

/// The files of the other linked worktrees a host `git` reads configuration through, in the
/// repository's shared directory (`worktrees/*`: `commondir`, `gitdir`, `config.worktree`):
/// protected like `.git/config`, so a sandbox in the main checkout cannot point the user's
/// next `git status` in another worktree at code of its choosing. The first
/// [`MAX_SIDE_DIRS`]; nested repositories (submodules included) are `planted_git`'s, after
/// the run.
fn git_side_paths(common_dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(common_dir.join("worktrees")) else {
        return Vec::new();
    };
    // Git reads a worktree's `config.worktree` only with `extensions.worktreeConfig`: without
    // it, a missing one needs no placeholder (each costs a file made and removed per run).
    // A config that cannot be read counts as setting it: placeholders cost time, not safety.
    let worktree_config =
        settings_of(&common_dir.join("config")).map_or(true, |c| worktree_config_on(&c));
    rd.filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .take(MAX_SIDE_DIRS)
        .flat_map(|e| PER_WORKTREE.iter().map(move |f| e.path().join(f)))
        .filter(|p| worktree_config || !p.ends_with("config.worktree") || p.exists())
        .collect()
}

/// A protected path under `WS/.git/` means the same path in Git's real directories.
fn map_into_git(p: &Path, workspace: &Path, git: Option<&GitLayout>) -> Vec<PathBuf> {
    let Some(g) = git.filter(|g| g.dot_git != g.git_dir) else {
        return vec![p.to_path_buf()];
    };
    let Ok(rest) = p.strip_prefix(workspace.join(".git")) else {
        return vec![p.to_path_buf()];
    };
    if rest == Path::new("commondir") {
        // This worktree's, and the main checkout's: Git reads `MAIN/.git/commondir` whenever
        // it runs there, so a planted one would move the main checkout's config and hooks.
        return vec![g.git_dir.join(rest), g.common_dir.join(rest)];
    }
    if PER_WORKTREE.iter().any(|f| rest == Path::new(f)) {
        return vec![g.git_dir.join(rest)];
    }
    let mut out = vec![g.common_dir.join(rest)];
    if rest == Path::new("config") {
        // Per-worktree configuration can set hooksPath and fsmonitor too: this worktree's,
        // and the main checkout's, which lives in the shared directory.
        out.push(g.git_dir.join("config.worktree"));
        out.push(g.common_dir.join("config.worktree"));
    }
    out
}

/// Pins `target` read-only; if it does not exist, pins a placeholder for its highest missing
/// ancestor so it cannot be created.
fn protect(
    target: &Path,
    workspace: &Path,
    plan: &mut Plan,
    ro: &mut Vec<PathBuf>,
) -> Result<(), PrepareError> {
    // Already covered by a read-only placeholder (e.g. `.git` made for `.git/hooks`).
    if plan
        .placeholders
        .items
        .iter()
        .any(|p| target.starts_with(&p.path))
    {
        return Ok(());
    }
    // Placeholders go no higher than the directory that holds the protected tree.
    let base = if target.starts_with(workspace) {
        workspace
    } else {
        target.parent().unwrap_or(target)
    };
    // Lock before looking, so no concurrent run removes what we are about to pin.
    plan.placeholders.lock(base)?;
    let Some(missing) = highest_missing(target, base)? else {
        push_unique(ro, target.to_path_buf());
        return Ok(());
    };
    if ro.contains(&missing) {
        return Ok(());
    }
    // The lock that keeps the placeholder is its own directory's, whichever run made it:
    // a worktree's run and the main checkout's both pin `MAIN/.git/config.worktree`, and
    // neither may remove it while the other's sandbox relies on it.
    let guard = missing.parent().unwrap_or(base);
    plan.placeholders.lock(guard)?;
    let placeholder = Placeholder::for_path(&missing, target, guard);
    let created = if placeholder.is_dir {
        fs::create_dir(&missing)
    } else {
        use std::io::Write;
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&missing)
            .and_then(|mut f| f.write_all(placeholder.content))
    };
    match created {
        Ok(()) => {}
        // A vacant placeholder (ours from a concurrent run), or made just now by someone
        // else: either way it is pinned read-only; it is removed later only if still vacant.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err("creating placeholder", &missing)(e)),
    }
    plan.placeholders.items.push(placeholder);
    push_unique(ro, missing);
    Ok(())
}

/// The highest path from `target` up to (not including) `base` that is absent or a vacant
/// placeholder; `None` when `target` itself exists for real. Links on the way are refused.
fn highest_missing(target: &Path, base: &Path) -> Result<Option<PathBuf>, PrepareError> {
    let mut missing = None;
    let mut p = target;
    loop {
        let vacant = match fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(PrepareError::ProtectedSymlink(p.to_path_buf()))
            }
            Ok(_) => Placeholder::for_path(p, target, base).is_vacant(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(io_err("reading", p)(e)),
        };
        if !vacant {
            return Ok(missing);
        }
        missing = Some(p.to_path_buf());
        match p.parent() {
            Some(parent) if parent != base => p = parent,
            _ => return Ok(missing),
        }
    }
}

/// Whether a missing protected path gets a placeholder file rather than a directory. Git's
/// own files must be files for Git to keep working; everywhere else an empty directory is
/// used, because Git never records one (`git add -A` must not pick up a placeholder).
fn looks_like_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    // In a `.git`, or in any other Git directory (`--separate-git-dir`, `worktrees/NAME`),
    // which holds a HEAD file.
    let in_git = p.components().any(|c| c.as_os_str() == ".git")
        || p.parent().is_some_and(|d| d.join("HEAD").is_file());
    in_git && ["config", "commondir", "config.worktree", "gitdir"].contains(&name)
}

/// Hides a denied path (its canonical target, so a link to it is no way round); false if
/// there is nothing there yet.
fn hide(path: &Path, plan: &mut Plan) -> Result<bool, PrepareError> {
    // One lstat first: most of the default set is absent, and canonicalize costs a readlink
    // per component.
    if fs::symlink_metadata(path).is_err() {
        return Ok(false);
    }
    let Ok(real) = fs::canonicalize(path) else {
        return Ok(false); // a dangling link: nothing to read until the host makes its target
    };
    if plan.workspace.starts_with(&real) {
        return Err(io_err("deny-read", path)(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("would hide the workspace {}", plan.workspace.display()),
        )));
    }
    cover(real, plan)?;
    Ok(true)
}

/// The Landlock layer's read exceptions (see [`crate::landlock_rules::read_grants`]): every
/// path hidden so far (the deny-read set and the link targets found in it), and each denied
/// path that does not exist yet (`absent`), under its nearest existing parent's canonical
/// path.
fn read_denied(plan: &Plan, absent: &[PathBuf]) -> Vec<PathBuf> {
    let hidden = plan
        .mounts
        .iter()
        .filter(|m| matches!(m.kind, MountKind::HideDir | MountKind::HideFile))
        .map(|m| m.target.clone());
    // Most absent paths share a parent (the home): each folder is resolved once.
    let mut resolved: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    let absent = absent
        .iter()
        .filter_map(|d| follow_links(d, &mut resolved, 0))
        .collect::<Vec<_>>();
    let mut out: Vec<PathBuf> = Vec::new();
    for p in hidden.chain(absent) {
        let in_writable = plan.writable.iter().any(|w| p.starts_with(w));
        let sandbox_own = SANDBOX_OWN.iter().any(|d| p.starts_with(d));
        if !in_writable && !sandbox_own {
            push_unique(&mut out, p);
        }
    }
    out
}

/// `path` (absolute) with every symbolic link in it followed as far as it exists, so a
/// denied path that is, or lies under, a dangling link (`~/.aws -> ~/dotfiles/aws`, not made
/// yet) is denied where the host would create it; `known` remembers each folder's result.
/// `None` for a link loop (more than 40 links).
fn follow_links(
    path: &Path,
    known: &mut Vec<(PathBuf, Option<PathBuf>)>,
    hops: usize,
) -> Option<PathBuf> {
    if hops > 40 {
        return None;
    }
    if let Some((_, real)) = known.iter().find(|(p, _)| p == path) {
        return real.clone();
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Some(path.to_path_buf()); // the root
    };
    let here = follow_links(parent, known, hops)?.join(name);
    let real = match fs::symlink_metadata(&here) {
        Ok(m) if m.file_type().is_symlink() => {
            let target = fs::read_link(&here).ok()?;
            let target = here.parent().unwrap_or(Path::new("/")).join(target);
            follow_links(&lexical(&target), known, hops + 1)
        }
        _ => Some(here),
    };
    known.push((path.to_path_buf(), real.clone()));
    real
}

/// `path` with `.` and `..` taken out by their names alone (for a link's target, whose
/// parts are then followed one by one).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// Puts an empty, unreadable mount over `real`, a canonical path that exists.
fn cover(real: PathBuf, plan: &mut Plan) -> Result<(), PrepareError> {
    let meta = fs::metadata(&real).map_err(io_err("reading", &real))?;
    let kind = if meta.is_dir() {
        MountKind::HideDir
    } else {
        MountKind::HideFile
    };
    if !meta.is_dir() && meta.nlink() > 1 {
        plan.notes.push(hard_links_note(&real, meta.nlink()));
    }
    if plan.mounts.iter().any(|m| m.target == real) {
        return Ok(());
    }
    plan.mounts.push(mount(&real, kind));
    if meta.is_dir() {
        cover_links_out(&real, plan)?;
    }
    Ok(())
}

fn hard_links_note(path: &Path, links: u64) -> String {
    format!(
        "{} has {links} hard links; names outside the deny-read set stay readable",
        path.display()
    )
}

/// How far into a denied directory cordon looks for ways out of it: secret stores are small
/// (`~/.ssh`), and a browser profile's thousands of files are not walked on every run.
const LINK_SCAN_DEPTH: usize = 4;
/// Trees the sandbox replaces with its own (or shows as the kernel's): a link into them
/// needs no hiding.
const SANDBOX_OWN: &[&str] = &["/dev", "/proc", "/sys", "/run", "/tmp", "/var/tmp"];
const LINK_SCAN_ENTRIES: usize = 64;

/// Hiding a directory hides its names, not what they point to: a symbolic link in it to a
/// file elsewhere (dotfiles managed by stow) leaves the secret readable at its real path,
/// and a file with another hard link stays readable through that name. So the first entries
/// of a denied directory are looked at: link targets outside it are hidden too, and hard
/// links are said. Targets are hidden as found, without looking into them in turn.
fn cover_links_out(dir: &Path, plan: &mut Plan) -> Result<(), PrepareError> {
    let mut queue = vec![(dir.to_path_buf(), 0usize)];
    let mut seen = 0usize;
    while let Some((d, depth)) = queue.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for entry in rd.filter_map(Result::ok) {
            seen += 1;
            if seen > LINK_SCAN_ENTRIES {
                return Ok(());
            }
            let path = entry.path();
            // The kind from the directory entry itself (no stat); files are stat'ed for
            // their link count only.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_symlink() {
                let Ok(target) = fs::canonicalize(&path) else {
                    continue; // dangling: nothing to read
                };
                if target.starts_with(dir) || plan.mounts.iter().any(|m| m.target == target) {
                    continue;
                }
                // The sandbox shows its own /dev, /proc, /run and tmp dirs, not the host's
                // (`~/.ssh/known_hosts -> /dev/null` is common): nothing there to hide.
                if SANDBOX_OWN.iter().any(|d| target.starts_with(d)) {
                    continue;
                }
                if plan.workspace.starts_with(&target) {
                    plan.notes.push(format!(
                        "{} points to {}, which holds the workspace; it is not hidden",
                        path.display(),
                        target.display()
                    ));
                    continue;
                }
                // Regular files and folders only: sockets and devices are read by connecting
                // or opening, which the sandbox's own view and filter decide.
                let kind = match fs::metadata(&target) {
                    Ok(m) if m.is_dir() => MountKind::HideDir,
                    Ok(m) if m.is_file() => MountKind::HideFile,
                    _ => continue,
                };
                plan.mounts.push(mount(&target, kind));
            } else if kind.is_dir() {
                if depth + 1 < LINK_SCAN_DEPTH {
                    queue.push((path, depth + 1));
                }
            } else if kind.is_file() {
                if let Ok(meta) = fs::symlink_metadata(&path) {
                    if meta.nlink() > 1 {
                        plan.notes.push(hard_links_note(&path, meta.nlink()));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_like_names() {
        assert!(
            !looks_like_file(Path::new("/ws/.cordon.toml")),
            "git add -A would record a file"
        );
        assert!(looks_like_file(Path::new("/ws/.git/config")));
        assert!(looks_like_file(Path::new("/ws/.git/commondir")));
        assert!(!looks_like_file(Path::new("/ws/.git/hooks")));
        assert!(!looks_like_file(Path::new("/ws/.git/info")));
    }

    #[test]
    fn worktree_protection_maps_to_common_dir() {
        let g = GitLayout {
            dot_git: "/wt/.git".into(),
            git_dir: "/main/.git/worktrees/wt".into(),
            common_dir: "/main/.git".into(),
        };
        assert_eq!(
            map_into_git(Path::new("/wt/.git/hooks"), Path::new("/wt"), Some(&g)),
            vec![PathBuf::from("/main/.git/hooks")]
        );
        assert_eq!(
            map_into_git(Path::new("/wt/.git/config"), Path::new("/wt"), Some(&g)),
            vec![
                PathBuf::from("/main/.git/config"),
                PathBuf::from("/main/.git/worktrees/wt/config.worktree"),
                PathBuf::from("/main/.git/config.worktree")
            ]
        );
        assert_eq!(
            map_into_git(Path::new("/wt/.cordon.toml"), Path::new("/wt"), Some(&g)),
            vec![PathBuf::from("/wt/.cordon.toml")]
        );
    }

    #[test]
    fn git_settings_are_read_as_git_reads_them() {
        let dir = std::env::temp_dir().join(format!("cordon-prepare-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("scratch dir");
        let with = |text: &str| {
            fs::write(dir.join("config"), text).expect("write config");
            config_values(&dir, "core.worktree")
        };
        // A header and a setting on one line; every value, in order, comments dropped.
        assert_eq!(with("[core]worktree = /a"), Ok(vec!["/a".to_string()]));
        assert_eq!(
            with("[core]\n worktree = /a\n[core]\n worktree = /b # the checkout\n"),
            Ok(vec!["/a".to_string(), "/b".to_string()])
        );
        // A subsection is another key; a header git refuses hides what follows.
        assert_eq!(with("[core \"x\"]\n worktree = /a\n"), Ok(vec![]));
        assert_eq!(with("[core\n worktree = /a\n"), Err(()));
        // Booleans as git reads them: comments, quotes and integers; anything git would
        // not call false counts as bare.
        for bare in ["yes", "true ; a comment", "\"tr\"ue", "2", "0x1", "maybe"] {
            fs::write(dir.join("config"), format!("[core]\n\tbare = {bare}\n")).expect("write");
            assert!(is_bare(&dir), "{bare}");
        }
        fs::write(dir.join("config"), "[core]\n\tbare = false # not bare\n").expect("write");
        assert!(!is_bare(&dir));
        // With extensions.worktreeConfig, config.worktree is read too (either one saying
        // bare is enough).
        fs::write(
            dir.join("config"),
            "[core]\n\tbare = false\n[extensions]\n\tworktreeConfig = true\n",
        )
        .expect("write config");
        fs::write(dir.join("config.worktree"), "[core]\n\tbare = true\n").expect("write");
        assert!(is_bare(&dir), "config.worktree says bare");
        fs::write(
            dir.join("config.worktree"),
            "[core]\n\tworktree = /nowhere/at/all\n",
        )
        .expect("write");
        assert_eq!(
            worktrees_of(&dir),
            Err(()),
            "a work tree that does not resolve"
        );
        fs::write(dir.join("config.worktree"), "[core\n").expect("write");
        assert!(is_bare(&dir), "an unreadable config.worktree");
        fs::remove_file(dir.join("config.worktree")).expect("remove");
        // Without the extension config.worktree is not git's, so not ours.
        fs::write(dir.join("config"), "[core]\n\tbare = false\n").expect("write config");
        fs::write(dir.join("config.worktree"), "[core]\n\tbare = true\n").expect("write");
        assert!(!is_bare(&dir));
        fs::remove_file(dir.join("config.worktree")).expect("remove");
        fs::remove_file(dir.join("config")).expect("remove config");
        assert_eq!(config_values(&dir, "core.worktree"), Ok(vec![]));
        assert_eq!(worktrees_of(&dir), Ok(vec![]));
        assert!(!is_bare(&dir));
        let _ = fs::remove_dir_all(&dir);
    }
}
