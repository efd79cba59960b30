/* fwd.c - forwarding, as ssh's -L, -R and -W: one session connection to
 * the agent per forwarded connection, each relayed by a process of its
 * own (vs_chan_relay, the same relay as the agent's), so that no stream
 * waits behind another and a slow reader stops only its own writer.
 *
 *   -L: we listen on the host; for each connection we accept, a session
 *       asks the agent to connect to the target inside the guest (FWD).
 *   -R: a session asks the agent to listen inside the guest (FWD with
 *       VS_FWD_LISTEN) and stays open; the agent says ACCEPTED on it for
 *       each connection it takes, and for each we open a session that
 *       claims it (FWD, family 0, the listener's id), then connect to the
 *       target on the host.
 *   -W: stdin and stdout are the connection.
 *
 * Addresses are parsed here, and go to the agent as numbers (PROTOCOL.md
 * 5.6): numeric IPv4, [IPv6], localhost (127.0.0.1), or a path (a word
 * with a '/'). */
#include "vsh.h"
#include "chan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A parsed -L/-R/-W: the side we listen on (-L: the host's, -R: the
 * guest's) and the target (-L, -W: in the guest; -R: on the host). */
struct fwd {
	int kind;                     /* 'L', 'R', 'W' */
	struct sockaddr_storage at, to;
	char at_s[160], to_s[160];    /* as shown by -v */
	int fd;                       /* -L: our listener; -R: its session */
	uint8_t id[VS_FWD_ID];        /* -R: the agent's listener */
};

static struct fwd fwds[64];
static int nfwd;
static uint8_t fin[VS_CHAN_BUF], fout[VS_CHAN_BUF];

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_UNIX ? sizeof(struct sockaddr_un)
	     : ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* One address from its words: a path, or HOST (NULL: the default, the
 * loopback; "" or "*": every address) and PORT. */
static int addr_make(const char *host, const char *port, struct sockaddr_storage *ss, char *show)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char *end;
	long p;
	memset(ss, 0, sizeof *ss);
	if (!port) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		if (strlen(host) >= sizeof un->sun_path)
			return -1;
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, host);
		snprintf(show, 160, "%s", host);
		return 0;
	}
	p = strtol(port, &end, 10);
	if (!*port || *end || p < 1 || p > 65535)
		return -1;
	if (!host || !strcmp(host, "localhost"))
		host = "127.0.0.1";
	else if (!*host || !strcmp(host, "*"))
		host = "0.0.0.0";
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)p);
		snprintf(show, 160, "%s:%ld", host, p);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		snprintf(show, 160, "[%s]:%ld", host, p);
		return 0;
	}
	return -1;
}

/* The words of a spec, split at ':' outside brackets (an IPv6 address
 * is written [::1]); the brackets go.  At most 4. */
static int spec_words(char *s, char *w[4])
{
	int n = 0;
	for (;;) {
		if (n == 4)
			return -1;
		if (*s == '[') {
			char *e = strchr(s, ']');
			if (!e || (e[1] && e[1] != ':'))
				return -1;
			w[n++] = s + 1;
			*e = 0;
			s = e + 1;
		} else {
			w[n++] = s;
			s = strchrnul(s, ':');
		}
		if (!*s)
			return n;
		*s++ = 0;
	}
}

/* An address from one word (a path: it has a '/'; or, where we listen,
 * a PORT on the loopback) or two (HOST:PORT). */
static int spec_addr(char **w, int n, int listen, struct sockaddr_storage *ss, char *show)
{
	if (n == 1 && strchr(w[0], '/'))
		return addr_make(w[0], NULL, ss, show);
	if (n == 1 && listen)
		return addr_make(NULL, w[0], ss, show);
	return n == 2 ? addr_make(w[0], w[1], ss, show) : -1;
}

/* -L, -R, -W as the command line gave them: the target is the last word
 * when it is a path, else the last two; before it, where we listen. */
void fwd_parse(struct opts *o, int kind, const char *spec)
{
	static char copy[64][512];
	struct fwd *f = &fwds[nfwd];
	char *w[4];
	int n, t;
	if (nfwd == 64)
		usage_error(o, "too many forwardings (at most 64)");
	if (strlen(spec) >= sizeof copy[0])
		usage_error(o, "-%c: too long: '%s'", kind, spec);
	strcpy(copy[nfwd], spec);
	n = spec_words(copy[nfwd], w);
	t = n > 0 && strchr(w[n - 1], '/') ? 1 : 2;
	f->kind = kind;
	if (n < t || (kind == 'W') != (n == t) || spec_addr(w + n - t, t, 0, &f->to, f->to_s) < 0 ||
	    (kind != 'W' && spec_addr(w, n - t, 1, &f->at, f->at_s) < 0))
		usage_error(o, "-%c takes %s, not '%s' (numeric IPv4, [IPv6] or localhost; a path has a '/')", kind,
		            kind == 'W' ? "HOST:PORT or PATH" : "[BIND:]PORT:HOST:PORT or PATH:PATH (or a mix)", spec);
	if (kind == 'W')
		o->stdio_fwd = 1;
	nfwd++;
	o->nfwd = nfwd;
}

