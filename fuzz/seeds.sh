#!/usr/bin/env bash
# Writes seed inputs for the fuzz targets into corpus/<target>/: small valid
# (and some hostile) examples the fuzzer mutates from. Needs python3; the
# Dockerfile seeds come from ../../shared/testdata (BuildKit's parser cases)
# when that directory exists.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/{tar_apply,decompress,image_load,manifest,image_config,reference,dockerfile,challenge}

testdata=../../shared/testdata/dockerfile-parser
if [ -d "$testdata" ]; then
	i=0
	for f in "$testdata"/testfiles/*/Dockerfile "$testdata"/testfiles-negative/*/Dockerfile; do
		i=$((i + 1))
		cp "$f" "corpus/dockerfile/buildkit-$i"
	done
fi

python3 - <<'EOF'
import gzip, hashlib, io, json, tarfile

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
EOF
if command -v zstd >/dev/null; then zstd -q -c corpus/tar_apply/basic >corpus/decompress/zst; fi
echo "seeds written under $(pwd)/corpus"
