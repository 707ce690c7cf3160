//! The long-lived broker of elevated runs: `cordon __broker` ([`serve`]), the sandbox
//! account started once with `CreateProcessWithLogonW`, starting many commands over a named
//! pipe; and [`run`], the client side `cordon run` uses, which starts the broker when none
//! serves. Frames and checks are `crate::broker`; docs/windows.md, "The broker".
//!
//! Handles travel as in the copy-per-command hand-off, and for the same reason: the client
//! (the developer) can be given PROCESS_DUP_HANDLE on the broker's process by the broker's
//! DACL, but the broker (the account) cannot open the developer's processes at all (their
//! DACLs admit only the developer, SYSTEM and the developer's logon SID). So the client opens
//! the broker by the process id the pipe names, duplicates its stdio *into* the broker and the
//! command's job, process and thread *out* of it.

use std::fs::{self, File};
use std::io::{self, Read};
use std::mem::ManuallyDrop;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr::null_mut;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    CloseHandle, SetHandleInformation, HANDLE, HANDLE_FLAG_INHERIT,
};
use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;
use windows_sys::Win32::System::RemoteDesktop::{
    ProcessIdToSessionId, WTSFreeMemory, WTSQuerySessionInformationW, WTSUserName,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcessId, OpenProcess};

use super::account::{self, Copy, Launch};
use super::job::JobWatch;
use super::pipe::{self, PipeServer};
use super::process::{self, Exit, Started};
use super::shield::{self, PIPE_CLIENT_ACCESS, PIPE_SERVER_ACCESS};
use super::{accounts, conpty, from_wide_ptr, token, Command, ExecError};
use crate::broker::{
    idle_expired, judge_client, judge_greeting, BrokerName, ClientOp, Connect, Greeting, Start,
    StartAnswer, Verdict,
};
use crate::handoff::{read_frame, write_frame, ConsoleHandoff, ConsoleSize, Request, Response};
use crate::plan::WindowsPlan;
use crate::sid::Sid;
use crate::winpath::WinPath;

/// Where the client finds (or makes) the broker, and which one it wants.
pub struct Place<'a> {
    /// cordon's state folder: the broker's key and lock files live there.
    pub state_dir: &'a WinPath,
    /// The developer's SID: the only user the broker will serve.
    pub developer: &'a Sid,
    /// The developer's logon session (its logon SID), part of the pipe's name.
    pub session: &'a str,
    /// The client's version ([`crate::broker::VERSION`]); a broker of another is replaced.
    pub version: &'a str,
    /// How long a broker this client starts waits for the next command.
    pub idle: Duration,
}

/// How a command went through the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub exit: Exit,
    /// The broker's process id.
    pub broker_pid: u32,
    /// Whether this run had to start it (the secondary logon was paid here).
    pub started_broker: bool,
}

/// How long a new broker may take to say it serves, and an old one to leave.
const START_WAIT: Duration = Duration::from_secs(20);
/// Connections tried before giving up (a broker may exit idle between two of them).
const ATTEMPTS: usize = 4;

fn handoff(what: impl Into<String>) -> ExecError {
    ExecError::Handoff(what.into())
}

/// The account a plan's requests name, as the pipe's name spells it.
fn account_of(plan: &WindowsPlan) -> &str {
    plan.account.unwrap_or("this-user")
}

