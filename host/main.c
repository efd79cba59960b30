/* main.c - vsock-shell's command line and dispatch. */
#include "vsh.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: vsock-shell [options] TARGET [--] [COMMAND [ARG...]]\n"
    "       vsock-shell [options] --listen [ADDR] [--] [COMMAND [ARG...]]\n"
    "       vsock-shell --listen [ADDR] -M SOCKET      (serve many sessions)\n"
    "       vsock-shell cp [options] TARGET|--listen [ADDR] SRC... DST\n"
    "\n"
    "Run a command, or open a shell, in a VM through its vsock-agent.\n"
    "TARGET: CID[:PORT], vsock:CID[:PORT], unix:PATH, hybrid:PATH:PORT\n"
    "(Firecracker/cloud-hypervisor host-initiated).  --listen waits for an\n"
    "agent that dials the host (default vsock:2:1024; 'any:1024' accepts on\n"
    "every transport).  Without COMMAND: the login shell, on a pty when\n"
    "stdin is a terminal.  The words of COMMAND are joined by spaces and run\n"
    "by the remote user's shell, as ssh does.  Exit status: the remote one,\n"
    "128+N for death by signal N, 1 for a failed file transfer, 141 when our\n"
    "stdout closed early, 255 for connection, protocol or usage failure.\n"
    "\n"
    "  -p PORT        port (default 1024)\n"
    "  -l, --listen [ADDR]  wait for a dialing agent\n"
    "  -w SECS        give up after SECS waiting for the agent (connect:\n"
    "                 retry with backoff that long; default: no retry / wait)\n"
    "  --allow CID|any  --listen: accept only this guest CID (default: any)\n"
    "  -t             force a pty;  -T  never a pty\n"
    "  -n             stdin from /dev/null\n"
    "  -e VAR=VAL     set a variable in the remote environment (repeatable)\n"
    "  --cwd DIR      remote working directory (default: remote $HOME)\n"
    "  --argv         run COMMAND ARG... directly, without a shell\n"
    "  -E CHAR        escape character on a pty (default ~; 'none' disables)\n"
    "  --legacy [disposable|persistent]  speak vsock_guest_exec's protocol\n"
    "                 (also --legacy=MODE; disposable is the default):\n"
    "                 disposable sends COMMAND raw; persistent sends\n"
    "                 COMMAND, or each line of stdin, length-prefixed\n"
    "  -u LOCAL:REMOTE    upload (repeatable); -d REMOTE:LOCAL  download;\n"
    "                 with -r (trees), --preserve (mtimes, owners as root),\n"
    "                 --mkdir (create DST's parents), --sha256 (hash),\n"
    "                 --safe-links (skip symlinks that leave the tree);\n"
    "                 transfers run first, then COMMAND if one is given\n"
    "  -M SOCKET      with --listen: keep the agent's control connection and\n"
    "                 serve 'vsock-shell unix:SOCKET ...' clients, each in a\n"
    "                 session of its own, until SIGTERM (keep-alive PING\n"
    "                 every 30 s, or $VSOCK_SHELL_KEEPALIVE seconds)\n"
    "  -q             quiet (no progress bar);  -v  verbose\n"
    "  -h, --help     this help;  -V, --version  the version\n";

static void usage(int code)
{
	vs_writeall(code ? 2 : 1, usage_text, sizeof usage_text - 1);
	exit(code ? EX_CONN : 0);
}

static const char *need_arg(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc) {
		warnx("option %s needs an argument", argv[*i]);
		usage(1);
	}
	return argv[++*i];
}

