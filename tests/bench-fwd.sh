#!/usr/bin/env bash
# bench-fwd.sh - forwarding (-L) on this machine, over unix:, against what
# the same machine does without it, measured side by side in one run:
#
#   throughput  one TCP stream through -L, VS_BENCH_FWD_MB (1024) host to
#               guest and then guest to host, against the raw pump: the
#               same source and sink (tfwd) over one Unix socket, the
#               transport, and nothing else (target >= 0.9)
#   concurrency VS_BENCH_FWD_CONC (1000) forwarded connections at once,
#               each echoing its own 10 KB, bounded in time: none may fail
#   setup       VS_BENCH_N (200) connections through -L one after another
#               (connect, the target's hello and EOF, ours) against as many
#               direct exec sessions of `true` (target <= 1.2); the target
#               forks and execs nothing, as the agent execs `true`
#
#   VS_BIN=DIR VS_TMP=DIR bash tests/bench-fwd.sh    (make bench: section fwd)
set -uo pipefail
. "$(dirname "$0")/bench-lib.sh"
TFWD=$VS_BIN/tfwd
MB=${VS_BENCH_FWD_MB:-1024}
CONC=${VS_BENCH_FWD_CONC:-1000}
N=${VS_BENCH_N:-200}
[ -x "$TFWD" ] || { notok "fwd: no $TFWD (make host-bins)"; finish; exit; }
pids=
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT
bg() { "$@" 2>>"$T/fwd.log" & pids="$pids $!"; }
# a free TCP port on the loopback, from 20000 up
port=$((20000 + $$ % 10000))
nport() { port=$((port + 1)); }
ms_of() { "$TGEN" -t "$@" 2>&1 >/dev/null | tail -n 1; }

agent_start fwd "$VS_BIN" || { notok "fwd: unable to start the agent"; finish; exit; }
A=unix:$T/fwd.sock
bytes=$((MB * 1048576))

# targets in the "guest" (this machine): a sink, a source, an echo
nport; SINK=$port; bg "$TFWD" serve "tcp:127.0.0.1:$SINK" 'cat > /dev/null'
nport; SRC=$port; bg "$TFWD" serve "tcp:127.0.0.1:$SRC" "head -c $bytes /dev/zero"
nport; ECHO=$port; bg "$TFWD" serve "tcp:127.0.0.1:$ECHO" cat
nport; HELLO=$port; "$TFWD" half "tcp:127.0.0.1:$HELLO" >/dev/null 2>>"$T/fwd.log" & pids="$pids $!"
# the raw pump's: the same over a Unix socket
bg "$TFWD" serve "unix:$T/rsink.sock" 'cat > /dev/null'
bg "$TFWD" serve "unix:$T/rsrc.sock" "head -c $bytes /dev/zero"
nport; LS=$port; nport; LR=$port; nport; LE=$port; nport; LH=$port
bg "$VSH" -N -L "$LS:127.0.0.1:$SINK" -L "$LR:127.0.0.1:$SRC" -L "$LE:127.0.0.1:$ECHO" -L "$LH:127.0.0.1:$HELLO" "$A"
sleep 1

# --- throughput ---
best() { # CMD...: the fastest of VS_BENCH_RUNS (2) runs, in ms
	local i b= t
	for i in $(seq "${VS_BENCH_RUNS:-2}"); do
		t=$(ms_of "$@")
		[ -z "$b" ] || [ "$t" -lt "$b" ] && b=$t
	done
	echo "$b"
}
raw_up=$(best "$TFWD" send "unix:$T/rsink.sock" "$bytes")
fwd_up=$(best "$TFWD" send "tcp:127.0.0.1:$LS" "$bytes")
raw_dn=$(best sh -c "$TFWD cat unix:$T/rsrc.sock < /dev/null > /dev/null")
fwd_dn=$(best sh -c "$TFWD cat tcp:127.0.0.1:$LR < /dev/null > /dev/null")
mbs() { awk -v b="$bytes" -v t="$1" 'BEGIN { printf "%.0f MB/s", (t > 0 ? b / 1e6 / (t / 1000) : 0) }'; }
target fwd_up "fwd: -L, $MB MiB host to guest: $(mbs "$fwd_up") against the raw pump's $(mbs "$raw_up"), $(ratio "$raw_up" "$fwd_up")" \
	"$(ratio "$raw_up" "$fwd_up")" '>=' 0.9
target fwd_dn "fwd: -L, $MB MiB guest to host: $(mbs "$fwd_dn") against the raw pump's $(mbs "$raw_dn"), $(ratio "$raw_dn" "$fwd_dn")" \
	"$(ratio "$raw_dn" "$fwd_dn")" '>=' 0.9

# --- concurrency ---
i=0 cp=
t0=$(date +%s%N)
while [ $i -lt "$CONC" ]; do
	{ "$TGEN" 10000 $i | timeout 120 "$TFWD" cat "tcp:127.0.0.1:$LE" | "$TGEN" -c 10000 $i > "$T/c$i" 2>&1; } &
	cp="$cp $!"
	i=$((i + 1))
done
for p in $cp; do wait "$p"; done
t1=$(date +%s%N)
bad=0 i=0
while [ $i -lt "$CONC" ]; do [ "$(cat "$T/c$i" 2>/dev/null)" = "ok 10000" ] || bad=$((bad + 1)); i=$((i + 1)); done
if [ "$bad" = 0 ]; then
	ok "fwd: $CONC forwarded connections at once, each 10 KB echoed: none failed, in $(( (t1 - t0) / 1000000 )) ms"
else
	notok "fwd: $CONC forwarded connections at once: $bad failed"
fi

# --- setup ---
fwd_set=$(ms_of sh -c "i=0; while [ \$i -lt $N ]; do $TFWD cat tcp:127.0.0.1:$LH < /dev/null > /dev/null || exit 1; i=\$((i + 1)); done")
exec_set=$(ms_of sh -c "i=0; while [ \$i -lt $N ]; do $VSH $A true || exit 1; i=\$((i + 1)); done")
target fwd_setup "fwd: setup through -L: $(ratio "$fwd_set" "$N") ms per connection against $(ratio "$exec_set" "$N") ms per exec session, $(ratio "$fwd_set" "$exec_set")" \
	"$(ratio "$fwd_set" "$exec_set")" '<=' 1.2

agent_stop fwd
finish
