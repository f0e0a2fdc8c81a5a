#!/usr/bin/env bash
# Writes seed inputs for the fuzz targets into corpus/<target>/: small valid
# (and some hostile) examples the fuzzer mutates from. Needs python3; the
# Dockerfile seeds come from ../../shared/testdata (BuildKit's parser cases)
# when that directory exists, and a create body with docker's default
# seccomp profile from ../../shared/testdata/seccomp.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/{tar_apply,decompress,image_load,manifest,image_config,reference,dockerfile,challenge}
mkdir -p corpus/{dockerignore,dockerfile_words,container_limits,image_reference_filter,api_request,filters,events_query,build_query,registry_auth,archive_path,container_create,image_changes,dns_query}

testdata=../../shared/testdata/dockerfile-parser
if [ -d "$testdata" ]; then
	i=0
	for f in "$testdata"/testfiles/*/Dockerfile "$testdata"/testfiles-negative/*/Dockerfile; do
		i=$((i + 1))
		cp "$f" "corpus/dockerfile/buildkit-$i"
	done
fi

python3 - <<'EOF'
import base64, gzip, hashlib, io, json, os, struct, tarfile

H = "a" * 64

def write(target, name, data):
    with open(f"corpus/{target}/{name}", "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def tar(entries, fmt=tarfile.PAX_FORMAT):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            for k, v in e.items():
                if k not in ("name", "data"):
                    setattr(ti, k, v)
            data = e.get("data", b"")
            if ti.type == tarfile.REGTYPE:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return b.getvalue()

D, S, L = tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
C, F = tarfile.CHRTYPE, tarfile.FIFOTYPE

# Layer tars: the usual entry types, whiteouts, escapes, long names, replacements.
basic = tar([
    dict(name="etc", type=D, mode=0o755),
    dict(name="etc/passwd", data=b"root:x:0:0\n", mode=0o644, uid=1, gid=2, mtime=12345),
    dict(name="bin/sh", data=b"\x7fELF", mode=0o4755),
    dict(name="bin/ln", type=L, linkname="bin/sh"),
    dict(name="lib", type=S, linkname="/usr/lib"),
])
write("tar_apply", "basic", basic)
write("tar_apply", "whiteouts", tar([
    dict(name="a/.wh..wh..opq"), dict(name="a/.wh.b"), dict(name="c/.wh.d"),
    dict(name="dev/null", type=C, devmajor=1, devminor=3), dict(name="p", type=F),
]))
write("tar_apply", "escape", tar([
    dict(name="../x", data=b"x"), dict(name="/abs", data=b"y"),
    dict(name="s", type=S, linkname="../../"), dict(name="s/z", data=b"z"),
    dict(name="h", type=L, linkname="../canary"), dict(name="./a/../../b", data=b"b"),
]))
write("tar_apply", "longnames", tar([
    dict(name="d/" + "n" * 200, data=b"q"),
    dict(name="l", type=S, linkname="t" * 300),
    dict(name="x", data=b"1", pax_headers={
        "SCHILY.xattr.user.k": "v",
        "SCHILY.xattr.security.capability": "\x01\x00\x00\x02",
    }),
]))
write("tar_apply", "gnu", tar([
    dict(name="g/" + "m" * 150, data=b"gnu"), dict(name="g/s", type=S, linkname="k" * 120),
], fmt=tarfile.GNU_FORMAT))
write("tar_apply", "replace", tar([
    dict(name="f", data=b"1"), dict(name="f", type=D), dict(name="f/x", data=b"2"),
    dict(name="f", data=b"3"), dict(name="f", type=S, linkname="/"),
]))
write("decompress", "plain", basic)
write("decompress", "gz", gzip.compress(basic))

# docker-archive and OCI-archive tars of one small image.
layer = tar([dict(name="hello", data=b"hi\n")])
ld = hashlib.sha256(layer).hexdigest()
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello"]},
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + ld]}}).encode()
cd = hashlib.sha256(cfg).hexdigest()
man = json.dumps([{"Config": cd + ".json", "RepoTags": ["x:1"], "Layers": [ld + "/layer.tar"]}])
write("image_load", "docker", tar([
    dict(name=cd + ".json", data=cfg), dict(name=ld + "/layer.tar", data=layer),
    dict(name="manifest.json", data=man.encode()),
    dict(name="repositories", data=json.dumps({"x": {"1": ld}}).encode()),
]))
oci_manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": "sha256:" + cd, "size": len(cfg)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": "sha256:" + ld, "size": len(layer)}],
}).encode()
md = hashlib.sha256(oci_manifest).hexdigest()
index = json.dumps({"schemaVersion": 2, "manifests": [{
    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + md,
    "size": len(oci_manifest), "annotations": {"org.opencontainers.image.ref.name": "1"}}]})
