//! `cordon run` on Windows: the layered policy planned into a restricted token, ACL edits and
//! a job object (`cordon_windows::plan`), the edits applied (once: an ACE already present is
//! skipped), and the command run inside them, with the same audit events and exit statuses
//! as on Linux. See docs/windows.md.
//!
//! When `cordon setup --elevated` is complete the plan is elevated: the command runs as the
//! sandbox account (the offline one, the online one for `--net full`), started by cordon's
//! long-lived broker as that account (`cordon __broker`, `exec::broker`), which the first
//! elevated run of a logon session starts. Otherwise the plan is unelevated, and a policy it
//! cannot enforce is refused naming both ways forward.

use std::path::Path;
use std::time::Instant;

use cordon_audit::Sink;
use cordon_audit::{AclEntry, Ending, Event, GuaranteeStatus};
use cordon_policy::{LimitKind, Policy, ResolveContext, ViolationClass};
use cordon_windows::exec::account::{self, Copy, Launch};
use cordon_windows::exec::broker::{self, Place};
use cordon_windows::exec::job::{JobTrip, JobWatch};
use cordon_windows::exec::token;
use cordon_windows::exec::{self, audit, Applied, ExecError, Exit, RealHost};
use cordon_windows::plan::acl::{AceKind, Inherit};
use cordon_windows::plan::setup::{SetupInput, ELEVATED_PROXY_PORTS, SETUP_NEEDED};
use cordon_windows::plan::{mode, Guarantee, Status};
use cordon_windows::{cmdline, Mode, PlanInput, Sid, WinPath, WindowsPlan};

use crate::args::RunArgs;
use crate::dirs;
use crate::failure::Failure;
use crate::layers;
use crate::planted_git;
use crate::runlog::{self, ending_of, log, log_failure, open_audit, run_id};

