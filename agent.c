/*
 * vsock-agent - the guest side of vsock-shell.
 *
 * Dial mode (default): connect to the host (CID 2, port 1024) and serve
 * what it asks.  Listen mode: accept connections from the host.  Either way
 * the host speaks first, and its first bytes tell the protocol: the framed
 * protocol's magic, or a vsock_guest_exec legacy command.
 *
 * One session per connection, each in its own process; each command in its
 * own session (setsid) so that it dies with its connection.
 */
#define VS_IMPLEMENTATION
#include "protocol.h"
#include "sha256.h"
#include "transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define AGENT_VERSION "0.1"
#define BUFCAP (2 * (VS_HDR + VS_FRAME_MAX))
#define LEGACY_IDLE_MS 250

static struct vs_addr dial_addr = { VS_ADDR_VSOCK, VS_CID_HOST, VS_PORT_DEFAULT, "" };
static int opt_persistent, opt_verbose, opt_retry;
static uint32_t opt_allow = VS_CID_HOST;
static int opt_allow_any;
static int sigpipe_fd[2] = { -1, -1 };

/* ---- messages: one way to say things, one way to die ---- */

/* A formatter for the few conversions the agent uses (%s %c %d %u %ld
 * %lu %zd %zu %%).  musl's printf pulls in floating point formatting,
 * about a sixth of this binary's size budget. */
static size_t fmt_num(char *b, size_t cap, size_t n, unsigned long v, int neg)
{
	char t[24];
	int i = 0;
	if (neg && n < cap)
		b[n++] = '-';
	do t[i++] = (char)('0' + v % 10); while ((v /= 10));
	while (i && n < cap)
		b[n++] = t[--i];
	return n;
}

static size_t vfmt(char *b, size_t cap, const char *f, va_list ap)
{
	size_t n = 0;
	for (; *f && n < cap; f++) {
		int lng = 0;
		if (*f != '%') {
			b[n++] = *f;
			continue;
		}
		f++;
		if (*f == 'l' || *f == 'z')
			lng = 1, f++;
		if (*f == 's') {
			const char *s = va_arg(ap, const char *);
			while (s && *s && n < cap)
				b[n++] = *s++;
		} else if (*f == 'c') {
			b[n++] = (char)va_arg(ap, int);
		} else if (*f == 'd') {
			long v = lng ? va_arg(ap, long) : va_arg(ap, int);
			n = fmt_num(b, cap, n, v < 0 ? 0UL - (unsigned long)v : (unsigned long)v, v < 0);
		} else if (*f == 'u') {
			n = fmt_num(b, cap, n, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 0);
		} else {
			b[n++] = *f ? *f : '%';
			if (!*f)
				break;
		}
	}
	return n;
}

static size_t fmt(char *b, size_t cap, const char *f, ...)
{
	va_list ap;
	size_t n;
	va_start(ap, f);
	n = vfmt(b, cap - 1, f, ap);
	va_end(ap);
	b[n] = 0;
	return n;
}

/* errno survives: callers decide on it after logging (127 vs 126 after a
 * failed exec), and a write retried after EINTR would leave EINTR. */
static void logv(const char *f, va_list ap, int err)
{
	char b[512];
	int saved = errno;
	size_t n = vfmt(b, sizeof b - 100, "vsock-agent: ", ap);
	n += vfmt(b + n, sizeof b - 100 - n, f, ap);
	if (err)
		n += fmt(b + n, 98, ": %s", strerror(err));
	b[n++] = '\n';
	vs_writeall(2, b, n);
	errno = saved;
}

static void warnx(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	logv(f, ap, 0);
	va_end(ap);
}

static void warn_sys(const char *f, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, f);
	logv(f, ap, e);
	va_end(ap);
}

static void info(const char *f, ...)
{
	va_list ap;
	if (!opt_verbose)
		return;
	va_start(ap, f);
	logv(f, ap, 0);
	va_end(ap);
}

static void die(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	logv(f, ap, 0);
	va_end(ap);
	exit(1);
}

static void die_sys(const char *f, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, f);
	logv(f, ap, e);
	va_end(ap);
	exit(1);
}

static void send_error(int fd, uint32_t code, const char *f, ...)
{
	char b[400];
	va_list ap;
	size_t n;
	va_start(ap, f);
	n = vfmt(b, sizeof b - 1, f, ap);
	va_end(ap);
	b[n] = 0;
	vs_nonblock(fd, 0);
	vs_send_error(fd, code, b);
}

/* ---- signals: SIGCHLD becomes a byte on a pipe ---- */

static void on_sigchld(int sig)
{
	int e = errno;
	char c = (char)sig;
	if (write(sigpipe_fd[1], &c, 1) < 0) {
		/* pipe full: a wakeup is already pending */
	}
	errno = e;
}

static void sigchld_pipe(void)
{
	struct sigaction sa;
	if (pipe2(sigpipe_fd, O_CLOEXEC | O_NONBLOCK) < 0)
		die_sys("unable to create signal pipe");
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigchld;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
}

static void sigpipe_drain(void)
{
	char b[64];
	while (read(sigpipe_fd[0], b, sizeof b) > 0)
		;
}

