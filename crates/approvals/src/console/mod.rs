//! `cordon console`: a web app, made for a phone, that shows every run's open requests and
//! answers them, with the audit history.
//!
//! Security, in the order a request meets it:
//! - Loopback only by default; any other address needs TLS, with a self-signed certificate
//!   whose SHA-256 fingerprint is printed beside the pairing URL.
//! - The pairing URL carries a random token; opening it sets a `HttpOnly; SameSite=Strict`
//!   cookie (plus `Secure` over TLS) and redirects to a URL without it. Every page and API
//!   call needs the cookie (or `Authorization: Bearer TOKEN`, for scripts).
//! - A POST with the cookie must also carry the page's CSRF token in `X-Cordon-CSRF`, and is
//!   refused when `Origin` names another site or `Sec-Fetch-Site` is not `same-origin`.
//! - What is shown is scrubbed of what the sandbox hides (`Scrubber`); the page builds its
//!   DOM with `textContent` only, so a command line the agent wrote cannot become markup.
//! - The console answers through each run's control socket, as the same user; the sandbox
//!   reaches neither the socket nor this port's token.

mod history;
mod page;
mod tls;

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::control::{endpoints, Client};
use crate::request::Scrubber;
use crate::token;

pub use history::{history, HistoryFilter};
pub use tls::fingerprint;

/// The default address: loopback, so nothing off this machine can even try.
pub const DEFAULT_BIND: &str = "127.0.0.1:7777";
const COOKIE: &str = "cordon_console";

