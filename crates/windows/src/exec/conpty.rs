//! The command's own pseudo console (ConPTY) when cordon runs on a console, relayed both ways.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::windows::io::{
    AsHandle, AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle, RawHandle,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use windows_sys::Win32::System::Console::{
    ClosePseudoConsole, CreatePseudoConsole, GetConsoleMode, GetConsoleScreenBufferInfo,
    ResizePseudoConsole, SetConsoleCtrlHandler, SetConsoleMode, CONSOLE_SCREEN_BUFFER_INFO, COORD,
    DISABLE_NEWLINE_AUTO_RETURN, ENABLE_PROCESSED_OUTPUT, ENABLE_VIRTUAL_TERMINAL_PROCESSING,
    HPCON,
};
use windows_sys::Win32::System::Pipes::CreatePipe;

use super::console_keys::{self, RawInput};
use super::firewall::hr;

/// How often the console's window size is compared with the pseudo console's.
const RESIZE_POLL: Duration = Duration::from_millis(200);

/// A pseudo console and cordon's ends of its two pipes; closed (`ClosePseudoConsole`) on drop.
#[derive(Debug)]
pub struct PseudoConsole {
    hpc: HPCON,
    /// What cordon writes here, the command reads as keys.
    input: Option<File>,
    /// What the command writes to its console, as UTF-8 text with VT sequences.
    output: Option<File>,
}

// SAFETY: an HPCON is an opaque handle the console API accepts from any thread.
unsafe impl Send for PseudoConsole {}

impl PseudoConsole {
    /// A pseudo console of `size` (columns, rows).
    pub fn create(size: (i16, i16)) -> io::Result<PseudoConsole> {
        let (input_read, input_write) = pipe()?;
        let (output_read, output_write) = pipe()?;
        let mut console =
            PseudoConsole::over(input_read.as_handle(), output_write.as_handle(), size)?;
        // The pseudo console keeps its own duplicates of its ends; ours close here, so the
        // output reader sees the end when the pseudo console closes.
        drop((input_read, output_write));
        console.input = Some(File::from(input_write));
        console.output = Some(File::from(output_read));
        Ok(console)
    }

    /// A pseudo console of `size` over pipe ends whose other ends someone else holds (the
    /// developer's cordon, for the broker): the command's keys are read from `input`, what it
    /// writes goes to `output`. The pseudo console keeps duplicates: the caller closes its
    /// handles after, so the other side sees the end when the pseudo console closes.
    pub fn over(
        input: BorrowedHandle<'_>,
        output: BorrowedHandle<'_>,
        size: (i16, i16),
    ) -> io::Result<PseudoConsole> {
        let mut hpc: HPCON = 0;
        // SAFETY: both are open handles, borrowed for the call; `hpc` is a valid out place.
        let made = unsafe {
            CreatePseudoConsole(
                coord(size),
                input.as_raw_handle(),
                output.as_raw_handle(),
                0,
                &mut hpc,
            )
        };
        hr("CreatePseudoConsole", made)?;
        Ok(PseudoConsole {
            hpc,
            input: None,
            output: None,
        })
    }

    /// Gives the pseudo console a new window size (columns, rows).
    pub fn resize(&self, size: (i16, i16)) -> io::Result<()> {
        resize(self.hpc, size)
    }

    /// The handle `PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE` takes.
    pub fn handle(&self) -> HPCON {
        self.hpc
    }

    /// cordon's end of the command's input (once).
    pub fn take_input(&mut self) -> Option<File> {
        self.input.take()
    }

    /// cordon's end of the command's output (once).
    pub fn take_output(&mut self) -> Option<File> {
        self.output.take()
    }
}

impl Drop for PseudoConsole {
    fn drop(&mut self) {
        // SAFETY: `hpc` came from CreatePseudoConsole and is closed once, here. Processes
        // still attached lose their console.
        unsafe { ClosePseudoConsole(self.hpc) };
    }
}

/// Resizes the pseudo console `hpc` to `size`.
fn resize(hpc: HPCON, size: (i16, i16)) -> io::Result<()> {
    // SAFETY: the caller keeps `hpc` open (the resize thread is joined before it closes).
    hr("ResizePseudoConsole", unsafe {
        ResizePseudoConsole(hpc, coord(size))
    })
}

fn coord((columns, rows): (i16, i16)) -> COORD {
    COORD {
        X: columns.max(1),
        Y: rows.max(1),
    }
}

