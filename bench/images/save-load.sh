#!/usr/bin/env bash
# Save/load benchmark: `save -o` and `load -i` of the image run.sh pulls
# (Debian bookworm minbase plus four layers of mixed file sizes, about
# 200 MB), berthd with berth's CLI against dockerd with docker's CLI, in
# one run, alternating every iteration.
#
# The image is built once by dockerd (`docker build`, classic builder,
# one COPY per layer), saved by docker and loaded into berthd, so both
# engines hold the same layers. Each iteration then times, per engine:
#   save  `save -o FILE IMAGE` (the file is deleted afterwards)
#   load  `load -i TAR` of that engine's own saved tar (the round trip a
#         user makes; both tars' sizes are reported, they need not be
#         equal) into a daemon of its own, started (untimed) for this one
#         load on an empty data root.
# Nothing is deleted between loads: on ext4 (more so without a journal)
# creating inodes right after deleting tens of thousands costs seconds in
# the inode allocator (recently_deleted), so a load that follows an `rmi`
# of the same image measures the rmi's after-effect, not the load (see
# "Why the load's ratio moved" in bench/RESULTS.md). Start the script on a
# quiet machine, and not within five minutes of a large deletion.
#
# Usage (as root):  bench/images/save-load.sh
#
# Environment:
#   ITERATIONS     measured iterations per engine and operation (default 5)
#   CACHE          where the mmdebstrap tree is kept (as run.sh)
#   SKIP_BUILD=1   use the existing release binaries
#   NO_RESULTS=1   print the table but leave bench/RESULTS.md alone
#
# It writes the part of bench/RESULTS.md between <!-- images-saveload:begin -->
# and <!-- images-saveload:end -->, and the samples to
# bench/images/saveload-last-run.csv.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
ITERATIONS=${ITERATIONS:-5}
CACHE=${CACHE:-/var/tmp/berth-bench-images-cache}
# shellcheck source=../engine/common.sh
source "$repo/bench/engine/common.sh"
# shellcheck source=layers.sh
source "$here/layers.sh"
bench_require_root save-load.sh
bench_packages mmdebstrap:mmdebstrap python3:python3
bench_build
bench_init bsl
# berthd keeps its firewall table (an nft table of this run's own) when
# it stops: deleted with the rest.
cleanup() {
	stop_pid "${load_pid:-}"
	bench_cleanup_engines
	local t
	for t in "${tag//-/_}" "${load_tables[@]}"; do nft delete table inet "$t" 2>/dev/null || true; done
}
trap cleanup EXIT

image=bench/saveload:1
bench_start_berthd --bridge none --firewall-table "${tag//-/_}"
bench_start_dockerd --bridge=none --iptables=false --ip6tables=false --ip-masq=false --userland-proxy=false
wait_socket berthd "$berth_sock"
wait_socket dockerd "$docker_sock"
# The engines by name, as the samples name them.
run_berth() { "$bin/berth" -H "unix://$berth_sock" "$@"; }
run_docker() { "${docker_cli[@]}" -H "unix://$docker_sock" "$@"; }

# --- the image -------------------------------------------------------------
ctx=$work/ctx
images_make_layers "$ctx"
mkdir -p "$ctx/base"
mount --bind "$base" "$ctx/base"
cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY base/ /
COPY small/ /
COPY medium/ /
COPY large/ /
COPY app/ /
CMD ["/bin/true"]
EOF
echo "save-load.sh: docker build (classic builder)" >&2
DOCKER_BUILDKIT=0 run_docker build -q -t "$image" "$ctx" >/dev/null
umount "$ctx/base"
run_docker save -o "$work/docker.tar" "$image"
run_berth load -q -i "$work/docker.tar" >/dev/null
run_berth save -o "$work/berth.tar" "$image"
layers=$(run_docker inspect -f '{{len .RootFS.Layers}}' "$image")
size_mb=$(run_docker inspect -f '{{.Size}}' "$image" | awk '{ printf "%.0f", $1 / 1e6 }')

now_ms() { date +%s%N | awk '{ printf "%.1f", $1 / 1e6 }'; }
csv=$work/samples.csv
echo "engine,operation,iteration,ms" >"$csv"
timed() { # engine operation iteration command...
	local e=$1 op=$2 i=$3 t0 t1
	shift 3
	t0=$(now_ms)
	"$@" >/dev/null
	t1=$(now_ms)
	echo "$e,$op,$i,$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" >>"$csv"
}
# A daemon of its own for each load: an empty data root, so the load finds
# none of the layers and creates every file on a file system that has not
# just deleted them. Started and stopped outside the timing; its data root
# stays until the run ends.
load_daemon_start() { # engine iteration: sets load_pid and load_sock
	local d=$work/load-$1-$2
	load_sock=$d/engine.sock
	if [[ $1 == berth ]]; then
		load_tables+=("${tag//-/_}_l$2")
		bench_spawn_berthd "$d" "$load_sock" --bridge none --firewall-table "${tag//-/_}_l$2"
	else
		bench_spawn_dockerd "$d" "$load_sock" "$tag-l$2" \
			--bridge=none --iptables=false --ip6tables=false --ip-masq=false --userland-proxy=false
	fi
	load_pid=$spawned_pid
	wait_socket "$1 for load $2" "$load_sock"
}
load_daemon_stop() {
	stop_pid "$load_pid"
	# dockerd's containerd (its files are under the exec root) goes a moment later.
	for _ in $(seq 1 150); do pgrep -f "$work/load-" >/dev/null || break; sleep 0.2; done
	load_pid=""
}
load_tables=()
load_pid=""
run_loaded() { "${docker_cli[@]}" -H "unix://$load_sock" "$@"; }

