# resume: sessions that outlive their connection (sourced by suite.sh):
# detach, attach, and resume across a killed controller, a relay that
# cuts the connection, and a hub restarted under a command

TCUT=$VS_BIN/tcut
# sizes: smaller over vsock in the test guest (an emulated CPU)
# and a relay cuts after fewer bytes there (the host's ACKs: 16 bytes
# each 64 KiB, after its handshake)
if [ "$VS_TRANSPORT" = vsock ]; then MB=1000000 CUT=603; else MB=4000000 CUT=1003; fi
agent_listen
X=$ADDR
# rs_id PATTERN: the id of the session whose command matches PATTERN
rs_id() { "$VSH" ps "$X" 2>/dev/null | awk -v p="$1" 'NR > 1 && index($0, p) { print $1; exit }'; }
rs_state() { "$VSH" ps "$X" 2>/dev/null | awk -v p="$1" 'NR > 1 && index($0, p) { print $5 ($5 == "exit" || $5 == "signal" ? " " $6 : ""); exit }'; }
rs_is() { [ "$(rs_state "$1")" = "$2" ]; }
size_of() { wc -c < "$1" 2>/dev/null | tr -d ' ' || echo 0; }
bigger() { [ "$(size_of "$1")" -gt "$2" ]; }
# stream_ok FILE N SEED: FILE is tgen's stream N SEED
stream_ok() { "$TGEN" "$2" "$3" | cmp -s - "$1"; }

# --- a controller killed (-9) in the middle of 50 MB and exit 7: the
# command runs on, detached; attach gives the rest, byte-exact, and 7.
# What the first client wrote is the stream's start; attach goes on from
# where it acknowledged, so the two overlap a little and leave no gap.
N=50000000
"$TGEN" 20000000 5 > "$TMP/r1.want"; "$TGEN" 30000000 6 >> "$TMP/r1.want"
RCMD="$TGEN 20000000 5; sleep 1; $TGEN 30000000 6; exit 7"
"$VSH" "$X" -- "$RCMD" > "$TMP/r1.first" 2>/dev/null & c1=$!
wait_for 10 bigger "$TMP/r1.first" 2000000
kill -9 "$c1"; wait "$c1" 2>/dev/null
wait_for 5 rs_is "sleep 1; $TGEN" detached
st=$(rs_state "sleep 1; $TGEN")
id=$(rs_id "sleep 1; $TGEN")
"$VSH" attach "$X" "$id" > "$TMP/r1.att" 2>"$TMP/r1.err"; rc=$?
f=$(size_of "$TMP/r1.first") a=$(size_of "$TMP/r1.att")
r="$st/$rc"
head -c "$f" "$TMP/r1.want" | cmp -s - "$TMP/r1.first" || r="$r/first-client-wrong"
[ $((f + a)) -ge "$N" ] || r="$r/gap:$f+$a"
tail -c "$a" "$TMP/r1.want" | cmp -s - "$TMP/r1.att" || r="$r/attach-wrong"
expect_eq "resume: controller killed -9 mid 50 MB: detached; attach gives the rest byte-exact, then exit 7" "$r" "detached/7"
check "resume: ...and attach collected it: the session is gone from ps" test -z "$(rs_id "sleep 1; $TGEN")"
out=$("$VSH" attach "$X" "${id:-0000000000000000}" 2>&1); rc=$?
case "$rc/$out" in "255/"*"no session of that id"*) t_ok "resume: ...attached again: no such session (255)" ;; *) t_fail "resume: attach twice" "$rc/$out" ;; esac

