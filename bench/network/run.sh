#!/usr/bin/env bash
# Networking benchmark: berthd against dockerd and podman, in one run.
#
#  1. `run --rm busybox true` on each engine's default bridge and with
#     `--network none`, alternating every iteration: what network set-up
#     adds to a container's start (bridge - none, per engine).
#  2. TCP through a published port: a server in a container (-p), the
#     client on the host to 127.0.0.1:PORT, to the host's own address, and
#     to the container's address (no NAT), beside a server on the host's
#     loopback; throughput (one stream) and request/response latency (one
#     connection, and a new connection per request).
#  3. 100 detached `sleep` containers on one user network, started one
#     after another (and, for comparison, 100 with --network none).
#
# Usage (as root):  bench/network/run.sh
#
# Environment:
#   ITERATIONS     measured `run --rm` iterations per entry (default 30)
#   WARMUP         warm-up iterations, not recorded (default 3)
#   TCP_ROUNDS     rounds of the TCP measurements (default 5)
#   TCP_SECONDS    seconds per throughput sample (default 2)
#   ROUNDS         rounds of the 100-container phase (default 1)
#   COUNT          containers per round (default 100)
#   SKIP_BUILD=1   use the existing release binaries
#   NO_RESULTS=1   print the section but leave bench/RESULTS.md alone
#   REPORT_ONLY=1  rewrite the section from last-run.json, running nothing
#
# The engines are set up as bench/engine/run.sh does (bench/engine/common.sh:
# one work dir, own data/exec roots, sockets, cgroup parents, containerd
# namespace), but with networking on, each with names of its own:
#   berthd  -b bbnb0 --bip 10.240.0.1/24 --firewall-table bbn_berth
#   dockerd -b bbnd0 (a bridge this script makes, 10.241.0.1/24), iptables on,
#           its userland proxy on (docker's default)
#   podman  netavark (Debian's podman 4.3 default), its default network with
#           default_subnet 10.242.0.0/24 (bridge podman0), from a
#           containers.conf of the run's own (CONTAINERS_CONF)
# User networks of phase 3: 10.243/24 (berthd), 10.244/24 (dockerd),
# 10.245/24 (podman), all named bbnnet.
#
# The host is left as it was found: before anything starts, the script
# saves iptables' rules and policies (every table), the nft tables, the
# links, /run/netns and the forwarding sysctls; its EXIT trap stops every
# daemon, deletes the bridges it or the engines made, deletes the rules and
# chains docker and netavark added (only those: the rules present before are
# left alone, as are other tables), puts policies and sysctls back, and
# prints what still differs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
ITERATIONS=${ITERATIONS:-30}
WARMUP=${WARMUP:-3}
TCP_ROUNDS=${TCP_ROUNDS:-5}
TCP_SECONDS=${TCP_SECONDS:-2}
ROUNDS=${ROUNDS:-1}
COUNT=${COUNT:-100}

