//! Policy to `WindowsPlan`: everything a Windows run will do, decided without touching the OS.
//!
//! The planner reads the machine only through [`Host`] (one question per named path) and
//! returns plain data; the executor applies it. Most of the backend's logic is here, so it
//! is unit-tested on every platform.

pub mod acl;
pub mod fs;
pub mod guarantee;
pub mod job;
pub mod mode;
pub mod network;
pub mod remove;
pub mod setup;
#[cfg(test)]
mod tests;
pub mod token;
pub mod tools;

use cordon_policy::{Network, Policy, ResolveContext};

use crate::sid::Sid;
use crate::winpath::WinPath;
use acl::{AceKind, AclEdit, Action, Inherit, Reason, Revoke};
pub use fs::{GitLayout, Host, Kind, Placeholder};
use guarantee::{enforced, not_enforced};
pub use guarantee::{Guarantee, Status};
use job::JobLimits;
use network::{AccountsPlan, FirewallRule, WfpFilter};
pub use token::{TokenSid, TokenSpec, DISABLE_MAX_PRIVILEGE, LUA_TOKEN, WRITE_RESTRICTED};

/// How cordon runs commands on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// As the developer, with a restricted token. Needs no administrator, but cannot hide
    /// files from reads or keep the command off the network (see [`Guarantee`]).
    Unelevated,
    /// As a sandbox account made by `cordon setup --elevated`, with a restricted token.
    Elevated(InstalledAccounts),
}

/// The SIDs `cordon setup --elevated` created (read back from the machine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledAccounts {
    pub group: Sid,
    pub offline: Sid,
    pub online: Sid,
}

/// Everything the planner is told.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    pub policy: &'a Policy,
    /// The workspace (any Win32 spelling), the caller's homes, cordon's state folder.
    pub ctx: &'a ResolveContext,
    pub mode: Mode,
    /// Where per-workspace temporary folders live (`%LOCALAPPDATA%\cordon\tmp`).
    pub temp_base: WinPath,
    /// Logical processors, for the CPU rate.
    pub cpus: u32,
    /// The loopback ports of cordon's proxy (`--net allow`).
    pub proxy_ports: Vec<u16>,
    /// Folders the last Everyone-writable audit found (see [`AuditBounds`]).
    pub everyone_writable: Vec<WinPath>,
    /// Paths an earlier plan put ACEs of this workspace's SIDs on (cordon's state), so ACEs
    /// the policy no longer wants are removed: the ACL state stays bounded.
    pub previously_managed: Vec<WinPath>,
    /// Folders the command may run programs from (PATH's entries, `RUSTUP_HOME`,
    /// `CARGO_HOME`): in elevated mode those in `profile` are granted read to the sandbox
    /// group (see [`tools`]).
    pub tool_dirs: Vec<WinPath>,
    /// The account's profile folder from its token, never from `%USERPROFILE%` (which
    /// whoever starts cordon sets): the one home program-folder grants are made in.
    pub profile: Option<WinPath>,
}

/// Limits of the Everyone-writable audit, which runs at setup and when its findings are
/// older than `max_age_secs`, never per command: it walks directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBounds {
    pub roots: Vec<WinPath>,
    pub max_depth: u32,
    pub max_dirs: u32,
    pub max_millis: u64,
    pub max_age_secs: u64,
}

/// Everything one Windows run does, in order: create placeholders, edit ACLs, build the
/// token and job, start the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsPlan {
    pub workspace: WinPath,
    pub write_sid: Sid,
    pub git: Option<GitLayout>,
    /// Roots the write SID may write, after dropping those covered by another root.
    pub writable: Vec<WinPath>,
    pub placeholders: Vec<Placeholder>,
    pub acl: Vec<(AclEdit, Action)>,
    pub revoke: Vec<Revoke>,
    pub token: TokenSpec,
    /// The account whose logon token is restricted (elevated mode), by name.
    pub account: Option<&'static str>,
    pub accounts: Option<AccountsPlan>,
    pub firewall: Vec<FirewallRule>,
    pub wfp: Vec<WfpFilter>,
    pub audit: AuditBounds,
    pub job: JobLimits,
    /// This workspace's temporary folder (granted once); each run makes a folder inside.
    pub temp: WinPath,
    pub guarantees: Vec<Guarantee>,
    /// Things the user should know: dropped roots, skipped absent secrets.
    pub notes: Vec<String>,
}

