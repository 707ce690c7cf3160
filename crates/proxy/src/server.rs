//! The proxy at work: accepts the sandbox's connections on the listener cordon was handed,
//! decides each request (every request of a keep-alive connection on its own), resolves
//! allowed names itself, and relays bytes. It knows nothing of namespaces: the listener it
//! serves happens to live in the sandbox's network namespace, the sockets it opens upstream in
//! the host's.

use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cordon_policy::{decide, local_class, Egress, Host, Verdict};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::counted::{Counted, Prefixed, Traffic};
use crate::http::{connect_target, forward_target, Destination};
use crate::refusal::{Refusal, Unreachable};
use crate::sni;

/// How long an upstream connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send its ClientHello after CONNECT.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Each direction of a tunnel copies through a buffer this large (tokio's default of 8 KiB
/// costs a syscall pair per 8 KiB on bulk downloads).
pub(crate) const RELAY_BUFFER: usize = 256 << 10;
/// A TLS record is at most 2^14 bytes of plaintext plus a small expansion.
const MAX_RECORD: usize = 5 + (1 << 14) + 256;

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The policy allowed it and it was relayed.
    Allowed,
    /// The policy refused it; nothing was sent upstream.
    Refused,
    /// The policy allowed it, but the destination could not be reached.
    Failed,
}

/// One decision, for the audit log: plain data the caller turns into an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `CONNECT`, `GET`, …
    pub method: String,
    /// The destination as the client named it (lowercased).
    pub host: String,
    pub port: u16,
    pub verdict: Outcome,
    /// The allow entry that matched (allowed and failed requests).
    pub rule: Option<String>,
    /// Why it was refused or failed: a refusal code, then a colon and the explanation.
    pub reason: Option<String>,
    /// The upstream address used (allowed and failed requests).
    pub address: Option<SocketAddr>,
    /// Bytes sent to the destination, and received from it.
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub duration: Duration,
}

/// A running proxy; stops (dropping every connection) when stopped or dropped.
pub struct Proxy {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    /// Stops serving; waits briefly for connections to wind down.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_millis(200));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What to do with a request once it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRefusal {
    /// Answer 403 (or 400) with the explanation.
    Answer,
    /// Never answer: the caller kills the sandbox on the reported refusal, and the client
    /// must not act on an answer first.
    Hold,
}

/// A name off the allow-list, held while a human is asked (`network.unlisted = "ask"`).
/// Send `true` on `reply` to let it through; dropping `reply` refuses it.
#[derive(Debug)]
pub struct Ask {
    pub host: String,
    pub port: u16,
    pub reply: tokio::sync::oneshot::Sender<bool>,
}

/// Who may use the proxy. On Linux its listener lives in the sandbox's own network
/// namespace, so every client is the sandbox's ([`Clients::Any`]). On Windows loopback is
/// shared by every process of the machine, other sandboxes' included, so each connection is
/// checked to come from this run ([`Clients::Checked`]) before a byte of it is read.
#[derive(Clone)]
pub enum Clients {
    Any,
    Checked(Arc<dyn ClientCheck>),
}

/// The check of [`Clients::Checked`].
pub trait ClientCheck: Send + Sync {
    /// `Ok` if the connection from `peer` (the client's end) to `local` (the proxy's end)
    /// belongs to this run; otherwise why not. It is called once per connection, on a
    /// blocking thread.
    fn admit(&self, peer: SocketAddr, local: SocketAddr) -> Result<(), String>;
}

/// `X-Cordon-Refused` of a connection from outside the run (also its audit reason prefix).
pub const FOREIGN_CLIENT: &str = "foreign-client";

/// Serves `listener` with `policy` on a small runtime of its own (two worker threads), and
/// sends every decision on `decisions`. With `policy.ask_unlisted`, names off the list are
/// sent on `asks` and held for the answer. Only `clients` are served. Returns once the proxy
/// is accepting connections.
pub fn start(
    listener: std::net::TcpListener,
    policy: Egress,
    decisions: mpsc::Sender<Decision>,
    on_refusal: OnRefusal,
    asks: Option<mpsc::Sender<Ask>>,
    clients: Clients,
) -> io::Result<Proxy> {
    listener.set_nonblocking(true)?;
    let ask_unlisted = policy.ask_unlisted;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cordon-proxy")
        .enable_io()
        .enable_time()
        .build()?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    let shared = Arc::new(Shared {
        policy,
        decisions,
        on_refusal,
        asks: asks.filter(|_| ask_unlisted),
        clients,
    });
    runtime.spawn(accept_loop(listener, shared));
    Ok(Proxy {
        runtime: Some(runtime),
    })
}

