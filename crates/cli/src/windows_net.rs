//! `--net allow` for an elevated Windows run: cordon's proxy listening on one of the loopback
//! ports the offline account's WFP filter admits (serving only the run's own processes), the variables that point the command at it,
//! and its decisions on stderr and in the audit log (the same lines and events as on Linux,
//! from `egress`); with `terminate_on_violation = ["network"]`, the run's job terminated at
//! its first refused request; with `network.unlisted = "ask"`, a name off the list held
//! while a human answers in `cordon console` (the run's broker on a named pipe only the
//! developer may open, `cordon_approvals`).
//!
//! The proxy runs in cordon's own process, as the developer, and resolves and connects for
//! the sandbox; the command runs as `CordonSandboxOffline`, whose firewall rules and WFP
//! filters (installed once by `cordon setup --elevated`) block everything but loopback TCP
//! to `ELEVATED_PROXY_PORTS`. That the filters hold is checked only on real Windows
//! (`scripts/windows-smoke.ps1 -Elevated`): Wine enforces no firewall.
//!
//! Use: [`start_for`] before `command_start` is logged (a port in use is exit 125 before
//! anything ran), [`AllowNet::record`] once it is, [`AllowNet::finish`] after the command
//! (which says whether the run was killed for a refusal).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cordon_approvals::Channels;
use cordon_audit::{Ending, Event, Sink};
use cordon_policy::{Network, Policy, ViolationClass};
use cordon_proxy::{Ask, ClientCheck, Clients, Decision, OnRefusal, Proxy};
use cordon_windows::exec::job::{self, JobWatch};
use cordon_windows::exec::listener::exclusive_loopback;
use cordon_windows::exec::tcp_owner;
use cordon_windows::plan::setup::ELEVATED_PROXY_PORTS;

use crate::approval;
use crate::egress;
use crate::failure::Failure;
use crate::runlog::{log, report_kill, KILLED_STATUS};

/// The proxy of one run, and the thread writing its decisions down.
pub struct AllowNet {
    proxy: Proxy,
    /// The run's job, once the broker has made it: the proxy serves only its processes.
    job: JobWatch,
    decisions: Option<mpsc::Receiver<Decision>>,
    recorder: Option<Recorder>,
    /// `terminate_on_violation = ["network"]`: what the job was terminated for, once it was.
    kill: Option<Arc<OnceLock<String>>>,
    /// `network.unlisted = "ask"`: the human side.
    asking: Option<Asking>,
}

/// What a run's asks need: the broker's configuration, and the state folder its control
/// pipe's endpoint goes in (where `cordon console` finds it).
pub struct AskSetup {
    pub ctx: approval::Context,
    pub state_dir: PathBuf,
}

/// The human side of `network.unlisted = "ask"`: the run's broker with its control pipe,
/// and the thread that answers the proxy's asks through it. The broker's audit events go to
/// the recorder.
struct Asking {
    channels: Arc<Channels>,
    stop: Arc<AtomicBool>,
    events: Option<mpsc::Receiver<Event>>,
}

impl Asking {
    /// Starts the broker and its control pipe now: a run that would ask with nobody able to
    /// answer is refused (125) before the command starts.
    fn start(policy: &Policy, setup: &AskSetup) -> Result<(mpsc::Sender<Ask>, Asking), Failure> {
        let (broker, events) = approval::broker_for(policy, &setup.ctx);
        // Asked on cordon's console too when it has one: the command never shares it (a
        // pseudo console of its own, or no console handle), and it is a separate account
        // in the elevated mode (the only one with `--net allow`), whose AttachConsole to
        // cordon's console `scripts/windows-smoke.ps1` checks on real Windows.
        let terminal = approval::console_terminal();
        let has_terminal = terminal.is_some();
        let channels = Arc::new(Channels::new(
            broker.clone(),
            Some(setup.state_dir.clone()),
            terminal,
        ));
        channels.ensure().map_err(|e| {
            Failure::setup(format!(
                "network.unlisted = \"ask\": {e}; the command did not run"
            ))
        })?;
        let (tx, asks) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        approval::serve("cordon-ask", asks, stop.clone(), move |ask: Ask| {
            let allowed = approval::ask_network(&broker, &ask, true, has_terminal);
            let _ = ask.reply.send(allowed);
        })?;
        let asking = Asking {
            channels,
            stop,
            events: Some(events),
        };
        Ok((tx, asking))
    }

