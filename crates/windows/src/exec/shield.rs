//! Kernel-object DACLs for the broker: the shield it raises around its own process, threads
//! and token default before serving, and its pipe's DACL (docs/windows.md, "The broker").
//!
//! Why the shield is shaped this way: the commands the broker starts run as the same account
//! with a write-restricted token whose restricting SIDs are the write SID, the account's logon
//! SID and Everyone. A write-restricted token passes *read* rights on its user SID alone and
//! write rights only when a restricting SID is granted them too. So the broker's process and
//! threads grant nothing to the account's own SID (the broker uses its pseudo-handles, which
//! need no DACL), nothing to the logon SID or Everyone, and `OWNER RIGHTS` only READ_CONTROL,
//! which takes away the implicit WRITE_DAC an object's owner otherwise has. The developer gets
//! what a client needs on the process: duplicating handles in and out, waiting for its exit.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::null_mut;

use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, ERROR_SUCCESS, HANDLE};
use windows_sys::Win32::Security::Authorization::{
    GetSecurityInfo, SetSecurityInfo, SE_KERNEL_OBJECT,
};
use windows_sys::Win32::Security::{
    AddAccessAllowedAce, InitializeAcl, SetTokenInformation, TokenDefaultDacl, ACL, ACL_REVISION,
    DACL_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR,
    TOKEN_DEFAULT_DACL,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Thread32First, Thread32Next, TH32CS_SNAPTHREAD, THREADENTRY32,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetCurrentProcessId, OpenThread};

use super::sid::OwnedSid;
use super::token;
use crate::plan::acl::{Ace, AceKind};
use crate::sid::Sid;

pub const READ_CONTROL: u32 = 0x0002_0000;
pub const WRITE_DAC: u32 = 0x0004_0000;
pub const SYNCHRONIZE: u32 = 0x0010_0000;
pub const GENERIC_ALL: u32 = 0x1000_0000;
pub const PROCESS_ALL_ACCESS: u32 = 0x001F_FFFF;
pub const THREAD_ALL_ACCESS: u32 = 0x001F_FFFF;
pub const PROCESS_DUP_HANDLE: u32 = 0x0040;
pub const PROCESS_QUERY_LIMITED_INFORMATION: u32 = 0x1000;
/// What a client of the broker may do to its process: duplicate its stdio in and the
/// command's handles out, wait for it to exit, read this DACL back.
pub const CLIENT_PROCESS_ACCESS: u32 =
    PROCESS_DUP_HANDLE | PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE | READ_CONTROL;
/// FILE_READ_DATA | FILE_WRITE_DATA | FILE_READ_ATTRIBUTES | SYNCHRONIZE | READ_CONTROL:
/// a client's end of the broker's pipe, without FILE_CREATE_PIPE_INSTANCE.
pub const PIPE_CLIENT_ACCESS: u32 = 0x1 | 0x2 | 0x80 | SYNCHRONIZE | READ_CONTROL;
/// FILE_GENERIC_READ | FILE_GENERIC_WRITE | FILE_CREATE_PIPE_INSTANCE: the broker's own
/// further instances (a write right, so the account's write-restricted commands lack it).
pub const PIPE_SERVER_ACCESS: u32 = 0x0012_0089 | 0x0012_0116 | 0x4;

/// `OWNER RIGHTS` (S-1-3-4): an ACE for it replaces the owner's implicit rights.
pub fn owner_rights() -> Sid {
    Sid::new(3, &[4])
}

/// An ACL of allow ACEs built in memory (DWORD-aligned), with the SIDs it was made from.
pub struct KernelAcl {
    buf: Vec<u32>,
    _sids: Vec<OwnedSid>,
}

