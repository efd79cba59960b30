/* conn.c - reaching the agent: connect to a listening one (vsock, unix,
 * Firecracker/cloud-hypervisor hybrid), or wait for a dialing one; the
 * HELLO exchange and its proofs; dial-back sessions by token.  Every wait
 * here has a total deadline: a guest that says nothing, or a byte now and
 * then, cannot hold the controller longer than the documented limit. */
#include "vsh.h"
#include "auth.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* magic to the last HELLO or AUTH frame; OPEN to the dial-back's end */
#define HANDSHAKE_MS vsh_timeout_ms()
#define DIALBACK_MS vsh_timeout_ms()
#define NOTE_MS 10000 /* refusals while waiting: a line at most this often */

static uint8_t hbuf[VS_FRAME_MAX];
struct vs_key hostkey;      /* --key: n == 0 when none */

void agent_error(const uint8_t *p, size_t n)
{
	char text[512];
	uint32_t code;
	/* the text is the guest's, as it sent it: die() escapes it */
	if (!vs_error_text(p, n, 0, &code, text, sizeof text))
		die("agent: %s", text);
	die("agent: %s (error %u)", text, code);
}

char hello_err[512];

static int hello_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int hello_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(hello_err, sizeof hello_err, fmt, ap);
	va_end(ap);
	return -1;
}

static const char auth_hint[] =
    " (run vsock-shell as root, so that it connects from a reserved port, or give the agent's key with --key FILE)";

static int hs_fail(struct hs *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int hs_fail(struct hs *h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h->err, sizeof h->err, fmt, ap);
	va_end(ap);
	return HS_FAIL;
}

/* The host's side of the handshake as a step machine, for the blocking
 * controller (hello_try) and the hub's event loop alike.  hs_begin gives
 * the magic and our HELLO to send. */
size_t hs_begin(struct hs *h, const struct vs_key *key, uint16_t flags, int dialed, int fd, uint32_t cid,
                uint8_t *out, size_t cap)
{
	struct vs_hello mine;
	size_t k;
	memset(h, 0, sizeof *h);
	h->key = key && key->n ? key : NULL;
	h->dialed = dialed;
	memset(&mine, 0, sizeof mine);
	mine.flags = (uint16_t)((h->key ? VS_HF_KEY : 0) | flags);
	mine.caps = VS_CAP_ALL;
	mine.has_nonce = 1;
	vs_nonce(mine.nonce);
	memcpy(h->nonce, mine.nonce, VS_NONCE_LEN);
	/* the guest this connection reached, as we see it: the agent checks
	 * it against its own view, and both MACs cover it */
	if ((mine.has_cid = cid != VS_CID_ANY))
		mine.cid = cid;
	else if (fd >= 0)
		vs_unix_link(fd, mine.path, sizeof mine.path);
	h->link = mine;
	if (cap < VS_MAGIC_LEN + VS_HDR + 64)
		return 0;
	memcpy(out, VS_MAGIC, VS_MAGIC_LEN);
	k = vs_hello_encode(out + VS_MAGIC_LEN + VS_HDR, cap - VS_MAGIC_LEN - VS_HDR, &mine);
	vs_hdr_put(out + VS_MAGIC_LEN, VS_HELLO, (uint32_t)k);
	sha256_init(&h->tr);
	sha256_update(&h->tr, out + VS_MAGIC_LEN + VS_HDR, k);
	return VS_MAGIC_LEN + VS_HDR + k;
}

/* A key proof is bound to the guest (PROTOCOL.md 3.3): where the agent
 * says which one it is, it must be the one this connection reached. */
static int hs_link_check(struct hs *h)
{
	if (!vs_link_differs(&h->link, &h->hi))
		return 0;
	if (h->hi.has_cid)
		return hs_fail(h, "the agent says it is CID %u, but this connection is with CID %u: a handshake relayed "
		                  "from another guest? refused", h->hi.cid, h->link.cid);
	return hs_fail(h, "the agent was reached at another socket than this connection's: a handshake relayed from "
	                  "another agent? refused");
}

/* One frame from the agent.  HS_DONE: h->hi holds its HELLO (and facts);
 * HS_MORE: send out[0..*outn) (an AUTH frame) and feed the next frame;
 * HS_FAIL: h->err says why.  Holding a key, we go on only with an agent
 * that proved it too. */
