/*
 * tpty - a small expect: run a command on a fresh pseudo-terminal and
 * drive it from a script.  The suite uses it to test the interactive side
 * of vsock-shell (raw mode, resize, Ctrl-C, escapes, exit status, and the
 * terminal left as it was found).
 *
 *   tpty [-r ROWS] [-c COLS] [-t SECS] [-T SECS] [-o LOG] [-v] SCRIPT -- COMMAND [ARG...]
 *
 *   -r ROWS, -c COLS  initial window size (default 24 x 80)
 *   -t SECS           timeout of each expect, count and wait (default 10)
 *   -T SECS           hard limit for the whole run (default 60): on
 *                     expiry the command's process group is killed and
 *                     tpty exits 1
 *   -o LOG            append everything the command writes to LOG
 *   -v                trace each script line on stderr
 *   SCRIPT            a file of commands, or - for standard input
 *
 * Exit status 0 when the script ran to its end, 1 with a message on
 * stderr at the first failing line (showing the output seen so far), 2
 * on usage errors.  The command runs as a session leader with the pty
 * slave as its controlling terminal and its stdin, stdout and stderr;
 * tpty keeps its own descriptor of the slave, which is how termios-save
 * and termios-check see the terminal's settings as the command leaves
 * them.  At the end of the script a command still running gets SIGHUP,
 * then SIGKILL after 2 s.
 *
 * Script lines (blank lines and lines starting with # are ignored).  TEXT
 * is the rest of the line after one space, with C escapes: \r \n \t \e
 * (ESC) \\ \s (space) \xHH and octal \NNN (\003 is Ctrl-C, \004 Ctrl-D,
 * \032 Ctrl-Z, \034 Ctrl-\).
 *
 *   send TEXT         write TEXT to the terminal
 *   line TEXT         write TEXT and a carriage return (the Enter key)
 *   expect TEXT       wait until the output not yet consumed contains
 *                     TEXT; consume the output up to the end of the match
 *   expect-re ERE     the same with a POSIX extended regular expression
 *                     (C escapes apply; any other \X is left to regcomp)
 *                     (NUL bytes in the output become \001 once an
 *                     expect-re has looked at them)
 *   resize ROWS COLS  TIOCSWINSZ on the master: the kernel sends SIGWINCH
 *                     to the terminal's foreground process group
 *   sleep MS          sleep, still collecting output
 *   signal SIG        kill(2) the command (SIG is a name such as TERM,
 *                     KILL, INT, HUP, WINCH, or a number)
 *   count BYTES       wait until at least BYTES bytes have arrived since
 *                     the last match, then consume everything so far
 *   tally CHARS       from here on, count the consumed output bytes that
 *                     are among CHARS (escapes allowed)
 *   tally-is N        fail unless exactly N such bytes have been consumed
 *                     (use after an expect of a marker that follows the
 *                     data: it is exact whatever CR/LF translation did)
 *   timeout SECS      change the timeout of the lines that follow
 *   wait STATUS       wait for the command to exit; STATUS is an exit
 *                     code, "signal SIG" or "any"
 *   termios-save      remember the terminal's termios as they were when
 *                     the command started (taken before the fork: the
 *                     command may change them before this line is read)
 *   termios-check     fail unless the termios equals the remembered one
 *   termios-changed   fail if it still equals the remembered one (proves
 *                     that the command did change it, e.g. to raw mode)
 *   echo TEXT         print TEXT on stderr (a note in the test log)
 *
 * Built with glibc (cc) and with musl-gcc -static: no forkpty, no libutil.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define BUF_CAP (256 * 1024) /* unconsumed output kept for matching */

static int master = -1, slave = -1, logfd = -1;
static pid_t child = -1;
static int child_done, child_status;
static int verbose;
static long step_ms = 10000;
static const char *script_name = "-";
static int lineno;

static char buf[BUF_CAP + 1];
static size_t blen;       /* unconsumed output bytes in buf */
static size_t searched;   /* substring search already covered buf[0..searched) */
static unsigned long long arrived; /* bytes since the last consume-all */

static unsigned char tally_set[256];
static int tally_on;
static unsigned long long tally_n;

