/* main.c - vsock-shell's command line: one option table that every mode
 * shares, so an option means the same everywhere (-p is the port in every
 * mode), and a word is never dropped or taken for something it is not:
 * what is left over, or looks like an address where none belongs, is an
 * error in one line. */
#include "vsh.h"
#include "auth.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* option ids */
enum {
	O_HELP = 1, O_VERSION, O_PORT, O_LISTEN, O_WAIT, O_ALLOW, O_PTY, O_NOPTY, O_NOSTDIN, O_ENV, O_CWD,
	O_ARGV, O_ESCAPE, O_LEGACY, O_UP, O_DOWN, O_RECURSIVE, O_PRESERVE, O_MKDIR, O_SHA256, O_SAFELINKS,
	O_KEY, O_HUB, O_QUIET, O_VERBOSE, O_MASTER, O_JSON, O_VSOCK, O_UNIX, O_NAME, O_CONFIG, O_GROUP, O_KEYS,
	O_TIMEOUT, O_LOGIN, O_SIGNAL, O_DETACH, O_NODETACH, O_RESUMEWAIT, O_FWD_L, O_FWD_R, O_FWD_W, O_NOCMD,
};

/* many guests through the hub: fan.c, verbs.c */
enum { O_ALLGUESTS = 64, O_PAR, O_SNAPSHOT, O_STAGE };

#define M_ALL (M_EXEC | M_CP | M_SERVE | M_LS | M_WAIT | M_RELEASE | M_EVENTS | M_KEYGEN | M_POWEROFF | M_PS | M_KILL | M_ATTACH)
#define M_CONN (M_EXEC | M_CP)
#define M_SESS (M_PS | M_KILL | M_ATTACH) /* a session connection too */
#define M_HUBC (M_LS | M_WAIT | M_RELEASE | M_EVENTS)

struct optdef {
	char s;            /* -s, or 0 */
	const char *l;     /* --l, or NULL */
	int arg;           /* 0 none, 1 required, 2 optional (taken only when it parses) */
	int modes;         /* where it means something */
	int id;
};

static const struct optdef optdefs[] = {
	{ 'h', "help", 0, M_ALL, O_HELP },
	{ 'V', "version", 0, M_ALL, O_VERSION },
	{ 'p', "port", 1, M_CONN | M_SESS | M_POWEROFF, O_PORT },
	{ 0, "listen", 2, M_CONN | M_SESS | M_POWEROFF, O_LISTEN },
	{ 'l', NULL, 1, M_CONN, O_LOGIN },
	{ 'w', "wait", 1, M_CONN | M_SESS | M_WAIT | M_POWEROFF, O_WAIT },
	{ 0, "allow", 1, M_CONN | M_SESS | M_POWEROFF, O_ALLOW },
	{ 't', NULL, 0, M_EXEC | M_ATTACH, O_PTY },
	{ 'T', NULL, 0, M_EXEC | M_ATTACH, O_NOPTY },
	{ 'n', NULL, 0, M_EXEC | M_ATTACH, O_NOSTDIN },
	{ 'e', NULL, 1, M_EXEC, O_ENV },
	{ 0, "cwd", 1, M_EXEC, O_CWD },
	{ 0, "argv", 0, M_EXEC, O_ARGV },
	{ 0, "timeout", 1, M_EXEC, O_TIMEOUT },
	{ 'E', NULL, 1, M_EXEC | M_ATTACH, O_ESCAPE },
	{ 0, "detach", 0, M_EXEC, O_DETACH },
	{ 0, "no-detach", 0, M_EXEC, O_NODETACH },
	{ 0, "resume-wait", 1, M_EXEC | M_ATTACH, O_RESUMEWAIT },
	{ 'L', NULL, 1, M_EXEC, O_FWD_L },
	{ 'R', NULL, 1, M_EXEC, O_FWD_R },
	{ 'W', NULL, 1, M_EXEC, O_FWD_W },
	{ 'N', NULL, 0, M_EXEC, O_NOCMD },
	{ 0, "legacy", 2, M_EXEC, O_LEGACY },
	{ 'u', NULL, 1, M_EXEC, O_UP },
	{ 'd', NULL, 1, M_EXEC, O_DOWN },
	{ 'r', "recursive", 0, M_CONN, O_RECURSIVE },
	{ 0, "preserve", 0, M_CONN, O_PRESERVE },
	{ 0, "mkdir", 0, M_CONN, O_MKDIR },
	{ 0, "sha256", 0, M_CONN, O_SHA256 },
	{ 0, "safe-links", 0, M_CONN, O_SAFELINKS },
	{ 0, "key", 1, M_CONN | M_SESS | M_SERVE | M_POWEROFF, O_KEY },
	{ 0, "hub", 1, M_CONN | M_SESS | M_HUBC | M_SERVE | M_POWEROFF, O_HUB },
	{ 'q', "quiet", 0, M_ALL, O_QUIET },
	{ 'v', "verbose", 0, M_ALL, O_VERBOSE },
	{ 'M', NULL, 1, M_EXEC, O_MASTER },
	{ 0, "json", 0, M_EXEC | M_LS | M_EVENTS | M_PS, O_JSON },
	{ 's', NULL, 1, M_KILL, O_SIGNAL },
	{ 0, "all", 0, M_EXEC | M_WAIT | M_RELEASE, O_ALLGUESTS },
	{ 'P', NULL, 1, M_EXEC, O_PAR },
	{ 0, "snapshot", 0, M_EVENTS, O_SNAPSHOT },
	{ 0, "stage", 1, M_WAIT, O_STAGE },
	{ 0, "vsock", 1, M_SERVE, O_VSOCK },
	{ 0, "unix", 1, M_SERVE, O_UNIX },
	{ 0, "name", 1, M_SERVE, O_NAME },
	{ 0, "config", 1, M_SERVE, O_CONFIG },
	{ 0, "group", 1, M_SERVE, O_GROUP },
	{ 0, "keys", 1, M_SERVE, O_KEYS },
};

