//! The per-command work of elevated runs ([`start`]: the sandbox account's process creates
//! the command, which then belongs to the developer's cordon alone), done by the long-lived
//! broker (`exec::broker`), and the copy-per-command hand-off it was first built for, kept
//! for comparison (`cordon run` no longer uses it).
//!
//! An ordinary process cannot start a process with another account's token (1314, see
//! [`super::logon`]), but the account's own process can restrict *its* token and start the
//! command with it, as unelevated mode does. So, per command:
//!
//! 1. [`run_elevated`] (the developer's cordon) starts `cordon __as-account` with
//!    `CreateProcessWithLogonW` (the stored password, no profile), its stdin and stdout two
//!    pipes of the developer's cordon, hidden, in the system folder;
//! 2. duplicates its own stdin, stdout and stderr into the copy (it holds the copy's process
//!    handle) and writes one [`Request`] frame: token spec, job limits, argv, environment,
//!    folder, and those handle values;
//! 3. [`serve`] (the copy) checks it is the plan's account, restricts its own token, makes
//!    the job (kill on close), creates the command suspended in it with the handed handles,
//!    and answers with one [`Response`] frame: the job's, the process's and the thread's
//!    handle values;
//! 4. the developer's cordon duplicates those three out of the copy and closes the request
//!    pipe; the copy, blocked reading it, sees the end and exits. cordon waits for that
//!    exit (or ends the copy) before resuming the command, so the account's unrestricted
//!    process is gone before the command runs an instruction;
//! 5. from here it is unelevated mode's wait: resume, wait (timeout: the job is
//!    terminated, 124), the exit code relayed.
//!
//! Nothing outlives the command: until step 4 the copy holds the job and dies as soon as
//! the request pipe ends (the developer's cordon exiting or dying closes it); after step 4
//! the developer's cordon holds the only job handle, and kill-on-close ends the tree when
//! it exits or dies.

use std::fs::File;
use std::io::{self, Read};
use std::mem::ManuallyDrop;
use std::os::windows::io::{AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr::{null, null_mut};
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    DuplicateHandle, SetHandleInformation, DUPLICATE_SAME_ACCESS, HANDLE, HANDLE_FLAG_INHERIT,
    WAIT_OBJECT_0,
};
use windows_sys::Win32::System::Threading::{
    CreateProcessW, CreateProcessWithLogonW, GetCurrentProcess, GetExitCodeProcess,
    TerminateProcess, WaitForSingleObject, CREATE_UNICODE_ENVIRONMENT, PROCESS_INFORMATION,
    STARTF_USESHOWWINDOW, STARTF_USESTDHANDLES, STARTUPINFOW,
};

use super::conpty::{HandedStdio, PseudoConsole};
use super::process::{self, Exit, Started, Stdio};
use super::{acl, job, setup, token, wide, ExecError};
use crate::handoff::{read_frame, write_frame, Request, Response};
use crate::plan::acl::{AceKind, AclEdit, Inherit, Reason, READ_GRANT};
use crate::plan::WindowsPlan;
use crate::sid::Sid;
use crate::winpath::WinPath;

/// How cordon's copy is started.
pub enum Launch<'a> {
    /// As the sandbox account: `CreateProcessWithLogonW` with the password from the state
    /// folder (`setup::read_password`), no profile (`dwLogonFlags` 0).
    Logon { account: &'a str, password: &'a str },
    /// As this same user (`CreateProcessW`) with environment `env`: only for testing the
    /// hand-off where there are no accounts (Wine); the plan's account is then `None`.
    SameUser { env: &'a [(String, String)] },
}

/// The program and arguments of cordon's copy (`cordon.exe __as-account`).
pub struct Copy<'a> {
    pub exe: &'a str,
    pub args: &'a [String],
}

/// How long the copy may take to leave after handing the command over.
const COPY_EXIT: Duration = Duration::from_secs(10);

fn os(e: io::Error) -> ExecError {
    ExecError::Handoff(e.to_string())
}

/// Lets the sandbox group read and run cordon.exe, which may sit in the developer's profile
/// (closed to other accounts); path traversal needs no grant (SeChangeNotifyPrivilege).
/// One explicit ACE on the file, skipped when present.
pub fn grant_program(exe: &WinPath, group: &Sid) -> io::Result<()> {
    let edit = AclEdit {
        path: exe.clone(),
        kind: AceKind::Allow,
        sid: group.clone(),
        mask: READ_GRANT,
        inherit: Inherit::THIS_ONLY,
        reason: Reason::AccountProgram,
    };
    if edit.is_present(&acl::read_dacl(exe)?) {
        return Ok(());
    }
    acl::rewrite_dacl(exe, &[&edit], &[])
}

