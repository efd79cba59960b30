/*
 * protocol.h - the contract between vsock-agent (guest) and vsock-shell
 * (host): the framed wire format, its bounded decoder, the legacy limits,
 * and the address syntax both programs accept.  PROTOCOL.md documents the
 * same thing for humans; keep the two in step.
 *
 * Single-header style: every file may include it for the declarations;
 * exactly one file per program defines VS_IMPLEMENTATION before including
 * it to get the code.
 */
#ifndef VS_PROTOCOL_H
#define VS_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The host opens every framed connection with these four bytes.  Read as a
 * little-endian u16 the first two are 0x56ff = 22271 > 2048, so a legacy
 * persistent agent can never take them for a length prefix; 0xff never
 * starts a UTF-8 text command, so a disposable one cannot either. */
#define VS_MAGIC "\377VSH"
#define VS_MAGIC_LEN 4
#define VS_VERSION 3         /* 3: proofs bound to the transcript, direction and CID */

#define VS_HDR 8             /* u32 len, u16 type, u16 flags (0) */
#define VS_FRAME_MAX 65536   /* payload bytes; the largest virtio-vsock packet */
#define VS_LEGACY_MAX 2048   /* vsock_guest_exec's command limit */

/* Dial mode: a reserved port, so that only a privileged host process
 * can listen where the agents dial (PROTOCOL.md 3.2).  Listen mode keeps
 * vsock_guest_exec's 1024; there the controller's source port proves. */
#define VS_PORT_DIAL 1023
#define VS_PORT_LISTEN 1024
#define VS_PORT_RESERVED 1023 /* ports up to this one need CAP_NET_BIND_SERVICE */
#define VS_CID_ANY 0xffffffffu
#define VS_CID_LOCAL 1u
#define VS_CID_HOST 2u

enum vs_type {
	VS_HELLO = 1,      /* u16 version, u16 flags, u32 caps, u64 token, fields */
	VS_ERROR = 2,      /* u32 code, text */
	VS_PING = 3,       /* u64 cookie */
	VS_PONG = 4,       /* u64 cookie */
	VS_OPEN = 5,       /* u64 token: control connection asks for a dial-back */
	VS_AUTH = 6,       /* MAC[32], then (agent) fields */
	VS_BYE = 7,        /* empty: the host is done with the agent (release) */
	VS_ENDED = 8,      /* u64 token: the dial-back session of this token ended */
	VS_STAGE = 9,      /* u32 stage, u64 uptime ms, text: a provisioning stage (agent to host) */
	VS_EXEC = 16,      /* see vs_exec below */
	VS_STDIN = 17,     /* bytes */
	VS_STDIN_EOF = 18, /* empty */
	VS_STDOUT = 19,    /* bytes */
	VS_STDERR = 20,    /* bytes */
	VS_EXIT = 21,      /* u32 how, u32 value */
	VS_SIGNAL = 22,    /* u32 signal number */
	VS_WINSIZE = 23,   /* u16 rows, u16 cols, u16 xpixel, u16 ypixel */
	VS_PUT = 32,       /* u32 flags, u32 hash, str destination (upload) */
	VS_GET = 33,       /* u32 flags, u32 hash, str source (download) */
	VS_STAT = 34,      /* an entry: see transfer.h and PROTOCOL.md */
	VS_DATA = 35,      /* file content */
	VS_HOLE = 36,      /* u64 length of a hole in a sparse file */
	VS_END = 37,       /* u32 hash, u32 0, u64 length, digest */
	VS_OK = 38,        /* empty: the receiver accepted an entry */
	VS_DONE = 39,      /* empty: the sender has no more entries */
	VS_POWER = 40,     /* u32 how (VS_POWER_*): power the guest off, or reboot it */
	VS_SESSIONS = 41,  /* host: empty (list them); agent: the sessions, each a u16 length and fields */
	VS_KILL = 42,      /* u8 id[8], u32 signal: signal a session of the agent */
	VS_SESSION = 43,   /* agent: u8 id[8], u32 linger: this session outlives its connection */
	VS_ATTACH = 44,    /* host: u8 id[8], u64 have: carry on that session here */
	VS_RESUME = 45,    /* agent: u64 got, u64 from: where both streams go on */
	VS_ACK = 46,       /* u64: bytes of the peer's stream received whole */
	/* forwarding (PROTOCOL.md 5.6); 43-46 are the sessions' */
	VS_FWD = 60,       /* u32 flags (VS_FWD_*), u16 family, u16 port, address */
	VS_FWD_ACCEPTED = 61, /* empty: a -R listener took a connection; claim it */
	VS_FWD_DATA = 62,  /* bytes of a forwarded connection, either way */
	VS_FWD_EOF = 63,   /* empty: the sender's side shut its writing half */
};

/* capability bits in HELLO: what this agent serves */
#define VS_CAP_EXEC 0x1u     /* commands without a pty */
#define VS_CAP_PTY 0x2u      /* sessions on a pty (shells) */
#define VS_CAP_PUT 0x4u      /* uploads */
#define VS_CAP_GET 0x8u      /* downloads */
#define VS_CAP_DIALBACK 0x10u
#define VS_CAP_POWER 0x20u   /* power requests */
#define VS_CAP_SESSIONS 0x40u /* lists its sessions and kills one (SESSIONS, KILL) */
#define VS_CAP_RESUME 0x80u  /* sessions outlive their connection (SESSION, ATTACH) */
#define VS_CAP_FORWARD 0x100u /* forwards connections (FWD) */
#define VS_CAP_ALL 0x1ffu
#define VS_SESSION_ID 8       /* bytes of a session id; shown as 16 hex digits */
#define VS_HAVE_ANY (~(uint64_t)0) /* ATTACH: from where the last client stopped */
/* SESSIONS: an entry's state */
#define VS_SS_ALONE 0x1u      /* no client attached */
#define VS_SS_EXITED 0x2u     /* the command has exited; status holds how */

