//! `cordon setup --elevated --remove`'s executor under Wine (CI) or Windows: each step's
//! Win32 piece run for real where the machine allows it, and a whole removal repeated on a
//! machine without setup. What only an administrator on real Windows shows (accounts, LSA,
//! the firewall, WFP) is `scripts/windows-smoke.ps1 -Remove`'s.

use std::os::windows::io::OwnedHandle;
use std::time::{Duration, Instant};

use super::account::{self, Copy, Launch};
use super::account_tests::this_exe;
use super::remove::{self, RemoveError};
use super::*;
use crate::broker::{BrokerName, Start, StartAnswer};
use crate::handoff::{read_frame, write_frame};
use crate::plan::network::{OFFLINE_ACCOUNT, ONLINE_ACCOUNT};
use crate::plan::remove::{encode_record, record_file, Did, Outcome};
use crate::plan::setup::password_file;
use crate::sid::Sid;

fn under_wine() -> bool {
    std::env::var_os("CORDON_UNDER_WINE").is_some()
}

fn skip(what: &str) {
    eprintln!("SKIP {what}: needs Wine or an administrator on real Windows");
}

/// Wine, or an elevated administrator on Windows: HKLM and the process list are open.
fn may_change_the_machine() -> bool {
    under_wine() || elevate::is_elevated().unwrap_or(false)
}

