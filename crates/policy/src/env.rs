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
/// in it; `text` shows it as text, for the rules on values: a value that is a credential by
/// its form ([`secret_in_value`]) is removed whatever its name, unless kept by name. Git's
/// `GIT_CONFIG_COUNT`/`KEY_n`/`VALUE_n` go as a set when one of them goes, because git refuses
/// to start with a gap in the set.
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
            EnvDecision::Kept if keep.contains(&name) => kept.push((name, value)),
            EnvDecision::Kept => {
                let shown = text(&value);
                match secret_in_value(&shown).or_else(|| git_credential_setting(&name, &shown)) {
                    Some(reason) => removed.push((name, reason.to_string())),
                    None => kept.push((name, value)),
                }
            }
            EnvDecision::Removed(pattern) => removed.push((name, pattern)),
        }
    }
    if removed.iter().any(|(name, _)| is_git_config_env(name)) {
        let (set, rest): (Vec<_>, Vec<_>) = kept
            .into_iter()
            .partition(|(name, _)| is_git_config_env(name) && !keep.contains(name));
        kept = rest;
        removed.extend(
            set.into_iter()
                .map(|(name, _)| (name, GIT_CONFIG_SET.to_string())),
        );
    }
    (kept, removed)
}

/// The reasons given for a variable removed by its value.
pub const URL_PASSWORD: &str = "(value: a URL with a password)";
pub const CREDENTIAL_HEADER: &str = "(value: an HTTP credential header)";
pub const KNOWN_TOKEN: &str = "(value: a token of a known format)";
pub const PRIVATE_KEY_VALUE: &str = "(value: a private key)";
/// The reason given for the rest of a `GIT_CONFIG_*` set one of whose members was removed.
pub const GIT_CONFIG_SET: &str = "(the rest of a GIT_CONFIG_* set: git refuses one with a gap)";

/// The reason given for git configuration through the environment that carries credentials.
pub const GIT_CREDENTIAL_SETTING: &str =
    "(a git setting that carries credentials: credential helper, extra header, cookie file)";

/// Git settings whose value is, or yields, a credential: an inline helper can print a
/// password (`credential.helper=!echo password=…`), an extra header or cookie file carries
/// one.
fn is_git_credential_key(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    (key.starts_with("credential.") && key.ends_with(".helper"))
        || key == "credential.helper"
        || (key.starts_with("http.")
            && (key.ends_with(".extraheader") || key.ends_with(".cookiefile")))
}

/// `GIT_CONFIG_KEY_<n>` naming such a setting (its `VALUE_<n>`, and with it the set, then
/// goes), or `GIT_CONFIG_PARAMETERS` (`git -c`'s own list, `'key'='value'` pairs) holding one.
fn git_credential_setting(name: &str, value: &str) -> Option<&'static str> {
    let found = match name {
        "GIT_CONFIG_PARAMETERS" => value
            .split(['\'', ' '])
            .filter_map(|part| part.split('=').next())
            .any(is_git_credential_key),
        _ if name.starts_with("GIT_CONFIG_KEY_") => is_git_credential_key(value),
        _ => false,
    };
    found.then_some(GIT_CREDENTIAL_SETTING)
}

/// Whether `name` belongs to git's environment config set (`git -c` through the
/// environment: `GIT_CONFIG_COUNT`, `GIT_CONFIG_KEY_<n>`, `GIT_CONFIG_VALUE_<n>`).
fn is_git_config_env(name: &str) -> bool {
    name == "GIT_CONFIG_COUNT"
        || name.starts_with("GIT_CONFIG_KEY_")
        || name.starts_with("GIT_CONFIG_VALUE_")
}

/// Why `value` is a credential by its form alone, if it is: a URL with a password, an HTTP
/// credential header (`GIT_CONFIG_VALUE_0=Authorization: Bearer …`, `GIT_CONFIG_PARAMETERS`),
/// a token of a published format (GitHub, GitLab, Slack, AWS key ids, OpenAI, Anthropic,
/// npm, PyPI, Hugging Face, Stripe, Google API keys, JWTs), or a PEM private key.
pub fn secret_in_value(value: &str) -> Option<&'static str> {
    if has_url_password(value) {
        return Some(URL_PASSWORD);
    }
    if has_credential_header(value) || has_password_option(value) {
        return Some(CREDENTIAL_HEADER);
    }
    if has_known_token(value) {
        return Some(KNOWN_TOKEN);
    }
    if value.contains("-----BEGIN")
        && (value.contains("PRIVATE KEY-----") || value.contains("PRIVATE KEY BLOCK-----"))
    {
        return Some(PRIVATE_KEY_VALUE);
    }
    None
}