write("image_load", "oci", tar([
    dict(name="oci-layout", data=b'{"imageLayoutVersion":"1.0.0"}'),
    dict(name="index.json", data=index.encode()),
    dict(name="blobs/sha256/" + cd, data=cfg), dict(name="blobs/sha256/" + ld, data=layer),
    dict(name="blobs/sha256/" + md, data=oci_manifest),
]))

# Registry documents.
write("manifest", "oci", json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": "sha256:" + H, "size": 7023},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + H, "size": 32654, "urls": ["http://x"],
                "annotations": {"a": "b"}}],
    "annotations": {"k": "v"}}))
write("manifest", "list", json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                   "digest": "sha256:" + H, "size": 7143,
                   "platform": {"architecture": "arm64", "os": "linux", "variant": "v8",
                                "os.features": ["x"]}}]}))
write("manifest", "schema1", json.dumps({
    "schemaVersion": 1, "name": "a", "tag": "b", "fsLayers": [{"blobSum": "sha256:" + H}]}))
write("image_config", "docker", json.dumps({
    "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05.123456789Z",
    "config": {"User": "1:2", "ExposedPorts": {"80/tcp": {}}, "Env": ["A=b"],
               "Entrypoint": ["/bin/sh"], "Cmd": ["-c", "x"], "Volumes": {"/v": {}},
               "WorkingDir": "/w", "Labels": {"a": "b"}, "StopSignal": "SIGTERM",
               "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000}},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + H]},
    "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "/bin/sh",
                 "empty_layer": True}]}))
write("reference", "digest", "docker.io/library/busybox:1.36@sha256:" + H)
write("reference", "port", "localhost:5000/a/b-c_d.e:tag")
write("reference", "ipv6", "[::1]:5000/x/y@sha512:" + "b" * 128)
write("challenge", "bearer",
      'Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push"')
write("challenge", "two", 'Basic realm="x", Bearer realm=https://t,error="insufficient_scope"')

# Engine API requests. The create bodies are what the docker CLI (27.x, API
# 1.41) sent for `docker create`/`run` with many flags (captured from a
# socket); the first line of a container_create input is `?name=`.
CREATE_BODIES = {
    'cli_full': r'''{"Hostname":"h1","Domainname":"","User":"1000:1000","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"ExposedPorts":{"53/udp":{},"80/tcp":{},"9000/tcp":{},"9001/tcp":{},"9002/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=b"],"Cmd":["-c","echo hi"],"Healthcheck":{"Test":["CMD-SHELL","curl -f http://localhost/"],"Interval":30000000000,"Retries":3},"Image":"busybox:latest","Volumes":{"/anon":{}},"WorkingDir":"/srv","Entrypoint":["/bin/sh"],"OnBuild":null,"Labels":{"com.example":"1"},"StopSignal":"SIGTERM","HostConfig":{"Binds":["/tmp/x:/x:ro,z","named:/data"],"ContainerIDFile":"","LogConfig":{"Type":"json-file","Config":{"max-file":"3","max-size":"10m"}},"NetworkMode":"bridge","PortBindings":{"53/udp":[{"HostIp":"127.0.0.1","HostPort":"5353"}],"80/tcp":[{"HostIp":"","HostPort":"8080"}],"9000/tcp":[{"HostIp":"","HostPort":"9000"}],"9001/tcp":[{"HostIp":"","HostPort":"9001"}],"9002/tcp":[{"HostIp":"","HostPort":"9002"}]},"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":["CAP_NET_ADMIN"],"CapDrop":["CAP_MKNOD"],"CgroupnsMode":"","Dns":["8.8.8.8"],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":["db:10.0.0.5"],"GroupAdd":["audio"],"IpcMode":"shareable","Cgroup":"","Links":null,"OomScoreAdj":100,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":true,"SecurityOpt":["no-new-privileges"],"Tmpfs":{"/tmp":"rw,noexec,size=65536k"},"UTSMode":"","UsernsMode":"","ShmSize":134217728,"Sysctls":{"net.ipv4.ip_forward":"1"},"Isolation":"","CpuShares":512,"Memory":268435456,"NanoCpus":1500000000,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"0-1","CpusetMems":"","Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/mynull","CgroupPermissions":"rwm"}],"DeviceCgroupRules":["c 1:3 mr"],"DeviceRequests":null,"MemoryReservation":134217728,"MemorySwap":536870912,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":100,"Ulimits":[{"Name":"nofile","Hard":2048,"Soft":1024},{"Name":"nproc","Hard":512,"Soft":512}],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"Mounts":[{"Type":"tmpfs","Target":"/run","TmpfsOptions":{"SizeBytes":67108864}}],"MaskedPaths":null,"ReadonlyPaths":null,"Init":true},"NetworkingConfig":{"EndpointsConfig":{}}}''',
    'cli_privileged': r'''{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":true,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["sh"],"Image":"alpine","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"host","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"host","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"host","Privileged":true,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"host","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}''',
    'cli_mounts': r'''{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"StopTimeout":5,"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"none","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":["ALL"],"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"host","ShmSize":0,"Runtime":"runc","Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"/custom","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"Mounts":[{"Type":"bind","Source":"/tmp","Target":"/hosttmp","BindOptions":{"Propagation":"rshared"}},{"Type":"volume","Source":"v1","Target":"/v1","VolumeOptions":{"DriverConfig":{"Options":{"device":"tmpfs","type":"tmpfs"}}}}],"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}''',
}