/* Reset what a command must not inherit from us. */
static void signals_reset(void)
{
	sigset_t none;
	int s;
	for (s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* ---- connections ---- */

static int dial(const struct vs_addr *a, int retry)
{
	char as[160];
	unsigned delay = 50;
	int said = 0;
	for (;;) {
		int fd = vs_connect(a);
		if (fd >= 0)
			return fd;
		if (!retry) {
			warn_sys("unable to connect to %s%s", vs_addr_str(a, as, sizeof as),
			         errno == ECONNRESET || errno == ECONNREFUSED ? " (is the host listening?)" : "");
			return -1;
		}
		if (!said++)
			warnx("waiting for the host at %s", vs_addr_str(a, as, sizeof as));
		usleep(delay * 1000);
		if (delay < 2000)
			delay *= 2;
	}
}

/* The host speaks first.  Returns 1 when it opened with the framed magic,
 * 0 for legacy with the bytes read so far in b[*n], -1 on EOF/error.  In
 * disposable mode a first byte other than 0xff is decisive; the persistent
 * length prefix needs both bytes. */
static int sniff(int fd, uint8_t *b, size_t *n)
{
	size_t want = opt_persistent ? 2 : 1;
	ssize_t r = vs_readall(fd, b, want);
	if (r <= 0)
		return -1;
	*n = (size_t)r;
	if ((size_t)r < want)
		return 0;
	if (b[0] != (uint8_t)VS_MAGIC[0] || (want == 2 && b[1] != (uint8_t)VS_MAGIC[1]))
		return 0;
	r = vs_readall(fd, b + want, VS_MAGIC_LEN - want);
	if (r < 0)
		return -1;
	*n += (size_t)r;
	return *n == VS_MAGIC_LEN && !memcmp(b, VS_MAGIC, VS_MAGIC_LEN);
}

/* ---- legacy vsock_guest_exec protocol ---- */

/* Run one legacy command with the agent's own stdout/stderr, as the
 * original did; stdin is /dev/null so the command cannot steal the
 * console the agent may have been started on. */
static int legacy_run(const char *cmd)
{
	pid_t pid;
	int st;
	info("legacy: running '%s'", cmd);
	pid = fork();
	if (pid < 0) {
		warn_sys("unable to fork");
		return 1;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		if (nul > 0) {
			dup2(nul, 0);
			close(nul);
		}
		signals_reset();
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		warn_sys("unable to execute /bin/sh");
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int legacy_check(const uint8_t *cmd, size_t n)
{
	if (memchr(cmd, 0, n)) {
		warnx("legacy command contains a NUL byte; refused");
		return -1;
	}
	return 0;
}

/* Disposable: one command, at most 2048 bytes, that ends at EOF (or
 * half-close), or when the host has been quiet for LEGACY_IDLE_MS after
 * its last byte: the original read one packet, so a host that writes and
 * keeps the connection open must work, and one whose command arrives in
 * several packets must get it whole. */
static int legacy_disposable(int fd, uint8_t *b, size_t n)
{
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t r;
		if (n > VS_LEGACY_MAX) {
			warnx("legacy command longer than %d bytes; refused", VS_LEGACY_MAX);
			return 1;
		}
		r = poll(&p, 1, LEGACY_IDLE_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			break;
		r = read(fd, b + n, VS_LEGACY_MAX + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	if (legacy_check(b, n) < 0)
		return 1;
	b[n] = 0; /* n <= 2048: the caller's buffer has room */
	return legacy_run((char *)b);
}

/* Persistent: [u16 LE length][command] until the host disconnects. */
static int legacy_persistent(int fd, uint8_t *b, size_t n)
{
	char cmd[VS_LEGACY_MAX + 1];
	for (;;) {
		size_t len;
		ssize_t r;
		if (n < 2) {
			r = vs_readall(fd, b + n, 2 - n);
			if (r < 0)
				die_sys("unable to read from host");
			if (r == 0 && n == 0)
				return 0;
			if ((size_t)r < 2 - n)
				die("host closed inside a length prefix");
		}
		n = 0;
		len = vs_get16(b);
		if (len > VS_LEGACY_MAX) {
			warnx("legacy command length %zu exceeds %d; refused, closing", len, VS_LEGACY_MAX);
			return 1;
		}
		r = vs_readall(fd, cmd, len);
		if (r < 0)
			die_sys("unable to read from host");
		if ((size_t)r != len) {
			warnx("host closed after %zd of %zu command bytes; not run", r, len);
			return 1;
		}
		if (legacy_check((uint8_t *)cmd, len) < 0)
			return 1;
		cmd[len] = 0;
		if (len)
			legacy_run(cmd);
	}
}

/* ---- framed sessions ---- */

static uint8_t rbuf[BUFCAP];   /* frames from the host */
static size_t roff, rlen;
static struct vs_q wq;         /* frames to the host */

struct sess {
	int sock;
	int in_w, out_r, err_r;   /* command's stdin, stdout, stderr (or -1) */
	int pty;                  /* pty master, or -1 */
	int pty_slave;            /* held so the master never sees EIO early */
	pid_t pid;                /* session leader; also its sid and pgid */
	int exited, status;
	const uint8_t *sin;       /* STDIN bytes not yet written */
	size_t sinlen;
	int sin_eof;              /* STDIN_EOF arrived: close after sin */
};

/* Blocking flush of everything queued (used at the end of a session). */
static int wflush(int fd)
{
	int r;
	vs_nonblock(fd, 0);
	r = vs_writeall(fd, wq.b + wq.off, wq.len - wq.off);
	wq.off = wq.len = 0;
	return r;
}

/* Parse a decimal number at *p, moving *p past it; -1 if none. */
static long num_scan(const char **p)
{
	long v = -1;
	while (**p == ' ')
		(*p)++;
	for (; **p >= '0' && **p <= '9'; (*p)++)
		v = (v < 0 ? 0 : v * 10) + (**p - '0');
	return v;
}

/* Session id of a process, from /proc/PID/stat ("pid (comm) S ppid pgrp
 * session ..."; comm may hold spaces and parentheses, so from the last
 * ')'). */
static long proc_sid(const char *pid)
{
	char path[64], st[512];
	const char *p;
	int fd, i;
	ssize_t r;
	fmt(path, sizeof path, "/proc/%s/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = read(fd, st, sizeof st - 1);
	close(fd);
	if (r <= 0)
		return -1;
	st[r] = 0;
	p = strrchr(st, ')');
	if (!p || !p[1] || !p[2])
		return -1;
	p += 3; /* ") S" */
	for (i = 0; i < 2; i++)
		num_scan(&p);
	return num_scan(&p);
}

/* Kill every process of the session: the group, and (where /proc is
 * mounted) anything that kept the session id but left the group. */
static void session_kill(pid_t sid, int sig)
{
	char d[4096];
	int fd;
	long n;
	if (sid <= 0)
		return;
	kill(-sid, sig);
	fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	/* getdents64 directly: opendir would bring malloc into the agent */
	while ((n = syscall(SYS_getdents64, fd, d, sizeof d)) > 0) {
		long off = 0;
		while (off < n) {
			unsigned short reclen = *(unsigned short *)(d + off + 16);
			const char *name = d + off + 19, *q = name;
			long pid = num_scan(&q);
			if (!*q && pid > 1 && pid != getpid() && proc_sid(name) == sid)
				kill((pid_t)pid, sig);
			off += reclen;
		}
	}
	close(fd);
}

/* Reap everything we can: the command and, as subreaper, its orphans. */
static void reap(struct sess *s)
{
	int st;
	pid_t p;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p == s->pid) {
			s->exited = 1;
			s->status = st;
		}
	}
}

static void reap_all(int ms)
{
	int st, i;
	for (i = 0; i < ms / 10; i++) {
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p < 0)
			return; /* ECHILD: nothing left */
		if (p == 0)
			usleep(10000);
	}
}

/* The host is gone or broke the protocol: the command's session dies. */
static void sess_abort(struct sess *s, const char *why)
{
	info("session %d: %s; killing it", (int)s->pid, why);
	if (s->pty >= 0)
		close(s->pty); /* hangup: SIGHUP to the terminal's session */
	if (!s->exited) {
		session_kill(s->pid, SIGHUP);
		session_kill(s->pid, SIGCONT);
		reap_all(200);
	}
	session_kill(s->pid, SIGKILL);
	reap_all(2000);
	exit(0);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The passwd entry of uid: fields 5 (home) and 6 (shell) into home and
 * shell, 0 (name) into user.  Parsed by hand: musl's getpwuid brings
 * malloc, stdio and an nscd client. */
static void passwd_lookup(uid_t uid, char *user, char *home, char *shell, size_t cap)
{
	static char b[8192];
	int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : vs_readall(fd, b, sizeof b - 1);
	char *line, *next;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	b[n] = 0;
	for (line = b; line && *line; line = next) {
		char *f[7];
		const char *q;
		int i;
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		for (i = 0; i < 7 && line; i++) {
			f[i] = line;
			line = strchr(line, ':');
			if (line)
				*line++ = 0;
		}
		q = f[2];
		if (i < 7 || num_scan(&q) != (long)uid)
			continue;
		fmt(user, cap, "%s", f[0]);
		fmt(home, cap, "%s", f[5]);
		fmt(shell, cap, "%s", f[6]);
		return;
	}
}

/* The command's environment: ours, then sane defaults for what is
 * missing, then the host's additions, which win. */
static char **env_build(struct vs_exec *e)
{
	static char *env[512];
	static char defs[5][300];
	extern char **environ;
	char user[96] = "", home[96] = "/", shell[96] = "/bin/sh";
	const char *names[5] = { "PATH", "HOME", "USER", "LOGNAME", "SHELL" };
	size_t n = 0;
	unsigned i, j;
	passwd_lookup(getuid(), user, home, shell, sizeof user);
	if (!*user && getuid() == 0)
		fmt(user, sizeof user, "root");
	if (!*shell || access(shell, X_OK) != 0)
		fmt(shell, sizeof shell, "/bin/sh");
	fmt(defs[0], sizeof defs[0], "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	fmt(defs[1], sizeof defs[1], "HOME=%s", *home ? home : "/");
	fmt(defs[2], sizeof defs[2], "USER=%s", user);
	fmt(defs[3], sizeof defs[3], "LOGNAME=%s", user);
	fmt(defs[4], sizeof defs[4], "SHELL=%s", shell);
	for (i = 0; environ[i] && n < 200; i++)
		env[n++] = environ[i];
	for (i = 0; i < 5; i++) {
		size_t k = strlen(names[i]);
		for (j = 0; j < n; j++)
			if (!strncmp(env[j], names[i], k) && env[j][k] == '=')
				break;
		if (j == n && (i < 2 || *user || i == 4))
			env[n++] = defs[i];
	}
	for (i = 0; i < e->envc; i++) {
		size_t k = (size_t)(strchr(e->envv[i], '=') - e->envv[i]) + 1;
		for (j = 0; j < n; j++)
			if (!strncmp(env[j], e->envv[i], k))
				break;
		env[j] = (char *)e->envv[i];
		if (j == n)
			n++;
	}
	env[n] = NULL;
	return env;
}

static const char *env_get(char **env, const char *name)
{
	size_t k = strlen(name);
	for (; *env; env++)
		if (!strncmp(*env, name, k) && (*env)[k] == '=')
			return *env + k + 1;
	return NULL;
}

/* Close every descriptor from `lo` up: ours are close-on-exec, but the
 * agent may have inherited others from whoever started it. */
static void fds_close_from(int lo)
{
	int fd;
	if (syscall(SYS_close_range, (unsigned)lo, ~0u, 0) == 0)
		return;
	for (fd = lo; fd < 1024; fd++) /* kernels before 5.9 */
		close(fd);
}

/* In the child: become the command.  Never returns. */
static void child_exec(struct vs_exec *e, int in, int out, int err, const char *slave)
{
	char **env = env_build(e);
	const char *shell = env_get(env, "SHELL"), *home = env_get(env, "HOME");
	setsid();
	if (slave) {
		int t = open(slave, O_RDWR);
		if (t < 0)
			_exit(126);
		ioctl(t, TIOCSCTTY, 0);
		in = out = err = t;
	}
	dup2(in, 0);
	dup2(out, 1);
	dup2(err, 2);
	if (slave && in > 2)
		close(in); /* the terminal is 0, 1 and 2; no fourth copy */
	fds_close_from(3);
	signals_reset();
	if (!shell || !*shell)
		shell = "/bin/sh";
	if (e->cwd && *e->cwd) {
		if (chdir(e->cwd) < 0) {
			warn_sys("unable to change directory to %s", e->cwd);
			_exit(126);
		}
	} else if (!home || chdir(home) < 0) {
		if (chdir("/") < 0)
			_exit(126);
	}
	if (e->flags & VS_EXEC_LOGIN) {
		const char *b = strrchr(shell, '/');
		char arg0[64];
		char *av[2] = { arg0, NULL };
		fmt(arg0, sizeof arg0, "-%s", b ? b + 1 : shell);
		execve(shell, av, env);
	} else if (e->flags & VS_EXEC_SHELL) {
		char *av[4] = { (char *)"sh", (char *)"-c", (char *)e->argv[0], NULL };
		execve(shell, av, env);
	} else {
		/* PATH search uses the command's PATH, not ours */
		environ = env;
		execvp(e->argv[0], (char *const *)e->argv);
	}
	warn_sys("unable to execute %s", e->flags & (VS_EXEC_LOGIN | VS_EXEC_SHELL) ? shell : e->argv[0]);
	_exit(errno == ENOENT ? 127 : 126);
}

/* devpts may not be mounted in an early initramfs: mount a private
 * instance and use its ptmx. */
static int pty_open_master(void)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m >= 0)
		return m;
	mkdir("/dev/pts", 0755);
	if (mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0 && errno != EBUSY)
		return -1;
	return open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
}

static int sess_spawn(struct sess *s, struct vs_exec *e)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	char slave[64];
	s->pty = s->pty_slave = s->in_w = s->out_r = s->err_r = -1;
	if (e->flags & VS_EXEC_PTY) {
		struct winsize ws = { e->rows, e->cols, 0, 0 };
		int no = 0;
		unsigned ptn;
		s->pty = pty_open_master();
		/* unlockpt and ptsname by hand: musl's ptsname uses snprintf */
		if (s->pty < 0 || ioctl(s->pty, TIOCSPTLCK, &no) < 0 || ioctl(s->pty, TIOCGPTN, &ptn) < 0)
			return -1;
		fmt(slave, sizeof slave, "/dev/pts/%u", ptn);
		if (ws.ws_row && ws.ws_col)
			ioctl(s->pty, TIOCSWINSZ, &ws);
		s->pty_slave = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (s->pty_slave < 0)
			return -1;
	} else if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0) {
		return -1;
	}
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0)
		child_exec(e, pin[0], pout[1], perr[1], s->pty >= 0 ? slave : NULL);
	if (s->pty >= 0) {
		s->in_w = s->out_r = s->pty;
	} else {
		close(pin[0]);
		close(pout[1]);
		close(perr[1]);
		s->in_w = pin[1];
		s->out_r = pout[0];
		s->err_r = perr[0];
		vs_nonblock(s->in_w, 1);
		vs_nonblock(s->out_r, 1);
		vs_nonblock(s->err_r, 1);
	}
	if (s->pty >= 0)
		vs_nonblock(s->pty, 1);
	info("session %d: started", (int)s->pid);
	return 0;
}

/* Read one chunk of command output into a frame; at its end, *fd = -1. */
static void pump_out(struct sess *s, int *fd, uint16_t type)
{
	ssize_t r;
	if (vs_q_room(&wq) < VS_HDR + VS_FRAME_MAX)
		return;
	r = read(*fd, vs_q_data(&wq), VS_FRAME_MAX);
	if (r > 0) {
		vs_q_commit(&wq, type, (size_t)r);
		return;
	}
	if (r < 0 && (errno == EINTR || (errno == EAGAIN && !s->exited)))
		return;
	/* EOF, EIO from a pty, or EAGAIN after the command has exited: what
	 * it wrote before exiting has been read */
	if (*fd == s->pty) {
		s->in_w = -1;
		close_fd(&s->pty);
		*fd = -1;
	} else {
		close_fd(fd);
	}
}

static void stdin_eof(struct sess *s)
{
	if (s->pty >= 0) {
		struct termios t;
		char c = tcgetattr(s->pty, &t) == 0 ? (char)t.c_cc[VEOF] : 4;
		if (write(s->pty, &c, 1) < 0) {
			/* the terminal is gone; the exit will follow */
		}
	} else {
		close_fd(&s->in_w);
	}
}

/* Type 0 never travels (the decoder refuses it): it marks a buffered
 * frame that was handled out of turn. */
#define FRAME_DONE 0

/* Handle the frames buffered from the host.  STDIN data waits until the
 * command has taken the chunk before it (STDIN_EOF too, to stay after
 * it), but SIGNAL, WINSIZE and PING are handled at once even behind stdin
 * that the command does not read: Ctrl-C must reach such a command. */
static void sess_frames(struct sess *s)
{
	size_t off = roff;
	int blocked = s->sinlen != 0;
	for (;;) {
		struct vs_hdr h;
		uint8_t *f = rbuf + off;
		const uint8_t *p = f + VS_HDR;
		int r;
		if (rlen - off >= VS_HDR && vs_get16(f + 4) == FRAME_DONE) {
			size_t sz = VS_HDR + vs_get32(f);
			if (off == roff)
				roff += sz;
			off += sz;
			continue;
		}
		r = vs_hdr_parse(f, rlen - off, &h);
		if (r < 0) {
			send_error(s->sock, VS_E_PROTO, "malformed frame header");
			sess_abort(s, "malformed frame");
		}
		if (r == 0 || rlen - off < VS_HDR + h.len)
			return;
		if (blocked && (h.type == VS_STDIN || h.type == VS_STDIN_EOF)) {
			off += VS_HDR + h.len; /* its turn comes when stdin drains */
			continue;
		}
		switch (h.type) {
		case VS_STDIN:
			if (s->in_w >= 0 && !s->sin_eof) {
				s->sin = p;
				s->sinlen = h.len;
				blocked = h.len != 0;
			}
			break;
		case VS_STDIN_EOF:
			s->sin_eof = 1;
			break;
		case VS_SIGNAL:
			if (h.len == 4) {
				uint32_t sig = vs_get32(p);
				pid_t g = s->pty >= 0 ? tcgetpgrp(s->pty) : s->pid;
				if (sig > 0 && sig < NSIG)
					kill(-(g > 0 ? g : s->pid), (int)sig);
			}
			break;
		case VS_WINSIZE:
			if (h.len == 8 && s->pty >= 0) {
				struct winsize ws = { vs_get16(p), vs_get16(p + 2), vs_get16(p + 4), vs_get16(p + 6) };
				ioctl(s->pty, TIOCSWINSZ, &ws);
			}
			break;
		case VS_PING:
			if (vs_q_put(&wq, VS_PONG, p, h.len < 8 ? h.len : 8) < 0)
				return;
			break;
		default:
			send_error(s->sock, VS_E_UNKNOWN, "unexpected message type %u in an exec session", h.type);
			sess_abort(s, "unexpected message");
		}
		if (off == roff)
			roff += VS_HDR + h.len;
		else
			vs_put16(f + 4, FRAME_DONE);
		off += VS_HDR + h.len;
	}
}

/* Room to read more from the host.  The buffer is compacted only while
 * no stdin chunk points into it. */
static size_t sess_rroom(struct sess *s)
{
	if (!s->sinlen) {
		if (roff == rlen)
			roff = rlen = 0;
		if (roff && BUFCAP - rlen < VS_HDR + VS_FRAME_MAX) {
			memmove(rbuf, rbuf + roff, rlen - roff);
			rlen -= roff;
			roff = 0;
		}
	}
	return BUFCAP - rlen;
}

static void sess_read_sock(struct sess *s)
{
	ssize_t r = read(s->sock, rbuf + rlen, BUFCAP - rlen);
	if (r > 0)
		rlen += (size_t)r;
	else if (r == 0)
		sess_abort(s, "host closed the connection");
	else if (errno != EAGAIN && errno != EINTR)
		sess_abort(s, "connection failed");
}

static void sess_write_stdin(struct sess *s)
{
	ssize_t r = write(s->in_w, s->sin, s->sinlen);
	if (r > 0) {
		s->sin += r;
		s->sinlen -= (size_t)r;
	} else if (r < 0 && errno != EAGAIN && errno != EINTR) {
		/* the command closed its stdin: drop what it will never read */
		s->sinlen = 0;
		if (s->pty < 0)
			close_fd(&s->in_w);
	}
}

static void sess_exit_frame(struct sess *s)
{
	uint8_t b[8];
	int st = s->status;
	vs_put32(b, WIFSIGNALED(st) ? VS_SIGNALED : VS_EXITED);
	vs_put32(b + 4, (uint32_t)(WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st)));
	vs_q_put(&wq, VS_EXIT, b, sizeof b);
}

