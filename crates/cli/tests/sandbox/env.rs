//! Environment threats: tokens and keys inherited from the agent's environment.

use crate::util::Env;

#[test]
fn secret_looking_variables_are_removed() {
    let e = Env::new("env");
    let run = e
        .command(&["run".as_ref(), "--".as_ref(), "env".as_ref()])
        .env("GITHUB_TOKEN", "ghp_leak1")
        .env("AWS_SECRET_ACCESS_KEY", "aws_leak2")
        .env("OPENAI_API_KEY", "sk_leak3")
        .env("DB_PASSWORD", "pw_leak4")
        .env("MY_PASS", "pw_leak5")
        .env("npm_config__authToken", "npm_leak6")
        .env("OPENAI_APIKEY", "sk_leak7")
        .env("MYSQL_PWD", "pw_leak8")
        .env("GH_PAT", "ghp_leak9")
        .env("REDIS_URL", "redis://:pw_leak10@cache:6379")
        .env("BW_SESSION", "bw_leak11")
        // Credentials by their form, under innocent names.
        .env("BUILD_SETTING", "ghp_leak12leak12leak12leak12leak12leak12")
        .env("GIT_CONFIG_COUNT", "2")
        .env("GIT_CONFIG_KEY_0", "http.extraHeader")
        .env("GIT_CONFIG_VALUE_0", "Authorization: Bearer leak13")
        .env("GIT_CONFIG_KEY_1", "core.pager")
        .env("GIT_CONFIG_VALUE_1", "less")
        .env("DEPLOY_PSW", "pw_leak14")
        .env("SESSION_COOKIE", "ck_leak15")
        .env(
            "GIT_CONFIG_PARAMETERS",
            "'credential.helper'='!echo password=leak16'",
        )
        .env("HOMEPAGE_URL", "https://example.com/visible")
        .env("SSH_AUTH_SOCK", "/tmp/agent.sock")
        .env("HARMLESS_SETTING", "visible")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success());
    for leak in [
        "ghp_leak1",
        "aws_leak2",
        "sk_leak3",
        "pw_leak4",
        "pw_leak5",
        "npm_leak6",
        "sk_leak7",
        "pw_leak8",
        "ghp_leak9",
        "pw_leak10",
        "bw_leak11",
        "leak12",
        "leak13",
        "pw_leak14",
        "ck_leak15",
        "leak16",
        "agent.sock",
        // The rest of the git set goes too: git refuses to start with a gap in it.
        "GIT_CONFIG_COUNT",
    ] {
        assert!(!out.contains(leak), "{leak} reached the command");
    }
    assert!(out.contains("HARMLESS_SETTING=visible"));
    assert!(out.contains("HOMEPAGE_URL=https://example.com/visible"));
    assert!(out.contains("PATH="));
}

#[test]
fn keep_env_keeps_by_exact_name() {
    let e = Env::new("keep-env");
    let run = e
        .command(&[
            "run".as_ref(),
            "--keep-env".as_ref(),
            "NPM_TOKEN".as_ref(),
            "--".as_ref(),
            "env".as_ref(),
        ])
        .env("NPM_TOKEN", "kept_ok")
        .env("GH_TOKEN", "dropped")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(out.contains("NPM_TOKEN=kept_ok"));
    assert!(!out.contains("dropped"));
}
