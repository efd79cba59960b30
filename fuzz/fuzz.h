/*
 * fuzz.h - what every libFuzzer target in fuzz/ shares: the product's
 * single-header code (VS_IMPLEMENTATION, so static helpers are reachable
 * too) and CHECK, which aborts on a broken invariant so that libFuzzer
 * records the input as a crash.
 *
 * It also holds what several targets' models share: the handshake's MAC,
 * the HELLO fields' rule and the guest-link rule of protocol 3, written
 * again from their definitions (not the product's functions: a model that
 * calls the code it checks checks nothing), and a Unix socket with the
 * same name in every run, for the side that sees a path.
 *
 * A target is one file fuzz/NAME.c defining LLVMFuzzerTestOneInput, plus
 * one line "NAME MAX_LEN" in fuzz/targets, plus seeds in fuzz/corpus/NAME/.
 * Inputs arrive in a heap block of exactly their size, so under
 * AddressSanitizer a read one byte past the end is a crash.
 */
#ifndef FUZZ_H
#define FUZZ_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define VS_IMPLEMENTATION
#include "protocol.h"
#include "sha256.h"
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The protocol version the models below follow: a new one must bring
 * them (and fuzz/mkseeds, whose seeds carry MACs) along. */
#define FUZZ_VERSION 3
_Static_assert(VS_VERSION == FUZZ_VERSION, "fuzz/: the models follow protocol 3; update them and fuzz/mkseeds");

#define CHECK(c) ((c) ? (void)0 : fuzz_fail(#c, __FILE__, __LINE__))

__attribute__((noreturn)) static void fuzz_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
	abort();
}

/* FUZZ_TRACE set in the environment: one line on stderr per input, to
 * see what the seeds reach (README.md, Testing). */