/* HELLO flags */
#define VS_HF_KEY 0x1u       /* host: holds a key; agent: send AUTH now */
#define VS_HF_KERNEL 0x2u    /* agent: admitted by the kernel's proof */
#define VS_HF_OPEN 0x4u      /* agent: runs without authentication */
#define VS_HF_STANDBY 0x8u   /* host (control): keep a dial-back ready for me;
                                agent (dial-back): this is that one, ahead of an OPEN */
#define VS_HF_STAGES 0x10u   /* host (control): send me STAGE reports */
#define VS_HF_REPORT 0x20u   /* agent (control): this connection only reports stages */

/* HELLO fields: u16 tag, u16 length, bytes */
enum vs_field {
	VS_F_SOFTWARE = 1,   /* text: "vsock-agent 0.2" */
	VS_F_NONCE = 2,      /* VS_NONCE_LEN bytes */
	VS_F_HOSTNAME = 3,   /* text: the guest's facts, shown, never trusted */
	VS_F_KERNEL = 4,
	VS_F_MACHINE_ID = 5,
	VS_F_BOOT_ID = 6,
	VS_F_CID = 7,        /* u32: the guest's CID on this connection, as the sender sees it */
	VS_F_PATH = 8,       /* text: the Unix socket path this connection reached, as the sender sees it */
	VS_F_BOOT = 9,       /* u32 flags (VS_BOOT_*), u64 uptime in ms: where the agent runs */
};
#define VS_NONCE_LEN 32
#define VS_BOOT_INITRAMFS 0x1u /* the agent runs in an initramfs */
#define VS_BOOT_INIT 0x2u      /* the agent is the guest's init: PID 1 is its init section */

/* provisioning stages (STAGE), as they happen */
enum vs_stage {
	VS_ST_INITRAMFS = 1, /* the agent's init entered the initramfs */
	VS_ST_MODULES,       /* the vsock modules are loaded */
	VS_ST_WAITING,       /* the agent waits for the host */
	VS_ST_RELEASED,      /* a host released the agent */
	VS_ST_SWITCH_ROOT,   /* switch_root to the root, its init next */
	VS_ST_FAILED,        /* something failed: the text says what */
	VS_ST_ROOT,          /* the agent's init started in a root, not an initramfs */
};
#define VS_POWER_OFF 1u
#define VS_POWER_REBOOT 2u
/* EXEC flags */
#define VS_EXEC_SHELL 0x1u  /* argv[0] is a string for the user's shell -c */
#define VS_EXEC_PTY 0x2u    /* run on a pseudo-terminal */
#define VS_EXEC_LOGIN 0x4u  /* no argv: the login shell */
#define VS_EXEC_DETACH 0x8u /* outlive the connection: the host acknowledges (ACK) and may ATTACH */

/* FWD: the family is Linux's AF_UNIX (1), AF_INET (2) or AF_INET6 (10),
 * or 0: claim the connection a listener took, the address its id */
#define VS_FWD_LISTEN 0x1u  /* flag: listen there (-R); the answer is OK with the listener's id */
#define VS_FWD_ID 8         /* bytes of a listener's id */

/* EXIT how */
#define VS_EXITED 0u
#define VS_SIGNALED 1u

/* ERROR codes */
enum vs_err {
	VS_E_PROTO = 1,    /* malformed or unexpected frame */
	VS_E_VERSION = 2,  /* unsupported protocol version */
	VS_E_UNKNOWN = 3,  /* unknown message type */
	VS_E_EXEC = 4,     /* could not start the command */
	VS_E_IO = 5,       /* other I/O failure */
	VS_E_NOENT = 6,
	VS_E_ACCES = 7,
	VS_E_ISDIR = 8,
	VS_E_NOSPC = 9,
	VS_E_NAMETOOLONG = 10,
	VS_E_EXIST = 11,
	VS_E_NOTDIR = 12,
	VS_E_HASH = 13,    /* content hash mismatch */
	VS_E_CHANGED = 14, /* file changed while being read */
	VS_E_BUSY = 15,
	VS_E_AUTH = 16,    /* not authenticated, or a proof failed */
	VS_E_DENIED = 17,  /* the agent's configuration denies this operation */
	VS_E_TIMEOUT = 18, /* a time limit passed */
	VS_E_FAILED = 19,  /* the hub: the guest reported a failed stage */
};

/* A HELLO, decoded.  Text fields arrive as the peer sent them, cut to
 * their buffer: whoever shows one escapes it (vs_esc). */
struct vs_hello {
	uint16_t version, flags;
	uint32_t caps;
	uint64_t token;
	int has_nonce, has_cid, has_boot;
	uint8_t nonce[VS_NONCE_LEN];
	uint32_t cid, boot;
	uint64_t uptime;  /* has_boot: the agent's boot flags and uptime (ms) */
	char path[108];  /* "": none */
	char software[64], hostname[65], kernel[65], machine_id[40], boot_id[40];
};

/* A parsed frame header. */
struct vs_hdr {
	uint32_t len;
	uint16_t type;
	uint16_t flags;
};

/* Bounded little-endian reader over one payload.  Any overrun sets err and
 * returns zeros / NULL, so callers check err once at the end. */
struct vs_rd {
	const uint8_t *p;
	size_t n;
	int err;
};

/* Bounded writer into a caller-owned buffer. */
struct vs_wr {
	uint8_t *p;
	size_t n, cap;
	int err;
};

/* Execution request, decoded.  Strings point into the frame buffer. */
#define VS_ARG_MAX 1024
#define VS_ENV_MAX 256
struct vs_exec {
	uint32_t flags;
	uint16_t rows, cols;
	const char *cwd;
	unsigned argc, envc;
	const char *argv[VS_ARG_MAX + 1];
	const char *envv[VS_ENV_MAX + 1];
};

/* struct sockaddr_vm from <linux/vm_sockets.h>, a fixed kernel ABI, spelled
 * out here because musl's toolchain ships no kernel headers. */
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
struct vs_sockaddr_vm {
	unsigned short svm_family;
	unsigned short svm_reserved1;
	unsigned int svm_port;
	unsigned int svm_cid;
	unsigned char svm_zero[4];
};

enum vs_addr_kind { VS_ADDR_VSOCK = 1, VS_ADDR_UNIX, VS_ADDR_HYBRID };

