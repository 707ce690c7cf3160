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

/// Splits `vars` into what the command gets and what was removed, as (name, pattern). The
/// value is carried through untouched, so callers may keep the OS's exact bytes in it.
#[allow(clippy::type_complexity)]
pub fn scrub_env<I, V>(
    vars: I,
    deny: &[String],
    keep: &[String],
) -> (Vec<(String, V)>, Vec<(String, String)>)
where
    I: IntoIterator<Item = (String, V)>,
{
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for (name, value) in vars {
        match decide(&name, deny, keep) {
            EnvDecision::Kept => kept.push((name, value)),
            EnvDecision::Removed(pattern) => removed.push((name, pattern)),
        }
    }
    (kept, removed)
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
        let (kept, removed) = scrub_env(vars, &defaults(), &[]);
        let kept: Vec<_> = kept.into_iter().map(|(n, _)| n).collect();
        let removed: Vec<_> = removed.into_iter().map(|(n, _)| n).collect();
        assert_eq!(kept, ordinary);
        assert_eq!(removed, secrets);
    }

    #[test]
    fn keep_list_wins_by_exact_name() {
        let vars = vec![("GITHUB_TOKEN".to_string(), "x".to_string())];
        let (kept, _) = scrub_env(vars.clone(), &defaults(), &["GITHUB_TOKEN".to_string()]);
        assert_eq!(kept.len(), 1);
        let (kept, _) = scrub_env(vars, &defaults(), &["github_token".to_string()]);
        assert!(kept.is_empty(), "keep is by exact name");
    }
}
