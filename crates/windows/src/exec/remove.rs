//! `cordon setup --elevated --remove`: reads the machine, plans the removal with
//! `plan::remove` (its order and why are there) and runs each step as an administrator,
//! reporting it done, already absent, kept, or failed with the Win32 error.

use std::fs;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::{null, null_mut};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::ERROR_SUCCESS;
use windows_sys::Win32::NetworkManagement::NetManagement::{
    NetLocalGroupDel, NetUserDel, NetUserSetInfo, UF_ACCOUNTDISABLE, USER_INFO_1008,
};
use windows_sys::Win32::Security::Authentication::Identity::LsaRemoveAccountRights;
use windows_sys::Win32::System::Registry::{RegDeleteKeyValueW, HKEY_LOCAL_MACHINE};
use windows_sys::Win32::System::RemoteDesktop::{
    WTSEnumerateProcessesW, WTSFreeMemory, WTS_PROCESS_INFOW,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcessId, OpenProcess, TerminateProcess, WaitForSingleObject, PROCESS_TERMINATE,
};

use super::{acl, audit, broker, firewall, from_wide_ptr, setup, sid, token, wfp, wide};
use crate::plan::network::{accounts_plan, ACCOUNT_FLAGS};
use crate::plan::remove::{
    self as premove, decode_record, encode_record, removal_plan, Did, KnownPath, PathState,
    Principal, RemoveInput, RemovePlan, RemoveReport, Step,
};
use crate::plan::setup::{password_file, WINLOGON_USER_LIST};
use crate::sid::Sid;
use crate::winpath::WinPath;

/// Removal could not begin.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("cordon setup --elevated --remove: checking who it runs as")]
    WrongUser(#[source] io::Error),
}

/// ERROR_NONE_MAPPED: no account of that name.
const NONE_MAPPED: i32 = 1332;
/// How long stopped processes and brokers told to quit may take to be gone.
const GONE_WAIT: Duration = Duration::from_secs(10);

/// Reads what removal needs to know, changing nothing (the dry run's input too).
/// `program` is cordon.exe, whose grant for the group an elevated run added; `for_user` the
/// developer cordon runs for (its brokers' pipes are named after it and this logon session).
pub fn observe(
    state_dir: &WinPath,
    program: Option<&WinPath>,
    for_user: Option<&Sid>,
) -> RemoveInput {
    let plan = accounts_plan();
    let principal = |name: &'static str| Principal {
        name,
        lookup: match setup::lookup_sid(name) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.raw_os_error() == Some(NONE_MAPPED) => Ok(None),
            Err(e) => Err(format!("LookupAccountNameW: {e}")),
        },
    };
    let developer = token::process_token().ok().and_then(|t| {
        let user = for_user.cloned().or_else(|| token::user_sid(&t).ok())?;
        // As `cordon run` names its session (windows_run.rs, developer_session).
        let session = token::logon_sid(&t)
            .ok()?
            .map_or_else(|| "no-logon-sid".to_string(), |s| s.to_string());
        Some((user, session))
    });
    let recorded = fs::read_to_string(premove::record_file(state_dir).to_api())
        .map(|t| decode_record(&t))
        .unwrap_or_default();
    let password_files = plan
        .accounts
        .iter()
        .map(|a| password_file(state_dir, a.name))
        .filter(|f| fs::metadata(f.to_api()).is_ok())
        .collect();
    let mut broker_files = Vec::new();
    let mut managed = Vec::new();
    if let Ok(entries) = fs::read_dir(state_dir.to_api()) {
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let broker_file = name.starts_with("broker-")
                && [".key", ".lock", ".key.new"]
                    .iter()
                    .any(|x| name.ends_with(x));
            if broker_file {
                broker_files.push(state_dir.child(&name));
            }
            if name.starts_with("managed-") && name.ends_with(".txt") {
                managed.push(state_dir.child(&name));
            }
        }
    }
    broker_files.sort();
    let mut paths: Vec<(WinPath, String, bool)> = vec![(
        state_dir.clone(),
        "setup's deny-read for the group".to_string(),
        true,
    )];
    if let Some(p) = program {
        paths.push((
            p.clone(),
            "cordon.exe, read and run by the group".into(),
            true,
        ));
    }
    for list in &managed {
        for p in audit::load_paths(list) {
            if !paths.iter().any(|(q, _, _)| *q == p) {
                let file = list.file_name().unwrap_or("managed");
                paths.push((p, format!("an elevated run's, listed in {file}"), false));
            }
        }
    }
    let paths = paths
        .into_iter()
        .map(|(path, why, always)| {
            let state = match acl::read_dacl(&path) {
                Ok(aces) => PathState::Aces(aces),
                Err(e) if matches!(e.raw_os_error(), Some(2) | Some(3)) => PathState::Absent,
                Err(e) => PathState::Unreadable(format!("reading its DACL: {e}")),
            };
            KnownPath {
                path,
                why,
                state,
                always,
            }
        })
        .collect();
    RemoveInput {
        state_dir: state_dir.clone(),
        developer,
        group: principal(plan.group),
        accounts: plan.accounts.iter().map(|a| principal(a.name)).collect(),
        recorded,
        password_files,
        broker_files,
        paths,
    }
}