struct vs_addr {
	int kind;
	uint32_t cid, port;
	char path[108];
};

/* ---- declarations ---- */
void vs_put16(uint8_t *p, uint16_t v);
void vs_put32(uint8_t *p, uint32_t v);
void vs_put64(uint8_t *p, uint64_t v);
uint16_t vs_get16(const uint8_t *p);
uint32_t vs_get32(const uint8_t *p);
uint64_t vs_get64(const uint8_t *p);

int vs_hdr_parse(const uint8_t *b, size_t n, struct vs_hdr *h);
void vs_hdr_put(uint8_t *b, uint16_t type, uint32_t len);

uint16_t vs_rd16(struct vs_rd *r);
uint32_t vs_rd32(struct vs_rd *r);
uint64_t vs_rd64(struct vs_rd *r);
const char *vs_rdstr(struct vs_rd *r);
void vs_wr16(struct vs_wr *w, uint16_t v);
void vs_wr32(struct vs_wr *w, uint32_t v);
void vs_wr64(struct vs_wr *w, uint64_t v);
void vs_wrstr(struct vs_wr *w, const char *s);
void vs_wrmem(struct vs_wr *w, const void *s, size_t n);

int vs_exec_decode(const uint8_t *p, size_t n, struct vs_exec *e);

struct iovec;
#define VS_NEVER (-1L)     /* a deadline that never comes */
long vs_now_ms(void);
long vs_deadline(long ms);
int vs_ms_left(long deadline);
int vs_wait_by(int fd, short ev, long deadline);
ssize_t vs_readall(int fd, void *buf, size_t n);
ssize_t vs_readall_by(int fd, void *buf, size_t n, long deadline);
int vs_writeall(int fd, const void *buf, size_t n);
int vs_writevall(int fd, struct iovec *v, int cnt);
int vs_send(int fd, uint16_t type, const void *payload, size_t len);
int vs_recv(int fd, struct vs_hdr *h, uint8_t *payload, size_t cap);
int vs_recv_by(int fd, struct vs_hdr *h, uint8_t *payload, size_t cap, long deadline);
void vs_fields_put(struct vs_wr *w, const struct vs_hello *h);
size_t vs_hello_encode(uint8_t *b, size_t cap, const struct vs_hello *h);
int vs_fields_decode(const uint8_t *p, size_t n, struct vs_hello *h);
int vs_hello_decode(const uint8_t *p, size_t n, struct vs_hello *h);
int vs_send_error(int fd, uint32_t code, const char *text);
int vs_error_text(const uint8_t *p, size_t n, uint32_t dflt, uint32_t *code, char *t, size_t cap);
size_t vs_text_copy(char *dst, size_t cap, const uint8_t *src, size_t n);
#define VS_NOT_UTF8 0xffffffffu
uint32_t vs_utf8(const uint8_t *s, size_t n, size_t *len);
int vs_shown(uint32_t c);
size_t vs_esc(char *dst, size_t cap, const void *src, size_t n, int quote);

int vs_addr_parse(const char *s, struct vs_addr *a);
int vs_port_parse(const char *s, uint32_t *port);
int vs_cid_parse(const char *s, uint32_t *cid);
const char *vs_addr_str(const struct vs_addr *a, char *buf, size_t n);
int vs_connect(const struct vs_addr *a);
int vs_connect_fd(int fd, const struct vs_addr *a);
uint32_t vs_bind_reserved(int fd, uint32_t start);
void vs_vsock_buffer(int fd);
int vs_listen(const struct vs_addr *a);
const char *vs_listen_why(int err);
void vs_nonblock(int fd, int on);
const char *vs_strerror(int err);
void vs_unix_link(int fd, char *path, size_t cap);
int vs_link_differs(const struct vs_hello *a, const struct vs_hello *b);

/* A directory's entries by getdents64, with no malloc (opendir would
 * bring it into the agent) and no DIR: vs_dir_next gives each name but
 * "." and "..", then NULL with errno 0 at the end, or with errno set. */
struct vs_dir {
	int fd;
	long n, off;
	char b[4096];
};
void vs_dir_init(struct vs_dir *d, int fd);
const char *vs_dir_next(struct vs_dir *d);

#ifdef VS_IMPLEMENTATION

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

void vs_put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
void vs_put32(uint8_t *p, uint32_t v) { vs_put16(p, v); vs_put16(p + 2, v >> 16); }
void vs_put64(uint8_t *p, uint64_t v) { vs_put32(p, v); vs_put32(p + 4, v >> 32); }
uint16_t vs_get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
uint32_t vs_get32(const uint8_t *p) { return vs_get16(p) | (uint32_t)vs_get16(p + 2) << 16; }
uint64_t vs_get64(const uint8_t *p) { return vs_get32(p) | (uint64_t)vs_get32(p + 4) << 32; }

/* 0: need more bytes; 1: header complete and valid; -1: invalid (length
 * over the maximum or reserved flags set).  Checked before anything is
 * allocated or copied. */
int vs_hdr_parse(const uint8_t *b, size_t n, struct vs_hdr *h)
{
	if (n < VS_HDR)
		return 0;
	h->len = vs_get32(b);
	h->type = vs_get16(b + 4);
	h->flags = vs_get16(b + 6);
	if (h->len > VS_FRAME_MAX || h->flags != 0 || h->type == 0)
		return -1;
	return 1;
}

void vs_hdr_put(uint8_t *b, uint16_t type, uint32_t len)
{
	vs_put32(b, len);
	vs_put16(b + 4, type);
	vs_put16(b + 6, 0);
}

static const uint8_t *vs_rdtake(struct vs_rd *r, size_t k)
{
	const uint8_t *p = r->p;
	if (r->err || r->n < k) {
		r->err = 1;
		return NULL;
	}
	r->p += k;
	r->n -= k;
	return p;
}

uint16_t vs_rd16(struct vs_rd *r) { const uint8_t *p = vs_rdtake(r, 2); return p ? vs_get16(p) : 0; }
uint32_t vs_rd32(struct vs_rd *r) { const uint8_t *p = vs_rdtake(r, 4); return p ? vs_get32(p) : 0; }
uint64_t vs_rd64(struct vs_rd *r) { const uint8_t *p = vs_rdtake(r, 8); return p ? vs_get64(p) : 0; }

