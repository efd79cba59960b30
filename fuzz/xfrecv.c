/*
 * xfrecv - the strict file receiver (transfer.h: xf_recv with x.expect,
 * as host/xfer.c runs it for a download), which takes a
 * tree of names, links and contents from a guest that may be hostile.
 *
 * Input: byte 0 is the request: bits 0-1 the destination (the scratch
 * directory, the same with a slash, a new name in it, an existing file
 * in it), bits 2-5 -r, -p, --mkdir, --safe-links, bit 6 SHA-256 (else
 * XXH64), bit 7 named temporary files (no O_TMPFILE); byte 1 the name
 * asked for (x.expect: f, d, out, exist).  The rest is the sender's
 * frames (STAT, DATA, HOLE, END, ..., DONE), fed through a socketpair by
 * a thread that also reads and drops the receiver's OK and ERROR frames,
 * so neither side ever waits on the other.
 *
 * The receiver writes under TMPDIR/vsfuzz-xfrecv-PID/: scratch/ is the
 * destination's directory (holding a file, exist, and a symlink, out ->
 * ../sdir), and beside it are a sentinel file, a sentinel directory with
 * a file in it, and a symlink to that directory.  After each input:
 * nothing outside scratch/ may have been created, changed, linked or
 * chmodded (every entry compared by lstat, the parent and sdir listed);
 * scratch/ itself keeps its mode and owner; no name but the one asked for
 * is new in scratch/, and exist and out are untouched unless they are
 * that name; no temporary file (.NAME.vsh-*) remains anywhere under it;
 * without -p no entry under it has a setuid, setgid or sticky bit;
 * no descriptor is left open; the receiver's last word is the OK to DONE
 * when it succeeded, else its ERROR (unless the sender's ERROR ended it).
 * Then scratch/ is emptied and set up again.  fsync is a no-op here: it
 * costs milliseconds on a disk and guards only against a power cut.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

static int fuzz_fsync(int fd) { return fcntl(fd, F_GETFD) < 0 ? -1 : 0; }
#define fsync(fd) fuzz_fsync(fd)
#include "transfer.h"
#undef fsync

static char base[256], scratch[300];
static const char *const outside[] = { ".", "sentinel", "sdir", "sdir/inner", "slink" };
#define NOUT (sizeof outside / sizeof outside[0])
static struct stat before[NOUT], sbefore, exist_before, out_before;

static void put_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	CHECK(fd >= 0 && vs_writeall(fd, text, strlen(text)) == 0 && close(fd) == 0);
}

static void rm_inside(int dfd, const char *const *keep);

/* Remove name in dfd, a whole tree if it is a directory, following no link. */
static void rm_entry(int dfd, const char *name)
{
	struct stat st;
	int sub;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		CHECK(errno == ENOENT);
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		CHECK(unlinkat(dfd, name, 0) == 0);
		return;
	}
	fchmodat(dfd, name, 0700, 0); /* a mode 0 from the sender */
	sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	CHECK(sub >= 0);
	rm_inside(sub, NULL);
	CHECK(unlinkat(dfd, name, AT_REMOVEDIR) == 0);
}

/* Remove what is inside the directory dfd (and close it), but the names
 * in keep (NULL-terminated, or NULL). */
static void rm_inside(int dfd, const char *const *keep)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	CHECK(d != NULL);
	while ((e = readdir(d))) {
		const char *const *k;
		for (k = keep; k && *k && strcmp(*k, e->d_name); k++)
			;
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && !(k && *k))
			rm_entry(dirfd(d), e->d_name);
	}
	closedir(d);
}

static int same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_mode == b->st_mode && a->st_uid == b->st_uid && a->st_gid == b->st_gid &&
	       a->st_nlink == b->st_nlink && a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* scratch/ as it was; exist and out are made again only when they
 * changed: creating inodes is what costs most here */
static void scratch_reset(void)
{
	static const char *const keep[] = { "exist", "out", NULL };
	struct stat st;
	int fd = open(scratch, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	CHECK(fd >= 0);
	if (fstatat(fd, "exist", &st, AT_SYMLINK_NOFOLLOW) < 0 || !same_stat(&st, &exist_before)) {
		char p[400];
		rm_entry(fd, "exist");
		snprintf(p, sizeof p, "%s/exist", scratch);
		put_file(p, "an existing file\n", 0644);
		CHECK(fstatat(fd, "exist", &exist_before, AT_SYMLINK_NOFOLLOW) == 0);
	}
	if (fstatat(fd, "out", &st, AT_SYMLINK_NOFOLLOW) < 0 || !same_stat(&st, &out_before)) {
		rm_entry(fd, "out");
		CHECK(symlinkat("../sdir", fd, "out") == 0);
		CHECK(fstatat(fd, "out", &out_before, AT_SYMLINK_NOFOLLOW) == 0);
	}
	rm_inside(fd, keep);
}

static void cleanup(void)
{
	int fd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		rm_inside(fd, NULL);
		rmdir(base);
	}
}

