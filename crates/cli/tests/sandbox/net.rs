//! Network threats with the default `--net off`: TCP, UDP, DNS and Unix sockets to the host.
//! Each listener is the host's own; the test checks that it received nothing.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use crate::util::Env;

fn python(e: &Env, code: &str) -> crate::util::Run {
    e.cordon(&[
        "run".as_ref(),
        "--".as_ref(),
        "python3".as_ref(),
        "-c".as_ref(),
        code.as_ref(),
    ])
}

#[test]
fn tcp_and_udp_to_the_host_get_nowhere() {
    let e = Env::new("net-off");
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let (tport, uport) = (
        tcp.local_addr().unwrap().port(),
        udp.local_addr().unwrap().port(),
    );
    let code = r#"
import socket
for host in ['127.0.0.1', '10.0.2.2', '1.1.1.1']:
    try:
        s = socket.socket(); s.settimeout(1); s.connect((host, TPORT)); s.send(b'leak'); print('TCP-CONNECTED', host)
    except OSError as e: print('tcp refused', host, e)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try: u.sendto(b'leak', ('127.0.0.1', UPORT))
except OSError as e: print('udp refused', e)
try: print('DNS', socket.gethostbyname('example.com'))
except OSError as e: print('dns refused', e)
"#
    .replace("TPORT", &tport.to_string())
    .replace("UPORT", &uport.to_string());
    let run = python(&e, &code).ok();
    assert!(!run.stdout.contains("TCP-CONNECTED"), "{}", run.stdout);
    assert!(!run.stdout.contains("DNS "), "{}", run.stdout);
    assert!(tcp.accept().is_err(), "host TCP listener got a connection");
    let mut buf = [0u8; 16];
    assert!(
        udp.recv_from(&mut buf).is_err(),
        "host UDP socket received a datagram"
    );
}

#[test]
fn only_loopback_exists_inside() {
    let e = Env::new("net-lo");
    let run = e
        .sh(
            &[],
            "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '",
        )
        .ok();
    assert_eq!(run.stdout.trim(), "lo", "interfaces: {}", run.stdout);
    // Loopback inside works for a build's own test servers.
    let run = python(
        &e,
        "import socket\ns=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\nc=socket.create_connection(s.getsockname()); print('LOOPBACK-OK')",
    )
    .ok();
    assert!(run.stdout.contains("LOOPBACK-OK"));
}

#[test]
fn host_unix_sockets_are_unreachable() {
    let e = Env::new("unix");
    // An agent socket named by SSH_AUTH_SOCK outside /tmp and /run, and one under the home.
    let agent = e.outside.join("agent.sock");
    let listener = UnixListener::bind(&agent).unwrap();
    let home_sock = e.home.join(".ssh/agent.sock");
    let home_listener = UnixListener::bind(&home_sock).unwrap();
    // An abstract socket (network-namespace scoped).
    let abstract_name = format!("cordon-test-{}", std::process::id());
    let abs = {
        use std::os::linux::net::SocketAddrExt;
        let addr =
            std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
        UnixListener::bind_addr(&addr).unwrap()
    };
    for l in [&listener, &home_listener, &abs] {
        l.set_nonblocking(true).unwrap();
    }
    let code = r#"
import socket
for path in ['AGENT', 'HOMESOCK', '\0ABSTRACT']:
    s = socket.socket(socket.AF_UNIX)
    try: s.connect(path); s.send(b'leak'); print('UNIX-CONNECTED', repr(path))
    except OSError as e: print('refused', repr(path), e)
"#
    .replace("AGENT", &agent.display().to_string())
    .replace("HOMESOCK", &home_sock.display().to_string())
    .replace("ABSTRACT", &abstract_name);
    let run = e
        .command(&[
            "run".as_ref(),
            "--".as_ref(),
            "python3".as_ref(),
            "-c".as_ref(),
            code.as_ref(),
        ])
        .env("SSH_AUTH_SOCK", &agent)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(!out.contains("UNIX-CONNECTED"), "{out}");
    for l in [&listener, &home_listener, &abs] {
        match l.accept() {
            Ok((mut s, _)) => {
                let mut b = Vec::new();
                let _ = s.read_to_end(&mut b);
                panic!("host unix listener got a connection: {b:?}");
            }
            Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock),
        }
    }
}

#[test]
fn a_host_socket_in_a_visible_directory_is_unreachable() {
    // A host service's socket where the sandbox can see the directory (here the workspace
    // itself; /srv or a project folder alike), named by no variable.
    let e = Env::new("unix-visible");
    let sock = e.ws.join("host-service.sock");
    let l = UnixListener::bind(&sock).unwrap();
    l.set_nonblocking(true).unwrap();
    let run = e
        .sh(
            &[],
            "python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('host-service.sock'); s.send(b'leak'); print('UNIX-CONNECTED')\"; true",
        )
        .ok();
    assert!(!run.stdout.contains("UNIX-CONNECTED"), "{}", run.stdout);
    match l.accept() {
        Ok(_) => panic!("the host listener got a connection from the sandbox"),
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock),
    }
    assert!(sock.exists(), "the host's socket file was touched");
}

#[test]
fn docker_socket_under_run_is_hidden() {
    let e = Env::new("docker-sock");
    if !crate::util::is_root() {
        // Only root can bind under /run: check instead that none of the host's /run shows.
        let host: Vec<_> = std::fs::read_dir("/run").unwrap().collect();
        assert!(
            !host.is_empty(),
            "the host's /run is empty; nothing to compare"
        );
        let run = e.sh(&[], "ls -A /run /var/run /run/cordon").ok();
        // The one entry is cordon's own: the request door's sealed tmpfs, holding only the
        // door.
        let listed: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| !l.is_empty() && !l.ends_with(':'))
            .filter(|l| !["cordon", "request.sock"].contains(l))
            .collect();
        assert!(listed.is_empty(), "host /run entries visible: {listed:?}");
        return;
    }
    let dir = std::path::Path::new("/run").join(format!("cordon-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("docker.sock");
    let l = UnixListener::bind(&sock).unwrap();
    l.set_nonblocking(true).unwrap();
    let run = e.sh(&[], &format!("ls -A /run; python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('{}'); print('UNIX-CONNECTED')\"; true", sock.display())).ok();
    assert!(!run.stdout.contains("UNIX-CONNECTED"));
    assert!(l.accept().is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
