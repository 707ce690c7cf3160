//! After a run: Git configuration the command left where the user's own git will read it,
//! moved aside when it names a program to run. Best effort, not a guarantee (see below).
//!
//! A `git status` in the workspace descends into every nested repository its index records
//! (a gitlink), reading that repository's configuration: a `core.fsmonitor` there is a
//! program run as the user, outside any sandbox. The workspace's own `.git/config` and hooks
//! are read-only inside, but a nested repository the command makes or changes is its own.
//! So before the run the repositories the indexes record (the workspace's, the main
//! checkout's for a linked worktree, and theirs in turn, three levels down) have their Git
//! files read (configuration, the shared one a `commondir` names, hooks listings), and after
//! it again: in each the index gained, and for each file whose content changed, a
//! configuration naming a program, or a hooks folder with hooks, is moved aside
//! (`config.cordon-refused`) with a line on stderr and an audit event. What the user had
//! before the run is never touched. A repository the index does not record, one past the
//! bounds, or one reached in a way this does not follow is not looked at: docs/policy.md
//! says so.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cordon_policy::git::{entries, gitlinks, program_settings, settings};

/// How deep nested repositories are followed, and how many are looked at in all.
const MAX_DEPTH: usize = 3;
const MAX_REPOS: usize = 64;

/// The indexes' gitlinks when the run started.
#[derive(Debug)]
pub struct Before {
    known: Vec<(PathBuf, Vec<String>)>,
    snapshot: Snapshot,
    at: SystemTime,
}

/// A file or folder the command left that cordon moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub path: PathBuf,
    /// The keys that name programs (`core.fsmonitor`, …), or `hooks` for a hooks folder.
    pub keys: Vec<String>,
    pub moved_to: PathBuf,
}

/// A repository's Git directories, resolved.
struct GitDirs {
    /// What `.git` names: the per-worktree directory.
    git_dir: PathBuf,
    /// The shared directory its `commondir` names (or `git_dir`).
    common: PathBuf,
}

/// `dir/.git` as git finds it: the folder itself (through a symbolic link too), or the folder
/// a `gitdir:` file names; and the shared directory its `commondir` names.
fn git_dirs(dir: &Path) -> Option<GitDirs> {
    let dot_git = dir.join(".git");
    let meta = fs::metadata(&dot_git).ok()?;
    let git_dir = if meta.is_dir() {
        fs::canonicalize(&dot_git).ok()?
    } else {
        let text = String::from_utf8_lossy(&read_small(&dot_git).ok()?).into_owned();
        let target = text
            .lines()
            .next()?
            .strip_prefix("gitdir:")?
            .trim()
            .to_string();
        fs::canonicalize(dir.join(target)).ok()?
    };
    let common = common_of(&git_dir);
    Some(GitDirs { git_dir, common })
}

/// The shared directory a Git directory's `commondir` names (canonical), or the directory
/// itself.
fn common_of(git_dir: &Path) -> PathBuf {
    read_small(&git_dir.join("commondir"))
        .ok()
        .and_then(|rel| fs::canonicalize(git_dir.join(String::from_utf8_lossy(&rel).trim())).ok())
        .unwrap_or_else(|| git_dir.to_path_buf())
}

/// The indexes whose gitlinks a host `git status` follows from this workspace, with the
/// checkout each belongs to: the workspace's own, and for a linked worktree the main one's
/// (its shared directory is writable from inside).
fn indexes(workspace: &Path) -> Vec<(PathBuf, PathBuf)> {
    let Some(dirs) = git_dirs(workspace) else {
        return Vec::new();
    };
    let mut out = vec![(dirs.git_dir.join("index"), workspace.to_path_buf())];
    if dirs.common != dirs.git_dir && dirs.common.file_name().is_some_and(|n| n == ".git") {
        if let Some(main) = dirs.common.parent() {
            out.push((dirs.common.join("index"), main.to_path_buf()));
        }
    }
    out
}