static const char usage_text[] =
    "usage: vsock-shell [options] TARGET [--] [COMMAND [ARG...]]\n"
    "       vsock-shell [options] --listen [ADDR] [--] [COMMAND [ARG...]]\n"
    "       vsock-shell cp [options] TARGET|--listen [ADDR] SRC... DST\n"
    "       vsock-shell cp [options] SRC... @NAME:DST | @NAME:SRC... DST\n"
    "       vsock-shell serve [options]          (the hub: see serve --help)\n"
    "       vsock-shell [options] @NAME,@NAME...|--all [-P N] [--json] [--] COMMAND\n"
    "       vsock-shell ls [--json] | events [--json] [--snapshot]\n"
    "       vsock-shell wait @NAME...|--all [-w SECS] [--stage STAGE] | release @NAME...|--all\n"
    "       vsock-shell poweroff|reboot [options] TARGET|--listen [ADDR]|@NAME\n"
    "       vsock-shell ps [--json] TARGET | kill [-s SIG] TARGET ID | attach TARGET ID\n"
    "       vsock-shell [options] -N|-W ADDR TARGET  (forwarding only)\n"
    "       vsock-shell keygen FILE\n"
    "\n"
    "Run a command, or open a shell, in a VM through its vsock-agent;\n"
    "poweroff and reboot have the agent sync and its init do that.\n"
    "TARGET: CID[:PORT], vsock:CID[:PORT], unix:PATH, hybrid:PATH:PORT\n"
    "(Firecracker/cloud-hypervisor host-initiated), or @NAME / @CID: a guest\n"
    "whose agent the hub (vsock-shell serve) holds.  --listen waits for an\n"
    "agent that dials the host (default vsock:any:1023).  Without COMMAND:\n"
    "the login shell, on a pty when stdin is a terminal.  The words of\n"
    "COMMAND are joined by spaces and run by the remote user's shell, as ssh\n"
    "does; commands run as the agent's user.  LANG and LC_* go along, as\n"
    "with ssh.  Exit status: the remote one, 128+N for death by signal N, 1\n"
    "for a failed file transfer, 124 when --timeout ran out, 141 when our\n"
    "stdout closed early, 255 for connection, protocol or usage failure.\n"
    "A command outlives its connection: when that breaks, vsock-shell\n"
    "resumes the session, output and status as they would have been.\n"
    "ps lists the agent's sessions by id (who started each, what, and its\n"
    "state); kill signals one, ending it and all it left running; attach\n"
    "carries one on here, from where its last client stopped.\n"
    "Many guests at once (a fan-out, through the hub): each guest's lines\n"
    "tagged '@NAME: '; status 0 when every command succeeded, 5 when one\n"
    "failed, 4 when a guest could not be reached, 3 when a session was\n"
    "interrupted (the worst of these).\n"
    "\n"
    "  -p, --port PORT  port (default 1024 to connect, 1023 with --listen)\n"
    "  --listen [ADDR]  wait for a dialing agent (ADDR right after it)\n"
    "  -w, --wait SECS  give up after SECS waiting for the agent (connect:\n"
    "                 retry with backoff that long; default: no retry / wait)\n"
    "  --allow CID|any  --listen: accept only this guest CID (default: any)\n"
    "  --key FILE     the agent's shared key, for a controller without root\n"
    "  --hub PATH     the hub's socket for @NAME (default $VSOCK_SHELL_HUB,\n"
    "                 else /run/vsock-shell/hub.sock)\n"
    "  --timeout SECS  kill the command's whole session after SECS, and\n"
    "                 exit 124, as timeout(1) does\n"
    "  -t             force a pty;  -T  never a pty\n"
    "  -n             stdin from /dev/null\n"
    "  -e VAR=VAL     set a variable in the remote environment (repeatable)\n"
    "  --cwd DIR      remote working directory (default: remote $HOME)\n"
    "  --argv         run COMMAND ARG... directly, without a shell\n"
    "  -E CHAR        escape character on a pty (default ~; ^X; 'none' disables);\n"
    "                 ~. ends the session, ~& detaches from it, ~^Z suspends,\n"
    "                 ~? lists the escapes\n"
    "  --detach       start COMMAND, print its session's id, and exit: the\n"
    "                 command runs on (stdin: /dev/null); see attach\n"
    "  --no-detach    the command dies with this connection (as before 0.3)\n"
    "  --resume-wait SECS  reconnect for this long when the connection breaks\n"
    "                 (default 60), then exit 255 with the attach command\n"
    "  --legacy [disposable|persistent]  speak vsock_guest_exec's protocol\n"
    "                 (disposable is the default): disposable sends COMMAND\n"
    "                 raw; persistent sends COMMAND, or each line of stdin,\n"
    "                 length-prefixed; all is checked before connecting\n"
    "  -L [BIND:]PORT:HOST:PORT | PATH:PATH  forward each connection to this\n"
    "                 host's BIND:PORT (default loopback) or PATH to HOST:PORT\n"
    "                 or PATH in the guest (repeatable, mixable, as ssh -L)\n"
    "  -R [BIND:]PORT:HOST:PORT | PATH:PATH  the reverse: the agent listens in\n"
    "                 the guest (loopback unless BIND), we connect here\n"
    "  -W HOST:PORT | PATH  stdin and stdout joined to one connection in the\n"
    "                 guest: ssh's ProxyCommand ('vsock-shell -W localhost:22 T')\n"
    "  -N             no command: forward until killed (-v says each one);\n"
    "                 addresses: numeric IPv4, [IPv6], localhost, or a path\n"
    "                 (a word with a '/')\n"
    "  -u LOCAL:REMOTE    upload (repeatable); -d REMOTE:LOCAL  download;\n"
    "                 with -r, --recursive (trees), --preserve (modes as\n"
    "                 sent, setuid too; mtimes; owners as root), --mkdir\n"
    "                 (create DST's parents), --sha256 (hash), --safe-links\n"
    "                 (skip symlinks leaving the tree);\n"
    "                 transfers run first, then COMMAND if one is given\n"
    "  --all          every guest the hub holds now: a fan-out; for wait,\n"
    "                 every guest it lists; for release, every one up\n"
    "  --stage STAGE  wait: until the guest reports this provisioning stage\n"
    "                 (initramfs, modules, waiting, released, switch_root,\n"
    "                 failed, root); status 2 when it reports failed instead\n"
    "  -P N           a fan-out: N sessions at a time (default 32)\n"
    "  --json         a fan-out: a JSON object per guest (target, status,\n"
    "                 duration, stdout and stderr: sizes, and up to 64 KiB);\n"
    "                 ps: a JSON array\n"
    "  -s SIG         kill: the signal, TERM (the default), KILL, HUP, ... or\n"
    "                 a number\n"
    "  -q, --quiet    no progress bar;  -v, --verbose  say each step\n"
    "  -h, --help     this help;  -V, --version  the version\n"
    "\n"
    "More in vsock-shell(1) and vsock-agent(8).\n";

