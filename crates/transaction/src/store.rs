//! The transaction store in cordon's state folder: one directory per named transaction, its
//! metadata, recorded bases, overlay layers, and the lock that makes one cordon its user.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::change::{classify, Bases, ChangeSet};
use crate::error::{Context, Error, Result};
use crate::protect::Protection;
use crate::scan::scan;
use crate::{apply, name};

const FORMAT_VERSION: u32 = 1;

/// `<state>/transactions`.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// What `meta.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub version: u32,
    pub name: String,
    /// The canonical workspace the transaction's lower layer is.
    #[serde(with = "crate::wire")]
    pub workspace: PathBuf,
    /// RFC 3339 UTC.
    pub created: String,
    /// How many commands recorded their bases into it.
    pub commands: u64,
}

/// One line of `cordon tx list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub meta: Option<Meta>,
    /// Another cordon holds it (a command or an apply is running).
    pub busy: bool,
    /// An interrupted apply was finished (or rolled back) while listing.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recovered: Option<apply::Recovery>,
    /// Why it could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).at("create", &tmp)?;
    f.write_all(bytes).at("write", &tmp)?;
    f.sync_all().at("fsync", &tmp)?;
    fs::rename(&tmp, path).at("rename", path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at("fsync directory", dir)
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = fs::read(path).at("read", path)?;
    serde_json::from_slice(&text).map_err(|source| Error::Format {
        file: path.to_path_buf(),
        source,
    })
}

pub(crate) fn to_json<T: Serialize>(value: &T, file: &Path) -> Result<Vec<u8>> {
    // Compact: the journal of a 10,000-file apply is written on the critical path.
    serde_json::to_vec(value).map_err(|source| Error::Format {
        file: file.to_path_buf(),
        source,
    })
}

#[derive(Serialize, Deserialize)]
struct SeenRecord {
    path: crate::wire::RelPath,
    stamp: crate::entry::Stamp,
    entry: crate::entry::Entry,
}

/// `bases.json`: a list, not a map, since a JSON key cannot hold a non-UTF-8 path.
#[derive(Serialize, Deserialize)]
struct BaseRecord {
    path: crate::wire::RelPath,
    base: Option<crate::entry::Entry>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    stamp: Option<crate::entry::Stamp>,
}

fn mkdir_private(path: &Path) -> Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).at("create directory", path),
    }
}

