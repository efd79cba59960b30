# fwd: forwarding, as ssh's -L, -R and -W, for TCP and Unix sockets: the
# bytes, both half-closes, a refused target, one that dies mid-stream,
# many at once, memory under a slow reader, the deny switch, and ssh
# through -W (sourced by suite.sh)

TFWD=$VS_BIN/tfwd
FP=$((PORT + 27000 + $$ % 500))
nport() { FP=$((FP + 1)); }
# fwd_up NAME N VSH-ARGS...: a forwarder in the background (FPID), once
# it says it forwards N addresses; its log in $TMP/NAME.log
fwd_up() {
	fu_log=$TMP/$1.log fu_n=$2; shift 2
	"$VSH" -v "$@" 2>"$fu_log" &
	FPID=$!
	PIDS="$PIDS $FPID"
	wait_for 10 fwd_says "$fu_log" "$fu_n"
}
fwd_says() { [ "$(grep -c '^vsock-shell: forwarding ' "$1")" -ge "$2" ]; }
fwd_down() { kill "$FPID" 2>/dev/null; wait "$FPID" 2>/dev/null; }
# serve NAME ADDR MODE ARG: a target (SPID), once it listens
serve() {
	"$TFWD" "$3" "$2" ${4:+"$4"} 2>"$TMP/$1.srv" >>"$TMP/$1.out" &
	SPID=$!
	PIDS="$PIDS $SPID"
	wait_for 5 grep -q ready "$TMP/$1.srv"
}
# through ADDR N SEED: N bytes there and back through an echo; "ok N"
through() { "$TGEN" "$2" "$3" | "$TFWD" cat "$1" | "$TGEN" -c "$2" "$3"; }
sizes() { for n in 0 1 1048576; do printf '%s ' "$(through "$1" $n $n)"; done; }
ALL="ok 0 ok 1 ok 1048576 "

agent_listen
X=$ADDR

# --- targets: echo servers, TCP and Unix, on the "guest" side ------------
nport; E4=tcp:127.0.0.1:$FP; serve echo4 "$E4" serve cat; E4P=$FP
EU=unix:$TMP/fwd-echo.sock; serve echou "$EU" serve cat
nport; E6P=$FP
if "$TFWD" serve "tcp:[::1]:$E6P" cat 2>"$TMP/echo6.srv" & E6PID=$!; PIDS="$PIDS $E6PID"; wait_for 5 grep -q ready "$TMP/echo6.srv"; then
	have6=1
else
	have6=
fi

# --- -L -------------------------------------------------------------------
nport; L4=$FP; nport; L6=$FP
fwd_up fwdL 2 -N -L "$L4:127.0.0.1:$E4P" -L "$TMP/fwd-l.sock:${EU#unix:}" "$X"
expect_eq "fwd: -L TCP (127.0.0.1): 0, 1 and 1 MiB byte-exact, both ways" "$(sizes tcp:127.0.0.1:$L4)" "$ALL"
expect_eq "fwd: -L Unix socket to Unix socket: 0, 1 and 1 MiB byte-exact" "$(sizes "unix:$TMP/fwd-l.sock")" "$ALL"
check "fwd: -v says what is forwarded" grep -q "forwarding 127.0.0.1:$L4 to 127.0.0.1:$E4P in the guest" "$TMP/fwdL.log"
check "fwd: the agent audits each forwarded connection with its target" \
	grep -q "forward from .*'127.0.0.1:$E4P'" "$TMP/agent.log"
# fwd_many ADDR TAG [N]: N (100) connections to ADDR at once, each its
# own data echoed back; prints how many came back wrong
fwd_many() {
	fm_i=0 fm_pids="" fm_n=${3:-100}
	while [ $fm_i -lt $fm_n ]; do
		{ "$TGEN" 20000 $fm_i | "$TFWD" cat "$1" | "$TGEN" -c 20000 $fm_i > "$TMP/$2$fm_i"; } & fm_pids="$fm_pids $!"
		fm_i=$((fm_i + 1))
	done
	for fm_p in $fm_pids; do wait "$fm_p"; done
	fm_bad=0 fm_i=0
	while [ $fm_i -lt $fm_n ]; do [ "$(cat "$TMP/$2$fm_i")" = "ok 20000" ] || fm_bad=$((fm_bad + 1)); fm_i=$((fm_i + 1)); done
	echo "$fm_bad"
}
# 100 at once, each its own data
expect_eq "fwd: -L: 100 connections at once, none failed" "$(fwd_many "tcp:127.0.0.1:$L4" fc)" 0
fwd_down
if [ -n "$have6" ]; then
	fwd_up fwdL6 1 -N -L "[::1]:$L6:[::1]:$E6P" "$X"
	expect_eq "fwd: -L TCP (::1): 0, 1 and 1 MiB byte-exact" "$(sizes "tcp:[::1]:$L6")" "$ALL"
	fwd_down