    /// Denies what is still asked, removes the control pipe's endpoint, ends the thread.
    fn finish(&self) {
        self.channels.close();
        self.stop.store(true, Ordering::Relaxed);
    }
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
    ask: &AskSetup,
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
    let listener = bind_first(&ELEVATED_PROXY_PORTS)?;
    let job = JobWatch::default();
    let clients = Clients::Checked(Arc::new(RunJob(job.clone())));
    start(listener, policy, env, clients, ask).map(|net| Some(net.watching(job)))
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
/// `env` at it; with `unlisted = "ask"`, the run's broker too.
pub fn start(
    listener: TcpListener,
    policy: &Policy,
    env: &mut Vec<(String, String)>,
    clients: Clients,
    ask: &AskSetup,
) -> Result<AllowNet, Failure> {
    let (asks, asking) = match policy.egress.ask_unlisted {
        true => Asking::start(policy, ask).map(|(tx, a)| (Some(tx), Some(a)))?,
        false => (None, None),
    };
    let address = listener
        .local_addr()
        .map_err(|e| Failure::setup(format!("--net allow: reading the proxy's address: {e}")))?;
    let (tx, rx) = mpsc::channel();
    let egress = policy.egress.clone();
    let kill = policy
        .terminate_on_violation
        .contains(&ViolationClass::Network);
    // Killing for a refusal: the client gets no answer to act on before the kill lands.
    let on_refusal = match kill {
        true => OnRefusal::Hold,
        false => OnRefusal::Answer,
    };
    let proxy =
        cordon_proxy::start(listener, egress, tx, on_refusal, asks, clients).map_err(|e| {
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
        kill: kill.then(Arc::default),
        asking,
    })
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
    /// it is made, and with `terminate_on_violation = ["network"]` the first refusal of the
    /// run's own ends its job; `audit` moves to a thread until [`AllowNet::finish`] gives it
    /// back. If the thread cannot start, the decisions wait in their queue and `finish`
    /// writes them; with a kill to watch for, that is an error (125): nothing would kill.
    /// `started`: when the run began, for the exit event if the kill fails.
    pub fn record(
        &mut self,
        audit: &mut Option<Sink>,
        run_id: &str,
        started: Instant,
    ) -> Result<(), Failure> {
        let Some(decisions) = self.decisions.take() else {
            return Ok(());
        };
        let (stop, stopped) = mpsc::channel();
        let thread_run_id = run_id.to_string();
        let wire = self.kill.as_ref().map(|killed| Tripwire {
            job: self.job.clone(),
            killed: killed.clone(),
            started,
        });
        // The queue and the sink must survive a failed spawn, so they travel through a
        // channel once the thread is there.
        let events = self.asking.as_mut().and_then(|a| a.events.take());
        type Handed = (
            mpsc::Receiver<Decision>,
            Option<mpsc::Receiver<Event>>,
            Option<Sink>,
        );
        let (hand, take) = mpsc::channel::<Handed>();
        let spawned = std::thread::Builder::new()
            .name("cordon-audit".into())
            .spawn(move || {
                let (decisions, events, audit) = take.recv().ok()?;
                let queues = Queues {
                    decisions: &decisions,
                    events: events.as_ref(),
                };
                record(queues, audit, &thread_run_id, &stopped, wire.as_ref())
            });
        match spawned {
            Ok(thread) => {
                let _ = hand.send((decisions, events, audit.take()));
                self.recorder = Some(Recorder { stop, thread });
                Ok(())
            }
            Err(e) if self.kill.is_some() => Err(Failure::setup(format!(
                "terminate_on_violation = [\"network\"]: starting the thread that watches the proxy's refusals: {e}; the command did not run"
            ))),
            Err(e) => {
                eprintln!("cordon: warning: starting the audit thread: {e}; network decisions are logged when the command ends");
                self.decisions = Some(decisions);
                if let Some(a) = self.asking.as_mut() {
                    a.events = events;
                }
                Ok(())
            }
        }
    }

    /// Stops the proxy (cutting what is still relayed, which is logged as it ends), writes
    /// every decision still queued, and gives the audit sink back. Returns what the run's
    /// job was terminated for (`terminate_on_violation`), if it was.
    pub fn finish(mut self, audit: &mut Option<Sink>, run_id: &str) -> Option<String> {
        // What is still asked is denied first, so the proxy's answers to it are logged.
        if let Some(a) = &self.asking {
            a.finish();
        }
        self.proxy.stop();
        if let Some(r) = self.recorder.take() {
            let _ = r.stop.send(());
            if let Ok(sink) = r.thread.join() {
                *audit = sink;
            }
        }
        if let Some(decisions) = self.decisions.take() {
            // No thread ran (so no kill was asked for): the proxy has stopped, so the queue
            // only has to be drained.
            let (_, stopped) = mpsc::channel();
            let events = self.asking.as_mut().and_then(|a| a.events.take());
            let queues = Queues {
                decisions: &decisions,
                events: events.as_ref(),
            };
            *audit = record(queues, audit.take(), run_id, &stopped, None);
        }
        self.kill.and_then(|k| k.get().cloned())
    }
}

/// What ends the run's job at its first refused request.
struct Tripwire {
    job: JobWatch,
    /// The first refusal's description, set before the job is terminated.
    killed: Arc<OnceLock<String>>,
    started: Instant,
}

impl Tripwire {
    /// Terminates the job for `what` (the first time only: later refusals are logged, the
    /// job is already gone). The command's processes exit with [`KILLED_STATUS`], which the
    /// run relays as on Linux.
    fn trip(&self, what: &str) -> std::io::Result<()> {
        match self.killed.set(what.to_string()) {
            Ok(()) => self.job.terminate(KILLED_STATUS as u32),
            Err(_) => Ok(()),
        }
    }