fn me() -> Sid {
    token::process_token()
        .and_then(|t| token::user_sid(&t))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn state(name: &str) -> WinPath {
    let dir = std::env::temp_dir().join(format!("cordon-remove-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    WinPath::from_path(&dir).unwrap_or_else(|e| panic!("{e}"))
}

fn write(path: &WinPath, text: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent.to_api()).unwrap_or_else(|e| panic!("{e}"));
    }
    fs::write(path.to_api(), text).unwrap_or_else(|e| panic!("{path}: {e}"));
}

fn exists(path: &WinPath) -> bool {
    fs::metadata(path.to_api()).is_ok()
}

#[test]
fn logon_screen_hiding_is_removed_then_absent() {
    if !may_change_the_machine() {
        return skip("HKLM");
    }
    let name = format!("CordonTestUnhide{}", std::process::id());
    setup::hide_from_logon(&name).unwrap_or_else(|e| panic!("{e}"));
    assert!(setup::hidden_from_logon(&name));
    assert_eq!(remove::unhide(&name), Ok(Did::Done(String::new())));
    assert!(!setup::hidden_from_logon(&name));
    assert!(matches!(remove::unhide(&name), Ok(Did::Absent(_))));
}

#[test]
fn a_missing_account_is_absent_for_disable_and_delete() {
    let name = format!("CordonNoSuch{}", std::process::id());
    // Wine 8 has no NetUserSetInfo at all (calling it aborts the process); removal calls it
    // only for an account that exists, which under Wine none does.
    if !under_wine() {
        let got = remove::disable(&name);
        assert!(matches!(got, Ok(Did::Absent(_))), "{got:?}");
    }
    let step = crate::plan::remove::Step::DeleteAccount {
        account: "CordonSandboxNeverMade",
    };
    assert!(matches!(remove::execute(&step), Ok(Did::Absent(_))));
}

#[test]
fn the_process_list_has_this_process_and_ends_what_is_selected() {
    if !may_change_the_machine() {
        return skip("ending a process");
    }
    let list = remove::processes().unwrap_or_else(|e| panic!("WTSEnumerateProcessesW: {e}"));
    let pid = std::process::id();
    let mine = list
        .iter()
        .find(|(p, _, _)| *p == pid)
        .unwrap_or_else(|| panic!("this process ({pid}) is not in {} listed", list.len()));
    // Wine may list no owner; Windows lists this process's user.
    if let Some(sid) = &mine.1 {
        assert_eq!(*sid, me());
    } else {
        assert!(under_wine(), "no owner listed for this process");
    }
    let system = std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\windows".into());
    let mut child = std::process::Command::new(format!(r"{system}\system32\cmd.exe"))
        .args(["/c", "ping", "-n", "60", "127.0.0.1"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let target = child.id();
    let t0 = Instant::now();
    let ended = remove::end_processes(|p, _| p == target).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].0, target);
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert!(!status.success() && t0.elapsed() < Duration::from_secs(30));
    // Nothing selected: nothing ended, no error.
    assert_eq!(remove::end_processes(|_, _| false), Ok(Vec::new()));
}

/// A broker as the same user, started as `cordon run` starts one (the test binary's
/// `broker_entry`), on `pipe`.
fn start_broker(pipe: &str) -> OwnedHandle {
    let (req_r, mut req_w) = io::pipe().unwrap_or_else(|e| panic!("{e}"));
    let (mut resp_r, resp_w) = io::pipe().unwrap_or_else(|e| panic!("{e}"));
    let (req_r, resp_w) = (OwnedHandle::from(req_r), OwnedHandle::from(resp_w));
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.push(("CORDON_TEST_BROKER".into(), "1".into()));
    let exe = this_exe();
    let args: Vec<String> = [
        "exec::broker_tests::broker_entry",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ]
    .map(String::from)
    .to_vec();
    let child = account::spawn(
        &Launch::SameUser { env: &env },
        &Copy {
            exe: &exe,
            args: &args,
        },
        &req_r,
        &resp_w,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    drop((req_r, resp_w));
    let start = Start {
        developer: me(),
        account: None,
        pipe: pipe.to_string(),
        secret: "a-secret-of-sixteen-or-more".into(),
        idle_ms: 60_000,
    };
    write_frame(&mut req_w, &start.encode()).unwrap_or_else(|e| panic!("{e}"));
    let answer = read_frame(&mut resp_r)
        .map_err(|e| e.to_string())
        .and_then(|p| StartAnswer::decode(&p).map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("the broker did not start: {e}"));
    assert!(matches!(answer, StartAnswer::Ready { .. }), "{answer:?}");
    child
}

#[test]
fn a_broker_is_told_to_quit_and_a_second_stop_finds_none() {
    let session = format!("remove-test-{}", std::process::id());
    let pipe = BrokerName::new(&me(), &session, OFFLINE_ACCOUNT).pipe();
    let child = start_broker(&pipe);
    assert!(broker::is_serving(&pipe));
    let did = remove::stop(std::slice::from_ref(&pipe), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(did, Did::Done("1 brokers told to quit".into()));
    assert!(
        account::wait_exit(&child, Duration::from_secs(20)).is_some(),
        "the broker is still running"
    );
    assert!(!broker::is_serving(&pipe));
    let again = remove::stop(std::slice::from_ref(&pipe), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(again, Did::Absent(_)), "{again:?}");
}

#[test]
fn removal_of_a_machine_without_setup_succeeds_twice() {
    if !may_change_the_machine() {
        return skip("a whole removal");
    }
    if setup::lookup_sid(crate::plan::network::GROUP).is_ok() {
        return skip("a machine without setup");
    }
    let st = state("twice");
    // What a setup that stopped early leaves in the state folder, and what runs left.
    let pw = password_file(&st, OFFLINE_ACCOUNT);
    write(&pw, "not really DPAPI");
    let key = st.child("broker-0123456789abcdef0123456789abcdef.key");
    write(&key, "secret");
    let report = remove::apply(&st, None, None).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{report}");
    assert!(report.complete(), "{}", report.leftovers());
    assert!(!exists(&pw) && !exists(&key));
    let done: Vec<&str> = report
        .lines
        .iter()
        .filter(|l| matches!(l.outcome, Outcome::Done(_)))
        .map(|l| l.what.as_str())
        .collect();
    assert_eq!(done.len(), 2, "{done:?}");
    let again = remove::apply(&st, None, None).unwrap_or_else(|e| panic!("{e}"));
    assert!(again.complete(), "{}", again.leftovers());
    assert!(
        again
            .lines
            .iter()
            .all(|l| matches!(l.outcome, Outcome::Absent(_))),
        "a second removal did something:\n{again}"
    );
}

#[test]
fn a_removal_stopped_half_way_finishes_from_its_record() {
    if !may_change_the_machine() {
        return skip("a whole removal");
    }
    if setup::lookup_sid(crate::plan::network::GROUP).is_ok() {
        return skip("a machine without setup");
    }
    // The principals are gone (deleted by the first run), their SIDs recorded: the SID
    // steps still run, and the record is forgotten at the end.
    let st = state("record");
    let record = record_file(&st);
    let sids = [
        (
            crate::plan::network::GROUP,
            Sid::new(5, &[21, 77, 78, 79, 1010]),
        ),
        (OFFLINE_ACCOUNT, Sid::new(5, &[21, 77, 78, 79, 1011])),
        (ONLINE_ACCOUNT, Sid::new(5, &[21, 77, 78, 79, 1012])),
    ];
    let entries: Vec<(String, Sid)> = sids
        .iter()
        .map(|(n, s)| (n.to_string(), s.clone()))
        .collect();
    write(&record, &encode_record(&entries));
    let report = remove::apply(&st, None, None).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{report}");
    assert!(report.complete(), "{}", report.leftovers());
    assert!(!exists(&record), "the record outlived a complete removal");
    let forget = report
        .lines
        .last()
        .unwrap_or_else(|| panic!("an empty report"));
    assert!(matches!(forget.outcome, Outcome::Done(_)), "{forget:?}");
    let again = remove::apply(&st, None, None).unwrap_or_else(|e| panic!("{e}"));
    assert!(again.complete(), "{}", again.leftovers());
}

#[test]
fn removal_refuses_to_run_for_another_account() {
    let other = Sid::new(5, &[21, 7, 7, 7, 1001]);
    let st = state("other");
    let err = remove::apply(&st, None, Some(&other))
        .err()
        .unwrap_or_else(|| panic!("ran for another account"));
    let RemoveError::WrongUser(source) = err;
    assert!(source.to_string().contains(&other.to_string()), "{source}");
}

#[test]
fn the_firewall_lists_its_rules_or_names_why_not() {
    let fw = firewall::Firewall::open().unwrap_or_else(|e| panic!("{e}"));
    match fw.names() {
        Ok(names) => assert!(!under_wine(), "Wine lists rules now: {names:?}"),
        // Wine's hnetcfg has no rule enumerator: removal then looks for setup's names.
        Err(e) => {
            assert!(under_wine(), "{e}");
            assert!(
                e.to_string()
                    .contains("INetFwRules::get__NewEnum: HRESULT 0x80004001"),
                "{e}"
            );
        }
    }
    assert!(!fw.exists("cordon: a rule nobody made"));
}
