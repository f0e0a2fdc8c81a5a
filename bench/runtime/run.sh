#!/usr/bin/env bash
# Runtime benchmark: the whole lifecycle (create, start, wait for exit,
# delete) of busybox `true` for berth-runtime, crun and runc in one run,
# alternating between them every iteration, beside the kernel floor (a bare
# clone into the bundle's namespaces + pivot_root + exec of `true`). Also
# checks that no runtime process is left once `start` has returned.
#
# Usage (as root):  bench/runtime/run.sh
#
# Environment:
#   ITERATIONS     measured iterations per entry (default 200)
#   WARMUP         warm-up iterations, run but not recorded (default 3)
#   LINGER_ROUNDS  containers per runtime for the lingering check (default 5)
#   SKIP_BUILD=1   use the existing target/release/berth-runtime
#                  (under $CARGO_TARGET_DIR when that is set)
#   NO_RESULTS=1   print the table but leave bench/RESULTS.md alone
#
# It installs what it needs from apt, builds berth-runtime (release), makes
# the bundle and the two small C programs (driver.c, floor.c) in a temp dir,
# runs everything inside ONE private mount namespace, prints a table, writes
# the raw samples to bench/runtime/last-run.csv and rewrites the text between
# <!-- runtime:begin --> and <!-- runtime:end --> in bench/RESULTS.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
ITERATIONS=${ITERATIONS:-200}
WARMUP=${WARMUP:-3}
LINGER_ROUNDS=${LINGER_ROUNDS:-5}

if [[ $EUID -ne 0 ]]; then
	echo "run.sh: must run as root (runtimes need to create namespaces and cgroups)" >&2
	exit 1
fi

# --- packages -------------------------------------------------------------
need=()
for pair in crun:crun runc:runc jq:jq gcc:gcc unshare:util-linux; do
	command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