static const char cp_usage[] =
    "usage: vsock-shell cp [options] TARGET SRC... DST\n"
    "       vsock-shell cp [options] --listen [ADDR] SRC... DST\n"
    "       vsock-shell cp [options] SRC... @NAME:DST | @NAME:SRC... DST\n"
    "\n"
    "Copy files into or out of the guest.  Remote paths start with ':'\n"
    "(relative ones are relative to the remote home), or, as with scp, with\n"
    "the guest's @NAME: (then no TARGET); either every SRC is remote\n"
    "(download) or DST is (upload).  '-' is stdin or stdout.  Local sources\n"
    "are checked before the guest is asked for anything.\n"
    "Every file is written to a temporary file, fsynced, and put in place\n"
    "only after its content hash matched end to end.\n"
    "\n"
    "  -r, --recursive  copy directories recursively (symlinks stay symlinks)\n"
    "  --preserve     keep modes as sent (setuid too; without it, modes as\n"
    "                 cp gives them), modification times, owners when root\n"
    "  --mkdir        create missing parent directories of DST\n"
    "  --safe-links   skip symlinks that are absolute or leave the tree\n"
    "  --sha256       SHA-256 as the end-to-end hash (default XXH64)\n"
    "  -q, --quiet    no progress bar\n"
    "  -p, --port PORT  port (default 1024; 1023 with --listen; not for @NAME)\n"
    "  -w, --wait SECS  wait that long for the agent\n"
    "  --listen [ADDR]  wait for a dialing agent (default vsock:any:1023)\n"
    "  --allow CID|any  with --listen: accept only this guest CID\n"
    "  --key FILE     the agent's shared key;  --hub PATH  the hub, for @NAME\n"
    "  -v, --verbose  say each step\n"
    "Exit status: 0; 1 when a transfer failed (a local source missing too);\n"
    "128+N when interrupted by signal N (after removing what it was\n"
    "writing); 255 when the connection failed or for a usage error.\n"
    "More in vsock-shell(1).\n";

