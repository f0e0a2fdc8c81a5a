/*
 * Benchmark driver for OCI runtimes with runc's command line.
 *
 *   driver lifecycle BUNDLE WORKDIR ITERATIONS WARMUP OUT.csv ENTRY...
 *       ENTRY is NAME=BIN, a runtime, or cmd:NAME=COMMAND ARGS (split at
 *       spaces), a plain command such as the floor, timed as a whole.
 *       Times create, start, wait-for-exit and delete of the bundle's
 *       container for every runtime, alternating between all entries
 *       inside each iteration, rotating who goes first so no entry always
 *       runs right after the same neighbour. Writes one CSV row per
 *       measured run; warm-up iterations are run but not written.
 *   driver linger BUNDLE WORKDIR ROUNDS NAME=BIN...
 *       For a long-running container: after `start` returns, lists every
 *       process descended from this driver that is not the container's own
 *       process tree. A runtime that leaves nothing behind shows none.
 *   driver stats IN.csv
 *       Prints per entry: n, p10/p50/p90 of the total, the median of each
 *       phase and the median CPU time, all in nanoseconds, tab-separated.
 *
 * Why a C driver and not a shell loop: each `date +%s%N` in bash costs a
 * fork+exec (about a millisecond here, run.sh measures it), which is the
 * same order as the floor itself. clock_gettime(CLOCK_MONOTONIC) costs
 * nanoseconds, and posix_spawn (vfork underneath) keeps the driver's own
 * per-command overhead small and identical for every runtime.
 *
 * The driver makes itself a child subreaper, as a container shim does, so
 * the container's init is re-parented to it when `create` exits; it waits
 * for the init through a pidfd, which works whoever the parent is.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_ENTRIES 8
#define MAX_ARGS 32
#define WAIT_TIMEOUT_MS 10000

struct entry {
	char name[64];
	char bin[PATH_MAX];
	char state[PATH_MAX]; /* --root directory, one per runtime */
	char log[PATH_MAX];   /* stdout+stderr of the current lifecycle */
	int is_cmd;
	char cmdline[4096]; /* is_cmd: cmd_argv points into it */
	char *cmd_argv[MAX_ARGS];
	int failed;
};

struct sample {
	int64_t create, start, wait, del, total;
	int64_t cpu; /* user+system CPU of every process the run reaped */
	int exit_status;
};

static const char *bundle;
static int devnull = -1;

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "driver: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU time of all reaped descendants so far. A process's own children's
 * time is added to it when it reaps them, so once a lifecycle has reaped
 * everything (the runtime commands, and the container's init, which comes
 * to us as subreaper), the delta is the CPU the whole lifecycle burned.
 * Unlike wall-clock time it barely moves when other work shares the CPUs. */
static int64_t children_cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* Reaps every zombie we inherited as subreaper (runtime helpers, the
 * container's init when nobody else waited for it). */
static void reap_strays(void)
{
	int st;
	while (waitpid(-1, &st, WNOHANG | __WALL) > 0)
		;
}

/* Runs argv with stdin from /dev/null and stdout+stderr appended to log;
 * returns the wait status, or -1 if it could not be spawned. */
static int run(char *const argv[], const char *log)
{
	int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0)
		die("open %s: %s", log, strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, devnull, 0);
	posix_spawn_file_actions_adddup2(&fa, logfd, 1);
	posix_spawn_file_actions_adddup2(&fa, logfd, 2);
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(logfd);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid %d: %s", pid, strerror(errno));
	return st;
}

static void describe_status(int st, char *buf, size_t len)
{
	if (st == -1)
		snprintf(buf, len, "could not be spawned: %s", strerror(errno));
	else if (WIFEXITED(st))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, len, "wait status 0x%x", st);
}

static void print_log_tail(const char *log)
{
	FILE *f = fopen(log, "r");
	if (!f)
		return;
	char line[1024];
	int n = 0;
	while (fgets(line, sizeof line, f) && n++ < 20) {
		size_t len = strlen(line);
		fprintf(stderr, "    | %s%s", line, len && line[len - 1] == '\n' ? "" : "\n");
	}
	fclose(f);
}

/* A failed command is reported with its exact argv and output, and the
 * runtime is dropped from the rest of the run; the others go on. */
static void fail(struct entry *e, char *const argv[], const char *what)
{
	fprintf(stderr, "FAIL %s: `", e->name);
	for (int i = 0; argv[i]; i++)
		fprintf(stderr, "%s%s", i ? " " : "", argv[i]);
	fprintf(stderr, "` %s; its output:\n", what);
	print_log_tail(e->log);
	e->failed = 1;
}

