# exec: framed sessions against a listening agent (sourced by suite.sh)

agent_listen
X=$ADDR

for code in 0 1 44; do
	"$VSH" "$X" -- "exit $code"; expect_eq "exec: exit status $code" "$?" "$code"
done
"$VSH" "$X" -- 'kill -TERM $$'; expect_eq "exec: death by SIGTERM is 128+15" "$?" 143
"$VSH" "$X" -- 'kill -KILL $$'; expect_eq "exec: death by SIGKILL is 128+9" "$?" 137
"$VSH" "$X" -- no_such_command_xyz 2>/dev/null; expect_eq "exec: command not found is 127" "$?" 127
"$VSH" "$X" --argv -- /etc/passwd 2>/dev/null; expect_eq "exec: not executable is 126" "$?" 126
out=$("$VSH" "$X" --argv -- /no/such/prog 2>&1); expect_eq "exec: argv exec failure is 127" "$?" 127
case $out in *"unable to execute /no/such/prog"*) t_ok "exec: exec failure names the program";; *) t_fail "exec: exec failure names the program" "$out";; esac

out=$("$VSH" "$X" -- 'echo out; echo err >&2' 2>"$TMP/err")
expect_eq "exec: stdout separate" "$out" out
expect_eq "exec: stderr separate" "$(cat "$TMP/err")" err

for n in 0 1 2 100 5000 200000 67108864; do
	r=$("$VSH" "$X" -- "$TGEN $n $n" | "$TGEN" -c $n $n)
	expect_eq "exec: $n bytes on stdout, byte-exact" "$r" "ok $n"
	r=$("$VSH" "$X" -- "$TGEN $n $((n + 1)) >&2" 2>&1 >/dev/null | "$TGEN" -c $n $((n + 1)))
	expect_eq "exec: $n bytes on stderr, byte-exact" "$r" "ok $n"
