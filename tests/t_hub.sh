# hub: vsock-shell serve holding several dialing agents, and its clients
# (sourced by suite.sh).  Guests reach the hub over Unix listeners, one per
# guest, as Firecracker and cloud-hypervisor deliver them (here and in the
# test VM alike); in the VM also one over AF_VSOCK.

le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
le16() { printf '%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)); }
hdr() { echo "$(le32 "$2")$(le16 "$1")0000"; }
tohex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
AHELLO="$(hdr 1 16)0300$(le16 0)$(le32 31)$(le32 0)$(le32 0)"

# the hub's limits, short for the tests: 1 s here, 3 s under TCG where
# a fork and a dial-back take their time
if [ "$VS_TRANSPORT" = vsock ]; then HT=3 KA=6; else HT=1 KA=3; fi
HD=$TMP/hub
rm -rf "$HD"; mkdir -p "$HD"
HUB=$HD/hub.sock
export VSOCK_SHELL_HUB="$HUB"
hub_args="--vsock off --hub $HUB --unix vm1=$HD/vm1.sock --unix vm2=$HD/vm2.sock --unix vm3=$HD/vm3.sock --name web=77"
hub_start() {
	# shellcheck disable=SC2086
	VSOCK_SHELL_KEEPALIVE=$KA VSOCK_SHELL_TIMEOUT=$HT "$VSH" serve $hub_args "$@" 2>>"$TMP/hub.log" &
	HP=$!
	PIDS="$PIDS $HP"
	wait_for 5 test -S "$HUB"
}
guest_up() { # NAME: an agent dialing that guest's path, --reconnect; pid in GP_NAME
	"$AGENT" --reconnect "unix:$HD/$1.sock" 2>>"$TMP/agent.log" &
	eval "GP_$1=\$!"
	PIDS="$PIDS $!"
}
state_of() { "$VSH" ls 2>/dev/null | awk -v n="$1" '$1 == n { print $3 }'; }
is_up() { [ "$(state_of "$1")" = up ]; }
is_down() { [ "$(state_of "$1")" = down ]; }
# the pid of the agent that served a session: the session process's parent
AGENT_PID='cut -d" " -f4 /proc/$PPID/stat'

# SIGTERM before any agent: the hub stops at once, and takes its sockets
hub_start
kill -TERM "$HP"
if wait_for 3 gone "$HP"; then wait "$HP"; rc=$?; else rc=running; fi
expect_eq "hub: SIGTERM before any agent: it stops, status 0" "$rc" 0
check "hub: ...and removes its sockets" sh -c "[ ! -e '$HUB' ] && [ ! -e '$HD/vm1.sock' ]"

hub_start
r=$("$VSH" ls | awk 'NR > 1 { print $1 "/" $2 "/" $3 }' | sort | tr '\n' ' ')
expect_eq "hub: ls names every configured guest, all down" "$r" "vm1/unix:$HD/vm1.sock/down vm2/unix:$HD/vm2.sock/down vm3/unix:$HD/vm3.sock/down web/vsock:77/down "
"$VSH" wait @vm1 -w 10 & wp=$!
sleep 0.5
check "hub: wait @vm1 before its agent appears is still waiting" alive "$wp"
guest_up vm1
wait "$wp"; expect_eq "hub: ...and returns 0 once it connects" "$?" 0
"$VSH" wait @vm1 -w 1; expect_eq "hub: wait for a guest already up returns 0 at once" "$?" 0
msg=$("$VSH" wait @vm2 -w 1 2>&1); rc=$?
case "$rc:$msg" in 1:*"not connected after 1 s"*) t_ok "hub: wait -w 1 for a guest that never comes: status 1";; *) t_fail "hub: wait times out" "$rc $msg";; esac
guest_up vm2
wait_for 5 is_up vm2
expect_eq "hub: two guests up" "$(state_of vm1)/$(state_of vm2)" "up/up"
# identity is the path, never what the guest says: both agents here have
# the same hostname, and each session goes to its own guest's agent
expect_eq "hub: @vm1 is vm1's agent" "$("$VSH" @vm1 -- "$AGENT_PID")" "$GP_vm1"
expect_eq "hub: @vm2 is vm2's agent (same hostname, its own entry)" "$("$VSH" @vm2 -- "$AGENT_PID")" "$GP_vm2"
expect_eq "hub: ls shows what the guest says of itself" "$("$VSH" ls | awk '$1 == "vm1" { print $5 }')" "$(uname -n | cut -c1-20)"
"$VSH" ls --json > "$TMP/ls.json"
case $(cat "$TMP/ls.json") in '[{"target":"@vm1","name":"vm1"'*'"state":"up"'*'"agent":"vsock-agent'*) t_ok "hub: ls --json";; *) t_fail "hub: ls --json" "$(cat "$TMP/ls.json")";; esac

