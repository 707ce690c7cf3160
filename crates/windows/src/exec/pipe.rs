//! Local named pipes: an instance made with an explicit DACL, the server's accept loop, the
//! client's end, and who is at the other end. The elevated runs' broker and the approval
//! broker's control pipe are built on these.

use std::fs::File;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::null_mut;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    GetLastError, ERROR_PIPE_BUSY, ERROR_PIPE_CONNECTED, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Security::{
    InitializeSecurityDescriptor, IsTokenRestricted, RevertToSelf, SetSecurityDescriptorDacl,
    SECURITY_ATTRIBUTES, SECURITY_DESCRIPTOR, TOKEN_QUERY,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_FIRST_PIPE_INSTANCE, OPEN_EXISTING, PIPE_ACCESS_DUPLEX,
    SECURITY_IDENTIFICATION, SECURITY_SQOS_PRESENT,
};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, GetNamedPipeClientProcessId, GetNamedPipeServerProcessId,
    ImpersonateNamedPipeClient, WaitNamedPipeW, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS,
    PIPE_TYPE_BYTE, PIPE_UNLIMITED_INSTANCES, PIPE_WAIT,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentThread, OpenProcess, OpenProcessToken, OpenThreadToken,
    PROCESS_QUERY_LIMITED_INFORMATION,
};

use super::shield::{KernelAcl, PIPE_CLIENT_ACCESS, PIPE_SERVER_ACCESS};
use super::{token, wide};
use crate::sid::Sid;

