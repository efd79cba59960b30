/*
 * exec - the EXEC request decoder (protocol.h: vs_exec_decode), the
 * agent's first look at a command the host sends.
 *
 * Input: one EXEC payload.  On success every string must lie inside the
 * payload with its NUL, the counts must be within VS_ARG_MAX/VS_ENV_MAX,
 * the vectors NULL-terminated, every env entry hold '=', and re-encoding
 * the decoded request must give back the input byte for byte (so nothing
 * was skipped or invented).  The same payload one byte shorter or one
 * byte longer must then be refused.
 */
#include "fuzz.h"

static struct vs_exec e; /* 10 KiB of pointers: not on the stack */

static size_t encode(const struct vs_exec *x, uint8_t *b, size_t cap)
{
	struct vs_wr w = { b, 0, cap, 0 };
	unsigned i;
	vs_wr32(&w, x->flags);
	vs_wr16(&w, x->rows);
	vs_wr16(&w, x->cols);
	vs_wr16(&w, (uint16_t)x->argc);
	vs_wr16(&w, (uint16_t)x->envc);
	vs_wrstr(&w, x->cwd);
	for (i = 0; i < x->argc; i++)
		vs_wrstr(&w, x->argv[i]);
	for (i = 0; i < x->envc; i++)
		vs_wrstr(&w, x->envv[i]);
	return w.err ? (size_t)-1 : w.n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *b, *shorter, *longer;
	unsigned i;

	if (size > VS_FRAME_MAX) /* a frame cannot be longer */
		return 0;
	if (vs_exec_decode(data, size, &e) < 0)
		return 0;

	CHECK(e.argc <= VS_ARG_MAX && e.envc <= VS_ENV_MAX);
	CHECK(e.argv[e.argc] == NULL && e.envv[e.envc] == NULL);
	CHECK(e.argc > 0 || (e.flags & VS_EXEC_LOGIN));
	CHECK(fuzz_str_inside(e.cwd, data, size));
	for (i = 0; i < e.argc; i++)
		CHECK(fuzz_str_inside(e.argv[i], data, size));
	for (i = 0; i < e.envc; i++) {
		CHECK(fuzz_str_inside(e.envv[i], data, size));
		CHECK(strchr(e.envv[i], '=') != NULL);
	}

	b = fuzz_alloc(size);
	CHECK(encode(&e, b, size) == size);
	CHECK(memcmp(b, data, size) == 0);
	free(b);

	/* truncated: the last string loses its NUL */
	shorter = fuzz_dup(data, size - 1, 0);
	CHECK(vs_exec_decode(shorter, size - 1, &e) < 0);
	free(shorter);
	/* oversized: a byte after the last string */
	longer = fuzz_dup(data, size, 1);
	longer[size] = 'x';
	CHECK(vs_exec_decode(longer, size + 1, &e) < 0);
	longer[size] = 0;
	CHECK(vs_exec_decode(longer, size + 1, &e) < 0);
	free(longer);
	return 0;
}
