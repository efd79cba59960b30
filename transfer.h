/*
 * transfer.h - the file transfer engine both programs share: a sender
 * that walks files and trees into STAT/DATA/HOLE/END frames, and a
 * receiver that writes them atomically (an unnamed temporary file in the
 * target's directory, fsync, linked into place only once the content
 * hash matched).
 *
 * The receiver is safe against a hostile sender by construction, not by
 * predicting where a name leads: it keeps a stack of open directory
 * descriptors (the destination's directory at the bottom, then each DIR
 * as it arrives), takes entries only in the sender's depth-first order
 * (an entry's parent must be the directory on top of the stack), and
 * does every operation as one name relative to that descriptor, with
 * metadata through descriptors.  Nothing the sender names is ever
 * followed, so symlinks travel verbatim.  The host also binds names to
 * its request (struct xf.expect).
 *
 * No malloc and no printf here: the agent must stay small (and open() is
 * openat(AT_FDCWD), as in auth.h).
 */
#ifndef VS_TRANSFER_H
#define VS_TRANSFER_H

#include <stdint.h>
#include <sys/stat.h>
#include "protocol.h"
#include "chan.h"
#include "sha256.h"

#define XF_RECURSIVE 0x1u
#define XF_PRESERVE 0x2u
#define XF_MKDIRS 0x4u
#define XF_SAFELINKS 0x8u       /* receiver: skip symlinks that leave the tree */

#define XF_XXH64 1
#define XF_SHA256 2

#define XF_FILE 1
#define XF_DIR 2
#define XF_SYMLINK 3
#define XF_DIREND 4
#define XF_HARDLINK 5

#define XF_UNKNOWN UINT64_MAX   /* size of a stream (stdin) */
#define XF_SYSFS_MAGIC 0x62656572 /* statfs f_type of sysfs (linux/magic.h) */
#define XF_PATH_MAX 4096
#define XF_DEPTH_MAX 256        /* nested directories, the top entry included */
#define XF_LINKS_MAX 1024       /* sender: multiply linked files remembered */

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

/* What an entry's metadata carries (STAT) */
struct xf_meta {
	uint32_t mode, mns, uid, gid;
	uint64_t msec;
};

struct xf {
	int sock;
	struct vs_chan ch;      /* sock's frames in (xf_in); ours go out by writev */
	uint32_t flags;
	int alg;
	const char *expect;     /* receiver: the one top entry's name, as asked for
	                         * (the host); NULL: any number, any names (the agent) */
	int in, out;            /* "-": the sender reads `in`, the receiver writes
	                         * `out`; -1 (the default): "-" is a plain name */
	int no_tmpfile;         /* receiver: named temporary files only (a test knob) */
	uint32_t code;          /* VS_E_* of the last failure */
	char err[600];          /* why, names as they are: its writer escapes it */
	int remote_err;         /* err came from the peer's ERROR frame */
	int lost;               /* the connection failed (not the transfer) */
	uint64_t bytes;         /* content bytes moved */
	unsigned files;
	uint32_t specials;      /* devices, sockets, FIFOs the sender skipped (the
	                         * receiver learns it from DONE) */
	uint32_t unsafe;        /* symlinks the receiver skipped for SAFELINKS (the
	                         * sender learns it from the OK to DONE) */
	void (*progress)(const char *name, uint64_t done, uint64_t size, int end);
	/* receiver */
	const char *dest;
	int into_dir;           /* the destination is a directory */
	int ntop;
	char topname[256];      /* local name of the top entry when it is dest itself */
	int ndir;               /* the directory stack: dfd[0] holds the top entry */
	int dfd[XF_DEPTH_MAX + 1];
	uint16_t plen[XF_DEPTH_MAX + 1];        /* strlen of cur at each level */
	struct xf_meta dmeta[XF_DEPTH_MAX + 1]; /* applied when a level pops */
	uint8_t existed[XF_DEPTH_MAX + 1]; /* the level's directory was there before */
	uint32_t drop;          /* mode bits a received entry does not get: 07000
	                         * and the umask, unless PRESERVE (xf_recv) */
	char cur[XF_PATH_MAX];  /* the top directory's path, as the sender named it */
	int tmpfd;              /* the file being received, or -1 */
	int tmpdir;             /* directory of a named temporary, or -1 */
	char tmp[256];          /* named temporary (fallback, symlinks, links) */
};

void xf_init(struct xf *x, int sock, uint32_t flags, int alg);
int xf_send(struct xf *x, const char *path);     /* one top entry */
int xf_done(struct xf *x);                       /* DONE, and the receiver's OK */
int xf_recv(struct xf *x, const char *dest);     /* until DONE */
void xf_abort(struct xf *x);                     /* drop a temporary file */
int xf_topname(const char *path, char *out, size_t cap);
int xf_request(uint8_t *b, size_t cap, uint32_t flags, int alg, const char *path);
int xf_request_parse(const uint8_t *p, size_t n, uint32_t *flags, int *alg, const char **path);
void xf_hash_init(struct xf_hash *h, int alg);
void xf_hash_update(struct xf_hash *h, const void *p, size_t n);
void xf_hash_hole(struct xf_hash *h, uint64_t len);
size_t xf_hash_final(struct xf_hash *h, uint8_t out[32]);
void xf_hex(const uint8_t *d, size_t n, char *out);

#ifdef VS_IMPLEMENTATION

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/vfs.h>
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


/* A hole enters the hash as its length (u64 little-endian), not as that
 * many zeros: hashing it costs O(1) whatever size the sender claims, and
 * a file without holes hashes to what xxhsum and sha256sum print. */
void xf_hash_hole(struct xf_hash *h, uint64_t len)
{
	uint8_t b[8];
	vs_put64(b, len);
	xf_hash_update(h, b, 8);
}

/* ---- small helpers ---- */

#define XF_BATCH (4 * VS_FRAME_MAX)
static uint8_t xf_buf[XF_BATCH];                   /* outgoing DATA: one read, 4 frames */
/* Incoming frames are read in bulk, several per read(), into the
 * channel's input (x->ch): one syscall per 64 KiB chunk instead of two
 * (header, then payload).  xf_p points at the payload of the last frame
 * read, valid until the next xf_read.  Sixteen frames' room: the partial
 * frame at the end is moved to the front once per megabyte, not once per
 * quarter (a copy of an eighth of the data). */