/// One instance of the pipe `name` whose DACL is `dacl` (allow ACEs only, nothing inherited);
/// with `first`, creation fails if anyone already holds the name (a squatter), instead of
/// joining their pipe. Remote clients are refused.
fn create_instance(name: &str, dacl: &[(Sid, u32)], first: bool) -> io::Result<OwnedHandle> {
    let acl = KernelAcl::allow(dacl)?;
    let mut sd = Box::new(SECURITY_DESCRIPTOR::default());
    let psd = (&mut *sd as *mut SECURITY_DESCRIPTOR).cast();
    // SAFETY: `sd` is a SECURITY_DESCRIPTOR-sized, aligned buffer; revision 1.
    if unsafe { InitializeSecurityDescriptor(psd, 1) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `psd` was initialised above; `acl` outlives every use of the descriptor.
    if unsafe { SetSecurityDescriptorDacl(psd, 1, acl.as_ptr(), 0) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let sa = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: psd,
        bInheritHandle: 0,
    };
    let name = wide(name);
    let open = PIPE_ACCESS_DUPLEX
        | if first {
            FILE_FLAG_FIRST_PIPE_INSTANCE
        } else {
            0
        };
    // SAFETY: `name` is NUL-terminated; `sa` points at a valid descriptor alive for the call.
    let h = unsafe {
        CreateNamedPipeW(
            name.as_ptr(),
            open,
            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            PIPE_UNLIMITED_INSTANCES,
            64 << 10,
            64 << 10,
            0,
            &sa,
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh pipe handle nothing else owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(h) })
}

/// Waits until a client connects to `instance`: `Ok(true)` when one is connected (also when
/// it came before the call), `Ok(false)` when one came and left before it was seen.
fn wait_for_client(instance: &OwnedHandle) -> io::Result<bool> {
    // SAFETY: a pipe instance we own; no overlapped I/O.
    if unsafe { ConnectNamedPipe(instance.as_raw_handle(), null_mut()) } != 0 {
        return Ok(true);
    }
    // SAFETY: reads this thread's last error.
    match unsafe { GetLastError() } {
        ERROR_PIPE_CONNECTED => Ok(true),
        // ERROR_NO_DATA: the client closed its end already.
        232 => Ok(false),
        e => Err(io::Error::from_raw_os_error(e as i32)),
    }
}

/// A server that keeps one instance waiting: the next is made before a connected one is
/// handed out, so the name never vanishes while the server lives.
pub struct PipeServer {
    name: String,
    dacl: Vec<(Sid, u32)>,
    waiting: OwnedHandle,
}

impl PipeServer {
    /// Creates the first instance of `name` (failing if the name is taken).
    pub fn bind(name: &str, dacl: Vec<(Sid, u32)>) -> io::Result<PipeServer> {
        let waiting = create_instance(name, &dacl, true)?;
        Ok(PipeServer {
            name: name.to_string(),
            dacl,
            waiting,
        })
    }

    /// The pipe only this process's user may open, read and write (and make instances of),
    /// and SYSTEM: no Everyone, no logon SID, no sandbox account; a write-restricted token of
    /// the same user lacks every write right here.
    pub fn bind_own_user(name: &str) -> io::Result<PipeServer> {
        let me = own_user()?;
        PipeServer::bind(
            name,
            vec![
                (me, PIPE_CLIENT_ACCESS | PIPE_SERVER_ACCESS),
                (Sid::local_system(), super::shield::GENERIC_ALL),
            ],
        )
    }

    /// The next connected client. A client that left before it was seen, or any failure
    /// of the wait, makes the instance anew; only failing to make one is an error.
    pub fn accept(&mut self) -> io::Result<File> {
        loop {
            let connected = matches!(wait_for_client(&self.waiting), Ok(true));
            let next = create_instance(&self.name, &self.dacl, false)?;
            let this = std::mem::replace(&mut self.waiting, next);
            if connected {
                return Ok(File::from(this));
            }
        }
    }
}

/// The client's end of the pipe `name`, or `None` when nobody serves it; while every instance
/// is busy, waits up to `busy_wait`. The server may only identify this client, not act as it
/// (SECURITY_IDENTIFICATION).
pub fn connect(name: &str, busy_wait: Duration) -> io::Result<Option<File>> {
    let wname = wide(name);
    let t0 = Instant::now();
    loop {
        // SAFETY: `wname` is NUL-terminated and outlives the call; no security attributes or
        // template.
        let h = unsafe {
            CreateFileW(
                wname.as_ptr(),
                PIPE_CLIENT_ACCESS,
                0,
                std::ptr::null(),
                OPEN_EXISTING,
                SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                null_mut(),
            )
        };
        if h != INVALID_HANDLE_VALUE {
            // SAFETY: a fresh handle nothing else owns.
            return Ok(Some(unsafe { File::from_raw_handle(h) }));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(2) => return Ok(None), // ERROR_FILE_NOT_FOUND: no server
            Some(c) if c == ERROR_PIPE_BUSY as i32 && t0.elapsed() < busy_wait => {
                // SAFETY: `wname` is NUL-terminated.
                unsafe { WaitNamedPipeW(wname.as_ptr(), 2000) };
            }
            _ => return Err(e),
        }
    }
}

/// The process id of the server at the other end of a client's pipe.
pub fn server_pid(pipe: &File) -> io::Result<u32> {
    let mut pid = 0u32;
    // SAFETY: a pipe handle we own; `pid` a valid out place.
    if unsafe { GetNamedPipeServerProcessId(pipe.as_raw_handle(), &mut pid) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pid)
}

/// The process id of the client at the other end of a server's instance.
pub fn client_pid(pipe: &File) -> io::Result<u32> {
    let mut pid = 0u32;
    // SAFETY: a pipe handle we own; `pid` a valid out place.
    if unsafe { GetNamedPipeClientProcessId(pipe.as_raw_handle(), &mut pid) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pid)
}

/// The client's user SID and whether its token is restricted, read from its process by the
/// pid the pipe names, before anything is read from the pipe: a first sieve (a process of
/// another user, or one cordon may not query, is refused); [`client_identity`], after the
/// first read, is the check that counts.
pub fn client_process_identity(pipe: &File) -> io::Result<(Sid, bool)> {
    let pid = client_pid(pipe)?;
    // SAFETY: no pointers; the handle, if any, is ours.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh process handle nothing else owns.
    let process = unsafe { OwnedHandle::from_raw_handle(process) };
    let mut h: HANDLE = null_mut();
    // SAFETY: an open process handle; `h` a valid out place.
    if unsafe { OpenProcessToken(process.as_raw_handle(), TOKEN_QUERY, &mut h) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh token handle nothing else owns.
    let tok = unsafe { OwnedHandle::from_raw_handle(h) };
    let user = token::user_sid(&tok)?;
    // SAFETY: a token handle with TOKEN_QUERY.
    let restricted = unsafe { IsTokenRestricted(tok.as_raw_handle()) } != 0;
    Ok((user, restricted))
}

/// This process's user.
pub fn own_user() -> io::Result<Sid> {
    token::user_sid(&token::process_token()?)
}

/// The client's user SID and whether its token is restricted, read from the token the pipe
/// lends by impersonation (identification level: enough to read, nothing to act with). Only
/// after the server has read from the pipe: Windows lends the token from the first read on.
pub fn client_identity(pipe: &File) -> io::Result<(Sid, bool)> {
    // SAFETY: a connected pipe we have read from, as impersonation requires.
    if unsafe { ImpersonateNamedPipeClient(pipe.as_raw_handle()) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut h: HANDLE = null_mut();
    // SAFETY: this thread's pseudo-handle; `h` a valid out place. OpenAsSelf: the check is
    // made against the server's own token.
    let ok = unsafe { OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, 1, &mut h) };
    let open_error = io::Error::last_os_error();
    // SAFETY: ends this thread's impersonation; no arguments.
    if unsafe { RevertToSelf() } == 0 {
        // Going on as the client is not an option.
        std::process::exit(125);
    }
    if ok == 0 {
        return Err(open_error);
    }
    // SAFETY: a fresh token handle nothing else owns.
    let tok = unsafe { OwnedHandle::from_raw_handle(h) };
    let user = token::user_sid(&tok)?;
    // SAFETY: a token handle with TOKEN_QUERY.
    let restricted = unsafe { IsTokenRestricted(tok.as_raw_handle()) } != 0;
    Ok((user, restricted))
}
