//! Policy threats: the agent widening its own sandbox through the workspace file, and the
//! diagnostics a human gets for a malformed file.

use std::fs;

use crate::util::{exists, Env};

#[test]
fn workspace_file_widening_needs_a_humans_approval() {
    let e = Env::new("approve");
    let target = e.outside.join("widened");
    fs::write(
        e.ws.join(".cordon.toml"),
        format!(
            "[filesystem]\nallow_write = [\"{}\"]\n",
            e.outside.display()
        ),
    )
    .unwrap();
    let run = e
        .sh(&[], &format!("echo x > {}; true", target.display()))
        .ok();
    assert!(!exists(&target), "unapproved widening took effect");
    assert!(run.stderr.contains("ignoring"), "{}", run.stderr);
    // The sandbox cannot approve itself: the state folder is neither readable nor writable.
    let run = e.cordon(&[
        "run".as_ref(),
        "--".as_ref(),
        crate::util::cordon_bin().as_os_str(),
        "approve".as_ref(),
    ]);
    assert_ne!(run.code, 0, "approve succeeded inside the sandbox");
    e.sh(&[], &format!("echo x > {}; true", target.display()))
        .ok();
    assert!(!exists(&target), "self-approval took effect");
    // A human approves from outside.
    let approve = e.cordon(&["approve".as_ref()]).ok();
    assert!(approve.stdout.contains("allow_write"), "{}", approve.stdout);
    e.sh(&[], &format!("echo x > {}", target.display())).ok();
    assert!(exists(&target), "approved widening ignored");
    // Changing the file withdraws the approval.
    fs::remove_file(&target).unwrap();
    let mut text = fs::read_to_string(e.ws.join(".cordon.toml")).unwrap();
    text.push_str("# edited\n");
    fs::write(e.ws.join(".cordon.toml"), text).unwrap();
    e.sh(&[], &format!("echo x > {}; true", target.display()))
        .ok();
    assert!(!exists(&target), "edited file kept the old approval");
}

#[test]
fn narrowing_in_the_workspace_file_applies_without_approval() {
    let e = Env::new("narrow");
    fs::write(e.ws.join("notes.txt"), "private").unwrap();
    fs::write(
        e.ws.join(".cordon.toml"),
        "[filesystem]\ndeny_read = [\"notes.txt\"]\n",
    )
    .unwrap();
    let run = e.sh(&[], "cat notes.txt; true").ok();
    assert!(!run.stdout.contains("private"));
}

