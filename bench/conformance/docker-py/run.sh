#!/usr/bin/env bash
# Run docker-py's own integration suite (tests/integration, pytest) against
# a private berthd and a private dockerd on this machine and summarise
# pass/fail/skip per daemon, side by side.
#
# Usage:
#   bench/conformance/docker-py/run.sh [DOCKER_PY_SOURCE]
#
#   DOCKER_PY_SOURCE  where docker-py's tests come from: a source tree that
#                     has tests/integration, or a git repository (bare or
#                     not) holding the tag $DOCKER_PY_VERSION, from which
#                     tests/ and pytest.ini are exported with `git archive`.
#                     Default: a clone of https://github.com/docker/docker-py
#                     in $WORK/docker-py.git (made once). Nothing is ever
#                     written into this repository.
#
# Environment:
#   WORK               cache and output dir (default
#                      ${XDG_CACHE_HOME:-$HOME/.cache}/berth/docker-py):
#                      venv/, src/ (the exported tests), rootfs-N.tar,
#                      results/<daemon>.{json,xml,log,daemon.log}, summary.md.
#   DAEMONS            daemons to run, in order (default "berthd dockerd").
#   DOCKER_PY_VERSION  docker-py release: the PyPI package installed in the
#                      venv and the git tag the tests come from (default 7.2.0).
#   BERTH_BIN          dir with berthd and the binaries it runs beside
#                      itself: berth-shim, berth-runtime, berth-dns (user
#                      networks' DNS), berth-init (--init) (default: this
#                      repository's target/release, built with
#                      `cargo build --release -p ...` for those five unless
#                      SKIP_BUILD=1). They are copied into the daemon's
#                      temp dir, so a rebuild meanwhile does not change the
#                      run.
#   BERTH_COMMIT       what the berthd binaries were built from, for the
#                      summary (default: this repository's HEAD, noting
#                      uncommitted changes under crates/, when BERTH_BIN is
#                      the default). Others may rebuild target/release
#                      meanwhile: for a measurement of one commit, build a
#                      clean clone with its own CARGO_TARGET_DIR and point
#                      BERTH_BIN at it.
#   DOCKERD            dockerd binary (default /usr/sbin/dockerd, Debian's
#                      docker.io, installed when missing).
#   TEST_TIMEOUT       per-test timeout in seconds (default 180).
#   DOCKERD_NETWORK    "none" (default): dockerd without its bridge and
#                      firewall, in the host's network namespace; "netns":
#                      dockerd with its default bridge, iptables and
#                      userland proxy, as installed, in a network namespace
#                      of its own (dpy-<pid>, entered with nsenter: `ip netns
#                      exec` would remount /sys without its cgroups) where
#                      pytest runs too, so its
#                      published ports are reachable and the host's network
#                      and firewall are still left alone.
#   PYTEST_ARGS        extra pytest arguments, with shell quoting
#                      (e.g. "-k 'KillTest or test_stats'").
#
# The selection: tests/integration minus the swarm-mode files (api_swarm,
# api_service, api_secret, api_config, models_swarm, models_services,
# models_nodes) and minus credentials/ (docker-credential-helpers' tests,
# which need `pass` and a GPG key, not a daemon): 284 tests at 7.2.0.
# DOCKER_TEST_API_VERSION=1.41, DOCKER_HOST=unix://<the daemon's socket>,
# HOME is a private dir (context tests write ~/.docker).
#
# Stand-in images: the suite uses alpine:3.10 (TEST_IMG), alpine:latest and
# busybox:latest and pulls alpine and hello-world from Docker Hub. There is
# no Docker Hub here, so one rootfs made from Debian's busybox-static (every
# applet linked in /bin, Alpine's /etc/passwd and /etc/group, so that users
# such as `postgres` exist) is imported through each daemon's API with
# CMD ["/bin/sh"] and Alpine's PATH, and tagged alpine:3.10, alpine:latest,
# busybox:latest and busybox:buildroot-2014.02 (older suites' TEST_IMG).
# Tests that pull still need the internet and fail on every daemon.
#
# Each daemon gets its own dirs under a fresh /tmp/dpy-<daemon>-XXXXXX (short:
# containerd's socket paths), socket, cgroup parent /<that dir's name>.
# dockerd: --bridge=none --iptables=false --ip6tables=false --ip-forward=false
# --ip-masq=false --userland-proxy=false, cgroupfs driver, its own containerd
# (namespace dpy-<pid>), as tests/integration/src/peers.rs starts it, so the
# host's network and firewall are left alone. Afterwards every container is
# removed, the daemon gets SIGTERM, and what remains of it (processes whose
# command line names its dir, mounts under it, its cgroup parent) is
# reported and removed.
set -euo pipefail