/// The removal as it would run now (`--dry-run --remove`).
pub fn plan(state_dir: &WinPath, program: Option<&WinPath>, for_user: Option<&Sid>) -> RemovePlan {
    removal_plan(&observe(state_dir, program, for_user))
}

/// Removes the elevated mode (administrator only), every step reported. Like setup, it
/// refuses to run as another account than `for_user`: the state folder it cleans is that
/// account's, and so are the brokers it tells to quit.
pub fn apply(
    state_dir: &WinPath,
    program: Option<&WinPath>,
    for_user: Option<&Sid>,
) -> Result<RemoveReport, RemoveError> {
    let me = token::process_token()
        .and_then(|t| token::user_sid(&t))
        .map_err(RemoveError::WrongUser)?;
    if let Some(want) = for_user.filter(|w| **w != me) {
        return Err(RemoveError::WrongUser(io::Error::other(format!(
            "removal runs as {me} but cordon runs for {want}: it would clean the wrong account's state folder; run it from an administrator account that is the one using cordon"
        ))));
    }
    let plan = plan(state_dir, program, Some(&me));
    Ok(premove::run(&plan, execute))
}

/// One step, for `plan::remove::run`.
pub fn execute(step: &Step) -> Result<Did, String> {
    match step {
        Step::Record { file, entries } => {
            setup::write_atomic(file, encode_record(entries).as_bytes())
                .map(|()| Did::Done(format!("{} SIDs", entries.len())))
                .map_err(|e| format!("{file}: {e}"))
        }
        Step::Disable { account } => disable(account),
        Step::StopProcesses { pipes, sids } => stop(pipes, sids),
        Step::DeleteAccount { account } => {
            let name = wide(account);
            // SAFETY: a NUL-terminated name; the local machine.
            let status = unsafe { NetUserDel(null(), name.as_ptr()) };
            net(
                "NetUserDel",
                status,
                premove::user_absent(status),
                "no such account",
            )
        }
        Step::DeleteGroup { group } => {
            let name = wide(group);
            // SAFETY: as above.
            let status = unsafe { NetLocalGroupDel(null(), name.as_ptr()) };
            net(
                "NetLocalGroupDel",
                status,
                premove::group_absent(status),
                "no such group",
            )
        }
        Step::RemoveRights { sid, .. } => match sid {
            Some(s) => remove_rights(s),
            None => Ok(Did::Absent("no SID known".into())),
        },
        Step::RemoveFirewallRules { prefix, known } => remove_firewall_rules(prefix, known),
        Step::RemoveWfp { .. } => remove_wfp(),
        Step::RemoveAces { path, aces, .. } => {
            let aces = aces.clone()?;
            match acl::rewrite_dacl(path, &[], &aces) {
                Ok(()) => Ok(Did::Done(format!("{} ACEs", aces.len()))),
                Err(e) if matches!(e.raw_os_error(), Some(2) | Some(3)) => {
                    Ok(Did::Absent("the path is gone".into()))
                }
                Err(e) => Err(format!("SetNamedSecurityInfoW: {e}")),
            }
        }
        Step::NoAces { .. } => Ok(Did::Absent(String::new())),
        Step::Unhide { account } => unhide(account),
        Step::DeletePassword { file, .. } => {
            if let Some(tmp) = file.parent().zip(file.file_name()) {
                let _ = fs::remove_file(tmp.0.child(&format!("{}.tmp", tmp.1)).to_api());
            }
            delete_file(file)
        }
        Step::DeleteBrokerFiles { files, .. } => {
            let mut n = 0;
            for f in files {
                match delete_file(f)? {
                    Did::Done(_) => n += 1,
                    Did::Absent(_) => {}
                }
            }
            Ok(match n {
                0 => Did::Absent("none left".into()),
                n => Did::Done(format!("{n} files")),
            })
        }
        Step::Forget { file } => {
            let did = delete_file(file)?;
            // The `elevated` folder goes too when nothing else is left in it.
            if let Some(dir) = file.parent() {
                let _ = fs::remove_dir(dir.to_api());
            }
            Ok(did)
        }
    }
}

