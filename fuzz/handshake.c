/*
 * handshake - the host's side of the handshake (host/conn.c: hs_begin,
 * hs_step, and hello_try, the blocking loop around them), which the
 * controller and the hub run on whatever a guest answers, before it has
 * proven anything.  host/conn.c is compiled into this target as it is;
 * only what the fuzz binary cannot have (die, the hub) is stubbed, and
 * vs_nonce gives a fixed nonce, so that a seed can carry the one right
 * MAC for it.
 *
 * Input: byte 0 chooses whether the host holds a key (bit 0), the key's
 * length (bits 1-2: 16, 32, 64 or 200 bytes, the last one hashed first
 * by HMAC) and whether the host asks for a standby dial-back (bit 3, as
 * the hub does); the rest is the agent's answer, frames as on the wire.  Each
 * frame is fed to hs_step and the result compared with a model of the
 * handshake written here (PROTOCOL.md 3, auth.h): a HELLO of our version
 * with well-formed fields, then, only when the agent asks for the key and
 * we hold one, an AUTH whose first 32 bytes are the agent's MAC, computed
 * here from the key, both nonces and the token.  The machine must never
 * crash, must end HS_FAIL with a message for anything else (the agent's
 * words in it as sent: whoever prints it escapes it, and that comes out
 * printable),
 * must send exactly our MAC when it answers with AUTH, and may reach
 * HS_DONE through an AUTH only when its MAC is right.  Then the same bytes
 * go through hello_try over a socketpair, which must agree.
 */
#include "fuzz.h"

#include <errno.h>
#include <sys/socket.h>

/* host/conn.c's nonce: fixed, so that a seed can prove itself */
static const uint8_t host_nonce[VS_NONCE_LEN] = "fuzz: the host's fixed nonce...";
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

/* the input is 1 byte of options, then frames (fuzz.h) */
FUZZ_FRAMES_HOOKS(1)

static const size_t klen[4] = { 16, 32, 64, 200 };