/* A NUL-terminated string that must end inside the payload. */
const char *vs_rdstr(struct vs_rd *r)
{
	const uint8_t *z;
	if (r->err)
		return NULL;
	z = memchr(r->p, 0, r->n);
	if (!z) {
		r->err = 1;
		return NULL;
	}
	return (const char *)vs_rdtake(r, (size_t)(z - r->p) + 1);
}

void vs_wrmem(struct vs_wr *w, const void *s, size_t n)
{
	if (w->err || w->cap - w->n < n) {
		w->err = 1;
		return;
	}
	memcpy(w->p + w->n, s, n);
	w->n += n;
}

void vs_wr16(struct vs_wr *w, uint16_t v) { uint8_t b[2]; vs_put16(b, v); vs_wrmem(w, b, 2); }
void vs_wr32(struct vs_wr *w, uint32_t v) { uint8_t b[4]; vs_put32(b, v); vs_wrmem(w, b, 4); }
void vs_wr64(struct vs_wr *w, uint64_t v) { uint8_t b[8]; vs_put64(b, v); vs_wrmem(w, b, 8); }
void vs_wrstr(struct vs_wr *w, const char *s) { vs_wrmem(w, s, strlen(s) + 1); }

/* EXEC: u32 flags, u16 rows, u16 cols, u16 argc, u16 envc, then
 * NUL-terminated strings: cwd, argv[argc], env[envc]. */
int vs_exec_decode(const uint8_t *p, size_t n, struct vs_exec *e)
{
	struct vs_rd r = { p, n, 0 };
	unsigned i;

	e->flags = vs_rd32(&r);
	e->rows = vs_rd16(&r);
	e->cols = vs_rd16(&r);
	e->argc = vs_rd16(&r);
	e->envc = vs_rd16(&r);
	if (r.err || e->argc > VS_ARG_MAX || e->envc > VS_ENV_MAX)
		return -1;
	e->cwd = vs_rdstr(&r);
	for (i = 0; i < e->argc; i++)
		e->argv[i] = vs_rdstr(&r);
	for (i = 0; i < e->envc; i++) {
		e->envv[i] = vs_rdstr(&r);
		if (e->envv[i] && !strchr(e->envv[i], '='))
			return -1;
	}
	e->argv[e->argc] = NULL;
	e->envv[e->envc] = NULL;
	if (r.err || r.n != 0)
		return -1;
	if (!(e->flags & VS_EXEC_LOGIN) && e->argc == 0)
		return -1;
	return 0;
}

long vs_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long)t.tv_sec * 1000L + t.tv_nsec / 1000000;
}

/* The deadline ms from now (VS_NEVER for a negative ms). */
long vs_deadline(long ms)
{
	return ms < 0 ? VS_NEVER : vs_now_ms() + ms;
}

/* poll's timeout for a deadline: -1 for none, 0 once it has passed */
int vs_ms_left(long deadline)
{
	long left = deadline - vs_now_ms();
	return deadline == VS_NEVER ? -1 : left <= 0 ? 0 : left > 0x7fffffffL ? 0x7fffffff : (int)left;
}

/* Wait until fd is ready or the deadline has passed (ETIMEDOUT).  A
 * deadline is the whole budget of an operation, not of one read: a peer
 * sending a byte now and then cannot stretch it. */