__attribute__((format(printf, 1, 2))) static void fuzz_trace(const char *fmt, ...)
{
	static int on = -1;
	va_list ap;
	if (on < 0)
		on = getenv("FUZZ_TRACE") != NULL;
	if (!on)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* malloc(n), of at least 1 byte; no memory is an abort, not a finding. */
static void *fuzz_alloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

/* A heap copy of p[0..n) of exactly n bytes (plus `extra` more), so that
 * ASan sees an overrun of a truncated or extended variant too. */
static uint8_t *fuzz_dup(const uint8_t *p, size_t n, size_t extra)
{
	uint8_t *q = fuzz_alloc(n + extra);
	if (n)
		memcpy(q, p, n);
	return q;
}

/* p points into [base, base+n) and the string there ends inside it. */
static int fuzz_str_inside(const char *s, const uint8_t *base, size_t n)
{
	const uint8_t *u = (const uint8_t *)s;
	return s && u >= base && u < base + n && memchr(u, 0, (size_t)(base + n - u));
}

/* The MAC one side sends (protocol 3; PROTOCOL.md 3.3, auth.h):
 * HMAC-SHA256(key, label NUL || dir || SHA-256(transcript)), the label
 * "vsock-shell v3 host" or "vsock-shell v3 agent", dir the byte 'D' when
 * the host dialed the agent and 'L' when it listened.  The transcript is
 * the pieces given, one after another: the host's HELLO payload and the
 * agent's, verbatim, for either MAC; for the agent's, then the host's MAC
 * and the agent's AUTH after its MAC (its facts). */
struct fuzz_piece {
	const void *p;
	size_t n;
};

static void fuzz_mac(const struct vs_key *k, int agent, int host_dialed, const struct fuzz_piece *tr, int pieces,
                     uint8_t out[VS_MAC])
{
	const char *label = agent ? "vsock-shell v3 agent" : "vsock-shell v3 host";
	uint8_t m[64];
	size_t n = strlen(label) + 1;
	struct sha256 c;
	int i;
	memcpy(m, label, n);
	m[n] = host_dialed ? 'D' : 'L';
	sha256_init(&c);
	for (i = 0; i < pieces; i++)
		sha256_update(&c, tr[i].p, tr[i].n);
	sha256_final(&c, m + n + 1);
	vs_hmac(k->b, k->n, m, n + 1 + 32, out);
}

/* A HELLO text as PROTOCOL.md 3.1 has the receiver keep it: as sent, up
 * to its first NUL, cut to cap - 1 bytes (whoever shows it escapes it). */
static void fuzz_text(char *dst, size_t cap, const uint8_t *s, size_t n)
{
	size_t i;
	for (i = 0; i + 1 < cap && i < n && s[i]; i++)
		dst[i] = (char)s[i];
	dst[i] = 0;
}

/* What the models read in a HELLO's fields: the last nonce, the last CID
 * and the last PATH (as kept: fuzz_text), the guest the sender names. */
struct fuzz_seen {
	const uint8_t *nonce; /* NULL: none */
	int has_cid;
	uint32_t cid;
	char path[108];
};

/* Does a HELLO name another guest than our view of this connection: a
 * CID each, or a path each, that differ (PROTOCOL.md 3.3)?  A CID on one
 * side and a path on the other (a hybrid VMM) compare nothing. */
static int fuzz_link_differs(const struct fuzz_seen *ours, const struct fuzz_seen *theirs)
{
	return (ours->has_cid && theirs->has_cid && ours->cid != theirs->cid) ||
	       (*ours->path && *theirs->path && strcmp(ours->path, theirs->path));
}

/* HELLO fields as PROTOCOL.md has them: u16 tag, u16 length, bytes, each
 * inside the payload; a nonce exactly 32 bytes, a CID exactly 4 (u32).
 * What they say goes into *s (s may be NULL), which starts empty. */
static int fuzz_fields_ok(const uint8_t *p, size_t n, struct fuzz_seen *s)
{
	size_t off = 0;
	if (s)
		memset(s, 0, sizeof *s);
	while (off < n) {
		unsigned tag, len;
		if (n - off < 4)
			return 0;
		tag = vs_get16(p + off), len = vs_get16(p + off + 2);
		off += 4;
		if (len > n - off || (tag == VS_F_NONCE && len != VS_NONCE_LEN) || (tag == VS_F_CID && len != 4) ||
		    (tag == VS_F_BOOT && len != 12))
			return 0;
		if (s && tag == VS_F_NONCE)
			s->nonce = p + off;
		if (s && tag == VS_F_CID)
			s->has_cid = 1, s->cid = vs_get32(p + off);
		if (s && tag == VS_F_PATH)
			fuzz_text(s->path, sizeof s->path, p + off, len);
		off += len;
	}
	return 1;
}

/* A field as PROTOCOL.md 3.1 writes it, appended at b + *n: the models
 * build the HELLOs they expect with it. */
static void fuzz_field(uint8_t *b, size_t *n, unsigned tag, const void *v, size_t len)
{
	vs_put16(b + *n, (uint16_t)tag);
	vs_put16(b + *n + 2, (uint16_t)len);
	memcpy(b + *n + 4, v, len);
	*n += 4 + len;
}

/* The fixed part of a HELLO: u16 version, u16 flags, u32 caps, u64 token */
static size_t fuzz_hello_head(uint8_t *b, uint16_t flags, uint32_t caps, uint64_t token)
{
	vs_put16(b, FUZZ_VERSION);
	vs_put16(b + 2, flags);
	vs_put32(b + 4, caps);
	vs_put64(b + 8, token);
	return 16;
}

/* ---- a connection that reaches a Unix path ----
 * A socket listening at the relative name FUZZ_LINK, bound from a private
 * directory: its name, as getsockname shows it on the listener and on
 * what it accepts and getpeername to its peers, is then FUZZ_LINK in
 * every run, so that a seed can carry MACs over a HELLO that names it.
 * The directory goes when the process exits. */
#define FUZZ_LINK "vsfuzz.sock"
static char fuzz_link_dir[200], fuzz_link_at[sizeof ((struct sockaddr_un *)0)->sun_path];

static void fuzz_link_gone(void)
{
	unlink(fuzz_link_at);
	rmdir(fuzz_link_dir);
}

static int fuzz_link_listen(void)
{
	const char *t = getenv("TMPDIR");
	struct sockaddr_un a;
	int fd, here;
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	strcpy(a.sun_path, FUZZ_LINK);
	if (snprintf(fuzz_link_dir, sizeof fuzz_link_dir, "%s/vsfuzz.XXXXXX", t && *t ? t : "/tmp") >=
	        (int)sizeof fuzz_link_dir || !mkdtemp(fuzz_link_dir) ||
	    snprintf(fuzz_link_at, sizeof fuzz_link_at, "%s/" FUZZ_LINK, fuzz_link_dir) >= (int)sizeof fuzz_link_at)
		fuzz_fail("a private directory for " FUZZ_LINK " (TMPDIR too long?)", __FILE__, __LINE__);
	atexit(fuzz_link_gone);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	here = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0 && here >= 0 && chdir(fuzz_link_dir) == 0);
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
	CHECK(fchdir(here) == 0 && listen(fd, 16) == 0);
	close(here);
	return fd;
}