static int ok(int st)
{
	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* argv for `BIN --root STATE CMD ARGS...`; the strings live in e or are
 * static, the array in the caller. */
static void rt_argv(char **argv, struct entry *e, const char *cmd, ...)
{
	int n = 0;
	argv[n++] = e->bin;
	argv[n++] = "--root";
	argv[n++] = e->state;
	argv[n++] = (char *)cmd;
	va_list ap;
	va_start(ap, cmd);
	char *a;
	while ((a = va_arg(ap, char *)) && n < MAX_ARGS - 1)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
}

/* Empties a log; a log we cannot empty only makes failure output longer. */
static void clear_log(const char *log)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
}

static pid_t read_pid_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long pid = -1;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = -1;
	fclose(f);
	return (pid_t)pid;
}

/* Best effort after a failure, so the next iteration's id and cgroup are
 * free and nothing keeps running. */
static void force_delete(struct entry *e, char *id)
{
	char *argv[MAX_ARGS];
	rt_argv(argv, e, "delete", "--force", id, NULL);
	run(argv, e->log);
	reap_strays();
}

/* Blocks until the process behind pidfd has exited, then reaps it if it is
 * our child. Returns its exit code, -1 if someone else reaped it, or -2 on
 * timeout. */
static int wait_exit(int pidfd, pid_t pid)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int rc;
	do
		rc = poll(&p, 1, WAIT_TIMEOUT_MS);
	while (rc < 0 && errno == EINTR);
	if (rc == 0)
		return -2;
	int st;
	if (waitpid(pid, &st, __WALL) == pid)
		return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return -1;
}

/* One create/start/wait/delete; returns 0 and fills s, or -1 after fail(). */
static int lifecycle(struct entry *e, char *id, struct sample *s)
{
	char pidfile[PATH_MAX + 128], *argv[MAX_ARGS];
	snprintf(pidfile, sizeof pidfile, "%s/%s.pid", e->state, id);
	unlink(pidfile);
	clear_log(e->log);

	int64_t cpu0 = children_cpu_ns();
	int64_t t0 = now_ns();
	rt_argv(argv, e, "create", "--bundle", (char *)bundle, "--pid-file", pidfile, id, NULL);
	int st = run(argv, e->log);
	int64_t t1 = now_ns();
	if (!ok(st)) {
		char what[128];
		describe_status(st, what, sizeof what);
		fail(e, argv, what);
		force_delete(e, id);
		return -1;
	}
	/* Untimed: the pid file read and pidfd_open are the driver's business,
	 * not the runtime's. */
	pid_t pid = read_pid_file(pidfile);
	int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	if (pidfd < 0) {
		fail(e, argv, pid > 0 ? "left a pid whose process is gone (pidfd_open failed)"
				      : "wrote no readable --pid-file");
		force_delete(e, id);
		return -1;
	}

	int64_t t2 = now_ns();
	rt_argv(argv, e, "start", id, NULL);
	st = run(argv, e->log);
	int64_t t3 = now_ns();
	if (!ok(st)) {
		char what[128];
		describe_status(st, what, sizeof what);
		fail(e, argv, what);
		close(pidfd);
		force_delete(e, id);
		return -1;
	}
	int code = wait_exit(pidfd, pid);
	int64_t t4 = now_ns();
	close(pidfd);
	if (code == -2 || code > 0) {
		char what[128];
		snprintf(what, sizeof what,
			 code == -2 ? "returned, but the container did not exit within %d ms"
				    : "returned, but the container exited with status %d",
			 code == -2 ? WAIT_TIMEOUT_MS : code);
		fail(e, argv, what);
		force_delete(e, id);
		return -1;
	}

	rt_argv(argv, e, "delete", id, NULL);
	st = run(argv, e->log);
	int64_t t5 = now_ns();
	if (!ok(st)) {
		char what[128];
		describe_status(st, what, sizeof what);
		fail(e, argv, what);
		force_delete(e, id);
		return -1;
	}
	reap_strays();
	unlink(pidfile);
	s->create = t1 - t0;
	s->start = t3 - t2;
	s->wait = t4 - t3;
	s->del = t5 - t4;
	s->total = s->create + s->start + s->wait + s->del;
	s->cpu = children_cpu_ns() - cpu0;
	s->exit_status = code;
	return 0;
}

