/* xfer.c - file transfer on the host: -u/-d pairs and the cp command,
 * each transfer a session of its own, with a progress bar on a terminal.
 * The engine is transfer.h, shared with the agent; here the host is the
 * strict receiver, trusting no name the guest sends. */
#include "vsh.h"
#include "transfer.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct xf *cur;  /* for the signal handler: its temporary file */
static int show_progress;
static volatile sig_atomic_t bar_open; /* a progress line without its newline */

/* SIGINT, SIGTERM, SIGHUP: leave nothing behind, end the bar's line, and
 * exit 128+N.  Only async-signal-safe calls here (unlinkat, tcsetattr,
 * write); the unnamed temporary file of a download needs nothing. */
static void on_signal(int sig)
{
	if (cur && cur->tmpdir >= 0 && cur->tmp[0])
		unlinkat(cur->tmpdir, cur->tmp, 0);
	tty_restore();
	if (bar_open)
		(void)!write(2, "\n", 1);
	_exit(128 + sig);
}

static void end_bar(void)
{
	if (bar_open)
		fputc('\n', stderr);
	bar_open = 0;
}

static const char *human(double v, char *b, size_t n)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;
	while (v >= 1024 && i < 4)
		v /= 1024, i++;
	snprintf(b, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
	return b;
}

/* name  42%  1.2 GiB  512.0 MiB/s  ETA 0:03 -- at most ten times a second.
 * The name is the guest's choice in a download: escaped (vs_esc), and
 * cut by vs_esc, which never splits an escape or a character. */
static void progress(const char *name, uint64_t done, uint64_t size, int end)
{
	static double t0, last;
	static char cur_name[64], shown[29];
	double t = (double)now_ms() / 1000, rate;
	char a[32], r[32], eta[32] = "";
	const char *base;
	if (!show_progress)
		return;
	base = strrchr(name, '/');
	base = base ? base + 1 : name;
	if (strncmp(cur_name, base, sizeof cur_name - 1)) {
		snprintf(cur_name, sizeof cur_name, "%s", base);
		vs_esc(shown, sizeof shown, base, strlen(base), 0);
		t0 = t;
		last = 0;
	}
	if (!end && t - last < 0.1)
		return;
	last = t;
	/* before the write: a signal may land as soon as the line is out */
	bar_open = 1;
	rate = t > t0 ? (double)done / (t - t0) : 0;
	if (size != XF_UNKNOWN && size && rate > 0 && !end) {
		double s = (double)(size - done) / rate;
		snprintf(eta, sizeof eta, "ETA %d:%02d", (int)s / 60, (int)s % 60);
	}
	if (size != XF_UNKNOWN && size)
		fprintf(stderr, "\r%-28s %3d%% %11s %11s/s %-9s", shown, (int)(done * 100 / size),
		        human((double)done, a, sizeof a), human(rate, r, sizeof r), eta);
	else
		fprintf(stderr, "\r%-28s      %11s %11s/s %-9s", shown, human((double)done, a, sizeof a),
		        human(rate, r, sizeof r), eta);
	if (end) {
		end_bar();
		cur_name[0] = 0;
	}
}

/* What was left out, in words that fit the count. */
static void warn_skipped(const struct xf *x)
{
	if (x->specials == 1)
		warnx("skipped 1 special file (a device, socket or FIFO)");
	else if (x->specials)
		warnx("skipped %u special files (devices, sockets, FIFOs)", x->specials);
	if (x->unsafe == 1)
		warnx("skipped 1 symlink that points outside the tree (--safe-links)");
	else if (x->unsafe)
		warnx("skipped %u symlinks that point outside the tree (--safe-links)", x->unsafe);
}

