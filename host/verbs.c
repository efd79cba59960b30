/* verbs.c - the hub's clients: a session through it (hub_open), ls,
 * wait, release and events, each one request on a connection of its own
 * (PROTOCOL.md section 10); and keygen. */
#include "vsh.h"
#include "transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define DIALBACK_MS vsh_timeout_ms()

static const char *ev_name[] = { "?", "connect", "disconnect", "release" };

static int hub_connect(struct opts *o)
{
	struct vs_addr a = { VS_ADDR_UNIX, 0, 0, "" };
	int fd;
	if (strlen(o->hub) >= sizeof a.path)
		die("hub socket path too long: %s", o->hub);
	strcpy(a.path, o->hub);
	fd = vs_connect(&a);
	if (fd < 0)
		die("unable to reach the hub at %s: %s (is 'vsock-shell serve' running? --hub or $VSOCK_SHELL_HUB "
		    "name its socket)", o->hub, strerror(errno));
	return fd;
}

static void hub_died(const struct vs_hdr *h, const uint8_t *p, int n)
{
	char t[512];
	uint32_t code;
	if (n < 0)
		die("the hub closed the connection%s", errno ? ": protocol error" : "");
	if (h->type == VS_ERROR) {
		vs_error_text(p, (size_t)n, VS_E_IO, &code, t, sizeof t);
		die("hub: %s", t);
	}
	die("protocol error: unexpected message type %u from the hub", h->type);
}

/* The magic and one request, in one write. */
static void hub_request(int fd, uint16_t type, const uint8_t *p, size_t n)
{
	uint8_t m[VS_MAGIC_LEN + VS_HDR], b[1024];
	struct iovec v[2] = { { m, sizeof m }, { (void *)p, n } };
	memcpy(m, VS_MAGIC, VS_MAGIC_LEN);
	vs_hdr_put(m + VS_MAGIC_LEN, type, (uint32_t)n);
	if (vs_writevall(fd, v, n ? 2 : 1) < 0) {
		/* refused before it read us: its ERROR may be waiting */
		struct vs_hdr h;
		int e = errno, k = vs_recv_by(fd, &h, b, sizeof b, vs_deadline(1000));
		if (k >= 0 && h.type == VS_ERROR)
			hub_died(&h, b, k);
		errno = e;
		die_sys("unable to send a request to the hub");
	}
}

static const char *target_of(struct opts *o)
{
	if (!o->have_target)
		usage_error(o, "which guest? (@NAME or @CID)");
	return o->target[0] == '@' ? o->target + 1 : o->target;
}

/* A session through the hub: the agent's connection, handshake done,
 * passed to us; its HELLO into ag->hi. */
int hub_open(struct opts *o, struct agent *ag, const char *op, const char *what)
{
	static uint8_t b[VS_HDR + VS_FRAME_MAX];
	uint32_t wait = o->wait_secs ? (uint32_t)o->wait_secs * 1000u : HUB_OPEN_WAIT_MS;
	long guard = (long)wait + DIALBACK_MS + 15000;
	struct vs_wr w = { b, 0, 4200, 0 };
	char whatc[200];
	struct msghdr m;
	struct iovec iov = { b, sizeof b };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct cmsghdr *ch;
	struct vs_hdr h;
	ssize_t r;
	int fd = hub_connect(o), sfd = -1;
	snprintf(whatc, sizeof whatc, "%s", what ? what : "");
	vs_wrstr(&w, o->at);
	vs_wrstr(&w, op);
	vs_wrstr(&w, whatc);
	vs_wr32(&w, wait);
	if (w.err)
		die("guest name too long: %s", o->at);
	hub_request(fd, VS_HUB_OPEN, b, w.n);
	/* the hub bounds its waits; ours only guards against a stuck hub */
	if (vs_wait_by(fd, POLLIN, vs_deadline(guard)) < 0)
		die("the hub did not answer within %ld s", guard / 1000);
	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cm.b;
	m.msg_controllen = sizeof cm.b;
	do
		r = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	for (ch = CMSG_FIRSTHDR(&m); ch; ch = CMSG_NXTHDR(&m, ch))
		if (ch->cmsg_level == SOL_SOCKET && ch->cmsg_type == SCM_RIGHTS)
			memcpy(&sfd, CMSG_DATA(ch), sizeof sfd);
	if (r < VS_HDR || vs_hdr_parse(b, (size_t)r, &h) != 1 || (size_t)r < VS_HDR + h.len) {
		errno = r < 0 ? errno : 0;
		hub_died(&h, b, -1);
	}
	if (h.type != VS_HUB_SESSION || sfd < 0)
		hub_died(&h, b + VS_HDR, (int)h.len);
	close(fd);
	if (vs_hello_decode(b + VS_HDR, h.len, &ag->hi) < 0)
		die("protocol error: a malformed HELLO from the hub");
	vinfo("session with @%s through the hub: %s", o->at, *ag->hi.software ? ag->hi.software : "?");
	return sfd;
}

