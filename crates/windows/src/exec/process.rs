//! Starting the command with the restricted token inside the job, and relaying its exit.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr::null;
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    SetHandleInformation, HANDLE_FLAG_INHERIT, INVALID_HANDLE_VALUE, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::System::Console::HPCON;
use windows_sys::Win32::System::Threading::{
    CreateProcessAsUserW, DeleteProcThreadAttributeList, GetExitCodeProcess,
    InitializeProcThreadAttributeList, ResumeThread, UpdateProcThreadAttribute,
    WaitForSingleObject, CREATE_NO_WINDOW, CREATE_SUSPENDED, CREATE_UNICODE_ENVIRONMENT,
    EXTENDED_STARTUPINFO_PRESENT, INFINITE, LPPROC_THREAD_ATTRIBUTE_LIST, PROCESS_INFORMATION,
    PROC_THREAD_ATTRIBUTE_HANDLE_LIST, PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE, STARTF_USESTDHANDLES,
    STARTUPINFOEXW, STARTUPINFOW,
};

use super::wide;

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Its own exit code (NTSTATUS values such as 0xC0000005 for a crash included).
    Code(u32),
    /// `--timeout` ended it: the whole job was terminated.
    TimedOut,
}

/// A started command: suspended until [`Started::wait`] resumes it inside the job.
pub struct Started {
    process: OwnedHandle,
    thread: OwnedHandle,
}

/// This process's own standard handles (null where one is missing).
pub fn own_stdio() -> [RawHandle; 3] {
    [
        io::stdin().as_raw_handle(),
        io::stdout().as_raw_handle(),
        io::stderr().as_raw_handle(),
    ]
}

/// What the command's standard streams are.
#[derive(Debug, Clone, Copy)]
pub enum Stdio<'a> {
    /// Its stdin, stdout and stderr: this process's own ([`own_stdio`]), or handles handed
    /// to it; inherited, and nothing else is.
    Handles([RawHandle; 3]),
    /// A pseudo console of its own (cordon on a console): it inherits no handle at all.
    Console(&'a super::conpty::PseudoConsole),
}

/// Creates the process suspended with `token`, then puts it in `job` before it runs a single
/// instruction, so nothing it starts can escape the job.
pub fn start(
    token: &OwnedHandle,
    job: &OwnedHandle,
    application: &str,
    command_line: &str,
    env_block: &[u16],
    cwd: &str,
    stdio: Stdio<'_>,
) -> io::Result<Started> {
    let app = wide(application);
    let mut line = wide(command_line);
    let dir = wide(cwd);
    let (si, inherited, console) = match stdio {
        Stdio::Handles(stdio) => {
            let si = STARTUPINFOW {
                cb: std::mem::size_of::<STARTUPINFOEXW>() as u32,
                dwFlags: STARTF_USESTDHANDLES,
                hStdInput: stdio[0],
                hStdOutput: stdio[1],
                hStdError: stdio[2],
                ..Default::default()
            };
            (si, inherited(&stdio), None)
        }
        // Null standard handles, named as such: the child's become the pseudo console's.
        // Without STARTF_USESTDHANDLES, Windows would duplicate cordon's own into the child
        // when they are pipes or files (microsoft/terminal#11276).
        Stdio::Console(c) => {
            let si = STARTUPINFOW {
                cb: std::mem::size_of::<STARTUPINFOEXW>() as u32,
                dwFlags: STARTF_USESTDHANDLES,
                ..Default::default()
            };
            (si, Vec::new(), Some(c.handle()))
        }
    };
    for &h in &inherited {
        // Listed handles must be inheritable. A failure (e.g. no console) leaves that stream
        // closed in the child, which is what it would be anyway.
        // SAFETY: `h` is a handle of this process the caller keeps open for the call (a
        // standard handle, or one duplicated into it for the command).
        unsafe { SetHandleInformation(h, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT) };
    }
    // The child inherits exactly these, whatever else of this process is inheritable (a
    // broker starting several commands at once hands each only its own stdio); with a
    // pseudo console, none (an empty handle list is refused, so inheritance is off).
    // Without a pseudo console the command gets a console of its own, windowless: attached
    // to cordon's (the user's), it could open CONIN$ and type into the user's shell.
    let own = match console {
        Some(_) => 0,
        None => CREATE_NO_WINDOW,
    };
    let list = Attributes::new(&inherited, console)?;
    let inherit = i32::from(!inherited.is_empty());
    let si = STARTUPINFOEXW {
        StartupInfo: si,
        lpAttributeList: list.as_ptr(),
    };
    let mut pi = PROCESS_INFORMATION::default();
    // SAFETY: every string is NUL-terminated and outlives the call; `line` is writable as
    // CreateProcessAsUserW requires; `env_block` is a double-NUL-terminated UTF-16 block
    // (CREATE_UNICODE_ENVIRONMENT); `si` is a STARTUPINFOEXW (EXTENDED_STARTUPINFO_PRESENT)
    // whose attribute list, handles and pseudo console outlive the call; `pi` is valid.
    // `token` is a restricted version of cordon's own token, so no SE_ASSIGNPRIMARYTOKEN
    // privilege is needed.
    let ok = unsafe {
        CreateProcessAsUserW(
            token.as_raw_handle(),
            app.as_ptr(),
            line.as_mut_ptr(),
            null(),
            null(),
            inherit,
            CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT | EXTENDED_STARTUPINFO_PRESENT | own,
            env_block.as_ptr().cast(),
            dir.as_ptr(),
            &si.StartupInfo,
            &mut pi,
        )
    };
    drop(list);
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success both handles are fresh and owned by us alone.
    let started = unsafe {
        Started {
            process: OwnedHandle::from_raw_handle(pi.hProcess),
            thread: OwnedHandle::from_raw_handle(pi.hThread),
        }
    };
    // The process has not run yet (suspended).
    if let Err(e) = super::job::assign(job, &started.process) {
        // The process never ran; dropping `started` closes it, and the job kills it.
        let _ = super::job::terminate(job, 125);
        return Err(e);
    }
    Ok(started)
}

