/* hub.c - the hub: `vsock-shell serve` holds the control connection of
 * every dialing agent on this host, names the guests by what they cannot
 * forge (the vsock peer CID, or the Unix path a hybrid VMM delivered them
 * on), and serves local clients on a Unix socket: @NAME sessions, ls,
 * wait, release, events.  It is a control plane only: for a session it
 * asks the agent for a dial-back, does that connection's handshake, and
 * hands it to the client with SCM_RIGHTS; session bytes never pass
 * through here.  One event loop (epoll), every socket call MSG_DONTWAIT, small
 * per-connection state: a silent or slow peer holds nobody else up.
 *
 * The client side of those verbs is verbs.c. */
#include "vsh.h"
#include "auth.h"
#include "transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif


#define HANDSHAKE_MS vsh_timeout_ms()
#define DIALBACK_MS vsh_timeout_ms()
#define REQUEST_MS vsh_timeout_ms() /* a client must say what it wants */
#define CTL_IN 2048           /* agent frames here are small: HELLO, AUTH, PONG, ENDED */
#define CLIENT_IN 8192
#define OUT_MAX (4 << 20)     /* a client that does not read its ls or events */
#define TICK_MS 200
#define PENDING_GUEST 8       /* agent handshakes pending from one guest, beyond the dial-backs asked of it */
#define PENDING_ALL 128       /* from all guests together (at most a quarter of the descriptor limit) */
#define NOTE_MS 10000         /* refusals are logged as a count, at most this often */

const char hub_usage[] =
    "usage: vsock-shell serve [--vsock ADDR|off] [--unix NAME=PATH]... [--hub PATH]\n"
    "                         [--group GROUP] [--name NAME=CID]... [--config FILE]\n"
    "                         [--key FILE] [--keys DIR] [-v]\n"
    "\n"
    "The hub: hold the control connection of every dialing agent, name the\n"
    "guests, and serve sessions to clients (vsock-shell @NAME ..., cp @NAME,\n"
    "ls, wait, release, events) on a Unix socket, authorised by the kernel's\n"
    "SO_PEERCRED: root, the hub's own user, and members of --group.  Runs in\n"
    "the foreground, one log line per event, until SIGTERM, SIGINT or SIGHUP.\n"
    "\n"
    "  --vsock ADDR   where agents dial (default vsock:any:1023, a reserved\n"
    "                 port: only root can listen there, which is what proves\n"
    "                 the hub to the agents); 'off' for none\n"
    "  --unix NAME=PATH  also accept agents on this Unix socket: a Firecracker\n"
    "                 or cloud-hypervisor VM's <uds_path>_PORT; the path is\n"
    "                 that guest's identity (repeatable)\n"
    "  --hub PATH     the client socket (default $VSOCK_SHELL_HUB, else\n"
    "                 /run/vsock-shell/hub.sock)\n"
    "  --group GROUP  let this group's members use the hub (name or number)\n"
    "  --name NAME=CID  call the guest at CID NAME (repeatable)\n"
    "  --config FILE  lines 'guest NAME cid CID' and 'guest NAME unix PATH'\n"
    "  --key FILE     a shared key for agents that ask for one\n"
    "  --keys DIR     per-guest keys: DIR/NAME.key, or DIR/CID.key\n"
    "  -v             log every session's handshake too\n"
    "Keep-alive: a PING every 30 s ($VSOCK_SHELL_KEEPALIVE), and an agent\n"
    "that leaves one unanswered is dropped.\n";

/* ---- the hub's state ---- */

enum { K_LVSOCK = 1, K_LUNIX, K_LHUB, K_SIG, K_AGENT, K_CTL, K_CLIENT, K_STANDBY, K_REPORT };
/* what a client waits for */
enum { W_NONE, W_REQ, W_GUEST, W_DIALBACK, W_FLUSH, W_EVENTS, W_STAGE };

struct conn;

struct guest {
	char name[64];          /* configured name, or "" */
	uint32_t cid;           /* vsock: the CID; 0 for a Unix path */
	int lunix;              /* its --unix listener, or -1 */
	struct conn *ctl;       /* its control connection, when up */
	struct conn *standby;   /* a dial-back its agent made ahead of a session */
	time_t since;
	struct vs_hello hi;     /* what it says of itself: shown, never trusted */
	unsigned sessions;      /* opened and not yet ENDED */
	int ping_out;
	int refs;               /* connections whose g it is: its control and
	                         * standby ones, clients that asked for it */
	char last_error[300];   /* why its agent was last refused or dropped, or
	                         * why it went down; "" once it is up */
	uint32_t stage;         /* its last STAGE report (VS_ST_*), 0 for none */
	uint64_t stage_ms;      /* the agent's uptime then */
	char stage_text[128];
};

struct conn {
	int fd, kind;
	struct guest *g;        /* K_AGENT / K_CTL: whose; K_CLIENT: the one asked for */
	uint32_t cid;           /* K_AGENT: the peer's identity, as accepted */
	int lunix;
	struct hs hs;           /* K_AGENT: the handshake */
	long deadline;          /* VS_NEVER, or when to give up */
	/* K_CLIENT */
	uid_t uid;
	pid_t pid;
	int wait;               /* W_* */
	int req;                /* the request's type */
	uint32_t stage;         /* W_STAGE: the stage it waits for */
	uint32_t waitms;        /* W_GUEST: as long as it asked to wait */
	uint64_t token;         /* W_DIALBACK */
	char op[16], what[200];
	uint8_t *in;            /* input buffer, incap bytes */
	size_t inlen, incap;
	uint8_t *out;           /* output not yet written (clients) */
	size_t outlen, outoff;
	int dead;               /* closed: freed at the end of the pass */
	struct conn *next;
};

static struct {
	int ep;
	struct conn *conns;     /* oldest first: waiting clients are served in turn */
	struct conn **tail;     /* where the next one goes */
	struct guest **guests;
	int nguests, capguests;
	const char *keydir;
	gid_t gid;
	int have_gid;
	const char *hubpath;
	const char **unixpaths;
	struct stat *unixst, hubst;
	int nunix;
	long keepalive, next_ping;
	int sigfd[2];
	int pending_max;        /* PENDING_ALL, or less for a low descriptor limit */
	int spare;              /* a descriptor kept to make room at the limit, or -1 */
	struct note {           /* refusals since the last log line */
		unsigned long n;
		long next;      /* no line before this */
	} refused, full;        /* over a cap on pending handshakes; at the descriptor limit */
	char refused_from[160];
	struct refusal {        /* an agent's handshakes refused: a line per peer at most every NOTE_MS */
		char peer[160], why[400];
		unsigned long n;  /* refused since its last line, not logged */
		long next, used;
	} refusals[16];
} hub;

/* One line of the hub's log, escaped as a whole (vs_esc): the guests'
 * facts and errors, the clients' requests are in it. */
static void hlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void hlog(const char *fmt, ...)
{
	char m[1024], b[2048 + 8] = "hub: ";
	int n;
	size_t k;
	va_list ap;
	va_start(ap, fmt);
	n = vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	vs_esc(b + 5, sizeof b - 5 - 1, m, strlen(m), 0);
	k = strlen(b);
	b[k++] = '\n';
	vs_writeall(2, b, k);
}

/* A guest's identity as the hub knows it: its Unix listener, or else its
 * CID. */
static const char *peer_addr(int lunix, uint32_t cid, char *b, size_t n)
{
	if (lunix >= 0)
		snprintf(b, n, "unix:%s", hub.unixpaths[lunix]);
	else
		snprintf(b, n, "vsock:%u", cid);
	return b;
}