die() {
	echo "docker-py-conformance: $*" >&2
	exit 1
}
log() { echo "docker-py-conformance: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "the daemons need root; run as root"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
# bench_remove_exe_copies (functions only).
source "$REPO/bench/engine/common.sh"
WORK=$(readlink -m "${WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/docker-py}")
DAEMONS=${DAEMONS:-"berthd dockerd"}
DOCKER_PY_VERSION=${DOCKER_PY_VERSION:-7.2.0}
BERTH_BIN=${BERTH_BIN:-$REPO/target/release}
# berthd runs the others from beside its own executable.
BERTH_BINARIES="berthd berth-shim berth-runtime berth-dns berth-init"
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
TEST_TIMEOUT=${TEST_TIMEOUT:-180}
DOCKERD_NETWORK=${DOCKERD_NETWORK:-none}
case "$DOCKERD_NETWORK" in none | netns) ;; *) die "DOCKERD_NETWORK=$DOCKERD_NETWORK: expected none or netns" ;; esac
NETNS=  # the network namespace dockerd and its pytest run in (netns mode)
PYTEST_ARGS=${PYTEST_ARGS:-}
# Split as the shell would, so a quoted -k expression stays one argument.
eval "PYTEST_EXTRA=($PYTEST_ARGS)"
# berthd's default network gets a bridge, range and nft table of its own,
# so that another berthd on this machine (berth0, table berth) is untouched.
BERTH_BRIDGE=${BERTH_BRIDGE:-bdpy0}
BERTH_BIP=${BERTH_BIP:-10.212.0.1/24}
BERTH_TABLE=${BERTH_TABLE:-berth_dpy}
SOURCE=${1:-}
if [ -z "${BERTH_COMMIT:-}" ]; then
	if [ "$BERTH_BIN" = "$REPO/target/release" ]; then
		BERTH_COMMIT=$(git -C "$REPO" rev-parse --short HEAD)
		[ -z "$(git -C "$REPO" status --porcelain -- crates Cargo.lock)" ] ||
			BERTH_COMMIT="$BERTH_COMMIT + uncommitted changes"
	else
		BERTH_COMMIT="unknown commit: set BERTH_COMMIT"
	fi
fi