static int cmd_run(struct entry *e, struct sample *s)
{
	clear_log(e->log);
	int64_t cpu0 = children_cpu_ns();
	int64_t t0 = now_ns();
	int st = run(e->cmd_argv, e->log);
	int64_t t1 = now_ns();
	if (!ok(st)) {
		char what[128];
		describe_status(st, what, sizeof what);
		fail(e, e->cmd_argv, what);
		return -1;
	}
	memset(s, 0, sizeof *s);
	s->total = t1 - t0;
	s->cpu = children_cpu_ns() - cpu0;
	return 0;
}

static int parse_entries(int argc, char **argv, const char *workdir, struct entry *es)
{
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (n == MAX_ENTRIES)
			die("at most %d runtimes", MAX_ENTRIES);
		char *eq = strchr(argv[i], '=');
		if (!eq)
			die("runtime argument %s is not NAME=BIN", argv[i]);
		struct entry *e = &es[n++];
		memset(e, 0, sizeof *e);
		const char *name = argv[i];
		if (strncmp(name, "cmd:", 4) == 0) {
			name += 4;
			e->is_cmd = 1;
			snprintf(e->cmdline, sizeof e->cmdline, "%s", eq + 1);
			int k = 0;
			char *save;
			for (char *tok = strtok_r(e->cmdline, " ", &save); tok && k < MAX_ARGS - 1;
			     tok = strtok_r(NULL, " ", &save))
				e->cmd_argv[k++] = tok;
			e->cmd_argv[k] = NULL;
			if (k == 0)
				die("entry %s has an empty command", argv[i]);
		}
		snprintf(e->name, sizeof e->name, "%.*s", (int)(eq - name), name);
		snprintf(e->bin, sizeof e->bin, "%s", e->is_cmd ? e->cmd_argv[0] : eq + 1);
		snprintf(e->state, sizeof e->state, "%s/state-%s", workdir, e->name);
		snprintf(e->log, sizeof e->log, "%s/log-%s.txt", workdir, e->name);
		if (mkdir(e->state, 0700) < 0 && errno != EEXIST)
			die("mkdir %s: %s", e->state, strerror(errno));
	}
	return n;
}

static void setup_common(void)
{
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		die("open /dev/null: %s", strerror(errno));
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		die("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
}

static int cmd_lifecycle(int argc, char **argv)
{
	if (argc < 6)
		die("usage: lifecycle BUNDLE WORKDIR ITERATIONS WARMUP OUT.csv ENTRY...");
	bundle = argv[0];
	const char *workdir = argv[1];
	int iterations = atoi(argv[2]), warmup = atoi(argv[3]);
	const char *out = argv[4];
	static struct entry es[MAX_ENTRIES];
	int n = parse_entries(argc - 5, argv + 5, workdir, es);

	setup_common();
	FILE *csv = fopen(out, "w");
	if (!csv)
		die("open %s: %s", out, strerror(errno));
	fprintf(csv, "name,iteration,position,create_ns,start_ns,wait_ns,delete_ns,total_ns,cpu_ns\n");

	for (int it = -warmup; it < iterations; it++) {
		for (int j = 0; j < n; j++) {
			/* Rotate the starting entry each iteration. */
			int pos = j;
			struct entry *e = &es[((it + warmup) + j) % n];
			if (e->failed)
				continue;
			struct sample s;
			int rc;
			if (e->is_cmd) {
				rc = cmd_run(e, &s);
			} else {
				char id[96];
				snprintf(id, sizeof id, "bench-%.63s-%s%d", e->name, it < 0 ? "w" : "", it < 0 ? -it : it);
				rc = lifecycle(e, id, &s);
			}
			if (rc == 0 && it >= 0)
				fprintf(csv, "%s,%d,%d,%lld,%lld,%lld,%lld,%lld,%lld\n", e->name, it, pos,
					(long long)s.create, (long long)s.start, (long long)s.wait,
					(long long)s.del, (long long)s.total, (long long)s.cpu);
		}
		if (it >= 0 && (it + 1) % 10 == 0)
			fprintf(stderr, "driver: %d/%d iterations\n", it + 1, iterations);
	}
	fclose(csv);
	int failures = 0;
	for (int j = 0; j < n; j++)
		failures += es[j].failed;
	return failures ? 3 : 0;
}

/* ---- lingering-process check ---- */

struct proc {
	pid_t pid, ppid;
};

static int list_procs(struct proc *ps, int max)
{
	DIR *d = opendir("/proc");
	if (!d)
		die("opendir /proc: %s", strerror(errno));
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < max) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		char path[64], buf[512];
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* exited meanwhile */
		ssize_t len = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = 0;
		/* comm may hold spaces and parentheses: parse after the last ')'. */
		char *rp = strrchr(buf, ')');
		char state;
		int ppid;
		if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
			continue;
		ps[n].pid = (pid_t)pid;
		ps[n].ppid = ppid;
		n++;
	}
	closedir(d);
	return n;
}

