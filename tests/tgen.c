/*
 * tgen - deterministic test data.
 *
 *   tgen N [SEED]             write N pseudo-random bytes to stdout
 *   tgen -c N [SEED]          read stdin, check it is exactly that stream;
 *                             prints "ok N" or where it first differs
 *   tgen -p FILE N [SEED]     as the first form, writing the count written
 *                             so far to FILE after every 64 KiB (to watch
 *                             backpressure from outside)
 *   tgen -s SECS              read stdin slowly: nothing for SECS, then all
 *   tgen -r PID               print PID's VmRSS in kB (from /proc)
 *   tgen -u UID[:GID[:GROUP]] CMD [ARG...]
 *                             run CMD as UID (group GID, default UID; one
 *                             supplementary GROUP, default none)
 *   tgen -g FILE SECS         append 4 KiB to FILE every ms for SECS
 *   tgen -t CMD [ARG...]      run CMD; print its wall time in ms on stderr
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <grp.h>
#include <time.h>
#include <sys/wait.h>

static uint64_t st;

static void fill(uint8_t *b, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++) {
		if ((i & 7) == 0) {
			st ^= st << 13;
			st ^= st >> 7;
			st ^= st << 17;
		}
		b[i] = (uint8_t)(st >> (8 * (i & 7)));
	}
}

static int gen(unsigned long long n, const char *progress)
{
	static uint8_t b[65536];
	unsigned long long done = 0;
	while (done < n) {
		size_t k = n - done < sizeof b ? (size_t)(n - done) : sizeof b, off = 0;
		fill(b, k);
		while (off < k) {
			ssize_t r = write(1, b + off, k - off);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return 1;
			off += (size_t)r;
		}
		done += k;
		if (progress) {
			char t[32];
			int fd = open(progress, O_WRONLY | O_CREAT | O_TRUNC, 0644), l;
			l = snprintf(t, sizeof t, "%llu\n", done);
			if (fd >= 0) {
				if (write(fd, t, (size_t)l) < 0)
					return 1;
				close(fd);
			}
		}
	}
	return 0;
}

static int check(unsigned long long n)
{
	static uint8_t b[65536], want[65536];
	unsigned long long got = 0;
	for (;;) {
		ssize_t r = read(0, b, sizeof b);
		size_t i;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return perror("tgen: read"), 1;
		if (r == 0)
			break;
		if (got + (unsigned long long)r > n) {
			printf("too long: more than %llu bytes\n", n);
			return 1;
		}
		/* the stream is generated in 64 KiB blocks; regenerate in step */
		for (i = 0; i < (size_t)r; i++) {
			unsigned long long pos = got + i;
			if (pos % sizeof want == 0) {
				size_t k = n - pos < sizeof want ? (size_t)(n - pos) : sizeof want;
				fill(want, k);
			}
			if (b[i] != want[pos % sizeof want]) {
				printf("differs at byte %llu\n", pos);
				return 1;
			}
		}
		got += (unsigned long long)r;
	}
	if (got != n) {
		printf("short: %llu of %llu bytes\n", got, n);
		return 1;
	}
	printf("ok %llu\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	const char *progress = NULL;
	int ck = 0;
	if (argc == 3 && !strcmp(argv[1], "-s")) {
		static char b[65536];
		sleep((unsigned)atoi(argv[2]));
		while (read(0, b, sizeof b) > 0)
			;
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "-r")) {
		char path[64], line[256];
		FILE *f;
		snprintf(path, sizeof path, "/proc/%s/status", argv[2]);
		f = fopen(path, "r");
		if (!f)
			return 1;
		while (fgets(line, sizeof line, f))
			if (!strncmp(line, "VmRSS:", 6))
				printf("%ld\n", strtol(line + 6, NULL, 10));
		return 0;
	}
	if (argc > 3 && !strcmp(argv[1], "-u")) {
		char *c = strchr(argv[2], ':');
		gid_t g = (gid_t)atoi(c ? c + 1 : argv[2]), sup = 0;
		int nsup = 0;
		if (c && (c = strchr(c + 1, ':')))
			sup = (gid_t)atoi(c + 1), nsup = 1;
		if (setgroups((size_t)nsup, &sup) < 0 || setgid(g) < 0 || setuid((uid_t)atoi(argv[2])) < 0)
			return perror("tgen: unable to drop privileges"), 1;
		execvp(argv[3], argv + 3);
		return perror("tgen: exec"), 127;
	}
	if (argc > 2 && !strcmp(argv[1], "-t")) {
		struct timespec a, b;
		int ws;
		pid_t p;
		clock_gettime(CLOCK_MONOTONIC, &a);
		p = fork();
		if (p == 0) {
			execvp(argv[2], argv + 2);
			_exit(127);
		}
		if (p < 0 || waitpid(p, &ws, 0) < 0)
			return 1;
		clock_gettime(CLOCK_MONOTONIC, &b);
		fprintf(stderr, "%ld\n", (long)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000));
		return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	}
	if (argc == 4 && !strcmp(argv[1], "-g")) {
		static char b[4096];
		time_t end = time(NULL) + atoi(argv[3]);
		int fd = open(argv[2], O_WRONLY | O_APPEND);
		if (fd < 0)
			return perror("tgen: open"), 1;
		memset(b, 'g', sizeof b);
		/* 4 KiB a millisecond: enough to be caught, bounded (a small
		 * guest's tmpfs must not fill up) */
		while (time(NULL) < end) {
			if (write(fd, b, sizeof b) < 0)
				return 1;
			usleep(1000);
		}
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "-c"))
		ck = 1, argv++, argc--;
	else if (argc > 2 && !strcmp(argv[1], "-p"))
		progress = argv[2], argv += 2, argc -= 2;
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: tgen [-c | -p FILE] N [SEED] | -s SECS | -r PID\n");
		return 2;
	}
	st = 0x9e3779b97f4a7c15ull ^ (argc == 3 ? strtoull(argv[2], NULL, 10) * 0x100000001b3ull : 0);
	if (!st)
		st = 1;
	return ck ? check(strtoull(argv[1], NULL, 10)) : gen(strtoull(argv[1], NULL, 10), progress);
}