int vs_wait_by(int fd, short ev, long deadline)
{
	struct pollfd p = { fd, ev, 0 };
	for (;;) {
		int left = vs_ms_left(deadline), r;
		if (!left) {
			errno = ETIMEDOUT;
			return -1;
		}
		r = poll(&p, 1, left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static int vs_wait(int fd, short ev)
{
	return vs_wait_by(fd, ev, VS_NEVER);
}

/* Read exactly n bytes by the deadline.  Returns n, or the short count at
 * EOF, or -1 (ETIMEDOUT when the deadline passed). */
ssize_t vs_readall_by(int fd, void *buf, size_t n, long deadline)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r;
		/* blocking fds too: read only what poll says is there */
		if (deadline != VS_NEVER && vs_wait_by(fd, POLLIN, deadline) < 0)
			return -1;
		r = read(fd, (char *)buf + got, n - got);
		if (r > 0) {
			got += (size_t)r;
		} else if (r == 0) {
			break;
		} else if (errno == EAGAIN) {
			if (vs_wait_by(fd, POLLIN, deadline) < 0)
				return -1;
		} else if (errno != EINTR) {
			return -1;
		}
	}
	return (ssize_t)got;
}

ssize_t vs_readall(int fd, void *buf, size_t n)
{
	return vs_readall_by(fd, buf, n, VS_NEVER);
}

int vs_writeall(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = write(fd, (const char *)buf + done, n - done);
		if (r > 0) {
			done += (size_t)r;
		} else if (r < 0 && errno == EAGAIN) {
			if (vs_wait(fd, POLLOUT) < 0)
				return -1;
		} else if (r < 0 && errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

/* writev until every byte of v[0..cnt) is written; v is consumed. */
int vs_writevall(int fd, struct iovec *v, int cnt)
{
	while (cnt) {
		ssize_t w = writev(fd, v, cnt);
		if (w < 0 && errno == EAGAIN) {
			if (vs_wait(fd, POLLOUT) < 0)
				return -1;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		while (cnt && (size_t)w >= v->iov_len) {
			w -= (ssize_t)v->iov_len;
			v++, cnt--;
		}
		if (cnt) {
			v->iov_base = (char *)v->iov_base + w;
			v->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Blocking send of one frame: header and payload in one writev. */
int vs_send(int fd, uint16_t type, const void *payload, size_t len)
{
	uint8_t h[VS_HDR];
	struct iovec v[2] = { { h, VS_HDR }, { (void *)payload, len } };
	if (len > VS_FRAME_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	vs_hdr_put(h, type, (uint32_t)len);
	return vs_writevall(fd, v, len ? 2 : 1);
}

static void vs_field_put(struct vs_wr *w, uint16_t tag, const void *p, size_t n)
{
	if (n > 0xffff) {
		w->err = 1;
		return;
	}
	vs_wr16(w, tag);
	vs_wr16(w, (uint16_t)n);
	vs_wrmem(w, p, n);
}

static void vs_field_text(struct vs_wr *w, uint16_t tag, const char *s)
{
	if (s && *s)
		vs_field_put(w, tag, s, strlen(s));
}

/* The fields of h that are set: a nonce and a CID when has_*, texts when not
 * empty (a HELLO's, and the agent's AUTH after its MAC). */
void vs_fields_put(struct vs_wr *w, const struct vs_hello *h)
{
	if (h->has_nonce)
		vs_field_put(w, VS_F_NONCE, h->nonce, VS_NONCE_LEN);
	if (h->has_cid) {
		uint8_t c[4];
		vs_put32(c, h->cid);
		vs_field_put(w, VS_F_CID, c, 4);
	}
	vs_field_text(w, VS_F_PATH, h->path);
	vs_field_text(w, VS_F_SOFTWARE, h->software);
	vs_field_text(w, VS_F_HOSTNAME, h->hostname);
	vs_field_text(w, VS_F_KERNEL, h->kernel);
	vs_field_text(w, VS_F_MACHINE_ID, h->machine_id);
	vs_field_text(w, VS_F_BOOT_ID, h->boot_id);
	if (h->has_boot) {
		uint8_t b[12];
		vs_put32(b, h->boot);
		vs_put64(b + 4, h->uptime);
		vs_field_put(w, VS_F_BOOT, b, 12);
	}
}

/* HELLO: u16 version, u16 flags, u32 caps, u64 token, then the fields.
 * Returns the payload length, 0 if cap is too small. */
size_t vs_hello_encode(uint8_t *b, size_t cap, const struct vs_hello *h)
{
	struct vs_wr w = { b, 0, cap, 0 };
	vs_wr16(&w, VS_VERSION);
	vs_wr16(&w, h->flags);
	vs_wr32(&w, h->caps);
	vs_wr64(&w, h->token);
	vs_fields_put(&w, h);
	return w.err ? 0 : w.n;
}

/* Fields into h: each must fit inside the payload; unknown tags are
 * skipped (a later version may add some); a nonce must have its exact
 * length.  -1 on anything malformed. */
int vs_fields_decode(const uint8_t *p, size_t n, struct vs_hello *h)
{
	struct vs_rd r = { p, n, 0 };
	while (r.n) {
		uint16_t tag = vs_rd16(&r), len = vs_rd16(&r);
		const uint8_t *v;
		char *dst = NULL;
		size_t cap = 0;
		if (r.err || len > r.n)
			return -1;
		v = r.p;
		r.p += len;
		r.n -= len;
		switch (tag) {
		case VS_F_NONCE:
			if (len != VS_NONCE_LEN)
				return -1;
			memcpy(h->nonce, v, VS_NONCE_LEN);
			h->has_nonce = 1;
			break;
		case VS_F_CID:
			if (len != 4)
				return -1;
			h->cid = vs_get32(v);
			h->has_cid = 1;
			break;
		case VS_F_BOOT:
			if (len != 12)
				return -1;
			h->boot = vs_get32(v);
			h->uptime = vs_get64(v + 4);
			h->has_boot = 1;
			break;
		case VS_F_PATH: dst = h->path, cap = sizeof h->path; break;
		case VS_F_SOFTWARE: dst = h->software, cap = sizeof h->software; break;
		case VS_F_HOSTNAME: dst = h->hostname, cap = sizeof h->hostname; break;
		case VS_F_KERNEL: dst = h->kernel, cap = sizeof h->kernel; break;
		case VS_F_MACHINE_ID: dst = h->machine_id, cap = sizeof h->machine_id; break;
		case VS_F_BOOT_ID: dst = h->boot_id, cap = sizeof h->boot_id; break;
		}
		if (dst)
			vs_text_copy(dst, cap, v, len);
	}
	return 0;
}

/* A HELLO payload: the fixed 16 bytes, then fields.  -1 if malformed;
 * the version is the caller's to judge (it is decoded first). */
int vs_hello_decode(const uint8_t *p, size_t n, struct vs_hello *h)
{
	struct vs_rd r = { p, n, 0 };
	memset(h, 0, sizeof *h);
	h->version = vs_rd16(&r);
	h->flags = vs_rd16(&r);
	h->caps = vs_rd32(&r);
	h->token = vs_rd64(&r);
	if (r.err)
		return -1;
	return vs_fields_decode(r.p, r.n, h);
}

/* ERROR: u32 code, text (no NUL). */
int vs_send_error(int fd, uint32_t code, const char *text)
{
	uint8_t b[4 + 512];
	size_t n = strlen(text);
	if (n > sizeof b - 4)
		n = sizeof b - 4;
	vs_put32(b, code);
	memcpy(b + 4, text, n);
	return vs_send(fd, VS_ERROR, b, 4 + n);
}

/* Text from the peer, as it is, NUL-terminated in dst[cap]: it stops at
 * a NUL or at the end of the room.  Returns its length.  Nothing is
 * escaped here: texts are relayed (the hub passes a guest's facts and
 * errors on to its clients), and only a text's writer, where it reaches
 * a terminal or a log, escapes it, once (vs_esc). */
size_t vs_text_copy(char *dst, size_t cap, const uint8_t *src, size_t n)
{
	size_t i;
	if (n > cap - 1)
		n = cap - 1;
	for (i = 0; i < n && src[i]; i++)
		dst[i] = (char)src[i];
	dst[i] = 0;
	return i;
}

/* The UTF-8 character at s (n > 0 bytes): its code point, its length in
 * *len.  A byte that starts no valid sequence (a stray continuation, an
 * overlong form, a surrogate, beyond U+10FFFF, a sequence cut short) is
 * VS_NOT_UTF8, of length 1. */
uint32_t vs_utf8(const uint8_t *s, size_t n, size_t *len)
{
	uint32_t c = s[0];
	size_t k = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4, i;
	*len = 1;
	if (c < 0x80)
		return c;
	if (c < 0xc2 || c > 0xf4 || n < k)
		return VS_NOT_UTF8;
	c &= 0x3fu >> (k - 1);
	for (i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return VS_NOT_UTF8;
		c = c << 6 | (s[i] & 0x3fu);
	}
	/* overlong (shorter forms exist below 2^(5k-4)), a surrogate, too large */
	if (!(c >> (5 * k - 4)) || (c >= 0xd800 && c < 0xe000) || c > 0x10ffff)
		return VS_NOT_UTF8;
	*len = k;
	return c;
}

/* Whether a character may reach a terminal as it is: not a control
 * character (C0, DEL, C1: a terminal acts on them), nor one that moves or
 * reorders the text around it (the line and paragraph separators, the
 * bidirectional marks, embeddings, overrides and isolates), nor a byte
 * that is not UTF-8.  The one policy; vs_esc and the hub's JSON spell
 * what fails it each in their own way. */
int vs_shown(uint32_t c)
{
	return c >= 0x20 && (c < 0x7f || c >= 0xa0) && c != 0x61c && c != 0x200e && c != 0x200f &&
	       (c < 0x2028 || c > 0x202e) && (c < 0x2066 || c > 0x2069) && c != VS_NOT_UTF8;
}

/* src[0..n) from a peer, made safe for a terminal or a log as ls -b and
 * printf %q show names, into dst[cap] (cap >= 4), NUL-terminated: what
 * vs_shown passes stays as it is, but a backslash is \\ (and quote, a
 * punctuation character or 0, is \quote: argument boundaries stay
 * visible); \n \r \t; any other byte \xHH.  The escapes are unambiguous
 * and never split; what does not fit is cut at a character's end and
 * marked "...".  Returns how many bytes of src went in: n unless it was
 * cut. */
size_t vs_esc(char *dst, size_t cap, const void *src, size_t n, int quote)
{
	const uint8_t *s = src;
	size_t o = 0, i = 0, k, m, mo = 0, mi = 0; /* mo, mi: the last place the mark fits */
	while (i < n) {
		uint32_t c = vs_utf8(s + i, n - i, &k);
		char e[4];
		const char *p = e;
		if (vs_shown(c) && c != '\\' && c != (uint32_t)quote) {
			p = (const char *)s + i;
			m = k;
		} else {
			c = s[i];
			k = 1;
			m = 2;
			e[0] = '\\';
			/* a backslash and the quote are printable: themselves */
			e[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c < 0x20 || c > 0x7e ? 'x' : (char)c;
			if (e[1] == 'x') {
				e[2] = "0123456789abcdef"[c >> 4];
				e[3] = "0123456789abcdef"[c & 15];
				m = 4;
			}
		}
		if (o + m >= cap) { /* no room: back to where the mark fits */
			memcpy(dst + mo, "...", 3);
			o = mo + 3;
			i = mi;
			break;
		}
		memcpy(dst + o, p, m);
		o += m;
		i += k;
		if (o + 4 <= cap)
			mo = o, mi = i;
	}
	dst[o] = 0;
	return i;
}

/* Blocking receive of one frame into payload[cap].  Returns the payload
 * length, or -1 with errno: EPROTO (bad header or EOF inside a frame),
 * EMSGSIZE (frame larger than cap), 0 errno with -1 meaning clean EOF
 * before any byte: errno = 0. */
int vs_recv_by(int fd, struct vs_hdr *h, uint8_t *payload, size_t cap, long deadline)
{
	uint8_t b[VS_HDR];
	ssize_t r = vs_readall_by(fd, b, VS_HDR, deadline);
	if (r < 0)
		return -1;
	if (r == 0) {
		errno = 0;
		return -1;
	}
	if (r < VS_HDR || vs_hdr_parse(b, VS_HDR, h) < 0) {
		errno = EPROTO;
		return -1;
	}
	if (h->len > cap) {
		errno = EMSGSIZE;
		return -1;
	}
	r = vs_readall_by(fd, payload, h->len, deadline);
	if (r < 0)
		return -1;
	if ((size_t)r != h->len) {
		errno = EPROTO;
		return -1;
	}
	return (int)h->len;
}

int vs_recv(int fd, struct vs_hdr *h, uint8_t *payload, size_t cap)
{
	return vs_recv_by(fd, h, payload, cap, VS_NEVER);
}

static int vs_parse_u32(const char *s, const char *end, uint32_t *v)
{
	uint64_t x = 0;
	if (s == end)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		x = x * 10 + (uint64_t)(*s - '0');
		if (x > 0xffffffffu)
			return -1;
	}
	*v = (uint32_t)x;
	return 0;
}

static int vs_parse_cid(const char *s, const char *end, uint32_t *v)
{
	size_t n = (size_t)(end - s);
	if ((n == 2 && !memcmp(s, "-1", 2)) || (n == 3 && !memcmp(s, "any", 3))) {
		*v = VS_CID_ANY;
		return 0;
	}
	if (n == 4 && !memcmp(s, "host", 4)) {
		*v = VS_CID_HOST;
		return 0;
	}
	if (n == 5 && !memcmp(s, "local", 5)) {
		*v = VS_CID_LOCAL;
		return 0;
	}
	return vs_parse_u32(s, end, v);
}

/* CID[:PORT], :PORT, CID:, vsock:CID[:PORT], unix:PATH, hybrid:PATH:PORT.
 * An empty CID or PORT keeps the default already in *a.  Returns -1 on
 * anything unparsable: never a silent fallback. */
int vs_addr_parse(const char *s, struct vs_addr *a)
{
	const char *colon, *end = s + strlen(s);
	if (!strncmp(s, "unix:", 5) || !strncmp(s, "hybrid:", 7)) {
		int hy = s[0] == 'h';
		const char *p = s + (hy ? 7 : 5);
		const char *pe = end;
		if (hy) {
			pe = strrchr(p, ':');
			if (!pe || vs_parse_u32(pe + 1, end, &a->port) < 0)
				return -1;
		}
		if (pe == p || (size_t)(pe - p) >= sizeof a->path)
			return -1;
		memcpy(a->path, p, (size_t)(pe - p));
		a->path[pe - p] = 0;
		a->kind = hy ? VS_ADDR_HYBRID : VS_ADDR_UNIX;
		return 0;
	}
	if (!strncmp(s, "vsock:", 6))
		s += 6;
	if (!*s)
		return -1;
	a->kind = VS_ADDR_VSOCK;
	colon = strchr(s, ':');
	if (!colon)
		return vs_parse_cid(s, end, &a->cid);
	if (colon > s && vs_parse_cid(s, colon, &a->cid) < 0)
		return -1;
	if (colon + 1 < end && vs_parse_u32(colon + 1, end, &a->port) < 0)
		return -1;
	return 0;
}

/* A port given alone (-p PORT) */
int vs_port_parse(const char *s, uint32_t *port)
{
	return vs_parse_u32(s, s + strlen(s), port);
}

/* A CID given alone (--allow CID): a number, -1, any, host or local */
int vs_cid_parse(const char *s, uint32_t *cid)
{
	return vs_parse_cid(s, s + strlen(s), cid);
}

static char *vs_utoa(char *p, uint32_t v)
{
	char t[12];
	int i = 0;
	do t[i++] = (char)('0' + v % 10); while ((v /= 10));
	while (i)
		*p++ = t[--i];
	*p = 0;
	return p;
}

/* An ERROR's payload (u32 code, text): the code (dflt when it has none)
 * into *code, and its text, as sent (vs_text_copy), into t; a peer that sent no text
 * gets words that say so, with the code.  1 when t is the peer's text, 0
 * when it is ours. */
int vs_error_text(const uint8_t *p, size_t n, uint32_t dflt, uint32_t *code, char *t, size_t cap)
{
	static const char none[] = "gave up without saying why (error ";
	char *e;
	*code = n >= 4 ? vs_get32(p) : dflt;
	vs_text_copy(t, cap, p + 4, n >= 4 ? n - 4 : 0);
	if (*t || cap < sizeof none + 12)
		return 1;
	memcpy(t, none, sizeof none - 1);
	e = vs_utoa(t + sizeof none - 1, *code);
	e[0] = ')', e[1] = 0;
	return 0;
}

/* stpcpy, by hand: libc's is 180 bytes of the agent's budget */
static char *vs_cat(char *p, const char *s)
{
	while ((*p = *s++))
		p++;
	return p;
}

const char *vs_addr_str(const struct vs_addr *a, char *buf, size_t n)
{
	const char *pre = a->kind == VS_ADDR_UNIX ? "unix:" : a->kind == VS_ADDR_HYBRID ? "hybrid:" : "vsock:";
	char *p = buf;
	if (strlen(pre) + strlen(a->path) + 24 > n)
		return "?";
	p = vs_cat(p, pre);
	if (a->kind != VS_ADDR_VSOCK)
		p = vs_cat(p, a->path);
	else if (a->cid == VS_CID_ANY)
		p = vs_cat(p, "any");
	else
		p = vs_utoa(p, a->cid);
	if (a->kind != VS_ADDR_UNIX) {
		*p++ = ':';
		vs_utoa(p, a->port);
	}
	return buf;
}

void vs_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

static socklen_t vs_sockaddr(const struct vs_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (a->kind == VS_ADDR_VSOCK) {
		struct vs_sockaddr_vm *vm = (struct vs_sockaddr_vm *)ss;
		vm->svm_family = AF_VSOCK;
		vm->svm_cid = a->cid;
		vm->svm_port = a->port;
		return sizeof *vm;
	} else {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, a->path, strlen(a->path));
		return sizeof *un;
	}
}

/* Connect fd (a socket of a's family) to a; on failure fd is closed. */
int vs_connect_fd(int fd, const struct vs_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t len = vs_sockaddr(a, &ss);
	while (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
	}
	return fd;
}

/* Connect a stream socket (close-on-exec).  For hybrid addresses this only
 * reaches the VMM's socket; the CONNECT/OK exchange is the caller's. */
int vs_connect(const struct vs_addr *a)
{
	int fd = socket(a->kind == VS_ADDR_VSOCK ? AF_VSOCK : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return fd < 0 ? -1 : vs_connect_fd(fd, a);
}

/* Bind a vsock socket to a free reserved port (512-1023, from start on)
 * when we may (CAP_NET_BIND_SERVICE), as rsh's rresvport did: the agent
 * takes it as the kernel's word that a privileged host process calls.
 * Without the privilege it stays unbound: the kernel picks a port above
 * 1023 at connect().  Returns the port bound, or 0. */
uint32_t vs_bind_reserved(int fd, uint32_t start)
{
	struct vs_sockaddr_vm vm;
	unsigned i;
	memset(&vm, 0, sizeof vm);
	vm.svm_family = AF_VSOCK;
	vm.svm_cid = VS_CID_ANY;
	for (i = 0; i < 512; i++) {
		vm.svm_port = 512 + (start + i) % 512;
		if (bind(fd, (struct sockaddr *)&vm, sizeof vm) == 0)
			return vm.svm_port;
		if (errno != EADDRINUSE)
			return 0; /* EACCES: an ordinary port it is */
	}
	return 0;
}

/* A vsock session's buffer (the credit its peer may send ahead): 256 KiB
 * by default, clamped by a maximum of the same size; 1 MiB here, or
 * $VSOCK_BUFFER bytes (64 KiB to 64 MiB).  The maximum first, or the size
 * is clamped.  Not a vsock socket: nothing happens. */
void vs_vsock_buffer(int fd)
{
	const char *e = getenv("VSOCK_BUFFER");
	unsigned long long v = 1 << 20, x = 0;
	for (; e && *e >= '0' && *e <= '9'; e++)
		x = x * 10 + (unsigned)(*e - '0');
	if (x >= 65536 && x <= 64ull << 20)
		v = x;
	setsockopt(fd, AF_VSOCK, 2 /* SO_VM_SOCKETS_BUFFER_MAX_SIZE */, &v, sizeof v);
	setsockopt(fd, AF_VSOCK, 0 /* SO_VM_SOCKETS_BUFFER_SIZE */, &v, sizeof v);
}

/* What is at a Unix listener's path (sa, len: its address): 0 nothing
 * (or a stale socket, now removed), -1 with errno EADDRINUSE (a live
 * listener answers there) or EEXIST (not a socket: never replaced). */
static int vs_unix_claim(const struct sockaddr *sa, socklen_t len, const char *path)
{
	struct stat st;
	int fd, r, i;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	/* Stale means nobody answers a connect. A listener killed a moment
	 * ago may still answer, from a child that has yet to die with it
	 * (the agent's spare): three tries, 100 ms apart. */
	for (i = 0;; i++) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		r = connect(fd, sa, len);
		close(fd);
		if (r < 0 && errno == ECONNREFUSED)
			break;
		if (r < 0 && errno != EAGAIN)
			return -1;
		if (i == 2) {
			errno = EADDRINUSE;
			return -1;
		}
		poll(NULL, 0, 100);
	}
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int vs_listen(const struct vs_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t len = vs_sockaddr(a, &ss);
	int one = 1, e;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Unix: after the stale check, bind the path itself: bind() never
	 * replaces a file, so a listener that took the path meanwhile makes
	 * it fail */
	if (a->kind != VS_ADDR_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if ((a->kind != VS_ADDR_UNIX || vs_unix_claim((struct sockaddr *)&ss, len, a->path) == 0) &&
	    bind(fd, (struct sockaddr *)&ss, len) == 0 && listen(fd, 4096) == 0)
		return fd;
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

/* Why vs_listen failed, in words that name the case. */
const char *vs_listen_why(int err)
{
	if (err == EADDRINUSE)
		return "address in use: another listener answers there";
	if (err == EEXIST)
		return "not a socket; not replacing it";
	return vs_strerror(err);
}

/* The Unix socket path this connection reached, from either end: an
 * accepted socket's own name, a connected one's peer's.  Cleaned as a
 * HELLO text is, so that both ends compare the same bytes.  "" when the
 * connection is not AF_UNIX. */
void vs_unix_link(int fd, char *path, size_t cap)
{
	struct sockaddr_un a;
	socklen_t l = sizeof a;
	*path = 0;
	if (getsockname(fd, (struct sockaddr *)&a, &l) < 0 || a.sun_family != AF_UNIX)
		return;
	if (l <= offsetof(struct sockaddr_un, sun_path) || !a.sun_path[0]) {
		l = sizeof a;
		if (getpeername(fd, (struct sockaddr *)&a, &l) < 0 || l <= offsetof(struct sockaddr_un, sun_path))
			return;
	}
	vs_text_copy(path, cap, (const uint8_t *)a.sun_path, strnlen(a.sun_path, l - offsetof(struct sockaddr_un, sun_path)));
}

/* Do two HELLOs name different guests: a CID each, or a path each, that
 * differ?  (A hybrid VMM's host sees a path where its guest sees a CID:
 * nothing to compare.) */
int vs_link_differs(const struct vs_hello *a, const struct vs_hello *b)
{
	return (a->has_cid && b->has_cid && a->cid != b->cid) || (*a->path && *b->path && strcmp(a->path, b->path));
}

/* The kernel's struct linux_dirent64, a fixed ABI */
struct vs_dirent64 {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

void vs_dir_init(struct vs_dir *d, int fd)
{
	d->fd = fd;
	d->n = d->off = 0;
}

const char *vs_dir_next(struct vs_dir *d)
{
	for (;;) {
		const struct vs_dirent64 *e;
		if (d->off >= d->n) {
			d->n = syscall(SYS_getdents64, d->fd, d->b, sizeof d->b);
			d->off = 0;
			if (d->n <= 0) {
				if (!d->n)
					errno = 0;
				return NULL;
			}
		}
		e = (const struct vs_dirent64 *)(d->b + d->off);
		d->off += e->reclen;
		if (e->name[0] != '.' || (e->name[1] && (e->name[1] != '.' || e->name[2])))
			return e->name;
	}
}

#ifdef VS_SHORT_STRERROR
/* The agent's strerror: the texts of the errors it can meet, as musl
 * words them, in a sixth of the bytes of musl's table of all of them.
 * Each entry is the errno as one byte, then its text. */
static const char vs_errtab[] =
    "\1Operation not permitted\0\2No such file or directory\0\3No such process\0"
    "\4Interrupted system call\0\5I/O error\0\6No such device or address\0"
    "\7Argument list too long\0\10Exec format error\0\11Bad file descriptor\0"
    "\12No child process\0\13Resource temporarily unavailable\0\14Out of memory\0"
    "\15Permission denied\0\20Resource busy\0\21File exists\0\22Cross-device link\0"
    "\23No such device\0\24Not a directory\0\25Is a directory\0\26Invalid argument\0"
    "\27Too many open files in system\0\30No file descriptors available\0"
    "\32Text file busy\0\33File too large\0\34No space left on device\0"
    "\36Read-only file system\0\37Too many links\0\40Broken pipe\0"
    "\44Filename too long\0\46Function not implemented\0\47Directory not empty\0"
    "\50Symbolic link loop\0\107Protocol error\0\132Message too large\0"
    "\137Not supported\0\141Address family not supported by protocol\0"
    "\142Address in use\0\143Address not available\0\145Network unreachable\0"
    "\150Connection reset by peer\0\153Socket not connected\0\156Operation timed out\0"
    "\157Connection refused\0\161Host is unreachable\0\172Quota exceeded\0";

const char *vs_strerror(int err)
{
	static char other[24];
	const char *p = vs_errtab;
	while (p < vs_errtab + sizeof vs_errtab - 1) {
		if ((unsigned char)*p == err)
			return p + 1;
		p += strlen(p) + 1;
	}
	memcpy(other, "error ", 6);
	vs_utoa(other + 6, (uint32_t)err);
	return other;
}
#else
const char *vs_strerror(int err) { return strerror(err); }
#endif

#endif /* VS_IMPLEMENTATION */
#endif /* VS_PROTOCOL_H */
