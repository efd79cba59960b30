/* verbs.c - the hub's clients: a session through it (hub_open), ls,
 * wait, release and events, each one request on a connection of its own
 * (PROTOCOL.md section 10); the guests a command names (hub_targets);
 * and keygen. */
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
#define HUB_NOTE_MS 2000 /* a hub still not there after this: say we wait for it */

static const char *ev_name[] = { "?", "connect", "disconnect", "release", "snapshot", "stage" };

/* The hub's socket, connected.  By the deadline (VS_NEVER: for ever) a
 * hub that is not there yet is waited for, with backoff: one started a
 * moment ago (`serve &`, a unit just started) has no socket yet, or does
 * not listen on it yet.  Without a deadline (0) the first failure is
 * final. */
static int hub_connect_by(struct opts *o, long deadline)
{
	struct vs_addr a = { VS_ADDR_UNIX, 0, 0, "" };
	long t0 = vs_now_ms();
	unsigned delay = 50;
	int said = 0;
	if (strlen(o->hub) >= sizeof a.path)
		die("hub socket path too long: %s", o->hub);
	strcpy(a.path, o->hub);
	for (;;) {
		int fd = vs_connect(&a), e = errno;
		long left = deadline == VS_NEVER ? (long)delay : deadline - vs_now_ms();
		if (fd >= 0)
			return fd;
		if ((e != ENOENT && e != ECONNREFUSED) || !deadline || left <= 0)
			die("unable to reach the hub at %s%s: %s (is 'vsock-shell serve' running? --hub or $VSOCK_SHELL_HUB "
			    "name its socket)", o->hub, deadline ? " in time" : "", strerror(e));
		if (!said && !o->quiet && vs_now_ms() - t0 >= HUB_NOTE_MS) {
			warnx("waiting for the hub at %s", o->hub);
			said = 1;
		}
		usleep((useconds_t)((long)delay < left ? (long)delay : left) * 1000);
		if (delay < 1000)
			delay *= 2;
	}
}

static int hub_connect(struct opts *o)
{
	return hub_connect_by(o, 0);
}

/* What is left of a deadline, for the hub to wait: at least 1 ms (0
 * would be its default), 0xffffffff for none. */
