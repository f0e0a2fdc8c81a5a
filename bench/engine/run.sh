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
#   ROUNDS         rounds of the 100-container phase (default 3)
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

if [[ $EUID -ne 0 ]]; then
	echo "run.sh: must run as root (engines mount, create namespaces and cgroups)" >&2
	exit 1
fi

# --- packages -------------------------------------------------------------
need=()
for pair in dockerd:docker.io podman:podman runc:runc jq:jq python3:python3 tar:tar; do
	command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
command -v docker >/dev/null || need+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if ((${#need[@]})); then
	echo "run.sh: installing ${need[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	# Debian's docker.io starts its own daemon where an init system runs.
	service docker stop >/dev/null 2>&1 || true
fi

# --- berth ----------------------------------------------------------------
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
	(cd "$repo" && cargo build --release -p berthd -p berth-shim -p berth-dns -p berth-runtime -p berth)
fi
bin=${CARGO_TARGET_DIR:-$repo/target}/release
for b in berthd berth-shim berth-dns berth-runtime berth; do
	[[ -x $bin/$b ]] || { echo "run.sh: $bin/$b is missing; build it or unset SKIP_BUILD" >&2; exit 1; }
done

# Short: containerd's sockets live under dockerd's exec root (108-byte paths).
work=$(mktemp -d /tmp/bbe.XXXXXX)
tag=bbe-$$
berth_cg=/$tag-berth docker_cg=/$tag-docker podman_cg=/$tag-podman
berthd_pid="" dockerd_pid=""
docker_cli=(docker --config "$work/docker-client")
berth_sock=$work/b/berth.sock
docker_sock=$work/d/docker.sock
podman_cmd=(podman --root "$work/p/root" --runroot "$work/p/run" --tmpdir "$work/p/tmp"
	--network-config-dir "$work/p/net" --runtime runc --cgroup-manager cgroupfs
	--events-backend file --storage-driver overlay)

stop_pid() { # pid: SIGTERM, then wait up to 30 s, then SIGKILL
	local pid=$1
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
}

cleanup() {
	set +e
	if [[ -n $berthd_pid ]]; then
		ids=$("${docker_cli[@]}" -H "unix://$berth_sock" ps -aq 2>/dev/null)
		[[ -n $ids ]] && timeout 120 "${docker_cli[@]}" -H "unix://$berth_sock" rm -f $ids >/dev/null 2>&1
		stop_pid "$berthd_pid"
	fi
	if [[ -n $dockerd_pid ]]; then
		ids=$("${docker_cli[@]}" -H "unix://$docker_sock" ps -aq 2>/dev/null)
		[[ -n $ids ]] && timeout 120 "${docker_cli[@]}" -H "unix://$docker_sock" rm -f $ids >/dev/null 2>&1
		stop_pid "$dockerd_pid"
	fi
	if [[ -d $work/p ]]; then
		timeout 120 "${podman_cmd[@]}" rm -af -t 0 >/dev/null 2>&1
		"${podman_cmd[@]}" system reset -f >/dev/null 2>&1
	fi
	# containerd and its shims exit a moment after dockerd.
	for _ in $(seq 1 50); do
		pgrep -f "$work/" >/dev/null || break
		sleep 0.2
	done
	# Whatever the engines left mounted under the work dir.
	{ grep -o " $work[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	for cg in "$berth_cg" "$docker_cg" "$podman_cg"; do
		for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
			[[ -d $h${cg#/} ]] || continue
			if [[ $(stat -f -c %T "$h") == tmpfs ]]; then
				# Not a hierarchy (hugetlb, net_cls... on this hybrid host):
				# plain directories conmon made on the cgroup tmpfs.
				rm -rf "$h${cg#/}"
			else
				find "$h${cg#/}" -depth -type d -exec rmdir {} + 2>/dev/null
			fi
		done
	done
	rm -rf "$work"
}
trap cleanup EXIT

# --- the image: one rootfs tarball for every engine --------------------------
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/rootfs/proc" \
	"$work/rootfs/sys" "$work/rootfs/dev"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
	[[ $applet == busybox ]] || ln -s busybox "$work/rootfs/bin/$applet"
done
tar -C "$work/rootfs" --numeric-owner -cf "$work/busybox.tar" .

# --- berthd ---------------------------------------------------------------
mkdir -p "$work/b"
echo '{}' >"$work/b/daemon.json"
"$bin/berthd" --config-file "$work/b/daemon.json" --data-root "$work/b/data" \
	--exec-root "$work/b/exec" -H "unix://$berth_sock" --cgroup-parent "$berth_cg" \
	</dev/null >"$work/b/berthd.log" 2>&1 &
berthd_pid=$!

# --- dockerd --------------------------------------------------------------
mkdir -p "$work/d"
echo '{}' >"$work/d/daemon.json"
dockerd --config-file "$work/d/daemon.json" --data-root "$work/d/data" --exec-root "$work/d/exec" \
	--pidfile "$work/d/docker.pid" -H "unix://$docker_sock" \
	--bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
	--userland-proxy=false --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "$docker_cg" \
	--containerd-namespace "$tag" --containerd-plugins-namespace "$tag-plugins" \
	</dev/null >"$work/d/dockerd.log" 2>&1 &
dockerd_pid=$!

wait_socket() { # name socket
	for _ in $(seq 1 600); do
		[[ -S $2 ]] && "${docker_cli[@]}" -H "unix://$2" version >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "run.sh: $1 did not answer on $2" >&2
	exit 1
}
wait_socket berthd "$berth_sock"
wait_socket dockerd "$docker_sock"
"${docker_cli[@]}" -H "unix://$berth_sock" import "$work/busybox.tar" busybox:latest >/dev/null
"${docker_cli[@]}" -H "unix://$docker_sock" import "$work/busybox.tar" busybox:latest >/dev/null

# --- podman ---------------------------------------------------------------
mkdir -p "$work/p"
"${podman_cmd[@]}" import --quiet "$work/busybox.tar" busybox:latest >/dev/null
# podman asks for more open files than this machine's hard limit allows
# (crun and runc then fail in setrlimit); the same limits it would clamp to.
nofile=$(ulimit -Hn)
((nofile > 1048576)) && nofile=1048576
podman_limits=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=32768:32768")

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
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$repo" status --porcelain -- crates 2>/dev/null | awk '{ print $2 }' | cut -d/ -f2 | sort -u | paste -sd, - | sed 's/,/, /g')
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
cgroups=$(if [[ -e /sys/fs/cgroup/unified/cgroup.controllers ]]; then echo "v1/v2 hybrid"; else stat -f -c '%T' /sys/fs/cgroup; fi)
export started load_before load_after commit dirty cpu mem cgroups
export machine_kernel=$(uname -r) machine_debian=$(cat /etc/debian_version) nproc=$(nproc)
export v_docker_cli=$(docker --version)
export v_dockerd=$(dockerd --version) v_containerd=$(containerd --version)
export v_runc=$(runc --version | head -1) v_podman=$(podman --version) v_conmon=$(conmon --version | head -1)
export v_busybox=$(dpkg-query -W -f='${Version}' busybox-static)
python3 "$here/report.py" "$work/out/memory.json" >"$work/section.md"
cat "$work/section.md"

if [[ ${NO_RESULTS:-0} != 1 ]]; then
	results=$repo/bench/RESULTS.md
	if ! grep -q '^<!-- engine:begin -->$' "$results"; then
		printf '\n<!-- engine:begin -->\n<!-- engine:end -->\n' >>"$results"
	fi
	awk -v file="$work/section.md" '
		/^<!-- engine:begin -->$/ { print; while ((getline l < file) > 0) print l; skip = 1; next }
		/^<!-- engine:end -->$/ { skip = 0 }
		!skip { print }
	' "$results" >"$work/RESULTS.md"
	cat "$work/RESULTS.md" >"$results"
	echo "run.sh: wrote the engine section of $results" >&2
fi
