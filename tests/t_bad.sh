# bad: hostile or broken input to both programs (sourced by suite.sh).
# Each must give a clear error, never a crash, and the agent keeps serving.
# Every case observes the session itself: the ERROR frame, the closed
# connection, no session process dead of a signal (the agent logs one
# that is), and nothing left of its command.

le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
le16() { printf '%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)); }
hdr() { echo "$(le32 "$2")$(le16 "$1")0000"; }          # hdr TYPE LEN
tohex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
MAGIC=ff565348
# the host's HELLO: version 3, no flags, caps, token 0, no fields
HELLO="$(hdr 1 16)0300$(le16 0)$(le32 31)$(le32 0)$(le32 0)"
# an agent's HELLO: version 3, no flags (admitted), every capability
AHELLO="$(hdr 1 16)0300$(le16 0)$(le32 31)$(le32 0)$(le32 0)"

# signal_deaths: how many "died of signal" lines the agent has logged
signal_deaths() { grep -c "died of signal" "$TMP/agent.log" 2>/dev/null || true; }
# EXEC frame (shell string) for COMMAND
exec_frame() {
	ef_h=$(tohex "$1")
	echo "$(hdr 16 $((12 + 1 + ${#1} + 1)))$(le32 1)$(le16 0)$(le16 0)$(le16 1)$(le16 0)00${ef_h}00"
}
# agent_case NAME WANT STEPS...: a session that must end with an ERROR
# containing WANT (or, WANT empty, just a closed connection), no signal
# death, and the agent still serving
agent_case() {
	ac_n=$1 ac_w=$2; shift 2
	ac_d0=$(signal_deaths)
	r=$("$TPEER" "$X" "$@" 2>&1); ac_rc=$?
	sleep 0.1
	ac_d1=$(signal_deaths)
	case "$ac_rc:$r" in
	0:*$ac_w*) if [ "$ac_d0" = "$ac_d1" ]; then t_ok "bad: $ac_n"; else t_fail "bad: $ac_n" "a session process died of a signal"; fi ;;
	*) t_fail "bad: $ac_n" "rc=$ac_rc $r" ;;
	esac
}

# --- to the agent ---
agent_listen
X=$ADDR
agent_case "random bytes to the agent: the connection is closed" "" rand:4096:7 shut eof:5000
agent_case "wrong magic: the connection is closed" "" "send:ff565358$HELLO" eof:5000
grep -q "unrecognised protocol magic" "$TMP/agent.log"; expect_eq "bad: wrong magic is named in the agent's log" "$?" 0
agent_case "frame over the maximum before HELLO: ERROR, closed" "2 *malformed frame before HELLO" \
	"send:$MAGIC$(hdr 1 65537)" frame eof:5000
agent_case "truncated header: ERROR, closed" "2 *malformed frame before HELLO" "send:${MAGIC}1000000001" shut frame eof:5000
agent_case "unknown protocol version refused with ERROR" "2 *version 9 not supported" \
	"send:$MAGIC$(hdr 1 16)09000000000000000000000000000000" frame eof:5000
agent_case "the previous protocol version (2, whose proofs could be relayed) is refused" "2 *version 2 not supported (agent speaks 3)" \
	"send:$MAGIC$(hdr 1 16)02000000000000000000000000000000" frame eof:5000
agent_case "a HELLO shorter than 16 bytes is named as such" "2 *malformed HELLO (8 bytes" \
	"send:$MAGIC$(hdr 1 8)0300000000000000" frame eof:5000
agent_case "a first frame that is not HELLO: ERROR names its type" "2 *expected HELLO, got message type 16" \
	"send:$MAGIC$(hdr 16 4)00000000" frame eof:5000
agent_case "unknown message type gets an ERROR" "2 *unexpected message type 99" \
	"send:$MAGIC$HELLO" frame "send:$(hdr 99 0)" frame eof:5000
agent_case "truncated EXEC request gets an ERROR" "2 *malformed EXEC" \
	"send:$MAGIC$HELLO" frame "send:$(hdr 16 6)010203040506" frame eof:5000