/// What identifies one version of an index file: inode, size, modification and change
/// times. The change time cannot be set back, so an equal stamp is the same content.
#[cfg(unix)]
fn stamp(index: &Path) -> Option<String> {
    fs::metadata(index).ok().map(|m| file_stamp(&m))
}

#[cfg(not(unix))]
fn stamp(_: &Path) -> Option<String> {
    None
}

/// Where the gitlinks of an index are remembered between runs: cordon's state folder, which
/// no sandbox can read or write. A workspace's index can be megabytes; read it once per
/// version, not twice per run.
fn cache_file(index: &Path) -> Option<PathBuf> {
    let name = cordon_policy::content_hash(index, b"gitlinks");
    Some(crate::dirs::state_dir()?.join("gitlinks").join(&name[..32]))
}

/// [`recorded`], from the cache when the index (and the shared index it names, if split)
/// has not changed since it was last read. The cache's first line is the index's stamp and
/// the shared index's (`-` when there is none): a command editing only the shared index
/// changes the second.
fn recorded_cached(index: &Path) -> Result<Vec<String>, String> {
    let (Some(stamp), Some(cache)) = (stamp(index), cache_file(index)) else {
        return recorded(index).map(|(links, _)| links);
    };
    if let Ok(text) = fs::read_to_string(&cache) {
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        if let Some((was, shared)) = first.split_once('\t') {
            if was == stamp && shared_stamp_now(index, shared) == shared {
                return Ok(lines.map(str::to_string).collect());
            }
        }
    }
    let (links, shared) = recorded(index)?;
    if let Some(dir) = cache.parent() {
        let _ = fs::create_dir_all(dir);
        let shared = match &shared {
            Some(name) => format!("{name} {}", stamp_of_shared(index, name)),
            None => "-".to_string(),
        };
        let mut text = format!("{stamp}\t{shared}");
        for l in &links {
            text.push('\n');
            text.push_str(l);
        }
        let _ = fs::write(&cache, text);
    }
    Ok(links)
}

/// The stamp of the shared index `name`, in `index`'s folder (`?` when it cannot be read).
fn stamp_of_shared(index: &Path, name: &str) -> String {
    let path = index.parent().map(|d| d.join(name));
    path.and_then(|p| stamp(&p)).unwrap_or_else(|| "?".into())
}

/// What the cache's shared-index field would be now, for the shared index it names.
fn shared_stamp_now(index: &Path, cached: &str) -> String {
    match cached.split_once(' ') {
        Some((name, _)) => format!("{name} {}", stamp_of_shared(index, name)),
        None => cached.to_string(),
    }
}

/// The gitlinks an index records, its shared index (`git update-index --split-index`)
/// included, and that shared index's name; `Err` when it cannot be read as an index.
fn recorded(index: &Path) -> Result<(Vec<String>, Option<String>), String> {
    let bytes = match read_regular(index, INDEX_LIMIT) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(e.to_string()),
    };
    let hash_len = hash_len(index.parent().unwrap_or(index));
    let found = entries(&bytes, hash_len).map_err(|e| e.0)?;
    let mut links = found.links;
    // A split index names its shared index (in its own folder) in a `link` extension.
    if let (Some(dir), Some(shared)) = (index.parent(), &found.shared) {
        match read_regular(&dir.join(shared), INDEX_LIMIT) {
            Ok(b) => links.extend(gitlinks(&b, hash_len).map_err(|e| e.0)?),
            Err(e) => return Err(format!("its shared index {shared}: {e}")),
        }
    }
    links.sort();
    links.dedup();
    Ok((links, found.shared))
}

/// 32 for a SHA-256 repository (`extensions.objectFormat`), else 20.
fn hash_len(git_dir: &Path) -> usize {
    let config = read_small(&common_of(git_dir).join("config")).unwrap_or_default();
    let sha256 = settings(&String::from_utf8_lossy(&config))
        .iter()
        .any(|(k, v)| k == "extensions.objectformat" && v.eq_ignore_ascii_case("sha256"));
    if sha256 {
        32
    } else {
        20
    }
}