impl KernelAcl {
    /// Allow ACEs, in order, no inheritance flags (kernel objects have no children).
    pub fn allow(entries: &[(Sid, u32)]) -> io::Result<KernelAcl> {
        let sids = entries
            .iter()
            .map(|(s, _)| OwnedSid::new(s))
            .collect::<io::Result<Vec<_>>>()?;
        let size = std::mem::size_of::<ACL>() as u32
            + sids
                .iter()
                .map(|s| (8 + s.byte_len() + 3) & !3)
                .sum::<u32>();
        let mut buf = vec![0u32; size.div_ceil(4) as usize];
        let acl = buf.as_mut_ptr().cast::<ACL>();
        // SAFETY: `buf` is DWORD-aligned and `size` bytes long.
        if unsafe { InitializeAcl(acl, size, ACL_REVISION) } == 0 {
            return Err(io::Error::last_os_error());
        }
        for ((_, mask), s) in entries.iter().zip(&sids) {
            // SAFETY: the ACL has room for this ACE (sized above); the SID lives in `sids`.
            if unsafe { AddAccessAllowedAce(acl, ACL_REVISION, *mask, s.as_psid()) } == 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(KernelAcl { buf, _sids: sids })
    }

    pub fn as_ptr(&self) -> *const ACL {
        self.buf.as_ptr().cast()
    }
}

/// What the broker's process DACL must be once shielded.
pub fn process_entries(developer: &Sid) -> Vec<(Sid, u32)> {
    vec![
        (Sid::local_system(), PROCESS_ALL_ACCESS),
        (developer.clone(), CLIENT_PROCESS_ACCESS),
        (owner_rights(), READ_CONTROL),
    ]
}

/// What each of the broker's threads' DACL (and its token's default DACL, from which later
/// threads and the broker's job objects take theirs) must be once shielded.
pub fn thread_entries() -> Vec<(Sid, u32)> {
    vec![
        (Sid::local_system(), THREAD_ALL_ACCESS),
        (owner_rights(), READ_CONTROL),
    ]
}

fn default_entries() -> Vec<(Sid, u32)> {
    vec![
        (Sid::local_system(), GENERIC_ALL),
        (owner_rights(), READ_CONTROL),
    ]
}

/// Raises the shield: first the token's default DACL (so a thread made from now on is born
/// shielded), then the process's DACL, then every existing thread's (the loader's workers
/// included), then reads the process's DACL back and refuses to go on unless it is exactly
/// what was set.
pub fn shield(developer: &Sid) -> io::Result<()> {
    let own = token::process_token()?;
    let default = KernelAcl::allow(&default_entries())?;
    let dd = TOKEN_DEFAULT_DACL {
        DefaultDacl: default.as_ptr().cast_mut(),
    };
    // SAFETY: `own` has TOKEN_ADJUST_DEFAULT; `dd` points at a valid ACL alive for the call
    // (the system copies it).
    let ok = unsafe {
        SetTokenInformation(
            own.as_raw_handle(),
            TokenDefaultDacl,
            (&dd as *const TOKEN_DEFAULT_DACL).cast(),
            std::mem::size_of::<TOKEN_DEFAULT_DACL>() as u32,
        )
    };
    if ok == 0 {
        return Err(io_ctx("setting the token's default DACL"));
    }
    let wanted = process_entries(developer);
    // SAFETY: the pseudo-handle of this process carries every access, WRITE_DAC included.
    set_dacl(unsafe { GetCurrentProcess() }, &KernelAcl::allow(&wanted)?)
        .map_err(|e| ctx("setting the process's DACL", e))?;
    let threads = KernelAcl::allow(&thread_entries())?;
    for tid in own_threads()? {
        // SAFETY: a thread id of this process from the snapshot; a handle we close below.
        let h = unsafe { OpenThread(WRITE_DAC, 0, tid) };
        if h.is_null() {
            // A thread that ended since the snapshot has nothing left to shield.
            continue;
        }
        // SAFETY: `h` is a fresh thread handle that nothing else owns.
        let h = unsafe { OwnedHandle::from_raw_handle(h) };
        set_dacl(h.as_raw_handle(), &threads)
            .map_err(|e| ctx(&format!("setting thread {tid}'s DACL"), e))?;
    }
    // SAFETY: this process's pseudo-handle, which carries READ_CONTROL.
    let got = unsafe { dacl_of(GetCurrentProcess()) }
        .map_err(|e| ctx("reading the process's DACL back", e))?;
    let expect: Vec<(Sid, u32)> = wanted;
    let got_pairs: Vec<(Sid, u32)> = got
        .iter()
        .filter(|a| a.kind == AceKind::Allow)
        .map(|a| (a.sid.clone(), a.mask))
        .collect();
    if got.iter().any(|a| a.kind != AceKind::Allow) || got_pairs != expect {
        return Err(io::Error::other(format!(
            "the process's DACL read back is {got_pairs:?}, not the shield {expect:?}"
        )));
    }
    Ok(())
}

fn io_ctx(what: &str) -> io::Error {
    ctx(what, io::Error::last_os_error())
}

fn ctx(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn set_dacl(handle: HANDLE, acl: &KernelAcl) -> io::Result<()> {
    // SAFETY: `handle` is a process or thread handle with WRITE_DAC; `acl` is valid for the
    // call; owner, group and SACL are not set. PROTECTED: nothing is inherited into it.
    let err = unsafe {
        SetSecurityInfo(
            handle,
            SE_KERNEL_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            null_mut(),
            null_mut(),
            acl.as_ptr(),
            std::ptr::null(),
        )
    };
    if err != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(err as i32));
    }
    Ok(())
}