static const char *mode_name(int m)
{
	switch (m) {
	case M_CP: return "cp";
	case M_SERVE: return "serve";
	case M_LS: return "ls";
	case M_WAIT: return "wait";
	case M_RELEASE: return "release";
	case M_EVENTS: return "events";
	case M_KEYGEN: return "keygen";
	case M_POWEROFF: return "poweroff";
	case M_PS: return "ps";
	case M_KILL: return "kill";
	case M_ATTACH: return "attach";
	}
	return NULL;
}

/* The mode a verb names (the first word), or 0.  reboot is poweroff's
 * mode, with o->reboot. */
static int verb_mode(const char *w)
{
	static const int modes[] = { M_CP, M_SERVE, M_LS, M_WAIT, M_RELEASE, M_EVENTS, M_KEYGEN, M_POWEROFF, M_PS, M_KILL, M_ATTACH };
	size_t k;
	if (!strcmp(w, "reboot"))
		return M_POWEROFF;
	for (k = 0; k < sizeof modes / sizeof *modes; k++)
		if (!strcmp(w, mode_name(modes[k])))
			return modes[k];
	return 0;
}

/* One line: what is wrong, then where to read more. */
void usage_error(const struct opts *o, const char *fmt, ...)
{
	char b[600];
	const char *m = mode_name(o->mode);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, sizeof b, fmt, ap);
	va_end(ap);
	die("%s (try vsock-shell %s%s--help)", b, m ? m : "", m ? " " : "");
}

static void usage(const struct opts *o)
{
	const char *t = o->mode == M_CP ? cp_usage : o->mode == M_SERVE ? hub_usage : usage_text;
	vs_writeall(1, t, strlen(t));
	exit(0);
}

/* Does the word look like an address?  Then it is never taken for a
 * command or a path silently. */
int looks_like_addr(const char *w)
{
	size_t i;
	if (!strncmp(w, "unix:", 5) || !strncmp(w, "vsock:", 6) || !strncmp(w, "hybrid:", 7) || w[0] == '@')
		return 1;
	for (i = 0; w[i]; i++)
		if (!(w[i] >= '0' && w[i] <= '9') && w[i] != ':')
			return 0;
	return i > 0 && strcmp(w, ":");
}

static const struct optdef *opt_find(const char *a, const char **val)
{
	size_t i;
	*val = NULL;
	if (a[0] != '-' || !a[1])
		return NULL;
	for (i = 0; i < sizeof optdefs / sizeof *optdefs; i++) {
		const struct optdef *d = &optdefs[i];
		if (a[1] == '-' && d->l) {
			size_t k = strlen(d->l);
			if (!strncmp(a + 2, d->l, k) && (a[2 + k] == 0 || (a[2 + k] == '=' && d->arg))) {
				if (a[2 + k] == '=')
					*val = a + 3 + k;
				return d;
			}
		} else if (a[1] != '-' && d->s && a[1] == d->s) {
			if (a[2] && d->arg == 1)
				*val = a + 2; /* -p1025, as getopt takes it */
			else if (a[2])
				continue;
			return d;
		}
	}
	return NULL;
}

static void parse_xfer(struct opts *o, int up, const char *s)
{
	/* as the seed client: -u LOCAL:REMOTE, -d REMOTE:LOCAL (split at the
	 * first colon; the cp command takes any path) */
	static char buf[64][2][4096];
	const char *c = strchr(s, ':');
	struct xfer *t = &o->xfers[o->nxfer];
	if (!c || c == s || !c[1] || strlen(s) >= sizeof buf[0][0])
		usage_error(o, "-%c takes %s, not '%s'", up ? 'u' : 'd', up ? "LOCAL:REMOTE" : "REMOTE:LOCAL", s);
	if (o->nxfer >= 64)
		usage_error(o, "too many transfers (at most 64)");
	memcpy(buf[o->nxfer][0], s, (size_t)(c - s));
	buf[o->nxfer][0][c - s] = 0;
	strcpy(buf[o->nxfer][1], c + 1);
	t->upload = up;
	t->local = buf[o->nxfer][up ? 0 : 1];
	t->remote = buf[o->nxfer][up ? 1 : 0];
	o->nxfer++;
}