/// Runs the command; returns cordon's exit status (a Windows exit code is 32 bits: a crash's
/// 0xC0000005 is relayed whole).
pub fn run(args: RunArgs) -> Result<i32, Failure> {
    let started = Instant::now();
    let cwd = dirs::current_dir()?;
    let workspace = dirs::workspace(args.workspace.as_deref(), &cwd)?;
    let loaded = layers::load(&args, &workspace, &cwd)?;
    let policy = &loaded.policy;
    let run_id = run_id();
    let mut sink = open_audit(args.audit.as_deref())?;
    if let Some(event) = loaded.announce_ignored(&workspace) {
        log(&mut sink, &run_id, event);
    }
    let state = dirs::state_dir()
        .ok_or_else(|| Failure::setup("cordon's state folder needs %LOCALAPPDATA%"))?;
    let argv: Vec<String> = args
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // The program found as Windows would find it (a 127 when it is not comes after
    // `command_start`, from `execute`), and the program folders the plan may open.
    let program = find_program(&argv[0]);
    let tools = tool_dirs();
    let long_name = program.as_ref().ok().map(|found| long_name_of(found));
    let (plan, group, applied) = plan_for(policy, &workspace, &state, tools)?;
    log(&mut sink, &run_id, acl_event(&applied));
    for note in &plan.notes {
        eprintln!("cordon: note: {note}");
    }
    announce_weaker(&plan.guarantees);
    let (mut env, removed, secrets) = scrubbed_env(policy);
    // What a question to a human (`unlisted = "ask"`) carries, and where it is answered.
    let ask = crate::windows_net::AskSetup {
        ctx: crate::approval::Context {
            run_id: run_id.clone(),
            workspace: workspace.clone(),
            cwd: cwd.clone(),
            secrets,
            timeout: args
                .approval_timeout
                .unwrap_or(crate::approval::PROMPT_TIMEOUT),
        },
        state_dir: state.clone(),
    };
    // The command line judged by the rules (no exec inside is judged on Windows), by the
    // name typed and by the file's own long name: a forbid is 126, a prompt waits in
    // `cordon console`.
    let (judged, asked) = crate::approval::judge_command_line(
        policy,
        &argv,
        &ask.ctx,
        Some(&state),
        long_name.as_deref(),
        crate::approval::console_terminal(),
    );
    for event in asked {
        log(&mut sink, &run_id, event);
    }
    if let Err(refused) = judged {
        return Err(log_failure(&mut sink, &run_id, started, refused));
    }
    // --net allow: cordon's proxy on the one port the offline account's filters admit.
    let mut net = crate::windows_net::start_for(policy, plan.account.is_some(), &mut env, &ask)?;
    log(
        &mut sink,
        &run_id,
        Event::CommandStart {
            argv: argv.clone(),
            cwd: cwd.clone(),
            workspace: workspace.clone(),
            policy_digest: policy.digest(),
            backend: match plan.account {
                Some(_) => "windows-sandbox-account".into(),
                None => "windows-restricted-token".into(),
            },
            guarantees: plan.guarantees.iter().map(status_of).collect(),
            env_removed: removed,
        },
    );
    if let Some(net) = &mut net {
        if let Err(f) = net.record(&mut sink, &run_id, started) {
            return Err(log_failure(&mut sink, &run_id, started, f));
        }
    }
    // The run's job, shown before the command resumes: to the proxy's client check (allow
    // mode), and to the limit report below.
    let job_watch = net
        .as_ref()
        .map(|n| n.job_watch().clone())
        .unwrap_or_default();
    // The run's writable roots, canonical: what the nested-repository check may look at.
    let git_roots: Vec<std::path::PathBuf> = std::iter::once(workspace.clone())
        .chain(
            plan.writable
                .iter()
                .map(|w| std::path::PathBuf::from(w.to_api())),
        )
        .filter_map(|w| std::fs::canonicalize(w).ok())
        .collect();
    let git_before = planted_git::before(&workspace, &git_roots);
    let ended = program.and_then(|program| {
        let mut argv = argv;
        argv[0] = program;
        execute(&plan, group.as_ref(), &state, policy, argv, env, &job_watch)
    });
    // The proxy stops with the command, and the audit sink comes back for what follows.
    let killed_for = net.and_then(|net| net.finish(&mut sink, &run_id));
    let mut tripped = report_trips(&mut sink, &run_id, &job_watch.trips(), policy);
    if matches!(ended, Ok(Exit::TimedOut)) {
        let value = crate::runlog::limit_value(policy, LimitKind::Timeout);
        log(
            &mut sink,
            &run_id,
            Event::LimitExceeded {
                limit: LimitKind::Timeout.key().to_string(),
                value,
                detail: Some("cordon ended the job; exit status 124".into()),
            },
        );
        tripped = None;
    }
    if let Some(before) = &git_before {
        for refused in planted_git::after(&workspace, &git_roots, before) {
            log(&mut sink, &run_id, planted_git::report(refused));
        }
    }
    // As on Linux: the kill is said after the limits, and is the exit event's message.
    let kill = |sink: &mut Option<Sink>, what: &str| {
        let class = ViolationClass::Network.as_str();
        runlog::report_kill(sink, &run_id, class, what)
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let (status, ending, signal, message) = match (&ended, &killed_for) {
        // The job was terminated with KILLED_STATUS: reported as Linux reports its SIGKILL,
        // so a reader of the log need not tell the platforms apart.
        (Ok(Exit::Code(c)), Some(what)) if *c as i32 == runlog::KILLED_STATUS => (
            runlog::KILLED_STATUS,
            Ending::Signaled,
            Some(runlog::KILL_SIGNAL),
            Some(kill(&mut sink, what)),
        ),
        // The command had exited by itself as the kill was asked for.
        (Ok(Exit::Code(c)), Some(what)) => {
            (*c as i32, Ending::Exited, None, Some(kill(&mut sink, what)))
        }
        (Ok(Exit::Code(c)), None) => (*c as i32, Ending::Exited, None, tripped),
        (Ok(Exit::TimedOut), _) => (
            124,
            Ending::Exited,
            None,
            Some("the timeout killed the job".into()),
        ),
        (Err(f), _) => (f.code, ending_of(f), None, Some(f.message.clone())),
    };
    log(
        &mut sink,
        &run_id,
        Event::CommandExit {
            status,
            ending,
            signal,
            duration_ms,
            message,
        },
    );
    ended.map(|_| status)
}

/// Says each limit the job hit (stderr and a `limit_exceeded` event, as on Linux); the first
/// one's line, for the exit event.
fn report_trips(
    sink: &mut Option<Sink>,
    run_id: &str,
    trips: &[JobTrip],
    policy: &Policy,
) -> Option<String> {
    let value = |k: LimitKind| crate::runlog::limit_value(policy, k);
    let mut first = None;
    for trip in trips {
        let (kind, line) = match trip {
            JobTrip::Memory => (
                LimitKind::Memory,
                format!(
                    "memory limit: an allocation that would have taken the job past {} was refused",
                    value(LimitKind::Memory)
                ),
            ),
            JobTrip::Processes => (
                LimitKind::Pids,
                format!(
                    "pids limit: a process start past {} active processes was refused",
                    value(LimitKind::Pids)
                ),
            ),
        };
        eprintln!("cordon: {line}");
        log(
            sink,
            run_id,
            Event::LimitExceeded {
                limit: kind.key().to_string(),
                value: value(kind),
                detail: Some("reported by the job object".into()),
            },
        );
        first.get_or_insert(line);
    }
    first
}

/// The plan for `policy` in `workspace`, applied: elevated when `cordon setup --elevated` is
/// complete (with the sandbox group's SID, for cordon.exe's grant), else unelevated; and
/// what applying it wrote. A policy it cannot enforce is refused (125) naming every area
/// and why.
fn plan_for(
    policy: &Policy,
    workspace: &Path,
    state: &Path,
    tool_dirs: Vec<WinPath>,
) -> Result<(WindowsPlan, Option<Sid>, Applied), Failure> {
    let ctx = ResolveContext {
        workspace: workspace.to_path_buf(),
        homes: dirs::homes().to_vec(),
        always_deny: vec![state.to_path_buf()],
    };
    let win = |p: &Path| WinPath::from_path(p).map_err(|e| Failure::setup(e.to_string()));
    let cordon_dir = state.parent().unwrap_or(state);
    let state_win = win(state)?;
    let homes: Vec<WinPath> = ctx
        .homes
        .iter()
        .filter_map(|h| WinPath::from_path(h).ok())
        .collect();
    // The audit's findings, walked again only when stale; the paths this workspace's SID was
    // put on last time, so what the policy dropped is revoked.
    let findings = state_win.child("everyone-writable.txt");
    let ws = win(workspace)?;
    let managed = state_win.child(&format!("managed-{}.txt", Sid::sandbox_write(&ws)));
    let installed = exec::setup::installed(&SetupInput {
        state_dir: state_win.clone(),
        proxy_ports: ELEVATED_PROXY_PORTS.to_vec(),
        installed: None,
    });
    let (mode, setup_missing) = mode::choose(policy.network, installed)
        .map_err(|e| Failure::setup(format!("{e}; the command did not run")))?;
    let group = match &mode {
        Mode::Elevated(a) => Some(a.group.clone()),
        Mode::Unelevated => None,
    };
    let input = PlanInput {
        policy,
        ctx: &ctx,
        mode,
        temp_base: win(&cordon_dir.join("tmp"))?,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        proxy_ports: ELEVATED_PROXY_PORTS.to_vec(),
        everyone_writable: audit::cached_findings(
            &findings,
            &cordon_windows::plan::audit_bounds(&homes),
        ),
        previously_managed: audit::load_paths(&managed),
        tool_dirs,
        // From the token: `%USERPROFILE%` is whoever started cordon's to set.
        profile: token::profile_dir()
            .ok()
            .and_then(|p| WinPath::from_path(&p).ok()),
    };
    let plan = cordon_windows::plan(&input, &RealHost).map_err(|e| {
        let f = Failure::setup(format!("{e}; the command did not run"));
        match group {
            None => f.with_hint(mode::unelevated_hint(setup_missing.as_deref())),
            Some(_) => f.with_hint(mode::elevated_hint().to_string()),
        }
    })?;
    if plan.writes() > 0 {
        // A new inheritable grant passes down through every file below it: seconds on a
        // large toolchain folder, once.
        eprintln!(
            "cordon: writing {} ACL change(s), once; a new grant passes down through the files below it",
            plan.writes()
        );
    }
    let applied = exec::apply(&plan)
        .map_err(|e| Failure::setup(format!("applying the plan: {}", chain(&e))))?;
    audit::save_paths(&managed, &plan.managed())
        .map_err(|e| Failure::setup(format!("{managed}: {e}")))?;
    record_tool_roots(&state_win, &plan);
    Ok((plan, group, applied))
}

/// Most program folders the machine's list keeps for `cordon setup --elevated --remove`.
const MAX_RECORDED_TOOL_ROOTS: usize = 256;

/// Adds the plan's program-folder grants to the machine's list (`managed-tools.txt`, which
/// `--remove` reads with every workspace's `managed-*.txt`): they are the sandbox group's,
/// no one workspace's, so no plan revokes them. Best effort: a folder left off the list
/// keeps an ACE for a group `--remove` deletes, which then names nobody.
fn record_tool_roots(state: &WinPath, plan: &WindowsPlan) {
    let roots = plan.tool_roots();
    if roots.is_empty() {
        return;
    }
    let file = state.child("managed-tools.txt");
    let mut known = audit::load_paths(&file);
    let before = known.len();
    for r in roots {
        if !known.contains(&r) && known.len() < MAX_RECORDED_TOOL_ROOTS {
            known.push(r);
        }
    }
    if known.len() != before {
        if let Err(e) = audit::save_paths(&file, &known) {
            eprintln!("cordon: warning: {file}: {e}; `cordon setup --elevated --remove` may not find the program-folder grants just written");
        }
    }
}

/// The `acl_applied` event of what `exec::apply` wrote, removed and found in place.
fn acl_event(applied: &Applied) -> Event {
    let entry = |path: &WinPath, kind: AceKind, sid: &Sid, mask: u32, inherit: Inherit| AclEntry {
        path: path.to_string().into(),
        ace: kind.key().into(),
        sid: sid.to_string(),
        mask,
        inherit: inherit.key().into(),
        reason: None,
    };
    Event::AclApplied {
        written: applied
            .written
            .iter()
            .map(|e| AclEntry {
                reason: Some(e.reason.key().into()),
                ..entry(&e.path, e.kind, &e.sid, e.mask, e.inherit)
            })
            .collect(),
        revoked: applied
            .revoked
            .iter()
            .map(|r| {
                let inherit = Inherit::from_flags(r.ace.flags);
                entry(&r.path, r.ace.kind, &r.sid, r.ace.mask, inherit)
            })
            .collect(),
        skipped: applied.skipped,
    }
}

/// The folders the command may run programs from, for the plan's grants to the sandbox
/// account: PATH's entries (the command's PATH is this one) and rustup's and cargo's homes
/// when they are set. Not the program's own folder: any file named as the program would
/// open its folder. All of it is the caller's to choose; `plan::tools` bounds what it opens.
fn tool_dirs() -> Vec<WinPath> {
    let path = std::env::var("PATH").unwrap_or_default();
    let homes = ["RUSTUP_HOME", "CARGO_HOME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok());
    cmdline::path_dirs(&path)
        .map(str::to_string)
        .chain(homes)
        .filter_map(|d| WinPath::parse(&d).ok())
        .collect()
}

/// The file `program` names as Windows would find it, by its long name; `None` when it is
/// not there (`cordon rules check`).
pub fn long_name(program: &str) -> Option<String> {
    find_program(program).ok().map(|found| long_name_of(&found))
}

/// A found program's long name (a short `GIT~1` and links resolved), else as found.
fn long_name_of(found: &str) -> String {
    std::fs::canonicalize(found)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| found.to_string())
}

/// `program` as CreateProcess would find it (PATH, PATHEXT); 127 when it is not there.
fn find_program(program: &str) -> Result<String, Failure> {
    let path = std::env::var("PATH").unwrap_or_default();
    let pathext = std::env::var("PATHEXT").unwrap_or_else(|_| ".COM;.EXE".into());
    let exists = |p: &str| Path::new(p).is_file();
    cmdline::search_path(program, &path, &pathext, exists).ok_or(Failure {
        code: 127,
        message: format!("{program}: command not found"),
        hint: None,
    })
}

/// Runs the command (its program already found) in the plan's job with a per-run TEMP.
fn execute(
    plan: &WindowsPlan,
    group: Option<&Sid>,
    state: &Path,
    policy: &Policy,
    argv: Vec<String>,
    mut env: Vec<(String, String)>,
    job_watch: &JobWatch,
) -> Result<Exit, Failure> {
    let run_temp = plan.temp.child(&format!("run-{}", std::process::id()));
    std::fs::create_dir_all(run_temp.to_api())
        .map_err(|e| Failure::setup(format!("{run_temp}: {e}")))?;
    env.retain(|(k, _)| !k.eq_ignore_ascii_case("TEMP") && !k.eq_ignore_ascii_case("TMP"));
    env.push(("TEMP".into(), run_temp.to_string()));
    env.push(("TMP".into(), run_temp.to_string()));
    let cwd = plan.workspace.to_string();
    let timeout = policy.limits.timeout();
    let exit = match (plan.account, group) {
        (Some(account), Some(group)) => {
            let command = Command {
                argv: &argv,
                env: &env,
                timeout,
                job_watch,
            };
            as_account(plan, account, group, state, &command)
        }
        _ => exec::run(plan, &argv, &env, &cwd, timeout, Some(job_watch))
            .map_err(|e| failure(&argv[0], &e)),
    };
    let _ = std::fs::remove_dir_all(run_temp.to_api());
    exit
}

/// Elevated: the command started by cordon's broker as `account` (started here, with one
/// secondary logon without a profile, when none serves this developer's logon session; see
/// docs/windows.md, "The broker"). Never anything weaker: a broker that cannot be started,
/// reached or trusted is 125.
fn as_account(
    plan: &WindowsPlan,
    account: &str,
    group: &Sid,
    state: &Path,
    command: &Command<'_>,
) -> Result<Exit, Failure> {
    let Command {
        argv,
        env,
        timeout,
        job_watch,
    } = *command;
    let exe =
        std::env::current_exe().map_err(|e| Failure::setup(format!("finding cordon.exe: {e}")))?;
    let exe_win = WinPath::from_path(&exe).map_err(|e| Failure::setup(e.to_string()))?;
    account::grant_program(&exe_win, group).map_err(|e| {
        Failure::setup(format!(
            "letting {account} run {exe_win}: {e}; the command did not run"
        ))
    })?;
    let state_win = WinPath::from_path(state).map_err(|e| Failure::setup(e.to_string()))?;
    let (developer, session) = developer_session()?;
    // One DPAPI decrypt per run; the password is used only when a broker has to be started.
    let password = exec::setup::read_password(&state_win, account).map_err(|e| {
        Failure::setup(format!(
            "the stored password of {account}: {e}; {SETUP_NEEDED}"
        ))
    })?;
    let exe = exe.to_string_lossy();
    let args = ["__broker".to_string()];
    broker::run(
        plan,
        &Launch::Logon {
            account,
            password: &password,
        },
        &Copy {
            exe: &exe,
            args: &args,
        },
        &Place {
            state_dir: &state_win,
            developer: &developer,
            session: &session,
            version: cordon_windows::broker::VERSION,
            idle: cordon_windows::broker::IDLE_EXIT,
        },
        argv,
        env,
        &plan.workspace.to_string(),
        timeout,
        Some(job_watch),
    )
    .map(|served| served.exit)
    .map_err(|e| failure(&argv[0], &e))
}

/// What the broker is asked to run, and where the run's job is shown once it exists.
struct Command<'a> {
    argv: &'a [String],
    env: &'a [(String, String)],
    timeout: Option<std::time::Duration>,
    job_watch: &'a JobWatch,
}

