/*
 * transfer.h - the file transfer engine both programs share: a sender
 * that walks files and trees into STAT/DATA/HOLE/END frames, and a
 * receiver that writes them atomically (temporary file in the target's
 * directory, fsync, rename only once the content hash matches).  The
 * receiver never follows a symlink while walking its own tree, and in
 * strict mode (the host receiving from a guest) refuses names and link
 * targets that would leave the destination.
 *
 * No malloc and no printf here: the agent must stay small.
 */
#ifndef VS_TRANSFER_H
#define VS_TRANSFER_H

#include <stdint.h>
#include <sys/stat.h>
#include "protocol.h"
#include "sha256.h"

#define XF_RECURSIVE 0x1u
#define XF_PRESERVE 0x2u
#define XF_MKDIRS 0x4u

#define XF_XXH64 1
#define XF_SHA256 2

#define XF_FILE 1
#define XF_DIR 2
#define XF_SYMLINK 3
#define XF_DIREND 4

#define XF_UNKNOWN UINT64_MAX   /* size of a stream (stdin) */
#define XF_PATH_MAX 4096

struct xxh64 {
	uint64_t v[4], len;
	uint8_t buf[32];
	size_t nbuf;
};

struct xf_hash {
	int alg;
	struct xxh64 xx;
	struct sha256 sha;
};

struct xf {
	int sock;
	uint32_t flags;
	int alg;
	int strict;             /* receiver: trust nothing the sender names */
	int in, out;            /* sender reads `in` for "-"; receiver writes `out` for "-" */
	uint32_t code;          /* VS_E_* of the last failure */
	char err[600];
	int remote_err;         /* err came from the peer's ERROR frame */
	int lost;               /* the connection failed (not the transfer) */
	uint64_t bytes;         /* content bytes moved */
	unsigned files, skipped;
	void (*progress)(const char *name, uint64_t done, uint64_t size, int end);
	/* receiver */
	int rootfd;             /* directory the top entries go into */
	int into_dir;           /* the destination is a directory */
	int ntop;
	char topname[256];      /* local name of the current top entry */
	int tmpdir;             /* directory of the temporary file, or -1 */
	char tmp[256];          /* temporary file being written */
};

void xf_init(struct xf *x, int sock, uint32_t flags, int alg);
int xf_send(struct xf *x, const char *path);     /* one top entry */
int xf_done(struct xf *x);                       /* DONE, and the receiver's OK */
int xf_recv(struct xf *x, const char *dest);     /* until DONE */
void xf_abort(struct xf *x);                     /* remove a temporary file */
int xf_request(uint8_t *b, size_t cap, uint32_t flags, int alg, const char *path);
int xf_request_parse(const uint8_t *p, size_t n, uint32_t *flags, int *alg, const char **path);
void xf_hash_init(struct xf_hash *h, int alg);
void xf_hash_update(struct xf_hash *h, const void *p, size_t n);
size_t xf_hash_final(struct xf_hash *h, uint8_t out[32]);
void xf_hex(const uint8_t *d, size_t n, char *out);

#ifdef VS_IMPLEMENTATION

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ---- XXH64, from its public specification ---- */

#define XX_P1 0x9E3779B185EBCA87ULL
#define XX_P2 0xC2B2AE3D27D4EB4FULL
#define XX_P3 0x165667B19E3779F9ULL
#define XX_P4 0x85EBCA77C2B2AE63ULL
#define XX_P5 0x27D4EB2F165667C5ULL

/* The agent is built with -Os; the hot loop must not become calls. */
#define XX_INLINE static inline __attribute__((always_inline))
XX_INLINE uint64_t xx_rotl(uint64_t x, int r) { return x << r | x >> (64 - r); }
XX_INLINE uint64_t xx_rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}
XX_INLINE uint64_t xx_round(uint64_t acc, uint64_t in)
{
	acc += in * XX_P2;
	return xx_rotl(acc, 31) * XX_P1;
}
static uint64_t xx_merge(uint64_t acc, uint64_t v)
{
	acc ^= xx_round(0, v);
	return acc * XX_P1 + XX_P4;
}

static void xx_init(struct xxh64 *s)
{
	s->v[0] = XX_P1 + XX_P2;
	s->v[1] = XX_P2;
	s->v[2] = 0;
	s->v[3] = 0 - XX_P1;
	s->len = 0;
	s->nbuf = 0;
}

static const uint8_t *xx_stripes(struct xxh64 *s, const uint8_t *p, size_t n)
{
	uint64_t a = s->v[0], b = s->v[1], c = s->v[2], d = s->v[3];
	for (; n >= 32; n -= 32, p += 32) {
		a = xx_round(a, xx_rd64(p));
		b = xx_round(b, xx_rd64(p + 8));
		c = xx_round(c, xx_rd64(p + 16));
		d = xx_round(d, xx_rd64(p + 24));
	}
	s->v[0] = a, s->v[1] = b, s->v[2] = c, s->v[3] = d;
	return p;
}

static void xx_update(struct xxh64 *s, const uint8_t *p, size_t n)
{
	s->len += n;
	if (s->nbuf) {
		size_t k = 32 - s->nbuf < n ? 32 - s->nbuf : n;
		memcpy(s->buf + s->nbuf, p, k);
		s->nbuf += k, p += k, n -= k;
		if (s->nbuf < 32)
			return;
		xx_stripes(s, s->buf, 32);
		s->nbuf = 0;
	}
	p = xx_stripes(s, p, n & ~(size_t)31);
	n &= 31;
	memcpy(s->buf, p, n);
	s->nbuf = n;
}

