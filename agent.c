/*
 * vsock-agent - the guest side of vsock-shell.
 *
 * Dial mode (default): connect to the host (CID 2, port 1024) and serve
 * what it asks.  Listen mode: accept connections from the host.  Either way
 * the host speaks first, and its first bytes tell the protocol: the framed
 * protocol's magic, or a vsock_guest_exec legacy command.
 *
 * One session per connection, each in its own process; each command in its
 * own session (setsid), which ends as a terminal hangup ends one.
 *
 * It must stay under 64 KiB: where a libc call brings fallbacks for
 * kernels nobody runs it on, or code it never uses, the agent makes the
 * call itself (open as openat(AT_FDCWD), pipe_make, sig_set, nap, the
 * /dev/ptmx of posix_openpt); each place says what it saves.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <string.h>
#include <sys/mman.h>
/* musl's string search reads a word at a time, 1 KB in all for strings
 * of a few dozen bytes: a byte at a time here, as the agent's strings
 * are short (paths, arguments, a passwd line). */
static size_t vs_strlen(const char *s)
{
	const char *p = s;
	while (*p)
		p++;
	return (size_t)(p - s);
}
static char *vs_strchrnul(const char *s, int c)
{
	while (*s && *s != (char)c)
		s++;
	return (char *)s;
}
static char *vs_strchr(const char *s, int c)
{
	s = vs_strchrnul(s, c);
	return *s == (char)c ? (char *)s : NULL;
}
static char *vs_strrchr(const char *s, int c)
{
	const char *r = NULL;
	do
		if (*s == (char)c)
			r = s;
	while (*s++);
	return (char *)r;
}
static void *vs_memchr(const void *p, int c, size_t n)
{
	const unsigned char *s = p;
	for (; n; n--, s++)
		if (*s == (unsigned char)c)
			return (void *)s;
	return NULL;
}
static int vs_strncmp(const char *a, const char *b, size_t n)
{
	for (; n && *a && *a == *b; n--, a++, b++)
		;
	return n ? (unsigned char)*a - (unsigned char)*b : 0;
}
static size_t vs_strnlen(const char *s, size_t n)
{
	size_t k = 0;
	while (k < n && s[k])
		k++;
	return k;
}
static char *vs_getenv(const char *name)
{
	extern char **environ;
	size_t l = vs_strlen(name);
	char **e;
	for (e = environ; e && *e; e++)
		if (!vs_strncmp(*e, name, l) && (*e)[l] == '=')
			return *e + l + 1;
	return NULL;
}
/* openat and socket as their system calls: musl's add fallbacks for
 * kernels before O_CLOEXEC and SOCK_CLOEXEC (2.6.23, 2.6.27) */
static int vs_openat(int d, const char *p, int f, unsigned mode)
{
	return (int)syscall(SYS_openat, d, p, f | O_LARGEFILE, mode);
}
static int vs_socket(int dom, int type, int proto)
{
	return (int)syscall(SYS_socket, dom, type, proto);
}
/* mmap as its system call: musl's waits on a lock that threads share */
static void *vs_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, a, n, prot, flags, fd, off);
}
#define strlen vs_strlen
#define strchrnul vs_strchrnul
#define strchr vs_strchr
#define strrchr vs_strrchr
#define memchr vs_memchr
#define strncmp vs_strncmp
#define mmap vs_mmap
#define openat(d, p, f, ...) vs_openat(d, p, f, __VA_OPT__(__VA_ARGS__ +) 0)
#define socket vs_socket
#define strnlen vs_strnlen
#define getenv vs_getenv
#define readlink(p, b, n) readlinkat(AT_FDCWD, p, b, n)
/* Parts of musl by their system calls, for 2 KB of the 64 KiB:
 * clock_gettime() looks up the vDSO first (1 KB, for a few calls a
 * second at most); the stat family copies the kernel's struct stat into
 * its own field by field, where the two are the same; fcntl() has
 * fallbacks for kernels before 2.6.24 and for commands we never use. */
static int vs_clock(clockid_t c, struct timespec *t)
{
	return (int)syscall(SYS_clock_gettime, c, t);
}
static time_t vs_time(time_t *p)
{
	struct timespec t;
	vs_clock(CLOCK_REALTIME, &t);
	return p ? (*p = t.tv_sec) : t.tv_sec;
}
static int vs_fstatat(int d, const char *path, struct stat *st, int flags)
{
	return (int)syscall(SYS_newfstatat, d, path, st, flags);
}
static int vs_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long a;
	va_start(ap, cmd);
	a = va_arg(ap, long); /* as musl does: any command's argument, or none */
	va_end(ap);
	return (int)syscall(SYS_fcntl, fd, cmd, a);
}
#define clock_gettime vs_clock
#define time(p) vs_time(p)
#define fstatat vs_fstatat
#define stat(p, s) vs_fstatat(AT_FDCWD, p, s, 0)
#define lstat(p, s) vs_fstatat(AT_FDCWD, p, s, AT_SYMLINK_NOFOLLOW)
#define fstat(d, s) vs_fstatat(d, "", s, AT_EMPTY_PATH)
#define fcntl vs_fcntl

#define VS_IMPLEMENTATION
#define VS_SHORT_STRERROR /* protocol.h: the errors the agent meets, not musl's table */
#include "protocol.h"
#include "sha256.h"
#include "auth.h"
#include "chan.h"
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
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* fork(2) as the kernel has it: musl's fork() adds what a threaded
 * program needs (atfork handlers and their locks), 1.7 KB of the 64 KiB,
 * and its _Fork the thread list's lock and the new thread id, 250 bytes
 * more; the agent has one thread, and neither malloc nor stdio, nor
 * raise(3), the one caller of that id. */
static pid_t vs_fork(void)
{
	return (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
}
#define fork vs_fork
/* prctl and accept4 as their system calls: musl's prctl is variadic, and
 * its accept4 falls back to accept and fcntl for kernels before 2.6.28
 * (the faults stage's glibc agent keeps libc's accept4, where it injects
 * EINTR) */
#define prctl(o, a) syscall(SYS_prctl, o, a, 0, 0, 0)
#ifndef __GLIBC__
#define accept4(s, a, l, f) syscall(SYS_accept4, s, a, l, f)
#endif

#define AGENT_VERSION "0.2"
#define LEGACY_IDLE_MS 250
/* Limits, each a total deadline; $VSOCK_AGENT_TIMEOUT (seconds) sets
 * them all (tests). */
#define HANDSHAKE_MS limit_ms(10000)   /* magic, HELLO and AUTH, all together */
#define FIRST_BYTES_MS limit_ms(30000) /* listen mode: a connection must speak */
#define FRAME_MS limit_ms(10000)       /* control connection: a frame begun must end */

/* exit statuses beyond 0, 1 and 2 */
#define RC_GONE 3            /* the host closed the control connection without BYE */
#define RC_REFUSED 4         /* internal: the host failed the proof; dial again */

/* what a session may do: capability bits, and legacy commands */
#define OP_LEGACY 0x10000u

enum { AUTH_AUTO, AUTH_KEY, AUTH_NONE };

static struct vs_addr dial_addr = { VS_ADDR_VSOCK, VS_CID_HOST, VS_PORT_DIAL, "" };
static int opt_persistent, opt_verbose, opt_retry, opt_reconnect, listening;
static uint32_t opt_allow = VS_CID_HOST;
static int opt_allow_any;
static int opt_auth = AUTH_AUTO;
static long opt_linger = 21600;      /* --linger: seconds a detached session waits for a client */
static struct vs_key key;            /* n == 0: no key */
static uint32_t ops = VS_CAP_ALL | OP_LEGACY;
static char ops_why[80];             /* the switch that removed what is missing */
static int kmsg_fd = -1;             /* audit lines go here instead of stderr */
static int sid_fd[2] = { -1, -1 };   /* session processes -> parent: their command's sid */
/* a host that keeps failing the proof (another key, an impostor), dialed
 * again and again: its refusals are logged once, then as a count at most
 * every HUSH_MS (muted: logv drops lines; hush: for this handshake) */
#define HUSH_MS 10000
static int hush, muted;
static unsigned hushed;
static pid_t spare;                  /* listen mode: the child waiting in accept(), or 0 */
static int hflags;                   /* ours: STANDBY (this dial-back is the standby one),
                                        REPORT (a report connection: init.h) */
static pid_t standby_pid;            /* dial mode: the standby dial-back, or 0 */
static uint16_t host_flags;          /* the host's HELLO flags */
static int sigpipe_fd[2] = { -1, -1 };

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

static long limit_ms(long dflt)
{
	static long ms = -1;
	if (ms < 0) {
		const char *e = getenv("VSOCK_AGENT_TIMEOUT"), *q = e;
		long v = e ? num_scan(&q) : -1;
		ms = v > 0 ? v * 1000 : 0;
	}
	return ms ? ms : dflt;
}

/* Sleep ms as usleep does, a signal ending it early, by poll (musl's
 * usleep and nanosleep are 250 bytes more). */
static void nap(int ms)
{
	poll(NULL, 0, ms);
}

/* Who the peer is, and whether the kernel vouches for it: a vsock port
 * <= 1023 can only be bound with CAP_NET_BIND_SERVICE, and a Unix peer's
 * uid comes from the kernel (SO_PEERCRED). */
struct peer {
	char desc[96];
	int kernel;
	int dialed; /* the host dialed us (listen mode) */
};

/* ---- messages: one way to say things, one way to die ---- */

/* A formatter for the few conversions the agent uses (%s %c %d %u %o %ld
 * %lu %zd %zu %x %%).  musl's printf pulls in floating point formatting,
 * about a sixth of this binary's size budget. */
static size_t fmt_num(char *b, size_t cap, size_t n, unsigned long v, int neg, unsigned base)
{
	char t[24];
	int i = 0;
	if (neg && n < cap)
		b[n++] = '-';
	do t[i++] = "0123456789abcdef"[v % base]; while ((v /= base));
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
			n = fmt_num(b, cap, n, v < 0 ? 0UL - (unsigned long)v : (unsigned long)v, v < 0, 10);
		} else if (*f == 'u' || *f == 'o' || *f == 'x') {
			n = fmt_num(b, cap, n, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 0,
			            *f == 'u' ? 10 : *f == 'o' ? 8 : 16);
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
	char b[512], e[2 * sizeof b];
	int saved = errno;
	size_t k, n;
	if (muted)
		return;
	k = vfmt(b, sizeof b - 100, f, ap);
	if (err)
		k += fmt(b + k, 98, ": %s", vs_strerror(err));
	/* what the host sent (a path, a name) is escaped with the rest */
	memcpy(e, "vsock-agent: ", 13);
	vs_esc(e + 13, sizeof e - 14, b, k, 0);
	n = strlen(e);
	e[n++] = '\n';
	vs_writeall(2, e, n);
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

/* pipe2 as the kernel has it: libc's adds a fallback for kernels before
 * 2.6.27, 230 bytes of the budget. */
static int pipe_make(int p[2], int flags)
{
	return (int)syscall(SYS_pipe2, p, flags);
}

/* ---- signals: each becomes a byte on a pipe ---- */

static void on_signal(int sig)
{
	int e = errno;
	char c = (char)sig;
	if (write(sigpipe_fd[1], &c, 1) < 0) {
		/* pipe full: a wakeup is already pending */
	}
	errno = e;
}

static void sigpipe_close(void)
{
	if (sigpipe_fd[0] >= 0) {
		close(sigpipe_fd[0]);
		close(sigpipe_fd[1]);
	}
	sigpipe_fd[0] = sigpipe_fd[1] = -1;
}

/* One signal's disposition (signal() is one more wrapper of sigaction);
 * an exec clears the flags.  On x86-64 by rt_sigaction(2) itself, with
 * our own return trampoline: musl's sigaction is 640 bytes of what
 * threads and abort() need. */
#ifdef __x86_64__
__attribute__((naked)) static void sig_return(void)
{
	__asm__ volatile("mov $15, %eax\n\tsyscall"); /* rt_sigreturn */
}
static void sig_set(int sig, void (*h)(int))
{
	struct {
		void (*h)(int);
		unsigned long flags;
		void (*restorer)(void);
		unsigned long mask;
	} k = { h, SA_RESTART | SA_NOCLDSTOP | 0x04000000 /* SA_RESTORER */, sig_return, 0 };
	syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof k.mask);
}
#else
static void sig_set(int sig, void (*h)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = h;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(sig, &sa, NULL);
}
#endif

/* This process's own pipe (a forked child must not share its parent's),
 * and the signals that write to it. */
static void sigpipe_open(const int *sigs, int n)
{
	int i;
	sigpipe_close();
	if (pipe_make(sigpipe_fd, O_CLOEXEC | O_NONBLOCK) < 0)
		die_sys("unable to create signal pipe");
	for (i = 0; i < n; i++)
		sig_set(sigs[i], on_signal);
}

static void sigchld_pipe(void)
{
	static const int sigs[] = { SIGCHLD };
	sigpipe_open(sigs, 1);
}

/* The signals that arrived, as a bit set (1 << sig). */
static unsigned long sigpipe_read(void)
{
	unsigned char b[64];
	unsigned long got = 0;
	ssize_t r, i;
	while ((r = read(sigpipe_fd[0], b, sizeof b)) > 0)
		for (i = 0; i < r; i++)
			got |= 1UL << (b[i] & 63);
	return got;
}

static void sigpipe_drain(void)
{
	sigpipe_read();
}

/* Reset what a command must not inherit from us.  Caught signals go back
 * to their default at exec by themselves; main() reset what we inherited
 * once; so only what we ignore, and the mask, remain. */
static void signals_reset(void)
{
	sigset_t none;
	sig_set(SIGPIPE, SIG_DFL);
	sig_set(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Once at start: nothing inherited stays ignored or blocked (a shell's
 * nohup, an init that blocks signals) for the commands we run. */
static void signals_init(void)
{
	int s;
	for (s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sig_set(s, SIG_DFL);
	signals_reset();
	sig_set(SIGPIPE, SIG_IGN);
}

/* ---- PID 1 ---- */

#include "init.h"

/* ---- connections ---- */

static void children_reap(int ctl);

/* Connect, retrying with backoff (50 ms doubling to 3.2 s, with jitter so
 * that a fleet restarted together does not dial in lockstep) when asked.
 * Sessions of the last host may end meanwhile: they are reaped here too. */
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
		children_reap(-1);
		nap((int)(delay + (unsigned)getpid() % (delay / 4 + 1)));
		if (delay < 3200)
			delay *= 2;
	}
}

/* The host speaks first.  Returns 1 when it opened with the framed magic,
 * 0 for legacy with the bytes read so far in b[*n], -1 on EOF/error (or
 * nothing by the deadline).  In disposable mode a first byte other than
 * 0xff is decisive; the persistent length prefix needs both bytes. */
static int sniff(int fd, uint8_t *b, size_t *n, long deadline)
{
	size_t want = opt_persistent ? 2 : 1;
	ssize_t r = vs_readall_by(fd, b, want, deadline);
	if (r <= 0)
		return -1;
	*n = (size_t)r;
	if ((size_t)r < want)
		return 0;
	if (b[0] != (uint8_t)VS_MAGIC[0] || (want == 2 && b[1] != (uint8_t)VS_MAGIC[1]))
		return 0;
	r = vs_readall_by(fd, b + want, VS_MAGIC_LEN - want, vs_deadline(HANDSHAKE_MS));
	if (r < 0)
		return -1;
	*n += (size_t)r;
	return *n == VS_MAGIC_LEN && !memcmp(b, VS_MAGIC, VS_MAGIC_LEN);
}

/* ---- the peer, and the proofs ---- */

/* A Unix peer: the kernel's word on its uid.  Ours or root is trusted. */
static void peer_unix(struct peer *pe, int fd)
{
	struct ucred uc;
	socklen_t l = sizeof uc;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &l) < 0) {
		fmt(pe->desc, sizeof pe->desc, "unix peer (credentials unknown)");
		pe->kernel = 0;
		return;
	}
	fmt(pe->desc, sizeof pe->desc, "unix peer uid %u pid %d", (unsigned)uc.uid, (int)uc.pid);
	pe->kernel = uc.uid == 0 || uc.uid == getuid();
}

