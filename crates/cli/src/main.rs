//! The `cordon` binary: parses flags and hands each subcommand to its module.
#![forbid(unsafe_code)]

mod args;
mod dirs;
mod failure;
mod layers;
mod runlog;

// The Linux backend's `cordon run` and the subcommands built on what only Linux has here
// (the proxy, transactions, the approval broker).
// The approval broker of a run (network asks on both; command rules and the request door
// on Linux, in `commands`), and the console that answers it.
#[cfg(any(target_os = "linux", windows))]
mod approval;
#[cfg(target_os = "linux")]
mod commands;
#[cfg(any(target_os = "linux", windows))]
mod console;
#[cfg(target_os = "linux")]
mod doctor;
// The proxy variables and how decisions read: Linux's `cordon run` and `windows_net`.
#[cfg(any(target_os = "linux", windows))]
mod egress;
#[cfg(target_os = "linux")]
mod guarantees;
#[cfg(any(target_os = "linux", windows))]
mod planted_git;
#[cfg(target_os = "linux")]
mod recorder;
#[cfg(target_os = "linux")]
mod request;
#[cfg(any(target_os = "linux", windows))]
mod rules_check;
#[cfg(target_os = "linux")]
mod run;
#[cfg(target_os = "linux")]
mod transaction;
#[cfg(target_os = "linux")]
mod tx;

// The Windows backend's `cordon run`, `setup --elevated` and `doctor` (docs/windows.md).
#[cfg(windows)]
mod windows_net;
#[cfg(windows)]
mod windows_run;
#[cfg(windows)]
mod windows_setup;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use failure::{Failure, EXIT_SETUP};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_SETUP } else { 0 };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    let result = match cli.command {
        Command::Approve(args) => approve(args),
        #[cfg(target_os = "linux")]
        Command::Run(args) => run::run(*args),
        #[cfg(target_os = "linux")]
        Command::Doctor(args) => Ok(doctor::doctor(&args)),
        #[cfg(any(target_os = "linux", windows))]
        Command::Rules(args::RulesCommand::Check(args)) => rules_check(args),
        #[cfg(any(target_os = "linux", windows))]
        Command::Console(args) => console(args),
        #[cfg(target_os = "linux")]
        Command::Tx(cmd) => tx_command(cmd),
        #[cfg(target_os = "linux")]
        Command::Request(args) => Ok(request::request(&args)),
        #[cfg(target_os = "linux")]
        Command::Setup(_) => Err(Failure::setup(
            "`cordon setup --elevated` is for the Windows backend: on Linux nothing needs an administrator (`cordon doctor` shows what this machine enforces)",
        )),
        #[cfg(windows)]
        Command::Run(args) => {
            let ran = windows_run::run(*args);
            // A question's thread may still hold the console's raw mode as cordon exits.
            cordon_windows::exec::console_keys::give_back_console();
            ran
        }
        #[cfg(windows)]
        Command::Setup(args) => windows_setup::setup(&args),
        #[cfg(windows)]
        Command::Doctor(args) => windows_setup::doctor(&args),
        #[cfg(windows)]
        Command::AsAccount => Ok(cordon_windows::exec::account::serve()),
        #[cfg(windows)]
        Command::Broker => Ok(cordon_windows::exec::broker::serve(
            cordon_windows::broker::VERSION,
        )),
        #[cfg(not(target_os = "linux"))]
        other => Err(unavailable(&other)),
    };
    match result {
        // A Windows exit status is 32 bits (a crash is 0xC0000005): relayed whole.
        #[cfg(windows)]
        Ok(code) if !(0..=255).contains(&code) => std::process::exit(code),
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(f) => {
            report(&f);
            ExitCode::from(f.code.clamp(0, 255) as u8)
        }
    }
}

fn report(f: &Failure) {
    eprintln!("cordon: {}", f.message);
    if let Some(h) = &f.hint {
        eprintln!("cordon: hint: {h}");
    }
    if f.code == EXIT_SETUP {
        eprintln!("cordon: this is the sandbox refusing to run, not a fault in the command; retrying the same way will fail the same way");
    }
}

/// A subcommand this platform's backend does not have yet.
#[cfg(not(target_os = "linux"))]
fn unavailable(command: &Command) -> Failure {
    let name = match command {
        Command::Run(_) => "run",
        Command::Doctor(_) => "doctor",
        Command::Approve(_) => "approve",
        Command::Tx(_) => "tx",
        Command::Rules(_) => "rules",
        Command::Console(_) => "console",
        Command::Request(_) => "request",
        Command::Setup(_) => "setup",
        #[cfg(windows)]
        Command::AsAccount => "__as-account",
        #[cfg(windows)]
        Command::Broker => "__broker",
    };
    Failure::setup(format!(
        "`cordon {name}` is not available on this platform yet (docs/windows.md lists what the Windows backend has)"
    ))
}

