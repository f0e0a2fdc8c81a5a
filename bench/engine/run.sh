#!/usr/bin/env bash
# Engine benchmark: berthd against dockerd and podman, in one run.
#
#  1. `run --rm busybox true`: the docker CLI against berthd, berth's own
#     CLI against berthd, the docker CLI against dockerd, and podman;
#     alternating every iteration; medians and ratios.
#  2. 100 detached `sleep` containers started one after another: total time,
#     and memory per container (PSS of the shims and the containers, the
#     daemons' growth, the system's), berthd vs dockerd (and podman).
#  3. Idle memory of berthd vs dockerd + containerd.
#  4. PSS of one berth-shim vs containerd-shim-runc-v2 and conmon.
#
# Usage (as root):  bench/engine/run.sh
#
# Environment:
#   ITERATIONS     measured `run --rm` iterations per entry (default 50)
#   WARMUP         warm-up iterations, run but not recorded (default 3)
#   ROUNDS         rounds of the 100-container phase (default 3; each engine
#                  waits 61 s before its run, see driver.py settle_deletions)
#   COUNT          containers per round (default 100)
#   SKIP_BUILD=1   use the existing target/release binaries
#                  (under $CARGO_TARGET_DIR when that is set)
#   NO_RESULTS=1   print the section but leave bench/RESULTS.md alone
#
# It installs what it needs from apt (docker.io, podman, runc,
# busybox-static), builds berthd, berth-shim, berth-dns, berth-runtime and berth in
# release mode, makes one busybox rootfs tarball (Debian's static busybox
# and its applet links) and imports it into every engine as busybox:latest
# (no registry). Each engine gets a temp dir of its own under one work dir:
# berthd (data root, exec root, socket, cgroup parent), dockerd as
# tests/integration/src/peers.rs starts it (data and exec roots, socket, pid
# file, its own containerd and namespace, cgroupfs under a cgroup parent of
# its own, no bridge, no iptables), podman (--root, --runroot, --tmpdir,
# cgroupfs, file events). Every container runs with --network none. Raw
# samples go to bench/engine/last-run.csv; the text between
# <!-- engine:begin --> and <!-- engine:end --> in bench/RESULTS.md is
# rewritten.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
ITERATIONS=${ITERATIONS:-50}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-100}

# shellcheck source=common.sh
source "$here/common.sh"
bench_require_root run.sh
bench_packages
bench_build

bench_init bbe
cleanup() {
	set +e
	bench_cleanup_engines
	nft delete table inet "${tag//-/_}" 2>/dev/null
}
trap cleanup EXIT

# --- the image: one rootfs tarball for every engine --------------------------
bench_busybox_rootfs "$work/rootfs"
tar -C "$work/rootfs" --numeric-owner -cf "$work/busybox.tar" .

# --- berthd ---------------------------------------------------------------
# No default bridge (every container here runs with --network none) and
# an nft table of this run's own, deleted at the end (berthd keeps it).
bench_start_berthd -b none --firewall-table "${tag//-/_}"

# --- dockerd --------------------------------------------------------------
bench_start_dockerd --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
	--userland-proxy=false

wait_socket berthd "$berth_sock"
wait_socket dockerd "$docker_sock"
"${docker_cli[@]}" -H "unix://$berth_sock" import "$work/busybox.tar" busybox:latest >/dev/null
"${docker_cli[@]}" -H "unix://$docker_sock" import "$work/busybox.tar" busybox:latest >/dev/null

# --- podman ---------------------------------------------------------------
mkdir -p "$work/p"
"${podman_cmd[@]}" import --quiet "$work/busybox.tar" busybox:latest >/dev/null
bench_podman_limits

