#!/bin/sh
# The integration suite.  One script for both places: on the dev machine
# over unix: sockets, and inside the test VM over real AF_VSOCK.  POSIX sh
# (busybox ash runs it); helpers are small C programs in $VS_BIN.
#
#   VS_BIN=DIR VS_TRANSPORT=unix|vsock VS_TMP=DIR sh tests/suite.sh [GROUP...]
#
# Prints "ok - NAME", "not ok - NAME", "skip - NAME" per test and ends with
# "N passed, N failed, N skipped".  Groups, one per tests/t_GROUP.sh:
# bad cli dial exec fleet hub init keys legacy pty readme trust xfer (all by default).
set -u

: "${VS_BIN:?VS_BIN must name the folder with vsock-agent, vsock-shell and the test helpers}"
: "${VS_TRANSPORT:=unix}"
: "${VS_TMP:=/tmp/vs-suite.$$}"
SUITE_DIR=$(cd "$(dirname "$0")" && pwd)

AGENT=$VS_BIN/vsock-agent
VSH=$VS_BIN/vsock-shell
TPEER=$VS_BIN/tpeer
TGEN=$VS_BIN/tgen
TPTY=$VS_BIN/tpty

# Safety: AF_VSOCK only inside the test guest, whose /init creates this
# marker.  On the dev machine the vsock peer belongs to the infrastructure.
if [ "$VS_TRANSPORT" = vsock ] && [ ! -e /etc/vsock-test-guest ]; then
	echo "suite.sh: refusing to use AF_VSOCK outside the test guest (no /etc/vsock-test-guest)" >&2
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
case $VS_TRANSPORT in unix|vsock) ;; *) echo "suite.sh: VS_TRANSPORT must be unix or vsock" >&2; exit 2;; esac
# the agents' audit lines: to stderr only, on the dev machine (its kernel
# log is not ours); in the test guest, to the kernel log too
[ "$VS_TRANSPORT" = unix ] && { VSOCK_AGENT_AUDIT=stderr; export VSOCK_AGENT_AUDIT; }

