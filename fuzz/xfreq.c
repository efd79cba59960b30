/*
 * xfreq - the file transfer request parser (transfer.h:
 * xf_request_parse), the agent's first look at a PUT or a GET: the two
 * share one payload, u32 flags, u32 hash, str path.
 *
 * On success the hash must be one we know, the path non-empty and inside
 * the payload with its NUL, and xf_request must rebuild the input byte
 * for byte (and refuse a buffer one byte too small).  The payload one
 * byte shorter or longer must then be refused.
 */
#include "fuzz.h"
#include "transfer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t flags = 0;
	int alg = 0, n;
	const char *path = NULL;
	uint8_t *b, *v;

	if (size > VS_FRAME_MAX)
		return 0;
	if (xf_request_parse(data, size, &flags, &alg, &path) < 0)
		return 0;

	CHECK(alg == XF_XXH64 || alg == XF_SHA256);
	CHECK(fuzz_str_inside(path, data, size) && *path);
	CHECK(path == (const char *)data + 8);

	b = fuzz_alloc(size);
	n = xf_request(b, size, flags, alg, path);
	CHECK(n >= 0 && (size_t)n == size && memcmp(b, data, size) == 0);
	CHECK(xf_request(b, size - 1, flags, alg, path) < 0);
	free(b);

	v = fuzz_dup(data, size - 1, 0);
	CHECK(xf_request_parse(v, size - 1, &flags, &alg, &path) < 0);
	free(v);
	v = fuzz_dup(data, size, 1);
	v[size] = 0;
	CHECK(xf_request_parse(v, size + 1, &flags, &alg, &path) < 0);
	free(v);
	return 0;
}
