//! The command's own pseudo console (ConPTY) when cordon runs on a console, relayed both ways.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use windows_sys::Win32::System::Console::{
    ClosePseudoConsole, CreatePseudoConsole, GetConsoleMode, GetConsoleScreenBufferInfo,
    ResizePseudoConsole, SetConsoleMode, CONSOLE_SCREEN_BUFFER_INFO, COORD,
    DISABLE_NEWLINE_AUTO_RETURN, ENABLE_PROCESSED_OUTPUT, ENABLE_VIRTUAL_TERMINAL_INPUT,
    ENABLE_VIRTUAL_TERMINAL_PROCESSING, HPCON,
};
use windows_sys::Win32::System::Pipes::CreatePipe;

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
        let mut hpc: HPCON = 0;
        // SAFETY: both handles are open pipe ends owned here; `hpc` is a valid out place.
        let made = unsafe {
            CreatePseudoConsole(
                coord(size),
                input_read.as_raw_handle(),
                output_write.as_raw_handle(),
                0,
                &mut hpc,
            )
        };
        hr("CreatePseudoConsole", made)?;
        // The pseudo console keeps its own duplicates of its ends; ours close here, so the
        // output reader sees the end when the pseudo console closes.
        drop((input_read, output_write));
        Ok(PseudoConsole {
            hpc,
            input: Some(File::from(input_write)),
            output: Some(File::from(output_read)),
        })
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
fn console_mode(h: RawHandle) -> Option<u32> {
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
struct SavedMode {
    handle: RawHandle,
    mode: u32,
}

impl SavedMode {
    /// Sets `h`'s mode to `change(old)` and remembers the old one.
    fn set(h: RawHandle, old: u32, change: impl Fn(u32) -> u32) -> SavedMode {
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
    }
}

/// cordon's console relayed to a command's pseudo console: keys in raw (VT input: Ctrl+C
/// reaches the command as a key, not cordon as a signal), output shown as VT, the window
/// size followed. Dropping it (after the command ended) stops following the size, closes
/// the pseudo console, shows the last of the output, and gives the console its modes back.
pub struct Relay {
    // Field order is drop order after `Drop::drop`: the modes are restored last.
    console: Option<PseudoConsole>,
    output: Option<JoinHandle<()>>,
    resizing: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    _modes: [SavedMode; 2],
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
    let [stdin, stdout, _] = super::process::own_stdio();
    let (Some(in_mode), Some(out_mode)) = (console_mode(stdin), console_mode(stdout)) else {
        return Ok(None);
    };
    let size = window_size(stdout).unwrap_or((80, 25));
    let mut console = PseudoConsole::create(size)?;
    let modes = [
        SavedMode::set(stdin, in_mode, |_| ENABLE_VIRTUAL_TERMINAL_INPUT),
        SavedMode::set(stdout, out_mode, |m| {
            m | ENABLE_PROCESSED_OUTPUT
                | ENABLE_VIRTUAL_TERMINAL_PROCESSING
                | DISABLE_NEWLINE_AUTO_RETURN
        }),
    ];
    let (Some(input), Some(output)) = (console.take_input(), console.take_output()) else {
        return Err(io::Error::other("the pseudo console's pipes were taken"));
    };
    // Keys: left running when the command ends (it is blocked reading the console); its
    // next write fails on the closed pipe, or it goes with cordon.
    spawn("cordon-conpty-in", move || pump(io::stdin(), input))?;
    let output = spawn("cordon-conpty-out", move || pump(output, io::stdout()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let hpc = console.handle();
    let stopped = stop.clone();
    let resizing = spawn("cordon-conpty-size", move || {
        follow_size(hpc, size, &stopped)
    })?;
    Ok(Some(Relay {
        console: Some(console),
        output: Some(output),
        resizing: Some((stop, resizing)),
        _modes: modes,
    }))
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.into()).spawn(f)
}

/// Resizes `hpc` whenever cordon's console window changes size, until `stop`.
fn follow_size(hpc: HPCON, mut last: (i16, i16), stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(RESIZE_POLL);
        let Some(now) = window_size(io::stdout().as_raw_handle()) else {
            continue;
        };
        if now != last && resize(hpc, now).is_ok() {
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
        // Closing the pseudo console ends its output pipe once what is queued is read.
        drop(self.console.take());
        if let Some(thread) = self.output.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
#[path = "conpty_tests.rs"]
mod tests;
