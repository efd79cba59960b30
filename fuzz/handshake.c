/*
 * handshake - the host's side of the handshake (host/conn.c: hs_begin,
 * hs_step, and hello_try, the blocking loop around them), which the
 * controller and the hub run on whatever a guest answers, before it has
 * proven anything.  host/conn.c is compiled into this target as it is;
 * only what the fuzz binary cannot have (die, the hub) is stubbed, and
 * vs_nonce gives a fixed nonce, so that a seed can carry the one right
 * MAC for it.
 *
 * Input: byte 0 is the host's configuration: bit 0 it holds a key, bits
 * 1-2 the key's length (16, 32, 64 or 200 bytes, the last one hashed
 * first by HMAC), bit 3 it asks for a standby dial-back (as the hub
 * does), bit 4 it dialed the agent (else it listened), bit 5 it sees the
 * guest's CID, 3 (a vsock connection), bit 6 without bit 5 it sees a Unix
 * socket's path (fuzz.h FUZZ_LINK), else neither (hs_begin with fd -1).
 * Bytes 1-2 (u16 little-endian) say where the re-runs below flip a bit.
 * The rest is the agent's answer, frames as on the wire.
 *
 * Each frame is fed to hs_step and the result compared with a model of
 * protocol 3 written here from PROTOCOL.md 3 and auth.h: a HELLO of
 * version 3 with well-formed fields (a nonce of 32 bytes, a CID of 4).
 * An agent that asks for no key is done, unless we hold one: the proof
 * must go both ways.  One that asks for the key needs us to hold one, a
 * nonce, and its HELLO must not name another guest than the one we see
 * (a CID each, or a path each, that differ); then we send AUTH with the
 * host's MAC over both HELLOs as they crossed the wire, and the agent's
 * AUTH must begin with the agent's MAC over both HELLOs, our MAC and what
 * follows its MAC.  The direction byte is ours: who dialed whom as we
 * know it.  The machine must never crash, must end HS_FAIL with a
 * message for anything else (the agent's words in it as sent: whoever
 * prints it escapes it, and that comes out printable), must send exactly our HELLO and
 * our MAC, and may reach HS_DONE through an AUTH only when its MAC is
 * right.
 *
 * A run that reaches HS_DONE through a right AUTH is run again with one
 * change elsewhere in the transcript at a time, and each must now fail:
 * a bit of the agent's HELLO flipped, our HELLO's flags changed, the
 * direction flipped, our nonce or our view of the guest changed, a bit of
 * what follows the agent's MAC flipped; and the agent's MAC made afresh,
 * with the key, for our HELLO with a bit flipped.  A proof is good for
 * one conversation only.
 *
 * Then the same bytes go through hello_try over a socketpair, which sees
 * no CID and no path and asks for no standby: it must agree with hs_step
 * run for that view.
 */
#include "fuzz.h"

#include <errno.h>
#include <sys/socket.h>

/* host/conn.c's nonce: fixed, so that a seed can prove itself; a re-run
 * changes it */
static const uint8_t host_nonce0[VS_NONCE_LEN] = "fuzz: the host's fixed nonce...";
static uint8_t host_nonce[VS_NONCE_LEN];
static void fuzz_nonce(uint8_t out[VS_NONCE_LEN]) { memcpy(out, host_nonce, VS_NONCE_LEN); }
#define vs_nonce fuzz_nonce
#include "host/conn.c"
#undef vs_nonce

/* What host/conn.c needs from the rest of the controller.  Nothing that
 * the handshake reaches may die: the hub runs it for every guest. */
void die(const char *fmt, ...) { fuzz_fail(fmt, __FILE__, __LINE__); }
void die_sys(const char *fmt, ...) { fuzz_fail(fmt, __FILE__, __LINE__); }
void warnx(const char *fmt, ...) { (void)fmt; }
void vinfo(const char *fmt, ...) { (void)fmt; }
long vsh_timeout_ms(void) { return 2000; }
const char *addr_str(const struct vs_addr *a) { static char b[160]; return vs_addr_str(a, b, sizeof b); }
int hub_open(struct opts *o, struct agent *ag, const char *op, const char *what)
{
	fuzz_fail("hub_open", __FILE__, __LINE__);
	return -1;
}

static int link_fd = -1; /* a socket named FUZZ_LINK: hs_begin's fd when we see a path */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	link_fd = fuzz_link_listen();
	return 0;
}

/* the input is 3 bytes of options, then frames (fuzz.h) */
#define PREFIX 3
FUZZ_FRAMES_HOOKS(PREFIX)

#define GUEST_CID 3u

static const size_t klen[4] = { 16, 32, 64, 200 };