# The bundle's rootfs is made from Debian's static busybox, nothing else.
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if ((${#need[@]})); then
	echo "run.sh: installing ${need[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- berth-runtime --------------------------------------------------------
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
	(cd "$repo" && cargo build --release -p berth-runtime)
fi
berth=${CARGO_TARGET_DIR:-$repo/target}/release/berth-runtime
[[ -x $berth ]] || { echo "run.sh: $berth is missing; build it or unset SKIP_BUILD" >&2; exit 1; }
# For bench_remove_exe_copies: the runtime re-execs itself from a
# read-only copy it keeps under /run/berth-runtime-exe.
# shellcheck source=../engine/common.sh
source "$repo/bench/engine/common.sh"
crun=$(command -v crun)
runc=$(command -v runc)

work=$(mktemp -d /tmp/berth-bench-runtime.XXXXXX)
floor_cgroups=()
# berth-runtime's default cgroup parent (the bundle has no cgroupsPath),
# in each hierarchy where it does not exist yet: removed at the end, as
# the runtime leaves parents in place (runc does the same).
parent_cgroups=()
for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
	[[ -e $h/cgroup.procs && ! -d $h/berth ]] && parent_cgroups+=("${h%/}/berth")
done
cleanup() {
	# A container left by an aborted run would pin its cgroup and rootfs.
	# The state dirs are the driver's: $work/state-NAME for each entry.
	local rt bin dir id
	for rt in berth:"$berth" berth-ro:"$berth" crun:"$crun" runc:"$runc" control:"$runc"; do
		bin=${rt#*:} dir=$work/state-${rt%%:*}
		[[ -d $dir ]] || continue
		for id in $("$bin" --root "$dir" list -q 2>/dev/null || true); do
			"$bin" --root "$dir" delete --force "$id" >/dev/null 2>&1 || true
		done
	done
	rmdir "${floor_cgroups[@]}" 2>/dev/null || true
	rmdir "${parent_cgroups[@]}" 2>/dev/null || true
	bench_remove_exe_copies "$(dirname "$berth")"
	rm -rf "$work"
}
trap cleanup EXIT

# --- bundle ---------------------------------------------------------------
busybox=/bin/busybox
mkdir -p "$work/bundle/rootfs/bin"
# Copy, never link: the rootfs must not reach outside itself, and
# `busybox --list` names busybox itself, which must stay the real binary.
cp "$busybox" "$work/bundle/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
	[[ $applet == busybox ]] || ln -s busybox "$work/bundle/rootfs/bin/$applet"
done
(cd "$work/bundle" && "$berth" spec)
# ociVersion 1.1.0: crun 1.8.1 rejects the 1.2.0 that `spec` writes
# ("unknown version specified"); all three accept 1.1.0 and nothing in this
# config depends on 1.2.
jq '.ociVersion = "1.1.0" | .process.terminal = false | .process.args = ["true"]' \
	"$work/bundle/config.json" >"$work/c.json"
mv "$work/c.json" "$work/bundle/config.json"
# The lingering check needs a container that is still running after start.
mkdir -p "$work/linger"
jq --arg root "$work/bundle/rootfs" '.root.path = $root | .process.args = ["sleep", "30"]' \
	"$work/bundle/config.json" >"$work/linger/config.json"
mapfile -t namespaces < <(jq -r '.linux.namespaces[].type' "$work/bundle/config.json")

# berth-runtime re-execs from a sealed memfd copy of itself unless its
# binary sits on a read-only mount (CVE-2019-5736). Measure both installs:
# the build output as is, and a copy that the namespace below mounts
# read-only, as a packaged install would.
mkdir -p "$work/ro"
cp "$berth" "$work/ro/berth-runtime"
berth_ro=$work/ro/berth-runtime

# --- programs -------------------------------------------------------------
gcc -O2 -Wall -Wextra -Werror -o "$work/driver" "$here/driver.c" -lm
gcc -O2 -Wall -Wextra -Werror -o "$work/floor" "$here/floor.c"

# Why not a bash loop around `date +%s%N`: measure what one call costs.
date_cost_us=$(
	n=200
	a=$(date +%s%N)
	for ((i = 0; i < n; i++)); do b=$(date +%s%N); done
	echo $(((b - a) / n / 1000))
)

# A control for the lingering check, so it is seen to fail: runc, except
# that `start` leaves a sleeping process behind. The check must count it.
cat >"$work/leaky-runc" <<EOF
#!/bin/sh
for arg; do
	if [ "\$arg" = start ]; then sleep 2 </dev/null >/dev/null 2>&1 & break; fi
done
exec $runc "\$@"
EOF
chmod +x "$work/leaky-runc"

# --- the run --------------------------------------------------------------
# Other work shares this machine; a higher priority (inherited by every
# runtime and the floor alike) keeps it from stretching the samples.
renice -n -10 -p $$ >/dev/null 2>&1 && niced=-10 || niced=0
: >"$work/empty"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%Y-%m-%dT%H:%MZ)
export work berth berth_ro crun runc ITERATIONS WARMUP LINGER_ROUNDS
# The second floor also joins one new cgroup per hierarchy, as a runtime
# does: every v1 hierarchy, or the cgroup2 mount when there is no v1.
mapfile -t hierarchies < <(awk '{ for (i = 1; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup") print $5; break } }' /proc/self/mountinfo)
if ((${#hierarchies[@]} == 0)); then
	mapfile -t hierarchies < <(awk '{ for (i = 1; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' /proc/self/mountinfo)
fi
cg_args=""
for h in "${hierarchies[@]}"; do
	floor_cgroups+=("$h/berth-bench-floor-$$")
	cg_args+=" -g $h/berth-bench-floor-$$"
done
export floor_cmd="$work/floor $work/bundle/rootfs ${namespaces[*]}"
export floor_cg_cmd="$work/floor$cg_args $work/bundle/rootfs ${namespaces[*]}"
# One private mount namespace for every runtime. crun refuses this machine's
# v1/v2 hybrid (cgroup2 at /sys/fs/cgroup/unified with no controllers); an
# empty cgroup.controllers there makes it take the v1 path. All runtimes see
# the same view so the comparison stays fair.
set +e
unshare -m --propagation private -- bash -euo pipefail -c '
	controllers=/sys/fs/cgroup/unified/cgroup.controllers
	if [[ -e $controllers ]]; then mount --bind "$work/empty" "$controllers"; fi
	mount --bind "$work/ro" "$work/ro"
	mount -o remount,bind,ro "$work/ro"
	rc=0
	"$work/driver" lifecycle "$work/bundle" "$work" "$ITERATIONS" "$WARMUP" "$work/samples.csv" \
		berth="$berth" berth-ro="$berth_ro" crun="$crun" runc="$runc" \
		"cmd:floor=$floor_cmd" "cmd:floor+cgroups=$floor_cg_cmd" || rc=$?
	"$work/driver" linger "$work/linger" "$work" "$LINGER_ROUNDS" \
		berth="$berth" berth-ro="$berth_ro" crun="$crun" runc="$runc" control="$work/leaky-runc" \
		>"$work/linger.txt" || rc=$?
	exit $rc
' 2> >(tee "$work/driver-stderr.txt" >&2)
status=$?
wait $! # the tee behind the process substitution, so its file is complete
set -e
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ $status -ne 0 && $status -ne 3 ]]; then
	echo "run.sh: the benchmark itself failed (status $status)" >&2
	exit "$status"
fi
cp "$work/samples.csv" "$here/last-run.csv"
"$work/driver" stats "$work/samples.csv" >"$work/stats.tsv"

# --- report ---------------------------------------------------------------
ms() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns / 1e6 }'; }
declare -A p50 p10s cpu
table="| entry | n | p10 ms | median ms | p90 ms | create | start | wait | delete | CPU ms |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
label_of() {
	case $1 in
	berth) echo berth-runtime ;;
	berth-ro) echo "berth-runtime, binary on a read-only mount" ;;
	control) echo "control: runc whose \`start\` leaves a \`sleep 2\` behind" ;;
	*) echo "$1" ;;
	esac
}
for entry in berth berth-ro crun runc floor floor+cgroups; do
	IFS=$'\t' read -r name n p10 med p90 c s w d u < <(awk -F'\t' -v e="$entry" '$1 == e' "$work/stats.tsv")
	[[ -n ${name:-} ]] || continue # failed before its first sample
	p50[$name]=$med
	p10s[$name]=$p10
	cpu[$name]=$u
	if [[ $name == floor* ]]; then
		phases=" | | | "
	else
		phases="$(ms "$c") | $(ms "$s") | $(ms "$w") | $(ms "$d")"
	fi
	label=$(label_of "$name")
	table+="
