/*
 * test_frame.c - unit tests of the codec in protocol.h and of sha256.h:
 * frame headers, the bounded reader and writer, the EXEC decoder on good,
 * truncated and oversized requests, the address syntax, vs_recv over a
 * socketpair (clean, torn and oversized frames, byte-at-a-time delivery),
 * the channel of chan.h (its input, queue, half-close and readiness), and
 * the SHA-256 test vectors.
 *
 *   cc -I. -o build/test_frame tests/test_frame.c && build/test_frame
 *   cc -g -fsanitize=address,undefined -fno-sanitize-recover=all -I. \
 *      -o build/test_frame_asan tests/test_frame.c && build/test_frame_asan
 *
 * Prints "ok - NAME" or "not ok - NAME" per check and "N passed, N failed"
 * last; exits 1 if anything failed.  Every truncated decoder input is
 * copied into a buffer of exactly its length, so under AddressSanitizer a
 * read one byte past the end is a crash, not a silent pass.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define VS_IMPLEMENTATION
#define VS_SHORT_STRERROR /* the agent's table, tested here */
#include "protocol.h"
#include "chan.h"
#include "sha256.h"
#include "auth.h"
#include "transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int npass, nfail;

static void check(int ok, const char *fmt, ...)
{
	va_list ap;
	printf(ok ? "ok - " : "not ok - ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (ok)
		npass++;
	else
		nfail++;
}

/* A copy of p[0..n) in a heap block of exactly n bytes (ASan bounds). */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);
	if (!q) {
		perror("malloc");
		exit(2);
	}
	if (n)
		memcpy(q, p, n);
	return q;
}

/* ---- frame header ---- */

static void test_hdr(void)
{
	uint8_t b[VS_HDR];
	struct vs_hdr h;
	size_t n;
	int ok = 1;

	vs_hdr_put(b, VS_STDOUT, 10);
	for (n = 0; n < VS_HDR; n++) {
		uint8_t *q = dup_exact(b, n);
		if (vs_hdr_parse(q, n, &h) != 0)
			ok = 0;
		free(q);
	}
	check(ok, "hdr: 0..7 bytes need more");

	memset(&h, 0, sizeof h);
	check(vs_hdr_parse(b, VS_HDR, &h) == 1 && h.len == 10 && h.type == VS_STDOUT && h.flags == 0,
	      "hdr: valid header parsed");
	check(b[0] == 10 && b[1] == 0 && b[2] == 0 && b[3] == 0 && b[4] == VS_STDOUT && b[5] == 0 && b[6] == 0 && b[7] == 0,
	      "hdr: little-endian layout len, type, flags");

	vs_hdr_put(b, VS_STDIN, VS_FRAME_MAX);
	check(vs_hdr_parse(b, VS_HDR, &h) == 1 && h.len == VS_FRAME_MAX, "hdr: length 65536 accepted");
	vs_hdr_put(b, VS_STDIN, VS_FRAME_MAX + 1);
	check(vs_hdr_parse(b, VS_HDR, &h) == -1, "hdr: length 65537 refused");
	vs_hdr_put(b, VS_STDIN, 0xffffffffu);
	check(vs_hdr_parse(b, VS_HDR, &h) == -1, "hdr: length 0xffffffff refused");
	vs_hdr_put(b, VS_STDIN, 0);
	check(vs_hdr_parse(b, VS_HDR, &h) == 1 && h.len == 0, "hdr: length 0 accepted");
	vs_hdr_put(b, VS_STDIN, 4);
	vs_put16(b + 6, 1);
	check(vs_hdr_parse(b, VS_HDR, &h) == -1, "hdr: nonzero flags refused");
	vs_put16(b + 6, 0x8000);
	check(vs_hdr_parse(b, VS_HDR, &h) == -1, "hdr: high flag bit refused");
	vs_hdr_put(b, 0, 4);
	check(vs_hdr_parse(b, VS_HDR, &h) == -1, "hdr: type 0 refused");
	vs_hdr_put(b, 0xffff, 4);
	check(vs_hdr_parse(b, VS_HDR, &h) == 1 && h.type == 0xffff, "hdr: unknown type left to the caller");
}

/* ---- integers ---- */

static void test_ints(void)
{
	uint8_t b[8];
	vs_put64(b, 0x0102030405060708ull);
	check(b[0] == 8 && b[7] == 1 && vs_get64(b) == 0x0102030405060708ull, "put64/get64 little-endian");
	vs_put32(b, 0xdeadbeefu);
	check(b[0] == 0xef && b[3] == 0xde && vs_get32(b) == 0xdeadbeefu, "put32/get32 little-endian");
	vs_put16(b, 0xbeef);
	check(b[0] == 0xef && b[1] == 0xbe && vs_get16(b) == 0xbeef, "put16/get16 little-endian");
	check(vs_get16((const uint8_t *)VS_MAGIC) > VS_LEGACY_MAX, "magic read as a u16 exceeds the legacy maximum");
}

/* ---- bounded reader ---- */

static void test_rd(void)
{
	static const uint8_t data[] = { 1, 2, 3, 4, 5, 6, 7, 8, 'h', 'i', 0, 'x', 'y' };
	struct vs_rd r;
	uint8_t *q;
	const char *s;
	size_t k;
	int ok;

	r = (struct vs_rd){ data, sizeof data, 0 };
	check(vs_rd16(&r) == 0x0201 && vs_rd16(&r) == 0x0403 && vs_rd32(&r) == 0x08070605 && !r.err,
	      "rd: 16 and 32 bit values in order");
	s = vs_rdstr(&r);
	check(s && !strcmp(s, "hi") && r.n == 2 && !r.err, "rd: string ending inside the payload");
	s = vs_rdstr(&r);
	check(!s && r.err, "rd: string without NUL fails");
	check(vs_rd16(&r) == 0 && r.err, "rd: error is sticky");

	r = (struct vs_rd){ data, sizeof data, 0 };
	check(vs_rd64(&r) == 0x0807060504030201ull && !r.err && r.n == 5, "rd: 64 bit value");

	ok = 1;
	for (k = 0; k < 8; k++) {
		q = dup_exact(data, k);
		r = (struct vs_rd){ q, k, 0 };
		if (vs_rd64(&r) != 0 || !r.err || r.n != k || r.p != q)
			ok = 0;
		if (k < 4) {
			r = (struct vs_rd){ q, k, 0 };
			if (vs_rd32(&r) != 0 || !r.err || r.n != k)
				ok = 0;
		}
		if (k < 2) {
			r = (struct vs_rd){ q, k, 0 };
			if (vs_rd16(&r) != 0 || !r.err || r.n != k)
				ok = 0;
		}
		free(q);
	}
	check(ok, "rd: truncated integers set err, return 0, consume nothing");

	q = dup_exact((const uint8_t *)"abc", 3);
	r = (struct vs_rd){ q, 3, 0 };
	check(vs_rdstr(&r) == NULL && r.err && r.n == 3, "rd: unterminated string at the end fails");
	free(q);
	r = (struct vs_rd){ (const uint8_t *)"", 0, 0 };
	check(vs_rdstr(&r) == NULL && r.err, "rd: string from an empty payload fails");
	r = (struct vs_rd){ (const uint8_t *)"", 1, 0 };
	s = vs_rdstr(&r);
	check(s && !*s && !r.err && r.n == 0, "rd: empty string");
	r = (struct vs_rd){ data, sizeof data, 1 };
	check(vs_rdstr(&r) == NULL && vs_rd32(&r) == 0 && r.n == sizeof data, "rd: nothing read once err is set");
}

/* ---- bounded writer ---- */

static void test_wr(void)
{
	uint8_t b[32];
	struct vs_wr w;
	int i, intact;

	memset(b, 0xaa, sizeof b);
	w = (struct vs_wr){ b, 0, 8, 0 };
	vs_wr32(&w, 1);
	vs_wr16(&w, 2);
	check(!w.err && w.n == 6, "wr: fits");
	vs_wr32(&w, 0x11223344u);
	check(w.err && w.n == 6, "wr: overflow sets err, n unchanged");
	vs_wr16(&w, 3);
	check(w.err && w.n == 6, "wr: error is sticky even when the next write would fit");
	intact = 1;
	for (i = 6; i < 32; i++)
		if (b[i] != 0xaa)
			intact = 0;
	check(intact, "wr: nothing written past the good prefix");

	memset(b, 0xaa, sizeof b);
	w = (struct vs_wr){ b, 0, 4, 0 };
	vs_wr64(&w, ~0ull);
	intact = 1;
	for (i = 0; i < 32; i++)
		if (b[i] != 0xaa)
			intact = 0;
	check(w.err && w.n == 0 && intact, "wr: u64 into 4 bytes writes nothing");

	memset(b, 0xaa, sizeof b);
	w = (struct vs_wr){ b, 0, 5, 0 };
	vs_wrstr(&w, "hello");
	check(w.err && w.n == 0 && b[0] == 0xaa && b[5] == 0xaa, "wr: string whose NUL does not fit writes nothing");

	w = (struct vs_wr){ b, 0, 6, 0 };
	vs_wrstr(&w, "hello");
	check(!w.err && w.n == 6 && !memcmp(b, "hello", 6), "wr: string filling the buffer exactly");

	w = (struct vs_wr){ b, 0, 0, 0 };
	vs_wrmem(&w, "", 0);
	check(!w.err && w.n == 0, "wr: empty write into zero capacity");
	vs_wrmem(&w, "x", 1);
	check(w.err && w.n == 0, "wr: one byte into zero capacity fails");
}

/* ---- EXEC decoder ---- */

struct req {
	uint32_t flags;
	uint16_t rows, cols;
	const char *cwd;
	int argc, envc;
	const char *const *argv, *const *envv;
};

