//! A stand-in for `cordon run` on Windows until the CLI is wired (docs/windows.md,
//! "Integration"): plans, applies and runs one command, so scripts/windows-smoke.ps1 can check
//! the backend on a real machine.
//!
//! `cordon-windows-run [-w DIR] [--allow-weaker] [--timeout SECSs] [--memory SIZE] -- CMD...`

#[cfg(windows)]
fn main() {
    // Windows exit statuses are 32 bits (a crash is 0xC0000005): relayed whole.
    let code = match windows_main::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cordon: {e}");
            125
        }
    };
    std::process::exit(code as i32)
}

#[cfg(windows)]
mod windows_main {
    use std::path::PathBuf;
    use std::time::Duration;

    use cordon_policy::{builtin, Layer, LayerSource, LimitKind, Policy, ResolveContext};
    use cordon_windows::exec::{self, audit, Exit, RealHost};
    use cordon_windows::{cmdline, plan, Mode, PlanInput, Sid, WinPath};

    pub fn run() -> Result<u32, String> {
        let mut args = std::env::args().skip(1);
        let mut workspace = std::env::current_dir().map_err(|e| e.to_string())?;
        let mut weaker = false;
        let mut timeout = None;
        let mut limits = cordon_policy::LimitLayer::default();
        let mut argv = Vec::new();
        while let Some(a) = args.next() {
            match a.as_str() {
                "-w" | "--workspace" => {
                    workspace = PathBuf::from(args.next().ok_or("-w needs a folder")?)
                }
                "--allow-weaker" => weaker = true,
                "--timeout" => {
                    // Seconds, with or without the `s` the CLI's durations carry.
                    let v = args.next().ok_or("--timeout needs seconds")?;
                    let s: u64 = v
                        .trim_end_matches('s')
                        .parse()
                        .map_err(|_| format!("--timeout {v}: not seconds"))?;
                    timeout = Some(Duration::from_secs(s));
                }
                "--memory" => {
                    let v = args.next().ok_or("--memory needs a size")?;
                    limits.set(LimitKind::Memory, Some(LimitKind::Memory.parse(&v)?));
                }
                "--" => {
                    argv.extend(args.by_ref());
                }
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        if argv.is_empty() {
            return Err("no command (after --)".into());
        }
        let mut layer = Layer::empty(LayerSource::Builtin);
        layer.allow_weaker = Some(weaker);
        layer.limits = limits;
        let policy = Policy::from_layers(&[builtin(), layer]);
        let home = std::env::var_os("USERPROFILE")
            .map(PathBuf::from)
            .ok_or("no USERPROFILE")?;
        let local = std::env::var("LOCALAPPDATA").map_err(|_| "no LOCALAPPDATA")?;
        let ctx = ResolveContext {
            workspace: std::fs::canonicalize(&workspace)
                .map_err(|e| format!("{}: {e}", workspace.display()))?,
            homes: vec![home],
            always_deny: vec![PathBuf::from(format!(r"{local}\cordon\state"))],
        };
        let temp_base =
            WinPath::parse(&format!(r"{local}\cordon\tmp")).map_err(|e| e.to_string())?;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let state = WinPath::parse(&format!(r"{local}\cordon\state")).map_err(|e| e.to_string())?;
        // The audit's findings, walked again only when stale; the paths this workspace's SID
        // was put on last time, so what the policy dropped is revoked.
        let findings_file = state.child("everyone-writable.txt");
        let homes: Vec<WinPath> = ctx
            .homes
            .iter()
            .filter_map(|h| WinPath::from_path(h).ok())
            .collect();
        let probe_bounds = plan::audit_bounds(&homes);
        let everyone_writable = audit::cached_findings(&findings_file, &probe_bounds);
        let ws = WinPath::from_path(&ctx.workspace).map_err(|e| e.to_string())?;
        let managed_file = state.child(&format!("managed-{}.txt", Sid::sandbox_write(&ws)));
        let input = PlanInput {
            policy: &policy,
            ctx: &ctx,
            mode: Mode::Unelevated,
            temp_base,
            cpus,
            proxy_ports: Vec::new(),
            everyone_writable,
            previously_managed: audit::load_paths(&managed_file),
            tool_dirs: Vec::new(),
            profile: None,
        };
        let plan = plan(&input, &RealHost).map_err(|e| e.to_string())?;
        for note in &plan.notes {
            eprintln!("cordon: {note}");
        }
        exec::apply(&plan).map_err(|e| {
            format!(
                "{e}: {}",
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            )
        })?;
        audit::save_paths(&managed_file, &plan.managed()).map_err(|e| e.to_string())?;
        let path = std::env::var("PATH").unwrap_or_default();
        let pathext = std::env::var("PATHEXT").unwrap_or_else(|_| ".COM;.EXE".into());
        let exists = |p: &str| std::path::Path::new(p).is_file();
        let Some(program) = cmdline::search_path(&argv[0], &path, &pathext, exists) else {
            eprintln!("cordon: {}: command not found", argv[0]);
            return Ok(127);
        };
        argv[0] = program;
        let run_temp = plan.temp.child(&format!("run-{}", std::process::id()));
        std::fs::create_dir_all(run_temp.to_api()).map_err(|e| e.to_string())?;
        let (mut env, _removed) = cordon_policy::scrub_env(
            std::env::vars(),
            &policy.env_deny,
            &policy.env_keep,
            String::clone,
        );
        env.retain(|(k, _)| !k.eq_ignore_ascii_case("TEMP") && !k.eq_ignore_ascii_case("TMP"));
        env.push(("TEMP".into(), run_temp.to_string()));
        env.push(("TMP".into(), run_temp.to_string()));
        let cwd = plan.workspace.to_string();
        let exit = exec::run(&plan, &argv, &env, &cwd, timeout, None);
        let _ = std::fs::remove_dir_all(run_temp.to_api());
        match exit.map_err(|e| {
            format!(
                "{e}: {}",
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            )
        })? {
            Exit::TimedOut => Ok(124),
            Exit::Code(c) => Ok(c),
        }
    }
}

#[cfg(not(windows))]
fn main() -> std::process::ExitCode {
    eprintln!("cordon: cordon-windows-run runs on Windows only");
    std::process::ExitCode::from(125)
}