# --- a relay that cuts the connection every ~1 MB, mid-frame: the
# controller resumes by itself, quietly; stdout and stderr byte-exact,
# the status the command's
new_addr
RL=$LADDR RC=$CADDR
"$TCUT" "$RL" "$X" 1000003 2>"$TMP/tcut1.log" & tp=$!
PIDS="$PIDS $tp"
wait_for 5 addr_ready "$RL"
"$VSH" "$RC" -- "$TGEN $((5 * MB)) 3; $TGEN 3000000 4 >&2; exit 7" > "$TMP/r2.out" 2>"$TMP/r2.err"; rc=$?
cuts=$(grep -c cut "$TMP/tcut1.log")
r="$rc"
stream_ok "$TMP/r2.out" $((5 * MB)) 3 || r="$r/stdout-wrong($(size_of "$TMP/r2.out"))"
stream_ok "$TMP/r2.err" 3000000 4 || r="$r/stderr-wrong($(size_of "$TMP/r2.err"))"
[ "$cuts" -ge 5 ] || r="$r/only-$cuts-cuts"
expect_eq "resume: cut every 1 MB (mid-frame): resumed on its own, stdout and stderr byte-exact, status 7" "$r" 7
# the same with -v: it says so
"$VSH" -v "$RC" -- "$TGEN 3000000 8" 2>"$TMP/r2v.err" | "$TGEN" -c 3000000 8 > "$TMP/r2v.out"
r=$(cat "$TMP/r2v.out")/$(grep -c 'resumed session' "$TMP/r2v.err")
case $r in "ok 3000000/"[1-9]*) t_ok "resume: -v says each resume ($r)" ;; *) t_fail "resume: -v says each resume" "$r" ;; esac
kill "$tp"; wait "$tp" 2>/dev/null

# --- stdin through a relay that cuts: nothing lost or repeated on the
# way in (the agent's ACKs are what the relay counts: a cut every ~2 MB)
new_addr
RL=$LADDR RC=$CADDR
"$TCUT" "$RL" "$X" $CUT 2>"$TMP/tcut2.log" & tp=$!
PIDS="$PIDS $tp"
wait_for 5 addr_ready "$RL"
r=$("$TGEN" $((6 * MB)) 9 | "$VSH" "$RC" -- "$TGEN -c $((6 * MB)) 9; exit 3"); rc=$?
cuts=$(grep -c cut "$TMP/tcut2.log")
[ "$cuts" -ge 2 ] || r="$r/only-$cuts-cuts"
expect_eq "resume: $((6 * MB)) bytes of stdin through cuts: the command read it exactly, status 3" "$r/$rc" "ok $((6 * MB))/3"
kill "$tp"; wait "$tp" 2>/dev/null

# --- a detached command with nobody reading: the agent keeps at most
# 1 MiB of its output, then stops reading it (the command blocks); its
# memory stays flat
rm -f "$TMP/prog"
id=$("$VSH" --detach "$X" -- "$TGEN -p $TMP/prog 200000000 1"); rc=$?
case $id in [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) r=id ;; *) r="not an id: $id" ;; esac
expect_eq "resume: --detach prints the session's id, status 0" "$r/$rc" id/0
sleep 2
line=$("$VSH" ps "$X" | grep "$id")
set -- $line - - - - - - - -
kept=$6 spid=$2
sp=$(cut -d' ' -f4 "/proc/$spid/stat" 2>/dev/null) # the session process: the command's parent
rss=$("$TGEN" -r "$sp" 2>/dev/null)
prog=$(cat "$TMP/prog" 2>/dev/null || echo 0)
r="$5"
[ "${kept:-0}" -le 1048576 ] || r="$r/kept $kept"
[ "$prog" -lt 8000000 ] || r="$r/wrote $prog"
[ -n "$rss" ] && [ "$rss" -lt 4096 ] || r="$r/rss $rss kB"
expect_eq "resume: detached, nobody reading: at most 1 MiB kept ($kept), the command stalled ($prog bytes), RSS flat (${rss} kB)" "$r" detached
"$VSH" kill -s KILL "$X" "$id"
wait_for 5 gone "$spid"; check "resume: ...kill ends a detached session" gone "$spid"

