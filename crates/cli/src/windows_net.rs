//! `--net allow` for an elevated Windows run: cordon's proxy listening on one of the loopback
//! ports the offline account's WFP filter admits (serving only the run's own processes), the variables that point the command at it,
//! and its decisions on stderr and in the audit log (the same lines and events as on Linux,
//! from `egress`).
//!
//! The proxy runs in cordon's own process, as the developer, and resolves and connects for
//! the sandbox; the command runs as `CordonSandboxOffline`, whose firewall rules and WFP
//! filters (installed once by `cordon setup --elevated`) block everything but loopback TCP
//! to `ELEVATED_PROXY_PORTS`. That the filters hold is checked only on real Windows
//! (`scripts/windows-smoke.ps1 -Elevated`): Wine enforces no firewall.
//!
//! Use: [`start_for`] before `command_start` is logged (a port in use is exit 125 before
//! anything ran), [`AllowNet::record`] once it is, [`AllowNet::finish`] after the command.

use std::net::{SocketAddr, TcpListener};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use cordon_audit::Sink;
use cordon_policy::{Network, Policy, ViolationClass};
use cordon_proxy::{ClientCheck, Clients, Decision, OnRefusal, Proxy};
use cordon_windows::exec::job::{self, JobWatch};
use cordon_windows::exec::listener::exclusive_loopback;
use cordon_windows::exec::tcp_owner;
use cordon_windows::plan::setup::ELEVATED_PROXY_PORTS;

use crate::egress;
use crate::failure::Failure;
use crate::runlog::log;

/// The proxy of one run, and the thread writing its decisions down.
pub struct AllowNet {
    proxy: Proxy,
    /// The run's job, once the broker has made it: the proxy serves only its processes.
    job: JobWatch,
    decisions: Option<mpsc::Receiver<Decision>>,
    recorder: Option<Recorder>,
}

struct Recorder {
    /// A message, or this sender dropped, tells the thread the run has ended.
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Option<Sink>>,
}

/// What `cordon run` on Windows calls: for `--net allow` in the elevated mode, the proxy
/// started on the first free one of `ELEVATED_PROXY_PORTS` (fixed: the WFP filter admitting
/// them is persistent) and `env` pointed at it; `None` for the other network
/// modes. `--net allow` in the unelevated mode is refused (125): the developer's own token
/// is not confined by the firewall, so a program that ignores the proxy would go straight
/// out.
pub fn start_for(
    policy: &Policy,
    elevated: bool,
    env: &mut Vec<(String, String)>,
) -> Result<Option<AllowNet>, Failure> {
    if policy.network != Network::Allow {
        return Ok(None);
    }
    if !elevated {
        return Err(Failure::setup(
            "--net allow needs the elevated mode on Windows: in the unelevated mode nothing stops a program that ignores the proxy from connecting directly; the command did not run",
        )
        .with_hint("run `cordon setup --elevated` as an administrator, or use --net off (or --net full for the host's network)"));
    }
    refuse_unbuilt(policy)?;
    let listener = bind_first(&ELEVATED_PROXY_PORTS)?;
    let job = JobWatch::default();
    let clients = Clients::Checked(Arc::new(RunJob(job.clone())));
    start(listener, policy, env, clients).map(|net| Some(net.watching(job)))
}

/// The proxy's clients in elevated mode: the processes of this run's job, and nobody else.
/// Loopback is shared by the whole machine, and the offline account's filters admit the
/// proxy's port to every command that account runs, so without this an offline run (or any
/// other program) could use this run's allow-list while it lasts.
pub(crate) struct RunJob(pub(crate) JobWatch);

impl ClientCheck for RunJob {
    fn admit(&self, peer: SocketAddr, local: SocketAddr) -> Result<(), String> {
        let Some(job) = self.0.job() else {
            return Err("this run's command has not started yet".into());
        };
        let owner = tcp_owner::connection_owner(peer, local)
            .map_err(|e| format!("reading the TCP table for {peer}: {e}"))?
            .ok_or_else(|| format!("no process owns {peer} in the TCP table"))?;
        // Process 0 (the idle process) owns no socket: a table that says so does not know.
        if owner == 0 {
            return Err(format!("the TCP table names no owner of {peer}"));
        }
        let ours = job::process_ids(job).map_err(|e| format!("listing the run's job: {e}"))?;
        match ours.contains(&owner) {
            true => Ok(()),
            false => Err(format!(
                "{peer} belongs to pid {owner}, not a process of this run"
            )),
        }
    }
}

