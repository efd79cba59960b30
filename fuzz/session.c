/*
 * session - the agent's frame loop in an exec session (agent.c:
 * sess_frames over its channel's input, with vs_chan_room's compaction,
 * chan.h), which runs on every byte a host sends once a command is
 * running.
 *
 * Input: byte 0 picks the terminal (bit 0: the session is on a pty),
 * bytes 1..8 seed a schedule of how much arrives per read and how much of
 * a STDIN chunk the command takes per write, the rest is what the host
 * sends.  The loop is sess_run's, without the poll: the bytes are read
 * into the input as room allows, sess_frames runs, the queued frames (PONGs)
 * are taken, the command takes some of its stdin, and again, until the
 * agent aborts or everything is done.  The session's command is a child
 * of ours in a session of its own that ignores every signal it can
 * (started once, again only when a SIGNAL frame killed it, and killed by
 * pid when the fuzzer exits or dies); SIGNAL frames may reach its group
 * and nothing else (fuzz/agent.h checks every kill before it is sent).
 *
 * The part of the input past what was received is poisoned for
 * AddressSanitizer, so a read past the received bytes is a crash even
 * inside the static buffer.  The result is compared with a
 * model of the stream (PROTOCOL.md 6.3): a malformed header must end in
 * sess_abort with an ERROR (PROTO) on the socket, a complete frame of an
 * unexpected type with an ERROR (UNKNOWN; ACK is expected), nothing else may end the
 * session; the command's stdin is the STDIN payloads in order up to
 * STDIN_EOF, PONGs echo the PINGs' first 8 bytes in order, and a valid
 * SIGNAL reaches the command's group, in order (a prefix of each when the
 * session was aborted).
 */
#include "agent.h"

#include <sanitizer/asan_interface.h>

#define LOG_MAX 8192

static int sv[2] = { -1, -1 };   /* sv[0] the agent's socket, sv[1] the host's end */
static int master = -1;          /* a pty for the command's terminal, or -1 */
static char slave_name[64];
static pid_t child;

/* The harmless command: a session leader on the pty, deaf to every
 * signal it can be deaf to, gone with us. */
static void child_spawn(void)
{
	pid_t parent = getpid();
	sigset_t all, old;
	int s;
	/* blocked until the child ignores them: a SIGNAL frame of the next
	 * moment must not find libFuzzer's handlers in it */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	child = fork();
	CHECK(child >= 0);
	if (child > 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		fuzz_pgrp = child;
		return;
	}
	for (s = 1; s < NSIG; s++)
		signal(s, SIG_IGN); /* and what is pending is dropped */
	sigprocmask(SIG_SETMASK, &old, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	setsid();
	if (master >= 0) {
		int t = open(slave_name, O_RDWR);
		if (t >= 0)
			ioctl(t, TIOCSCTTY, 0);
	}
	for (;;) {
		sleep(1);
		if (getppid() != parent)
			_exit(0);
	}
}

static void child_kill(void)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	child = 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	signal(SIGPIPE, SIG_IGN);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	vs_nonblock(sv[1], 1);
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master >= 0 && (grantpt(master) < 0 || unlockpt(master) < 0 || !ptsname(master))) {
		close(master);
		master = -1;
	}
	if (master >= 0)
		snprintf(slave_name, sizeof slave_name, "%s", ptsname(master));
	opt_verbose = 1; /* sess_abort says why in the log */
	child_spawn();
	atexit(child_kill);
	return 0;
}

/* the input is 9 bytes of options, then frames (fuzz.h) */
FUZZ_FRAMES_HOOKS(9)

static uint64_t sched;
static size_t next(size_t n) /* 1..n, now and then all of it */
{
	fuzz_rnd64(&sched);
	if (n <= 1 || sched % 4 == 0)
		return n;
	return 1 + (size_t)((sched >> 2) % n);
}

