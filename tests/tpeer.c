/*
 * tpeer - a raw, scriptable peer for hostile-input tests.
 *
 *   tpeer [-l] ADDR STEP...
 *
 * Connects to ADDR (unix:PATH or vsock:CID:PORT), or with -l listens there
 * and accepts one connection (a fake agent or host), then runs the steps:
 *   send:HEX        write these bytes
 *   sendtext:TEXT   write the text as it is
 *   rand:N:SEED     write N pseudo-random bytes
 *   pad:N:CH        write N copies of character CH
 *   drip:HEX:MS     write these bytes one at a time, MS apart
 *   sleep:MS        pause
 *   shut            shutdown(SHUT_WR)
 *   read:N          read exactly N bytes, print them as hex on stdout
 *   skip:N          read and drop N bytes
 *   frame           read one frame, print "TYPE LEN" and the payload as
 *                   text (for ERROR frames: the text after the code)
 *   hello           read the host's magic and HELLO frame (a fake agent's
 *                   first step), print "1 LEN"
 *   eof:MS          succeed only if the peer closes within MS
 *   quiet:MS        succeed only if the peer closes within MS and sent
 *                   nothing before it
 *   close           close the connection
 * Exits 0 when every step succeeded, 1 (with a message) otherwise.
 *
 *   tpeer -d PATH MS
 *
 * Binds a Unix datagram socket at PATH (@NAME: an abstract name), as
 * systemd's $NOTIFY_SOCKET, and prints the first datagram that comes
 * within MS (exit 0), or exits 1.
 */
#define VS_IMPLEMENTATION
#include "protocol.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "tpeer: %s\n", what);
	return 1;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Hex digit pairs from s into out, up to the end of the string or the
 * character stop (a lone digit left over is ignored): the count, or -1 on
 * a bad digit. */
static long unhex(const char *s, int stop, uint8_t *out)
{
	long n = 0;
	for (; s[0] && s[1] && s[0] != stop; s += 2) {
		if (hexval(s[0]) < 0 || hexval(s[1]) < 0)
			return -1;
		out[n++] = (uint8_t)(hexval(s[0]) << 4 | hexval(s[1]));
	}
	return n;
}

static int step(int fd, const char *s)
{
	static uint8_t b[VS_FRAME_MAX + 16];
	if (!strncmp(s, "send:", 5)) {
		long n = unhex(s + 5, 0, b);
		if (n < 0)
			return fail("bad hex");
		return vs_writeall(fd, b, (size_t)n) < 0 ? fail("write failed") : 0;
	}
	if (!strncmp(s, "drip:", 5)) {
		const char *c = strchr(s + 5, ':');
		int ms = c ? atoi(c + 1) : 1000;
		long n = unhex(s + 5, ':', b), i;
		if (n < 0)
			return fail("bad hex");
		for (i = 0; i < n; i++) {
			if (vs_writeall(fd, b + i, 1) < 0)
				return fail("write failed");
			usleep((useconds_t)ms * 1000);
		}
		return 0;
	}
	if (!strncmp(s, "sendtext:", 9))
		return vs_writeall(fd, s + 9, strlen(s + 9)) < 0 ? fail("write failed") : 0;
	if (!strncmp(s, "rand:", 5) || !strncmp(s, "pad:", 4)) {
		int rnd = s[0] == 'r';
		const char *c = strchr(s + 4, ':');
		long n = strtol(strchr(s, ':') + 1, NULL, 10);
		unsigned x = c ? (unsigned)strtoul(c + 1, NULL, 10) | 1 : 1;
		while (n > 0) {
			long k = n < (long)sizeof b ? n : (long)sizeof b, i;
			for (i = 0; i < k; i++) {
				x = x * 1103515245 + 12345;
				b[i] = rnd ? (uint8_t)(x >> 16) : (uint8_t)(c ? c[1] : 'x');
			}
			if (vs_writeall(fd, b, (size_t)k) < 0)
				return fail("write failed");
			n -= k;
		}
		return 0;
	}
	if (!strncmp(s, "sleep:", 6)) {
		usleep((useconds_t)atoi(s + 6) * 1000);
		return 0;
	}
	if (!strcmp(s, "shut"))
		return shutdown(fd, SHUT_WR);
	if (!strcmp(s, "close"))
		return close(fd);
	if (!strncmp(s, "read:", 5) || !strncmp(s, "skip:", 5)) {
		size_t n = (size_t)atoi(s + 5), i;
		if (n > sizeof b || vs_readall(fd, b, n) != (ssize_t)n)
			return fail("short read");
		if (s[0] == 'r') {
			for (i = 0; i < n; i++)
				printf("%02x", b[i]);
			printf("\n");
		}
		return 0;
	}
	if (!strcmp(s, "hello")) {
		struct vs_hdr h;
		int n;
		if (vs_readall(fd, b, VS_MAGIC_LEN) != VS_MAGIC_LEN || memcmp(b, VS_MAGIC, VS_MAGIC_LEN))
			return fail("no magic from the host");
		n = vs_recv(fd, &h, b, sizeof b);
		if (n < 0 || h.type != VS_HELLO)
			return fail("no HELLO from the host");
		printf("%u %d\n", h.type, n);
		fflush(stdout);
		return 0;
	}
	if (!strcmp(s, "frame")) {
		struct vs_hdr h;
		int n = vs_recv(fd, &h, b, sizeof b);
		if (n < 0)
			return fail(errno ? "bad frame" : "EOF instead of a frame");
		printf("%u %d ", h.type, n);
		if (h.type == VS_ERROR && n >= 4)
			fwrite(b + 4, 1, (size_t)n - 4, stdout);
		else if (h.type == VS_STDOUT || h.type == VS_STDERR)
			fwrite(b, 1, (size_t)n, stdout);
		printf("\n");
		fflush(stdout);
		return 0;
	}
	if (!strncmp(s, "quiet:", 6)) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t r;
		if (poll(&p, 1, atoi(s + 6)) <= 0)
			return fail("peer did not close in time");
		r = read(fd, b, sizeof b);
		if (r > 0)
			return fail("peer sent something");
		return 0;
	}
	if (!strncmp(s, "eof:", 4)) {
		struct pollfd p = { fd, POLLIN, 0 };
		int ms = atoi(s + 4);
		for (;;) {
			ssize_t r;
			if (poll(&p, 1, ms) <= 0)
				return fail("peer did not close in time");
			r = read(fd, b, sizeof b);
			if (r == 0 || (r < 0 && errno == ECONNRESET))
				return 0;
			if (r < 0)
				return fail("read failed");
		}
	}
	return fail("unknown step");
}