/// The allow and deny ACEs of a kernel object's DACL (the handle needs READ_CONTROL).
pub fn kernel_dacl(handle: &OwnedHandle) -> io::Result<Vec<Ace>> {
    // SAFETY: an open handle, valid for the call.
    unsafe { dacl_of(handle.as_raw_handle()) }
}

/// # Safety
/// `handle` must be a valid handle (or pseudo-handle) with READ_CONTROL for the call.
unsafe fn dacl_of(handle: HANDLE) -> io::Result<Vec<Ace>> {
    let mut sd: PSECURITY_DESCRIPTOR = null_mut();
    let mut dacl: *mut ACL = null_mut();
    // SAFETY: the caller's handle; out pointers are valid places for one pointer each; only
    // the DACL is asked for.
    let err = unsafe {
        GetSecurityInfo(
            handle,
            SE_KERNEL_OBJECT,
            DACL_SECURITY_INFORMATION,
            null_mut(),
            null_mut(),
            &mut dacl,
            null_mut(),
            &mut sd,
        )
    };
    if err != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(err as i32));
    }
    // SAFETY: `dacl` is null or points into `sd`, alive until freed below.
    let aces = unsafe { super::acl::aces_of(dacl) };
    // SAFETY: `sd` came from GetSecurityInfo, released with LocalFree, once.
    unsafe { LocalFree(sd) };
    Ok(aces)
}

/// The ids of this process's threads now.
fn own_threads() -> io::Result<Vec<u32>> {
    // SAFETY: no pointers; the snapshot handle is closed below.
    let snap = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if snap.is_null() || snap as isize == -1 {
        return Err(io_ctx("listing the process's threads"));
    }
    // SAFETY: reads this process's id; no pointers.
    let me = unsafe { GetCurrentProcessId() };
    let mut out = Vec::new();
    let mut entry = THREADENTRY32 {
        dwSize: std::mem::size_of::<THREADENTRY32>() as u32,
        ..Default::default()
    };
    // SAFETY: `snap` is a thread snapshot; `entry` is a THREADENTRY32 with dwSize set.
    let mut more = unsafe { Thread32First(snap, &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == me {
            out.push(entry.th32ThreadID);
        }
        // SAFETY: as above.
        more = unsafe { Thread32Next(snap, &mut entry) } != 0;
    }
    // SAFETY: `snap` is ours and closed once.
    unsafe { CloseHandle(snap) };
    if out.is_empty() {
        return Err(io::Error::other(
            "the thread snapshot lists none of this process's threads",
        ));
    }
    Ok(out)
}