static int peer_is(const struct guest *g, int lunix, uint32_t cid)
{
	return g->lunix >= 0 ? g->lunix == lunix : lunix < 0 && g->cid == cid;
}

static const char *guest_addr(const struct guest *g, char *b, size_t n)
{
	return peer_addr(g->lunix, g->cid, b, n);
}

static const char *guest_label(const struct guest *g)
{
	static char b[2][240];
	static int i;
	char a[160];
	i ^= 1;
	guest_addr(g, a, sizeof a);
	if (*g->name)
		snprintf(b[i], sizeof b[i], "%s (%s)", g->name, a);
	else
		snprintf(b[i], sizeof b[i], "%s", a);
	return b[i];
}

static struct guest *guest_new(const char *name, uint32_t cid, int lunix)
{
	struct guest *g = xmalloc(sizeof *g);
	memset(g, 0, sizeof *g);
	snprintf(g->name, sizeof g->name, "%s", name ? name : "");
	g->cid = cid;
	g->lunix = lunix;
	if (hub.nguests == hub.capguests) {
		hub.capguests = hub.capguests ? 2 * hub.capguests : 64;
		hub.guests = realloc(hub.guests, (size_t)hub.capguests * sizeof *hub.guests);
		if (!hub.guests)
			die("unable to allocate the guest table");
	}
	hub.guests[hub.nguests++] = g;
	return g;
}

static struct guest *guest_by_cid(uint32_t cid)
{
	int i;
	for (i = 0; i < hub.nguests; i++)
		if (hub.guests[i]->lunix < 0 && hub.guests[i]->cid == cid)
			return hub.guests[i];
	return NULL;
}

static struct guest *guest_by_unix(int lunix)
{
	int i;
	for (i = 0; i < hub.nguests; i++)
		if (hub.guests[i]->lunix == lunix)
			return hub.guests[i];
	return NULL;
}

/* "NAME" or "CID": a CID that no guest record has yet gets one, so that a
 * client can wait for a guest before it first connects (the record goes
 * again with the last connection that points at it: conns_reap). */
static struct guest *guest_find(const char *t)
{
	int i;
	uint32_t cid;
	for (i = 0; i < hub.nguests; i++)
		if (*hub.guests[i]->name && !strcmp(hub.guests[i]->name, t))
			return hub.guests[i];
	if (vs_cid_parse(t, &cid) < 0 || cid == VS_CID_ANY)
		return NULL;
	return guest_by_cid(cid) ? guest_by_cid(cid) : guest_new(NULL, cid, -1);
}

/* A per-guest key file: 1 once loaded.  One that is there but cannot be
 * used (others may read it, too short, unreadable) says why in bad[]:
 * falling back to --key would hide it. */
static int key_try(const char *path, struct vs_key *k, char *bad, size_t cap)
{
	if (vs_key_load(k, path) == 0)
		return 1;
	if (errno != ENOENT)
		snprintf(bad, cap, "%s (agent dropped)", key_error(path, k));
	return 0;
}

/* The key this guest's agent must prove, if it asks: --keys DIR/NAME.key
 * or DIR/CID.key, else --key.  NULL with bad[] set: a key file of its
 * own was refused, and so is the agent. */
static const struct vs_key *guest_key(const struct guest *g, uint32_t cid, char *bad, size_t cap)
{
	static struct vs_key k;
	char p[4200];
	*bad = 0;
	if (hub.keydir) {
		if (g && *g->name) {
			snprintf(p, sizeof p, "%s/%s.key", hub.keydir, g->name);
			if (key_try(p, &k, bad, cap))
				return &k;
		}
		if (cid && !*bad) {
			snprintf(p, sizeof p, "%s/%u.key", hub.keydir, cid);
			if (key_try(p, &k, bad, cap))
				return &k;
		}
		if (*bad)
			return NULL;
	}
	return hostkey.n ? &hostkey : NULL;
}

/* A guest that nobody configured lives only while connections point at
 * it: its agent's, or a client's that waits for it; or, once it reported
 * a provisioning stage, for good (with that stage: a release is followed
 * by a report connection, and a wait for it may come after it closed).  Else any client
 * naming @CIDs would grow the table without bound, and ls with it. */
static void guest_unref(struct guest *g)
{
	int i;
	if (--g->refs > 0 || *g->name || g->stage)
		return;
	for (i = 0; i < hub.nguests && hub.guests[i] != g; i++)
		;
	hub.guests[i] = hub.guests[--hub.nguests];
	free(g);
}

/* The guest an agent connection is from, if it has a record. */
static struct guest *peer_guest(int lunix, uint32_t cid)
{
	return lunix >= 0 ? guest_by_unix(lunix) : guest_by_cid(cid);
}

