# bad: hostile or broken input to both programs (sourced by suite.sh).
# Each must give a clear error, never a crash, and the agent keeps serving.

le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
le16() { printf '%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)); }
hdr() { echo "$(le32 "$2")$(le16 "$1")0000"; }          # hdr TYPE LEN
MAGIC=ff565348
HELLO="$(hdr 1 16)0100000000000000$(le32 0)00000000"
HELLO="$(hdr 1 16)01000000000000000000000000000000"

# --- to the agent ---
agent_listen
X=$ADDR
"$TPEER" "$X" rand:4096:7 shut eof:5000
check "bad: random bytes to the agent: connection closed" kill -0 "$APID"
"$TPEER" "$X" send:ff565358 "$(echo send:$HELLO)" eof:5000
check "bad: wrong magic: connection closed, agent alive" kill -0 "$APID"
grep -q "unrecognised protocol magic" "$TMP/agent.log"; expect_eq "bad: wrong magic is named in the agent's log" "$?" 0
"$TPEER" "$X" "send:$MAGIC$(hdr 1 65537)" eof:5000
check "bad: frame over the maximum: connection closed, agent alive" kill -0 "$APID"
"$TPEER" "$X" "send:${MAGIC}1000000001" shut eof:5000
check "bad: truncated header: connection closed, agent alive" kill -0 "$APID"
r=$("$TPEER" "$X" "send:$MAGIC$(hdr 1 16)09000000000000000000000000000000" frame eof:5000)
case $r in *"2 "*"version 9 not supported"*) t_ok "bad: unknown protocol version refused with ERROR";; *) t_fail "bad: unknown protocol version refused with ERROR" "$r";; esac
r=$("$TPEER" "$X" "send:$MAGIC$HELLO" frame "send:$(hdr 99 0)" frame eof:5000)
case $r in *"2 "*"unexpected message type 99"*) t_ok "bad: unknown message type gets an ERROR";; *) t_fail "bad: unknown message type gets an ERROR" "$r";; esac
r=$("$TPEER" "$X" "send:$MAGIC$HELLO" frame "send:$(hdr 16 6)010203040506" frame eof:5000)
case $r in *"2 "*"malformed EXEC"*) t_ok "bad: truncated EXEC request gets an ERROR";; *) t_fail "bad: truncated EXEC request gets an ERROR" "$r";; esac
# a bad frame in the middle of a running session ends it, and its command
rm -f "$TMP/bpid"
ex="$(hdr 16 $((12 + 1 + 3 + 100)))01000000000000000100000000$(printf 'sh' | od -An -tx1 | tr -d ' \n')00"
c="echo \$\$ > $TMP/bpid; exec sleep 100"
chex=$(printf '%s' "$c" | od -An -tx1 -v | tr -d ' \n')
ex="$(hdr 16 $((12 + 1 + ${#c} + 1)))010000000000000001000000 00 ${chex}00"
ex=$(echo "$ex" | tr -d ' ')
"$TPEER" "$X" "send:$MAGIC$HELLO" frame "send:$ex" sleep:500 "send:$(hdr 17 70000)" frame eof:5000 > "$TMP/bout"
p=$(cat "$TMP/bpid" 2>/dev/null)
case $(cat "$TMP/bout") in *"2 "*"malformed frame"*) t_ok "bad: oversized frame mid-session gets an ERROR";; *) t_fail "bad: oversized frame mid-session gets an ERROR" "$(cat "$TMP/bout")";; esac
if [ -n "$p" ] && wait_for 5 gone "$p"; then t_ok "bad: ...and the session's command is killed"; else t_fail "bad: ...and the session's command is killed" "pid '$p'"; fi
r=$("$VSH" "$X" -- echo fine)
expect_eq "bad: agent serves normally afterwards" "$r" fine
agent_stop

# --- to the controller: a fake agent that answers with garbage ---
fake() { # fake EXPECTED-RC NAME STEPS...: run the controller against tpeer -l
	want=$1 name=$2; shift 2
	new_addr
	"$TPEER" -l "$LADDR" skip:28 "$@" sleep:3000 >/dev/null 2>&1 &
	fp=$!
	wait_for 5 addr_ready "$LADDR"
	msg=$("$VSH" -w 3 "$CADDR" -- true 2>&1 >/dev/null); rc=$?
	kill "$fp" 2>/dev/null; wait "$fp" 2>/dev/null
	if [ "$rc" = "$want" ] && [ -n "$msg" ]; then t_ok "bad: controller, $name ($msg)"; else t_fail "bad: controller, $name" "rc=$rc msg=$msg"; fi
}
AHELLO="$(hdr 1 16)01000000ff00000000000000000000000"
AHELLO="$(hdr 1 16)0100000007000000$(le32 0)$(le32 0)"
fake 255 "random bytes instead of HELLO" rand:3000:3 close
fake 255 "frame over the maximum" "send:$(hdr 1 65537)" close
fake 255 "truncated header" send:100000 close
fake 255 "wrong message instead of HELLO" "send:$(hdr 19 2)6869" close
fake 255 "unsupported version" "send:$(hdr 1 16)0700000007000000$(le32 0)$(le32 0)" close
fake 255 "ERROR frame with text" "send:$(hdr 2 8)0300000062616421" close
fake 255 "closes after HELLO" "send:$AHELLO" close
fake 255 "unknown message in session" "send:$AHELLO" skip:8 "send:$(hdr 77 0)" close
fake 255 "EXIT with an impossible status" "send:$AHELLO" "send:$(hdr 21 8)$(le32 0)$(le32 999)"
fake 255 "EXIT of the wrong size" "send:$AHELLO" "send:$(hdr 21 3)000000"
fake 255 "signal number out of range" "send:$AHELLO" "send:$(hdr 21 8)$(le32 1)$(le32 200)"
fake 255 "frame truncated by close" "send:$AHELLO" "send:$(hdr 19 100)6869" close
fake 255 "HELLO that never comes" sleep:1
# and a well-behaved fake gets through, so the tests above can fail
new_addr
"$TPEER" -l "$LADDR" skip:28 "send:$AHELLO" "send:$(hdr 19 3)6f6b0a$(hdr 21 8)$(le32 0)$(le32 42)" sleep:2000 >/dev/null 2>&1 &
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
"$TPEER" -l "unix:$VMM" read:13 send:4f4b20310a skip:28 "send:$AHELLO" frame \
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
fi
