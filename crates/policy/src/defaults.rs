//! The built-in policy: what holds with no configuration at all.

use crate::layer::{Layer, LayerSource};
use crate::path::PathSpec;

/// Secret stores under the caller's home that the sandbox cannot read.
pub const DEFAULT_DENY_READ_HOME: &[&str] = &[
    // keys and agents
    ".ssh",
    ".gnupg",
    ".password-store",
    ".local/share/keyrings",
    ".pki",
    // cloud and cluster credentials
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker",
    ".oci",
    ".terraform.d/credentials.tfrc.json",
    ".vault-token",
    // code hosts and package registries
    ".netrc",
    ".git-credentials",
    ".config/git/credentials",
    ".config/gh",
    ".config/glab-cli",
    ".config/hub",
    ".npmrc",
    ".yarnrc.yml",
    ".pypirc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".gem/credentials",
    ".m2/settings-security.xml",
    ".gradle/gradle.properties",
    ".config/op",
    // browser profiles
    ".mozilla",
    ".thunderbird",
    ".config/google-chrome",
    ".config/chromium",
    ".config/BraveSoftware",
    ".config/microsoft-edge",
    ".config/vivaldi",
    ".config/opera",
    "snap/firefox",
    "snap/chromium",
    ".var/app/org.mozilla.firefox",
    ".var/app/com.google.Chrome",
    // cordon's own state (approvals, audit log) and configuration
    ".local/state/cordon",
];

/// Paths inside the workspace that run code later or steer cordon: read-only in the sandbox,
/// and uncreatable when absent. `commondir` and `config.worktree` are here because Git reads
/// hooks and configuration through them: a planted `commondir` would move both elsewhere.
/// `HEAD` at the workspace's top is here because with it (and `objects/`, `refs/`) the
/// workspace itself is a bare repository to Git whenever `.git` is broken, and its `config`
/// (fsmonitor, hooksPath) would run for every git command there.
pub const DEFAULT_PROTECTED: &[&str] = &[
    ".git/hooks",
    ".git/config",
    ".git/info",
    ".git/commondir",
    ".git/config.worktree",
    ".cordon.toml",
    "HEAD",
];

/// Private, empty, writable directories every sandbox gets; they vanish with it.
pub const DEFAULT_WRITABLE_TMP: &[&str] = &["/tmp", "/var/tmp", "/dev/shm"];

/// Environment variable name patterns (`*` matches any run of characters, case-insensitive)
/// that are removed before the command starts.
pub const DEFAULT_ENV_DENY: &[&str] = &[
    "*_TOKEN",
    "*_TOKEN_*",
    "TOKEN",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*_PASS",
    "*PASSPHRASE*",
    "*AUTHTOKEN*",
    "*APIKEY*",
    "*ACCESSTOKEN*",
    "*APITOKEN*",
    "*_PAT",
    "*_PWD",
    "*_PW",
    "*_PSW",
    "*_CREDS",
    "*_COOKIE",
    "*_JWT",
    "*_JWT_*",
    "*_DSN",
    "*WEBHOOK*",
    "OP_SESSION_*",
    "BW_SESSION",
    "*CONNECTION_STRING*",
    "CONNECTIONSTRINGS__*",
    "*_KEY",
    "*_KEY_ID",
    "*API_KEY*",
    "*PRIVATE_KEY*",
    "*CREDENTIAL*",
    "*_AUTH",
    "*_AUTH_*",
    "AWS_*",
    "AZURE_*",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "DATABASE_URL",
    "*_DATABASE_URL",
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GPG_AGENT_INFO",
    "DBUS_SESSION_BUS_ADDRESS",
    "DOCKER_HOST",
    "KUBECONFIG",
    "VAULT_*",
];

/// The built-in layer, lowest of all.
pub fn builtin() -> Layer {
    let mut layer = Layer::empty(LayerSource::Builtin);
    layer.deny_read = DEFAULT_DENY_READ_HOME
        .iter()
        .map(|p| PathSpec::Home(p.into()))
        .collect();
    layer.protect = DEFAULT_PROTECTED.iter().map(|p| p.into()).collect();
    layer.env_deny = DEFAULT_ENV_DENY.iter().map(|p| p.to_string()).collect();
    layer
}
