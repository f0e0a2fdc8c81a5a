#!/usr/bin/env bash
# Run runc's own integration suite (tests/integration, bats) against several
# OCI runtimes on this machine and summarise pass/fail/skip per runtime.
#
# Usage:
#   bench/conformance/run-runc-bats.sh RUNC_CHECKOUT [OUT_DIR]
#
#   RUNC_CHECKOUT  a checkout of runc's source (any commit; RESULTS.md names
#                  the one used). This script neither fetches nor builds it.
#   OUT_DIR        where TAP files, logs and summary.md go
#                  (default /tmp/berth-conformance).
#
# Environment:
#   RUNTIMES        runtimes to run, in order (default "runc berth crun":
#                   crun 1.8.1's `exec --user` chowns the host's /dev/null,
#                   see run_one, so it goes last).
#                   "runc" and "crun" are looked up in PATH; "berth" is
#                   $BERTH_RUNTIME.
#   BERTH_RUNTIME   berth-runtime binary (default: target/release/berth-runtime
#                   of this repository).
#   BERTH_COMMIT    commit the berth-runtime binary was built from, for the
#                   summary (default: HEAD of this repository).
#   BATS_FILTER     optional: only run tests whose name matches this regex.
#   BATS_FILES      optional: space-separated .bats file names (default: all).
#   TEST_TIMEOUT    per-test timeout in seconds (default 120), so one hanging
#                   test cannot stall the whole run.
#
# What it sets up (idempotently, as root):
#   - Debian packages the suite calls: bats, jq, gawk, bsdutils (script),
#     busybox-static, debootstrap, iproute2, xz-utils.
#   - The two images the suite's get-images.sh would download, made locally
#     instead: tests/integration/testdata/busybox-<arch>.tar.xz from Debian's
#     busybox-static, and debian-<arch>.tar.xz from a debootstrap minbase of
#     the host's Debian suite (from the host's own apt source).
#   - A stand-in `go` on PATH if Go is missing: get-images.sh only runs
#     `go env GOARCH` to pick the image name.
# What it does NOT do: build runc's small Go test helpers (recvtty,
# seccompagent, pidfd-kill, fs-idmap, remap-rootfs, ...). The suite expects
# them in RUNC_CHECKOUT/tests/cmd/_bin; tests that need a missing helper fail,
# and the script says which are missing up front.
#
# Each runtime runs the suite under `script` (several tests need a tty) and
# inside a private mount namespace in which an empty file is bind-mounted over
# /sys/fs/cgroup/unified/cgroup.controllers: on this machine's v1/v2 hybrid
# layout crun refuses to start otherwise, and every runtime gets the same view
# so the columns stay comparable.
set -euo pipefail

die() {
	echo "run-runc-bats: $*" >&2
	exit 1
}
log() { echo "run-runc-bats: $*" >&2; }

[ $# -ge 1 ] || die "usage: $0 RUNC_CHECKOUT [OUT_DIR]"
CHECKOUT=$(readlink -f "$1")
OUT=$(readlink -m "${2:-/tmp/berth-conformance}")
INTEG="$CHECKOUT/tests/integration"
[ -f "$INTEG/helpers.bash" ] || die "$INTEG/helpers.bash not found: is $CHECKOUT a runc checkout?"
[ "$(id -u)" -eq 0 ] || die "the suite's root tests need root; run as root"

REPO=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
: "${RUNTIMES:=runc berth crun}"
: "${BERTH_RUNTIME:=$REPO/target/release/berth-runtime}"
: "${BERTH_COMMIT:=$(git -C "$REPO" rev-parse --short=8 HEAD 2>/dev/null || echo unknown)}"
: "${BATS_FILTER:=}"
: "${BATS_FILES:=}"
: "${TEST_TIMEOUT:=120}"

mkdir -p "$OUT"

# --- packages -------------------------------------------------------------
need_pkgs=()
command -v bats >/dev/null || need_pkgs+=(bats)
command -v jq >/dev/null || need_pkgs+=(jq)
command -v gawk >/dev/null || need_pkgs+=(gawk)
command -v script >/dev/null || need_pkgs+=(bsdutils)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v xz >/dev/null || need_pkgs+=(xz-utils)
# The image needs the static build: the container has no libc to load.
dpkg -s busybox-static >/dev/null 2>&1 || need_pkgs+=(busybox-static)
if [ ${#need_pkgs[@]} -gt 0 ]; then
	log "installing ${need_pkgs[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

case "$(uname -m)" in
x86_64) ARCH=amd64 ;;
aarch64) ARCH=arm64 ;;
i?86) ARCH=386 ;;
ppc64le) ARCH=ppc64le ;;
s390x) ARCH=s390x ;;
*) die "unsupported machine $(uname -m)" ;;
esac

