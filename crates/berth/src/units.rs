//! docker's human units: sizes (`1.98MB`), durations (`About a minute`),
//! and RFC 3339 timestamps (the API's `Created` strings) without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// `units.HumanSizeWithPrecision(size, 3)`: decimal units, 3 significant digits.
pub fn human_size(size: f64) -> String {
    human_size_prec(size, 3)
}

/// `units.HumanSizeWithPrecision(size, prec)` (`HumanSize` is precision 4).
pub fn human_size_prec(size: f64, prec: i32) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", g_prec(s, prec), UNITS[i])
}

/// `units.BytesSize`: binary units (`KiB`), as `docker stats` and `info` use.
pub fn bytes_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1024.0 && i < UNITS.len() - 1 {
        s /= 1024.0;
        i += 1;
    }
    format!("{}{}", g4(s), UNITS[i])
}

fn g4(v: f64) -> String {
    g_prec(v, 4)
}

fn g_prec(v: f64, prec: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    // libm's log10, not std's (glibc's libm.so, which the CLI would then
    // load at every start for this one function).
    let exp = libm::log10(v.abs()).floor() as i32;
    let decimals = (prec - 1 - exp).max(0) as usize;
    let s = format!("{v:.decimals$}");
    // Rounding may carry into a new digit (999.5 -> "1000"): Go then
    // switches to exponent form, which sizes never reach in practice.
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s.len() as i32 > prec && !s.contains('.') {
        let m = v / 10f64.powi(exp + 1);
        return format!("{}e+{:02}", g_prec(m * 10.0, prec), exp + 1);
    }
    s
}

/// `units.HumanDuration`.
pub fn human_duration(secs: f64) -> String {
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0).round() as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `<duration> ago` for a unix time.
pub fn ago(unix: f64) -> String {
    format!("{} ago", human_duration(now() - unix))
}

/// Seconds since the epoch of an RFC 3339 time (`2024-01-02T03:04:05.123Z`,
/// `+01:00` offsets), or of the shorter forms docker's `--since`/`--until`
/// take: `2024-01-02`, `2024-01-02T03`, `2024-01-02T03:04`, each with an
/// optional zone (`Z`, `+01:00`; none is UTC here, where docker reads the
/// client's local zone); `None` if it is none of these.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let mut i = 10;
    let mut hms = [0i64; 3];
    if matches!(b.get(i), Some(b'T' | b't' | b' ')) {
        for (k, part) in hms.iter_mut().enumerate() {
            if k > 0 {
                if b.get(i) != Some(&b':') {
                    break;
                }
                i += 1;
            } else {
                i += 1;
            }
            *part = num(i..i + 2)?;
            i += 2;
        }
    }
    let mut frac = 0.0;
    if b.get(i) == Some(&b'.') {
        let start = i;
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac = format!("0{}", &s[start..i]).parse().ok()?;
    }
    let offset = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(c @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let o = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *c == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || hms[0] > 23 || hms[1] > 59 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some((days * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2] - offset) as f64 + frac)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// RFC 3339 in UTC with nanoseconds as docker prints `-t` timestamps... the
/// daemon already does; this one formats unix seconds for `--format` dates
/// (`2006-01-02 15:04:05 +0000 UTC`, Go's `time.Time` String).
pub fn go_time_string(unix: f64) -> String {
    format!("{} +0000 UTC", utc_date_time(unix, ' '))
}

/// Go's `time.RFC3339` of unix seconds in UTC (`2006-01-02T15:04:05Z`).
pub fn rfc3339_utc(unix: f64) -> String {
    format!("{}Z", utc_date_time(unix, 'T'))
}

/// `2006-01-02<sep>15:04:05` in UTC.
fn utc_date_time(unix: f64, sep: char) -> String {
    let secs = unix.floor() as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}{sep}{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1_980_000.0), "1.98MB");
        assert_eq!(human_size(1_000_000.0), "1MB");
        assert_eq!(human_size(12_345.0), "12.3kB");
        assert_eq!(human_size(123_456_789.0), "123MB");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
        assert_eq!(human_size_prec(1_982_000.0, 4), "1.982MB");
    }

    #[test]
    fn durations_as_docker() {
        assert_eq!(human_duration(0.5), "Less than a second");
        assert_eq!(human_duration(1.0), "1 second");
        assert_eq!(human_duration(59.0), "59 seconds");
        assert_eq!(human_duration(61.0), "About a minute");
        assert_eq!(human_duration(600.0), "10 minutes");
        assert_eq!(human_duration(3600.0), "About an hour");
        assert_eq!(human_duration(5.0 * 3600.0), "5 hours");
        assert_eq!(human_duration(3.0 * 86400.0), "3 days");
        assert_eq!(human_duration(20.0 * 86400.0), "2 weeks");
        assert_eq!(human_duration(100.0 * 86400.0), "3 months");
        assert_eq!(human_duration(1000.0 * 86400.0), "2 years");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("2024-03-01T12:00:00.5Z"), Some(1709294400.5));
        assert_eq!(
            parse_rfc3339("2024-03-01T13:00:00+01:00"),
            Some(1709294400.0)
        );
        assert_eq!(parse_rfc3339("nope"), None);
        // docker's shorter --since/--until forms.
        assert_eq!(parse_rfc3339("1970-01-02"), Some(86400.0));
        assert_eq!(parse_rfc3339("1970-01-01T01"), Some(3600.0));
        assert_eq!(parse_rfc3339("1970-01-01T01:02Z"), Some(3720.0));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00-01:00"), Some(7200.0));
        assert_eq!(parse_rfc3339("1970-01-01T1"), None);
        assert_eq!(parse_rfc3339("1970-13-01"), None);
        assert_eq!(
            go_time_string(1709294400.0),
            "2024-03-01 12:00:00 +0000 UTC"
        );
    }
}
