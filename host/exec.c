/* exec.c - one exec session: the request, then a poll loop that forwards
 * stdin, writes stdout/stderr, and ends with the remote exit status.
 * Bounded buffers on both directions: we read stdin only while the
 * socket can take it, and write output synchronously, so a slow local
 * reader slows the agent instead of growing our memory.  And a liveness
 * check, as ssh's ServerAliveInterval: a guest that reboots or freezes
 * under a session sends nothing more, and nothing resets a vsock
 * connection that nobody writes to. */
#include "vsh.h"
#include "chan.h"
#include "transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* room kept for WINSIZE, SIGNAL, STDIN_EOF, PING and ACK; a session
 * that outlives its connection keeps its ACKs until the agent
 * acknowledges them, which it does every 32 KiB of our stream */
#define CTL_RESERVE (conn.keep ? 81920 : 256)
#define KILL_GRACE_MS 2000 /* --timeout: how long the agent's EXIT may take */

/* A session that outlives its connection keeps the stdin it sent until
 * the agent acknowledges it, up to KEEP_MAX (stdin is read only while
 * there is room), and acknowledges the agent's stream every ACK_EVERY
 * bytes, and at its EXIT, which the agent keeps until then. */
#define KEEP_MAX (1u << 20)
#define ACK_EVERY 65536
/* Kept, stdin the agent has not acknowledged stays under STDIN_WINDOW:
 * our ACKs travel behind it, and the agent, whose output waits for them,
 * reads them only as fast as its command takes that stdin.  Ahead of an
 * ACK there is then at most this, the agent's input (two frames) and
 * what it has not acknowledged yet (32 KiB): well inside the room its
 * output has (1 MiB less 80 KiB) for a command, such as cat, whose
 * output is its input. */
#define STDIN_WINDOW 65536
#define ACK_IDLE_MS 200
#define RESUME_WAIT_S 60

static uint8_t conn_in[VS_CHAN_BUF], conn_out[KEEP_MAX];
static struct vs_chan conn; /* the connection to the agent */
static int sigfd[2] = { -1, -1 };

static struct {
	int asked;              /* we asked for it (VS_EXEC_DETACH) */
	int on;                 /* the agent said SESSION: it can be resumed */
	int over;               /* ended here on purpose, or detached: no hangup at exit */
	char hex[2 * VS_SESSION_ID + 1];
	uint8_t id[VS_SESSION_ID];
	uint64_t acked;         /* the last ACK we sent */
	const char *why;        /* resuming: why the connection was lost */
	struct opts *o;
	struct agent *ag;
} rs;

/* Liveness: after `every` ms without a byte from the agent we PING it;
 * once that PING has left our queue, `every` ms more without a byte and
 * the agent is gone.  Any byte is an answer: output, EXIT or the PONG.
 * The agent answers a PING even behind input its command has not read,
 * as long as the PING fits in its buffer (two frames): so the check
 * holds only while the session's input (STDIN frames) is less than one
 * frame in all.  Past that, a silent agent may be holding our input, and
 * our PING behind it, for a command that reads later: silence proves
 * nothing, and there is no check. */
#define ALIVE_INPUT_MAX (VS_HDR + VS_FRAME_MAX)
static struct {
	long every;     /* ms; 0: no check ($VSOCK_SHELL_ALIVE) */
	long last_rx;   /* when the agent last sent anything */
	long sent_at;   /* when our PING left the queue, or 0 */
	size_t ahead;   /* queued bytes up to the end of our PING */
	size_t input;   /* STDIN frames queued, headers included */
	int out;        /* a PING is out */
} alive;

static void alive_init(void)
{
	const char *e = getenv("VSOCK_SHELL_ALIVE");
	alive.every = e && *e ? atol(e) * 1000L : 15000L;
	if (alive.every < 0)
		alive.every = 0;
	alive.last_rx = now_ms();
}

/* poll's timeout: until the check next has something to do, or -1 */
static int alive_timeout(void)
{
	long at, now = now_ms();
	if (!alive.every || alive.input > ALIVE_INPUT_MAX || (alive.out && !alive.sent_at))
		return -1;
	at = (alive.out ? alive.sent_at : alive.last_rx) + alive.every;
	return at <= now ? 0 : (int)(at - now);
}

static void alive_heard(void)
{
	alive.last_rx = now_ms();
	alive.out = 0;
}