int hs_step(struct hs *h, const struct vs_hdr *fh, const uint8_t *p, size_t n, uint8_t *out, size_t *outn)
{
	uint8_t mac[VS_MAC];
	*outn = 0;
	if (fh->type == VS_ERROR) {
		char t[300];
		uint32_t code;
		vs_error_text(p, n, 0, &code, t, sizeof t);
		/* the hint is for a controller without a proof: not for a wrong
		 * key, nor for a handshake the agent saw relayed */
		return hs_fail(h, "agent: %s%s", t,
		               code == VS_E_AUTH && !strstr(t, "does not hold") && !strstr(t, "relayed") ? auth_hint : "");
	}
	if (h->stage == 0) {
		if (fh->type != VS_HELLO)
			return hs_fail(h, "protocol error: expected HELLO from the agent, got message type %u", fh->type);
		if (n < 16)
			return hs_fail(h, "protocol error: the agent's HELLO is %zu bytes, shorter than its 16-byte header", n);
		if (vs_get16(p) != VS_VERSION)
			return hs_fail(h, "agent speaks protocol version %u; this controller speaks %u%s", vs_get16(p),
			               VS_VERSION, vs_get16(p) < VS_VERSION ? " (upgrade the agent)" : "");
		if (vs_hello_decode(p, n, &h->hi) < 0)
			return hs_fail(h, "protocol error: malformed fields in the agent's HELLO");
		sha256_update(&h->tr, p, n);
		if (!(h->hi.flags & VS_HF_KEY)) {
			if (h->key)
				return hs_fail(h, "the agent did not prove that it holds the key: it admitted us by %s proof and "
				                  "asked for none (an agent without our key, or an impostor); we hold a key, so "
				                  "the proof must go both ways: refused", auth_name(&h->hi));
			return h->stage = 2, HS_DONE;
		}
		if (!h->key)
			return hs_fail(h, "the agent asks for its key: give it with --key FILE (or run vsock-shell as root, "
			                  "unless the agent runs --auth key)");
		if (!h->hi.has_nonce)
			return hs_fail(h, "protocol error: the agent asked for AUTH without a nonce");
		if (hs_link_check(h) < 0)
			return HS_FAIL;
		vs_hdr_put(out, VS_AUTH, VS_MAC);
		vs_auth_mac(h->key, 0, h->dialed, &h->tr, out + VS_HDR);
		sha256_update(&h->tr, out + VS_HDR, VS_MAC);
		*outn = VS_HDR + VS_MAC;
		h->stage = 1;
		return HS_MORE;
	}
	if (fh->type != VS_AUTH || n < VS_MAC)
		return hs_fail(h, "protocol error: expected AUTH from the agent, got message type %u", fh->type);
	sha256_update(&h->tr, p + VS_MAC, n - VS_MAC);
	vs_auth_mac(h->key, 1, h->dialed, &h->tr, mac);
	if (vs_memeq(mac, p, VS_MAC))
		return hs_fail(h, "the agent failed to prove that it holds the key (a different key, not our agent, or a "
		                  "proof made for another connection)");
	if (vs_fields_decode(p + VS_MAC, n - VS_MAC, &h->hi) < 0)
		return hs_fail(h, "protocol error: malformed fields in the agent's AUTH");
	h->stage = 2;
	return HS_DONE;
}

/* The guest's CID as the connection shows it, VS_CID_ANY when not vsock */
uint32_t peer_cid(int fd)
{
	struct vs_sockaddr_vm a;
	socklen_t l = sizeof a;
	if (getpeername(fd, (struct sockaddr *)&a, &l) < 0 || a.svm_family != AF_VSOCK)
		return VS_CID_ANY;
	return a.svm_cid;
}

/* The whole handshake on a blocking fd, by the deadline; dialed: we
 * connected to the agent.  -1 with the reason in hello_err. */
