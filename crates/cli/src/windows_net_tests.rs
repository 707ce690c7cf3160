//! windows_net under Wine (which implements Winsock, so the proxy and the local servers run
//! for real): an allowed name through the proxy, a refused one answered 403, the audit
//! events, the variables, a port in use refused, and `terminate_on_violation` ending a job
//! whose process made a refused request. What the firewall lets the offline account reach
//! is not tested here: Wine enforces no firewall (windows-smoke.ps1 -Elevated).
#![allow(clippy::unwrap_used)] // tests

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use cordon_audit::{read_log, Event, Sink};
use cordon_policy::{builtin, DomainPattern, Egress, Network, Policy, ViolationClass};

use std::sync::Arc;

use cordon_proxy::{ClientCheck, Clients};

use super::*;

const ALLOWED: &str = "allowed.test";
const REFUSED: &str = "refused.test";

fn policy() -> Policy {
    let mut p = Policy::from_layers(&[builtin()]);
    p.network = Network::Allow;
    p.egress = Egress {
        allow: vec![DomainPattern::parse(ALLOWED).unwrap()],
        deny: Vec::new(),
        // The test's server is on loopback; the name is pinned to it as `--resolve` would.
        allow_local_destinations: true,
        hosts: vec![
            (ALLOWED.into(), "127.0.0.1".parse().unwrap()),
            (REFUSED.into(), "127.0.0.1".parse().unwrap()),
        ],
        ask_unlisted: false,
    };
    p
}