    /// The job could not be terminated: cordon says so, logs the kill and the exit, and
    /// exits 125 itself; its own handles on the job (the last ones: the broker closed its
    /// own at the hand-over) closing end every process in it (kill-on-close).
    fn fail_closed(
        &self,
        what: &str,
        e: &std::io::Error,
        audit: &mut Option<Sink>,
        run_id: &str,
    ) -> ! {
        let class = ViolationClass::Network.as_str();
        let message = report_kill(audit, run_id, class, what);
        let failed = format!("{message}; but ending the run's job failed ({e}): cordon exits now, and its job handles closing ends every process of the run (kill-on-close)");
        eprintln!("cordon: {failed}");
        log(
            audit,
            run_id,
            Event::CommandExit {
                status: crate::failure::EXIT_SETUP,
                ending: Ending::Signaled,
                signal: None,
                duration_ms: self.started.elapsed().as_millis() as u64,
                message: Some(failed),
            },
        );
        // A question or the relay may hold the console's raw mode: given back first.
        cordon_windows::exec::console_keys::give_back_console();
        std::process::exit(crate::failure::EXIT_SETUP);
    }
}

/// What the recorder writes: the proxy's decisions, and the broker's events when it asks.
struct Queues<'a> {
    decisions: &'a mpsc::Receiver<Decision>,
    events: Option<&'a mpsc::Receiver<Event>>,
}

/// Writes decisions (and the broker's events) until the run has ended and none is queued,
/// tripping `wire` at the first refusal of the run's own (before it is written: the kill
/// comes first, as on Linux). Bounded: after the stop it drains what is queued and ends,
/// even if a sender were still alive.
fn record(
    queues: Queues,
    mut audit: Option<Sink>,
    run_id: &str,
    stopped: &mpsc::Receiver<()>,
    wire: Option<&Tripwire>,
) -> Option<Sink> {
    let write = |audit: &mut Option<Sink>, d: Decision| {
        let tripped = wire.zip(egress::violation(&d));
        let failed = tripped.and_then(|(w, what)| w.trip(&what).err().map(|e| (w, what, e)));
        egress::announce(&d);
        log(audit, run_id, egress::event(d));
        if let Some((w, what, e)) = failed {
            w.fail_closed(&what, &e, audit, run_id);
        }
    };
    let events = |audit: &mut Option<Sink>| {
        for e in queues.events.into_iter().flat_map(|q| q.try_iter()) {
            log(audit, run_id, e);
        }
    };
    let decisions = queues.decisions;
    loop {
        let next = decisions.recv_timeout(Duration::from_millis(50));
        // A request's events (asked, answered) come before the decision that follows.
        events(&mut audit);
        match next {
            Ok(d) => write(&mut audit, d),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if !matches!(stopped.try_recv(), Err(mpsc::TryRecvError::Empty)) {
                    while let Ok(d) = decisions.try_recv() {
                        write(&mut audit, d);
                    }
                    break;
                }
            }
        }
    }
    events(&mut audit);
    audit
}

#[cfg(test)]
#[path = "windows_net_tests.rs"]
mod tests;