/* A guest's last error, for ls, events and whoever waits for it. */
static void guest_error(struct guest *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void guest_error(struct guest *g, const char *fmt, ...)
{
	va_list ap;
	if (!g)
		return;
	va_start(ap, fmt);
	vsnprintf(g->last_error, sizeof g->last_error, fmt, ap);
	va_end(ap);
}

/* An agent connection refused (its handshake failed, it timed out, its
 * key file is unusable): the cause becomes its guest's last error, and a
 * log line, at most one per peer every NOTE_MS: an agent that dials again
 * and again (--retry, --reconnect) with the wrong key would otherwise
 * write a line a second.  What was held back is logged as a count with
 * the cause it had last (tick_notes). */
static void agent_refused(int lunix, uint32_t cid, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void agent_refused(int lunix, uint32_t cid, const char *fmt, ...)
{
	struct refusal *r = NULL, *t;
	char peer[160], why[400];
	long now = vs_now_ms();
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	guest_error(peer_guest(lunix, cid), "%s", why);
	peer_addr(lunix, cid, peer, sizeof peer);
	for (t = hub.refusals; t < hub.refusals + 16; t++) {
		if (!strcmp(t->peer, peer)) {
			r = t;
			break;
		}
		if (!r || t->used < r->used)
			r = t; /* else the one unused longest */
	}
	if (strcmp(r->peer, peer)) {
		if (r->n)
			hlog("agent at %s: refused %lu more time%s, the last: %s", r->peer, r->n, r->n == 1 ? "" : "s", r->why);
		snprintf(r->peer, sizeof r->peer, "%s", peer);
		r->n = 0;
		r->next = 0;
	}
	r->used = now;
	snprintf(r->why, sizeof r->why, "%s", why);
	if (now < r->next) {
		r->n++;
		return;
	}
	hlog("agent at %s: %s", peer, why);
	r->next = now + NOTE_MS;
}

/* ---- connections ---- */

static void conn_guest(struct conn *c, struct guest *g)
{
	c->g = g;
	if (g)
		g->refs++;
}

static struct conn *conn_new(int fd, int kind, size_t incap)
{
	struct conn *c = xmalloc(sizeof *c);
	struct epoll_event ev;
	memset(c, 0, sizeof *c);
	c->fd = fd;
	c->kind = kind;
	c->lunix = -1;
	c->deadline = VS_NEVER;
	if (incap) {
		c->in = xmalloc(incap);
		c->incap = incap;
	}
	if (!hub.tail)
		hub.tail = &hub.conns;
	*hub.tail = c;
	hub.tail = &c->next;
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(hub.ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		die_sys("unable to watch a connection");
	return c;
}

static void conn_events(struct conn *c, uint32_t events)
{
	struct epoll_event ev;
	ev.events = events;
	ev.data.ptr = c;
	epoll_ctl(hub.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void guest_down(struct guest *g, int kind);

static void conn_close(struct conn *c)
{
	if (c->dead)
		return;
	if (c->kind == K_CTL && c->g && c->g->ctl == c)
		guest_down(c->g, EV_DISCONNECT);
	if (c->kind == K_STANDBY && c->g && c->g->standby == c)
		c->g->standby = NULL;
	epoll_ctl(hub.ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->dead = 1;
}

/* Free what this pass closed. */
static void conns_reap(void)
{
	struct conn **pp = &hub.conns;
	while (*pp) {
		struct conn *c = *pp;
		if (c->dead) {
			*pp = c->next;
			if (c->g)
				guest_unref(c->g);
			free(c->in);
			free(c->out);
			free(c);
		} else {
			pp = &c->next;
		}
	}
	hub.tail = pp;
}

/* A small frame now, or the peer is too slow for us: dropped.  (Agents
 * and clients read what they asked for; nobody's slowness may stall the
 * loop.) */
static int conn_send(struct conn *c, uint16_t type, const void *p, size_t n)
{
	uint8_t b[VS_HDR + 1024];
	ssize_t w;
	if (n > sizeof b - VS_HDR)
		return -1;
	vs_hdr_put(b, type, (uint32_t)n);
	if (n)
		memcpy(b + VS_HDR, p, n);
	w = send(c->fd, b, VS_HDR + n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w == (ssize_t)(VS_HDR + n))
		return 0;
	conn_close(c);
	return -1;
}

/* Queue output for a client (ls, events), written as it reads.  What
 * was written goes from the front, so the buffer holds only what is
 * pending (at most OUT_MAX), however long an events client stays. */
static int conn_queue(struct conn *c, uint16_t type, const void *p, size_t n)
{
	int idle = c->outoff == c->outlen; /* else EPOLLOUT is armed already */
	if (c->outlen - c->outoff + VS_HDR + n > OUT_MAX) {
		hlog("dropped a client (uid %u) that does not read", (unsigned)c->uid);
		conn_close(c);
		return -1;
	}
	if (c->outoff) {
		memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
		c->outlen -= c->outoff;
		c->outoff = 0;
	}
	c->out = realloc(c->out, c->outlen + VS_HDR + n);
	if (!c->out)
		die("unable to allocate client output");
	vs_hdr_put(c->out + c->outlen, type, (uint32_t)n);
	if (n) /* DONE has no payload, and p is NULL then */
		memcpy(c->out + c->outlen + VS_HDR, p, n);
	c->outlen += VS_HDR + n;
	if (idle)
		conn_events(c, EPOLLIN | EPOLLOUT);
	return 0;
}

static void conn_flush(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EAGAIN)
			return;
		if (w <= 0) {
			conn_close(c);
			return;
		}
		c->outoff += (size_t)w;
	}
	conn_events(c, EPOLLIN);
	if (c->wait == W_FLUSH)
		conn_close(c);
}

static void client_error(struct conn *c, uint32_t code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void client_error(struct conn *c, uint32_t code, const char *fmt, ...)
{
	uint8_t b[4 + 1000];
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf((char *)b + 4, sizeof b - 4, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof b - 5)
		n = (int)sizeof b - 5;
	vs_put32(b, code);
	conn_send(c, VS_ERROR, b, 4 + (size_t)n);
	conn_close(c);
}

/* ---- guests: records, events ---- */

/* A guest as the client protocol carries it. */
static size_t guest_put(const struct guest *g, uint8_t *b, size_t cap)
{
	struct vs_wr w = { b, 0, cap, 0 };
	char a[160];
	vs_wr32(&w, g->ctl ? 1 : 0);
	vs_wr32(&w, g->cid);
	vs_wr64(&w, (uint64_t)g->since);
	vs_wr32(&w, g->sessions);
	vs_wr32(&w, g->hi.caps);
	vs_wrstr(&w, g->name);
	vs_wrstr(&w, guest_addr(g, a, sizeof a));
	vs_wrstr(&w, g->hi.hostname);
	vs_wrstr(&w, g->hi.kernel);
	vs_wrstr(&w, g->hi.software);
	vs_wrstr(&w, g->hi.machine_id);
	vs_wrstr(&w, g->hi.boot_id);
	vs_wrstr(&w, g->ctl ? auth_name(&g->hi) : "");
	vs_wrstr(&w, g->last_error);
	vs_wr32(&w, g->hi.has_boot ? g->hi.boot : 0xffffffffu);
	vs_wr64(&w, g->hi.uptime);
	vs_wr32(&w, g->stage);
	vs_wr64(&w, g->stage_ms);
	vs_wrstr(&w, g->stage_text);
	return w.err ? 0 : w.n;
}

/* An event for one client: kind, time, the guest as it is now. */
static void event_queue(struct conn *c, struct guest *g, int kind)
{
	uint8_t b[1400];
	size_t n;
	vs_put32(b, (uint32_t)kind);
	vs_put64(b + 4, (uint64_t)time(NULL));
	n = guest_put(g, b + 12, sizeof b - 12);
	conn_queue(c, VS_HUB_EVENT, b, 12 + n);
}

static void event(struct guest *g, int kind)
{
	struct conn *c;
	for (c = hub.conns; c; c = c->next)
		if (!c->dead && c->kind == K_CLIENT && c->wait == W_EVENTS)
			event_queue(c, g, kind);
}

static void client_open_send(struct conn *c);

static void guest_up(struct guest *g, struct conn *ctl)
{
	struct conn *c;
	if (g->ctl) {
		/* the guest rebooted, or dialed again: the new one is it */
		struct conn *old = g->ctl;
		hlog("guest %s dialed again: replacing its old control connection", guest_label(g));
		conn_close(old);
	}
	g->ctl = ctl;
	conn_guest(ctl, g);
	ctl->kind = K_CTL;
	ctl->deadline = VS_NEVER;
	if (strcmp(g->hi.boot_id, ctl->hs.hi.boot_id)) /* another boot: its stages are yet to come */
		g->stage = 0, g->stage_ms = 0, *g->stage_text = 0;
	g->hi = ctl->hs.hi;
	g->since = time(NULL);
	g->sessions = 0;
	g->ping_out = 0;
	*g->last_error = 0;
	hlog("guest %s connected: %s, hostname %s, kernel %s, auth %s", guest_label(g),
	     *g->hi.software ? g->hi.software : "?", *g->hi.hostname ? g->hi.hostname : "?",
	     *g->hi.kernel ? g->hi.kernel : "?", auth_name(&g->hi));
	event(g, EV_CONNECT);
	/* whoever waited for it */
	for (c = hub.conns; c; c = c->next) {
		if (c->dead || c->kind != K_CLIENT || c->wait != W_GUEST || c->g != g)
			continue;
		if (c->req == VS_HUB_WAIT) {
			conn_send(c, VS_OK, NULL, 0);
			conn_close(c);
		} else {
			client_open_send(c);
		}
	}
}

static void guest_down(struct guest *g, int kind)
{
	struct conn *c;
	hlog("guest %s %s", guest_label(g), kind == EV_RELEASE ? "released" : "disconnected");
	if (kind == EV_RELEASE)
		*g->last_error = 0; /* down, and rightly so */
	else if (!*g->last_error)
		guest_error(g, "its control connection closed");
	g->ctl = NULL;
	g->sessions = 0;
	if (g->standby)
		conn_close(g->standby);
	event(g, kind);
	/* sessions it will never dial back for */
	for (c = hub.conns; c; c = c->next)
		if (!c->dead && c->kind == K_CLIENT && c->wait == W_DIALBACK && c->g == g)
			client_error(c, VS_E_IO, "guest %s went away before the session started", guest_label(g));
}

/* ---- listeners at the descriptor limit ---- */

/* At the limit (EMFILE, ENFILE) accept4 fails and leaves the connection
 * queued: the listener stays readable, and a level-triggered loop would
 * spin on it.  The spare descriptor makes room to take that connection
 * and close it at once (its peer sees the refusal; an agent dials again
 * later); without one the listener rests for a tick. */
static int spare_new(void)
{
	return fcntl(hub.ep, F_DUPFD_CLOEXEC, 0);
}

static void listener_full(struct conn *l)
{
	int fd = -1;
	hub.full.n++;
	if (hub.spare < 0)
		hub.spare = spare_new();
	if (hub.spare >= 0) {
		close(hub.spare);
		fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			close(fd);
		hub.spare = spare_new();
	}
	if (fd < 0 || hub.spare < 0) {
		conn_events(l, 0);
		l->deadline = vs_deadline(TICK_MS);
	}
}

/* ---- agents: the handshake, then control or dial-back ---- */

/* Over a cap on pending handshakes?  A guest may have PENDING_GUEST
 * beyond the dial-backs the hub asked it for (sessions waiting for one),
 * all guests together hub.pending_max beyond all those asked for: a guest
 * that opens connections and never speaks holds that many descriptors,
 * each for HANDSHAKE_MS, and leaves the rest to the others. */
static int pending_over(int lunix, uint32_t cid)
{
	struct conn *c;
	int mine = 0, all = 0;
	for (c = hub.conns; c; c = c->next) {
		if (c->dead)
			continue;
		if (c->kind == K_AGENT) {
			all++;
			mine += c->lunix == lunix && (lunix >= 0 || c->cid == cid);
		} else if (c->kind == K_CLIENT && c->wait == W_DIALBACK) {
			all--;
			mine -= peer_is(c->g, lunix, cid);
		}
	}
	return mine >= PENDING_GUEST || all >= hub.pending_max;
}

static void agent_accept(struct conn *l)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	uint8_t b[VS_MAGIC_LEN + VS_HDR + 256];
	struct guest *g;
	struct conn *c;
	const struct vs_key *key;
	uint32_t cid = 0;
	size_t k;
	char bad[600];
	int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE)
			listener_full(l);
		return;
	}
	if (l->kind == K_LVSOCK)
		cid = ((struct vs_sockaddr_vm *)&ss)->svm_cid;
	if (pending_over(l->lunix, cid)) {
		close(fd);
		hub.refused.n++;
		peer_addr(l->lunix, cid, hub.refused_from, sizeof hub.refused_from);
		return;
	}
	c = conn_new(fd, K_AGENT, CTL_IN);
	c->deadline = vs_deadline(HANDSHAKE_MS);
	c->cid = cid;
	c->lunix = l->lunix;
	if (l->kind == K_LVSOCK) {
		vs_vsock_buffer(fd); /* it may become a session's */
		g = guest_by_cid(cid);
	} else {
		g = guest_by_unix(l->lunix);
	}
	/* the hub asks every agent for a standby dial-back (a session then
	 * needs no fork, dial and handshake on its way), and for its stages */
	key = guest_key(g, c->cid, bad, sizeof bad);
	if (*bad)
		agent_refused(c->lunix, c->cid, "%s", bad);
	k = *bad ? 0 : hs_begin(&c->hs, key, VS_HF_STANDBY | VS_HF_STAGES, 0, fd, l->kind == K_LVSOCK ? c->cid : VS_CID_ANY, b,
	                        sizeof b);
	if (!k || send(fd, b, k, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)k)
		conn_close(c);
}

/* The session's connection to the client that asked for it, with the
 * agent's HELLO; our copy goes. */
static void hand_over(struct conn *c, struct conn *a)
{
	uint8_t b[512];
	struct msghdr m;
	struct iovec iov;
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct cmsghdr *ch;
	size_t n;
	n = vs_hello_encode(b + VS_HDR, sizeof b - VS_HDR, &a->hs.hi);
	vs_hdr_put(b, VS_HUB_SESSION, (uint32_t)n);
	iov.iov_base = b;
	iov.iov_len = VS_HDR + n;
	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cm.b;
	m.msg_controllen = sizeof cm.b;
	ch = CMSG_FIRSTHDR(&m);
	ch->cmsg_level = SOL_SOCKET;
	ch->cmsg_type = SCM_RIGHTS;
	ch->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(ch), &a->fd, sizeof(int));
	if (sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)iov.iov_len)
		hlog("unable to hand the session to the client (uid %u pid %d): %s", (unsigned)c->uid, (int)c->pid,
		     strerror(errno));
	else
		c->g->sessions++;
	conn_close(a);
	conn_close(c);
}