# --- exit statuses of detached sessions: listed until collected, once
id=$("$VSH" --detach "$X" -- 'echo kept; echo e >&2; exit 5')
wait_for 5 rs_is "echo kept" "exit 5"
expect_eq "resume: a detached session that ended: ps says 'exit 5'" "$(rs_state "echo kept")" "exit 5"
"$VSH" ps --json "$X" > "$TMP/r5.json"
check "resume: ...--json: state exited, status 5" grep -q "\"state\":\"exited\",\"status\":5," "$TMP/r5.json"
r=$("$VSH" attach "$X" "$id" 2>"$TMP/r5.err"); rc=$?
expect_eq "resume: attach collects it: its output from the start, stderr, status 5" "$r/$(cat "$TMP/r5.err")/$rc" "kept/e/5"
check "resume: ...once: then it is gone" test -z "$(rs_id "echo kept")"

# --- --no-detach: the command dies with its connection, as before
rm -f "$TMP/r6.pid"
"$VSH" --no-detach "$X" -- "echo \$\$ > $TMP/r6.pid; exec sleep 60" & c6=$!
wait_for 5 test -s "$TMP/r6.pid"
kill -9 "$c6"; wait "$c6" 2>/dev/null
p6=$(cat "$TMP/r6.pid")
wait_for 5 gone "$p6"; check "resume: --no-detach: controller killed, the command dies" gone "$p6"
agent_stop

# --- --linger: a detached session waits that long for a client, then dies;
# --linger 0 keeps none (and offers none: --detach says so)
agent_listen --linger 1
rm -f "$TMP/r7.pid"
"$VSH" "$ADDR" -- "echo \$\$ > $TMP/r7.pid; exec sleep 60" & c7=$!
wait_for 5 test -s "$TMP/r7.pid"
kill -9 "$c7"; wait "$c7" 2>/dev/null
p7=$(cat "$TMP/r7.pid")
sleep 0.3
if alive "$p7" && wait_for 6 gone "$p7"; then r=lingered-then-died; else r="alive:$(alive "$p7" && echo yes)"; fi
expect_eq "resume: --linger 1: the detached command runs on, then dies after a second without a client" "$r" lingered-then-died
agent_stop
agent_listen --linger 0
out=$("$VSH" --detach "$ADDR" -- true 2>&1); rc=$?
case "$rc/$out" in "255/"*"keeps no session without its client"*) t_ok "resume: --linger 0: --detach refused, clearly" ;; *) t_fail "resume: --linger 0 and --detach" "$rc/$out" ;; esac
rm -f "$TMP/r8.pid"
"$VSH" "$ADDR" -- "echo \$\$ > $TMP/r8.pid; exec sleep 60" & c8=$!
wait_for 5 test -s "$TMP/r8.pid"
kill -9 "$c8"; wait "$c8" 2>/dev/null
p8=$(cat "$TMP/r8.pid")
wait_for 5 gone "$p8"; check "resume: --linger 0: controller killed, the command dies (the old way)" gone "$p8"
agent_stop

# --- ~& on a pty detaches (and prints the attach command); the shell runs on
agent_listen
cat > "$TMP/r9.pty" <<EOF
timeout 15
line echo RE""ADY
expect READY
send \r
send ~&
expect detached from session
wait 0
EOF
"$TPTY" -T 20 -t 15 -o "$TMP/r9.log" "$TMP/r9.pty" -- "$VSH" -t "$ADDR" -- 'PS1= sh -i; exit 4' 2>"$TMP/r9.err"; rc=$?
X=$ADDR
rid=$(grep -o 'vsock-shell attach [^ ]* [0-9a-f]*' "$TMP/r9.log" | awk '{ print $4 }' | tr -d '\r')
expect_eq "resume: ~& detaches: status 0, the attach command shown, the session detached" "$rc/${rid:+id}/$(rs_state "exit 4")" "0/id/detached"
[ -n "$rid" ] && r=$(echo 'exit 9' | "$VSH" attach -T "$X" "$rid" 2>/dev/null); rc=$?
expect_eq "resume: ...attach from a pipe: its stdin reaches the shell, whose status comes back" "$rc" 4
agent_stop

