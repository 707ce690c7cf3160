//! The console's HTTP boundary: pairing, tokens, CSRF and cross-site refusals, answering.

use std::fs;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::broker::{Broker, BrokerConfig};
use crate::control::Control;
use crate::persist::Persist;
use crate::request::{Choice, Request};

struct Reply {
    status: u16,
    head: String,
    body: String,
}

async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

struct Fixture {
    dir: PathBuf,
    broker: Broker,
    _control: Control,
    addr: SocketAddr,
    token: String,
}

async fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("cordon-console-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let broker = Broker::new(
        BrokerConfig {
            run: format!("run{name}"),
            timeout: Duration::from_secs(20),
            persist: Persist::default(),
            scrub: Scrubber::default(),
        },
        |_| {},
    );
    let control = Control::start(broker.clone(), &dir.join("approvals")).unwrap();
    let console = Console::bind(ConsoleOptions {
        bind: "127.0.0.1:0".parse().unwrap(),
        approvals_dir: dir.join("approvals"),
        audit_log: None,
        tls_dir: dir.join("console"),
        scrub: Scrubber {
            env_deny: vec!["*_TOKEN".into()],
            ..Scrubber::default()
        },
        token: None,
    })
    .await
    .unwrap();
    let (addr, token) = (console.addr, console.token.clone());
    assert!(console.url.ends_with(&format!("/pair?token={token}")));
    tokio::spawn(console.serve());
    Fixture {
        dir,
        broker,
        _control: control,
        addr,
        token,
    }
}

