//! Applies a `WindowsPlan` on Windows: placeholders and ACLs, the restricted token, the job
//! object, and the command's process.
//!
//! Built: everything of unelevated mode (placeholders, ACL rewrite with skip/revoke, token,
//! job, process, exit relay, the Everyone-writable audit and its cached findings), and
//! elevated mode's setup ([`setup`]: accounts, DPAPI, logon-screen hiding, logon rights,
//! firewall COM, WFP), its check, its removal ([`remove`]), and its logon-token cache
//! ([`logon`]) and [`run_as`].
//! Elevated runs go through the long-lived broker, the sandbox account started once
//! ([`broker`], shielded by [`shield`]); the copy-per-command hand-off ([`account`]) is the
//! per-command work both share. On a console, [`run_as`]'s command gets a pseudo console of its
//! own ([`conpty`]); elevated runs (the broker starts the command) still hand it cordon's
//! console handles.

pub mod account;
#[cfg(test)]
mod account_tests;
pub mod accounts;
pub mod acl;
pub mod audit;
pub mod broker;
#[cfg(test)]
mod broker_tests;
pub mod conpty;
pub mod console_keys;
pub mod elevate;
pub mod firewall;
pub mod host;
pub mod job;
pub mod listener;
pub mod logon;
pub mod pipe;
pub mod process;
pub mod remove;
#[cfg(test)]
mod remove_tests;
pub mod setup;
#[cfg(test)]
mod setup_tests;
pub mod shield;
pub mod sid;
pub mod tcp_owner;
#[cfg(test)]
mod tests;
pub mod token;
pub mod wfp;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::time::Duration;

use crate::plan::acl::{AclEdit, Action};
use crate::plan::WindowsPlan;
use crate::winpath::WinPath;
pub use host::RealHost;
pub use process::Exit;

/// The NUL-terminated UTF-16 string at `p`, copied.
///
/// # Safety
/// `p` must be null or point at a NUL-terminated UTF-16 string.
pub unsafe fn from_wide_ptr(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the caller promises a terminator; the loop stops at it.
    let len = (0..).take_while(|&i| unsafe { *p.add(i) } != 0).count();
    // SAFETY: `len` initialised units before the terminator.
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A NUL-terminated UTF-16 copy of `s` for Win32 calls.
pub fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// A step of applying the plan that failed, with the path it was about.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("creating placeholder {path}")]
    Placeholder {
        path: WinPath,
        #[source]
        source: io::Error,
    },
    #[error("setting the ACL of {path}")]
    Acl {
        path: WinPath,
        #[source]
        source: io::Error,
    },
    #[error("creating the temporary folder {path}")]
    Temp {
        path: WinPath,
        #[source]
        source: io::Error,
    },
    #[error("elevated mode runs commands as {account}: start them with exec::run_as and the account's logon token (exec::logon::TokenCache), from the broker")]
    NotTheAccount { account: &'static str },
    #[error("building the restricted token")]
    Token(#[source] io::Error),
    #[error("creating the job object")]
    Job(#[source] io::Error),
    #[error("making the command's standard handles (NUL, pipes in place of the console)")]
    Stdio(#[source] io::Error),
    #[error("starting {program}")]
    Start {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("waiting for the command")]
    Wait(#[source] io::Error),
    #[error("starting cordon as {account} (CreateProcessWithLogonW, no profile)")]
    Logon {
        account: String,
        #[source]
        source: io::Error,
    },
    #[error("the hand-off to the sandbox account: {0}")]
    Handoff(String),
    /// cordon's copy as the account refused or failed to start the command; `code` is the
    /// exit status for it (125 setup, 126 start).
    #[error("{message}")]
    Refused { code: i32, message: String },
    #[error("{0}")]
    Command(String),
}

/// What [`apply`] did to DACLs (plain data for the audit log's `acl_applied`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The edits written, path by path in the order the DACLs were rewritten.
    pub written: Vec<AclEdit>,
    /// cordon's ACEs removed.
    pub revoked: Vec<crate::plan::acl::Revoke>,
    /// Edits already in place, so not written.
    pub skipped: usize,
}

/// Makes the machine match the plan's file-system side: the temporary folder, placeholders,
/// then one DACL rewrite per path that has an edit to apply or an ACE to revoke. A path
/// whose edits are all `Skip` is not written (the common case from the second run on).
/// In elevated mode the plan also holds the sandbox group's grants on the writable roots
/// and its deny-read ACEs on the secrets; they are applied the same way. Returns what it
/// wrote and skipped.
pub fn apply(plan: &WindowsPlan) -> Result<Applied, ExecError> {
    fs::create_dir_all(plan.temp.to_api()).map_err(|source| ExecError::Temp {
        path: plan.temp.clone(),
        source,
    })?;
    for p in &plan.placeholders {
        let made = if p.is_dir {
            fs::create_dir(p.path.to_api())
        } else {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p.path.to_api())
                .and_then(|mut f| f.write_all(p.content))
        };
        match made {
            Ok(()) => {}
            // Made by a concurrent run, or by someone else just now: either way it is about
            // to get its deny ACE.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(ExecError::Placeholder {
                    path: p.path.clone(),
                    source,
                })
            }
        }
    }
    let mut by_path: BTreeMap<WinPath, (Vec<&AclEdit>, Vec<&crate::plan::acl::Revoke>)> =
        BTreeMap::new();
    let mut done = Applied::default();
    for (e, action) in &plan.acl {
        match action {
            Action::Apply => by_path.entry(e.path.clone()).or_default().0.push(e),
            Action::Skip => done.skipped += 1,
        }
    }
    for r in &plan.revoke {
        by_path.entry(r.path.clone()).or_default().1.push(r);
    }
    for (path, (add, remove)) in by_path {
        let aces: Vec<crate::plan::acl::Ace> = remove.iter().map(|r| r.ace.clone()).collect();
        acl::rewrite_dacl(&path, &add, &aces).map_err(|source| ExecError::Acl { path, source })?;
        done.written.extend(add.into_iter().cloned());
        done.revoked.extend(remove.into_iter().cloned());
    }
    Ok(done)
}