else
	t_skip "fwd: -L TCP (::1)" "no IPv6 loopback here"
fi

# half-close, each way: the target says hello and shuts its side, then
# reads ours to its EOF (it can only count once our EOF came through)
nport; HP=$FP; serve half "tcp:127.0.0.1:$HP" half
nport; LH=$FP
fwd_up fwdH 1 -N -L "$LH:127.0.0.1:$HP" "$X"
r=$( ("$TGEN" 5000 1; sleep 0.5; "$TGEN" 5000 2) | timeout 10 "$TFWD" cat "tcp:127.0.0.1:$LH"); rc=$?
expect_eq "fwd: -L half-close from the target: its EOF arrives while we still send" "$rc/$r" "0/hello"
wait_for 5 grep -q "got 10000" "$TMP/half.out"
check "fwd: -L half-close from us: the target reads all we sent, then our EOF" grep -q "got 10000" "$TMP/half.out"

# a refused target: the connection is closed at once, and the controller
# says why
nport; NP=$FP; nport; LN=$FP
fwd_up fwdN 1 -N -L "$LN:127.0.0.1:$NP" "$X"
r=$(timeout 10 "$TFWD" cat "tcp:127.0.0.1:$LN" < /dev/null 2>&1 | wc -c)
expect_eq "fwd: -L to a refused target: our connection closes at once, nothing in it" "$r" 0
wait_for 5 grep -q "Connection refused" "$TMP/fwdN.log"
check "fwd: ...and the controller logs why" grep -q "agent: unable to connect to 127.0.0.1:$NP: Connection refused" "$TMP/fwdN.log"
fwd_down