# shellcheck source=../engine/common.sh
source "$repo/bench/engine/common.sh"
bench_require_root run.sh
if [[ ${REPORT_ONLY:-0} == 1 ]]; then
	# The section again from last-run.json (its measurements and the
	# machine description saved with them), after an edit of ANALYSIS.md
	# or report.py; nothing is run.
	work=$(mktemp -d /tmp/bbn-report.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	eval "$(jq -r '.env | to_entries[] | "export \(.key)=\(.value | @sh)"' "$here/last-run.json")"
	python3 "$here/report.py" "$here/last-run.json" >"$work/section.md"
	cat "$work/section.md"
	[[ ${NO_RESULTS:-0} == 1 ]] || bench_write_section network "$work/section.md"
	exit 0
fi
bench_packages gcc:gcc nft:nftables iptables:iptables ip:iproute2
[[ -e /usr/lib/x86_64-linux-gnu/libc.a ]] || apt-get install -y -qq libc6-dev >/dev/null
bench_build

bench_init bbn
host=$(mktemp -d /tmp/bbn-host.XXXXXX) # the host's state before (outlives $work)
berth_bridge=bbnb0 docker_bridge=bbnd0 podman_bridge=podman0 table=bbn_berth
user_bridges=()
ipt_tables=(filter nat mangle raw)
sysctls=(net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.bridge.bridge-nf-call-iptables)

# --- the host's state before ------------------------------------------------
snapshot() { # dir
	mkdir -p "$1"
	local t
	for t in "${ipt_tables[@]}"; do
		iptables -t "$t" -S >"$1/iptables-$t" 2>/dev/null || true
		ip6tables -t "$t" -S >"$1/ip6tables-$t" 2>/dev/null || true
	done
	nft list tables 2>/dev/null | sort >"$1/nft-tables" || true
	ip -o link show | awk -F': ' '{ print $2 }' | sed 's/@.*//' | sort >"$1/links"
	ls /run/netns 2>/dev/null | sort >"$1/netns" || true
	for s in "${sysctls[@]}"; do echo "$s=$(sysctl -n "$s" 2>/dev/null)"; done >"$1/sysctl"
	[[ -d /var/lib/cni ]] && echo yes >"$1/var-lib-cni" || echo no >"$1/var-lib-cni"
}
snapshot "$host/before"
for b in "$berth_bridge" "$docker_bridge" "$podman_bridge"; do
	if grep -qx "$b" "$host/before/links"; then
		echo "run.sh: a link named $b exists already; remove it or change the names" >&2
		exit 1
	fi
done

restore_iptables() { # cmd table: delete what was added, put policies back
	local cmd=$1 t=$2 before=$host/before/$1-$2 now line chain
	[[ -s $before ]] || return 0
	now=$($cmd -t "$t" -S 2>/dev/null) || return 0
	# Rules added (deleted in reverse order), then chains added.
	comm -13 <(grep '^-A' "$before" | sort) <(grep '^-A' <<<"$now" | sort) | tac | while read -r line; do
		eval "$cmd -t $t ${line/#-A/-D}" 2>/dev/null || echo "run.sh: could not delete $cmd -t $t $line" >&2
	done
	comm -13 <(grep '^-N' "$before" | sort) <(grep '^-N' <<<"$now" | sort) | while read -r _ chain; do
		$cmd -t "$t" -F "$chain" 2>/dev/null
	done
	comm -13 <(grep '^-N' "$before" | sort) <(grep '^-N' <<<"$now" | sort) | while read -r _ chain; do
		$cmd -t "$t" -X "$chain" 2>/dev/null || echo "run.sh: could not delete chain $chain ($cmd -t $t)" >&2
	done
	grep '^-P' "$before" | while read -r _ chain policy; do
		$cmd -t "$t" -P "$chain" "$policy"
	done
}

restore_host() {
	local l t s v n
	# Bridges made by the engines or by this script, and any veth left on them.
	for l in "$berth_bridge" "$docker_bridge" "$podman_bridge" "${user_bridges[@]}"; do
		[[ -n $l ]] && ip link show "$l" >/dev/null 2>&1 || continue
		for v in $(ip -o link show master "$l" 2>/dev/null | awk -F': ' '{ print $2 }' | sed 's/@.*//'); do
			ip link del "$v" 2>/dev/null
		done
		ip link del "$l"
	done
	nft delete table inet "$table" 2>/dev/null
	for t in "${ipt_tables[@]}"; do
		restore_iptables iptables "$t"
		restore_iptables ip6tables "$t"
	done
	# Tables iptables-nft made for the engines (ip6 filter, ip mangle...)
	# that were not there before, once empty of rules.
	comm -13 "$host/before/nft-tables" <(nft list tables 2>/dev/null | sort) | while read -r _ fam name; do
		[[ $fam == ip || $fam == ip6 ]] && [[ $name =~ ^(filter|nat|mangle|raw|security)$ ]] || continue
		[[ $(nft -j list table "$fam" "$name" | jq '[.nftables[] | select(.rule)] | length') == 0 ]] &&
			nft delete table "$fam" "$name"
	done
	while IFS== read -r s v; do
		[[ -n $v && $(sysctl -n "$s" 2>/dev/null) != "$v" ]] && sysctl -q -w "$s=$v"
	done <"$host/before/sysctl"
	# netns files of podman's netavark (netns-UUID) that were not there before.
	for n in $(comm -13 "$host/before/netns" <(ls /run/netns 2>/dev/null | sort)); do
		[[ $n == netns-* ]] || continue
		umount -l "/run/netns/$n" 2>/dev/null
		rm -f "/run/netns/$n"
	done
	[[ $(cat "$host/before/var-lib-cni") == no ]] && rm -rf /var/lib/cni
	# What still differs (other work on this machine may show here too).
	snapshot "$host/after"
	local diffs
	diffs=$(cd "$host" && diff -r before after | grep '^[<>]' || true)
	if [[ -n $diffs ]]; then
		echo "run.sh: the host differs from before the run (other work on this machine, or a leftover):" >&2
		echo "$diffs" >&2
	else
		echo "run.sh: host state as before the run (iptables, nft tables, links, /run/netns, sysctls)" >&2
	fi
	rm -rf "$host"
}

cleanup() {
	set +e
	local p n
	# Networks first (their bridges), while the daemons still run.
	if [[ -n $berthd_pid ]]; then
		"${docker_cli[@]}" -H "unix://$berth_sock" rm -f $("${docker_cli[@]}" -H "unix://$berth_sock" ps -aq) >/dev/null 2>&1
		"${docker_cli[@]}" -H "unix://$berth_sock" network rm bbnnet >/dev/null 2>&1
	fi
	if [[ -n $dockerd_pid ]]; then
		"${docker_cli[@]}" -H "unix://$docker_sock" rm -f $("${docker_cli[@]}" -H "unix://$docker_sock" ps -aq) >/dev/null 2>&1
		"${docker_cli[@]}" -H "unix://$docker_sock" network rm bbnnet >/dev/null 2>&1
	fi
	if [[ -d $work/p ]]; then
		timeout 120 "${podman_cmd[@]}" rm -af -t 0 >/dev/null 2>&1
		"${podman_cmd[@]}" network rm -f bbnnet >/dev/null 2>&1
	fi
	[[ -n ${host_server_pid:-} ]] && kill "$host_server_pid" 2>/dev/null
	bench_cleanup_engines keep-work
	# berth-dns and aardvark-dns outlive their daemons by design; this run's
	# are the ones naming its work dir.
	for p in $(pgrep -f "$work/"); do kill "$p" 2>/dev/null; done
	sleep 0.5
	{ grep -o " $work[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r n; do umount -l "$n" 2>/dev/null; done
	rm -rf "$work"
	restore_host
}
trap cleanup EXIT

# --- the image: busybox and netbench ----------------------------------------
bench_busybox_rootfs "$work/rootfs"
gcc -O2 -static -Wall -o "$work/rootfs/bin/netbench" "$here/netbench.c"
cp "$work/rootfs/bin/netbench" "$work/netbench"
tar -C "$work/rootfs" --numeric-owner -cf "$work/busybox.tar" .

# --- engines ----------------------------------------------------------------
bench_start_berthd -b "$berth_bridge" --bip 10.240.0.1/24 --firewall-table "$table"

ip link add "$docker_bridge" type bridge
ip addr add 10.241.0.1/24 dev "$docker_bridge"
ip link set "$docker_bridge" up
bench_start_dockerd -b "$docker_bridge"

wait_socket berthd "$berth_sock"
wait_socket dockerd "$docker_sock"
"${docker_cli[@]}" -H "unix://$berth_sock" import "$work/busybox.tar" busybox:latest >/dev/null
"${docker_cli[@]}" -H "unix://$docker_sock" import "$work/busybox.tar" busybox:latest >/dev/null

mkdir -p "$work/p"
cat >"$work/p/containers.conf" <<EOF
[network]
default_subnet = "10.242.0.0/24"
EOF
export CONTAINERS_CONF=$work/p/containers.conf
"${podman_cmd[@]}" import --quiet "$work/busybox.tar" busybox:latest >/dev/null
bench_podman_limits
podman_bridge_ok=true podman_reason=""
if ! out=$("${podman_cmd[@]}" run --rm --cgroup-parent "$podman_cg" "${podman_limits[@]}" busybox true 2>&1); then
	podman_bridge_ok=false
	podman_reason="podman run on its default bridge failed: $(tail -1 <<<"$out")"
	echo "run.sh: skipping podman's bridge: $podman_reason" >&2
fi
export podman_backend=$("${podman_cmd[@]}" info --format '{{.Host.NetworkBackend}}' 2>/dev/null || echo unknown)

# User networks for phase 3 (their bridges are removed by the trap too).
bid=$("${docker_cli[@]}" -H "unix://$berth_sock" network create --subnet 10.243.0.0/24 bbnnet)
user_bridges+=("br-${bid:0:12}")
did=$("${docker_cli[@]}" -H "unix://$docker_sock" network create --subnet 10.244.0.0/24 bbnnet)
user_bridges+=("br-${did:0:12}")
if $podman_bridge_ok; then
	"${podman_cmd[@]}" network create --subnet 10.245.0.0/24 bbnnet >/dev/null
	user_bridges+=("$("${podman_cmd[@]}" network inspect bbnnet --format '{{.NetworkInterface}}')")
fi

# A server on the host itself: the loopback without any container.
"$work/netbench" server 18200 &
host_server_pid=$!

host_ip=$(ip -4 -o addr show dev "$(ip route show default | awk '{ print $5; exit }')" | awk '{ print $4 }' | cut -d/ -f1 | head -1)

# --- the run ----------------------------------------------------------------
export load_before=$(cut -d' ' -f1-3 /proc/loadavg)
export started=$(date -u +%Y-%m-%dT%H:%MZ)
jq -n \
	--argjson iterations "$ITERATIONS" --argjson warmup "$WARMUP" \
	--argjson tcp_rounds "$TCP_ROUNDS" --argjson tcp_seconds "$TCP_SECONDS" \
	--argjson rounds "$ROUNDS" --argjson count "$COUNT" \
	--arg work "$work" --arg tag "$tag" --arg netbench "$work/netbench" --arg host_ip "$host_ip" \
	--arg berth_cg "$berth_cg" --arg docker_cg "$docker_cg" --arg podman_cg "$podman_cg" \
	--argjson docker "$(printf '%s\n' "${docker_cli[@]}" | jq -R . | jq -s .)" \
	--argjson podman "$(printf '%s\n' "${podman_cmd[@]}" | jq -R . | jq -s .)" \
	--argjson limits "$(printf '%s\n' "${podman_limits[@]}" | jq -R . | jq -s .)" \
	--argjson podman_bridge "$podman_bridge_ok" --arg podman_reason "$podman_reason" \
	--arg bsock "unix://$berth_sock" --arg dsock "unix://$docker_sock" '{
		iterations: $iterations, warmup: $warmup, tcp_rounds: $tcp_rounds, tcp_seconds: $tcp_seconds,
		rounds: $rounds, count: $count, work: $work, tag: $tag, netbench: $netbench, host_ip: $host_ip,
		podman_bridge: $podman_bridge, podman_reason: $podman_reason,
		engines: {
			berthd: {cli: ($docker + ["-H", $bsock]), shim: ["berth-shim", ($work + "/b/")],
				daemons: [["berthd", ($work + "/b/")]], cgroup_parent: $berth_cg, port: 18201},
			dockerd: {cli: ($docker + ["-H", $dsock]), shim: ["containerd-shim-runc-v2", $tag],
				daemons: [["dockerd", ($work + "/d/")], ["containerd", ($work + "/d/")]],
				cgroup_parent: $docker_cg, port: 18202},
			podman: {cli: $podman, run_flags: (["--cgroup-parent", $podman_cg] + $limits),
				rm: ["rm", "-f", "-t", "0"], shim: ["conmon", ($work + "/p/")], daemons: [],
				cgroup_parent: $podman_cg, port: 18203}
		}
	}' >"$work/config.json"
mkdir -p "$work/out"
python3 "$here/driver.py" "$work/config.json" "$work/out"
export load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -----------------------------------------------------------------
bench_machine_env
export v_netavark=$(/usr/lib/podman/netavark --version 2>/dev/null || echo unknown)
export v_nft=$(nft --version) v_iptables=$(iptables --version) host_ip
export br_netfilter=$(sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null || echo "not loaded")
# What report.py prints about the machine, kept with the measurements
# (REPORT_ONLY=1 reads it back).
python3 - "$work/out/results.json" started load_before load_after commit dirty cpu mem cgroups \
	machine_kernel machine_debian nproc v_docker_cli v_dockerd v_containerd v_runc v_podman v_conmon \
	v_busybox v_netavark v_nft v_iptables host_ip br_netfilter podman_backend <<'EOF'
import json, os, sys
with open(sys.argv[1]) as f:
    r = json.load(f)
r["env"] = {k: os.environ.get(k, "") for k in sys.argv[2:]}
with open(sys.argv[1], "w") as f:
    json.dump(r, f, indent=1)
EOF
cp "$work/out/samples.csv" "$here/last-run.csv"
cp "$work/out/results.json" "$here/last-run.json"
python3 "$here/report.py" "$work/out/results.json" >"$work/section.md"
cat "$work/section.md"
if [[ ${NO_RESULTS:-0} != 1 ]]; then
	bench_write_section network "$work/section.md"
fi
