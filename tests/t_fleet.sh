# fleet: what an orchestrator does with the hub (sourced by suite.sh):
# dial-backs handed out once under parallel load, fan-out to many guests,
# wait for a hub that is still starting, the cause of a refusal kept, ls
# and events fit for scripts, and the README's own hub examples run as
# pasted.  Guests reach the hub over Unix listeners, as in t_hub.sh.

FD=$TMP/fleet
rm -rf "$FD"; mkdir -p "$FD"
FHUB=$FD/hub.sock
if [ "$VS_TRANSPORT" = vsock ]; then FT=3; else FT=1; fi
# fleet_hub [OPTIONS...]: a hub (-v) for g1, g2, g3 and g10 on Unix
# listeners; its pid in FHP, its log in $FD/hub.log
fleet_hub() {
	# shellcheck disable=SC2086
	VSOCK_SHELL_TIMEOUT=$FT "$VSH" serve -v --vsock off --hub "$FHUB" --unix "g1=$FD/g1.sock" --unix "g2=$FD/g2.sock" \
		--unix "g3=$FD/g3.sock" --unix "g10=$FD/g10.sock" "$@" 2>>"$FD/hub.log" &
	FHP=$!
	PIDS="$PIDS $FHP"
	wait_for 5 test -S "$FHUB"
}
fleet_stop() { kill -TERM "$FHP" 2>/dev/null; wait "$FHP" 2>/dev/null; }
# fleet_agent NAME [AGENT-OPTIONS...]: an agent dialing that guest's path,
# --reconnect; its pid in FA_NAME
fleet_agent() {
	fa_n=$1; shift
	"$AGENT" --reconnect "$@" "unix:$FD/$fa_n.sock" 2>>"$FD/agent.log" &
	eval "FA_$fa_n=\$!"
	PIDS="$PIDS $!"
}
fleet_state() { VSOCK_SHELL_HUB=$FHUB "$VSH" ls 2>/dev/null | awk -v n="$1" '$1 == n { print $3 }'; }
fleet_up() { for fu_g; do [ "$(fleet_state "$fu_g")" = up ] || return 1; done; }
# the hub's log from line $1 on
log_since() { tail -n +"$1" "$FD/hub.log"; }

# --- dial-backs: each handed out once, to the client that asked for it ---
# 20 sessions at a time across two guests, twice: every session takes one
# dial-back (its own, or the standby), and none comes for nobody (a
# standby given to a client already waiting for its own dial-back left
# that one to be dropped as "unknown": 5 or 6 in 34 sessions)
fleet_hub
fleet_agent g1
fleet_agent g2
wait_for 5 fleet_up g1 g2
sleep 0.5 # their standbys
n0=$(($(wc -l < "$FD/hub.log") + 1))
bad=0
for r in 1 2; do
	i=0 pids=""
	while [ $i -lt 20 ]; do
		VSOCK_SHELL_HUB=$FHUB "$VSH" -n "@g$((i % 2 + 1))" -- "echo $r.$i" > "$FD/db$i" 2>&1 & pids="$pids $!"
		i=$((i + 1))
	done
	i=0
	for p in $pids; do
		wait "$p" && [ "$(cat "$FD/db$i")" = "$r.$i" ] || bad=$((bad + 1))
		i=$((i + 1))
	done
done
sleep 0.5 # the last standbys
dials=$(log_since "$n0" | grep -c 'dial-back from')
drops=$(log_since "$n0" | grep -c 'dropped a dial-back')
expect_eq "fleet: 40 sessions, 20 at a time across two guests, each right" "$bad" 0
expect_eq "fleet: ...no dial-back dropped as unknown" "$drops" 0
if [ "$dials" -le 42 ]; then t_ok "fleet: ...and $dials dial-backs for 40 sessions (at most one spare per guest)"
else t_fail "fleet: dial-backs for 40 sessions" "$dials, want at most 42"; fi

