//! The long-lived broker (`exec::broker`) end to end where Wine can run it.
//!
//! Wine's LSA knows no sandbox accounts, so the broker is started as the same user
//! (`Launch::SameUser`): this test binary again, running only [`broker_entry`], which serves
//! as `cordon __broker` would. Everything but the logon is the real path: the start frame,
//! the shield, the pipe and its handshake, the client check, the hand-off of each command,
//! the idle exit, a broker of another version replaced, a squatter on the pipe refused.
//! Each test uses its own logon-session string, so its pipe is its own.

use std::io::Write as _;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::time::{Duration, Instant};

use super::account::{Copy, Launch};
use super::account_tests::{applied_plan, cmd, system_env, this_exe};
use super::broker::{self, Place, Served};
use super::*;
use crate::broker::{BrokerName, Greeting, VERSION};
use crate::handoff::{read_frame, write_frame};
use crate::sid::Sid;

/// In the broker's environment only: this test binary is cordon's broker.
const BROKER_MARK: &str = "CORDON_TEST_BROKER";
/// The version the test broker claims (a client of another replaces it).
const VERSION_VAR: &str = "CORDON_TEST_BROKER_VERSION";

#[test]
fn broker_entry() {
    if std::env::var_os(BROKER_MARK).is_some() {
        let version = std::env::var(VERSION_VAR).unwrap_or_else(|_| VERSION.to_string());
        std::process::exit(broker::serve(&version));
    }
}

fn me() -> Sid {
    let t = token::process_token().unwrap_or_else(|e| panic!("{e}"));
    token::user_sid(&t).unwrap_or_else(|e| panic!("{e}"))
}

