//! Wall-clock time as RFC 3339 (UTC), for plans, events and checkpoints.
//! A leaf module: it depends on nothing else of the crate.

/// The seconds since the epoch now (0 if the clock is before it).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How far behind the latest time a store recorded a clock may be and
/// still write to it, and how far a checkpoint may be dated before the one
/// it follows: clocks kept by NTP differ by far less; a clock set back to
/// revive an expired plan, approval or request differs by more.
pub const SKEW_SECS: u64 = 5 * 60;

/// `secs` as people say it, to the largest unit that fits twice
/// (`7 days`, `36 hours`, `90 minutes`, `1 second`).
pub fn spoken_duration(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s >= 2 * 86_400 => (s / 86_400, "day"),
        s if s >= 2 * 3_600 => (s / 3_600, "hour"),
        s if s >= 2 * 60 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The current UTC time as RFC 3339 (formatted once a second per thread:
/// apply asks for it for every partner).
pub fn now_rfc3339() -> String {
    rfc3339_again(now_secs()).into()
}

/// Seconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The seconds since the epoch of a time written as [`rfc3339`] writes
/// it (`YYYY-MM-DDTHH:MM:SSZ`, from 1970), so that `rfc3339` gives the
/// same text back; `None` for any other text.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let &[
        y0,
        y1,
        y2,
        y3,
        b'-',
        m0,
        m1,
        b'-',
        d0,
        d1,
        b'T',
        h0,
        h1,
        b':',
        n0,
        n1,
        b':',
        s0,
        s1,
        b'Z',
    ] = s.as_bytes()
    else {
        return None;
    };
    let digits = |ds: &[u8]| -> Option<i64> {
        ds.iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (y, m, d) = (
        digits(&[y0, y1, y2, y3])?,
        digits(&[m0, m1])?,
        digits(&[d0, d1])?,
    );
    let (h, n, sec) = (digits(&[h0, h1])?, digits(&[n0, n1])?, digits(&[s0, s1])?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if y < 1970 || d < 1 || d > days_in_month || h > 23 || n > 59 || sec > 59 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), the inverse of `rfc3339`'s.
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + n * 60 + sec).ok()
}

/// [`parse_rfc3339`], answered from the thread's last text when `s` is
/// that text: a walk's events carry one time, and so, most often, do a
/// batch's walks (each event's encoding reads it).
pub fn parse_rfc3339_again(s: &str) -> Option<u64> {
    thread_local! {
        // Twenty zero bytes parse to no time: true from the start.
        static LAST: std::cell::Cell<([u8; 20], Option<u64>)> = const { std::cell::Cell::new(([0; 20], None)) };
    }
    // A time as pmf writes it is twenty bytes; any other text is no time.
    let Ok(text) = <[u8; 20]>::try_from(s.as_bytes()) else {
        return None;
    };
    LAST.with(|last| {
        let (known, secs) = last.get();
        if known == text {
            return secs;
        }
        let secs = parse_rfc3339(s);
        last.set((text, secs));
        secs
    })
}

/// [`rfc3339`] of `secs`, answered from the thread's last answer when
/// `secs` is the same: a walk's events carry one time, so reading a
/// lineage back formats each time once, not once an event.
pub fn rfc3339_again(secs: u64) -> compact_str::CompactString {
    thread_local! {
        static LAST: std::cell::RefCell<(Option<u64>, compact_str::CompactString)> =
            const { std::cell::RefCell::new((None, compact_str::CompactString::const_new(""))) };
    }
    LAST.with_borrow_mut(|(known, text)| {
        if *known != Some(secs) {
            *known = Some(secs);
            *text = rfc3339(secs).into();
        }
        text.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_back_as_written() {
        for secs in (0..4_200_000_000u64).step_by(86_399 * 7 + 3_599) {
            let text = rfc3339(secs);
            assert_eq!(parse_rfc3339(&text), Some(secs), "{text}");
        }
        for bad in [
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "1969-12-31T23:59:59Z",
            "2026-12-01T00:00:00+00:00",
            "2026-12-01 00:00:00Z",
            "2026-12-01T00:00:0xZ",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(parse_rfc3339("2024-02-29T12:34:56Z"), Some(1_709_210_096));
    }

    /// Remembering the last time formatted answers as formatting it does:
    /// times asked again, in turn, the largest among them.
    #[test]
    fn times_written_again_are_written_as_once() {
        let times = [0, 1, 1_764_547_200, 1_764_547_201, u64::MAX, 0];
        for round in 0..3 {
            for (i, &secs) in times.iter().enumerate() {
                for again in [secs, secs, times[(i + round) % times.len()]] {
                    assert_eq!(rfc3339_again(again), rfc3339(again), "{again}");
                }
            }
        }
    }

    /// Remembering the last text answers as reading it does: texts asked
    /// again, in turn, bad ones and twenty zero bytes among them.
    #[test]
    fn times_read_again_read_as_read_once() {
        // First on this thread: the memory's first text.
        assert_eq!(parse_rfc3339_again(&"\0".repeat(20)), None);
        let texts = [
            "2026-12-01T00:00:00Z".to_string(),
            "2026-12-01T00:00:01Z".to_string(),
            "2026-02-29T00:00:00Z".to_string(),
            "2026-12-01T00:00:0xZ".to_string(),
            "\0".repeat(19),
            "\0".repeat(20),
            String::new(),
            "2024-02-29T12:34:56Z".to_string(),
            "2024-02-29T12:34:56Z ".to_string(),
        ];
        for round in 0..3 {
            for (i, text) in texts.iter().enumerate() {
                for again in [text, text, &texts[(i + round) % texts.len()]] {
                    assert_eq!(
                        parse_rfc3339_again(again),
                        parse_rfc3339(again),
                        "{again:?}"
                    );
                }
            }
        }
    }
}