struct gview {
	uint32_t up, cid, sessions, caps;
	uint64_t since;
	const char *name, *addr, *hostname, *kernel, *software, *machine_id, *boot_id, *auth;
};

static int guest_get(const uint8_t *p, size_t n, struct gview *v)
{
	struct vs_rd r = { p, n, 0 };
	v->up = vs_rd32(&r);
	v->cid = vs_rd32(&r);
	v->since = vs_rd64(&r);
	v->sessions = vs_rd32(&r);
	v->caps = vs_rd32(&r);
	v->name = vs_rdstr(&r);
	v->addr = vs_rdstr(&r);
	v->hostname = vs_rdstr(&r);
	v->kernel = vs_rdstr(&r);
	v->software = vs_rdstr(&r);
	v->machine_id = vs_rdstr(&r);
	v->boot_id = vs_rdstr(&r);
	v->auth = vs_rdstr(&r);
	return r.err ? -1 : 0;
}

/* A JSON string of what the hub relayed as it came: quotes and
 * backslashes escaped, and every character vs_shown refuses as \uXXXX
 * (so \u001b for ESC), a byte that is not UTF-8 as U+FFFD (JSON carries
 * text, not bytes).  A consumer gets the guest's words exactly; none of
 * them can act on a terminal the JSON is shown on. */
static void json_str(FILE *f, const char *k, const char *s, int comma)
{
	size_t n = strlen(s), len;
	fprintf(f, "\"%s\":\"", k);
	for (; n; s += len, n -= len) {
		uint32_t c = vs_utf8((const uint8_t *)s, n, &len);
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", (int)c);
		else if (c == VS_NOT_UTF8)
			fputs("\\ufffd", f);
		else if (!vs_shown(c))
			fprintf(f, "\\u%04x", (unsigned)c);
		else
			fwrite(s, 1, len, f);
	}
	fprintf(f, "\"%s", comma ? "," : "");
}

/* A text field for the table: escaped (vs_esc), "-" when empty. */
static const char *shown(const char *s, char *b, size_t cap)
{
	if (!*s)
		return "-";
	vs_esc(b, cap, s, strlen(s), 0);
	return b;
}

static void guest_print(const struct gview *v, int json, const char *event)
{
	char since[32] = "-", t[5][4 * 65 + 4];
	if (v->up && v->since) {
		time_t tt = (time_t)v->since;
		strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%S", localtime(&tt));
	}
	if (json) {
		fputc('{', stdout);
		if (event)
			json_str(stdout, "event", event, 1);
		json_str(stdout, "name", v->name, 1);
		json_str(stdout, "addr", v->addr, 1);
		printf("\"cid\":%u,", v->cid);
		json_str(stdout, "state", v->up ? "up" : "down", 1);
		if (v->up)
			printf("\"since\":%llu,", (unsigned long long)v->since);
		json_str(stdout, "hostname", v->hostname, 1);
		json_str(stdout, "kernel", v->kernel, 1);
		json_str(stdout, "agent", v->software, 1);
		json_str(stdout, "machine_id", v->machine_id, 1);
		json_str(stdout, "boot_id", v->boot_id, 1);
		json_str(stdout, "auth", v->auth, 1);
		printf("\"sessions\":%u}", v->sessions);
		return;
	}
	if (event)
		printf("%-10s ", event);
	printf("%-16s %-24s %-5s %-19s %-20s %-20s %-18s %u\n", shown(v->name, t[0], sizeof t[0]),
	       shown(v->addr, t[1], sizeof t[1]), v->up ? "up" : "down", since, shown(v->hostname, t[2], sizeof t[2]),
	       shown(v->kernel, t[3], sizeof t[3]), shown(v->software, t[4], sizeof t[4]), v->sessions);
}