/* A connection through the listener: sv[0] the accepted end (which sees
 * FUZZ_LINK as its name), sv[1] the dialing end. */
static void fuzz_link_pair(int lfd, int sv[2])
{
	struct sockaddr_un a;
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	strcpy(a.sun_path, fuzz_link_at);
	sv[1] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(sv[1] >= 0 && connect(sv[1], (struct sockaddr *)&a, sizeof a) == 0);
	sv[0] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(sv[0] >= 0);
}

/* One frame of p[0..n) at *pos, as vs_recv reads it: 1 a frame (its
 * header in *h, its payload at *q, *pos past it), 0 clean EOF (nothing
 * left), -1 a bad header or a frame cut short (*pos unmoved). */
static int fuzz_frame_at(const uint8_t *p, size_t n, size_t *pos, struct vs_hdr *h, const uint8_t **q)
{
	size_t left = n - *pos;
	if (left == 0)
		return 0;
	if (vs_hdr_parse(p + *pos, left, h) != 1 || left - VS_HDR < h->len)
		return -1;
	*q = p + *pos + VS_HDR;
	*pos += VS_HDR + h->len;
	return 1;
}

/* A schedule's xorshift64 (13, 7, 17), seeded from 8 input bytes, big
 * endian; never 0, which xorshift would never leave. */
static uint64_t fuzz_seed64(const uint8_t *p)
{
	uint64_t s = 0;
	int i;
	for (i = 0; i < 8; i++)
		s = s << 8 | p[i];
	return s | 1;
}

static uint64_t fuzz_rnd64(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Read fd until EOF (or EAGAIN, for a non-blocking one) into b[cap]; the
 * count.  EINTR is retried: libFuzzer's -timeout is a SIGALRM every few
 * seconds, and it interrupts whatever the target waits in. */
static size_t fuzz_drain(int fd, uint8_t *b, size_t cap)
{
	size_t got = 0;
	for (;;) {
		ssize_t k = read(fd, b + got, cap - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0 || (got += (size_t)k) == cap)
			return got;
	}
}

/* ---- a mutator that knows frames ----
 * Most peers' input is a stream of frames behind a few bytes of target
 * options, and a byte inserted into a payload breaks its length field:
 * libFuzzer's own mutations then mostly make malformed headers.  A target
 * whose input is `prefix` bytes and then frames says so at file scope
 * with FUZZ_FRAMES_HOOKS(prefix), below, which defines libFuzzer's
 * LLVMFuzzerCustomMutator and LLVMFuzzerCustomCrossOver.  Then a
 * mutation is, by turns, libFuzzer's own on the whole input, its own on
 * one frame's payload with the length fixed up, a frame repeated,
 * dropped, moved or given another type; a crossover puts frames of one
 * input among those of another. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

#define FUZZ_NFR 256
struct fuzz_frames {
	size_t off[FUZZ_NFR + 1]; /* where frame i starts; off[n] is where the rest starts */
	size_t n;
};

/* Split b[prefix..n) into whole frames, as far as they are whole. */
static void fuzz_frames_split(const uint8_t *b, size_t n, size_t prefix, struct fuzz_frames *f)
{
	size_t pos = prefix < n ? prefix : n;
	f->n = 0;
	while (f->n < FUZZ_NFR && n - pos >= VS_HDR && vs_get32(b + pos) <= n - pos - VS_HDR) {
		f->off[f->n++] = pos;
		pos += VS_HDR + vs_get32(b + pos);
	}
	f->off[f->n] = pos;
}