for i in $(seq 0 "$ITERATIONS"); do # iteration 0 is the warm-up
	echo "save-load.sh: iteration $i of $ITERATIONS" >&2
	# The order alternates: neither engine always follows the other.
	((i % 2)) && order=(docker berth) || order=(berth docker)
	for e in "${order[@]}"; do
		sync
		timed "$e" save "$i" "run_$e" save -o "$work/out.tar" "$image"
		rm -f "$work/out.tar"
	done
	for e in "${order[@]}"; do
		load_daemon_start "$e" "$i"
		sync
		if [[ $e == berth ]]; then
			timed berth load "$i" "$bin/berth" -H "unix://$load_sock" load -q -i "$work/berth.tar"
		else
			timed docker load "$i" run_loaded load -q -i "$work/docker.tar"
		fi
		# The load is checked: the image is there, with all its layers.
		got=$(run_loaded inspect -f '{{len .RootFS.Layers}}' "$image")
		if [[ $got != "$layers" ]]; then
			echo "save-load.sh: after $e's load $i the image has $got layers, not $layers" >&2
			exit 1
		fi
		load_daemon_stop
	done
done
cp "$csv" "$here/saveload-last-run.csv"

bench_machine_env
export layers size_mb iterations=$ITERATIONS
export berth_tar_mb=$(($(stat -c %s "$work/berth.tar") / 1000000)) docker_tar_mb=$(($(stat -c %s "$work/docker.tar") / 1000000))
section=$work/section.md
python3 - "$csv" >"$section" <<'PY'
import csv, os, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["iteration"] != "0"]
med = {}
for e in ("berth", "docker"):
    for op in ("save", "load"):
        v = [float(r["ms"]) for r in rows if r["engine"] == e and r["operation"] == op]
        med[e, op] = (len(v), min(v), statistics.median(v), max(v))
env = os.environ
out = ["## Images: save and load", ""]
out.append(f"Generated by `bench/images/save-load.sh`; {env['nproc']} CPUs, {env['cpu']}.")
out.append(f"Image: {env['layers']} layers, {env['size_mb']} MB (the pull benchmark's: Debian bookworm minbase by")
out.append("mmdebstrap plus small, medium, large and app layers), built by dockerd and loaded into berthd.")
out.append(f"{env['iterations']} alternating iterations after one warm-up. save: `save -o FILE`; load: `load -i` of the")
out.append(f"engine's own saved tar (berth's: {env['berth_tar_mb']} MB, docker's: {env['docker_tar_mb']} MB) into a daemon started (untimed) for that")
out.append("load on an empty data root; nothing is deleted between loads (see save-load.sh). berthd is driven by")
out.append("berth's CLI, dockerd by docker's. Raw samples: `bench/images/saveload-last-run.csv`.")
out.append("")
out.append("| engine | operation | n | min ms | median ms | max ms |")
out.append("|---|---|---:|---:|---:|---:|")
for op in ("save", "load"):
    for e, name in (("berth", "berthd, berth CLI"), ("docker", f"dockerd, docker CLI")):
        n, lo, m, hi = med[e, op]
        out.append(f"| {name} | {op} | {n} | {lo:.0f} | {m:.0f} | {hi:.0f} |")
out.append("")
out.append("| ratio of medians, berth / docker | value | goal |")
out.append("|---|---:|---|")
for op in ("save", "load"):
    r = med["berth", op][2] / med["docker", op][2]
    out.append(f"| {op} | {r:.2f} | at most 0.5 ({'met' if r <= 0.5 else 'not met'}) |")
out.append("")
dirty = f" plus uncommitted changes in {env['dirty']}" if env.get("dirty") else ""
out.append(f"- berth: commit {env['commit']}{dirty}, release build; {env['v_dockerd']}; {env['v_docker_cli']}")
out.append(f"- load average at the end: {open('/proc/loadavg').read().split()[:3]} (the machine is shared with other builds)")
print("\n".join(out))
PY
cat "$section"
[[ ${NO_RESULTS:-0} == 1 ]] || bench_write_section images-saveload "$section"