# --- the run --------------------------------------------------------------
# Nothing is reniced: the daemons do the work, and they were started above
# at the same priority as everything else on this shared machine.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%Y-%m-%dT%H:%MZ)
bh=(-H "unix://$berth_sock")
dh=(-H "unix://$docker_sock")
jq -n \
	--argjson iterations "$ITERATIONS" --argjson warmup "$WARMUP" \
	--argjson rounds "$ROUNDS" --argjson count "$COUNT" \
	--arg work "$work" --arg tag "$tag" --arg berth "$bin/berth" \
	--arg berth_cg "$berth_cg" --arg docker_cg "$docker_cg" --arg podman_cg "$podman_cg" \
	--argjson docker "$(printf '%s\n' "${docker_cli[@]}" | jq -R . | jq -s .)" \
	--argjson podman "$(printf '%s\n' "${podman_cmd[@]}" | jq -R . | jq -s .)" \
	--argjson limits "$(printf '%s\n' "${podman_limits[@]}" | jq -R . | jq -s .)" \
	--arg bsock "unix://$berth_sock" --arg dsock "unix://$docker_sock" '
	def rm_true: ["run", "--rm", "--network", "none", "busybox", "true"];
	def sleeper: ["run", "-d", "--network", "none", "busybox", "sleep", "1000000"];
	{
		iterations: $iterations, warmup: $warmup, rounds: $rounds, count: $count,
		run_rm: {
			"berthd, docker CLI": ($docker + ["-H", $bsock] + rm_true),
			"berthd, berth CLI": ([$berth, "-H", $bsock] + rm_true),
			"dockerd, docker CLI": ($docker + ["-H", $dsock] + rm_true),
			"podman": ($podman + ["run", "--rm", "--network", "none"] + $limits + ["busybox", "true"])
		},
		engines: {
			berthd: {
				cli: ($docker + ["-H", $bsock]),
				detached: ($docker + ["-H", $bsock] + sleeper),
				shim: ["berth-shim", ($work + "/b/")],
				daemons: [["berthd", ($work + "/b/")]],
				cgroup_parent: $berth_cg
			},
			"berthd, berth CLI": {
				cli: [$berth, "-H", $bsock],
				detached: ([$berth, "-H", $bsock] + sleeper),
				shim: ["berth-shim", ($work + "/b/")],
				daemons: [["berthd", ($work + "/b/")]],
				cgroup_parent: $berth_cg,
				same_daemon_as: "berthd"
			},
			dockerd: {
				cli: ($docker + ["-H", $dsock]),
				detached: ($docker + ["-H", $dsock] + sleeper),
				shim: ["containerd-shim-runc-v2", $tag],
				daemons: [["dockerd", ($work + "/d/")], ["containerd", ($work + "/d/")]],
				cgroup_parent: $docker_cg
			},
			podman: {
				cli: $podman,
				detached: ($podman + ["run", "-d", "--network", "none", "--cgroup-parent", $podman_cg] + $limits
					+ ["busybox", "sleep", "1000000"]),
				rm: ["rm", "-f", "-t", "0"],
				shim: ["conmon", ($work + "/p/")],
				daemons: [],
				cgroup_parent: $podman_cg
			}
		}
	}' >"$work/config.json"
# podman's `run --rm` gets the cgroup parent too.
jq --arg cg "$podman_cg" '.run_rm.podman |= (.[0:index("--rm")+1] + ["--cgroup-parent", $cg] + .[index("--rm")+1:])' \
	"$work/config.json" >"$work/config2.json"
mv "$work/config2.json" "$work/config.json"

mkdir -p "$work/out"
python3 "$here/driver.py" "$work/config.json" "$work/out"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cp "$work/out/samples.csv" "$here/last-run.csv"
cp "$work/out/memory.json" "$here/last-run.json"

# --- report ---------------------------------------------------------------
export started load_before load_after
bench_machine_env
python3 "$here/report.py" "$work/out/memory.json" >"$work/section.md"
cat "$work/section.md"

if [[ ${NO_RESULTS:-0} != 1 ]]; then
	bench_write_section engine "$work/section.md"
fi
