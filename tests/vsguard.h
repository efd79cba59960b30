/* vsguard.h - what tests/vsguard.c's filter and tests/tguard.c agree on. */
#ifndef VSGUARD_H
#define VSGUARD_H

#include <sys/syscall.h>

#define AF_VSOCK_NR 40  /* AF_VSOCK, a fixed kernel ABI number */

/* for headers older than io_uring (the number is the same everywhere) */
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif
/* x86-64: the bit that makes a system call number an x32 one */
#define X32_SYSCALL_BIT 0x40000000u

/* A socket family no kernel has ("VSG" + 'U'): outside the guard
 * socket(VSGUARD_MARKER, ...) fails with EAFNOSUPPORT and creates nothing;
 * under it the filter answers with an errno socket() never returns. */
#define VSGUARD_MARKER 0x56534755u
#define VSGUARD_MARKER_ERRNO ENOTRECOVERABLE

#endif