# --- images -----------------------------------------------------------------
TESTDATA="$INTEG/testdata"
BUSYBOX_TAR="$TESTDATA/busybox-$ARCH.tar.xz"
DEBIAN_TAR="$TESTDATA/debian-$ARCH.tar.xz"

# A busybox image laid out like the docker-library one the suite expects:
# every applet as a hard link in /bin, the usual /etc account files, and the
# empty directories programs look for. No /proc or /sys, as in docker's
# images: the runtime creates them (mask.bats replaces them with symlinks).
make_busybox_image() {
	local dir
	dir=$(mktemp -d "$OUT/busybox-rootfs.XXXXXX")
	# mktemp's 0700 would become the container's / and lock out non-root users.
	chmod 755 "$dir"
	mkdir -p "$dir"/{bin,dev,etc,home,root,tmp,usr/sbin,var/spool/mail,var/www}
	chmod 1777 "$dir/tmp"
	chmod 700 "$dir/root"
	cp /bin/busybox "$dir/bin/busybox"
	local applet
	for applet in $(/bin/busybox --list); do
		[ "$applet" = busybox ] && continue
		ln "$dir/bin/busybox" "$dir/bin/$applet"
	done
	cat >"$dir/etc/passwd" <<-'EOF'
		root:x:0:0:root:/root:/bin/sh
		daemon:x:1:1:daemon:/usr/sbin:/bin/false
		bin:x:2:2:bin:/bin:/bin/false
		sys:x:3:3:sys:/dev:/bin/false
		sync:x:4:100:sync:/bin:/bin/sync
		mail:x:8:8:mail:/var/spool/mail:/bin/false
		www-data:x:33:33:www-data:/var/www:/bin/false
		operator:x:37:37:Operator:/var:/bin/false
		nobody:x:65534:65534:nobody:/home:/bin/false
	EOF
	cat >"$dir/etc/group" <<-'EOF'
		root:x:0:
		daemon:x:1:
		bin:x:2:
		sys:x:3:
		adm:x:4:
		tty:x:5:
		disk:x:6:
		lp:x:7:
		mail:x:8:
		kmem:x:9:
		wheel:x:10:root
		cdrom:x:11:
		dialout:x:18:
		floppy:x:19:
		video:x:28:
		audio:x:29:
		tape:x:32:
		www-data:x:33:daemon
		operator:x:37:
		staff:x:50:
		users:x:100:
		nogroup:x:65534:
	EOF
	sed 's/:.*//; s/$/:!::0:::::/' "$dir/etc/passwd" >"$dir/etc/shadow"
	chmod 600 "$dir/etc/shadow"
	echo 'hosts: files dns' >"$dir/etc/nsswitch.conf"
	tar --numeric-owner --owner=0 --group=0 -C "$dir" -cJf "$BUSYBOX_TAR.tmp" .
	mv "$BUSYBOX_TAR.tmp" "$BUSYBOX_TAR"
	rm -rf "$dir"
}

# The host's own Debian mirror and suite, so nothing but apt's source is used.
host_debian_mirror() {
	{
		grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true
		grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
			sed 's/\[[^]]*\]//' | awk '{print $2}' || true
	} | grep -v -- '-security' | head -n1 || true
}

