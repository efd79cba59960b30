#!/usr/bin/env bash
# bench-hub.sh: the hub at scale (make bench's `hub` section), over Unix
# sockets, one listener per simulated guest, as Firecracker delivers them:
#   - N dialing agents connected to one hub (VS_BENCH_HUB_N, default 1000);
#   - the hub's RSS per idle agent beyond its base (target <= 16 KiB);
#   - vsock-shell ls over all of them (target < 100 ms);
#   - N concurrent `-- true` sessions through the hub, all succeeding;
#   - session setup through the hub against a direct one, as a ratio in
#     one run (target <= 1.2);
#   - upload throughput through the hub against direct (equal within noise).
# Needs VS_BIN and VS_TMP (tests/bench-lib.sh).  Everything it starts is
# stopped by pid; nothing opens AF_VSOCK (--vsock off).
set -uo pipefail
. "$(dirname "$0")/bench-lib.sh"

N=${VS_BENCH_HUB_N:-1000}
ROUNDS=${VS_BENCH_HUB_ROUNDS:-200}
MB=${VS_BENCH_HUB_MB:-256}
H=$T/hub
rm -rf "$H"; mkdir -p "$H/g"
pids=
cleanup() {
	# agents first (they would dial again), then the hub
	[ -n "$pids" ] && kill $pids 2>/dev/null
	[ -n "${hp:-}" ] && kill "$hp" 2>/dev/null
	wait 2>/dev/null
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null

rss_of() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
hub_up() { "$VSH" ls 2>/dev/null | awk 'NR > 1 && $3 == "up"' | wc -l; }

export VSOCK_SHELL_HUB=$H/hub.sock
i=0
: >"$H/hub.conf"
while [ $i -lt "$N" ]; do echo "guest g$i unix $H/g/$i.sock" >>"$H/hub.conf"; i=$((i + 1)); done
echo "guest direct-dial unix $H/dd.sock" >>"$H/hub.conf"
VSOCK_AGENT_AUDIT=stderr "$VSH" serve --vsock off --hub "$VSOCK_SHELL_HUB" --config "$H/hub.conf" 2>"$H/hub.log" &
hp=$!
sock_wait "$VSOCK_SHELL_HUB" || { notok "hub: the hub did not start ($(tail -n 2 "$H/hub.log"))"; finish; exit 1; }
sleep 0.3
base=$(rss_of "$hp")

# N agents dial in, each on its own guest's socket
t0=$(date +%s%N)
i=0
while [ $i -lt "$N" ]; do
	VSOCK_AGENT_AUDIT=stderr "$AGENT" --reconnect "unix:$H/g/$i.sock" 2>>"$H/agents.log" &
	pids="$pids $!"
	i=$((i + 1))
done
k=0
while [ "$(hub_up)" -lt "$N" ] && [ $k -lt 120 ]; do sleep 0.5; k=$((k + 1)); done
up=$(hub_up)
t1=$(date +%s%N)
if [ "$up" = "$N" ]; then
	ok "hub: $N dialing agents connected to one hub in $(( (t1 - t0) / 1000000 )) ms"
else
	notok "hub: only $up of $N agents connected ($(grep -c . "$H/agents.log") lines of agent errors)"
fi
sleep 1
rss=$(rss_of "$hp")
per=$(awk -v a="$rss" -v b="$base" -v n="$N" 'BEGIN { printf "%.1f", (a - b) / n }')
target hub-rss "hub: RSS ${base} kB idle, ${rss} kB with $N agents: $per KiB per idle agent" "$per" "<=" 16

# ls over all of them
best=
for r in 1 2 3 4 5; do
	t0=$(date +%s%N)
	"$VSH" ls > "$H/ls.out" 2>&1
	t1=$(date +%s%N)
	us=$(( (t1 - t0) / 1000 ))
	[ -z "$best" ] || [ "$us" -lt "$best" ] && best=$us
done
lines=$(($(wc -l < "$H/ls.out") - 1))
target hub-ls "hub: vsock-shell ls over $lines guests: $(ms "$best") (best of 5)" "$(awk -v u="$best" 'BEGIN { print u / 1000 }')" "<" 100

# N sessions at once through the hub, spread over the guests
out=$("$TBENCH" -p "$N" sh -c 'exec "$0" "@g$(( $$ % '"$N"' ))" -- true' "$VSH" 2>/dev/null)
set -- $out
if [ "${2:-1}" = 0 ]; then
	ok "hub: $N sessions at once through the hub, none failed, in ${1} ms"
else
	notok "hub: $N sessions at once through the hub: ${2:-?} failed (${1:-?} ms)"
fi

# session setup: through the hub against direct, the same agent build, in
# turns; direct is a listening agent, the hub's guest a dialing one
VSOCK_AGENT_AUDIT=stderr "$AGENT" --listen "unix:$H/direct.sock" 2>>"$H/agents.log" &
pids="$pids $!"
VSOCK_AGENT_AUDIT=stderr "$AGENT" --reconnect "unix:$H/dd.sock" 2>>"$H/agents.log" &
pids="$pids $!"
sock_wait "$H/direct.sock"
"$VSH" wait @direct-dial -w 10 >/dev/null 2>&1
out=$(TBENCH_GAP_MS=2 "$TBENCH" -r "$ROUNDS" "$VSH" "unix:$H/direct.sock" --argv -- /bin/true :: \
	"$VSH" @direct-dial --argv -- /bin/true 2>/dev/null)
direct=$(echo "$out" | sed -n 1p | cut -d' ' -f1) via=$(echo "$out" | sed -n 2p | cut -d' ' -f1)
if [ -n "$direct" ] && [ -n "$via" ]; then
	target hub-setup "hub: a session through the hub $(ms "$via"), direct $(ms "$direct"): $(ratio "$via" "$direct")x (median of $ROUNDS each, in turns)" "$(ratio "$via" "$direct")" "<=" 1.20
else
	notok "hub: session setup: $out"
fi

# upload throughput through the hub against direct
"$TBENCH" -g $((MB * 1048576)) 5 > "$H/src"
best_d= best_h=
for r in 1 2 3; do
	rm -f "$H/dst"
	t0=$(date +%s%N); "$VSH" cp -q "unix:$H/direct.sock" "$H/src" ":$H/dst"; t1=$(date +%s%N)
	d=$(( (t1 - t0) / 1000 ))
	rm -f "$H/dst"
	t0=$(date +%s%N); "$VSH" cp -q @direct-dial "$H/src" ":$H/dst"; t1=$(date +%s%N)
	h=$(( (t1 - t0) / 1000 ))
	[ -z "$best_d" ] || [ "$d" -lt "$best_d" ] && best_d=$d
	[ -z "$best_h" ] || [ "$h" -lt "$best_h" ] && best_h=$h
done
cmp -s "$H/src" "$H/dst" || notok "hub: the upload through the hub differs from its source"
ok "hub: upload of $MB MiB through the hub $(ms "$best_h"), direct $(ms "$best_d"): $(ratio "$best_d" "$best_h") of direct's throughput (best of 3)"
rm -f "$H/src" "$H/dst"
finish
