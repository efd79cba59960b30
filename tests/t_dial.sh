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
expect_eq "dial: a failed command does not release the agent (it exits 3)" "$arc" 3
dial_exec 2 -- 'echo fine'
expect_eq "dial: a host done with everything releases the agent (BYE), which exits 0" "$hrc/$arc" "0/0"
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

# a controller that dies (SIGTERM, not done) does not release the agent:
# provisioning must not boot on because the host went away
new_dial_addr
rm -f "$TMP/dterm"
"$VSH" --listen "$LADDR" -w 20 -- 'echo started; sleep 60' > "$TMP/dterm" 2>/dev/null &
hp=$!
wait_for 5 addr_ready "$LADDR"
"$AGENT" "$DADDR" 2>>"$TMP/agent.log" &
ap=$!
wait_for 10 test -s "$TMP/dterm" # mid-session: its command runs (a kill in the handshake is another case)
kill -TERM "$hp"; wait "$hp" 2>/dev/null
wait_for 10 gone "$ap"; wait "$ap"; arc=$?
expect_eq "dial: a controller killed mid-session leaves the agent unreleased (exits 3)" "$arc" 3
# ...and with --reconnect the agent dials again until a host releases it
new_dial_addr
"$VSH" --listen "$LADDR" -w 20 -- 'sleep 60' 2>/dev/null &
hp=$!
wait_for 5 addr_ready "$LADDR"
"$AGENT" --reconnect "$DADDR" 2>>"$TMP/agent.log" &
ap=$!
sleep 1
kill -TERM "$hp"; wait "$hp" 2>/dev/null
r=$("$VSH" --listen "$LADDR" -w 20 -- echo second-host); rc=$?
expect_eq "dial: --reconnect: the agent reaches the next host" "$r/$rc" "second-host/0"
if wait_for 10 gone "$ap"; then wait "$ap"; arc=$?; else arc=running; kill "$ap"; fi
expect_eq "dial: --reconnect: released, the agent exits 0" "$arc" 0

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

if [ "$VS_TRANSPORT" = vsock ]; then
	# no host transport for CID 2 in a guest: the default --listen fails
	# with the hint to listen on any
	msg=$("$VSH" --listen "vsock:2:$((PORT + 50))" -w 1 -- true 2>&1); rc=$?
	case "$rc:$msg" in 255:*"listen on 'any'"*) t_ok "dial: EADDRNOTAVAIL explained";; *) t_fail "dial: EADDRNOTAVAIL explained" "$rc $msg";; esac
fi