static void snapshot(struct stat *st)
{
	char p[400];
	size_t i;
	for (i = 0; i < NOUT; i++) {
		snprintf(p, sizeof p, "%s/%s", base, outside[i]);
		CHECK(lstat(p, &st[i]) == 0);
	}
}

/* The sender's side of the socket: write the input, read and drop what
 * the receiver says, keep the type of its last frame.  One thread for the
 * whole run (a thread per input costs more than most inputs), started by
 * a byte on go[1], saying it is done by a byte on done[1]. */
static int go[2], done[2];
static struct feed {
	int fd;
	const uint8_t *p;
	size_t n;
	int last;          /* type of the receiver's last frame, 0 if none */
	size_t last_len;
} feed;

static void feed_one(struct feed *f)
{
	static uint8_t in[65536];
	size_t off = 0, have = 0;
	int open_w = 1;
	if (f->n == 0)
		shutdown(f->fd, SHUT_WR), open_w = 0;
	for (;;) {
		struct pollfd p = { f->fd, (short)(POLLIN | (open_w ? POLLOUT : 0)), 0 };
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p.revents & POLLOUT) {
			ssize_t k = send(f->fd, f->p + off, f->n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (k > 0)
				off += (size_t)k;
			else if (k < 0 && errno != EAGAIN && errno != EINTR)
				open_w = 0; /* the receiver is gone */
			if (off == f->n && open_w) {
				shutdown(f->fd, SHUT_WR);
				open_w = 0;
			}
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t k = recv(f->fd, in + have, sizeof in - have, MSG_DONTWAIT);
			struct vs_hdr h;
			const uint8_t *q;
			size_t o = 0;
			if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
				break;
			if (k < 0)
				continue;
			have += (size_t)k;
			/* whole frames: remember the last one */
			while (fuzz_frame_at(in, have, &o, &h, &q) == 1) {
				f->last = h.type;
				f->last_len = h.len;
			}
			CHECK(vs_hdr_parse(in + o, have - o, &h) >= 0);
			memmove(in, in + o, have - o);
			have -= o;
		}
	}
}

static void *feeder(void *arg)
{
	char c;
	(void)arg;
	for (;;) {
		ssize_t k = read(go[0], &c, 1);
		if (k < 0 && errno == EINTR)
			continue;
		CHECK(k == 1);
		feed_one(&feed);
		CHECK(vs_writeall(done[1], &c, 1) == 0);
	}
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *t = getenv("TMPDIR");
	char p[400];
	signal(SIGPIPE, SIG_IGN);
	snprintf(base, sizeof base, "%s/vsfuzz-xfrecv-%d", t && *t ? t : "/tmp", (int)getpid());
	CHECK(mkdir(base, 0755) == 0 || errno == EEXIST);
	cleanup();
	CHECK(mkdir(base, 0755) == 0);
	atexit(cleanup);
	snprintf(p, sizeof p, "%s/sentinel", base);
	put_file(p, "outside: must not change\n", 0644);
	snprintf(p, sizeof p, "%s/sdir", base);
	CHECK(mkdir(p, 0755) == 0);
	snprintf(p, sizeof p, "%s/sdir/inner", base);
	put_file(p, "outside too\n", 0644);
	snprintf(p, sizeof p, "%s/slink", base);
	CHECK(symlink("sdir", p) == 0);
	snprintf(scratch, sizeof scratch, "%s/scratch", base);
	CHECK(mkdir(scratch, 0755) == 0);
	scratch_reset();
	snapshot(before);
	CHECK(lstat(scratch, &sbefore) == 0);
	{
		pthread_t th;
		CHECK(pipe2(go, O_CLOEXEC) == 0 && pipe2(done, O_CLOEXEC) == 0);
		CHECK(pthread_create(&th, NULL, feeder, NULL) == 0 && pthread_detach(th) == 0);
	}
	return 0;
}

/* The names in a directory, but for . and .., must be exactly `want`. */
static void check_names(const char *dir, const char *const *want, size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t seen = 0, i;
	CHECK(d != NULL);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		for (i = 0; i < n && strcmp(e->d_name, want[i]); i++)
			;
		if (i == n)
			fprintf(stderr, "unexpected entry %s/%s\n", dir, e->d_name);
		CHECK(i < n);
		seen++;
	}
	closedir(d);
	CHECK(seen == n);
}

/* No temporary file under dfd, at any depth; with plain, no entry with a
 * setuid, setgid or sticky bit either (what arrives without -p). */
static void check_no_tmp(int dfd, int plain)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	CHECK(d != NULL);
	while ((e = readdir(d))) {
		struct stat st;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (e->d_name[0] == '.' && strstr(e->d_name, ".vsh-"))
			fprintf(stderr, "temporary file left: %s\n", e->d_name);
		CHECK(!(e->d_name[0] == '.' && strstr(e->d_name, ".vsh-")));
		CHECK(fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0);
		if (plain && (st.st_mode & 07000))
			fprintf(stderr, "special bits without -p: %s %o\n", e->d_name, (unsigned)st.st_mode);
		CHECK(!plain || !(st.st_mode & 07000));
		if (S_ISDIR(st.st_mode)) {
			int sub;
			fchmodat(dirfd(d), e->d_name, 0700, 0);
			sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			CHECK(sub >= 0);
			check_no_tmp(sub, plain);
		}
	}
	closedir(d);
}