mkdir -p "$VS_TMP"
TMP=$VS_TMP
# What the tests run as another user (nobody, the image's unprivileged
# user) must be reachable for it, wherever the checkout lives (a 0700
# /root, say): copies in a directory of its own that anyone may enter.
PUB=$(mktemp -d /tmp/vs-pub.XXXXXX)
chmod 755 "$PUB"
for b in vsock-agent vsock-shell tpeer trelay; do cp "$VS_BIN/$b" "$PUB/$b"; done
chmod 755 "$PUB"/*
PUB_AGENT=$PUB/vsock-agent PUB_VSH=$PUB/vsock-shell PUB_TPEER=$PUB/tpeer
PASS=0 FAIL=0 SKIP=0
PORT=${VS_PORT_BASE:-5100}
PIDS=""

t_ok()   { PASS=$((PASS + 1)); echo "ok - $1"; }
t_fail() {
	FAIL=$((FAIL + 1)); echo "not ok - $1${2:+: $2}"
	# in the test VM the logs stay inside: show their last words
	if [ "$VS_TRANSPORT" = vsock ]; then
		for l in agent hub; do
			[ -f "$TMP/$l.log" ] && tail -n 3 "$TMP/$l.log" | sed "s/^/#   $l.log: /"
		done
	fi
	return 0
}
t_skip() { SKIP=$((SKIP + 1)); echo "skip - $1${2:+: $2}"; }
# check NAME COMMAND...: passes when COMMAND succeeds
check() { n=$1; shift; if "$@"; then t_ok "$n"; else t_fail "$n"; fi; }
# expect_eq NAME GOT WANT
expect_eq() { if [ "$2" = "$3" ]; then t_ok "$1"; else t_fail "$1" "got '$2', want '$3'"; fi; }

# Text from a hostile peer, and what must become of it on a terminal or in
# a log: ESC, BEL, CR and a newline inside a name (scp's CVE-2019-6109:
# a title set, the screen cleared, "all good" printed over the refusal),
# and the same as vs_esc shows it.
EVIL=$(printf '\033]0;pwned\007\033[2J\rall good\nx')
EVIL_SHOWN='\x1b]0;pwned\x07\x1b[2J\rall good\nx'
# raw_free FILE: FILE holds none of the bytes a terminal acts on in EVIL
# (ESC, BEL, CR)
raw_free() { [ "$(tr -d '\033\007\015' < "$1" | wc -c)" = "$(wc -c < "$1")" ]; }
# shows_escaped NAME FILE WANT: FILE is raw_free and holds WANT
shows_escaped() {
	if ! raw_free "$2"; then t_fail "$1" "raw control bytes: $(od -c "$2" | head -n 5 | tr '\n' ' ')"
	elif ! grep -qF -- "$3" "$2"; then t_fail "$1" "no '$3' in: $(head -c 400 "$2")"
	else t_ok "$1"; fi
}

# Bounded wait: wait_for SECS COMMAND... polls every 0.1 s.
wait_for() {
	w_i=0 w_n=$(($1 * 10)); shift
	while [ $w_i -lt $w_n ]; do "$@" && return 0; sleep 0.1; w_i=$((w_i + 1)); done
	return 1
}

# Fresh addresses: a listening side and the matching connecting side.
# unix: both are the same path.  vsock: listen on any, connect to CID 1
# (the loopback transport keeps it inside the guest).
new_addr() {
	PORT=$((PORT + 1))
	if [ "$VS_TRANSPORT" = unix ]; then
		LADDR=unix:$TMP/s$PORT.sock CADDR=$LADDR
		rm -f "$TMP/s$PORT.sock" # stale from an earlier run: not ready
	else
		LADDR=vsock:any:$PORT CADDR=vsock:1:$PORT
	fi
}
# For an agent that dials the host: the host listens on LADDR; the agent
# dials DADDR (CID 2, its default, on vsock: loopback answers for it).  On
# vsock the port is a reserved one, as the agent's default is: only a
# privileged listener proves itself there (the suite runs as root).
new_dial_addr() {
	new_addr
	if [ "$VS_TRANSPORT" = unix ]; then DADDR=$LADDR; else
		RPORT=$((PORT - 5100 + 200))
		LADDR=vsock:any:$RPORT DADDR=vsock:${1:-2}:$RPORT
	fi
}

addr_ready() {
	case $1 in
	unix:*) [ -S "${1#unix:}" ] ;;
	*) sleep 0.2; true ;;
	esac
}

# agent_listen [AGENT-OPTIONS...]: start a listening agent; sets ADDR
# (what the controller connects to) and APID.
agent_listen() {
	new_addr
	# in the guest the controller reaches the agent over loopback, from
	# CID 1; a real host is CID 2, the agent's default peer filter
	if [ "$VS_TRANSPORT" = vsock ]; then set -- --allow 1 "$@"; fi
	"$AGENT" --listen "$LADDR" "$@" 2>>"$TMP/agent.log" &
	APID=$!
	PIDS="$PIDS $APID"
	ADDR=$CADDR
	wait_for 5 addr_ready "$LADDR"
}
agent_stop() { kill "$APID" 2>/dev/null; wait "$APID" 2>/dev/null; }

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$PUB"
}
trap cleanup EXIT

# Pids whose parent is $CHILD_PARENT (from /proc: busybox ps has no --ppid),
# but for a listening agent's spare (vsock-spare: a session process still
# waiting for its connection).
children_of() {
	for s in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null < "$s" || continue
		comm=${line#*(}; comm=${comm%%)*}
		[ "$comm" = vsock-spare ] && continue
		rest=${line##*) }
		set -- $rest
		[ "$2" = "$CHILD_PARENT" ] && echo "${s#/proc/}" | cut -d/ -f1
	done
}
alive() { kill -0 "$1" 2>/dev/null; }
# hub_up DIR [AGENT-ADDR]: a hub on DIR/hub.sock whose guest g1 dials its
# Unix listener DIR/g1.sock, and that guest's agent (--reconnect), dialing
# AGENT-ADDR (default that listener); HPID and HAPID are theirs; returns
# once g1 is up
hub_up() {
	rm -rf "$1"; mkdir -p "$1"
	"$VSH" serve --vsock off --hub "$1/hub.sock" --unix g1="$1/g1.sock" 2>>"$TMP/hub.log" & HPID=$!
	PIDS="$PIDS $HPID"
	wait_for 5 test -S "$1/hub.sock"
	"$AGENT" --reconnect "${2:-unix:$1/g1.sock}" 2>>"$TMP/agent.log" & HAPID=$!
	PIDS="$PIDS $HAPID"
	"$VSH" wait --hub "$1/hub.sock" @g1 -w 10
}
# session_left: how many processes are in session $SL_SID (from /proc:
# zombies count, they are the agent's to reap)
session_left() {
	sl_n=0
	for s in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null < "$s" || continue
		set -- ${line##*) }
		[ "$4" = "$SL_SID" ] && sl_n=$((sl_n + 1))
	done
	echo "$sl_n"
}
in_session() { SL_SID=$1; [ "$(session_left)" != 0 ]; }
session_gone() { ! in_session "$1"; }
gone() { ! kill -0 "$1" 2>/dev/null; }

# parallel_sessions ADDR N BYTES: N sessions at once, each writing BYTES
# of its own data and exiting with its own number; prints how many came
# back wrong (status or content).
parallel_sessions() {
	ps_i=0 ps_pids=""
	while [ $ps_i -lt "$2" ]; do
		"$VSH" "$1" -- "$TGEN $3 $ps_i; exit $ps_i" > "$TMP/par$ps_i" & ps_pids="$ps_pids $!"
		ps_i=$((ps_i + 1))
	done
	ps_i=0 ps_bad=0
	for ps_p in $ps_pids; do
		wait "$ps_p"; ps_rc=$?
		[ "$ps_rc" = "$ps_i" ] || ps_bad=$((ps_bad + 1))
		[ "$("$TGEN" -c "$3" $ps_i < "$TMP/par$ps_i")" = "ok $3" ] || ps_bad=$((ps_bad + 1))
		ps_i=$((ps_i + 1))
	done
	echo "$ps_bad"
}

# Byte-exact payload check through a command: gen N | vsh cat | sha256
sum_of() { sha256sum | cut -d' ' -f1; }

want_group() {
	[ -z "$GROUPS_WANTED" ] && return 0
	for g in $GROUPS_WANTED; do [ "$g" = "$1" ] && return 0; done
	return 1
}
GROUPS_WANTED="$*"

for f in "$SUITE_DIR"/t_*.sh; do
	g=$(basename "$f" .sh); g=${g#t_}
	want_group "$g" || continue
	. "$f"
done

cleanup
trap - EXIT
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