static size_t req_encode(const struct req *q, uint8_t *b, size_t cap)
{
	struct vs_wr w = { b, 0, cap, 0 };
	int i;
	vs_wr32(&w, q->flags);
	vs_wr16(&w, q->rows);
	vs_wr16(&w, q->cols);
	vs_wr16(&w, (uint16_t)q->argc);
	vs_wr16(&w, (uint16_t)q->envc);
	vs_wrstr(&w, q->cwd);
	for (i = 0; i < q->argc; i++)
		vs_wrstr(&w, q->argv[i]);
	for (i = 0; i < q->envc; i++)
		vs_wrstr(&w, q->envv[i]);
	if (w.err) {
		fprintf(stderr, "test_frame: request does not fit\n");
		exit(2);
	}
	return w.n;
}

static int decode_exact(const uint8_t *p, size_t n, struct vs_exec *e)
{
	uint8_t *q = dup_exact(p, n);
	int r = vs_exec_decode(q, n, e);
	free(q); /* only the result is used: e's strings pointed into q */
	return r;
}

static struct vs_exec ex; /* ~10 KiB: not on the stack */

/* Decode exactly n bytes (a fresh heap copy), then every prefix of it. */
static void exec_good(const char *name, const struct req *q)
{
	static uint8_t b[VS_FRAME_MAX];
	size_t n = req_encode(q, b, sizeof b), k;
	uint8_t *c = dup_exact(b, n);
	int ok, i, bad = 0;

	memset(&ex, 0x5a, sizeof ex);
	ok = vs_exec_decode(c, n, &ex) == 0;
	ok = ok && ex.flags == q->flags && ex.rows == q->rows && ex.cols == q->cols;
	ok = ok && ex.argc == (unsigned)q->argc && ex.envc == (unsigned)q->envc;
	ok = ok && ex.cwd && !strcmp(ex.cwd, q->cwd);
	for (i = 0; ok && i < q->argc; i++)
		ok = ex.argv[i] && !strcmp(ex.argv[i], q->argv[i]);
	for (i = 0; ok && i < q->envc; i++)
		ok = ex.envv[i] && !strcmp(ex.envv[i], q->envv[i]);
	ok = ok && ex.argv[q->argc] == NULL && ex.envv[q->envc] == NULL;
	check(ok, "exec: %s decodes", name);
	free(c);

	for (k = 0; k < n; k++) {
		uint8_t *t = dup_exact(b, k);
		if (vs_exec_decode(t, k, &ex) != -1)
			bad++;
		free(t);
	}
	check(!bad, "exec: %s: all %zu truncations fail (%d accepted)", name, n, bad);

	/* one byte of trailing garbage, and a trailing NUL (an extra string) */
	b[n] = 'x';
	check(decode_exact(b, n + 1, &ex) == -1, "exec: %s + trailing byte fails", name);
	b[n] = 0;
	check(decode_exact(b, n + 1, &ex) == -1, "exec: %s + trailing NUL fails", name);
}

static int exec_bad(const struct req *q)
{
	static uint8_t b[VS_FRAME_MAX];
	size_t n = req_encode(q, b, sizeof b);
	return decode_exact(b, n, &ex);
}

static void test_exec(void)
{
	static const char *argv1[] = { "ls", "-l", "/tmp", "" };
	static const char *env1[] = { "FOO=bar", "EMPTY=", "X==y" };
	static const char *shell1[] = { "echo hi; exit 3" };
	static const char *noeq[] = { "FOO=bar", "NOEQUALS" };
	static const char *many[VS_ARG_MAX + 1];
	static const char *manyenv[VS_ENV_MAX + 1];
	static uint8_t b[VS_FRAME_MAX];
	struct req q;
	size_t n;
	int i;

	for (i = 0; i <= VS_ARG_MAX; i++)
		many[i] = "a";
	for (i = 0; i <= VS_ENV_MAX; i++)
		manyenv[i] = "V=1";

	q = (struct req){ 0, 0, 0, "", 4, 0, argv1, NULL };
	exec_good("argv", &q);
	q = (struct req){ VS_EXEC_SHELL, 0, 0, "/root", 1, 3, shell1, env1 };
	exec_good("shell string, cwd, env", &q);
	q = (struct req){ VS_EXEC_LOGIN | VS_EXEC_PTY, 24, 80, "", 0, 1, NULL, env1 };
	exec_good("login shell on a pty", &q);
	q = (struct req){ VS_EXEC_PTY, 0xffff, 0xffff, "/", 1, 0, shell1, NULL };
	exec_good("pty with maximal size", &q);
	q = (struct req){ 0, 0, 0, "", VS_ARG_MAX, VS_ENV_MAX, many, manyenv };
	exec_good("argc 1024, envc 256 (the maxima)", &q);

	q = (struct req){ 0, 0, 0, "", VS_ARG_MAX + 1, 0, many, NULL };
	check(exec_bad(&q) == -1, "exec: argc 1025 refused");
	q = (struct req){ 0, 0, 0, "", 1, VS_ENV_MAX + 1, many, manyenv };
	check(exec_bad(&q) == -1, "exec: envc 257 refused");
	/* counts far beyond the strings present, without the strings */
	{
		struct vs_wr w = { b, 0, sizeof b, 0 };
		vs_wr32(&w, 0);
		vs_wr16(&w, 0);
		vs_wr16(&w, 0);
		vs_wr16(&w, 0xffff);
		vs_wr16(&w, 0xffff);
		vs_wrstr(&w, "");
		vs_wrstr(&w, "a");
		check(decode_exact(b, w.n, &ex) == -1, "exec: argc and envc 65535 refused");
	}
	q = (struct req){ 0, 0, 0, "", 3, 0, many, NULL };
	n = req_encode(&q, b, sizeof b);
	vs_put16(b + 8, 4); /* claims one more argument than present */
	check(decode_exact(b, n, &ex) == -1, "exec: argc larger than the strings present fails");
	q = (struct req){ 0, 0, 0, "", 1, 2, many, noeq };
	check(exec_bad(&q) == -1, "exec: env without '=' refused");
	q = (struct req){ 0, 0, 0, "", 1, 1, many, noeq + 1 };
	check(exec_bad(&q) == -1, "exec: sole env without '=' refused");
	q = (struct req){ 0, 0, 0, "", 0, 0, NULL, NULL };
	check(exec_bad(&q) == -1, "exec: no argv without the login flag refused");
	q = (struct req){ VS_EXEC_SHELL, 0, 0, "", 0, 0, NULL, NULL };
	check(exec_bad(&q) == -1, "exec: shell flag without a string refused");
	check(decode_exact(b, 0, &ex) == -1, "exec: empty payload refused");
}

/* ---- addresses ---- */

static void addr_ok(const char *s, int kind, uint32_t cid, uint32_t port, const char *path)
{
	struct vs_addr a = { VS_ADDR_VSOCK, VS_CID_HOST, VS_PORT_LISTEN, "" };
	int r = vs_addr_parse(s, &a);
	int ok = r == 0 && a.kind == kind;
	if (kind == VS_ADDR_VSOCK)
		ok = ok && a.cid == cid && a.port == port;
	else
		ok = ok && !strcmp(a.path, path) && (kind == VS_ADDR_UNIX || a.port == port);
	check(ok, "addr: \"%s\" (got %d kind %d cid %u port %u path \"%s\")", s, r, a.kind, a.cid, a.port, a.path);
}

static void addr_bad(const char *s)
{
	struct vs_addr a = { VS_ADDR_VSOCK, VS_CID_HOST, VS_PORT_LISTEN, "" };
	check(vs_addr_parse(s, &a) == -1, "addr: \"%s\" refused", s);
}

static void addr_str(const char *s, const char *want)
{
	struct vs_addr a = { VS_ADDR_VSOCK, VS_CID_HOST, VS_PORT_LISTEN, "" };
	char b[160];
	const char *got = vs_addr_parse(s, &a) == 0 ? vs_addr_str(&a, b, sizeof b) : "(parse failed)";
	check(!strcmp(got, want), "addr_str: \"%s\" -> \"%s\" (got \"%s\")", s, want, got);
}

static void test_addr(void)
{
	char longp[128];
	const uint32_t D = VS_PORT_LISTEN, H = VS_CID_HOST, ANY = VS_CID_ANY;
	addr_ok("3", VS_ADDR_VSOCK, 3, D, NULL);
	addr_ok("3:5000", VS_ADDR_VSOCK, 3, 5000, NULL);
	addr_ok(":1025", VS_ADDR_VSOCK, H, 1025, NULL);
	addr_ok("-1:", VS_ADDR_VSOCK, ANY, D, NULL);
	addr_ok("-1", VS_ADDR_VSOCK, ANY, D, NULL);
	addr_ok("any:7", VS_ADDR_VSOCK, ANY, 7, NULL);
	addr_ok("vsock:3:1024", VS_ADDR_VSOCK, 3, 1024, NULL);
	addr_ok("vsock:-1:1024", VS_ADDR_VSOCK, ANY, 1024, NULL);
	addr_ok("vsock:3", VS_ADDR_VSOCK, 3, D, NULL);
	addr_ok("host:9", VS_ADDR_VSOCK, H, 9, NULL);
	addr_ok("local", VS_ADDR_VSOCK, VS_CID_LOCAL, D, NULL);
	addr_ok("4294967295:4294967295", VS_ADDR_VSOCK, 0xffffffffu, 0xffffffffu, NULL);
	addr_ok("unix:/tmp/x", VS_ADDR_UNIX, 0, 0, "/tmp/x");
	addr_ok("unix:/tmp/a:b", VS_ADDR_UNIX, 0, 0, "/tmp/a:b");
	addr_ok("hybrid:/tmp/v.sock:52", VS_ADDR_HYBRID, 0, 52, "/tmp/v.sock");
	addr_ok("hybrid:/a:b/c:52", VS_ADDR_HYBRID, 0, 52, "/a:b/c");

	addr_bad("foo:bar");
	addr_bad("3:x");
	addr_bad("");
	addr_bad("vsock:");
	addr_bad("unix:");
	addr_bad("3:99999999999");
	addr_bad("4294967296");
	addr_bad("hybrid:/x");
	addr_bad("hybrid:/x:");
	addr_bad("hybrid::52");
	addr_bad("hybrid:/x:5x");
	addr_bad("3:5000:7");
	addr_bad("3 ");
	addr_bad("-2");
	addr_bad("+3");

	memset(longp, 'p', sizeof longp);
	memcpy(longp, "unix:/", 6);
	longp[5 + 107] = 0; /* a 107-byte path: the most sun_path holds */
	addr_ok(longp, VS_ADDR_UNIX, 0, 0, longp + 5);
	longp[5 + 107] = 'p';
	longp[5 + 108] = 0;
	addr_bad(longp);

	addr_str("3:5000", "vsock:3:5000");
	addr_str("any:7", "vsock:any:7");
	addr_str("vsock:4294967294:0", "vsock:4294967294:0");
	addr_str("unix:/tmp/x", "unix:/tmp/x");
	addr_str("hybrid:/a:b/c:52", "hybrid:/a:b/c:52");
}