# a bad frame in the middle of a running session: an ERROR, the session
# ends, no signal death, and its command's whole session is gone
mid_session() { # NAME WANT FRAME-HEX
	ms_n=$1 ms_w=$2 ms_f=$3
	rm -f "$TMP/bpid"
	ms_d0=$(signal_deaths)
	"$TPEER" "$X" "send:$MAGIC$HELLO" frame "send:$(exec_frame "echo \$\$ > $TMP/bpid; sleep 100 & exec sleep 101")" \
		sleep:500 "send:$ms_f" frame eof:5000 > "$TMP/bout" 2>&1
	ms_rc=$?
	p=$(cat "$TMP/bpid" 2>/dev/null)
	case "$ms_rc:$(cat "$TMP/bout")" in *"2 "*"$ms_w"*) t_ok "bad: $ms_n mid-session gets an ERROR";; *) t_fail "bad: $ms_n mid-session gets an ERROR" "$(cat "$TMP/bout")";; esac
	if [ -n "$p" ] && wait_for 5 session_gone "$p"; then t_ok "bad: ...its command's session is gone"; else t_fail "bad: ...its command's session is gone" "session '$p' has $(SL_SID=$p session_left) processes"; fi
	expect_eq "bad: ...and no session process died of a signal" "$(signal_deaths)" "$ms_d0"
}
mid_session "an oversized frame" "malformed frame header" "$(hdr 17 70000)"
mid_session "a frame of type 0" "malformed frame header (type 0" "$(hdr 0 2147483647)"
mid_session "a frame with flags set" "malformed frame header" "$(le32 0)$(le16 17)0100"
# the audit line names what runs: a shell string is one argument, whatever
# else the request carries
c1=$(tohex "echo audit-shown") c2=$(tohex "audit-not-run")
"$TPEER" "$X" "send:$MAGIC$HELLO" frame \
	"send:$(hdr 16 $((12 + 1 + 17 + 14)))$(le32 1)$(le16 0)$(le16 0)$(le16 2)$(le16 0)00${c1}00${c2}00" frame frame eof:5000 \
	> "$TMP/bout" 2>&1
grep "exec from" "$TMP/agent.log" | tail -n 1 > "$TMP/baudit"
case "$(cat "$TMP/bout")|$(cat "$TMP/baudit")" in
*audit-shown*"|"*": 'echo audit-shown'") t_ok "bad: a shell string with more arguments: audited as the one string that runs" ;;
*) t_fail "bad: shell string audit" "$(cat "$TMP/bout" "$TMP/baudit")" ;;
esac
r=$("$VSH" "$X" -- echo fine)
expect_eq "bad: agent serves normally afterwards" "$r" fine
agent_stop

# time limits are total deadlines: a host that says nothing, or a byte now
# and then, is dropped when the limit is up (VSOCK_AGENT_TIMEOUT=2 here)
new_addr
[ "$VS_TRANSPORT" = vsock ] && set -- --allow 1 || set --
VSOCK_AGENT_TIMEOUT=2 "$AGENT" --listen "$LADDR" "$@" 2>>"$TMP/agent.log" &
tp=$!
PIDS="$PIDS $tp"
wait_for 5 addr_ready "$LADDR"
t0=$(date +%s)
"$TPEER" "$CADDR" eof:8000 >/dev/null 2>&1; rc=$?
t1=$(date +%s)
if [ $rc = 0 ] && [ $((t1 - t0)) -le 5 ]; then t_ok "bad: a silent host is dropped at the limit ($((t1 - t0)) s)"; else t_fail "bad: a silent host is dropped at the limit" "rc=$rc after $((t1 - t0)) s"; fi
t0=$(date +%s)
"$TPEER" "$CADDR" "drip:$MAGIC$HELLO:400" >/dev/null 2>&1; rc=$?
t1=$(date +%s)
if [ $rc = 1 ] && [ $((t1 - t0)) -le 6 ]; then t_ok "bad: a host sending a byte now and then is dropped at the limit ($((t1 - t0)) s)"; else t_fail "bad: a dripping host is dropped at the limit" "rc=$rc after $((t1 - t0)) s"; fi
kill "$tp"; wait "$tp" 2>/dev/null

