#!/usr/bin/env bash
# Image benchmark: a cold pull of a realistic multi-layer image from a
# loopback registry (download + verify + unpack) by berth, skopeo (to dir:,
# no unpack) and docker, in one run, alternating every iteration. Also
# measures berth's unpack alone (the pull again with every blob present)
# and the disk's write throughput (dd, conv=fsync) for reference.
#
# The image: Debian bookworm minbase made by mmdebstrap, plus layers of
# mixed file sizes (many small text files, medium files, a few large ones;
# half compressible, half random), about 200 MB unpacked. berth builds and
# pushes it (its own push), so the same gzip blobs serve every puller.
#
# Usage (as root):  bench/images/run.sh
#
# Environment:
#   ITERATIONS     measured pulls per puller (default 7)
#   CACHE          where the mmdebstrap tarball is kept between runs
#                  (default /var/tmp/berth-bench-images-cache)
#   NO_DOCKER=1    leave docker out
#   NO_RESULTS=1   print the table but leave bench/RESULTS.md alone
#
# It installs what it needs from apt (mmdebstrap, skopeo, docker-registry,
# docker.io), builds berth's side (an ignored test of berth-registry,
# `bench_tool`, in release mode), runs Debian's docker-registry and a
# dockerd of its own (own data root, exec root, socket, containerd
# namespace, --insecure-registry for the loopback registry) in a temp dir,
# and rewrites the text between <!-- images:begin --> and
# <!-- images:end --> in bench/RESULTS.md.
#
# Start it on a quiet machine, and not within five minutes of a large
# deletion (its own end included: it removes its data roots): ext4's inode
# allocator skips recently deleted inodes, which makes creating the
# image's 14,000 files several times slower for berth and docker alike
# (see "Where a pull's time goes" in bench/RESULTS.md).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
ITERATIONS=${ITERATIONS:-7}
CACHE=${CACHE:-/var/tmp/berth-bench-images-cache}

if [[ $EUID -ne 0 ]]; then
	echo "run.sh: must run as root (layers hold device nodes and owners)" >&2
	exit 1
fi

# --- packages -------------------------------------------------------------
need=()
for pair in mmdebstrap:mmdebstrap skopeo:skopeo docker-registry:docker-registry jq:jq python3:python3; do
	command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
[[ -x /usr/bin/time ]] || need+=(time)
command -v bc >/dev/null || need+=(bc)
if [[ ${NO_DOCKER:-0} != 1 ]]; then
	command -v dockerd >/dev/null || need+=(docker.io)