/* ---- vs_recv over a socketpair ---- */

static void pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		perror("socketpair");
		exit(2);
	}
}

/* Write n bytes to sv[1], close it, and receive from sv[0]. */
static int recv_after(const uint8_t *b, size_t n, struct vs_hdr *h, uint8_t *pl, size_t cap, int *err)
{
	int sv[2], r;
	pair(sv);
	if (n && vs_writeall(sv[1], b, n) < 0) {
		perror("write");
		exit(2);
	}
	close(sv[1]);
	errno = 12345;
	r = vs_recv(sv[0], h, pl, cap);
	*err = errno;
	close(sv[0]);
	return r;
}

/* A child writes b one byte at a time; the reader is non-blocking, so
 * vs_readall goes through its EAGAIN/poll path for every byte. */
static int recv_trickle(const uint8_t *b, size_t n, struct vs_hdr *h, uint8_t *pl, size_t cap)
{
	int sv[2], r, st;
	pid_t pid;
	pair(sv);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		size_t i;
		close(sv[0]);
		for (i = 0; i < n; i++) {
			if (write(sv[1], b + i, 1) != 1)
				_exit(1);
			if (i % 4 == 0)
				usleep(200);
		}
		_exit(0);
	}
	close(sv[1]);
	vs_nonblock(sv[0], 1);
	r = vs_recv(sv[0], h, pl, cap);
	close(sv[0]);
	waitpid(pid, &st, 0);
	return r;
}

/* A child sends one maximal frame with vs_send; more than a socket
 * buffer may hold, so it must run concurrently. */
static int recv_big(uint8_t *pl, size_t cap, struct vs_hdr *h)
{
	static uint8_t big[VS_FRAME_MAX];
	int sv[2], r, st, i;
	pid_t pid;
	for (i = 0; i < VS_FRAME_MAX; i++)
		big[i] = (uint8_t)(i * 7 + 3);
	pair(sv);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		close(sv[0]);
		_exit(vs_send(sv[1], VS_STDOUT, big, VS_FRAME_MAX) < 0);
	}
	close(sv[1]);
	r = vs_recv(sv[0], h, pl, cap);
	close(sv[0]);
	waitpid(pid, &st, 0);
	if (r != VS_FRAME_MAX || memcmp(pl, big, VS_FRAME_MAX) || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	return r;
}

/* vs_writeall on a non-blocking socket whose reader is slow: EAGAIN
 * must become a wait, not a short or failed write. */
static int writeall_slow_reader(void)
{
	static uint8_t big[256 * 1024];
	int sv[2], st, small = 4096;
	size_t i;
	pid_t pid;
	for (i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i % 251);
	pair(sv);
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		uint8_t b[1000];
		size_t got = 0;
		ssize_t r;
		int bad = 0;
		close(sv[1]);
		usleep(20000); /* let the writer fill the buffer first */
		while ((r = read(sv[0], b, sizeof b)) > 0) {
			for (i = 0; i < (size_t)r; i++)
				if (b[i] != (uint8_t)((got + i) % 251))
					bad = 1;
			got += (size_t)r;
		}
		_exit(bad || got != sizeof big);
	}
	close(sv[0]);
	vs_nonblock(sv[1], 1);
	i = vs_writeall(sv[1], big, sizeof big) == 0;
	close(sv[1]);
	waitpid(pid, &st, 0);
	return i && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void test_recv(void)
{
	static uint8_t pl[VS_FRAME_MAX];
	uint8_t b[64];
	struct vs_hdr h;
	int r, e, sv[2];

	vs_hdr_put(b, VS_STDOUT, 5);
	memcpy(b + VS_HDR, "hello", 5);
	r = recv_after(b, VS_HDR + 5, &h, pl, sizeof pl, &e);
	check(r == 5 && h.type == VS_STDOUT && h.len == 5 && !memcmp(pl, "hello", 5), "recv: clean frame");

	vs_hdr_put(b, VS_STDIN_EOF, 0);
	r = recv_after(b, VS_HDR, &h, pl, 0, &e);
	check(r == 0 && h.type == VS_STDIN_EOF, "recv: empty frame with cap 0");

	r = recv_after(b, 0, &h, pl, sizeof pl, &e);
	check(r == -1 && e == 0, "recv: clean EOF gives -1 with errno 0 (errno %d)", e);

	vs_hdr_put(b, VS_STDOUT, 5);
	r = recv_after(b, 5, &h, pl, sizeof pl, &e);
	check(r == -1 && e == EPROTO, "recv: EOF inside the header is EPROTO (errno %d)", e);
	r = recv_after(b, 1, &h, pl, sizeof pl, &e);
	check(r == -1 && e == EPROTO, "recv: EOF after one header byte is EPROTO (errno %d)", e);

	vs_hdr_put(b, VS_STDOUT, 0);
	r = recv_after(b, 4, &h, pl, sizeof pl, &e);
	check(r == -1 && e == EPROTO, "recv: EOF after the length of an empty frame is EPROTO (errno %d)", e);
	r = recv_after(b, 7, &h, pl, sizeof pl, &e);
	check(r == -1 && e == EPROTO, "recv: EOF one byte short of a header is EPROTO (errno %d)", e);

	vs_hdr_put(b, VS_STDOUT, 10);
	memcpy(b + VS_HDR, "abcd", 4);
	r = recv_after(b, VS_HDR + 4, &h, pl, sizeof pl, &e);
	check(r == -1 && e == EPROTO, "recv: EOF inside the payload is EPROTO (errno %d)", e);

	vs_hdr_put(b, VS_STDOUT, 100);
	memset(b + VS_HDR, 'x', 50);
	r = recv_after(b, VS_HDR + 50, &h, pl, 50, &e);
	check(r == -1 && e == EMSGSIZE, "recv: frame larger than cap is EMSGSIZE (errno %d)", e);

	vs_hdr_put(b, VS_STDOUT, VS_FRAME_MAX + 1);
	r = recv_after(b, VS_HDR, &h, pl, sizeof pl, &e);
	check(r == -1 && e == EPROTO, "recv: length over the maximum is EPROTO (errno %d)", e);

	vs_hdr_put(b, VS_STDOUT, 0);
	vs_put16(b + 6, 4);
	r = recv_after(b, VS_HDR, &h, pl, sizeof pl, &e);
	check(r == -1 && e == EPROTO, "recv: flags set is EPROTO (errno %d)", e);

	/* two frames back to back: the first read must not eat the second */
	vs_hdr_put(b, VS_STDOUT, 3);
	memcpy(b + VS_HDR, "one", 3);
	vs_hdr_put(b + VS_HDR + 3, VS_STDERR, 3);
	memcpy(b + 2 * VS_HDR + 3, "two", 3);
	pair(sv);
	vs_writeall(sv[1], b, 2 * (VS_HDR + 3));
	close(sv[1]);
	r = vs_recv(sv[0], &h, pl, sizeof pl);
	e = r == 3 && h.type == VS_STDOUT && !memcmp(pl, "one", 3);
	r = vs_recv(sv[0], &h, pl, sizeof pl);
	e = e && r == 3 && h.type == VS_STDERR && !memcmp(pl, "two", 3);
	errno = 12345;
	r = vs_recv(sv[0], &h, pl, sizeof pl);
	check(e && r == -1 && errno == 0, "recv: two frames back to back, then clean EOF");
	close(sv[0]);

	vs_hdr_put(b, VS_STDOUT, 20);
	memcpy(b + VS_HDR, "0123456789abcdefghij", 20);
	r = recv_trickle(b, VS_HDR + 20, &h, pl, sizeof pl);
	check(r == 20 && !memcmp(pl, "0123456789abcdefghij", 20), "recv: frame delivered one byte at a time, non-blocking reader");

	check(recv_big(pl, sizeof pl, &h) == VS_FRAME_MAX && h.type == VS_STDOUT, "recv: 65536-byte frame from vs_send");

	check(writeall_slow_reader(), "writeall: 256 KiB through a non-blocking socket to a slow reader");

	pair(sv);
	errno = 0;
	r = vs_send(sv[1], VS_STDOUT, pl, VS_FRAME_MAX + 1);
	check(r == -1 && errno == EMSGSIZE, "send: payload over the maximum refused with EMSGSIZE");
	close(sv[0]);
	close(sv[1]);
}

/* ---- the channel (chan.h) ---- */