/* Returns 0, EX_XFER for a failed transfer, EX_CONN for a lost connection. */
static int xfer_one(struct opts *o, struct agent *ag, int upload, const char **src, int nsrc, const char *dst)
{
	static uint8_t req[VS_FRAME_MAX];
	static char want[256];
	struct xf x;
	struct sigaction sa;
	uint32_t flags = (o->recursive ? XF_RECURSIVE : 0) | (o->preserve ? XF_PRESERVE : 0) |
	                 (o->mkdirs ? XF_MKDIRS : 0) | (o->safe_links ? XF_SAFELINKS : 0);
	int alg = o->sha256 ? XF_SHA256 : XF_XXH64;
	int fd, n, r = 0, i;
	for (i = 0; i < (upload ? 1 : nsrc); i++) {
		fd = agent_session(o, ag, upload ? "put" : "get", upload ? dst : src[i]);
		agent_require(ag, upload ? VS_CAP_PUT : VS_CAP_GET, upload ? "uploads" : "downloads");
		n = xf_request(req, sizeof req, flags, alg, upload ? dst : src[i]);
		if (n < 0)
			die("remote path too long");
		if (vs_send(fd, upload ? VS_PUT : VS_GET, req, (size_t)n) < 0)
			die_sys("unable to send the transfer request");
		xf_init(&x, fd, flags, alg);
		x.in = 0;
		x.out = 1;
		x.progress = progress;
		/* a test knob: the receiver's fallback for filesystems without O_TMPFILE */
		x.no_tmpfile = getenv("VSOCK_SHELL_NO_TMPFILE") != NULL;
		/* a download yields exactly the one entry asked for, under the
		 * name the agent's sender gives it (an over-long one matches
		 * nothing) */
		want[0] = 0;
		if (!upload)
			(void)xf_topname(src[i], want, sizeof want);
		x.expect = upload ? NULL : want;
		cur = &x;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_signal;
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		if (upload) {
			int k;
			for (k = 0; k < nsrc && r == 0; k++)
				r = xf_send(&x, src[k]);
			if (r == 0)
				r = xf_done(&x);
		} else {
			r = xf_recv(&x, dst);
		}
		cur = NULL;
		close(fd);
		end_bar();
		if (r < 0) {
			warnx("%s%s", x.remote_err ? "remote: " : "", x.err);
			return x.lost && !x.remote_err ? EX_CONN : EX_XFER;
		}
		warn_skipped(&x);
		vinfo("%s %u files, %llu bytes", upload ? "uploaded" : "downloaded", x.files, (unsigned long long)x.bytes);
	}
	return 0;
}

/* A local source that cannot be sent is said before any session is
 * opened, in the words the transfer would use: nothing is copied, and no
 * agent is woken, for a typo. */
static int source_check(const struct opts *o, const char *path)
{
	struct stat st;
	int fd;
	if (!strcmp(path, "-"))
		return 0;
	if (stat(path, &st) < 0) {
		warn_sys("%s", path);
		return -1;
	}
	if (S_ISDIR(st.st_mode) && !o->recursive) {
		warnx("%s: Is a directory (use -r)", path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
		warnx("%s: not a regular file, directory or symlink", path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		warn_sys("%s", path);
		return -1;
	}
	close(fd);
	return 0;
}

int xfer_run(struct opts *o, struct agent *ag)
{
	int i, bad = 0;
	for (i = 0; i < o->nxfer; i++)
		if (o->xfers[i].upload && source_check(o, o->xfers[i].local) < 0)
			bad++;
	if (bad)
		return EX_XFER;
	show_progress = !o->quiet && isatty(2);
	for (i = 0; i < o->nxfer; i++) {
		struct xfer *t = &o->xfers[i];
		const char *src = t->upload ? t->local : t->remote;
		int r = xfer_one(o, ag, t->upload, &src, 1, t->upload ? t->remote : t->local);
		if (r)
			return r;
	}
	return 0;
}

/* vsock-shell cp [options] TARGET|--listen SRC... DST, parsed by main.c */
int cp_run(struct opts *o)
{
	struct agent ag = AGENT_INIT;
	const char **paths = o->paths;
	int np = o->npaths, i, upload, remote, r;
	if (!o->have_target && !o->listen)
		usage_error(o, "missing TARGET (or --listen), SRC and DST");
	if (np == 0)
		usage_error(o, "missing SRC and DST");
	if (np == 1)
		usage_error(o, "missing the destination after '%s'", paths[0]);
	upload = paths[np - 1][0] == ':';
	for (i = 0, remote = 0; i < np; i++)
		remote += paths[i][0] == ':';
	if (!remote)
		die("cp: nothing is remote: mark remote paths with ':' (as in :/etc/hostname), or give the guest with "
		    "them (@NAME:/etc/hostname)");
	for (i = 0; i < np - 1; i++)
		if ((paths[i][0] == ':') == upload)
			die("cp: either every source is remote (':PATH') or the destination is, not both");
	for (i = 0; i < np; i++) {
		if (paths[i][0] == ':') {
			paths[i]++;
			if (!*paths[i])
				paths[i] = ".";
		}
	}
	for (i = 0, r = 0; upload && i < np - 1; i++)
		r |= source_check(o, paths[i]);
	if (r)
		return EX_XFER;
	show_progress = !o->quiet && isatty(2);
	r = xfer_one(o, &ag, upload, paths, np - 1, paths[np - 1]);
	agent_close(&ag, r == 0);
	return r;
}
