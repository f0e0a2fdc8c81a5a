#!/usr/bin/env python3
"""Group berth-runtime's failures in runc's integration suite by cause.

Usage: categorise.py BERTH.tap [RUNC.tap]

Prints a Markdown section: one entry per cause, largest first, with the
number of failing tests it covers (and how many of those runc passes), the
diagnosis, one example test with the command it ran and berth-runtime's first
line of output (taken from the TAP, so it is the exact error of that run),
and the full list of tests. Failures matching no cause are listed last, so a
new failure mode is never hidden.

The causes are keyed by test name as of runc commit b04031d7; a test renamed
in another commit falls into "not yet categorised".
"""

import re
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
tap_digest = __import__("tap-digest")

# (title, diagnosis, [test names]). The diagnosis says what the test runs,
# what berth-runtime does, and what runc does instead.
CAUSES = [
    (
        "HOME is not set for the container process",
        "runc sets HOME when process.env has no HOME or an empty one: from the "
        "container's /etc/passwd entry for the process uid, else `/` (init and "
        "exec alike). berth-runtime leaves it unset: `sh -u -c 'echo $HOME'` "
        "fails with `sh: HOME: parameter not set`, `env` prints no HOME line, "
        "`exec -u 2000` with a passwd entry for 2000 prints an empty line "
        "instead of `/home/tempuser`.",
        [
            "empty HOME env var is overridden",
            "empty HOME env var is overridden with multiple overrides",
            "env var with new-line is honored",
            "runc exec --user",
            "runc exec check default home",
            "runc run check default home",
        ],
    ),
    (
        "Foreground terminal output ends lines with \\r\\n (ONLCR left on)",
        "With `terminal: true` (the default of `spec`) and no --console-socket, "
        "`run`/`exec -t` copy the pty's output with ONLCR still set, so "
        "`echo /override` arrives as `/override\\r` and exact comparisons of "
        "`${lines[0]}` fail (the value itself is right). runc clears ONLCR on "
        "the pty before it copies (containerd/console ClearONLCR in tty.go). "
        "Clear `c_oflag & ONLCR` on the pty with tcsetattr.",
        [
            "non-empty HOME env is used",
            "env var override",
            "runc run [rootfsPropagation shared]",
        ],
    ),
    (
        "--debug emits no debug log lines",
        "berth-runtime's --debug writes one line, `level=debug "
        "msg=\"command: Run { create: CreateArgs {...} }\"` (to stderr, or "
        "to the --log file). The tests want logrus-style debug lines (`level=debug`, or "
        "`\"level\":\"debug\"` with --log-format json) on stderr, or only in "
        "the --log file when one is given, containing runc's own step messages: "
        "`nsexec container setup`, `child process in init()`, `init: closing "
        "the pipe to signal completion` (run) and `setns_init: about to exec` "
        "(exec); newer tests also want `runc exeseal: using /proc/self/exe "
        "clone` and seccomp filter-flag messages. runc 1.1.5 passes the first "
        "six.",
        [
            "global --debug",
            "global --debug to --log",
            "global --debug to --log --log-format 'text'",
            "global --debug to --log --log-format 'json'",
            "runc --debug exec",
            "runc --debug --log exec",
            "runc run [/proc/self/exe clone]",
            "runc run [seccomp] (SECCOMP_FILTER_FLAG_*)",
        ],
    ),
    (
        "exec: exit status and error text",
        "runc exits 255 whenever the runtime itself fails, including `exec "
        "no_such_container true` (berth: 1, `container \"no_such_container\" "
        "does not exist`). With `--ignore-paused` runc goes ahead: the exec "
        "joins the frozen cgroup and completes once the container is resumed "
        "(berth refuses: `container \"ct1\" is paused: cannot exec in a "
        "container that is not running`). An execve failure must print "
        "exactly one line, `exec /run.sh: no such file or directory`. `exec "
        "--cgroup nonexistent` must fail with Go's lower-case errno text: the "
        "test matches `adding pid * to */nonexistent/cgroup.procs: no such "
        "file ` (berth: `No such file or directory (os error 2)`).",
        [
            "runc exec should refuse a paused container",
            "runc exec --ignore-paused",
            "runc exec [exit codes]",
            "runc exec [execve error]",
            "runc run [execve error]",
            "runc exec --cgroup sub-cgroups [v1]",
        ],
    ),
    (
        "`spec` adds a cgroup namespace on cgroup v1",
        "`berth-runtime spec` always lists `{\"type\":\"cgroup\"}`; runc's "
        "`spec` adds it only when /sys/fs/cgroup is cgroup2 (unified mode). "
        "On this v1/hybrid host the tests then add their own cgroup namespace "
        "and berth refuses `linux.namespaces: cgroup is listed twice`, or a "
        "test that reads /proc/self/cgroup from exec sees `/` instead of the "
        "container's path.",
        [
            "runc exec (cgroup v1+hybrid joins correct cgroup)",
            "runc delete --force in cgroupv1 with subcgroups",
            "checkpoint and restore (cgroupns)",
        ],
    ),
    (
        "Command-line flags and values not accepted",
        "clap rejects negative numbers as values (`update --memory-swap -1`, "
        "`--cpu-quota -1`: `error: unexpected argument '-1' found`; runc "
        "takes -1 as unlimited: allow negative numbers for update's numeric "
        "flags) and lacks `update --cpu-burst` and `update --cpu-idle` "
        "(runc 1.1.5 lacks --cpu-burst and fails cpu.idle too). "
        "--pidfd-socket and -v were added after bf9b67c.",
        [
            "update cgroup v1/v2 common limits",
            "update cgroup cpu limits",
            "cpu burst",
            "update cgroup cpu.idle",
            "runc run [ --pidfd-socket ] ",
            "runc exec [ --pidfd-socket ] [cgroups_v1] ",
        ],
    ),
    (
        "Hooks: error text, environment, working directory, seccomp",
        "A failing hook must be reported as `error running <stage> hook "
        "#<index>:` (fixed after bf9b67c; runc 1.1.5 prints `error running "
        "hook #1:` and fails those tests). A startContainer hook without `env` must inherit "
        "process.env (berth's hook sees no HOME: `/check-env.sh: line 4: HOME: parameter not set`; the process itself now gets HOME). createContainer hooks "
        "must run with the container's rootfs as working directory (the test's "
        "`touch ./lib/x` fails). startContainer hooks run inside the container "
        "after the seccomp filter is loaded, so a hook that calls a killed "
        "syscall must fail the run with `error running startContainer hook` "
        "and `bad system call` (Go's name for SIGSYS; berth 4c30aad prints `error running startContainer hook #0: \"/bin/sh\": exited with signal: 31 (SIGSYS)`).",
        [
            "runc create [second createRuntime hook fails]",
            "runc create [hook fails]",
            "runc run [hook fails]",
            "runc run [startContainer hook should inherit process environment]",
            "runc run (hooks library tests)",
            "runc run [seccomp] (startContainer hook)",
        ],
    ),
    (
        "config.json/process.json read more strictly than runc",
        "runc reads JSON with Go's encoding/json: missing fields take zero "
        "values (`exec --process` JSON without `user` means uid 0; berth: "
        "`not a valid OCI process: missing field `user``), keys match "
        "case-insensitively (the hugetlb test writes `pagesize`, berth sees an "
        "empty pageSize), unknown capabilities are skipped with a warning "
        "(berth: `no variant for CAP_UNKNOWN`), a relative mount destination "
        "is taken relative to / with a warning (berth: `must be an absolute "
        "path`), and device rule access `rwa` is accepted (berth: `must be a "
        "non-empty combination of r, w and m`). process.execCPUAffinity is "
        "not supported yet.",
        [
            "runc run with unknown capability",
            "runc run (hugetlb limits)",
            "runc exec [CPU affinity, only initial set from process.json]",
            "runc exec [CPU affinity, initial and final set from process.json]",
            "runc exec [CPU affinity, initial and final set from config.json]",
            "runc exec [tty consolesize]",
            "idmap mount with relative path [userns]",
            "update devices [minimal transition rules]",
        ],
    ),
    (
        "Mounts: ordering, read-only /dev, symlinked /proc, flags, tmpfs mode",
        "Bind sources that live inside the rootfs (`$rootfs/mnt/x`) must be "
        "opened when their turn comes, after the earlier mounts that create "
        "them (berth opens all sources up front: `mounts[11]: opening bind "
        "source \".../rootfs/mnt/x\": No such file or directory`). /proc or "
        "/sys being a symlink in the rootfs must fail with runc's text `must "
        "be mounted on ordinary directory` (berth: `/proc is a symlink in the "
        "rootfs; proc must be mounted on a real directory`; bf9b67c followed "
        "the symlink and hung). Bind mounts of a FUSE (sshfs) source follow "
        "runc's rules: flags named in the mount's options are set or cleared "
        "exactly (`dev,exec,suid,atime` over a `nodev,nosuid,noexec,noatime` "
        "source: berth still shows `nosuid,nodev,noexec,noatime`; a clearing "
        "flag must drop `ro`), a `ro` source stays `ro` when the options do "
        "not say `rw` (berth gives `rw,nosuid,nodev`), and an explicit `rw` "
        "over a locked `ro` source, or `strictatime` over a locked "
        "`nodiratime` one, must fail (berth succeeds). A tmpfs without "
        "`mode=` takes the mode of the directory it covers (`drwsrwsrwt`, "
        "berth gives `drwxrwxrwt`). With --no-pivot every mount outside the "
        "rootfs must be detached before MS_MOVE+chroot so no fully visible "
        "/proc stays in the namespace (a nested `mount -t proc` must get "
        "`permission denied`; under berth it succeeds).",
        [
            "runc run [mount order, container bind-mount source]",
            "runc run [mount order, container bind-mount source] (userns)",
            "runc run [mount order, container idmap source]",
            "runc run [mount order, container idmap source] (userns)",
            "userns with 2 inaccessible mounts",
            "userns with inaccessible mount + exec",
            "runc run [ro /dev mount]",
            "runc run [/proc is a symlink]",
            "mask paths [prohibit symlink /proc]",
            "mask paths [prohibit symlink /sys]",
            "runc run [rbind,rro mount is recursively read-only]",
            "runc run [rbind,ro,rro mount is recursively read-only too]",
            "runc run [mount(8)-unlike behaviour: --bind with clearing flag]",
            "runc run [implied-rw bind mount of a ro fuse sshfs mount]",
            "runc run [explicit-rw bind mount of a ro fuse sshfs mount]",
            "runc run [dev,exec,suid,atime bind mount of a nodev,nosuid,noexec,noatime fuse sshfs mount]",
            "runc run [ro bind mount of a nodev,nosuid,noexec fuse sshfs mount]",
            "runc run [ro,symfollow bind mount of a rw,nodev,nosymfollow fuse sshfs mount]",
            "runc run [ro,noexec bind mount of a nosuid,noatime fuse sshfs mount]",
            "runc run [bind mount {no,rel,strict}atime semantics]",
            "runc run with tmpfs",
            "runc run with tmpfs perms",
            "runc run --no-pivot must not expose bare /proc",
        ],
    ),
    (
        "Seccomp: SCMP_ACT_NOTIFY listener, fds closed after the filter",
        "SCMP_ACT_NOTIFY: berth fails `sending the seccomp listener: seccomp "
        "listener /tmp/.../seccomp-agent.sock: connecting failed: No such file "
        "or directory` although the suite's agent is listening there on the "
        "host (runc passes all 16 notify tests with the same agent; by hand, "
        "with the agent's socket present on the host, `runc run` of the same "
        "bundle exits 0 and berth-runtime fails this way). So berth resolves "
        "listenerPath inside the container (after pivot_root); runc's init hands the listener fd to the runtime "
        "process on the host, which connects to listenerPath and sends the "
        "state (with the pid) and the fd. Without an agent runc's error text "
        "is `failed to connect with seccomp agent`; NOTIFY on `write` is "
        "refused with `SCMP_ACT_NOTIFY cannot be used for the write "
        "syscall`. The exec tests fail because the run before them did; the "
        "`important syscalls` ones hang. (bf9b67c also closed inherited fds "
        "after loading the filter, failing errno-default profiles; fixed "
        "since.)",
        [
            "runc run [seccomp -ENOSYS handling]",
            "runc run [seccomp defaultErrnoRet=ENXIO]",
            "runc run [seccomp] (SCMP_ACT_NOTIFY noNewPrivileges false)",
            "runc run [seccomp] (SCMP_ACT_NOTIFY noNewPrivileges true)",
            "runc exec [seccomp] (SCMP_ACT_NOTIFY noNewPrivileges false)",
            "runc exec [seccomp] (SCMP_ACT_NOTIFY noNewPrivileges true)",
            "runc run [seccomp] (SCMP_ACT_NOTIFY important syscalls noNewPrivileges false)",
            "runc run [seccomp] (SCMP_ACT_NOTIFY important syscalls noNewPrivileges true)",
            "runc run [seccomp] (SCMP_ACT_NOTIFY important syscalls noNewPrivileges false) ",
            "runc run [seccomp] (SCMP_ACT_NOTIFY kill seccompagent)",
            "runc run [seccomp] (SCMP_ACT_NOTIFY no seccompagent)",
            "runc run [seccomp] (SCMP_ACT_NOTIFY error chmod)",
            "runc run [seccomp] (SCMP_ACT_NOTIFY write)",
            "runc run [seccomp] (SCMP_ACT_NOTIFY startContainer hook)",
            "runc run [seccomp] (SCMP_ACT_NOTIFY example config)",
            "runc run [seccomp] (SCMP_ACT_NOTIFY chmod/fchmod/fchmodat)",
            "runc run [seccomp] (SCMP_ACT_NOTIFY mkdir, chmod)",
            "runc run [seccomp] (SCMP_ACT_NOTIFY mkdir/mkdirat)",
        ],
    ),
    (
        "cgroups: errors, frozen/non-empty cgroups, device rules, cpu period",
        "The tests match runc's texts: v1 with `linux.resources.unified` must "
        "fail with `invalid configuration` (berth: `this host's cgroup v2 "
        "hierarchy does not offer the memory controller`); a cgroup that "
        "already has processes with `container's cgroup is not empty` (berth: "
        "`the container's cgroup \"/sys/...\" is not empty; it belongs to "
        "something else`: the quoted path breaks the match); a pre-existing "
        "frozen cgroup with `container's cgroup unexpectedly frozen` (berth: "
        "`... exists and is frozen; thaw or remove it first`; before 75ca230 "
        "berth joined it and froze itself, hanging the run). With `devices = [{allow:false, access:rwm}]`, "
        "a node listed in linux.devices (/dev/kmsg) must stay denied "
        "(berth's exec writes to it). `update --cpu-period 10000 --cpu-quota "
        "3000` under a parent with a 50% quota must succeed (runc retries the "
        "period after writing the quota when the kernel says EINVAL; berth: "
        "`writing \"10000\" to .../cpu.cfs_period_us: Invalid argument`).",
        [
            "runc run (cgroup v1 + unified resources should fail)",
            "runc run/create should error for a non-empty cgroup",
            "runc run/create should refuse pre-existing frozen cgroup",
            "runc run/update [device cgroup deny]",
            "update cpu period in a pod cgroup with pod limit set",
        ],
    ),
    (
        "Kill and delete with a host PID namespace; signal 0",
        "`kill -a ID 0` on a stopped container must succeed (runc keeps -a "
        "as an obsolete no-op that suppresses the not-running error; berth: "
        "`container \"test_busybox\" is stopped: container not running`). "
        "Without a PID namespace, once init is gone, `kill ID KILL` must still "
        "kill every process left in the container's cgroup (berth refuses "
        "with the same not-running error). A created container whose init "
        "was killed (through --pidfd-socket) must then report `stopped` "
        "(berth's state stays `created`).",
        [
            "kill detached busybox",
            "kill KILL [host pidns]",
            "kill KILL [host pidns + init gone]",
            "runc delete [host pidns + init gone]",
            "runc delete --force [host pidns + init gone]",
            "runc create [ --pidfd-socket ] ",
        ],
    ),
    (
        "events: field order, stream end",
        "The streaming form (`events [--interval]`) must end when the "
        "container is deleted; berth keeps running and the test times out "
        "(runc 1.1.5 and crun 1.8.1 time out here too). `events --stats` "
        "must print `{\"type\":\"stats\",\"id\":...,\"data\":...}` in that "
        "order (fixed after bf9b67c, which printed `data` first).",
        [
            "events --stats",
            "events --interval default",
            "events --interval 1s",
            "events --interval 100ms",
            "events oom",
        ],
    ),
    (
        "--pid-file relative to the caller's working directory",
        "`create --pid-file pid.txt -b BUNDLE` run from another directory "
        "must write pid.txt in the caller's cwd (runc makes the path absolute "
        "before it changes directory); berth writes it elsewhere.",
        [
            "runc create --pid-file with new CWD",
            "runc run detached --pid-file with new CWD",
        ],
    ),
    (
        "Terminal owner for a non-root process",
        "With process.user uid 1000, the pty slave must be owned by 1000 "
        "(runc fchowns it to the process uid; gid 5 from the devpts mount); "
        "berth leaves it owned by 0.",
        [
            "runc run [tty owner] ({u,g}id != 0)",
            "runc exec [tty owner] ({u,g}id != 0)",
        ],
    ),
    (
        "Help and version text name runc",
        "`-h` must print urfave/cli's layout (`NAME:` then `runc - Open "
        "Container Initiative runtime`), `CMD -h` `runc CMD ...` on line 2, "
        "`foo -h` `No help topic for 'foo'`, and `-v` `runc version X.Y.Z` / "
        "`commit:` / `spec:`. These check runc's name, so only a binary that "
        "calls itself runc passes them (crun fails them too).",
        ["runc -h", "runc command -h", "runc foo -h", "runc version"],
    ),
    (
        "Not implemented: checkpoint/restore (CRIU)",
        "`checkpoint` answers `checkpoint and restore are not supported by "
        "berth-runtime`. CRIU is installed here, but runc 1.1.5 fails these "
        "tests on this machine as well (`container still running`).",
        [
            "checkpoint and restore",
            "checkpoint and restore (bind mount, destination is symlink)",
            "checkpoint and restore (with --debug)",
            "checkpoint --pre-dump (bad --parent-path)",
            "checkpoint and restore with container specific CRIU config",
            "checkpoint and restore with nested bind mounts",
            "checkpoint then restore into a different cgroup (via --manage-cgroups-mode ignore)",
            "checkpoint/restore and exec",
        ],
    ),
    (
        "Not implemented: id-mapped mounts as the tests use them",
        "`idmap` (non-recursive) must map only the mount itself and leave "
        "submounts of a bind tree unmapped (the test wants the overflow id "
        "on `mount-tree/multi1`, berth maps it too), while `ridmap` maps the "
        "tree; `idmap` with no mappings on the mount must take the "
        "container's user namespace mappings, also when that namespace is "
        "joined by path (berth: `the idmap option needs uidMappings/"
        "gidMappings on the mount or a user namespace with mappings`). "
        "bf9b67c failed all 24 (unmapped owners). runc 1.1.5 predates "
        "idmapped mounts and fails all of them here.",
        [
            "simple idmap mount [userns]",
            "simple idmap mount [no userns]",
            "write to an idmap mount [userns]",
            "write to an idmap mount [no userns]",
            "idmap mount with bind mount [userns]",
            "idmap mount with bind mount [no userns]",
            "two idmap mounts (same mapping) with two bind mounts [userns]",
            "same idmap mount (different mappings) [userns]",
            "same idmap mount (different mappings) [no userns]",
            "multiple idmap mounts (different mappings) [userns]",
            "multiple idmap mounts (different mappings) [no userns]",
            "idmap mount (complicated mapping) [userns]",
            "idmap mount (complicated mapping) [no userns]",
            "idmap mount (non-recursive idmap) [userns]",
            "idmap mount (non-recursive idmap) [no userns]",
            "idmap mount (idmap flag) [userns]",
            "idmap mount (idmap flag) [no userns]",
            "idmap mount (ridmap flag) [userns]",
            "idmap mount (ridmap flag) [no userns]",
            "idmap mount (idmap flag, implied mapping) [userns]",
            "idmap mount (ridmap flag, implied mapping) [userns]",
            "idmap mount (idmap flag, implied mapping, userns join) [userns]",
            "idmap mount with propagation flag [userns]",
            "idmap mount with relative path [no userns]",
        ],
    ),
    (
        "Not implemented: time namespace, scheduler, personality, ioprio",
        "Time namespace offsets must be written to /proc/self/timens_offsets "
        "after unshare(CLONE_NEWTIME) and before any process enters the "
        "namespace (berth: `linux.timeOffsets: writing \"boottime 1337 "
        "3141519\": Permission denied`; bf9b67c refused time namespaces). "
        "Refused: `process.scheduler: scheduler settings are not supported "
        "yet`. Ignored: linux.personality (uname still says "
        "x86_64, want i686) and process.ioPriority (`ionice -p 1` gives `none: "
        "prio 0`, want `best-effort: prio 4`). runc 1.1.5 fails all of these "
        "too (it has no time namespace support at all).",
        [
            "runc run [joining existing container namespaces]",
            "runc run [timens with no offsets]",
            "runc run [simple timens]",
            "runc exec [simple timens]",
            "runc run [simple timens + userns]",
            "scheduler is applied",
            "scheduler vs cpus",
            "runc run personality for i686",
            "runc run personality with exec for i686",
            "ioprio_set is applied to process group",
        ],
    ),
    (
        "Capabilities: ambient warning",
        "An ambient capability missing from the inheritable set must be "
        "dropped with the warning `can't raise ambient capability CAP_CHOWN: "
        "` while the others are raised; berth raises what it can silently. "
        "runc 1.1.5 fails this too.",
        ["runc run [ambient caps not set in inheritable result in a warning]"],
    ),
    (
        "User namespaces owned by another user",
        "Joining a network namespace whose owning user namespace is not the "
        "one being joined must work (runc joins the user namespace first); "
        "berth: `joining the net namespace: Operation not permitted`. runc "
        "1.1.5 fails the userns-join tests here as well.",
        [
            "userns join external namespaces [wrong userns owner]",
            "userns join other container userns",
            "userns join other container userns [bind-mounted nsfd]",
        ],
    ),
    (
        "Host /dev/null owner changed by a crun run before this one",
        "`runc exec --user vs /dev/null ownership` checks that the host's "
        "/dev/null is still root-owned after an `exec --user 1000:1000 ... "
        "</dev/null`. crun 1.8.1 chowns it to 1000 (seen in crun's own run); "
        "when crun ran earlier or alongside, /dev/null was already owned by "
        "1000 before berth's exec. run-runc-bats.sh now restores the owner "
        "after each runtime and runs crun last. Not a berth failure unless "
        "it recurs on a clean /dev/null.",
        ["runc exec --user vs /dev/null ownership"],
    ),
    (
        "This machine, not the runtime",
        "The rlimit tests first run `prlimit --nofile=1024:65536 -p $$`, "
        "which needs CAP_SYS_RESOURCE (root here lacks it); `spec validator` "
        "clones a repository from the internet. Every runtime fails these "
        "here.",
        [
            "runc run with RLIMIT_NOFILE(The same as system's hard value)",
            "runc run with RLIMIT_NOFILE(Bigger than system's hard value)",
            "runc run with RLIMIT_NOFILE(Smaller than system's hard value)",
            "runc exec with RLIMIT_NOFILE(The same as system's hard value)",
            "runc exec with RLIMIT_NOFILE(Bigger than system's hard value)",
            "runc exec with RLIMIT_NOFILE(Smaller than system's hard value)",
            "spec validator",
        ],
    ),
]


