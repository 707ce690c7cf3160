//! `cordon setup --elevated` and `cordon doctor` on Windows: the elevated mode's one-time
//! setup (accounts, DPAPI passwords, firewall rules, WFP filters; through UAC when cordon is
//! not elevated), its removal (`--remove`, the same way through UAC), and what of it is in
//! place. See docs/windows.md, "Elevated setup" and "Removing elevated mode".

use cordon_windows::exec::{self, elevate};
use cordon_windows::plan::remove::RemoveReport;
use cordon_windows::plan::setup::{setup_plan, SetupInput, SetupReport, ELEVATED_PROXY_PORTS};
use cordon_windows::{Sid, WinPath};

use crate::args::{DoctorArgs, SetupArgs};
use crate::dirs;
use crate::failure::Failure;
use crate::windows_run::chain;

/// What setup works on: this user's state folder and cordon's fixed proxy port.
fn input() -> Result<SetupInput, Failure> {
    let state = dirs::state_dir()
        .ok_or_else(|| Failure::setup("cordon's state folder needs %LOCALAPPDATA%"))?;
    Ok(SetupInput {
        state_dir: WinPath::from_path(&state).map_err(|e| Failure::setup(e.to_string()))?,
        proxy_ports: ELEVATED_PROXY_PORTS.to_vec(),
        installed: None,
    })
}

pub fn setup(args: &SetupArgs) -> Result<i32, Failure> {
    let input = input()?;
    if args.remove {
        return remove(args, &input.state_dir);
    }
    if args.dry_run {
        print!("{}", setup_plan(&input));
        return Ok(0);
    }
    let elevated = elevate::is_elevated()
        .map_err(|e| Failure::setup(format!("reading this process's elevation: {e}")))?;
    if !elevated {
        return through_uac(&input);
    }
    let for_user = for_user(args)?;
    let report =
        exec::setup::apply(&input, for_user.as_ref()).map_err(|e| Failure::setup(chain(&e)))?;
    print_report(&report);
    finished(&report)
}

/// Not elevated: starts cordon again through UAC for the same user, waits, and reports what
/// is in place (the elevated window closes when it is done).
fn through_uac(input: &SetupInput) -> Result<i32, Failure> {
    let me = exec::token::process_token()
        .and_then(|t| exec::token::user_sid(&t))
        .map_err(|e| Failure::setup(format!("reading this account's SID: {e}")))?;
    let exe =
        std::env::current_exe().map_err(|e| Failure::setup(format!("finding cordon.exe: {e}")))?;
    eprintln!("cordon: setup needs an administrator; Windows will ask (UAC)…");
    let code = elevate::run_elevated(
        &exe.to_string_lossy(),
        &format!("setup --elevated --for-user {me}"),
    )
    .map_err(|e| Failure::setup(format!("elevating: {e}")))?;
    let report = exec::setup::check(input);
    print_report(&report);
    match code {
        0 => finished(&report),
        c => Err(Failure::setup(format!(
            "the elevated setup ended with {c}; {}",
            report.refusal()
        ))),
    }
}

/// `--for-user SID`, as cordon passes it to its elevated self.
fn for_user(args: &SetupArgs) -> Result<Option<Sid>, Failure> {
    match &args.for_user {
        Some(text) => Sid::parse(text)
            .map(Some)
            .map_err(|e| Failure::setup(format!("--for-user {text}: {e}"))),
        None => Ok(None),
    }
}

/// Where the elevated removal leaves its report for the cordon that asked UAC for it (the
/// elevated one has a console window of its own, which closes when it is done).
fn remove_report_file(state: &WinPath) -> WinPath {
    state.child("remove-report.txt")
}

/// `cordon setup --elevated --remove`: every step on a line of its own; 125 naming what is
/// left and how to remove it by hand. Elevates through UAC as setup does.
fn remove(args: &SetupArgs, state: &WinPath) -> Result<i32, Failure> {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| WinPath::from_path(&p).ok());
    let for_user = for_user(args)?;
    if args.dry_run {
        print!(
            "{}",
            exec::remove::plan(state, exe.as_ref(), for_user.as_ref())
        );
        return Ok(0);
    }
    let elevated = elevate::is_elevated()
        .map_err(|e| Failure::setup(format!("reading this process's elevation: {e}")))?;
    match (elevated, &for_user) {
        (false, None) => return remove_through_uac(state),
        // Started through UAC yet not elevated: asking again would loop.
        (false, Some(_)) => {
            return Err(Failure::setup(
                "removing the elevated mode needs an administrator's token, and this cordon has none after UAC",
            ))
        }
        (true, _) => {}
    }
    let (text, result) = match exec::remove::apply(state, exe.as_ref(), for_user.as_ref()) {
        Ok(report) => removal_finished(&report),
        Err(e) => (String::new(), Err(Failure::setup(chain(&e)))),
    };
    print!("{text}");
    if for_user.is_some() {
        // Started through UAC: the asking cordon prints this; a failure to leave it only
        // loses the copy, the exit status still says how it went.
        let mut copy = text;
        if let Err(f) = &result {
            copy.push_str(&format!("cordon: {}\n", f.message));
        }
        let _ = std::fs::write(remove_report_file(state).to_api(), copy);
    }
    result
}