/// Runs `argv` under the (applied) elevated `plan` as the plan's account, through cordon's
/// copy started as that account. Same exits as [`super::run`].
pub fn run_elevated(
    plan: &WindowsPlan,
    launch: &Launch<'_>,
    copy: &Copy<'_>,
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
    timeout: Option<Duration>,
) -> Result<Exit, ExecError> {
    let (req_r, mut req_w) = io::pipe().map_err(os)?;
    let (mut resp_r, resp_w) = io::pipe().map_err(os)?;
    let (req_r, resp_w) = (OwnedHandle::from(req_r), OwnedHandle::from(resp_w));
    let child = spawn(launch, copy, &req_r, &resp_w)?;
    // Only the copy holds these ends now, so its exit ends our reads and its reads.
    drop((req_r, resp_w));
    let account = match launch {
        Launch::Logon { account, .. } => account,
        Launch::SameUser { .. } => "this user",
    };
    let ended = |why: String| -> ExecError {
        let code = wait_exit(&child, Duration::from_secs(2))
            .map_or_else(|| "still running".to_string(), |c| format!("exit {c:#x}"));
        ExecError::Handoff(format!("cordon's copy as {account} {why} ({code})"))
    };

    let mut request = Request::for_plan(plan, argv, env, cwd);
    // No console handle reaches the command (`conpty::handed_stdio`).
    let mut handed = super::conpty::handed_stdio().map_err(os)?;
    request.stdio = hand_stdio(&mut handed, child.as_raw_handle()).map_err(os)?;
    if let Err(e) = write_frame(&mut req_w, &request.encode()) {
        return Err(ended(format!("took no request: {e}")));
    }
    let response = read_frame(&mut resp_r)
        .map_err(|e| ended(format!("ended before answering: {e}")))
        .and_then(|p| Response::decode(&p).map_err(|e| ExecError::Handoff(e.to_string())))?;
    let (job, process, thread) = match response {
        Response::Failed { code, message } => {
            return Err(ExecError::Refused { code, message });
        }
        Response::Started {
            job,
            process,
            thread,
        } => (job, process, thread),
    };
    let take = |h: u64| -> Result<OwnedHandle, ExecError> {
        let mine = duplicate(child.as_raw_handle(), h as RawHandle, current()).map_err(os)?;
        // SAFETY: DuplicateHandle made `mine` for this process; nothing else owns it.
        Ok(unsafe { OwnedHandle::from_raw_handle(mine) })
    };
    let taken = (take(job), take(process), take(thread));
    // The request pipe's end tells the copy to go; wait for it to be gone (or end it), so
    // the account's unrestricted process never runs beside the command.
    drop(req_w);
    if wait_exit(&child, COPY_EXIT).is_none() {
        // SAFETY: `child` is the copy's process handle, with every access.
        unsafe { TerminateProcess(child.as_raw_handle(), 125) };
    }
    let (job, process, thread) = match taken {
        (Ok(j), Ok(p), Ok(t)) => (j, p, t),
        // The copy is gone, and with it every handle to the job: the command died with it.
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Err(e),
    };
    let timeout = timeout.or(plan.job.timeout_ms.map(Duration::from_millis));
    let exit = Started::from_handles(process, thread)
        .wait(&job, timeout)
        .map_err(ExecError::Wait);
    // The job gone, its processes' pipe ends are closed: the last of their output shows.
    drop(job);
    drop(handed);
    exit
}

pub(super) fn current() -> HANDLE {
    // SAFETY: returns this process's pseudo-handle; nothing to free.
    unsafe { GetCurrentProcess() }
}

/// The command's standard handles duplicated into the process `to` (the copy, the broker),
/// as values in its table (0 for none); this process's copies of the command's own ends then
/// close (`HandedStdio::started`).
pub(super) fn hand_stdio(handed: &mut HandedStdio, to: HANDLE) -> io::Result<[u64; 3]> {
    let mut out = [0u64; 3];
    for (slot, h) in out.iter_mut().zip(handed.handles()) {
        if !h.is_null() {
            *slot = duplicate(current(), h, to)? as u64;
        }
    }
    handed.started();
    Ok(out)
}

