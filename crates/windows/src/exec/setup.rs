//! `cordon setup --elevated`: applies a [`SetupPlan`] as an administrator, and reads the
//! machine back for `cordon doctor` and for refusing elevated mode while setup is missing.
//!
//! Order (each step named in [`SetupError`]): the group and accounts with fresh passwords,
//! their DPAPI-protected passwords in the state folder, logon-screen hiding, logon rights;
//! then, with the accounts' SIDs known, the state folder's deny-read ACE, the firewall rules
//! (the broad block first) and the WFP filters. Every step is idempotent, so a setup that
//! stopped half-way is finished by running it again.

use std::fs;
use std::io::{self, Write};
use std::ptr::{null, null_mut};

use windows_sys::Win32::Foundation::ERROR_SUCCESS;
use windows_sys::Win32::Security::Authentication::Identity::{
    LsaAddAccountRights, LsaClose, LsaEnumerateAccountRights, LsaFreeMemory, LsaNtStatusToWinError,
    LsaOpenPolicy, LSA_OBJECT_ATTRIBUTES, LSA_UNICODE_STRING, POLICY_CREATE_ACCOUNT,
    POLICY_LOOKUP_NAMES,
};
use windows_sys::Win32::Security::{LookupAccountNameW, SID_NAME_USE};
use windows_sys::Win32::System::Registry::{
    RegCloseKey, RegCreateKeyExW, RegGetValueW, RegSetValueExW, HKEY, HKEY_LOCAL_MACHINE,
    KEY_QUERY_VALUE, KEY_SET_VALUE, REG_DWORD, REG_OPTION_NON_VOLATILE, RRF_RT_REG_DWORD,
};

use super::{accounts, acl, firewall, sid, token, wfp, wide};
use crate::plan::network::{accounts_plan, OFFLINE_ACCOUNT};
use crate::plan::setup::{
    compare, setup_plan, Observed, ObservedAccount, SetupInput, SetupPlan, SetupReport,
    WINLOGON_USER_LIST,
};
use crate::plan::InstalledAccounts;
use crate::sid::Sid;
use crate::winpath::WinPath;

