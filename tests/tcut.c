/*
 * tcut - a relay that breaks connections, for the tests of sessions that
 * outlive their connection:
 *
 *   tcut LISTEN TARGET [BYTES]
 *
 * accepts at LISTEN (unix:PATH, or vsock inside a test guest) and relays
 * each connection to TARGET, both ways, byte for byte (to a vsock TARGET
 * from a reserved port, as the controller connects).  With BYTES, each
 * connection is cut (both sides closed) once BYTES have gone from TARGET
 * to the client: in the middle of a frame, as a reset would cut it, and
 * again on the next connection.  SIGTERM ends it and every connection.
 * Prints one line per cut to stderr.  At most 32 connections at once.
 */
#define VS_IMPLEMENTATION
#include "protocol.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PAIRS 32

static struct pair {
	int c, t;            /* the client, the target; -1: free */
	unsigned long long down;
} pairs[PAIRS];

static void pair_close(struct pair *p)
{
	close(p->c);
	close(p->t);
	p->c = p->t = -1;
}

/* The target: over vsock from a reserved port, as the controller
 * connects (the kernel's proof, for an agent that listens). */
static int target(const struct vs_addr *a)
{
	static uint32_t next = 700;
	int fd;
	if (a->kind != VS_ADDR_VSOCK)
		return vs_connect(a);
	if ((fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	next = vs_bind_reserved(fd, next) + 1;
	if (vs_connect_fd(fd, a) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* one read from `from` written whole to `to`; 0 at EOF or an error */
static ssize_t pass(int from, int to, size_t max)
{
	static char b[65536];
	ssize_t r = read(from, b, max < sizeof b ? max : sizeof b);
	if (r <= 0 || vs_writeall(to, b, (size_t)r) < 0)
		return 0;
	return r;
}

int main(int argc, char **argv)
{
	struct vs_addr la, ta;
	unsigned long long cut = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
	int lfd, i;
	if (argc < 3 || vs_addr_parse(argv[1], &la) < 0 || vs_addr_parse(argv[2], &ta) < 0) {
		fprintf(stderr, "usage: tcut LISTEN TARGET [BYTES]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((lfd = vs_listen(&la)) < 0) {
		perror("tcut: listen");
		return 1;
	}
	for (i = 0; i < PAIRS; i++)
		pairs[i].c = pairs[i].t = -1;
	for (;;) {
		struct pollfd p[1 + 2 * PAIRS];
		int n = 1;
		p[0] = (struct pollfd){ lfd, POLLIN, 0 };
		for (i = 0; i < PAIRS; i++) {
			p[n++] = (struct pollfd){ pairs[i].c, POLLIN, 0 };
			p[n++] = (struct pollfd){ pairs[i].t, POLLIN, 0 };
		}
		if (poll(p, (nfds_t)n, -1) < 0 && errno != EINTR)
			return 1;
		if (p[0].revents & POLLIN) {
			int c = accept(lfd, NULL, NULL), t;
			for (i = 0; i < PAIRS && pairs[i].c >= 0; i++)
				;
			t = c < 0 || i == PAIRS ? -1 : target(&ta);
			if (t < 0) {
				if (c >= 0)
					close(c);
			} else {
				pairs[i] = (struct pair){ c, t, 0 };
			}
		}
		for (i = 0; i < PAIRS; i++) {
			struct pair *q = &pairs[i];
			short rc = p[1 + 2 * i].revents, rt = p[2 + 2 * i].revents;
			ssize_t r;
			if (q->c < 0)
				continue;
			if (rc && !pass(q->c, q->t, ~(size_t)0)) {
				pair_close(q);
				continue;
			}
			if (!rt)
				continue;
			r = pass(q->t, q->c, cut ? cut - q->down : ~(size_t)0);
			q->down += (unsigned long long)r;
			if (!r || (cut && q->down >= cut)) {
				if (r)
					fprintf(stderr, "tcut: cut after %llu bytes\n", q->down);
				pair_close(q);
			}
		}
	}
}