/* FWD: listen (-R) or connect (-L, -W) at ss in the guest; id: claim
 * what that listener accepted instead. */
static void fwd_send(int fd, uint32_t flags, const struct sockaddr_storage *ss, const uint8_t *id)
{
	uint8_t b[8 + 108];
	size_t n = 8;
	const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
	memset(b, 0, sizeof b);
	vs_put32(b, flags);
	if (id) {
		memcpy(b + 8, id, VS_FWD_ID);
		n += VS_FWD_ID;
	} else if (ss->ss_family == AF_UNIX) {
		const char *p = ((const struct sockaddr_un *)ss)->sun_path;
		vs_put16(b + 4, AF_UNIX);
		memcpy(b + 8, p, strlen(p));
		n += strlen(p);
	} else if (ss->ss_family == AF_INET) {
		vs_put16(b + 4, AF_INET);
		vs_put16(b + 6, ntohs(in->sin_port));
		memcpy(b + 8, &in->sin_addr, 4);
		n += 4;
	} else {
		vs_put16(b + 4, AF_INET6);
		vs_put16(b + 6, ntohs(in6->sin6_port));
		memcpy(b + 8, &in6->sin6_addr, 16);
		n += 16;
	}
	if (vs_send(fd, VS_FWD, b, n) < 0)
		die_sys("unable to send the forwarding request");
}

/* Relay one forwarded connection to its end, and exit: 0 when it ended
 * with both EOFs; 255 when it broke, said why. */
static void __attribute__((noreturn)) fwd_relay(int conn, int rfd, int wfd, const char *what)
{
	struct vs_chan c;
	struct vs_hdr h;
	const uint8_t *p;
	int r;
	vs_chan_init(&c, conn, fin, sizeof fin, fout, sizeof fout);
	r = vs_chan_relay(&c, rfd, wfd, &h, &p);
	if (r < 0) {
		/* writing to an agent that refused fails first: its ERROR
		 * is what to say */
		int e = errno;
		while (vs_chan_room(&c) && vs_chan_read(&c) > 0)
			;
		while (vs_chan_take(&c, &h, &p) > 0)
			if (h.type == VS_ERROR)
				agent_error(p, h.len);
		/* the local end sees a break as one: a reset, not an EOF */
		setsockopt(rfd, SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 }, sizeof(struct linger));
		errno = e;
	}
	if (r > 0 && h.type == VS_ERROR)
		agent_error(p, h.len);
	if (r > 0)
		die("%s: protocol error: message type %u in a forwarded connection", what, h.type);
	if (r < 0 && errno)
		die_sys("%s: the forwarded connection broke", what);
	if (r < 0)
		die("%s: the agent closed the forwarded connection", what);
	vinfo("%s: closed", what);
	exit(0);
}

static int sock_for(const struct sockaddr_storage *ss)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die_sys("unable to create a socket");
	return fd;
}

/* -L: our listener on the host.  A Unix path goes through vs_listen, which
 * replaces a stale socket and never anything else. */
static int fwd_listen(const struct fwd *f)
{
	int fd, one = 1;
	if (f->at.ss_family == AF_UNIX) {
		struct vs_addr a = { VS_ADDR_UNIX, 0, 0, "" };
		strcpy(a.path, ((const struct sockaddr_un *)&f->at)->sun_path);
		fd = vs_listen(&a);
		if (fd < 0)
			die("unable to listen on %s: %s", f->at_s, vs_listen_why(errno));
		return fd;
	}
	fd = sock_for(&f->at);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (const struct sockaddr *)&f->at, sa_len(&f->at)) < 0 || listen(fd, 4096) < 0)
		die_sys("unable to listen on %s", f->at_s);
	return fd;
}

/* A session for one forwarded connection.  Listen mode's dial-backs come
 * to our one listener, so they are opened here, one after another; else
 * the child opens its own (fd -1 here), and a failure ends only it. */
static int fwd_session(struct opts *o, struct agent *ag, const char *what)
{
	return o->listen ? agent_session(o, ag, "forward", what) : -1;
}

