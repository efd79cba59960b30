/* master.c - dial mode for many sessions: hold the agent's control
 * connection and serve local clients on a Unix socket.  Each client
 * speaks the framed protocol as to a listening agent; for each we ask the
 * agent for a dial-back (OPEN token), answer the client's HELLO with the
 * agent's, and then relay bytes both ways in a child process of its own,
 * so that one slow session never stalls another. */
#include "vsh.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXPEND 64

struct pending {
	int client;
	uint64_t token;
};

static struct pending pend[MAXPEND];
static int npend;
static int sigfd[2];

static void on_signal(int sig)
{
	char c = (char)sig;
	int e = errno;
	if (write(sigfd[1], &c, 1) < 0) {
		/* a wakeup is already pending */
	}
	errno = e;
}

/* Keep the pending OPENs in the order they were sent: the agent answers
 * a failed OPEN with an ERROR that names no token, so it belongs to the
 * oldest. */
static void pend_remove(int i)
{
	memmove(pend + i, pend + i + 1, (size_t)(npend - i - 1) * sizeof *pend);
	npend--;
}

/* Relay between the client and the agent until both directions end.  A
 * direction ends at EOF, which is passed on as a half-close. */
static void relay(int a, int b)
{
	static uint8_t buf[2][VS_HDR + VS_FRAME_MAX];
	size_t len[2] = { 0, 0 }, off[2] = { 0, 0 };
	int fd[2] = { a, b }, eof[2] = { 0, 0 };
	while (!(eof[0] && eof[1] && !len[0] && !len[1])) {
		struct pollfd p[2];
		int i;
		for (i = 0; i < 2; i++) {
			/* direction i: read fd[i], write fd[1-i] */
			p[i].fd = fd[i];
			p[i].events = (short)((!eof[i] && !len[i] ? POLLIN : 0) | (len[1 - i] ? POLLOUT : 0));
			p[i].revents = 0;
			if (!p[i].events)
				p[i].fd = -1; /* else a hung-up fd would spin poll */
		}
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			_exit(1);
		for (i = 0; i < 2; i++) {
			int j = 1 - i;
			if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) && !eof[i] && !len[i]) {
				ssize_t r = read(fd[i], buf[i], sizeof buf[i]);
				if (r > 0) {
					len[i] = (size_t)r;
					off[i] = 0;
				} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
					eof[i] = 1;
					shutdown(fd[j], SHUT_WR);
					if (r < 0)
						_exit(1);
				}
			}
			if ((p[j].revents & (POLLOUT | POLLERR | POLLHUP)) && len[i]) {
				ssize_t r = write(fd[j], buf[i] + off[i], len[i] - off[i]);
				if (r > 0) {
					off[i] += (size_t)r;
					if (off[i] == len[i])
						len[i] = 0;
				} else if (r < 0 && errno != EAGAIN && errno != EINTR) {
					_exit(1);
				}
			}
		}
	}
	_exit(0);
}

/* A local client: its magic and HELLO, then an OPEN to the agent. */
static void client_accept(int mfd, int ctl)
{
	uint8_t m[VS_MAGIC_LEN], b[VS_FRAME_MAX];
	struct vs_hdr h;
	int fd = accept4(mfd, NULL, NULL, SOCK_CLOEXEC), n;
	if (fd < 0)
		return;
	set_timeout(fd, 5);
	if (vs_readall(fd, m, sizeof m) != sizeof m || memcmp(m, VS_MAGIC, sizeof m) ||
	    (n = vs_recv(fd, &h, b, sizeof b)) < 16 || h.type != VS_HELLO) {
		warnx("dropped a local client that did not open with the protocol's HELLO");
		close(fd);
		return;
	}
	if (vs_get16(b) != VS_VERSION || npend == MAXPEND) {
		if (npend == MAXPEND)
			vs_send_error(fd, VS_E_BUSY, "too many pending sessions");
		else
			vs_send_error(fd, VS_E_VERSION, "unsupported protocol version");
		close(fd);
		return;
	}
	set_timeout(fd, 0);
	pend[npend].client = fd;
	pend[npend].token = new_token();
	vs_put64(b, pend[npend].token);
	if (vs_send(ctl, VS_OPEN, b, 8) < 0)
		die_sys("unable to ask the agent for a session");
	npend++;
}