/// What a nested repository's Git files held: the configuration files' bytes and the hooks
/// folders' listing (names, sizes, modification times), by path.
type Snapshot = Vec<(PathBuf, Option<Vec<u8>>)>;

/// The files of a repository that decide what git runs there.
fn watched(d: &GitDirs) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![&d.git_dir];
    if d.common != d.git_dir {
        dirs.push(&d.common);
    }
    for dir in dirs {
        for f in ["config", "config.worktree", "hooks"] {
            out.push(dir.join(f));
        }
    }
    out
}

/// The linked worktrees' `config.worktree` files in the workspace's shared Git directory
/// (the first [`MAX_REPOS`] entries), present or not.
fn side_files(workspace: &Path) -> Vec<PathBuf> {
    let Some(dirs) = git_dirs(workspace) else {
        return Vec::new();
    };
    let Ok(rd) = fs::read_dir(dirs.common.join("worktrees")) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .take(MAX_REPOS)
        .map(|e| e.path().join("config.worktree"))
        .collect()
}

/// A file's bytes, or a hooks folder's listing; `None` when absent.
fn fingerprint(path: &Path) -> Option<Vec<u8>> {
    if path.file_name().is_some_and(|n| n == "hooks") {
        let rd = fs::read_dir(path).ok()?;
        let mut items: Vec<String> = rd
            .filter_map(Result::ok)
            .filter_map(|e| {
                Some(format!(
                    "{:?}:{}",
                    e.file_name(),
                    file_stamp(&e.metadata().ok()?)
                ))
            })
            .collect();
        items.sort();
        return Some(items.join("\n").into_bytes());
    }
    match read_small(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        // A FIFO, a device, a link loop or a giant where a configuration should be: not
        // what it was, so it is looked at (and moved aside) like a changed one.
        Err(e) => Some(format!("{UNREADABLE}{e}").into_bytes()),
    }
}

/// What [`fingerprint`] holds for a configuration that is not a readable regular file.
const UNREADABLE: &str = "(not a configuration git can read: ";

/// Git files the command may have replaced are read only as what they should be: regular
/// files, this large at most. A FIFO left at `.git/config` or `.git/index` would otherwise
/// block cordon (and every git after it) for ever.
const SMALL_LIMIT: u64 = 4 << 20;
const INDEX_LIMIT: u64 = 1 << 30;

fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    read_regular(path, SMALL_LIMIT)
}

/// `path`'s bytes if it is a regular file of at most `limit` bytes: opened without
/// blocking (a FIFO opens at once and is then refused), checked on the open file.
fn read_regular(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidData, "not a regular file"));
    }
    if meta.len() > limit {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// What changes whenever a file is written, replaced or given new permissions: size,
/// modification time, and (which no one can set back) inode and change time.
#[cfg(unix)]
fn file_stamp(m: &fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "{}:{}:{}.{}:{}.{}:{:o}",
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.mode()
    )
}

#[cfg(not(unix))]
fn file_stamp(m: &fs::Metadata) -> String {
    let modified = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{}:{modified}", m.len())
}

