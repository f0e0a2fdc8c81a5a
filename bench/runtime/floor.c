/*
 * The kernel floor for starting a container: the least work any OCI runtime
 * must do to run `true` from a rootfs in fresh namespaces.
 *
 *   floor [-g CGROUP_DIR]... ROOTFS NS...
 *       NS is one of: pid network ipc uts mount cgroup user
 *
 * It clones one child into the given namespaces (run.sh passes the set the
 * bundle's config.json asks for), and the child makes its mounts private,
 * bind-mounts ROOTFS onto itself, pivot_roots into it, detaches the old root
 * and execs /bin/true. The parent waits for it and exits with its status.
 *
 * Deliberately absent, because they are policy and not the kernel's price:
 * /proc, /dev and /sys mounts, capabilities, seccomp, rlimits, the
 * create/start split and any state on disk. The driver times this whole
 * program (fork + exec of it included), exactly as it times each runtime
 * command, so both sides pay the same process start-up.
 *
 * With -g (a second, separately reported floor) it also pays what placing a
 * container in cgroups costs the kernel: it creates each CGROUP_DIR and
 * opens its v1 `tasks` file before the clone, the child writes "0" to each
 * (moving itself, the cheapest way into a v1 cgroup: the kernel takes no
 * threadgroup lock for a thread that moves itself, so no RCU grace period
 * is waited for), and the directories are removed after the child is
 * reaped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *rootfs;

#define MAX_CGROUPS 32
static const char *cgroups[MAX_CGROUPS];
/* The child's way into each cgroup, opened before the clone. */
static int tasks_fds[MAX_CGROUPS];
static int ncgroups;
static int unshare_cgroupns;

static int ns_flag(const char *name)
{
	static const struct { const char *name; int flag; } table[] = {
		{ "pid", CLONE_NEWPID },     { "network", CLONE_NEWNET },
		{ "ipc", CLONE_NEWIPC },     { "uts", CLONE_NEWUTS },
		{ "mount", CLONE_NEWNS },    { "cgroup", CLONE_NEWCGROUP },
		{ "user", CLONE_NEWUSER },
	};
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (strcmp(table[i].name, name) == 0)
			return table[i].flag;
	fprintf(stderr, "floor: unknown namespace type %s\n", name);
	exit(2);
}

/* Each step names itself on failure: the child has no other way to say
 * which one the kernel refused. */
static void must(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
		_exit(127);
	}
}

static int child(void *arg)
{
	(void)arg;
	for (int c = 0; c < ncgroups; c++)
		must(write(tasks_fds[c], "0", 1) == 1 ? 0 : -1, "joining a cgroup through its tasks file");
	/* As runtimes do: the cgroup namespace is made after the move, so its
	 * root is the container's own cgroup. */
	if (unshare_cgroupns)
		must(unshare(CLONE_NEWCGROUP), "unshare cgroup namespace");
	/* Without this a shared / would propagate our pivot back to the host. */
	must(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make / private");
	/* pivot_root needs the new root to be a mount point. */
	must(mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL), "bind rootfs");
	must(chdir(rootfs), "chdir rootfs");
	/* pivot_root(".", ".") stacks the old root on top of the new one, so
	 * one lazy unmount of "." removes it without a put_old directory. */
	must(syscall(SYS_pivot_root, ".", "."), "pivot_root");
	must(umount2(".", MNT_DETACH), "detach old root");
	must(chdir("/"), "chdir /");
	char *argv[] = { "true", NULL };
	char *envp[] = { "PATH=/bin", NULL };
	execve("/bin/true", argv, envp);
	must(-1, "execve /bin/true");
	return 127;
}

/* Writes s to dir/name; returns 0 or -1 with errno set. */
static int write_file(const char *dir, const char *name, const char *s)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, s, strlen(s));
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* A v1 cpuset cgroup starts with no cpus or mems and refuses tasks until
 * it has some: copy the parent's, as runtimes do. */
static void inherit_cpuset(const char *dir)
{
	static const char *files[] = { "cpuset.cpus", "cpuset.mems" };
	for (int i = 0; i < 2; i++) {
		char path[4096], buf[512];
		snprintf(path, sizeof path, "%s/../%s", dir, files[i]);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return; /* not a cpuset hierarchy */
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0)
			return;
		buf[n] = 0;
		if (write_file(dir, files[i], buf) < 0) {
			fprintf(stderr, "floor: %s/%s: %s\n", dir, files[i], strerror(errno));
			exit(127);
		}
	}
}

static void remove_cgroups(void)
{
	for (int i = 0; i < ncgroups; i++)
		if (rmdir(cgroups[i]) < 0 && errno != ENOENT)
			fprintf(stderr, "floor: rmdir %s: %s\n", cgroups[i], strerror(errno));
}

int main(int argc, char **argv)
{
	int i = 1;
	while (i + 1 < argc && strcmp(argv[i], "-g") == 0) {
		if (ncgroups == MAX_CGROUPS) {
			fprintf(stderr, "floor: at most %d cgroups\n", MAX_CGROUPS);
			return 2;
		}
		cgroups[ncgroups++] = argv[i + 1];
		i += 2;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: floor [-g CGROUP_DIR]... ROOTFS [NS...]\n");
		return 2;
	}
	rootfs = argv[i++];
	int flags = SIGCHLD;
	for (; i < argc; i++)
		flags |= ns_flag(argv[i]);

	if (ncgroups && (flags & CLONE_NEWCGROUP)) {
		flags &= ~CLONE_NEWCGROUP;
		unshare_cgroupns = 1;
	}
	for (int c = 0; c < ncgroups; c++) {
		if (mkdir(cgroups[c], 0755) < 0) {
			fprintf(stderr, "floor: mkdir %s: %s\n", cgroups[c], strerror(errno));
			ncgroups = c;
			remove_cgroups();
			return 127;
		}
		inherit_cpuset(cgroups[c]);
	}
	for (int c = 0; c < ncgroups; c++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/tasks", cgroups[c]);
		tasks_fds[c] = open(path, O_WRONLY | O_CLOEXEC);
		if (tasks_fds[c] < 0) {
			fprintf(stderr, "floor: %s: %s\n", path, strerror(errno));
			remove_cgroups();
			return 127;
		}
	}

	static char stack[64 * 1024] __attribute__((aligned(16)));
	pid_t pid = clone(child, stack + sizeof stack, flags, NULL);
	if (pid < 0) {
		perror("floor: clone");
		remove_cgroups();
		return 127;
	}
	int status;
	if (waitpid(pid, &status, 0) < 0) {
		perror("floor: waitpid");
		return 127;
	}
	remove_cgroups();
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