/* Marks in `in` every process of the tree rooted at root. */
static void mark_tree(struct proc *ps, int n, pid_t root, char *in)
{
	for (int i = 0; i < n; i++)
		in[i] = ps[i].pid == root;
	for (int changed = 1; changed;) {
		changed = 0;
		for (int i = 0; i < n; i++) {
			if (in[i])
				continue;
			for (int j = 0; j < n; j++)
				if (in[j] && ps[j].pid == ps[i].ppid) {
					in[i] = changed = 1;
					break;
				}
		}
	}
}

static void read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r = fd < 0 ? -1 : read(fd, buf, len - 1);
	if (fd >= 0)
		close(fd);
	if (r < 0)
		r = 0;
	buf[r] = 0;
	for (ssize_t i = 0; i < r; i++)
		if (buf[i] == '\n' || buf[i] == 0)
			buf[i] = i + 1 < r ? ' ' : 0;
}

/* Prints and counts the driver's descendants outside the container's tree. */
static int lingering(pid_t container, const char *name, const char *when)
{
	static struct proc ps[65536];
	static char mine[65536], theirs[65536];
	int n = list_procs(ps, 65536);
	mark_tree(ps, n, getpid(), mine);
	mark_tree(ps, n, container, theirs);
	int count = 0;
	for (int i = 0; i < n; i++) {
		if (!mine[i] || theirs[i] || ps[i].pid == getpid())
			continue;
		char path[64], comm[64], cmdline[256], exe[PATH_MAX];
		snprintf(path, sizeof path, "/proc/%d/comm", ps[i].pid);
		read_small(path, comm, sizeof comm);
		snprintf(path, sizeof path, "/proc/%d/cmdline", ps[i].pid);
		read_small(path, cmdline, sizeof cmdline);
		snprintf(path, sizeof path, "/proc/%d/exe", ps[i].pid);
		ssize_t r = readlink(path, exe, sizeof exe - 1);
		exe[r < 0 ? 0 : r] = 0;
		printf("LINGER-PROC %s %s pid=%d ppid=%d comm=%s exe=%s cmdline=%s\n", name, when,
		       ps[i].pid, ps[i].ppid, comm, exe, cmdline);
		count++;
	}
	return count;
}

static pid_t ppid_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	read_small(path, buf, sizeof buf);
	char *rp = strrchr(buf, ')');
	char state;
	int ppid;
	return rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 ? ppid : -1;
}

