# trust: who may command the agent (sourced by suite.sh).  The kernel's
# proof (a reserved vsock port; a Unix peer's uid), or the shared key.  In
# the test VM an unprivileged user (uid 1000) models an unprivileged
# process on a host: the loopback transport keeps the reserved-port rule.
# On the dev machine the same tests run over unix:, where SO_PEERCRED is
# the proof, with nobody (65534) as the unprivileged one.

if [ "$(id -u)" != 0 ]; then
	t_skip "trust: the whole group" "needs root (to be, and to drop to, both sides)"
	return 0 2>/dev/null || exit 0
fi
if [ "$VS_TRANSPORT" = vsock ]; then NOBODY=1000; else NOBODY=65534; fi
as_user() { "$TGEN" -u "$NOBODY" "$@"; }
K1=$TMP/k1.key K2=$TMP/k2.key
printf 'a key for the trust tests, one\n' > "$K1"
printf 'a key for the trust tests, two\n' > "$K2"
# the unprivileged user's own files, mode 0600 (a key others may read is
# refused: t_keys.sh); root reads them all the same
chown "$NOBODY" "$K1" "$K2"
chmod 600 "$K1" "$K2"
chmod 755 "$TMP"
# what the unprivileged user runs: the suite's reachable copies ($PUB)
UB=$PUB
UVSH=$PUB_VSH
MARK=$TMP/trust-marker

# (never background as_user: $! would be a subshell, not the process)
# refused NAME MSG-WANT CMD...: the command fails with 255, says MSG, and
# the marker file its session would have made is not there
refused() {
	rf_n=$1 rf_w=$2; shift 2
	rm -f "$MARK"
	msg=$("$@" 2>&1); rc=$?
	sleep 0.2
	case "$rc:$msg" in
	255:*"$rf_w"*) if [ ! -e "$MARK" ]; then t_ok "trust: $rf_n"; else t_fail "trust: $rf_n" "the command ran"; fi ;;
	*) t_fail "trust: $rf_n" "rc=$rc $msg" ;;
	esac
}

# a listening agent the unprivileged user may reach at all (a Unix
# socket needs write permission: the file mode is the first gate, the
# agent's SO_PEERCRED check the one tested here)
agent_open() {
	agent_listen "$@"
	case $ADDR in unix:*) chmod 666 "${ADDR#unix:}";; esac
}

# --- listen mode (--key none: the test VM offers a key by fw_cfg) ---
agent_open --key none
X=$ADDR
refused "listen: an unprivileged controller is refused, and told how to get in" "run vsock-shell as root" \
	as_user "$UVSH" "$X" -- "touch $MARK"