int hello_try(int fd, int dialed, struct vs_hello *hi, long deadline)
{
	static struct hs h;
	uint8_t b[VS_MAGIC_LEN + VS_HDR + 256];
	size_t k = hs_begin(&h, &hostkey, 0, dialed, fd, peer_cid(fd), b, sizeof b);
	if (vs_writeall(fd, b, k) < 0) {
		if (errno == EPIPE || errno == ECONNRESET)
			return hello_fail("agent closed the connection during the handshake (not a vsock-agent, or it refused us)");
		return hello_fail("unable to send HELLO to the agent: %s", strerror(errno));
	}
	for (;;) {
		struct vs_hdr fh;
		int n = vs_recv_by(fd, &fh, hbuf, sizeof hbuf, deadline), r;
		if (n < 0) {
			if (errno == 0 || errno == ECONNRESET)
				return hello_fail("agent closed the connection during the handshake (not a vsock-agent, or it "
				                  "refused us: see its log)");
			if (errno == ETIMEDOUT)
				return hello_fail("agent did not complete the handshake within %ld s", HANDSHAKE_MS / 1000);
			if (errno == EPROTO || errno == EMSGSIZE)
				return hello_fail("protocol error: malformed frame from the agent during the handshake");
			return hello_fail("unable to read HELLO from the agent: %s", strerror(errno));
		}
		r = hs_step(&h, &fh, hbuf, (size_t)n, b, &k);
		if (r == HS_FAIL)
			return hello_fail("%s", h.err);
		if (k && vs_writeall(fd, b, k) < 0)
			return hello_fail("unable to send AUTH to the agent: %s", strerror(errno));
		if (r == HS_DONE) {
			*hi = h.hi;
			return 0;
		}
	}
}

/* How the agent admitted us, from its HELLO's flags */
const char *auth_name(const struct vs_hello *hi)
{
	return hi->flags & VS_HF_KEY ? "key" : hi->flags & VS_HF_OPEN ? "none" : "kernel";
}

/* -v: which agent, and how it was proven */
static void hello_show(const struct vs_hello *hi)
{
	vinfo("agent: %s (auth %s)", *hi->software ? hi->software : "?", auth_name(hi));
}

static void hello_or_die(int fd, struct vs_hello *hi)
{
	if (hello_try(fd, 1, hi, vs_deadline(HANDSHAKE_MS)) < 0)
		die("%s", hello_err);
	hello_show(hi);
}

/* The agent must offer what we are about to ask (its --deny and --only
 * take capabilities away, and it says so in HELLO). */
void agent_require(const struct agent *ag, uint32_t cap, const char *what)
{
	if (!(ag->hi.caps & cap))
		die("the agent does not offer %s (see its --deny and --only)", what);
}

/* Firecracker / cloud-hypervisor host-initiated connection: "CONNECT
 * <port>\n" to the VMM's socket, answered by "OK <n>\n".  When nothing
 * listens in the guest the VMM just closes. */
