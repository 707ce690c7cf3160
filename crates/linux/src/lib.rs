//! cordon's Linux backend: confines one command with namespaces, a read-only mount view,
//! Landlock and a small init that leaves nothing behind.
//!
//! The caller (the CLI) hands in a [`Spec`] of plain data; [`prepare`] turns it into a
//! [`Plan`] by resolving paths on the host; [`run`] executes the plan and returns how the
//! command ended. All `unsafe` lives in `sys/`.
#![deny(unsafe_code)]

mod caps;
mod cover_watch;
mod error;
mod exec;
mod execs;
mod host_sockets;
mod init;
mod landlock_rules;
pub mod limits;
mod mounts;
mod prepare;
pub mod probe;
mod pty;
pub mod seccomp;
mod spawn;
mod sys;
mod violations;
mod weaker;

pub use cover_watch::{LostCover, LOST_COVER};
pub use error::{PrepareError, RunError, Stage};
pub use execs::ExecRequest;
pub use limits::{LimitError, Limits, Mechanism, Trip};
pub use mounts::{Mount, MountKind};
pub use prepare::{is_empty_dir, prepare, Placeholder, Plan};
pub use pty::UserTerminal;
pub use seccomp::Refusal;
pub use spawn::{run, spawn, Outcome, Sandbox};
pub use violations::{summary, Kill, Tripwire, Violation};

use std::ffi::OsString;
use std::path::PathBuf;

/// How strongly the command is confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// User, mount, pid, network, ipc and uts namespaces, plus Landlock: every guarantee.
    Namespaces,
    /// Landlock and no_new_privs only, for machines without unprivileged user namespaces;
    /// used only when the user asked for it by name.
    LandlockOnly,
}

/// Network mode as far as this backend is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    /// A fresh network namespace with only loopback.
    Off,
    /// The same namespace, plus a TCP listener on `127.0.0.1:port` inside it that init makes
    /// and hands to cordon ([`Sandbox::take_listener`]): cordon's proxy serves it from the
    /// host side, so the only way out is a connection the proxy accepts and decides on.
    Proxied { port: u16 },
    /// The host's network.
    Full,
}

impl NetMode {
    /// Whether the sandbox gets its own network namespace (no route to the host's network).
    pub fn isolated(self) -> bool {
        !matches!(self, NetMode::Full)
    }
}

/// Everything the backend needs to confine one command. Paths are absolute.
#[derive(Debug, Clone)]
pub struct Spec {
    pub argv: Vec<OsString>,
    /// The environment the command gets (already scrubbed by policy).
    pub env: Vec<(OsString, OsString)>,
    /// Where the command starts; the workspace when the caller's directory is outside it.
    pub cwd: PathBuf,
    pub workspace: PathBuf,
    /// Extra writable paths (missing ones are skipped).
    pub writable: Vec<PathBuf>,
    pub deny_read: Vec<PathBuf>,
    /// Protected paths inside the workspace (read-only, uncreatable).
    pub protected: Vec<PathBuf>,
    /// cordon's own configuration (the user's layer's folder, a `--policy` file): protected
    /// like the paths above wherever a writable root would otherwise hold them.
    pub own_files: Vec<PathBuf>,
    pub net: NetMode,
    pub mode: Mode,
    /// Resource limits (none by default; core files are always off).
    pub limits: Limits,
    /// Kill the sandbox at the first syscall the filter refuses (`--kill-on-violation`).
    pub kill_on_syscall_violation: bool,
    /// Make the workspace an overlay whose writes land here (`--transaction`).
    pub overlay: Option<Overlay>,
    /// Hold every exec for a verdict ([`Sandbox::take_exec_requests`]); for command rules.
    pub supervise_exec: bool,
    /// Give the command a Unix socket at [`REQUEST_DOOR`] on which `cordon request` asks
    /// cordon for a wider boundary ([`Sandbox::take_request_door`]; namespace mode only).
    pub request_door: bool,
}

/// Where the command finds the request door inside the sandbox (a private, read-only tmpfs
/// at `/run/cordon`; the host's /run is never shown).
pub const REQUEST_DOOR: &str = "/run/cordon/request.sock";

/// The directories of an overlaid workspace: overlayfs's upper and work directories, on one
/// filesystem, outside every path the sandbox can see or write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    pub upper: PathBuf,
    pub work: PathBuf,
}
