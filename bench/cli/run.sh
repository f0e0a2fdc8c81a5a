#!/usr/bin/env bash
# CLI benchmark: berth's CLI against Debian's docker client (docker.io,
# /usr/bin/docker), both talking to one berthd, so the difference is the
# clients' own.
#
#  1. The process alone, no daemon: `--version`.
#  2. Against the running berthd: `version`, `ps -a` with 100 created
#     containers, `images`, `inspect` of one container; and the same
#     requests made straight over the socket (one connection each, from
#     the driver) as the daemon's share of the time, so that a client's own
#     time is its median minus that.
#  Every entry alternates between the clients each iteration; medians,
#  p10/p90 and ratios.
#
# Usage (as root):  bench/cli/run.sh
#
# Environment:
#   ITERATIONS     measured runs per command and client (default 40)
#   WARMUP         warm-up runs, not recorded (default 3)
#   COUNT          created containers for `ps` (default 100)
#   SKIP_BUILD=1   use the existing release binaries (under $CARGO_TARGET_DIR)
#   NO_RESULTS=1   print the section but leave bench/RESULTS.md alone
#
# berthd runs in a temp work dir with no default bridge; the containers
# are created (never started) from a busybox rootfs imported as
# busybox:latest, and removed at the end with the daemon and the work
# dir. Raw samples go to bench/cli/last-run.csv; the text between
# <!-- cli:begin --> and <!-- cli:end --> in bench/RESULTS.md is rewritten.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
ITERATIONS=${ITERATIONS:-40}
WARMUP=${WARMUP:-3}
COUNT=${COUNT:-100}
DOCKER=/usr/bin/docker

# shellcheck source=../engine/common.sh
source "$repo/bench/engine/common.sh"
bench_require_root run.sh
if [[ ! -x $DOCKER ]]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
	service docker stop >/dev/null 2>&1 || true
fi
dpkg -s busybox-static >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
bench_build

bench_init bbc
# Debian's client, with a config dir of its own.
docker_cli=("$DOCKER" --config "$work/docker-client")
cleanup() {
	set +e
	bench_cleanup_engines
	nft delete table inet "${tag//-/_}" 2>/dev/null
}
trap cleanup EXIT

bench_busybox_rootfs "$work/rootfs"
tar -C "$work/rootfs" --numeric-owner -cf "$work/busybox.tar" .
bench_start_berthd -b none --firewall-table "${tag//-/_}"
wait_socket berthd "$berth_sock"
"${docker_cli[@]}" -H "unix://$berth_sock" import "$work/busybox.tar" busybox:latest >/dev/null
for i in $(seq 1 "$COUNT"); do
	"${docker_cli[@]}" -H "unix://$berth_sock" create --network none --name "c$i" busybox true >/dev/null
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%Y-%m-%dT%H:%MZ)
python3 "$here/driver.py" "$work/result.json" "$here/last-run.csv" "$berth_sock" \
	"$ITERATIONS" "$WARMUP" "$COUNT" "$bin/berth" "${docker_cli[@]}"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
export load_before load_after started
bench_machine_env
export v_docker_cli=$("$DOCKER" --version) v_berth=$("$bin/berth" --version)
python3 "$here/report.py" "$work/result.json" >"$work/section.md"
cat "$work/section.md"
[[ ${NO_RESULTS:-0} == 1 ]] || bench_write_section cli "$work/section.md"