# --- through the hub, to a dialing agent: the hub restarted under a
# command streaming output, which finishes byte-exact with its status
SD=$TMP/rshub
hub_up "$SD"
hp=$HPID ap=$HAPID
"$VSH" --hub "$SD/hub.sock" @g1 -- "for i in 1 2 3 4 5 6; do $TGEN 1000000 \$i; sleep 0.4; done; exit 7" > "$TMP/r10.out" 2>"$TMP/r10.err" & c10=$!
wait_for 10 bigger "$TMP/r10.out" 0
kill "$hp"; wait "$hp" 2>/dev/null
"$VSH" serve --vsock off --hub "$SD/hub.sock" --unix g1="$SD/g1.sock" 2>>"$TMP/hub.log" & hp=$!
PIDS="$PIDS $hp"
wait "$c10"; rc=$?
for i in 1 2 3 4 5 6; do "$TGEN" 1000000 $i; done > "$TMP/r10.want"
cmp -s "$TMP/r10.want" "$TMP/r10.out"; expect_eq "resume: the hub restarted under a command: its output byte-exact, status 7" "$rc/$?" "7/0"
kill "$ap" 2>/dev/null; wait "$ap" 2>/dev/null

# ...and an agent whose connections a relay cuts (its dial-backs and its
# control connection, each after 1 KB from the hub: mostly our ACKs):
# the controller resumes through the hub, each time once the agent has
# dialed it again
"$TCUT" "unix:$SD/cut.sock" "unix:$SD/g1.sock" $CUT 2>"$TMP/tcut3.log" & tp=$!
PIDS="$PIDS $tp"
wait_for 5 test -S "$SD/cut.sock"
"$AGENT" --reconnect "unix:$SD/cut.sock" 2>>"$TMP/agent.log" & ap=$!
PIDS="$PIDS $ap"
"$VSH" wait --hub "$SD/hub.sock" @g1 -w 10
"$VSH" -v --hub "$SD/hub.sock" @g1 -- "$TGEN $((6 * MB)) 11; exit 7" 2>"$TMP/r11.err" | "$TGEN" -c $((6 * MB)) 11 > "$TMP/r11.out"
r="$(cat "$TMP/r11.out")/$(grep -c 'resumed session' "$TMP/r11.err")"
case $r in "ok $((6 * MB))/"[1-9]*) t_ok "resume: through the hub, connections cut: resumed on its own, byte-exact ($r)" ;; *) t_fail "resume: through the hub, connections cut" "$r: $(tail -3 "$TMP/r11.err")" ;; esac
kill "$ap" "$hp" "$tp" 2>/dev/null; wait "$ap" "$hp" "$tp" 2>/dev/null

# --- listen mode: the agent dials the controller through a relay that
# cuts its connections (control and dial-backs alike): the controller
# waits for its next control connection and dial-back, and resumes
new_dial_addr; HL=$LADDR HD=$DADDR
new_dial_addr; TL=$LADDR TD=$DADDR
"$TCUT" "$TL" "$HD" $CUT 2>"$TMP/tcut4.log" & tp=$!
PIDS="$PIDS $tp"
wait_for 5 addr_ready "$TL"
"$AGENT" --retry --reconnect "$TD" 2>>"$TMP/agent.log" & ap=$!
PIDS="$PIDS $ap"
"$VSH" -v --listen "$HL" -- "$TGEN $((6 * MB)) 12; exit 7" 2>"$TMP/r12.err" | "$TGEN" -c $((6 * MB)) 12 > "$TMP/r12.out"
r="$(cat "$TMP/r12.out")/$(grep -c 'resumed session' "$TMP/r12.err")"
case $r in "ok $((6 * MB))/"[1-9]*) t_ok "resume: listen mode, connections cut: resumed on its own, byte-exact ($r)" ;; *) t_fail "resume: listen mode, connections cut" "$r: $(tail -3 "$TMP/r12.err")" ;; esac
kill "$ap" "$tp" 2>/dev/null; wait "$ap" "$tp" 2>/dev/null
