/*
 * hello - the HELLO decoder and its fields (protocol.h: vs_hello_decode,
 * vs_fields_decode, vs_hello_encode), which both sides run on the peer's
 * first frame, before any proof: the agent on the host's HELLO, the
 * controller and the hub on the guest's HELLO and on the fields after the
 * MAC in its AUTH.
 *
 * Input: one payload.  It is decoded as a HELLO and, on its own, as a run
 * of fields into a HELLO already filled; each result is compared with a
 * model written here from PROTOCOL.md (u16 tag, u16 length, bytes; a
 * nonce exactly 32 bytes; unknown tags skipped; text up to its first NUL,
 * cut to its buffer, kept as sent: its writer escapes it; a CID exactly 4
 * bytes, a u32; BOOT exactly 12, a u32 and a u64).  A payload shorter than 16 bytes must be refused; every
 * text field must end NUL-terminated inside its buffer; a nonce, a CID
 * and BOOT are taken only at their exact length; and a decoded HELLO, encoded and
 * decoded again, must come back
 * the same (the encoder writes our version, so the version is ours).
 */
#include "fuzz.h"

#define NTAG 9 /* text tags are below it; BOOT (9) is known too; more are skipped */
struct want {
	int ok, has_nonce, has_cid, has_boot;
	const uint8_t *nonce;
	uint32_t cid, boot;
	uint64_t uptime;
	/* the last occurrence of each text field: where and how long */
	const uint8_t *text[NTAG];
	size_t tlen[NTAG];
};

static const size_t tcap[NTAG] = { 0, sizeof ((struct vs_hello *)0)->software, 0,
	                           sizeof ((struct vs_hello *)0)->hostname, sizeof ((struct vs_hello *)0)->kernel,
	                           sizeof ((struct vs_hello *)0)->machine_id, sizeof ((struct vs_hello *)0)->boot_id, 0,
	                           sizeof ((struct vs_hello *)0)->path };

static char *tfield(struct vs_hello *h, int tag)
{
	switch (tag) {
	case VS_F_SOFTWARE: return h->software;
	case VS_F_HOSTNAME: return h->hostname;
	case VS_F_KERNEL: return h->kernel;
	case VS_F_MACHINE_ID: return h->machine_id;
	case VS_F_BOOT_ID: return h->boot_id;
	case VS_F_PATH: return h->path;
	}
	return NULL;
}

/* The model: walk the fields of p[0..n) by the letter of the spec. */
static void model(const uint8_t *p, size_t n, struct want *w)
{
	size_t off = 0;
	memset(w, 0, sizeof *w);
	while (off < n) {
		unsigned tag, len;
		if (n - off < 4)
			return; /* a field header cut short */
		tag = vs_get16(p + off);
		len = vs_get16(p + off + 2);
		off += 4;
		if (len > n - off)
			return; /* a field running past the payload */
		if (tag == VS_F_NONCE) {
			if (len != VS_NONCE_LEN)
				return;
			w->has_nonce = 1;
			w->nonce = p + off;
		} else if (tag == VS_F_CID) {
			if (len != 4)
				return;
			w->has_cid = 1;
			w->cid = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
			         (uint32_t)p[off + 3] << 24;
		} else if (tag == 9) { /* BOOT: u32 flags, u64 uptime */
			unsigned i;
			if (len != 12)
				return;
			w->has_boot = 1;
			w->boot = 0, w->uptime = 0;
			for (i = 4; i-- > 0;)
				w->boot = w->boot << 8 | p[off + i];
			for (i = 8; i-- > 0;)
				w->uptime = w->uptime << 8 | p[off + 4 + i];
		} else if (tag < NTAG && tcap[tag]) {
			w->text[tag] = p + off;
			w->tlen[tag] = len;
		}
		off += len;
	}
	w->ok = 1;
}

/* s must be the peer's bytes b[0..n) up to a NUL, cut to cap - 1, as
 * they are, and end NUL-terminated in its buffer. */
static void check_text(const char *s, size_t cap, const uint8_t *b, size_t n)
{
	size_t i;
	CHECK(memchr(s, 0, cap) != NULL);
	for (i = 0; i < cap - 1 && i < n && b[i]; i++)
		CHECK(s[i] == (char)b[i]);
	CHECK(s[i] == 0);
}