#define XF_INFRAMES 16
static uint8_t xf_in[XF_INFRAMES * (VS_HDR + VS_FRAME_MAX)];
static const uint8_t *xf_p;
static uint8_t xf_ent[VS_FRAME_MAX];               /* the current STAT */
static uint8_t xf_zero[VS_FRAME_MAX]; /* not const: .bss, not 64 KiB of .rodata */
static char xf_dshow[XF_PATH_MAX];    /* the destination, as errors name it */

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

/* err = the strings up to the NULL, truncated to fit */
static int xf_fail(struct xf *x, uint32_t code, ...) __attribute__((sentinel));
static int xf_fail(struct xf *x, uint32_t code, ...)
{
	va_list ap;
	const char *s;
	size_t n = 0;
	va_start(ap, code);
	while ((s = va_arg(ap, const char *)))
		while (*s && n < sizeof x->err - 1)
			x->err[n++] = *s++;
	va_end(ap);
	x->err[n] = 0;
	x->code = code;
	x->remote_err = 0;
	return -1;
}

/* "WHAT PATH: vs_strerror(errno)" */
static int xf_fail_sys(struct xf *x, const char *what, const char *path)
{
	int e = errno;
	return xf_fail(x, xf_code(e), what ? what : "", path, ": ", vs_strerror(e), NULL);
}

/* A local failure on an entry, named by where it goes on this side:
 * dest/top/sub/name, or dest/sub/name when the top entry is dest. */
static int xf_fail_here(struct xf *x, const char *path)
{
	int e = errno;
	const char *rest = path, *sep = "/";
	if (!x->into_dir) {
		rest = strchr(path, '/');
		rest = rest ? rest : "";
		sep = "";
	} else if (!strcmp(xf_dshow, "/")) {
		sep = "";
	}
	return xf_fail(x, xf_code(e), xf_dshow, sep, rest, ": ", vs_strerror(e), NULL);
}

static int xf_send_frame(struct xf *x, uint16_t type, const void *p, size_t n)
{
	if (vs_send(x->sock, type, p, n) < 0) {
		xf_fail(x, VS_E_IO, "connection lost: ", vs_strerror(errno), NULL);
		x->lost = 1;
		return -1;
	}
	return 0;
}

static int xf_ok(struct xf *x)
{
	return xf_send_frame(x, VS_OK, NULL, 0);
}

/* Tell the peer why we stop.  Best effort: it may be gone already. */
static void xf_send_error(struct xf *x)
{
	vs_send_error(x->sock, x->code, x->err);
}

/* The length of the next frame if it is a complete DATA frame already in
 * the buffer (its payload at *p), else 0. */
static size_t xf_next_data(struct xf *x, const uint8_t **p)
{
	struct vs_hdr h;
	if (vs_chan_peek(&x->ch, x->ch.ioff, &h, p) != 1 || h.type != VS_DATA)
		return 0;
	return h.len;
}

/* Read one frame; its payload is at xf_p.  ERROR frames become x->err. */
static int xf_read(struct xf *x, struct vs_hdr *h)
{
	int n = vs_chan_recv(&x->ch, h, &xf_p);
	if (n < 0) {
		x->lost = 1;
		if (errno == EPROTO)
			return xf_fail(x, VS_E_PROTO, "protocol error: malformed frame during the transfer", NULL);
		if (!errno && x->ch.ioff == x->ch.ilen)
			return xf_fail(x, VS_E_IO, "connection closed by the peer during the transfer", NULL);
		if (!errno)
			return xf_fail(x, VS_E_PROTO, "connection closed inside a frame during the transfer", NULL);
		return xf_fail(x, VS_E_IO, "connection lost: ", vs_strerror(errno), NULL);
	}
	if (h->type == VS_ERROR) {
		vs_error_text(xf_p, (size_t)n, VS_E_IO, &x->code, x->err, sizeof x->err);
		x->remote_err = 1;
		return -1;
	}
	return n;
}

/* The receiver's OK; its payload's length is returned (only the OK to
 * DONE carries one). */
static int xf_wait_ok(struct xf *x)
{
	struct vs_hdr h;
	int n = xf_read(x, &h);
	if (n < 0)
		return -1;
	if (h.type != VS_OK)
		return xf_fail(x, VS_E_PROTO, "protocol error: expected OK during the transfer", NULL);
	return n;
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
		xf_fail(x, VS_E_PROTO, "protocol error: unexpected message during the transfer", NULL);
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

/* A transfer is one connection: what another connection's sender left
 * in the input buffer (bytes after its DONE) is not this one's. */
void xf_init(struct xf *x, int sock, uint32_t flags, int alg)
{
	memset(x, 0, sizeof *x);
	vs_chan_init(&x->ch, sock, xf_in, sizeof xf_in, NULL, 0);
	x->sock = sock;
	x->flags = flags;
	x->alg = alg;
	x->in = x->out = -1;
	x->tmpfd = x->tmpdir = -1;
}

/* The name a path's top entry travels under, the same function on both
 * sides (the host checks what it asked for against it): the last
 * component, trailing slashes stripped; "/", "." and ".." travel as
 * "root".  -1 when it does not fit in out[cap]. */
int xf_topname(const char *path, char *out, size_t cap)
{
	size_t len = strlen(path), k;
	const char *b;
	while (len > 1 && path[len - 1] == '/')
		len--;
	for (b = path + len; b > path && b[-1] != '/'; b--)
		;
	k = (size_t)(path + len - b);
	if (!k || (k == 1 && b[0] == '.') || (k == 2 && b[0] == '.' && b[1] == '.'))
		b = "root", k = 4;
	if (k >= cap)
		return -1;
	memcpy(out, b, k);
	out[k] = 0;
	return 0;
}

/* ---- sender ---- */

/* STAT: u32 kind, u32 mode, u64 size, u64 mtime_sec, u32 mtime_nsec,
 * u32 uid, u32 gid, str path, str link */
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
		return xf_fail(x, VS_E_IO, "connection lost: ", vs_strerror(errno), NULL);
	}
	return 0;
}

