//! Fresh workspaces with a fake home full of secrets, and a runner for the real binary.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const SECRET: &str = "CORDON-TEST-SECRET-7f3a";

pub fn cordon_bin() -> PathBuf {
    std::env::var_os("CORDON_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cordon")))
}

/// A copy of the binary in `e`'s workspace, for commands that run `cordon request` inside
/// the sandbox: wherever the build is (e.g. under /tmp or /var/tmp, which the sandbox
/// replaces with its own), the workspace is visible inside.
pub fn cordon_inside(e: &Env) -> String {
    let copy = e.ws.join(".cordon-bin");
    if !copy.exists() {
        fs::copy(cordon_bin(), &copy).unwrap();
    }
    copy.display().to_string()
}

/// A test's own directory: `home/` (HOME, with secrets), `ws/` (a git repo), `outside/`.
pub struct Env {
    pub root: PathBuf,
    pub home: PathBuf,
    pub ws: PathBuf,
    pub outside: PathBuf,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Env {
    pub fn new(name: &str) -> Env {
        let base = std::env::var_os("CORDON_TEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
        // The sandbox replaces these with private, empty ones: a fake home there would be
        // invisible inside, and every read-boundary test would pass without testing.
        for private in ["/tmp", "/var/tmp", "/dev/shm", "/run"] {
            assert!(
                !base.starts_with(private),
                "CORDON_TEST_DIR={} is under {private}, which the sandbox replaces: use a folder the sandbox shows",
                base.display()
            );
        }
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let root = base.join(format!("cordon-t-{}-{n}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let home = root.join("home");
        let ws = root.join("ws");
        let outside = root.join("outside");
        for d in [&home, &ws, &outside] {
            fs::create_dir_all(d).unwrap();
        }
        for (rel, content) in [
            (".ssh/id_rsa", SECRET),
            (".aws/credentials", SECRET),
            (".config/gh/hosts.yml", SECRET),
            (".netrc", SECRET),
            (".bashrc", "# original\n"),
        ] {
            let p = home.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, content).unwrap();
        }
        fs::write(ws.join("README"), "hello\n").unwrap();
        Env {
            root,
            home,
            ws,
            outside,
        }
    }

    pub fn with_git(name: &str) -> Env {
        let e = Env::new(name);
        e.git(&["init", "-q", "."]);
        e.git(&["add", "README"]);
        e.git(&["commit", "-qm", "init"]);
        e
    }

    pub fn git(&self, args: &[&str]) -> String {
        git_in(&self.ws, &self.home, args)
    }

    /// `cordon run FLAGS -- sh -c SCRIPT` with HOME pointing at the fake home.
    pub fn sh(&self, flags: &[&str], script: &str) -> Run {
        let out = self
            .sh_command(flags, script)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run::from(out)
    }

    /// The same, as a command to spawn (for tests that signal or kill cordon).
    pub fn sh_command(&self, flags: &[&str], script: &str) -> Command {
        let mut argv: Vec<&OsStr> = vec![OsStr::new("run")];
        argv.extend(flags.iter().map(OsStr::new));
        argv.extend([
            OsStr::new("--"),
            OsStr::new("sh"),
            OsStr::new("-c"),
            OsStr::new(script),
        ]);
        self.command(&argv)
    }

    pub fn cordon(&self, argv: &[&OsStr]) -> Run {
        let out = self.command(argv).stdin(Stdio::null()).output().unwrap();
        Run::from(out)
    }

    pub fn command(&self, argv: &[&OsStr]) -> Command {
        let mut c = Command::new(cordon_bin());
        c.args(argv)
            .current_dir(&self.ws)
            .env("HOME", &self.home)
            .env("XDG_STATE_HOME", self.home.join(".local/state"))
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1");
        c
    }

    pub fn audit_path(&self) -> PathBuf {
        self.root.join("audit.jsonl")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// What a run printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs git in `dir` with a fixed identity and `home` as HOME; panics with its stderr.
pub fn git_in(dir: &Path, home: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.email=t@t",
            "-c",
            "user.name=t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

pub fn is_root() -> bool {
    nix::unistd::getuid().is_root()
}

/// Whether a program is on PATH (for tests that need a tool, which say SKIP visibly).
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Polls `done` for up to 10 s; whether it became true.
pub fn wait_until(done: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

/// Every process below `pid` on the host, from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|d| {
            let stat = fs::read_to_string(d.path().join("stat")).ok()?;
            let (head, tail) = stat.rsplit_once(')')?;
            let ppid = tail.split_whitespace().nth(1)?.parse().ok()?;
            Some((head.split(' ').next()?.parse().ok()?, ppid))
        })
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, t)| t.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

/// Host processes whose command line is exactly `argv`.
pub fn processes_with_args(argv: &[&str]) -> usize {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|d| fs::read(d.path().join("cmdline")).is_ok_and(|c| c == want))
        .count()
}

/// Answers the first pending approval of any run in `state/approvals` through its control
/// socket (as `cordon console` does), with `choice`; prints `{"pending": the request as
/// the console shows it, "decided": what the broker said}`.
pub const ANSWER: &str = r#"
import glob, json, socket, sys, time
state, choice = sys.argv[1], sys.argv[2]
end = time.time() + 30
while time.time() < end:
    for info in glob.glob(state + "/approvals/*.json"):
        ep = json.load(open(info))
        s = socket.socket(socket.AF_UNIX)
        s.connect(ep["socket"])
        f = s.makefile("rw")
        def call(msg):
            f.write(json.dumps(msg) + "\n"); f.flush()
            return json.loads(f.readline())
        call({"token": ep["token"]})
        pending = call({"op": "pending"})["pending"]
        if pending:
            decided = call({"op": "decide", "id": pending[0]["id"], "choice": choice})
            print(json.dumps({"pending": pending[0], "decided": decided}))
            sys.exit(0)
    time.sleep(0.1)
print("no pending request")
sys.exit(1)
"#;

/// A run asked a human: what the sandbox did, and what the human saw and answered.
pub struct Answered {
    pub run: Run,
    /// The request as the console showed it, and the broker's reply to the decision.
    pub seen: serde_json::Value,
    /// The state folder's audit log.
    pub audit: String,
}

/// `cordon run ARGV` without a terminal (setsid) and with a state folder of its own (short:
/// the control socket's path must fit in sockaddr_un), while a human answers its first
/// request with `choice` through the control socket, as `cordon console` does.
pub fn run_answered(e: &Env, argv: &[&str], choice: &str) -> Answered {
    static N: AtomicUsize = AtomicUsize::new(0);
    let state = PathBuf::from(format!(
        "/tmp/cra-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&state);
    fs::create_dir_all(&state).unwrap();
    let child = Command::new("setsid")
        .arg(cordon_bin())
        .arg("run")
        .args(argv)
        .current_dir(&e.ws)
        .env("HOME", &e.home)
        .env("XDG_STATE_HOME", &state)
        .env("XDG_CONFIG_HOME", e.home.join(".config"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let answered = Command::new("python3")
        .args(["-c", ANSWER])
        .arg(state.join("cordon"))
        .arg(choice)
        .output()
        .unwrap();
    let run = Run::from(child.wait_with_output().unwrap());
    let audit = fs::read_to_string(state.join("cordon/audit.jsonl")).unwrap_or_default();
    let _ = fs::remove_dir_all(&state);
    let said = String::from_utf8_lossy(&answered.stdout);
    assert!(
        answered.status.success(),
        "no request reached the human: {said}\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    let seen = serde_json::from_str(said.trim()).unwrap_or_default();
    Answered { run, seen, audit }
}
