//! Resource limits in policy: the values of the `[limits]` section and of `--memory`, `--cpu`,
//! `--pids`, `--timeout`, how they parse, how layers combine them, and which changes raise a
//! limit that a lower layer set.

use std::fmt;
use std::time::Duration;

/// One kind of resource limit. Values of every kind are kept as one integer in a fixed unit
/// (see [`LimitKind::unit`]), so layering and comparing are the same code for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LimitKind {
    /// Memory of the whole tree, bytes.
    Memory,
    /// CPU time per wall-clock time, thousandths of a core.
    Cpu,
    /// Processes (and threads) alive at once, a count.
    Pids,
    /// Wall-clock time, milliseconds.
    Timeout,
    /// Largest file a process may write, bytes (RLIMIT_FSIZE).
    FileSize,
    /// Open descriptors per process, a count (RLIMIT_NOFILE).
    OpenFiles,
}

impl LimitKind {
    /// Every kind, in the order the `[limits]` section documents them.
    pub const ALL: [LimitKind; 6] = [
        LimitKind::Memory,
        LimitKind::Cpu,
        LimitKind::Pids,
        LimitKind::Timeout,
        LimitKind::FileSize,
        LimitKind::OpenFiles,
    ];

    /// The key in `[limits]` (also the name in messages and audit events).
    pub fn key(self) -> &'static str {
        match self {
            LimitKind::Memory => "memory",
            LimitKind::Cpu => "cpu",
            LimitKind::Pids => "pids",
            LimitKind::Timeout => "timeout",
            LimitKind::FileSize => "file_size",
            LimitKind::OpenFiles => "open_files",
        }
    }

    /// The unit every value of this kind is kept in.
    pub fn unit(self) -> &'static str {
        match self {
            LimitKind::Memory | LimitKind::FileSize => "bytes",
            LimitKind::Cpu => "millicores",
            LimitKind::Pids | LimitKind::OpenFiles => "count",
            LimitKind::Timeout => "milliseconds",
        }
    }

    /// What a valid value looks like, for error messages.
    pub fn example(self) -> &'static str {
        match self {
            LimitKind::Memory => {
                "a size such as 512M, 2G, 1.5GiB or plain bytes (K, M, G, T are powers of 1024)"
            }
            LimitKind::FileSize => "a size such as 100M, 4G or plain bytes",
            LimitKind::Cpu => "cores, fractions allowed, such as 0.5, 1.5 or 2",
            LimitKind::Pids => "a whole number of processes such as 256",
            LimitKind::Timeout => "a duration with a unit such as 90s, 5m, 1h 30m or 500ms",
            LimitKind::OpenFiles => "a whole number of descriptors such as 4096",
        }
    }

    /// Parses a value as written in a flag or a TOML string: the value, or `unlimited`.
    pub fn parse(self, text: &str) -> Result<Setting, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("unlimited") {
            return Ok(Setting::Unlimited);
        }
        let value = match self {
            LimitKind::Memory | LimitKind::FileSize => parse_size(text)?,
            LimitKind::Cpu => parse_cores(text)?,
            LimitKind::Pids | LimitKind::OpenFiles => parse_count(text)?,
            LimitKind::Timeout => parse_duration(text)?,
        };
        self.check(value).map(Setting::Max)
    }

    /// A value from a TOML integer: bytes, cores or a count (a timeout needs a unit).
    pub fn from_integer(self, n: i64) -> Result<Setting, String> {
        let n = u64::try_from(n).map_err(|_| format!("{n} is negative"))?;
        let value = match self {
            LimitKind::Cpu => n
                .checked_mul(1000)
                .ok_or_else(|| format!("{n} cores is too many"))?,
            LimitKind::Timeout => {
                return Err(format!(
                    "{n} has no unit: write \"{n}s\" for seconds or \"{n}ms\" for milliseconds"
                ))
            }
            _ => n,
        };
        self.check(value).map(Setting::Max)
    }

    /// A value from a TOML float (cores only).
    pub fn from_float(self, f: f64) -> Result<Setting, String> {
        match self {
            LimitKind::Cpu => self.check(cores_to_millis(f)?).map(Setting::Max),
            _ => Err(format!("{f} is not a whole number")),
        }
    }

    /// Refuses values that cannot be meant: zero, and memory too small to start anything.
    fn check(self, value: u64) -> Result<u64, String> {
        if value == 0 {
            return Err(format!(
                "a {} limit of 0 would refuse everything; write `unlimited` for no limit",
                self.key()
            ));
        }
        if self == LimitKind::Memory && value < MIB {
            return Err(format!(
                "{value} bytes is too little memory to start a process (did you mean {value}M?)"
            ));
        }
        if self == LimitKind::Cpu && value < 10 {
            return Err("the smallest CPU limit is 0.01 cores".into());
        }
        Ok(value)
    }

    /// A value in this kind's unit as a user would write it (`64M`, `0.5`, `90s`, `256`).
    pub fn format(self, value: u64) -> String {
        match self {
            LimitKind::Memory | LimitKind::FileSize => format_size(value),
            LimitKind::Cpu => format_cores(value),
            LimitKind::Pids | LimitKind::OpenFiles => value.to_string(),
            LimitKind::Timeout => format_millis(value),
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// What one layer says about one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// At most this much, in the kind's unit.
    Max(u64),
    /// No limit (removes one a lower layer set).
    Unlimited,
}

impl Setting {
    pub fn format(self, kind: LimitKind) -> String {
        match self {
            Setting::Max(v) => kind.format(v),
            Setting::Unlimited => "unlimited".into(),
        }
    }
}

/// The limits one layer sets; a kind it does not mention is left to the layers below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitLayer {
    settings: [Option<Setting>; 6],
}