# --- to the controller: a fake agent that answers with garbage ---
fake() { # fake EXPECTED-RC NAME STEPS...: run the controller against tpeer -l
	want=$1 name=$2; shift 2
	new_addr
	"$TPEER" -l "$LADDR" hello "$@" sleep:3000 >/dev/null 2>&1 &
	fp=$!
	wait_for 5 addr_ready "$LADDR"
	msg=$(VSOCK_SHELL_TIMEOUT=3 "$VSH" -w 3 "$CADDR" -- true 2>&1 >/dev/null); rc=$?
	kill "$fp" 2>/dev/null; wait "$fp" 2>/dev/null
	case "$rc:$msg" in
	"$want":*"${FAKE_WANT:-}"*) if [ -n "$msg" ]; then t_ok "bad: controller, $name ($msg)"; else t_fail "bad: controller, $name" "no message"; fi ;;
	*) t_fail "bad: controller, $name" "rc=$rc msg=$msg" ;;
	esac
	FAKE_WANT=
}
fake 255 "random bytes instead of HELLO" rand:3000:3 close
fake 255 "frame over the maximum" "send:$(hdr 1 65537)" close
fake 255 "truncated header" send:100000 close
FAKE_WANT="got message type 19" fake 255 "wrong message instead of HELLO" "send:$(hdr 19 2)6869" close
FAKE_WANT="shorter than its 16-byte header" fake 255 "a HELLO shorter than 16 bytes" "send:$(hdr 1 8)0300000000000000" close
FAKE_WANT="version 7" fake 255 "unsupported version" "send:$(hdr 1 16)0700000007000000$(le32 0)$(le32 0)" close
FAKE_WANT="malformed fields" fake 255 "a HELLO field running past the frame" "send:$(hdr 1 20)0300$(le16 0)$(le32 31)$(le32 0)$(le32 0)01000900" close
FAKE_WANT="bad!" fake 255 "ERROR frame with text" "send:$(hdr 2 8)0300000062616421" close
FAKE_WANT="agent: gave up without saying why (error 3)" fake 255 "ERROR frame without text instead of HELLO" "send:$(hdr 2 4)03000000" close
FAKE_WANT="agent: gave up without saying why (error 9)" fake 255 "ERROR frame without text in session" "send:$AHELLO" frame "send:$(hdr 2 4)09000000" close
fake 255 "closes after HELLO" "send:$AHELLO" close
fake 255 "unknown message in session" "send:$AHELLO" frame "send:$(hdr 77 0)" close
fake 255 "EXIT with an impossible status" "send:$AHELLO" frame "send:$(hdr 21 8)$(le32 0)$(le32 999)"
fake 255 "EXIT of the wrong size" "send:$AHELLO" frame "send:$(hdr 21 3)000000"
fake 255 "signal number out of range" "send:$AHELLO" frame "send:$(hdr 21 8)$(le32 1)$(le32 200)"
fake 255 "frame truncated by close" "send:$AHELLO" frame "send:$(hdr 19 100)6869" close
FAKE_WANT="did not complete the handshake within 3 s" fake 255 "an agent that accepts and says nothing" sleep:6000
FAKE_WANT="did not complete the handshake within 3 s" fake 255 "an agent that sends a byte now and then" "drip:$AHELLO:400"
# The session's liveness check (VSOCK_SHELL_ALIVE): a fake agent that
# takes the request and then neither reads nor answers is given up on,
# and one that holds more of our input than its buffer would (it stops
# reading) is not: our PING sits behind that input, so its silence proves
# nothing, and its EXIT comes late.
alive_fake() { # alive_fake NAME WANT-RC WANT-MSG INPUT-BYTES STEPS...
	an=$1 awant=$2 amsg=$3 abytes=$4; shift 4
	new_addr
	"$TPEER" -l "$LADDR" hello "send:$AHELLO" frame "$@" >/dev/null 2>&1 &
	fp=$!
	wait_for 5 addr_ready "$LADDR"
	t0=$(date +%s)
	"$TGEN" "$abytes" 1 > "$TMP/alive.in"
	msg=$(VSOCK_SHELL_ALIVE=1 timeout 20 "$VSH" "$CADDR" -- true < "$TMP/alive.in" 2>&1 >/dev/null); rc=$?
	t1=$(date +%s)
	kill "$fp" 2>/dev/null; wait "$fp" 2>/dev/null
	if [ "$rc" = "$awant" ] && case $msg in *"$amsg"*) true ;; *) false ;; esac; then t_ok "bad: controller, $an ($((t1 - t0)) s)"; else t_fail "bad: controller, $an" "rc=$rc after $((t1 - t0)) s: $msg"; fi
}
alive_fake "an agent that goes silent and deaf mid-session is given up on" 255 "nor answered a PING" 0 sleep:10000
alive_fake "an agent that holds our input unread is not taken for dead" 5 "" 140000 \
	skip:65544 skip:65544 sleep:3000 "send:$(hdr 21 8)$(le32 0)$(le32 5)"

