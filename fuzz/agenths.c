/*
 * agenths - the agent's side of the handshake (agent.c: handshake()),
 * the first thing a connection reaches after the magic, on every
 * connection, from any peer that can connect.
 *
 * Input: byte 0 is the agent's configuration: bits 0-1 --auth (auto,
 * key, none; 3 is auto), bit 2 the kernel's proof (a reserved port, or a
 * trusted Unix peer), bit 3 the agent holds a key, bits 4-5 its length
 * (16, 32, 64, 200), bit 6 facts (a control connection), bit 7 a
 * dial-back token.  Byte 1: bit 0 the host dialed the agent (listen
 * mode; else the agent dialed), bits 1-2 how the agent sees this
 * connection's guest: 1 its CID, 3 (fuzz/agent.h answers getsockname as
 * vsock would), 2 a Unix path (the connection is accepted from a
 * listener at fuzz.h's FUZZ_LINK), 0 or 3 neither (a socketpair); bit 3
 * this is a standby dial-back.  Bytes 2-3 (u16 little-endian) say where
 * the re-runs below flip a bit.  The rest is what the host sends after
 * the magic, written into the connection, which is then half-closed, so
 * no read waits.  handshake() runs in this process (fuzz/agent.h: its
 * nonce is fixed, so a seed can carry the right AUTH); then what it wrote
 * is read back.
 *
 * The result is compared with a model of protocol 3 written from
 * PROTOCOL.md 3 and auth.h: a HELLO of version 3 first, the proof the
 * configuration asks for; with the key, a host HELLO that names no other
 * guest than ours (a CID each, or a path each, that differ), then an
 * AUTH of exactly 32 bytes that is the host's MAC over both HELLOs as
 * they crossed the wire and the direction as the agent knows it.  The
 * host must be admitted only so, each refusal must be an ERROR with the
 * model's code (PROTO, VERSION, AUTH), or no ERROR at all where the model
 * says the connection broke; the agent's HELLO must carry our version,
 * token, nonce and view of the guest, and no facts before the host has
 * proven the key (with the key, it is exactly the HELLO the model
 * writes); its AUTH must be the agent's MAC over both HELLOs, the host's
 * MAC and the facts after it.
 *
 * A host admitted by its AUTH is run again with one change at a time,
 * and the same AUTH must now be refused: the direction flipped, a bit of
 * the host's HELLO flipped, or the agent's HELLO changed (a bit of its
 * nonce, its token, its capabilities, its flags, its view of the guest);
 * and the host's MAC made afresh, with the key, for the agent's HELLO
 * with any one bit flipped.  A proof is good for one conversation only.
 */
#include "agent.h"

static int link_fd = -1; /* the listener at FUZZ_LINK */
static char verdict[600]; /* the last run's end, for FUZZ_TRACE */
static const size_t klen[4] = { 16, 32, 64, 200 };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	signal(SIGPIPE, SIG_IGN);
	link_fd = fuzz_link_listen();
	return 0;
}

/* the input is 4 bytes of options, then frames (fuzz.h) */
#define PREFIX 4
FUZZ_FRAMES_HOOKS(PREFIX)

#define GUEST_CID 3u
enum { VIEW_NONE, VIEW_CID, VIEW_PATH };

/* The agent's side of one run: its options and how it sees the guest */
struct cfg {
	int auth, kernel, facts, dialed, standby, view;
	uint32_t cid, ops;
	uint64_t token;
	int nonce_bit; /* of its nonce flipped, or -1 */
};

/* What the model says the agent does. */
struct want {
	int ok;             /* admitted */
	const char *how;
	uint32_t error;     /* the code of the ERROR it sends, or 0 */
	int hello;          /* it sends its HELLO */
	uint16_t hflags;    /* with these flags */
	uint8_t agent[512]; /* with the key: exactly this HELLO payload */
	size_t an;
	int auth;           /* and then its AUTH */
	const uint8_t *host; /* the host's HELLO payload, and its MAC */
	size_t hn;
	const uint8_t *hmac;
};

/* The guest as the agent sees it */
static void ours(const struct cfg *c, struct fuzz_seen *s)
{
	memset(s, 0, sizeof *s);
	if (c->view == VIEW_CID)
		s->has_cid = 1, s->cid = c->cid;
	if (c->view == VIEW_PATH)
		strcpy(s->path, FUZZ_LINK);
}

