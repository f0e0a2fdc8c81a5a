//! Go's `time.ParseDuration`, for the places docker's API and Dockerfiles
//! take Go durations (`since`/`until`, HEALTHCHECK's options).

/// Go's `time.ParseDuration`: decimal numbers, each with a unit (ns, us,
/// µs, ms, s, m, h), an optional sign; nanoseconds.
pub(crate) fn parse_nanos(s: &str) -> Option<i128> {
    let (negative, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
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
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * nanos_per;
    }
    let nanos = total as i128;
    Some(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::parse_nanos;

    #[test]
    fn go_durations() {
        assert_eq!(parse_nanos("24h"), Some(24 * 3600 * 1_000_000_000));
        assert_eq!(parse_nanos("1h30m"), Some(5400 * 1_000_000_000));
        assert_eq!(parse_nanos("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_nanos("-2m"), Some(-120 * 1_000_000_000));
        assert_eq!(parse_nanos("300ms"), Some(300_000_000));
        for bad in ["", "10", "h", "1x", "bad", "2024-01-01T00:00:00Z"] {
            assert_eq!(parse_nanos(bad), None, "{bad}");
        }
    }
}
