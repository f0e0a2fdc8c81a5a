//! `version`, `info`, `system df`, `events`.

use std::io::Write;

use berth_client::{Body, Query, MAX_API_VERSION};
use clap::Args;
use serde_json::{json, Value};

use crate::output::Format;
use crate::template::Template;
use crate::units::{human_size_prec, parse_rfc3339};

fn human_size(v: f64) -> String {
    // `system df` uses units.HumanSize: 4 significant digits.
    human_size_prec(v, 4)
}
use crate::Ctx;

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format the output using the given Go template
    #[arg(short, long, default_value = "")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Format the output using the given Go template
    #[arg(short, long, default_value = "")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
    /// Pretty-print with a Go template
    #[arg(long, default_value = "")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short, long, action = crate::cli::many())]
    pub filter: Vec<String>,
    /// Format the output using the given Go template
    #[arg(long, default_value = "")]
    pub format: String,
    /// Show all events created since timestamp
    #[arg(long, default_value = "")]
    pub since: String,
    /// Stream events until this timestamp
    #[arg(long, default_value = "")]
    pub until: String,
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn version(ctx: &Ctx, a: VersionArgs) -> anyhow::Result<()> {
    // The client half never needs the daemon: print it even when none answers.
    let api = ctx.client.api_version().map(str::to_string);
    let server = match &api {
        Ok(_) => ctx.client.get_json("/version").map_err(anyhow::Error::from),
        Err(_) => Err(anyhow::anyhow!("no daemon")),
    };
    let client = json!({
        "Platform": {"Name": "berth"},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": api.as_deref().unwrap_or(MAX_API_VERSION),
        "DefaultAPIVersion": MAX_API_VERSION,
        "GoVersion": "",
        "GitCommit": "",
        "BuildTime": "",
        "Os": std::env::consts::OS,
        "Arch": go_arch(std::env::consts::ARCH),
        "Experimental": false,
        "Context": "default",
    });
    let data = json!({"Client": client, "Server": server.as_ref().ok()});
    let mut out = ctx.out();
    if !a.format.is_empty() {
        let t = Template::parse(&a.format.replace("\\n", "\n").replace("\\t", "\t"))?;
        writeln!(out, "{}", t.render(&data)?)?;
    } else {
        let c = &data["Client"];
        writeln!(out, "Client:")?;
        writeln!(out, " Version:           {}", s(&c["Version"]))?;
        writeln!(out, " API version:       {}", s(&c["ApiVersion"]))?;
        writeln!(out, " OS/Arch:           {}/{}", s(&c["Os"]), s(&c["Arch"]))?;
        writeln!(out, " Context:           default")?;
        if let Ok(sv) = &server {
            writeln!(out)?;
            let name = s(&sv["Platform"]["Name"]);
            writeln!(
                out,
                "Server:{}{name}",
                if name.is_empty() { "" } else { " " }
            )?;
            writeln!(out, " Engine:")?;
            writeln!(out, "  Version:          {}", s(&sv["Version"]))?;
            writeln!(
                out,
                "  API version:      {} (minimum version {})",
                s(&sv["ApiVersion"]),
                s(&sv["MinAPIVersion"])
            )?;
            for (k, label) in [
                ("GoVersion", "Go version"),
                ("GitCommit", "Git commit"),
                ("BuildTime", "Built"),
            ] {
                if !s(&sv[k]).is_empty() {
                    writeln!(out, "  {:<17} {}", format!("{label}:"), s(&sv[k]))?;
                }
            }
            writeln!(
                out,
                "  OS/Arch:          {}/{}",
                s(&sv["Os"]),
                s(&sv["Arch"])
            )?;
            writeln!(
                out,
                "  Experimental:     {}",
                sv["Experimental"].as_bool().unwrap_or(false)
            )?;
            for comp in sv["Components"].as_array().into_iter().flatten() {
                if comp["Name"] == "Engine" {
                    continue;
                }
                writeln!(out, " {}:", s(&comp["Name"]))?;
                writeln!(out, "  Version:          {}", s(&comp["Version"]))?;
                if let Some(d) = comp["Details"].as_object() {
                    for (k, v) in d {
                        writeln!(out, "  {:<17} {}", format!("{k}:"), s(v))?;
                    }
                }
            }
        }
    }
    drop(out);
    if let Err(e) = server {
        if let Err(e) = api {
            return Err(e.into());
        }
        return Err(e);
    }
    Ok(())
}