fn net(call: &str, status: u32, absent: bool, why: &str) -> Result<Did, String> {
    match status {
        0 => Ok(Did::Done(String::new())),
        _ if absent => Ok(Did::Absent(why.into())),
        s => Err(format!(
            "{call}: {}",
            io::Error::from_raw_os_error(s as i32)
        )),
    }
}

fn delete_file(file: &WinPath) -> Result<Did, String> {
    match fs::remove_file(file.to_api()) {
        Ok(()) => Ok(Did::Done(String::new())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Did::Absent("no such file".into())),
        Err(e) => Err(format!("{file}: {e}")),
    }
}

/// UF_ACCOUNTDISABLE on top of setup's flags: no logon of any kind starts the account.
pub fn disable(account: &str) -> Result<Did, String> {
    let name = wide(account);
    let flags = USER_INFO_1008 {
        usri1008_flags: ACCOUNT_FLAGS | UF_ACCOUNTDISABLE,
    };
    // SAFETY: level 1008 takes one USER_INFO_1008; the name is NUL-terminated.
    let status = unsafe {
        NetUserSetInfo(
            null(),
            name.as_ptr(),
            1008,
            (&flags as *const USER_INFO_1008).cast(),
            null_mut(),
        )
    };
    net(
        "NetUserSetInfo",
        status,
        premove::user_absent(status),
        "no such account",
    )
}

