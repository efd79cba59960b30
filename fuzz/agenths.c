/*
 * agenths - the agent's side of the handshake (agent.c: handshake()),
 * the first thing a connection reaches after the magic, on every
 * connection, from any peer that can connect.
 *
 * Input: byte 0 is the agent's configuration: bits 0-1 --auth (auto,
 * key, none; 3 is auto), bit 2 the kernel's proof (a reserved port, or a
 * trusted Unix peer), bit 3 the agent holds a key, bits 4-5 its length
 * (16, 32, 64, 200), bit 6 facts (a control connection), bit 7 a
 * dial-back token.  The rest is what the host sends after the magic,
 * written into a socketpair that is then half-closed, so no read waits.
 * handshake() runs in this process (fuzz/agent.h: its nonce is fixed, so
 * a seed can carry the right AUTH); then what it wrote is read back.
 *
 * The result is compared with a model written from PROTOCOL.md 3 and
 * auth.h: a HELLO of our version first, the proof the configuration asks
 * for, and an AUTH of exactly 32 bytes that is the host's MAC over both
 * nonces and the token.  The host must be admitted only so, each refusal
 * must be an ERROR with the model's code (PROTO, VERSION, AUTH), or no
 * ERROR at all where the model says the connection broke; the agent's
 * HELLO must carry our version, token and nonce, and no facts before the
 * host has proven the key; its AUTH must be the agent's MAC.
 */
#include "agent.h"

static int sv[2] = { -1, -1 };
static const size_t klen[4] = { 16, 32, 64, 200 };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* the input is 1 byte of options, then frames (fuzz.h) */
FUZZ_FRAMES_HOOKS(1)

/* What the model says the agent does. */
struct want {
	int ok;             /* admitted */
	const char *how;
	uint32_t error;     /* the code of the ERROR it sends, or 0 */
	int hello;          /* it sends its HELLO */
	uint16_t hflags;    /* with these flags */
	int auth;           /* and then its AUTH */
	const uint8_t *hnonce;
};

static void model(const uint8_t *p, size_t n, int kernel, uint64_t token, struct want *w)
{
	struct vs_hdr h;
	const uint8_t *q, *hn = NULL;
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
	if (h.type != VS_HELLO || h.len < 16 || !fuzz_fields_ok(q + 16, h.len - 16, &hn)) {
		w->error = VS_E_PROTO;
		return;
	}
	if (vs_get16(q) != VS_VERSION) {
		w->error = VS_E_VERSION;
		return;
	}
	flags = vs_get16(q + 2);
	need_key = opt_auth == AUTH_KEY || (opt_auth == AUTH_AUTO && !kernel);
	mutual = key.n && (flags & VS_HF_KEY) && opt_auth != AUTH_NONE;
	if (need_key && !key.n) {
		w->error = VS_E_AUTH;
		return;
	}
	w->hello = 1;
	if (!need_key && !mutual) {
		w->hflags = opt_auth == AUTH_NONE ? VS_HF_OPEN : VS_HF_KERNEL;
		w->how = opt_auth == AUTH_NONE ? "none" : "kernel";
		w->ok = 1;
		return;
	}
	w->hflags = VS_HF_KEY;
	w->hnonce = hn;
	r = fuzz_frame_at(p, n, &pos, &h, &q);
	if (r <= 0)
		return; /* the connection broke: no ERROR */
	if (h.type != VS_AUTH || h.len != VS_MAC || !hn) {
		w->error = VS_E_AUTH;
		return;
	}
	fuzz_mac(&key, 0, hn, fuzz_agent_nonce, token, mac);
	if (memcmp(mac, q, VS_MAC)) {
		w->error = VS_E_AUTH;
		return;
	}
	w->auth = w->ok = 1;
	w->how = "key";
}

/* The agent's HELLO: our version, caps, token, nonce; facts only when
 * admitted without the key, on a control connection. */
static void check_hello(const uint8_t *b, size_t n, const struct want *w, uint64_t token, int facts)
{
	struct vs_hello hi;
	CHECK(vs_hello_decode(b, n, &hi) == 0);
	CHECK(hi.version == VS_VERSION && hi.flags == w->hflags && hi.token == token && hi.caps == (ops & VS_CAP_ALL));
	CHECK(hi.has_nonce && !memcmp(hi.nonce, fuzz_agent_nonce, VS_NONCE_LEN));
	CHECK(!strcmp(hi.software, "vsock-agent " AGENT_VERSION));
	if (w->hflags == VS_HF_KEY || !facts)
		CHECK(!*hi.hostname && !*hi.kernel && !*hi.machine_id && !*hi.boot_id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t back[8192];
	struct peer pe;
	struct want w;
	const char *how = NULL;
	uint64_t token;
	int cfg, facts, r, ended;
	size_t got, pos = 0;

	if (size < 1 || size > 4096)
		return 0;
	cfg = data[0];
	opt_auth = (cfg & 3) == 1 ? AUTH_KEY : (cfg & 3) == 2 ? AUTH_NONE : AUTH_AUTO;
	memset(&pe, 0, sizeof pe);
	strcpy(pe.desc, "fuzz peer");
	pe.kernel = !!(cfg & 4);
	memset(&key, 0, sizeof key);
	if (cfg & 8) {
		size_t i;
		key.n = klen[(cfg >> 4) & 3];
		for (i = 0; i < key.n; i++)
			key.b[i] = (uint8_t)('A' + i % 26);
	}
	facts = !!(cfg & 64);
	token = cfg & 128 ? 0x1122334455667788ull : 0;
	model(data + 1, size - 1, pe.kernel, token, &w);

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(size == 1 || vs_writeall(sv[1], data + 1, size - 1) == 0);
	shutdown(sv[1], SHUT_WR);
	FUZZ_CALL(ended, r = handshake(sv[0], &pe, token, facts, &how));
	CHECK(!ended);
	close(sv[0]);
	got = fuzz_drain(sv[1], back, sizeof back);
	close(sv[1]);

	CHECK((r == 0) == w.ok);
	if (w.ok)
		CHECK(how && !strcmp(how, w.how));
	/* what it wrote: HELLO, then AUTH or ERROR; or one ERROR */
	{
		struct vs_hdr h;
		const uint8_t *q;
		if (w.hello) {
			CHECK(fuzz_frame_at(back, got, &pos, &h, &q) == 1 && h.type == VS_HELLO);
			check_hello(q, h.len, &w, token, facts);
		}
		if (w.auth) {
			uint8_t mac[VS_MAC];
			CHECK(fuzz_frame_at(back, got, &pos, &h, &q) == 1 && h.type == VS_AUTH && h.len >= VS_MAC);
			fuzz_mac(&key, 1, fuzz_agent_nonce, w.hnonce, token, mac);
			CHECK(!memcmp(q, mac, VS_MAC));
			/* the facts, only now that the host has proven the key */
			if (facts) {
				struct vs_hello fh;
				memset(&fh, 0, sizeof fh);
				CHECK(vs_fields_decode(q + VS_MAC, h.len - VS_MAC, &fh) == 0);
				CHECK(!strcmp(fh.software, "vsock-agent " AGENT_VERSION));
			} else {
				CHECK(h.len == VS_MAC);
			}
		}
		if (w.error) {
			CHECK(fuzz_frame_at(back, got, &pos, &h, &q) == 1 && h.type == VS_ERROR && h.len >= 4);
			CHECK(vs_get32(q) == w.error);
		}
		CHECK(pos == got);
	}
	return 0;
}