# --- fan-out: one command on many guests, each line tagged ---
export VSOCK_SHELL_HUB="$FHUB"
r=$("$VSH" @g1,@g2 -- 'echo "out here"; echo err >&2' 2>"$FD/fan.err" | sort | tr '\n' '|'); rc=$?
expect_eq "fleet: @g1,@g2 -- CMD: stdout lines tagged with the guest" "$r" "@g1: out here|@g2: out here|"
expect_eq "fleet: ...stderr lines too, on stderr" "$(sort "$FD/fan.err" | tr '\n' '|')" "@g1: err|@g2: err|"
r=$("$VSH" --all -- 'printf "a\nno newline"' | sort | tr '\n' '|'); rc=$?
expect_eq "fleet: --all: the guests up now (g1, g2 of four), a last line without its newline still tagged" \
	"$rc/$r" "0/@g1: a|@g1: no newline|@g2: a|@g2: no newline|"
"$VSH" -q @g1,@g2 -- 'exit 0' >/dev/null 2>&1; r0=$?
"$VSH" -q @g1,@g2 -- "mkdir $FD/once 2>/dev/null && exit 3; exit 0" >/dev/null 2>&1; r5=$? # one of them fails
"$VSH" -q -w 1 @g1,@g3 -- 'exit 3' >/dev/null 2>&1; r4=$?
"$VSH" @g1,@g2 -- 'sleep 5' >/dev/null 2>&1 & fp=$!
sleep 1; kill -TERM "$fp"; wait "$fp"; r3=$?
expect_eq "fleet: summary status: 0 all well, 5 a command failed, 4 a guest unreachable, 3 interrupted" "$r0 $r5 $r4 $r3" "0 5 4 3"
msg=$("$VSH" @g1,@g2 -- 'exit 7' 2>&1 >/dev/null | sort | tr '\n' '|')
expect_eq "fleet: ...and each guest that failed is named, with its status" "$msg" "vsock-shell: @g1: status 7|vsock-shell: @g2: status 7|"
# -P: at most N at a time (a lock directory shows an overlap)
lockcmd="mkdir $FD/lock 2>/dev/null || echo OVERLAP; sleep 1; rmdir $FD/lock 2>/dev/null; true"
rm -rf "$FD/lock"
r=$("$VSH" -P 1 @g1,@g2,@g1,@g2 -- "$lockcmd" | grep -c OVERLAP)
expect_eq "fleet: -P 1: one session at a time" "$r" 0
rm -rf "$FD/lock"
r=$("$VSH" @g1,@g2 -- "$lockcmd" | grep -c OVERLAP)
expect_eq "fleet: without -P: both at once" "$r" 1
# --json: an object per guest, the output kept up to 64 KiB
"$VSH" --json @g1,@g2 -- "head -c 100000 /dev/zero | tr '\\0' x; printf 'e\"\\033' >&2; exit 2" > "$FD/fan.json"; rc=$?
g1=$(grep '"target":"@g1"' "$FD/fan.json")
case $g1 in
'{"target":"@g1","status":2,"duration":'[0-9]*.[0-9][0-9][0-9]',"stdout":"'*'","stdout_bytes":100000,"stderr":"e\"\u001b","stderr_bytes":3,"truncated":true}')
	t_ok "fleet: --json: target, status, duration, stdout and stderr (escaped) with their sizes, truncated";;
*) t_fail "fleet: --json" "$(head -c 300 "$FD/fan.json")";;
esac
n=$(sed -n 's/.*"stdout":"\([^"]*\)".*/\1/p' "$FD/fan.json" | head -1 | wc -c)
expect_eq "fleet: ...two objects, status 5, the stdout kept is 64 KiB" "$(wc -l < "$FD/fan.json")/$rc/$n" "2/5/65537"
msg=$("$VSH" --all 2>&1); rc=$?
case "$rc:$msg" in 255:*"takes a COMMAND"*) t_ok "fleet: --all without a command: a usage error";; *) t_fail "fleet: --all, no command" "$rc $msg";; esac
msg=$("$VSH" -d /etc/hostname:x @g1,@g2 -- true 2>&1); rc=$?
case "$rc:$msg" in 255:*"-d on many guests"*) t_ok "fleet: -d on many guests: refused";; *) t_fail "fleet: -d fan-out" "$rc $msg";; esac
msg=$("$VSH" @g1,g2 -- true 2>&1); rc=$?
case "$rc:$msg" in 255:*"each is @NAME or @CID"*) t_ok "fleet: a list item without its @: refused";; *) t_fail "fleet: list without @" "$rc $msg";; esac

