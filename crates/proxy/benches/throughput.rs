//! Proxy throughput and connection set-up, side by side with direct loopback, in one run:
//! `cargo bench -p cordon-proxy --bench throughput` (env: BENCH_MIB, default 1024;
//! BENCH_ROUNDS, default 9; BENCH_REQS, default 500; BENCH_ONLY, one path alone, for perf).
//!
//! A loopback server sends BENCH_MIB MiB per request; one client fetches it directly, through
//! the proxy as plain HTTP, and through a CONNECT tunnel (which starts with a ClientHello
//! naming the allowed host, as every tunnel must). The three paths share the server, the
//! client and their buffer sizes, and are measured interleaved: each round fetches once per
//! path, the order rotating from round to round, so a noisy stretch of machine time falls on
//! all three alike. The ratio is taken per round (proxied against that round's direct
//! transfer), and the medians are reported. CPU time is measured too, per thread group: the
//! client and the server thread each read their own, the proxy's is the rest of the
//! process's, so a ratio below the target can be told apart as CPU-bound or not.
//! Prints Markdown tables.
#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cordon_policy::{DomainPattern, Egress};
#[cfg(target_os = "linux")]
use nix::sys::resource::{getrusage, UsageWho};

const NAME: &str = "bench.test";
/// The size of every read and write, on the client and the server alike.
const BUF: usize = 1 << 20;

/// CPU time (µs) the server threads spent on transfers since the last reset.
static SERVER_CPU: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Direct,
    Plain,
    Tunnel,
}

const PATHS: [Path; 3] = [Path::Direct, Path::Plain, Path::Tunnel];

/// One transfer: wall time, and CPU time of the client, the server and the proxy.
#[derive(Clone, Copy, Default)]
struct Sample {
    wall: Duration,
    client: Duration,
    server: Duration,
    proxy: Duration,
}

struct Setup {
    server: SocketAddr,
    proxy: SocketAddr,
    port: u16,
}

impl Setup {
    fn fetch(&self, path: Path, bytes: u64) -> Duration {
        let port = self.port;
        match path {
            Path::Direct => {
                let get = format!("GET /{bytes} HTTP/1.1\r\nHost: {NAME}:{port}\r\n\r\n");
                fetch(self.server, None, &get, bytes)
            }
            Path::Plain => {
                let get = format!(
                    "GET http://{NAME}:{port}/{bytes} HTTP/1.1\r\nHost: {NAME}:{port}\r\n\r\n"
                );
                fetch(self.proxy, None, &get, bytes)
            }
            Path::Tunnel => {
                let get = format!("GET /{bytes} HTTP/1.1\r\nHost: {NAME}:{port}\r\n\r\n");
                fetch(self.proxy, Some(port), &get, bytes)
            }
        }
    }

    fn measure(&self, path: Path, bytes: u64) -> Sample {
        SERVER_CPU.store(0, Ordering::SeqCst);
        let process = cpu(UsageWho::RUSAGE_SELF);
        let client = cpu(UsageWho::RUSAGE_THREAD);
        let wall = self.fetch(path, bytes);
        let client = cpu(UsageWho::RUSAGE_THREAD) - client;
        // The server thread adds its time when its connection ends, just after the client
        // has read the last byte.
        std::thread::sleep(Duration::from_millis(50));
        let process = cpu(UsageWho::RUSAGE_SELF) - process;
        let server = Duration::from_micros(SERVER_CPU.load(Ordering::SeqCst));
        Sample {
            wall,
            client,
            server,
            proxy: process.saturating_sub(client + server),
        }
    }
}

