//! Table tests of the removal's order, its idempotent cases and its fail-safe gating.

use super::*;
use crate::plan::acl::{AceKind, INHERITED_ACE, OBJECT_INHERIT_ACE};
use crate::plan::network::{GROUP, OFFLINE_ACCOUNT, ONLINE_ACCOUNT};

fn p(text: &str) -> WinPath {
    WinPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn state() -> WinPath {
    p(r"C:\Users\dev\AppData\Local\cordon\state")
}

const GROUP_SID: [u32; 5] = [21, 1, 2, 3, 1010];
const OFFLINE_SID: [u32; 5] = [21, 1, 2, 3, 1011];
const ONLINE_SID: [u32; 5] = [21, 1, 2, 3, 1012];

fn sid(subs: &[u32]) -> Sid {
    Sid::new(5, subs)
}

fn developer() -> Sid {
    sid(&[21, 1, 2, 3, 1001])
}

fn ace(kind: AceKind, who: &Sid, flags: u8) -> Ace {
    Ace {
        kind,
        sid: who.clone(),
        mask: crate::plan::acl::READ_GRANT,
        flags,
    }
}

/// A machine where setup ran to the end and an elevated run granted cordon.exe.
fn complete() -> RemoveInput {
    let (g, off, on) = (sid(&GROUP_SID), sid(&OFFLINE_SID), sid(&ONLINE_SID));
    RemoveInput {
        state_dir: state(),
        developer: Some((developer(), "S-1-5-5-0-12345".into())),
        group: Principal {
            name: GROUP,
            lookup: Ok(Some(g.clone())),
        },
        accounts: vec![
            Principal {
                name: OFFLINE_ACCOUNT,
                lookup: Ok(Some(off)),
            },
            Principal {
                name: ONLINE_ACCOUNT,
                lookup: Ok(Some(on)),
            },
        ],
        recorded: Vec::new(),
        password_files: vec![
            password_file(&state(), OFFLINE_ACCOUNT),
            password_file(&state(), ONLINE_ACCOUNT),
        ],
        broker_files: vec![state().child("broker-0123.key")],
        paths: vec![
            KnownPath {
                path: state(),
                why: "setup's deny-read".into(),
                always: true,
                state: PathState::Aces(vec![
                    ace(AceKind::Deny, &g, OBJECT_INHERIT_ACE),
                    ace(AceKind::Allow, &developer(), 0),
                ]),
            },
            KnownPath {
                path: p(r"C:\tools\cordon.exe"),
                why: "cordon.exe".into(),
                always: true,
                state: PathState::Aces(vec![ace(AceKind::Allow, &g, 0)]),
            },
        ],
    }
}

/// Nothing of setup left, as after a removal that finished.
fn removed() -> RemoveInput {
    let mut i = complete();
    i.group.lookup = Ok(None);
    for a in &mut i.accounts {
        a.lookup = Ok(None);
    }
    i.password_files.clear();
    i.broker_files.clear();
    for k in &mut i.paths {
        k.state = PathState::Aces(vec![ace(AceKind::Allow, &developer(), 0)]);
    }
    i
}

fn kinds(plan: &RemovePlan) -> Vec<&'static str> {
    plan.steps
        .iter()
        .map(|s| match s.step {
            Step::Record { .. } => "record",
            Step::Disable { .. } => "disable",
            Step::StopProcesses { .. } => "stop",
            Step::DeleteAccount { .. } => "delete-account",
            Step::DeleteGroup { .. } => "delete-group",
            Step::RemoveRights { .. } => "rights",
            Step::RemoveFirewallRules { .. } => "firewall",
            Step::RemoveWfp { .. } => "wfp",
            Step::RemoveAces { .. } => "aces",
            Step::NoAces { .. } => "no-aces",
            Step::Unhide { .. } => "unhide",
            Step::DeletePassword { .. } => "password",
            Step::DeleteBrokerFiles { .. } => "broker-files",
            Step::Forget { .. } => "forget",
        })
        .collect()
}