/// Runs `argv` under the (applied) elevated `plan` through the broker for the plan's
/// account, starting it with `launch` and `program` (`cordon.exe __broker`) when none
/// serves. Never anything weaker: a broker that cannot be started, reached or trusted is an
/// error (cordon exits 125 with it).
#[allow(clippy::too_many_arguments)]
pub fn run(
    plan: &WindowsPlan,
    launch: &Launch<'_>,
    program: &Copy<'_>,
    place: &Place<'_>,
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
    timeout: Option<Duration>,
    job_watch: Option<&JobWatch>,
) -> Result<Served, ExecError> {
    let name = BrokerName::new(place.developer, place.session, account_of(plan));
    let pipe_name = name.pipe();
    let key_path = place.state_dir.child(&name.key_file());
    let mut started_broker = false;
    let mut last_error = String::new();
    for _ in 0..ATTEMPTS {
        let Some(pipe) = connect(&pipe_name).map_err(|e| handoff(format!("{pipe_name}: {e}")))?
        else {
            let up = start_broker(launch, program, place, plan, &name)?;
            started_broker |= up;
            continue;
        };
        let key = fs::read_to_string(key_path.to_api()).ok();
        let mut pipe = pipe;
        let greeting = match greet(&mut pipe, place.version) {
            Ok(g) => g,
            // The broker went (idle, or replaced) while we connected: look again.
            Err(e) => {
                last_error = format!("the broker's greeting: {e}");
                continue;
            }
        };
        match judge_greeting(&greeting, key.as_deref(), place.version) {
            Verdict::Serve { pid } => {
                let server =
                    pipe::server_pid(&pipe).map_err(|e| handoff(format!("{pipe_name}: {e}")))?;
                if server != pid {
                    return Err(handoff(format!(
                        "{pipe_name} is served by pid {server}, but its greeting names pid {pid}"
                    )));
                }
                let command = (argv, env, cwd, timeout);
                let exit = hand_over(pipe, pid, plan, command, job_watch)?;
                return Ok(Served {
                    exit,
                    broker_pid: pid,
                    started_broker,
                });
            }
            Verdict::Replace { pid, version } => {
                eprintln!(
                    "cordon: replacing cordon's broker of another version ({version}, pid {pid})"
                );
                let _ = write_frame(&mut pipe, &ClientOp::Quit.encode());
                drop(pipe);
                wait_gone(pid, &pipe_name)?;
            }
            Verdict::Refuse(message) => return Err(handoff(message)),
        }
    }
    Err(handoff(format!(
        "no broker served {pipe_name} after {ATTEMPTS} attempts ({last_error})"
    )))
}

/// The client's end of the broker's pipe, or `None` when no broker serves it.
fn connect(pipe_name: &str) -> io::Result<Option<File>> {
    pipe::connect(pipe_name, START_WAIT)
}

fn greet(pipe: &mut File, version: &str) -> io::Result<Greeting> {
    write_frame(
        pipe,
        &Connect {
            version: version.to_string(),
        }
        .encode(),
    )?;
    let payload = read_frame(pipe)?;
    Greeting::decode(&payload).map_err(|e| io::Error::other(e.to_string()))
}

fn open_process(pid: u32, access: u32) -> io::Result<OwnedHandle> {
    // SAFETY: no pointers; the handle, if any, is ours.
    let h = unsafe { OpenProcess(access, 0, pid) };
    if h.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh process handle nothing else owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(h) })
}

