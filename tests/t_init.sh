# init: the agent as PID 1, as a host sees it (sourced by suite.sh): the
# BOOT facts of its HELLO, provisioning stages through the hub (from a
# scripted agent: the init itself boots in the VM stage's minimal boot),
# report connections, and power requests (here PID 1 is out of reach:
# vsguard answers EPERM, and the agent says so).

le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
le16() { printf '%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)); }
hdr() { echo "$(le32 "$2")$(le16 "$1")0000"; }
tohex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
# STAGE: u32 stage, u64 uptime (ms, < 2^32 here), text
stage_frame() { s_t=$(tohex "$3"); echo "$(hdr 9 $((12 + ${#s_t} / 2)))$(le32 "$1")$(le32 "$2")00000000$s_t"; }
# an agent's HELLO, kernel proof, DIALBACK; and a report connection's
IHELLO="$(hdr 1 16)0300$(le16 0)$(le32 31)$(le32 0)$(le32 0)"
RHELLO="$(hdr 1 16)0300$(le16 32)$(le32 31)$(le32 0)$(le32 0)"
if [ "$VS_TRANSPORT" = vsock ]; then IT=3; else IT=1; fi

IH=$TMP/ihub
rm -rf "$IH"; mkdir -p "$IH"
IHUB=$IH/hub.sock
ivsh() { VSOCK_SHELL_HUB=$IHUB "$VSH" "$@"; }
istate() { ivsh ls 2>/dev/null | awk -v n="$1" '$1 == n { print $3 }'; }
VSOCK_SHELL_TIMEOUT=$IT "$VSH" serve --vsock off --hub "$IHUB" --unix g1="$IH/g1.sock" --unix g2="$IH/g2.sock" \
	2>>"$TMP/ihub.log" &
PIDS="$PIDS $!"
wait_for 5 test -S "$IHUB"

# where a real agent runs, as its HELLO says (not as PID 1 here)
"$AGENT" --reconnect "unix:$IH/g1.sock" 2>>"$TMP/agent.log" &
gp=$!
PIDS="$PIDS $gp"
ivsh wait @g1 -w 10 >/dev/null 2>&1
ivsh ls --json >"$IH/ls.json"
# the test VM's suite runs in its initramfs (busybox /init is PID 1)
if [ "$VS_TRANSPORT" = unix ]; then in=false; else in=true; fi
if grep -qE "\"initramfs\":$in,\"init\":false,\"uptime_ms\":[1-9][0-9]*," "$IH/ls.json"; then
	t_ok "init: HELLO's BOOT facts in ls --json: initramfs $in, not the init, an uptime"
else
	t_fail "init: HELLO's BOOT facts" "$(head -c 600 "$IH/ls.json")"
fi

# stages from a scripted agent, as its init logs them; a failure 4 s
# later.  All of it over Unix sockets: in the test VM it would repeat the
# same for 10 s of the VM stage, where the minimal boot has the real ones
if [ "$VS_TRANSPORT" = unix ]; then
	VSOCK_SHELL_HUB=$IHUB "$VSH" events --json >"$IH/ev.json" &
	ep=$!
	VSOCK_SHELL_HUB=$IHUB "$VSH" events >"$IH/ev.txt" &
	ep2=$!
	sleep 0.5
	"$TPEER" "unix:$IH/g2.sock" hello "send:$IHELLO$(stage_frame 1 100 'in the initramfs')$(stage_frame 2 200 \
		'modules loaded, transport loopback')$(stage_frame 3 300 'waiting for the host')" sleep:4000 \
		"send:$(stage_frame 6 4300 'no host within 3s; giving up')" sleep:20000 >/dev/null 2>&1 &
	tp=$!
	ivsh wait @g2 --stage waiting -w 10
	expect_eq "init: wait --stage waiting: the guest reported it" "$?" 0
	msg=$(ivsh wait @g2 --stage switch_root -w 1 2>&1); rc=$?
	case "$rc:$msg" in
	1:*"has not reported switch_root after 1 s; its last stage: waiting"*) t_ok "init: wait --stage for one not reported: -w ends it, status 1, the last stage said" ;;
	*) t_fail "init: wait --stage -w" "$rc $msg" ;;
	esac
	expect_eq "init: ls: the STAGE column" "$(ivsh ls | awk '$1 == "g2" { print $9 }')" waiting
	ivsh ls --json >"$IH/ls2.json"
	grep -qF '"stage":"waiting","stage_text":"waiting for the host","stage_uptime_ms":300}' "$IH/ls2.json"
	expect_eq "init: ls --json: stage, its text and the agent's uptime then" "$?" 0
	msg=$(ivsh wait @g2 --stage switch_root -w 10 2>&1); rc=$?
	case "$rc:$msg" in
	2:*"failed before switch_root: no host within 3s; giving up"*) t_ok "init: a failure reported while waiting for a stage: status 2, and why" ;;
	*) t_fail "init: wait --stage and a failure" "$rc $msg" ;;
	esac
	kill "$tp" 2>/dev/null; wait "$tp" 2>/dev/null
	g2_down() { [ "$(istate g2)" = down ]; }
	wait_for 5 g2_down

	# after a release: a report connection brings what followed; the guest
	# is not up for it, and its stage stays for a wait that comes later
	"$TPEER" "unix:$IH/g2.sock" hello "send:$RHELLO$(stage_frame 4 5000 'released by the host')$(stage_frame 5 5100 \
		'switch_root to /dev/vda (/sbin/init)')" sleep:300 >/dev/null 2>&1
	sleep 0.3
	expect_eq "init: a report connection does not bring the guest up" "$(istate g2)" down
	ivsh wait @g2 --stage switch_root -w 5
	expect_eq "init: wait --stage switch_root after the report closed: 0 at once" "$?" 0
	grep -q "guest g2 (unix:.*): stage switch_root at 5.100 s: switch_root to /dev/vda (/sbin/init)" "$TMP/ihub.log"
	expect_eq "init: the hub logs each stage, with the agent's uptime" "$?" 0
	# a stage's text is the guest's: escaped wherever it is shown
	"$TPEER" "unix:$IH/g2.sock" hello "send:$RHELLO$(stage_frame 6 6000 "$EVIL")" sleep:300 >/dev/null 2>&1
	sleep 0.3
	ivsh ls --json >"$IH/ls3.json"
	sleep 0.3
	kill "$ep" "$ep2" 2>/dev/null; wait "$ep" "$ep2" 2>/dev/null
	r=$(sed -n 's/.*"event":"\([a-z]*\)".*"target":"@g2".*"stage":"\([a-z_]*\)".*/\1-\2/p' "$IH/ev.json" | tr '\n' ' ')
	expect_eq "init: events --json: the connect, each stage, the disconnect; none for a report connection" "$r" \
		"connect- stage-initramfs stage-modules stage-waiting stage-failed disconnect-failed stage-released stage-switch_root stage-failed "
	grep -qF '"event":"stage","time":' "$IH/ev.json" &&
		grep -qF '"stage":"switch_root","stage_text":"switch_root to /dev/vda (/sbin/init)","stage_uptime_ms":5100}' "$IH/ev.json"
	expect_eq "init: events --json: a stage event with its text and uptime" "$?" 0
	grep -q ' stage .* g2 .* switch_root .*switch_root to /dev/vda (/sbin/init)$' "$IH/ev.txt"
	expect_eq "init: events: a stage line, its text last" "$?" 0
	shows_escaped "init: a stage's text in events, escaped" "$IH/ev.txt" "$EVIL_SHOWN"
	shows_escaped "init: ...in ls --json, as JSON escapes it" "$IH/ls3.json" \
		'"stage_text":"\u001b]0;pwned\u0007\u001b[2J\u000dall good\u000ax"'
	shows_escaped "init: ...in the hub's log" "$TMP/ihub.log" "stage failed at 6.000 s: $EVIL_SHOWN"
	# a STAGE too short for its fields ends the connection, logged
	"$TPEER" "unix:$IH/g2.sock" hello "send:$RHELLO$(hdr 9 4)00000000" eof:5000 >/dev/null 2>&1
	expect_eq "init: a STAGE of 4 bytes: the hub closes the connection" "$?" 0
	grep -q "guest g2 (unix:.*): a STAGE of 4 bytes; dropped" "$TMP/ihub.log"
	expect_eq "init: ...and says why" "$?" 0