static void nonce_of(const struct cfg *c, uint8_t n[VS_NONCE_LEN])
{
	memcpy(n, fuzz_agent_nonce, VS_NONCE_LEN);
	if (c->nonce_bit >= 0)
		n[c->nonce_bit / 8 % VS_NONCE_LEN] ^= (uint8_t)(1u << c->nonce_bit % 8);
}

/* The agent's HELLO when it asks for the key, as PROTOCOL.md 3.1 has it:
 * KEY (and STANDBY on a standby dial-back), what it serves, its token;
 * its nonce, the guest as it sees it (CID, or PATH), its software, and no
 * facts. */
static void agent_hello(const struct cfg *c, struct want *w)
{
	static const char sw[] = "vsock-agent " AGENT_VERSION;
	struct fuzz_seen s;
	uint8_t v[VS_NONCE_LEN];
	w->an = fuzz_hello_head(w->agent, w->hflags, c->ops & VS_CAP_ALL, c->token);
	nonce_of(c, v);
	fuzz_field(w->agent, &w->an, VS_F_NONCE, v, VS_NONCE_LEN);
	ours(c, &s);
	if (s.has_cid) {
		vs_put32(v, s.cid);
		fuzz_field(w->agent, &w->an, VS_F_CID, v, 4);
	}
	if (*s.path)
		fuzz_field(w->agent, &w->an, VS_F_PATH, s.path, strlen(s.path));
	fuzz_field(w->agent, &w->an, VS_F_SOFTWARE, sw, strlen(sw));
}

static void model(const struct cfg *c, const uint8_t *p, size_t n, struct want *w)
{
	struct vs_hdr h;
	struct fuzz_seen host, mine;
	const uint8_t *q;
	size_t pos = 0;
	int r, need_key, mutual;
	uint8_t mac[VS_MAC];
	uint16_t flags;
	memset(w, 0, sizeof *w);
	r = fuzz_frame_at(p, n, &pos, &h, &q);
	if (r <= 0) {
		w->error = r < 0 ? VS_E_PROTO : 0;
		return;
	}
	if (h.type != VS_HELLO || h.len < 16 || !fuzz_fields_ok(q + 16, h.len - 16, &host)) {
		w->error = VS_E_PROTO;
		return;
	}
	if (vs_get16(q) != FUZZ_VERSION) {
		w->error = VS_E_VERSION;
		return;
	}
	w->host = q, w->hn = h.len;
	flags = vs_get16(q + 2);
	need_key = c->auth == AUTH_KEY || (c->auth == AUTH_AUTO && !c->kernel);
	mutual = key.n && (flags & VS_HF_KEY) && c->auth != AUTH_NONE;
	if (need_key && !key.n) {
		w->error = VS_E_AUTH;
		return;
	}
	if (!need_key && !mutual) {
		w->hello = 1;
		w->hflags = (c->auth == AUTH_NONE ? VS_HF_OPEN : VS_HF_KERNEL) | (c->standby ? VS_HF_STANDBY : 0);
		w->how = c->auth == AUTH_NONE ? "none" : "kernel";
		w->ok = 1;
		return;
	}
	/* the key: a host HELLO for another guest is refused before ours */
	ours(c, &mine);
	if (fuzz_link_differs(&mine, &host)) {
		w->error = VS_E_AUTH;
		return;
	}
	w->hello = 1;
	w->hflags = VS_HF_KEY | (c->standby ? VS_HF_STANDBY : 0);
	agent_hello(c, w);
	r = fuzz_frame_at(p, n, &pos, &h, &q);
	if (r <= 0)
		return; /* the connection broke: no ERROR */
	if (h.type != VS_AUTH || h.len != VS_MAC || !host.nonce) {
		w->error = VS_E_AUTH;
		return;
	}
	fuzz_mac(&key, 0, c->dialed, (const struct fuzz_piece[]){ { w->host, w->hn }, { w->agent, w->an } }, 2, mac);
	if (memcmp(mac, q, VS_MAC)) {
		w->error = VS_E_AUTH;
		return;
	}
	w->hmac = q;
	w->auth = w->ok = 1;
	w->how = "key";
}

/* The agent's HELLO: with the key, exactly the model's; else our version,
 * flags, caps, token, nonce and view, and facts only on a control
 * connection. */
