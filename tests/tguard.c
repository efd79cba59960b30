/*
 * tguard - proves that tests/vsguard.c's filter holds, from inside it.
 *
 *   tguard -q    exit 0 when running under vsguard, 1 when not; tries
 *                nothing but the harmless marker call (a gate for scripts:
 *                vsguard sh -c 'tguard -q && exec vsock-shell vsock:1:5')
 *   tguard       the self-test: "ok - ..." lines and a count line.  Outside
 *                the guard it refuses (exit 3) before any AF_VSOCK call.
 *
 * Every check that could create a socket if the filter were wrong uses the
 * marker family, which no kernel has; only the plain socket(AF_VSOCK) and
 * socketpair(AF_VSOCK) calls use the real family, and only after the
 * marker has proven that this very filter is installed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vsguard.h"

static int npass, nfail;

static void result(int ok, const char *name, const char *why)
{
	printf("%s - guard: %s%s%s\n", ok ? "ok" : "not ok", name, why ? ": " : "", why ? why : "");
	if (ok)
		npass++;
	else
		nfail++;
}

static int guarded(void)
{
	long r = syscall(SYS_socket, (long)VSGUARD_MARKER, (long)SOCK_STREAM, 0L);
	if (r >= 0) { /* cannot happen: no such family; never keep it */
		close((int)r);
		return 0;
	}
	return errno == VSGUARD_MARKER_ERRNO;
}

/* r is a socket call's result: it must be -1 with want. */
static void refused(long r, int want, const char *name)
{
	char why[96];
	if (r >= 0) {
		close((int)r);
		result(0, name, "a socket was created");
		return;
	}
	if (errno == want) {
		result(1, name, NULL);
		return;
	}
	snprintf(why, sizeof why, "%s, want %s", strerror(errno), strerror(want));
	result(0, name, why);
}

static void check_vsock(void)
{
	static const int types[] = { SOCK_STREAM, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
				     SOCK_DGRAM, SOCK_SEQPACKET };
	static const char *names[] = { "socket(AF_VSOCK, SOCK_STREAM) fails with EAFNOSUPPORT",
				       "socket(AF_VSOCK, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK) fails",
				       "socket(AF_VSOCK, SOCK_DGRAM) fails",
				       "socket(AF_VSOCK, SOCK_SEQPACKET) fails" };
	int sv[2] = { -1, -1 }, i;
	long r;

	for (i = 0; i < 4; i++)
		refused(socket(AF_VSOCK_NR, types[i], 0), EAFNOSUPPORT, names[i]);
	/* without the filter the kernel says EOPNOTSUPP: EAFNOSUPPORT is ours */
	r = socketpair(AF_VSOCK_NR, SOCK_STREAM, 0, sv);
	if (r == 0) {
		close(sv[0]);
		close(sv[1]);
		result(0, "socketpair(AF_VSOCK) fails with EAFNOSUPPORT", "a pair was created");
	} else
		refused(r, EAFNOSUPPORT, "socketpair(AF_VSOCK) fails with EAFNOSUPPORT");
}

static void check_paths(void)
{
	/* the kernel takes the family as an int: high bits must not hide it */
	refused(syscall(SYS_socket, (long)(1UL << 32 | VSGUARD_MARKER), (long)SOCK_STREAM, 0L),
		VSGUARD_MARKER_ERRNO, "the family is matched on its low 32 bits");
	refused(syscall(SYS_socketpair, (long)VSGUARD_MARKER, (long)SOCK_STREAM, 0L, 0L),
		VSGUARD_MARKER_ERRNO, "socketpair goes through the family check");
	refused(syscall(__NR_io_uring_setup, 1L, 0L), ENOSYS,
		"io_uring_setup fails with ENOSYS (IORING_OP_SOCKET bypasses socket(2))");
#ifdef __x86_64__
	refused(syscall((long)(X32_SYSCALL_BIT | __NR_socket), (long)VSGUARD_MARKER, (long)SOCK_STREAM, 0L), ENOSYS,
		"x32 system calls fail with ENOSYS");
	{
		pid_t p = fork();
		int st = 0;
		if (p == 0) {
			struct rlimit no = { 0, 0 };
			long nr = 20; /* i386 getpid: harmless if it ever ran */
			setrlimit(RLIMIT_CORE, &no);
			__asm__ volatile("int $0x80" : "+a"(nr) : : "memory");
			_exit(0);
		}
		if (p < 0 || waitpid(p, &st, 0) != p)
			result(0, "i386 system calls kill the process", "unable to fork or wait");
		else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)
			result(1, "i386 system calls kill the process (SIGSYS)", NULL);
		else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV)
			result(1, "i386 system calls unavailable (no IA32 emulation in this kernel)", NULL);
		else
			result(0, "i386 system calls kill the process", "the child survived int $0x80");
	}