else
	t_skip "init: stages through the hub" "the same over Unix sockets as on the dev machine; the VM stage's minimal boot reports real ones"
fi

# a controller waiting for an agent (--listen) skips a report connection
new_dial_addr
"$VSH" --listen "$LADDR" -v -w 20 -- echo served >"$IH/listen.out" 2>"$IH/listen.err" &
lp=$!
wait_for 5 addr_ready "$LADDR"
"$TPEER" "$DADDR" hello "send:$RHELLO" sleep:300 >/dev/null 2>&1
"$AGENT" "$DADDR" 2>>"$TMP/agent.log" &
wait "$lp"
expect_eq "init: --listen skips a report connection, and serves the agent that comes next" \
	"$(cat "$IH/listen.out")/$(grep -c "skipped an agent's report connection" "$IH/listen.err")" "served/1"

# power: the agent syncs and signals PID 1; here the guard keeps PID 1
# out of reach (EPERM), which the agent reports.  In the test VM PID 1 is
# the busybox /init: the VM stage's minimal boot powers off for real.
if [ "$VS_TRANSPORT" = unix ]; then
	agent_listen
	msg=$("$VSH" poweroff "$ADDR" 2>&1); rc=$?
	case "$rc:$msg" in
	255:*"agent: unable to signal PID 1: Operation not permitted"*) t_ok "init: poweroff: the agent signals PID 1 (EPERM under the guard, said)" ;;
	*) t_fail "init: poweroff" "$rc $msg" ;;
	esac
	msg=$("$VSH" reboot "$ADDR" 2>&1); rc=$?
	case "$rc:$msg" in 255:*"unable to signal PID 1"*) t_ok "init: reboot: the same" ;; *) t_fail "init: reboot" "$rc $msg" ;; esac
	grep -q "power from unix peer .*: 'poweroff'" "$TMP/agent.log" && grep -q "power from unix peer .*: 'reboot'" "$TMP/agent.log"
	expect_eq "init: each power request has its audit line" "$?" 0
	r=$("$TPEER" "$ADDR" "send:ff565348$IHELLO" frame "send:$(hdr 40 3)000000" frame eof:5000 2>&1 | tail -n 1)
	case $r in *"malformed POWER request"*) t_ok "init: a POWER of 3 bytes is refused (PROTO)" ;; *) t_fail "init: malformed POWER" "$r" ;; esac
	agent_stop
	agent_listen --deny power
	msg=$("$VSH" poweroff "$ADDR" 2>&1); rc=$?
	case "$rc:$msg" in 255:*"does not offer power requests"*) t_ok "init: --deny power: the controller says so before it asks" ;; *) t_fail "init: --deny power" "$rc $msg" ;; esac
	agent_stop
	msg=$(ivsh poweroff @g1 2>&1); rc=$?
	case "$rc:$msg" in 255:*"unable to signal PID 1: Operation not permitted"*) t_ok "init: poweroff @NAME, through the hub" ;; *) t_fail "init: poweroff through the hub" "$rc $msg" ;; esac
else
	t_skip "init: power requests" "PID 1 here is the busybox /init: the VM stage's minimal boot powers off"
fi
kill "$gp" 2>/dev/null

msg=$("$VSH" wait @g1 --stage nonsense 2>&1); rc=$?
case "$rc:$msg" in 255:*"--stage takes initramfs, modules"*) t_ok "init: wait --stage with an unknown stage: a usage error" ;; *) t_fail "init: --stage nonsense" "$rc $msg" ;; esac
msg=$("$VSH" poweroff @a,@b 2>&1); rc=$?
case "$rc:$msg" in 255:*"one guest at a time"*) t_ok "init: poweroff takes one guest" ;; *) t_fail "init: poweroff @a,@b" "$rc $msg" ;; esac
msg=$("$VSH" reboot 2>&1); rc=$?
case "$rc:$msg" in 255:*"which guest?"*) t_ok "init: reboot without a guest: a usage error" ;; *) t_fail "init: reboot alone" "$rc $msg" ;; esac
