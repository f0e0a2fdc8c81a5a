/*
 * The kernel floor for starting a container: the least work any OCI runtime
 * must do to run `true` from a rootfs in fresh namespaces.
 *
 *   floor ROOTFS NS...      NS is one of: pid network ipc uts mount cgroup user
 *
 * It clones one child into the given namespaces (run.sh passes the set the
 * bundle's config.json asks for), and the child makes its mounts private,
 * bind-mounts ROOTFS onto itself, pivot_roots into it, detaches the old root
 * and execs /bin/true. The parent waits for it and exits with its status.
 *
 * Deliberately absent, because they are policy and not the kernel's price:
 * /proc, /dev and /sys mounts, cgroups, capabilities, seccomp, rlimits, the
 * create/start split and any state on disk. The driver times this whole
 * program (fork + exec of it included), exactly as it times each runtime
 * command, so both sides pay the same process start-up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *rootfs;

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

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: floor ROOTFS [NS...]\n");
		return 2;
	}
	rootfs = argv[1];
	int flags = SIGCHLD;
	for (int i = 2; i < argc; i++)
		flags |= ns_flag(argv[i]);

	static char stack[64 * 1024] __attribute__((aligned(16)));
	pid_t pid = clone(child, stack + sizeof stack, flags, NULL);
	if (pid < 0) {
		perror("floor: clone");
		return 127;
	}
	int status;
	if (waitpid(pid, &status, 0) < 0) {
		perror("floor: waitpid");
		return 127;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
