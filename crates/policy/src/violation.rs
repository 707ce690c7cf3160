//! Violation classes: which refusals may end the whole sandbox (`terminate_on_violation`).

/// A class of refusal cordon sees as it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationClass {
    /// A syscall the filter refused (bpf, io_uring, a new user namespace, TIOCSTI, …).
    Syscall,
    /// A request the egress proxy refused (a destination off the allow-list, a smuggling
    /// attempt, a local address).
    Network,
}

impl ViolationClass {
    pub const ALL: [ViolationClass; 2] = [ViolationClass::Syscall, ViolationClass::Network];

    /// What `--kill-on-violation` and `terminate_on_violation` accept.
    pub const SYNTAX: &'static str = "\"syscall\", \"network\" or \"all\"";

    /// Parses one name; `all` stands for every class.
    pub fn parse(text: &str) -> Result<Vec<ViolationClass>, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "syscall" | "syscalls" => Ok(vec![ViolationClass::Syscall]),
            "network" | "net" => Ok(vec![ViolationClass::Network]),
            "all" => Ok(ViolationClass::ALL.to_vec()),
            other => Err(format!("unknown violation class `{other}`")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ViolationClass::Syscall => "syscall",
            ViolationClass::Network => "network",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_all_expands() {
        assert_eq!(
            ViolationClass::parse("Syscall"),
            Ok(vec![ViolationClass::Syscall])
        );
        assert_eq!(
            ViolationClass::parse("all"),
            Ok(ViolationClass::ALL.to_vec())
        );
        assert!(ViolationClass::parse("filesystem").is_err());
    }
}
