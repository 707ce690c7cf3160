//! Elevation for `cordon setup --elevated`: whether this process already runs elevated, and
//! starting cordon again through UAC (`ShellExecuteExW` with the `runas` verb) and waiting
//! for it, when it does not.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::null_mut;

use windows_sys::Win32::Foundation::{ERROR_CANCELLED, WAIT_OBJECT_0};
use windows_sys::Win32::Security::{GetTokenInformation, TokenElevation, TOKEN_ELEVATION};
use windows_sys::Win32::System::Threading::{GetExitCodeProcess, WaitForSingleObject, INFINITE};
use windows_sys::Win32::UI::Shell::{
    ShellExecuteExW, SEE_MASK_NOCLOSEPROCESS, SEE_MASK_NO_CONSOLE, SHELLEXECUTEINFOW,
};
use windows_sys::Win32::UI::WindowsAndMessaging::SW_SHOWNORMAL;

use super::{token, wide};

/// Whether cordon's own token is elevated (an administrator's full token).
pub fn is_elevated() -> io::Result<bool> {
    let t = token::process_token()?;
    let mut elevation = TOKEN_ELEVATION { TokenIsElevated: 0 };
    let mut len = 0u32;
    // SAFETY: `t` is a live token handle with TOKEN_QUERY; the buffer is a TOKEN_ELEVATION
    // of the size passed, and `len` a valid place for the size written.
    let ok = unsafe {
        GetTokenInformation(
            t.as_raw_handle(),
            TokenElevation,
            (&mut elevation as *mut TOKEN_ELEVATION).cast(),
            std::mem::size_of::<TOKEN_ELEVATION>() as u32,
            &mut len,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(elevation.TokenIsElevated != 0)
}

/// Starts `program` with `parameters` (one command line, already quoted) elevated: Windows
/// shows its UAC prompt. Waits for it and returns its exit code; a declined prompt is
/// `ErrorKind::PermissionDenied` ("the UAC prompt was declined").
pub fn run_elevated(program: &str, parameters: &str) -> io::Result<u32> {
    let (verb, file, params) = (wide("runas"), wide(program), wide(parameters));
    // SAFETY: SHELLEXECUTEINFOW is plain data; all-zero is its documented empty state.
    let mut info: SHELLEXECUTEINFOW = unsafe { std::mem::zeroed() };
    info.cbSize = std::mem::size_of::<SHELLEXECUTEINFOW>() as u32;
    // The elevated cordon gets its own console: its output is its own window's, and its
    // exit code (relayed here) says how it went.
    info.fMask = SEE_MASK_NOCLOSEPROCESS | SEE_MASK_NO_CONSOLE;
    info.lpVerb = verb.as_ptr();
    info.lpFile = file.as_ptr();
    info.lpParameters = params.as_ptr();
    info.nShow = SW_SHOWNORMAL;
    info.hProcess = null_mut();
    // SAFETY: `info` is initialised with cbSize; the strings outlive the call.
    if unsafe { ShellExecuteExW(&mut info) } == 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(ERROR_CANCELLED as i32) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the UAC prompt was declined",
            ));
        }
        return Err(e);
    }
    if info.hProcess.is_null() {
        return Err(io::Error::other("UAC started no process to wait for"));
    }
    // SAFETY: with SEE_MASK_NOCLOSEPROCESS the handle is ours to close; OwnedHandle does.
    let process = unsafe { OwnedHandle::from_raw_handle(info.hProcess) };
    // SAFETY: a live process handle.
    if unsafe { WaitForSingleObject(process.as_raw_handle(), INFINITE) } != WAIT_OBJECT_0 {
        return Err(io::Error::last_os_error());
    }
    let mut code = 0u32;
    // SAFETY: a live process handle that has exited; `code` is a valid place for the code.
    if unsafe { GetExitCodeProcess(process.as_raw_handle(), &mut code) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(code)
}
