//! The hand-off of elevated runs (`exec::account`), end to end where Wine can run it.
//!
//! Wine's LSA knows no sandbox accounts, so the copy is started as the same user
//! (`Launch::SameUser`): this test binary again, running only [`copy_entry`], which serves
//! one request as `cordon __as-account` would. Everything but the logon itself is the real
//! path: the pipes, the frames, the handles duplicated both ways, the copy leaving before the
//! command resumes, the wait, the timeout, the exit code.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cordon_policy::ResolveContext;

use super::account::{run_elevated, serve, Copy, Launch};
use super::*;
use crate::plan::network::OFFLINE_ACCOUNT;
use crate::plan::{self, Mode, PlanInput};

/// In the copy's environment only: this test binary is cordon's copy.
const COPY_MARK: &str = "CORDON_TEST_ACCOUNT_COPY";
/// In a command's environment only: sleep (a command for the timeout).
const SLEEP_MARK: &str = "CORDON_TEST_SLEEP";

#[test]
fn copy_entry() {
    if std::env::var_os(COPY_MARK).is_some() {
        std::process::exit(serve());
    }
}

#[test]
fn sleep_entry() {
    if std::env::var_os(SLEEP_MARK).is_some() {
        std::thread::sleep(Duration::from_secs(60));
    }
}

pub(super) fn this_exe() -> String {
    std::env::current_exe()
        .unwrap_or_else(|e| panic!("{e}"))
        .to_string_lossy()
        .into_owned()
}

fn entry(name: &str) -> Vec<String> {
    vec![
        format!("exec::account_tests::{name}"),
        "--exact".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ]
}