/* The agent dialed back: match the token, hand the pair to a relay. */
static void dialback_accept(struct opts *o, int lfd)
{
	struct hello hi;
	uint8_t b[16 + 64];
	int fd = accept_agent(o, lfd, 0), i;
	pid_t pid;
	if (fd < 0)
		return;
	set_timeout(fd, 5);
	if (hello_try(fd, &hi) < 0) {
		warnx("dial-back: %s", hello_err);
		close(fd);
		return;
	}
	set_timeout(fd, 0);
	for (i = 0; i < npend && pend[i].token != hi.token; i++)
		;
	if (i == npend) {
		warnx("dropped a dial-back with an unknown session token");
		close(fd);
		return;
	}
	/* the client's HELLO answered with the agent's, token 0 */
	vs_send(pend[i].client, VS_HELLO, b, vs_hello_put(b, sizeof b, hi.caps, 0, hi.software));
	pid = fork();
	if (pid == 0)
		relay(pend[i].client, fd);
	if (pid < 0)
		warn_sys("unable to fork a relay");
	close(fd);
	close(pend[i].client);
	pend_remove(i);
}

int master_run(struct opts *o)
{
	struct agent ag = { -1, -1, { 0, 0, "" } };
	struct vs_addr ma = { VS_ADDR_UNIX, 0, 0, "" };
	struct sigaction sa;
	int mfd, sigs[] = { SIGTERM, SIGINT, SIGHUP }, i, ping_out = 0;
	mode_t old_mask;
	const char *ka = getenv("VSOCK_SHELL_KEEPALIVE");
	long keepalive = (ka && atoi(ka) > 0 ? atoi(ka) : 30) * 1000L, next_ping;
	if (strlen(o->master) >= sizeof ma.path)
		die("socket path too long: %s", o->master);
	strcpy(ma.path, o->master);
	old_mask = umask(077); /* the socket is the agent's door: ours only */
	mfd = vs_listen(&ma);
	umask(old_mask);
	if (mfd < 0)
		die_sys("unable to listen on %s", o->master);
	if (pipe2(sigfd, O_CLOEXEC | O_NONBLOCK) < 0)
		die_sys("unable to create a pipe");
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	for (i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = SA_NOCLDWAIT;
	sigaction(SIGCHLD, &sa, NULL); /* relays reap themselves */
	agent_control(o, &ag);
	if (!o->quiet)
		fprintf(stderr, "vsock-shell: agent connected (%s); serving sessions on unix:%s\n", ag.hi.software, o->master);
	set_timeout(ag.ctl, 10); /* a frame begun must end: the guest can't stall us */
	next_ping = now_ms() + keepalive;
	for (;;) {
		struct pollfd p[4] = {
			{ ag.ctl, POLLIN, 0 }, { ag.lfd, POLLIN, 0 }, { mfd, POLLIN, 0 }, { sigfd[0], POLLIN, 0 }
		};
		long wait = next_ping - now_ms();
		int r = poll(p, 4, wait > 0 ? (int)wait : 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die_sys("unable to poll");
		}
		if (now_ms() >= next_ping) {
			/* keep-alive: a guest that froze or lost its transport
			 * without a reset must not leave us serving a dead agent */
			uint8_t c[8];
			if (ping_out) {
				unlink(o->master);
				die("the agent did not answer a keep-alive PING within %ld s", keepalive / 1000);
			}
			vs_put64(c, (uint64_t)next_ping);
			if (vs_send(ag.ctl, VS_PING, c, 8) < 0) {
				unlink(o->master);
				die_sys("control connection to the agent failed");
			}
			ping_out = 1;
			next_ping = now_ms() + keepalive;
		}
		if (p[3].revents) {
			unlink(o->master);
			vinfo("stopping on a signal");
			return 0;
		}
		if (p[0].revents) {
			struct vs_hdr h;
			uint8_t b[VS_FRAME_MAX];
			int n = vs_recv(ag.ctl, &h, b, sizeof b);
			if (n < 0) {
				unlink(o->master);
				if (errno == 0)
					die("the agent closed its control connection");
				die_sys("control connection to the agent failed");
			}
			if (h.type == VS_PONG)
				ping_out = 0;
			if (h.type == VS_ERROR && npend) {
				/* a failed OPEN (the agent could not fork or dial
				 * back): the oldest waiting client gets the error */
				vs_send(pend[0].client, VS_ERROR, b, (size_t)n);
				close(pend[0].client);
				pend_remove(0);
			}
		}
		if (p[1].revents)
			dialback_accept(o, ag.lfd);
		if (p[2].revents)
			client_accept(mfd, ag.ctl);
	}
}
