//! `cordon setup --elevated --remove` as data: the steps that undo setup, in a fail-safe order,
//! which of them are already absent, and how a run of them is judged and reported.
//!
//! The executor (`exec::remove`) reads the machine into a [`RemoveInput`], [`removal_plan`]
//! orders the steps, and [`run`] calls the executor once per step, deciding here (so it is
//! tested on every platform) which steps must wait because an earlier one failed.
//!
//! The order, and why:
//! 1. **contain**: record the SIDs (a removal stopped later can still find what names them),
//!    disable the accounts (no new logon, so no new broker), stop cordon's brokers and end
//!    every process running as the accounts;
//! 2. **delete** the accounts and the group (only once the SIDs are recorded);
//! 3. **undo** what kept the accounts in check or what setup needs: their user rights, the
//!    firewall rules, the WFP filters, the ACEs naming their SIDs, the logon-screen hiding, the
//!    stored passwords and the brokers' keys. Only when no account exists and none of their
//!    processes runs: removing a firewall block or a deny-read ACE while an account can still
//!    act would hand it the network or the secrets;
//! 4. **finish**: forget the record, once everything else is done.

use std::fmt;

use super::acl::{Ace, INHERITED_ACE};
use super::network::{self, accounts_plan};
use super::setup::{password_file, FIREWALL_PREFIX, WINLOGON_USER_LIST};
use crate::broker::BrokerName;
use crate::sid::Sid;
use crate::winpath::WinPath;

/// The file the SIDs are recorded in before anything is deleted (deny-read for the sandbox
/// group, as the whole state folder is).
pub fn record_file(state_dir: &WinPath) -> WinPath {
    state_dir.child("elevated").child("removing.txt")
}

/// The record's text: one `NAME SID` line per principal.
pub fn encode_record(entries: &[(String, Sid)]) -> String {
    entries.iter().map(|(n, s)| format!("{n} {s}\n")).collect()
}

/// Reads what [`encode_record`] wrote; lines it cannot read are skipped.
pub fn decode_record(text: &str) -> Vec<(String, Sid)> {
    text.lines()
        .filter_map(|l| {
            let (name, sid) = l.trim().split_once(' ')?;
            Some((name.to_string(), Sid::parse(sid.trim()).ok()?))
        })
        .collect()
}

/// The prefix every cordon firewall rule's name starts with, as removal matches it (setup's
/// [`FIREWALL_PREFIX`] without its space, so a rule an older cordon named `cordon:x` goes too).
pub fn firewall_prefix() -> &'static str {
    FIREWALL_PREFIX.trim_end()
}

/// A local group or account as found before removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: &'static str,
    /// `Ok(Some)`: it exists with this SID; `Ok(None)`: no such name; `Err`: the lookup
    /// failed otherwise (the steps then run and find out).
    pub lookup: Result<Option<Sid>, String>,
}

/// What a path cordon put ACEs on holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathState {
    Absent,
    /// Its DACL's allow and deny ACEs.
    Aces(Vec<Ace>),
    Unreadable(String),
}

/// A path cordon knows it put ACEs for the sandbox SIDs on, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownPath {
    pub path: WinPath,
    pub why: String,
    pub state: PathState,
    /// A step of its own even when nothing names the SIDs there (the state folder,
    /// cordon.exe); otherwise such paths are counted on one line.
    pub always: bool,
}

/// The machine as the executor found it, before removing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveInput {
    pub state_dir: WinPath,
    /// The developer's SID and logon session (its logon SID), which name its brokers' pipes.
    pub developer: Option<(Sid, String)>,
    pub group: Principal,
    /// In [`accounts_plan`]'s order.
    pub accounts: Vec<Principal>,
    /// What an earlier removal that stopped half-way recorded.
    pub recorded: Vec<(String, Sid)>,
    /// The password files that exist.
    pub password_files: Vec<WinPath>,
    /// The brokers' key and lock files in the state folder.
    pub broker_files: Vec<WinPath>,
    /// The state folder, cordon.exe, and the paths elevated runs managed.
    pub paths: Vec<KnownPath>,
}

