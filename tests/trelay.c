/*
 * trelay - the man in the middle of the trust tests: it tries to carry a
 * key holder's proof to an agent that the key holder never reached
 * (PROTOCOL.md 3.3, "What the proofs cover").
 *
 *   trelay listener HOST AGENT CMD   dial HOST, a key holder that listens
 *                                     (the hub, vsock-shell --listen), as
 *                                     an agent would
 *   trelay dialer LISTEN AGENT CMD   wait at LISTEN for a key holder that
 *                                     dials (vsock-shell --key K ADDR)
 *
 * and either way connect to AGENT, a listening agent, as a host would;
 * relay the magic, both HELLOs and the host's AUTH verbatim; and if the
 * agent admits us, run CMD there as a shell string.  Prints "refused by
 * the agent: TEXT", "refused by the key holder: TEXT" or "admitted: exit
 * N".  Exit 0 when refused, 1 when the command ran, 2 on anything else.
 * vsock addresses only inside the test guest, as tpeer.
 */
#define VS_IMPLEMENTATION
#include "protocol.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uint8_t buf[VS_FRAME_MAX];

static int fail(const char *what)
{
	fprintf(stderr, "trelay: %s\n", what);
	return 2;
}

static int addr(const char *s, struct vs_addr *a)
{
	if (vs_addr_parse(s, a) < 0 || a->kind == VS_ADDR_HYBRID)
		return -1;
	/* the dev machine's vsock peer belongs to the infrastructure */
	if (a->kind == VS_ADDR_VSOCK && access("/etc/vsock-test-guest", F_OK) != 0)
		return -1;
	return 0;
}

/* One frame from one side to the other, verbatim; its type, or -1 */
static int relay(int from, int to, struct vs_hdr *h, int *n)
{
	*n = vs_recv(from, h, buf, sizeof buf);
	if (*n < 0 || vs_send(to, h->type, buf, (size_t)*n) < 0)
		return -1;
	return h->type;
}

static void say_error(const char *who, int n)
{
	char t[300];
	uint32_t code;
	vs_error_text(buf, (size_t)n, 0, &code, t, sizeof t);
	printf("refused by the %s: %s\n", who, t);
}

/* EXEC of a shell string, then its output until EXIT: the exit status */
static int run(int fd, const char *cmd)
{
	uint8_t b[4096];
	struct vs_wr w = { b, 0, sizeof b, 0 };
	struct vs_hdr h;
	vs_wr32(&w, VS_EXEC_SHELL);
	vs_wr16(&w, 0);
	vs_wr16(&w, 0);
	vs_wr16(&w, 1);
	vs_wr16(&w, 0);
	vs_wrstr(&w, "");
	vs_wrstr(&w, cmd);
	if (w.err || vs_send(fd, VS_EXEC, b, w.n) < 0 || vs_send(fd, VS_STDIN_EOF, NULL, 0) < 0)
		return -1;
	for (;;) {
		int n = vs_recv(fd, &h, buf, sizeof buf);
		if (n < 0)
			return -1;
		if (h.type == VS_EXIT && n == 8)
			return (int)vs_get32(buf + 4);
	}
}

int main(int argc, char **argv)
{
	struct vs_addr ha, aa;
	struct vs_hdr h;
	uint8_t magic[VS_MAGIC_LEN];
	int hfd, afd, n;
	signal(SIGPIPE, SIG_IGN);
	if (argc != 5 || (strcmp(argv[1], "listener") && strcmp(argv[1], "dialer")) || addr(argv[2], &ha) < 0 ||
	    addr(argv[3], &aa) < 0)
		return fail("usage: trelay listener|dialer HOST|LISTEN AGENT CMD");
	if (!strcmp(argv[1], "listener")) {
		hfd = vs_connect(&ha);
	} else {
		int l = vs_listen(&ha);
		hfd = l < 0 ? -1 : accept(l, NULL, NULL);
	}
	afd = vs_connect(&aa);
	if (hfd < 0 || afd < 0)
		return fail(strerror(errno));
	/* the key holder's magic and HELLO go to the agent as ours */
	if (vs_readall(hfd, magic, sizeof magic) != sizeof magic || vs_writeall(afd, magic, sizeof magic) < 0 ||
	    relay(hfd, afd, &h, &n) != VS_HELLO)
		return fail("no HELLO from the key holder");
	/* the agent's HELLO goes to the key holder as if it were ours */
	if (relay(afd, hfd, &h, &n) < 0)
		return fail("no HELLO from the agent");
	if (h.type == VS_ERROR)
		return say_error("agent", n), 0;
	/* the key holder's proof goes to the agent */
	if (relay(hfd, afd, &h, &n) < 0) {
		printf("refused by the key holder: it closed\n");
		return 0;
	}
	if (h.type == VS_ERROR)
		return say_error("key holder", n), 0;
	n = vs_recv(afd, &h, buf, sizeof buf);
	if (n < 0) {
		printf("refused by the agent: it closed\n");
		return 0;
	}
	if (h.type == VS_ERROR)
		return say_error("agent", n), 0;
	printf("admitted: exit %d\n", run(afd, argv[4]));
	return 1;
}