static uint64_t xx_final(struct xxh64 *s)
{
	const uint8_t *p = s->buf, *e = s->buf + s->nbuf;
	uint64_t h;
	if (s->len >= 32) {
		h = xx_rotl(s->v[0], 1) + xx_rotl(s->v[1], 7) + xx_rotl(s->v[2], 12) + xx_rotl(s->v[3], 18);
		h = xx_merge(xx_merge(xx_merge(xx_merge(h, s->v[0]), s->v[1]), s->v[2]), s->v[3]);
	} else {
		h = XX_P5;
	}
	h += s->len;
	for (; p + 8 <= e; p += 8)
		h = xx_rotl(h ^ xx_round(0, xx_rd64(p)), 27) * XX_P1 + XX_P4;
	if (p + 4 <= e) {
		h = xx_rotl(h ^ (uint64_t)vs_get32(p) * XX_P1, 23) * XX_P2 + XX_P3;
		p += 4;
	}
	for (; p < e; p++)
		h = xx_rotl(h ^ *p * XX_P5, 11) * XX_P1;
	h ^= h >> 33;
	h *= XX_P2;
	h ^= h >> 29;
	h *= XX_P3;
	return h ^ h >> 32;
}

void xf_hash_init(struct xf_hash *h, int alg)
{
	h->alg = alg;
	if (alg == XF_SHA256)
		sha256_init(&h->sha);
	else
		xx_init(&h->xx);
}

void xf_hash_update(struct xf_hash *h, const void *p, size_t n)
{
	if (h->alg == XF_SHA256)
		sha256_update(&h->sha, p, n);
	else
		xx_update(&h->xx, p, n);
}

/* The digest in its usual printed byte order (xxh64: big-endian, as
 * xxhsum prints it).  Returns its length. */
size_t xf_hash_final(struct xf_hash *h, uint8_t out[32])
{
	uint64_t v;
	int i;
	if (h->alg == XF_SHA256) {
		sha256_final(&h->sha, out);
		return 32;
	}
	v = xx_final(&h->xx);
	for (i = 0; i < 8; i++)
		out[i] = (uint8_t)(v >> (56 - 8 * i));
	return 8;
}

