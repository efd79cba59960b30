/*
 * agent.h - agent.c compiled into a libFuzzer target (fuzz/session.c,
 * fuzz/agenths.c), so that its static functions can be called one at a
 * time, with what would end or outlive the fuzzing process caught:
 *
 *   exit()      longjmps back to fuzz_call (which says the agent ended
 *               and with what status): sess_abort ends in exit(0);
 *   kill()      must aim at the session's own process group (fuzz_pgrp,
 *               set by the target), at its command by pid with SIGKILL
 *               (a session killed on purpose), or probe with signal 0, and is
 *               recorded; only then is it sent.  A negative pid that is
 *               not -fuzz_pgrp (0, -1, our own group) is a broken
 *               invariant, caught before any signal leaves;
 *   waitpid()   the agent's: "no children" (ECHILD), so that sess_abort
 *               neither reaps nor hunts through /proc for the target's
 *               own children;
 *   vs_writeall to fd 2, the agent's log: kept in fuzz_log (the last
 *               line), not written;
 *   vs_nonce    the agent's nonce is fuzz_agent_nonce, fixed, so that a
 *               seed can carry the MAC that answers it (fuzz_nonce_bit,
 *               when >= 0, flips one bit of it: a fresh nonce);
 *   getsockname on fuzz_vsock_fd answers as a vsock socket of CID
 *               fuzz_vsock_cid would (the guest's CID that the key proofs
 *               cover: no vsock socket is ever opened here); on any other
 *               fd, the real one;
 *   main        is agent_main: libFuzzer has the main.
 */
#ifndef FUZZ_AGENT_H
#define FUZZ_AGENT_H

/* every header agent.c includes, before the macros below */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h" /* and auth.h, with vs_nonce, before the macro below */

static const uint8_t fuzz_agent_nonce[VS_NONCE_LEN] = "fuzz: the agent's fixed nonce..";
static pid_t fuzz_pgrp;        /* the only group the agent may signal */
static int fuzz_sigs[64], fuzz_nsig;
static char fuzz_log[512];
static jmp_buf fuzz_jb;
static int fuzz_in_call, fuzz_status;

static void fuzz_exit(int st) __attribute__((noreturn));
static void fuzz_exit(int st)
{
	CHECK(fuzz_in_call);
	fuzz_status = st;
	longjmp(fuzz_jb, 1);
}

static int fuzz_kill(pid_t pid, int sig)
{
	if (sig == 0 && pid > 0)
		return kill(pid, 0);
	/* the group; or, a session killed on purpose (a SIGKILL SIGNAL:
	 * session_kill), each process of the session by its pid: here the
	 * command alone */
	CHECK(fuzz_pgrp > 1 && (pid == -fuzz_pgrp || (pid == fuzz_pgrp && sig == SIGKILL)));
	/* recorded: what went to the group (the one by pid follows it only
	 * while /proc still shows the command, a race the model need not
	 * know) */
	if (pid < 0 && fuzz_nsig < (int)(sizeof fuzz_sigs / sizeof fuzz_sigs[0]))
		fuzz_sigs[fuzz_nsig++] = sig;
	return kill(pid, sig);
}

static pid_t fuzz_waitpid(pid_t pid, int *st, int opt)
{
	(void)pid, (void)st, (void)opt;
	errno = ECHILD;
	return -1;
}

static int fuzz_writeall(int fd, const void *b, size_t n)
{
	if (fd != 2)
		return vs_writeall(fd, b, n);
	if (n >= sizeof fuzz_log)
		n = sizeof fuzz_log - 1;
	memcpy(fuzz_log, b, n);
	fuzz_log[n] = 0;
	return 0;
}

static int fuzz_nonce_bit = -1;
static void fuzz_nonce(uint8_t out[VS_NONCE_LEN])
{
	memcpy(out, fuzz_agent_nonce, VS_NONCE_LEN);
	if (fuzz_nonce_bit >= 0)
		out[fuzz_nonce_bit / 8 % VS_NONCE_LEN] ^= (uint8_t)(1u << fuzz_nonce_bit % 8);
}

static int fuzz_vsock_fd = -1;
static uint32_t fuzz_vsock_cid;
static int fuzz_getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct vs_sockaddr_vm a;
	if (fd != fuzz_vsock_fd)
		return getsockname(fd, sa, len);
	CHECK(fuzz_vsock_cid != VS_CID_ANY); /* own_cid would ask /dev/vsock then */
	memset(&a, 0, sizeof a);
	a.svm_family = AF_VSOCK;
	a.svm_cid = fuzz_vsock_cid;
	a.svm_port = 1023;
	memcpy(sa, &a, *len < sizeof a ? *len : sizeof a);
	*len = sizeof a;
	return 0;
}

#define exit fuzz_exit
#define kill fuzz_kill
#define waitpid fuzz_waitpid
#define vs_writeall(fd, b, n) fuzz_writeall(fd, b, n)
#define vs_nonce fuzz_nonce
#define getsockname fuzz_getsockname
#define main agent_main
#include "agent.c"
#undef exit
#undef kill
#undef waitpid
#undef vs_writeall
#undef vs_nonce
#undef getsockname
#undef main

/* Run stmt, a call into the agent; ended = 1 when it called exit
 * (fuzz_status holds the status), else 0.  The agent's state is global,
 * so the longjmp loses nothing of it. */
#define FUZZ_CALL(ended, stmt)                                                                                         \
	do {                                                                                                           \
		fuzz_in_call = 1;                                                                                      \
		if (setjmp(fuzz_jb)) {                                                                                 \
			(ended) = 1;                                                                                   \
		} else {                                                                                               \
			stmt;                                                                                          \
			(ended) = 0;                                                                                   \
		}                                                                                                      \
		fuzz_in_call = 0;                                                                                      \
	} while (0)

#endif