/// Visits the nested repositories the workspace's indexes record, depth first within the
/// bounds: `visit(index, link, nested folder, its Git directories, depth)` returns whether
/// to descend into it. Only repositories whose Git directory lies in `writable` are visited.
fn walk(
    workspace: &Path,
    writable: &[PathBuf],
    skip_index: &dyn Fn(&Path) -> bool,
    known: &dyn Fn(&Path) -> Option<Vec<String>>,
    visit: &mut dyn FnMut(&Path, &str, &Path, &GitDirs, usize) -> bool,
) {
    let ours = |p: &Path| writable.iter().any(|w| p.starts_with(w));
    let mut seen = 0usize;
    let mut queue: Vec<(PathBuf, PathBuf, usize)> = indexes(workspace)
        .into_iter()
        .map(|(i, root)| (i, root, 1))
        .collect();
    while let Some((index, root, depth)) = queue.pop() {
        if depth == 1 && skip_index(&index) {
            continue;
        }
        let read = match depth {
            1 => recorded_cached(&index),
            _ => recorded(&index).map(|(links, _)| links),
        };
        let links = match (read, known(&index)) {
            (Ok(l), _) => l,
            // An index the command made unreadable: the repositories it recorded before the
            // run are still looked at.
            (Err(why), Some(before)) => {
                eprintln!(
                    "cordon: warning: {}: {why}; only the nested repositories it recorded before the run were checked for planted Git configuration",
                    index.display()
                );
                before
            }
            (Err(why), None) => {
                eprintln!(
                    "cordon: warning: {}: {why}; the nested repositories it records were not checked for planted Git configuration",
                    index.display()
                );
                continue;
            }
        };
        for link in links {
            seen += 1;
            if seen > MAX_REPOS {
                eprintln!(
                    "cordon: warning: more than {MAX_REPOS} nested repositories; those past it were not checked for planted Git configuration"
                );
                return;
            }
            let nested = root.join(&link);
            let Some(dirs) = git_dirs(&nested) else {
                continue;
            };
            if !ours(&dirs.git_dir) {
                continue;
            }
            if visit(&index, &link, &nested, &dirs, depth) && depth < MAX_DEPTH {
                queue.push((dirs.git_dir.join("index"), nested, depth + 1));
            }
        }
    }
}

/// Reads the gitlinks and the recorded repositories' Git files before the command runs;
/// `None` when the workspace has no repository. `writable` are the run's writable roots,
/// canonical.
pub fn before(workspace: &Path, writable: &[PathBuf]) -> Option<Before> {
    let list = indexes(workspace);
    if list.is_empty() {
        return None;
    }
    let known: Vec<(PathBuf, Vec<String>)> = list
        .into_iter()
        .map(|(index, _)| {
            let links = recorded_cached(&index).unwrap_or_default();
            (index, links)
        })
        .collect();
    let mut snapshot: Snapshot = side_files(workspace)
        .into_iter()
        .map(|p| {
            let print = fingerprint(&p);
            (p, print)
        })
        .collect();
    // Nothing recorded, nothing to walk (and the index, which can be megabytes, is not read
    // a second time).
    let nothing = known.iter().all(|(_, l)| l.is_empty());
    let skip = |_: &Path| nothing;
    walk(
        workspace,
        writable,
        &skip,
        &|_| None,
        &mut |_, _, _, dirs, _| {
            for p in watched(dirs) {
                let print = fingerprint(&p);
                snapshot.push((p, print));
            }
            true
        },
    );
    Some(Before {
        known,
        snapshot,
        at: SystemTime::now(),
    })
}