# an agent's ERROR text reaches the terminal escaped, before HELLO and in
# a session: nothing of it raw
eh=$(tohex "$EVIL")
evil_error() { # NAME WANT STEPS...
	ee_n=$1 ee_w=$2; shift 2
	new_addr
	"$TPEER" -l "$LADDR" hello "$@" "send:$(hdr 2 $((4 + ${#eh} / 2)))03000000$eh" close >/dev/null 2>&1 &
	fp=$!
	wait_for 5 addr_ready "$LADDR"
	"$VSH" -w 3 "$CADDR" -- true >/dev/null 2>"$TMP/evil.err"
	kill "$fp" 2>/dev/null; wait "$fp" 2>/dev/null
	shows_escaped "bad: controller, $ee_n: shown escaped, nothing of it raw" "$TMP/evil.err" "$ee_w"
}
evil_error "an agent's ERROR text instead of HELLO" "agent: $EVIL_SHOWN"
evil_error "an agent's ERROR text in a session" "agent: $EVIL_SHOWN (error 3)" "send:$AHELLO" frame
# the capability bits: a request the agent did not announce is never sent
new_addr
"$TPEER" -l "$LADDR" hello "send:$(hdr 1 16)0300$(le16 0)$(le32 18)$(le32 0)$(le32 0)" quiet:5000 > "$TMP/caps.out" 2>&1 &
fp=$!
wait_for 5 addr_ready "$LADDR"
msg=$("$VSH" "$CADDR" -- true 2>&1); rc=$?
wait "$fp"; frc=$?
case "$rc:$frc:$msg" in 255:0:*"does not offer commands without a pty"*) t_ok "bad: controller, an exec the agent did not announce is not sent";; *) t_fail "bad: controller, capability bits" "rc=$rc fake=$frc $msg $(cat "$TMP/caps.out")";; esac
# and a well-behaved fake gets through, so the tests above can fail
new_addr
"$TPEER" -l "$LADDR" hello "send:$AHELLO" "send:$(hdr 19 3)6f6b0a$(hdr 21 8)$(le32 0)$(le32 42)" sleep:2000 >/dev/null 2>&1 &
fp=$!
wait_for 5 addr_ready "$LADDR"
r=$("$VSH" "$CADDR" -- true); rc=$?
kill "$fp" 2>/dev/null; wait "$fp" 2>/dev/null
expect_eq "bad: a well-formed fake agent's output and status pass through" "$r/$rc" "ok/42"