for k, v in CREATE_BODIES.items():
    write("container_create", k, "web1\n" + v if k == "cli_full" else "\n" + v)
write("container_create", "empty", "\n{}")
mac_and_networks = json.dumps({
    "Image": "x", "MacAddress": "02:42:ac:11:00:09",
    "HostConfig": {"NetworkMode": "front", "Tmpfs": {"/run": "size=1g,mode=1777"},
                   "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
                   "Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse",
                                "CgroupPermissions": "rwm"}],
                   "DeviceCgroupRules": ["c 10:229 rwm", "b *:* r"],
                   "CpusetCpus": "0-1,3", "CpusetMems": "0", "MemorySwap": -1,
                   "BlkioWeightDevice": [{"Path": "/dev/loop0", "Weight": 300}],
                   "BlkioDeviceReadBps": [{"Path": "/dev/loop0", "Rate": 1048576}],
                   "CpuRealtimeRuntime": 950000, "CpuRealtimePeriod": 1000000,
                   "MemorySwappiness": 60, "OomKillDisable": True, "PidsLimit": -1,
                   "SecurityOpt": ["apparmor=unconfined", "label=disable",
                                   "seccomp=builtin", "writable-cgroups=true"],
                   "Sysctls": {"net.core.somaxconn": "1024", "kernel.msgmax": "65536"},
                   "CgroupnsMode": "private", "ConsoleSize": [24, 80],
                   "Mounts": [{"Type": "tmpfs", "Target": "/t",
                               "TmpfsOptions": {"SizeBytes": 1024, "Mode": 448}},
                              {"Type": "volume", "Source": "vol", "Target": "/v", "ReadOnly": True,
                               "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"}}}],
                   "LogConfig": {"Type": "json-file",
                                 "Config": {"max-size": "1k", "max-file": "2", "compress": "true",
                                            "mode": "non-blocking", "max-buffer-size": "4m"}}},
    "NetworkingConfig": {"EndpointsConfig": {"front": {"Aliases": ["a"],
                         "IPAMConfig": {"IPv4Address": "10.89.0.9"}}}},
    "Tty": True, "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000,
                                 "Timeout": 2000000, "StartPeriod": 0, "Retries": 2}})
write("container_create", "mac_and_networks", "\n" + mac_and_networks)
# A libFuzzer dictionary for container_create (-dict=corpus/container_create.dict):
# every key of the bodies above, and the values the create path branches on.
def keys(v, out):
    if isinstance(v, dict):
        for k, x in v.items():
            out.add(k)
            keys(x, out)
    elif isinstance(v, list):
        for x in v:
            keys(x, out)
    return out
words = set()
for body in list(CREATE_BODIES.values()) + [mac_and_networks]:
    words |= keys(json.loads(body), set())
