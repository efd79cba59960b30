#!/bin/sh
# tests/faults.sh: the integration suite's exec and xfer groups with every
# socket and pipe call of both programs made awkward by tests/faults.c
# (short counts down to one byte, EINTR), byte-exact as without it.
#
#   VS_TMP=DIR sh tests/faults.sh            (tests/run's faults stage)
#
# Needs build/faults/faults.so, build/faults/vsock-agent (a glibc build:
# the static musl agent cannot be preloaded), vsock-shell and the helpers
# in build/host (make host-bins).  The shim goes into the agent and the
# controller only, through wrapper scripts in DIR/bin; the helpers that
# generate and check the data run as they are.
#   VS_FAULT_SEED (default 1; the controller gets SEED+1), VS_FAULT_RATE
#   (percent of calls, default 25), VS_FAULT_EINTR (percent of faults,
#   default 25), VS_FAULT_GROUPS (default "exec xfer")
# Prints ok/not ok lines and "N passed, N failed, N skipped" last.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
: "${VS_TMP:?VS_TMP must name a scratch directory}"
seed=${VS_FAULT_SEED:-1} rate=${VS_FAULT_RATE:-25} eintr=${VS_FAULT_EINTR:-25}
groups=${VS_FAULT_GROUPS:-exec xfer}
D=$VS_TMP
PASS=0 FAIL=0 SKIP=0
t_ok() { PASS=$((PASS + 1)); echo "ok - faults: $1"; }
t_fail() { FAIL=$((FAIL + 1)); echo "not ok - faults: $1${2:+: $2}"; }
finish() { echo "$PASS passed, $FAIL failed, $SKIP skipped"; [ "$FAIL" -eq 0 ]; exit; }

for f in build/faults/faults.so build/faults/vsock-agent build/faults/vsock-shell build/host/tgen; do
	[ -e "$root/$f" ] || { t_fail "setup" "no $f (make host-bins)"; finish; }
done
# Everything in one 755 tree: the xfer group runs an agent as nobody.
mkdir -p "$D/lib" "$D/bin" || exit 2
chmod 755 "$D" "$D/lib" "$D/bin"
cp "$root/build/faults/faults.so" "$root/build/faults/vsock-agent" "$D/lib/"
cp "$root/build/faults/vsock-shell" "$D/lib/vsock-shell"
SO=$D/lib/faults.so STATS=$D/stats
rm -f "$STATS"
# wrapper NAME SEED: DIR/bin/NAME runs DIR/lib/NAME with the shim
wrapper() {
	cat > "$D/bin/$1" <<EOF
#!/bin/sh
VS_FAULT_SEED=$2 VS_FAULT_RATE=\${VS_FAULT_RATE:-$rate} VS_FAULT_EINTR=\${VS_FAULT_EINTR:-$eintr} \\
VS_FAULT_STATS=$STATS LD_PRELOAD=$SO exec $D/lib/$1 "\$@"
EOF
	chmod 755 "$D/bin/$1"
}
wrapper vsock-agent "$seed"
wrapper vsock-shell $((seed + 1))
for h in "$root"/build/host/t*; do ln -sf "$h" "$D/bin/"; done
TGEN=$root/build/host/tgen
sum_stats() { # field number in "faults: pid P stream N short N eintr N other N"
	[ -s "$1" ] && awk -v f="$2" '{ s += $f } END { print s + 0 }' "$1" || echo 0
}

# ---- the shim itself
rm -f "$D/s1"
r=$("$TGEN" 3000000 7 | VS_FAULT_RATE=50 VS_FAULT_STATS=$D/s1 LD_PRELOAD=$SO cat | "$TGEN" -c 3000000 7)
sh1=$(sum_stats "$D/s1" 7) ei1=$(sum_stats "$D/s1" 9)
if [ "$r" = "ok 3000000" ] && [ "$sh1" -gt 0 ] && [ "$ei1" -gt 0 ]; then
	t_ok "shim: a pipe copy through cat is byte-exact with $sh1 short counts and $ei1 EINTRs"
else
	t_fail "shim: a pipe copy through cat" "$r, $sh1 short, $ei1 EINTR"
fi
"$TGEN" 300000 8 > "$D/file"
rm -f "$D/s2"
r=$(VS_FAULT_RATE=100 VS_FAULT_STATS=$D/s2 LD_PRELOAD=$SO "$TGEN" -c 300000 8 < "$D/file")
if [ "$r" = "ok 300000" ] && [ "$(sum_stats "$D/s2" 5)" = 0 ] && [ "$(sum_stats "$D/s2" 11)" -gt 0 ]; then
	t_ok "shim: reads of a regular file are left alone"
else
	t_fail "shim: reads of a regular file are left alone" "$r; $(cat "$D/s2" 2>/dev/null)"