if [ "$VS_TRANSPORT" = vsock ]; then
	# the agent's default peer filter admits the host (CID 2) only; our
	# controller in the guest connects from CID 1
	new_addr
	"$AGENT" --listen "$LADDR" 2>>"$TMP/agent.log" &
	fp=$!
	sleep 0.3
	msg=$("$VSH" "$CADDR" -- echo should-not-run 2>&1); rc=$?
	case "$rc:$msg" in 255:*"closed the connection"*) t_ok "bad: listen mode refuses a peer CID it was not told to accept";; *) t_fail "bad: listen mode refuses other CIDs" "$rc $msg";; esac
	grep -q "refused connection from CID 1" "$TMP/agent.log"; expect_eq "bad: the refusal is logged with the CID" "$?" 0
	kill "$fp"; wait "$fp" 2>/dev/null
fi

# Firecracker / cloud-hypervisor host-initiated connections (hybrid:): a
# stand-in VMM on a Unix socket (what a VMM offers, here and in the guest)
# checks the CONNECT line, answers OK and then plays the agent
VMM=$TMP/vmm$PORT.sock
rm -f "$VMM"
"$TPEER" -l "unix:$VMM" read:13 send:4f4b20310a hello "send:$AHELLO" frame \
	"send:$(hdr 19 3)6f6b0a$(hdr 21 8)$(le32 0)$(le32 42)" sleep:1500 > "$TMP/vmm.out" 2>&1 &
fp=$!
wait_for 5 test -S "$VMM"
r=$("$VSH" -w 3 "hybrid:$VMM:1024" -- true); rc=$?
kill "$fp" 2>/dev/null; wait "$fp" 2>/dev/null
expect_eq "bad: hybrid: CONNECT 1024, OK, then a session" "$r/$rc" "ok/42"
expect_eq "bad: hybrid: the CONNECT line is exact" "$(head -n 1 "$TMP/vmm.out")" "$(printf 'CONNECT 1024\n' | od -An -tx1 | tr -d ' \n')"
rm -f "$VMM"
"$TPEER" -l "unix:$VMM" read:13 close >/dev/null 2>&1 &
fp=$!
wait_for 5 test -S "$VMM"
msg=$("$VSH" "hybrid:$VMM:1025" -- true 2>&1); rc=$?
kill "$fp" 2>/dev/null; wait "$fp" 2>/dev/null
case "$rc:$msg" in 255:*"refused the connection to guest port 1025"*) t_ok "bad: hybrid: a VMM that closes (no listener in the guest): clear error";; *) t_fail "bad: hybrid: VMM refusal" "$rc $msg";; esac

# the seed server's -d: the agent goes to the background and serves
if [ "$VS_TRANSPORT" = unix ]; then
	new_addr
	"$AGENT" -d --listen "$LADDR" 2>>"$TMP/agent.log"; rc=$?
	wait_for 5 addr_ready "$LADDR"
	r=$("$VSH" "$CADDR" -- echo daemon)
	expect_eq "bad: agent -d returns at once and serves in the background" "$rc/$r" "0/daemon"
	for f in /proc/[0-9]*/cmdline; do
		if tr '\0' ' ' 2>/dev/null < "$f" | grep -q -- "--listen $LADDR"; then
			d=${f#/proc/}; kill "${d%/cmdline}" 2>/dev/null
		fi
	done
	# started by a session, which kills what its command left in its
	# session when the command exits: -d returns only once its child has a
	# session of its own (one in three died here when it returned at once)
	agent_listen
	X=$ADDR
	i=0 bad=0
	while [ $i -lt 20 ]; do
		new_addr
		"$VSH" "$X" -- "$AGENT -d --listen $LADDR"
		wait_for 5 addr_ready "$LADDR"
		[ "$("$VSH" -w 3 "$CADDR" -- echo up 2>/dev/null)" = up ] || bad=$((bad + 1))
		for f in /proc/[0-9]*/cmdline; do
			if tr '\0' ' ' 2>/dev/null < "$f" | grep -q -- "--listen $LADDR"; then
				d=${f#/proc/}; kill "${d%/cmdline}" 2>/dev/null
			fi
		done
		i=$((i + 1))
	done
	expect_eq "bad: agent -d run by a session outlives it, 20 of 20 (its child in a session of its own first)" "$bad" 0
	agent_stop
fi
