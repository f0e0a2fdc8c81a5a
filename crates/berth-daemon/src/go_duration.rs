//! Go's `time.ParseDuration`, for the places docker's API and Dockerfiles
//! take Go durations (`since`/`until`, HEALTHCHECK's options).

/// Why a text is not a Go duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DurationError {
    /// Not the syntax at all (no unit, an unknown unit, no number).
    Invalid,
    /// The syntax, but beyond what Go's `time.Duration` (int64
    /// nanoseconds) holds.
    OutOfRange,
}

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DurationError::Invalid => f.write_str("not a Go duration (e.g. 1h30m, 500ms)"),
            DurationError::OutOfRange => f.write_str(
                "out of range: a Go duration is at most 2562047h47m16.854775807s either way",
            ),
        }
    }
}

/// Go's `time.ParseDuration`: decimal numbers, each with a unit (ns, us,
/// µs, ms, s, m, h), an optional sign; nanoseconds. Like Go, a duration
/// beyond int64 nanoseconds is refused.
pub(crate) fn parse_nanos(s: &str) -> Result<i64, DurationError> {
    use DurationError::{Invalid, OutOfRange};
    let (negative, mut rest) = match s.as_bytes().first().ok_or(Invalid)? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(Invalid);
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().map_err(|_| Invalid)?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(Invalid),
        };
        rest = &rest[unit_len..];
        total += number * nanos_per;
    }
    // 2^63 is the first value an i64 cannot hold (and f64 holds it exactly).
    if total >= 9_223_372_036_854_775_808.0 {
        return Err(OutOfRange);
    }
    let nanos = total as i64;
    Ok(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::{parse_nanos, DurationError};

    #[test]
    fn go_durations() {
        assert_eq!(parse_nanos("24h"), Ok(24 * 3600 * 1_000_000_000));
        assert_eq!(parse_nanos("1h30m"), Ok(5400 * 1_000_000_000));
        assert_eq!(parse_nanos("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_nanos("-2m"), Ok(-120 * 1_000_000_000));
        assert_eq!(parse_nanos("300ms"), Ok(300_000_000));
        for bad in ["", "10", "h", "1x", "bad", "2024-01-01T00:00:00Z"] {
            assert_eq!(parse_nanos(bad), Err(DurationError::Invalid), "{bad}");
        }
    }

    #[test]
    fn beyond_int64_nanoseconds_is_out_of_range() {
        // Go's limits, and one past them.
        assert_eq!(parse_nanos("2562047h47m16s"), Ok(9_223_372_036_000_000_000));
        assert_eq!(
            parse_nanos("2562047h47m17s"),
            Err(DurationError::OutOfRange)
        );
        assert_eq!(parse_nanos("-2562048h"), Err(DurationError::OutOfRange));
        // Once wrapped into a time far in the past (`since`), or truncated
        // into a HEALTHCHECK interval.
        assert_eq!(
            parse_nanos(&format!("{}h", "9".repeat(40))),
            Err(DurationError::OutOfRange)
        );
        assert!(DurationError::OutOfRange
            .to_string()
            .contains("at most 2562047h47m16.854775807s"));
    }
}