#endif
}

/* PID 1 and everything are out of reach: the agent's power requests
 * signal PID 1.  Signal 0 only probes, and reboot's wrong magic number is
 * refused by any kernel: harmless were the filter missing. */
static void check_pid1(void)
{
	long r = syscall(SYS_kill, 1L, 0L);
	result(r < 0 && errno == EPERM, "kill(1, 0) fails with EPERM", r < 0 ? strerror(errno) : "it worked");
	r = syscall(SYS_kill, -1L, 0L);
	result(r < 0 && errno == EPERM, "kill(-1, 0) fails with EPERM", r < 0 ? strerror(errno) : "it worked");
	r = syscall(SYS_tgkill, 1L, 1L, 0L);
	result(r < 0 && errno == EPERM, "tgkill(1, 1, 0) fails with EPERM", r < 0 ? strerror(errno) : "it worked");
	r = syscall(SYS_reboot, 0L, 0L, 0L, NULL);
	result(r < 0 && errno == EPERM, "reboot(2) fails with EPERM", r < 0 ? strerror(errno) : "it worked");
	r = syscall(SYS_kill, (long)getpid(), 0L);
	result(r == 0, "kill(getpid(), 0) still works", r < 0 ? strerror(errno) : NULL);
}

static void check_others(void)
{
	int sv[2], fd, st = 0;
	pid_t p;
	char line[128];
	int nnp = 0, mode = 0;
	FILE *f;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	result(fd >= 0, "AF_UNIX sockets still work", fd < 0 ? strerror(errno) : NULL);
	if (fd >= 0)
		close(fd);
	fd = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	result(fd == 0, "AF_UNIX socketpair still works", fd < 0 ? strerror(errno) : NULL);
	if (fd == 0) {
		close(sv[0]);
		close(sv[1]);
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	result(fd >= 0, "AF_INET sockets still work", fd < 0 ? strerror(errno) : NULL);
	if (fd >= 0)
		close(fd);

	f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof line, f)) {
		sscanf(line, "NoNewPrivs: %d", &nnp);
		sscanf(line, "Seccomp: %d", &mode);
	}
	if (f)
		fclose(f);
	result(nnp == 1 && mode == 2, "no_new_privs set, seccomp in filter mode", NULL);

	fflush(stdout);
	p = fork();
	if (p == 0) {
		execl("/proc/self/exe", "tguard", "-q", (char *)NULL);
		_exit(127);
	}
	result(p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "a child's exec is still under the guard", NULL);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "-q"))
		return guarded() ? 0 : 1;
	if (argc > 1) {
		fprintf(stderr, "usage: tguard [-q]\n");
		return 2;
	}
	if (!guarded()) {
		fprintf(stderr, "tguard: not running under vsguard: refusing to try AF_VSOCK\n");
		return 3;
	}
	result(1, "the marker call is answered by vsguard's filter", NULL);
	check_vsock();
	check_paths();
	check_others();
	check_pid1();
	printf("%d passed, %d failed, 0 skipped\n", npass, nfail);
	return nfail ? 1 : 0;
}