static void key_for(struct vs_key *k, int cfg)
{
	size_t i, n = klen[(cfg >> 1) & 3];
	memset(k, 0, sizeof *k);
	if (!(cfg & 1))
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

/* The model's verdict on one frame at a stage, and the state it moves. */
struct model {
	int stage; /* 0 HELLO, 1 AUTH, 2 done, 3 failed */
	uint8_t nonce[VS_NONCE_LEN];
	uint64_t token;
	uint16_t flags;
};

static int model_step(struct model *m, const struct vs_key *k, const struct vs_hdr *h, const uint8_t *p, size_t n)
{
	const uint8_t *nonce = NULL;
	uint8_t mac[VS_MAC];
	if (h->type == VS_ERROR)
		return HS_FAIL;
	if (m->stage == 0) {
		if (h->type != VS_HELLO || n < 16 || vs_get16(p) != VS_VERSION || !fuzz_fields_ok(p + 16, n - 16, &nonce))
			return HS_FAIL;
		m->flags = vs_get16(p + 2);
		m->token = vs_get64(p + 8);
		if (!(m->flags & VS_HF_KEY))
			return HS_DONE;
		if (!k->n || !nonce)
			return HS_FAIL;
		memcpy(m->nonce, nonce, VS_NONCE_LEN);
		return HS_MORE;
	}
	if (h->type != VS_AUTH || n < VS_MAC)
		return HS_FAIL;
	fuzz_mac(k, 1, m->nonce, host_nonce, m->token, mac);
	if (memcmp(mac, p, VS_MAC) || !fuzz_fields_ok(p + VS_MAC, n - VS_MAC, NULL))
		return HS_FAIL;
	return HS_DONE;
}

static struct hs hs;
static struct vs_key key;
static uint16_t hflags; /* what else the host's HELLO says */
static struct model mod;

/* The host's first words in b[0..n): the magic and a HELLO that asks for
 * the key exactly when it holds one, with flags, and its nonce.  Their
 * length. */
static size_t check_begin(const uint8_t *b, size_t n, const struct vs_key *k, uint16_t flags)
{
	struct vs_hdr h;
	struct vs_hello hi;
	CHECK(n > VS_MAGIC_LEN + VS_HDR && !memcmp(b, VS_MAGIC, VS_MAGIC_LEN));
	CHECK(vs_hdr_parse(b + VS_MAGIC_LEN, n - VS_MAGIC_LEN, &h) == 1 && h.type == VS_HELLO);
	CHECK(h.len <= n - VS_MAGIC_LEN - VS_HDR);
	CHECK(vs_hello_decode(b + VS_MAGIC_LEN + VS_HDR, h.len, &hi) == 0);
	CHECK(hi.version == VS_VERSION && hi.flags == ((k->n ? VS_HF_KEY : 0) | flags));
	CHECK(hi.has_nonce && !memcmp(hi.nonce, host_nonce, VS_NONCE_LEN));
	return VS_MAGIC_LEN + VS_HDR + h.len;
}

/* Our AUTH: the host's MAC for the agent's nonce and token, nothing more */
static void check_auth(const uint8_t *b, size_t n, const uint8_t *nonce, uint64_t token)
{
	struct vs_hdr h;
	uint8_t mac[VS_MAC];
	fuzz_mac(&key, 0, host_nonce, nonce, token, mac);
	CHECK(key.n && n == VS_HDR + VS_MAC);
	CHECK(vs_hdr_parse(b, n, &h) == 1 && h.type == VS_AUTH && h.len == VS_MAC);
	CHECK(!memcmp(b + VS_HDR, mac, VS_MAC));
}


/* The frames one after another through hs_step.  Returns the model's
 * end: HS_DONE, HS_FAIL, or HS_MORE when the frames ran out first. */
static int run_steps(const uint8_t *data, size_t size)
{
	uint8_t b[VS_MAGIC_LEN + VS_HDR + 256], out[VS_HDR + VS_MAC + 16];
	size_t k, outn, pos = 0;

	memset(&mod, 0, sizeof mod);
	k = hs_begin(&hs, &key, hflags, b, sizeof b);
	CHECK(check_begin(b, k, &key, hflags) == k);
	for (;;) {
		struct vs_hdr h;
		const uint8_t *q;
		uint8_t *p;
		int want, r;
		if (fuzz_frame_at(data, size, &pos, &h, &q) != 1)
			return HS_MORE; /* what the blocking reader would refuse, or EOF */
		p = fuzz_dup(q, h.len, 0);
		want = model_step(&mod, &key, &h, p, h.len);
		memset(out, 0xee, sizeof out);
		r = hs_step(&hs, &h, p, h.len, out, &outn);
		free(p);
		CHECK(r == want);
		if (r == HS_FAIL) {
			check_err(hs.err, sizeof hs.err);
			CHECK(outn == 0);
			return r;
		}
		if (r == HS_DONE) {
			CHECK(outn == 0 && hs.stage == 2);
			CHECK(hs.hi.version == VS_VERSION && hs.hi.token == mod.token && hs.hi.flags == mod.flags);
			return r;
		}
		/* HS_MORE: our AUTH, and not a byte written past it */
		check_auth(out, outn, mod.nonce, mod.token);
		CHECK(out[outn] == 0xee);
		mod.stage = 1;
	}
}

/* The same answer over a socket, through the blocking loop. */
static void run_blocking(const uint8_t *data, size_t size, int want)
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
	r = hello_try(sv[0], &hi, vs_deadline(5000));
	close(sv[0]);
	got = fuzz_drain(sv[1], back, sizeof back);
	close(sv[1]);
	k = check_begin(back, got, &key, 0); /* hello_try asks for no standby */
	if (mod.stage == 1) /* it answered the agent's HELLO with our AUTH */
		check_auth(back + k, got - k, mod.nonce, mod.token);
	else
		CHECK(got == k);
	if (want == HS_DONE) {
		CHECK(r == 0 && hi.token == hs.hi.token && !strcmp(hi.software, hs.hi.software));
	} else {
		CHECK(r < 0);
		check_err(hello_err, sizeof hello_err);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int end;
	if (size < 1 || size > 8192)
		return 0;
	key_for(&key, data[0]);
	hflags = data[0] & 8 ? VS_HF_STANDBY : 0;
	end = run_steps(data + 1, size - 1);
	run_blocking(data + 1, size - 1, end);
	return 0;
}