/// Starts the proxy on `listener` with `policy`'s allow-list, serving `clients`, and points
/// `env` at it.
pub fn start(
    listener: TcpListener,
    policy: &Policy,
    env: &mut Vec<(String, String)>,
    clients: Clients,
) -> Result<AllowNet, Failure> {
    refuse_unbuilt(policy)?;
    let address = listener
        .local_addr()
        .map_err(|e| Failure::setup(format!("--net allow: reading the proxy's address: {e}")))?;
    let (tx, rx) = mpsc::channel();
    let egress = policy.egress.clone();
    let proxy = cordon_proxy::start(listener, egress, tx, OnRefusal::Answer, None, clients)
        .map_err(|e| {
            Failure::setup(format!(
                "--net allow: starting cordon's proxy on {address}: {e}; the command did not run"
            ))
        })?;
    point_at(env, &format!("http://{address}"));
    Ok(AllowNet {
        proxy,
        job: JobWatch::default(),
        decisions: Some(rx),
        recorder: None,
    })
}

/// Fails closed (125) on what Windows does not have yet: an `ask` for names off the list
/// (the approval broker) and killing the command at the first refusal
/// (`terminate_on_violation = ["network"]`).
fn refuse_unbuilt(policy: &Policy) -> Result<(), Failure> {
    if policy.egress.ask_unlisted {
        return Err(Failure::setup(
            "network.unlisted = \"ask\" needs cordon's approval broker, which the Windows backend does not have yet; the command did not run",
        )
        .with_hint("remove `unlisted = \"ask\"` and list the domains with --allow-domain"));
    }
    if policy
        .terminate_on_violation
        .contains(&ViolationClass::Network)
    {
        return Err(Failure::setup(
            "terminate_on_violation = [\"network\"] (kill the command at the first refused request) is not built on Windows yet; the command did not run",
        )
        .with_hint("remove \"network\" from terminate_on_violation: refused requests are still answered 403 and logged"));
    }
    Ok(())
}

/// The first of `ports` on 127.0.0.1 that cordon can hold exclusively (SO_EXCLUSIVEADDRUSE:
/// no sandboxed process can bind it beside cordon). When every one is taken, 125 naming
/// them and who may hold them: the firewall lets the sandbox reach these ports only, so
/// cordon cannot move elsewhere.
pub fn bind_first(ports: &[u16]) -> Result<TcpListener, Failure> {
    let mut refused = Vec::new();
    for &port in ports {
        match exclusive_loopback(port) {
            Ok(l) => return Ok(l),
            Err(e) => refused.push(format!("{port}: {e}")),
        }
    }
    let (first, last) = (ports.first().copied(), ports.last().copied());
    let range = match (first, last) {
        (Some(a), Some(b)) if a != b => format!("ports {a}-{b}"),
        (Some(a), _) => format!("port {a}"),
        _ => "no port".into(),
    };
    Err(Failure::setup(format!(
        "--net allow: cordon's proxy cannot listen on 127.0.0.1 {range}, the only ones the elevated mode's firewall lets the sandbox reach: {}; the command did not run",
        refused.join(", ")
    ))
    .with_hint(format!(
        "{} `--net allow` runs at a time in the elevated mode: wait for one to end; `netstat -ano -p tcp | findstr \":4712[89] :4713[0-5]\"` names the processes holding the ports, and `netsh interface ipv4 show excludedportrange protocol=tcp` lists ranges Windows reserved at boot (Hyper-V, WSL, Docker; `net stop winnat` then `net start winnat` as an administrator usually moves them)",
        ports.len()
    )))
}

