//! Reading a plan back: as `pmf plan` lays it out, its entries parsed on
//! every core; any other layout through serde as a whole.

use std::path::Path;

use serde::Deserialize;

use super::{
    FORMAT_VERSION, OLDEST_FORMAT_READ, Plan, PlanEntry, PlanHeader, Totals, reads_format,
};

/// A plan read back, with the hash of its bytes.
pub struct LoadedPlan {
    /// The plan.
    pub plan: Plan,
    /// BLAKE3 (hex) of the file: what approvals sign (`b3sum plan.json`).
    pub hash: String,
}

/// Read a plan file.
pub fn read_plan(path: &Path) -> Result<LoadedPlan, String> {
    let failed = |e: std::io::Error| {
        format!(
            "cannot read `{}`: {}",
            path.display(),
            pmf_syntax::diagnostics::io_reason(&e)
        )
    };
    // However large a plan may be, a device is none (`/dev/zero` never ends).
    pmf_syntax::read::refuse_device(path).map_err(failed)?;
    // As pmf lays plans out: read a part at a time, hashed as it is read,
    // so that the file is never held whole beside its entries (600 MB at
    // a million partners).
    let file = std::fs::File::open(path).map_err(failed)?;
    if let Some(loaded) = read_streamed(file, STREAMED_PART).map_err(failed)? {
        return Ok(loaded);
    }
    let bytes = std::fs::read(path).map_err(failed)?;
    let hash = blake3::hash(&bytes).to_hex().to_string();
    // As pmf lays plans out, its entries parsed on every core; else
    // straight into a plan; only when that fails, look at why.
    if let Some(plan) = read_laid_out(&bytes) {
        return Ok(LoadedPlan { plan, hash });
    }
    if let Ok(plan) = serde_json::from_slice::<Plan>(&bytes)
        && reads_format(plan.format_version.into())
    {
        return Ok(LoadedPlan { plan, hash });
    }
    #[derive(Deserialize)]
    struct Versioned {
        format_version: Option<serde_json::Value>,
    }
    let versioned: Versioned = serde_json::from_slice(&bytes)
        .map_err(|e| format!("`{}` is not a plan: {e}", path.display()))?;
    match versioned.format_version.as_ref().and_then(|v| v.as_u64()) {
        Some(v) if reads_format(v) => {}
        Some(v) if v < u64::from(OLDEST_FORMAT_READ) => {
            return Err(format!(
                "`{}` has plan format {v}, made by an older pmf; this pmf reads formats \
                 {OLDEST_FORMAT_READ} to {FORMAT_VERSION} (which bind every input and carry what apply needs): plan again",
                path.display()
            ));
        }
        Some(v) => {
            return Err(format!(
                "`{}` has plan format {v}; this pmf reads formats {OLDEST_FORMAT_READ} to {FORMAT_VERSION}",
                path.display()
            ));
        }
        None => {
            return Err(format!(
                "`{}` is not a plan (no `format_version`)",
                path.display()
            ));
        }
    }
    match serde_json::from_slice::<Plan>(&bytes) {
        Ok(plan) => Ok(LoadedPlan { plan, hash }),
        Err(e) => Err(format!("`{}` is not a valid plan: {e}", path.display())),
    }
}

/// How much of a plan [`read_plan`] reads at a time.
const STREAMED_PART: usize = 8 << 20;