static long parse_num(struct opts *o, const char *opt, const char *s, long max)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < 0 || v > max)
		usage_error(o, "%s takes a number from 0 to %ld, not '%s'", opt, max, s);
	return v;
}

/* Apply one option.  i points at it; an argument is consumed from the
 * word itself (--x=V, -pV) or the next one. */
static void apply(struct opts *o, const struct optdef *d, const char *val, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	if (!(d->modes & o->mode))
		usage_error(o, "option %s is not for %s", a, mode_name(o->mode) ? mode_name(o->mode) : "running a command");
	if (d->arg == 1 && !val && d->id != O_LOGIN) { /* -l: refused, with or without its word */
		if (*i + 1 >= argc)
			usage_error(o, "option %s needs an argument", a);
		val = argv[++*i];
	}
	switch (d->id) {
	case O_HELP: usage(o); break;
	case O_VERSION:
		printf("vsock-shell %s (protocol %d)\n", VSH_VERSION, VS_VERSION);
		exit(0);
	case O_PORT:
		if (vs_port_parse(val, &o->addr.port) < 0)
			usage_error(o, "unable to parse port '%s'", val);
		o->port_set = 1;
		break;
	case O_LISTEN:
		o->listen = 1;
		if (!val && *i + 1 < argc && (argv[*i + 1][0] != '-' || !strncmp(argv[*i + 1], "-1", 2))) {
			/* the address, if any, comes right after it */
			struct vs_addr t = o->addr;
			if (vs_addr_parse(argv[*i + 1], &t) == 0 && t.kind != VS_ADDR_HYBRID) {
				val = argv[++*i];
			}
		}
		if (val)
			o->listen_at = val;
		break;
	case O_WAIT: o->wait_secs = (int)parse_num(o, a, val, 86400L * 365); break;
	case O_TIMEOUT: o->timeout_secs = (int)parse_num(o, a, val, 86400L * 365); break;
	case O_RESUMEWAIT: o->resume_wait = (int)parse_num(o, a, val, 86400L * 365); break;
	case O_DETACH: o->detach = 1; break;
	case O_NODETACH: o->no_detach = 1; break;
	case O_ALLOW:
		if (vs_cid_parse(val, &o->allow_cid) < 0)
			usage_error(o, "unable to parse CID '%s'", val);
		o->allow_any = o->allow_cid == VS_CID_ANY; /* 'any' or -1, as everywhere */
		break;
	case O_PTY: o->pty = 1; break;
	case O_NOPTY: o->pty = 0; break;
	case O_NOSTDIN: o->nostdin = 1; break;
	case O_ENV:
		if (!strchr(val, '=') || val[0] == '=')
			usage_error(o, "-e takes VAR=VALUE, not '%s'", val);
		if (o->nenv >= VS_ENV_MAX - 1)
			usage_error(o, "too many -e options (at most %d)", VS_ENV_MAX - 1);
		o->env[o->nenv++] = val;
		break;
	case O_CWD: o->cwd = val; break;
	case O_ARGV: o->argv_mode = 1; break;
	case O_ESCAPE:
		if (!strcmp(val, "none"))
			o->escape = -1;
		else if (strlen(val) == 1)
			o->escape = (unsigned char)val[0];
		else if (strlen(val) == 2 && val[0] == '^')
			o->escape = val[1] & 31;
		else
			usage_error(o, "-E takes one character, ^X, or 'none', not '%s'", val);
		break;
	case O_LEGACY:
		o->legacy = 1;
		if (!val && *i + 1 < argc && (!strcmp(argv[*i + 1], "persistent") || !strcmp(argv[*i + 1], "disposable")))
			val = argv[++*i];
		if (val && !strcmp(val, "persistent"))
			o->legacy = 2;
		else if (val && strcmp(val, "disposable"))
			usage_error(o, "--legacy takes disposable or persistent, not '%s'", val);
		break;
	case O_FWD_L: fwd_parse(o, 'L', val); break;
	case O_FWD_R: fwd_parse(o, 'R', val); break;
	case O_FWD_W: fwd_parse(o, 'W', val); break;
	case O_NOCMD: o->nocmd = 1; break;
	case O_UP: parse_xfer(o, 1, val); break;
	case O_DOWN: parse_xfer(o, 0, val); break;
	case O_RECURSIVE: o->recursive = 1; break;
	case O_PRESERVE: o->preserve = 1; break;
	case O_MKDIR: o->mkdirs = 1; break;
	case O_SHA256: o->sha256 = 1; break;
	case O_SAFELINKS: o->safe_links = 1; break;
	case O_KEY: o->keyfile = val; break;
	case O_HUB: o->hub = val; break;
	case O_QUIET: o->quiet = 1; break;
	case O_VERBOSE: o->verbose = vsh_verbose = 1; break;
	/* ssh's login name, and once our listen: -l root @g1 -- id ran 'root
	 * @g1 -- id' on whatever agent dialed in */
	case O_LOGIN:
		usage_error(o, "-l is gone: there is no login name to give (commands run as the agent's user); "
		               "to wait for a dialing agent, spell out --listen");
		break;
	case O_MASTER:
		usage_error(o, "-M is gone: 'vsock-shell serve' (the hub) holds dialing agents now; see README, The hub");
		break;
	case O_JSON: o->json = 1; break;
	case O_VSOCK: o->serve_vsock = val; break;
	case O_UNIX:
		if (o->nunix >= (int)(sizeof o->unixes / sizeof *o->unixes))
			usage_error(o, "too many --unix options");
		o->unixes[o->nunix++] = val;
		break;
	case O_NAME:
		if (o->nnames >= (int)(sizeof o->names / sizeof *o->names))
			usage_error(o, "too many --name options");
		o->names[o->nnames++] = val;
		break;
	case O_CONFIG: o->config = val; break;
	case O_GROUP: o->group = val; break;
	case O_KEYS: o->keydir = val; break;
	case O_ALLGUESTS: o->all = 1; break;
	case O_PAR:
		o->par = (int)parse_num(o, a, val, 256);
		if (!o->par)
			usage_error(o, "-P takes a number from 1 to 256, not '%s'", val);
		break;
	case O_SNAPSHOT: o->snapshot = 1; break;
	case O_STAGE:
		if (!(o->stage = stage_parse(val)))
			usage_error(o, "--stage takes initramfs, modules, waiting, released, switch_root, failed or root, not '%s'",
			            val);
		break;
	case O_SIGNAL:
		o->signal = signal_parse(val);
		if (o->signal < 0)
			usage_error(o, "-s takes a signal name (TERM, SIGKILL) or number, not '%s'", val);
		break;
	}
}