/// How long opening a transaction waits for a lock that is only being let go: the run that
/// held it has returned, but a process it started (a forked child that has not exec'd yet,
/// the sandbox's init tearing its namespaces down) may hold the lock's file a moment longer.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Store {
    /// The store below cordon's state folder (`dirs::state_dir()`).
    pub fn new(state_dir: &Path) -> Store {
        Store {
            root: state_dir.join("transactions"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens the named transaction, or creates it (a generated name when `None`) for
    /// `workspace` (canonicalised here). Holds its lock until dropped. The bool is true when
    /// it was created by this call. An interrupted apply is finished first.
    pub fn open_or_create(
        &self,
        name: Option<&str>,
        workspace: &Path,
    ) -> Result<(Transaction, bool)> {
        let workspace = fs::canonicalize(workspace).at("canonicalise workspace", workspace)?;
        let name = match name {
            Some(n) => {
                name::validate(n)?;
                n.to_string()
            }
            None => name::generate(),
        };
        match self.open(&name) {
            Ok(tx) => {
                if tx.meta.workspace != workspace {
                    return Err(Error::OtherWorkspace {
                        name,
                        owner: tx.meta.workspace.clone(),
                        asked: workspace,
                    });
                }
                Ok((tx, false))
            }
            Err(Error::NotFound(_)) => Ok((self.create(&name, &workspace)?, true)),
            Err(e) => Err(e),
        }
    }

    fn create(&self, name: &str, workspace: &Path) -> Result<Transaction> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .at("create directory", &self.root)?;
        // Built under a temporary name and renamed into place, so a half-made transaction
        // never shows up under its real name.
        let dir = self.root.join(name);
        let tmp = self
            .root
            .join(format!(".new-{name}-{}", std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).at("remove", &tmp)?;
        }
        mkdir_private(&tmp)?;
        mkdir_private(&tmp.join("upper"))?;
        mkdir_private(&tmp.join("work"))?;
        let meta = Meta {
            version: FORMAT_VERSION,
            name: name.to_string(),
            workspace: workspace.to_path_buf(),
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            commands: 0,
        };
        let meta_path = tmp.join("meta.json");
        write_atomic(&meta_path, &to_json(&meta, &meta_path)?)?;
        let bases_path = tmp.join("bases.json");
        write_atomic(
            &bases_path,
            &to_json(&Vec::<BaseRecord>::new(), &bases_path)?,
        )?;
        match fs::rename(&tmp, &dir) {
            Ok(()) => {}
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                if dir.exists() {
                    // Another cordon made it first: share it.
                    return self.open(name);
                }
                return Err(e).at("create transaction", &dir);
            }
        }
        sync_dir(&self.root)?;
        self.open(name)
    }

    /// Opens an existing transaction and takes its lock (fails with `Busy` when another
    /// cordon holds it for longer than [`LOCK_WAIT`]). Finishes an interrupted apply before
    /// returning.
    pub fn open(&self, name: &str) -> Result<Transaction> {
        name::validate(name)?;
        let dir = self.root.join(name);
        if !dir.join("meta.json").exists() {
            return Err(Error::NotFound(name.to_string()));
        }
        let lock_path = dir.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .at("open lock", &lock_path)?;
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(fs::TryLockError::WouldBlock) => return Err(Error::Busy(name.to_string())),
                Err(fs::TryLockError::Error(e)) => return Err(e).at("lock", &lock_path),
            }
        }
        let meta: Meta = read_json(&dir.join("meta.json"))?;
        let mut tx = Transaction {
            dir,
            meta,
            _lock: lock,
            recovered: None,
        };
        tx.recovered = apply::recover(&tx)?;
        Ok(tx)
    }

    /// Every transaction, sorted by name; interrupted applies are finished on the way.
    pub fn list(&self) -> Result<Vec<Listing>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).at("read directory", &self.root),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| name::validate(n).is_ok())
            .collect();
        names.sort();
        for name in names {
            let listing = match self.open(&name) {
                Ok(tx) => Listing {
                    name,
                    meta: Some(tx.meta.clone()),
                    busy: false,
                    recovered: tx.recovered.clone(),
                    error: None,
                },
                Err(Error::Busy(_)) => Listing {
                    meta: read_json(&self.root.join(&name).join("meta.json")).ok(),
                    name,
                    busy: true,
                    recovered: None,
                    error: None,
                },
                Err(Error::NotFound(_)) => continue,
                Err(e) => Listing {
                    name,
                    meta: None,
                    busy: false,
                    recovered: None,
                    error: Some(e.to_string()),
                },
            };
            out.push(listing);
        }
        Ok(out)
    }
}

/// One open, locked transaction.
#[derive(Debug)]
pub struct Transaction {
    dir: PathBuf,
    meta: Meta,
    _lock: File,
    recovered: Option<apply::Recovery>,
}