/// One command through a broker that greeted us: stdio duplicated in, the request, the
/// answer, the three handles duplicated out, the pipe closed (the broker then drops its
/// own), the job shown to `job_watch`, and the wait.
fn hand_over(
    mut pipe: File,
    pid: u32,
    plan: &WindowsPlan,
    (argv, env, cwd, timeout): Command<'_>,
    job_watch: Option<&JobWatch>,
) -> Result<Exit, ExecError> {
    let broker = open_process(pid, shield::PROCESS_DUP_HANDLE | shield::SYNCHRONIZE)
        .map_err(|e| handoff(format!("opening cordon's broker (pid {pid}): {e}")))?;
    let mut request = Request::for_plan(plan, argv, env, cwd);
    let into_broker = |h: RawHandle, what: &str| {
        account::duplicate(account::current(), h, broker.as_raw_handle())
            .map(|v| v as u64)
            .map_err(|e| handoff(format!("handing {what} to the broker: {e}")))
    };
    // cordon on a console: the broker makes the command a pseudo console of its own over
    // pipes made here, relayed to this console (as `exec::run_as` does unelevated).
    let (ends, mut remote) = match conpty::for_broker_console() {
        Ok(Some((ends, relay))) => (Some(ends), Some(relay)),
        Ok(None) => (None, None),
        Err(e) => {
            eprintln!("cordon: note: no pseudo console for the command ({e}); it gets pipes and NUL for this console's handles");
            (None, None)
        }
    };
    if let Some(ends) = ends {
        request.console = Some(ConsoleHandoff {
            input: into_broker(ends.input.as_raw_handle(), "the console's input")?,
            output: into_broker(ends.output.as_raw_handle(), "the console's output")?,
            size: ConsoleSize {
                columns: ends.size.0,
                rows: ends.size.1,
            },
        });
        // The broker's copies are all there is of the pseudo console's ends now (`ends`
        // goes here): when it closes it, the relay sees the output end.
    }
    // Without a pseudo console, no console handle reaches the command (`conpty::handed_stdio`).
    let mut handed = match remote {
        Some(_) => None,
        None => Some(
            conpty::handed_stdio()
                .map_err(|e| handoff(format!("the command's standard handles: {e}")))?,
        ),
    };
    if let Some(h) = handed.as_mut() {
        request.stdio = account::hand_stdio(h, broker.as_raw_handle())
            .map_err(|e| handoff(format!("handing stdio to the broker: {e}")))?;
    }
    let sent = write_frame(&mut pipe, &ClientOp::Run.encode())
        .and_then(|()| write_frame(&mut pipe, &request.encode()));
    if let Err(e) = sent {
        return Err(handoff(format!(
            "the broker (pid {pid}) took no request: {e}"
        )));
    }
    let response = read_frame(&mut pipe)
        .map_err(|e| {
            handoff(format!(
                "the broker (pid {pid}) ended before answering: {e}"
            ))
        })
        .and_then(|p| Response::decode(&p).map_err(|e| handoff(e.to_string())))?;
    let (job, process, thread) = match response {
        Response::Failed { code, message } => return Err(ExecError::Refused { code, message }),
        Response::Started {
            job,
            process,
            thread,
        } => (job, process, thread),
    };
    let take = |h: u64| -> Result<OwnedHandle, ExecError> {
        let mine = account::duplicate(broker.as_raw_handle(), h as RawHandle, account::current())
            .map_err(|e| {
            handoff(format!("taking the command's handles from the broker: {e}"))
        })?;
        // SAFETY: DuplicateHandle made `mine` for this process; nothing else owns it.
        Ok(unsafe { OwnedHandle::from_raw_handle(mine) })
    };
    // Taken before the pipe closes: until then the broker holds the job (its last handle
    // closing kills the suspended command).
    let (job, process, thread) = (take(job)?, take(process)?, take(thread)?);
    // With a pseudo console the pipe stays open for the window's size until the relay goes,
    // after the command: the broker closes the pseudo console when the pipe closes.
    let open_pipe = match remote.as_mut() {
        Some(relay) => {
            let sizes = pipe.try_clone().and_then(|p| relay.follow_size(p));
            if let Err(e) = sizes {
                eprintln!("cordon: note: following the console's size: {e}; the command's console keeps its first size");
            }
            Some(pipe)
        }
        None => {
            drop(pipe);
            None
        }
    };
    // Before the command resumes: from its first instruction on, its connections to the
    // proxy are checked against this job.
    if let Some(watch) = job_watch {
        watch
            .show(&job)
            .map_err(|e| handoff(format!("sharing the job: {e}")))?;
    }
    let timeout = timeout.or(plan.job.timeout_ms.map(Duration::from_millis));
    let exit = Started::from_handles(process, thread)
        .wait(&job, timeout)
        .map_err(ExecError::Wait);
    // The pipe goes (and with the relay its size thread's clone), the broker closes the
    // pseudo console, its last output is shown, the console gets its modes back.
    drop(open_pipe);
    drop(remote);
    // The job gone, its processes' pipe ends are closed: the last of their output shows.
    drop(job);
    drop(handed);
    exit
}