fn position(plan: &RemovePlan, kind: &str) -> usize {
    kinds(plan)
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_else(|| panic!("no {kind} step"))
}

fn last_position(plan: &RemovePlan, kind: &str) -> usize {
    kinds(plan)
        .iter()
        .rposition(|k| *k == kind)
        .unwrap_or_else(|| panic!("no {kind} step"))
}

#[test]
fn the_order_contains_first_deletes_then_undoes() {
    let plan = removal_plan(&complete());
    assert_eq!(
        kinds(&plan),
        [
            "record",
            "disable",
            "disable",
            "stop",
            "delete-account",
            "delete-account",
            "delete-group",
            "rights",
            "rights",
            "firewall",
            "wfp",
            "aces",
            "aces",
            "unhide",
            "unhide",
            "password",
            "password",
            "broker-files",
            "forget",
        ]
    );
    // Fail-safe pairs: what lets an account act goes before what keeps it in check.
    let before = [
        ("disable", "stop"),
        ("stop", "delete-account"),
        ("record", "delete-account"),
        ("delete-group", "firewall"),
        ("delete-group", "aces"),
        ("delete-group", "rights"),
        ("delete-group", "password"),
    ];
    for (a, b) in before {
        assert!(
            last_position(&plan, a) < position(&plan, b),
            "{a} must come before {b}"
        );
    }
    assert!(
        plan.steps
            .iter()
            .all(|s| s.absent.is_none()
                || matches!(s.step, Step::Forget { .. } | Step::Record { .. }))
    );
}

#[test]
fn phases_follow_the_steps() {
    let plan = removal_plan(&complete());
    for s in &plan.steps {
        let want = match s.step {
            Step::Record { .. } | Step::Disable { .. } | Step::StopProcesses { .. } => {
                Phase::Contain
            }
            Step::DeleteAccount { .. } | Step::DeleteGroup { .. } => Phase::Delete,
            Step::Forget { .. } => Phase::Finish,
            _ => Phase::Undo,
        };
        assert_eq!(s.phase, want, "{:?}", s.step);
    }
}

#[test]
fn the_sids_are_recorded_and_the_brokers_named() {
    let plan = removal_plan(&complete());
    let Step::Record { entries, file } = &plan.steps[0].step else {
        panic!("first step is not the record");
    };
    assert_eq!(*file, record_file(&state()));
    assert_eq!(entries.len(), 3);
    let text = encode_record(entries);
    assert_eq!(decode_record(&text), *entries);
    assert_eq!(
        decode_record("garbage\nCordonX S-1-5-21-1-2-3-9\n").len(),
        1
    );
    let Some(Step::StopProcesses { pipes, sids }) = plan
        .steps
        .iter()
        .map(|s| &s.step)
        .find(|s| matches!(s, Step::StopProcesses { .. }))
    else {
        panic!("no stop step");
    };
    assert_eq!(sids, &vec![sid(&OFFLINE_SID), sid(&ONLINE_SID)]);
    let want: Vec<String> = [OFFLINE_ACCOUNT, ONLINE_ACCOUNT]
        .iter()
        .map(|a| BrokerName::new(&developer(), "S-1-5-5-0-12345", a).pipe())
        .collect();
    assert_eq!(pipes, &want);
}