static void sess_run(int sock, struct vs_exec *e)
{
	struct sess s;
	int probed = 0;
	memset(&s, 0, sizeof s);
	s.sock = sock;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigchld_pipe();
	if (sess_spawn(&s, e) < 0) {
		send_error(sock, VS_E_EXEC, "unable to start the command: %s", strerror(errno));
		exit(1);
	}
	vs_nonblock(sock, 1);
	for (;;) {
		struct pollfd p[5];
		int n = 0, isock, iout = -1, ierr = -1, iin = -1;
		size_t room;
		int done = s.exited && s.out_r < 0 && s.err_r < 0;
		if (done) {
			close_fd(&s.pty_slave);
			sess_exit_frame(&s);
			if (wflush(sock) < 0)
				sess_abort(&s, "connection failed");
			session_kill(s.pid, SIGKILL);
			reap_all(1000);
			info("session %d: done", (int)s.pid);
			exit(0);
		}
		isock = n;
		room = sess_rroom(&s);
		p[n++] = (struct pollfd){ sock, (short)((room ? POLLIN : probed ? 0 : POLLRDHUP) |
		                                        (wq.len > wq.off ? POLLOUT : 0)), 0 };
		p[n++] = (struct pollfd){ sigpipe_fd[0], POLLIN, 0 };
		if (s.out_r >= 0 && vs_q_room(&wq) >= VS_HDR + VS_FRAME_MAX)
			iout = n, p[n++] = (struct pollfd){ s.out_r, POLLIN, 0 };
		if (s.err_r >= 0 && vs_q_room(&wq) >= VS_HDR + VS_FRAME_MAX)
			ierr = n, p[n++] = (struct pollfd){ s.err_r, POLLIN, 0 };
		if (s.in_w >= 0 && s.sinlen)
			iin = n, p[n++] = (struct pollfd){ s.in_w, POLLOUT, 0 };
		/* once the command has exited, drain without waiting */
		if (poll(p, (nfds_t)n, s.exited ? 0 : -1) < 0 && errno != EINTR)
			die_sys("unable to poll");
		if (p[1].revents) {
			sigpipe_drain();
			reap(&s);
		}
		if (p[isock].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (room)
				sess_read_sock(&s);
			else if (p[isock].revents & (POLLHUP | POLLERR))
				sess_abort(&s, "host closed the connection"); /* no room to read its EOF */
		}
		if (!room && (p[isock].revents & POLLRDHUP) && !probed) {
			/* The host stopped sending while its stdin fills our buffer.
			 * vsock reports a closed peer with unread data pending only
			 * this way (no POLLHUP), and a half-close looks the same:
			 * an empty STDOUT tells them apart, as writing to a peer
			 * that is gone fails with EPIPE. */
			vs_q_put(&wq, VS_STDOUT, NULL, 0);
			probed = 1;
		}
		if (room)
			probed = 0;
		if (p[isock].revents & POLLOUT) {
			ssize_t r = vs_q_write(&wq, sock);
			if (r < 0 && errno != EAGAIN && errno != EINTR)
				sess_abort(&s, "connection failed");
		}
		if (iin >= 0 && p[iin].revents)
			sess_write_stdin(&s);
		if (s.out_r >= 0 && (s.exited || (iout >= 0 && p[iout].revents)))
			pump_out(&s, &s.out_r, VS_STDOUT);
		if (s.err_r >= 0 && (s.exited || (ierr >= 0 && p[ierr].revents)))
			pump_out(&s, &s.err_r, VS_STDERR);
		sess_frames(&s);
		if (s.sin_eof && !s.sinlen && s.in_w >= 0) {
			stdin_eof(&s);
			s.sin_eof = 2; /* done */
		}
	}
}