/// Replaces the caller's proxy settings with cordon's proxy at `url`. Windows' variable
/// names ignore case, so `http_proxy` and `HTTP_PROXY` are one variable: each is set once
/// (upper case), and a caller's `Https_Proxy` goes too. `NO_PROXY` is empty: the sandbox's
/// loopback is the host's, so there is no destination of its own to go to directly, and
/// `localhost` through the proxy is refused with a 403 that says why (or reached, with
/// `--allow-local-destinations`) instead of failing at the firewall without a word.
pub fn point_at(env: &mut Vec<(String, String)>, url: &str) {
    let ours = egress::proxy_vars(url, "");
    env.retain(|(k, _)| !ours.iter().any(|(name, _)| name.eq_ignore_ascii_case(k)));
    for (name, value) in ours {
        match env.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            // The later spelling of each pair is the upper-case one.
            Some(entry) => *entry = (name.to_string(), value),
            None => env.push((name.to_string(), value)),
        }
    }
}

impl AllowNet {
    /// Where the broker's client shows the run's job before the command resumes.
    pub fn job_watch(&self) -> &JobWatch {
        &self.job
    }

    fn watching(self, job: JobWatch) -> AllowNet {
        AllowNet { job, ..self }
    }

    /// From now on each decision goes to stderr (refusals and failures) and to `audit` as
    /// it is made; `audit` moves to a thread until [`AllowNet::finish`] gives it back. If
    /// the thread cannot start, the decisions wait in their queue and `finish` writes them.
    pub fn record(&mut self, audit: &mut Option<Sink>, run_id: &str) {
        let Some(decisions) = self.decisions.take() else {
            return;
        };
        let (stop, stopped) = mpsc::channel();
        let thread_run_id = run_id.to_string();
        // The queue and the sink must survive a failed spawn, so they travel through a
        // channel once the thread is there.
        let (hand, take) = mpsc::channel::<(mpsc::Receiver<Decision>, Option<Sink>)>();
        let spawned = std::thread::Builder::new()
            .name("cordon-audit".into())
            .spawn(move || {
                let (decisions, audit) = take.recv().ok()?;
                record(&decisions, audit, &thread_run_id, &stopped)
            });
        match spawned {
            Ok(thread) => {
                let _ = hand.send((decisions, audit.take()));
                self.recorder = Some(Recorder { stop, thread });
            }
            Err(e) => {
                eprintln!("cordon: warning: starting the audit thread: {e}; network decisions are logged when the command ends");
                self.decisions = Some(decisions);
            }
        }
    }

    /// Stops the proxy (cutting what is still relayed, which is logged as it ends), writes
    /// every decision still queued, and gives the audit sink back.
    pub fn finish(mut self, audit: &mut Option<Sink>, run_id: &str) {
        self.proxy.stop();
        if let Some(r) = self.recorder.take() {
            let _ = r.stop.send(());
            if let Ok(sink) = r.thread.join() {
                *audit = sink;
            }
        }
        if let Some(decisions) = self.decisions.take() {
            // No thread ran: the proxy has stopped, so the queue only has to be drained.
            let (_, stopped) = mpsc::channel();
            *audit = record(&decisions, audit.take(), run_id, &stopped);
        }
    }
}

/// Writes decisions until the run has ended and none is queued. Bounded: after the stop it
/// drains what is queued and ends, even if a sender were still alive.
fn record(
    decisions: &mpsc::Receiver<Decision>,
    mut audit: Option<Sink>,
    run_id: &str,
    stopped: &mpsc::Receiver<()>,
) -> Option<Sink> {
    let mut write = |d: Decision| {
        egress::announce(&d);
        log(&mut audit, run_id, egress::event(d));
    };
    loop {
        match decisions.recv_timeout(Duration::from_millis(50)) {
            Ok(d) => write(d),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if !matches!(stopped.try_recv(), Err(mpsc::TryRecvError::Empty)) {
                    while let Ok(d) = decisions.try_recv() {
                        write(d);
                    }
                    break;
                }
            }
        }
    }
    audit
}

#[cfg(test)]
#[path = "windows_net_tests.rs"]
mod tests;