/// The step of setup that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupStep {
    WrongUser,
    Group,
    Account(&'static str),
    Password(&'static str),
    Hide(&'static str),
    Rights(&'static str),
    LookupSid(&'static str),
    StateAcl,
    Firewall,
    Wfp,
}

impl std::fmt::Display for SetupStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupStep::WrongUser => write!(f, "checking who setup runs as"),
            SetupStep::Group => write!(f, "creating the group {}", accounts_plan().group),
            SetupStep::Account(a) => write!(f, "creating the account {a}"),
            SetupStep::Password(a) => write!(f, "storing the password of {a}"),
            SetupStep::Hide(a) => write!(f, "hiding {a} from the logon screen"),
            SetupStep::Rights(a) => write!(f, "granting the logon rights of {a}"),
            SetupStep::LookupSid(a) => write!(f, "looking up the SID of {a}"),
            SetupStep::StateAcl => write!(f, "hiding the state folder from the sandbox"),
            SetupStep::Firewall => write!(f, "installing the firewall rules"),
            SetupStep::Wfp => write!(f, "installing the WFP filters"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cordon setup --elevated: {step}")]
pub struct SetupError {
    pub step: SetupStep,
    #[source]
    pub source: io::Error,
}

fn at(step: SetupStep) -> impl FnOnce(io::Error) -> SetupError {
    move |source| SetupError { step, source }
}

/// Runs the whole setup (administrator only) and returns what is in place afterwards.
///
/// `for_user` is the SID of the account cordon will run for: DPAPI ties the passwords to
/// the account that protects them, so setup refuses to run as anyone else (an
/// over-the-shoulder elevation, where UAC asks for another administrator's credentials,
/// would store passwords the developer cannot read).
pub fn apply(input: &SetupInput, for_user: Option<&Sid>) -> Result<SetupReport, SetupError> {
    let me = token::process_token()
        .and_then(|t| token::user_sid(&t))
        .map_err(at(SetupStep::WrongUser))?;
    if let Some(want) = for_user.filter(|w| **w != me) {
        return Err(SetupError {
            step: SetupStep::WrongUser,
            source: io::Error::other(format!(
                "setup runs as {me} but cordon runs for {want}: the passwords would be protected for the wrong account; run it from an administrator account that is the one using cordon"
            )),
        });
    }
    let plan = setup_plan(input);
    let a = &plan.accounts;
    accounts::ensure_group(a.group).map_err(at(SetupStep::Group))?;
    for acc in &a.accounts {
        let password =
            accounts::new_password(a.password_bytes).map_err(at(SetupStep::Account(acc.name)))?;
        accounts::ensure_user(acc.name, &password).map_err(at(SetupStep::Account(acc.name)))?;
        accounts::ensure_member(a.group, acc.name).map_err(at(SetupStep::Account(acc.name)))?;
        let file = password_path(&plan, acc.name);
        accounts::protect(password.as_bytes())
            .and_then(|blob| write_atomic(&file, &blob))
            .map_err(at(SetupStep::Password(acc.name)))?;
    }
    for name in &plan.hide_from_logon {
        hide_from_logon(name).map_err(at(SetupStep::Hide(name)))?;
    }
    for acc in &a.accounts {
        let rights: Vec<&str> = plan
            .rights
            .iter()
            .filter(|(n, _)| *n == acc.name)
            .map(|(_, r)| *r)
            .collect();
        add_rights(acc.name, &rights).map_err(at(SetupStep::Rights(acc.name)))?;
    }
    let installed = installed_sids().map_err(|(name, source)| SetupError {
        step: SetupStep::LookupSid(name),
        source,
    })?;
    let plan = setup_plan(&SetupInput {
        installed: Some(installed),
        ..input.clone()
    });
    if let Some(edit) = &plan.state_acl {
        fs::create_dir_all(plan.state_dir.to_api()).map_err(at(SetupStep::StateAcl))?;
        if !edit.is_present(&acl::read_dacl(&plan.state_dir).unwrap_or_default()) {
            acl::rewrite_dacl(&plan.state_dir, &[edit], &[]).map_err(at(SetupStep::StateAcl))?;
        }
    }
    install_firewall(&plan).map_err(at(SetupStep::Firewall))?;
    wfp::Engine::open()
        .and_then(|e| e.install(&plan.wfp))
        .map_err(at(SetupStep::Wfp))?;
    Ok(check(input))
}

fn password_path(plan: &SetupPlan, account: &str) -> WinPath {
    plan.password_files
        .iter()
        .find(|(n, _)| *n == account)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| crate::plan::setup::password_file(&plan.state_dir, account))
}

/// Writes `data` next to `path` and renames it into place, so a reader never sees half.
pub(super) fn write_atomic(path: &WinPath, data: &[u8]) -> io::Result<()> {
    let parent = path.parent().ok_or_else(|| io::Error::other("no parent"))?;
    fs::create_dir_all(parent.to_api())?;
    let tmp = parent.child(&format!("{}.tmp", path.file_name().unwrap_or("password")));
    let mut f = fs::File::create(tmp.to_api())?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    fs::rename(tmp.to_api(), path.to_api())
}

fn install_firewall(plan: &SetupPlan) -> io::Result<()> {
    let fw = firewall::Firewall::open()?;
    for rule in &plan.firewall {
        fw.remove(&rule.name)?;
        fw.add(rule)?;
        // Read back: a rule the firewall changed or dropped is a failed setup.
        match fw.read(&rule.name)? {
            Some(got) if crate::plan::setup::same_rule(&got, rule) => {}
            got => {
                return Err(io::Error::other(format!(
                    "firewall rule `{}` reads back as {got:?}",
                    rule.name
                )))
            }
        }
    }
    Ok(())
}

/// The SID of a local account or group, by name.
pub fn lookup_sid(name: &str) -> io::Result<Sid> {
    let wname = wide(name);
    let mut sid_buf = vec![0u64; 16];
    let mut sid_len = (sid_buf.len() * 8) as u32;
    let mut domain = vec![0u16; 256];
    let mut domain_len = domain.len() as u32;
    let mut kind: SID_NAME_USE = 0;
    // SAFETY: buffers and their lengths are valid (68 bytes is the largest SID; 128 given).
    let ok = unsafe {
        LookupAccountNameW(
            null(),
            wname.as_ptr(),
            sid_buf.as_mut_ptr().cast(),
            &mut sid_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut kind,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success `sid_buf` holds a valid SID.
    unsafe { sid::read(sid_buf.as_mut_ptr().cast()) }
}

fn installed_sids() -> Result<InstalledAccounts, (&'static str, io::Error)> {
    let plan = accounts_plan();
    let get = |n: &'static str| lookup_sid(n).map_err(|e| (n, e));
    let online = plan
        .accounts
        .iter()
        .find(|a| a.online)
        .map_or(crate::plan::network::ONLINE_ACCOUNT, |a| a.name);
    Ok(InstalledAccounts {
        group: get(plan.group)?,
        offline: get(OFFLINE_ACCOUNT)?,
        online: get(online)?,
    })
}

struct Key(HKEY);

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: a key opened by RegCreateKeyExW, closed once.
        unsafe { RegCloseKey(self.0) };
    }
}

fn reg(status: u32) -> io::Result<()> {
    if status == ERROR_SUCCESS {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(status as i32))
    }
}

/// HKLM\…\SpecialAccounts\UserList\<name> = DWORD 0.
pub fn hide_from_logon(name: &str) -> io::Result<()> {
    let sub = wide(WINLOGON_USER_LIST);
    let mut key: HKEY = null_mut();
    // SAFETY: `sub` is NUL-terminated; `key` receives the opened key.
    reg(unsafe {
        RegCreateKeyExW(
            HKEY_LOCAL_MACHINE,
            sub.as_ptr(),
            0,
            null(),
            REG_OPTION_NON_VOLATILE,
            KEY_SET_VALUE | KEY_QUERY_VALUE,
            null(),
            &mut key,
            null_mut(),
        )
    })?;
    let key = Key(key);
    let value = wide(name);
    let zero = 0u32.to_le_bytes();
    // SAFETY: `key` is open with KEY_SET_VALUE; `zero` is the 4-byte DWORD.
    reg(unsafe { RegSetValueExW(key.0, value.as_ptr(), 0, REG_DWORD, zero.as_ptr(), 4) })
}

/// Whether `name` is hidden from the logon screen.
pub fn hidden_from_logon(name: &str) -> bool {
    let sub = wide(WINLOGON_USER_LIST);
    let value = wide(name);
    let mut data = 1u32;
    let mut size = 4u32;
    // SAFETY: `data` is a 4-byte place for the DWORD; `size` says so.
    let status = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            sub.as_ptr(),
            value.as_ptr(),
            RRF_RT_REG_DWORD,
            null_mut(),
            (&mut data as *mut u32).cast(),
            &mut size,
        )
    };
    status == ERROR_SUCCESS && data == 0
}

/// An LSA policy handle of the local machine, closed on drop.
pub(super) struct Lsa(pub(super) isize);

impl Lsa {
    pub(super) fn open() -> io::Result<Lsa> {
        // SAFETY: all-zero object attributes are what LsaOpenPolicy documents (reserved).
        let attrs: LSA_OBJECT_ATTRIBUTES = unsafe { std::mem::zeroed() };
        let mut h = 0isize;
        // SAFETY: local system; `attrs` and `h` are valid.
        let status = unsafe {
            LsaOpenPolicy(
                null(),
                &attrs,
                (POLICY_CREATE_ACCOUNT | POLICY_LOOKUP_NAMES) as u32,
                &mut h,
            )
        };
        nt(status)?;
        Ok(Lsa(h))
    }
}

impl Drop for Lsa {
    fn drop(&mut self) {
        // SAFETY: the policy handle from LsaOpenPolicy, closed once.
        unsafe { LsaClose(self.0) };
    }
}

pub(super) fn nt(status: i32) -> io::Result<()> {
    if status >= 0 {
        return Ok(());
    }
    // SAFETY: a pure status mapping.
    let code = unsafe { LsaNtStatusToWinError(status) };
    Err(io::Error::from_raw_os_error(code as i32))
}

fn add_rights(account: &str, rights: &[&str]) -> io::Result<()> {
    if rights.is_empty() {
        return Ok(());
    }
    let sid = sid::OwnedSid::new(&lookup_sid(account)?)?;
    let lsa = Lsa::open()?;
    let mut names: Vec<Vec<u16>> = rights.iter().map(|r| r.encode_utf16().collect()).collect();
    let strings: Vec<LSA_UNICODE_STRING> = names
        .iter_mut()
        .map(|n| LSA_UNICODE_STRING {
            Length: (n.len() * 2) as u16,
            MaximumLength: (n.len() * 2) as u16,
            Buffer: n.as_mut_ptr(),
        })
        .collect();
    // SAFETY: `sid` is valid; `strings` point into `names`, alive for the call.
    nt(
        unsafe {
            LsaAddAccountRights(lsa.0, sid.as_psid(), strings.as_ptr(), strings.len() as u32)
        },
    )
}

/// The user rights `account` holds (empty when it has none, or does not exist).
fn account_rights(account: &str) -> io::Result<Vec<String>> {
    rights_of(&lookup_sid(account)?)
}

/// The user rights `sid` holds (empty when it has none); the account may be gone.
pub(super) fn rights_of(sid: &Sid) -> io::Result<Vec<String>> {
    let sid = sid::OwnedSid::new(sid)?;
    let lsa = Lsa::open()?;
    let mut list: *mut LSA_UNICODE_STRING = null_mut();
    let mut n = 0u32;
    // SAFETY: `sid` is valid; LSA allocates `list` (freed below).
    let status = unsafe { LsaEnumerateAccountRights(lsa.0, sid.as_psid(), &mut list, &mut n) };
    // STATUS_OBJECT_NAME_NOT_FOUND: the account holds no rights at all.
    if status as u32 == 0xC000_0034 {
        return Ok(Vec::new());
    }
    nt(status)?;
    let mut out = Vec::new();
    if !list.is_null() {
        // SAFETY: `list` holds `n` counted strings.
        for s in unsafe { std::slice::from_raw_parts(list, n as usize) } {
            // SAFETY: `Length` bytes at `Buffer`.
            out.push(String::from_utf16_lossy(unsafe {
                std::slice::from_raw_parts(s.Buffer, usize::from(s.Length / 2))
            }));
        }
        // SAFETY: LSA's allocation, freed once.
        unsafe { LsaFreeMemory(list.cast()) };
    }
    Ok(out)
}

/// Decrypts an account's stored password (DPAPI, the current user's key).
pub fn read_password(state_dir: &WinPath, account: &str) -> io::Result<String> {
    let file = crate::plan::setup::password_file(state_dir, account);
    let blob = fs::read(file.to_api())?;
    let bytes = accounts::unprotect(&blob)?;
    String::from_utf8(bytes).map_err(|_| io::Error::other("the stored password is not UTF-8"))
}

/// Reads the machine's elevated set-up back. Asks only; never changes anything and needs
/// no administrator (reading WFP filters may: then that check says why).
pub fn observe(state_dir: &WinPath) -> Observed {
    let plan = accounts_plan();
    let group = lookup_sid(plan.group).ok();
    let accounts = plan
        .accounts
        .iter()
        .map(|a| {
            let sid = lookup_sid(a.name).ok();
            ObservedAccount {
                name: a.name.to_string(),
                in_group: sid.is_some()
                    && accounts::local_groups(a.name)
                        .is_ok_and(|g| g.iter().any(|n| n.eq_ignore_ascii_case(plan.group))),
                password: read_password(state_dir, a.name).map(|_| ()).map_err(|e| {
                    format!(
                        "{}: {e}",
                        crate::plan::setup::password_file(state_dir, a.name)
                    )
                }),
                hidden: hidden_from_logon(a.name),
                rights: if sid.is_some() {
                    account_rights(a.name).unwrap_or_default()
                } else {
                    Vec::new()
                },
                sid,
            }
        })
        .collect::<Vec<_>>();
    let offline = accounts.first().and_then(|a| a.sid.clone());
    let fw = firewall::Firewall::open();
    let (firewall, firewall_local_rules_apply) = match (&fw, &offline) {
        (Err(e), _) => (Err(e.to_string()), Err(e.to_string())),
        (Ok(fw), offline) => {
            let rules = match offline {
                Some(sid) => crate::plan::network::firewall_rules(sid)
                    .iter()
                    .map(|r| fw.read(&r.name))
                    .collect::<io::Result<Vec<_>>>()
                    .map(|v| v.into_iter().flatten().collect())
                    .map_err(|e| e.to_string()),
                None => Ok(Vec::new()),
            };
            (rules, fw.local_rules_apply().map_err(|e| e.to_string()))
        }
    };
    let wfp = wfp::Engine::open()
        .and_then(|e| e.filter_names())
        .map_err(|e| format!("WFP: {e}"));
    let state_denied = match (&group, acl::read_dacl(state_dir)) {
        (Some(g), Ok(dacl)) => setup_plan(&SetupInput {
            state_dir: state_dir.clone(),
            proxy_ports: Vec::new(),
            installed: Some(InstalledAccounts {
                group: g.clone(),
                offline: g.clone(),
                online: g.clone(),
            }),
        })
        .state_acl
        .is_some_and(|e| e.is_present(&dacl)),
        _ => false,
    };
    Observed {
        group,
        accounts,
        firewall,
        firewall_local_rules_apply,
        wfp,
        state_denied,
    }
}

/// What is in place, judged against what setup makes (`cordon doctor`).
pub fn check(input: &SetupInput) -> SetupReport {
    compare(&observe(&input.state_dir), &input.proxy_ports)
}

/// The accounts for an elevated run, or the refusal (exit 125) naming what is missing.
pub fn installed(input: &SetupInput) -> Result<InstalledAccounts, String> {
    let report = check(input);
    match (&report.installed, report.complete()) {
        (Some(i), true) => Ok(i.clone()),
        _ => Err(report.refusal()),
    }
}
