//! ConPTY under Wine, which implements CreatePseudoConsole: a command started on a pseudo
//! console writes to it and the relay's pump receives its bytes; a resize is accepted
//! (Windows) or named E_NOTIMPL (Wine). The console side (raw keys, the window followed)
//! needs a real console, so it is checked only by hand on Windows.
#![allow(clippy::unwrap_used)] // tests

use std::sync::mpsc;

use super::*;
use crate::exec::process::{self, Exit, Stdio};
use crate::exec::{job, token};
use crate::plan::job::JobLimits;

/// A writer whose every write is a message: what the pump delivered, as it came.
struct Channel(mpsc::Sender<Vec<u8>>);

impl Write for Channel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(buf.to_vec()).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_command_on_a_pseudo_console_reaches_the_relay() {
    let mut console = PseudoConsole::create((80, 25)).unwrap();
    // Held open until the end: the pseudo console quits when its input closes.
    let input = console.take_input().unwrap();
    let output = console.take_output().unwrap();
    assert!(console.take_output().is_none(), "taken once");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || pump(output, Channel(tx)));

    let system = std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\windows".into());
    let cmd = format!(r"{system}\system32\cmd.exe");
    // To its console (CON), not its stdout: Windows makes the null standard handles of a
    // command on a pseudo console the pseudo console's, Wine 8 leaves them null.
    let argv = [cmd.clone(), "/c".into(), "echo cordon-conpty-42>CON".into()];
    let line = crate::cmdline::command_line(&argv).unwrap();
    let block = crate::cmdline::env_block(&[("SystemRoot".to_string(), system.clone())]).unwrap();
    let limits = JobLimits {
        kill_on_close: true,
        die_on_unhandled_exception: false,
        job_memory: None,
        active_processes: None,
        cpu_rate: None,
        timeout_ms: None,
    };
    let job = job::create(&limits).unwrap();
    // The plumbing is under test, not the token: this process's own.
    let own = token::process_token().unwrap();
    let started = process::start(
        &own,
        &job,
        &cmd,
        &line,
        &block,
        &system,
        Stdio::Console(&console),
    )
    .unwrap();
    let exit = started.wait(&job, Some(Duration::from_secs(30))).unwrap();
    assert_eq!(exit, Exit::Code(0));
    let resized = resize(console.handle(), (120, 40));
    if std::env::var_os("CORDON_UNDER_WINE").is_some() {
        // Wine 8's ResizePseudoConsole is E_NOTIMPL: the named error is what cordon sees
        // (the resize thread then keeps the old size). A Wine that implements it fails here.
        let e = resized.unwrap_err().to_string();
        assert!(e.contains("ResizePseudoConsole: HRESULT 0x80004001"), "{e}");
    } else {
        resized.unwrap();
    }
    // The output is rendered by the pseudo console as it comes: wait for it while it is
    // open, then close it, which ends the output and so the pump.
    let mut got = Vec::new();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&got).contains("cordon-conpty-42") {
        let left = until.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => got.extend(chunk),
            Err(_) => break,
        }
    }
    drop(console);
    drop(input);
    reader.join().unwrap();
    got.extend(rx.try_iter().flatten());
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("cordon-conpty-42"), "{text:?}");
}

#[test]
fn the_pump_copies_until_its_source_ends() {
    let (tx, rx) = mpsc::channel();
    pump(&b"keys and output"[..], Channel(tx));
    let got: Vec<u8> = rx.try_iter().flatten().collect();
    assert_eq!(got, b"keys and output");
}

#[test]
fn no_relay_without_a_console() {
    // The test harness's stdio are pipes (or files), never this console: nothing to relay.
    if console_mode(process::own_stdio()[0]).is_none() {
        assert!(for_own_console().unwrap().is_none());
    }
}
