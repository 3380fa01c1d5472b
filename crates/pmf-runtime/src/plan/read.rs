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
    // However large a plan may be, a device is none (`/dev/zero` never ends).
    let bytes = pmf_syntax::read::refuse_device(path)
        .and_then(|()| std::fs::read(path))
        .map_err(|e| {
            format!(
                "cannot read `{}`: {}",
                path.display(),
                pmf_syntax::diagnostics::io_reason(&e)
            )
        })?;
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

/// A plan laid out as [`write_plan`] writes it: its format and header on
/// the first line, which ends `"entries":[`; an entry a line, each but the
/// last followed by a comma; then `],"totals":…}`. Each part is parsed by
/// serde as the whole file would be, the entries on every core. `None`
/// when the file is laid out otherwise, or any part does not parse, or
/// the format is not this pmf's: the whole file is then parsed at once
/// (the reference, which also says what is wrong).
pub(super) fn read_laid_out(bytes: &[u8]) -> Option<Plan> {
    use rayon::prelude::*;
    /// The first line's fields, and only those.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Head {
        format_version: u32,
        header: PlanHeader,
    }
    /// The last line's field, and only that.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Tail {
        totals: Totals,
    }
    const OPEN: &[u8] = b",\"entries\":[";
    const CLOSE: &[u8] = b"],\"totals\":";
    let first = bytes.iter().position(|&b| b == b'\n')?;
    let (head, rest) = (bytes.get(..first)?, bytes.get(first + 1..)?);
    let head = head.strip_suffix(OPEN)?;
    let head: Head = serde_json::from_slice(&[head, b"}"].concat()).ok()?;
    if !reads_format(head.format_version.into()) {
        return None;
    }
    // The tail: the last line (a new line may end the file).
    let rest = rest.strip_suffix(b"\n").unwrap_or(rest);
    let (entries, tail) = match memchr::memrchr(b'\n', rest) {
        Some(at) => (rest.get(..at)?, rest.get(at + 1..)?),
        None => (rest.get(..0)?, rest),
    };
    let tail = tail.strip_prefix(CLOSE)?;
    let tail: Tail = serde_json::from_slice(&[b"{\"totals\":", tail].concat()).ok()?;
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
            serde_json::from_slice::<PlanEntry>(line).ok()
        })
        .collect::<Option<Vec<PlanEntry>>>()?;
    Some(Plan {
        format_version: head.format_version,
        header: head.header,
        entries,
        totals: tail.totals,
    })
}