/* cp's scp form, @NAME:PATH: PATH on the guest @NAME (a hub's names and
 * CIDs hold no ':', so it is unambiguous). */
static int scp_form(const char *w)
{
	const char *c = strchr(w, ':');
	return w[0] == '@' && c && c > w + 1;
}

/* cp with @NAME:PATH words: the guest is theirs, and every word is a path
 * (the first one was taken for a TARGET: give it back).  They all name
 * the same guest; each becomes :PATH. */
static void cp_scp(struct opts *o)
{
	static char at[256];
	int i, n = 0;
	for (i = 0; i < o->npaths && !scp_form(o->paths[i]); i++)
		;
	if (i == o->npaths && !(o->have_target && scp_form(o->target)))
		return;
	if (o->have_target) {
		if (!scp_form(o->target) && looks_like_addr(o->target))
			usage_error(o, "'%s' looks like an address, and @NAME:PATH names the guest (write ./%s for a local "
			               "file of that name)", o->target, o->target);
		if (o->npaths >= (int)(sizeof o->paths / sizeof *o->paths))
			usage_error(o, "too many paths");
		memmove(o->paths + 1, o->paths, (size_t)o->npaths * sizeof *o->paths);
		o->paths[0] = o->target;
		o->npaths++;
		o->have_target = 0;
	}
	for (i = 0; i < o->npaths; i++) {
		const char *w = o->paths[i], *c = strchr(w, ':');
		if (!scp_form(w))
			continue;
		if ((size_t)(c - w) >= sizeof at)
			usage_error(o, "guest name too long in '%s'", w);
		if (n++ && (strncmp(at, w, (size_t)(c - w)) || at[c - w]))
			usage_error(o, "'%s' and '%s:' name two guests: one cp copies with one guest", w, at);
		memcpy(at, w, (size_t)(c - w));
		at[c - w] = 0;
		o->paths[i] = c; /* :PATH */
	}
	o->target = at;
	o->have_target = 1;
}

/* A positional word.  Returns 1 when it ends option parsing (the command
 * starts here). */