fn state_dir(name: &str) -> WinPath {
    let p = std::env::temp_dir().join(format!("cordon-win-broker-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("{e}"));
    WinPath::from_path(&p).unwrap_or_else(|e| panic!("{e}"))
}

/// One command through the broker named by (`developer`, `session`), a broker of `version`
/// started when none serves, idle after `idle`.
struct Client {
    state: WinPath,
    developer: Sid,
    session: String,
    version: String,
    idle: Duration,
}

impl Client {
    fn new(name: &str) -> Client {
        Client {
            state: state_dir(name),
            developer: me(),
            session: format!("test-{name}-{}", std::process::id()),
            version: VERSION.to_string(),
            idle: Duration::from_secs(20),
        }
    }

    fn pipe(&self) -> String {
        BrokerName::new(&self.developer, &self.session, "this-user").pipe()
    }

    fn run(&self, plan: &WindowsPlan, argv: &[String]) -> Result<Served, ExecError> {
        let exe = this_exe();
        let args: Vec<String> = [
            "exec::broker_tests::broker_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ]
        .map(String::from)
        .to_vec();
        let mut env: Vec<(String, String)> = std::env::vars().collect();
        env.push((BROKER_MARK.into(), "1".into()));
        env.push((VERSION_VAR.into(), self.version.clone()));
        broker::run(
            plan,
            &Launch::SameUser { env: &env },
            &Copy {
                exe: &exe,
                args: &args,
            },
            &Place {
                state_dir: &self.state,
                developer: &self.developer,
                session: &self.session,
                version: &self.version,
                idle: self.idle,
            },
            argv,
            &system_env(),
            &plan.workspace.to_string(),
            None,
            None,
        )
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Leave no broker behind (the idle exit would, later).
        let _ = broker::quit(&self.pipe(), &self.version);
    }
}

fn exited_within(pid: u32, within: Duration) -> bool {
    // SAFETY: no pointers; the handle, if any, is closed by OwnedHandle.
    let h = unsafe { windows_sys::Win32::System::Threading::OpenProcess(0x0010_0000, 0, pid) };
    if h.is_null() {
        return true; // no such process any more
    }
    // SAFETY: a fresh process handle nothing else owns.
    let h = unsafe { OwnedHandle::from_raw_handle(h) };
    let ms = within.as_millis() as u32;
    // SAFETY: a valid process handle with SYNCHRONIZE.
    let waited = unsafe {
        windows_sys::Win32::System::Threading::WaitForSingleObject(h.as_raw_handle(), ms)
    };
    waited == 0
}

#[test]
fn one_broker_serves_two_commands_and_the_second_starts_no_process() {
    let plan = applied_plan("broker-two");
    let client = Client::new("two");
    let first = client
        .run(&plan, &cmd(&["/c", "exit", "7"]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.exit, Exit::Code(7));
    assert!(
        first.started_broker,
        "the first run found a broker: {first:?}"
    );
    let second = client
        .run(&plan, &cmd(&["/c", "exit", "300"]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second.exit, Exit::Code(300));
    assert!(
        !second.started_broker,
        "the second run started a broker: {second:?}"
    );
    assert_eq!(second.broker_pid, first.broker_pid);
    assert!(broker::is_serving(&client.pipe()));
}

#[test]
fn the_broker_refuses_a_client_that_is_not_its_developer() {
    // The broker is started for another developer's SID; this process is not it. Either
    // the pipe's DACL keeps it out (Windows; access denied) or the broker's check of the
    // client's token refuses it (naming both SIDs): nothing runs either way.
    let plan = applied_plan("broker-wrong");
    let mut client = Client::new("wrong");
    client.developer = Sid::parse("S-1-5-21-111-222-333-1001").unwrap_or_else(|e| panic!("{e}"));
    match client.run(&plan, &cmd(&["/c", "exit", "0"])) {
        Err(e @ ExecError::Handoff(_)) => {
            let m = e.to_string();
            let by_check = m.contains("refused this client") && m.contains(&me().to_string());
            let by_dacl = m.contains("os error 5");
            assert!(by_check || by_dacl, "{m}");
            eprintln!(
                "refused by {}: {m}",
                if by_check {
                    "the broker's check"
                } else {
                    "the pipe's DACL"
                }
            );
        }
        other => panic!("a broker for someone else served this client: {other:?}"),
    }
}

#[test]
fn an_idle_broker_exits_and_the_next_run_starts_another() {
    let plan = applied_plan("broker-idle");
    let mut client = Client::new("idle");
    client.idle = Duration::from_millis(1500);
    let first = client
        .run(&plan, &cmd(&["/c", "exit", "0"]))
        .unwrap_or_else(|e| panic!("{e}"));
    let t0 = Instant::now();
    assert!(
        exited_within(first.broker_pid, Duration::from_secs(20)),
        "the broker was still there after 20 s"
    );
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(1000),
        "it left after {waited:?}, before its idle time"
    );
    assert!(!broker::is_serving(&client.pipe()), "its pipe outlived it");
    let next = client
        .run(&plan, &cmd(&["/c", "exit", "4"]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(next.exit, Exit::Code(4));
    assert!(next.started_broker);
    assert_ne!(next.broker_pid, first.broker_pid);
}

#[test]
fn a_broker_of_another_version_is_told_to_quit_and_replaced() {
    let plan = applied_plan("broker-version");
    let mut client = Client::new("version");
    client.version = "cordon-windows 0.0.0 broker protocol 0".into();
    let old = client
        .run(&plan, &cmd(&["/c", "exit", "0"]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(old.started_broker);
    client.version = VERSION.to_string();
    let new = client
        .run(&plan, &cmd(&["/c", "exit", "5"]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(new.exit, Exit::Code(5));
    assert!(
        new.started_broker,
        "the old broker served a client of another version"
    );
    assert_ne!(new.broker_pid, old.broker_pid);
    assert!(
        exited_within(old.broker_pid, Duration::from_secs(5)),
        "the old broker stayed"
    );
}

#[test]
fn a_squatter_on_the_pipe_without_the_secret_is_refused() {
    let plan = applied_plan("broker-squat");
    let client = Client::new("squat");
    // A key from an earlier broker, and a process of this user holding the name.
    let name = BrokerName::new(&client.developer, &client.session, "this-user");
    std::fs::write(
        client.state.child(&name.key_file()).to_api(),
        "the real broker's key",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let pipe_name = wide(&name.pipe());
    // SAFETY: a NUL-terminated name; default security; the handle is owned below.
    let h = unsafe {
        windows_sys::Win32::System::Pipes::CreateNamedPipeW(
            pipe_name.as_ptr(),
            windows_sys::Win32::Storage::FileSystem::PIPE_ACCESS_DUPLEX,
            0,
            1,
            4096,
            4096,
            0,
            std::ptr::null(),
        )
    };
    assert_ne!(h, windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE);
    // SAFETY: a fresh pipe handle nothing else owns.
    let squat = unsafe { OwnedHandle::from_raw_handle(h) };
    let server = std::thread::spawn(move || {
        // SAFETY: our pipe instance; blocking connect.
        unsafe {
            windows_sys::Win32::System::Pipes::ConnectNamedPipe(
                squat.as_raw_handle(),
                std::ptr::null_mut(),
            )
        };
        let mut f = std::fs::File::from(squat);
        let _ = read_frame(&mut f);
        let hello = Greeting::Hello {
            version: VERSION.into(),
            pid: std::process::id(),
            secret: "a guess".into(),
        };
        let _ = write_frame(&mut f, &hello.encode());
        let _ = f.flush();
        // Whatever the client sends next would be the prize: there must be nothing.
        read_frame(&mut f).is_ok()
    });
    match client.run(&plan, &cmd(&["/c", "exit", "0"])) {
        Err(e @ ExecError::Handoff(_)) => {
            assert!(e.to_string().contains("not cordon's broker"), "{e}")
        }
        other => panic!("the client used a squatter's pipe: {other:?}"),
    }
    let got_more = server
        .join()
        .unwrap_or_else(|_| panic!("the squatter's thread panicked"));
    assert!(!got_more, "the client sent the squatter a request");
}

#[test]
fn the_broker_shields_its_process_from_the_commands() {
    let plan = applied_plan("broker-shield");
    let client = Client::new("shield");
    let served = client
        .run(&plan, &cmd(&["/c", "exit", "0"]))
        .unwrap_or_else(|e| panic!("{e}"));
    let aces = broker::broker_process_dacl(served.broker_pid).unwrap_or_else(|e| panic!("{e}"));
    let t = token::process_token().unwrap_or_else(|e| panic!("{e}"));
    let logon = token::logon_sid(&t).unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<(Sid, u32)> = aces.iter().map(|a| (a.sid.clone(), a.mask)).collect();
    assert_eq!(got, shield::process_entries(&client.developer), "{aces:?}");
    assert!(
        !aces
            .iter()
            .any(|a| a.sid == Sid::everyone() || Some(&a.sid) == logon.as_ref()),
        "{aces:?}"
    );
    // What the commands' restricting SIDs would need is granted to none of them.
    assert!(!aces
        .iter()
        .any(|a| a.sid == client.developer && a.mask & 0x0008 != 0)); // no VM write
}
