/*
 * tbench - timing and load for make bench (tests/bench): runs commands
 * directly (fork, exec, wait), so that no shell's own cost lands in the
 * figures.
 *
 *   tbench -r N CMD [ARG...] [:: CMD [ARG...]]...
 *          N rounds, each running every command once, in turn (A B A B:
 *          all of them see the same machine, whatever else runs on it).
 *          One line per command: "MEDIAN_US BEST_US FAILED".  With
 *          TBENCH_GAP_MS, a pause after each run, so that what a command
 *          leaves running when it exits (a server's end of the session)
 *          does not land in the next one's time.
 *   tbench -p N CMD [ARG...]
 *          start N copies at once and wait for all: "WALL_MS FAILED".
 *   tbench -s N CMD [ARG...]
 *          N copies one after another: "WALL_MS FAILED".
 *   tbench -i N SECS
 *          keep N idle child processes; print how many were started once
 *          they all exist, then wait for SIGTERM (or SECS); the children
 *          are killed by pid on the way out and die with tbench anyway
 *          (PR_SET_PDEATHSIG), or after SECS.
 *   tbench -m PID...
 *          the summed VmRSS, in kB, of the processes PID and their
 *          descendants (from /proc).
 *   tbench -k N CMD [ARG...]
 *          keystroke echo: run CMD on a new pty (its controlling terminal),
 *          wait for it to print READY, then send N keys one at a time,
 *          each once the previous one has come back; then Enter and
 *          Ctrl-D.  Prints "MEDIAN_US BEST_US FAILED" per keystroke.  CMD
 *          is meant to echo what it gets, e.g. a remote `cat` on a pty.
 *   tbench -g N [SEED]
 *          write N pseudo-random bytes to stdout, a 64-bit word at a time:
 *          a large source file quickly, also under TCG (tgen's stream is
 *          the one the tests check; this one only has to be incompressible)
 *   tbench -w FILE [LO HI]
 *          copy stdin to stdout; at its end write to FILE "BYTES GAP_US
 *          AT": how much came, the longest pause between two reads (from
 *          the end of one to the end of the next: a resumed stream's
 *          break, seen at the reader) and where in the stream it ended;
 *          with LO and HI, only pauses that end where the stream is
 *          between byte LO and HI count (where a cut was made: elsewhere
 *          the scheduler makes pauses as long as a resume's)
 *
 * Commands get stdin and stdout from /dev/null (stderr is left as it
 * is); one that exits non-zero or dies of a
 * signal counts as failed.  -r, -p and -s give up after TBENCH_LIMIT
 * seconds (default 300): what still runs is killed and counted as failed,
 * and the exit status is 124.
 */
#define VS_IMPLEMENTATION /* for vs_writeall */
#include "protocol.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define MAXCMD 8

static volatile sig_atomic_t stop;
static int devnull = -1;

static void on_signal(int sig) { stop = sig; }

static long long now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void catch(int sig, int restart)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(sig, &sa, NULL);
}

/* The limit: SIGALRM interrupts waitpid (no SA_RESTART). */
static void limit_arm(void)
{
	const char *e = getenv("TBENCH_LIMIT");
	catch(SIGALRM, 0);
	catch(SIGTERM, 0);
	catch(SIGINT, 0);
	alarm(e && atoi(e) > 0 ? (unsigned)atoi(e) : 300);
}

