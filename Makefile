# vsock-shell: guest agent (static, musl) and host controller.
CC ?= cc
MUSLCC ?= musl-gcc
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
DESTDIR ?=

WARN = -Wall -Wextra -Wshadow -Wno-unused-parameter
CFLAGS ?= -O2 -g
CFLAGS += $(WARN) -D_GNU_SOURCE
# -Oz -fno-pie -flto: 2 KiB of the 64 KiB budget (make size), and no slower
# hash loops than -Os (sha256 and xxh64 measured side by side); one LTO
# partition: no "serial compilation" warning, and 128 bytes less;
# -fno-jump-tables: 0.2 KiB more (a switch as compares: no loop has one).
AGENT_CFLAGS = -Oz $(WARN) -D_GNU_SOURCE -fno-pie -flto -flto-partition=one -fno-ident -ffunction-sections -fdata-sections -fno-jump-tables \
	-fno-asynchronous-unwind-tables -fno-unwind-tables -fno-stack-protector
# -z norelro: a static binary has next to no GOT to protect, and the RELRO
# segment's page alignment costs 3 KiB of the 64 KiB budget.
AGENT_LDFLAGS = -static -no-pie -s -Wl,--gc-sections -Wl,--build-id=none -Wl,-z,noseparate-code -Wl,-z,norelro \
	-Wl,-z,common-page-size=64