/* A dial-back, handshake done: hand it to the client whose OPEN it
 * answers, or keep it as its guest's standby.  Never the standby to a
 * client waiting for a dial-back: the one it asked for would then come
 * for nobody, a connection and an agent process spent for nothing.  A
 * client that asks while the standby is there gets it (client_open_send). */
static void dialback_done(struct conn *a)
{
	struct conn *c;
	struct guest *g = a->lunix >= 0 ? guest_by_unix(a->lunix) : guest_by_cid(a->cid);
	if (a->hs.hi.flags & VS_HF_STANDBY) {
		if (!g || !g->ctl || g->standby) {
			conn_close(a); /* its agent makes another when it is wanted */
			return;
		}
		a->kind = K_STANDBY;
		conn_guest(a, g);
		a->deadline = VS_NEVER;
		g->standby = a;
		return;
	}
	for (c = hub.conns; c; c = c->next)
		if (!c->dead && c->kind == K_CLIENT && c->wait == W_DIALBACK && c->token == a->hs.hi.token)
			break;
	if (!c || !peer_is(c->g, a->lunix, a->cid)) { /* no guest answers for another */
		hlog("dropped a dial-back that no waiting session claims (its client gone, or served already)");
		conn_close(a);
		return;
	}
	hand_over(c, a);
}

static void agent_frame(struct conn *a, const struct vs_hdr *h, const uint8_t *p)
{
	uint8_t out[VS_HDR + VS_MAC];
	struct guest *g;
	size_t outn;
	int r = hs_step(&a->hs, h, p, h->len, out, &outn);
	char who[160];
	peer_addr(a->lunix, a->cid, who, sizeof who);
	if (r == HS_FAIL) {
		agent_refused(a->lunix, a->cid, "%s", a->hs.err);
		conn_close(a);
		return;
	}
	if (outn && send(a->fd, out, outn, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)outn) {
		conn_close(a);
		return;
	}
	if (r != HS_DONE)
		return;
	if (!(a->hs.hi.caps & VS_CAP_DIALBACK) && !a->hs.hi.token) {
		agent_refused(a->lunix, a->cid, "it offers no dial-back sessions; dropped");
		conn_close(a);
		return;
	}
	if (a->hs.hi.token) {
		if (vsh_verbose)
			hlog("dial-back from %s", who);
		dialback_done(a);
		return;
	}
	g = a->lunix >= 0 ? guest_by_unix(a->lunix) : guest_by_cid(a->cid) ? guest_by_cid(a->cid) : guest_new(NULL, a->cid, -1);
	if (a->hs.hi.flags & VS_HF_REPORT) {
		/* what happened since its agent's last connection (a release,
		 * switch_root): the guest is not up for it */
		a->kind = K_REPORT;
		conn_guest(a, g);
		a->deadline = vs_deadline(HANDSHAKE_MS);
		return;
	}
	guest_up(g, a);
}

/* A client waiting for a stage of g: answered when g reaches it, or
 * reports a failure instead.  1 when it was answered. */