fn go_arch(a: &str) -> &str {
    match a {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn info(ctx: &Ctx, a: InfoArgs) -> anyhow::Result<()> {
    let i = ctx.client.get_json("/info")?;
    let mut out = ctx.out();
    if !a.format.is_empty() {
        let t = Template::parse(&a.format)?;
        writeln!(out, "{}", t.render(&i)?)?;
        return Ok(());
    }
    writeln!(out, "Client:\n Context:    default\n Debug Mode: false\n")?;
    writeln!(out, "Server:")?;
    writeln!(out, " Containers: {}", s(&i["Containers"]))?;
    writeln!(out, "  Running: {}", s(&i["ContainersRunning"]))?;
    writeln!(out, "  Paused: {}", s(&i["ContainersPaused"]))?;
    writeln!(out, "  Stopped: {}", s(&i["ContainersStopped"]))?;
    writeln!(out, " Images: {}", s(&i["Images"]))?;
    writeln!(out, " Server Version: {}", s(&i["ServerVersion"]))?;
    writeln!(out, " Storage Driver: {}", s(&i["Driver"]))?;
    writeln!(out, " Logging Driver: {}", s(&i["LoggingDriver"]))?;
    writeln!(out, " Cgroup Driver: {}", s(&i["CgroupDriver"]))?;
    writeln!(out, " Cgroup Version: {}", s(&i["CgroupVersion"]))?;
    if let Some(r) = i["Runtimes"].as_object() {
        let names: Vec<&str> = r.keys().map(String::as_str).collect();
        writeln!(out, " Runtimes: {}", names.join(" "))?;
    }
    writeln!(out, " Default Runtime: {}", s(&i["DefaultRuntime"]))?;
    writeln!(out, " Kernel Version: {}", s(&i["KernelVersion"]))?;
    writeln!(out, " Operating System: {}", s(&i["OperatingSystem"]))?;
    writeln!(out, " OSType: {}", s(&i["OSType"]))?;
    writeln!(out, " Architecture: {}", s(&i["Architecture"]))?;
    writeln!(out, " CPUs: {}", s(&i["NCPU"]))?;
    let mem = i["MemTotal"].as_f64().unwrap_or(0.0);
    writeln!(out, " Total Memory: {}", crate::units::bytes_size(mem))?;
    writeln!(out, " Name: {}", s(&i["Name"]))?;
    writeln!(out, " ID: {}", s(&i["ID"]))?;
    writeln!(out, " Docker Root Dir: {}", s(&i["DockerRootDir"]))?;
    for w in i["Warnings"].as_array().into_iter().flatten() {
        writeln!(std::io::stderr(), "{}", s(w))?;
    }
    Ok(())
}

/// `size (pct%)` as docker's df prints reclaimable space.
fn reclaimable(reclaim: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            human_size(reclaim as f64),
            reclaim * 100 / total
        )
    } else {
        human_size(reclaim as f64)
    }
}

pub fn df(ctx: &Ctx, a: DfArgs) -> anyhow::Result<()> {
    let d = ctx.client.get_json("/system/df")?;
    let num = |v: &Value| v.as_i64().unwrap_or(0);
    let arr = |k: &str| d[k].as_array().cloned().unwrap_or_default();
    let (images, containers, volumes, cache) = (
        arr("Images"),
        arr("Containers"),
        arr("Volumes"),
        arr("BuildCache"),
    );
    let layers = num(&d["LayersSize"]);
    let active_images = images.iter().filter(|i| num(&i["Containers"]) > 0).count();
    let used: i64 = images
        .iter()
        .filter(|i| num(&i["Containers"]) > 0)
        .map(|i| num(&i["Size"]) - num(&i["SharedSize"]).max(0))
        .sum();
    let c_size: i64 = containers.iter().map(|c| num(&c["SizeRw"])).sum();
    let c_reclaim: i64 = containers
        .iter()
        .filter(|c| c["State"] != "running")
        .map(|c| num(&c["SizeRw"]))
        .sum();
    let c_active = containers
        .iter()
        .filter(|c| c["State"] == "running")
        .count();
    let v_size: i64 = volumes
        .iter()
        .map(|v| num(&v["UsageData"]["Size"]).max(0))
        .sum();
    let v_reclaim: i64 = volumes
        .iter()
        .filter(|v| num(&v["UsageData"]["RefCount"]) == 0)
        .map(|v| num(&v["UsageData"]["Size"]).max(0))
        .sum();
    let v_active = volumes
        .iter()
        .filter(|v| num(&v["UsageData"]["RefCount"]) > 0)
        .count();
    let b_size: i64 = cache.iter().map(|b| num(&b["Size"])).sum();
    let b_reclaim: i64 = cache
        .iter()
        .filter(|b| b["InUse"] != true && b["Shared"] != true)
        .map(|b| num(&b["Size"]))
        .sum();
    let b_active = cache.iter().filter(|b| b["InUse"] == true).count();
    let rows = vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(), "Active": active_images.to_string(),
               "Size": human_size(layers as f64), "Reclaimable": reclaimable(layers - used, layers)}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(), "Active": c_active.to_string(),
               "Size": human_size(c_size as f64), "Reclaimable": reclaimable(c_reclaim, c_size)}),
        json!({"Type": "Local Volumes", "TotalCount": volumes.len().to_string(), "Active": v_active.to_string(),
               "Size": human_size(v_size as f64), "Reclaimable": reclaimable(v_reclaim, v_size)}),
        json!({"Type": "Build Cache", "TotalCount": cache.len().to_string(), "Active": b_active.to_string(),
               "Size": human_size(b_size as f64), "Reclaimable": human_size(b_reclaim as f64)}),
    ];
    if a.verbose {
        return df_verbose(ctx, &d, &a.format);
    }
    let f = Format::new(
        &a.format,
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
    )?;
    f.print(
        &[
            ("Type", "TYPE"),
            ("TotalCount", "TOTAL"),
            ("Active", "ACTIVE"),
            ("Size", "SIZE"),
            ("Reclaimable", "RECLAIMABLE"),
        ],
        &rows,
        &mut ctx.out(),
    )
}

