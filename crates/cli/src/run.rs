//! `cordon run`: load the policy, prepare the sandbox, run, audit, and pick the exit status.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cordon_audit::{Ending, Event, Sink};
use cordon_linux::{Mechanism, Mode, NetMode, PrepareError, RunError, Spec, Stage, Trip};
use cordon_policy::{scrub_env, LimitKind, Network, Policy, ResolveContext, ViolationClass};

use crate::approval;
use crate::args::RunArgs;
use crate::commands;
use crate::dirs;
use crate::egress;
use crate::failure::{Failure, EXIT_SETUP};
use crate::guarantees;
use crate::layers;
use crate::planted_git;
use crate::recorder;
use crate::runlog::{log, open_audit, report_kill, run_id};
use crate::transaction;
use cordon_proxy::OnRefusal;

/// Runs the command; returns cordon's exit status.
pub fn run(args: RunArgs) -> Result<i32, Failure> {
    let started = Instant::now();
    let cwd = dirs::current_dir()?;
    let workspace = dirs::workspace(args.workspace.as_deref(), &cwd)?;
    refuse_broad_workspace(&workspace)?;
    let loaded = layers::load(&args, &workspace, &cwd)?;
    let run_id = run_id();
    let mut audit = open_audit(args.audit.as_deref())?;
    if let Some(event) = loaded.announce_ignored(&workspace) {
        log(&mut audit, &run_id, event);
    }
    let policy = &loaded.policy;
    let net = match policy.network {
        Network::Off => NetMode::Off,
        Network::Full => NetMode::Full,
        Network::Allow => NetMode::Proxied {
            port: egress::PROXY_PORT,
        },
    };
    let (mut env, removed, secrets) = scrubbed_env(policy);
    let argv: Vec<String> = args
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let rules_ctx = approval::Context {
        run_id: run_id.clone(),
        workspace: workspace.clone(),
        cwd: cwd.clone(),
        secrets,
        timeout: args.approval_timeout.unwrap_or(approval::PROMPT_TIMEOUT),
    };
    let (judged, _) = approval::judge_command_line(policy, &argv, &rules_ctx, None, None, None);
    if let Err(refused) = judged {
        return Err(crate::runlog::log_failure(
            &mut audit, &run_id, started, refused,
        ));
    }
    if matches!(net, NetMode::Proxied { .. }) {
        egress::point_at_proxy(&mut env);
    }
    // The request door: `cordon request` inside finds it through this variable.
    env.push((
        crate::request::DOOR_VAR.into(),
        cordon_linux::REQUEST_DOOR.into(),
    ));
    let mut spec = build_spec(
        &args.command,
        args.policy.as_deref(),
        policy,
        &workspace,
        &cwd,
        env,
        net,
    )?;
    // An audit log the user named inside a writable root is cordon's too: the command must
    // not rewrite the record of what it did.
    if let Some(log) = args
        .audit
        .as_deref()
        .and_then(|p| std::fs::canonicalize(p).ok())
    {
        spec.own_files.push(log);
    }
    spec.supervise_exec = commands::supervised(&policy.commands);
    spec.request_door = dirs::state_dir().is_some();
    let transaction = match &args.transaction {
        Some(name) => {
            let name = Some(name.as_str()).filter(|n| !n.is_empty());
            let mut events = |e| log(&mut audit, &run_id, e);
            let (running, overlay) =
                transaction::begin(name, &workspace, &spec.protected, args.apply, &mut events)?;
            spec.overlay = Some(overlay);
            Some(running)
        }
        None => None,
    };
    let mut plan = cordon_linux::prepare(spec).map_err(prepare_failure)?;
    for note in &plan.notes {
        eprintln!("cordon: note: {note}");
    }
    if let Mechanism::Rlimits(why) = plan.limits.mechanism() {
        announce_rlimits(why, policy);
    }
    let abi = cordon_linux::probe::landlock_abi();
    macro_rules! launch {
        ($plan:expr) => {
            Launch {
                run_id: &run_id,
                plan: $plan,
                argv: &argv,
                policy,
                abi,
                removed: &removed,
                rules: &rules_ctx,
                diff: transaction.as_ref().map(transaction::Running::diff_source),
            }
        };
    }
    // Nested repositories the indexes record, before the command (an overlaid workspace's
    // writes reach it only when applied: at exit with `--apply auto`, or by `cordon tx
    // apply`, which checks again).
    let git_before = planted_git::before(&plan.workspace, &plan.writable);
    let mut result = start(&mut audit, &launch!(&plan));
    // The allow-list has no Landlock-only form (it needs a network namespace): no fallback.
    let proxied = matches!(net, NetMode::Proxied { .. });
    if policy.allow_weaker && !proxied && matches!(&result, Err(e) if userns_unusable(e)) {
        eprintln!(
            "cordon: user namespaces are unavailable; running in the Landlock-only mode you allowed: \
writes are confined and the deny-read set is unreadable (by Landlock alone: names in denied folders can be listed), but protected paths, processes and UDP/Unix sockets are NOT isolated"
        );
        plan.spec.mode = Mode::LandlockOnly;
        result = start(&mut audit, &launch!(&plan));
    }
    // The sandbox is gone: placeholders no other run relies on can go.
    plan.placeholders.release();
    // A transaction that could not be recorded is cordon's failure (125), though its
    // writes are safe in the layer.
    let mut tx_failed = false;
    if let (Some(tx), Ok(_)) = (transaction, &result) {
        let mut events = |e| log(&mut audit, &run_id, e);
        tx_failed = tx.end(&mut events) != 0;
    }
    if let Some(before) = &git_before {
        for refused in planted_git::after(&plan.workspace, &plan.writable, before) {
            log(&mut audit, &run_id, planted_git::report(refused));
        }
    }
    if let Ok(o) = &result {
        check_lost_covers(&mut audit, &run_id, &o.lost_covers);
    }
    let duration_ms = started.elapsed().as_millis() as u64;
    let (status, ending, signal, message) = match result {
        Ok(o) => {
            let ending = if o.signal.is_some() {
                Ending::Signaled
            } else {
                Ending::Exited
            };
            let mut message = report_trips(&mut audit, &run_id, &o.trips, policy);
            let mut lost_cover = false;
            if let Some(kill) = &o.killed_for {
                lost_cover = kill.class == cordon_linux::LOST_COVER;
                message = Some(match lost_cover {
                    true => report_lost_cover(&mut audit, &run_id, &kill.what),
                    false => report_kill(&mut audit, &run_id, kill.class, &kill.what),
                });
            }
            // A protection cordon could not keep ended the run: its own failure.
            let status = if tx_failed || lost_cover {
                EXIT_SETUP
            } else {
                o.exit_code
            };
            (status, ending, o.signal, message)
        }
        Err(e) => {
            let mut failure = failure_for(&e);
            if args.transaction.is_some()
                && matches!(
                    &e,
                    RunError::Setup {
                        stage: Stage::MountSources,
                        ..
                    }
                )
            {
                failure = failure.with_hint(OVERLAY_HINT);
            }
            let ending = if failure.code == EXIT_SETUP {
                Ending::SetupFailed
            } else {
                Ending::ExecFailed
            };
            log(
                &mut audit,
                &run_id,
                Event::CommandExit {
                    status: failure.code,
                    ending,
                    signal: None,
                    duration_ms,
                    message: Some(failure.message.clone()),
                },
            );
            return Err(failure);
        }
    };
    log(
        &mut audit,
        &run_id,
        Event::CommandExit {
            status,
            ending,
            signal,
            duration_ms,
            message,
        },
    );
    Ok(status)
}