grep -q "refused .*: not authenticated (unprivileged, no key)" "$TMP/agent.log"
expect_eq "trust: ...the agent logs the refusal with the peer" "$?" 0
r=$("$VSH" "$X" -- echo root-gets-in)
expect_eq "trust: listen: root's controller gets in with no key" "$r" root-gets-in
grep -q "exec from .* (auth kernel): 'echo root-gets-in'" "$TMP/agent.log"
expect_eq "trust: ...audited: peer, proof, operation, command" "$?" 0
if [ "$VS_TRANSPORT" = vsock ]; then
	# legacy commands cannot carry a key: in listen mode only the kernel
	# admits them
	rm -f "$MARK"
	as_user "$UB/tpeer" "$X" "sendtext:touch $MARK" shut eof:5000 2>/dev/null
	sleep 0.5
	check "trust: listen: an unprivileged legacy sender is refused" test ! -e "$MARK"
	grep -q "refused a legacy command from vsock:1:[0-9]*: not authenticated" "$TMP/agent.log"
	expect_eq "trust: ...and the refusal names the peer" "$?" 0
	# the audit line goes to stderr, or to the kernel log alone when
	# stderr is the console (vm-run checks that the console never shows
	# it); VSOCK_AGENT_AUDIT is unset here, in the guest
	"$VSH" "$X" -- 'echo audit-to-a-file' >/dev/null
	expect_eq "trust: stderr a file: the audit line goes there, not to the kernel log" \
		"$(grep -c "exec from .*'echo audit-to-a-file'" "$TMP/agent.log")/$(dmesg | grep -c "'echo audit-to-a-file'")" 1/0
	new_addr
	"$AGENT" --key none --allow 1 --listen "$LADDR" 2>/dev/console &
	cp=$!
	wait_for 5 addr_ready "$LADDR"
	"$VSH" -w 5 "$CADDR" -- 'echo audit-on-the-console' >/dev/null
	kill "$cp"; wait "$cp" 2>/dev/null
	expect_eq "trust: stderr the console: the audit line goes to the kernel log" \
		"$(dmesg | grep -c "vsock-agent: exec from .*'echo audit-on-the-console'")" 1
	# -d (without -v) gives stderr up: the kernel log keeps the lines
	new_addr
	"$AGENT" --key none --allow 1 --listen "$LADDR" -d 2>>"$TMP/agent.log"
	"$VSH" -w 5 "$CADDR" -- 'echo audit-of-a-daemon' >/dev/null
	expect_eq "trust: -d: the audit line goes to the kernel log" \
		"$(dmesg | grep -c "vsock-agent: exec from .*'echo audit-of-a-daemon'")" 1
	for c in /proc/[0-9]*/cmdline; do
		case $(tr '\0' ' ' < "$c" 2>/dev/null) in *"--listen $LADDR -d "*) c=${c#/proc/}; kill "${c%/cmdline}";; esac
	done
fi
agent_stop

agent_open --key "$K1"
X=$ADDR
r=$(as_user "$UVSH" --key "$K1" "$X" -- 'echo key-gets-in; id -u')
expect_eq "trust: listen: an unprivileged controller holding the key gets in" "$(echo $r)" "key-gets-in 0"
refused "listen: ...a wrong key is refused" "does not hold this agent's key" as_user "$UVSH" --key "$K2" "$X" -- "touch $MARK"
refused "listen: ...no key is refused" "the agent asks for its key" as_user "$UVSH" "$X" -- "touch $MARK"
grep -q "refused .*: wrong key" "$TMP/agent.log"; expect_eq "trust: ...the wrong key is logged" "$?" 0
r=$("$VSH" --key "$K1" "$X" -- echo mutual)
expect_eq "trust: listen: root with the key: both sides prove it" "$r" mutual
grep -q "(auth key): 'echo mutual'" "$TMP/agent.log"; expect_eq "trust: ...audited as key" "$?" 0
agent_stop
# a controller that holds a key the agent does not prove: a stand-in agent
# asks for AUTH and answers with a wrong MAC
le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
le16() { printf '%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)); }
hdr() { echo "$(le32 "$2")$(le16 "$1")0000"; }
nonce=0000000000000000000000000000000000000000000000000000000000000000
new_addr
"$TPEER" -l "$LADDR" hello "send:$(hdr 1 52)0300$(le16 1)$(le32 31)$(le32 0)$(le32 0)$(le16 2)$(le16 32)$nonce" frame \
	"send:$(hdr 6 32)$nonce" quiet:5000 > /dev/null 2>&1 &
fp=$!
wait_for 5 addr_ready "$LADDR"
msg=$("$VSH" --key "$K1" "$CADDR" -- true 2>&1); rc=$?
wait "$fp"; frc=$?
case "$rc:$frc:$msg" in 255:0:*"failed to prove that it holds the key"*) t_ok "trust: an agent that fails the key proof: the controller sends nothing more";; *) t_fail "trust: agent proof" "rc=$rc fake=$frc $msg";; esac

# the agent runs as the unprivileged user: its own uid and root are
# admitted over unix: (vsock: the reserved-port rule as above)
if [ "$VS_TRANSPORT" = unix ]; then
	new_addr
	pub=$(mktemp -d /tmp/vs-trust.XXXXXX); chmod 1777 "$pub"
	LADDR=unix:$pub/a.sock
	"$TGEN" -u "$NOBODY" "$UB/vsock-agent" --listen "$LADDR" 2>>"$TMP/agent.log" &
	up=$!
	wait_for 5 addr_ready "$LADDR"
	# (--argv: nobody's login shell is nologin, as for ssh)
	r=$(as_user "$UVSH" "$LADDR" --argv -- /bin/echo own-uid); expect_eq "trust: unix: the agent's own uid gets in" "$r" own-uid
	r=$("$VSH" "$LADDR" --argv -- /bin/echo root); expect_eq "trust: unix: root gets in" "$r" root
	kill "$up"; wait "$up" 2>/dev/null
	rm -rf "$pub"
fi

# --- dial mode with the shipped defaults ---
if [ "$VS_TRANSPORT" = vsock ]; then
	# the agent dials the reserved port 1023: an unprivileged process
	# cannot even listen there, so it cannot answer for the host
	refused "dial: an unprivileged process cannot listen on the agent's default port" "port 1023 is reserved" \
		as_user "$UVSH" --listen -w 2 -- "touch $MARK"