# through the hub: status, streams, stdin, a pty, tree copies
r=$("$VSH" @vm1 -- 'echo out; echo err >&2; exit 7' 2>"$TMP/err"); rc=$?
expect_eq "hub: exec: stdout, stderr and status" "$r/$(cat "$TMP/err")/$rc" "out/err/7"
r=$("$TGEN" 3000000 5 | "$VSH" @vm1 -- cat | "$TGEN" -c 3000000 5)
expect_eq "hub: 3 MB through cat, byte-exact" "$r" "ok 3000000"
printf 'expect /dev/pts/\nwait 5\n' > "$TMP/hubpty.tpty"
"$TPTY" -T 20 -t 10 "$TMP/hubpty.tpty" -- "$VSH" -t @vm1 -- 'tty; exit 5' > /dev/null 2>&1
expect_eq "hub: a session on a pty" "$?" 0
rm -rf "$HD/tree" "$HD/back"; mkdir -p "$HD/tree/sub"
"$TGEN" 200000 3 > "$HD/tree/sub/f"; ln -s sub/f "$HD/tree/l"; echo x > "$HD/tree/x"
"$VSH" cp -q -r @vm1 "$HD/tree" ":$HD/up"; rc1=$?
"$VSH" cp -q -r @vm2 ":$HD/up" "$HD/back"; rc2=$?
if [ "$rc1$rc2" = 00 ] && diff -r "$HD/tree" "$HD/back" >/dev/null && [ "$(readlink "$HD/back/l")" = sub/f ]; then
	t_ok "hub: a tree up through one guest and down through another, byte-exact"
else
	t_fail "hub: tree copies" "rc $rc1 $rc2"
fi
# scp's form: @NAME:PATH names the guest, and there is no TARGET
echo scp-form > "$HD/scp.src"
"$VSH" cp -q "$HD/scp.src" "@vm1:$HD/scp.up"; rc1=$?
"$VSH" cp -q "@vm2:$HD/scp.up" "$HD/scp.back"; rc2=$?
expect_eq "hub: cp SRC @NAME:DST and cp @NAME:SRC DST (scp's form)" "$rc1$rc2/$(cat "$HD/scp.back" 2>/dev/null)" "00/scp-form"
msg=$("$VSH" cp "@vm1:$HD/scp.up" "@vm2:$HD/scp.src" "$HD" 2>&1); rc=$?
case "$rc:$msg" in 255:*"name two guests"*) t_ok "hub: ...two guests in one cp: a usage error";; *) t_fail "hub: cp with two guests" "$rc $msg";; esac
expect_eq "hub: 10 sessions in parallel" "$(parallel_sessions @vm1 10 50000)" 0

# the exit status survives stdin pressure: 200 of 200, through the hub
i=0 bad=0
while [ $i -lt 200 ]; do
	"$VSH" @vm2 -- 'exit 3' < /dev/zero 2>/dev/null; [ $? = 3 ] || bad=$((bad + 1))
	i=$((i + 1))
done
expect_eq "hub: 'exit 3' < /dev/zero gives 3 in 200 of 200 runs" "$bad" 0

# a silent client holds nobody up; an absent guest is waited for only so long
"$TPEER" "unix:$HUB" sleep:6000 >/dev/null 2>&1 &
sp=$!
t0=$(date +%s)
r=$("$VSH" @vm1 -- echo still); t1=$(date +%s)
expect_eq "hub: a silent client does not hold up another" "$r/$((t1 - t0 < 3))" "still/1"
kill "$sp" 2>/dev/null; wait "$sp" 2>/dev/null
t0=$(date +%s)
msg=$("$VSH" -w 2 @web -- true 2>&1); rc=$?; t1=$(date +%s)
case "$rc:$msg:$((t1 - t0 <= 4))" in 255:*"web (vsock:77) is not connected"*:1) t_ok "hub: a session for a guest that is down waits -w, then fails clearly";; *) t_fail "hub: absent guest" "$rc $msg after $((t1 - t0)) s";; esac
msg=$("$VSH" @nosuch -- true 2>&1); rc=$?
case "$rc:$msg" in 255:*"no guest named 'nosuch'"*) t_ok "hub: an unknown name: clear error";; *) t_fail "hub: unknown name" "$rc $msg";; esac