impl LimitLayer {
    pub fn get(&self, kind: LimitKind) -> Option<Setting> {
        self.settings[kind as usize]
    }

    pub fn set(&mut self, kind: LimitKind, setting: Option<Setting>) {
        self.settings[kind as usize] = setting;
    }

    pub fn is_empty(&self) -> bool {
        self.settings.iter().all(Option::is_none)
    }

    /// Each setting that raises or removes a limit `below` has: (kind, setting, limit below).
    pub fn raises(&self, below: &Limits) -> Vec<(LimitKind, Setting, u64)> {
        LimitKind::ALL
            .into_iter()
            .filter_map(|kind| {
                let setting = self.get(kind)?;
                let old = below.get(kind)?;
                let raises = match setting {
                    Setting::Unlimited => true,
                    Setting::Max(v) => v > old,
                };
                raises.then_some((kind, setting, old))
            })
            .collect()
    }

    /// This layer without the settings that raise or remove a limit `below` has.
    pub fn narrowing_only(&self, below: &Limits) -> LimitLayer {
        let mut out = *self;
        for (kind, _, _) in self.raises(below) {
            out.set(kind, None);
        }
        out
    }
}

/// The effective limits after layering; `None` means cordon sets no limit of that kind
/// (file size and open files are then inherited from the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    values: [Option<u64>; 6],
}

impl Limits {
    /// The limit of `kind` in its unit, if one is set.
    pub fn get(&self, kind: LimitKind) -> Option<u64> {
        self.values[kind as usize]
    }

    /// Applies a layer on top: its settings replace what was below.
    pub fn apply(&mut self, layer: &LimitLayer) {
        for kind in LimitKind::ALL {
            match layer.get(kind) {
                Some(Setting::Max(v)) => self.values[kind as usize] = Some(v),
                Some(Setting::Unlimited) => self.values[kind as usize] = None,
                None => {}
            }
        }
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.get(LimitKind::Timeout).map(Duration::from_millis)
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const TIB: u64 = 1024 * GIB;

/// `64M`, `512MiB`, `2G`, `1.5g`, `4096`: a number, then an optional unit K, M, G or T (each a
/// power of 1024; `KB`/`KiB` spellings and a lone `B` are accepted too).
fn parse_size(text: &str) -> Result<u64, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim();
    let multiplier = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        "t" | "tb" | "tib" => TIB,
        _ => return Err(format!("`{text}` is not a size")),
    };
    let bytes = if let Some((whole, frac)) = number.split_once('.') {
        let value: f64 = format!("{}.{frac}", if whole.is_empty() { "0" } else { whole })
            .parse()
            .map_err(|_| format!("`{text}` is not a size"))?;
        let bytes = value * multiplier as f64;
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err(format!("`{text}` is too large"));
        }
        bytes as u64
    } else {
        let value: u64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a size"))?;
        value
            .checked_mul(multiplier)
            .ok_or_else(|| format!("`{text}` is too large"))?
    };
    Ok(bytes)
}

/// `0.5`, `2`, `1.25`: cores, kept as thousandths.
fn parse_cores(text: &str) -> Result<u64, String> {
    let valid = !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.');
    let value: f64 = text
        .parse()
        .ok()
        .filter(|_| valid)
        .ok_or_else(|| format!("`{text}` is not a number of cores"))?;
    cores_to_millis(value)
}

fn cores_to_millis(value: f64) -> Result<u64, String> {
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{value} is not a number of cores"));
    }
    if value > 100_000.0 {
        return Err(format!("{value} cores is too many"));
    }
    Ok((value * 1000.0).round() as u64)
}

fn parse_count(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a whole number"))
}

/// `90s`, `5m`, `1h 30m`, `500ms` (humantime's syntax).
fn parse_duration(text: &str) -> Result<u64, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e}"))?;
    u64::try_from(d.as_millis()).map_err(|_| format!("`{text}` is too long"))
}

