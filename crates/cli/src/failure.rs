//! cordon's own failures and the exit status each maps to.

/// Exit status when cordon itself could not set up or enforce the policy.
pub const EXIT_SETUP: i32 = 125;

/// A failure to report on stderr (prefixed `cordon:`) with its exit status.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    pub fn setup(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_SETUP,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }
}
