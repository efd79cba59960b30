/* fan.c - one command on many guests through the hub, as pdsh, pssh -i
 * and parallel --tag run one: `vsock-shell @web1,@web2 -- CMD`, or
 * --all.  A controller child per guest runs the very session code a
 * single guest gets (one connection straight to its agent, handed out
 * by the hub), at most -P at a time; their output comes back here
 * through pipes and goes out line by line, tagged with the guest, or
 * with --json as one object per guest once it is done.  Memory stays
 * bounded: a line buffer per stream, and for --json the first FAN_KEEP
 * bytes of each.
 *
 * The summary status follows pssh: 0 when every command succeeded;
 * else 3 when a session was interrupted (its controller killed by a
 * signal, or never started because we were), else 4 when a guest could
 * not be reached (a session's status 255), else 5 (a command's status
 * was not 0). */
#include "vsh.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAN_PAR 32     /* sessions at a time, by default */
#define FAN_LINE 8192  /* a longer line goes out in pieces, each tagged */
#define FAN_KEEP 65536 /* --json: the output kept of each stream */

struct stream {
	int fd;                 /* the child's stdout or stderr; -1 at its end */
	char *buf;              /* the line so far; --json: what is kept */
	size_t len;
	unsigned long long bytes;
};

struct job {
	pid_t pid;              /* 0: a free slot */
	const char *name;       /* as the hub knows it: NAME or CID */
	char tag[80];           /* @NAME */
	long t0;
	struct stream s[2];     /* its stdout and stderr */
};

static struct {
	struct job *jobs;
	int njobs;
	int sig[2];             /* signals, as bytes (the self-pipe) */
	int stop;               /* a signal came: no more sessions start */
	int broken;             /* our own output went away */
	int interrupted, unreached, failed;
} fan;

static void on_signal(int sig)
{
	char c = (char)sig;
	int e = errno;
	if (write(fan.sig[1], &c, 1) < 0) {
		/* full: a wakeup is pending anyway */
	}
	errno = e;
}

int fan_wanted(const struct opts *o)
{
	return o->mode == M_EXEC &&
	       (o->all || o->json || o->par || (o->have_target && o->target[0] == '@' && strchr(o->target, ',')));
}

/* What a fan-out cannot do, said before anything starts. */
static void fan_check(struct opts *o)
{
	int i;
	if (!o->all && !(o->have_target && o->target[0] == '@'))
		usage_error(o, "--all, -P and --json run a command on guests through the hub: give @NAME,@NAME... or --all");
	if (o->all && o->listen)
		usage_error(o, "--all goes through the hub; --listen waits for an agent itself");
	if (o->legacy)
		usage_error(o, "--legacy speaks to one agent directly, not to guests through the hub");
	if (!o->ncmd)
		usage_error(o, "running on many guests takes a COMMAND (no login shell on several at once)");
	if (o->pty == 1)
		usage_error(o, "-t: sessions on many guests have no terminal");
	for (i = 0; i < o->nxfer; i++)
		if (!o->xfers[i].upload)
			usage_error(o, "-d on many guests would write one local file from each: use cp @NAME for each guest");
}

/* Out, whole or not at all: a reader that went away stops every
 * session (as one session ends when its output cannot be written). */
static void out_write(int fd, struct iovec *v, int n)
{
	int i;
	if (fan.broken)
		return;
	if (vs_writevall(fd, v, n) == 0)
		return;
	fan.broken = 1;
	fan.stop = 1;
	for (i = 0; i < fan.njobs; i++)
		if (fan.jobs[i].pid > 0)
			kill(fan.jobs[i].pid, SIGTERM);
}

/* A line (or a piece of one) of stream k, tagged, with its newline. */
static void line_emit(struct job *j, int k)
{
	struct stream *s = &j->s[k];
	struct iovec v[3] = { { j->tag, strlen(j->tag) }, { ": ", 2 }, { s->buf, s->len } };
	if (s->buf[s->len - 1] != '\n')
		s->buf[s->len++] = '\n'; /* the buffer has room for it */
	v[2].iov_len = s->len;
	out_write(k ? 2 : 1, v, 3);
	s->len = 0;
}