/// An anonymous pipe: (read end, write end), neither inheritable.
fn pipe() -> io::Result<(OwnedHandle, OwnedHandle)> {
    let (mut read, mut write) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: both out places are valid; no security attributes (not inheritable).
    if unsafe { CreatePipe(&mut read, &mut write, std::ptr::null(), 0) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success both are fresh handles owned by nobody else.
    Ok(unsafe {
        (
            OwnedHandle::from_raw_handle(read),
            OwnedHandle::from_raw_handle(write),
        )
    })
}

/// Whether `h` is a console (its mode can be read).
pub(crate) fn console_mode(h: RawHandle) -> Option<u32> {
    let mut mode = 0u32;
    // SAFETY: `h` is one of this process's standard handles (or null, which fails); `mode`
    // is a valid out place.
    match unsafe { GetConsoleMode(h, &mut mode) } {
        0 => None,
        _ => Some(mode),
    }
}

/// The visible window of the console screen buffer `out`, as (columns, rows).
fn window_size(out: RawHandle) -> Option<(i16, i16)> {
    let mut info = CONSOLE_SCREEN_BUFFER_INFO::default();
    // SAFETY: `out` is this process's stdout (a console, checked); `info` is a valid out
    // place.
    if unsafe { GetConsoleScreenBufferInfo(out, &mut info) } == 0 {
        return None;
    }
    let w = info.srWindow;
    Some((w.Right - w.Left + 1, w.Bottom - w.Top + 1))
}

/// Copies `from` to `to` until either ends, flushing each chunk (keys and output must show
/// as they come, not when a buffer fills).
pub fn pump(mut from: impl Read, mut to: impl Write) {
    let mut buf = [0u8; 16 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
                    return;
                }
            }
        }
    }
}

/// A console's mode, set back on drop.
pub(crate) struct SavedMode {
    handle: RawHandle,
    mode: u32,
}

// SAFETY: a console handle is a process-wide value the console API accepts from any thread.
unsafe impl Send for SavedMode {}

/// The modes to give back if cordon is ended by a console signal (Ctrl+Break, the window
/// closed), which ends the process without running `Drop`: (handle value, mode).
static MODES_ON_SIGNAL: std::sync::Mutex<Vec<(usize, u32)>> = std::sync::Mutex::new(Vec::new());

/// Gives the saved modes back, then lets the signal do what it would (FALSE: the next
/// handler, in the end the default one, which ends cordon and with it the run's job).
unsafe extern "system" fn restore_on_signal(_kind: u32) -> i32 {
    if let Ok(modes) = MODES_ON_SIGNAL.lock() {
        // Newest first: the oldest saved mode is the one the console had before cordon.
        for &(h, mode) in modes.iter().rev() {
            // SAFETY: a standard handle of this process recorded while its mode was changed.
            unsafe { SetConsoleMode(h as RawHandle, mode) };
        }
    }
    0
}

impl SavedMode {
    /// Sets `h`'s mode to `change(old)` and remembers the old one (for a console signal
    /// too).
    pub(crate) fn set(h: RawHandle, old: u32, change: impl Fn(u32) -> u32) -> SavedMode {
        if let Ok(mut modes) = MODES_ON_SIGNAL.lock() {
            if modes.is_empty() {
                // SAFETY: `restore_on_signal` is a valid handler for the process's life.
                unsafe { SetConsoleCtrlHandler(Some(restore_on_signal), 1) };
            }
            modes.push((h as usize, old));
        }
        // SAFETY: `h` is a console handle of this process; a refused mode leaves it as it
        // was.
        unsafe { SetConsoleMode(h, change(old)) };
        SavedMode {
            handle: h,
            mode: old,
        }
    }
}

impl Drop for SavedMode {
    fn drop(&mut self) {
        // SAFETY: the same console handle, still open (a standard handle of this process).
        unsafe { SetConsoleMode(self.handle, self.mode) };
        if let Ok(mut modes) = MODES_ON_SIGNAL.lock() {
            if let Some(i) = modes.iter().rposition(|&(h, _)| h == self.handle as usize) {
                modes.remove(i);
            }
        }
    }
}

/// cordon's console relayed to a command's pseudo console: keys in raw (VT input: Ctrl+C
/// reaches the command as a key, not cordon as a signal), output shown as VT, the window
/// size followed. Dropping it (after the command ended) stops following the size, closes
/// the pseudo console, shows the last of the output, and gives the console its modes back.
pub struct Relay {
    // Field order is drop order after `Drop::drop`: the modes are restored last.
    console: Option<PseudoConsole>,
    /// Says when the output pump has ended (the pseudo console closed, its output read).
    output: Option<std::sync::mpsc::Receiver<()>>,
    resizing: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    _output_mode: SavedMode,
    _raw_input: RawInput,
}