#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    pub bind: SocketAddr,
    /// `STATE/approvals`: the runs' control endpoints.
    pub approvals_dir: PathBuf,
    /// The audit log the history is read from.
    pub audit_log: Option<PathBuf>,
    /// `STATE/console`: the self-signed certificate, kept per address.
    pub tls_dir: PathBuf,
    pub scrub: Scrubber,
    /// The pairing token; `None` makes a random one (tests pass their own).
    pub token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("setting up TLS")]
    Tls(#[source] io::Error),
    #[error("making a token")]
    Token(#[source] io::Error),
    #[error("serving")]
    Serve(#[source] io::Error),
}

struct App {
    token: String,
    csrf: String,
    tls: bool,
    opts: ConsoleOptions,
}

type Serving = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// A bound console, not yet serving.
pub struct Console {
    /// The pairing URL (with the token).
    pub url: String,
    pub addr: SocketAddr,
    /// The certificate's SHA-256 fingerprint when serving TLS.
    pub fingerprint: Option<String>,
    pub token: String,
    serving: Serving,
}

impl Console {
    /// Binds the address; TLS whenever it is not loopback.
    pub async fn bind(opts: ConsoleOptions) -> Result<Console, ConsoleError> {
        let token = match &opts.token {
            Some(t) => t.clone(),
            None => token::random().map_err(ConsoleError::Token)?,
        };
        let csrf = token::random().map_err(ConsoleError::Token)?;
        let tls = !opts.bind.ip().is_loopback();
        let bind = opts.bind;
        let listener = std::net::TcpListener::bind(bind)
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .map_err(|source| ConsoleError::Bind { addr: bind, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ConsoleError::Bind { addr: bind, source })?;
        let host = url_host(addr);
        let app = Arc::new(App {
            token: token.clone(),
            csrf,
            tls,
            opts: opts.clone(),
        });
        let router = router(app);
        let (scheme, fingerprint, serving): (_, _, Serving) = if tls {
            let identity =
                tls::Identity::load_or_make(&opts.tls_dir, host.ip()).map_err(ConsoleError::Tls)?;
            let config = identity.rustls().map_err(ConsoleError::Tls)?;
            let server = axum_server::from_tcp_rustls(listener, config);
            (
                "https",
                Some(identity.fingerprint()),
                Box::pin(server.serve(router.into_make_service())),
            )
        } else {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|source| ConsoleError::Bind { addr: bind, source })?;
            (
                "http",
                None,
                Box::pin(async move { axum::serve(listener, router).await }),
            )
        };
        Ok(Console {
            url: format!("{scheme}://{host}/pair?token={token}"),
            addr,
            fingerprint,
            token,
            serving,
        })
    }

    pub async fn serve(self) -> io::Result<()> {
        self.serving.await
    }

    /// What the terminal shows: the URL, its QR code, and the fingerprint.
    pub fn banner(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "cordon console: open this on your phone (it carries the token; keep it private):\n\n",
        );
        out.push_str(&qr_text(&self.url));
        out.push_str(&format!("\n  {}\n", self.url));
        match &self.fingerprint {
            Some(f) => out.push_str(&format!(
                "\n  TLS certificate (self-signed) SHA-256 fingerprint:\n  {f}\n  check that your browser shows the same before you accept it\n"
            )),
            None => out.push_str("\n  loopback only; use --bind with a LAN address (TLS) to reach it from a phone\n"),
        }
        out
    }
}

/// Where a phone should connect: the bound address, or this machine's outward address when
/// bound to all interfaces (found by asking the routing table, no packet is sent).
fn url_host(addr: SocketAddr) -> SocketAddr {
    if !addr.ip().is_unspecified() {
        return addr;
    }
    let outward = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    SocketAddr::new(outward, addr.port())
}

/// The pairing URL as a QR code of text (two rows per line, so it fits a terminal).
pub fn qr_text(url: &str) -> String {
    match qrcode::QrCode::new(url.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

/// Serves until the process ends (Ctrl-C): the body of `cordon console`.
pub fn run(opts: ConsoleOptions) -> Result<(), ConsoleError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ConsoleError::Serve)?;
    runtime.block_on(async {
        let console = Console::bind(opts).await?;
        eprint!("{}", console.banner());
        console.serve().await.map_err(ConsoleError::Serve)
    })
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/pair", get(pair))
        .route(
            "/app.js",
            get(|| async { asset("text/javascript", page::JS) }),
        )
        .route("/app.css", get(|| async { asset("text/css", page::CSS) }))
        .route("/api/pending", get(pending))
        .route("/api/decide", post(decide))
        .route("/api/history", get(history_api))
        .with_state(app)
}

fn hardened(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    hardened(([(header::CONTENT_TYPE, kind)], body).into_response())
}

fn refuse(status: StatusCode, why: &str) -> Response {
    hardened((status, Json(json!({ "error": why }))).into_response())
}

/// How the caller proved who it is.
#[derive(PartialEq, Eq)]
enum Auth {
    Cookie,
    Bearer,
}

fn auth(app: &App, headers: &HeaderMap) -> Option<Auth> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|t| token::equal(t, &app.token)) {
        return Some(Auth::Bearer);
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .any(|(k, v)| k == COOKIE && token::equal(v, &app.token));
    cookie.then_some(Auth::Cookie)
}

#[derive(Deserialize)]
struct PairQuery {
    token: Option<String>,
}

async fn pair(State(app): State<Arc<App>>, Query(q): Query<PairQuery>) -> Response {
    if !q.token.is_some_and(|t| token::equal(&t, &app.token)) {
        return refuse(StatusCode::UNAUTHORIZED, "wrong or missing pairing token");
    }
    let secure = if app.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/{secure}",
        app.token
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    hardened(response)
}

async fn index(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if auth(&app, &headers).is_none() {
        let body = page::UNPAIRED;
        return hardened(
            (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
                .into_response(),
        );
    }
    let body = page::INDEX.replace("{{csrf}}", &app.csrf);
    hardened(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response())
}

async fn pending(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if auth(&app, &headers).is_none() {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "pair first: open the URL cordon console printed",
        );
    }
    let dir = app.opts.approvals_dir.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let mut all: Vec<Value> = Vec::new();
        let mut runs = 0;
        for ep in endpoints(&dir) {
            let Ok(mut client) = Client::connect(&ep) else {
                continue; // a run that ended without removing its file
            };
            runs += 1;
            if let Ok(reply) = client.call(&json!({"op": "pending"})) {
                if let Some(list) = reply["pending"].as_array() {
                    all.extend(list.iter().cloned());
                }
            }
        }
        json!({ "runs": runs, "pending": all })
    })
    .await
    .unwrap_or_else(|_| json!({"runs": 0, "pending": []}));
    // The broker scrubbed already; scrub again with the console's own patterns, since it
    // may know secrets (or patterns) the run did not.
    hardened(Json(app.scrub_value(listed)).into_response())
}