#[test]
fn only_explicit_aces_naming_the_sandbox_sids_are_removed() {
    let (g, off) = (sid(&GROUP_SID), sid(&OFFLINE_SID));
    let other = sid(&[21, 9, 9, 9, 500]);
    let aces = vec![
        ace(AceKind::Deny, &g, OBJECT_INHERIT_ACE),
        ace(AceKind::Allow, &g, INHERITED_ACE),
        ace(AceKind::Allow, &off, 0),
        ace(AceKind::Allow, &other, 0),
        ace(AceKind::Deny, &other, 0),
    ];
    let got = aces_naming(&aces, &[g.clone(), off.clone()]);
    assert_eq!(
        got,
        vec![
            ace(AceKind::Deny, &g, OBJECT_INHERIT_ACE),
            ace(AceKind::Allow, &off, 0)
        ]
    );
    let plan = removal_plan(&complete());
    let removes: Vec<&Vec<Ace>> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.step {
            Step::RemoveAces { aces: Ok(a), .. } => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(removes.len(), 2);
    assert!(removes
        .iter()
        .all(|a| a.iter().all(|ace| ace.sid != developer())));
}

#[test]
fn idempotent_cases_are_absent_before_anything_runs() {
    type Case = (&'static str, fn() -> RemoveInput, &'static [&'static str]);
    // (machine, input, the kinds that still run: all others are absent up front)
    let cases: [Case; 4] = [
        (
            "a second removal",
            removed,
            &["stop", "firewall", "wfp", "unhide", "unhide"],
        ),
        (
            "a setup that stopped after the group",
            || {
                let mut i = removed();
                i.group.lookup = Ok(Some(sid(&GROUP_SID)));
                i
            },
            &[
                "record",
                "stop",
                "delete-group",
                "firewall",
                "wfp",
                "unhide",
                "unhide",
                "forget",
            ],
        ),
        (
            "a setup that stopped after the passwords",
            || {
                let mut i = complete();
                i.paths.retain(|k| k.path != p(r"C:\tools\cordon.exe"));
                i.paths[0].state = PathState::Aces(Vec::new());
                i.broker_files.clear();
                i
            },
            &[
                "record",
                "disable",
                "disable",
                "stop",
                "delete-account",
                "delete-account",
                "delete-group",
                "rights",
                "rights",
                "firewall",
                "wfp",
                "unhide",
                "unhide",
                "password",
                "password",
                "forget",
            ],
        ),
        (
            "a removal that stopped after deleting the principals",
            || {
                let mut i = removed();
                i.recorded = vec![
                    (GROUP.into(), sid(&GROUP_SID)),
                    (OFFLINE_ACCOUNT.into(), sid(&OFFLINE_SID)),
                    (ONLINE_ACCOUNT.into(), sid(&ONLINE_SID)),
                ];
                i.paths[0].state = PathState::Aces(vec![ace(AceKind::Deny, &sid(&GROUP_SID), 0)]);
                i
            },
            &[
                "stop", "rights", "rights", "firewall", "wfp", "aces", "unhide", "unhide", "forget",
            ],
        ),
    ];
    for (name, input, runs) in cases {
        let plan = removal_plan(&input());
        let got: Vec<&str> = plan
            .steps
            .iter()
            .zip(kinds(&plan))
            .filter(|(s, _)| s.absent.is_none())
            .map(|(_, k)| k)
            .collect();
        assert_eq!(got, runs.to_vec(), "{name}");
    }
}

#[test]
fn a_second_removal_reports_every_step_done_or_absent() {
    let plan = removal_plan(&removed());
    let report = run(&plan, |step| match step {
        Step::Unhide { .. } => Ok(Did::Absent("no such value".into())),
        Step::RemoveWfp { .. } => Ok(WfpRemoved::default().did()),
        _ => Ok(Did::Absent("nothing there".into())),
    });
    assert!(report.complete(), "{report}");
    assert!(report
        .lines
        .iter()
        .all(|l| matches!(l.outcome, Outcome::Absent(_))));
    let text = report.to_string();
    assert!(text.starts_with(" 1. absent record the SIDs"), "{text}");
    assert_eq!(text.lines().count(), plan.steps.len());
}

fn outcome_of<'a>(got: &'a [(&str, Outcome)], kind: &str) -> &'a Outcome {
    &got.iter()
        .find(|(k, _)| *k == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
        .1
}

#[test]
fn what_keeps_the_accounts_in_check_stays_while_they_can_act() {
    // (failing step, steps that must then be kept, steps that still run)
    let cases: [(&str, &[&str], &[&str]); 5] = [
        (
            "record",
            &[
                "delete-account",
                "delete-group",
                "firewall",
                "wfp",
                "aces",
                "rights",
                "forget",
            ],
            &["disable", "stop"],
        ),
        (
            "stop",
            &[
                "firewall", "wfp", "aces", "rights", "password", "unhide", "forget",
            ],
            &["delete-account", "delete-group"],
        ),
        (
            "delete-account",
            &["firewall", "wfp", "aces", "rights", "password", "forget"],
            &["delete-group"],
        ),
        (
            "delete-group",
            &["firewall", "wfp", "aces", "forget"],
            &["delete-account"],
        ),
        // A failed disable does not matter once the account is deleted.
        (
            "disable",
            &["forget"],
            &[
                "stop",
                "delete-account",
                "firewall",
                "wfp",
                "aces",
                "password",
            ],
        ),
    ];
    for (fails, kept, runs) in cases {
        let got = run_all_failing(fails);
        assert!(
            matches!(outcome_of(&got, fails), Outcome::Failed(_)),
            "{fails}: {:?}",
            outcome_of(&got, fails)
        );
        for k in kept {
            assert!(
                matches!(outcome_of(&got, k), Outcome::Kept(_)),
                "{fails} failed, yet {k} was {:?}",
                outcome_of(&got, k)
            );
        }
        for k in runs {
            assert!(
                matches!(outcome_of(&got, k), Outcome::Done(_)),
                "{fails} failed, and {k} was {:?}",
                outcome_of(&got, k)
            );
        }
    }
    // An undo step failing keeps the others running, and only the record.
    let got = run_all_failing("firewall");
    assert!(matches!(outcome_of(&got, "wfp"), Outcome::Done(_)));
    assert!(matches!(outcome_of(&got, "aces"), Outcome::Done(_)));
    assert!(matches!(outcome_of(&got, "forget"), Outcome::Kept(_)));
}

/// Every step of kind `fails` fails; the rest succeed (the runner decides what is called).
fn run_all_failing(fails: &str) -> Vec<(&'static str, Outcome)> {
    let plan = removal_plan(&complete());
    let k = kinds(&plan);
    let report = run(&plan, |step| {
        let kind = kind_of(step);
        if kind == fails {
            Err("Win32 error 5 (access denied)".into())
        } else {
            Ok(Did::Done(String::new()))
        }
    });
    k.into_iter()
        .zip(report.lines.into_iter().map(|l| l.outcome))
        .collect()
}

fn kind_of(step: &Step) -> &'static str {
    let plan = RemovePlan {
        steps: vec![Planned {
            step: step.clone(),
            phase: Phase::Contain,
            absent: None,
        }],
    };
    kinds(&plan)[0]
}

#[test]
fn a_failure_names_the_error_and_the_way_by_hand() {
    let plan = removal_plan(&complete());
    let report = run(&plan, |step| match step {
        Step::DeleteAccount {
            account: OFFLINE_ACCOUNT,
        } => Err("NetUserDel: Access is denied. (os error 5)".into()),
        _ => Ok(Did::Done(String::new())),
    });
    assert!(!report.complete());
    let text = report.to_string();
    assert!(
        text.contains("FAILED delete the account CordonSandboxOffline: NetUserDel: Access is denied. (os error 5)"),
        "{text}"
    );
    assert!(text.contains("kept   remove the firewall rules"), "{text}");
    let msg = report.leftovers();
    for needle in [
        "delete the account CordonSandboxOffline failed (NetUserDel: Access is denied. (os error 5)); by hand: net user CordonSandboxOffline /delete",
        "Get-NetFirewallRule -DisplayName 'cordon:*' | Remove-NetFirewallRule",
        "icacls \"C:\\Users\\dev\\AppData\\Local\\cordon\\state\" /remove *S-1-5-21-1-2-3-1010",
        r#"reg delete "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon\SpecialAccounts\UserList" /v CordonSandboxOnline /f"#,
        "run `cordon setup --elevated --remove` again",
    ] {
        assert!(msg.contains(needle), "{needle} not in\n{msg}");
    }
}

#[test]
fn the_dry_run_marks_what_is_absent() {
    let text = removal_plan(&removed()).to_string();
    assert!(
        text.contains("delete the account CordonSandboxOffline (absent: no such account)"),
        "{text}"
    );
    assert!(
        text.contains("remove the firewall rules named `cordon:*`\n"),
        "{text}"
    );
    assert!(text.starts_with(" 1. record the SIDs"), "{text}");
}

#[test]
fn no_sid_known_means_nothing_to_look_for() {
    let mut i = removed();
    i.developer = None;
    let plan = removal_plan(&i);
    for s in &plan.steps {
        match &s.step {
            Step::StopProcesses { .. } | Step::RemoveAces { .. } | Step::RemoveRights { .. } => {
                assert!(s.absent.is_some(), "{:?}", s.step)
            }
            _ => {}
        }
    }
    // An unreadable DACL is a step that fails with its error, not a silent skip.
    let mut i = complete();
    i.paths[1].state = PathState::Unreadable("Access is denied. (os error 5)".into());
    let plan = removal_plan(&i);
    assert!(plan.steps.iter().any(|s| matches!(
        &s.step,
        Step::RemoveAces { aces: Err(e), .. } if e.contains("os error 5")
    ) && s.absent.is_none()));
}

#[test]
fn error_codes_for_already_absent() {
    assert!(user_absent(2221) && !user_absent(5));
    assert!(group_absent(2220) && group_absent(1376) && !group_absent(2221));
    assert!(rights_absent(0xC000_0034) && !rights_absent(0xC000_0022));
    assert!(wfp_object_absent(0x8032_0007) && wfp_object_absent(0x8032_0005));
    assert!(!wfp_object_absent(0x8032_0004));
    assert_eq!(
        WfpRemoved {
            filters: 12,
            sublayer: true,
            provider: true
        }
        .did(),
        Did::Done("deleted 12 filters, the sublayer, the provider".into())
    );
    assert_eq!(firewall_prefix(), "cordon:");
}

#[test]
fn managed_paths_with_nothing_of_ours_are_one_line() {
    let mut i = complete();
    let g = sid(&GROUP_SID);
    for (n, aces) in [
        ("hooks", vec![ace(AceKind::Deny, &developer(), 0)]),
        ("config", Vec::new()),
        ("ws", vec![ace(AceKind::Allow, &g, OBJECT_INHERIT_ACE)]),
    ] {
        i.paths.push(KnownPath {
            path: p(&format!(r"C:\src\{n}")),
            why: "an elevated run's".into(),
            state: PathState::Aces(aces),
            always: false,
        });
    }
    i.paths.push(KnownPath {
        path: p(r"C:\src\gone"),
        why: "an elevated run's".into(),
        state: PathState::Absent,
        always: false,
    });
    let plan = removal_plan(&i);
    let aces: Vec<&WinPath> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.step {
            Step::RemoveAces { path, .. } => Some(path),
            _ => None,
        })
        .collect();
    assert_eq!(
        aces,
        [&state(), &p(r"C:\tools\cordon.exe"), &p(r"C:\src\ws")]
    );
    let quiet: Vec<&Planned> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.step, Step::NoAces { .. }))
        .collect();
    assert_eq!(quiet.len(), 1);
    assert_eq!(quiet[0].step, Step::NoAces { paths: 3 });
    assert!(quiet[0].absent.is_some());
    // The always-listed paths keep their line when there is nothing on them.
    let plan = removal_plan(&removed());
    assert_eq!(
        kinds(&plan).iter().filter(|k| **k == "aces").count(),
        2,
        "{plan}"
    );
}
