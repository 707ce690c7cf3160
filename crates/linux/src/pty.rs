//! The command's own terminal: when cordon runs on one, the command gets a fresh pty in a
//! session of its own, and cordon relays bytes between it and the user's terminal.
//!
//! Why: a process that shares the user's terminal can push keystrokes into its input queue
//! (TIOCSTI) or rewrite its settings, and what it typed runs in the user's shell after the
//! sandbox ends. The seccomp filter refuses TIOCSTI too; the pty makes the defence hold
//! whatever the filter or the kernel's `legacy_tiocsti` setting say: the only terminal the
//! command can reach is its own. Without a terminal the command still gets its own session,
//! so it has no controlling terminal to open as /dev/tty.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg, Termios};

/// A pty for the command, made when any of cordon's stdin, stdout, stderr is a terminal.
pub(crate) struct Pty {
    pub master: OwnedFd,
    /// Goes to the command's process (its controlling terminal); cordon closes its copy.
    pub slave: OwnedFd,
    /// Which of fds 0, 1, 2 were terminals: those become the slave in the command.
    pub ttys: [bool; 3],
}

/// Opens a pty like the user's terminal (settings and size), or None when cordon's stdio
/// has no terminal.
pub(crate) fn open_if_terminal() -> io::Result<Option<Pty>> {
    let ttys = [0, 1, 2].map(|fd| nix::unistd::isatty(fixed(fd)).unwrap_or(false));
    let Some(user) = ttys.iter().position(|t| *t) else {
        return Ok(None);
    };
    let user = fixed(user as RawFd);
    let settings = termios::tcgetattr(user).ok();
    let size = window_size(user);
    let pair = nix::pty::openpty(size.as_ref(), settings.as_ref())?;
    Ok(Some(Pty {
        master: pair.master,
        slave: pair.slave,
        ttys,
    }))
}

