//! Bulk transfers through the proxy arrive intact, in both directions at once, and the audit
//! decision counts every byte: the CONNECT tunnel (spliced in the kernel on Linux, copied by tokio elsewhere) and plain HTTP.
#![allow(clippy::unwrap_used)] // tests

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use cordon_policy::{DomainPattern, Egress};
use cordon_proxy::{Decision, OnRefusal, Outcome, Proxy};

const NAME: &str = "bulk.test";
const DOWN: usize = 48 << 20;
const UP: usize = 8 << 20;

/// Bytes that differ from position to position (seeded), so a dropped, repeated or
/// reordered chunk shows.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn proxy() -> (Proxy, SocketAddr, TcpListener, mpsc::Receiver<Decision>) {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let policy = Egress {
        allow: vec![DomainPattern::parse(NAME).unwrap()],
        deny: Vec::new(),
        allow_local_destinations: true,
        hosts: vec![(NAME.into(), "127.0.0.1".parse().unwrap())],
        ask_unlisted: false,
    };
    let (tx, rx) = mpsc::channel();
    let proxy = cordon_proxy::start(
        listener,
        policy,
        tx,
        OnRefusal::Answer,
        None,
        cordon_proxy::Clients::Any,
    )
    .unwrap();
    (proxy, addr, upstream, rx)
}

fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "closed during the head");
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// A minimal TLS ClientHello record naming `host`.
fn client_hello(host: &str) -> Vec<u8> {
    let mut sni = Vec::new();
    sni.extend(((host.len() + 3) as u16).to_be_bytes());
    sni.push(0);
    sni.extend((host.len() as u16).to_be_bytes());
    sni.extend(host.as_bytes());
    let mut exts = vec![0x00, 0x00];
    exts.extend((sni.len() as u16).to_be_bytes());
    exts.extend(sni);
    let mut hello = vec![0x03, 0x03];
    hello.extend([7u8; 32]);
    hello.push(0);
    hello.extend([0x00, 0x02, 0x13, 0x01, 0x01, 0x00]);
    hello.extend((exts.len() as u16).to_be_bytes());
    hello.extend(exts);
    let mut hs = vec![1u8];
    hs.extend(&(hello.len() as u32).to_be_bytes()[1..]);
    hs.extend(hello);
    let mut rec = vec![22u8, 0x03, 0x01];
    rec.extend((hs.len() as u16).to_be_bytes());
    rec.extend(hs);
    rec
}

#[test]
fn a_tunnel_moves_bulk_both_ways_intact_and_counts_it() {
    let (_proxy, addr, upstream, decisions) = proxy();
    let port = upstream.local_addr().unwrap().port();
    let hello = client_hello(NAME);
    let down = pattern(1, DOWN);
    let up = pattern(2, UP);

    let (hello_len, down_sent) = (hello.len(), down.clone());
    let server = thread::spawn(move || {
        let (mut s, _) = upstream.accept().unwrap();
        let mut got = vec![0u8; hello_len];
        s.read_exact(&mut got).unwrap();
        let mut writer = s.try_clone().unwrap();
        let sending = thread::spawn(move || writer.write_all(&down_sent).unwrap());
        // Everything the client sent, up to its half-close.
        let mut received = Vec::new();
        s.read_to_end(&mut received).unwrap();
        sending.join().unwrap();
        // Then this side is done too.
        s.shutdown(Shutdown::Write).unwrap();
        (got, received)
    });

    let mut c = TcpStream::connect(addr).unwrap();
    write!(
        c,
        "CONNECT {NAME}:{port} HTTP/1.1\r\nHost: {NAME}:{port}\r\n\r\n"
    )
    .unwrap();
    assert!(read_head(&mut c).starts_with("HTTP/1.1 200"));
    c.write_all(&hello).unwrap();
    let mut writer = c.try_clone().unwrap();
    let up_sent = up.clone();
    let sending = thread::spawn(move || {
        writer.write_all(&up_sent).unwrap();
        // The half-close must reach the server, and the other direction go on.
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut received = Vec::new();
    c.read_to_end(&mut received).unwrap();
    sending.join().unwrap();

    let (got_hello, got_up) = server.join().unwrap();
    assert_eq!(got_hello, hello);
    assert!(
        got_up == up,
        "upstream received {} bytes, not the {UP} sent",
        got_up.len()
    );
    assert!(
        received == down,
        "client received {} bytes, not the {DOWN} sent",
        received.len()
    );

    let d = decisions.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        (d.method.as_str(), d.verdict),
        ("CONNECT", Outcome::Allowed)
    );
    assert_eq!(d.bytes_up, (hello.len() + UP) as u64);
    assert_eq!(d.bytes_down, DOWN as u64);
}

#[test]
fn a_tunnel_ends_when_the_server_resets_it() {
    let (_proxy, addr, upstream, decisions) = proxy();
    let port = upstream.local_addr().unwrap().port();
    let hello = client_hello(NAME);
    let hello_len = hello.len();
    let server = thread::spawn(move || {
        let (mut s, _) = upstream.accept().unwrap();
        let mut got = vec![0u8; hello_len];
        s.read_exact(&mut got).unwrap();
        s.write_all(b"partial").unwrap();
        // Unread bytes pending at close make the kernel send a reset.
        thread::sleep(Duration::from_millis(100));
    });
    let mut c = TcpStream::connect(addr).unwrap();
    write!(c, "CONNECT {NAME}:{port} HTTP/1.1\r\n\r\n").unwrap();
    assert!(read_head(&mut c).starts_with("HTTP/1.1 200"));
    c.write_all(&hello).unwrap();
    c.write_all(b"more than the server reads").unwrap();
    server.join().unwrap();
    // The client's direction never ended by itself, yet the tunnel ends.
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut rest = Vec::new();
    let ended = c.read_to_end(&mut rest);
    assert!(
        !matches!(&ended, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            || e.kind() == std::io::ErrorKind::TimedOut),
        "the tunnel stayed open: {ended:?}"
    );
    drop(c);
    let d = decisions.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(d.verdict, Outcome::Allowed);
    assert!(d.bytes_up >= hello.len() as u64);
}

#[test]
fn plain_http_moves_a_bulk_body_intact_and_counts_it() {
    let (_proxy, addr, upstream, decisions) = proxy();
    let port = upstream.local_addr().unwrap().port();
    let body = pattern(3, DOWN);
    let sent = body.clone();
    let server = thread::spawn(move || {
        let (mut s, _) = upstream.accept().unwrap();
        let head = read_head(&mut s);
        let head_len = head.len();
        let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", sent.len());
        s.write_all(answer.as_bytes()).unwrap();
        s.write_all(&sent).unwrap();
        (head, head_len, answer.len())
    });
    let mut c = TcpStream::connect(addr).unwrap();
    write!(
        c,
        "GET http://{NAME}:{port}/big HTTP/1.1\r\nHost: {NAME}:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let head = read_head(&mut c);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {DOWN}")),
        "{head}"
    );
    let mut received = vec![0u8; DOWN];
    c.read_exact(&mut received).unwrap();
    assert!(received == body, "the body arrived changed");
    let (request, request_len, answer_len) = server.join().unwrap();
    assert!(request.starts_with("GET /big HTTP/1.1\r\n"), "{request}");
    let d = decisions.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!((d.method.as_str(), d.verdict), ("GET", Outcome::Allowed));
    assert_eq!(d.bytes_up, request_len as u64);
    assert_eq!(d.bytes_down, (answer_len + DOWN) as u64);
}