/// One thing removal does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Record {
        file: WinPath,
        entries: Vec<(String, Sid)>,
    },
    Disable {
        account: &'static str,
    },
    /// Tell this developer's brokers to quit over their pipes, then end every process whose
    /// user is one of `sids`.
    StopProcesses {
        pipes: Vec<String>,
        sids: Vec<Sid>,
    },
    DeleteAccount {
        account: &'static str,
    },
    DeleteGroup {
        group: &'static str,
    },
    /// Every user right of the SID (LsaRemoveAccountRights with AllRights, which also
    /// deletes its LSA account object).
    RemoveRights {
        account: &'static str,
        sid: Option<Sid>,
    },
    /// Every rule whose name starts with `prefix`, and `known` (setup's current names) when
    /// the firewall cannot list its rules.
    RemoveFirewallRules {
        prefix: &'static str,
        known: Vec<String>,
    },
    RemoveWfp {
        provider: &'static str,
        sublayer: &'static str,
    },
    /// Explicit ACEs naming the sandbox SIDs on one path (`Err`: its DACL could not be read).
    RemoveAces {
        path: WinPath,
        why: String,
        aces: Result<Vec<Ace>, String>,
    },
    /// The paths elevated runs managed where no ACE names the SIDs: one line, always absent.
    NoAces {
        paths: usize,
    },
    Unhide {
        account: &'static str,
    },
    DeletePassword {
        account: &'static str,
        file: WinPath,
    },
    DeleteBrokerFiles {
        state_dir: WinPath,
        files: Vec<WinPath>,
    },
    Forget {
        file: WinPath,
    },
}

/// Which steps must have succeeded before a step may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Runs whatever happened before.
    Contain,
    /// Needs the SIDs recorded.
    Delete,
    /// Needs every account and the group gone and none of their processes running.
    Undo,
    /// Needs every step before it done or absent.
    Finish,
}

/// A step, its phase, and whether the observation already showed nothing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub step: Step,
    pub phase: Phase,
    /// `Some(why)`: already absent, not run.
    pub absent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovePlan {
    pub steps: Vec<Planned>,
}

