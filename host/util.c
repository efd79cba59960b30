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
jmp_buf *vsh_catch;

/* Every message goes out escaped (vs_esc): a guest's text, a name it
 * chose, a hostile key path, all reach the terminal as visible escapes,
 * and no caller can forget. */
static void vmsg(const char *fmt, va_list ap, int err, int dying)
{
	char m[1024], b[2048 + 16] = "vsock-shell: ";
	int k = vsnprintf(m, sizeof m, fmt, ap);
	size_t n;
	if (k < 0)
		k = 0;
	if (k > (int)sizeof m - 128)
		k = (int)sizeof m - 128;
	if (err)
		k += snprintf(m + k, sizeof m - (size_t)k, ": %s", strerror(err));
	vs_esc(b + 13, sizeof b - 13 - 2, m, (size_t)k, 0);
	n = strlen(b);
	/* dying: give the terminal back first; otherwise a raw-mode
	 * terminal needs the carriage return spelled out */
	if (dying && vsh_catch && !vsh_verbose)
		return;
	if (dying && !vsh_catch)
		tty_restore();
	else if (tty_is_raw())
		b[n++] = '\r';
	b[n++] = '\n';
	vs_writeall(2, b, n);
}

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap, 0, 1);
	va_end(ap);
	if (vsh_catch)
		longjmp(*vsh_catch, 1);
	exit(EX_CONN);
}

void die_sys(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap, e, 1);
	va_end(ap);
	if (vsh_catch)
		longjmp(*vsh_catch, 1);
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

/* Why vs_key_load refused path (errno as it left it), in words: for
 * the controller's --key, and the hub's --key and --keys alike. */
const char *key_error(const char *path, const struct vs_key *k)
{
	static char b[4400];
	int e = errno;
	if (e == EPERM)
		snprintf(b, sizeof b, VS_KEY_PERM, path, k->mode, path);
	else if (e == EINVAL)
		snprintf(b, sizeof b, "unable to use the key in %s: it must be %d to %d bytes", path, VS_KEY_MIN, VS_KEY_MAX);
	else
		snprintf(b, sizeof b, "unable to read the key %s: %s", path, strerror(e));
	return b;
}

const char *addr_str(const struct vs_addr *a)
{
	static char b[2][160];
	static int i;
	i ^= 1;
	return vs_addr_str(a, b[i], sizeof b[i]);
}

/* Provisioning stages (PROTOCOL.md 4.4) by name: "" for none, "?" for
 * one this controller does not know. */
static const char *const stage_names[] = { "", "initramfs", "modules", "waiting", "released", "switch_root",
	                                   "failed", "root" };

const char *stage_name(uint32_t st)
{
	return st < sizeof stage_names / sizeof *stage_names ? stage_names[st] : "?";
}

/* A stage's number from its name; 0 for none of them. */
uint32_t stage_parse(const char *s)
{
	uint32_t i;
	for (i = 1; i < sizeof stage_names / sizeof *stage_names; i++)
		if (!strcmp(s, stage_names[i]))
			return i;
	return 0;
}
