# dial: the agent connects to a listening controller (sourced by suite.sh)

# dial_run CID-FOR-VSOCK NAME CONTROLLER-ARGS...: controller listens, agent dials
dial_exec() {
	new_dial_addr "$1"; shift
	"$VSH" --listen "$LADDR" -w 20 "$@" > "$TMP/dout" 2>"$TMP/derr" &
	hp=$!
	wait_for 5 addr_ready "$LADDR"
	"$AGENT" "$DADDR" 2>>"$TMP/agent.log"
	arc=$?
	wait "$hp"; hrc=$?
}

dial_exec 2 -- 'echo dialed; exit 7'
expect_eq "dial: command output through a dial-back session" "$(cat "$TMP/dout")" dialed
expect_eq "dial: remote status" "$hrc" 7
expect_eq "dial: agent exits 0 when the host is done" "$arc" 0
if [ "$VS_TRANSPORT" = vsock ]; then
	dial_exec 1 -- 'echo via-cid-1'
	expect_eq "dial: agent dialing CID 1" "$(cat "$TMP/dout")" via-cid-1
fi
new_dial_addr
"$TGEN" 3000000 11 | "$VSH" --listen "$LADDR" -w 20 -- cat > "$TMP/dout" &
hp=$!
wait_for 5 addr_ready "$LADDR"
"$AGENT" "$DADDR" 2>>"$TMP/agent.log"
wait "$hp"
expect_eq "dial: stdin and stdout through a dial-back session" "$("$TGEN" -c 3000000 11 < "$TMP/dout")" "ok 3000000"

# the agent comes up first and waits for the host (initrd before the host)
new_dial_addr
"$AGENT" --retry "$DADDR" 2>>"$TMP/agent.log" &
ap=$!
sleep 1
r=$("$VSH" --listen "$LADDR" -w 20 -- echo late-host)
expect_eq "dial: --retry agent reaches a host that starts later" "$r" late-host
wait_for 5 gone "$ap"; expect_eq "dial: --retry agent exits after the session" "$?" 0

# without --retry and without a host: a clear error, status 1
new_dial_addr
msg=$("$AGENT" "$DADDR" 2>&1); rc=$?
case "$rc:$msg" in 1:*"unable to connect"*) t_ok "dial: no host: clear error, status 1";; *) t_fail "dial: no host: clear error, status 1" "$rc $msg";; esac

# controller waiting for an agent that never comes gives up after -w
new_dial_addr
msg=$("$VSH" --listen "$LADDR" -w 1 -- true 2>&1); rc=$?
case "$rc:$msg" in 255:*"no agent connected"*) t_ok "dial: -w bounds the wait for an agent";; *) t_fail "dial: -w bounds the wait for an agent" "$rc $msg";; esac

# the control master: one dialing agent, many concurrent sessions
new_dial_addr
M=$TMP/master.sock
rm -f "$M"
"$VSH" --listen "$LADDR" -M "$M" -q 2>>"$TMP/master.log" &
mp=$!
wait_for 5 addr_ready "$LADDR"
"$AGENT" "$DADDR" 2>>"$TMP/agent.log" &
ap=$!
wait_for 5 test -S "$M"
expect_eq "dial: 20 parallel sessions through the control master" "$(parallel_sessions "unix:$M" 20 200000)" 0
r=$(echo piped | "$VSH" "unix:$M" -- 'cat; exit 3'); rc=$?
expect_eq "dial: master session with stdin and status" "$r/$rc" "piped/3"
kill "$mp"; wait "$mp"
if wait_for 5 gone "$ap"; then t_ok "dial: agent exits when the master closes the control connection"; else t_fail "dial: agent exits when the master closes"; kill "$ap"; fi
check "dial: master removes its socket" test ! -e "$M"

# the master's keep-alive: a live agent answers PING and the master stays;
# a stand-in agent that never answers makes it give up with a clear error
new_dial_addr
M=$TMP/master2.sock
VSOCK_SHELL_KEEPALIVE=1 "$VSH" --listen "$LADDR" -M "$M" -q 2>"$TMP/ka.err" &
mp=$!
wait_for 5 addr_ready "$LADDR"
"$AGENT" "$DADDR" 2>>"$TMP/agent.log" &
ap=$!
sleep 3
r=$("$VSH" "unix:$M" -- echo still)
expect_eq "dial: keep-alive PINGs answered, the master serves on" "$r" still
kill "$mp"; wait "$mp"; wait_for 5 gone "$ap"
new_dial_addr
rm -f "$M"
VSOCK_SHELL_KEEPALIVE=1 "$VSH" --listen "$LADDR" -M "$M" -q 2>"$TMP/ka.err" &
mp=$!
wait_for 5 addr_ready "$LADDR"
"$TPEER" "$DADDR" skip:28 "send:10000000010000000100000007000000$(printf 0000000000000000)" sleep:8000 >/dev/null 2>&1 &
fp=$!
if wait_for 6 gone "$mp"; then
	wait "$mp"; rc=$?
	case "$rc:$(cat "$TMP/ka.err")" in 255:*"did not answer a keep-alive PING"*) t_ok "dial: a silent agent is given up by the keep-alive";; *) t_fail "dial: keep-alive" "$rc $(cat "$TMP/ka.err")";; esac
else
	t_fail "dial: a silent agent is given up by the keep-alive" "master still running"
	kill "$mp"
fi
kill "$fp" 2>/dev/null; wait "$fp" 2>/dev/null

if [ "$VS_TRANSPORT" = vsock ]; then
	# no host transport for CID 2 in a guest: the default --listen fails
	# with the hint to listen on any
	msg=$("$VSH" --listen "vsock:2:$((PORT + 50))" -w 1 -- true 2>&1); rc=$?
	case "$rc:$msg" in 255:*"listen on 'any'"*) t_ok "dial: EADDRNOTAVAIL explained";; *) t_fail "dial: EADDRNOTAVAIL explained" "$rc $msg";; esac
fi
