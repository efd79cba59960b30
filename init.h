/*
 * init.h - vsock-agent as PID 1, included by agent.c: what the busybox
 * image's /init does, in C, in the shape of toybox's oneit.  PID 1 sets
 * up (pseudo file systems, the console, the vsock modules, vsock_agent.*
 * from /proc/cmdline), forks the agent proper, reaps every process that
 * ends, and never exits: a failure ends in a restart with backoff, the
 * vsock_agent.after action, or a message and a power-off.  Released by a
 * host, it switches to vsock_agent.root.
 *
 * The provisioning stages it goes through are kept in memory it shares
 * with the agents it forks: each agent sends those not yet sent to a host
 * that asks for them (HELLO flag STAGES), and what happens after a
 * release (switch_root, a failure) goes out on a report connection made
 * for it (PROTOCOL.md 4.4).
 */
#ifndef VS_INIT_H
#define VS_INIT_H

#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/statfs.h>

int main(int argc, char **argv);

/* Each entry a STAGE payload: u32 stage, u64 uptime, its text and a
 * NUL.  Shared with the children, so that a restarted agent sends none
 * twice. */
#define NSTAGE 16
static struct slog {
	unsigned n, sent;
	int reached; /* an agent reached a host */
	char e[NSTAGE][128];
} *slog;
static int init_on;   /* PID 1 is this agent's init section */

/* Where this agent runs: an initramfs is the kernel's rootfs (ramfs or
 * tmpfs) holding an /init. */
static uint32_t boot_flags(void)
{
	struct statfs s;
	return (!statfs("/", &s) && (s.f_type == 0x858458f6 || s.f_type == 0x01021994) && !access("/init", F_OK)) |
	       (init_on ? VS_BOOT_INIT : 0);
}

/* A stage: into the log, and on the console. */
static void stage(unsigned st, const char *f, ...)
{
	char *b = slog->e[slog->n++ % NSTAGE];
	va_list ap;
	va_start(ap, f);
	b[12 + vfmt(b + 12, sizeof slog->e[0] - 13, f, ap)] = 0;
	va_end(ap);
	vs_put32((uint8_t *)b, st);
	vs_put64((uint8_t *)b + 4, (uint64_t)vs_now_ms());
	warnx("%s", b + 12);
}

/* On a control connection, once admitted: the stages not yet sent, to a
 * host that takes them (the oldest are lost past NSTAGE). */
static void stages_send(int fd)
{
	if (!slog)
		return;
	slog->reached = 1;
	if (!(host_flags & VS_HF_STAGES))
		return;
	if (slog->n - slog->sent > NSTAGE)
		slog->sent = slog->n - NSTAGE;
	for (; slog->sent != slog->n; slog->sent++) {
		const char *b = slog->e[slog->sent % NSTAGE];
		if (vs_send(fd, VS_STAGE, b, 12 + strlen(b + 12)) < 0)
			return;
	}
}

/* vsock_agent.NAME=VALUE, /init's names (initramfs/README.md); key is
 * the agent's own (--key auto), cmd the busybox image's demo's */
static const char init_names[] = "mode\0cid\0port\0listen\0allow\0args\0legacy\0auth\0deny\0only\0root\0"
                                 "rootfstype\0rootflags\0rootwait\0init\0timeout\0after\0controller\0modules\0hostname\0";
enum { P_MODE, P_CID, P_PORT, P_LISTEN, P_ALLOW, P_ARGS, P_LEGACY, P_AUTH, P_DENY, P_ONLY, P_ROOT, P_FSTYPE, P_FLAGS,
       P_ROOTWAIT, P_INIT, P_TIMEOUT, P_AFTER, P_CONTROLLER, P_MODULES, P_HOSTNAME, P_N };
static char *par[P_N + 1]; /* [P_N]: an unknown name's */
static char *init_av[48]; /* the agent proper's command line */
static int init_ac;

