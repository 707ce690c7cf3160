//! What the developer's cordon hands to its copy running as the sandbox account
//! (`cordon __as-account`, started with `CreateProcessWithLogonW`), and the answer it gets.
//!
//! Plain data and a small framed text encoding, pure so it is tested on every platform.
//! The copy reads one [`Request`] frame on its standard input, starts the command (restricted
//! token, suspended, in a job) and writes one [`Response`] frame on its standard output: the
//! handle values of the job, the process and its thread, which the developer's cordon then
//! duplicates out of it (it holds the copy's process handle). See docs/windows.md, "The
//! broker".
//!
//! The encoding: a frame is `MAGIC <length>\n` then `length` bytes; the payload is a list of
//! fields `<name> <length>\n<bytes>\n`, repeated fields in order. Nothing is escaped, so any
//! argument or variable survives (a NUL is refused later, by `cmdline`). Handles travel as
//! numbers: they are values in the copy's handle table, meaningless anywhere else.

use std::io::{self, Read, Write};

use crate::plan::job::JobLimits;
use crate::plan::{TokenSid, TokenSpec, WindowsPlan};
use crate::sid::Sid;

/// Starts every frame, so a frame is found after anything else written first (a test
/// harness's banner on the same stream) and a stray stream is never taken for one.
pub const MAGIC: &str = "\u{1e}cordon-handoff-v1";

/// The largest frame accepted: an environment block is at most 32 767 UTF-16 units and a
/// command line as long; 4 MiB is far above both.
pub const MAX_FRAME: usize = 4 << 20;

/// Privileges a request may ask to keep; anything else is refused rather than trusted.
pub const KNOWN_PRIVILEGES: &[&str] = &["SeChangeNotifyPrivilege"];

/// What the account's copy needs to start the command: the parts of the plan `exec::run`
/// uses, the command, and the standard handles the developer's cordon duplicated into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The account the copy must be (checked against its own token), `None` only in tests
    /// that start the copy as the same user.
    pub account: Option<String>,
    pub token: TokenSpec,
    pub job: JobLimits,
    /// `argv[0]` a full path.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    /// stdin, stdout, stderr for the command: handle values in the copy's table (0: none).
    pub stdio: [u64; 3],
    /// A pseudo console for the command instead of `stdio` (cordon on a console).
    pub console: Option<ConsoleHandoff>,
}

/// A pseudo console the broker makes for the command over two pipe ends the developer's
/// cordon made and duplicated into it (handle values in the broker's table): the command's
/// keys come out of `input`, what it writes goes into `output`. cordon keeps the other ends
/// and relays them to its own console; the window size follows in [`ConsoleSize`] frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleHandoff {
    pub input: u64,
    pub output: u64,
    pub size: ConsoleSize,
}

/// A console's visible window, in character cells; also the frame cordon sends the broker
/// when its console's window changes size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleSize {
    pub columns: i16,
    pub rows: i16,
}

impl ConsoleSize {
    fn text(self) -> String {
        format!("{}x{}", self.columns, self.rows)
    }

    fn parse(v: &str) -> Result<ConsoleSize, HandoffError> {
        let size = v.split_once('x').and_then(|(c, r)| {
            let (columns, rows) = (c.parse::<i16>().ok()?, r.parse::<i16>().ok()?);
            (columns > 0 && rows > 0).then_some(ConsoleSize { columns, rows })
        });
        size.ok_or_else(|| bad(format!("console size `{v}` is not COLUMNSxROWS")))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.field("console-size", &self.text());
        w.0
    }

    pub fn decode(payload: &[u8]) -> Result<ConsoleSize, HandoffError> {
        match fields(payload)?.as_slice() {
            [("console-size", v)] => ConsoleSize::parse(v),
            _ => Err(bad("a frame that is not a console size")),
        }
    }
}

/// The copy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The command is created, suspended, in the job: handle values in the copy's table.
    Started { job: u64, process: u64, thread: u64 },
    /// It could not be started; `code` is cordon's exit status for it (125 setup, 126 start).
    Failed { code: i32, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the hand-off to the sandbox account: {0}")]
pub struct HandoffError(pub String);

pub(crate) fn bad(what: impl Into<String>) -> HandoffError {
    HandoffError(what.into())
}

/// A payload being written, field by field (shared with `broker`'s frames).
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn field(&mut self, name: &str, value: &str) {
        self.0
            .extend_from_slice(format!("{name} {}\n", value.len()).as_bytes());
        self.0.extend_from_slice(value.as_bytes());
        self.0.push(b'\n');
    }

    pub(crate) fn opt(&mut self, name: &str, value: Option<impl ToString>) {
        if let Some(v) = value {
            self.field(name, &v.to_string());
        }
    }
}

