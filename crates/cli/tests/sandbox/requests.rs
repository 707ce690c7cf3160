//! Requests for a human: an agent's `cordon request`, prompts on cordon's terminal, and what
//! a human sees beside a request. Judged by what ran (marker files), what the human was
//! shown, and the audit log.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::{cordon_bin, cordon_inside, exists, run_answered, Env, Run};

const DEPLOY_RULE: &str = "[[commands.rules]]\nprefix = [\"deploy\"]\ndecision = \"prompt\"\nreason = \"deploys need a human\"\n";

/// A workspace with `./deploy` (writes `ran-deploy`) and a policy whose rule prompts for it.
fn deploy_env(name: &str) -> (Env, PathBuf) {
    let e = Env::new(name);
    let policy = e.root.join("rules.toml");
    fs::write(&policy, DEPLOY_RULE).unwrap();
    let deploy = e.ws.join("deploy");
    fs::write(&deploy, "#!/bin/sh\necho ran > ran-deploy\n").unwrap();
    fs::set_permissions(&deploy, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (e, policy)
}

#[test]
fn what_cordon_cannot_grant_is_refused_without_asking_anyone() {
    let e = Env::new("request-ungrantable");
    let audit = e.audit_path();
    let script = format!(
        "{c} request network.allow pypi.org -- pip needs it; echo net=$?; \
         {c} request write /etc -- config; echo write=$?; \
         {c} request command ls -- listing; echo cmd=$?",
        c = cordon_inside(&e)
    );
    let run = e.sh(&["--audit", audit.to_str().unwrap()], &script).ok();
    for line in ["net=2", "write=2", "cmd=2"] {
        assert!(run.stdout.contains(line), "{line}: {}", run.stdout);
    }
    for says in [
        "--net allow --allow-domain pypi.org",
        "--allow-write",
        "no command rules",
    ] {
        assert!(run.stderr.contains(says), "{says}: {}", run.stderr);
    }
    // Nobody was bothered.
    let log = fs::read_to_string(&audit).unwrap();
    assert!(!log.contains("approval_requested"), "{log}");
}

#[test]
fn outside_a_sandbox_cordon_request_says_so() {
    let out = Command::new(cordon_bin())
        .args(["request", "network.allow", "pypi.org", "--", "why"])
        .env("CORDON_REQUEST_SOCKET", "/nonexistent/cordon-door.sock")
        .output()
        .unwrap();
    let run = Run::from(out);
    assert_eq!(run.code, 125, "{}", run.stderr);
    assert!(run.stderr.contains("no request door"), "{}", run.stderr);
}

/// An allowed `cordon request command …` lets the next matching command line through the
/// rules' prompt (allow once: only the next); a denied one leaves the prompt in place.
#[test]
fn a_command_request_lets_the_command_through_only_when_a_human_allows() {
    for (choice, runs) in [("allow_once", true), ("deny", false)] {
        let (e, policy) = deploy_env(&format!("request-command-{choice}"));
        let script = format!(
            "{} request command ./deploy -- ship the fix; echo rc=$?; ./deploy; echo deploy=$?",
            cordon_inside(&e)
        );
        let a = run_answered(
            &e,
            &[
                "--policy",
                policy.to_str().unwrap(),
                "--approval-timeout",
                "2s",
                "--",
                "sh",
                "-c",
                &script,
            ],
            choice,
        );
        let (run, seen) = (&a.run, &a.seen);
        assert_eq!(seen["pending"]["kind"], "request", "{seen}");
        assert_eq!(seen["pending"]["reason"], "ship the fix", "{seen}");
        assert_eq!(exists(&e.ws.join("ran-deploy")), runs, "{}", run.stderr);
        match runs {
            true => {
                assert!(run.stdout.contains("rc=0") && run.stdout.contains("deploy=0"));
                // The prompt for ./deploy was answered by the grant, not by a human.
                assert!(a.audit.contains("\"by\":\"grant\""), "{}", a.audit);
            }
            false => {
                assert!(run.stdout.contains("rc=1"), "{}", run.stdout);
                assert!(run.stdout.contains("deploy=126"), "{}", run.stdout);
                assert!(
                    run.stderr.contains("nobody approved it in time"),
                    "{}",
                    run.stderr
                );
            }
        }
    }
}

/// While a prompt waits, the sandbox tries to answer it itself: the state folder (control
/// socket, token) is out of sight and the request door only asks. Nobody answers: the
/// timeout denies.
#[test]
fn the_sandbox_cannot_answer_its_own_prompt_and_silence_denies() {
    let (e, policy) = deploy_env("request-self-approve");
    let state = PathBuf::from(format!("/tmp/crs-{}", std::process::id()));
    let _ = fs::remove_dir_all(&state);
    fs::create_dir_all(&state).unwrap();
    let attack = r#"
import glob, json, os, socket, sys, time
state, told = sys.argv[1], sys.argv[2]
end = time.time() + 10
while not os.path.exists(told) and time.time() < end:
    time.sleep(0.05)
sock = open(told).read().strip()
try:
    print("LISTED", os.listdir(os.path.dirname(sock)))
except OSError as e:
    print("list refused:", e.strerror)
for path in [sock[:-5] + ".json"] + glob.glob(state + "/cordon/approvals/*"):
    try:
        print("READ", path, open(path).read()[:40])
    except OSError as e:
        print("read refused:", e.strerror)
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sock)
    print("CONNECTED to the control socket")
except OSError as e:
    print("connect refused:", e.strerror)
d = socket.socket(socket.AF_UNIX)
d.connect(os.environ["CORDON_REQUEST_SOCKET"])
d.sendall(b'{"op": "decide", "id": "x-1", "choice": "allow_once"}\n')
print("door:", d.recv(4096).decode().strip())
"#;
    let told = e.ws.join("socket-path");
    fs::write(e.ws.join("attack.py"), attack).unwrap();
    let script = format!(
        "./deploy & python3 attack.py {} {}; wait $!; echo deploy=$?",
        state.display(),
        told.display()
    );
    let child = Command::new("setsid")
        .arg(cordon_bin())
        .args(["run", "--policy"])
        .arg(&policy)
        .args(["--approval-timeout", "5s", "--", "sh", "-c", &script])
        .current_dir(&e.ws)
        .env("HOME", &e.home)
        .env("XDG_STATE_HOME", &state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Tell the sandbox where the control socket is (it could guess the folder anyway).
    let approvals = state.join("cordon/approvals");
    let found = crate::util::wait_until(|| {
        fs::read_dir(&approvals).is_ok_and(|d| {
            d.flatten()
                .any(|f| f.path().extension().is_some_and(|x| x == "sock"))
        })
    });
    assert!(found, "no control socket appeared");
    let sock = fs::read_dir(&approvals)
        .unwrap()
        .flatten()
        .map(|f| f.path())
        .find(|p| p.extension().is_some_and(|x| x == "sock"))
        .unwrap();
    fs::write(&told, sock.display().to_string()).unwrap();
    let run = Run::from(child.wait_with_output().unwrap());
    let log = fs::read_to_string(state.join("cordon/audit.jsonl")).unwrap_or_default();
    let _ = fs::remove_dir_all(&state);
    assert!(!run.stdout.contains("LISTED"), "{}", run.stdout);
    assert!(!run.stdout.contains("READ"), "{}", run.stdout);
    assert!(!run.stdout.contains("CONNECTED"), "{}", run.stdout);
    assert!(run.stdout.contains("door: {\"error\""), "{}", run.stdout);
    assert!(
        run.stdout.contains("deploy=126"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(!exists(&e.ws.join("ran-deploy")));
    assert!(log.contains("\"by\":\"timeout\""), "{log}");
    assert!(!log.contains("\"by\":\"user\""), "{log}");
}

/// With a terminal, cordon asks there: the question shows a code, the answer (which must
/// repeat it) is read by cordon and never reaches the command, and the console sees the
/// command's latest output beside the request.
#[test]
fn a_prompt_is_asked_on_cordons_terminal_and_the_answer_never_reaches_the_command() {
    let (e, policy) = deploy_env("request-terminal");
    let state = PathBuf::from(format!("/tmp/crt-{}", std::process::id()));
    let _ = fs::remove_dir_all(&state);
    fs::create_dir_all(&state).unwrap();
    let driver = r#"
import glob, json, os, pty, re, socket, sys, time
cordon, policy, state = sys.argv[1], sys.argv[2], sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    os.environ["XDG_STATE_HOME"] = state
    os.execv(cordon, [cordon, "run", "--policy", policy, "--", "sh", "-c",
        "echo before-deploy; ./deploy; echo deploy=$?; read line; echo got=$line"])
out = b""
def read_until(pat, limit=20):
    global out
    end = time.time() + limit
    while not re.search(pat, out) and time.time() < end:
        try:
            out += os.read(fd, 1024)
        except OSError:
            break
    return re.search(pat, out)
m = read_until(rb"the code (\d{4})")
code = m.group(1) if m else b"none"
# What the console sees meanwhile (its endpoint may be written just after the prompt).
tail = None
end = time.time() + 10
while not glob.glob(state + "/cordon/approvals/*.json") and time.time() < end:
    time.sleep(0.02)
for info in glob.glob(state + "/cordon/approvals/*.json"):
    ep = json.load(open(info))
    s = socket.socket(socket.AF_UNIX); s.connect(ep["socket"]); f = s.makefile("rw")
    f.write(json.dumps({"token": ep["token"]}) + "\n"); f.flush(); f.readline()
    f.write(json.dumps({"op": "pending"}) + "\n"); f.flush()
    tail = json.loads(f.readline())["pending"][0].get("output_tail")
os.write(fd, b"o " + code + b"\r")
read_until(rb"deploy=\d")
os.write(fd, b"hello\r")
read_until(rb"got=\S*")
_, st = os.waitpid(pid, 0)
print(json.dumps({"out": out.decode(errors="replace"), "tail": tail,
                  "exit": os.waitstatus_to_exitcode(st)}))
"#;
    let out = Command::new("python3")
        .args(["-c", driver])
        .arg(cordon_bin())
        .arg(&policy)
        .arg(&state)
        .current_dir(&e.ws)
        .env("HOME", &e.home)
        .output()
        .unwrap();
    let _ = fs::remove_dir_all(&state);
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|_| panic!("driver: {text} {}", String::from_utf8_lossy(&out.stderr)));
    let shown = v["out"].as_str().unwrap_or_default();
    assert!(shown.contains("approval needed"), "{shown}");
    assert!(shown.contains("deploy=0"), "{shown}");
    // The command read the line typed after the question, not the answer.
    assert!(shown.contains("got=hello"), "{shown}");
    assert!(!shown.contains("got=o "), "{shown}");
    assert_eq!(v["exit"], 0, "{shown}");
    assert!(exists(&e.ws.join("ran-deploy")));
    assert!(
        v["tail"]
            .as_str()
            .is_some_and(|t| t.contains("before-deploy")),
        "the console saw no output tail: {v}"
    );
}

/// In a transaction, a request carries the diff so far.
#[test]
fn a_request_in_a_transaction_carries_its_diff() {
    let (e, policy) = deploy_env("request-diff");
    let a = run_answered(
        &e,
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--transaction",
            "reqdiff",
            "--",
            "sh",
            "-c",
            "echo changed > README; echo fresh > added.txt; ./deploy; echo deploy=$?",
        ],
        "deny",
    );
    let diff = a.seen["pending"]["diff"].as_str().unwrap_or_default();
    assert!(
        diff.contains("added.txt") && diff.contains("+fresh"),
        "{}",
        a.seen
    );
    assert!(
        diff.contains("README") && diff.contains("+changed"),
        "{diff}"
    );
    assert!(a.run.stdout.contains("deploy=126"), "{}", a.run.stdout);
}