/* A file into b[cap], NUL-terminated. */
static void file_read(const char *path, char *b, size_t cap)
{
	int fd = openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	ssize_t r = fd < 0 ? 0 : vs_readall(fd, b, cap - 1);
	if (fd >= 0)
		close(fd);
	b[r < 0 ? 0 : r] = 0;
}

/* Split s at sep into v, at most max words, empty ones skipped; how
 * many. */
static int init_split(char *s, char **v, int max, int sep)
{
	int n = 0;
	for (; s && *s && n < max; s++) {
		if (*s == sep)
			continue;
		v[n++] = s;
		if (!*(s = strchrnul(s, sep)))
			break;
		*s = 0;
	}
	return n;
}

/* Reap until pid has gone (or no child is left), for at most ms. */
static void init_reap(pid_t pid, long ms)
{
	long end = vs_now_ms() + ms;
	for (;;) {
		struct pollfd p = { sigpipe_fd[0], POLLIN, 0 };
		pid_t r;
		while ((r = waitpid(-1, NULL, WNOHANG)) > 0)
			if (r == pid)
				return;
		if (r < 0 || (ms = end - vs_now_ms()) <= 0)
			return;
		poll(&p, 1, (int)ms);
		sigpipe_read();
	}
}

/* After a release, or before a power-off: what happened since the last
 * connection, to the host (dial mode), on a connection of its own made
 * by a child: the argv without --retry and --reconnect, one try. */
static void init_report(void)
{
	pid_t p;
	if (par[P_LISTEN] || slog->sent == slog->n || (p = fork()) < 0)
		return;
	if (!p) {
		hflags = VS_HF_REPORT;
		muted = 1; /* no host to report to is not news */
		init_av[2] = init_av[0];
		exit(main(init_ac - 2, init_av + 2));
	}
	init_reap(p, 10000);
	kill(p, SIGKILL);
}

/* The end: everything stopped (2 s to go), synced, then reboot(2).
 * Where that fails (not PID 1), wait for ever: PID 1 must not exit. */
static void __attribute__((noreturn)) init_power(int cmd)
{
	warnx(cmd == RB_POWER_OFF ? "powering off" : "rebooting");
	init_report();
	sync();
	kill(-1, SIGTERM);
	init_reap(0, 2000);
	kill(-1, SIGKILL);
	sync();
	reboot(cmd);
	for (;;)
		poll(NULL, 0, -1);
}

/* A number from the command line, or (none given) dflt; what is not
 * a number is 0. */
static long init_num(int i, long dflt)
{
	const char *q = par[i];
	long v = q ? num_scan(&q) : dflt;
	return v < 0 ? 0 : v;
}

/* proc, sysfs, devtmpfs, devpts and a tmpfs on /run, each unless a file
 * system is mounted there already (its device differs from its
 * parent's). */
static void init_mounts(void)
{
	static const char m[] = "proc\0/proc\0\0sysfs\0/sys\0\0devtmpfs\0/dev\0mode=0755\0"
	                        "devpts\0/dev/pts\0gid=5,mode=620,ptmxmode=0666\0tmpfs\0/run\0mode=0755\0";
	const char *t = m, *d, *o;
	char up[16];
	struct stat a, b;
	for (; *t; t = o + strlen(o) + 1) {
		d = t + strlen(t) + 1;
		o = d + strlen(d) + 1;
		mkdir(d, 0755);
		fmt(up, sizeof up, "%s/..", d);
		if ((stat(d, &a) || stat(up, &b) || a.st_dev == b.st_dev) && mount(t, d, t, MS_NOSUID, *o ? o : NULL))
			warn_sys("unable to mount %s on %s", t, d);
	}
}

static struct utsname uts;
static int virtio; /* the vsock transport is virtio's */

/* A module under /lib/modules/RELEASE/kernel/ (its path without .ko; a
 * first byte below 4 stands for a directory), unless it is loaded; one
 * that is not there is built in, or not shipped. */
