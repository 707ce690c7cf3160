//! "Allow always": an answer written into the user's own policy file, never a workspace's.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cordon_policy::{Layer, LayerSource, Pattern};
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

use crate::request::Kind;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("no user configuration file is known, so nothing can be allowed always")]
    NoUserConfig,
    #[error("{0} is inside a directory the sandbox can write; approvals go only to the user's own configuration")]
    InsideWritable(PathBuf),
    #[error("{kind} requests cannot be allowed always")]
    NotPersistable { kind: &'static str },
    #[error("the words to allow are not a valid prefix: {0}")]
    BadScope(String),
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not TOML cordon can edit: {message}")]
    Unparsable { path: PathBuf, message: String },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where "allow always" may write, and what it must stay out of.
#[derive(Debug, Clone, Default)]
pub struct Persist {
    /// `~/.config/cordon/config.toml` (the caller resolves XDG).
    pub user_config: Option<PathBuf>,
    /// Every directory the sandbox can write (the workspace first): the file must be outside
    /// all of them, or the agent could have planted or could edit its own approvals.
    pub writable_roots: Vec<PathBuf>,
}

impl Persist {
    /// Appends the answer to the user's file and returns its path. The file is re-parsed as a
    /// policy layer before it replaces the old one, so a write never leaves it unloadable.
    pub fn write(&self, kind: Kind, scope: &[String], note: &str) -> Result<PathBuf, PersistError> {
        let path = self.user_config.clone().ok_or(PersistError::NoUserConfig)?;
        if self.is_inside_writable(&path) {
            return Err(PersistError::InsideWritable(path));
        }
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(PersistError::Read { path, source }),
        };
        let mut doc: DocumentMut =
            text.parse()
                .map_err(|e: toml_edit::TomlError| PersistError::Unparsable {
                    path: path.clone(),
                    message: e.message().to_string(),
                })?;
        let unparsable = |message: &str| PersistError::Unparsable {
            path: path.clone(),
            message: message.to_string(),
        };
        match kind {
            Kind::Command => {
                Pattern::literal(scope).map_err(PersistError::BadScope)?;
                let commands = table(doc.as_table_mut(), "commands")
                    .ok_or_else(|| unparsable("`commands` is not a table"))?;
                let approved = commands
                    .entry("approved")
                    .or_insert(Item::ArrayOfTables(ArrayOfTables::new()))
                    .as_array_of_tables_mut()
                    .ok_or_else(|| unparsable("`commands.approved` is not an array of tables"))?;
                let mut entry = Table::new();
                entry.insert("prefix", value(scope.iter().collect::<Array>()));
                entry.insert("note", value(note));
                approved.push(entry);
            }
            Kind::Network => {
                let host = match scope {
                    [host] => host,
                    _ => return Err(PersistError::BadScope(scope.join(" "))),
                };
                let network = table(doc.as_table_mut(), "network")
                    .ok_or_else(|| unparsable("`network` is not a table"))?;
                let allow = network
                    .entry("allow")
                    .or_insert(value(Array::new()))
                    .as_array_mut()
                    .ok_or_else(|| unparsable("`network.allow` is not an array"))?;
                if !allow.iter().any(|v| v.as_str() == Some(host)) {
                    allow.push(host.as_str());
                }
            }
            Kind::Request => {
                return Err(PersistError::NotPersistable {
                    kind: kind.as_str(),
                })
            }
        }
        let new_text = doc.to_string();
        Layer::parse(LayerSource::User(path.clone()), &path, &new_text).map_err(|d| {
            let lines: Vec<String> = d.iter().map(|d| d.to_string()).collect();
            PersistError::Unparsable {
                path: path.clone(),
                message: lines.join("; "),
            }
        })?;
        write_atomically(&path, new_text.as_bytes()).map_err(|source| PersistError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    fn is_inside_writable(&self, path: &Path) -> bool {
        // Compare lexically and through the real directories, so neither `..` nor a link in
        // a writable root can smuggle the file back in.
        let (lexical, resolved) = (normalise(path), real(path));
        self.writable_roots.iter().any(|root| {
            let (root_lexical, root_real) = (normalise(root), real(root));
            [&lexical, &resolved]
                .iter()
                .any(|p| p.starts_with(&root_lexical) || p.starts_with(&root_real))
        })
    }
}

/// `path` with `.` and `..` resolved by text alone.
fn normalise(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `path` through the real location of its nearest existing ancestor.
fn real(path: &Path) -> PathBuf {
    let path = normalise(path);
    let mut base = path.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = fs::canonicalize(base) {
            let mut out = canonical;
            out.extend(rest.iter().rev());
            return out;
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                base = parent;
            }
            _ => return path,
        }
    }
}

/// The table at `key`, made when absent (as an implicit header, so the file stays tidy).
fn table<'a>(root: &'a mut Table, key: &str) -> Option<&'a mut Table> {
    root.entry(key)
        .or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        })
        .as_table_mut()
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::private::create_dir(dir)?;
    let tmp = dir.join(format!(
        ".{}.cordon-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    {
        use std::io::Write;
        let mut f = crate::private::create_file(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_policy::{CommandRules, Decision};

    fn tmp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("cordon-persist-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn always_answers_prompts_from_the_user_file_and_keeps_what_was_there() {
        let dir = tmp("ok");
        let cfg = dir.join("config/cordon/config.toml");
        fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        fs::write(
            &cfg,
            "# mine\n[commands]\ndefault = \"prompt\"\n\n[network]\nmode = \"allow\"\n",
        )
        .unwrap();
        let p = Persist {
            user_config: Some(cfg.clone()),
            writable_roots: vec![dir.join("ws")],
        };
        assert_eq!(
            p.write(Kind::Command, &words("git push"), "console")
                .unwrap(),
            cfg
        );
        p.write(Kind::Network, &words("pypi.org"), "console")
            .unwrap();
        p.write(Kind::Network, &words("pypi.org"), "console")
            .unwrap();
        let text = fs::read_to_string(&cfg).unwrap();
        assert!(text.starts_with("# mine\n"), "{text}");
        let layer = Layer::parse(LayerSource::User(cfg.clone()), &cfg, &text).unwrap();
        assert_eq!(layer.net_allow.len(), 1, "{text}");
        let rules = CommandRules::from_layers(&[layer]);
        assert_eq!(
            rules.decide(&words("git push origin")).decision,
            Decision::Allow
        );
        assert_eq!(rules.decide(&words("git fetch")).decision, Decision::Prompt);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn never_writes_inside_a_writable_root() {
        let dir = tmp("ws");
        let ws = dir.join("ws");
        fs::create_dir_all(&ws).unwrap();
        #[allow(unused_mut)] // no symbolic link under Wine
        let mut configs = vec![ws.join(".cordon.toml"), dir.join("other/../ws/x.toml")];
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&ws, dir.join("link")).unwrap();
            configs.push(dir.join("link/.cordon.toml"));
        }
        for cfg in configs {
            let p = Persist {
                user_config: Some(cfg.clone()),
                writable_roots: vec![ws.clone()],
            };
            let err = p.write(Kind::Command, &words("make"), "x").unwrap_err();
            assert!(
                matches!(err, PersistError::InsideWritable(_)),
                "{cfg:?}: {err}"
            );
        }
        assert_eq!(fs::read_dir(&ws).unwrap().count(), 0, "nothing was written");
        let none = Persist::default();
        assert!(matches!(
            none.write(Kind::Command, &words("make"), "x"),
            Err(PersistError::NoUserConfig)
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_files_it_cannot_edit_and_leaves_them_alone() {
        let dir = tmp("bad");
        let cfg = dir.join("config.toml");
        fs::write(&cfg, "commands = 3\n").unwrap();
        let p = Persist {
            user_config: Some(cfg.clone()),
            writable_roots: vec![],
        };
        assert!(p.write(Kind::Command, &words("make"), "x").is_err());
        assert_eq!(fs::read_to_string(&cfg).unwrap(), "commands = 3\n");
        assert!(p.write(Kind::Request, &words("x"), "x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