else
	# over unix: an impostor (not root, not the agent's uid) listening
	# first at the path the agent dials gets nothing run
	pub=$(mktemp -d /tmp/vs-trust.XXXXXX); chmod 1777 "$pub"
	P=unix:$pub/host.sock
	rm -f "$MARK"
	"$TGEN" -u "$NOBODY" "$UVSH" --listen "$P" -w 20 -- "touch $MARK" >/dev/null 2>&1 &
	ip=$!
	wait_for 5 addr_ready "$P"
	"$AGENT" --retry --reconnect "$P" 2>>"$TMP/agent.log" &
	ap=$!
	sleep 2
	check "trust: dial: an impostor listening first gets nothing run" test ! -e "$MARK"
	grep -q "refused unix peer uid $NOBODY .*: not authenticated" "$TMP/agent.log"
	expect_eq "trust: ...the agent logs it, and keeps dialing" "$?$(alive "$ap" && echo ' alive')" "0 alive"
	kill "$ip" 2>/dev/null; wait "$ip" 2>/dev/null
	rm -f "$pub/host.sock"
	r=$("$VSH" --listen "$P" -w 20 -- echo the-real-host)
	expect_eq "trust: dial: ...and then reaches the real host" "$r" the-real-host
	wait_for 5 gone "$ap"
	rm -rf "$pub"
fi
# an agent dialing an unreserved port with a key: an unprivileged impostor
# without the key is refused and the agent dials on; the key holder wins
new_dial_addr
if [ "$VS_TRANSPORT" = vsock ]; then
	UL=vsock:any:$((RPORT + 3000)) UD=vsock:2:$((RPORT + 3000))
else
	pub=$(mktemp -d /tmp/vs-trust.XXXXXX); chmod 1777 "$pub"
	UL=unix:$pub/k.sock UD=$UL
fi
rm -f "$MARK"
"$TGEN" -u "$NOBODY" "$UVSH" --listen "$UL" -w 20 -- "touch $MARK" >/dev/null 2>&1 &
ip=$!
wait_for 5 addr_ready "$UL"
"$AGENT" --retry --key "$K1" "$UD" 2>>"$TMP/agent.log" &
ap=$!
sleep 2
check "trust: dial, unreserved port: an impostor without the key gets nothing run" test ! -e "$MARK"
kill "$ip" 2>/dev/null; wait "$ip" 2>/dev/null
case $UL in unix:*) rm -f "${UL#unix:}";; esac
r=$(as_user "$UVSH" --key "$K1" --listen "$UL" -w 20 -- echo key-holder 2>&1)
expect_eq "trust: dial, unreserved port: the key holder gets the agent" "$r" key-holder
wait_for 5 gone "$ap"
[ -n "${pub:-}" ] && rm -rf "$pub"

# --- --auth none and --auth key ---
agent_open --auth none --key none
r=$(as_user "$UVSH" "$ADDR" -- echo open); expect_eq "trust: --auth none admits anyone" "$r" open
agent_stop
agent_listen --auth key --key "$K1"
refused "--auth key: root without the key is refused" "the agent asks for its key" "$VSH" "$ADDR" -- "touch $MARK"
r=$("$VSH" --key "$K1" "$ADDR" -- echo keyed); expect_eq "trust: --auth key: with the key" "$r" keyed
agent_stop

# --- a proof good for one connection only (PROTOCOL.md 3.3) ---
# relayed: what a key holder proves to its peer cannot be carried to an
# agent it never reached.  trelay sits between a key holder and a victim
# agent run --auth key, passes the handshake through verbatim, and runs
# touch MARK if the victim admits it.
agent_listen --auth key --key "$K1"
V=$ADDR
case $ADDR in unix:*) chmod 666 "${ADDR#unix:}";; esac
new_addr
rm -f "$MARK"
"$VSH" --listen "$LADDR" --key "$K1" -w 20 -- true > "$TMP/relay-host.out" 2>&1 &
hp=$!
wait_for 5 addr_ready "$LADDR"
case $LADDR in unix:*) chmod 666 "${LADDR#unix:}";; esac
r=$(as_user "$UB/trelay" listener "$CADDR" "$V" "touch $MARK" 2>&1); rc=$?
sleep 0.2
case "$rc:$r" in
0:"refused by the "*) check "trust: relay: a listening key holder's proof does not open another agent (no command ran)" test ! -e "$MARK" ;;
*) t_fail "trust: relay through a listening key holder" "rc=$rc $r" ;;
esac
kill "$hp" 2>/dev/null; wait "$hp" 2>/dev/null
if [ "$VS_TRANSPORT" = unix ]; then
	# a key holder that dials the relay as its agent: over unix: the
	# socket it reached is not the victim's (in the loopback guest every
	# peer is CID 1, so that case needs two guests: the nested stage)
	pub=$(mktemp -d /tmp/vs-trust.XXXXXX); chmod 1777 "$pub"
	rm -f "$MARK"
	as_user "$UB/trelay" dialer "unix:$pub/relay.sock" "$V" "touch $MARK" > "$TMP/relay.out" 2>&1 &
	wait_for 5 addr_ready "unix:$pub/relay.sock"
	msg=$("$VSH" --key "$K1" "unix:$pub/relay.sock" -- true 2>&1 > /dev/null)
	sleep 0.5
	r=$(cat "$TMP/relay.out")
	case $r in
	"refused by the agent: "*"another guest"*) check "trust: relay: a dialing key holder's proof does not open another agent (no command ran)" test ! -e "$MARK" ;;
	*) t_fail "trust: relay through a dialing key holder" "$r" ;;
	esac
	# the key holder is told of the relay, not to get a key it has
	case $msg in
	*"another guest (a relayed handshake?)") t_ok "trust: relay: the key holder hears why, without advice to give a key it gave" ;;
	*) t_fail "trust: relay: the key holder's message" "$msg" ;;
	esac
	rm -rf "$pub"
