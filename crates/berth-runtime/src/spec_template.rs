//! The config.json that `berth-runtime spec` writes: runc's example spec,
//! so tools and tests that edit runc's template work unchanged.

use serde_json::{json, Value};

pub fn default_spec(rootless: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = json!({
        "ociVersion": berth_container::state::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    // As runc: a cgroup namespace only where the host is pure cgroup v2.
    let pure_v2 = matches!(
        berth_cgroups::detect(),
        Ok(berth_cgroups::Layout::V2 { .. })
    );
    if !pure_v2 {
        let ns = spec["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces is an array");
        ns.retain(|n| n["type"] != "cgroup");
    }
    if rootless {
        make_rootless(&mut spec);
    }
    spec
}

/// What runc's `spec --rootless` changes: a user namespace mapping root to
/// the caller, no network namespace, /sys bound instead of mounted, no
/// devpts gid and no cgroup resources.
fn make_rootless(spec: &mut Value) {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let linux = &mut spec["linux"];
    linux["resources"] = Value::Null;
    linux
        .as_object_mut()
        .expect("linux is an object")
        .remove("resources");
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    let ns = linux["namespaces"]
        .as_array_mut()
        .expect("namespaces is an array");
    ns.retain(|n| n["type"] != "network");
    ns.push(json!({"type": "user"}));
    let mounts = spec["mounts"].as_array_mut().expect("mounts is an array");
    for m in mounts.iter_mut() {
        if m["type"] == "devpts" {
            let opts = m["options"].as_array_mut().expect("options");
            opts.retain(|o| o != "gid=5");
        }
        if m["type"] == "sysfs" {
            *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_as_an_oci_spec() {
        for rootless in [false, true] {
            let bytes = serde_json::to_vec(&default_spec(rootless)).unwrap();
            let spec = berth_container::config::parse_spec(&bytes).unwrap();
            berth_container::config::validate(&spec, std::path::Path::new("config.json")).unwrap();
        }
    }
}
