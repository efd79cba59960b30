/*
 * auth.h - the handshake's proofs, shared by agent and controller:
 * HMAC-SHA256 (RFC 2104) over sha256.h, the shared key and where it comes
 * from, fresh nonces, and the MACs each side sends (PROTOCOL.md section 3).
 * The key never crosses the wire: each side proves it holds the key by a
 * MAC over the whole handshake (both HELLOs, with both sides' fresh nonces
 * and the guest's CID) and who dialed whom, compared in constant time.
 *
 * Same single-header style as protocol.h: VS_IMPLEMENTATION in one file
 * per program gets the code.  No malloc, no stdio: the agent includes it
 * (and open() is openat(AT_FDCWD): libc's open adds a fallback for kernels
 * before 2.6.23 that would cost the agent 280 bytes).
 */
#ifndef VS_AUTH_H
#define VS_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include "protocol.h"     /* VS_NONCE_LEN: the bytes of each side's nonce */
#include "sha256.h"

#define VS_MAC 32          /* an HMAC-SHA256 */
#define VS_KEY_MIN 16      /* bytes; shorter keys are refused */
#define VS_KEY_MAX 1024

struct vs_key {
	size_t n;              /* 0: no key */
	unsigned mode;         /* the file's mode, when vs_key_load refused it (EPERM) */
	uint8_t b[VS_KEY_MAX];
};

/* Why a key file was refused (EPERM from vs_key_load), in the words all
 * three programs use: the file, its mode (k->mode), the file. */
#define VS_KEY_PERM "unable to use the key %s: its mode 0%o lets others read or write it; chmod 600 %s"

void vs_hmac(const uint8_t *key, size_t kn, const void *msg, size_t mn, uint8_t out[VS_MAC]);
int vs_key_set(struct vs_key *k, const void *p, size_t n);
int vs_key_load(struct vs_key *k, const char *path);
int vs_memeq(const void *a, const void *b, size_t n);
void vs_nonce(uint8_t out[VS_NONCE_LEN]);
void vs_auth_mac(const struct vs_key *k, int agent, int host_dialed, const struct sha256 *transcript,
                 uint8_t out[VS_MAC]);

#ifdef VS_IMPLEMENTATION

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void vs_hmac(const uint8_t *key, size_t kn, const void *msg, size_t mn, uint8_t out[VS_MAC])
{
	uint8_t k[64], pad[64], inner[32];
	struct sha256 c;
	int i;
	memset(k, 0, sizeof k);
	if (kn > sizeof k) {
		sha256_init(&c);
		sha256_update(&c, key, kn);
		sha256_final(&c, k);
	} else {
		memcpy(k, key, kn);
	}
	for (i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x36;
	sha256_init(&c);
	sha256_update(&c, pad, 64);
	sha256_update(&c, msg, mn);
	sha256_final(&c, inner);
	for (i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x5c;
	sha256_init(&c);
	sha256_update(&c, pad, 64);
	sha256_update(&c, inner, 32);
	sha256_final(&c, out);
}

/* A key is the bytes given, less trailing line ends and blanks (so that
 * a file written by echo and one written by printf hold the same key).
 * -1 with EINVAL when it is shorter than VS_KEY_MIN or longer than
 * VS_KEY_MAX. */
int vs_key_set(struct vs_key *k, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' ' || b[n - 1] == '\t'))
		n--;
	if (n < VS_KEY_MIN || n > VS_KEY_MAX) {
		errno = EINVAL;
		return -1;
	}
	memcpy(k->b, b, n);
	k->n = n;
	return 0;
}

/* Read a key file (a regular file, a sysfs attribute, a credential).  A
 * regular file that its group or others may read or write is refused,
 * as ssh refuses such a private key: the key may have leaked, and a proof
 * is only worth the secrecy of its key.  -1 with EPERM then, its mode in
 * k->mode.  (QEMU's fw_cfg attribute is 0400 by the kernel, a systemd
 * credential 0400 by systemd; what is not a regular file, a pipe from
 * --key <(...), keeps nothing to leak.) */
int vs_key_load(struct vs_key *k, const char *path)
{
	static uint8_t b[VS_KEY_MAX + 64];
	struct stat st;
	size_t n = 0;
	int fd = openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NOCTTY), e;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077)) {
		k->mode = st.st_mode & 07777;
		close(fd);
		errno = EPERM;
		return -1;
	}
	for (;;) {
		ssize_t r = read(fd, b + n, sizeof b - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (r == 0 || (n += (size_t)r) == sizeof b)
			break;
	}
	close(fd);
	e = vs_key_set(k, b, n);
	memset(b, 0, sizeof b);
	return e;
}

/* 0 when equal; the time taken does not depend on where they differ. */
int vs_memeq(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;
	size_t i;
	for (i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d != 0;
}

/* Fresh, unpredictable bytes.  A nonce need not wait for the pool: early
 * in an initramfs getrandom() may block, so ask without blocking first,
 * then for the kernel's insecure-but-never-repeating output (Linux 5.6),
 * then /dev/urandom, and last mix what is at hand through SHA-256. */
void vs_nonce(uint8_t out[VS_NONCE_LEN])
{
	static uint64_t ctr;
	struct sha256 c;
	struct timespec t;
	pid_t pid = getpid();
	int fd;
	if (syscall(SYS_getrandom, out, VS_NONCE_LEN, 1 /* GRND_NONBLOCK */) == VS_NONCE_LEN ||
	    syscall(SYS_getrandom, out, VS_NONCE_LEN, 4 /* GRND_INSECURE */) == VS_NONCE_LEN)
		return;
	fd = openat(AT_FDCWD, "/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t r = read(fd, out, VS_NONCE_LEN);
		close(fd);
		if (r == VS_NONCE_LEN)
			return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t);
	ctr++;
	sha256_init(&c);
	sha256_update(&c, out, VS_NONCE_LEN);
	sha256_update(&c, &t, sizeof t);
	sha256_update(&c, &pid, sizeof pid);
	sha256_update(&c, &ctr, sizeof ctr);
	clock_gettime(CLOCK_REALTIME, &t);
	sha256_update(&c, &t, sizeof t);
	sha256_final(&c, out);
}

/* The MAC one side sends (PROTOCOL.md 3.3): HMAC(key, label || how ||
 * SHA-256 of the transcript so far).  The label tells the two MACs apart,
 * so that neither can be reflected back as the other's.  how is who
 * dialed whom, as this side knows it, never as the peer says it: a proof
 * made on a connection the host dialed is no good on one it accepted, and
 * the other way round.  The transcript is both HELLOs as they crossed the
 * wire (both nonces, the token, the agent's CID, every flag), and for the
 * agent's MAC also the host's MAC and the facts the agent sends with its
 * own: a proof is good for that one conversation only. */
void vs_auth_mac(const struct vs_key *k, int agent, int host_dialed, const struct sha256 *transcript,
                 uint8_t out[VS_MAC])
{
	static const char lh[] = "vsock-shell v3 host", la[] = "vsock-shell v3 agent";
	uint8_t m[sizeof la + 1 + 32];
	size_t n = agent ? sizeof la : sizeof lh; /* the label and its NUL */
	struct sha256 t = *transcript;
	memcpy(m, agent ? la : lh, n);
	m[n] = host_dialed ? 'D' : 'L';
	sha256_final(&t, m + n + 1);
	vs_hmac(k->b, k->n, m, n + 33, out);
}

#endif /* VS_IMPLEMENTATION */
#endif /* VS_AUTH_H */