/* The host's side of one run: what it holds and how it sees the guest */
struct cfg {
	uint16_t flags;  /* what else our HELLO says (STANDBY) */
	int dialed;      /* we dialed the agent */
	uint32_t cid;    /* the guest's CID as we see it; VS_CID_ANY: none */
	int path;        /* we see FUZZ_LINK */
	uint8_t nonce[VS_NONCE_LEN];
};

static struct vs_key key;

static void key_for(struct vs_key *k, int opt)
{
	size_t i, n = klen[(opt >> 1) & 3];
	memset(k, 0, sizeof *k);
	if (!(opt & 1))
		return;
	for (i = 0; i < n; i++)
		k->b[i] = (uint8_t)('a' + i % 26);
	k->n = n;
}

static void check_err(const char *e, size_t cap)
{
	static char shown[4 * 512 + 4];
	const char *z = memchr(e, 0, cap);
	size_t i, k;
	CHECK(z && z > e);
	CHECK(vs_esc(shown, sizeof shown, e, (size_t)(z - e), 0) == (size_t)(z - e));
	for (i = 0; shown[i]; i += k)
		CHECK(vs_shown(vs_utf8((const uint8_t *)shown + i, strlen(shown + i), &k)));
}

/* The model's state: the transcript as it grows, and where it stands. */
struct model {
	int stage; /* 0 HELLO, 1 AUTH, 2 done */
	int authed; /* done through a right AUTH */
	struct fuzz_seen ours; /* the guest as we see it */
	uint8_t hello[256]; /* our HELLO payload */
	size_t hn;
	uint8_t agent[VS_FRAME_MAX]; /* the agent's HELLO payload */
	size_t an;
	uint8_t mac[VS_MAC]; /* our AUTH's MAC */
	uint64_t token;
	uint16_t flags;
};

static struct model mod;

/* Our HELLO as PROTOCOL.md 3.1 has the host write it: version 3, KEY when
 * we hold a key and the flags asked for, every capability, token 0; our
 * nonce, then the guest as we see it (CID, or PATH). */
static void model_begin(struct model *m, const struct cfg *c)
{
	uint8_t v[4];
	memset(&m->ours, 0, sizeof m->ours);
	m->stage = m->authed = 0;
	m->hn = fuzz_hello_head(m->hello, (uint16_t)((key.n ? VS_HF_KEY : 0) | c->flags), VS_CAP_ALL, 0);
	fuzz_field(m->hello, &m->hn, VS_F_NONCE, c->nonce, VS_NONCE_LEN);
	if (c->cid != VS_CID_ANY) {
		vs_put32(v, c->cid);
		fuzz_field(m->hello, &m->hn, VS_F_CID, v, 4);
		m->ours.has_cid = 1, m->ours.cid = c->cid;
	} else if (c->path) {
		fuzz_field(m->hello, &m->hn, VS_F_PATH, FUZZ_LINK, strlen(FUZZ_LINK));
		strcpy(m->ours.path, FUZZ_LINK);
	}
}

static int model_step(struct model *m, const struct cfg *c, const struct vs_hdr *h, const uint8_t *p, size_t n)
{
	struct fuzz_seen seen;
	uint8_t mac[VS_MAC];
	if (h->type == VS_ERROR)
		return HS_FAIL;
	if (m->stage == 0) {
		if (h->type != VS_HELLO || n < 16 || vs_get16(p) != FUZZ_VERSION || !fuzz_fields_ok(p + 16, n - 16, &seen))
			return HS_FAIL;
		memcpy(m->agent, p, n);
		m->an = n;
		m->flags = vs_get16(p + 2);
		m->token = vs_get64(p + 8);
		if (!(m->flags & VS_HF_KEY))
			return key.n ? HS_FAIL : HS_DONE; /* holding a key, we need its proof */
		if (!key.n || !seen.nonce || fuzz_link_differs(&m->ours, &seen))
			return HS_FAIL;
		fuzz_mac(&key, 0, c->dialed,
		         (const struct fuzz_piece[]){ { m->hello, m->hn }, { m->agent, m->an } }, 2, m->mac);
		return HS_MORE;
	}
	if (h->type != VS_AUTH || n < VS_MAC)
		return HS_FAIL;
	fuzz_mac(&key, 1, c->dialed,
	         (const struct fuzz_piece[]){ { m->hello, m->hn }, { m->agent, m->an }, { m->mac, VS_MAC },
	                                      { p + VS_MAC, n - VS_MAC } },
	         4, mac);
	if (memcmp(mac, p, VS_MAC) || !fuzz_fields_ok(p + VS_MAC, n - VS_MAC, NULL))
		return HS_FAIL;
	m->authed = 1;
	return HS_DONE;
}

static struct hs hs;

/* The host's first words in b[0..n): the magic and exactly the HELLO
 * the model writes.  Their length. */
