//! `cordon setup --elevated` and `cordon doctor` on Windows: the elevated mode's one-time
//! setup (accounts, DPAPI passwords, firewall rules, WFP filters; through UAC when cordon is
//! not elevated), and what of it is in place. See docs/windows.md, "Elevated setup".

use cordon_windows::exec::{self, elevate};
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
    if args.dry_run {
        print!("{}", setup_plan(&input));
        return Ok(0);
    }
    let elevated = elevate::is_elevated()
        .map_err(|e| Failure::setup(format!("reading this process's elevation: {e}")))?;
    if !elevated {
        return through_uac(&input);
    }
    let for_user = match &args.for_user {
        Some(text) => {
            Some(Sid::parse(text).map_err(|e| Failure::setup(format!("--for-user {text}: {e}")))?)
        }
        None => None,
    };
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
            "unelevated": "writes confined (restricted token, sandbox-write SID, ACLs, job object); read, network and processes need the elevated mode",
            "elevated_ready": report.complete(),
            "elevated_setup": checks,
        });
        println!("{v}");
        return Ok(0);
    }
    println!("backend: windows");
    println!("unelevated mode: writes confined by a write-restricted token, the workspace's sandbox-write SID and ACLs, limits by a job object; read, network and processes are not isolated (--allow-weaker to accept)");
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