/// The report's lines, and the outcome: 0 when everything is gone (done or already absent),
/// else 125 naming what is left.
fn removal_finished(report: &RemoveReport) -> (String, Result<i32, Failure>) {
    let text = report.to_string();
    match report.complete() {
        true => (
            format!("{text}cordon: the elevated mode is removed\n"),
            Ok(0),
        ),
        false => (text, Err(Failure::setup(report.leftovers()))),
    }
}

/// Not elevated: the removal runs in cordon started again through UAC, which leaves its
/// report in the state folder; it is printed here.
fn remove_through_uac(state: &WinPath) -> Result<i32, Failure> {
    let me = exec::token::process_token()
        .and_then(|t| exec::token::user_sid(&t))
        .map_err(|e| Failure::setup(format!("reading this account's SID: {e}")))?;
    let exe =
        std::env::current_exe().map_err(|e| Failure::setup(format!("finding cordon.exe: {e}")))?;
    let report = remove_report_file(state);
    let _ = std::fs::remove_file(report.to_api());
    eprintln!("cordon: removing the elevated mode needs an administrator; Windows will ask (UAC)…");
    let code = elevate::run_elevated(
        &exe.to_string_lossy(),
        &format!("setup --elevated --remove --for-user {me}"),
    )
    .map_err(|e| Failure::setup(format!("elevating: {e}")))?;
    let text = std::fs::read_to_string(report.to_api()).ok();
    let _ = std::fs::remove_file(report.to_api());
    if let Some(text) = &text {
        print!("{text}");
    }
    match (code, text) {
        (0, _) => Ok(0),
        (c, Some(_)) => Err(Failure::setup(format!(
            "the elevated removal ended with {c}; what it could not remove and how to remove it by hand is listed above"
        ))),
        (c, None) => Err(Failure::setup(format!(
            "the elevated removal ended with {c} and left no report in {report} (an elevation as another administrator cleans that one's state folder, not yours, and refuses); run `cordon setup --elevated --remove` from an administrator prompt of this account to see each step"
        ))),
    }
}

fn finished(report: &SetupReport) -> Result<i32, Failure> {
    match report.complete() {
        true => {
            println!("cordon: the elevated mode is set up");
            Ok(0)
        }
        false => Err(Failure::setup(report.refusal())),
    }
}

fn print_report(report: &SetupReport) {
    for c in &report.checks {
        let mark = if c.ok { "ok     " } else { "MISSING" };
        println!("{mark} {}: {}", c.what, c.detail);
    }
}

/// `cordon doctor` on Windows: the modes, and what of the elevated mode is in place.
/// What the elevated mode isolates, and what it does not (`plan::ELEVATED_NETWORK_GAPS`).
const ELEVATED_SAYS: &str = "writes, protected paths, deny-read, processes and limits, and the sandbox account's own network traffic; not isolated: name lookups (the DNS Client service sends them) and SMB to \\\\host\\share paths (the kernel's redirector), so network off and --net allow need --allow-weaker there too";

pub fn doctor(args: &DoctorArgs) -> Result<i32, Failure> {
    let report = exec::setup::check(&input()?);
    if args.json {
        let checks: Vec<serde_json::Value> = report
            .checks
            .iter()
            .map(|c| serde_json::json!({"what": c.what, "ok": c.ok, "detail": c.detail}))
            .collect();
        let v = serde_json::json!({
            "backend": "windows",
            "unelevated": "writes confined (restricted token, sandbox-write SID, ACLs, job object); read and processes need the elevated mode, and the network is not isolated in either",
            "elevated": ELEVATED_SAYS,
            "elevated_ready": report.complete(),
            "elevated_setup": checks,
        });
        println!("{v}");
        return Ok(0);
    }
    println!("backend: windows");
    println!("unelevated mode: writes confined by a write-restricted token, the workspace's sandbox-write SID and ACLs, limits by a job object; read, network and processes are not isolated (--allow-weaker to accept)");
    println!("elevated mode gives: {ELEVATED_SAYS}");
    println!(
        "elevated mode: {}",
        match report.complete() {
            true => "set up",
            false => "not set up: run `cordon setup --elevated` as an administrator",
        }
    );
    print_report(&report);
    Ok(0)
}