struct Shared {
    policy: Egress,
    decisions: mpsc::Sender<Decision>,
    on_refusal: OnRefusal,
    asks: Option<mpsc::Sender<Ask>>,
    clients: Clients,
}

type Body = BoxBody<Bytes, hyper::Error>;

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, shared.clone()));
            }
            // Out of descriptors or a connection reset while queued: try again shortly.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let started = Instant::now();
    if let Err(why) = admitted(&stream, &shared.clients).await {
        turn_away(stream, Ticket::new(shared, "TCP", started), why).await;
        return;
    }
    let for_service = shared.clone();
    let service = hyper::service::service_fn(move |req| {
        let shared = for_service.clone();
        async move { Ok::<_, Infallible>(handle(req, shared).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    // hyper answers a request it cannot parse with a bare 400 before any decision of ours;
    // it is still a refusal, and the audit log says so.
    let unparsed = served
        .err()
        .filter(|e| e.is_parse() || e.is_parse_too_large());
    if let Some(e) = unparsed {
        let mut ticket = Ticket::new(shared, "HTTP", started);
        ticket.host = "(unparsed request)".into();
        let reason =
            format!("malformed-request: not a well-formed HTTP/1.1 request ({e}); answered 400");
        ticket.report(Outcome::Refused, Some(reason), None, (0, 0));
    }
}

/// Whether `stream` comes from a client the proxy serves.
async fn admitted(stream: &TcpStream, clients: &Clients) -> Result<(), String> {
    let Clients::Checked(check) = clients else {
        return Ok(());
    };
    let ends = stream
        .peer_addr()
        .and_then(|p| Ok((p, stream.local_addr()?)));
    let (peer, local) = ends.map_err(|e| format!("the connection's addresses: {e}"))?;
    let check = check.clone();
    tokio::task::spawn_blocking(move || check.admit(peer, local))
        .await
        .unwrap_or_else(|e| Err(format!("the client check failed: {e}")))
}

/// Answers a connection from outside the run with a 403 that says so, unread, and logs it.
async fn turn_away(mut stream: TcpStream, mut ticket: Ticket, why: String) {
    ticket.host = "(a client outside this run)".into();
    let body = format!(
        "cordon: this proxy serves one sandboxed run, and this connection is not from it ({why}).\n\
         Each run's proxy admits only that run's processes; use the proxy named in your own HTTP_PROXY.\n"
    );
    let answer = format!(
        "HTTP/1.1 403 Forbidden\r\nX-Cordon-Refused: {FOREIGN_CLIENT}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
    // Closing with the client's request still unread would reset the connection, and the
    // client might never see the answer: read (and drop) what it sends, briefly.
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), async {
        let mut read = 0usize;
        while read < (64 << 10) {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
    ticket.report(
        Outcome::Refused,
        Some(format!("{FOREIGN_CLIENT}: {why}; answered 403 unread")),
        None,
        (0, 0),
    );
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Response<Body> {
    let hold = shared.on_refusal == OnRefusal::Hold;
    let ticket = Ticket::new(shared, req.method().as_str(), Instant::now());
    let resp = if req.method() == Method::CONNECT {
        connect(req, ticket).await
    } else {
        forward(req, ticket).await
    };
    if hold && resp.headers().contains_key("x-cordon-refused") {
        // Already reported; the sandbox is being killed for it.
        std::future::pending::<()>().await;
    }
    resp
}

/// One request's bookkeeping until its decision is reported.
struct Ticket {
    shared: Arc<Shared>,
    method: String,
    host: String,
    port: u16,
    started: Instant,
    rule: Option<String>,
}

impl Ticket {
    /// A request not yet tied to a destination (until then, `host` is the raw target).
    fn new(shared: Arc<Shared>, method: &str, started: Instant) -> Ticket {
        Ticket {
            shared,
            method: method.to_string(),
            host: String::new(),
            port: 0,
            started,
            rule: None,
        }
    }

    fn name(&mut self, dest: &Destination) {
        self.host = dest.name.clone();
        self.port = dest.port;
    }

    fn report(
        &self,
        verdict: Outcome,
        reason: Option<String>,
        address: Option<SocketAddr>,
        traffic: (u64, u64),
    ) {
        let _ = self.shared.decisions.send(Decision {
            method: self.method.clone(),
            host: self.host.clone(),
            port: self.port,
            verdict,
            rule: self.rule.clone(),
            reason,
            address,
            bytes_up: traffic.0,
            bytes_down: traffic.1,
            duration: self.started.elapsed(),
        });
    }

    fn refuse(&self, refusal: Refusal) -> Response<Body> {
        let reason = format!("{}: {}", refusal.code(), refusal.why(&self.host));
        self.report(Outcome::Refused, Some(reason), None, (0, 0));
        let body = refusal.body(&self.method, &self.host, self.port);
        let mut resp = text_response(refusal.status(), body);
        resp.headers_mut()
            .insert("x-cordon-refused", HeaderValue::from_static(refusal.code()));
        resp
    }

    fn unreachable(&self, problem: Unreachable, address: Option<SocketAddr>) -> Response<Body> {
        self.report(Outcome::Failed, Some(problem.why()), address, (0, 0));
        text_response(502, problem.body(&self.method, &self.host, self.port))
    }

    /// Names the destination, decides on it and resolves it: the vetted addresses, or the
    /// answer the client gets instead (already reported).
    async fn admit(&mut self, dest: &Destination) -> Result<Vec<SocketAddr>, Response<Body>> {
        self.name(dest);
        match self.decide(dest) {
            Ok(()) => {}
            Err(Refusal::NotListed) if self.approved(dest).await => {
                self.rule = Some("approved by a human".into());
            }
            Err(r) => return Err(self.refuse(r)),
        }
        match resolve(&self.shared.policy, dest).await {
            Ok(a) => Ok(a),
            Err(Stop::Refused(r)) => Err(self.refuse(r)),
            Err(Stop::Unreachable(u)) => Err(self.unreachable(u, None)),
        }
    }

    /// Asks a human about a name off the list, when the policy says so; false otherwise.
    async fn approved(&self, dest: &Destination) -> bool {
        let Some(asks) = &self.shared.asks else {
            return false;
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let ask = Ask {
            host: dest.name.clone(),
            port: dest.port,
            reply,
        };
        asks.send(ask).is_ok() && answer.await.unwrap_or(false)
    }

    /// The policy's verdict on a destination: the matching allow rule, or the refusal.
    fn decide(&mut self, dest: &Destination) -> Result<(), Refusal> {
        let policy = &self.shared.policy;
        match decide(&policy.allow, &policy.deny, &dest.name) {
            Verdict::Allowed(rule) => {
                self.rule = Some(rule.to_string());
                Ok(())
            }
            Verdict::Denied(rule) => Err(Refusal::Denied(rule.to_string())),
            Verdict::NotListed => match dest.host {
                Host::Address(_) => Err(Refusal::AddressNotListed),
                Host::Name(_) => Err(Refusal::NotListed),
            },
        }
    }
}

fn text_response(status: u16, body: String) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn full(text: String) -> Body {
    Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed()
}

fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// Why a destination gets no connection: the policy, or the network.
enum Stop {
    Refused(Refusal),
    Unreachable(Unreachable),
}

/// The addresses an allowed destination may be reached at: an address literal, a pinned
/// name, or what the host's resolver says; local addresses only if the policy allows them.
/// The proxy connects to exactly these (no second lookup that could answer differently).
async fn resolve(policy: &Egress, dest: &Destination) -> Result<Vec<SocketAddr>, Stop> {
    let candidates: Vec<IpAddr> = match &dest.host {
        Host::Address(ip) => vec![*ip],
        Host::Name(name) => match policy.pinned(name) {
            Some(ip) => vec![ip],
            None => tokio::net::lookup_host((name.as_str(), dest.port))
                .await
                .map_err(|e| Stop::Unreachable(Unreachable::NameNotFound(e.to_string())))?
                .map(|a| a.ip())
                .collect(),
        },
    };
    vet(policy, &candidates, dest.port)
}

fn vet(policy: &Egress, candidates: &[IpAddr], port: u16) -> Result<Vec<SocketAddr>, Stop> {
    let mut first_local = None;
    let mut out = Vec::new();
    for ip in candidates {
        match local_class(*ip) {
            Some(class) if !policy.allow_local_destinations => {
                first_local.get_or_insert((*ip, class));
            }
            _ => out.push(SocketAddr::new(*ip, port)),
        }
    }
    match (out.is_empty(), first_local) {
        (false, _) => Ok(out),
        (true, Some((address, class))) => Err(Stop::Refused(Refusal::Local { address, class })),
        (true, None) => Err(Stop::Unreachable(Unreachable::NameNotFound(
            "no addresses".into(),
        ))),
    }
}

/// Connects to the first address that answers.
async fn connect_any(
    addrs: &[SocketAddr],
) -> Result<(TcpStream, SocketAddr), (Unreachable, Option<SocketAddr>)> {
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok((s, *addr));
            }
            Ok(Err(e)) => last = Some((e.to_string(), *addr)),
            Err(_) => last = Some(("timed out".to_string(), *addr)),
        }
    }
    let (e, a) = match last {
        Some((e, a)) => (e, Some(a)),
        None => ("no addresses".to_string(), None),
    };
    Err((Unreachable::Connect(e), a))
}

/// CONNECT: decide on the host, resolve, answer 200, then check the ClientHello's SNI
/// before anything reaches the destination.
async fn connect(req: Request<Incoming>, mut ticket: Ticket) -> Response<Body> {
    let target = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_default();
    ticket.host = target.clone();
    let dest = match connect_target(&target) {
        Ok(d) => d,
        Err(m) => return ticket.refuse(Refusal::Malformed(m)),
    };
    let addrs = match ticket.admit(&dest).await {
        Ok(a) => a,
        Err(answer) => return answer,
    };
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        // Relay on the client's own socket (plus whatever hyper had read past the CONNECT
        // head), not through hyper's wrapper: a third fewer copies on bulk transfers.
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let mut client = Prefixed {
                    prefix: parts.read_buf,
                    inner: parts.io.into_inner(),
                };
                if let Some(open) = open_tunnel(&mut client, &dest, &addrs, &ticket).await {
                    socket_tunnel(client, open, ticket).await;
                }
            }
            Err(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                if let Some(open) = open_tunnel(&mut client, &dest, &addrs, &ticket).await {
                    copy_tunnel(client, open, ticket).await;
                }
            }
        }
    });
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::OK;
    resp
}