/// `docker system df -v`: a table per kind of object, under docker's
/// section titles (its formatter's verbose contexts, field for field).
fn df_verbose(ctx: &Ctx, d: &Value, format: &str) -> anyhow::Result<()> {
    if !format.is_empty() && format != "table" {
        anyhow::bail!("'system df -v --format' is not available yet in this version of berth");
    }
    let num = |v: &Value| v.as_i64().unwrap_or(0);
    let n_a = |v: i64, s: String| if v == -1 { "N/A".to_string() } else { s };
    let human4 = |v: i64| human_size_prec(v as f64, 4);
    let mut out = ctx.out();

    writeln!(out, "Images space usage:\n")?;
    let mut rows = Vec::new();
    for i in d["Images"].as_array().into_iter().flatten() {
        // Only the first tag, as docker; `<none>` for an untagged image.
        let tags = i["RepoTags"].as_array().cloned().unwrap_or_default();
        let first = tags.first().and_then(Value::as_str).unwrap_or("");
        let (repo, tag) = match crate::images::split_tag(first) {
            (r, t) if !first.is_empty() && first != "<none>:<none>" && !t.is_empty() => {
                (crate::images::familiar(r), t.to_string())
            }
            _ => ("<none>".to_string(), "<none>".to_string()),
        };
        let size = if i["VirtualSize"].is_i64() {
            num(&i["VirtualSize"])
        } else {
            num(&i["Size"])
        };
        let shared = num(&i["SharedSize"]);
        let containers = num(&i["Containers"]);
        rows.push(json!({
            "Repository": repo,
            "Tag": tag,
            "ID": crate::images::short_id(i["Id"].as_str().unwrap_or(""), false),
            "CreatedSince": crate::units::ago(i["Created"].as_f64().unwrap_or(0.0)),
            "VirtualSize": human4(size),
            "SharedSize": n_a(shared, human4(shared)),
            "UniqueSize": n_a(if size == -1 { -1 } else { shared }, human4(size - shared)),
            "Containers": n_a(containers, containers.to_string()),
        }));
    }
    Format::new(
        "",
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.VirtualSize}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
    )?
    .print(
        &[
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("ID", "IMAGE ID"),
            ("CreatedSince", "CREATED"),
            ("VirtualSize", "SIZE"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
            ("Containers", "CONTAINERS"),
        ],
        &rows,
        &mut out,
    )?;

    writeln!(out, "\nContainers space usage:\n")?;
    let rows: Vec<Value> = d["Containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            // docker leaves the virtual size out here.
            let mut c = c.clone();
            c["SizeRootFs"] = json!(0);
            crate::containers::container_row(&c, true)
        })
        .collect();
    Format::new(
        "",
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
    )?
    .print(crate::containers::PS_HEADERS, &rows, &mut out)?;

    writeln!(out, "\nLocal Volumes space usage:\n")?;
    let rows: Vec<Value> = d["Volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let u = &v["UsageData"];
            let (links, size) = if u.is_object() {
                (num(&u["RefCount"]).to_string(), human4(num(&u["Size"])))
            } else {
                ("N/A".to_string(), "N/A".to_string())
            };
            json!({"Name": v["Name"].as_str().unwrap_or(""), "Links": links, "Size": size})
        })
        .collect();
    Format::new("", "table {{.Name}}\t{{.Links}}\t{{.Size}}")?.print(
        &[
            ("Name", "VOLUME NAME"),
            ("Links", "LINKS"),
            ("Size", "SIZE"),
        ],
        &rows,
        &mut out,
    )?;

    let cache = d["BuildCache"].as_array().cloned().unwrap_or_default();
    let total = if d["BuilderSize"].is_i64() {
        num(&d["BuilderSize"])
    } else {
        cache.iter().map(|b| num(&b["Size"])).sum()
    };
    writeln!(out, "\nBuild cache usage: {}\n", human4(total))?;
    let since = |v: &Value| {
        v.as_str()
            .and_then(parse_rfc3339)
            .map(crate::units::ago)
            .unwrap_or_default()
    };
    let rows: Vec<Value> = cache
        .iter()
        .map(|b| {
            let mut id = crate::images::short_id(b["ID"].as_str().unwrap_or(""), false);
            if b["InUse"] == true {
                id.push('*');
            }
            json!({
                "ID": id,
                "CacheType": b["Type"].as_str().unwrap_or(""),
                "Size": human_size_prec(num(&b["Size"]) as f64, 3),
                "CreatedSince": since(&b["CreatedAt"]),
                "LastUsedSince": since(&b["LastUsedAt"]),
                "UsageCount": num(&b["UsageCount"]).to_string(),
                "Shared": (b["Shared"] == true).to_string(),
            })
        })
        .collect();
    Format::new(
        "",
        "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
    )?
    .print(
        &[
            ("ID", "CACHE ID"),
            ("CacheType", "CACHE TYPE"),
            ("Size", "SIZE"),
            ("CreatedSince", "CREATED"),
            ("LastUsedSince", "LAST USED"),
            ("UsageCount", "USAGE"),
            ("Shared", "SHARED"),
        ],
        &rows,
        &mut out,
    )
}