fn main() {
    let mib: u64 = env_num("BENCH_MIB", 1024);
    let rounds: usize = env_num("BENCH_ROUNDS", 9) as usize;
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
        cordon_proxy::Clients::Any,
    )
    .unwrap();
    std::thread::spawn(move || for _ in rx {});
    let setup = Setup {
        server,
        proxy: proxy_addr,
        port: server.port(),
    };
    let bytes = mib << 20;

    // BENCH_ONLY=direct|plain|tunnel: that path alone, BENCH_ROUNDS times, nothing printed
    // (for profiling one path with `perf`).
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        let path = match only.as_str() {
            "direct" => Path::Direct,
            "plain" => Path::Plain,
            "tunnel" => Path::Tunnel,
            other => panic!("BENCH_ONLY={other}: direct, plain or tunnel"),
        };
        for _ in 0..rounds {
            setup.fetch(path, bytes);
        }
        return;
    }

    // Warm up every path once (page cache of the binary, TCP autotuning, proxy threads).
    for path in PATHS {
        setup.fetch(path, bytes.min(64 << 20));
    }

    println!("| round | direct loopback | plain HTTP through the proxy | CONNECT tunnel |");
    println!("|---|---:|---:|---:|");
    let mut samples: Vec<[Sample; 3]> = Vec::new();
    for round in 0..rounds {
        let mut s = [Sample::default(); 3];
        for k in 0..3 {
            let i = (round + k) % 3;
            s[i] = setup.measure(PATHS[i], bytes);
        }
        let rate = |x: &Sample| bytes as f64 / x.wall.as_secs_f64() / 1e9;
        let ratio = |x: &Sample| s[0].wall.as_secs_f64() / x.wall.as_secs_f64() * 100.0;
        println!(
            "| {} | {:.2} GB/s | {:.2} GB/s ({:.0}%) | {:.2} GB/s ({:.0}%) |",
            round + 1,
            rate(&s[0]),
            rate(&s[1]),
            ratio(&s[1]),
            rate(&s[2]),
            ratio(&s[2]),
        );
        samples.push(s);
    }
    let rates: Vec<Vec<f64>> = (0..3)
        .map(|i| {
            samples
                .iter()
                .map(|s| bytes as f64 / s[i].wall.as_secs_f64() / 1e9)
                .collect()
        })
        .collect();
    let ratios: Vec<Vec<f64>> = (1..3)
        .map(|i| {
            samples
                .iter()
                .map(|s| s[0].wall.as_secs_f64() / s[i].wall.as_secs_f64() * 100.0)
                .collect()
        })
        .collect();
    println!(
        "| median | {:.2} GB/s | {:.2} GB/s ({:.0}%) | {:.2} GB/s ({:.0}%) |",
        median(&rates[0]),
        median(&rates[1]),
        median(&ratios[0]),
        median(&rates[2]),
        median(&ratios[1]),
    );

    // CPU per GiB moved, medians over the rounds; "busy" is all CPU time over wall time
    // (2.0 means two cores busy for the whole transfer).
    println!();
    println!("| CPU time per GiB (median) | client | server | proxy | busy cores |");
    println!("|---|---:|---:|---:|---:|");
    let gib = bytes as f64 / f64::from(1u32 << 30);
    for (i, label) in ["direct loopback", "plain HTTP", "CONNECT tunnel"]
        .iter()
        .enumerate()
    {
        let per = |f: fn(&Sample) -> Duration| {
            let v: Vec<f64> = samples
                .iter()
                .map(|s| f(&s[i]).as_secs_f64() * 1e3 / gib)
                .collect();
            median(&v)
        };
        let busy: Vec<f64> = samples
            .iter()
            .map(|s| {
                let x = &s[i];
                (x.client + x.server + x.proxy).as_secs_f64() / x.wall.as_secs_f64()
            })
            .collect();
        println!(
            "| {label} | {:.0} ms | {:.0} ms | {:.0} ms | {:.2} |",
            per(|x| x.client),
            per(|x| x.server),
            per(|x| x.proxy),
            median(&busy),
        );
    }

    // Connection set-up, interleaved the same way.
    let mut setups: [Vec<f64>; 3] = Default::default();
    for r in 0..reqs as usize {
        for k in 0..3 {
            let i = (r + k) % 3;
            setups[i].push(setup.fetch(PATHS[i], 16).as_secs_f64() * 1e6);
        }
    }
    let direct = median(&setups[0]);
    println!();
    println!("| new connection + 16-byte request ({reqs} each) | median | added by the proxy |");
    println!("|---|---:|---:|");
    for (i, label) in [
        "direct loopback",
        "proxy, plain HTTP",
        "proxy, CONNECT tunnel",
    ]
    .iter()
    .enumerate()
    {
        let m = median(&setups[i]);
        println!("| {label} | {m:.0} µs | {:.0} µs |", m - direct);
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// User plus system CPU time of the calling thread or the whole process.
#[cfg(target_os = "linux")]
fn cpu(who: UsageWho) -> Duration {
    let u = getrusage(who).unwrap();
    let us = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    us(u.user_time()) + us(u.system_time())
}

/// Per-thread CPU time is Linux's (RUSAGE_THREAD); elsewhere the bench still measures wall
/// time, and its CPU columns read zero.
#[cfg(not(target_os = "linux"))]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
enum UsageWho {
    RUSAGE_SELF,
    RUSAGE_THREAD,
}

#[cfg(not(target_os = "linux"))]
fn cpu(_: UsageWho) -> Duration {
    Duration::ZERO
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
    let mut buf = vec![0u8; BUF];
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
            std::thread::spawn(move || {
                let started = cpu(UsageWho::RUSAGE_THREAD);
                serve(s);
                let used = cpu(UsageWho::RUSAGE_THREAD) - started;
                SERVER_CPU.fetch_add(used.as_micros() as u64, Ordering::SeqCst);
            });
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
    let chunk = vec![b'x'; BUF];
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