/// An upstream connection whose ClientHello passed the SNI check.
struct OpenTunnel {
    upstream: TcpStream,
    address: SocketAddr,
    /// The ClientHello, not yet sent upstream.
    hello: Vec<u8>,
}

/// Reads the ClientHello, checks its SNI, and only then connects upstream: a refused
/// tunnel never reaches the destination.
async fn open_tunnel<C>(
    client: &mut C,
    dest: &Destination,
    addrs: &[SocketAddr],
    ticket: &Ticket,
) -> Option<OpenTunnel>
where
    C: tokio::io::AsyncRead + Unpin,
{
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, first_record(client)).await {
        Ok(Ok(h)) => h,
        _ => Vec::new(),
    };
    if let Err(r) = check_server_name(dest, &hello) {
        ticket.refuse(r);
        return None;
    }
    match connect_any(addrs).await {
        Ok((upstream, address)) => Some(OpenTunnel {
            upstream,
            address,
            hello,
        }),
        Err((u, a)) => {
            ticket.report(Outcome::Failed, Some(u.why()), a, (0, 0));
            None
        }
    }
}

/// Relays a tunnel whose client side is a plain socket (with splice(2) on Linux).
async fn socket_tunnel(client: Prefixed<TcpStream>, open: OpenTunnel, ticket: Ticket) {
    let OpenTunnel {
        mut upstream,
        address,
        hello,
    } = open;
    let relayed = Relayed::new(ticket, address);
    let traffic = relayed.traffic.clone();
    let mut early = hello;
    early.extend_from_slice(&client.prefix);
    if upstream.write_all(&early).await.is_ok() {
        traffic
            .up
            .fetch_add(early.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let _ = crate::relay::relay(client.inner, upstream, traffic).await;
    }
}

/// Relays a tunnel through userspace buffers (when hyper's connection is not a bare socket).
async fn copy_tunnel<C>(mut client: C, open: OpenTunnel, ticket: Ticket)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let relayed = Relayed::new(ticket, open.address);
    let mut upstream = Counted::new(open.upstream, relayed.traffic.clone());
    if upstream.write_all(&open.hello).await.is_ok() {
        let _ = tokio::io::copy_bidirectional_with_sizes(
            &mut client,
            &mut upstream,
            RELAY_BUFFER,
            RELAY_BUFFER,
        )
        .await;
    }
}

