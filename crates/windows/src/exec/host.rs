//! The planner's questions answered from this machine's file system, one path at a time.

use std::fs;
use std::io::Read;
use std::os::windows::fs::MetadataExt;

use crate::plan::acl::Ace;
use crate::plan::{Host, Kind};
use crate::winpath::WinPath;

const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;
/// `.git` files and `commondir` are a line; anything longer is not what the planner wants.
const MAX_TEXT: u64 = 4096;

/// The real machine.
pub struct RealHost;

impl Host for RealHost {
    fn final_path(&self, path: &WinPath) -> Option<WinPath> {
        // std's canonicalize is GetFinalPathNameByHandleW on a handle opened with
        // FILE_FLAG_BACKUP_SEMANTICS: junctions, symbolic links and 8.3 names resolved.
        let real = fs::canonicalize(path.to_api()).ok()?;
        WinPath::from_path(&real).ok()
    }

    fn kind(&self, path: &WinPath) -> Kind {
        match fs::symlink_metadata(path.to_api()) {
            Err(_) => Kind::Missing,
            Ok(m) if m.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 => Kind::Link,
            Ok(m) if m.is_dir() => Kind::Dir,
            Ok(_) => Kind::File,
        }
    }

    fn is_empty_dir(&self, path: &WinPath) -> bool {
        fs::read_dir(path.to_api()).is_ok_and(|mut d| d.next().is_none())
    }

    fn read_text(&self, path: &WinPath) -> Option<String> {
        let mut s = String::new();
        fs::File::open(path.to_api())
            .ok()?
            .take(MAX_TEXT)
            .read_to_string(&mut s)
            .ok()?;
        Some(s)
    }

    fn dacl(&self, path: &WinPath) -> Vec<Ace> {
        super::acl::read_dacl(path).unwrap_or_default()
    }
}
