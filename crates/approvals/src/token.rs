//! Random tokens and their comparison.

use std::io;

/// 32 random bytes from the kernel, as 64 hex digits.
pub fn random() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(cordon_policy::hex(&bytes))
}

/// Compares in time that depends only on the lengths, so a peer cannot learn a token a
/// character at a time from how long a refusal takes.
pub fn equal(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_compared_whole() {
        let (a, b) = (random().unwrap(), random().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(equal(&a, &a.clone()));
        assert!(!equal(&a, &b));
        assert!(!equal(&a[..63], &a));
        assert!(!equal("", &a));
    }
}