/// The handles a command inherits: its standard ones, each once (a handle listed twice is
/// refused by Windows, and stdout and stderr are often one handle), none null.
fn inherited(stdio: &[RawHandle; 3]) -> Vec<RawHandle> {
    let mut out: Vec<RawHandle> = Vec::with_capacity(3);
    for &h in stdio {
        if !h.is_null() && h != INVALID_HANDLE_VALUE && !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

/// A PROC_THREAD_ATTRIBUTE_LIST holding the handle list and, for a pseudo console, its
/// attribute; freed on drop. The handle array lives in the struct: the attribute points at
/// it until the list is deleted.
struct Attributes {
    buf: Vec<usize>,
    handles: Box<[RawHandle]>,
}

impl Attributes {
    fn new(handles: &[RawHandle], console: Option<HPCON>) -> io::Result<Attributes> {
        let count = 1 + u32::from(console.is_some());
        let mut size = 0usize;
        // SAFETY: a null list asks for the size `count` attributes need.
        unsafe { InitializeProcThreadAttributeList(std::ptr::null_mut(), count, 0, &mut size) };
        let mut list = Attributes {
            buf: vec![0usize; size.div_ceil(std::mem::size_of::<usize>()).max(1)],
            handles: handles.to_vec().into_boxed_slice(),
        };
        // SAFETY: `buf` holds at least `size` bytes, pointer-aligned.
        if unsafe { InitializeProcThreadAttributeList(list.as_ptr(), count, 0, &mut size) } == 0 {
            list.buf.clear(); // not initialised: nothing to delete
            return Err(io::Error::last_os_error());
        }
        if !list.handles.is_empty() {
            // `handles` stays alive and unmoved (boxed) until the list is deleted.
            let value = list.handles.as_ptr().cast();
            let len = std::mem::size_of_val(&*list.handles);
            list.update(PROC_THREAD_ATTRIBUTE_HANDLE_LIST, value, len)?;
        }
        if let Some(hpc) = console {
            // The attribute's value is the HPCON itself, passed as the pointer.
            list.update(
                PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE,
                hpc as *const std::ffi::c_void,
                std::mem::size_of::<HPCON>(),
            )?;
        }
        Ok(list)
    }

    /// Sets one attribute; `value` must stay valid until the list is deleted.
    fn update(&self, attribute: u32, value: *const std::ffi::c_void, len: usize) -> io::Result<()> {
        // SAFETY: the list was initialised with room for every attribute `new` sets, each
        // once; the caller keeps `value` valid for the list's life.
        let ok = unsafe {
            UpdateProcThreadAttribute(
                self.as_ptr(),
                0,
                attribute as usize,
                value,
                len,
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        };
        match ok {
            0 => Err(io::Error::last_os_error()),
            _ => Ok(()),
        }
    }

    fn as_ptr(&self) -> LPPROC_THREAD_ATTRIBUTE_LIST {
        self.buf.as_ptr().cast_mut().cast()
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            // SAFETY: initialised in `new`, deleted once.
            unsafe { DeleteProcThreadAttributeList(self.as_ptr()) };
        }
    }
}

impl Started {
    /// A started (suspended) command from its process and thread handles, e.g. duplicated
    /// out of the sandbox account's copy of cordon that created it.
    pub fn from_handles(process: OwnedHandle, thread: OwnedHandle) -> Started {
        Started { process, thread }
    }

    /// The process and thread handles, for handing to another process.
    pub fn raw_handles(&self) -> (RawHandle, RawHandle) {
        (self.process.as_raw_handle(), self.thread.as_raw_handle())
    }

    /// Lets the command run and waits for it, ending the whole job on `timeout`.
    pub fn wait(self, job: &OwnedHandle, timeout: Option<Duration>) -> io::Result<Exit> {
        // SAFETY: the thread handle is valid and the thread suspended once, by us.
        if unsafe { ResumeThread(self.thread.as_raw_handle()) } == u32::MAX {
            return Err(io::Error::last_os_error());
        }
        let ms = timeout.map_or(INFINITE, |t| {
            u32::try_from(t.as_millis()).unwrap_or(INFINITE - 1)
        });
        // SAFETY: the process handle is valid for the wait.
        match unsafe { WaitForSingleObject(self.process.as_raw_handle(), ms) } {
            WAIT_OBJECT_0 => {}
            WAIT_TIMEOUT => {
                // Ends every process in it; a failure leaves them to kill-on-close when
                // cordon's handle closes.
                let _ = super::job::terminate(job, 124);
                return Ok(Exit::TimedOut);
            }
            _ => return Err(io::Error::last_os_error()),
        }
        let mut code = 0u32;
        // SAFETY: the process has exited; `code` is a valid out place.
        if unsafe { GetExitCodeProcess(self.process.as_raw_handle(), &mut code) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Exit::Code(code))
    }
}
