//! Which of DESIGN.md's guarantees a plan enforces, and by what.

/// What holds for one guarantee area of DESIGN.md on this plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guarantee {
    pub area: &'static str,
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Enforced, by what.
    Enforced(&'static str),
    /// Not enforced in this mode, and why: cordon refuses to run unless the user named a
    /// weaker mode (`allow_weaker`).
    NotEnforced(String),
    /// A Linux mechanism with no Windows counterpart; documented in docs/windows.md.
    NoEquivalent(&'static str),
}

pub(super) fn enforced(area: &'static str, by: &'static str) -> Guarantee {
    Guarantee {
        area,
        status: Status::Enforced(by),
    }
}

pub(super) fn not_enforced(area: &'static str, why: &str) -> Guarantee {
    Guarantee {
        area,
        status: Status::NotEnforced(why.to_string()),
    }
}