/* -d: one datagram, as systemd's notify socket receives it */
static int dgram(const char *path, int ms)
{
	struct sockaddr_un a;
	struct pollfd p;
	char b[4096];
	size_t n = strlen(path);
	ssize_t r;
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	if (n >= sizeof a.sun_path)
		return fail("path too long");
	memcpy(a.sun_path, path, n);
	if (*path == '@')
		a.sun_path[0] = 0;
	p.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	p.events = POLLIN;
	if (p.fd < 0 || bind(p.fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
		return fail(strerror(errno));
	if (poll(&p, 1, ms) != 1 || (r = recv(p.fd, b, sizeof b, 0)) < 0)
		return fail("no datagram");
	printf("%.*s\n", (int)r, b);
	return 0;
}

int main(int argc, char **argv)
{
	struct vs_addr a = { VS_ADDR_VSOCK, VS_CID_HOST, VS_PORT_LISTEN, "" };
	int lst = 0, fd, i;
	signal(SIGPIPE, SIG_IGN);
	if (argc == 4 && !strcmp(argv[1], "-d"))
		return dgram(argv[2], atoi(argv[3]));
	if (argc > 1 && !strcmp(argv[1], "-l"))
		lst = 1, argv++, argc--;
	if (argc < 2 || vs_addr_parse(argv[1], &a) < 0 || a.kind == VS_ADDR_HYBRID)
		return fail("usage: tpeer [-l] unix:PATH|vsock:CID:PORT STEP...");
	/* the dev machine's vsock peer belongs to the infrastructure */
	if (a.kind == VS_ADDR_VSOCK && access("/etc/vsock-test-guest", F_OK) != 0)
		return fail("refusing AF_VSOCK outside the test guest");
	if (lst) {
		int l = vs_listen(&a);
		if (l < 0)
			return fail("unable to listen");
		fd = accept(l, NULL, NULL);
		close(l);
	} else if (a.kind == VS_ADDR_VSOCK) {
		/* from a reserved port, as a privileged controller does: the
		 * agent admits it, and the test reaches the parser behind */
		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			vs_bind_reserved(fd, (uint32_t)getpid());
			fd = vs_connect_fd(fd, &a);
		}
	} else {
		fd = vs_connect(&a);
	}
	if (fd < 0)
		return fail(strerror(errno));
	for (i = 2; i < argc; i++)
		if (step(fd, argv[i]))
			return 1;
	return 0;
}
