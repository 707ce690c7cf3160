//! ACL edits as data: access masks, inheritance, and whether an edit is already in place.
//!
//! The constants are winnt.h's values, written out so the planner builds on every platform;
//! the executor's tests check them against `windows-sys`.

use crate::sid::Sid;
use crate::winpath::WinPath;

pub const FILE_READ_DATA: u32 = 0x0001;
pub const FILE_WRITE_DATA: u32 = 0x0002;
pub const FILE_APPEND_DATA: u32 = 0x0004;
pub const FILE_READ_EA: u32 = 0x0008;
pub const FILE_WRITE_EA: u32 = 0x0010;
pub const FILE_EXECUTE: u32 = 0x0020;
pub const FILE_DELETE_CHILD: u32 = 0x0040;
pub const FILE_READ_ATTRIBUTES: u32 = 0x0080;
pub const FILE_WRITE_ATTRIBUTES: u32 = 0x0100;
pub const DELETE: u32 = 0x0001_0000;
pub const READ_CONTROL: u32 = 0x0002_0000;
pub const WRITE_DAC: u32 = 0x0004_0000;
pub const WRITE_OWNER: u32 = 0x0008_0000;
pub const SYNCHRONIZE: u32 = 0x0010_0000;
pub const GENERIC_ALL: u32 = 0x1000_0000;
pub const GENERIC_EXECUTE: u32 = 0x2000_0000;
pub const GENERIC_WRITE: u32 = 0x4000_0000;
pub const GENERIC_READ: u32 = 0x8000_0000;

pub const FILE_GENERIC_READ: u32 =
    READ_CONTROL | FILE_READ_DATA | FILE_READ_ATTRIBUTES | FILE_READ_EA | SYNCHRONIZE;
pub const FILE_GENERIC_WRITE: u32 = READ_CONTROL
    | FILE_WRITE_DATA
    | FILE_WRITE_ATTRIBUTES
    | FILE_WRITE_EA
    | FILE_APPEND_DATA
    | SYNCHRONIZE;
pub const FILE_GENERIC_EXECUTE: u32 =
    READ_CONTROL | FILE_READ_ATTRIBUTES | FILE_EXECUTE | SYNCHRONIZE;
pub const FILE_ALL_ACCESS: u32 = 0x001F_01FF;

/// What the sandbox-write SID gets on a writable root. No FILE_DELETE_CHILD: on NTFS that
/// right on a directory deletes or renames any child *whatever the child's own ACL says*,
/// which would undo every deny ACE below (`.git` could be renamed away). Deleting a file
/// needs only DELETE on the file itself, which this grant passes down.
pub const WRITE_GRANT: u32 = FILE_GENERIC_READ | FILE_GENERIC_WRITE | FILE_GENERIC_EXECUTE | DELETE;

/// What the sandbox-write SID is refused on a protected path: every way to change content,
/// attributes, the name (DELETE covers rename), the children, or the ACL itself.
pub const DENY_WRITE: u32 = FILE_WRITE_DATA
    | FILE_APPEND_DATA
    | FILE_WRITE_EA
    | FILE_WRITE_ATTRIBUTES
    | DELETE
    | FILE_DELETE_CHILD
    | WRITE_DAC
    | WRITE_OWNER;

/// What the sandbox users group is refused on a secret path (elevated mode only).
pub const DENY_READ: u32 = FILE_READ_DATA | FILE_READ_EA | FILE_EXECUTE | FILE_READ_ATTRIBUTES;

/// What the sandbox users group gets where it must read (the workspace, in elevated mode,
/// whose files a different account could not otherwise open).
pub const READ_GRANT: u32 = FILE_GENERIC_READ | FILE_GENERIC_EXECUTE;

/// ACE header flags (winnt.h).
pub const OBJECT_INHERIT_ACE: u8 = 0x01;
pub const CONTAINER_INHERIT_ACE: u8 = 0x02;
pub const INHERIT_ONLY_ACE: u8 = 0x08;
pub const INHERITED_ACE: u8 = 0x10;

/// Maps GENERIC_* bits to the file rights they stand for (MapGenericMask with the file
/// object's mapping), so an ACE written as `GENERIC_ALL` is seen to cover the grant.
pub fn map_generic(mask: u32) -> u32 {
    let mut out = mask & !(GENERIC_ALL | GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE);
    if mask & GENERIC_READ != 0 {
        out |= FILE_GENERIC_READ;
    }
    if mask & GENERIC_WRITE != 0 {
        out |= FILE_GENERIC_WRITE;
    }
    if mask & GENERIC_EXECUTE != 0 {
        out |= FILE_GENERIC_EXECUTE;
    }
    if mask & GENERIC_ALL != 0 {
        out |= FILE_ALL_ACCESS;
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AceKind {
    Allow,
    Deny,
}

impl AceKind {
    /// Its name in the audit log.
    pub fn key(self) -> &'static str {
        match self {
            AceKind::Allow => "allow",
            AceKind::Deny => "deny",
        }
    }
}

/// How an ACE passes down: to files below (object), to directories below (container).
/// `(false, false)` is "this object only" (a file, or the `.git` directory itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Inherit {
    pub objects: bool,
    pub containers: bool,
}