/// The fields of a payload, in order.
pub(crate) fn fields(payload: &[u8]) -> Result<Vec<(&str, &str)>, HandoffError> {
    let mut out = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("a field header without its end"))?;
        let header = std::str::from_utf8(&rest[..nl]).map_err(|_| bad("a header not UTF-8"))?;
        let (name, len) = header
            .split_once(' ')
            .ok_or_else(|| bad(format!("header `{header}`")))?;
        let len: usize = len
            .parse()
            .map_err(|_| bad(format!("length in `{header}`")))?;
        let body = &rest[nl + 1..];
        if body.len() < len + 1 || body[len] != b'\n' {
            return Err(bad(format!("field {name} cut short")));
        }
        let value = std::str::from_utf8(&body[..len])
            .map_err(|_| bad(format!("field {name} not UTF-8")))?;
        out.push((name, value));
        rest = &body[len + 1..];
    }
    Ok(out)
}

pub(crate) fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, HandoffError> {
    v.parse()
        .map_err(|_| bad(format!("field {name}: `{v}` is not a number")))
}

fn flag(name: &str, v: &str) -> Result<bool, HandoffError> {
    match v {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => Err(bad(format!("field {name}: `{v}` is not 0 or 1"))),
    }
}

fn token_sid(s: &TokenSid) -> String {
    match s {
        TokenSid::User => "user".into(),
        TokenSid::Logon => "logon".into(),
        TokenSid::Fixed(sid) => sid.to_string(),
    }
}

fn parse_token_sid(v: &str) -> Result<TokenSid, HandoffError> {
    match v {
        "user" => Ok(TokenSid::User),
        "logon" => Ok(TokenSid::Logon),
        s => Sid::parse(s)
            .map(TokenSid::Fixed)
            .map_err(|e| bad(format!("SID `{s}`: {e}"))),
    }
}