static uint32_t wait_left(long deadline)
{
	long left;
	if (deadline == VS_NEVER)
		return 0xffffffffu;
	left = deadline - vs_now_ms();
	return left < 1 ? 1 : left > 0xfffffffeL ? 0xfffffffeu : (uint32_t)left;
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

/* A session through the hub: the agent's connection, handshake done,
 * passed to us; its HELLO into ag->hi.  -w bounds the wait for the hub
 * and the guest together. */
int hub_open(struct opts *o, struct agent *ag, const char *op, const char *what)
{
	static uint8_t b[VS_HDR + VS_FRAME_MAX];
	long deadline = o->wait_secs ? vs_deadline(o->wait_secs * 1000L) : 0;
	int fd = hub_connect_by(o, deadline), sfd = -1;
	uint32_t wait = deadline ? wait_left(deadline) : HUB_OPEN_WAIT_MS;
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

/* ---- guests as the hub lists them ---- */

struct gview {
	uint32_t up, cid, sessions, caps, boot, stage;
	uint64_t since, uptime, stage_ms;
	const char *name, *addr, *hostname, *kernel, *software, *machine_id, *boot_id, *auth, *last_error, *stage_text;
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
	v->last_error = r.n ? vs_rdstr(&r) : ""; /* a hub before it had none */
	v->boot = 0xffffffffu, v->uptime = v->stage = v->stage_ms = 0, v->stage_text = "";
	if (r.n) { /* a hub before the stages had none */
		v->boot = vs_rd32(&r);
		v->uptime = vs_rd64(&r);
		v->stage = vs_rd32(&r);
		v->stage_ms = vs_rd64(&r);
		v->stage_text = vs_rdstr(&r);
	}
	return r.err ? -1 : 0;
}

/* How clients name the guest: @NAME, or @CID for an unnamed one. */
static const char *gview_target(const struct gview *v, char *b, size_t cap)
{
	if (*v->name)
		snprintf(b, cap, "@%s", v->name);
	else if (v->cid)
		snprintf(b, cap, "@%u", v->cid);
	else
		*b = 0;
	return b;
}

struct glist {
	struct gview *v;
	int n;
};

/* Every guest the hub lists, in its order (named ones naturally, then
 * the unnamed by CID).  The hub is waited for up to the deadline. */
static void hub_guests(struct opts *o, long deadline, struct glist *l)
{
	static uint8_t b[VS_FRAME_MAX];
	int fd = hub_connect_by(o, deadline);
	hub_request(fd, VS_HUB_LS, NULL, 0);
	memset(l, 0, sizeof *l);
	for (;;) {
		struct vs_hdr h;
		uint8_t *keep;
		int n = vs_recv_by(fd, &h, b, sizeof b, vs_deadline(30000));
		if (n < 0 || (h.type != VS_HUB_GUEST && h.type != VS_DONE))
			hub_died(&h, b, n);
		if (h.type == VS_DONE)
			break;
		l->v = realloc(l->v, ((size_t)l->n + 1) * sizeof *l->v);
		keep = xmalloc((size_t)n + 1);
		if (!l->v)
			die("unable to allocate the guest list");
		memcpy(keep, b, (size_t)n);
		if (guest_get(keep, (size_t)n, &l->v[l->n]) < 0)
			die("protocol error: a malformed guest record from the hub");
		l->n++;
	}
	close(fd);
}

/* A guest's name for a request (no '@'), kept. */
static void targets_add(struct targets *t, const char *s, size_t n)
{
	if (!n || n >= sizeof *t->name)
		die("a guest in the list is %s: '%.*s'", n ? "too long" : "empty (two commas?)", (int)n, s);
	t->name = realloc(t->name, ((size_t)t->n + 1) * sizeof *t->name);
	if (!t->name)
		die("unable to allocate the guest list");
	memcpy(t->name[t->n], s, n);
	t->name[t->n++][n] = 0;
}

/* One word of guests: @NAME or @CID, or several, comma separated
 * (@web1,@web2).  The '@' is needed where the word could be something
 * else (strict: a session's TARGET), else it may be left out. */
static void targets_word(struct opts *o, struct targets *t, const char *w, int strict)
{
	while (*w) {
		const char *e = strchr(w, ',');
		size_t n = e ? (size_t)(e - w) : strlen(w);
		if (*w == '@')
			w++, n--;
		else if (strict)
			usage_error(o, "'%.*s' in a list of guests: each is @NAME or @CID", (int)n, w);
		targets_add(t, w, n);
		w += n;
		if (*w == ',' && !*++w)
			usage_error(o, "a list of guests ends with a comma");
	}
}

/* The guests a command names: its words (TARGET, and for wait and
 * release the further words in o->paths), or with --all what the hub
 * lists: with up, only the guests connected now (a fan-out, release),
 * else every one (wait: the configured guests too). */
void hub_targets(struct opts *o, int up, long deadline, struct targets *t)
{
	int i;
	memset(t, 0, sizeof *t);
	if (o->all) {
		struct glist l;
		char tb[80];
		if (o->have_target)
			usage_error(o, "--all and a guest together");
		hub_guests(o, deadline, &l);
		for (i = 0; i < l.n; i++)
			if ((!up || l.v[i].up) && *gview_target(&l.v[i], tb, sizeof tb))
				targets_add(t, tb + 1, strlen(tb + 1));
		return;
	}
	if (!o->have_target)
		usage_error(o, "which guest? (@NAME or @CID, several, or --all)");
	targets_word(o, t, o->target, o->mode == M_EXEC);
	for (i = 0; i < o->npaths; i++)
		targets_word(o, t, o->paths[i], 0);
}

/* ---- ls and events: a table, or JSON ---- */

/* A JSON string of what the hub relayed as it came: quotes and
 * backslashes escaped, and every character vs_shown refuses as \uXXXX
 * (so \u001b for ESC), a byte that is not UTF-8 as U+FFFD (JSON carries
 * text, not bytes).  A consumer gets the guest's words exactly; none of
 * them can act on a terminal the JSON is shown on. */
void json_str(FILE *f, const char *k, const char *s, size_t n, int comma)
{
	size_t len;
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

static void json_text(const char *k, const char *s, int comma)
{
	json_str(stdout, k, s, strlen(s), comma);
}

/* One guest as a JSON object; for an event, its kind and time first. */
static void gview_json(const struct gview *v, const char *event, uint64_t t)
{
	char tb[80];
	fputc('{', stdout);
	if (event) {
		json_text("event", event, 1);
		printf("\"time\":%llu,", (unsigned long long)t);
	}
	json_text("target", gview_target(v, tb, sizeof tb), 1);
	json_text("name", v->name, 1);
	json_text("addr", v->addr, 1);
	printf("\"cid\":%u,", v->cid);
	json_text("state", v->up ? "up" : "down", 1);
	if (v->up)
		printf("\"since\":%llu,", (unsigned long long)v->since);
	json_text("hostname", v->hostname, 1);
	json_text("kernel", v->kernel, 1);
	json_text("agent", v->software, 1);
	json_text("machine_id", v->machine_id, 1);
	json_text("boot_id", v->boot_id, 1);
	json_text("auth", v->auth, 1);
	printf("\"sessions\":%u,", v->sessions);
	json_text("last_error", v->last_error, 1);
	/* where its agent runs, as it said when it connected: null when it
	 * did not say (an older agent, or none yet) */
	if (v->boot == 0xffffffffu)
		printf("\"initramfs\":null,\"init\":null,\"uptime_ms\":null,");
	else
		printf("\"initramfs\":%s,\"init\":%s,\"uptime_ms\":%llu,", v->boot & VS_BOOT_INITRAMFS ? "true" : "false",
		       v->boot & VS_BOOT_INIT ? "true" : "false", (unsigned long long)v->uptime);
	json_text("stage", stage_name(v->stage), 1);
	json_text("stage_text", v->stage_text, 1);
	printf("\"stage_uptime_ms\":%llu}", (unsigned long long)v->stage_ms);
}

/* The columns a text takes on a terminal.  It is escaped (vs_esc), so
 * what is left is printable UTF-8: a column a character, but two for an
 * East Asian wide one and none for a combining mark or a zero-width
 * character. */
static size_t text_cols(const char *s)
{
	size_t n = strlen(s), len, w = 0;
	for (; n; s += len, n -= len) {
		uint32_t c = vs_utf8((const uint8_t *)s, n, &len);
		if ((c >= 0x300 && c < 0x370) || (c >= 0x200b && c <= 0x200d) || c == 0xfeff)
			continue;
		w += (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf && c != 0x303f) ||
		             (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0xfe30 && c <= 0xfe4f) ||
		             (c >= 0xff00 && c <= 0xff60) || (c >= 0xffe0 && c <= 0xffe6) ||
		             (c >= 0x1f300 && c <= 0x1faff) || (c >= 0x20000 && c <= 0x3fffd)
		         ? 2
		         : 1;
	}
	return w;
}

#define NCOL 10
static const char *const col_head[NCOL] = { "NAME", "ADDR", "STATE", "SINCE", "HOSTNAME", "KERNEL", "AGENT",
	                                    "SESSIONS", "STAGE", "LAST ERROR" };

/* A guest's cells: its fields escaped (vs_esc), "-" for an empty one. */
static void gview_cells(const struct gview *v, char **cell)
{
	char since[32] = "", sessions[16];
	const char *f[NCOL];
	int i;
	if (v->up && v->since) {
		time_t tt = (time_t)v->since;
		strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%S", localtime(&tt));
	}
	snprintf(sessions, sizeof sessions, "%u", v->sessions);
	f[0] = v->name, f[1] = v->addr, f[2] = v->up ? "up" : "down", f[3] = since, f[4] = v->hostname;
	f[5] = v->kernel, f[6] = v->software, f[7] = sessions, f[8] = stage_name(v->stage), f[9] = v->last_error;
	for (i = 0; i < NCOL; i++) {
		size_t n = strlen(f[i]), cap = 4 * n + 4;
		cell[i] = xmalloc(cap);
		if (n)
			vs_esc(cell[i], cap, f[i], n, 0);
		else
			strcpy(cell[i], "-");
	}
}

/* A row, each cell padded to its column's width (w[i] columns), the
 * last one not. */
static void row_print(char *const *cell, const size_t *w)
{
	int i;
	for (i = 0; i < NCOL; i++) {
		size_t k = text_cols(cell[i]);
		fputs(cell[i], stdout);
		if (i < NCOL - 1)
			do /* at least one blank: a cell wider than its column pushes the rest */
				fputc(' ', stdout);
			while (++k <= w[i]);
	}
	fputc('\n', stdout);
}

/* ls: a column as wide as its widest cell, so that long Unix paths and
 * texts with blanks (an agent's "vsock-agent 0.2") keep the columns in
 * line; or a JSON array. */
int hub_ls(struct opts *o)
{
	struct glist l;
	size_t w[NCOL];
	char ***cells;
	int i, j;
	hub_guests(o, 0, &l);
	if (o->json) {
		fputc('[', stdout);
		for (i = 0; i < l.n; i++) {
			if (i)
				fputc(',', stdout);
			gview_json(&l.v[i], NULL, 0);
		}
		printf("]\n");
		return fflush(stdout) == 0 ? 0 : EX_CONN;
	}
	cells = xmalloc(((size_t)l.n + 1) * sizeof *cells);
	cells[0] = (char **)col_head;
	for (i = 0; i < l.n; i++) {
		cells[i + 1] = xmalloc(NCOL * sizeof **cells);
		gview_cells(&l.v[i], cells[i + 1]);
	}
	for (j = 0; j < NCOL; j++)
		for (w[j] = 0, i = 0; i <= l.n; i++)
			if (text_cols(cells[i][j]) > w[j])
				w[j] = text_cols(cells[i][j]);
	for (i = 0; i <= l.n; i++)
		row_print(cells[i], w);
	return fflush(stdout) == 0 ? 0 : EX_CONN;
}

/* events: a line as each comes (columns at least as wide as ls's usual
 * ones, wider when a cell needs it), or a JSON object per line; with
 * --snapshot every guest as it is first (event "snapshot"), then the
 * changes, with nothing lost between the two. */
int hub_events(struct opts *o)
{
	static const size_t w[NCOL] = { 16, 24, 5, 19, 20, 20, 18, 8, 11, 0 };
	static uint8_t b[VS_FRAME_MAX];
	uint8_t flags[4];
	int fd = hub_connect(o);
	vs_put32(flags, VS_HUB_EV_SNAPSHOT);
	hub_request(fd, VS_HUB_EVENTS, flags, o->snapshot ? 4 : 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		struct vs_hdr h;
		struct gview v;
		int n = vs_recv(fd, &h, b, sizeof b);
		uint32_t kind;
		uint64_t t;
		const char *ev;
		if (n < 0 && errno == 0) {
			warnx("the hub stopped");
			return EX_CONN;
		}
		if (n < 12 || h.type != VS_HUB_EVENT)
			hub_died(&h, b, n);
		kind = vs_get32(b);
		t = vs_get64(b + 4);
		ev = ev_name[kind <= EV_STAGE ? kind : 0];
		if (guest_get(b + 12, (size_t)n - 12, &v) < 0)
			die("protocol error: a malformed event from the hub");
		if (o->json) {
			gview_json(&v, ev, t);
			fputc('\n', stdout);
		} else {
			char when[32], *cell[NCOL];
			time_t tt = (time_t)t;
			strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", localtime(&tt));
			printf("%s %-10s ", when, ev);
			gview_cells(&v, cell);
			if (kind == EV_STAGE && *v.stage_text) {
				/* the stage's own words in place of the last error */
				size_t k = strlen(v.stage_text);
				free(cell[NCOL - 1]);
				cell[NCOL - 1] = xmalloc(4 * k + 4);
				vs_esc(cell[NCOL - 1], 4 * k + 4, v.stage_text, k, 0);
			}
			row_print(cell, w);
			for (n = 0; n < NCOL; n++)
				free(cell[n]);
		}
		if (ferror(stdout))
			return 128 + SIGPIPE;
	}
}

/* ---- wait and release ---- */

/* One guest: 0 once connected; 1 when the deadline passed (the hub says
 * why, with the guest's last error). */
static int wait_one(struct opts *o, const char *name, long deadline)
{
	uint8_t b[4200];
	struct vs_wr w = { b, 0, sizeof b, 0 };
	struct vs_hdr h;
	int fd = hub_connect_by(o, deadline), n;
	vs_wrstr(&w, name);
	vs_wr32(&w, wait_left(deadline));
	if (o->stage)
		vs_wrstr(&w, stage_name(o->stage));
	if (w.err)
		die("guest name too long");
	hub_request(fd, VS_HUB_WAIT, b, w.n);
	n = vs_recv(fd, &h, b, sizeof b);
	close(fd);
	if (n >= 0 && h.type == VS_OK)
		return 0;
	if (n >= 4 && h.type == VS_ERROR && (vs_get32(b) == VS_E_TIMEOUT || vs_get32(b) == VS_E_FAILED)) {
		char t[1100];
		uint32_t code;
		vs_error_text(b, (size_t)n, VS_E_IO, &code, t, sizeof t);
		if (!o->quiet)
			warnx("hub: %s", t);
		return code == VS_E_FAILED ? 2 : 1;
	}
	hub_died(&h, b, n);
	return EX_CONN;
}

/* 0 once every guest named is connected (with --stage: has reported
 * that stage); 1 when -w ran out first (each one missing is named); 2
 * when one reported a failure instead of the stage.  -w covers a hub that is still starting too;
 * without it, both are waited for as long as it takes. */
int hub_wait(struct opts *o)
{
	long deadline = o->wait_secs ? vs_deadline(o->wait_secs * 1000L) : VS_NEVER;
	struct targets t;
	int i, rc = 0;
	hub_targets(o, 0, deadline, &t);
	for (i = 0; i < t.n; i++) {
		int r = wait_one(o, t.name[i], deadline);
		rc = r > rc ? r : rc;
	}
	return rc;
}

/* One guest: 0 once released; 1 when it was not connected. */
static int release_one(struct opts *o, const char *name)
{
	uint8_t b[4200];
	struct vs_wr w = { b, 0, sizeof b, 0 };
	struct vs_hdr h;
	int fd = hub_connect(o), n;
	vs_wrstr(&w, name);
	if (w.err)
		die("guest name too long");
	hub_request(fd, VS_HUB_RELEASE, b, w.n);
	n = vs_recv(fd, &h, b, sizeof b);
	close(fd);
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

/* 0 once every guest named is released; 1 when one was not connected
 * (the others are released all the same).  --all: those connected now. */
int hub_release(struct opts *o)
{
	struct targets t;
	int i, rc = 0;
	hub_targets(o, 1, 0, &t);
	if (!t.n && !o->quiet)
		warnx("no guest is connected: nothing to release");
	for (i = 0; i < t.n; i++)
		rc |= release_one(o, t.name[i]);
	return rc;
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