/* a frame of type t with n bytes of c into b; its size */
static size_t frame_mk(uint8_t *b, uint16_t t, size_t n, int c)
{
	vs_hdr_put(b, t, (uint32_t)n);
	memset(b + VS_HDR, c, n);
	return VS_HDR + n;
}

/* Frames in a byte at a time; taken in order; one held for a slow sink
 * while the frames behind it wait or are handled out of turn and cut
 * out; the input compacted only once nothing is held. */
static void test_chan_input(void)
{
	static uint8_t b[3 * (VS_HDR + 1000)];
	uint8_t in[4096], got[1000]; /* a small input: it compacts at every chance */
	struct vs_chan c;
	struct vs_hdr h;
	const uint8_t *p, *held;
	size_t n = 0, i, at;
	int sv[2], sink[2], ok = 1;

	pair(sv);
	vs_nonblock(sv[0], 1);
	vs_chan_init(&c, sv[0], in, sizeof in, NULL, 0);
	n += frame_mk(b + n, VS_STDIN, 1000, 'a');
	n += frame_mk(b + n, VS_STDIN, 10, 'b');
	n += frame_mk(b + n, VS_SIGNAL, 4, 's');
	for (i = 0; i < n; i++) {
		vs_writeall(sv[1], b + i, 1);
		ok &= vs_chan_room(&c) > 0 && vs_chan_read(&c) == 1;
		ok &= vs_chan_peek(&c, c.ioff, &h, &p) == (i >= VS_HDR + 999);
	}
	check(ok && c.ilen == n && c.ioff == 0, "chan: read a byte at a time, a frame is whole with its last byte only");
	errno = 0;
	check(vs_chan_read(&c) == -1 && errno == EAGAIN && !(c.st & VS_CH_EOF), "chan: nothing to read is EAGAIN, not EOF");

	/* as the agent does: the first STDIN held for a command that is slow
	 * to read; the STDIN behind it waits its turn; the SIGNAL behind that
	 * is handled at once and cut out */
	check(vs_chan_take(&c, &h, &p) == 1 && h.type == VS_STDIN && h.len == 1000 && p[0] == 'a',
	      "chan: the first frame taken");
	vs_chan_hold(&c, p, h.len);
	held = p;
	at = c.ioff;
	check(vs_chan_peek(&c, at, &h, &p) == 1 && h.type == VS_STDIN && h.len == 10 && c.ioff == at,
	      "chan: the frame behind it peeked, not taken");
	at += VS_HDR + h.len;
	check(vs_chan_peek(&c, at, &h, &p) == 1 && h.type == VS_SIGNAL && p[0] == 's', "chan: and the one behind that");
	check(vs_chan_drop(&c, at, VS_HDR + 4) == at && c.ilen == at && c.ioff == VS_HDR + 1000,
	      "chan: a frame handled out of turn is cut out; the one before it stays");
	check(vs_chan_peek(&c, at, &h, &p) == 0, "chan: nothing past the cut");
	check(vs_chan_room(&c) == sizeof in - c.ilen && c.ioff == VS_HDR + 1000 && held == in + VS_HDR && held[999] == 'a',
	      "chan: no compaction under a held payload");
	if (pipe(sink) < 0)
		exit(2);
	check(vs_chan_pass(&c, sink[1]) == 1000 && c.npend == 0 && read(sink[0], got, sizeof got) == 1000 &&
	      got[0] == 'a' && got[999] == 'a', "chan: the held payload passed on to the sink");
	check(vs_chan_room(&c) == sizeof in - (VS_HDR + 10) && c.ioff == 0 && vs_chan_take(&c, &h, &p) == 1 &&
	      h.len == 10 && p[0] == 'b' && p[9] == 'b', "chan: released, the input compacts; the waiting frame is whole");
	check(vs_chan_room(&c) == sizeof in && c.ilen == 0, "chan: all taken, the input is empty");
	close(sv[1]);
	check(vs_chan_read(&c) == 0 && (c.st & VS_CH_EOF), "chan: the peer's close is EOF");
	close(sv[0]);
	close(sink[0]);
	close(sink[1]);
}

/* vs_chan_recv: the blocking reader the file transfer uses. */
static int chan_recv_after(const uint8_t *b, size_t n, int *e, size_t *partial)
{
	static uint8_t in[VS_CHAN_BUF];
	struct vs_chan c;
	struct vs_hdr h;
	const uint8_t *p;
	int sv[2], k = 0;
	pair(sv);
	vs_writeall(sv[1], b, n);
	close(sv[1]);
	vs_chan_init(&c, sv[0], in, sizeof in, NULL, 0);
	while (vs_chan_recv(&c, &h, &p) >= 0)
		k++;
	*e = errno;
	*partial = c.ilen - c.ioff;
	close(sv[0]);
	return k;
}

static void test_chan_recv(void)
{
	static uint8_t b[3 * (VS_HDR + VS_FRAME_MAX)];
	size_t n = 0, part;
	int e, k;
	n += frame_mk(b + n, VS_DATA, VS_FRAME_MAX, 'x');
	n += frame_mk(b + n, VS_DATA, 0, 0);
	n += frame_mk(b + n, VS_DATA, VS_FRAME_MAX, 'y');
	k = chan_recv_after(b, n, &e, &part);
	check(k == 3 && e == 0 && part == 0, "chan: recv: three frames (two of the largest), then EOF between frames (errno 0)");
	k = chan_recv_after(b, n - 1, &e, &part);
	check(k == 2 && e == 0 && part == VS_HDR + VS_FRAME_MAX - 1, "chan: recv: EOF inside a frame leaves it partial");
	frame_mk(b, VS_DATA, 4, 'z');
	vs_put16(b + 6, 1);
	k = chan_recv_after(b, VS_HDR + 4, &e, &part);
	check(k == 0 && e == EPROTO, "chan: recv: a malformed header is EPROTO");
}

/* The queue: whole frames only, read straight in or copied; written out
 * in pieces; dropped, with what follows, once the peer reads no more. */
static void test_chan_queue(void)
{
	static uint8_t out[VS_CHAN_BUF], got[VS_CHAN_BUF];
	uint8_t in[64];
	struct vs_chan c;
	size_t n = 0;
	ssize_t r;
	int sv[2], ok;

	pair(sv);
	vs_nonblock(sv[0], 1);
	vs_chan_init(&c, sv[0], in, sizeof in, out, sizeof out);
	check(vs_chan_events(&c) == POLLIN, "chan: nothing queued: POLLIN only");
	check(vs_chan_fits(&c, VS_FRAME_MAX), "chan: an empty queue takes a whole frame");
	memset(vs_chan_data(&c), 'o', VS_FRAME_MAX);
	vs_chan_commit(&c, VS_STDOUT, VS_FRAME_MAX);
	check(vs_chan_fits(&c, VS_FRAME_MAX) && vs_chan_put(&c, VS_STDERR, "e", 1) == 0 &&
	      !vs_chan_fits(&c, VS_FRAME_MAX) && vs_chan_fits(&c, VS_FRAME_MAX - 9),
	      "chan: two frames' worth: a whole frame and a small one leave room for less than a frame");
	check(vs_chan_put(&c, VS_STDOUT, got, VS_FRAME_MAX) == -1 && c.olen == 2 * VS_HDR + VS_FRAME_MAX + 1,
	      "chan: a frame that does not fit is refused whole");
	check(vs_chan_events(&c) == (POLLIN | POLLOUT), "chan: frames queued: POLLOUT");
	/* out through a socket, in pieces as it takes them */
	ok = 1;
	while (c.olen > c.ooff && ok) {
		r = vs_chan_flush(&c);
		if (r < 0 && errno == EAGAIN) {
			ssize_t k = read(sv[1], got + n, sizeof got - n);
			ok = k > 0;
			n += k > 0 ? (size_t)k : 0;
		} else {
			ok = r > 0;
		}
	}
	while ((r = recv(sv[1], got + n, sizeof got - n, MSG_DONTWAIT)) > 0)
		n += (size_t)r;
	check(ok && n == 2 * VS_HDR + VS_FRAME_MAX + 1 && vs_get32(got) == VS_FRAME_MAX && got[VS_HDR] == 'o' &&
	      vs_get16(got + VS_HDR + VS_FRAME_MAX + 4) == VS_STDERR && got[n - 1] == 'e',
	      "chan: flushed in pieces, the peer gets the frames whole and in order");
	check(vs_chan_fits(&c, VS_FRAME_MAX) && !(vs_chan_events(&c) & POLLOUT), "chan: flushed, the queue is empty");
	/* the peer goes: EPIPE, and the channel is dead */
	vs_chan_put(&c, VS_STDOUT, "x", 1);
	close(sv[1]);
	r = vs_chan_flush(&c);
	check(r < 0 && (errno == EPIPE || errno == ECONNRESET) && (c.st & VS_CH_DEAD) && c.olen == c.ooff,
	      "chan: a peer that reads no more makes the channel dead, the queue dropped");
	check(vs_chan_put(&c, VS_STDOUT, "y", 1) == 0 && c.olen == 0 && !(vs_chan_events(&c) & POLLOUT),
	      "chan: what is put on a dead channel is dropped, and nothing asks for POLLOUT");
	close(sv[0]);
}

/* A resumable stream: what was sent is kept until acknowledged, a new
 * connection sends again from where the peer is, a frame cut short is
 * not held and comes again. */
