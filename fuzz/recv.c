/*
 * recv - the blocking frame reader and writer (protocol.h: vs_recv,
 * vs_readall, vs_send, vs_writevall) over a descriptor whose reads and
 * writes the input controls: every read and write moves as many bytes as
 * the input says (down to one) or fails with EINTR, as the kernel may.
 *
 * Input: byte 0 picks the receive buffer's size, bytes 1..8 seed the
 * schedule of short counts and EINTRs, the rest is what the peer sent.
 * Frames are read until vs_recv fails; each result is compared with a
 * model of the stream (a frame, clean EOF with errno 0, EPROTO for a bad
 * header or EOF inside a frame, EMSGSIZE for a frame over the buffer),
 * and each frame read is sent back with vs_send through short writes and
 * must come out byte for byte as it went in.
 */
#include <errno.h>
#include <sys/types.h>
#include <sys/uio.h>

/* protocol.h's code calls read() and writev(): here they are ours */
ssize_t fuzz_read(int fd, void *buf, size_t n);
ssize_t fuzz_writev(int fd, const struct iovec *v, int cnt);
#define read fuzz_read
#define writev fuzz_writev
#include "fuzz.h"
#undef read
#undef writev

#define FUZZ_FD 1000 /* never opened: only fuzz_read/fuzz_writev see it */

static const uint8_t *in_p;
static size_t in_n, in_off;
static uint8_t out_b[VS_HDR + VS_FRAME_MAX];
static size_t out_n;
static uint64_t sched;
static int last_eintr;

/* the next count for a call moving n bytes: 0 means EINTR */
static size_t fuzz_count(size_t n)
{
	uint64_t r = fuzz_rnd64(&sched);
	if (r % 8 == 0 && !last_eintr) {
		last_eintr = 1;
		return 0;
	}
	last_eintr = 0;
	r >>= 3;
	switch (r % 4) {
	case 0: return 1;
	case 1: return 1 + (size_t)((r >> 2) % n);
	default: return n;
	}
}

ssize_t fuzz_read(int fd, void *buf, size_t n)
{
	size_t k;
	CHECK(fd == FUZZ_FD);
	if (n == 0 || in_off == in_n)
		return 0;
	k = fuzz_count(n);
	if (k == 0) {
		errno = EINTR;
		return -1;
	}
	if (k > in_n - in_off)
		k = in_n - in_off;
	memcpy(buf, in_p + in_off, k);
	in_off += k;
	return (ssize_t)k;
}

ssize_t fuzz_writev(int fd, const struct iovec *v, int cnt)
{
	size_t total = 0, k, done = 0;
	int i;
	CHECK(fd == FUZZ_FD && cnt > 0);
	for (i = 0; i < cnt; i++)
		total += v[i].iov_len;
	CHECK(total > 0 && total <= sizeof out_b - out_n);
	k = fuzz_count(total);
	if (k == 0) {
		errno = EINTR;
		return -1;
	}
	for (i = 0; i < cnt && done < k; i++) {
		size_t m = v[i].iov_len < k - done ? v[i].iov_len : k - done;
		memcpy(out_b + out_n, v[i].iov_base, m);
		out_n += m, done += m;
	}
	return (ssize_t)k;
}

static const size_t caps[8] = { 0, 1, 7, 8, 100, 4096, 65535, 65536 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t payload[VS_FRAME_MAX];
	size_t cap, pos;

	if (size < 9)
		return 0;
	cap = caps[data[0] % 8];
	sched = fuzz_seed64(data + 1);
	last_eintr = 0;
	in_p = data + 9;
	in_n = size - 9;
	in_off = 0;

	for (pos = 0;;) {
		struct vs_hdr h, mh;
		size_t left = in_n - pos;
		int r, mr;
		uint8_t *copy;

		errno = 12345;
		r = vs_recv(FUZZ_FD, &h, payload, cap);
		if (left == 0) {
			CHECK(r == -1 && errno == 0);
			break;
		}
		mr = vs_hdr_parse(in_p + pos, left, &mh);
		if (mr <= 0) { /* torn or bad header */
			CHECK(r == -1 && errno == EPROTO);
			break;
		}
		if (mh.len > cap) {
			CHECK(r == -1 && errno == EMSGSIZE);
			break;
		}
		if (left - VS_HDR < mh.len) {
			CHECK(r == -1 && errno == EPROTO);
			break;
		}
		CHECK(r >= 0 && (size_t)r == mh.len && h.len == mh.len && h.type == mh.type && h.flags == 0);
		CHECK(mh.len == 0 || memcmp(payload, in_p + pos + VS_HDR, mh.len) == 0);
		CHECK(in_off == pos + VS_HDR + mh.len); /* nothing read beyond the frame */

		/* the same frame out again, through short writes and EINTR,
		 * from a copy of exactly its size */
		copy = fuzz_dup(payload, mh.len, 0);
		out_n = 0;
		CHECK(vs_send(FUZZ_FD, h.type, copy, mh.len) == 0);
		CHECK(out_n == VS_HDR + mh.len && memcmp(out_b, in_p + pos, out_n) == 0);
		free(copy);
		pos += VS_HDR + mh.len;
	}
	return 0;
}