/* ---- framed connections: handshake and dispatch ---- */

static uint8_t fbuf[VS_FRAME_MAX];

static int hello_send(int fd, uint64_t token)
{
	uint8_t b[64];
	size_t n = vs_hello_put(b, sizeof b, VS_CAP_EXEC | VS_CAP_PTY | VS_CAP_FILE | VS_CAP_DIALBACK, token,
	                        "vsock-agent " AGENT_VERSION);
	return vs_send(fd, VS_HELLO, b, n);
}

/* After the magic: the host's HELLO, our reply.  -1 if refused. */
static int handshake(int fd, uint64_t token)
{
	struct vs_hdr h;
	int n = vs_recv(fd, &h, fbuf, sizeof fbuf);
	uint16_t ver;
	if (n < 0) {
		warnx("host closed or sent a bad frame before HELLO");
		return -1;
	}
	if (h.type != VS_HELLO || n < 16) {
		send_error(fd, VS_E_PROTO, "expected HELLO, got message type %u", h.type);
		warnx("expected HELLO, got message type %u", h.type);
		return -1;
	}
	ver = vs_get16(fbuf);
	if (ver != VS_VERSION) {
		send_error(fd, VS_E_VERSION, "protocol version %u not supported (agent speaks %u)", ver, VS_VERSION);
		warnx("host speaks protocol version %u; refused", ver);
		return -1;
	}
	return hello_send(fd, token) < 0 ? -1 : 0;
}