case "$WORK" in
"$REPO" | "$REPO"/*) die "WORK ($WORK) is inside the repository; choose a dir outside it" ;;
esac
mkdir -p "$WORK/results"

need_pkg() { # command package
	command -v "$1" >/dev/null 2>&1 && return 0
	log "installing $2"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null
}

# --- docker-py's tests -------------------------------------------------------
export_tests() { # git-dir
	local git=$1
	git --git-dir="$git" rev-parse -q --verify "refs/tags/$DOCKER_PY_VERSION^{commit}" >/dev/null ||
		die "$git has no tag $DOCKER_PY_VERSION"
	rm -rf "$WORK/src.new"
	mkdir -p "$WORK/src.new"
	git --git-dir="$git" archive "refs/tags/$DOCKER_PY_VERSION" tests pytest.ini |
		tar -x -C "$WORK/src.new"
	git --git-dir="$git" rev-parse "refs/tags/$DOCKER_PY_VERSION^{commit}" >"$WORK/src.new/COMMIT"
	rm -rf "$WORK/src"
	mv "$WORK/src.new" "$WORK/src"
}

if [ -n "$SOURCE" ] && [ -d "$SOURCE/tests/integration" ]; then
	rm -rf "$WORK/src"
	mkdir -p "$WORK/src"
	cp -a "$SOURCE/tests" "$WORK/src/"
	[ -f "$SOURCE/pytest.ini" ] && cp "$SOURCE/pytest.ini" "$WORK/src/"
	(git -C "$SOURCE" rev-parse HEAD 2>/dev/null || echo unknown) >"$WORK/src/COMMIT"
elif [ -n "$SOURCE" ]; then
	git_dir=$(git -C "$SOURCE" rev-parse --absolute-git-dir 2>/dev/null) ||
		die "$SOURCE is neither a docker-py tree (tests/integration) nor a git repository"
	export_tests "$git_dir"
else
	if [ ! -d "$WORK/docker-py.git" ]; then
		git clone --bare -q https://github.com/docker/docker-py "$WORK/docker-py.git" ||
			die "cannot clone docker-py; pass a local copy as the first argument"
	fi
	export_tests "$WORK/docker-py.git"
fi
DOCKER_PY_COMMIT=$(cat "$WORK/src/COMMIT")
log "docker-py tests $DOCKER_PY_VERSION ($DOCKER_PY_COMMIT) in $WORK/src"

# --- Python: the released docker-py from PyPI plus upstream's test pins ------
VENV=$WORK/venv
if ! "$VENV/bin/python" -c "import docker, sys; sys.exit(docker.__version__ != '$DOCKER_PY_VERSION')" 2>/dev/null; then
	rm -rf "$VENV"
	python3 -m venv "$VENV"
	"$VENV/bin/pip" install -q "docker[ssh,websockets]==$DOCKER_PY_VERSION" \
		pytest==7.4.2 pytest-timeout==2.1.0
fi
PY=$VENV/bin/python

# --- stand-in image rootfs ---------------------------------------------------
need_pkg busybox busybox-static
# Versioned: change the number when the layout below changes.
ROOTFS_TAR=$WORK/rootfs-2.tar
if [ ! -s "$ROOTFS_TAR" ]; then
	r=$(mktemp -d /tmp/dpy-rootfs-XXXXXX)
	# Alpine's directory layout (alpine-baselayout), so that paths tests
	# use exist (e.g. exec's workdir /var/opt).
	mkdir -p "$r"/{bin,sbin,lib,dev,proc,sys,run,mnt,opt,srv,home,root,tmp,etc/apk,etc/opt} \
		"$r"/media/{cdrom,floppy,usb} "$r"/usr/{bin,sbin,lib,share} \
		"$r"/usr/local/{bin,lib,share} \
		"$r"/var/{cache,empty,lib,local,lock,log,mail,opt,run,spool,spool/cron,tmp}
	chmod 1777 "$r/tmp" "$r/var/tmp"
	chmod 700 "$r/root"
	busybox_static=$(readlink -f "$(command -v busybox)")
	file_type=$(head -c 4 "$busybox_static" | od -An -c | tr -d ' ')
	[ "$file_type" = "177ELF" ] || die "$busybox_static is not an ELF binary"
	cp "$busybox_static" "$r/bin/busybox"
	for applet in $("$r/bin/busybox" --list); do
		[ "$applet" = busybox ] || ln -sf busybox "$r/bin/$applet"
	done
	cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/ash
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
adm:x:3:4:adm:/var/adm:/sbin/nologin
lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin
sync:x:5:0:sync:/sbin:/bin/sync
shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown
halt:x:7:0:halt:/sbin:/sbin/halt
mail:x:8:12:mail:/var/spool/mail:/sbin/nologin
news:x:9:13:news:/usr/lib/news:/sbin/nologin
uucp:x:10:14:uucp:/var/spool/uucppublic:/sbin/nologin
operator:x:11:0:operator:/root:/sbin/nologin
man:x:13:15:man:/usr/man:/sbin/nologin
postmaster:x:14:12:postmaster:/var/spool/mail:/sbin/nologin
cron:x:16:16:cron:/var/spool/cron:/sbin/nologin
ftp:x:21:21::/var/lib/ftp:/sbin/nologin
sshd:x:22:22:sshd:/dev/null:/sbin/nologin
at:x:25:25:at:/var/spool/cron/atjobs:/sbin/nologin
squid:x:31:31:Squid:/var/cache/squid:/sbin/nologin
xfs:x:33:33:X Font Server:/etc/X11/fs:/sbin/nologin
games:x:35:35:games:/usr/games:/sbin/nologin
postgres:x:70:70::/var/lib/postgresql:/bin/sh
cyrus:x:85:12::/usr/cyrus:/sbin/nologin
vpopmail:x:89:89::/var/vpopmail:/sbin/nologin
ntp:x:123:123:NTP:/var/empty:/sbin/nologin
smmsp:x:209:209:smmsp:/var/spool/mqueue:/sbin/nologin
guest:x:405:100:guest:/dev/null:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
EOF
	cat >"$r/etc/group" <<'EOF'
root:x:0:root
bin:x:1:root,bin,daemon
daemon:x:2:root,bin,daemon
sys:x:3:root,bin,adm
adm:x:4:root,adm,daemon
tty:x:5:
disk:x:6:root,adm
lp:x:7:lp
mem:x:8:
kmem:x:9:
wheel:x:10:root
floppy:x:11:root
mail:x:12:mail
news:x:13:news
uucp:x:14:uucp
man:x:15:man
cron:x:16:cron
console:x:17:
audio:x:18:
cdrom:x:19:
dialout:x:20:root
ftp:x:21:
sshd:x:22:
input:x:23:
at:x:25:at
tape:x:26:root
video:x:27:root
netdev:x:28:
readproc:x:30:
squid:x:31:squid
xfs:x:33:xfs
kvm:x:34:kvm
games:x:35:
shadow:x:42:
postgres:x:70:
cdrw:x:80:
usb:x:85:
vpopmail:x:89:
users:x:100:games
ntp:x:123:
nofiles:x:200:
smmsp:x:209:smmsp
locate:x:245:
abuild:x:300:
utmp:x:406:
ping:x:999:
nogroup:x:65533:
nobody:x:65534:
EOF
	printf '/bin/sh\n/bin/ash\n' >"$r/etc/shells"
	tar -C "$r" --numeric-owner --owner=0 --group=0 -cf "$ROOTFS_TAR.tmp" .
	mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
	rm -rf "$r"
fi

# --- daemons -----------------------------------------------------------------
DNAME= # the running daemon: berthd or dockerd
DDIR=  # its dir
DPID=
SOCK=

cleanup_daemon() {
	[ -n "$DDIR" ] || return 0
	local dir=$DDIR name
	name=$(basename "$dir")
	DDIR=
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		# Containers first (berthd leaves them running on SIGTERM: live restore).
		DOCKER_HOST="unix://$SOCK" timeout 120 "$PY" - <<'EOF' || true
import docker
from docker.utils import kwargs_from_env
c = docker.APIClient(version='auto', timeout=60, **kwargs_from_env())
for ct in c.containers(all=True, quiet=True):
    try:
        c.remove_container(ct['Id'], force=True, v=True)
    except docker.errors.APIError as e:
        print('cleanup: remove', ct['Id'][:12], e)
try:
    c.prune_networks()
except docker.errors.APIError as e:
    print('cleanup: network prune', e)
EOF
		kill -TERM "$DPID" 2>/dev/null || true
		for _ in $(seq 600); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$DPID" 2>/dev/null; then
			log "LEAK: $name did not stop within 60 s of SIGTERM; SIGKILL"
			kill -KILL "$DPID" 2>/dev/null || true
		fi
		wait "$DPID" 2>/dev/null || true
	fi
	DPID=
	# Processes that name the daemon's dir (shims, containerd, its shims).
	local pids=() p
	for _ in $(seq 100); do
		pids=()
		for p in /proc/[0-9]*; do
			{ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF "$dir" && pids+=("${p#/proc/}")
		done
		[ ${#pids[@]} -eq 0 ] && break
		sleep 0.1
	done
	if [ ${#pids[@]} -gt 0 ]; then
		log "LEAK: processes of $name remain: ${pids[*]}; killing them"
		kill -KILL "${pids[@]}" 2>/dev/null || true
		sleep 1
	fi
	# dockerd keeps the host netns handle mounted under its exec root.
	umount -l "$dir/exec/netns/default" 2>/dev/null || true
	local m
	m=$(awk -v d="$dir" 'index($5, d "/") == 1 || $5 == d { print $5 }' /proc/self/mountinfo | sort -r)
	if [ -n "$m" ]; then
		log "LEAK: mounts of $name remain:"$'\n'"$m"
		echo "$m" | while read -r mp; do umount -l "$mp" 2>/dev/null || true; done
	fi
	local cg
	for cg in /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/unified/"$name"; do
		[ -d "$cg" ] || continue
		if find "$cg" -mindepth 1 -type d | grep -q .; then
			log "LEAK: container cgroups remain under $cg"
		fi
		find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	done
	if [ "$DNAME" = berthd ]; then
		# The default network's bridge and berth's nft table stay for live
		# restore; this run is over, so they go.
		ip link del "$BERTH_BRIDGE" 2>/dev/null || true
		nft delete table inet "$BERTH_TABLE" 2>/dev/null || true
	fi
	if [ -n "$NETNS" ]; then
		ip netns del "$NETNS" 2>/dev/null || log "could not remove network namespace $NETNS"
		NETNS=
	fi
	bench_remove_exe_copies "$dir/bin"
	cp "$dir/daemon.log" "$WORK/results/$DNAME.daemon.log" 2>/dev/null || true
	rm -rf "$dir" 2>/dev/null || log "could not remove $dir"
}
trap cleanup_daemon EXIT
trap 'exit 130' INT TERM

wait_ready() { # what
	for _ in $(seq 600); do
		kill -0 "$DPID" 2>/dev/null || {
			tail -30 "$DDIR/daemon.log" >&2
			die "$1 exited during start-up"
		}
		if [ -S "$SOCK" ] && curl -fsS --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	tail -30 "$DDIR/daemon.log" >&2
	die "$1 did not answer /_ping within 60 s"
}

start_berthd() {
	local bin
	for bin in $BERTH_BINARIES; do
		# A missing one would fail only the tests that need it (a missing
		# berth-dns: every name lookup on a user network), far from here.
		[ -x "$BERTH_BIN/$bin" ] || die "no $bin in $BERTH_BIN (BERTH_BIN needs: $BERTH_BINARIES)"
	done
	DDIR=$(mktemp -d /tmp/dpy-berthd-XXXXXX)
	mkdir -p "$DDIR/bin"
	for bin in $BERTH_BINARIES; do cp "$BERTH_BIN/$bin" "$DDIR/bin/"; done
	echo '{}' >"$DDIR/daemon.json"
	SOCK=$DDIR/berth.sock
	"$DDIR/bin/berthd" --config-file "$DDIR/daemon.json" \
		--data-root "$DDIR/data" --exec-root "$DDIR/exec" \
		-H "unix://$SOCK" --log-level debug \
		--cgroup-parent "/$(basename "$DDIR")" \
		--bridge "$BERTH_BRIDGE" --bip "$BERTH_BIP" --firewall-table "$BERTH_TABLE" \
		</dev/null >"$DDIR/daemon.log" 2>&1 &
	DPID=$!
	wait_ready berthd
	DAEMON_VERSION="berthd $("$DDIR/bin/berthd" --version | awk '{print $NF}') ($BERTH_COMMIT)"
}

start_dockerd() {
	[ -x "$DOCKERD" ] || need_pkg dockerd docker.io
	DDIR=$(mktemp -d /tmp/dpy-dockerd-XXXXXX)
	echo '{}' >"$DDIR/daemon.json"
	SOCK=$DDIR/docker.sock
	local ns
	ns=dpy-$$
	local network=(--bridge=none --iptables=false --ip6tables=false --ip-forward=false
		--ip-masq=false --userland-proxy=false)
	local in_ns=()
	if [ "$DOCKERD_NETWORK" = netns ]; then
		NETNS=dpy-$$
		ip netns add "$NETNS"
		ip netns exec "$NETNS" ip link set lo up
		network=()
		in_ns=(nsenter --net="/run/netns/$NETNS" --)
	fi
	"${in_ns[@]}" "$DOCKERD" --config-file "$DDIR/daemon.json" \
		--data-root "$DDIR/data" --exec-root "$DDIR/exec" \
		--pidfile "$DDIR/docker.pid" -H "unix://$SOCK" \
		"${network[@]}" \
		--exec-opt native.cgroupdriver=cgroupfs \
		--cgroup-parent "/$(basename "$DDIR")" \
		--containerd-namespace "$ns" --containerd-plugins-namespace "$ns-plugins" \
		</dev/null >"$DDIR/daemon.log" 2>&1 &
	DPID=$!
	wait_ready dockerd
	DAEMON_VERSION="dockerd $("$DOCKERD" --version | sed 's/^Docker version //')"
	if [ -n "$NETNS" ]; then
		DAEMON_VERSION="$DAEMON_VERSION, with its default bridge, in a network namespace of its own"
	fi
}

import_images() {
	DOCKER_HOST="unix://$SOCK" "$PY" - "$ROOTFS_TAR" <<'EOF'
import sys, docker
from docker.utils import kwargs_from_env
c = docker.APIClient(version='1.41', timeout=300, **kwargs_from_env())
changes = ['CMD ["/bin/sh"]',
           'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']
out = c.import_image_from_file(sys.argv[1], repository='alpine', tag='3.10',
                               changes=changes)
img = c.inspect_image('alpine:3.10')
for repo, tag in [('alpine', 'latest'), ('busybox', 'latest'),
                  ('busybox', 'buildroot-2014.02')]:
    c.tag(img['Id'], repo, tag)
print('stand-in images:', img['Id'], img['RepoTags'] if 'RepoTags' in img else '')
EOF
}

IGNORE=(
	--ignore=tests/integration/api_swarm_test.py
	--ignore=tests/integration/api_service_test.py
	--ignore=tests/integration/api_secret_test.py
	--ignore=tests/integration/api_config_test.py
	--ignore=tests/integration/models_swarm_test.py
	--ignore=tests/integration/models_services_test.py
	--ignore=tests/integration/models_nodes_test.py
	--ignore=tests/integration/credentials
)

declare -A VERSIONS
for daemon in $DAEMONS; do
	DNAME=$daemon
	case "$daemon" in
	berthd)
		if [ "${SKIP_BUILD:-0}" != 1 ] && [ "$BERTH_BIN" = "$REPO/target/release" ]; then
			log "building $BERTH_BINARIES (release)"
			# shellcheck disable=SC2046 # one -p per binary
			(cd "$REPO" && cargo build -q --release $(printf -- '-p %s ' $BERTH_BINARIES))
		fi
		start_berthd
		;;
	dockerd) start_dockerd ;;
	*) die "unknown daemon $daemon (berthd or dockerd)" ;;
	esac
	VERSIONS[$daemon]=$DAEMON_VERSION
	log "$DAEMON_VERSION on $SOCK"
	import_images
	# A fresh HOME each time, with a config file: docker-py keeps contexts
	# beside the config file it finds, and without one in the current
	# directory (contexts/), where the next run would find them.
	rm -rf "$WORK/home" "$WORK/src/contexts"
	mkdir -p "$WORK/home/.docker"
	echo '{}' >"$WORK/home/.docker/config.json"
	in_ns=()
	[ -n "$NETNS" ] && in_ns=(nsenter --net="/run/netns/$NETNS" --)
	set +e
	(
		cd "$WORK/src" &&
			HOME="$WORK/home" DOCKER_CONFIG="$WORK/home/.docker" \
				DOCKER_HOST="unix://$SOCK" DOCKER_TEST_API_VERSION=1.41 \
				PYTHONPATH="$HERE" BERTH_OUTCOMES="$WORK/results/$daemon.json" \
				"${in_ns[@]}" timeout --kill-after=60 14400 \
				"$PY" -m pytest -p no:cacheprovider -p berth_outcomes \
				tests/integration "${IGNORE[@]}" \
				--timeout="$TEST_TIMEOUT" -rfEs \
				--junitxml="$WORK/results/$daemon.xml" "${PYTEST_EXTRA[@]}"
	) >"$WORK/results/$daemon.log" 2>&1
	rc=$?
	set -e
	tail -3 "$WORK/results/$daemon.log" >&2
	log "$daemon: pytest exit $rc; log in $WORK/results/$daemon.log"
	cleanup_daemon
done

# --- summary -----------------------------------------------------------------
{
	echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "docker-py: $DOCKER_PY_VERSION (tests at $DOCKER_PY_COMMIT), pytest 7.4.2, $("$PY" --version)"
	echo "kernel: $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
	for daemon in $DAEMONS; do echo "$daemon: ${VERSIONS[$daemon]}"; done
	echo
	"$PY" "$HERE/summarise.py" $(for daemon in $DAEMONS; do echo "$daemon=$WORK/results/$daemon.json"; done)
} >"$WORK/summary.md"
cat "$WORK/summary.md"
log "summary in $WORK/summary.md"