/* What the stream means, frame by frame, as PROTOCOL.md has it. */
struct want {
	int abort;                   /* 0, VS_E_PROTO or VS_E_UNKNOWN */
	uint8_t in[LOG_MAX];         /* the command's stdin */
	size_t nin;
	int eof;
	uint8_t pong[LOG_MAX];       /* PONG payloads, one after another */
	size_t npong;
	int sigs[64], nsig;
};

static void model(const uint8_t *p, size_t n, struct want *w)
{
	size_t pos = 0;
	w->abort = w->eof = w->nsig = 0;
	w->nin = w->npong = 0;
	while (n - pos >= VS_HDR) {
		uint32_t len = vs_get32(p + pos);
		uint16_t type = vs_get16(p + pos + 4), flags = vs_get16(p + pos + 6);
		const uint8_t *q = p + pos + VS_HDR;
		if (len > VS_FRAME_MAX || flags || !type) {
			w->abort = VS_E_PROTO;
			return;
		}
		if (n - pos - VS_HDR < len)
			return; /* the rest has not arrived */
		switch (type) {
		case VS_STDIN:
			if (!w->eof) {
				CHECK(w->nin + len <= sizeof w->in);
				memcpy(w->in + w->nin, q, len);
				w->nin += len;
			}
			break;
		case VS_STDIN_EOF:
			w->eof = 1;
			break;
		case VS_SIGNAL:
			if (len == 4 && vs_get32(q) > 0 && vs_get32(q) < NSIG && w->nsig < 64)
				w->sigs[w->nsig++] = (int)vs_get32(q);
			break;
		case VS_WINSIZE:
		case VS_ACK: /* what the host holds of a kept stream (6.10) */
			break;
		case VS_PING:
			CHECK(w->npong + 8 <= sizeof w->pong);
			memcpy(w->pong + w->npong, q, len < 8 ? len : 8);
			w->npong += len < 8 ? len : 8;
			break;
		default:
			w->abort = VS_E_UNKNOWN;
			return;
		}
		pos += VS_HDR + len;
	}
}

static struct want want;
static uint8_t got_in[LOG_MAX], got_pong[LOG_MAX];
static size_t ngot_in, ngot_pong;

/* Take what the agent queued for the host: only PONGs, here. */
static void take_queue(struct vs_chan *c)
{
	size_t off = c->ooff;
	while (off < c->olen) {
		struct vs_hdr h;
		const uint8_t *q;
		CHECK(fuzz_frame_at(c->out, c->olen, &off, &h, &q) == 1);
		CHECK(h.type == VS_PONG && h.len <= 8 && ngot_pong + h.len <= sizeof got_pong);
		memcpy(got_pong + ngot_pong, q, h.len);
		ngot_pong += h.len;
	}
	c->ooff = c->olen = 0;
}

/* What the agent wrote on its socket: nothing, or one ERROR. */
static int take_error(void)
{
	static uint8_t b[4096];
	size_t k = fuzz_drain(sv[1], b, sizeof b); /* non-blocking: what is there */
	struct vs_hdr h;
	if (k == 0)
		return 0;
	CHECK(vs_hdr_parse(b, k, &h) == 1 && h.type == VS_ERROR && k == VS_HDR + h.len && h.len >= 4);
	return (int)vs_get32(b + VS_HDR);
}

/* The input past what was received stays poisoned: all of it at first,
 * then only what changes (poisoning 128 KiB each round would cost more
 * than the rest of the round). */
static size_t unpoisoned = sizeof sess_in; /* sess_in[0..unpoisoned) is readable */

