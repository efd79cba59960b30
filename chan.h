/*
 * chan.h - one connection that carries frames, with bounded memory: the
 * frames the peer sent (the input), the frames for it (the queue), the
 * connection's half-close state, and the checks that make backpressure, as
 * dropbear's channels and tinyssh's channel_*isready do:
 *
 *   - the socket is read only while the input has room (vs_chan_events);
 *     a payload being handed on to a slow local sink (a command's stdin)
 *     stays where it is (vs_chan_hold), and the input fills up behind it,
 *     so the peer feels the sink through the kernel's flow control;
 *   - a local source (a command's output, our stdin) is read only while
 *     the queue can take a whole frame of it (vs_chan_fits), so a peer
 *     that reads slowly stops the source instead of growing our memory.
 *
 * A resumable stream (keep) outlives its connection: each side counts the
 * bytes of the other's stream it received whole (vs_chan_got) and says so
 * (ACK); what it sent stays kept until the peer acknowledged it
 * (vs_chan_ack), and a new connection sends again from where the peer
 * says it is (vs_chan_rewind): nothing lost, nothing repeated.
 *
 * The caller owns the storage: a channel and its two buffers may be
 * static, on a stack, or one of many in a table.  Nothing here is static
 * and nothing is allocated, so a process holds as many channels as it
 * has buffers for.  Single-header style, as protocol.h: the code comes
 * with VS_IMPLEMENTATION.
 */
#ifndef VS_CHAN_H
#define VS_CHAN_H

#include "protocol.h"

/* Two frames' worth: a whole frame can arrive (or be queued) behind one
 * that is still being used. */
#define VS_CHAN_BUF (2 * (VS_HDR + VS_FRAME_MAX))

/* half-close state (st) */
#define VS_CH_EOF 0x1u     /* the peer closed its side: read() returned 0 */
#define VS_CH_DEAD 0x2u    /* the peer reads no more (EPIPE, a reset): the
                              queue is dropped, and so is what is put after */
#define VS_CH_SHUT 0x4u    /* our side is closed: shutdown(SHUT_WR) */
#define VS_CH_PROBED 0x8u  /* the input is full, and poll was asked once
                              whether the peer closed (POLLRDHUP) */

struct vs_chan {
	int fd;
	unsigned st;            /* VS_CH_* */
	uint8_t *in;            /* from the peer: [ioff, ilen) not yet taken */
	size_t icap, ioff, ilen;
	uint8_t *out;           /* to the peer: [ooff, olen) not yet written */
	size_t ocap, ooff, olen;
	int keep;               /* resumable: [koff, ooff) is kept until acknowledged */
	size_t koff;
	uint64_t kpos;          /* the stream's byte at out[koff] */
	uint64_t rx;            /* bytes read from the peer, on every connection */
	const uint8_t *pend;    /* a taken payload still being handed on
	                         * (npend bytes left): no compaction under it */
	size_t npend;
};

void vs_chan_init(struct vs_chan *c, int fd, uint8_t *in, size_t icap, uint8_t *out, size_t ocap);
/* input */
size_t vs_chan_room(struct vs_chan *c);
ssize_t vs_chan_read(struct vs_chan *c);
int vs_chan_peek(struct vs_chan *c, size_t at, struct vs_hdr *h, const uint8_t **p);
size_t vs_chan_drop(struct vs_chan *c, size_t at, size_t n);
int vs_chan_take(struct vs_chan *c, struct vs_hdr *h, const uint8_t **p);
int vs_chan_recv(struct vs_chan *c, struct vs_hdr *h, const uint8_t **p);
void vs_chan_hold(struct vs_chan *c, const uint8_t *p, size_t n);
ssize_t vs_chan_pass(struct vs_chan *c, int fd);
/* output */
int vs_chan_fits(struct vs_chan *c, size_t n);
int vs_chan_put(struct vs_chan *c, uint16_t type, const void *p, size_t n);
uint8_t *vs_chan_data(struct vs_chan *c);
void vs_chan_commit(struct vs_chan *c, uint16_t type, size_t n);
ssize_t vs_chan_flush(struct vs_chan *c);
int vs_chan_drain(struct vs_chan *c);
void vs_chan_close(struct vs_chan *c, long ms);
/* resumable streams */
uint64_t vs_chan_got(struct vs_chan *c, int cut);
void vs_chan_ack(struct vs_chan *c, uint64_t pos);
int vs_chan_rewind(struct vs_chan *c, int fd, uint64_t pos);
/* readiness */
short vs_chan_events(struct vs_chan *c);
int vs_chan_probe(struct vs_chan *c, short revents);
/* forwarding */
int vs_chan_relay(struct vs_chan *c, int rfd, int wfd, struct vs_hdr *h, const uint8_t **p);

