/*
 * frame - the frame header parser and the bounded reader and writer
 * (protocol.h: vs_hdr_parse, vs_rd16/32/64, vs_rdstr, vs_wr*,
 * vs_text_copy), the first things any peer's bytes reach, and vs_esc,
 * the last thing they pass before a terminal or a log.
 *
 * Input: the whole input is a header candidate; then byte 0 gives the
 * number of reader operations, taken from bytes 1..k, and the rest is
 * the payload they read.  Each read is checked against a model of the
 * cursor; what was read is written back with vs_wr* and must equal the
 * bytes consumed; text_copy must keep the peer's bytes up to a NUL or the
 * room; vs_esc must write nothing a terminal acts on, and its escapes read
 * back must give exactly the bytes it took.
 */
#include "fuzz.h"

#include <ctype.h>

static void check_hdr(const uint8_t *data, size_t size)
{
	struct vs_hdr h;
	uint8_t b[VS_HDR];
	int r = vs_hdr_parse(data, size, &h);

	if (size < VS_HDR) {
		CHECK(r == 0);
		return;
	}
	CHECK(r == 1 || r == -1);
	if (r < 0) {
		CHECK(vs_get32(data) > VS_FRAME_MAX || vs_get16(data + 6) != 0 || vs_get16(data + 4) == 0);
		return;
	}
	CHECK(h.len <= VS_FRAME_MAX && h.flags == 0 && h.type != 0);
	vs_hdr_put(b, h.type, h.len);
	CHECK(memcmp(b, data, VS_HDR) == 0);
}

/* vs_esc's output read back: each escape gives its byte, anything else
 * itself; q the quote it escaped.  Returns how many bytes came back into
 * out, or -1 on anything vs_esc must never write. */
static long unescape(const char *s, size_t n, int q, uint8_t *out)
{
	size_t i, k, o = 0;
	for (i = 0; i < n; i += k) {
		uint32_t c = vs_utf8((const uint8_t *)s + i, n - i, &k);
		if (!vs_shown(c) || (q && c == (uint32_t)q))
			return -1;
		if (c != '\\') {
			memcpy(out + o, s + i, k);
			o += k;
			continue;
		}
		if (i + 1 >= n)
			return -1;
		switch (s[i + 1]) {
		case 'n': out[o++] = '\n', k = 2; break;
		case 'r': out[o++] = '\r', k = 2; break;
		case 't': out[o++] = '\t', k = 2; break;
		case '\\': out[o++] = '\\', k = 2; break;
		case 'x': {
			char h[3] = { 0, 0, 0 };
			if (i + 4 > n || !isxdigit((unsigned char)s[i + 2]) || !isxdigit((unsigned char)s[i + 3]))
				return -1;
			h[0] = s[i + 2], h[1] = s[i + 3];
			out[o++] = (uint8_t)strtoul(h, NULL, 16), k = 4;
			break;
		}
		default:
			if (!q || s[i + 1] != q)
				return -1;
			out[o++] = (uint8_t)q, k = 2;
		}
	}
	return (long)o;
}

static void check_text(const uint8_t *p, size_t n, size_t cap)
{
	char *dst = fuzz_alloc(cap);
	uint8_t *back;
	size_t len, took;
	long got;
	int q = cap & 1 ? '\'' : 0;
	len = vs_text_copy(dst, cap, p, n);
	CHECK(len < cap && len <= n && dst[len] == 0);
	CHECK(!memcmp(dst, p, len));
	/* it stops at a NUL or at the end of room or input, nowhere else */
	CHECK(len == n || len == cap - 1 || p[len] == 0);
	free(dst);
	if (cap < 4)
		return;
	dst = fuzz_alloc(cap);
	back = fuzz_alloc(n + 1);
	took = vs_esc(dst, cap, p, n, q);
	CHECK(took <= n && memchr(dst, 0, cap));
	len = strlen(dst);
	if (took < n) { /* cut: marked, and nothing of a cut escape left */
		CHECK(len >= 3 && !memcmp(dst + len - 3, "...", 3));
		len -= 3;
	}
	got = unescape(dst, len, q, back);
	CHECK(got == (long)took && !memcmp(back, p, took));
	free(back);
	free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vs_rd r;
	struct vs_wr w;
	const uint8_t *ops, *p;
	uint8_t *back;
	size_t nops, n, off = 0, i;
	int err = 0;

	check_hdr(data, size);
	if (size < 1)
		return 0;
	nops = data[0] % 32;
	if (nops > size - 1)
		nops = size - 1;
	ops = data + 1;
	p = data + 1 + nops;
	n = size - 1 - nops;
	r.p = p, r.n = n, r.err = 0;
	back = fuzz_alloc(n);
	w.p = back, w.n = 0, w.cap = n, w.err = 0;

	for (i = 0; i < nops; i++) {
		int op = ops[i] % 5;
		if (op == 4) { /* peer text, as in an ERROR frame */
			check_text(p + off, n - off, 1 + ops[i] / 5);
			continue;
		}
		if (op == 3) {
			const char *s = vs_rdstr(&r);
			const uint8_t *z = err ? NULL : memchr(p + off, 0, n - off);
			if (!z)
				err = 1;
			if (err) {
				CHECK(s == NULL);
			} else {
				CHECK(s == (const char *)(p + off));
				CHECK(fuzz_str_inside(s, p, n));
				vs_wrstr(&w, s);
				off = (size_t)(z - p) + 1;
			}
		} else {
			size_t k = (size_t)2 << op; /* 2, 4, 8 */
			uint64_t v = op == 0 ? vs_rd16(&r) : op == 1 ? vs_rd32(&r) : vs_rd64(&r);
			if (err || n - off < k)
				err = 1;
			if (err) {
				CHECK(v == 0);
			} else {
				uint64_t want = op == 0 ? vs_get16(p + off) : op == 1 ? vs_get32(p + off) : vs_get64(p + off);
				CHECK(v == want);
				if (op == 0)
					vs_wr16(&w, (uint16_t)v);
				else if (op == 1)
					vs_wr32(&w, (uint32_t)v);
				else
					vs_wr64(&w, v);
				off += k;
			}
		}
		/* an error sticks; the cursor never moves past the end */
		CHECK(r.err == err);
		if (!err)
			CHECK(r.p == p + off && r.n == n - off);
		CHECK(r.n <= n);
	}
	/* what was read, written back, is what was consumed */
	CHECK(!w.err && w.n == off && (off == 0 || memcmp(back, p, off) == 0));
	/* one byte more than the room left fails and writes nothing */
	{
		uint8_t one[9] = { 0 };
		size_t before = w.n;
		w.cap = w.n;
		vs_wrmem(&w, one, 1);
		CHECK(w.err && w.n == before);
	}
	free(back);
	return 0;
}
