//! cordon's console keys, read by one thread: to a question of cordon's while one is open
//! (the approvals' terminal channel), else to the command's pseudo console, else held for it.
//!
//! One reader for the whole process, because the console's input is one: two readers (the
//! relay's and a question's) would each take some of the keys. While a question is open
//! every key is the question's, so the command never sees the answer. The console's input
//! is in raw VT mode (`ENABLE_VIRTUAL_TERMINAL_INPUT` alone: no echo, no line editing,
//! Ctrl+C a key) whenever the relay or a question needs it, counted so that the first
//! user saves the mode and the last one gives it back, whichever ends first.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::windows::io::AsRawHandle;
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, OnceLock};

use windows_sys::Win32::System::Console::ENABLE_VIRTUAL_TERMINAL_INPUT;

use super::conpty::{console_mode, SavedMode};

/// Keys typed while neither a question nor a command takes them (before the command
/// starts), kept for the command up to this much; more is dropped.
pub const HELD_MAX: usize = 64 << 10;

/// Where keys go now. Plain data, so the routing is tested on its own.
pub struct KeyRoute<W> {
    question: Option<mpsc::Sender<Vec<u8>>>,
    command: Option<W>,
    held: Vec<u8>,
}

impl<W: Write> KeyRoute<W> {
    pub const fn new() -> KeyRoute<W> {
        KeyRoute {
            question: None,
            command: None,
            held: Vec::new(),
        }
    }

    /// Sends `keys` where they belong: an open question first, then the command; held
    /// otherwise. A command input that fails (the command's console closed) is let go.
    pub fn deliver(&mut self, keys: &[u8]) {
        if let Some(q) = &self.question {
            if q.send(keys.to_vec()).is_ok() {
                return;
            }
            self.question = None; // the question's side is gone: keys go on as before
        }
        if let Some(c) = &mut self.command {
            if c.write_all(keys).and_then(|()| c.flush()).is_ok() {
                return;
            }
            self.command = None;
            return;
        }
        let room = HELD_MAX.saturating_sub(self.held.len());
        self.held.extend_from_slice(&keys[..keys.len().min(room)]);
    }

    /// From now on keys go to `input` (what was held first).
    pub fn attach(&mut self, mut input: W) {
        let held = std::mem::take(&mut self.held);
        if held.is_empty() || input.write_all(&held).and_then(|()| input.flush()).is_ok() {
            self.command = Some(input);
        }
    }

    /// The command's input goes (closed when `W` is a pipe end).
    pub fn detach(&mut self) -> Option<W> {
        self.command.take()
    }

    /// Until [`KeyRoute::give_back`], every key is the question's.
    pub fn take(&mut self) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel();
        self.question = Some(tx);
        rx
    }

    pub fn give_back(&mut self) {
        self.question = None;
    }
}

impl<W: Write> Default for KeyRoute<W> {
    fn default() -> Self {
        KeyRoute::new()
    }
}

static ROUTE: Mutex<KeyRoute<File>> = Mutex::new(KeyRoute::new());

fn route() -> MutexGuard<'static, KeyRoute<File>> {
    ROUTE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the one reader of cordon's console input, once; a start that failed stays failed
/// for every later caller.
fn start_reader() -> io::Result<()> {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            // Left running when the run ends (it is blocked reading the console); it goes
            // with cordon.
            std::thread::Builder::new()
                .name("cordon-console-keys".into())
                .spawn(|| read_keys(io::stdin()))
                .map(drop)
                .map_err(|e| format!("starting the console's key reader: {e}"))
        })
        .clone()
        .map_err(io::Error::other)
}

fn read_keys(mut from: impl Read) {
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf) {
            // Rust's console stdin reads a Ctrl+Z typed alone as the end of input; while
            // the console is there, it was a key (the command's, or a question's to ignore).
            Ok(0) if console_mode(io::stdin().as_raw_handle()).is_some() => {
                route().deliver(&[0x1a]);
            }
            Ok(0) | Err(_) => return,
            Ok(n) => route().deliver(&buf[..n]),
        }
    }
}

/// The relay's side: keys to the command's pseudo console from now on (and what was typed
/// before it started).
pub fn attach_command(input: File) -> io::Result<()> {
    start_reader()?;
    route().attach(input);
    Ok(())
}

/// The command has ended: its input end closes; keys are held again.
pub fn detach_command() {
    drop(route().detach());
}