/// The developer's SID and logon session (its logon SID), which name the broker's pipe.
fn developer_session() -> Result<(Sid, String), Failure> {
    let reading = |e: std::io::Error| Failure::setup(format!("reading cordon's own token: {e}"));
    let own = token::process_token().map_err(reading)?;
    let developer = token::user_sid(&own).map_err(reading)?;
    let session = token::logon_sid(&own)
        .map_err(reading)?
        .map_or_else(|| "no-logon-sid".to_string(), |s| s.to_string());
    Ok((developer, session))
}

/// The exit status for a failure to run: cordon's own (125) when it could not set up the
/// sandbox or reach the account, the copy's status when it refused, else 126.
fn failure(program: &str, e: &ExecError) -> Failure {
    match e {
        ExecError::Logon { .. } | ExecError::Handoff(_) => Failure::setup(format!(
            "{}; the command did not run (cordon never runs it any weaker way); {SETUP_NEEDED} if the account or its password changed",
            chain(e)
        )),
        ExecError::Refused { code, message } => Failure {
            code: *code,
            message: match code {
                125 => format!("{message}; the command did not run"),
                _ => message.clone(),
            },
            hint: None,
        },
        _ => Failure {
            code: 126,
            message: format!("{program}: {}", chain(e)),
            hint: None,
        },
    }
}