words |= {"host", "container:", "private", "shareable", "none", "bridge", "default", "tmpfs",
          "bind", "volume", "npipe", "cluster", "rshared", "rslave", "rprivate", "seccomp=",
          "seccomp=unconfined", "apparmor=", "label=", "no-new-privileges", "systempaths=unconfined",
          "CAP_SYS_ADMIN", "ALL", "json-file", "local", "max-size", "max-file", "on-failure",
          "always", "unless-stopped", "CMD-SHELL", "NONE", "nofile", "nproc", "rw", "ro", "z",
          "nocopy", "size=", "mode=", "/dev/null", "/proc", "/sys", "net.", "kernel.", "fs.mqueue.",
          "SIGKILL", "0-3", "-1", "9223372036854775807", "-9223372036854775808", "1e400"}
with open("corpus/container_create.dict", "w") as f:
    for w in sorted(words):
        numeric = w.lstrip("-").replace("e", "").isdigit()
        f.write(json.dumps(w if numeric else json.dumps(w)) + "\n")
# .dockerignore files (all lines but the last) and a context path.
for i, (ignore, path) in enumerate([
    ("ignored\nDockerfile\n.dockerignore\n!ignored/subdir/excepted-file\n#*", "ignored/subdir/file"),
    ("**/*.go\n!vendor/**\nbuild/[a-c]?.o\n*.\\*", "src/pkg/main.go"),
    ("docs/[!a-m]*\n**/node_modules\n/tmp/*/x", "web/app/node_modules/left-pad/index.js"),
]):
    write("dockerignore", f"i-{i}", f"{ignore}\n{path}")
# A variable's value (first line) and Dockerfile words using it.
for i, (value, words) in enumerate([
    ("/usr/local/lib/python3.11/site-packages", "${V#*/} ${V##*/} ${V%/*} ${V%%/*}"),
    ("release-v1.2.3", "${V#release-} ${V:-default} ${V:+set} \"$V\" '${V}' ${EMPTY:-x}"),
    ("aaaaaaaaab", "${V#*a*a*b} ${V%[ab]?} ${V##[!x]*} ${NOPE:?unset}"),
]):
    write("dockerfile_words", f"w-{i}", f"{value}\n{words}")
# container_limits: a flags byte, then one pick per number (mod 9: 0 to 7 a
# fixed value, 8 the next 8 bytes, little-endian).
write("container_limits", "zeros", bytes(64))
write("container_limits", "docker_run", bytes([0]) + b"".join(
    bytes([9]) + struct.pack("<q", v) for v in [
        256 << 20, 512 << 20, 128 << 20, 60, 512, 100000, 50000, 1000000, 950000, 0, 100, 0, 0,
        0, 0, 100, 64 << 20, 300, 24, 80, 1024, 2048, 10, 20, 300, 1 << 20, 100, 1 << 20, 0o1777,
        1 << 20, 0o755, 3, 10, 30_000_000_000, 5_000_000_000, 0, 0, 3]))
write("container_limits", "extremes", bytes([3]) + bytes([3, 4, 5, 1, 2] * 12))
seccomp = "../../shared/testdata/seccomp/docker-default.json"
if os.path.exists(seccomp):
    body = json.loads(CREATE_BODIES["cli_mounts"])
    profile = json.dumps(json.load(open(seccomp)), separators=(",", ":"))
    body["HostConfig"]["SecurityOpt"] = ["seccomp=" + profile]
    write("container_create", "seccomp_profile", "\n" + json.dumps(body))

for i, line in enumerate([
    "/v1.41/containers/create?name=web1",
    "/v1.41/images/create?fromImage=docker.io%2Flibrary%2Falpine&platform=linux%2Farm64&tag=latest",
    "/v1.41/commit?author=&changes=CMD+%5B%22%2Fbin%2Fsh%22%5D&changes=ENV+A%3Db+C%3Dd&comment=msg&container=c1&repo=docker.io%2Flibrary%2Frepo&tag=tag",
    "/v1.41/containers/c1/archive?path=%2Fetc%2F.",
    "/v1.41/images/json?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D&all=1&shared-size=true",
    "/containers/json?all=1&limit=3&size=false&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D",
    "/v1.24/containers/abc%2Fdef/logs?stdout=1&stderr=1&since=1700000000&tail=10&timestamps=yes",
    "/v1.41/containers/x/resize?h=24&w=80",
    "/v1.41/containers/x/kill?signal=SIGKILL",
    "/v1.41/containers/x/stop?t=5&signal=TERM",
    "/v1.41/containers/x/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-p,ctrl-q",
]):
    write("api_request", f"line-{i}", line)