/// `h` (valid in `from`) duplicated into `to` with the same access, not inheritable.
pub(super) fn duplicate(from: HANDLE, h: RawHandle, to: HANDLE) -> io::Result<HANDLE> {
    let mut out: HANDLE = null_mut();
    // SAFETY: `from` and `to` are process handles with PROCESS_DUP_HANDLE (ours, or the
    // copy's from its creation); `out` is a valid out place.
    let ok = unsafe { DuplicateHandle(from, h, to, &mut out, 0, 0, DUPLICATE_SAME_ACCESS) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(out)
}

/// The copy's exit code once it has exited within `within`.
pub(super) fn wait_exit(child: &OwnedHandle, within: Duration) -> Option<u32> {
    let ms = u32::try_from(within.as_millis()).unwrap_or(u32::MAX - 1);
    // SAFETY: a valid process handle.
    if unsafe { WaitForSingleObject(child.as_raw_handle(), ms) } != WAIT_OBJECT_0 {
        return None;
    }
    let mut code = 0u32;
    // SAFETY: the process has exited; `code` is a valid out place.
    (unsafe { GetExitCodeProcess(child.as_raw_handle(), &mut code) } != 0).then_some(code)
}

/// Starts the copy (or the broker) with `stdin` and `stdout` (stderr too) as its standard
/// handles.
pub(super) fn spawn(
    launch: &Launch<'_>,
    copy: &Copy<'_>,
    stdin: &OwnedHandle,
    stdout: &OwnedHandle,
) -> Result<OwnedHandle, ExecError> {
    let mut words = vec![copy.exe.to_string()];
    words.extend(copy.args.iter().cloned());
    let mut line = wide(&crate::cmdline::command_line(&words).map_err(ExecError::Handoff)?);
    let app = wide(copy.exe);
    // The copy's own folder: the system's, which every account may read (the developer's
    // current folder may be closed to the account).
    let dir = wide(&std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\Windows".into()));
    for h in [stdin, stdout] {
        // SAFETY: a pipe handle we own; CreateProcessW passes only inheritable handles.
        if unsafe {
            SetHandleInformation(h.as_raw_handle(), HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT)
        } == 0
        {
            return Err(os(io::Error::last_os_error()));
        }
    }
    let si = STARTUPINFOW {
        cb: std::mem::size_of::<STARTUPINFOW>() as u32,
        // Hidden: CreateProcessWithLogonW always gives the copy a console of its own.
        dwFlags: STARTF_USESTDHANDLES | STARTF_USESHOWWINDOW,
        wShowWindow: 0, // SW_HIDE
        hStdInput: stdin.as_raw_handle(),
        hStdOutput: stdout.as_raw_handle(),
        hStdError: stdout.as_raw_handle(),
        ..Default::default()
    };
    let mut pi = PROCESS_INFORMATION::default();
    let ok = match launch {
        Launch::Logon { account, password } => {
            let user = wide(account);
            let domain = wide(".");
            let pw = wide(password);
            // SAFETY: NUL-terminated strings alive for the call, `line` writable as the call
            // requires, `si` and `pi` valid. dwLogonFlags 0: no profile is loaded.
            unsafe {
                CreateProcessWithLogonW(
                    user.as_ptr(),
                    domain.as_ptr(),
                    pw.as_ptr(),
                    0,
                    app.as_ptr(),
                    line.as_mut_ptr(),
                    0,
                    null(),
                    dir.as_ptr(),
                    &si,
                    &mut pi,
                )
            }
        }
        Launch::SameUser { env } => {
            let block = crate::cmdline::env_block(env).map_err(ExecError::Handoff)?;
            // SAFETY: as above, and `block` a double-NUL-terminated UTF-16 block; handles
            // are inherited (only the two pipe ends are inheritable in cordon: std opens
            // everything else non-inheritable).
            unsafe {
                CreateProcessW(
                    app.as_ptr(),
                    line.as_mut_ptr(),
                    null(),
                    null(),
                    1,
                    CREATE_UNICODE_ENVIRONMENT,
                    block.as_ptr().cast(),
                    dir.as_ptr(),
                    &si,
                    &mut pi,
                )
            }
        }
    };
    if ok == 0 {
        let source = io::Error::last_os_error();
        return Err(match launch {
            Launch::Logon { account, .. } => ExecError::Logon {
                account: account.to_string(),
                source,
            },
            Launch::SameUser { .. } => os(source),
        });
    }
    // SAFETY: on success both handles are fresh and ours; the thread's is not needed.
    unsafe {
        drop(OwnedHandle::from_raw_handle(pi.hThread));
        Ok(OwnedHandle::from_raw_handle(pi.hProcess))
    }
}

/// What the copy keeps open until the developer's cordon has taken its own handles (the
/// broker: until that cordon closes its pipe, which with a pseudo console is at the end of
/// the run). The job's handle closes first: if cordon died, it is the job's last and ends
/// every process at once, before ClosePseudoConsole (which on older Windows waits for the
/// processes attached to it).
pub(super) struct Held {
    _job: OwnedHandle,
    _started: Started,
    console: Option<PseudoConsole>,
}

impl Held {
    /// The command's pseudo console, when the request asked for one.
    pub(super) fn console(&self) -> Option<&PseudoConsole> {
        self.console.as_ref()
    }
}

/// `cordon __as-account`: reads one request on stdin, starts the command, answers on
/// stdout, then waits for stdin to end and exits (0 when the command was handed over, else
/// the refusal's status).
pub fn serve() -> i32 {
    let [stdin, stdout, _] = process::own_stdio();
    for h in process::own_stdio().into_iter().filter(|h| !h.is_null()) {
        // The control pipes are not the command's: it must not inherit them.
        // SAFETY: one of this process's standard handles.
        unsafe { SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0) };
    }
    // Unbuffered reads (a File, not Stdin's buffer): nothing past the frame is consumed.
    // SAFETY: the standard handles stay open for the process's life; ManuallyDrop keeps
    // the File from closing them.
    let mut input = ManuallyDrop::new(unsafe { File::from_raw_handle(stdin) });
    // SAFETY: as above.
    let mut output = ManuallyDrop::new(unsafe { File::from_raw_handle(stdout) });
    let (response, held, status) = match read_frame(&mut *input)
        .map_err(|e| (125, format!("reading the request: {e}")))
        .and_then(|p| Request::decode(&p).map_err(|e| (125, e.to_string())))
        .and_then(|r| start(&r))
    {
        Ok((response, held)) => (response, Some(held), 0),
        Err((code, message)) => (
            Response::Failed {
                code,
                message: message.clone(),
            },
            None,
            code,
        ),
    };
    if write_frame(&mut *output, &response.encode()).is_err() {
        return 125;
    }
    // Blocked here until cordon closes the request pipe (or exits, or dies): then `held`
    // goes, and with cordon gone too the job's last handle closes and kills the command.
    let mut rest = [0u8; 256];
    while matches!(input.read(&mut rest), Ok(n) if n > 0) {}
    drop(held);
    status
}

/// Starts `r`'s command suspended in its job: the copy's work, and the broker's per command.
pub(super) fn start(r: &Request) -> Result<(Response, Held), (i32, String)> {
    let setup_err = |what: &str, e: io::Error| (125, format!("{what}: {e}"));
    let base = token::process_token().map_err(|e| setup_err("reading this process's token", e))?;
    if let Some(account) = &r.account {
        let me = token::user_sid(&base).map_err(|e| setup_err("reading this process's user", e))?;
        let want = setup::lookup_sid(account).map_err(|e| {
            (
                125,
                format!(
                    "the sandbox account {account}: {e}; {}",
                    crate::plan::setup::SETUP_NEEDED
                ),
            )
        })?;
        if me != want {
            return Err((
                125,
                format!("cordon's copy runs as {me}, not as {account} ({want})"),
            ));
        }
    }
    let program = r.argv.first().cloned().unwrap_or_default();
    if crate::cmdline::is_batch(&program) {
        return Err((126, format!(
            "{program}: batch files are run by cmd.exe, which re-parses their arguments; run `cmd /c` yourself if you mean it"
        )));
    }
    let line = crate::cmdline::command_line(&r.argv).map_err(|e| (126, e))?;
    let block = crate::cmdline::env_block(&r.env).map_err(|e| (126, e))?;
    // As in `run_as`: no error dialogs keeping the job alive.
    // SAFETY: sets this process's error mode; no pointers involved.
    unsafe {
        windows_sys::Win32::System::Diagnostics::Debug::SetErrorMode(
            windows_sys::Win32::System::Diagnostics::Debug::SEM_FAILCRITICALERRORS
                | windows_sys::Win32::System::Diagnostics::Debug::SEM_NOGPFAULTERRORBOX,
        )
    };
    let restricted = token::restrict(&base, &r.token)
        .map_err(|e| setup_err("building the restricted token", e))?;
    let job = job::create(&r.job).map_err(|e| setup_err("creating the job object", e))?;
    // The handed pipe ends stay the caller's to close (`broker::close_handed`).
    let console = match &r.console {
        Some(c) => {
            // SAFETY: handle values the verified developer's cordon duplicated into this
            // process for this command alone; open until `close_handed`, after this call.
            let (input, output) = unsafe {
                (
                    BorrowedHandle::borrow_raw(c.input as RawHandle),
                    BorrowedHandle::borrow_raw(c.output as RawHandle),
                )
            };
            let size = (c.size.columns, c.size.rows);
            Some(
                PseudoConsole::over(input, output, size)
                    .map_err(|e| setup_err("making the command's pseudo console", e))?,
            )
        }
        None => None,
    };
    let stdio = match &console {
        Some(pc) => Stdio::Console(pc),
        None => Stdio::Handles(r.stdio.map(|h| h as RawHandle)),
    };
    let started = process::start(&restricted, &job, &program, &line, &block, &r.cwd, stdio)
        .map_err(|e| (126, format!("starting {program}: {e}")))?;
    let (process, thread) = started.raw_handles();
    let response = Response::Started {
        job: job.as_raw_handle() as u64,
        process: process as u64,
        thread: thread as u64,
    };
    Ok((
        response,
        Held {
            _job: job,
            _started: started,
            console,
        },
    ))
}