def results(path):
    """name -> (status, diagnostic lines)"""
    return {name: (status, diag) for status, _num, name, diag in tap_digest.parse(path)}


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    berth = results(sys.argv[1])
    runc = results(sys.argv[2]) if len(sys.argv) > 2 else {}
    failed = {n for n, (s, _) in berth.items() if s in ("not ok", "timeout")}
    claimed = set()
    sections = []
    for title, diagnosis, names in CAUSES:
        hit = [n for n in names if n in failed and n not in claimed]
        claimed.update(hit)
        if hit:
            sections.append((title, diagnosis, hit))
    rest = sorted(failed - claimed)
    if rest:
        sections.append(("Not yet categorised", "New failures: read the TAP.", rest))
    sections.sort(key=lambda s: (s[0] == "Not yet categorised", -len(s[2])))
    for title, diagnosis, hit in sections:
        runc_pass = sum(1 for n in hit if runc.get(n, ("",))[0] == "ok")
        extra = " (runc 1.1.5 passes %d of them)" % runc_pass if runc else ""
        print("### %s: %d tests%s\n" % (title, len(hit), extra))
        print(diagnosis + "\n")
        example = hit[0]
        _assertion, cmd, first = tap_digest.digest(berth[example][1], "berth-runtime")
        print("- Example: `%s`" % example)
        if cmd:
            print("  - ran: `%s`" % re.sub(r"/tmp/\S*?/(runc\.\w+)/", "$ROOT/", cmd))
        if first:
            print("  - berth-runtime printed: `%s`" % first[:240].replace("`", "'"))
        if berth[example][0] == "timeout":
            print("  - timed out")
        print("- Tests: " + "; ".join("`%s`" % n.strip() for n in hit) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
