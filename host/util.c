/* util.c - messages, dying, and the protocol implementation for the host. */
#define VS_IMPLEMENTATION
#include "protocol.h"
#include "sha256.h"
#include "auth.h"
#include "transfer.h"
#include "vsh.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int vsh_verbose;

static void vmsg(const char *fmt, va_list ap, int err, int dying)
{
	char b[1024 + 2];
	int n = snprintf(b, sizeof b, "vsock-shell: ");
	n += vsnprintf(b + n, sizeof b - (size_t)n, fmt, ap);
	if (n > (int)sizeof b - 128)
		n = (int)sizeof b - 128;
	if (err)
		n += snprintf(b + n, sizeof b - (size_t)n, ": %s", strerror(err));
	/* dying: give the terminal back first; otherwise a raw-mode
	 * terminal needs the carriage return spelled out */
	if (dying)
		tty_restore();
	else if (tty_is_raw())
		b[n++] = '\r';
	b[n++] = '\n';
	vs_writeall(2, b, (size_t)n);
}

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap, 0, 1);
	va_end(ap);
	exit(EX_CONN);
}

void die_sys(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap, e, 1);
	va_end(ap);
	exit(EX_CONN);
}

void warnx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap, 0, 0);
	va_end(ap);
}

void warn_sys(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap, e, 0);
	va_end(ap);
}

void vinfo(const char *fmt, ...)
{
	va_list ap;
	if (!vsh_verbose)
		return;
	va_start(ap, fmt);
	vmsg(fmt, ap, 0, 0);
	va_end(ap);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("unable to allocate %zu bytes", n);
	return p;
}

/* The limit on a handshake, a dial-back and the like: 30 s, or
 * $VSOCK_SHELL_TIMEOUT seconds. */
long vsh_timeout_ms(void)
{
	static long ms;
	if (!ms) {
		const char *e = getenv("VSOCK_SHELL_TIMEOUT");
		ms = e && atoi(e) > 0 ? atoi(e) * 1000L : 30000L;
	}
	return ms;
}

const char *addr_str(const struct vs_addr *a)
{
	static char b[2][160];
	static int i;
	i ^= 1;
	return vs_addr_str(a, b[i], sizeof b[i]);
}
