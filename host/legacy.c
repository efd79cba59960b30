/* legacy.c - drive a vsock_guest_exec agent (or ours in legacy mode):
 * disposable = one raw command; persistent = [u16 LE length][command]
 * for each command.  The agent prints output on its own console; all we
 * learn is that the command was delivered.
 *
 * Everything is checked before we connect or wait: the real
 * vsock_guest_exec runs whatever is in its buffer when a connection
 * closes early, so it must never see an empty, oversized or partial
 * command. */
#include "vsh.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STDIN_MAX (16 << 20)  /* persistent commands read from stdin */

struct cmds {
	char *b;                 /* the commands, each NUL-terminated */
	size_t len;
	int n;
};

static void cmd_check(struct opts *o, const char *c, size_t n, const char *where)
{
	if (!n)
		usage_error(o, "legacy: empty command%s: nothing sent", where);
	if (n > VS_LEGACY_MAX)
		usage_error(o, "legacy: command of %zu bytes%s exceeds %d: nothing sent", n, where, VS_LEGACY_MAX);
	if (memchr(c, 0, n))
		usage_error(o, "legacy: command%s holds a NUL byte: nothing sent", where);
}

/* COMMAND's words joined by spaces, as one command. */
static void cmds_from_args(struct opts *o, struct cmds *c)
{
	size_t n = 0;
	int i;
	for (i = 0; i < o->ncmd; i++)
		n += strlen(o->cmd[i]) + 1;
	c->b = xmalloc(n + 1);
	c->len = 0;
	for (i = 0; i < o->ncmd; i++) {
		size_t k = strlen(o->cmd[i]);
		if (i)
			c->b[c->len++] = ' ';
		memcpy(c->b + c->len, o->cmd[i], k);
		c->len += k;
	}
	c->b[c->len] = 0;
	cmd_check(o, c->b, c->len, "");
	c->n = 1;
}

/* Each non-empty line of stdin is one command: all of it read and
 * checked first (so a bad line 40 never follows 39 good ones). */
static void cmds_from_stdin(struct opts *o, struct cmds *c)
{
	size_t cap = 65536, have = 0, i, start;
	char *b = xmalloc(cap + 1);
	for (;;) {
		ssize_t r;
		if (have == cap) {
			if (cap >= STDIN_MAX)
				usage_error(o, "legacy: more than %d MiB of commands on stdin: nothing sent", STDIN_MAX >> 20);
			cap *= 2;
			b = realloc(b, cap + 1);
			if (!b)
				die("unable to allocate %zu bytes", cap + 1);
		}
		r = read(0, b + have, cap - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die_sys("unable to read commands from stdin");
		if (r == 0)
			break;
		have += (size_t)r;
	}
	c->b = b;
	c->len = c->n = 0;
	for (start = 0, i = 0; i <= have; i++) {
		if (i < have && b[i] != '\n')
			continue;
		if (i > start) {
			char where[48];
			snprintf(where, sizeof where, " on line %d", c->n + 1);
			cmd_check(o, b + start, i - start, where);
			memmove(b + c->len, b + start, i - start);
			c->len += i - start;
			b[c->len++] = 0;
			c->n++;
		}
		start = i + 1;
	}
	if (!c->n)
		usage_error(o, "legacy: no command on stdin: nothing sent");
}

/* A legacy agent never speaks: a connection whose peer hangs up at once
 * is not one (a listener's liveness probe), and must not get the
 * commands. */
static int hung_up(int fd)
{
	struct pollfd p = { fd, POLLRDHUP, 0 };
	char c;
	return poll(&p, 1, 100) > 0 && (p.revents & (POLLRDHUP | POLLHUP)) && recv(fd, &c, 1, MSG_PEEK) <= 0;
}

static int legacy_connect(struct opts *o)
{
	long deadline = o->wait_secs ? vs_deadline(o->wait_secs * 1000L) : VS_NEVER;
	int fd, lfd;
	if (!o->listen)
		return connect_target(o);
	lfd = listen_addr(&o->addr);
	vinfo("waiting for a legacy agent on %s", addr_str(&o->addr));
	for (;;) {
		fd = accept_agent(o, lfd, deadline);
		if (fd < 0)
			die("no agent connected to %s within %d s", addr_str(&o->addr), o->wait_secs);
		if (!hung_up(fd))
			break;
		close(fd);
	}
	close(lfd);
	return fd;
}

int legacy_run(struct opts *o)
{
	struct cmds c;
	char junk[512];
	const char *p;
	int fd, i;
	if (o->at)
		usage_error(o, "--legacy speaks to a vsock_guest_exec agent directly, not through the hub");
	if (o->legacy == 1 || o->ncmd)
		cmds_from_args(o, &c);
	else
		cmds_from_stdin(o, &c);
	fd = legacy_connect(o);
	for (i = 0, p = c.b; i < c.n; i++, p += strlen(p) + 1) {
		size_t n = strlen(p);
		uint8_t b[2 + VS_LEGACY_MAX];
		if (o->legacy == 1) {
			if (vs_writeall(fd, p, n) < 0)
				die_sys("unable to send the command");
			continue;
		}
		vs_put16(b, (uint16_t)n);
		memcpy(b + 2, p, n);
		if (vs_writeall(fd, b, n + 2) < 0)
			die_sys("unable to send command %d", i + 1);
	}
	/* half-close: the commands are complete; wait for the agent to
	 * finish them and hang up */
	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t r = read(fd, junk, sizeof junk);
		if (r > 0 || (r < 0 && errno == EINTR))
			continue;
		break;
	}
	close(fd);
	free(c.b);
	return 0;
}