# wait and release take several guests, and --all
"$VSH" wait @g1 @g2,@g3 -w 1 2>"$FD/wait.err"; rc=$?
expect_eq "fleet: wait @g1 @g2,@g3 -w 1: status 1, g3 named" "$rc/$(grep -c 'g3 .*not connected' "$FD/wait.err")" "1/1"
"$VSH" wait @g1,@g2 -w 1; expect_eq "fleet: wait @g1,@g2: both up, 0" "$?" 0
"$VSH" wait --all -w 1 2>"$FD/wait.err"; rc=$?
expect_eq "fleet: wait --all: every configured guest (g3, g10 down: 1)" "$rc/$(grep -c 'not connected' "$FD/wait.err")" "1/2"
unset VSOCK_SHELL_HUB

# --- ls and events, fit for scripts ---
# a guest whose agent says it is "grüße-ホスト", runs "an agent 1.0" (a
# blank in it), on a path longer than the old fixed column: the columns
# stay in line (widths from the content, a wide character two columns)
tohex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
le16() { printf '%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)); }
le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
field() { f_h=$(tohex "$2"); echo "$(le16 "$1")$(le16 $((${#f_h} / 2)))$f_h"; } # TAG TEXT
fields="$(field 1 'an agent 1.0')$(field 3 'grüße-ホスト')"
"$TPEER" "unix:$FD/g10.sock" hello \
	"send:$(le32 $((16 + ${#fields} / 2)))$(le16 1)0000$(le16 3)$(le16 0)$(le32 31)$(le32 0)$(le32 0)$fields" sleep:30000 \
	>/dev/null 2>&1 &
fp=$!
wait_for 5 fleet_up g10
VSOCK_SHELL_HUB=$FHUB "$VSH" ls > "$FD/ls"
expect_eq "fleet: ls sorts names naturally (g10 after g3)" "$(awk 'NR > 1 { print $1 }' "$FD/ls" | tr '\n' ' ')" "g1 g2 g3 g10 "
# the columns a line takes up to each header word's start: the same in
# every row, a blank before it and none at it (UTF-8 as columns: a
# 2-byte character one, a 3-byte one two, as these are)
u2=$(printf '[\303-\337][\200-\277]') u3=$(printf '[\340-\357][\200-\277][\200-\277]')
if [ "$(printf 'ü' | LC_ALL=C sed "s/$u2/X/g")" = X ]; then
	LC_ALL=C sed "s/$u2/X/g; s/$u3/XX/g" "$FD/ls" > "$FD/ls.cols"
	bad=""
	for col in STATE SINCE HOSTNAME KERNEL AGENT SESSIONS 'LAST ERROR'; do
		awk -v col="$col" 'NR == 1 { p = index($0, col); next }
			{ if (p < 2 || substr($0, p - 1, 1) != " " || substr($0, p, 1) == " ") bad = 1 }
			END { exit bad || !p }' "$FD/ls.cols" || bad="$bad $col"
	done
	expect_eq "fleet: ls: every column in line, with a long path, a blank in AGENT and UTF-8" "$bad" ""
else
	t_skip "fleet: ls: columns in line" "this sed cannot match bytes"
fi
kill "$fp" 2>/dev/null; wait "$fp" 2>/dev/null
# JSON: the target to use (@NAME, @CID for an unnamed guest)
VSOCK_SHELL_HUB=$FHUB "$VSH" wait @300000 -w 2 2>/dev/null & wp=$!
sleep 0.5
VSOCK_SHELL_HUB=$FHUB "$VSH" ls --json > "$FD/ls.json"
wait "$wp"
case $(cat "$FD/ls.json") in '[{"target":"@g1","name":"g1",'*'{"target":"@300000","name":"",'*) t_ok "fleet: ls --json: a target for each guest, @NAME or @CID";;
*) t_fail "fleet: ls --json target" "$(head -c 300 "$FD/ls.json")";; esac
# events --snapshot: every guest as it is, then the changes, each with
# its time and target
VSOCK_SHELL_HUB=$FHUB "$VSH" events --snapshot --json > "$FD/ev.json" & ep=$!
sleep 0.5
VSOCK_SHELL_HUB=$FHUB "$VSH" release @g2
wait_for 5 grep -q '"event":"release"' "$FD/ev.json"
kill "$ep" 2>/dev/null; wait "$ep" 2>/dev/null
r=$(sed 's/^{"event":"\([a-z]*\)","time":[0-9]*,"target":"\([^"]*\)".*"state":"\([a-z]*\)".*/\1 \2 \3/' "$FD/ev.json" | tr '\n' '|')
expect_eq "fleet: events --snapshot --json: the guests as they are, then a release, each with time and target" "$r" \
	"snapshot @g1 up|snapshot @g2 up|snapshot @g3 down|snapshot @g10 down|release @g2 down|"
