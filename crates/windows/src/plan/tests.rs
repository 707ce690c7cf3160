//! Table tests of the planner against a fake machine: worktrees, absent protected paths,
//! nested roots, spaces, long paths, junctions, idempotence, fail-closed modes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;

use cordon_policy::{builtin, Layer, LayerSource, Network, Policy, ResolveContext};

use super::acl::{self, Ace, AceKind, Action, Reason};
use super::*;

/// A machine as a table: what exists, what links where, what each DACL holds.
#[derive(Default)]
struct FakeHost {
    kinds: BTreeMap<WinPath, Kind>,
    text: BTreeMap<WinPath, String>,
    links: Vec<(WinPath, WinPath)>,
    dacls: RefCell<BTreeMap<WinPath, Vec<Ace>>>,
}

fn w(s: &str) -> WinPath {
    WinPath::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

impl FakeHost {
    fn dir(mut self, p: &str) -> Self {
        let mut p = w(p);
        loop {
            self.kinds.entry(p.clone()).or_insert(Kind::Dir);
            match p.parent() {
                Some(q) => p = q,
                None => break,
            }
        }
        self
    }
    fn file(mut self, p: &str, text: &str) -> Self {
        let path = w(p);
        if let Some(parent) = path.parent() {
            self = self.dir(&parent.to_string());
        }
        self.kinds.insert(path.clone(), Kind::File);
        self.text.insert(path, text.to_string());
        self
    }
    /// A junction at `from` pointing at the existing folder `to`.
    fn junction(mut self, from: &str, to: &str) -> Self {
        self.kinds.insert(w(from), Kind::Link);
        self.links.push((w(from), w(to)));
        self
    }
    /// Records a plan's edits as the executor would have applied them.
    fn apply(&self, plan: &WindowsPlan) {
        let mut dacls = self.dacls.borrow_mut();
        for r in &plan.revoke {
            if let Some(d) = dacls.get_mut(&r.path) {
                d.retain(|a| *a != r.ace);
            }
        }
        for (e, action) in &plan.acl {
            if *action == Action::Apply {
                dacls.entry(e.path.clone()).or_default().push(Ace {
                    kind: e.kind,
                    sid: e.sid.clone(),
                    mask: e.mask,
                    flags: e.inherit.flags(),
                });
            }
        }
    }
}

impl Host for FakeHost {
    fn final_path(&self, path: &WinPath) -> Option<WinPath> {
        let mut p = path.clone();
        for _ in 0..8 {
            let Some((from, to)) = self.links.iter().find(|(from, _)| p.starts_with(from)) else {
                break;
            };
            let mut q = to.clone();
            for name in p.strip_prefix(from).unwrap_or(&[]) {
                q = q.child(name);
            }
            p = q;
        }
        self.kinds.contains_key(&p).then_some(p)
    }
    fn kind(&self, path: &WinPath) -> Kind {
        self.kinds.get(path).cloned().unwrap_or(Kind::Missing)
    }
    fn is_empty_dir(&self, path: &WinPath) -> bool {
        self.kind(path) == Kind::Dir && !self.kinds.keys().any(|k| k != path && k.starts_with(path))
    }
    fn read_text(&self, path: &WinPath) -> Option<String> {
        self.text.get(path).cloned()
    }
    fn dacl(&self, path: &WinPath) -> Vec<Ace> {
        self.dacls.borrow().get(path).cloned().unwrap_or_default()
    }
}

fn policy(extra: &str, weaker: bool) -> Policy {
    let mut layers = vec![builtin()];
    let text = format!("{extra}\n[sandbox]\nallow_weaker = {weaker}\n");
    let layer = Layer::parse(
        LayerSource::User("t.toml".into()),
        std::path::Path::new("t.toml"),
        &text,
    )
    .unwrap_or_else(|d| panic!("{d:?}"));
    layers.push(layer);
    Policy::from_layers(&layers)
}

fn ctx(ws: &str) -> ResolveContext {
    ResolveContext {
        workspace: PathBuf::from(ws),
        homes: vec![PathBuf::from(r"C:\Users\dev")],
        always_deny: vec![PathBuf::from(r"C:\Users\dev\AppData\Local\cordon\state")],
    }
}

fn input<'a>(policy: &'a Policy, ctx: &'a ResolveContext, mode: Mode) -> PlanInput<'a> {
    PlanInput {
        policy,
        ctx,
        mode,
        temp_base: w(r"C:\Users\dev\AppData\Local\cordon\tmp"),
        cpus: 8,
        proxy_ports: vec![3128],
        everyone_writable: Vec::new(),
        previously_managed: Vec::new(),
        tool_dirs: Vec::new(),
        profile: Some(w(r"C:\Users\dev")),
    }
}

fn accounts() -> InstalledAccounts {
    InstalledAccounts {
        group: Sid::new(5, &[21, 9, 9, 9, 1010]),
        offline: Sid::new(5, &[21, 9, 9, 9, 1011]),
        online: Sid::new(5, &[21, 9, 9, 9, 1012]),
    }
}

fn repo(ws: &str) -> FakeHost {
    FakeHost::default()
        .dir(r"C:\Users\dev\AppData\Local\cordon\tmp")
        .dir(&format!(r"{ws}\.git\hooks"))
        .dir(&format!(r"{ws}\.git\info"))
        .dir(&format!(r"{ws}\.git\objects"))
        .file(&format!(r"{ws}\.git\config"), "[core]\n")
        .file(&format!(r"{ws}\.cordon.toml"), "")
}

fn run(host: &FakeHost, extra: &str, ws: &str, mode: Mode) -> WindowsPlan {
    let p = policy(extra, true);
    let c = ctx(ws);
    plan(&input(&p, &c, mode), host).unwrap_or_else(|e| panic!("{e}"))
}

fn denied(plan: &WindowsPlan, reason: Reason) -> Vec<String> {
    plan.acl
        .iter()
        .filter(|(e, _)| e.reason == reason && e.kind == AceKind::Deny)
        .map(|(e, _)| e.path.to_string())
        .collect()
}

#[test]
fn a_plain_repository_grants_the_workspace_and_denies_its_protected_paths() {
    let host = repo(r"C:\src\app");
    let plan = run(&host, "", r"C:\src\app", Mode::Unelevated);
    assert_eq!(plan.write_sid, Sid::sandbox_write(&w(r"C:\src\app")));
    let grants: Vec<_> = plan
        .acl
        .iter()
        .filter(|(e, _)| e.reason == Reason::Writable)
        .map(|(e, _)| (e.path.to_string(), e.mask, e.inherit))
        .collect();
    assert_eq!(
        grants,
        [
            (r"C:\src\app".into(), acl::WRITE_GRANT, acl::Inherit::TREE),
            (plan.temp.to_string(), acl::WRITE_GRANT, acl::Inherit::TREE),
        ]
    );
    let mut protected = denied(&plan, Reason::Protected);
    protected.sort();
    assert_eq!(
        protected,
        [
            r"C:\src\app\.cordon.toml",
            r"C:\src\app\.git\commondir",
            r"C:\src\app\.git\config",
            r"C:\src\app\.git\config.worktree",
            r"C:\src\app\.git\hooks",
            r"C:\src\app\.git\info",
            r"C:\src\app\HEAD",
        ]
    );
    assert_eq!(denied(&plan, Reason::PinGitDir), [r"C:\src\app\.git"]);
    // commondir and config.worktree are absent: created first, as files Git can read.
    let ph: Vec<_> = plan
        .placeholders
        .iter()
        .map(|p| (p.path.to_string(), p.is_dir, p.content))
        .collect();
    assert_eq!(
        ph,
        [
            (r"C:\src\app\.git\commondir".to_string(), false, &b".\n"[..]),
            (
                r"C:\src\app\.git\config.worktree".to_string(),
                false,
                &b""[..]
            ),
            // A protected top-level HEAD (policy defaults), absent: an empty folder, which
            // stays (placeholders outlive the run on Windows) and is no HEAD Git can read.
            (r"C:\src\app\HEAD".to_string(), true, &b""[..]),
        ]
    );
    assert!(
        plan.acl.iter().all(|(_, a)| *a == Action::Apply),
        "a fresh machine"
    );
}

#[test]
fn the_second_run_writes_nothing() {
    let host = repo(r"C:\src\app");
    let first = run(&host, "", r"C:\src\app", Mode::Unelevated);
    assert!(first.writes() > 0);
    host.apply(&first);
    let second = run(&host, "", r"C:\src\app", Mode::Unelevated);
    assert_eq!(second.writes(), 0, "{:?}", second.acl);
    assert!(second.acl.iter().all(|(_, a)| *a == Action::Skip));
}

#[test]
fn aces_the_policy_no_longer_wants_are_revoked() {
    let host = repo(r"C:\src\app").dir(r"C:\cache\tool");
    let first = run(
        &host,
        "[filesystem]\nallow_write = [\"C:\\\\cache\\\\tool\"]",
        r"C:\src\app",
        Mode::Unelevated,
    );
    assert!(first.writable.contains(&w(r"C:\cache\tool")));
    host.apply(&first);
    let p = policy("", true);
    let c = ctx(r"C:\src\app");
    let mut i = input(&p, &c, Mode::Unelevated);
    i.previously_managed = first.managed();
    let second = plan(&i, &host).unwrap_or_else(|e| panic!("{e}"));
    let revoked: Vec<_> = second.revoke.iter().map(|r| r.path.to_string()).collect();
    assert_eq!(
        revoked,
        [r"C:\cache\tool", r"C:\cache\tool"],
        "grant and root pin"
    );
    host.apply(&second);
    assert!(host.dacl(&w(r"C:\cache\tool")).is_empty());
}

#[test]
fn an_absent_git_gets_one_placeholder_folder_and_a_repository_later_replaces_its_ace() {
    let host = FakeHost::default()
        .dir(r"C:\src\new")
        .dir(r"C:\Users\dev\AppData\Local\cordon\tmp");
    let plan1 = run(&host, "", r"C:\src\new", Mode::Unelevated);
    let ph: Vec<_> = plan1
        .placeholders
        .iter()
        .map(|p| (p.path.to_string(), p.is_dir))
        .collect();
    assert_eq!(
        ph,
        [
            (r"C:\src\new\.git".to_string(), true),
            (r"C:\src\new\.cordon.toml".to_string(), true),
            // A top-level HEAD is protected (policy defaults) so that a broken .git cannot
            // make the workspace a bare repository: absent, it is a placeholder.
            (r"C:\src\new\HEAD".to_string(), true)
        ]
    );
    assert_eq!(
        denied(&plan1, Reason::Protected),
        [
            r"C:\src\new\.git",
            r"C:\src\new\.cordon.toml",
            r"C:\src\new\HEAD"
        ]
    );
    host.apply(&plan1);
    // The user runs `git init` outside the sandbox: `.git` is now a repository, whose
    // objects must be writable, so the placeholder's tree-wide deny goes.
    let host = FakeHost {
        dacls: RefCell::new(host.dacls.borrow().clone()),
        ..repo(r"C:\src\new")
    };
    let plan2 = run(&host, "", r"C:\src\new", Mode::Unelevated);
    assert!(plan2
        .revoke
        .iter()
        .any(|r| r.path == w(r"C:\src\new\.git") && r.ace.mask == acl::DENY_WRITE));
    assert_eq!(denied(&plan2, Reason::PinGitDir), [r"C:\src\new\.git"]);
}

#[test]
fn a_linked_worktree_protects_the_main_repositorys_git_and_writes_its_own() {
    let host = repo(r"C:\src\main")
        .dir(r"C:\src\main\.git\worktrees\feat")
        .file(r"C:\src\main\.git\worktrees\feat\commondir", "../..\n")
        .file(
            r"C:\src\feat\.git",
            "gitdir: C:/src/main/.git/worktrees/feat\n",
        );
    let plan = run(&host, "", r"C:\src\feat", Mode::Unelevated);
    let g = plan.git.clone().unwrap_or_else(|| panic!("no git layout"));
    assert_eq!(g.git_dir, w(r"C:\src\main\.git\worktrees\feat"));
    assert_eq!(g.common_dir, w(r"C:\src\main\.git"));
    assert!(
        plan.writable
            .contains(&w(r"C:\src\main\.git\worktrees\feat"))
            || plan.writable.contains(&w(r"C:\src\main\.git"))
    );
    assert!(plan.writable.contains(&w(r"C:\src\main\.git")));
    let protected = denied(&plan, Reason::Protected);
    for p in [
        r"C:\src\main\.git\hooks",
        r"C:\src\main\.git\config",
        r"C:\src\main\.git\info",
        r"C:\src\main\.git\worktrees\feat\config.worktree",
        r"C:\src\main\.git\worktrees\feat\commondir",
        r"C:\src\feat\.cordon.toml",
    ] {
        assert!(
            protected.iter().any(|x| x == p),
            "{p} not protected: {protected:?}"
        );
    }
    let pins = denied(&plan, Reason::PinGitDir);
    assert_eq!(
        pins,
        [r"C:\src\feat\.git", r"C:\src\main\.git\worktrees\feat"]
    );
}

#[test]
fn nested_and_protected_roots_are_dropped() {
    let host = repo(r"C:\src\app")
        .dir(r"C:\src\app\build")
        .dir(r"C:\src\app\.git\hooks\sub");
    let plan = run(
        &host,
        "[filesystem]\nallow_write = [\"build\", \".git/hooks/sub\", \"absent\"]",
        r"C:\src\app",
        Mode::Unelevated,
    );
    assert!(
        !plan.writable.contains(&w(r"C:\src\app\build")),
        "covered by the workspace's grant"
    );
    assert!(
        !plan.writable.contains(&w(r"C:\src\app\.git\hooks\sub")),
        "protection beats allow_write"
    );
    assert!(plan.notes.iter().any(|n| n.contains("inside protected")));
    assert!(plan
        .notes
        .iter()
        .any(|n| n.contains("absent") && n.contains("does not exist")));
}

#[test]
fn spaces_long_paths_and_odd_spellings_name_the_same_workspace() {
    let long = format!(
        r"C:\Users\dev\My Projects\{}\app",
        vec!["deep folder"; 30].join("\\")
    );
    assert!(long.len() > 300);
    let host = repo(&long);
    for spelling in [
        long.clone(),
        format!(r"\\?\{long}"),
        long.replace('\\', "/").to_lowercase(),
    ] {
        let plan = run(&host, "", &spelling, Mode::Unelevated);
        assert_eq!(plan.workspace, w(&long), "{spelling}");
        assert_eq!(plan.write_sid, Sid::sandbox_write(&w(&long)));
        assert!(plan
            .acl
            .iter()
            .all(|(e, _)| e.path.to_api().starts_with(r"\\?\")));
    }
}

#[test]
fn junctions_are_followed_for_roots_and_refused_for_protected_paths() {
    // The workspace is reached through a junction: the ACEs go on the real folder.
    let host = repo(r"D:\real\app")
        .dir(r"C:\src")
        .junction(r"C:\src\app", r"D:\real\app");
    let plan = run(&host, "", r"C:\src\app", Mode::Unelevated);
    assert_eq!(plan.workspace, w(r"D:\real\app"));
    // A planted junction at a protected path would send the deny ACE elsewhere.
    let host = repo(r"C:\src\app")
        .dir(r"C:\elsewhere")
        .junction(r"C:\src\app\.git\hooks", r"C:\elsewhere");
    let p = policy("", true);
    let c = ctx(r"C:\src\app");
    let err = plan_err(&input(&p, &c, Mode::Unelevated), &host);
    assert!(
        matches!(err, PlanError::ProtectedLink(ref l) if *l == w(r"C:\src\app\.git\hooks")),
        "{err}"
    );
}

fn plan_err(i: &PlanInput<'_>, host: &FakeHost) -> PlanError {
    match plan(i, host) {
        Ok(p) => panic!("planned: {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn broad_roots_are_refused() {
    let host = repo(r"C:\src\app").dir(r"C:\Users\dev\proj");
    for (extra, ws) in [
        ("", r"C:\"),
        ("", r"C:\Users"),
        (
            "[filesystem]\nallow_write = [\"C:\\\\Users\\\\dev\"]",
            r"C:\src\app",
        ),
        ("[filesystem]\nallow_write = [\"C:\\\\\"]", r"C:\src\app"),
    ] {
        let host = FakeHost {
            ..repo(r"C:\src\app")
        }
        .dir(ws);
        let p = policy(extra, true);
        let c = ctx(ws);
        let err = plan_err(&input(&p, &c, Mode::Unelevated), &host);
        assert!(
            matches!(err, PlanError::TooBroad(..)),
            "{extra} {ws}: {err}"
        );
    }
    let _ = host;
}

#[test]
fn unelevated_mode_fails_closed_unless_weaker_is_named() {
    let host = repo(r"C:\src\app");
    let p = policy("", false);
    let c = ctx(r"C:\src\app");
    let err = plan_err(&input(&p, &c, Mode::Unelevated), &host);
    let PlanError::Unenforceable(unmet) = err else {
        panic!("{err}")
    };
    let areas: Vec<_> = unmet.iter().map(|(a, _)| *a).collect();
    assert_eq!(areas, ["read", "network", "processes"]);
    let plan = run(&host, "", r"C:\src\app", Mode::Unelevated);
    assert!(plan
        .guarantees
        .iter()
        .any(|g| g.area == "network" && matches!(g.status, Status::NotEnforced(_))));
    assert!(plan.firewall.is_empty() && plan.account.is_none());
}

#[test]
fn command_rules_fail_closed_because_only_the_command_line_is_judged() {
    let host = repo(r"C:\src\app");
    let c = ctx(r"C:\src\app");
    // `--net full`: the elevated mode's network gaps do not count, only the rules do.
    let rules = "[network]\nmode = \"full\"\n[commands]\nrules = [{ prefix = [\"git\", \"push\"], decision = \"forbid\", reason = \"no\" }]\n";
    let p = policy(rules, false);
    let err = plan_err(&input(&p, &c, Mode::Elevated(accounts())), &host);
    let PlanError::Unenforceable(unmet) = err else {
        panic!("{err}")
    };
    assert_eq!(unmet.len(), 1, "{unmet:?}");
    assert_eq!(unmet[0].0, "commands");
    assert!(
        unmet[0].1.contains("only the command line"),
        "{}",
        unmet[0].1
    );
    // Rules that only allow say nothing a run could miss.
    let allow_only = policy(
        "[network]\nmode = \"full\"\n[commands]\nrules = [{ prefix = [\"git\"], decision = \"allow\" }]\n",
        false,
    );
    let allowed = plan(&input(&allow_only, &c, Mode::Elevated(accounts())), &host)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(allowed.guarantees.iter().all(|g| g.area != "commands"));
    // Named weaker: it runs, and the plan says what is not judged.
    let weaker = policy(rules, true);
    let weak = plan(&input(&weaker, &c, Mode::Elevated(accounts())), &host)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(weak
        .guarantees
        .iter()
        .any(|g| g.area == "commands" && matches!(g.status, Status::NotEnforced(_))));
}

#[test]
fn elevated_mode_hides_secrets_and_blocks_the_offline_account() {
    let host = repo(r"C:\src\app")
        .dir(r"C:\Users\dev\.ssh")
        .file(r"C:\Users\dev\.npmrc", "x");
    let c = ctx(r"C:\src\app");
    // Network off is not claimed: the DNS Client service and the SMB redirector send for
    // the account (docs/windows.md, "Known gaps"), so the default policy is refused...
    let strict = policy("", false);
    let err = plan_err(&input(&strict, &c, Mode::Elevated(accounts())), &host);
    let PlanError::Unenforceable(unmet) = err else {
        panic!("{err}")
    };
    assert_eq!(unmet.len(), 1, "{unmet:?}");
    assert_eq!(unmet[0].0, "network");
    assert!(unmet[0].1.contains("DNS Client service") && unmet[0].1.contains("SMB"));
    // ...and runs when the weaker mode is named, saying so; everything else is enforced.
    let p = policy("", true);
    let plan =
        plan(&input(&p, &c, Mode::Elevated(accounts())), &host).unwrap_or_else(|e| panic!("{e}"));
    for g in &plan.guarantees {
        let weak = matches!(g.status, Status::NotEnforced(_));
        assert_eq!(weak, g.area == "network", "{g:?}");
    }
    assert_eq!(plan.account, Some(network::OFFLINE_ACCOUNT));
    let secrets: Vec<_> = plan
        .acl
        .iter()
        .filter(|(e, _)| e.reason == Reason::Secret)
        .map(|(e, _)| (e.path.to_string(), e.inherit, e.sid.clone()))
        .collect();
    assert!(secrets.contains(&(
        r"C:\Users\dev\.ssh".into(),
        acl::Inherit::TREE,
        accounts().group
    )));
    assert!(secrets.contains(&(
        r"C:\Users\dev\.npmrc".into(),
        acl::Inherit::THIS_ONLY,
        accounts().group
    )));
    assert!(plan
        .notes
        .iter()
        .any(|n| n.contains(r"\.aws") && n.contains("absent")));
    assert_eq!(plan.firewall.len(), 1);
    assert!(plan.wfp.iter().any(|f| f.name.contains("DNS")));
    assert!(plan
        .acl
        .iter()
        .any(|(e, _)| e.reason == Reason::AccountWorkspace
            && e.path == w(r"C:\src\app")
            && e.sid == accounts().group
            && e.mask == acl::WRITE_GRANT
            && e.mask & acl::FILE_DELETE_CHILD == 0));
    let full = policy("[network]\nmode = \"full\"", false);
    let plan = super::plan(&input(&full, &c, Mode::Elevated(accounts())), &host)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.account, Some(network::ONLINE_ACCOUNT));
    assert!(plan.firewall.is_empty());
    assert!(plan
        .guarantees
        .iter()
        .all(|g| !matches!(g.status, Status::NotEnforced(_))));
    let _ = Network::Off;
}

#[test]
fn everyone_writable_folders_outside_the_roots_are_denied_within_bounds() {
    let host = repo(r"C:\src\app")
        .dir(r"C:\ProgramData\Loose")
        .dir(r"C:\src\app\tmp");
    let p = policy("", true);
    let c = ctx(r"C:\src\app");
    let mut i = input(&p, &c, Mode::Unelevated);
    i.everyone_writable = vec![w(r"C:\ProgramData\Loose"), w(r"C:\src\app\tmp")];
    let plan1 = plan(&i, &host).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        denied(&plan1, Reason::EveryoneWritable),
        [r"C:\ProgramData\Loose"]
    );
    i.everyone_writable = (0..MAX_EVERYONE_DENIES + 5)
        .map(|n| w(&format!(r"C:\loose\{n}")))
        .collect();
    let plan2 = plan(&i, &host).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        denied(&plan2, Reason::EveryoneWritable).len(),
        MAX_EVERYONE_DENIES
    );
    assert!(plan2.notes.iter().any(|n| n.contains("Everyone-writable")));
    assert!(plan2.audit.max_dirs > 0 && plan2.audit.max_millis > 0);
}

#[test]
fn the_token_restricts_writes_to_one_workspace_sid() {
    let host = repo(r"C:\src\app");
    let plan = run(
        &host,
        "[filesystem]\nallow_write = [\"C:\\\\a\", \"C:\\\\b\"]",
        r"C:\src\app",
        Mode::Unelevated,
    );
    assert_eq!(plan.token.flags, 0x1 | 0x4 | 0x8);
    let fixed: Vec<_> = plan
        .token
        .restricting
        .iter()
        .filter_map(|s| match s {
            TokenSid::Fixed(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        fixed,
        [plan.write_sid.clone(), Sid::everyone()],
        "one write SID however many roots"
    );
    assert!(plan
        .token
        .keep_privileges
        .contains(&"SeChangeNotifyPrivilege"));
}

#[test]
fn windows_policy_paths_are_read_as_windows_paths() {
    let homes = [w(r"C:\Users\dev")];
    let ws = w(r"C:\ws");
    let spec = |s: &str| cordon_policy::PathSpec::parse(s).unwrap_or_else(|e| panic!("{e}"));
    let table = [
        (r"D:\cache", Ok(vec![w(r"D:\cache")])),
        (r"build\out", Ok(vec![w(r"C:\ws\build\out")])),
        ("~/.cargo", Ok(vec![w(r"C:\Users\dev\.cargo")])),
        ("~", Ok(vec![w(r"C:\Users\dev")])),
    ];
    for (text, want) in table {
        assert_eq!(fs::resolve_spec(&spec(text), &ws, &homes), want, "{text}");
    }
    for bad in [r"a\..\b", "/etc/passwd", r"C:\ws\nul"] {
        // On Windows the policy parser already refuses `a\..\b`; on Linux it cannot see the
        // `..` and the planner refuses it.
        let refused = cordon_policy::PathSpec::parse(bad)
            .map_or(true, |s| fs::resolve_spec(&s, &ws, &homes).is_err());
        assert!(refused, "{bad}");
    }
}

/// The `AccountTools` grants of a plan: (path, mask, inheritance, SID).
fn tool_grants(plan: &WindowsPlan) -> Vec<(String, u32, acl::Inherit, Sid)> {
    plan.acl
        .iter()
        .filter(|(e, _)| e.reason == Reason::AccountTools)
        .map(|(e, _)| (e.path.to_string(), e.mask, e.inherit, e.sid.clone()))
        .collect()
}

fn tools_host() -> FakeHost {
    repo(r"C:\src\app")
        .dir(r"C:\Users\dev\.cargo\bin")
        .file(r"C:\Users\dev\.cargo\credentials.toml", "token")
        .dir(r"C:\Users\dev\.rustup\toolchains")
        .dir(r"C:\Users\dev\scoop\shims")
        .dir(r"C:\Users\dev\AppData\Roaming\npm")
        .dir(r"C:\Users\dev\AppData\Roaming\Mozilla\Firefox\Profiles")
        .dir(r"C:\Users\dev\AppData\Roaming\GitHub CLI")
        .dir(r"C:\Users\dev\AppData\Local\Microsoft\WindowsApps")
        .dir(r"C:\Users\dev\AppData\Local\Programs\Python\Python312\Scripts")
        .dir(r"C:\Users\dev\AppData\Local\Programs")
        .dir(r"C:\Users\dev\.ssh\bin")
        .dir(r"C:\Program Files\Git\cmd")
        .dir(r"D:\tools\bin")
        .junction(r"C:\Users\dev\linked", r"D:\tools")
        .junction(r"C:\tools", r"C:\Users\dev\go")
        .dir(r"C:\Users\dev\go\bin")
}

fn with_tools<'a>(p: &'a Policy, c: &'a ResolveContext, dirs: &[&str]) -> PlanInput<'a> {
    let mut i = input(p, c, Mode::Elevated(accounts()));
    i.tool_dirs = dirs.iter().map(|s| w(s)).collect();
    i
}

fn has_note(plan: &WindowsPlan, text: &str) -> bool {
    plan.notes.iter().any(|n| n.contains(text))
}

#[test]
fn elevated_mode_lets_the_sandbox_group_read_the_program_folders_in_a_home() {
    let host = tools_host();
    let p = policy("", true);
    let c = ctx(r"C:\src\app");
    let i = with_tools(
        &p,
        &c,
        &[
            r"C:\Users\dev\.cargo\bin",
            r"C:\Users\dev\scoop\shims\",
            r"C:\Users\dev\AppData\Roaming\npm",
            r"C:\Users\dev\AppData\Local\Microsoft\WindowsApps",
            r"C:\Users\dev\AppData\Local\Programs\Python\Python312\Scripts",
            r"C:\Program Files\Git\cmd",
            r"C:\Users\dev\linked\bin",
            r"C:\tools\bin",
            r"C:\Users\dev\missing\bin",
            r"C:\Users\dev",
            r"C:\Users",
            r"C:\Users\dev\AppData\Local",
            r"C:\Users\dev\AppData",
            r"C:\Users\dev\AppData\Local\Programs",
            r"C:\Users\dev\AppData\Roaming\Mozilla\Firefox\Profiles",
            r"C:\Users\dev\AppData\Roaming\GitHub CLI",
            r"C:\Users\dev\.ssh\bin",
        ],
    );
    let plan = plan(&i, &host).unwrap_or_else(|e| panic!("{e}"));
    let g = accounts().group;
    let grant = |s: &str| {
        (
            s.to_string(),
            acl::READ_GRANT,
            acl::Inherit::TREE,
            g.clone(),
        )
    };
    assert_eq!(
        tool_grants(&plan),
        [
            // `.rustup` comes with `.cargo`: rustup's proxies run the toolchains there.
            grant(r"C:\Users\dev\.cargo"),
            grant(r"C:\Users\dev\.rustup"),
            grant(r"C:\Users\dev\scoop"),
            // Under AppData only where programs are installed: the rest holds credentials.
            grant(r"C:\Users\dev\AppData\Roaming\npm"),
            grant(r"C:\Users\dev\AppData\Local\Microsoft\WindowsApps"),
            grant(r"C:\Users\dev\AppData\Local\Programs\Python"),
            // A junction elsewhere into the home is granted where it lands.
            grant(r"C:\Users\dev\go"),
        ]
    );
    assert_eq!(
        acl::READ_GRANT & acl::DENY_WRITE,
        0,
        "read and execute only"
    );
    // The secret inside a granted folder keeps its explicit deny, which outranks the
    // inherited grant.
    assert!(plan.acl.iter().any(|(e, _)| e.reason == Reason::Secret
        && e.path == w(r"C:\Users\dev\.cargo\credentials.toml")
        && e.kind == AceKind::Deny
        && e.sid == g));
    for turned_down in [
        r"folder C:\Users\dev holds your profile",
        r"folder C:\Users holds your profile",
        r"folder C:\Users\dev\AppData\Local is in AppData",
        r"folder C:\Users\dev\AppData is in AppData",
        r"folder C:\Users\dev\AppData\Local\Programs is in AppData",
        r"folder C:\Users\dev\AppData\Roaming\Mozilla\Firefox\Profiles is in AppData",
        r"folder C:\Users\dev\AppData\Roaming\GitHub CLI is in AppData",
    ] {
        assert!(
            has_note(&plan, turned_down),
            "no note `{turned_down}`: {:?}",
            plan.notes
        );
    }
    assert!(plan
        .notes
        .iter()
        .any(|n| n.contains(r"C:\Users\dev\.ssh") && n.contains("stays unreadable")));
    assert!(!has_note(&plan, "missing"));

    // Unelevated, the token is the developer's own: nothing to grant.
    let mut i = input(&p, &c, Mode::Unelevated);
    i.tool_dirs = vec![w(r"C:\Users\dev\.cargo\bin")];
    let plan = super::plan(&i, &host).unwrap_or_else(|e| panic!("{e}"));
    assert!(tool_grants(&plan).is_empty());
}

#[test]
fn only_the_tokens_profile_counts_whatever_userprofile_says() {
    // The agent chooses the environment cordon starts with: USERPROFILE too. Program
    // folders are taken only in the profile the token names (`PlanInput::profile`).
    let host = tools_host()
        .dir(r"C:\Users\alice\Documents")
        .dir(r"C:\Users\dev\secretstuff\keys");
    let p = policy("", true);
    let case = |home: &str, profile: Option<&str>, dir: &str| {
        let mut c = ctx(r"C:\src\app");
        c.homes = vec![PathBuf::from(home)];
        let mut i = with_tools(&p, &c, &[dir]);
        i.profile = profile.map(w);
        let plan = plan(&i, &host).unwrap_or_else(|e| panic!("{e}"));
        (tool_grants(&plan), plan.notes)
    };
    let dev = Some(r"C:\Users\dev");
    // USERPROFILE=C:\Users: still only the first folder below the real profile.
    let (grants, _) = case(r"C:\Users", dev, r"C:\Users\dev\.cargo\bin");
    let paths: Vec<&str> = grants.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(paths, [r"C:\Users\dev\.cargo", r"C:\Users\dev\.rustup"]);
    // USERPROFILE inside AppData: its folders are still AppData's.
    let (grants, notes) = case(
        r"C:\Users\dev\AppData\Roaming",
        dev,
        r"C:\Users\dev\AppData\Roaming\Mozilla\Firefox\Profiles",
    );
    assert!(grants.is_empty(), "{grants:?}");
    assert!(
        notes.iter().any(|n| n.contains("is in AppData")),
        "{notes:?}"
    );
    // USERPROFILE set to a folder inside the profile moves nothing: the grant is the first
    // folder below the real profile, where another workspace's deny (below) would sit.
    let (grants, _) = case(
        r"C:\Users\dev\secretstuff",
        dev,
        r"C:\Users\dev\secretstuff\keys",
    );
    let paths: Vec<&str> = grants.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(paths, [r"C:\Users\dev\secretstuff"]);
    // Another user's profile (an administrator's cordon): never.
    let (grants, _) = case(r"C:\Users\alice", dev, r"C:\Users\alice\Documents");
    assert!(grants.is_empty(), "{grants:?}");
    // No profile from the token: no grants at all.
    let (grants, _) = case(r"C:\Users\dev", None, r"C:\Users\dev\.cargo\bin");
    assert!(grants.is_empty(), "{grants:?}");
}

#[test]
fn program_folder_grants_are_the_groups_no_workspace_revokes_them() {
    let host = tools_host();
    let p = policy("", true);
    let c = ctx(r"C:\src\app");
    let mut i = with_tools(
        &p,
        &c,
        &[r"C:\Users\dev\.cargo\bin", r"C:\Users\dev\scoop\shims"],
    );
    let first = plan(&i, &host).unwrap_or_else(|e| panic!("{e}"));
    assert!(first
        .acl
        .iter()
        .filter(|(e, _)| e.reason == Reason::AccountTools)
        .all(|(_, a)| *a == Action::Apply));
    assert_eq!(
        first.tool_roots(),
        [
            w(r"C:\Users\dev\.cargo"),
            w(r"C:\Users\dev\.rustup"),
            w(r"C:\Users\dev\scoop")
        ]
    );
    assert!(
        first
            .managed()
            .iter()
            .all(|m| !first.tool_roots().contains(m)),
        "not this workspace's to revoke"
    );
    host.apply(&first);
    let again = plan(&i, &host).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.writes(), 0, "a second run writes no ACL");

    // PATH no longer names scoop: another workspace may still want it, so it stays.
    i.previously_managed = again.managed();
    i.tool_dirs = vec![w(r"C:\Users\dev\.cargo\bin")];
    let dropped = plan(&i, &host).unwrap_or_else(|e| panic!("{e}"));
    assert!(dropped.revoke.is_empty(), "{:?}", dropped.revoke);
    assert_eq!(dropped.writes(), 0);

    // Nor does a workspace whose allow_write covers a program folder revoke its grant.
    let ws = policy("[filesystem]\nallow_write = [\"~/scoop\"]\n", true);
    let mut j = with_tools(&ws, &c, &[]);
    j.previously_managed = vec![w(r"C:\Users\dev\scoop")];
    let other = plan(&j, &host).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        other.writable.contains(&w(r"C:\Users\dev\scoop")),
        "{:?}",
        other.writable
    );
    assert!(
        other
            .revoke
            .iter()
            .all(|r| r.path != w(r"C:\Users\dev\scoop") || r.ace.mask != acl::READ_GRANT),
        "{:?}",
        other.revoke
    );
}

#[test]
fn a_deny_passed_down_to_a_program_folder_is_kept_too() {
    // Workspace A hides AppData\Local\Programs; the deny reaches Python's folder inherited,
    // and an explicit grant there would outrank it.
    let host = tools_host();
    host.dacls.borrow_mut().insert(
        w(r"C:\Users\dev\AppData\Local\Programs\Python"),
        vec![Ace {
            kind: AceKind::Deny,
            sid: accounts().group,
            mask: acl::DENY_READ,
            flags: acl::Inherit::TREE.flags() | acl::INHERITED_ACE,
        }],
    );
    let p = policy("", true);
    let c = ctx(r"C:\src\app");
    let dirs = [r"C:\Users\dev\AppData\Local\Programs\Python\Python312\Scripts"];
    let plan = plan(&with_tools(&p, &c, &dirs), &host).unwrap_or_else(|e| panic!("{e}"));
    assert!(tool_grants(&plan).is_empty(), "{:?}", tool_grants(&plan));
    assert!(has_note(&plan, "a deny_read of the sandbox group is on it"));
}

#[test]
fn another_workspaces_deny_read_on_a_program_folder_is_kept() {
    // Workspace A hides ~\secretstuff (its own deny_read); B's PATH names a folder in it.
    let host = tools_host().dir(r"C:\Users\dev\secretstuff\bin");
    let g = accounts().group;
    host.dacls.borrow_mut().insert(
        w(r"C:\Users\dev\secretstuff"),
        vec![Ace {
            kind: AceKind::Deny,
            sid: g.clone(),
            mask: acl::DENY_READ,
            flags: acl::Inherit::TREE.flags(),
        }],
    );
    let p = policy("", true);
    let c = ctx(r"C:\src\app");
    let plan = plan(
        &with_tools(&p, &c, &[r"C:\Users\dev\secretstuff\bin"]),
        &host,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(tool_grants(&plan).is_empty());
    assert!(
        plan.revoke.is_empty(),
        "A's deny revoked: {:?}",
        plan.revoke
    );
    assert!(has_note(&plan, "a deny_read of the sandbox group is on it"));
}

#[test]
fn a_program_folder_inside_a_writable_root_gets_no_extra_grant() {
    // Not `~\src` for the workspace's own `node_modules\.bin`: its folder is granted already.
    let host = tools_host().dir(r"C:\Users\dev\src\app\node_modules\.bin");
    let p = policy("", true);
    let c = ctx(r"C:\Users\dev\src\app");
    let i = with_tools(&p, &c, &[r"C:\Users\dev\src\app\node_modules\.bin"]);
    let plan = plan(&i, &host).unwrap_or_else(|e| panic!("{e}"));
    assert!(tool_grants(&plan).is_empty(), "{:?}", tool_grants(&plan));
}
