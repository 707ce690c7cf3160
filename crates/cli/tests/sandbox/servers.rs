//! What the egress tests talk to and with: host servers that keep their own log of what they
//! received, their fixtures (a bare git repository, a wheel), and readers for what the
//! sandboxed clients got back.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

#[derive(Default)]
struct Log {
    connections: AtomicUsize,
    bytes: AtomicUsize,
    heads: Mutex<Vec<String>>,
}

/// An HTTP/1.1 file server on 127.0.0.1: `GET /path` serves `dir/path` (`dir/path/index.html`
/// for a path ending in `/`), 404 otherwise; keep-alive with Content-Length. It records every
/// connection, every byte and every request head it received. A connection whose first byte
/// is not an HTTP method (a TLS ClientHello, say) is counted and dropped.
pub struct FileServer {
    pub port: u16,
    log: Arc<Log>,
    stop: Arc<AtomicBool>,
}

impl FileServer {
    pub fn start(dir: &Path) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Log::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2, dir) = (log.clone(), stop.clone(), dir.to_path_buf());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                log2.connections.fetch_add(1, Ordering::SeqCst);
                let (log, dir) = (log2.clone(), dir.clone());
                std::thread::spawn(move || serve(conn, &dir, &log));
            }
        });
        FileServer { port, log, stop }
    }

    pub fn connections(&self) -> usize {
        self.log.connections.load(Ordering::SeqCst)
    }

    pub fn bytes(&self) -> usize {
        self.log.bytes.load(Ordering::SeqCst)
    }

    /// Every request head received, in order, as text.
    pub fn heads(&self) -> Vec<String> {
        self.log.heads.lock().unwrap().clone()
    }

    /// How many request heads contain `needle` (case-insensitively).
    pub fn heads_with(&self, needle: &str) -> usize {
        let needle = needle.to_ascii_lowercase();
        self.heads()
            .iter()
            .filter(|h| h.to_ascii_lowercase().contains(&needle))
            .count()
    }

    pub fn received_nothing(&self) -> bool {
        self.connections() == 0 && self.bytes() == 0
    }

    /// What it received, for assertion messages.
    pub fn report(&self) -> String {
        format!(
            "{} connections, {} bytes, heads: {:#?}",
            self.connections(),
            self.bytes(),
            self.heads()
        )
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(mut conn: TcpStream, dir: &Path, log: &Log) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(15)));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16384];
    let mut more = |conn: &mut TcpStream, buf: &mut Vec<u8>| match conn.read(&mut chunk) {
        Ok(n) if n > 0 => {
            log.bytes.fetch_add(n, Ordering::SeqCst);
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        _ => false,
    };
    loop {
        let end = loop {
            if buf.first().is_some_and(|b| !b.is_ascii_uppercase()) {
                return;
            }
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if !more(&mut conn, &mut buf) {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        log.heads.lock().unwrap().push(head.clone());
        let mut lines = head.split("\r\n");
        let mut request = lines.next().unwrap_or("").split(' ');
        let (method, target) = (request.next().unwrap_or(""), request.next().unwrap_or("/"));
        let mut close = request.next() != Some("HTTP/1.1");
        let mut body_len = 0;
        for (k, v) in lines.filter_map(|l| l.split_once(':')) {
            match k.trim().to_ascii_lowercase().as_str() {
                "connection" => close |= v.trim().eq_ignore_ascii_case("close"),
                "content-length" => body_len = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
        while buf.len() < body_len {
            if !more(&mut conn, &mut buf) {
                return;
            }
        }
        buf.drain(..body_len);
        let (status, ctype, body) = lookup(dir, target);
        let mut reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        )
        .into_bytes();
        if method != "HEAD" {
            reply.extend(body);
        }
        if conn.write_all(&reply).is_err() || close {
            return;
        }
    }
}

/// Status, content type and body for a request target (origin- or absolute-form).
fn lookup(dir: &Path, target: &str) -> (&'static str, &'static str, Vec<u8>) {
    let path = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let mut rel = path.trim_start_matches('/').to_string();
    if rel.is_empty() || rel.ends_with('/') {
        rel.push_str("index.html");
    }
    let not_found = ("404 Not Found", "text/plain", b"not found\n".to_vec());
    if rel.split('/').any(|c| c == "..") {
        return not_found;
    }
    match std::fs::read(dir.join(&rel)) {
        Ok(body) if rel.ends_with(".html") => ("200 OK", "text/html", body),
        Ok(body) => ("200 OK", "application/octet-stream", body),
        Err(_) => not_found,
    }
}

/// A python3 HTTPS server (ssl module) on 127.0.0.1 serving `dir`, which appends
/// `REQUEST-LINE Host=HOST` to its log file for every request. Killed when dropped.
pub struct TlsServer {
    pub port: u16,
    child: Child,
    log: PathBuf,
}

const TLS_SERVER: &str = r#"
import http.server, ssl, sys
root, cert, key, log = sys.argv[1:5]
class H(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def log_request(self, code='-', size='-'):
        with open(log, 'a') as f:
            f.write('%s Host=%s\n' % (self.requestline, self.headers.get('Host')))
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

impl TlsServer {
    pub fn start(dir: &Path, cert: &Path, key: &Path, log: &Path) -> TlsServer {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(TLS_SERVER)
            .args([dir, cert, key, log])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the python TLS server did not start: {line:?}"));
        TlsServer {
            port,
            child,
            log: log.to_path_buf(),
        }
    }

    /// The request lines it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bare repository at `dest` with one commit (`file.txt`), ready for dumb HTTP.
pub fn bare_repo(scratch: &Path, home: &Path, dest: &Path) {
    let src = scratch.join("repo-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("file.txt"), "from the mirror\n").unwrap();
    let git = |dir: &Path, args: &[&str]| {
        crate::util::git_in(dir, home, args);
    };
    git(&src, &["init", "-q", "."]);
    git(&src, &["add", "file.txt"]);
    git(&src, &["commit", "-qm", "mirror"]);
    git(
        scratch,
        &[
            "clone",
            "-q",
            "--bare",
            src.to_str().unwrap(),
            dest.to_str().unwrap(),
        ],
    );
    git(dest, &["update-server-info"]);
}

/// Builds `tinypkg-1.0-py3-none-any.whl` in `dir` with python's zipfile; its sha256.
pub fn build_wheel(dir: &Path) -> String {
    let built = Command::new("python3")
        .args(["-c", BUILD_WHEEL])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    String::from_utf8_lossy(&built.stdout).trim().to_string()
}

/// Builds tinypkg-1.0-py3-none-any.whl in argv[1] with zipfile; prints its sha256.
const BUILD_WHEEL: &str = r#"
import base64, hashlib, os, sys, zipfile
files = {
    'tinypkg/__init__.py': b'VALUE = 42\n',
    'tinypkg-1.0.dist-info/METADATA': b'Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n',
    'tinypkg-1.0.dist-info/WHEEL': b'Wheel-Version: 1.0\nGenerator: cordon-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n',
}
def digest(b): return 'sha256=' + base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b'=').decode()
record = ''.join('%s,%s,%d\n' % (n, digest(b), len(b)) for n, b in files.items())
files['tinypkg-1.0.dist-info/RECORD'] = (record + 'tinypkg-1.0.dist-info/RECORD,,\n').encode()
path = os.path.join(sys.argv[1], 'tinypkg-1.0-py3-none-any.whl')
with zipfile.ZipFile(path, 'w') as z:
    for n, b in files.items(): z.writestr(n, b)
print(hashlib.sha256(open(path, 'rb').read()).hexdigest())
"#;

/// What a sandboxed client got back: a status (0: the connection closed first), cordon's
/// refusal header, the body.
pub struct Reply {
    pub status: u64,
    pub refused: Option<String>,
    pub body: String,
}

impl Reply {
    /// From a `curl -i` transcript.
    fn from_curl(transcript: &str) -> Reply {
        let (head, body) = transcript
            .split_once("\r\n\r\n")
            .unwrap_or((transcript, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let refused = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-cordon-refused")
                .then(|| v.trim().to_string())
        });
        Reply {
            status,
            refused,
            body: body.to_string(),
        }
    }

    /// Asserts cordon's refusal head: `status` and a non-empty `X-Cordon-Refused`.
    pub fn assert_refused_head(&self, case: &str, status: u64) {
        assert_eq!(self.status, status, "{case}: body {:?}", self.body);
        assert!(
            self.refused.as_deref().is_some_and(|r| !r.is_empty()),
            "{case}: no X-Cordon-Refused"
        );
    }

    /// Asserts cordon's refusal, with a body that tells the agent what happened.
    pub fn assert_refusal(&self, case: &str, status: u64) {
        self.assert_refused_head(case, status);
        let body = self.body.trim_start();
        assert!(body.starts_with("cordon:"), "{case}: {body:?}");
        for word in ["allow-list", "will not work", "--allow-domain"] {
            assert!(
                body.contains(word),
                "{case}: the body does not say {word:?}: {body:?}"
            );
        }
    }
}

/// One run's replies by case, with its output for assertion messages.
pub struct Replies {
    by_case: HashMap<String, Reply>,
    output: String,
}

/// A shell prelude: `fetch CASE CMD...` runs CMD after a `=== CASE` line; `$C` is `curl -i`.
pub const FETCH: &str =
    "fetch() { printf '\\n=== %s\\n' \"$1\"; shift; \"$@\"; }\nC='curl -sS -i --max-time 20'\n";

impl Replies {
    /// From the output of `FETCH`'s cases.
    pub fn from_curl(stdout: &str) -> Replies {
        let by_case = stdout
            .split("\n=== ")
            .skip(1)
            .filter_map(|s| s.split_once('\n'))
            .map(|(case, rest)| (case.to_string(), Reply::from_curl(rest)))
            .collect();
        Replies {
            by_case,
            output: stdout.to_string(),
        }
    }

    /// From the `R {json}` lines `PY_CLIENT`'s `out` printed.
    pub fn from_python(stdout: &str) -> Replies {
        let by_case = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l.strip_prefix("R ")?).ok())
            .map(|v| {
                let reply = Reply {
                    status: v["status"].as_u64().unwrap_or(0),
                    refused: v["headers"]["x-cordon-refused"].as_str().map(String::from),
                    body: v["body"].as_str().unwrap_or("").to_string(),
                };
                (v["case"].as_str().unwrap_or("").to_string(), reply)
            })
            .collect();
        Replies {
            by_case,
            output: stdout.to_string(),
        }
    }
}

impl std::ops::Index<&str> for Replies {
    type Output = Reply;
    fn index(&self, case: &str) -> &Reply {
        self.by_case
            .get(case)
            .unwrap_or_else(|| panic!("no reply for {case:?} in:\n{}", self.output))
    }
}

/// A raw HTTP client for the proxy, run inside the sandbox: `Conn().send(text)`,
/// `.response(connect)` → {status, headers, body} (status 0: closed), `out(case, r)`.
pub const PY_CLIENT: &str = r#"
import json, socket, ssl
class Conn:
    def __init__(self):
        self.s = socket.create_connection(('127.0.0.1', 3128), timeout=10); self.buf = b''
    def send(self, text):
        self.s.sendall(text.encode())
    def more(self):
        try: d = self.s.recv(65536)
        except OSError: d = b''
        self.buf += d
        return bool(d)
    def rest(self):
        while self.more(): pass
        return self.buf
    def response(self, connect=False):
        while b'\r\n\r\n' not in self.buf:
            if not self.more(): return {'status': 0, 'headers': {}, 'body': self.buf.decode('latin1')}
        head, _, self.buf = self.buf.partition(b'\r\n\r\n')
        lines = head.decode('latin1').split('\r\n')
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(':') for l in lines[1:])}
        if connect and status == 200: body = b''
        elif 'content-length' in headers:
            n = int(headers['content-length'])
            while len(self.buf) < n and self.more(): pass
            body, self.buf = self.buf[:n], self.buf[n:]
        else:
            body, self.buf = self.rest(), b''
        return {'status': status, 'headers': headers, 'body': body.decode('latin1')}
def out(case, r):
    print('R', json.dumps(dict(r, case=case)), flush=True)
"#;