static struct termios saved_tio, start_tio;
static int have_saved;

/* ---- dying ---- */

static void child_kill(void)
{
	int i;
	if (child <= 0 || child_done)
		return;
	kill(-child, SIGHUP);
	kill(child, SIGHUP);
	for (i = 0; i < 200; i++) {
		if (waitpid(child, &child_status, WNOHANG) == child) {
			child_done = 1;
			break;
		}
		usleep(10000);
	}
	kill(-child, SIGKILL);
	kill(child, SIGKILL);
	if (!child_done && waitpid(child, &child_status, 0) == child)
		child_done = 1;
}

/* The tail of the unconsumed output, printable. */
static void show_seen(void)
{
	size_t from = blen > 600 ? blen - 600 : 0, i;
	fprintf(stderr, "tpty: output seen (%zu unconsumed bytes%s): \"", blen, from ? ", last 600" : "");
	for (i = from; i < blen; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c == '\n')
			fputs("\\n", stderr);
		else if (c == '\r')
			fputs("\\r", stderr);
		else if (c == '\\')
			fputs("\\\\", stderr);
		else if (c == '"')
			fputs("\\\"", stderr);
		else if (c < 32 || c >= 127)
			fprintf(stderr, "\\x%02x", c);
		else
			fputc(c, stderr);
	}
	fputs("\"\n", stderr);
}

static void fail(int seen, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void fail(int seen, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "tpty: %s:%d: ", script_name, lineno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (seen)
		show_seen();
	child_kill();
	exit(1);
}

static void usage_die(const char *msg)
{
	fprintf(stderr, "tpty: %s\nusage: tpty [-r ROWS] [-c COLS] [-t SECS] [-T SECS] [-o LOG] [-v] SCRIPT -- COMMAND [ARG...]\n", msg);
	exit(2);
}

/* The hard limit: only async-signal-safe calls here. */
static void on_alarm(int sig)
{
	static const char m[] = "tpty: hard time limit reached; killing the command\n";
	(void)sig;
	if (write(2, m, sizeof m - 1) < 0) {
		/* nothing to do */
	}
	if (child > 0) {
		kill(-child, SIGKILL);
		kill(child, SIGKILL);
	}
	_exit(1);
}

/* ---- time ---- */

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- the output buffer ---- */

/* Drop the first n unconsumed bytes, counting them for tally. */
static void consume(size_t n)
{
	size_t i;
	if (tally_on)
		for (i = 0; i < n; i++)
			if (tally_set[(unsigned char)buf[i]])
				tally_n++;
	memmove(buf, buf + n, blen - n);
	blen -= n;
	searched = searched > n ? searched - n : 0;
}

static void append(const char *p, size_t n)
{
	if (logfd >= 0 && write(logfd, p, n) < 0) {
		/* a log is a convenience */
	}
	arrived += n;
	while (n) {
		size_t k;
		if (blen == BUF_CAP)
			consume(BUF_CAP / 2); /* keep the newer half */
		k = BUF_CAP - blen < n ? BUF_CAP - blen : n;
		memcpy(buf + blen, p, k);
		blen += k;
		p += k;
		n -= k;
	}
}

static void reap(void)
{
	if (!child_done && waitpid(child, &child_status, WNOHANG) == child)
		child_done = 1;
}

/* Wait up to ms for output (or the command's exit) and take what is
 * there.  Returns the number of bytes read. */
static size_t pump(long ms)
{
	struct pollfd p = { master, POLLIN, 0 };
	char b[65536];
	size_t total = 0;
	ssize_t r;
	if (ms > 50)
		ms = 50; /* short naps: the exit of the command is polled */
	if (poll(&p, 1, (int)ms) < 0 && errno != EINTR)
		fail(0, "unable to poll: %s", strerror(errno));
	for (;;) {
		r = read(master, b, sizeof b);
		if (r > 0) {
			append(b, (size_t)r);
			total += (size_t)r;
			if (total >= 4 * sizeof b)
				break; /* let the caller look */
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		break; /* EAGAIN, or EIO once nobody holds the slave */
	}
	reap();
	return total;
}

/* ---- script text ---- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode C escapes of s into out; returns the length.  For a regular
 * expression (re) an escape that is not a C one keeps its backslash. */
static size_t unescape_as(const char *s, char *out, int re)
{
	size_t n = 0;
	while (*s) {
		int c = (unsigned char)*s++, k, v;
		if (c != '\\') {
			out[n++] = (char)c;
			continue;
		}
		c = (unsigned char)*s++;
		switch (c) {
		case 'r': out[n++] = '\r'; break;
		case 'n': out[n++] = '\n'; break;
		case 't': out[n++] = '\t'; break;
		case 'e': out[n++] = 27; break;
		case 's': out[n++] = ' '; break;
		case '\\':
			if (re)
				out[n++] = '\\'; /* a literal backslash for regcomp */
			out[n++] = '\\';
			break;
		case 'x':
			v = 0;
			for (k = 0; k < 2 && hexval((unsigned char)*s) >= 0; k++)
				v = v * 16 + hexval((unsigned char)*s++);
			if (!k)
				fail(0, "\\x without hex digits");
			out[n++] = (char)v;
			break;
		case 0:
			fail(0, "a lone backslash ends the line");
		default:
			if (c >= '0' && c <= '7') {
				v = c - '0';
				for (k = 1; k < 3 && *s >= '0' && *s <= '7'; k++)
					v = v * 8 + (*s++ - '0');
				out[n++] = (char)v;
			} else {
				if (re)
					out[n++] = '\\';
				out[n++] = (char)c; /* \" \' \~ ... : the character */
			}
		}
	}
	return n;
}

static size_t unescape(const char *s, char *out)
{
	return unescape_as(s, out, 0);
}

static long num_arg(const char *s, const char *what)
{
	char *end;
	long v;
	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || errno || (*end && *end != ' '))
		fail(0, "%s: not a number: '%s'", what, s);
	return v;
}

static const struct { const char *name; int sig; } signames[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "KILL", SIGKILL },
	{ "TERM", SIGTERM }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "USR1", SIGUSR1 },
	{ "USR2", SIGUSR2 }, { "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "TSTP", SIGTSTP },
	{ "WINCH", SIGWINCH },
};