/* Listen mode: who connected.  A vsock source port <= 1023 was bound
 * with CAP_NET_BIND_SERVICE; an unbound socket gets one above 1023. */
static void peer_accepted(struct peer *pe, int fd, const struct sockaddr_storage *ss)
{
	const struct vs_sockaddr_vm *vm = (const struct vs_sockaddr_vm *)ss;
	pe->dialed = 1;
	if (ss->ss_family != AF_VSOCK) {
		peer_unix(pe, fd);
		return;
	}
	fmt(pe->desc, sizeof pe->desc, "vsock:%u:%u", vm->svm_cid, vm->svm_port);
	pe->kernel = vm->svm_port <= VS_PORT_RESERVED;
}

/* Dial mode: whom we reached.  A listener on a port <= 1023 was bound
 * with CAP_NET_BIND_SERVICE on the host. */
static void peer_dialed(struct peer *pe, int fd)
{
	char as[160];
	pe->dialed = 0;
	if (dial_addr.kind == VS_ADDR_UNIX) {
		peer_unix(pe, fd);
		return;
	}
	fmt(pe->desc, sizeof pe->desc, "%s", vs_addr_str(&dial_addr, as, sizeof as));
	pe->kernel = dial_addr.port <= VS_PORT_RESERVED;
}

/* The kernel command line's vsock_agent.key=VALUE, if any. */
static int key_from_cmdline(void)
{
	static char b[4096];
	const char *p;
	size_t n;
	file_read("/proc/cmdline", b, sizeof b);
	/* by hand: musl's strstr is a kilobyte of two-way matcher */
	for (p = b; *p; p++) {
		if ((p != b && p[-1] != ' ') || strncmp(p, "vsock_agent.key=", 16))
			continue;
		p += 16;
		for (n = 0; p[n] && p[n] != ' ' && p[n] != '\n'; n++)
			;
		return vs_key_set(&key, p, n);
	}
	errno = ENOENT;
	return -1;
}

#define FWCFG_KEY "/sys/firmware/qemu_fw_cfg/by_name/opt/vsock-shell/key/raw"

/* A key file: 0 once loaded, -1 when it holds no key.  One that others
 * than its owner may read is refused wherever it is found, with auto too:
 * a key that may have leaked proves nothing. */
static int key_file(const char *path)
{
	if (vs_key_load(&key, path) == 0)
		return 0;
	if (errno == EPERM)
		die(VS_KEY_PERM, path, key.mode, path);
	return -1;
}

/* --key SOURCE: a file, fw_cfg, credential, cmdline, none, or auto (the
 * first of credential, fw_cfg and cmdline that holds a key). */
static void key_setup(const char *src)
{
	const char *cd = getenv("CREDENTIALS_DIRECTORY");
	char cred[300] = "";
	if (cd && *cd)
		fmt(cred, sizeof cred, "%s/vsock-shell.key", cd);
	if (!strcmp(src, "none"))
		return;
	if (!strcmp(src, "auto")) {
		if ((*cred && key_file(cred) == 0) || key_file(FWCFG_KEY) == 0 || key_from_cmdline() == 0)
			return;
		if (errno == EINVAL)
			warnx("ignoring a key shorter than %d bytes", VS_KEY_MIN);
		key.n = 0;
		return;
	}
	if (!strcmp(src, "cmdline")) {
		if (key_from_cmdline() < 0)
			die_sys("unable to read vsock_agent.key= from /proc/cmdline");
		return;
	}
	if (!strcmp(src, "credential")) {
		if (!*cred)
			die("unable to read the credential: $CREDENTIALS_DIRECTORY is not set");
		src = cred;
	} else if (!strcmp(src, "fw_cfg")) {
		src = FWCFG_KEY;
	}
	if (key_file(src) < 0) {
		if (errno == EINVAL)
			die("unable to use the key in %s: it must be %d to %d bytes", src, VS_KEY_MIN, VS_KEY_MAX);
		die_sys("unable to read the key %s", src);
	}
}

/* This guest's CID on the connection fd, as the host sees it (the key
 * proofs cover it, PROTOCOL.md 3.3); 0 with no vsock.  An accepted socket
 * shows it; one that connect() bound shows CID_ANY, while its packets
 * carry the CID of the transport the kernel chose: the loopback's (1) for
 * CID 1, for our own CID, and for the host's when no guest transport is
 * loaded; else the guest transport's (/dev/vsock tells it).  When
 * /dev/vsock cannot tell, 0: the host's claim cannot be checked then. */
static int own_cid(int fd, uint32_t *cid)
{
	struct vs_sockaddr_vm a, p;
	socklen_t l = sizeof a;
	unsigned int g = VS_CID_ANY;
	int d;
	if (getsockname(fd, (struct sockaddr *)&a, &l) < 0 || a.svm_family != AF_VSOCK)
		return 0;
	*cid = a.svm_cid;
	if (a.svm_cid != VS_CID_ANY)
		return 1;
	l = sizeof p;
	d = openat(AT_FDCWD, "/dev/vsock", O_RDONLY | O_CLOEXEC);
	if (d < 0 || getpeername(fd, (struct sockaddr *)&p, &l) < 0 ||
	    ioctl(d, 0x7b9 /* IOCTL_VM_SOCKETS_GET_LOCAL_CID */, &g) < 0) {
		if (d >= 0)
			close(d);
		return 0;
	}
	close(d);
	*cid = p.svm_cid == VS_CID_LOCAL || g == VS_CID_ANY || g == p.svm_cid ? VS_CID_LOCAL : g;
	return 1;
}

/* A short file's first line (machine-id, boot_id), as it is: the host
 * escapes what it shows. */
static void read_line(const char *path, char *dst, size_t cap)
{
	uint8_t b[128];
	int fd = openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	ssize_t r = fd < 0 ? -1 : read(fd, b, sizeof b);
	if (fd >= 0)
		close(fd);
	if (r > 0) {
		size_t n = (size_t)r;
		while (n && (b[n - 1] == '\n' || b[n - 1] == ' '))
			n--;
		vs_text_copy(dst, cap, b, n);
	}
}

/* What the guest says about itself: shown by the hub, never trusted. */
static void facts_fill(struct vs_hello *h)
{
	struct utsname u;
	if (uname(&u) == 0) {
		vs_text_copy(h->hostname, sizeof h->hostname, (const uint8_t *)u.nodename, sizeof u.nodename);
		vs_text_copy(h->kernel, sizeof h->kernel, (const uint8_t *)u.release, sizeof u.release);
	}
	read_line("/etc/machine-id", h->machine_id, sizeof h->machine_id);
	read_line("/proc/sys/kernel/random/boot_id", h->boot_id, sizeof h->boot_id);
	h->has_boot = 1;
	h->boot = boot_flags();
	h->uptime = (uint64_t)vs_now_ms();
}

/* What a session runs, as audit lines and ps show it: each of the host's
 * arguments (or its path) quoted and escaped, so that neither a byte of
 * it nor where one ends can deceive the reader; appended at b[n], cut at
 * max (b holds max + 16), where "..." marks the cut.  No arguments: the
 * login shell. */
static size_t args_show(char *b, size_t n, size_t max, const char *const *argv, unsigned argc)
{
	if (!argc)
		n += fmt(b + n, max + 16 - n, " the login shell");
	for (; argc; argc--, argv++) {
		size_t len = strlen(*argv);
		b[n++] = ' ';
		if (n > max) { /* arguments left, and no room */
			memcpy(b + n, "...", 3);
			n += 3;
			break;
		}
		b[n++] = '\'';
		len -= vs_esc(b + n, max + 5 - n, *argv, len, '\'');
		n += strlen(b + n);
		if (len) /* cut inside it, and marked */
			break;
		b[n++] = '\'';
	}
	return n;
}

/* One line per session: who, how proven, what (args_show, cut at
 * AUDIT_MAX; nothing for argv NULL); to stderr, or to the kernel log when
 * stderr is the console (main). */
#define AUDIT_MAX 480
static void audit(const struct peer *pe, const char *how, const char *op, const char *const *argv, unsigned argc)
{
	char b[AUDIT_MAX + 16];
	size_t n = fmt(b, sizeof b, "<6>vsock-agent: %s from %s (auth %s)%s", op, pe->desc, how, argv ? ":" : "");
	if (argv)
		n = args_show(b, n, AUDIT_MAX, argv, argc);
	b[n++] = '\n';
	if (kmsg_fd < 0 || write(kmsg_fd, b, n) < 0)
		vs_writeall(2, b + 3, n - 3);
}

/* ---- legacy vsock_guest_exec protocol ---- */

/* Run one legacy command with the agent's own stdout/stderr, as the
 * original did; stdin is /dev/null so the command cannot steal the
 * console the agent may have been started on. */
static const struct peer *legacy_peer; /* for the audit line */
static const char *legacy_how;

