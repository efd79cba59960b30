/*
 * addr - the address syntax both programs accept (protocol.h:
 * vs_addr_parse, vs_addr_str, vs_port_parse, vs_cid_parse).  Command-line
 * words, not peer bytes, but the one parser every transport goes through,
 * and the hub will print and compare these.
 *
 * Input: byte 0 picks a buffer size for vs_addr_str; the rest (up to a
 * NUL) is the string.  A parsed address must print in canonical form
 * (vsock:CID:PORT, unix:PATH, hybrid:PATH:PORT), re-parse to the same
 * address, and print the same again; a buffer too small gives "?" and
 * no write past its end.  A port or CID that parses is digits (or a CID
 * name) with the value strtoul would give.
 */
#include "fuzz.h"

static void defaults(struct vs_addr *a)
{
	memset(a, 0, sizeof *a);
	a->cid = VS_CID_HOST;
	a->port = VS_PORT_LISTEN;
}

static int same(const struct vs_addr *a, const struct vs_addr *b)
{
	if (a->kind != b->kind)
		return 0;
	if (a->kind == VS_ADDR_VSOCK)
		return a->cid == b->cid && a->port == b->port;
	if (a->kind == VS_ADDR_UNIX)
		return !strcmp(a->path, b->path);
	return !strcmp(a->path, b->path) && a->port == b->port;
}

static int digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

static void check_number(const char *s)
{
	uint32_t v = 0;
	if (vs_port_parse(s, &v) == 0) {
		CHECK(digits(s));
		CHECK(strtoull(s, NULL, 10) == v);
	} else {
		CHECK(!digits(s) || strlen(s) > 10 || strtoull(s, NULL, 10) > 0xffffffffu);
	}
	if (vs_cid_parse(s, &v) == 0) {
		if (!strcmp(s, "-1") || !strcmp(s, "any"))
			CHECK(v == VS_CID_ANY);
		else if (!strcmp(s, "host"))
			CHECK(v == VS_CID_HOST);
		else if (!strcmp(s, "local"))
			CHECK(v == VS_CID_LOCAL);
		else
			CHECK(digits(s) && strtoull(s, NULL, 10) == v);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vs_addr a, b;
	char *s, out[200], again[200], *small;
	const char *t;
	size_t n, cap;

	if (size < 1)
		return 0;
	cap = data[0];
	n = size - 1;
	s = (char *)fuzz_dup(data + 1, n, 1);
	s[n] = 0;
	check_number(s);

	defaults(&a);
	if (vs_addr_parse(s, &a) < 0) {
		free(s);
		return 0;
	}
	CHECK(a.kind == VS_ADDR_VSOCK || a.kind == VS_ADDR_UNIX || a.kind == VS_ADDR_HYBRID);
	CHECK(strlen(a.path) < sizeof a.path);
	if (a.kind != VS_ADDR_VSOCK)
		CHECK(a.path[0] != 0);

	t = vs_addr_str(&a, out, sizeof out);
	CHECK(t == out);
	CHECK(!strncmp(out, "vsock:", 6) || !strncmp(out, "unix:", 5) || !strncmp(out, "hybrid:", 7));
	defaults(&b);
	CHECK(vs_addr_parse(out, &b) == 0);
	CHECK(same(&a, &b));
	CHECK(vs_addr_str(&b, again, sizeof again) == again && !strcmp(out, again));

	/* into a buffer of exactly cap bytes: the whole string or "?" */
	small = fuzz_alloc(cap);
	t = vs_addr_str(&a, small, cap);
	CHECK(t == small ? !strcmp(small, out) : !strcmp(t, "?"));
	free(small);
	free(s);
	return 0;
}