fi
r=$(VS_FAULT_SEED=3 VS_FAULT_STATS=$D/s3 LD_PRELOAD=$SO sh -c 'env' | grep -c '^LD_PRELOAD=\|^VS_FAULT_\(SEED\|RATE\|EINTR\|STATS\)=')
if [ "$r" = 0 ]; then t_ok "shim: LD_PRELOAD and VS_FAULT_* are not inherited by what a program runs"
else t_fail "shim: environment not inherited" "$r variables leaked"; fi

# ---- regression: a failed exec's status when its stderr write is
# interrupted (the agent chose 126/127 from an errno the retried write had
# overwritten with EINTR)
sock=$D/regress.sock
rm -f "$sock"
VS_FAULT_RATE=100 VS_FAULT_EINTR=100 "$D/bin/vsock-agent" --listen "unix:$sock" 2>"$D/regress.log" &
ap=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
codes=
for i in 1 2 3; do
	timeout 20 "$D/lib/vsock-shell" "unix:$sock" --argv -- /no/such/prog 2>/dev/null
	codes="$codes $?"
done
kill "$ap" 2>/dev/null; wait "$ap" 2>/dev/null
if [ "$codes" = " 127 127 127" ]; then t_ok "exec failure is 127 when its stderr write gets EINTR"
else t_fail "exec failure is 127 when its stderr write gets EINTR" "statuses$codes"; fi

# ---- regression: the controller's hand-written read loops gave up on
# EINTR: the hybrid OK line (the session failed) and the legacy wait for
# the agent's hangup (it returned before the command had run)
le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
hdr() { printf '%s%02x%02x0000' "$(le32 "$2")" $(($1 & 255)) $((($1 >> 8) & 255)); }
vmm=$D/vmm.sock
rm -f "$vmm"
"$root/build/host/tpeer" -l "unix:$vmm" read:13 send:4f4b20310a hello \
	"send:$(hdr 1 16)03000000$(le32 31)$(le32 0)$(le32 0)" frame \
	"send:$(hdr 19 3)6f6b0a$(hdr 21 8)$(le32 0)$(le32 42)" sleep:1500 > "$D/vmm.out" 2>&1 &
fp=$!
i=0
while [ ! -S "$vmm" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
r=$(VS_FAULT_RATE=100 VS_FAULT_EINTR=100 timeout 20 "$D/bin/vsock-shell" "hybrid:$vmm:1024" -- true 2>"$D/vmm.err"); rc=$?
kill "$fp" 2>/dev/null; wait "$fp" 2>/dev/null
if [ "$r/$rc" = "ok/42" ]; then t_ok "hybrid: the OK line is read through EINTR"
else t_fail "hybrid: the OK line is read through EINTR" "got '$r/$rc': $(head -c 200 "$D/vmm.err")"; fi

sock=$D/legacy.sock
rm -f "$sock" "$D/legacy.done"
"$root/vsock-agent" --listen "unix:$sock" 2>"$D/legacy.log" &
ap=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
VS_FAULT_RATE=100 VS_FAULT_EINTR=100 timeout 20 "$D/bin/vsock-shell" --legacy "unix:$sock" -- "sleep 1; echo done > $D/legacy.done"
rc=$? r=$(cat "$D/legacy.done" 2>/dev/null)
kill "$ap" 2>/dev/null; wait "$ap" 2>/dev/null
if [ "$rc/$r" = "0/done" ]; then t_ok "legacy: the controller waits through EINTR until the agent hangs up"
else t_fail "legacy: the controller waits through EINTR until the agent hangs up" "status $rc, command output '$r'"; fi

# ---- the suite's groups with the shim in both programs
rm -f "$STATS"
# shellcheck disable=SC2086
VS_BIN=$D/bin VS_TRANSPORT=unix VS_TMP=$D/suite timeout 900 sh "$root/tests/suite.sh" $groups > "$D/suite.out" 2>"$D/suite.err"
sed 's/^\(not \)*ok - /&faults: /; s/^skip - /&faults: /' "$D/suite.out" | grep -E '^(ok|not ok|skip) - '
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$D/suite.out" | tail -n 1)
if [ -z "$line" ]; then
	t_fail "suite ($groups)" "no result line; $(tail -n 5 "$D/suite.err" | tr '\n' ' ')"
else
	set -- $line
	PASS=$((PASS + $1)) FAIL=$((FAIL + $3)) SKIP=$((SKIP + ${5:-0}))
fi
procs=$(grep -c . "$STATS" 2>/dev/null || echo 0)
sh=$(sum_stats "$STATS" 7) ei=$(sum_stats "$STATS" 9) st=$(sum_stats "$STATS" 5)
# only processes that exit() report (session processes _exit): a floor
if [ "$sh" -gt 100 ] && [ "$ei" -gt 10 ]; then
	t_ok "the suite ran with faults: $sh short counts and $ei EINTRs in $st stream calls of $procs processes (seed $seed, rate $rate%)"
else
	t_fail "the suite ran with faults" "only $sh short counts and $ei EINTRs in $procs processes"
fi
finish
