/* legacy.c - drive a vsock_guest_exec agent (or ours in legacy mode):
 * disposable = one raw command; persistent = [u16 LE length][command]
 * for each command.  The agent prints output on its own console; all we
 * learn is that the command was delivered. */
#include "vsh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static size_t join(struct opts *o, char *b, size_t cap)
{
	size_t n = 0;
	int i;
	for (i = 0; i < o->ncmd; i++) {
		size_t k = strlen(o->cmd[i]);
		if (n + k + 1 > cap)
			die("legacy command exceeds %d bytes", VS_LEGACY_MAX);
		if (i)
			b[n++] = ' ';
		memcpy(b + n, o->cmd[i], k);
		n += k;
	}
	return n;
}

static void send_persistent(int fd, const char *cmd, size_t n)
{
	uint8_t b[2 + VS_LEGACY_MAX];
	if (n > VS_LEGACY_MAX)
		die("legacy command of %zu bytes exceeds %d", n, VS_LEGACY_MAX);
	vs_put16(b, (uint16_t)n);
	memcpy(b + 2, cmd, n);
	if (vs_writeall(fd, b, n + 2) < 0)
		die_sys("unable to send the command");
}

int legacy_run(struct opts *o)
{
	char cmd[VS_LEGACY_MAX + 2];
	size_t n;
	int fd;
	if (o->listen) {
		int lfd = listen_addr(&o->addr);
		vinfo("waiting for a legacy agent on %s", addr_str(&o->addr));
		fd = accept_agent(o, lfd, o->wait_secs ? o->wait_secs * 1000 : -1);
		if (fd < 0)
			die("no agent connected to %s within %d s", addr_str(&o->addr), o->wait_secs);
		close(lfd);
	} else {
		fd = connect_target(o);
	}
	if (o->legacy == 1) {
		n = join(o, cmd, VS_LEGACY_MAX + 1);
		if (!n)
			die("legacy disposable mode needs a command");
		if (vs_writeall(fd, cmd, n) < 0)
			die_sys("unable to send the command");
		/* half-close: the command is complete; wait for the agent to
		 * finish it and hang up */
		shutdown(fd, SHUT_WR);
	} else if (o->ncmd) {
		n = join(o, cmd, VS_LEGACY_MAX + 1);
		send_persistent(fd, cmd, n);
		shutdown(fd, SHUT_WR);
	} else {
		/* each line of stdin is one command */
		static char line[65536];
		size_t have = 0;
		for (;;) {
			ssize_t r = read(0, line + have, sizeof line - have);
			char *nl;
			if (r < 0 && errno == EINTR)
				continue;
			if (r > 0)
				have += (size_t)r;
			while ((nl = memchr(line, '\n', have))) {
				send_persistent(fd, line, (size_t)(nl - line));
				have -= (size_t)(nl - line) + 1;
				memmove(line, nl + 1, have);
			}
			if (r <= 0 || have == sizeof line) {
				if (have)
					send_persistent(fd, line, have);
				break;
			}
		}
		shutdown(fd, SHUT_WR);
	}
	/* until the agent hangs up: it has run the command then */
	for (;;) {
		ssize_t r = read(fd, cmd, sizeof cmd);
		if (r == 0 || (r < 0 && errno != EINTR))
			break;
	}
	close(fd);
	return 0;
}