/* A stream (stdin, a FIFO) may sit idle for long: wait for it and for
 * the peer at once, so that a receiver's ERROR, or its end, is seen then
 * and not only at the stream's next byte. */
static int xf_wait_input(struct xf *x, int fd)
{
	struct pollfd p[2] = { { fd, POLLIN, 0 }, { x->sock, POLLIN, 0 } };
	while (poll(p, 2, -1) < 0)
		if (errno != EINTR)
			return 0; /* let the read tell */
	return p[1].revents ? xf_peer_spoke(x) : 0;
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
				uint8_t hb[8];
				vs_put64(hb, next - off);
				if (xf_send_frame(x, VS_HOLE, hb, 8) < 0)
					return -1;
				xf_hash_hole(&hs, next - off);
				x->bytes += next - off;
				off = next;
				if (off >= size)
					break;
			}
			hpos = lseek(fd, (off_t)off, SEEK_HOLE);
			data_end = hpos < 0 || (uint64_t)hpos > size ? size : (uint64_t)hpos;
		}
		want = XF_BATCH;
		if (size != XF_UNKNOWN && data_end - off < want)
			want = (size_t)(data_end - off);
		if (size == XF_UNKNOWN && xf_wait_input(x, fd) < 0)
			return -1;
		r = size == XF_UNKNOWN ? read(fd, xf_buf, want) : pread(fd, xf_buf, want, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return xf_fail_sys(x, NULL, rel);
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
	return xf_wait_ok(x) < 0 ? -1 : 0;
}

/* A regular file's size, as far as its stat can be believed.  procfs,
 * cgroupfs and the like say 0 and sysfs says 4096, whatever a file holds
 * (/proc/cpuinfo): such a file goes as a stream, read to its EOF, as cp
 * reads it (scp sends nothing, or fails).  An empty file goes so too. */
static uint64_t xf_file_size(int fd, const struct stat *st)
{
	struct statfs fs;
	if (!S_ISREG(st->st_mode) || st->st_size == 0)
		return XF_UNKNOWN;
	if (st->st_blocks == 0 && fstatfs(fd, &fs) == 0 && fs.f_type == XF_SYSFS_MAGIC)
		return XF_UNKNOWN;
	return (uint64_t)st->st_size;
}

static int xf_send_file(struct xf *x, int fd, const struct stat *st, const char *rel)
{
	uint64_t size = xf_file_size(fd, st);
	int sparse = size != XF_UNKNOWN && (uint64_t)st->st_blocks * 512 < size;
	if (xf_stat(x, XF_FILE, st, size, rel, NULL) < 0 || xf_wait_ok(x) < 0)
		return -1;
	return xf_stream(x, fd, rel, size, sparse);
}

/* Files with more than one name, as tar keeps them: (dev, ino) and the
 * first name sent, in a fixed table (no malloc in the agent).  When it
 * is full, further names go as copies. */
static struct { uint64_t dev, ino; uint32_t off; } xf_lk[XF_LINKS_MAX];
static unsigned xf_nlk;
static char xf_lpool[64 * 1024];
static size_t xf_lpool_n;

/* The first name of st's inode, or NULL after remembering rel as it. */
static const char *xf_link_seen(const struct stat *st, const char *rel, size_t len)
{
	unsigned i;
	for (i = 0; i < xf_nlk; i++)
		if (xf_lk[i].dev == (uint64_t)st->st_dev && xf_lk[i].ino == (uint64_t)st->st_ino)
			return xf_lpool + xf_lk[i].off;
	if (xf_nlk < XF_LINKS_MAX && xf_lpool_n + len + 1 <= sizeof xf_lpool) {
		xf_lk[xf_nlk].dev = (uint64_t)st->st_dev;
		xf_lk[xf_nlk].ino = (uint64_t)st->st_ino;
		xf_lk[xf_nlk++].off = (uint32_t)xf_lpool_n;
		memcpy(xf_lpool + xf_lpool_n, rel, len + 1);
		xf_lpool_n += len + 1;
	}
	return NULL;
}

static int xf_walk(struct xf *x, int dirfd, const char *name, char *rel, size_t len, int level);

/* A directory's entries, then its DIREND.  fd is the directory. */
static int xf_walk_dir(struct xf *x, int fd, const struct stat *st, char *rel, size_t len, int level)
{
	struct vs_dir d;
	const char *e;
	int r;
	if (level >= XF_DEPTH_MAX)
		return xf_fail(x, VS_E_NAMETOOLONG, "more than 256 nested directories: ", rel, NULL);
	if (xf_stat(x, XF_DIR, st, 0, rel, NULL) < 0 || xf_wait_ok(x) < 0)
		return -1;
	vs_dir_init(&d, fd);
	while ((e = vs_dir_next(&d))) {
		size_t el = strlen(e);
		if (len + 1 + el >= XF_PATH_MAX)
			return xf_fail(x, VS_E_NAMETOOLONG, rel, "/...: path too long", NULL);
		rel[len] = '/';
		memcpy(rel + len + 1, e, el + 1);
		r = xf_walk(x, fd, e, rel, len + 1 + el, level + 1);
		rel[len] = 0;
		if (r < 0)
			return -1;
	}
	if (errno)
		return xf_fail_sys(x, NULL, rel);
	if (xf_stat(x, XF_DIREND, st, 0, rel, NULL) < 0)
		return -1;
	return xf_wait_ok(x) < 0 ? -1 : 0;
}

/* Walk one entry; rel holds its relative path (len bytes used).  The top
 * entry (level 0) is the path the operator named: followed if a link. */