impl App {
    fn scrub_value(&self, value: Value) -> Value {
        let s = &self.opts.scrub;
        match value {
            Value::String(t) => Value::String(s.word(&t)),
            Value::Array(a) => {
                match a
                    .iter()
                    .map(|v| v.as_str().map(String::from))
                    .collect::<Option<Vec<_>>>()
                {
                    Some(words) => {
                        Value::Array(s.words(&words).into_iter().map(Value::String).collect())
                    }
                    None => Value::Array(a.into_iter().map(|v| self.scrub_value(v)).collect()),
                }
            }
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, v)| (k, self.scrub_value(v)))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// Refuses a state-changing request a browser sent on another site's behalf.
fn cross_site(app: &App, headers: &HeaderMap, how: &Auth) -> Option<&'static str> {
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header_str("sec-fetch-site") {
        if site != "same-origin" {
            return Some("cross-site request refused");
        }
    }
    if let (Some(origin), Some(host)) = (header_str("origin"), header_str("host")) {
        let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
        if origin_host != host {
            return Some("request from another origin refused");
        }
    }
    // A bearer token is never sent by a browser on its own, so it needs no CSRF token; the
    // cookie is, so a cookie-authenticated POST must prove it read the page.
    if *how == Auth::Cookie
        && !header_str("x-cordon-csrf").is_some_and(|t| token::equal(t, &app.csrf))
    {
        return Some("missing or wrong CSRF token");
    }
    None
}

#[derive(Deserialize)]
struct DecideBody {
    run: String,
    id: String,
    choice: String,
}

async fn decide(State(app): State<Arc<App>>, headers: HeaderMap, body: String) -> Response {
    let Some(how) = auth(&app, &headers) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "pair first: open the URL cordon console printed",
        );
    };
    if let Some(why) = cross_site(&app, &headers, &how) {
        return refuse(StatusCode::FORBIDDEN, why);
    }
    let Ok(body) = serde_json::from_str::<DecideBody>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "expected {run, id, choice}");
    };
    let dir = app.opts.approvals_dir.clone();
    let reply = tokio::task::spawn_blocking(move || {
        let ep = endpoints(&dir).into_iter().find(|e| e.run == body.run)?;
        let mut client = Client::connect(&ep).ok()?;
        client
            .call(&json!({"op": "decide", "id": body.id, "choice": body.choice}))
            .ok()
    })
    .await
    .ok()
    .flatten();
    match reply {
        Some(r) if r.get("answer").is_some() => hardened(Json(r).into_response()),
        Some(r) => refuse(
            StatusCode::CONFLICT,
            r["error"].as_str().unwrap_or("the broker refused"),
        ),
        None => refuse(StatusCode::NOT_FOUND, "that run is no longer there"),
    }
}

async fn history_api(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(filter): Query<HistoryFilter>,
) -> Response {
    if auth(&app, &headers).is_none() {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "pair first: open the URL cordon console printed",
        );
    }
    let Some(log) = app.opts.audit_log.clone() else {
        return hardened(Json(json!({"events": [], "log": null})).into_response());
    };
    let scrub = app.opts.scrub.clone();
    let events = tokio::task::spawn_blocking(move || history(&log, &filter, &scrub))
        .await
        .unwrap_or_default();
    hardened(Json(json!({ "events": events })).into_response())
}

#[cfg(test)]
mod tests;