/// An allowed request being relayed. Its decision is reported when this is dropped: when
/// the transfer ends, and also when the proxy stops mid-transfer (the runtime drops the
/// task), so no allowed connection goes unlogged.
struct Relayed {
    ticket: Ticket,
    address: SocketAddr,
    traffic: Arc<Traffic>,
}

impl Relayed {
    fn new(ticket: Ticket, address: SocketAddr) -> Relayed {
        Relayed {
            ticket,
            address,
            traffic: Arc::new(Traffic::default()),
        }
    }
}

impl Drop for Relayed {
    fn drop(&mut self) {
        let totals = self.traffic.totals();
        self.ticket
            .report(Outcome::Allowed, None, Some(self.address), totals);
    }
}

/// Reads the first TLS record (header and body), or whatever arrived if it is not one.
async fn first_record<C: tokio::io::AsyncRead + Unpin>(client: &mut C) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 5];
    client.read_exact(&mut buf).await?;
    if buf[0] != 22 {
        return Ok(buf);
    }
    let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    if 5 + len > MAX_RECORD {
        return Ok(buf);
    }
    buf.resize(5 + len, 0);
    client.read_exact(&mut buf[5..]).await?;
    Ok(buf)
}

/// A tunnel to a name must carry TLS for that same name; one to an allowed address literal
/// has no name to check.
fn check_server_name(dest: &Destination, hello: &[u8]) -> Result<(), Refusal> {
    if hello.first() != Some(&22) {
        return Err(Refusal::NotTls);
    }
    let Host::Name(name) = &dest.host else {
        return Ok(());
    };
    match sni::server_name(hello) {
        None => Err(Refusal::NoServerName),
        Some(sni) if Host::parse(&sni).as_ref() == Some(&Host::Name(name.clone())) => Ok(()),
        Some(sni) => Err(Refusal::ServerNameMismatch(sni)),
    }
}