/// Tells each of `pipes`' brokers to quit (the broker's own `Quit`, which it obeys from its
/// developer), waits for their pipes to go, then ends every process whose user is one of
/// `sids`: brokers of other developers or sessions, and commands still running.
pub fn stop(pipes: &[String], sids: &[Sid]) -> Result<Did, String> {
    let mut told = 0;
    let mut problems = Vec::new();
    for pipe in pipes {
        match broker::quit(pipe, crate::broker::VERSION) {
            Ok(true) => told += 1,
            Ok(false) => {}
            Err(e) => problems.push(format!("{pipe}: {e}")),
        }
    }
    let t0 = Instant::now();
    while told > 0 && t0.elapsed() < GONE_WAIT && pipes.iter().any(|p| broker::is_serving(p)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let still: Vec<&String> = pipes.iter().filter(|p| broker::is_serving(p)).collect();
    let ended = if sids.is_empty() {
        Vec::new()
    } else {
        end_processes(|_, sid| sid.is_some_and(|s| sids.contains(s)))?
    };
    // A pipe that still serves with no SID to find its process by is a broker left running.
    if sids.is_empty() && !still.is_empty() {
        problems.push(format!(
            "still serving after {}s: {}",
            GONE_WAIT.as_secs(),
            still
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return Err(problems.join("; "));
    }
    let mut parts = Vec::new();
    if told > 0 {
        parts.push(format!("{told} brokers told to quit"));
    }
    if !ended.is_empty() {
        let list: Vec<String> = ended
            .iter()
            .map(|(pid, n)| format!("{n} ({pid})"))
            .collect();
        parts.push(format!("ended {}", list.join(", ")));
    }
    if !problems.is_empty() {
        parts.push(format!("(asking over the pipe: {})", problems.join("; ")));
    }
    Ok(match (told, ended.len()) {
        (0, 0) => Did::Absent(
            "no broker served this developer's pipes and no process runs as the accounts".into(),
        ),
        _ => Did::Done(parts.join("; ")),
    })
}

/// Every process (id, user, image name), as the Terminal Services API lists them: the
/// service reads each token itself, so another account's shielded process is listed too.
pub fn processes() -> io::Result<Vec<(u32, Option<Sid>, String)>> {
    let mut info: *mut WTS_PROCESS_INFOW = null_mut();
    let mut n = 0u32;
    // SAFETY: the local server (a null handle), version 1; the call allocates `info`,
    // freed below.
    if unsafe { WTSEnumerateProcessesW(null_mut(), 0, 1, &mut info, &mut n) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    if !info.is_null() {
        // SAFETY: `info` holds `n` entries.
        for e in unsafe { std::slice::from_raw_parts(info, n as usize) } {
            let sid = match e.pUserSid.is_null() {
                true => None,
                // SAFETY: a SID inside the call's allocation, alive until freed below.
                false => unsafe { sid::read(e.pUserSid) }.ok(),
            };
            // SAFETY: a NUL-terminated name inside the allocation (or null).
            let name = unsafe { from_wide_ptr(e.pProcessName) };
            out.push((e.ProcessId, sid, name));
        }
        // SAFETY: the allocation WTSEnumerateProcessesW made, freed once.
        unsafe { WTSFreeMemory(info.cast()) };
    }
    Ok(out)
}

/// Terminates every process `matching` (id, user) selects, this one excepted, and waits for
/// each to be gone. SeDebugPrivilege (an administrator's) opens the broker whatever its
/// shielded DACL says. Returns (id, name) of what it ended, or every failure.
pub fn end_processes(
    matching: impl Fn(u32, Option<&Sid>) -> bool,
) -> Result<Vec<(u32, String)>, String> {
    if let Ok(t) = token::process_token() {
        // Without it the open below names the refusal.
        let _ = token::enable_privilege(&t, "SeDebugPrivilege");
    }
    // SAFETY: reads this process's id.
    let me = unsafe { GetCurrentProcessId() };
    let all = processes().map_err(|e| format!("WTSEnumerateProcessesW: {e}"))?;
    let mut ended = Vec::new();
    let mut failed = Vec::new();
    for (pid, sid, name) in all {
        if pid == me || pid == 0 || !matching(pid, sid.as_ref()) {
            continue;
        }
        // SAFETY: no pointers; the handle, if any, is owned below.
        let h = unsafe { OpenProcess(PROCESS_TERMINATE | super::shield::SYNCHRONIZE, 0, pid) };
        if h.is_null() {
            let e = io::Error::last_os_error();
            // ERROR_INVALID_PARAMETER: it exited since it was listed.
            if e.raw_os_error() != Some(87) {
                failed.push(format!("{name} ({pid}): OpenProcess: {e}"));
            }
            continue;
        }
        // SAFETY: a fresh process handle nothing else owns.
        let h = unsafe { OwnedHandle::from_raw_handle(h) };
        // SAFETY: a handle with PROCESS_TERMINATE.
        if unsafe { TerminateProcess(h.as_raw_handle(), 1) } == 0 {
            failed.push(format!(
                "{name} ({pid}): TerminateProcess: {}",
                io::Error::last_os_error()
            ));
            continue;
        }
        // SAFETY: a handle with SYNCHRONIZE.
        let waited =
            unsafe { WaitForSingleObject(h.as_raw_handle(), GONE_WAIT.as_millis() as u32) };
        if waited != 0 {
            failed.push(format!(
                "{name} ({pid}): still running after TerminateProcess"
            ));
            continue;
        }
        ended.push((pid, name));
    }
    match failed.is_empty() {
        true => Ok(ended),
        false => Err(failed.join("; ")),
    }
}

fn remove_rights(sid: &Sid) -> Result<Did, String> {
    let held = setup::rights_of(sid).map_err(|e| format!("LsaEnumerateAccountRights: {e}"))?;
    let osid = sid::OwnedSid::new(sid).map_err(|e| e.to_string())?;
    let lsa = setup::Lsa::open().map_err(|e| format!("LsaOpenPolicy: {e}"))?;
    // SAFETY: `osid` is valid for the call; AllRights takes no list.
    let status = unsafe { LsaRemoveAccountRights(lsa.0, osid.as_psid(), true, null(), 0) };
    if premove::rights_absent(status as u32) {
        return Ok(Did::Absent("no rights, no LSA account object".into()));
    }
    setup::nt(status).map_err(|e| format!("LsaRemoveAccountRights: {e}"))?;
    Ok(match held.is_empty() {
        true => Did::Done("its LSA account object".into()),
        false => Did::Done(held.join(", ")),
    })
}

/// Deletes `HKLM\…\UserList\<account>`.
pub fn unhide(account: &str) -> Result<Did, String> {
    let (sub, value) = (wide(WINLOGON_USER_LIST), wide(account));
    // SAFETY: both strings are NUL-terminated; HKLM is a predefined key.
    let status = unsafe { RegDeleteKeyValueW(HKEY_LOCAL_MACHINE, sub.as_ptr(), value.as_ptr()) };
    match status {
        ERROR_SUCCESS => Ok(Did::Done(String::new())),
        // ERROR_FILE_NOT_FOUND: no such value (or no UserList key at all).
        2 => Ok(Did::Absent("no such value".into())),
        s => Err(format!(
            "RegDeleteKeyValueW: {}",
            io::Error::from_raw_os_error(s as i32)
        )),
    }
}

fn remove_firewall_rules(prefix: &str, known: &[String]) -> Result<Did, String> {
    let fw = firewall::Firewall::open().map_err(|e| e.to_string())?;
    let lower = prefix.to_ascii_lowercase();
    let (mut names, unlisted) = match fw.names() {
        Ok(all) => (
            all.into_iter()
                .filter(|n| n.to_ascii_lowercase().starts_with(&lower))
                .collect::<Vec<_>>(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e)),
    };
    for k in known {
        if !names.contains(k) {
            names.push(k.clone());
        }
    }
    let mut removed = Vec::new();
    for n in &names {
        if fw.exists(n) {
            fw.remove(n).map_err(|e| format!("`{n}`: {e}"))?;
            removed.push(format!("`{n}`"));
        }
    }
    let note = unlisted.map_or_else(String::new, |e| {
        format!(" (the firewall could not list its rules, {e}: only setup's current names were looked for)")
    });
    Ok(match removed.is_empty() {
        true => Did::Absent(format!("no such rule{note}")),
        false => Did::Done(format!("{}{note}", removed.join(", "))),
    })
}

fn remove_wfp() -> Result<Did, String> {
    match wfp::Engine::open() {
        Ok(engine) => engine
            .uninstall()
            .map(premove::WfpRemoved::did)
            .map_err(|e| e.to_string()),
        // RPC_S_CANNOT_SUPPORT: this system has no filter engine (Wine), so it holds none of
        // cordon's objects. Any other failure to open is a failure: the filters may be there.
        Err(e) if e.to_string().contains("0x000006e4") => Ok(Did::Absent(format!(
            "no filter engine on this system ({e})"
        ))),
        Err(e) => Err(e.to_string()),
    }
}