/* Top entries (a name without '/', not a DIREND) the sender announced
 * before its DONE, read off the input as PROTOCOL.md 7.2 has STAT. */
static int tops(const uint8_t *p, size_t n)
{
	size_t pos = 0;
	int k = 0;
	for (;;) {
		struct vs_hdr h;
		const uint8_t *q;
		if (fuzz_frame_at(p, n, &pos, &h, &q) != 1 || h.type == VS_DONE)
			return k;
		if (h.type == VS_STAT && h.len > 36 && memchr(q + 36, 0, h.len - 36) && vs_get32(q) != XF_DIREND &&
		    !strchr((const char *)q + 36, '/'))
			k++;
	}
}

/* the input is 2 bytes of options, then frames (fuzz.h) */
FUZZ_FRAMES_HOOKS(2)

static const char *const expects[4] = { "f", "d", "out", "exist" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct xf x;
	struct stat after[NOUT], st;
	char c = 0, dest[400], p[400];
	const char *expect, *newname;
	int sv[2], probe, fd, r, cfg;
	size_t i;

	if (size < 2)
		return 0;
	cfg = data[0];
	expect = expects[data[1] & 3];
	switch (cfg & 3) {
	case 0: snprintf(dest, sizeof dest, "%s", scratch); newname = expect; break;
	case 1: snprintf(dest, sizeof dest, "%s/", scratch); newname = expect; break;
	case 2: snprintf(dest, sizeof dest, "%s/new", scratch); newname = "new"; break;
	default: snprintf(dest, sizeof dest, "%s/exist", scratch); newname = "exist"; break;
	}

	probe = dup(0);
	close(probe);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	xf_init(&x, sv[0], (uint32_t)(cfg >> 2) & 0xf, cfg & 64 ? XF_SHA256 : XF_XXH64);
	x.expect = expect;
	x.no_tmpfile = !!(cfg & 128);
	memset(&feed, 0, sizeof feed);
	feed.fd = sv[1], feed.p = data + 2, feed.n = size - 2;
	CHECK(vs_writeall(go[1], &c, 1) == 0);
	r = xf_recv(&x, dest);
	close(sv[0]); /* the feeder sees the end */
	CHECK(vs_readall(done[0], &c, 1) == 1);
	close(sv[1]);

	/* nothing left open */
	fd = dup(0);
	close(fd);
	CHECK(fd == probe);
	/* its last word */
	if (r == 0) {
		CHECK(feed.last == VS_OK && feed.last_len == 4);
		/* a download is the one entry asked for, once */
		CHECK(x.ntop == 1 && tops(data + 2, size - 2) == 1);
	} else {
		CHECK(x.err[0] != 0);
		CHECK(x.remote_err || feed.last == VS_ERROR);
	}
	/* no temporary file anywhere, no special bit without -p */
	fd = open(scratch, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	CHECK(fd >= 0);
	check_no_tmp(fd, !(x.flags & XF_PRESERVE));
	/* nothing outside changed */
	snapshot(after);
	for (i = 0; i < NOUT; i++) {
		if (!same_stat(&before[i], &after[i]))
			fprintf(stderr, "changed outside the destination: %s/%s\n", base, outside[i]);
		CHECK(same_stat(&before[i], &after[i]));
	}
	{
		static const char *const top_names[] = { "sentinel", "sdir", "slink", "scratch" };
		static const char *const sdir_names[] = { "inner" };
		check_names(base, top_names, 4);
		snprintf(p, sizeof p, "%s/sdir", base);
		check_names(p, sdir_names, 1);
	}
	CHECK(lstat(scratch, &st) == 0);
	CHECK(st.st_ino == sbefore.st_ino && st.st_mode == sbefore.st_mode && st.st_uid == sbefore.st_uid &&
	      st.st_gid == sbefore.st_gid);
	/* only the name asked for is new; the others are as they were */
	{
		const char *names[3] = { "exist", "out", newname };
		size_t n = strcmp(newname, "exist") && strcmp(newname, "out") ? 3 : 2;
		snprintf(p, sizeof p, "%s/%s", scratch, newname);
		if (n == 3 && lstat(p, &st) < 0)
			n = 2; /* nothing arrived under it */
		check_names(scratch, names, n);
		if (strcmp(newname, "exist")) {
			snprintf(p, sizeof p, "%s/exist", scratch);
			CHECK(lstat(p, &st) == 0 && same_stat(&st, &exist_before));
		}
		if (strcmp(newname, "out")) {
			snprintf(p, sizeof p, "%s/out", scratch);
			CHECK(lstat(p, &st) == 0 && same_stat(&st, &out_before));
		}
	}
	scratch_reset();
	return 0;
}
