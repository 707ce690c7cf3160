//! What CreateProcess is handed: the command line, the environment block, the program found
//! on PATH. Pure, so the quoting rules are tested on every platform.

/// Quotes argv into one command line that `CommandLineToArgvW` (and the MSVC and mingw C
/// runtimes) split back into the same arguments.
///
/// The program name is parsed by different rules (no backslash escapes), so it is refused if
/// it holds a `"`. Batch files are refused by the caller: cmd.exe re-parses their arguments
/// with its own rules, which no quoting can make safe.
pub fn command_line(argv: &[String]) -> Result<String, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("no command".into());
    };
    if program.contains('"') || program.is_empty() {
        return Err(format!("program name `{program}` cannot be quoted"));
    }
    let mut line = format!("\"{program}\"");
    for a in args {
        line.push(' ');
        quote_into(&mut line, a);
    }
    Ok(line)
}

fn quote_into(out: &mut String, arg: &str) {
    if !arg.is_empty() && !arg.contains([' ', '\t', '\n', '\u{b}', '"']) {
        out.push_str(arg);
        return;
    }
    out.push('"');
    let mut backslashes = 0;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                // Each backslash before a quote is doubled, and the quote escaped.
                out.extend(std::iter::repeat_n('\\', backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
            }
            _ => {
                out.extend(std::iter::repeat_n('\\', backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    // Backslashes before the closing quote are doubled so it stays a closing quote.
    out.extend(std::iter::repeat_n('\\', backslashes * 2));
    out.push('"');
}

/// The UTF-16 environment block for CREATE_UNICODE_ENVIRONMENT: `NAME=value\0` per variable,
/// sorted by name ignoring case (as Windows expects), ending in an extra `\0`. Names that
/// hold `=` or are empty are refused.
pub fn env_block(vars: &[(String, String)]) -> Result<Vec<u16>, String> {
    let mut sorted: Vec<&(String, String)> = vars.iter().collect();
    sorted.sort_by_key(|(k, _)| k.to_uppercase());
    let mut out = Vec::new();
    for (k, v) in sorted {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            return Err(format!("environment variable `{k}` cannot be passed"));
        }
        out.extend(format!("{k}={v}").encode_utf16());
        out.push(0);
    }
    if out.is_empty() {
        out.push(0);
    }
    out.push(0);
    Ok(out)
}

/// Finds `program` the way cordon wants it found: a path is taken as given; a bare name is
/// looked up in each PATH folder with each PATHEXT extension, *not* in the current folder
/// first as CreateProcess would (the workspace is the agent's to fill with `git.exe`).
pub fn search_path(
    program: &str,
    path_var: &str,
    pathext: &str,
    exists: impl Fn(&str) -> bool,
) -> Option<String> {
    if program.contains(['\\', '/']) || program.get(1..2) == Some(":") {
        return exists(program).then(|| program.to_string());
    }
    let has_ext = program.rsplit_once('.').is_some_and(|(_, e)| !e.is_empty());
    let exts: Vec<&str> = pathext.split(';').filter(|e| !e.is_empty()).collect();
    for dir in path_dirs(path_var) {
        if has_ext {
            let c = format!("{dir}\\{program}");
            if exists(&c) {
                return Some(c);
            }
        }
        for ext in &exts {
            let c = format!("{dir}\\{program}{ext}");
            if exists(&c) {
                return Some(c);
            }
        }
    }
    None
}

/// The folders a PATH value names, in order: quotes and trailing separators dropped, empty
/// entries skipped.
pub fn path_dirs(path_var: &str) -> impl Iterator<Item = &str> {
    path_var
        .split(';')
        .map(|d| d.trim_matches('"').trim_end_matches(['\\', '/']))
        .filter(|d| !d.is_empty())
}

/// Whether CreateProcess would hand this program to cmd.exe.
pub fn is_batch(program: &str) -> bool {
    let lower = program.to_ascii_lowercase();
    lower.ends_with(".bat") || lower.ends_with(".cmd")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> String {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        command_line(&v).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn quoting_follows_commandlinetoargvw() {
        let table: &[(&[&str], &str)] = &[
            (&["git", "status"], r#""git" status"#),
            (
                &[r"C:\Program Files\Git\git.exe", "commit", "-m", "two words"],
                r#""C:\Program Files\Git\git.exe" commit -m "two words""#,
            ),
            (&["p", ""], r#""p" """#),
            (&["p", r#"say "hi""#], r#""p" "say \"hi\"""#),
            (&["p", r"C:\dir\"], r#""p" C:\dir\"#),
            (&["p", r"C:\my dir\"], r#""p" "C:\my dir\\""#),
            (&["p", r#"a\"b"#], r#""p" "a\\\"b""#),
            (&["p", r"a\\b"], r#""p" a\\b"#),
        ];
        for (args, want) in table {
            assert_eq!(line(args), *want, "{args:?}");
        }
        assert!(command_line(&[]).is_err());
        assert!(command_line(&["a\"b".into()]).is_err());
    }

    #[test]
    fn env_block_is_sorted_and_double_terminated() {
        let vars = vec![
            ("b".to_string(), "2".to_string()),
            ("A".to_string(), "1".to_string()),
        ];
        let block = env_block(&vars).unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf16_lossy(&block);
        assert_eq!(text, "A=1\0b=2\0\0");
        assert_eq!(env_block(&[]).map(|b| b.len()), Ok(2));
        assert!(env_block(&[("A=B".into(), "x".into())]).is_err());
    }

    #[test]
    fn path_search_skips_the_current_folder_and_tries_pathext() {
        let have = [r"C:\Git\cmd\git.EXE", r"C:\tools\node.cmd"];
        let exists = |p: &str| have.iter().any(|h| h.eq_ignore_ascii_case(p));
        let path = r"C:\tools;C:\Git\cmd\;";
        let ext = ".COM;.EXE;.BAT;.CMD";
        assert_eq!(
            search_path("git", path, ext, exists),
            Some(r"C:\Git\cmd\git.EXE".into())
        );
        assert_eq!(
            search_path("node", path, ext, exists),
            Some(r"C:\tools\node.CMD".into())
        );
        assert_eq!(
            search_path("git.exe", path, ext, exists),
            Some(r"C:\Git\cmd\git.exe".into())
        );
        assert_eq!(search_path("missing", path, ext, exists), None);
        assert_eq!(search_path(r".\git", path, ext, exists), None);
        assert!(is_batch(r"C:\tools\node.CMD"));
    }
}