static void check_hello(const uint8_t *b, size_t n, const struct want *w, const struct cfg *c)
{
	struct vs_hello hi;
	struct fuzz_seen s;
	uint8_t v[VS_NONCE_LEN];
	if (w->hflags & VS_HF_KEY) {
		CHECK(n == w->an && !memcmp(b, w->agent, n));
		return;
	}
	ours(c, &s);
	nonce_of(c, v);
	CHECK(vs_hello_decode(b, n, &hi) == 0);
	CHECK(hi.version == FUZZ_VERSION && hi.flags == w->hflags && hi.token == c->token &&
	      hi.caps == (c->ops & VS_CAP_ALL));
	CHECK(hi.has_nonce && !memcmp(hi.nonce, v, VS_NONCE_LEN));
	CHECK(hi.has_cid == s.has_cid && (!s.has_cid || hi.cid == s.cid) && !strcmp(hi.path, s.path));
	CHECK(!strcmp(hi.software, "vsock-agent " AGENT_VERSION));
	if (!c->facts)
		CHECK(!*hi.hostname && !*hi.kernel && !*hi.machine_id && !*hi.boot_id);
}

/* The agent's AUTH: its MAC over both HELLOs, the host's MAC and the
 * facts after it; facts only on a control connection, and no nonce, CID
 * or path among them. */
static void check_auth(const uint8_t *q, size_t n, const struct want *w, const struct cfg *c)
{
	uint8_t mac[VS_MAC];
	CHECK(n >= VS_MAC);
	fuzz_mac(&key, 1, c->dialed,
	         (const struct fuzz_piece[]){ { w->host, w->hn }, { w->agent, w->an }, { w->hmac, VS_MAC },
	                                      { q + VS_MAC, n - VS_MAC } },
	         4, mac);
	CHECK(!memcmp(q, mac, VS_MAC));
	if (c->facts) {
		struct vs_hello fh;
		memset(&fh, 0, sizeof fh);
		CHECK(vs_fields_decode(q + VS_MAC, n - VS_MAC, &fh) == 0);
		CHECK(!strcmp(fh.software, "vsock-agent " AGENT_VERSION));
		CHECK(!fh.has_nonce && !fh.has_cid && !*fh.path);
	} else {
		CHECK(n == VS_MAC);
	}
}

/* One handshake on input p[0..n) with the agent configured as c, checked
 * against the model.  1 when the host was admitted by its key proof. */
static int run(const struct cfg *c, const uint8_t *p, size_t n)
{
	static uint8_t back[8192];
	struct peer pe;
	struct want w;
	const char *how = NULL;
	int sv[2], r, ended;
	size_t got, pos = 0;

	opt_auth = c->auth;
	ops = c->ops;
	hflags = c->standby ? VS_HF_STANDBY : 0; /* agent.c: our HELLO's flags */
	fuzz_nonce_bit = c->nonce_bit;
	memset(&pe, 0, sizeof pe);
	strcpy(pe.desc, "fuzz peer");
	pe.kernel = c->kernel;
	pe.dialed = c->dialed;
	model(c, p, n, &w);

	if (c->view == VIEW_PATH)
		fuzz_link_pair(link_fd, sv);
	else
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	fuzz_vsock_fd = c->view == VIEW_CID ? sv[0] : -1;
	fuzz_vsock_cid = c->cid;
	*fuzz_log = 0;
	CHECK(n == 0 || vs_writeall(sv[1], p, n) == 0);
	shutdown(sv[1], SHUT_WR);
	FUZZ_CALL(ended, r = handshake(sv[0], &pe, c->token, c->facts, &how));
	CHECK(!ended);
	fuzz_vsock_fd = -1;
	close(sv[0]);
	got = fuzz_drain(sv[1], back, sizeof back);
	close(sv[1]);

	CHECK((r == 0) == w.ok);
	if (w.ok)
		CHECK(how && !strcmp(how, w.how));
	snprintf(verdict, sizeof verdict, "%s%s", r == 0 ? "admitted by " : "refused: ",
	         r == 0 ? how : strtok(fuzz_log, "\n"));
	/* what it wrote: HELLO, then AUTH or ERROR; or one ERROR */
	{
		struct vs_hdr h;
		const uint8_t *q;
		if (w.hello) {
			CHECK(fuzz_frame_at(back, got, &pos, &h, &q) == 1 && h.type == VS_HELLO);
			check_hello(q, h.len, &w, c);
		}
		if (w.auth) {
			CHECK(fuzz_frame_at(back, got, &pos, &h, &q) == 1 && h.type == VS_AUTH);
			check_auth(q, h.len, &w, c);
		}
		if (w.error) {
			CHECK(fuzz_frame_at(back, got, &pos, &h, &q) == 1 && h.type == VS_ERROR && h.len >= 4);
			CHECK(vs_get32(q) == w.error);
		}
		CHECK(pos == got);
	}
	return r == 0 && !strcmp(how, "key");
}

