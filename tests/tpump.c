/*
 * tpump - the raw byte pump that file transfer is measured against: the
 * same transport, the same file I/O and durability (fsync), and nothing
 * else (no framing, no hash, no rename).
 *
 *   tpump [-x] -l ADDR OUT  accept one connection, write what arrives to
 *                           OUT, fsync, print the milliseconds that took
 *   tpump [-x] ADDR IN      connect and send IN
 *
 *   tpump -e -l ADDR        an echo server: each connection gets its
 *                           first byte back and is closed; forever
 *   tpump -e ADDR           connect, send a byte, wait for it to come
 *                           back: the bare round trip a session is
 *                           measured against (make bench, nested)
 *
 * -x hashes every byte as file transfer does, with transfer.h's own code
 * and default algorithm (XXH64): the sender what it reads, the receiver
 * what it writes.  The pump with -x against the pump without it is what
 * the hash costs; vsock-shell cp against the pump with -x is what the
 * rest of the protocol costs.
 */
#define VS_IMPLEMENTATION
#include "protocol.h"
#include "transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 17];
static struct xf_hash hash;
static int hashing;
static volatile uint8_t sink;

static void pass(const void *p, size_t n)
{
	if (hashing)
		xf_hash_update(&hash, p, n);
}

/* The digest must be computed, not optimised away. */
static void pass_end(void)
{
	uint8_t d[32];
	size_t n, i;
	if (!hashing)
		return;
	n = xf_hash_final(&hash, d);
	for (i = 0; i < n; i++)
		sink ^= d[i];
}

/* -e: a round trip, or serve them */
static int echo(const struct vs_addr *a, int lst)
{
	char c = 'x';
	int fd;
	if (lst) {
		int l = vs_listen(a);
		if (l < 0)
			return perror("tpump: listen"), 1;
		for (;;) {
			fd = accept(l, NULL, NULL);
			if (fd < 0)
				continue;
			if (read(fd, &c, 1) == 1 && write(fd, &c, 1) < 0) {
				/* the client went: its loss */
			}
			close(fd);
		}
	}
	fd = vs_connect(a);
	if (fd < 0 || write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1)
		return perror("tpump: echo"), 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct vs_addr a = { VS_ADDR_VSOCK, VS_CID_HOST, VS_PORT_LISTEN, "" };
	int lst, fd, f, echoing = 0;
	ssize_t r;
	if (argc > 1 && !strcmp(argv[1], "-x"))
		hashing = 1, argv++, argc--;
	else if (argc > 1 && !strcmp(argv[1], "-e"))
		echoing = 1, argv++, argc--;
	lst = argc == 4 - echoing && !strcmp(argv[1], "-l");
	if (lst)
		argv++, argc--;
	xf_hash_init(&hash, XF_XXH64);
	if (argc != 3 - echoing || vs_addr_parse(argv[1], &a) < 0 || a.kind == VS_ADDR_HYBRID) {
		fprintf(stderr, "usage: tpump [-x] [-l] ADDR FILE, tpump -e [-l] ADDR\n");
		return 2;
	}
	if (a.kind == VS_ADDR_VSOCK && access("/etc/vsock-test-guest", F_OK) != 0) {
		fprintf(stderr, "tpump: refusing AF_VSOCK outside the test guest\n");
		return 2;
	}
	if (echoing)
		return echo(&a, lst);
	if (lst) {
		int l = vs_listen(&a);
		if (l < 0)
			return perror("tpump: listen"), 1;
		struct timespec t0, t1;
		fd = accept(l, NULL, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		f = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || f < 0)
			return perror("tpump"), 1;
		while ((r = read(fd, buf, sizeof buf)) > 0) {
			if (vs_writeall(f, buf, (size_t)r) < 0)
				return perror("tpump: write"), 1;
			pass(buf, (size_t)r);
		}
		if (r < 0 || fsync(f) < 0)
			return perror("tpump"), 1;
		pass_end();
		clock_gettime(CLOCK_MONOTONIC, &t1);
		/* from the first byte's connection to durable on disk, in ms */
		printf("%ld\n", (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
		return 0;
	}
	fd = vs_connect(&a);
	f = open(argv[2], O_RDONLY);
	if (fd < 0 || f < 0)
		return perror("tpump"), 1;
	while ((r = read(f, buf, sizeof buf)) > 0) {
		pass(buf, (size_t)r);
		if (vs_writeall(fd, buf, (size_t)r) < 0)
			return perror("tpump: send"), 1;
	}
	pass_end();
	return r < 0;
}