static pid_t spawn(char **argv)
{
	pid_t p = fork();
	if (p == 0) {
		signal(SIGALRM, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "tbench: unable to execute %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return p;
}

static int failed(int ws) { return !WIFEXITED(ws) || WEXITSTATUS(ws) != 0; }

/* Wait for one child; on the limit (or a signal) kill the running ones. */
static pid_t reap_one(int *ws, pid_t *running, int n)
{
	for (;;) {
		pid_t p = waitpid(-1, ws, 0);
		if (p >= 0 || errno != EINTR)
			return p;
		if (stop) {
			int i;
			for (i = 0; i < n; i++)
				if (running[i] > 0)
					kill(running[i], SIGKILL);
			stop = 0;
			alarm(0);
			fprintf(stderr, "tbench: time limit reached, killing what still runs\n");
			running[n] = -1; /* remember: the limit was hit */
		}
	}
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

static int rounds(int n, char **argv)
{
	char **cmd[MAXCMD];
	long long *t[MAXCMD];
	int fails[MAXCMD] = { 0 }, ncmd = 0, done = 0, i, k;
	pid_t running[2] = { 0, 0 };
	const char *g = getenv("TBENCH_GAP_MS");
	struct timespec gap = { 0, 0 };
	if (g && atoi(g) > 0)
		gap.tv_sec = atoi(g) / 1000, gap.tv_nsec = (long)(atoi(g) % 1000) * 1000000;
	cmd[ncmd++] = argv;
	for (i = 0; argv[i]; i++)
		if (!strcmp(argv[i], "::")) {
			argv[i] = NULL;
			if (ncmd == MAXCMD || !argv[i + 1])
				return fprintf(stderr, "tbench: at most %d commands, none empty\n", MAXCMD), 2;
			cmd[ncmd++] = argv + i + 1;
		}
	for (k = 0; k < ncmd; k++)
		if (!(t[k] = calloc((size_t)n, sizeof **t)))
			return perror("tbench"), 1;
	for (done = 0; done < n && running[1] == 0 && !stop; done++)
		for (k = 0; k < ncmd && running[1] == 0 && !stop; k++) {
			int ws;
			long long a = now_us();
			running[0] = spawn(cmd[k]);
			if (running[0] < 0 || reap_one(&ws, running, 1) < 0) {
				fails[k]++;
				continue;
			}
			t[k][done] = now_us() - a;
			fails[k] += failed(ws);
			if (gap.tv_sec || gap.tv_nsec)
				nanosleep(&gap, NULL);
		}
	for (k = 0; k < ncmd; k++) {
		qsort(t[k], (size_t)done, sizeof **t, cmp_ll);
		printf("%lld %lld %d\n", done ? t[k][done / 2] : 0, done ? t[k][0] : 0,
		       fails[k] + (n - done));
	}
	return running[1] || stop ? 124 : 0;
}

/* together's: wait for one of running[0..n), free its slot and count it
 * in *fails if it failed; -1 when there is none to wait for. */
static int reap_slot(pid_t *running, int n, int *fails)
{
	int ws, j;
	pid_t p = reap_one(&ws, running, n);
	if (p < 0)
		return -1;
	for (j = 0; j < n; j++) /* (the slots not spawned yet are 0) */
		if (running[j] == p)
			running[j] = 0;
	*fails += failed(ws);
	return 0;
}

static int together(int n, int parallel, char **argv)
{
	pid_t *running = calloc((size_t)n + 1, sizeof *running);
	int fails = 0, live = 0, i;
	long long a = now_us();
	if (!running)
		return perror("tbench"), 1;
	for (i = 0; i < n && !running[n]; i++) {
		running[i] = spawn(argv);
		if (running[i] < 0) {
			fails++;
			continue;
		}
		live++;
		if (!parallel || live > 4096) {
			if (reap_slot(running, n, &fails) < 0)
				break;
			live--;
		}
	}
	while (live > 0 && reap_slot(running, n, &fails) == 0)
		live--;
	printf("%lld %d\n", (now_us() - a) / 1000, fails + live + (n - i));
	return running[n] ? 124 : 0;
}

static int idle(int n, unsigned secs)
{
	pid_t *kids = calloc((size_t)n, sizeof *kids), me = getpid();
	int i, made = 0;
	if (!kids)
		return perror("tbench"), 1;
	catch(SIGTERM, 0);
	catch(SIGINT, 0);
	catch(SIGALRM, 0);
	for (i = 0; i < n && !stop; i++) {
		pid_t p = fork();
		if (p == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != me)
				_exit(0);
			signal(SIGTERM, SIG_DFL);
			signal(SIGINT, SIG_DFL);
			signal(SIGALRM, SIG_DFL);
			alarm(secs);
			for (;;)
				pause();
		}
		if (p < 0) {
			perror("tbench: fork");
			break;
		}
		kids[made++] = p;
	}
	printf("%d\n", made);
	fflush(stdout);
	alarm(secs);
	while (!stop)
		pause();
	for (i = 0; i < made; i++)
		kill(kids[i], SIGKILL);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	return made == n ? 0 : 1;
}

static long rss_kb(long pid)
{
	char path[64], line[256];
	long kb = 0;
	FILE *f;
	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	if (!(f = fopen(path, "r")))
		return 0;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

/* PID's RSS and its descendants' (the kernel's children lists). */
static long tree_kb(long pid, int depth)
{
	char path[80];
	long kb = rss_kb(pid), c;
	FILE *f;
	snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", pid, pid);
	if (depth > 16 || !(f = fopen(path, "r")))
		return kb;
	while (fscanf(f, "%ld", &c) == 1)
		kb += tree_kb(c, depth + 1);
	fclose(f);
	return kb;
}

static int gen(unsigned long long n, unsigned long long seed)
{
	static uint64_t b[8192];
	uint64_t x = 0x9e3779b97f4a7c15ull ^ (seed * 0x100000001b3ull);
	while (n > 0) {
		size_t k = n < sizeof b ? (size_t)n : sizeof b, i;
		for (i = 0; i < sizeof b / 8; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			b[i] = x;
		}
		if (vs_writeall(1, b, k) < 0)
			return perror("tbench: write"), 1;
		n -= k;
	}
	return 0;
}

static int gap(const char *file, long long lo, long long hi)
{
	static char b[65536];
	long long last = now_us(), longest = 0, bytes = 0, at = 0;
	FILE *f;
	ssize_t r;
	while ((r = read(0, b, sizeof b)) != 0) {
		long long t = now_us();
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return perror("tbench: read"), 1;
		}
		/* the first read waits for the command to start: not a pause */
		if (bytes > 0 && bytes >= lo && bytes <= hi && t - last > longest)
			longest = t - last, at = bytes;
		last = t;
		bytes += r;
		if (vs_writeall(1, b, (size_t)r) < 0)
			return perror("tbench: write"), 1;
	}
	if (!(f = fopen(file, "w")))
		return perror("tbench: open"), 1;
	fprintf(f, "%lld %lld %lld\n", bytes, longest, at);
	return fclose(f) != 0;
}

static int expect_byte(int m, const char *want, long long deadline_us)
{
	static char seen[256];
	static size_t nseen;
	size_t wl = strlen(want);
	for (;;) {
		struct pollfd p = { m, POLLIN, 0 };
		long long left = (deadline_us - now_us()) / 1000;
		char b[256];
		ssize_t r;
		size_t i;
		if (left <= 0 || stop)
			return -1;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		r = read(m, b, sizeof b);
		if (r <= 0)
			return -1;
		/* keep the tail of what came, to find WANT across reads */
		for (i = 0; i < (size_t)r; i++) {
			if (nseen == sizeof seen - 1) {
				memmove(seen, seen + 128, nseen - 128);
				nseen -= 128;
			}
			seen[nseen++] = b[i];
		}
		seen[nseen] = 0;
		if (nseen >= wl && memmem(seen, nseen, want, wl)) {
			nseen = 0;
			return 0;
		}
	}
}

static int keys(int n, char **argv)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY), k, fails = 0, ws;
	long long *t = calloc((size_t)n, sizeof *t), lim = 30 * 1000000LL;
	struct winsize wsz = { 24, 80, 0, 0 };
	char *slave;
	pid_t p;
	if (m < 0 || !t || grantpt(m) < 0 || unlockpt(m) < 0 || !(slave = ptsname(m)))
		return perror("tbench: pty"), 1;
	ioctl(m, TIOCSWINSZ, &wsz);
	p = fork();
	if (p == 0) {
		int s;
		setsid();
		s = open(slave, O_RDWR);
		if (s < 0 || ioctl(s, TIOCSCTTY, 0) < 0)
			_exit(126);
		dup2(s, 0), dup2(s, 1), dup2(s, 2);
		if (s > 2)
			close(s);
		close(m);
		signal(SIGALRM, SIG_DFL), signal(SIGTERM, SIG_DFL), signal(SIGINT, SIG_DFL);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (p < 0)
		return perror("tbench: fork"), 1;
	if (expect_byte(m, "READY", now_us() + lim) < 0) {
		fprintf(stderr, "tbench: no READY from %s\n", argv[0]);
		kill(p, SIGKILL);
		waitpid(p, &ws, 0);
		return 1;
	}
	for (k = 0; k < n; k++) {
		char c[2] = { (char)('a' + k % 26), 0 };
		long long a = now_us();
		if (write(m, c, 1) != 1 || expect_byte(m, c, a + 10 * 1000000LL) < 0) {
			fails += n - k;
			break;
		}
		t[k] = now_us() - a;
	}
	if (write(m, "\r\004", 2) < 0)
		fails++;
	/* bounded: the command is killed if it does not end within 10 s */
	for (k = 0; k < 1000 && waitpid(p, &ws, WNOHANG) == 0; k++) {
		char b[256];
		struct pollfd pf = { m, POLLIN, 0 };
		if (poll(&pf, 1, 10) > 0 && read(m, b, sizeof b) <= 0)
			usleep(10000);
	}
	if (k == 1000) {
		kill(p, SIGKILL);
		waitpid(p, &ws, 0);
	}
	qsort(t, (size_t)(n - fails > 0 ? n - fails : 0), sizeof *t, cmp_ll);
	printf("%lld %lld %d\n", n > fails ? t[(n - fails) / 2] : 0, n > fails ? t[0] : 0, fails);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: tbench -r N CMD... [:: CMD...]... | -p N CMD... | -s N CMD...\n"
	                "       tbench -k N CMD... | -i N SECS | -m PID... | -g N [SEED] | -w FILE [LO HI]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int n;
	if (argc < 3 || argv[1][0] != '-' || !argv[1][1] || argv[1][2])
		usage();
	if (argv[1][1] == 'm') {
		long kb = 0;
		for (n = 2; n < argc; n++)
			kb += tree_kb(atol(argv[n]), 0);
		printf("%ld\n", kb);
		return kb == 0;
	}
	if (argv[1][1] == 'w')
		return argc == 3 ? gap(argv[2], 0, LLONG_MAX)
		       : argc == 5 ? gap(argv[2], atoll(argv[3]), atoll(argv[4])) : (usage(), 2);
	if (argv[1][1] == 'g')
		return argc <= 4 ? gen(strtoull(argv[2], NULL, 10), argc == 4 ? strtoull(argv[3], NULL, 10) : 1) : (usage(), 2);
	n = atoi(argv[2]);
	if (n <= 0)
		usage();
	if (argv[1][1] == 'i')
		return argc == 4 ? idle(n, (unsigned)atoi(argv[3])) : (usage(), 2);
	if (argc < 4)
		usage();
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	limit_arm();
	switch (argv[1][1]) {
	case 'r': return rounds(n, argv + 3);
	case 'p': return together(n, 1, argv + 3);
	case 's': return together(n, 0, argv + 3);
	case 'k': return keys(n, argv + 3);
	}
	usage();
	return 2;
}