/// Puts the user's terminal (cordon's stdin) in raw mode until dropped, so every key, ^C
/// included, goes to the command's pty, whose own line discipline interprets it.
pub(crate) struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub(crate) fn enter() -> RawMode {
        let stdin = fixed(0);
        let saved = termios::tcgetattr(stdin).ok();
        if let Some(s) = &saved {
            let mut raw = s.clone();
            termios::cfmakeraw(&mut raw);
            // Output stays cooked (newline to CR-LF): cordon's own notices, printed while
            // the command runs, must not staircase. The pty's output is already CR-LF.
            raw.output_flags |= termios::OutputFlags::OPOST | termios::OutputFlags::ONLCR;
            let _ = termios::tcsetattr(stdin, SetArg::TCSADRAIN, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(s) = &self.saved {
            let _ = termios::tcsetattr(fixed(0), SetArg::TCSADRAIN, s);
        }
    }
}

/// How much of the command's latest output is kept for a human deciding a request.
const TAIL_BYTES: usize = 8192;

/// cordon's own use of the user's terminal while the command runs: a question cordon asks
/// takes the user's keys away from the command until it is answered (the command never sees
/// the answer), and the command's latest output is kept to show beside a request. Clones
/// share one terminal.
#[derive(Clone)]
pub struct UserTerminal {
    shared: Arc<Shared>,
}

struct Shared {
    /// While set, keys go here instead of to the command.
    keys: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    tail: Mutex<VecDeque<u8>>,
    /// Where the user sees output (cordon's stdout, stderr or stdin, whichever is the
    /// terminal).
    out_fd: RawFd,
    /// Whether the user's keys reach cordon (stdin is the terminal).
    reads_keys: bool,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl UserTerminal {
    pub(crate) fn new(ttys: [bool; 3]) -> UserTerminal {
        // Echo and output go where the user sees them: stdout, else stderr, else the
        // terminal on stdin.
        let out_fd = [1, 2, 0]
            .into_iter()
            .find(|fd| ttys[*fd as usize])
            .unwrap_or(1);
        UserTerminal {
            shared: Arc::new(Shared {
                keys: Mutex::new(None),
                tail: Mutex::new(VecDeque::with_capacity(TAIL_BYTES)),
                out_fd,
                reads_keys: ttys[0],
            }),
        }
    }

    /// Whether cordon can read the user's answers here (its stdin is the terminal).
    pub fn reads_keys(&self) -> bool {
        self.shared.reads_keys
    }

    /// From now until [`UserTerminal::give_back_keys`], the user's keys (raw bytes: the
    /// terminal is in raw mode, nothing is echoed) arrive here instead of at the command.
    pub fn take_keys(&self) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel();
        *locked(&self.shared.keys) = Some(tx);
        rx
    }

    pub fn give_back_keys(&self) {
        *locked(&self.shared.keys) = None;
    }

    /// Prints on the user's terminal, between the command's output.
    pub fn print(&self, text: &str) -> io::Result<()> {
        crate::sys::write_all(fixed(self.shared.out_fd), text.as_bytes())
    }

    /// The last lines the command printed, as plain text (escape sequences removed).
    pub fn tail(&self, lines: usize) -> String {
        let bytes: Vec<u8> = locked(&self.shared.tail).iter().copied().collect();
        plain_tail(&bytes, lines)
    }

    fn keep(&self, output: &[u8]) {
        let mut tail = locked(&self.shared.tail);
        let start = output.len().saturating_sub(TAIL_BYTES);
        tail.extend(&output[start..]);
        let excess = tail.len().saturating_sub(TAIL_BYTES);
        tail.drain(..excess);
    }

    /// Where the user's keys go now: cordon's question, else None (the command).
    fn key_sink(&self) -> Option<mpsc::Sender<Vec<u8>>> {
        locked(&self.shared.keys).clone()
    }
}

/// Terminal output as text a page can show: CSI and other escape sequences dropped, carriage
/// returns folded, only the last `lines` lines.
fn plain_tail(bytes: &[u8], lines: usize) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            0x1b => {
                i += 1;
                match bytes.get(i) {
                    // CSI: parameters up to a final byte in 0x40..=0x7e.
                    Some(b'[') => {
                        i += 1;
                        while i < bytes.len() && !(0x40..=0x7e).contains(&bytes[i]) {
                            i += 1;
                        }
                    }
                    // OSC: up to BEL or ESC \.
                    Some(b']') => {
                        while i < bytes.len() && bytes[i] != 0x07 && bytes[i] != 0x1b {
                            i += 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            b'\r' => i += 1,
            b'\n' | b'\t' => {
                out.push(bytes[i]);
                i += 1;
            }
            c if c < 0x20 || c == 0x7f => i += 1,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    let text = String::from_utf8_lossy(&out);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// cordon's side of the pty: input from the user's terminal to the command, the command's
/// output back, and the window size kept in step.
pub(crate) struct Relay {
    stop: Arc<AtomicBool>,
    output: Option<JoinHandle<()>>,
    _raw: Option<RawMode>,
}

impl Relay {
    pub(crate) fn start(master: OwnedFd, user: UserTerminal) -> io::Result<Relay> {
        let master = Arc::new(master);
        let stop = Arc::new(AtomicBool::new(false));
        let raw = user.reads_keys().then(RawMode::enter);
        if user.reads_keys() {
            let (m, s, u) = (master.clone(), stop.clone(), user.clone());
            std::thread::Builder::new()
                .name("cordon-pty-in".into())
                .spawn(move || pump_input(&m, &s, &u))?;
        }
        let (m, s) = (master.clone(), stop.clone());
        let output = std::thread::Builder::new()
            .name("cordon-pty-out".into())
            .spawn(move || pump_output(&m, &user, &s))?;
        Ok(Relay {
            stop,
            output: Some(output),
            _raw: raw,
        })
    }

    /// Call once the sandbox is gone: relays what the command wrote last, then gives the
    /// user's terminal its settings back.
    pub(crate) fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.output.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The user's keys to the command, and the window size whenever it changes.
fn pump_input(master: &OwnedFd, stop: &AtomicBool, terminal: &UserTerminal) {
    let user = fixed(0);
    let mut size = window_size(user);
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        // A short timeout: it bounds how late a resize is seen, and how long a key typed
        // after the command ended could be taken from the user's shell.
        let mut fds = [PollFd::new(user, PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(100u8)).unwrap_or(0);
        let now = window_size(user);
        let differs = match (&now, &size) {
            (Some(a), Some(b)) => (a.ws_row, a.ws_col) != (b.ws_row, b.ws_col),
            (Some(_), None) => true,
            _ => false,
        };
        if differs {
            size = now;
            if let Some(ws) = &size {
                let _ = crate::sys::set_window_size(master.as_fd(), ws);
            }
        }
        if ready == 0 || stop.load(Ordering::Relaxed) {
            continue;
        }
        match nix::unistd::read(user, &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                // A question of cordon's is open: the answer is cordon's, not the command's.
                if let Some(sink) = terminal.key_sink() {
                    let _ = sink.send(buf[..n].to_vec());
                    continue;
                }
                if crate::sys::write_all(master.as_fd(), &buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// The command's output to the user, until the pty hangs up (every slave closed) or, once
/// stopped, nothing more is waiting.
fn pump_output(master: &OwnedFd, terminal: &UserTerminal, stop: &AtomicBool) {
    let out = fixed(terminal.shared.out_fd);
    let mut buf = [0u8; 16384];
    loop {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(50u8)).unwrap_or(0);
        if ready == 0 {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            continue;
        }
        match nix::unistd::read(master, &mut buf) {
            // EIO: the last slave closed.
            Ok(0) | Err(_) => return,
            Ok(n) => {
                terminal.keep(&buf[..n]);
                if crate::sys::write_all(out, &buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn window_size(fd: BorrowedFd<'_>) -> Option<libc::winsize> {
    crate::sys::window_size(fd).ok()
}

/// One of cordon's standard descriptors, which stay open for the process's life.
fn fixed(fd: RawFd) -> BorrowedFd<'static> {
    debug_assert!(fd <= 2);
    crate::sys::fixed_fd(fd)
}

/// In the command's process before exec: a session of its own, and with a pty, the pty as
/// its controlling terminal on the descriptors that were terminals. Only syscalls.
pub(crate) fn attach(slave: Option<&OwnedFd>, ttys: [bool; 3]) -> io::Result<()> {
    nix::unistd::setsid()?;
    if let Some(slave) = slave {
        crate::sys::set_controlling_terminal(slave.as_fd())?;
        for (fd, is_tty) in ttys.iter().enumerate() {
            match (fd, *is_tty) {
                (0, true) => nix::unistd::dup2_stdin(slave)?,
                (1, true) => nix::unistd::dup2_stdout(slave)?,
                (2, true) => nix::unistd::dup2_stderr(slave)?,
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_plain_text_of_the_last_lines() {
        let raw = b"one\r\n\x1b[1;31mtwo\x1b[0m\r\n\x1b]0;title\x07three\r\nfour\x07";
        assert_eq!(plain_tail(raw, 2), "three\nfour");
        assert_eq!(plain_tail(raw, 10), "one\ntwo\nthree\nfour");
    }

    #[test]
    fn the_kept_output_is_bounded() {
        let t = UserTerminal::new([false, true, false]);
        for _ in 0..100 {
            t.keep(&[b'x'; 1000]);
        }
        assert_eq!(locked(&t.shared.tail).len(), TAIL_BYTES);
    }
}