HOST_SRC = $(wildcard host/*.c)
HOST_HDR = $(wildcard host/*.h) protocol.h chan.h sha256.h transfer.h auth.h
# The controller is static against musl too: it starts in a third of the
# time a dynamic glibc one takes (0.36 against 1.0-1.3 ms here, a quarter
# of a session's round trip), which is what a command's latency is made
# of.  What glibc would add is NSS, wanted only for `serve --group NAME`
# with a group from LDAP and the like: then the hub asks getent(1).
# HOST_CC=cc builds it dynamic instead.
HOST_CC ?= $(MUSLCC)
HOST_CFLAGS ?= -O2
HOST_LDFLAGS ?= -static
TEST_HELPERS = tpeer tgen tpty tpump tbench trelay tcut tfwd
GUEST = build/guest
# the vsock guard and its self-test; the fault-injection shim, the shim
# that plays a vsock host's errors (vsockerr.so), and the glibc agent and
# controller they can be preloaded into (tests/run: guard, host, faults)
GUARD_BINS = build/vsguard build/host/tguard
FAULT_BINS = build/faults/faults.so build/faults/vsockerr.so build/faults/vsock-agent build/faults/vsock-shell
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=

all: vsock-agent vsock-shell

# Four flags, 1.2 KB of the 64 KiB budget, the hash loops' instruction
# counts unchanged (callgrind): -mgeneral-regs-only, as the agent does no
# floating point: its variadic functions no longer save the vector
# registers (the SHA-NI code enables what it uses itself); and functions
# called once, register saves around calls and tail calls left as they are
# written, which -Oz's inlining and scheduling made larger here.
AGENT_CFLAGS += -mgeneral-regs-only -fno-inline-functions-called-once -fno-caller-saves -fno-optimize-sibling-calls
vsock-agent: agent.c init.h protocol.h chan.h sha256.h transfer.h auth.h
	$(MUSLCC) $(AGENT_CFLAGS) -o $@ agent.c $(AGENT_LDFLAGS)
	objcopy -R .comment $@

vsock-shell: $(HOST_SRC) $(HOST_HDR)
	$(HOST_CC) $(HOST_CFLAGS) $(WARN) -D_GNU_SOURCE -Ihost -I. -o $@ $(HOST_SRC) $(HOST_LDFLAGS) $(LDFLAGS)

# Test helpers for the dev machine (dynamic, plain cc).
build/host/%: tests/%.c protocol.h chan.h transfer.h sha256.h
	@mkdir -p build/host
	$(CC) $(CFLAGS) -I. -o $@ $< -lutil

build/test_frame: tests/test_frame.c protocol.h chan.h sha256.h auth.h transfer.h
	@mkdir -p build
	$(CC) $(CFLAGS) -I. -o $@ tests/test_frame.c

build/vsguard: tests/vsguard.c tests/vsguard.h
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ tests/vsguard.c
build/host/tguard: tests/vsguard.h

build/faults/faults.so: tests/faults.c
	@mkdir -p build/faults
	$(CC) $(CFLAGS) -shared -fPIC -o $@ tests/faults.c
build/faults/vsockerr.so: tests/vsockerr.c
	@mkdir -p build/faults
	$(CC) $(CFLAGS) -shared -fPIC -o $@ tests/vsockerr.c
build/faults/vsock-agent: agent.c init.h protocol.h chan.h sha256.h transfer.h auth.h
	@mkdir -p build/faults
	$(CC) $(CFLAGS) -o $@ agent.c
# and the controller, dynamic against glibc, that the shim can be preloaded into
build/faults/vsock-shell: $(HOST_SRC) $(HOST_HDR)
	@mkdir -p build/faults
	$(CC) $(CFLAGS) -Ihost -I. -o $@ $(HOST_SRC)

# Everything the test guest needs, static against musl.
$(GUEST)/vsock-agent: vsock-agent
	@mkdir -p $(GUEST)
	cp vsock-agent $@
$(GUEST)/vsock-shell: $(HOST_SRC) $(HOST_HDR)
	@mkdir -p $(GUEST)
	$(MUSLCC) -Os $(WARN) -D_GNU_SOURCE -Ihost -I. -static -s -o $@ $(HOST_SRC)
$(GUEST)/%: tests/%.c protocol.h chan.h transfer.h sha256.h
	@mkdir -p $(GUEST)
	$(MUSLCC) -Os $(WARN) -D_GNU_SOURCE -I. -static -s -o $@ $<

guest-bins: $(GUEST)/vsock-agent $(GUEST)/vsock-shell $(addprefix $(GUEST)/,$(TEST_HELPERS))
host-bins: all $(addprefix build/host/,$(TEST_HELPERS)) build/test_frame $(GUARD_BINS) $(FAULT_BINS)

# the agent's bytes (the budget: 65536), then the minimal image's
size: vsock-agent
	@stat -c '%s' vsock-agent
	@out=$$(scripts/mkinitramfs --minimal build/minimal-initramfs.cpio.gz 2>&1) && echo "$${out#mkinitramfs: }" || \
		echo "minimal image: not built: $${out#mkinitramfs: }"

initramfs: vsock-agent
	scripts/mkinitramfs initramfs.cpio.gz

demo: vsock-agent $(GUEST)/vsock-shell
	scripts/run-vm --demo

deps:
	scripts/setup

test: host-bins guest-bins
	tests/run

# tests/run's nested stage alone: a vhost-vsock host VM and two guests
# (VS_NESTED_CASES picks cases)
test-nested: vsock-agent guest-bins
	tests/nested-run

bench: host-bins guest-bins
	tests/bench

# libFuzzer targets (fuzz/targets), FUZZ_SECONDS each, under the vsock
# guard; what they find stays in build/fuzz/corpus, failures in build/fuzz/crash
fuzz: build/vsguard
	build/vsguard fuzz/run -t $(FUZZ_SECONDS) -w build/fuzz $(FUZZ_TARGETS)

UNITS = vsock-shell-hub.service vsock-agent.service

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 755 vsock-agent $(DESTDIR)$(BINDIR)/vsock-agent
	install -m 755 vsock-shell $(DESTDIR)$(BINDIR)/vsock-shell
	for u in $(UNITS); do \
		sed 's|@BINDIR@|$(BINDIR)|g' systemd/$$u > $(DESTDIR)$(SYSTEMDUNITDIR)/$$u && \
		chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; \
	done
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(BASHCOMPDIR)
	install -m 644 man/vsock-shell.1 $(DESTDIR)$(MANDIR)/man1/vsock-shell.1
	install -m 644 man/vsock-agent.8 $(DESTDIR)$(MANDIR)/man8/vsock-agent.8
	install -m 644 completion/vsock-shell $(DESTDIR)$(BASHCOMPDIR)/vsock-shell
	install -m 644 completion/vsock-agent $(DESTDIR)$(BASHCOMPDIR)/vsock-agent

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/vsock-agent $(DESTDIR)$(BINDIR)/vsock-shell
	for u in $(UNITS); do rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/$$u; done
	rm -f $(DESTDIR)$(MANDIR)/man1/vsock-shell.1 $(DESTDIR)$(MANDIR)/man8/vsock-agent.8
	rm -f $(DESTDIR)$(BASHCOMPDIR)/vsock-shell $(DESTDIR)$(BASHCOMPDIR)/vsock-agent

clean:
	rm -rf vsock-agent vsock-shell build initramfs.cpio.gz

.PHONY: all size initramfs demo deps test test-nested bench fuzz install uninstall clean guest-bins host-bins
