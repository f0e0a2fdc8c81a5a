//! docker's logging drivers as berthd has them: `json-file` (the default,
//! written by the shim) and `none` (no log kept). The configuration is
//! checked in two steps, as docker checks it: at create, the driver's
//! name and its options' names (docker's `ValidateLogOpts`), with the
//! defaults filled in (so inspect shows `json-file` for an empty type);
//! at start, the options' values, which only the driver reads (docker's
//! `New` of the driver: a bad value fails the start, not the create).

use berth_api::models::{ContainerCreateBody, HostConfigLogConfig};
use berth_errdefs::ErrorKind;

use crate::error::ApiError;

/// The driver of a container that names none.
pub(crate) const DEFAULT_DRIVER: &str = "json-file";
const NONE: &str = "none";

/// docker's drivers that berthd does not have: asking for one is a 501
/// (not docker's 400 for a name no driver has).
const UNSUPPORTED: &[&str] = &[
    "local",
    "journald",
    "syslog",
    "fluentd",
    "gelf",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
];

/// How the shim keeps a container's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogDriver {
    /// `<id>-json.log`, rotated past `max_size` bytes (0: never) into at
    /// most `max_files` files.
    JsonFile { max_size: u64, max_files: u32 },
    /// No log: `logs` has nothing to read.
    None,
}

/// At create (docker's `mergeAndVerifyLogConfig`): an empty type is the
/// default driver, absent options are an empty map, and the driver and
/// the names of its options are checked.
pub(crate) fn normalise(body: &mut ContainerCreateBody) -> Result<(), ApiError> {
    let Some(log) = body
        .host_config
        .as_mut()
        .and_then(|h| h.log_config.as_mut())
    else {
        return Ok(());
    };
    if log.typ.as_deref().unwrap_or("").is_empty() {
        log.typ = Some(DEFAULT_DRIVER.to_string());
    }
    let opts = log.config.get_or_insert_with(Default::default);
    validate(log.typ.as_deref().unwrap_or(DEFAULT_DRIVER), opts)
}

/// Whether the container's driver keeps a log that `logs` (and attach's
/// `logs=1`) can read: `none` keeps none.
pub(crate) fn readable(create: &ContainerCreateBody) -> Result<(), ApiError> {
    let typ = create
        .host_config
        .as_ref()
        .and_then(|h| h.log_config.as_ref())
        .and_then(|l| l.typ.as_deref());
    if typ == Some(NONE) {
        // docker's ErrReadLogsNotSupported, a 501.
        return Err(ApiError::new(
            ErrorKind::NotImplemented,
            "configured logging driver does not support reading",
        ));
    }
    Ok(())
}

/// docker's `ValidateLogOpts`: the options every driver takes (`mode`,
/// `max-buffer-size`), the driver's existence, then its own options.
fn validate(
    driver: &str,
    opts: &std::collections::HashMap<String, String>,
) -> Result<(), ApiError> {
    if driver == NONE {
        return Ok(());
    }
    let mode = opts.get("mode").map_or("", String::as_str);
    if !matches!(mode, "" | "blocking" | "non-blocking") {
        return Err(ApiError::bad_request(format!(
            "logger: logging mode not supported: {mode}"
        )));
    }
    if let Some(size) = opts.get("max-buffer-size") {
        if mode != "non-blocking" {
            return Err(ApiError::bad_request(
                "logger: max-buffer-size option is only supported with 'mode=non-blocking'",
            ));
        }
        parse_size(size, Units::Binary).map_err(|e| {
            ApiError::bad_request(format!("error parsing option max-buffer-size: {e}"))
        })?;
    }
    if UNSUPPORTED.contains(&driver) {
        return Err(ApiError::not_implemented(&format!(
            "the {driver:?} logging driver (HostConfig.LogConfig.Type; json-file and none are available)"
        )));
    }
    if driver != DEFAULT_DRIVER {
        return Err(ApiError::bad_request(format!(
            "logger: no log driver named '{driver}' is registered"
        )));
    }
    for key in opts.keys() {
        match key.as_str() {
            "mode" | "max-buffer-size" | "max-file" | "max-size" | "compress" | "labels"
            | "labels-regex" | "env" | "env-regex" | "tag" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown log opt '{other}' for json-file log driver"
                )))
            }
        }
    }
    Ok(())
}