/// The SIDs known for `name`: the one it has now, then any an earlier removal recorded.
fn sids_of(p: &Principal, recorded: &[(String, Sid)]) -> Vec<Sid> {
    let mut out: Vec<Sid> = Vec::new();
    if let Ok(Some(s)) = &p.lookup {
        out.push(s.clone());
    }
    for (n, s) in recorded {
        if n.eq_ignore_ascii_case(p.name) && !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

fn absent_if(cond: bool, why: &str) -> Option<String> {
    cond.then(|| why.to_string())
}

/// The explicit ACEs of `aces` that name one of `sids` (inherited ones go with the parent's).
pub fn aces_naming(aces: &[Ace], sids: &[Sid]) -> Vec<Ace> {
    aces.iter()
        .filter(|a| a.flags & INHERITED_ACE == 0 && sids.contains(&a.sid))
        .cloned()
        .collect()
}

pub fn removal_plan(input: &RemoveInput) -> RemovePlan {
    let plan = accounts_plan();
    let mut steps = Vec::new();
    let mut push = |step: Step, phase: Phase, absent: Option<String>| {
        steps.push(Planned {
            step,
            phase,
            absent,
        })
    };
    let principals: Vec<&Principal> = std::iter::once(&input.group)
        .chain(&input.accounts)
        .collect();
    let mut entries: Vec<(String, Sid)> = Vec::new();
    for p in &principals {
        for s in sids_of(p, &input.recorded) {
            entries.push((p.name.to_string(), s));
        }
    }
    let all_sids: Vec<Sid> = entries.iter().map(|(_, s)| s.clone()).collect();
    let already = !entries.is_empty()
        && entries
            .iter()
            .all(|e| input.recorded.iter().any(|r| r.0 == e.0 && r.1 == e.1));
    let record_absent = if entries.is_empty() {
        Some("no SID of the group or the accounts is known".to_string())
    } else if already {
        Some("recorded by an earlier removal".to_string())
    } else {
        None
    };
    push(
        Step::Record {
            file: record_file(&input.state_dir),
            entries: entries.clone(),
        },
        Phase::Contain,
        record_absent,
    );
    let gone = |p: &Principal| matches!(p.lookup, Ok(None));
    for p in &input.accounts {
        push(
            Step::Disable { account: p.name },
            Phase::Contain,
            absent_if(gone(p), "no such account"),
        );
    }
    let pipes: Vec<String> = match &input.developer {
        Some((dev, session)) => plan
            .accounts
            .iter()
            .map(|a| BrokerName::new(dev, session, a.name).pipe())
            .collect(),
        None => Vec::new(),
    };
    let account_sids: Vec<Sid> = input
        .accounts
        .iter()
        .flat_map(|p| sids_of(p, &input.recorded))
        .collect();
    let stop_absent = absent_if(
        pipes.is_empty() && account_sids.is_empty(),
        "no broker pipe to ask and no SID of the accounts known",
    );
    push(
        Step::StopProcesses {
            pipes,
            sids: account_sids,
        },
        Phase::Contain,
        stop_absent,
    );
    for p in &input.accounts {
        push(
            Step::DeleteAccount { account: p.name },
            Phase::Delete,
            absent_if(gone(p), "no such account"),
        );
    }
    push(
        Step::DeleteGroup {
            group: input.group.name,
        },
        Phase::Delete,
        absent_if(gone(&input.group), "no such group"),
    );
    for p in &input.accounts {
        let sids = sids_of(p, &input.recorded);
        if sids.is_empty() {
            push(
                Step::RemoveRights {
                    account: p.name,
                    sid: None,
                },
                Phase::Undo,
                Some(
                    "no SID of the account is known (never made, or deleted without cordon)".into(),
                ),
            );
        }
        for sid in sids {
            push(
                Step::RemoveRights {
                    account: p.name,
                    sid: Some(sid),
                },
                Phase::Undo,
                None,
            );
        }
    }
    // Names do not depend on the SID: any SID gives setup's current rule names.
    let known = network::firewall_rules(&Sid::new(5, &[21, 0, 0, 0, 0]))
        .into_iter()
        .map(|r| r.name)
        .collect();
    push(
        Step::RemoveFirewallRules {
            prefix: firewall_prefix(),
            known,
        },
        Phase::Undo,
        None,
    );
    push(
        Step::RemoveWfp {
            provider: network::WFP_PROVIDER,
            sublayer: network::WFP_SUBLAYER,
        },
        Phase::Undo,
        None,
    );
    let mut quiet = 0;
    for k in &input.paths {
        let (aces, absent) = match &k.state {
            _ if all_sids.is_empty() => (
                Ok(Vec::new()),
                Some("no SID of the group or the accounts is known".to_string()),
            ),
            PathState::Absent => (Ok(Vec::new()), Some("the path is gone".to_string())),
            PathState::Unreadable(e) => (Err(e.clone()), None),
            PathState::Aces(a) => {
                let ours = aces_naming(a, &all_sids);
                let absent = absent_if(ours.is_empty(), "no explicit ACE names the sandbox SIDs");
                (Ok(ours), absent)
            }
        };
        if absent.is_some() && !k.always {
            quiet += 1;
            continue;
        }
        push(
            Step::RemoveAces {
                path: k.path.clone(),
                why: k.why.clone(),
                aces,
            },
            Phase::Undo,
            absent,
        );
    }
    if quiet > 0 {
        push(
            Step::NoAces { paths: quiet },
            Phase::Undo,
            Some("none names the sandbox SIDs (or they are gone)".into()),
        );
    }
    if plan.hide_from_logon {
        for p in &input.accounts {
            push(Step::Unhide { account: p.name }, Phase::Undo, None);
        }
    }
    for p in &input.accounts {
        let file = password_file(&input.state_dir, p.name);
        let absent = absent_if(!input.password_files.contains(&file), "no such file");
        push(
            Step::DeletePassword {
                account: p.name,
                file,
            },
            Phase::Undo,
            absent,
        );
    }
    push(
        Step::DeleteBrokerFiles {
            state_dir: input.state_dir.clone(),
            files: input.broker_files.clone(),
        },
        Phase::Undo,
        absent_if(input.broker_files.is_empty(), "none in the state folder"),
    );
    let nothing_recorded = entries.is_empty() && input.recorded.is_empty();
    push(
        Step::Forget {
            file: record_file(&input.state_dir),
        },
        Phase::Finish,
        absent_if(nothing_recorded, "nothing was recorded"),
    );
    RemovePlan { steps }
}

fn names(list: &[(String, Sid)]) -> String {
    list.iter()
        .map(|(n, s)| format!("{n} ({s})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sid_list(sids: &[Sid]) -> String {
    sids.iter()
        .map(|s| format!("*{s}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Step {
    /// What the step does, for its report line.
    pub fn what(&self) -> String {
        let group = accounts_plan().group;
        match self {
            Step::Record { file, entries } => format!(
                "record the SIDs in {file}, so a removal stopped half-way can finish{}",
                if entries.is_empty() {
                    String::new()
                } else {
                    format!(": {}", names(entries))
                }
            ),
            Step::Disable { account } => {
                format!("disable the account {account} (no new logon, so no new broker)")
            }
            Step::StopProcesses { .. } => {
                "stop cordon's brokers (told to quit over their pipes) and end every process running as the sandbox accounts".into()
            }
            Step::DeleteAccount { account } => format!("delete the account {account}"),
            Step::DeleteGroup { group } => format!("delete the group {group}"),
            Step::RemoveRights { account, sid } => match sid {
                Some(s) => format!("remove the user rights of {account} ({s})"),
                None => format!("remove the user rights of {account}"),
            },
            Step::RemoveFirewallRules { prefix, .. } => {
                format!("remove the firewall rules named `{prefix}*`")
            }
            Step::RemoveWfp { provider, sublayer } => format!(
                "remove every WFP filter of cordon's provider {provider}, then its sublayer {sublayer} and the provider"
            ),
            Step::RemoveAces { path, why, .. } => {
                format!("remove the ACEs naming {group} or its accounts on {path} ({why})")
            }
            Step::NoAces { paths } => format!(
                "look for ACEs naming {group} or its accounts on {paths} more paths elevated runs managed (managed-*.txt)"
            ),
            Step::Unhide { account } => {
                format!(r"remove HKLM\{WINLOGON_USER_LIST}\{account} (logon-screen hiding)")
            }
            Step::DeletePassword { account, file } => {
                format!("delete the stored password of {account} ({file})")
            }
            Step::DeleteBrokerFiles { state_dir, .. } => {
                format!("delete the brokers' key and lock files in {state_dir}")
            }
            Step::Forget { file } => format!("delete the removal's record {file}"),
        }
    }

    /// How to do the step by hand, as an administrator, when cordon could not.
    pub fn by_hand(&self) -> String {
        match self {
            Step::Record { file, .. } => format!(
                "make {} writable by you and re-run `cordon setup --elevated --remove`",
                file.parent().map_or_else(|| file.to_string(), |p| p.to_string())
            ),
            Step::Disable { account } => format!("net user {account} /active:no"),
            Step::StopProcesses { .. } => accounts_plan()
                .accounts
                .iter()
                .map(|a| format!("taskkill /F /FI \"USERNAME eq {}\"", a.name))
                .collect::<Vec<_>>()
                .join(" and "),
            Step::DeleteAccount { account } => format!("net user {account} /delete"),
            Step::DeleteGroup { group } => format!("net localgroup {group} /delete"),
            Step::RemoveRights { sid, .. } => format!(
                "secpol.msc, Local Policies, User Rights Assignment: remove {} from \"Log on as a batch job\", \"Deny access to this computer from the network\" and \"Deny log on through Remote Desktop Services\"",
                sid.as_ref().map_or_else(|| "the account".to_string(), Sid::to_string)
            ),
            Step::RemoveFirewallRules { prefix, .. } => format!(
                "in an administrator PowerShell: Get-NetFirewallRule -DisplayName '{prefix}*' | Remove-NetFirewallRule"
            ),
            Step::RemoveWfp { provider, .. } => format!(
                "no Windows command deletes WFP objects (`netsh wfp show filters` lists them, provider {provider}); fix the error and re-run `cordon setup --elevated --remove` as an administrator"
            ),
            Step::RemoveAces { path, aces, .. } => {
                let sids: Vec<Sid> = match aces {
                    Ok(a) if !a.is_empty() => {
                        let mut v: Vec<Sid> = Vec::new();
                        for ace in a {
                            if !v.contains(&ace.sid) {
                                v.push(ace.sid.clone());
                            }
                        }
                        v
                    }
                    _ => Vec::new(),
                };
                if sids.is_empty() {
                    format!("icacls \"{path}\" /remove *SID for the group's and each account's SID")
                } else {
                    format!("icacls \"{path}\" /remove {}", sid_list(&sids))
                }
            }
            Step::NoAces { .. } => "nothing to do".into(),
            Step::Unhide { account } => format!(
                "reg delete \"HKLM\\{WINLOGON_USER_LIST}\" /v {account} /f"
            ),
            Step::DeletePassword { file, .. } => format!("del \"{file}\""),
            Step::DeleteBrokerFiles { state_dir, .. } => format!(
                "del \"{state_dir}\\broker-*.key\" \"{state_dir}\\broker-*.lock\""
            ),
            Step::Forget { file } => format!("del \"{file}\""),
        }
    }
}

/// What the executor says a step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Did {
    Done(String),
    /// Nothing was there to undo.
    Absent(String),
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    Absent(String),
    /// Not run: an earlier step it depends on did not succeed.
    Kept(String),
    /// The error, with the Win32 code where there is one.
    Failed(String),
}

impl Outcome {
    fn ok(&self) -> bool {
        matches!(self, Outcome::Done(_) | Outcome::Absent(_))
    }
}

/// One step's line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub what: String,
    pub by_hand: String,
    pub outcome: Outcome,
}

/// What a removal did, one line per step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveReport {
    pub lines: Vec<Line>,
}

impl RemoveReport {
    /// Everything is gone (done now, or already absent).
    pub fn complete(&self) -> bool {
        self.lines.iter().all(|l| l.outcome.ok())
    }

    /// The steps that failed or were kept, each with how to finish it by hand (exit 125).
    pub fn leftovers(&self) -> String {
        let left: Vec<String> = self
            .lines
            .iter()
            .filter_map(|l| match &l.outcome {
                Outcome::Failed(e) => {
                    Some(format!("{} failed ({e}); by hand: {}", l.what, l.by_hand))
                }
                Outcome::Kept(why) => Some(format!(
                    "{} was not done ({why}); by hand, after the step above: {}",
                    l.what, l.by_hand
                )),
                _ => None,
            })
            .collect();
        format!(
            "the elevated mode is not fully removed: {}; then run `cordon setup --elevated --remove` again to check",
            left.join("; ")
        )
    }
}

/// One numbered line per step: `done`, `absent` (already), `kept` or `FAILED`, then what.
impl fmt::Display for RemoveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.lines.iter().enumerate() {
            let (mark, detail) = match &l.outcome {
                Outcome::Done(d) => ("done  ", d.as_str()),
                Outcome::Absent(d) => ("absent", d.as_str()),
                Outcome::Kept(d) => ("kept  ", d.as_str()),
                Outcome::Failed(d) => ("FAILED", d.as_str()),
            };
            write!(f, "{:>2}. {mark} {}", i + 1, l.what)?;
            if detail.is_empty() {
                writeln!(f)?;
            } else {
                writeln!(f, ": {detail}")?;
            }
        }
        Ok(())
    }
}

/// The dry run: one numbered line per step, marked where the machine shows it absent.
impl fmt::Display for RemovePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.steps.iter().enumerate() {
            match &p.absent {
                Some(why) => writeln!(f, "{:>2}. {} (absent: {why})", i + 1, p.step.what())?,
                None => writeln!(f, "{:>2}. {}", i + 1, p.step.what())?,
            }
        }
        Ok(())
    }
}