fn format_size(bytes: u64) -> String {
    for (unit, size) in [("T", TIB), ("G", GIB), ("M", MIB), ("K", KIB)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

fn format_cores(millis: u64) -> String {
    let text = format!("{}.{:03}", millis / 1000, millis % 1000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Milliseconds as the largest whole unit: `90s`, `5m`, `2h`, `1500ms`.
fn format_millis(ms: u64) -> String {
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max(kind: LimitKind, text: &str) -> u64 {
        match kind.parse(text) {
            Ok(Setting::Max(v)) => v,
            other => panic!("{kind} {text}: {other:?}"),
        }
    }

    #[test]
    fn sizes_in_every_spelling() {
        let m = LimitKind::Memory;
        assert_eq!(max(m, "64M"), 64 * MIB);
        assert_eq!(max(m, "512MiB"), 512 * MIB);
        assert_eq!(max(m, "512mb"), 512 * MIB);
        assert_eq!(max(m, "2G"), 2 * GIB);
        assert_eq!(max(m, "1.5G"), 3 * GIB / 2);
        assert_eq!(max(m, "1048576"), MIB);
        assert_eq!(max(m, "4096K"), 4 * MIB);
        assert_eq!(max(LimitKind::FileSize, "10"), 10);
        assert_eq!(m.parse("unlimited"), Ok(Setting::Unlimited));
    }

    #[test]
    fn bad_sizes_say_why() {
        let m = LimitKind::Memory;
        for bad in ["lots", "", "64X", "-1M", "1.2.3G", "M", "99999999999T"] {
            assert!(m.parse(bad).is_err(), "{bad}");
        }
        assert!(m.parse("0").unwrap_err().contains("unlimited"));
        assert!(m.parse("64").unwrap_err().contains("64M"));
    }

    #[test]
    fn cores_are_thousandths() {
        let c = LimitKind::Cpu;
        assert_eq!(max(c, "0.5"), 500);
        assert_eq!(max(c, "2"), 2000);
        assert_eq!(max(c, "1.25"), 1250);
        for bad in ["half", "-1", "0", "0.001", "1e3", "NaN", "inf"] {
            assert!(c.parse(bad).is_err(), "{bad}");
        }
        assert_eq!(c.from_float(0.5), Ok(Setting::Max(500)));
        assert_eq!(c.from_integer(2), Ok(Setting::Max(2000)));
    }

    #[test]
    fn durations_need_units() {
        let t = LimitKind::Timeout;
        assert_eq!(max(t, "90s"), 90_000);
        assert_eq!(max(t, "5m"), 300_000);
        assert_eq!(max(t, "1h 30m"), 5_400_000);
        assert_eq!(max(t, "500ms"), 500);
        assert!(t.parse("90").is_err());
        assert!(t.from_integer(90).unwrap_err().contains("90s"));
        assert!(t.parse("soon").is_err());
    }

    #[test]
    fn counts_are_whole() {
        assert_eq!(max(LimitKind::Pids, "64"), 64);
        assert!(LimitKind::Pids.parse("6.5").is_err());
        assert!(LimitKind::Pids.from_integer(-3).is_err());
        assert!(LimitKind::OpenFiles.from_float(1.5).is_err());
    }

    #[test]
    fn format_round_trips() {
        for kind in LimitKind::ALL {
            for text in [
                "64M", "2G", "1500K", "0.5", "2", "90s", "5m", "2h", "1500ms", "256",
            ] {
                if let Ok(Setting::Max(v)) = kind.parse(text) {
                    assert_eq!(
                        kind.parse(&kind.format(v)),
                        Ok(Setting::Max(v)),
                        "{kind} {text}"
                    );
                }
            }
        }
        assert_eq!(LimitKind::Timeout.format(90_000), "90s");
        assert_eq!(LimitKind::Memory.format(64 * MIB), "64M");
        assert_eq!(LimitKind::Cpu.format(1250), "1.25");
    }

    #[test]
    fn raising_or_removing_a_lower_limit_is_a_raise() {
        let mut below = Limits::default();
        let mut lower = LimitLayer::default();
        lower.set(LimitKind::Memory, Some(Setting::Max(GIB)));
        lower.set(LimitKind::Pids, Some(Setting::Max(100)));
        below.apply(&lower);
        let mut ws = LimitLayer::default();
        ws.set(LimitKind::Memory, Some(Setting::Max(2 * GIB)));
        ws.set(LimitKind::Pids, Some(Setting::Unlimited));
        ws.set(LimitKind::Timeout, Some(Setting::Max(1000)));
        let raises = ws.raises(&below);
        assert_eq!(raises.len(), 2, "{raises:?}");
        let kept = ws.narrowing_only(&below);
        assert_eq!(kept.get(LimitKind::Memory), None);
        assert_eq!(kept.get(LimitKind::Pids), None);
        assert_eq!(kept.get(LimitKind::Timeout), Some(Setting::Max(1000)));
        let mut lowering = LimitLayer::default();
        lowering.set(LimitKind::Memory, Some(Setting::Max(MIB * 512)));
        assert!(lowering.raises(&below).is_empty());
        let mut merged = below;
        merged.apply(&ws);
        assert_eq!(merged.get(LimitKind::Pids), None, "unlimited removes");
        assert_eq!(merged.get(LimitKind::Memory), Some(2 * GIB));
    }
}