/// Plain HTTP: the absolute URL and Host header must agree; the request goes upstream in
/// origin form on a connection of its own, so the next request is decided afresh.
async fn forward(mut req: Request<Incoming>, mut ticket: Ticket) -> Response<Body> {
    let target = req.uri().to_string();
    ticket.host = target.clone();
    let hosts: Result<Vec<&str>, _> = req
        .headers()
        .get_all(HOST)
        .iter()
        .map(|v| v.to_str())
        .collect();
    let parsed = match hosts {
        Ok(h) => forward_target(&target, &h),
        Err(_) => Err(crate::http::Malformed::BadHost("(not text)".into())),
    };
    let (dest, path) = match parsed {
        Ok(p) => p,
        Err(m) => return ticket.refuse(Refusal::Malformed(m)),
    };
    let addrs = match ticket.admit(&dest).await {
        Ok(a) => a,
        Err(answer) => return answer,
    };
    let (stream, address) = match connect_any(&addrs).await {
        Ok(c) => c,
        Err((u, a)) => return ticket.unreachable(u, a),
    };
    let traffic = Arc::new(Traffic::default());
    let io = TokioIo::new(Counted::new(stream, traffic.clone()));
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(io).await {
        Ok(pair) => pair,
        Err(e) => return ticket.unreachable(Unreachable::Upstream(e.to_string()), Some(address)),
    };
    let Ok(origin) = path.parse::<hyper::Uri>() else {
        return ticket.refuse(Refusal::Malformed(crate::http::Malformed::NotAbsolute));
    };
    *req.uri_mut() = origin;
    strip_hop_by_hop(req.headers_mut());
    let authority = if dest.port == 80 {
        dest.name.clone()
    } else {
        format!("{}:{}", dest.name, dest.port)
    };
    if let Ok(v) = HeaderValue::from_str(&authority) {
        req.headers_mut().insert(HOST, v);
    }
    let response = sender.send_request(req);
    // The decision is reported when the upstream connection ends: after the whole body.
    let relayed = Relayed {
        ticket,
        address,
        traffic,
    };
    tokio::spawn(async move {
        let _ = conn.await;
        drop(relayed);
    });
    match response.await {
        Ok(mut resp) => {
            strip_hop_by_hop(resp.headers_mut());
            resp.map(|b| b.boxed())
        }
        Err(e) => text_response(
            502,
            Unreachable::Upstream(e.to_string()).body("GET", &authority, dest.port),
        ),
    }
}

