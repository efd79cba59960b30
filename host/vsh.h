/* vsh.h - the host controller's internal interfaces. */
#ifndef VSH_H
#define VSH_H

#include <stdint.h>
#include <sys/types.h>
#include <stdio.h>
#include "protocol.h"
#include "sha256.h"

#define VSH_VERSION "0.2"

/* exit statuses, as ssh has them */
#define EX_CONN 255    /* connection, protocol or usage failure */
#define EX_XFER 1      /* a file transfer failed */
#define EX_TIMEOUT 124 /* --timeout ran out, as timeout(1) has it */

struct xfer {
	int upload;             /* 1: local -> remote */
	const char *local, *remote;
};

/* modes: the verb on the command line */
enum {
	M_EXEC = 1, M_CP = 2, M_SERVE = 4, M_LS = 8, M_WAIT = 16, M_RELEASE = 32, M_EVENTS = 64, M_KEYGEN = 128,
	M_POWEROFF = 256, M_PS = 512, M_KILL = 1024, M_ATTACH = 2048,
};

#define VSH_HUB_DEFAULT "/run/vsock-shell/hub.sock"

struct opts {
	int mode;
	const char *target;     /* TARGET as written */
	int have_target;
	const char *at;         /* @NAME: the guest, through the hub */
	struct vs_addr addr;    /* where to connect, or (--listen) to listen */
	int port_set;           /* -p given */
	int listen;             /* wait for a dialing agent */
	const char *listen_at;  /* --listen ADDR */
	int pty;                /* -1 auto, 0 never (-T), 1 forced (-t) */
	int nostdin;            /* -n */
	int argv_mode;          /* --argv: no shell */
	int legacy;             /* 0, 1 disposable, 2 persistent */
	int quiet, verbose, json;
	int wait_secs;          /* -w: give up waiting for the agent */
	int timeout_secs;       /* --timeout: kill the command's session after it */
	int recursive, preserve, mkdirs, sha256, safe_links;
	int escape;             /* escape character, or -1 */
	uint32_t allow_cid;
	int allow_any;
	const char *cwd;
	const char *keyfile;    /* --key */
	const char *hub;        /* the hub's client socket */
	const char *env[VS_ENV_MAX];
	int nenv;
	struct xfer xfers[64];
	int nxfer;
	const char *paths[256]; /* cp: SRC... DST; wait, release: the guests after the first */
	int npaths;
	char **cmd;
	int ncmd;
	/* many guests through the hub: --all, -P (0: the default), events --snapshot */
	int all, par, snapshot;
	uint32_t stage;         /* wait --stage: a VS_ST_*, or 0 */
	int reboot;             /* reboot, not poweroff */
	/* kill, attach: the session; kill's -s (0: TERM) */
	const char *sess_id;
	int signal;
	/* sessions that outlive their connection: --detach, --no-detach,
	 * --resume-wait (seconds; 0: the default) */
	int detach, no_detach, resume_wait;
	/* forwarding: -L, -R, -W (fwd.c keeps them), -N */
	int nfwd, stdio_fwd, nocmd;
	/* serve */
	const char *serve_vsock, *config, *group, *keydir;
	const char *unixes[1024], *names[1024];
	int nunix, nnames;
};