make_debian_image() {
	local dir mirror suite
	mirror=$(host_debian_mirror)
	[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt sources"
	suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
	dir=$(mktemp -d "$OUT/debian-rootfs.XXXXXX")
	chmod 755 "$dir"
	log "debootstrap --variant=minbase $suite (from the host's apt source)"
	debootstrap --variant=minbase "$suite" "$dir" "$mirror" >"$OUT/debootstrap.log" 2>&1 ||
		die "debootstrap failed, see $OUT/debootstrap.log"
	rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
	tar --numeric-owner -C "$dir" -cJf "$DEBIAN_TAR.tmp" .
	mv "$DEBIAN_TAR.tmp" "$DEBIAN_TAR"
	rm -rf "$dir"
}

# Bumped when make_busybox_image's layout changes, so a cached image is
# remade (2: no /proc or /sys).
BUSYBOX_LAYOUT=2
[ -s "$BUSYBOX_TAR" ] && [ "$(cat "$BUSYBOX_TAR.layout" 2>/dev/null)" = "$BUSYBOX_LAYOUT" ] || {
	log "making $BUSYBOX_TAR from busybox-static"
	make_busybox_image
	echo "$BUSYBOX_LAYOUT" >"$BUSYBOX_TAR.layout"
}
[ -s "$DEBIAN_TAR" ] || make_debian_image

# --- tools the suite shells out to -------------------------------------------
SHIMS="$OUT/shims"
mkdir -p "$SHIMS"
if ! command -v go >/dev/null; then
	cat >"$SHIMS/go" <<-EOF
		#!/bin/sh
		# Stand-in: runc's get-images.sh only asks for the architecture.
		[ "\$1 \$2" = "env GOARCH" ] && { echo $ARCH; exit 0; }
		echo "go is not installed (stand-in for 'go env GOARCH' only)" >&2; exit 1
	EOF
	chmod +x "$SHIMS/go"
fi

missing=()
# sd-helper is only used with RUNC_USE_SYSTEMD, which this script does not set.
for h in recvtty seccompagent pidfd-kill fs-idmap remap-rootfs key_label; do
	[ -x "$CHECKOUT/tests/cmd/_bin/$h" ] || missing+=("$h")
done
# Built without the "seccomp" build tag, seccompagent is a stub that exits at
# once and every SCMP_ACT_NOTIFY test fails for every runtime.
if [ -x "$CHECKOUT/tests/cmd/_bin/seccompagent" ] &&
	"$CHECKOUT/tests/cmd/_bin/seccompagent" -h 2>&1 | grep -q 'Not supported'; then
	missing+=("seccompagent(built without the seccomp tag)")
fi
[ ${#missing[@]} -eq 0 ] ||
	log "WARNING: test helpers missing from $CHECKOUT/tests/cmd/_bin: ${missing[*]} (tests that use them will fail)"

# --- running ------------------------------------------------------------------
runtime_path() {
	case "$1" in
	berth) echo "$BERTH_RUNTIME" ;;
	*) command -v "$1" || true ;;
	esac
}

runtime_version() {
	case "$1" in
	berth) "$2" --version 2>&1 | head -n1 ;;
	*) "$2" --version 2>&1 | head -n1 ;;
	esac
}

