//! Proxy throughput and connection set-up, side by side with direct loopback, in one run:
//! `cargo bench -p cordon-proxy --bench throughput` (env: BENCH_MIB, default 1024; BENCH_REQS,
//! default 500). A loopback server sends BENCH_MIB MiB per request; the client fetches it
//! directly, through the proxy as plain HTTP, and through a CONNECT tunnel (which starts with
//! a ClientHello naming the allowed host, as every tunnel must). Prints a Markdown table.
#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use cordon_policy::{DomainPattern, Egress};

const NAME: &str = "bench.test";

fn main() {
    let mib: u64 = env_num("BENCH_MIB", 1024);
    let reqs: u64 = env_num("BENCH_REQS", 500);
    let server = start_server();
    let proxy_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = proxy_listener.local_addr().unwrap();
    let policy = Egress {
        allow: vec![DomainPattern::parse(NAME).unwrap()],
        deny: Vec::new(),
        allow_local_destinations: true,
        hosts: vec![(NAME.to_string(), server.ip())],
        ask_unlisted: false,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let _proxy = cordon_proxy::start(
        proxy_listener,
        policy,
        tx,
        cordon_proxy::OnRefusal::Answer,
        None,
    )
    .unwrap();
    std::thread::spawn(move || for _ in rx {});
    let bytes = mib << 20;
    let port = server.port();
    let get_abs =
        format!("GET http://{NAME}:{port}/{bytes} HTTP/1.1\r\nHost: {NAME}:{port}\r\n\r\n");
    let get = format!("GET /{bytes} HTTP/1.1\r\nHost: {NAME}:{port}\r\n\r\n");

    println!("| path | {mib} MiB, best of 3 | throughput | vs direct |");
    println!("|---|---:|---:|---:|");
    let direct = best_of(3, || fetch(server, None, &get, bytes));
    let plain = best_of(3, || fetch(proxy_addr, None, &get_abs, bytes));
    let tunnel = best_of(3, || fetch(proxy_addr, Some(port), &get, bytes));
    for (label, t) in [
        ("direct loopback", direct),
        ("proxy, plain HTTP", plain),
        ("proxy, CONNECT tunnel", tunnel),
    ] {
        let gbps = bytes as f64 / t.as_secs_f64() / 1e9;
        let ratio = direct.as_secs_f64() / t.as_secs_f64();
        println!(
            "| {label} | {:.3} s | {gbps:.2} GB/s | {:.0}% |",
            t.as_secs_f64(),
            ratio * 100.0
        );
    }

    let small_abs = format!("GET http://{NAME}:{port}/16 HTTP/1.1\r\nHost: {NAME}:{port}\r\n\r\n");
    let small = format!("GET /16 HTTP/1.1\r\nHost: {NAME}:{port}\r\n\r\n");
    let direct = median_of(reqs, || fetch(server, None, &small, 16));
    let plain = median_of(reqs, || fetch(proxy_addr, None, &small_abs, 16));
    let tunnel = median_of(reqs, || fetch(proxy_addr, Some(port), &small, 16));
    println!();
    println!("| new connection + 16-byte request ({reqs} each) | median | added by the proxy |");
    println!("|---|---:|---:|");
    for (label, t) in [
        ("direct loopback", direct),
        ("proxy, plain HTTP", plain),
        ("proxy, CONNECT tunnel", tunnel),
    ] {
        let added = t.as_secs_f64() - direct.as_secs_f64();
        println!(
            "| {label} | {:.0} µs | {:.0} µs |",
            t.as_secs_f64() * 1e6,
            added * 1e6
        );
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn best_of(n: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..n).map(|_| f()).min().unwrap()
}

fn median_of(n: u64, mut f: impl FnMut() -> Duration) -> Duration {
    let mut v: Vec<Duration> = (0..n).map(|_| f()).collect();
    v.sort();
    v[v.len() / 2]
}

/// One request on a fresh connection; with `tunnel`, through CONNECT first. Returns the time
/// from connect to the last body byte.
fn fetch(addr: SocketAddr, tunnel: Option<u16>, request: &str, body: u64) -> Duration {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    if let Some(port) = tunnel {
        write!(
            s,
            "CONNECT {NAME}:{port} HTTP/1.1\r\nHost: {NAME}:{port}\r\n\r\n"
        )
        .unwrap();
        read_head(&mut s);
        s.write_all(&client_hello(NAME)).unwrap();
    }
    s.write_all(request.as_bytes()).unwrap();
    let _ = read_head(&mut s);
    let mut left = body;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed with {left} bytes to go");
        left -= n as u64;
    }
    started.elapsed()
}

/// Reads a response head byte by byte (the body follows it on the same stream).
fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "closed during the head");
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    head
}

/// A loopback server: `GET /N` answers N bytes. Before the request it skips a TLS record if
/// one comes first (the tunnel's ClientHello, which it does not otherwise use).
fn start_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || serve(s));
        }
    });
    addr
}

fn serve(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).unwrap_or(0) == 0 {
            return;
        }
        head.push(b[0]);
        if head.len() == 5 && head[0] == 22 {
            let len = u16::from_be_bytes([head[3], head[4]]) as usize;
            let mut rec = vec![0u8; len];
            let _ = s.read_exact(&mut rec);
            head.clear();
        }
    }
    let text = String::from_utf8_lossy(&head);
    let n: u64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.trim_start_matches('/').parse().ok())
        .unwrap_or(0);
    let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n");
    let chunk = vec![b'x'; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        if s.write_all(&chunk[..k]).is_err() {
            return;
        }
        left -= k as u64;
    }
}

/// A minimal TLS 1.3 ClientHello record naming `host` (enough for the proxy's SNI check).
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