/// Headers that describe one hop (RFC 9110 §7.6.1), including any the Connection header
/// names: they must not travel on to the next hop.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in [
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "upgrade",
    ] {
        headers.remove(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(name: &str) -> Destination {
        connect_target(&format!("{name}:443")).unwrap()
    }

    #[test]
    fn local_addresses_need_the_policy() {
        let mut policy = Egress::default();
        let local: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "10.1.2.3".parse().unwrap()];
        assert!(matches!(
            vet(&policy, &local, 80),
            Err(Stop::Refused(Refusal::Local {
                class: "loopback",
                ..
            }))
        ));
        let mixed: Vec<IpAddr> = vec![
            "10.1.2.3".parse().unwrap(),
            "93.184.216.34".parse().unwrap(),
        ];
        let ok = vet(&policy, &mixed, 80).ok().unwrap();
        assert_eq!(
            ok,
            vec![SocketAddr::from(([93, 184, 216, 34], 80))],
            "only the public address is used"
        );
        policy.allow_local_destinations = true;
        assert_eq!(vet(&policy, &local, 80).ok().unwrap().len(), 2);
    }

    #[test]
    fn tunnels_must_carry_tls_for_the_same_name() {
        let hello = crate::sni::tests::client_hello(&["allowed.example"]);
        assert_eq!(check_server_name(&dest("allowed.example"), &hello), Ok(()));
        assert_eq!(check_server_name(&dest("ALLOWED.example."), &hello), Ok(()));
        assert_eq!(
            check_server_name(&dest("other.example"), &hello),
            Err(Refusal::ServerNameMismatch("allowed.example".into()))
        );
        let anonymous = crate::sni::tests::client_hello(&[]);
        assert_eq!(
            check_server_name(&dest("allowed.example"), &anonymous),
            Err(Refusal::NoServerName)
        );
        assert_eq!(
            check_server_name(&dest("allowed.example"), b"SSH-2.0-x\r\n"),
            Err(Refusal::NotTls)
        );
        assert_eq!(
            check_server_name(&dest("allowed.example"), b""),
            Err(Refusal::NotTls)
        );
        // An allowed address literal has no name to compare.
        assert_eq!(check_server_name(&dest("10.0.0.5"), &anonymous), Ok(()));
    }

    #[test]
    fn a_tunnel_cut_off_by_stop_is_still_reported() {
        use std::io::{Read, Write};
        let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = upstream.local_addr().unwrap().port();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let policy = Egress {
            allow: vec![cordon_policy::DomainPattern::parse("t.test").unwrap()],
            deny: Vec::new(),
            allow_local_destinations: true,
            hosts: vec![("t.test".into(), "127.0.0.1".parse().unwrap())],
            ask_unlisted: false,
        };
        let (tx, rx) = mpsc::channel();
        let proxy = start(listener, policy, tx, OnRefusal::Answer, None, Clients::Any).unwrap();
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        write!(client, "CONNECT t.test:{port} HTTP/1.1\r\n\r\n").unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(client.read(&mut b).unwrap(), 1);
            head.push(b[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 200"));
        let hello = crate::sni::tests::client_hello(&["t.test"]);
        client.write_all(&hello).unwrap();
        let (mut server, _) = upstream.accept().unwrap();
        let mut got = vec![0u8; hello.len()];
        server.read_exact(&mut got).unwrap();
        assert_eq!(got, hello);
        // Both ends still open: the tunnel is mid-transfer when the proxy stops.
        proxy.stop();
        let d = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!((d.verdict, d.host.as_str()), (Outcome::Allowed, "t.test"));
        assert_eq!(d.bytes_up, hello.len() as u64);
        // And the tunnel is cut: its relay threads do not outlive the proxy.
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let cut = client.read(&mut b);
        assert!(
            matches!(cut, Ok(0))
                || matches!(&cut, Err(e) if e.kind() == io::ErrorKind::ConnectionReset),
            "the client's side stayed open: {cut:?}"
        );
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut rest = Vec::new();
        let ended = server.read_to_end(&mut rest);
        assert!(
            !matches!(&ended, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "the upstream side stayed open: {ended:?}"
        );
    }

    #[test]
    fn hop_by_hop_headers_do_not_travel() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("close, x-secret-hop"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("proxy-authorization", HeaderValue::from_static("Basic x"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }
}