fi
grep -q "refused .*\(wrong key\|another guest\)" "$TMP/agent.log"; expect_eq "trust: relay: ...the victim logs the refusal" "$?" 0
agent_stop
# an agent whose HELLO says it is another guest than the one reached
new_addr
if [ "$VS_TRANSPORT" = unix ]; then other="$(le16 8)$(le16 6)2f6f74686572"; else other="$(le16 7)$(le16 4)$(le32 77)"; fi
"$TPEER" -l "$LADDR" hello "send:$(hdr 1 $((52 + ${#other} / 2)))0300$(le16 1)$(le32 31)$(le32 0)$(le32 0)$(le16 2)$(le16 32)$nonce$other" \
	quiet:5000 > /dev/null 2>&1 &
fp=$!
wait_for 5 addr_ready "$LADDR"
msg=$("$VSH" --key "$K1" "$CADDR" -- true 2>&1); rc=$?
wait "$fp"
case "$rc:$msg" in 255:*"relayed from another"*) t_ok "trust: an agent naming another guest in its HELLO gets no proof from the controller";; *) t_fail "trust: agent names another guest" "rc=$rc $msg";; esac

# mutual: a controller holding a key goes on only with an agent that
# proved it; a copy sends nothing to one that did not
agent_listen --key none
printf 'secret\n' > "$TMP/secret.conf"
rm -f "$MARK" "$TMP/secret.copy"
msg=$("$VSH" --key "$K1" "$ADDR" -- "touch $MARK" 2>&1); rc=$?
case "$rc:$msg" in 255:*"did not prove that it holds the key"*) check "trust: mutual: a key-holding controller refuses an agent that proved nothing" test ! -e "$MARK";; *) t_fail "trust: mutual exec" "rc=$rc $msg";; esac
msg=$("$VSH" cp -q --key "$K1" "$ADDR" "$TMP/secret.conf" ":$TMP/secret.copy" 2>&1); rc=$?
case "$rc:$msg" in 255:*"did not prove"*) check "trust: mutual: ...and hands it no file" test ! -e "$TMP/secret.copy";; *) t_fail "trust: mutual cp" "rc=$rc $msg";; esac
agent_stop