static void test_chan_keep(void)
{
	static uint8_t out[4096], in[4096], got[4096];
	struct vs_chan a, b;
	struct vs_hdr h;
	const uint8_t *p;
	int s1[2], s2[2];
	ssize_t n;

	pair(s1);
	vs_chan_init(&a, s1[0], NULL, 0, out, sizeof out);
	vs_chan_init(&b, s1[1], in, sizeof in, NULL, 0);
	a.keep = 1;
	vs_chan_put(&a, VS_STDOUT, "one", 3);
	vs_chan_put(&a, VS_STDOUT, "two", 3);
	vs_chan_flush(&a);
	check(a.ooff == 2 * (VS_HDR + 3) && a.koff == 0 && a.kpos == 0, "chan keep: flushed, and all of it still kept");
	/* the peer gets the first frame and half of the second */
	n = read(s1[1], got, VS_HDR + 3 + 5);
	memcpy(in, got, (size_t)n);
	b.ilen = (size_t)n, b.rx = (uint64_t)n;
	check(vs_chan_got(&b, 0) == VS_HDR + 3, "chan keep: a frame cut short is not held");
	vs_chan_ack(&a, vs_chan_got(&b, 0));
	check(a.kpos == VS_HDR + 3 && a.koff == VS_HDR + 3, "chan keep: acknowledged, the first frame goes");
	vs_chan_ack(&a, 1000);
	check(a.kpos == VS_HDR + 3, "chan keep: an ACK past what was sent is ignored");
	/* the connection breaks: the peer cuts the half frame */
	check(vs_chan_got(&b, 1) == VS_HDR + 3 && b.ilen == VS_HDR + 3 && b.rx == VS_HDR + 3,
	      "chan keep: cut, the half frame is dropped");
	close(s1[0]);
	close(s1[1]);
	pair(s2);
	check(vs_chan_rewind(&a, s2[0], 0) == -1 && vs_chan_rewind(&a, s2[0], 2 * (VS_HDR + 3) + 1) == -1,
	      "chan keep: no rewind to what is no longer kept, nor past what was sent");
	check(vs_chan_rewind(&a, s2[0], vs_chan_got(&b, 0)) == 0 && a.ooff == a.koff && a.st == 0,
	      "chan keep: rewound to where the peer is, on the new connection");
	vs_chan_flush(&a);
	b.fd = s2[1];
	vs_chan_take(&b, &h, &p);
	vs_chan_room(&b);
	vs_chan_read(&b);
	check(vs_chan_take(&b, &h, &p) == 1 && h.len == 3 && !memcmp(p, "two", 3) && vs_chan_got(&b, 0) == 2 * (VS_HDR + 3),
	      "chan keep: the second frame comes again, whole, and nothing before it twice");
	close(s2[0]);
	close(s2[1]);
}

/* Readiness: POLLIN only while the input has room; a full input asks
 * for POLLRDHUP once, and the kernel answers it when the peer closes. */
static void test_chan_ready(void)
{
	uint8_t in[64], b[VS_HDR + 100];
	struct vs_chan c, d;
	struct vs_hdr h;
	const uint8_t *p;
	struct pollfd pf;
	int sv[2], sw[2];
	pair(sv);
	pair(sw);
	vs_nonblock(sv[0], 1);
	vs_chan_init(&c, sv[0], in, sizeof in, NULL, 0);
	frame_mk(b, VS_STDIN, 100, 'i');
	vs_writeall(sv[1], b, sizeof b);
	check(vs_chan_read(&c) == (ssize_t)sizeof in && vs_chan_room(&c) == 0 && vs_chan_peek(&c, 0, &h, &p) == 0,
	      "chan: an input full of a frame it cannot hold whole");
	check(vs_chan_events(&c) == POLLRDHUP, "chan: full: no POLLIN, POLLRDHUP instead");
	shutdown(sv[1], SHUT_WR);
	pf = (struct pollfd){ sv[0], vs_chan_events(&c), 0 };
	check(poll(&pf, 1, 1000) == 1 && (pf.revents & POLLRDHUP), "chan: the peer's half-close answers POLLRDHUP");
	check(vs_chan_probe(&c, pf.revents) == 1 && vs_chan_probe(&c, pf.revents) == 0 && vs_chan_events(&c) == 0,
	      "chan: the caller probes once, and is not asked again while full");
	c.ioff = c.ilen; /* taken: room again */
	check(vs_chan_events(&c) == POLLIN && !(c.st & VS_CH_PROBED), "chan: room again: POLLIN, the probe forgotten");
	/* two channels in one process: nothing shared */
	vs_nonblock(sw[0], 1);
	vs_chan_init(&d, sw[0], b, sizeof b, NULL, 0);
	frame_mk(in, VS_PING, 8, 'p');
	vs_writeall(sw[1], in, VS_HDR + 8);
	check(vs_chan_read(&d) == VS_HDR + 8 && vs_chan_read(&c) == sizeof b - sizeof in && vs_chan_read(&c) == 0 &&
	      (c.st & VS_CH_EOF) && !(d.st & VS_CH_EOF) && d.ilen == VS_HDR + 8 && c.ilen == sizeof b - sizeof in &&
	      d.in[VS_HDR] == 'p' && c.in[0] == 'i', "chan: two channels in one process keep their own state");
	close(sv[0]);
	close(sv[1]);
	close(sw[0]);
	close(sw[1]);
}

/* The last word: queued frames written, our side half-closed, and what
 * the peer still sends read until it closes, so that our close resets
 * nothing (a Unix socket closed with unread data gives its peer
 * ECONNRESET, as TCP would): the peer reads the last frame, then EOF. */
static void test_chan_close(void)
{
	static uint8_t in[VS_CHAN_BUF], out[VS_CHAN_BUF], junk[20000];
	uint8_t b[64];
	struct vs_chan c;
	ssize_t r;
	size_t n = 0;
	int sv[2], lost;
	pair(sv);
	vs_chan_init(&c, sv[0], in, sizeof in, out, sizeof out);
	vs_put32(b, 7);
	vs_chan_put(&c, VS_EXIT, b, 8);
	vs_writeall(sv[1], junk, sizeof junk); /* stdin nobody read */
	check(vs_chan_drain(&c) == 0 && c.olen == 0, "chan: drain writes all that is queued");
	shutdown(sv[1], SHUT_WR);
	vs_chan_close(&c, 2000);
	while ((r = read(sv[1], b + n, sizeof b - n)) > 0)
		n += (size_t)r;
	lost = r < 0;
	check(!lost && n == VS_HDR + 8 && vs_get16(b + 4) == VS_EXIT && (c.st & VS_CH_SHUT) && c.fd == -1,
	      "chan: closed with the peer's data unread: the peer reads the last frame, then EOF, no reset (%s)",
	      lost ? strerror(errno) : "clean");
	close(sv[1]);
}

/* ---- SHA-256 ---- */

static const char *sha_hex(const void *p, size_t n)
{
	static char hex[65];
	struct sha256 c;
	uint8_t d[32];
	sha256_init(&c);
	sha256_update(&c, p, n);
	sha256_final(&c, d);
	sha256_hex(d, hex);
	return hex;
}

static void sha_vec(const char *name, const char *msg, const char *want)
{
	const char *got = sha_hex(msg, strlen(msg));
	check(!strcmp(got, want), "sha256: %s (got %s)", name, got);
}

static const char MILLION_A[] = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

/* One million 'a' fed in pieces: sizes[] cycled (a single size for a
 * constant piece size). */
static void sha_million(const char *name, const size_t *sizes, size_t nsizes)
{
	static char a[1000];
	struct sha256 c;
	uint8_t d[32];
	char hex[65];
	size_t done = 0, i = 0;
	memset(a, 'a', sizeof a);
	sha256_init(&c);
	while (done < 1000000) {
		size_t k = sizes[i++ % nsizes];
		if (k > 1000000 - done)
			k = 1000000 - done;
		sha256_update(&c, a, k);
		done += k;
	}
	sha256_final(&c, d);
	sha256_hex(d, hex);
	check(!strcmp(hex, MILLION_A), "sha256: million 'a' in pieces of %s (got %s)", name, hex);
}

