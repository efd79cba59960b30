/*
 * vsguard - run a command in which no process can create an AF_VSOCK
 * socket.  The dev and CI machines' own vsock peer (CID 2) belongs to the
 * infrastructure, and a bare number is a vsock target to both of our
 * programs, so every stage of `make test` that runs our binaries on this
 * machine runs under this guard: a typo in a test then fails with
 * EAFNOSUPPORT instead of reaching a real hypervisor.
 *
 *   vsguard COMMAND [ARG...]
 *
 * It installs a seccomp filter (inherited across fork and exec, and
 * impossible to remove) and execs COMMAND.  The filter:
 *   - kills the process on a system call of a foreign architecture (an
 *     i386 `int $0x80` from an x86-64 process would otherwise reach
 *     socketcall(2), whose arguments a filter cannot see);
 *   - fails x32 system calls with ENOSYS (same nr space, other table);
 *   - fails socket(AF_VSOCK, ...) and socketpair(AF_VSOCK, ...) with
 *     EAFNOSUPPORT, as a kernel without vsock would;
 *   - fails io_uring_setup with ENOSYS: IORING_OP_SOCKET creates sockets
 *     without a socket(2) call the filter could see;
 *   - answers socket(VSGUARD_MARKER, ...) with VSGUARD_MARKER_ERRNO, so
 *     that a test can prove it runs under this very filter without ever
 *     trying AF_VSOCK (outside the guard that call is a harmless
 *     EAFNOSUPPORT: the family does not exist).  tests/tguard.c uses it;
 *   - fails reboot(2), and kill, tkill and tgkill aimed at PID 1 or at
 *     every process (-1), with EPERM: the agent's power requests signal
 *     PID 1, and this machine's PID 1 is not ours either.
 *
 * Build: cc -O2 -o build/vsguard tests/vsguard.c
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vsguard.h"

#if defined(__x86_64__)
#define VG_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define VG_ARCH AUDIT_ARCH_AARCH64
#else
#error "vsguard: add this architecture's AUDIT_ARCH_* and check its socket calls"
#endif
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vsguard: the filter reads the low word of args[0] at its little-endian offset"
#endif
#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000u
#endif

#define LD(field) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, field))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
#define ERRNO(e) RET(SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))
/* if A == k skip t instructions, else skip f (jumps are relative) */
#define JEQ(k, t, f) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))
#define JGE(k, t, f) BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (k), (t), (f))

static int guard_install(void)
{
	struct sock_filter f[] = {
		LD(arch),
		JEQ(VG_ARCH, 1, 0),
		RET(SECCOMP_RET_KILL_PROCESS),
		LD(nr),
#ifdef __x86_64__
		JGE(X32_SYSCALL_BIT, 0, 1),
		ERRNO(ENOSYS),
#endif
		JEQ(__NR_socket, 9, 0),
		JEQ(__NR_socketpair, 8, 0),
		JEQ(__NR_io_uring_setup, 6, 0),
		JEQ(__NR_reboot, 4, 0),
		JEQ(__NR_kill, 11, 0),
		JEQ(__NR_tkill, 10, 0),
		JEQ(__NR_tgkill, 9, 0),
		RET(SECCOMP_RET_ALLOW),
		ERRNO(EPERM),
		ERRNO(ENOSYS),
		/* socket, socketpair: the family is an int, the low word */
		LD(args[0]),
		JEQ(AF_VSOCK_NR, 0, 1),
		ERRNO(EAFNOSUPPORT),
		JEQ(VSGUARD_MARKER, 0, 1),
		ERRNO(VSGUARD_MARKER_ERRNO),
		RET(SECCOMP_RET_ALLOW),
		/* kill, tkill, tgkill: the pid (tgkill's tgid), the low word */
		LD(args[0]),
		JEQ(1, 1, 0),
		JEQ(0xffffffffu, 0, 1),
		ERRNO(EPERM),
		RET(SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { (unsigned short)(sizeof f / sizeof f[0]), f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: vsguard COMMAND [ARG...]\n"
				"runs COMMAND where socket(AF_VSOCK, ...) fails with EAFNOSUPPORT\n");
		return 2;
	}
	if (guard_install() < 0) {
		fprintf(stderr, "vsguard: unable to install the seccomp filter: %s\n", strerror(errno));
		return 2;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "vsguard: unable to execute %s: %s\n", argv[1], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