| $label | $n | $(ms "$p10") | $(ms "$med") | $(ms "$p90") | $phases | $(ms "$u") |"
done

# ratio A B ARRAY: A's value over B's in p50 or p10s.
ratio() {
	local -n v=$3
	if [[ -n ${v[$1]:-} && -n ${v[$2]:-} ]]; then
		awk -v a="${v[$1]}" -v b="${v[$2]}" 'BEGIN { printf "%.2f", a / b }'
	else
		echo "n/a"
	fi
}
ratios="| ratio | of medians | of p10s | of CPU medians | goal (medians) |
|---|---:|---:|---:|---|"
for pair in "berth crun at most 0.5" "berth runc" "berth floor at most 2" \
	"berth-ro crun at most 0.5" "berth-ro runc" "berth-ro floor at most 2" "crun floor" "runc floor" \
	"berth floor+cgroups" "berth-ro floor+cgroups" "crun floor+cgroups" "runc floor+cgroups" "floor+cgroups floor"; do
	read -r a b goal <<<"$pair"
	ratios+="
| $a / $b | $(ratio "$a" "$b" p50) | $(ratio "$a" "$b" p10s) | $(ratio "$a" "$b" cpu) | $goal |"
done

linger="| runtime | containers with a process left at \`start\`'s return | ... and 100 ms later | container init re-parented to the caller |
|---|---:|---:|---:|"
while read -r _ name rounds at later parent rest; do
	rounds=${rounds#*=}
	label=$(label_of "$name")
	linger+="
| $label | ${at#*=}/$rounds | ${later#*=}/$rounds | ${parent#*=}/$rounds${rest:+ (failed)} |"
done < <(grep '^LINGER ' "$work/linger.txt")
linger_procs=$(grep '^LINGER-PROC ' "$work/linger.txt" | grep -v '^LINGER-PROC control ' || true)
control_seen=$(awk '$1 == "LINGER" && $2 == "control" { sub("at_return=", "", $4); print $4 }' "$work/linger.txt")
if [[ ${control_seen:-0} -eq 0 ]]; then
	echo "run.sh: the lingering check did not see the control's leaked process; its results are void" >&2
	status=4
fi

failures=$(grep -A21 '^FAIL ' "$work/driver-stderr.txt" || true)

version_of() { "$@" 2>/dev/null | head -1; }
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
# The worktree is shared: name the crates whose uncommitted edits were built in.
dirty=$(git -C "$repo" status --porcelain -- crates 2>/dev/null | awk '{ print $2 }' | cut -d/ -f2 | sort -u | paste -sd, - | sed 's/,/, /g')
versions="- berth-runtime: $(version_of "$berth" --version), commit $commit${dirty:+ plus uncommitted changes in $dirty}
- crun: $(version_of crun --version) (Debian $(dpkg-query -W -f='${Version}' crun))
- runc: $(version_of runc --version) (Debian $(dpkg-query -W -f='${Version}' runc))
- busybox: $(dpkg-query -W -f='${Version}' busybox-static) (busybox-static); gcc $(gcc -dumpfullversion)"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
machine="- $(nproc) CPUs, $cpu; kernel $(uname -r); Debian $(cat /etc/debian_version)
- cgroups: $(if [[ -e /sys/fs/cgroup/unified/cgroup.controllers ]]; then echo "v1/v2 hybrid (cgroup2 at /sys/fs/cgroup/unified, controllers: \"$(cat /sys/fs/cgroup/unified/cgroup.controllers)\")"; else stat -f -c '%T at /sys/fs/cgroup' /sys/fs/cgroup; fi)
- load average (1/5/15 min) before: $load_before, after: $load_after (the machine is shared; see p90)"

section="## Runtime: lifecycle of busybox \`true\`

Generated by \`bench/runtime/run.sh\` on $started. Raw samples:
\`bench/runtime/last-run.csv\`.

$table

Times are wall-clock per container. $ITERATIONS measured iterations per
entry after $WARMUP warm-ups; p10/p90 by linear interpolation. The phase
columns are medians of each phase alone (they need not add up to the
total's median). CPU is the median user+system time of every process the
lifecycle ran (runtime commands, their helpers, the container). The
machine is shared with other builds (see the load average below), which
stretches wall-clock times; the p10 and CPU ratios show the comparison with
the least interference. Time a runtime spends waiting on the kernel (as
for the RCU grace period of a cgroup v1 migration by pid) shows in
wall-clock time only.

$ratios

### No lingering runtime process after \`start\`

A container running \`sleep 30\` is created and started; right after
\`start\` returns (and again 100 ms later) the caller, a child subreaper
as a shim is, lists every process descended from it that is not the
container's own process tree. A runtime that leaves nothing behind shows
0 and has its container's init re-parented straight to the caller. The
control row shows the check catching a leaked process.

$linger
${linger_procs:+
Processes found:

\`\`\`
$linger_procs
\`\`\`
}${failures:+
### Failures

\`\`\`
$failures
\`\`\`
}
$(cat "$here/ANALYSIS.md")

### Machine and versions

$machine
$versions

### Method

- One process, \`bench/runtime/driver.c\` (compiled with gcc at bench
  time), runs every command with posix_spawn and times it with
  clock_gettime(CLOCK_MONOTONIC) (nanosecond resolution). A bash loop with
  \`date +%s%N\` was rejected: one call costs ${date_cost_us} µs here, a fork and
  exec, the same order as the floor.
- Each iteration runs both berth-runtime installs, crun, runc and both floors once each; the
  entry that goes first rotates every iteration. Everything runs at nice
  $niced.
- Lifecycle: \`RT --root DIR create --bundle B --pid-file F ID\`, then
  \`RT --root DIR start ID\`, then wait for the container's init to exit
  (pidfd_open on the pid from F, then poll; the driver is a child subreaper
  and reaps it), then \`RT --root DIR delete ID\`. Every runtime gets its own
  \`--root\` under a temp dir. The pid-file read and pidfd_open between
  create and start are not timed.
- Bundle: rootfs made at bench time from Debian's /bin/busybox (copied, with
  its applet symlinks); config.json from \`berth-runtime spec\` with
  \`terminal: false\`, \`args: [\"true\"]\` and \`ociVersion: 1.1.0\` (crun
  1.8.1 rejects the 1.2.0 that \`spec\` writes) and nothing else changed
  (namespaces: ${namespaces[*]}; read-only root; the same file for all
  three runtimes). No cgroupsPath, so each runtime picks its default.
- berth-runtime twice: \`berth\` is target/release/berth-runtime as built; it
  sits on a writable mount, so every \`create\` first copies the binary into
  a sealed memfd and re-execs from it (its CVE-2019-5736 guard).
  \`berth-ro\` is the same binary copied to a directory that the bench's
  mount namespace bind-mounts read-only, which the guard accepts without a
  copy, as it would for a packaged install on a read-only /usr.
- Floor (\`bench/runtime/floor.c\`): one clone() into the same namespaces,
  then in the child: make / rprivate, bind the rootfs onto itself,
  pivot_root(\".\", \".\"), detach the old root, exec /bin/true; the parent
  waits. Timed like a runtime command, so it includes the exec of the floor
  program itself. No /proc, /dev, cgroups, capabilities or state.
- floor+cgroups: the same, plus what cgroup placement costs the kernel:
  before the clone it creates one cgroup in each of ${#hierarchies[@]} hierarchies
  (${hierarchies[*]}), copying cpuset.cpus/mems where needed;
  and opens each one's \`tasks\` file; after the clone the child writes \"0\"
  to each (a thread moving itself: the cheapest way into a v1 cgroup, as
  the kernel then takes no threadgroup lock and waits for no RCU grace
  period; v1 has no CLONE_INTO_CGROUP), then unshares its cgroup namespace;
  the cgroups are removed after the child is reaped. This is the floor that any runtime placing containers in cgroups
  on this machine can approach; the issue's goal is against the bare one.
- Everything runs inside one \`unshare -m --propagation private\` mount
  namespace in which an empty file is bind-mounted over
  /sys/fs/cgroup/unified/cgroup.controllers, so crun accepts this machine's
  hybrid cgroup layout; berth-runtime and runc run in the same namespace."

printf '%s\n' "$table" "" "$ratios" "" "$linger"
[[ -n $linger_procs ]] && printf '\n%s\n' "$linger_procs"
[[ -n $failures ]] && printf '\nFailures:\n%s\n' "$failures"

if [[ ${NO_RESULTS:-0} != 1 ]]; then
	results=$repo/bench/RESULTS.md
	[[ -e $results ]] || printf '# Benchmark results\n\nEach section is rewritten by its own script under bench/.\n' >"$results"
	if ! grep -q '^<!-- runtime:begin -->$' "$results"; then
		printf '\n<!-- runtime:begin -->\n<!-- runtime:end -->\n' >>"$results"
	fi
	printf '%s\n' "$section" >"$work/section.md"
	awk -v file="$work/section.md" '
		/^<!-- runtime:begin -->$/ { print; while ((getline l < file) > 0) print l; skip = 1; next }
		/^<!-- runtime:end -->$/ { skip = 0 }
		!skip { print }
	' "$results" >"$work/RESULTS.md"
	cat "$work/RESULTS.md" >"$results"
	echo "run.sh: wrote the runtime section of $results" >&2
fi
exit $((status == 0 ? 0 : status))
