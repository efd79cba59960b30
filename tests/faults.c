/*
 * faults.so - an LD_PRELOAD shim that makes the I/O of a program on
 * sockets and pipes as awkward as the kernel is allowed to make it:
 * reads and writes that move fewer bytes than asked (down to one), and
 * EINTR from calls that would block, from a fixed seed.  Regular files,
 * terminals and other descriptors are left alone, so that file I/O stays
 * realistic.  The idea is dropbear's fuzz-wrapfd.c; the code is ours.
 *
 *   cc -O2 -shared -fPIC -o build/faults/faults.so tests/faults.c
 *   VS_FAULT_SEED=1 VS_FAULT_RATE=25 LD_PRELOAD=build/faults/faults.so PROG
 *
 * Env (read once, then removed with LD_PRELOAD itself, so that what the
 * program runs inherits neither):
 *   VS_FAULT_SEED=N    the PRNG seed (default 1); a child made by fork()
 *                      continues its parent's sequence
 *   VS_FAULT_RATE=P    percent of eligible calls that get a fault (default
 *                      25): EINTR or a short count
 *   VS_FAULT_EINTR=P   percent of those faults that are EINTR (default 25),
 *                      and only where the call could have blocked (a
 *                      blocking descriptor, poll with a timeout); never
 *                      twice in a row, so that a retry loop always makes
 *                      progress.  The others are cut short: half of them
 *                      to one byte, half to a length in [1, n-1]; never
 *                      a call on a pipe of PIPE_BUF bytes or fewer, which
 *                      the kernel moves whole
 *   VS_FAULT_STATS=F   at exit, append "faults: pid P stream N short N
 *                      eintr N other N" to F (calls on sockets and pipes;
 *                      cut short; failed with EINTR; on other descriptors)
 *
 * Wrapped: read write send recv sendto recvfrom readv writev recvmsg
 * sendmsg (and __read_chk, __recv_chk for _FORTIFY_SOURCE builds), poll,
 * accept accept4.  The real calls are made with syscall(2), so no dlsym
 * and no recursion.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int fault_rate = -1; /* -1: off (constructor not run) */
static int fault_eintr_rate = 25;
static int fault_last_eintr; /* the previous fault of a read or write was EINTR */
static int fault_last_wait;  /* the previous poll or accept got EINTR */
static uint64_t fault_rng = 1;
static unsigned long n_stream, n_short, n_eintr, n_other;
static char stats_path[256];

static uint64_t fault_next(void)
{
	/* xorshift64*: fast, and enough to pick faults */
	fault_rng ^= fault_rng >> 12;
	fault_rng ^= fault_rng << 25;
	fault_rng ^= fault_rng >> 27;
	return fault_rng * 0x2545F4914F6CDD1DULL;
}

/* 1 for a socket, 2 for a pipe, 0 for anything else */
static int fault_stream(int fd)
{
	struct stat st;
	if (syscall(SYS_newfstatat, fd, "", &st, AT_EMPTY_PATH) < 0)
		return 0;
	if (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode))
		return S_ISFIFO(st.st_mode) ? 2 : 1;
	n_other++;
	return 0;
}

static int fault_blocking(int fd)
{
	long fl = syscall(SYS_fcntl, fd, F_GETFL);
	return fl >= 0 && !(fl & O_NONBLOCK);
}

/* Decide for a call on fd moving n bytes (flags: send/recv flags).
 * Returns 0 for no fault, 1 with *k set for a short count, -1 for EINTR. */
static int fault_pick(int fd, size_t n, int flags, size_t *k)
{
	uint64_t r;
	int kind;
	if (fault_rate <= 0 || n == 0 || !(kind = fault_stream(fd)))
		return 0;
	n_stream++;
	r = fault_next();
	if (r % 100 >= (uint64_t)fault_rate)
		return 0;
	r >>= 8;
	if (r % 100 < (uint64_t)fault_eintr_rate && !fault_last_eintr && !(flags & MSG_DONTWAIT) &&
	    fault_blocking(fd)) {
		fault_last_eintr = 1;
		n_eintr++;
		return -1;
	}
	fault_last_eintr = 0;
	/* the kernel moves up to PIPE_BUF bytes through a pipe whole (and a
	 * packet pipe's reads are whole packets): no short count there */
	if (n < 2 || (kind == 2 && n <= PIPE_BUF))
		return 0;
	r >>= 8;
	*k = r % 2 ? 1 : 1 + (size_t)((r >> 1) % (n - 1));
	n_short++;
	return 1;
}