/* The child's half: its session, the request, and the relay. */
static void __attribute__((noreturn)) fwd_child(struct opts *o, struct agent *ag, const struct fwd *f, int s, int local)
{
	const char *what = f->kind == 'R' ? f->at_s : f->to_s;
	int i;
	for (i = 0; i < nfwd; i++)
		if (fwds[i].fd >= 0)
			close(fwds[i].fd);
	if (s < 0)
		s = agent_session(o, ag, "forward", what);
	fwd_send(s, 0, &f->to, f->kind == 'R' ? f->id : NULL);
	if (f->kind == 'R') {
		local = sock_for(&f->to);
		if (connect(local, (const struct sockaddr *)&f->to, sa_len(&f->to)) < 0)
			die_sys("-R %s: unable to connect to %s", f->at_s, f->to_s);
	}
	fwd_relay(s, local, local, what);
}

/* One connection to forward: a child relays it. */
static void fwd_start(struct opts *o, struct agent *ag, const struct fwd *f, int local)
{
	int s = fwd_session(o, ag, f->kind == 'R' ? f->at_s : f->to_s);
	pid_t pid = fork();
	if (pid < 0) {
		warn_sys("unable to fork for a forwarded connection");
	} else if (pid == 0) {
		fwd_child(o, ag, f, s, local);
	}
	if (s >= 0)
		close(s);
	if (local >= 0)
		close(local);
}

/* -R: the agent's listener, through a session that stays open. */
static void fwd_remote(struct opts *o, struct agent *ag, struct fwd *f)
{
	uint8_t b[600];
	struct vs_hdr h;
	int n;
	f->fd = agent_session(o, ag, "forward", f->at_s);
	fwd_send(f->fd, VS_FWD_LISTEN, &f->at, NULL);
	n = vs_recv_by(f->fd, &h, b, sizeof b, vs_deadline(vsh_timeout_ms()));
	if (n >= 0 && h.type == VS_ERROR)
		agent_error(b, (size_t)n);
	if (n != VS_FWD_ID || h.type != VS_OK)
		die("-R %s: the agent did not answer the request to listen (%s)", f->at_s,
		    n < 0 ? (errno == ETIMEDOUT ? "no answer in time" : "it closed the connection") : "an unexpected message");
	memcpy(f->id, b, VS_FWD_ID);
	vinfo("forwarding %s in the guest to %s", f->at_s, f->to_s);
}

/* Listen for -L, ask for -R, then forward until killed. */
static void __attribute__((noreturn)) fwd_loop(struct opts *o, struct agent *ag)
{
	struct pollfd p[64];
	int i, n = 0, idx[64];
	signal(SIGCHLD, SIG_IGN); /* the relays reap themselves */
	if (o->listen && ag->lfd < 0)
		agent_control(o, ag); /* the agent first, as ssh connects first */
	for (i = 0; i < nfwd; i++) {
		struct fwd *f = &fwds[i];
		if (f->kind == 'L') {
			f->fd = fwd_listen(f);
			vinfo("forwarding %s to %s in the guest", f->at_s, f->to_s);
		} else if (f->kind == 'R') {
			fwd_remote(o, ag, f);
		} else {
			continue;
		}
		idx[n] = i;
		p[n++] = (struct pollfd){ f->fd, POLLIN, 0 };
	}
	for (;;) {
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			die_sys("unable to poll");
		}
		for (i = 0; i < n; i++) {
			struct fwd *f = &fwds[idx[i]];
			if (!p[i].revents)
				continue;
			if (f->kind == 'L') {
				int c = accept4(f->fd, NULL, NULL, SOCK_CLOEXEC);
				if (c >= 0) {
					vinfo("%s: a connection, to %s in the guest", f->at_s, f->to_s);
					fwd_start(o, ag, f, c);
				}
			} else {
				struct vs_hdr h;
				int r = vs_recv(f->fd, &h, fin, sizeof fin);
				if (r < 0)
					die("-R %s: the agent closed the listener's session", f->at_s);
				if (h.type == VS_ERROR)
					agent_error(fin, (size_t)r);
				if (h.type == VS_FWD_ACCEPTED) {
					vinfo("-R %s: a connection in the guest, to %s", f->at_s, f->to_s);
					fwd_start(o, ag, f, -1);
				}
			}
		}
	}
}

/* -W: stdin and stdout joined to one connection in the guest; -N:
 * forwarding only, until killed. */
int fwd_main(struct opts *o, struct agent *ag)
{
	int s;
	if (!o->stdio_fwd)
		fwd_loop(o, ag);
	s = agent_session(o, ag, "forward", fwds[0].to_s);
	fwd_send(s, 0, &fwds[0].to, NULL);
	fwd_relay(s, 0, 1, fwds[0].to_s);
}

/* Forwarding beside a command, whose session (cmd) is open: a process of
 * its own forwards until the command ends (the caller kills it then), or
 * we die. */
pid_t fwd_spawn(struct opts *o, struct agent *ag, int cmd)
{
	pid_t pid = fork();
	if (pid < 0)
		die_sys("unable to fork the forwarder");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		close(cmd); /* the command's end is its controller's to see */
		fwd_loop(o, ag);
	}
	return pid;
}
