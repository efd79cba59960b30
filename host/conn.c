/* conn.c - reaching the agent: connect to a listening one (vsock, unix,
 * Firecracker/cloud-hypervisor hybrid), or wait for a dialing one; the
 * HELLO exchange; dial-back sessions by token. */
#include "vsh.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static uint8_t hbuf[VS_FRAME_MAX];

/* An agent that never answers must not hang the controller forever on a
 * handshake: bound blocking reads on fresh connections. */
void set_timeout(int fd, int secs)
{
	struct timeval tv = { secs, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

void agent_error(const uint8_t *p, size_t n)
{
	char text[512];
	/* the text is the guest's: keep it printable */
	vs_text_clean(text, sizeof text, p + 4, n >= 4 ? n - 4 : 0);
	die("agent: %s (error %u)", text, n >= 4 ? vs_get32(p) : 0);
}

char hello_err[256];

static int hello_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int hello_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(hello_err, sizeof hello_err, fmt, ap);
	va_end(ap);
	return -1;
}

/* Send the magic and our HELLO; read and check the agent's.  -1 with the
 * reason in hello_err. */
int hello_try(int fd, struct hello *hi)
{
	uint8_t b[VS_MAGIC_LEN + VS_HDR + 16];
	struct vs_hdr h;
	int n;
	/* the magic and our HELLO (no software string) in one write */
	memcpy(b, VS_MAGIC, VS_MAGIC_LEN);
	vs_hdr_put(b + VS_MAGIC_LEN, VS_HELLO, 16);
	vs_hello_put(b + VS_MAGIC_LEN + VS_HDR, 16, VS_CAP_EXEC | VS_CAP_PTY | VS_CAP_FILE | VS_CAP_DIALBACK, 0, NULL);
	if (vs_writeall(fd, b, sizeof b) < 0) {
		if (errno == EPIPE || errno == ECONNRESET)
			return hello_fail("agent closed the connection during the handshake (not a vsock-agent, or it refused us)");
		return hello_fail("unable to send HELLO to the agent: %s", strerror(errno));
	}
	n = vs_recv(fd, &h, hbuf, sizeof hbuf);
	if (n < 0) {
		if (errno == 0)
			return hello_fail("agent closed the connection during the handshake (not a vsock-agent, or it refused us)");
		if (errno == EAGAIN)
			return hello_fail("agent did not answer HELLO within the time limit");
		if (errno == EPROTO || errno == EMSGSIZE)
			return hello_fail("protocol error: malformed frame from the agent during the handshake");
		return hello_fail("unable to read HELLO from the agent: %s", strerror(errno));
	}
	if (h.type == VS_ERROR) {
		char t[200];
		vs_text_clean(t, sizeof t, hbuf + 4, n >= 4 ? (size_t)n - 4 : 0);
		return hello_fail("agent: %s", t);
	}
	if (h.type != VS_HELLO || n < 16)
		return hello_fail("protocol error: expected HELLO from the agent, got message type %u", h.type);
	if (vs_get16(hbuf) != VS_VERSION)
		return hello_fail("agent speaks protocol version %u; this controller speaks %u", vs_get16(hbuf), VS_VERSION);
	hi->caps = vs_get32(hbuf + 4);
	hi->token = vs_get64(hbuf + 8);
	vs_text_clean(hi->software, sizeof hi->software, hbuf + 16, (size_t)n - 16);
	return 0;
}

static void hello_or_die(int fd, struct hello *hi)
{
	set_timeout(fd, 30);
	if (hello_try(fd, hi) < 0)
		die("%s", hello_err);
	set_timeout(fd, 0);
}

/* Firecracker / cloud-hypervisor host-initiated connection: "CONNECT
 * <port>\n" to the VMM's socket, answered by "OK <n>\n".  When nothing
 * listens in the guest the VMM just closes. */
static int hybrid_connect(int fd, const struct vs_addr *a)
{
	char line[64];
	size_t n = 0;
	int k = snprintf(line, sizeof line, "CONNECT %u\n", a->port);
	if (vs_writeall(fd, line, (size_t)k) < 0)
		return -1;
	while (n < sizeof line - 1) {
		ssize_t r = read(fd, line + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = ECONNRESET;
			return -1;
		}
		if (line[n++] == '\n')
			break;
	}
	line[n] = 0;
	if (strncmp(line, "OK ", 3)) {
		errno = ECONNREFUSED;
		return -1;
	}
	return 0;
}

static const char *connect_hint(int e)
{
	if (e == ECONNRESET || e == ECONNREFUSED)
		return " (is the agent listening there? -w SECS waits for it)";
	if (e == ENODEV || e == EAFNOSUPPORT)
		return " (no vsock transport on this host: is vhost_vsock loaded?)";
	if (e == ETIMEDOUT)
		return " (no such guest CID?)";
	return "";
}

/* Connect to a listening agent, retrying with backoff for -w seconds:
 * a vsock port with no listener yet answers ECONNRESET. */
int connect_target(const struct opts *o)
{
	long deadline = now_ms() + o->wait_secs * 1000L;
	unsigned delay = 50;
	for (;;) {
		int fd = vs_connect(&o->addr);
		int e;
		if (fd >= 0 && (o->addr.kind != VS_ADDR_HYBRID || hybrid_connect(fd, &o->addr) == 0))
			return fd;
		e = errno;
		if (fd >= 0)
			close(fd);
		if (now_ms() >= deadline) {
			errno = e;
			if (o->addr.kind == VS_ADDR_HYBRID && fd >= 0)
				die("VMM at %s refused the connection to guest port %u%s", o->addr.path, o->addr.port,
				    connect_hint(e));
			die("unable to connect to %s: %s%s", addr_str(&o->addr), strerror(e), connect_hint(e));
		}
		usleep(delay * 1000);
		if (delay < 1000)
			delay *= 2;
	}
}

int listen_addr(const struct vs_addr *a)
{
	int fd = vs_listen(a);
	if (fd >= 0)
		return fd;
	if (errno == EADDRNOTAVAIL && a->kind == VS_ADDR_VSOCK)
		die("unable to listen on %s: address not available: this host has no vsock host transport "
		    "(vhost_vsock) for CID %u; listen on 'any' (--listen any:%u) to accept from any transport",
		    addr_str(a), a->cid, a->port);
	die_sys("unable to listen on %s", addr_str(a));
}

/* Accept one agent connection from an allowed peer, or time out. */
int accept_agent(const struct opts *o, int lfd, int timeout_ms)
{
	long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		struct pollfd p = { lfd, POLLIN, 0 };
		long left = deadline < 0 ? -1 : deadline - now_ms();
		int fd, r;
		r = poll(&p, 1, deadline >= 0 && left < 0 ? 0 : (int)left);
		if (r < 0 && errno != EINTR)
			die_sys("unable to wait for the agent");
		if (r == 0 && deadline >= 0)
			return -1;
		if (r <= 0)
			continue;
		fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		if (ss.ss_family == AF_VSOCK && !o->allow_any) {
			uint32_t cid = ((struct vs_sockaddr_vm *)&ss)->svm_cid;
			if (o->allow_cid && cid != o->allow_cid) {
				warnx("refused a connection from CID %u (waiting for CID %u)", cid, o->allow_cid);
				close(fd);
				continue;
			}
			vinfo("agent connected from CID %u", cid);
		}
		return fd;
	}
}