static uint32_t fuzz_rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static size_t fuzz_frames_mutate(uint8_t *d, size_t n, size_t max, unsigned seed, size_t prefix)
{
	static uint8_t t[2 * (VS_HDR + VS_FRAME_MAX)], rest[1 << 18];
	struct fuzz_frames f;
	uint32_t s = seed | 1;
	size_t i, a, b, len, k;
	int how = (int)(fuzz_rnd(&s) % 10);
	fuzz_frames_split(d, n, prefix, &f);
	if (how < 3 || f.n == 0 || n > sizeof rest)
		return LLVMFuzzerMutate(d, n, max);
	i = fuzz_rnd(&s) % f.n;
	a = f.off[i], b = f.off[i + 1], len = b - a - VS_HDR;
	memcpy(rest, d + b, n - b); /* what follows frame i */
	switch (how) {
	case 3: case 4: case 5: case 6: /* its payload, mutated, its length fixed */
		k = max - (n - len) < VS_FRAME_MAX ? max - (n - len) : VS_FRAME_MAX;
		if (k > 2 * len + 64) /* grow a little at a time */
			k = 2 * len + 64;
		if (k < len || k == 0) /* (libFuzzer's mutation writes a byte even into no room) */
			return LLVMFuzzerMutate(d, n, max);
		memcpy(t, d + a + VS_HDR, len);
		k = LLVMFuzzerMutate(t, len, k);
		vs_put32(d + a, (uint32_t)k);
		memcpy(d + a + VS_HDR, t, k);
		memcpy(d + a + VS_HDR + k, rest, n - b);
		return n - len + k;
	case 7: /* repeated */
		if (n + (b - a) > max)
			return LLVMFuzzerMutate(d, n, max);
		memcpy(d + b, d + a, b - a);
		memcpy(d + b + (b - a), rest, n - b);
		return n + (b - a);
	case 8: /* dropped, or moved to the end */
		memcpy(t, d + a, b - a);
		memcpy(d + a, rest, n - b);
		if (fuzz_rnd(&s) & 1)
			return n - (b - a);
		memcpy(d + n - (b - a), t, b - a);
		return n;
	default: /* another type: one of the protocol's, or any */
		vs_put16(d + a + 4, (uint16_t)(fuzz_rnd(&s) & 1 ? 1 + fuzz_rnd(&s) % 39 : fuzz_rnd(&s)));
		return n;
	}
}

static size_t fuzz_frames_cross(const uint8_t *x, size_t xn, const uint8_t *y, size_t yn, uint8_t *out, size_t max,
                                unsigned seed, size_t prefix)
{
	struct fuzz_frames fx, fy;
	uint32_t s = seed | 1;
	size_t i, j, k, n, take;
	fuzz_frames_split(x, xn, prefix, &fx);
	fuzz_frames_split(y, yn, prefix, &fy);
	if (xn < prefix || fy.n == 0)
		return 0;
	i = fx.n ? fuzz_rnd(&s) % (fx.n + 1) : 0; /* before frame i of x */
	j = fuzz_rnd(&s) % fy.n;                  /* frames j..k of y */
	k = j + 1 + fuzz_rnd(&s) % (fy.n - j);
	take = fy.off[k] - fy.off[j];
	n = fx.off[i] + take + (xn - fx.off[i]);
	if (n > max)
		return 0;
	memcpy(out, x, fx.off[i]);
	memcpy(out + fx.off[i], y + fy.off[j], take);
	memcpy(out + fx.off[i] + take, x + fx.off[i], xn - fx.off[i]);
	return n;
}

/* The mutator and crossover above, for an input of `prefix` bytes of
 * options and then frames. */
#define FUZZ_FRAMES_HOOKS(prefix) \
	size_t LLVMFuzzerCustomMutator(uint8_t *d, size_t n, size_t max, unsigned seed) \
	{ \
		return fuzz_frames_mutate(d, n, max, seed, (prefix)); \
	} \
	size_t LLVMFuzzerCustomCrossOver(const uint8_t *a, size_t an, const uint8_t *b, size_t bn, uint8_t *out, \
	                                 size_t max, unsigned seed) \
	{ \
		return fuzz_frames_cross(a, an, b, bn, out, max, seed, (prefix)); \
	}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