static int sig_arg(const char *s)
{
	size_t i;
	if (!strncmp(s, "SIG", 3))
		s += 3;
	for (i = 0; i < sizeof signames / sizeof *signames; i++)
		if (!strcmp(s, signames[i].name))
			return signames[i].sig;
	if (*s >= '0' && *s <= '9')
		return (int)num_arg(s, "signal");
	fail(0, "unknown signal '%s'", s);
}

static void status_str(int st, char *b, size_t n)
{
	if (WIFEXITED(st))
		snprintf(b, n, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(b, n, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(b, n, "status 0x%x", st);
}

/* ---- commands ---- */

static void do_send(const char *text, int enter)
{
	static char out[8192];
	size_t n = unescape(text, out), off = 0;
	long long end = now_ms() + step_ms;
	if (enter)
		out[n++] = '\r';
	while (off < n) {
		ssize_t r = write(master, out + off, n - off);
		if (r > 0) {
			off += (size_t)r;
		} else if (r < 0 && errno != EAGAIN && errno != EINTR) {
			fail(1, "unable to write to the terminal: %s", strerror(errno));
		} else {
			/* the command does not read: keep draining its output */
			if (now_ms() > end)
				fail(1, "send: the command took no input for %ld ms", step_ms);
			pump(10);
		}
	}
}

/* Search buf for the pattern; on a match return 1 and set *end. */
static int match_sub(const char *pat, size_t plen, size_t *end)
{
	size_t from = searched >= plen ? searched - plen + 1 : 0;
	char *m;
	if (!plen) {
		*end = 0;
		return 1;
	}
	m = blen > from ? memmem(buf + from, blen - from, pat, plen) : NULL;
	searched = blen;
	if (!m)
		return 0;
	*end = (size_t)(m - buf) + plen;
	return 1;
}

static int match_re(regex_t *re, size_t *end)
{
	regmatch_t m;
	size_t i;
	for (i = 0; i < blen; i++)
		if (!buf[i])
			buf[i] = 1;
	buf[blen] = 0;
	if (regexec(re, buf, 1, &m, 0) != 0)
		return 0;
	*end = (size_t)m.rm_eo;
	return 1;
}

static void do_expect(const char *arg, int is_re)
{
	static char pat[8192];
	size_t plen = 0, end = 0;
	long long deadline = now_ms() + step_ms;
	regex_t re;
	if (is_re) {
		int e;
		pat[unescape_as(arg, pat, 1)] = 0;
		e = regcomp(&re, pat, REG_EXTENDED);
		if (e) {
			char msg[256];
			regerror(e, &re, msg, sizeof msg);
			fail(0, "bad regular expression '%s': %s", arg, msg);
		}
	} else {
		plen = unescape(arg, pat);
	}
	searched = 0;
	for (;;) {
		if (is_re ? match_re(&re, &end) : match_sub(pat, plen, &end))
			break;
		if (now_ms() > deadline)
			fail(1, "expect%s \"%s\": not seen within %ld ms", is_re ? "-re" : "", arg, step_ms);
		if (!pump(deadline - now_ms()) && child_done && !pump(0)) {
			/* it has ended and everything it wrote has been looked at */
			char st[64];
			status_str(child_status, st, sizeof st);
			fail(1, "expect%s \"%s\": the command ended (%s) without printing it", is_re ? "-re" : "", arg, st);
		}
	}
	if (is_re)
		regfree(&re);
	consume(end);
	arrived = blen;
}

static void do_count(const char *arg)
{
	long want = num_arg(arg, "count");
	long long deadline = now_ms() + step_ms;
	while (arrived < (unsigned long long)want) {
		if (now_ms() > deadline)
			fail(1, "count %ld: only %llu bytes within %ld ms", want, arrived, step_ms);
		if (child_done && !pump(0))
			fail(1, "count %ld: the command ended after %llu bytes", want, arrived);
		pump(deadline - now_ms());
	}
	consume(blen);
	arrived = 0;
}

static void do_wait(const char *arg)
{
	long long deadline = now_ms() + step_ms;
	char got[64], want[64];
	int ok;
	while (!child_done) {
		if (now_ms() > deadline)
			fail(1, "wait %s: the command is still running after %ld ms", arg, step_ms);
		pump(deadline - now_ms());
	}
	while (pump(0)) {
		/* take what it wrote last */
	}
	status_str(child_status, got, sizeof got);
	if (!strcmp(arg, "any")) {
		return;
	} else if (!strncmp(arg, "signal ", 7)) {
		int sig = sig_arg(arg + 7);
		ok = WIFSIGNALED(child_status) && WTERMSIG(child_status) == sig;
		snprintf(want, sizeof want, "killed by signal %d", sig);
	} else {
		long code = num_arg(arg, "wait");
		ok = WIFEXITED(child_status) && WEXITSTATUS(child_status) == code;
		snprintf(want, sizeof want, "exit status %ld", code);
	}
	if (!ok)
		fail(1, "wait: %s, want %s", got, want);
}

static void termios_diff(const struct termios *a, const struct termios *b)
{
	size_t i;
	if (a->c_iflag != b->c_iflag)
		fprintf(stderr, "tpty:   c_iflag 0%o -> 0%o\n", (unsigned)a->c_iflag, (unsigned)b->c_iflag);
	if (a->c_oflag != b->c_oflag)
		fprintf(stderr, "tpty:   c_oflag 0%o -> 0%o\n", (unsigned)a->c_oflag, (unsigned)b->c_oflag);
	if (a->c_cflag != b->c_cflag)
		fprintf(stderr, "tpty:   c_cflag 0%o -> 0%o\n", (unsigned)a->c_cflag, (unsigned)b->c_cflag);
	if (a->c_lflag != b->c_lflag)
		fprintf(stderr, "tpty:   c_lflag 0%o -> 0%o\n", (unsigned)a->c_lflag, (unsigned)b->c_lflag);
	for (i = 0; i < NCCS; i++)
		if (a->c_cc[i] != b->c_cc[i])
			fprintf(stderr, "tpty:   c_cc[%zu] %u -> %u\n", i, a->c_cc[i], b->c_cc[i]);
	if (cfgetispeed(a) != cfgetispeed(b) || cfgetospeed(a) != cfgetospeed(b))
		fprintf(stderr, "tpty:   speed changed\n");
}

static int termios_same(const struct termios *a, const struct termios *b)
{
	return a->c_iflag == b->c_iflag && a->c_oflag == b->c_oflag && a->c_cflag == b->c_cflag &&
	       a->c_lflag == b->c_lflag && !memcmp(a->c_cc, b->c_cc, sizeof a->c_cc) &&
	       cfgetispeed(a) == cfgetispeed(b) && cfgetospeed(a) == cfgetospeed(b);
}

/* what: 0 save, 1 check unchanged, 2 check changed */
static void do_termios(int what)
{
	struct termios t;
	/* glibc's struct has more c_cc than the kernel's: zero the rest */
	memset(&t, 0, sizeof t);
	if (tcgetattr(slave, &t) < 0)
		fail(0, "unable to read the terminal's termios: %s", strerror(errno));
	if (what == 0) {
		saved_tio = start_tio;
		have_saved = 1;
		return;
	}
	if (!have_saved)
		fail(0, "termios-check without termios-save");
	if (what == 2) {
		if (termios_same(&saved_tio, &t))
			fail(1, "termios-changed: the terminal's settings are still the saved ones");
		return;
	}
	if (!termios_same(&saved_tio, &t)) {
		fprintf(stderr, "tpty: %s:%d: termios-check: the terminal's settings changed:\n", script_name, lineno);
		termios_diff(&saved_tio, &t);
		fail(0, "termios-check failed");
	}
}

static void do_tally(const char *arg)
{
	static char set[512];
	size_t n = unescape(arg, set), i;
	memset(tally_set, 0, sizeof tally_set);
	for (i = 0; i < n; i++)
		tally_set[(unsigned char)set[i]] = 1;
	tally_on = 1;
	tally_n = 0;
}

static void run_line(char *l)
{
	char *arg;
	size_t n = strlen(l);
	if (n && l[n - 1] == '\n')
		l[--n] = 0;
	if (!*l || *l == '#')
		return;
	arg = strchr(l, ' ');
	if (arg)
		*arg++ = 0;
	else
		arg = l + n; /* "" */
	if (verbose)
		fprintf(stderr, "tpty: %s:%d: %s %s\n", script_name, lineno, l, arg);
	if (!strcmp(l, "send")) {
		do_send(arg, 0);
	} else if (!strcmp(l, "line")) {
		do_send(arg, 1);
	} else if (!strcmp(l, "expect")) {
		do_expect(arg, 0);
	} else if (!strcmp(l, "expect-re")) {
		do_expect(arg, 1);
	} else if (!strcmp(l, "resize")) {
		char *c = strchr(arg, ' ');
		struct winsize ws;
		memset(&ws, 0, sizeof ws);
		if (!c)
			fail(0, "resize needs ROWS COLS");
		ws.ws_row = (unsigned short)num_arg(arg, "rows");
		ws.ws_col = (unsigned short)num_arg(c + 1, "cols");
		if (ioctl(master, TIOCSWINSZ, &ws) < 0)
			fail(0, "unable to resize the terminal: %s", strerror(errno));
	} else if (!strcmp(l, "sleep")) {
		long long end = now_ms() + num_arg(arg, "sleep");
		while (now_ms() < end)
			pump(end - now_ms());
	} else if (!strcmp(l, "signal")) {
		if (child_done)
			fail(1, "signal: the command has already ended");
		if (kill(child, sig_arg(arg)) < 0)
			fail(0, "unable to signal the command: %s", strerror(errno));
	} else if (!strcmp(l, "count")) {
		do_count(arg);
	} else if (!strcmp(l, "tally")) {
		do_tally(arg);
	} else if (!strcmp(l, "tally-is")) {
		long want = num_arg(arg, "tally-is");
		if (!tally_on)
			fail(0, "tally-is without tally");
		if (tally_n != (unsigned long long)want)
			fail(1, "tally-is: counted %llu bytes, want %ld", tally_n, want);
	} else if (!strcmp(l, "timeout")) {
		step_ms = num_arg(arg, "timeout") * 1000;
	} else if (!strcmp(l, "wait")) {
		do_wait(arg);
	} else if (!strcmp(l, "termios-save")) {
		do_termios(0);
	} else if (!strcmp(l, "termios-check")) {
		do_termios(1);
	} else if (!strcmp(l, "termios-changed")) {
		do_termios(2);
	} else if (!strcmp(l, "echo")) {
		fprintf(stderr, "tpty: %s\n", arg);
	} else {
		fail(0, "unknown command '%s'", l);
	}
}

/* ---- the terminal and the command ---- */

static void pty_open(int rows, int cols)
{
	struct winsize ws;
	const char *name;
	master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0) /* an early guest may have devpts but no /dev/ptmx */
		master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || !(name = ptsname(master))) {
		perror("tpty: unable to open a pseudo-terminal");
		exit(1);
	}
	slave = open(name, O_RDWR | O_NOCTTY);
	if (slave < 0) {
		fprintf(stderr, "tpty: unable to open %s: %s\n", name, strerror(errno));
		exit(1);
	}
	memset(&ws, 0, sizeof ws);
	ws.ws_row = (unsigned short)rows;
	ws.ws_col = (unsigned short)cols;
	if (ioctl(master, TIOCSWINSZ, &ws) < 0) {
		perror("tpty: unable to set the window size");
		exit(1);
	}
	fcntl(master, F_SETFD, FD_CLOEXEC);
	fcntl(slave, F_SETFD, FD_CLOEXEC);
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
}

