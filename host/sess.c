/* sess.c - an agent's sessions seen from the host: ps lists them, kill
 * signals one (PROTOCOL.md 6.9).  Each is one session connection like a
 * command's (a TARGET, --listen, or @NAME through the hub), and one
 * request on it. */
#include "vsh.h"
#include "transfer.h" /* xf_hex */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Signals by name (with or without SIG) or number, as kill(1) takes them.
 * The number travels: both ends are Linux. */
static const struct {
	const char *name;
	int sig;
} signames[] = {
	{ "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 },
	{ "USR2", SIGUSR2 }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CONT", SIGCONT },
	{ "STOP", SIGSTOP }, { "TSTP", SIGTSTP }, { "WINCH", SIGWINCH },
};

/* The signal s names, or -1. */
int signal_parse(const char *s)
{
	char *end;
	long v;
	size_t i;
	if (!strncmp(s, "SIG", 3))
		s += 3;
	for (i = 0; i < sizeof signames / sizeof *signames; i++)
		if (!strcmp(s, signames[i].name))
			return signames[i].sig;
	v = strtol(s, &end, 10);
	return *s && !*end && v > 0 && v < 65 ? (int)v : -1;
}

/* A session id as ps shows it (16 hex digits) into VS_SESSION_ID bytes;
 * -1 when it is not one. */
int id_parse(const char *s, uint8_t *id)
{
	size_t i;
	if (strlen(s) != 2 * VS_SESSION_ID)
		return -1;
	for (i = 0; i < 2 * VS_SESSION_ID; i++) {
		const char *x = strchr("0123456789abcdef", s[i] | 0x20);
		if (!x || !s[i])
			return -1;
		id[i / 2] = (uint8_t)(id[i / 2] << 4 | (x - "0123456789abcdef"));
	}
	return 0;
}

/* The session connection, and the agent's promise to answer. */
static int sessions_open(struct opts *o, struct agent *ag, const char *op, const char *what)
{
	int fd;
	if (!o->have_target && !o->listen)
		usage_error(o, "no TARGET given");
	if (o->at && strchr(o->at, ','))
		usage_error(o, "%s asks one guest: give one @NAME", op);
	fd = agent_session(o, ag, op, what);
	agent_require(ag, VS_CAP_SESSIONS, "its sessions to ps and kill (an older agent, or --deny exec,shell)");
	return fd;
}

/* The agent's one answer: its length, the payload in b. */
static int answer(int fd, struct vs_hdr *h, uint8_t *b, size_t cap)
{
	int n = vs_recv_by(fd, h, b, cap, vs_deadline(vsh_timeout_ms()));
	if (n < 0 && errno == ETIMEDOUT)
		die("the agent did not answer in time");
	if (n < 0 && errno == 0)
		die("connection to the agent lost before its answer");
	if (n < 0)
		die_sys("connection to the agent failed");
	return n;
}

struct sinfo {
	char id[2 * VS_SESSION_ID + 1];
	uint32_t pid, flags;
	uint64_t start;
	const char *who, *what;
	uint32_t state, status, kept; /* VS_SS_* of the agent, its wait status, bytes kept */
};

/* The state as ps shows it: running, detached, or how it ended, as
 * vsock-shell's own exit status would say it. */
static const char *state_show(const struct sinfo *s, char *b, size_t cap)
{
	unsigned st = s->status;
	if (!(s->state & VS_SS_EXITED))
		return s->state & VS_SS_ALONE ? "detached" : "running";
	if ((st & 0x7f) == 0)
		snprintf(b, cap, "exit %u", (st >> 8) & 0xff);
	else
		snprintf(b, cap, "signal %u", st & 0x7f);
	return b;
}

/* One entry of SESSIONS (a u16 length, then the fields); fields beyond
 * those a later agent may add are skipped.  -1 when malformed. */
static int entry_get(struct vs_rd *r, struct sinfo *s)
{
	uint16_t len = vs_rd16(r);
	uint8_t id[VS_SESSION_ID];
	struct vs_rd e;
	if (r->err || len > r->n)
		return -1;
	e = (struct vs_rd){ r->p, len, 0 };
	r->p += len;
	r->n -= len;
	vs_put64(id, vs_rd64(&e));
	s->pid = vs_rd32(&e);
	s->start = vs_rd64(&e);
	s->flags = vs_rd32(&e);
	s->who = vs_rdstr(&e);
	s->what = vs_rdstr(&e);
	if (e.n) { /* an agent before 0.3 says none of these */
		s->state = vs_rd32(&e);
		s->status = vs_rd32(&e);
		s->kept = vs_rd32(&e);
	}
	xf_hex(id, sizeof id, s->id);
	return e.err ? -1 : 0;
}

static void ps_json(const struct sinfo *s, int n)
{
	int i;
	fputc('[', stdout);
	for (i = 0; i < n; i++) {
		fputs(i ? ",{" : "{", stdout);
		json_str(stdout, "id", s[i].id, strlen(s[i].id), 1);
		printf("\"pid\":%u,\"started\":%llu,\"pty\":%s,", s[i].pid, (unsigned long long)s[i].start,
		       s[i].flags & VS_EXEC_PTY ? "true" : "false");
		printf("\"state\":\"%s\",", s[i].state & VS_SS_EXITED ? "exited" : s[i].state & VS_SS_ALONE ? "detached" : "running");
		if (s[i].state & VS_SS_EXITED)
			printf("\"status\":%u,", (s[i].status & 0x7f) ? 128 + (s[i].status & 0x7f) : (s[i].status >> 8) & 0xff);
		else
			printf("\"status\":null,");
		printf("\"kept\":%u,", s[i].kept);
		json_str(stdout, "who", s[i].who, strlen(s[i].who), 1);
		json_str(stdout, "command", s[i].what, strlen(s[i].what), 0);
		fputc('}', stdout);
	}
	printf("]\n");
}

/* Columns as wide as their cells; the guest's texts escaped (vs_esc). */
static void ps_text(const struct sinfo *s, int n)
{
	static char who[256][4 * 64], what[4 * 128];
	char when[32], pid[16], st[32], kept[16];
	int i, wwho = 3;
	for (i = 0; i < n; i++) {
		vs_esc(who[i], sizeof who[i], s[i].who, strlen(s[i].who), 0);
		if ((int)strlen(who[i]) > wwho)
			wwho = (int)strlen(who[i]);
	}
	printf("%-16s %-7s %-19s %-3s %-9s %-7s %-*s %s\n", "ID", "PID", "STARTED", "TTY", "STATE", "KEPT", wwho, "WHO",
	       "COMMAND");
	for (i = 0; i < n; i++) {
		time_t t = (time_t)s[i].start;
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", localtime(&t));
		snprintf(pid, sizeof pid, "%u", s[i].pid);
		vs_esc(what, sizeof what, s[i].what, strlen(s[i].what), 0);
		snprintf(kept, sizeof kept, "%u", s[i].kept);
		printf("%-16s %-7s %-19s %-3s %-9s %-7s %-*s %s\n", s[i].id, pid, when, s[i].flags & VS_EXEC_PTY ? "pty" : "-",
		       state_show(&s[i], st, sizeof st), kept, wwho, who[i], what);
	}
}

/* ps: the agent's sessions, a line each (or a JSON array). */
int ps_main(struct opts *o)
{
	static uint8_t b[VS_FRAME_MAX];
	static struct sinfo s[256];
	struct agent ag = AGENT_INIT;
	struct vs_hdr h;
	struct vs_rd r;
	int fd = sessions_open(o, &ag, "ps", ""), n = 0, len;
	if (vs_send(fd, VS_SESSIONS, NULL, 0) < 0)
		die_sys("unable to send the request");
	len = answer(fd, &h, b, sizeof b);
	if (h.type == VS_ERROR)
		agent_error(b, (size_t)len);
	if (h.type != VS_SESSIONS)
		die("protocol error: message type %u in answer to SESSIONS", h.type);
	r = (struct vs_rd){ b, (size_t)len, 0 };
	while (r.n && n < (int)(sizeof s / sizeof *s))
		if (entry_get(&r, &s[n++]) < 0)
			die("protocol error: a malformed SESSIONS entry");
	close(fd);
	agent_close(&ag, 1);
	if (o->json)
		ps_json(s, n);
	else
		ps_text(s, n);
	return fflush(stdout) == 0 ? 0 : EX_CONN;
}

/* kill: a signal (-s, default TERM) to a session, which ends it on
 * purpose: at its end every process of it dies.  1 when the agent has
 * no such session, as kill(1) says for a process. */
int kill_main(struct opts *o)
{
	uint8_t req[VS_SESSION_ID + 4], b[600];
	char text[512];
	struct agent ag = AGENT_INIT;
	struct vs_hdr h;
	uint32_t code;
	int fd, n;
	if (!o->sess_id)
		usage_error(o, "no session id given (vsock-shell ps TARGET lists them)");
	memset(req, 0, sizeof req);
	if (id_parse(o->sess_id, req) < 0)
		usage_error(o, "'%s' is not a session id (16 hex digits, as ps shows them)", o->sess_id);
	vs_put32(req + VS_SESSION_ID, (uint32_t)(o->signal ? o->signal : SIGTERM));
	fd = sessions_open(o, &ag, "kill", o->sess_id);
	if (vs_send(fd, VS_KILL, req, sizeof req) < 0)
		die_sys("unable to send the request");
	n = answer(fd, &h, b, sizeof b);
	if (h.type == VS_ERROR && n >= 4 && vs_get32(b) == VS_E_NOENT) {
		vs_error_text(b, (size_t)n, 0, &code, text, sizeof text);
		warnx("agent: %s", text);
		agent_close(&ag, 0);
		return 1;
	}
	if (h.type == VS_ERROR)
		agent_error(b, (size_t)n);
	if (h.type != VS_OK)
		die("protocol error: message type %u in answer to KILL", h.type);
	close(fd);
	agent_close(&ag, 1);
	return 0;
}