fn free() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// A run's asks set up in a state folder of the test's own.
fn ask_setup(name: &str) -> AskSetup {
    let state_dir = std::env::temp_dir().join(format!("cordon-ask-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state_dir);
    AskSetup {
        ctx: crate::approval::Context {
            run_id: format!("run-{name}"),
            workspace: state_dir.join("ws"),
            cwd: state_dir.join("ws"),
            secrets: Vec::new(),
            timeout: Duration::from_secs(30),
        },
        state_dir,
    }
}

/// For runs whose policy never asks.
fn no_ask() -> AskSetup {
    ask_setup("none")
}

fn temp_log(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("cordon-{name}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// A server answering its first connection with one small response; returns its port and
/// the number of requests it received (0 when none came within `wait`).
fn server(wait: Duration) -> (u16, std::thread::JoinHandle<usize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let mut served = 0;
        let until = std::time::Instant::now() + wait;
        while std::time::Instant::now() < until {
            match l.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                        head.push(b[0]);
                    }
                    served += 1;
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
                    // One request is all this test sends.
                    return served;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        served
    });
    (port, t)
}

/// Where the command was told the proxy is: the test's requests go there.
fn proxy_in(env: &[(String, String)]) -> SocketAddr {
    let (_, url) = env.iter().find(|(k, _)| k == "HTTP_PROXY").unwrap();
    url.strip_prefix("http://").unwrap().parse().unwrap()
}

/// One plain-HTTP request through the proxy; the whole response.
fn get(proxy: SocketAddr, host: &str, port: u16) -> String {
    let mut c = TcpStream::connect(proxy).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "GET http://{host}:{port}/x HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn an_allowed_name_goes_through_a_refused_one_is_answered_403_and_both_are_logged() {
    let log_path = temp_log("windows-net");
    let mut audit = Some(Sink::open(&log_path).unwrap());
    let mut env = Vec::new();
    // The run's own check, with its job not made yet, then a check that admits the test.
    let gate = Arc::new(Gate {
        job: RunJob(JobWatch::default()),
        open: std::sync::atomic::AtomicBool::new(false),
    });
    let mut net = start(
        free(),
        &policy(),
        &mut env,
        Clients::Checked(gate.clone()),
        &no_ask(),
    )
    .unwrap();
    assert!(proxy_in(&env).ip().is_loopback());
    let proxy = proxy_in(&env);
    net.record(&mut audit, "run-1", std::time::Instant::now())
        .unwrap();
    assert!(audit.is_none(), "the sink moved to the recorder");

    // Before the run's job exists, nobody is its process: even an allowed name is turned
    // away, unread.
    let (port, served) = server(Duration::from_millis(300));
    let early = get(proxy, ALLOWED, port);
    assert!(early.starts_with("HTTP/1.1 403"), "{early}");
    assert!(
        early.contains("X-Cordon-Refused: foreign-client"),
        "{early}"
    );
    assert_eq!(
        served.join().unwrap(),
        0,
        "a foreign client reached the server"
    );
    gate.open.store(true, std::sync::atomic::Ordering::SeqCst);

    let (port, served) = server(Duration::from_secs(10));
    let ok = get(proxy, ALLOWED, port);
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.ends_with("hello"), "{ok}");
    assert_eq!(served.join().unwrap(), 1);

    // The refusal comes before any connection upstream: by the 403, nothing is on its way.
    let (port, served) = server(Duration::from_millis(300));
    let refused = get(proxy, REFUSED, port);
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(
        refused
            .to_ascii_lowercase()
            .contains("x-cordon-refused: not-on-allow-list"),
        "{refused}"
    );
    assert_eq!(
        served.join().unwrap(),
        0,
        "the refused name reached the server"
    );

    assert_eq!(net.finish(&mut audit, "run-1"), None, "nothing was killed");
    assert!(audit.is_some(), "finish gives the sink back");
    drop(audit);
    let records = read_log(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    let network: Vec<(String, String, String)> = records
        .into_iter()
        .filter(|r| r.run == "run-1")
        .filter_map(|r| match r.event {
            Event::Network {
                method,
                host,
                decision,
                ..
            } => Some((method, host, decision)),
            _ => None,
        })
        .collect();
    assert!(
        network.contains(&("GET".into(), ALLOWED.into(), "allowed".into())),
        "{network:?}"
    );
    assert!(
        network.contains(&("GET".into(), REFUSED.into(), "refused".into())),
        "{network:?}"
    );
    assert!(
        network.contains(&(
            "TCP".into(),
            "(a client outside this run)".into(),
            "refused".into()
        )),
        "{network:?}"
    );
    assert_eq!(network.len(), 3, "{network:?}");
}

fn no_limits() -> cordon_windows::plan::job::JobLimits {
    cordon_windows::plan::job::JobLimits {
        kill_on_close: false,
        die_on_unhandled_exception: false,
        job_memory: None,
        active_processes: None,
        cpu_rate: None,
        timeout_ms: None,
    }
}

/// The run's check until `open`, then everyone: under Wine the run's check cannot admit
/// anyone (below), and the decisions are what this test is about.
struct Gate {
    job: RunJob,
    open: std::sync::atomic::AtomicBool,
}

impl ClientCheck for Gate {
    fn admit(&self, peer: SocketAddr, local: SocketAddr) -> Result<(), String> {
        match self.open.load(std::sync::atomic::Ordering::SeqCst) {
            true => Ok(()),
            false => self.job.admit(peer, local),
        }
    }
}

/// Set by scripts/windows-test.sh.
fn under_wine() -> bool {
    std::env::var_os("CORDON_UNDER_WINE").is_some()
}

/// A connection to a fresh listener: (client end, server end), and the streams.
fn connection() -> (SocketAddr, SocketAddr, TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let local = listener.local_addr().unwrap();
    let client = TcpStream::connect(local).unwrap();
    let peer = client.local_addr().unwrap();
    let (accepted, seen) = listener.accept().unwrap();
    assert_eq!(seen, peer);
    (peer, local, client, accepted)
}

#[test]
fn a_connection_is_the_runs_only_if_its_owner_is_in_the_runs_job() {
    let (peer, local, _c, _a) = connection();
    let me = std::process::id();
    let unset = RunJob(JobWatch::default());
    assert!(unset
        .admit(peer, local)
        .unwrap_err()
        .contains("not started"));
    // An address that is no connection is nobody's: refused, not admitted.
    let nobody: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let any_job = JobWatch::default();
    any_job
        .show(&cordon_windows::exec::job::create(&no_limits()).unwrap())
        .unwrap();
    assert!(RunJob(any_job.clone()).admit(nobody, local).is_err());

    let owner = cordon_windows::exec::tcp_owner::connection_owner(peer, local).unwrap();
    // A job this process is not in (a fresh, empty one) does not admit it.
    let why = RunJob(any_job).admit(peer, local).unwrap_err();
    // This process in a job (no limits: the other tests of this binary run on in it).
    let job = cordon_windows::exec::job::create(&no_limits()).unwrap();
    cordon_windows::exec::job::assign_current(&job).unwrap();
    let listed = cordon_windows::exec::job::process_ids(&job).unwrap();
    let ours = JobWatch::default();
    ours.show(&job).unwrap();
    let in_job = RunJob(ours).admit(peer, local);
    if under_wine() {
        // Wine's TCP table names no owner (pid 0): the check refuses every connection
        // there, fail-closed, and what it admits is verified on real Windows only
        // (windows-smoke.ps1 -Elevated). A Wine that starts naming owners fails here.
        assert_eq!(
            owner,
            Some(0),
            "Wine now names socket owners: test the real path"
        );
        assert!(why.contains("names no owner"), "{why}");
        assert!(in_job.unwrap_err().contains("names no owner"));
        eprintln!("job process ids under Wine: {listed:?} (this process: {me})");
    } else {
        assert_eq!(
            owner,
            Some(me),
            "the TCP table names this process as the owner"
        );
        assert!(why.contains(&format!("pid {me}")), "{why}");
        assert!(listed.contains(&me), "{listed:?}");
        assert_eq!(in_job, Ok(()));
    }
}

#[test]
fn the_command_is_pointed_at_the_proxy_once_per_name() {
    let mut env: Vec<(String, String)> = vec![
        ("Https_Proxy".into(), "http://corp:8080".into()),
        ("no_proxy".into(), "*".into()),
        ("npm_config_proxy".into(), "http://corp:8080".into()),
        ("Path".into(), "C:\\Windows".into()),
    ];
    point_at(&mut env, "http://127.0.0.1:47128");
    let get = |k: &str| {
        env.iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect::<Vec<_>>()
    };
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        assert_eq!(get(var), [(var, "http://127.0.0.1:47128")]);
    }
    for var in [
        "npm_config_proxy",
        "npm_config_https_proxy",
        "YARN_HTTP_PROXY",
        "YARN_HTTPS_PROXY",
        "PIP_PROXY",
        "CARGO_HTTP_PROXY",
    ] {
        assert_eq!(get(var), [(var, "http://127.0.0.1:47128")]);
    }
    assert_eq!(get("NO_PROXY"), [("NO_PROXY", "")]);
    assert_eq!(get("NODE_USE_ENV_PROXY"), [("NODE_USE_ENV_PROXY", "1")]);
    assert_eq!(get("PATH"), [("Path", "C:\\Windows")]);
}

#[test]
fn the_first_free_port_is_taken_and_all_taken_is_refused_naming_them() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    let free_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let got = bind_first(&[busy, free_port]).unwrap();
    assert_eq!(got.local_addr().unwrap().port(), free_port, "the next port");

    let Err(f) = bind_first(&[busy, free_port]) else {
        panic!("started on ports in use");
    };
    assert_eq!(f.code, 125);
    assert!(f.message.contains(&format!("{busy}:")), "{}", f.message);
    assert!(
        f.message.contains(&format!("{free_port}:")),
        "{}",
        f.message
    );
    assert!(f.message.contains("did not run"), "{}", f.message);
    assert!(f.hint.unwrap().contains("2 `--net allow` runs at a time"));
}