/// Waits for a broker told to quit to be gone (its process, or at least its pipe).
fn wait_gone(pid: u32, pipe_name: &str) -> Result<(), ExecError> {
    if let Ok(p) = open_process(pid, shield::SYNCHRONIZE) {
        if account::wait_exit(&p, START_WAIT).is_some() {
            return Ok(());
        }
    }
    let t0 = Instant::now();
    while t0.elapsed() < START_WAIT {
        if connect(pipe_name).ok().flatten().is_none() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(handoff(format!(
        "cordon's broker of another version (pid {pid}) did not leave {pipe_name} within {}s",
        START_WAIT.as_secs()
    )))
}

/// Starts a broker unless another run started one meanwhile (then `Ok(false)`). Two runs at
/// once are serialised by the lock file, so one broker is started between them.
fn start_broker(
    launch: &Launch<'_>,
    program: &Copy<'_>,
    place: &Place<'_>,
    plan: &WindowsPlan,
    name: &BrokerName,
) -> Result<bool, ExecError> {
    let lock_path = place.state_dir.child(&name.lock_file());
    let _lock = lock(&lock_path)?;
    if connect(&name.pipe()).ok().flatten().is_some() {
        return Ok(false);
    }
    let secret =
        accounts::new_password(32).map_err(|e| handoff(format!("a secret for the broker: {e}")))?;
    let key_path = place.state_dir.child(&name.key_file());
    let tmp = place.state_dir.child(&format!("{}.new", name.key_file()));
    fs::write(tmp.to_api(), &secret)
        .and_then(|()| fs::rename(tmp.to_api(), key_path.to_api()))
        .map_err(|e| handoff(format!("{key_path}: {e}")))?;
    let (req_r, mut req_w) = io::pipe().map_err(|e| handoff(e.to_string()))?;
    let (mut resp_r, resp_w) = io::pipe().map_err(|e| handoff(e.to_string()))?;
    let (req_r, resp_w) = (OwnedHandle::from(req_r), OwnedHandle::from(resp_w));
    let child = account::spawn(launch, program, &req_r, &resp_w)?;
    drop((req_r, resp_w));
    let who = match launch {
        Launch::Logon { account, .. } => account.to_string(),
        Launch::SameUser { .. } => "this user".to_string(),
    };
    let ended = |why: String| -> ExecError {
        let code = account::wait_exit(&child, Duration::from_secs(2))
            .map_or_else(|| "still running".to_string(), |c| format!("exit {c:#x}"));
        handoff(format!("cordon's broker as {who} {why} ({code})"))
    };
    let start = Start {
        developer: place.developer.clone(),
        account: plan.account.map(str::to_string),
        pipe: name.pipe(),
        secret,
        idle_ms: u64::try_from(place.idle.as_millis()).unwrap_or(u64::MAX),
    };
    if let Err(e) = write_frame(&mut req_w, &start.encode()) {
        return Err(ended(format!("took no start: {e}")));
    }
    let answer = read_frame(&mut resp_r)
        .map_err(|e| ended(format!("ended before it served: {e}")))
        .and_then(|p| StartAnswer::decode(&p).map_err(|e| handoff(e.to_string())))?;
    match answer {
        StartAnswer::Ready { .. } => Ok(true),
        StartAnswer::Failed { message } => Err(handoff(format!(
            "cordon's broker as {who} could not start serving: {message}"
        ))),
    }
}

/// The lock file, held open with no sharing; another run's open waits (up to START_WAIT).
fn lock(path: &WinPath) -> Result<File, ExecError> {
    let t0 = Instant::now();
    loop {
        match fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .share_mode(0)
            .open(path.to_api())
        {
            Ok(f) => return Ok(f),
            // ERROR_SHARING_VIOLATION: another run is starting the broker.
            Err(e) if e.raw_os_error() == Some(32) && t0.elapsed() < START_WAIT => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(handoff(format!("{path}: {e}"))),
        }
    }
}

// --- the broker ---

/// What every connection's thread shares.
struct Broker {
    start: Start,
    version: String,
    pid: u32,
    /// Verified connections being served, and when the last one ended.
    activity: Mutex<(usize, Instant)>,
    /// One command start at a time: between `process::start` making the handed stdio
    /// inheritable and the broker closing it, no other command may be created (it would
    /// inherit another run's handles).
    starting: Mutex<()>,
}

/// `cordon __broker`: reads one [`Start`] on stdin, shields itself, creates its pipe (first
/// instance), answers [`StartAnswer`] on stdout, closes its standard handles and serves until
/// idle, told to quit, or its session's user changes. Returns 125 when it could not start.
pub fn serve(version: &str) -> i32 {
    let [stdin, stdout, stderr] = process::own_stdio();
    for h in [stdin, stdout, stderr].into_iter().filter(|h| !h.is_null()) {
        // The start pipes are no command's: none may inherit them.
        // SAFETY: one of this process's standard handles.
        unsafe { SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0) };
    }
    // SAFETY: the standard handles stay open until closed below; ManuallyDrop keeps the File
    // from closing them first.
    let mut input = ManuallyDrop::new(unsafe { File::from_raw_handle(stdin) });
    // SAFETY: as above.
    let mut output = ManuallyDrop::new(unsafe { File::from_raw_handle(stdout) });
    let prepared = read_frame(&mut *input)
        .map_err(|e| format!("reading the start: {e}"))
        .and_then(|p| Start::decode(&p).map_err(|e| e.to_string()))
        .and_then(|start| prepare(&start).map(|(pipe, session)| (start, pipe, session)));
    let (start, first, session) = match prepared {
        Ok(p) => p,
        Err(message) => {
            let _ = write_frame(&mut *output, &StartAnswer::Failed { message }.encode());
            return 125;
        }
    };
    // SAFETY: reads this process's id; no pointers.
    let pid = unsafe { GetCurrentProcessId() };
    if write_frame(&mut *output, &StartAnswer::Ready { pid }.encode()).is_err() {
        return 125;
    }
    for h in [stdin, stdout, stderr].into_iter().filter(|h| !h.is_null()) {
        // Nothing is written to them again; the starting cordon sees their end.
        // SAFETY: this process's standard handles, closed once (stderr is the same pipe
        // as stdout when the copy's spawn set them, and closing it twice fails harmlessly).
        unsafe { CloseHandle(h) };
    }
    let broker = Arc::new(Broker {
        version: version.to_string(),
        pid,
        activity: Mutex::new((0, Instant::now())),
        starting: Mutex::new(()),
        start,
    });
    let idle = Duration::from_millis(broker.start.idle_ms);
    let watch = Arc::clone(&broker);
    std::thread::spawn(move || watchdog(&watch, idle, session));
    accept(&broker, first)
}