static int stage_answer(struct conn *c, struct guest *g)
{
	if (g->stage == c->stage) {
		conn_send(c, VS_OK, NULL, 0);
		conn_close(c);
		return 1;
	}
	if (g->stage == VS_ST_FAILED) {
		client_error(c, VS_E_FAILED, "guest %s failed before %s: %s", guest_label(g), stage_name(c->stage),
		             g->stage_text);
		return 1;
	}
	return 0;
}

/* STAGE (PROTOCOL.md 4.4): u32 stage, u64 the agent's uptime, text. */
static void stage_report(struct conn *a, const struct vs_hdr *h, const uint8_t *p)
{
	struct guest *g = a->g;
	struct conn *c;
	if (h->len < 12) {
		hlog("guest %s: a STAGE of %u bytes; dropped", guest_label(g), h->len);
		conn_close(a);
		return;
	}
	g->stage = vs_get32(p);
	g->stage_ms = vs_get64(p + 4);
	vs_text_copy(g->stage_text, sizeof g->stage_text, p + 12, h->len - 12);
	hlog("guest %s: stage %s at %llu.%03u s: %s", guest_label(g), stage_name(g->stage),
	     (unsigned long long)(g->stage_ms / 1000), (unsigned)(g->stage_ms % 1000), g->stage_text);
	event(g, EV_STAGE);
	for (c = hub.conns; c; c = c->next)
		if (!c->dead && c->kind == K_CLIENT && c->wait == W_STAGE && c->g == g)
			stage_answer(c, g);
}

/* What a report connection says: its stages, then it closes. */
static void report_frame(struct conn *a, const struct vs_hdr *h, const uint8_t *p)
{
	if (h->type == VS_STAGE) {
		stage_report(a, h, p);
		return;
	}
	hlog("guest %s: unexpected message type %u on a report connection; dropped", guest_label(a->g), h->type);
	conn_close(a);
}

/* What a guest's agent says on its control connection. */
static void ctl_frame(struct conn *a, const struct vs_hdr *h, const uint8_t *p)
{
	struct guest *g = a->g;
	struct conn *c;
	switch (h->type) {
	case VS_STAGE:
		stage_report(a, h, p);
		return;
	case VS_PONG:
		g->ping_out = 0;
		return;
	case VS_ENDED:
		if (g->sessions)
			g->sessions--;
		return;
	case VS_ERROR:
		/* a failed OPEN (the agent could not fork or dial back): the
		 * oldest session waiting for this guest gets it */
		for (c = hub.conns; c; c = c->next)
			if (!c->dead && c->kind == K_CLIENT && c->wait == W_DIALBACK && c->g == g) {
				char t[300];
				uint32_t code;
				vs_error_text(p, h->len, VS_E_IO, &code, t, sizeof t);
				client_error(c, code, "agent: %s", t);
				break;
			}
		return;
	}
	hlog("guest %s: unexpected message type %u on its control connection; dropped", guest_label(g), h->type);
	guest_error(g, "unexpected message type %u on its control connection; dropped", h->type);
	conn_close(a);
}

/* An agent's frame, by what its connection has become: a handshake's
 * last frame may arrive with the first ones after it (a STAGE report
 * right behind the agent's HELLO), in the same read. */
static void agent_conn_frame(struct conn *a, const struct vs_hdr *h, const uint8_t *p)
{
	if (a->kind == K_AGENT)
		agent_frame(a, h, p);
	else if (a->kind == K_CTL)
		ctl_frame(a, h, p);
	else if (a->kind == K_REPORT)
		report_frame(a, h, p);
	else /* a dial-back, done: it has nothing to say */
		conn_close(a);
}

/* Read what there is; hand each complete frame to fn. */
static void conn_read_frames(struct conn *c, void (*fn)(struct conn *, const struct vs_hdr *, const uint8_t *))
{
	ssize_t r = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, MSG_DONTWAIT);
	size_t off = 0;
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		if (c->kind == K_AGENT)
			agent_refused(c->lunix, c->cid, "it closed during the handshake%s",
			              c->hs.stage ? "" : " (it refused us? see its log)");
		else if (c->kind == K_CTL)
			guest_error(c->g, "its agent closed the control connection%s%s", r ? ": " : "", r ? strerror(errno) : "");
		conn_close(c);
		return;
	}
	if (r < 0)
		return;
	c->inlen += (size_t)r;
	while (!c->dead) {
		struct vs_hdr h;
		int k = vs_hdr_parse(c->in + off, c->inlen - off, &h);
		if (k < 0 || (k > 0 && VS_HDR + h.len > c->incap)) {
			if (c->kind == K_AGENT)
				agent_refused(c->lunix, c->cid, "a malformed or oversized frame; dropped");
			else
				hlog("%s: malformed or oversized frame; dropped", c->g ? guest_label(c->g) : "a peer");
			if (c->kind == K_CTL)
				guest_error(c->g, "a malformed or oversized frame on its control connection; dropped");
			conn_close(c);
			return;
		}
		if (k == 0 || c->inlen - off < VS_HDR + h.len)
			break;
		fn(c, &h, c->in + off + VS_HDR);
		off += VS_HDR + h.len;
	}
	if (!c->dead) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
}

/* ---- clients ---- */

/* Is this peer allowed?  Root, our own user, and --group's members
 * (their primary group, or a supplementary one: the kernel's list). */
static int client_allowed(int fd, struct ucred *uc)
{
	socklen_t l = sizeof *uc;
	gid_t groups[256];
	int i, n;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, uc, &l) < 0)
		return 0;
	if (uc->uid == 0 || uc->uid == geteuid())
		return 1;
	if (!hub.have_gid)
		return 0;
	if (uc->gid == hub.gid)
		return 1;
	l = sizeof groups;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &l) < 0)
		return 0;
	n = (int)(l / sizeof *groups);
	for (i = 0; i < n; i++)
		if (groups[i] == hub.gid)
			return 1;
	return 0;
}

static void client_accept(struct conn *l)
{
	struct ucred uc;
	struct conn *c;
	int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE)
			listener_full(l);
		return;
	}
	c = conn_new(fd, K_CLIENT, CLIENT_IN);
	c->wait = W_REQ;
	c->deadline = vs_deadline(REQUEST_MS);
	if (!client_allowed(fd, &uc)) {
		hlog("refused a client: uid %u pid %d is not root, the hub's user or in its group", (unsigned)uc.uid,
		     (int)uc.pid);
		client_error(c, VS_E_ACCES, "not allowed: uid %u is not root%s", (unsigned)uc.uid,
		             hub.have_gid ? " nor in the hub's group" : " (the hub has no --group)");
		return;
	}
	c->uid = uc.uid;
	c->pid = uc.pid;
}

/* Ask the guest's agent for a dial-back for this client, or hand it the
 * standby one at once. */
static void client_open_send(struct conn *c)
{
	uint8_t b[8];
	struct conn *sb = c->g->standby;
	hlog("session: uid %u pid %d guest %s %s '%s'", (unsigned)c->uid, (int)c->pid, guest_label(c->g), c->op, c->what);
	if (sb) {
		c->g->standby = NULL;
		hand_over(c, sb);
		return;
	}
	c->token = new_token();
	vs_put64(b, c->token);
	if (conn_send(c->g->ctl, VS_OPEN, b, 8) < 0) {
		client_error(c, VS_E_IO, "guest %s: unable to ask its agent for a session", guest_label(c->g));
		return;
	}
	c->wait = W_DIALBACK;
	c->deadline = vs_deadline(DIALBACK_MS);
}

/* Names in natural order, as people number their guests: a run of
 * digits compares as the number it is (web2 before web10), the rest
 * byte by byte. */