static int positional(struct opts *o, char *w, int dashdash)
{
	if (o->mode == M_EXEC) {
		if (!o->have_target && !o->listen && !o->all) {
			o->target = w;
			o->have_target = 1;
			return 0;
		}
		/* the command starts here; a second address is a slip */
		if (!dashdash && looks_like_addr(w))
			usage_error(o, "'%s' looks like an address, and %s (a number after an option that takes none?)", w,
			            o->listen ? "--listen takes its address right after it" : "there is already a TARGET");
		return 1;
	}
	if (o->mode == M_CP) {
		if (!o->have_target && !o->listen) {
			o->target = w;
			o->have_target = 1;
		} else if (!dashdash && looks_like_addr(w) && !scp_form(w)) {
			usage_error(o, "'%s' looks like an address, and %s (write ./%s for a local file of that name)", w,
			            o->listen ? "--listen takes its address right after it" : "there is already a TARGET", w);
		} else {
			if (o->npaths >= (int)(sizeof o->paths / sizeof *o->paths))
				usage_error(o, "too many paths");
			o->paths[o->npaths++] = w;
		}
		return 0;
	}
	if (o->mode & M_SESS) {
		if (!o->have_target && !o->listen) {
			o->target = w;
			o->have_target = 1;
			return 0;
		}
		if ((o->mode == M_KILL || o->mode == M_ATTACH) && !o->sess_id) {
			o->sess_id = w;
			return 0;
		}
	}
	if ((o->mode == M_WAIT || o->mode == M_RELEASE || o->mode == M_KEYGEN || o->mode == M_POWEROFF) && !o->have_target &&
	    !(o->mode == M_POWEROFF && o->listen)) {
		o->target = w;
		o->have_target = 1;
		return 0;
	}
	if ((o->mode == M_WAIT || o->mode == M_RELEASE) && o->npaths < (int)(sizeof o->paths / sizeof *o->paths)) {
		o->paths[o->npaths++] = w; /* more guests */
		return 0;
	}
	usage_error(o, "unexpected argument '%s'", w);
	return 0;
}

static void parse(struct opts *o, int argc, char **argv, int first)
{
	int i;
	for (i = first; i < argc; i++) {
		const char *val;
		const struct optdef *d;
		if (!strcmp(argv[i], "--")) {
			for (i++; i < argc; i++)
				if (positional(o, argv[i], 1))
					break;
			break;
		}
		d = opt_find(argv[i], &val);
		if (d) {
			apply(o, d, val, argc, argv, &i);
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] && strcmp(argv[i], "-1") && strncmp(argv[i], "-1:", 3))
			usage_error(o, "unknown option '%s'", argv[i]);
		if (positional(o, argv[i], 0))
			break;
	}
	o->cmd = argv + i;
	o->ncmd = i < argc ? argc - i : 0;
}

/* The target (or listening address) in o->addr, the key loaded. */
static void finish(struct opts *o)
{
	if (o->mode == M_CP)
		cp_scp(o);
	if (o->listen && o->have_target && (o->mode == M_EXEC || o->mode == M_POWEROFF))
		usage_error(o, "TARGET and --listen together");
	if (o->mode == M_POWEROFF && o->have_target && strchr(o->target, ','))
		usage_error(o, "one guest at a time: %s %s", o->reboot ? "reboot" : "poweroff", o->target);
	if (o->have_target && o->target[0] == '@') {
		o->at = o->target + 1;
		if (!*o->at)
			usage_error(o, "'@' needs a guest name or CID");
	} else if (o->have_target && o->mode & (M_CONN | M_SESS | M_POWEROFF)) {
		if (verb_mode(o->target))
			usage_error(o, "'%s' is a verb: it comes first (vsock-shell %s [options] ...)", o->target, o->target);
		/* a port missing from the target is -p's, or the default */
		if (vs_addr_parse(o->target, &o->addr) < 0)
			usage_error(o, "unable to parse target '%s' (expected CID[:PORT], vsock:CID[:PORT], unix:PATH, "
			               "hybrid:PATH:PORT or @NAME)", o->target);
	}
	if (o->listen) {
		o->addr = (struct vs_addr){ VS_ADDR_VSOCK, VS_CID_ANY, o->port_set ? o->addr.port : VS_PORT_DIAL, "" };
		if (o->listen_at && (vs_addr_parse(o->listen_at, &o->addr) < 0 || o->addr.kind == VS_ADDR_HYBRID))
			usage_error(o, "unable to parse listen address '%s'", o->listen_at);
	}
	if (o->at && o->listen)
		usage_error(o, "@%s goes through the hub; --listen waits for an agent itself", o->at);
	if (o->at && o->port_set)
		usage_error(o, "-p does not apply to @%s: the hub holds the guest's connection (drop -p)", o->at);
	if (o->keyfile && vs_key_load(&hostkey, o->keyfile) < 0)
		die("%s", key_error(o->keyfile, &hostkey));
	if (!o->hub)
		o->hub = getenv("VSOCK_SHELL_HUB");
	if (!o->hub || !*o->hub)
		o->hub = VSH_HUB_DEFAULT;
}