static int hybrid_connect(int fd, const struct vs_addr *a, long deadline)
{
	char line[64];
	size_t n = 0;
	int k = snprintf(line, sizeof line, "CONNECT %u\n", a->port);
	if (vs_writeall(fd, line, (size_t)k) < 0)
		return -1;
	while (n < sizeof line - 1) {
		ssize_t r = vs_readall_by(fd, line + n, 1, deadline);
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

/* What a failed connect may mean.  ENODEV is the same for a CID no VM
 * has and for a host with no vsock host transport: both are said. */
static const char *connect_hint(const struct opts *o, int e)
{
	static char b[160];
	if (e == ECONNRESET || e == ECONNREFUSED)
		return o->wait_secs ? " (is the agent listening there?)" : " (is the agent listening there? -w SECS waits for it)";
	if (e == ENODEV && o->addr.kind == VS_ADDR_VSOCK) {
		snprintf(b, sizeof b, " (no VM has CID %u on this host, or it has no vsock host transport: is vhost_vsock "
		                      "loaded?)", o->addr.cid);
		return b;
	}
	if (e == ENODEV || e == EAFNOSUPPORT)
		return " (no vsock transport on this host: is vhost_vsock loaded?)";
	if (e == ETIMEDOUT)
		return " (no such guest CID?)";
	return "";
}

/* A vsock connection from a reserved source port when we may bind one:
 * the kernel's proof, for an agent that listens (vs_bind_reserved).
 * Others connect from an ordinary port and need the key. */
static int vsock_connect(const struct vs_addr *a)
{
	/* one process's connections take successive ports from a random
	 * start: a port just closed is never taken again at once, while the
	 * peer may still hold the old connection (its packets would go to
	 * it, and the new one would be reset).  vs_nonce, not getrandom:
	 * early in a guest's boot the pool may not be ready, and a fallback
	 * to the pid gave every session of one process the same port. */
	static uint32_t next;
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (!next) {
		uint8_t n[VS_NONCE_LEN];
		vs_nonce(n);
		next = vs_get32(n) | 1;
	}
	next = vs_bind_reserved(fd, next) + 1;
	vs_vsock_buffer(fd);
	return vs_connect_fd(fd, a);
}

int target_connect(const struct vs_addr *a)
{
	return a->kind == VS_ADDR_VSOCK ? vsock_connect(a) : vs_connect(a);
}

/* Connect to a listening agent, retrying with backoff for -w seconds (a
 * vsock port with no listener yet answers ECONNRESET), and never past
 * them: the last sleep is cut to what is left. */
int connect_target(const struct opts *o)
{
	long deadline = vs_deadline(o->wait_secs * 1000L);
	unsigned delay = 50;
	vinfo("connecting to %s", addr_str(&o->addr));
	for (;;) {
		int fd = target_connect(&o->addr), e;
		long left;
		if (fd >= 0 && (o->addr.kind != VS_ADDR_HYBRID || hybrid_connect(fd, &o->addr, vs_deadline(HANDSHAKE_MS)) == 0)) {
			vinfo("connected to %s", addr_str(&o->addr));
			return fd;
		}
		e = errno;
		if (fd >= 0)
			close(fd);
		left = deadline - vs_now_ms();
		if (left <= 0) {
			errno = e;
			if (o->addr.kind == VS_ADDR_HYBRID && fd >= 0)
				die("VMM at %s refused the connection to guest port %u%s", o->addr.path, o->addr.port,
				    connect_hint(o, e));
			die("unable to connect to %s: %s%s", addr_str(&o->addr), strerror(e), connect_hint(o, e));
		}
		usleep((useconds_t)((long)delay < left ? (long)delay : left) * 1000);
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
	if (errno == EACCES && a->kind == VS_ADDR_VSOCK && a->port <= VS_PORT_RESERVED)
		die("unable to listen on %s: port %u is reserved: it needs root (CAP_NET_BIND_SERVICE), which is what "
		    "proves us to the agents; unprivileged, use a port above 1023 and a key (--key)",
		    addr_str(a), a->port);
	die("unable to listen on %s: %s", addr_str(a), vs_listen_why(errno));
}

/* Connections refused while we wait for the agent (an impostor, a
 * probe, an agent with another key): the first is said at once, later
 * ones as a count at most every NOTE_MS (an agent that dials again and
 * again with the wrong key would write a line a second), and the last
 * one's cause goes into the message that ends the wait. */
static struct {
	unsigned long n, held;
	long next;
	char last[512];
} refusals;

static void refused(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void refused(const char *fmt, ...)
{
	long now = vs_now_ms();
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(refusals.last, sizeof refusals.last, fmt, ap);
	va_end(ap);
	refusals.n++;
	if (now < refusals.next) {
		refusals.held++;
		return;
	}
	if (refusals.held)
		warnx("%lu more refused, the last: %s; waiting for the agent still", refusals.held, refusals.last);
	else
		warnx("%s; waiting for the agent still", refusals.last);
	refusals.held = 0;
	refusals.next = now + NOTE_MS;
}

/* The wait ended: what it ends with, and why, when something was refused. */
static void refused_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void refused_die(const char *fmt, ...)
{
	char m[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	if (!refusals.n)
		die("%s", m);
	die("%s: %lu connection%s refused, the last: %s", m, refusals.n, refusals.n == 1 ? "" : "s", refusals.last);
}

/* Accept one agent connection from an allowed peer by the deadline, or -1. */
int accept_agent(const struct opts *o, int lfd, long deadline)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd;
		if (vs_wait_by(lfd, POLLIN, deadline) < 0) {
			if (errno == ETIMEDOUT)
				return -1;
			die_sys("unable to wait for the agent");
		}
		fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		if (ss.ss_family == AF_VSOCK)
			vs_vsock_buffer(fd);
		if (ss.ss_family == AF_VSOCK && !o->allow_any) {
			uint32_t cid = ((struct vs_sockaddr_vm *)&ss)->svm_cid;
			if (o->allow_cid && cid != o->allow_cid) {
				refused("a connection from CID %u (waiting for CID %u)", cid, o->allow_cid);
				close(fd);
				continue;
			}
			vinfo("agent connected from CID %u", cid);
		} else {
			vinfo("agent connected");
		}
		return fd;
	}
}

/* A session's token: unguessable, and never 0 (no token) */
uint64_t new_token(void)
{
	uint8_t n[VS_NONCE_LEN];
	uint64_t t = 0;
	while (!t) {
		vs_nonce(n);
		t = vs_get64(n);
	}
	return t;
}

/* Listen mode: wait for the agent's control connection.  A connection
 * that fails the handshake (a listener's liveness probe, an impostor, a
 * stray client, an agent with another key) does not end the wait: the
 * next one may be the agent (refused() says so, sparingly). */
void agent_control(struct opts *o, struct agent *ag)
{
	long deadline = o->wait_secs ? vs_deadline(o->wait_secs * 1000L) : VS_NEVER;
	ag->lfd = listen_addr(&o->addr);
	vinfo("waiting for the agent on %s", addr_str(&o->addr));
	for (;;) {
		ag->ctl = accept_agent(o, ag->lfd, deadline);
		if (ag->ctl < 0)
			refused_die("no agent connected to %s within %d s", addr_str(&o->addr), o->wait_secs);
		int r = hello_try(ag->ctl, 0, &ag->hi, vs_deadline(HANDSHAKE_MS));
		if (r == 0 && !(ag->hi.flags & VS_HF_REPORT))
			break;
		/* a report connection (an agent's init, after a release)
		 * carries stages for a hub, and no sessions: not the agent to
		 * wait for */
		if (r == 0)
			vinfo("skipped an agent's report connection");
		else
			refused("%s", hello_err);
		close(ag->ctl);
	}
	hello_show(&ag->hi);
	if (!(ag->hi.caps & VS_CAP_DIALBACK))
		die("the agent does not offer dial-back sessions");
}

/* Listen mode: the control connection once, then for each session an
 * OPEN(token) and the agent's dial-back carrying that token, all by one
 * deadline. */
static int dialback_session(struct opts *o, struct agent *ag)
{
	uint8_t b[8];
	uint64_t token = new_token();
	struct vs_hello hi;
	long deadline = vs_deadline(DIALBACK_MS);
	vs_put64(b, token);
	if (vs_send(ag->ctl, VS_OPEN, b, 8) < 0)
		die_sys("unable to ask the agent for a session");
	for (;;) {
		int fd = accept_agent(o, ag->lfd, deadline);
		if (fd < 0)
			refused_die("the agent did not dial back for the session within %ld s", DIALBACK_MS / 1000);
		if (hello_try(fd, 0, &hi, deadline) < 0) {
			refused("dial-back: %s", hello_err);
			close(fd);
			continue;
		}
		if (hi.token == token)
			return fd;
		refused("dropped a dial-back that is not this session's (a late one, or another controller's)");
		close(fd);
	}
}

/* A fresh connection, handshake done, ready for one request: op and what
 * name it for the hub's audit. */
int agent_session(struct opts *o, struct agent *ag, const char *op, const char *what)
{
	int fd;
	if (o->at)
		return hub_open(o, ag, op, what);
	if (!o->listen) {
		fd = connect_target(o);
		hello_or_die(fd, &ag->hi);
		return fd;
	}
	if (ag->lfd < 0)
		agent_control(o, ag);
	return dialback_session(o, ag);
}

/* Done with the agent.  release: everything asked of it succeeded, so
 * tell a dialing agent (BYE) that the host is done with it: a
 * provisioning initramfs boots on only then, never because we died. */
void agent_close(struct agent *ag, int release)
{
	if (ag->ctl >= 0) {
		if (release && vs_send(ag->ctl, VS_BYE, NULL, 0) == 0)
			vinfo("released the agent");
		close(ag->ctl);
	}
	if (ag->lfd >= 0)
		close(ag->lfd);
	ag->ctl = ag->lfd = -1;
}
