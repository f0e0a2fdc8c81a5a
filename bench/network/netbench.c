/* TCP throughput and latency through a published port: the server runs in
 * a container, the client on the host (bench/network/run.sh compiles it
 * statically with gcc and puts it in the image as /bin/netbench).
 *
 *   netbench server PORT              serve forever (a process per connection)
 *   netbench stream HOST PORT SECONDS one connection, 128 KiB writes for SECONDS,
 *                                     then the server's byte count:
 *                                     "gbps=G bytes=B seconds=S"
 *   netbench rr HOST PORT COUNT SIZE  one connection, TCP_NODELAY, COUNT round
 *                                     trips of SIZE bytes (after 100 warm-ups):
 *                                     "p10_us= median_us= p90_us= n="
 *   netbench crr HOST PORT COUNT      COUNT times: connect, 64 bytes there and
 *                                     back, close (after 10 warm-ups); same output
 *
 * The first byte a client sends picks the server's mode: 'S' sink (read to
 * EOF, answer the byte count as 8 bytes), 'R' echo SIZE-byte messages until
 * EOF (SIZE is the next 4 bytes), 'C' one 64-byte echo, then close.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (128 * 1024)

static void die(const char *what)
{
	fprintf(stderr, "netbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int read_full(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += r;
	}
	return 0;
}

static int write_full(int fd, const void *p, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, (const char *)p + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		done += w;
	}
	return 0;
}

static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void serve(int fd)
{
	static char buf[BUF];
	char mode;
	if (read_full(fd, &mode, 1) < 0)
		return;
	if (mode == 'S') {
		uint64_t total = 0;
		for (;;) {
			ssize_t r = read(fd, buf, sizeof buf);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			total += r;
		}
		write_full(fd, &total, sizeof total);
	} else if (mode == 'R') {
		uint32_t size;
		nodelay(fd);
		if (read_full(fd, &size, sizeof size) < 0 || size == 0 || size > sizeof buf)
			return;
		while (read_full(fd, buf, size) == 0)
			if (write_full(fd, buf, size) < 0)
				break;
	} else if (mode == 'C') {
		nodelay(fd);
		if (read_full(fd, buf, 64) == 0)
			write_full(fd, buf, 64);
	}
}

static int server(int port)
{
	int one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0)
		die("socket");
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(l, (struct sockaddr *)&a, sizeof a) < 0)
		die("bind");
	if (listen(l, 128) < 0)
		die("listen");
	signal(SIGCHLD, SIG_IGN); /* children reaped by the kernel */
	for (;;) {
		int c = accept(l, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept");
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(l);
			serve(c);
			_exit(0);
		}
		close(c);
	}
}

static int dial(const char *host, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		fprintf(stderr, "netbench: %s is not an IPv4 address\n", host);
		exit(2);
	}
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
		die("connect");
	return fd;
}

static int cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

static double pct(double *xs, int n, double q)
{
	double pos = (n - 1) * q;
	int lo = (int)pos, hi = lo + 1 < n ? lo + 1 : n - 1;
	return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo);
}

static void report(double *xs, int n)
{
	qsort(xs, n, sizeof *xs, cmp);
	printf("p10_us=%.1f median_us=%.1f p90_us=%.1f n=%d\n", pct(xs, n, 0.1) * 1e6,
	       pct(xs, n, 0.5) * 1e6, pct(xs, n, 0.9) * 1e6, n);
}

static int stream(const char *host, int port, double seconds)
{
	static char buf[BUF];
	uint64_t sent = 0, total = 0;
	memset(buf, 'x', sizeof buf);
	int fd = dial(host, port);
	double start = now();
	if (write_full(fd, "S", 1) < 0)
		die("write");
	while (now() - start < seconds) {
		if (write_full(fd, buf, sizeof buf) < 0)
			die("write");
		sent += sizeof buf;
	}
	shutdown(fd, SHUT_WR);
	if (read_full(fd, &total, sizeof total) < 0)
		die("read the server's count");
	double el = now() - start;
	if (total != sent) {
		fprintf(stderr, "netbench: sent %llu bytes, the server counted %llu\n",
			(unsigned long long)sent, (unsigned long long)total);
		return 1;
	}
	printf("gbps=%.3f bytes=%llu seconds=%.3f\n", total * 8 / el / 1e9, (unsigned long long)total, el);
	return 0;
}

static int rr(const char *host, int port, int count, uint32_t size)
{
	static char buf[BUF];
	double *xs = calloc(count, sizeof *xs);
	if (!xs || size == 0 || size > sizeof buf)
		return 2;
	memset(buf, 'r', size);
	int fd = dial(host, port);
	nodelay(fd);
	if (write_full(fd, "R", 1) < 0 || write_full(fd, &size, sizeof size) < 0)
		die("write");
	for (int i = -100; i < count; i++) {
		double t = now();
		if (write_full(fd, buf, size) < 0 || read_full(fd, buf, size) < 0)
			die("round trip");
		if (i >= 0)
			xs[i] = now() - t;
	}
	close(fd);
	report(xs, count);
	return 0;
}

static int crr(const char *host, int port, int count)
{
	char buf[65];
	double *xs = calloc(count, sizeof *xs);
	if (!xs)
		return 2;
	buf[0] = 'C';
	memset(buf + 1, 'c', 64);
	for (int i = -10; i < count; i++) {
		double t = now();
		int fd = dial(host, port);
		nodelay(fd);
		if (write_full(fd, buf, 65) < 0 || read_full(fd, buf + 1, 64) < 0)
			die("transaction");
		close(fd);
		if (i >= 0)
			xs[i] = now() - t;
	}
	report(xs, count);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && !strcmp(argv[1], "server"))
		return server(atoi(argv[2]));
	if (argc == 5 && !strcmp(argv[1], "stream"))
		return stream(argv[2], atoi(argv[3]), atof(argv[4]));
	if (argc == 6 && !strcmp(argv[1], "rr"))
		return rr(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	if (argc == 5 && !strcmp(argv[1], "crr"))
		return crr(argv[2], atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: netbench server PORT | stream HOST PORT SECONDS | rr HOST PORT COUNT SIZE | crr HOST PORT COUNT\n");
	return 2;
}