#[cfg(target_os = "linux")]
fn tx_command(cmd: args::TxCommand) -> Result<i32, Failure> {
    use args::TxCommand;
    let state = dirs::state_dir()
        .ok_or_else(|| Failure::setup("no state folder: set HOME or XDG_STATE_HOME"))?;
    let mut sink = runlog::open_audit(None)?;
    let run_id = runlog::run_id();
    let mut audit = |event| runlog::log(&mut sink, &run_id, event);
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    Ok(match cmd {
        TxCommand::List { json } => tx::list(&state, json, &mut audit, &mut out, &mut err),
        TxCommand::Diff { name, json } => {
            let protection = protection_of(&state, &name)?;
            tx::diff(
                &state,
                &name,
                &protection,
                json,
                &mut audit,
                &mut out,
                &mut err,
            )
        }
        TxCommand::Apply { name, paths } => {
            let protection = protection_of(&state, &name)?;
            let cwd = dirs::current_dir()?;
            let paths: Vec<_> = paths.iter().map(|p| cwd.join(p)).collect();
            // What is applied lands where the user's git reads it: checked as after a run.
            let ws = workspace_of(&state, &name)?;
            let roots: Vec<_> = std::fs::canonicalize(&ws).into_iter().collect();
            let git_before = planted_git::before(&ws, &roots);
            let code = tx::apply(
                &state,
                &name,
                &paths,
                &protection,
                &mut audit,
                &mut out,
                &mut err,
            );
            if let Some(before) = &git_before {
                for refused in planted_git::after(&ws, &roots, before) {
                    audit(planted_git::report(refused));
                }
            }
            code
        }
        TxCommand::Discard { name } => tx::discard(&state, &name, &mut audit, &mut out, &mut err),
    })
}

#[cfg(target_os = "linux")]
/// The protected set of the transaction's workspace, from the policy as `cordon run` there
/// would load it.
fn protection_of(
    state: &std::path::Path,
    name: &str,
) -> Result<cordon_transaction::Protection, Failure> {
    let ws = workspace_of(state, name)?;
    let loaded = layers::load_without_flags(&ws, &ws, None)?;
    let protected = run::protected_paths(&loaded.policy, &ws);
    Ok(cordon_transaction::Protection::new(
        &ws,
        protected,
        [ws.join(".git")],
    ))
}

/// The workspace a transaction was made for.
#[cfg(target_os = "linux")]
fn workspace_of(state: &std::path::Path, name: &str) -> Result<std::path::PathBuf, Failure> {
    let listing = cordon_transaction::Store::new(state)
        .list()
        .map_err(|e| Failure::setup(format!("transactions: {e}")))?;
    let ws = listing
        .into_iter()
        .find(|l| l.name == name)
        .and_then(|l| l.meta)
        .map(|m| m.workspace)
        .ok_or_else(|| {
            Failure::setup(format!(
                "no transaction named {name} (`cordon tx list` shows them)"
            ))
        })?;
    Ok(ws)
}

#[cfg(any(target_os = "linux", windows))]
fn rules_check(args: args::RulesCheckArgs) -> Result<i32, Failure> {
    let cwd = dirs::current_dir()?;
    let ws = args.workspace.as_ref().map_or(cwd.clone(), |w| cwd.join(w));
    let loaded = layers::load_without_flags(&ws, &cwd, args.policy.as_deref())?;
    let rules = approval::platform_rules(&loaded.policy.commands);
    // Windows judges the program by the file it resolves to as well (`cordon run` does).
    #[cfg(windows)]
    let also_named = args.argv.first().and_then(|p| windows_run::long_name(p));
    #[cfg(not(windows))]
    let also_named: Option<String> = None;
    let names = approval::program_names(&args.argv, also_named.as_deref());
    let verdict = approval::decide_command_line(&rules, &names, &args.argv);
    Ok(rules_check::rules_check(
        &rules, &verdict, &names, &args.argv, args.json,
    ))
}

#[cfg(any(target_os = "linux", windows))]
fn console(args: args::ConsoleArgs) -> Result<i32, Failure> {
    let state = approval::state_dir()?;
    let cwd = dirs::current_dir()?;
    let loaded = layers::load_without_flags(&cwd, &cwd, None)?;
    let audit = args.audit.or_else(|| Some(state.join("audit.jsonl")));
    Ok(console::console(args.bind, state, audit, &loaded.policy))
}

fn approve(args: args::ApproveArgs) -> Result<i32, Failure> {
    let cwd = dirs::current_dir()?;
    let ws = dirs::workspace(args.workspace.as_deref(), &cwd)?;
    let (file, widenings) = layers::approve(&ws)?;
    if widenings.is_empty() {
        println!("approved {} (it widens nothing)", file.display());
    } else {
        println!(
            "approved {}; it now widens the sandbox with:",
            file.display()
        );
        for w in widenings {
            println!("  {w}");
        }
    }
    Ok(0)
}
