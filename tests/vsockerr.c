/*
 * vsockerr.so - an LD_PRELOAD shim that plays a vsock host without ever
 * opening AF_VSOCK: socket(AF_VSOCK) gives a Unix socket instead, bind to
 * a vsock address is refused with EACCES (an unprivileged source port),
 * and connect to a vsock address fails with the errno VS_VSOCK_ERRNO
 * names.  The controller's messages for what the kernel says on a real
 * host (ENODEV: no VM at that CID, or no vhost_vsock) can then be tested
 * here, where vsock belongs to the infrastructure (under vsguard all the
 * same: what slips past the shim still meets the guard).
 *
 *   VS_VSOCK_ERRNO=ENODEV LD_PRELOAD=build/faults/vsockerr.so build/faults/vsock-shell 3 -- true
 *
 * VS_VSOCK_ERRNO: ENODEV (the default), ECONNRESET or ETIMEDOUT.  Only
 * for a dynamic program (the glibc build in build/faults).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static int vsock_errno(void)
{
	const char *e = getenv("VS_VSOCK_ERRNO");
	if (e && !strcmp(e, "ECONNRESET"))
		return ECONNRESET;
	if (e && !strcmp(e, "ETIMEDOUT"))
		return ETIMEDOUT;
	return ENODEV;
}

int socket(int domain, int type, int protocol)
{
	if (domain == AF_VSOCK)
		domain = AF_UNIX, protocol = 0;
	return (int)syscall(SYS_socket, domain, type, protocol);
}

int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	if (sa && sa->sa_family == AF_VSOCK) {
		errno = EACCES;
		return -1;
	}
	return (int)syscall(SYS_bind, fd, sa, len);
}

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	if (sa && sa->sa_family == AF_VSOCK) {
		errno = vsock_errno();
		return -1;
	}
	return (int)syscall(SYS_connect, fd, sa, len);
}