# a guest nobody configured is listed while it is connected or a client
# waits for it, no longer: @CIDs named in passing leave nothing behind
"$VSH" wait @300000 -w 1 2>/dev/null & wp=$!
sleep 0.3
r=$("$VSH" ls | awk '$1 == "-" && $2 == "vsock:300000" { print $3 }')
wait "$wp"
expect_eq "hub: a CID a client waits for is listed while it waits, then not" "$r/$("$VSH" ls | grep -c 'vsock:300000 ')" down/0
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$HP/status"; }
lookups() { # FROM N: release @CID for N CIDs from FROM, none of them up
	l_i=$1
	while [ "$l_i" -lt $(($1 + $2)) ]; do "$VSH" release "@$l_i" 2>/dev/null; l_i=$((l_i + 1)); done
}
lookups 200000 50
r0=$(rss) lp=""
for k in 0 1 2 3; do lookups $((210000 + k * 300)) 300 & lp="$lp $!"; done
for p in $lp; do wait "$p"; done
g=$(($(rss) - r0)) n=$("$VSH" ls | grep -c 'vsock:2[0-9]* ')
# (each record was about 500 bytes: 600 kB for these)
if [ "$g" -lt 200 ] && [ "$n" = 0 ]; then t_ok "hub: 1200 lookups of unknown @CIDs: memory flat ($g kB), none listed"
else t_fail "hub: 1200 lookups of unknown @CIDs" "RSS grew by $g kB (want < 200), $n of them listed (want 0)"; fi

# the operation a client names goes to the log: one of the four, or the
# request is refused (a newline in it would forge a line, an ESC drive
# the terminal of whoever reads the log)
fop=$(printf 'x\nFORGED\033[1m')
"$TPEER" "unix:$HUB" "send:ff565348$(hdr 48 $((4 + ${#fop} + 1 + 5 + 4)))$(tohex vm1)00$(tohex "$fop")00$(tohex true)00$(le32 1000)" \
	frame > "$TMP/fop" 2>&1
case $(cat "$TMP/fop") in "2 "*"unknown operation 'x"*) t_ok "hub: an unknown operation is refused, its name kept for its writer to escape";; *) t_fail "hub: unknown operation" "$(cat "$TMP/fop")";; esac
sleep 0.2
r=$(grep -c '^FORGED' "$TMP/hub.log")/$(od -An -tx1 -v "$TMP/hub.log" | grep -c ' 1b')
expect_eq "hub: ...and the log has no line of the client's making, no ESC" "$r" 0/0

# a dial-back no session waits for (its client gave up, or a standby
# served it) is dropped, with a log line that does not read like an attack
n0=$(wc -l < "$TMP/hub.log")
"$TPEER" "unix:$HD/vm1.sock" hello "send:$(hdr 1 16)0300$(le16 0)$(le32 31)$(le32 305419896)$(le32 0)" sleep:500 >/dev/null 2>&1
dropped() { tail -n +$((n0 + 1)) "$TMP/hub.log" | grep -q "dropped a dial-back"; }
wait_for 3 dropped
r=$(tail -n +$((n0 + 1)) "$TMP/hub.log" | grep "dropped a dial-back")
case $r in *"no waiting session claims"*) case $r in *unknown*|*token*) t_fail "hub: an unclaimed dial-back" "$r";; *) t_ok "hub: an unclaimed dial-back is dropped in plain words";; esac;;
*) t_fail "hub: an unclaimed dial-back is dropped in plain words" "$r" ;; esac