/// Moves aside what the command left in recorded repositories (see the module's text):
/// in a repository the index gained, every configuration naming a program and hooks; in one
/// recorded before, those whose content changed during the run. `writable` are the run's
/// writable roots, canonical: only what lies in them is the command's.
pub fn after(workspace: &Path, writable: &[PathBuf], before: &Before) -> Vec<Refused> {
    let mut out = Vec::new();
    let known_links = |index: &Path| {
        before
            .known
            .iter()
            .find(|(i, _)| i == index)
            .map(|(_, l)| l.as_slice())
    };
    // The common case: an index that recorded no gitlink and was not written since (nor the
    // shared index a split one names) can record none now.
    let skip = |index: &Path| {
        known_links(index).is_some_and(<[String]>::is_empty)
            && !changed_since(index, before.at)
            && !shared_index_changed_since(index, before.at)
    };
    // The other linked worktrees' `config.worktree`: read by git once the repository turns
    // `extensions.worktreeConfig` on (as `git sparse-checkout` does), so one planted now
    // would run later.
    for p in side_files(workspace) {
        let now = fingerprint(&p);
        let was = before.was(&p).and_then(|w| w.as_deref());
        if now.is_some() && was != now.as_deref() && writable.iter().any(|w| p.starts_with(w)) {
            out.extend(now.as_deref().and_then(|bytes| refuse(&p, was, bytes)));
        }
    }
    // Repositories (their folders) found new or changed, whose nested ones count as new.
    let mut suspect: Vec<PathBuf> = Vec::new();
    walk(
        workspace,
        writable,
        &skip,
        &|index| known_links(index).map(<[String]>::to_vec),
        &mut |index, link, nested, dirs, depth| {
            let under_suspect = suspect.iter().any(|s| nested.starts_with(s) && s != nested);
            let new = under_suspect
                || (depth == 1 && known_links(index).is_some_and(|k| !k.iter().any(|l| l == link)));
            let mut changed_any = new;
            for p in watched(dirs) {
                // What lies outside the writable roots the command could not have changed.
                if !writable.iter().any(|w| p.starts_with(w)) {
                    continue;
                }
                let now = fingerprint(&p);
                let Some(bytes) = now.as_deref() else {
                    continue;
                };
                let was = before.was(&p).and_then(|w| w.as_deref());
                if new || was != Some(bytes) {
                    changed_any = true;
                    out.extend(refuse(&p, if new { None } else { was }, bytes));
                }
            }
            if changed_any {
                suspect.push(nested.to_path_buf());
            }
            true
        },
    );
    out
}

impl Before {
    /// What `p` held before the run, if it was looked at.
    fn was(&self, p: &Path) -> Option<&Option<Vec<u8>>> {
        self.snapshot.iter().find(|(q, _)| q == p).map(|(_, f)| f)
    }
}

/// Moves `p` aside when what it now holds runs something it did not before: a
/// configuration with a setting naming a program that `was` (its content before the run, if
/// known) did not have, or a hooks folder with hooks (`bytes` is its content, or for hooks
/// its listing). A file git rewrote around the user's own settings is left alone.
fn refuse(p: &Path, was: Option<&[u8]>, bytes: &[u8]) -> Option<Refused> {
    if p.file_name().is_some_and(|n| n == "hooks") {
        return has_hooks(p)
            .then(|| move_aside(p, vec!["hooks".into()]))
            .flatten();
    }
    if let Some(why) = bytes.strip_prefix(UNREADABLE.as_bytes()) {
        let why = String::from_utf8_lossy(why);
        return move_aside(p, vec![format!("{UNREADABLE}{why})")]);
    }
    let had = was.map_or_else(Vec::new, |w| program_settings(&String::from_utf8_lossy(w)));
    let mut keys: Vec<String> = Vec::new();
    for (key, value) in program_settings(&String::from_utf8_lossy(bytes)) {
        if !had.contains(&(key.clone(), value)) && !keys.contains(&key) {
            keys.push(key);
        }
    }
    (!keys.is_empty()).then(|| move_aside(p, keys)).flatten()
}

/// A protected Git configuration file that the host replaced during the run, which lost
/// its cover inside (the command may have written it before cordon ended the run): moved
/// aside if it now names a program it did not name `before`, as in nested repositories.
/// Also returns the other settings that are new since `before` (the host's change, or the
/// command's), for the user to review. (Linux's backend is the one whose covers are mounts.)
#[cfg(target_os = "linux")]
pub fn after_lost_cover(path: &Path, before: &[u8]) -> (Option<Refused>, Vec<String>) {
    let now = match read_small(path) {
        Ok(now) => now,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (restore(path, before), Vec::new());
        }
        // Not a configuration any more (a FIFO, a link, a giant): moved aside, and what it
        // held before the run put back.
        Err(e) => {
            let refused = move_aside(path, vec![format!("(not a configuration: {e})")]);
            let _ = restore(path, before);
            return (refused, Vec::new());
        }
    };
    let had = settings(&String::from_utf8_lossy(before));
    let mut changed: Vec<String> = Vec::new();
    for (key, value) in settings(&String::from_utf8_lossy(&now)) {
        if !had.contains(&(key.clone(), value)) && !changed.contains(&key) {
            changed.push(key);
        }
    }
    (refuse(path, Some(before), &now), changed)
}

