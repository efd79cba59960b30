/*
 * fuzz.h - what every libFuzzer target in fuzz/ shares: the product's
 * single-header code (VS_IMPLEMENTATION, so static helpers are reachable
 * too) and CHECK, which aborts on a broken invariant so that libFuzzer
 * records the input as a crash.
 *
 * A target is one file fuzz/NAME.c defining LLVMFuzzerTestOneInput, plus
 * one line "NAME MAX_LEN" in fuzz/targets, plus seeds in fuzz/corpus/NAME/.
 * Inputs arrive in a heap block of exactly their size, so under
 * AddressSanitizer a read one byte past the end is a crash.
 */
#ifndef FUZZ_H
#define FUZZ_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define VS_IMPLEMENTATION
#include "protocol.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) ((c) ? (void)0 : fuzz_fail(#c, __FILE__, __LINE__))

static void fuzz_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
	abort();
}

/* A heap copy of p[0..n) of exactly n bytes (plus `extra` more), so that
 * ASan sees an overrun of a truncated or extended variant too. */
static uint8_t *fuzz_dup(const uint8_t *p, size_t n, size_t extra)
{
	uint8_t *q = malloc(n + extra ? n + extra : 1);
	if (!q)
		abort();
	if (n)
		memcpy(q, p, n);
	return q;
}

/* p points into [base, base+n) and the string there ends inside it. */
static int fuzz_str_inside(const char *s, const uint8_t *base, size_t n)
{
	const uint8_t *u = (const uint8_t *)s;
	return s && u >= base && u < base + n && memchr(u, 0, (size_t)(base + n - u));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
