/* vsguard.h - what tests/vsguard.c's filter and tests/tguard.c agree on. */
#ifndef VSGUARD_H
#define VSGUARD_H

#define AF_VSOCK_NR 40  /* AF_VSOCK, a fixed kernel ABI number */

/* A socket family no kernel has ("VSG" + 'U'): outside the guard
 * socket(VSGUARD_MARKER, ...) fails with EAFNOSUPPORT and creates nothing;
 * under it the filter answers with an errno socket() never returns. */
#define VSGUARD_MARKER 0x56534755u
#define VSGUARD_MARKER_ERRNO ENOTRECOVERABLE

#endif