/// The command's environment, the names removed, and the values of those removed as secrets
/// (masked wherever a request shows them).
fn scrubbed_env(policy: &Policy) -> (Vec<(String, String)>, Vec<String>, Vec<String>) {
    let (kept, removed) = cordon_policy::scrub_env(
        std::env::vars(),
        &policy.env_deny,
        &policy.env_keep,
        String::clone,
    );
    let secrets = crate::approval::removed_secrets(&removed);
    (kept, removed.into_iter().map(|(k, _)| k).collect(), secrets)
}

/// Says on every run which guarantees the weaker mode the user allowed leaves out.
fn announce_weaker(guarantees: &[Guarantee]) {
    let missing: Vec<&str> = guarantees
        .iter()
        .filter(|g| matches!(g.status, Status::NotEnforced(_)))
        .map(|g| g.area)
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "cordon: running in the weaker mode you allowed: writes are confined, but {} are NOT isolated (`cordon setup --elevated` gives them)",
            missing.join(", ")
        );
    }
}

/// One of the plan's guarantees as the audit log words it (the same fields as on Linux).
fn status_of(g: &Guarantee) -> GuaranteeStatus {
    let (state, by) = match &g.status {
        Status::Enforced(by) => ("enforced", by.to_string()),
        Status::NotEnforced(why) => ("not_enforced", why.clone()),
        Status::NoEquivalent(what) => ("not_enforced", format!("no Windows equivalent: {what}")),
    };
    GuaranteeStatus {
        area: g.area.into(),
        state: state.into(),
        by,
    }
}