uint64_t new_token(void)
{
	uint64_t t = 0;
	while (!t)
		if (getrandom(&t, sizeof t, 0) != sizeof t)
			t = (uint64_t)now_ms() * 2654435761u ^ (uint64_t)getpid();
	return t;
}

/* Listen mode: wait for the agent's control connection. */
void agent_control(struct opts *o, struct agent *ag)
{
	ag->lfd = listen_addr(&o->addr);
	vinfo("waiting for the agent on %s", addr_str(&o->addr));
	ag->ctl = accept_agent(o, ag->lfd, o->wait_secs ? o->wait_secs * 1000 : -1);
	if (ag->ctl < 0)
		die("no agent connected to %s within %d s", addr_str(&o->addr), o->wait_secs);
	hello_or_die(ag->ctl, &ag->hi);
	vinfo("agent: %s", ag->hi.software);
}

/* Listen mode: the control connection once, then for each session an
 * OPEN(token) and the agent's dial-back carrying that token. */
static int dialback_session(struct opts *o, struct agent *ag)
{
	uint8_t b[8];
	uint64_t token = new_token();
	struct hello hi;
	long deadline = now_ms() + 30000;
	vs_put64(b, token);
	if (vs_send(ag->ctl, VS_OPEN, b, 8) < 0)
		die_sys("unable to ask the agent for a session");
	for (;;) {
		long left = deadline - now_ms();
		int fd = left > 0 ? accept_agent(o, ag->lfd, (int)left) : -1;
		if (fd < 0)
			die("the agent did not dial back for the session within 30 s");
		hello_or_die(fd, &hi);
		if (hi.token == token)
			return fd;
		warnx("dropped a connection with an unknown session token");
		close(fd);
	}
}

/* A fresh connection, handshake done, ready for one request. */
int agent_session(struct opts *o, struct agent *ag)
{
	int fd;
	if (!o->listen) {
		fd = connect_target(o);
		hello_or_die(fd, &ag->hi);
		return fd;
	}
	if (ag->lfd < 0)
		agent_control(o, ag);
	return dialback_session(o, ag);
}

void agent_close(struct agent *ag)
{
	if (ag->ctl >= 0)
		close(ag->ctl);
	if (ag->lfd >= 0)
		close(ag->lfd);
	ag->ctl = ag->lfd = -1;
}
