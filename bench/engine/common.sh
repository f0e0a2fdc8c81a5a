# Shared by bench/engine/run.sh and bench/network/run.sh (sourced, not run):
# packages, the release build, the work dir and its names, the busybox
# rootfs, starting berthd and dockerd side by side, cleanup, the machine
# description and the RESULTS.md section writer.
#
# Set by bench_init: here repo bin work tag berth_cg docker_cg podman_cg
# berthd_pid dockerd_pid docker_cli berth_sock docker_sock podman_cmd.

bench_require_root() { # script name
	if [[ $EUID -ne 0 ]]; then
		echo "$1: must run as root (engines mount, create namespaces and cgroups)" >&2
		exit 1
	fi
}

bench_packages() { # [command:package ...] beyond the engines' own
	local need=() pair
	for pair in dockerd:docker.io podman:podman runc:runc jq:jq python3:python3 tar:tar "$@"; do
		command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
	done
	command -v docker >/dev/null || need+=(docker.io)
	dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
	if ((${#need[@]})); then
		echo "bench: installing ${need[*]}" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
		# Debian's docker.io starts its own daemon where an init system runs.
		service docker stop >/dev/null 2>&1 || true
	fi
}

bench_build() { # sets bin
	if [[ ${SKIP_BUILD:-0} != 1 ]]; then
		(cd "$repo" && cargo build --release -p berthd -p berth-shim -p berth-dns -p berth-runtime -p berth)
	fi
	bin=${CARGO_TARGET_DIR:-$repo/target}/release
	local b
	for b in berthd berth-shim berth-dns berth-runtime berth; do
		[[ -x $bin/$b ]] || { echo "bench: $bin/$b is missing; build it or unset SKIP_BUILD" >&2; exit 1; }
	done
}

bench_init() { # work-dir prefix (short: containerd's sockets live under dockerd's exec root, 108-byte paths)
	work=$(mktemp -d "/tmp/$1.XXXXXX")
	tag=$1-$$
	berth_cg=/$tag-berth docker_cg=/$tag-docker podman_cg=/$tag-podman
	berthd_pid="" dockerd_pid=""
	docker_cli=(docker --config "$work/docker-client")
	berth_sock=$work/b/berth.sock
	docker_sock=$work/d/docker.sock
	podman_cmd=(podman --root "$work/p/root" --runroot "$work/p/run" --tmpdir "$work/p/tmp"
		--network-config-dir "$work/p/net" --runtime runc --cgroup-manager cgroupfs
		--events-backend file --storage-driver overlay)
}

stop_pid() { # pid: SIGTERM, then wait up to 30 s, then SIGKILL
	local pid=$1
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
}

bench_cleanup_engines() { # [keep-work]: every container, the daemons, mounts, cgroups, the work dir
	local ids cg h
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
	bench_remove_exe_copies "$bin"
	[[ ${1:-} == keep-work ]] || rm -rf "$work"
}

bench_remove_exe_copies() { # dir: berth's read-only copies of the binaries in DIR
	# berthd runs berth-shim (and the runtime re-execs itself) from a copy
	# bind-mounted read-only onto itself under /run/berth-runtime-exe
	# (berth_sys::exe_copy), kept between runs of an installed binary; a
	# bench's binaries are its own, so their copies go with it. A sidecar
	# `<slot>.src` names the copied path on its second line.
	local side slot
	for side in /run/berth-runtime-exe/*.src; do
		[[ -f $side && $(sed -n 2p "$side") == "$1"/* ]] || continue
		slot=${side%.src}
		while awk -v s="$slot" '$5 == s { found = 1 } END { exit !found }' /proc/self/mountinfo; do
			umount -l "$slot" || { echo "bench: LEAK: cannot unmount $slot" >&2; break; }
		done
		rm -f "$slot" "$slot.lock" "$side"
	done
}

bench_busybox_rootfs() { # dir: Debian's static busybox and its applet links
	local dir=$1 applet
	mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp" "$dir/proc" "$dir/sys" "$dir/dev"
	cp /bin/busybox "$dir/bin/busybox"
	for applet in $(/bin/busybox --list); do
		[[ $applet == busybox ]] || ln -s busybox "$dir/bin/$applet"
	done
}

bench_spawn_berthd() { # dir socket [berthd flags]: a berthd on DIR's own roots; sets spawned_pid
	local dir=$1 sock=$2
	shift 2
	mkdir -p "$dir"
	echo '{}' >"$dir/daemon.json"
	"$bin/berthd" --config-file "$dir/daemon.json" --data-root "$dir/data" \
		--exec-root "$dir/exec" -H "unix://$sock" --cgroup-parent "$berth_cg" "$@" \
		</dev/null >"$dir/berthd.log" 2>&1 &
	spawned_pid=$!
}

bench_spawn_dockerd() { # dir socket containerd-namespace [dockerd flags]: sets spawned_pid
	local dir=$1 sock=$2 ns=$3
	shift 3
	mkdir -p "$dir"
	echo '{}' >"$dir/daemon.json"
	dockerd --config-file "$dir/daemon.json" --data-root "$dir/data" --exec-root "$dir/exec" \
		--pidfile "$dir/docker.pid" -H "unix://$sock" "$@" \
		--exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "$docker_cg" \
		--containerd-namespace "$ns" --containerd-plugins-namespace "$ns-plugins" \
		</dev/null >"$dir/dockerd.log" 2>&1 &
	spawned_pid=$!
}

bench_start_berthd() { # extra berthd flags
	bench_spawn_berthd "$work/b" "$berth_sock" "$@"
	berthd_pid=$spawned_pid
}

bench_start_dockerd() { # extra dockerd flags (networking)
	bench_spawn_dockerd "$work/d" "$docker_sock" "$tag" "$@"
	dockerd_pid=$spawned_pid
}

wait_socket() { # name socket
	for _ in $(seq 1 600); do
		[[ -S $2 ]] && "${docker_cli[@]}" -H "unix://$2" version >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "bench: $1 did not answer on $2" >&2
	exit 1
}

bench_podman_limits() { # sets podman_limits
	# podman asks for more open files than this machine's hard limit allows
	# (crun and runc then fail in setrlimit); the same limits it would clamp to.
	local nofile
	nofile=$(ulimit -Hn)
	((nofile > 1048576)) && nofile=1048576
	podman_limits=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=32768:32768")
}

bench_machine_env() { # exports what the report scripts print about the machine
	commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
	dirty=$(git -C "$repo" status --porcelain -- crates 2>/dev/null | awk '{ print $2 }' | cut -d/ -f2 | sort -u | paste -sd, - | sed 's/,/, /g')
	cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
	mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	cgroups=$(if [[ -e /sys/fs/cgroup/unified/cgroup.controllers ]]; then echo "v1/v2 hybrid"; else stat -f -c '%T' /sys/fs/cgroup; fi)
	export commit dirty cpu mem cgroups
	export machine_kernel=$(uname -r) machine_debian=$(cat /etc/debian_version) nproc=$(nproc)
	export v_docker_cli=$(docker --version)
	export v_dockerd=$(dockerd --version) v_containerd=$(containerd --version)
	export v_runc=$(runc --version | head -1) v_podman=$(podman --version) v_conmon=$(conmon --version | head -1)
	export v_busybox=$(dpkg-query -W -f='${Version}' busybox-static)
}

bench_write_section() { # name section-file: rewrites NAME's part of bench/RESULTS.md
	local name=$1 section=$2 results=$repo/bench/RESULTS.md
	if ! grep -q "^<!-- $name:begin -->\$" "$results"; then
		printf '\n<!-- %s:begin -->\n<!-- %s:end -->\n' "$name" "$name" >>"$results"
	fi
	awk -v file="$section" -v b="<!-- $name:begin -->" -v e="<!-- $name:end -->" '
		$0 == b { print; while ((getline l < file) > 0) print l; skip = 1; next }
		$0 == e { skip = 0 }
		!skip { print }
	' "$results" >"$work/RESULTS.md"
	cat "$work/RESULTS.md" >"$results"
	echo "bench: wrote the $name section of $results" >&2
}