static int xf_walk(struct xf *x, int dirfd, const char *name, char *rel, size_t len, int level)
{
	struct stat st;
	int r, fd, nf = level ? O_NOFOLLOW : 0;
	const char *shown = level ? rel : name;
	if (fstatat(dirfd, name, &st, level ? AT_SYMLINK_NOFOLLOW : 0) < 0)
		return xf_fail_sys(x, NULL, shown);
	if (S_ISREG(st.st_mode) && level && st.st_nlink > 1) {
		const char *first = xf_link_seen(&st, rel, len);
		if (first) {
			x->files++;
			return xf_stat(x, XF_HARDLINK, &st, 0, rel, first) < 0 || xf_wait_ok(x) < 0 ? -1 : 0;
		}
	}
	if (S_ISREG(st.st_mode) || (!level && S_ISFIFO(st.st_mode))) {
		fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | nf);
		if (fd < 0)
			return xf_fail_sys(x, NULL, shown);
		r = xf_send_file(x, fd, &st, rel);
		close(fd);
		return r;
	}
	if (S_ISLNK(st.st_mode)) {
		char t[XF_PATH_MAX];
		ssize_t n = readlinkat(dirfd, name, t, sizeof t - 1);
		if (n < 0)
			return xf_fail_sys(x, NULL, rel);
		t[n] = 0;
		if (xf_stat(x, XF_SYMLINK, &st, 0, rel, t) < 0)
			return -1;
		return xf_wait_ok(x) < 0 ? -1 : 0;
	}
	if (S_ISDIR(st.st_mode)) {
		if (!(x->flags & XF_RECURSIVE))
			return xf_fail(x, VS_E_ISDIR, shown, ": Is a directory (use -r)", NULL);
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | nf);
		if (fd < 0)
			return xf_fail_sys(x, NULL, shown);
		r = xf_walk_dir(x, fd, &st, rel, len, level);
		close(fd);
		return r;
	}
	if (!level)
		return xf_fail(x, VS_E_IO, name, ": not a regular file, directory or symlink", NULL);
	x->specials++; /* devices, sockets, FIFOs inside a tree */
	return 0;
}

/* Send one top entry: a file, a tree with -r, or "-" (x->in). */
int xf_send(struct xf *x, const char *path)
{
	static char rel[XF_PATH_MAX];
	int r;
	xf_nlk = 0; /* hard links are kept within one top entry */
	xf_lpool_n = 0;
	if (!strcmp(path, "-") && x->in >= 0) {
		struct stat st;
		if (fstat(x->in, &st) < 0)
			return xf_fail_sys(x, NULL, "stdin");
		st.st_mode = (st.st_mode & ~07777u) | 0644;
		if (!S_ISREG(st.st_mode))
			st.st_mtim.tv_sec = time(NULL);
		r = xf_send_file(x, x->in, &st, "-");
	} else if (strlen(path) >= XF_PATH_MAX || xf_topname(path, rel, 256) < 0) {
		r = xf_fail(x, VS_E_NAMETOOLONG, path, ": File name too long", NULL);
	} else {
		r = xf_walk(x, AT_FDCWD, path, rel, strlen(rel), 0);
	}
	if (r < 0 && !x->remote_err)
		xf_send_error(x); /* the receiver drops what it has */
	return r;
}

/* DONE carries the count of special files skipped; the receiver's OK the
 * count of symlinks it skipped for SAFELINKS. */
int xf_done(struct xf *x)
{
	uint8_t b[4];
	int n;
	vs_put32(b, x->specials);
	if (xf_send_frame(x, VS_DONE, b, 4) < 0 || (n = xf_wait_ok(x)) < 0)
		return -1;
	if (n == 4)
		x->unsafe = vs_get32(xf_p);
	return 0;
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

/* --safe-links, as rsync has it: a symlink at `depth` below the top entry
 * whose target is relative and never climbs above the tree (lexically:
 * that is the rule, not a prediction; nothing is followed either way). */
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
	if (x->tmpfd >= 0)
		close(x->tmpfd); /* an unnamed temporary file vanishes with it */
	x->tmpfd = -1;
}