/// A command as the executor takes it: argv, environment, working folder, timeout.
pub(crate) type Command<'a> = (
    &'a [String],
    &'a [(String, String)],
    &'a str,
    Option<Duration>,
);

/// Runs `argv` under the plan (already applied): restricted token, job, `env`, in `cwd`.
/// `argv[0]` must be a full path (see `cmdline::search_path`). The job is shown to `watch`
/// before the command resumes.
///
/// The token is derived from cordon's own. In elevated mode that is right only when this
/// process is the sandbox account (a broker started as it); otherwise use [`run_as`].
pub fn run(
    plan: &WindowsPlan,
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
    timeout: Option<Duration>,
    watch: Option<&job::JobWatch>,
) -> Result<Exit, ExecError> {
    let base = token::process_token().map_err(ExecError::Token)?;
    if let Some(account) = plan.account {
        let me = token::user_sid(&base).map_err(ExecError::Token)?;
        let want = setup::lookup_sid(account).map_err(|e| {
            ExecError::Command(format!(
                "the sandbox account {account}: {e}; {}",
                crate::plan::setup::SETUP_NEEDED
            ))
        })?;
        if me != want {
            return Err(ExecError::NotTheAccount { account });
        }
    }
    run_as(plan, &base, (argv, env, cwd, timeout), watch)
}

/// Runs `argv` under the plan with a restricted token derived from `base`: cordon's own
/// token (unelevated), or the sandbox account's logon token from
/// [`logon::TokenCache::token`] (elevated). Starting a process with another account's
/// token needs SeAssignPrimaryTokenPrivilege; without it the start fails with
/// ERROR_PRIVILEGE_NOT_HELD (1314), reported as such.
pub fn run_as(
    plan: &WindowsPlan,
    base: &std::os::windows::io::OwnedHandle,
    (argv, env, cwd, timeout): Command<'_>,
    watch: Option<&job::JobWatch>,
) -> Result<Exit, ExecError> {
    let program = argv.first().cloned().unwrap_or_default();
    if crate::cmdline::is_batch(&program) {
        return Err(ExecError::Command(format!(
            "{program}: batch files are run by cmd.exe, which re-parses their arguments; run `cmd /c` yourself if you mean it"
        )));
    }
    let line = crate::cmdline::command_line(argv).map_err(ExecError::Command)?;
    let block = crate::cmdline::env_block(env).map_err(ExecError::Command)?;
    // Inherited by the child: a crash or a missing floppy ends the process instead of opening
    // a dialog that would keep it (and the job) alive with nobody to answer it.
    // SAFETY: sets this process's error mode; no pointers involved.
    unsafe {
        windows_sys::Win32::System::Diagnostics::Debug::SetErrorMode(
            windows_sys::Win32::System::Diagnostics::Debug::SEM_FAILCRITICALERRORS
                | windows_sys::Win32::System::Diagnostics::Debug::SEM_NOGPFAULTERRORBOX,
        )
    };
    let restricted = token::restrict(base, &plan.token).map_err(ExecError::Token)?;
    let job = job::create(&plan.job).map_err(ExecError::Job)?;
    // On a console the command gets a pseudo console of its own, relayed by cordon; pipes
    // and files are handed over as they are.
    let relay = conpty::for_own_console().unwrap_or_else(|e| {
        eprintln!("cordon: warning: no pseudo console for the command ({e}); it gets pipes and NUL for this console's handles");
        None
    });
    // Without one, no console handle reaches the command (`conpty::handed_stdio`).
    let mut handed = match relay.as_ref().and_then(conpty::Relay::console) {
        Some(_) => None,
        None => Some(conpty::handed_stdio().map_err(ExecError::Stdio)?),
    };
    let stdio = match (relay.as_ref().and_then(conpty::Relay::console), &handed) {
        (Some(console), _) => process::Stdio::Console(console),
        (None, Some(h)) => process::Stdio::Handles(h.handles()),
        (None, None) => process::Stdio::Handles(process::own_stdio()),
    };
    let started = process::start(&restricted, &job, &program, &line, &block, cwd, stdio)
        .map_err(|source| ExecError::Start { program, source })?;
    if let Some(h) = handed.as_mut() {
        h.started();
    }
    if let Some(w) = watch {
        w.show(&job).map_err(ExecError::Job)?;
    }
    let timeout = timeout.or(plan.job.timeout_ms.map(Duration::from_millis));
    let exit = started.wait(&job, timeout).map_err(ExecError::Wait);
    // The command has ended: the pseudo console closes, its last output shows, and the
    // console gets its modes back, before the job (and what is left in it) goes.
    drop(relay);
    drop(job);
    // The job gone, its processes' pipe ends are closed: the last of their output shows.
    drop(handed);
    exit
}