static size_t check_begin(const uint8_t *b, size_t n, const struct model *m)
{
	struct vs_hdr h;
	CHECK(n > VS_MAGIC_LEN + VS_HDR && !memcmp(b, VS_MAGIC, VS_MAGIC_LEN));
	CHECK(vs_hdr_parse(b + VS_MAGIC_LEN, n - VS_MAGIC_LEN, &h) == 1 && h.type == VS_HELLO);
	CHECK(h.len == m->hn && h.len <= n - VS_MAGIC_LEN - VS_HDR);
	CHECK(!memcmp(b + VS_MAGIC_LEN + VS_HDR, m->hello, m->hn));
	return VS_MAGIC_LEN + VS_HDR + h.len;
}

/* Our AUTH: the host's MAC the model computed, nothing more */
static void check_auth(const uint8_t *b, size_t n, const struct model *m)
{
	struct vs_hdr h;
	CHECK(key.n && n == VS_HDR + VS_MAC);
	CHECK(vs_hdr_parse(b, n, &h) == 1 && h.type == VS_AUTH && h.len == VS_MAC);
	CHECK(!memcmp(b + VS_HDR, m->mac, VS_MAC));
}

/* Where, in the input, the agent's HELLO and its AUTH lie, and our
 * HELLO and MAC in that run: the re-runs change them. */
struct spots {
	size_t hello, hello_n, auth, auth_n;
	uint8_t host[256], host_mac[VS_MAC];
	size_t host_n;
};

/* The frames one after another through hs_step, the host seeing the
 * guest as c says.  Returns the model's end: HS_DONE, HS_FAIL, or HS_MORE
 * when the frames ran out first. */
static int run_steps(const struct cfg *c, const uint8_t *data, size_t size, struct spots *at)
{
	uint8_t b[VS_MAGIC_LEN + VS_HDR + 256], out[VS_HDR + VS_MAC + 16];
	size_t k, outn, pos = 0;

	memcpy(host_nonce, c->nonce, VS_NONCE_LEN);
	model_begin(&mod, c);
	k = hs_begin(&hs, &key, c->flags, c->dialed, c->path ? link_fd : -1, c->cid, b, sizeof b);
	CHECK(check_begin(b, k, &mod) == k);
	for (;;) {
		struct vs_hdr h;
		const uint8_t *q;
		uint8_t *p;
		int want, r;
		if (fuzz_frame_at(data, size, &pos, &h, &q) != 1)
			return HS_MORE; /* what the blocking reader would refuse, or EOF */
		if (at && mod.stage == 0)
			at->hello = (size_t)(q - data), at->hello_n = h.len;
		else if (at && h.len >= VS_MAC)
			at->auth = (size_t)(q - data), at->auth_n = h.len;
		p = fuzz_dup(q, h.len, 0);
		want = model_step(&mod, c, &h, p, h.len);
		memset(out, 0xee, sizeof out);
		r = hs_step(&hs, &h, p, h.len, out, &outn);
		free(p);
		CHECK(r == want);
		if (at) {
			memcpy(at->host, mod.hello, mod.hn);
			at->host_n = mod.hn;
			memcpy(at->host_mac, mod.mac, VS_MAC);
		}
		if (r == HS_FAIL) {
			check_err(hs.err, sizeof hs.err);
			CHECK(outn == 0);
			return r;
		}
		if (r == HS_DONE) {
			CHECK(outn == 0 && hs.stage == 2);
			CHECK(hs.hi.version == FUZZ_VERSION && hs.hi.token == mod.token && hs.hi.flags == mod.flags);
			return r;
		}
		/* HS_MORE: our AUTH, and not a byte written past it */
		check_auth(out, outn, &mod);
		CHECK(out[outn] == 0xee);
		mod.stage = 1;
	}
}

/* The same answer over a socket, through the blocking loop, which sees
 * the guest as c says (no CID, no path, no flags). */
static void run_blocking(const struct cfg *c, const uint8_t *data, size_t size, int want)
{
	static uint8_t back[4096];
	struct vs_hello hi;
	int sv[2], r;
	size_t got, k;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(size == 0 || vs_writeall(sv[1], data, size) == 0);
	shutdown(sv[1], SHUT_WR);
	hostkey = key;
	hello_err[0] = 0;
	r = hello_try(sv[0], c->dialed, &hi, vs_deadline(5000));
	close(sv[0]);
	got = fuzz_drain(sv[1], back, sizeof back);
	close(sv[1]);
	k = check_begin(back, got, &mod);
	if (mod.stage == 1) /* it answered the agent's HELLO with our AUTH */
		check_auth(back + k, got - k, &mod);
	else
		CHECK(got == k);
	if (want == HS_DONE) {
		CHECK(r == 0 && hi.token == hs.hi.token && !strcmp(hi.software, hs.hi.software));
	} else {
		CHECK(r < 0);
		check_err(hello_err, sizeof hello_err);
	}
}