# --- the key's sources on the agent ---
CRED=$TMP/cred
mkdir -p "$CRED"; cp "$K2" "$CRED/vsock-shell.key"
CREDENTIALS_DIRECTORY=$CRED
export CREDENTIALS_DIRECTORY
agent_open --key credential
r=$(as_user "$UVSH" --key "$K2" "$ADDR" -- echo cred); expect_eq "trust: --key credential (\$CREDENTIALS_DIRECTORY)" "$r" cred
agent_stop
agent_open
r=$(as_user "$UVSH" --key "$K2" "$ADDR" -- echo auto-cred); expect_eq "trust: --key auto finds the credential" "$r" auto-cred
agent_stop
unset CREDENTIALS_DIRECTORY
printf 'short\n' > "$TMP/short.key"
chmod 600 "$TMP/short.key"
msg=$("$AGENT" --listen unix:$TMP/never.sock --key "$TMP/short.key" 2>&1); rc=$?
case "$rc:$msg" in 1:*"must be 16 to 1024 bytes"*) t_ok "trust: a key shorter than 16 bytes is refused";; *) t_fail "trust: short key" "$rc $msg";; esac
if [ -e /sys/firmware/qemu_fw_cfg/by_name/opt/vsock-shell/key/raw ]; then
	# the test VM is booted with -fw_cfg name=opt/vsock-shell/key and
	# vsock_agent.key= on its kernel command line (tests/vm-run)
	cp /sys/firmware/qemu_fw_cfg/by_name/opt/vsock-shell/key/raw "$TMP/fwcfg.key"
	tr ' ' '\n' < /proc/cmdline | sed -n 's/^vsock_agent.key=//p' > "$TMP/cmdline.key"
	chown "$NOBODY" "$TMP/fwcfg.key" "$TMP/cmdline.key"
	chmod 600 "$TMP/fwcfg.key" "$TMP/cmdline.key"
	# the kernel makes fw_cfg's attribute 0400: --key auto takes it
	expect_eq "trust: fw_cfg's key attribute is 0400" \
		"$(stat -c %a /sys/firmware/qemu_fw_cfg/by_name/opt/vsock-shell/key/raw)" 400
	agent_open
	r=$(as_user "$UVSH" --key "$TMP/fwcfg.key" "$ADDR" -- echo fw-cfg); expect_eq "trust: --key auto finds QEMU's fw_cfg key" "$r" fw-cfg
	agent_stop
	agent_open --key cmdline
	r=$(as_user "$UVSH" --key "$TMP/cmdline.key" "$ADDR" -- echo cmdline); expect_eq "trust: --key cmdline" "$r" cmdline
	refused "--key cmdline: ...the fw_cfg key is not that one" "does not hold" as_user "$UVSH" --key "$TMP/fwcfg.key" "$ADDR" -- "touch $MARK"
	agent_stop
elif [ -e /etc/vsock-test-guest ]; then
	t_fail "trust: fw_cfg key" "no /sys/firmware/qemu_fw_cfg/by_name/opt/vsock-shell/key (qemu_fw_cfg not loaded?)"
else
	t_skip "trust: fw_cfg and kernel command line keys" "in the test VM"
fi

# --- per-feature switches: each refuses its operation with an ERROR that
# names the switch, and the HELLO no longer offers it ---
deny_case() { # SWITCH OP HEX-REQUEST
	agent_listen "$1" "$2"
	r=$("$TPEER" "$ADDR" "send:ff565348$(hdr 1 16)0300$(le16 0)$(le32 31)$(le32 0)$(le32 0)" frame "send:$3" frame eof:5000 2>&1)
	case $r in *"2 "*"is denied by this agent ($1 $2)"*) t_ok "trust: $1 $2: refused with an ERROR naming the switch";; *) t_fail "trust: $1 $2" "$r";; esac
	agent_stop
}
tohex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
c="touch $MARK"
EXEC_REQ="$(hdr 16 $((12 + 1 + ${#c} + 1)))$(le32 1)$(le16 0)$(le16 0)$(le16 1)$(le16 0)00$(tohex "$c")00"
SHELL_REQ="$(hdr 16 $((12 + 1 + ${#c} + 1)))$(le32 3)$(le16 24)$(le16 80)$(le16 1)$(le16 0)00$(tohex "$c")00"
PUT_REQ="$(hdr 32 $((8 + ${#MARK} + 1)))$(le32 0)$(le32 1)$(tohex "$MARK")00"
GET_REQ="$(hdr 33 $((8 + ${#MARK} + 1)))$(le32 0)$(le32 1)$(tohex "$MARK")00"
rm -f "$MARK"
deny_case --deny exec "$EXEC_REQ"
deny_case --deny shell "$SHELL_REQ"
deny_case --deny put "$PUT_REQ"
deny_case --deny get "$GET_REQ"
check "trust: ...and none of those requests ran" test ! -e "$MARK"
agent_listen --only get,put
msg=$("$VSH" "$ADDR" -- "touch $MARK" 2>&1); rc=$?
case "$rc:$msg" in 255:*"does not offer commands without a pty"*) t_ok "trust: --only get,put: the controller sees exec is not offered";; *) t_fail "trust: --only" "$rc $msg";; esac
echo allowed > "$TMP/only.txt"
"$VSH" cp -q "$ADDR" "$TMP/only.txt" ":$TMP/only2.txt"; expect_eq "trust: --only get,put: a copy still works" "$?$(cat "$TMP/only2.txt" 2>/dev/null)" 0allowed
agent_stop
agent_listen --deny legacy
rm -f "$MARK"
"$TPEER" "$ADDR" "sendtext:touch $MARK" shut eof:5000 >/dev/null 2>&1
sleep 0.5
check "trust: --deny legacy: a legacy command is refused" test ! -e "$MARK"
grep -q "refused a legacy command .*(--deny legacy)" "$TMP/agent.log"; expect_eq "trust: ...and the log names the switch" "$?" 0
agent_stop