static void spawn(char **argv)
{
	memset(&start_tio, 0, sizeof start_tio);
	if (tcgetattr(slave, &start_tio) < 0) {
		perror("tpty: unable to read the terminal's termios");
		exit(1);
	}
	child = fork();
	if (child < 0) {
		perror("tpty: unable to fork");
		exit(1);
	}
	if (child == 0) {
		sigset_t none;
		int i;
		setsid();
		if (ioctl(slave, TIOCSCTTY, 0) < 0) {
			perror("tpty: unable to make the pty the controlling terminal");
			_exit(127);
		}
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
		for (i = 1; i < NSIG; i++)
			signal(i, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(argv[0], argv);
		fprintf(stderr, "tpty: unable to execute %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
}

int main(int argc, char **argv)
{
	int rows = 24, cols = 80, hard = 60, i;
	const char *script;
	FILE *f;
	char line[8192];

	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--"))
			break;
		if (!strcmp(o, "-v")) {
			verbose = 1;
			continue;
		}
		if (i + 1 >= argc)
			usage_die("option needs an argument");
		if (!strcmp(o, "-r"))
			rows = atoi(argv[++i]);
		else if (!strcmp(o, "-c"))
			cols = atoi(argv[++i]);
		else if (!strcmp(o, "-t"))
			step_ms = atol(argv[++i]) * 1000;
		else if (!strcmp(o, "-T"))
			hard = atoi(argv[++i]);
		else if (!strcmp(o, "-o")) {
			logfd = open(argv[++i], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
			if (logfd < 0) {
				fprintf(stderr, "tpty: unable to open %s: %s\n", argv[i], strerror(errno));
				exit(2);
			}
		} else
			usage_die("unknown option");
	}
	if (i >= argc)
		usage_die("no SCRIPT");
	script = script_name = argv[i++];
	if (i >= argc || strcmp(argv[i], "--") || i + 1 >= argc)
		usage_die("expected -- COMMAND after SCRIPT");
	i++;
	if (rows <= 0 || cols <= 0 || step_ms <= 0 || hard <= 0)
		usage_die("sizes and times must be positive");
	f = strcmp(script, "-") ? fopen(script, "re") : stdin;
	if (!f) {
		fprintf(stderr, "tpty: unable to open %s: %s\n", script, strerror(errno));
		exit(2);
	}

	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm((unsigned)hard);
	pty_open(rows, cols);
	spawn(argv + i);

	while (fgets(line, sizeof line, f)) {
		lineno++;
		run_line(line);
	}
	if (f != stdin)
		fclose(f);
	child_kill();
	return 0;
}