# a guest that ignores OPEN: each session waiting for it expires alone
"$TPEER" "unix:$HD/vm3.sock" hello "send:$AHELLO" sleep:30000 >/dev/null 2>&1 &
fp=$!
wait_for 5 is_up vm3
msg=$("$VSH" @vm3 -- true 2>&1); rc=$?
case "$rc:$msg" in 255:*"did not dial back within $HT s"*) t_ok "hub: a guest that ignores OPEN: the session expires with a clear error";; *) t_fail "hub: ignored OPEN" "$rc $msg";; esac
for i in 1 2 3; do "$VSH" @vm3 -- true >/dev/null 2>&1 & done
r=$("$VSH" @vm1 -- echo unaffected)
expect_eq "hub: ...and others are served meanwhile" "$r" unaffected
wait_for $((3 * KA)) is_down vm3
grep -q "vm3 .*did not answer a keep-alive PING" "$TMP/hub.log"; expect_eq "hub: a silent agent is dropped by the keep-alive" "$?" 0
kill "$fp" 2>/dev/null; wait "$fp" 2>/dev/null
check "hub: a live agent answers the keep-alive and stays" is_up vm1

# what a guest says of itself reaches ls, events and the hub's log
# escaped, and JSON as JSON escapes (\u001b): nothing of it raw
tohex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
field() { f_h=$(tohex "$2"); echo "$(le16 "$1")$(le16 $((${#f_h} / 2)))$f_h"; } # TAG TEXT
fields="$(field 1 "agent$EVIL")$(field 3 "$EVIL")$(field 4 "6.1$(printf '\033[0m\r')")"
n0=$(wc -l < "$TMP/hub.log")
"$VSH" events > "$TMP/ev.evil" &
ep=$!
"$VSH" events --json > "$TMP/evj.evil" &
ejp=$!
sleep 0.5
"$TPEER" "unix:$HD/vm3.sock" hello "send:$(hdr 1 $((16 + ${#fields} / 2)))0300$(le16 0)$(le32 31)$(le32 0)$(le32 0)$fields" \
	sleep:30000 >/dev/null 2>&1 &
fp=$!
wait_for 5 is_up vm3
"$VSH" ls > "$TMP/ls.evil"
"$VSH" ls --json > "$TMP/lsj.evil"
sleep 0.3
kill "$fp" "$ep" "$ejp" 2>/dev/null; wait "$fp" "$ep" "$ejp" 2>/dev/null
tail -n +$((n0 + 1)) "$TMP/hub.log" > "$TMP/hub.evil"
shows_escaped "hub: ls shows a guest's hostname escaped" "$TMP/ls.evil" "$EVIL_SHOWN"
shows_escaped "hub: ...its kernel" "$TMP/ls.evil" '6.1\x1b[0m\r'
shows_escaped "hub: ...and its agent's version" "$TMP/ls.evil" "agent$EVIL_SHOWN"
shows_escaped "hub: ls --json escapes control characters as JSON does" "$TMP/lsj.evil" \
	'"hostname":"\u001b]0;pwned\u0007\u001b[2J\u000dall good\u000ax"'
shows_escaped "hub: events shows them escaped" "$TMP/ev.evil" "$EVIL_SHOWN"
shows_escaped "hub: events --json as JSON" "$TMP/evj.evil" '"kernel":"6.1\u001b[0m\u000d"'
shows_escaped "hub: the hub's log shows them escaped" "$TMP/hub.evil" "guest vm3 (unix:$HD/vm3.sock) connected: agent$EVIL_SHOWN, hostname $EVIL_SHOWN, kernel 6.1\x1b[0m\r"

# events, a guest that reboots, release
"$VSH" events > "$TMP/events" &
ep=$!
"$VSH" events --json > "$TMP/events.json" &
ejp=$!
sleep 0.5
kill -9 "$GP_vm1"; wait "$GP_vm1" 2>/dev/null
wait_for 5 is_down vm1
guest_up vm1
wait_for 5 is_up vm1
expect_eq "hub: a guest that comes back replaces its entry" "$("$VSH" @vm1 -- "$AGENT_PID")" "$GP_vm1"
"$VSH" release @vm2; rc=$?
if wait_for 5 gone "$GP_vm2"; then wait "$GP_vm2"; arc=$?; else arc=running; fi
expect_eq "hub: release @vm2: the agent exits 0, even with --reconnect" "$rc/$arc" "0/0"
check "hub: ...and vm2 is down" is_down vm2
msg=$("$VSH" release @vm2 2>&1); rc=$?
case "$rc:$msg" in 1:*"not connected"*) t_ok "hub: release of a guest that is not up: status 1";; *) t_fail "hub: release twice" "$rc $msg";; esac
sleep 0.3
kill "$ep" "$ejp" 2>/dev/null; wait "$ep" "$ejp" 2>/dev/null
r=$(awk '$3 == "vm1" || $3 == "vm2" { print $2 "-" $3 }' "$TMP/events" | tr '\n' ' ')
expect_eq "hub: events: disconnect, connect, release" "$r" "disconnect-vm1 connect-vm1 release-vm2 "
grep -q '^{"event":"connect","time":[0-9]*,"target":"@vm1","name":"vm1"' "$TMP/events.json"; expect_eq "hub: events --json" "$?" 0