static void init_module(const char *path)
{
	static const char *const dirs[] = { "", "net/vmw_vsock/", "drivers/virtio/", "drivers/firmware/" };
	char f[256];
	const char *name = strrchr(path, '/');
	int k = *path < 4 ? *path++ : 0, fd;
	name = name ? name + 1 : path;
	fmt(f, sizeof f, "/sys/module/%s", name);
	if (!access(f, F_OK))
		return;
	fmt(f, sizeof f, "/lib/modules/%s/kernel/%s%s.ko", uts.release, dirs[k], path);
	if ((fd = openat(AT_FDCWD, f, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
		warn_sys("unable to load %s", name);
	close(fd);
}

/* A virtio-vsock device (virtio device 19) on the virtio bus. */
static int init_vsock_dev(void)
{
	char p[64], v[16];
	int i, r = 0;
	for (i = 0; i < 32; i++) {
		fmt(p, sizeof p, "/sys/bus/virtio/devices/virtio%d/device", i);
		file_read(p, v, sizeof v);
		r |= !strcmp(v, "0x0013\n");
	}
	return r;
}

/* /init's order.  The virtio PCI driver binds only virtio devices; the
 * vsock virtio transport only when such a device is there: loaded, it
 * takes CID 2 for itself, which would cut off the loopback route a guest
 * without one relies on.  Then vsock_agent.modules, in their order. */
static void init_modules(void)
{
	static const char m[] = "\1vsock\0\1vmw_vsock_virtio_transport_common\0\1vsock_loopback\0\3qemu_fw_cfg\0"
	                        "\2virtio_ring\0\2virtio\0\2virtio_pci_modern_dev\0\2virtio_pci_legacy_dev\0\2virtio_pci\0";
	const char *p;
	char *x[16];
	int i, n = init_split(par[P_MODULES], x, 16, ',');
	uname(&uts);
	for (p = m; *p; p += strlen(p) + 1)
		init_module(p);
	if ((virtio = init_vsock_dev()))
		init_module("\1vmw_vsock_virtio_transport");
	for (i = 0; i < n; i++)
		init_module(x[i]);
	stage(VS_ST_MODULES, "modules loaded, transport %s",
	      virtio ? "virtio" : access("/sys/module/vsock_loopback", F_OK) ? "none" : "loopback");
}

/* vsock_agent.root on /sysroot (a device, waited for, or tmpfs),
 * read-write unless rootflags say otherwise: the host writes into it. */
static int init_root(void)
{
	const char *r = par[P_ROOT];
	int tmp = !strcmp(r, "tmpfs");
	long i, w = init_num(P_ROOTWAIT, 30) * 10;
	struct stat st;
	mkdir("/sysroot", 0755);
	for (i = 0; !tmp && (stat(r, &st) || !S_ISBLK(st.st_mode)); i++) {
		if (i >= w) {
			stage(VS_ST_FAILED, "root %s did not appear within %lds", r, w / 10);
			return 0;
		}
		nap(100);
	}
	if (!mount(r, "/sysroot", tmp ? r : par[P_FSTYPE] ? par[P_FSTYPE] : "ext4", 0,
	           par[P_FLAGS] ? par[P_FLAGS] : tmp ? "mode=0755" : NULL))
		return 1;
	stage(VS_ST_FAILED, "unable to mount %s on /sysroot: %s", r, vs_strerror(errno));
	return 0;
}

/* Everything on the initramfs's device, depth first, by the directory
 * iterator: no opendir, no malloc.  Other file systems (the new root,
 * what is mounted elsewhere) are left alone. */
static void init_rm(int dfd, dev_t dev)
{
	struct vs_dir d;
	const char *n;
	struct stat st;
	int fd;
	vs_dir_init(&d, dfd);
	while ((n = vs_dir_next(&d))) {
		if (fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) || st.st_dev != dev)
			continue;
		if (S_ISDIR(st.st_mode) && (fd = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
			init_rm(fd, dev);
			close(fd);
		}
		unlinkat(dfd, n, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
	}
}

/* switch_root: the pseudo file systems moved into /sysroot, the
 * initramfs emptied (its memory back), /sysroot made / and the new
 * root's init run as PID 1.  Returns only when that failed. */
static void init_switch(void)
{
	static const char pseudo[] = "/dev\0/proc\0/sys\0/run\0";
	const char *in = par[P_INIT] ? par[P_INIT] : "/sbin/init", *m;
	char p[300];
	struct stat st;
	int fd;
	fmt(p, sizeof p, "/sysroot%s", in);
	if (!access(p, X_OK)) {
		for (m = pseudo; *m; m += strlen(m) + 1) {
			fmt(p, sizeof p, "/sysroot%s", m);
			if (mount(m, p, NULL, MS_MOVE, NULL))
				umount2(m, MNT_DETACH);
		}
		fd = openat(AT_FDCWD, "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (!fstat(fd, &st))
			init_rm(fd, st.st_dev);
		close(fd);
		if (!chdir("/sysroot") && !mount(".", "/", NULL, MS_MOVE, NULL) && !chroot(".") && !chdir("/")) {
			stage(VS_ST_SWITCH_ROOT, "switch_root to %s (%s)", par[P_ROOT], in);
			init_report();
			execv(in, (char *[]){ (char *)in, NULL });
		}
	}
	stage(VS_ST_FAILED, "unable to switch_root to %s (%s): %s", par[P_ROOT], in, vs_strerror(errno));
}

/* Supervise the agent proper: restart it (at once after a release, with
 * a backoff of 1 s doubling to 30 s after failures in a row), and in
 * provisioning go on with the boot once a host released it: switch_root
 * when a root is mounted, else vsock_agent.after.  A failure there (the
 * agent's, or no host within vsock_agent.timeout) powers off with
 * after=poweroff; otherwise the agent serves on, and its release goes on
 * with the boot (the emergency shell's part in /init). */
static void __attribute__((noreturn)) init_loop(int prov, int root, int off)
{
	const char *a = par[P_AFTER] ? par[P_AFTER] : "";
	int after = !strcmp(a, "poweroff") ? RB_POWER_OFF : !strcmp(a, "reboot") ? RB_AUTOBOOT : 0, st, quiet = 0;
	long t = init_num(P_TIMEOUT, 0), deadline = t && prov ? vs_now_ms() + t * 1000 : 0, next = 0, delay = 1000;
	pid_t agent = 0, p;
	for (;;) {
		struct pollfd pf = { sigpipe_fd[0], POLLIN, 0 };
		long now = vs_now_ms(), wait = next - now;
		unsigned long sig;
		if (!agent && !off && wait <= 0) {
			stage(VS_ST_WAITING, "waiting for the host");
			if (!(agent = fork()))
				exit(main(init_ac, init_av));
		}
		if (agent)
			wait = -1;
		if (deadline && deadline <= now) {
			deadline = 0;
			if (!slog->reached) {
				stage(VS_ST_FAILED, "no host within %lds; giving up", t);
				if (prov && after == RB_POWER_OFF)
					init_power(after);
				quiet = agent && !kill(agent, SIGKILL);
			}
		}
		if (deadline && (wait < 0 || deadline - now < wait))
			wait = deadline - now;
		poll(&pf, 1, (int)wait);
		sig = sigpipe_read();
		if (sig & (1UL << SIGUSR2 | 1UL << SIGTERM | 1UL << SIGINT))
			init_power(sig & 1UL << SIGUSR2 ? RB_POWER_OFF : RB_AUTOBOOT);
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p != agent)
				continue;
			agent = 0;
			now = vs_now_ms();
			next = now + 200;
			if (!st) {
				delay = 1000;
				stage(VS_ST_RELEASED, "released by the host");
				if (prov) {
					prov = 0;
					if (root)
						init_switch();
					if (after)
						init_power(after);
				}
				continue;
			}
			if (!quiet) {
				stage(VS_ST_FAILED, "agent %s %d", WIFSIGNALED(st) ? "killed by signal" : "exited with status",
				      WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
				if (prov && after == RB_POWER_OFF)
					init_power(after);
			}
			quiet = 0;
			next = now + delay;
			delay = delay < 16000 ? delay * 2 : 30000;
		}
	}
}

/* PID 1 (or vsock-agent --init): set up, then init_loop. */
static void __attribute__((noreturn)) init_main(void)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGUSR2 };
	static struct slog own;
	static char b[4096], c[1024];
	const char *o, *mode;
	char *v, *x[256];
	int i, k, n, ir;
	init_on = 1;
	/* by hand: musl's mmap() is 200 bytes of checks */
	slog = (struct slog *)syscall(SYS_mmap, 0, sizeof *slog, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if ((long)slog < 0)
		slog = &own;
	reboot(RB_DISABLE_CAD); /* Ctrl-Alt-Del: SIGINT to us */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	init_mounts();
	/* the cpio has no device nodes: the kernel found no console to give us */
	if ((i = openat(AT_FDCWD, "/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC)) >= 0) {
		dup2(i, 0), dup2(i, 1), dup2(i, 2);
		close(i);
	}
	sigpipe_open(sigs, 4);
	ir = boot_flags() & VS_BOOT_INITRAMFS;
	stage(ir ? VS_ST_INITRAMFS : VS_ST_ROOT, ir ? "in the initramfs" : "in the root");
	file_read("/proc/cmdline", b, sizeof b);
	*strchrnul(b, '\n') = 0;
	for (n = init_split(b, x, 256, ' '), k = 0; k < n; k++) {
		if (strncmp(x[k], "vsock_agent.", 12) || !(v = strchr(x[k], '=')))
			continue;
		*v++ = 0;
		for (i = 0, o = init_names; *o && strcmp(o, x[k] + 12); o += strlen(o) + 1)
			i++;
		par[i] = v;
	}
	o = par[P_HOSTNAME] ? par[P_HOSTNAME] : "vsock-guest";
	sethostname(o, strlen(o));
	init_modules();
	/* the agent's command line, as /init makes it (values hold no
	 * blanks); over the loopback every peer is this guest, CID 1 */
	for (v = par[P_ARGS]; v && *v; v++)
		if (*v == ',')
			*v = ' ';
	o = par[P_LISTEN];
	fmt(c, sizeof c, o ? "vsock-agent --allow %s --listen vsock:any:%s %s %s %s %s %s %s %s"
	                                     : "vsock-agent --retry --reconnect %s:%s %s %s %s %s %s %s %s %s",
	    o ? par[P_ALLOW] ? par[P_ALLOW] : virtio ? "2" : "1" : par[P_CID], o ? o : par[P_PORT],
	    par[P_AUTH] ? "--auth" : "", par[P_AUTH], par[P_DENY] ? "--deny" : "", par[P_DENY],
	    par[P_ONLY] ? "--only" : "", par[P_ONLY], par[P_ARGS],
	    par[P_LEGACY] && !strcmp(par[P_LEGACY], "persistent") ? "persistent" : "");
	init_ac = init_split(c, init_av, 47, ' ');
	/* off: no agent; test, demo (busybox /init's) and others: shell */
	mode = par[P_MODE] ? par[P_MODE] : par[P_ROOT] ? "provision" : "shell";
	i = !strcmp(mode, "provision");
	ir = i && par[P_ROOT] && ir && init_root();
	if (par[P_CONTROLLER] && !fork()) {
		x[init_split(par[P_CONTROLLER], x, 8, ',')] = NULL;
		execv(x[0], x);
		_exit(127);
	}
	init_loop(i, ir, !strcmp(mode, "off"));
}

#endif /* VS_INIT_H */
