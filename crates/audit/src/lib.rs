//! cordon's audit log: one JSON object per line for each command, decision and refusal.
//!
//! The format is a stable boundary: tools read it, so fields are only ever added.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// How one guarantee stands for this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuaranteeStatus {
    /// Area from DESIGN.md: write, protected, read, env, network, processes, …
    pub area: String,
    /// `enforced`, `weakened` or `not_enforced`.
    pub state: String,
    /// What enforces it on this run, or why it does not hold.
    pub by: String,
}

/// One ACE on one path, as `acl_applied` reports it (Windows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclEntry {
    pub path: PathBuf,
    /// `allow` or `deny`.
    pub ace: String,
    /// The trustee, as a SID string (`S-1-5-…`).
    pub sid: String,
    /// The access mask (winnt.h's bits, e.g. 1245631 = 0x1301BF, the write grant).
    pub mask: u32,
    /// Where it passes down: `tree` (files and folders below), `files`, `folders`, or
    /// `this_only`.
    pub inherit: String,
    /// Why the plan wants it: `writable`, `pin_root`, `protected`, `pin_git_dir`,
    /// `everyone_writable`, `secret`, `account_workspace`, `account_program`, `account_tools`. Absent for a
    /// revoked ACE (an earlier run wrote it).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// It exited by itself.
    Exited,
    /// It died of a signal.
    Signaled,
    /// It could not be executed (not found, not executable).
    ExecFailed,
    /// cordon could not set up or enforce the policy; the command never ran.
    SetupFailed,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A workspace policy file widened the boundary without the user's approval; ignored.
    PolicyIgnored { file: PathBuf, ignored: Vec<String> },
    /// A transaction (`cordon run --transaction`) was created in cordon's state folder.
    TransactionCreated { name: String, workspace: PathBuf },
    /// A command in a transaction ended; what the transaction now holds.
    TransactionRecorded {
        name: String,
        added: usize,
        modified: usize,
        deleted: usize,
        renamed: usize,
        /// Bytes of new file content.
        bytes: u64,
        /// Changes to protected paths, which are never applied.
        refused: Vec<String>,
    },
    /// Changes of a transaction were applied to the real workspace (also when an interrupted
    /// apply was finished: `recovered`).
    TransactionApplied {
        name: String,
        applied: Vec<String>,
        /// Not applied: changed in the workspace since the transaction first saw them.
        conflicts: Vec<String>,
        /// Not applied: protected paths.
        refused: Vec<String>,
        /// Not applied: an I/O error.
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        failed: Vec<String>,
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        recovered: bool,
    },
    /// A transaction was discarded; the real workspace was not touched.
    TransactionDiscarded { name: String },
    /// The command is about to start inside the sandbox.
    CommandStart {
        argv: Vec<String>,
        cwd: PathBuf,
        workspace: PathBuf,
        policy_digest: String,
        backend: String,
        guarantees: Vec<GuaranteeStatus>,
        env_removed: Vec<String>,
    },
    /// The command (or cordon's attempt to start it) ended.
    CommandExit {
        /// cordon's own exit status for this run.
        status: i32,
        ending: Ending,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        signal: Option<i32>,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        message: Option<String>,
    },
    /// A resource limit tripped: the timeout ended the run, the kernel killed a process for
    /// memory, refused a fork at the process limit, or killed a process for a file too large.
    LimitExceeded {
        /// `timeout`, `memory`, `pids` or `file_size` (the `[limits]` key).
        limit: String,
        /// The limit as configured, e.g. `64M`, `90s`, `256`.
        value: String,
        /// What the kernel (or cordon) reported, e.g. how many processes were killed.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        detail: Option<String>,
    },
    /// A decision of cordon's egress proxy (`--net allow`) on one request: CONNECT tunnel
    /// or plain-HTTP request. Reported when it ends, with what crossed it.
    Network {
        /// `CONNECT`, `GET`, `POST`, …
        method: String,
        /// The destination as the client named it (lowercased).
        host: String,
        port: u16,
        /// `allowed`, `refused` (by policy; nothing was sent), or `failed` (allowed, but
        /// the destination could not be reached).
        decision: String,
        /// The allow-list entry that matched.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        rule: Option<String>,
        /// Why it was refused or failed: `code: explanation` (the code is the response's
        /// `X-Cordon-Refused` header).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        reason: Option<String>,
        /// The address the proxy connected to.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        address: Option<String>,
        bytes_up: u64,
        bytes_down: u64,
        duration_ms: u64,
    },
    /// The syscall filter refused a syscall (answered EPERM by cordon's supervisor; the
    /// syscall never ran).
    SyscallRefused {
        /// The process, as a pid on the host.
        pid: i32,
        /// Its command name, empty if it was already gone.
        process: String,
        /// `bpf`, `socket`, `ioctl`, `unshare`, …
        syscall: String,
        /// The argument that decided (`AF_PACKET`, `TIOCSTI`, `CLONE_NEWUSER`), if one did.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        detail: Option<String>,
        /// The rule that refused it.
        rule: String,
    },
    /// After the run, a Git configuration (or hooks folder) the command left in a nested
    /// repository the workspace records, naming programs the user's own git would run; cordon
    /// moved it aside.
    GitConfigRefused {
        path: PathBuf,
        /// `core.fsmonitor`, `filter.*.clean`, … or `hooks`.
        keys: Vec<String>,
        moved_to: PathBuf,
    },
    /// Windows, before the command starts: cordon made the file-system ACLs the sandbox
    /// rests on match the plan. Also written when nothing needed writing (the common case
    /// from the second run on), so every run says the ACLs were checked.
    AclApplied {
        /// ACEs added (each path's DACL rewritten once, with all of its edits).
        written: Vec<AclEntry>,
        /// ACEs of cordon's removed: on a path the policy no longer names, or changed.
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        revoked: Vec<AclEntry>,
        /// Wanted ACEs already in place, so not written.
        skipped: usize,
    },
    /// cordon killed the sandbox at a violation of a class in `terminate_on_violation`.
    SandboxKilled {
        /// `syscall` or `network`.
        class: String,
        /// What the violation was.
        reason: String,
    },
    /// A request for a human's approval: a `prompt` command rule (`command`), a network
    /// destination the policy says to ask about (`network`), or the agent's `cordon request`
    /// for a wider boundary (`request`).
    ApprovalRequested {
        /// Identifies the request and its `approval_decided` event.
        id: String,
        /// `command`, `network` or `request`.
        kind: String,
        /// The command line (secret-looking values masked), or `[host:port]` for `network`.
        subject: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        cwd: Option<PathBuf>,
        /// The rule's reason, or the agent's justification.
        reason: String,
        /// The rule that asked for a human, when one did.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        rule: Option<String>,
    },
    /// The answer to one approval request.
    ApprovalDecided {
        id: String,
        kind: String,
        subject: Vec<String>,
        /// `allow_once`, `allow_session`, `allow_always` or `deny`.
        decision: String,
        /// Who decided: `user` (a human, through `channel`), `timeout`, `session` (an earlier
        /// "this session" answer) or `broker` (cordon stopping with the request open).
        by: String,
        /// `terminal`, `console`, `session`, `timeout` or `broker`.
        channel: String,
        /// For `allow_always`: the file the rule was written to.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        written_to: Option<PathBuf>,
    },
}

