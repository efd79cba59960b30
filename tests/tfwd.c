/*
 * tfwd - the two ends of a forwarded connection, for the forwarding tests
 * (tests/t_fwd.sh).  ADDR is unix:PATH, or tcp:IPV4:PORT / tcp:[IPV6]:PORT.
 *
 *   tfwd serve ADDR CMD...  accept forever; each connection is CMD's stdin
 *                           and stdout (sh -c CMD), in a process of its own
 *   tfwd half ADDR          accept forever; each connection gets "hello\n"
 *                           and our half-close, then we read it to its EOF
 *                           and print "got N" (bytes) on stdout
 *   tfwd die ADDR N         accept forever; each connection gets N bytes,
 *                           then a reset (SO_LINGER 0): a target that dies
 *                           in the middle of a stream
 *   tfwd send ADDR N        connect; N bytes to it (then shutdown SHUT_WR),
 *                           and read it to its EOF (make bench)
 *   tfwd cat ADDR           connect; stdin to it (then shutdown SHUT_WR),
 *                           it to stdout, until its EOF; exit 0 when both
 *                           ended with an EOF, 2 when it broke (said why)
 *
 * Prints "ready" on stderr once a server listens.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char buf[1 << 16];

static void fail(const char *what)
{
	fprintf(stderr, "tfwd: %s: %s\n", what, strerror(errno));
	exit(2);
}

static socklen_t addr(const char *s, struct sockaddr_storage *ss)
{
	char host[128];
	const char *c;
	memset(ss, 0, sizeof *ss);
	if (!strncmp(s, "unix:", 5)) {
		struct sockaddr_un *u = (struct sockaddr_un *)ss;
		u->sun_family = AF_UNIX;
		snprintf(u->sun_path, sizeof u->sun_path, "%s", s + 5);
		return sizeof *u;
	}
	if (strncmp(s, "tcp:", 4) || !(c = strrchr(s, ':')) || c - s - 4 >= (int)sizeof host) {
		fprintf(stderr, "tfwd: bad address %s\n", s);
		exit(2);
	}
	s += 4;
	if (*s == '[')
		snprintf(host, sizeof host, "%.*s", (int)(c - s - 2), s + 1);
	else
		snprintf(host, sizeof host, "%.*s", (int)(c - s), s);
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)atoi(c + 1));
		return sizeof(struct sockaddr_in);
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) != 1) {
		fprintf(stderr, "tfwd: bad address %s\n", s);
		exit(2);
	}
	ss->ss_family = AF_INET6;
	((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)atoi(c + 1));
	return sizeof(struct sockaddr_in6);
}

static int writeall(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t r = write(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r, n -= (size_t)r;
	}
	return 0;
}

static int cat(const char *a)
{
	struct sockaddr_storage ss;
	socklen_t l = addr(a, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM, 0), in_open = 1, out_open = 1;
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, l) < 0)
		fail("connect");
	while (in_open || out_open) {
		struct pollfd p[2] = { { out_open ? fd : -1, POLLIN, 0 }, { in_open ? 0 : -1, POLLIN, 0 } };
		ssize_t r;
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents) {
			r = read(0, buf, sizeof buf);
			if (r <= 0) {
				in_open = 0;
				shutdown(fd, SHUT_WR);
			} else if (writeall(fd, buf, (size_t)r) < 0) {
				fail("write to the connection");
			}
		}
		if (p[0].revents) {
			r = read(fd, buf, sizeof buf);
			if (r < 0)
				fail("read from the connection");
			if (r == 0)
				out_open = 0;
			else if (writeall(1, buf, (size_t)r) < 0)
				fail("write to stdout");
		}
	}
	return 0;
}

static int send_n(const char *a, long long n)
{
	struct sockaddr_storage ss;
	socklen_t l = addr(a, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, l) < 0)
		fail("connect");
	for (; n > 0; n -= (long long)sizeof buf)
		if (writeall(fd, buf, n < (long long)sizeof buf ? (size_t)n : sizeof buf) < 0)
			fail("write to the connection");
	shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		;
	if (n < 0)
		fail("read from the connection");
	return 0;
}

static void one(int c, const char *mode, char **argv)
{
	ssize_t r;
	long n = 0;
	if (!strcmp(mode, "serve")) {
		dup2(c, 0);
		dup2(c, 1);
		close(c);
		execl("/bin/sh", "sh", "-c", argv[3], (char *)NULL);
		fail("exec sh");
	}
	if (!strcmp(mode, "half")) {
		writeall(c, "hello\n", 6);
		shutdown(c, SHUT_WR);
		while ((r = read(c, buf, sizeof buf)) > 0)
			n += r;
		printf("got %ld\n", n);
		fflush(stdout);
		exit(0);
	}
	/* die */
	{
		long want = atol(argv[3]);
		struct linger lg = { 1, 0 };
		memset(buf, 'x', sizeof buf);
		while (n < want && writeall(c, buf, (size_t)(want - n < (long)sizeof buf ? want - n : (long)sizeof buf)) == 0)
			n += want - n < (long)sizeof buf ? want - n : (long)sizeof buf;
		setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		close(c);
		exit(0);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t l;
	int fd, one_ = 1;
	if (argc == 3 && !strcmp(argv[1], "cat"))
		return cat(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "send"))
		return send_n(argv[2], atoll(argv[3]));
	if (argc < 3 || (strcmp(argv[1], "half") && argc < 4)) {
		fprintf(stderr, "usage: tfwd serve|half|die|cat ADDR [CMD|N]\n");
		return 2;
	}
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	l = addr(argv[2], &ss);
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one_, sizeof one_);
	if (ss.ss_family == AF_UNIX)
		unlink(((struct sockaddr_un *)&ss)->sun_path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, l) < 0 || listen(fd, 1024) < 0)
		fail("listen");
	fprintf(stderr, "ready\n");
	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c < 0)
			continue;
		if (fork() == 0) {
			close(fd);
			one(c, argv[1], argv);
		}
		close(c);
	}
}