/* One step of the no-follow walk: a directory, one name below dfd. */
static int xf_opendir(int dfd, const char *name)
{
	return openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* The one resolver for a longer relative path (a hard link's first name):
 * open the directory that holds rel's last component, one component at a
 * time from base, never following a symlink.  rel passed xf_path_ok, so
 * no component climbs either.  *last points at the last component. */
static int xf_resolve(int base, const char *rel, const char **last)
{
	char comp[256];
	int fd = base;
	for (;;) {
		const char *e = strchr(rel, '/');
		int nfd;
		if (!e) {
			*last = rel;
			return fd == base ? fcntl(base, F_DUPFD_CLOEXEC, 0) : fd;
		}
		memcpy(comp, rel, (size_t)(e - rel));
		comp[e - rel] = 0;
		nfd = xf_opendir(fd, comp);
		if (fd != base)
			close(fd);
		if (nfd < 0)
			return -1;
		fd = nfd;
		rel = e + 1;
	}
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

/* The destination as the operator typed it is theirs: an existing
 * symlink there is written through, as cp(1) does (a dangling one is
 * refused, as cp refuses it).  d becomes the link's final target. */
static int xf_follow(struct xf *x, char *d)
{
	static char t[XF_PATH_MAX];
	struct stat st;
	int i;
	for (i = 0; i < 40; i++) {
		ssize_t n;
		char *s;
		size_t k;
		if (lstat(d, &st) < 0 || !S_ISLNK(st.st_mode))
			return 0;
		if (stat(d, &st) < 0 && errno == ENOENT)
			return xf_fail(x, VS_E_NOENT, x->dest, ": not writing through a dangling symlink", NULL);
		n = readlink(d, t, sizeof t - 1);
		if (n < 0)
			return xf_fail_sys(x, NULL, x->dest);
		t[n] = 0;
		s = strrchr(d, '/');
		k = t[0] == '/' || !s ? 0 : (size_t)(s + 1 - d);
		if (k + (size_t)n >= XF_PATH_MAX) {
			errno = ENAMETOOLONG;
			return xf_fail_sys(x, NULL, x->dest);
		}
		memcpy(d + k, t, (size_t)n + 1);
	}
	errno = ELOOP;
	return xf_fail_sys(x, NULL, x->dest);
}

/* The bottom of the directory stack: dest if it is a directory (the top
 * entry goes inside under its own name), else dest's directory (the top
 * entry becomes dest). */
static int xf_root(struct xf *x)
{
	static char d[XF_PATH_MAX];
	const char *dest = x->dest;
	struct stat st;
	size_t n = strlen(dest);
	int slash = n > 1 && dest[n - 1] == '/', fd;
	char *base;
	if (n >= sizeof d)
		return xf_fail(x, VS_E_NAMETOOLONG, dest, ": path too long", NULL);
	memcpy(d, dest, n + 1);
	while (n > 1 && d[n - 1] == '/')
		n--;
	memcpy(xf_dshow, d, n);
	xf_dshow[n] = 0;
	if (stat(d, &st) < 0 && errno == ENOENT && (x->flags & XF_MKDIRS)) {
		/* dest/ is a directory to create; dest needs its parents */
		char *s = slash ? NULL : strrchr(d, '/');
		if (s && s != d)
			*s = 0;
		if ((slash || (s && s != d)) && xf_mkdirs(d) < 0)
			return xf_fail_sys(x, "unable to create ", d);
		if (s && s != d)
			*s = '/';
	}
	if (stat(d, &st) == 0 && S_ISDIR(st.st_mode)) {
		x->into_dir = 1;
		fd = openat(AT_FDCWD, d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return xf_fail_sys(x, NULL, dest);
	} else {
		if (slash) {
			errno = stat(d, &st) == 0 ? ENOTDIR : ENOENT;
			return xf_fail_sys(x, NULL, dest);
		}
		d[n] = 0;
		if (xf_follow(x, d) < 0)
			return -1;
		base = strrchr(d, '/');
		if (base) {
			*base++ = 0;
			fd = openat(AT_FDCWD, *d ? d : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		} else {
			base = d;
			fd = openat(AT_FDCWD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		}
		if (fd < 0)
			return xf_fail_sys(x, NULL, *d && base != d ? d : ".");
		if (strlen(base) > 255 || !*base) {
			close(fd);
			errno = ENAMETOOLONG;
			return xf_fail_sys(x, NULL, dest);
		}
		memcpy(x->topname, base, strlen(base) + 1);
	}
	x->dfd[0] = fd;
	x->plen[0] = 0;
	x->cur[0] = 0;
	x->ndir = 1;
	return 0;
}

/* ".NAME.vsh-PID.SEQ": the pid lets a later receiver see a dead one's. */
static void xf_tmpname(struct xf *x, const char *name)
{
	static uint32_t seq;
	char *p = x->tmp;
	size_t k = strlen(name);
	if (k > 200)
		k = 200;
	*p++ = '.';
	memcpy(p, name, k);
	p += k;
	memcpy(p, ".vsh-", 5);
	p = vs_utoa(p + 5, (uint32_t)getpid());
	*p++ = '.';
	vs_utoa(p, ++seq);
}

/* Named temporaries of receivers that died (SIGKILL, power loss) for the
 * same target: remove them.  Only where O_TMPFILE cannot be used. */
static void xf_stale(struct xf *x, int dfd, const char *name)
{
	struct vs_dir d;
	const char *e, *c;
	size_t pl;
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	xf_tmpname(x, name);
	pl = 1 + (strlen(name) > 200 ? 200 : strlen(name)) + 5; /* ".NAME.vsh-" */
	vs_dir_init(&d, fd);
	while ((e = vs_dir_next(&d))) {
		unsigned long pid = 0;
		if (strncmp(e, x->tmp, pl))
			continue;
		for (c = e + pl; *c >= '0' && *c <= '9' && pid < 1u << 30; c++)
			pid = pid * 10 + (unsigned long)(*c - '0');
		if (*c == '.' && pid && pid != (unsigned long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			unlinkat(dfd, e, 0);
	}
	close(fd);
	x->tmp[0] = 0;
}

static void xf_procfd(char *p, int fd)
{
	memcpy(p, "/proc/self/fd/", 14);
	vs_utoa(p + 14, (uint32_t)fd);
}

/* The file being received: unnamed (O_TMPFILE) where the filesystem has
 * it and it can be linked later (through /proc, or AT_EMPTY_PATH as
 * root), so that not even SIGKILL leaves a temporary file behind; else a
 * named one, O_EXCL. */
static int xf_tmp_open(struct xf *x, int dfd, const char *name)
{
	char p[40], t[8];
	x->tmpdir = dfd;
	if (!x->no_tmpfile) {
		int fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
		if (fd >= 0) {
			xf_procfd(p, fd);
			if (geteuid() == 0 || readlink(p, t, sizeof t) >= 0) {
				x->tmpfd = fd;
				return 0;
			}
			close(fd);
		}
	}
	xf_stale(x, dfd, name);
	xf_tmpname(x, name);
	x->tmpfd = openat(dfd, x->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (x->tmpfd < 0)
		x->tmp[0] = 0;
	return x->tmpfd;
}

static int xf_link_tmpfd(struct xf *x, int dfd, const char *name)
{
	char p[40];
	if (linkat(x->tmpfd, "", dfd, name, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno == EEXIST)
		return -1;
	xf_procfd(p, x->tmpfd);
	return linkat(AT_FDCWD, p, dfd, name, AT_SYMLINK_FOLLOW);
}

/* Put what is at x->tmp (or the unnamed x->tmpfd, or the inode at
 * ldfd/lname for a hard link) in place as name: linked straight there
 * when the name is free, else under a temporary name renamed over it. */
static int xf_place(struct xf *x, int dfd, const char *name, int ldfd, const char *lname)
{
	int r;
	if (!x->tmp[0]) {
		r = ldfd >= 0 ? linkat(ldfd, lname, dfd, name, 0) : xf_link_tmpfd(x, dfd, name);
		if (r == 0 || errno != EEXIST)
			return r;
		xf_tmpname(x, name);
		x->tmpdir = dfd;
		r = ldfd >= 0 ? linkat(ldfd, lname, dfd, x->tmp, 0) : xf_link_tmpfd(x, dfd, x->tmp);
		if (r < 0) {
			x->tmp[0] = 0;
			return -1;
		}
	}
	if (renameat(dfd, x->tmp, dfd, name) < 0)
		return -1;
	/* rename does nothing when both names are one inode already (a hard
	 * link received twice): drop the temporary name then */
	if (ldfd >= 0)
		unlinkat(dfd, x->tmp, 0);
	x->tmp[0] = 0;
	return 0;
}

struct xf_entry {
	int kind;
	struct xf_meta m;
	uint64_t size;
	const char *path, *link;
};

static int xf_entry_parse(const uint8_t *p, size_t n, struct xf_entry *e)
{
	struct vs_rd r = { p, n, 0 };
	e->kind = (int)vs_rd32(&r);
	e->m.mode = vs_rd32(&r) & 07777;
	e->size = vs_rd64(&r);
	e->m.msec = vs_rd64(&r);
	e->m.mns = vs_rd32(&r);
	e->m.uid = vs_rd32(&r);
	e->m.gid = vs_rd32(&r);
	e->path = vs_rdstr(&r);
	e->link = vs_rdstr(&r);
	return r.err || r.n || e->kind < XF_FILE || e->kind > XF_HARDLINK || e->m.mns >= 1000000000u ? -1 : 0;
}

static void xf_times(const struct xf_meta *m, struct timespec ts[2])
{
	ts[0].tv_sec = ts[1].tv_sec = (time_t)m->msec;
	ts[0].tv_nsec = ts[1].tv_nsec = (long)m->mns;
}

/* utimensat(2) itself: musl's wrapper carries a fallback to utimes for
 * kernels before 2.6.22, 400 bytes of the agent's budget.  name NULL:
 * the descriptor's own file (futimens). */
static void xf_utimens(int dfd, const char *name, const struct timespec ts[2], int flags)
{
	syscall(SYS_utimensat, dfd, name, ts, flags);
}

/* Metadata through the descriptor of what we created: a name is never
 * looked up again, so it cannot lead anywhere else.  mode is what the
 * caller decided (m's, less x->drop; or the replaced file's).  fchown as
 * fchownat on the descriptor itself, fchmod as the system call: libc's
 * wrappers carry a /proc fallback for O_PATH descriptors (480 bytes of
 * the agent's budget), and ours are files and directories opened whole. */
static void xf_meta_fd(struct xf *x, int fd, const struct xf_meta *m, uint32_t mode)
{
	struct timespec ts[2];
	xf_times(m, ts);
	if ((x->flags & XF_PRESERVE) && geteuid() == 0) /* before the mode: chown clears setuid */
		(void)!fchownat(fd, "", m->uid, m->gid, AT_EMPTY_PATH);
	(void)!syscall(SYS_fchmod, fd, mode);
	if (x->flags & XF_PRESERVE)
		xf_utimens(fd, NULL, ts, 0);
}

/* A symlink has no descriptor to chmod (and no mode that counts):
 * owner and times on its own single name, not followed. */
static void xf_meta_link(struct xf *x, int dfd, const char *name, const struct xf_meta *m)
{
	struct timespec ts[2];
	xf_times(m, ts);
	if ((x->flags & XF_PRESERVE) && geteuid() == 0)
		(void)!fchownat(dfd, name, m->uid, m->gid, AT_SYMLINK_NOFOLLOW);
	if (x->flags & XF_PRESERVE)
		xf_utimens(dfd, name, ts, AT_SYMLINK_NOFOLLOW);
}

/* Pop the directory on top of the stack, its mode and times applied;
 * one that was there before keeps its mode, as cp(1) leaves it, unless
 * PRESERVE. */
static void xf_pop(struct xf *x, const struct xf_meta *m)
{
	int fd = x->dfd[--x->ndir];
	if (x->ndir && (!x->existed[x->ndir] || (x->flags & XF_PRESERVE)))
		xf_meta_fd(x, fd, m, m->mode & ~x->drop);
	close(fd);
	if (x->ndir)
		x->cur[x->plen[x->ndir - 1]] = 0;
}

/* However the transfer ends, every directory still open gets its mode
 * (and times) now: none it made stays private (0700) after a failure. */
static void xf_unwind(struct xf *x)
{
	while (x->ndir > 0)
		xf_pop(x, &x->dmeta[x->ndir - 1]);
}

/* Writes count on this descriptor: own (our temporary file, sized up
 * front, holes skipped by seeking) or not (stdout: written in sequence,
 * holes as zeros, never seeked nor truncated: it may be a file opened
 * for appending, or shared with the commands around us). */
static int xf_write(int fd, int own, const struct iovec *iov, int n, uint64_t hole)
{
	if (!hole)
		return vs_writevall(fd, (struct iovec *)iov, n);
	if (own)
		return lseek(fd, (off_t)hole, SEEK_CUR) < 0 ? -1 : 0;
	while (hole) {
		size_t k = hole < VS_FRAME_MAX ? (size_t)hole : VS_FRAME_MAX;
		if (vs_writeall(fd, xf_zero, k) < 0)
			return -1;
		hole -= k;
	}
	return 0;
}

/* Receive one file's frames into fd until END; check length and hash.
 * shown names the file in errors. */
static int xf_content(struct xf *x, int fd, int own, const struct xf_entry *e, const char *shown)
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
		struct iovec iov[XF_INFRAMES];
		int n = xf_read(x, &h), ni = 0;
		uint64_t k, hole = 0;
		if (n < 0) {
			if (failed) { /* the sender gave up on our error: keep ours */
				memcpy(x->err, saved, sizeof saved);
				x->code = scode;
				x->remote_err = 0;
				x->lost = 0;
			}
			return -1;
		}
		if (h.type == VS_END) {
			if (failed)
				return -1;
			if (n < 16 || n > 48)
				break;
			endlen = n;
			break;
		}
		if (h.type == VS_HOLE && n != 8)
			return xf_fail(x, VS_E_PROTO, e->path, ": protocol error: malformed HOLE", NULL);
		/* a stream has no holes to find: its sender never sends one */
		if (h.type == VS_HOLE && e->size == XF_UNKNOWN)
			return xf_fail(x, VS_E_PROTO, e->path, ": protocol error: HOLE in a stream of unknown size", NULL);
		if (h.type != VS_DATA && h.type != VS_HOLE)
			break;
		k = h.type == VS_DATA ? (uint64_t)n : vs_get64(xf_p);
		if (e->size != XF_UNKNOWN && k > e->size - got)
			return xf_fail(x, VS_E_PROTO, e->path, ": more data than the announced size", NULL);
		if (failed)
			continue; /* drain until END after a local failure */
		if (h.type == VS_HOLE) {
			hole = k;
			xf_hash_hole(&hs, k);
		} else {
			/* with the DATA frames already buffered behind this one,
			 * in one writev */
			const uint8_t *dp;
			size_t more;
			iov[ni++] = (struct iovec){ (void *)xf_p, (size_t)n };
			xf_hash_update(&hs, xf_p, (size_t)n);
			while (ni < XF_INFRAMES && (more = xf_next_data(x, &dp)) > 0 &&
			       (e->size == XF_UNKNOWN || more <= e->size - got - k)) {
				xf_hash_update(&hs, dp, more);
				iov[ni++] = (struct iovec){ (void *)dp, more };
				vs_chan_drop(&x->ch, x->ch.ioff, VS_HDR + more);
				k += more;
			}
		}
		if (xf_write(fd, own, iov, ni, hole) < 0) {
			xf_fail_sys(x, NULL, shown);
			xf_send_error(x);
			memcpy(saved, x->err, sizeof saved);
			scode = x->code;
			failed = 1;
		}
		got += k;
		x->bytes += k;
		if (x->progress)
			x->progress(e->path, got, e->size, 0);
	}
	if (!endlen)
		return xf_fail(x, VS_E_PROTO, "protocol error: unexpected message in a file's content", NULL);
	dn = xf_hash_final(&hs, d);
	if (vs_get32(xf_p) != (uint32_t)x->alg || (size_t)endlen != 16 + dn ||
	    vs_get64(xf_p + 8) != got || (e->size != XF_UNKNOWN && got != e->size))
		return xf_fail(x, VS_E_PROTO, e->path, ": length or hash algorithm differs from what was announced", NULL);
	if (memcmp(xf_p + 16, d, dn)) {
		xf_hex(xf_p + 16, dn, hd);
		xf_hex(d, dn, hs_);
		return xf_fail(x, VS_E_HASH, e->path, ": content hash mismatch: sent ", hd, ", received ", hs_, NULL);
	}
	if (x->progress)
		x->progress(e->path, got, got, 1);
	x->files++;
	return 0;
}

static int xf_recv_file(struct xf *x, int dfd, const char *name, const struct xf_entry *e)
{
	struct stat st;
	uint32_t mode = e->m.mode & ~x->drop;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode)) {
			errno = EISDIR;
			return xf_fail_here(x, e->path);
		}
		/* the file it replaces keeps its permissions, as cp(1)
		 * leaves them, unless PRESERVE: never a special bit */
		if (!(x->flags & XF_PRESERVE) && S_ISREG(st.st_mode))
			mode = st.st_mode & 0777;
	}
	if (xf_tmp_open(x, dfd, name) < 0)
		return xf_fail_here(x, e->path);
	/* the announced size, up front: what the filesystem cannot hold is
	 * refused (EFBIG) before any data, and holes are then just skipped */
	if (e->size != XF_UNKNOWN) {
		if (e->size > INT64_MAX)
			errno = EFBIG;
		if (e->size > INT64_MAX || ftruncate(x->tmpfd, (off_t)e->size) < 0)
			return xf_fail_here(x, e->path);
	}
	if (xf_ok(x) < 0 || xf_content(x, x->tmpfd, 1, e, e->path) < 0)
		return -1;
	xf_meta_fd(x, x->tmpfd, &e->m, mode);
	if (fsync(x->tmpfd) < 0 || xf_place(x, dfd, name, -1, NULL) < 0)
		return xf_fail_here(x, e->path);
	close(x->tmpfd);
	x->tmpfd = -1;
	fsync(dfd);
	return xf_ok(x);
}

static int xf_recv_dir(struct xf *x, int dfd, const char *name, const struct xf_entry *e)
{
	int fd, old;
	if (x->ndir > XF_DEPTH_MAX)
		return xf_fail(x, VS_E_NAMETOOLONG, "more than 256 nested directories: ", e->path, NULL);
	/* private while it fills; its mode when it pops (xf_pop) */
	old = mkdirat(dfd, name, 0700) < 0;
	if (old && errno != EEXIST)
		return xf_fail_here(x, e->path);
	fd = xf_opendir(dfd, name);
	if (fd < 0) {
		if (errno == ELOOP)
			errno = ENOTDIR; /* a symlink is not the directory we were sent */
		return xf_fail_here(x, e->path);
	}
	x->dfd[x->ndir] = fd;
	x->dmeta[x->ndir] = e->m;
	x->existed[x->ndir] = (uint8_t)old;
	x->plen[x->ndir] = (uint16_t)strlen(e->path);
	memcpy(x->cur, e->path, x->plen[x->ndir] + 1u);
	x->ndir++;
	return xf_ok(x);
}

static int xf_recv_symlink(struct xf *x, int dfd, const char *name, const struct xf_entry *e)
{
	int depth = 0;
	const char *c;
	for (c = e->path; *c; c++)
		depth += *c == '/';
	/* depth - 1: counted from the top entry, so that '..' may not climb
	 * above the tree */
	if ((x->flags & XF_SAFELINKS) && !xf_link_ok(e->link, depth - 1)) {
		x->unsafe++;
		return xf_ok(x);
	}
	xf_tmpname(x, name);
	x->tmpdir = dfd;
	if (symlinkat(e->link, dfd, x->tmp) < 0) {
		x->tmp[0] = 0;
		return xf_fail_here(x, e->path);
	}
	xf_meta_link(x, dfd, x->tmp, &e->m);
	if (xf_place(x, dfd, name, -1, NULL) < 0)
		return xf_fail_here(x, e->path);
	return xf_ok(x);
}

/* A second name for a file received earlier in this tree: its first name
 * (e->link) is resolved beneath the top entry, without following a
 * symlink, and must be a regular file. */
static int xf_recv_hardlink(struct xf *x, int dfd, const char *name, const struct xf_entry *e)
{
	const char *last;
	struct stat st;
	size_t tl = x->plen[1];
	int pfd, r;
	if (x->ndir < 2 || !xf_path_ok(e->link) || strncmp(e->link, x->cur, tl) || e->link[tl] != '/')
		return xf_fail(x, VS_E_PROTO, "refusing a hard link to '", e->link, "': not in the tree", NULL);
	pfd = xf_resolve(x->dfd[1], e->link + tl + 1, &last);
	if (pfd < 0 || fstatat(pfd, last, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
		if (pfd >= 0)
			close(pfd);
		return xf_fail(x, VS_E_PROTO, "refusing a hard link to '", e->link, "': not a regular file in the tree", NULL);
	}
	r = xf_place(x, dfd, name, pfd, last);
	close(pfd);
	if (r < 0)
		return xf_fail_here(x, e->path);
	x->files++;
	return xf_ok(x);
}

/* The name to create for e in the directory on top of the stack: e's
 * parent must be exactly that directory (depth-first order), and a top
 * entry must be what was asked for. */
static const char *xf_child(struct xf *x, const struct xf_entry *e)
{
	const char *slash = strrchr(e->path, '/');
	size_t pl = slash ? (size_t)(slash - e->path) : 0, k = (size_t)(strchrnul(e->path, '/') - e->path);
	if (x->expect && (k != strlen(x->expect) || strncmp(e->path, x->expect, k))) {
		xf_fail(x, VS_E_PROTO, "refusing '", e->path, "' from the guest: asked for '", x->expect, "'", NULL);
		return NULL;
	}
	if (pl != x->plen[x->ndir - 1] || strncmp(e->path, x->cur, pl)) {
		xf_fail(x, VS_E_PROTO, "protocol error: '", e->path, "' out of order: expected ",
		        x->ndir > 1 ? "an entry in '" : "a top entry", x->cur, x->ndir > 1 ? "'" : "", NULL);
		return NULL;
	}
	if (slash)
		return slash + 1;
	if (x->ntop && x->expect) {
		xf_fail(x, VS_E_PROTO, "refusing a second '", e->path, "' from the guest: asked for one", NULL);
		return NULL;
	}
	if (x->ntop && !x->into_dir) {
		errno = ENOTDIR;
		xf_fail(x, VS_E_NOTDIR, x->dest, ": not a directory (several sources)", NULL);
		return NULL;
	}
	x->ntop++;
	return x->into_dir ? e->path : x->topname;
}

static int xf_entry(struct xf *x, struct xf_entry *e)
{
	const char *name;
	int dfd;
	if (!xf_path_ok(e->path))
		return xf_fail(x, VS_E_PROTO, "refusing an unsafe name from the sender: ", e->path, NULL);
	if (!x->ndir && xf_root(x) < 0)
		return -1;
	if (e->kind == XF_DIREND) {
		if (x->ndir < 2)
			return xf_fail(x, VS_E_PROTO, "protocol error: DIREND '", e->path, "' with no directory open", NULL);
		if (strcmp(e->path, x->cur))
			return xf_fail(x, VS_E_PROTO, "protocol error: DIREND '", e->path, "' out of order: '",
			               x->cur, "' is being received", NULL);
		xf_pop(x, &e->m);
		return xf_ok(x);
	}
	name = xf_child(x, e);
	if (!name)
		return -1;
	dfd = x->dfd[x->ndir - 1];
	switch (e->kind) {
	case XF_FILE: return xf_recv_file(x, dfd, name, e);
	case XF_DIR: return xf_recv_dir(x, dfd, name, e);
	case XF_SYMLINK: return xf_recv_symlink(x, dfd, name, e);
	}
	return xf_recv_hardlink(x, dfd, name, e);
}

/* "-" as destination: one file's content to x->out, still verified. */
static int xf_recv_stdout(struct xf *x, struct xf_entry *e)
{
	if (x->expect && strcmp(e->path, x->expect))
		return xf_fail(x, VS_E_PROTO, "refusing '", e->path, "' from the guest: asked for '", x->expect, "'", NULL);
	if (e->kind != XF_FILE || x->ntop++)
		return xf_fail(x, VS_E_ISDIR, "-: only a single file can go to stdout", NULL);
	if (xf_ok(x) < 0 || xf_content(x, x->out, 0, e, "stdout") < 0)
		return -1;
	return xf_ok(x);
}

/* DONE: u32 special files the sender skipped (older senders: empty).
 * Our OK carries the symlinks we skipped. */
static int xf_recv_done(struct xf *x, int n)
{
	uint8_t b[4];
	if (n != 0 && n != 4)
		return xf_fail(x, VS_E_PROTO, "protocol error: malformed DONE", NULL);
	x->specials = n ? vs_get32(xf_p) : 0;
	if (x->ndir > 1)
		return xf_fail(x, VS_E_PROTO, "protocol error: DONE before the DIREND of '", x->cur, "'", NULL);
	if (x->expect && !x->ntop)
		return xf_fail(x, VS_E_PROTO, "protocol error: the guest sent nothing for '", x->expect, "'", NULL);
	vs_put32(b, x->unsafe);
	return xf_send_frame(x, VS_OK, b, 4);
}

int xf_recv(struct xf *x, const char *dest)
{
	int r = -1;
	x->dest = dest;
	/* without PRESERVE a new entry's mode is as cp(1) makes it: no
	 * setuid, setgid or sticky bit, and the umask applies */
	if (!(x->flags & XF_PRESERVE)) {
		x->drop = umask(0);
		umask((mode_t)x->drop);
		x->drop |= 07000;
	}
	for (;;) {
		struct vs_hdr h;
		struct xf_entry e;
		int n = xf_read(x, &h);
		if (n < 0)
			break;
		if (h.type == VS_DONE) {
			r = xf_recv_done(x, n);
			break;
		}
		/* the entry's strings must outlive the content frames */
		if (h.type == VS_STAT)
			memcpy(xf_ent, xf_p, (size_t)n);
		if (h.type != VS_STAT || xf_entry_parse(xf_ent, (size_t)n, &e) < 0) {
			xf_fail(x, VS_E_PROTO, "protocol error: expected an entry from the sender", NULL);
			break;
		}
		if ((x->out >= 0 && !strcmp(dest, "-") ? xf_recv_stdout(x, &e) : xf_entry(x, &e)) < 0)
			break;
	}
	/* directories get their modes before the peer hears of a failure:
	 * it may look at once */
	xf_abort(x);
	xf_unwind(x);
	if (r < 0 && !x->remote_err)
		xf_send_error(x);
	return r;
}

#endif /* VS_IMPLEMENTATION */
#endif /* VS_TRANSFER_H */