/* The host's MAC made, with the key, over a transcript whose agent HELLO
 * differs from the agent's in one bit (changed on its way to the host),
 * put in place of the one in the input: must be refused. */
static void rerun_forged(const struct cfg *c, const uint8_t *p, size_t n, unsigned where)
{
	static struct want w;
	uint8_t *d = fuzz_dup(p, n, 0);
	unsigned bit;
	model(c, p, n, &w);
	CHECK(w.auth);
	bit = where % (8 * (unsigned)w.an);
	w.agent[bit / 8] ^= (uint8_t)(1u << bit % 8);
	fuzz_mac(&key, 0, c->dialed, (const struct fuzz_piece[]){ { w.host, w.hn }, { w.agent, w.an } }, 2,
	         d + (w.hmac - p));
	CHECK(!run(c, d, n));
	free(d);
}

/* The same host frames with one change at a time, elsewhere in the
 * transcript or in the direction: the AUTH that was accepted must now be
 * refused.  (A change that leaves the host no key to prove, its KEY flag
 * gone where the kernel's proof admits it, admits it by that proof,
 * never by the AUTH: the model checks which.)  The number of re-runs. */
static int rerun_changed(const struct cfg *c, const uint8_t *p, size_t n, size_t hoff, size_t hlen, unsigned where)
{
	struct cfg o;
	uint8_t *d = fuzz_dup(p, n, 0);
	unsigned bit = where % (8 * hlen);
	d[hoff + bit / 8] ^= (uint8_t)(1u << bit % 8); /* a bit of the host's HELLO */
	CHECK(!run(c, d, n));
	free(d);
	o = *c, o.dialed = !o.dialed; /* who dialed whom */
	CHECK(!run(&o, p, n));
	/* the agent's HELLO: its nonce (a replay), token, capabilities, flags, view */
	o = *c, o.nonce_bit = (int)(where % (8 * VS_NONCE_LEN));
	CHECK(!run(&o, p, n));
	o = *c, o.token ^= 1ull << where % 64;
	CHECK(!run(&o, p, n));
	o = *c, o.ops ^= 1u << where % 5;
	CHECK(!run(&o, p, n));
	o = *c, o.standby = !o.standby;
	CHECK(!run(&o, p, n));
	o = *c; /* another CID, or none where it had one */
	if (o.view == VIEW_NONE)
		o.view = VIEW_CID, o.cid = GUEST_CID;
	else if (o.view == VIEW_CID)
		o.cid++;
	else
		o.view = VIEW_NONE;
	CHECK(!run(&o, p, n));
	rerun_forged(c, p, n, where); /* the agent's HELLO, any bit of it */
	return 8;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg c;
	struct vs_hdr h;
	const uint8_t *q;
	size_t pos = 0;
	unsigned where;
	int b0, b1, reruns = 0;
	if (size < PREFIX || size > 4096)
		return 0;
	b0 = data[0], b1 = data[1];
	where = vs_get16(data + 2);
	memset(&c, 0, sizeof c);
	c.auth = (b0 & 3) == 1 ? AUTH_KEY : (b0 & 3) == 2 ? AUTH_NONE : AUTH_AUTO;
	c.kernel = !!(b0 & 4);
	c.facts = !!(b0 & 64);
	c.token = b0 & 128 ? 0x1122334455667788ull : 0;
	c.dialed = b1 & 1;
	c.view = (b1 >> 1 & 3) == 3 ? VIEW_NONE : b1 >> 1 & 3;
	c.cid = GUEST_CID;
	c.standby = !!(b1 & 8);
	c.ops = VS_CAP_ALL | OP_LEGACY;
	c.nonce_bit = -1;
	memset(&key, 0, sizeof key);
	if (b0 & 8) {
		size_t i;
		key.n = klen[(b0 >> 4) & 3];
		for (i = 0; i < key.n; i++)
			key.b[i] = (uint8_t)('A' + i % 26);
	}
	data += PREFIX, size -= PREFIX;

	if (run(&c, data, size)) {
		fuzz_trace("agenths: admitted by its AUTH");
		CHECK(fuzz_frame_at(data, size, &pos, &h, &q) == 1);
		reruns = rerun_changed(&c, data, size, (size_t)(q - data), h.len, where);
		fuzz_trace("agenths: %d re-runs with a changed transcript, the AUTH refused in all", reruns);
	} else {
		fuzz_trace("agenths: %s", verdict);
	}
	return 0;
}