/// Options that carry a password in a list of them (`JAVA_TOOL_OPTIONS=-Djavax.net.ssl.
/// keyStorePassword=…`, `GRADLE_OPTS`, `--password=…`), or a bare bearer token.
fn has_password_option(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let option = ["password=", "passwd=", "secret="].iter().any(|name| {
        lower.match_indices(name).any(|(i, _)| {
            lower[i + name.len()..]
                .chars()
                .next()
                .is_some_and(|c| !c.is_whitespace())
        })
    });
    let bearer = lower
        .strip_prefix("bearer ")
        .is_some_and(|t| t.trim().len() >= 16);
    option || bearer
}

/// Header names whose value is a credential, lower case, with the colon.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization:",
    "private-token:",
    "x-api-key:",
    "api-key:",
    "x-auth-token:",
    "cookie:",
];

fn has_credential_header(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    CREDENTIAL_HEADERS.iter().any(|header| {
        lower.match_indices(header).any(|(i, _)| {
            let after = &lower[i + header.len()..];
            !after.trim_start().is_empty()
        })
    })
}

/// Published token formats: a prefix (matched exactly, at the start of a word) and the
/// fewest token characters that must follow it (fewer than the real tokens carry, so a
/// shortened one still counts, more than ordinary words have).
const TOKEN_PREFIXES: &[(&str, usize)] = &[
    ("ghp_", 30),
    ("gho_", 30),
    ("ghu_", 30),
    ("ghs_", 30),
    ("ghr_", 30),
    ("github_pat_", 40),
    ("glpat-", 20),
    ("gldt-", 20),
    ("glptt-", 20),
    ("xoxb-", 20),
    ("xoxp-", 20),
    ("xoxa-", 20),
    ("xoxr-", 20),
    ("xoxs-", 20),
    ("AKIA", 16),
    ("ASIA", 16),
    ("sk-ant-", 32),
    ("sk-proj-", 32),
    ("sk-", 40),
    ("npm_", 30),
    ("pypi-AgEI", 40),
    ("hf_", 30),
    ("sk_live_", 20),
    ("rk_live_", 20),
    ("sk_test_", 20),
    ("rk_test_", 20),
    ("squ_", 30),
    ("sqp_", 30),
    ("sqa_", 30),
    ("AIza", 30),
];

fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn has_known_token(value: &str) -> bool {
    let bytes = value.as_bytes();
    (0..bytes.len()).any(|start| {
        // A token starts a word; one inside a path (`/data/hf_cache_…`) is a folder's name,
        // but one right after a URL's `//` is a credential (`https://ghp_…@github.com`).
        let after_scheme = start >= 2 && &bytes[start - 2..start] == b"//";
        let at_word = start == 0
            || after_scheme
            || !(is_token_char(bytes[start - 1]) || bytes[start - 1] == b'/');
        at_word && (token_at(&bytes[start..]) || jwt_at(&bytes[start..]))
    })
}

fn token_at(text: &[u8]) -> bool {
    TOKEN_PREFIXES.iter().any(|(prefix, tail)| {
        text.starts_with(prefix.as_bytes()) && {
            let rest = &text[prefix.len()..];
            rest.iter().take_while(|c| is_token_char(**c)).count() >= *tail
        }
    })
}