/// Puts back a Git configuration the command removed while it was unprotected (what it
/// held before the run; the host's change then is lost, and said).
#[cfg(target_os = "linux")]
fn restore(path: &Path, before: &[u8]) -> Option<Refused> {
    let staged = path.with_file_name("config.cordon-restore");
    let written = fs::write(&staged, before).and_then(|()| fs::rename(&staged, path));
    match written {
        Ok(()) => eprintln!(
            "cordon: warning: {} was removed while it was unprotected; cordon put back what it held before the run (a change made outside the sandbox during the run is not in it)",
            path.display()
        ),
        Err(e) => eprintln!(
            "cordon: warning: {} was removed while it was unprotected, and putting it back failed: {e}",
            path.display()
        ),
    }
    None
}

/// Whether a shared index (`sharedindex.*`, beside `index`) changed at or after `at`.
fn shared_index_changed_since(index: &Path, at: SystemTime) -> bool {
    let Some(Ok(entries)) = index.parent().map(fs::read_dir) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        e.file_name().to_string_lossy().starts_with("sharedindex.") && changed_since(&e.path(), at)
    })
}

/// Whether `path`'s inode changed (was created, written, renamed) at or after `at`. The
/// change time cannot be set back from inside, unlike the modification time.
fn changed_since(path: &Path, at: SystemTime) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    let changed = {
        use std::os::unix::fs::MetadataExt;
        let secs = u64::try_from(meta.ctime()).unwrap_or(0);
        let nanos = u32::try_from(meta.ctime_nsec()).unwrap_or(0);
        SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)
    };
    #[cfg(not(unix))]
    let changed = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    // Filesystem timestamps are coarser than the clock: a change in the same tick counts.
    changed + Duration::from_millis(10) >= at
}

/// Whether a hooks folder holds a hook (git's own `*.sample` files run nothing).
fn has_hooks(dir: &Path) -> bool {
    let Ok(rd) = fs::read_dir(dir) else {
        return false;
    };
    rd.filter_map(Result::ok)
        .any(|e| !e.file_name().to_string_lossy().ends_with(".sample"))
}

/// Renames `path` to `NAME.cordon-refused` (or `.cordon-refused-N` when that exists).
fn move_aside(path: &Path, keys: Vec<String>) -> Option<Refused> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let mut to = path.with_file_name(format!("{name}.cordon-refused"));
    let mut n = 1;
    while fs::symlink_metadata(&to).is_ok() {
        n += 1;
        to = path.with_file_name(format!("{name}.cordon-refused-{n}"));
    }
    match fs::rename(path, &to) {
        Ok(()) => Some(Refused {
            path: path.to_path_buf(),
            keys,
            moved_to: to,
        }),
        Err(e) => {
            eprintln!(
                "cordon: warning: {} names programs your git would run ({}), and moving it aside failed: {e}; remove it before using git there",
                path.display(),
                keys.join(", ")
            );
            None
        }
    }
}

/// Says each refusal on stderr and returns its audit event.
pub fn report(r: Refused) -> cordon_audit::Event {
    eprintln!(
        "cordon: refused: the command left {} naming programs your own git would run ({}); moved to {}. Review it before using git in that repository.",
        r.path.display(),
        r.keys.join(", "),
        r.moved_to.display()
    );
    cordon_audit::Event::GitConfigRefused {
        path: r.path,
        keys: r.keys,
        moved_to: r.moved_to,
    }
}