/// [`read_laid_out`] of what `reader` gives, read `part` bytes at a time
/// and hashed as it is read: the entries of each part parsed on every
/// core while the next part is read and hashed, and no more of the file
/// held than two parts and the line the second ends in. The plan and the
/// BLAKE3 of every byte read (what was parsed is what was hashed: the
/// file is read once). `None` when the plan is not laid out so (the
/// caller reads it whole, the reference); an error only when reading
/// fails.
pub(super) fn read_streamed(
    mut reader: impl std::io::Read + Send,
    part: usize,
) -> std::io::Result<Option<LoadedPlan>> {
    let mut hasher = blake3::Hasher::new();
    let mut lines = Lines::default();
    // The line the last part read ended in, unfinished.
    let mut unended: Vec<u8> = Vec::new();
    // The whole lines read and not yet taken, and whether they end the file.
    let mut read: Option<(Vec<u8>, bool)> = None;
    loop {
        let taking = read.take();
        let ended = taking.as_ref().is_some_and(|(_, end)| *end);
        // The lines read last are parsed while the next are read.
        let (took, next) = rayon::join(
            || {
                taking
                    .as_ref()
                    .is_none_or(|(text, end)| lines.take(text, *end))
            },
            || {
                if ended {
                    return Ok(None);
                }
                next_lines(&mut reader, &mut unended, part, &mut hasher).map(Some)
            },
        );
        if !took {
            return Ok(None);
        }
        match next? {
            Some(lines) => read = Some(lines),
            None => break,
        }
    }
    Ok(lines.plan().map(|plan| LoadedPlan {
        plan,
        hash: hasher.finalize().to_hex().to_string(),
    }))
}

/// The next whole lines `reader` gives, read `part` bytes at a time after
/// the `unended` line the part before ended in (what follows the last
/// line end is kept there), each byte hashed as it is read; and whether
/// they end the file (then all that is left, ended or not).
fn next_lines(
    reader: &mut impl std::io::Read,
    unended: &mut Vec<u8>,
    part: usize,
    hasher: &mut blake3::Hasher,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut buf = std::mem::take(unended);
    loop {
        let start = buf.len();
        buf.resize(start + part.max(1), 0);
        let n = loop {
            match reader.read(buf.get_mut(start..).unwrap_or_default()) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                read => break read?,
            }
        };
        buf.truncate(start + n);
        let fresh = buf.get(start..).unwrap_or_default();
        hasher.update(fresh);
        if n == 0 {
            return Ok((buf, true));
        }
        if let Some(at) = memchr::memrchr(b'\n', fresh) {
            let cut = start + at + 1;
            unended.extend_from_slice(buf.get(cut..).unwrap_or_default());
            buf.truncate(cut);
            return Ok((buf, false));
        }
    }
}

/// A plan laid out as pmf writes it, taken line by line ([`read_streamed`]).
#[derive(Default)]
struct Lines {
    head: Option<LaidHead>,
    entries: Vec<PlanEntry>,
    /// Whether the last entry taken ended with its comma.
    comma: Option<bool>,
    tail: Option<LaidTail>,
}

/// A laid-out plan's first line: its fields, and only those.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LaidHead {
    format_version: u32,
    header: PlanHeader,
}

/// A laid-out plan's last line: its field, and only that.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LaidTail {
    totals: Totals,
}

impl LaidHead {
    /// The first line of a plan laid out as pmf writes it, of a format
    /// this pmf reads.
    fn of(line: &[u8]) -> Option<LaidHead> {
        let head = line.strip_suffix(LAID_OPEN)?;
        serde_json::from_slice::<LaidHead>(&[head, b"}"].concat())
            .ok()
            .filter(|h| reads_format(h.format_version.into()))
    }
}

impl LaidTail {
    /// The last line of a plan laid out as pmf writes it.
    fn of(line: &[u8]) -> Option<LaidTail> {
        let tail = line.strip_prefix(LAID_CLOSE)?;
        serde_json::from_slice(&[b"{\"totals\":", tail].concat()).ok()
    }
}

/// What ends a laid-out plan's first line.
const LAID_OPEN: &[u8] = b",\"entries\":[";
/// What begins its last line.
const LAID_CLOSE: &[u8] = b"],\"totals\":";

