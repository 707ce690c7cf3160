//! Which environment variables the sandboxed command inherits.

/// What happened to one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvDecision {
    Kept,
    /// Removed because its name matched this pattern.
    Removed(String),
}

/// Case-insensitive (ASCII) glob match where `*` matches any run of characters.
pub fn env_name_matches(pattern: &str, name: &str) -> bool {
    glob(pattern.as_bytes(), name.as_bytes())
}

fn glob(p: &[u8], n: &[u8]) -> bool {
    // Iterative wildcard match with single backtrack point: linear in practice, no allocation
    // (it runs for every variable against every pattern on each start).
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi].eq_ignore_ascii_case(&n[ni]) {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// Splits `vars` into what the command gets and what was removed, as (name, pattern or
/// reason). The value is carried through untouched, so callers may keep the OS's exact bytes
/// in it; `text` shows it as text, for the one rule on values: a URL with a password in it
/// (`REDIS_URL=redis://:pw@host`) is removed whatever its name, unless kept by name.
#[allow(clippy::type_complexity)]
pub fn scrub_env<I, V>(
    vars: I,
    deny: &[String],
    keep: &[String],
    text: impl Fn(&V) -> String,
) -> (Vec<(String, V)>, Vec<(String, String)>)
where
    I: IntoIterator<Item = (String, V)>,
{
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for (name, value) in vars {
        match decide(&name, deny, keep) {
            EnvDecision::Kept if !keep.contains(&name) && has_url_password(&text(&value)) => {
                removed.push((name, URL_PASSWORD.to_string()))
            }
            EnvDecision::Kept => kept.push((name, value)),
            EnvDecision::Removed(pattern) => removed.push((name, pattern)),
        }
    }
    (kept, removed)
}

/// The reason given for a variable removed by its value.
pub const URL_PASSWORD: &str = "(value: a URL with a password)";

/// Whether `value` holds a URL whose authority carries a password: `scheme://user:pw@host`
/// or `scheme://:pw@host`.
pub fn has_url_password(value: &str) -> bool {
    let mut rest = value;
    while let Some(i) = rest.find("://") {
        let after = &rest[i + 3..];
        let authority = after
            .split(['/', '?', '#', ' ', '"', '\'', ',', ';', '}', ']', '>'])
            .next()
            .unwrap_or("");
        if let Some((userinfo, _host)) = authority.rsplit_once('@') {
            if userinfo
                .split_once(':')
                .is_some_and(|(_, pw)| !pw.is_empty())
            {
                return true;
            }
        }
        rest = after;
    }
    false
}

fn decide(name: &str, deny: &[String], keep: &[String]) -> EnvDecision {
    if keep.iter().any(|k| k == name) {
        return EnvDecision::Kept;
    }
    match deny.iter().find(|p| env_name_matches(p, name)) {
        Some(p) => EnvDecision::Removed(p.clone()),
        None => EnvDecision::Kept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_ENV_DENY;

    #[test]
    fn urls_with_passwords_are_found_anywhere_in_a_value() {
        for yes in [
            "redis://:pw@cache:6379/0",
            "postgres://app:s3cret@db/prod",
            "mongodb+srv://u:p@cluster.example.net/?retryWrites=true",
            "first https://x.example/ then amqp://guest:guest@mq/",
        ] {
            assert!(has_url_password(yes), "{yes}");
        }
        for no in [
            "https://example.com/a@b",
            "ssh://git@github.com/org/repo",
            "postgres://app@db/prod",
            "http://user:@host/",
            "plain text",
            r#"{"url":"http://host:8080","mail":"a@b.c"}"#,
        ] {
            assert!(!has_url_password(no), "{no}");
        }
        let vars = vec![
            ("REDIS_URL".to_string(), "redis://:pw@cache".to_string()),
            ("HOMEPAGE".to_string(), "https://example.com".to_string()),
        ];
        let (kept, removed) = scrub_env(vars.clone(), &[], &[], String::clone);
        assert_eq!(kept, vec![vars[1].clone()]);
        assert_eq!(
            removed,
            vec![("REDIS_URL".to_string(), URL_PASSWORD.to_string())]
        );
        let (kept, _) = scrub_env(vars, &[], &["REDIS_URL".to_string()], String::clone);
        assert_eq!(kept.len(), 2, "kept by exact name");
    }

    fn defaults() -> Vec<String> {
        DEFAULT_ENV_DENY.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn glob_basics() {
        assert!(env_name_matches("*_TOKEN", "GITHUB_TOKEN"));
        assert!(env_name_matches("*_token", "GITHUB_TOKEN"));
        assert!(!env_name_matches("*_TOKEN", "TOKENIZERS_PARALLELISM"));
        assert!(env_name_matches("AWS_*", "AWS_SECRET_ACCESS_KEY"));
        assert!(env_name_matches("*SECRET*", "MY_SECRET_THING"));
        assert!(env_name_matches("a*b*c", "aXXbYYc"));
        assert!(!env_name_matches("a*b*c", "aXXbYY"));
        assert!(env_name_matches("*", ""));
    }

    #[test]
    fn defaults_remove_common_secrets_and_keep_ordinary_variables() {
        let secrets = [
            "GITHUB_TOKEN",
            "GH_TOKEN",
            "NPM_TOKEN",
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "STRIPE_SECRET",
            "SSH_AUTH_SOCK",
            "CI_JOB_TOKEN_X",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ];
        let ordinary = [
            "PATH",
            "HOME",
            "LANG",
            "TERM",
            "CARGO_HOME",
            "TOKENIZERS_PARALLELISM",
            "KEYMAP",
        ];
        let vars = secrets
            .iter()
            .chain(ordinary.iter())
            .map(|n| (n.to_string(), "v".to_string()));
        let (kept, removed) = scrub_env(vars, &defaults(), &[], String::clone);
        let kept: Vec<_> = kept.into_iter().map(|(n, _)| n).collect();
        let removed: Vec<_> = removed.into_iter().map(|(n, _)| n).collect();
        assert_eq!(kept, ordinary);
        assert_eq!(removed, secrets);
    }

    #[test]
    fn keep_list_wins_by_exact_name() {
        let vars = vec![("GITHUB_TOKEN".to_string(), "x".to_string())];
        let (kept, _) = scrub_env(
            vars.clone(),
            &defaults(),
            &["GITHUB_TOKEN".to_string()],
            String::clone,
        );
        assert_eq!(kept.len(), 1);
        let (kept, _) = scrub_env(
            vars,
            &defaults(),
            &["github_token".to_string()],
            String::clone,
        );
        assert!(kept.is_empty(), "keep is by exact name");
    }
}
