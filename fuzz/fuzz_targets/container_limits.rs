//! `POST /containers/create` with every number of the request chosen by
//! the input (memory, swap, CPU shares/quota/period/realtime, nano CPUs,
//! pids, shm, OOM score, blkio weights and throttles, ulimits, tmpfs
//! sizes and modes, console size, restart retries, healthcheck durations,
//! stop timeout): the JSON mutations of `container_create` rarely reach
//! the extremes, here each number is 0, -1, 1, i64::MIN/MAX, 2^62, 6 MiB,
//! 10^6 or any 8 bytes. The create handler's checks and what start derives
//! end in a container or an error, never a panic or overflow.
#![no_main]

use std::sync::OnceLock;

use berth_image::ImageConfig;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fn image() -> &'static ImageConfig {
    static IMAGE: OnceLock<ImageConfig> = OnceLock::new();
    IMAGE.get_or_init(|| {
        ImageConfig::parse(
            br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},
            "rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .expect("the fixed image config parses")
    })
}

/// The input as a stream of numbers.
struct Numbers<'a>(&'a [u8]);

impl Numbers<'_> {
    fn next(&mut self) -> Option<i64> {
        let (&pick, rest) = self.0.split_first()?;
        self.0 = rest;
        // mod 9: 0 to 7 a fixed value, 8 the next 8 bytes.
        Some(match pick % 9 {
            0 => 0,
            1 => -1,
            2 => 1,
            3 => i64::MAX,
            4 => i64::MIN,
            5 => 1 << 62,
            6 => 6 << 20,
            7 => 1_000_000,
            _ => {
                let n = self.0.len().min(8);
                let mut b = [0u8; 8];
                b[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                i64::from_le_bytes(b)
            }
        })
    }

    fn value(&mut self) -> Value {
        self.next().map_or(Value::Null, Value::from)
    }

    /// An unsigned field (serde refuses negatives there).
    fn unsigned(&mut self) -> Value {
        self.next().map_or(Value::Null, |n| Value::from(n as u64))
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let mut n = Numbers(data);
    let mut hc = json!({
        "Privileged": flags & 1 != 0,
        "OomKillDisable": flags & 2 != 0,
        "NetworkMode": if flags & 4 != 0 { "host" } else { "bridge" },
    });
    for key in [
        "Memory",
        "MemorySwap",
        "MemoryReservation",
        "MemorySwappiness",
        "CpuShares",
        "CpuPeriod",
        "CpuQuota",
        "CpuRealtimePeriod",
        "CpuRealtimeRuntime",
        "NanoCpus",
        "PidsLimit",
        "CpuCount",
        "CpuPercent",
        "IOMaximumIOps",
        "IOMaximumBandwidth",
        "OomScoreAdj",
        "ShmSize",
    ] {
        hc[key] = n.value();
    }
    hc["BlkioWeight"] = n.next().map_or(Value::Null, |v| Value::from(v as u16));
    hc["ConsoleSize"] = json!([n.unsigned(), n.unsigned()]);
    hc["Ulimits"] = json!([{"Name": "nofile", "Soft": n.value(), "Hard": n.value()},
                           {"Name": "rtprio", "Soft": n.value(), "Hard": n.value()}]);
    hc["BlkioWeightDevice"] = json!([{"Path": "/dev/loop0", "Weight": n.unsigned()}]);
    hc["BlkioDeviceReadBps"] = json!([{"Path": "/dev/loop0", "Rate": n.value()}]);
    hc["BlkioDeviceWriteIOps"] = json!([{"Path": "/dev/loop0", "Rate": n.value()}]);
    hc["Mounts"] = json!([{"Type": "tmpfs", "Target": "/t",
                           "TmpfsOptions": {"SizeBytes": n.value(), "Mode": n.value()}}]);
    hc["Tmpfs"] = json!({"/u": format!("size={},mode={:o}", n.value(), n.next().unwrap_or(0))});
    hc["RestartPolicy"] = json!({"Name": "on-failure", "MaximumRetryCount": n.value()});
    let body = json!({
        "Image": "x",
        "Tty": flags & 8 != 0,
        "StopTimeout": n.value(),
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": n.value(), "Timeout": n.value(),
                        "StartPeriod": n.value(), "StartInterval": n.value(),
                        "Retries": n.value()},
        "HostConfig": hc,
    });
    let bytes = serde_json::to_vec(&body).unwrap();
    let _ = berth_daemon::fuzzing::container_create("", &bytes, image());
});