impl Lines {
    /// Take `text`, whole lines (the last one unended when `end`): false
    /// when they are not a plan laid out as pmf writes it.
    fn take(&mut self, text: &[u8], end: bool) -> bool {
        use rayon::prelude::*;
        let text = match (end, text.strip_suffix(b"\n")) {
            (_, Some(ended)) => ended,
            (true, None) if text.is_empty() => return self.tail.is_some(),
            (true, None) => text,
            (false, None) => return text.is_empty(),
        };
        let mut entries: Vec<&[u8]> = Vec::new();
        // Lines found with memchr (SIMD), as in `read_laid_out`.
        let mut from = 0;
        for end in memchr::memchr_iter(b'\n', text).chain([text.len()]) {
            let line = text.get(from..end).unwrap_or_default();
            from = end + 1;
            if self.tail.is_some() {
                // Nothing after the totals.
                return false;
            }
            if self.head.is_none() {
                match LaidHead::of(line) {
                    Some(head) => self.head = Some(head),
                    None => return false,
                }
            } else if line.starts_with(LAID_CLOSE) {
                // The last entry ends without its comma.
                if self.comma == Some(true) {
                    return false;
                }
                match LaidTail::of(line) {
                    Some(tail) => self.tail = Some(tail),
                    None => return false,
                }
            } else {
                // Every entry but the last ends with a comma.
                if self.comma == Some(false) {
                    return false;
                }
                let (line, comma) = match line.strip_suffix(b",") {
                    Some(entry) => (entry, true),
                    None => (line, false),
                };
                self.comma = Some(comma);
                entries.push(line);
            }
        }
        let parsed = entries
            .par_iter()
            .map(|line| read_entry_line(line))
            .collect::<Option<Vec<PlanEntry>>>();
        match parsed {
            Some(parsed) => {
                self.entries.extend(parsed);
                true
            }
            None => false,
        }
    }

    /// The plan the lines made, when they ended with its totals.
    fn plan(self) -> Option<Plan> {
        let (head, tail) = (self.head?, self.tail?);
        Some(Plan {
            format_version: head.format_version,
            header: head.header,
            entries: self.entries,
            totals: tail.totals,
        })
    }
}

/// A plan laid out as [`write_plan`] writes it: its format and header on
/// the first line, which ends `"entries":[`; an entry a line, each but the
/// last followed by a comma; then `],"totals":…}`. Each part is parsed by
/// serde as the whole file would be, the entries on every core. `None`
/// when the file is laid out otherwise, or any part does not parse, or
/// the format is not this pmf's: the whole file is then parsed at once
/// (the reference, which also says what is wrong).
pub(super) fn read_laid_out(bytes: &[u8]) -> Option<Plan> {
    use rayon::prelude::*;
    let first = bytes.iter().position(|&b| b == b'\n')?;
    let (head, rest) = (bytes.get(..first)?, bytes.get(first + 1..)?);
    let head = LaidHead::of(head)?;
    // The tail: the last line (a new line may end the file).
    let rest = rest.strip_suffix(b"\n").unwrap_or(rest);
    let (entries, tail) = match memchr::memrchr(b'\n', rest) {
        Some(at) => (rest.get(..at)?, rest.get(at + 1..)?),
        None => (rest.get(..0)?, rest),
    };
    let tail = LaidTail::of(tail)?;
    // Lines found with memchr (SIMD): a byte at a time, this serial step
    // was a fiftieth of applying 100,000 partners.
    let lines: Vec<&[u8]> = if entries.is_empty() {
        Vec::new()
    } else {
        let mut lines = Vec::with_capacity(entries.len() / 256);
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', entries).chain([entries.len()]) {
            lines.push(entries.get(start..end)?);
            start = end + 1;
        }
        lines
    };
    let last = lines.len().saturating_sub(1);
    let entries = lines
        .par_iter()
        .enumerate()
        .map(|(i, line)| {
            // A comma after each entry but the last.
            let line = if i < last {
                line.strip_suffix(b",")?
            } else {
                line
            };
            read_entry_line(line)
        })
        .collect::<Option<Vec<PlanEntry>>>()?;
    Some(Plan {
        format_version: head.format_version,
        header: head.header,
        entries,
        totals: tail.totals,
    })
}

/// One entry line of a laid-out plan: by the line reader when the line is
/// as `pmf plan` writes it, else by serde (the reference).
fn read_entry_line(line: &[u8]) -> Option<PlanEntry> {
    super::entry_line::read_entry(line).or_else(|| serde_json::from_slice::<PlanEntry>(line).ok())
}