static void test_sha(void)
{
	static const struct { size_t n; const char *want; } as[] = {
		{ 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
		{ 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
		{ 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
		{ 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
		{ 65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0" },
		{ 119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb" },
		{ 120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c" },
	};
	static const size_t s1[] = { 1 }, s3[] = { 3 }, s63[] = { 63 }, s64[] = { 64 }, s65[] = { 65 },
	                    s1000[] = { 1000 }, mixed[] = { 1, 3, 63, 64, 65, 1000 };
	char a[128];
	size_t i;

	sha_vec("\"\"", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha_vec("\"abc\"", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha_vec("448-bit message", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	sha_vec("896-bit message",
	        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
	        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
	memset(a, 'a', sizeof a);
	for (i = 0; i < sizeof as / sizeof *as; i++) {
		const char *got = sha_hex(a, as[i].n);
		check(!strcmp(got, as[i].want), "sha256: %zu 'a' (padding boundary) (got %s)", as[i].n, got);
	}
	sha_million("1", s1, 1);
	sha_million("3", s3, 1);
	sha_million("63", s63, 1);
	sha_million("64", s64, 1);
	sha_million("65", s65, 1);
	sha_million("1000", s1000, 1);
	sha_million("1,3,63,64,65,1000 cycled", mixed, 6);
}

static const char *xx_hex(const void *p, size_t n, const size_t *pieces, size_t np)
{
	static char hex[65];
	struct xf_hash h;
	uint8_t d[32];
	size_t off = 0, i = 0, k;
	xf_hash_init(&h, XF_XXH64);
	while (off < n) {
		k = np ? pieces[i++ % np] : n;
		if (k > n - off)
			k = n - off;
		xf_hash_update(&h, (const uint8_t *)p + off, k);
		off += k;
	}
	xf_hex(d, xf_hash_final(&h, d), hex);
	return hex;
}

/* XXH64 vectors, checked against xxhsum -H64 */
static void test_xxh(void)
{
	static uint8_t pat[100000];
	static const size_t mixed[] = { 1, 7, 31, 32, 33, 4096 };
	const char *got;
	size_t i;
	for (i = 0; i < sizeof pat; i++)
		pat[i] = (uint8_t)(i % 251);
	got = xx_hex("", 0, NULL, 0);
	check(!strcmp(got, "ef46db3751d8e999"), "xxh64: \"\" (got %s)", got);
	got = xx_hex("abc", 3, NULL, 0);
	check(!strcmp(got, "44bc2cf5ad770999"), "xxh64: \"abc\" (got %s)", got);
	got = xx_hex(pat, 31, NULL, 0);
	check(!strcmp(got, "c346d2b59b4d8ee1"), "xxh64: 31 bytes, below one stripe (got %s)", got);
	got = xx_hex(pat, 32, NULL, 0);
	check(!strcmp(got, "cbf59c5116ff32b4"), "xxh64: 32 bytes, one stripe (got %s)", got);
	got = xx_hex(pat, 37, NULL, 0);
	check(!strcmp(got, "d93fa2dfee5c24c9"), "xxh64: 37 bytes (got %s)", got);
	got = xx_hex(pat, sizeof pat, NULL, 0);
	check(!strcmp(got, "4cf75ee72cd8f4cc"), "xxh64: 100000 bytes at once (got %s)", got);
	got = xx_hex(pat, sizeof pat, mixed, 6);
	check(!strcmp(got, "4cf75ee72cd8f4cc"), "xxh64: 100000 bytes in pieces of 1,7,31,32,33,4096 (got %s)", got);
}

/* b += a frame; returns the new end */
static uint8_t *put_frame(uint8_t *b, uint16_t type, const void *p, size_t n)
{
	vs_hdr_put(b, type, (uint32_t)n);
	if (n)
		memcpy(b + VS_HDR, p, n);
	return b + VS_HDR + n;
}

/* One file, name with content text, as a sender puts it: STAT, DATA, END */
static uint8_t *put_file(uint8_t *b, const char *name, const char *text)
{
	uint8_t st[48 + 64], end[16 + 32];
	struct vs_wr w = { st, 0, sizeof st, 0 };
	struct xf_hash h;
	size_t n = strlen(text);
	vs_wr32(&w, XF_FILE);
	vs_wr32(&w, 0644);
	vs_wr64(&w, n);
	vs_wr64(&w, 0);
	vs_wr32(&w, 0);
	vs_wr32(&w, 0);
	vs_wr32(&w, 0);
	vs_wrstr(&w, name);
	vs_wrstr(&w, "");
	b = put_frame(b, VS_STAT, st, w.n);
	b = put_frame(b, VS_DATA, text, n);
	xf_hash_init(&h, XF_XXH64);
	xf_hash_update(&h, text, n);
	vs_put32(end, XF_XXH64);
	vs_put32(end + 4, 0);
	vs_put64(end + 8, n);
	return put_frame(b, VS_END, end, 16 + xf_hash_final(&h, end + 16));
}

/* A receive over a socketpair that holds `stream`, into dir. */
static int recv_stream(struct xf *x, const uint8_t *stream, size_t n, const char *dir)
{
	uint8_t junk[4096];
	int sv[2], r;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 || vs_writeall(sv[1], stream, n) < 0)
		return -2;
	shutdown(sv[1], SHUT_WR);
	xf_init(x, sv[0], 0, XF_XXH64);
	r = xf_recv(x, dir);
	close(sv[0]);
	while (read(sv[1], junk, sizeof junk) > 0)
		;
	close(sv[1]);
	return r;
}

/* Each receive starts with an empty input buffer: what a sender sent
 * after its DONE on one connection (host/xfer.c downloads several
 * sources over one connection each) is not taken as the start of the
 * next connection's transfer. */
static void test_xf_fresh(void)
{
	static struct xf x;
	static uint8_t s1[1024], s2[1024];
	static const char *const made[] = { "evil", "f", "g" };
	char dir[] = "/tmp/test_frame.XXXXXX", p[64], got[16] = "";
	uint8_t *e1 = s1, *e2 = s2, done[4] = { 0 };
	int r1, r2, fd;
	size_t i;
	ssize_t n;
	if (!mkdtemp(dir)) {
		check(0, "xfer: unable to create a directory in /tmp: %s", strerror(errno));
		return;
	}
	e1 = put_file(e1, "f", "one");
	e1 = put_frame(e1, VS_DONE, done, 4);
	e1 = put_file(e1, "evil", "after DONE"); /* in the same read as DONE */
	e2 = put_file(e2, "g", "two");
	e2 = put_frame(e2, VS_DONE, done, 4);
	r1 = recv_stream(&x, s1, (size_t)(e1 - s1), dir);
	r2 = recv_stream(&x, s2, (size_t)(e2 - s2), dir);
	snprintf(p, sizeof p, "%s/g", dir);
	fd = open(p, O_RDONLY);
	n = fd < 0 ? -1 : read(fd, got, sizeof got - 1);
	if (fd >= 0)
		close(fd);
	check(r1 == 0 && r2 == 0 && n == 3 && !strcmp(got, "two"),
	      "xfer: a second receive reads only its own connection (%d, %d: %s; '%s')", r1, r2, r2 ? x.err : "", got);
	snprintf(p, sizeof p, "%s/evil", dir);
	check(access(p, F_OK) < 0, "xfer: what came after DONE on the first connection was not received");
	for (i = 0; i < sizeof made / sizeof made[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, made[i]);
		unlink(p);
	}
	rmdir(dir);
}

/* A peer's ERROR without text still leaves words to show */
static void test_xf_silent_error(void)
{
	static struct xf x;
	uint8_t s[64], *e = s, code[4];
	char dir[] = "/tmp/test_frame.XXXXXX";
	int r;
	if (!mkdtemp(dir)) {
		check(0, "xfer: unable to create a directory in /tmp: %s", strerror(errno));
		return;
	}
	vs_put32(code, VS_E_NOSPC);
	e = put_frame(e, VS_ERROR, code, 4);
	r = recv_stream(&x, s, (size_t)(e - s), dir);
	check(r < 0 && x.remote_err && x.code == VS_E_NOSPC && strstr(x.err, "error 9"),
	      "xfer: an ERROR without text from the sender is reported as its code ('%s')", x.err);
	rmdir(dir);
}

/* The receiver's name and symlink checks (transfer.h) */
static void test_names(void)
{
	static const char *good[] = { "a", "a/b", "a/b/c.txt", "..a", "a..", "...", ".x", "a b/c" };
	static const char *bad[] = { "", "/a", "a/", "a//b", ".", "..", "a/../b", "a/./b", "../x", "a/.." };
	char longc[300], longp[4200];
	size_t i;
	for (i = 0; i < sizeof good / sizeof *good; i++)
		check(xf_path_ok(good[i]), "names: '%s' accepted", good[i]);
	for (i = 0; i < sizeof bad / sizeof *bad; i++)
		check(!xf_path_ok(bad[i]), "names: '%s' refused", bad[i]);
	memset(longc, 'c', sizeof longc);
	longc[256] = 0;
	check(!xf_path_ok(longc), "names: a 256-byte component refused");
	longc[255] = 0;
	check(xf_path_ok(longc), "names: a 255-byte component accepted");
	for (i = 0; i + 2 < sizeof longp; i += 2)
		longp[i] = 'p', longp[i + 1] = '/';
	longp[4096] = 0;
	check(!xf_path_ok(longp), "names: a 4096-byte path refused");
	check(xf_link_ok("b", 0), "links: sibling accepted");
	check(xf_link_ok("../x", 1), "links: '..' within the tree accepted");
	check(!xf_link_ok("../x", 0), "links: '..' above the tree refused");
	check(!xf_link_ok("a/../../x", 0), "links: climbing out after going down refused");
	check(!xf_link_ok("/etc/passwd", 5), "links: absolute refused");
	check(!xf_link_ok("", 0), "links: empty target refused");
}

/* The top entry's name (both sides compute it), and a hole's hash */
static void test_xfer_rules(void)
{
	static const char *tn[][2] = {
		{ "/etc/hostname", "hostname" }, { "hostname", "hostname" }, { "/var/log/", "log" },
		{ "a//b//", "b" }, { "/", "root" }, { "//", "root" }, { ".", "root" }, { "a/..", "root" },
		{ "-", "-" },
	};
	static const uint8_t hole4[] = { 'a', 'b', 4, 0, 0, 0, 0, 0, 0, 0, 'c', 'd' };
	char out[256], big[300], a[65], b[65];
	struct xf_hash h;
	uint8_t d[32];
	size_t i;
	for (i = 0; i < sizeof tn / sizeof *tn; i++)
		check(xf_topname(tn[i][0], out, sizeof out) == 0 && !strcmp(out, tn[i][1]),
		      "topname: '%s' travels as '%s' (got '%s')", tn[i][0], tn[i][1], out);
	memset(big, 'n', sizeof big - 1);
	big[sizeof big - 1] = 0;
	check(xf_topname(big, out, sizeof out) < 0, "topname: a 299-byte name does not fit 256");
	for (i = 0; i < 2; i++) {
		int alg = i ? XF_SHA256 : XF_XXH64;
		xf_hash_init(&h, alg);
		xf_hash_update(&h, "ab", 2);
		xf_hash_hole(&h, 4);
		xf_hash_update(&h, "cd", 2);
		xf_hex(d, xf_hash_final(&h, d), a);
		xf_hash_init(&h, alg);
		xf_hash_update(&h, hole4, sizeof hole4);
		xf_hex(d, xf_hash_final(&h, d), b);
		check(!strcmp(a, b), "%s: a 4-byte hole hashes as its u64 LE length (%s, %s)", i ? "sha256" : "xxh64", a, b);
	}
}

/* ---- HMAC-SHA256: RFC 4231's test cases ---- */

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = 0;
	for (; h[0] && h[1]; h += 2) {
		unsigned v;
		sscanf(h, "%2x", &v);
		out[n++] = (uint8_t)v;
	}
	return n;
}

static void hmac_vec(const char *name, const char *keyhex, const char *msg, size_t mn, const char *want, size_t wn)
{
	uint8_t key[256], mac[32], w[32];
	size_t kn = unhex(keyhex, key);
	vs_hmac(key, kn, msg, mn, mac);
	unhex(want, w);
	check(!memcmp(mac, w, wn), "hmac-sha256: RFC 4231 %s", name);
}

static void test_hmac(void)
{
	static const char tc6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
	static const char tc7[] = "This is a test using a larger than block-size key and a larger than block-size "
	                          "data. The key needs to be hashed before being used by the HMAC algorithm.";
	char k131[263], d50[51], d50b[51];
	uint8_t k2[32], n1[32], n2[32], m1[32], m2[32];
	struct vs_key key, other;
	int i;
	memset(k131, 0, sizeof k131);
	for (i = 0; i < 131; i++)
		memcpy(k131 + 2 * i, "aa", 2);
	memset(d50, 0xdd, 50);
	memset(d50b, 0xcd, 50);
	hmac_vec("case 1", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "Hi There", 8,
	         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", 32);
	hmac_vec("case 2 (short key)", "4a656665", "what do ya want for nothing?", 28,
	         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", 32);
	hmac_vec("case 3", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", d50, 50,
	         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", 32);
	hmac_vec("case 4", "0102030405060708090a0b0c0d0e0f10111213141516171819", d50b, 50,
	         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b", 32);
	hmac_vec("case 5 (truncated to 128 bits)", "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "Test With Truncation", 20,
	         "a3b6167473100ee06e0c796c2955552b", 16);
	hmac_vec("case 6 (131-byte key)", k131, tc6, sizeof tc6 - 1,
	         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", 32);
	hmac_vec("case 7 (131-byte key, long data)", k131, tc7, sizeof tc7 - 1,
	         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", 32);

	/* keys: blanks and line ends at the end do not count; 16..1024 bytes */
	check(vs_key_set(&key, "0123456789abcdef\n", 17) == 0 && key.n == 16, "key: a trailing newline is not part of it");
	check(vs_key_set(&other, "0123456789abcdef \r\n", 19) == 0 && other.n == 16 && !memcmp(key.b, other.b, 16),
	      "key: echo and printf write the same key");
	errno = 0;
	check(vs_key_set(&other, "0123456789abcde\n", 16) < 0 && errno == EINVAL, "key: 15 bytes are refused");
	check(vs_memeq("abcd", "abcd", 4) == 0 && vs_memeq("abcd", "abce", 4) != 0 && vs_memeq("xbcd", "abcd", 4) != 0,
	      "memeq: equal, differing last, differing first");

	/* the handshake's MACs: each side's differs; both depend on every
	 * byte of the transcript, on who dialed whom and on the key */
	vs_nonce(n1);
	vs_nonce(n2);
	check(memcmp(n1, n2, 32) != 0, "nonce: two are different");
	{
		struct sha256 t, u;
		uint8_t tr[200];
		size_t j;
		int all = 1;
		memcpy(tr, n1, 32);
		memcpy(tr + 32, n2, 32);
		memset(tr + 64, 0x5a, sizeof tr - 64);
		sha256_init(&t);
		sha256_update(&t, tr, sizeof tr);
		vs_auth_mac(&key, 0, 1, &t, m1);
		vs_auth_mac(&key, 1, 1, &t, m2);
		check(memcmp(m1, m2, 32) != 0, "auth: the host's and the agent's MACs differ (no reflection)");
		vs_auth_mac(&key, 0, 0, &t, m2);
		check(memcmp(m1, m2, 32) != 0, "auth: who dialed whom is bound in");
		vs_key_set(&other, "fedcba9876543210", 16);
		vs_auth_mac(&other, 0, 1, &t, m2);
		check(memcmp(m1, m2, 32) != 0, "auth: another key, another MAC");
		vs_auth_mac(&key, 0, 1, &t, k2);
		check(!memcmp(m1, k2, 32), "auth: the same inputs, the same MAC");
		vs_auth_mac(&key, 0, 1, &t, k2);
		sha256_update(&t, "", 0);
		check(!memcmp(m1, k2, 32), "auth: the transcript is not consumed by a MAC");
		for (j = 0; j < sizeof tr; j++) { /* a flip of any bit anywhere in it */
			tr[j] ^= (uint8_t)(1u << (j % 8));
			sha256_init(&u);
			sha256_update(&u, tr, sizeof tr);
			vs_auth_mac(&key, 0, 1, &u, m2);
			all &= memcmp(m1, m2, 32) != 0;
			tr[j] ^= (uint8_t)(1u << (j % 8));
		}
		check(all, "auth: a change anywhere in the transcript changes the MAC");
		sha256_update(&t, "x", 1);
		vs_auth_mac(&key, 0, 1, &t, m2);
		check(memcmp(m1, m2, 32) != 0, "auth: a byte more in the transcript changes the MAC");
	}
}

/* ---- HELLO: the fixed part, then tagged fields ---- */

static void test_hello(void)
{
	struct vs_hello h, d;
	uint8_t b[600], *q;
	size_t n;
	memset(&h, 0, sizeof h);
	h.flags = VS_HF_KEY;
	h.caps = VS_CAP_ALL;
	h.token = 0x1122334455667788ULL;
	h.has_nonce = 1;
	memset(h.nonce, 0x5a, sizeof h.nonce);
	strcpy(h.software, "vsock-agent 0.2");
	strcpy(h.hostname, "guest-1");
	strcpy(h.kernel, "6.1.0-27-amd64");
	strcpy(h.machine_id, "0123456789abcdef0123456789abcdef");
	strcpy(h.boot_id, "1b2c3d4e-0000-4000-8000-123456789abc");
	n = vs_hello_encode(b, sizeof b, &h);
	check(n > 16 && vs_hello_decode(b, n, &d) == 0 && d.flags == h.flags && d.caps == h.caps && d.token == h.token &&
	          d.has_nonce && !memcmp(d.nonce, h.nonce, 32) && !strcmp(d.software, h.software) &&
	          !strcmp(d.hostname, h.hostname) && !strcmp(d.kernel, h.kernel) && !strcmp(d.machine_id, h.machine_id) &&
	          !strcmp(d.boot_id, h.boot_id) && d.version == VS_VERSION,
	      "hello: every field survives encode and decode");
	check(vs_hello_encode(b, 40, &h) == 0, "hello: too small a buffer encodes nothing");
	q = dup_exact(b, 15);
	check(vs_hello_decode(q, 15, &d) < 0, "hello: 15 bytes are refused");
	free(q);
	q = dup_exact(b, n - 1);
	check(vs_hello_decode(q, n - 1, &d) < 0, "hello: a field cut short is refused");
	free(q);
	/* a nonce of the wrong length; an unknown tag is skipped */
	n = 16;
	memcpy(b + n, "\x02\x00\x05\x00" "abcde", 9);
	check(vs_hello_decode(b, n + 9, &d) < 0, "hello: a 5-byte nonce is refused");
	memcpy(b + n, "\x63\x00\x03\x00" "xyz" "\x03\x00\x02\x00" "ok", 13);
	check(vs_hello_decode(b, n + 13, &d) == 0 && !strcmp(d.hostname, "ok"), "hello: an unknown field is skipped");
	/* guest text is kept as sent (its writer escapes it), and bounded */
	memcpy(b + n, "\x03\x00\x04\x00" "a\x1b[m", 8);
	check(vs_hello_decode(b, n + 8, &d) == 0 && !strcmp(d.hostname, "a\x1b[m"), "hello: a text is kept as sent, for its writer to escape");
	memcpy(b + n, "\x03\x00\x04\x00" "ab\0c", 8);
	check(vs_hello_decode(b, n + 8, &d) == 0 && !strcmp(d.hostname, "ab"), "hello: a text stops at a NUL");
	{
		uint8_t big[16 + 4 + 300];
		memcpy(big, b, 16);
		memcpy(big + 16, "\x03\x00\x2c\x01", 4);
		memset(big + 20, 'h', 300);
		check(vs_hello_decode(big, sizeof big, &d) == 0 && strlen(d.hostname) == sizeof d.hostname - 1,
		      "hello: a long text is cut to its buffer");
	}
}

/* The agent's short strerror: musl's words for the errors it meets,
 * each errno once, and a number for the rest. */
/* the BOOT fact: u32 flags, u64 uptime, exactly 12 bytes */
static void test_hello_boot(void)
{
	struct vs_hello h, d;
	uint8_t b[300];
	size_t n;
	memset(&h, 0, sizeof h);
	n = vs_hello_encode(b, sizeof b, &h);
	check(n == 16 && vs_hello_decode(b, n, &d) == 0 && !d.has_boot, "hello: no BOOT field unless has_boot");
	h.has_boot = 1;
	h.boot = VS_BOOT_INITRAMFS | VS_BOOT_INIT;
	h.uptime = 0x0102030405060708ULL;
	n = vs_hello_encode(b, sizeof b, &h);
	check(n == 16 + 4 + 12 && vs_get16(b + 16) == VS_F_BOOT && vs_get16(b + 18) == 12, "hello: BOOT is tag 9, 12 bytes");
	check(vs_hello_decode(b, n, &d) == 0 && d.has_boot && d.boot == h.boot && d.uptime == h.uptime,
	      "hello: BOOT's flags and uptime survive encode and decode");
	vs_put16(b + 18, 11);
	check(vs_hello_decode(b, n - 1, &d) < 0, "hello: a BOOT of 11 bytes is refused");
}

static void test_strerror(void)
{
	static const int seen[] = { EPERM, ENOENT, EACCES, ENOSPC, EISDIR, ENOTDIR, EEXIST, ENAMETOOLONG,
	                            ELOOP, EROFS, EDQUOT, EXDEV, ECONNRESET, ECONNREFUSED, ETIMEDOUT, EPIPE,
	                            EADDRINUSE, EADDRNOTAVAIL, EAFNOSUPPORT, ENODEV, EMFILE, ENOEXEC };
	char dup[256] = { 0 };
	const char *p;
	size_t i;
	int once = 1;
	check(!strcmp(vs_strerror(ENOENT), "No such file or directory"), "strerror: ENOENT in musl's words");
	check(!strcmp(vs_strerror(ECHILD), "No child process"), "strerror: ECHILD in musl's words");
	check(!strcmp(vs_strerror(EDQUOT), "Quota exceeded"), "strerror: the last entry is found");
	check(!strcmp(vs_strerror(EPERM), "Operation not permitted"), "strerror: the first entry is found");
	check(!strcmp(vs_strerror(200), "error 200") && !strcmp(vs_strerror(0), "error 0"),
	      "strerror: an errno not in the table is a number");
	for (i = 0; i < sizeof seen / sizeof *seen; i++)
		if (!strncmp(vs_strerror(seen[i]), "error ", 6))
			check(0, "strerror: errno %d has words", seen[i]);
	for (p = vs_errtab; *p; p += strlen(p) + 1) {
		once &= !dup[(unsigned char)*p];
		dup[(unsigned char)*p] = 1;
	}
	check(once, "strerror: each errno is in the table once");
}

/* The getdents64 iterator: every name once, "." and ".." never, across
 * more than one buffer's worth; names that merely begin with dots kept. */
static void test_dir(void)
{
	char tmpl[] = "/tmp/vs-dir-XXXXXX", path[4200], seen[400] = { 0 };
	const char *name;
	struct vs_dir d;
	int i, fd, n = 0, bad = 0, dots = 0;
	if (!mkdtemp(tmpl)) {
		check(0, "dir: mkdtemp");
		return;
	}
	for (i = 0; i < 300; i++) { /* 300 names of 60 bytes: over 4 buffers */
		snprintf(path, sizeof path, "%s/%03d-%s", tmpl, i, "..........................................................");
		close(open(path, O_CREAT | O_WRONLY, 0600));
	}
	snprintf(path, sizeof path, "%s/..x", tmpl);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	snprintf(path, sizeof path, "%s/.a", tmpl);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	fd = open(tmpl, O_RDONLY | O_DIRECTORY);
	vs_dir_init(&d, fd);
	while ((name = vs_dir_next(&d))) {
		n++;
		if (!strcmp(name, "..x") || !strcmp(name, ".a"))
			dots++;
		else if (atoi(name) < 0 || atoi(name) >= 300 || seen[atoi(name)]++ || strlen(name) != 62)
			bad++;
	}
	check(errno == 0 && n == 302 && dots == 2 && !bad, "dir: 302 names, each once, no . or .. (%d, %d bad)", n, bad);
	check(vs_dir_next(&d) == NULL && errno == 0, "dir: the end stays the end");
	close(fd);
	vs_dir_init(&d, fd);
	check(vs_dir_next(&d) == NULL && errno == EBADF, "dir: an error is NULL with errno");
	for (i = 0; i < 300; i++) {
		snprintf(path, sizeof path, "%s/%03d-%s", tmpl, i, "..........................................................");
		unlink(path);
	}
	snprintf(path, sizeof path, "%s/..x", tmpl);
	unlink(path);
	snprintf(path, sizeof path, "%s/.a", tmpl);
	unlink(path);
	rmdir(tmpl);
}

/* esc_is: vs_esc of the n bytes of in, into cap bytes, gives want and
 * takes took bytes of in */
static int esc_is(const char *in, size_t n, size_t cap, int quote, const char *want, size_t took)
{
	char b[512];
	size_t t;
	memset(b, 'Z', sizeof b);
	t = vs_esc(b, cap, in, n, quote);
	if (t != took || strcmp(b, want) || strlen(b) >= cap) {
		printf("# vs_esc gave '%s' (took %zu), want '%s' (took %zu)\n", b, t, want, took);
		return 0;
	}
	return 1;
}

static void test_esc(void)
{
	static const char hostile[] = "\x1b]0;pwned\x07\x1b[2J\rall good\n";
	size_t len, i;
	char b[64];
	int ok;
	check(esc_is("plain name.txt", 14, 64, 0, "plain name.txt", 14), "esc: printable ASCII stays as it is");
	check(esc_is(hostile, sizeof hostile - 1, 128, 0, "\\x1b]0;pwned\\x07\\x1b[2J\\rall good\\n", sizeof hostile - 1),
	      "esc: ESC, BEL, CR and newline become \\x1b \\x07 \\r \\n");
	check(esc_is("a\\b\tc", 5, 64, 0, "a\\\\b\\tc", 5), "esc: a backslash is doubled, a tab is \\t");
	check(esc_is("a\0b\x7f", 4, 64, 0, "a\\x00b\\x7f", 4), "esc: NUL and DEL are \\xHH");
	check(esc_is("it's", 4, 64, 0, "it's", 4), "esc: a quote stays without a quote character");
	check(esc_is("it's", 4, 64, '\'', "it\\'s", 4), "esc: ...and is \\' with one");
	check(esc_is("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, 64, 0, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14),
	      "esc: valid UTF-8 (2, 3 and 4 bytes) stays as it is");
	check(esc_is("\xff\xc3(\xc0\xaf\xed\xa0\x80", 8, 64, 0, "\\xff\\xc3(\\xc0\\xaf\\xed\\xa0\\x80", 8),
	      "esc: bytes that are not UTF-8 (stray, cut short, overlong, surrogate) are \\xHH");
	check(esc_is("\xf4\x90\x80\x80", 4, 64, 0, "\\xf4\\x90\\x80\\x80", 4), "esc: beyond U+10FFFF is \\xHH");
	check(esc_is("\xc2\x9b" "1m", 4, 64, 0, "\\xc2\\x9b" "1m", 4), "esc: a C1 control in UTF-8 (CSI) is \\xHH");
	check(esc_is("a\xe2\x80\xae" "b\xe2\x81\xa6", 8, 64, 0, "a\\xe2\\x80\\xae" "b\\xe2\\x81\\xa6", 8),
	      "esc: bidirectional overrides and isolates are \\xHH");
	check(esc_is("\xe2\x80\xa8", 3, 64, 0, "\\xe2\\x80\\xa8", 3), "esc: the line separator is \\xHH");
	/* bounds: the whole when it fits exactly, else cut at a boundary, marked */
	check(esc_is("abcdef", 6, 7, 0, "abcdef", 6), "esc: a text that fills the room exactly is whole");
	check(esc_is("abcdefg", 7, 7, 0, "abc...", 3), "esc: one byte more is cut, and marked ...");
	check(esc_is("ab\x1b" "cdef", 7, 8, 0, "ab...", 2), "esc: an escape is never split by the cut");
	check(esc_is("ab\xc3\xa9xyzw", 8, 8, 0, "ab\xc3\xa9...", 4) && esc_is("ab\xc3\xa9xyz", 7, 7, 0, "ab...", 2),
	      "esc: nor a UTF-8 character");
	check(esc_is("abcdefgh", 8, 4, 0, "...", 0), "esc: the smallest room holds the mark");
	check(esc_is("", 0, 4, 0, "", 0), "esc: nothing gives nothing");
	/* every byte value alone: no byte below 0x20, DEL or above 0x7e comes out */
	ok = 1;
	for (i = 0; i < 256; i++) {
		char in = (char)i;
		size_t k;
		vs_esc(b, sizeof b, &in, 1, '\'');
		for (k = 0; b[k]; k++)
			if ((uint8_t)b[k] < 0x20 || (uint8_t)b[k] > 0x7e)
				ok = 0;
		if ((i >= 0x20 && i < 0x7f && i != '\\' && i != '\'') != (k == 1))
			ok = 0;
	}
	check(ok, "esc: each of the 256 bytes alone comes out printable ASCII, escaped unless printable");
	/* decoder */
	check(vs_utf8((const uint8_t *)"\xc3\xa9", 2, &len) == 0xe9 && len == 2, "utf8: U+00E9 from 2 bytes");
	check(vs_utf8((const uint8_t *)"\xc3\xa9", 1, &len) == VS_NOT_UTF8 && len == 1, "utf8: a sequence cut short is not UTF-8, 1 byte");
	check(vs_utf8((const uint8_t *)"\xe0\x80\x80", 3, &len) == VS_NOT_UTF8 && len == 1, "utf8: an overlong form is not UTF-8");
	check(!vs_shown(0x1b) && !vs_shown(0x7f) && !vs_shown(0x9b) && !vs_shown(0x202e) && !vs_shown(VS_NOT_UTF8) &&
	      vs_shown(' ') && vs_shown('~') && vs_shown(0xa0) && vs_shown(0x1f600),
	      "shown: controls, DEL, C1, a bidi override and non-UTF-8 are not; the rest is");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	test_hdr();
	test_ints();
	test_rd();
	test_wr();
	test_exec();
	test_addr();
	test_recv();
	test_chan_input();
	test_chan_recv();
	test_chan_queue();
	test_chan_ready();
	test_chan_close();
	test_chan_keep();
	test_xf_fresh();
	test_xf_silent_error();
	test_sha();
	/* and the portable SHA-256, whichever the CPU picked above */
	sha256_blocks = sha256_blocks_c;
	test_sha();
	test_xxh();
	test_names();
	test_xfer_rules();
	test_hmac();
	test_hello();
	test_hello_boot();
	test_strerror();
	test_dir();
	test_esc();
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail ? 1 : 0;
}
