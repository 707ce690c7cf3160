//! Transaction names: checked so a name is always one directory below the store, and generated
//! when the user gives none.

use std::time::SystemTime;

use crate::error::{Error, Result};

/// Longest accepted name; well under NAME_MAX with room for the `.cordon-tx-NAME` suffix that
/// conflict copies get.
pub const MAX_NAME_LEN: usize = 64;

/// Checks a user-given name: 1–64 of `[A-Za-z0-9._-]`, not starting with `.` or `-` (so it is
/// never `.`, `..`, a hidden file or an option).
pub fn validate(name: &str) -> Result<()> {
    let bad = |why| {
        Err(Error::InvalidName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 64 characters");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return bad("starts with `.` or `-`");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("only letters, digits, `.`, `_` and `-` are allowed");
    }
    Ok(())
}

/// `tx-YYYYMMDD-HHMMSS-PID`: sortable by time, unique per process and second.
pub fn generate() -> String {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    let (date, time) = digits.split_at(digits.len().min(8));
    format!("tx-{date}-{time}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_plain_component() {
        for bad in [
            "", ".", "..", "a/b", "../x", ".hidden", "-rf", "a b", "é", "a\0b",
        ] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate(&"x".repeat(65)).is_err());
        for good in ["fix-bug", "task_1.2", "A", &"x".repeat(64)] {
            assert!(validate(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn generated_names_are_valid() {
        let name = generate();
        validate(&name).expect("generated name is valid");
        assert!(name.starts_with("tx-20"), "{name}");
    }
}