/// Runs the plan: `exec` is called for each step that is not already absent and whose phase
/// may run (see [`Phase`]); a step that may not is `Kept` with the step that stopped it.
pub fn run(plan: &RemovePlan, mut exec: impl FnMut(&Step) -> Result<Did, String>) -> RemoveReport {
    let mut lines: Vec<Line> = Vec::new();
    // The first step that did not succeed in each class, by its number.
    let mut record_failed: Option<usize> = None;
    let mut uncontained: Option<usize> = None;
    let mut any_failed: Option<usize> = None;
    for (i, p) in plan.steps.iter().enumerate() {
        let blocked = match p.phase {
            Phase::Contain => None,
            Phase::Delete => record_failed.map(|n| {
                format!("the SIDs could not be recorded first (step {n}), and deleting the accounts would lose them")
            }),
            Phase::Undo => uncontained.map(|n| {
                format!("step {n} did not succeed, and this keeps the sandbox accounts in check while they exist or run")
            }),
            Phase::Finish => any_failed.map(|n| {
                format!("step {n} did not succeed; the record stays so the next removal can finish")
            }),
        };
        let outcome = match (&p.absent, blocked) {
            (Some(why), _) => Outcome::Absent(why.clone()),
            (None, Some(why)) => Outcome::Kept(why),
            (None, None) => match exec(&p.step) {
                Ok(Did::Done(d)) => Outcome::Done(d),
                Ok(Did::Absent(d)) => Outcome::Absent(d),
                Err(e) => Outcome::Failed(e),
            },
        };
        if !outcome.ok() {
            let n = i + 1;
            any_failed.get_or_insert(n);
            match &p.step {
                Step::Record { .. } => {
                    record_failed.get_or_insert(n);
                }
                Step::StopProcesses { .. }
                | Step::DeleteAccount { .. }
                | Step::DeleteGroup { .. } => {
                    uncontained.get_or_insert(n);
                }
                _ => {}
            }
        }
        lines.push(Line {
            what: p.step.what(),
            by_hand: p.step.by_hand(),
            outcome,
        });
    }
    RemoveReport { lines }
}