static int legacy_run(const char *cmd)
{
	pid_t pid;
	int st;
	audit(legacy_peer, legacy_how, "legacy command", &cmd, 1);
	pid = fork();
	if (pid < 0) {
		warn_sys("unable to fork");
		return 1;
	}
	if (pid == 0) {
		int nul = openat(AT_FDCWD, "/dev/null", O_RDONLY);
		if (nul > 0) {
			dup2(nul, 0);
			close(nul);
		}
		char *av[] = { (char *)"sh", (char *)"-c", (char *)cmd, NULL };
		signals_reset();
		execve("/bin/sh", av, environ);
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

/* ---- the session table ---- */

/* Every exec and shell session has an id (VS_SESSION_ID random bytes)
 * and a slot in a table that all of this agent's processes share (one
 * mapping, made before the first fork): what SESSIONS lists and KILL
 * finds.  A session process fills its slot and frees it as it ends; the
 * parent frees the slot of one that died without (children_reap).  gen
 * changes with every claim, so that a reader can tell a slot it copied
 * whole.  A full table leaves a session unlisted, nothing more. */
#define SLOTS 256
struct slot {
	int used;                 /* 0 free, 1 being filled, 2 listed */
	unsigned gen;
	pid_t pid;                /* the session process; 0 once it freed the slot */
	pid_t cmd;                /* its command: the leader of the command's session */
	int sig;                  /* a KILL's signal, for the session process to send */
	uint32_t flags;           /* the request's EXEC flags */
	uint8_t id[VS_SESSION_ID];
	uint64_t start;           /* seconds since the epoch */
	/* what ps shows: VS_SS_* state, the wait status, the output kept */
	uint32_t state, status, kept;
	char who[64], what[128];  /* the peer and its proof; the command (args_show) */
};
static struct slot *stab;    /* SLOTS of them, or NULL */
static struct slot *myslot;  /* this session process's, or NULL */

static void stab_open(void)
{
	void *m = mmap(NULL, SLOTS * sizeof *stab, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	stab = m == MAP_FAILED ? NULL : m;
}

/* A slot for this session process, with its id, who asked and what. */
static void slot_take(const struct peer *pe, const char *how, const struct vs_exec *e, unsigned argc)
{
	uint8_t n[VS_NONCE_LEN];
	int i;
	for (i = 0; stab && i < SLOTS; i++) {
		struct slot *sl = &stab[i];
		int z = 0;
		if (!__atomic_compare_exchange_n(&sl->used, &z, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			continue;
		__atomic_add_fetch(&sl->gen, 1, __ATOMIC_RELEASE);
		sl->pid = getpid();
		sl->cmd = sl->sig = 0;
		sl->flags = e->flags;
		vs_nonce(n);
		memcpy(sl->id, n, sizeof sl->id);
		sl->start = (uint64_t)time(NULL);
		fmt(sl->who, sizeof sl->who, "%s (auth %s)", pe->desc, how);
		sl->what[args_show(sl->what, 0, sizeof sl->what - 16, e->argv, argc)] = 0;
		myslot = sl;
		return;
	}
}

/* The command runs: the slot is listed. */
static void slot_show(pid_t cmd)
{
	if (!myslot)
		return;
	myslot->cmd = cmd;
	__atomic_store_n(&myslot->used, 2, __ATOMIC_RELEASE);
}

static void slot_free(struct slot *sl)
{
	if (!sl)
		return;
	sl->pid = 0;
	__atomic_store_n(&sl->used, 0, __ATOMIC_RELEASE);
}

/* The parent's part: a session process is gone, and its slot if it
 * had not freed it. */
static void slot_forget(pid_t pid)
{
	int i;
	for (i = 0; stab && i < SLOTS; i++)
		if (__atomic_load_n(&stab[i].used, __ATOMIC_ACQUIRE) && stab[i].pid == pid)
			slot_free(&stab[i]);
}

/* A listed slot copied whole into c, strings ended; 0 if it is not one. */
static int slot_copy(const struct slot *sl, struct slot *c)
{
	unsigned g = __atomic_load_n(&sl->gen, __ATOMIC_ACQUIRE);
	if (__atomic_load_n(&sl->used, __ATOMIC_ACQUIRE) != 2)
		return 0;
	memcpy(c, sl, sizeof *c);
	c->who[sizeof c->who - 1] = c->what[sizeof c->what - 1] = 0;
	return __atomic_load_n(&sl->used, __ATOMIC_ACQUIRE) == 2 && __atomic_load_n(&sl->gen, __ATOMIC_ACQUIRE) == g;
}

/* SESSIONS: every listed session, each a u16 length and its fields
 * (PROTOCOL.md 6.9), as many as the frame holds. */
static void sessions_send(int fd, uint8_t *b)
{
	struct vs_wr w = { b, 0, VS_FRAME_MAX, 0 };
	struct slot c;
	size_t done = 0;
	int i;
	for (i = 0; stab && i < SLOTS; i++) {
		size_t at = w.n;
		if (!slot_copy(&stab[i], &c))
			continue;
		vs_wr16(&w, 0);
		vs_wrmem(&w, c.id, sizeof c.id);
		vs_wr32(&w, (uint32_t)c.cmd);
		vs_wr64(&w, c.start);
		vs_wr32(&w, c.flags);
		vs_wrstr(&w, c.who);
		vs_wrstr(&w, c.what + 1); /* args_show begins with a blank */
		vs_wr32(&w, c.state);
		vs_wr32(&w, c.status);
		vs_wr32(&w, c.kept);
		if (w.err)
			break;
		vs_put16(b + at, (uint16_t)(w.n - at - 2));
		done = w.n;
	}
	vs_send(fd, VS_SESSIONS, b, done);
}

/* KILL: the session gets sig from its own process, as a SIGNAL from its
 * host would give it (a kill on purpose: all of it dies at its end),
 * woken by a SIGCHLD (it reaps, and finds nothing to reap).  -1: no
 * session has that id. */
static int slot_kill(const uint8_t *id, int sig)
{
	struct slot c;
	int i;
	for (i = 0; stab && i < SLOTS; i++) {
		if (!slot_copy(&stab[i], &c) || memcmp(c.id, id, sizeof c.id) || c.pid <= 0)
			continue;
		__atomic_store_n(&stab[i].sig, sig, __ATOMIC_RELEASE);
		kill(c.pid, SIGCHLD);
		return 0;
	}
	return -1;
}

/* The rendezvous where one process of the agent hands a connection to
 * another: a -R listener to the sessions that claim what it accepted
 * (kind 'f'), an ATTACH's connection to the session it carries on (kind
 * 's'); an abstract Unix socket named by the listener's or session's id.
 * Anyone in the guest may read the name (/proc/net/unix): a connection
 * is handed only to, or taken only from, a process of the agent's own
 * user (rdv_ours). */
static int fwd_rdv(const uint8_t *id, int bound, char kind)
{
	struct sockaddr_un u = { AF_UNIX, "" };
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memcpy(u.sun_path + 1, "vsock-agent-fwd-", 16);
	u.sun_path[13] = kind;
	xf_hex(id, VS_FWD_ID, u.sun_path + 17);
	if (s < 0 || (bound ? bind(s, (struct sockaddr *)&u, 35) < 0 || listen(s, 8) < 0
	                        : connect(s, (struct sockaddr *)&u, 35) < 0))
		return -1;
	return s;
}

/* A connection across the rendezvous (SCM_RIGHTS): fd sent when >= 0,
 * else one received and returned (-1: none).  sendmsg and recvmsg as
 * their system calls: musl's rewrite the header and the timestamps, 500
 * bytes for one descriptor. */
static int fd_pass(int s, int fd)
{
	char c = 0;
	struct iovec io = { &c, 1 };
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr h;
	} u = { .h = { .cmsg_len = CMSG_LEN(sizeof(int)), .cmsg_level = SOL_SOCKET, .cmsg_type = SCM_RIGHTS } };
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = &u, .msg_controllen = sizeof u };
	memcpy(CMSG_DATA(&u.h), &fd, sizeof fd);
	if (fd >= 0)
		return (int)syscall(SYS_sendmsg, s, &m, 0);
	if (syscall(SYS_recvmsg, s, &m, MSG_CMSG_CLOEXEC) <= 0 || m.msg_controllen < CMSG_LEN(sizeof(int)))
		return -1;
	memcpy(&fd, CMSG_DATA(&u.h), sizeof fd);
	return fd;
}

/* The peer on a rendezvous is the agent's own user. */
static int rdv_ours(int k)
{
	struct ucred uc;
	socklen_t l = sizeof uc;
	return getsockopt(k, SOL_SOCKET, SO_PEERCRED, &uc, &l) == 0 && uc.uid == geteuid();
}

/* ATTACH: this connection (fd) goes to the session's process across its
 * rendezvous, with how much of the session's stream the host has; that
 * process answers on it (RESUME, or an ERROR).  The exit status. */
static int slot_attach(int fd, const uint8_t *id, const uint8_t *have)
{
	int s = fwd_rdv(id, 0, 's');
	if (s < 0 || fd_pass(s, fd) < 0 || vs_writeall(s, have, 8) < 0) {
		send_error(fd, VS_E_NOENT, "no session of that id to attach to here");
		return 1;
	}
	return 0;
}

/* ---- framed sessions ---- */

/* The connection's buffers.  A session that outlives its connection
 * keeps what it sent until the host acknowledges it, up to KEEP_MAX,
 * and reads its command's output only while there is room: a stopped
 * or absent client stops the command, and the agent's memory is bounded.
 * CTL_ROOM stays free for ACK and PONG, which both ends must always be
 * able to send: kept, it holds the ACKs the host has not acknowledged
 * yet, which it does every 64 KiB of our stream (PROTOCOL.md 6.10). */
#define KEEP_MAX (1u << 20)
#define CTL_ROOM(c) ((c)->keep ? 81920 : 64)
/* Room for a frame of the command's output.  Attached, no more than 128
 * KiB waits unsent: the kept queue then holds mostly what is on its way
 * to be acknowledged, and its compaction moves little (without this,
 * memmove was 87% of a detachable session's instructions); detached, the
 * output fills what is kept. */
#define OUT_ROOM(c) (vs_chan_fits(c, VS_FRAME_MAX + CTL_ROOM(c)) && ((c)->fd < 0 || (c)->olen - (c)->ooff < 131072))
static uint8_t sess_in[VS_CHAN_BUF], sess_out[KEEP_MAX];

struct sess {
	struct vs_chan ch;        /* the connection; its held payload: STDIN not yet written */
	int in_w, out_r, err_r;   /* command's stdin, stdout, stderr (or -1) */
	int pty;                  /* pty master, or -1 */
	int pty_slave;            /* held so the master never sees EIO early */
	pid_t pid;                /* session leader; also its sid and pgid */
	int exited, status;
	int killed;               /* the host sent a signal: it ends everything */
	int sin_eof;              /* STDIN_EOF arrived: close after the held STDIN */
	int exit_q;               /* its EXIT is queued */
	uint64_t exit_at;         /* kept: where the EXIT ends in our stream */
	long lone;                /* detached: when --linger ends it; 0 attached */
	uint64_t acked;           /* the last ACK we sent */
	int rdv;                  /* kept: where an ATTACH hands us its connection, or -1 */
};


/* Parent and session id of a process, from /proc/PID/stat ("pid (comm)
 * S ppid pgrp session ..."; comm may hold spaces and parentheses, so from
 * the last ')').  -1 when it is gone. */
static long proc_stat(const char *pid, long *ppid)
{
	char path[64], st[512];
	const char *p;
	int fd;
	ssize_t r;
	fmt(path, sizeof path, "/proc/%s/stat", pid);
	fd = openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
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
	*ppid = num_scan(&p);
	num_scan(&p);
	return num_scan(&p);
}

/* Call fn for every process in /proc (where it is mounted). */
static void proc_each(void (*fn)(const char *name, long pid, void *arg), void *arg)
{
	struct vs_dir d;
	const char *name;
	int fd = openat(AT_FDCWD, "/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	vs_dir_init(&d, fd);
	while ((name = vs_dir_next(&d))) {
		const char *q = name;
		long pid = num_scan(&q);
		if (!*q && pid > 1 && pid != getpid())
			fn(name, pid, arg);
	}
	close(fd);
}

struct killarg {
	long sid;
	int sig;
};

static void kill_if_in_session(const char *name, long pid, void *arg)
{
	struct killarg *k = arg;
	long ppid;
	if (proc_stat(name, &ppid) == k->sid)
		kill((pid_t)pid, k->sig);
}

/* Kill every process of the session: the group, and (where /proc is
 * mounted) anything that kept the session id but left the group. */
static void session_kill(pid_t sid, int sig)
{
	struct killarg k = { sid, sig };
	if (sid <= 0)
		return;
	kill(-sid, sig);
	proc_each(kill_if_in_session, &k);
}

/* Reap what has exited.  1 while children remain, 0 when none is left:
 * a session process is a subreaper, so every descendant of its command
 * is its child, and ECHILD says that nothing of the session is left,
 * without a walk of /proc. */
static int reap_some(struct sess *s)
{
	int st;
	pid_t p;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (s && p == s->pid) {
			s->exited = 1;
			s->status = st;
		}
	}
	return !(p < 0 && errno == ECHILD);
}

static void reap(struct sess *s)
{
	reap_some(s);
}

/* Wait up to ms for the children to go.  Processes that started a
 * session of their own (daemons) are left alone, and may outlive this. */
static void reap_all(int ms)
{
	int i;
	for (i = 0; i < ms / 10 && reap_some(NULL); i++)
		nap(10);
}

/* A session ends as a terminal hangup ends one: on a pty, SIGHUP (and
 * SIGCONT, for stopped jobs) to every process of its session, and what
 * ignores it (nohup) or left the session (setsid) lives on; after a plain
 * exec, whose output has closed, nothing more.  A session the host ended
 * with a signal (Ctrl-C, a time limit) was killed on purpose: everything
 * of it dies, SIGKILL, when anything is left at all (one waitpid). */
static void sess_end(struct sess *s, int hup)
{
	if (s->killed) {
		if (!reap_some(NULL))
			return;
		session_kill(s->pid, SIGKILL);
		reap_all(200);
	} else if (hup) {
		session_kill(s->pid, SIGHUP);
		session_kill(s->pid, SIGCONT);
	}
}

static void sess_abort(struct sess *s, const char *why);

/* The connection is gone without the host ending the session: one that
 * outlives it (keep) waits for a client, up to --linger (the command
 * runs on, its output kept up to the queue's size); any other dies. */
static void sess_lost(struct sess *s, const char *why)
{
	struct vs_chan *c = &s->ch;
	if (!c->keep || s->killed)
		sess_abort(s, why);
	info("session %d: %s; detached", (int)s->pid, why);
	vs_chan_got(c, 1);
	close(c->fd);
	c->fd = -1;
	s->lone = vs_deadline(opt_linger * 1000L);
}

/* An ATTACH for this session came on another connection: take that
 * connection from the rendezvous (slot_attach), answer RESUME there with
 * how much of each stream this end has, and go on on it; a client still
 * attached loses the session to it.  An offset we no longer keep is
 * refused. */
static void sess_attach(struct sess *s)
{
	struct vs_chan *c = &s->ch;
	uint8_t b[20];
	uint64_t have;
	int k = accept4(s->rdv, NULL, NULL, SOCK_CLOEXEC), fd = -1;
	if (k >= 0 && rdv_ours(k) && (fd = fd_pass(k, -1)) >= 0 &&
	    vs_readall_by(k, b, 8, vs_deadline(HANDSHAKE_MS)) != 8)
		close(fd), fd = -1;
	close(k);
	if (fd < 0)
		return;
	have = vs_get64(b);
	if (have == VS_HAVE_ANY)
		have = c->kpos;
	if (have < c->kpos || have - c->kpos > c->ooff - c->koff) {
		send_error(fd, VS_E_NOENT, "that part of the session's output is gone");
		close(fd);
		return;
	}
	if (c->fd >= 0)
		sess_lost(s, "another client attached");
	vs_put64(b, s->acked = vs_chan_got(c, 0));
	vs_put64(b + 8, have);
	vs_put32(b + 16, myslot->flags);
	vs_nonblock(fd, 0);
	vs_send(fd, VS_RESUME, b, 20);
	vs_chan_rewind(c, fd, have);
	vs_nonblock(fd, 1);
	s->lone = 0;
	info("session %d: attached", (int)s->pid);
}

/* The host is gone or broke the protocol: the command's session dies. */
static void sess_abort(struct sess *s, const char *why)
{
	info("session %d: %s; killing it", (int)s->pid, why);
	if (s->pty >= 0)
		close(s->pty); /* hangup: SIGHUP to the terminal's session */
	if (!s->exited && reap_some(s)) {
		session_kill(s->pid, SIGHUP);
		session_kill(s->pid, SIGCONT);
		reap_all(200);
	}
	if (reap_some(NULL)) {
		session_kill(s->pid, SIGKILL);
		reap_all(2000);
	}
	slot_free(myslot);
	exit(0);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* One passwd line: when its uid is uid, fields 0 (name), 5 (home) and 6
 * (shell) into the caller's buffers of cap bytes.  0 when it matched. */
static int passwd_line(char *line, uid_t uid, char *user, char *home, char *shell, size_t cap)
{
	char *f[7];
	const char *q;
	int i;
	for (i = 0; i < 7 && line; i++) {
		f[i] = line;
		line = strchr(line, ':');
		if (line)
			*line++ = 0;
	}
	if (i < 7)
		return -1;
	q = f[2];
	if (num_scan(&q) != (long)uid || *q)
		return -1;
	fmt(user, cap, "%s", f[0]);
	fmt(home, cap, "%s", f[5]);
	fmt(shell, cap, "%s", f[6]);
	return 0;
}

/* The passwd entry of uid, read line by line (the file may be large; a
 * line longer than the buffer is skipped).  Parsed by hand: musl's
 * getpwuid brings malloc, stdio and an nscd client.  0 when found. */
static int passwd_lookup(uid_t uid, char *user, char *home, char *shell, size_t cap)
{
	static char b[4097];
	size_t have = 0;
	int skipping = 0, found = -1;
	int fd = openat(AT_FDCWD, "/etc/passwd", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (found < 0) {
		ssize_t r = read(fd, b + have, sizeof b - 1 - have);
		char *line = b, *nl;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			b[have] = 0;
			if (have && !skipping)
				found = passwd_line(b, uid, user, home, shell, cap);
			break;
		}
		have += (size_t)r;
		while (found < 0 && (nl = memchr(line, '\n', have - (size_t)(line - b)))) {
			*nl = 0;
			if (!skipping)
				found = passwd_line(line, uid, user, home, shell, cap);
			skipping = 0;
			line = nl + 1;
		}
		have -= (size_t)(line - b);
		memmove(b, line, have);
		if (have == sizeof b - 1)
			skipping = 1, have = 0;
	}
	close(fd);
	return found;
}

/* The command's environment, as ssh and login build it: nothing of the
 * agent's own (whoever started it), but HOME, SHELL, USER and LOGNAME
 * from the passwd entry of the user it runs as, a default PATH, and then
 * what the request sets (TERM with a pty, the host's -e variables), which
 * wins. */
static char **env_build(struct vs_exec *e)
{
	static char *env[VS_ENV_MAX + 8];
	static char defs[5][300];
	char user[96] = "", home[200] = "", shell[200] = "";
	uid_t uid = getuid();
	size_t n = 0;
	unsigned i, j;
	struct stat st;
	passwd_lookup(uid, user, home, shell, sizeof home);
	if (!*user && uid == 0)
		fmt(user, sizeof user, "root");
	if (!*home)
		fmt(home, sizeof home, "%s", uid == 0 && stat("/root", &st) == 0 && S_ISDIR(st.st_mode) ? "/root" : "/");
	if (!*shell || access(shell, X_OK) != 0)
		fmt(shell, sizeof shell, "/bin/sh");
	fmt(defs[0], sizeof defs[0], "PATH=%s",
	    uid == 0 ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" : "/usr/local/bin:/usr/bin:/bin");
	fmt(defs[1], sizeof defs[1], "HOME=%s", home);
	fmt(defs[2], sizeof defs[2], "SHELL=%s", shell);
	fmt(defs[3], sizeof defs[3], "USER=%s", user);
	fmt(defs[4], sizeof defs[4], "LOGNAME=%s", user);
	for (i = 0; i < (*user ? 5u : 3u); i++)
		env[n++] = defs[i];
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

/* execvp(3) by the command's PATH, not ours: a name with a slash as it
 * is, else in each directory of PATH in turn ("" is the current one); a
 * failure other than ENOENT, ENOTDIR and EACCES ends the search, and an
 * EACCES met on the way is the error.  (musl's execvp is 500 bytes.) */
static void exec_path(const char *file, char *const *argv, char **env)
{
	static char b[PATH_MAX], d[PATH_MAX];
	char *p, *z, c;
	int acc = 0;
	fmt(d, sizeof d, "%s", strchr(file, '/') ? "" : env_get(env, "PATH"));
	for (p = d;; p = z + 1) {
		z = strchrnul(p, ':');
		c = *z;
		*z = 0;
		fmt(b, sizeof b, "%s%s%s", p, *p ? "/" : "", file);
		execve(b, argv, env);
		acc |= errno == EACCES;
		if (!c || (errno != EACCES && errno != ENOENT && errno != ENOTDIR))
			break;
	}
	if (acc)
		errno = EACCES;
}

/* In the child: become the command.  Never returns. */
static void child_exec(struct vs_exec *e, int in, int out, int err, const char *slave)
{
	char **env = env_build(e);
	const char *shell = env_get(env, "SHELL"), *home = env_get(env, "HOME"), *base;
	setsid();
	if (slave) {
		int t = openat(AT_FDCWD, slave, O_RDWR);
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
	/* nologin says only "not available": say why, and the ways around */
	if (e->flags & (VS_EXEC_LOGIN | VS_EXEC_SHELL) && strlen(shell) > 7 && !strcmp(shell + strlen(shell) - 8, "/nologin"))
		warnx("the agent's user has the shell %s, which runs no command: -e SHELL=/bin/sh or --argv "
		      "runs one without it", shell);
	if (e->cwd && *e->cwd) {
		if (chdir(e->cwd) < 0) {
			warn_sys("unable to change directory to %s", e->cwd);
			_exit(126);
		}
	} else if (!home || chdir(home) < 0) {
		if (chdir("/") < 0)
			_exit(126);
	}
	/* argv[0] is the shell's name, as login and sshd give it: bash
	 * called sh runs in POSIX mode, a zsh emulates sh */
	base = strrchr(shell, '/');
	base = base ? base + 1 : shell;
	if (e->flags & VS_EXEC_LOGIN) {
		char arg0[64];
		char *av[2] = { arg0, NULL };
		fmt(arg0, sizeof arg0, "-%s", base);
		execve(shell, av, env);
	} else if (e->flags & VS_EXEC_SHELL) {
		char *av[4] = { (char *)base, (char *)"-c", (char *)e->argv[0], NULL };
		execve(shell, av, env);
	} else {
		exec_path(e->argv[0], (char *const *)e->argv, env);
	}
	warn_sys("unable to execute %s", e->flags & (VS_EXEC_LOGIN | VS_EXEC_SHELL) ? shell : e->argv[0]);
	_exit(errno == ENOENT ? 127 : 126);
}

/* devpts may not be mounted in an early initramfs: mount a private
 * instance and use its ptmx.  /dev/ptmx is what posix_openpt opens; musl
 * keeps it with ptsname, whose snprintf links stdio's exit code (500
 * bytes of the budget). */
static int pty_open_master(void)
{
	int m = openat(AT_FDCWD, "/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m >= 0)
		return m;
	mkdir("/dev/pts", 0755);
	if (mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0 && errno != EBUSY)
		return -1;
	return openat(AT_FDCWD, "/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
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
		s->pty_slave = openat(AT_FDCWD, slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (s->pty_slave < 0)
			return -1;
	} else if (pipe_make(pin, O_CLOEXEC) < 0 || pipe_make(pout, O_CLOEXEC) < 0 || pipe_make(perr, O_CLOEXEC) < 0) {
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
	if (!OUT_ROOM(&s->ch))
		return;
	r = read(*fd, vs_chan_data(&s->ch), VS_FRAME_MAX);
	if (r > 0) {
		vs_chan_commit(&s->ch, type, (size_t)r);
		return;
	}
	if (r < 0 && (errno == EINTR || (errno == EAGAIN && (!s->exited || *fd != s->pty))))
		return;
	/* EOF, EIO from a pty, or EAGAIN from a pty after the command has
	 * exited (we hold its slave): what it wrote before exiting has been
	 * read.  A pipe ends at EOF only: what the command left running in
	 * the background may still write, as with ssh. */
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

/* A signal from the host (SIGNAL), or from a KILL: to the foreground
 * group of the terminal, or to the command's group.  Either ends the
 * session on purpose (sess_end).  SIGKILL is the host killing it on
 * purpose (--timeout): all of it, what left the group too. */
static void sess_signal(struct sess *s, uint32_t sig)
{
	pid_t g = s->pty >= 0 ? tcgetpgrp(s->pty) : s->pid;
	if (sig == 0 || sig >= NSIG)
		return;
	if (sig == SIGKILL)
		session_kill(s->pid, SIGKILL);
	else
		kill(-(g > 0 ? g : s->pid), (int)sig);
	s->killed = 1;
}

/* Handle the frames buffered from the host.  STDIN data waits until the
 * command has taken the chunk before it (STDIN_EOF too, to stay after
 * it), but SIGNAL, WINSIZE and PING are handled at once even behind stdin
 * that the command does not read: Ctrl-C must reach such a command.  A
 * frame handled out of turn is cut out of the buffer (vs_chan_drop), so
 * that nothing the host sends can pass for a marker. */
static void sess_frames(struct sess *s)
{
	struct vs_chan *c = &s->ch;
	size_t off = c->ioff;
	int blocked = c->npend != 0;
	for (;;) {
		struct vs_hdr h;
		const uint8_t *p;
		int r = vs_chan_peek(c, off, &h, &p);
		if (r < 0) {
			send_error(c->fd, VS_E_PROTO, "malformed frame header (type %u, length %u)",
			           vs_get16(c->in + off + 4), vs_get32(c->in + off));
			sess_abort(s, "malformed frame");
		}
		if (r == 0)
			return;
		if (blocked && (h.type == VS_STDIN || h.type == VS_STDIN_EOF)) {
			off += VS_HDR + h.len; /* its turn comes when stdin drains */
			continue;
		}
		switch (h.type) {
		case VS_STDIN:
			if (s->in_w >= 0 && !s->sin_eof) {
				vs_chan_hold(c, p, h.len);
				blocked = h.len != 0;
			}
			break;
		case VS_STDIN_EOF:
			s->sin_eof = 1;
			break;
		case VS_SIGNAL:
			if (h.len == 4)
				sess_signal(s, vs_get32(p));
			break;
		case VS_WINSIZE:
			if (h.len == 8 && s->pty >= 0) {
				struct winsize ws = { vs_get16(p), vs_get16(p + 2), vs_get16(p + 4), vs_get16(p + 6) };
				ioctl(s->pty, TIOCSWINSZ, &ws);
			}
			break;
		case VS_PING:
			if (vs_chan_put(c, VS_PONG, p, h.len < 8 ? h.len : 8) < 0)
				return;
			break;
		case VS_ACK:
			if (h.len == 8)
				vs_chan_ack(c, vs_get64(p));
			break;
		default:
			send_error(c->fd, VS_E_UNKNOWN, "unexpected message type %u in an exec session", h.type);
			sess_abort(s, "unexpected message");
		}
		off = vs_chan_drop(c, off, VS_HDR + h.len);
	}
}

/* Read from the host; a session that outlives its connection says
 * every ACK_EVERY bytes how much of the host's stream it holds. */
#define ACK_EVERY 32768
static void sess_read_sock(struct sess *s)
{
	ssize_t r = vs_chan_read(&s->ch);
	uint64_t got;
	uint8_t b[8];
	if (r == 0)
		sess_lost(s, "host closed the connection");
	else if (r < 0 && errno != EAGAIN && errno != EINTR)
		sess_lost(s, "connection failed");
	else if (s->ch.keep && (got = vs_chan_got(&s->ch, 0)) - s->acked >= ACK_EVERY) {
		vs_put64(b, got);
		if (vs_chan_put(&s->ch, VS_ACK, b, 8) == 0)
			s->acked = got;
	}
}

static void sess_write_stdin(struct sess *s)
{
	ssize_t r = vs_chan_pass(&s->ch, s->in_w);
	if (r < 0 && errno != EAGAIN && errno != EINTR) {
		/* the command closed its stdin: drop what it will never read */
		s->ch.npend = 0;
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
	vs_chan_put(&s->ch, VS_EXIT, b, sizeof b);
}

static void sess_run(int sock, struct vs_exec *e)
{
	struct sess s;
	struct vs_chan *c = &s.ch;
	pid_t agent = getppid();
	memset(&s, 0, sizeof s);
	vs_chan_init(c, sock, sess_in, sizeof sess_in, sess_out, VS_CHAN_BUF);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigchld_pipe();
	if (sess_spawn(&s, e) < 0) {
		send_error(sock, VS_E_EXEC, "unable to start the command: %s", vs_strerror(errno));
		exit(1);
	}
	{
		/* our parent kills this session should we die of a signal */
		pid_t m[2] = { getpid(), s.pid };
		if (write(sid_fd[1], m, sizeof m) < 0) {
			/* no parent that listens (a request on the control connection) */
		}
	}
	s.rdv = -1;
	if (myslot && opt_linger && (e->flags & VS_EXEC_DETACH) && (s.rdv = fwd_rdv(myslot->id, 1, 's')) >= 0) {
		/* the session outlives its connection: its id first */
		uint8_t b[VS_SESSION_ID + 4];
		memcpy(b, myslot->id, VS_SESSION_ID);
		vs_put32(b + VS_SESSION_ID, (uint32_t)opt_linger);
		c->keep = 1;
		c->ocap = sizeof sess_out;
		vs_chan_put(c, VS_SESSION, b, sizeof b);
	} else if (myslot) {
		myslot->flags &= ~VS_EXEC_DETACH;
	}
	slot_show(s.pid);
	vs_nonblock(sock, 1);
	for (;;) {
		struct pollfd p[6];
		int n = 0, isock, iout = -1, ierr = -1, iin = -1;
		short ev;
		if (s.exited && s.out_r < 0 && s.err_r < 0 && !s.exit_q) {
			int hup = s.pty_slave >= 0;
			close_fd(&s.pty_slave);
			sess_exit_frame(&s);
			s.exit_q = 1;
			s.exit_at = c->kpos + (c->olen - c->koff);
			if (!c->keep && vs_chan_drain(c) < 0)
				sess_abort(&s, "connection failed");
			sess_end(&s, hup);
		}
		/* done once the EXIT is out, or, kept, acknowledged */
		if (s.exit_q && (!c->keep || c->kpos >= s.exit_at)) {
			info("session %d: done", (int)s.pid);
			slot_free(myslot);
			if (c->fd >= 0)
				vs_chan_close(c, 2000);
			exit(0);
		}
		if (myslot) {
			myslot->state = (c->fd < 0 ? VS_SS_ALONE : 0) | (s.exit_q ? VS_SS_EXITED : 0);
			myslot->status = (uint32_t)s.status;
			myslot->kept = (uint32_t)(c->olen - c->koff);
		}
		isock = n;
		ev = (short)(vs_chan_events(c) & ~(c->st & VS_CH_DEAD ? POLLOUT : 0));
		p[n++] = (struct pollfd){ c->fd, ev, 0 }; /* detached: -1, left out */
		p[n++] = (struct pollfd){ sigpipe_fd[0], POLLIN, 0 };
		if (s.out_r >= 0 && OUT_ROOM(c))
			iout = n, p[n++] = (struct pollfd){ s.out_r, POLLIN, 0 };
		if (s.err_r >= 0 && OUT_ROOM(c))
			ierr = n, p[n++] = (struct pollfd){ s.err_r, POLLIN, 0 };
		if (s.in_w >= 0 && c->npend)
			iin = n, p[n++] = (struct pollfd){ s.in_w, POLLOUT, 0 };
		p[n++] = (struct pollfd){ s.rdv, POLLIN, 0 }; /* none: -1, left out */
		/* once the command has exited, drain its pty without waiting;
		 * detached, wait no longer than --linger */
		if (poll(p, (nfds_t)n, s.exited && s.pty >= 0 ? 0 : s.lone ? 1000 : -1) < 0 && errno != EINTR)
			die_sys("unable to poll");
		/* detached, it lives no longer than --linger, nor the agent */
		if (s.lone && vs_now_ms() >= s.lone)
			sess_abort(&s, "no client attached within --linger");
		if (s.lone && getppid() != agent)
			sess_abort(&s, "the agent stopped");
		if (p[1].revents) {
			sigpipe_drain();
			reap(&s);
			if (myslot)
				sess_signal(&s, (uint32_t)__atomic_exchange_n(&myslot->sig, 0, __ATOMIC_ACQ_REL));
		}
		if (p[isock].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (ev & POLLIN)
				sess_read_sock(&s);
			else if (p[isock].revents & (POLLHUP | POLLERR))
				sess_lost(&s, "host closed the connection"); /* no room to read its EOF */
		}
		/* the host stopped sending while its stdin fills our input: an
		 * empty STDOUT tells a half-close from a host gone */
		if (c->fd >= 0 && vs_chan_probe(c, p[isock].revents))
			vs_chan_put(c, VS_STDOUT, NULL, 0);
		if (c->fd >= 0 && (p[isock].revents & POLLOUT)) {
			ssize_t r = vs_chan_flush(c);
			/* the host reads no more: what it sent (its last ACK) is
			 * read first, and its EOF ends the connection then; with
			 * no room to read (stdin the command does not take), the
			 * connection ends now */
			if (r < 0 && errno != EAGAIN && errno != EINTR && (!(c->st & VS_CH_DEAD) || !vs_chan_room(c)))
				sess_lost(&s, "connection failed");
		}
		if (p[n - 1].revents)
			sess_attach(&s);
		if (iin >= 0 && p[iin].revents)
			sess_write_stdin(&s);
		if (s.out_r >= 0 && ((s.exited && s.pty >= 0) || (iout >= 0 && p[iout].revents)))
			pump_out(&s, &s.out_r, VS_STDOUT);
		if (s.err_r >= 0 && ierr >= 0 && p[ierr].revents)
			pump_out(&s, &s.err_r, VS_STDERR);
		sess_frames(&s);
		if (s.sin_eof && !c->npend && s.in_w >= 0) {
			stdin_eof(&s);
			s.sin_eof = 2; /* done */
		}
	}
}

/* ---- framed connections: handshake and dispatch ---- */

static uint8_t fbuf[VS_FRAME_MAX];

/* the operations --deny and --only name, in the order of their bits */
static const char *const op_names[] = { "exec", "shell", "put", "get", "power", "forward", "legacy" };
static const uint32_t op_bits[] = { VS_CAP_EXEC, VS_CAP_PTY, VS_CAP_PUT, VS_CAP_GET, VS_CAP_POWER, VS_CAP_FORWARD, OP_LEGACY };

static const char *op_name(uint32_t op)
{
	int i;
	for (i = 0; i < 6 && op_bits[i] != op; i++)
		;
	return op_names[i];
}

/* After the magic: the host's HELLO, ours, and when a key is involved the
 * AUTH exchange (PROTOCOL.md 3).  The whole of it by one deadline.  0 when
 * the host is admitted, with *how naming the proof; -1 (the host was told
 * why, and it is logged) when not.  Facts go only to a host admitted, and
 * only on a control connection. */
static int handshake(int fd, const struct peer *pe, uint64_t token, int facts, const char **how)
{
	long deadline = vs_deadline(HANDSHAKE_MS);
	struct vs_hello hh, ah;
	struct vs_hdr h;
	struct sha256 tr; /* the transcript the MACs cover */
	uint8_t b[512], mac[VS_MAC];
	size_t n;
	int r = vs_recv_by(fd, &h, fbuf, sizeof fbuf, deadline), need_key, mutual;
	if (r < 0) {
		if (errno == EPROTO || errno == EMSGSIZE)
			send_error(fd, VS_E_PROTO, "malformed frame before HELLO");
		warnx("%s: %s before HELLO", pe->desc,
		      errno == ETIMEDOUT ? "nothing" : errno ? "a malformed frame" : "the host closed");
		return -1;
	}
	if (h.type != VS_HELLO) {
		send_error(fd, VS_E_PROTO, "expected HELLO, got message type %u", h.type);
		warnx("%s: expected HELLO, got message type %u", pe->desc, h.type);
		return -1;
	}
	if (vs_hello_decode(fbuf, (size_t)r, &hh) < 0) {
		send_error(fd, VS_E_PROTO, "malformed HELLO (%d bytes; at least 16, then fields)", r);
		warnx("%s: malformed HELLO of %d bytes", pe->desc, r);
		return -1;
	}
	if (hh.version != VS_VERSION) {
		send_error(fd, VS_E_VERSION, "protocol version %u not supported (agent speaks %u)", hh.version, VS_VERSION);
		warnx("%s: host speaks protocol version %u; refused", pe->desc, hh.version);
		return -1;
	}
	sha256_init(&tr);
	sha256_update(&tr, fbuf, (size_t)r);
	host_flags = hh.flags;
	memset(&ah, 0, sizeof ah);
	ah.caps = ops & VS_CAP_ALL;
	ah.token = token;
	ah.has_nonce = 1;
	vs_nonce(ah.nonce);
	if (!(ah.has_cid = own_cid(fd, &ah.cid)))
		vs_unix_link(fd, ah.path, sizeof ah.path);
	fmt(ah.software, sizeof ah.software, "vsock-agent " AGENT_VERSION);
	need_key = opt_auth == AUTH_KEY || (opt_auth == AUTH_AUTO && !pe->kernel);
	mutual = key.n && (hh.flags & VS_HF_KEY) && opt_auth != AUTH_NONE;
	if (need_key && !key.n) {
		send_error(fd, VS_E_AUTH, "not authenticated: this agent admits a privileged host process "
		                          "(a reserved port; root on unix:) or its key holder");
		warnx("refused %s: not authenticated (%s)", pe->desc, pe->kernel ? "--auth key" : "unprivileged, no key");
		return -1;
	}
	if (!need_key && !mutual) {
		ah.flags = (opt_auth == AUTH_NONE ? VS_HF_OPEN : VS_HF_KERNEL) | hflags;
		*how = opt_auth == AUTH_NONE ? "none" : "kernel";
		if (facts)
			facts_fill(&ah);
		n = vs_hello_encode(b, sizeof b, &ah);
		return vs_send(fd, VS_HELLO, b, n) < 0 ? -1 : 0;
	}
	/* the key: the host proves it first, and learns nothing before.  Its
	 * proof covers the guest it says it reached: not us, and the proof
	 * was made for another connection (PROTOCOL.md 3.3) */
	if (vs_link_differs(&hh, &ah)) {
		send_error(fd, VS_E_AUTH, "refused: the host's HELLO is for another guest (a relayed handshake?)");
		warnx("refused %s: its HELLO is for another guest", pe->desc);
		return -1;
	}
	ah.flags = VS_HF_KEY | hflags;
	n = vs_hello_encode(b, sizeof b, &ah);
	sha256_update(&tr, b, n);
	if (vs_send(fd, VS_HELLO, b, n) < 0)
		return -1;
	r = vs_recv_by(fd, &h, fbuf, sizeof fbuf, deadline);
	if (r < 0 || h.type != VS_AUTH || r != VS_MAC || !hh.has_nonce) {
		if (r >= 0)
			send_error(fd, VS_E_AUTH, "expected AUTH with a %d-byte MAC after a HELLO with a nonce", VS_MAC);
		warnx("refused %s: no AUTH%s", pe->desc, r < 0 && errno == ETIMEDOUT ? " in time" : "");
		return -1;
	}
	vs_auth_mac(&key, 0, pe->dialed, &tr, mac);
	if (vs_memeq(mac, fbuf, VS_MAC)) {
		send_error(fd, VS_E_AUTH, "authentication failed: the host does not hold this agent's key "
		                          "(or its proof was made for another connection)");
		warnx("refused %s: wrong key", pe->desc);
		return -1;
	}
	*how = "key";
	sha256_update(&tr, fbuf, VS_MAC);
	{
		/* after the MAC, the facts (a control connection's only): our
		 * HELLO's fields without its nonce; our MAC covers them too */
		struct vs_wr w = { b, VS_MAC, sizeof b, 0 };
		if (facts) {
			facts_fill(&ah);
			ah.has_nonce = ah.has_cid = 0;
			*ah.path = 0;
			vs_fields_put(&w, &ah);
		}
		sha256_update(&tr, b + VS_MAC, w.n - VS_MAC);
		vs_auth_mac(&key, 1, pe->dialed, &tr, b);
		return vs_send(fd, VS_AUTH, b, w.n) < 0 ? -1 : 0;
	}
}

int file_session(int fd, uint16_t type, const uint8_t *p, size_t n);

/* Is this operation allowed here?  If not, the host gets an ERROR that
 * names the switch that took it away. */
static int op_allowed(int fd, uint32_t op)
{
	if (ops & op)
		return 1;
	send_error(fd, VS_E_DENIED, "%s is denied by this agent (%s)", op_name(op), ops_why);
	warnx("refused a %s request (%s)", op_name(op), ops_why);
	return 0;
}

/* SESSIONS (audited as ps) or KILL (as kill, with the id and signal):
 * the answer is the list, or OK once the session's process has the
 * signal to send.  The exit status. */
static int sessions_serve(int fd, const struct peer *pe, const char *how, uint16_t type, int n)
{
	char id[2 * VS_SESSION_ID + 1], sig[12];
	const char *av[2] = { id, sig };
	uint32_t s;
	if (type == VS_SESSIONS) {
		audit(pe, how, "ps", NULL, 0);
		sessions_send(fd, fbuf);
		return 0;
	}
	if (n != VS_SESSION_ID + 4) {
		send_error(fd, VS_E_PROTO, "malformed KILL request");
		return 1;
	}
	s = vs_get32(fbuf + VS_SESSION_ID);
	xf_hex(fbuf, VS_SESSION_ID, id);
	fmt(sig, sizeof sig, "%u", s);
	audit(pe, how, "kill", av, 2);
	if (s == 0 || s >= NSIG) {
		send_error(fd, VS_E_PROTO, "no signal %u", s);
		return 1;
	}
	if (slot_kill(fbuf, (int)s) < 0) {
		send_error(fd, VS_E_NOENT, "no session %s on this agent", id);
		return 1;
	}
	vs_send(fd, VS_OK, NULL, 0);
	return 0;
}

/* ---- forwarding ---- */

/* FWD (PROTOCOL.md 5.6): connect in the guest (-L, -W), listen there
 * (-R), or take what such a listener accepted (family 0: a claim, by the
 * listener's id); then relay.  The controller sends addresses as numbers,
 * so the agent needs no resolver (musl's getaddrinfo is tens of KiB, and
 * a guest without a network has nothing to ask) and no parser. */
static void fwd_serve(int fd, const struct peer *pe, const char *how, int n)
{
	/* by family: where the address goes in a sockaddr, and its length */
	static const uint8_t at[11] = { 8, 2, 4, [10] = 8 }, len[11] = { 8, 0, 4, [10] = 16 };
	struct sockaddr_storage ss;
	uint8_t *a = (uint8_t *)&ss, id[VS_NONCE_LEN];
	int lis = vs_get32(fbuf) & VS_FWD_LISTEN;
	unsigned fam = vs_get16(fbuf + 4), port = vs_get16(fbuf + 6), i;
	size_t k = (size_t)n - 8;
	char w[80];
	const char *wp = w;
	int s, r = -1, g;
	socklen_t l = fam == AF_UNIX ? sizeof(struct sockaddr_un) : sizeof ss;
	/* a path: not an abstract name (the rendezvous sockets are) */
	if (n < 8 || fam > 10 || (fam == AF_UNIX ? k - 1 >= 107 || !fbuf[8] : !len[fam] || k != len[fam])) {
		send_error(fd, VS_E_PROTO, "malformed FWD request");
		exit(1);
	}
	memset(&ss, 0, sizeof ss);
	a[2] = (uint8_t)(port >> 8), a[3] = (uint8_t)port; /* a path goes over it */
	memcpy(a + at[fam], fbuf + 8, k);
	ss.ss_family = (sa_family_t)fam;
	if (fam == AF_UNIX)
		fmt(w, sizeof w, "%s", a + 2);
	else if (fam == AF_INET)
		fmt(w, sizeof w, "%u.%u.%u.%u:%u", a[4], a[5], a[6], a[7], port);
	else
		for (i = 0, *w = '['; i < 18; i += 2)
			fmt(w + strlen(w), 8, i < 16 ? "%x%c" : "%u", i < 16 ? (unsigned)(a[8 + i] << 8 | a[9 + i]) : port,
			    i < 14 ? ':' : ']');
	if (fam) {
		audit(pe, how, lis ? "forward -R" : "forward", &wp, 1);
		s = g = socket((int)fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lis) {
			setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &l, sizeof(int)); /* l: nonzero, on */
			vs_nonce(id);
			if (bind(s, (struct sockaddr *)&ss, l) == 0 && listen(s, 128) == 0)
				r = fwd_rdv(id, 1, 'f');
		} else {
			r = connect(s, (struct sockaddr *)&ss, l);
		}
	} else {
		/* within the limit, the connection the listener took */
		s = fwd_rdv(a + 8, 0, 'f');
		if (s >= 0 && vs_wait_by(s, POLLIN, vs_deadline(HANDSHAKE_MS)) == 0)
			r = g = fd_pass(s, -1);
		*w = 0;
	}
	if (r < 0) {
		send_error(fd, VS_E_IO, "unable to %s %s: %s", !fam ? "claim a connection" : lis ? "listen on" : "connect to",
		           w, vs_strerror(errno));
		exit(1);
	}
	if (lis) {
		/* each connection it takes is claimed by a session of its own:
		 * ACCEPTED, then, one at a time, the claim */
		vs_send(fd, VS_OK, id, VS_FWD_ID);
		for (;;) {
			struct pollfd p[2] = { { fd, POLLIN, 0 }, { s, POLLIN, 0 } };
			poll(p, 2, -1);
			if (p[0].revents && read(fd, fbuf, sizeof fbuf) <= 0) {
				if (fam == AF_UNIX)
					unlink((char *)a + 2);
				exit(0);
			}
			if (p[1].revents && (g = accept4(s, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
				audit(pe, how, "forward -R accepted", &wp, 1);
				vs_send(fd, VS_FWD_ACCEPTED, NULL, 0);
				k = vs_wait_by(r, POLLIN, vs_deadline(HANDSHAKE_MS)) ? (size_t)-1 : (size_t)accept4(r, NULL, NULL, SOCK_CLOEXEC);
				if (rdv_ours((int)k))
					fd_pass((int)k, g);
				close((int)k);
				close(g);
			}
		}
	}
	{
		struct vs_chan c;
		struct vs_hdr h;
		const uint8_t *p;
		vs_chan_init(&c, fd, sess_in, sizeof sess_in, sess_out, sizeof sess_out);
		if (vs_chan_relay(&c, g, g, &h, &p) == 0)
			exit(0);
		/* a break reaches the local end as one: a reset */
		setsockopt(g, SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 }, sizeof(struct linger));
		exit(1);
	}
}

/* One request on a session connection.  Returns only if the frame was
 * not a session request (the caller decides). */
static void serve_request(int fd, const struct peer *pe, const char *how, struct vs_hdr *h, int n)
{
	struct vs_exec e;
	const char *path;
	uint32_t fl;
	int alg;
	switch (h->type) {
	case VS_EXEC:
		if (vs_exec_decode(fbuf, (size_t)n, &e) < 0) {
			send_error(fd, VS_E_PROTO, "malformed EXEC request");
			exit(1);
		}
		if (!op_allowed(fd, e.flags & VS_EXEC_PTY ? VS_CAP_PTY : VS_CAP_EXEC))
			exit(1);
		/* what runs: the login shell, one string for the shell, or argv */
		n = e.flags & VS_EXEC_LOGIN ? 0 : e.flags & VS_EXEC_SHELL ? 1 : (int)e.argc;
		audit(pe, how, e.flags & VS_EXEC_PTY ? "shell" : "exec", e.argv, (unsigned)n);
		slot_take(pe, how, &e, (unsigned)n);
		sess_run(fd, &e);
		exit(0);
	case VS_SESSIONS:
	case VS_KILL:
		/* whoever may run commands here may see and end them */
		if (!op_allowed(fd, ops & VS_CAP_SESSIONS ? VS_CAP_SESSIONS : VS_CAP_EXEC))
			exit(1);
		exit(sessions_serve(fd, pe, how, h->type, n));
	case VS_ATTACH:
		/* whoever may run commands here may carry one on */
		if (!op_allowed(fd, ops & VS_CAP_RESUME ? VS_CAP_RESUME : VS_CAP_EXEC))
			exit(1);
		if (n != VS_SESSION_ID + 8) {
			send_error(fd, VS_E_PROTO, "malformed ATTACH request");
			exit(1);
		}
		{
			char id[2 * VS_SESSION_ID + 1];
			const char *av = id;
			xf_hex(fbuf, VS_SESSION_ID, id);
			audit(pe, how, "attach", &av, 1);
		}
		exit(slot_attach(fd, fbuf, fbuf + VS_SESSION_ID));
	case VS_PUT:
	case VS_GET:
		if (!op_allowed(fd, h->type == VS_PUT ? VS_CAP_PUT : VS_CAP_GET))
			exit(1);
		if (xf_request_parse(fbuf, (size_t)n, &fl, &alg, &path) == 0)
			audit(pe, how, h->type == VS_PUT ? "put" : "get", &path, 1);
		exit(file_session(fd, h->type, fbuf, (size_t)n));
	case VS_FWD:
		if (op_allowed(fd, VS_CAP_FORWARD))
			fwd_serve(fd, pe, how, n);
		exit(1);
	case VS_POWER:
		if (n != 4) {
			send_error(fd, VS_E_PROTO, "malformed POWER request");
			exit(1);
		}
		if (!op_allowed(fd, VS_CAP_POWER))
			exit(1);
		path = vs_get32(fbuf) == VS_POWER_REBOOT ? "reboot" : "poweroff";
		audit(pe, how, "power", &path, 1);
		sig_set(SIGTERM, SIG_IGN); /* our init ends everything so: the answer first */
		sync();
		/* SIGINT is Ctrl-Alt-Del: a reboot for systemd, busybox and our
		 * init alike; power-off is systemd's SIGRTMIN+4 (38) and
		 * busybox's SIGUSR2 (ours too).  An init ignores a signal it
		 * does not handle. */
		if (*path == 'r' ? kill(1, SIGINT) : kill(1, 38) | kill(1, SIGUSR2)) {
			send_error(fd, VS_E_IO, "unable to signal PID 1: %s", vs_strerror(errno));
			exit(1);
		}
		vs_send(fd, VS_OK, NULL, 0);
		exit(0);
	}
}

/* After the handshake: PING until a request arrives, then the request. */
static void session_loop(int fd, const struct peer *pe, const char *how)
{
	for (;;) {
		struct vs_hdr h;
		int n = vs_recv(fd, &h, fbuf, sizeof fbuf);
		if (n < 0) {
			if (errno)
				warn_sys("session: bad frame from host");
			exit(errno ? 1 : 0);
		}
		serve_request(fd, pe, how, &h, n);
		if (h.type == VS_PING) {
			vs_send(fd, VS_PONG, fbuf, n < 8 ? (size_t)n : 8);
			continue;
		}
		send_error(fd, h.type == VS_OPEN ? VS_E_PROTO : VS_E_UNKNOWN,
		           "unexpected message type %u on a session connection", h.type);
		exit(1);
	}
}

/* A session connection: listen mode, or a dial-back. */
static void serve_session(int fd, const struct peer *pe, uint64_t token)
{
	const char *how = "";
	if (handshake(fd, pe, token, 0, &how) < 0)
		exit(RC_REFUSED);
	session_loop(fd, pe, how);
}

/* Dial back for OPEN(token), or as the standby (token 0: one of our own):
 * a new connection that becomes one session. */
static void dialback(uint64_t token, int note)
{
	struct peer pe;
	uint8_t m[VS_MAGIC_LEN];
	const char *how = "";
	int fd;
	if (!token) {
		/* the standby: ready before it is asked for, so a session through
		 * the hub needs no fork, dial and handshake; it tells the control
		 * process its token once its session begins, and dies with it
		 * until then */
		uint8_t n[VS_NONCE_LEN];
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		while (!token) { /* a token of our own */
			vs_nonce(n);
			token = vs_get64(n);
		}
		hflags = VS_HF_STANDBY;
	}
	fd = dial(&dial_addr, 0);
	if (fd < 0)
		exit(1);
	if (dial_addr.kind == VS_ADDR_VSOCK)
		vs_vsock_buffer(fd);
	peer_dialed(&pe, fd);
	if (vs_readall_by(fd, m, sizeof m, vs_deadline(HANDSHAKE_MS)) != sizeof m || memcmp(m, VS_MAGIC, sizeof m)) {
		warnx("dial-back: host did not open with the protocol magic");
		exit(1);
	}
	if (handshake(fd, &pe, token, 0, &how) < 0)
		exit(RC_REFUSED);
	if (hflags) {
		struct pollfd p = { fd, POLLIN, 0 };
		while (poll(&p, 1, -1) < 0 && errno == EINTR)
			;
		prctl(PR_SET_PDEATHSIG, 0);
		if (write(note, &token, sizeof token) < 0) {
			/* the control process is gone: serve the session anyway */
		}
		close(note);
	}
	session_loop(fd, &pe, how);
}

/* The parts of a forked child that are its parent's only. */
static void child_detach(void)
{
	sigpipe_close();
	sig_set(SIGCHLD, SIG_DFL);
	sig_set(SIGTERM, SIG_DFL);
	sig_set(SIGINT, SIG_DFL);
	sig_set(SIGHUP, SIG_DFL);
}

/* The next standby dial-back, when the host asked for them (the hub). */
static pid_t standby_start(int ctl, int note)
{
	pid_t pid = fork();
	if (pid == 0) {
		close(ctl);
		child_detach();
		dialback(0, note);
	}
	return pid < 0 ? 0 : pid;
}

/* Dial-back sessions in flight: their pids, and the tokens to report in
 * ENDED when they are done (for the hub's session count). */
#define MAXKIDS 4096
static struct kid {
	pid_t pid;
	uint64_t token;
} kids[MAXKIDS];

static void kid_add(pid_t pid, uint64_t token)
{
	int i;
	for (i = 0; i < MAXKIDS; i++)
		if (!kids[i].pid) {
			kids[i].pid = pid, kids[i].token = token;
			return;
		}
}

/* Each session process tells us its command's session id (sid_fd) as
 * soon as it has one: should it die of a signal, that session would be
 * left to run unwatched, and dies.  What sessions that ended left running
 * (a daemon, a nohup job) is our child by then too, and is only reaped. */
static struct { pid_t pid, sid; } sids[MAXKIDS];

static pid_t sid_take(pid_t pid)
{
	pid_t m[2], sid = 0;
	int i;
	while (read(sid_fd[0], m, sizeof m) == sizeof m)
		for (i = 0; i < MAXKIDS; i++)
			if (!sids[i].pid) {
				sids[i].pid = m[0], sids[i].sid = m[1];
				break;
			}
	for (i = 0; i < MAXKIDS; i++)
		if (sids[i].pid == pid)
			sid = sids[i].sid, sids[i].pid = 0;
	return sid;
}

/* Reap children; for each session, report ENDED on ctl (when >= 0). */
static void children_reap(int ctl)
{
	int st, i;
	pid_t p, sid;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p == spare)
			spare = 0; /* a new one is made */
		if (p == standby_pid)
			standby_pid = 0;
		sid = sid_take(p);
		if (WIFSIGNALED(st) && sid > 1)
			session_kill(sid, SIGKILL);
		slot_forget(p);
		for (i = 0; i < MAXKIDS; i++) {
			if (kids[i].pid != p)
				continue;
			if (WIFSIGNALED(st))
				warnx("session process %d died of signal %d", (int)p, WTERMSIG(st));
			if (ctl >= 0 && kids[i].token) {
				uint8_t t[8];
				vs_put64(t, kids[i].token);
				vs_send(ctl, VS_ENDED, t, 8);
			}
			kids[i].pid = 0;
			break;
		}
	}
}


static void hush_count(void)
{
	if (hushed)
		warnx("%u more refusals of the host, not logged one by one", hushed);
	hushed = 0;
}

/* Dial mode's first connection: HELLO, then OPEN/PING/BYE until the host
 * closes; or a request right away, served on this connection.  Returns 0
 * when the host released us (BYE), RC_GONE when it closed without. */
static int serve_control(int fd, const struct peer *pe)
{
	static const int sigs[] = { SIGCHLD };
	static int note[2] = { -1, -1 }; /* the last host's, when we dial again */
	const char *how = "";
	long next = 0;
	int r;
	muted = hush;
	r = handshake(fd, pe, 0, 1, &how);
	muted = 0;
	if (r < 0)
		return RC_REFUSED;
	hush_count();
	info("control connection to %s (auth %s)", pe->desc, how);
	stages_send(fd);
	if (hflags) /* a report connection: said */
		return 0;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigpipe_open(sigs, 1);
	close_fd(&note[0]);
	close_fd(&note[1]);
	if ((host_flags & VS_HF_STANDBY) && pipe_make(note, O_CLOEXEC | O_NONBLOCK) < 0)
		note[0] = -1;
	for (;;) {
		struct pollfd p[3] = { { fd, POLLIN, 0 }, { sigpipe_fd[0], POLLIN, 0 }, { note[0], POLLIN, 0 } };
		struct vs_hdr h;
		long wait = -1;
		int n;
		/* a standby dial-back while the host wants one; one that died
		 * unused (the host refused it) is replaced a second later */
		if (note[0] >= 0 && !standby_pid) {
			wait = next - vs_now_ms();
			if (wait <= 0) {
				standby_pid = standby_start(fd, note[1]);
				next = vs_now_ms() + 1000;
				wait = standby_pid ? -1 : 1000;
			}
		}
		if (poll(p, 3, (int)wait) < 0) {
			if (errno == EINTR)
				continue;
			die_sys("unable to poll");
		}
		if (p[2].revents) {
			uint64_t t;
			while (read(note[0], &t, sizeof t) == sizeof t) {
				kid_add(standby_pid, t); /* its session: ENDED when done */
				standby_pid = 0, next = 0;
			}
		}
		if (p[1].revents) {
			sigpipe_read();
			children_reap(fd);
		}
		if (!p[0].revents)
			continue;
		n = vs_recv_by(fd, &h, fbuf, sizeof fbuf, vs_deadline(FRAME_MS));
		if (n < 0) {
			/* a reset is a host gone too (it closed with our ENDED unread),
			 * and so is virtio-vsock's transport reset (a snapshot restored,
			 * a migration), which leaves the socket unconnected: ENOTCONN */
			if (errno == 0 || errno == ECONNRESET || errno == ENOTCONN)
				return RC_GONE;
			warn_sys("control: bad frame from host");
			return 1;
		}
		if (h.type == VS_OPEN && n == 8) {
			uint64_t token = vs_get64(fbuf);
			pid_t pid = fork();
			if (pid == 0) {
				close(fd);
				child_detach();
				dialback(token, -1);
			}
			if (pid < 0)
				send_error(fd, VS_E_IO, "unable to fork: %s", vs_strerror(errno));
			else
				kid_add(pid, token);
			continue;
		}
		if (h.type == VS_PING) {
			vs_send(fd, VS_PONG, fbuf, n < 8 ? (size_t)n : 8);
			continue;
		}
		if (h.type == VS_BYE) {
			info("released by the host");
			return 0;
		}
		child_detach();
		serve_request(fd, pe, how, &h, n);
		send_error(fd, VS_E_UNKNOWN, "unexpected message type %u on the control connection", h.type);
		return 1;
	}
}

/* Serve one connection from start to end.  Returns the exit status. */
static int serve_conn(int fd, int control, const struct peer *pe)
{
	uint8_t b[VS_LEGACY_MAX + 8];
	size_t n = 0;
	int r = sniff(fd, b, &n, listening ? vs_deadline(FIRST_BYTES_MS) : VS_NEVER);
	if (r < 0) {
		info("%s closed without a request", pe->desc);
		return control ? RC_GONE : 0;
	}
	if (r == 0 && n >= 2 - !opt_persistent && b[0] == (uint8_t)VS_MAGIC[0] &&
	    (opt_persistent ? b[1] == (uint8_t)VS_MAGIC[1] : 1)) {
		/* began like the magic but is not it: neither a text command
		 * nor a length a legacy host would send */
		warnx("unrecognised protocol magic from %s; closing", pe->desc);
		return 1;
	}
	if (r == 1) {
		if (control)
			return serve_control(fd, pe);
		serve_session(fd, pe, 0);
		return 0;
	}
	/* legacy cannot authenticate: in listen mode only the kernel's proof
	 * admits it; in dial mode it is served as vsock_guest_exec did */
	if (listening && !pe->kernel && opt_auth != AUTH_NONE) {
		warnx("refused a legacy command from %s: not authenticated (legacy protocols carry no key)", pe->desc);
		return 1;
	}
	if (!(ops & OP_LEGACY)) {
		warnx("refused a legacy command from %s (%s)", pe->desc, ops_why);
		return 1;
	}
	legacy_peer = pe;
	legacy_how = opt_auth == AUTH_NONE || !pe->kernel ? "none" : "kernel";
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
	int nul, p[2];
	char c;
	pid_t pid;
	if (pipe_make(p, O_CLOEXEC) < 0)
		die_sys("unable to create a pipe");
	if ((pid = fork()) < 0)
		die_sys("unable to fork");
	if (pid > 0) {
		/* Our exit ends the command that started us, and whoever ran it
		 * may kill what it left in its session (a vsock-shell session
		 * does): go only once the child has a session of its own (its
		 * end of the pipe closes). */
		close(p[1]);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	setsid();
	close(p[0]);
	close(p[1]);
	if (chdir("/") < 0)
		die_sys("unable to change directory to /");
	nul = openat(AT_FDCWD, "/dev/null", O_RDWR);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		if (!opt_verbose)
			dup2(nul, 2);
		if (nul > 2)
			close(nul);
	}
}

static struct stat lsock; /* the Unix socket we bound, to remove it at the end */

/* SIGTERM, SIGINT, SIGHUP: remove our Unix socket (only if it is still
 * ours: a newer listener may have taken a stale path) and go. */
static void listen_stop(const struct vs_addr *a, int sig)
{
	struct stat st;
	if (a->kind == VS_ADDR_UNIX && lstat(a->path, &st) == 0 && st.st_ino == lsock.st_ino &&
	    st.st_dev == lsock.st_dev)
		unlink(a->path);
	info("stopping on signal %d", sig);
	exit(0);
}

/* The spare: a session process made ahead of its connection, so that no
 * fork stands between a host's connect and the agent's HELLO.  It waits
 * in accept(); having taken a connection it says so on `taken` (the
 * listener then makes the next spare) and serves it.  Until then it is
 * called vsock-spare, and it dies with the listener. */
static void spare_run(int lfd, int taken, pid_t listener)
{
	prctl(PR_SET_NAME, "vsock-spare");
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != listener)
		_exit(0);
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		struct peer pe;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
				nap(100);
			else if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN)
				warn_sys("unable to accept");
			continue;
		}
		if (!peer_allowed(&ss)) {
			warnx("refused connection from CID %u (allowed: %u)", ((struct vs_sockaddr_vm *)&ss)->svm_cid, opt_allow);
			close(fd);
			continue;
		}
		pid_t me = getpid();
		prctl(PR_SET_PDEATHSIG, 0); /* a session outlives its listener */
		prctl(PR_SET_NAME, "vsock-agent");
		if (write(taken, &me, sizeof me) < 0) {
			/* the listener is gone: serve this one all the same */
		}
		close(taken);
		close(lfd);
		if (ss.ss_family == AF_VSOCK)
			vs_vsock_buffer(fd);
		peer_accepted(&pe, fd, &ss);
		exit(serve_conn(fd, 0, &pe));
	}
}

static __attribute__((noreturn)) void listen_loop(const struct vs_addr *a, int background)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP };
	char as[160];
	int lfd = vs_listen(a), taken[2];
	if (lfd < 0) {
		if (errno == EADDRNOTAVAIL && a->kind == VS_ADDR_VSOCK)
			die("unable to listen on %s: address not available (no vsock transport for that CID? listen on 'any')",
			    vs_addr_str(a, as, sizeof as));
		die("unable to listen on %s: %s", vs_addr_str(a, as, sizeof as), vs_listen_why(errno));
	}
	if (a->kind == VS_ADDR_UNIX)
		stat(a->path, &lsock);
	if (background)
		daemonize();
	info("listening on %s", vs_addr_str(a, as, sizeof as));
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigpipe_open(sigs, 4);
	if (pipe_make(taken, O_CLOEXEC | O_NONBLOCK) < 0)
		die_sys("unable to create a pipe");
	for (;;) {
		struct pollfd p[2] = { { taken[0], POLLIN, 0 }, { sigpipe_fd[0], POLLIN, 0 } };
		if (!spare) {
			pid_t me = getpid(), pid = fork();
			if (pid == 0) {
				child_detach();
				close(taken[0]);
				spare_run(lfd, taken[1], me);
			}
			if (pid < 0) {
				warn_sys("unable to fork for a connection");
				nap(100);
			} else {
				spare = pid;
				kid_add(pid, 0);
			}
		}
		if (poll(p, 2, spare ? -1 : 100) < 0 && errno != EINTR)
			die_sys("unable to poll");
		if (p[1].revents) {
			unsigned long got = sigpipe_read();
			int s;
			for (s = 1; s < 64; s++)
				if ((got & (1UL << s)) && s != SIGCHLD) {
					if (spare)
						kill(spare, SIGKILL);
					listen_stop(a, s);
				}
			children_reap(-1);
		}
		if (p[0].revents) {
			pid_t who; /* a pid per write: pipes keep them whole */
			while (read(taken[0], &who, sizeof who) == sizeof who)
				if (who == spare)
					spare = 0;
		}
	}
}

/* ---- command line ---- */

static void usage(int code)
{
	static const char u[] =
	    "usage: vsock-agent [options] [CID][:PORT] [persistent]  dial (default 2:1023)\n"
	    "       vsock-agent [options] -l, --listen [ADDR] | -p PORT  (default any:1024)\n"
	    "  --allow CID|any   listen: the peers' CID (2)\n"
	    "  -r, --retry       dial until the host answers\n"
	    "  --reconnect       dial again if the host leaves without releasing us\n"
	    "  --auth auto|key|none   --key FILE|fw_cfg|credential|cmdline|auto|none\n"
	    "  --deny LIST, --only LIST   of exec,shell,put,get,power,forward,legacy\n"
	    "  --linger SECS     a session without its client waits (21600; 0: dies)\n"
	    "  -d  background;  -v  verbose;  -V  version;  --init  be PID 1 (first)\n"
	    "Exit: 0 released; 1 failure; 2 usage; 3 the host left without releasing us.\n"
	    "See vsock-agent(8).\n";
	vs_writeall(code ? 2 : 1, u, sizeof u - 1);
	exit(code);
}

static void usage_error(const char *what, const char *arg)
{
	warnx("%s%s%s (try --help)", what, arg ? " " : "", arg ? arg : "");
	exit(2);
}

/* exec,shell,put,get,legacy as bits; 0 for a word that is none of them */
static uint32_t ops_parse(const char *list)
{
	uint32_t v = 0;
	while (*list) {
		size_t k = (size_t)(strchrnul(list, ',') - list);
		int i;
		for (i = 0; i < 7; i++)
			if (strlen(op_names[i]) == k && !strncmp(list, op_names[i], k))
				break;
		if (i == 7)
			return 0;
		v |= op_bits[i];
		list += k;
		if (*list)
			list++;
	}
	return v;
}

/* The options, one table: the long name, its short one, whether it takes
 * a value (1: from "--name=V" or the next word; 2: only "--name=V"). */
enum { A_LISTEN = 1, A_PORT, A_ALLOW, A_RETRY, A_RECONNECT, A_AUTH, A_KEY, A_DENY, A_ONLY, A_BG, A_VERBOSE, A_LINGER };
static const struct aopt {
	const char *l;
	char s, arg, id;
} aopts[] = {
	{ "--listen", 'l', 2, A_LISTEN }, { "--port", 'p', 1, A_PORT },   { "--allow", 0, 1, A_ALLOW },
	{ "--retry", 'r', 0, A_RETRY },   { "--reconnect", 0, 0, A_RECONNECT }, { "--auth", 0, 1, A_AUTH },
	{ "--key", 0, 1, A_KEY },         { "--deny", 0, 1, A_DENY },     { "--only", 0, 1, A_ONLY },
	{ NULL, 'd', 0, A_BG },           { "--verbose", 'v', 0, A_VERBOSE }, { "--linger", 0, 1, A_LINGER },
};

/* The option argv[*i] is, with its value in *val; 0 for none. */
static int aopt_find(int argc, char **argv, int *i, const char **val)
{
	const char *a = argv[*i];
	unsigned k;
	*val = NULL;
	for (k = 0; k < sizeof aopts / sizeof *aopts; k++) {
		const struct aopt *o = &aopts[k];
		size_t n = o->l ? strlen(o->l) : 0;
		if (o->l && o->arg && !strncmp(a, o->l, n) && a[n] == '=') {
			*val = a + n + 1;
		} else if (!((o->l && !strcmp(a, o->l)) || (o->s && a[0] == '-' && a[1] == o->s && !a[2]))) {
			continue;
		} else if (o->arg == 1) {
			if (*i + 1 >= argc)
				usage_error("option needs an argument:", a);
			*val = argv[++*i];
		}
		return o->id;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct vs_addr la = { VS_ADDR_VSOCK, VS_CID_ANY, VS_PORT_LISTEN, "" };
	const char *keysrc = "auto", *dial_only = NULL, *listen_only = NULL, *v, *q;
	int background = 0, have_addr = 0, i, id, fd, rc;
	uint32_t deny = 0, only = VS_CAP_ALL | OP_LEGACY, d;
	char deny_s[40] = "", only_s[40] = "";
	/* the init: PID 1 without an option (the kernel's words after the
	 * init's, such as "splash", are no agent's), or --init first; PID 1
	 * with options is a container's agent */
	for (i = 1; i < argc && argv[i][0] != '-'; i++)
		;
	if ((getpid() == 1 && i == argc) || (argc > 1 && !strcmp(argv[1], "--init")))
		init_main();
	signals_init();
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			usage(0);
		if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			vs_writeall(1, "vsock-agent " AGENT_VERSION "\n", sizeof("vsock-agent " AGENT_VERSION));
			return 0;
		}
		switch ((id = aopt_find(argc, argv, &i, &v))) {
		case A_LISTEN:
			listening = 1;
			/* the address, if any, comes right after it */
			if (!v && i + 1 < argc && (argv[i + 1][0] != '-' || !strncmp(argv[i + 1], "-1", 2)) &&
			         vs_addr_parse(argv[i + 1], &la) == 0)
				v = argv[++i];
			if (v && (vs_addr_parse(v, &la) < 0 || la.kind == VS_ADDR_HYBRID))
				usage_error("unable to listen on (the agent takes [vsock:]CID[:PORT] or unix:PATH)", v);
			break;
		case A_PORT:
			if (vs_port_parse(v, &la.port) < 0)
				usage_error("unable to parse port", v);
			listening = 1;
			break;
		case A_ALLOW:
			if (vs_cid_parse(v, &opt_allow) < 0)
				usage_error("unable to parse CID", v);
			opt_allow_any = opt_allow == VS_CID_ANY; /* 'any' or -1, as everywhere */
			listen_only = "--allow";
			break;
		case A_RETRY:
			opt_retry = 1;
			dial_only = "--retry";
			break;
		case A_RECONNECT:
			opt_reconnect = 1;
			dial_only = "--reconnect";
			break;
		case A_AUTH:
			opt_auth = !strcmp(v, "auto") ? AUTH_AUTO : !strcmp(v, "key") ? AUTH_KEY : !strcmp(v, "none") ? AUTH_NONE : -1;
			if (opt_auth < 0)
				usage_error("--auth takes auto, key or none, not", v);
			break;
		case A_KEY:
			keysrc = v;
			break;
		case A_DENY:
		case A_ONLY:
			d = ops_parse(v);
			if (!d)
				usage_error("--deny and --only take a list of exec,shell,put,get,power,legacy, not", v);
			if (id == A_DENY)
				deny |= d, fmt(deny_s, sizeof deny_s, "--deny %s", v);
			else
				only = d, fmt(only_s, sizeof only_s, "--only %s", v);
			break;
		case A_BG:
			background = 1;
			listen_only = "-d";
			break;
		case A_VERBOSE:
			opt_verbose = 1;
			break;
		case A_LINGER:
			q = v;
			if ((opt_linger = num_scan(&q)) < 0 || *q || opt_linger > 31536000)
				usage_error("--linger takes seconds, not", v);
			break;
		default:
			if (!strcmp(a, "persistent"))
				opt_persistent = 1;
			else if (a[0] == '-' && a[1] && strcmp(a, "-1") && strncmp(a, "-1:", 3))
				usage_error("unknown option", a);
			else if (have_addr++)
				usage_error("unexpected argument", a);
			else if (vs_addr_parse(a, &dial_addr) < 0 || dial_addr.kind == VS_ADDR_HYBRID)
				usage_error("unable to parse address (expected [CID][:PORT], vsock:CID:PORT or unix:PATH):", a);
		}
	}
	if (listening && have_addr)
		usage_error("an address for dial mode given with --listen (write --listen ADDR):", argv[argc - 1]);
	if (listening && dial_only)
		usage_error(dial_only, "is for dial mode, not with --listen");
	if (!listening && listen_only)
		usage_error(listen_only, "is for listen mode (--listen)");
	ops = only & ~deny;
	/* sessions are listed and killed wherever commands may run */
	ops = ops & (VS_CAP_EXEC | VS_CAP_PTY) ? ops | VS_CAP_SESSIONS : ops & ~(VS_CAP_SESSIONS | VS_CAP_RESUME);
	if (!opt_linger)
		ops &= ~VS_CAP_RESUME;
	fmt(ops_why, sizeof ops_why, "%s%s%s", deny_s, *deny_s && *only_s ? ", " : "", only_s);
	key_setup(keysrc);
	/* packets (O_DIRECT): a message cut short is dropped whole, never
	 * read as part of the next one */
	if (pipe_make(sid_fd, O_CLOEXEC | O_NONBLOCK | O_DIRECT) < 0)
		die_sys("unable to create a pipe");
	{
		/* audit lines to the kernel log when stderr is the console (there
		 * they would run into the console's own session, and the kernel
		 * log is the record that stays) or is about to be /dev/null (-d);
		 * elsewhere (a terminal, a journal, a file) stderr is the record,
		 * and the kernel log may not even be this guest's */
		const char *au = getenv("VSOCK_AGENT_AUDIT");
		unsigned a, c;
		int con = -1;
		if (!au || strcmp(au, "stderr")) {
			con = openat(AT_FDCWD, "/dev/console", O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
			if ((background && !opt_verbose) || (con >= 0 && ioctl(2, TIOCGDEV, &a) == 0 &&
			                                     ioctl(con, TIOCGDEV, &c) == 0 && a == c))
				kmsg_fd = openat(AT_FDCWD, "/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY);
		}
		if (con >= 0)
			close(con);
	}
	stab_open();
	if (listening)
		listen_loop(&la, background);
	for (;;) {
		struct peer pe;
		fd = dial(&dial_addr, opt_retry || opt_reconnect);
		if (fd < 0)
			return 1;
		peer_dialed(&pe, fd);
		rc = serve_conn(fd, 1, &pe);
		close(fd);
		/* an impostor does not end our wait, nor a host that left
		 * without releasing us when we are to reconnect */
		if (rc == RC_REFUSED) {
			static long quiet_end;
			long now = vs_now_ms();
			hushed += (unsigned)hush;
			if (!hush)
				quiet_end = now + HUSH_MS;
			if (!(hush = now < quiet_end))
				hush_count();
		}
		if (rc == RC_REFUSED || (rc == RC_GONE && opt_reconnect)) {
			info("dialing %s again", pe.desc);
			nap((int)(500 + (unsigned)getpid() % 500));
			continue;
		}
		return rc;
	}
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