# bats' own per-test timeout cannot fire while the test's shell is blocked
# reading from a process that sits in a frozen cgroup (a runtime that joins a
# pre-existing frozen cgroup freezes itself). When the TAP stream has not
# grown for TEST_TIMEOUT+60 s, thaw the suite's cgroups and kill that
# runtime's processes left from this run (their --root is under a bats-run
# directory), so the run moves on; the test is then reported as timed out.
# Helpers left running by tests whose teardown never ran are killed too:
# they hold bats' output open and keep the run from ending.
watch_stalls() {
	local bin=$1 raw=$2 wlog=$3 last_size=-1 last_change now size f pid
	last_change=$(date +%s)
	while sleep 15; do
		now=$(date +%s)
		size=$(stat -c %s "$raw" 2>/dev/null || echo 0)
		if [ "$size" != "$last_size" ]; then
			last_size=$size
			last_change=$now
			continue
		fi
		[ $((now - last_change)) -ge $((TEST_TIMEOUT + 60)) ] || continue
		echo "$(date -u +%T) stalled $((now - last_change))s after: $(tr -d '\r' <"$raw" | grep -E '^(ok|not ok) ' | tail -n1)" >>"$wlog"
		for f in /sys/fs/cgroup/freezer/runc-cgroups-integration-test/*/freezer.state \
			/sys/fs/cgroup/freezer/runc-cgroups-integration-test/freezer.state; do
			[ -e "$f" ] && grep -q FROZEN "$f" && echo THAWED >"$f" && echo "  thawed ${f%/*}" >>"$wlog"
		done
		for f in /sys/fs/cgroup/runc-cgroups-integration-test/*/cgroup.freeze \
			/sys/fs/cgroup/runc-cgroups-integration-test/cgroup.freeze; do
			[ -e "$f" ] && grep -q 1 "$f" && echo 0 >"$f" && echo "  thawed ${f%/*}" >>"$wlog"
		done
		sleep 5
		local exe age
		for pid in $(ls /proc | grep -E '^[0-9]+$'); do
			exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
			# A runtime that re-executes itself from a sealed memfd (the
			# CVE-2019-5736 defence) has no usable exe link: match argv[0].
			if [ "$exe" = "$bin" ] || [ "$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n1)" = "$bin" ]; then
				tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- '--root [^ ]*/bats-run-' || continue
			elif [[ "$exe" == "$CHECKOUT/tests/cmd/_bin/"* ]]; then
				# A helper (recvtty, seccompagent, ...) whose test's teardown
				# never ran keeps bats' output pipe open; only old ones.
				age=$(ps -o etimes= -p "$pid" 2>/dev/null | tr -d ' ')
				[ -n "$age" ] && [ "$age" -ge "$TEST_TIMEOUT" ] || continue
			else
				continue
			fi
			echo "  killed $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline")" >>"$wlog"
			kill -KILL "$pid" 2>/dev/null || true
		done
		last_change=$(date +%s)
	done
}

# One runtime's run: a private mount namespace (see the header), a tty from
# `script`, TAP on stdout. Everything the suite leaves is under BATS_RUN_TMPDIR.
run_one() {
	local name=$1 bin=$2 tap="$OUT/$1.tap" files=()
	if [ -n "$BATS_FILES" ]; then
		local f
		for f in $BATS_FILES; do files+=("$INTEG/$f"); done
	else
		files=("$INTEG")
	fi
	local filter=()
	[ -n "$BATS_FILTER" ] && filter=(--filter "$BATS_FILTER")

	local inner="$OUT/$name.inner.sh"
	{
		echo 'set -u'
		echo 'ctl=/sys/fs/cgroup/unified/cgroup.controllers'
		echo 'if [ -e "$ctl" ]; then : >"'"$OUT"'/empty-controllers"; mount --bind "'"$OUT"'/empty-controllers" "$ctl"; fi'
		printf 'export PATH=%q:$PATH RUNC=%q BATS_TEST_TIMEOUT=%q\n' "$SHIMS" "$bin" "$TEST_TIMEOUT"
		printf 'cd %q\n' "$INTEG"
		printf 'exec bats --tap %s' "${filter[*]:+$(printf '%q ' "${filter[@]}")}"
		printf '%q ' "${files[@]}"
		echo
	} >"$inner"

	log "running the suite with $name ($bin) -> $tap"
	local devnull_owner
	devnull_owner=$(stat -c %u:%g /dev/null)
	local start end watchdog
	start=$(date +%s)
	: >"$tap.raw"
	watch_stalls "$bin" "$tap.raw" "$OUT/$name.watchdog.log" &
	watchdog=$!
	# script gives bats a tty; its own output (the tty's) is the TAP stream.
	unshare -m --propagation private \
		script -q -e -c "bash $(printf %q "$inner")" /dev/null \
		</dev/null >"$tap.raw" 2>"$OUT/$name.stderr" || true
	kill "$watchdog" 2>/dev/null || true
	wait "$watchdog" 2>/dev/null || true
	end=$(date +%s)
	# "runc exec --user vs /dev/null ownership" catches runtimes that chown
	# the caller's stdio to the exec user; crun 1.8.1 does, to the host's
	# /dev/null. Put it back so the next runtime's run starts clean.
	if [ "$(stat -c %u:%g /dev/null)" != "$devnull_owner" ]; then
		log "WARNING: $name changed the owner of /dev/null to $(stat -c %u:%g /dev/null); restoring $devnull_owner"
		chown "$devnull_owner" /dev/null
	fi
	# Drop only the \r the outer tty adds: a second one is the container's own
	# pty output (ONLCR left on), which some tests compare exactly.
	sed 's/\r$//' <"$tap.raw" >"$tap"
	rm -f "$tap.raw"
	echo $((end - start)) >"$OUT/$name.seconds"
}