/// A JSON Web Token: `header.payload.signature` in base64url, header and payload JSON
/// objects (so both begin `eyJ`, the encoding of `{"`).
fn jwt_at(text: &[u8]) -> bool {
    let len = text
        .iter()
        .take_while(|c| is_token_char(**c) || **c == b'.')
        .count();
    let parts: Vec<&[u8]> = text[..len].split(|c| *c == b'.').collect();
    parts.len() == 3
        && parts[..2]
            .iter()
            .all(|p| p.starts_with(b"eyJ") && p.len() >= 10)
}

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
            // `https://<token>@github.com/…`: a user name no person has is a token.
            if userinfo.len() >= 20 && userinfo.bytes().all(is_token_char) {
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
    fn credentials_are_found_by_their_form() {
        let gh = format!("ghp_{}", "a1B2".repeat(9));
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig_part-01";
        for (value, reason) in [
            ("Authorization: Bearer abc123", CREDENTIAL_HEADER),
            (
                "'http.extraheader'='AUTHORIZATION: basic eDp5'",
                CREDENTIAL_HEADER,
            ),
            ("PRIVATE-TOKEN: glpat", CREDENTIAL_HEADER),
            ("Cookie: session=abc", CREDENTIAL_HEADER),
            ("X-Auth-Token: abc", CREDENTIAL_HEADER),
            (
                "-Djavax.net.ssl.keyStorePassword=hunter2 -Xmx1g",
                CREDENTIAL_HEADER,
            ),
            ("Bearer abcdefghijklmnop1234", CREDENTIAL_HEADER),
            (
                "https://0123456789abcdef0123456789@github.com/o/r",
                URL_PASSWORD,
            ),
            (
                "-----BEGIN PGP PRIVATE KEY BLOCK-----\nxyz",
                PRIVATE_KEY_VALUE,
            ),
            ("sk_test_51Habcdefghijklmnopqrstuv", KNOWN_TOKEN),
            ("squ_0123456789abcdef0123456789abcdef01234567", KNOWN_TOKEN),
            (gh.as_str(), KNOWN_TOKEN),
            ("token=AKIAIOSFODNN7EXAMPLE", KNOWN_TOKEN),
            ("xoxb-123456789012-1234567890123-abcdef", KNOWN_TOKEN),
            ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345", KNOWN_TOKEN),
            (jwt, KNOWN_TOKEN),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl",
                PRIVATE_KEY_VALUE,
            ),
            ("postgres://app:s3cret@db/prod", URL_PASSWORD),
        ] {
            assert_eq!(secret_in_value(value), Some(reason), "{value}");
        }
        for value in [
            "Authorization:",
            "ghp_short",
            "xghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "sk-learn",
            "AKIA",
            "/usr/lib/eyJ.eyJ",
            "eyJhbGciOiJIUzI1NiJ9.notjson_payload.x",
            "-----BEGIN CERTIFICATE-----",
            "/home/dev/.cargo/bin:/usr/bin",
            "en_US.UTF-8",
            "/data/hf_datasets_cache_shared_storage_volume_01",
            "https://git@github.com/o/r",
            "-Dfile.encoding=UTF-8 -Xmx2g",
        ] {
            assert_eq!(secret_in_value(value), None, "{value}");
        }
    }

    #[test]
    fn a_git_config_set_goes_whole_when_one_member_goes() {
        let set = |key: &str, value: &str| {
            vec![
                ("GIT_CONFIG_COUNT".to_string(), "2".to_string()),
                ("GIT_CONFIG_KEY_0".to_string(), key.to_string()),
                ("GIT_CONFIG_VALUE_0".to_string(), value.to_string()),
                ("GIT_CONFIG_KEY_1".to_string(), "core.pager".to_string()),
                ("GIT_CONFIG_VALUE_1".to_string(), "less".to_string()),
                ("GIT_AUTHOR_NAME".to_string(), "dev".to_string()),
            ]
        };
        let names = |v: Vec<(String, String)>| v.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        // A credential in a value takes the set with it.
        let (kept, removed) = scrub_env(
            set("http.userAgent", "Authorization: Bearer x"),
            &[],
            &[],
            String::clone,
        );
        assert_eq!(names(kept), ["GIT_AUTHOR_NAME"]);
        assert_eq!(removed.len(), 5);
        assert_eq!(
            removed[0],
            ("GIT_CONFIG_VALUE_0".into(), CREDENTIAL_HEADER.into())
        );
        assert!(removed[1..].iter().all(|(_, why)| why == GIT_CONFIG_SET));
        // So does a setting that carries credentials, whatever its value looks like.
        for key in [
            "http.extraHeader",
            "http.https://example.com/.extraheader",
            "credential.helper",
            "credential.https://example.com.helper",
            "http.cookieFile",
        ] {
            let (kept, removed) = scrub_env(
                set(key, "!f() { echo password=x; }; f"),
                &[],
                &[],
                String::clone,
            );
            assert_eq!(names(kept), ["GIT_AUTHOR_NAME"], "{key}");
            assert_eq!(
                removed[0],
                ("GIT_CONFIG_KEY_0".into(), GIT_CREDENTIAL_SETTING.into())
            );
        }
        let (kept, removed) = scrub_env(set("http.userAgent", "curl"), &[], &[], String::clone);
        assert_eq!(
            (kept.len(), removed.len()),
            (6, 0),
            "an innocent set stays whole"
        );
        let params = vec![(
            "GIT_CONFIG_PARAMETERS".to_string(),
            "'core.pager'='less' 'credential.helper'='!echo password=x'".to_string(),
        )];
        let (kept, _) = scrub_env(params, &[], &[], String::clone);
        assert!(kept.is_empty(), "git -c's list with a helper goes");
        let params = vec![(
            "GIT_CONFIG_PARAMETERS".to_string(),
            "'core.pager'='less'".to_string(),
        )];
        assert_eq!(scrub_env(params, &[], &[], String::clone).0.len(), 1);
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