#[test]
fn the_elevated_ports_are_the_filters_range() {
    assert!(cordon_windows::plan::network::consecutive(
        &ELEVATED_PROXY_PORTS
    ));
    assert_eq!(ELEVATED_PROXY_PORTS[0], 47_128);
}

/// In the child's environment only: the proxy to send a refused request to.
const REFUSED_CLIENT: &str = "CORDON_TEST_REFUSED_CLIENT";

/// The command of the kill test: once told to go (a line on stdin), one refused request
/// through the proxy (held unanswered, as for a kill), then a long sleep.
#[test]
fn refused_client_entry() {
    let Some(proxy) = std::env::var_os(REFUSED_CLIENT) else {
        return;
    };
    let proxy: SocketAddr = proxy.to_string_lossy().parse().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    get(proxy, REFUSED, 1);
    std::thread::sleep(Duration::from_secs(60));
}

/// `child`'s exit status, or `None` if it is still running after `wait`.
fn exited(child: &mut std::process::Child, wait: Duration) -> Option<std::process::ExitStatus> {
    let until = std::time::Instant::now() + wait;
    while std::time::Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn the_runs_first_refused_request_terminates_its_job_a_foreign_refusal_does_not() {
    use cordon_windows::exec::job;
    let log_path = temp_log("windows-net-kill");
    let mut audit = Some(Sink::open(&log_path).unwrap());
    let mut env = Vec::new();
    let mut kill = policy();
    kill.terminate_on_violation.push(ViolationClass::Network);
    // The run's own check until `open` (its job not shown to it: everyone is foreign),
    // then everyone, since under Wine the run's check admits no one.
    let gate = Arc::new(Gate {
        job: RunJob(JobWatch::default()),
        open: std::sync::atomic::AtomicBool::new(false),
    });
    let net = start(
        free(),
        &kill,
        &mut env,
        Clients::Checked(gate.clone()),
        &no_ask(),
    )
    .unwrap();
    let proxy = proxy_in(&env);
    // The run's job, with a child of this test standing in for the command.
    let limits = cordon_windows::plan::job::JobLimits {
        kill_on_close: true,
        ..no_limits()
    };
    let job = job::create(&limits).unwrap();
    let watch = JobWatch::default();
    watch.show(&job).unwrap();
    let mut net = net.watching(watch);
    net.record(&mut audit, "run-k", std::time::Instant::now())
        .unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "windows_net::tests::refused_client_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(REFUSED_CLIENT, proxy.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    job::assign(&job, &child).unwrap();

    // A connection from outside the run (this test process) is refused too, but it is not
    // the run's violation: the run goes on.
    let foreign = get(proxy, REFUSED, 1);
    assert!(
        foreign.contains("X-Cordon-Refused: foreign-client"),
        "{foreign}"
    );
    assert_eq!(
        exited(&mut child, Duration::from_millis(500)),
        None,
        "a foreign client's refusal ended the run"
    );

    gate.open.store(true, std::sync::atomic::Ordering::SeqCst);
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = exited(&mut child, Duration::from_secs(20)).expect("the job was not terminated");
    assert_eq!(
        status.code(),
        Some(crate::runlog::KILLED_STATUS),
        "the job's processes exit with the kill's status"
    );
    assert_eq!(
        job::process_ids(&job).unwrap(),
        Vec::<u32>::new(),
        "a process of the job survived"
    );

    let killed = net.finish(&mut audit, "run-k");
    let what = killed.expect("the run does not say it was killed");
    assert!(
        what.starts_with(&format!("GET {REFUSED} refused: not-on-allow-list")),
        "{what}"
    );
    drop(audit);
    let records = read_log(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    let refused: Vec<String> = records
        .into_iter()
        .filter_map(|r| match r.event {
            Event::Network { host, decision, .. } if decision == "refused" => Some(host),
            _ => None,
        })
        .collect();
    // Both refusals stay logged as network events.
    assert_eq!(
        refused,
        [
            "(a client outside this run)".to_string(),
            REFUSED.to_string()
        ],
        "{refused:?}"
    );
}

#[test]
fn only_the_runs_own_refusals_are_violations() {
    let decision = |verdict, reason: &str| cordon_proxy::Decision {
        method: "CONNECT".into(),
        host: "example.com".into(),
        port: 443,
        verdict,
        rule: None,
        reason: Some(reason.into()),
        address: None,
        bytes_up: 0,
        bytes_down: 0,
        duration: Duration::ZERO,
    };
    let refused = decision(
        cordon_proxy::Outcome::Refused,
        "not-on-allow-list: off the list",
    );
    assert_eq!(
        egress::violation(&refused).as_deref(),
        Some("CONNECT example.com refused: not-on-allow-list: off the list")
    );
    let foreign = decision(
        cordon_proxy::Outcome::Refused,
        "foreign-client: pid 7; answered 403 unread",
    );
    assert_eq!(egress::violation(&foreign), None);
    let failed = decision(cordon_proxy::Outcome::Failed, "connect-failed: reset");
    assert_eq!(egress::violation(&failed), None);
}

#[test]
fn what_windows_lacks_is_refused_not_ignored() {
    let mut env = Vec::new();
    let unelevated = start_for(&policy(), false, &mut env, &no_ask());
    assert!(
        unelevated.is_err_and(|f| f.code == 125 && f.message.contains("elevated")),
        "--net allow ran unelevated"
    );
    let mut off = policy();
    off.network = Network::Off;
    assert!(matches!(
        start_for(&off, true, &mut env, &no_ask()),
        Ok(None)
    ));
    assert!(env.is_empty());
}

/// The id of the first request the console's client sees open (waiting for one).
fn first_pending(console: &mut cordon_approvals::Client) -> String {
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < until {
        let listed = console.call(&serde_json::json!({"op": "pending"})).unwrap();
        if let Some(id) = listed["pending"][0]["id"].as_str() {
            return id.to_string();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no request was asked");
}

#[test]
fn an_unlisted_name_is_held_until_a_human_answers_in_the_console() {
    let mut ask = policy();
    ask.egress.ask_unlisted = true;
    let setup = ask_setup("held");
    let log_path = temp_log("windows-ask");
    let mut audit = Some(Sink::open(&log_path).unwrap());
    let mut env = Vec::new();
    let mut net = start(free(), &ask, &mut env, Clients::Any, &setup).unwrap();
    net.record(&mut audit, "run-held", std::time::Instant::now())
        .unwrap();
    let proxy = proxy_in(&env);
    // The run's endpoint is where `cordon console` finds it: its pipe, with the token.
    let approvals = setup.state_dir.join("approvals");
    let endpoints = cordon_approvals::endpoints(&approvals);
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    assert!(
        endpoints[0]
            .socket
            .to_string_lossy()
            .starts_with(r"\\.\pipe\cordon-approvals-"),
        "{:?}",
        endpoints[0].socket
    );
    let mut console = cordon_approvals::Client::connect(&endpoints[0]).unwrap();
    // A wrong token is turned away on the same pipe.
    let mut forged = endpoints[0].clone();
    forged.token = "0".repeat(forged.token.len());
    assert!(cordon_approvals::Client::connect(&forged).is_err());

    // Allowed once: the request reaches the server.
    let (port, served) = server(Duration::from_secs(30));
    let asked = std::thread::spawn(move || get(proxy, REFUSED, port));
    let id = first_pending(&mut console);
    let reply = console
        .call(&serde_json::json!({"op": "decide", "id": id, "choice": "allow_once"}))
        .unwrap();
    assert_eq!(reply["answer"]["channel"], "console", "{reply}");
    let response = asked.join().unwrap();
    assert!(response.ends_with("hello"), "{response}");
    assert_eq!(served.join().unwrap(), 1);

    // Denied: a 403, and the server receives nothing.
    let (port, served) = server(Duration::from_secs(3));
    let asked = std::thread::spawn(move || get(proxy, REFUSED, port));
    let id = first_pending(&mut console);
    console
        .call(&serde_json::json!({"op": "decide", "id": id, "choice": "deny"}))
        .unwrap();
    let response = asked.join().unwrap();
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert_eq!(
        served.join().unwrap(),
        0,
        "a denied name reached the server"
    );

    // Still open when the run ends: denied, and the endpoint goes with the run.
    let (port, served) = server(Duration::from_secs(3));
    let asked = std::thread::spawn(move || get(proxy, REFUSED, port));
    let _ = first_pending(&mut console);
    drop(console);
    assert_eq!(net.finish(&mut audit, "run-held"), None);
    let response = asked.join().unwrap();
    assert!(!response.ends_with("hello"), "{response}");
    assert_eq!(
        served.join().unwrap(),
        0,
        "an unanswered name reached the server"
    );
    assert!(cordon_approvals::endpoints(&approvals).is_empty());

    drop(audit);
    let records = read_log(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    let _ = std::fs::remove_dir_all(&setup.state_dir);
    let decided: Vec<(String, String)> = records
        .into_iter()
        .filter_map(|r| match r.event {
            Event::ApprovalDecided {
                decision, channel, ..
            } => Some((decision, channel)),
            _ => None,
        })
        .collect();
    assert_eq!(
        decided,
        vec![
            ("allow_once".to_string(), "console".to_string()),
            ("deny".to_string(), "console".to_string()),
            ("deny".to_string(), "broker".to_string()),
        ],
        "every answer is in the audit log"
    );
}