wait_for 5 gone "$FA_g2"
fleet_agent g2
wait_for 5 fleet_up g2

# --- wait waits for a hub that is still starting ---
fleet_stop
VSOCK_SHELL_HUB=$FHUB "$VSH" wait @g1 -w 10 2>"$FD/wait.err" & wp=$!
sleep 1
check "fleet: wait -w before the hub is up is still waiting" alive "$wp"
fleet_hub # the --reconnect agents come back to it
wait "$wp"; rc=$?
expect_eq "fleet: ...and returns 0 once the hub is up and the guest connected" "$rc/$(cat "$FD/wait.err")" "0/"
fleet_stop
t0=$(date +%s)
msg=$(VSOCK_SHELL_HUB=$FD/nohub.sock "$VSH" wait @g1 -w 2 2>&1); rc=$?; t1=$(date +%s)
case "$rc:$msg:$((t1 - t0 >= 2 && t1 - t0 <= 4))" in 255:*"unable to reach the hub at $FD/nohub.sock in time"*:1)
	t_ok "fleet: ...a hub that never comes: -w, then status 255";;
*) t_fail "fleet: wait, no hub" "$rc $msg after $((t1 - t0)) s";; esac
# readiness for systemd (Type=notify): READY=1 to $NOTIFY_SOCKET once the
# hub listens, a path or an abstract name
for ns in "$FD/notify" "@vsh-notify-$$"; do
	rm -f "$FD/notify"
	"$TPEER" -d "$ns" 5000 > "$FD/notify.out" 2>&1 & np=$!
	sleep 0.3
	NOTIFY_SOCKET=$ns
	export NOTIFY_SOCKET
	fleet_hub
	unset NOTIFY_SOCKET
	wait "$np"; rc=$?
	expect_eq "fleet: the hub says READY=1 to NOTIFY_SOCKET=${ns%%-*}..." "$rc/$(cat "$FD/notify.out")" "0/READY=1"
	fleet_stop
done
unit=$SUITE_DIR/../systemd/vsock-shell-hub.service
if [ -f "$unit" ]; then
	grep -qx 'Type=notify' "$unit"; expect_eq "fleet: vsock-shell-hub.service is Type=notify" "$?" 0
else
	t_skip "fleet: the unit's type" "no systemd/ here"
fi

# --- the cause of a refusal is kept, and repeated refusals are logged sparingly ---
"$VSH" keygen "$FD/k1" && "$VSH" keygen "$FD/k2"
mkdir -p "$FD/keys"; cp "$FD/k1" "$FD/keys/g3.key"; chmod 600 "$FD/keys/g3.key"
# the controller waiting for a dialing agent that holds another key
new_dial_addr
"$AGENT" --retry --key "$FD/k2" "$DADDR" 2>"$FD/wrong.agent" & ap=$!
msg=$("$VSH" --listen "$LADDR" -w 4 --key "$FD/k1" -- true 2>&1); rc=$?
kill "$ap" 2>/dev/null; wait "$ap" 2>/dev/null
last=$(printf '%s\n' "$msg" | tail -n 1)
case "$rc:$last" in 255:*"no agent connected to"*"within 4 s: "*"refused, the last: agent: authentication failed"*)
	t_ok "fleet: --listen -w: the last line says why no agent got in";;