/* util.c */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void die_sys(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warn_sys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vinfo(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern int vsh_verbose;
/* set: die() and die_sys() jump here instead of exiting, and say why only
 * with -v (a resume's attempts: exec.c) */
#include <setjmp.h>
extern jmp_buf *vsh_catch;
void *xmalloc(size_t n);
const char *addr_str(const struct vs_addr *a);
long vsh_timeout_ms(void);
struct vs_key;
const char *key_error(const char *path, const struct vs_key *k);
const char *stage_name(uint32_t st);
uint32_t stage_parse(const char *s);
#define now_ms vs_now_ms

/* conn.c */
struct agent {
	int ctl;                /* control connection (listen mode), or -1 */
	int lfd;                /* listening socket (listen mode), or -1 */
	struct vs_hello hi;
};
#define AGENT_INIT { -1, -1, { 0 } }
struct vs_key;
extern struct vs_key hostkey;
/* the host's handshake, step by step (conn.c) */
enum { HS_FAIL = -1, HS_MORE = 0, HS_DONE = 1 };
struct hs {
	int stage;              /* 0 awaiting HELLO, 1 awaiting AUTH, 2 done */
	int dialed;             /* we dialed the agent (it listens) */
	struct vs_hello link;   /* our HELLO: its CID or path name the guest as we see it */
	uint8_t nonce[VS_NONCE_LEN];
	const struct vs_key *key;
	struct sha256 tr;       /* the transcript the MACs cover */
	struct vs_hello hi;
	char err[400];
};
size_t hs_begin(struct hs *h, const struct vs_key *key, uint16_t flags, int dialed, int fd, uint32_t cid,
                uint8_t *out, size_t cap);
int hs_step(struct hs *h, const struct vs_hdr *fh, const uint8_t *p, size_t n, uint8_t *out, size_t *outn);
extern char hello_err[512];
int hello_try(int fd, int dialed, struct vs_hello *hi, long deadline);
uint32_t peer_cid(int fd);
void agent_require(const struct agent *ag, uint32_t cap, const char *what);
void agent_control(struct opts *o, struct agent *ag);
int agent_session(struct opts *o, struct agent *ag, const char *op, const char *what);
void agent_close(struct agent *ag, int release);
uint64_t new_token(void);
const char *auth_name(const struct vs_hello *hi);
int target_connect(const struct vs_addr *a);
int connect_target(const struct opts *o);
int accept_agent(const struct opts *o, int lfd, long deadline);
int listen_addr(const struct vs_addr *a);
void agent_error(const uint8_t *p, size_t n) __attribute__((noreturn));

/* main.c */
void usage_error(const struct opts *o, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
int looks_like_addr(const char *w);

/* exec.c */
int exec_run(int fd, struct opts *o, struct agent *ag);

/* fwd.c */
void fwd_parse(struct opts *o, int kind, const char *spec);
int fwd_main(struct opts *o, struct agent *ag);
pid_t fwd_spawn(struct opts *o, struct agent *ag, int cmd);

/* legacy.c */
int legacy_run(struct opts *o);

/* the hub's client protocol (PROTOCOL.md section 10): hub.c serves it,
 * verbs.c speaks it */
enum {
	VS_HUB_OPEN = 48,    /* str guest, str op, str what, u32 wait_ms */
	VS_HUB_SESSION = 49, /* the agent's HELLO, and the connection (SCM_RIGHTS) */
	VS_HUB_LS = 50,      /* empty */
	VS_HUB_GUEST = 51,   /* one guest (see guest_put) */
	VS_HUB_WAIT = 52,    /* str guest, u32 wait_ms */
	VS_HUB_RELEASE = 53, /* str guest */
	VS_HUB_EVENTS = 54,  /* empty, or u32 flags: VS_HUB_EV_SNAPSHOT */
	VS_HUB_EVENT = 55,   /* u32 kind, u64 time, a guest */
};
enum { EV_CONNECT = 1, EV_DISCONNECT = 2, EV_RELEASE = 3, EV_SNAPSHOT = 4, EV_STAGE = 5 };
#define VS_HUB_EV_SNAPSHOT 1u  /* every guest as it is, then the changes */
#define HUB_OPEN_WAIT_MS 30000 /* default wait for a guest that is not up */

/* hub.c: the hub */
extern const char hub_usage[];
int hub_serve(struct opts *o);

/* verbs.c: the hub's clients, and keygen */
struct targets {
	char (*name)[72];       /* guests as the hub knows them: NAME or CID, no '@' */
	int n;
};
void hub_targets(struct opts *o, int up, long deadline, struct targets *t);
void json_str(FILE *f, const char *k, const char *s, size_t n, int comma);
int hub_ls(struct opts *o);
int hub_wait(struct opts *o);
int hub_release(struct opts *o);
int hub_events(struct opts *o);
int hub_open(struct opts *o, struct agent *ag, const char *op, const char *what);
int keygen(struct opts *o);

/* sess.c: ps and kill */
int signal_parse(const char *s);
int ps_main(struct opts *o);
int kill_main(struct opts *o);
int attach_main(struct opts *o);
int id_parse(const char *s, uint8_t *id);

/* fan.c: one command on many guests */
int fan_wanted(const struct opts *o);
int fan_run(struct opts *o, int (*one)(struct opts *));

/* tty.c */
int tty_raw(int fd);
void tty_restore(void);
int tty_is_raw(void);
int tty_winsize(uint16_t *rows, uint16_t *cols, uint16_t *xp, uint16_t *yp);

/* main.c: poweroff, reboot */
int power_run(struct opts *o);

/* xfer.c */
int xfer_run(struct opts *o, struct agent *ag);
int cp_run(struct opts *o);

#endif