impl WindowsPlan {
    /// Paths holding ACEs of ours after this plan, for the state kept for the next one.
    /// Program-folder grants are not among them: the sandbox group's, shared by every
    /// workspace, so no one workspace's plan revokes them ([`WindowsPlan::tool_roots`]).
    pub fn managed(&self) -> Vec<WinPath> {
        let mut out: Vec<WinPath> = Vec::new();
        for (e, _) in &self.acl {
            if e.reason != acl::Reason::AccountTools && !out.contains(&e.path) {
                out.push(e.path.clone());
            }
        }
        out
    }

    /// The program folders this plan grants the sandbox group read on (elevated mode), for
    /// the machine's list that `cordon setup --elevated --remove` undoes.
    pub fn tool_roots(&self) -> Vec<WinPath> {
        self.acl
            .iter()
            .filter(|(e, _)| e.reason == acl::Reason::AccountTools)
            .map(|(e, _)| e.path.clone())
            .collect()
    }

    /// How many ACL writes this run makes (0 once the machine is set up).
    pub fn writes(&self) -> usize {
        self.acl.iter().filter(|(_, a)| *a == Action::Apply).count() + self.revoke.len()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("workspace {0}: {1}")]
    Workspace(String, String),
    #[error("{0} would make {1} writable; name a narrower folder")]
    TooBroad(WinPath, &'static str),
    #[error("policy path `{path}`: {why}")]
    PolicyPath { path: String, why: String },
    #[error("{0} is a link (junction or symbolic link); a protected path must not be one")]
    ProtectedLink(WinPath),
    #[error("{path}: {why}")]
    GitFile { path: WinPath, why: String },
    #[error("this policy cannot be enforced here: {}", .0.iter().map(|(a, w)| format!("{a}: {w}")).collect::<Vec<_>>().join("; "))]
    Unenforceable(Vec<(&'static str, String)>),
}

/// Whether command rules can say anything but `allow` (a `forbid` or `prompt` rule, or a
/// default that is not `allow`): only then does judging every exec matter.
pub fn rules_can_refuse(rules: &cordon_policy::CommandRules) -> bool {
    use cordon_policy::Decision;
    rules.default != Decision::Allow || rules.rules.iter().any(|r| r.decision != Decision::Allow)
}

/// Why the elevated mode's network block is not the guarantee: what gets past it.
pub const ELEVATED_NETWORK_GAPS: &str = "the offline account's own traffic is blocked (firewall rules and WFP filters scoped to its SID), but a name lookup goes through the DNS Client service, which sends the query itself, and SMB to \\\\host\\share paths is the kernel redirector's: neither is the account's traffic, so a name or a file can still leave (docs/windows.md, \"Known gaps\")";

/// Most folders the audit's findings may add deny ACEs for; more means something is badly
/// wrong on the machine, and cordon says so rather than growing ACL state without bound.
pub const MAX_EVERYONE_DENIES: usize = 256;

/// Builds the plan. Fails when a path is unusable or a guarantee cannot be enforced in this
/// mode and the policy does not allow a weaker one.
pub fn plan(input: &PlanInput<'_>, host: &dyn Host) -> Result<WindowsPlan, PlanError> {
    let named = WinPath::from_path(&input.ctx.workspace).map_err(|e| {
        PlanError::Workspace(input.ctx.workspace.display().to_string(), e.to_string())
    })?;
    let workspace = host
        .final_path(&named)
        .ok_or_else(|| PlanError::Workspace(named.to_string(), "does not exist".into()))?;
    if host.kind(&workspace) != Kind::Dir {
        return Err(PlanError::Workspace(
            workspace.to_string(),
            "is not a folder".into(),
        ));
    }
    let homes = input
        .ctx
        .homes
        .iter()
        .filter_map(|h| WinPath::from_path(h).ok())
        .map(|h| host.final_path(&h).unwrap_or(h))
        .collect::<Vec<_>>();
    let write_sid = Sid::sandbox_write(&workspace);
    let mut notes = Vec::new();
    let policy = input.policy;

    // Writable roots: the workspace, Git's real directories of a linked worktree, the
    // policy's extra paths, this workspace's temporary folder.
    let git = fs::git_layout(host, &workspace)?;
    let temp = fs::join_fixed(&input.temp_base, &temp_name(&write_sid));
    let mut wanted = vec![workspace.clone()];
    if let Some(g) = git.as_ref().filter(|g| g.is_linked()) {
        wanted.push(g.git_dir.clone());
        wanted.push(g.common_dir.clone());
    }
    for spec in &policy.allow_write {
        for p in fs::resolve_spec(spec, &workspace, &homes)? {
            match host.final_path(&p) {
                Some(f) => wanted.push(f),
                None => notes.push(format!("allow_write {p}: does not exist, skipped")),
            }
        }
    }
    wanted.push(temp.clone());
    for root in &wanted {
        check_not_too_broad(root, &homes)?;
    }

    // Protected paths, mapped into Git's real directories; links refused, absent ones
    // given a placeholder.
    let mut protected_targets = Vec::new();
    for spec in &policy.protected {
        let spec = cordon_policy::PathSpec::Workspace(spec.clone());
        for p in fs::resolve_spec(&spec, &workspace, &homes)? {
            for t in fs::map_into_git(&p, &workspace, git.as_ref()) {
                if !protected_targets.contains(&t) {
                    protected_targets.push(t);
                }
            }
        }
    }
    let mut placeholders: Vec<Placeholder> = Vec::new();
    let mut deny_at: Vec<(WinPath, bool)> = Vec::new(); // (path, is a directory)
    for target in &protected_targets {
        if placeholders.iter().any(|p| target.starts_with(&p.path)) {
            continue; // e.g. `.git` made for `.git\hooks` already covers it
        }
        let base = if target.starts_with(&workspace) {
            workspace.clone()
        } else {
            target.parent().unwrap_or_else(|| target.clone())
        };
        match fs::highest_missing(host, target, &base)? {
            Some(missing) => {
                let ph = fs::placeholder_for(&missing, target);
                push_unique(&mut deny_at, (missing.clone(), ph.is_dir));
                placeholders.push(ph);
            }
            None => push_unique(
                &mut deny_at,
                (target.clone(), host.kind(target) == Kind::Dir),
            ),
        }
    }

    // Protection beats allow_write: a root inside a protected path would get an explicit
    // grant that outranks the inherited deny, so it is dropped. Then roots inside another
    // root are dropped too: the inherited grant already covers them.
    let mut writable: Vec<WinPath> = Vec::new();
    for root in wanted {
        if let Some((p, _)) = deny_at.iter().find(|(p, _)| root.starts_with(p)) {
            notes.push(format!(
                "allow_write {root}: inside protected {p}, stays read-only"
            ));
            continue;
        }
        push_unique(&mut writable, root);
    }
    let covered = |r: &WinPath, all: &[WinPath]| all.iter().any(|o| o != r && r.starts_with(o));
    let all = writable.clone();
    writable.retain(|r| !covered(r, &all));

    let mut edits = Vec::new();
    let edit = |path: &WinPath, kind, sid: &Sid, mask, inherit, reason| AclEdit {
        path: path.clone(),
        kind,
        sid: sid.clone(),
        mask,
        inherit,
        reason,
    };
    for root in &writable {
        edits.push(edit(
            root,
            AceKind::Allow,
            &write_sid,
            acl::WRITE_GRANT,
            Inherit::TREE,
            Reason::Writable,
        ));
        // The root itself cannot be renamed or deleted (its own grant includes DELETE for
        // what is below); an explicit deny on the object only, not inherited.
        edits.push(edit(
            root,
            AceKind::Deny,
            &write_sid,
            acl::DELETE,
            Inherit::THIS_ONLY,
            Reason::PinRoot,
        ));
    }
    if let Some(g) = &git {
        // `.git` cannot be removed or swapped; its objects, refs and index stay writable.
        let reason = Reason::PinGitDir;
        let pin = acl::DELETE | acl::WRITE_DAC | acl::WRITE_OWNER;
        if g.is_linked() {
            // The `gitdir:` file itself is protected whole.
            edits.push(edit(
                &g.dot_git,
                AceKind::Deny,
                &write_sid,
                acl::DENY_WRITE,
                Inherit::THIS_ONLY,
                reason,
            ));
            edits.push(edit(
                &g.git_dir,
                AceKind::Deny,
                &write_sid,
                pin,
                Inherit::THIS_ONLY,
                reason,
            ));
        } else {
            edits.push(edit(
                &g.dot_git,
                AceKind::Deny,
                &write_sid,
                pin,
                Inherit::THIS_ONLY,
                reason,
            ));
        }
    }
    for (p, is_dir) in &deny_at {
        let inherit = if *is_dir {
            Inherit::TREE
        } else {
            Inherit::THIS_ONLY
        };
        edits.push(edit(
            p,
            AceKind::Deny,
            &write_sid,
            acl::DENY_WRITE,
            inherit,
            Reason::Protected,
        ));
    }

    // Everyone-writable folders outside the writable roots: a write-restricted token with
    // Everyone among its restricting SIDs could write there, so the write SID is denied.
    let mut everyone = 0;
    for f in &input.everyone_writable {
        let f = host.final_path(f).unwrap_or_else(|| f.clone());
        if writable.iter().any(|r| f.starts_with(r)) {
            continue;
        }
        if everyone == MAX_EVERYONE_DENIES {
            notes.push(format!(
                "more than {MAX_EVERYONE_DENIES} Everyone-writable folders; the rest stay writable from the sandbox: fix their ACLs"
            ));
            break;
        }
        everyone += 1;
        edits.push(edit(
            &f,
            AceKind::Deny,
            &write_sid,
            acl::DENY_WRITE,
            Inherit::TREE,
            Reason::EveryoneWritable,
        ));
    }

    // Elevated mode: the sandbox account reads the workspace, and is refused the secrets.
    let mut ours = vec![write_sid.clone()];
    let mut guarantees = Vec::new();
    let (account, accounts, firewall, wfp) = match &input.mode {
        Mode::Unelevated => {
            let secrets = !policy.deny_read.is_empty() || !input.ctx.always_deny.is_empty();
            if secrets {
                guarantees.push(not_enforced(
                    "read",
                    "a restricted token of your own account reads what you can read; deny-read needs `cordon setup --elevated`",
                ));
            } else {
                guarantees.push(enforced("read", "nothing is hidden by this policy"));
            }
            match policy.network {
                Network::Full => guarantees.push(enforced("network", "--net full: the host's network")),
                mode => guarantees.push(not_enforced(
                    "network",
                    &format!(
                        "--net {}: the firewall cannot tell a restricted token from your own account (the elevated mode blocks the sandbox account's own traffic, though not everything: see docs/windows.md)",
                        mode.as_str()
                    ),
                )),
            }
            guarantees.push(not_enforced(
                "processes",
                "your other processes stay visible and readable (writes into them are refused by the write-restricted token); needs `cordon setup --elevated`",
            ));
            (None, None, Vec::new(), Vec::new())
        }
        Mode::Elevated(acc) => {
            ours.push(acc.group.clone());
            // A write-restricted token passes two checks: the account's own SIDs (this
            // grant) and the restricting SIDs (the write SID's grant and denies). So the
            // account is granted what the write SID is, and the write SID's denies on
            // protected paths still refuse it there.
            for root in &writable {
                edits.push(edit(
                    root,
                    AceKind::Allow,
                    &acc.group,
                    acl::WRITE_GRANT,
                    Inherit::TREE,
                    Reason::AccountWorkspace,
                ));
            }
            let mut deny_read = Vec::new();
            for spec in &policy.deny_read {
                deny_read.extend(fs::resolve_spec(spec, &workspace, &homes)?);
            }
            for p in &input.ctx.always_deny {
                if let Ok(w) = WinPath::from_path(p) {
                    deny_read.push(w);
                }
            }
            let mut secrets = Vec::new();
            for p in deny_read {
                // A link to a secret is no way round: the ACE goes on what it points at.
                match host.final_path(&p) {
                    Some(f) => {
                        push_unique(&mut secrets, f.clone());
                        let inherit = if host.kind(&f) == Kind::Dir {
                            Inherit::TREE
                        } else {
                            Inherit::THIS_ONLY
                        };
                        let e = edit(
                            &f,
                            AceKind::Deny,
                            &acc.group,
                            acl::DENY_READ,
                            inherit,
                            Reason::Secret,
                        );
                        if !edits.contains(&e) {
                            edits.push(e);
                        }
                    }
                    None => notes.push(format!("deny_read {p}: absent (checked again each run)")),
                }
            }
            // Toolchains in the developer's profile: read and execute for the group. A
            // secret inside one keeps its own explicit deny, which outranks the inherited
            // grant; a folder inside a secret or a writable root gets no grant.
            let profile = input
                .profile
                .as_ref()
                .map(|p| host.final_path(p).unwrap_or_else(|| p.clone()));
            let (tools, tool_notes) = match &profile {
                Some(profile) => tools::tool_roots(&input.tool_dirs, profile, &writable, host),
                None => (Vec::new(), Vec::new()),
            };
            notes.extend(tool_notes);
            for root in tools {
                if let Some(s) = secrets.iter().find(|s| root.starts_with(s)) {
                    notes.push(format!(
                        "program folder {root}: inside deny_read {s}, stays unreadable"
                    ));
                    continue;
                }
                if writable.iter().any(|w| root.starts_with(w)) {
                    continue; // `.rustup` an allow_write root: granted already
                }
                // A deny of the group on this folder or passed down to it (another
                // workspace's deny_read, here or above): an explicit grant here would
                // outrank an inherited deny, so none is made.
                let denied = host
                    .dacl(&root)
                    .iter()
                    .any(|a| a.kind == AceKind::Deny && a.sid == acc.group);
                if denied {
                    notes.push(format!(
                        "program folder {root}: a deny_read of the sandbox group is on it, stays unreadable"
                    ));
                    continue;
                }
                edits.push(edit(
                    &root,
                    AceKind::Allow,
                    &acc.group,
                    acl::READ_GRANT,
                    Inherit::TREE,
                    Reason::AccountTools,
                ));
            }
            guarantees.push(enforced(
                "read",
                "deny-read ACEs for the CordonSandboxUsers group",
            ));
            let (name, fw, wfp) = match policy.network {
                Network::Full => (network::ONLINE_ACCOUNT, Vec::new(), Vec::new()),
                Network::Off => (
                    network::OFFLINE_ACCOUNT,
                    network::firewall_rules(&acc.offline),
                    network::wfp_filters(&acc.offline, &[]),
                ),
                Network::Allow => (
                    network::OFFLINE_ACCOUNT,
                    network::firewall_rules(&acc.offline),
                    network::wfp_filters(&acc.offline, &input.proxy_ports),
                ),
            };
            guarantees.push(match policy.network {
                Network::Full => enforced("network", "--net full: the host's network"),
                // The account's own traffic is blocked, but two channels are traffic a
                // service or the kernel sends for it (docs/windows.md, "Known gaps"): a
                // name or a file can still leave, so the guarantee is not claimed.
                _ => not_enforced("network", ELEVATED_NETWORK_GAPS),
            });
            guarantees.push(enforced(
                "processes",
                "a separate account: your processes' DACLs do not admit it; the job holds the tree",
            ));
            (Some(name), Some(network::accounts_plan()), fw, wfp)
        }
    };
    guarantees.insert(
        0,
        enforced(
            "write",
            "write-restricted token; only the sandbox-write SID's grants admit writes",
        ),
    );
    guarantees.insert(
        1,
        enforced(
            "protected",
            "deny-write ACEs for the sandbox-write SID, placeholders for absent paths",
        ),
    );
    guarantees.push(enforced(
        "env",
        "the environment block cordon builds (policy's scrub)",
    ));
    guarantees.push(Guarantee {
        area: "syscalls",
        status: Status::NoEquivalent("Windows has no syscall filter a user can install; the token is stripped of privileges instead"),
    });
    let (job, unsupported) = job::job_limits(&policy.limits, input.cpus);
    if unsupported.is_empty() {
        guarantees.push(enforced(
            "limits",
            "a job object (memory, CPU rate, active processes, kill on close)",
        ));
    } else {
        let why = unsupported
            .iter()
            .map(|u| format!("{}: {}", u.kind, u.why))
            .collect::<Vec<_>>()
            .join("; ");
        guarantees.push(not_enforced("limits", &why));
    }
    if rules_can_refuse(&policy.commands) {
        // No exec is interceptable on Windows: cordon judges the command line itself before
        // it starts (forbid: 126; prompt: a human in `cordon console`), never what it starts.
        guarantees.push(not_enforced(
            "commands",
            "[commands] rules judge only the command line here: Windows has no exec interception, so the programs it starts (a `git push` inside `make`) are not judged",
        ));
    }
    guarantees.push(enforced("audit", "the same JSON lines as on Linux"));

    let unmet: Vec<(&'static str, String)> = guarantees
        .iter()
        .filter_map(|g| match &g.status {
            Status::NotEnforced(why) => Some((g.area, why.clone())),
            _ => None,
        })
        .collect();
    if !unmet.is_empty() && !policy.allow_weaker {
        return Err(PlanError::Unenforceable(unmet));
    }

    // Idempotence: an edit already in the DACL is skipped; ACEs of our SIDs the plan no
    // longer wants, on paths it manages or managed before, are removed.
    let mut acl_steps = Vec::new();
    for e in edits {
        let action = if e.is_present(&host.dacl(&e.path)) {
            Action::Skip
        } else {
            Action::Apply
        };
        acl_steps.push((e, action));
    }
    // A program-folder grant is the group's, which every workspace shares: it neither makes
    // its folder one this plan revokes on, nor is it revoked where found (another
    // workspace's PATH may want it; `cordon setup --elevated --remove` removes them all).
    let mut paths: Vec<WinPath> = Vec::new();
    for p in acl_steps
        .iter()
        .filter(|(e, _)| e.reason != Reason::AccountTools)
        .map(|(e, _)| &e.path)
        .chain(&input.previously_managed)
    {
        push_unique(&mut paths, p.clone());
    }
    let tool_grant = |a: &acl::Ace| {
        a.kind == AceKind::Allow && a.mask == acl::READ_GRANT && a.flags == Inherit::TREE.flags()
    };
    let mut revoke = Vec::new();
    for path in paths {
        for ace in host.dacl(&path) {
            if ace.flags & acl::INHERITED_ACE != 0 || !ours.contains(&ace.sid) || tool_grant(&ace) {
                continue;
            }
            let wanted = acl_steps
                .iter()
                .any(|(e, _)| e.path == path && e.is_present(std::slice::from_ref(&ace)));
            if !wanted {
                revoke.push(Revoke {
                    path: path.clone(),
                    sid: ace.sid.clone(),
                    ace,
                });
            }
        }
    }

    let token = token::token_spec(&write_sid);
    let audit = audit_bounds(&homes);
    Ok(WindowsPlan {
        workspace,
        write_sid,
        git,
        writable,
        placeholders,
        acl: acl_steps,
        revoke,
        token,
        account,
        accounts,
        firewall,
        wfp,
        audit,
        job,
        temp,
        guarantees,
        notes,
    })
}

/// The temporary folder's name: short, derived from the write SID (one per workspace).
fn temp_name(sid: &Sid) -> String {
    let subs = sid.subs();
    format!(
        "ws-{:08x}{:08x}",
        subs.get(1).copied().unwrap_or(0),
        subs.get(4).copied().unwrap_or(0)
    )
}

/// A root that is a drive or share root, or holds a home folder, would make far more than a
/// project writable (every profile on the machine, the user's own shell start-up files).
fn check_not_too_broad(root: &WinPath, homes: &[WinPath]) -> Result<(), PlanError> {
    if root.is_root() {
        return Err(PlanError::TooBroad(root.clone(), "a whole drive"));
    }
    if homes.iter().any(|h| h.starts_with(root)) {
        return Err(PlanError::TooBroad(root.clone(), "your home folder"));
    }
    Ok(())
}

/// Where Everyone-writable folders are usually found: drive roots' first levels,
/// ProgramData, Public, and the home's AppData (installers that loosen ACLs).
pub fn audit_bounds(homes: &[WinPath]) -> AuditBounds {
    let mut roots = Vec::new();
    for fixed in [r"C:\", r"C:\ProgramData", r"C:\Users\Public"] {
        if let Ok(p) = WinPath::parse(fixed) {
            roots.push(p);
        }
    }
    for h in homes {
        roots.push(fs::join_fixed(h, "AppData"));
    }
    AuditBounds {
        roots,
        max_depth: 3,
        max_dirs: 20_000,
        max_millis: 3_000,
        max_age_secs: 24 * 3600,
    }
}

pub(crate) fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}