fi
if ((${#need[@]})); then
	echo "run.sh: installing ${need[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	# Debian's packages start their own services where an init system runs.
	service docker-registry stop >/dev/null 2>&1 || true
fi

# --- berth's side ---------------------------------------------------------
echo "run.sh: building berth's bench tool (release)" >&2
tool=$(cd "$repo" && cargo test --release -p berth-registry --test pull_push --no-run \
	--message-format=json 2>/dev/null |
	jq -r 'select(.reason == "compiler-artifact" and .target.name == "pull_push" and .profile.test == true) | .executable' |
	tail -n1)
[[ -x $tool ]] || { echo "run.sh: cannot find the pull_push test binary" >&2; exit 1; }
berth_tool() { "$tool" --ignored --exact bench_tool --nocapture --test-threads 1 -q; }

work=$(mktemp -d /var/tmp/berth-bench-images.XXXXXX)
reg_pid="" dockerd_pid="" docker_cmd=()
cleanup() {
	# pull_docker runs in a command substitution: its dockerd's pid is in a file.
	[[ -s $work/dockerd.pid ]] && dockerd_pid=$(cat "$work/dockerd.pid")
	if [[ -n $dockerd_pid ]]; then
		kill "$dockerd_pid" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
	fi
	[[ -n $reg_pid ]] && kill "$reg_pid" 2>/dev/null || true
	# Whatever dockerd left mounted under its roots.
	{ grep -o " $work[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	# The registry and containerd may take a moment to let go of their files.
	for _ in $(seq 1 50); do rm -rf "$work" 2>/dev/null && break; sleep 0.2; done
	[[ ! -e $work ]] || echo "run.sh: could not remove $work" >&2
}
trap cleanup EXIT

# --- the image ------------------------------------------------------------
# shellcheck source=layers.sh
source "$here/layers.sh"
images_make_layers "$work/layers"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/registry"
cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry/data
http:
  addr: 127.0.0.1:$port
  secret: berth-bench
EOF
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
reg_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
ref=127.0.0.1:$port/bench/debian:1

echo "run.sh: berth builds and pushes $ref" >&2
BERTH_BENCH_OP=push BERTH_BENCH_ROOT=$work/src BERTH_BENCH_REF=$ref \
	BERTH_BENCH_LAYERS="$base:$work/layers/small:$work/layers/medium:$work/layers/large:$work/layers/app" \
	berth_tool | tee "$work/push.log" >&2
unpacked=$(grep -o 'unpacked [0-9]*' "$work/push.log" | awk '{print $2}')
compressed=$(grep -o 'gzip [0-9]*' "$work/push.log" | awk '{s += $2} END {print s}')
layers=$(grep -c '^layer ' "$work/push.log")

# --- pulls ----------------------------------------------------------------
# Every pull gets a data root of its own and nothing is deleted until the
# run ends: on ext4 (more so without a journal) creating inodes right
# after deleting tens of thousands costs seconds in inode allocation
# (recently_deleted), which would measure the previous pull's `rm -rf`
# rather than this pull. docker gets a fresh dockerd (own data root) for
# each pull, started and stopped outside the timing.
dockerd_start() {
	local d=$work/dkr-$1
	mkdir -p "$d"
	echo '{}' >"$d/daemon.json"
	local ns=berth-bench-images-$$-$1
	dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" \
		--pidfile "$d/docker.pid" -H "unix://$d/docker.sock" \
		--bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
		--userland-proxy=false --containerd-namespace "$ns" --containerd-plugins-namespace "$ns-plugins" \
		--insecure-registry "127.0.0.1:$port" >"$d/dockerd.log" 2>&1 &
	dockerd_pid=$!
	echo "$dockerd_pid" >"$work/dockerd.pid"
	docker_cmd=(docker -H "unix://$d/docker.sock")
	for _ in $(seq 1 300); do "${docker_cmd[@]}" version >/dev/null 2>&1 && break; sleep 0.2; done
	"${docker_cmd[@]}" version >/dev/null || { tail -20 "$d/dockerd.log" >&2; exit 1; }
}
dockerd_stop() {
	kill "$dockerd_pid" 2>/dev/null || true
	for _ in $(seq 1 150); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
	# Its containerd (its files are under the exec root) goes a moment later.
	for _ in $(seq 1 150); do pgrep -f "$work/dkr-" >/dev/null || break; sleep 0.2; done
	dockerd_pid=""
	rm -f "$work/dockerd.pid"
}
now() { date +%s.%N; }
pull_berth() {
	sync
	local t0 t1
	t0=$(now)
	BERTH_BENCH_OP=pull BERTH_BENCH_ROOT=$work/berth-$1 BERTH_BENCH_REF=$ref \
		/usr/bin/time -f "%U %S" -o "$work/cpu-$1" "$tool" --ignored --exact bench_tool --nocapture --test-threads 1 -q >/dev/null
	t1=$(now)
	# CPU seconds (user + system) of the whole berth process, for the report.
	awk -v i="$1" '{print i "," $1 + $2}' "$work/cpu-$1" >>"$work/berth-cpu.csv"
	echo "$t1 - $t0" | bc -l
}
# The unpack alone: a data root holding only the blobs of berth's pull $1
# (hard links, made outside the timing) pulls the image again; every blob
# is present, so it fetches the manifest and config and unpacks the layers
# from the content store, as a pull resumed after its downloads would.
unpack_berth() {
	local root=$work/unpack-$1
	mkdir -p "$root"
	cp -al "$work/berth-$1/content" "$root/content"
	sync
	local t0 t1
	t0=$(now)
	BERTH_BENCH_OP=pull BERTH_BENCH_ROOT=$root BERTH_BENCH_REF=$ref \
		"$tool" --ignored --exact bench_tool --nocapture --test-threads 1 -q >"$work/unpack-$1.log"
	t1=$(now)
	if ! grep -q '^pulled 0 layers' "$work/unpack-$1.log"; then
		echo "run.sh: the unpack-only pull downloaded layers:" >&2
		cat "$work/unpack-$1.log" >&2
		exit 1
	fi
	echo "$t1 - $t0" | bc -l
}
pull_skopeo() {
	sync
	local t0 t1
	t0=$(now)
	skopeo --policy <(echo '{"default":[{"type":"insecureAcceptAnything"}]}') copy -q \
		--src-tls-verify=false "docker://$ref" "dir:$work/skopeo-$1" >/dev/null
	t1=$(now)
	echo "$t1 - $t0" | bc -l
}
pull_docker() {
	dockerd_start "$1"
	sync
	local t0 t1
	t0=$(now)
	"${docker_cmd[@]}" pull -q "$ref" >/dev/null
	t1=$(now)
	storage_driver=$("${docker_cmd[@]}" info --format '{{.Driver}}')
	echo "$storage_driver" >"$work/storage-driver"
	dockerd_stop
	echo "$t1 - $t0" | bc -l
}
pullers=(berth skopeo)
[[ ${NO_DOCKER:-0} != 1 ]] && pullers+=(docker)
# One warm-up each (the registry's blobs reach the page cache).
for p in "${pullers[@]}"; do "pull_$p" warmup >/dev/null; done
csv=$work/samples.csv
echo "iteration,puller,seconds" >"$csv"
for i in $(seq 1 "$ITERATIONS"); do
	n=${#pullers[@]}
	for k in $(seq 0 $((n - 1))); do
		p=${pullers[$(((i + k) % n))]}
		s=$("pull_$p" "$i")
		echo "$i,$p,$s" >>"$csv"
		printf 'run.sh: iteration %d %-6s %.3f s\n' "$i" "$p" "$s" >&2
		if [[ $p == berth ]]; then
			s=$(unpack_berth "$i")
			echo "$i,berth-unpack,$s" >>"$csv"
			printf 'run.sh: iteration %d %-6s %.3f s\n' "$i" "unpack" "$s" >&2
		fi
	done
done
cp "$csv" "$here/last-run.csv"

# --- the disk -------------------------------------------------------------
# Three 1 GiB writes with an fsync at the end; the median, in MB/s.
dd_runs=()
for _ in 1 2 3; do
	sync
	t0=$(now)
	dd if=/dev/zero of="$work/dd" bs=1M count=1024 conv=fsync status=none
	t1=$(now)
	dd_runs+=("$(echo "1073.741824 / ($t1 - $t0)" | bc -l)")
	rm -f "$work/dd"
	sleep 1
done
dd_mbs=$(printf '%s\n' "${dd_runs[@]}" | sort -n | sed -n 2p | xargs printf '%.0f')
dd_unit=MB/s

# --- report ---------------------------------------------------------------
storage_driver=$(cat "$work/storage-driver" 2>/dev/null || echo n/a)
python3 - "$csv" "$repo/bench/RESULTS.md" "${NO_RESULTS:-0}" <<PY
import csv, statistics, sys, datetime, os
rows = list(csv.DictReader(open(sys.argv[1])))
by = {}
for r in rows:
    by.setdefault(r["puller"], []).append(float(r["seconds"]))
med = {p: statistics.median(v) for p, v in by.items()}
unpacked, compressed, layers = int("$unpacked"), int("$compressed"), int("$layers")
names = {"berth": "berth pull (download + verify + unpack, syncfs per layer)",
         "berth-unpack": "berth, the unpack alone (blobs present; verify + unpack, syncfs per layer)",
         "skopeo": "skopeo copy to dir: (download + verify, no unpack)",
         "docker": "docker pull (${storage_driver:-n/a}, dockerd 20.10)"}
lines = []
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
load = open("/proc/loadavg").read().split()[:3]
lines.append("## Images: cold pull from a loopback registry")
lines.append("")
lines.append(f"Generated by \`bench/images/run.sh\` on {now}; {os.cpu_count()} CPUs, load average {' '.join(load)}.")
lines.append(f"Image: {layers} layers (Debian bookworm minbase by mmdebstrap, then small,")
lines.append(f"medium and large files and a small app layer), {unpacked / 1e6:.0f} MB unpacked,")
lines.append(f"{compressed / 1e6:.0f} MB gzipped, pushed by berth to Debian's docker-registry on")
lines.append(f"127.0.0.1. {len(by['berth'])} alternating iterations per puller after one warm-up;")
lines.append("each pull starts from an empty store of its own (docker: a fresh dockerd), and")
lines.append("nothing is deleted before the run ends (see run.sh). Raw samples: \`bench/images/last-run.csv\`.")
lines.append("")
lines.append("| puller | n | min s | median s | max s | MB/s unpacked |")
lines.append("|---|---:|---:|---:|---:|---:|")
for p in ["berth", "berth-unpack", "skopeo", "docker"]:
    if p not in by:
        continue
    v = by[p]
    lines.append(f"| {names[p]} | {len(v)} | {min(v):.2f} | {med[p]:.2f} | {max(v):.2f} | {unpacked / 1e6 / med[p]:.0f} |")
lines.append("")
lines.append("| ratio of medians | value | goal |")
lines.append("|---|---:|---|")
if "docker" in med:
    r = med['berth'] / med['docker']
    lines.append(f"| berth / docker | {r:.3f} | at most 0.25 ({'met' if r <= 0.25 else 'not met'}) |")
lines.append(f"| berth / skopeo | {med['berth'] / med['skopeo']:.2f} | |")
lines.append("")
cpu = [float(l.split(",")[1]) for l in open("$work/berth-cpu.csv") if not l.startswith("warmup")]
lines.append(f"berth's pull used {statistics.median(cpu):.2f} s of CPU (user + system, median): on this")
lines.append("2-CPU machine shared with other builds, its wall-clock time follows the CPU it gets.")
lines.append("")
lines.append(f"Disk: \`dd if=/dev/zero bs=1M count=1024 conv=fsync\` wrote at $dd_mbs $dd_unit (median of 3)")
lines.append(f"(berth's pull wrote {unpacked / 1e6:.0f} MB of files in {med['berth']:.2f} s, {unpacked / 1e6 / med['berth']:.0f} MB/s;")
rate = unpacked / 1e6 / med['berth-unpack']
lines.append(f"its unpack alone, from blobs on disk, in {med['berth-unpack']:.2f} s: {rate:.0f} MB/s, {rate / $dd_mbs:.2f} of dd's).")
text = "\n".join(lines) + "\n"
print(text)
if sys.argv[3] == "1":
    sys.exit(0)
path = sys.argv[2]
doc = open(path).read()
begin, end = "<!-- images:begin -->", "<!-- images:end -->"
if begin in doc and end in doc:
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc = head + begin + "\n" + text + end + tail
else:
    doc = doc.rstrip("\n") + "\n\n" + begin + "\n" + text + end + "\n"
open(path, "w").write(doc)
PY