/// Everything one attempt at starting the sandbox needs.
struct Launch<'a> {
    run_id: &'a str,
    plan: &'a cordon_linux::Plan,
    argv: &'a [String],
    policy: &'a Policy,
    abi: i32,
    removed: &'a [String],
    rules: &'a approval::Context,
    diff: Option<transaction::DiffSource>,
}

fn start(audit: &mut Option<Sink>, launch: &Launch<'_>) -> Result<cordon_linux::Outcome, RunError> {
    let Launch {
        run_id,
        plan,
        argv,
        policy,
        abi,
        removed,
        rules,
        ref diff,
    } = *launch;
    let backend = match plan.spec.mode {
        Mode::Namespaces => "linux-namespaces",
        Mode::LandlockOnly => "linux-landlock-only",
    };
    log(
        audit,
        run_id,
        Event::CommandStart {
            argv: argv.to_vec(),
            cwd: plan.spec.cwd.clone(),
            workspace: plan.workspace.clone(),
            policy_digest: policy.digest(),
            backend: backend.into(),
            guarantees: {
                let mut table = guarantees::for_run(
                    plan.spec.mode,
                    plan.spec.net,
                    abi,
                    guarantees::limits_for_run(&policy.limits, plan.limits.mechanism()),
                );
                table.extend(guarantees::for_options(&plan.spec, policy));
                table
            },
            env_removed: removed.to_vec(),
        },
    );
    let mut sandbox = cordon_linux::spawn(plan)?;
    let kill_on_network = policy
        .terminate_on_violation
        .contains(&ViolationClass::Network);
    // Killing for a refusal: the client gets no answer to act on before the kill lands.
    let on_refusal = match kill_on_network {
        true => OnRefusal::Hold,
        false => OnRefusal::Answer,
    };
    let door = sandbox.take_request_door();
    // Names off the list wait for a human when the policy asks for it, and are let through
    // when an agent's request for them was allowed.
    let proxied = matches!(plan.spec.net, NetMode::Proxied { .. });
    let (ask_tx, ask_rx) = match policy.egress.ask_unlisted || (proxied && door.is_some()) {
        true => {
            let (tx, rx) = std::sync::mpsc::channel();
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    // The command has not started yet: if the proxy cannot serve, it never does.
    let (proxy, decisions) = match sandbox.take_listener() {
        Some(listener) => egress::start(listener, &policy.egress, on_refusal, ask_tx)
            .map(|(p, d)| (Some(p), Some(d)))
            .map_err(|e| RunError::Setup {
                stage: Stage::ProxyListener,
                errno: e.raw_os_error().unwrap_or(0),
                detail: format!("cordon's proxy could not start: {e}"),
            })?,
        None => (None, None),
    };
    // With command rules every exec inside, and with `unlisted = "ask"` every name off the
    // list, waits for a verdict from here.
    let sources = commands::Sources {
        execs: sandbox.take_exec_requests(),
        asks: ask_rx,
        door,
        terminal: sandbox.user_terminal(),
        diff: diff.clone(),
    };
    let (judge, rule_events) = match sources.is_empty() {
        true => (None, None),
        false => {
            let (judge, events) =
                commands::supervise(policy, sources, rules).map_err(|f| RunError::Setup {
                    stage: Stage::Seccomp,
                    errno: 0,
                    detail: f.message,
                })?;
            (Some(judge), Some(events))
        }
    };
    let sources = recorder::Sources {
        decisions,
        violations: sandbox.take_violations(),
        events: rule_events,
    };
    let network_kill = kill_on_network.then(|| sandbox.tripwire());
    let recorder =
        recorder::start(sources, audit.take(), run_id, network_kill).map_err(|(e, sink)| {
            *audit = sink;
            RunError::Setup {
                stage: Stage::Seccomp,
                errno: e.raw_os_error().unwrap_or(0),
                detail: format!("cordon's audit recorder could not start: {e}"),
            }
        })?;
    let mut outcome = sandbox.wait();
    if let Some(p) = proxy {
        p.stop();
    }
    if let Some(j) = judge {
        // The command line's own exec refused by a rule is policy, not a permission fault.
        if let Err(RunError::Exec { errno, detail }) = &mut outcome {
            if *errno == libc::EACCES && j.refused_any() {
                *detail = "the command was refused by the sandbox's command rules (reason above); this is policy, not a fault to retry around".into();
            }
        }
        j.finish();
    }
    *audit = recorder.finish();
    outcome
}

/// A failure before anything ran that means this machine cannot give us a user namespace.
fn userns_unusable(e: &RunError) -> bool {
    matches!(e, RunError::Setup { stage: Stage::Clone | Stage::UidMap | Stage::MountPropagation, errno, .. }
        if [libc::EPERM, libc::EACCES, libc::ENOSPC, libc::EINVAL].contains(errno))
}

const OVERLAY_HINT: &str = "--transaction mounts overlayfs inside the sandbox's user namespace: that needs Linux 5.11+ (`userxattr`) and cordon's state folder on a filesystem with user extended attributes (ext4, xfs, btrfs; tmpfs from Linux 6.6), not on overlayfs itself; `cordon doctor` shows whether overlayfs works in a user namespace here";

fn failure_for(e: &RunError) -> Failure {
    match e {
        RunError::Exec { errno, detail } => Failure {
            code: if *errno == libc::ENOENT { 127 } else { 126 },
            message: detail.clone(),
            hint: None,
        },
        RunError::Setup { .. } => {
            let f = Failure::setup(format!(
                "could not set up the sandbox ({e}); the command did not run"
            ));
            match e.hint() {
                Some(h) => f.with_hint(h),
                None => f,
            }
        }
        _ => Failure::setup(e.to_string()),
    }
}

fn refuse_broad_workspace(workspace: &Path) -> Result<(), Failure> {
    if dirs::homes()
        .iter()
        .any(|h| h.canonicalize().is_ok_and(|h| h == workspace))
    {
        return Err(Failure::setup(format!(
            "workspace {} is your home directory: the command could rewrite your shell start-up files and tool configuration",
            workspace.display()
        ))
        .with_hint("pass -w PROJECT_DIR, the folder the agent works in"));
    }
    Ok(())
}

fn prepare_failure(e: PrepareError) -> Failure {
    match &e {
        PrepareError::Limits(l) => {
            let f = Failure::setup(format!("{l}; the command did not run"));
            match l.hint() {
                Some(h) => f.with_hint(h),
                None => f,
            }
        }
        _ => Failure::setup(e.to_string()),
    }
}

/// Says, before the command runs, what the rlimit stand-ins do not cover.
fn announce_rlimits(why: &str, policy: &Policy) {
    let l = &policy.limits;
    let mut what = Vec::new();
    if let Some(m) = l.get(LimitKind::Memory) {
        what.push(format!(
            "memory {} is RLIMIT_AS on each process: it is per process, not per tree (every process may use that much address space)",
            LimitKind::Memory.format(m)
        ));
    }
    if let Some(p) = l.get(LimitKind::Pids) {
        what.push(format!(
            "pids {p} is RLIMIT_NPROC: it counts your user's processes inside the sandbox (in the Landlock-only mode, all of your processes)"
        ));
    }
    eprintln!(
        "cordon: no cgroup can be made here ({why}); as you allowed (--allow-weaker), weaker limits stand in: {}",
        what.join("; ")
    );
}

/// Prints and logs each limit that tripped; returns the exit event's message.
fn report_trips(
    audit: &mut Option<Sink>,
    run_id: &str,
    trips: &[Trip],
    policy: &Policy,
) -> Option<String> {
    let value = |k: LimitKind| crate::runlog::limit_value(policy, k);
    let mut first = None;
    for trip in trips {
        let (kind, line, detail) = match *trip {
            Trip::Timeout => (
                LimitKind::Timeout,
                format!(
                    "timeout: the command ran longer than {} and was killed",
                    value(LimitKind::Timeout)
                ),
                Some("cordon killed the sandbox; exit status 124".to_string()),
            ),
            Trip::Memory { kills, peak } => (
                LimitKind::Memory,
                format!(
                    "memory limit: the sandbox reached its limit of {} and the kernel killed {kills} process{}",
                    value(LimitKind::Memory),
                    if kills == 1 { "" } else { "es" }
                ),
                Some(match peak {
                    Some(p) => format!("oom_kill {kills}; peak {:.1} MiB", p as f64 / 1048576.0),
                    None => format!("oom_kill {kills}"),
                }),
            ),
            Trip::Pids { refused } => (
                LimitKind::Pids,
                format!(
                    "pids limit: the kernel refused {refused} new process{} at the limit of {}",
                    if refused == 1 { "" } else { "es" },
                    value(LimitKind::Pids)
                ),
                Some(format!("pids.events max {refused}")),
            ),
            Trip::FileSize => (
                LimitKind::FileSize,
                format!(
                    "file_size limit: a process was killed (SIGXFSZ) for writing past {}",
                    value(LimitKind::FileSize)
                ),
                Some("the command died of SIGXFSZ or exited 153 (128+SIGXFSZ)".to_string()),
            ),
        };
        eprintln!("cordon: {line}");
        log(
            audit,
            run_id,
            Event::LimitExceeded {
                limit: kind.key().to_string(),
                value: value(kind),
                detail,
            },
        );
        first.get_or_insert(line);
    }
    if first.is_some() {
        eprintln!("cordon: this limit is the sandbox's policy, not a fault to retry around; raise it only if the work really needs more");
    }
    first
}

/// The environment the command gets, the names removed, and the values of those removed as
/// secrets (masked wherever a human is shown the command's words or output; the rest of a
/// `GIT_CONFIG_*` set that went with a secret is not one).
fn scrubbed_env(policy: &Policy) -> (Vec<(OsString, OsString)>, Vec<String>, Vec<String>) {
    // Names are matched as text; the kept pairs keep their exact bytes (need not be UTF-8).
    let vars = env::vars_os().map(|(k, v)| (k.to_string_lossy().into_owned(), (k, v)));
    let text = |(_, v): &(OsString, OsString)| v.to_string_lossy().into_owned();
    let (kept, removed) = scrub_env(vars, &policy.env_deny, &policy.env_keep, text);
    let env = kept.into_iter().map(|(_, pair)| pair).collect();
    let secrets = approval::removed_secrets(&removed);
    (env, removed.into_iter().map(|(k, _)| k).collect(), secrets)
}

fn build_spec(
    command: &[OsString],
    policy_file: Option<&Path>,
    policy: &Policy,
    workspace: &Path,
    cwd: &Path,
    env: Vec<(OsString, OsString)>,
    net: NetMode,
) -> Result<Spec, Failure> {
    let mut paths = policy.resolve(&resolve_context(workspace));
    paths.deny_read.extend(agent_sockets());
    make_own_config_dir(&paths.writable, workspace)?;
    Ok(Spec {
        argv: command.to_vec(),
        env,
        cwd: cwd.to_path_buf(),
        workspace: workspace.to_path_buf(),
        writable: paths.writable,
        deny_read: paths.deny_read,
        protected: paths.protected,
        own_files: own_files(policy_file),
        net,
        mode: Mode::Namespaces,
        limits: cordon_linux::Limits {
            memory: policy.limits.get(LimitKind::Memory),
            cpu_millicores: policy.limits.get(LimitKind::Cpu),
            pids: policy.limits.get(LimitKind::Pids),
            timeout: policy.limits.timeout(),
            file_size: policy.limits.get(LimitKind::FileSize),
            open_files: policy.limits.get(LimitKind::OpenFiles),
            allow_rlimits: policy.allow_weaker,
        },
        kill_on_syscall_violation: policy
            .terminate_on_violation
            .contains(&ViolationClass::Syscall),
        overlay: None,
        supervise_exec: false,
        request_door: false,
    })
}

/// Creates cordon's config folder when a writable root would hold it but it does not exist
/// (`--allow-write ~` on a machine without `~/.config`): a folder that exists can be pinned
/// read-only; one that does not could be created inside, with a policy in it.
fn make_own_config_dir(writable: &[PathBuf], workspace: &Path) -> Result<(), Failure> {
    let Some(dir) = dirs::user_config().and_then(|f| f.parent().map(Path::to_path_buf)) else {
        return Ok(());
    };
    if dir.exists() {
        return Ok(());
    }
    // Through links, to where the folder would really be made (a dangling `~/.config` link
    // into a dotfiles checkout is created at its target).
    let real = follow_links(&dir);
    let roots: Vec<PathBuf> = writable
        .iter()
        .chain(std::iter::once(&workspace.to_path_buf()))
        .filter_map(|w| std::fs::canonicalize(w).ok())
        .collect();
    let mut existing = real.as_path();
    while !existing.exists() {
        match existing.parent() {
            Some(p) => existing = p,
            None => return Ok(()),
        }
    }
    let Ok(anchor) = std::fs::canonicalize(existing) else {
        return Ok(());
    };
    if !roots.iter().any(|r| anchor.starts_with(r)) {
        return Ok(());
    }
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&real)
        .map_err(|e| {
            Failure::setup(format!(
                "cordon's config folder {} (at {}) lies in a writable root and could not be made to protect it: {e}; the command did not run",
                dir.display(),
                real.display()
            ))
        })
}

/// `path` with every symbolic link on the way replaced by its target, dangling ones included
/// (at most 32 links: a loop stays where it is).
fn follow_links(path: &Path) -> PathBuf {
    let mut current = path.to_path_buf();
    for _ in 0..32 {
        let mut prefix = PathBuf::new();
        let mut replaced = None;
        for part in current.components() {
            prefix.push(part);
            if let Ok(target) = std::fs::read_link(&prefix) {
                let base = prefix.parent().map(Path::to_path_buf).unwrap_or_default();
                let rest = current.strip_prefix(&prefix).unwrap_or(Path::new(""));
                replaced = Some(base.join(target).join(rest));
                break;
            }
        }
        match replaced {
            Some(next) => current = next,
            None => return current,
        }
    }
    current
}

/// cordon's own configuration: the user layer's folder (so a missing `config.toml` cannot be
/// created either) and the `--policy` file. The backend protects each that a writable root
/// holds.
fn own_files(policy_file: Option<&Path>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    if let Some(file) = dirs::user_config() {
        // Canonical, as the writable roots are, and through links (a dotfiles checkout
        // holding the real folder or file is where the protection must be).
        if let Some(dir) = file.parent() {
            let real = std::fs::canonicalize(dir).ok().or_else(|| {
                let parent = std::fs::canonicalize(dir.parent()?).ok()?;
                Some(parent.join(dir.file_name()?))
            });
            out.extend(real);
        }
        if let Ok(real) = std::fs::canonicalize(&file) {
            if !out.iter().any(|d| real.starts_with(d)) {
                out.push(real);
            }
        }
    }
    if let Some(p) = policy_file.and_then(|p| std::fs::canonicalize(p).ok()) {
        out.push(p);
    }
    out
}

/// Says (stderr and audit log) that cordon ended the run because the host took a protected
/// path's cover away.
fn report_lost_cover(audit: &mut Option<Sink>, run_id: &str, what: &str) -> String {
    let message = format!(
        "ended the run: {what} (the kernel drops a read-only mount whose path is renamed over or removed on the host, as `git config`, `git remote add` or `git push -u` do to .git/config); run the command again"
    );
    eprintln!("cordon: {message}");
    log(
        audit,
        run_id,
        Event::SandboxKilled {
            class: cordon_linux::LOST_COVER.to_string(),
            reason: what.to_string(),
        },
    );
    message
}

/// After a run whose protected Git configuration the host replaced: what the command may
/// have written there before the run ended is refused (a program it names) or named.
fn check_lost_covers(audit: &mut Option<Sink>, run_id: &str, lost: &[cordon_linux::LostCover]) {
    for cover in lost {
        let Some(before) = &cover.before else {
            continue;
        };
        let (refused, changed) = planted_git::after_lost_cover(&cover.path, before);
        if let Some(refused) = refused {
            log(audit, run_id, planted_git::report(refused));
        } else if !changed.is_empty() {
            eprintln!(
                "cordon: warning: {} changed while it was unprotected; new or changed settings: {}. Check that each is yours (`git config --list --show-origin`).",
                cover.path.display(),
                changed.join(", ")
            );
        }
    }
}

/// The protected paths of `policy` in `workspace`, as absolute paths.
pub fn protected_paths(policy: &Policy, workspace: &Path) -> Vec<PathBuf> {
    policy.resolve(&resolve_context(workspace)).protected
}

/// What the policy's paths mean for `workspace`: the caller's homes, and cordon's state
/// folder always denied.
fn resolve_context(workspace: &Path) -> ResolveContext {
    ResolveContext {
        workspace: workspace.to_path_buf(),
        homes: dirs::homes().to_vec(),
        always_deny: dirs::state_dir().into_iter().collect(),
    }
}

/// Sockets the caller's environment names (ssh-agent, docker): hidden even when they live
/// outside /run and /tmp, which the sandbox replaces anyway.
fn agent_sockets() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = env::var_os("SSH_AUTH_SOCK").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(p));
    }
    if let Some(p) = env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
    {
        out.push(p);
    }
    out.retain(|p| p.is_absolute());
    out
}