/// At start: the driver and its values, as docker's json-file driver
/// reads them (`max-size` in decimal units and positive, `max-file` at
/// least 1, `compress` only with rotation). A bad value is docker's
/// "failed to initialize logging driver" (a 500 of the start).
pub(crate) fn driver(create: &ContainerCreateBody) -> Result<LogDriver, ApiError> {
    let log = create
        .host_config
        .as_ref()
        .and_then(|h| h.log_config.as_ref());
    let failed = |msg: String| {
        ApiError::new(
            ErrorKind::Internal,
            format!("failed to initialize logging driver: {msg}"),
        )
    };
    let Some(HostConfigLogConfig { typ, config }) = log else {
        return Ok(LogDriver::JsonFile {
            max_size: 0,
            max_files: 1,
        });
    };
    match typ.as_deref().unwrap_or("") {
        NONE => return Ok(LogDriver::None),
        "" | DEFAULT_DRIVER => {}
        other => return Err(failed(format!("no log driver named '{other}'"))),
    }
    let empty = Default::default();
    let opts = config.as_ref().unwrap_or(&empty);
    let mut max_size = None;
    if let Some(v) = opts.get("max-size") {
        let n = parse_size(v, Units::Decimal).map_err(failed)?;
        if n <= 0 {
            return Err(failed("max-size must be a positive number".into()));
        }
        max_size = Some(n as u64);
    }
    let mut max_files = 1;
    if let Some(v) = opts.get("max-file") {
        let n: i64 = v.parse().map_err(|_| {
            failed(format!(
                "strconv.Atoi: parsing {v:?}: invalid syntax (max-file is a whole number)"
            ))
        })?;
        if n < 1 {
            return Err(failed("max-file cannot be less than 1".into()));
        }
        max_files = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(v) = opts.get("compress") {
        let compress = parse_bool(v).ok_or_else(|| {
            failed(format!(
                "strconv.ParseBool: parsing {v:?}: invalid syntax (compress is true or false)"
            ))
        })?;
        if compress && (max_files == 1 || max_size.is_none()) {
            return Err(failed(
                "compress cannot be true when max-file is less than 2 or max-size is not set"
                    .into(),
            ));
        }
    }
    Ok(LogDriver::JsonFile {
        max_size: max_size.unwrap_or(0),
        max_files,
    })
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Units {
    /// go-units' `FromHumanSize`: k is 1000.
    Decimal,
    /// go-units' `RAMInBytes`: k is 1024.
    Binary,
}

/// go-units' size parser: a number (fractions allowed), an optional
/// space, and an optional unit `k m g t p` with an optional `b`, `ib` or
/// a lone `b` (bytes), case-insensitive: `10m`, `1.5 GB`, `512KiB`, `100`.
fn parse_size(s: &str, units: Units) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{s}'");
    let sep = s
        .rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .ok_or_else(invalid)?;
    let (num, suffix) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    let size: f64 = num.parse().map_err(|_| invalid())?;
    if size < 0.0 || !size.is_finite() {
        return Err(invalid());
    }
    let sfx = suffix.to_ascii_lowercase();
    let bad_suffix = || format!("invalid suffix: '{sfx}'");
    if sfx.is_empty() || sfx == "b" {
        return Ok(size as i64);
    }
    if sfx.len() > 3 {
        return Err(bad_suffix());
    }
    let power = match sfx.as_bytes()[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return Err(bad_suffix()),
    };
    if !matches!(&sfx[1..], "" | "b" | "ib") {
        return Err(bad_suffix());
    }
    let base: f64 = match units {
        Units::Decimal => 1000.0,
        Units::Binary => 1024.0,
    };
    Ok((size * base.powi(power)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::HostConfig;

    fn body(typ: &str, pairs: &[(&str, &str)]) -> ContainerCreateBody {
        ContainerCreateBody {
            host_config: Some(HostConfig {
                log_config: Some(HostConfigLogConfig {
                    typ: Some(typ.to_string()),
                    config: Some(
                        pairs
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    ),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn sizes_as_go_units() {
        assert_eq!(parse_size("10m", Units::Decimal), Ok(10_000_000));
        assert_eq!(parse_size("10m", Units::Binary), Ok(10 << 20));
        assert_eq!(parse_size("1.5 GB", Units::Decimal), Ok(1_500_000_000));
        assert_eq!(parse_size("512KiB", Units::Binary), Ok(512 << 10));
        assert_eq!(parse_size("100", Units::Decimal), Ok(100));
        assert_eq!(parse_size("100b", Units::Decimal), Ok(100));
        assert!(parse_size("x", Units::Decimal).is_err());
        assert!(parse_size("10q", Units::Decimal).is_err());
        assert!(parse_size("10mbb", Units::Decimal).is_err());
        assert!(parse_size("-1", Units::Decimal).is_err());
    }

    #[test]
    fn create_fills_defaults_and_checks_names_only() {
        // docker-py's test_valid_no_log_driver_specified.
        let mut b = body("", &[("max-file", "100")]);
        normalise(&mut b).unwrap();
        let log = b.host_config.unwrap().log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        // Values are the start's business.
        normalise(&mut body("json-file", &[("max-size", "lots")])).unwrap();
        let e = normalise(&mut body("json-file", &[("bogus", "1")])).unwrap_err();
        assert_eq!(
            e.message,
            "unknown log opt 'bogus' for json-file log driver"
        );
        let e = normalise(&mut body("asdf", &[])).unwrap_err();
        assert_eq!(
            e.message,
            "logger: no log driver named 'asdf' is registered"
        );
        assert_eq!(normalise(&mut body("local", &[])).unwrap_err().status, 501);
        normalise(&mut body("none", &[("anything", "1")])).unwrap();
        assert!(normalise(&mut body("json-file", &[("mode", "sometimes")])).is_err());
        assert!(normalise(&mut body("json-file", &[("max-buffer-size", "1m")])).is_err());
        normalise(&mut body(
            "json-file",
            &[("mode", "non-blocking"), ("max-buffer-size", "1m")],
        ))
        .unwrap();
    }

    #[test]
    fn start_reads_values_as_json_file() {
        let d = |pairs: &[(&str, &str)]| driver(&body("json-file", pairs));
        assert_eq!(
            d(&[("max-file", "100")]).unwrap(),
            LogDriver::JsonFile {
                max_size: 0,
                max_files: 100
            }
        );
        assert_eq!(
            d(&[("max-size", "1k"), ("max-file", "3")]).unwrap(),
            LogDriver::JsonFile {
                max_size: 1000,
                max_files: 3
            }
        );
        assert!(d(&[("max-size", "0")]).is_err());
        assert!(d(&[("max-file", "0")]).is_err());
        assert!(d(&[("max-file", "x")]).is_err());
        assert!(d(&[("compress", "true")]).is_err());
        d(&[("compress", "true"), ("max-size", "1m"), ("max-file", "2")]).unwrap();
        assert_eq!(driver(&body("none", &[])).unwrap(), LogDriver::None);
        assert_eq!(
            driver(&ContainerCreateBody::default()).unwrap(),
            LogDriver::JsonFile {
                max_size: 0,
                max_files: 1
            }
        );
    }
}