/// NetUserDel, NetUserSetInfo: NERR_UserNotFound.
pub fn user_absent(code: u32) -> bool {
    code == 2221
}

/// NetLocalGroupDel: NERR_GroupNotFound, ERROR_NO_SUCH_ALIAS.
pub fn group_absent(code: u32) -> bool {
    code == 2220 || code == 1376
}

/// LsaRemoveAccountRights: STATUS_OBJECT_NAME_NOT_FOUND (no rights, no LSA account object).
pub fn rights_absent(status: u32) -> bool {
    status == 0xC000_0034
}

/// FwpmSubLayerDeleteByKey0, FwpmProviderDeleteByKey0: FWP_E_SUBLAYER_NOT_FOUND,
/// FWP_E_PROVIDER_NOT_FOUND.
pub fn wfp_object_absent(status: u32) -> bool {
    status == 0x8032_0007 || status == 0x8032_0005
}

/// What `Engine::uninstall` found and deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WfpRemoved {
    pub filters: usize,
    pub sublayer: bool,
    pub provider: bool,
}

impl WfpRemoved {
    pub fn did(self) -> Did {
        if self.filters == 0 && !self.sublayer && !self.provider {
            return Did::Absent("no filter, sublayer or provider of cordon's".into());
        }
        let mut parts = vec![format!("{} filters", self.filters)];
        if self.sublayer {
            parts.push("the sublayer".into());
        }
        if self.provider {
            parts.push("the provider".into());
        }
        Did::Done(format!("deleted {}", parts.join(", ")))
    }
}

#[cfg(test)]
#[path = "remove_tests.rs"]
mod tests;