/* EINTR for a call that moves no bytes (poll, accept): a quarter of the
 * EINTR share of faults, never twice in a row.  Its memory is its own: a
 * poll between two reads must not make the second read's EINTR "not in
 * a row", or a loop that polls before it reads never gets a byte. */
static int fault_pick_eintr(void)
{
	if (fault_rate <= 0 || fault_last_wait ||
	    fault_next() % 10000 >= (uint64_t)(fault_rate * fault_eintr_rate / 4)) {
		fault_last_wait = 0;
		return 0;
	}
	fault_last_wait = 1;
	n_eintr++;
	return 1;
}

static ssize_t fault_eintr(void)
{
	errno = EINTR;
	return -1;
}

static size_t iov_total(const struct iovec *v, int cnt)
{
	size_t t = 0;
	int i;
	for (i = 0; i < cnt; i++)
		t += v[i].iov_len;
	return t;
}

/* Copy of v[0..cnt) holding only the first k bytes; returns its count. */
static int iov_cut(struct iovec *out, const struct iovec *v, int cnt, size_t k)
{
	int i;
	for (i = 0; i < cnt && k; i++) {
		out[i] = v[i];
		if (out[i].iov_len > k)
			out[i].iov_len = k;
		k -= out[i].iov_len;
	}
	return i;
}

ssize_t read(int fd, void *buf, size_t n)
{
	size_t k = n;
	int f = fault_pick(fd, n, 0, &k);
	if (f < 0)
		return fault_eintr();
	return syscall(SYS_read, fd, buf, k);
}

ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		abort();
	return read(fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	size_t k = n;
	int f = fault_pick(fd, n, 0, &k);
	if (f < 0)
		return fault_eintr();
	return syscall(SYS_write, fd, buf, k);
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t tolen)
{
	size_t k = n;
	int f = fault_pick(fd, n, flags, &k);
	if (f < 0)
		return fault_eintr();
	return syscall(SYS_sendto, fd, buf, k, flags, to, tolen);
}

ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	return sendto(fd, buf, n, flags, NULL, 0);
}

ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *fromlen)
{
	size_t k = n;
	int f = fault_pick(fd, n, flags, &k);
	if (f < 0)
		return fault_eintr();
	return syscall(SYS_recvfrom, fd, buf, k, flags, from, fromlen);
}

ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	return recvfrom(fd, buf, n, flags, NULL, NULL);
}

ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	if (n > buflen)
		abort();
	return recvfrom(fd, buf, n, flags, NULL, NULL);
}

static ssize_t fault_iov(long nr, int fd, const struct iovec *v, int cnt)
{
	size_t k = 0;
	int f;
	if (cnt < 0 || cnt > IOV_MAX)
		return syscall(nr, fd, v, cnt);
	f = fault_pick(fd, iov_total(v, cnt), 0, &k);
	if (f < 0)
		return fault_eintr();
	if (f > 0) {
		struct iovec cut[IOV_MAX];
		return syscall(nr, fd, cut, iov_cut(cut, v, cnt, k));
	}
	return syscall(nr, fd, v, cnt);
}

ssize_t readv(int fd, const struct iovec *v, int cnt) { return fault_iov(SYS_readv, fd, v, cnt); }
ssize_t writev(int fd, const struct iovec *v, int cnt) { return fault_iov(SYS_writev, fd, v, cnt); }