/// docker's `filters` query parameter: `{"key":{"value":true}}`.
pub fn filters_json(filters: &[String]) -> anyhow::Result<String> {
    let mut m = serde_json::Map::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))?;
        let e = m
            .entry(k.trim().to_lowercase())
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(o) = e {
            o.insert(v.to_string(), Value::Bool(true));
        }
    }
    Ok(Value::Object(m).to_string())
}

/// A `--since`/`--until` value as the API wants it: unix seconds, from
/// seconds, RFC 3339, or a Go duration (`10m`) before now.
pub fn api_time(v: &str) -> anyhow::Result<String> {
    if v.is_empty() || v.parse::<f64>().is_ok() {
        return Ok(v.to_string());
    }
    if let Some(t) = parse_rfc3339(v) {
        return Ok(format!("{t:.9}"));
    }
    if let Some(d) = parse_go_duration(v) {
        return Ok(format!("{:.9}", crate::units::now() - d));
    }
    anyhow::bail!("invalid time {v:?}: use unix seconds, RFC 3339 or a duration like 10m")
}

/// `1h30m`, `10s`, `1.5h`.
pub fn parse_go_duration(v: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut num = String::new();
    let mut chars = v.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match unit.as_str() {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        any = true;
    }
    if !num.is_empty() || !any {
        return None;
    }
    Some(total)
}

pub fn events(ctx: &Ctx, a: EventsArgs) -> anyhow::Result<()> {
    let mut q = Query::new()
        .opt("since", &api_time(&a.since)?)
        .opt("until", &api_time(&a.until)?);
    if !a.filter.is_empty() {
        q = q.push("filters", filters_json(&a.filter)?);
    }
    let path = format!("/events{}", q.encode());
    let resp = ctx.client.request("GET", &path, &[], Body::Empty)?;
    let tmpl = if a.format.is_empty() {
        None
    } else {
        Some(Template::parse(&a.format)?)
    };
    let mut body = resp.body();
    let mut out = ctx.out();
    berth_client::stream::json_messages(&mut body, |ev| {
        let line = match &tmpl {
            Some(t) => t.render(&ev).map_err(std::io::Error::other)?,
            None => default_event_line(&ev),
        };
        writeln!(out, "{line}")?;
        out.flush()
    })
    .map_err(|e| ctx.client.io_error("reading events from", &path, e))?;
    Ok(())
}

fn default_event_line(ev: &Value) -> String {
    let nanos = ev["timeNano"].as_i64().unwrap_or(0);
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let t = crate::units::go_time_string(secs as f64);
    // `2006-01-02 15:04:05 +0000 UTC` -> `2006-01-02T15:04:05.000000000Z`.
    let stamp = format!("{}T{}.{frac:09}Z", &t[..10], &t[11..19]);
    let mut attrs: Vec<String> = ev["Actor"]["Attributes"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect())
        .unwrap_or_default();
    attrs.sort();
    let mut line = format!(
        "{stamp} {} {} {}",
        s(&ev["Type"]),
        s(&ev["Action"]),
        s(&ev["Actor"]["ID"])
    );
    if !attrs.is_empty() {
        line.push_str(&format!(" ({})", attrs.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_durations() {
        assert_eq!(
            filters_json(&["status=exited".into(), "label=a=b".into()]).unwrap(),
            r#"{"label":{"a=b":true},"status":{"exited":true}}"#
        );
        assert!(filters_json(&["nope".into()]).is_err());
        assert_eq!(parse_go_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(api_time("12").unwrap(), "12");
        assert!(api_time("yesterday").is_err());
    }
}
