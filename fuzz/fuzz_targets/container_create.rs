//! `POST /containers/create`: the JSON body (and `?name=`, the input's
//! first line) for a fixed image. The create handler's parsing and checks,
//! and what start derives from the stored request without a rootfs (the
//! OCI spec's plan, resources, seccomp profile, mounts, namespaces; the log
//! driver; the healthcheck) end in a container or an error, never a panic.
#![no_main]

use std::sync::OnceLock;

use berth_image::ImageConfig;
use libfuzzer_sys::fuzz_target;

fn image() -> &'static ImageConfig {
    static IMAGE: OnceLock<ImageConfig> = OnceLock::new();
    IMAGE.get_or_init(|| {
        ImageConfig::parse(
            br#"{"architecture":"amd64","os":"linux",
            "config":{"User":"www","Env":["PATH=/usr/bin:/bin","LANG=C"],
              "Entrypoint":["/entry.sh"],"Cmd":["serve","--port","80"],
              "WorkingDir":"/srv","ExposedPorts":{"80/tcp":{},"53/udp":{}},
              "Volumes":{"/data":{},"/var/log":{}},"StopSignal":"SIGQUIT",
              "Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":1000000000},
              "Labels":{"a":"b"}},
            "rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .expect("the fixed image config parses")
    })
}

fuzz_target!(|input: &[u8]| {
    let (name, body) = match input.iter().position(|b| *b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (&b""[..], input),
    };
    let Ok(name) = std::str::from_utf8(name) else {
        return;
    };
    let _ = berth_daemon::fuzzing::container_create(name, body, image());
});