int file_session(int fd, uint16_t type, const uint8_t *p, size_t n);

/* One request on a session connection.  Returns only if the frame was
 * not a session request (the caller decides). */
static void serve_request(int fd, struct vs_hdr *h, int n)
{
	struct vs_exec e;
	switch (h->type) {
	case VS_EXEC:
		if (vs_exec_decode(fbuf, (size_t)n, &e) < 0) {
			send_error(fd, VS_E_PROTO, "malformed EXEC request");
			exit(1);
		}
		sess_run(fd, &e);
		exit(0);
	case VS_PUT:
	case VS_GET:
		exit(file_session(fd, h->type, fbuf, (size_t)n));
	}
}

/* A session connection: listen mode, or a dial-back.  Serves PING until
 * a request arrives. */
static void serve_session(int fd, uint64_t token)
{
	if (handshake(fd, token) < 0)
		exit(1);
	for (;;) {
		struct vs_hdr h;
		int n = vs_recv(fd, &h, fbuf, sizeof fbuf);
		if (n < 0) {
			if (errno)
				warn_sys("session: bad frame from host");
			exit(errno ? 1 : 0);
		}
		serve_request(fd, &h, n);
		if (h.type == VS_PING) {
			vs_send(fd, VS_PONG, fbuf, n < 8 ? (size_t)n : 8);
			continue;
		}
		send_error(fd, h.type == VS_OPEN ? VS_E_PROTO : VS_E_UNKNOWN,
		           "unexpected message type %u on a session connection", h.type);
		exit(1);
	}
}