impl Request {
    /// The request for running `argv` under `plan` (already applied); `stdio` is filled in
    /// once the handles are in the copy's table.
    pub fn for_plan(
        plan: &WindowsPlan,
        argv: &[String],
        env: &[(String, String)],
        cwd: &str,
    ) -> Request {
        Request {
            account: plan.account.map(str::to_string),
            token: plan.token.clone(),
            job: plan.job.clone(),
            argv: argv.to_vec(),
            env: env.to_vec(),
            cwd: cwd.to_string(),
            stdio: [0; 3],
            console: None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.opt("account", self.account.as_deref());
        w.field("token-flags", &self.token.flags.to_string());
        for s in &self.token.restricting {
            w.field("restricting", &token_sid(s));
        }
        for p in &self.token.keep_privileges {
            w.field("privilege", p);
        }
        for s in &self.token.default_dacl {
            w.field("default-dacl", &token_sid(s));
        }
        let j = &self.job;
        w.field("kill-on-close", if j.kill_on_close { "1" } else { "0" });
        w.field(
            "die-on-unhandled-exception",
            if j.die_on_unhandled_exception {
                "1"
            } else {
                "0"
            },
        );
        w.opt("job-memory", j.job_memory);
        w.opt("active-processes", j.active_processes);
        w.opt("cpu-rate", j.cpu_rate);
        w.opt("timeout-ms", j.timeout_ms);
        for a in &self.argv {
            w.field("arg", a);
        }
        for (k, v) in &self.env {
            w.field("env-name", k);
            w.field("env-value", v);
        }
        w.field("cwd", &self.cwd);
        for (name, h) in ["stdin", "stdout", "stderr"].iter().zip(self.stdio) {
            w.field(name, &h.to_string());
        }
        if let Some(c) = &self.console {
            w.field("console-input", &c.input.to_string());
            w.field("console-output", &c.output.to_string());
            w.field("console-size", &c.size.text());
        }
        w.0
    }

    pub fn decode(payload: &[u8]) -> Result<Request, HandoffError> {
        let mut r = Request {
            account: None,
            token: TokenSpec {
                flags: 0,
                restricting: Vec::new(),
                keep_privileges: Vec::new(),
                default_dacl: Vec::new(),
            },
            job: JobLimits {
                kill_on_close: false,
                die_on_unhandled_exception: false,
                job_memory: None,
                active_processes: None,
                cpu_rate: None,
                timeout_ms: None,
            },
            argv: Vec::new(),
            env: Vec::new(),
            cwd: String::new(),
            stdio: [0; 3],
            console: None,
        };
        let mut flags = None;
        let (mut console_input, mut console_output, mut console_size) = (None, None, None);
        let mut cwd = None;
        let mut pending_env: Option<String> = None;
        for (name, v) in fields(payload)? {
            if pending_env.is_some() && name != "env-value" {
                return Err(bad("env-name without env-value"));
            }
            match name {
                "account" => r.account = Some(v.to_string()),
                "token-flags" => flags = Some(num(name, v)?),
                "restricting" => r.token.restricting.push(parse_token_sid(v)?),
                "default-dacl" => r.token.default_dacl.push(parse_token_sid(v)?),
                "privilege" => r.token.keep_privileges.push(
                    KNOWN_PRIVILEGES
                        .iter()
                        .find(|p| **p == v)
                        .copied()
                        .ok_or_else(|| bad(format!("privilege `{v}` is not one cordon keeps")))?,
                ),
                "kill-on-close" => r.job.kill_on_close = flag(name, v)?,
                "die-on-unhandled-exception" => r.job.die_on_unhandled_exception = flag(name, v)?,
                "job-memory" => r.job.job_memory = Some(num(name, v)?),
                "active-processes" => r.job.active_processes = Some(num(name, v)?),
                "cpu-rate" => r.job.cpu_rate = Some(num(name, v)?),
                "timeout-ms" => r.job.timeout_ms = Some(num(name, v)?),
                "arg" => r.argv.push(v.to_string()),
                "env-name" => pending_env = Some(v.to_string()),
                "env-value" => {
                    let k = pending_env
                        .take()
                        .ok_or_else(|| bad("env-value without env-name"))?;
                    r.env.push((k, v.to_string()));
                }
                "cwd" => cwd = Some(v.to_string()),
                "stdin" => r.stdio[0] = num(name, v)?,
                "stdout" => r.stdio[1] = num(name, v)?,
                "stderr" => r.stdio[2] = num(name, v)?,
                "console-input" => console_input = Some(num(name, v)?),
                "console-output" => console_output = Some(num(name, v)?),
                "console-size" => console_size = Some(ConsoleSize::parse(v)?),
                other => return Err(bad(format!("unknown field {other}"))),
            }
        }
        if pending_env.is_some() {
            return Err(bad("env-name without env-value"));
        }
        r.console = match (console_input, console_output, console_size) {
            (None, None, None) => None,
            (Some(input), Some(output), Some(size)) if input != 0 && output != 0 => {
                Some(ConsoleHandoff {
                    input,
                    output,
                    size,
                })
            }
            _ => return Err(bad("a console needs its input, output and size")),
        };
        // The command gets its pseudo console's handles or the handed ones, never both.
        if r.console.is_some() && r.stdio != [0; 3] {
            return Err(bad("standard handles beside a console"));
        }
        r.token.flags = flags.ok_or_else(|| bad("no token-flags"))?;
        r.cwd = cwd.ok_or_else(|| bad("no cwd"))?;
        if r.argv.is_empty() {
            return Err(bad("no command"));
        }
        // Nothing may outlive the command: a request without kill-on-close is not cordon's.
        if !r.job.kill_on_close {
            return Err(bad("the job must kill on close"));
        }
        Ok(r)
    }
}

/// The handle values a request's payload names (stdio, a console's pipe ends), read
/// loosely: for closing what a request the broker refuses to decode handed in.
pub fn handed_in(payload: &[u8]) -> Vec<u64> {
    const HANDLES: &[&str] = &[
        "stdin",
        "stdout",
        "stderr",
        "console-input",
        "console-output",
    ];
    fields(payload)
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| HANDLES.contains(name))
        .filter_map(|(_, v)| v.parse().ok())
        .filter(|h| *h != 0)
        .collect()
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        match self {
            Response::Started {
                job,
                process,
                thread,
            } => {
                w.field("job", &job.to_string());
                w.field("process", &process.to_string());
                w.field("thread", &thread.to_string());
            }
            Response::Failed { code, message } => {
                w.field("failed", &code.to_string());
                w.field("message", message);
            }
        }
        w.0
    }

    pub fn decode(payload: &[u8]) -> Result<Response, HandoffError> {
        let (mut job, mut process, mut thread, mut failed, mut message) =
            (None, None, None, None, None);
        for (name, v) in fields(payload)? {
            match name {
                "job" => job = Some(num(name, v)?),
                "process" => process = Some(num(name, v)?),
                "thread" => thread = Some(num(name, v)?),
                "failed" => failed = Some(num(name, v)?),
                "message" => message = Some(v.to_string()),
                other => return Err(bad(format!("unknown field {other}"))),
            }
        }
        match (failed, job, process, thread) {
            (Some(code), None, None, None) => Ok(Response::Failed {
                code,
                message: message.unwrap_or_default(),
            }),
            (None, Some(job), Some(process), Some(thread)) => Ok(Response::Started {
                job,
                process,
                thread,
            }),
            _ => Err(bad("an answer that is neither started nor failed")),
        }
    }
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let mut out = format!("{MAGIC} {}\n", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    w.write_all(&out)?;
    w.flush()
}