#ifdef VS_IMPLEMENTATION

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Either buffer may be NULL with a capacity of 0: a channel whose frames
 * are written by other means (the file transfer's batched writev). */
void vs_chan_init(struct vs_chan *c, int fd, uint8_t *in, size_t icap, uint8_t *out, size_t ocap)
{
	memset(c, 0, sizeof *c);
	c->fd = fd;
	c->in = in, c->icap = icap;
	c->out = out, c->ocap = ocap;
}

/* ---- input ---- */

/* Room to read more from the peer.  The frames not yet taken move to the
 * front only once the one at ioff might not fit whole where it is (a
 * large input then moves its partial frame once per its size, not once
 * per frame), and only while no held payload points into the buffer. */
size_t vs_chan_room(struct vs_chan *c)
{
	if (!c->npend) {
		if (c->ioff == c->ilen)
			c->ioff = c->ilen = 0;
		if (c->ioff && c->icap - c->ioff < VS_HDR + VS_FRAME_MAX) {
			memmove(c->in, c->in + c->ioff, c->ilen - c->ioff);
			c->ilen -= c->ioff;
			c->ioff = 0;
		}
	}
	return c->icap - c->ilen;
}

/* One read() into the room vs_chan_room made: its result.  0 is the
 * peer's EOF (VS_CH_EOF); with no room, -1 and EAGAIN, never a false 0. */
ssize_t vs_chan_read(struct vs_chan *c)
{
	ssize_t r;
	if (c->ilen == c->icap) {
		errno = EAGAIN;
		return -1;
	}
	r = read(c->fd, c->in + c->ilen, c->icap - c->ilen);
	if (r > 0)
		c->ilen += (size_t)r, c->rx += (uint64_t)r;
	else if (r == 0)
		c->st |= VS_CH_EOF;
	return r;
}

/* The frame at offset `at` (ioff, or further on when frames before it
 * wait their turn): 1 when it is whole (its payload at *p), 0 when more
 * must be read, -1 for a malformed header.  Nothing is taken. */
int vs_chan_peek(struct vs_chan *c, size_t at, struct vs_hdr *h, const uint8_t **p)
{
	int r = vs_hdr_parse(c->in + at, c->ilen - at, h);
	if (r <= 0)
		return r;
	if (c->ilen - at - VS_HDR < h->len)
		return 0;
	*p = c->in + at + VS_HDR;
	return 1;
}

/* Done with the n bytes at `at` (a frame peeked there); returns where the
 * next frame starts.  At ioff the frame is taken, and its payload stays
 * valid until the next vs_chan_room; further on it is cut out, so that
 * every byte after ioff is always a frame not yet seen or not yet done. */
size_t vs_chan_drop(struct vs_chan *c, size_t at, size_t n)
{
	if (at == c->ioff) {
		c->ioff += n;
		return at + n;
	}
	memmove(c->in + at, c->in + at + n, c->ilen - at - n);
	c->ilen -= n;
	return at;
}

/* The next frame, taken if it is whole: 1, 0 or -1 as vs_chan_peek. */
int vs_chan_take(struct vs_chan *c, struct vs_hdr *h, const uint8_t **p)
{
	int r = vs_chan_peek(c, c->ioff, h, p);
	if (r > 0)
		c->ioff += VS_HDR + h->len;
	return r;
}

/* The next frame, reading until it is whole (a blocking fd): its
 * payload's length, the payload at *p until the next read.  -1 with
 * errno: EPROTO for a malformed header; 0 when the peer closed (inside a
 * frame when ioff != ilen); else read()'s. */
int vs_chan_recv(struct vs_chan *c, struct vs_hdr *h, const uint8_t **p)
{
	for (;;) {
		int r = vs_chan_take(c, h, p);
		ssize_t k;
		if (r > 0)
			return (int)h->len;
		if (r < 0) {
			errno = EPROTO;
			return -1;
		}
		vs_chan_room(c);
		k = vs_chan_read(c);
		if (k > 0 || (k < 0 && errno == EINTR))
			continue;
		if (k == 0)
			errno = 0;
		return -1;
	}
}

/* A taken payload goes on to a local sink in pieces (vs_chan_pass): it
 * stays in place, and the input is not compacted, until all is passed. */
void vs_chan_hold(struct vs_chan *c, const uint8_t *p, size_t n)
{
	c->pend = p;
	c->npend = n;
}

/* One write() of the held payload to fd: its result. */
ssize_t vs_chan_pass(struct vs_chan *c, int fd)
{
	ssize_t r = write(fd, c->pend, c->npend);
	if (r > 0) {
		c->pend += r;
		c->npend -= (size_t)r;
	}
	return r;
}

/* ---- output ---- */

/* Free room in the queue, compacting when what is left to write (and
 * to keep) sits far in. */
static size_t vs_chan_qroom(struct vs_chan *c)
{
	size_t k = c->keep ? c->koff : c->ooff;
	if (k == c->olen)
		c->koff = c->ooff = c->olen = 0;
	/* kept, a frame and the room for what is not acknowledged yet */
	if (k && c->olen && c->ocap - c->olen < (c->keep ? c->ocap / 4 : VS_HDR + VS_FRAME_MAX)) {
		memmove(c->out, c->out + k, c->olen - k);
		c->olen -= k;
		c->ooff -= k;
		c->koff = 0;
	}
	return c->ocap - c->olen;
}

/* Would a frame of n payload bytes fit now?  A source is read only then. */
int vs_chan_fits(struct vs_chan *c, size_t n)
{
	return vs_chan_qroom(c) >= VS_HDR + n;
}

/* Queue a whole frame; -1 when it does not fit now.  A peer that reads no
 * more (VS_CH_DEAD) gets nothing, and that is no failure; a resumable
 * stream keeps it for the next connection. */
int vs_chan_put(struct vs_chan *c, uint16_t type, const void *p, size_t n)
{
	if ((c->st & VS_CH_DEAD) && !c->keep)
		return 0;
	if (!vs_chan_fits(c, n))
		return -1;
	vs_hdr_put(c->out + c->olen, type, (uint32_t)n);
	if (n)
		memcpy(c->out + c->olen + VS_HDR, p, n);
	c->olen += VS_HDR + n;
	return 0;
}

/* Where a frame's payload goes when it is read straight in: after
 * vs_chan_fits said it fits; vs_chan_commit adds its header. */
uint8_t *vs_chan_data(struct vs_chan *c)
{
	return c->out + c->olen + VS_HDR;
}

void vs_chan_commit(struct vs_chan *c, uint16_t type, size_t n)
{
	vs_hdr_put(c->out + c->olen, type, (uint32_t)n);
	c->olen += VS_HDR + n;
}

/* One write() of what is queued: its result.  A peer that reads no more
 * (EPIPE, ECONNRESET) makes the channel VS_CH_DEAD: nothing queued is
 * kept, and what it sent us may still be read. */
ssize_t vs_chan_flush(struct vs_chan *c)
{
	ssize_t r = write(c->fd, c->out + c->ooff, c->olen - c->ooff);
	if (r > 0)
		c->ooff += (size_t)r;
	if (r < 0 && (errno == EPIPE || errno == ECONNRESET)) {
		c->st |= VS_CH_DEAD;
		if (!c->keep)
			c->ooff = c->olen = 0;
	}
	return r;
}

/* Write all that is queued, blocking (the last words of a session). */
int vs_chan_drain(struct vs_chan *c)
{
	int r;
	vs_nonblock(c->fd, 0);
	r = vs_writeall(c->fd, c->out + c->ooff, c->olen - c->ooff);
	c->ooff = c->olen = 0;
	return r;
}

/* The last word is said: half-close, and read what the peer still sends
 * (stdin the command never read) until it closes, for at most ms, into
 * the input, which is done with.  Closing with unread data would reset
 * the connection, and a reset may take our last frames with it before
 * the peer has read them. */
void vs_chan_close(struct vs_chan *c, long ms)
{
	long deadline = vs_deadline(ms);
	shutdown(c->fd, SHUT_WR);
	c->st |= VS_CH_SHUT;
	vs_nonblock(c->fd, 1);
	while (vs_wait_by(c->fd, POLLIN, deadline) == 0) {
		ssize_t r = read(c->fd, c->in, c->icap);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			break;
	}
	close(c->fd);
	c->fd = -1;
}

/* ---- resumable streams ---- */

/* Bytes of the peer's stream received whole: all that was read, less a
 * frame cut short at the end; cut: the connection is gone, and so is
 * that part of a frame (the peer sends it again). */
uint64_t vs_chan_got(struct vs_chan *c, int cut)
{
	size_t at = c->ioff, tail;
	struct vs_hdr h;
	const uint8_t *p;
	while (vs_chan_peek(c, at, &h, &p) > 0)
		at += VS_HDR + h.len;
	tail = c->ilen - at;
	if (cut)
		c->ilen = at, c->rx -= tail;
	return c->rx - (cut ? 0 : tail);
}

/* The peer has our stream up to byte pos: what was kept before it goes. */
void vs_chan_ack(struct vs_chan *c, uint64_t pos)
{
	if (pos > c->kpos && pos - c->kpos <= c->ooff - c->koff) {
		c->koff += (size_t)(pos - c->kpos);
		c->kpos = pos;
	}
}

/* A new connection fd, whose peer has our stream up to byte pos: what
 * follows is sent again from there.  -1 when that is not what we kept
 * (the channel is left as it was). */
int vs_chan_rewind(struct vs_chan *c, int fd, uint64_t pos)
{
	if (pos < c->kpos || pos - c->kpos > c->ooff - c->koff)
		return -1;
	c->koff += (size_t)(pos - c->kpos);
	c->kpos = pos;
	c->ooff = c->koff;
	c->fd = fd;
	c->st = 0;
	return 0;
}

/* ---- readiness ---- */

/* What to poll the connection for: POLLIN while the input has room,
 * POLLOUT while frames are queued.  A full input cannot see the peer's
 * EOF: then POLLRDHUP, once (vs_chan_probe). */
short vs_chan_events(struct vs_chan *c)
{
	short ev = c->olen > c->ooff ? POLLOUT : 0;
	if (vs_chan_room(c)) {
		c->st &= ~VS_CH_PROBED;
		return (short)(ev | POLLIN);
	}
	return (short)(ev | (c->st & VS_CH_PROBED ? 0 : POLLRDHUP));
}

/* After poll: 1 when the peer stopped sending while our input is full.
 * vsock reports a peer that closed with unread data pending only this
 * way (no POLLHUP), and a half-close looks the same: the caller writes
 * something (an empty frame) whose failure tells them apart, as writing
 * to a peer that is gone fails with EPIPE. */
int vs_chan_probe(struct vs_chan *c, short revents)
{
	if (!(revents & POLLRDHUP) || (c->st & VS_CH_PROBED))
		return 0;
	c->st |= VS_CH_PROBED;
	return 1;
}

/* ---- forwarding ---- */

/* Relay a forwarded connection (PROTOCOL.md 5.6): what rfd gives goes to
 * the peer as DATA frames, rfd's EOF as one EOF frame; the peer's DATA is
 * written to wfd, its EOF becomes shutdown(wfd, SHUT_WR) (a close, for a
 * pipe).  rfd and wfd are one socket, or stdin and stdout.  Each side is
 * read only while the other can take a whole frame of it (vs_chan_fits,
 * vs_chan_hold): memory stays at the channel's buffers however slow a
 * reader is.  0 when both EOFs have passed and all is written; 1 with
 * *h and *p when the peer sent another frame (an ERROR); -1 with errno
 * for a failure on either side, 0 in errno when the peer closed without
 * its EOF: either way the caller closes both at once, and the peer, or
 * the local end, sees the connection break rather than end. */
int vs_chan_relay(struct vs_chan *c, int rfd, int wfd, struct vs_hdr *h, const uint8_t **p)
{
	int sent = 0, got = 0; /* our EOF queued; the peer's passed on */
	vs_nonblock(c->fd, 1);
	vs_nonblock(rfd, 1);
	vs_nonblock(wfd, 1);
	for (;;) {
		struct pollfd f[3] = { { -1, 0, 0 }, { -1, POLLIN, 0 }, { -1, POLLOUT, 0 } };
		ssize_t r;
		while (!c->npend && !got && (r = vs_chan_take(c, h, p)) != 0) {
			if (r < 0) {
				errno = EPROTO;
				return -1;
			}
			if (h->type == VS_FWD_EOF) {
				got = 1;
				if (shutdown(wfd, SHUT_WR) < 0)
					close(wfd);
			} else if (h->type != VS_FWD_DATA) {
				return 1;
			} else {
				vs_chan_hold(c, *p, h->len);
			}
		}
		if (sent && got && c->ooff == c->olen)
			return 0;
		/* the peer closed, and what it sent before is passed on: without
		 * its EOF, it broke off */
		if (!got && !c->npend && c->st & VS_CH_EOF) {
			errno = 0;
			return -1;
		}
		/* each fd only while it can make progress: POLLHUP and POLLERR
		 * come whatever was asked, and a source that cannot be read
		 * into a whole frame now must not be read at all */
		f[0].events = (short)((vs_chan_room(c) && !(c->st & VS_CH_EOF) ? POLLIN : 0) |
		                      (c->olen > c->ooff ? POLLOUT : 0));
		if (f[0].events)
			f[0].fd = c->fd;
		if (!sent && vs_chan_fits(c, VS_FRAME_MAX))
			f[1].fd = rfd;
		if (c->npend)
			f[2].fd = wfd;
		r = poll(f, 3, -1);
		if (f[0].revents & POLLOUT)
			r = vs_chan_flush(c);
		if (r >= 0 && f[0].revents & (POLLIN | POLLHUP | POLLERR))
			r = vs_chan_read(c);
		if (r >= 0 && f[1].revents) {
			r = read(rfd, vs_chan_data(c), VS_FRAME_MAX);
			if (r > 0)
				vs_chan_commit(c, VS_FWD_DATA, (size_t)r);
			else if (r == 0)
				sent = 1, vs_chan_put(c, VS_FWD_EOF, NULL, 0);
		}
		if (r >= 0 && f[2].revents)
			r = vs_chan_pass(c, wfd);
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
	}
}

#endif /* VS_IMPLEMENTATION */
#endif /* VS_CHAN_H */
