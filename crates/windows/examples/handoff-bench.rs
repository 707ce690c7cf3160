//! Times one command through each path an elevated run can take, side by side in one
//! process: the copy per command (`exec::account::run_elevated`), the long-lived broker
//! (`exec::broker::run`, its first start reported apart) and, for reference, the unelevated
//! `exec::run`. Copy and broker are started as the same user (`Launch::SameUser`), so the
//! secondary logon a real elevated run pays is not in these numbers; under Wine they are
//! Wine's, not Windows'.
//!
//! `handoff-bench [N]` (default 20 runs of `cmd /c exit 0` per path); `handoff-bench
//! __as-account` and `handoff-bench __broker` are its own copy and broker.

#[cfg(windows)]
fn main() {
    let mut args = std::env::args().skip(1);
    let code = match args.next().as_deref() {
        Some("__as-account") => cordon_windows::exec::account::serve(),
        Some("__broker") => cordon_windows::exec::broker::serve(cordon_windows::broker::VERSION),
        n => match bench::run(n.and_then(|n| n.parse().ok()).unwrap_or(20)) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("handoff-bench: {e}");
                125
            }
        },
    };
    std::process::exit(code)
}

#[cfg(windows)]
mod bench {
    use std::time::{Duration, Instant};

    use cordon_policy::{builtin, Layer, LayerSource, Policy, ResolveContext};
    use cordon_windows::exec::account::{run_elevated, Copy, Launch};
    use cordon_windows::exec::broker::{self, Place};
    use cordon_windows::exec::{self, token, Exit, RealHost};
    use cordon_windows::{plan, Mode, PlanInput, WinPath};

    fn stats(name: &str, mut ms: Vec<f64>) {
        ms.sort_by(|a, b| a.total_cmp(b));
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        println!(
            "{name:<34} n={:<3} mean {mean:7.1} ms  median {:7.1} ms  min {:7.1} ms  max {:7.1} ms",
            ms.len(),
            ms[ms.len() / 2],
            ms[0],
            ms[ms.len() - 1]
        );
    }

    fn time(f: impl FnOnce() -> Result<Exit, String>) -> Result<f64, String> {
        let t0 = Instant::now();
        match f()? {
            Exit::Code(0) => Ok(t0.elapsed().as_secs_f64() * 1000.0),
            other => Err(format!("the command ended {other:?}")),
        }
    }

    pub fn run(n: usize) -> Result<(), String> {
        let root =
            std::env::temp_dir().join(format!("cordon-handoff-bench-{}", std::process::id()));
        let ws = root.join("ws");
        std::fs::create_dir_all(&ws).map_err(|e| e.to_string())?;
        let layer = Layer::parse(
            LayerSource::User("bench.toml".into()),
            std::path::Path::new("bench.toml"),
            "[sandbox]\nallow_weaker = true\n",
        )
        .map_err(|d| format!("{d:?}"))?;
        let policy = Policy::from_layers(&[builtin(), layer]);
        let ctx = ResolveContext {
            workspace: ws,
            homes: vec![root.join("home")],
            always_deny: Vec::new(),
        };
        let win = |p: &std::path::Path| WinPath::from_path(p).map_err(|e| e.to_string());
        let input = PlanInput {
            policy: &policy,
            ctx: &ctx,
            mode: Mode::Unelevated,
            temp_base: win(&root.join("tmp"))?,
            cpus: 2,
            proxy_ports: Vec::new(),
            everyone_writable: Vec::new(),
            previously_managed: Vec::new(),
            tool_dirs: Vec::new(),
            profile: None,
        };
        let plan = plan(&input, &RealHost).map_err(|e| e.to_string())?;
        exec::apply(&plan).map_err(|e| e.to_string())?;
        let system = std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\windows".into());
        let argv = vec![
            format!(r"{system}\system32\cmd.exe"),
            "/c".into(),
            "exit".into(),
            "0".into(),
        ];
        let env = vec![("SystemRoot".to_string(), system)];
        let cwd = plan.workspace.to_string();
        let exe = std::env::current_exe()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let own_env: Vec<(String, String)> = std::env::vars().collect();
        let copy_args = ["__as-account".to_string()];
        let broker_args = ["__broker".to_string()];
        let own = token::process_token().map_err(|e| e.to_string())?;
        let developer = token::user_sid(&own).map_err(|e| e.to_string())?;
        let session = format!("bench-{}", std::process::id());
        let state = win(&root)?;
        let place = Place {
            state_dir: &state,
            developer: &developer,
            session: &session,
            version: cordon_windows::broker::VERSION,
            idle: Duration::from_secs(30),
        };
        let launch = Launch::SameUser { env: &own_env };
        let via_copy = || {
            run_elevated(
                &plan,
                &launch,
                &Copy {
                    exe: &exe,
                    args: &copy_args,
                },
                &argv,
                &env,
                &cwd,
                None,
            )
            .map_err(|e| e.to_string())
        };
        let via_broker = || {
            broker::run(
                &plan,
                &launch,
                &Copy {
                    exe: &exe,
                    args: &broker_args,
                },
                &place,
                &argv,
                &env,
                &cwd,
                None,
                None,
            )
            .map_err(|e| e.to_string())
        };
        let direct = || exec::run(&plan, &argv, &env, &cwd, None, None).map_err(|e| e.to_string());

        let cold = time(|| {
            let s = via_broker()?;
            if !s.started_broker {
                return Err("a broker was already serving the bench's pipe".into());
            }
            Ok(s.exit)
        })?;
        let (mut copy, mut warm, mut unelevated) = (Vec::new(), Vec::new(), Vec::new());
        // Interleaved, so drift in the machine's load touches every path alike.
        for _ in 0..n {
            copy.push(time(via_copy)?);
            warm.push(time(|| {
                let s = via_broker()?;
                if s.started_broker {
                    return Err("a warm run started a broker".into());
                }
                Ok(s.exit)
            })?);
            unelevated.push(time(direct)?);
        }
        println!("`cmd /c exit 0`, {n} runs per path, as the same user (no logon in any path):");
        stats("copy per command (today's path)", copy);
        stats("broker, warm", warm);
        stats("broker, first run (starts it)", vec![cold]);
        stats("unelevated exec::run (reference)", unelevated);
        let _ = broker::quit(
            &cordon_windows::broker::BrokerName::new(&developer, &session, "this-user").pipe(),
            cordon_windows::broker::VERSION,
        );
        let _ = std::fs::remove_dir_all(&root);
        Ok(())
    }
}

#[cfg(not(windows))]
fn main() {
    eprintln!("handoff-bench runs on Windows (or under Wine): docs/windows.md");
    std::process::exit(125)
}