/* The input again with bit `bit` of data[off..off+n) flipped: must fail */
static void rerun_flipped(const struct cfg *c, const uint8_t *data, size_t size, size_t off, size_t n, unsigned bit)
{
	uint8_t *d;
	if (n == 0)
		return;
	d = fuzz_dup(data, size, 0);
	bit %= 8 * n;
	d[off + bit / 8] ^= (uint8_t)(1u << bit % 8);
	CHECK(run_steps(c, d, size, NULL) == HS_FAIL);
	free(d);
}

/* The agent's MAC made, with the key, over a transcript whose host HELLO
 * differs from ours in one bit (changed on its way to the agent), put in
 * place of the one in the input: must fail. */
static void rerun_forged(const struct cfg *c, const uint8_t *data, size_t size, const struct spots *at, unsigned where)
{
	uint8_t host[sizeof at->host], *d = fuzz_dup(data, size, 0);
	unsigned bit = where % (8 * (unsigned)at->host_n);
	memcpy(host, at->host, at->host_n);
	host[bit / 8] ^= (uint8_t)(1u << bit % 8);
	fuzz_mac(&key, 1, c->dialed,
	         (const struct fuzz_piece[]){ { host, at->host_n }, { data + at->hello, at->hello_n },
	                                      { at->host_mac, VS_MAC },
	                                      { data + at->auth + VS_MAC, at->auth_n - VS_MAC } },
	         4, d + at->auth);
	CHECK(run_steps(c, d, size, NULL) == HS_FAIL);
	free(d);
}

/* A proof made for one conversation must be no good in any other: the
 * same agent frames, with one change elsewhere in the transcript at a
 * time, must now fail.  The number of re-runs. */
static int rerun_changed(const struct cfg *c, const uint8_t *data, size_t size, const struct spots *at, unsigned where)
{
	struct cfg o;
	rerun_flipped(c, data, size, at->hello, at->hello_n, where); /* the agent's HELLO */
	rerun_flipped(c, data, size, at->auth + VS_MAC, at->auth_n - VS_MAC, where); /* its facts, after its MAC */
	rerun_forged(c, data, size, at, where); /* our HELLO, any bit of it */
	o = *c, o.flags ^= VS_HF_STANDBY; /* our HELLO's flags */
	CHECK(run_steps(&o, data, size, NULL) == HS_FAIL);
	o = *c, o.dialed = !o.dialed; /* who dialed whom */
	CHECK(run_steps(&o, data, size, NULL) == HS_FAIL);
	o = *c, o.nonce[where / 8 % VS_NONCE_LEN] ^= (uint8_t)(1u << where % 8); /* our nonce: a replay */
	CHECK(run_steps(&o, data, size, NULL) == HS_FAIL);
	o = *c; /* the guest as we see it: another CID, or none where we had one */
	if (o.cid != VS_CID_ANY)
		o.cid = o.cid == GUEST_CID ? GUEST_CID + 1 : VS_CID_ANY;
	else if (o.path)
		o.path = 0;
	else
		o.cid = GUEST_CID;
	CHECK(run_steps(&o, data, size, NULL) == HS_FAIL);
	return 6 + (at->auth_n > VS_MAC);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg c, blk;
	struct spots at;
	unsigned where;
	int end, authed, reruns = 0;
	if (size < PREFIX || size > 8192)
		return 0;
	key_for(&key, data[0]);
	memset(&c, 0, sizeof c);
	c.flags = data[0] & 8 ? VS_HF_STANDBY : 0;
	c.dialed = !!(data[0] & 16);
	c.cid = data[0] & 32 ? GUEST_CID : VS_CID_ANY;
	c.path = (data[0] & 96) == 64;
	memcpy(c.nonce, host_nonce0, VS_NONCE_LEN);
	where = vs_get16(data + 1);
	data += PREFIX, size -= PREFIX;

	memset(&at, 0, sizeof at);
	end = run_steps(&c, data, size, &at);
	authed = mod.authed;
	fuzz_trace("handshake: %s%s", end == HS_DONE ? "HS_DONE" : end == HS_FAIL ? "HS_FAIL: " : "HS_MORE (frames ran out)",
	           end == HS_DONE ? (authed ? " through AUTH" : " without AUTH") : end == HS_FAIL ? hs.err : "");

	/* hello_try on a socketpair: no CID, no path, no standby */
	blk = c, blk.cid = VS_CID_ANY, blk.path = 0, blk.flags = 0;
	if (c.cid != VS_CID_ANY || c.path || c.flags)
		end = run_steps(&blk, data, size, NULL);
	run_blocking(&blk, data, size, end);

	if (authed)
		reruns = rerun_changed(&c, data, size, &at, where);
	if (reruns)
		fuzz_trace("handshake: %d re-runs with a changed transcript, all refused", reruns);
	return 0;
}