/* Returns 1 if argv[*i] was an option (consumed), 0 if not one. */
static int parse_option(struct opts *o, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	if (!strcmp(a, "-h") || !strcmp(a, "--help"))
		usage(0);
	if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
		printf("vsock-shell %s (protocol %d)\n", VSH_VERSION, VS_VERSION);
		exit(0);
	}
	if (!strcmp(a, "-p")) {
		const char *s = need_arg(argc, argv, i);
		if (vs_port_parse(s, &o->addr.port) < 0)
			die("unable to parse port '%s'", s);
	} else if (!strcmp(a, "-l") || !strcmp(a, "--listen")) {
		o->listen = 1;
		if (*i + 1 < argc && (argv[*i + 1][0] != '-' || !strncmp(argv[*i + 1], "-1", 2))) {
			struct vs_addr t = o->addr;
			if (vs_addr_parse(argv[*i + 1], &t) == 0 && t.kind != VS_ADDR_HYBRID) {
				o->addr = t;
				++*i;
			}
		}
	} else if (!strncmp(a, "--listen=", 9)) {
		o->listen = 1;
		if (vs_addr_parse(a + 9, &o->addr) < 0 || o->addr.kind == VS_ADDR_HYBRID)
			die("unable to parse listen address '%s'", a + 9);
	} else if (!strcmp(a, "-w")) {
		const char *s = need_arg(argc, argv, i);
		char *end;
		long v = strtol(s, &end, 10);
		if (*end || v < 0 || v > 86400 * 365)
			die("unable to parse seconds '%s'", s);
		o->wait_secs = (int)v;
	} else if (!strcmp(a, "--allow")) {
		const char *s = need_arg(argc, argv, i);
		if (vs_cid_parse(s, &o->allow_cid) < 0)
			die("unable to parse CID '%s'", s);
		o->allow_any = o->allow_cid == VS_CID_ANY; /* 'any' or -1, as everywhere */
	} else if (!strcmp(a, "-t")) {
		o->pty = 1;
	} else if (!strcmp(a, "-T")) {
		o->pty = 0;
	} else if (!strcmp(a, "-n")) {
		o->nostdin = 1;
	} else if (!strcmp(a, "-e")) {
		const char *s = need_arg(argc, argv, i);
		if (!strchr(s, '=') || s[0] == '=')
			die("-e takes VAR=VALUE, not '%s'", s);
		if (o->nenv >= VS_ENV_MAX - 1)
			die("too many -e options");
		o->env[o->nenv++] = s;
	} else if (!strcmp(a, "--cwd")) {
		o->cwd = need_arg(argc, argv, i);
	} else if (!strcmp(a, "--argv")) {
		o->argv_mode = 1;
	} else if (!strcmp(a, "-E")) {
		const char *s = need_arg(argc, argv, i);
		if (!strcmp(s, "none"))
			o->escape = -1;
		else if (strlen(s) == 1)
			o->escape = (unsigned char)s[0];
		else if (strlen(s) == 2 && s[0] == '^')
			o->escape = s[1] & 31;
		else
			die("-E takes one character, ^X, or 'none'");
	} else if (!strcmp(a, "--legacy")) {
		o->legacy = 1;
		if (*i + 1 < argc && !strcmp(argv[*i + 1], "persistent"))
			o->legacy = 2, ++*i;
		else if (*i + 1 < argc && !strcmp(argv[*i + 1], "disposable"))
			++*i;
	} else if (!strcmp(a, "--legacy=persistent")) {
		o->legacy = 2;
	} else if (!strcmp(a, "--legacy=disposable")) {
		o->legacy = 1;
	} else if (!strcmp(a, "-u") || !strcmp(a, "-d")) {
		/* as the seed client: -u LOCAL:REMOTE, -d REMOTE:LOCAL (split at
		 * the first colon; the cp command takes any path) */
		const char *s = need_arg(argc, argv, i), *c = strchr(s, ':');
		struct xfer *t = &o->xfers[o->nxfer];
		static char buf[64][2][4096];
		if (!c || c == s || !c[1] || strlen(s) >= sizeof buf[0][0])
			die("%s takes %s, not '%s'", a, a[1] == 'u' ? "LOCAL:REMOTE" : "REMOTE:LOCAL", s);
		if (o->nxfer >= 64)
			die("too many transfers");
		memcpy(buf[o->nxfer][0], s, (size_t)(c - s));
		buf[o->nxfer][0][c - s] = 0;
		strcpy(buf[o->nxfer][1], c + 1);
		t->upload = a[1] == 'u';
		t->local = buf[o->nxfer][t->upload ? 0 : 1];
		t->remote = buf[o->nxfer][t->upload ? 1 : 0];
		o->nxfer++;
	} else if (!strcmp(a, "-r")) {
		o->recursive = 1;
	} else if (!strcmp(a, "--preserve")) {
		o->preserve = 1;
	} else if (!strcmp(a, "--mkdir")) {
		o->mkdirs = 1;
	} else if (!strcmp(a, "--sha256")) {
		o->sha256 = 1;
	} else if (!strcmp(a, "--safe-links")) {
		o->safe_links = 1;
	} else if (!strcmp(a, "-M")) {
		o->master = need_arg(argc, argv, i);
	} else if (!strcmp(a, "-q")) {
		o->quiet = 1;
	} else if (!strcmp(a, "-v")) {
		o->verbose = vsh_verbose = 1;
	} else if (a[0] == '-' && a[1]) {
		warnx("unknown option '%s'", a);
		usage(1);
	} else {
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct agent ag = { -1, -1, { 0, 0, "" } };
	int i, have_target = 0, fd, rc;
	if (argc > 1 && !strcmp(argv[1], "cp"))
		return cp_main(argc - 1, argv + 1);
	memset(&o, 0, sizeof o);
	o.pty = -1;
	o.escape = '~';
	o.addr = (struct vs_addr){ VS_ADDR_VSOCK, VS_CID_HOST, VS_PORT_DEFAULT, "" };
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		if (parse_option(&o, argc, argv, &i))
			continue;
		if (have_target || o.listen)
			break; /* the command starts here */
		if (vs_addr_parse(argv[i], &o.addr) < 0)
			die("unable to parse target '%s' (expected CID[:PORT], vsock:CID[:PORT], unix:PATH or hybrid:PATH:PORT)",
			    argv[i]);
		have_target = 1;
	}
	o.cmd = argv + i;
	o.ncmd = argc - i;
	if (!have_target && !o.listen) {
		warnx("no TARGET given");
		usage(1);
	}
	if (o.master && !o.listen)
		die("-M needs --listen");
	signal(SIGPIPE, SIG_IGN);
	if (o.legacy)
		return legacy_run(&o);
	if (o.master)
		return master_run(&o);
	if (o.nxfer) {
		rc = xfer_run(&o, &ag);
		if (rc || !o.ncmd) {
			agent_close(&ag);
			return rc;
		}
	}
	fd = agent_session(&o, &ag);
	rc = exec_run(fd, &o);
	close(fd);
	agent_close(&ag);
	return rc;
}