static int exec_main(struct opts *o)
{
	struct agent ag = AGENT_INIT;
	int fd, rc;
	if (!o->have_target && !o->listen)
		usage_error(o, "no TARGET given");
	if (o->legacy && o->timeout_secs)
		usage_error(o, "--timeout and --legacy together: the legacy protocols cannot stop a command");
	if ((o->nfwd || o->nocmd) && o->legacy)
		usage_error(o, "-L, -R, -W and -N need the framed protocol, not --legacy");
	if (o->stdio_fwd && (o->nfwd > 1 || o->ncmd || o->nxfer))
		usage_error(o, "-W joins stdin and stdout to one connection: no command, no -L, -R or transfers beside it");
	if (o->nocmd && (o->ncmd || !o->nfwd))
		usage_error(o, o->ncmd ? "-N runs no command, and one is given" : "-N without -L or -R: nothing to do");
	if (o->legacy)
		return legacy_run(o);
	if (o->stdio_fwd || o->nocmd)
		return fwd_main(o, &ag);
	if (o->nxfer) {
		rc = xfer_run(o, &ag);
		if (rc || !o->ncmd) {
			agent_close(&ag, rc == 0);
			return rc;
		}
	}
	char what[200] = "(login shell)";
	pid_t fwd;
	int i;
	size_t n = 0;
	/* without a command, on a terminal: the login shell on a pty */
	if (o->pty < 0)
		o->pty = !o->ncmd && isatty(0);
	/* the command as the remote shell sees it, for the hub's audit */
	for (i = 0; i < o->ncmd && n < sizeof what - 1; i++)
		n += (size_t)snprintf(what + n, sizeof what - n, "%s%s", i ? " " : "", o->cmd[i]);
	fd = agent_session(o, &ag, o->pty ? "shell" : "exec", what);
	fwd = o->nfwd ? fwd_spawn(o, &ag, fd) : 0;
	rc = exec_run(fd, o, &ag);
	if (fwd > 0)
		kill(fwd, SIGTERM);
	close(fd);
	agent_close(&ag, rc == 0);
	return rc;
}

/* poweroff and reboot: the agent syncs and has PID 1 do it (PROTOCOL.md
 * 5.1), answering OK first: the guest goes down after our exit 0. */
int power_run(struct opts *o)
{
	struct agent ag = AGENT_INIT;
	const char *what = o->reboot ? "reboot" : "poweroff";
	uint8_t b[600];
	struct vs_hdr h;
	int fd, n;
	if (!o->have_target && !o->listen)
		usage_error(o, "which guest? (vsock-shell %s TARGET, --listen or @NAME)", what);
	fd = agent_session(o, &ag, "power", what);
	agent_require(&ag, VS_CAP_POWER, "power requests (its --deny power, or an agent before 0.3)");
	vs_put32(b, o->reboot ? VS_POWER_REBOOT : VS_POWER_OFF);
	if (vs_send(fd, VS_POWER, b, 4) < 0)
		die_sys("unable to ask the agent to %s", what);
	n = vs_recv_by(fd, &h, b, sizeof b, vs_deadline(vsh_timeout_ms()));
	if (n >= 0 && h.type == VS_ERROR)
		agent_error(b, (size_t)n);
	if (n < 0 || h.type != VS_OK)
		die("the agent did not answer the %s request (%s)", what,
		    n < 0 ? (errno == ETIMEDOUT ? "no answer in time" : "it closed the connection") : "an unexpected message");
	close(fd);
	agent_close(&ag, 0);
	vinfo("the agent took the %s request", what);
	return 0;
}

/* keygen (hub.c) writes the key; then say what it wrote, and where it
 * goes, as ssh-keygen does */
static int keygen_main(struct opts *o)
{
	int rc = keygen(o);
	if (rc == 0 && !o->quiet)
		warnx("wrote a new key to %s (mode 0600): for the agent (its --key) and vsock-shell --key %s", o->target,
		      o->target);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;
	int first = 1;
	memset(&o, 0, sizeof o);
	o.mode = M_EXEC;
	o.pty = -1;
	o.escape = '~';
	o.addr = (struct vs_addr){ VS_ADDR_VSOCK, VS_CID_HOST, VS_PORT_LISTEN, "" };
	if (argc > 1 && verb_mode(argv[1]))
		o.mode = verb_mode(argv[1]), o.reboot = !strcmp(argv[1], "reboot"), first = 2;
	parse(&o, argc, argv, first);
	finish(&o);
	signal(SIGPIPE, SIG_IGN);
	switch (o.mode) {
	case M_CP: return cp_run(&o);
	case M_SERVE: return hub_serve(&o);
	case M_LS: return hub_ls(&o);
	case M_WAIT: return hub_wait(&o);
	case M_RELEASE: return hub_release(&o);
	case M_EVENTS: return hub_events(&o);
	case M_KEYGEN: return keygen_main(&o);
	case M_POWEROFF: return power_run(&o);
	case M_PS: return ps_main(&o);
	case M_KILL: return kill_main(&o);
	case M_ATTACH: return attach_main(&o);
	}
	if (fan_wanted(&o) && (o.nfwd || o.nocmd))
		usage_error(&o, "-L, -R, -W and -N are for one guest, not a fan-out");
	if (fan_wanted(&o))
		return fan_run(&o, exec_main);
	return exec_main(&o);
}