/// How long the end of the run waits for the last of a pseudo console's output: it comes
/// at once where the console is cordon's; a broker that does not close its own is not
/// waited for longer.
const LAST_OUTPUT_WAIT: Duration = Duration::from_secs(5);

/// Where a new window size goes: the pseudo console itself, or the broker that holds it
/// (a [`crate::handoff::ConsoleSize`] frame on the broker's pipe).
enum SizeTo {
    Here(HPCON),
    Broker(File),
}

// SAFETY: an HPCON is an opaque handle the console API accepts from any thread.
unsafe impl Send for SizeTo {}

impl SizeTo {
    fn send(&mut self, size: (i16, i16)) -> io::Result<()> {
        match self {
            SizeTo::Here(hpc) => resize(*hpc, size),
            SizeTo::Broker(pipe) => {
                let frame = crate::handoff::ConsoleSize {
                    columns: size.0,
                    rows: size.1,
                };
                crate::handoff::write_frame(pipe, &frame.encode())
            }
        }
    }
}

/// The pseudo console's ends of the two pipes of a [`RemoteConsole`], to be duplicated into
/// the broker and then dropped here: while cordon held the output's write end, the relay
/// would never see the output end.
pub struct ConsoleEnds {
    /// What the command reads keys from.
    pub input: OwnedHandle,
    /// What the command writes to.
    pub output: OwnedHandle,
    pub size: (i16, i16),
}

/// cordon's console relayed to a pseudo console the broker makes (elevated runs).
/// [`RemoteConsole::follow_size`] starts following the window once the broker has
/// answered; dropping it restores the console as [`Relay`] does.
pub struct RemoteConsole {
    size: (i16, i16),
    relay: Relay,
}

impl RemoteConsole {
    /// From now on the window size goes to the broker over `pipe` (a clone of the pipe
    /// the command was asked for on: the broker closes the pseudo console when every
    /// handle of it is closed, so this one goes with the relay).
    pub fn follow_size(&mut self, pipe: File) -> io::Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        let (stopped, size) = (stop.clone(), self.size);
        let mut to = SizeTo::Broker(pipe);
        let thread = spawn("cordon-conpty-size", move || {
            follow_size(&mut to, size, &stopped)
        })?;
        self.relay.resizing = Some((stop, thread));
        Ok(())
    }
}

impl Relay {
    /// The pseudo console to start the command on.
    pub fn console(&self) -> Option<&PseudoConsole> {
        self.console.as_ref()
    }
}

/// When cordon's stdin and stdout are both a console: a pseudo console of that console's
/// size, relayed. `Ok(None)` otherwise: the command gets the handles as they are (pipes and
/// files, `process::Stdio::Handles`). Without it the command would hold cordon's console
/// handles, and with them the user's console itself (its input buffer, title and modes);
/// with it the command's console is its own, and only what cordon relays crosses.
pub fn for_own_console() -> io::Result<Option<Relay>> {
    let Some((size, modes)) = own_console()? else {
        return Ok(None);
    };
    let mut console = PseudoConsole::create(size)?;
    let (Some(input), Some(output)) = (console.take_input(), console.take_output()) else {
        return Err(io::Error::other("the pseudo console's pipes were taken"));
    };
    let mut relay = relay(input, output, modes)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut to = SizeTo::Here(console.handle());
    let stopped = stop.clone();
    let resizing = spawn("cordon-conpty-size", move || {
        follow_size(&mut to, size, &stopped)
    })?;
    relay.console = Some(console);
    relay.resizing = Some((stop, resizing));
    Ok(Some(relay))
}

/// [`for_own_console`] for a pseudo console the broker makes (elevated runs): the pipes
/// made here, cordon's ends relayed, the other ends returned to be handed over.
pub fn for_broker_console() -> io::Result<Option<(ConsoleEnds, RemoteConsole)>> {
    let Some((size, modes)) = own_console()? else {
        return Ok(None);
    };
    let (input_read, input_write) = pipe()?;
    let (output_read, output_write) = pipe()?;
    let relay = relay(File::from(input_write), File::from(output_read), modes)?;
    let ends = ConsoleEnds {
        input: input_read,
        output: output_write,
        size,
    };
    Ok(Some((ends, RemoteConsole { size, relay })))
}

/// cordon's console: its window size, and its modes as the relay set them.
type OwnConsole = ((i16, i16), (SavedMode, RawInput));