static ssize_t fault_msg(long nr, int fd, struct msghdr *m, int flags)
{
	size_t k = 0;
	int f;
	if (!m || m->msg_iovlen > IOV_MAX)
		return syscall(nr, fd, m, flags);
	f = fault_pick(fd, iov_total(m->msg_iov, (int)m->msg_iovlen), flags, &k);
	if (f < 0)
		return fault_eintr();
	if (f > 0) {
		/* ancillary data (SCM_RIGHTS) travels with the first byte */
		struct iovec cut[IOV_MAX];
		struct msghdr c = *m;
		ssize_t r;
		c.msg_iov = cut;
		c.msg_iovlen = (size_t)iov_cut(cut, m->msg_iov, (int)m->msg_iovlen, k);
		r = syscall(nr, fd, &c, flags);
		m->msg_namelen = c.msg_namelen;
		m->msg_controllen = c.msg_controllen;
		m->msg_flags = c.msg_flags;
		return r;
	}
	return syscall(nr, fd, m, flags);
}

ssize_t recvmsg(int fd, struct msghdr *m, int flags) { return fault_msg(SYS_recvmsg, fd, m, flags); }
ssize_t sendmsg(int fd, const struct msghdr *m, int flags) { return fault_msg(SYS_sendmsg, fd, (struct msghdr *)m, flags); }

/* A signal (SIGCHLD, SIGWINCH) interrupts poll whatever SA_RESTART says. */
int poll(struct pollfd *p, nfds_t n, int timeout)
{
	if (timeout != 0 && fault_pick_eintr())
		return (int)fault_eintr();
	if (timeout >= 0) {
		struct timespec ts = { timeout / 1000, (long)(timeout % 1000) * 1000000 };
		return (int)syscall(SYS_ppoll, p, n, &ts, NULL, (size_t)8);
	}
	return (int)syscall(SYS_ppoll, p, n, NULL, NULL, (size_t)8);
}

int accept4(int fd, struct sockaddr *a, socklen_t *alen, int flags)
{
	if (fault_blocking(fd) && fault_pick_eintr())
		return (int)fault_eintr();
	return (int)syscall(SYS_accept4, fd, a, alen, flags);
}

int accept(int fd, struct sockaddr *a, socklen_t *alen) { return accept4(fd, a, alen, 0); }

static void fault_env_strip(void)
{
	static const char *const names[] = { "LD_PRELOAD", "VS_FAULT_SEED", "VS_FAULT_RATE", "VS_FAULT_EINTR",
					     "VS_FAULT_STATS" };
	size_t i;
	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		unsetenv(names[i]);
}

__attribute__((constructor)) static void fault_init(void)
{
	const char *s = getenv("VS_FAULT_SEED"), *r = getenv("VS_FAULT_RATE"), *f = getenv("VS_FAULT_STATS");
	const char *e = getenv("VS_FAULT_EINTR");
	fault_rng = s && *s ? strtoull(s, NULL, 0) : 1;
	fault_rng = fault_rng * 0x9E3779B97F4A7C15ULL + 1; /* never 0 */
	fault_rate = r && *r ? atoi(r) : 25;
	fault_eintr_rate = e && *e ? atoi(e) : 25;
	if (fault_rate > 100)
		fault_rate = 100;
	if (fault_eintr_rate > 100)
		fault_eintr_rate = 100;
	if (f && strlen(f) < sizeof stats_path)
		strcpy(stats_path, f);
	fault_env_strip();
}

static char *fault_utoa(char *p, unsigned long v)
{
	char t[24];
	int i = 0;
	do t[i++] = (char)('0' + v % 10); while ((v /= 10));
	while (i)
		*p++ = t[--i];
	return p;
}

__attribute__((destructor)) static void fault_fini(void)
{
	char b[160], *p = b;
	const char *lab[] = { "faults: pid ", " stream ", " short ", " eintr ", " other " };
	unsigned long v[] = { (unsigned long)getpid(), n_stream, n_short, n_eintr, n_other };
	int fd, i;
	if (!stats_path[0])
		return;
	for (i = 0; i < 5; i++) {
		p = stpcpy(p, lab[i]);
		p = fault_utoa(p, v[i]);
	}
	*p++ = '\n';
	fd = (int)syscall(SYS_openat, AT_FDCWD, stats_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		syscall(SYS_write, fd, b, (size_t)(p - b));
		syscall(SYS_close, fd);
	}
}