static int name_cmp(const char *a, const char *b)
{
	while (*a && *b) {
		if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
			size_t i = 0, j = 0, k;
			while (a[i] == '0' && a[i + 1] >= '0' && a[i + 1] <= '9')
				i++; /* leading zeros do not count */
			while (b[j] == '0' && b[j + 1] >= '0' && b[j + 1] <= '9')
				j++;
			a += i, b += j;
			for (i = 0; a[i] >= '0' && a[i] <= '9'; i++)
				;
			for (j = 0; b[j] >= '0' && b[j] <= '9'; j++)
				;
			if (i != j)
				return i < j ? -1 : 1;
			for (k = 0; k < i; k++)
				if (a[k] != b[k])
					return a[k] < b[k] ? -1 : 1;
			a += i, b += j;
			continue;
		}
		if (*a != *b)
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
		a++, b++;
	}
	return *a ? 1 : *b ? -1 : 0;
}

/* ls order: named guests by name (naturally), then the unnamed by CID */
static int guest_cmp(const void *a, const void *b)
{
	const struct guest *x = *(struct guest *const *)a, *y = *(struct guest *const *)b;
	if (!*x->name != !*y->name)
		return *x->name ? -1 : 1;
	if (*x->name)
		return name_cmp(x->name, y->name);
	return x->cid < y->cid ? -1 : x->cid > y->cid;
}

static void client_ls(struct conn *c)
{
	uint8_t b[1400];
	int i;
	qsort(hub.guests, (size_t)hub.nguests, sizeof *hub.guests, guest_cmp);
	for (i = 0; i < hub.nguests && !c->dead; i++) {
		size_t n = guest_put(hub.guests[i], b, sizeof b);
		conn_queue(c, VS_HUB_GUEST, b, n);
	}
	if (!c->dead) {
		c->wait = W_FLUSH;
		c->deadline = VS_NEVER;
		conn_queue(c, VS_DONE, NULL, 0);
	}
}

/* events: with the snapshot flag, every guest as it is now first (in ls
 * order), then each change; both in one pass of the loop, so that no
 * change falls between the list and the stream. */
static void client_events(struct conn *c, const uint8_t *p, size_t n)
{
	int i;
	c->wait = W_EVENTS;
	c->deadline = VS_NEVER;
	if (n < 4 || !(vs_get32(p) & VS_HUB_EV_SNAPSHOT))
		return;
	qsort(hub.guests, (size_t)hub.nguests, sizeof *hub.guests, guest_cmp);
	for (i = 0; i < hub.nguests && !c->dead; i++)
		event_queue(c, hub.guests[i], EV_SNAPSHOT);
}

/* The operations a session names for the audit.  Anything else is
 * refused, so that what the log says is one of these and never a line
 * of the client's making. */
static int op_known(const char *op)
{
	static const char *const ops[] = { "exec", "shell", "put", "get", "power", "ps", "kill", "attach", "forward" };
	size_t i;
	for (i = 0; i < sizeof ops / sizeof *ops; i++)
		if (!strcmp(op, ops[i]))
			return 1;
	return 0;
}

static void client_frame(struct conn *c, const struct vs_hdr *h, const uint8_t *p)
{
	struct vs_rd r = { p, h->len, 0 };
	const char *t = NULL, *op = NULL, *what = NULL, *st = NULL;
	uint32_t wait = 0;
	if (c->wait != W_REQ) {
		client_error(c, VS_E_PROTO, "one request per connection");
		return;
	}
	c->req = h->type;
	switch (h->type) {
	case VS_HUB_OPEN:
		t = vs_rdstr(&r), op = vs_rdstr(&r), what = vs_rdstr(&r), wait = vs_rd32(&r);
		break;
	case VS_HUB_WAIT:
		t = vs_rdstr(&r), wait = vs_rd32(&r);
		if (r.n) /* a stage to wait for */
			st = vs_rdstr(&r);
		break;
	case VS_HUB_RELEASE:
		t = vs_rdstr(&r);
		break;
	case VS_HUB_LS:
		client_ls(c);
		return;
	case VS_HUB_EVENTS:
		client_events(c, p, h->len);
		return;
	default:
		client_error(c, VS_E_UNKNOWN, "unknown hub request %u", h->type);
		return;
	}
	if (r.err || r.n) {
		client_error(c, VS_E_PROTO, "malformed hub request %u", h->type);
		return;
	}
	if (st && !(c->stage = stage_parse(st))) {
		char name[40];
		vs_text_copy(name, sizeof name, (const uint8_t *)st, strlen(st)); /* escaped by its writers */
		client_error(c, VS_E_PROTO, "unknown stage '%s' (initramfs, modules, waiting, released, switch_root, "
		                            "failed or root)", name);
		return;
	}
	if (op && !op_known(op)) {
		char name[40];
		vs_text_copy(name, sizeof name, (const uint8_t *)op, strlen(op)); /* escaped by its writers */
		client_error(c, VS_E_PROTO, "unknown operation '%s' (exec, shell, put, get, power, ps, kill or forward)", name);
		return;
	}
	conn_guest(c, guest_find(t));
	if (!c->g) {
		client_error(c, VS_E_NOENT, "no guest named '%s' (see vsock-shell ls; names come from --name, --unix "
		                            "and --config, unnamed guests are @CID)", t);
		return;
	}
	if (h->type == VS_HUB_RELEASE) {
		struct conn *ctl = c->g->ctl;
		if (!ctl) {
			client_error(c, VS_E_NOENT, "guest %s is not connected", guest_label(c->g));
			return;
		}
		hlog("release: uid %u pid %d guest %s", (unsigned)c->uid, (int)c->pid, guest_label(c->g));
		conn_send(ctl, VS_BYE, NULL, 0);
		if (!ctl->dead) {
			guest_down(c->g, EV_RELEASE); /* not a disconnect: a release */
			conn_close(ctl);
		}
		conn_send(c, VS_OK, NULL, 0);
		conn_close(c);
		return;
	}
	if (op) {
		snprintf(c->op, sizeof c->op, "%s", op);
		vs_text_copy(c->what, sizeof c->what, (const uint8_t *)what, strlen(what));
	}
	if (c->stage) {
		if (!stage_answer(c, c->g)) {
			c->wait = W_STAGE;
			c->waitms = wait ? wait : HUB_OPEN_WAIT_MS;
			c->deadline = wait == 0xffffffffu ? VS_NEVER : vs_deadline((long)c->waitms);
		}
		return;
	}
	if (c->g->ctl) {
		if (h->type == VS_HUB_WAIT) {
			conn_send(c, VS_OK, NULL, 0);
			conn_close(c);
		} else {
			client_open_send(c);
		}
		return;
	}
	c->wait = W_GUEST;
	c->waitms = wait ? wait : HUB_OPEN_WAIT_MS;
	c->deadline = wait == 0xffffffffu ? VS_NEVER : vs_deadline((long)c->waitms);
}