/// An error with its sources, for one line on stderr.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use cordon_windows::plan::acl::{Ace, AclEdit, Reason, Revoke, DENY_WRITE, WRITE_GRANT};

    use super::*;

    #[test]
    fn the_acl_event_names_each_ace_written_and_revoked() {
        let ws = WinPath::parse(r"C:\ws").unwrap();
        let hooks = WinPath::parse(r"C:\ws\.git\hooks").unwrap();
        let sid = Sid::sandbox_write(&ws);
        let applied = Applied {
            written: vec![AclEdit {
                path: hooks.clone(),
                kind: AceKind::Deny,
                sid: sid.clone(),
                mask: DENY_WRITE,
                inherit: Inherit::TREE,
                reason: Reason::Protected,
            }],
            revoked: vec![Revoke {
                path: ws.clone(),
                sid: sid.clone(),
                ace: Ace {
                    kind: AceKind::Allow,
                    sid: sid.clone(),
                    mask: WRITE_GRANT,
                    flags: Inherit::TREE.flags(),
                },
            }],
            skipped: 4,
        };
        let Event::AclApplied {
            written,
            revoked,
            skipped,
        } = acl_event(&applied)
        else {
            panic!("not an acl_applied event");
        };
        assert_eq!(skipped, 4);
        assert_eq!(
            written,
            [AclEntry {
                path: r"C:\ws\.git\hooks".into(),
                ace: "deny".into(),
                sid: sid.to_string(),
                mask: DENY_WRITE,
                inherit: "tree".into(),
                reason: Some("protected".into()),
            }]
        );
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked[0].ace, "allow");
        assert_eq!(revoked[0].inherit, "tree");
        assert_eq!(revoked[0].reason, None);
        assert_eq!(revoked[0].path, std::path::PathBuf::from(r"C:\ws"));
    }
}