/* Output from a guest's session: tagged lines, or (--json) kept. */
static void stream_feed(struct opts *o, struct job *j, int k, const char *p, size_t n)
{
	struct stream *s = &j->s[k];
	size_t i;
	s->bytes += n;
	if (o->json) {
		if (s->len < FAN_KEEP) {
			size_t take = n < FAN_KEEP - s->len ? n : FAN_KEEP - s->len;
			memcpy(s->buf + s->len, p, take);
			s->len += take;
		}
		return;
	}
	for (i = 0; i < n; i++) {
		s->buf[s->len++] = p[i];
		if (p[i] == '\n' || s->len == FAN_LINE)
			line_emit(j, k);
	}
}

static void stream_read(struct opts *o, struct job *j, int k)
{
	static char b[65536];
	ssize_t r = read(j->s[k].fd, b, sizeof b);
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (r > 0) {
		stream_feed(o, j, k, b, (size_t)r);
		return;
	}
	close(j->s[k].fd);
	j->s[k].fd = -1;
	if (!o->json && j->s[k].len)
		line_emit(j, k); /* the last line, without its newline */
}

/* The child: the session of one guest, as `vsock-shell @NAME` runs it,
 * stdin from /dev/null, its output into the pipes. */
static void job_child(struct opts *o, struct job *j, int out, int err, int (*one)(struct opts *))
{
	static const int sigs[] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP };
	int nul = open("/dev/null", O_RDONLY | O_CLOEXEC), i;
	if (nul < 0 || dup2(nul, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(EX_CONN);
	/* no exec follows: what is ours goes by hand, or the other
	 * sessions' pipes would not end with them */
	for (i = 0; i < fan.njobs; i++)
		if (fan.jobs[i].pid > 0) {
			close(fan.jobs[i].s[0].fd);
			close(fan.jobs[i].s[1].fd);
		}
	close(fan.sig[0]);
	close(fan.sig[1]);
	for (i = 0; i < 4; i++)
		signal(sigs[i], SIG_DFL);
	o->at = j->name;
	o->target = j->tag;
	o->have_target = 1;
	o->all = o->json = o->par = 0;
	o->nostdin = 1;
	o->pty = 0;
	exit(one(o));
}

static void job_start(struct opts *o, struct job *j, const char *name, int (*one)(struct opts *))
{
	int po[2], pe[2], k;
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
		die_sys("unable to create a pipe");
	j->name = name;
	snprintf(j->tag, sizeof j->tag, "@%s", name);
	fflush(NULL);
	j->pid = fork();
	if (j->pid < 0)
		die_sys("unable to fork");
	if (j->pid == 0) {
		close(po[0]);
		close(pe[0]);
		job_child(o, j, po[1], pe[1], one);
	}
	close(po[1]);
	close(pe[1]);
	j->s[0].fd = po[0];
	j->s[1].fd = pe[0];
	for (k = 0; k < 2; k++) {
		j->s[k].buf = xmalloc(o->json ? FAN_KEEP : FAN_LINE + 1);
		j->s[k].len = 0;
		j->s[k].bytes = 0;
	}
	j->t0 = vs_now_ms();
}

/* A guest's session is over: counted, and said (--json: its object). */
static void job_done(struct opts *o, struct job *j, int st)
{
	int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), k;
	long ms = vs_now_ms() - j->t0;
	if (WIFSIGNALED(st))
		fan.interrupted++;
	else if (status == EX_CONN)
		fan.unreached++;
	else if (status)
		fan.failed++;
	if (o->json) {
		fputc('{', stdout);
		json_str(stdout, "target", j->tag, strlen(j->tag), 1);
		printf("\"status\":%d,\"duration\":%ld.%03ld,", status, ms / 1000, ms % 1000);
		for (k = 0; k < 2; k++) {
			json_str(stdout, k ? "stderr" : "stdout", j->s[k].buf, j->s[k].len, 1);
			printf("\"%s_bytes\":%llu,", k ? "stderr" : "stdout", j->s[k].bytes);
		}
		printf("\"truncated\":%s}\n", j->s[0].bytes > j->s[0].len || j->s[1].bytes > j->s[1].len ? "true" : "false");
		fflush(stdout);
	} else if (status && !o->quiet) {
		warnx("%s: status %d%s", j->tag, status, WIFSIGNALED(st) ? " (interrupted)" : "");
	}
	for (k = 0; k < 2; k++)
		free(j->s[k].buf);
	j->pid = 0;
}