/* Dial back for OPEN(token): a new connection that becomes one session. */
static void dialback(uint64_t token)
{
	uint8_t m[VS_MAGIC_LEN];
	int fd = dial(&dial_addr, 0);
	if (fd < 0)
		exit(1);
	if (vs_readall(fd, m, sizeof m) != sizeof m || memcmp(m, VS_MAGIC, sizeof m)) {
		warnx("dial-back: host did not open with the protocol magic");
		exit(1);
	}
	serve_session(fd, token);
}

/* Dial mode's first connection: HELLO, then OPEN/PING until the host
 * closes; or a request right away, served on this connection. */
static int serve_control(int fd)
{
	struct sigaction sa;
	if (handshake(fd, 0) < 0)
		return 1;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = SA_NOCLDWAIT;
	sigaction(SIGCHLD, &sa, NULL); /* dial-back children reap themselves */
	for (;;) {
		struct vs_hdr h;
		int n = vs_recv(fd, &h, fbuf, sizeof fbuf);
		if (n < 0) {
			if (errno)
				warn_sys("control: bad frame from host");
			return errno ? 1 : 0;
		}
		if (h.type == VS_OPEN && n == 8) {
			uint64_t token = vs_get64(fbuf);
			pid_t pid = fork();
			if (pid == 0) {
				close(fd);
				signal(SIGCHLD, SIG_DFL);
				dialback(token);
			}
			if (pid < 0)
				send_error(fd, VS_E_IO, "unable to fork: %s", strerror(errno));
			continue;
		}
		if (h.type == VS_PING) {
			vs_send(fd, VS_PONG, fbuf, n < 8 ? (size_t)n : 8);
			continue;
		}
		signal(SIGCHLD, SIG_DFL);
		serve_request(fd, &h, n);
		send_error(fd, VS_E_UNKNOWN, "unexpected message type %u on the control connection", h.type);
		return 1;
	}
}