for i, (p, t) in enumerate([
    ("busybox", "busybox:latest"), ("busy*", "busybox:1.36"), ("example.com/*/*", "example.com/a/b:1"),
    ("b?sy*:*", "busybox:latest"), ("*/*:v?", "library/alpine:v3"), ("localhost:5000/*", "localhost:5000/x:y"),
]):
    write("image_reference_filter", f"r-{i}", f"{p}\n{t}")
for i, f in enumerate([
    '{"label":{"a=b":true},"dangling":{"true":true}}',
    '{"label":["a=b","c"],"label!":["keep"],"until":["24h"]}',
    '{"reference":{"bus*:*":true},"dangling":{"1":true,"false":false}}',
]):
    write("filters", f"f-{i}", f)
for i, q in enumerate([
    "filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%2C%22type%22%3A%7B%22container%22%3Atrue%7D%7D&since=1795540180&until=1704067200.000000000",
    "since=1h30m&until=2024-01-02T03:04:05.123456789Z",
    "since=-5m&until=0&filters=%7B%22event%22%3A%5B%22exec_start%22%5D%2C%22image%22%3A%5B%22busybox%22%5D%7D",
    "since=2024-01-02T03:04:05%2B02:00&until=1700000000.5",
]):
    write("events_query", f"q-{i}", q)
write("build_query", "cli", "buildargs=%7B%22X%22%3A%221%22%7D&cachefrom=%5B%22busybox%22%5D&dockerfile=Dockerfile&extrahosts=h%3A1.2.3.4&labels=%7B%22l%22%3A%22v%22%7D&networkmode=host&shmsize=67108864&t=a%3Ab&target=t&version=1&platform=linux%2Famd64&nocache=1&q=true")
write("build_query", "args_null", "buildargs=%7B%22X%22%3Anull%7D&t=x&t=y%3A2&extrahosts=a%3A1.1.1.1%2Cb%3A2.2.2.2&shmsize=-1")
write("registry_auth", "empty", "e30=")
write("registry_auth", "basic", base64.b64encode(json.dumps(
    {"username": "u", "password": "p+/?", "serveraddress": "https://index.docker.io/v1/"}).encode()))
write("registry_auth", "urlsafe", base64.urlsafe_b64encode(json.dumps(
    {"identitytoken": "t0k~", "serveraddress": "localhost:5000"}).encode()).rstrip(b"="))
for i, p in enumerate(["/etc/passwd", "etc/", "/etc/.", "/", ".", "/../../x/../etc//hosts", "a/b/.."]):
    write("archive_path", f"p-{i}", p)
write("image_changes", "commit", '{"Cmd":["/bin/sh"],"Env":["X=1"]}\n'
      'CMD ["/bin/sh"]\nENV A=b C="d e"\nENV LEGACY value with spaces\nEXPOSE 80/tcp 53/udp 9000-9002\n'
      "LABEL a=b 'c d'=e\nONBUILD RUN make\nSTOPSIGNAL SIGRTMIN+3\nUSER 1000:1000\n"
      'VOLUME ["/data", "/logs"]\nWORKDIR rel\nENTRYPOINT /init --flag')
write("image_changes", "import", "\nENTRYPOINT /init\nLABEL a=b\nVOLUME /a /b\nWORKDIR /srv")

def dns_name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.strip(".").split(".") if l) + b"\0"

def dns_query(qid, name, qtype, edns=False, flags=0x0100, qclass=1):
    head = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    q = dns_name(name) + struct.pack(">HH", qtype, qclass)
    opt = b"\0" + struct.pack(">HHIH", 41, 4096, 0, 0) if edns else b""
    return head + q + opt

for i, (pick, pkt) in enumerate([
    (0, dns_query(1, "web.", 1)), (2, dns_query(2, "web.front", 28, edns=True)),
    (0, dns_query(3, "2.0.89.10.in-addr.arpa.", 12)), (1, dns_query(4, "db", 1)),
    (0, dns_query(5, "svc", 255, edns=True)), (0, dns_query(6, "example.com", 1)),
    (3, dns_query(7, "web", 1)), (0, dns_query(8, "web", 15)),
    (0, dns_query(9, "web", 1, qclass=3)), (0x80, dns_query(10, "db.back", 1)),
    (0, dns_query(11, "web", 1, flags=0x8180)),
]):
    write("dns_query", f"q-{i}", bytes([pick]) + pkt)
EOF
if command -v zstd >/dev/null; then zstd -q -c corpus/tar_apply/basic >corpus/decompress/zst; fi
echo "seeds written under $(pwd)/corpus"
