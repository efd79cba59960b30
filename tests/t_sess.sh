# sess: an agent's sessions by id: ps lists them, kill signals one
# (sourced by suite.sh)

agent_listen
X=$ADDR
# ps_id PATTERN: the id of the session whose command matches PATTERN
ps_id() { "$VSH" ps "$X" 2>/dev/null | awk -v p="$1" 'NR > 1 && index($0, p) { print $1; exit }'; }
ps_has() { [ -n "$(ps_id "$1")" ]; }
ps_lacks() { [ -z "$(ps_id "$1")" ]; }

r=$("$VSH" ps "$X"); rc=$?
expect_eq "sess: ps with no session: status 0, the header alone" "$rc/$r" "0/$(printf '%-16s %-7s %-19s %-3s %-9s %-7s %-3s %s' ID PID STARTED TTY STATE KEPT WHO COMMAND)"

rm -f "$TMP/ss.pid"
"$VSH" "$X" -- "echo \$\$ > $TMP/ss.pid; exec sleep 30" > /dev/null 2>&1 & c1=$!
"$VSH" "$X" --argv -- sleep 31 > /dev/null 2>&1 & c2=$!
wait_for 5 test -s "$TMP/ss.pid"
wait_for 5 ps_has "'sleep' '31'"
"$VSH" ps "$X" > "$TMP/ps.out" 2>&1
line=$(grep "exec sleep 30" "$TMP/ps.out")
set -- $line - - - - - -
id1=$1
case $id1 in
[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f])
	t_ok "sess: ps lists a running session by a 16-hex-digit id" ;;
*) t_fail "sess: ps lists a running session by a 16-hex-digit id" "$(cat "$TMP/ps.out")" ;;
esac
case $7 in unix | vsock:1:*) who=ok ;; *) who=$7 ;; esac # the peer: unix, or loopback in the test guest
expect_eq "sess: ...with its command's pid, no pty, running, and who started it" "$2/$4/$5/$who" "$(cat "$TMP/ss.pid")/-/running/ok"
check "sess: ...the command quoted as the audit line has it" grep -q "'echo \$\$ > .*; exec sleep 30'\$" "$TMP/ps.out"
check "sess: ...and an argv command word by word" grep -q "'sleep' '31'\$" "$TMP/ps.out"
id2=$(ps_id "'sleep' '31'")
[ "$id1" != "$id2" ] && [ -n "$id2" ]; check "sess: two sessions, two ids" test $? = 0
"$VSH" ps --json "$X" > "$TMP/ps.json"
check "sess: ps --json: an object per session, with its id, pid and command" \
	grep -q "{\"id\":\"$id1\",\"pid\":$(cat "$TMP/ss.pid"),\"started\":[0-9]*,\"pty\":false,\"state\":\"running\",\"status\":null,\"kept\":[0-9]*,\"who\":\"\(unix peer uid [0-9]* pid [0-9]*\|vsock:1:[0-9]*\) (auth kernel)\",\"command\":\"'echo" "$TMP/ps.json"

# kill: TERM by default; the session ends on purpose, so what its
# command left running (its output elsewhere) dies with it, even what
# ignores the signal
# (a session that merely ends would leave it running)
rm -f "$TMP/ss.bg"
"$VSH" "$X" -- "(trap '' TERM HUP; exec sleep 120) > /dev/null 2>&1 & echo \$! > $TMP/ss.bg; exec sleep 20" > /dev/null 2>&1 & c3=$!
wait_for 5 test -s "$TMP/ss.bg"
if wait_for 5 ps_has "exec sleep 20"; then listed=listed; else listed=unlisted; fi
"$VSH" kill "$X" "$(ps_id "exec sleep 20")"; rc=$?
wait "$c3"; expect_eq "sess: kill ID: status 0, and the session's controller sees SIGTERM (143)" "$rc/$?" "0/143"
bg=$(cat "$TMP/ss.bg")
if wait_for 5 gone "$bg"; then r=gone; else r=alive; kill -9 "$bg"; fi
expect_eq "sess: ...and what the command left running, deaf to TERM, dies with it" "$r" gone
if wait_for 5 ps_lacks "exec sleep 20"; then listed="$listed/gone"; fi
expect_eq "sess: ...and it is listed no longer" "$listed" listed/gone
"$VSH" kill -s KILL "$X" "$id1"; rc=$?
wait "$c1"; expect_eq "sess: kill -s KILL ID: the controller sees SIGKILL (137)" "$rc/$?" "0/137"
"$VSH" kill -s SIGHUP "$X" "$id2"
wait "$c2"; expect_eq "sess: kill -s SIGHUP ID: 129" "$?" 129
out=$("$VSH" kill "$X" "$id2" 2>&1); rc=$?
case "$rc/$out" in "1/"*"no session $id2 on this agent"*) t_ok "sess: kill of an id no session has: status 1, and why" ;;
*) t_fail "sess: kill of an id no session has" "$rc/$out" ;; esac

