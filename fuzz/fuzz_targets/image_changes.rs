//! `docker commit` and `docker import` input: the first line is the commit's
//! Config body (JSON), the others `--change` instructions (`CMD ...`,
//! `ENV ...`, `EXPOSE ...`). Applying the changes and merging the result
//! with a container's config end in a config or an error, never a panic.
#![no_main]

use berth_image::changes::apply_changes;
use berth_image::commit::merge_config;
use berth_image::config::RunConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let (body, rest) = input.split_once('\n').unwrap_or((input, ""));
    let mut config = match body.trim() {
        "" => RunConfig::default(),
        b => match serde_json::from_str::<Option<RunConfig>>(b) {
            Ok(c) => c.unwrap_or_default(),
            Err(_) => return,
        },
    };
    let changes: Vec<String> = rest.lines().map(str::to_string).collect();
    if apply_changes(&mut config, &changes).is_err() {
        return;
    }
    let container: RunConfig = serde_json::from_str(
        r#"{"User":"www","Env":["PATH=/bin","A=1"],"Cmd":["/bin/sh"],"WorkingDir":"/w",
            "ExposedPorts":{"80/tcp":{}},"Volumes":{"/data":{}},"Labels":{"a":"b"},
            "StopSignal":"SIGTERM"}"#,
    )
    .unwrap();
    merge_config(&mut config, &container);
    let _ = serde_json::to_vec(&config);
});
