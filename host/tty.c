/* tty.c - the local terminal: raw mode in, the saved mode back out on
 * every exit path (normal exit, die(), SIGTERM/SIGHUP via the loop). */
#include "vsh.h"

#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved;
static int saved_fd = -1;
static int registered;

int tty_is_raw(void)
{
	return saved_fd >= 0;
}

void tty_restore(void)
{
	if (saved_fd < 0)
		return;
	tcsetattr(saved_fd, TCSADRAIN, &saved);
	saved_fd = -1;
}

int tty_raw(int fd)
{
	struct termios t;
	if (tcgetattr(fd, &saved) < 0)
		return -1;
	t = saved;
	/* cfmakeraw, minus nothing: the remote line discipline does the work */
	t.c_iflag &= ~(unsigned)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXOFF);
	t.c_oflag &= ~(unsigned)OPOST;
	t.c_lflag &= ~(unsigned)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cflag &= ~(unsigned)(CSIZE | PARENB);
	t.c_cflag |= CS8;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSADRAIN, &t) < 0)
		return -1;
	saved_fd = fd;
	if (!registered) /* again after a suspend (~^Z): once is enough */
		atexit(tty_restore);
	registered = 1;
	return 0;
}

int tty_winsize(uint16_t *rows, uint16_t *cols, uint16_t *xp, uint16_t *yp)
{
	struct winsize ws;
	int fds[3] = { 0, 1, 2 }, i;
	for (i = 0; i < 3; i++) {
		if (ioctl(fds[i], TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
			*rows = ws.ws_row;
			*cols = ws.ws_col;
			if (xp)
				*xp = ws.ws_xpixel;
			if (yp)
				*yp = ws.ws_ypixel;
			return 0;
		}
	}
	return -1;
}