static void client_read(struct conn *c)
{
	if (c->wait == W_REQ && c->inlen < VS_MAGIC_LEN) {
		ssize_t r = recv(c->fd, c->in + c->inlen, VS_MAGIC_LEN - c->inlen, MSG_DONTWAIT);
		if (r <= 0) {
			if (r == 0 || (errno != EAGAIN && errno != EINTR))
				conn_close(c);
			return;
		}
		c->inlen += (size_t)r;
		if (c->inlen < VS_MAGIC_LEN)
			return;
		if (memcmp(c->in, VS_MAGIC, VS_MAGIC_LEN)) {
			client_error(c, VS_E_PROTO, "not the hub protocol (expected the magic)");
			return;
		}
		c->inlen = 0;
	}
	if (c->wait == W_REQ) {
		conn_read_frames(c, client_frame);
		return;
	}
	/* after the request the client only waits; EOF means it gave up,
	 * and its pending slot goes with it */
	{
		char junk[64];
		ssize_t r = recv(c->fd, junk, sizeof junk, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			conn_close(c);
	}
}

/* ---- time: deadlines and keep-alive ---- */

/* Refusals are logged as a count, a line at most every NOTE_MS: a line
 * for each would hand the log to whoever floods us. */
static unsigned long note_take(struct note *t, long now)
{
	unsigned long n = t->n;
	if (!n || now < t->next)
		return 0;
	t->n = 0;
	t->next = now + NOTE_MS;
	return n;
}

static void tick_notes(long now)
{
	struct refusal *r;
	unsigned long n;
	for (r = hub.refusals; r < hub.refusals + 16; r++)
		if (r->n && now >= r->next) {
			hlog("agent at %s: refused %lu more time%s, the last: %s", r->peer, r->n, r->n == 1 ? "" : "s", r->why);
			r->n = 0;
			r->next = now + NOTE_MS;
		}
	if ((n = note_take(&hub.refused, now)))
		hlog("refused %lu agent connection%s over the caps on pending handshakes (%d per guest, %d in all), the "
		     "last from %s", n, n == 1 ? "" : "s", PENDING_GUEST, hub.pending_max, hub.refused_from);
	if ((n = note_take(&hub.full, now)))
		hlog("at the descriptor limit: refused %lu connection%s (raise it: ulimit -n, LimitNOFILE=)", n,
		     n == 1 ? "" : "s");
}

static void tick(void)
{
	long now = vs_now_ms();
	struct conn *c;
	int i;
	tick_notes(now);
	for (c = hub.conns; c; c = c->next) {
		if (c->dead || c->deadline == VS_NEVER || now < c->deadline)
			continue;
		if (c->kind == K_LVSOCK || c->kind == K_LUNIX || c->kind == K_LHUB) {
			conn_events(c, EPOLLIN); /* rested at the limit: try again */
			c->deadline = VS_NEVER;
		} else if (c->kind == K_AGENT) {
			agent_refused(c->lunix, c->cid, "it did not complete the handshake within %ld s; dropped", HANDSHAKE_MS / 1000);
			conn_close(c);
		} else if (c->wait == W_REQ) {
			conn_close(c);
		} else if (c->wait == W_GUEST) {
			client_error(c, VS_E_TIMEOUT, "guest %s is not connected after %u s%s%s", guest_label(c->g),
			             (c->waitms + 500) / 1000, *c->g->last_error ? "; its last error: " : "", c->g->last_error);
		} else if (c->kind == K_REPORT) {
			hlog("guest %s: a report connection still open after %ld s; dropped", guest_label(c->g), HANDSHAKE_MS / 1000);
			conn_close(c);
		} else if (c->wait == W_STAGE) {
			client_error(c, VS_E_TIMEOUT, "guest %s has not reported %s after %u s%s%s", guest_label(c->g),
			             stage_name(c->stage), (c->waitms + 500) / 1000, c->g->stage ? "; its last stage: " : "",
			             stage_name(c->g->stage));
		} else if (c->wait == W_DIALBACK) {
			client_error(c, VS_E_TIMEOUT, "guest %s: its agent did not dial back within %ld s", guest_label(c->g),
			             DIALBACK_MS / 1000);
		}
	}
	if (now < hub.next_ping)
		return;
	hub.next_ping = now + hub.keepalive;
	for (i = 0; i < hub.nguests; i++) {
		struct guest *g = hub.guests[i];
		uint8_t b[8];
		if (!g->ctl)
			continue;
		if (g->ping_out) {
			hlog("guest %s did not answer a keep-alive PING within %ld s; dropped", guest_label(g),
			     hub.keepalive / 1000);
			guest_error(g, "its agent did not answer a keep-alive PING within %ld s; dropped", hub.keepalive / 1000);
			conn_close(g->ctl);
			continue;
		}
		vs_put64(b, (uint64_t)now);
		if (conn_send(g->ctl, VS_PING, b, 8) == 0)
			g->ping_out = 1;
	}
}

/* ---- start and stop ---- */

static void on_signal(int sig)
{
	char c = (char)sig;
	int e = errno;
	if (write(hub.sigfd[1], &c, 1) < 0) {
		/* a wakeup is already pending */
	}
	errno = e;
}

/* A group by name (NSS: glibc's getgrnam; a static build without NSS
 * asks getent, which has it) or number. */
static gid_t group_gid(const char *name)
{
	struct group *gr;
	char *end;
	unsigned long v = strtoul(name, &end, 10);
	int p[2];
	pid_t pid = -1;
	if (*name && !*end)
		return (gid_t)v;
	gr = getgrnam(name);
	if (gr)
		return gr->gr_gid;
	if (pipe2(p, O_CLOEXEC) == 0 && (pid = fork()) == 0) {
		/* the child of a fork: only exec or _exit from here */
		dup2(p[1], 1);
		execlp("getent", "getent", "group", name, (char *)NULL);
		_exit(127);
	} else if (pid > 0) {
		char b[512], *c;
		ssize_t n;
		close(p[1]);
		n = vs_readall(p[0], b, sizeof b - 1);
		close(p[0]);
		waitpid(pid, NULL, 0);
		if (n > 0) {
			b[n] = 0;
			c = strchr(b, ':');
			if (c && (c = strchr(c + 1, ':')))
				return (gid_t)strtoul(c + 1, NULL, 10);
		}
	}
	die("unable to find group '%s'", name);
}

static void listen_fd(int fd, int kind, int lunix)
{
	struct conn *c = conn_new(fd, kind, 0);
	c->lunix = lunix;
	vs_nonblock(fd, 1);
}

static void config_line(struct opts *o, char *line, const char *file, int no)
{
	char *w[4];
	int n = 0;
	char *s = strtok(line, " \t\r\n");
	while (s && n < 4) {
		if (*s == '#')
			break;
		w[n++] = s;
		s = strtok(NULL, " \t\r\n");
	}
	if (!n)
		return;
	if (n != 4 || strcmp(w[0], "guest") || (strcmp(w[2], "cid") && strcmp(w[2], "unix")))
		die("%s:%d: expected 'guest NAME cid CID' or 'guest NAME unix PATH'", file, no);
	{
		static char buf[1024][300];
		static int k;
		if (k == 1024)
			die("%s: too many guests", file);
		snprintf(buf[k], sizeof buf[k], "%s=%s", w[1], w[3]);
		if (!strcmp(w[2], "cid") && o->nnames < 1024)
			o->names[o->nnames++] = buf[k++];
		else if (!strcmp(w[2], "unix") && o->nunix < 1024)
			o->unixes[o->nunix++] = buf[k++];
		else
			die("%s: too many guests", file);
	}
}

static void config_read(struct opts *o)
{
	FILE *f = fopen(o->config, "re");
	char line[1024];
	int no = 0;
	if (!f)
		die_sys("unable to read %s", o->config);
	while (fgets(line, sizeof line, f))
		config_line(o, line, o->config, ++no);
	fclose(f);
}

/* NAME=VALUE into its parts; the name must be a plain word. */
static const char *split_name(struct opts *o, const char *s, char *name, size_t cap, const char *opt)
{
	const char *eq = strchr(s, '=');
	size_t i, k = eq ? (size_t)(eq - s) : 0;
	if (!eq || !k || k >= cap || !eq[1])
		usage_error(o, "%s takes NAME=%s, not '%s'", opt, strcmp(opt, "--unix") ? "CID" : "PATH", s);
	for (i = 0; i < k; i++)
		if (!(s[i] == '-' || s[i] == '_' || s[i] == '.' || (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z')))
			usage_error(o, "%s: a guest name is letters, digits, '-', '_' and '.', not '%.*s'", opt, (int)k, s);
	memcpy(name, s, k);
	name[k] = 0;
	return eq + 1;
}

/* systemd's readiness protocol (sd_notify(3)) by hand: one datagram,
 * "READY=1", to $NOTIFY_SOCKET, a path or an abstract name ('@'), once
 * every socket listens: a unit of Type=notify is started then, and a
 * `vsock-shell wait` ordered after it finds the hub. */
static void notify_ready(void)
{
	const char *p = getenv("NOTIFY_SOCKET");
	struct sockaddr_un a;
	size_t n;
	int fd;
	if (!p || (*p != '/' && *p != '@') || (n = strlen(p)) >= sizeof a.sun_path)
		return;
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	memcpy(a.sun_path, p, n);
	if (*p == '@')
		a.sun_path[0] = 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *)&a,
	                     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) != 7)
		hlog("unable to tell systemd we are ready (NOTIFY_SOCKET=%s): %s", p, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void hub_setup(struct opts *o)
{
	struct vs_addr a = { VS_ADDR_VSOCK, VS_CID_ANY, VS_PORT_DIAL, "" };
	struct vs_addr h = { VS_ADDR_UNIX, 0, 0, "" };
	struct rlimit rl;
	struct sigaction sa;
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	const char *ka = getenv("VSOCK_SHELL_KEEPALIVE");
	int i, fd;
	mode_t um;
	if (o->config)
		config_read(o);
	/* a thousand guests want a thousand descriptors and more */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	hub.pending_max = PENDING_ALL;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur / 4 < PENDING_ALL)
		hub.pending_max = (int)(rl.rlim_cur / 4);
	hub.ep = epoll_create1(EPOLL_CLOEXEC);
	if (hub.ep < 0)
		die_sys("unable to create an epoll instance");
	hub.spare = spare_new();
	hub.keydir = o->keydir;
	hub.keepalive = (ka && atoi(ka) > 0 ? atoi(ka) : 30) * 1000L;
	hub.next_ping = vs_now_ms() + hub.keepalive;
	if (o->group) {
		hub.gid = group_gid(o->group);
		hub.have_gid = 1;
	}
	for (i = 0; i < o->nnames; i++) {
		char name[64];
		uint32_t cid;
		const char *v = split_name(o, o->names[i], name, sizeof name, "--name");
		if (vs_cid_parse(v, &cid) < 0 || cid < 3 || cid == VS_CID_ANY)
			usage_error(o, "--name %s: a guest CID is a number from 3, not '%s'", name, v);
		if (guest_by_cid(cid))
			usage_error(o, "--name %s: CID %u is named twice", name, cid);
		guest_new(name, cid, -1);
	}
	hub.unixpaths = xmalloc(((size_t)o->nunix + 1) * sizeof *hub.unixpaths);
	hub.unixst = xmalloc(((size_t)o->nunix + 1) * sizeof *hub.unixst);
	hub.nunix = o->nunix;
	for (i = 0; i < o->nunix; i++) {
		char name[64];
		struct vs_addr u = { VS_ADDR_UNIX, 0, 0, "" };
		const char *path = split_name(o, o->unixes[i], name, sizeof name, "--unix");
		int j;
		for (j = 0; j < hub.nguests; j++)
			if (!strcmp(hub.guests[j]->name, name))
				usage_error(o, "--unix %s: the name %s is taken", o->unixes[i], name);
		if (strlen(path) >= sizeof u.path)
			usage_error(o, "--unix %s: path too long", name);
		strcpy(u.path, path);
		fd = listen_addr(&u);
		hub.unixpaths[i] = path;
		stat(path, &hub.unixst[i]);
		listen_fd(fd, K_LUNIX, i);
		guest_new(name, 0, i);
	}
	if (!o->serve_vsock || strcmp(o->serve_vsock, "off")) {
		if (o->serve_vsock && (vs_addr_parse(o->serve_vsock, &a) < 0 || a.kind != VS_ADDR_VSOCK))
			usage_error(o, "--vsock takes a vsock address (e.g. any:1023) or 'off', not '%s'", o->serve_vsock);
		listen_fd(listen_addr(&a), K_LVSOCK, -1);
	}
	if (strlen(o->hub) >= sizeof h.path)
		usage_error(o, "--hub: path too long: %s", o->hub);
	strcpy(h.path, o->hub);
	if (!strcmp(o->hub, VSH_HUB_DEFAULT))
		mkdir("/run/vsock-shell", 0755);
	um = umask(077); /* the socket is the guests' door: ours, and the group's below */
	fd = vs_listen(&h);
	umask(um);
	if (fd < 0)
		die("unable to listen on %s: %s", o->hub, vs_listen_why(errno));
	if (hub.have_gid && (chown(o->hub, (uid_t)-1, hub.gid) < 0 || chmod(o->hub, 0660) < 0))
		die_sys("unable to give %s to group %s", o->hub, o->group);
	hub.hubpath = o->hub;
	stat(o->hub, &hub.hubst);
	listen_fd(fd, K_LHUB, -1);
	if (pipe2(hub.sigfd, O_CLOEXEC | O_NONBLOCK) < 0)
		die_sys("unable to create a pipe");
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	for (i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, NULL);
	conn_new(hub.sigfd[0], K_SIG, 0);
	hlog("serving %s%s; %d Unix listener%s; clients on %s", o->serve_vsock ? o->serve_vsock : "vsock:any:1023",
	     o->serve_vsock && !strcmp(o->serve_vsock, "off") ? " (no vsock)" : "", o->nunix, o->nunix == 1 ? "" : "s",
	     o->hub);
	notify_ready();
}

/* Remove a socket we made, unless another process took the path since. */
static void unlink_ours(const char *path, const struct stat *st)
{
	struct stat now;
	if (path && lstat(path, &now) == 0 && now.st_ino == st->st_ino && now.st_dev == st->st_dev)
		unlink(path);
}

int hub_serve(struct opts *o)
{
	int i;
	hub_setup(o);
	for (;;) {
		struct epoll_event ev[64];
		int n = epoll_wait(hub.ep, ev, 64, TICK_MS);
		if (n < 0 && errno != EINTR)
			die_sys("unable to wait for events");
		for (i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;
			if (c->dead)
				continue;
			switch (c->kind) {
			case K_SIG: {
				char s;
				if (read(c->fd, &s, 1) == 1) {
					int j;
					hlog("stopping on signal %d", s);
					unlink_ours(hub.hubpath, &hub.hubst);
					for (j = 0; j < hub.nunix; j++)
						unlink_ours(hub.unixpaths[j], &hub.unixst[j]);
					return 0;
				}
				break;
			}
			case K_LVSOCK:
			case K_LUNIX:
				agent_accept(c);
				break;
			case K_LHUB:
				client_accept(c);
				break;
			case K_AGENT:
			case K_CTL:
			case K_REPORT:
				conn_read_frames(c, agent_conn_frame);
				break;
			case K_STANDBY:
				/* a standby says nothing until its session: this is its
				 * end (the agent went, or broke the protocol) */
				conn_close(c);
				break;
			case K_CLIENT:
				if (ev[i].events & EPOLLOUT)
					conn_flush(c);
				if (!c->dead && ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					client_read(c);
				break;
			}
		}
		tick();
		conns_reap();
	}
}