*) t_fail "fleet: --listen, wrong key: the cause" "$rc $last";; esac
n=$(printf '%s\n' "$msg" | grep -c 'authentication failed')
expect_eq "fleet: ...the refusals in 4 s said once before it (not one line each)" "$n" 2
n=$(grep -c 'wrong key' "$FD/wrong.agent")
expect_eq "fleet: ...and the agent logged them once" "$n" 1
# the hub: g3's agent with another key
fleet_hub --keys "$FD/keys"
n0=$(($(wc -l < "$FD/hub.log") + 1))
fleet_agent g3 --key "$FD/k2"
sleep 4
export VSOCK_SHELL_HUB="$FHUB"
n=$(log_since "$n0" | grep -c 'g3.sock: agent: authentication failed')
expect_eq "fleet: the hub logs an agent refused again and again once in 10 s" "$n" 1
"$VSH" ls --json > "$FD/ls.json"
case $(cat "$FD/ls.json") in *'"target":"@g3"'*'"state":"down"'*'"last_error":"agent: authentication failed'*) t_ok "fleet: ls --json: a down guest's last error";;
*) t_fail "fleet: ls --json last_error" "$(head -c 600 "$FD/ls.json")";; esac
"$VSH" ls | awk '$1 == "g3"' | grep -q 'agent: authentication failed'; expect_eq "fleet: ...ls shows it too" "$?" 0
msg=$("$VSH" wait @g3 -w 1 2>&1); rc=$?
case "$rc:$msg" in 1:*"g3 "*"not connected after 1 s; its last error: agent: authentication failed"*) t_ok "fleet: wait says why the guest is not connected";;
*) t_fail "fleet: wait, the cause" "$rc $msg";; esac
"$VSH" events --snapshot --json > "$FD/ev.json" & ep=$!
wait_for 5 grep -q '"target":"@g10"' "$FD/ev.json"
kill "$ep" 2>/dev/null; wait "$ep" 2>/dev/null
grep -q '"target":"@g3".*"last_error":"agent: authentication failed' "$FD/ev.json"; expect_eq "fleet: events --json carry it" "$?" 0
eval "kill \$FA_g3"
unset VSOCK_SHELL_HUB

# --- README.md's hub section: every shell example, run as pasted ---
# The examples are the indented blocks of "## The hub: many guests" and
# its subsections; one that begins "vsock-shell serve [" is the synopsis.
# What a real host has, and this machine must not be touched for, comes
# by one mechanical substitution, the same for every block:
#   - `vsock-shell` is this build's (PATH), VSOCK_SHELL_HUB the test's hub;
#   - `systemctl` is a stand-in (PATH): `systemctl start vsock-shell-hub`
#     starts the hub over unix: sockets, for guests web1 and web2, and
#     returns at once, the hub listening a second later (as the README's
#     alternative, `vsock-shell serve ... &`, may);
#   - the guests are agents on this machine: their root, /sysroot, is a
#     directory of the test's, and `chroot /sysroot /CMD` becomes
#     `sh /sysroot/CMD`.
# A block that no case here knows fails: a new example gets a test.
README=$SUITE_DIR/../README.md
RX=$FD/readme
if [ ! -f "$README" ]; then
	t_skip "fleet: README's hub examples" "no README.md beside tests/"