fn ask_in_background(broker: &Broker, cmd: &str) -> thread::JoinHandle<crate::request::Answer> {
    let b = broker.clone();
    let words: Vec<String> = cmd.split_whitespace().map(String::from).collect();
    let handle = thread::spawn(move || {
        b.ask(Request {
            subject: words.clone(),
            scope: words,
            ..Request::escalation(vec![], "because")
        })
    });
    while broker.pending().is_empty() {
        thread::sleep(Duration::from_millis(5));
    }
    handle
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" content=\"").unwrap() + 21;
    page[at..at + 64].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn pairing_sets_a_strict_cookie_and_the_page_answers() {
    let f = fixture("pair").await;
    let wrong = http(f.addr, "GET", "/pair?token=abc", &[], "").await;
    assert_eq!(wrong.status, 401);
    assert!(!wrong.head.to_lowercase().contains("set-cookie"));
    let paired = http(f.addr, "GET", &format!("/pair?token={}", f.token), &[], "").await;
    assert_eq!(paired.status, 303, "{}", paired.head);
    let head = paired.head.to_lowercase();
    assert!(
        head.contains("set-cookie: cordon_console=")
            && head.contains("httponly")
            && head.contains("samesite=strict"),
        "{head}"
    );
    assert!(
        head.contains("location: /\r") || head.ends_with("location: /"),
        "{head}"
    );
    let cookie = format!("cordon_console={}", f.token);
    let page = http(f.addr, "GET", "/", &[("Cookie", &cookie)], "").await;
    assert_eq!(page.status, 200);
    assert!(page.head.to_lowercase().contains("frame-ancestors 'none'"));
    let csrf = csrf_of(&page.body);

    let asker = ask_in_background(&f.broker, "deploy GH_TOKEN=ghp_abc prod");
    let listed = http(f.addr, "GET", "/api/pending", &[("Cookie", &cookie)], "").await;
    assert_eq!(listed.status, 200);
    assert!(
        listed.body.contains("deploy") && !listed.body.contains("ghp_abc"),
        "{}",
        listed.body
    );
    let id = f.broker.pending()[0].id.clone();
    let body = format!(r#"{{"run":"runpair","id":"{id}","choice":"allow_once"}}"#);
    let ok = http(
        f.addr,
        "POST",
        "/api/decide",
        &[
            ("Cookie", &cookie),
            ("X-Cordon-CSRF", &csrf),
            ("Origin", &format!("http://{}", f.addr)),
            ("Sec-Fetch-Site", "same-origin"),
        ],
        &body,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let answer = asker.join().unwrap();
    assert_eq!(answer.choice, Choice::AllowOnce);
    assert_eq!(answer.channel, crate::request::Channel::Console);
    fs::remove_dir_all(&f.dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_wrong_token_missing_csrf_and_cross_site_are_refused() {
    let f = fixture("refuse").await;
    let cookie = format!("cordon_console={}", f.token);
    let csrf = csrf_of(
        &http(f.addr, "GET", "/", &[("Cookie", &cookie)], "")
            .await
            .body,
    );
    let asker = ask_in_background(&f.broker, "git push");
    let id = f.broker.pending()[0].id.clone();
    let body = format!(r#"{{"run":"runrefuse","id":"{id}","choice":"allow_once"}}"#);
    // One character off (and never the real one: the token is hex, so a fixed "0" would
    // match one time in sixteen).
    let last = if f.token.ends_with('0') { '1' } else { '0' };
    let wrong_cookie = format!("cordon_console={}{last}", &f.token[..63]);
    let wrong_bearer = format!("Bearer {}", "0".repeat(64));
    let evil_origin = "https://evil.example";
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16);
    let cases: Vec<Case> = vec![
        ("no token", vec![], 401),
        (
            "wrong cookie",
            vec![("Cookie", &wrong_cookie), ("X-Cordon-CSRF", &csrf)],
            401,
        ),
        ("wrong bearer", vec![("Authorization", &wrong_bearer)], 401),
        ("cookie without csrf", vec![("Cookie", &cookie)], 403),
        (
            "cookie with wrong csrf",
            vec![("Cookie", &cookie), ("X-Cordon-CSRF", "x")],
            403,
        ),
        (
            "cross-site origin",
            vec![
                ("Cookie", &cookie),
                ("X-Cordon-CSRF", &csrf),
                ("Origin", evil_origin),
            ],
            403,
        ),
        (
            "cross-site fetch",
            vec![
                ("Cookie", &cookie),
                ("X-Cordon-CSRF", &csrf),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            403,
        ),
    ];
    for (what, headers, status) in &cases {
        let r = http(f.addr, "POST", "/api/decide", headers, &body).await;
        assert_eq!(r.status, *status, "{what}: {}", r.body);
    }
    for path in ["/api/pending", "/api/history", "/"] {
        assert_eq!(
            http(f.addr, "GET", path, &[], "").await.status,
            401,
            "{path}"
        );
        assert_eq!(
            http(f.addr, "GET", path, &[("Cookie", &wrong_cookie)], "")
                .await
                .status,
            401,
            "{path}"
        );
    }
    assert_eq!(f.broker.pending().len(), 1, "nothing was decided");
    // a script with the bearer token needs no CSRF token (no browser sends it by itself)
    let bearer = format!("Bearer {}", f.token);
    let deny = body.replace("allow_once", "deny");
    let r = http(
        f.addr,
        "POST",
        "/api/decide",
        &[("Authorization", &bearer)],
        &deny,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!asker.join().unwrap().allowed());
    fs::remove_dir_all(&f.dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn another_address_gets_tls_with_a_fingerprint() {
    let dir = std::env::temp_dir().join(format!("cordon-console-{}-tls", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let opts = ConsoleOptions {
        // not loopback, yet always present: the unspecified address
        bind: "0.0.0.0:0".parse().unwrap(),
        approvals_dir: dir.join("approvals"),
        audit_log: None,
        tls_dir: dir.join("console"),
        scrub: Scrubber::default(),
        token: Some("t".repeat(64)),
    };
    let console = Console::bind(opts.clone()).await.unwrap();
    assert!(console.url.starts_with("https://"), "{}", console.url);
    let fp = console.fingerprint.clone().unwrap();
    assert_eq!(fp.len(), 95, "{fp}");
    assert!(console.banner().contains(&fp));
    let addr = console.addr;
    tokio::spawn(console.serve());
    // plain HTTP to a TLS port gets nothing useful
    let port = SocketAddr::new("127.0.0.1".parse().unwrap(), addr.port());
    let plain = http(port, "GET", "/", &[], "").await;
    assert_ne!(plain.status, 200);
    // the same certificate (and fingerprint) after a restart
    let again = Console::bind(opts).await.unwrap();
    assert_eq!(again.fingerprint.as_deref(), Some(fp.as_str()));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_qr_code_is_text() {
    let q = qr_text("http://127.0.0.1:7777/pair?token=abc");
    assert!(q.lines().count() > 10);
    assert!(q.contains('█') || q.contains('▀') || q.contains('▄'));
}
