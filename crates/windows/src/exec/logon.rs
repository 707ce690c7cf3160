//! Elevated mode's logon: the sandbox account's token from one `LogonUserW`, kept for every
//! command after it, so a command costs a process creation and never a logon or a profile.
//!
//! The token is a batch logon (setup grants SeBatchLogonRight and denies network and
//! Remote Desktop logons) with no profile loaded: `LogonUserW` does not load one, and
//! nothing here calls `LoadUserProfileW`. It is restricted per command by the same code as
//! unelevated mode (`token::restrict`: the write SID, the logon SID of *this* logon,
//! Everyone), then used by `CreateProcessAsUserW` in the job.
//!
//! Who may start a process with another account's token: a caller holding
//! SeAssignPrimaryTokenPrivilege (CreateProcessAsUserW) or SeImpersonatePrivilege
//! (CreateProcessWithTokenW), i.e. a service or an elevated administrator; an ordinary
//! unelevated process gets ERROR_PRIVILEGE_NOT_HELD (1314). That is why elevated mode runs
//! commands through a broker (docs/windows.md, "The broker"): a long-lived process holding
//! this cache and starting commands with [`super::run_as`].

use std::collections::HashMap;
use std::io;
use std::os::windows::io::{FromRawHandle, OwnedHandle};
use std::ptr::null_mut;
use std::sync::{Arc, Mutex};

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::Security::{LogonUserW, LOGON32_LOGON_BATCH, LOGON32_PROVIDER_DEFAULT};

use super::{setup, token, wide};
use crate::winpath::WinPath;

/// How the account logs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogonKind {
    /// LOGON32_LOGON_BATCH: needs SeBatchLogonRight, which setup grants.
    Batch,
    /// LOGON32_LOGON_INTERACTIVE (2): ordinary users hold this right by default.
    Interactive,
}

/// Logs `account` on with `password` and checks the token is that account's: a token for
/// anyone else (or a stub's fake handle) is refused rather than used.
pub fn logon(account: &str, password: &str, kind: LogonKind) -> io::Result<OwnedHandle> {
    let user = wide(account);
    let domain = wide(".");
    let pw = wide(password);
    let kind = match kind {
        LogonKind::Batch => LOGON32_LOGON_BATCH,
        LogonKind::Interactive => 2,
    };
    let mut h: HANDLE = null_mut();
    // SAFETY: NUL-terminated strings alive for the call; `h` receives the token handle.
    let ok = unsafe {
        LogonUserW(
            user.as_ptr(),
            domain.as_ptr(),
            pw.as_ptr(),
            kind,
            LOGON32_PROVIDER_DEFAULT,
            &mut h,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    if h.is_null() {
        return Err(io::Error::other("LogonUserW succeeded without a token"));
    }
    // SAFETY: on success `h` is a token handle owned by nobody else.
    let token = unsafe { OwnedHandle::from_raw_handle(h) };
    let want = setup::lookup_sid(account)?;
    let got = token::user_sid(&token).map_err(|e| {
        io::Error::other(format!("the logon token of {account} cannot be read: {e}"))
    })?;
    if got != want {
        return Err(io::Error::other(format!(
            "LogonUserW({account}) gave a token for {got}, not {want}"
        )));
    }
    Ok(token)
}

/// Logon tokens by account, each from one logon with the DPAPI-protected password from
/// the state folder. Held by the broker for its lifetime; a token whose logon session ends
/// (the broker restarts, the machine reboots) is replaced by the next logon.
pub struct TokenCache {
    state_dir: WinPath,
    kind: LogonKind,
    tokens: Mutex<HashMap<String, Arc<OwnedHandle>>>,
}

impl TokenCache {
    pub fn new(state_dir: WinPath, kind: LogonKind) -> TokenCache {
        TokenCache {
            state_dir,
            kind,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// `account`'s logon token, logging on only the first time.
    pub fn token(&self, account: &str) -> io::Result<Arc<OwnedHandle>> {
        let mut tokens = self
            .tokens
            .lock()
            .map_err(|_| io::Error::other("token cache poisoned"))?;
        if let Some(t) = tokens.get(account) {
            return Ok(Arc::clone(t));
        }
        let password = setup::read_password(&self.state_dir, account)?;
        let t = Arc::new(logon(account, &password, self.kind)?);
        tokens.insert(account.to_string(), Arc::clone(&t));
        Ok(t)
    }

    /// Drops a token (its logon is then made again on the next use), e.g. after a start
    /// failed with a token the system no longer accepts.
    pub fn forget(&self, account: &str) {
        if let Ok(mut t) = self.tokens.lock() {
            t.remove(account);
        }
    }

    /// How many logons are held.
    pub fn len(&self) -> usize {
        self.tokens.lock().map_or(0, |t| t.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