/// Shields the process and makes the first pipe instance; also the session's user, which
/// the watchdog compares against.
fn prepare(start: &Start) -> Result<(PipeServer, String), String> {
    let own = token::process_token().map_err(|e| format!("reading this process's token: {e}"))?;
    if let Some(account) = &start.account {
        let me = token::user_sid(&own).map_err(|e| format!("reading this process's user: {e}"))?;
        let want = super::setup::lookup_sid(account).map_err(|e| {
            format!(
                "the sandbox account {account}: {e}; {}",
                crate::plan::setup::SETUP_NEEDED
            )
        })?;
        if me != want {
            return Err(format!(
                "cordon's broker runs as {me}, not as {account} ({want})"
            ));
        }
    }
    shield::shield(&start.developer).map_err(|e| format!("shielding the broker: {e}"))?;
    // A Ctrl+C or Ctrl+Break a command sends to the console it shares with the broker is
    // not the broker's to die of. A handler routine (not the NULL "ignore" flag) is used
    // because the flag would be inherited by the commands.
    // SAFETY: `ignore_ctrl` is a valid handler for the process's life.
    unsafe { SetConsoleCtrlHandler(Some(ignore_ctrl), 1) };
    // Without its session's user the broker could not see a logoff: it does not serve.
    let session = session_user().map_err(|e| format!("reading the session's user: {e}"))?;
    let pipe = bind_pipe(start).map_err(|e| {
        format!(
            "creating {} (first instance): {e}; another process holds the name",
            start.pipe
        )
    })?;
    Ok((pipe, session))
}