/// An applied plan (the weaker unelevated policy: no accounts needed) for a scratch folder.
pub(super) fn applied_plan(name: &str) -> WindowsPlan {
    let root: PathBuf =
        std::env::temp_dir().join(format!("cordon-win-acct-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let ws = root.join("ws");
    fs::create_dir_all(&ws).unwrap_or_else(|e| panic!("{e}"));
    let layer = cordon_policy::Layer::parse(
        cordon_policy::LayerSource::User("t.toml".into()),
        std::path::Path::new("t.toml"),
        "[sandbox]\nallow_weaker = true\n",
    )
    .unwrap_or_else(|d| panic!("{d:?}"));
    let policy = cordon_policy::Policy::from_layers(&[cordon_policy::builtin(), layer]);
    let ctx = ResolveContext {
        workspace: ws,
        homes: vec![root.join("home")],
        always_deny: Vec::new(),
    };
    let input = PlanInput {
        policy: &policy,
        ctx: &ctx,
        mode: Mode::Unelevated,
        temp_base: WinPath::from_path(&root.join("tmp")).unwrap_or_else(|e| panic!("{e}")),
        cpus: 2,
        proxy_ports: Vec::new(),
        everyone_writable: Vec::new(),
        previously_managed: Vec::new(),
        tool_dirs: Vec::new(),
        profile: None,
    };
    let plan = plan::plan(&input, &RealHost).unwrap_or_else(|e| panic!("{e}"));
    apply(&plan).unwrap_or_else(|e| panic!("{e}"));
    plan
}

pub(super) fn system_env() -> Vec<(String, String)> {
    let system = std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\windows".into());
    vec![("SystemRoot".to_string(), system)]
}

pub(super) fn cmd(args: &[&str]) -> Vec<String> {
    let system = std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\windows".into());
    let mut v = vec![format!(r"{system}\system32\cmd.exe")];
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

/// `handed_over_once`, again (at most twice more) when Wine's server fails a call with
/// ERROR_INTERNAL_ERROR (1359): seen once in CI on a loaded machine, never on Windows' own
/// error paths, which this test does not exercise. Any other error, or a wrong exit, fails.
fn handed_over(
    plan: &WindowsPlan,
    argv: &[String],
    env: &[(String, String)],
    timeout: Option<Duration>,
) -> Result<Exit, ExecError> {
    let under_wine = std::env::var_os("CORDON_UNDER_WINE").is_some();
    let mut tries = 0;
    loop {
        tries += 1;
        match handed_over_once(plan, argv, env, timeout) {
            Err(e) if under_wine && tries < 3 && e.to_string().contains("os error 1359") => {
                eprintln!("wine: the hand-off failed with 1359, trying again: {e}");
            }
            other => return other,
        }
    }
}

fn handed_over_once(
    plan: &WindowsPlan,
    argv: &[String],
    env: &[(String, String)],
    timeout: Option<Duration>,
) -> Result<Exit, ExecError> {
    let exe = this_exe();
    let args = entry("copy_entry");
    let mut copy_env: Vec<(String, String)> = std::env::vars().collect();
    copy_env.push((COPY_MARK.into(), "1".into()));
    run_elevated(
        plan,
        &Launch::SameUser { env: &copy_env },
        &Copy {
            exe: &exe,
            args: &args,
        },
        argv,
        env,
        &plan.workspace.to_string(),
        timeout,
    )
}

#[test]
fn the_copy_hands_the_command_over_and_its_exit_code_is_relayed() {
    let plan = applied_plan("exit");
    for code in [0u32, 7, 300] {
        let exit = handed_over(
            &plan,
            &cmd(&["/c", "exit", &code.to_string()]),
            &system_env(),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(exit, Exit::Code(code));
    }
}

#[test]
fn a_timeout_ends_the_handed_over_command_with_its_job() {
    let plan = applied_plan("timeout");
    let mut argv = vec![this_exe()];
    argv.extend(entry("sleep_entry"));
    let mut env = system_env();
    env.push((SLEEP_MARK.into(), "1".into()));
    let t0 = Instant::now();
    let exit = handed_over(&plan, &argv, &env, Some(Duration::from_secs(2)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::TimedOut);
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
}

#[test]
fn the_copy_refuses_unless_it_is_the_plans_account() {
    // Under Wine the account is unknown; on a Windows without setup too; with setup, the
    // copy (this user) is not the account. Each is a refusal with cordon's status 125.
    let mut plan = applied_plan("account");
    plan.account = Some(OFFLINE_ACCOUNT);
    match handed_over(&plan, &cmd(&["/c", "exit", "0"]), &system_env(), None) {
        Err(ExecError::Refused { code: 125, message }) => {
            assert!(message.contains(OFFLINE_ACCOUNT), "{message}")
        }
        other => panic!("the copy ran a command as the wrong account: {other:?}"),
    }
}

#[test]
fn a_missing_program_is_a_start_failure_from_the_copy() {
    let plan = applied_plan("missing");
    let argv = vec![r"C:\no\such\program.exe".to_string()];
    match handed_over(&plan, &argv, &system_env(), None) {
        Err(ExecError::Refused { code: 126, message }) => {
            assert!(message.contains("program.exe"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_logon_with_a_wrong_password_is_a_named_error() {
    let plan = applied_plan("logon");
    let exe = this_exe();
    let args = entry("copy_entry");
    let got = run_elevated(
        &plan,
        &Launch::Logon {
            account: OFFLINE_ACCOUNT,
            password: "not the password",
        },
        &Copy {
            exe: &exe,
            args: &args,
        },
        &cmd(&["/c", "exit", "0"]),
        &system_env(),
        &plan.workspace.to_string(),
        None,
    );
    match got {
        Err(e @ ExecError::Logon { .. }) => {
            assert!(e.to_string().contains(OFFLINE_ACCOUNT), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

/// The broker's half of an elevated run on a console: a request naming two pipe ends (made
/// here, as the developer's cordon makes them) gets the command a pseudo console over them,
/// whose output reaches the other end; the size frame's call is made; closing what the
/// broker holds ends the output. cordon's half (its console relayed) needs a real console.
#[test]
fn a_request_with_a_console_runs_the_command_on_a_pseudo_console_over_the_handed_pipes() {
    use std::fs::File;
    use std::io::Read;
    use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
    use std::ptr::{null, null_mut};
    use std::sync::mpsc;

    use super::account::current;
    use crate::handoff::{ConsoleHandoff, ConsoleSize, Request};

    let plan = applied_plan("console");
    let system = std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\windows".into());
    // To its console (CON): Wine 8 leaves a pseudo console command's standard handles null.
    let argv = cmd(&["/c", "echo cordon-broker-console-7>CON"]);
    let mut r = Request::for_plan(&plan, &argv, &system_env(), &system);
    r.account = None;
    let pipe = || {
        let (mut read, mut write) = (null_mut(), null_mut());
        // SAFETY: valid out places; no security attributes.
        let ok = unsafe {
            windows_sys::Win32::System::Pipes::CreatePipe(&mut read, &mut write, null(), 0)
        };
        assert_ne!(ok, 0, "CreatePipe");
        // SAFETY: fresh handles owned by nobody else.
        unsafe {
            (
                OwnedHandle::from_raw_handle(read),
                OwnedHandle::from_raw_handle(write),
            )
        }
    };
    let (input_read, input_write) = pipe();
    let (output_read, output_write) = pipe();
    r.console = Some(ConsoleHandoff {
        input: input_read.as_raw_handle() as u64,
        output: output_write.as_raw_handle() as u64,
        size: ConsoleSize {
            columns: 100,
            rows: 30,
        },
    });
    let (response, held) = super::account::start(&r).unwrap_or_else(|e| panic!("{e:?}"));
    // As the broker does after the start: the handed ends are closed.
    drop((input_read, output_write));
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut out = File::from(output_read);
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let crate::handoff::Response::Started {
        job,
        process,
        thread,
    } = response
    else {
        panic!("{response:?}")
    };
    let mine = |h: u64| {
        let d = super::account::duplicate(current(), h as RawHandle, current())
            .unwrap_or_else(|e| panic!("{e}"));
        // SAFETY: a fresh duplicate nothing else owns.
        unsafe { OwnedHandle::from_raw_handle(d) }
    };
    let job = mine(job);
    let exit = process::Started::from_handles(mine(process), mine(thread))
        .wait(&job, Some(Duration::from_secs(30)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::Code(0));
    let console = held
        .console()
        .unwrap_or_else(|| panic!("no pseudo console held"));
    let resized = console.resize((120, 40));
    if std::env::var_os("CORDON_UNDER_WINE").is_some() {
        assert!(
            resized.is_err(),
            "Wine 8's ResizePseudoConsole is E_NOTIMPL"
        );
    } else {
        resized.unwrap_or_else(|e| panic!("{e}"));
    }
    let mut got = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&got).contains("cordon-broker-console-7") {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(chunk) => got.extend(chunk),
            Err(_) => break,
        }
    }
    // What the broker holds goes when cordon closes its pipe: the output ends with it.
    drop(held);
    drop(input_write);
    reader
        .join()
        .unwrap_or_else(|_| panic!("the reader panicked"));
    got.extend(rx.try_iter().flatten());
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("cordon-broker-console-7"), "{text:?}");
}