/// Reads one frame, skipping whatever comes before its magic. Reads byte by byte up to the
/// payload and then exactly the payload, never past it: on a pipe that is shared with what
/// follows, nothing of the rest is consumed.
pub fn read_frame(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let magic = MAGIC.as_bytes();
    let mut matched = 0;
    let mut byte = [0u8; 1];
    let mut next = |r: &mut dyn Read| -> io::Result<u8> {
        r.read_exact(&mut byte)?;
        Ok(byte[0])
    };
    while matched < magic.len() {
        let b = next(r)?;
        matched = if b == magic[matched] {
            matched + 1
        } else if b == magic[0] {
            1
        } else {
            0
        };
    }
    if next(r)? != b' ' {
        return Err(io::Error::other("a frame header without its length"));
    }
    let mut len = String::new();
    loop {
        match next(r)? {
            b'\n' => break,
            b @ b'0'..=b'9' if len.len() < 10 => len.push(b as char),
            _ => return Err(io::Error::other("a frame length that is not a number")),
        }
    }
    let len: usize = len
        .parse()
        .map_err(|_| io::Error::other("a frame without a length"))?;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!(
            "a frame of {len} bytes (at most {MAX_FRAME})"
        )));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::token::token_spec;
    use crate::winpath::WinPath;

    fn request() -> Request {
        let ws = WinPath::parse(r"C:\work\my project").unwrap_or_else(|e| panic!("{e}"));
        Request {
            account: Some("CordonSandboxOffline".into()),
            token: token_spec(&Sid::sandbox_write(&ws)),
            job: JobLimits {
                kill_on_close: true,
                die_on_unhandled_exception: true,
                job_memory: Some(64 << 20),
                active_processes: Some(256),
                cpu_rate: Some(5000),
                timeout_ms: Some(90_000),
            },
            argv: vec![
                r"C:\Windows\System32\cmd.exe".into(),
                "/c".into(),
                "echo \"a b\"\nline two".into(),
                String::new(),
                "x 12\nfake-field".into(),
            ],
            env: vec![
                ("=C:".into(), r"C:\work".into()),
                ("PATH".into(), r"C:\Windows;C:\Program Files\x".into()),
                ("EMPTY".into(), String::new()),
                ("UNICODE".into(), "héllo ✓ 日本".into()),
            ],
            cwd: r"\\?\C:\work\my project".into(),
            stdio: [0x10, 0x2c, u64::MAX],
            console: None,
        }
    }

    #[test]
    fn a_request_round_trips_whatever_its_strings_hold() {
        let r = request();
        assert_eq!(Request::decode(&r.encode()), Ok(r));
    }

    #[test]
    fn a_request_without_optional_parts_round_trips() {
        let mut r = request();
        r.account = None;
        r.env.clear();
        r.job.job_memory = None;
        r.job.active_processes = None;
        r.job.cpu_rate = None;
        r.job.timeout_ms = None;
        assert_eq!(Request::decode(&r.encode()), Ok(r));
    }

    #[test]
    fn a_request_with_a_console_round_trips_and_a_half_console_is_refused() {
        let mut r = request();
        r.stdio = [0; 3];
        r.console = Some(ConsoleHandoff {
            input: 0x44,
            output: u64::MAX,
            size: ConsoleSize {
                columns: 120,
                rows: 40,
            },
        });
        assert_eq!(Request::decode(&r.encode()), Ok(r.clone()));
        let text = String::from_utf8(r.encode()).unwrap_or_default();
        let cut = |field: &str| {
            let start = text.find(&format!("{field} ")).unwrap_or(0);
            let end = text[start..].find('\n').map_or(start, |i| start + i + 1);
            let end = text[end..].find('\n').map_or(end, |i| end + i + 1);
            format!("{}{}", &text[..start], &text[end..])
        };
        for field in ["console-input", "console-output", "console-size"] {
            let without = cut(field);
            assert!(without.len() < text.len(), "{field} was cut");
            assert!(Request::decode(without.as_bytes()).is_err(), "{field}");
        }
        // Beside handed standard handles: refused, the command gets one or the other.
        let mut both = r.clone();
        both.stdio = [1, 2, 3];
        assert!(Request::decode(&both.encode()).is_err());
        let mut zero = r;
        if let Some(c) = zero.console.as_mut() {
            c.size.columns = 0;
        }
        assert!(Request::decode(&zero.encode()).is_err(), "a zero size");
    }

    #[test]
    fn the_handles_of_a_request_are_found_even_when_it_is_refused() {
        let mut r = request();
        r.argv.clear(); // refused: no command
        let payload = r.encode();
        assert!(Request::decode(&payload).is_err());
        assert_eq!(handed_in(&payload), vec![0x10, 0x2c, u64::MAX]);
        r.stdio = [0; 3];
        r.console = Some(ConsoleHandoff {
            input: 7,
            output: 9,
            size: ConsoleSize {
                columns: 80,
                rows: 25,
            },
        });
        assert_eq!(handed_in(&r.encode()), vec![7, 9]);
    }

    #[test]
    fn console_sizes_round_trip_and_other_frames_are_not_sizes() {
        let s = ConsoleSize {
            columns: 200,
            rows: 1,
        };
        assert_eq!(ConsoleSize::decode(&s.encode()), Ok(s));
        assert!(ConsoleSize::decode(
            &Response::Failed {
                code: 1,
                message: "x".into()
            }
            .encode()
        )
        .is_err());
        for bad in ["80", "80x", "x25", "-1x25", "80x25x1", "99999x25"] {
            let mut w = Writer(Vec::new());
            w.field("console-size", bad);
            assert!(ConsoleSize::decode(&w.0).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_round_trip() {
        for r in [
            Response::Started {
                job: 4,
                process: 0x1f8,
                thread: u64::MAX,
            },
            Response::Failed {
                code: 125,
                message: "the sandbox account CordonSandboxOffline: not\nfound".into(),
            },
        ] {
            assert_eq!(Response::decode(&r.encode()), Ok(r));
        }
    }

    #[test]
    fn requests_cordon_would_never_send_are_refused() {
        let good = String::from_utf8(request().encode()).unwrap_or_default();
        let cwd_len = request().cwd.len();
        let cases: Vec<(&str, String)> = vec![
            (
                "an unknown privilege",
                good.replace("SeChangeNotifyPrivilege", "SeDebugPrivilege0000000"),
            ),
            (
                "no kill on close",
                good.replace("kill-on-close 1\n1", "kill-on-close 1\n0"),
            ),
            ("an unknown field", format!("{good}surprise 1\nx\n")),
            ("a cut field", good[..good.len() - 3].to_string()),
            ("a dangling env-name", format!("{good}env-name 1\nA\n")),
            (
                "a wrong length",
                good.replacen(
                    &format!("cwd {cwd_len}\n"),
                    &format!("cwd {}\n", cwd_len + 5),
                    1,
                ),
            ),
        ];
        for (what, text) in cases {
            assert!(
                Request::decode(text.as_bytes()).is_err(),
                "{what} was accepted"
            );
        }
        let mut no_argv = request();
        no_argv.argv.clear();
        assert!(Request::decode(&no_argv.encode()).is_err());
    }

    #[test]
    fn a_frame_is_found_after_other_output_and_nothing_after_it_is_read() {
        let payload = request().encode();
        let mut stream = b"\nrunning 1 test\n\x1e\x1ecordon-hand".to_vec();
        write_frame(&mut stream, &payload).unwrap_or_else(|e| panic!("{e}"));
        stream.extend_from_slice(b"what follows");
        let mut r = &stream[..];
        assert_eq!(read_frame(&mut r).ok(), Some(payload));
        assert_eq!(r, b"what follows");
    }

    #[test]
    fn a_frame_cut_short_or_too_big_is_an_error() {
        let mut stream = Vec::new();
        write_frame(&mut stream, b"0123456789").unwrap_or_else(|e| panic!("{e}"));
        stream.truncate(stream.len() - 2);
        assert!(read_frame(&mut &stream[..]).is_err());
        let huge = format!("{MAGIC} {}\n", MAX_FRAME + 1);
        assert!(read_frame(&mut huge.as_bytes()).is_err());
        assert!(read_frame(&mut &b"no frame here"[..]).is_err());
    }
}