else
	rm -rf "$RX"; mkdir -p "$RX/bin" "$RX/work/web1" "$RX/work/web2" "$RX/sysroot/etc" "$RX/sysroot/usr/local/sbin"
	SR=$RX/sysroot
	awk -v dir="$RX" '
		/^## / { sect = ($0 == "## The hub: many guests") }
		!sect || !/^(    |$)/ { if (f) close(f); f = ""; next }
		/^    / { if (!f) f = dir "/block." ++n; print substr($0, 5) > f }' "$README"
	cat > "$RX/bin/systemctl" <<-EOS
	#!/bin/sh
	[ "\$*" = "start vsock-shell-hub" ] || { echo "systemctl (test stand-in): \$*?" >&2; exit 1; }
	(sleep 1; exec "$VSH" serve --vsock off --hub "$RX/hub.sock" --unix "web1=$RX/web1.sock" --unix "web2=$RX/web2.sock" 2>>"$RX/hub.log") &
	echo \$! > "$RX/hub.pid"
	EOS
	chmod +x "$RX/bin/systemctl"
	ln -s "$VSH" "$RX/bin/vsock-shell"
	printf '#!/bin/sh\necho "firstboot: $(cat %s/etc/network.conf)" >> %s/firstboot.log\n' "$SR" "$SR" > "$SR/usr/local/sbin/firstboot"
	echo "conf web1" > "$RX/work/web1/network.conf"; echo "conf web2" > "$RX/work/web2/network.conf"
	rx_agents() { # the guests' agents, dialing before the hub is there
		"$AGENT" --retry --reconnect "unix:$RX/web1.sock" 2>>"$RX/agent.log" & RA1=$!
		"$AGENT" --retry --reconnect "unix:$RX/web2.sock" 2>>"$RX/agent.log" & RA2=$!
		PIDS="$PIDS $RA1 $RA2"
	}
	# rx_run BLOCK: the block, substituted, in the work directory
	rx_run() {
		sed -e 's|chroot /sysroot /|sh /sysroot/|g' -e "s|/sysroot|$SR|g" "$1" > "$1.sh"
		(cd "$RX/work" && PATH="$RX/bin:$PATH" VSOCK_SHELL_HUB="$RX/hub.sock" sh "$1.sh")
	}
	rx_up() { [ "$(VSOCK_SHELL_HUB=$RX/hub.sock "$VSH" ls 2>/dev/null | awk '$3 == "up"' | wc -l)" = 2 ]; }
	A="" B="" C="" D="" other=""
	for b in "$RX"/block.*; do
		case $(cat "$b") in
		'vsock-shell serve ['*) ;;
		*'systemctl start vsock-shell-hub'*) A=$b ;;
		*'events --snapshot --json | while'*) B=$b ;;
		*'--all -- uptime'*) C=$b ;;
		*'ls --json | tr'*) D=$b ;;
		*) other="$other $(head -n 1 "$b")" ;;
		esac
	done
	expect_eq "fleet: README: the hub section's examples are the four this test runs" "$other/${A:+A}${B:+B}${C:+C}${D:+D}" "/ABCD"
	# provisioning a fleet booted together: the guests dial first
	rx_agents
	rx_run "$A" > "$RX/A.out" 2>&1; rc=$?
	wait_for 10 gone "$RA1"; wait "$RA1"; a1=$?
	wait_for 10 gone "$RA2"; wait "$RA2"; a2=$?
	r="$rc/$a1/$a2/$(cat "$RX/A.out" "$RX/work/log.web1" "$RX/work/log.web2")/$(sort "$SR/firstboot.log" | sed 's/web[12]/webN/' | uniq -c | tr -s ' ')"
	expect_eq "fleet: README: provisioning a fleet: hub started, each guest waited for, configured, released" "$r" \
		"0/0/0// 2 firstboot: conf webN"
	rx_agents
	wait_for 10 rx_up
	rx_run "$C" > "$RX/C.out" 2>&1; rc=$?
	r=$(grep -c '^@web[12]: .*load average' "$RX/C.out")/$(grep -c '^{"target":"@web[12]","status":0,' "$RX/work/df.json")
	expect_eq "fleet: README: --all -- uptime, tagged; --all --json to a file" "$rc/$r" "0/2/2"
	rx_run "$D" > "$RX/D.out" 2>&1; rc=$?
	expect_eq "fleet: README: a command of its own for each guest, the loop waiting for its jobs" \
		"$rc/$(cat "$RX/work/out.web1" "$RX/work/out.web2" "$RX/D.out" | tr '\n' ' ')" "0/I am @web1 I am @web2 "
	# the orchestrator loop: the guests up, then one as it connects; it
	# ends when the hub stops
	rx_run "$B" > "$RX/B.out" 2>&1 & bp=$!
	wait_for 10 sh -c "[ \$(grep -c 'load average' '$RX/B.out') -ge 2 ]"
	n1=$(grep -c 'load average' "$RX/B.out")
	kill "$RA2"; wait "$RA2" 2>/dev/null
	"$AGENT" --retry --reconnect "unix:$RX/web2.sock" 2>>"$RX/agent.log" & RA2=$!
	PIDS="$PIDS $RA2"
	wait_for 10 sh -c "[ \$(grep -c 'load average' '$RX/B.out') -ge 3 ]"
	n2=$(grep -c 'load average' "$RX/B.out")
	kill -TERM "$(cat "$RX/hub.pid")"
	if wait_for 10 gone "$bp"; then wait "$bp"; e=ended; else e=running; kill "$bp"; fi
	expect_eq "fleet: README: the events loop runs uptime on each guest up, then on one that connects" "$n1/$n2/$e" "2/3/ended"
	kill "$RA1" "$RA2" 2>/dev/null
fi