static void rbuf_poison_to(size_t n)
{
	if (n < unpoisoned)
		ASAN_POISON_MEMORY_REGION(sess_in + n, unpoisoned - n);
	else if (n > unpoisoned)
		ASAN_UNPOISON_MEMORY_REGION(sess_in + unpoisoned, n - unpoisoned);
	unpoisoned = n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sess s;
	struct vs_chan *c = &s.ch;
	const uint8_t *p;
	size_t n, pos = 0, rounds = 0;
	int pty, ended = 0, st;

	if (size < 9)
		return 0;
	pty = data[0] & 1 && master >= 0;
	sched = fuzz_seed64(data + 1);
	p = data + 9;
	n = size - 9;
	model(p, n, &want);

	/* a SIGNAL frame may have killed the command: a new one */
	if (waitpid(child, &st, WNOHANG) == child) {
		child = 0;
		child_spawn();
	}
	memset(&s, 0, sizeof s);
	vs_chan_init(c, sv[0], sess_in, sizeof sess_in, sess_out, sizeof sess_out);
	s.pid = child;
	s.out_r = s.err_r = s.pty_slave = -1;
	s.pty = pty ? dup(master) : -1;
	s.in_w = pty ? s.pty : 1000; /* never written: the command's stdin is modelled */
	fuzz_nsig = 0;
	ngot_in = ngot_pong = 0;

	rbuf_poison_to(0);
	for (;;) {
		size_t room, k, before_off = c->ioff, before_len = c->ilen, before_sin = c->npend;
		CHECK(++rounds < 100000); /* a stall is a hang in sess_run */
		room = vs_chan_room(c);
		rbuf_poison_to(c->ilen);
		CHECK(c->ioff <= c->ilen && c->ilen <= c->icap && room == c->icap - c->ilen);
		k = n - pos < room ? n - pos : room;
		if (k) {
			k = next(k);
			rbuf_poison_to(c->ilen + k);
			memcpy(c->in + c->ilen, p + pos, k);
			c->ilen += k, pos += k;
		}
		FUZZ_CALL(ended, sess_frames(&s));
		if (ended)
			break;
		rbuf_poison_to(c->ilen); /* a frame cut out of the middle */
		CHECK(c->ioff <= c->ilen && c->ilen <= c->icap);
		take_queue(c);
		/* the command reads some of its stdin */
		if (c->npend) {
			size_t t = next(c->npend);
			CHECK(ngot_in + t <= sizeof got_in);
			memcpy(got_in + ngot_in, c->pend, t);
			ngot_in += t;
			c->pend += t;
			c->npend -= t;
		}
		if (s.sin_eof == 1 && !c->npend) {
			s.sin_eof = 2; /* sess_run: stdin_eof, the pipe closed */
			if (!pty)
				s.in_w = -1;
		}
		if (pos == n && !c->npend && !before_sin && c->ioff == before_off && c->ilen == before_len)
			break; /* nothing more will happen */
	}
	take_queue(c);

	if (ended) {
		/* sess_abort: an ERROR first, then the end; and only for what
		 * the model calls malformed or unexpected */
		int code = take_error();
		CHECK(fuzz_status == 0 && want.abort && code == want.abort);
		CHECK(strstr(fuzz_log, want.abort == VS_E_PROTO ? "malformed frame" : "unexpected message"));
		CHECK(ngot_in <= want.nin && !memcmp(got_in, want.in, ngot_in));
		CHECK(ngot_pong <= want.npong && !memcmp(got_pong, want.pong, ngot_pong));
		CHECK(fuzz_nsig <= want.nsig && !memcmp(fuzz_sigs, want.sigs, (size_t)fuzz_nsig * sizeof(int)));
	} else {
		if (s.pty >= 0)
			close(s.pty); /* sess_abort closes it itself */
		CHECK(!want.abort && take_error() == 0);
		CHECK(ngot_in == want.nin && !memcmp(got_in, want.in, ngot_in));
		CHECK(s.sin_eof == 2 * want.eof);
		CHECK(ngot_pong == want.npong && !memcmp(got_pong, want.pong, ngot_pong));
		CHECK(fuzz_nsig == want.nsig && !memcmp(fuzz_sigs, want.sigs, (size_t)fuzz_nsig * sizeof(int)));
	}
	return 0;
}