int hub_ls(struct opts *o)
{
	static uint8_t b[VS_FRAME_MAX];
	int fd = hub_connect(o), first = 1;
	hub_request(fd, VS_HUB_LS, NULL, 0);
	if (o->json)
		fputc('[', stdout);
	else
		printf("%-16s %-24s %-5s %-19s %-20s %-20s %-18s %s\n", "NAME", "ADDR", "STATE", "SINCE", "HOSTNAME", "KERNEL",
		       "AGENT", "SESSIONS");
	for (;;) {
		struct vs_hdr h;
		struct gview v;
		int n = vs_recv_by(fd, &h, b, sizeof b, vs_deadline(30000));
		if (n < 0 || (h.type != VS_HUB_GUEST && h.type != VS_DONE))
			hub_died(&h, b, n);
		if (h.type == VS_DONE)
			break;
		if (guest_get(b, (size_t)n, &v) < 0)
			die("protocol error: a malformed guest record from the hub");
		if (o->json && !first)
			fputc(',', stdout);
		guest_print(&v, o->json, NULL);
		first = 0;
	}
	if (o->json)
		printf("]\n");
	close(fd);
	return fflush(stdout) == 0 ? 0 : EX_CONN;
}

/* 0 once connected; 1 when -w ran out. */
int hub_wait(struct opts *o)
{
	uint8_t b[4200];
	struct vs_wr w = { b, 0, sizeof b, 0 };
	struct vs_hdr h;
	int fd = hub_connect(o), n;
	vs_wrstr(&w, target_of(o));
	vs_wr32(&w, o->wait_secs ? (uint32_t)o->wait_secs * 1000u : 0xffffffffu);
	if (w.err)
		die("guest name too long");
	hub_request(fd, VS_HUB_WAIT, b, w.n);
	n = vs_recv(fd, &h, b, sizeof b);
	if (n >= 0 && h.type == VS_OK)
		return 0;
	if (n >= 4 && h.type == VS_ERROR && vs_get32(b) == VS_E_TIMEOUT) {
		if (!o->quiet)
			warnx("@%s is not connected after %d s", target_of(o), o->wait_secs);
		return 1;
	}
	hub_died(&h, b, n);
	return EX_CONN;
}

/* 0 once released; 1 when it was not connected. */
int hub_release(struct opts *o)
{
	uint8_t b[4200];
	struct vs_wr w = { b, 0, sizeof b, 0 };
	struct vs_hdr h;
	int fd = hub_connect(o), n;
	vs_wrstr(&w, target_of(o));
	if (w.err)
		die("guest name too long");
	hub_request(fd, VS_HUB_RELEASE, b, w.n);
	n = vs_recv(fd, &h, b, sizeof b);
	if (n >= 0 && h.type == VS_OK)
		return 0;
	if (n >= 4 && h.type == VS_ERROR && vs_get32(b) == VS_E_NOENT) {
		char t[300];
		uint32_t code;
		vs_error_text(b, (size_t)n, VS_E_IO, &code, t, sizeof t);
		warnx("hub: %s", t);
		return 1;
	}
	hub_died(&h, b, n);
	return EX_CONN;
}

int hub_events(struct opts *o)
{
	static uint8_t b[VS_FRAME_MAX];
	int fd = hub_connect(o);
	hub_request(fd, VS_HUB_EVENTS, NULL, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		struct vs_hdr h;
		struct gview v;
		int n = vs_recv(fd, &h, b, sizeof b);
		uint32_t kind;
		if (n < 0 && errno == 0) {
			warnx("the hub stopped");
			return EX_CONN;
		}
		if (n < 12 || h.type != VS_HUB_EVENT)
			hub_died(&h, b, n);
		kind = vs_get32(b);
		if (guest_get(b + 12, (size_t)n - 12, &v) < 0)
			die("protocol error: a malformed event from the hub");
		guest_print(&v, o->json, ev_name[kind <= EV_RELEASE ? kind : 0]);
		if (o->json)
			fputc('\n', stdout);
		if (ferror(stdout))
			return 128 + SIGPIPE;
	}
}

static int getrandom_all(uint8_t *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = getrandom(b + got, n - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* A new key: 32 random bytes as 64 hex digits and a newline, mode 0600,
 * never over an existing file. */
int keygen(struct opts *o)
{
	uint8_t k[32];
	char hex[66];
	int fd;
	if (!o->have_target)
		usage_error(o, "which file? (vsock-shell keygen FILE)");
	if (getrandom_all(k, sizeof k) < 0)
		die_sys("unable to get random bytes");
	xf_hex(k, sizeof k, hex);
	hex[64] = '\n';
	fd = open(o->target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		die_sys("unable to create %s", o->target);
	if (vs_writeall(fd, hex, 65) < 0 || fsync(fd) < 0 || close(fd) < 0)
		die_sys("unable to write %s", o->target);
	memset(k, 0, sizeof k);
	return 0;
}