/* Signals: no more sessions start; SIGTERM and SIGHUP go on to the
 * running ones (SIGINT and SIGQUIT from a terminal reach them already:
 * they share our process group, and forward them to their commands). */
static void signals_read(void)
{
	char c;
	int i;
	while (read(fan.sig[0], &c, 1) == 1) {
		fan.stop = 1;
		if (c == SIGTERM || c == SIGHUP)
			for (i = 0; i < fan.njobs; i++)
				if (fan.jobs[i].pid > 0)
					kill(fan.jobs[i].pid, c);
	}
}

static void signals_catch(void)
{
	static const int sigs[] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP };
	struct sigaction sa;
	int i;
	if (pipe2(fan.sig, O_CLOEXEC | O_NONBLOCK) < 0)
		die_sys("unable to create a pipe");
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	for (i = 0; i < 4; i++)
		sigaction(sigs[i], &sa, NULL);
}

/* Wait for output or a signal, and take what came. */
static void fan_poll(struct opts *o)
{
	struct pollfd p[1 + 2 * 256];
	int n = 1, i, k;
	p[0] = (struct pollfd){ fan.sig[0], POLLIN, 0 };
	for (i = 0; i < fan.njobs; i++)
		for (k = 0; k < 2; k++)
			if (fan.jobs[i].pid > 0 && fan.jobs[i].s[k].fd >= 0)
				p[n++] = (struct pollfd){ fan.jobs[i].s[k].fd, POLLIN, 0 };
	if (poll(p, (nfds_t)n, -1) < 0) {
		if (errno == EINTR)
			return;
		die_sys("unable to wait for the sessions");
	}
	if (p[0].revents)
		signals_read();
	for (n = 1, i = 0; i < fan.njobs; i++)
		for (k = 0; k < 2; k++)
			if (fan.jobs[i].pid > 0 && fan.jobs[i].s[k].fd >= 0 && p[n++].revents)
				stream_read(o, &fan.jobs[i], k);
}

int fan_run(struct opts *o, int (*one)(struct opts *))
{
	struct targets t;
	int next = 0, running = 0, i;
	fan_check(o);
	hub_targets(o, 1, 0, &t);
	if (!t.n) {
		if (!o->quiet)
			warnx("no guest is connected: nothing to run");
		return 0;
	}
	fan.njobs = o->par ? o->par : FAN_PAR;
	if (fan.njobs > t.n)
		fan.njobs = t.n;
	fan.jobs = xmalloc((size_t)fan.njobs * sizeof *fan.jobs);
	memset(fan.jobs, 0, (size_t)fan.njobs * sizeof *fan.jobs);
	signals_catch();
	for (;;) {
		for (i = 0; i < fan.njobs && !fan.stop && next < t.n; i++)
			if (!fan.jobs[i].pid) {
				job_start(o, &fan.jobs[i], t.name[next++], one);
				running++;
			}
		if (!running)
			break;
		fan_poll(o);
		for (i = 0; i < fan.njobs; i++) {
			struct job *j = &fan.jobs[i];
			int st;
			if (j->pid <= 0 || j->s[0].fd >= 0 || j->s[1].fd >= 0)
				continue;
			/* its output ended: the controller is on its way out */
			while (waitpid(j->pid, &st, 0) < 0)
				if (errno != EINTR)
					die_sys("unable to wait for a session");
			job_done(o, j, st);
			running--;
		}
	}
	fan.interrupted += t.n - next; /* never started: a signal came */
	if (fan.broken || fflush(stdout) != 0)
		return 128 + SIGPIPE;
	return fan.interrupted ? 3 : fan.unreached ? 4 : fan.failed ? 5 : 0;
}