/// An event with when and for which run it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339 UTC timestamp with milliseconds.
    pub ts: String,
    /// Identifies every event of one `cordon run`.
    pub run: String,
    #[serde(flatten)]
    pub event: Event,
}

impl Record {
    pub fn now(run: &str, event: Event) -> Record {
        Record {
            ts: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            run: run.to_string(),
            event,
        }
    }
}

/// Appends records to a JSON-lines file.
#[derive(Debug)]
pub struct Sink {
    file: File,
    path: PathBuf,
}

impl Sink {
    /// Opens (creating with mode 0600, and its parent folders with 0700) for appending. On
    /// Windows the file and folders inherit the ACL of where they are made (the state folder
    /// lives in `%LOCALAPPDATA%`, which only its user and administrators can read).
    pub fn open(path: &Path) -> io::Result<Sink> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let mut dirs = fs::DirBuilder::new();
            dirs.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
            dirs.create(parent)?;
        }
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        Ok(Sink {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record as one line in a single `write` (O_APPEND keeps lines whole).
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }
}

/// Reads every record of a log; a malformed line is an error naming its line number.
pub fn read_log(path: &Path) -> io::Result<Vec<Record>> {
    let reader = BufReader::new(File::open(path)?);
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}:{}: {e}", path.display(), i + 1),
            )
        })?;
        out.push(record);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_one_object_per_line() {
        let dir = std::env::temp_dir().join(format!("cordon-audit-{}", std::process::id()));
        let path = dir.join("sub/audit.jsonl");
        let mut sink = Sink::open(&path).unwrap();
        let start = Record::now(
            "r1",
            Event::CommandStart {
                argv: vec!["true".into()],
                cwd: "/ws".into(),
                workspace: "/ws".into(),
                policy_digest: "sha256:00".into(),
                backend: "linux-namespaces".into(),
                guarantees: vec![GuaranteeStatus {
                    area: "write".into(),
                    state: "enforced".into(),
                    by: "mount namespace".into(),
                }],
                env_removed: vec!["GITHUB_TOKEN".into()],
            },
        );
        let exit = Record::now(
            "r1",
            Event::CommandExit {
                status: 0,
                ending: Ending::Exited,
                signal: None,
                duration_ms: 3,
                message: None,
            },
        );
        sink.write(&start).unwrap();
        sink.write(&exit).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text
            .lines()
            .next()
            .unwrap()
            .contains("\"event\":\"command_start\""));
        assert_eq!(read_log(&path).unwrap(), vec![start, exit]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn acl_applied_is_one_flat_object_with_entries() {
        let entry = |reason: Option<&str>| AclEntry {
            path: r"C:\ws\.git\hooks".into(),
            ace: "deny".into(),
            sid: "S-1-5-21-1-2-3-1001".into(),
            mask: 0x000D_0156,
            inherit: "tree".into(),
            reason: reason.map(String::from),
        };
        let record = Record::now(
            "r1",
            Event::AclApplied {
                written: vec![entry(Some("protected"))],
                revoked: vec![entry(None)],
                skipped: 7,
            },
        );
        let json: serde_json::Value = serde_json::to_value(&record).unwrap();
        assert_eq!(json["event"], "acl_applied");
        assert_eq!(json["run"], "r1");
        assert_eq!(json["skipped"], 7);
        let written = &json["written"][0];
        assert_eq!(written["path"], r"C:\ws\.git\hooks");
        assert_eq!(written["ace"], "deny");
        assert_eq!(written["sid"], "S-1-5-21-1-2-3-1001");
        assert_eq!(written["mask"], 0x000D_0156);
        assert_eq!(written["inherit"], "tree");
        assert_eq!(written["reason"], "protected");
        assert!(json["revoked"][0].get("reason").is_none(), "{json}");
        let back: Record = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);

        // A run with nothing to write: no `revoked` key, an empty `written`.
        let quiet = Event::AclApplied {
            written: Vec::new(),
            revoked: Vec::new(),
            skipped: 3,
        };
        let text = serde_json::to_string(&Record::now("r2", quiet)).unwrap();
        assert!(text.contains(r#""event":"acl_applied""#), "{text}");
        assert!(text.contains(r#""written":[]"#), "{text}");
        assert!(!text.contains("revoked"), "{text}");
    }
}
