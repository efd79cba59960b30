/* vsh.h - the host controller's internal interfaces. */
#ifndef VSH_H
#define VSH_H

#include <stdint.h>
#include <stdio.h>
#include "protocol.h"

#define VSH_VERSION "0.1"

/* exit statuses, as ssh has them */
#define EX_CONN 255    /* connection, protocol or usage failure */
#define EX_XFER 1      /* a file transfer failed */

struct xfer {
	int upload;             /* 1: local -> remote */
	const char *local, *remote;
};

struct opts {
	struct vs_addr addr;
	int listen;             /* wait for a dialing agent */
	int pty;                /* -1 auto, 0 never (-T), 1 forced (-t) */
	int nostdin;            /* -n */
	int argv_mode;          /* --argv: no shell */
	int legacy;             /* 0, 1 disposable, 2 persistent */
	int quiet, verbose;
	int wait_secs;          /* -w: give up waiting for the agent */
	int recursive, preserve, mkdirs, sha256, safe_links;
	int escape;             /* escape character, or -1 */
	uint32_t allow_cid;
	int allow_any;
	const char *cwd;
	const char *master;     /* -M PATH: serve local clients */
	const char *env[VS_ENV_MAX];
	int nenv;
	struct xfer xfers[64];
	int nxfer;
	char **cmd;
	int ncmd;
};

/* util.c */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void die_sys(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warn_sys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vinfo(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern int vsh_verbose;
void *xmalloc(size_t n);
const char *addr_str(const struct vs_addr *a);
long now_ms(void);

/* conn.c */
struct hello {
	uint32_t caps;
	uint64_t token;
	char software[64];
};
struct agent {
	int ctl;                /* control connection (listen mode), or -1 */
	int lfd;                /* listening socket (listen mode), or -1 */
	struct hello hi;
};
extern char hello_err[256];
int hello_try(int fd, struct hello *hi);
void agent_control(struct opts *o, struct agent *ag);
int agent_session(struct opts *o, struct agent *ag);
void agent_close(struct agent *ag);
uint64_t new_token(void);
void set_timeout(int fd, int secs);
int connect_target(const struct opts *o);
int accept_agent(const struct opts *o, int lfd, int timeout_ms);
int listen_addr(const struct vs_addr *a);
void agent_error(const uint8_t *p, size_t n) __attribute__((noreturn));

/* exec.c */
int exec_run(int fd, struct opts *o);

/* legacy.c */
int legacy_run(struct opts *o);

/* master.c */
int master_run(struct opts *o);

/* tty.c */
int tty_raw(int fd);
void tty_restore(void);
int tty_is_raw(void);
int tty_winsize(uint16_t *rows, uint16_t *cols, uint16_t *xp, uint16_t *yp);

/* xfer.c */
int xfer_run(struct opts *o, struct agent *ag);
int cp_main(int argc, char **argv);

#endif