impl Inherit {
    pub const TREE: Inherit = Inherit {
        objects: true,
        containers: true,
    };
    pub const THIS_ONLY: Inherit = Inherit {
        objects: false,
        containers: false,
    };

    /// The inheritance an ACE's header flags give.
    pub fn from_flags(flags: u8) -> Inherit {
        Inherit {
            objects: flags & OBJECT_INHERIT_ACE != 0,
            containers: flags & CONTAINER_INHERIT_ACE != 0,
        }
    }

    /// Its name in the audit log: where the ACE passes down.
    pub fn key(self) -> &'static str {
        match (self.objects, self.containers) {
            (true, true) => "tree",
            (true, false) => "files",
            (false, true) => "folders",
            (false, false) => "this_only",
        }
    }

    /// The ACE flags for this inheritance.
    pub fn flags(self) -> u8 {
        (if self.objects { OBJECT_INHERIT_ACE } else { 0 })
            | (if self.containers {
                CONTAINER_INHERIT_ACE
            } else {
                0
            })
    }
}

/// One ACE as read from a file's DACL (what the executor reports back to the planner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    pub kind: AceKind,
    pub sid: Sid,
    pub mask: u32,
    pub flags: u8,
}

/// Why the plan touches a path; carried into messages and the dry-run listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// A writable root (the workspace, an `--allow-write` path, Git's real directories of a
    /// linked worktree, the run's temporary folder).
    Writable,
    /// A writable root itself cannot be deleted or renamed from inside.
    PinRoot,
    /// One of DESIGN.md's protected paths.
    Protected,
    /// `.git` itself: its contents stay writable, but it cannot be removed or swapped.
    PinGitDir,
    /// A folder Everyone may write, found by the audit.
    EveryoneWritable,
    /// A deny-read path (elevated mode).
    Secret,
    /// The sandbox account must read and write where it works (elevated mode): its own
    /// access check needs a grant as well as the write SID's.
    AccountWorkspace,
    /// cordon.exe itself, which the sandbox account starts as cordon's copy (elevated
    /// mode): read and execute on the file only.
    AccountProgram,
    /// A program folder in the developer's profile, readable to the sandbox group (elevated
    /// mode; see `plan::tools`).
    AccountTools,
}

impl Reason {
    /// Its name in the audit log.
    pub fn key(self) -> &'static str {
        match self {
            Reason::Writable => "writable",
            Reason::PinRoot => "pin_root",
            Reason::Protected => "protected",
            Reason::PinGitDir => "pin_git_dir",
            Reason::EveryoneWritable => "everyone_writable",
            Reason::Secret => "secret",
            Reason::AccountWorkspace => "account_workspace",
            Reason::AccountProgram => "account_program",
            Reason::AccountTools => "account_tools",
        }
    }
}

/// One ACE the plan wants on one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEdit {
    pub path: WinPath,
    pub kind: AceKind,
    pub sid: Sid,
    pub mask: u32,
    pub inherit: Inherit,
    pub reason: Reason,
}

impl AclEdit {
    /// Whether `existing` (a path's DACL) already holds this edit: an explicit (not
    /// inherited, not inherit-only) ACE of the same kind, trustee and inheritance whose
    /// rights include the wanted ones. An inherited ACE does not count: it vanishes when the
    /// parent's changes, and the parent is not ours to keep.
    pub fn is_present(&self, existing: &[Ace]) -> bool {
        existing.iter().any(|ace| {
            ace.kind == self.kind
                && ace.sid == self.sid
                && ace.flags & (INHERITED_ACE | INHERIT_ONLY_ACE) == 0
                && ace.flags & (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE) == self.inherit.flags()
                && map_generic(ace.mask) & self.mask == self.mask
        })
    }
}

/// Whether a folder's DACL lets the sandbox create files in it through the Everyone SID,
/// which a write-restricted token carries among its restricting SIDs (as the reference design
/// does). Grants to Users or Authenticated Users do not count: they are not restricting SIDs,
/// so the token's second access check ignores them. `None` is a NULL DACL: everyone may do
/// anything. Deny ACEs are ignored, which can only over-report.
pub fn admits_everyone_write(dacl: Option<&[Ace]>) -> bool {
    let Some(aces) = dacl else {
        return true;
    };
    let everyone = Sid::everyone();
    aces.iter().any(|a| {
        a.kind == AceKind::Allow
            && a.sid == everyone
            && a.flags & INHERIT_ONLY_ACE == 0
            && map_generic(a.mask) & (FILE_WRITE_DATA | FILE_APPEND_DATA) != 0
    })
}

/// What the executor does with one edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Already in the DACL: nothing is written (the common case from the second run on).
    Skip,
    /// Added with SetEntriesInAclW + SetNamedSecurityInfoW. On a directory with an
    /// inheritable ACE this propagates through the tree once; never per command.
    Apply,
}