#[test]
fn malformed_policy_names_file_and_line() {
    let e = Env::new("malformed");
    let p = e.root.join("p.toml");
    fs::write(
        &p,
        "[filesystem]\nallow_write = [\"/tmp/x\"]\nallow_wirte = []\n",
    )
    .unwrap();
    let run = e.sh(&["--policy", p.to_str().unwrap()], "true");
    assert_eq!(run.code, 125);
    assert!(
        run.stderr.contains(&format!("{}:3:", p.display())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint"), "{}", run.stderr);
}

#[test]
fn user_config_layer_applies() {
    let e = Env::new("user-config");
    let cache = e.outside.join("cache");
    fs::create_dir_all(&cache).unwrap();
    fs::create_dir_all(e.home.join(".config/cordon")).unwrap();
    fs::write(
        e.home.join(".config/cordon/config.toml"),
        format!("[filesystem]\nallow_write = [\"{}\"]\n", cache.display()),
    )
    .unwrap();
    e.sh(&[], &format!("echo x > {}/f", cache.display())).ok();
    assert!(exists(&cache.join("f")));
}

#[test]
fn home_as_workspace_is_refused() {
    let e = Env::new("home-ws");
    let run = e.sh(&["-w", e.home.to_str().unwrap()], "true");
    assert_eq!(run.code, 125);
    assert!(run.stderr.contains("home directory"));
}

#[test]
fn rules_check_reports_the_decision_and_the_rule() {
    let e = Env::new("rules-check");
    let policy = e.root.join("rules.toml");
    fs::write(
        &policy,
        "[commands]\ndefault = \"allow\"\n\
         [[commands.rules]]\nprefix = [\"git\", \"push\"]\ndecision = \"prompt\"\nreason = \"pushing publishes\"\n\
         [[commands.rules]]\nprefix = [\"npm\", [\"publish\", \"unpublish\"]]\ndecision = \"forbid\"\nreason = \"no publishing\"\n",
    )
    .unwrap();
    let check = |argv: &[&str]| -> serde_json::Value {
        let mut args: Vec<&std::ffi::OsStr> = ["rules", "check", "--json", "--policy"]
            .iter()
            .map(|s| s.as_ref())
            .collect();
        args.push(policy.as_os_str());
        args.push("--".as_ref());
        args.extend(argv.iter().map(std::ffi::OsStr::new));
        serde_json::from_str(&e.cordon(&args).ok().stdout).unwrap()
    };
    let push = check(&["/usr/bin/git", "-C", "repo", "push", "origin"]);
    assert_eq!(push["decision"], "prompt", "{push}");
    assert_eq!(push["rule"]["reason"], "pushing publishes", "{push}");
    let unpublish = check(&["npm", "unpublish", "pkg"]);
    assert_eq!(unpublish["decision"], "forbid", "{unpublish}");
    let ls = check(&["ls", "-l"]);
    assert_eq!(ls["decision"], "allow", "{ls}");
    assert!(ls["rule"].is_null(), "{ls}");
    // A workspace file may add a prompt without approval (stricter), and it counts.
    fs::write(
        e.ws.join(".cordon.toml"),
        "[[commands.rules]]\nprefix = [\"ls\"]\ndecision = \"prompt\"\nreason = \"listing\"\n",
    )
    .unwrap();
    assert_eq!(check(&["ls", "-l"])["decision"], "prompt");
}

fn rules_env(name: &str) -> (Env, std::path::PathBuf) {
    let e = Env::new(name);
    let policy = e.root.join("rules.toml");
    fs::write(
        &policy,
        "[[commands.rules]]\nprefix = [\"deploy\"]\ndecision = \"prompt\"\nreason = \"deploys need a human\"\n\
         [[commands.rules]]\nprefix = [\"npm\", \"publish\"]\ndecision = \"forbid\"\nreason = \"no publishing\"\n",
    )
    .unwrap();
    for tool in ["deploy", "npm"] {
        let p = e.ws.join(tool);
        fs::write(
            &p,
            format!("#!/bin/sh\necho ran > ran-{tool}-${{1:-none}}\n"),
        )
        .unwrap();
        fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    (e, policy)
}

#[test]
fn a_forbidden_command_does_not_run() {
    let (e, policy) = rules_env("rules-forbid");
    let run = e.cordon(&[
        "run".as_ref(),
        "--policy".as_ref(),
        policy.as_os_str(),
        "--".as_ref(),
        "./npm".as_ref(),
        "publish".as_ref(),
    ]);
    assert_eq!(run.code, 126, "{}", run.stderr);
    assert!(
        run.stderr.contains("forbidden by the sandbox's policy")
            && run.stderr.contains("no publishing"),
        "{}",
        run.stderr
    );
    assert!(!exists(&e.ws.join("ran-npm-publish")));
}

#[test]
fn a_forbidden_program_run_inside_the_sandbox_does_not_run() {
    let (e, _) = rules_env("rules-forbid-inside");
    // Forbids only: no prompt is possible, so no control socket is made either.
    let policy = e.root.join("forbid.toml");
    fs::write(
        &policy,
        "[[commands.rules]]\nprefix = [\"npm\", \"publish\"]\ndecision = \"forbid\"\nreason = \"no publishing\"\n",
    )
    .unwrap();
    let run = e
        .sh(
            &["--policy", policy.to_str().unwrap()],
            "./npm publish; echo publish=$?; ./npm install; echo install=$?",
        )
        .ok();
    assert!(!exists(&e.ws.join("ran-npm-publish")), "{}", run.stdout);
    assert!(
        exists(&e.ws.join("ran-npm-install")),
        "an allowed program was refused: {}",
        run.stderr
    );
    assert!(run.stdout.contains("publish=126"), "{}", run.stdout);
    assert!(
        run.stderr.contains("forbidden by the sandbox's policy"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_prompted_command_runs_only_when_a_human_allows_it() {
    for (choice, runs, inside) in [
        ("allow_once", true, false),
        ("deny", false, false),
        ("allow_once", true, true),
        ("deny", false, true),
    ] {
        let (e, policy) = rules_env(&format!("rules-prompt-{choice}-{inside}"));
        // The command line itself, or a program the command runs inside the sandbox.
        let command: &[&str] = match inside {
            false => &["./deploy"],
            true => &["sh", "-c", "./deploy; echo deploy=$?"],
        };
        let mut argv = vec!["--policy", policy.to_str().unwrap(), "--"];
        argv.extend(command);
        let a = crate::util::run_answered(&e, &argv, choice);
        let run = a.run;
        assert_eq!(
            exists(&e.ws.join("ran-deploy-none")),
            runs,
            "{choice} (inside: {inside}): {}",
            run.stderr
        );
        match (runs, inside) {
            (true, _) => assert_eq!(run.code, 0, "{}", run.stderr),
            (false, false) => assert_eq!(run.code, 126, "{}", run.stderr),
            (false, true) => assert!(run.stdout.contains("deploy=126"), "{}", run.stdout),
        }
        if !runs {
            assert!(run.stderr.contains("a human denied it"), "{}", run.stderr);
        }
        assert!(
            a.audit.contains("approval_requested") && a.audit.contains("approval_decided"),
            "{}",
            a.audit
        );
    }
}