static int cmd_linger(int argc, char **argv)
{
	if (argc < 4)
		die("usage: linger BUNDLE WORKDIR ROUNDS NAME=BIN...");
	bundle = argv[0];
	const char *workdir = argv[1];
	int rounds = atoi(argv[2]);
	static struct entry es[MAX_ENTRIES];
	int n = parse_entries(argc - 3, argv + 3, workdir, es);
	setup_common();

	int bad = 0;
	for (int j = 0; j < n; j++) {
		struct entry *e = &es[j];
		int at_return = 0, later = 0, parent_is_driver = 0, done = 0;
		for (int r = 0; r < rounds && !e->failed; r++) {
			char id[96], pidfile[PATH_MAX + 128], *av[MAX_ARGS];
			snprintf(id, sizeof id, "linger-%.63s-%d", e->name, r);
			snprintf(pidfile, sizeof pidfile, "%s/%s.pid", e->state, id);
			clear_log(e->log);
			rt_argv(av, e, "create", "--bundle", (char *)bundle, "--pid-file", pidfile, id, NULL);
			int st = run(av, e->log);
			if (!ok(st)) {
				char what[128];
				describe_status(st, what, sizeof what);
				fail(e, av, what);
				force_delete(e, id);
				break;
			}
			pid_t pid = read_pid_file(pidfile);
			int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
			if (pidfd < 0) {
				fail(e, av, "wrote no pid file naming a live process");
				force_delete(e, id);
				break;
			}
			rt_argv(av, e, "start", id, NULL);
			st = run(av, e->log);
			if (!ok(st)) {
				char what[128];
				describe_status(st, what, sizeof what);
				fail(e, av, what);
				close(pidfd);
				force_delete(e, id);
				break;
			}
			/* Right after `start` returned: the strict check. */
			/* Counted per container, not per process: one leak is enough. */
			at_return += lingering(pid, e->name, "at-return") > 0;
			usleep(100 * 1000);
			later += lingering(pid, e->name, "after-100ms") > 0;
			parent_is_driver += ppid_of(pid) == getpid();

			rt_argv(av, e, "kill", id, "KILL", NULL);
			st = run(av, e->log);
			int code = ok(st) ? wait_exit(pidfd, pid) : -2;
			close(pidfd);
			if (code == -2) {
				fail(e, av, "did not stop the container within the timeout");
				force_delete(e, id);
				break;
			}
			rt_argv(av, e, "delete", id, NULL);
			st = run(av, e->log);
			if (!ok(st)) {
				char what[128];
				describe_status(st, what, sizeof what);
				fail(e, av, what);
				force_delete(e, id);
				break;
			}
			reap_strays();
			unlink(pidfile);
			done++;
		}
		printf("LINGER %s rounds=%d at_return=%d after_100ms=%d init_parent_is_driver=%d%s\n",
		       e->name, done, at_return, later, parent_is_driver, e->failed ? " FAILED" : "");
		bad += e->failed;
	}
	return bad ? 3 : 0;
}

/* ---- statistics ---- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Linear interpolation between closest ranks (numpy's default). */
static double quantile(int64_t *v, int n, double q)
{
	qsort(v, n, sizeof *v, cmp_i64);
	double h = (n - 1) * q;
	int lo = (int)floor(h);
	int hi = lo + 1 < n ? lo + 1 : lo;
	return v[lo] + (h - lo) * (double)(v[hi] - v[lo]);
}

static int cmd_stats(int argc, char **argv)
{
	if (argc != 1)
		die("usage: stats IN.csv");
	FILE *f = fopen(argv[0], "r");
	if (!f)
		die("open %s: %s", argv[0], strerror(errno));
	enum { MAXN = 100000 };
	static char names[MAX_ENTRIES + 1][64];
	static int64_t col[MAX_ENTRIES + 1][6][MAXN];
	static int count[MAX_ENTRIES + 1];
	int nnames = 0;
	char line[512];
	if (!fgets(line, sizeof line, f)) /* header */
		die("%s is empty", argv[0]);
	while (fgets(line, sizeof line, f)) {
		char name[64];
		int it, pos;
		long long c, s, w, d, t, u;
		if (sscanf(line, "%63[^,],%d,%d,%lld,%lld,%lld,%lld,%lld,%lld", name, &it, &pos, &c, &s,
			   &w, &d, &t, &u) != 9)
			die("bad line in %s: %s", argv[0], line);
		int k;
		for (k = 0; k < nnames && strcmp(names[k], name); k++)
			;
		if (k == nnames) {
			if (nnames == MAX_ENTRIES + 1)
				die("too many entries in %s", argv[0]);
			snprintf(names[nnames++], 64, "%s", name);
		}
		if (count[k] == MAXN)
			die("too many samples in %s", argv[0]);
		int64_t v[6] = { t, c, s, w, d, u };
		for (int x = 0; x < 6; x++)
			col[k][x][count[k]] = v[x];
		count[k]++;
	}
	fclose(f);
	printf("name\tn\tp10\tp50\tp90\tcreate_p50\tstart_p50\twait_p50\tdelete_p50\tcpu_p50\n");
	for (int k = 0; k < nnames; k++) {
		int n = count[k];
		printf("%s\t%d\t%.0f\t%.0f\t%.0f", names[k], n, quantile(col[k][0], n, 0.1),
		       quantile(col[k][0], n, 0.5), quantile(col[k][0], n, 0.9));
		for (int x = 1; x < 6; x++)
			printf("\t%.0f", quantile(col[k][x], n, 0.5));
		printf("\n");
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "lifecycle") == 0)
		return cmd_lifecycle(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "linger") == 0)
		return cmd_linger(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "stats") == 0)
		return cmd_stats(argc - 2, argv + 2);
	fprintf(stderr, "usage: driver lifecycle|linger|stats ...\n");
	return 2;
}