# a session that ends, or whose session process dies, leaves no entry
"$VSH" "$X" -- "exit 3"
r=$("$VSH" ps "$X" | wc -l)
expect_eq "sess: a session that ended is not listed" "$r" 1
rm -f "$TMP/ss.pid"
"$VSH" "$X" -- "echo \$\$ > $TMP/ss.pid; exec sleep 21" > /dev/null 2>&1 & c4=$!
wait_for 5 test -s "$TMP/ss.pid"
if wait_for 5 ps_has "exec sleep 21"; then r=listed; else r=unlisted; fi
kill -9 "$(cut -d' ' -f4 "/proc/$(cat "$TMP/ss.pid")/stat")"
wait "$c4" 2>/dev/null
if wait_for 5 ps_lacks "exec sleep 21"; then r="$r/gone"; fi
expect_eq "sess: a session process killed by a signal: its entry goes with it" "$r" listed/gone

# a shell on a pty is listed as one
"$VSH" -t "$X" -- "sleep 22" < /dev/null > /dev/null 2>&1 & c5=$!
wait_for 5 ps_has "'sleep 22'"
expect_eq "sess: a session on a pty says so" "$("$VSH" ps "$X" | awk '/sleep 22/ { print $4 }')" pty
"$VSH" kill "$X" "$(ps_id "'sleep 22'")"
wait "$c5"

# usage
out=$("$VSH" kill "$X" 2>&1); rc=$?
case "$rc/$out" in "255/"*"no session id given"*) t_ok "sess: kill without an id is a usage error" ;; *) t_fail "sess: kill without an id" "$rc/$out" ;; esac
out=$("$VSH" kill "$X" 0123 2>&1); rc=$?
case "$rc/$out" in "255/"*"not a session id"*) t_ok "sess: kill of a word that is no id is a usage error" ;; *) t_fail "sess: kill of a bad id" "$rc/$out" ;; esac
out=$("$VSH" kill -s BOGUS "$X" 0123456789abcdef 2>&1); rc=$?
case "$rc/$out" in "255/"*"-s takes a signal"*) t_ok "sess: kill -s of no signal is a usage error" ;; *) t_fail "sess: kill -s BOGUS" "$rc/$out" ;; esac
agent_stop

# whoever may not run commands may not list or end them either
agent_listen --only put,get
out=$("$VSH" ps "$ADDR" 2>&1); rc=$?
case "$rc/$out" in "255/"*"does not offer its sessions"*) t_ok "sess: an agent --only put,get offers no ps" ;; *) t_fail "sess: ps on --only put,get" "$rc/$out" ;; esac
agent_stop
agent_listen --deny exec
r=$("$VSH" ps "$ADDR" | wc -l)
expect_eq "sess: --deny exec alone leaves ps (shells run)" "$r" 1
agent_stop

# through the hub, to a dialing agent: the same
SD=$TMP/sesshub
hub_up "$SD"
shp=$HPID sap=$HAPID
"$VSH" --hub "$SD/hub.sock" @g1 -- "exec sleep 23" > /dev/null 2>&1 & c6=$!
hub_ps() { "$VSH" ps --hub "$SD/hub.sock" @g1 2>/dev/null | awk 'NR > 1 && /sleep 23/ { print $1 }'; }
hub_ps_has() { [ -n "$(hub_ps)" ]; }
wait_for 10 hub_ps_has
hid=$(hub_ps)
check "sess: ps @NAME through the hub lists the guest's session" test -n "$hid"
"$VSH" kill --hub "$SD/hub.sock" @g1 "$hid"; rc=$?
wait "$c6"; expect_eq "sess: kill @NAME ID through the hub ends it" "$rc/$?" "0/143"
kill "$sap" "$shp" 2>/dev/null
wait "$sap" "$shp" 2>/dev/null