unsafe extern "system" fn ignore_ctrl(_kind: u32) -> windows_sys::core::BOOL {
    1
}

/// The user name of the broker's Windows session (the developer who started it, since
/// `CreateProcessWithLogonW` keeps the caller's session).
fn session_user() -> io::Result<String> {
    let mut session = 0u32;
    // SAFETY: `session` is a valid out place.
    if unsafe { ProcessIdToSessionId(GetCurrentProcessId(), &mut session) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf: *mut u16 = null_mut();
    let mut bytes = 0u32;
    // SAFETY: the local server (null handle); `buf` receives a WTS-allocated string.
    let ok = unsafe {
        WTSQuerySessionInformationW(null_mut(), session, WTSUserName, &mut buf, &mut bytes)
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success `buf` is a NUL-terminated string.
    let name = unsafe { from_wide_ptr(buf) };
    // SAFETY: `buf` came from WTSQuerySessionInformationW, freed once.
    unsafe { WTSFreeMemory(buf.cast()) };
    Ok(name)
}

/// Exits the broker when it has been idle long enough, or when its session's user is no
/// longer the one it started under (a logoff; Windows also ends the Secondary Logon
/// service's processes with the session).
fn watchdog(broker: &Broker, idle: Duration, session: String) {
    let tick = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        std::thread::sleep(tick);
        let expired = broker
            .activity
            .lock()
            .map_or(true, |a| idle_expired(a.0, a.1.elapsed(), idle));
        let session_gone = session_user().ok().as_deref() != Some(session.as_str());
        if expired || session_gone {
            std::process::exit(0);
        }
    }
}

/// The broker's pipe, its first instance made (failing if anyone holds the name). The
/// developer as a client; the broker (this account) for its further instances. No logon
/// SID, no Everyone: a write-restricted command of the account lacks every write right
/// here, so it can neither make an instance nor write a request.
fn bind_pipe(start: &Start) -> io::Result<PipeServer> {
    let dacl = vec![
        (start.developer.clone(), PIPE_CLIENT_ACCESS),
        (pipe::own_user()?, PIPE_SERVER_ACCESS),
        (Sid::local_system(), shield::GENERIC_ALL),
    ];
    PipeServer::bind(&start.pipe, dacl)
}

/// Serves clients, one thread each; the pipe keeps an instance waiting, so the name never
/// vanishes while the broker lives (a client finding no name starts a second broker).
fn accept(broker: &Arc<Broker>, mut server: PipeServer) -> i32 {
    loop {
        let Ok(connected) = server.accept() else {
            return 125;
        };
        let b = Arc::clone(broker);
        std::thread::spawn(move || client(&b, connected));
    }
}

/// One connection: identify, greet, then quit or serve one command.
fn client(broker: &Broker, mut pipe: File) {
    let Ok(payload) = read_frame(&mut pipe) else {
        return;
    };
    if Connect::decode(&payload).is_err() {
        return;
    }
    let verdict = pipe::client_pid(&pipe).and_then(|pid| {
        pipe::client_identity(&pipe).map(|(user, restricted)| (pid, user, restricted))
    });
    let refusal = match verdict {
        Ok((pid, user, restricted)) => {
            judge_client(&broker.start.developer, &user, restricted, pid).err()
        }
        Err(e) => Some(format!("the client's identity cannot be read: {e}")),
    };
    if let Some(message) = refusal {
        let _ = write_frame(&mut pipe, &Greeting::Refused { message }.encode());
        return;
    }
    // Counted from here: only a verified client keeps the broker from its idle exit.
    if let Ok(mut a) = broker.activity.lock() {
        a.0 += 1;
    }
    serve_client(broker, &mut pipe);
    if let Ok(mut a) = broker.activity.lock() {
        a.0 = a.0.saturating_sub(1);
        a.1 = Instant::now();
    }
}

fn serve_client(broker: &Broker, pipe: &mut File) {
    let hello = Greeting::Hello {
        version: broker.version.clone(),
        pid: broker.pid,
        secret: broker.start.secret.clone(),
    };
    if write_frame(pipe, &hello.encode()).is_err() {
        return;
    }
    match read_frame(pipe).map(|p| ClientOp::decode(&p)) {
        Ok(Ok(ClientOp::Run)) => {}
        Ok(Ok(ClientOp::Quit)) => std::process::exit(0),
        _ => return,
    }
    let Ok(payload) = read_frame(pipe) else {
        return;
    };
    let request = match Request::decode(&payload) {
        Ok(r) => r,
        Err(e) => {
            // What it handed in is closed all the same (this broker lives on).
            close_handed(&crate::handoff::handed_in(&payload));
            let failed = Response::Failed {
                code: 125,
                message: e.to_string(),
            };
            let _ = write_frame(pipe, &failed.encode());
            return;
        }
    };
    let outcome = if request.account != broker.start.account {
        close_handed(&handed(&request));
        Err((
            125,
            format!(
                "cordon's broker serves {}, not {}",
                broker.start.account.as_deref().unwrap_or("this user"),
                request.account.as_deref().unwrap_or("this user")
            ),
        ))
    } else {
        let _one = broker.starting.lock();
        let started = account::start(&request);
        close_handed(&handed(&request));
        started
    };
    let (response, held) = match outcome {
        Ok((response, held)) => (response, Some(held)),
        Err((code, message)) => (Response::Failed { code, message }, None),
    };
    if write_frame(pipe, &response.encode()).is_err() {
        return;
    }
    // Until the client closes the pipe it is duplicating the handles out (with a pseudo
    // console, until the command has ended, sending the window's size meanwhile); then
    // `held` goes, and if the client died first, with it the job's last handle and the
    // suspended command. The pseudo console closes with it, which ends its output.
    while let Ok(frame) = read_frame(pipe) {
        let console = held.as_ref().and_then(account::Held::console);
        if let (Some(pc), Ok(size)) = (console, ConsoleSize::decode(&frame)) {
            let _ = pc.resize((size.columns, size.rows));
        }
    }
    let mut rest = [0u8; 64];
    while matches!(pipe.read(&mut rest), Ok(n) if n > 0) {}
    drop(held);
}

/// The handles the client duplicated into the broker for one request: its stdio, or its
/// pseudo console's pipe ends.
fn handed(request: &Request) -> Vec<u64> {
    let mut out = request.stdio.to_vec();
    if let Some(c) = &request.console {
        out.extend([c.input, c.output]);
    }
    out
}

/// Closes the handles the client duplicated into the broker for one command: the command
/// has inherited them (or its pseudo console holds duplicates), and the next command must
/// not.
fn close_handed(handles: &[u64]) {
    let mut seen: Vec<u64> = Vec::new();
    for &h in handles.iter().filter(|h| **h != 0) {
        if !seen.contains(&h) {
            seen.push(h);
            // SAFETY: a handle value the client created in this process for this command
            // alone (the verified developer's cordon); closed once.
            unsafe { CloseHandle(h as HANDLE) };
        }
    }
}

/// The kernel DACL of a running broker's process, for tests and the smoke script's checks.
pub fn broker_process_dacl(pid: u32) -> io::Result<Vec<crate::plan::acl::Ace>> {
    let p = open_process(pid, shield::READ_CONTROL)?;
    shield::kernel_dacl(&p)
}

/// Tells the broker on `pipe_name` to quit (the developer's own client only); for tests and
/// for replacing one.
pub fn quit(pipe_name: &str, version: &str) -> io::Result<bool> {
    let Some(mut pipe) = connect(pipe_name)? else {
        return Ok(false);
    };
    if let Greeting::Refused { message } = greet(&mut pipe, version)? {
        return Err(io::Error::other(message));
    }
    write_frame(&mut pipe, &ClientOp::Quit.encode())?;
    Ok(true)
}

/// Whether a broker's pipe exists now.
pub fn is_serving(pipe_name: &str) -> bool {
    matches!(connect(pipe_name), Ok(Some(_)))
}