count() {
	local tap=$1 what=$2
	case "$what" in
	total) grep -cE '^(ok|not ok) ' "$tap" || true ;;
	pass) grep -E '^ok ' "$tap" | grep -cvE ' # skip' || true ;;
	skip) grep -cE '^ok .* # skip' "$tap" || true ;;
	fail) grep -cE '^not ok ' "$tap" || true ;;
	esac
}

SUMMARY="$OUT/summary.md"
{
	echo "# runc integration suite"
	echo
	echo "- runc checkout: $CHECKOUT at $(git -C "$CHECKOUT" rev-parse --short=8 HEAD 2>/dev/null || echo unknown)"
	echo "- berth-runtime built from commit: $BERTH_COMMIT"
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- kernel: $(uname -r)"
	echo
	echo "| runtime | version | tests | pass | fail | skip | seconds |"
	echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
} >"$SUMMARY.tmp"

for rt in $RUNTIMES; do
	bin=$(runtime_path "$rt")
	if [ -z "$bin" ] || [ ! -x "$bin" ]; then
		log "skipping $rt: no executable found (${bin:-not in PATH})"
		continue
	fi
	bin=$(readlink -f "$bin")
	run_one "$rt" "$bin"
	tap="$OUT/$rt.tap"
	printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$rt" "$(runtime_version "$rt" "$bin")" \
		"$(count "$tap" total)" "$(count "$tap" pass)" "$(count "$tap" fail)" \
		"$(count "$tap" skip)" "$(cat "$OUT/$rt.seconds")" >>"$SUMMARY.tmp"
	grep -E '^not ok ' "$tap" | sed 's/^not ok [0-9]* //' | sort >"$OUT/$rt.failed"
done

# Tests whose outcome differs between berth and runc, for triage.
if [ -f "$OUT/berth.tap" ] && [ -f "$OUT/runc.tap" ]; then
	{
		echo
		echo "## Passed with runc, failed with berth-runtime"
		echo
		comm -23 <(grep -E '^ok ' "$OUT/runc.tap" | grep -v ' # skip' | sed 's/^ok [0-9]* //' | sort) \
			"$OUT/berth.failed" | sed 's/^/- /'
		echo
		echo "## Failed with runc, passed with berth-runtime"
		echo
		comm -12 "$OUT/runc.failed" \
			<(grep -E '^ok ' "$OUT/berth.tap" | grep -v ' # skip' | sed 's/^ok [0-9]* //' | sort) | sed 's/^/- /'
	} >>"$SUMMARY.tmp"
fi
mv "$SUMMARY.tmp" "$SUMMARY"
cat "$SUMMARY"