done
r=$("$TGEN" 5000000 9 | "$VSH" "$X" -- cat | "$TGEN" -c 5000000 9)
expect_eq "exec: 5 MB of stdin streamed through cat" "$r" "ok 5000000"
r=$(printf 'line\n' | "$VSH" "$X" -- 'cat; echo after-eof')
expect_eq "exec: stdin EOF reaches the command" "$r" "line
after-eof"
r=$("$VSH" -n "$X" -- 'cat; echo nothing')
expect_eq "exec: -n gives an empty stdin" "$r" nothing
r=$(: | "$VSH" "$X" -- 'echo $# "$1"')
expect_eq "exec: empty stdin, shell string" "$r" "0 "
r=$("$VSH" "$X" --argv -- sh -c 'echo "$1|$2"' x 'a b' 'c')
expect_eq "exec: --argv keeps argument boundaries" "$r" "a b|c"
# the agent's audit line names the whole command: each argument quoted
# and escaped (boundaries visible), the line bounded, a cut marked
"$VSH" "$X" --argv -- sh -c 'echo hi' >/dev/null
grep -q "exec from .*: 'sh' '-c' 'echo hi'\$" "$TMP/agent.log"
expect_eq "exec: the audit line carries the whole argv (--argv sh -c 'echo hi')" "$?" 0
n0=$(wc -l < "$TMP/agent.log")
"$VSH" "$X" --argv -- printf '%s' "it's $EVIL" >/dev/null
tail -n +$((n0 + 1)) "$TMP/agent.log" > "$TMP/audit.evil"
shows_escaped "exec: ...each argument escaped, a quote in one too" "$TMP/audit.evil" "'printf' '%s' 'it\\'s $EVIL_SHOWN'"
"$VSH" "$X" --argv -- echo "$(printf '%0600d' 0)" after-the-cut >/dev/null
line=$(grep "exec from .*: 'echo' '0000" "$TMP/agent.log" | tail -n 1)
case $line in
*"after-the-cut"*) t_fail "exec: ...a long command is cut" "$line" ;;
*"'echo' '0000"*"0...") if [ ${#line} -le 500 ]; then t_ok "exec: ...a long command is cut short, and the cut marked"; else t_fail "exec: long audit line" "${#line} bytes"; fi ;;
*) t_fail "exec: ...a long command is cut" "$line" ;;
esac
r=$("$VSH" "$X" -- echo 'a  b' c)
expect_eq "exec: words joined by spaces for the shell, as ssh" "$r" "a b c"
r=$("$VSH" "$X" -e FOO=bar -e 'BAZ=x y' -- 'echo "$FOO|$BAZ"')
expect_eq "exec: -e sets the environment" "$r" "bar|x y"
r=$("$VSH" "$X" --cwd /tmp -- pwd)
expect_eq "exec: --cwd sets the directory" "$r" /tmp
"$VSH" "$X" --cwd /no/such/dir -- pwd 2>/dev/null; expect_eq "exec: bad --cwd is 126" "$?" 126
r=$("$VSH" "$X" -- 'echo "$HOME|$PATH" | grep -c /bin')
expect_eq "exec: PATH and HOME are set" "$r" 1

# the exit status survives stdin pressure: a command that exits without
# reading stdin while the host keeps sending (the agent drains after EXIT
# so that no reset takes the status with it)
if [ "$VS_TRANSPORT" = vsock ]; then runs=50; else runs=200; fi
i=0 bad=0
while [ $i -lt $runs ]; do
	"$VSH" "$X" -- 'exit 3' < /dev/zero 2>/dev/null; [ $? = 3 ] || bad=$((bad + 1))
	i=$((i + 1))
done
expect_eq "exec: 'exit 3' < /dev/zero gives 3 in $runs of $runs runs" "$bad" 0

# 20 sessions at once, each with its own output and status
expect_eq "exec: 20 sessions in parallel, outputs and statuses intact" "$(parallel_sessions "$X" 20 100000)" 0

# A host that stops reading: the command blocks, the agent's memory stays
# flat (its buffers are fixed), and everything arrives once reading resumes.
rm -f "$TMP/prog"
"$VSH" "$X" -- "$TGEN -p $TMP/prog 300000000 4" | "$TGEN" -s 3 &
bp=$!
sleep 2
CHILD_PARENT=$APID
sess=$(children_of | head -n 1)
rss=$("$TGEN" -r "$sess" 2>/dev/null)
prog=$(cat "$TMP/prog" 2>/dev/null || echo 0)
if [ -n "$rss" ] && [ "$rss" -lt 4096 ]; then t_ok "exec: agent session RSS stays small under backpressure (${rss} kB)"; else t_fail "exec: agent session RSS under backpressure" "rss=$rss kB"; fi
if [ "$prog" -lt 16000000 ]; then t_ok "exec: a stalled host stalls the command (${prog} bytes written)"; else t_fail "exec: stalled host stalls the command" "$prog bytes written"; fi
kill "$bp" 2>/dev/null; wait "$bp" 2>/dev/null
# our reader died: the controller must end too (its output pipe broke)


# A host that disconnects mid-command, with --no-detach (a session that
# outlives its connection is t_sess's): the command's whole session dies.
rm -f "$TMP/pid1" "$TMP/pid2"
"$VSH" --no-detach "$X" -- "sleep 100 & echo \$! > $TMP/pid2; echo \$\$ > $TMP/pid1; wait" &
cp=$!
wait_for 5 test -s "$TMP/pid2"
kill -9 "$cp"; wait "$cp" 2>/dev/null
p1=$(cat "$TMP/pid1" 2>/dev/null) p2=$(cat "$TMP/pid2" 2>/dev/null)
if [ -n "$p1" ] && [ -n "$p2" ] && wait_for 5 gone "$p1" && wait_for 5 gone "$p2"; then
	t_ok "exec: host gone mid-command kills the command and its children"
else
	t_fail "exec: host gone mid-command kills the command and its children" "pids $p1 $p2 still alive"
fi
# and leaves no zombie behind under the listening agent
sleep 0.3
CHILD_PARENT=$APID
expect_eq "exec: no session processes left under the agent" "$(children_of | wc -l | tr -d ' ')" 0

# The host goes while stdin waits for a command that does not read it:
# the agent must still see the hangup (not spin) and end the session.
rm -f "$TMP/pid5"
"$TGEN" 50000000 1 | "$VSH" --no-detach "$X" -- "echo \$\$ > $TMP/pid5; exec sleep 100" &
cp=$!
wait_for 5 test -s "$TMP/pid5"
sleep 0.5
kill -9 "$cp"; wait "$cp" 2>/dev/null
p5=$(cat "$TMP/pid5" 2>/dev/null)
if [ -n "$p5" ] && wait_for 5 gone "$p5"; then t_ok "exec: host gone behind unread stdin: the command is killed"; else t_fail "exec: host gone behind unread stdin" "pid '$p5' alive"; fi
CHILD_PARENT=$APID
sleep 0.3
expect_eq "exec: ...and its session process is gone" "$(children_of | wc -l | tr -d ' ')" 0

# Local stdout closed early: the controller ends (141, as a pipeline victim) and so does the command.
rm -f "$TMP/pid3"
"$VSH" "$X" -- "echo \$\$ > $TMP/pid3; exec yes" | head -n 1 > "$TMP/yes"
rc=$?
p3=$(cat "$TMP/pid3" 2>/dev/null)
expect_eq "exec: stdout closed early, first line arrived" "$(cat "$TMP/yes")" y
if [ -n "$p3" ] && wait_for 5 gone "$p3"; then t_ok "exec: stdout closed early ends the remote command"; else t_fail "exec: stdout closed early ends the remote command"; fi

# Ctrl-C without a pty is forwarded to the command as SIGINT.
"$VSH" "$X" -- "echo \$\$ > $TMP/pid4; exec sleep 100" &
cp=$!
wait_for 5 test -s "$TMP/pid4"
kill -INT "$cp"
wait "$cp"; expect_eq "exec: SIGINT forwarded, status 130" "$?" 130

# A session that merely ends leaves alone what its command left running,
# as ssh does: a plain background job, trap '' HUP, setsid, nohup (where
# there is one: Debian's busybox has none); each writes its own pid
# (setsid may fork)
BG="plain trap setsid" BGN=:
command -v nohup >/dev/null && BG="$BG nohup" BGN=nohup
rm -f "$TMP"/bg.*
"$VSH" "$X" -- "sleep 100 >/dev/null 2>&1 & echo \$! > $TMP/bg.plain
$BGN sleep 100 >/dev/null 2>&1 & echo \$! > $TMP/bg.nohup
(trap '' HUP; exec sleep 100) >/dev/null 2>&1 & echo \$! > $TMP/bg.trap
setsid sh -c 'echo \$\$ > $TMP/bg.setsid; exec sleep 100' >/dev/null 2>&1 &
exit 4"
rc=$?
wait_for 5 test -s "$TMP/bg.setsid"
sleep 0.5
bg_alive() { # what of bg.* is alive, in the order of BG
	for f in $BG; do p=$(cat "$TMP/bg.$f" 2>/dev/null); [ -n "$p" ] && alive "$p" && printf '%s ' "$f"; done
}
expect_eq "exec: what a finished command left running lives on ($BG)" "$rc/$(bg_alive)" "4/$BG "
# a session that fails later (a download of nothing) spares them too
"$VSH" cp -q "$X" ":$TMP/no/such/file" "$TMP/nothing" 2>/dev/null
sleep 0.3
expect_eq "exec: ...and a session that fails later does not kill them" "$(bg_alive)" "$BG "
# a session process that dies of a signal takes its own command's session
# with it, and only that one
rm -f "$TMP/sk.pid"
"$VSH" "$X" -- "echo \$\$ > $TMP/sk.pid; exec sleep 100" 2>/dev/null &
cp=$!
wait_for 5 test -s "$TMP/sk.pid"
sk=$(cat "$TMP/sk.pid")
kill -9 "$(cut -d' ' -f4 "/proc/$sk/stat")"
wait "$cp" 2>/dev/null
if wait_for 5 gone "$sk"; then sk=gone; fi
expect_eq "exec: a session process killed by a signal: its command dies, what others left lives on" \
	"$sk/$(bg_alive)" "gone/$BG "
for f in $BG; do p=$(cat "$TMP/bg.$f" 2>/dev/null); [ -n "$p" ] && kill "$p" 2>/dev/null; done
# a session ended on purpose (Ctrl-C: a signal from the host) takes all
# of it along, a job that ignores SIGHUP too (and SIGINT: a background job
# of a shell without job control ignores it)
rm -f "$TMP/bg.trap"
"$VSH" "$X" -- "(trap '' HUP; exec sleep 100) >/dev/null 2>&1 & echo \$! > $TMP/bg.trap; exec sleep 100" &
cp=$!
wait_for 5 test -s "$TMP/bg.trap"
kill -INT "$cp"; wait "$cp"; rc=$?
p=$(cat "$TMP/bg.trap" 2>/dev/null)
if [ -n "$p" ] && wait_for 5 gone "$p"; then p=gone; fi
expect_eq "exec: Ctrl-C ends the session on purpose: a job that ignores SIGHUP dies too" "$rc/$p" "130/gone"
# the session ends when its output closes, not at the command's exit:
# what a background job writes later arrives (ssh waits the same way)
r=$("$VSH" "$X" -- '(sleep 1; echo late) & echo early' | tr '\n' ' ')
expect_eq "exec: output a background job writes after the command's exit arrives" "$r" "early late "
# the shell's own name as its argv[0], as sshd gives it: not sh
ln -sf /bin/sh "$TMP/ash"
r=$("$VSH" "$X" -e "SHELL=$TMP/ash" -- 'echo $0')
expect_eq "exec: the command runs as \$SHELL -c with the shell's name as argv[0]" "$r" ash

# No descriptor of the agent leaks into a command: ls sees 0 1 2 and
# the directory it is reading (3)
r=$("$VSH" "$X" --argv -- ls /proc/self/fd | tr '\n' ' ')
expect_eq "exec: only stdin, stdout and stderr reach the command" "$r" "0 1 2 3 "
r=$("$VSH" -t "$X" -- ls /proc/self/fd </dev/null | tr -d '\r' | tr '\n' ' ' | tr -s ' ')
expect_eq "exec: ...on a pty too" "$r" "0 1 2 3 "

# Liveness ($VSOCK_SHELL_ALIVE, as ssh's ServerAliveInterval): an agent
# that stops answering, as one in a guest that rebooted or froze under the
# session does, ends the session with a clear error, not a hang.  The
# session process is stopped (SIGSTOP): its connection stays open, and
# nothing comes back.
rm -f "$TMP/pid6"
VSOCK_SHELL_ALIVE=1 "$VSH" --no-detach -n "$X" -- "echo \$PPID > $TMP/pid6; exec sleep 100" 2>"$TMP/alive.err" &
cp=$!
wait_for 5 test -s "$TMP/pid6"
p6=$(cat "$TMP/pid6" 2>/dev/null)
[ -n "$p6" ] && kill -STOP "$p6"
if wait_for 8 gone "$cp"; then
	wait "$cp"; rc=$?
	if [ "$rc" = 255 ] && grep -q 'nor answered a PING: connection lost' "$TMP/alive.err"; then
		t_ok "exec: an agent that stops answering ends the session (255, says so)"
	else t_fail "exec: an agent that stops answering ends the session" "exit $rc: $(cat "$TMP/alive.err")"; fi
else
	t_fail "exec: an agent that stops answering ends the session" "still waiting after 8 s (VSOCK_SHELL_ALIVE=1)"
	kill "$cp" 2>/dev/null; wait "$cp" 2>/dev/null
fi
[ -n "$p6" ] && kill -CONT "$p6"
# ...but a command that is only quiet keeps its session: the agent answers
r=$(VSOCK_SHELL_ALIVE=1 "$VSH" -n "$X" -- 'sleep 3; echo quiet-done')
expect_eq "exec: a quiet command outlives several PINGs (VSOCK_SHELL_ALIVE=1)" "$r" quiet-done
# --timeout: once the time is up the command's whole session is killed,
# what it left in the background too (nohup, a subshell that ignores
# SIGHUP and SIGTERM), and the status is timeout(1)'s 124, promptly
rm -f "$TMP/to1" "$TMP/to2"
t0=$(date +%s)
"$VSH" --timeout 1 "$X" -- "nohup sleep 100 >/dev/null 2>&1 & echo \$! > $TMP/to1;
	(trap '' HUP TERM; exec sleep 101) >/dev/null 2>&1 & echo \$! > $TMP/to2; exec sleep 102" 2>"$TMP/to.err"
rc=$? dt=$(($(date +%s) - t0))
case "$rc:$(cat "$TMP/to.err")" in
124:*"ran out of its 1 s (--timeout)"*) [ "$dt" -le 4 ] && t_ok "exec: --timeout 1 kills a sleep 102: status 124, after ${dt} s, and says so" ||
	t_fail "exec: --timeout 1" "took $dt s" ;;
*) t_fail "exec: --timeout 1 kills a sleep 102: status 124" "rc=$rc after $dt s: $(cat "$TMP/to.err")" ;;
esac
p1=$(cat "$TMP/to1" 2>/dev/null) p2=$(cat "$TMP/to2" 2>/dev/null)
if [ -n "$p1" ] && [ -n "$p2" ] && wait_for 5 gone "$p1" && wait_for 5 gone "$p2"; then
	t_ok "exec: ...and what it left in the background (nohup, HUP ignored) dies with it"
else
	t_fail "exec: --timeout kills the background too" "pids '$p1' '$p2' still alive"
	kill -9 "$p1" "$p2" 2>/dev/null
fi
"$VSH" --timeout 10 "$X" -- 'exit 3'; expect_eq "exec: a command done within --timeout keeps its status" "$?" 3
r=$("$VSH" -q --timeout 1 "$X" -- 'echo before; exec sleep 100' 2>&1); rc=$?
expect_eq "exec: --timeout: output before the kill arrives; -q says nothing more" "$rc/$r" "124/before"

# The agent still serves after all that
r=$("$VSH" "$X" -- echo still-here)
expect_eq "exec: agent keeps serving" "$r" still-here
agent_stop
