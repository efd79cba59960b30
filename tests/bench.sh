#!/bin/sh
# bench.sh - file transfer throughput against a raw byte pump over the same
# transport, measured side by side in one run (best of N), as ratios.  Runs
# on the dev machine (unix:) and in the test VM (AF_VSOCK), like suite.sh:
#
#   VS_BIN=DIR VS_TRANSPORT=unix|vsock VS_TMP=DIR [VS_BENCH_MB=1024]
#   [VS_BENCH_RUNS=3] sh tests/bench.sh
#
# The pump reads the file, sends it, and the receiver writes and fsyncs it:
# the ceiling.  Ours adds framing, the end-to-end hash on both sides, the
# temporary file and the rename.  Lines are "ok - bench: ..." so that the
# VM runner relays them.
set -u
: "${VS_BIN:?}" "${VS_TMP:?}"
: "${VS_TRANSPORT:=unix}" "${VS_BENCH_MB:=1024}" "${VS_BENCH_RUNS:=5}"
if [ "$VS_TRANSPORT" = vsock ] && [ ! -e /etc/vsock-test-guest ]; then
	echo "bench.sh: refusing to use AF_VSOCK outside the test guest" >&2
	exit 1
fi
TGEN=$VS_BIN/tgen VSH=$VS_BIN/vsock-shell AGENT=$VS_BIN/vsock-agent PUMP=$VS_BIN/tpump
T=$VS_TMP
mkdir -p "$T"
bytes=$((VS_BENCH_MB * 1048576))
port=6100
addr() {
	port=$((port + 1))
	if [ "$VS_TRANSPORT" = unix ]; then LA=unix:$T/b$port.sock CA=$LA; rm -f "$T/b$port.sock"
	else LA=vsock:any:$port CA=vsock:1:$port; fi
}
ready() { case $1 in unix:*) w=0; while [ ! -S "${1#unix:}" ] && [ $w -lt 50 ]; do sleep 0.1; w=$((w + 1)); done;; *) sleep 0.3;; esac; }
best() { [ -z "$1" ] || [ "$2" -lt "$1" ] && echo "$2" || echo "$1"; }
rate() { echo $((bytes / 1000 / ($1 > 0 ? $1 : 1))); }   # MB/s from ms
ratio() { r=$((100 * $1 / ($2 > 0 ? $2 : 1))); printf '%d.%02d' $((r / 100)) $((r % 100)); }

"$TGEN" "$bytes" 1 > "$T/src" || exit 1
addr
allow=; [ "$VS_TRANSPORT" = vsock ] && allow="--allow 1"
"$AGENT" --listen "$LA" $allow 2>/dev/null &
ap=$!
ready "$LA"
AGENT_ADDR=$CA

pump= up= down= fail=0
i=0
while [ $i -lt "$VS_BENCH_RUNS" ]; do
	rm -f "$T/dst"
	addr
	"$PUMP" -l "$LA" "$T/dst" > "$T/pump.ms" &
	pp=$!
	ready "$LA"
	"$PUMP" "$CA" "$T/src" || fail=1
	wait "$pp" || fail=1
	pump=$(best "$pump" "$(cat "$T/pump.ms")")

	rm -f "$T/dst"
	"$TGEN" -t "$VSH" cp -q "$AGENT_ADDR" "$T/src" ":$T/dst" 2> "$T/up.ms" || fail=1
	up=$(best "$up" "$(tail -n 1 "$T/up.ms")")
	[ $i -eq 0 ] && { cmp -s "$T/src" "$T/dst" || fail=1; }

	rm -f "$T/dst"
	"$TGEN" -t "$VSH" cp -q "$AGENT_ADDR" ":$T/src" "$T/dst" 2> "$T/down.ms" || fail=1
	down=$(best "$down" "$(tail -n 1 "$T/down.ms")")
	[ $i -eq 0 ] && { cmp -s "$T/src" "$T/dst" || fail=1; }
	i=$((i + 1))
done
kill "$ap" 2>/dev/null
rm -f "$T/src" "$T/dst"
if [ -z "$pump" ] || [ -z "$up" ] || [ -z "$down" ]; then
	echo "not ok - bench: a run failed (pump '$pump', upload '$up', download '$down' ms)"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi

echo "ok - bench: $VS_TRANSPORT, $VS_BENCH_MB MiB, best of $VS_BENCH_RUNS"
echo "ok - bench: raw pump   $pump ms  $(rate "$pump") MB/s  (ratio 1.00)"
echo "ok - bench: upload     $up ms  $(rate "$up") MB/s  ratio $(ratio "$pump" "$up") of the pump"
echo "ok - bench: download   $down ms  $(rate "$down") MB/s  ratio $(ratio "$pump" "$down") of the pump"
if [ $fail -eq 0 ]; then echo "4 passed, 0 failed, 0 skipped"; else echo "not ok - bench: a transfer failed or differed"; echo "4 passed, 1 failed, 0 skipped"; fi
[ $fail -eq 0 ]