impl Transaction {
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn workspace(&self) -> &Path {
        &self.meta.workspace
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The overlay's upperdir.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    /// The overlay's workdir (same filesystem as `upper`, as overlayfs requires).
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// What opening found and did about an interrupted apply.
    pub fn recovered(&self) -> Option<&apply::Recovery> {
        self.recovered.as_ref()
    }

    pub(crate) fn bases_path(&self) -> PathBuf {
        self.dir.join("bases.json")
    }

    pub(crate) fn bases(&self) -> Result<Bases> {
        let list: Vec<BaseRecord> = read_json(&self.bases_path())?;
        Ok(list
            .into_iter()
            .map(|r| {
                (
                    r.path,
                    crate::change::Base {
                        entry: r.base,
                        stamp: r.stamp,
                    },
                )
            })
            .collect())
    }

    pub(crate) fn write_bases(&self, bases: &Bases) -> Result<()> {
        let list: Vec<BaseRecord> = bases
            .iter()
            .map(|(path, base)| BaseRecord {
                path: path.clone(),
                base: base.entry.clone(),
                stamp: base.stamp,
            })
            .collect();
        let path = self.bases_path();
        write_atomic(&path, &to_json(&list, &path)?)
    }

    /// `seen.json`: a cache of upper-file hashes by stamp; losing it costs only time.
    fn seen(&self) -> crate::scan::Seen {
        let path = self.dir.join("seen.json");
        read_json::<Vec<SeenRecord>>(&path)
            .map(|list| {
                list.into_iter()
                    .map(|r| (r.path, (r.stamp, r.entry)))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn write_seen(&self, seen: &crate::scan::Seen) -> Result<()> {
        let list: Vec<SeenRecord> = seen
            .iter()
            .map(|(path, (stamp, entry))| SeenRecord {
                path: path.clone(),
                stamp: *stamp,
                entry: entry.clone(),
            })
            .collect();
        let path = self.dir.join("seen.json");
        write_atomic(&path, &to_json(&list, &path)?)
    }

    fn write_meta(&self) -> Result<()> {
        let path = self.dir.join("meta.json");
        write_atomic(&path, &to_json(&self.meta, &path)?)
    }

    /// The transaction's changes against the real workspace now.
    pub fn changes(&self, protection: &Protection) -> Result<ChangeSet> {
        let t0 = std::time::Instant::now();
        let bases = self.bases()?;
        let seen = self.seen();
        apply::timing("scan: read bases and seen", t0);
        let t0 = std::time::Instant::now();
        let (observed, _) = scan(&self.upper(), self.workspace(), &bases, &seen)?;
        apply::timing("scan: walk", t0);
        let t0 = std::time::Instant::now();
        let changes = classify(observed, &bases, protection);
        apply::timing("scan: classify", t0);
        Ok(ChangeSet {
            name: self.meta.name.clone(),
            workspace: self.meta.workspace.clone(),
            changes,
        })
    }

    /// Call when a command in the transaction has ended (overlay unmounted): records, for each
    /// path the transaction touched for the first time, what the real workspace held, so a
    /// later apply can tell the user's own edits (conflicts) from the transaction's. Returns
    /// the change set for the summary.
    pub fn record_bases(&mut self, protection: &Protection) -> Result<ChangeSet> {
        let mut bases = self.bases()?;
        let (observed, seen) = scan(&self.upper(), self.workspace(), &bases, &self.seen())?;
        self.write_seen(&seen)?;
        let before = bases.len();
        for o in &observed {
            bases
                .entry(o.path.clone())
                .or_insert_with(|| crate::change::Base {
                    entry: o.lower.clone(),
                    stamp: o.lower_stamp,
                });
        }
        if bases.len() != before {
            self.write_bases(&bases)?;
        }
        self.meta.commands += 1;
        self.write_meta()?;
        Ok(ChangeSet {
            name: self.meta.name.clone(),
            workspace: self.meta.workspace.clone(),
            changes: classify(observed, &bases, protection),
        })
    }

    /// Drops the transaction and everything in it. The real workspace is not touched.
    pub fn discard(self) -> Result<()> {
        // Renamed away first so a crash mid-removal leaves no half transaction under its name.
        let parent = self.dir.parent().unwrap_or(Path::new("/")).to_path_buf();
        let trash = parent.join(format!(
            ".discard-{}-{}",
            self.meta.name,
            std::process::id()
        ));
        fs::rename(&self.dir, &trash).at("discard", &self.dir)?;
        sync_dir(&parent)?;
        make_removable(&trash);
        fs::remove_dir_all(&trash).at("remove", &trash)
    }
}

/// The agent may leave directories without write or search permission in the upper layer;
/// give them back to the owner so removal does not stop halfway.
pub(crate) fn make_removable(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(e.path());
                }
            }
        }
    }
}