# a hub restart: sessions in flight go on (they hold their own connections),
# --reconnect agents come back
fds_of() { ls "/proc/$1/fd" | wc -l | tr -d ' '; }
fd0=$(fds_of "$GP_vm1")
"$VSH" @vm1 -- 'sleep 2; echo survived; exit 6' > "$TMP/flight" 2>&1 &
fl=$!
sleep 0.5
kill -TERM "$HP"; wait "$HP" 2>/dev/null
wait "$fl"; rc=$?
expect_eq "hub: a session in flight survives the hub's going" "$(cat "$TMP/flight")/$rc" "survived/6"
# while the agent redials, its ended session and its standby are reaped:
# no zombie children (counted in /proc) for longer than a backoff step
zombies() { # how many children of $ZP are zombies
	z_n=0
	for s in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null < "$s" || continue
		set -- ${line##*) }
		[ "$1" = Z ] && [ "$2" = "$ZP" ] && z_n=$((z_n + 1))
	done
	echo "$z_n"
}
no_zombies() { [ "$(zombies)" = 0 ]; }
ZP=$GP_vm1
sleep 0.5
wait_for 5 no_zombies
expect_eq "hub: an agent redialing a hub that is gone keeps no zombie children" "$(zombies) $(alive "$GP_vm1" && echo redialing)" "0 redialing"
hub_start
wait_for 10 is_up vm1
r=$("$VSH" @vm1 -- echo back)
expect_eq "hub: --reconnect agents come back to a restarted hub" "$r" back
expect_eq "hub: ...holding as many descriptors as before" "$(fds_of "$GP_vm1")" "$fd0"

# a flood: a guest that opens connections and never speaks holds a few
# pending handshakes, no more, and at the descriptor limit the hub neither
# spins nor stalls.  A hub of its own, with 40 descriptors and handshakes
# that wait 20 s: ls answers, another guest connects and works.
FL=$TMP/hubfl
rm -rf "$FL"; mkdir -p "$FL"
(ulimit -n 40 && VSOCK_SHELL_TIMEOUT=20 exec "$VSH" serve --vsock off --hub "$FL/hub.sock" --unix a="$FL/a.sock" \
	--unix b="$FL/b.sock" 2>>"$TMP/hubfl.log") &
FP=$!
PIDS="$PIDS $FP"
wait_for 5 test -S "$FL/hub.sock"
cpu() { awk '{ print $14 + $15 }' "/proc/$FP/stat"; } # its utime + stime, in ticks
tck=$(getconf CLK_TCK 2>/dev/null || echo 100)
flood() { # ADDR N: N connections that stay silent for 20 s; pids in FLP
	f_i=0
	while [ $f_i -lt "$2" ]; do "$TPEER" "$1" sleep:20000 >/dev/null 2>&1 & FLP="$FLP $!"; f_i=$((f_i + 1)); done
}
FLP=""
flood "unix:$FL/b.sock" 60
"$AGENT" "unix:$FL/a.sock" 2>>"$TMP/agent.log" &
fa=$!
PIDS="$PIDS $fa"
sleep 1
c0=$(cpu); sleep 2; c1=$(cpu)
expect_eq "hub: 60 silent connections from one guest: the hub stays idle (< 20% CPU)" "$(((c1 - c0) * 100 < tck * 40))" 1
r=$(VSOCK_SHELL_HUB=$FL/hub.sock timeout $((HT + 2)) "$VSH" ls | awk 'NR > 1 { print $1 }' | tr '\n' ' ')
expect_eq "hub: ...ls answers at once" "$r" "a b "
r=$(VSOCK_SHELL_HUB=$FL/hub.sock timeout $((HT * 2 + 5)) "$VSH" -w $((HT + 2)) @a -- echo through 2>&1)
expect_eq "hub: ...another guest connects and runs a command" "$r" through
wait_for 1 grep -q "refused [0-9]* agent connections* over the caps on pending handshakes (8 per guest, 10 in all), the last from unix:$FL/b.sock" "$TMP/hubfl.log"
expect_eq "hub: ...the refusals are logged, counted" "$?" 0
# clients are not capped: these take the hub to its descriptor limit
flood "unix:$FL/hub.sock" 40
sleep 1
c0=$(cpu); sleep 2; c1=$(cpu)
expect_eq "hub: at the descriptor limit the hub stays idle (< 20% CPU)" "$(((c1 - c0) * 100 < tck * 40))" 1
wait_for 1 grep -q "at the descriptor limit: refused [0-9]* connection" "$TMP/hubfl.log"
expect_eq "hub: ...and logs what it refused there" "$?" 0
kill $FLP "$fa" "$FP" 2>/dev/null
wait $FLP "$fa" "$FP" 2>/dev/null

# who may use the hub: root, its own user, members of --group
if [ "$(id -u)" = 0 ]; then
	kill -TERM "$HP"; wait "$HP" 2>/dev/null
	hub_start --group 4242
	wait_for 10 is_up vm1
	expect_eq "hub: --group: the socket is group 4242, mode 0660" "$(stat -c '%g %a' "$HUB")" "4242 660"
	chmod 755 "$HD"
	msg=$("$TGEN" -u 65534 "$PUB_VSH" ls 2>&1); rc=$?
	case "$rc:$msg" in 255:*"unable to reach the hub"*"Permission denied"*) t_ok "hub: a user not in the group cannot reach the socket";; *) t_fail "hub: file permissions" "$rc $msg";; esac
	chmod 666 "$HUB" # past the file mode: the kernel's SO_PEERCRED still says no
	msg=$("$TGEN" -u 65534 "$PUB_VSH" @vm1 -- echo should-not-run 2>&1); rc=$?
	case "$rc:$msg" in 255:*"not allowed: uid 65534"*) t_ok "hub: a client not in the group is refused by its credentials";; *) t_fail "hub: SO_PEERCRED refusal" "$rc $msg";; esac
	grep -q "refused a client: uid 65534" "$TMP/hub.log"; expect_eq "hub: ...and the refusal is logged" "$?" 0
	r=$("$TGEN" -u 65534:65534:4242 "$PUB_VSH" @vm1 -- echo member 2>&1)
	expect_eq "hub: a member of the group (supplementary) gets in" "$r" member
	r=$("$TGEN" -u 65534:4242 "$PUB_VSH" @vm1 -- echo primary 2>&1)
	expect_eq "hub: a member of the group (primary) gets in" "$r" primary
	grep -q "session: uid 65534 pid [0-9]* guest vm1 .* exec 'echo member'" "$TMP/hub.log"
	expect_eq "hub: each session is audited: uid, pid, guest, operation" "$?" 0
else
	t_skip "hub: --group" "needs root"
fi

if [ "$VS_TRANSPORT" = vsock ]; then
	# over AF_VSOCK: the hub on a reserved port, the agent dialing it
	kill -TERM "$HP"; wait "$HP" 2>/dev/null
	hub_start --vsock "vsock:any:$((PORT % 300 + 700))"
	"$AGENT" "vsock:2:$((PORT % 300 + 700))" 2>>"$TMP/agent.log" &
	vp=$!
	wait_for 10 is_up @1 || wait_for 5 sh -c "'$VSH' ls | grep -q 'vsock:1 .* up'"
	r=$("$VSH" @1 -- echo over-vsock)
	expect_eq "hub: a guest over AF_VSOCK, reached as @CID" "$r" over-vsock
	"$VSH" release @1
	wait_for 5 gone "$vp"; wait "$vp"
	expect_eq "hub: ...released, its agent exits 0" "$?" 0
fi
kill -TERM "$HP"; wait "$HP" 2>/dev/null
for v in vm1 vm2; do eval "p=\${GP_$v:-}"; [ -n "$p" ] && kill "$p" 2>/dev/null; done
unset VSOCK_SHELL_HUB