static void alive_wrote(size_t n)
{
	if (!alive.out || !alive.ahead)
		return;
	alive.ahead -= n < alive.ahead ? n : alive.ahead;
	if (!alive.ahead)
		alive.sent_at = now_ms();
}

/* poll timed out with nothing from the agent: PING it, or give up on it
 * when a PING went unanswered for as long again. */
static void lost(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void alive_expired(void)
{
	uint8_t b[8];
	long now = now_ms();
	if (alive.out) {
		lost("the agent has sent nothing for %ld s, nor answered a PING: connection lost (the guest rebooted, "
		     "stopped or froze?)",
		     (now - alive.last_rx) / 1000);
		return;
	}
	vs_put64(b, (uint64_t)now);
	if (vs_chan_put(&conn, VS_PING, b, 8) < 0) {
		alive.last_rx = now; /* no room: input is queued, try later */
		return;
	}
	alive.out = 1;
	alive.sent_at = 0;
	alive.ahead = conn.olen - conn.ooff;
}

static void on_signal(int sig)
{
	int e = errno;
	char c = (char)sig;
	if (write(sigfd[1], &c, 1) < 0) {
		/* full: a wakeup is pending anyway */
	}
	errno = e;
}

static void signals_catch(int pty)
{
	struct sigaction sa;
	int sigs[] = { SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGQUIT }, i;
	if (pipe2(sigfd, O_CLOEXEC | O_NONBLOCK) < 0)
		die_sys("unable to create a pipe");
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	/* SIGINT/SIGQUIT without a pty are forwarded (on_local_signal);
	 * SIGTERM/SIGHUP must leave the terminal as we found it */
	for (i = 0; i < (int)(sizeof sigs / sizeof *sigs); i++)
		if (pty || sigs[i] != SIGWINCH)
			sigaction(sigs[i], &sa, NULL);
}

static void send_winsize(void)
{
	uint16_t r, c, x = 0, y = 0;
	uint8_t b[8];
	if (tty_winsize(&r, &c, &x, &y) < 0)
		return;
	vs_put16(b, r);
	vs_put16(b + 2, c);
	vs_put16(b + 4, x);
	vs_put16(b + 6, y);
	vs_chan_put(&conn, VS_WINSIZE, b, 8);
}

extern char **environ;

/* LANG and LC_*, set and not empty, as Debian's ssh sends them (SendEnv
 * LANG LC_*): a guest's messages and sorting follow the operator's. */
static int locale_env(const char **out, int max)
{
	char **e;
	int n = 0;
	for (e = environ; *e && n < max; e++) {
		size_t k = strcspn(*e, "=");
		if ((*e)[k] != '=' || !(*e)[k + 1])
			continue;
		if ((k == 4 && !strncmp(*e, "LANG", 4)) ||
		    (k > 3 && !strncmp(*e, "LC_", 3) && strspn(*e + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == k - 3))
			out[n++] = *e;
	}
	return n;
}

/* EXEC: flags, size, argc, envc, cwd, argv, env (PROTOCOL.md). */
static size_t exec_encode(struct opts *o, int pty, uint8_t *b, size_t cap)
{
	struct vs_wr w = { b, 0, cap, 0 };
	uint16_t rows = 0, cols = 0;
	uint32_t flags = (pty ? VS_EXEC_PTY : 0) | (rs.asked ? VS_EXEC_DETACH : 0);
	const char *term = getenv("TERM");
	char termvar[128];
	const char *loc[32];
	int nloc = locale_env(loc, VS_ENV_MAX - o->nenv - pty < 32 ? VS_ENV_MAX - o->nenv - pty : 32);
	int i, envc = nloc + o->nenv + (pty ? 1 : 0), argc;
	if (pty)
		tty_winsize(&rows, &cols, NULL, NULL);
	if (!o->ncmd)
		flags |= VS_EXEC_LOGIN;
	else if (!o->argv_mode)
		flags |= VS_EXEC_SHELL;
	argc = !o->ncmd ? 0 : o->argv_mode ? o->ncmd : 1;
	if (argc > VS_ARG_MAX || envc > VS_ENV_MAX)
		die("too many arguments or environment variables (at most %d and %d)", VS_ARG_MAX, VS_ENV_MAX);
	vs_wr32(&w, flags);
	vs_wr16(&w, rows);
	vs_wr16(&w, cols);
	vs_wr16(&w, (uint16_t)argc);
	vs_wr16(&w, (uint16_t)envc);
	vs_wrstr(&w, o->cwd ? o->cwd : "");
	if (o->ncmd && !o->argv_mode) {
		/* as ssh does: the words joined by spaces, run by the shell */
		for (i = 0; i < o->ncmd; i++) {
			if (i)
				vs_wrmem(&w, " ", 1);
			vs_wrmem(&w, o->cmd[i], strlen(o->cmd[i]));
		}
		vs_wrmem(&w, "", 1);
	} else {
		for (i = 0; i < argc; i++)
			vs_wrstr(&w, o->cmd[i]);
	}
	for (i = 0; i < nloc; i++) /* first: -e overrides them */
		vs_wrstr(&w, loc[i]);
	if (pty) {
		snprintf(termvar, sizeof termvar, "TERM=%s", term && *term ? term : "vt100");
		vs_wrstr(&w, termvar);
	}
	for (i = 0; i < o->nenv; i++)
		vs_wrstr(&w, o->env[i]);
	if (w.err)
		die("command, environment and directory exceed the %d-byte request limit", VS_FRAME_MAX);
	return w.n;
}

/* ssh-style escapes, recognised only after a newline: ~. ends the
 * session, ~^Z suspends vsock-shell, ~? lists escapes, ~~ sends one ~.
 * What the terminal says by itself is not typing: busybox ash asks for
 * the cursor position after each prompt, and the answer (ESC [ row ; col
 * R) arrives as input; such reports leave the start of a line as it was.
 * Keys that send sequences (arrows, Alt-x) are typing, as in ssh. */
enum { SEQ_NONE, SEQ_ESC, SEQ_CSI, SEQ_STR, SEQ_STR_ESC };

struct esc {
	int ch;          /* escape character, -1 for none */
	int bol;         /* at beginning of line */
	int pending;     /* saw the escape char, waiting for the next */
	int seq;         /* inside an escape sequence: SEQ_* */
	int seq_bol;     /* bol as it was before the sequence */
	int suspend;     /* ~^Z: suspend once this input is queued */
	int detach;      /* ~&: detach once this input is queued */
};

/* The final bytes of the CSI sequences a terminal sends as answers:
 * cursor position (R), status (n), device attributes (c), window (t),
 * mode (y), terminal parameters (x), focus in and out (I, O). */
static const char csi_reports[] = "RnctyxIO";

/* One byte of an escape sequence.  1: it belongs to the sequence; 0: it
 * ended the sequence without belonging to it (a control character, which
 * is typed input of its own).  A report, and an OSC or DCS string (colour
 * and version answers), restore bol; anything else clears it. */
static int seq_step(struct esc *e, uint8_t c)
{
	switch (e->seq) {
	case SEQ_ESC:
		e->seq = c == '[' ? SEQ_CSI : c == ']' || c == 'P' || c == '_' ? SEQ_STR : SEQ_NONE;
		if (e->seq)
			return 1;
		e->bol = 0;
		return c >= 0x20; /* Alt-x, SS3's O */
	case SEQ_CSI:
		if (c >= 0x20 && c <= 0x3f)
			return 1; /* parameters and intermediates */
		e->seq = SEQ_NONE;
		e->bol = c >= 0x40 && c <= 0x7e && memchr(csi_reports, c, sizeof csi_reports - 1) ? e->seq_bol : 0;
		return c >= 0x40 && c <= 0x7e;
	case SEQ_STR:
		if (c == 27)
			e->seq = SEQ_STR_ESC;
		else if (c == 7)
			e->seq = SEQ_NONE, e->bol = e->seq_bol;
		else if (c < 0x20)
			return e->seq = SEQ_NONE, e->bol = 0, 0; /* no string: Enter ends it */
		return 1;
	default: /* SEQ_STR_ESC: ESC \ ends the string */
		if (c == '\\')
			return e->seq = SEQ_NONE, e->bol = e->seq_bol, 1;
		e->seq = SEQ_ESC;
		e->seq_bol = 0;
		return seq_step(e, c);
	}
}

/* The escape character as the user types it: ~, or ^] for a control one. */
static const char *esc_name(int ch)
{
	static char b[4];
	if (ch < 32)
		b[0] = '^', b[1] = (char)(ch + 64), b[2] = 0;
	else
		b[0] = (char)ch, b[1] = 0;
	return b;
}

static void escape_help(int ch)
{
	char help[500];
	const char *x = esc_name(ch);
	int m = snprintf(help, sizeof help,
	                 "\r\nSupported escape sequences:\r\n"
	                 " %s.  - terminate the session\r\n"
	                 " %s&  - detach: the session runs on (vsock-shell attach)\r\n"
	                 " %s^Z - suspend vsock-shell\r\n"
	                 " %s?  - this message\r\n"
	                 " %s%s  - send the escape character\r\n"
	                 "(Escapes are recognised only after a newline.)\r\n",
	                 x, x, x, x, x, x);
	vs_writeall(2, help, (size_t)m);
}

static size_t escape_filter(struct esc *e, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t i, k = 0;
	for (i = 0; i < n; i++) {
		uint8_t c = in[i];
		if (e->seq && seq_step(e, c)) {
			out[k++] = c;
			continue;
		}
		if (e->pending) {
			e->pending = 0;
			if (c == '.') {
				char bye[128];
				int m = snprintf(bye, sizeof bye, "\r\nvsock-shell: session closed by escape (%s.)\r\n",
				                 esc_name(e->ch));
				tty_restore();
				vs_writeall(2, bye, (size_t)m);
				exit(EX_CONN);
			}
			if (c == (uint8_t)e->ch) {
				out[k++] = c; /* ~~: one ~ */
				e->bol = 0;
				continue;
			}
			if (c == '?') {
				escape_help(e->ch);
				continue;
			}
			if (c == 'Z' - 64) {
				e->suspend = 1;
				continue;
			}
			if (c == '&') {
				e->detach = 1;
				continue;
			}
			out[k++] = (uint8_t)e->ch; /* not an escape: both go on */
			e->bol = 0;
		}
		if (e->bol && e->ch >= 0 && c == (uint8_t)e->ch) {
			e->pending = 1;
			continue;
		}
		out[k++] = c;
		if (c == 27)
			e->seq = SEQ_ESC, e->seq_bol = e->bol;
		else
			e->bol = c == '\r' || c == '\n';
	}
	return k;
}

/* ~^Z: give the terminal back and stop, as Ctrl-Z stops a local job;
 * continued (fg), take the terminal again and send the window's size,
 * which may have changed meanwhile.  The session goes on: its output
 * waits in the connection, and the command waits for it. */
static void suspend_self(int fd, int ch)
{
	char m[64];
	int n = snprintf(m, sizeof m, "%s^Z [suspend vsock-shell]\r\n", esc_name(ch));
	vs_writeall(2, m, (size_t)n);
	tty_restore();
	kill(getpid(), SIGTSTP);
	if (tty_raw(fd) < 0)
		die_sys("unable to take the terminal back");
	send_winsize();
}

static int exit_status(const uint8_t *p, size_t n)
{
	uint32_t how, v;
	if (n != 8)
		die("protocol error: EXIT of %zu bytes", n);
	how = vs_get32(p);
	v = vs_get32(p + 4);
	if (how == VS_EXITED && v <= 255)
		return (int)v;
	if (how == VS_SIGNALED && v > 0 && v < 128)
		return 128 + (int)v;
	die("protocol error: EXIT with status %u/%u", how, v);
}

static void out_write(int fd, const uint8_t *p, size_t n)
{
	if (vs_writeall(fd, p, n) < 0) {
		if (errno == EPIPE)
			exit(128 + SIGPIPE); /* as a shell pipeline's victim would */
		die_sys("unable to write to %s", fd == 1 ? "stdout" : "stderr");
	}
}

/* Handle complete frames from the agent.  Returns the exit status once
 * EXIT has arrived, else -1. */
static int frames(void)
{
	for (;;) {
		struct vs_hdr h;
		const uint8_t *p;
		int r = vs_chan_take(&conn, &h, &p);
		if (r < 0)
			die("protocol error: malformed frame header from the agent");
		if (r == 0)
			return -1;
		/* the agent's first frame is SESSION, or it keeps nothing */
		if (!rs.on && h.type != VS_SESSION)
			conn.keep = 0;
		switch (h.type) {
		case VS_STDOUT:
			out_write(1, p, h.len);
			break;
		case VS_STDERR:
			out_write(2, p, h.len);
			break;
		case VS_EXIT:
			return exit_status(p, h.len);
		case VS_ERROR:
			agent_error(p, h.len);
		case VS_PONG:
			break;
		case VS_SESSION:
			if (h.len >= VS_SESSION_ID && rs.asked) {
				memcpy(rs.id, p, VS_SESSION_ID);
				xf_hex(rs.id, VS_SESSION_ID, rs.hex);
				if (!rs.on)
					vinfo("session %s: it outlives its connection", rs.hex);
				rs.on = 1;
			}
			break;
		case VS_ACK:
			if (h.len == 8)
				vs_chan_ack(&conn, vs_get64(p));
			break;
		default:
			die("protocol error: unexpected message type %u from the agent", h.type);
		}
	}
}

/* -1 once the agent has closed the connection */
static int sock_read(void)
{
	ssize_t r = vs_chan_read(&conn);
	if (r > 0)
		alive_heard();
	if (r == 0)
		return -1;
	if (r < 0 && errno != EAGAIN && errno != EINTR)
		lost("connection to the agent failed: %s", strerror(errno));
	return 0;
}

/* Tell the agent how much of its stream we hold: every ACK_EVERY bytes,
 * or now (its EXIT, which it keeps until we have it). */
static void ack_send(int now)
{
	uint8_t b[8];
	uint64_t got;
	if (!rs.on)
		return;
	got = vs_chan_got(&conn, 0);
	if (!now && got - rs.acked < ACK_EVERY)
		return;
	vs_put64(b, got);
	if (vs_chan_put(&conn, VS_ACK, b, 8) == 0)
		rs.acked = got;
}

/* Read local stdin into a STDIN frame; EOF becomes STDIN_EOF.  Only a
 * terminal with escapes goes through the filter (and a copy); otherwise
 * stdin is read straight into the frame. */
static int stdin_read(int fd, struct esc *e)
{
	static uint8_t tmp[VS_FRAME_MAX];
	ssize_t r = e->ch < 0 ? read(fd, vs_chan_data(&conn), VS_FRAME_MAX) : read(fd, tmp, VS_FRAME_MAX - 1);
	size_t k;
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0) {
		vs_chan_put(&conn, VS_STDIN_EOF, NULL, 0);
		alive.input += VS_HDR;
		return -1;
	}
	/* the filter holds back a '~' or gives one back: at most one byte
	 * more than it read, hence the read of one less */
	k = e->ch < 0 ? (size_t)r : escape_filter(e, tmp, (size_t)r, vs_chan_data(&conn));
	if (k) {
		vs_chan_commit(&conn, VS_STDIN, k);
		alive.input += VS_HDR + k;
	}
	if (e->suspend) {
		e->suspend = 0;
		suspend_self(fd, e->ch);
	}
	return 0;
}

static void on_local_signal(int sig, int pty)
{
	static int interrupts;
	if (sig == SIGWINCH) {
		send_winsize();
		return;
	}
	if ((sig == SIGINT || sig == SIGQUIT) && !pty && ++interrupts < 3) {
		/* without a pty the terminal's Ctrl-C lands here: forward it to
		 * the remote command, as its own terminal would; the third one
		 * gives up on a command that ignores it */
		uint8_t b[4];
		vs_put32(b, (uint32_t)sig);
		vs_chan_put(&conn, VS_SIGNAL, b, 4);
		return;
	}
	tty_restore();
	signal(sig, SIG_DFL);
	raise(sig);
	exit(EX_CONN);
}

/* poll's timeout: the sooner of --timeout's deadline and the liveness
 * check's next step (none once the agent has stopped reading) */
static int poll_timeout(long deadline, int wdead)
{
	int d = vs_ms_left(deadline), a = wdead ? -1 : alive_timeout();
	/* and what we hold of the agent's stream, said after ACK_IDLE_MS of
	 * quiet: a client killed then has left little to send again */
	if (rs.on && rs.acked != vs_chan_got(&conn, 0) && (a < 0 || a > ACK_IDLE_MS))
		a = ACK_IDLE_MS;
	return d < 0 ? a : a < 0 || d < a ? d : a;
}

/* --timeout ran out: SIGKILL in a SIGNAL asks the agent to kill the
 * command's whole session, what it left in the background too (PROTOCOL.md
 * 6.3).  Stdin stops; the EXIT that follows says it is done.  Returns the
 * deadline for that EXIT: past it we close, which ends the session too. */
static long timeout_kill(int *in)
{
	uint8_t b[4];
	vs_put32(b, SIGKILL);
	vs_chan_put(&conn, VS_SIGNAL, b, 4); /* CTL_RESERVE keeps room for it */
	*in = -1;
	return vs_deadline(KILL_GRACE_MS);
}

static int timed_out(const struct opts *o)
{
	tty_restore();
	if (!o->quiet)
		warnx("the command ran out of its %d s (--timeout): its session was killed", o->timeout_secs);
	return EX_TIMEOUT;
}

/* ---- sessions that outlive their connection ---- */

/* ATTACH on a fresh connection fd: carry the session on there from byte
 * `have` of the agent's stream (VS_HAVE_ANY: where its last client
 * stopped).  The agent answers RESUME: how much of our stream it holds,
 * where its own goes on from, and the session's EXEC flags.  Dies (or,
 * while resuming, jumps back: vsh_catch) when it does not. */
static uint32_t attach_on(int fd, uint64_t have)
{
	uint8_t b[VS_FRAME_MAX];
	struct vs_hdr h;
	uint64_t got, from;
	int n;
	memcpy(b, rs.id, VS_SESSION_ID);
	vs_put64(b + VS_SESSION_ID, have);
	if (vs_send(fd, VS_ATTACH, b, VS_SESSION_ID + 8) < 0)
		die_sys("unable to send the request");
	n = vs_recv_by(fd, &h, b, sizeof b, vs_deadline(vsh_timeout_ms()));
	if (n < 0)
		die("connection to the agent lost before it answered ATTACH");
	if (h.type == VS_ERROR) {
		char text[512];
		uint32_t code = 0;
		vs_error_text(b, (size_t)n, 0, &code, text, sizeof text);
		/* no such session, or not for us: final; else (a session process
		 * stopped, say) the next attempt may do */
		if (!vsh_catch || code == VS_E_NOENT || code == VS_E_DENIED || code == VS_E_AUTH) {
			vsh_catch = NULL;
			if (rs.why)
				die("%s; session %s not resumed: agent: %s", rs.why, rs.hex, text);
			die("agent: %s", text);
		}
		die("agent: %s", text);
	}
	if (h.type != VS_RESUME || n < 20)
		die("protocol error: unexpected message type %u in answer to ATTACH", h.type);
	got = vs_get64(b);
	from = vs_get64(b + 8);
	if (have == VS_HAVE_ANY) /* a new client: our stream starts where the agent is */
		conn.kpos = got;
	if ((have != VS_HAVE_ANY && from != have) || vs_chan_rewind(&conn, fd, got) < 0)
		die("protocol error: the agent resumes at bytes %llu and %llu, which we do not have",
		    (unsigned long long)from, (unsigned long long)got);
	conn.rx = from;
	conn.ioff = conn.ilen = 0;
	rs.acked = from;
	rs.on = 1;
	vs_nonblock(fd, 1);
	return vs_get32(b + 16);
}

/* The connection broke under a session that outlives it: connect again
 * (directly, through the hub once the guest is back, or waiting for the
 * agent to dial) and ATTACH, until --resume-wait has passed; each attempt
 * as any session is made and authenticated.  Quiet without -v. */
static void resume(const char *why)
{
	static jmp_buf jb;
	struct opts *o = rs.o;
	int secs = o->resume_wait ? o->resume_wait : RESUME_WAIT_S;
	long deadline = vs_deadline(secs * 1000L);
	volatile long pause = 100;
	if (conn.fd >= 0)
		close(conn.fd);
	conn.fd = -1;
	vs_chan_got(&conn, 1); /* a frame cut short comes again */
	vinfo("%s; resuming session %s", why, rs.hex);
	rs.why = why;
	for (;;) {
		long left = deadline - vs_now_ms();
		if (left <= 0) {
			vsh_catch = NULL;
			die("%s; session %s was not resumed within %d s, and runs on: vsock-shell attach %s %s", why,
			    rs.hex, secs, o->at ? o->target : o->listen ? "--listen" : o->target, rs.hex);
		}
		if (setjmp(jb) == 0) {
			int fd;
			vsh_catch = &jb;
			o->wait_secs = (int)(left / 1000) + 1;
			fd = agent_session(o, rs.ag, "attach", rs.hex);
			attach_on(fd, vs_chan_got(&conn, 0));
			vsh_catch = NULL;
			vinfo("resumed session %s", rs.hex);
			rs.why = NULL;
			alive_init();
			return;
		}
		vsh_catch = NULL;
		/* listen mode: a control connection that is gone too (the agent
		 * dials a new one) is closed, to wait for the next; one that
		 * still stands is kept: closing it would release the agent */
		if (rs.ag->ctl >= 0) {
			struct pollfd c = { rs.ag->ctl, POLLRDHUP, 0 };
			if (poll(&c, 1, 0) > 0 && (c.revents & (POLLHUP | POLLERR | POLLRDHUP)))
				agent_close(rs.ag, 0);
		}
		poll(NULL, 0, (int)pause);
		pause = pause < 2000 ? pause * 2 : 2000;
	}
}

/* The connection is gone before the EXIT: resumed, when the session
 * outlives it; otherwise the end. */
static void lost(const char *fmt, ...)
{
	static char m[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	if (!rs.on)
		die("%s", m);
	resume(m);
}

/* Our exit ends the session, except when the connection broke (we are
 * killed: it runs on) or it is detached: a SIGHUP, as the agent gives a
 * session whose host went away, that the agent keeps nothing for. */
static void hangup(void)
{
	uint8_t b[4];
	long deadline = vs_deadline(1000);
	if (!rs.asked || rs.over || conn.fd < 0)
		return;
	vs_put32(b, SIGHUP);
	vs_chan_put(&conn, VS_SIGNAL, b, 4);
	while (conn.olen > conn.ooff && vs_wait_by(conn.fd, POLLOUT, deadline) == 0)
		if (vs_chan_flush(&conn) < 0 && errno != EAGAIN && errno != EINTR)
			break;
}

/* ~&, or --detach: the session runs on; how to come back to it. */
static int detached(const struct opts *o)
{
	rs.over = 1;
	tty_restore();
	if (o->detach) {
		printf("%s\n", rs.hex);
		return 0;
	}
	warnx("detached from session %s, which runs on: vsock-shell attach %s %s", rs.hex,
	      o->at ? o->target : o->listen ? "--listen" : o->target, rs.hex);
	return 0;
}

static int exec_loop(struct opts *o, int pty, int in, struct esc *e);

/* o->pty is decided by now (exec_main: -t, -T, or a terminal and no
 * command). */
int exec_run(int sock, struct opts *o, struct agent *ag)
{
	static uint8_t req[VS_FRAME_MAX];
	struct esc e = { -1, 1, 0, SEQ_NONE, 0, 0, 0 };
	int pty = o->pty > 0;
	int in = o->nostdin || o->detach ? -1 : 0;
	size_t n;
	agent_require(ag, pty ? VS_CAP_PTY : VS_CAP_EXEC, pty ? "sessions on a pty (shell)" : "commands without a pty (exec)");
	rs.o = o, rs.ag = ag;
	rs.asked = !o->no_detach && (ag->hi.caps & VS_CAP_RESUME);
	if (o->detach && !rs.asked)
		die("the agent keeps no session without its client (its --linger 0, or an agent before 0.3)");
	n = exec_encode(o, pty, req, sizeof req);
	if (vs_send(sock, VS_EXEC, req, n) < 0)
		die_sys("unable to send the request");
	vs_chan_init(&conn, sock, conn_in, sizeof conn_in, conn_out, rs.asked ? sizeof conn_out : VS_CHAN_BUF);
	conn.keep = rs.asked;
	atexit(hangup);
	if (in < 0)
		vs_chan_put(&conn, VS_STDIN_EOF, NULL, 0);
	else if (fcntl(in, F_GETFL) < 0)
		in = -1, vs_chan_put(&conn, VS_STDIN_EOF, NULL, 0);
	if (o->detach) {
		/* the SESSION frame comes first */
		struct vs_hdr h;
		const uint8_t *p;
		vs_chan_drain(&conn);
		while (!rs.on) {
			if (vs_chan_recv(&conn, &h, &p) < 0)
				die("connection to the agent lost before the session's id");
			if (h.type == VS_ERROR)
				agent_error(p, h.len);
			if (h.type == VS_SESSION && h.len >= VS_SESSION_ID) {
				memcpy(rs.id, p, VS_SESSION_ID);
				xf_hex(rs.id, VS_SESSION_ID, rs.hex);
				rs.on = 1;
			}
		}
		return detached(o);
	}
	if (pty && in >= 0 && isatty(in) && tty_raw(in) == 0)
		e.ch = o->escape;
	return exec_loop(o, pty, in, &e);
}

/* attach TARGET ID: the session carried on here from where its last
 * client stopped (a pty one on our terminal, when we have one), to its
 * end and status. */
int attach_main(struct opts *o)
{
	struct agent ag = AGENT_INIT;
	struct esc e = { -1, 1, 0, SEQ_NONE, 0, 0, 0 };
	int fd, pty, in = o->nostdin ? -1 : 0, rc;
	uint32_t flags;
	if (!o->have_target && !o->listen)
		usage_error(o, "no TARGET given");
	if (!o->sess_id || id_parse(o->sess_id, rs.id) < 0)
		usage_error(o, "attach takes the session's id, 16 hex digits as ps shows them");
	xf_hex(rs.id, VS_SESSION_ID, rs.hex);
	fd = agent_session(o, &ag, "attach", rs.hex);
	agent_require(&ag, VS_CAP_RESUME, "sessions that outlive their connection (its --linger 0, or an agent before 0.3)");
	rs.o = o, rs.ag = &ag;
	rs.asked = 1;
	vs_chan_init(&conn, fd, conn_in, sizeof conn_in, conn_out, sizeof conn_out);
	conn.keep = 1;
	flags = attach_on(fd, VS_HAVE_ANY);
	atexit(hangup);
	pty = (flags & VS_EXEC_PTY) && o->pty != 0 && in >= 0 && isatty(in);
	if (in >= 0 && fcntl(in, F_GETFL) < 0)
		in = -1;
	if (pty && tty_raw(in) == 0)
		e.ch = o->escape;
	rc = exec_loop(o, pty, in, &e);
	close(conn.fd);
	agent_close(&ag, rc == 0);
	return rc;
}

static int exec_loop(struct opts *o, int pty, int in, struct esc *e)
{
	int killed = 0;
	long deadline = o->timeout_secs ? vs_deadline(o->timeout_secs * 1000L) : VS_NEVER;
	signals_catch(pty);
	signal(SIGPIPE, SIG_IGN);
	vs_nonblock(conn.fd, 1);
	alive_init();
	for (;;) {
		struct pollfd p[3];
		int np = 2, status, r, wdead = !!(conn.st & VS_CH_DEAD);
		p[0] = (struct pollfd){ conn.fd, vs_chan_events(&conn), 0 };
		p[1] = (struct pollfd){ sigfd[0], POLLIN, 0 };
		if (in >= 0 && vs_chan_fits(&conn, VS_FRAME_MAX + CTL_RESERVE) &&
		    (!conn.keep || conn.olen - conn.koff < STDIN_WINDOW))
			p[np++] = (struct pollfd){ in, POLLIN, 0 };
		r = poll(p, (nfds_t)np, poll_timeout(deadline, wdead));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die_sys("unable to poll");
		}
		if (deadline != VS_NEVER && vs_now_ms() >= deadline) {
			if (killed)
				return timed_out(o);
			deadline = timeout_kill(&in);
			killed = 1;
			continue;
		}
		if (r == 0 && !wdead && alive_timeout() == 0) {
			alive_expired();
			continue;
		}
		if (r == 0)
			ack_send(1);
		if (p[1].revents) {
			char sigs[16];
			ssize_t k = read(sigfd[0], sigs, sizeof sigs), i;
			for (i = 0; i < k; i++)
				on_local_signal(sigs[i], pty);
		}
		if (p[0].revents & POLLOUT) {
			ssize_t w = vs_chan_flush(&conn);
			if (w > 0)
				alive_wrote((size_t)w);
			if (w < 0 && (conn.st & VS_CH_DEAD) && rs.on) {
				lost("connection to the agent failed: %s", strerror(errno));
				continue;
			} else if (w < 0 && (conn.st & VS_CH_DEAD)) {
				/* the agent stopped reading: the command has ended and
				 * its EXIT may be waiting for us to read; stop sending */
				in = -1;
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				lost("connection to the agent failed: %s", strerror(errno));
				continue;
			}
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (sock_read() < 0) {
				if (killed) /* closed instead of an EXIT: ended all the same */
					return timed_out(o);
				lost("connection to the agent lost before the exit status");
				continue;
			}
			status = frames();
			if (status >= 0) {
				/* the agent keeps the EXIT until we say we have it; then
				 * it closes, and so do we, with nothing left unread
				 * (which would reset the connection, our ACK with it) */
				ack_send(1);
				vs_chan_drain(&conn);
				if (rs.on) {
					shutdown(conn.fd, SHUT_WR);
					while (vs_wait_by(conn.fd, POLLIN, vs_deadline(1000)) == 0 &&
					       read(conn.fd, conn_in, sizeof conn_in) > 0)
						;
				}
				rs.over = 1;
				if (killed)
					return timed_out(o);
				tty_restore();
				return status;
			}
			ack_send(0);
		}
		if (np > 2 && p[2].revents && stdin_read(in, e) < 0)
			in = -1;
		if (e->detach) {
			e->detach = 0;
			if (rs.on)
				return detached(o);
			warnx("this session ends with its connection (--no-detach, or the agent's --linger 0): not detached");
		}
	}
}
