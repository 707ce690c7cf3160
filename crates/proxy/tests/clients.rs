//! A proxy with a client check serves only the connections the check admits: one it turns
//! away is answered 403 `foreign-client` before a byte of it is read (its request never
//! reaches the destination) and is logged as a refusal; one it admits is served as usual.
#![allow(clippy::unwrap_used)] // tests

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use cordon_policy::{DomainPattern, Egress};
use cordon_proxy::{ClientCheck, Clients, OnRefusal, Outcome, FOREIGN_CLIENT};

const NAME: &str = "clients.test";

/// Admits a connection only while `open` is set; records what it was asked.
struct Gate {
    open: AtomicBool,
    asked: Mutex<Vec<(SocketAddr, SocketAddr)>>,
}

impl ClientCheck for Gate {
    fn admit(&self, peer: SocketAddr, local: SocketAddr) -> Result<(), String> {
        self.asked.lock().unwrap().push((peer, local));
        match self.open.load(Ordering::SeqCst) {
            true => Ok(()),
            false => Err(format!("{peer} is not the test's")),
        }
    }
}

fn get(proxy: SocketAddr, port: u16) -> (String, SocketAddr) {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mine = s.local_addr().unwrap();
    let req = format!(
        "GET http://{NAME}:{port}/ HTTP/1.1\r\nHost: {NAME}:{port}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    (answer, mine)
}

#[test]
fn only_admitted_clients_are_served() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    let served = Arc::new(AtomicBool::new(false));
    let flag = served.clone();
    std::thread::spawn(move || {
        for s in upstream.incoming() {
            let Ok(mut s) = s else { continue };
            flag.store(true, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let policy = Egress {
        allow: vec![DomainPattern::parse(NAME).unwrap()],
        deny: Vec::new(),
        allow_local_destinations: true,
        hosts: vec![(NAME.into(), "127.0.0.1".parse().unwrap())],
        ask_unlisted: false,
    };
    let gate = Arc::new(Gate {
        open: AtomicBool::new(false),
        asked: Mutex::new(Vec::new()),
    });
    let (tx, rx) = mpsc::channel();
    let clients = Clients::Checked(gate.clone());
    let proxy =
        cordon_proxy::start(listener, policy, tx, OnRefusal::Answer, None, clients).unwrap();

    let (answer, mine) = get(addr, port);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(
        answer.contains(&format!("X-Cordon-Refused: {FOREIGN_CLIENT}")),
        "{answer}"
    );
    assert!(answer.contains("not from it"), "{answer}");
    let d = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(d.verdict, Outcome::Refused);
    assert!(
        d.reason.as_deref().unwrap().starts_with(FOREIGN_CLIENT),
        "{d:?}"
    );
    assert_eq!(
        gate.asked.lock().unwrap()[0],
        (mine, addr),
        "the check sees both ends"
    );
    assert!(
        !served.load(Ordering::SeqCst),
        "a turned-away request reached its destination"
    );

    gate.open.store(true, Ordering::SeqCst);
    let (answer, _) = get(addr, port);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
    let d = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(d.verdict, Outcome::Allowed, "{d:?}");
    assert!(served.load(Ordering::SeqCst));
    proxy.stop();
}