# the target dies in the middle of a stream (a reset): the break reaches
# us as one, not as a clean end, and not never.  fwd_breaks ADDR NAME:
# some bytes come through ADDR, then the connection breaks (tfwd: 2)
fwd_breaks() {
	fb_n=$( (sleep 3 | timeout 10 "$TFWD" cat "$1"; echo "rc $?" >&2) 2>"$TMP/die.err" | wc -c)
	fb_rc=$(sed -n 's/^rc //p' "$TMP/die.err")
	case "$fb_rc/$fb_n" in 2/0) t_fail "$2" "nothing came before" ;;
	2/*) t_ok "$2 ($fb_n bytes came)" ;;
	*) t_fail "$2" "rc $fb_rc, $fb_n bytes: $(cat "$TMP/die.err")" ;; esac
}
nport; DP=$FP; serve die "tcp:127.0.0.1:$DP" die 3000000
nport; LD=$FP
fwd_up fwdD 1 -N -L "$LD:127.0.0.1:$DP" "$X"
fwd_breaks "tcp:127.0.0.1:$LD" "fwd: -L, the target dies mid-stream: our connection breaks too"
fwd_down

# 100 MiB to a reader that waits 3 s: memory stays flat (the controller's
# relay and the agent's session are each a process of their own)
nport; SP=$FP; serve slow "tcp:127.0.0.1:$SP" serve "sleep 3; exec $TGEN -c 104857600 5 > $TMP/slow.res"
nport; LS=$FP
fwd_up fwdS 1 -N -L "$LS:127.0.0.1:$SP" "$X"
"$TGEN" 104857600 5 | "$TFWD" cat "tcp:127.0.0.1:$LS" > /dev/null & cpid=$!
sleep 2
CHILD_PARENT=$FPID; relay=$(children_of | head -n 1)
CHILD_PARENT=$APID; sess=$(children_of | head -n 1)
rr=$("$TGEN" -r "${relay:-0}") ar=$("$TGEN" -r "${sess:-0}")
wait "$cpid"
wait_for 10 test -s "$TMP/slow.res"
expect_eq "fwd: -L, 100 MiB to a slow reader: byte-exact" "$(cat "$TMP/slow.res")" "ok 104857600"
if [ -n "$rr" ] && [ -n "$ar" ] && [ "$rr" -lt 16384 ] && [ "$ar" -lt 16384 ]; then
	t_ok "fwd: ...and while it waits, the relay and the agent's session stay small (${rr} and ${ar} kB)"
else
	t_fail "fwd: ...and while it waits, the relay and the agent's session stay small" "relay ${rr:-?} kB, agent ${ar:-?} kB"
fi
fwd_down

# --- -R -------------------------------------------------------------------
nport; R4=$FP
fwd_up fwdR 2 -N -R "$R4:127.0.0.1:$E4P" -R "$TMP/fwd-r.sock:${EU#unix:}" "$X"
expect_eq "fwd: -R TCP: 0, 1 and 1 MiB byte-exact, both ways" "$(sizes tcp:127.0.0.1:$R4)" "$ALL"
expect_eq "fwd: -R Unix socket: 0, 1 and 1 MiB byte-exact" "$(sizes "unix:$TMP/fwd-r.sock")" "$ALL"
r=$( ("$TGEN" 5000 1; sleep 0.5; "$TGEN" 5000 2) | timeout 10 "$TFWD" cat "tcp:127.0.0.1:$R4" | wc -c)
expect_eq "fwd: -R 10000 bytes, then our EOF, echoed whole" "$r" 10000
# -R's listener hands its connections over one at a time, each claimed by
# a session of its own within 10 s: in the test guest (an emulated CPU,
# beside the other stages) a burst of 100 left 2 claims later than that
if [ "$VS_TRANSPORT" = vsock ]; then RN=30; else RN=100; fi
expect_eq "fwd: -R: $RN connections at once, none failed" "$(fwd_many "tcp:127.0.0.1:$R4" fr $RN)" 0
check "fwd: the agent audits the -R listener and each connection it takes" \
	grep -q "forward -R accepted from .*'127.0.0.1:$R4'" "$TMP/agent.log"
was=; [ -S "$TMP/fwd-r.sock" ] && was=" (before: a Unix socket)"
fwd_down
if wait_for 5 sh -c "! $TFWD cat tcp:127.0.0.1:$R4 </dev/null 2>/dev/null"; then r=closed; else r=open; fi
expect_eq "fwd: -R: the guest's listeners close with the controller" "$r$was" "closed (before: a Unix socket)"
check "fwd: ...and a Unix one is removed" test ! -e "$TMP/fwd-r.sock"
nport; RN=$FP; nport; NP=$FP
fwd_up fwdRN 1 -N -R "$RN:127.0.0.1:$NP" "$X"
r=$(timeout 10 "$TFWD" cat "tcp:127.0.0.1:$RN" 2>&1 < /dev/null); rc=$?
# (the reset may come before tfwd's connect has returned, on a slow guest)
case "$rc/$r" in 0/|"2/tfwd: read from the connection: Connection reset by peer"|"2/tfwd: connect: Connection reset by peer")
	t_ok "fwd: -R to a refused target on the host: the guest's connection closes at once, nothing in it" ;;
*) t_fail "fwd: -R to a refused target on the host: the guest's connection closes at once, nothing in it" "$rc/$r" ;; esac
check "fwd: ...and the controller logs why" grep -q "unable to connect to 127.0.0.1:$NP: Connection refused" "$TMP/fwdRN.log"
fwd_down
nport; RDIE=$FP
fwd_up fwdRD 1 -N -R "$RDIE:127.0.0.1:$DP" "$X"
fwd_breaks "tcp:127.0.0.1:$RDIE" "fwd: -R, the target on the host dies mid-stream: the guest's connection breaks too"
fwd_down

# -R and -L when the agent dials the host (--listen)
new_dial_addr
nport; RD=$FP; nport; LDL=$FP
"$VSH" -v --listen "$LADDR" -N -R "$RD:127.0.0.1:$E4P" -L "$LDL:127.0.0.1:$E4P" 2>"$TMP/fwdDial.log" &
FPID=$!; PIDS="$PIDS $FPID"
wait_for 5 addr_ready "$LADDR"
"$AGENT" "$DADDR" 2>>"$TMP/agent.log" & dpid=$!; PIDS="$PIDS $dpid"
wait_for 10 fwd_says "$TMP/fwdDial.log" 2
expect_eq "fwd: dial mode (--listen): -R byte-exact" "$(sizes tcp:127.0.0.1:$RD)" "$ALL"
expect_eq "fwd: dial mode (--listen): -L byte-exact" "$(sizes tcp:127.0.0.1:$LDL)" "$ALL"
fwd_down; kill "$dpid" 2>/dev/null

# -L, -R and -W through the hub (@NAME): each connection a session the hub
# hands over
FH=$TMP/fwdhub; rm -rf "$FH"; mkdir -p "$FH"
"$VSH" serve --vsock off --hub "$FH/hub.sock" --unix "g1=$FH/g1.sock" 2>>"$TMP/fwdhub.log" & hpid=$!; PIDS="$PIDS $hpid"
wait_for 5 test -S "$FH/g1.sock"
"$AGENT" --retry --reconnect "unix:$FH/g1.sock" 2>>"$TMP/agent.log" & gpid=$!; PIDS="$PIDS $gpid"
VSOCK_SHELL_HUB=$FH/hub.sock "$VSH" wait @g1 -w 10
nport; HL=$FP; nport; HR=$FP
VSOCK_SHELL_HUB=$FH/hub.sock fwd_up fwdHub 2 -N -L "$HL:127.0.0.1:$E4P" -R "$HR:127.0.0.1:$E4P" @g1
expect_eq "fwd: through the hub (@NAME): -L byte-exact" "$(sizes tcp:127.0.0.1:$HL)" "$ALL"
expect_eq "fwd: through the hub (@NAME): -R byte-exact" "$(sizes tcp:127.0.0.1:$HR)" "$ALL"
r=$("$TGEN" 100000 4 | VSOCK_SHELL_HUB=$FH/hub.sock "$VSH" -W "127.0.0.1:$E4P" @g1 | "$TGEN" -c 100000 4)
expect_eq "fwd: through the hub (@NAME): -W byte-exact" "$r" "ok 100000"
fwd_down; kill "$gpid" "$hpid" 2>/dev/null

# --- -W -------------------------------------------------------------------
r=$("$TGEN" 1048576 3 | "$VSH" -W "127.0.0.1:$E4P" "$X" | "$TGEN" -c 1048576 3)
expect_eq "fwd: -W TCP: stdin and stdout joined to the target, 1 MiB byte-exact" "$r" "ok 1048576"
"$VSH" -W "$TMP/fwd-echo.sock" "$X" < /dev/null > "$TMP/w0.out"; rc=$?
expect_eq "fwd: -W Unix socket, 0 bytes: our EOF passes, then the target's: status 0" "$rc/$(wc -c < "$TMP/w0.out")" 0/0
r=$( ("$TGEN" 5000 1; sleep 0.5; "$TGEN" 5000 2) | timeout 10 "$VSH" -W "127.0.0.1:$HP" "$X"); rc=$?
expect_eq "fwd: -W half-close from the target, while we still send" "$rc/$r" "0/hello"
r=$("$VSH" -W "127.0.0.1:$NP" "$X" < /dev/null 2>&1); rc=$?
case "$rc/$r" in "255/"*"unable to connect to 127.0.0.1:$NP: Connection refused"*) t_ok "fwd: -W to a refused target: 255, and why" ;;
*) t_fail "fwd: -W to a refused target: 255, and why" "$rc/$r" ;; esac

# --- a web server in the guest, fetched from the host through -L: busybox
# httpd and wget (in the test VM both sides are the guest, over vsock
# loopback, as the rest of the suite)
BB=$(command -v busybox 2>/dev/null)
if [ -n "$BB" ] && "$BB" httpd --help >/dev/null 2>&1 && "$BB" wget --help >/dev/null 2>&1; then
	mkdir -p "$TMP/www"; "$TGEN" 300000 8 > "$TMP/www/data.bin"; echo "hello from httpd" > "$TMP/www/index.html"
	nport; WP=$FP; nport; LW=$FP
	"$BB" httpd -f -p "127.0.0.1:$WP" -h "$TMP/www" 2>>"$TMP/httpd.log" & PIDS="$PIDS $!"
	fwd_up fwdW 1 -N -L "$LW:localhost:$WP" "$X"
	r=$("$BB" wget -q -O - "http://127.0.0.1:$LW/index.html" 2>&1)
	expect_eq "fwd: busybox httpd in the guest, fetched through -L with wget" "$r" "hello from httpd"
	r=$("$BB" wget -q -O - "http://127.0.0.1:$LW/data.bin" 2>/dev/null | "$TGEN" -c 300000 8)
	expect_eq "fwd: ...a 300 KB file byte-exact" "$r" "ok 300000"
	fwd_down
else
	t_skip "fwd: busybox httpd through -L" "no busybox with httpd and wget"
fi

# --- beside a command ------------------------------------------------------
nport; LC=$FP
"$VSH" -v -L "$LC:127.0.0.1:$E4P" "$X" -- "sleep 2; exit 7" 2>"$TMP/fwdC.log" & cpid=$!
wait_for 5 fwd_says "$TMP/fwdC.log" 1
r=$(through "tcp:127.0.0.1:$LC" 1000 1)
wait "$cpid"; rc=$?
expect_eq "fwd: -L beside a command: forwards while it runs, its status after" "$r/$rc" "ok 1000/7"

# --- the deny switch -------------------------------------------------------
agent_stop
agent_listen --deny forward
r=$("$VSH" -W "127.0.0.1:$E4P" "$ADDR" < /dev/null 2>&1); rc=$?
case "$rc/$r" in "255/"*"forward is denied by this agent (--deny forward)"*) t_ok "fwd: --deny forward: refused, the ERROR names the switch" ;;
*) t_fail "fwd: --deny forward: refused, the ERROR names the switch" "$rc/$r" ;; esac
agent_stop
agent_listen --only exec
r=$("$VSH" -W "127.0.0.1:$E4P" "$ADDR" < /dev/null 2>&1); rc=$?
case "$rc/$r" in "255/"*"forward is denied by this agent (--only exec)"*) t_ok "fwd: forward missing from --only: refused, the ERROR names it" ;;
*) t_fail "fwd: forward missing from --only: refused, the ERROR names it" "$rc/$r" ;; esac
agent_stop
agent_listen
X=$ADDR

# --- ssh through -W: an sshd on 127.0.0.1, one per connection -------------
SSHD=
for p in /usr/sbin/sshd /usr/bin/sshd; do [ -x "$p" ] && SSHD=$p && break; done
if [ "$VS_TRANSPORT" != unix ] || [ -z "$SSHD" ] || ! command -v ssh >/dev/null || [ "$(id -u)" != 0 ]; then
	t_skip "fwd: ssh through -W to an sshd" "needs root, sshd and ssh, over unix:"
else
	S=$TMP/ssh; rm -rf "$S"; mkdir -p "$S/home"
	ssh-keygen -q -t ed25519 -N '' -f "$S/host_key" </dev/null && ssh-keygen -q -t ed25519 -N '' -f "$S/id" </dev/null
	cp "$S/id.pub" "$S/authorized_keys"
	printf '%s\n' "HostKey $S/host_key" "AuthorizedKeysFile $S/authorized_keys" "PermitRootLogin prohibit-password" \
		"PasswordAuthentication no" "KbdInteractiveAuthentication no" "UsePAM no" "StrictModes no" "LogLevel ERROR" \
		> "$S/sshd_config"
	nport; SSP=$FP
	unshare -m --propagation private sh -c "mount -t tmpfs -o mode=755 fwd /run && mkdir -m 755 /run/sshd &&
		exec $TFWD serve tcp:127.0.0.1:$SSP '$SSHD -i -e -f $S/sshd_config'" 2>"$TMP/sshd.srv" &
	PIDS="$PIDS $!"
	wait_for 5 grep -q ready "$TMP/sshd.srv"
	r=$(HOME=$S/home ssh -F /dev/null -i "$S/id" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile="$S/known_hosts" -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR \
		-o ProxyCommand="$VSH -W 127.0.0.1:$SSP $X" -l "$(id -un)" fwdtest 'echo through; exit 44' </dev/null 2>"$TMP/ssh.err")
	rc=$?
	expect_eq "fwd: ssh through -W (ProxyCommand) to an sshd: the command runs, its status comes back" "$r/$rc" "through/44"
fi