/// Users of the raw input mode, and the mode to give back when the last one ends.
static RAW: Mutex<(usize, Option<SavedMode>)> = Mutex::new((0, None));

/// cordon's console input in raw VT mode while held (see the module's comment).
pub struct RawInput(());

impl RawInput {
    /// `None` when stdin is not a console.
    pub fn acquire() -> Option<RawInput> {
        let stdin = io::stdin().as_raw_handle();
        // Read under the lock: a holder letting go meanwhile would have the raw mode saved
        // as the one to give back.
        let mut raw = RAW.lock().unwrap_or_else(|e| e.into_inner());
        let mode = console_mode(stdin)?;
        if raw.0 == 0 {
            raw.1 = Some(SavedMode::set(stdin, mode, |_| {
                ENABLE_VIRTUAL_TERMINAL_INPUT
            }));
        }
        raw.0 += 1;
        Some(RawInput(()))
    }
}

/// Gives the console the input mode it had before cordon, whoever still holds raw mode: for
/// cordon's exit, which may come while a question's thread is still winding down.
pub fn give_back_console() {
    let mut raw = RAW.lock().unwrap_or_else(|e| e.into_inner());
    raw.0 = 0;
    drop(raw.1.take());
}

impl Drop for RawInput {
    fn drop(&mut self) {
        let mut raw = RAW.lock().unwrap_or_else(|e| e.into_inner());
        raw.0 = raw.0.saturating_sub(1);
        if raw.0 == 0 {
            drop(raw.1.take()); // the saved mode, given back
        }
    }
}

/// The terminal channel's use of cordon's console: available when cordon's stdin and stdout
/// are both a console (the same condition as the command's pseudo console, so a question
/// asked while the command runs never shares the screen with it).
pub struct ConsoleQuestions {
    raw: Mutex<Option<RawInput>>,
}

impl ConsoleQuestions {
    pub fn for_own_console() -> Option<ConsoleQuestions> {
        let [stdin, stdout, _] = super::process::own_stdio();
        console_mode(stdin)?;
        console_mode(stdout)?;
        Some(ConsoleQuestions {
            raw: Mutex::new(None),
        })
    }

    /// A question starts: the console in raw mode, and every key the question's until
    /// [`ConsoleQuestions::give_back_keys`].
    pub fn take_keys(&self) -> io::Result<mpsc::Receiver<Vec<u8>>> {
        *self.raw.lock().unwrap_or_else(|e| e.into_inner()) = RawInput::acquire();
        start_reader()?;
        Ok(route().take())
    }

    pub fn give_back_keys(&self) {
        route().give_back();
        drop(self.raw.lock().unwrap_or_else(|e| e.into_inner()).take());
    }

    /// Prints on cordon's console, between the command's output. Newlines go out as CR LF:
    /// while the relay runs the console does not add the CR itself.
    pub fn print(&self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(text.replace("\r\n", "\n").replace('\n', "\r\n").as_bytes())?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;

    #[test]
    fn keys_go_to_the_question_then_the_command_and_are_held_before_it() {
        let mut route: KeyRoute<Vec<u8>> = KeyRoute::new();
        route.deliver(b"ls\r");
        let q = route.take();
        route.deliver(b"o 1234\r");
        route.give_back();
        assert_eq!(q.try_iter().collect::<Vec<_>>(), [b"o 1234\r".to_vec()]);
        // Type-ahead reaches the command when it attaches, before what follows.
        route.attach(Vec::new());
        route.deliver(b"x");
        let q = route.take();
        route.deliver(b"d\r");
        route.give_back();
        route.deliver(b"y");
        assert_eq!(route.detach().unwrap(), b"ls\rxy");
        assert_eq!(q.try_iter().collect::<Vec<_>>(), [b"d\r".to_vec()]);
        // Detached: held again.
        route.deliver(b"z");
        route.attach(Vec::new());
        assert_eq!(route.detach().unwrap(), b"z");
    }

    #[test]
    fn held_keys_are_bounded_and_a_gone_question_lets_keys_through() {
        let mut route: KeyRoute<Vec<u8>> = KeyRoute::new();
        route.deliver(&vec![b'a'; HELD_MAX + 10]);
        route.attach(Vec::new());
        assert_eq!(route.detach().unwrap().len(), HELD_MAX);
        route.attach(Vec::new());
        drop(route.take()); // the question's receiver gone
        route.deliver(b"k");
        assert_eq!(route.detach().unwrap(), b"k");
    }
}