static void check_fields(const struct vs_hello *h, const struct want *w, const struct vs_hello *before)
{
	int tag;
	if (w->has_nonce)
		CHECK(h->has_nonce && !memcmp(h->nonce, w->nonce, VS_NONCE_LEN));
	else
		CHECK(h->has_nonce == before->has_nonce && !memcmp(h->nonce, before->nonce, VS_NONCE_LEN));
	if (w->has_cid)
		CHECK(h->has_cid && h->cid == w->cid);
	else
		CHECK(h->has_cid == before->has_cid && h->cid == before->cid);
	if (w->has_boot)
		CHECK(h->has_boot && h->boot == w->boot && h->uptime == w->uptime);
	else
		CHECK(h->has_boot == before->has_boot && h->boot == before->boot && h->uptime == before->uptime);
	for (tag = 1; tag < NTAG; tag++) {
		char *s = tfield((struct vs_hello *)h, tag);
		if (!s)
			continue;
		if (w->text[tag])
			check_text(s, tcap[tag], w->text[tag], w->tlen[tag]);
		else /* not sent: left as it was */
			CHECK(!strcmp(s, tfield((struct vs_hello *)before, tag)));
	}
}

static int same(const struct vs_hello *a, const struct vs_hello *b)
{
	return a->flags == b->flags && a->caps == b->caps && a->token == b->token && a->has_nonce == b->has_nonce &&
	       (!a->has_nonce || !memcmp(a->nonce, b->nonce, VS_NONCE_LEN)) && a->has_cid == b->has_cid &&
	       (!a->has_cid || a->cid == b->cid) && a->has_boot == b->has_boot &&
	       (!a->has_boot || (a->boot == b->boot && a->uptime == b->uptime)) && !strcmp(a->path, b->path) &&
	       !strcmp(a->software, b->software) &&
	       !strcmp(a->hostname, b->hostname) && !strcmp(a->kernel, b->kernel) &&
	       !strcmp(a->machine_id, b->machine_id) && !strcmp(a->boot_id, b->boot_id);
}

static void check_hello(const uint8_t *data, size_t size)
{
	static struct vs_hello h, h2, zero;
	static uint8_t b[1024];
	struct want w;
	size_t k;
	int r = vs_hello_decode(data, size, &h);

	if (size < 16) {
		CHECK(r < 0);
		return;
	}
	model(data + 16, size - 16, &w);
	CHECK((r == 0) == w.ok);
	if (r < 0)
		return;
	CHECK(h.version == vs_get16(data) && h.flags == vs_get16(data + 2) && h.caps == vs_get32(data + 4) &&
	      h.token == vs_get64(data + 8));
	check_fields(&h, &w, &zero);

	/* round trip, into a buffer of exactly the encoded size */
	k = vs_hello_encode(b, sizeof b, &h);
	CHECK(k >= 16 && k < sizeof b);
	CHECK(vs_hello_encode(b, k - 1, &h) == 0);
	{
		uint8_t *exact = fuzz_dup(b, k, 0);
		CHECK(vs_hello_encode(exact, k, &h) == k && !memcmp(exact, b, k));
		CHECK(vs_hello_decode(exact, k, &h2) == 0);
		free(exact);
	}
	CHECK(h2.version == VS_VERSION && same(&h, &h2));
}

/* Fields after the MAC of an AUTH land in a HELLO already decoded: what
 * they carry replaces, what they do not carry stays. */
static void check_fields_alone(const uint8_t *data, size_t size)
{
	static struct vs_hello h, before;
	struct want w;
	int r;
	memset(&before, 0, sizeof before);
	before.flags = 1, before.caps = 0x1f, before.token = 42;
	before.has_nonce = size & 1;
	memset(before.nonce, 0x5a, sizeof before.nonce);
	strcpy(before.software, "vsock-agent 0.2");
	strcpy(before.hostname, "guest");
	strcpy(before.boot_id, "0123");
	before.has_cid = size & 2;
	before.cid = 77;
	before.has_boot = size & 4;
	before.boot = 3, before.uptime = 12345;
	strcpy(before.path, "/run/vm.sock");
	h = before;
	r = vs_fields_decode(data, size, &h);
	model(data, size, &w);
	CHECK((r == 0) == w.ok);
	/* the fixed part is never the fields' to change */
	CHECK(h.flags == before.flags && h.caps == before.caps && h.token == before.token);
	if (r == 0)
		check_fields(&h, &w, &before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > VS_FRAME_MAX) /* a frame cannot be longer */
		return 0;
	check_hello(data, size);
	check_fields_alone(data, size);
	return 0;
}