/// When cordon's stdin and stdout are a console: its window size, and both set to the
/// relay's modes (VT input alone, VT output), given back when the result is dropped.
fn own_console() -> io::Result<Option<OwnConsole>> {
    let [stdin, stdout, _] = super::process::own_stdio();
    let (Some(_), Some(out_mode)) = (console_mode(stdin), console_mode(stdout)) else {
        return Ok(None);
    };
    let Some(raw_input) = RawInput::acquire() else {
        return Ok(None);
    };
    let size = window_size(stdout).unwrap_or((80, 25));
    let output_mode = SavedMode::set(stdout, out_mode, |m| {
        m | ENABLE_PROCESSED_OUTPUT
            | ENABLE_VIRTUAL_TERMINAL_PROCESSING
            | DISABLE_NEWLINE_AUTO_RETURN
    });
    Ok(Some((size, (output_mode, raw_input))))
}

/// Keys from cordon's console into `input` (through `console_keys`, which a question of
/// cordon's may take them from), `output` onto it; no pseudo console or size thread yet.
fn relay(input: File, output: File, modes: (SavedMode, RawInput)) -> io::Result<Relay> {
    console_keys::attach_command(input)?;
    let (done, ended) = std::sync::mpsc::channel();
    spawn("cordon-conpty-out", move || {
        pump(output, io::stdout());
        let _ = done.send(());
    })?;
    Ok(Relay {
        console: None,
        output: Some(ended),
        resizing: None,
        _output_mode: modes.0,
        _raw_input: modes.1,
    })
}

/// cordon's standard handles as a command may have them when it gets no pseudo console: a
/// console handle is never handed over, since with the user's console input the command could
/// type into the user's shell after the run (`WriteConsoleInput`) and with its screen read
/// what is on it. A console stdin becomes NUL; a console stdout or stderr becomes a pipe
/// whose other end cordon copies to its own; pipes and files are handed as they are.
pub struct HandedStdio {
    handles: [RawHandle; 3],
    /// The command's ends made here (NUL, pipes' write ends), closed by [`HandedStdio::started`].
    ends: Vec<OwnedHandle>,
    /// Say when each copying thread has reached the end of its pipe.
    copies: Vec<std::sync::mpsc::Receiver<()>>,
}

impl HandedStdio {
    /// The handles to hand over (a null one stays null).
    pub fn handles(&self) -> [RawHandle; 3] {
        self.handles
    }

    /// Once the command (or the broker) has its own duplicates: cordon's copies of the
    /// command's ends close, so a pipe ends when the command's side does.
    pub fn started(&mut self) {
        self.ends.clear();
    }
}

impl Drop for HandedStdio {
    fn drop(&mut self) {
        self.ends.clear();
        // The job is gone or going: what is left in the pipes arrives now (bounded, in
        // case a process outside the job kept a write end).
        for copy in self.copies.drain(..) {
            let _ = copy.recv_timeout(LAST_OUTPUT_WAIT);
        }
    }
}

/// [`HandedStdio`] for this process's standard handles.
pub fn handed_stdio() -> io::Result<HandedStdio> {
    let own = super::process::own_stdio();
    let mut out = HandedStdio {
        handles: own,
        ends: Vec::new(),
        copies: Vec::new(),
    };
    if console_mode(own[0]).is_some() {
        let nul = File::open("NUL")?;
        out.handles[0] = nul.as_raw_handle();
        out.ends.push(OwnedHandle::from(nul));
    }
    for i in [1, 2] {
        if console_mode(own[i]).is_none() {
            continue;
        }
        let (read, write) = pipe()?;
        out.handles[i] = write.as_raw_handle();
        out.ends.push(write);
        let (done, copied) = std::sync::mpsc::channel();
        let name = if i == 1 {
            "cordon-stdout"
        } else {
            "cordon-stderr"
        };
        spawn(name, move || {
            match i {
                1 => pump(File::from(read), io::stdout()),
                _ => pump(File::from(read), io::stderr()),
            }
            let _ = done.send(());
        })?;
        out.copies.push(copied);
    }
    Ok(out)
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.into()).spawn(f)
}

/// Passes the window size on whenever cordon's console window changes size, until `stop`.
fn follow_size(to: &mut SizeTo, mut last: (i16, i16), stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(RESIZE_POLL);
        let Some(now) = window_size(io::stdout().as_raw_handle()) else {
            continue;
        };
        if now != last && to.send(now).is_ok() {
            last = now;
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.resizing.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
        // Closing the pseudo console (here, or the broker's when its pipe closes with the
        // size thread) ends its output pipe once what is queued is read.
        drop(self.console.take());
        if let Some(ended) = self.output.take() {
            let _ = ended.recv_timeout(LAST_OUTPUT_WAIT);
        }
        // Keys typed from now on are held, not written to a pseudo console that is gone.
        console_keys::detach_command();
    }
}

#[cfg(test)]
#[path = "conpty_tests.rs"]
mod tests;