void xf_hex(const uint8_t *d, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";
	size_t i;
	for (i = 0; i < n; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[2 * n] = 0;
}

/* ---- small helpers ---- */

#define XF_BATCH (4 * VS_FRAME_MAX)
static uint8_t xf_buf[XF_BATCH];                   /* outgoing DATA: one read, 4 frames */
/* Incoming frames are read in bulk, several per read(): one syscall per
 * 64 KiB chunk instead of two (header, then payload).  xf_p points at the
 * payload of the last frame read, valid until the next xf_read. */
static uint8_t xf_in[4 * (VS_HDR + VS_FRAME_MAX)];
static size_t xf_ioff, xf_ilen;
static const uint8_t *xf_p;
static uint8_t xf_ent[VS_FRAME_MAX];               /* the current STAT */
static uint8_t xf_zero[VS_FRAME_MAX]; /* not const: .bss, not 64 KiB of .rodata */

static uint32_t xf_code(int e)
{
	switch (e) {
	case ENOENT: return VS_E_NOENT;
	case EACCES: case EPERM: case EROFS: return VS_E_ACCES;
	case EISDIR: return VS_E_ISDIR;
	case ENOSPC: case EDQUOT: case EFBIG: return VS_E_NOSPC;
	case ENAMETOOLONG: return VS_E_NAMETOOLONG;
	case EEXIST: return VS_E_EXIST;
	case ENOTDIR: return VS_E_NOTDIR;
	}
	return VS_E_IO;
}

/* err = a b c, truncated to fit */
static int xf_fail(struct xf *x, uint32_t code, const char *a, const char *b, const char *c)
{
	const char *s[3] = { a, b, c };
	size_t n = 0;
	int i;
	for (i = 0; i < 3; i++)
		while (s[i] && *s[i] && n < sizeof x->err - 1)
			x->err[n++] = *s[i]++;
	x->err[n] = 0;
	x->code = code;
	x->remote_err = 0;
	return -1;
}

static int xf_fail_sys(struct xf *x, const char *path, const char *what)
{
	int e = errno;
	if (what)
		return xf_fail(x, xf_code(e), what, path, strerror(e));
	return xf_fail(x, xf_code(e), path, ": ", strerror(e));
}

static int xf_send_frame(struct xf *x, uint16_t type, const void *p, size_t n)
{
	if (vs_send(x->sock, type, p, n) < 0) {
		xf_fail(x, VS_E_IO, "connection lost: ", strerror(errno), NULL);
		x->lost = 1;
		return -1;
	}
	return 0;
}

/* Tell the peer why we stop.  Best effort: it may be gone already. */
static void xf_send_error(struct xf *x)
{
	vs_send_error(x->sock, x->code, x->err);
}

/* The length of the next frame if it is a complete DATA frame already in
 * the buffer, else 0. */
static size_t xf_next_data(void)
{
	struct vs_hdr h;
	if (vs_hdr_parse(xf_in + xf_ioff, xf_ilen - xf_ioff, &h) != 1 || h.type != VS_DATA ||
	    xf_ilen - xf_ioff < VS_HDR + h.len)
		return 0;
	return h.len;
}

/* Read one frame; its payload is at xf_p.  ERROR frames become x->err. */
static int xf_read(struct xf *x, struct vs_hdr *h)
{
	int r, n;
	for (;;) {
		ssize_t k;
		r = vs_hdr_parse(xf_in + xf_ioff, xf_ilen - xf_ioff, h);
		if (r < 0) {
			x->lost = 1;
			return xf_fail(x, VS_E_PROTO, "protocol error: malformed frame during the transfer", NULL, NULL);
		}
		if (r == 1 && xf_ilen - xf_ioff >= VS_HDR + h->len)
			break;
		if (xf_ioff == xf_ilen) {
			xf_ioff = xf_ilen = 0;
		} else if (xf_ioff && sizeof xf_in - xf_ioff < VS_HDR + VS_FRAME_MAX) {
			memmove(xf_in, xf_in + xf_ioff, xf_ilen - xf_ioff);
			xf_ilen -= xf_ioff;
			xf_ioff = 0;
		}
		k = read(x->sock, xf_in + xf_ilen, sizeof xf_in - xf_ilen);
		if (k > 0) {
			xf_ilen += (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		x->lost = 1;
		if (k == 0 && xf_ioff == xf_ilen)
			return xf_fail(x, VS_E_IO, "connection closed by the peer during the transfer", NULL, NULL);
		if (k == 0)
			return xf_fail(x, VS_E_PROTO, "connection closed inside a frame during the transfer", NULL, NULL);
		return xf_fail(x, VS_E_IO, "connection lost: ", strerror(errno), NULL);
	}
	xf_p = xf_in + xf_ioff + VS_HDR;
	xf_ioff += VS_HDR + h->len;
	n = (int)h->len;
	if (h->type == VS_ERROR) {
		vs_text_clean(x->err, sizeof x->err, xf_p + 4, n >= 4 ? (size_t)n - 4 : 0);
		x->code = n >= 4 ? vs_get32(xf_p) : VS_E_IO;
		x->remote_err = 1;
		return -1;
	}
	return n;
}

static int xf_wait_ok(struct xf *x)
{
	struct vs_hdr h;
	if (xf_read(x, &h) < 0)
		return -1;
	if (h.type != VS_OK)
		return xf_fail(x, VS_E_PROTO, "protocol error: expected OK during the transfer", NULL, NULL);
	return 0;
}

/* The receiver may report a failure (disk full) while we stream: look
 * without blocking, once per chunk. */
static int xf_peer_spoke(struct xf *x)
{
	struct pollfd p = { x->sock, POLLIN, 0 };
	struct vs_hdr h;
	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (xf_read(x, &h) >= 0)
		xf_fail(x, VS_E_PROTO, "protocol error: unexpected message during the transfer", NULL, NULL);
	return -1;
}

int xf_request(uint8_t *b, size_t cap, uint32_t flags, int alg, const char *path)
{
	struct vs_wr w = { b, 0, cap, 0 };
	vs_wr32(&w, flags);
	vs_wr32(&w, (uint32_t)alg);
	vs_wrstr(&w, path);
	return w.err ? -1 : (int)w.n;
}

int xf_request_parse(const uint8_t *p, size_t n, uint32_t *flags, int *alg, const char **path)
{
	struct vs_rd r = { p, n, 0 };
	*flags = vs_rd32(&r);
	*alg = (int)vs_rd32(&r);
	*path = vs_rdstr(&r);
	if (r.err || r.n || !**path || (*alg != XF_XXH64 && *alg != XF_SHA256))
		return -1;
	return 0;
}

void xf_init(struct xf *x, int sock, uint32_t flags, int alg)
{
	memset(x, 0, sizeof *x);
	x->sock = sock;
	x->flags = flags;
	x->alg = alg;
	x->in = 0;
	x->out = 1;
	x->rootfd = -1;
	x->tmpdir = -1;
}

/* ---- sender ---- */

/* STAT: u8 kind, u8 0, u16 0, u32 mode, u64 size, u64 mtime_sec,
 * u32 mtime_nsec, u32 uid, u32 gid, str path, str link target */
static int xf_stat(struct xf *x, int kind, const struct stat *st, uint64_t size, const char *rel, const char *link)
{
	uint8_t b[48 + XF_PATH_MAX * 2];
	struct vs_wr w = { b, 0, sizeof b, 0 };
	vs_wr32(&w, (uint32_t)kind);
	vs_wr32(&w, st->st_mode & 07777);
	vs_wr64(&w, size);
	vs_wr64(&w, (uint64_t)st->st_mtim.tv_sec);
	vs_wr32(&w, (uint32_t)st->st_mtim.tv_nsec);
	vs_wr32(&w, st->st_uid);
	vs_wr32(&w, st->st_gid);
	vs_wrstr(&w, rel);
	vs_wrstr(&w, link ? link : "");
	if (w.err)
		return xf_fail(x, VS_E_NAMETOOLONG, rel, ": path too long", NULL);
	return xf_send_frame(x, VS_STAT, b, w.n);
}

/* xf_buf[0..n) as DATA frames of at most 64 KiB, in one writev. */
static int xf_send_data(struct xf *x, size_t n)
{
	static uint8_t hdr[XF_BATCH / VS_FRAME_MAX][VS_HDR];
	struct iovec iov[2 * (XF_BATCH / VS_FRAME_MAX)], *v = iov;
	size_t off, k;
	int cnt = 0;
	for (off = 0; off < n; off += k) {
		k = n - off < VS_FRAME_MAX ? n - off : VS_FRAME_MAX;
		vs_hdr_put(hdr[cnt / 2], VS_DATA, (uint32_t)k);
		iov[cnt] = (struct iovec){ hdr[cnt / 2], VS_HDR };
		iov[cnt + 1] = (struct iovec){ xf_buf + off, k };
		cnt += 2;
	}
	if (vs_writevall(x->sock, v, cnt) < 0) {
		x->lost = 1;
		return xf_fail(x, VS_E_IO, "connection lost: ", strerror(errno), NULL);
	}
	return 0;
}

/* Stream fd's content: DATA for data, HOLE for the holes of a sparse
 * file, then END with the hash.  size XF_UNKNOWN reads to EOF. */
static int xf_stream(struct xf *x, int fd, const char *rel, uint64_t size, int sparse)
{
	struct xf_hash hs;
	uint8_t end[48], d[32];
	uint64_t off = 0, data_end = sparse ? 0 : size;
	size_t dn;
	xf_hash_init(&hs, x->alg);
	while (size == XF_UNKNOWN || off < size) {
		ssize_t r;
		size_t want;
		if (sparse && off >= data_end) {
			off_t dpos = lseek(fd, (off_t)off, SEEK_DATA), hpos;
			uint64_t next = dpos < 0 ? size : (uint64_t)dpos;
			if (next > size)
				next = size;
			if (next > off) {
				uint64_t hole = next - off, k;
				uint8_t hb[8];
				vs_put64(hb, hole);
				if (xf_send_frame(x, VS_HOLE, hb, 8) < 0)
					return -1;
				for (k = 0; k < hole; k += VS_FRAME_MAX)
					xf_hash_update(&hs, xf_zero, hole - k < VS_FRAME_MAX ? (size_t)(hole - k) : VS_FRAME_MAX);
				off = next;
				x->bytes += hole;
				if (off >= size)
					break;
			}
			hpos = lseek(fd, (off_t)off, SEEK_HOLE);
			data_end = hpos < 0 || (uint64_t)hpos > size ? size : (uint64_t)hpos;
		}
		want = XF_BATCH;
		if (size != XF_UNKNOWN && data_end - off < want)
			want = (size_t)(data_end - off);
		r = size == XF_UNKNOWN ? read(fd, xf_buf, want) : pread(fd, xf_buf, want, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return xf_fail_sys(x, rel, NULL);
		if (r == 0) {
			if (size == XF_UNKNOWN)
				break;
			return xf_fail(x, VS_E_CHANGED, rel, ": file changed while being read (it shrank)", NULL);
		}
		xf_hash_update(&hs, xf_buf, (size_t)r);
		if (xf_send_data(x, (size_t)r) < 0)
			return -1;
		off += (uint64_t)r;
		x->bytes += (uint64_t)r;
		if (x->progress)
			x->progress(rel, off, size, 0);
		if (xf_peer_spoke(x) < 0)
			return -1;
	}
	if (size != XF_UNKNOWN) {
		struct stat st;
		char c;
		if (pread(fd, &c, 1, (off_t)size) > 0 || (fstat(fd, &st) == 0 && (uint64_t)st.st_size != size))
			return xf_fail(x, VS_E_CHANGED, rel, ": file changed while being read (its size changed)", NULL);
	}
	dn = xf_hash_final(&hs, d);
	vs_put32(end, (uint32_t)x->alg);
	vs_put32(end + 4, 0);
	vs_put64(end + 8, off);
	memcpy(end + 16, d, dn);
	if (xf_send_frame(x, VS_END, end, 16 + dn) < 0)
		return -1;
	if (x->progress)
		x->progress(rel, off, off, 1);
	x->files++;
	return xf_wait_ok(x);
}

static int xf_send_file(struct xf *x, int fd, const struct stat *st, const char *rel)
{
	int sparse = S_ISREG(st->st_mode) && (uint64_t)st->st_blocks * 512 < (uint64_t)st->st_size;
	uint64_t size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : XF_UNKNOWN;
	if (xf_stat(x, XF_FILE, st, size, rel, NULL) < 0 || xf_wait_ok(x) < 0)
		return -1;
	return xf_stream(x, fd, rel, size, sparse);
}

/* Walk one entry; rel holds its relative path (len bytes used). */
static int xf_walk(struct xf *x, int dirfd, const char *name, char *rel, size_t len, int top)
{
	struct stat st;
	int r = -1;
	if (fstatat(dirfd, name, &st, top ? 0 : AT_SYMLINK_NOFOLLOW) < 0)
		return xf_fail_sys(x, top ? name : rel, NULL);
	if (S_ISREG(st.st_mode) || (top && S_ISFIFO(st.st_mode))) {
		int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | (top ? 0 : O_NOFOLLOW));
		if (fd < 0)
			return xf_fail_sys(x, top ? name : rel, NULL);
		r = xf_send_file(x, fd, &st, rel);
		close(fd);
		return r;
	}
	if (S_ISLNK(st.st_mode)) {
		char t[XF_PATH_MAX];
		ssize_t n = readlinkat(dirfd, name, t, sizeof t - 1);
		if (n < 0)
			return xf_fail_sys(x, rel, NULL);
		t[n] = 0;
		if (xf_stat(x, XF_SYMLINK, &st, 0, rel, t) < 0)
			return -1;
		return xf_wait_ok(x);
	}
	if (S_ISDIR(st.st_mode)) {
		char d[4096];
		long n;
		int fd;
		if (!(x->flags & XF_RECURSIVE))
			return xf_fail(x, VS_E_ISDIR, top ? name : rel, ": Is a directory (use -r)", NULL);
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (top ? 0 : O_NOFOLLOW));
		if (fd < 0)
			return xf_fail_sys(x, top ? name : rel, NULL);
		if (xf_stat(x, XF_DIR, &st, 0, rel, NULL) < 0 || xf_wait_ok(x) < 0)
			goto out;
		/* getdents64 directly: opendir would bring malloc into the agent */
		while ((n = syscall(SYS_getdents64, fd, d, sizeof d)) > 0) {
			long off = 0;
			while (off < n) {
				const char *e = d + off + 19;
				size_t el = strlen(e);
				off += *(unsigned short *)(d + off + 16);
				if (!strcmp(e, ".") || !strcmp(e, ".."))
					continue;
				if (len + 1 + el >= XF_PATH_MAX) {
					xf_fail(x, VS_E_NAMETOOLONG, rel, "/...: path too long", NULL);
					goto out;
				}
				rel[len] = '/';
				memcpy(rel + len + 1, e, el + 1);
				r = xf_walk(x, fd, e, rel, len + 1 + el, 0);
				rel[len] = 0;
				if (r < 0)
					goto out;
			}
		}
		r = -1;
		if (n < 0) {
			xf_fail_sys(x, rel, NULL);
			goto out;
		}
		if (xf_stat(x, XF_DIREND, &st, 0, rel, NULL) == 0)
			r = xf_wait_ok(x);
	out:
		close(fd);
		return r;
	}
	if (top)
		return xf_fail(x, VS_E_IO, name, ": not a regular file, directory or symlink", NULL);
	x->skipped++; /* devices, sockets, fifos inside a tree */
	return 0;
}

/* Send one top entry: a file, a tree with -r, or "-" (our stdin). */
int xf_send(struct xf *x, const char *path)
{
	static char rel[XF_PATH_MAX];
	const char *base;
	size_t len;
	int r;
	if (!strcmp(path, "-")) {
		struct stat st;
		if (fstat(x->in, &st) < 0)
			return xf_fail_sys(x, "stdin", NULL);
		st.st_mode = (st.st_mode & ~07777u) | 0644;
		if (!S_ISREG(st.st_mode))
			st.st_mtim.tv_sec = time(NULL);
		r = xf_send_file(x, x->in, &st, "-");
		goto sent;
	}
	/* the top entry's name as the receiver will see it: its last
	 * component (trailing slashes do not count) */
	len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	if (len >= XF_PATH_MAX)
		return xf_fail(x, VS_E_NAMETOOLONG, path, ": path too long", NULL);
	memcpy(rel, path, len);
	rel[len] = 0;
	base = strrchr(rel, '/');
	base = base && base[1] ? base + 1 : rel;
	if (!strcmp(base, "/") || !strcmp(base, ".") || !strcmp(base, ".."))
		base = "root";
	{
		char top[XF_PATH_MAX];
		memcpy(top, rel, len + 1);
		len = strlen(base);
		memmove(rel, base, len + 1);
		r = xf_walk(x, AT_FDCWD, top, rel, len, 1);
	}
sent:
	if (r < 0 && !x->remote_err)
		xf_send_error(x); /* the receiver drops what it has */
	return r;
}

int xf_done(struct xf *x)
{
	if (xf_send_frame(x, VS_DONE, NULL, 0) < 0)
		return -1;
	return xf_wait_ok(x);
}

/* ---- receiver ---- */

/* A relative path whose every component is a plain name. */
static int xf_path_ok(const char *p)
{
	size_t n = strlen(p);
	const char *c = p;
	if (!n || n >= XF_PATH_MAX || *p == '/')
		return 0;
	while (*c) {
		const char *e = strchr(c, '/');
		size_t k = e ? (size_t)(e - c) : strlen(c);
		if (k == 0 || k > 255 || (k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c += k;
		if (*c)
			c++;
		if (e && !*c)
			return 0; /* trailing slash */
	}
	return 1;
}

/* A symlink at depth `depth` below the root whose target stays inside. */
static int xf_link_ok(const char *t, int depth)
{
	const char *c = t;
	if (!*t || *t == '/')
		return 0;
	while (*c) {
		const char *e = strchr(c, '/');
		size_t k = e ? (size_t)(e - c) : strlen(c);
		if (k == 2 && c[0] == '.' && c[1] == '.')
			depth--;
		else if (k && !(k == 1 && c[0] == '.'))
			depth++;
		if (depth < 0)
			return 0;
		c += k;
		if (*c)
			c++;
	}
	return 1;
}

void xf_abort(struct xf *x)
{
	if (x->tmpdir >= 0 && x->tmp[0])
		unlinkat(x->tmpdir, x->tmp, 0);
	x->tmp[0] = 0;
}

/* mkdir -p, for --mkdir */
static int xf_mkdirs(char *p)
{
	char *s = p;
	while ((s = strchr(s + 1, '/'))) {
		*s = 0;
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			*s = '/';
			return -1;
		}
		*s = '/';
	}
	return mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* Decide where top entries go: into dest if it is a directory, else as
 * dest itself (in dest's parent). */
static int xf_root(struct xf *x, const char *dest, int kind)
{
	static char d[XF_PATH_MAX];
	struct stat st;
	size_t n = strlen(dest);
	int slash = n > 1 && dest[n - 1] == '/';
	char *base;
	if (n >= sizeof d)
		return xf_fail(x, VS_E_NAMETOOLONG, dest, ": path too long", NULL);
	memcpy(d, dest, n + 1);
	(void)kind;
	if (stat(d, &st) < 0 && errno == ENOENT && (x->flags & XF_MKDIRS)) {
		/* dest/ is a directory to create; dest needs its parents */
		char *s = slash ? NULL : strrchr(d, '/');
		if (s && s != d)
			*s = 0;
		if ((slash || (s && s != d)) && xf_mkdirs(d) < 0)
			return xf_fail_sys(x, d, "unable to create ");
		if (s && s != d)
			*s = '/';
	}
	if (stat(d, &st) == 0 && S_ISDIR(st.st_mode)) {
		x->into_dir = 1;
		x->rootfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return x->rootfd < 0 ? xf_fail_sys(x, dest, NULL) : 0;
	}
	if (slash) {
		errno = stat(d, &st) == 0 ? ENOTDIR : ENOENT;
		return xf_fail_sys(x, dest, NULL);
	}
	while (n > 1 && d[n - 1] == '/')
		d[--n] = 0;
	base = strrchr(d, '/');
	if (base) {
		*base++ = 0;
		x->rootfd = open(*d ? d : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else {
		base = d;
		x->rootfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (x->rootfd < 0)
		return xf_fail_sys(x, *d && base != d ? d : ".", NULL);
	if (strlen(base) > 255)
		return xf_fail(x, VS_E_NAMETOOLONG, dest, ": File name too long", NULL);
	memcpy(x->topname, base, strlen(base) + 1);
	return 0;
}

/* Open the directory that holds rel's last component, never following a
 * symlink on the way.  *last points at that component. */
static int xf_parent(struct xf *x, const char *rel, const char **last)
{
	char comp[256];
	const char *c = strchr(rel, '/');
	int fd = dup(x->rootfd);
	if (fd < 0)
		return xf_fail_sys(x, rel, NULL);
	if (!c) {
		*last = x->topname;
		return fd;
	}
	/* the first component is the top entry, under its local name */
	c++;
	{
		int nfd = openat(fd, x->topname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (nfd < 0)
			return xf_fail_sys(x, rel, NULL);
		fd = nfd;
	}
	for (;;) {
		const char *e = strchr(c, '/');
		int nfd;
		if (!e) {
			*last = c;
			return fd;
		}
		memcpy(comp, c, (size_t)(e - c));
		comp[e - c] = 0;
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (nfd < 0)
			return xf_fail_sys(x, rel, NULL);
		fd = nfd;
		c = e + 1;
	}
}

static void xf_tmpname(struct xf *x, const char *name)
{
	static unsigned seq;
	char pid[24], *p = x->tmp;
	size_t k = strlen(name);
	unsigned long v = (unsigned long)getpid() * 1000u + ++seq;
	int i = 0;
	if (k > 200)
		k = 200;
	*p++ = '.';
	memcpy(p, name, k);
	p += k;
	memcpy(p, ".vsh-", 5);
	p += 5;
	do pid[i++] = (char)('0' + v % 10); while ((v /= 10));
	while (i)
		*p++ = pid[--i];
	*p = 0;
}

struct xf_entry {
	int kind;
	uint32_t mode, mns, uid, gid;
	uint64_t size, msec;
	const char *path, *link;
};

static int xf_entry_parse(const uint8_t *p, size_t n, struct xf_entry *e)
{
	struct vs_rd r = { p, n, 0 };
	e->kind = (int)vs_rd32(&r);
	e->mode = vs_rd32(&r) & 07777;
	e->size = vs_rd64(&r);
	e->msec = vs_rd64(&r);
	e->mns = vs_rd32(&r);
	e->uid = vs_rd32(&r);
	e->gid = vs_rd32(&r);
	e->path = vs_rdstr(&r);
	e->link = vs_rdstr(&r);
	return r.err || r.n || e->kind < XF_FILE || e->kind > XF_DIREND || e->mns >= 1000000000u ? -1 : 0;
}

static void xf_meta(struct xf *x, int dirfd, const char *name, int fd, const struct xf_entry *e)
{
	struct timespec ts[2];
	ts[0].tv_sec = ts[1].tv_sec = (time_t)e->msec;
	ts[0].tv_nsec = ts[1].tv_nsec = (long)e->mns;
	if ((x->flags & XF_PRESERVE) && geteuid() == 0) {
		if (fd >= 0)
			(void)!fchown(fd, e->uid, e->gid);
		else
			(void)!fchownat(dirfd, name, e->uid, e->gid, AT_SYMLINK_NOFOLLOW);
	}
	if (e->kind != XF_SYMLINK) {
		if (fd >= 0)
			(void)!fchmod(fd, e->mode);
		else
			(void)!fchmodat(dirfd, name, e->mode, 0);
	}
	if (x->flags & XF_PRESERVE) {
		if (fd >= 0)
			futimens(fd, ts);
		else
			utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);
	}
}

/* Receive one file's frames into fd until END; check length and hash. */
static int xf_content(struct xf *x, int fd, const struct xf_entry *e)
{
	struct xf_hash hs;
	uint8_t d[32];
	char hd[65], hs_[65];
	uint64_t got = 0;
	size_t dn;
	int failed = 0, endlen = 0;
	char saved[sizeof x->err];
	uint32_t scode = 0;
	xf_hash_init(&hs, x->alg);
	for (;;) {
		struct vs_hdr h;
		int n = xf_read(x, &h);
		if (n < 0) {
			if (failed) { /* the sender gave up on our error: keep ours */
				memcpy(x->err, saved, sizeof saved);
				x->code = scode;
				x->remote_err = 0;
				x->lost = 0;
			}
			return -1;
		}
		if (h.type == VS_DATA || h.type == VS_HOLE) {
			uint64_t k = h.type == VS_DATA ? (uint64_t)n : n == 8 ? vs_get64(xf_p) : UINT64_MAX;
			if (k == UINT64_MAX || (e->size != XF_UNKNOWN && k > e->size - got))
				return xf_fail(x, VS_E_PROTO, e->path, ": more data than the announced size", NULL);
			if (failed)
				continue; /* drain until END after a local failure */
			if (h.type == VS_DATA) {
				/* with the DATA frames already buffered behind this one,
				 * in one writev */
				struct iovec iov[8];
				int ni = 1;
				size_t more;
				iov[0] = (struct iovec){ (void *)xf_p, (size_t)n };
				xf_hash_update(&hs, xf_p, (size_t)n);
				while (ni < 8 && (more = xf_next_data()) > 0 &&
				       (e->size == XF_UNKNOWN || more <= e->size - got - k)) {
					const uint8_t *dp = xf_in + xf_ioff + VS_HDR;
					xf_hash_update(&hs, dp, more);
					iov[ni++] = (struct iovec){ (void *)dp, more };
					xf_ioff += VS_HDR + more;
					k += more;
				}
				if (vs_writevall(fd, iov, ni) < 0) {
					xf_fail_sys(x, e->path, NULL);
					xf_send_error(x);
					memcpy(saved, x->err, sizeof saved);
					scode = x->code;
					failed = 1;
				}
			} else {
				uint64_t i;
				for (i = 0; i < k; i += VS_FRAME_MAX)
					xf_hash_update(&hs, xf_zero, k - i < VS_FRAME_MAX ? (size_t)(k - i) : VS_FRAME_MAX);
				if (lseek(fd, (off_t)k, SEEK_CUR) < 0) {
					/* not seekable (stdout): write the zeros */
					for (i = 0; i < k && !failed; i += VS_FRAME_MAX)
						if (vs_writeall(fd, xf_zero, k - i < VS_FRAME_MAX ? (size_t)(k - i) : VS_FRAME_MAX) < 0)
							failed = 1;
					if (failed) {
						xf_fail_sys(x, e->path, NULL);
						xf_send_error(x);
						memcpy(saved, x->err, sizeof saved);
						scode = x->code;
					}
				}
			}
			got += k;
			x->bytes += k;
			if (x->progress)
				x->progress(e->path, got, e->size, 0);
			continue;
		}
		if (h.type != VS_END || n < 16 || n > 48)
			return xf_fail(x, VS_E_PROTO, "protocol error: unexpected message in a file's content", NULL, NULL);
		if (failed)
			return -1;
		endlen = n;
		break;
	}
	dn = xf_hash_final(&hs, d);
	if (vs_get32(xf_p) != (uint32_t)x->alg || (size_t)endlen != 16 + dn ||
	    vs_get64(xf_p + 8) != got || (e->size != XF_UNKNOWN && got != e->size))
		return xf_fail(x, VS_E_PROTO, e->path, ": length or hash algorithm differs from what was announced", NULL);
	if (memcmp(xf_p + 16, d, dn)) {
		xf_hex(xf_p + 16, dn, hd);
		xf_hex(d, dn, hs_);
		xf_fail(x, VS_E_HASH, e->path, ": content hash mismatch: sent ", hd);
		strncat(x->err, ", received ", sizeof x->err - strlen(x->err) - 1);
		strncat(x->err, hs_, sizeof x->err - strlen(x->err) - 1);
		return -1;
	}
	/* a trailing hole must still count in the size */
	if (ftruncate(fd, (off_t)got) < 0 && errno != EINVAL)
		return xf_fail_sys(x, e->path, NULL);
	if (x->progress)
		x->progress(e->path, got, got, 1);
	x->files++;
	return 0;
}

static int xf_recv_file(struct xf *x, int dirfd, const char *name, const struct xf_entry *e)
{
	struct stat st;
	int fd;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		return xf_fail_sys(x, e->path, NULL);
	}
	xf_tmpname(x, name);
	fd = openat(dirfd, x->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		x->tmp[0] = 0;
		return xf_fail_sys(x, e->path, NULL);
	}
	x->tmpdir = dirfd;
	if (xf_send_frame(x, VS_OK, NULL, 0) < 0 || xf_content(x, fd, e) < 0)
		goto fail;
	xf_meta(x, dirfd, name, fd, e);
	if (fsync(fd) < 0) {
		xf_fail_sys(x, e->path, NULL);
		goto fail;
	}
	close(fd);
	fd = -1;
	if (renameat(dirfd, x->tmp, dirfd, name) < 0) {
		xf_fail_sys(x, e->path, NULL);
		goto fail;
	}
	x->tmp[0] = 0;
	fsync(dirfd);
	return xf_send_frame(x, VS_OK, NULL, 0);
fail:
	if (fd >= 0)
		close(fd);
	xf_abort(x);
	return -1;
}

static int xf_entry(struct xf *x, const char *dest, struct xf_entry *e)
{
	const char *name = NULL;
	char nm[256];
	int dirfd, r = 0, depth = 0;
	const char *c;
	if (!xf_path_ok(e->path))
		return xf_fail(x, VS_E_PROTO, "refusing an unsafe name from the sender: ", e->path, NULL);
	for (c = e->path; *c; c++)
		depth += *c == '/';
	if (!depth && e->kind != XF_DIREND) {
		/* a new top entry */
		if (x->rootfd < 0 && xf_root(x, dest, e->kind) < 0)
			return -1;
		if (x->into_dir)
			memcpy(x->topname, e->path, strlen(e->path) + 1);
		else if (x->ntop)
			return xf_fail(x, VS_E_NOTDIR, dest, ": not a directory (several sources)", NULL);
		x->ntop++;
	}
	if (x->rootfd < 0)
		return xf_fail(x, VS_E_PROTO, "protocol error: entry before its top directory", NULL, NULL);
	/* depth - 1: the link's own directory counted from the top entry, so
	 * that no '..' may climb above the tree */
	if (e->kind == XF_SYMLINK && x->strict && !xf_link_ok(e->link, depth - 1))
		return xf_fail(x, VS_E_PROTO, "refusing a symlink that leaves the destination: ", e->path, NULL);
	dirfd = xf_parent(x, e->path, &name);
	if (dirfd < 0)
		return -1;
	/* the top's local name changes with the next top entry */
	memcpy(nm, name, strlen(name) + 1);
	name = nm;
	switch (e->kind) {
	case XF_FILE:
		r = xf_recv_file(x, dirfd, name, e);
		break;
	case XF_DIR:
		if (mkdirat(dirfd, name, 0700) < 0) {
			struct stat st;
			if (errno != EEXIST || fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode)) {
				if (errno == EEXIST)
					errno = ENOTDIR;
				r = xf_fail_sys(x, e->path, NULL);
				break;
			}
		}
		r = xf_send_frame(x, VS_OK, NULL, 0);
		break;
	case XF_DIREND:
		xf_meta(x, dirfd, name, -1, e);
		r = xf_send_frame(x, VS_OK, NULL, 0);
		break;
	case XF_SYMLINK:
		xf_tmpname(x, name);
		if (symlinkat(e->link, dirfd, x->tmp) < 0) {
			x->tmp[0] = 0;
			r = xf_fail_sys(x, e->path, NULL);
			break;
		}
		x->tmpdir = dirfd;
		xf_meta(x, dirfd, x->tmp, -1, e);
		if (renameat(dirfd, x->tmp, dirfd, name) < 0) {
			r = xf_fail_sys(x, e->path, NULL);
			xf_abort(x);
			break;
		}
		x->tmp[0] = 0;
		r = xf_send_frame(x, VS_OK, NULL, 0);
		break;
	}
	x->tmpdir = -1;
	close(dirfd);
	return r;
}

/* "-" as destination: one file's content to x->out, still verified. */
static int xf_recv_stdout(struct xf *x, struct xf_entry *e)
{
	if (e->kind != XF_FILE || x->ntop++)
		return xf_fail(x, VS_E_ISDIR, "-", ": only a single file can go to stdout", NULL);
	if (xf_send_frame(x, VS_OK, NULL, 0) < 0 || xf_content(x, x->out, e) < 0)
		return -1;
	return xf_send_frame(x, VS_OK, NULL, 0);
}

int xf_recv(struct xf *x, const char *dest)
{
	for (;;) {
		struct vs_hdr h;
		struct xf_entry e;
		int n = xf_read(x, &h), r;
		if (n < 0)
			break;
		if (h.type == VS_DONE) {
			if (x->rootfd >= 0)
				close(x->rootfd);
			x->rootfd = -1;
			return xf_send_frame(x, VS_OK, NULL, 0);
		}
		/* the entry's strings must outlive the content frames */
		if (h.type == VS_STAT)
			memcpy(xf_ent, xf_p, (size_t)n);
		if (h.type != VS_STAT || xf_entry_parse(xf_ent, (size_t)n, &e) < 0) {
			xf_fail(x, VS_E_PROTO, "protocol error: expected an entry from the sender", NULL, NULL);
			break;
		}
		r = strcmp(dest, "-") ? xf_entry(x, dest, &e) : xf_recv_stdout(x, &e);
		if (r < 0)
			break;
	}
	if (!x->remote_err)
		xf_send_error(x);
	xf_abort(x);
	return -1;
}

#endif /* VS_IMPLEMENTATION */
#endif /* VS_TRANSFER_H */