/* Serve one connection from start to end.  Returns the exit status. */
static int serve_conn(int fd, int control)
{
	uint8_t b[VS_LEGACY_MAX + 8];
	size_t n = 0;
	int r = sniff(fd, b, &n);
	if (r < 0) {
		info("host closed without a request");
		return 0;
	}
	if (r == 0 && n >= 2 - !opt_persistent && b[0] == (uint8_t)VS_MAGIC[0] &&
	    (opt_persistent ? b[1] == (uint8_t)VS_MAGIC[1] : 1)) {
		/* began like the magic but is not it: neither a text command
		 * nor a length a legacy host would send */
		warnx("unrecognised protocol magic from the host; closing");
		return 1;
	}
	if (r == 1) {
		if (control)
			return serve_control(fd);
		serve_session(fd, 0);
		return 0;
	}
	return opt_persistent ? legacy_persistent(fd, b, n) : legacy_disposable(fd, b, n);
}

/* ---- listen mode ---- */

static int peer_allowed(const struct sockaddr_storage *ss)
{
	const struct vs_sockaddr_vm *vm = (const struct vs_sockaddr_vm *)ss;
	if (ss->ss_family != AF_VSOCK || opt_allow_any)
		return 1;
	return vm->svm_cid == opt_allow;
}

static void daemonize(void)
{
	pid_t pid = fork();
	int nul;
	if (pid < 0)
		die_sys("unable to fork");
	if (pid > 0)
		_exit(0);
	setsid();
	if (chdir("/") < 0)
		die_sys("unable to change directory to /");
	nul = open("/dev/null", O_RDWR);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		if (!opt_verbose)
			dup2(nul, 2);
		if (nul > 2)
			close(nul);
	}
}

static int listen_loop(const struct vs_addr *a, int background)
{
	char as[160];
	struct sigaction sa;
	int lfd = vs_listen(a);
	if (lfd < 0) {
		if (errno == EADDRNOTAVAIL && a->kind == VS_ADDR_VSOCK)
			die("unable to listen on %s: address not available (no vsock transport for that CID? listen on 'any')",
			    vs_addr_str(a, as, sizeof as));
		die_sys("unable to listen on %s", vs_addr_str(a, as, sizeof as));
	}
	if (background)
		daemonize();
	info("listening on %s", vs_addr_str(a, as, sizeof as));
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = SA_NOCLDWAIT;
	sigaction(SIGCHLD, &sa, NULL);
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		pid_t pid;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				warn_sys("unable to accept");
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
				usleep(100000);
			continue;
		}
		if (!peer_allowed(&ss)) {
			warnx("refused connection from CID %u (allowed: %u)", ((struct vs_sockaddr_vm *)&ss)->svm_cid, opt_allow);
			close(fd);
			continue;
		}
		pid = fork();
		if (pid == 0) {
			close(lfd);
			signal(SIGCHLD, SIG_DFL);
			exit(serve_conn(fd, 0));
		}
		if (pid < 0)
			warn_sys("unable to fork for a connection");
		close(fd);
	}
}

/* ---- command line ---- */