/// An ACE of ours to remove: on a path the plan no longer manages, or one whose wanted
/// ACE changed (e.g. `.git` was a placeholder and is now a repository).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoke {
    pub path: WinPath,
    pub sid: Sid,
    pub ace: Ace,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid() -> Sid {
        Sid::new(5, &[21, 1, 2, 3, 1001])
    }

    fn edit() -> AclEdit {
        AclEdit {
            path: WinPath::parse(r"C:\ws").unwrap_or_else(|e| panic!("{e}")),
            kind: AceKind::Allow,
            sid: sid(),
            mask: WRITE_GRANT,
            inherit: Inherit::TREE,
            reason: Reason::Writable,
        }
    }

    fn ace(kind: AceKind, mask: u32, flags: u8) -> Ace {
        Ace {
            kind,
            sid: sid(),
            mask,
            flags,
        }
    }

    #[test]
    fn audit_names_of_kinds_and_inheritance() {
        assert_eq!(AceKind::Deny.key(), "deny");
        assert_eq!(Inherit::TREE.key(), "tree");
        assert_eq!(Inherit::THIS_ONLY.key(), "this_only");
        for inherit in [
            Inherit::TREE,
            Inherit::THIS_ONLY,
            Inherit {
                objects: true,
                containers: false,
            },
            Inherit {
                objects: false,
                containers: true,
            },
        ] {
            // An ACE read back (inherited or not) names the inheritance it was written with.
            assert_eq!(
                Inherit::from_flags(inherit.flags() | INHERITED_ACE),
                inherit
            );
        }
        assert_eq!(Inherit::from_flags(OBJECT_INHERIT_ACE).key(), "files");
        assert_eq!(Reason::PinGitDir.key(), "pin_git_dir");
    }

    #[test]
    fn presence_needs_an_explicit_ace_that_covers_the_mask() {
        let e = edit();
        let tree = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE;
        let table: &[(&[Ace], bool, &str)] = &[
            (&[], false, "empty DACL"),
            (&[ace(AceKind::Allow, WRITE_GRANT, tree)], true, "exact"),
            (
                &[ace(AceKind::Allow, GENERIC_ALL, tree)],
                true,
                "generic all covers",
            ),
            (
                &[ace(AceKind::Allow, FILE_ALL_ACCESS, tree)],
                true,
                "superset",
            ),
            (
                &[ace(AceKind::Allow, FILE_GENERIC_READ, tree)],
                false,
                "too little",
            ),
            (
                &[ace(AceKind::Allow, WRITE_GRANT, tree | INHERITED_ACE)],
                false,
                "inherited",
            ),
            (
                &[ace(AceKind::Allow, WRITE_GRANT, tree | INHERIT_ONLY_ACE)],
                false,
                "inherit-only",
            ),
            (
                &[ace(AceKind::Allow, WRITE_GRANT, 0)],
                false,
                "no inheritance",
            ),
            (
                &[ace(AceKind::Deny, WRITE_GRANT, tree)],
                false,
                "wrong kind",
            ),
        ];
        for (dacl, want, why) in table {
            assert_eq!(e.is_present(dacl), *want, "{why}");
        }
        let mut other = ace(AceKind::Allow, WRITE_GRANT, tree);
        other.sid = Sid::everyone();
        assert!(!e.is_present(&[other]), "other trustee");
    }

    #[test]
    fn only_everyone_grants_that_create_files_count() {
        let ace = |sid: Sid, mask: u32, flags: u8| Ace {
            kind: AceKind::Allow,
            sid,
            mask,
            flags,
        };
        let users = Sid::new(5, &[32, 545]);
        let table: &[(Option<&[Ace]>, bool)] = &[
            (None, true),
            (Some(&[]), false),
            (Some(&[ace(Sid::everyone(), FILE_GENERIC_READ, 3)]), false),
            (Some(&[ace(Sid::everyone(), FILE_APPEND_DATA, 0)]), true),
            (Some(&[ace(Sid::everyone(), GENERIC_WRITE, 0x10)]), true),
            (
                Some(&[ace(Sid::everyone(), GENERIC_ALL, INHERIT_ONLY_ACE | 3)]),
                false,
            ),
            (Some(&[ace(users, FILE_ALL_ACCESS, 3)]), false),
        ];
        for (i, (dacl, want)) in table.iter().enumerate() {
            assert_eq!(admits_everyone_write(*dacl), *want, "row {i}");
        }
    }

    #[test]
    fn masks_are_winnt_values() {
        assert_eq!(FILE_GENERIC_READ, 0x0012_0089);
        assert_eq!(FILE_GENERIC_WRITE, 0x0012_0116);
        assert_eq!(FILE_GENERIC_EXECUTE, 0x0012_00A0);
        assert_eq!(WRITE_GRANT & FILE_DELETE_CHILD, 0, "see WRITE_GRANT");
        assert_eq!(
            DENY_WRITE & FILE_READ_DATA,
            0,
            "protected paths stay readable"
        );
    }
}