static void usage(int code)
{
	static const char u[] =
	    "usage: vsock-agent [options] [CID][:PORT] [persistent]\n"
	    "       vsock-agent [options] --listen [ADDR] | -p PORT\n"
	    "\n"
	    "Dial mode (default): connect to the host at CID (default 2) and PORT\n"
	    "(default 1024) and serve it; exit when the host closes.  Listen mode:\n"
	    "accept connections and serve each in its own process.\n"
	    "\n"
	    "ADDR is CID[:PORT], vsock:CID[:PORT] or unix:PATH; CID -1 or 'any'\n"
	    "means VMADDR_CID_ANY.  The host chooses the protocol: vsock-shell's\n"
	    "framed protocol, or vsock_guest_exec's legacy one (disposable: one raw\n"
	    "command; 'persistent': [u16 LE length][command] repeated).\n"
	    "\n"
	    "  -l, --listen [ADDR]  listen (default vsock:any:1024)\n"
	    "  -p PORT              listen on vsock:any:PORT\n"
	    "  --allow CID|any      listen mode: accept vsock peers from CID (default 2)\n"
	    "  -r, --retry          dial mode: retry with backoff until the host listens\n"
	    "  -d                   listen mode: run in the background\n"
	    "  -v                   log connections and sessions to stderr\n"
	    "  -h, --help           this help;  -V, --version  the version\n"
	    "\n"
	    "Exit status: 0 when the host closed; 1 on a connection failure or\n"
	    "refused input; 2 for a usage error; a legacy disposable command's own\n"
	    "status.\n";
	vs_writeall(code ? 2 : 1, u, sizeof u - 1);
	exit(code);
}

int main(int argc, char **argv)
{
	struct vs_addr la = { VS_ADDR_VSOCK, VS_CID_ANY, VS_PORT_DEFAULT, "" };
	int listen_mode = 0, background = 0, have_addr = 0, i, fd, rc;
	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(0);
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			vs_writeall(1, "vsock-agent " AGENT_VERSION "\n", sizeof("vsock-agent " AGENT_VERSION));
			return 0;
		} else if (!strcmp(a, "-l") || !strcmp(a, "--listen")) {
			listen_mode = 1;
			if (i + 1 < argc && (argv[i + 1][0] != '-' || !strncmp(argv[i + 1], "-1", 2)) &&
			    vs_addr_parse(argv[i + 1], &la) == 0) {
				if (la.kind == VS_ADDR_HYBRID)
					die("the agent cannot listen on a hybrid: address (that is the host's side)");
				i++;
			}
		} else if (!strncmp(a, "--listen=", 9)) {
			listen_mode = 1;
			if (vs_addr_parse(a + 9, &la) < 0 || la.kind == VS_ADDR_HYBRID)
				die("unable to parse listen address '%s'", a + 9);
		} else if (!strcmp(a, "-p") && i + 1 < argc) {
			if (vs_port_parse(argv[++i], &la.port) < 0)
				die("unable to parse port '%s'", argv[i]);
			listen_mode = 1;
		} else if (!strcmp(a, "--allow") && i + 1 < argc) {
			if (vs_cid_parse(argv[++i], &opt_allow) < 0)
				die("unable to parse CID '%s'", argv[i]);
			opt_allow_any = opt_allow == VS_CID_ANY; /* 'any' or -1, as everywhere */
		} else if (!strcmp(a, "-r") || !strcmp(a, "--retry")) {
			opt_retry = 1;
		} else if (!strcmp(a, "-d")) {
			background = 1;
		} else if (!strcmp(a, "-v")) {
			opt_verbose = 1;
		} else if (!strcmp(a, "persistent")) {
			opt_persistent = 1;
		} else if (a[0] == '-' && a[1] && strcmp(a, "-1") && strncmp(a, "-1:", 3)) {
			warnx("unknown option '%s'", a);
			usage(2);
		} else if (!have_addr++) {
			if (vs_addr_parse(a, &dial_addr) < 0 || dial_addr.kind == VS_ADDR_HYBRID)
				die("unable to parse address '%s' (expected [CID][:PORT], vsock:CID:PORT or unix:PATH)", a);
		} else {
			warnx("unexpected argument '%s'", a);
			usage(2);
		}
	}
	if (listen_mode)
		return listen_loop(&la, background);
	fd = dial(&dial_addr, opt_retry);
	if (fd < 0)
		return 1;
	rc = serve_conn(fd, 1);
	close(fd);
	return rc;
}

/* ---- file transfer ---- */

/* PUT: receive into the path; GET: send the path.  Relative paths are
 * relative to the user's home, as with scp. */
int file_session(int fd, uint16_t type, const uint8_t *p, size_t n)
{
	static struct xf x;
	char user[96] = "", home[96] = "", shell[96] = "";
	uint32_t flags;
	const char *path;
	int alg, r;
	if (xf_request_parse(p, n, &flags, &alg, &path) < 0) {
		send_error(fd, VS_E_PROTO, "malformed %s request", type == VS_PUT ? "PUT" : "GET");
		return 1;
	}
	passwd_lookup(getuid(), user, home, shell, sizeof home);
	if (chdir(*home ? home : "/") < 0 && chdir("/") < 0)
		return 1;
	xf_init(&x, fd, flags, alg);
	if (type == VS_PUT) {
		r = xf_recv(&x, path);
	} else {
		r = xf_send(&x, path);
		if (r == 0)
			r = xf_done(&x);
	}
	if (r < 0) {
		info("%s %s failed: %s", type == VS_PUT ? "upload to" : "download of", path, x.err);
		return 1;
	}
	info("%s %s: %u files, %u bytes", type == VS_PUT ? "upload to" : "download of", path, x.files, (unsigned)x.bytes);
	return 0;
}
